//! The legacy (TypeScript store) file decoder: any bytes never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use session_vault_guest::testing::crypto::Key;

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    // scrypt is slow: derive once.
    KEY.get_or_init(|| {
        session_vault_guest::testing::legacy_key("an-example-secret-of-at-least-32-characters!")
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = session_vault_guest::testing::legacy_decode(key(), data);
});
