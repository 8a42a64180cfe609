//! The sealed-record decoder (session files, access stamps, index summaries): any bytes,
//! under any id, never panic; whatever opens must be what a writer with the key sealed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_vault_guest::seal::crypto::Key;
use session_vault_guest::seal::format::{self, Kind};
use session_vault_guest::seal::stamp::Stamp;
use session_vault_guest::seal::summary::Summary;

fuzz_target!(|data: &[u8]| {
    let key = Key::from_raw(&[7; 32]).unwrap();
    let key_for = |id: u32| (id == 1).then_some(&key);
    for kind in [Kind::Session, Kind::Access, Kind::Summary] {
        let _ = format::header(data, kind);
        // Without the key nothing can be forged: an opened record was sealed by us,
        // and random bytes almost never are.
        if let Ok(plain) = format::decode(data, kind, "s1", key_for) {
            let header = format::header(data, kind).unwrap();
            let again = format::encode(kind, 1, &key, header.nonce, "s1", &plain).unwrap();
            assert_eq!(again, data);
        }
    }
    let _ = Stamp::open(data, "s1", key_for);
    let _ = Summary::open(data, "s1", key_for);
});
