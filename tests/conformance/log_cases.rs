//! Cases of the `log` backend's own layout: damage inside segments, torn appends,
//! foreign entries, no plaintext — through every front, like the `files` cases.

use serde_json::json;

use crate::cases::{MINUTE, doc, ids, open, while_closed};
use crate::front::{Front, Setup, T0};

const HEADER: usize = 22;

/// The first segment of a store.
fn segment(setup: &Setup) -> std::path::PathBuf {
    setup.path("log/0000000000000001.seg")
}

/// (offset, length, id) of every record in a segment, as the format documents them.
fn records(bytes: &[u8]) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos + HEADER <= bytes.len() {
        let id_len = usize::from(bytes[pos + 5]);
        let payload_len = u32::from_le_bytes(bytes[pos + 6..pos + 10].try_into().unwrap()) as usize;
        let len = HEADER + id_len + payload_len;
        let id = String::from_utf8(bytes[pos + HEADER..pos + HEADER + id_len].to_vec()).unwrap();
        found.push((pos, len, id));
        pos += len;
    }
    found
}

/// Recomputes a record's CRC after a test changed it on purpose.
fn reseal_crc(bytes: &mut [u8], offset: usize, len: usize) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[offset + 4..offset + 18]);
    hasher.update(&bytes[offset + HEADER..offset + len]);
    let crc = hasher.finalize().to_le_bytes();
    bytes[offset + 18..offset + 22].copy_from_slice(&crc);
}

pub fn log_a_damaged_record_is_quarantined_and_the_rest_survives<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for id in ["first", "bad", "last"] {
        front.create(&doc(id, "u1", T0 + 60 * MINUTE)).unwrap();
    }
    let mut damaged = Vec::new();
    let mut front = while_closed(front, &setup, || {
        let mut bytes = std::fs::read(segment(&setup)).unwrap();
        let (offset, len, id) = records(&bytes)[1].clone();
        assert_eq!(id, "bad");
        bytes[offset + len - 20] ^= 0x01;
        damaged = bytes[offset..offset + len].to_vec();
        std::fs::write(segment(&setup), &bytes).unwrap();
    });
    assert_eq!(front.get("bad").unwrap(), None);
    assert_eq!(ids(&front.list("u1").unwrap()), vec!["first", "last"]);
    let report = front.check().unwrap();
    assert_eq!(
        (&report["live"], &report["quarantined"]),
        (&json!(2), &json!(1))
    );
    let quarantine = setup.path("quarantine");
    let kept = crate::front::names(&quarantine);
    assert_eq!(kept.len(), 1);
    assert!(kept[0].starts_with("0000000000000001.seg.") && kept[0].ends_with(".damaged"));
    assert_eq!(
        std::fs::read(quarantine.join(&kept[0])).unwrap(),
        damaged,
        "kept byte for byte"
    );
    assert_eq!(
        front.create(&doc("bad", "u1", T0 + MINUTE)),
        Ok(()),
        "the id is free again"
    );
}

pub fn log_a_record_that_fails_to_decrypt_is_quarantined_once<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("kept", "u1", T0 + 60 * MINUTE)).unwrap();
    front
        .create(&doc("forged", "u1", T0 + 60 * MINUTE))
        .unwrap();
    // A changed ciphertext with a valid CRC: only the AEAD can tell.
    let mut front = while_closed(front, &setup, || {
        let mut bytes = std::fs::read(segment(&setup)).unwrap();
        let (offset, len, _) = records(&bytes)[1].clone();
        bytes[offset + len - 30] ^= 0x01;
        reseal_crc(&mut bytes, offset, len);
        std::fs::write(segment(&setup), &bytes).unwrap();
    });
    // Open indexes from the sealed summary and does not decrypt the session: the first
    // read does, reports it and quarantines it.
    assert_eq!(front.count().unwrap(), 2, "indexed from its summary");
    assert_eq!(front.get("forged"), Err("corrupted".to_owned()));
    assert_eq!(
        front.get("forged").unwrap(),
        None,
        "quarantined by that read"
    );
    assert!(front.get("kept").unwrap().is_some());
    let moved = crate::front::names(&setup.path("quarantine"));
    assert_eq!(moved.len(), 1);
    assert!(moved[0].starts_with("forged.svs."), "{moved:?}");
    assert_eq!(front.check().unwrap()["quarantined"], 1);
}

pub fn log_a_torn_append_is_cut_off_and_nothing_acknowledged_is_lost<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let documents: Vec<_> = (0..5)
        .map(|i| doc(&format!("s{i}"), "u1", T0 + 60 * MINUTE))
        .collect();
    for d in &documents {
        front.create(d).unwrap();
    }
    let mut whole = 0;
    let mut front = while_closed(front, &setup, || {
        let mut bytes = std::fs::read(segment(&setup)).unwrap();
        whole = bytes.len() as u64;
        // Half of a record that a crash interrupted.
        let (offset, len, _) = records(&bytes)[4].clone();
        let torn = bytes[offset..offset + len / 2].to_vec();
        bytes.extend_from_slice(&torn);
        std::fs::write(segment(&setup), &bytes).unwrap();
    });
    for d in &documents {
        assert_eq!(
            front
                .get(d["sessionId"].as_str().unwrap())
                .unwrap()
                .as_ref(),
            Some(d)
        );
    }
    assert_eq!(std::fs::metadata(segment(&setup)).unwrap().len(), whole);
    assert_eq!(front.check().unwrap()["quarantined"], 0);
    front.create(&doc("after", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut front = while_closed(front, &setup, || {});
    assert_eq!(front.count().unwrap(), 6);
}

pub fn log_segments_hold_no_plaintext_and_foreign_entries_are_left_alone<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let d = doc("s1", "user-with-a-name", T0 + 60 * MINUTE);
    front.create(&d).unwrap();
    front.touch("s1").unwrap();
    let mut front = while_closed(front, &setup, || {
        std::fs::write(setup.path("README"), b"notes").unwrap();
        std::fs::write(setup.path("log/notes.txt"), b"mine").unwrap();
        std::fs::write(setup.path("s9.svs"), b"not a log store's").unwrap();
    });
    let bytes = std::fs::read(segment(&setup)).unwrap();
    for needle in [
        "user-with-a-name",
        "tok-s1",
        "u1@example.org",
        "sessionToken",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is in the segment in plain text"
        );
    }
    let report = front.check().unwrap();
    assert_eq!(
        (&report["live"], &report["foreign"]),
        (&json!(1), &json!(3))
    );
    assert_eq!(front.get("s9").unwrap(), None);
    front.clear().unwrap();
    assert_eq!(std::fs::read(setup.path("README")).unwrap(), b"notes");
    assert_eq!(std::fs::read(setup.path("log/notes.txt")).unwrap(), b"mine");
    assert!(setup.path("s9.svs").exists());
}

/// Every read is bounded: a 2 GiB sparse segment (closed, without a hint) and another as
/// the newest segment are scanned chunk by chunk, never loaded. The store opens in a
/// one-shot CLI process under 64 MiB of peak RSS, keeps every session, copies at most
/// 1 MiB of the damaged stretch to `quarantine/`, and cuts the newest one's torn tail.
pub fn log_huge_sparse_segments_are_scanned_not_loaded<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    for id in ["big-a", "big-b", "big-c"] {
        front.create(&doc(id, "alice", T0 + 60 * MINUTE)).unwrap();
    }
    let front = while_closed(front, &setup, || {
        for name in ["0000000000000000.seg", "00000000000000ff.seg"] {
            let file = std::fs::File::create(setup.path(&format!("log/{name}"))).unwrap();
            file.set_len(2 << 30).unwrap();
        }
    });
    drop(front);
    let cli = crate::front::Cli::open(&setup).unwrap();
    let peak = setup.dir.with_extension("peak");
    let (code, stdout, stderr) = cli.run_raw(
        &["count"],
        None,
        &[("SESSION_VAULT_PEAK_RSS_FILE", peak.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["count"],
        3
    );
    let kib: u64 = std::fs::read_to_string(&peak)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
    let copies = std::fs::read_dir(setup.path("quarantine")).unwrap();
    let sizes: Vec<u64> = copies
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![1 << 20], "one bounded copy of the hole");
    let newest = std::fs::metadata(setup.path("log/00000000000000ff.seg")).unwrap();
    assert_eq!(newest.len(), 0, "the newest segment's torn tail is cut");
    let mut front: F = open(&setup);
    assert_eq!(
        ids(&front.list("alice").unwrap()),
        vec!["big-a", "big-b", "big-c"]
    );
}
