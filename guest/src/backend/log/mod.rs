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

mod hint;
mod record;

use std::collections::{BTreeMap, HashMap};

use crate::backend::disk;
use crate::backend::layout::{self, META_FILE, QUARANTINE_DIR};
use crate::backend::{Backend, BackendKind, Durability, Listing, Summaries};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::seal::crypto;
use hint::Entry;
use record::Kind;

/// The subdirectory that holds the segments.
pub const LOG_DIR: &str = "log";
const SEGMENT_EXT: &str = ".seg";
const HINT_EXT: &str = ".hint";
/// Bytes before a record's id.
pub const RECORD_HEADER: usize = record::HEADER;
/// A segment is closed (and its hint written) and a new one started past this size. It
/// also bounds what open replays record by record: the newest segment.
const SEGMENT_LIMIT: u64 = 16 << 20;
/// Compaction runs after a write once the segments hold this much...
const COMPACT_MIN_BYTES: u64 = 16 << 20;
/// ...and less than this fraction of it is live.
const COMPACT_LIVE_RATIO: f64 = 0.5;

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
            summary_len: match entry.kind {
                Kind::Put => u16::try_from(entry.extra.len()).unwrap_or(u16::MAX),
                _ => 0,
            },
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
}

/// Points `latest[id]` at `location` and keeps its `extra` bytes if it is newer than what
/// is there. Replay goes newest segment first, so most older records fail this test
/// without allocating anything.
fn newer(
    latest: &mut HashMap<String, Location>,
    gathered: &mut Gathered,
    id: &str,
    location: Location,
    extra: &[u8],
) {
    match latest.get_mut(id) {
        Some(current) if current.seq >= location.seq => return,
        Some(current) => *current = location,
        None => {
            latest.insert(id.to_owned(), location);
        }
    }
    match gathered.get_mut(id) {
        Some((seq, bytes)) => {
            *seq = location.seq;
            bytes.clear();
            bytes.extend_from_slice(extra);
        }
        None => {
            gathered.insert(id.to_owned(), (location.seq, extra.to_vec()));
        }
    }
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

    /// How durable its writes are.
    pub fn durability(&self) -> Durability {
        self.durability
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
        Self::open_with_limit(dir, durability, SEGMENT_LIMIT)
    }

    fn open_with_limit(dir: D, durability: Durability, limit: u64) -> Result<Self, StoreError> {
        dir.create_dir(LOG_DIR)
            .map_err(|e| StoreError::io(format!("creating {LOG_DIR}/"), e))?;
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
        };
        log.replay()?;
        Ok(log)
    }

    fn replay(&mut self) -> Result<(), StoreError> {
        let entries = self
            .dir
            .entries(LOG_DIR)
            .map_err(|e| StoreError::io(format!("listing {LOG_DIR}/"), e))?
            .unwrap_or_default();
        let mut numbers = Vec::new();
        let mut hints = Vec::new();
        for entry in entries {
            match (segment_number(&entry.name), hint_number(&entry.name)) {
                (Some(n), _) if entry.is_file => numbers.push(n),
                (_, Some(n)) if entry.is_file => hints.push(n),
                _ if entry.is_file && layout::is_temp_name(&entry.name) => {
                    // A hint write that never completed.
                    let path = format!("{LOG_DIR}/{}", entry.name);
                    self.dir
                        .remove(&path)
                        .map_err(|e| StoreError::io(format!("removing {path}"), e))?;
                }
                _ => self.foreign += 1,
            }
        }
        numbers.sort_unstable();
        hints.sort_unstable();
        for orphan in hints.iter().filter(|n| numbers.binary_search(n).is_err()) {
            // Its segment was compacted away before the hint went.
            let path = hint_path(*orphan);
            self.dir
                .remove(&path)
                .map_err(|e| StoreError::io(format!("removing {path}"), e))?;
        }
        let newest = numbers.last().copied();
        // Tombstones seen so far, so that an older put replayed later stays deleted.
        let mut deleted: HashMap<String, u64> = HashMap::new();
        let mut summaries = Gathered::new();
        let mut stamps = Gathered::new();
        let mut gathered = (&mut deleted, &mut summaries, &mut stamps);
        // Newest first: the latest record of most ids comes first (see `newer`).
        for number in numbers.into_iter().rev() {
            let path = segment_path(number);
            let file = self
                .dir
                .open_file(&path, false)
                .map_err(|e| StoreError::io(format!("opening {path}"), e))?
                .ok_or_else(|| StoreError::Corrupted(format!("{path} vanished during open")))?;
            let len = self
                .dir
                .file_len(&file)
                .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
            let closed = Some(number) != newest;
            if closed && hints.binary_search(&number).is_ok() {
                let bytes = self.read_hint(number)?;
                if let Some(entries) = bytes.as_deref().and_then(|b| hint::decode(b, len)) {
                    for entry in &entries {
                        self.apply(number, entry, &mut gathered);
                    }
                    self.segments.insert(number, Segment { file, len });
                    continue;
                }
            }
            let bytes = self
                .dir
                .read_at(&file, 0, usize::try_from(len).unwrap_or(usize::MAX))
                .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
            let mut end = bytes.len() as u64;
            let mut pos = 0usize;
            let mut replayed = Vec::new();
            while pos < bytes.len() {
                match record::parse(&bytes, pos) {
                    Some(record) => {
                        let entry = Entry::of(&record, pos as u64);
                        self.apply(number, &entry, &mut gathered);
                        replayed.push(entry);
                        pos += record.len;
                    }
                    None => {
                        let next = record::next(&bytes, pos + 1);
                        if next.is_none() && !closed {
                            // A torn append: the write never completed, so it was never
                            // acknowledged. Cut it off so appends continue from here.
                            self.dir
                                .truncate(&file, pos as u64)
                                .and_then(|()| self.dir.sync_file(&file))
                                .map_err(|e| StoreError::io(format!("truncating {path}"), e))?;
                            end = pos as u64;
                            break;
                        }
                        let stop = next.unwrap_or(bytes.len());
                        self.quarantine_bytes(
                            number,
                            pos,
                            bytes.get(pos..stop).unwrap_or_default(),
                        )?;
                        pos = stop;
                    }
                }
            }
            self.segments.insert(number, Segment { file, len: end });
            if closed {
                // A closed segment without a usable hint (a crash before it was written,
                // or damage): write it now, so the next open skips the replay.
                self.write_hint(number, end, &replayed)?;
            }
        }
        self.live_bytes = (self.sessions.values())
            .chain(self.stamps.values())
            .map(Location::record_len)
            .sum();
        self.summaries = Some(Box::new(self.summaries_of(summaries, stamps)));
        Ok(())
    }

    /// Points the key directory at `entry` of segment `number` if it is the latest of its
    /// id, gathering its summary or stamp.
    fn apply(
        &mut self,
        number: u64,
        entry: &Entry<'_>,
        (deleted, summaries, stamps): &mut (
            &mut HashMap<String, u64>,
            &mut Gathered,
            &mut Gathered,
        ),
    ) {
        self.next_seq = self.next_seq.max(entry.seq.saturating_add(1));
        let location = Location::of(number, entry);
        let id = entry.id;
        let seq = entry.seq;
        let gone = deleted.get(id).copied().unwrap_or(0);
        if seq <= gone {
            return;
        }
        match entry.kind {
            Kind::Put => newer(&mut self.sessions, summaries, id, location, entry.extra),
            Kind::Stamp => newer(&mut self.stamps, stamps, id, location, entry.extra),
            Kind::Tombstone => {
                deleted.insert(id.to_owned(), seq);
                if self.sessions.get(id).is_some_and(|l| l.seq < seq) {
                    self.sessions.remove(id);
                    summaries.remove(id);
                }
                if self.stamps.get(id).is_some_and(|l| l.seq < seq) {
                    self.stamps.remove(id);
                    stamps.remove(id);
                }
            }
        }
    }

    /// The summaries for the store: those of the latest put and stamp of each live id.
    /// `newer` gathered exactly one entry per id of `sessions` and `stamps` (and tombstones
    /// removed both), so the gathered ids move over without being copied.
    fn summaries_of(&self, summaries: Gathered, stamps: Gathered) -> Summaries {
        let latest = |map: &HashMap<String, Location>, id: &str, seq: u64| {
            map.get(id).is_some_and(|l| l.seq == seq)
        };
        let mut sessions: Vec<(String, Option<Vec<u8>>)> = (summaries.into_iter())
            .filter(|(id, (seq, _))| latest(&self.sessions, id, *seq))
            .map(|(id, (_, bytes))| (id, (!bytes.is_empty()).then_some(bytes)))
            .collect();
        if sessions.len() != self.sessions.len() {
            // Never expected; if it happens the store reads the missing sessions in full
            // rather than leaving them out of its index.
            let have: std::collections::HashSet<&str> =
                sessions.iter().map(|(id, _)| id.as_str()).collect();
            let missing: Vec<String> = (self.sessions.keys())
                .filter(|id| !have.contains(id.as_str()))
                .cloned()
                .collect();
            sessions.extend(missing.into_iter().map(|id| (id, None)));
        }
        let stamps = (stamps.into_iter())
            .filter(|(id, (seq, _))| latest(&self.stamps, id, *seq))
            .map(|(id, (_, bytes))| (id, bytes))
            .collect();
        Summaries {
            sessions,
            stamps,
            foreign: 0,
        }
    }

    /// Reads the hint of segment `number`, or `None` if it has none. A hint is far smaller
    /// than its segment; twice the segment limit bounds what is read of a hostile one.
    fn read_hint(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = hint_path(number);
        self.dir
            .read(&path, self.segment_limit.max(SEGMENT_LIMIT) * 2)
            .map_err(|e| StoreError::io(format!("reading {path}"), e))
    }

    /// Durably writes the hint of segment `number`, `len` bytes long, holding `entries`.
    /// The segment is synced first: a hint must never describe bytes a crash can lose.
    fn write_hint(&self, number: u64, len: u64, entries: &[Entry<'_>]) -> Result<(), StoreError> {
        if let Some(segment) = self.segments.get(&number) {
            self.dir
                .sync_file(&segment.file)
                .map_err(|e| StoreError::io(format!("syncing {}", segment_path(number)), e))?;
        }
        disk::replace(
            &self.dir,
            &hint_path(number),
            &hint::encode(len, entries),
            Durability::Durable,
        )
    }

    /// Writes the hint of the open segment `number` from its records on disk.
    fn close_segment(&self, number: u64) -> Result<(), StoreError> {
        let path = segment_path(number);
        let Some(segment) = self.segments.get(&number) else {
            return Ok(());
        };
        let bytes = self
            .dir
            .read_at(
                &segment.file,
                0,
                usize::try_from(segment.len).unwrap_or(usize::MAX),
            )
            .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
        let mut entries = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            match record::parse(&bytes, pos) {
                Some(record) => {
                    entries.push(Entry::of(&record, pos as u64));
                    pos += record.len;
                }
                // Damage since open: no hint, so the next open replays (and quarantines) it.
                None => return Ok(()),
            }
        }
        self.write_hint(number, segment.len, &entries)
    }

    /// Copies damaged bytes of a segment to `quarantine/` (never silently dropped).
    fn quarantine_bytes(
        &self,
        segment: u64,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let name = format!("{QUARANTINE_DIR}/{segment:016x}.seg.{offset:016x}.damaged");
        self.dir
            .create_dir(QUARANTINE_DIR)
            .map_err(|e| StoreError::io(format!("creating {QUARANTINE_DIR}/"), e))?;
        // Replayed again at every open until compaction drops it: write it once.
        if self
            .dir
            .read(&name, bytes.len() as u64)
            .is_ok_and(|found| found.is_some())
        {
            return Ok(());
        }
        disk::replace(&self.dir, &name, bytes, Durability::Durable)
    }

    /// Appends a record; returns where it went. Syncs when durable and `sync`.
    fn append(
        &mut self,
        kind: Kind,
        id: &str,
        payload: &[u8],
        summary_len: u16,
        sync: bool,
    ) -> Result<Location, StoreError> {
        let seq = self.next_seq;
        let bytes = record::encode(kind, id, payload, seq)?;
        // Never reused, even after a failed append: a record that reached the disk before
        // its append failed must not tie with a later one.
        self.next_seq += 1;
        let (number, offset) = self.write_record(&bytes)?;
        if sync
            && self.durability == Durability::Durable
            && let Err(error) = self.sync_from(number)
        {
            self.undo(number, offset);
            return Err(error);
        }
        Ok(Location {
            segment: number,
            offset,
            id_len: u8::try_from(id.len()).unwrap_or(u8::MAX),
            payload_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            summary_len,
            seq,
        })
    }

    /// Writes an encoded record at the end of the active segment; returns the segment's
    /// number and the record's offset.
    fn write_record(&mut self, record: &[u8]) -> Result<(u64, u64), StoreError> {
        let number = self.active()?;
        let path = segment_path(number);
        let segment = self
            .segments
            .get(&number)
            .ok_or_else(|| StoreError::Corrupted(format!("{path} is not open")))?;
        let offset = segment.len;
        if let Err(error) = self.dir.write_at(&segment.file, offset, record) {
            self.undo(number, offset);
            return Err(StoreError::io(format!("appending to {path}"), error));
        }
        if let Some(segment) = self.segments.get_mut(&number) {
            segment.len += record.len() as u64;
        }
        Ok((number, offset))
    }

    /// Takes back a failed append: cuts segment `number` to `offset`, where the record
    /// started. Best effort: if the cut fails too, the next append overwrites the partial
    /// record in place, and open treats one left at the end as a torn tail.
    fn undo(&mut self, number: u64, offset: u64) {
        if let Some(segment) = self.segments.get_mut(&number) {
            segment.len = offset;
            let _ = self.dir.truncate(&segment.file, offset);
        }
    }

    /// Appends a put or a stamp for `id` and points the key directory at it.
    fn put(
        &mut self,
        kind: Kind,
        id: &str,
        payload: &[u8],
        summary_len: u16,
        sync: bool,
    ) -> Result<(), StoreError> {
        let location = self.append(kind, id, payload, summary_len, sync)?;
        self.live_bytes += location.record_len();
        let latest = match kind {
            Kind::Stamp => &mut self.stamps,
            _ => &mut self.sessions,
        };
        let previous = latest.insert(id.to_owned(), location);
        self.forget(previous);
        self.maybe_compact();
        Ok(())
    }

    /// The segment appends go to, closing a full one and starting the next.
    fn active(&mut self) -> Result<u64, StoreError> {
        match self.segments.last_key_value() {
            Some((&number, segment)) if segment.len < self.segment_limit => Ok(number),
            last => {
                let last = last.map(|(&n, _)| n);
                if let Some(full) = last {
                    self.close_segment(full)?;
                }
                let number = last.map_or(1, |n| n + 1);
                self.start_segment(number)?;
                Ok(number)
            }
        }
    }

    fn start_segment(&mut self, number: u64) -> Result<(), StoreError> {
        let path = segment_path(number);
        let file = self
            .dir
            .open_file(&path, true)
            .map_err(|e| StoreError::io(format!("creating {path}"), e))?
            .ok_or_else(|| StoreError::Corrupted(format!("{path} could not be created")))?;
        // The new name must survive a crash before anything acknowledged is written to it.
        self.dir
            .sync(LOG_DIR)
            .map_err(|e| StoreError::io(format!("syncing {LOG_DIR}/"), e))?;
        self.segments.insert(number, Segment { file, len: 0 });
        Ok(())
    }

    /// Reads `len` bytes at `skip` into the payload of the record at `location`.
    fn read_payload(
        &self,
        location: &Location,
        skip: u64,
        limit: u64,
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
        let bytes = self
            .dir
            .read_at(&segment.file, location.payload_offset() + skip, len)
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

    fn forget(&mut self, location: Option<Location>) {
        if let Some(location) = location {
            self.live_bytes = self.live_bytes.saturating_sub(location.record_len());
        }
    }

    /// Compacts when the segments are big enough and mostly dead. Called after a write
    /// that succeeded, so a failed compaction is not that write's failure: nothing is lost
    /// (see [`Log::compact_now`]) and the next write tries again; `cleanup` reports it.
    fn maybe_compact(&mut self) {
        let total = self.total_bytes();
        if total >= COMPACT_MIN_BYTES
            && (self.live_bytes as f64) < COMPACT_LIVE_RATIO * total as f64
        {
            let _ = self.compact_now();
        }
    }

    /// Rewrites every live record into new segments, then removes the old ones, oldest
    /// first, so a crash at any point leaves every acknowledged write and no deleted one:
    /// old records that survive a crash are outranked by sequence number, and a tombstone
    /// is only dropped with (after) every older segment.
    fn compact_now(&mut self) -> Result<(), StoreError> {
        let old: Vec<u64> = self.segments.keys().copied().collect();
        let first_new = old.last().map_or(1, |n| n + 1);
        self.start_segment(first_new)?;
        let mut moves: Vec<(Kind, String, Location)> = (self.sessions.iter())
            .map(|(id, l)| (Kind::Put, id.clone(), *l))
            .chain(
                self.stamps
                    .iter()
                    .map(|(id, l)| (Kind::Stamp, id.clone(), *l)),
            )
            .collect();
        moves.sort_by_key(|(_, _, l)| l.seq);
        for (kind, id, location) in moves {
            let payload = self.read_payload(&location, 0, record::MAX_PAYLOAD as u64)?;
            // The record keeps its sequence number: order across segments is by seq.
            let bytes = record::encode(kind, &id, &payload, location.seq)?;
            let (number, offset) = self.write_record(&bytes)?;
            let moved = Location {
                segment: number,
                offset,
                ..location
            };
            match kind {
                Kind::Stamp => self.stamps.insert(id, moved),
                _ => self.sessions.insert(id, moved),
            };
        }
        // Every new segment is whole on disk before any old one goes.
        self.sync_from(first_new)?;
        for number in old {
            self.segments.remove(&number);
            for path in [segment_path(number), hint_path(number)] {
                self.dir
                    .remove(&path)
                    .map_err(|e| StoreError::io(format!("removing {path}"), e))?;
            }
            // One sync per segment keeps the removals in order, oldest first; a hint left
            // behind by a crash is an orphan, removed at open.
            self.dir
                .sync(LOG_DIR)
                .map_err(|e| StoreError::io(format!("syncing {LOG_DIR}/"), e))?;
        }
        self.live_bytes = self.total_bytes();
        Ok(())
    }
}

impl<D: Dir> Backend for Log<D> {
    fn kind(&self) -> BackendKind {
        BackendKind::Log
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
        self.dir
            .create_dir(QUARANTINE_DIR)
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
        if self.total_bytes() > self.live_bytes {
            self.compact_now()?;
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
}

impl<D: Dir> Log<D> {
    /// Entries that are not ours, in the store directory and in `log/`.
    fn foreign(&self) -> Result<u64, StoreError> {
        let mut foreign = self.foreign;
        for entry in disk::root_entries(&self.dir)? {
            let ours = (entry.name == META_FILE && entry.is_file)
                || ((entry.name == QUARANTINE_DIR || entry.name == LOG_DIR) && !entry.is_file);
            if !ours {
                foreign += 1;
            }
        }
        Ok(foreign)
    }
}

/// Entry points for the cargo-fuzz targets in `fuzz/` (built only with `--cfg fuzzing`).
#[cfg(fuzzing)]
#[allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
pub mod fuzzing {
    use super::{hint, record};

    /// Scans `bytes` as open's replay does, resynchronising after damage; every record it
    /// accepts must re-encode to exactly its bytes. Returns how many it accepted.
    pub fn scan(bytes: &[u8]) -> usize {
        let mut pos = 0;
        let mut found = 0;
        while pos < bytes.len() {
            match record::parse(bytes, pos) {
                Some(r) => {
                    let again = record::encode(r.kind, r.id, r.payload, r.seq).unwrap();
                    assert_eq!(again, bytes[pos..pos + r.len]);
                    found += 1;
                    pos += r.len;
                }
                None => match record::next(bytes, pos + 1) {
                    Some(next) => {
                        assert!(next > pos);
                        pos = next;
                    }
                    None => break,
                },
            }
        }
        found
    }

    /// Decodes `bytes` as a hint of the segment length it declares; an accepted hint must
    /// re-encode to exactly its bytes.
    pub fn hint(bytes: &[u8]) -> usize {
        let len = bytes
            .get(5..13)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
        match hint::decode(bytes, len) {
            Some(entries) => {
                assert_eq!(hint::encode(len, &entries), bytes);
                entries.len()
            }
            None => 0,
        }
    }
}

fn segment_path(number: u64) -> String {
    format!("{LOG_DIR}/{number:016x}{SEGMENT_EXT}")
}

fn hint_path(number: u64) -> String {
    format!("{LOG_DIR}/{number:016x}{HINT_EXT}")
}

/// The number of a segment file name, if it is one: 16 lowercase hex digits + `.seg`.
fn segment_number(name: &str) -> Option<u64> {
    numbered(name, SEGMENT_EXT)
}

/// The number of a hint file name, if it is one: 16 lowercase hex digits + `.hint`.
fn hint_number(name: &str) -> Option<u64> {
    numbered(name, HINT_EXT)
}

fn numbered(name: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_suffix(ext)?;
    if digits.len() != 16
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdDir;

    fn open(path: &std::path::Path) -> Log<StdDir> {
        Log::open(StdDir::new(path), Durability::Durable).unwrap()
    }

    fn segment(path: &std::path::Path) -> std::path::PathBuf {
        path.join(LOG_DIR).join(format!("{:016x}.seg", 1))
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

    #[test]
    fn a_torn_tail_is_cut_off_and_appends_continue() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        log.write("a", b"one", b"").unwrap();
        log.write("b", b"two", b"").unwrap();
        drop(log);
        let path = segment(tmp.path());
        let whole = std::fs::read(&path).unwrap();
        // Header, id, summary length, blob.
        let first = RECORD_HEADER + 1 + 2 + 3;
        for cut in first..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let mut log = open(tmp.path());
            assert_eq!(
                log.read("a", 10).unwrap(),
                Some(b"one".to_vec()),
                "cut at {cut}"
            );
            assert_eq!(log.read("b", 10).unwrap(), None, "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), first as u64);
            assert_eq!(log.quarantined().unwrap(), 0);
        }
        let mut log = open(tmp.path());
        log.write("c", b"three", b"").unwrap();
        drop(log);
        let mut log = open(tmp.path());
        assert_eq!(log.list().unwrap().ids, vec!["a", "c"]);
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_quarantined_and_the_rest_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        log.write("a", b"one", b"").unwrap();
        log.write("b", b"two", b"").unwrap();
        log.write("c", b"three", b"").unwrap();
        drop(log);
        let path = segment(tmp.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let second = RECORD_HEADER + 1 + 2 + 3;
        bytes[second + RECORD_HEADER + 3] ^= 0x01; // b's blob
        std::fs::write(&path, &bytes).unwrap();
        let mut log = open(tmp.path());
        assert_eq!(log.read("a", 10).unwrap(), Some(b"one".to_vec()));
        assert_eq!(log.read("b", 10).unwrap(), None);
        assert_eq!(log.read("c", 10).unwrap(), Some(b"three".to_vec()));
        assert_eq!(log.quarantined().unwrap(), 1);
        drop(log);
        // Reopening does not quarantine the same bytes twice.
        let mut log = open(tmp.path());
        assert_eq!(log.quarantined().unwrap(), 1);
        let kept = std::fs::read_dir(tmp.path().join(QUARANTINE_DIR))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(
            std::fs::read(kept.unwrap().path()).unwrap(),
            bytes[second..second + RECORD_HEADER + 6]
        );
    }

    #[test]
    fn compaction_keeps_exactly_the_live_records() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        for i in 0..50 {
            log.write(&format!("s{i}"), format!("v{i}").as_bytes(), b"")
                .unwrap();
        }
        for i in 0..50 {
            log.write(&format!("s{i}"), format!("w{i}").as_bytes(), b"")
                .unwrap();
        }
        for i in 0..25 {
            log.remove(&format!("s{i}")).unwrap();
        }
        log.write_stamp("s30", b"stamp").unwrap();
        let before = log.total_bytes();
        log.compact().unwrap();
        assert!(log.total_bytes() < before / 3);
        drop(log);
        let mut log = open(tmp.path());
        for i in 0..50 {
            let expected = (i >= 25).then(|| format!("w{i}").into_bytes());
            assert_eq!(log.read(&format!("s{i}"), 10).unwrap(), expected);
        }
        assert_eq!(log.read_stamp("s30").unwrap(), Some(b"stamp".to_vec()));
        assert_eq!(log.segments.len(), 1);
    }

    #[test]
    fn an_interrupted_compaction_resurrects_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        log.write("a", b"old", b"").unwrap();
        log.write("b", b"kept", b"").unwrap();
        log.active().unwrap();
        // Segment 2: a's deletion.
        log.start_segment(2).unwrap();
        log.remove("a").unwrap();
        // Compaction wrote segment 3 and removed segment 1, then crashed before 2 went:
        let bytes2 =
            std::fs::read(tmp.path().join(LOG_DIR).join(format!("{:016x}.seg", 2))).unwrap();
        log.compact().unwrap();
        drop(log);
        std::fs::write(
            tmp.path().join(LOG_DIR).join(format!("{:016x}.seg", 2)),
            &bytes2,
        )
        .unwrap();
        let mut log = open(tmp.path());
        assert_eq!(log.read("a", 10).unwrap(), None);
        assert_eq!(log.read("b", 10).unwrap(), Some(b"kept".to_vec()));
    }

    fn small(path: &std::path::Path) -> Log<StdDir> {
        Log::open_with_limit(StdDir::new(path), Durability::Durable, 256).unwrap()
    }

    fn hints(path: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path.join(LOG_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(HINT_EXT))
            .collect();
        names.sort();
        names
    }

    /// Writes 20 sessions with summaries over segments of 256 bytes, deletes one, stamps one.
    fn fill(path: &std::path::Path) {
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
    fn closed_segments_get_hints_that_open_uses_instead_of_their_records() {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        let segments =
            std::fs::read_dir(tmp.path().join(LOG_DIR)).unwrap().count() - hints(tmp.path()).len();
        assert!(segments >= 4, "{segments} segments");
        assert_eq!(
            hints(tmp.path()).len(),
            segments - 1,
            "every closed segment has a hint"
        );
        let mut log = small(tmp.path());
        let summaries = log.take_summaries().unwrap();
        assert_eq!(log.take_summaries(), None, "taken once");
        assert_eq!(summaries.sessions.len(), 19);
        for (id, summary) in &summaries.sessions {
            let i: u32 = id[1..].parse().unwrap();
            assert_eq!(
                summary.as_deref(),
                Some(format!("sum-{i}").as_bytes()),
                "{id}"
            );
            assert_eq!(
                log.read(id, 100).unwrap(),
                Some(format!("blob-{i}").into_bytes())
            );
        }
        assert_eq!(
            summaries.stamps,
            vec![("s03".to_owned(), b"stamp".to_vec())]
        );
        assert_eq!(log.read("s05", 100).unwrap(), None);
        // Proof that open read the hint, not the records: damage a blob in a closed
        // segment (same length) and the open neither notices nor quarantines it.
        let first = tmp.path().join(LOG_DIR).join(format!("{:016x}.seg", 1));
        let mut bytes = std::fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&first, &bytes).unwrap();
        drop(log);
        let mut log = small(tmp.path());
        assert_eq!(log.quarantined().unwrap(), 0);
        assert_eq!(log.take_summaries().unwrap().sessions.len(), 19);
    }

    #[test]
    fn a_damaged_stale_or_missing_hint_is_replaced_by_a_replay() {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        let expected = {
            let mut log = small(tmp.path());
            let mut summaries = log.take_summaries().unwrap();
            summaries.sessions.sort();
            summaries
        };
        let hint = tmp.path().join(LOG_DIR).join(&hints(tmp.path())[0]);
        let whole = std::fs::read(&hint).unwrap();
        let mut damaged = whole.clone();
        damaged[20] ^= 1;
        let mut stale = whole.clone();
        stale[5] ^= 1; // the segment length it describes
        for (case, bytes) in [
            ("damaged", Some(damaged)),
            ("stale", Some(stale)),
            ("missing", None),
        ] {
            match &bytes {
                Some(bytes) => std::fs::write(&hint, bytes).unwrap(),
                None => std::fs::remove_file(&hint).unwrap(),
            }
            let mut log = small(tmp.path());
            let mut summaries = log.take_summaries().unwrap();
            summaries.sessions.sort();
            assert_eq!(summaries, expected, "{case}");
            // The replay wrote the hint again.
            assert_eq!(std::fs::read(&hint).unwrap(), whole, "{case}");
        }
    }

    #[test]
    fn compaction_moves_hints_with_segments_and_orphans_go_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        let mut log = small(tmp.path());
        for i in 0..20 {
            log.remove(&format!("s{i:02}")).unwrap_or_default();
        }
        log.write("kept", b"blob", b"sum").unwrap();
        log.compact().unwrap();
        assert_eq!(hints(tmp.path()), Vec::<String>::new());
        drop(log);
        let orphan = tmp.path().join(LOG_DIR).join(format!("{:016x}.hint", 1));
        std::fs::write(&orphan, b"left by a crash").unwrap();
        let mut log = small(tmp.path());
        assert!(!orphan.exists());
        assert_eq!(log.list().unwrap().ids, vec!["kept"]);
        assert_eq!(log.list().unwrap().foreign, 0);
    }

    #[test]
    fn segment_names_are_recognised_exactly() {
        assert_eq!(hint_number("0000000000000001.hint"), Some(1));
        assert_eq!(segment_number("0000000000000001.hint"), None);
        assert_eq!(segment_number("0000000000000001.seg"), Some(1));
        assert_eq!(segment_number("000000000000000A.seg"), None);
        assert_eq!(segment_number("1.seg"), None);
        assert_eq!(segment_number("0000000000000001.seg.tmp"), None);
    }
}
