//! How a store is opened: the caller's secret and limits, the same for a store in a
//! directory and in a bucket.

use crate::document::{DEFAULT_MAX_SESSION_BYTES, MAX_MAX_SESSION_BYTES, MIN_MAX_SESSION_BYTES};
use crate::error::StoreError;
use crate::keyring::{self, Secret};
use crate::sessions::cache::DEFAULT_CACHE_BYTES;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store's secret.
    pub secret: Secret,
    /// The largest serialized session accepted; `None` is 64 KiB.
    pub max_session_bytes: Option<u32>,
    /// scrypt's log2 N for a new passphrase store.
    pub scrypt_log_n: u8,
    /// Sessions not accessed (`security.lastAccessedAt`) for this many milliseconds are
    /// expired, on top of their `expiresAt`; `None` turns the idle timeout off.
    pub idle_timeout: Option<u64>,
    /// The longest a session may live, in milliseconds from its `createdAt` (or its first
    /// write, where it has none): no `expiresAt` and no `touch` carries it past that.
    /// `None`: no cap.
    pub max_lifetime: Option<u64>,
    /// When removed sessions are erased from the backend.
    pub erase: Erase,
    /// The most bytes of opened sessions kept in memory, so that a read of a recently
    /// used session skips the backend and the decryption (see `cache.rs`); 0 keeps none.
    pub cache_bytes: u64,
}

/// When the records of removed sessions leave the backend (the `files` backend unlinks
/// a removed session's file at once either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Erase {
    /// At the next compaction: `cleanup`, `compact`, or once dead records pass 1 MiB in
    /// a log under 16 MiB (half the log above that).
    #[default]
    Deferred,
    /// Before `delete`, `revoke-user`, `clear` or `cleanup` returns: the log is compacted.
    Immediate,
}

impl Config {
    /// The session size limit, after checking it and the idle timeout are allowed.
    pub(crate) fn checked_max_session_bytes(&self) -> Result<u32, StoreError> {
        let max_session_bytes = self.max_session_bytes.unwrap_or(DEFAULT_MAX_SESSION_BYTES);
        if !(MIN_MAX_SESSION_BYTES..=MAX_MAX_SESSION_BYTES).contains(&max_session_bytes) {
            return Err(StoreError::InvalidInput(format!(
                "max-session-bytes is {max_session_bytes}; it must be between \
                 {MIN_MAX_SESSION_BYTES} and {MAX_MAX_SESSION_BYTES}"
            )));
        }
        if self.max_lifetime == Some(0) {
            return Err(StoreError::InvalidInput(
                "max-lifetime must be at least 1 ms (or none for no cap)".into(),
            ));
        }
        if self.idle_timeout == Some(0) {
            return Err(StoreError::InvalidInput(
                "idle-timeout must be at least 1 ms (or none to turn it off)".into(),
            ));
        }
        Ok(max_session_bytes)
    }

    /// A configuration with the defaults and `secret`.
    pub fn new(secret: Secret) -> Self {
        Config {
            secret,
            max_session_bytes: None,
            scrypt_log_n: keyring::DEFAULT_LOG_N,
            idle_timeout: None,
            max_lifetime: None,
            erase: Erase::Deferred,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}
