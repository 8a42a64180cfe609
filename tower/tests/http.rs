//! The example app (examples/axum.rs) as users run it: its own process on 127.0.0.1,
//! driven over real HTTP with cookies, restarted, and refused a bad configuration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SECRET: &str = "hex:2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c";

/// The example binary `cargo test` built beside this test.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    debug.join("examples").join("axum")
}

/// The example serving `dir`, and the address it listens on.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// The example on the directory store `dir`.
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// The example with `extra` flags (`--redis URL --prefix P`); `dir` names the cache
    /// of compiled components beside it.
    fn start_with(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(example())
            .args(["--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .args(extra)
            .env("SESSION_VAULT_SECRET", SECRET)
            .env("SESSION_VAULT_CACHE_DIR", dir.with_extension("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("the example printed {line:?}"))
            .to_owned();
        Server { child, address }
    }

    /// `method path` with `cookie` and a JSON `body`: the status, the session cookie it
    /// set (if any), and the body.
    fn request(&self, method: &str, path: &str, cookie: Option<&str>, body: &str) -> Answer {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{cookie}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let cookie = head
            .lines()
            .filter_map(|l| {
                l.strip_prefix("set-cookie: ")
                    .or(l.strip_prefix("Set-Cookie: "))
            })
            .map(|c| c.split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("id=") && c.len() > 3);
        Answer {
            status,
            cookie,
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        }
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

struct Answer {
    status: u16,
    cookie: Option<String>,
    body: serde_json::Value,
}

#[test]
fn log_in_use_restart_log_out_and_log_out_everywhere_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sessions");
    let server = Server::start(&dir);
    let login = server.request("POST", "/login", None, r#"{"user":"ada"}"#);
    assert_eq!(login.status, 200);
    let cookie = login.cookie.expect("a session cookie");
    assert_eq!(
        server.request("GET", "/me", Some(&cookie), "").body["visits"],
        1
    );
    assert_eq!(
        server.request("GET", "/me", Some(&cookie), "").body["visits"],
        2
    );
    assert_eq!(server.request("GET", "/me", None, "").status, 401);

    // The server process is stopped and started again: the user is still logged in.
    server.stop();
    let server = Server::start(&dir);
    let me = server.request("GET", "/me", Some(&cookie), "");
    assert_eq!(
        (
            me.status,
            me.body["user"].as_str(),
            me.body["visits"].as_u64()
        ),
        (200, Some("ada"), Some(3))
    );

    // A second browser; log out everywhere from the first ends both.
    let other = server
        .request("POST", "/login", None, r#"{"user":"ada"}"#)
        .cookie
        .unwrap();
    let bob = server
        .request("POST", "/login", None, r#"{"user":"bob"}"#)
        .cookie
        .unwrap();
    let everywhere = server.request("POST", "/logout-everywhere", Some(&cookie), "");
    assert_eq!(everywhere.body["ended"], 2);
    assert_eq!(server.request("GET", "/me", Some(&cookie), "").status, 401);
    assert_eq!(server.request("GET", "/me", Some(&other), "").status, 401);
    assert_eq!(server.request("GET", "/me", Some(&bob), "").status, 200);

    // Log out: the old cookie is refused.
    assert_eq!(
        server.request("POST", "/logout", Some(&bob), "").status,
        200
    );
    assert_eq!(server.request("GET", "/me", Some(&bob), "").status, 401);
    server.stop();
}

/// The test server `scripts/test` started; without one (outside CI) the redis case is
/// skipped with a notice.
fn redis_url() -> Option<String> {
    match std::env::var("SESSION_VAULT_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs SESSION_VAULT_TEST_REDIS_URL: run the tests through scripts/test"
            );
            eprintln!("!! no SESSION_VAULT_TEST_REDIS_URL (scripts/test starts one): skipped");
            None
        }
    }
}

/// Two server processes on one redis-server share the sessions: log in on one, use the
/// session on the other, log out on the other and the first refuses the old cookie.
#[test]
fn two_servers_on_one_redis_share_the_sessions() {
    let Some(url) = redis_url() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("tower-{}:", std::process::id());
    let flags = ["--redis", url.as_str(), "--prefix", prefix.as_str()];
    let a = Server::start_with(&tmp.path().join("a"), &flags);
    let b = Server::start_with(&tmp.path().join("b"), &flags);
    let cookie = a
        .request("POST", "/login", None, r#"{"user":"eve"}"#)
        .cookie
        .expect("a session cookie");
    assert_eq!(b.request("GET", "/me", Some(&cookie), "").body["visits"], 1);
    assert_eq!(a.request("GET", "/me", Some(&cookie), "").body["visits"], 2);
    assert_eq!(
        b.request("GET", "/me", Some(&cookie), "").body["user"],
        "eve"
    );
    // One server stopped and started again: the session is in the server, not in it.
    a.stop();
    let a = Server::start_with(&tmp.path().join("a"), &flags);
    assert_eq!(a.request("GET", "/me", Some(&cookie), "").body["visits"], 4);
    assert_eq!(b.request("POST", "/logout", Some(&cookie), "").status, 200);
    assert_eq!(a.request("GET", "/me", Some(&cookie), "").status, 401);
    // Log out everywhere on one server ends the user's sessions made on the other.
    let first = a
        .request("POST", "/login", None, r#"{"user":"eve"}"#)
        .cookie
        .unwrap();
    let second = b
        .request("POST", "/login", None, r#"{"user":"eve"}"#)
        .cookie
        .unwrap();
    assert_eq!(
        b.request("POST", "/logout-everywhere", Some(&first), "")
            .body["ended"],
        2
    );
    assert_eq!(a.request("GET", "/me", Some(&second), "").status, 401);
    a.stop();
    b.stop();
}

#[test]
fn a_bad_configuration_stops_the_server_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], secret: Option<&str>| {
        let mut command = Command::new(example());
        command.args(args).env_remove("SESSION_VAULT_SECRET");
        if let Some(secret) = secret {
            command.env("SESSION_VAULT_SECRET", secret);
        }
        let output = command
            .arg("--dir")
            .arg(tmp.path().join("s"))
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["--listen", "127.0.0.1:0"], None);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("SESSION_VAULT_SECRET is not set"),
        "{stderr}"
    );
    let (code, stderr) = run(&["--secret", "x"], Some(SECRET));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("never from argv"), "{stderr}");
    let (code, stderr) = run(&["--listen", "127.0.0.1:0"], Some("too short"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("opening the session store"), "{stderr}");
    let (code, stderr) = run(&["--listen", "nowhere"], Some(SECRET));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not an address"), "{stderr}");
}
