//! Fault injection: ENOSPC, EIO and short writes on the calls each operation makes.
//! Every failure reaches the caller as an `io` error; nothing acknowledged before it is
//! lost; once the fault clears the store works again, and a reopen finds every
//! acknowledged session and nothing damaged.
//!
//! The native core runs over a `FaultyDir` wrapping the real directory (any call, any
//! fault); the component runs on a real full filesystem (a size-limited tmpfs).

use std::collections::BTreeMap;

use session_vault::{BackendKind, Durability, ManualClock, Session, SessionPatch, StoreError};
use session_vault_guest::testing::fault::{Call, Fault, Faults, FaultyDir, Plan};
use session_vault_guest::{Config, DirectoryBackend, DirectoryStore, Secret, Sessions, StdDir};

use crate::cases::doc;
use crate::front::T0;

type FaultyStore = DirectoryStore<DirectoryBackend<FaultyDir<StdDir>>, ManualClock>;

fn open(path: &std::path::Path, backend: BackendKind, faults: &Faults) -> FaultyStore {
    let dir = FaultyDir::new(StdDir::new(path), faults.clone());
    let backend = DirectoryBackend::open(dir, Some(backend), Durability::Durable).unwrap();
    let config = Config::new(Secret::RawKey(vec![0x42; 32]));
    DirectoryStore::open(backend, ManualClock::new(T0), config).unwrap()
}

fn session(id: &str, user: &str) -> Session {
    serde_json::from_value(doc(id, user, T0 + 3_600_000)).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
    Delete,
    Touch,
}

/// Applies `op` to session `target`; returns the state it would leave if it took effect.
fn apply(
    store: &mut FaultyStore,
    op: Op,
    target: &str,
) -> (Result<(), StoreError>, Option<Session>) {
    match op {
        Op::Create => {
            let new = session(target, "u-new");
            (store.create(&new), Some(new))
        }
        Op::Update => {
            let patch: SessionPatch =
                serde_json::from_value(serde_json::json!({"userContext": {"name": "changed"}}))
                    .unwrap();
            let result = store.update(target, patch.clone());
            let expected = patch.clone().apply(session(target, "u1")).unwrap();
            (result.map(drop), Some(expected))
        }
        Op::Delete => (store.delete(target).map(drop), None),
        Op::Touch => {
            let result = store.touch(target, None);
            let mut expected = session(target, "u1");
            expected.set_access(T0, expected.access().unwrap().1 + 1);
            (result.map(drop), Some(expected))
        }
    }
}

/// One fault on one operation: returns whether the fault was injected.
fn one(backend: BackendKind, call: Call, fault: Fault, op: Op) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Faults::default();
    let mut store = open(tmp.path(), backend, &faults);
    let mut acknowledged: BTreeMap<String, Session> = BTreeMap::new();
    for i in 0..10 {
        let s = session(&format!("s{i}"), "u1");
        store.create(&s).unwrap();
        acknowledged.insert(s.id().to_owned(), s);
    }
    let target = if op == Op::Create { "fresh" } else { "s3" };
    let before = acknowledged.get(target).cloned();
    // A disk that stays full (or failing) until cleared.
    faults.arm(Plan {
        call,
        fault,
        skip: 0,
        sticky: true,
    });
    let (result, after) = apply(&mut store, op, target);
    faults.clear();
    let what = format!("{backend:?} {call:?} {fault:?} {op:?}");
    let injected = faults.injected() > 0;
    if injected {
        match &result {
            Err(StoreError::Io { source, .. }) => {
                let code = if fault == Fault::Io { 5 } else { 28 };
                assert_eq!(source.raw_os_error(), Some(code), "{what}: {result:?}");
            }
            other => panic!("{what}: expected an io error, got {other:?}"),
        }
    } else {
        assert!(result.is_ok(), "{what}: {result:?}");
    }
    // Either state of the failed operation's session; every other one exactly as written.
    for (id, expected) in &acknowledged {
        if id != target {
            let found = store
                .get(id)
                .unwrap_or_else(|e| panic!("{what}: {id}: {e}"));
            assert_eq!(found.as_ref(), Some(expected), "{what}: {id}");
        }
    }
    let settled = store
        .get(target)
        .unwrap_or_else(|e| panic!("{what}: {target}: {e}"));
    assert!(
        (injected && settled == before) || settled == after,
        "{what}: {target} is {settled:?}"
    );
    match settled {
        Some(s) => acknowledged.insert(target.to_owned(), s),
        None => acknowledged.remove(target),
    };
    // The store works again once the fault clears.
    let later = session("later", "u2");
    store.create(&later).unwrap();
    acknowledged.insert("later".into(), later);
    let touched = store.touch("s0", None).unwrap().unwrap();
    acknowledged.insert("s0".into(), touched);
    drop(store);
    // A reopen finds exactly what was acknowledged, the failed operation settled one way.
    let mut store = open(tmp.path(), backend, &faults);
    for (id, expected) in &acknowledged {
        let found = store
            .get(id)
            .unwrap_or_else(|e| panic!("{what} after a reopen: {id}: {e}"));
        assert_eq!(
            found.as_ref(),
            Some(expected),
            "{what} after a reopen: {id}"
        );
    }
    assert_eq!(store.count().unwrap(), acknowledged.len() as u64, "{what}");
    let report = store.check().unwrap();
    assert_eq!(
        (report.quarantined, report.newly_quarantined.len()),
        (0, 0),
        "{what}: {report:?}"
    );
    assert_eq!(
        crate::front::temporary_files(tmp.path()),
        Vec::<String>::new(),
        "{what}"
    );
    injected
}

fn matrix(backend: BackendKind) -> Vec<(Call, Fault, Op)> {
    let mut cases = Vec::new();
    for op in [Op::Create, Op::Update, Op::Delete, Op::Touch] {
        for fault in [Fault::NoSpace, Fault::Io, Fault::ShortWrite] {
            cases.push((Call::Write, fault, op));
        }
        for fault in [Fault::NoSpace, Fault::Io] {
            cases.push((Call::Sync, fault, op));
            if backend == BackendKind::Files {
                cases.push((Call::Rename, fault, op));
                cases.push((Call::Remove, fault, op));
            }
        }
    }
    cases
}

fn run(backend: BackendKind) {
    let mut injected = Vec::new();
    for (call, fault, op) in matrix(backend) {
        if one(backend, call, fault, op) {
            injected.push((call, op));
        }
    }
    // Every write path of every operation met its fault (a test that cannot miss them).
    for op in [Op::Create, Op::Update, Op::Delete, Op::Touch] {
        assert!(
            injected.contains(&(Call::Write, op))
                || (backend == BackendKind::Files && op == Op::Delete),
            "{backend:?}: {op:?} never wrote"
        );
    }
    for op in [Op::Create, Op::Update, Op::Delete] {
        assert!(
            injected.contains(&(Call::Sync, op)),
            "{backend:?}: {op:?} never synced"
        );
    }
    eprintln!(
        "{backend:?}: {} of {} cases injected a fault",
        injected.len(),
        matrix(backend).len()
    );
}

#[test]
fn io_faults_on_the_files_backend_lose_nothing_acknowledged() {
    run(BackendKind::Files);
}

#[test]
fn io_faults_on_the_log_backend_lose_nothing_acknowledged() {
    run(BackendKind::Log);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    _parent: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts one, or returns `None` (and says the test skipped) where mounting is not
    /// allowed. It needs root, which CI has: there a failure to mount fails the test.
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot mount a tmpfs in CI"
            );
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Tmpfs {
            _parent: parent,
            path,
        })
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_under_the_component_is_an_io_error_and_loses_nothing() {
    for backend in [BackendKind::Log, BackendKind::Files] {
        let Some(disk) = Tmpfs::mount("256k") else {
            return;
        };
        let dir = disk.path.join("store");
        let options = session_vault::VaultOptions::new()
            .clock(ManualClock::new(T0))
            .backend(backend)
            .compiled_cache(crate::front::compiled_cache());
        let secret = || Secret::RawKey(vec![0x24; 32]);
        let mut vault = options.open(&dir, secret()).unwrap();
        let mut acknowledged = Vec::new();
        let error = loop {
            let s = session(&format!("s{}", acknowledged.len()), "u1");
            match vault.create(&s) {
                Ok(()) => acknowledged.push(s),
                Err(error) => break error,
            }
            assert!(
                acknowledged.len() < 1_000,
                "{backend:?}: the disk never filled"
            );
        };
        let kind = error.store().map(StoreError::kind);
        assert_eq!(kind, Some("io"), "{backend:?}: {error}");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        let message = format!("{error}: {}", cause.as_deref().unwrap_or("no cause"));
        eprintln!(
            "{backend:?}: full after {} sessions: {message}",
            acknowledged.len()
        );
        assert!(
            message.contains("insufficient-space"),
            "{backend:?}: {message}"
        );
        assert!(
            acknowledged.len() >= 20,
            "{backend:?}: {}",
            acknowledged.len()
        );
        for s in &acknowledged {
            assert_eq!(vault.get(s.id()).unwrap().as_ref(), Some(s), "{backend:?}");
        }
        // Still full: refused again, nothing lost.
        assert_eq!(
            vault
                .create(&session("more", "u1"))
                .unwrap_err()
                .store()
                .map(StoreError::kind),
            Some("io")
        );
        // The fault clears: the store works again, and a reopen finds everything.
        disk.resize("4m");
        let more = session("more", "u1");
        vault.create(&more).unwrap();
        acknowledged.push(more);
        drop(vault);
        let mut vault = options.open(&dir, secret()).unwrap();
        assert_eq!(
            vault.count().unwrap(),
            acknowledged.len() as u64,
            "{backend:?}"
        );
        for s in &acknowledged {
            assert_eq!(vault.get(s.id()).unwrap().as_ref(), Some(s), "{backend:?}");
        }
        let report = vault.check().unwrap();
        assert_eq!(
            (report.quarantined, report.newly_quarantined.len()),
            (0, 0),
            "{backend:?}"
        );
    }
}

#[test]
fn a_read_only_store_directory_is_refused_with_io() {
    let Some(disk) = Tmpfs::mount("1m") else {
        return;
    };
    let mut setup = crate::front::Setup::new();
    setup.dir = disk.path.join("store");
    let mut vault = session_vault::VaultOptions::new()
        .clock(setup.clock.clone())
        .open(&setup.dir, setup.secret.secret())
        .unwrap();
    vault.create(&session("s1", "u1")).unwrap();
    drop(vault);
    disk.resize("1m,ro");
    let out = crate::front::cli_command(&setup, &["get", "s1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with("session-vault: error[io]: opening the store"),
        "{stderr}"
    );
    disk.resize("1m,rw");
    let out = crate::front::cli_command(&setup, &["get", "s1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "writable again: {out:?}");
}
