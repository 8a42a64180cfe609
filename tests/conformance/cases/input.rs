//! Cases of invalid input: ids, malformed documents and patches, oversized sessions.

use serde_json::{Value, json};

use crate::front::{Front, Setup, T0};

use super::{MINUTE, doc, open};

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
    missing.as_object_mut().unwrap().remove("expiresAt");
    let mut no_user = doc("s2", "u", T0 + MINUTE);
    no_user["userContext"]
        .as_object_mut()
        .unwrap()
        .remove("userId");
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
        "7".to_owned(),
        "null".to_owned(),
        missing.to_string(),
        no_user.to_string(),
        negative.to_string(),
        fraction.to_string(),
        wrong_type.to_string(),
        r#"{"sessionId": "s2", "expiresAt": 1e3}"#.to_owned(),
        r#"{"sessionId": "s2", "expiresAt": "2030-01-01"}"#.to_owned(),
        r#"{"sessionId": 2, "expiresAt": 1}"#.to_owned(),
        r#"{"sessionId": "s2", "expiresAt": 1, "a": 1, "a": 2}"#.to_owned(),
        r#"{"sessionId": "s2", "expiresAt": 1, "o": {"b": 1, "b": 1}}"#.to_owned(),
        r#"{"sessionId": "s2", "sessionId": "s3", "expiresAt": 1}"#.to_owned(),
        r#"{"sessionId": "s2", "expiresAt": 1} trailing"#.to_owned(),
        format!("{}{}", "[".repeat(200), "]".repeat(200)),
        nested(session_vault::MAX_DEPTH + 1),
        nested(100_000),
    ] {
        for (what, result) in [
            ("create", front.create_text(&bad)),
            ("set", front.set_text(&bad)),
        ] {
            assert_eq!(result, Err("invalid-input".into()), "{what} {bad:.60}");
        }
    }
    assert!(
        front.create_text(&nested(session_vault::MAX_DEPTH)).is_ok(),
        "at the limit"
    );
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
    assert_eq!(
        front.count().unwrap(),
        2,
        "s1 and the one at the depth limit"
    );
}

/// A session whose member `deep` nests arrays so that the document is `depth` deep.
fn nested(depth: usize) -> String {
    format!(
        r#"{{"sessionId": "deep", "expiresAt": {}, "deep": {}{}}}"#,
        T0 + MINUTE,
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
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
