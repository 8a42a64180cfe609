//! The front ends the suite drives: the Rust API (the component in wasmtime), the CLI
//! binary (the same, one process per operation) and the native core (no wasm).
//!
//! Every front takes and returns JSON documents, and reports a failure as the WIT error
//! case it maps to, so one suite can hold them all to the same answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use session_vault::{BackendKind, Durability, Erase, ManualClock, Secret, Session};

mod api;
mod cli;
mod native;
mod server;

pub use api::Api;
pub use cli::Cli;
pub use native::Native;
pub use server::{RedisStore, raw_connection, redis_url, unique_prefix};

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
    /// The maximum lifetime (ms) every front opens the store with.
    pub max_lifetime: Option<u64>,
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
            max_lifetime: None,
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
    /// for `redis`, the bucket's metadata, names key, version ledger (stream `l` and
    /// snapshot `ls`) and records.
    pub fn expected_names(&self, ids: &[&str]) -> Vec<String> {
        if self.redis.is_some() {
            let mut names = ["l", "ls", "meta", "names"].map(str::to_owned).to_vec();
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
            // No write: no frame in the ledger's stream, so no stream.
            let mut expected = self.expected_names(&[]);
            expected.retain(|name| name != "l");
            assert_eq!(self.names(), expected, "nothing written");
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
    /// `set` (create or replace) with a document as JSON text, which may be malformed.
    fn set_text(&mut self, text: &str) -> Result<(), Fail>;
    /// `set-if-unchanged`: `doc` only if the session is, as stored, exactly `expected`.
    fn set_if_unchanged(&mut self, doc: &Value, expected: &Value) -> Result<bool, Fail>;
    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail>;
    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail>;
    /// `touch` that also moves `expiresAt` (a rolling expiry).
    fn touch_until(&mut self, id: &str, expires_at: u64) -> Result<Option<Value>, Fail>;
    /// `update` with a patch as JSON text, which may be malformed.
    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail>;
    fn delete(&mut self, id: &str) -> Result<bool, Fail>;
    fn cleanup(&mut self) -> Result<u64, Fail>;
    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail>;
    /// `list-ids`: one page of ids after `after`, and the next cursor.
    fn page_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdsPage, Fail>;
    /// `list`: one page of sessions after `after`, and the next cursor.
    fn page(&mut self, after: Option<&str>, limit: u32) -> Result<Page, Fail>;
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
    /// `hold-syncs` (a group commit's start). A front whose calls are each a process of
    /// their own (the CLI) has nothing to hold across them.
    fn hold_syncs(&mut self) -> Result<(), Fail> {
        Ok(())
    }
    /// `flush` (a group commit's end).
    fn flush(&mut self) -> Result<(), Fail> {
        Ok(())
    }
    /// Moves the store to `to` ("files" or "log"); how many sessions moved.
    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail>;
    /// `import-legacy` from `from` with the legacy `secret`.
    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail>;

    fn create(&mut self, doc: &Value) -> Result<(), Fail> {
        self.create_text(&doc.to_string())
    }

    fn set(&mut self, doc: &Value) -> Result<(), Fail> {
        self.set_text(&doc.to_string())
    }

    fn update(&mut self, id: &str, patch: &Value) -> Result<Value, Fail> {
        self.update_text(id, &patch.to_string())
    }
}

/// A page of ids and the cursor of the next.
pub type IdsPage = (Vec<String>, Option<String>);
/// A page of sessions and the cursor of the next.
pub type Page = (Vec<Value>, Option<String>);

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

/// A session document as the Rust API takes it, refused with the store's error case.
fn parse_session(text: &str) -> Result<Session, Fail> {
    Session::parse(text.as_bytes()).map_err(|e| e.kind().to_owned())
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Fail> {
    serde_json::from_str(text).map_err(|_| "invalid-input".to_owned())
}

fn value(session: &Session) -> Value {
    serde_json::to_value(session).expect("a session serializes")
}
