//! The backend a store directory's metadata names (`files` or `log`), chosen when the
//! store is opened. Moving a store between them is the `migrate` module's.

use crate::backend::layout::META_FILE;
use crate::backend::ledger::LedgerIo;
use crate::backend::log::{self, Log};
use crate::backend::{
    Backend, BackendKind, Compaction, Durability, Files, IndexSealer, Listing, SealedBlock,
    Summaries, Usage,
};
use crate::backend::{disk, files};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::keyring::{Keyring, Meta};

/// Either backend over one directory.
pub enum DirectoryBackend<D: Dir> {
    /// One file per session.
    Files(Files<D>),
    /// Records appended to segments.
    Log(Box<Log<D>>),
}

impl<D: Dir> DirectoryBackend<D> {
    /// Opens the backend of the store in `dir`: the one its metadata records, or for a
    /// new store `requested` (default `log`). Asking an existing store for the other
    /// backend is `invalid-input` once its metadata authenticates
    /// ([`super::DirectoryStore::open`]). Nothing is removed here: the metadata is not
    /// authenticated yet. The store settles an interrupted migration once it is
    /// ([`Backend::settle`]): before its commit the partial copy is discarded, after it
    /// the old data is removed.
    pub fn open(
        dir: D,
        requested: Option<BackendKind>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        Self::open_with_segment_limit(dir, requested, durability, log::SEGMENT_LIMIT)
    }

    /// [`DirectoryBackend::open`] with a `log` backend's segments closed past `limit` bytes (see
    /// [`Log::open_with_segment_limit`]).
    pub fn open_with_segment_limit(
        dir: D,
        requested: Option<BackendKind>,
        durability: Durability,
        limit: u64,
    ) -> Result<Self, StoreError> {
        let recorded = match disk::read_meta(&dir)? {
            Some(bytes) => Some(Meta::parse(&bytes)?.backend),
            None => None,
        };
        // A request wins over what the (not yet authenticated) metadata records: the store
        // refuses the mismatch once the metadata has authenticated, `corrupted` before.
        let kind = match (recorded, requested) {
            (_, Some(requested)) => requested,
            (Some(recorded), None) => recorded,
            (None, None) => BackendKind::default(),
        };
        Self::of_kind(dir, kind, durability, limit)
    }

    pub(crate) fn of_kind(
        dir: D,
        kind: BackendKind,
        durability: Durability,
        limit: u64,
    ) -> Result<Self, StoreError> {
        Ok(match kind {
            BackendKind::Log => DirectoryBackend::Log(Box::new(Log::open_with_segment_limit(
                dir, durability, limit,
            )?)),
            BackendKind::Files => DirectoryBackend::Files(Files::with_durability(dir, durability)),
            BackendKind::Redis => {
                return Err(StoreError::InvalidInput(
                    "the redis backend keeps a store in a key-value bucket, not a directory: \
                     open it with a redis url (the session-vault-keyvalue component)"
                        .into(),
                ));
            }
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &D {
        match self {
            DirectoryBackend::Files(files) => files.dir(),
            DirectoryBackend::Log(log) => log.dir(),
        }
    }
}

pub(crate) fn discard<D: Dir>(dir: &D, kind: BackendKind) -> Result<(), StoreError> {
    match kind {
        BackendKind::Log => log::discard(dir),
        BackendKind::Files => files::discard(dir).map(drop),
        // Nothing of a redis store is in the directory.
        BackendKind::Redis => Ok(()),
    }
}

/// Writes the metadata file (durably, through a synced temporary file).
pub(crate) fn write_meta<D: Dir>(
    dir: &D,
    meta: &Meta,
    keyring: &Keyring,
) -> Result<(), StoreError> {
    disk::replace(dir, META_FILE, &meta.sealed(keyring)?, Durability::Durable)
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            DirectoryBackend::Files($backend) => $call,
            DirectoryBackend::Log($backend) => $call,
        }
    };
}

impl<D: Dir> Backend for DirectoryBackend<D> {
    fn kind(&self) -> BackendKind {
        delegate!(self, b => b.kind())
    }
    fn durability(&self) -> Durability {
        delegate!(self, b => b.durability())
    }
    fn ledger(&mut self) -> Box<dyn LedgerIo + '_> {
        delegate!(self, b => b.ledger())
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
    fn write(&mut self, id: &str, blob: &[u8], summary: &[u8]) -> Result<(), StoreError> {
        delegate!(self, b => b.write(id, blob, summary))
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
    fn compact_step(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        delegate!(self, b => b.compact_step(limit))
    }
    fn usage(&mut self) -> Result<Usage, StoreError> {
        delegate!(self, b => b.usage())
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        delegate!(self, b => b.flush())
    }
    fn hold_syncs(&mut self, hold: bool) -> bool {
        delegate!(self, b => b.hold_syncs(hold))
    }
    fn holds_unsynced(&self) -> bool {
        delegate!(self, b => b.holds_unsynced())
    }
    fn sync_held(&mut self) -> Result<(), StoreError> {
        delegate!(self, b => b.sync_held())
    }
    fn settle(
        &mut self,
        partial: Option<BackendKind>,
        old: Option<BackendKind>,
    ) -> Result<(), StoreError> {
        let dir = self.dir();
        for kind in partial.into_iter().chain(old) {
            if kind == self.kind() {
                return Err(StoreError::Corrupted(format!(
                    "{META_FILE} records a migration from and to the {} backend",
                    kind.name()
                )));
            }
            discard(dir, kind)?;
        }
        Ok(())
    }
    fn keeps_summaries(&self) -> bool {
        delegate!(self, b => b.keeps_summaries())
    }
    fn take_summaries(&mut self) -> Option<Summaries> {
        delegate!(self, b => b.take_summaries())
    }
    fn lend_sealer(&mut self, sealer: Box<dyn IndexSealer>) {
        delegate!(self, b => b.lend_sealer(sealer))
    }
    fn read_block(&self, block: &SealedBlock) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, b => b.read_block(block))
    }
    fn is_latest(&self, id: &str, seq: u64, stamp: bool) -> bool {
        delegate!(self, b => b.is_latest(id, seq, stamp))
    }
}
