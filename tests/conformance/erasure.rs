//! Erasure: what is deleted, rekeyed or retired is gone from every file of the store, not
//! only from the index. Checked with the key itself: a scan tries to open every sealed
//! record in every file (segments, hints, session files, stamps, metadata, quarantine,
//! temporary files) under the key, for every id the test used.

use std::path::Path;

use session_vault::Erase;
use session_vault_guest::testing::crypto::Key;
use session_vault_guest::testing::format::{self, Kind, MAGIC, Scope, VERSION, VERSION_1};

use crate::cases::{MINUTE, doc, open};
use crate::front::{Front, Setup, T0, TestSecret};

/// The longest sealed record the scan tries: the test documents seal to under 2 KiB.
const MAX_RECORD: usize = 4096;

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let name = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                out.push((name, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The records under `dir` that open under `key` (as key id `key_id`) for one of `ids`:
/// (file, offset, kind, id).
fn opened(dir: &Path, key: &Key, key_id: u32, ids: &[&str]) -> Vec<(String, usize, u8, String)> {
    opened_in(files(dir), key, key_id, ids)
}

/// The scope of the store whose files are `files`: its id from its metadata, and
/// format-v1 records read too (the scan looks for every record, of any age).
fn scope_of(files: &[(String, Vec<u8>)]) -> Scope {
    let mut store_id = [0; format::STORE_ID_LEN];
    let meta = files.iter().find(|(name, _)| name == "session-vault.json");
    if let Some((_, bytes)) = meta {
        let json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        if let Some(id) = json["storeId"].as_str() {
            hex::decode_to_slice(id, &mut store_id).unwrap();
        }
    }
    Scope {
        store_id,
        read_v1: true,
    }
}

/// The records in `files` (name, bytes) that open under `key` for one of `ids`.
pub fn opened_in(
    files: Vec<(String, Vec<u8>)>,
    key: &Key,
    key_id: u32,
    ids: &[&str],
) -> Vec<(String, usize, u8, String)> {
    let scope = scope_of(&files);
    let mut found = Vec::new();
    for (name, bytes) in files {
        for start in 0..bytes.len() {
            let Some(header) = bytes.get(start..start + 10) else {
                break;
            };
            if header[..4] != MAGIC || !matches!(header[4], VERSION | VERSION_1) {
                continue;
            }
            if u32::from_le_bytes(header[6..10].try_into().unwrap()) != key_id {
                continue;
            }
            let kind = match header[5] {
                1 => Kind::Session,
                2 => Kind::Access,
                3 => Kind::Summary,
                _ => continue,
            };
            // The record's length is not in its header: try every end.
            let last = bytes.len().min(start + MAX_RECORD);
            'ends: for end in start + format::MIN_LEN..=last {
                for id in ids {
                    let record = &bytes[start..end];
                    let opened =
                        format::decode(record, kind, &scope, id, |k| (k == key_id).then_some(key));
                    if opened.is_ok() {
                        found.push((name.clone(), start, header[5], id.to_string()));
                        break 'ends;
                    }
                }
            }
        }
    }
    found
}

fn raw(byte: u8) -> (TestSecret, Key) {
    (
        TestSecret::Raw([byte; 32]),
        Key::from_raw(&[byte; 32]).unwrap(),
    )
}

/// Whether any file name or content under `dir` holds `id` in plain text.
fn named(dir: &Path, id: &str) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(name, bytes)| {
            name.contains(id) || bytes.windows(id.len()).any(|w| w == id.as_bytes())
        })
        .map(|(name, _)| name)
        .collect()
}

pub fn after_rekey_and_retire_no_record_opens_under_the_retired_key<F: Front>() {
    let setup = Setup::new();
    let (_, old) = raw(0x42);
    let mut front: F = open(&setup);
    let ids = ["erase-a", "erase-b", "erase-c"];
    for id in ids {
        front.create(&doc(id, "alice", T0 + 60 * MINUTE)).unwrap();
    }
    let touched = front.touch("erase-a").unwrap().unwrap();
    front
        .update(
            "erase-b",
            &serde_json::json!({"userContext": {"name": "v2"}}),
        )
        .unwrap();
    front.delete("erase-c").unwrap();
    assert!(
        !opened(&setup.dir, &old, 1, &ids).is_empty(),
        "the scan finds records"
    );
    let (new_secret, new) = raw(0x43);
    assert_eq!(front.add_key(&new_secret).unwrap(), 2);
    assert_eq!(front.rekey().unwrap(), 2);
    let before = front.check().unwrap();
    let log = setup.backend == session_vault::BackendKind::Log;
    // The files backend unlinks what rekey replaced; the log keeps it until compaction.
    assert_eq!(before["oldestKey"], if log { 1 } else { 2 }, "{before}");
    // The scan sees what it looks for: the old versions and the stamp are still there.
    if log {
        assert!(!opened(&setup.dir, &old, 1, &ids).is_empty());
    }
    front.retire_key(1).unwrap();
    assert_eq!(opened(&setup.dir, &old, 1, &ids), Vec::new());
    let after = front.check().unwrap();
    assert_eq!(
        (after["oldestKey"].clone(), after["deadBytes"].clone()),
        (2.into(), 0.into())
    );
    // What is left opens under the new key, whole.
    let under_new = opened(&setup.dir, &new, 2, &ids);
    assert!(
        under_new
            .iter()
            .any(|(_, _, kind, id)| *kind == 1 && id == "erase-a")
    );
    assert_eq!(
        front.get("erase-a").unwrap().unwrap()["security"]["accessCount"],
        touched["security"]["accessCount"]
    );
    assert_eq!(
        front.get("erase-b").unwrap().unwrap()["userContext"]["name"],
        "v2"
    );
    assert_eq!(front.get("erase-c").unwrap(), None);
}

pub fn retire_refuses_while_quarantine_holds_files<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front
        .create(&doc("q-a", "alice", T0 + 60 * MINUTE))
        .unwrap();
    let (new_secret, _) = raw(0x43);
    front.add_key(&new_secret).unwrap();
    front.rekey().unwrap();
    std::fs::create_dir_all(setup.path("quarantine")).unwrap();
    std::fs::write(setup.path("quarantine/q-b.svs.0123456789abcdef"), b"SVLT").unwrap();
    assert_eq!(front.retire_key(1), Err("invalid-input".to_string()));
    std::fs::remove_file(setup.path("quarantine/q-b.svs.0123456789abcdef")).unwrap();
    front.retire_key(1).unwrap();
}

pub fn removed_sessions_leave_no_record_after_compact<F: Front>() {
    let setup = Setup::new();
    let (_, key) = raw(0x42);
    let mut front: F = open(&setup);
    front
        .create(&doc("gone-a", "alice", T0 + 60 * MINUTE))
        .unwrap();
    front
        .create(&doc("gone-b", "bob", T0 + 60 * MINUTE))
        .unwrap();
    front.create(&doc("gone-c", "carol", T0 + MINUTE)).unwrap();
    front
        .create(&doc("kept-d", "dave", T0 + 60 * MINUTE))
        .unwrap();
    front.delete("gone-a").unwrap();
    front.revoke_user("bob").unwrap();
    front
        .update(
            "kept-d",
            &serde_json::json!({"userContext": {"name": "v2"}}),
        )
        .unwrap();
    let log = setup.backend == session_vault::BackendKind::Log;
    if log {
        // Deferred: the records are still in the log until it is compacted.
        assert!(!opened(&setup.dir, &key, 1, &["gone-a"]).is_empty());
        assert!(front.check().unwrap()["deadBytes"].as_u64().unwrap() > 0);
    }
    let reclaimed = front.compact().unwrap();
    assert_eq!(reclaimed > 0, log, "{reclaimed}");
    // Expired, then removed by cleanup (which compacts too).
    setup.clock.set(T0 + MINUTE);
    assert_eq!(front.cleanup().unwrap(), 1);
    for id in ["gone-a", "gone-b", "gone-c"] {
        assert_eq!(opened(&setup.dir, &key, 1, &[id]), Vec::new(), "{id}");
        assert_eq!(named(&setup.dir, id), Vec::<String>::new(), "{id}");
    }
    // Of kept-d only its latest version is left: one session record.
    let left: Vec<_> = opened(&setup.dir, &key, 1, &["kept-d"])
        .into_iter()
        .filter(|(_, _, kind, _)| *kind == 1)
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(front.check().unwrap()["deadBytes"], 0);
    assert_eq!(front.compact().unwrap(), 0, "nothing left to compact");
}

pub fn immediate_erase_leaves_no_record_of_removed_sessions<F: Front>() {
    let mut setup = Setup::new();
    setup.erase = Erase::Immediate;
    let (_, key) = raw(0x42);
    let mut front: F = open(&setup);
    for (id, user) in [("now-a", "alice"), ("now-b", "alice"), ("now-c", "bob")] {
        front.create(&doc(id, user, T0 + 60 * MINUTE)).unwrap();
    }
    front.create(&doc("now-x", "carol", T0 + MINUTE)).unwrap();
    front.delete("now-a").unwrap();
    assert_eq!(opened(&setup.dir, &key, 1, &["now-a"]), Vec::new());
    assert_eq!(named(&setup.dir, "now-a"), Vec::<String>::new());
    front.revoke_user("bob").unwrap();
    assert_eq!(named(&setup.dir, "now-c"), Vec::<String>::new());
    setup.clock.set(T0 + MINUTE);
    assert_eq!(front.cleanup().unwrap(), 1);
    assert_eq!(named(&setup.dir, "now-x"), Vec::<String>::new());
    front.clear().unwrap();
    assert_eq!(opened(&setup.dir, &key, 1, &["now-b"]), Vec::new());
    assert_eq!(named(&setup.dir, "now-b"), Vec::<String>::new());
    assert_eq!(front.check().unwrap()["deadBytes"], 0);
}

/// Every file 0600 and every directory 0700, for the fronts that make them so: the CLI
/// (its umask) and the native core (its own modes). The library leaves file modes to the
/// embedding process's umask inside a 0700 directory (README, security model).
pub fn files_are_0600_and_directories_0700<F: Front>() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for id in ["m-a", "m-b"] {
        front.create(&doc(id, "alice", T0 + 60 * MINUTE)).unwrap();
    }
    front.touch("m-a").unwrap();
    drop(front);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&setup.dir), 0o700);
    if !F::PRIVATE_FILES {
        return;
    }
    let mut stack = vec![setup.dir.clone()];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 2, "{seen} files");
}
