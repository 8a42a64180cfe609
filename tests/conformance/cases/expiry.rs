//! Cases of expiry, the idle timeout and `touch`.

use serde_json::{Value, json};

use crate::front::{Front, Setup, T0};

use super::{MINUTE, doc, ids, open};

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
    assert_eq!(std::fs::metadata(setup.path("s1.sva")).unwrap().len(), 82);
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
