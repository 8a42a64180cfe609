use std::cell::RefCell;
use std::rc::Rc;

use super::bucket::{Bucket, Change, Entry, Member, Page, Watched};
use super::ledger::LedgerPage;
use super::memory::{MemoryBucket, MemoryCas};
use super::*;
use crate::document::patch::{SecurityPatch, SessionPatch};
use crate::keyring::Secret;
use crate::sessions::clock::ManualClock;

/// A host of the store in a memory bucket (the moves' tests use these too).
pub(crate) type Host = BucketStore<MemoryBucket, ManualClock>;

pub(crate) fn config(key: u8) -> Config {
    Config::new(Secret::RawKey(vec![key; 32]))
}

pub(crate) fn host(bucket: &MemoryBucket, clock: &ManualClock) -> Host {
    BucketStore::open(bucket.clone(), clock.clone(), config(5)).unwrap()
}

pub(crate) fn session(id: &str, user: &str, expires_at: u64) -> Session {
    crate::document::example(id, user, expires_at)
}

fn bump(count: u64) -> SessionPatch {
    SessionPatch {
        security: Some(SecurityPatch {
            access_count: Some(count),
            ..SecurityPatch::default()
        }),
        ..SessionPatch::default()
    }
}

#[test]
fn two_hosts_see_one_store() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut a = host(&bucket, &clock);
    let mut b = host(&bucket, &clock);
    a.create(&session("s1", "alice", 1_000)).unwrap();
    assert!(matches!(
        b.create(&session("s1", "bob", 1_000)),
        Err(StoreError::AlreadyExists)
    ));
    b.update("s1", bump(7)).unwrap();
    assert_eq!(a.get("s1").unwrap().unwrap().access().unwrap().1, 7);
    assert_eq!(b.user_sessions("alice").unwrap().len(), 1);
    assert_eq!(a.count().unwrap(), 1);
    assert_eq!(b.revoke_user("alice").unwrap(), 1);
    assert_eq!(a.get("s1").unwrap(), None);
    assert_eq!(a.count().unwrap(), 0);
    assert!(bucket.edit(|m| m.indexes.is_empty()));
}

#[test]
fn a_host_serves_its_cache_only_for_the_bytes_the_server_holds() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut a = host(&bucket, &clock);
    let mut b = host(&bucket, &clock);
    a.create(&session("s1", "alice", 1_000)).unwrap();
    a.create(&session("s2", "alice", 1_000)).unwrap();
    assert_eq!(a.get("s1").unwrap().unwrap().access().unwrap().1, 0);
    assert_eq!(a.user_sessions("alice").unwrap().len(), 2);
    assert_eq!(a.cache.borrow().len(), 1, "s1 was read twice, s2 once");
    a.get("s2").unwrap();
    assert_eq!(a.cache.borrow().len(), 2);
    // Another host's write is new bytes: read, not served from memory.
    b.update("s1", bump(7)).unwrap();
    assert_eq!(a.get("s1").unwrap().unwrap().access().unwrap().1, 7);
    assert_eq!(a.touch("s1", None).unwrap().unwrap().access().unwrap().1, 8);
    // So is an edit, of one bit.
    bucket.edit(|m| {
        let record = &mut m.values.get_mut("s:s1").unwrap().0;
        let last = record.len() - 1;
        record[last] ^= 1;
    });
    assert!(matches!(a.get("s1"), Err(StoreError::Corrupted(_))));
    // The stale slot went with the refused read; a removal forgets at once, another
    // host's at the next read.
    assert_eq!(a.cache.borrow().len(), 1);
    assert_eq!(a.get("s2").unwrap().unwrap().id(), "s2");
    a.create(&session("s3", "alice", 1_000)).unwrap();
    a.get("s3").unwrap();
    a.get("s3").unwrap();
    assert_eq!(a.cache.borrow().len(), 2);
    assert!(a.delete("s3").unwrap());
    assert_eq!(a.cache.borrow().len(), 1);
    assert!(b.delete("s2").unwrap());
    assert_eq!(a.get("s2").unwrap(), None);
}

#[test]
fn a_wrong_key_and_an_edited_metadata_are_refused() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    host(&bucket, &clock);
    let wrong = BucketStore::open(bucket.clone(), clock.clone(), config(6));
    assert!(matches!(wrong, Err(StoreError::WrongKey)));
    bucket.edit(|m| {
        let meta = &mut m.values.get_mut(layout::META).unwrap().0;
        let text = String::from_utf8(meta.clone()).unwrap();
        *meta = text.replace("\"redis\"", "\"files\"").into_bytes();
    });
    let edited = BucketStore::open(bucket.clone(), clock.clone(), config(5));
    assert!(matches!(edited, Err(StoreError::Corrupted(_))));
}

#[test]
fn records_without_metadata_are_not_overwritten_by_a_new_store() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    host(&bucket, &clock)
        .create(&session("s1", "u", 1_000))
        .unwrap();
    bucket.edit(|m| m.values.remove(layout::META));
    let reopened = BucketStore::open(bucket.clone(), clock.clone(), config(5));
    assert!(matches!(reopened, Err(StoreError::Corrupted(m)) if m.contains("no metadata")));
}

#[test]
fn tampered_records_are_quarantined_and_foreign_keys_left_alone() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    store.create(&session("s1", "u", 1_000)).unwrap();
    store.create(&session("s2", "u", 1_000)).unwrap();
    bucket.edit(|m| {
        let record = &mut m.values.get_mut("s:s1").unwrap().0;
        let last = record.len() - 1;
        record[last] ^= 1;
        // s2's record under s3's name: bound to s2, so it does not open as s3.
        let moved = m.values["s:s2"].clone();
        m.values.insert("s:s3".into(), moved);
        m.values
            .insert("other-app:key".into(), (b"x".to_vec(), None));
    });
    assert!(matches!(store.get("s1"), Err(StoreError::Corrupted(_))));
    assert!(bucket.edit(|m| m.values.contains_key("q:s1") && !m.values.contains_key("s:s1")));
    assert!(matches!(store.get("s3"), Err(StoreError::Corrupted(_))));
    let report = store.check().unwrap();
    assert_eq!((report.live, report.quarantined, report.foreign), (1, 2, 1));
    assert!(bucket.edit(|m| m.values.contains_key("other-app:key")));
    assert_eq!(store.count().unwrap(), 1);
    assert_eq!(store.clear().unwrap(), 1);
    assert!(bucket.edit(|m| m.values.contains_key("other-app:key")));
}

#[test]
fn index_entries_are_hints_checked_against_the_records() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    store
        .create(&session("mallory1", "mallory", 1_000))
        .unwrap();
    store.create(&session("victim", "victim", 1_000)).unwrap();
    // An attacker files the victim's session under mallory's index.
    let mallory = store.user_index("mallory");
    bucket.edit(|m| {
        m.indexes
            .get_mut(&mallory)
            .unwrap()
            .insert("victim".into(), 1);
    });
    let ids: Vec<String> = (store.user_sessions("mallory").unwrap().into_iter())
        .map(|s| s.id().to_owned())
        .collect();
    assert_eq!(ids, ["mallory1"]);
    assert_eq!(store.revoke_user("mallory").unwrap(), 1);
    assert!(store.get("victim").unwrap().is_some());
    store.check().unwrap();
    assert!(bucket.edit(|m| !m.indexes.contains_key(&mallory)));
}

#[test]
fn expiry_is_enforced_by_the_store_and_set_as_a_ttl() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    store.create(&session("a", "u", 200)).unwrap();
    store.create(&session("b", "u", 300)).unwrap();
    assert_eq!(bucket.edit(|m| m.values["s:a"].1), Some(200));
    clock.set(200);
    assert_eq!(store.get("a").unwrap(), None);
    assert!(matches!(
        store.update("a", bump(1)),
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.touch("a", None).unwrap(), None);
    assert_eq!(store.count().unwrap(), 1);
    assert_eq!(store.user_sessions("u").unwrap().len(), 1);
    // An expired id may be created again.
    store.create(&session("a", "u", 400)).unwrap();
    clock.set(300);
    // The server dropped b at its TTL; only its index entries are left.
    bucket.edit(|m| m.values.remove("s:b"));
    assert_eq!(store.cleanup().unwrap(), 0);
    assert_eq!(store.user_sessions("u").unwrap().len(), 1);
    clock.set(400);
    assert_eq!(store.cleanup().unwrap(), 1);
    assert!(bucket.edit(|m| m.indexes.is_empty()));
}

#[test]
fn the_idle_timeout_moves_expiry_with_each_touch() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut idle = config(5);
    idle.idle_timeout = Some(50);
    let mut store = BucketStore::open(bucket.clone(), clock.clone(), idle).unwrap();
    let mut s = session("a", "u", 10_000);
    s.set_access(100, s.access().unwrap().1);
    store.create(&s).unwrap();
    clock.set(140);
    assert_eq!(
        store.touch("a", None).unwrap().unwrap().access().unwrap().1,
        1
    );
    assert_eq!(bucket.edit(|m| m.values["s:a"].1), Some(190));
    clock.set(190);
    assert_eq!(store.get("a").unwrap(), None);
    // The read removed the expired record and its index entries, as a directory store does.
    assert!(bucket.edit(|m| !m.values.contains_key("s:a")));
    assert!(bucket.edit(|m| m.indexes.is_empty()));
    assert_eq!(store.cleanup().unwrap(), 0);
}

#[test]
fn an_update_that_loses_the_swap_is_retried_on_the_winner() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    host(&bucket, &clock)
        .create(&session("s", "u", 1_000))
        .unwrap();
    let hook: Rc<RefCell<Box<dyn FnMut()>>> = Rc::new(RefCell::new(Box::new(|| {})));
    let mut interfering = Testing::new(&bucket);
    interfering.before_commit = Rc::clone(&hook);
    let mut a = BucketStore::open(interfering, clock.clone(), config(5)).unwrap();
    // Host b adds a role the first two times a commits: a must re-read and keep it.
    let mut b = host(&bucket, &clock);
    let mut turns = 0;
    *hook.borrow_mut() = Box::new(move || {
        if turns < 2 {
            turns += 1;
            let roles = SessionPatch {
                user_context: Some(crate::document::patch::UserContextPatch {
                    roles: Some(Some(vec![format!("b{turns}")])),
                    ..Default::default()
                }),
                ..SessionPatch::default()
            };
            b.update("s", roles).unwrap();
        }
    });
    let merged = a.update("s", bump(9)).unwrap();
    assert_eq!(merged.access().unwrap().1, 9);
    assert_eq!(
        merged.members()["userContext"]["roles"],
        serde_json::json!(["b2"])
    );
    let mut c = host(&bucket, &clock);
    assert_eq!(c.get("s").unwrap().unwrap(), merged);
}

#[test]
fn a_rotated_key_reencrypts_and_retires() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    for id in ["a", "b", "c"] {
        store.create(&session(id, "u", 1_000)).unwrap();
    }
    let new = store.add_key(&Secret::RawKey(vec![8; 32])).unwrap();
    assert!(matches!(
        store.retire_key(1),
        Err(StoreError::InvalidInput(m)) if m.contains("3 session")
    ));
    assert_eq!(store.rekey(2).unwrap().remaining, 1);
    assert_eq!(store.rekey(10).unwrap().remaining, 0);
    store.retire_key(1).unwrap();
    drop(store);
    assert!(matches!(
        BucketStore::open(bucket.clone(), clock.clone(), config(5)),
        Err(StoreError::WrongKey)
    ));
    let mut reopened = BucketStore::open(bucket.clone(), clock.clone(), config(8)).unwrap();
    assert_eq!(reopened.user_sessions("u").unwrap().len(), 3);
    let keys = reopened.keys().unwrap();
    assert_eq!(keys.iter().find(|k| k.id == new).unwrap().sessions, 3);
}

#[test]
fn a_key_ring_changed_by_another_host_is_not_overwritten() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut a = host(&bucket, &clock);
    let mut b = host(&bucket, &clock);
    a.add_key(&Secret::RawKey(vec![8; 32])).unwrap();
    assert!(matches!(
        b.add_key(&Secret::RawKey(vec![9; 32])),
        Err(StoreError::InvalidInput(m)) if m.contains("another host")
    ));
}

#[test]
fn cleanup_of_a_vanished_record_keeps_the_entry_of_a_create_that_raced_it() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    host(&bucket, &clock)
        .create(&session("s", "u", 200))
        .unwrap();
    // Redis dropped the record at its TTL; only its index entries are left.
    bucket.edit(|m| m.values.remove("s:s"));
    clock.set(300);
    let hook: Rc<RefCell<Box<dyn FnMut()>>> = Rc::new(RefCell::new(Box::new(|| {})));
    let mut interfering = Testing::new(&bucket);
    interfering.before_commit = Rc::clone(&hook);
    let mut a = BucketStore::open(interfering, clock.clone(), config(5)).unwrap();
    // Host b creates the id again just before a's first commit.
    let mut b = host(&bucket, &clock);
    let mut once = true;
    *hook.borrow_mut() = Box::new(move || {
        if std::mem::take(&mut once) {
            b.create(&session("s", "u", 10_000)).unwrap();
        }
    });
    assert_eq!(a.cleanup().unwrap(), 0);
    let score = bucket.edit(|m| m.indexes[layout::EXPIRY].get("s").copied());
    assert_eq!(
        score,
        Some(10_000),
        "the new session keeps its expiry entry"
    );
    assert_eq!(a.count().unwrap(), 1);
    assert_eq!(a.user_sessions("u").unwrap().len(), 1);
}

/// A bucket over a [`MemoryBucket`] that runs `before_commit` before each commit (another
/// host writing just then), and fails, as an unreachable server, every write (commit or
/// set) once `left` more went through and every read of a session record once `reads`
/// more did.
pub(crate) struct Testing {
    inner: MemoryBucket,
    pub(crate) before_commit: Rc<RefCell<Box<dyn FnMut()>>>,
    /// Runs before every read of the ledger alone (not with a record).
    pub(crate) before_ledger: Rc<RefCell<Box<dyn FnMut()>>>,
    /// What every `range` answers instead of the index, when set (a hostile server).
    pub(crate) ranges: Rc<RefCell<Option<Vec<String>>>>,
    left: Rc<std::cell::Cell<u32>>,
    reads: u32,
}

impl Testing {
    /// Over `inner`, failing nothing, interfering with nothing.
    pub(crate) fn new(inner: &MemoryBucket) -> Self {
        Testing {
            inner: inner.clone(),
            before_commit: Rc::new(RefCell::new(Box::new(|| {}))),
            before_ledger: Rc::new(RefCell::new(Box::new(|| {}))),
            ranges: Rc::new(RefCell::new(None)),
            left: Rc::new(std::cell::Cell::new(u32::MAX)),
            reads: u32::MAX,
        }
    }

    /// Fails every write once `left` more went through.
    pub(crate) fn writes(mut self, left: u32) -> Self {
        self.left = Rc::new(std::cell::Cell::new(left));
        self
    }

    /// Fails every read of a session record once `reads` more went through.
    pub(crate) fn reads(mut self, reads: u32) -> Self {
        self.reads = reads;
        self
    }

    fn write(&mut self) -> Result<(), StoreError> {
        match self.left.get() {
            0 => Err(StoreError::unavailable("writing", "connection refused")),
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }
}

impl Bucket for Testing {
    type Cas = MemoryCas;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if key.starts_with("s:") {
            if self.reads == 0 {
                return Err(StoreError::unavailable(
                    "reading a record",
                    "connection refused",
                ));
            }
            self.reads -= 1;
        }
        self.inner.get(key)
    }
    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.inner.get_many(keys)
    }
    fn watch(&mut self, key: &str) -> Result<(MemoryCas, Option<Vec<u8>>), StoreError> {
        self.inner.watch(key)
    }
    fn commit(&mut self, cas: MemoryCas, change: Change) -> Result<bool, StoreError> {
        (self.before_commit.borrow_mut())();
        self.write()?;
        self.inner.commit(cas, change)
    }
    fn ledger(&mut self, after: &str, limit: u32) -> Result<LedgerPage, StoreError> {
        (self.before_ledger.borrow_mut())();
        self.inner.ledger(after, limit)
    }
    fn read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), StoreError> {
        let value = self.get(key)?;
        Ok((value, self.inner.ledger(after, limit)?))
    }
    fn watch_read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<Watched<MemoryCas>, StoreError> {
        self.inner.watch_read(key, after, limit)
    }
    fn trim_ledger(&mut self, before: &str) -> Result<(), StoreError> {
        self.inner.trim_ledger(before)
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write()?;
        self.inner.set(key, value)
    }
    fn delete_many(&mut self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete_many(keys)
    }
    fn list_keys(&mut self, cursor: Option<String>) -> Result<Page, StoreError> {
        self.inner.list_keys(cursor)
    }
    fn add(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        self.inner.add(entries)
    }
    fn remove(&mut self, members: &[Member]) -> Result<(), StoreError> {
        self.inner.remove(members)
    }
    fn range(&mut self, i: &str, min: u64, max: u64, l: u32) -> Result<Vec<String>, StoreError> {
        if let Some(answer) = self.ranges.borrow().clone() {
            return Ok(answer);
        }
        self.inner.range(i, min, max, l)
    }
    fn members_after(&mut self, i: &str, after: &str, l: u32) -> Result<Vec<String>, StoreError> {
        self.inner.members_after(i, after, l)
    }
    fn count(&mut self, index: &str, min: u64, max: u64) -> Result<u64, StoreError> {
        self.inner.count(index, min, max)
    }
}

#[test]
fn clear_marks_live_sessions_and_removes_the_rest_without_quarantine() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    store.create(&session("live", "u", 1_000)).unwrap();
    store.create(&session("old", "u", 150)).unwrap();
    store.create(&session("bad", "u", 1_000)).unwrap();
    bucket.edit(|m| {
        if let Some(last) = m.values.get_mut("s:bad").and_then(|v| v.0.last_mut()) {
            *last ^= 1;
        }
    });
    clock.set(200);
    assert_eq!(store.clear().unwrap(), 3, "live, expired and damaged alike");
    assert_eq!(
        store.check().unwrap().quarantined,
        0,
        "nothing was quarantined"
    );
    assert!(matches!(
        store.set(&session("live", "u", 1_000)),
        Err(StoreError::Removed(_))
    ));
    store.set(&session("old", "u", 1_000)).unwrap();
}

#[test]
fn check_keeps_in_the_id_index_what_another_host_wrote_meanwhile() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    store.create(&session("a", "u", 1_000)).unwrap();
    // What check's listing did not see, written before it re-reads the index.
    let mut other = host(&bucket, &clock);
    other.create(&session("b", "u", 1_000)).unwrap();
    store
        .drop_unbacked(
            layout::IDS,
            &std::collections::BTreeSet::from(["a".to_owned()]),
        )
        .unwrap();
    assert_eq!(store.list_ids(None, 10).unwrap().ids, ["a", "b"]);
}

#[test]
fn an_id_index_fill_cut_short_is_finished_by_the_next_open() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    for id in ["a", "b", "c"] {
        store.create(&session(id, "u", 1_000)).unwrap();
    }
    // As a 0.1.0 bucket whose fill stopped after its first id.
    bucket.edit(|m| {
        if let Some(ids) = m.indexes.get_mut(layout::IDS) {
            ids.retain(|id, _| id == "a");
        }
    });
    let mut reopened = host(&bucket, &clock);
    assert_eq!(reopened.list_ids(None, 10).unwrap().ids, ["a", "b", "c"]);
}

#[test]
fn cleanup_drops_an_expiry_entry_that_came_back_beside_a_marker() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = host(&bucket, &clock);
    store.create(&session("a", "u", 1_000)).unwrap();
    assert!(store.delete("a").unwrap());
    // A re-score racing the removal put the entry back, already due.
    store
        .bucket
        .add(&[Entry {
            index: layout::EXPIRY.into(),
            member: "a".into(),
            score: 50,
        }])
        .unwrap();
    assert_eq!(store.cleanup().unwrap(), 0, "and it returns");
    assert!(matches!(
        store.set(&session("a", "u", 1_000)),
        Err(StoreError::Removed(_))
    ));
}

mod replay;
