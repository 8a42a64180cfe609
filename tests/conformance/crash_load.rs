//! The crash harness: a child process applies a random load (create, update, delete,
//! touch, and now and then cleanup/compaction, key rotation with rekey, and migration
//! between backends) through the real host, logging each operation before it starts and
//! again once acknowledged; the harness kills it with SIGKILL at a random moment, reopens
//! the store and checks it against the log: every acknowledged write is there with its
//! acknowledged content, no deleted session is back, nothing torn is returned or
//! quarantined, and no temporary file survives the reopen. The one operation in flight
//! when the child died may have happened or not, but nothing else.
//!
//! The short run (in the normal test command) kills 2 × 12 times; the full one
//! (`cargo test -p session-vault --test conformance crash_load::full -- --ignored
//! --nocapture`) kills 2 × 110 times.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_vault::{BackendKind, Durability, Secret, Session, SessionPatch, Vault, VaultOptions};

use crate::cases::doc;
use crate::front::{Setup, T0};
use crate::model::Rng;

const CHILD_ENV: &str = "SESSION_VAULT_CRASH_CHILD";
const IDS: u64 = 60;

/// The secret after `rotations` key rotations.
fn secret(rotations: u64) -> Secret {
    let mut key = vec![0x50; 32];
    key[..8].copy_from_slice(&rotations.to_le_bytes());
    Secret::RawKey(key)
}

fn document(id: &str, n: u64) -> Session {
    let mut value = doc(id, &format!("u{}", n % 4), T0 + 3_600_000);
    value["userContext"]["name"] = json!(format!("v{n}"));
    serde_json::from_value(value).unwrap()
}

fn options(durability: Durability) -> VaultOptions {
    VaultOptions::new()
        .clock(session_vault::ManualClock::new(T0))
        .durability(durability)
        .compiled_cache(crate::front::compiled_cache())
        .lock_timeout(Duration::from_secs(10))
}

/// The child: runs until killed. Arguments come through `CHILD_ENV`:
/// `<store dir>|<op log>|<seed>|<rotations>|<durable|relaxed>`.
#[test]
#[ignore = "the crash harness's child process, started by the crash_load tests"]
fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (dir, log, seed, mut rotations) = (
        PathBuf::from(parts[0]),
        PathBuf::from(parts[1]),
        parts[2].parse::<u64>().unwrap(),
        parts[3].parse::<u64>().unwrap(),
    );
    let durability = if parts[4] == "durable" {
        Durability::Durable
    } else {
        Durability::Relaxed
    };
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut vault = options(durability).open(&dir, secret(rotations)).unwrap();
    let mut rng = Rng(seed);
    // Each line is one write_all: a kill can tear only the last (see `replay`).
    let mut note = |line: Value| log.write_all(format!("{line}\n").as_bytes()).unwrap();
    for n in 0.. {
        let id = format!("s{:03}", rng.below(IDS));
        let roll = rng.below(100);
        let op = match roll {
            0..30 => json!({"op": "create", "id": id, "doc": document(&id, n)}),
            30..54 => json!({"op": "update", "id": id, "name": format!("v{n}")}),
            54..73 => json!({"op": "touch", "id": id}),
            73..90 => json!({"op": "delete", "id": id}),
            90..93 => json!({"op": "cleanup"}),
            93..96 => json!({"op": "compact"}),
            96..98 => json!({"op": "rotate", "to": rotations + 1}),
            _ => json!({"op": "migrate"}),
        };
        note(json!({"begin": n, "op": op}));
        let outcome = match op["op"].as_str().unwrap() {
            "create" => match vault.create(&document(&id, n)) {
                Ok(()) => json!("ok"),
                Err(e) => json!(e.store().unwrap().kind()),
            },
            "update" => {
                let patch: SessionPatch =
                    serde_json::from_value(json!({"userContext": {"name": format!("v{n}")}}))
                        .unwrap();
                match vault.update(&id, &patch) {
                    Ok(session) => serde_json::to_value(session).unwrap(),
                    Err(e) => json!(e.store().unwrap().kind()),
                }
            }
            "touch" => serde_json::to_value(vault.touch(&id).unwrap()).unwrap(),
            "delete" => json!(vault.delete(&id).unwrap()),
            "cleanup" => json!(vault.cleanup().unwrap()),
            "compact" => json!(vault.compact(|_, _| {}).unwrap()),
            "rotate" => {
                // What an operator does: a new key, every session moved to it, the
                // previous keys retired.
                vault.add_key(&secret(rotations + 1)).unwrap();
                rotations += 1;
                vault.rekey(|_, _| {}).unwrap();
                for key in vault.keys().unwrap() {
                    if !key.current && !key.retired {
                        vault.retire_key(key.id).unwrap();
                    }
                }
                json!("ok")
            }
            _ => {
                let to = match vault.migrate(BackendKind::Files) {
                    Ok(0) => BackendKind::Log,
                    Ok(_) => BackendKind::Files,
                    Err(e) => panic!("migrate: {e}"),
                };
                if to == BackendKind::Log {
                    vault.migrate(BackendKind::Log).unwrap();
                }
                json!("ok")
            }
        };
        note(json!({"ack": n, "outcome": outcome}));
    }
}

/// What the harness knows: acknowledged sessions, and the key rotations.
struct Model {
    sessions: BTreeMap<String, Session>,
    rotations: u64,
}

/// Applies the acknowledged operations of one child's log to `model`; returns the
/// operation in flight at the kill, if any.
fn replay(model: &mut Model, log: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut pending: Option<Value> = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line: Value = match serde_json::from_str(line) {
            Ok(line) => line,
            // A kill can cut a long line's write(2) short under load: only the last line,
            // with no newline after it. A torn `begin` never started its operation; a torn
            // `ack` leaves its operation in flight, which is what `pending` says.
            Err(e) => {
                assert!(
                    i + 1 == lines.len() && !text.ends_with('\n'),
                    "line {i} of {} is torn: {e}",
                    log.display()
                );
                break;
            }
        };
        if line.get("begin").is_some() {
            pending = Some(line["op"].clone());
            continue;
        }
        let op = pending.take().expect("an ack follows its begin");
        let outcome = &line["outcome"];
        let id = op["id"].as_str().unwrap_or_default().to_owned();
        let had = model.sessions.contains_key(&id);
        match op["op"].as_str().unwrap() {
            "create" if outcome == "ok" => {
                assert!(!had, "create of {id} succeeded over a live session");
                model
                    .sessions
                    .insert(id, serde_json::from_value(op["doc"].clone()).unwrap());
            }
            "create" => assert!(had && outcome == "already-exists", "create {id}: {outcome}"),
            "update" | "touch" if outcome.is_object() => {
                assert!(had, "{op}: acknowledged on an absent session");
                model
                    .sessions
                    .insert(id, serde_json::from_value(outcome.clone()).unwrap());
            }
            "update" => assert!(!had && outcome == "not-found", "{op}: {outcome}"),
            "touch" => assert!(!had && outcome.is_null(), "{op}: {outcome}"),
            "delete" => {
                assert_eq!(outcome.as_bool(), Some(had), "{op}");
                model.sessions.remove(&id);
            }
            "rotate" => model.rotations += 1,
            _ => {}
        }
    }
    pending
}

/// The states session `id` may be in: the acknowledged one, or what the operation in
/// flight would have made of it.
fn allowed(model: &Model, pending: Option<&Value>, id: &str, found: &Option<Session>) -> bool {
    let before = model.sessions.get(id).cloned();
    if *found == before {
        return true;
    }
    let Some(op) = pending.filter(|op| op["id"] == id) else {
        return false;
    };
    let after = match op["op"].as_str().unwrap() {
        "create" if before.is_none() => Some(serde_json::from_value(op["doc"].clone()).unwrap()),
        "update" => before.map(|mut s| {
            let patch = serde_json::json!({"userContext": {"name": op["name"]}});
            let patch: SessionPatch = serde_json::from_value(patch).unwrap();
            s = patch.apply(s).unwrap();
            s
        }),
        "touch" => before.map(|mut s| {
            s.set_access(T0, s.access().unwrap().1 + 1);
            s
        }),
        "delete" => None,
        _ => return false,
    };
    *found == after
}

/// Reopens the store after a kill and holds it to the model; settles the pending op.
fn verify(dir: &Path, model: &mut Model, pending: Option<&Value>, kill: usize) -> Vault {
    let rotated = pending.is_some_and(|op| op["op"] == "rotate");
    let mut vault = match options(Durability::Durable).open(dir, secret(model.rotations)) {
        Ok(vault) => vault,
        // The rotation in flight committed its new key before the kill.
        Err(_) if rotated => {
            model.rotations += 1;
            options(Durability::Durable)
                .open(dir, secret(model.rotations))
                .unwrap()
        }
        Err(e) => panic!("kill {kill}: reopening: {e}"),
    };
    for k in 0..IDS {
        let id = format!("s{k:03}");
        let found = vault
            .get(&id)
            .unwrap_or_else(|e| panic!("kill {kill}: {id}: {e}"));
        assert!(
            allowed(model, pending, &id, &found),
            "kill {kill}: {id} is {found:?}, acknowledged {:?}, in flight {pending:?}",
            model.sessions.get(&id)
        );
        match found {
            Some(session) => model.sessions.insert(id, session),
            None => model.sessions.remove(&id),
        };
    }
    assert_eq!(
        vault.count().unwrap(),
        model.sessions.len() as u64,
        "kill {kill}"
    );
    let report = vault.check().unwrap();
    assert_eq!(
        (
            report.quarantined,
            report.newly_quarantined.len(),
            report.missing_key
        ),
        (0, 0, 0),
        "kill {kill}: {report:?}"
    );
    let temporary = crate::front::temporary_files(dir);
    assert_eq!(
        temporary,
        Vec::<String>::new(),
        "kill {kill}: no temporary file survives a reopen"
    );
    vault
}

/// Runs `kills` kill-and-verify rounds on a store created in `backend`; returns how many
/// kills landed in each kind of operation.
fn campaign(backend: BackendKind, kills: usize, seed: u64) -> BTreeMap<String, usize> {
    let setup = Setup::new();
    drop(
        options(Durability::Durable)
            .backend(backend)
            .open(&setup.dir, secret(0))
            .unwrap(),
    );
    let mut model = Model {
        sessions: BTreeMap::new(),
        rotations: 0,
    };
    let mut rng = Rng(seed);
    let mut landed: BTreeMap<String, usize> = BTreeMap::new();
    let logs = tempfile::tempdir().unwrap();
    for kill in 0..kills {
        let log = logs.path().join(format!("{kill}.jsonl"));
        let durability = if kill % 3 == 2 { "relaxed" } else { "durable" };
        let spec = format!(
            "{}|{}|{}|{}|{durability}",
            setup.dir.display(),
            log.display(),
            seed.wrapping_mul(1_000).wrapping_add(kill as u64),
            model.rotations
        );
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_load::child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill once the load has started, at a random moment within it.
        let start = Instant::now();
        while std::fs::metadata(&log).map_or(true, |m| m.len() == 0) {
            if let Ok(Some(status)) = child.try_wait() {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "kill {kill}: the child exited first ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "kill {kill}: the child never started"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        // SIGKILL: no destructor, no flush, wherever the child is.
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.code().is_none(),
            "kill {kill}: the child ended on its own: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pending = replay(&mut model, &log);
        let kind = pending
            .as_ref()
            .map_or("between operations".to_owned(), |op| {
                op["op"].as_str().unwrap().to_owned()
            });
        *landed.entry(kind).or_default() += 1;
        drop(verify(&setup.dir, &mut model, pending.as_ref(), kill));
    }
    eprintln!("{backend:?}: {kills} kills, by operation in flight: {landed:?}");
    landed
}

#[test]
fn short_kill_run_on_both_backends_loses_nothing_acknowledged() {
    let log = campaign(BackendKind::Log, 12, 1);
    let files = campaign(BackendKind::Files, 12, 2);
    let kills: usize = log.values().chain(files.values()).sum();
    assert!(kills >= 20, "{kills} kills");
}

#[test]
#[ignore = "the full crash run: 220 kills, about a minute; see docs/RELIABILITY.md"]
fn full() {
    let mut landed: BTreeMap<String, usize> = BTreeMap::new();
    for (backend, seed) in [(BackendKind::Log, 11), (BackendKind::Files, 12)] {
        for (op, n) in campaign(backend, 110, seed) {
            *landed.entry(op).or_default() += n;
        }
    }
    eprintln!("all: {landed:?}");
    for op in [
        "create", "update", "touch", "delete", "cleanup", "compact", "rotate", "migrate",
    ] {
        assert!(
            landed.get(op).copied().unwrap_or(0) > 0,
            "no kill landed in {op}: {landed:?}"
        );
    }
}
