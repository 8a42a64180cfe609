//! Open: the hint of each closed segment, a replay of the rest (torn tails cut off,
//! damaged records copied to `quarantine/`), and the summaries gathered for the store.

use std::collections::HashMap;

use super::hint::{self, Entry, OwnedEntry};
use super::record::{self, Kind};
use super::scan::{Scan, Step};
use super::{
    Gathered, LOG_DIR, Location, Log, SEGMENT_MAX, Segment, hint_number, hint_path, segment_number,
    segment_path,
};
use crate::backend::disk;
use crate::backend::layout::{self, QUARANTINE_DIR};
use crate::backend::{Durability, SealedBlock, Summaries};
use crate::error::StoreError;
use crate::fs::Dir;

/// The most of one damaged stretch that is copied to `quarantine/`.
const QUARANTINE_COPY: usize = 1 << 20;

/// Points `latest[id]` at `location` and keeps its `extra` bytes if it is newer than what
/// is there. Replay goes newest segment first, so most older records fail this test
/// without allocating anything.
pub(super) fn newer(
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

impl<D: Dir> Log<D> {
    pub(super) fn replay(&mut self) -> Result<(), StoreError> {
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
        let mut blocks = Vec::new();
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
                if let Some((entries, block)) = bytes.as_deref().and_then(|b| hint::decode(b, len))
                {
                    for entry in &entries {
                        self.apply(number, entry, &mut gathered);
                    }
                    if let Some(block) = block {
                        // Located, not kept: the store reads one block at a time.
                        blocks.push(SealedBlock {
                            segment: number,
                            segment_len: len,
                            offset: hint::BLOCK_OFFSET,
                            len: block.len(),
                        });
                    }
                    let records = entries.len() as u64;
                    self.segments.insert(number, Segment { file, len, records });
                    continue;
                }
            }
            let mut end = len;
            let mut replayed: Vec<OwnedEntry> = Vec::new();
            let mut scan = Scan::new(len, self.segment_limit.max(SEGMENT_MAX));
            let mut damage = Vec::new();
            while let Some(step) = scan
                .step(&self.dir, &file)
                .map_err(|e| StoreError::io(format!("reading {path}"), e))?
            {
                match step {
                    Step::Record { offset, bytes } => {
                        // The scan returns only records that parse.
                        if let Some(record) = record::parse(&bytes, 0) {
                            let entry = Entry::of(&record, offset);
                            self.apply(number, &entry, &mut gathered);
                            replayed.push(entry.owned());
                        }
                    }
                    Step::Damage { offset, end: stop } if stop == len && !closed => {
                        // A torn append: the write never completed, so it was never
                        // acknowledged. Cut it off so appends continue from here.
                        self.dir
                            .truncate(&file, offset)
                            .and_then(|()| self.dir.sync_file(&file))
                            .map_err(|e| StoreError::io(format!("truncating {path}"), e))?;
                        end = offset;
                    }
                    Step::Damage { offset, end: stop } => damage.push((offset, stop)),
                }
            }
            for (offset, stop) in damage {
                self.quarantine_bytes(number, &file, offset, stop)?;
            }
            let records = replayed.len() as u64;
            self.segments.insert(
                number,
                Segment {
                    file,
                    len: end,
                    records,
                },
            );
            if closed {
                // A closed segment without a usable hint (a crash before it was written,
                // or damage): write it now, so the next open skips the replay.
                let entries: Vec<Entry<'_>> = replayed.iter().map(OwnedEntry::entry).collect();
                self.write_hint(number, end, &entries)?;
            }
        }
        self.live_bytes = (self.sessions.values())
            .chain(self.stamps.values())
            .map(Location::record_len)
            .sum();
        // A segment none of whose records is still the latest of its id (all rewritten,
        // touched again or removed since) has a block with nothing to index: it is not
        // read, which spares an open the decryption of the log's history.
        let live: std::collections::BTreeSet<u64> = (self.sessions.values())
            .chain(self.stamps.values())
            .map(|l| l.segment)
            .collect();
        blocks.retain(|b| live.contains(&b.segment));
        let mut gathered = self.summaries_of(summaries, stamps);
        gathered.blocks = blocks;
        self.summaries = Some(Box::new(gathered));
        Ok(())
    }

    /// Points the key directory at `entry` of segment `number` if it is the latest of its
    /// id, gathering its summary or stamp.
    pub(super) fn apply(
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
    pub(super) fn summaries_of(&self, summaries: Gathered, stamps: Gathered) -> Summaries {
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
            blocks: Vec::new(),
            foreign: 0,
        }
    }

    /// Reads the hint of segment `number`, or `None` if it has none. A hint is far smaller
    /// than its segment; twice the segment limit bounds what is read of a hostile one.
    pub(super) fn read_hint(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = hint_path(number);
        match self
            .dir
            .read(&path, self.segment_limit.max(SEGMENT_MAX) * 2)
        {
            Ok(bytes) => Ok(bytes),
            // Too long (or not a file) to be a hint we wrote: replayed instead.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(None),
            Err(e) => Err(StoreError::io(format!("reading {path}"), e)),
        }
    }

    /// Copies the damaged bytes `offset..end` of segment `number` to `quarantine/`, never
    /// silently dropped; at most [`QUARANTINE_COPY`] of them, so a huge damaged stretch
    /// (a sparse hole) is reported by its name (which gives its offset), not copied whole.
    pub(super) fn quarantine_bytes(
        &self,
        number: u64,
        file: &D::File,
        offset: u64,
        end: u64,
    ) -> Result<(), StoreError> {
        let len = end.saturating_sub(offset);
        let name = format!("{QUARANTINE_DIR}/{number:016x}.seg.{offset:016x}.damaged");
        crate::fs::create_dirs(&self.dir, QUARANTINE_DIR)
            .map_err(|e| StoreError::io(format!("creating {QUARANTINE_DIR}/"), e))?;
        // Replayed again at every open until compaction drops it: write it once.
        if self
            .dir
            .read(&name, QUARANTINE_COPY as u64)
            .is_ok_and(|found| found.is_some())
        {
            return Ok(());
        }
        let copy = usize::try_from(len).map_or(QUARANTINE_COPY, |len| len.min(QUARANTINE_COPY));
        let bytes = self
            .dir
            .read_at(file, offset, copy)
            .map_err(|e| StoreError::io(format!("reading {}", segment_path(number)), e))?;
        disk::replace(&self.dir, &name, &bytes, Durability::Durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::backend::log::RECORD_HEADER;
    use crate::backend::log::tests::{fill, hints, open, segment, small};

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
}
