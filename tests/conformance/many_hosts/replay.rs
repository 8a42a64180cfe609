//! Replay in Redis, as someone who can write to the server but lacks the key would try
//! it: a session's older sealed value put back with `RESTORE` (of a `DUMP` taken
//! earlier), and a removed session's. Both are refused by every host, also by one that
//! opens afterwards (a CLI process), quarantined and counted by `check`; a frame taken
//! out of the version ledger is counted by `check`; a deleted ledger snapshot refuses
//! the store.

use std::time::Duration;

use crate::front::{Setup, cli_command, raw_connection, redis_url, unique_prefix};

use super::{chain, host, kind, refused, session};

/// A stream entry as `XRANGE` answers it: its id and its fields.
type Frame = (String, Vec<(String, Vec<u8>)>);

pub fn a_value_put_back_in_redis_is_refused_by_every_host() {
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let prefix = unique_prefix();
    let mut writer = host(&setup, &url, &prefix, Duration::from_secs(5));
    let mut reader = host(&setup, &url, &prefix, Duration::from_secs(5));
    let mut redis = raw_connection(&url);
    let key = |name: &str| format!("{{{prefix}}}:{name}");
    let dump = |redis: &mut redis::Connection, name: &str| -> Vec<u8> {
        redis::cmd("DUMP").arg(key(name)).query(redis).unwrap()
    };
    let restore = |redis: &mut redis::Connection, name: &str, saved: &[u8]| {
        redis::cmd("RESTORE")
            .arg(key(name))
            .arg(0)
            .arg(saved)
            .arg("REPLACE")
            .query::<()>(redis)
            .unwrap();
    };

    // A session rolled back: the touch's count goes back to 0.
    writer.create(&session("rolled", "alice")).unwrap();
    let saved = dump(&mut redis, "s:rolled");
    writer.touch("rolled").unwrap();
    restore(&mut redis, "s:rolled", &saved);
    let error = reader.get("rolled").unwrap_err();
    assert_eq!(kind(&error), "corrupted", "{}", chain(&error));
    assert!(chain(&error).contains("put back"), "{}", chain(&error));
    assert_eq!(reader.get("rolled").unwrap(), None, "quarantined");
    let moved: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key("q:rolled"))
        .query(&mut redis)
        .unwrap();
    assert!(moved.is_some(), "kept in quarantine");

    // A session brought back after its logout, offered to a host that opens afterwards.
    writer.create(&session("gone", "alice")).unwrap();
    let saved = dump(&mut redis, "s:gone");
    assert!(writer.delete("gone").unwrap());
    restore(&mut redis, "s:gone", &saved);
    let output = cli_command(
        &setup,
        &["--redis", &url, "--prefix", &prefix, "get", "gone"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "corrupted: {stderr}");
    assert!(stderr.contains("removed"), "{stderr}");
    assert_eq!(writer.user_sessions("alice").unwrap(), Vec::new());

    // Put back once more, found by `check` of yet another host.
    restore(&mut redis, "s:gone", &saved);
    let mut late = host(&setup, &url, &prefix, Duration::from_secs(5));
    let report = late.check().unwrap();
    assert_eq!(report.newly_quarantined, ["gone"], "{report:?}");
    // q:rolled, q:gone, and gone again (its key in quarantine holds the latest copy).
    assert_eq!((report.live, report.quarantined), (0, 3), "{report:?}");
    assert_eq!(
        late.check().unwrap().quarantined,
        2,
        "the two keys in quarantine"
    );

    // A frame taken out of the ledger (the writer wrote after it): counted by check.
    let frames: Vec<Frame> = redis::cmd("XRANGE")
        .arg(key("l"))
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .unwrap();
    assert!(frames.len() >= 3, "{} frames", frames.len());
    redis::cmd("XDEL")
        .arg(key("l"))
        .arg(&frames[0].0)
        .query::<()>(&mut redis)
        .unwrap();
    let report = late.check().unwrap();
    assert_eq!(report.quarantined, 2 + 1, "the frame missing: {report:?}");

    // The ledger's snapshot deleted: no host opens the store.
    redis::cmd("DEL")
        .arg(key("ls"))
        .query::<()>(&mut redis)
        .unwrap();
    let opened = session_vault::VaultOptions::new()
        .clock(setup.clock.clone())
        .redis(&url)
        .prefix(&prefix)
        .open(&setup.dir, setup.secret.secret());
    let error = refused(opened);
    assert_eq!(kind(&error), "corrupted", "{}", chain(&error));
    assert!(chain(&error).contains("snapshot"), "{}", chain(&error));
}
