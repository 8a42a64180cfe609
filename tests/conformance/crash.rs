//! `rekey` killed with SIGKILL at several points, then run again: nothing is lost.
//! (The general crash harness is a later issue; this guards rekey's atomic rewrites.)

use std::process::{Command, Stdio};
use std::time::Duration;

use session_vault::{Session, VaultOptions};

use crate::cases::doc;
use crate::front::{Setup, T0, TestSecret, names};

#[test]
fn rekey_killed_midway_and_run_again_loses_nothing() {
    let setup = Setup::new();
    let options = VaultOptions::new().clock(setup.clock.clone());
    let mut vault = options.open(&setup.dir, setup.secret.secret()).unwrap();
    let docs: Vec<Session> = (0..400)
        .map(|i| serde_json::from_value(doc(&format!("s{i:03}"), "u", T0 + 3_600_000)).unwrap())
        .collect();
    for d in &docs {
        vault.create(d).unwrap();
    }
    let second = TestSecret::Raw([0x46; 32]);
    assert_eq!(vault.add_key(&second.secret()).unwrap(), 2);
    drop(vault);

    // Kill later and later until a run finishes on its own; every kill must leave all
    // 400 sessions readable, and at least one must land in the middle of the rekey.
    let mut under_new_key = Vec::new();
    let mut delay = 20;
    for _ in 0..60 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_session-vault"))
            .arg("--dir")
            .arg(&setup.dir)
            .arg("rekey")
            .env("SESSION_VAULT_SECRET", second.text())
            .env("SESSION_VAULT_NOW", T0.to_string())
            .env("SESSION_VAULT_CACHE_DIR", crate::front::compiled_cache())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let finished = child.try_wait().unwrap().is_some();
        // SIGKILL: no destructor, no flush, wherever the process is.
        let _ = child.kill();
        child.wait().unwrap();
        let mut vault = options.open(&setup.dir, second.secret()).unwrap();
        assert_eq!(vault.count().unwrap(), 400, "killed after {delay} ms");
        let keys = vault.keys().unwrap();
        let rekeyed = keys.iter().find(|k| k.id == 2).map_or(0, |k| k.sessions);
        under_new_key.push(rekeyed);
        if finished || rekeyed == 400 {
            break;
        }
        delay += 30;
    }
    eprintln!("sessions under the new key after each kill: {under_new_key:?}");
    assert!(
        under_new_key.iter().any(|n| (1..400).contains(n)),
        "no kill landed in the middle of the rekey: {under_new_key:?}"
    );
    let mut vault = options.open(&setup.dir, second.secret()).unwrap();
    for d in &docs {
        assert_eq!(vault.get(d.id()).unwrap().as_ref(), Some(d));
    }
    vault.rekey(|_, _| {}).unwrap();
    let keys = vault.keys().unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.id, k.sessions)).collect::<Vec<_>>(),
        vec![(1, 0), (2, 400)]
    );
    vault.retire_key(1).unwrap();
    drop(vault);
    let mut vault = options.open(&setup.dir, second.secret()).unwrap();
    for d in &docs {
        assert_eq!(vault.get(d.id()).unwrap().as_ref(), Some(d));
    }
    // The default backend: segments and hints under log/, nothing else.
    assert_eq!(
        names(&setup.dir),
        vec![
            "log".to_owned(),
            setup.ledger_name(),
            "session-vault.json".to_owned()
        ]
    );
    let leftovers: Vec<String> = names(&setup.dir.join("log"))
        .into_iter()
        .filter(|n| !n.ends_with(".seg") && !n.ends_with(".hint"))
        .collect();
    assert_eq!(
        leftovers,
        Vec::<String>::new(),
        "no temporary file survives a reopen"
    );
}
