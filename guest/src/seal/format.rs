//! The sealed record of format v2 (see `docs/FORMAT.md`), used by session files, access
//! stamps and index summaries:
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SVLT"
//!      4     1  format version = 2
//!      5     1  record kind: 1 session, 2 access stamp, 3 summary, 4 hint index block
//!      6     4  key id, u32 little-endian
//!     10     8  version: the session's write sequence number, u64 little-endian
//!     18    12  nonce
//!     30     n  AES-256-GCM ciphertext
//!   30+n    16  GCM tag
//! ```
//!
//! Associated data = bytes 0..18 || store id (16 bytes) || id length (1 byte) || id bytes,
//! so a record copied to another id or another store, or relabelled with another version,
//! kind, key id or sequence number, fails to open. Format v1 (a 22-byte header without
//! the sequence number, associated data bytes 0..10 || id length || id) is read only while
//! a store is being upgraded ([`Scope::read_v1`]).

use crate::seal::crypto::{self, Key, NONCE_LEN, TAG_LEN, Unauthentic};

/// The first four bytes of every session-vault file.
pub const MAGIC: [u8; 4] = *b"SVLT";
/// The format version this code writes.
pub const VERSION: u8 = 2;
/// The format version of stores written before records named their store and version.
pub const VERSION_1: u8 = 1;
/// Bytes of a store id.
pub const STORE_ID_LEN: usize = 16;
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
    /// The index block of a `log` hint: the summaries and stamps of a closed segment
    /// under one seal (see `seal/index_block.rs`).
    IndexBlock = 4,
}
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 30;
/// Bytes before the ciphertext in format v1.
pub const HEADER_LEN_V1: usize = 22;
/// The smallest well-formed file: a header and a tag around an empty ciphertext.
pub const MIN_LEN: usize = HEADER_LEN + TAG_LEN;
const MIN_LEN_V1: usize = HEADER_LEN_V1 + TAG_LEN;

/// What binds sealed records to one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// The store's random id, from its metadata.
    pub store_id: [u8; STORE_ID_LEN],
    /// Whether format-v1 records (bound to neither store nor version) are read: only
    /// while the store's upgrade rewrites them.
    pub read_v1: bool,
}

/// Why a session file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a header and a tag.
    #[error("file is {0} bytes, shorter than the {MIN_LEN}-byte minimum")]
    Truncated(usize),
    /// Not a session-vault file, or a version or kind this code does not read.
    #[error("not a session-vault record of the expected kind and format version")]
    Header,
    /// Encrypted under a key id the caller does not hold.
    #[error("encrypted under key id {0}, which this store does not hold")]
    MissingKey(u32),
    /// Authentication failed: the bytes were changed, or belong to another id or store.
    #[error("{0}")]
    Unauthentic(#[from] Unauthentic),
    /// Authentic, so written with the key, but not laid out as its kind requires.
    #[error("authentic but malformed: {0}")]
    Malformed(String),
}

/// The parsed fixed header of a sealed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format version: [`VERSION`], or [`VERSION_1`] in a store not yet upgraded.
    pub format: u8,
    /// The id of the key the file is encrypted under.
    pub key_id: u32,
    /// The session's version: its write sequence number (0 in format v1).
    pub seq: u64,
    /// The nonce it was encrypted with.
    pub nonce: [u8; NONCE_LEN],
}

impl Header {
    fn len(&self) -> usize {
        if self.format == VERSION_1 {
            HEADER_LEN_V1
        } else {
            HEADER_LEN
        }
    }

    /// The header bytes the associated data starts with.
    fn prefix(&self, kind: Kind) -> Vec<u8> {
        let mut prefix = Vec::with_capacity(18);
        prefix.extend_from_slice(&MAGIC);
        prefix.push(self.format);
        prefix.push(kind as u8);
        prefix.extend_from_slice(&self.key_id.to_le_bytes());
        if self.format != VERSION_1 {
            prefix.extend_from_slice(&self.seq.to_le_bytes());
        }
        prefix
    }
}

/// A record opened by [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Its header.
    pub header: Header,
    /// Its plaintext.
    pub plaintext: Vec<u8>,
}

/// The key id a sealed record's header names, of any kind; `None` if `sealed` does not
/// start with a header of a format this code reads.
pub fn key_id(sealed: &[u8]) -> Option<u32> {
    let header = sealed.get(..HEADER_LEN_V1)?;
    if header.get(..4)? != MAGIC || !matches!(header.get(4), Some(&VERSION | &VERSION_1)) {
        return None;
    }
    Some(u32::from_le_bytes(header.get(6..10)?.try_into().ok()?))
}

/// The key ids named by every sealed record header found anywhere in `bytes` (a file
/// that holds sealed records among other bytes, such as a hint).
pub fn key_ids_in(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    (0..bytes.len()).filter_map(|at| key_id(bytes.get(at..)?))
}

/// Encrypts `plaintext` as the `kind` record of version `seq` of session `id` in the
/// store `scope` names, under a fresh nonce.
pub fn encode(
    kind: Kind,
    key_id: u32,
    key: &Key,
    scope: &Scope,
    seq: u64,
    id: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, crate::error::StoreError> {
    let header = Header {
        format: VERSION,
        key_id,
        seq,
        nonce: crypto::nonce()?,
    };
    let prefix = header.prefix(kind);
    let mut file = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    file.extend_from_slice(&prefix);
    file.extend_from_slice(&header.nonce);
    let aad = associated_data(&prefix, Some(scope), id);
    let sealed = key.seal(&header.nonce, &aad, plaintext)?;
    file.extend_from_slice(&sealed);
    Ok(file)
}

/// Parses the header of a `kind` record without decrypting it. Format v1 is parsed too;
/// [`decode`] decides whether it is read.
pub fn header(file: &[u8], kind: Kind) -> Result<Header, DecodeError> {
    let (magic, rest) = file
        .split_first_chunk::<4>()
        .ok_or(DecodeError::Truncated(file.len()))?;
    let (version_kind, rest) = rest
        .split_first_chunk::<2>()
        .ok_or(DecodeError::Truncated(file.len()))?;
    if *magic != MAGIC || version_kind[1] != kind as u8 {
        return Err(DecodeError::Header);
    }
    let format = version_kind[0];
    let min = match format {
        VERSION => MIN_LEN,
        VERSION_1 => MIN_LEN_V1,
        _ => return Err(DecodeError::Header),
    };
    if file.len() < min {
        return Err(DecodeError::Truncated(file.len()));
    }
    let (key_id, rest) = rest.split_first_chunk::<4>().ok_or(DecodeError::Header)?;
    let (seq, rest) = if format == VERSION_1 {
        (0, rest)
    } else {
        let (seq, rest) = rest.split_first_chunk::<8>().ok_or(DecodeError::Header)?;
        (u64::from_le_bytes(*seq), rest)
    };
    let (nonce, _) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(DecodeError::Header)?;
    Ok(Header {
        format,
        key_id: u32::from_le_bytes(*key_id),
        seq,
        nonce: *nonce,
    })
}

/// Decrypts the `kind` record of session `id` in the store `scope` names, with `key_for`
/// giving the key of a key id. A format-v1 record is a [`DecodeError::Header`] unless
/// `scope` still reads them.
pub fn decode<'k>(
    file: &[u8],
    kind: Kind,
    scope: &Scope,
    id: &str,
    key_for: impl Fn(u32) -> Option<&'k Key>,
) -> Result<Opened, DecodeError> {
    let header = header(file, kind)?;
    if header.format == VERSION_1 && !scope.read_v1 {
        return Err(DecodeError::Header);
    }
    let key = key_for(header.key_id).ok_or(DecodeError::MissingKey(header.key_id))?;
    let sealed = file
        .get(header.len()..)
        .ok_or(DecodeError::Truncated(file.len()))?;
    // `header` checked magic, version and kind, so the prefix rebuilt from it is the file's.
    let bound = (header.format != VERSION_1).then_some(scope);
    let aad = associated_data(&header.prefix(kind), bound, id);
    let plaintext = key.open(&header.nonce, &aad, sealed)?;
    Ok(Opened { header, plaintext })
}

fn associated_data(prefix: &[u8], scope: Option<&Scope>, id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(prefix.len() + STORE_ID_LEN + 1 + id.len());
    aad.extend_from_slice(prefix);
    if let Some(scope) = scope {
        aad.extend_from_slice(&scope.store_id);
    }
    // Ids are validated to at most 128 bytes before they reach here; saturate regardless.
    aad.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(id.as_bytes());
    aad
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SCOPE: Scope = Scope {
        store_id: [5; STORE_ID_LEN],
        read_v1: false,
    };

    fn key() -> Key {
        Key::from_raw(&[9; 32]).unwrap()
    }

    fn file() -> Vec<u8> {
        encode(Kind::Session, 1, &key(), &SCOPE, 7, "abc", b"{\"x\":1}").unwrap()
    }

    fn open_in(file: &[u8], scope: &Scope, id: &str) -> Result<Vec<u8>, DecodeError> {
        let key = key();
        decode(file, Kind::Session, scope, id, |kid| {
            (kid == 1).then_some(&key)
        })
        .map(|opened| opened.plaintext)
    }

    fn open(file: &[u8], id: &str) -> Result<Vec<u8>, DecodeError> {
        open_in(file, &SCOPE, id)
    }

    /// A format-v1 record, as stores before the upgrade hold.
    fn file_v1(id: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = crypto::nonce().unwrap();
        let prefix = [
            b'S',
            b'V',
            b'L',
            b'T',
            VERSION_1,
            Kind::Session as u8,
            1,
            0,
            0,
            0,
        ];
        let mut file = prefix.to_vec();
        file.extend_from_slice(&nonce);
        let aad = associated_data(&prefix, None, id);
        file.extend(key().seal(&nonce, &aad, plaintext).unwrap());
        file
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let file = file();
        assert_eq!(&file[..4], b"SVLT");
        assert_eq!(file[4], 2);
        assert_eq!(file[5], 1);
        assert_eq!(&file[6..10], &[1, 0, 0, 0]);
        assert_eq!(&file[10..18], &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(file.len(), HEADER_LEN + 7 + TAG_LEN);
        assert_eq!(open(&file, "abc").unwrap(), b"{\"x\":1}");
        let header = header(&file, Kind::Session).unwrap();
        assert_eq!((header.format, header.key_id, header.seq), (2, 1, 7));
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
    fn a_file_under_another_id_or_store_fails() {
        assert_eq!(
            open(&file(), "abd"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
        let other = Scope {
            store_id: [6; STORE_ID_LEN],
            ..SCOPE
        };
        assert_eq!(
            open_in(&file(), &other, "abc"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
    }

    #[test]
    fn a_relabelled_sequence_number_fails() {
        let mut file = file();
        file[10] = 8;
        assert_eq!(
            open(&file, "abc"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
    }

    #[test]
    fn truncation_is_reported_with_its_length() {
        let file = file();
        assert_eq!(open(&file[..0], "abc"), Err(DecodeError::Truncated(0)));
        assert_eq!(open(&file[..45], "abc"), Err(DecodeError::Truncated(45)));
        assert_eq!(
            open(&file[..file.len() - 1], "abc"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
    }

    #[test]
    fn unknown_key_ids_are_missing_keys_not_corruption() {
        let file = encode(Kind::Session, 7, &key(), &SCOPE, 1, "abc", b"{}").unwrap();
        assert_eq!(open(&file, "abc"), Err(DecodeError::MissingKey(7)));
    }

    #[test]
    fn a_record_of_another_kind_fails() {
        let key = key();
        let stamp = encode(Kind::Access, 1, &key, &SCOPE, 1, "abc", b"{}").unwrap();
        assert_eq!(open(&stamp, "abc"), Err(DecodeError::Header));
        // Relabelled as a session: the kind is authenticated too.
        let mut relabelled = stamp.clone();
        relabelled[5] = Kind::Session as u8;
        assert_eq!(
            open(&relabelled, "abc"),
            Err(DecodeError::Unauthentic(Unauthentic))
        );
        let back = decode(&stamp, Kind::Access, &SCOPE, "abc", |kid| {
            (kid == 1).then_some(&key)
        });
        assert_eq!(back.unwrap().plaintext, b"{}");
    }

    #[test]
    fn format_v1_is_read_only_during_an_upgrade() {
        let v1 = file_v1("abc", b"{}");
        assert_eq!(open(&v1, "abc"), Err(DecodeError::Header));
        let upgrading = Scope {
            read_v1: true,
            ..SCOPE
        };
        assert_eq!(open_in(&v1, &upgrading, "abc").unwrap(), b"{}");
        assert_eq!(header(&v1, Kind::Session).unwrap().seq, 0);
        assert_eq!(key_id(&v1), Some(1));
        // A v2 record relabelled as v1 (to shed its store binding) fails.
        let mut relabelled = file();
        relabelled[4] = VERSION_1;
        assert!(open_in(&relabelled, &upgrading, "abc").is_err());
    }

    #[test]
    fn foreign_bytes_are_not_a_header() {
        let legacy = b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeffabcdef";
        assert_eq!(open(legacy, "abc"), Err(DecodeError::Header));
    }
}
