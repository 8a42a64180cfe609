//! Key rotation: a keyring with one current key and older decrypting keys, `rekey`,
//! `retire-key`, and sessions whose key is missing.

use serde_json::{Value, json};

use crate::cases::doc;
use crate::front::{Front, Setup, T0, TestSecret};

const HOUR: u64 = 3_600_000;

fn open<F: Front>(setup: &Setup) -> F {
    F::open(setup).unwrap_or_else(|kind| panic!("open failed with {kind}"))
}

/// (id, current, retired, sessions) of every key.
fn keys<F: Front>(front: &mut F) -> Vec<(u64, bool, bool, u64)> {
    front
        .keys()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_u64().unwrap(),
                k["current"].as_bool().unwrap(),
                k["retired"].as_bool().unwrap(),
                k["sessions"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every document in `docs` reads back exactly.
fn assert_intact<F: Front>(front: &mut F, docs: &[Value]) {
    for d in docs {
        let id = d["sessionId"].as_str().unwrap();
        assert_eq!(front.get(id).unwrap().as_ref(), Some(d), "{id}");
    }
}

pub fn a_store_rotated_twice_rekeyed_and_retired_keeps_every_session<F: Front>() {
    let mut setup = Setup::new();
    let first = setup.secret.clone();
    let second = TestSecret::Phrase("the second secret of this store, long enough".into());
    let third = TestSecret::Raw([0x44; 32]);
    let mut front: F = open(&setup);
    let mut docs: Vec<Value> = (0..5)
        .map(|i| doc(&format!("a{i}"), "u", T0 + HOUR))
        .collect();
    for d in &docs {
        front.create(d).unwrap();
    }
    assert_eq!(front.add_key(&second), Ok(2));
    assert_eq!(
        front.add_key(&second),
        Err("invalid-input".into()),
        "already in the keyring"
    );
    setup.secret = second.clone();
    drop(front);
    let mut front: F = open(&setup);
    assert_intact(&mut front, &docs);
    for i in 0..2 {
        let d = doc(&format!("b{i}"), "u", T0 + HOUR);
        front.create(&d).unwrap();
        docs.push(d);
    }
    assert_eq!(front.add_key(&third), Ok(3));
    setup.secret = third.clone();
    drop(front);
    let mut front: F = open(&setup);
    assert_eq!(
        keys(&mut front),
        vec![
            (1, false, false, 5),
            (2, false, false, 2),
            (3, true, false, 0)
        ]
    );
    assert_eq!(
        front.retire_key(1),
        Err("invalid-input".into()),
        "5 sessions need key 1"
    );
    assert_eq!(front.rekey(), Ok(7));
    assert_eq!(front.rekey(), Ok(0), "nothing left to rekey");
    front.retire_key(1).unwrap();
    front.retire_key(2).unwrap();
    assert_eq!(
        front.retire_key(3),
        Err("invalid-input".into()),
        "the current key stays"
    );
    assert_eq!(front.retire_key(9), Err("invalid-input".into()));
    assert_eq!(
        keys(&mut front),
        vec![
            (1, false, true, 0),
            (2, false, true, 0),
            (3, true, false, 7)
        ]
    );
    drop(front);
    let mut front: F = open(&setup);
    assert_intact(&mut front, &docs);
    assert_eq!(front.count().unwrap(), 7);
    drop(front);
    for old in [first, second] {
        setup.secret = old;
        assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    }
    let meta = String::from_utf8(setup.metadata()).unwrap();
    for raw in [[0x42u8; 32], [0x44; 32]] {
        assert!(
            !meta.contains(&hex::encode(raw)),
            "key material in plain form"
        );
    }
}

/// A backup of a session under a key since retired, put back: reported `missing-key` and
/// kept (not damage) while the key is gone; once the key returns it decrypts, and is
/// refused as what it is, an older copy of a session the store has rewritten since.
pub fn a_backup_under_a_retired_key_is_kept_then_refused_as_an_older_copy<F: Front>() {
    let mut setup = Setup::new();
    let first = setup.secret.clone();
    let second = TestSecret::Raw([0x45; 32]);
    let mut front: F = open(&setup);
    let restored = doc("restored", "u", T0 + HOUR);
    front.create(&restored).unwrap();
    front.create(&doc("other", "u", T0 + HOUR)).unwrap();
    let backup = std::fs::read(setup.path("restored.svs")).unwrap();
    front.add_key(&second).unwrap();
    setup.secret = second;
    assert_eq!(front.rekey(), Ok(2));
    front.retire_key(1).unwrap();
    drop(front);
    // A backup taken under key 1 is put back after key 1 was retired.
    std::fs::write(setup.path("restored.svs"), &backup).unwrap();
    let mut front: F = open(&setup);
    let report = front.check().unwrap();
    assert_eq!(
        (
            report["missingKey"].as_u64(),
            report["quarantined"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(front.get("restored"), Err("missing-key".into()));
    assert_eq!(front.count().unwrap(), 1);
    assert_eq!(
        keys(&mut front),
        vec![(1, false, true, 1), (2, true, false, 1)]
    );
    assert!(setup.path("restored.svs").exists(), "never deleted");
    assert!(!setup.path("quarantine").exists(), "not treated as damage");
    assert_eq!(front.add_key(&first), Ok(1), "the retired key comes back");
    assert_eq!(
        front.get("restored").unwrap(),
        None,
        "an older copy is not served"
    );
    let report = front.check().unwrap();
    assert_eq!(
        (&report["missingKey"], &report["quarantined"]),
        (&json!(0), &json!(1)),
        "{report}"
    );
    assert!(!setup.path("restored.svs").exists(), "moved to quarantine/");
    assert_eq!(
        keys(&mut front),
        vec![(1, false, false, 0), (2, true, false, 1)]
    );
}
