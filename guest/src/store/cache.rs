//! A bounded cache of opened sessions, so that a read of a hot session skips the medium,
//! the AEAD and the JSON parse.
//!
//! A slot is the session as its record holds it (before an access stamp is applied),
//! with the exact bytes of the record it was opened from, and it is served only for
//! those bytes: the store still reads the record from its medium (a file, a log record,
//! a server's value) and skips only the AEAD and the JSON parse when the bytes are equal.
//! So the medium stays the authority: a record changed by anyone, in a single bit,
//! misses and is verified (and refused) as without the cache, and a removed or replaced
//! record cannot be served from memory. Writes keep the record they wrote; removals
//! forget the slot at once, so a removed session's plaintext leaves memory with it.
//!
//! Its size is counted in bytes of serialized session (plus a fixed overhead per slot);
//! past the limit the least recently used slots go. A slot leaving the cache, by
//! eviction, invalidation, removal or the store closing, has its strings zeroed
//! ([`SessionData::wipe`]).

use std::collections::{BTreeMap, HashMap};

use crate::document::model::SessionData;

/// The cache's size when the configuration does not give one: a few thousand sessions
/// of the original's shape (~2.5 KB each).
pub const DEFAULT_CACHE_BYTES: u64 = 8 << 20;

/// What a slot costs beyond its serialized session: the id, the slot, the map entries
/// and the allocations of a parsed session's strings.
const SLOT_OVERHEAD: usize = 256;

struct Slot {
    /// The record the session was opened from.
    record: Vec<u8>,
    /// When the slot was last used: its key in `SessionCache::recency`.
    used: u64,
    /// What the slot counts against the limit.
    bytes: usize,
    session: SessionData,
}

/// Opened sessions by id, each with the record it was opened from; least recently used
/// first out.
pub struct SessionCache {
    limit: usize,
    held: usize,
    clock: u64,
    slots: HashMap<String, Slot>,
    recency: BTreeMap<u64, String>,
}

impl SessionCache {
    /// An empty cache of at most `limit` bytes; 0 keeps nothing.
    pub fn new(limit: u64) -> Self {
        SessionCache {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            held: 0,
            clock: 0,
            slots: HashMap::new(),
            recency: BTreeMap::new(),
        }
    }

    /// A copy of session `id` if the cache opened it from exactly `record`. A slot of
    /// other bytes is stale: it is dropped.
    pub fn session(&mut self, id: &str, record: &[u8]) -> Option<SessionData> {
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

    /// Keeps `session`, opened from (or sealed into) `record`, replacing what the cache
    /// held of it, then evicts until the cache fits its limit. A slot counts the record
    /// twice (the record, and the session parsed from about as many bytes) plus a fixed
    /// overhead; one larger than a quarter of the limit is not kept, so that a single
    /// session does not empty the cache.
    pub fn keep(&mut self, session: &SessionData, record: &[u8]) {
        let id = session.session_id.as_str();
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

    fn session(id: &str) -> SessionData {
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
