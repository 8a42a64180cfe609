//! The store a `store` resource opened: in a directory, or (the key-value component)
//! in a shared bucket. One set of calls over both, so the exports name each once.

use crate::backend::directory::DirectoryBackend;
use crate::backend::{BackendKind, Durability};
use crate::directory_store::{
    Compaction, Config, DirectoryStore, KeyInfo, RekeyProgress, Report, SystemClock,
};
use crate::document::model::SessionData;
use crate::document::patch::SessionPatch;
use crate::error::StoreError;
use crate::fs::wasi::WasiDir;
use crate::keyring::Secret;
use crate::legacy::Target;
#[cfg(feature = "keyvalue")]
use crate::migrate::bucket as moving;

/// A store in a directory.
pub type Local = DirectoryStore<DirectoryBackend<WasiDir>, SystemClock>;

/// Where a store may move: the bucket a directory store moves into, the directory a
/// bucket's store moves out to, and the config to open it there with.
// Read only by the key-value component; the plain one refuses `redis` before.
#[cfg_attr(not(feature = "keyvalue"), allow(dead_code))]
pub struct Destination {
    /// The bucket's name (the key prefix), if the host attached a server.
    pub bucket: Option<String>,
    /// The preopened directory a bucket's store moves out to, if the host gave one.
    pub directory: Option<String>,
    /// How durable a directory store it moves out to is.
    pub durability: Durability,
    /// How to open the store there (the secret that opened this one).
    pub config: Config,
}

/// The store in `target`'s bucket if the directory `dir` says its store was handed over
/// to it (finishing an interrupted move); `None` otherwise, or without a target.
#[cfg(feature = "keyvalue")]
pub fn handed_over(dir: &WasiDir, target: &Destination) -> Result<Option<Opened>, StoreError> {
    let Some(name) = target.bucket.as_deref() else {
        return Ok(None);
    };
    let bucket = || super::bucket::WasiBucket::open(name);
    let shared = moving::finish(dir, bucket, SystemClock, target.config.clone())?;
    Ok(shared.map(|shared| Opened::Bucket(Box::new(shared))))
}

/// Without the key-value imports no store is in a bucket.
#[cfg(not(feature = "keyvalue"))]
pub fn handed_over(_dir: &WasiDir, _target: &Destination) -> Result<Option<Opened>, StoreError> {
    Ok(None)
}

/// A store in a shared bucket.
#[cfg(feature = "keyvalue")]
pub type BucketStore = crate::bucket_store::BucketStore<super::bucket::WasiBucket, SystemClock>;

/// The store behind one `store` resource.
pub enum Opened {
    /// In a directory (`files` or `log`).
    Directory(Box<Local>),
    /// In a shared bucket (`redis`).
    #[cfg(feature = "keyvalue")]
    Bucket(Box<BucketStore>),
}

/// Runs the same call on whichever store this is.
macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Opened::Directory($store) => $call,
            #[cfg(feature = "keyvalue")]
            Opened::Bucket($store) => $call,
        }
    };
}

impl Opened {
    pub fn create(&mut self, session: &SessionData) -> Result<(), StoreError> {
        each!(self, s => s.create(session))
    }

    pub fn get(&mut self, id: &str) -> Result<Option<SessionData>, StoreError> {
        each!(self, s => s.get(id))
    }

    pub fn touch(&mut self, id: &str) -> Result<Option<SessionData>, StoreError> {
        each!(self, s => s.touch(id))
    }

    pub fn update(&mut self, id: &str, patch: SessionPatch) -> Result<SessionData, StoreError> {
        each!(self, s => s.update(id, patch))
    }

    pub fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        each!(self, s => s.delete(id))
    }

    pub fn cleanup(&mut self) -> Result<u64, StoreError> {
        each!(self, s => s.cleanup())
    }

    pub fn user_sessions(&mut self, user: &str) -> Result<Vec<SessionData>, StoreError> {
        each!(self, s => s.user_sessions(user))
    }

    pub fn count(&mut self) -> Result<u64, StoreError> {
        match self {
            Opened::Directory(s) => Ok(s.count()),
            #[cfg(feature = "keyvalue")]
            Opened::Bucket(s) => s.count(),
        }
    }

    pub fn clear(&mut self) -> Result<u64, StoreError> {
        each!(self, s => s.clear())
    }

    pub fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        each!(self, s => s.revoke_user(user))
    }

    pub fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError> {
        each!(self, s => s.add_key(secret))
    }

    pub fn keys(&mut self) -> Result<Vec<KeyInfo>, StoreError> {
        match self {
            Opened::Directory(s) => Ok(s.keys()),
            #[cfg(feature = "keyvalue")]
            Opened::Bucket(s) => s.keys(),
        }
    }

    pub fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError> {
        each!(self, s => s.rekey(limit))
    }

    pub fn retire_key(&mut self, id: u32) -> Result<(), StoreError> {
        each!(self, s => s.retire_key(id))
    }

    pub fn check(&mut self) -> Result<Report, StoreError> {
        each!(self, s => s.check())
    }

    pub fn compact(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        match self {
            Opened::Directory(s) => s.compact(limit),
            #[cfg(feature = "keyvalue")]
            Opened::Bucket(s) => Ok(s.compact()),
        }
    }

    /// Moves the store to `to`; a directory store moves into `target`'s bucket (the
    /// key-value component only), and this becomes the store in the bucket.
    pub fn migrate(&mut self, to: BackendKind, target: &Destination) -> Result<u64, StoreError> {
        match self {
            #[cfg(feature = "keyvalue")]
            Opened::Directory(local) if to == BackendKind::Redis => {
                let name = target.bucket.as_deref().ok_or_else(|| {
                    StoreError::InvalidInput(
                        "`migrate --to redis` needs the server to move into (--redis URL)".into(),
                    )
                })?;
                let bucket = super::bucket::WasiBucket::open(name)?;
                let (moved, shared) =
                    moving::move_into(local, bucket, SystemClock, target.config.clone())?;
                *self = Opened::Bucket(Box::new(shared));
                Ok(moved)
            }
            Opened::Directory(s) => {
                let _ = target;
                s.migrate(to)
            }
            #[cfg(feature = "keyvalue")]
            Opened::Bucket(_) if to == BackendKind::Redis => Ok(0),
            #[cfg(feature = "keyvalue")]
            Opened::Bucket(shared) => {
                if target.directory.is_none() {
                    return Err(StoreError::InvalidInput(
                        "`migrate --to files|log` of a redis store needs the directory to move \
                         to (--dir DIR)"
                            .into(),
                    ));
                }
                let dir = WasiDir::preopened(target.directory.as_deref())?;
                let backend = DirectoryBackend::open(dir, Some(to), target.durability)?;
                let (moved, local) =
                    moving::move_out(shared, backend, SystemClock, target.config.clone())?;
                *self = Opened::Directory(Box::new(local));
                Ok(moved)
            }
        }
    }

    /// The store as an import target.
    pub fn target(&mut self) -> &mut dyn Target {
        match self {
            Opened::Directory(s) => &mut **s,
            #[cfg(feature = "keyvalue")]
            Opened::Bucket(s) => &mut **s,
        }
    }
}
