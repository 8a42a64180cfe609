//! Open's recovery of a damaged log: the input, split in two, becomes a closed segment
//! (with the second half as its hint) and the newest segment of a real store directory.
//! Open must not panic, must cut or quarantine what it cannot read, and every id it then
//! lists must read back (or be `corrupted`, never a panic or a wrong length).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_vault_guest::{Backend, Durability, Log, StdDir};

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    std::fs::create_dir(&log).unwrap();
    let (first, second) = data.split_at(data.len() / 2);
    std::fs::write(log.join("0000000000000001.seg"), first).unwrap();
    std::fs::write(log.join("0000000000000001.hint"), second).unwrap();
    std::fs::write(log.join("0000000000000002.seg"), second).unwrap();
    let Ok(mut opened) = Log::open(StdDir::new(tmp.path()), Durability::Relaxed) else {
        return;
    };
    let listing = opened.list().unwrap();
    for id in &listing.ids {
        let _ = opened.read(id, 1 << 20);
    }
    for id in &listing.stamps {
        let _ = opened.read_stamp(id);
    }
    drop(opened);
    // A second open finds a clean log: nothing more to cut or quarantine.
    let mut again = Log::open(StdDir::new(tmp.path()), Durability::Relaxed).unwrap();
    assert_eq!(again.list().unwrap().ids, listing.ids);
});
