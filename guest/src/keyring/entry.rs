//! One key entry of the metadata: how its key is derived from the secret (scrypt or
//! raw) and its key check, which tells a wrong secret from damage.

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::backend::layout::META_FILE;
use crate::error::StoreError;
use crate::seal::crypto::{self, Key, NONCE_LEN, ScryptParams};

const DEFAULT_R: u32 = 8;
const DEFAULT_P: u32 = 1;
const SALT_LEN: usize = 16;
const CHECK_TEXT: &[u8] = b"session-vault key check";
const CHECK_AAD_V1: &[u8] = b"session-vault key-check v1";
/// Version-2 checks: a v2 store's current key fails the v1 check, so a metadata file
/// relabelled version 1 (to drop its MAC) does not open.
const CHECK_AAD_V2: &[u8] = b"session-vault key-check v2";

/// Which key checks an entry may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// A version-1 store: v1 checks only.
    V1,
    /// The current key of a version-2 store: v2 checks only.
    V2,
    /// Any other entry of an authenticated version-2 store (a retired key keeps the check
    /// it had when its store was upgraded).
    Either,
}

/// One key of the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyEntry {
    /// The id written into each session file's header.
    pub id: u32,
    /// How the key is obtained from the secret.
    pub kdf: Kdf,
    /// hex(nonce || seal(key, "session-vault key check")).
    pub check: String,
    /// On the current key only: every other active key, sealed under this one, so the
    /// current secret alone opens the whole keyring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrapped: Vec<WrappedKey>,
    /// A retired key: kept (without its key) so that adding its secret back restores it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// An older key sealed under the current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrappedKey {
    /// The wrapped key's id.
    pub id: u32,
    /// hex(nonce || seal(current key, key bytes)), with associated data binding both ids.
    pub key: String,
}

/// How a key is obtained from the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", deny_unknown_fields)]
pub enum Kdf {
    /// scrypt over a passphrase.
    #[serde(rename_all = "camelCase")]
    Scrypt {
        /// hex of the per-store random salt.
        salt: String,
        /// log2 N.
        log_n: u8,
        /// r.
        r: u32,
        /// p.
        p: u32,
    },
    /// The secret is the raw key.
    Raw,
}

impl KeyEntry {
    /// A new key entry `id` for `secret`: a fresh random salt for a passphrase (scrypt
    /// N = 2^`log_n`, r = 8, p = 1), and its key check. Returns the entry with its key.
    pub(super) fn new(id: u32, secret: &Secret, log_n: u8) -> Result<(KeyEntry, Key), StoreError> {
        let (kdf, key) = match secret {
            Secret::Passphrase(phrase) => {
                let mut salt = vec![0u8; SALT_LEN];
                crypto::random(&mut salt)?;
                let params = ScryptParams {
                    salt,
                    log_n,
                    r: DEFAULT_R,
                    p: DEFAULT_P,
                };
                let key = Key::derive(phrase, &params)?;
                let kdf = Kdf::Scrypt {
                    salt: hex::encode(&params.salt),
                    log_n,
                    r: params.r,
                    p: params.p,
                };
                (kdf, key)
            }
            Secret::RawKey(bytes) => (Kdf::Raw, Key::from_raw(bytes)?),
        };
        let entry = KeyEntry {
            id,
            kdf,
            check: check(id, &key)?,
            wrapped: Vec::new(),
            retired: false,
        };
        Ok((entry, key))
    }

    /// Replaces the key check with a version-2 one, for `key` (this entry's key).
    pub(super) fn recheck(&mut self, key: &Key) -> Result<(), StoreError> {
        self.check = check(self.id, key)?;
        Ok(())
    }

    /// The key `secret` gives for this entry, if it passes the key check; `None` if not.
    pub(super) fn open(&self, secret: &Secret, checks: Checks) -> Result<Option<Key>, StoreError> {
        let key = match (&self.kdf, secret) {
            (Kdf::Scrypt { salt, log_n, r, p }, Secret::Passphrase(phrase)) => {
                let salt = hex::decode(salt).map_err(|e| {
                    StoreError::Corrupted(format!("{META_FILE}: salt is not hex: {e}"))
                })?;
                // Hostile metadata must not make open allocate gigabytes or spin for minutes:
                // scrypt needs 128 * r * N bytes, kept at or under 128 MiB.
                if !(10..=20).contains(log_n)
                    || !(1..=16).contains(r)
                    || !(1..=4).contains(p)
                    || (128u64 * u64::from(*r)) << log_n > 128 << 20
                    || !(16..=64).contains(&salt.len())
                {
                    return Err(StoreError::Corrupted(format!(
                        "{META_FILE}: scrypt parameters out of range (log N {log_n}, r {r}, p {p}, salt {} bytes)",
                        salt.len()
                    )));
                }
                let params = ScryptParams {
                    salt,
                    log_n: *log_n,
                    r: *r,
                    p: *p,
                };
                Key::derive(phrase, &params)?
            }
            (Kdf::Raw, Secret::RawKey(bytes)) => Key::from_raw(bytes)?,
            // The other kind of secret cannot be right; still report a malformed one as such.
            (Kdf::Scrypt { .. }, Secret::RawKey(bytes)) => {
                Key::from_raw(bytes)?;
                return Ok(None);
            }
            (Kdf::Raw, Secret::Passphrase(phrase)) => {
                crypto::check_passphrase(phrase)?;
                return Ok(None);
            }
        };
        let check = hex::decode(&self.check).map_err(|e| {
            StoreError::Corrupted(format!("{META_FILE}: key check is not hex: {e}"))
        })?;
        let (nonce, sealed) = check
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| StoreError::Corrupted(format!("{META_FILE}: key check is too short")))?;
        let passes = |aad: &[u8]| {
            key.open(nonce, &check_aad(aad, self.id), sealed)
                .is_ok_and(|text| text == CHECK_TEXT)
        };
        let opened = match checks {
            Checks::V1 => passes(CHECK_AAD_V1),
            Checks::V2 => passes(CHECK_AAD_V2),
            Checks::Either => passes(CHECK_AAD_V2) || passes(CHECK_AAD_V1),
        };
        Ok(opened.then_some(key))
    }
}

/// hex(nonce || seal(key, CHECK_TEXT)), a version-2 key check of key `id`.
fn check(id: u32, key: &Key) -> Result<String, StoreError> {
    let nonce = crypto::nonce()?;
    let mut check = nonce.to_vec();
    check.extend(key.seal(&nonce, &check_aad(CHECK_AAD_V2, id), CHECK_TEXT)?);
    Ok(hex::encode(check))
}

fn check_aad(label: &[u8], id: u32) -> Vec<u8> {
    let mut aad = label.to_vec();
    aad.extend_from_slice(&id.to_le_bytes());
    aad
}
