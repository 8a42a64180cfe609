//! Hint files: for each closed segment, what open needs of its records without their
//! session blobs, so that opening a store reads a few dozen bytes per session.
//!
//! ```text
//! log/<16 hex>.hint (integers little-endian):
//!   0  4  magic "SVLH"
//!   4  1  hint format version: 1, or 2 with an index block
//!   5  8  length of the segment it describes
//!  13  4  entry count N
//!  (version 2 only:
//!  17  4  index block length B
//!  21  B  the sealed index block, see crate::seal::index_block)
//!   .     N entries, in segment order:
//!           kind u8 | id length L u8 | seq u64 | record offset u64 | payload length u32
//!           | extra length X u16 | id (L) | extra (X)
//! end-4 4 CRC-32 of every byte before it
//! ```
//!
//! In version 1, `extra` is a put's sealed index summary, a stamp's sealed payload, empty
//! for a tombstone: everything secret in a hint is sealed by the store. In version 2
//! every `extra` is empty: the summaries and stamps are in the index block, sealed once
//! (the store lends the log what seals it; a hint written without it, at open, is
//! version 1). A hint that fails any check, or describes a segment of another length, is
//! ignored and the segment replayed; a block that does not open costs the store a read of
//! each session it covers, nothing else.

use super::record::{self, Kind, Record};
use crate::document::id;

const MAGIC: [u8; 4] = *b"SVLH";
const VERSION: u8 = 1;
const VERSION_BLOCK: u8 = 2;
const HEADER: usize = 17;
/// Where a format-2 hint's sealed index block starts: after the header and its length.
pub const BLOCK_OFFSET: u64 = HEADER as u64 + 4;
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
    /// A put's summary, a stamp's payload, nothing for a tombstone; nothing at all in a
    /// hint with an index block.
    pub extra: &'a [u8],
    /// A put's summary length (its blob starts after it), even where `extra` is left out.
    pub summary_len: u16,
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
            summary_len: summary_len(self.kind, &self.extra),
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
            summary_len: summary_len(record.kind, record.extra()),
        }
    }

    /// Bytes the record takes in its segment.
    pub fn record_len(&self) -> u64 {
        (record::HEADER + self.id.len()) as u64 + u64::from(self.payload_len)
    }
}

/// The summary length of a record of `kind` whose extra bytes are `extra`.
fn summary_len(kind: Kind, extra: &[u8]) -> u16 {
    match kind {
        // A summary longer than u16::MAX is refused before it is written.
        Kind::Put => u16::try_from(extra.len()).unwrap_or(u16::MAX),
        _ => 0,
    }
}

/// The hint of a segment of `segment_len` bytes holding `entries`; with `block` (their
/// sealed index block), version 2, leaving every entry's `extra` out.
pub fn encode<'a>(segment_len: u64, entries: &[Entry<'a>], block: Option<&[u8]>) -> Vec<u8> {
    let extras = |e: &Entry<'a>| -> &'a [u8] { if block.is_some() { &[] } else { e.extra } };
    let body: usize = entries
        .iter()
        .map(|e| ENTRY_HEADER + e.id.len() + extras(e).len())
        .sum();
    let block_len = block.map_or(0, |b| 4 + b.len());
    let mut hint = Vec::with_capacity(HEADER + block_len + body + TRAILER);
    hint.extend_from_slice(&MAGIC);
    hint.push(if block.is_some() {
        VERSION_BLOCK
    } else {
        VERSION
    });
    hint.extend_from_slice(&segment_len.to_le_bytes());
    // A segment of at most SEGMENT_MAX bytes holds far fewer than 2^32 records.
    hint.extend_from_slice(
        &u32::try_from(entries.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    if let Some(block) = block {
        // A block of one segment's summaries is far below 4 GiB.
        hint.extend_from_slice(&u32::try_from(block.len()).unwrap_or(u32::MAX).to_le_bytes());
        hint.extend_from_slice(block);
    }
    for entry in entries {
        let extra = extras(entry);
        hint.push(entry.kind as u8);
        // Ids are validated before they are written: at most 128 bytes.
        hint.push(u8::try_from(entry.id.len()).unwrap_or(u8::MAX));
        hint.extend_from_slice(&entry.seq.to_le_bytes());
        hint.extend_from_slice(&entry.offset.to_le_bytes());
        hint.extend_from_slice(&entry.payload_len.to_le_bytes());
        // A summary or a stamp is a few hundred bytes at most. Beside a block, a put's
        // extra length is its summary's, whose bytes are in the block.
        let extra_len = if block.is_some() {
            entry.summary_len
        } else {
            u16::try_from(extra.len()).unwrap_or(u16::MAX)
        };
        hint.extend_from_slice(&extra_len.to_le_bytes());
        hint.extend_from_slice(entry.id.as_bytes());
        hint.extend_from_slice(extra);
    }
    let crc = crc32fast::hash(&hint);
    hint.extend_from_slice(&crc.to_le_bytes());
    hint
}

/// A decoded hint: its entries, and its sealed index block if it has one.
pub type Decoded<'a> = (Vec<Entry<'a>>, Option<&'a [u8]>);

/// The entries (and index block) of `bytes` if it is a whole, undamaged hint of a
/// segment of exactly `segment_len` bytes whose every entry fits in it; `None` otherwise.
pub fn decode(bytes: &[u8], segment_len: u64) -> Option<Decoded<'_>> {
    let (body, crc) = bytes.split_last_chunk::<TRAILER>()?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (magic, rest) = body.split_first_chunk::<4>()?;
    let (&[version], rest) = rest.split_first_chunk::<1>()?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (count, rest) = rest.split_first_chunk::<4>()?;
    if *magic != MAGIC || u64::from_le_bytes(*len) != segment_len {
        return None;
    }
    let (block, mut rest) = match version {
        VERSION => (None, rest),
        VERSION_BLOCK => {
            let (block_len, rest) = rest.split_first_chunk::<4>()?;
            let block_len = usize::try_from(u32::from_le_bytes(*block_len)).ok()?;
            let (block, rest) = rest.split_at_checked(block_len)?;
            (Some(block), rest)
        }
        _ => return None,
    };
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
        let kind = Kind::from_byte(kind)?;
        let extra_len = u16::from_le_bytes(*extra_len);
        // Beside a block no extra bytes follow: a put's extra length is its summary's.
        let stored = if block.is_some() { 0 } else { extra_len };
        let (extra, tail) = tail.split_at_checked(usize::from(stored))?;
        rest = tail;
        let entry = Entry {
            kind,
            id: std::str::from_utf8(id).ok().filter(|id| id::is_valid(id))?,
            seq: u64::from_le_bytes(*seq),
            offset: u64::from_le_bytes(*offset),
            payload_len: u32::from_le_bytes(*payload_len),
            extra,
            summary_len: if kind == Kind::Put { extra_len } else { 0 },
        };
        let payload_len = usize::try_from(entry.payload_len).ok()?;
        let fits = entry.offset.checked_add(entry.record_len())? <= segment_len
            && payload_len <= record::MAX_PAYLOAD;
        let consistent = match entry.kind {
            Kind::Put => usize::from(extra_len) + record::SUMMARY_LEN_BYTES <= payload_len,
            // With a block, stamps are in it.
            Kind::Stamp if block.is_some() => extra_len == 0,
            Kind::Stamp => extra.len() == payload_len,
            Kind::Tombstone => payload_len == 0 && extra.is_empty(),
        };
        if !fits || !consistent {
            return None;
        }
        entries.push(entry);
    }
    rest.is_empty().then_some((entries, block))
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
                summary_len: 7,
            },
            Entry {
                kind: Kind::Stamp,
                id: "s1",
                seq: 2,
                offset: 124,
                payload_len: 5,
                extra: b"stamp",
                summary_len: 0,
            },
            Entry {
                kind: Kind::Tombstone,
                id: "s2",
                seq: 3,
                offset: 153,
                payload_len: 0,
                extra: b"",
                summary_len: 0,
            },
        ]
    }

    /// `entries()` as a hint with an index block holds them: no extras.
    fn without_extras() -> Vec<Entry<'static>> {
        let mut entries = entries();
        for entry in &mut entries {
            entry.extra = b"";
        }
        entries
    }

    #[test]
    fn a_hint_round_trips_for_its_own_segment_length_only() {
        let hint = encode(200, &entries(), None);
        assert_eq!(decode(&hint, 200), Some((entries(), None)));
        assert_eq!(decode(&hint, 201), None);
        assert_eq!(decode(&encode(0, &[], None), 0), Some((vec![], None)));
    }

    #[test]
    fn a_hint_with_an_index_block_keeps_no_extras() {
        let hint = encode(200, &entries(), Some(b"sealed block"));
        assert_eq!(hint[4], VERSION_BLOCK);
        assert_eq!(
            decode(&hint, 200),
            Some((without_extras(), Some(&b"sealed block"[..])))
        );
        assert!(hint.len() < encode(200, &entries(), None).len() + 16);
    }

    #[test]
    fn any_damage_or_truncation_voids_the_whole_hint() {
        for hint in [
            encode(200, &entries(), None),
            encode(200, &entries(), Some(b"sealed block")),
        ] {
            for i in 0..hint.len() {
                let mut bad = hint.clone();
                bad[i] ^= 0x01;
                assert_eq!(decode(&bad, 200), None, "byte {i} flipped");
            }
            for len in 0..hint.len() {
                assert_eq!(decode(&hint[..len], 200), None, "cut at {len}");
            }
        }
    }

    #[test]
    fn entries_past_the_segment_or_inconsistent_with_their_kind_void_it() {
        // The stamp's record (22 + 2 + 5 bytes at 124) ends at 153.
        assert_eq!(decode(&encode(152, &entries(), None), 152), None);
        let mut odd = entries();
        odd[2].payload_len = 1;
        assert_eq!(decode(&encode(200, &odd, None), 200), None);
        let mut odd = entries();
        odd[0].payload_len = 8;
        assert_eq!(decode(&encode(200, &odd, None), 200), None);
    }
}
