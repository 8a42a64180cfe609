//! The index block of a `log` hint: the summaries and access stamps of every record of
//! one closed segment, sealed once, so that opening a store costs one AEAD per segment
//! (a few thousand sessions) instead of one per session.
//!
//! A sealed record (see [`crate::seal::format`]) of kind [`Kind::IndexBlock`], sealed
//! under the store's current key when the hint is written, its sequence number field
//! holding the segment's number and its id [`BLOCK_ID`], so that a block moved to the
//! hint of another segment or another store fails to open. Its plaintext
//! (integers little-endian):
//!
//! ```text
//!   0  8  length of the segment it describes
//!   8  4  item count N
//!  12     N items, in segment order:
//!           kind u8 (1 summary, 2 stamp) | key id u32 | record seq u64 | version u64
//!           | id length L u8 | body length B u16 | id (L) | body (B)
//! ```
//!
//! A summary's body is the plaintext of the record's sealed summary
//! ([`crate::seal::summary`]), a stamp's that of its sealed stamp
//! ([`crate::seal::stamp`]). The key id and version are those of that seal's header (the
//! session's key and write sequence number), so the store knows which key each session
//! is under, and which version it is, without opening it; the record seq is the log
//! record's own, which says whether the item is still the latest of its id.

use crate::document::id;
use crate::seal::crypto::Key;
use crate::seal::format::{self, DecodeError, Kind, Scope};

/// The id every index block is sealed for (the AEAD binds its kind and segment too).
pub const BLOCK_ID: &str = "log-hint";
const FIXED: usize = 8 + 4;
const ITEM_FIXED: usize = 1 + 4 + 8 + 8 + 1 + 2;

/// What an item describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A session record: its summary.
    Summary = 1,
    /// An access stamp record.
    Stamp = 2,
}

/// One record of the segment, as the block holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// Summary or stamp.
    pub kind: ItemKind,
    /// The key id of the record's own seal.
    pub key_id: u32,
    /// The log record's sequence number.
    pub seq: u64,
    /// The session's version: its seal's sequence number.
    pub version: u64,
    /// The session's id.
    pub id: &'a str,
    /// The plaintext of its summary or stamp.
    pub body: &'a [u8],
}

/// Seals the block of `items` for segment `segment`, `segment_len` bytes long.
pub fn seal(
    items: &[Item<'_>],
    segment: u64,
    segment_len: u64,
    key_id: u32,
    key: &Key,
    scope: &Scope,
) -> Result<Vec<u8>, crate::error::StoreError> {
    let body: usize = items
        .iter()
        .map(|i| ITEM_FIXED + i.id.len() + i.body.len())
        .sum();
    let mut plaintext = Vec::with_capacity(FIXED + body);
    plaintext.extend_from_slice(&segment_len.to_le_bytes());
    // A segment of at most 16 MiB holds far fewer than 2^32 records.
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
    plaintext.extend_from_slice(&count.to_le_bytes());
    for item in items {
        plaintext.push(item.kind as u8);
        plaintext.extend_from_slice(&item.key_id.to_le_bytes());
        plaintext.extend_from_slice(&item.seq.to_le_bytes());
        plaintext.extend_from_slice(&item.version.to_le_bytes());
        // Ids are validated (at most 128 bytes); bodies are a summary or a stamp.
        plaintext.push(u8::try_from(item.id.len()).unwrap_or(u8::MAX));
        plaintext.extend_from_slice(
            &u16::try_from(item.body.len())
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
        plaintext.extend_from_slice(item.id.as_bytes());
        plaintext.extend_from_slice(item.body);
    }
    format::encode(
        Kind::IndexBlock,
        key_id,
        key,
        scope,
        segment,
        BLOCK_ID,
        &plaintext,
    )
}

/// An opened block.
#[derive(Debug)]
pub struct Block {
    plaintext: Vec<u8>,
}

/// Opens the block of segment `segment`, `segment_len` bytes long.
pub fn open<'k>(
    sealed: &[u8],
    segment: u64,
    segment_len: u64,
    scope: &Scope,
    key_for: impl Fn(u32) -> Option<&'k Key>,
) -> Result<Block, DecodeError> {
    let opened = format::decode(sealed, Kind::IndexBlock, scope, BLOCK_ID, key_for)?;
    let described = opened
        .plaintext
        .first_chunk::<8>()
        .map(|len| u64::from_le_bytes(*len));
    if opened.header.seq != segment || described != Some(segment_len) {
        return Err(DecodeError::Malformed(format!(
            "the index block of segment {} ({described:?} bytes) in the hint of segment \
             {segment} ({segment_len} bytes)",
            opened.header.seq
        )));
    }
    Ok(Block {
        plaintext: opened.plaintext,
    })
}

impl Block {
    /// Its items, in segment order. Authentic bytes that do not parse (which only a bug
    /// could write) are an error, for the whole block.
    pub fn items(&self) -> Result<Vec<Item<'_>>, DecodeError> {
        let malformed = |what: &str| DecodeError::Malformed(format!("index block: {what}"));
        let rest = self
            .plaintext
            .get(8..)
            .ok_or_else(|| malformed("too short"))?;
        let (count, mut rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("no item count"))?;
        let count = u32::from_le_bytes(*count) as usize;
        let mut items = Vec::with_capacity(count.min(rest.len() / ITEM_FIXED));
        for _ in 0..count {
            let item = (|| {
                let (&[kind], tail) = rest.split_first_chunk::<1>()?;
                let (key_id, tail) = tail.split_first_chunk::<4>()?;
                let (seq, tail) = tail.split_first_chunk::<8>()?;
                let (version, tail) = tail.split_first_chunk::<8>()?;
                let (&[id_len], tail) = tail.split_first_chunk::<1>()?;
                let (body_len, tail) = tail.split_first_chunk::<2>()?;
                let (id, tail) = tail.split_at_checked(usize::from(id_len))?;
                let (body, tail) =
                    tail.split_at_checked(usize::from(u16::from_le_bytes(*body_len)))?;
                rest = tail;
                Some(Item {
                    kind: match kind {
                        1 => ItemKind::Summary,
                        2 => ItemKind::Stamp,
                        _ => return None,
                    },
                    key_id: u32::from_le_bytes(*key_id),
                    seq: u64::from_le_bytes(*seq),
                    version: u64::from_le_bytes(*version),
                    id: std::str::from_utf8(id).ok().filter(|id| id::is_valid(id))?,
                    body,
                })
            })()
            .ok_or_else(|| malformed("an item does not parse"))?;
            items.push(item);
        }
        if !rest.is_empty() {
            return Err(malformed("bytes after the last item"));
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::format::tests::SCOPE;

    fn items() -> Vec<Item<'static>> {
        vec![
            Item {
                kind: ItemKind::Summary,
                key_id: 1,
                seq: 10,
                version: 4,
                id: "s1",
                body: b"a summary",
            },
            Item {
                kind: ItemKind::Stamp,
                key_id: 2,
                seq: 11,
                version: 4,
                id: "s1",
                body: b"a stamp",
            },
        ]
    }

    fn key() -> Key {
        Key::from_raw(&[3; 32]).unwrap()
    }

    #[test]
    fn a_block_round_trips_for_its_own_segment_only() {
        let key = key();
        let sealed = seal(&items(), 7, 4096, 2, &key, &SCOPE).unwrap();
        let open = |bytes: &[u8], segment, len| {
            open(bytes, segment, len, &SCOPE, |k| (k == 2).then_some(&key))
        };
        let block = open(&sealed, 7, 4096).unwrap();
        assert_eq!(block.items().unwrap(), items());
        assert!(matches!(
            open(&sealed, 8, 4096),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            open(&sealed, 7, 4095),
            Err(DecodeError::Malformed(_))
        ));
        let empty = seal(&[], 1, 0, 2, &key, &SCOPE).unwrap();
        assert_eq!(open(&empty, 1, 0).unwrap().items().unwrap(), vec![]);
    }

    #[test]
    fn any_damage_or_another_key_fails_to_open() {
        let key = key();
        let sealed = seal(&items(), 7, 4096, 2, &key, &SCOPE).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x20;
            assert!(
                open(&bad, 7, 4096, &SCOPE, |k| (k == 2).then_some(&key)).is_err(),
                "byte {i} flipped"
            );
        }
        assert!(matches!(
            open(&sealed, 7, 4096, &SCOPE, |_| None),
            Err(DecodeError::MissingKey(2))
        ));
    }

    #[test]
    fn a_block_whose_items_do_not_parse_is_refused_whole() {
        let key = key();
        let bad_id = Item {
            id: "not/an id",
            ..items()[0]
        };
        let sealed = seal(&[bad_id], 7, 4096, 2, &key, &SCOPE).unwrap();
        let block = open(&sealed, 7, 4096, &SCOPE, |k| (k == 2).then_some(&key)).unwrap();
        assert!(matches!(block.items(), Err(DecodeError::Malformed(_))));
    }
}
