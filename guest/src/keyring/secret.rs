//! The caller's secret: a passphrase or a raw key, zeroed on drop, never printed.

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
