//! The session-vault store: encrypted session files, the per-user index, merge and expiry.
//!
//! This crate is built twice. For `wasm32-wasip2` it is the session-vault component,
//! exporting `session-vault:store/sessions` (see `wit/store.wit`) over a preopened
//! directory. Natively it is the same store over `std::fs`, so the logic can be tested
//! fast and the component's overhead measured against it.
//!
//! ```
//! use session_vault_guest::{Config, DirectoryStore, Files, Secret, Sessions, StdDir, SystemClock};
//! # let tmp = tempfile::tempdir()?;
//! let backend = Files::new(StdDir::new(tmp.path()));
//! let mut store = DirectoryStore::open(backend, SystemClock, Config::new(Secret::RawKey(vec![7; 32])))?;
//! assert_eq!(store.get("no-such-session")?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod backend;
pub mod bucket_store;
pub mod directory_store;
pub mod document;
pub mod error;
pub mod fs;
pub mod keyring;
pub mod legacy;
pub mod migrate;
pub mod seal;
pub mod sessions;
pub mod store;

// wit-bindgen's generated export glue is `unsafe extern "C"`; the code written here has none.
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod component;

pub use backend::log::Log;
pub use backend::{Backend, BackendKind, Durability, Files};
pub use bucket_store::BucketStore;
pub use bucket_store::bucket::{Bucket, MemoryBucket};
pub use directory_store::DirectoryStore;
pub use directory_store::directory_backend::DirectoryBackend;
pub use document::model::{Extra, Security, SessionData, TokenMetadata, UserContext};
pub use document::patch::{SecurityPatch, SessionPatch, TokenMetadataPatch, UserContextPatch};
pub use error::StoreError;
pub use fs::{Dir, StdDir};
pub use keyring::Secret;
pub use legacy::{ImportFailure, ImportReport, LegacyStore};
pub use sessions::cache::DEFAULT_CACHE_BYTES;
pub use sessions::clock::{Clock, ManualClock, SystemClock};
pub use sessions::{Compaction, Config, Erase, KeyInfo, RekeyProgress, Report, Sessions};
