//! Walking a segment's records with bounded memory: one read-ahead window, one record
//! (at most [`record::MAX_RECORD`] bytes) and one search chunk at a time, whatever the
//! file's length, so a huge or sparse segment is scanned, never loaded.

use super::record::{self, Record};
use crate::fs::Dir;

/// How much is read at a time while searching damaged bytes for the next record.
const CHUNK: usize = 1 << 20;
/// How much is read ahead while walking records: a read is a call out of the component,
/// which costs more than the copy in some runtimes, and records are ~1–3 KB.
const AHEAD: usize = 1 << 20;

/// Reads of one file in increasing order, served from the last [`AHEAD`] bytes read where
/// they hold the whole request (the segment scan, and compaction's copy of a segment).
#[derive(Default)]
pub(super) struct ReadAhead {
    /// The bytes last read, and where they start.
    window: Option<(u64, Vec<u8>)>,
}

impl ReadAhead {
    /// Up to `len` bytes at `at`, as `read_at` gives them (fewer only at the end of the
    /// file): out of the window if it holds them all, else read afresh with the window's
    /// worth after them.
    pub(super) fn read<D: Dir>(
        &mut self,
        dir: &D,
        file: &D::File,
        at: u64,
        len: usize,
    ) -> std::io::Result<Vec<u8>> {
        if let Some((start, bytes)) = &self.window {
            let from = at.checked_sub(*start).and_then(|d| usize::try_from(d).ok());
            if let Some(held) = from.and_then(|from| bytes.get(from..from.checked_add(len)?)) {
                return Ok(held.to_vec());
            }
        }
        let bytes = dir.read_at(file, at, len.max(AHEAD))?;
        let wanted = bytes.get(..len).unwrap_or(&bytes).to_vec();
        self.window = Some((at, bytes));
        Ok(wanted)
    }
}

/// What the next stretch of a segment holds.
pub(super) enum Step {
    /// A whole record at `offset`, in `bytes` (exactly the record).
    Record { offset: u64, bytes: Vec<u8> },
    /// Bytes `offset..end` are not records (damaged, or a torn append if `end` is the end).
    Damage { offset: u64, end: u64 },
}

/// A walk over the records of one open segment: where it is. Each step is given the
/// directory and file, so nothing stays borrowed between steps.
pub(super) struct Scan {
    len: u64,
    /// Where records can start: a segment is closed past its size limit, so nothing past
    /// the limit and one record can be ours; the rest is damage, never searched.
    searched: u64,
    pos: u64,
    ahead: std::cell::RefCell<ReadAhead>,
}

/// The file a step reads.
struct Source<'a, D: Dir> {
    dir: &'a D,
    file: &'a D::File,
    len: u64,
    searched: u64,
    ahead: &'a std::cell::RefCell<ReadAhead>,
}

impl Scan {
    /// A walk over the first `len` bytes of a segment closed past `limit` bytes.
    pub(super) fn new(len: u64, limit: u64) -> Self {
        let searched = len.min(limit.saturating_add(record::MAX_RECORD as u64));
        Scan {
            len,
            searched,
            pos: 0,
            ahead: std::cell::RefCell::default(),
        }
    }

    /// The next record or damaged stretch of `file`; `None` at the end.
    pub(super) fn step<D: Dir>(
        &mut self,
        dir: &D,
        file: &D::File,
    ) -> std::io::Result<Option<Step>> {
        let source = Source {
            dir,
            file,
            len: self.len,
            searched: self.searched,
            ahead: &self.ahead,
        };
        if self.pos >= self.len {
            return Ok(None);
        }
        let offset = self.pos;
        if offset >= self.searched {
            self.pos = self.len;
            return Ok(Some(Step::Damage {
                offset,
                end: self.len,
            }));
        }
        if let Some(bytes) = source.record_at(offset)? {
            self.pos = offset + bytes.len() as u64;
            return Ok(Some(Step::Record { offset, bytes }));
        }
        let end = source.next_record(offset + 1)?.unwrap_or(self.len);
        self.pos = end;
        Ok(Some(Step::Damage { offset, end }))
    }
}

impl<D: Dir> Source<'_, D> {
    /// The whole record at `at`, if one is there: its header is read first, and its
    /// declared length bounds what is read next.
    fn record_at(&self, at: u64) -> std::io::Result<Option<Vec<u8>>> {
        let head = self.read(at, record::HEADER)?;
        let Some(total) = record::declared_len(&head) else {
            return Ok(None);
        };
        if at.saturating_add(total as u64) > self.len {
            return Ok(None);
        }
        let bytes = self.read(at, total)?;
        Ok(record::parse(&bytes, 0)
            .is_some_and(|r: Record<'_>| r.len == bytes.len())
            .then_some(bytes))
    }

    fn read(&self, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.ahead.borrow_mut().read(self.dir, self.file, at, len)
    }

    /// The offset of the first whole record at or after `from`, searched chunk by chunk.
    fn next_record(&self, from: u64) -> std::io::Result<Option<u64>> {
        let magic = record::MAGIC;
        let mut at = from;
        while at < self.searched {
            let want = usize::try_from(self.searched - at).map_or(CHUNK, |rest| rest.min(CHUNK));
            let chunk = self.dir.read_at(self.file, at, want)?;
            if chunk.is_empty() {
                return Ok(None);
            }
            for (i, window) in chunk.windows(magic.len()).enumerate() {
                let candidate = at + i as u64;
                if window == magic && self.record_at(candidate)?.is_some() {
                    return Ok(Some(candidate));
                }
            }
            // The last bytes of the chunk may start a magic cut in two: search them again.
            let advance = chunk.len().saturating_sub(magic.len() - 1).max(1);
            at += advance as u64;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::log::record::Kind;
    use crate::fs::StdDir;

    fn steps(bytes: &[u8]) -> Vec<(bool, u64, u64)> {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("seg"), bytes).unwrap();
        let dir = StdDir::new(tmp.path());
        let file = dir.open_file("seg", false).unwrap().unwrap();
        let mut scan = Scan::new(bytes.len() as u64, u64::MAX);
        let mut out = Vec::new();
        while let Some(step) = scan.step(&dir, &file).unwrap() {
            out.push(match step {
                Step::Record { offset, bytes } => (true, offset, offset + bytes.len() as u64),
                Step::Damage { offset, end } => (false, offset, end),
            });
        }
        out
    }

    #[test]
    fn records_across_read_ahead_windows_are_all_found() {
        // 3 MiB of records of uneven sizes: many straddle a window's end.
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        let mut seq = 0;
        while bytes.len() < 3 * AHEAD {
            seq += 1;
            // A put's payload starts with its summary's length (none here).
            let mut payload = vec![0, 0];
            payload.resize(1000 + (seq as usize * 37) % 3000, 7);
            let record = record::encode(Kind::Put, &format!("s{seq}"), &payload, seq).unwrap();
            let start = bytes.len() as u64;
            expected.push((true, start, start + record.len() as u64));
            bytes.extend_from_slice(&record);
        }
        assert_eq!(steps(&bytes), expected);
    }

    #[test]
    fn records_and_damage_are_told_apart_across_chunks() {
        let a = record::encode(Kind::Put, "a", &[0, 0, 1, 2, 3], 1).unwrap();
        let b = record::encode(Kind::Tombstone, "b", &[], 2).unwrap();
        // A record, 3 MiB of zeros (a sparse hole), a magic cut short, a record.
        let mut bytes = a.clone();
        bytes.extend(vec![0; 3 << 20]);
        bytes.extend_from_slice(b"SVLR");
        let hole_end = bytes.len() as u64;
        bytes.extend_from_slice(&b);
        let a_len = a.len() as u64;
        assert_eq!(
            steps(&bytes),
            vec![
                (true, 0, a_len),
                (false, a_len, hole_end),
                (true, hole_end, hole_end + b.len() as u64)
            ]
        );
        // A torn tail: damage to the end.
        let torn = &bytes[..bytes.len() - 1];
        assert_eq!(steps(torn).last(), Some(&(false, a_len, torn.len() as u64)));
    }

    #[test]
    fn nothing_past_the_limit_and_one_record_is_searched() {
        let tmp = tempfile::tempdir().unwrap();
        let a = record::encode(Kind::Tombstone, "a", &[], 1).unwrap();
        let mut bytes = vec![0; 10];
        bytes.extend(&a);
        std::fs::write(tmp.path().join("seg"), &bytes).unwrap();
        let dir = StdDir::new(tmp.path());
        let file = dir.open_file("seg", false).unwrap().unwrap();
        // With no room for even one record past a limit of 0, the record at 10 would
        // still be found (the limit and one record reach past it)...
        let mut scan = Scan::new(bytes.len() as u64, 0);
        let first = scan.step(&dir, &file).unwrap();
        assert!(matches!(first, Some(Step::Damage { offset: 0, end: 10 })));
        // ...but a scan whose reach ends before it reports the rest as damage, unsearched.
        let mut scan = Scan {
            len: bytes.len() as u64,
            searched: 5,
            pos: 0,
            ahead: std::cell::RefCell::default(),
        };
        let first = scan.step(&dir, &file).unwrap();
        assert!(
            matches!(first, Some(Step::Damage { offset: 0, end }) if end == bytes.len() as u64)
        );
    }
}
