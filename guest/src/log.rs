//! The `log` backend: sessions appended as records to segment files, found through an
//! in-memory key directory (the design of Bitcask). A write is one append (and one sync
//! when durable) to a file that is already open, instead of a new file per write.
//!
//! ```text
//! <store>/log/<16 hex>.seg     segments, numbered in creation order
//!
//! record (all integers little-endian):
//!   0   4  magic "SVLR"
//!   4   1  kind: 1 put (a session file's bytes), 2 tombstone, 3 access stamp
//!   5   1  id length L (1..=128)
//!   6   4  payload length P
//!  10   8  sequence number (unique, increasing across the store's life)
//!  18   4  CRC-32 of bytes 4..18, the id and the payload
//!  22   L  id
//! 22+L  P  payload: for a put, exactly the bytes of a `files` session file (sealed,
//!          bound to its id, format version and key id); for a stamp, the 66-byte stamp
//! ```
//!
//! The latest record of an id by sequence number wins, wherever it is, so compaction may
//! copy records to a new segment without changing their order. Open replays every
//! segment; a record that fails its CRC at the end of the newest segment is a torn
//! append and is cut off; one anywhere else is copied to `quarantine/` and skipped.

use std::collections::{BTreeMap, HashMap};

use crate::backend::{self, Backend, Durability, Listing, QUARANTINE_DIR};
use crate::crypto;
use crate::dir::Dir;
use crate::error::StoreError;
use crate::id;
use crate::meta;

/// The subdirectory that holds the segments.
pub const LOG_DIR: &str = "log";
const SEGMENT_EXT: &str = ".seg";
const MAGIC: [u8; 4] = *b"SVLR";
/// Bytes before a record's id.
pub const RECORD_HEADER: usize = 22;
/// A segment is closed and a new one started past this size.
const SEGMENT_LIMIT: u64 = 64 << 20;
/// Compaction runs after a write once the segments hold this much...
const COMPACT_MIN_BYTES: u64 = 16 << 20;
/// ...and less than this fraction of it is live.
const COMPACT_LIVE_RATIO: f64 = 0.5;
/// The largest payload a record may declare (a session file at the largest size limit).
const MAX_PAYLOAD: usize = crate::store::MAX_MAX_SESSION_BYTES as usize + 64;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put = 1,
    Tombstone = 2,
    Stamp = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Put),
            2 => Some(Kind::Tombstone),
            3 => Some(Kind::Stamp),
            _ => None,
        }
    }
}

/// Where the latest record of an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    segment: u64,
    /// Offset of the record's header.
    offset: u64,
    id_len: u8,
    payload_len: u32,
    seq: u64,
}

impl Location {
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
}

/// Removes every segment, and `log/` itself if nothing else is in it (after a migration
/// away from the log, or to undo an interrupted one towards it).
pub(crate) fn discard<D: Dir>(dir: &D) -> Result<(), StoreError> {
    let entries = dir
        .entries(LOG_DIR)
        .map_err(|e| StoreError::io(format!("listing {LOG_DIR}/"), e))?
        .unwrap_or_default();
    let mut others = false;
    for entry in entries {
        if entry.is_file && segment_number(&entry.name).is_some() {
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

    /// Opens (or starts) the log in `dir`: replays every segment, cutting a torn tail
    /// off the newest and quarantining damaged records elsewhere.
    pub fn open(dir: D, durability: Durability) -> Result<Self, StoreError> {
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
        for entry in entries {
            match segment_number(&entry.name) {
                Some(n) if entry.is_file => numbers.push(n),
                _ => self.foreign += 1,
            }
        }
        numbers.sort_unstable();
        let newest = numbers.last().copied();
        // Tombstones seen so far, so that an older put replayed later stays deleted.
        let mut deleted: HashMap<String, u64> = HashMap::new();
        for number in numbers {
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
            let bytes = self
                .dir
                .read_at(&file, 0, usize::try_from(len).unwrap_or(usize::MAX))
                .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
            let mut end = bytes.len() as u64;
            let mut pos = 0usize;
            while pos < bytes.len() {
                match parse(&bytes, pos) {
                    Some(record) => {
                        self.apply(number, pos as u64, &record, &mut deleted);
                        pos += record.len;
                    }
                    None => {
                        let next = next_record(&bytes, pos + 1);
                        if next.is_none() && Some(number) == newest {
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
        }
        self.live_bytes = (self.sessions.values())
            .chain(self.stamps.values())
            .map(Location::record_len)
            .sum();
        Ok(())
    }

    fn apply(
        &mut self,
        segment: u64,
        offset: u64,
        record: &Record<'_>,
        deleted: &mut HashMap<String, u64>,
    ) {
        self.next_seq = self.next_seq.max(record.seq.saturating_add(1));
        let location = Location {
            segment,
            offset,
            id_len: u8::try_from(record.id.len()).unwrap_or(u8::MAX),
            payload_len: u32::try_from(record.payload.len()).unwrap_or(u32::MAX),
            seq: record.seq,
        };
        let id = record.id;
        let gone = deleted.get(id).copied().unwrap_or(0);
        match record.kind {
            Kind::Put
                if record.seq > gone
                    && self.sessions.get(id).is_none_or(|l| l.seq < record.seq) =>
            {
                self.sessions.insert(id.to_owned(), location);
            }
            Kind::Stamp
                if record.seq > gone && self.stamps.get(id).is_none_or(|l| l.seq < record.seq) =>
            {
                self.stamps.insert(id.to_owned(), location);
            }
            Kind::Tombstone if record.seq > gone => {
                deleted.insert(id.to_owned(), record.seq);
                if self.sessions.get(id).is_some_and(|l| l.seq < record.seq) {
                    self.sessions.remove(id);
                }
                if self.stamps.get(id).is_some_and(|l| l.seq < record.seq) {
                    self.stamps.remove(id);
                }
            }
            _ => {}
        }
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
        backend::replace(&self.dir, &name, bytes, Durability::Durable)
    }

    /// Appends a record; returns where it went. Syncs when durable and `sync`.
    fn append(
        &mut self,
        kind: Kind,
        id: &str,
        payload: &[u8],
        sync: bool,
    ) -> Result<Location, StoreError> {
        let seq = self.next_seq;
        let record = encode(kind, id, payload, seq)?;
        let (number, offset) = self.write_record(&record)?;
        if sync && self.durability == Durability::Durable {
            self.sync_from(number)?;
        }
        self.next_seq += 1;
        Ok(Location {
            segment: number,
            offset,
            id_len: u8::try_from(id.len()).unwrap_or(u8::MAX),
            payload_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
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
            .get_mut(&number)
            .ok_or_else(|| StoreError::Corrupted(format!("{path} is not open")))?;
        let offset = segment.len;
        self.dir
            .write_at(&segment.file, offset, record)
            .map_err(|e| StoreError::io(format!("appending to {path}"), e))?;
        segment.len += record.len() as u64;
        Ok((number, offset))
    }

    /// Appends a put or a stamp for `id` and points the key directory at it.
    fn put(&mut self, kind: Kind, id: &str, payload: &[u8], sync: bool) -> Result<(), StoreError> {
        let location = self.append(kind, id, payload, sync)?;
        self.live_bytes += location.record_len();
        let latest = match kind {
            Kind::Stamp => &mut self.stamps,
            _ => &mut self.sessions,
        };
        let previous = latest.insert(id.to_owned(), location);
        self.forget(previous);
        self.maybe_compact()
    }

    /// The segment appends go to, starting a new one when there is none or it is full.
    fn active(&mut self) -> Result<u64, StoreError> {
        match self.segments.last_key_value() {
            Some((&number, segment)) if segment.len < SEGMENT_LIMIT => Ok(number),
            last => {
                let number = last.map_or(1, |(&n, _)| n + 1);
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

    fn read_payload(&self, location: &Location, limit: u64) -> Result<Vec<u8>, StoreError> {
        let path = segment_path(location.segment);
        if u64::from(location.payload_len) > limit {
            return Err(StoreError::Corrupted(format!(
                "{path}: a record of {} bytes is longer than the {limit}-byte limit",
                location.payload_len
            )));
        }
        let segment = self
            .segments
            .get(&location.segment)
            .ok_or_else(|| StoreError::Corrupted(format!("{path} is not open")))?;
        let len = usize::try_from(location.payload_len).unwrap_or(usize::MAX);
        let bytes = self
            .dir
            .read_at(&segment.file, location.payload_offset(), len)
            .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
        if bytes.len() != len {
            return Err(StoreError::Corrupted(format!(
                "{path}: a record ends past the end of the file"
            )));
        }
        Ok(bytes)
    }

    fn total_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.len).sum()
    }

    fn forget(&mut self, location: Option<Location>) {
        if let Some(location) = location {
            self.live_bytes = self.live_bytes.saturating_sub(location.record_len());
        }
    }

    /// Compacts when the segments are big enough and mostly dead.
    fn maybe_compact(&mut self) -> Result<(), StoreError> {
        let total = self.total_bytes();
        if total >= COMPACT_MIN_BYTES
            && (self.live_bytes as f64) < COMPACT_LIVE_RATIO * total as f64
        {
            self.compact_now()?;
        }
        Ok(())
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
            let payload = self.read_payload(&location, MAX_PAYLOAD as u64)?;
            // The record keeps its sequence number: order across segments is by seq.
            let record = encode(kind, &id, &payload, location.seq)?;
            let (number, offset) = self.write_record(&record)?;
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
            let path = segment_path(number);
            self.dir
                .remove(&path)
                .and_then(|_| self.dir.sync(LOG_DIR))
                .map_err(|e| StoreError::io(format!("removing {path}"), e))?;
        }
        self.live_bytes = self.total_bytes();
        Ok(())
    }
}

impl<D: Dir> Backend for Log<D> {
    fn kind(&self) -> backend::BackendKind {
        backend::BackendKind::Log
    }

    fn recover(&mut self) -> Result<u64, StoreError> {
        backend::remove_leftovers(&self.dir, &backend::root_entries(&self.dir)?)
    }

    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        backend::read_meta(&self.dir)
    }

    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        backend::replace(&self.dir, meta::FILE_NAME, bytes, Durability::Durable)
    }

    fn read(&mut self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.sessions.get(id) {
            Some(location) => self.read_payload(location, limit).map(Some),
            None => Ok(None),
        }
    }

    fn write(&mut self, id: &str, blob: &[u8]) -> Result<(), StoreError> {
        self.put(Kind::Put, id, blob, true)
    }

    fn remove(&mut self, id: &str) -> Result<bool, StoreError> {
        if !self.sessions.contains_key(id) && !self.stamps.contains_key(id) {
            return Ok(false);
        }
        self.append(Kind::Tombstone, id, &[], true)?;
        let existed = self.sessions.remove(id);
        let stamp = self.stamps.remove(id);
        self.forget(stamp);
        let found = existed.is_some();
        self.forget(existed);
        self.maybe_compact()?;
        Ok(found)
    }

    fn list(&mut self) -> Result<Listing, StoreError> {
        let mut foreign = self.foreign;
        for entry in backend::root_entries(&self.dir)? {
            let ours = (entry.name == meta::FILE_NAME && entry.is_file)
                || ((entry.name == QUARANTINE_DIR || entry.name == LOG_DIR) && !entry.is_file);
            if !ours {
                foreign += 1;
            }
        }
        let mut ids: Vec<String> = self.sessions.keys().cloned().collect();
        ids.sort_unstable();
        let mut stamps: Vec<String> = self.stamps.keys().cloned().collect();
        stamps.sort_unstable();
        Ok(Listing {
            ids,
            stamps,
            foreign,
        })
    }

    fn read_stamp(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.stamps.get(id) {
            Some(location) => self
                .read_payload(location, crate::stamp::LEN as u64)
                .map(Some),
            None => Ok(None),
        }
    }

    fn write_stamp(&mut self, id: &str, stamp: &[u8]) -> Result<(), StoreError> {
        // Like the files backend's stamps: never synced on its own account.
        self.put(Kind::Stamp, id, stamp, false)
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
        let bytes = self.read_payload(&location, MAX_PAYLOAD as u64)?;
        let mut suffix = [0u8; 8];
        crypto::random(&mut suffix)?;
        let name = format!(
            "{QUARANTINE_DIR}/{}.{}",
            backend::session_name(id),
            hex::encode(suffix)
        );
        self.dir
            .create_dir(QUARANTINE_DIR)
            .map_err(|e| StoreError::io(format!("creating {QUARANTINE_DIR}/"), e))?;
        backend::replace(&self.dir, &name, &bytes, Durability::Durable)?;
        self.append(Kind::Tombstone, id, &[], true)?;
        let previous = self.sessions.remove(id);
        self.forget(previous);
        Ok(())
    }

    fn quarantined(&mut self) -> Result<u64, StoreError> {
        backend::quarantined(&self.dir)
    }

    fn compact(&mut self) -> Result<(), StoreError> {
        if self.total_bytes() > self.live_bytes {
            self.compact_now()?;
        }
        Ok(())
    }
}

/// A record parsed from a segment.
struct Record<'a> {
    kind: Kind,
    id: &'a str,
    payload: &'a [u8],
    seq: u64,
    /// Bytes the whole record takes.
    len: usize,
}

fn encode(kind: Kind, id: &str, payload: &[u8], seq: u64) -> Result<Vec<u8>, StoreError> {
    id::validate(id)?;
    // A valid id is at most 128 bytes.
    let id_len = u8::try_from(id.len()).unwrap_or(u8::MAX);
    let payload_len = u32::try_from(payload.len()).map_err(|overflow| {
        StoreError::TooLarge(format!("a record of {} bytes: {overflow}", payload.len()))
    })?;
    let mut record = Vec::with_capacity(RECORD_HEADER + id.len() + payload.len());
    record.extend_from_slice(&MAGIC);
    record.push(kind as u8);
    record.push(id_len);
    record.extend_from_slice(&payload_len.to_le_bytes());
    record.extend_from_slice(&seq.to_le_bytes());
    let crc = checksum(
        record.get(4..18).unwrap_or_default(),
        id.as_bytes(),
        payload,
    );
    record.extend_from_slice(&crc.to_le_bytes());
    record.extend_from_slice(id.as_bytes());
    record.extend_from_slice(payload);
    Ok(record)
}

fn checksum(header: &[u8], id: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(id);
    hasher.update(payload);
    hasher.finalize()
}

/// The record at `pos`, if a whole, undamaged one starts there.
fn parse(bytes: &[u8], pos: usize) -> Option<Record<'_>> {
    let header = bytes.get(pos..pos.checked_add(RECORD_HEADER)?)?;
    let (magic, rest) = header.split_first_chunk::<4>()?;
    let (&[kind, id_len], rest) = rest.split_first_chunk::<2>()?;
    let (payload_len, rest) = rest.split_first_chunk::<4>()?;
    let (seq, rest) = rest.split_first_chunk::<8>()?;
    let (crc, _) = rest.split_first_chunk::<4>()?;
    if *magic != MAGIC {
        return None;
    }
    let kind = Kind::from_byte(kind)?;
    let payload_len = usize::try_from(u32::from_le_bytes(*payload_len)).ok()?;
    if id_len == 0 || usize::from(id_len) > id::MAX_ID_LEN || payload_len > MAX_PAYLOAD {
        return None;
    }
    let id_start = pos + RECORD_HEADER;
    let payload_start = id_start + usize::from(id_len);
    let end = payload_start.checked_add(payload_len)?;
    let id_bytes = bytes.get(id_start..payload_start)?;
    let payload = bytes.get(payload_start..end)?;
    let header_fields = header.get(4..18)?;
    if checksum(header_fields, id_bytes, payload) != u32::from_le_bytes(*crc) {
        return None;
    }
    let id = std::str::from_utf8(id_bytes)
        .ok()
        .filter(|id| id::is_valid(id))?;
    Some(Record {
        kind,
        id,
        payload,
        seq: u64::from_le_bytes(*seq),
        len: end - pos,
    })
}

/// The offset of the next whole record at or after `from`.
fn next_record(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(rest) = bytes.get(at..) {
        let found = rest.windows(MAGIC.len()).position(|w| w == MAGIC)?;
        let candidate = at + found;
        if parse(bytes, candidate).is_some() {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

fn segment_path(number: u64) -> String {
    format!("{LOG_DIR}/{number:016x}{SEGMENT_EXT}")
}

/// The number of a segment file name, if it is one: 16 lowercase hex digits + `.seg`.
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXT)?;
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
    use crate::dir::StdDir;

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
        log.write("a", b"one").unwrap();
        log.write("b", b"bee").unwrap();
        log.write("a", b"two").unwrap();
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
        log.write("a", b"one").unwrap();
        log.write("b", b"two").unwrap();
        drop(log);
        let path = segment(tmp.path());
        let whole = std::fs::read(&path).unwrap();
        let first = RECORD_HEADER + 1 + 3;
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
        log.write("c", b"three").unwrap();
        drop(log);
        let mut log = open(tmp.path());
        assert_eq!(log.list().unwrap().ids, vec!["a", "c"]);
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_quarantined_and_the_rest_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        log.write("a", b"one").unwrap();
        log.write("b", b"two").unwrap();
        log.write("c", b"three").unwrap();
        drop(log);
        let path = segment(tmp.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let second = RECORD_HEADER + 1 + 3;
        bytes[second + RECORD_HEADER + 1] ^= 0x01; // b's payload
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
            bytes[second..second + RECORD_HEADER + 4]
        );
    }

    #[test]
    fn compaction_keeps_exactly_the_live_records() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        for i in 0..50 {
            log.write(&format!("s{i}"), format!("v{i}").as_bytes())
                .unwrap();
        }
        for i in 0..50 {
            log.write(&format!("s{i}"), format!("w{i}").as_bytes())
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
        log.write("a", b"old").unwrap();
        log.write("b", b"kept").unwrap();
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

    #[test]
    fn segment_names_are_recognised_exactly() {
        assert_eq!(segment_number("0000000000000001.seg"), Some(1));
        assert_eq!(segment_number("000000000000000A.seg"), None);
        assert_eq!(segment_number("1.seg"), None);
        assert_eq!(segment_number("0000000000000001.seg.tmp"), None);
    }
}
