//! The version ledger in a bucket: a record put back (a rolled-back version, or a
//! removed session) is refused, quarantined and counted by `check`, by the host that
//! wrote the newer version and by any other, also one that opens later.

use super::*;

/// The bytes the bucket holds for session `id`.
fn record(bucket: &MemoryBucket, id: &str) -> Vec<u8> {
    bucket.edit(|m| m.values[&layout::session(id)].0.clone())
}

/// Puts `bytes` back as session `id`'s record, as `RESTORE` of an earlier `DUMP` does.
fn put_back(bucket: &MemoryBucket, id: &str, bytes: &[u8]) {
    bucket.edit(|m| {
        m.values
            .insert(layout::session(id), (bytes.to_vec(), Some(10_000)));
    });
}

fn refused(result: Result<Option<Session>, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupted(m)) if m.contains("put back"))
}

#[test]
fn an_older_version_put_back_is_refused_by_every_host() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    let mut reader = host(&bucket, &clock);
    writer.create(&session("s", "u", 10_000)).unwrap();
    let first = record(&bucket, "s");
    writer.update("s", bump(7)).unwrap();
    // The reader read nothing since: the ledger comes with the record it reads.
    put_back(&bucket, "s", &first);
    assert!(refused(reader.get("s")));
    assert!(bucket.edit(|m| m.values.contains_key("q:s")));
    put_back(&bucket, "s", &first);
    assert!(refused(writer.get("s")));
    put_back(&bucket, "s", &first);
    // A host opened now reads the whole ledger at open.
    let mut late = host(&bucket, &clock);
    let report = late.check().unwrap();
    assert_eq!(report.newly_quarantined, ["s"]);
    assert_eq!(report.live, 0);
    assert_eq!(late.get("s").unwrap(), None);
}

#[test]
fn a_removed_session_put_back_is_refused_and_its_id_can_be_created_again() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut a = host(&bucket, &clock);
    let mut b = host(&bucket, &clock);
    a.create(&session("s", "u", 10_000)).unwrap();
    let saved = record(&bucket, "s");
    assert!(a.delete("s").unwrap());
    put_back(&bucket, "s", &saved);
    assert!(refused(b.get("s")));
    put_back(&bucket, "s", &saved);
    assert!(matches!(
        b.update("s", bump(1)),
        Err(StoreError::Corrupted(m)) if m.contains("removed")
    ));
    // Revoked sessions too.
    a.create(&session("t", "v", 10_000)).unwrap();
    let saved = record(&bucket, "t");
    assert_eq!(a.revoke_user("v").unwrap(), 1);
    put_back(&bucket, "t", &saved);
    assert!(refused(b.get("t")));
    assert_eq!(b.user_sessions("v").unwrap(), []);
    // After its expiry, the id is free: a new session takes a version above the removal.
    clock.set(20_000);
    b.create(&session("s", "u", 30_000)).unwrap();
    assert_eq!(a.get("s").unwrap().unwrap().id(), "s");
    assert_eq!(a.check().unwrap().live, 1);
}

#[test]
fn the_ledger_survives_snapshots_and_trims() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    let mut idle = host(&bucket, &clock);
    writer.create(&session("s", "u", 100_000)).unwrap();
    let first = record(&bucket, "s");
    writer.update("s", bump(1)).unwrap();
    // Each cleanup removes 1,100 expired sessions, then snapshots, and trims the stream
    // up to the snapshot before (so a host that keeps reading never reads a snapshot).
    for round in 0..2_u64 {
        let expiry = 200 + round * 1_000;
        for i in 0..1_100 {
            let id = format!("n{round}x{i}");
            writer.create(&session(&id, "u", expiry)).unwrap();
        }
        clock.set(expiry + 100);
        assert_eq!(writer.cleanup().unwrap(), 1_100);
    }
    let (frames, trimmed) = bucket.edit(|m| (m.ledger.len(), m.ledger_deleted));
    assert!(
        frames < 1_200 && trimmed > 1_000,
        "{frames} frames, trimmed to {trimmed}"
    );
    put_back(&bucket, "s", &first);
    // The idle host's cursor was trimmed past: it reads the snapshot.
    assert!(refused(idle.get("s")));
    put_back(&bucket, "s", &first);
    let mut late = host(&bucket, &clock);
    assert!(refused(late.get("s")));
    assert_eq!(
        late.check().unwrap().quarantined,
        1,
        "the record, and no ledger damage"
    );
    assert_eq!(idle.ledger.damage(), 0);
}

#[test]
fn a_frame_taken_out_is_counted_by_check() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    for version in 0..3 {
        writer
            .create(&session(&format!("s{version}"), "u", 10_000))
            .unwrap();
    }
    bucket.edit(|m| m.ledger.remove(1));
    let mut reader = host(&bucket, &clock);
    assert_eq!(reader.check().unwrap().quarantined, 1);
    assert_eq!(reader.ledger.damage(), 1);
    // A forged frame is refused the same way.
    bucket.edit(|m| {
        m.ledger_last += 1;
        let id = m.ledger_last;
        m.ledger.push((id, b"SVLF forged".to_vec()));
    });
    assert_eq!(reader.check().unwrap().quarantined, 2);
}

#[test]
fn a_deleted_snapshot_refuses_the_store() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    host(&bucket, &clock)
        .create(&session("s", "u", 10_000))
        .unwrap();
    bucket.edit(|m| m.values.remove(layout::SNAPSHOT));
    assert!(matches!(
        BucketStore::open(bucket.clone(), clock.clone(), config(5)),
        Err(StoreError::Corrupted(m)) if m.contains("snapshot")
    ));
}

#[test]
fn a_store_from_before_the_ledger_gets_one_at_open() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut old = host(&bucket, &clock);
    old.create(&session("s", "u", 10_000)).unwrap();
    // As a 0.2.0 host left it: metadata without the ledger, no snapshot, no stream.
    let mut meta = old.meta.clone();
    meta.ledger = None;
    old.write_meta(meta).unwrap();
    bucket.edit(|m| {
        m.values.remove(layout::SNAPSHOT);
        m.ledger.clear();
        (m.ledger_last, m.ledger_deleted) = (0, 0);
    });
    let mut upgraded = host(&bucket, &clock);
    assert_eq!(upgraded.meta.ledger, Some(1));
    assert!(upgraded.get("s").unwrap().is_some());
    let first = record(&bucket, "s");
    upgraded.update("s", bump(2)).unwrap();
    put_back(&bucket, "s", &first);
    assert!(refused(host(&bucket, &clock).get("s")));
    // That metadata put back again, and the snapshot deleted: the stream gives it away.
    let mut meta = upgraded.meta.clone();
    meta.ledger = None;
    upgraded.write_meta(meta).unwrap();
    bucket.edit(|m| m.values.remove(layout::SNAPSHOT));
    assert!(matches!(
        BucketStore::open(bucket.clone(), clock.clone(), config(5)),
        Err(StoreError::Corrupted(m)) if m.contains("older metadata")
    ));
}

/// The documented limit: the newest frame of a writer that writes no more, taken out
/// with its record put back, cannot be told from a store where that write never
/// happened; the next frame of a writer that goes on shows the gap.
#[test]
fn the_newest_frames_of_a_writer_that_stopped_are_the_limit() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    writer.create(&session("s", "u", 10_000)).unwrap();
    let first = record(&bucket, "s");
    writer.update("s", bump(3)).unwrap();
    drop(writer);
    bucket.edit(|m| m.ledger.pop());
    put_back(&bucket, "s", &first);
    let mut late = host(&bucket, &clock);
    assert_eq!(late.get("s").unwrap().unwrap().access().unwrap().1, 0);
    assert_eq!(late.check().unwrap().quarantined, 0);
}

#[test]
fn every_kind_of_write_leaves_the_ledger_whole() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut a = host(&bucket, &clock);
    a.create(&session("s", "u", 10_000)).unwrap();
    a.touch("s", Some(20_000)).unwrap();
    a.update("s", bump(4)).unwrap();
    a.set(&session("t", "u", 10_000)).unwrap();
    assert!(a.delete("s").unwrap());
    a.create(&session("r", "v", 10_000)).unwrap();
    assert_eq!(a.revoke_user("v").unwrap(), 1);
    assert_eq!(a.clear().unwrap(), 1);
    let report = host(&bucket, &clock).check().unwrap();
    assert_eq!(report.quarantined, 0, "{report:?}");
}

/// Expires 1,100 sessions and runs cleanup, twice: the ledger gets a snapshot and its
/// stream is trimmed.
fn snapshot_and_trim(host: &mut Host, clock: &ManualClock) {
    for round in 0..2_u64 {
        let expiry = clock.now() + 100;
        for i in 0..1_100 {
            let id = format!("f{}x{round}x{i}", clock.now());
            host.create(&session(&id, "u", expiry)).unwrap();
        }
        clock.set(expiry + 1);
        host.cleanup().unwrap();
    }
    assert!(bucket_trimmed(host));
}

fn bucket_trimmed(host: &Host) -> bool {
    host.bucket.edit(|m| m.ledger_deleted > 0)
}

#[test]
fn a_stream_made_again_is_read_again_from_its_start() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    let mut reader = host(&bucket, &clock);
    writer.create(&session("s", "u", 10_000)).unwrap();
    let first = record(&bucket, "s");
    // A junk entry far in the future moves every reader's cursor there...
    bucket.edit(|m| {
        m.ledger_last = 1 << 40;
        let id = m.ledger_last;
        m.ledger.push((id, b"junk".to_vec()));
    });
    assert_eq!(reader.get("s").unwrap().unwrap().id(), "s");
    // ...then the stream is deleted and made again: its ids start low.
    bucket.edit(|m| {
        m.ledger.clear();
        (m.ledger_last, m.ledger_deleted) = (0, 0);
    });
    writer.update("s", bump(2)).unwrap();
    put_back(&bucket, "s", &first);
    assert!(refused(reader.get("s")));
    assert!(reader.ledger.damage() >= 2, "the junk and the reset");
}

#[test]
fn a_record_that_does_not_open_is_removed_with_a_frame() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut a = host(&bucket, &clock);
    let mut b = host(&bucket, &clock);
    for id in ["d", "c"] {
        a.create(&session(id, "u", 10_000)).unwrap();
        let live = record(&bucket, id);
        put_back(&bucket, id, b"junk that hides the live record");
        match id {
            // The logout finds junk: it still removes the id for good.
            "d" => assert!(a.delete(id).unwrap()),
            _ => assert_eq!(a.clear().unwrap(), 1),
        }
        put_back(&bucket, id, &live);
        assert!(refused(b.get(id)), "{id}");
    }
}

#[test]
fn an_older_snapshot_put_back_refuses_the_store() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    let empty = bucket.edit(|m| m.values[layout::SNAPSHOT].0.clone());
    snapshot_and_trim(&mut writer, &clock);
    bucket.edit(|m| {
        m.values
            .insert(layout::SNAPSHOT.to_owned(), (empty.clone(), None));
    });
    assert!(matches!(
        BucketStore::open(bucket.clone(), clock.clone(), config(5)),
        Err(StoreError::Corrupted(m)) if m.contains("older than the frames")
    ));
}

#[test]
fn an_id_created_again_after_it_expired_is_not_held_against_it() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut remembers = host(&bucket, &clock);
    remembers.create(&session("s", "u", 150)).unwrap();
    remembers.update("s", bump(1)).unwrap();
    let mut cleaner = host(&bucket, &clock);
    snapshot_and_trim(&mut cleaner, &clock);
    // A host that opens now never heard of `s`: it creates it at version 1.
    let mut fresh = host(&bucket, &clock);
    fresh
        .create(&session("s", "u", clock.now() + 10_000))
        .unwrap();
    assert_eq!(remembers.get("s").unwrap().unwrap().id(), "s");
    assert_eq!(remembers.check().unwrap().quarantined, 0);
}

#[test]
fn a_store_whose_cleanup_never_runs_still_gets_snapshots() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut writer = host(&bucket, &clock);
    writer.create(&session("s", "u", 100_000)).unwrap();
    for count in 0..10_000 {
        writer.update("s", bump(count)).unwrap();
    }
    let frames = bucket.edit(|m| m.ledger.len());
    assert!(frames <= 8 * 1024, "{frames} frames in the stream");
    assert!(bucket_trimmed(&writer));
    let mut late = host(&bucket, &clock);
    assert_eq!(late.get("s").unwrap().unwrap().access().unwrap().1, 9_999);
}

/// A host far behind the ledger reads a record, then the frames after it, among them the
/// frame of a write made in between: the record it read is older than the ledger says,
/// but it was not put back. It reads the record again rather than refuse it.
#[test]
fn a_record_rewritten_while_the_ledger_is_read_is_read_again_not_refused() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut other = host(&bucket, &clock);
    other.create(&session("s", "u", 10_000)).unwrap();
    let testing = Testing::new(&bucket);
    let hook = testing.before_ledger.clone();
    let mut behind = BucketStore::open(testing, clock.clone(), config(5)).unwrap();
    for i in 0..1_100 {
        other
            .create(&session(&format!("x{i}"), "u", 10_000))
            .unwrap();
    }
    let other = Rc::new(RefCell::new(other));
    let writer = other.clone();
    let mut once = true;
    *hook.borrow_mut() = Box::new(move || {
        if std::mem::take(&mut once) {
            writer.borrow_mut().update("s", bump(5)).unwrap();
        }
    });
    let read = behind.get("s").unwrap().unwrap();
    assert_eq!(read.access().unwrap().1, 5);
    assert_eq!(behind.check().unwrap().quarantined, 0);
}

/// Many hosts reading the same frames take one snapshot an interval between them, not
/// one each.
#[test]
fn hosts_take_turns_at_the_snapshot() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let mut hosts: Vec<Host> = (0..3).map(|_| host(&bucket, &clock)).collect();
    let snapshots = Rc::new(std::cell::Cell::new(0));
    let mut last = bucket.edit(|m| m.values[layout::SNAPSHOT].0.clone());
    for i in 0..6_000 {
        let host = &mut hosts[i % 3];
        host.create(&session(&format!("n{i}"), "u", 10_000))
            .unwrap();
        let now = bucket.edit(|m| m.values[layout::SNAPSHOT].0.clone());
        if now != last {
            snapshots.set(snapshots.get() + 1);
            last = now;
        }
    }
    // One when the first host's reading reaches twice the interval (2,048 frames); the
    // two others, a frame later, see it and take none of their own.
    assert_eq!(snapshots.get(), 1, "snapshots for 6,000 frames");
}

/// A server that keeps listing an expiry entry however often it is removed (a hostile
/// one) ends cleanup with an error instead of a loop.
#[test]
fn cleanup_ends_when_the_server_never_drops_an_entry() {
    let (bucket, clock) = (MemoryBucket::new(), ManualClock::new(100));
    let testing = Testing::new(&bucket);
    let ranges = testing.ranges.clone();
    let mut store = BucketStore::open(testing, clock.clone(), config(5)).unwrap();
    store.create(&session("s", "u", 150)).unwrap();
    clock.set(200);
    *ranges.borrow_mut() = Some(vec!["s".to_owned()]);
    assert!(matches!(
        store.cleanup(),
        Err(StoreError::Unavailable { .. })
    ));
}
