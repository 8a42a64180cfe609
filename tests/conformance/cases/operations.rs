//! Cases of the operations themselves: create, get, update, list, delete, clear and
//! revoke-user.

use serde_json::{Value, json};

use crate::front::{Front, Setup, T0};

use super::{MINUTE, doc, ids, open, reopen};

pub fn create_then_get_returns_the_document_with_extra_fields<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    assert_eq!(front.get("s1").unwrap(), Some(original.clone()));
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("s1").unwrap(), Some(original));
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
    match &setup.redis {
        // What was removed before its expiry leaves a removal marker under its key
        // until then (no session: a `set` of the id is refused meanwhile).
        Some(redis) => {
            assert_eq!(setup.names(), setup.expected_names(&["a2", "b1", "c1"]));
            for id in ["a2", "b1", "c1"] {
                let value = redis.value(&format!("s:{id}")).unwrap();
                assert!(value.starts_with(b"SVRM") && value.len() == 12, "{id}");
            }
        }
        None => assert_eq!(setup.names(), setup.expected_names(&[])),
    }
    let mut front = reopen(front, &setup);
    assert_eq!(front.count().unwrap(), 0);
}
