//! The `redis` backend across hosts, against a real server: many vaults (threads and
//! CLI processes) on one store lose no update and create each id once; a server killed
//! with SIGKILL and restarted mid-load loses nothing acknowledged, fails calls clearly
//! while it is down and serves again after; foreign keys and tampered values under the
//! store's prefix are refused, never obeyed; an older or removed value put back is
//! refused by every host (`replay`).
//!
//! This file holds the helpers and the cases of many hosts on one store; `restart` kills
//! the server mid-load, `tampering` edits what lies under the prefix, `opening` opens
//! against a server that is not there and a directory moved into redis.

mod opening;
mod replay;
mod restart;
mod tampering;

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use session_vault::{Session, StoreError, Vault, VaultOptions};

use crate::cases::doc;
use crate::front::{Setup, T0, cli_command, redis_url, unique_prefix};

fn session(id: &str, user: &str) -> Session {
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
        assert_eq!(found.access().unwrap().1, *expected, "{id}: no touch lost");
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

pub use opening::{
    a_moved_directory_opens_its_bucket_and_the_vault_serves_on,
    an_unreachable_server_is_unavailable_not_a_hang,
};
pub use replay::a_value_put_back_in_redis_is_refused_by_every_host;
pub use restart::a_server_killed_and_restarted_loses_nothing_acknowledged;
pub use tampering::foreign_keys_and_tampered_values_are_refused;

/// More sessions than one `SCAN` page (1,000 keys asked for a step): `check` walks the
/// bucket with `list-keys`, whose cursor crosses the component boundary as the string
/// the published `wasi:keyvalue` draft2 gives it, and counts every session exactly once.
pub fn a_store_past_one_scan_page_is_listed_whole() {
    const MANY: usize = 2_500;
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let prefix = unique_prefix();
    let mut vault = host(&setup, &url, &prefix, Duration::from_secs(5));
    for n in 0..MANY {
        vault
            .create(&session(&format!("page{n:05}"), "alice"))
            .unwrap();
    }
    let report = vault.check().unwrap();
    assert_eq!(report.live, MANY as u64, "{report:?}");
    assert_eq!(report.foreign, 0, "{report:?}");
    assert_eq!(vault.count().unwrap(), MANY as u64);
}

/// A prefix as Redis users write it (connect-redis's default is `sess:`): the CLI, the
/// Rust API and the component accept the trailing colon as the separator, so `P:` and
/// `P` name one store, whose keys are `{P}:…`; interior colons are part of the name. A
/// prefix that is refused is named in the error, and no directory is.
pub fn a_prefix_is_written_as_redis_users_write_it() {
    let Some(url) = redis_url() else { return };
    let setup = Setup::new();
    let name = format!("{}:sessions", unique_prefix());
    let written = format!("{name}:");
    let cli = |args: &[&str]| {
        let output = cli_command(&setup, args).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        (output.status.code(), stdout, stderr)
    };
    let mut api = host(&setup, &url, &name, Duration::from_secs(5));
    api.create(&session("colon-1", "alice")).unwrap();
    let (code, stdout, stderr) = cli(&["--redis", &url, "--prefix", &written, "get", "colon-1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(r#""sessionId":"colon-1""#), "{stdout}");
    let mut written_api = host(&setup, &url, &written, Duration::from_secs(5));
    assert_eq!(written_api.count().unwrap(), 1);
    let keys = redis_keys(&url, &format!("{{{name}}}:*"));
    assert!(
        keys.iter().any(|k| k == &format!("{{{name}}}:meta")),
        "{keys:?}"
    );
    for bad in ["bad prefix", ":", "a*", "a{b}"] {
        let (code, _, stderr) = cli(&["--redis", &url, "--prefix", bad, "count"]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(
            stderr.starts_with("session-vault: error[invalid-input]: opening the redis store ")
                && stderr.contains(&format!("{bad:?}"))
                && !stderr.contains(&setup.dir.display().to_string())
                && !stderr.contains(".sessions"),
            "{bad}: {stderr}"
        );
        let error = refused(
            VaultOptions::new()
                .redis(&url)
                .prefix(bad)
                .open(&setup.dir, setup.secret.secret()),
        );
        assert_eq!(kind(&error), "invalid-input", "{bad}: {error}");
    }
}

/// The keys on the server `url` that match `pattern` (`KEYS`: a test server).
fn redis_keys(url: &str, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut connection)
        .unwrap();
    keys
}
