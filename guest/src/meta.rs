//! The store's metadata file, `session-vault.json`: plain JSON holding nothing secret —
//! the format version, and for each key its id, how it is derived, and a key check.
//!
//! The key check is an AES-256-GCM seal of a fixed text under the key, so a wrong secret
//! is told apart from a damaged session file at `open`.

use serde::{Deserialize, Serialize};

use crate::crypto::{self, Key, NONCE_LEN, ScryptParams};
use crate::error::StoreError;

/// The metadata file's name in the store directory.
pub const FILE_NAME: &str = "session-vault.json";
/// The largest metadata file read; anything bigger is not ours.
pub const MAX_LEN: u64 = 64 * 1024;
/// scrypt cost for new stores: N = 2^15, r = 8, p = 1 (32 MiB of memory).
pub const DEFAULT_LOG_N: u8 = 15;
const DEFAULT_R: u32 = 8;
const DEFAULT_P: u32 = 1;
const SALT_LEN: usize = 16;
const CHECK_TEXT: &[u8] = b"session-vault key check";
const CHECK_AAD: &[u8] = b"session-vault key-check v1";

/// A store's secret, as given by the caller. Zeroed when dropped; never printed.
#[derive(Clone)]
pub enum Secret {
    /// A passphrase of at least 32 characters, stretched with scrypt.
    Passphrase(String),
    /// A raw 32-byte AES-256 key.
    RawKey(Vec<u8>),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Passphrase(_) => f.write_str("Secret::Passphrase(..)"),
            Secret::RawKey(_) => f.write_str("Secret::RawKey(..)"),
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            Secret::Passphrase(p) => p.zeroize(),
            Secret::RawKey(k) => k.zeroize(),
        }
    }
}

/// The parsed metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    /// Always "session-vault".
    pub format: String,
    /// The on-disk format version; 1.
    pub version: u32,
    /// The key id that encrypts new writes.
    pub current_key: u32,
    /// Every key the store knows.
    pub keys: Vec<KeyEntry>,
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

impl Meta {
    /// Creates the metadata of a new store for `secret`, returning it with the key.
    pub fn create(secret: &Secret) -> Result<(Meta, Key), StoreError> {
        Self::create_with_cost(secret, DEFAULT_LOG_N)
    }

    /// As [`Meta::create`], with scrypt's N = 2^`log_n`.
    pub fn create_with_cost(secret: &Secret, log_n: u8) -> Result<(Meta, Key), StoreError> {
        let id = 1;
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
        let nonce = crypto::nonce()?;
        let mut check = nonce.to_vec();
        check.extend(key.seal(&nonce, &check_aad(id), CHECK_TEXT)?);
        let meta = Meta {
            format: "session-vault".into(),
            version: 1,
            current_key: id,
            keys: vec![KeyEntry {
                id,
                kdf,
                check: hex::encode(check),
            }],
        };
        Ok((meta, key))
    }

    /// Parses a metadata file; anything unexpected is `corrupted`.
    pub fn parse(bytes: &[u8]) -> Result<Meta, StoreError> {
        let meta: Meta = serde_json::from_slice(bytes).map_err(|e| {
            StoreError::Corrupted(format!("{FILE_NAME} is not valid store metadata: {e}"))
        })?;
        if meta.format != "session-vault" || meta.version != 1 {
            return Err(StoreError::Corrupted(format!(
                "{FILE_NAME} describes format {:?} version {}, not session-vault version 1",
                meta.format, meta.version
            )));
        }
        if !meta.keys.iter().any(|k| k.id == meta.current_key) {
            return Err(StoreError::Corrupted(format!(
                "{FILE_NAME} names current key {} but does not hold it",
                meta.current_key
            )));
        }
        Ok(meta)
    }

    /// Serializes the metadata for writing.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings and integers only: serialization cannot fail, so the default is unreachable.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Obtains the current key from `secret` and verifies it against the key check.
    ///
    /// `wrong-key` if the check fails or the secret is of the other kind; `corrupted`
    /// if the entry itself is malformed or asks for an unreasonable scrypt cost.
    pub fn unlock(&self, secret: &Secret) -> Result<(u32, Key), StoreError> {
        let entry = self
            .keys
            .iter()
            .find(|k| k.id == self.current_key)
            .ok_or_else(|| StoreError::Corrupted(format!("{FILE_NAME} lacks its current key")))?;
        let key = match (&entry.kdf, secret) {
            (Kdf::Scrypt { salt, log_n, r, p }, Secret::Passphrase(phrase)) => {
                let salt = hex::decode(salt).map_err(|e| {
                    StoreError::Corrupted(format!("{FILE_NAME}: salt is not hex: {e}"))
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
                        "{FILE_NAME}: scrypt parameters out of range (log N {log_n}, r {r}, p {p}, salt {} bytes)",
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
                return Err(StoreError::WrongKey);
            }
            (Kdf::Raw, Secret::Passphrase(phrase)) => {
                crypto::check_passphrase(phrase)?;
                return Err(StoreError::WrongKey);
            }
        };
        let check = hex::decode(&entry.check).map_err(|e| {
            StoreError::Corrupted(format!("{FILE_NAME}: key check is not hex: {e}"))
        })?;
        let (nonce, sealed) = check
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| StoreError::Corrupted(format!("{FILE_NAME}: key check is too short")))?;
        match key.open(nonce, &check_aad(entry.id), sealed) {
            Ok(text) if text == CHECK_TEXT => Ok((entry.id, key)),
            _ => Err(StoreError::WrongKey),
        }
    }
}

fn check_aad(id: u32) -> Vec<u8> {
    let mut aad = CHECK_AAD.to_vec();
    aad.extend_from_slice(&id.to_le_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "a passphrase that is long enough to pass";

    #[test]
    fn a_new_store_unlocks_with_its_secret_only() {
        let secret = Secret::Passphrase(PHRASE.into());
        let (meta, _) = Meta::create_with_cost(&secret, 10).unwrap();
        let meta = Meta::parse(&meta.to_bytes()).unwrap();
        assert!(meta.unlock(&secret).is_ok());
        let other = Secret::Passphrase(format!("{PHRASE}!"));
        assert!(matches!(meta.unlock(&other), Err(StoreError::WrongKey)));
        assert!(matches!(
            meta.unlock(&Secret::RawKey(vec![0; 32])),
            Err(StoreError::WrongKey)
        ));
    }

    #[test]
    fn salts_are_random_per_store() {
        let secret = Secret::Passphrase(PHRASE.into());
        let (a, _) = Meta::create_with_cost(&secret, 10).unwrap();
        let (b, _) = Meta::create_with_cost(&secret, 10).unwrap();
        assert_ne!(a.keys[0].kdf, b.keys[0].kdf);
    }

    #[test]
    fn raw_key_stores_check_the_key() {
        let (meta, _) = Meta::create(&Secret::RawKey(vec![1; 32])).unwrap();
        assert!(meta.unlock(&Secret::RawKey(vec![1; 32])).is_ok());
        assert!(matches!(
            meta.unlock(&Secret::RawKey(vec![2; 32])),
            Err(StoreError::WrongKey)
        ));
        assert!(matches!(
            meta.unlock(&Secret::RawKey(vec![2; 31])),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            meta.unlock(&Secret::Passphrase("short".into())),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn damaged_metadata_is_corrupted_not_wrong_key() {
        let no_keys = br#"{"format":"session-vault","version":1,"currentKey":1,"keys":[]}"#;
        for bad in [&b""[..], b"{", b"[]", no_keys] {
            assert!(matches!(Meta::parse(bad), Err(StoreError::Corrupted(_))));
        }
    }

    #[test]
    fn hostile_scrypt_costs_are_refused() {
        let secret = Secret::Passphrase(PHRASE.into());
        let (mut meta, _) = Meta::create_with_cost(&secret, 10).unwrap();
        if let Kdf::Scrypt { log_n, .. } = &mut meta.keys[0].kdf {
            *log_n = 40;
        }
        assert!(matches!(
            meta.unlock(&secret),
            Err(StoreError::Corrupted(_))
        ));
    }
}
