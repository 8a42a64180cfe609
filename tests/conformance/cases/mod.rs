//! The conformance cases, each generic over the front end. `suite!` instantiates every
//! one of them for a front, so a case cannot be forgotten for one front.

use serde_json::{Value, json};

use crate::front::{Front, Setup, T0, TestSecret};

pub const MINUTE: u64 = 60_000;

/// A session document shaped like the original's, with extra members at every level.
pub fn doc(id: &str, user: &str, expires_at: u64) -> Value {
    json!({
        "sessionId": id,
        "sessionToken": format!("tok-{id}-Hsd_b0HbaDQ7w1bEvRyf"),
        "userContext": {
            "userId": user, "email": format!("{user}@example.org"), "name": "Zoë Ünïcødé",
            "tenantId": "tenant-1", "roles": ["reader", "admin"], "locale": "de-CH"
        },
        "tokenMetadata": {
            "accessToken": format!("access-{id}-e+pZgs+Yck/1Al1Kp425yazSznVF5Vtp"),
            "refreshToken": "refresh-NpMeLHtbwawcAUDdS/N6sBifB8Q",
            "expiresAt": T0 + 60 * MINUTE, "scopes": ["openid", "profile"],
            "issuer": {"url": "https://idp.example.org", "kid": 7}
        },
        "security": {
            "ipAddress": "203.0.113.9", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
            "createdAt": T0, "lastAccessedAt": T0, "accessCount": 1,
            "fingerprint": "0962a891121323490d86c2114b2d83d3", "risk": [0.25, null, true]
        },
        "expiresAt": expires_at,
        "createdAt": T0,
        "deviceName": "laptop-ünï", "flags": {"beta": true, "nested": {"deep": [1, {"x": "y"}]}}
    })
}

pub fn open<F: Front>(setup: &Setup) -> F {
    F::open(setup).unwrap_or_else(|kind| panic!("open failed with {kind}"))
}

fn reopen<F: Front>(front: F, setup: &Setup) -> F {
    drop(front);
    open(setup)
}

/// Runs `f` with the store closed (dropped), then reopens it.
pub fn while_closed<F: Front>(front: F, setup: &Setup, f: impl FnOnce()) -> F {
    drop(front);
    f();
    open(setup)
}

pub fn ids(sessions: &[Value]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| s["sessionId"].as_str().expect("sessionId is a string"))
        .collect()
}

pub fn create_then_get_returns_the_document_with_extra_fields<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    assert_eq!(front.get("s1").unwrap(), Some(original.clone()));
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("s1").unwrap(), Some(original));
}

pub fn files_hold_no_plaintext<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    let bytes = std::fs::read(setup.path("s1.svs")).unwrap();
    let mut strings = Vec::new();
    collect_strings(&original, &mut strings);
    for s in strings.iter().filter(|s| s.len() >= 4) {
        let needle = s.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{s:?} is readable in the session file"
        );
    }
    let meta = std::fs::read_to_string(setup.path("session-vault.json")).unwrap();
    assert!(
        !meta.contains(&hex::encode([0x42; 32])),
        "the key is in the metadata"
    );
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out);
        }),
        _ => {}
    }
}

pub fn get_of_an_absent_session_is_none<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    assert_eq!(front.get("nobody").unwrap(), None);
    assert_eq!(
        front.update("nobody", &json!({"sessionToken": "x"})),
        Err("not-found".into())
    );
}

pub fn expiry_applies_on_every_path<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("short", "u1", T0 + MINUTE)).unwrap();
    front.create(&doc("long", "u1", T0 + 10 * MINUTE)).unwrap();
    front.create(&doc("other", "u2", T0 + MINUTE)).unwrap();
    assert_eq!(front.count().unwrap(), 3);

    setup.clock.set(T0 + MINUTE - 1);
    assert!(
        front.get("short").unwrap().is_some(),
        "live one millisecond before expiry"
    );

    setup.clock.set(T0 + MINUTE);
    assert_eq!(front.count().unwrap(), 1, "count excludes expired sessions");
    assert_eq!(ids(&front.list("u1").unwrap()), vec!["long"]);
    assert_eq!(front.list("u2").unwrap(), Vec::<Value>::new());
    assert_eq!(
        front.update("short", &json!({"sessionToken": "revived"})),
        Err("not-found".into()),
        "an expired session cannot be updated back to life"
    );
    assert_eq!(front.get("other").unwrap(), None);
    assert!(
        !setup.path("other.svs").exists(),
        "get removes the expired file"
    );
    assert_eq!(
        front.create(&doc("other", "u3", T0 + 5 * MINUTE)),
        Ok(()),
        "an expired id is free again"
    );

    setup.clock.set(T0 + 20 * MINUTE);
    assert_eq!(
        front.cleanup().unwrap(),
        2,
        "cleanup removes long and other"
    );
    assert_eq!(front.count().unwrap(), 0);
    assert_eq!(setup.names(), setup.expected_names(&[]));
}

pub fn update_merges_nested_objects_field_by_field<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    let patch = json!({
        "sessionToken": "rotated",
        "userContext": {"name": "New Name", "email": null, "extraNested": 1},
        "tokenMetadata": {"accessToken": "new-access"},
        "security": {"lastAccessedAt": T0 + 5, "accessCount": 2},
        "flags": {"replaced": true}
    });
    let updated = front.update("s1", &patch).unwrap();
    let mut expected = original;
    expected["sessionToken"] = json!("rotated");
    expected["userContext"]["name"] = json!("New Name");
    expected["userContext"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    expected["userContext"]["extraNested"] = json!(1);
    expected["tokenMetadata"]["accessToken"] = json!("new-access");
    expected["security"]["lastAccessedAt"] = json!(T0 + 5);
    expected["security"]["accessCount"] = json!(2);
    expected["flags"] = json!({"replaced": true});
    assert_eq!(updated, expected);
    assert_eq!(front.get("s1").unwrap(), Some(expected));
}

pub fn update_cannot_change_the_session_id<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    assert_eq!(
        front.update("s1", &json!({"sessionId": "s2"})),
        Err("invalid-input".into())
    );
    assert!(
        front.update("s1", &json!({"sessionId": "s1"})).is_ok(),
        "repeating the id is fine"
    );
    assert_eq!(front.get("s1").unwrap(), Some(original));
    assert_eq!(front.get("s2").unwrap(), None);
}

pub fn changing_the_user_moves_the_session<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "alice", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("s2", "alice", T0 + 60 * MINUTE)).unwrap();
    front
        .update("s1", &json!({"userContext": {"userId": "bob"}}))
        .unwrap();
    assert_eq!(ids(&front.list("alice").unwrap()), vec!["s2"]);
    assert_eq!(ids(&front.list("bob").unwrap()), vec!["s1"]);
    let mut front = reopen(front, &setup);
    assert_eq!(ids(&front.list("bob").unwrap()), vec!["s1"]);
    assert_eq!(front.revoke_user("alice").unwrap(), 1);
    assert_eq!(front.count().unwrap(), 1);
}

pub fn user_sessions_are_ordered_by_creation<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for (id, created) in [("c", 3), ("a", 2), ("b", 2), ("d", 1)] {
        let mut d = doc(id, "u", T0 + MINUTE);
        d["createdAt"] = json!(T0 + created);
        front.create(&d).unwrap();
    }
    assert_eq!(ids(&front.list("u").unwrap()), vec!["d", "a", "b", "c"]);
    assert_eq!(front.list("nobody").unwrap(), Vec::<Value>::new());
}

pub fn create_refuses_a_live_id<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    assert_eq!(
        front.create(&doc("s1", "u2", T0 + MINUTE)),
        Err("already-exists".into())
    );
    assert_eq!(front.get("s1").unwrap(), Some(original));
}

pub fn delete_is_idempotent<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    assert_eq!(front.delete("s1"), Ok(true));
    assert_eq!(front.delete("s1"), Ok(false));
    assert_eq!(front.delete("never"), Ok(false));
    assert_eq!(front.get("s1").unwrap(), None);
    assert_eq!(front.list("u1").unwrap(), Vec::<Value>::new());
    assert_eq!(front.count().unwrap(), 0);
}

pub fn clear_and_revoke_user_remove_what_they_say<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("a1", "alice", T0 + MINUTE)).unwrap();
    front.create(&doc("a2", "alice", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("b1", "bob", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("c1", "carol", T0 + 60 * MINUTE)).unwrap();
    setup.clock.set(T0 + MINUTE);
    assert_eq!(
        front.revoke_user("alice").unwrap(),
        1,
        "only live sessions are counted"
    );
    assert!(
        !setup.path("a1.svs").exists(),
        "the expired one is removed too"
    );
    assert_eq!(front.revoke_user("alice").unwrap(), 0);
    assert_eq!(front.revoke_user("nobody").unwrap(), 0);
    assert_eq!(front.count().unwrap(), 2);
    assert_eq!(front.clear().unwrap(), 2);
    assert_eq!(front.count().unwrap(), 0);
    assert_eq!(front.get("b1").unwrap(), None);
    assert_eq!(setup.names(), setup.expected_names(&[]));
    let mut front = reopen(front, &setup);
    assert_eq!(front.count().unwrap(), 0);
}

pub fn a_wrong_secret_fails_at_open_and_loses_nothing<F: Front>() {
    let mut setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    drop(front);
    let right = setup.secret.clone();
    setup.secret = TestSecret::Raw([0x43; 32]);
    assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    setup.secret = TestSecret::Phrase("a passphrase that is long enough, but wrong".into());
    assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    setup.secret = right;
    let mut front: F = open(&setup);
    assert_eq!(front.get("s1").unwrap(), Some(original));
}

pub fn passphrase_stores_reopen_and_reject_short_or_wrong_phrases<F: Front>() {
    let mut setup = Setup::new();
    setup.secret = TestSecret::Phrase("correct horse battery staple and then some".into());
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut front = reopen(front, &setup);
    assert!(front.get("s1").unwrap().is_some());
    drop(front);
    let meta: Value = serde_json::from_slice(&setup.metadata()).unwrap();
    assert_eq!(meta["keys"][0]["kdf"]["type"], "scrypt");
    assert_eq!(
        meta["keys"][0]["kdf"]["salt"].as_str().map(str::len),
        Some(32)
    );
    setup.secret = TestSecret::Phrase("correct horse battery staple and then somE".into());
    assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    setup.secret = TestSecret::Phrase("too short".into());
    assert_eq!(F::open(&setup).err(), Some("invalid-input".into()));
}

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

pub fn foreign_entries_are_left_alone<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut front = while_closed(front, &setup, || {
        std::fs::write(setup.path("README"), b"notes").unwrap();
        std::fs::write(setup.path("legacy.session"), b"00ff").unwrap();
        std::fs::write(setup.path("bad id.svs"), b"x").unwrap();
        std::fs::create_dir(setup.path("dir.svs")).unwrap();
        std::fs::write(setup.path("notes.tmp"), b"x").unwrap();
    });
    assert_eq!(front.count().unwrap(), 1);
    assert_eq!(front.check().unwrap()["foreign"], 5);
    assert_eq!(front.clear().unwrap(), 1);
    assert_eq!(
        setup.names(),
        vec![
            "README",
            "bad id.svs",
            "dir.svs",
            "legacy.session",
            "notes.tmp",
            &setup.ledger_name(),
            "session-vault.json"
        ]
    );
}

pub fn touch_records_an_access<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    setup.clock.set(T0 + 5 * MINUTE);
    let touched = front.touch("s1").unwrap().expect("s1 is live");
    let mut expected = original;
    expected["security"]["lastAccessedAt"] = json!(T0 + 5 * MINUTE);
    expected["security"]["accessCount"] = json!(2);
    assert_eq!(
        touched, expected,
        "only lastAccessedAt and accessCount change"
    );
    assert_eq!(front.get("s1").unwrap(), Some(expected));
    assert_eq!(front.touch("absent").unwrap(), None);
    assert_eq!(front.touch("../x"), Err("invalid-id".into()));
    setup.clock.set(T0 + 60 * MINUTE);
    assert_eq!(
        front.touch("s1").unwrap(),
        None,
        "an expired session is not revived"
    );
    assert!(!setup.path("s1.svs").exists());
}

pub fn touch_writes_a_stamp_that_survives_reopen_and_is_void_when_torn<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    let file = std::fs::read(setup.path("s1.svs")).unwrap();
    setup.clock.set(T0 + MINUTE);
    front.touch("s1").unwrap().expect("s1 is live");
    setup.clock.set(T0 + 2 * MINUTE);
    let touched = front.touch("s1").unwrap().expect("s1 is live");
    assert_eq!(
        std::fs::read(setup.path("s1.svs")).unwrap(),
        file,
        "touch does not rewrite the session file"
    );
    assert_eq!(std::fs::metadata(setup.path("s1.sva")).unwrap().len(), 74);
    drop(front);
    let mut front: F = open(&setup);
    assert_eq!(front.get("s1").unwrap().as_ref(), Some(&touched));
    assert_eq!(touched["security"]["accessCount"], 3);
    drop(front);
    // A stamp torn by a crash is void: the session reads as its file holds it.
    let stamp = std::fs::read(setup.path("s1.sva")).unwrap();
    std::fs::write(setup.path("s1.sva"), &stamp[..30]).unwrap();
    let mut front: F = open(&setup);
    assert_eq!(front.get("s1").unwrap(), Some(original.clone()));
    let report = front.check().unwrap();
    assert_eq!(
        (&report["quarantined"], &report["foreign"], &report["live"]),
        (&json!(0), &json!(0), &json!(1))
    );
    let ledger = setup.ledger_name();
    assert_eq!(setup.names(), vec!["s1.svs", &ledger, "session-vault.json"]);
    // Deleting the session removes its stamp with it.
    front.touch("s1").unwrap().expect("s1 is live");
    assert!(front.delete("s1").unwrap());
    assert_eq!(setup.names(), vec![&ledger, "session-vault.json"]);
}

pub fn idle_timeout_expires_on_every_path_and_touch_extends_it<F: Front>() {
    let mut setup = Setup::new();
    setup.idle_timeout = Some(10 * MINUTE);
    let mut front: F = open(&setup);
    for id in ["idle", "busy", "other"] {
        front.create(&doc(id, "u1", T0 + 60 * MINUTE)).unwrap();
    }
    setup.clock.set(T0 + 5 * MINUTE);
    front.touch("busy").unwrap().expect("busy is live");
    setup.clock.set(T0 + 10 * MINUTE - 1);
    assert!(
        front.get("idle").unwrap().is_some(),
        "get does not count as an access"
    );
    setup.clock.set(T0 + 10 * MINUTE);
    assert_eq!(front.count().unwrap(), 1);
    assert_eq!(ids(&front.list("u1").unwrap()), vec!["busy"]);
    assert_eq!(front.get("idle").unwrap(), None);
    assert_eq!(
        front.update("other", &json!({"sessionToken": "x"})),
        Err("not-found".into())
    );
    assert_eq!(front.touch("other").unwrap(), None);
    setup.clock.set(T0 + 14 * MINUTE);
    assert!(
        front.touch("busy").unwrap().is_some(),
        "idle until 24 min now"
    );
    let mut steady = doc("steady", "u1", T0 + 20 * MINUTE);
    steady["security"]["lastAccessedAt"] = json!(T0 + 14 * MINUTE);
    front.create(&steady).unwrap();
    setup.clock.set(T0 + 19 * MINUTE);
    assert!(front.touch("steady").unwrap().is_some());
    setup.clock.set(T0 + 20 * MINUTE);
    assert_eq!(
        front.touch("steady").unwrap(),
        None,
        "the absolute expiry still applies"
    );
    setup.clock.set(T0 + 30 * MINUTE);
    assert_eq!(
        front.cleanup().unwrap(),
        1,
        "cleanup removes busy, idle since 14 min"
    );
    assert_eq!(setup.names(), setup.expected_names(&[]));
    drop(front);
    setup.idle_timeout = Some(0);
    assert_eq!(F::open(&setup).err(), Some("invalid-input".into()));
}

/// The ids the issue lists, plus a few more.
pub const INVALID_IDS: &[&str] = &[
    "",
    "../x",
    "a/b",
    "a\\b",
    ".",
    "..",
    "/etc/passwd",
    "sp ace",
    "dot.ted",
    "non-ascii-é",
    "emoji-🔑",
    "tab\tid",
];

pub fn invalid_ids_are_refused_on_every_operation<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let long = "x".repeat(129);
    let mut cases: Vec<&str> = INVALID_IDS.to_vec();
    cases.push(&long);
    for id in cases {
        let bad = Err("invalid-id".to_owned());
        assert_eq!(
            front.create(&doc(id, "u", T0 + MINUTE)),
            bad.clone().map(drop),
            "create {id:?}"
        );
        assert_eq!(front.get(id), bad.clone().map(|_: ()| None), "get {id:?}");
        assert_eq!(
            front.update(id, &json!({})),
            bad.clone().map(|_: ()| Value::Null),
            "update {id:?}"
        );
        assert_eq!(
            front.delete(id),
            bad.clone().map(|_: ()| false),
            "delete {id:?}"
        );
    }
    // NUL cannot be an argument, but it can be a sessionId in a document.
    assert_eq!(
        front.create(&doc("nul\0id", "u", T0 + MINUTE)),
        Err("invalid-id".into())
    );
    let longest = "y".repeat(128);
    front.create(&doc(&longest, "u", T0 + MINUTE)).unwrap();
    assert!(front.get(&longest).unwrap().is_some());
    let parent = setup.dir.parent().unwrap();
    // A redis store creates no directory at all.
    let expected: &[&str] = if setup.redis.is_some() {
        &[]
    } else {
        &["store"]
    };
    assert_eq!(
        crate::front::names(parent),
        expected,
        "nothing escaped the store directory"
    );
    assert_eq!(setup.names(), setup.expected_names(&[&longest]));
}

pub fn malformed_documents_and_patches_are_invalid_input<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    let mut missing = doc("s2", "u", T0 + MINUTE);
    missing.as_object_mut().unwrap().remove("sessionToken");
    let mut negative = doc("s2", "u", T0 + MINUTE);
    negative["expiresAt"] = json!(-1);
    let mut fraction = doc("s2", "u", T0 + MINUTE);
    fraction["security"]["accessCount"] = json!(1.5);
    let mut wrong_type = doc("s2", "u", T0 + MINUTE);
    wrong_type["userContext"]["roles"] = json!("admin");
    for bad in [
        "".to_owned(),
        "not json".to_owned(),
        "[]".to_owned(),
        "{\"sessionId\": \"s2\"".to_owned(),
        missing.to_string(),
        negative.to_string(),
        fraction.to_string(),
        wrong_type.to_string(),
        format!("{}{}", "[".repeat(200), "]".repeat(200)),
    ] {
        assert_eq!(
            front.create_text(&bad),
            Err("invalid-input".into()),
            "{bad:.60}"
        );
    }
    for bad in [
        "",
        "nope",
        r#"{"expiresAt": null}"#,
        r#"{"security": {"accessCount": "1"}}"#,
    ] {
        assert_eq!(
            front.update_text("s1", bad),
            Err("invalid-input".into()),
            "{bad}"
        );
    }
    assert_eq!(
        front.get("s1").unwrap(),
        Some(original),
        "nothing stored before is lost"
    );
    assert_eq!(front.count().unwrap(), 1);
}

pub fn oversized_sessions_are_too_large<F: Front>() {
    let mut setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    let mut big = doc("big", "u1", T0 + MINUTE);
    big["blob"] = json!("x".repeat(64 * 1024));
    assert_eq!(front.create(&big), Err("too-large".into()));
    assert_eq!(
        front.update("s1", &json!({"blob": "x".repeat(64 * 1024)})),
        Err("too-large".into())
    );
    big["blob"] = json!("x".repeat(60 * 1024));
    assert_eq!(front.create(&big), Ok(()), "just under the default limit");
    assert_eq!(front.get("s1").unwrap(), Some(original));
    drop(front);
    setup.max_session_bytes = Some(2048);
    let mut front: F = open(&setup);
    let mut medium = doc("medium", "u1", T0 + MINUTE);
    medium["blob"] = json!("x".repeat(2048));
    assert_eq!(front.create(&medium), Err("too-large".into()));
    assert!(
        front.get("big").unwrap().is_some(),
        "a lower limit does not hide older sessions"
    );
    drop(front);
    setup.max_session_bytes = Some(10);
    assert_eq!(F::open(&setup).err(), Some("invalid-input".into()));
}

pub fn no_temporary_files_are_left_and_leftovers_are_removed<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for i in 0..5 {
        front
            .create(&doc(&format!("s{i}"), "u", T0 + MINUTE))
            .unwrap();
        front
            .update(&format!("s{i}"), &json!({"sessionToken": "t2"}))
            .unwrap();
    }
    front.delete("s0").unwrap();
    let expected: Vec<String> = ["s1.svs", "s2.svs", "s3.svs", "s4.svs", &setup.ledger_name()]
        .into_iter()
        .map(String::from)
        .chain(["session-vault.json".to_owned()])
        .collect();
    assert_eq!(setup.names(), expected);
    let front = while_closed(front, &setup, || {
        std::fs::write(setup.path("s1.svs.0123456789abcdef.tmp"), b"half a write").unwrap();
        std::fs::write(setup.path("session-vault.json.fedcba9876543210.tmp"), b"{").unwrap();
    });
    assert_eq!(setup.names(), expected);
    drop(front);
}

pub fn missing_metadata_beside_sessions_is_refused<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + MINUTE)).unwrap();
    drop(front);
    std::fs::remove_file(setup.path("session-vault.json")).unwrap();
    assert_eq!(F::open(&setup).err(), Some("corrupted".into()));
    assert!(setup.stored("s1"), "nothing is deleted or quarantined");
    std::fs::write(setup.path("session-vault.json"), b"{\"format\": 1").unwrap();
    assert_eq!(F::open(&setup).err(), Some("corrupted".into()));
}

pub fn a_second_opener_is_locked_out<F: Front>() {
    if !F::LOCKS {
        return;
    }
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + MINUTE)).unwrap();
    drop(front);
    let holder = session_vault::Vault::open(&setup.dir, setup.secret.secret()).unwrap();
    assert_eq!(F::open(&setup).err(), Some("locked".into()));
    drop(holder);
    let mut front: F = open(&setup);
    assert!(front.get("s1").unwrap().is_some());
}

pub fn the_store_directory_is_private<F: Front>() {
    use std::os::unix::fs::PermissionsExt;
    if !F::LOCKS {
        return; // The host creates the directory; the native core is given one.
    }
    let setup = Setup::new();
    std::fs::create_dir(&setup.dir).unwrap();
    std::fs::set_permissions(&setup.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + MINUTE)).unwrap();
    let mode = std::fs::metadata(&setup.dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

pub fn migrate_moves_every_session_there_and_back<F: Front>() {
    use session_vault::BackendKind;
    let mut setup = Setup::new();
    let (home, away) = match setup.backend {
        BackendKind::Files => (BackendKind::Files, BackendKind::Log),
        _ => (BackendKind::Log, BackendKind::Files),
    };
    let mut front: F = open(&setup);
    for (i, user) in ["u1", "u1", "u2", "u2", "u2"].iter().enumerate() {
        front
            .create(&doc(&format!("s{i}"), user, T0 + 60 * MINUTE))
            .unwrap();
    }
    setup.clock.set(T0 + MINUTE);
    front.touch("s1").unwrap().expect("s1 is live");
    assert!(front.delete("s4").unwrap());
    let before: Vec<_> = (0..4)
        .map(|i| front.get(&format!("s{i}")).unwrap())
        .collect();
    let layout = |setup: &Setup, backend: BackendKind| {
        let names = setup.names();
        let files = names
            .iter()
            .any(|n| n.ends_with(".svs") || n.ends_with(".sva"));
        let log = names.iter().any(|n| n == "log");
        assert_eq!(
            (files, log),
            (backend == BackendKind::Files, backend == BackendKind::Log),
            "{names:?}"
        );
    };
    for to in [away, home] {
        assert_eq!(front.migrate(to), Ok(4), "to {}", to.name());
        assert_eq!(front.migrate(to), Ok(0), "already {}", to.name());
        setup.backend = to;
        front = while_closed(front, &setup, || {});
        layout(&setup, to);
        let after: Vec<_> = (0..4)
            .map(|i| front.get(&format!("s{i}")).unwrap())
            .collect();
        assert_eq!(after, before, "in {}", to.name());
        assert_eq!(ids(&front.list("u2").unwrap()), vec!["s2", "s3"]);
        let report = front.check().unwrap();
        assert_eq!(
            (&report["live"], &report["quarantined"], &report["foreign"]),
            (&json!(4), &json!(0), &json!(0))
        );
    }
}

/// Instantiates the suite for one front and one backend: `files` runs every case, `log`
/// the cases that do not look at the `files` layout (the log's own damage and recovery
/// cases are in `guest/src/backend/log/`).
#[macro_export]
macro_rules! suite {
    ($module:ident, $front:ty, files) => {
        mod $module {
            $crate::suite!(@common $front, Files);
            // These also look at the `files` layout itself (names, bytes of `<id>.svs`).
            $crate::suite!(@cases $front, Files;
                a_cached_session_changed_on_disk_is_refused_not_served,
                a_damaged_file_can_be_deleted,
                a_file_renamed_to_another_id_fails_to_decrypt,
                a_flipped_byte_is_quarantined_and_the_rest_survives,
                a_session_damaged_while_open_is_reported_as_corrupted_once,
                a_backup_under_a_retired_key_is_kept_then_refused_as_an_older_copy,
                an_older_copy_put_back_while_open_is_corrupted,
                files_hold_no_plaintext,
                foreign_entries_are_left_alone,
                no_temporary_files_are_left_and_leftovers_are_removed,
                touch_writes_a_stamp_that_survives_reopen_and_is_void_when_torn,
                truncated_and_empty_files_are_quarantined,
            );
        }
    };
    ($module:ident, $front:ty, log) => {
        mod $module {
            $crate::suite!(@common $front, Log);
            $crate::suite!(@cases $front, Log;
                log_a_damaged_record_is_quarantined_and_the_rest_survives,
                log_a_record_that_fails_to_decrypt_is_quarantined_once,
                log_a_torn_append_is_cut_off_and_nothing_acknowledged_is_lost,
                log_segments_hold_no_plaintext_and_foreign_entries_are_left_alone,
                log_huge_sparse_segments_are_scanned_not_loaded,
            );
        }
    };
    // The shared store in a real Redis: every case that does not look at a directory.
    ($module:ident, $front:ty, redis) => {
        mod $module {
            $crate::suite!(@cases $front, Redis;
                create_then_get_returns_the_document_with_extra_fields,
                get_of_an_absent_session_is_none,
                update_merges_nested_objects_field_by_field,
                update_cannot_change_the_session_id,
                changing_the_user_moves_the_session,
                user_sessions_are_ordered_by_creation,
                create_refuses_a_live_id,
                delete_is_idempotent,
                a_wrong_secret_fails_at_open_and_loses_nothing,
                passphrase_stores_reopen_and_reject_short_or_wrong_phrases,
                malformed_documents_and_patches_are_invalid_input,
                oversized_sessions_are_too_large,
                model_random_operations_with_reopen,
                model_random_operations_relaxed,
                touch_records_an_access,
                a_store_rotated_twice_rekeyed_and_retired_keeps_every_session,
                legacy_import_brings_every_live_session_over_unchanged,
                legacy_import_run_again_imports_nothing_twice,
                legacy_import_reports_damaged_and_mismatched_files,
                legacy_import_with_a_wrong_secret_writes_nothing,
                clear_and_revoke_user_remove_what_they_say,
                expiry_applies_on_every_path,
                idle_timeout_expires_on_every_path_and_touch_extends_it,
                invalid_ids_are_refused_on_every_operation,
            );
        }
    };
    // The cases every backend runs.
    (@common $front:ty, $backend:ident) => {
        $crate::suite!(@cases $front, $backend;
            create_then_get_returns_the_document_with_extra_fields,
            get_of_an_absent_session_is_none,
            update_merges_nested_objects_field_by_field,
            update_cannot_change_the_session_id,
            changing_the_user_moves_the_session,
            user_sessions_are_ordered_by_creation,
            create_refuses_a_live_id,
            delete_is_idempotent,
            a_wrong_secret_fails_at_open_and_loses_nothing,
            passphrase_stores_reopen_and_reject_short_or_wrong_phrases,
            malformed_documents_and_patches_are_invalid_input,
            oversized_sessions_are_too_large,
            a_second_opener_is_locked_out,
            the_store_directory_is_private,
            model_random_operations_with_reopen,
            model_random_operations_relaxed,
            touch_records_an_access,
            a_store_rotated_twice_rekeyed_and_retired_keeps_every_session,
            legacy_import_brings_every_live_session_over_unchanged,
            legacy_import_run_again_imports_nothing_twice,
            legacy_import_reports_damaged_and_mismatched_files,
            migrate_moves_every_session_there_and_back,
            clear_and_revoke_user_remove_what_they_say,
            expiry_applies_on_every_path,
            idle_timeout_expires_on_every_path_and_touch_extends_it,
            invalid_ids_are_refused_on_every_operation,
            legacy_import_with_a_wrong_secret_writes_nothing,
            missing_metadata_beside_sessions_is_refused,
            after_rekey_and_retire_no_record_opens_under_the_retired_key,
            retire_refuses_while_quarantine_holds_files,
            removed_sessions_leave_no_record_after_compact,
            immediate_erase_leaves_no_record_of_removed_sessions,
            files_are_0600_and_directories_0700,
            every_edited_metadata_field_is_refused_and_nothing_changes,
            version_1_metadata_is_upgraded_and_every_session_kept,
            version_2_stores_are_upgraded_and_every_record_rewritten,
            an_older_copy_put_back_is_refused_not_served,
            a_removed_session_put_back_is_refused_not_served,
            a_record_of_another_store_under_the_same_key_is_refused,
            a_missing_or_edited_ledger_refuses_to_open_and_changes_nothing,
            migrate_moves_a_store_into_redis_and_back,
        );
    };
    (@cases $front:ty, $backend:ident; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::front::with_backend(session_vault::BackendKind::$backend, || {
                    $crate::cases::$case::<$front>()
                });
            }
        )*
    };
}

pub use crate::erasure::*;
pub use crate::keys::*;
pub use crate::legacy::*;
pub use crate::log_cases::*;
pub use crate::metadata::*;
pub use crate::migrate_redis::*;
pub use crate::model::{model_random_operations_relaxed, model_random_operations_with_reopen};
pub use crate::rollback::*;
