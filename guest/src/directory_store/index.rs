//! The in-memory index: each session's user and expiry, and each user's sessions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

/// What the index keeps of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The session's `userContext.userId`, if it has one.
    pub user: Option<String>,
    /// Where its maximum lifetime counts from (`createdAt` or its first write), if known:
    /// so that `set` over it keeps that time without reading it.
    pub origin: Option<u64>,
    /// When the session expires: its `expiresAt`, or earlier under an idle timeout.
    pub expires_at: u64,
    /// The id of the key its file is encrypted under.
    pub key_id: u32,
    /// The nonce of its file, which names this version of it: an access stamp applies
    /// only to the version it was written for.
    pub version: [u8; crate::seal::crypto::NONCE_LEN],
    /// Its sequence number: an older one found on the backend was put back (rolled back).
    pub seq: u64,
}

/// Sessions by id and by user.
#[derive(Debug, Default)]
pub struct Index {
    /// In id order, so that `list` pages through them with the last id as its cursor.
    sessions: BTreeMap<String, Entry>,
    by_user: HashMap<String, BTreeSet<String>>,
    /// How many sessions expire at each time: `count` and `cleanup` look only at the
    /// times already past (few, once `cleanup` runs now and then) instead of every session.
    expiries: BTreeMap<u64, u32>,
}

impl Index {
    /// The entry of `id`, if indexed.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.sessions.get(id)
    }

    /// Records `id` with `entry`, moving it between users if its user changed.
    pub fn insert(&mut self, id: &str, entry: Entry) {
        // Allocates only what is new: opening a store inserts every session once, and most
        // users already have a set.
        if let Some(current) = self.sessions.get_mut(id) {
            if current.user == entry.user {
                let was = current.expires_at;
                *current = entry;
                let now = current.expires_at;
                self.expiry(was, false);
                self.expiry(now, true);
                return;
            }
            self.remove(id);
        }
        self.expiry(entry.expires_at, true);
        match entry
            .user
            .as_ref()
            .map(|user| (user, self.by_user.get_mut(user)))
        {
            Some((_, Some(ids))) => {
                ids.insert(id.to_owned());
            }
            Some((user, None)) => {
                self.by_user
                    .insert(user.clone(), BTreeSet::from([id.to_owned()]));
            }
            None => {}
        }
        self.sessions.insert(id.to_owned(), entry);
    }

    /// Forgets `id`; returns its entry if it was indexed.
    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.sessions.remove(id)?;
        self.expiry(entry.expires_at, false);
        if let Some(user) = &entry.user
            && let Some(ids) = self.by_user.get_mut(user)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(user);
            }
        }
        Some(entry)
    }

    /// The ids of `user`'s sessions, live or not, in id order.
    pub fn user_ids(&self, user: &str) -> Vec<String> {
        self.by_user
            .get(user)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Counts a session in (`add`) or out of the sessions expiring at `at`.
    fn expiry(&mut self, at: u64, add: bool) {
        let count = self.expiries.entry(at).or_insert(0);
        if add {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.expiries.remove(&at);
            }
        }
    }

    /// How many indexed sessions have expired at `now`.
    fn expired(&self, now: u64) -> u64 {
        (self.expiries.range(..=now))
            .map(|(_, count)| u64::from(*count))
            .sum()
    }

    /// The ids of sessions expired at `now`.
    pub fn expired_ids(&self, now: u64) -> Vec<String> {
        if self.expired(now) == 0 {
            return Vec::new();
        }
        self.sessions
            .iter()
            .filter(|(_, entry)| now >= entry.expires_at)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many indexed sessions are encrypted under each key id.
    pub fn by_key(&self) -> BTreeMap<u32, u64> {
        let mut counts = BTreeMap::new();
        for entry in self.sessions.values() {
            *counts.entry(entry.key_id).or_insert(0) += 1;
        }
        counts
    }

    /// Ids of sessions not encrypted under `key_id`, at most `limit` of them.
    pub fn not_under(&self, key_id: u32, limit: usize) -> Vec<String> {
        self.sessions
            .iter()
            .filter(|(_, e)| e.key_id != key_id)
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Up to `limit` ids after `after` (from the first if `None`), in id order, of the
    /// sessions live at `now`; and whether a live one follows them.
    pub fn live_after(&self, after: Option<&str>, now: u64, limit: usize) -> (Vec<String>, bool) {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut live = (self.sessions)
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(_, entry)| now < entry.expires_at)
            .map(|(id, _)| id);
        let ids: Vec<String> = live.by_ref().take(limit).cloned().collect();
        let more = live.next().is_some();
        (ids, more)
    }

    /// Every indexed id.
    pub fn ids(&self) -> Vec<String> {
        self.sessions.keys().cloned().collect()
    }

    /// Every indexed id with its version, for a ledger snapshot.
    pub fn versions(&self) -> Vec<(String, u64)> {
        (self.sessions.iter())
            .map(|(id, entry)| (id.clone(), entry.seq))
            .collect()
    }

    /// How many sessions are indexed, live or not.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is indexed.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// How many indexed sessions are live at `now`.
    pub fn live(&self, now: u64) -> u64 {
        (self.sessions.len() as u64).saturating_sub(self.expired(now))
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.sessions.clear();
        self.by_user.clear();
        self.expiries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, expires_at: u64) -> Entry {
        Entry {
            user: Some(user.into()),
            origin: None,
            expires_at,
            key_id: 1,
            version: [0; crate::seal::crypto::NONCE_LEN],
            seq: 1,
        }
    }

    #[test]
    fn moving_a_session_between_users_updates_both_lists() {
        let mut index = Index::default();
        index.insert("s1", entry("u1", 10));
        index.insert("s2", entry("u1", 10));
        index.insert("s1", entry("u2", 10));
        assert_eq!(index.user_ids("u1"), vec!["s2"]);
        assert_eq!(index.user_ids("u2"), vec!["s1"]);
        index.remove("s2");
        assert!(index.user_ids("u1").is_empty());
        assert!(!index.by_user.contains_key("u1"));
    }

    #[test]
    fn the_live_count_follows_every_insert_move_and_removal() {
        // Against a count over every entry, through inserts, rewrites with a new expiry,
        // moves between users, removals and a clear.
        let mut index = Index::default();
        let mut model: HashMap<String, u64> = HashMap::new();
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for step in 0..2_000 {
            let id = format!("s{}", next(50));
            match next(10) {
                0..=5 => {
                    let expires_at = next(100);
                    index.insert(&id, entry(&format!("u{}", next(3)), expires_at));
                    model.insert(id, expires_at);
                }
                6..=8 => {
                    assert_eq!(index.remove(&id).is_some(), model.remove(&id).is_some());
                }
                _ if step % 500 == 0 => {
                    index.clear();
                    model.clear();
                }
                _ => {}
            }
            let now = next(100);
            let live = model.values().filter(|at| now < **at).count() as u64;
            assert_eq!(index.live(now), live, "step {step} at {now}");
            let mut expired = index.expired_ids(now);
            expired.sort();
            let mut want: Vec<String> = (model.iter())
                .filter(|(_, at)| now >= **at)
                .map(|(id, _)| id.clone())
                .collect();
            want.sort();
            assert_eq!(expired, want, "step {step} at {now}");
        }
    }

    #[test]
    fn live_count_excludes_expired_sessions() {
        let mut index = Index::default();
        index.insert("a", entry("u", 10));
        index.insert("b", entry("u", 20));
        assert_eq!(index.live(9), 2);
        assert_eq!(index.live(10), 1);
        assert_eq!(index.expired_ids(10), vec!["a"]);
        assert_eq!(index.live(20), 0);
    }
}
