//! The sealed-record decoder (session files, access stamps, index summaries): any bytes,
//! under any id, never panic; whatever opens must be what a writer with the key sealed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_vault_guest::testing::crypto::Key;
use session_vault_guest::testing::format::{self, Kind, STORE_ID_LEN, Scope};
use session_vault_guest::testing::stamp::Stamp;
use session_vault_guest::testing::summary::Summary;

fuzz_target!(|data: &[u8]| {
    let key = Key::from_raw(&[7; 32]).unwrap();
    let key_for = |id: u32| (id == 1).then_some(&key);
    // Format-v1 records are read too, as a store being upgraded reads them.
    let scope = Scope {
        store_id: [9; STORE_ID_LEN],
        read_v1: true,
    };
    for kind in [Kind::Session, Kind::Access, Kind::Summary] {
        let _ = format::header(data, kind);
        // Without the key nothing can be forged: an opened record was sealed by us,
        // and random bytes almost never are. Sealed again (under a fresh nonce), it
        // opens to the same plaintext.
        if let Ok(opened) = format::decode(data, kind, &scope, "s1", key_for) {
            let header = opened.header;
            let again = format::encode(
                kind,
                header.key_id,
                &key,
                &scope,
                header.seq,
                "s1",
                &opened.plaintext,
            )
            .unwrap();
            let reopened = format::decode(&again, kind, &scope, "s1", key_for).unwrap();
            assert_eq!(reopened.plaintext, opened.plaintext);
        }
    }
    let _ = Stamp::open(data, &scope, "s1", key_for);
    let _ = Summary::open(data, &scope, "s1", key_for);
});
