//! Keys and AES-256-GCM sealing. Every failure to open is one opaque error: it must not
//! tell an attacker which check failed.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::StoreError;

/// Bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Bytes of a GCM nonce (the standard 96 bits).
pub const NONCE_LEN: usize = 12;
/// Bytes of a GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// The fewest characters a passphrase may have.
pub const MIN_PASSPHRASE_CHARS: usize = 32;

/// An AES-256 key, with its AES-GCM instance (round keys and GHASH key) expanded once:
/// in wasm, with AES in software, expanding them costs about as much as sealing a small
/// record, and a store seals and opens thousands under one key. Both are zeroed when
/// dropped (the cipher by aes-gcm's `zeroize` feature).
#[derive(Clone)]
pub struct Key {
    raw: [u8; KEY_LEN],
    cipher: Aes256Gcm,
}

impl Drop for Key {
    fn drop(&mut self) {
        self.raw.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

/// Parameters of scrypt, as recorded in a store's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScryptParams {
    /// The per-store random salt.
    pub salt: Vec<u8>,
    /// log2 of the CPU/memory cost N.
    pub log_n: u8,
    /// The block size r.
    pub r: u32,
    /// The parallelism p.
    pub p: u32,
}

/// Decryption failed: wrong key, or the bytes were changed. Deliberately says no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authenticated decryption failed")]
pub struct Unauthentic;

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key given as raw bytes; exactly 32 are required.
    pub fn from_raw(bytes: &[u8]) -> Result<Self, StoreError> {
        let Ok(key) = <[u8; KEY_LEN]>::try_from(bytes) else {
            return Err(StoreError::InvalidInput(format!(
                "a raw key must be exactly {KEY_LEN} bytes, not {}",
                bytes.len()
            )));
        };
        Ok(Key::new(key))
    }

    fn new(raw: [u8; KEY_LEN]) -> Self {
        Key {
            cipher: Aes256Gcm::new(&raw.into()),
            raw,
        }
    }

    /// Derives a key from a passphrase with scrypt.
    pub fn derive(passphrase: &str, params: &ScryptParams) -> Result<Self, StoreError> {
        check_passphrase(passphrase)?;
        let scrypt_params = scrypt::Params::new(params.log_n, params.r, params.p).map_err(|e| {
            StoreError::Corrupted(format!("metadata holds unusable scrypt parameters: {e}"))
        })?;
        let mut key = [0u8; KEY_LEN];
        scrypt::scrypt(
            passphrase.as_bytes(),
            &params.salt,
            &scrypt_params,
            &mut key,
        )
        .map_err(|e| StoreError::InvalidInput(format!("scrypt output length: {e}")))?;
        let result = Key::new(key);
        key.zeroize();
        Ok(result)
    }

    /// The key's bytes, for sealing it under another key.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Encrypts `plaintext` under `nonce`, authenticating `aad` too; returns ciphertext || tag.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.cipher
            .encrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|e| StoreError::InvalidInput(format!("cannot encrypt: {e}")))
    }

    /// Decrypts ciphertext || tag sealed by [`Key::seal`] with the same nonce and `aad`.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, Unauthentic> {
        self.cipher
            .decrypt(&Nonce::from(*nonce), Payload { msg: sealed, aad })
            // aes_gcm::Error is opaque by design: there is no cause to keep.
            .map_err(|_opaque: aes_gcm::Error| Unauthentic)
    }

    /// Decrypts the original TypeScript store's AES-256-GCM with a 16-byte IV (which GCM
    /// hashes into its counter block) and no associated data; `sealed` is ciphertext || tag.
    pub fn open_legacy(&self, iv: &[u8; 16], sealed: &[u8]) -> Result<Vec<u8>, Unauthentic> {
        use aes_gcm::aes::{Aes256, cipher::consts::U16};
        aes_gcm::AesGcm::<Aes256, U16>::new(&self.raw.into())
            .decrypt(&(*iv).into(), sealed)
            // aes_gcm::Error is opaque by design: there is no cause to keep.
            .map_err(|_opaque: aes_gcm::Error| Unauthentic)
    }
}

/// Fails with `invalid-input` for a passphrase shorter than the minimum.
pub fn check_passphrase(phrase: &str) -> Result<(), StoreError> {
    let chars = phrase.chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "the passphrase has {chars} characters; at least {MIN_PASSPHRASE_CHARS} are required"
        )));
    }
    Ok(())
}

/// Fills `buf` from the system's secure random source (`wasi:random` in the component).
pub fn random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf)
        .map_err(|e| StoreError::io("reading random bytes", std::io::Error::other(e)))
}

/// A fresh random nonce.
pub fn nonce() -> Result<[u8; NONCE_LEN], StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_raw(&[byte; KEY_LEN]).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips() {
        let nonce = nonce().unwrap();
        let sealed = key(1).seal(&nonce, b"aad", b"secret").unwrap();
        assert_eq!(sealed.len(), 6 + TAG_LEN);
        assert_eq!(key(1).open(&nonce, b"aad", &sealed).unwrap(), b"secret");
    }

    #[test]
    fn wrong_key_fails_decrypt() {
        let nonce = nonce().unwrap();
        let sealed = key(1).seal(&nonce, b"aad", b"secret").unwrap();
        assert_eq!(key(2).open(&nonce, b"aad", &sealed), Err(Unauthentic));
    }

    #[test]
    fn tampered_ciphertext_or_aad_fails_decrypt() {
        let nonce = nonce().unwrap();
        let sealed = key(1).seal(&nonce, b"aad", b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                key(1).open(&nonce, b"aad", &bad),
                Err(Unauthentic),
                "byte {i}"
            );
        }
        assert_eq!(key(1).open(&nonce, b"aae", &sealed), Err(Unauthentic));
    }

    #[test]
    fn truncated_ciphertext_fails_decrypt() {
        let nonce = nonce().unwrap();
        let sealed = key(1).seal(&nonce, b"", b"secret").unwrap();
        for len in 0..sealed.len() {
            assert_eq!(key(1).open(&nonce, b"", &sealed[..len]), Err(Unauthentic));
        }
    }

    #[test]
    fn raw_keys_must_be_32_bytes_and_passphrases_32_chars() {
        assert!(matches!(
            Key::from_raw(&[0; 31]),
            Err(StoreError::InvalidInput(_))
        ));
        let params = ScryptParams {
            salt: vec![7; 16],
            log_n: 4,
            r: 8,
            p: 1,
        };
        assert!(matches!(
            Key::derive(&"é".repeat(31), &params),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(Key::derive(&"é".repeat(32), &params).is_ok());
    }

    #[test]
    fn derivation_depends_on_salt() {
        let a = ScryptParams {
            salt: vec![1; 16],
            log_n: 4,
            r: 8,
            p: 1,
        };
        let b = ScryptParams {
            salt: vec![2; 16],
            ..a.clone()
        };
        let phrase = "correct horse battery staple, long enough";
        let nonce = [0u8; NONCE_LEN];
        let sealed = Key::derive(phrase, &a)
            .unwrap()
            .seal(&nonce, b"", b"x")
            .unwrap();
        assert_eq!(
            Key::derive(phrase, &b).unwrap().open(&nonce, b"", &sealed),
            Err(Unauthentic)
        );
        assert!(
            Key::derive(phrase, &a)
                .unwrap()
                .open(&nonce, b"", &sealed)
                .is_ok()
        );
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        assert_eq!(format!("{:?}", key(0xab)), "Key(..)");
    }
}
