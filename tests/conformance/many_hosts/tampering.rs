//! Foreign keys and tampered values under the store's prefix.

use std::time::Duration;

use session_vault::VaultOptions;

use crate::front::{Setup, T0, raw_connection, redis_url, unique_prefix};

use super::{host, kind, refused, session};

/// What an attacker with access to the server (not the key) can do under the store's
/// prefix, and what the store makes of it: foreign keys are counted, never read or
/// removed; an edited, truncated or swapped record is `corrupted` and quarantined; an
/// index entry naming another user's session or a record that is not there is not
/// obeyed; `check` drops what no record backs; edited metadata refuses to open.
pub fn foreign_keys_and_tampered_values_are_refused() {
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let prefix = unique_prefix();
    let mut vault = host(&setup, &url, &prefix, Duration::from_secs(2));
    for (id, user) in [
        ("a1", "alice"),
        ("a2", "alice"),
        ("b1", "bob"),
        ("b2", "bob"),
    ] {
        vault.create(&session(id, user)).unwrap();
    }
    let mut redis = raw_connection(&url);
    let key = |name: &str| format!("{{{prefix}}}:{name}");
    let set = |redis: &mut redis::Connection, name: &str, value: &[u8]| {
        redis::cmd("SET")
            .arg(key(name))
            .arg(value)
            .query::<()>(redis)
            .unwrap();
    };
    let get = |redis: &mut redis::Connection, name: &str| -> Option<Vec<u8>> {
        redis::cmd("GET").arg(key(name)).query(redis).unwrap()
    };
    // Foreign keys: names the store never writes, and session-like names with bad ids.
    for name in ["foreign", "s:../etc", "s:", "u:alice", "x2"] {
        set(&mut redis, name, b"not ours");
    }
    // One byte of a1's record flipped; b1's record put under b2's name; a2 truncated.
    let mut a1 = get(&mut redis, "s:a1").unwrap();
    let last = a1.len() - 1;
    a1[last] ^= 1;
    set(&mut redis, "s:a1", &a1);
    let b1 = get(&mut redis, "s:b1").unwrap();
    set(&mut redis, "s:b2", &b1);
    let a2 = get(&mut redis, "s:a2").unwrap();
    set(&mut redis, "s:a2", &a2[..a2.len() / 2]);
    // The expiry index claims sessions that are not there, one of them not even UTF-8;
    // a key that is not UTF-8 sits beside the store's.
    redis::cmd("ZADD")
        .arg(key("x"))
        .arg(T0 + 9_000_000)
        .arg("ghost")
        .arg(1)
        .arg(&b"\xff\xfe"[..])
        .query::<()>(&mut redis)
        .unwrap();
    let mut binary = key("s:").into_bytes();
    binary.extend_from_slice(b"\xff");
    redis::cmd("SET")
        .arg(binary)
        .arg("x")
        .query::<()>(&mut redis)
        .unwrap();

    for id in ["a1", "a2", "b2"] {
        let error = vault.get(id).unwrap_err();
        assert_eq!(kind(&error), "corrupted", "{id}: {error}");
        assert_eq!(vault.get(id).unwrap(), None, "{id} was quarantined");
        assert!(
            get(&mut redis, &format!("q:{id}")).is_some(),
            "{id} kept in quarantine"
        );
    }
    assert_eq!(
        vault.get("b1").unwrap().unwrap().id(),
        "b1",
        "the record that was copied is untouched"
    );
    let report = vault.check().unwrap();
    assert_eq!(
        (report.live, report.quarantined, report.foreign),
        (1, 3, 5),
        "{report:?}"
    );
    assert_eq!(vault.count().unwrap(), 1, "check dropped the ghost entries");
    assert_eq!(vault.cleanup().unwrap(), 0);
    assert_eq!(vault.user_sessions("alice").unwrap(), Vec::new());
    assert_eq!(vault.user_sessions("bob").unwrap().len(), 1);
    // An index with no TTL (as check builds one it had to recreate): a short-lived
    // session added to it must not give the whole index its expiry (dropping b1 early).
    let indexes: Vec<String> = redis::cmd("KEYS")
        .arg(key("u:*"))
        .query(&mut redis)
        .unwrap();
    for index in &indexes {
        redis::cmd("PERSIST")
            .arg(index)
            .query::<()>(&mut redis)
            .unwrap();
    }
    let mut short = session("b3", "bob");
    short.set_expires_at(T0 + 1_000);
    vault.create(&short).unwrap();
    let listed = vault.user_sessions("bob").unwrap();
    assert_eq!(listed.len(), 2);
    for index in indexes {
        let ttl: i64 = redis::cmd("PTTL").arg(&index).query(&mut redis).unwrap();
        assert_eq!(ttl, -1, "{index} keeps no TTL once rebuilt");
    }
    // Foreign keys are left alone by clear.
    vault.clear().unwrap();
    assert_eq!(
        get(&mut redis, "foreign").as_deref(),
        Some(&b"not ours"[..])
    );

    // Edited metadata: the store refuses to open and changes nothing.
    let meta = get(&mut redis, "meta").unwrap();
    let edited = String::from_utf8(meta.clone())
        .unwrap()
        .replacen("\"redis\"", "\"log\"", 1);
    set(&mut redis, "meta", edited.as_bytes());
    let edited_open = refused(
        VaultOptions::new()
            .clock(setup.clock.clone())
            .redis(&url)
            .prefix(&prefix)
            .open(&setup.dir, setup.secret.secret()),
    );
    assert_eq!(kind(&edited_open), "corrupted", "{edited_open}");
    assert_eq!(get(&mut redis, "meta").unwrap(), edited.as_bytes());
    // A wrong key is told apart from a damaged store.
    set(&mut redis, "meta", &meta);
    let wrong = refused(
        VaultOptions::new()
            .redis(&url)
            .prefix(&prefix)
            .open(&setup.dir, session_vault::Secret::RawKey(vec![9; 32])),
    );
    assert_eq!(kind(&wrong), "wrong-key", "{wrong}");
}
