//! Id validation agrees with its definition: 1 to 128 characters of `[A-Za-z0-9_-]`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = std::str::from_utf8(data) else {
        return;
    };
    let expected = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    assert_eq!(
        session_vault_guest::testing::id::is_valid(id),
        expected,
        "{id:?}"
    );
    assert_eq!(
        session_vault_guest::testing::id::validate(id).is_ok(),
        expected,
        "{id:?}"
    );
});
