//! Sealed bytes: keys and AES-256-GCM, and the sealed layouts of session files, access
//! stamps, index summaries and the version ledger (docs/FORMAT.md).

pub mod crypto;
pub mod format;
pub mod index_block;
pub mod ledger;
pub mod stamp;
pub mod summary;
