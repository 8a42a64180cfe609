//! The key-value bucket a shared store lives in: what the store needs of `wasi:keyvalue`
//! (plain reads, compare-and-swap, batches, listing) and of session-vault's `indexes`
//! interface (an atomic change with expiry and index updates, ordered indexes).
//!
//! The component implements it over the imported WIT interfaces, the host natively over
//! Redis; `memory.rs`'s `MemoryBucket` is the same contract in memory, for tests.

use super::ledger::LedgerPage;
use crate::error::StoreError;

/// A member of an index with its score (milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The index.
    pub index: String,
    /// The member: a session id.
    pub member: String,
    /// Its order in the index.
    pub score: u64,
}

/// A member of an index, to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The index.
    pub index: String,
    /// The member.
    pub member: String,
}

/// One atomic change of the key a compare-and-swap handle read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// The new value; `None` removes the key.
    pub value: Option<Vec<u8>>,
    /// When the server may drop the key (and the indexes `add` names, if not later).
    pub expires_at: Option<u64>,
    /// Index members to add or re-score.
    pub add: Vec<Entry>,
    /// Index members to remove.
    pub remove: Vec<Member>,
    /// A frame to append to the version ledger in the same atomic step
    /// ([`LEDGER`](super::layout::LEDGER); see `ledger/`).
    pub frame: Option<Vec<u8>>,
}

/// The error of a write to a bucket whose store moves, or moved, to a directory.
pub fn moved_out() -> StoreError {
    StoreError::InvalidInput(
        "this store is moving, or moved, from redis to a directory (`migrate --to \
         files|log`): writes here are refused; open it in its directory"
            .into(),
    )
}

/// What [`Bucket::watch_read`] gives: the compare-and-swap handle, the value read, and
/// the ledger page read with it.
pub type Watched<C> = (C, Option<Vec<u8>>, LedgerPage);

/// One page of a listing: keys, and where the next page starts (`None`: the last page).
pub type Page = (Vec<String>, Option<String>);

/// The bucket a shared store is kept in. Every failure of the server is
/// [`StoreError::Unavailable`].
pub trait Bucket {
    /// What a compare-and-swap remembers of the key it read.
    type Cas;

    /// Whether a store can be in a bucket of this type: `false` only for a type with no
    /// values (the plain component's `Infallible`), so that such a build leaves the bucket
    /// store's code out. A bucket that exists must leave it `true`: `Store` treats a
    /// store in a bucket of a `false` type as impossible.
    const EXISTS: bool = true;

    /// The value of `key`; `None` if absent.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The values of `keys`, in order, in one round trip.
    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Reads `key` for a later [`Bucket::commit`]: the handle and the value read.
    fn watch(&mut self, key: &str) -> Result<(Self::Cas, Option<Vec<u8>>), StoreError>;

    /// Applies `change` if the key still holds what `cas` read; `false` (nothing applied)
    /// if another writer changed it since. Refused with [`moved_out`] (nothing applied)
    /// while the bucket holds the [`FENCE`](super::layout::FENCE) key.
    fn commit(&mut self, cas: Self::Cas, change: Change) -> Result<bool, StoreError>;

    /// Up to `limit` frames of the ledger stream after the stream id `after`.
    fn ledger(&mut self, after: &str, limit: u32) -> Result<LedgerPage, StoreError>;

    /// The value of `key` and up to `limit` frames of the ledger after `after`, in one
    /// round trip.
    fn read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), StoreError>;

    /// [`Bucket::watch`] and up to `limit` frames of the ledger after `after`, in one
    /// round trip.
    fn watch_read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<Watched<Self::Cas>, StoreError>;

    /// Takes the ledger's frames before stream id `before` out of the stream (a snapshot
    /// holds what they said).
    fn trim_ledger(&mut self, before: &str) -> Result<(), StoreError>;

    /// Sets `key` unconditionally.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Removes `keys`; absent ones are not an error.
    fn delete_many(&mut self, keys: &[String]) -> Result<(), StoreError>;

    /// One page of every key in the bucket, from `cursor` (`None`: the first page).
    fn list_keys(&mut self, cursor: Option<String>) -> Result<Page, StoreError>;

    /// Adds index members, or sets their scores.
    fn add(&mut self, entries: &[Entry]) -> Result<(), StoreError>;

    /// Removes index members.
    fn remove(&mut self, members: &[Member]) -> Result<(), StoreError>;

    /// Up to `limit` members of `index` scored `min..=max`, lowest first.
    fn range(
        &mut self,
        index: &str,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` members of `index` greater than `after` in byte order (from the first
    /// if `after` is empty), smallest first: the order of an index scored all 0.
    fn members_after(
        &mut self,
        index: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// How many members of `index` are scored `min..=max`.
    fn count(&mut self, index: &str, min: u64, max: u64) -> Result<u64, StoreError>;
}

/// The bucket of a build that has none (the plain component, without the key-value
/// imports): no value of it exists, so no store is ever in one.
impl Bucket for std::convert::Infallible {
    type Cas = std::convert::Infallible;
    const EXISTS: bool = false;

    fn get(&mut self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match *self {}
    }
    fn get_many(&mut self, _: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match *self {}
    }
    fn watch(&mut self, _: &str) -> Result<(Self::Cas, Option<Vec<u8>>), StoreError> {
        match *self {}
    }
    fn commit(&mut self, _: Self::Cas, _: Change) -> Result<bool, StoreError> {
        match *self {}
    }
    fn ledger(&mut self, _: &str, _: u32) -> Result<LedgerPage, StoreError> {
        match *self {}
    }
    fn read(
        &mut self,
        _: &str,
        _: &str,
        _: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), StoreError> {
        match *self {}
    }
    fn watch_read(&mut self, _: &str, _: &str, _: u32) -> Result<Watched<Self::Cas>, StoreError> {
        match *self {}
    }
    fn trim_ledger(&mut self, _: &str) -> Result<(), StoreError> {
        match *self {}
    }
    fn set(&mut self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        match *self {}
    }
    fn delete_many(&mut self, _: &[String]) -> Result<(), StoreError> {
        match *self {}
    }
    fn list_keys(&mut self, _: Option<String>) -> Result<Page, StoreError> {
        match *self {}
    }
    fn add(&mut self, _: &[Entry]) -> Result<(), StoreError> {
        match *self {}
    }
    fn remove(&mut self, _: &[Member]) -> Result<(), StoreError> {
        match *self {}
    }
    fn range(&mut self, _: &str, _: u64, _: u64, _: u32) -> Result<Vec<String>, StoreError> {
        match *self {}
    }
    fn members_after(&mut self, _: &str, _: &str, _: u32) -> Result<Vec<String>, StoreError> {
        match *self {}
    }
    fn count(&mut self, _: &str, _: u64, _: u64) -> Result<u64, StoreError> {
        match *self {}
    }
}
