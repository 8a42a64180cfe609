//! The CLI front: the `session-vault` binary, one process per operation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use session_vault::{BackendKind, Durability, Erase, ManualClock};

use super::*;

/// The `session-vault` binary, one process per operation.
pub struct Cli {
    dir: PathBuf,
    secret: String,
    clock: ManualClock,
    max_session_bytes: Option<u32>,
    idle_timeout: Option<u64>,
    max_lifetime: Option<u64>,
    durability: Durability,
    erase: Erase,
    /// Given to the first command, which creates the store; later ones use what it recorded.
    backend: Option<BackendKind>,
    /// `--redis URL --prefix P`, given to every command of a redis setup.
    redis: Option<RedisStore>,
    /// The same, given to `migrate --to redis` of a directory setup.
    server: Option<RedisStore>,
}

/// The exit code the CLI documents for each WIT error case.
pub fn exit_code(kind: &str) -> i32 {
    match kind {
        "not-found" | "removed" => 1,
        "invalid-id" | "invalid-input" | "already-exists" | "too-large" | "usage" => 2,
        "wrong-key" => 3,
        _ => 4,
    }
}

impl Cli {
    /// Runs the binary; on failure checks the one-line error and its exit code.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Value, Fail> {
        let (code, stdout, stderr) = self.run_raw(args, stdin, &[]);
        if code == 0 {
            assert!(stderr.is_empty(), "success with stderr: {stderr}");
            return Ok(serde_json::from_str(&stdout).expect("stdout is JSON"));
        }
        assert!(stdout.is_empty(), "failure with stdout");
        Err(error_kind(code, &stderr))
    }

    /// Runs the binary with extra environment; returns exit code, stdout and stderr.
    pub fn run_raw(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> (i32, String, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_session-vault"));
        command
            .arg("--dir")
            .arg(&self.dir)
            .env("SESSION_VAULT_SECRET", &self.secret)
            .env("SESSION_VAULT_NOW", self.clock_now().to_string())
            .env("SESSION_VAULT_CACHE_DIR", compiled_cache())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(env.iter().copied());
        if let Some(max) = self.max_session_bytes {
            command.arg("--max-session-bytes").arg(max.to_string());
        }
        if let Some(ms) = self.idle_timeout {
            command.arg("--idle-timeout-ms").arg(ms.to_string());
        }
        if let Some(ms) = self.max_lifetime {
            command.arg("--max-lifetime-ms").arg(ms.to_string());
        }
        if self.durability == Durability::Relaxed {
            command.arg("--durability").arg("relaxed");
        }
        if let Some(redis) = &self.redis {
            command
                .arg("--redis")
                .arg(&redis.url)
                .arg("--prefix")
                .arg(&redis.prefix);
        } else if let Some(backend) = self.backend {
            command.arg("--backend").arg(backend.name());
        }
        if self.erase == Erase::Immediate {
            command.arg("--erase").arg("immediate");
        }
        command.args(args);
        let mut child = command.spawn().expect("starting session-vault");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // The CLI may refuse before reading everything; a broken pipe is its answer.
            let _ = pipe.write_all(text.as_bytes());
        }
        let output = child.wait_with_output().expect("waiting for session-vault");
        let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
        let code = output.status.code().expect("session-vault exited normally");
        let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
        (code, stdout, stderr)
    }

    /// A command that prints a session, or exits 1 (`not-found`) when it is absent.
    fn found(&self, args: &[&str]) -> Result<Option<Value>, Fail> {
        match self.run(args, None) {
            Ok(doc) => Ok(Some(doc)),
            Err(kind) if kind == "not-found" => Ok(None),
            Err(kind) => Err(kind),
        }
    }

    fn clock_now(&self) -> u64 {
        session_vault::Clock::now(&self.clock)
    }

    fn number(value: Value, field: &str) -> u64 {
        value[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} in {value}"))
    }
}

/// The WIT case of a one-line CLI error, checked against its exit code.
fn error_kind(code: i32, stderr: &str) -> Fail {
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    let kind = stderr
        .strip_prefix("session-vault: error[")
        .and_then(|rest| rest.split_once(']'))
        .map(|(kind, _)| kind.to_owned())
        .unwrap_or_else(|| panic!("unexpected error line: {stderr:?}"));
    assert_eq!(code, exit_code(&kind), "exit code of {kind}: {stderr}");
    kind
}

impl Front for Cli {
    const LOCKS: bool = true;
    const REOPENS: bool = true;
    const PRIVATE_FILES: bool = true;

    fn open(setup: &Setup) -> Result<Self, Fail> {
        let cli = Cli {
            dir: setup.dir.clone(),
            secret: setup.secret.text(),
            clock: setup.clock.clone(),
            max_session_bytes: setup.max_session_bytes,
            idle_timeout: setup.idle_timeout,
            max_lifetime: setup.max_lifetime,
            durability: setup.durability,
            erase: setup.erase,
            backend: Some(setup.backend),
            redis: setup.redis.clone(),
            server: setup.server.clone(),
        };
        // Every command opens the store; `count` shows whether it opens.
        cli.run(&["count"], None)?;
        Ok(Cli {
            backend: None,
            ..cli
        })
    }

    fn create_text(&mut self, text: &str) -> Result<(), Fail> {
        self.run(&["create"], Some(text)).map(drop)
    }

    fn set_text(&mut self, text: &str) -> Result<(), Fail> {
        let printed = self.run(&["set"], Some(text))?;
        let id = Session::parse(text.as_bytes())
            .map(|s| s.id().to_owned())
            .ok();
        assert_eq!(
            printed,
            serde_json::json!({ "sessionId": id }),
            "set prints the id"
        );
        Ok(())
    }

    fn set_if_unchanged(&mut self, doc: &Value, expected: &Value) -> Result<bool, Fail> {
        // As `get` printed it, in a file beside the store (never inside its directory).
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), format!("{expected}\n")).expect("the expected session");
        let path = file.path().to_str().expect("a UTF-8 path");
        match self.run(&["set", "--if-unchanged", path], Some(&doc.to_string())) {
            Ok(printed) => {
                assert_eq!(
                    printed,
                    serde_json::json!({ "sessionId": doc["sessionId"] })
                );
                Ok(true)
            }
            Err(kind) if kind == "not-found" => Ok(false),
            Err(other) => Err(other),
        }
    }

    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        self.found(&["get", "--", id])
    }

    fn touch_until(&mut self, id: &str, expires_at: u64) -> Result<Option<Value>, Fail> {
        let at = expires_at.to_string();
        self.found(&["touch", "--expires-at", &at, "--", id])
    }

    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        self.found(&["touch", "--", id])
    }

    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail> {
        self.run(&["update", "--", id], Some(patch))
    }

    fn delete(&mut self, id: &str) -> Result<bool, Fail> {
        let out = self.run(&["delete", "--", id], None)?;
        Ok(out["deleted"].as_bool().expect("deleted is a bool"))
    }

    fn cleanup(&mut self) -> Result<u64, Fail> {
        Ok(Self::number(self.run(&["cleanup"], None)?, "removed"))
    }

    fn page_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdsPage, Fail> {
        let limit = limit.to_string();
        let mut args = vec!["list", "--ids", "--limit", &limit];
        args.extend(after.iter().flat_map(|a| ["--after", a]));
        let out = self.run(&args, None)?;
        let ids = serde_json::from_value(out["ids"].clone()).expect("list --ids prints ids");
        Ok((ids, out["next"].as_str().map(str::to_owned)))
    }

    fn page(&mut self, after: Option<&str>, limit: u32) -> Result<Page, Fail> {
        let limit = limit.to_string();
        let mut args = vec!["list", "--limit", &limit];
        args.extend(after.iter().flat_map(|a| ["--after", a]));
        let out = self.run(&args, None)?;
        let sessions = out["sessions"].as_array().expect("list prints sessions");
        Ok((sessions.clone(), out["next"].as_str().map(str::to_owned)))
    }

    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail> {
        let out = self.run(&["list", "--user", user], None)?;
        Ok(out.as_array().expect("list prints an array").clone())
    }

    fn count(&mut self) -> Result<u64, Fail> {
        Ok(Self::number(self.run(&["count"], None)?, "count"))
    }

    fn clear(&mut self) -> Result<u64, Fail> {
        Ok(Self::number(
            self.run(&["clear", "--yes"], None)?,
            "removed",
        ))
    }

    fn revoke_user(&mut self, user: &str) -> Result<u64, Fail> {
        Ok(Self::number(
            self.run(&["revoke-user", "--", user], None)?,
            "removed",
        ))
    }

    fn check(&mut self) -> Result<Value, Fail> {
        self.run(&["check"], None)
    }

    fn add_key(&mut self, secret: &TestSecret) -> Result<u32, Fail> {
        let text = secret.text();
        let (code, stdout, stderr) = self.run_raw(
            &["key", "add"],
            None,
            &[("SESSION_VAULT_NEW_SECRET", &text)],
        );
        if code != 0 {
            return Err(error_kind(code, &stderr));
        }
        let out: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
        if out["current"] == true {
            self.secret = text;
        }
        Ok(out["keyId"].as_u64().expect("keyId") as u32)
    }

    fn keys(&mut self) -> Result<Value, Fail> {
        self.run(&["key", "list"], None)
    }

    fn rekey(&mut self) -> Result<u64, Fail> {
        Ok(Self::number(self.run(&["rekey"], None)?, "rekeyed"))
    }

    fn retire_key(&mut self, id: u32) -> Result<(), Fail> {
        self.run(&["key", "retire", &id.to_string()], None)
            .map(drop)
    }

    fn compact(&mut self) -> Result<u64, Fail> {
        Ok(Self::number(self.run(&["compact"], None)?, "reclaimed"))
    }

    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail> {
        let mut args = vec!["migrate", "--to", to.name()];
        let server = self.server.clone().filter(|_| to == BackendKind::Redis);
        if let Some(server) = &server {
            args.extend(["--redis", &server.url, "--prefix", &server.prefix]);
        }
        let out = self.run(&args, None)?;
        assert_eq!(out["backend"], to.name());
        if server.is_some() {
            // The store is in the bucket now: later commands go there.
            self.redis = server;
        }
        Ok(Self::number(out, "migrated"))
    }

    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail> {
        let from = from.to_str().expect("a UTF-8 path");
        let args = ["import-legacy", "--from", from];
        let (code, stdout, stderr) =
            self.run_raw(&args, None, &[("SESSION_VAULT_LEGACY_SECRET", secret)]);
        if code != 0 && stdout.is_empty() {
            return Err(error_kind(code, &stderr));
        }
        let out: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
        let failed: Vec<(String, String)> = out["failed"]
            .as_array()
            .expect("failed is an array")
            .iter()
            .map(|f| {
                (
                    f["file"].as_str().unwrap().to_owned(),
                    f["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if failed.is_empty() {
            assert_eq!((code, stderr.as_str()), (0, ""));
        } else {
            assert_eq!(error_kind(code, &stderr), "corrupted");
        }
        let count = |field: &str| out[field].as_u64().expect("a count") as usize;
        assert_eq!(
            out["expiredIds"].as_array().map(Vec::len),
            Some(count("expired"))
        );
        Ok(Imported {
            imported: count("imported"),
            expired: count("expired"),
            already_present: count("alreadyPresent"),
            failed,
        })
    }
}
