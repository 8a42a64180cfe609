//! Compaction: live records copied to new segments, then the old segments removed
//! oldest first, so a crash at any point loses nothing acknowledged and resurrects
//! nothing deleted.

use super::record::{self, Kind};
use super::{
    COMPACT_LIVE_RATIO, COMPACT_MIN_BYTES, LOG_DIR, Location, Log, hint_path, segment_path,
};
use crate::error::StoreError;
use crate::fs::Dir;

impl<D: Dir> Log<D> {
    /// Compacts when the segments are big enough and mostly dead. Called after a write
    /// that succeeded, so a failed compaction is not that write's failure: nothing is lost
    /// (see [`Log::compact_now`]) and the next write tries again; `cleanup` reports it.
    pub(super) fn maybe_compact(&mut self) {
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
    pub(super) fn compact_now(&mut self) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::backend::log::tests::{fill, hints, open, small};

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
        let mut log = small(tmp.path());
        assert!(!orphan.exists());
        assert_eq!(log.list().unwrap().ids, vec!["kept"]);
        assert_eq!(log.list().unwrap().foreign, 0);
    }
}
