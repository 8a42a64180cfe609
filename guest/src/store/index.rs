//! The in-memory index: each session's user and expiry, and each user's sessions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the index keeps of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The session's `userContext.userId`.
    pub user: String,
    /// When the session expires: its `expiresAt`, or earlier under an idle timeout.
    pub expires_at: u64,
    /// The id of the key its file is encrypted under.
    pub key_id: u32,
    /// The nonce of its file, which names this version of it: an access stamp applies
    /// only to the version it was written for.
    pub version: [u8; crate::seal::crypto::NONCE_LEN],
    /// Its sequence number: an older one found on the medium was put back (rolled back).
    pub seq: u64,
}

/// Sessions by id and by user.
#[derive(Debug, Default)]
pub struct Index {
    sessions: HashMap<String, Entry>,
    by_user: HashMap<String, BTreeSet<String>>,
}

impl Index {
    /// The entry of `id`, if indexed.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.sessions.get(id)
    }

    /// Makes room for `more` sessions at once: an open that knows how many it will insert
    /// then builds the table once, instead of holding the old and the new one at each
    /// doubling (the component's memory never shrinks, so that peak stays).
    pub fn reserve(&mut self, more: usize) {
        self.sessions.reserve(more);
    }

    /// Records `id` with `entry`, moving it between users if its user changed.
    pub fn insert(&mut self, id: &str, entry: Entry) {
        // Allocates only what is new: opening a store inserts every session once, and most
        // users already have a set.
        if let Some(current) = self.sessions.get_mut(id) {
            if current.user == entry.user {
                *current = entry;
                return;
            }
            self.remove(id);
        }
        match self.by_user.get_mut(&entry.user) {
            Some(ids) => {
                ids.insert(id.to_owned());
            }
            None => {
                self.by_user
                    .insert(entry.user.clone(), BTreeSet::from([id.to_owned()]));
            }
        }
        self.sessions.insert(id.to_owned(), entry);
    }

    /// Forgets `id`; returns its entry if it was indexed.
    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.sessions.remove(id)?;
        if let Some(ids) = self.by_user.get_mut(&entry.user) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&entry.user);
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

    /// The ids of sessions expired at `now`.
    pub fn expired_ids(&self, now: u64) -> Vec<String> {
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
        self.sessions
            .values()
            .filter(|entry| now < entry.expires_at)
            .count() as u64
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.sessions.clear();
        self.by_user.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, expires_at: u64) -> Entry {
        Entry {
            user: user.into(),
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
