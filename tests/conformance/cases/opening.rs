//! Cases of opening a store: wrong secrets and passphrases, missing metadata, the lock
//! and the directory's mode.

use serde_json::Value;

use crate::front::{Front, Setup, T0, TestSecret};

use super::{MINUTE, doc, open, reopen};

pub fn a_wrong_secret_fails_at_open_and_loses_nothing<F: Front>() {
    let mut setup = Setup::new();
    let mut front: F = open(&setup);
    let original = doc("s1", "u1", T0 + 60 * MINUTE);
    front.create(&original).unwrap();
    drop(front);
    let right = setup.secret.clone();
    setup.secret = TestSecret::Raw([0x43; 32]);
    assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    setup.secret = TestSecret::Phrase("a passphrase that is long enough, but wrong".into());
    assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    setup.secret = right;
    let mut front: F = open(&setup);
    assert_eq!(front.get("s1").unwrap(), Some(original));
}

pub fn passphrase_stores_reopen_and_reject_short_or_wrong_phrases<F: Front>() {
    let mut setup = Setup::new();
    setup.secret = TestSecret::Phrase("correct horse battery staple and then some".into());
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + 60 * MINUTE)).unwrap();
    let mut front = reopen(front, &setup);
    assert!(front.get("s1").unwrap().is_some());
    drop(front);
    let meta: Value = serde_json::from_slice(&setup.metadata()).unwrap();
    assert_eq!(meta["keys"][0]["kdf"]["type"], "scrypt");
    assert_eq!(
        meta["keys"][0]["kdf"]["salt"].as_str().map(str::len),
        Some(32)
    );
    setup.secret = TestSecret::Phrase("correct horse battery staple and then somE".into());
    assert_eq!(F::open(&setup).err(), Some("wrong-key".into()));
    setup.secret = TestSecret::Phrase("too short".into());
    assert_eq!(F::open(&setup).err(), Some("invalid-input".into()));
}

pub fn missing_metadata_beside_sessions_is_refused<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + MINUTE)).unwrap();
    drop(front);
    std::fs::remove_file(setup.path("session-vault.json")).unwrap();
    assert_eq!(F::open(&setup).err(), Some("corrupted".into()));
    assert!(setup.stored("s1"), "nothing is deleted or quarantined");
    std::fs::write(setup.path("session-vault.json"), b"{\"format\": 1").unwrap();
    assert_eq!(F::open(&setup).err(), Some("corrupted".into()));
}

pub fn a_second_opener_is_locked_out<F: Front>() {
    if !F::LOCKS {
        return;
    }
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + MINUTE)).unwrap();
    drop(front);
    let holder = session_vault::Vault::open(&setup.dir, setup.secret.secret()).unwrap();
    assert_eq!(F::open(&setup).err(), Some("locked".into()));
    drop(holder);
    let mut front: F = open(&setup);
    assert!(front.get("s1").unwrap().is_some());
}

pub fn the_store_directory_is_private<F: Front>() {
    use std::os::unix::fs::PermissionsExt;
    if !F::LOCKS {
        return; // The host creates the directory; the native core is given one.
    }
    let setup = Setup::new();
    std::fs::create_dir(&setup.dir).unwrap();
    std::fs::set_permissions(&setup.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut front: F = open(&setup);
    front.create(&doc("s1", "u1", T0 + MINUTE)).unwrap();
    let mode = std::fs::metadata(&setup.dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}
