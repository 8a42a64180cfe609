//! Rollback and replay, as an attacker who can write the store directory but lacks the key
//! would try them, through every front and on both backends: an older copy of a session
//! put back, a removed session brought back, a record of another store under the same key
//! slipped in, and the version ledger removed, edited or damaged. None of them may be served;
//! each is refused (`corrupted`, quarantined, counted by `check`) and nothing is deleted.

use serde_json::{Value, json};
use session_vault::BackendKind;

use crate::cases::{MINUTE, doc, open, while_closed};
use crate::front::{Front, Setup, T0, TestSecret, names};

const RECORD_HEADER: usize = 22;
const PUT: u8 = 1;

/// What an attacker copies out of a store to put back later: a session file, or a log
/// put record.
struct Copy(Vec<u8>);

/// The newest segment of a `log` store.
fn newest_segment(setup: &Setup) -> std::path::PathBuf {
    let segments: Vec<String> = names(&setup.path("log"))
        .into_iter()
        .filter(|name| name.ends_with(".seg"))
        .collect();
    setup.path("log").join(segments.last().expect("a segment"))
}

/// (offset, length, kind, sequence number, id) of every record in a segment, as
/// `docs/FORMAT.md` lays them out.
fn records(bytes: &[u8]) -> Vec<(usize, usize, u8, u64, String)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos + RECORD_HEADER <= bytes.len() && bytes[pos..pos + 4] == *b"SVLR" {
        let id_len = usize::from(bytes[pos + 5]);
        let payload = u32::from_le_bytes(bytes[pos + 6..pos + 10].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(bytes[pos + 10..pos + 18].try_into().unwrap());
        let len = RECORD_HEADER + id_len + payload;
        let id = &bytes[pos + RECORD_HEADER..pos + RECORD_HEADER + id_len];
        found.push((
            pos,
            len,
            bytes[pos + 4],
            seq,
            String::from_utf8(id.to_vec()).unwrap(),
        ));
        pos += len;
    }
    found
}

/// Copies session `id` as it is on disk now (the store is closed).
fn copy(setup: &Setup, id: &str) -> Copy {
    match setup.backend {
        BackendKind::Log => {
            let bytes = std::fs::read(newest_segment(setup)).unwrap();
            let (offset, len, ..) = records(&bytes)
                .into_iter()
                .rfind(|r| r.2 == PUT && r.4 == id)
                .expect("a put of the session");
            Copy(bytes[offset..offset + len].to_vec())
        }
        _ => Copy(std::fs::read(setup.path(&format!("{id}.svs"))).unwrap()),
    }
}

/// Puts `copy` of session `id` back (the store is closed): over its file, or appended to
/// the newest segment as the latest record, with a higher sequence number and the CRC
/// recomputed, so the log itself sees nothing wrong.
fn put_back(setup: &Setup, id: &str, copy: &Copy) {
    match setup.backend {
        BackendKind::Log => {
            let path = newest_segment(setup);
            let mut bytes = std::fs::read(&path).unwrap();
            let next = records(&bytes).iter().map(|r| r.3).max().unwrap_or(0) + 1;
            let mut record = copy.0.clone();
            record[10..18].copy_from_slice(&next.to_le_bytes());
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&record[4..18]);
            hasher.update(&record[RECORD_HEADER..]);
            record[18..22].copy_from_slice(&hasher.finalize().to_le_bytes());
            bytes.extend_from_slice(&record);
            std::fs::write(&path, bytes).unwrap();
        }
        _ => std::fs::write(setup.path(&format!("{id}.svs")), &copy.0).unwrap(),
    }
}

fn quarantined(report: &Value) -> (&Value, &Value) {
    (&report["live"], &report["quarantined"])
}

pub fn an_older_copy_put_back_is_refused_not_served<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("s2", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut old: Option<Copy> = None;
    let mut front = while_closed(front, &setup, || old = Some(copy(&setup, "s1")));
    let current = front
        .update("s1", &json!({"sessionToken": "tok-rotated"}))
        .unwrap();
    let mut front = while_closed(front, &setup, || {
        put_back(&setup, "s1", old.as_ref().unwrap())
    });
    assert_eq!(
        front.get("s1").unwrap(),
        None,
        "the older copy is not served"
    );
    assert_ne!(current["sessionToken"], doc("s1", "u1", 0)["sessionToken"]);
    let report = front.check().unwrap();
    assert_eq!(quarantined(&report), (&json!(1), &json!(1)), "{report}");
    assert!(front.get("s2").unwrap().is_some(), "the rest is untouched");
    // The id is free again, and a new session there is the latest version from now on.
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut front = while_closed(front, &setup, || {});
    assert!(front.get("s1").unwrap().is_some());
}

/// While the store is open too: the file of a session replaced under it by an older copy
/// is refused at the next read (`files`; the log reads only the records it appended).
pub fn an_older_copy_put_back_while_open_is_corrupted<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    let old = std::fs::read(setup.path("s1.svs")).unwrap();
    front
        .update("s1", &json!({"sessionToken": "tok-rotated"}))
        .unwrap();
    std::fs::write(setup.path("s1.svs"), &old).unwrap();
    // A front that keeps the store open meets it on read; one that reopens per
    // operation quarantines it at open.
    let expected = if F::REOPENS {
        Ok(None)
    } else {
        Err("corrupted".to_owned())
    };
    assert_eq!(front.get("s1"), expected);
    assert_eq!(front.get("s1").unwrap(), None, "reported once, then absent");
    assert_eq!(
        names(&setup.path("quarantine")).len(),
        1,
        "kept, not deleted"
    );
}

pub fn a_removed_session_put_back_is_refused_not_served<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("gone", "u1", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("kept", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut old = None;
    let mut front = while_closed(front, &setup, || old = Some(copy(&setup, "gone")));
    assert!(front.delete("gone").unwrap());
    let mut front = while_closed(front, &setup, || {
        put_back(&setup, "gone", old.as_ref().unwrap())
    });
    assert_eq!(front.get("gone").unwrap(), None);
    assert_eq!(front.count().unwrap(), 1);
    let report = front.check().unwrap();
    assert_eq!(quarantined(&report), (&json!(1), &json!(1)), "{report}");
}

/// Two stores under the same raw key do not accept each other's records: each record
/// names its store.
pub fn a_record_of_another_store_under_the_same_key_is_refused<F: Front>() {
    let mut a = Setup::new();
    let mut b = Setup::new();
    a.secret = TestSecret::Raw([0x61; 32]);
    b.secret = a.secret.clone();
    let mut front_a: F = open(&a);
    let mut front_b: F = open(&b);
    front_a
        .create(&doc("shared", "u1", T0 + 60 * MINUTE))
        .unwrap();
    front_b.create(&doc("own", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut foreign = None;
    drop(while_closed(front_a, &a, || {
        foreign = Some(copy(&a, "shared"))
    }));
    let mut front_b = while_closed(front_b, &b, || {
        put_back(&b, "shared", foreign.as_ref().unwrap());
    });
    assert_eq!(
        front_b.get("shared").unwrap(),
        None,
        "A's session is not B's"
    );
    let report = front_b.check().unwrap();
    assert_eq!(quarantined(&report), (&json!(1), &json!(1)), "{report}");
}

/// The ledger is what says which versions are current: without it, or with its snapshot
/// edited, the store refuses to open (`corrupted`) and changes nothing; a damaged frame
/// is not fatal (each frame stands alone) and the damaged generation is quarantined; a
/// torn last frame is what a crash leaves, and is written over.
pub fn a_missing_or_edited_ledger_refuses_to_open_and_changes_nothing<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for i in 0..4 {
        front
            .create(&doc(&format!("s{i}"), "u1", T0 + 60 * MINUTE))
            .unwrap();
    }
    drop(front);
    let ledger = setup.path(&setup.ledger_name());
    let original = std::fs::read(&ledger).unwrap();
    // One snapshot block (a small store): header 30 bytes, then length, nonce, sealed.
    assert_eq!(u32::from_le_bytes(original[26..30].try_into().unwrap()), 1);
    let block_len = u32::from_le_bytes(original[30..34].try_into().unwrap()) as usize;
    let frames_at = 30 + 16 + block_len;
    let frame_len = (original.len() - frames_at) / 4;
    assert_eq!((original.len() - frames_at) % 4, 0, "four whole frames");
    let refused = |edit: &dyn Fn(&mut Vec<u8>), what: &str| {
        let mut bytes = original.clone();
        edit(&mut bytes);
        std::fs::write(&ledger, &bytes).unwrap();
        let before = crate::metadata::snapshot(&setup.dir);
        assert_eq!(
            F::open(&setup).err().as_deref(),
            Some("corrupted"),
            "{what}"
        );
        assert_eq!(
            crate::metadata::snapshot(&setup.dir),
            before,
            "{what}: disk changed"
        );
    };
    refused(&|b| b[40] ^= 1, "snapshot byte flipped");
    refused(&|b| b[5] ^= 1, "generation relabelled");
    refused(&|b| b.truncate(frames_at - 1), "cut inside the snapshot");
    refused(
        &|b| b[30..34].copy_from_slice(&u32::MAX.to_le_bytes()),
        "huge block",
    );
    refused(&|b| b[17] ^= 1, "floor edited");
    refused(&|b| b[26] = 2, "a block claimed that is not there");
    std::fs::remove_file(&ledger).unwrap();
    let before = crate::metadata::snapshot(&setup.dir);
    assert_eq!(
        F::open(&setup).err().as_deref(),
        Some("corrupted"),
        "removed"
    );
    assert_eq!(
        crate::metadata::snapshot(&setup.dir),
        before,
        "removed: disk changed"
    );
    // A torn last frame: opens, nothing quarantined.
    std::fs::write(&ledger, &original[..original.len() - frame_len / 2]).unwrap();
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 4);
    let report = front.check().unwrap();
    assert_eq!(quarantined(&report), (&json!(4), &json!(0)), "{report}");
    drop(front);
    // A damaged frame among good ones: opens, and that generation goes to quarantine/.
    let mut damaged = std::fs::read(&ledger).unwrap();
    damaged[frames_at + frame_len + 20] ^= 1;
    std::fs::write(&ledger, &damaged).unwrap();
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 4);
    assert!(!ledger.exists(), "a new generation replaced it");
    let kept = names(&setup.path("quarantine"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("session-vault.0000000000000001.ledger."));
    drop(front);
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 4);
}
