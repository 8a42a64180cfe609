//! Session documents and patches from any bytes: the strict parser, validation and the
//! nested merge never panic or overflow; a valid document round-trips through its JSON
//! text byte for byte; a patch either applies or is refused, and what it yields is a valid
//! session (the merge validates it again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_vault_guest::{Session, SessionPatch};

fn base() -> Session {
    Session::parse(
        r#"{"sessionId":"s1","sessionToken":"t","userContext":{"userId":"u","x":{"a":1}},
        "tokenMetadata":{"accessToken":"a","expiresAt":1,"scopes":[]},
        "security":{"ipAddress":"i","userAgent":"u","createdAt":1,"lastAccessedAt":1,"accessCount":0},
        "expiresAt":1000,"createdAt":1}"#
            .as_bytes(),
    )
    .unwrap()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = Session::parse(data) {
        let text = session.to_vec();
        let again = Session::parse(&text).unwrap();
        assert_eq!(again, session);
        assert_eq!(again.to_vec(), text, "the same bytes again");
    }
    if let Ok(patch) = serde_json::from_slice::<SessionPatch>(data) {
        if let Ok(merged) = patch.apply(base()) {
            assert_eq!(merged.id(), "s1");
            assert_eq!(Session::parse(&merged.to_vec()).unwrap(), merged);
        }
    }
});
