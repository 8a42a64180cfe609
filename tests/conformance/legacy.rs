//! Importing stores written by the original TypeScript `FileSessionStore`, from a copy of
//! the real store in `tests/fixtures/legacy-ts/` (written by the original code on Node 20).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::front::{Front, Imported, Setup};

/// The secret the fixture store was written with.
pub const SECRET: &str = "legacy-fixture-secret-0123456789-abcdefghij";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/legacy-ts");

/// A private copy of the fixture store, and what it held before the import.
struct Legacy {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Legacy {
    fn copy() -> Legacy {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("legacy");
        std::fs::create_dir(&dir).unwrap();
        for entry in std::fs::read_dir(Path::new(FIXTURE).join("store")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        Legacy { _tmp: tmp, dir }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.session"))
    }

    /// Every file's name and bytes, to show the import changed nothing.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }
}

fn expected() -> Vec<Value> {
    serde_json::from_slice(&std::fs::read(Path::new(FIXTURE).join("expected.json")).unwrap())
        .unwrap()
}

fn id(doc: &Value) -> &str {
    doc["sessionId"].as_str().unwrap()
}

fn is_expired(doc: &Value) -> bool {
    doc["expiresAt"] == json!(1_700_000_000_000u64)
}

fn clean(imported: usize, expired: usize, already_present: usize) -> Imported {
    Imported {
        imported,
        expired,
        already_present,
        failed: Vec::new(),
    }
}

pub fn legacy_import_brings_every_live_session_over_unchanged<F: Front>() {
    let setup = Setup::new();
    let legacy = Legacy::copy();
    let before = legacy.snapshot();
    let mut front: F = F::open(&setup).unwrap();
    assert_eq!(
        front.import_legacy(&legacy.dir, SECRET),
        Ok(clean(18, 2, 0))
    );
    let docs = expected();
    assert_eq!(docs.len(), 20);
    for doc in &docs {
        let found = front.get(id(doc)).unwrap();
        if is_expired(doc) {
            assert_eq!(found, None, "{} expired and was not imported", id(doc));
        } else {
            assert_eq!(
                found.as_ref(),
                Some(doc),
                "{} is exactly the original document",
                id(doc)
            );
        }
    }
    for user in ["user-0", "user-1", "user-2"] {
        let live: Vec<&Value> = docs
            .iter()
            .filter(|d| d["userContext"]["userId"] == user && !is_expired(d))
            .collect();
        assert_eq!(live.len(), 6, "{user}");
        let listed = front.list(user).unwrap();
        assert_eq!(listed.len(), 6, "{user}");
        assert!(listed.iter().all(|d| live.contains(&d)), "{user}");
    }
    assert_eq!(front.count().unwrap(), 18);
    assert_eq!(
        legacy.snapshot(),
        before,
        "the legacy directory is never modified"
    );
}

pub fn legacy_import_run_again_imports_nothing_twice<F: Front>() {
    let setup = Setup::new();
    let legacy = Legacy::copy();
    let mut front: F = F::open(&setup).unwrap();
    assert_eq!(
        front.import_legacy(&legacy.dir, SECRET),
        Ok(clean(18, 2, 0))
    );
    let first = id(&expected()[0]).to_owned();
    let changed = front
        .update(&first, &json!({"sessionToken": "changed after import"}))
        .unwrap();
    assert_eq!(
        front.import_legacy(&legacy.dir, SECRET),
        Ok(clean(0, 2, 18))
    );
    assert_eq!(
        front.get(&first).unwrap(),
        Some(changed),
        "a re-run overwrites nothing"
    );
    assert_eq!(front.count().unwrap(), 18);
}

pub fn legacy_import_with_a_wrong_secret_writes_nothing<F: Front>() {
    let setup = Setup::new();
    let legacy = Legacy::copy();
    let mut front: F = F::open(&setup).unwrap();
    let wrong = "legacy-fixture-secret-0123456789-abcdefghiJ";
    assert_eq!(
        front.import_legacy(&legacy.dir, wrong),
        Err("wrong-key".into())
    );
    assert_eq!(
        front.import_legacy(&legacy.dir, "short"),
        Err("invalid-input".into())
    );
    assert_eq!(front.count().unwrap(), 0);
    setup.assert_nothing_written();
}

pub fn legacy_import_reports_damaged_and_mismatched_files<F: Front>() {
    let setup = Setup::new();
    let legacy = Legacy::copy();
    let docs = expected();
    let (flipped, truncated, moved, renamed) =
        (id(&docs[0]), id(&docs[1]), id(&docs[2]), "s999999-renamed");
    let mut text = std::fs::read(legacy.path(flipped)).unwrap();
    let last = text.len() - 1;
    text[last] = if text[last] == b'0' { b'1' } else { b'0' };
    std::fs::write(legacy.path(flipped), &text).unwrap();
    let text = std::fs::read(legacy.path(truncated)).unwrap();
    std::fs::write(legacy.path(truncated), &text[..40]).unwrap();
    std::fs::rename(legacy.path(moved), legacy.path(renamed)).unwrap();
    std::fs::write(legacy.dir.join("notes.txt"), b"not a session").unwrap();
    let before = legacy.snapshot();

    let mut front: F = F::open(&setup).unwrap();
    let report = front.import_legacy(&legacy.dir, SECRET).unwrap();
    assert_eq!(
        (report.imported, report.expired, report.already_present),
        (15, 2, 0)
    );
    let reasons: Vec<(&str, &str)> = report
        .failed
        .iter()
        .map(|(f, r)| (f.as_str(), r.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    let reason = |file: String| {
        reasons
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, r)| *r)
            .unwrap_or_else(|| panic!("{file} is not reported: {reasons:?}"))
    };
    assert!(reason(format!("{flipped}.session")).contains("authenticated decryption failed"));
    assert!(reason(format!("{truncated}.session")).contains("shorter than the 32-byte IV and tag"));
    assert!(reason(format!("{renamed}.session")).contains("imported under neither"));
    for absent in [flipped, truncated, moved, renamed] {
        assert_eq!(front.get(absent).unwrap(), None, "{absent}");
    }
    assert_eq!(front.count().unwrap(), 15);
    assert_eq!(
        legacy.snapshot(),
        before,
        "the legacy directory is never modified"
    );
}
