//! The front ends the suite drives: the Rust API (the component in wasmtime), the CLI
//! binary (the same, one process per operation) and the native core (no wasm).
//!
//! Every front takes and returns JSON documents, and reports a failure as the WIT error
//! case it maps to, so one suite can hold them all to the same answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use session_vault::{
    BackendKind, Durability, Erase, ManualClock, Secret, SessionData, SessionPatch, StoreError,
    Vault, VaultOptions,
};
use session_vault_guest::store::{Destination, OpenBucket, OpenDirectory, Store};
use session_vault_guest::{
    BucketStore, Config, DirectoryBackend, DirectoryStore, LegacyStore, Sessions, StdDir,
};

/// A failure, as its WIT error case name (`not-found`, `invalid-id`, ...).
pub type Fail = String;

/// A temporary store directory, its secret and its clock.
pub struct Setup {
    _tmp: tempfile::TempDir,
    /// The store directory (inside the temporary directory, created by the store).
    pub dir: PathBuf,
    /// The secret every front opens the store with.
    pub secret: TestSecret,
    /// The time every front's store sees.
    pub clock: ManualClock,
    /// The size limit every front opens the store with.
    pub max_session_bytes: Option<u32>,
    /// The idle timeout (ms) every front opens the store with.
    pub idle_timeout: Option<u64>,
    /// The durability every front opens the store with.
    pub durability: Durability,
    /// The backend every front creates the store with.
    pub backend: BackendKind,
    /// When every front's store erases removed sessions.
    pub erase: Erase,
    /// With the `redis` backend: the server and this setup's own prefix.
    pub redis: Option<RedisStore>,
    /// A server attached to a directory store: where `migrate --to redis` moves it.
    pub server: Option<RedisStore>,
}

/// Where a `redis` setup's store lives: a server and a prefix no other setup uses.
#[derive(Debug, Clone)]
pub struct RedisStore {
    /// `redis://127.0.0.1:PORT/0`.
    pub url: String,
    /// The store's bucket, unique to the setup.
    pub prefix: String,
}

/// A raw connection to the test server at `url`, as anyone with access to it has.
pub fn raw_connection(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(std::time::Duration::from_secs(2))
        .unwrap()
}

impl RedisStore {
    fn connection(&self) -> redis::Connection {
        raw_connection(&self.url)
    }

    /// The value of `name` in the store's bucket.
    pub fn value(&self, name: &str) -> Option<Vec<u8>> {
        let key = format!("{{{}}}:{name}", self.prefix);
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .unwrap()
    }

    /// Every key of the store's bucket but its indexes (`x`, `u:…`), prefix removed, sorted.
    pub fn names(&self) -> Vec<String> {
        let prefix = format!("{{{}}}:", self.prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut self.connection())
            .unwrap();
        let mut names: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|n| *n != "x" && !n.starts_with("u:"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

/// The test server `scripts/test` started (`SESSION_VAULT_TEST_REDIS_URL`), if any.
/// Without one a redis case prints a notice and passes, except under CI, where it fails.
pub fn redis_url() -> Option<String> {
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

/// A prefix no other store of this test run uses.
pub fn unique_prefix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

thread_local! {
    static BACKEND: std::cell::Cell<BackendKind> = const { std::cell::Cell::new(BackendKind::Files) };
}

/// Runs `case` with every `Setup::new()` on this thread creating stores in `backend`
/// (for `redis`, only if the test server is there: see [`redis_url`]).
pub fn with_backend(backend: BackendKind, case: impl FnOnce()) {
    if backend == BackendKind::Redis && redis_url().is_none() {
        return;
    }
    BACKEND.set(backend);
    case();
}

/// A secret in the forms the API and the CLI take it.
#[derive(Clone)]
pub enum TestSecret {
    /// A raw key.
    Raw([u8; 32]),
    /// A passphrase.
    Phrase(String),
}

impl TestSecret {
    pub fn secret(&self) -> Secret {
        match self {
            TestSecret::Raw(key) => Secret::RawKey(key.to_vec()),
            TestSecret::Phrase(phrase) => Secret::Passphrase(phrase.clone()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            TestSecret::Raw(key) => format!("hex:{}", hex::encode(key)),
            TestSecret::Phrase(phrase) => phrase.clone(),
        }
    }
}

/// Now, in the suite: 2030-01-01T00:00:00Z.
pub const T0: u64 = 1_893_456_000_000;

impl Setup {
    pub fn new() -> Setup {
        let tmp = tempfile::tempdir().expect("creating a temporary directory");
        let dir = tmp.path().join("store");
        let backend = BACKEND.get();
        let redis = (backend == BackendKind::Redis).then(|| RedisStore {
            url: redis_url().expect("with_backend checked the server"),
            prefix: unique_prefix(),
        });
        Setup {
            _tmp: tmp,
            dir,
            secret: TestSecret::Raw([0x42; 32]),
            clock: ManualClock::new(T0),
            max_session_bytes: None,
            idle_timeout: None,
            durability: Durability::Durable,
            backend,
            erase: Erase::Deferred,
            redis,
            server: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Names in the store directory, sorted; for `redis`, the keys of the store's bucket
    /// (without the prefix) other than its indexes.
    pub fn names(&self) -> Vec<String> {
        match &self.redis {
            Some(redis) => redis.names(),
            None => names(&self.dir),
        }
    }

    /// The store's metadata as stored (`session-vault.json`, or the bucket's `meta`).
    pub fn metadata(&self) -> Vec<u8> {
        match &self.redis {
            Some(redis) => redis.value("meta").expect("the bucket holds its metadata"),
            None => std::fs::read(self.path("session-vault.json")).unwrap(),
        }
    }

    /// What the store directory holds when these sessions (and no others) are stored:
    /// for `files` their files beside the metadata, for `log` the metadata and `log/`;
    /// for `redis`, the bucket's metadata, names key and records.
    pub fn expected_names(&self, ids: &[&str]) -> Vec<String> {
        if self.redis.is_some() {
            let mut names = vec!["meta".to_owned(), "names".to_owned()];
            names.extend(ids.iter().map(|id| format!("s:{id}")));
            names.sort();
            return names;
        }
        let mut names = vec!["session-vault.json".to_owned(), self.ledger_name()];
        match self.backend {
            BackendKind::Log => names.insert(0, "log".to_owned()),
            _ => names.extend(ids.iter().map(|id| format!("{id}.svs"))),
        }
        names.sort();
        names
    }

    /// The file name of the version ledger the store's metadata names.
    pub fn ledger_name(&self) -> String {
        let meta: Value =
            serde_json::from_slice(&std::fs::read(self.path("session-vault.json")).unwrap())
                .unwrap();
        let generation = meta["ledger"]
            .as_u64()
            .expect("the metadata names a ledger");
        format!("session-vault.{generation:016x}.ledger")
    }

    /// Whether the store wrote no session at all (`log`: no segment either; `log/` itself
    /// is created with the first segment).
    pub fn assert_nothing_written(&self) {
        if self.redis.is_some() {
            assert_eq!(self.names(), self.expected_names(&[]), "nothing written");
            return;
        }
        let mut found = self.names();
        if self.backend == BackendKind::Log {
            assert_eq!(names(&self.path("log")), Vec::<String>::new(), "no segment");
            found.retain(|name| name != "log");
        }
        let mut expected = vec![self.ledger_name(), "session-vault.json".to_owned()];
        expected.sort();
        assert_eq!(found, expected, "nothing written");
    }

    /// Whether session `id`'s data is still on disk (`log`: its segment is).
    pub fn stored(&self, id: &str) -> bool {
        match self.backend {
            BackendKind::Log => self.path("log/0000000000000001.seg").exists(),
            _ => self.path(&format!("{id}.svs")).exists(),
        }
    }
}

/// Where CLI runs keep the compiled component: shared by every run of this build, and
/// not the user's ~/.cache.
pub fn compiled_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-cache")
}

/// A one-shot `session-vault` command on `setup`'s store, with its secret and clock, its
/// output captured.
pub fn cli_command(setup: &Setup, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_session-vault"));
    command
        .arg("--dir")
        .arg(&setup.dir)
        .args(args)
        .env("SESSION_VAULT_SECRET", setup.secret.text())
        .env("SESSION_VAULT_NOW", T0.to_string())
        .env("SESSION_VAULT_CACHE_DIR", compiled_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Every temporary file (`*.tmp`) anywhere under `dir`: none may survive a reopen.
pub fn temporary_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            found.extend(temporary_files(&entry.path()));
        } else if name.ends_with(".tmp") {
            found.push(name);
        }
    }
    found
}

/// Names in a directory, sorted; empty if it does not exist.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.expect("reading a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// One way of driving the store.
pub trait Front: Sized {
    /// Whether the front holds the host's directory lock.
    const LOCKS: bool;
    /// Whether the front opens the store anew for every operation (the CLI).
    const REOPENS: bool;
    /// Whether every file the front's store writes is 0600 whatever the umask (the CLI
    /// sets its own; the native core sets modes; the library leaves them to the process).
    const PRIVATE_FILES: bool;
    fn open(setup: &Setup) -> Result<Self, Fail>;
    /// `create` with a document as JSON text, which may be malformed.
    fn create_text(&mut self, text: &str) -> Result<(), Fail>;
    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail>;
    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail>;
    /// `update` with a patch as JSON text, which may be malformed.
    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail>;
    fn delete(&mut self, id: &str) -> Result<bool, Fail>;
    fn cleanup(&mut self) -> Result<u64, Fail>;
    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail>;
    fn count(&mut self) -> Result<u64, Fail>;
    fn clear(&mut self) -> Result<u64, Fail>;
    fn revoke_user(&mut self, user: &str) -> Result<u64, Fail>;
    fn check(&mut self) -> Result<Value, Fail>;
    /// `add-key`; if the key became current, the front opens the store with it from then on.
    fn add_key(&mut self, secret: &TestSecret) -> Result<u32, Fail>;
    /// `keys`, as JSON `[{id, current, retired, sessions}]`.
    fn keys(&mut self) -> Result<Value, Fail>;
    /// `rekey` to the end; how many sessions were re-encrypted.
    fn rekey(&mut self) -> Result<u64, Fail>;
    fn retire_key(&mut self, id: u32) -> Result<(), Fail>;
    /// `compact` to the end; the bytes reclaimed.
    fn compact(&mut self) -> Result<u64, Fail>;
    /// Moves the store to `to` ("files" or "log"); how many sessions moved.
    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail>;
    /// `import-legacy` from `from` with the legacy `secret`.
    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail>;

    fn create(&mut self, doc: &Value) -> Result<(), Fail> {
        self.create_text(&doc.to_string())
    }

    fn update(&mut self, id: &str, patch: &Value) -> Result<Value, Fail> {
        self.update_text(id, &patch.to_string())
    }
}

/// What an import reported, the same from every front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub imported: usize,
    pub expired: usize,
    pub already_present: usize,
    /// (file, reason) of every file not imported.
    pub failed: Vec<(String, String)>,
}

impl From<session_vault::ImportReport> for Imported {
    fn from(r: session_vault::ImportReport) -> Self {
        Imported {
            imported: r.imported.len(),
            expired: r.expired.len(),
            already_present: r.already_present.len(),
            failed: r.failed.into_iter().map(|f| (f.file, f.reason)).collect(),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Fail> {
    serde_json::from_str(text).map_err(|_| "invalid-input".to_owned())
}

fn value(session: &SessionData) -> Value {
    serde_json::to_value(session).expect("a session serializes")
}

/// The Rust API: `session_vault::Vault`, the component in wasmtime.
pub struct Api {
    vault: Option<Vault>,
    options: VaultOptions,
    dir: PathBuf,
    secret: Secret,
}

impl Api {
    fn vault(&mut self) -> &mut Vault {
        self.vault.as_mut().expect("the vault is open")
    }
}

fn api_fail(error: session_vault::Error) -> Fail {
    match error.store() {
        Some(store) => store.kind().to_owned(),
        None => panic!("the component failed: {error}"),
    }
}

impl Front for Api {
    const LOCKS: bool = true;
    const REOPENS: bool = false;
    const PRIVATE_FILES: bool = false;

    fn open(setup: &Setup) -> Result<Self, Fail> {
        let mut options = VaultOptions::new()
            .clock(setup.clock.clone())
            .durability(setup.durability)
            .backend(setup.backend)
            .erase(setup.erase);
        if let Some(max) = setup.max_session_bytes {
            options = options.max_session_bytes(max);
        }
        if let Some(ms) = setup.idle_timeout {
            options = options.idle_timeout(std::time::Duration::from_millis(ms));
        }
        if let Some(redis) = &setup.redis {
            options = options.redis(&redis.url).prefix(&redis.prefix);
        }
        if let Some(server) = &setup.server {
            options = options.redis_server(&server.url).prefix(&server.prefix);
        }
        let vault = options
            .open(&setup.dir, setup.secret.secret())
            .map_err(api_fail)?;
        Ok(Api {
            vault: Some(vault),
            options,
            dir: setup.dir.clone(),
            secret: setup.secret.secret(),
        })
    }

    fn create_text(&mut self, text: &str) -> Result<(), Fail> {
        let session: SessionData = parse(text)?;
        self.vault().create(&session).map_err(api_fail)
    }

    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        Ok(self.vault().get(id).map_err(api_fail)?.as_ref().map(value))
    }

    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        Ok(self
            .vault()
            .touch(id)
            .map_err(api_fail)?
            .as_ref()
            .map(value))
    }

    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail> {
        let patch: SessionPatch = parse(patch)?;
        Ok(value(&self.vault().update(id, &patch).map_err(api_fail)?))
    }

    fn delete(&mut self, id: &str) -> Result<bool, Fail> {
        self.vault().delete(id).map_err(api_fail)
    }

    fn cleanup(&mut self) -> Result<u64, Fail> {
        self.vault().cleanup().map_err(api_fail)
    }

    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail> {
        Ok(self
            .vault()
            .user_sessions(user)
            .map_err(api_fail)?
            .iter()
            .map(value)
            .collect())
    }

    fn count(&mut self) -> Result<u64, Fail> {
        self.vault().count().map_err(api_fail)
    }

    fn clear(&mut self) -> Result<u64, Fail> {
        self.vault().clear().map_err(api_fail)
    }

    fn revoke_user(&mut self, user: &str) -> Result<u64, Fail> {
        self.vault().revoke_user(user).map_err(api_fail)
    }

    fn check(&mut self) -> Result<Value, Fail> {
        Ok(
            serde_json::to_value(self.vault().check().map_err(api_fail)?)
                .expect("a report serializes"),
        )
    }

    fn add_key(&mut self, secret: &TestSecret) -> Result<u32, Fail> {
        let id = self.vault().add_key(&secret.secret()).map_err(api_fail)?;
        let keys = self.vault().keys().map_err(api_fail)?;
        if keys.iter().any(|k| k.id == id && k.current) {
            self.secret = secret.secret();
        }
        Ok(id)
    }

    fn keys(&mut self) -> Result<Value, Fail> {
        Ok(serde_json::to_value(self.vault().keys().map_err(api_fail)?).expect("keys serialize"))
    }

    fn rekey(&mut self) -> Result<u64, Fail> {
        self.vault().rekey(|_, _| {}).map_err(api_fail)
    }

    fn retire_key(&mut self, id: u32) -> Result<(), Fail> {
        self.vault().retire_key(id).map_err(api_fail)
    }

    fn compact(&mut self) -> Result<u64, Fail> {
        self.vault().compact(|_, _| {}).map_err(api_fail)
    }

    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail> {
        self.vault().migrate(to).map_err(api_fail)
    }

    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail> {
        // The legacy directory is preopened when the vault opens: reopen with it.
        drop(self.vault.take());
        let options = self.options.clone().legacy_source(from);
        self.vault = Some(
            options
                .open(&self.dir, self.secret.clone())
                .map_err(api_fail)?,
        );
        let mut calls = Vec::new();
        let report = self
            .vault()
            .import_legacy(secret, |done, total| calls.push((done, total)))
            .map_err(api_fail)?;
        let files = calls.last().map_or(0, |&(_, total)| total);
        assert_eq!(calls.first(), Some(&(0, files)), "progress starts at zero");
        assert_eq!(
            calls.last(),
            Some(&(files, files)),
            "progress ends at the total"
        );
        Ok(report.into())
    }
}

/// The `session-vault` binary, one process per operation.
pub struct Cli {
    dir: PathBuf,
    secret: String,
    clock: ManualClock,
    max_session_bytes: Option<u32>,
    idle_timeout: Option<u64>,
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
        "not-found" => 1,
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

    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        self.found(&["get", "--", id])
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

/// The store core built natively, the same logic without wasm: over `std::fs` for a
/// directory setup, over the test server for a `redis` one. Like the component, it
/// moves between the setup's directory and the server attached to it (`Setup::server`)
/// and then serves the store where it went.
pub struct Native {
    store: Store<StdDir, session_vault::RedisBucket, ManualClock>,
    /// Where `migrate` may move the store.
    places: NativePlaces,
}

/// The setup's directory and server, and how to open a store there.
#[derive(Clone)]
struct NativePlaces {
    dir: PathBuf,
    durability: Durability,
    server: Option<RedisStore>,
    config: Config,
    clock: ManualClock,
}

fn native_fail(error: StoreError) -> Fail {
    error.kind().to_owned()
}

/// The bucket `server` names, as the native core opens it.
fn native_bucket(server: &RedisStore) -> Result<session_vault::RedisBucket, StoreError> {
    let config = session_vault::RedisConfig {
        url: server.url.clone(),
        timeout: std::time::Duration::from_secs(2),
    };
    session_vault::RedisBucket::open(&config, &server.prefix)
}

/// The `to` backend in `dir`, created private as the host creates it.
fn native_directory(
    dir: &Path,
    to: BackendKind,
    durability: Durability,
) -> Result<DirectoryBackend<StdDir>, StoreError> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .expect("creating the store directory");
    DirectoryBackend::open(StdDir::new(dir), Some(to), durability)
}

impl Native {
    fn sessions(&mut self) -> &mut dyn Sessions {
        self.store.sessions()
    }
}

impl Front for Native {
    const LOCKS: bool = false;
    const REOPENS: bool = false;
    const PRIVATE_FILES: bool = true;

    fn open(setup: &Setup) -> Result<Self, Fail> {
        let mut config = Config::new(setup.secret.secret());
        config.max_session_bytes = setup.max_session_bytes;
        config.idle_timeout = setup.idle_timeout;
        config.erase = setup.erase;
        let places = NativePlaces {
            dir: setup.dir.clone(),
            durability: setup.durability,
            server: setup.server.clone(),
            config: config.clone(),
            clock: setup.clock.clone(),
        };
        let clock = setup.clock.clone();
        let store = match &setup.redis {
            Some(redis) => {
                let bucket = native_bucket(redis).map_err(native_fail)?;
                Store::Bucket(Box::new(
                    BucketStore::open(bucket, clock, config).map_err(native_fail)?,
                ))
            }
            None => {
                let backend = native_directory(&setup.dir, setup.backend, setup.durability)
                    .map_err(native_fail)?;
                Store::Directory(Box::new(
                    DirectoryStore::open(backend, clock, config).map_err(native_fail)?,
                ))
            }
        };
        Ok(Native { store, places })
    }

    fn create_text(&mut self, text: &str) -> Result<(), Fail> {
        let session: SessionData = parse(text)?;
        self.sessions().create(&session).map_err(native_fail)
    }

    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        let session = self.sessions().get(id).map_err(native_fail)?;
        Ok(session.as_ref().map(value))
    }

    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        let session = self.sessions().touch(id).map_err(native_fail)?;
        Ok(session.as_ref().map(value))
    }

    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail> {
        let patch: SessionPatch = parse(patch)?;
        Ok(value(
            &self.sessions().update(id, patch).map_err(native_fail)?,
        ))
    }

    fn delete(&mut self, id: &str) -> Result<bool, Fail> {
        self.sessions().delete(id).map_err(native_fail)
    }

    fn cleanup(&mut self) -> Result<u64, Fail> {
        self.sessions().cleanup().map_err(native_fail)
    }

    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail> {
        let sessions = self.sessions().user_sessions(user).map_err(native_fail)?;
        Ok(sessions.iter().map(value).collect())
    }

    fn count(&mut self) -> Result<u64, Fail> {
        self.sessions().count().map_err(native_fail)
    }

    fn clear(&mut self) -> Result<u64, Fail> {
        self.sessions().clear().map_err(native_fail)
    }

    fn revoke_user(&mut self, user: &str) -> Result<u64, Fail> {
        self.sessions().revoke_user(user).map_err(native_fail)
    }

    fn check(&mut self) -> Result<Value, Fail> {
        let report = self.sessions().check().map_err(native_fail)?;
        Ok(serde_json::to_value(report).expect("a report serializes"))
    }

    fn add_key(&mut self, secret: &TestSecret) -> Result<u32, Fail> {
        self.sessions()
            .add_key(&secret.secret())
            .map_err(native_fail)
    }

    fn keys(&mut self) -> Result<Value, Fail> {
        let keys = self.sessions().keys().map_err(native_fail)?;
        Ok(serde_json::to_value(keys).expect("keys serialize"))
    }

    fn rekey(&mut self) -> Result<u64, Fail> {
        let mut total = 0;
        loop {
            let step = self.sessions().rekey(7).map_err(native_fail)?;
            total += step.rekeyed;
            if step.remaining == 0 {
                return Ok(total);
            }
        }
    }

    fn retire_key(&mut self, id: u32) -> Result<(), Fail> {
        self.sessions().retire_key(id).map_err(native_fail)
    }

    fn compact(&mut self) -> Result<u64, Fail> {
        let mut reclaimed = 0;
        loop {
            let step = self.sessions().compact(2).map_err(native_fail)?;
            reclaimed += step.reclaimed;
            if step.remaining == 0 {
                return Ok(reclaimed);
            }
        }
    }

    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail> {
        let places = self.places.clone();
        let bucket = places.server.map(|server| {
            Box::new(move || native_bucket(&server)) as OpenBucket<'_, session_vault::RedisBucket>
        });
        let (dir, durability) = (places.dir, places.durability);
        let directory: OpenDirectory<'_, StdDir> =
            Box::new(move |to| native_directory(&dir, to, durability));
        let destination = Destination {
            bucket,
            directory: Some(directory),
            clock: places.clock,
            config: places.config,
        };
        self.store.migrate(to, destination).map_err(native_fail)
    }

    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail> {
        let legacy = LegacyStore::open(StdDir::new(from), secret).map_err(native_fail)?;
        let files = legacy.files().map_err(native_fail)?;
        Ok(legacy
            .import_into(self.sessions(), &files)
            .map_err(native_fail)?
            .into())
    }
}
