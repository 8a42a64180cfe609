//! Appends: records at the end of the active segment, synced when durable, taken back
//! when they fail; a full segment closed with its hint and the next one started.

use super::hint::{self, Entry, OwnedEntry};
use super::record::{self, Kind};
use super::scan::{Scan, Step};
use super::{LOG_DIR, Location, Log, SEGMENT_MAX, Segment, hint_path, segment_path};
use crate::backend::disk;
use crate::backend::{Backend as _, Durability, SealedItem};
use crate::error::StoreError;
use crate::fs::Dir;

/// A relaxed log syncs its newest segment each time this much more of it is written, so
/// that closing the segment (which syncs it whole before its hint) never waits for 16 MiB.
const SYNC_AHEAD: u64 = 1 << 20;

/// What closing the newest segment needs, kept as it is written (see `Log::active`).
pub(super) struct Active {
    segment: u64,
    entries: Vec<OwnedEntry>,
    synced: u64,
}

impl<D: Dir> Log<D> {
    /// Appends a record; returns where it went. Syncs when durable and `sync`.
    pub(super) fn append(
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
        if sync && self.durability == Durability::Durable {
            if self.held {
                // Synced by the store's flush, from the first segment that needs it.
                self.held_from = Some(self.held_from.map_or(number, |first| first.min(number)));
            } else if let Err(error) = self.sync_from(number) {
                self.undo(number, offset);
                return Err(error);
            }
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
    pub(super) fn write_record(&mut self, record: &[u8]) -> Result<(u64, u64), StoreError> {
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
            segment.records += 1;
        }
        self.gather(number, offset, record);
        Ok((number, offset))
    }

    /// Keeps the hint entry of the record just written at `offset` of segment `number`,
    /// and syncs a relaxed segment every [`SYNC_AHEAD`] bytes.
    fn gather(&mut self, number: u64, offset: u64, bytes: &[u8]) {
        let Some(active) = self.active.as_mut().filter(|a| a.segment == number) else {
            return;
        };
        match record::parse(bytes, 0) {
            Some(parsed) => active.entries.push(Entry::of(&parsed, offset).owned()),
            // Cannot happen for a record this log encoded; if it did, the segment is
            // read back at close instead.
            None => self.active = None,
        }
        let Some(segment) = self.segments.get(&number) else {
            return;
        };
        if let Some(active) = self.active.as_mut()
            && segment.len.saturating_sub(active.synced) >= SYNC_AHEAD
            && self.dir.sync_file(&segment.file).is_ok()
        {
            // Best effort: what is not synced here is synced at close.
            active.synced = segment.len;
        }
    }

    /// Takes back a failed append: cuts segment `number` to `offset`, where the record
    /// started. Best effort: if the cut fails too, the next append overwrites the partial
    /// record in place, and open treats one left at the end as a torn tail.
    pub(super) fn undo(&mut self, number: u64, offset: u64) {
        if let Some(active) = self.active.as_mut().filter(|a| a.segment == number) {
            active.entries.retain(|entry| entry.offset < offset);
            active.synced = active.synced.min(offset);
        }
        if let Some(segment) = self.segments.get_mut(&number) {
            if segment.len > offset {
                segment.records = segment.records.saturating_sub(1);
            }
            segment.len = offset;
            let _ = self.dir.truncate(&segment.file, offset);
        }
    }

    /// Appends a put or a stamp for `id` and points the key directory at it.
    pub(super) fn put(
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
    pub(super) fn active(&mut self) -> Result<u64, StoreError> {
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

    pub(super) fn start_segment(&mut self, number: u64) -> Result<(), StoreError> {
        let path = segment_path(number);
        if self.segments.is_empty() {
            // Synced into the store directory before any segment in it is acknowledged.
            crate::fs::create_dirs(&self.dir, LOG_DIR)
                .map_err(|e| StoreError::io(format!("creating {LOG_DIR}/"), e))?;
        }
        let file = self
            .dir
            .open_file(&path, true)
            .map_err(|e| StoreError::io(format!("creating {path}"), e))?
            .ok_or_else(|| StoreError::Corrupted(format!("{path} could not be created")))?;
        // The new name must survive a crash before anything acknowledged is written to it.
        self.dir
            .sync(LOG_DIR)
            .map_err(|e| StoreError::io(format!("syncing {LOG_DIR}/"), e))?;
        self.segments.insert(
            number,
            Segment {
                file,
                len: 0,
                records: 0,
            },
        );
        self.active = Some(Box::new(Active {
            segment: number,
            entries: Vec::new(),
            synced: 0,
        }));
        Ok(())
    }

    /// Writes the hint of the open segment `number`: from the entries gathered as it was
    /// written, or else from its records on disk.
    pub(super) fn close_segment(&mut self, number: u64) -> Result<(), StoreError> {
        let path = segment_path(number);
        let Some(segment) = self.segments.get(&number) else {
            return Ok(());
        };
        if let Some(active) = self.active.take_if(|a| a.segment == number) {
            let entries: Vec<Entry<'_>> = active.entries.iter().map(OwnedEntry::entry).collect();
            return self.write_hint(number, segment.len, &entries);
        }
        let mut owned = Vec::new();
        let mut scan = Scan::new(segment.len, self.segment_limit.max(SEGMENT_MAX));
        while let Some(step) = scan
            .step(&self.dir, &segment.file)
            .map_err(|e| StoreError::io(format!("reading {path}"), e))?
        {
            match step {
                Step::Record { offset, bytes } => {
                    if let Some(record) = record::parse(&bytes, 0) {
                        owned.push(Entry::of(&record, offset).owned());
                    }
                }
                // Damage since open: no hint, so the next open replays (and quarantines) it.
                Step::Damage { .. } => return Ok(()),
            }
        }
        let entries: Vec<Entry<'_>> = owned.iter().map(OwnedEntry::entry).collect();
        self.write_hint(number, segment.len, &entries)
    }

    /// Durably writes the hint of segment `number`, `len` bytes long, holding `entries`.
    /// The segment is synced first: a hint must never describe bytes a crash can lose.
    pub(super) fn write_hint(
        &self,
        number: u64,
        len: u64,
        entries: &[Entry<'_>],
    ) -> Result<(), StoreError> {
        if let Some(segment) = self.segments.get(&number) {
            self.dir
                .sync_file(&segment.file)
                .map_err(|e| StoreError::io(format!("syncing {}", segment_path(number)), e))?;
        }
        let block = self.index_block(number, len, entries);
        disk::replace(
            &self.dir,
            &hint_path(number),
            &hint::encode(len, entries, block.as_deref()),
            Durability::Durable,
        )
    }

    /// The sealed index block of `entries` of segment `number`, if the store has lent
    /// the sealer and every summary and stamp among them opens. Only the records that
    /// are still the latest of their id go in: one already superseded (a session
    /// touched twice before its segment closed) can never count again, and leaving it
    /// out spares every later open its decryption. Should a newer record be lost to
    /// damage, the older one is read in full instead (see `DirectoryStore::index_summaries`).
    fn index_block(&self, number: u64, len: u64, entries: &[Entry<'_>]) -> Option<Vec<u8>> {
        let sealer = self.sealer.as_ref()?;
        let items: Vec<SealedItem<'_>> = entries
            .iter()
            .filter(|e| e.kind != Kind::Tombstone)
            .filter(|e| self.is_latest(e.id, e.seq, e.kind == Kind::Stamp))
            .map(|e| SealedItem {
                stamp: e.kind == Kind::Stamp,
                id: e.id,
                seq: e.seq,
                sealed: e.extra,
            })
            .collect();
        sealer.seal(number, len, &items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::backend::log::tests::{fill, hints, small};

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
}
