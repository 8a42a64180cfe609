//! The version ledger's bytes: a sealed snapshot of every session's latest version, then
//! one fixed-size sealed frame per change since (see `docs/FORMAT.md`). Its files are
//! `backend::ledger`'s (`LedgerFiles`); what the open store knows, `directory_store::ledger`'s
//! (`LedgerState`):
//!
//! ```text
//! offset  size  field (integers little-endian)
//!      0     4  magic "SVLG"
//!      4     1  ledger format version = 1
//!      5     8  generation: which snapshot this is (the metadata names the current one)
//!     13     4  key id of the snapshot
//!     17     8  floor: every sequence number up to it was spent at the snapshot
//!     25     1  flags: 1 = taken in a relaxed store
//!     26     4  B: snapshot blocks, at least 1
//!     30        B blocks: length L u32 (at most 1 MiB) | nonce 12 | AES-256-GCM of
//!               entries (seq u64 | id length u8 | id), L bytes with the tag
//!   then        frames, FRAME_LEN bytes each:
//!                 key id u32 | nonce 12 | AES-256-GCM of the change (139 bytes) | tag 16
//! change: kind u8 (1 written, 2 removed) | flags u8 (1: written unsynced) | seq u64
//!         | id length u8 | id, zero-padded to 128 bytes
//! ```
//!
//! Block *i*'s associated data is `"session-vault ledger snapshot" || store id || bytes
//! 0..30 || i (u32)`, so the header is authenticated by every block; a frame's is
//! `"session-vault ledger frame" || store id || generation || frame index u64 || key id`.
//! So a frame moved to another place, generation or store fails, and each frame stands
//! alone: one damaged frame hides no other.

use crate::document::id::{self, MAX_ID_LEN};
use crate::seal::crypto::{self, Key, NONCE_LEN, TAG_LEN};
use crate::seal::format::{DecodeError, Scope};

const MAGIC: [u8; 4] = *b"SVLG";
const VERSION: u8 = 1;
/// Bytes before the first snapshot block.
pub const HEADER_LEN: usize = 30;
/// Bytes before a snapshot block's sealed bytes: its length and nonce.
pub const BLOCK_PREFIX: usize = 4 + NONCE_LEN;
/// The largest sealed snapshot block: a snapshot of any size is cut into blocks of at
/// most this, so reading one never holds more. A larger declaration is refused before
/// anything is allocated.
pub const MAX_BLOCK: u32 = 1 << 20;
const CHANGE_LEN: usize = 1 + 1 + 8 + 1 + MAX_ID_LEN;
/// Bytes of every frame.
pub const FRAME_LEN: usize = 4 + NONCE_LEN + CHANGE_LEN + TAG_LEN;
const SNAPSHOT_AAD: &[u8] = b"session-vault ledger snapshot";
const FRAME_AAD: &[u8] = b"session-vault ledger frame";

/// What became of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Version `seq` of it was written.
    Written,
    /// It was removed; `seq` is the removal's own sequence number.
    Removed,
}

/// One change, as a frame records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub event: Event,
    /// The change's sequence number.
    pub seq: u64,
    /// Whether the change was made without a sync (a `relaxed` store), so a power loss
    /// may have lost it while keeping this frame.
    pub relaxed: bool,
    /// The session.
    pub id: String,
}

/// Every session's latest version at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every sequence number up to this one was spent when the snapshot was taken: a
    /// version at or below it of a session the snapshot lacks was removed.
    pub floor: u64,
    /// Whether it was taken in a `relaxed` store, whose latest writes a power loss may
    /// undo: then the versions it holds are not held against the store.
    pub relaxed: bool,
    /// Each session the store held, with its version.
    pub sessions: Vec<(String, u64)>,
}

/// The fixed header of a ledger file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The generation it is.
    pub generation: u64,
    /// The key its snapshot blocks are sealed under.
    pub key_id: u32,
    /// The snapshot's floor (see [`Snapshot::floor`]).
    pub floor: u64,
    /// Whether the snapshot was taken in a relaxed store.
    pub relaxed: bool,
    /// How many snapshot blocks follow.
    pub blocks: u32,
}

/// The header and the sealed snapshot blocks that start ledger `generation`.
pub fn seal_snapshot(
    snapshot: &Snapshot,
    scope: &Scope,
    generation: u64,
    key_id: u32,
    key: &Key,
) -> Result<Vec<u8>, crate::error::StoreError> {
    let mut blocks: Vec<Vec<u8>> = vec![Vec::new()];
    for (id, seq) in &snapshot.sessions {
        let entry_len = 8 + 1 + id.len();
        if blocks
            .last()
            .is_some_and(|b| b.len() + entry_len + TAG_LEN > MAX_BLOCK as usize)
        {
            blocks.push(Vec::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.extend_from_slice(&seq.to_le_bytes());
            // Ids are validated to at most 128 bytes.
            block.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
            block.extend_from_slice(id.as_bytes());
        }
    }
    let count = u32::try_from(blocks.len()).map_err(|e| {
        crate::error::StoreError::TooLarge(format!("{} snapshot blocks: {e}", blocks.len()))
    })?;
    let mut file = Vec::with_capacity(HEADER_LEN + blocks.iter().map(Vec::len).sum::<usize>());
    file.extend_from_slice(&MAGIC);
    file.push(VERSION);
    file.extend_from_slice(&generation.to_le_bytes());
    file.extend_from_slice(&key_id.to_le_bytes());
    file.extend_from_slice(&snapshot.floor.to_le_bytes());
    file.push(u8::from(snapshot.relaxed));
    file.extend_from_slice(&count.to_le_bytes());
    let fixed = file.clone();
    for (index, block) in (0u32..).zip(&blocks) {
        let nonce = crypto::nonce()?;
        let sealed = key.seal(&nonce, &block_aad(scope, &fixed, index), block)?;
        // Each block was cut to stay under MAX_BLOCK.
        let sealed_len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
        file.extend_from_slice(&sealed_len.to_le_bytes());
        file.extend_from_slice(&nonce);
        file.extend(sealed);
    }
    Ok(file)
}

/// Parses a ledger's fixed header: what it says is trusted only once a block opens.
pub fn header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let truncated = || DecodeError::Truncated(bytes.len());
    let (magic, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
    let (version, rest) = rest.split_first().ok_or_else(truncated)?;
    if *magic != MAGIC || *version != VERSION {
        return Err(DecodeError::Header);
    }
    let (generation, rest) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
    let (key_id, rest) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let (floor, rest) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
    let (flags, rest) = rest.split_first().ok_or_else(truncated)?;
    let (blocks, _) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let blocks = u32::from_le_bytes(*blocks);
    if blocks == 0 {
        return Err(DecodeError::Malformed(
            "a ledger without a snapshot block".into(),
        ));
    }
    Ok(Header {
        generation: u64::from_le_bytes(*generation),
        key_id: u32::from_le_bytes(*key_id),
        floor: u64::from_le_bytes(*floor),
        relaxed: flags & 1 == 1,
        blocks,
    })
}

/// The sealed length a block's 4-byte prefix declares, refused past [`MAX_BLOCK`] before
/// anything is read or allocated.
pub fn block_len(prefix: &[u8]) -> Result<u32, DecodeError> {
    let len = prefix
        .first_chunk::<4>()
        .map(|len| u32::from_le_bytes(*len))
        .ok_or(DecodeError::Truncated(prefix.len()))?;
    if !(TAG_LEN as u32..=MAX_BLOCK).contains(&len) {
        return Err(DecodeError::Malformed(format!(
            "a snapshot block of {len} bytes; the limit is {MAX_BLOCK}"
        )));
    }
    Ok(len)
}

/// Opens snapshot block `index` (its nonce and sealed bytes, after the length prefix) of
/// the ledger whose first [`HEADER_LEN`] bytes are `fixed`: the sessions it lists.
pub fn open_block<'k>(
    fixed: &[u8],
    index: u32,
    block: &[u8],
    scope: &Scope,
    key_for: impl Fn(u32) -> Option<&'k Key>,
) -> Result<Vec<(String, u64)>, DecodeError> {
    let header = header(fixed)?;
    let fixed = fixed
        .get(..HEADER_LEN)
        .ok_or(DecodeError::Truncated(fixed.len()))?;
    let (nonce, sealed) = block
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(DecodeError::Truncated(block.len()))?;
    let key = key_for(header.key_id).ok_or(DecodeError::MissingKey(header.key_id))?;
    let plaintext = key.open(nonce, &block_aad(scope, fixed, index), sealed)?;
    let malformed = || DecodeError::Malformed("a ledger snapshot entry cut short".into());
    let mut sessions = Vec::with_capacity(plaintext.len() / 16);
    let mut rest = plaintext.as_slice();
    while !rest.is_empty() {
        let (seq, tail) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
        let (len, tail) = tail.split_first().ok_or_else(malformed)?;
        let (name, tail) = tail
            .split_at_checked(usize::from(*len))
            .ok_or_else(malformed)?;
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|name| id::is_valid(name))
            .ok_or_else(|| {
                DecodeError::Malformed("a ledger snapshot names an invalid id".into())
            })?;
        sessions.push((name.to_owned(), u64::from_le_bytes(*seq)));
        rest = tail;
    }
    Ok(sessions)
}

/// The frame of `change` at `index` in ledger `generation`.
pub fn seal_frame(
    change: &Change,
    scope: &Scope,
    generation: u64,
    index: u64,
    key_id: u32,
    key: &Key,
) -> Result<Vec<u8>, crate::error::StoreError> {
    id::validate(&change.id)?;
    let mut plaintext = Vec::with_capacity(CHANGE_LEN);
    plaintext.push(match change.event {
        Event::Written => 1,
        Event::Removed => 2,
    });
    plaintext.push(u8::from(change.relaxed));
    plaintext.extend_from_slice(&change.seq.to_le_bytes());
    // A valid id is 1 to 128 bytes, so it fits the padded field.
    plaintext.push(u8::try_from(change.id.len()).unwrap_or(u8::MAX));
    plaintext.extend_from_slice(change.id.as_bytes());
    plaintext.resize(CHANGE_LEN, 0);
    let nonce = crypto::nonce()?;
    let mut frame = Vec::with_capacity(FRAME_LEN);
    frame.extend_from_slice(&key_id.to_le_bytes());
    frame.extend_from_slice(&nonce);
    let aad = frame_aad(scope, generation, index, key_id);
    frame.extend(key.seal(&nonce, &aad, &plaintext)?);
    Ok(frame)
}

/// Opens the frame at `index` of ledger `generation`; `None` if it is not one: torn,
/// damaged, moved, or under a key `key_for` does not give.
pub fn open_frame<'k>(
    frame: &[u8],
    scope: &Scope,
    generation: u64,
    index: u64,
    key_for: impl Fn(u32) -> Option<&'k Key>,
) -> Option<Change> {
    if frame.len() != FRAME_LEN {
        return None;
    }
    let (key_id, rest) = frame.split_first_chunk::<4>()?;
    let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
    let key_id = u32::from_le_bytes(*key_id);
    let key = key_for(key_id)?;
    let aad = frame_aad(scope, generation, index, key_id);
    let plaintext = key.open(nonce, &aad, sealed).ok()?;
    let (&[event, flags], rest) = plaintext.split_first_chunk::<2>()?;
    let (seq, rest) = rest.split_first_chunk::<8>()?;
    let (len, name) = rest.split_first()?;
    let event = match event {
        1 => Event::Written,
        2 => Event::Removed,
        _ => return None,
    };
    let id = std::str::from_utf8(name.get(..usize::from(*len))?).ok()?;
    id::is_valid(id).then(|| Change {
        event,
        seq: u64::from_le_bytes(*seq),
        relaxed: flags & 1 == 1,
        id: id.to_owned(),
    })
}

fn block_aad(scope: &Scope, fixed: &[u8], index: u32) -> Vec<u8> {
    let mut aad = SNAPSHOT_AAD.to_vec();
    aad.extend_from_slice(&scope.store_id);
    aad.extend_from_slice(fixed);
    aad.extend_from_slice(&index.to_le_bytes());
    aad
}

fn frame_aad(scope: &Scope, generation: u64, index: u64, key_id: u32) -> Vec<u8> {
    let mut aad = FRAME_AAD.to_vec();
    aad.extend_from_slice(&scope.store_id);
    aad.extend_from_slice(&generation.to_le_bytes());
    aad.extend_from_slice(&index.to_le_bytes());
    aad.extend_from_slice(&key_id.to_le_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::format::tests::SCOPE;

    fn key() -> Key {
        Key::from_raw(&[4; 32]).unwrap()
    }

    fn change(id: &str, seq: u64) -> Change {
        Change {
            event: Event::Written,
            seq,
            relaxed: false,
            id: id.into(),
        }
    }

    /// Reads a whole snapshot as the store does, block by block: (snapshot, frames at).
    fn read(file: &[u8], scope: &Scope, key: &Key) -> Result<(Snapshot, usize), DecodeError> {
        let header = header(file)?;
        let mut snapshot = Snapshot {
            floor: header.floor,
            relaxed: header.relaxed,
            sessions: Vec::new(),
        };
        let mut at = HEADER_LEN;
        for index in 0..header.blocks {
            let len = block_len(file.get(at..).unwrap_or_default())? as usize;
            let end = at + BLOCK_PREFIX + len;
            let block = file
                .get(at + 4..end)
                .ok_or(DecodeError::Truncated(file.len()))?;
            let fixed = &file[..HEADER_LEN];
            snapshot
                .sessions
                .extend(open_block(fixed, index, block, scope, |k| {
                    (k == 1).then_some(key)
                })?);
            at = end;
        }
        Ok((snapshot, at))
    }

    #[test]
    fn a_snapshot_round_trips_and_is_bound_to_its_store_and_generation() {
        let key = key();
        let snapshot = Snapshot {
            floor: 41,
            relaxed: true,
            sessions: vec![("a".into(), 3), ("b".repeat(128), 40)],
        };
        let file = seal_snapshot(&snapshot, &SCOPE, 7, 1, &key).unwrap();
        let header = header(&file).unwrap();
        assert_eq!((header.generation, header.key_id, header.blocks), (7, 1, 1));
        assert_eq!(read(&file, &SCOPE, &key), Ok((snapshot, file.len())));
        let other = Scope {
            store_id: [9; 16],
            ..SCOPE
        };
        assert!(read(&file, &other, &key).is_err());
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(read(&bad, &SCOPE, &key).is_err(), "byte {i} flipped");
        }
        assert!(read(&file[..file.len() - 1], &SCOPE, &key).is_err());
    }

    #[test]
    fn a_large_snapshot_is_cut_into_bounded_blocks_that_cannot_be_reordered() {
        let key = key();
        let snapshot = Snapshot {
            floor: 1 << 40,
            relaxed: false,
            sessions: (0..20_000u64).map(|i| (format!("{i:0>100}"), i)).collect(),
        };
        let file = seal_snapshot(&snapshot, &SCOPE, 3, 1, &key).unwrap();
        let header = header(&file).unwrap();
        assert_eq!(header.blocks, 3, "2.2 MB of entries in 1 MiB blocks");
        assert_eq!(read(&file, &SCOPE, &key), Ok((snapshot, file.len())));
        // Blocks swapped: each names its index.
        let first_len = block_len(&file[HEADER_LEN..]).unwrap() as usize + BLOCK_PREFIX;
        let second_at = HEADER_LEN + first_len;
        let second_len = block_len(&file[second_at..]).unwrap() as usize + BLOCK_PREFIX;
        let mut swapped = file[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&file[second_at..second_at + second_len]);
        swapped.extend_from_slice(&file[HEADER_LEN..second_at]);
        swapped.extend_from_slice(&file[second_at + second_len..]);
        assert!(read(&swapped, &SCOPE, &key).is_err());
    }

    #[test]
    fn a_hostile_block_length_is_refused_before_allocation() {
        let mut file = seal_snapshot(&Snapshot::default(), &SCOPE, 1, 1, &key()).unwrap();
        file[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            block_len(&file[HEADER_LEN..]),
            Err(DecodeError::Malformed(_))
        ));
        let mut none = file.clone();
        none[26..30].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(header(&none), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn frames_are_fixed_size_and_bound_to_their_place() {
        let key = key();
        let frame = seal_frame(&change("s1", 9), &SCOPE, 2, 5, 1, &key).unwrap();
        assert_eq!(frame.len(), FRAME_LEN);
        let open = |bytes: &[u8], generation, index| {
            open_frame(bytes, &SCOPE, generation, index, |k| {
                (k == 1).then_some(&key)
            })
        };
        assert_eq!(open(&frame, 2, 5), Some(change("s1", 9)));
        assert_eq!(open(&frame, 2, 6), None, "moved to another index");
        assert_eq!(open(&frame, 3, 5), None, "moved to another generation");
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 1;
            assert_eq!(open(&bad, 2, 5), None, "byte {i} flipped");
        }
        let removed = Change {
            event: Event::Removed,
            relaxed: true,
            ..change(&"x".repeat(128), u64::MAX)
        };
        let frame = seal_frame(&removed, &SCOPE, 2, 0, 1, &key).unwrap();
        assert_eq!(open(&frame, 2, 0), Some(removed));
    }
}
