//! [`VaultOptions`]: how a vault is opened. Only records the choices;
//! `Vault::open_with` (in `vault.rs`, with `VaultOptions::open`) applies them and their defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use session_vault_guest::{BackendKind, Clock, Durability, Erase};

/// How to open a [`Vault`]; `VaultOptions::default()` suits most uses.
#[derive(Clone, Default)]
pub struct VaultOptions {
    pub(crate) max_session_bytes: Option<u32>,
    pub(crate) clock: Option<Arc<dyn Clock + Send + Sync>>,
    pub(crate) component: Option<PathBuf>,
    pub(crate) compiled_cache: Option<PathBuf>,
    pub(crate) durability: Durability,
    pub(crate) erase: Erase,
    pub(crate) backend: Option<BackendKind>,
    pub(crate) memory_limit: Option<usize>,
    pub(crate) legacy_source: Option<PathBuf>,
    pub(crate) idle_timeout: Option<u64>,
    pub(crate) max_lifetime: Option<u64>,
    pub(crate) cache_bytes: Option<u64>,
    pub(crate) lock_timeout: Option<Duration>,
    pub(crate) redis: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) redis_timeout: Option<Duration>,
}

/// The prefix of a redis store's keys when [`VaultOptions::prefix`] names none.
pub const DEFAULT_PREFIX: &str = "session-vault";

impl VaultOptions {
    /// The default options: 64 KiB sessions, the system clock, the embedded component.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses sessions whose JSON exceeds `bytes` (1024 to 16 MiB) with `too-large`.
    pub fn max_session_bytes(mut self, bytes: u32) -> Self {
        self.max_session_bytes = Some(bytes);
        self
    }

    /// Expires sessions not accessed for `timeout` (by `security.lastAccessedAt`), on top
    /// of their absolute `expiresAt`. Off by default. See [`Vault::touch`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Caps every session's life at `max` from its `createdAt` (or its first write): past
    /// it a session is expired whatever its `expiresAt` says, and no touch moves it past.
    /// Off by default. See the WIT `config.max-lifetime`.
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(u64::try_from(max.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Keeps up to `bytes` of recently read or written sessions opened inside the
    /// component (default 8 MiB; 0 turns the cache off), so that reading them again skips
    /// the disk and the decryption. Evicted slots are overwritten with zeros; see the WIT
    /// `config.cache-bytes`.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = Some(bytes);
        self
    }

    /// How long `open` waits for another process (or vault) holding the directory to
    /// let go before failing with [`StoreError::Locked`] (default 100 ms; zero: try once).
    ///
    /// [`StoreError::Locked`]: crate::StoreError::Locked
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Gives the component this clock as its wall clock (for tests: a
    /// [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: impl Clock + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Caps the component's linear memory (default 256 MiB). A call that needs more
    /// fails with [`Error::Trap`] and leaves the vault unusable; the store on disk is
    /// unaffected.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Also gives the component read-only access to a directory written by the original
    /// TypeScript store, for [`Vault::import_legacy`]. Nothing is ever written to it.
    pub fn legacy_source(mut self, dir: impl Into<PathBuf>) -> Self {
        self.legacy_source = Some(dir.into());
        self
    }

    /// Loads the component from this file instead of the embedded one.
    pub fn component(mut self, path: impl Into<PathBuf>) -> Self {
        self.component = Some(path.into());
        self
    }

    /// When removed sessions are erased from the disk (default [`Erase::Deferred`]: at
    /// the next compaction; see the WIT `erase` enum).
    pub fn erase(mut self, erase: Erase) -> Self {
        self.erase = erase;
        self
    }

    /// How much of each session write and removal is on disk when the call returns
    /// (default [`Durability::Durable`]; see the WIT `durability` enum for the trade-off).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// For a new store, where its sessions are kept (default [`BackendKind::Log`]);
    /// an existing store keeps the backend it was created with, and asking it for the
    /// other one is [`StoreError::InvalidInput`].
    ///
    /// [`StoreError::InvalidInput`]: crate::StoreError::InvalidInput
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Keeps the compiled embedded component in `dir` and loads it from there in later
    /// processes instead of compiling it again (~0.4 s): for short-lived processes such as
    /// the CLI. A long-running process compiles once anyway. `dir` is created private
    /// (0700); an artifact is loaded only if it and `dir` belong to this user and no one
    /// else can write them, since loading runs its machine code. The first open in a
    /// process decides; any failure of the cache just costs the compile.
    pub fn compiled_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.compiled_cache = Some(dir.into());
        self
    }

    /// Keeps the store in the Redis (or Valkey) server at `url`
    /// (`redis://[user:password@]host:port/db`) instead of the directory: the `redis`
    /// backend, run by the key-value component. Many hosts may open one store at once;
    /// no directory lock is taken (the directory is only the target of a `migrate`).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis = Some(url.into());
        self.backend = Some(BackendKind::Redis);
        self
    }

    /// Attaches the Redis (or Valkey) server at `url` to a directory store without keeping
    /// the store there: [`Vault::migrate`] to [`BackendKind::Redis`] then moves the store
    /// into the bucket [`VaultOptions::prefix`] names, after which the vault serves it from
    /// there; and a directory whose store was moved opens that bucket (finishing the move
    /// if a crash interrupted it). The key-value component runs the store.
    ///
    /// [`Vault::migrate`]: crate::Vault::migrate
    pub fn redis_server(mut self, url: impl Into<String>) -> Self {
        self.redis = Some(url.into());
        self
    }

    /// With [`VaultOptions::redis`], the prefix of the store's keys (default
    /// `session-vault`): 1 to 64 characters of `[A-Za-z0-9_.:-]`, written as Redis users
    /// write prefixes (`sess:`: trailing colons are the separator, so `sess:` and `sess`
    /// are one store). Keys are `{name}:…`, `name` the prefix without trailing colons.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// With [`VaultOptions::redis`], how long connecting and each request may take
    /// before the call fails with [`StoreError::Unavailable`] (default 2 s).
    ///
    /// [`StoreError::Unavailable`]: crate::StoreError::Unavailable
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = Some(timeout);
        self
    }
}
