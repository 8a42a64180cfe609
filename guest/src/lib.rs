//! The session-vault store: encrypted session files, the per-user index, merge and expiry.
//!
//! This crate is built twice. For `wasm32-wasip2` it is the session-vault component,
//! exporting `session-vault:store/sessions` (see `wit/store.wit`) over a preopened
//! directory. Natively it is the same store over `std::fs`, so the logic can be tested
//! fast and the component's overhead measured against it.
//!
//! A store is used through one trait, [`Sessions`] (the WIT's operations); [`Store`] is a
//! store in a directory or a key-value bucket. The `testing` feature adds the module
//! `testing`: what the conformance suite and the fuzz targets reach inside (test doubles,
//! byte layouts, fuzz entry points); the component and the CLI are built without it.
//!
//! ```
//! use session_vault_guest::{Config, DirectoryStore, Files, Secret, Sessions, StdDir, SystemClock};
//! # let tmp = tempfile::tempdir()?;
//! let backend = Files::new(StdDir::new(tmp.path()));
//! let config = Config::new(Secret::RawKey(vec![7; 32]));
//! let mut store = DirectoryStore::open(backend, SystemClock, config)?;
//! assert_eq!(store.get("no-such-session")?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

// Every module is private: the surface below is the crate's whole public API.
mod backend;
mod bucket_store;
mod directory_store;
mod document;
mod error;
mod fs;
mod keyring;
mod legacy;
mod migrate;
mod seal;
mod sessions;
mod store;

// wit-bindgen's generated export glue is `unsafe extern "C"`; the code written here has none.
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod component;

// One store, whichever medium holds it: the operations, and how a store is opened.
pub use sessions::clock::{Clock, ManualClock, SystemClock};
pub use sessions::{
    Compaction, Config, DEFAULT_CACHE_BYTES, Erase, IdPage, KeyInfo, MAX_PAGE, RekeyProgress,
    Report, SessionPage, Sessions,
};
pub use store::{Destination, OpenBucket, OpenDirectory, Store};

// A store in a directory: its backends and the directory calls they make.
pub use backend::{Backend, BackendKind, Durability, Files, LOCK_FILE, Log};
pub use directory_store::{DirectoryBackend, DirectoryStore};
pub use fs::{Dir, StdDir, create_dirs};

// A store in a key-value bucket.
pub use bucket_store::BucketStore;

// The session document, the caller's secret, the errors, the original's stores.
pub use document::model::{Extra, Security, SessionData, TokenMetadata, UserContext};
pub use document::patch::{SecurityPatch, SessionPatch, TokenMetadataPatch, UserContextPatch};
pub use document::session::{MAX_DEPTH, Session};
pub use error::StoreError;
pub use keyring::Secret;
pub use legacy::{ImportFailure, ImportReport, LegacyStore};

/// The contract of the key-value bucket a [`BucketStore`] keeps its store in: what a host
/// implements over its server (the session-vault host does over Redis).
pub mod bucket {
    pub use crate::bucket_store::bucket::{
        Bucket, Change, Entry, Member, Page, Watched, moved_out,
    };
    pub use crate::bucket_store::layout::{FENCE, LEDGER};
    pub use crate::bucket_store::ledger::LedgerPage;
    pub use crate::bucket_store::name::bucket_name;
}

/// What the conformance suite and the fuzz targets reach inside the store: the test
/// doubles (faults, power cuts), the sealed byte layouts to craft and inspect records
/// with, and the parsers the fuzz targets drive. Only with the `testing` feature, which
/// neither the component nor the CLI is built with.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    pub use crate::backend::log::fuzzing;
    pub use crate::bucket_store::memory::MemoryBucket;
    pub use crate::document::{id, validate};
    pub use crate::fs::{fault, power_cut};
    pub use crate::legacy::{decode as legacy_decode, key as legacy_key};
    pub use crate::seal::{crypto, format, stamp, summary};
}
