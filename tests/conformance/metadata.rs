//! The metadata is authenticated: nothing an attacker edits in `session-vault.json` steers
//! the store (every field is edited in turn: each open is refused and nothing on disk
//! changes), and stores with version-1 or version-2 metadata (real ones, in
//! `tests/fixtures/v1-store` and `v2-store`) are upgraded at their first open with every
//! session kept.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::cases::{MINUTE, doc, ids, open};
use crate::front::{Front, Setup, T0, TestSecret};

/// One edit of the metadata's JSON.
type Edit = Box<dyn Fn(&mut Value)>;

/// Every file under `dir` with its bytes: what a refused open must leave as it was.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(
                    path.strip_prefix(dir).unwrap().display().to_string() + "/",
                    vec![],
                );
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

pub fn every_edited_metadata_field_is_refused_and_nothing_changes<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front
        .create(&doc("m-a", "alice", T0 + 60 * MINUTE))
        .unwrap();
    front.create(&doc("m-b", "bob", T0 + 60 * MINUTE)).unwrap();
    // Three keys: 1 retired, 2 active and wrapped under 3, 3 current.
    let second = TestSecret::Raw([0x52; 32]);
    let third = TestSecret::Raw([0x53; 32]);
    front.add_key(&second).unwrap();
    front.rekey().unwrap();
    front.retire_key(1).unwrap();
    front.add_key(&third).unwrap();
    drop(front);
    let path = setup.path("session-vault.json");
    let original: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(original["version"], 3);
    let mut setup = setup;
    setup.secret = third;
    let edits: Vec<(&str, Edit)> = vec![
        ("format", Box::new(|m| m["format"] = json!("other"))),
        (
            "version relabelled 1",
            Box::new(|m| m["version"] = json!(1)),
        ),
        (
            "version relabelled 2",
            Box::new(|m| m["version"] = json!(2)),
        ),
        ("version 4", Box::new(|m| m["version"] = json!(4))),
        (
            "store id",
            Box::new(|m| m["storeId"] = json!("00".repeat(16))),
        ),
        (
            "backend",
            Box::new(|m| {
                let other = if m["backend"] == "log" {
                    "files"
                } else {
                    "log"
                };
                m["backend"] = json!(other);
            }),
        ),
        (
            "migrating to",
            Box::new(|m| {
                let other = if m["backend"] == "log" {
                    "files"
                } else {
                    "log"
                };
                m["migratingTo"] = json!(other);
            }),
        ),
        (
            "migrated from (backend swapped)",
            Box::new(|m| {
                let (from, to) = if m["backend"] == "log" {
                    ("log", "files")
                } else {
                    ("files", "log")
                };
                m["backend"] = json!(to);
                m["migratedFrom"] = json!(from);
            }),
        ),
        (
            "retired flag cleared",
            Box::new(|m| m["keys"][0]["retired"] = json!(false)),
        ),
        (
            "retired flag set",
            Box::new(|m| m["keys"][1]["retired"] = json!(true)),
        ),
        (
            "wrapped key",
            Box::new(|m| {
                let wrapped = m["keys"][2]["wrapped"][0]["key"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let flipped = format!(
                    "{}{}",
                    if wrapped.starts_with('0') { "1" } else { "0" },
                    &wrapped[1..]
                );
                m["keys"][2]["wrapped"][0]["key"] = json!(flipped);
            }),
        ),
        (
            "wrapped key removed",
            Box::new(|m| m["keys"][2]["wrapped"] = json!([])),
        ),
        (
            "key entry removed",
            Box::new(|m| {
                m["keys"].as_array_mut().unwrap().remove(0);
            }),
        ),
        (
            "mac removed",
            Box::new(|m| {
                m.as_object_mut().unwrap().remove("mac");
            }),
        ),
        (
            "mac flipped",
            Box::new(|m| {
                let mac = m["mac"].as_str().unwrap().to_owned();
                let flipped = format!(
                    "{}{}",
                    &mac[..mac.len() - 1],
                    if mac.ends_with('0') { "1" } else { "0" }
                );
                m["mac"] = json!(flipped);
            }),
        ),
        ("unknown field", Box::new(|m| m["extra"] = json!(true))),
        // These change what the key is derived from or checked against: the secret then
        // fails the check, which cannot tell an edit from a wrong secret.
        ("current key id", Box::new(|m| m["currentKey"] = json!(2))),
        (
            "kdf",
            Box::new(|m| {
                m["keys"][2]["kdf"] =
                    json!({"type": "scrypt", "salt": "00".repeat(16), "logN": 10, "r": 1, "p": 1});
            }),
        ),
        (
            "key check",
            Box::new(|m| {
                let check = m["keys"][2]["check"].as_str().unwrap().to_owned();
                let flipped = format!(
                    "{}{}",
                    &check[..check.len() - 1],
                    if check.ends_with('0') { "1" } else { "0" }
                );
                m["keys"][2]["check"] = json!(flipped);
            }),
        ),
    ];
    for (what, edit) in &edits {
        let mut edited = original.clone();
        edit(&mut edited);
        std::fs::write(&path, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        let before = snapshot(&setup.dir);
        let refused = F::open(&setup).err();
        let allowed: &[&str] = match *what {
            "current key id" | "kdf" | "key check" => &["wrong-key", "corrupted"],
            _ => &["corrupted"],
        };
        assert!(
            refused
                .as_deref()
                .is_some_and(|kind| allowed.contains(&kind)),
            "{what}: {refused:?}"
        );
        assert_eq!(
            snapshot(&setup.dir),
            before,
            "{what}: the refused open changed the disk"
        );
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&original).unwrap()).unwrap();
    let mut front: F = open(&setup);
    assert_eq!(ids(&front.list("alice").unwrap()), vec!["m-a"]);
    assert_eq!(front.count().unwrap(), 2);
}

/// Copies the fixture store `tests/fixtures/<name>/<backend>` to `setup`'s directory and
/// opens it (its secret is the raw key 11 × 32); checks that the upgrade kept every
/// session and wrote metadata version 3 naming a ledger, and that no record of format 1
/// is left anywhere in the store (the log compacted what the rewrite replaced).
fn upgrade_fixture<F: Front>(setup: &mut Setup, name: &str) -> F {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
        .join(setup.backend.name());
    std::fs::create_dir_all(setup.dir.parent().unwrap()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(&setup.dir)
        .status()
        .unwrap();
    assert!(status.success());
    setup.secret = TestSecret::Raw([0x11; 32]);
    let mut front: F = open(setup);
    let prefix = format!("{}-{}-", &name[..2], setup.backend.name());
    assert_eq!(front.count().unwrap(), 3);
    let first = front.get(&format!("{prefix}1")).unwrap().unwrap();
    assert_eq!(first["sessionToken"], "tok-1");
    assert_eq!(first["security"]["accessCount"], 1, "the stamp is kept");
    assert_eq!(
        ids(&front.list("user-1").unwrap()),
        vec![format!("{prefix}1"), format!("{prefix}3")]
    );
    let meta: Value =
        serde_json::from_slice(&std::fs::read(setup.path("session-vault.json")).unwrap()).unwrap();
    assert_eq!(meta["version"], 3);
    assert_eq!(meta["storeId"].as_str().map(str::len), Some(32));
    assert!(meta["mac"].is_string());
    assert!(setup.path(&setup.ledger_name()).is_file());
    for (file, bytes) in snapshot(&setup.dir) {
        let v1 = bytes.windows(5).position(|w| w == b"SVLT\x01");
        assert_eq!(v1, None, "{file} still holds a format-1 record");
    }
    front
}

pub fn version_1_metadata_is_upgraded_and_every_session_kept<F: Front>() {
    let mut setup = Setup::new();
    let v1 = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/v1-store")
            .join(setup.backend.name())
            .join("session-vault.json"),
    )
    .unwrap();
    let front: F = upgrade_fixture(&mut setup, "v1-store");
    drop(front);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(setup.path("session-vault.json")).unwrap()).unwrap();
    // The upgraded file cannot be passed off as version 1 again. The old file put back
    // does open: it is an authentic version-1 file, and a restored old copy is the
    // rollback that remains out of reach (README, security model).
    let mut relabelled = meta.clone();
    relabelled["version"] = json!(1);
    relabelled.as_object_mut().unwrap().remove("mac");
    std::fs::write(
        setup.path("session-vault.json"),
        serde_json::to_vec_pretty(&relabelled).unwrap(),
    )
    .unwrap();
    assert_eq!(F::open(&setup).err().as_deref(), Some("corrupted"));
    std::fs::write(setup.path("session-vault.json"), &v1).unwrap();
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 3);
}

/// A store written with metadata version 2 (records of format 1) is upgraded: every
/// record rewritten bound to the store and its version, then metadata version 3.
pub fn version_2_stores_are_upgraded_and_every_record_rewritten<F: Front>() {
    let mut setup = Setup::new();
    let mut front: F = upgrade_fixture(&mut setup, "v2-store");
    let prefix = format!("v2-{}-", setup.backend.name());
    // Removed and the rest read again across a reopen, under the new format only.
    front.delete(&format!("{prefix}2")).unwrap();
    drop(front);
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 2);
    assert_eq!(front.get(&format!("{prefix}2")).unwrap(), None);
    let report = front.check().unwrap();
    assert_eq!(
        (&report["live"], &report["quarantined"]),
        (&json!(2), &json!(0)),
        "{report}"
    );
}
