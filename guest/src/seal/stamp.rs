//! Access stamps: what `touch` writes instead of rewriting the session file.
//!
//! A stamp `<id>.sva` is a sealed record of kind [`Kind::Access`] whose 36-byte plaintext
//! is `lastAccessedAt (u64 LE) || accessCount (u64 LE) || version (12 bytes) || expiresAt
//! (u64 LE)`, where `version` is the nonce of the session file it amends and `expiresAt`
//! the session's expiry as the touch left it (a rolling expiry moves it without rewriting
//! the session). A stamp written before rolling expiry has no `expiresAt` (28 bytes). A stamp applies only to that
//! exact file: once the session is rewritten (new nonce), an old stamp is void. Stamps are
//! written in place without a sync, so a crash can leave one torn or missing; either way it
//! is void and the session reads with the access fields its file holds — never worse.

use crate::seal::crypto::{Key, NONCE_LEN, TAG_LEN};
use crate::seal::format::{self, HEADER_LEN, HEADER_LEN_V1, Kind, Scope};

/// The plaintext length of a stamp.
pub const PLAINTEXT_LEN: usize = 8 + 8 + NONCE_LEN + 8;
/// The plaintext length of a stamp written before rolling expiry (no `expiresAt`).
const PLAINTEXT_LEN_V2: usize = 8 + 8 + NONCE_LEN;
/// The length of every stamp this code writes, and the most a stamp file is read.
pub const LEN: usize = HEADER_LEN + PLAINTEXT_LEN + TAG_LEN;
/// The length of a stamp written before rolling expiry.
const LEN_V2: usize = HEADER_LEN + PLAINTEXT_LEN_V2 + TAG_LEN;
/// The length of a format-v1 stamp.
const LEN_V1: usize = HEADER_LEN_V1 + PLAINTEXT_LEN_V2 + TAG_LEN;

/// The latest access of one version of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// `security.lastAccessedAt` after the access.
    pub last_accessed_at: u64,
    /// `security.accessCount` after the access.
    pub access_count: u64,
    /// The nonce of the session file this stamp amends.
    pub version: [u8; NONCE_LEN],
    /// `expiresAt` after the access; `None` in a stamp written before rolling expiry
    /// (the session file's then holds).
    pub expires_at: Option<u64>,
}

impl Stamp {
    /// Seals the stamp for version `seq` of session `id` under `key`.
    pub fn seal(
        &self,
        key_id: u32,
        key: &Key,
        scope: &Scope,
        seq: u64,
        id: &str,
    ) -> Result<Vec<u8>, crate::error::StoreError> {
        format::encode(Kind::Access, key_id, key, scope, seq, id, &self.plaintext())
    }

    /// The stamp's plaintext (36 bytes; 28 without an `expiresAt`).
    pub fn plaintext(&self) -> Vec<u8> {
        let mut plaintext = Vec::with_capacity(PLAINTEXT_LEN);
        plaintext.extend_from_slice(&self.last_accessed_at.to_le_bytes());
        plaintext.extend_from_slice(&self.access_count.to_le_bytes());
        plaintext.extend_from_slice(&self.version);
        if let Some(expires_at) = self.expires_at {
            plaintext.extend_from_slice(&expires_at.to_le_bytes());
        }
        plaintext
    }

    /// The stamp whose plaintext is `plaintext` (36 or 28 bytes); `None` if it is not one.
    pub fn parse(plaintext: &[u8]) -> Option<Stamp> {
        let (last, rest) = plaintext.split_first_chunk::<8>()?;
        let (count, rest) = rest.split_first_chunk::<8>()?;
        let (version, rest) = rest.split_first_chunk::<NONCE_LEN>()?;
        let expires_at = match rest.len() {
            0 => None,
            _ => Some(u64::from_le_bytes(rest.try_into().ok()?)),
        };
        Some(Stamp {
            last_accessed_at: u64::from_le_bytes(*last),
            access_count: u64::from_le_bytes(*count),
            version: *version,
            expires_at,
        })
    }

    /// Opens the stamp file of session `id`; `None` if it is void: torn, damaged, of the
    /// wrong length, for another id, or under a key `key_for` does not give.
    pub fn open<'k>(
        file: &[u8],
        scope: &Scope,
        id: &str,
        key_for: impl Fn(u32) -> Option<&'k Key>,
    ) -> Option<Stamp> {
        if ![LEN, LEN_V2, LEN_V1].contains(&file.len()) {
            return None;
        }
        let plaintext = format::decode(file, Kind::Access, scope, id, key_for)
            .ok()?
            .plaintext;
        Stamp::parse(&plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::format::tests::SCOPE;

    fn key() -> Key {
        Key::from_raw(&[3; 32]).unwrap()
    }

    fn stamp() -> Stamp {
        Stamp {
            last_accessed_at: 1_893_456_000_123,
            access_count: 42,
            version: [7; NONCE_LEN],
            expires_at: Some(1_893_456_600_000),
        }
    }

    #[test]
    fn a_stamp_round_trips_at_its_fixed_length() {
        let key = key();
        let file = stamp().seal(1, &key, &SCOPE, 3, "s1").unwrap();
        assert_eq!(file.len(), LEN);
        assert_eq!(LEN, 82);
        assert_eq!(file[5], Kind::Access as u8);
        assert_eq!(
            Stamp::open(&file, &SCOPE, "s1", |k| (k == 1).then_some(&key)),
            Some(stamp())
        );
    }

    #[test]
    fn a_stamp_without_an_expiry_still_opens() {
        let key = key();
        let old = Stamp {
            expires_at: None,
            ..stamp()
        };
        let file = old.seal(1, &key, &SCOPE, 3, "s1").unwrap();
        assert_eq!(file.len(), 74, "as written before rolling expiry");
        assert_eq!(
            Stamp::open(&file, &SCOPE, "s1", |k| (k == 1).then_some(&key)),
            Some(old)
        );
        assert_eq!(Stamp::parse(&[0; PLAINTEXT_LEN + 1]), None);
        assert_eq!(Stamp::parse(&[0; PLAINTEXT_LEN - 1]), None);
    }

    #[test]
    fn torn_damaged_moved_or_keyless_stamps_are_void() {
        let key = key();
        let file = stamp().seal(1, &key, &SCOPE, 3, "s1").unwrap();
        let open =
            |bytes: &[u8], id: &str| Stamp::open(bytes, &SCOPE, id, |k| (k == 1).then_some(&key));
        for len in 0..file.len() {
            assert_eq!(open(&file[..len], "s1"), None, "torn at {len}");
        }
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 1;
            assert_eq!(open(&bad, "s1"), None, "byte {i} flipped");
        }
        let mut longer = file.clone();
        longer.push(0);
        assert_eq!(open(&longer, "s1"), None);
        assert_eq!(open(&file, "s2"), None);
        assert_eq!(Stamp::open(&file, &SCOPE, "s1", |_| None), None);
    }
}
