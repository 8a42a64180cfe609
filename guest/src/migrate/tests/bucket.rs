//! Moving a store between a directory and a bucket: every stage cut short, refusals
//! before the fence, reads on a fenced bucket.

use super::*;
use crate::migrate::bucket as moving;
use std::cell::RefCell;
use std::rc::Rc;

type Local = crate::directory_store::DirectoryStore<
    crate::directory_store::directory_backend::DirectoryBackend<crate::fs::StdDir>,
    ManualClock,
>;

/// A `log` store in `dir` holding a1, a2 (alice), b1 (bob, touched twice) and an
/// expired one.
fn directory_store(dir: &std::path::Path, clock: &ManualClock) -> Local {
    let backend = crate::directory_store::directory_backend::DirectoryBackend::open(
        crate::fs::StdDir::new(dir),
        Some(BackendKind::Log),
        crate::backend::Durability::Durable,
    )
    .unwrap();
    let mut local =
        crate::directory_store::DirectoryStore::open(backend, clock.clone(), config(5)).unwrap();
    for (id, user) in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")] {
        local.create(&session(id, user, 10_000)).unwrap();
    }
    local.create(&session("gone", "bob", 150)).unwrap();
    local.touch("b1", None).unwrap();
    local.touch("b1", None).unwrap();
    clock.set(200);
    local
}

fn reopen_directory(dir: &std::path::Path, clock: &ManualClock) -> Result<Local, StoreError> {
    let backend = crate::directory_store::directory_backend::DirectoryBackend::open(
        crate::fs::StdDir::new(dir),
        None,
        crate::backend::Durability::Durable,
    )?;
    crate::directory_store::DirectoryStore::open(backend, clock.clone(), config(5))
}

fn assert_moved(store: &mut BucketStore<impl Bucket, ManualClock>) {
    assert_eq!(store.count().unwrap(), 3);
    let alice: Vec<String> = (store.user_sessions("alice").unwrap().into_iter())
        .map(|s| s.id().to_owned())
        .collect();
    assert_eq!(alice, ["a1", "a2"]);
    let b1 = store.get("b1").unwrap().unwrap();
    assert_eq!(b1.access().unwrap().1, 2, "the touches moved with it");
    assert_eq!(store.get("gone").unwrap(), None);
}

#[test]
fn a_directory_store_moves_into_a_bucket_with_every_live_session() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut local = directory_store(tmp.path(), &clock);
    let (moved, mut shared) =
        moving::move_into(&mut local, bucket.clone(), clock.clone(), config(5)).unwrap();
    drop(local);
    assert_eq!(moved, 3);
    assert_moved(&mut shared);
    // The directory keeps only metadata that names redis, and never opens as a store.
    assert_eq!(crate::fs::names(tmp.path()), ["session-vault.json"]);
    assert!(matches!(
        reopen_directory(tmp.path(), &clock),
        Err(StoreError::InvalidInput(m)) if m.contains("key-value bucket")
    ));
    // Every host opens the bucket; the directory with the bucket opens it too.
    assert_moved(&mut host(&bucket, &clock));
    let dir = crate::fs::StdDir::new(tmp.path());
    let mut again = moving::finish(&dir, || Ok(bucket.clone()), clock.clone(), config(5))
        .unwrap()
        .unwrap();
    assert_moved(&mut again);
    // A wrong secret is told apart, and acts on nothing.
    assert!(matches!(
        moving::finish(&dir, || Ok(bucket.clone()), clock.clone(), config(6)),
        Err(StoreError::WrongKey)
    ));
}

#[test]
fn a_move_cut_short_during_the_copy_leaves_the_directory_store_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut local = directory_store(tmp.path(), &clock);
    // The metadata, the names key and one session go through; the second session fails.
    let failing = Testing::new(&bucket).writes(3);
    let cut = moving::move_into(&mut local, failing, clock.clone(), config(5));
    assert!(matches!(cut, Err(StoreError::Unavailable { .. })));
    drop(local);
    // No host opens the half-filled bucket; the directory store is as it was.
    assert!(matches!(
        BucketStore::open(bucket.clone(), clock.clone(), config(5)),
        Err(StoreError::InvalidInput(m)) if m.contains("did not finish")
    ));
    let mut local = reopen_directory(tmp.path(), &clock).unwrap();
    assert_eq!(local.count(), 3);
    // Run again: the partial copy is started over, and nothing is carried twice.
    let (moved, mut shared) =
        moving::move_into(&mut local, bucket.clone(), clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 3);
    assert_moved(&mut shared);
    let records = bucket.edit(|m| m.values.keys().filter(|k| k.starts_with("s:")).count());
    assert_eq!(records, 3);
}

#[test]
fn a_move_cut_short_after_the_hand_over_is_finished_by_opening_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut local = directory_store(tmp.path(), &clock);
    // Everything but the commit that opens the bucket to every host goes through (the
    // metadata, the names key, the ledger's first snapshot, the metadata saying so, 3
    // sessions).
    let failing = Testing::new(&bucket).writes(4 + 3);
    let cut = moving::move_into(&mut local, failing, clock.clone(), config(5));
    assert!(matches!(cut, Err(StoreError::Unavailable { .. })));
    drop(local);
    // Neither side opens as it is: the directory was handed over, the bucket not finished.
    assert!(reopen_directory(tmp.path(), &clock).is_err());
    assert!(BucketStore::open(bucket.clone(), clock.clone(), config(5)).is_err());
    // Opening the directory with the bucket finishes the move.
    let dir = crate::fs::StdDir::new(tmp.path());
    let mut finished = moving::finish(&dir, || Ok(bucket.clone()), clock.clone(), config(5))
        .unwrap()
        .unwrap();
    assert_moved(&mut finished);
    assert_eq!(crate::fs::names(tmp.path()), ["session-vault.json"]);
    assert_moved(&mut host(&bucket, &clock));
}

#[test]
fn a_move_into_a_bucket_holding_another_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    host(&bucket, &clock)
        .create(&session("other", "u", 10_000))
        .unwrap();
    let mut local = directory_store(tmp.path(), &clock);
    let refused = moving::move_into(&mut local, bucket.clone(), clock.clone(), config(5));
    assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("already holds")));
    assert_eq!(
        host(&bucket, &clock).count().unwrap(),
        1,
        "nothing was cleared"
    );
    drop(local);
    assert_eq!(reopen_directory(tmp.path(), &clock).unwrap().count(), 3);
}

fn empty_directory(
    dir: &std::path::Path,
    kind: BackendKind,
) -> crate::directory_store::directory_backend::DirectoryBackend<crate::fs::StdDir> {
    crate::directory_store::directory_backend::DirectoryBackend::open(
        crate::fs::StdDir::new(dir),
        Some(kind),
        crate::backend::Durability::Durable,
    )
    .unwrap()
}

/// A bucket store holding a1, a2 (alice), b1 (bob, touched twice) and an expired one.
fn bucket_store(bucket: &MemoryBucket, clock: &ManualClock) -> Host {
    let mut store = host(bucket, clock);
    for (id, user) in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")] {
        store.create(&session(id, user, 10_000)).unwrap();
    }
    store.create(&session("gone", "bob", 150)).unwrap();
    store.touch("b1", None).unwrap();
    store.touch("b1", None).unwrap();
    clock.set(200);
    store
}

fn assert_moved_out(local: &mut Local) {
    assert_eq!(local.count(), 3);
    let alice: Vec<String> = (local.user_sessions("alice").unwrap().into_iter())
        .map(|s| s.id().to_owned())
        .collect();
    assert_eq!(alice, ["a1", "a2"]);
    assert_eq!(local.get("b1").unwrap().unwrap().access().unwrap().1, 2);
    assert_eq!(local.get("gone").unwrap(), None);
}

#[test]
fn a_bucket_store_moves_out_to_a_directory_and_fences_every_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = bucket_store(&bucket, &clock);
    let mut other = host(&bucket, &clock);
    let backend = empty_directory(tmp.path(), BackendKind::Log);
    let (moved, mut local) =
        moving::move_out(&mut store, backend, clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 3);
    assert_moved_out(&mut local);
    drop(local);
    assert_moved_out(&mut reopen_directory(tmp.path(), &clock).unwrap());
    // A host that had the bucket open cannot write to it any more; nothing is left to read.
    assert!(matches!(
        other.create(&session("late", "u", 10_000)),
        Err(StoreError::InvalidInput(m)) if m.contains("moved")
    ));
    assert_eq!(other.get("a1").unwrap(), None);
    // Only the metadata naming the directory backend and the fence are left, and the
    // bucket does not open.
    let left: Vec<String> = bucket.edit(|m| m.values.keys().cloned().collect());
    assert_eq!(left, [layout::META, layout::FENCE]);
    assert!(bucket.edit(|m| m.indexes.is_empty()));
    assert!(matches!(
        BucketStore::open(bucket.clone(), clock.clone(), config(5)),
        Err(StoreError::InvalidInput(m)) if m.contains("log backend")
    ));
}

#[test]
fn a_move_out_cut_short_is_run_again_over_its_partial_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    drop(bucket_store(&bucket, &clock));
    // The server goes away after the fence and the copy, before the bucket is handed over.
    let backend = empty_directory(tmp.path(), BackendKind::Files);
    let failing = Testing::new(&bucket).writes(2);
    let mut cut = BucketStore::open(failing, clock.clone(), config(5)).unwrap();
    let outcome = moving::move_out(&mut cut, backend, clock.clone(), config(5)).map(drop);
    assert!(matches!(outcome, Err(StoreError::Unavailable { .. })));
    // The bucket still opens (fenced: it reads, refuses writes) so the move can run again.
    let mut store = host(&bucket, &clock);
    assert_eq!(store.count().unwrap(), 3);
    assert!(store.create(&session("late", "u", 10_000)).is_err());
    let backend = empty_directory(tmp.path(), BackendKind::Files);
    let (moved, mut local) =
        moving::move_out(&mut store, backend, clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 3);
    assert_moved_out(&mut local);
    // A directory holding another store is refused, and nothing there changes.
    let other_dir = tempfile::tempdir().unwrap();
    let mut stranger = directory_store(other_dir.path(), &clock);
    stranger.delete("a1").unwrap();
    drop(stranger);
    let bucket2 = MemoryBucket::new();
    let mut store2 = bucket_store(&bucket2, &clock);
    let backend = empty_directory(other_dir.path(), BackendKind::Log);
    let refused = moving::move_out(&mut store2, backend, clock.clone(), config(5));
    assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("another store")));
    assert_eq!(
        reopen_directory(other_dir.path(), &clock).unwrap().count(),
        2
    );
}

#[test]
fn a_move_out_cut_short_during_the_copy_leaves_a_directory_that_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    drop(bucket_store(&bucket, &clock));
    let failing = Testing::new(&bucket).reads(1);
    let mut cut = BucketStore::open(failing, clock.clone(), config(5)).unwrap();
    let backend = empty_directory(tmp.path(), BackendKind::Log);
    let outcome = moving::move_out(&mut cut, backend, clock.clone(), config(5)).map(drop);
    assert!(matches!(outcome, Err(StoreError::Unavailable { .. })));
    // Half a store is not served: the directory refuses until the move is run again.
    assert!(matches!(
        reopen_directory(tmp.path(), &clock),
        Err(StoreError::InvalidInput(m)) if m.contains("not complete")
    ));
    let mut store = host(&bucket, &clock);
    let backend = empty_directory(tmp.path(), BackendKind::Log);
    let (moved, mut local) =
        moving::move_out(&mut store, backend, clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 3);
    assert_moved_out(&mut local);
    drop(local);
    assert_moved_out(&mut reopen_directory(tmp.path(), &clock).unwrap());
}

#[test]
fn a_wrong_directory_is_refused_before_the_bucket_is_fenced() {
    let other_dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(100);
    drop(directory_store(other_dir.path(), &clock));
    let bucket = MemoryBucket::new();
    let mut store = bucket_store(&bucket, &clock);
    let backend = empty_directory(other_dir.path(), BackendKind::Log);
    let refused = moving::move_out(&mut store, backend, clock.clone(), config(5));
    assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("another store")));
    // Not fenced: every host still writes.
    host(&bucket, &clock)
        .create(&session("still", "u", 10_000))
        .unwrap();
}

#[test]
fn a_store_moves_into_a_bucket_and_back_to_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut local = directory_store(tmp.path(), &clock);
    let (_, mut shared) =
        moving::move_into(&mut local, bucket.clone(), clock.clone(), config(5)).unwrap();
    drop(local);
    let backend = empty_directory(tmp.path(), BackendKind::Files);
    let (moved, mut back) =
        moving::move_out(&mut shared, backend, clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 3);
    assert_moved_out(&mut back);
    drop(back);
    // Not into the bucket it left (hosts may still hold its old key ring there), but
    // into another one.
    let mut local = reopen_directory(tmp.path(), &clock).unwrap();
    let refused = moving::move_into(&mut local, bucket.clone(), clock.clone(), config(5));
    assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("another --prefix")));
    let fresh = MemoryBucket::new();
    let (moved, mut shared) =
        moving::move_into(&mut local, fresh.clone(), clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 3);
    assert_moved(&mut shared);
    assert_moved(&mut host(&fresh, &clock));
}

#[test]
fn a_move_out_refuses_what_would_strand_it_before_fencing_and_keeps_damage_aside() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = bucket_store(&bucket, &clock);
    // A folder of something else is no place for the store; nothing is fenced.
    let busy = tempfile::tempdir().unwrap();
    std::fs::write(busy.path().join("app.conf"), "x").unwrap();
    let refused = moving::move_out(
        &mut store,
        empty_directory(busy.path(), BackendKind::Log),
        clock.clone(),
        config(5),
    );
    assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("not empty")));
    // A record under a key the ring lacks (an old copy under a retired key) is refused
    // before the fence too: `key add` still works after.
    let old = bucket.edit(|m| m.values["s:a1"].clone());
    store.add_key(&Secret::RawKey(vec![8; 32])).unwrap();
    store.rekey(100).unwrap();
    store.retire_key(1).unwrap();
    bucket.edit(|m| m.values.insert("s:a1".into(), old));
    let config8 = || Config::new(Secret::RawKey(vec![8; 32]));
    let mut store = BucketStore::open(bucket.clone(), clock.clone(), config8()).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let refused = moving::move_out(
        &mut store,
        empty_directory(empty.path(), BackendKind::Log),
        clock.clone(),
        config8(),
    );
    assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("lacks")));
    assert!(bucket.edit(|m| !m.values.contains_key(layout::FENCE)));
    // A damaged record goes to the quarantine, which the hand-over leaves.
    bucket.edit(|m| {
        let record = &mut m.values.get_mut("s:a1").unwrap().0;
        *record = b"damaged".to_vec();
    });
    let (moved, local) = moving::move_out(
        &mut store,
        empty_directory(empty.path(), BackendKind::Log),
        clock.clone(),
        config8(),
    )
    .unwrap();
    assert_eq!(moved, 2);
    assert_eq!(local.count(), 2);
    assert_eq!(
        bucket.edit(|m| m.values.get("q:a1").map(|v| v.0.clone())),
        Some(b"damaged".to_vec())
    );
}

#[test]
fn a_fenced_bucket_still_reads() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut store = bucket_store(&bucket, &clock);
    bucket.edit(|m| {
        m.values
            .insert(layout::FENCE.into(), (b"log".to_vec(), None))
    });
    // An expired record, a stale index entry: met by reads, left where they are.
    assert_eq!(store.get("gone").unwrap(), None);
    bucket.edit(|m| m.values.remove("s:a2"));
    assert_eq!(store.user_sessions("alice").unwrap().len(), 1);
    // Writes are refused, cleanup's removals included.
    for refused in [store.touch("a1", None).map(drop), store.cleanup().map(drop)] {
        assert!(matches!(refused, Err(StoreError::InvalidInput(m)) if m.contains("moved")));
    }
}

#[test]
fn a_session_written_just_before_the_fence_is_carried() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    drop(bucket_store(&bucket, &clock));
    let hook: Rc<RefCell<Box<dyn FnMut()>>> = Rc::new(RefCell::new(Box::new(|| {})));
    let mut watched = Testing::new(&bucket);
    watched.before_commit = Rc::clone(&hook);
    let mut store = BucketStore::open(watched, clock.clone(), config(5)).unwrap();
    // Another host creates a session just as the fence goes up.
    let mut other = host(&bucket, &clock);
    let mut once = true;
    *hook.borrow_mut() = Box::new(move || {
        if std::mem::take(&mut once) {
            other.create(&session("late", "carol", 10_000)).unwrap();
        }
    });
    let backend = empty_directory(tmp.path(), BackendKind::Log);
    let (moved, mut local) =
        moving::move_out(&mut store, backend, clock.clone(), config(5)).unwrap();
    assert_eq!(moved, 4);
    assert!(local.get("late").unwrap().is_some());
}
