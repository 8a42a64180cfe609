//! Compaction: live records copied to new segments, then the old segments removed
//! oldest first, so a crash at any point loses nothing acknowledged and resurrects
//! nothing deleted.

use std::collections::VecDeque;

use super::record::{self, Kind};
use super::scan::ReadAhead;
use super::{
    COMPACT_DEAD_BYTES, COMPACT_LIVE_RATIO, COMPACT_LIVE_RECORDS_RATIO, COMPACT_MIN_BYTES, LOG_DIR,
    Location, Log, hint_path, segment_path,
};
use crate::backend::Compaction;
use crate::error::StoreError;
use crate::fs::Dir;

/// Bytes of live records a write moves when it carries a compaction pass on (see
/// [`Log::maybe_compact`]): a pass over a full segment is spread over many writes, so no
/// one write waits for a whole segment's copy.
const STEP_BYTES: u64 = 64 << 10;

/// The live records of the segment a compaction pass is emptying, in order of sequence
/// number (their order in it), as they were when its turn came. Each is moved only if it
/// is still the latest record of its id there: one replaced or removed since needs no move.
pub(super) struct Moving {
    segment: u64,
    records: VecDeque<(Kind, String, Location)>,
    /// Bytes of it moved so far: what its removal does not reclaim.
    moved: u64,
}

impl<D: Dir> Log<D> {
    /// Carries compaction on after a write that succeeded: a pass under way moves up to
    /// [`STEP_BYTES`] more, and a new pass starts when dead records pass
    /// [`COMPACT_DEAD_BYTES`] and either the log is small or mostly dead, in bytes or in
    /// records, so a removed session's records do not outlive much more writing, a big
    /// log is not rewritten for a little dead space, and an open reads at most about
    /// three hint entries for each live record. A failed step is not that write's
    /// failure: nothing is lost (see [`Log::compact_segments`]) and the next write tries
    /// again; `cleanup` reports it.
    pub(super) fn maybe_compact(&mut self) {
        let bytes = (self.live_bytes, self.total_bytes());
        if self.compacting.is_some()
            || compaction_due(bytes, (self.live_records(), self.total_records()))
        {
            let _ = self.compact_bytes(STEP_BYTES, false, &mut Compaction::default());
        }
    }

    /// Compacts until no dead record is left (see [`Log::compact_segments`]): a pass
    /// already under way is finished, and another one runs if records died past it.
    pub(super) fn compact_now(&mut self) -> Result<(), StoreError> {
        while self.compact_segments(u64::MAX)?.remaining > 0 {}
        Ok(())
    }

    /// Compacts up to `limit` of the segments that held records when this pass began,
    /// oldest first (see [`Log::compact_bytes`]).
    pub(super) fn compact_segments(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        let mut progress = Compaction::default();
        while progress.segments < limit {
            if self.compact_bytes(u64::MAX, true, &mut progress)? {
                break;
            }
        }
        progress.remaining = match self.compacting {
            Some(boundary) => self.segments.keys().filter(|n| **n < boundary).count() as u64,
            // Records that died past the finished pass's boundary need another pass.
            None => u64::from(self.total_bytes() > self.live_bytes),
        };
        Ok(progress)
    }

    /// One step of the pass under way, starting one if none (over every segment if
    /// `whole`; else, where there are closed segments, over those only, so that no write
    /// waits for the newest one to be closed): moves live records of its oldest segment (appended again, keeping their sequence numbers) until `budget`
    /// bytes are moved, and once none is left there, syncs the copies, removes the
    /// segment and its hint and syncs `log/`. Returns whether the pass is over. A crash
    /// at any point leaves every acknowledged write and no deleted one: an old record
    /// that survives is outranked by sequence number (or is the same record, copied), and
    /// a tombstone is only dropped with its segment, after every older segment has gone.
    fn compact_bytes(
        &mut self,
        budget: u64,
        whole: bool,
        progress: &mut Compaction,
    ) -> Result<bool, StoreError> {
        let newest = self.segments.keys().last().copied();
        let boundary = match (self.compacting, newest) {
            (Some(boundary), _) => boundary,
            (None, Some(newest)) if !whole && self.segments.len() > 1 => {
                self.compacting = Some(newest);
                newest
            }
            (None, _) => {
                // Appends from here on go past the boundary, and are not this pass's work.
                // The segment they leave is closed properly first: synced, with its hint.
                let last = self.segments.keys().last().copied();
                if let Some(last) = last {
                    self.close_segment(last)?;
                }
                let boundary = last.map_or(1, |n| n + 1);
                self.start_segment(boundary)?;
                self.compacting = Some(boundary);
                boundary
            }
        };
        let Some(oldest) = self.segments.keys().copied().find(|n| *n < boundary) else {
            self.compacting = None;
            self.moving = None;
            // Recounted from the key directory, so a drifted count cannot keep passes going.
            self.live_bytes = (self.sessions.values())
                .chain(self.stamps.values())
                .map(Location::record_len)
                .sum();
            return Ok(true);
        };
        if self.moving.as_ref().is_none_or(|m| m.segment != oldest) {
            self.moving = Some(Box::new(self.live_records_of(oldest)));
        }
        // A segment's live records come in order of sequence number, which is their
        // order in the segment: read ahead, a read per MiB instead of one per record.
        let mut ahead = ReadAhead::default();
        let mut moved = 0;
        while moved < budget {
            // Taken off the queue only once moved (or found dead): a step that fails
            // leaves it first in line, so its segment is never removed without it.
            let Some((kind, id, location)) = self
                .moving
                .as_ref()
                .and_then(|m| m.records.front())
                .cloned()
            else {
                break;
            };
            let latest = match kind {
                Kind::Stamp => self.stamps.get(&id),
                _ => self.sessions.get(&id),
            };
            if latest != Some(&location) {
                self.moving.as_mut().map(|m| m.records.pop_front());
                continue;
            }
            let payload = self.read_payload_with(
                &location,
                0,
                record::MAX_PAYLOAD as u64,
                |file, at, len| ahead.read(&self.dir, file, at, len),
            )?;
            // The record keeps its sequence number: order across segments is by seq.
            let bytes = record::encode(kind, &id, &payload, location.seq)?;
            let (segment, offset) = self.write_record(&bytes)?;
            let copy = Location {
                segment,
                offset,
                ..location
            };
            match kind {
                Kind::Stamp => self.stamps.insert(id, copy),
                _ => self.sessions.insert(id, copy),
            };
            self.moving.as_mut().map(|m| m.records.pop_front());
            moved += location.record_len();
        }
        let Some(emptied) = self.moving.as_mut() else {
            return Ok(false);
        };
        emptied.moved += moved;
        if !emptied.records.is_empty() {
            return Ok(false);
        }
        let copied = emptied.moved;
        // The copies are whole on disk before the segment they came from goes.
        self.sync_from(boundary)?;
        // Forgotten only once its files are gone: after a failed removal the segment
        // (all dead now) is still tracked, and the next step removes it.
        for path in [segment_path(oldest), hint_path(oldest)] {
            self.dir
                .remove(&path)
                .map_err(|e| StoreError::io(format!("removing {path}"), e))?;
        }
        let len = self
            .segments
            .remove(&oldest)
            .map_or(0, |segment| segment.len);
        self.moving = None;
        // One sync per segment keeps the removals in order, oldest first; a hint left
        // behind by a crash is an orphan, removed at open.
        self.dir
            .sync(LOG_DIR)
            .map_err(|e| StoreError::io(format!("syncing {LOG_DIR}/"), e))?;
        progress.segments += 1;
        progress.reclaimed += len.saturating_sub(copied);
        Ok(false)
    }

    /// The live records of segment `number`, in order of sequence number.
    fn live_records_of(&self, number: u64) -> Moving {
        let mut records: Vec<(Kind, String, Location)> = (self.sessions.iter())
            .map(|(id, l)| (Kind::Put, id.clone(), *l))
            .chain(
                self.stamps
                    .iter()
                    .map(|(id, l)| (Kind::Stamp, id.clone(), *l)),
            )
            .filter(|(_, _, l)| l.segment == number)
            .collect();
        records.sort_by_key(|(_, _, l)| l.seq);
        Moving {
            segment: number,
            records: records.into(),
            moved: 0,
        }
    }
}

/// Whether a log of `(live, all)` bytes and `(live, all)` records is due for compaction
/// (see [`Log::maybe_compact`]).
fn compaction_due((live_bytes, bytes): (u64, u64), (live_records, records): (u64, u64)) -> bool {
    let under = |live: u64, all: u64, ratio: f64| (live as f64) < ratio * all as f64;
    bytes.saturating_sub(live_bytes) >= COMPACT_DEAD_BYTES
        && (bytes < COMPACT_MIN_BYTES
            || under(live_bytes, bytes, COMPACT_LIVE_RATIO)
            || under(live_records, records, COMPACT_LIVE_RECORDS_RATIO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::backend::log::tests::{fill, hints, open, small};

    /// Every byte of every file in `log/`.
    fn log_bytes(path: &std::path::Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(path.join(LOG_DIR)).unwrap() {
            all.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        all
    }

    fn holds(bytes: &[u8], needle: &str) -> bool {
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Regression (review): a pass left open by a step only finished itself, so records
    /// that died past its boundary survived a later full compaction.
    #[test]
    fn a_full_compaction_after_a_step_leaves_no_dead_record() {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        let mut log = small(tmp.path());
        let step = log.compact_step(1).unwrap();
        assert_eq!(step.segments, 1);
        assert!(step.remaining > 0, "{step:?}");
        log.write("late", b"late-blob", b"late-sum").unwrap();
        log.remove("late").unwrap();
        log.compact().unwrap();
        let bytes = log_bytes(tmp.path());
        assert!(
            !holds(&bytes, "late"),
            "a record of the removed session is left"
        );
        assert!(!holds(&bytes, "blob-5"), "s05's removed record is left");
        assert_eq!(log.total_bytes(), log.live_bytes);
        assert_eq!(log.compact_step(1).unwrap(), Compaction::default());
        drop(log);
        let mut log = small(tmp.path());
        assert_eq!(log.list().unwrap().ids.len(), 19);
        assert_eq!(log.read("s03", 100).unwrap(), Some(b"blob-3".to_vec()));
    }

    /// A pass a write starts takes the closed segments only, a bounded step at a time,
    /// with writes, replacements and removals between the steps: the newest segment stays
    /// open, every session reads back as last written, and no removed one comes back.
    #[test]
    fn a_pass_spread_over_writes_keeps_the_newest_segment_and_every_live_record() {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        let mut log = small(tmp.path());
        let mut model: std::collections::BTreeMap<String, Vec<u8>> = (0..20)
            .filter(|i| *i != 5)
            .map(|i| (format!("s{i:02}"), format!("blob-{i}").into_bytes()))
            .collect();
        let newest = *log.segments.keys().last().unwrap();
        assert!(log.segments.len() > 3, "closed segments to compact");
        let mut progress = Compaction::default();
        // One record a step: the first steps do not finish the pass.
        for _ in 0..3 {
            assert!(!log.compact_bytes(1, false, &mut progress).unwrap());
        }
        let mut step = 0;
        while !log.compact_bytes(1, false, &mut progress).unwrap() {
            assert_eq!(
                log.compacting,
                Some(newest),
                "the boundary is the newest segment"
            );
            assert!(
                log.segments.contains_key(&newest),
                "never closed by the pass"
            );
            // Between steps: a replacement, a removal, a new session.
            let id = format!("s{:02}", step % 20);
            if step % 3 == 0 {
                log.write(&id, b"again", b"sum").unwrap();
                model.insert(id, b"again".to_vec());
            } else if step % 3 == 1 {
                log.remove(&id).unwrap();
                model.remove(&id);
            } else {
                let id = format!("n{step:02}");
                log.write(&id, id.as_bytes(), b"sum").unwrap();
                model.insert(id.clone(), id.into_bytes());
            }
            step += 1;
            assert!(step < 500, "the pass ends");
        }
        // Each write carries the pass on too (`maybe_compact`).
        assert!(
            log.segments.keys().all(|n| *n >= newest),
            "every older segment is gone"
        );
        drop(log);
        let mut log = small(tmp.path());
        let ids: Vec<String> = log.list().unwrap().ids.into_iter().collect();
        assert_eq!(ids, model.keys().cloned().collect::<Vec<_>>());
        for (id, blob) in &model {
            assert_eq!(log.read(id, 100).unwrap().as_ref(), Some(blob), "{id}");
        }
    }

    /// Regression (review): a step whose copy failed dropped the record from its queue,
    /// and a later step removed the segment holding its only copy.
    #[test]
    fn a_failed_step_keeps_its_record_for_the_next() {
        use crate::fs::fault::{Call, Fault, Faults, FaultyDir, Plan};
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        let faults = Faults::default();
        let dir = FaultyDir::new(crate::fs::StdDir::new(tmp.path()), faults.clone());
        let mut log =
            Log::open_with_segment_limit(dir, crate::backend::Durability::Durable, 256).unwrap();
        let mut progress = Compaction::default();
        assert!(!log.compact_bytes(1, false, &mut progress).unwrap());
        faults.arm(Plan {
            call: Call::Write,
            fault: Fault::NoSpace,
            skip: 0,
            sticky: false,
        });
        assert!(log.compact_bytes(1, false, &mut progress).is_err());
        faults.clear();
        while !log.compact_bytes(1, false, &mut progress).unwrap() {}
        drop(log);
        let mut log = small(tmp.path());
        assert_eq!(
            log.list().unwrap().ids.len(),
            19,
            "every live session is still there"
        );
        for i in (0..20).filter(|i| *i != 5) {
            let blob = format!("blob-{i}").into_bytes();
            assert_eq!(log.read(&format!("s{i:02}"), 100).unwrap(), Some(blob));
        }
    }

    #[test]
    fn compaction_is_due_when_dead_bytes_or_dead_records_dominate() {
        const MIB: u64 = 1 << 20;
        // Under 1 MiB dead: never.
        assert!(!compaction_due((1, MIB), (1, 1_000_000)));
        // A small log with 1 MiB dead: always.
        assert!(compaction_due((MIB, 2 * MIB), (10, 11)));
        // A big log: when over half its bytes are dead...
        assert!(compaction_due((99 * MIB, 200 * MIB), (100, 100)));
        assert!(!compaction_due((100 * MIB, 200 * MIB), (100, 100)));
        // ...or over two thirds of its records (many small dead stamps), however few
        // bytes.
        assert!(compaction_due((180 * MIB, 200 * MIB), (99_999, 300_000)));
        assert!(!compaction_due((180 * MIB, 200 * MIB), (100_000, 300_000)));
    }

    #[test]
    fn a_segment_counts_its_records_through_appends_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        for i in 0..10 {
            log.write(&format!("s{i}"), b"blob", b"").unwrap();
        }
        log.write_stamp("s1", b"stamp").unwrap();
        log.remove("s2").unwrap();
        assert_eq!((log.total_records(), log.live_records()), (12, 10));
        drop(log);
        let log = open(tmp.path());
        assert_eq!((log.total_records(), log.live_records()), (12, 10));
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
        // A host's lock file is not foreign either.
        std::fs::write(tmp.path().join(crate::backend::layout::LOCK_FILE), b"{}").unwrap();
        let mut log = small(tmp.path());
        assert!(!orphan.exists());
        assert_eq!(log.list().unwrap().ids, vec!["kept"]);
        assert_eq!(log.list().unwrap().foreign, 0);
    }
}
