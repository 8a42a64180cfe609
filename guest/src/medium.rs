//! The backend a store's metadata names, chosen when the store is opened.

use crate::backend::{self, Backend, BackendKind, Durability, Files, Listing};
use crate::dir::Dir;
use crate::error::StoreError;
use crate::log::Log;
use crate::meta::Meta;

/// Either backend over one directory.
pub enum Medium<D: Dir> {
    /// One file per session.
    Files(Files<D>),
    /// Records appended to segments.
    Log(Log<D>),
}

impl<D: Dir> Medium<D> {
    /// Opens the backend of the store in `dir`: the one its metadata records, or for a
    /// new store `requested` (default `files`). Asking an existing store for the other
    /// backend is `invalid-input`.
    pub fn open(
        dir: D,
        requested: Option<BackendKind>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let recorded = match backend::read_meta(&dir)? {
            Some(bytes) => Some(Meta::parse(&bytes)?.backend),
            None => None,
        };
        let kind = match (recorded, requested) {
            (Some(recorded), Some(requested)) if recorded != requested => {
                return Err(StoreError::InvalidInput(format!(
                    "this store keeps its sessions in the {} backend, not {}",
                    recorded.name(),
                    requested.name()
                )));
            }
            (Some(recorded), _) => recorded,
            (None, requested) => requested.unwrap_or_default(),
        };
        Ok(match kind {
            BackendKind::Log => Medium::Log(Log::open(dir, durability)?),
            _ => Medium::Files(Files::with_durability(dir, durability)),
        })
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            Medium::Files($backend) => $call,
            Medium::Log($backend) => $call,
        }
    };
}

impl<D: Dir> Backend for Medium<D> {
    fn kind(&self) -> BackendKind {
        delegate!(self, b => b.kind())
    }
    fn recover(&mut self) -> Result<u64, StoreError> {
        delegate!(self, b => b.recover())
    }
    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, b => b.read_meta())
    }
    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        delegate!(self, b => b.write_meta(bytes))
    }
    fn read(&mut self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, b => b.read(id, limit))
    }
    fn write(&mut self, id: &str, blob: &[u8]) -> Result<(), StoreError> {
        delegate!(self, b => b.write(id, blob))
    }
    fn remove(&mut self, id: &str) -> Result<bool, StoreError> {
        delegate!(self, b => b.remove(id))
    }
    fn list(&mut self) -> Result<Listing, StoreError> {
        delegate!(self, b => b.list())
    }
    fn read_stamp(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, b => b.read_stamp(id))
    }
    fn write_stamp(&mut self, id: &str, stamp: &[u8]) -> Result<(), StoreError> {
        delegate!(self, b => b.write_stamp(id, stamp))
    }
    fn remove_stamp(&mut self, id: &str) -> Result<bool, StoreError> {
        delegate!(self, b => b.remove_stamp(id))
    }
    fn quarantine(&mut self, id: &str) -> Result<(), StoreError> {
        delegate!(self, b => b.quarantine(id))
    }
    fn quarantined(&mut self) -> Result<u64, StoreError> {
        delegate!(self, b => b.quarantined())
    }
    fn compact(&mut self) -> Result<(), StoreError> {
        delegate!(self, b => b.compact())
    }
}
