//! The `redis` backend across hosts, against a real server: many vaults (threads and
//! CLI processes) on one store lose no update and create each id once; a server killed
//! with SIGKILL and restarted mid-load loses nothing acknowledged, fails calls clearly
//! while it is down and serves again after; foreign keys and tampered values under the
//! store's prefix are refused, never obeyed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use session_vault::{SessionData, StoreError, Vault, VaultOptions};

use crate::cases::doc;
use crate::front::{Setup, T0, cli_command, raw_connection, redis_url, unique_prefix};

fn session(id: &str, user: &str) -> SessionData {
    serde_json::from_value(doc(id, user, T0 + 3_600_000)).unwrap()
}

/// A vault of the shared store `prefix` on `url`: one host.
fn host(setup: &Setup, url: &str, prefix: &str, timeout: Duration) -> Vault {
    VaultOptions::new()
        .clock(setup.clock.clone())
        .redis(url)
        .prefix(prefix)
        .redis_timeout(timeout)
        .open(&setup.dir, setup.secret.secret())
        .unwrap()
}

/// The error of an open that must fail (`Vault` has no `Debug` to `unwrap_err` with).
fn refused(opened: Result<Vault, session_vault::Error>) -> session_vault::Error {
    match opened {
        Ok(_) => panic!("the open succeeded"),
        Err(error) => error,
    }
}

/// The error and every cause under it, on one line.
fn chain(error: &session_vault::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

fn kind(error: &session_vault::Error) -> &'static str {
    error.store().map_or("trap", StoreError::kind)
}

const HOSTS: usize = 4;
const TOUCHES: u64 = 60;
const SESSIONS: usize = 3;
const PROCESSES: usize = 2;
const PROCESS_TOUCHES: u64 = 8;

/// Four vaults in four threads and two CLI processes touch the same three sessions at
/// once: every touch is a compare-and-swap on the count it read, so the final
/// `accessCount` of each is exactly the number of touches acknowledged on it.
pub fn many_hosts_lose_no_update() {
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let prefix = unique_prefix();
    let mut first = host(&setup, &url, &prefix, Duration::from_secs(5));
    for n in 0..SESSIONS {
        first.create(&session(&format!("hot{n}"), "alice")).unwrap();
    }
    let start = Arc::new(Barrier::new(HOSTS + PROCESSES + 1));
    let threads: Vec<_> = (0..HOSTS)
        .map(|h| {
            let (setup_clock, secret) = (setup.clock.clone(), setup.secret.secret());
            let (url, prefix, dir, start) = (
                url.clone(),
                prefix.clone(),
                setup.dir.clone(),
                start.clone(),
            );
            std::thread::spawn(move || {
                let mut vault = VaultOptions::new()
                    .clock(setup_clock)
                    .redis(&url)
                    .prefix(&prefix)
                    .redis_timeout(Duration::from_secs(5))
                    .open(&dir, secret)
                    .unwrap();
                start.wait();
                let mut touched = [0u64; SESSIONS];
                for t in 0..TOUCHES {
                    let n = (t as usize + h) % SESSIONS;
                    let id = format!("hot{n}");
                    let found = vault.touch(&id).unwrap_or_else(|e| panic!("host {h}: {e}"));
                    assert!(found.is_some(), "host {h}: {id} is live");
                    touched[n] += 1;
                }
                touched
            })
        })
        .collect();
    // Beside them, CLI processes: one stream each of back-to-back `touch` commands.
    let processes: Vec<_> = (0..PROCESSES)
        .map(|p| {
            let commands: Vec<Command> = (0..PROCESS_TOUCHES)
                .map(|_| {
                    let id = format!("hot{p}");
                    cli_command(
                        &setup,
                        &["--redis", &url, "--prefix", &prefix, "touch", &id],
                    )
                })
                .collect();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for mut command in commands {
                    let output = command.output().unwrap();
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    assert!(output.status.success(), "process stream {p}: {stderr}");
                }
            })
        })
        .collect();
    start.wait();
    // `doc` creates each session with accessCount 1.
    let mut expected = [1u64; SESSIONS];
    for thread in threads {
        for (n, count) in thread.join().unwrap().into_iter().enumerate() {
            expected[n] += count;
        }
    }
    for (p, stream) in processes.into_iter().enumerate() {
        stream.join().unwrap();
        expected[p % SESSIONS] += PROCESS_TOUCHES;
    }
    for (n, expected) in expected.iter().enumerate() {
        let id = format!("hot{n}");
        let found = first.get(&id).unwrap().unwrap();
        assert_eq!(
            found.security.access_count, *expected,
            "{id}: no touch lost"
        );
    }
    assert_eq!(first.count().unwrap(), SESSIONS as u64);
}

/// Four hosts race to create the same 25 ids: each id is created exactly once, and the
/// other three are told `already-exists`; a `revoke-user` on one host is seen by another.
pub fn a_live_id_is_created_once_across_hosts() {
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let prefix = unique_prefix();
    drop(host(&setup, &url, &prefix, Duration::from_secs(5)));
    let start = Arc::new(Barrier::new(HOSTS));
    let threads: Vec<_> = (0..HOSTS)
        .map(|h| {
            let mut vault = host(&setup, &url, &prefix, Duration::from_secs(5));
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..25)
                    .filter(|n| {
                        match vault.create(&session(&format!("race{n}"), &format!("h{h}"))) {
                            Ok(()) => true,
                            Err(e) if kind(&e) == "already-exists" => false,
                            Err(e) => panic!("host {h}: {e}"),
                        }
                    })
                    .count()
            })
        })
        .collect();
    let created: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(created, 25);
    let mut vault = host(&setup, &url, &prefix, Duration::from_secs(5));
    assert_eq!(vault.count().unwrap(), 25);
    let listed: usize = (0..HOSTS)
        .map(|h| vault.user_sessions(&format!("h{h}")).unwrap().len())
        .sum();
    assert_eq!(
        listed, 25,
        "every session is listed under the host that created it"
    );
    // One host logs a user out everywhere: every other host sees it at once.
    let mut other = host(&setup, &url, &prefix, Duration::from_secs(5));
    let (most, user) = (0..HOSTS)
        .map(|h| format!("h{h}"))
        .map(|user| (other.user_sessions(&user).unwrap().len() as u64, user))
        .max()
        .unwrap();
    assert!(most > 0);
    assert_eq!(vault.revoke_user(&user).unwrap(), most);
    assert_eq!(other.user_sessions(&user).unwrap(), Vec::new());
    assert_eq!(other.count().unwrap(), 25 - most);
}

/// A redis-server of this test's own, on a free port, that can be killed and restarted
/// on the same port and data directory.
struct OwnServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl OwnServer {
    fn start() -> Option<OwnServer> {
        let binary = std::env::var_os("SESSION_VAULT_TEST_REDIS_SERVER")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = OwnServer {
            binary: binary.into(),
            dir: tempfile::tempdir().unwrap(),
            port,
            child: None,
        };
        server.run();
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (append-only, fsync on every write) and waits for it to answer.
    fn run(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A writer creates and touches sessions while the server is killed with SIGKILL and
/// restarted on the same append-only file: calls fail with `unavailable` (within the
/// timeout, never a hang or a trap) while it is down, the same vault serves again once
/// it is back, and every acknowledged create and touch is there.
pub fn a_server_killed_and_restarted_loses_nothing_acknowledged() {
    if redis_url().is_none() {
        return;
    }
    let Some(mut server) = OwnServer::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs SESSION_VAULT_TEST_REDIS_SERVER"
        );
        eprintln!("!! no SESSION_VAULT_TEST_REDIS_SERVER: skipped");
        return;
    };
    let setup = Setup::new();
    let url = server.url();
    let timeout = Duration::from_millis(300);
    let mut vault = host(&setup, &url, "kill", timeout);
    let mut created = Vec::new();
    let mut touches_acked = 0u64;
    let mut touches_failed = 0u64;
    let mut failures = Vec::new();
    vault.create(&session("hot", "alice")).unwrap();
    for round in 0..3 {
        for n in 0..40 {
            let id = format!("r{round}-s{n}");
            match vault.create(&session(&id, "bob")) {
                Ok(()) => created.push(id),
                Err(e) => failures.push((kind(&e), e.to_string())),
            }
            let started = Instant::now();
            match vault.touch("hot") {
                Ok(found) => {
                    assert!(found.is_some());
                    touches_acked += 1;
                }
                Err(e) => {
                    touches_failed += 1;
                    failures.push((kind(&e), e.to_string()));
                }
            }
            // A call fails within a few timeouts (connect, then each request), never hangs.
            assert!(started.elapsed() < Duration::from_secs(5), "a call hung");
            if n == 20 {
                server.kill();
                // Every call while it is down fails with `unavailable`, naming the cause.
                let error = vault.get("hot").unwrap_err();
                assert_eq!(kind(&error), "unavailable", "{error}");
                let text = chain(&error);
                assert!(text.contains("redis at 127.0.0.1"), "{text}");
                let error = vault.create(&session("while-down", "bob")).unwrap_err();
                assert_eq!(kind(&error), "unavailable", "{error}");
                assert_eq!(kind(&vault.count().unwrap_err()), "unavailable");
            }
            if n == 25 {
                server.run();
            }
        }
    }
    assert!(
        failures.iter().all(|(kind, _)| *kind == "unavailable"),
        "{failures:?}"
    );
    // Every write after each restart went through: only the ones while down could fail.
    assert!(
        touches_acked >= 3 * 35,
        "{touches_acked} touches acknowledged"
    );
    // Once more from the disk alone: the server restarted from its append-only file.
    server.kill();
    assert!(server.data().join("appendonlydir").exists());
    server.run();
    let mut reopened = host(&setup, &url, "kill", timeout);
    for id in &created {
        assert!(reopened.get(id).unwrap().is_some(), "{id} was acknowledged");
    }
    let hot = reopened.get("hot").unwrap().unwrap();
    let count = hot.security.access_count;
    assert!(
        count >= touches_acked && count <= touches_acked + touches_failed,
        "accessCount {count}: {touches_acked} acknowledged, {touches_failed} in doubt"
    );
    assert_eq!(reopened.get("while-down").unwrap(), None);
}

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
        vault.get("b1").unwrap().unwrap().session_id,
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
    short.expires_at = T0 + 1_000;
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

/// A server that is not there: opening fails with `unavailable` naming the address,
/// within the timeout; a malformed URL or prefix is `invalid-input`. The CLI reports
/// the same cases on one line with exit code 4 and 2.
pub fn an_unreachable_server_is_unavailable_not_a_hang() {
    if redis_url().is_none() {
        return;
    }
    let setup = Setup::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let started = Instant::now();
    let error = refused(
        VaultOptions::new()
            .redis(&url)
            .redis_timeout(Duration::from_millis(200))
            .open(&setup.dir, setup.secret.secret()),
    );
    assert_eq!(kind(&error), "unavailable", "{error}");
    let text = chain(&error);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    for (url, prefix) in [
        ("not a url", "p"),
        (url.as_str(), "bad prefix"),
        (url.as_str(), ""),
    ] {
        let error = refused(
            VaultOptions::new()
                .redis(url)
                .prefix(prefix)
                .open(&setup.dir, setup.secret.secret()),
        );
        assert_eq!(kind(&error), "invalid-input", "{url} {prefix}: {error}");
    }
    let output = cli_command(&setup, &["--redis", &url, "count"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with("session-vault: error[unavailable]: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// Through the component: the vault that ran `migrate --to redis` serves from the bucket
/// at once, every other host sees the same store, and opening the directory again with
/// the server opens the bucket (without it, the directory refuses). The CLI asks for
/// both ends of the move.
pub fn a_moved_directory_opens_its_bucket_and_the_vault_serves_on() {
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let prefix = unique_prefix();
    let with_server = VaultOptions::new()
        .clock(setup.clock.clone())
        .redis_server(&url)
        .prefix(&prefix);
    let mut vault = with_server.open(&setup.dir, setup.secret.secret()).unwrap();
    vault.create(&session("m1", "alice")).unwrap();
    vault.create(&session("m2", "bob")).unwrap();
    assert_eq!(vault.migrate(session_vault::BackendKind::Redis).unwrap(), 2);
    vault.create(&session("m3", "alice")).unwrap();
    assert_eq!(vault.user_sessions("alice").unwrap().len(), 2);
    let mut other = host(&setup, &url, &prefix, Duration::from_secs(2));
    assert_eq!(other.count().unwrap(), 3);
    drop(vault);
    let mut again = with_server.open(&setup.dir, setup.secret.secret()).unwrap();
    assert_eq!(again.count().unwrap(), 3);
    drop(again);
    let plain = refused(
        VaultOptions::new()
            .clock(setup.clock.clone())
            .open(&setup.dir, setup.secret.secret()),
    );
    assert_eq!(kind(&plain), "invalid-input", "{plain}");
    let cli = |args: &[&str]| {
        let mut command = cli_command(&setup, args);
        command.env_remove("SESSION_VAULT_REDIS_URL");
        let output = command.output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        (output.status.code(), stdout, stderr)
    };
    let (code, _, stderr) = cli(&["migrate", "--to", "redis"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("session-vault: error[usage]:"),
        "{stderr}"
    );
    // The directory names the store it moved to: another prefix is refused, not created.
    let (code, _, stderr) = cli(&["--redis", &url, "migrate", "--to", "redis"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--prefix"), "{stderr}");
    let (code, stdout, stderr) = cli(&[
        "--redis", &url, "--prefix", &prefix, "migrate", "--to", "redis",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"migrated":0,"backend":"redis"}"#);
}
