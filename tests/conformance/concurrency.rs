//! Concurrency: one `Vault` shared by 8 threads (as `Arc<Mutex<Vault>>`), each running
//! 10,000 random operations checked against its own model, ends in exactly the state the
//! models predict; and two processes on one directory never both hold it.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use session_vault::{Durability, Session, SessionPatch, StoreError, Vault, VaultOptions};

use crate::cases::doc;
use crate::front::{Setup, T0};
use crate::model::Rng;

const THREADS: u64 = 8;
const OPS: u64 = 10_000;
const IDS: u64 = 40;
const USERS: u64 = 5;

fn session(id: &str, user: u64) -> Session {
    serde_json::from_value(doc(id, &format!("user-{user}"), T0 + 3_600_000)).unwrap()
}

/// One thread's load on its own ids (users are shared by all threads); returns its model.
fn load(vault: &Mutex<Vault>, thread: u64) -> BTreeMap<String, Session> {
    let mut rng = Rng(0x5EED_0000 + thread);
    let mut model: BTreeMap<String, Session> = BTreeMap::new();
    let lock = || vault.lock().unwrap_or_else(PoisonError::into_inner);
    for step in 0..OPS {
        let k = rng.below(IDS);
        let id = format!("t{thread}-s{k}");
        let what = format!("thread {thread} step {step} on {id}");
        match rng.below(7) {
            0 | 1 => {
                let new = session(&id, k % USERS);
                let result = lock().create(&new);
                match model.entry(id) {
                    Entry::Occupied(_) => assert!(
                        matches!(
                            result.as_ref().map_err(|e| e.store()),
                            Err(Some(StoreError::AlreadyExists))
                        ),
                        "{what}: {result:?}"
                    ),
                    Entry::Vacant(slot) => {
                        result.unwrap_or_else(|e| panic!("{what}: {e}"));
                        slot.insert(new);
                    }
                }
            }
            2 => {
                let name = format!("name-{step}");
                let patch: SessionPatch =
                    serde_json::from_value(serde_json::json!({"userContext": {"name": name}}))
                        .unwrap();
                let result = lock().update(&id, &patch);
                match model.get_mut(&id) {
                    Some(expected) => {
                        *expected = patch.clone().apply(expected.clone()).unwrap();
                        assert_eq!(result.as_ref().ok(), Some(&*expected), "{what}");
                    }
                    None => assert!(
                        matches!(
                            result.as_ref().map_err(|e| e.store()),
                            Err(Some(StoreError::NotFound))
                        ),
                        "{what}: {result:?}"
                    ),
                }
            }
            3 => {
                let result = lock().touch(&id).unwrap_or_else(|e| panic!("{what}: {e}"));
                if let Some(expected) = model.get_mut(&id) {
                    expected.set_access(T0, expected.access().unwrap().1 + 1);
                }
                assert_eq!(result.as_ref(), model.get(&id), "{what}");
            }
            4 => {
                let removed = lock().delete(&id).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(removed, model.remove(&id).is_some(), "{what}");
            }
            5 => {
                let user = format!("user-{}", rng.below(USERS));
                let found = lock()
                    .user_sessions(&user)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let prefix = format!("t{thread}-");
                let mine: Vec<&Session> = found
                    .iter()
                    .filter(|s| s.id().starts_with(&prefix))
                    .collect();
                let expected: Vec<&Session> = model
                    .values()
                    .filter(|s| s.user().unwrap() == user)
                    .collect();
                let mut mine = mine;
                mine.sort_by(|a, b| a.id().cmp(b.id()));
                assert_eq!(mine, expected, "{what}: {user}");
            }
            _ => {
                let found = lock().get(&id).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(found.as_ref(), model.get(&id), "{what}");
            }
        }
    }
    model
}

#[test]
fn eight_threads_sharing_one_vault_end_where_their_models_say() {
    let setup = Setup::new();
    let options = VaultOptions::new()
        .clock(setup.clock.clone())
        .durability(Durability::Relaxed);
    let vault = Arc::new(Mutex::new(
        options.open(&setup.dir, setup.secret.secret()).unwrap(),
    ));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let vault = Arc::clone(&vault);
            std::thread::spawn(move || load(&vault, thread))
        })
        .collect();
    let mut expected: BTreeMap<String, Session> = BTreeMap::new();
    for thread in threads {
        expected.extend(thread.join().expect("a load thread panicked"));
    }
    drop(vault);
    // Reopened, the store holds exactly the union of the models.
    let mut vault = options.open(&setup.dir, setup.secret.secret()).unwrap();
    assert_eq!(vault.count().unwrap(), expected.len() as u64);
    for thread in 0..THREADS {
        for k in 0..IDS {
            let id = format!("t{thread}-s{k}");
            assert_eq!(vault.get(&id).unwrap().as_ref(), expected.get(&id), "{id}");
        }
    }
    let mut by_user = 0;
    for user in 0..USERS {
        by_user += vault.user_sessions(&format!("user-{user}")).unwrap().len();
    }
    assert_eq!(by_user, expected.len());
    assert_eq!(vault.check().unwrap().quarantined, 0);
}

use crate::front::cli_command as cli;

#[test]
fn a_second_process_is_refused_with_locked_or_waits_for_its_lock_timeout() {
    let setup = Setup::new();
    let options = VaultOptions::new().clock(setup.clock.clone());
    let vault = options.open(&setup.dir, setup.secret.secret()).unwrap();
    let refused = cli(&setup, &["--lock-timeout", "0", "count"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("error[locked]"),
        "{refused:?}"
    );
    let start = Instant::now();
    let refused = cli(&setup, &["--lock-timeout-ms", "300", "count"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "waited {:?}",
        start.elapsed()
    );

    // A waiting process gets the store as soon as the holder lets go.
    let waiting = cli(&setup, &["--lock-timeout", "20000", "count"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    drop(vault);
    let waited = waiting.wait_with_output().unwrap();
    assert_eq!(waited.status.code(), Some(0), "{waited:?}");
    assert_eq!(
        String::from_utf8_lossy(&waited.stdout).trim(),
        r#"{"count":0}"#
    );
}

#[test]
fn two_processes_writing_at_once_take_turns_and_lose_nothing() {
    let setup = Setup::new();
    // Created first, so both processes open an existing store.
    drop(
        VaultOptions::new()
            .clock(setup.clock.clone())
            .open(&setup.dir, setup.secret.secret())
            .unwrap(),
    );
    // Two writers, each a stream of one-shot CLI processes, contending for the lock.
    std::thread::scope(|scope| {
        for p in 0..2 {
            let setup = &setup;
            scope.spawn(move || {
                for i in 0..25 {
                    let text =
                        serde_json::to_string(&doc(&format!("p{p}-s{i}"), "u", T0 + 3_600_000))
                            .unwrap();
                    let mut child = cli(setup, &["--lock-timeout", "60000", "create"])
                        .stdin(Stdio::piped())
                        .spawn()
                        .unwrap();
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(text.as_bytes())
                        .unwrap();
                    let out = child.wait_with_output().unwrap();
                    assert_eq!(out.status.code(), Some(0), "{out:?}");
                }
            });
        }
    });
    let mut vault = VaultOptions::new()
        .clock(setup.clock.clone())
        .open(&setup.dir, setup.secret.secret())
        .unwrap();
    assert_eq!(vault.count().unwrap(), 50);
    assert_eq!(vault.check().unwrap().quarantined, 0);
}
