//! The store's metadata file, `session-vault.json`: plain JSON holding nothing secret —
//! the format version, the store's random id, and for each key its id, how it is derived,
//! and a key check — authenticated by a MAC under the current key.
//!
//! The key check is an AES-256-GCM seal of a fixed text under the key, so a wrong secret
//! is told apart from a damaged session file at `open`; the KDF parameters it depends on
//! cannot be lowered without failing it. Nothing else in the file is trusted (the backend,
//! the migration state, the keyring) until the MAC over all of it verifies.

mod entry;
mod secret;

pub use entry::{Checks, KeyEntry, WrappedKey};
pub use secret::Secret;

use serde::{Deserialize, Serialize};

use crate::backend::layout::META_FILE;
use crate::error::StoreError;
use crate::seal::crypto::{self, Key, NONCE_LEN};
use crate::seal::format::{STORE_ID_LEN, Scope};

/// The metadata format this code writes: 3, whose records bind the store id and their
/// version (see [`crate::seal::format`]).
pub const VERSION: u32 = 3;
/// The first version with a store id and a MAC.
pub const VERSION_MAC: u32 = 2;
const MAC_AAD: &[u8] = b"session-vault metadata v2";

/// scrypt cost for new stores: N = 2^15, r = 8, p = 1 (32 MiB of memory).
pub const DEFAULT_LOG_N: u8 = 15;

/// The parsed metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    /// Always "session-vault".
    pub format: String,
    /// The metadata format version: 3 (1: before the MAC; 2: before records bound the
    /// store; upgraded at the first open).
    pub version: u32,
    /// hex of 16 random bytes, fixed when the store is created (version 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// The key id that encrypts new writes.
    pub current_key: u32,
    /// Every key the store knows.
    pub keys: Vec<KeyEntry>,
    /// Where the sessions are kept; stores from before this field are `files`.
    #[serde(default)]
    pub backend: crate::backend::BackendKind,
    /// Set while `migrate` copies the sessions to this backend; an open that finds it
    /// set discards the partial copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrating_to: Option<crate::backend::BackendKind>,
    /// Set once a migration is committed, until the old backend's data is removed; an
    /// open that finds it set finishes the removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_from: Option<crate::backend::BackendKind>,
    /// The generation of the version ledger (version 3): its file is
    /// `session-vault.<16 hex>.ledger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<u64>,
    /// hex(nonce || GCM tag): AES-256-GCM under the current key over every other field
    /// (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// The keys a store holds, unlocked: one current key that encrypts, older ones that decrypt.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// The id of the key new writes use.
    pub current: u32,
    /// Every active key by id, the current one included.
    pub keys: std::collections::BTreeMap<u32, Key>,
    /// What binds the store's records to it.
    pub scope: Scope,
}

impl Keyring {
    /// A keyring of one key, current, for the store `scope` names.
    pub fn single(id: u32, key: Key, scope: Scope) -> Keyring {
        Keyring {
            current: id,
            keys: std::collections::BTreeMap::from([(id, key)]),
            scope,
        }
    }

    /// The key of `id`, if the store holds it.
    pub fn key(&self, id: u32) -> Option<&Key> {
        self.keys.get(&id)
    }

    /// The current key.
    pub fn current_key(&self) -> Result<&Key, StoreError> {
        self.key(self.current).ok_or_else(|| {
            StoreError::Corrupted(format!(
                "{META_FILE}: the current key is not in the keyring"
            ))
        })
    }
}

impl Meta {
    /// Creates the metadata of a new store for `secret`, returning it with the key.
    pub fn create(secret: &Secret) -> Result<(Meta, Key), StoreError> {
        Self::create_with_cost(secret, DEFAULT_LOG_N)
    }

    /// As [`Meta::create`], with scrypt's N = 2^`log_n`.
    pub fn create_with_cost(secret: &Secret, log_n: u8) -> Result<(Meta, Key), StoreError> {
        let (entry, key) = KeyEntry::new(1, secret, log_n)?;
        let mut store_id = [0u8; STORE_ID_LEN];
        crypto::random(&mut store_id)?;
        let meta = Meta {
            format: "session-vault".into(),
            version: VERSION,
            store_id: Some(hex::encode(store_id)),
            current_key: entry.id,
            keys: vec![entry],
            backend: crate::backend::BackendKind::default(),
            migrating_to: None,
            migrated_from: None,
            ledger: None,
            mac: None,
        };
        Ok((meta, key))
    }

    /// Parses a metadata file; anything unexpected is `corrupted`.
    pub fn parse(bytes: &[u8]) -> Result<Meta, StoreError> {
        let meta: Meta = serde_json::from_slice(bytes).map_err(|e| {
            StoreError::Corrupted(format!("{META_FILE} is not valid store metadata: {e}"))
        })?;
        if meta.format != "session-vault" || !(1..=VERSION).contains(&meta.version) {
            return Err(StoreError::Corrupted(format!(
                "{META_FILE} describes format {:?} version {}, not session-vault version 1 to {VERSION}",
                meta.format, meta.version
            )));
        }
        if !meta
            .keys
            .iter()
            .any(|k| k.id == meta.current_key && !k.retired)
        {
            return Err(StoreError::Corrupted(format!(
                "{META_FILE} names current key {} but does not hold it",
                meta.current_key
            )));
        }
        Ok(meta)
    }

    /// Serializes the metadata for writing, at its version (at least 2), with its MAC
    /// under the current key of `keyring`.
    pub fn sealed(&self, keyring: &Keyring) -> Result<Vec<u8>, StoreError> {
        let mut meta = self.clone();
        meta.version = meta.version.max(VERSION_MAC);
        meta.mac = None;
        let nonce = crypto::nonce()?;
        let mut mac = nonce.to_vec();
        mac.extend(keyring.current_key()?.seal(&nonce, &meta.mac_aad(), &[])?);
        meta.mac = Some(hex::encode(mac));
        Ok(meta.to_bytes())
    }

    /// Checks the MAC of version-2 or later metadata under the current key of `keyring`
    /// (which [`Meta::unlock`] gave); `corrupted` if it is missing or does not verify.
    /// Version-1 metadata has none: the caller upgrades it.
    pub fn authenticate(&self, keyring: &Keyring) -> Result<(), StoreError> {
        if self.version < VERSION_MAC {
            return Ok(());
        }
        let unauthentic = || {
            StoreError::Corrupted(format!(
                "{META_FILE} is not authentic (edited or damaged): refusing to act on it"
            ))
        };
        let mac = hex::decode(self.mac.as_deref().ok_or_else(unauthentic)?)
            .map_err(|_hex| unauthentic())?;
        let (nonce, tag) = mac
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(unauthentic)?;
        let mut unsealed = self.clone();
        unsealed.mac = None;
        match keyring.current_key()?.open(nonce, &unsealed.mac_aad(), tag) {
            Ok(text) if text.is_empty() => Ok(()),
            _ => Err(unauthentic()),
        }
    }

    /// Upgrades version-1 metadata to version 2: a store id, version-2 checks for every
    /// key `keyring` holds (so the file can no longer pass as version 1). Written with
    /// [`Meta::sealed`]; the store then rewrites its records and writes version 3.
    pub fn upgrade(&mut self, keyring: &mut Keyring) -> Result<(), StoreError> {
        if self.store_id.is_none() {
            // Taken from the file itself (the tag of the current key's check, random
            // under the key), not drawn at random: the same version-1 file put back
            // upgrades to the same id, so the records written since still open.
            let check = hex::decode(&self.entry(self.current_key)?.check).map_err(|e| {
                StoreError::Corrupted(format!("{META_FILE}: a key check is not hex: {e}"))
            })?;
            let tag = check
                .len()
                .checked_sub(STORE_ID_LEN)
                .and_then(|at| check.get(at..))
                .ok_or_else(|| {
                    StoreError::Corrupted(format!("{META_FILE}: a key check is too short"))
                })?;
            self.store_id = Some(hex::encode(tag));
        }
        for entry in &mut self.keys {
            if let Some(key) = keyring.key(entry.id) {
                entry.recheck(key)?;
            }
        }
        self.version = self.version.max(VERSION_MAC);
        keyring.scope = self.scope()?;
        Ok(())
    }

    /// What binds the store's records to it: its id, and whether its records may still
    /// be format v1 (metadata before version 3). A version-1 file has no id yet: all
    /// zeros, which only v1 records (that bind none) are read under.
    pub fn scope(&self) -> Result<Scope, StoreError> {
        let mut store_id = [0u8; STORE_ID_LEN];
        if let Some(hex_id) = &self.store_id {
            hex::decode_to_slice(hex_id, &mut store_id).map_err(|e| {
                StoreError::Corrupted(format!("{META_FILE}: storeId is not 16 bytes of hex: {e}"))
            })?;
        }
        Ok(Scope {
            store_id,
            read_v1: self.version < VERSION,
        })
    }

    /// What the MAC covers: every field but the MAC, as written.
    fn mac_aad(&self) -> Vec<u8> {
        let mut aad = MAC_AAD.to_vec();
        aad.extend(self.to_bytes());
        aad
    }

    /// Serializes the metadata as it stands (tests; [`Meta::sealed`] is what is written).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings and integers only: serialization cannot fail, so the default is unreachable.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Unlocks the keyring with `secret`, which must be the current key's secret.
    ///
    /// `wrong-key` if it is not (the secret of an older key is wrong too); `corrupted`
    /// if an entry is malformed, asks for an unreasonable scrypt cost, or a wrapped key
    /// does not open under the current one.
    pub fn unlock(&self, secret: &Secret) -> Result<Keyring, StoreError> {
        let entry = self.entry(self.current_key)?;
        let checks = if self.version < VERSION_MAC {
            Checks::V1
        } else {
            Checks::V2
        };
        let Some(current) = entry.open(secret, checks)? else {
            return Err(self.why_not(secret, checks)?);
        };
        let mut keys = std::collections::BTreeMap::new();
        for wrapped in &entry.wrapped {
            let sealed = hex::decode(&wrapped.key).map_err(|e| {
                StoreError::Corrupted(format!(
                    "{META_FILE}: wrapped key {} is not hex: {e}",
                    wrapped.id
                ))
            })?;
            let unwrapped = sealed
                .split_first_chunk::<NONCE_LEN>()
                .and_then(|(nonce, sealed)| {
                    current
                        .open(nonce, &wrap_aad(entry.id, wrapped.id), sealed)
                        .ok()
                })
                .ok_or_else(|| {
                    StoreError::Corrupted(format!(
                        "{META_FILE}: wrapped key {} does not open under key {}",
                        wrapped.id, entry.id
                    ))
                })?;
            keys.insert(wrapped.id, Key::from_raw(&unwrapped)?);
        }
        keys.insert(entry.id, current);
        Ok(Keyring {
            current: entry.id,
            keys,
            scope: self.scope()?,
        })
    }

    /// Adds the key of `secret` to the keyring. A new secret becomes the current key (new
    /// writes use it; older keys still decrypt); the secret of a retired key restores that
    /// key as a decrypting one. Returns the key's id.
    ///
    /// `invalid-input` if the secret's key is already active.
    pub fn add_key(
        &mut self,
        keyring: &mut Keyring,
        secret: &Secret,
        log_n: u8,
    ) -> Result<u32, StoreError> {
        for entry in &mut self.keys {
            if let Some(key) = entry.open(secret, Checks::Either)? {
                if !entry.retired {
                    return Err(StoreError::InvalidInput(format!(
                        "that secret is already key {} of this store",
                        entry.id
                    )));
                }
                entry.retired = false;
                keyring.keys.insert(entry.id, key);
                let id = entry.id;
                self.rewrap(keyring)?;
                return Ok(id);
            }
        }
        let id = self
            .keys
            .iter()
            .map(|k| k.id)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let (entry, key) = KeyEntry::new(id, secret, log_n)?;
        self.keys.push(entry);
        keyring.keys.insert(id, key);
        keyring.current = id;
        self.current_key = id;
        self.rewrap(keyring)?;
        Ok(id)
    }

    /// Retires key `id`: forgets it (keeping its entry, so its secret can restore it).
    /// The caller has made sure no session still needs it.
    pub fn retire(&mut self, keyring: &mut Keyring, id: u32) -> Result<(), StoreError> {
        if id == self.current_key {
            return Err(StoreError::InvalidInput(format!(
                "key {id} is the current key; add a new key before retiring it"
            )));
        }
        let entry = self
            .keys
            .iter_mut()
            .find(|k| k.id == id && !k.retired)
            .ok_or_else(|| {
                StoreError::InvalidInput(format!("this store has no active key {id}"))
            })?;
        entry.retired = true;
        keyring.keys.remove(&id);
        self.rewrap(keyring)
    }

    /// Seals every non-current active key under the current one, on the current entry only.
    fn rewrap(&mut self, keyring: &Keyring) -> Result<(), StoreError> {
        let current = keyring.current_key()?;
        let mut wrapped = Vec::new();
        for (&id, key) in keyring
            .keys
            .iter()
            .filter(|(id, _)| **id != keyring.current)
        {
            let nonce = crypto::nonce()?;
            let mut sealed = nonce.to_vec();
            sealed.extend(current.seal(&nonce, &wrap_aad(keyring.current, id), key.bytes())?);
            wrapped.push(WrappedKey {
                id,
                key: hex::encode(sealed),
            });
        }
        for entry in &mut self.keys {
            entry.wrapped = if entry.id == keyring.current {
                std::mem::take(&mut wrapped)
            } else {
                Vec::new()
            };
        }
        Ok(())
    }

    /// Why `secret` does not open the current key: `wrong-key` (the secret of an older key
    /// is wrong too), unless it opens the current key under the other version's check: the
    /// version was relabelled (say, to 1, to pass without a MAC), which is `corrupted`.
    fn why_not(&self, secret: &Secret, checks: Checks) -> Result<StoreError, StoreError> {
        let other = match checks {
            Checks::V1 => Checks::V2,
            _ => Checks::V1,
        };
        if self.entry(self.current_key)?.open(secret, other)?.is_some() {
            return Ok(StoreError::Corrupted(format!(
                "{META_FILE}: its version does not match its key check: the file was edited"
            )));
        }
        Ok(StoreError::WrongKey)
    }

    /// Every key entry, retired ones included.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.keys
    }

    fn entry(&self, id: u32) -> Result<&KeyEntry, StoreError> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::Corrupted(format!("{META_FILE} lacks key {id}")))
    }
}

fn wrap_aad(current: u32, wrapped: u32) -> Vec<u8> {
    let mut aad = b"session-vault wrapped key v1".to_vec();
    aad.extend_from_slice(&current.to_le_bytes());
    aad.extend_from_slice(&wrapped.to_le_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::entry::Kdf;
    use super::*;

    const PHRASE: &str = "a passphrase that is long enough to pass";

    #[test]
    fn a_new_store_unlocks_with_its_secret_only() {
        let secret = Secret::Passphrase(PHRASE.into());
        let (meta, _) = Meta::create_with_cost(&secret, 10).unwrap();
        let meta = Meta::parse(&meta.to_bytes()).unwrap();
        assert_eq!(meta.unlock(&secret).unwrap().current, 1);
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
    fn rotation_keeps_old_keys_readable_with_the_new_secret_only() {
        let first = Secret::RawKey(vec![1; 32]);
        let second = Secret::Passphrase(PHRASE.into());
        let (mut meta, _) = Meta::create(&first).unwrap();
        let mut keyring = meta.unlock(&first).unwrap();
        assert_eq!(meta.add_key(&mut keyring, &second, 10).unwrap(), 2);
        let reopened = Meta::parse(&meta.to_bytes()).unwrap();
        let keyring = reopened.unlock(&second).unwrap();
        assert_eq!((keyring.current, keyring.keys.len()), (2, 2));
        assert!(matches!(reopened.unlock(&first), Err(StoreError::WrongKey)));
        let text = String::from_utf8(meta.to_bytes()).unwrap();
        assert!(
            !text.contains(&hex::encode([1u8; 32])),
            "no key in plain form"
        );
    }

    #[test]
    fn retired_keys_come_back_with_their_secret() {
        let first = Secret::RawKey(vec![1; 32]);
        let second = Secret::RawKey(vec![2; 32]);
        let (mut meta, _) = Meta::create(&first).unwrap();
        let mut keyring = meta.unlock(&first).unwrap();
        meta.add_key(&mut keyring, &second, 10).unwrap();
        assert!(matches!(
            meta.retire(&mut keyring, 2),
            Err(StoreError::InvalidInput(_))
        ));
        meta.retire(&mut keyring, 1).unwrap();
        assert!(
            Meta::parse(&meta.to_bytes())
                .unwrap()
                .unlock(&second)
                .unwrap()
                .key(1)
                .is_none()
        );
        assert!(matches!(
            meta.add_key(&mut keyring, &second, 10),
            Err(StoreError::InvalidInput(_))
        ));
        assert_eq!(
            meta.add_key(&mut keyring, &first, 10).unwrap(),
            1,
            "restored, not new"
        );
        let keyring = Meta::parse(&meta.to_bytes())
            .unwrap()
            .unlock(&second)
            .unwrap();
        assert_eq!((keyring.current, keyring.keys.len()), (2, 2));
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
