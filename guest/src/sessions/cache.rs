//! A bounded cache of opened sessions, so that a read of a hot session skips the medium,
//! the AEAD and the JSON parse.
//!
//! A slot is the session as its record holds it (before an access stamp is applied),
//! with the exact bytes of the record it was opened from, and it is served only for
//! those bytes: the store still reads the record from its medium (a file, a log record,
//! a server's value) and skips only the AEAD and the JSON parse when the bytes are equal.
//! So the medium stays the authority: a record changed by anyone, in a single bit,
//! misses and is verified (and refused) as without the cache, and a removed or replaced
//! record cannot be served from memory. Removals forget the slot at once, so a removed
//! session's plaintext leaves memory with it.
//!
//! A session enters the cache the second time it is read among the last few thousand
//! reads (a doorkeeper of hashed ids, as in TinyLFU), and a write refreshes a slot the
//! session already has: a store read uniformly over far more sessions than the cache
//! holds (a scan, a benchmark) pays a hash per read, not a copy and an eviction, while a
//! session a server validates on every request is served from memory from its third.
//!
//! Its size is counted in bytes of serialized session (plus a fixed overhead per slot);
//! past the limit the least recently used slots go. A slot leaving the cache, by
//! eviction, invalidation, removal or the store closing, has its strings zeroed
//! ([`Session::wipe`]).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use crate::document::session::Session;

/// The cache's size when the configuration does not give one: a few thousand sessions
/// of the original's shape (~2.5 KB each).
pub const DEFAULT_CACHE_BYTES: u64 = 8 << 20;

/// What a slot costs beyond its serialized session: the id, the slot, the map entries
/// and the allocations of a parsed session's strings.
const SLOT_OVERHEAD: usize = 256;

/// Bytes of cache per id the doorkeeper remembers (8,192 ids for the default 8 MiB).
const BYTES_PER_SEEN: u64 = 1024;

struct Slot {
    /// The record the session was opened from.
    record: Vec<u8>,
    /// When the slot was last used: its key in `SessionCache::recency`.
    used: u64,
    /// What the slot counts against the limit.
    bytes: usize,
    session: Session,
}

/// Opened sessions by id, each with the record it was opened from; least recently used
/// first out.
pub struct SessionCache {
    limit: usize,
    held: usize,
    clock: u64,
    slots: HashMap<String, Slot>,
    recency: BTreeMap<u64, String>,
    /// Hashes of ids read once lately, oldest first in `seen_order`.
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    seen_limit: usize,
    hasher: RandomState,
}

impl SessionCache {
    /// An empty cache of at most `limit` bytes; 0 keeps nothing.
    pub fn new(limit: u64) -> Self {
        let seen_limit = (limit / BYTES_PER_SEEN).clamp(64, 1 << 16);
        SessionCache {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            held: 0,
            clock: 0,
            slots: HashMap::new(),
            recency: BTreeMap::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            // At most 2^16.
            seen_limit: usize::try_from(seen_limit).unwrap_or(1 << 16),
            hasher: RandomState::new(),
        }
    }

    /// A copy of session `id` if the cache opened it from exactly `record`. A slot of
    /// other bytes is stale: it is dropped.
    pub fn session(&mut self, id: &str, record: &[u8]) -> Option<Session> {
        let slot = self.slots.get_mut(id)?;
        if slot.record != record {
            self.forget(id);
            return None;
        }
        self.clock += 1;
        if let Some(owner) = self.recency.remove(&slot.used) {
            self.recency.insert(self.clock, owner);
        }
        slot.used = self.clock;
        Some(slot.session.clone())
    }

    /// `session` was just opened from `record`: kept if the cache holds the session
    /// already (in another version) or has seen it read lately.
    pub fn opened(&mut self, session: &Session, record: &[u8]) {
        let id = session.id();
        if self.limit > 0 && (self.slots.contains_key(id) || self.admit(id)) {
            self.keep(session, record);
        }
    }

    /// `session` was just written as `record`: its slot, if it has one, now holds it.
    pub fn written(&mut self, session: &Session, record: &[u8]) {
        if self.slots.contains_key(session.id()) {
            self.keep(session, record);
        }
    }

    /// Whether `id` was read lately (then it is let in); otherwise remembers it.
    fn admit(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        if self.seen.remove(&hash) {
            return true;
        }
        self.seen.insert(hash);
        self.seen_order.push_back(hash);
        if self.seen_order.len() > self.seen_limit
            && let Some(oldest) = self.seen_order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        false
    }

    /// Keeps `session`, opened from (or sealed into) `record`, replacing what the cache
    /// held of it, then evicts until the cache fits its limit. A slot counts the record
    /// twice (the record, and the session parsed from about as many bytes) plus a fixed
    /// overhead; one larger than a quarter of the limit is not kept, so that a single
    /// session does not empty the cache.
    fn keep(&mut self, session: &Session, record: &[u8]) {
        let id = session.id();
        self.forget(id);
        let bytes = record
            .len()
            .saturating_mul(2)
            .saturating_add(id.len())
            .saturating_add(SLOT_OVERHEAD);
        if bytes > self.limit / 4 {
            return;
        }
        self.clock += 1;
        self.held += bytes;
        self.recency.insert(self.clock, id.to_owned());
        self.slots.insert(
            id.to_owned(),
            Slot {
                record: record.to_vec(),
                used: self.clock,
                bytes,
                session: session.clone(),
            },
        );
        while self.held > self.limit {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.forget(&oldest);
        }
    }

    /// Drops and wipes what the cache holds of `id`.
    pub fn forget(&mut self, id: &str) {
        if let Some(mut slot) = self.slots.remove(id) {
            self.recency.remove(&slot.used);
            self.held -= slot.bytes;
            slot.session.wipe();
        }
    }

    /// Drops and wipes every slot.
    pub fn clear(&mut self) {
        wipe_all(self);
    }

    /// How many sessions the cache holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cache holds no session.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The bytes the cache counts against its limit.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for SessionCache {
    fn drop(&mut self) {
        wipe_all(self);
    }
}

fn wipe_all(cache: &mut SessionCache) {
    for (_, mut slot) in cache.slots.drain() {
        slot.session.wipe();
    }
    cache.recency.clear();
    cache.held = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> Session {
        crate::document::example(id, "u", 100)
    }

    /// A record of `len` bytes, all `fill`.
    fn record(fill: u8, len: usize) -> Vec<u8> {
        vec![fill; len]
    }

    /// What a slot of `record(_, len)` for a one-character id counts.
    fn slot_bytes(len: usize) -> usize {
        2 * len + 1 + SLOT_OVERHEAD
    }

    #[test]
    fn serves_only_for_the_bytes_it_was_opened_from() {
        let mut cache = SessionCache::new(1 << 20);
        cache.keep(&session("a"), &record(1, 500));
        assert_eq!(cache.session("a", &record(1, 500)), Some(session("a")));
        assert_eq!(cache.session("b", &record(1, 500)), None);
        // Other bytes (a write the cache did not see, or an edit) drop the slot.
        assert_eq!(cache.session("a", &record(1, 499)), None);
        assert!(cache.is_empty());
        assert_eq!(cache.held(), 0);
    }

    #[test]
    fn a_session_enters_on_its_second_read_and_writes_only_refresh() {
        let mut cache = SessionCache::new(1 << 20);
        cache.written(&session("a"), &record(1, 500));
        cache.opened(&session("a"), &record(1, 500));
        assert!(cache.is_empty(), "a write and one read do not let it in");
        cache.opened(&session("a"), &record(1, 500));
        assert_eq!(cache.len(), 1, "the second read does");
        cache.written(&session("a"), &record(2, 500));
        assert_eq!(cache.session("a", &record(2, 500)), Some(session("a")));
        // A read among many others is forgotten: the doorkeeper holds 1 MiB / 1 KiB ids.
        cache.opened(&session("b"), &record(1, 500));
        for i in 0..1024 {
            cache.opened(&session(&format!("x{i}")), &record(1, 500));
        }
        cache.opened(&session("b"), &record(1, 500));
        assert_eq!(cache.session("b", &record(1, 500)), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_single_flipped_bit_misses() {
        let mut cache = SessionCache::new(1 << 20);
        let kept = record(7, 500);
        cache.keep(&session("a"), &kept);
        let mut edited = kept.clone();
        edited[250] ^= 0x10;
        assert_eq!(cache.session("a", &edited), None);
        assert_eq!(
            cache.session("a", &kept),
            None,
            "the stale slot was dropped"
        );
    }

    #[test]
    fn evicts_the_least_recently_used_past_its_limit() {
        // Room for four slots.
        let mut cache = SessionCache::new((4 * slot_bytes(500) + 100) as u64);
        for id in ["a", "b", "c", "d"] {
            cache.keep(&session(id), &record(1, 500));
        }
        assert!(cache.session("a", &record(1, 500)).is_some());
        cache.keep(&session("e"), &record(1, 500));
        assert_eq!(cache.len(), 4);
        assert!(
            cache.session("b", &record(1, 500)).is_none(),
            "b was least recently used"
        );
        for id in ["a", "c", "d", "e"] {
            assert!(cache.session(id, &record(1, 500)).is_some(), "{id}");
        }
        assert_eq!(cache.held(), 4 * slot_bytes(500));
    }

    #[test]
    fn keeping_a_session_again_replaces_its_slot() {
        let mut cache = SessionCache::new(1 << 20);
        cache.keep(&session("a"), &record(1, 500));
        cache.keep(&session("a"), &record(2, 900));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.held(), slot_bytes(900));
        assert_eq!(cache.session("a", &record(1, 500)), None);
    }

    #[test]
    fn a_zero_limit_or_an_outsized_session_keeps_nothing() {
        let mut off = SessionCache::new(0);
        off.keep(&session("a"), &record(1, 10));
        assert!(off.is_empty());
        let mut small = SessionCache::new(4 * slot_bytes(500) as u64);
        small.keep(&session("a"), &record(1, 501));
        assert!(small.is_empty(), "over a quarter of the limit");
        small.keep(&session("a"), &record(1, 500));
        assert_eq!(small.len(), 1);
    }

    #[test]
    fn forget_and_clear_release_what_they_drop() {
        let mut cache = SessionCache::new(1 << 20);
        cache.keep(&session("a"), &record(1, 500));
        cache.keep(&session("b"), &record(1, 500));
        cache.forget("a");
        cache.forget("absent");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.held(), slot_bytes(500));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.held(), 0);
    }
}
