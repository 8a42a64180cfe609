//! The ledger alone: frames, gaps and copies, snapshots, a session afresh.

use super::*;

const NAMES: [u8; 32] = [7; 32];

fn page(frames: Vec<Vec<u8>>, last: &str) -> LedgerPage {
    LedgerPage {
        frames,
        last: last.into(),
        max_deleted: START.into(),
        last_generated: last.into(),
    }
}

#[test]
fn a_frame_round_trips_and_any_changed_byte_is_refused() {
    let ledger = Ledger::new(&NAMES, 0).unwrap();
    let bytes = ledger.frame(Event::Written, "abc", 3, 99, 5);
    let frame = ledger.open_frame(&bytes).unwrap();
    assert_eq!((frame.id.as_str(), frame.version, frame.seq), ("abc", 3, 1));
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        assert_eq!(ledger.open_frame(&bad), None, "byte {i}");
    }
    assert_eq!(ledger.open_frame(&bytes[..bytes.len() - 1]), None);
    let other = Ledger::new(&[8; 32], 0).unwrap();
    assert_eq!(other.open_frame(&bytes), None, "another store's key");
}

#[test]
fn an_older_version_and_a_removed_one_are_refused() {
    let mut writer = Ledger::new(&NAMES, 0).unwrap();
    let mut frames = Vec::new();
    for (event, version) in [
        (Event::Written, 1),
        (Event::Written, 2),
        (Event::Removed, 3),
    ] {
        frames.push(writer.frame(event, "s", version, 1000, 0));
        writer.committed();
    }
    let mut reader = Ledger::new(&NAMES, 0).unwrap();
    reader.ingest(page(frames[..2].to_vec(), "1-2"), 0);
    assert!(reader.admits("s", 1, 0).is_err());
    assert_eq!(reader.admits("s", 2, 0), Ok(()));
    assert_eq!(
        reader.admits("s", 3, 0),
        Ok(()),
        "newer than known: a frame not read yet"
    );
    reader.ingest(page(frames[2..].to_vec(), "1-3"), 0);
    assert!(reader.admits("s", 2, 0).is_err());
    assert!(reader.admits("s", 3, 0).is_err(), "removed at 3");
    assert_eq!(reader.next_version("s", 1), 4);
    assert_eq!(
        reader.admits("s", 1, 1000),
        Ok(()),
        "every record of the versions it knows expired by 1000: a new one is no replay"
    );
    assert_eq!(reader.damage(), 0);
    assert_eq!(reader.cursor(), "1-3");
}

#[test]
fn a_frame_taken_out_or_seen_twice_is_damage() {
    let mut writer = Ledger::new(&NAMES, 0).unwrap();
    let mut frames = Vec::new();
    for version in 1..=3 {
        frames.push(writer.frame(Event::Written, "s", version, 1000, 0));
        writer.committed();
    }
    let mut reader = Ledger::new(&NAMES, 0).unwrap();
    reader.ingest(page(vec![frames[0].clone(), frames[2].clone()], "1-3"), 0);
    assert_eq!(reader.damage(), 1, "the second frame is missing");
    reader.ingest(page(vec![frames[0].clone()], "1-4"), 0);
    assert_eq!(reader.damage(), 2, "a copy");
    assert!(
        reader.admits("s", 2, 0).is_err(),
        "the copy moved nothing back"
    );
    let mut late = Ledger::new(&NAMES, 0).unwrap();
    late.ingest(page(vec![frames[1].clone()], "1-2"), 0);
    assert_eq!(late.damage(), 1, "a writer's first frame is its first");
    late.ingest(page(vec![b"junk".to_vec()], "1-5"), 0);
    assert_eq!(late.damage(), 2);
}

#[test]
fn a_snapshot_carries_versions_writers_and_cursor() {
    let mut writer = Ledger::new(&NAMES, 0).unwrap();
    let first = writer.frame(Event::Written, "a", 5, 1000, 0);
    writer.committed();
    let second = writer.frame(Event::Removed, "b", 2, 1000, 0);
    writer.committed();
    let third = writer.frame(Event::Written, "c", 1, 10, 0);
    writer.committed();
    let mut reader = Ledger::new(&NAMES, 0).unwrap();
    reader.ingest(page(vec![first, second, third], "9-1"), 0);
    let snapshot = reader.snapshot(20);
    assert_eq!(reader.snapshot_cursor(&snapshot).as_deref(), Some("9-1"));
    let mut opened = Ledger::new(&NAMES, 0).unwrap();
    opened.load(&snapshot, 0).unwrap();
    assert_eq!(opened.cursor(), "9-1");
    assert!(opened.admits("a", 4, 0).is_err());
    assert!(opened.admits("b", 2, 0).is_err());
    assert_eq!(opened.admits("c", 0, 0), Ok(()), "expired by 20: forgotten");
    let next = writer.frame(Event::Written, "a", 6, 1000, 0);
    opened.ingest(page(vec![next], "9-2"), 0);
    assert_eq!(opened.damage(), 0, "the writer's sequence goes on");
    let mut bad = snapshot.clone();
    bad[10] ^= 1;
    let mut refused = Ledger::new(&NAMES, 0).unwrap();
    assert!(matches!(
        refused.load(&bad, 0),
        Err(StoreError::Corrupted(_))
    ));
}

#[test]
fn an_id_created_again_after_every_record_expired_starts_afresh() {
    let old = Ledger::new(&NAMES, 0).unwrap();
    let removal = old.frame(Event::Removed, "s", 5, 100, 50);
    let mut forgot = Ledger::new(&NAMES, 0).unwrap();
    let again = forgot.frame(Event::Written, "s", 1, 900, 200);
    forgot.committed();
    let update = forgot.frame(Event::Written, "s", 2, 900, 300);
    let mut reader = Ledger::new(&NAMES, 0).unwrap();
    reader.ingest(page(vec![removal, again, update], "1-3"), 0);
    assert_eq!(reader.admits("s", 2, 400), Ok(()));
    assert!(reader.admits("s", 1, 400).is_err());
    assert_eq!(reader.damage(), 0);
}

#[test]
fn an_old_frame_of_a_writer_no_one_knows_is_not_obeyed() {
    let writer = Ledger::new(&NAMES, 0).unwrap();
    let old = writer.frame(Event::Removed, "s", 9, u64::MAX, 0);
    let mut reader = Ledger::new(&NAMES, 0).unwrap();
    reader.ingest(page(vec![old.clone()], "1-1"), FORGET_WRITER_MS);
    assert_eq!(reader.admits("s", 1, FORGET_WRITER_MS), Ok(()));
    assert_eq!(reader.damage(), 1);
    // Within the time a snapshot keeps writers, it is a writer's first frame.
    reader.ingest(page(vec![old], "1-2"), FORGET_WRITER_MS - 1);
    assert!(reader.admits("s", 1, FORGET_WRITER_MS).is_err());
}

#[test]
fn stream_ids_order_as_redis_orders_them() {
    assert!(stream_id("10-0") > stream_id("9-5"));
    assert!(stream_id("9-5") > stream_id("9-4"));
    assert_eq!(stream_id("junk"), (0, 0));
    assert_eq!(stream_id(START), (0, 0));
}
