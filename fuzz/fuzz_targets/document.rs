//! Session documents and patches from any JSON: parsing, validation and the nested merge
//! never panic; a valid document round-trips through its JSON unchanged; a patch either
//! applies or is refused, and what it yields is valid or refused by validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_vault_guest::{SessionData, SessionPatch};

fn base() -> SessionData {
    serde_json::from_str(
        r#"{"sessionId":"s1","sessionToken":"t","userContext":{"userId":"u","x":{"a":1}},
        "tokenMetadata":{"accessToken":"a","expiresAt":1,"scopes":[]},
        "security":{"ipAddress":"i","userAgent":"u","createdAt":1,"lastAccessedAt":1,"accessCount":0},
        "expiresAt":1000,"createdAt":1}"#,
    )
    .unwrap()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = serde_json::from_slice::<SessionData>(data) {
        let _ = session_vault_guest::testing::validate(&session);
        let text = serde_json::to_vec(&session).unwrap();
        let again: SessionData = serde_json::from_slice(&text).unwrap();
        assert_eq!(again, session);
    }
    if let Ok(patch) = serde_json::from_slice::<SessionPatch>(data) {
        if let Ok(merged) = patch.apply(base()) {
            assert_eq!(merged.session_id, "s1");
            let _ = session_vault_guest::testing::validate(&merged);
        }
    }
});
