//! The bad-input table of docs/RELIABILITY.md, row by row, through the CLI: each input
//! with its exact error case (`error[<case>]` on stderr) and exit code. A row missing
//! from the document, or a document row without a test, fails `the_table_is_documented`.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};
use session_vault::{BackendKind, VaultOptions};

use crate::cases::doc;
use crate::front::{Setup, T0, cli_command};

/// One row: what is fed in, and what must come out.
struct Row {
    /// The row's label, as in docs/RELIABILITY.md.
    input: &'static str,
    /// Prepares the store (it already holds session `s1` of user `u1`, backend `log`).
    prepare: fn(&Setup),
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    /// Replaces `SESSION_VAULT_SECRET`.
    secret: Option<&'static str>,
    /// `None`: the command succeeds (exit 0).
    error: Option<&'static str>,
    exit: i32,
}

fn nothing(_: &Setup) {}

fn row(input: &'static str, args: &[&str], error: Option<&'static str>, exit: i32) -> Row {
    Row {
        input,
        prepare: nothing,
        args: args.iter().map(|a| a.to_string()).collect(),
        stdin: None,
        secret: None,
        error,
        exit,
    }
}

fn create(input: &'static str, document: impl Into<Vec<u8>>, error: &'static str) -> Row {
    Row {
        stdin: Some(document.into()),
        ..row(input, &["create"], Some(error), 2)
    }
}

fn update(input: &'static str, patch: &str, error: &'static str) -> Row {
    Row {
        stdin: Some(patch.as_bytes().to_vec()),
        ..row(input, &["update", "s1"], Some(error), 2)
    }
}

fn with(document: Value, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut document = document;
    edit(&mut document);
    document.to_string().into_bytes()
}

fn fresh() -> Value {
    doc("s2", "u2", T0 + 60_000)
}

fn rows() -> Vec<Row> {
    let long = "x".repeat(129);
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_set = format!(
        "{{\"sessionId\":\"s2\",\"expiresAt\":1,\"x\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut rows = vec![
        row("id: empty", &["get", ""], Some("invalid-id"), 2),
        row(
            "id: `../x` (path traversal)",
            &["get", "../x"],
            Some("invalid-id"),
            2,
        ),
        row("id: `a/b`", &["delete", "a/b"], Some("invalid-id"), 2),
        row("id: `a\\b`", &["get", "a\\b"], Some("invalid-id"), 2),
        row("id: `..`", &["get", ".."], Some("invalid-id"), 2),
        row("id: `a b` (space)", &["get", "a b"], Some("invalid-id"), 2),
        row("id: `é` (non-ASCII)", &["get", "é"], Some("invalid-id"), 2),
        Row {
            args: vec!["get".into(), long],
            ..row("id: 129 characters", &[], Some("invalid-id"), 2)
        },
        create(
            "id: NUL inside `sessionId`",
            with(fresh(), |d| d["sessionId"] = json!("a\u{0}b")),
            "invalid-id",
        ),
        create("document: empty", "", "invalid-input"),
        create("document: not JSON", "not json", "invalid-input"),
        create("document: a JSON array", "[]", "invalid-input"),
        create(
            "document: cut off",
            "{\"sessionId\": \"s2\"",
            "invalid-input",
        ),
        create(
            "document: invalid UTF-8",
            b"\xff\xfe{".to_vec(),
            "invalid-input",
        ),
        create(
            "document: `expiresAt` missing",
            with(fresh(), |d| {
                drop(d.as_object_mut().map(|o| o.remove("expiresAt")))
            }),
            "invalid-input",
        ),
        create(
            "document: `userContext` without `userId`",
            with(fresh(), |d| {
                drop(d["userContext"].as_object_mut().map(|o| o.remove("userId")))
            }),
            "invalid-input",
        ),
        create(
            "document: a string `expiresAt`",
            with(fresh(), |d| d["expiresAt"] = json!("2030-01-01T00:00:00Z")),
            "invalid-input",
        ),
        create(
            "document: a member twice, nested",
            r#"{"sessionId":"s2","expiresAt":1,"cookie":{"path":"/","path":"/x"}}"#,
            "invalid-input",
        ),
        Row {
            stdin: Some(deep_set.into_bytes()),
            ..row(
                "set: nesting 100,000 deep",
                &["set"],
                Some("invalid-input"),
                2,
            )
        },
        Row {
            stdin: Some(b"[{\"sessionId\":\"s2\",\"expiresAt\":1}]".to_vec()),
            ..row(
                "set: an array of sessions",
                &["set"],
                Some("invalid-input"),
                2,
            )
        },
        create(
            "document: wrong type (`roles` a string)",
            with(fresh(), |d| d["userContext"]["roles"] = json!("admin")),
            "invalid-input",
        ),
        create(
            "document: negative time (`expiresAt` -1)",
            with(fresh(), |d| d["expiresAt"] = json!(-1)),
            "invalid-input",
        ),
        create(
            "document: fractional count (`accessCount` 1.5)",
            with(fresh(), |d| d["security"]["accessCount"] = json!(1.5)),
            "invalid-input",
        ),
        create(
            "document: huge number (`expiresAt` 1e30)",
            with(fresh(), |d| d["expiresAt"] = json!(1e30)),
            "invalid-input",
        ),
        create(
            "document: `createdAt` 2^64",
            String::from_utf8(with(fresh(), |d| d["createdAt"] = json!(123_456_789)))
                .unwrap()
                .replace(
                    "\"createdAt\":123456789",
                    "\"createdAt\":18446744073709551616",
                ),
            "invalid-input",
        ),
        create(
            "document: nesting 10,000 deep",
            deep.into_bytes(),
            "invalid-input",
        ),
        create(
            "document: `userContext` null",
            with(fresh(), |d| d["userContext"] = json!(null)),
            "invalid-input",
        ),
        create(
            "document: `sessionId` twice",
            "{\"sessionId\":\"a\",\"sessionId\":\"b\"}",
            "invalid-input",
        ),
        create(
            "document: over 64 KiB",
            with(fresh(), |d| d["blob"] = json!("x".repeat(70_000))),
            "too-large",
        ),
        Row {
            stdin: Some(fresh().to_string().replace("s2", "s1").into_bytes()),
            ..row(
                "document: a live id again",
                &["create"],
                Some("already-exists"),
                2,
            )
        },
        update(
            "patch: changes `sessionId`",
            r#"{"sessionId": "other"}"#,
            "invalid-input",
        ),
        update(
            "patch: `expiresAt` null",
            r#"{"expiresAt": null}"#,
            "invalid-input",
        ),
        update(
            "patch: `accessCount` a string",
            r#"{"security": {"accessCount": "1"}}"#,
            "invalid-input",
        ),
        Row {
            stdin: Some(b"{}".to_vec()),
            ..row(
                "patch: an absent session",
                &["update", "nobody"],
                Some("not-found"),
                1,
            )
        },
        row(
            "size: `--max-session-bytes 10`",
            &["--max-session-bytes", "10", "count"],
            Some("invalid-input"),
            2,
        ),
        row(
            "size: `--idle-timeout-ms 0`",
            &["--idle-timeout-ms", "0", "count"],
            Some("invalid-input"),
            2,
        ),
        Row {
            secret: Some(""),
            ..row("secret: empty", &["count"], Some("invalid-input"), 2)
        },
        Row {
            secret: Some("short"),
            ..row(
                "secret: a 5-character passphrase",
                &["count"],
                Some("invalid-input"),
                2,
            )
        },
        Row {
            secret: Some("hex:4242"),
            ..row("secret: a 2-byte raw key", &["count"], Some("usage"), 2)
        },
        Row {
            secret: Some("hex:zz"),
            ..row(
                "secret: a raw key that is not hex",
                &["count"],
                Some("usage"),
                2,
            )
        },
        Row {
            secret: Some("a-different-passphrase-of-enough-length"),
            ..row("secret: the wrong one", &["count"], Some("wrong-key"), 3)
        },
        Row {
            prepare: |s| std::fs::write(s.path("notes.txt"), b"mine").unwrap(),
            ..row("store: a foreign file", &["check"], None, 0)
        },
        Row {
            prepare: |s| std::os::unix::fs::symlink("/etc/passwd", s.path("evil.svs")).unwrap(),
            ..row(
                "store: a symlink named like a session, pointing outside",
                &["get", "evil"],
                Some("not-found"),
                1,
            )
        },
        Row {
            prepare: |s| {
                std::os::unix::fs::symlink("/etc/passwd", s.path("log/0000000000000009.seg"))
                    .unwrap()
            },
            ..row(
                "store: a symlink named like a segment, pointing outside",
                &["check"],
                None,
                0,
            )
        },
        Row {
            prepare: |s| std::fs::create_dir(s.path("s3.svs")).unwrap(),
            ..row(
                "store: a subdirectory named like a session",
                &["get", "s3"],
                Some("not-found"),
                1,
            )
        },
        Row {
            prepare: |s| std::fs::create_dir(s.path("log/0000000000000009.seg")).unwrap(),
            ..row(
                "store: a subdirectory named like a segment",
                &["get", "s1"],
                None,
                0,
            )
        },
        Row {
            prepare: |s| std::fs::remove_file(s.path("session-vault.json")).unwrap(),
            ..row(
                "store: metadata missing beside sessions",
                &["count"],
                Some("corrupted"),
                4,
            )
        },
        Row {
            prepare: |s| std::fs::write(s.path("session-vault.json"), b"{\"format\": 1").unwrap(),
            ..row("store: metadata cut off", &["count"], Some("corrupted"), 4)
        },
        Row {
            prepare: |s| {
                let mut segment = std::fs::OpenOptions::new()
                    .append(true)
                    .open(s.path("log/0000000000000001.seg"))
                    .unwrap();
                segment.write_all(b"SVLR\x01\x02 half a record").unwrap();
            },
            ..row(
                "store: garbage after the last record (a torn append)",
                &["get", "s1"],
                None,
                0,
            )
        },
        Row {
            prepare: |s| {
                let dir = s.dir.clone();
                std::fs::remove_dir_all(&dir).unwrap();
                std::fs::write(&dir, b"").unwrap();
            },
            ..row(
                "store: `--dir` is a regular file",
                &["count"],
                Some("io"),
                4,
            )
        },
        row("usage: an unknown flag", &["--bogus", "count"], None, 2),
    ];
    // `get` of an absent session prints nothing and exits 1 (documented; not an error case).
    rows.push(row(
        "id: valid but absent",
        &["get", "nobody"],
        Some("not-found"),
        1,
    ));
    rows
}

fn run(row: &Row) {
    let setup = Setup::new();
    let mut vault = VaultOptions::new()
        .clock(setup.clock.clone())
        .backend(BackendKind::Log)
        .open(&setup.dir, setup.secret.secret())
        .unwrap();
    let s1: session_vault::Session = serde_json::from_value(doc("s1", "u1", T0 + 60_000)).unwrap();
    vault.create(&s1).unwrap();
    drop(vault);
    (row.prepare)(&setup);
    let args: Vec<&str> = row.args.iter().map(String::as_str).collect();
    let mut command = cli_command(&setup, &args);
    if let Some(secret) = row.secret {
        command.env("SESSION_VAULT_SECRET", secret);
    }
    command.stdin(if row.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().unwrap();
    if let Some(bytes) = &row.stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(row.exit), "{}: {stderr}", row.input);
    match row.error {
        Some(case) => assert!(
            stderr.starts_with(&format!("session-vault: error[{case}]")),
            "{}: {stderr}",
            row.input
        ),
        None if row.exit == 0 => assert_eq!(stderr, "", "{}", row.input),
        None => {}
    }
    // Nothing a refused input touched is lost: s1 is still there (unless the row
    // removed what the store needs to open).
    if row.exit != 0 && !row.input.starts_with("store:") && row.secret.is_none() {
        let mut vault = VaultOptions::new()
            .clock(setup.clock.clone())
            .open(&setup.dir, setup.secret.secret())
            .unwrap();
        assert_eq!(vault.get("s1").unwrap(), Some(s1), "{}", row.input);
    }
}

#[test]
fn every_bad_input_gets_its_exact_error_and_exit_code() {
    let rows = rows();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    for row in &rows {
        run(row);
    }
}

#[test]
fn the_table_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/RELIABILITY.md"
    ))
    .unwrap();
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|line| line.split(" | ").next())
        .filter(|cell| cell.contains(": "))
        .collect();
    let tested: Vec<&str> = rows().iter().map(|r| r.input).collect();
    for input in &tested {
        assert!(
            documented.contains(input),
            "not in docs/RELIABILITY.md: {input}"
        );
    }
    for input in &documented {
        assert!(tested.contains(input), "documented but not tested: {input}");
    }
}
