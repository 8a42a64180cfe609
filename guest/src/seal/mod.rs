//! Sealed bytes: keys and AES-256-GCM, and the sealed layouts of session files, access
//! stamps and index summaries (docs/FORMAT.md).

pub mod crypto;
pub mod format;
pub mod stamp;
pub mod summary;
