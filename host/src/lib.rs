//! # session-vault
//!
//! An encrypted, file-backed session store for login and OAuth session layers, run as a
//! WASI component inside wasmtime. This crate embeds the component (built from
//! `guest/`), preopens only the store directory, holds an exclusive lock on it, gives
//! the component its wall clock, and offers one typed method per WIT operation.
//!
//! ```no_run
//! use session_vault::{Secret, Session, Vault};
//!
//! let mut vault = Vault::open("./.sessions", Secret::Passphrase(std::env::var("SESSION_VAULT_SECRET")?))?;
//! // A session is any JSON object with a `sessionId` and an `expiresAt` (ms since the
//! // epoch); `userContext.userId`, where present, indexes it by user.
//! let session = Session::parse(br#"{
//!     "sessionId": "s-1", "expiresAt": 4102444800000,
//!     "userContext": {"userId": "alice"}, "cart": [{"sku": "A-1", "qty": 2}]
//! }"#)?;
//! vault.set(&session)?;
//! assert_eq!(vault.get("s-1")?, Some(session));
//! assert_eq!(vault.user_sessions("alice")?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors keep apart what the store refused ([`Error::Store`], with a [`StoreError`]
//! per WIT error case) and a failure of the component itself ([`Error::Trap`]).
#![deny(missing_docs)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod bindings;
mod clock;
mod convert;
mod engine;
mod error;
mod keyvalue;
mod lock;
mod options;
mod vault;

pub use engine::{COMPONENT, KEYVALUE_COMPONENT};
pub use error::Error;
pub use keyvalue::{RedisBucket, RedisCas, RedisConfig};
pub use options::{DEFAULT_PREFIX, VaultOptions};
pub use session_vault_guest::{
    BackendKind, BucketStore, Clock, Compaction, Config, DEFAULT_CACHE_BYTES, Durability, Erase,
    Extra, IdPage, ImportFailure, ImportReport, KeyInfo, MAX_DEPTH, MAX_PAGE, ManualClock, Report,
    Secret, Security, SecurityPatch, Session, SessionData, SessionPage, SessionPatch, Sessions,
    StoreError, SystemClock, TokenMetadata, TokenMetadataPatch, UserContext, UserContextPatch,
};
pub use vault::Vault;
