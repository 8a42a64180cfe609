//! Hint files: for each closed segment, what open needs of its records without their
//! session blobs, so that opening a store reads a few dozen bytes per session.
//!
//! ```text
//! log/<16 hex>.hint (integers little-endian):
//!   0  4  magic "SVLH"
//!   4  1  hint format version = 1
//!   5  8  length of the segment it describes
//!  13  4  entry count N
//!  17     N entries, in segment order:
//!           kind u8 | id length L u8 | seq u64 | record offset u64 | payload length u32
//!           | extra length X u16 | id (L) | extra (X)
//! end-4 4 CRC-32 of every byte before it
//! ```
//!
//! `extra` is a put's sealed index summary, a stamp's sealed payload, empty for a
//! tombstone: everything secret in a hint is sealed by the store. A hint that fails any
//! check, or describes a segment of another length, is ignored and the segment replayed.

use super::record::{self, Kind, Record};
use crate::document::id;

const MAGIC: [u8; 4] = *b"SVLH";
const VERSION: u8 = 1;
const HEADER: usize = 17;
const ENTRY_HEADER: usize = 24;
const TRAILER: usize = 4;

/// What a hint (or a replayed record) tells open about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub seq: u64,
    /// Offset of the record in its segment.
    pub offset: u64,
    pub payload_len: u32,
    /// A put's summary, a stamp's payload, nothing for a tombstone.
    pub extra: &'a [u8],
}

/// An [`Entry`] that owns its id and extra bytes, kept while a segment is scanned record
/// by record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEntry {
    pub kind: Kind,
    pub id: String,
    pub seq: u64,
    pub offset: u64,
    pub payload_len: u32,
    pub extra: Vec<u8>,
}

impl OwnedEntry {
    /// The borrowed view, as hints and replay take it.
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            kind: self.kind,
            id: &self.id,
            seq: self.seq,
            offset: self.offset,
            payload_len: self.payload_len,
            extra: &self.extra,
        }
    }
}

impl<'a> Entry<'a> {
    /// An owned copy.
    pub fn owned(self) -> OwnedEntry {
        OwnedEntry {
            kind: self.kind,
            id: self.id.to_owned(),
            seq: self.seq,
            offset: self.offset,
            payload_len: self.payload_len,
            extra: self.extra.to_vec(),
        }
    }

    /// The entry of `record`, found at `offset`.
    pub fn of(record: &Record<'a>, offset: u64) -> Self {
        Entry {
            kind: record.kind,
            id: record.id,
            seq: record.seq,
            offset,
            // A parsed payload is at most record::MAX_PAYLOAD.
            payload_len: u32::try_from(record.payload.len()).unwrap_or(u32::MAX),
            extra: record.extra(),
        }
    }

    /// Bytes the record takes in its segment.
    pub fn record_len(&self) -> u64 {
        (record::HEADER + self.id.len()) as u64 + u64::from(self.payload_len)
    }
}

/// The hint of a segment of `segment_len` bytes holding `entries`.
pub fn encode(segment_len: u64, entries: &[Entry<'_>]) -> Vec<u8> {
    let body: usize = entries
        .iter()
        .map(|e| ENTRY_HEADER + e.id.len() + e.extra.len())
        .sum();
    let mut hint = Vec::with_capacity(HEADER + body + TRAILER);
    hint.extend_from_slice(&MAGIC);
    hint.push(VERSION);
    hint.extend_from_slice(&segment_len.to_le_bytes());
    // A segment of at most SEGMENT_LIMIT bytes holds far fewer than 2^32 records.
    hint.extend_from_slice(
        &u32::try_from(entries.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for entry in entries {
        hint.push(entry.kind as u8);
        // Ids are validated before they are written: at most 128 bytes.
        hint.push(u8::try_from(entry.id.len()).unwrap_or(u8::MAX));
        hint.extend_from_slice(&entry.seq.to_le_bytes());
        hint.extend_from_slice(&entry.offset.to_le_bytes());
        hint.extend_from_slice(&entry.payload_len.to_le_bytes());
        // A summary or a stamp is a few hundred bytes at most.
        hint.extend_from_slice(
            &u16::try_from(entry.extra.len())
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
        hint.extend_from_slice(entry.id.as_bytes());
        hint.extend_from_slice(entry.extra);
    }
    let crc = crc32fast::hash(&hint);
    hint.extend_from_slice(&crc.to_le_bytes());
    hint
}

/// The entries of `bytes` if it is a whole, undamaged hint of a segment of exactly
/// `segment_len` bytes whose every entry fits in it; `None` otherwise.
pub fn decode(bytes: &[u8], segment_len: u64) -> Option<Vec<Entry<'_>>> {
    let (body, crc) = bytes.split_last_chunk::<TRAILER>()?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (magic, rest) = body.split_first_chunk::<4>()?;
    let (&[version], rest) = rest.split_first_chunk::<1>()?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (count, mut rest) = rest.split_first_chunk::<4>()?;
    if *magic != MAGIC || version != VERSION || u64::from_le_bytes(*len) != segment_len {
        return None;
    }
    let count = usize::try_from(u32::from_le_bytes(*count)).ok()?;
    // Each entry takes at least ENTRY_HEADER bytes: a count beyond that is a lie.
    let mut entries = Vec::with_capacity(count.min(rest.len() / ENTRY_HEADER));
    for _ in 0..count {
        let (&[kind, id_len], tail) = rest.split_first_chunk::<2>()?;
        let (seq, tail) = tail.split_first_chunk::<8>()?;
        let (offset, tail) = tail.split_first_chunk::<8>()?;
        let (payload_len, tail) = tail.split_first_chunk::<4>()?;
        let (extra_len, tail) = tail.split_first_chunk::<2>()?;
        let (id, tail) = tail.split_at_checked(usize::from(id_len))?;
        let (extra, tail) = tail.split_at_checked(usize::from(u16::from_le_bytes(*extra_len)))?;
        rest = tail;
        let entry = Entry {
            kind: Kind::from_byte(kind)?,
            id: std::str::from_utf8(id).ok().filter(|id| id::is_valid(id))?,
            seq: u64::from_le_bytes(*seq),
            offset: u64::from_le_bytes(*offset),
            payload_len: u32::from_le_bytes(*payload_len),
            extra,
        };
        let payload_len = usize::try_from(entry.payload_len).ok()?;
        let fits = entry.offset.checked_add(entry.record_len())? <= segment_len
            && payload_len <= record::MAX_PAYLOAD;
        let consistent = match entry.kind {
            Kind::Put => extra.len() + record::SUMMARY_LEN_BYTES <= payload_len,
            Kind::Stamp => extra.len() == payload_len,
            Kind::Tombstone => payload_len == 0 && extra.is_empty(),
        };
        if !fits || !consistent {
            return None;
        }
        entries.push(entry);
    }
    rest.is_empty().then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry<'static>> {
        vec![
            Entry {
                kind: Kind::Put,
                id: "s1",
                seq: 1,
                offset: 0,
                payload_len: 100,
                extra: b"summary",
            },
            Entry {
                kind: Kind::Stamp,
                id: "s1",
                seq: 2,
                offset: 124,
                payload_len: 5,
                extra: b"stamp",
            },
            Entry {
                kind: Kind::Tombstone,
                id: "s2",
                seq: 3,
                offset: 153,
                payload_len: 0,
                extra: b"",
            },
        ]
    }

    #[test]
    fn a_hint_round_trips_for_its_own_segment_length_only() {
        let hint = encode(200, &entries());
        assert_eq!(decode(&hint, 200), Some(entries()));
        assert_eq!(decode(&hint, 201), None);
        assert_eq!(decode(&encode(0, &[]), 0), Some(vec![]));
    }

    #[test]
    fn any_damage_or_truncation_voids_the_whole_hint() {
        let hint = encode(200, &entries());
        for i in 0..hint.len() {
            let mut bad = hint.clone();
            bad[i] ^= 0x01;
            assert_eq!(decode(&bad, 200), None, "byte {i} flipped");
        }
        for len in 0..hint.len() {
            assert_eq!(decode(&hint[..len], 200), None, "cut at {len}");
        }
    }

    #[test]
    fn entries_past_the_segment_or_inconsistent_with_their_kind_void_it() {
        // The stamp's record (22 + 2 + 5 bytes at 124) ends at 153.
        assert_eq!(decode(&encode(152, &entries()), 152), None);
        let mut odd = entries();
        odd[2].payload_len = 1;
        assert_eq!(decode(&encode(200, &odd), 200), None);
        let mut odd = entries();
        odd[0].payload_len = 8;
        assert_eq!(decode(&encode(200, &odd), 200), None);
    }
}
