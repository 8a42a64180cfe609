//! The version ledger's bytes: a sealed snapshot of every session's latest version, then
//! one fixed-size sealed frame per change since (see `docs/FORMAT.md`):
//!
//! ```text
//! offset  size  field (integers little-endian)
//!      0     4  magic "SVLG"
//!      4     1  ledger format version = 1
//!      5     8  generation: which snapshot this is (the metadata names the current one)
//!     13     4  key id of the snapshot
//!     17    12  nonce
//!     29     4  S: length of the sealed snapshot (plaintext + 16-byte tag)
//!     33     S  AES-256-GCM of: floor u64 | flags u8 (1: taken unsynced) | count u32
//!               | count × (seq u64 | id length u8 | id)
//!   33+S        frames, FRAME_LEN bytes each:
//!                 key id u32 | nonce 12 | AES-256-GCM of the change (139 bytes) | tag 16
//! change: kind u8 (1 written, 2 removed) | flags u8 (1: written unsynced) | seq u64
//!         | id length u8 | id, zero-padded to 128 bytes
//! ```
//!
//! The snapshot's associated data is `"session-vault ledger snapshot" || store id ||
//! bytes 0..33`; a frame's is `"session-vault ledger frame" || store id || generation ||
//! frame index u64 || key id`. So a frame moved to another place, generation or store
//! fails, and each frame stands alone: one damaged frame hides no other.

use crate::document::id::{self, MAX_ID_LEN};
use crate::seal::crypto::{self, Key, NONCE_LEN, TAG_LEN};
use crate::seal::format::{DecodeError, Scope};

const MAGIC: [u8; 4] = *b"SVLG";
const VERSION: u8 = 1;
/// Bytes before the sealed snapshot.
pub const HEADER_LEN: usize = 33;
/// The largest sealed snapshot a ledger may declare: about a million sessions of
/// 128-byte ids. A larger declaration is refused before anything is allocated.
pub const MAX_SNAPSHOT: u32 = 256 << 20;
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
    /// The key its snapshot is sealed under.
    pub key_id: u32,
    nonce: [u8; NONCE_LEN],
    /// Bytes of the sealed snapshot after the header.
    pub snapshot_len: u32,
}

impl Header {
    /// Where the frames start.
    pub fn frames_at(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.snapshot_len)
    }
}

/// The header and sealed snapshot that start ledger `generation`.
pub fn seal_snapshot(
    snapshot: &Snapshot,
    scope: &Scope,
    generation: u64,
    key_id: u32,
    key: &Key,
) -> Result<Vec<u8>, crate::StoreError> {
    let mut plaintext = Vec::with_capacity(12 + snapshot.sessions.len() * 48);
    plaintext.extend_from_slice(&snapshot.floor.to_le_bytes());
    plaintext.push(u8::from(snapshot.relaxed));
    let count = u32::try_from(snapshot.sessions.len()).map_err(|e| {
        crate::StoreError::TooLarge(format!(
            "{} sessions in one snapshot: {e}",
            snapshot.sessions.len()
        ))
    })?;
    plaintext.extend_from_slice(&count.to_le_bytes());
    for (id, seq) in &snapshot.sessions {
        plaintext.extend_from_slice(&seq.to_le_bytes());
        // Ids are validated to at most 128 bytes.
        plaintext.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        plaintext.extend_from_slice(id.as_bytes());
    }
    let sealed_len = u32::try_from(plaintext.len() + TAG_LEN)
        .ok()
        .filter(|len| *len <= MAX_SNAPSHOT)
        .ok_or_else(|| {
            crate::StoreError::TooLarge(format!(
                "a ledger snapshot of {} bytes; the limit is {MAX_SNAPSHOT}",
                plaintext.len()
            ))
        })?;
    let nonce = crypto::nonce()?;
    let mut file = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    file.extend_from_slice(&MAGIC);
    file.push(VERSION);
    file.extend_from_slice(&generation.to_le_bytes());
    file.extend_from_slice(&key_id.to_le_bytes());
    file.extend_from_slice(&nonce);
    file.extend_from_slice(&sealed_len.to_le_bytes());
    let aad = snapshot_aad(scope, &file);
    file.extend(key.seal(&nonce, &aad, &plaintext)?);
    Ok(file)
}

/// Parses a ledger's fixed header.
pub fn header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let (magic, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(DecodeError::Truncated(bytes.len()))?;
    let (version, rest) = rest
        .split_first()
        .ok_or(DecodeError::Truncated(bytes.len()))?;
    if *magic != MAGIC || *version != VERSION {
        return Err(DecodeError::Header);
    }
    let truncated = || DecodeError::Truncated(bytes.len());
    let (generation, rest) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
    let (key_id, rest) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let (nonce, rest) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or_else(truncated)?;
    let (snapshot_len, _) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let snapshot_len = u32::from_le_bytes(*snapshot_len);
    if snapshot_len > MAX_SNAPSHOT {
        return Err(DecodeError::Malformed(format!(
            "a ledger snapshot of {snapshot_len} bytes; the limit is {MAX_SNAPSHOT}"
        )));
    }
    Ok(Header {
        generation: u64::from_le_bytes(*generation),
        key_id: u32::from_le_bytes(*key_id),
        nonce: *nonce,
        snapshot_len,
    })
}

/// Opens the snapshot that `head` (the header's bytes and the sealed snapshot, exactly)
/// holds.
pub fn open_snapshot<'k>(
    head: &[u8],
    scope: &Scope,
    key_for: impl Fn(u32) -> Option<&'k Key>,
) -> Result<Snapshot, DecodeError> {
    let header = header(head)?;
    let (fixed, sealed) = head
        .split_at_checked(HEADER_LEN)
        .ok_or(DecodeError::Truncated(head.len()))?;
    if sealed.len() != header.snapshot_len as usize {
        return Err(DecodeError::Truncated(head.len()));
    }
    let key = key_for(header.key_id).ok_or(DecodeError::MissingKey(header.key_id))?;
    let plaintext = key.open(&header.nonce, &snapshot_aad(scope, fixed), sealed)?;
    let malformed = || DecodeError::Malformed("a ledger snapshot cut short".into());
    let (floor, rest) = plaintext.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (flags, rest) = rest.split_first().ok_or_else(malformed)?;
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
    let count = u32::from_le_bytes(*count) as usize;
    // Each entry takes at least 10 bytes: a count beyond that is a lie, not an allocation.
    let mut sessions = Vec::with_capacity(count.min(rest.len() / 10));
    for _ in 0..count {
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
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(
            "bytes after a ledger snapshot's last entry".into(),
        ));
    }
    Ok(Snapshot {
        floor: u64::from_le_bytes(*floor),
        relaxed: flags & 1 == 1,
        sessions,
    })
}

/// The frame of `change` at `index` in ledger `generation`.
pub fn seal_frame(
    change: &Change,
    scope: &Scope,
    generation: u64,
    index: u64,
    key_id: u32,
    key: &Key,
) -> Result<Vec<u8>, crate::StoreError> {
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

fn snapshot_aad(scope: &Scope, fixed: &[u8]) -> Vec<u8> {
    let mut aad = SNAPSHOT_AAD.to_vec();
    aad.extend_from_slice(&scope.store_id);
    aad.extend_from_slice(fixed);
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
        assert_eq!((header.generation, header.key_id), (7, 1));
        assert_eq!(header.frames_at(), file.len() as u64);
        let open =
            |bytes: &[u8], scope: &Scope| open_snapshot(bytes, scope, |k| (k == 1).then_some(&key));
        assert_eq!(open(&file, &SCOPE), Ok(snapshot));
        let other = Scope {
            store_id: [9; 16],
            ..SCOPE
        };
        assert!(open(&file, &other).is_err());
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(open(&bad, &SCOPE).is_err(), "byte {i} flipped");
        }
        assert!(open(&file[..file.len() - 1], &SCOPE).is_err());
    }

    #[test]
    fn a_hostile_snapshot_length_is_refused_before_allocation() {
        let mut file = seal_snapshot(&Snapshot::default(), &SCOPE, 1, 1, &key()).unwrap();
        file[29..33].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(header(&file), Err(DecodeError::Malformed(_))));
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
