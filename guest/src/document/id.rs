//! Session ids: the only part of a session that reaches a file name, so checked first.

use crate::error::StoreError;

/// The longest accepted session id, in characters.
pub const MAX_ID_LEN: usize = 128;

/// Checks that `id` is 1 to 128 characters of `[A-Za-z0-9_-]`.
///
/// Such an id cannot name a path outside the store (`/`, `.`, NUL are excluded),
/// cannot collide with the store's own files (they all contain a `.`), and has one
/// spelling on every file system.
pub fn validate(id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::InvalidId("the id is empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(StoreError::InvalidId(format!(
            "the id has {} bytes; at most {MAX_ID_LEN} are allowed",
            id.len()
        )));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(StoreError::InvalidId(format!(
            "{:?} contains {bad:?}; only A-Z, a-z, 0-9, '_' and '-' are allowed",
            id
        )));
    }
    Ok(())
}

/// Whether `id` is a valid session id.
pub fn is_valid(id: &str) -> bool {
    validate(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_full_alphabet_and_both_length_bounds() {
        assert!(is_valid("a"));
        assert!(is_valid("AZaz09_-"));
        assert!(is_valid(&"x".repeat(128)));
    }

    #[test]
    fn rejects_hostile_ids() {
        for id in [
            "", "../x", "a/b", "a\\b", ".", "..", "a.svs", "a\0b", "é", "a b", "tmp\n",
        ] {
            assert!(
                matches!(validate(id), Err(StoreError::InvalidId(_))),
                "{id:?} was accepted"
            );
        }
        assert!(matches!(
            validate(&"x".repeat(129)),
            Err(StoreError::InvalidId(_))
        ));
    }
}
