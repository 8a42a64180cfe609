//! Exit codes, and the one line printed for an error.

use session_vault::{Error, StoreError};

/// Success.
pub const OK: u8 = 0;
/// The session is absent or expired (`get`, `update`).
pub const NOT_FOUND: u8 = 1;
/// Bad usage or invalid input: ids, documents, sizes, secrets, flags.
pub const INVALID: u8 = 2;
/// The secret does not open the store.
pub const WRONG_KEY: u8 = 3;
/// Any other store failure: locked, corrupted, missing key, I/O, a component failure.
pub const OTHER: u8 = 4;

/// The exit code and WIT error case of an error chain.
pub fn classify(error: &anyhow::Error) -> (u8, &'static str) {
    for cause in error.chain() {
        let store = cause
            .downcast_ref::<StoreError>()
            .or_else(|| cause.downcast_ref::<Error>().and_then(Error::store));
        if let Some(store) = store {
            return (code(store), store.kind());
        }
        if let Some(Error::Trap(_) | Error::Component(_)) = cause.downcast_ref::<Error>() {
            return (OTHER, "component");
        }
        if cause.downcast_ref::<Usage>().is_some() {
            return (INVALID, "usage");
        }
    }
    (OTHER, "io")
}

fn code(error: &StoreError) -> u8 {
    match error {
        StoreError::NotFound | StoreError::Removed(_) => NOT_FOUND,
        StoreError::InvalidId(_)
        | StoreError::InvalidInput(_)
        | StoreError::AlreadyExists
        | StoreError::TooLarge(_) => INVALID,
        StoreError::WrongKey => WRONG_KEY,
        _ => OTHER,
    }
}

/// A mistake in how the command was called.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_follow_the_store_error_through_context() {
        let wrapped = Err::<(), _>(Error::Store(StoreError::WrongKey))
            .context("opening ./s")
            .unwrap_err();
        assert_eq!(classify(&wrapped), (WRONG_KEY, "wrong-key"));
        let absent = anyhow::Error::new(StoreError::NotFound);
        assert_eq!(classify(&absent), (NOT_FOUND, "not-found"));
        let bad = anyhow::Error::new(StoreError::InvalidId("x".into()));
        assert_eq!(classify(&bad), (INVALID, "invalid-id"));
        assert_eq!(
            classify(&anyhow::Error::new(StoreError::Locked)),
            (OTHER, "locked")
        );
        assert_eq!(
            classify(&anyhow::Error::new(Usage("u".into()))),
            (INVALID, "usage")
        );
    }
}
