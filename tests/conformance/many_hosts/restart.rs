//! A server of the test's own, killed with SIGKILL and restarted mid-load.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::front::{Setup, redis_url};

use super::{chain, host, kind, session};

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
    let count = hot.access().unwrap().1;
    assert!(
        count >= touches_acked && count <= touches_acked + touches_failed,
        "accessCount {count}: {touches_acked} acknowledged, {touches_failed} in doubt"
    );
    assert_eq!(reopened.get("while-down").unwrap(), None);
}
