//! Cases of damaged session files: flipped, renamed, truncated, damaged while open or
//! behind the cache, deleted.

use serde_json::json;

use crate::front::{Front, Setup, T0};

use super::{MINUTE, doc, ids, open, while_closed};

pub fn a_flipped_byte_is_quarantined_and_the_rest_survives<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let kept = doc("kept", "u1", T0 + 60 * MINUTE);
    front.create(&kept).unwrap();
    front.create(&doc("bad", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut tampered = Vec::new();
    let mut front = while_closed(front, &setup, || {
        let path = setup.path("bad.svs");
        tampered = std::fs::read(&path).unwrap();
        let last = tampered.len() - 20;
        tampered[last] ^= 0x01;
        std::fs::write(&path, &tampered).unwrap();
    });
    assert_eq!(front.get("bad").unwrap(), None);
    assert_eq!(front.get("kept").unwrap(), Some(kept));
    assert_eq!(ids(&front.list("u1").unwrap()), vec!["kept"]);
    assert_eq!(front.count().unwrap(), 1);
    let report = front.check().unwrap();
    assert_eq!(report["quarantined"], 1);
    assert_eq!(report["live"], 1);
    let quarantine = setup.path("quarantine");
    let moved = crate::front::names(&quarantine);
    assert_eq!(moved.len(), 1);
    assert!(moved[0].starts_with("bad.svs."), "{moved:?}");
    assert_eq!(
        std::fs::read(quarantine.join(&moved[0])).unwrap(),
        tampered,
        "kept byte for byte"
    );
    assert_eq!(front.delete("bad"), Ok(false));
    assert_eq!(
        front.create(&doc("bad", "u1", T0 + MINUTE)),
        Ok(()),
        "the id can be used again"
    );
}

pub fn a_file_renamed_to_another_id_fails_to_decrypt<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front
        .create(&doc("victim", "u1", T0 + 60 * MINUTE))
        .unwrap();
    let mut front = while_closed(front, &setup, || {
        std::fs::copy(setup.path("victim.svs"), setup.path("attacker.svs")).unwrap();
    });
    assert_eq!(front.get("attacker").unwrap(), None);
    assert!(front.get("victim").unwrap().is_some());
    assert_eq!(front.check().unwrap()["quarantined"], 1);
}

pub fn truncated_and_empty_files_are_quarantined<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for id in ["short", "empty", "header-only", "ok"] {
        front.create(&doc(id, "u1", T0 + 60 * MINUTE)).unwrap();
    }
    let mut front = while_closed(front, &setup, || {
        let full = std::fs::read(setup.path("short.svs")).unwrap();
        std::fs::write(setup.path("short.svs"), &full[..full.len() - 1]).unwrap();
        std::fs::write(setup.path("empty.svs"), b"").unwrap();
        let full = std::fs::read(setup.path("header-only.svs")).unwrap();
        std::fs::write(setup.path("header-only.svs"), &full[..22]).unwrap();
    });
    assert_eq!(ids(&front.list("u1").unwrap()), vec!["ok"]);
    let report = front.check().unwrap();
    assert_eq!(
        (report["live"].as_u64(), report["quarantined"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(
        setup.names(),
        vec![
            "ok.svs",
            "quarantine",
            &setup.ledger_name(),
            "session-vault.json"
        ]
    );
}

pub fn a_session_damaged_while_open_is_reported_as_corrupted_once<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("s2", "u1", T0 + 60 * MINUTE)).unwrap();
    std::fs::write(setup.path("s1.svs"), b"garbage").unwrap();
    // A front that keeps the store open meets the damage on read; one that reopens
    // per operation quarantines it at open.
    let expected = if F::REOPENS {
        Ok(None)
    } else {
        Err("corrupted".to_owned())
    };
    assert_eq!(front.get("s1"), expected);
    assert_eq!(front.get("s1").unwrap(), None);
    assert!(front.get("s2").unwrap().is_some());
    assert_eq!(front.delete("s1"), Ok(false));
    assert_eq!(crate::front::names(&setup.path("quarantine")).len(), 1);
}

/// The cache of opened sessions never answers for the disk: a session read often enough
/// to be cached, then damaged, or replaced by an older authentic copy, or removed, is
/// met as without it.
pub fn a_cached_session_changed_on_disk_is_refused_not_served<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for id in ["s1", "s2", "s3"] {
        front.create(&doc(id, "u1", T0 + 60 * MINUTE)).unwrap();
    }
    let old = std::fs::read(setup.path("s2.svs")).unwrap();
    front
        .update("s2", &json!({"sessionToken": "tok-rotated"}))
        .unwrap();
    for _ in 0..3 {
        for id in ["s1", "s2", "s3"] {
            assert!(front.get(id).unwrap().is_some(), "{id}");
        }
    }
    let mut flipped = std::fs::read(setup.path("s1.svs")).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(setup.path("s1.svs"), &flipped).unwrap();
    std::fs::write(setup.path("s2.svs"), &old).unwrap();
    std::fs::remove_file(setup.path("s3.svs")).unwrap();
    let expected = if F::REOPENS {
        Ok(None)
    } else {
        Err("corrupted".to_owned())
    };
    assert_eq!(front.get("s1"), expected);
    assert_eq!(front.get("s2"), expected);
    assert_eq!(front.get("s3"), Ok(None));
    assert_eq!(crate::front::names(&setup.path("quarantine")).len(), 2);
}

pub fn a_damaged_file_can_be_deleted<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    std::fs::write(setup.path("s1.svs"), b"garbage").unwrap();
    // A front that keeps the store open deletes the damaged file without reading it; one
    // that reopens per operation has quarantined it at open. Either way it is gone.
    let deleted = front.delete("s1").unwrap();
    assert!(!setup.path("s1.svs").exists());
    let quarantined = crate::front::names(&setup.path("quarantine")).len();
    assert_eq!(
        (deleted, quarantined),
        if F::REOPENS { (false, 1) } else { (true, 0) }
    );
    assert_eq!(front.get("s1").unwrap(), None);
}
