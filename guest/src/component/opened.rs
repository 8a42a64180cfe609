//! The store a `store` resource opened, and where it may move: the crate's [`Store`]
//! over the preopened directory and (the key-value component) the imported bucket.

use crate::backend::{BackendKind, Durability};
use crate::directory_store::directory_backend::DirectoryBackend;
use crate::error::StoreError;
use crate::fs::wasi::WasiDir;
use crate::sessions::Config;
use crate::sessions::clock::SystemClock;
use crate::store::{Destination, Store};

/// The bucket a store may be in: the imported `wasi:keyvalue` bucket.
#[cfg(feature = "keyvalue")]
pub type ImportedBucket = super::bucket::WasiBucket;

/// Without the key-value imports no store is in a bucket: a bucket that cannot exist.
#[cfg(not(feature = "keyvalue"))]
pub type ImportedBucket = std::convert::Infallible;

/// The store behind one `store` resource.
pub type Opened = Store<WasiDir, ImportedBucket, SystemClock>;

/// What a move needs from the resource's config: the bucket and the directory it named.
pub struct DestinationConfig {
    /// The bucket's name (the key prefix), if the host attached a server.
    // Read only by the key-value component; the plain one refuses `redis` before.
    #[cfg_attr(not(feature = "keyvalue"), allow(dead_code))]
    pub bucket: Option<String>,
    /// The preopened directory a bucket's store moves out to, if the host gave one.
    pub directory: Option<String>,
    /// How durable a directory store it moves out to is.
    pub durability: Durability,
    /// How to open the store there (the secret that opened this one).
    pub config: Config,
}

impl DestinationConfig {
    /// Where this resource's store may move: each side opened only when a move needs it.
    pub fn destination(&self) -> Destination<'_, WasiDir, ImportedBucket, SystemClock> {
        let durability = self.durability;
        let directory = self.directory.as_deref().map(|name| {
            Box::new(move |to: BackendKind| {
                DirectoryBackend::open(WasiDir::preopened(Some(name))?, Some(to), durability)
            }) as crate::store::OpenDirectory<'_, WasiDir>
        });
        Destination {
            bucket: self.open_bucket(),
            directory,
            clock: SystemClock,
            config: self.config.clone(),
        }
    }

    #[cfg(feature = "keyvalue")]
    fn open_bucket(&self) -> Option<crate::store::OpenBucket<'_, ImportedBucket>> {
        let name = self.bucket.as_deref()?;
        Some(Box::new(move || super::bucket::WasiBucket::open(name)))
    }

    #[cfg(not(feature = "keyvalue"))]
    fn open_bucket(&self) -> Option<crate::store::OpenBucket<'_, ImportedBucket>> {
        None
    }
}

/// The store in `moves`' bucket if the directory `dir` says its store was handed over
/// to it (finishing an interrupted move); `None` otherwise, or without a bucket.
#[cfg(feature = "keyvalue")]
pub fn handed_over(dir: &WasiDir, moves: &DestinationConfig) -> Result<Option<Opened>, StoreError> {
    let Some(name) = moves.bucket.as_deref() else {
        return Ok(None);
    };
    let bucket = Box::new(move || super::bucket::WasiBucket::open(name));
    Store::handed_over(dir, bucket, SystemClock, moves.config.clone())
}

/// Without the key-value imports no store is in a bucket.
#[cfg(not(feature = "keyvalue"))]
pub fn handed_over(
    _dir: &WasiDir,
    _moves: &DestinationConfig,
) -> Result<Option<Opened>, StoreError> {
    Ok(None)
}
