//! Entry points for the cargo-fuzz targets in `fuzz/` (built only with `--cfg fuzzing`).

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
        Some((entries, block)) => {
            assert_eq!(hint::encode(len, &entries, block), bytes);
            entries.len()
        }
        None => 0,
    }
}
