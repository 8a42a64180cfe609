//! The store a `store` resource opened: in a directory, or (the key-value component)
//! in a shared bucket. One set of calls over both, so the exports name each once.

use crate::document::model::SessionData;
use crate::document::patch::SessionPatch;
use crate::error::StoreError;
use crate::fs::wasi::WasiDir;
use crate::keyring::Secret;
use crate::legacy::Target;
use crate::medium::Medium;
use crate::store::{Compaction, KeyInfo, RekeyProgress, Report, Store, SystemClock};

/// A store in a directory.
pub type Local = Store<Medium<WasiDir>, SystemClock>;

/// A store in a shared bucket.
#[cfg(feature = "keyvalue")]
pub type Shared = crate::shared::Shared<super::bucket::WasiBucket, SystemClock>;

/// The store behind one `store` resource.
pub enum Opened {
    /// In a directory (`files` or `log`).
    Local(Box<Local>),
    /// In a shared bucket (`redis`).
    #[cfg(feature = "keyvalue")]
    Shared(Box<Shared>),
}

/// Runs the same call on whichever store this is.
macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Opened::Local($store) => $call,
            #[cfg(feature = "keyvalue")]
            Opened::Shared($store) => $call,
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
            Opened::Local(s) => Ok(s.count()),
            #[cfg(feature = "keyvalue")]
            Opened::Shared(s) => s.count(),
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
            Opened::Local(s) => Ok(s.keys()),
            #[cfg(feature = "keyvalue")]
            Opened::Shared(s) => s.keys(),
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
            Opened::Local(s) => s.compact(limit),
            #[cfg(feature = "keyvalue")]
            Opened::Shared(s) => Ok(s.compact()),
        }
    }

    pub fn migrate(&mut self, to: crate::backend::BackendKind) -> Result<u64, StoreError> {
        match self {
            Opened::Local(s) => s.migrate(to),
            #[cfg(feature = "keyvalue")]
            Opened::Shared(_) if to == crate::backend::BackendKind::Redis => Ok(0),
            #[cfg(feature = "keyvalue")]
            Opened::Shared(_) => Err(StoreError::InvalidInput(
                "a redis store moves to a directory with `migrate --to files|log --dir DIR`".into(),
            )),
        }
    }

    /// The store as an import target.
    pub fn target(&mut self) -> &mut dyn Target {
        match self {
            Opened::Local(s) => &mut **s,
            #[cfg(feature = "keyvalue")]
            Opened::Shared(s) => &mut **s,
        }
    }
}
