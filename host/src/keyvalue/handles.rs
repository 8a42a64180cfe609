//! The resources the key-value component holds handles to: a bucket and a
//! compare-and-swap. The generated bindings name these types; `wasi.rs` implements the
//! imports on them.

/// An open bucket: the prefix of its keys.
pub struct Bucket {
    pub(super) prefix: String,
}

impl Bucket {
    pub(super) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// A compare-and-swap handle: the full key, the value read, the bucket's prefix.
pub struct Cas {
    pub(super) key: String,
    pub(super) read: Option<Vec<u8>>,
    pub(super) prefix: String,
}
