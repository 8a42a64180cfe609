//! The sealed record of format v1 (see `docs/FORMAT.md`), used by session files and
//! access stamps:
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SVLT"
//!      4     1  format version = 1
//!      5     1  record kind: 1 session, 2 access stamp
//!      6     4  key id, u32 little-endian
//!     10    12  nonce
//!     22     n  AES-256-GCM ciphertext of the session's JSON
//!   22+n    16  GCM tag
//! ```
//!
//! Associated data = bytes 0..10 || id length (1 byte) || id bytes, so a file copied or
//! renamed to another id, or relabelled with another version, kind or key id, fails to open.

use crate::seal::crypto::{Key, NONCE_LEN, TAG_LEN, Unauthentic};

/// The first four bytes of every session-vault file.
pub const MAGIC: [u8; 4] = *b"SVLT";
/// The format version this code writes.
pub const VERSION: u8 = 1;
/// What a sealed record holds; its byte is part of the header and of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session document (`<id>.svs`).
    Session = 1,
    /// An access stamp (`<id>.sva`): the latest `touch` of one version of a session.
    Access = 2,
    /// A session's index summary, kept beside it in the `log` backend (see
    /// [`crate::seal::summary`]).
    Summary = 3,
}
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 22;
/// The smallest well-formed file: a header and a tag around an empty ciphertext.
pub const MIN_LEN: usize = HEADER_LEN + TAG_LEN;

/// Why a session file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a header and a tag.
    #[error("file is {0} bytes, shorter than the {MIN_LEN}-byte minimum")]
    Truncated(usize),
    /// Not a session-vault file, or a version or kind this code does not read.
    #[error("not a session-vault v1 file of the expected kind")]
    Header,
    /// Encrypted under a key id the caller does not hold.
    #[error("encrypted under key id {0}, which this store does not hold")]
    MissingKey(u32),
    /// Authentication failed: the bytes were changed, or belong to another id.
    #[error("{0}")]
    Unauthentic(#[from] Unauthentic),
    /// Authentic, so written with the key, but not laid out as its kind requires.
    #[error("authentic but malformed: {0}")]
    Malformed(String),
}

/// The parsed fixed header of a session file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The id of the key the file is encrypted under.
    pub key_id: u32,
    /// The nonce it was encrypted with.
    pub nonce: [u8; NONCE_LEN],
}

/// The key id a sealed record's header names, of any kind; `None` if `sealed` does not
/// start with a v1 header.
pub fn key_id(sealed: &[u8]) -> Option<u32> {
    let header = sealed.get(..HEADER_LEN)?;
    if header.get(..4)? != MAGIC || header.get(4) != Some(&VERSION) {
        return None;
    }
    Some(u32::from_le_bytes(header.get(6..10)?.try_into().ok()?))
}

/// The key ids named by every sealed record header found anywhere in `bytes` (a file
/// that holds sealed records among other bytes, such as a hint).
pub fn key_ids_in(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    (0..bytes.len()).filter_map(|at| key_id(bytes.get(at..)?))
}

/// Encrypts `plaintext` as the `kind` record of session `id`.
pub fn encode(
    kind: Kind,
    key_id: u32,
    key: &Key,
    nonce: [u8; NONCE_LEN],
    id: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, crate::StoreError> {
    let prefix = prefix(kind, key_id);
    let mut file = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    file.extend_from_slice(&prefix);
    file.extend_from_slice(&nonce);
    let aad = associated_data(&prefix, id);
    let sealed = key.seal(&nonce, &aad, plaintext)?;
    file.extend_from_slice(&sealed);
    Ok(file)
}

/// Parses the header of a `kind` record without decrypting it.
pub fn header(file: &[u8], kind: Kind) -> Result<Header, DecodeError> {
    if file.len() < MIN_LEN {
        return Err(DecodeError::Truncated(file.len()));
    }
    let (magic, rest) = file.split_first_chunk::<4>().ok_or(DecodeError::Header)?;
    let (version_kind, rest) = rest.split_first_chunk::<2>().ok_or(DecodeError::Header)?;
    let (key_id, rest) = rest.split_first_chunk::<4>().ok_or(DecodeError::Header)?;
    let (nonce, _) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(DecodeError::Header)?;
    if *magic != MAGIC || *version_kind != [VERSION, kind as u8] {
        return Err(DecodeError::Header);
    }
    let key_id = u32::from_le_bytes(*key_id);
    let nonce = *nonce;
    Ok(Header { key_id, nonce })
}

/// Decrypts the `kind` record of session `id`, with `key_for` giving the key of a key id.
pub fn decode<'k>(
    file: &[u8],
    kind: Kind,
    id: &str,
    key_for: impl Fn(u32) -> Option<&'k Key>,
) -> Result<Vec<u8>, DecodeError> {
    let header = header(file, kind)?;
    let key = key_for(header.key_id).ok_or(DecodeError::MissingKey(header.key_id))?;
    let sealed = file
        .get(HEADER_LEN..)
        .ok_or(DecodeError::Truncated(file.len()))?;
    // `header` checked magic, version and kind, so the prefix rebuilt from it is the file's.
    let aad = associated_data(&prefix(kind, header.key_id), id);
    Ok(key.open(&header.nonce, &aad, sealed)?)
}

/// Bytes 0..10 of a record: magic, version, kind, key id.
fn prefix(kind: Kind, key_id: u32) -> [u8; 10] {
    let [m0, m1, m2, m3] = MAGIC;
    let [k0, k1, k2, k3] = key_id.to_le_bytes();
    [m0, m1, m2, m3, VERSION, kind as u8, k0, k1, k2, k3]
}

fn associated_data(prefix: &[u8], id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(prefix.len() + 1 + id.len());
    aad.extend_from_slice(prefix);
    // Ids are validated to at most 128 bytes before they reach here; saturate regardless.
    aad.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::crypto::nonce;

    fn key() -> Key {
        Key::from_raw(&[9; 32]).unwrap()
    }

    fn file() -> Vec<u8> {
        encode(
            Kind::Session,
            1,
            &key(),
            nonce().unwrap(),
            "abc",
            b"{\"x\":1}",
        )
        .unwrap()
    }

    fn open(file: &[u8], id: &str) -> Result<Vec<u8>, DecodeError> {
        let key = key();
        decode(file, Kind::Session, id, |kid| (kid == 1).then_some(&key))
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let file = file();
        assert_eq!(&file[..4], b"SVLT");
        assert_eq!(file[4], 1);
        assert_eq!(file[5], 1);
        assert_eq!(&file[6..10], &[1, 0, 0, 0]);
        assert_eq!(file.len(), HEADER_LEN + 7 + TAG_LEN);
        assert_eq!(open(&file, "abc").unwrap(), b"{\"x\":1}");
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let file = file();
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x80;
            assert!(
                open(&bad, "abc").is_err(),
                "byte {i} flipped went unnoticed"
            );
        }
    }

    #[test]
    fn a_file_under_another_id_fails() {
        assert_eq!(
            open(&file(), "abd"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
    }

    #[test]
    fn truncation_is_reported_with_its_length() {
        let file = file();
        assert_eq!(open(&file[..0], "abc"), Err(DecodeError::Truncated(0)));
        assert_eq!(open(&file[..37], "abc"), Err(DecodeError::Truncated(37)));
        assert_eq!(
            open(&file[..file.len() - 1], "abc"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
    }

    #[test]
    fn unknown_key_ids_are_missing_keys_not_corruption() {
        let file = encode(Kind::Session, 7, &key(), nonce().unwrap(), "abc", b"{}").unwrap();
        assert_eq!(open(&file, "abc"), Err(DecodeError::MissingKey(7)));
    }

    #[test]
    fn a_record_of_another_kind_fails() {
        let key = key();
        let stamp = encode(Kind::Access, 1, &key, nonce().unwrap(), "abc", b"{}").unwrap();
        assert_eq!(open(&stamp, "abc"), Err(DecodeError::Header));
        // Relabelled as a session: the kind is authenticated too.
        let mut relabelled = stamp.clone();
        relabelled[5] = Kind::Session as u8;
        assert_eq!(
            open(&relabelled, "abc"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
        let back = decode(&stamp, Kind::Access, "abc", |kid| {
            (kid == 1).then_some(&key)
        });
        assert_eq!(back.unwrap(), b"{}");
    }

    #[test]
    fn foreign_bytes_are_not_a_header() {
        let legacy = b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeffabcdef";
        assert_eq!(open(legacy, "abc"), Err(DecodeError::Header));
    }
}
