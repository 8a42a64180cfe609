//! Index summaries: what the store's index needs of a session (its user, expiry and last
//! access), sealed on their own so that opening a `log` store reads a few dozen bytes per
//! session instead of decrypting every session document.
//!
//! A summary is a sealed record of kind [`Kind::Summary`] whose plaintext is
//! `version (12 bytes) || expiresAt (u64 LE) || lastAccessedAt (u64 LE) || accessCount
//! (u64 LE) || userId (UTF-8)`, where `version` is the nonce of the session document it
//! summarises. A session without a user has the single byte 0xFF (never UTF-8) for its
//! user id, and one without `security` has `lastAccessedAt` 2^64 - 1 (no idle timeout
//! applies to it) and `accessCount` 0. The `log` backend stores it inside the same record as that document, so the
//! two are written, synced and compacted together.

use crate::document::session::Session;
use crate::seal::crypto::{Key, NONCE_LEN};
use crate::seal::format::{self, Kind, Scope};

/// Plaintext bytes before the user id.
const FIXED_LEN: usize = NONCE_LEN + 8 + 8 + 8;
/// The user id of a session without one: a byte no UTF-8 text holds.
const NO_USER: &[u8] = &[0xFF];
/// The last access of a session without `security`, which records none.
pub const NO_ACCESS: u64 = u64::MAX;
/// Before the user id, the byte that says an origin (u64 LE) follows: never UTF-8, and
/// not [`NO_USER`], so summaries written without one read as before.
const ORIGIN: u8 = 0xFE;

/// What the index keeps of one version of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The nonce of the session document this summarises.
    pub version: [u8; NONCE_LEN],
    /// The session's `expiresAt`.
    pub expires_at: u64,
    /// Its `security.lastAccessedAt`; [`NO_ACCESS`] without `security`.
    pub last_accessed_at: u64,
    /// Its `security.accessCount`; 0 without `security`.
    pub access_count: u64,
    /// Its `userContext.userId`, if it has one.
    pub user: Option<String>,
    /// Where its maximum lifetime counts from (`createdAt`, or its first write); `None`
    /// in a summary written before sessions had one.
    pub origin: Option<u64>,
    /// The session's version (write sequence number), from the sealed header: 0 in a
    /// format-v1 summary.
    pub seq: u64,
}

impl Summary {
    /// The summary of `session`, whose document has nonce `version` and sequence number
    /// `seq`.
    pub fn of(session: &Session, version: [u8; NONCE_LEN], seq: u64) -> Self {
        let (last_accessed_at, access_count) = session.access().unwrap_or((NO_ACCESS, 0));
        Summary {
            seq,
            version,
            expires_at: session.expires_at(),
            last_accessed_at,
            access_count,
            user: session.user().map(str::to_owned),
            origin: session.origin(),
        }
    }

    /// Seals the summary of session `id` under `key`.
    pub fn seal(
        &self,
        key_id: u32,
        key: &Key,
        scope: &Scope,
        id: &str,
    ) -> Result<Vec<u8>, crate::error::StoreError> {
        let plaintext = self.plaintext();
        format::encode(Kind::Summary, key_id, key, scope, self.seq, id, &plaintext)
    }

    /// The summary's plaintext (its sequence number is not in it: the sealed header, or
    /// an index block's item, carries it).
    pub fn plaintext(&self) -> Vec<u8> {
        let user = self.user.as_deref().map_or(NO_USER, str::as_bytes);
        let mut plaintext = Vec::with_capacity(FIXED_LEN + user.len());
        plaintext.extend_from_slice(&self.version);
        plaintext.extend_from_slice(&self.expires_at.to_le_bytes());
        plaintext.extend_from_slice(&self.last_accessed_at.to_le_bytes());
        plaintext.extend_from_slice(&self.access_count.to_le_bytes());
        if let Some(origin) = self.origin {
            plaintext.push(ORIGIN);
            plaintext.extend_from_slice(&origin.to_le_bytes());
        }
        plaintext.extend_from_slice(user);
        plaintext
    }

    /// Opens the sealed summary of session `id`.
    pub fn open<'k>(
        sealed: &[u8],
        scope: &Scope,
        id: &str,
        key_for: impl Fn(u32) -> Option<&'k Key>,
    ) -> Result<Summary, format::DecodeError> {
        let opened = format::decode(sealed, Kind::Summary, scope, id, key_for)?;
        Summary::parse(&opened.plaintext, opened.header.seq)
    }

    /// The summary of version `seq` whose plaintext is `plaintext`.
    pub fn parse(plaintext: &[u8], seq: u64) -> Result<Summary, format::DecodeError> {
        let malformed =
            || format::DecodeError::Malformed(format!("a summary of {} bytes", plaintext.len()));
        let (version, rest) = plaintext
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(malformed)?;
        let (expires_at, rest) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
        let (last, rest) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
        let (count, rest) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
        let (origin, user) = match rest.split_first() {
            Some((&ORIGIN, rest)) => {
                let (origin, user) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
                (Some(u64::from_le_bytes(*origin)), user)
            }
            _ => (None, rest),
        };
        let user = match user {
            NO_USER => None,
            user => Some(
                String::from_utf8(user.to_vec())
                    .map_err(|e| format::DecodeError::Malformed(format!("summary user id: {e}")))?,
            ),
        };
        Ok(Summary {
            seq,
            version: *version,
            expires_at: u64::from_le_bytes(*expires_at),
            last_accessed_at: u64::from_le_bytes(*last),
            access_count: u64::from_le_bytes(*count),
            user,
            origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::format::tests::SCOPE;

    fn summary() -> Summary {
        Summary {
            version: [9; NONCE_LEN],
            expires_at: 1_893_456_000_000,
            last_accessed_at: 1_893_000_000_000,
            access_count: 7,
            user: Some("user-ü".into()),
            origin: Some(1_893_000_000_000),
            seq: 12,
        }
    }

    #[test]
    fn a_summary_round_trips_and_is_bound_to_its_id_and_key() {
        let key = Key::from_raw(&[3; 32]).unwrap();
        let sealed = summary().seal(4, &key, &SCOPE, "s1").unwrap();
        assert_eq!(sealed[5], Kind::Summary as u8);
        let open =
            |bytes: &[u8], id: &str| Summary::open(bytes, &SCOPE, id, |k| (k == 4).then_some(&key));
        assert_eq!(open(&sealed, "s1"), Ok(summary()));
        assert!(open(&sealed, "s2").is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open(&bad, "s1").is_err(), "byte {i} flipped");
        }
        assert_eq!(
            Summary::open(&sealed, &SCOPE, "s1", |_| None),
            Err(format::DecodeError::MissingKey(4))
        );
    }

    #[test]
    fn a_session_without_user_or_security_says_so() {
        let key = Key::from_raw(&[3; 32]).unwrap();
        let session = Session::parse(br#"{"sessionId":"s1","expiresAt":9}"#).unwrap();
        let plain = Summary::of(&session, [1; NONCE_LEN], 2);
        assert_eq!(
            (plain.user.as_deref(), plain.last_accessed_at),
            (None, NO_ACCESS)
        );
        let sealed = plain.seal(4, &key, &SCOPE, "s1").unwrap();
        let opened = Summary::open(&sealed, &SCOPE, "s1", |k| (k == 4).then_some(&key));
        assert_eq!(opened, Ok(plain));
        let empty_user = Summary {
            user: Some(String::new()),
            ..summary()
        };
        assert_eq!(Summary::parse(&empty_user.plaintext(), 12), Ok(empty_user));
        // A summary written before origins (0.1.0) reads as before.
        let old = Summary {
            origin: None,
            ..summary()
        };
        assert_eq!(old.plaintext().len(), FIXED_LEN + "user-ü".len());
        assert_eq!(Summary::parse(&old.plaintext(), 12), Ok(old));
    }
}
