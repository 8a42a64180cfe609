//! Where sealed sessions are kept: the [`Backend`] trait, which holds opaque encrypted
//! blobs by session id and knows nothing of keys, expiry or users, and the backends
//! themselves: [`Files`] (one file per session) and [`Log`] (segments of records).
//!
//! [`layout`] owns the names and limits of a store directory; [`disk`] the directory
//! operations both backends share (atomic replacement, leftovers, quarantine count).

pub mod disk;
pub mod files;
pub mod layout;
pub mod ledger;
pub mod log;

pub use files::Files;
pub use layout::LOCK_FILE;
pub use log::Log;

use crate::error::StoreError;

/// What a listing of the medium found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Ids that have a session blob.
    pub ids: Vec<String>,
    /// Ids that have an access stamp (with or without a blob).
    pub stamps: Vec<String>,
    /// Entries that are not the backend's own: never read, moved or removed.
    pub foreign: u64,
}

/// Sealed index summaries (see [`crate::seal::summary`]) a backend gathered while opening, so
/// the store can build its index without reading every session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summaries {
    /// Every id with a blob, with the sealed summary stored beside it (`None`: none was
    /// gathered: the blob was written before summaries existed, or its summary is in
    /// one of `blocks`).
    pub sessions: Vec<(String, Option<Vec<u8>>)>,
    /// The access stamp of each id that has one (empty: it is in one of `blocks`, or
    /// is read when needed).
    pub stamps: Vec<(String, Vec<u8>)>,
    /// Where the sealed index blocks are (see [`crate::seal::index_block`]), newest
    /// segment first: the store reads them one at a time ([`Backend::read_block`]), so
    /// an open never holds more than one. Their items count only where
    /// [`Backend::is_latest`] says so.
    pub blocks: Vec<SealedBlock>,
    /// Entries that are not the backend's own.
    pub foreign: u64,
}

/// Where a hint holds a sealed index block, with the segment it must describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedBlock {
    /// The number of the segment whose hint holds it.
    pub segment: u64,
    /// That segment's length.
    pub segment_len: u64,
    /// Where the sealed block starts in the hint.
    pub offset: u64,
    /// Its length in bytes.
    pub len: usize,
}

/// A record's sealed summary or stamp, as a backend hands it to an [`IndexSealer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedItem<'a> {
    /// A stamp's (else a summary's).
    pub stamp: bool,
    /// The session's id.
    pub id: &'a str,
    /// The record's sequence number.
    pub seq: u64,
    /// The sealed summary or stamp.
    pub sealed: &'a [u8],
}

/// Seals a hint's index block: the store's keys, lent to a backend that otherwise holds
/// none, so that it can write a hint whose summaries open with one AEAD.
pub trait IndexSealer {
    /// The sealed index block of segment `segment` (`segment_len` bytes) holding
    /// `items`; `None` if one of them does not open under the store's keys (the hint then
    /// keeps them sealed one by one, as they are in the records).
    fn seal(&self, segment: u64, segment_len: u64, items: &[SealedItem<'_>]) -> Option<Vec<u8>>;
}

/// How far a compaction got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compaction {
    /// Units (log segments) compacted by this step.
    pub segments: u64,
    /// Units still to compact; 0 when the medium holds no dead record.
    pub remaining: u64,
    /// Bytes reclaimed by this step.
    pub reclaimed: u64,
}

/// What a medium holds besides its live blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of removed or replaced records still on the medium.
    pub dead_bytes: u64,
    /// The key ids that sealed records on the medium name (sessions, summaries and
    /// stamps, live or dead).
    pub key_ids: std::collections::BTreeSet<u32>,
}

/// Where encrypted sessions are kept.
pub trait Backend {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// How durable its session writes and removals are.
    fn durability(&self) -> Durability;
    /// The version ledger's files, in the same directory and as durable as the sessions.
    fn ledger(&mut self) -> Box<dyn ledger::LedgerIo + '_>;
    /// Removes what interrupted writes left behind; returns how many leftovers it removed.
    fn recover(&mut self) -> Result<u64, StoreError>;
    /// Reads the store metadata; `Ok(None)` for a new store.
    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the store metadata durably.
    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Reads the blob of `id` (at most `limit` bytes); `Ok(None)` if there is none.
    fn read(&mut self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the blob of `id` atomically, as durably as the backend is configured.
    /// `summary` is its sealed index summary: a backend that [keeps
    /// summaries](Backend::keeps_summaries) stores it with the blob, others ignore it.
    fn write(&mut self, id: &str, blob: &[u8], summary: &[u8]) -> Result<(), StoreError>;
    /// Removes the blob of `id`, as durably as the backend is configured; `Ok(false)` if
    /// there was none.
    fn remove(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Lists every id with a blob.
    fn list(&mut self) -> Result<Listing, StoreError>;
    /// Reads the access stamp of `id`; `Ok(None)` if there is none. A stamp that cannot
    /// be a stamp (too long, not a regular file) is `Corrupted`.
    fn read_stamp(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes the access stamp of `id` in place, without syncing: a crash may leave it
    /// torn or missing, so readers must treat it as advisory.
    fn write_stamp(&mut self, id: &str, stamp: &[u8]) -> Result<(), StoreError>;
    /// Removes the access stamp of `id`, without syncing; `Ok(false)` if there was none.
    fn remove_stamp(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Moves the blob of `id` out of the store, keeping it for inspection.
    fn quarantine(&mut self, id: &str) -> Result<(), StoreError>;
    /// How many blobs have been quarantined.
    fn quarantined(&mut self) -> Result<u64, StoreError>;
    /// Reclaims the space of removed and replaced blobs, if the medium keeps any: when
    /// it returns, no record of a removed blob or of a replaced version is left.
    fn compact(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// One step of [`Backend::compact`], for progress: reclaims up to `limit` units (log
    /// segments) and says how many remain; safe to stop between steps.
    fn compact_step(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        let _ = limit;
        self.compact()?;
        Ok(Compaction::default())
    }
    /// What the medium holds besides the live blobs: dead bytes, and the oldest key id
    /// any sealed record on it names.
    fn usage(&mut self) -> Result<Usage, StoreError>;
    /// Discards what an interrupted migration left, once the metadata that says so has
    /// authenticated: the partial copy in the `partial` backend (not committed), or the
    /// old data in the `old` backend (committed). Only a backend that moves between kinds
    /// (`DirectoryBackend`) has any; a plain backend refuses.
    fn settle(
        &mut self,
        partial: Option<BackendKind>,
        old: Option<BackendKind>,
    ) -> Result<(), StoreError> {
        match (partial, old) {
            (None, None) => Ok(()),
            _ => Err(StoreError::InvalidInput(
                "the store's metadata records an interrupted migration: open it through \
                 its DirectoryBackend, which finishes it"
                    .into(),
            )),
        }
    }
    /// Makes every change written so far durable, whatever the durability: what a
    /// `relaxed` write left unsynced is synced (before the metadata may depend on it).
    fn flush(&mut self) -> Result<(), StoreError>;
    /// While `hold` is true, a durable backend's writes and removals are not synced on
    /// their own account, nor its ledger writes: the store syncs them all at once with
    /// [`Backend::flush`] (a group commit). Returns whether the backend holds its syncs;
    /// one that cannot keeps syncing each write.
    fn hold_syncs(&mut self, hold: bool) -> bool {
        let _ = hold;
        false
    }
    /// Whether a write or removal made while holding is not synced yet.
    fn holds_unsynced(&self) -> bool {
        false
    }
    /// Syncs what was written while holding (every other durable write synced itself).
    fn sync_held(&mut self) -> Result<(), StoreError> {
        self.flush()
    }
    /// Whether [`Backend::write`]'s summary is stored (so worth sealing).
    fn keeps_summaries(&self) -> bool {
        false
    }
    /// The summaries gathered at open, once; `None` if this backend keeps none, and the
    /// store must read every blob to index it.
    fn take_summaries(&mut self) -> Option<Summaries> {
        None
    }
    /// Gives the backend what seals its hints' index blocks, replacing any it had: the
    /// store lends it at open and again whenever its key ring changes.
    fn lend_sealer(&mut self, sealer: Box<dyn IndexSealer>) {
        drop(sealer);
    }
    /// The sealed bytes of `block`, one of those the summaries' blocks named; `None` if
    /// its hint is gone or shorter than it was (the store then reads the block's
    /// sessions one by one).
    fn read_block(&self, block: &SealedBlock) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = block;
        Ok(None)
    }
    /// Whether the latest record of `id`'s blob (or, with `stamp`, its stamp) has
    /// sequence number `seq`: which items of an index block still count.
    fn is_latest(&self, id: &str, seq: u64, stamp: bool) -> bool {
        let _ = (id, seq, stamp);
        false
    }
}

/// Which backend keeps a store's sessions; recorded in its metadata when it is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// One file per session ([`Files`]).
    Files,
    /// Records appended to segment files ([`crate::backend::log::Log`]): the default for new stores.
    #[default]
    Log,
    /// Records in a shared key-value bucket (the bucket store), not a directory.
    Redis,
}

impl BackendKind {
    /// The name used in the metadata, the WIT and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Files => "files",
            BackendKind::Log => "log",
            BackendKind::Redis => "redis",
        }
    }

    /// The error of opening a store that keeps its sessions in `self` as `requested`.
    pub fn mismatch(self, requested: BackendKind) -> StoreError {
        StoreError::InvalidInput(format!(
            "this store keeps its sessions in the {} backend, not {}; `migrate` moves it",
            self.name(),
            requested.name()
        ))
    }
}

/// How much of a session write is on disk when it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The file and the directory are synced before a write or removal returns: an
    /// acknowledged change survives a crash or a power loss.
    #[default]
    Durable,
    /// Nothing is synced (what the original store did). A process crash loses nothing the
    /// OS accepted; a power loss or kernel crash can lose recent changes, or leave a
    /// recently written file empty (then quarantined at open as damaged).
    Relaxed,
}
