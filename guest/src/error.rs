//! The one error type of the store, mirroring the WIT `error` variant case for case.

use std::io;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The session id is not 1 to 128 characters of `[A-Za-z0-9_-]`.
    #[error("invalid session id: {0}")]
    InvalidId(String),
    /// A document, patch or configuration value is malformed or not allowed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// `update` of a session that is absent or expired.
    #[error("session not found")]
    NotFound,
    /// `create` of an id that already holds a live session.
    #[error("a live session with this id already exists")]
    AlreadyExists,
    /// `set` of an id whose session was removed (deleted, revoked, cleared) before its
    /// expiry: a request in flight at the removal must not bring it back.
    #[error("removed: {0}")]
    Removed(String),
    /// The secret does not open this store: the metadata's key check failed.
    #[error("wrong key: the secret does not open this store")]
    WrongKey,
    /// A store file failed to decrypt or parse.
    #[error("corrupted: {0}")]
    Corrupted(String),
    /// A session file is encrypted under a key id the store does not hold.
    #[error("missing key: {0}")]
    MissingKey(String),
    /// A serialized document exceeds the configured limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Another opener holds the store directory.
    #[error("the store is locked by another opener")]
    Locked,
    /// The storage medium failed.
    #[error("i/o error while {context}")]
    Io {
        /// The operation that failed, e.g. "writing session abc".
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The shared key-value server failed, timed out or could not be reached, or a
    /// write lost its compare-and-swap to other hosts too often in a row.
    #[error("the shared store is unavailable while {context}")]
    Unavailable {
        /// The operation that failed, e.g. "reading session abc".
        context: String,
        /// The cause the server or the host reported.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with the operation it interrupted.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// The shared server failed `context` for `reason`.
    pub fn unavailable(context: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: io::Error::other(reason.into()),
        }
    }

    /// The WIT case name of this error, e.g. `invalid-id`; stable, for logs and exit codes.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::InvalidId(_) => "invalid-id",
            StoreError::InvalidInput(_) => "invalid-input",
            StoreError::NotFound => "not-found",
            StoreError::AlreadyExists => "already-exists",
            StoreError::Removed(_) => "removed",
            StoreError::WrongKey => "wrong-key",
            StoreError::Corrupted(_) => "corrupted",
            StoreError::MissingKey(_) => "missing-key",
            StoreError::TooLarge(_) => "too-large",
            StoreError::Locked => "locked",
            StoreError::Io { .. } => "io",
            StoreError::Unavailable { .. } => "unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_keeps_its_cause() {
        let error = StoreError::io("writing session a", io::Error::other("disk full"));
        assert_eq!(error.kind(), "io");
        assert_eq!(error.to_string(), "i/o error while writing session a");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
    }
}
