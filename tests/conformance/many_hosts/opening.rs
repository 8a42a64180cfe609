//! Opening the bucket: a server that is not there, and a directory moved into redis.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use session_vault::VaultOptions;

use crate::front::{Setup, cli_command, redis_url, unique_prefix};

use super::{chain, host, kind, refused, session};

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
