//! Cases on what the `files` backend leaves in its directory: no plaintext, foreign
//! entries left alone, no temporary files.

use serde_json::{Value, json};

use crate::front::{Front, Setup, T0};

use super::{MINUTE, doc, open, while_closed};

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
