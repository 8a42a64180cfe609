//! Segment records: their byte layout, encoding, checked parsing and resynchronisation
//! after damage.
//!
//! ```text
//! record (all integers little-endian):
//!   0   4  magic "SVLR"
//!   4   1  kind: 1 put, 2 tombstone, 3 access stamp
//!   5   1  id length L (1..=128)
//!   6   4  payload length P
//!  10   8  sequence number (unique, increasing across the store's life)
//!  18   4  CRC-32 of bytes 4..18, the id and the payload
//!  22   L  id
//! 22+L  P  payload
//!
//! put payload:     summary length S (u16) | sealed index summary (S) | session blob
//! stamp payload:   the sealed access stamp (82 bytes; 74 if written by 0.1.0)
//! tombstone:       empty
//! ```

use crate::document::id;
use crate::error::StoreError;

/// The first bytes of every record.
pub const MAGIC: [u8; 4] = *b"SVLR";
/// Bytes before a record's id.
pub const HEADER: usize = 22;
/// The largest payload a record may declare: a session blob at the largest size limit,
/// with its summary.
pub const MAX_PAYLOAD: usize = crate::document::MAX_MAX_SESSION_BYTES as usize + 1024;
/// The longest record: a header, the longest id and the longest payload.
pub const MAX_RECORD: usize = HEADER + id::MAX_ID_LEN + MAX_PAYLOAD;
/// The bytes of a put's payload before its summary.
pub const SUMMARY_LEN_BYTES: usize = 2;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session's blob and its sealed index summary.
    Put = 1,
    /// The session was removed: older records of its id are dead.
    Tombstone = 2,
    /// A session's access stamp.
    Stamp = 3,
}

impl Kind {
    /// The kind a record's byte names, if any.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Put),
            2 => Some(Kind::Tombstone),
            3 => Some(Kind::Stamp),
            _ => None,
        }
    }
}

/// A record parsed from a segment.
pub struct Record<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub payload: &'a [u8],
    pub seq: u64,
    /// Bytes the whole record takes.
    pub len: usize,
}

impl<'a> Record<'a> {
    /// What a hint keeps of the record: a put's summary, a stamp's payload, nothing of
    /// a tombstone.
    pub fn extra(&self) -> &'a [u8] {
        match self.kind {
            Kind::Put => split_put(self.payload).map_or(&[], |(summary, _)| summary),
            Kind::Stamp => self.payload,
            Kind::Tombstone => &[],
        }
    }
}

/// The payload of a put of `blob` with `summary`.
pub fn put_payload(summary: &[u8], blob: &[u8]) -> Result<Vec<u8>, StoreError> {
    let summary_len = u16::try_from(summary.len()).map_err(|overflow| {
        StoreError::TooLarge(format!("a summary of {} bytes: {overflow}", summary.len()))
    })?;
    let mut payload = Vec::with_capacity(SUMMARY_LEN_BYTES + summary.len() + blob.len());
    payload.extend_from_slice(&summary_len.to_le_bytes());
    payload.extend_from_slice(summary);
    payload.extend_from_slice(blob);
    Ok(payload)
}

/// A put's payload split into its summary and its blob; `None` if it is not laid out as one.
pub fn split_put(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = payload.split_first_chunk::<SUMMARY_LEN_BYTES>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// The bytes of a record.
pub fn encode(kind: Kind, id: &str, payload: &[u8], seq: u64) -> Result<Vec<u8>, StoreError> {
    id::validate(id)?;
    // A valid id is at most 128 bytes.
    let id_len = u8::try_from(id.len()).unwrap_or(u8::MAX);
    if payload.len() > MAX_PAYLOAD {
        return Err(StoreError::TooLarge(format!(
            "a record of {} bytes; the limit is {MAX_PAYLOAD}",
            payload.len()
        )));
    }
    // MAX_PAYLOAD fits in a u32.
    let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut record = Vec::with_capacity(HEADER + id.len() + payload.len());
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

/// The record at `pos`, if a whole, undamaged, well-formed one starts there.
pub fn parse(bytes: &[u8], pos: usize) -> Option<Record<'_>> {
    let header = bytes.get(pos..pos.checked_add(HEADER)?)?;
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
    let id_start = pos + HEADER;
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
    let well_formed = match kind {
        Kind::Put => split_put(payload).is_some(),
        Kind::Stamp => true,
        Kind::Tombstone => payload.is_empty(),
    };
    well_formed.then_some(Record {
        kind,
        id,
        payload,
        seq: u64::from_le_bytes(*seq),
        len: end - pos,
    })
}

/// The length a record header declares (header, id and payload), if it is a plausible
/// header: our magic, a known kind, an id length and a payload length within bounds.
pub fn declared_len(header: &[u8]) -> Option<usize> {
    let header = header.get(..HEADER)?;
    if header.get(..4)? != MAGIC {
        return None;
    }
    Kind::from_byte(*header.get(4)?)?;
    let id_len = usize::from(*header.get(5)?);
    let payload_len =
        usize::try_from(u32::from_le_bytes(header.get(6..10)?.try_into().ok()?)).ok()?;
    if id_len == 0 || id_len > id::MAX_ID_LEN || payload_len > MAX_PAYLOAD {
        return None;
    }
    Some(HEADER + id_len + payload_len)
}

/// The offset of the next whole record at or after `from`, in a buffer (the fuzz target's
/// model of [`super::scan`], which searches a file chunk by chunk).
#[cfg(any(test, feature = "testing"))]
pub fn next(bytes: &[u8], from: usize) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_damage_is_detected() {
        let payload = put_payload(b"sum", b"blob").unwrap();
        let bytes = encode(Kind::Put, "s1", &payload, 9).unwrap();
        let record = parse(&bytes, 0).unwrap();
        assert_eq!(
            (record.kind, record.id, record.seq, record.len),
            (Kind::Put, "s1", 9, bytes.len())
        );
        assert_eq!(split_put(record.payload), Some((&b"sum"[..], &b"blob"[..])));
        assert_eq!(record.extra(), b"sum");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(parse(&bad, 0).is_none(), "byte {i} flipped");
        }
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len], 0).is_none(), "cut at {len}");
        }
    }

    #[test]
    fn malformed_payloads_are_not_records() {
        // A put whose summary length runs past its payload, a tombstone with a payload.
        let bad_put = encode(Kind::Put, "s1", &[9, 0, 1], 1).unwrap();
        assert!(parse(&bad_put, 0).is_none());
        let bad_tombstone = encode(Kind::Tombstone, "s1", b"x", 1).unwrap();
        assert!(parse(&bad_tombstone, 0).is_none());
        assert!(encode(Kind::Put, "../x", b"", 1).is_err());
    }

    #[test]
    fn scanning_finds_the_next_whole_record() {
        let mut bytes = b"junkSVLRjunk".to_vec();
        let at = bytes.len();
        bytes.extend(encode(Kind::Tombstone, "s1", b"", 1).unwrap());
        assert_eq!(next(&bytes, 0), Some(at));
        assert_eq!(next(&bytes, at + 1), None);
    }
}
