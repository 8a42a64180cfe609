//! The `log` backend: sessions appended as records to segment files, found through an
//! in-memory key directory (the design of Bitcask). A write is one append (and one sync
//! when durable) to a file that is already open, instead of a new file per write.
//!
//! ```text
//! <store>/log/<16 hex>.seg     segments, numbered in creation order (see record.rs)
//! <store>/log/<16 hex>.hint    the hint of each closed segment (see hint.rs)
//! ```
//!
//! The latest record of an id by sequence number wins, wherever it is, so compaction may
//! copy records to a new segment without changing their order. Open reads the hint of
//! each closed segment and replays the rest; a record that fails its CRC at the end of
//! the newest segment is a torn append and is cut off; one anywhere else is copied to
//! `quarantine/` and skipped. Open also gathers each live session's sealed summary, so
//! the store indexes it without decrypting its blob.

mod append;
mod compact;
// The fuzz targets' entry points: for the fuzz crate (the `testing` feature).
#[cfg(any(test, feature = "testing"))]
#[allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
pub mod fuzzing;
mod hint;
mod names;
mod record;
mod replay;
mod scan;
mod usage;

use std::collections::{BTreeMap, HashMap};

pub use names::LOG_DIR;
use names::{hint_number, hint_path, segment_number, segment_path};

use crate::backend::disk;
use crate::backend::layout::{self, META_FILE, QUARANTINE_DIR};
use crate::backend::ledger::{LedgerFile, LedgerFiles, LedgerIo};
use crate::backend::{
    Backend, BackendKind, Compaction, Durability, IndexSealer, Listing, SealedBlock, Summaries,
    Usage,
};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::seal::crypto;
use hint::Entry;
use record::Kind;

/// Bytes before a record's id.
pub const RECORD_HEADER: usize = record::HEADER;
/// A segment is closed (and its hint written) and a new one started past this size: the
/// close seals its hint's index block in one call, so a smaller segment is a shorter
/// pause for the write that closes it. It also bounds what open replays record by record:
/// the newest segment.
pub const SEGMENT_LIMIT: u64 = 4 << 20;
/// The longest segment a reader accepts (plus one record): stores written before 0.2
/// closed their segments at 16 MiB.
pub const SEGMENT_MAX: u64 = 16 << 20;
/// Compaction runs after a write once this much of the segments is dead...
const COMPACT_DEAD_BYTES: u64 = 1 << 20;
/// ...and the segments hold less than this...
const COMPACT_MIN_BYTES: u64 = 16 << 20;
/// ...or less than this fraction of their bytes is live...
const COMPACT_LIVE_RATIO: f64 = 0.5;
/// ...or less than this fraction of their records. Records count on their own because
/// open reads an entry of every record in the hints, dead or not: many small dead stamps
/// slow every open while taking little space. With at most two dead records for each
/// live one, open time follows the live sessions, not the log's history, and a run of
/// removals (each kills a put and a stamp and adds a tombstone) does not compact much
/// more often than the bytes alone would.
const COMPACT_LIVE_RECORDS_RATIO: f64 = 1.0 / 3.0;

/// Where the latest record of an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    segment: u64,
    /// Offset of the record's header.
    offset: u64,
    id_len: u8,
    payload_len: u32,
    /// A put's summary length: its blob starts after it.
    summary_len: u16,
    seq: u64,
}

impl Location {
    fn of(segment: u64, entry: &Entry<'_>) -> Self {
        Location {
            segment,
            offset: entry.offset,
            // Ids are at most 128 bytes, summaries at most u16::MAX (record::put_payload).
            id_len: u8::try_from(entry.id.len()).unwrap_or(u8::MAX),
            payload_len: entry.payload_len,
            summary_len: entry.summary_len,
            seq: entry.seq,
        }
    }

    fn record_len(&self) -> u64 {
        (RECORD_HEADER + usize::from(self.id_len)) as u64 + u64::from(self.payload_len)
    }

    fn payload_offset(&self) -> u64 {
        self.offset + (RECORD_HEADER + usize::from(self.id_len)) as u64
    }
}

struct Segment<F> {
    file: F,
    len: u64,
    /// Records in it, live or not: what its hint lists, and what open reads of it.
    records: u64,
}

/// What open gathers for the store: the sealed summary or stamp of a record, by sequence
/// number, so only the latest record's survives.
type Gathered = HashMap<String, (u64, Vec<u8>)>;

/// The `log` backend over a store directory.
pub struct Log<D: Dir> {
    dir: D,
    durability: Durability,
    segments: BTreeMap<u64, Segment<D::File>>,
    /// id → its latest put.
    sessions: HashMap<String, Location>,
    /// id → its latest stamp.
    stamps: HashMap<String, Location>,
    next_seq: u64,
    /// Bytes of the records `sessions` and `stamps` point to.
    live_bytes: u64,
    /// Entries that are not ours, in the store directory and in `log/`.
    foreign: u64,
    segment_limit: u64,
    /// The summaries gathered at open, until the store takes them.
    summaries: Option<Box<Summaries>>,
    /// What seals the index block of each hint written, once the store has lent it.
    sealer: Option<Box<dyn IndexSealer>>,
    /// While a compaction pass is under way: the first segment it started, past which
    /// segments are not its work.
    compacting: Option<u64>,
    /// The segment that pass is emptying, with its live records still to move.
    moving: Option<Box<compact::Moving>>,
    /// The hint entries of the newest segment, gathered as its records are appended, and
    /// how many of its bytes are synced: closing it then writes its hint without reading
    /// it back, and syncs little. `None` for a segment this open did not start.
    active: Option<Box<append::Active>>,
    ledger: LedgerFile<D::File>,
    /// Whether durable appends and ledger writes wait for the store's flush (see
    /// [`Backend::hold_syncs`]).
    held: bool,
    /// The first segment holding a durable append not synced yet because held: where
    /// the flush's sync starts (closed segments before it were synced when closed).
    held_from: Option<u64>,
}

/// Removes every segment and hint, and `log/` itself if nothing else is in it (after a
/// migration away from the log, or to undo an interrupted one towards it).
pub(crate) fn discard<D: Dir>(dir: &D) -> Result<(), StoreError> {
    let entries = dir
        .entries(LOG_DIR)
        .map_err(|e| StoreError::io(format!("listing {LOG_DIR}/"), e))?
        .unwrap_or_default();
    let mut others = false;
    for entry in entries {
        let ours = segment_number(&entry.name)
            .or_else(|| hint_number(&entry.name))
            .is_some()
            || layout::is_temp_name(&entry.name);
        if entry.is_file && ours {
            let path = format!("{LOG_DIR}/{}", entry.name);
            dir.remove(&path)
                .map_err(|e| StoreError::io(format!("removing {path}"), e))?;
        } else {
            others = true;
        }
    }
    if !others {
        dir.remove_dir(LOG_DIR)
            .map_err(|e| StoreError::io(format!("removing {LOG_DIR}/"), e))?;
    }
    dir.sync("")
        .map_err(|e| StoreError::io("syncing the store directory", e))
}

impl<D: Dir> Log<D> {
    /// The directory this backend writes to.
    pub fn dir(&self) -> &D {
        &self.dir
    }

    /// Syncs every open segment: what a relaxed write left unsynced becomes durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.sync_from(0)
    }

    /// Syncs the open segments numbered `first` and after.
    fn sync_from(&self, first: u64) -> Result<(), StoreError> {
        for (&number, segment) in self.segments.range(first..) {
            self.dir
                .sync_file(&segment.file)
                .map_err(|e| StoreError::io(format!("syncing {}", segment_path(number)), e))?;
        }
        Ok(())
    }

    /// Opens (or starts) the log in `dir`: reads the hint of each closed segment and
    /// replays the rest, cutting a torn tail off the newest and quarantining damaged
    /// records elsewhere.
    pub fn open(dir: D, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with_segment_limit(dir, durability, SEGMENT_LIMIT)
    }

    /// [`Log::open`] with segments closed past `limit` bytes instead of
    /// the 16 MiB `SEGMENT_LIMIT`: small segments make tests roll over and write hints
    /// often.
    pub fn open_with_segment_limit(
        dir: D,
        durability: Durability,
        limit: u64,
    ) -> Result<Self, StoreError> {
        // `log/` is created with the first segment: an open writes nothing it need not.
        let mut log = Log {
            dir,
            durability,
            segments: BTreeMap::new(),
            sessions: HashMap::new(),
            stamps: HashMap::new(),
            next_seq: 1,
            live_bytes: 0,
            foreign: 0,
            segment_limit: limit,
            summaries: None,
            sealer: None,
            compacting: None,
            moving: None,
            active: None,
            ledger: LedgerFile::default(),
            held: false,
            held_from: None,
        };
        log.replay()?;
        Ok(log)
    }

    /// Reads `len` bytes at `skip` into the payload of the record at `location`.
    fn read_payload(
        &self,
        location: &Location,
        skip: u64,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        self.read_payload_with(location, skip, limit, |file, at, len| {
            self.dir.read_at(file, at, len)
        })
    }

    /// [`Log::read_payload`], reading the bytes with `read` (e.g. through a read-ahead).
    fn read_payload_with(
        &self,
        location: &Location,
        skip: u64,
        limit: u64,
        read: impl FnOnce(&D::File, u64, usize) -> std::io::Result<Vec<u8>>,
    ) -> Result<Vec<u8>, StoreError> {
        let path = segment_path(location.segment);
        let len = u64::from(location.payload_len)
            .checked_sub(skip)
            .ok_or_else(|| {
                StoreError::Corrupted(format!("{path}: a record shorter than its summary"))
            })?;
        if len > limit {
            return Err(StoreError::Corrupted(format!(
                "{path}: a record of {len} bytes is longer than the {limit}-byte limit"
            )));
        }
        let segment = self
            .segments
            .get(&location.segment)
            .ok_or_else(|| StoreError::Corrupted(format!("{path} is not open")))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let bytes = read(&segment.file, location.payload_offset() + skip, len)
            .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
        if bytes.len() != len {
            return Err(StoreError::Corrupted(format!(
                "{path}: a record ends past the end of the file"
            )));
        }
        Ok(bytes)
    }

    /// Reads the blob of the put at `location`.
    fn read_blob(&self, location: &Location, limit: u64) -> Result<Vec<u8>, StoreError> {
        let skip = (record::SUMMARY_LEN_BYTES + usize::from(location.summary_len)) as u64;
        self.read_payload(location, skip, limit)
    }

    fn total_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.len).sum()
    }

    /// Records in the segments, live or not.
    fn total_records(&self) -> u64 {
        self.segments.values().map(|s| s.records).sum()
    }

    /// Records the key directory points to.
    fn live_records(&self) -> u64 {
        (self.sessions.len() + self.stamps.len()) as u64
    }

    fn forget(&mut self, location: Option<Location>) {
        if let Some(location) = location {
            self.live_bytes = self.live_bytes.saturating_sub(location.record_len());
        }
    }
}

impl<D: Dir> Backend for Log<D> {
    fn kind(&self) -> BackendKind {
        BackendKind::Log
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn ledger(&mut self) -> Box<dyn LedgerIo + '_> {
        Box::new(LedgerFiles {
            dir: &self.dir,
            file: &mut self.ledger,
            // Held frames are synced by the flush, after the appends they record.
            durability: if self.held {
                Durability::Relaxed
            } else {
                self.durability
            },
        })
    }

    fn recover(&mut self) -> Result<u64, StoreError> {
        disk::remove_leftovers(&self.dir, &disk::root_entries(&self.dir)?)
    }

    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        disk::read_meta(&self.dir)
    }

    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        disk::replace(&self.dir, META_FILE, bytes, Durability::Durable)
    }

    fn read(&mut self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.sessions.get(id) {
            Some(location) => self.read_blob(location, limit).map(Some),
            None => Ok(None),
        }
    }

    fn write(&mut self, id: &str, blob: &[u8], summary: &[u8]) -> Result<(), StoreError> {
        let payload = record::put_payload(summary, blob)?;
        // put_payload refused a summary longer than u16::MAX.
        let summary_len = u16::try_from(summary.len()).unwrap_or(u16::MAX);
        self.put(Kind::Put, id, &payload, summary_len, true)
    }

    fn remove(&mut self, id: &str) -> Result<bool, StoreError> {
        if !self.sessions.contains_key(id) && !self.stamps.contains_key(id) {
            return Ok(false);
        }
        self.append(Kind::Tombstone, id, &[], 0, true)?;
        let existed = self.sessions.remove(id);
        let stamp = self.stamps.remove(id);
        self.forget(stamp);
        let found = existed.is_some();
        self.forget(existed);
        self.maybe_compact();
        Ok(found)
    }

    fn list(&mut self) -> Result<Listing, StoreError> {
        let mut ids: Vec<String> = self.sessions.keys().cloned().collect();
        ids.sort_unstable();
        let mut stamps: Vec<String> = self.stamps.keys().cloned().collect();
        stamps.sort_unstable();
        Ok(Listing {
            ids,
            stamps,
            foreign: self.foreign()?,
        })
    }

    fn read_stamp(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.stamps.get(id) {
            Some(location) => self
                .read_payload(location, 0, crate::seal::stamp::LEN as u64)
                .map(Some),
            None => Ok(None),
        }
    }

    fn write_stamp(&mut self, id: &str, stamp: &[u8]) -> Result<(), StoreError> {
        // Like the files backend's stamps: never synced on its own account.
        self.put(Kind::Stamp, id, stamp, 0, false)
    }

    fn remove_stamp(&mut self, id: &str) -> Result<bool, StoreError> {
        // A stamp left in the log is void once its session changes or goes; compaction
        // drops the record.
        let previous = self.stamps.remove(id);
        let found = previous.is_some();
        self.forget(previous);
        Ok(found)
    }

    fn quarantine(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(location) = self.sessions.get(id).copied() else {
            return Ok(());
        };
        let bytes = self.read_payload(&location, 0, record::MAX_PAYLOAD as u64)?;
        let mut suffix = [0u8; 8];
        crypto::random(&mut suffix)?;
        let name = format!(
            "{QUARANTINE_DIR}/{}.{}",
            layout::session_name(id),
            hex::encode(suffix)
        );
        crate::fs::create_dirs(&self.dir, QUARANTINE_DIR)
            .map_err(|e| StoreError::io(format!("creating {QUARANTINE_DIR}/"), e))?;
        disk::replace(&self.dir, &name, &bytes, Durability::Durable)?;
        self.append(Kind::Tombstone, id, &[], 0, true)?;
        let previous = self.sessions.remove(id);
        self.forget(previous);
        Ok(())
    }

    fn quarantined(&mut self) -> Result<u64, StoreError> {
        disk::quarantined(&self.dir)
    }

    fn compact(&mut self) -> Result<(), StoreError> {
        if self.total_bytes() > self.live_bytes || self.compacting.is_some() {
            self.compact_now()?;
        }
        Ok(())
    }

    fn compact_step(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        if self.total_bytes() == self.live_bytes && self.compacting.is_none() {
            return Ok(Compaction::default());
        }
        self.compact_segments(limit.max(1))
    }

    fn usage(&mut self) -> Result<Usage, StoreError> {
        Ok(Usage {
            dead_bytes: self.total_bytes().saturating_sub(self.live_bytes),
            key_ids: self.key_ids_on_disk()?,
        })
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.sync()?;
        self.ledger.sync(&self.dir)
    }

    fn hold_syncs(&mut self, hold: bool) -> bool {
        self.held = hold;
        true
    }

    fn holds_unsynced(&self) -> bool {
        self.held_from.is_some()
    }

    fn sync_held(&mut self) -> Result<(), StoreError> {
        if let Some(first) = self.held_from.take()
            && let Err(error) = self.sync_from(first)
        {
            self.held_from = Some(first);
            return Err(error);
        }
        Ok(())
    }

    fn keeps_summaries(&self) -> bool {
        true
    }

    fn take_summaries(&mut self) -> Option<Summaries> {
        let mut summaries = self.summaries.take()?;
        // Best effort: an unlistable root shows up at the store's next listing.
        summaries.foreign = self.foreign().unwrap_or(self.foreign);
        Some(*summaries)
    }

    fn lend_sealer(&mut self, sealer: Box<dyn IndexSealer>) {
        self.sealer = Some(sealer);
    }

    fn read_block(&self, block: &SealedBlock) -> Result<Option<Vec<u8>>, StoreError> {
        let path = hint_path(block.segment);
        let Some(file) = (self.dir.open_file(&path, false))
            .map_err(|e| StoreError::io(format!("opening {path}"), e))?
        else {
            return Ok(None);
        };
        // `len` came from a hint read under a length limit: a bounded read.
        let bytes = (self.dir.read_at(&file, block.offset, block.len))
            .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
        Ok((bytes.len() == block.len).then_some(bytes))
    }

    fn is_latest(&self, id: &str, seq: u64, stamp: bool) -> bool {
        let latest = if stamp { &self.stamps } else { &self.sessions };
        latest.get(id).is_some_and(|l| l.seq == seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdDir;
    use names::HINT_EXT;

    pub(super) fn open(path: &std::path::Path) -> Log<StdDir> {
        Log::open(StdDir::new(path), Durability::Durable).unwrap()
    }

    pub(super) fn segment(path: &std::path::Path) -> std::path::PathBuf {
        path.join(LOG_DIR).join(format!("{:016x}.seg", 1))
    }

    pub(super) fn small(path: &std::path::Path) -> Log<StdDir> {
        Log::open_with_segment_limit(StdDir::new(path), Durability::Durable, 256).unwrap()
    }

    pub(super) fn hints(path: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path.join(LOG_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(HINT_EXT))
            .collect();
        names.sort();
        names
    }

    /// Writes 20 sessions with summaries over segments of 256 bytes, deletes one, stamps one.
    pub(super) fn fill(path: &std::path::Path) {
        let mut log = small(path);
        for i in 0..20 {
            let id = format!("s{i:02}");
            log.write(
                &id,
                format!("blob-{i}").as_bytes(),
                format!("sum-{i}").as_bytes(),
            )
            .unwrap();
        }
        log.write_stamp("s03", b"stamp").unwrap();
        log.remove("s05").unwrap();
    }

    #[test]
    fn records_survive_reopen_and_the_latest_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        log.write("a", b"one", b"").unwrap();
        log.write("b", b"bee", b"").unwrap();
        log.write("a", b"two", b"").unwrap();
        log.write_stamp("b", b"stamp").unwrap();
        assert!(log.remove("b").unwrap());
        assert!(!log.remove("b").unwrap());
        drop(log);
        let mut log = open(tmp.path());
        assert_eq!(log.read("a", 100).unwrap(), Some(b"two".to_vec()));
        assert_eq!(log.read("b", 100).unwrap(), None);
        assert_eq!(log.read_stamp("b").unwrap(), None);
        assert_eq!(log.list().unwrap().ids, vec!["a"]);
    }
}
