//! [`Vault`]: one open store, running the component in its own wasmtime store.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_vault_guest::{
    BackendKind, IdPage, ImportReport, KeyInfo, Report, Secret, Session, SessionPage, SessionPatch,
    StoreError, SystemClock,
};
use wasmtime::Store;
use wasmtime::component::ResourceAny;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::bindings::{SessionVaultKeyvalue as SessionVault, wit};
use crate::clock::WallClock;
use crate::convert;
use crate::engine::{self, DEFAULT_MEMORY_LIMIT, Host, Variant};
use crate::error::Error;
use crate::keyvalue::{DEFAULT_TIMEOUT, RedisConfig, Server};
use crate::lock::{LOCK_TIMEOUT, lock_dir, prepare_dir};
use crate::options::DEFAULT_PREFIX;
use crate::options::VaultOptions;

/// The guest path under which the store directory is preopened.
const GUEST_DIR: &str = "/store";
/// The guest path under which a legacy store is preopened, read-only.
const LEGACY_DIR: &str = "/legacy";
/// Sessions re-encrypted per call into the component, between progress reports.
const REKEY_BATCH: u32 = 256;
/// Legacy files imported per call into the component, between progress reports.
const IMPORT_BATCH: usize = 512;

/// An open session store: the session-vault component running in wasmtime over one
/// directory, which this vault holds an exclusive advisory lock on until dropped.
///
/// A vault is `Send` but every call takes `&mut self`: to share one between threads, put
/// it in an `Arc<Mutex<Vault>>` (each call then runs alone, in the order the lock is
/// taken). Another process opening the same directory waits up to
/// [`VaultOptions::lock_timeout`] and then fails with [`StoreError::Locked`].
pub struct Vault {
    store: Store<Host>,
    bindings: SessionVault,
    handle: Option<ResourceAny>,
    dir: PathBuf,
    legacy: bool,
    // Held for the vault's lifetime; the lock is released when the file is closed.
    // `None` for a redis store, which many hosts open at once; one that moves out to its
    // directory takes the directory's lock then, and keeps it.
    lock: Option<File>,
    /// How long taking the directory's lock may wait.
    lock_timeout: std::time::Duration,
}

/// The server of `url`; a malformed URL is `invalid-input`.
fn redis_server(url: &str, options: &VaultOptions) -> Result<Server, Error> {
    let config = RedisConfig {
        url: url.to_owned(),
        timeout: options.redis_timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    Server::new(&config).map_err(|e| {
        Error::Store(StoreError::InvalidInput(format!(
            "the redis url is not valid: {e}"
        )))
    })
}

impl VaultOptions {
    /// Opens the store in `dir` (created with mode 0700 if missing) with these options.
    pub fn open(&self, dir: impl AsRef<Path>, secret: Secret) -> Result<Vault, Error> {
        Vault::open_with(dir.as_ref(), secret, self)
    }
}

impl Vault {
    /// Opens the store in `dir` with the default options.
    ///
    /// Errors: [`StoreError::Locked`] if another vault holds the directory,
    /// [`StoreError::WrongKey`] if `secret` is not the store's, and the other store
    /// errors as documented on the WIT `open`.
    pub fn open(dir: impl AsRef<Path>, secret: Secret) -> Result<Vault, Error> {
        Vault::open_with(dir.as_ref(), secret, &VaultOptions::default())
    }

    /// Opens the store in `dir` with `options`, filling in the defaults of those not set.
    pub(crate) fn open_with(
        dir: &Path,
        secret: Secret,
        options: &VaultOptions,
    ) -> Result<Vault, Error> {
        let server = match &options.redis {
            Some(url) => Some(redis_server(url, options)?),
            None => None,
        };
        // A redis store lives in its server: its host neither creates nor locks a
        // directory (many hosts open one store at once).
        let local = options.backend != Some(BackendKind::Redis);
        if local {
            prepare_dir(dir)?;
        }
        let lock = match local {
            true => Some(lock_dir(dir, options.lock_timeout.unwrap_or(LOCK_TIMEOUT))?),
            false => None,
        };
        let server_attached = server.is_some();
        let variant = match server {
            Some(_) => Variant::Keyvalue,
            None => Variant::Plain,
        };
        let pre = match &options.component {
            None => engine::embedded(options.compiled_cache.as_deref(), variant)?,
            Some(path) => engine::from_file(path)?,
        };
        let clock = options
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let mut wasi = WasiCtxBuilder::new();
        wasi.wall_clock(WallClock(clock));
        // The vault is synchronous: run file operations on this thread rather than
        // bouncing each one through Tokio's blocking pool (10x the cost of a `get`).
        wasi.allow_blocking_current_thread(true);
        // A redis store sees the directory only if it exists: where `migrate --to
        // files|log` moves it (the host neither creates nor locks it for that).
        let preopened = local || dir.is_dir();
        if preopened {
            wasi.preopened_dir(dir, GUEST_DIR, FsPerms::ReadWrite)
                .map_err(|e| preopen_error(dir, e))?;
        }
        if let Some(legacy) = &options.legacy_source {
            wasi.preopened_dir(legacy, LEGACY_DIR, FsPerms::ReadOnly)
                .map_err(|e| preopen_error(legacy, e))?;
        }
        let mut store = engine::store(
            pre.engine(),
            wasi.build(),
            server,
            options.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
        );
        let bindings = pre.instantiate(&mut store).map_err(Error::Component)?;
        let config = wit::Config {
            secret: convert::secret_to_wit(&secret),
            directory: preopened.then(|| GUEST_DIR.into()),
            max_session_bytes: options.max_session_bytes,
            idle_timeout: options.idle_timeout,
            max_lifetime: options.max_lifetime,
            cache_bytes: options.cache_bytes,
            durability: Some(convert::durability_to_wit(options.durability)),
            erase: Some(convert::erase_to_wit(options.erase)),
            backend: options.backend.map(convert::backend_to_wit),
            // With a server, the bucket is named even for a directory store: it is where
            // `migrate --to redis` moves it.
            bucket: server_attached
                .then(|| (options.prefix.clone()).unwrap_or_else(|| DEFAULT_PREFIX.to_owned())),
        };
        let opened = bindings
            .session_vault_store_sessions()
            .store()
            .call_open(&mut store, &config);
        let handle = settle(opened)?;
        Ok(Vault {
            store,
            bindings,
            handle: Some(handle),
            dir: dir.to_path_buf(),
            legacy: options.legacy_source.is_some(),
            lock,
            lock_timeout: options.lock_timeout.unwrap_or(LOCK_TIMEOUT),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a new session. See the WIT `create` for every outcome.
    pub fn create(&mut self, session: &Session) -> Result<(), Error> {
        let session = convert::session_to_wit(session);
        self.call(|api, store, handle| api.call_create(store, handle, &session))
    }

    /// Stores a session whether or not its id is live (create or replace), in one atomic
    /// step. See the WIT `set` for every outcome.
    pub fn set(&mut self, session: &Session) -> Result<(), Error> {
        let session = convert::session_to_wit(session);
        self.call(|api, store, handle| api.call_set(store, handle, &session))
    }

    /// Stores `session` only if the live session of its id is, as stored now, exactly
    /// the document text `expected` (as [`Session`]'s `Display` writes it, which is the
    /// text every read gives); `Ok(false)`, nothing stored, if it changed since, or is
    /// absent, removed or expired: read it again and retry. With `redis`, a compare-and-swap on the
    /// record, so no other host's write in between is lost.
    pub fn set_if_unchanged(&mut self, session: &Session, expected: &str) -> Result<bool, Error> {
        let session = convert::session_to_wit(session);
        let expected = expected.to_owned();
        self.call(|api, store, handle| {
            api.call_set_if_unchanged(store, handle, &session, &expected)
        })
    }

    /// The session with this id; `Ok(None)` if it is absent or expired.
    pub fn get(&mut self, id: &str) -> Result<Option<Session>, Error> {
        let session = self.call(|api, store, handle| api.call_get(store, handle, id))?;
        Ok(session.map(convert::session_from_wit).transpose()?)
    }

    /// Records an access (now as `lastAccessedAt`, `accessCount` + 1) and returns the
    /// session; `Ok(None)` if it is absent or expired.
    pub fn touch(&mut self, id: &str) -> Result<Option<Session>, Error> {
        self.touch_until(id, None)
    }

    /// As [`Vault::touch`], and moves the session's `expiresAt` to `expires_at` if given
    /// (a rolling expiry), without rewriting the session (see the WIT `touch`).
    pub fn touch_until(
        &mut self,
        id: &str,
        expires_at: Option<u64>,
    ) -> Result<Option<Session>, Error> {
        let session =
            self.call(|api, store, handle| api.call_touch(store, handle, id, expires_at))?;
        Ok(session.map(convert::session_from_wit).transpose()?)
    }

    /// Merges `patch` into the session and returns the result; `not-found` if absent or expired.
    pub fn update(&mut self, id: &str, patch: &SessionPatch) -> Result<Session, Error> {
        let patch = convert::patch_to_wit(patch);
        let session = self.call(|api, store, handle| api.call_update(store, handle, id, &patch))?;
        Ok(convert::session_from_wit(session)?)
    }

    /// Removes the session; `Ok(false)` if there was none. Idempotent.
    pub fn delete(&mut self, id: &str) -> Result<bool, Error> {
        self.call(|api, store, handle| api.call_delete(store, handle, id))
    }

    /// Removes every expired session; returns how many.
    pub fn cleanup(&mut self) -> Result<u64, Error> {
        self.call(|api, store, handle| api.call_cleanup(store, handle))
    }

    /// The live sessions of `user_id`, oldest first.
    pub fn user_sessions(&mut self, user_id: &str) -> Result<Vec<Session>, Error> {
        let sessions =
            self.call(|api, store, handle| api.call_user_sessions(store, handle, user_id))?;
        sessions
            .into_iter()
            .map(|s| convert::session_from_wit(s).map_err(Error::Store))
            .collect()
    }

    /// Up to `limit` (1 to [`MAX_PAGE`](session_vault_guest::MAX_PAGE)) ids of live
    /// sessions after `after` (from the first if `None`), in id order, with the cursor of
    /// the next page. See the WIT `list-ids`.
    pub fn list_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdPage, Error> {
        let page =
            self.call(|api, store, handle| api.call_list_ids(store, handle, after, limit))?;
        Ok(IdPage {
            ids: page.ids,
            next: page.next,
        })
    }

    /// As [`Vault::list_ids`], with the sessions. See the WIT `list`.
    pub fn list(&mut self, after: Option<&str>, limit: u32) -> Result<SessionPage, Error> {
        let page = self.call(|api, store, handle| api.call_list(store, handle, after, limit))?;
        let sessions = (page.sessions.into_iter())
            .map(convert::session_from_wit)
            .collect::<Result<_, _>>()?;
        Ok(SessionPage {
            sessions,
            next: page.next,
        })
    }

    /// How many live sessions the store holds.
    pub fn count(&mut self) -> Result<u64, Error> {
        self.call(|api, store, handle| api.call_count(store, handle))
    }

    /// Removes every session; returns how many files were removed.
    pub fn clear(&mut self) -> Result<u64, Error> {
        self.call(|api, store, handle| api.call_clear(store, handle))
    }

    /// Removes every session of `user_id`; returns how many live ones were removed.
    pub fn revoke_user(&mut self, user_id: &str) -> Result<u64, Error> {
        self.call(|api, store, handle| api.call_revoke_user(store, handle, user_id))
    }

    /// Adds the key of `secret`; a new one becomes current (open with it from now on).
    /// Returns its id. See the WIT `add-key`.
    pub fn add_key(&mut self, secret: &Secret) -> Result<u32, Error> {
        let secret = convert::secret_to_wit(secret);
        self.call(|api, store, handle| api.call_add_key(store, handle, &secret))
    }

    /// The keyring, with how many sessions each key encrypts.
    pub fn keys(&mut self) -> Result<Vec<KeyInfo>, Error> {
        let keys = self.call(|api, store, handle| api.call_keys(store, handle))?;
        Ok(keys.into_iter().map(convert::key_info_from_wit).collect())
    }

    /// Re-encrypts every session still under an older key with the current key, in
    /// batches, calling `progress(done, total)` after each; returns how many it rewrote.
    /// Safe to interrupt at any point and to run again.
    pub fn rekey(&mut self, mut progress: impl FnMut(u64, u64)) -> Result<u64, Error> {
        let mut done = 0;
        loop {
            let step =
                self.call(|api, store, handle| api.call_rekey(store, handle, REKEY_BATCH))?;
            done += step.rekeyed;
            progress(done, done + step.remaining);
            if step.remaining == 0 || step.rekeyed == 0 {
                return Ok(done);
            }
        }
    }

    /// Holds back the syncs of a durable store's writes until [`Vault::flush`] (a group
    /// commit): with several calls to make at once, hold, make them, flush once, and only
    /// then report them done. Does nothing where writes are not synced one by one (a
    /// relaxed store, the `files` and `redis` backends).
    pub fn hold_syncs(&mut self) -> Result<(), Error> {
        self.call(|api, store, handle| api.call_hold_syncs(store, handle).map(Ok))
    }

    /// Syncs every write made since [`Vault::hold_syncs`] (then their version-ledger
    /// frames) and ends the hold. Errors: [`StoreError::Io`]; after one, drop this
    /// `Vault` and open the store again (its memory may hold writes the disk lacks).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.call(|api, store, handle| api.call_flush(store, handle))
    }

    /// Compacts the store (the `log` backend's segments, oldest first), calling
    /// `progress(done, total)` segments after each step; returns the bytes reclaimed.
    /// Safe to interrupt at any point: what was not compacted is compacted next time.
    pub fn compact(&mut self, mut progress: impl FnMut(u64, u64)) -> Result<u64, Error> {
        let (mut done, mut reclaimed) = (0, 0);
        loop {
            let step = self.call(|api, store, handle| api.call_compact(store, handle, 1))?;
            done += step.segments;
            reclaimed += step.reclaimed;
            progress(done, done + step.remaining);
            if step.remaining == 0 || step.segments == 0 {
                return Ok(reclaimed);
            }
        }
    }

    /// Retires key `id`; refused while any session still depends on it. When it returns,
    /// no record sealed under the key is left on disk.
    pub fn retire_key(&mut self, id: u32) -> Result<(), Error> {
        self.call(|api, store, handle| api.call_retire_key(store, handle, id))
    }

    /// Moves every session to the `to` backend; returns how many moved (0 if already
    /// there). Safe to interrupt at any point and to run again.
    pub fn migrate(&mut self, to: BackendKind) -> Result<u64, Error> {
        // A redis store moving out takes the directory's lock for the move, and keeps it
        // once it serves the store from there, as a directory store holds its own.
        let moving_out = match (&self.lock, to) {
            (None, BackendKind::Files | BackendKind::Log) if self.dir.is_dir() => {
                prepare_dir(&self.dir)?;
                Some(lock_dir(&self.dir, self.lock_timeout)?)
            }
            _ => None,
        };
        let to = convert::backend_to_wit(to);
        let moved = self.call(|api, store, handle| api.call_migrate(store, handle, to))?;
        if moving_out.is_some() {
            self.lock = moving_out;
        }
        Ok(moved)
    }

    /// Verifies every session file, quarantining damaged ones.
    pub fn check(&mut self) -> Result<Report, Error> {
        let report = self.call(|api, store, handle| api.call_check(store, handle))?;
        Ok(convert::report_from_wit(report))
    }

    /// Imports every session of the legacy store given to
    /// [`VaultOptions::legacy_source`], decrypted with its `secret`, calling
    /// `progress(done, total)` after each batch of files.
    ///
    /// Errors: `wrong-key` (nothing imported) if no legacy file decrypts under `secret`;
    /// `invalid-input` if the vault was opened without a legacy source; `io`. Files that
    /// fail on their own are listed in the report's `failed`, not returned as errors.
    pub fn import_legacy(
        &mut self,
        secret: &str,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        if !self.legacy {
            return Err(StoreError::InvalidInput(
                "this vault was opened without a legacy source (VaultOptions::legacy_source)"
                    .into(),
            )
            .into());
        }
        self.handle.ok_or_else(unusable)?;
        let opened = self
            .bindings
            .session_vault_store_sessions()
            .legacy_store()
            .call_open(&mut self.store, LEGACY_DIR, secret);
        let legacy = self.settle_or_poison(opened)?;
        let outcome = self.import_with(legacy, &mut progress);
        if self.handle.is_some() {
            // Nothing to release on disk: the legacy store is read-only.
            let _ = legacy.resource_drop(&mut self.store);
        }
        outcome
    }

    fn import_with(
        &mut self,
        legacy: ResourceAny,
        progress: &mut impl FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        let api = self.bindings.session_vault_store_sessions().legacy_store();
        let files = api.call_files(&mut self.store, legacy);
        let files = self.settle_or_poison(files)?;
        let mut report = ImportReport::default();
        progress(0, files.len());
        for (batch, chunk) in files.chunks(IMPORT_BATCH).enumerate() {
            let target = self.handle.ok_or_else(unusable)?;
            let api = self.bindings.session_vault_store_sessions().legacy_store();
            let imported = api.call_import_into(&mut self.store, legacy, target, chunk);
            report.extend(convert::import_report_from_wit(
                self.settle_or_poison(imported)?,
            ));
            progress(
                (batch * IMPORT_BATCH + chunk.len()).min(files.len()),
                files.len(),
            );
        }
        Ok(report)
    }

    fn settle_or_poison<T>(
        &mut self,
        outcome: wasmtime::Result<Result<T, wit::Error>>,
    ) -> Result<T, Error> {
        if outcome.is_err() {
            self.handle = None;
        }
        settle(outcome)
    }

    fn call<T>(
        &mut self,
        f: impl FnOnce(
            wit::GuestStore<'_>,
            &mut Store<Host>,
            ResourceAny,
        ) -> wasmtime::Result<Result<T, wit::Error>>,
    ) -> Result<T, Error> {
        let handle = self.handle.ok_or_else(unusable)?;
        let api = self.bindings.session_vault_store_sessions().store();
        let outcome = f(api, &mut self.store, handle);
        // A trapped instance cannot be entered again, not even to drop the resource.
        self.settle_or_poison(outcome)
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        // Writes made under `hold_syncs` are synced before the store closes (best effort:
        // none of them was reported done before a flush anyway).
        if self.handle.is_some() {
            let _ = self.flush();
        }
        if let Some(handle) = self.handle.take() {
            // Nothing else is buffered in the component: every other write was durable
            // on return.
            let _ = handle.resource_drop(&mut self.store);
        }
    }
}

fn unusable() -> Error {
    Error::Trap(wasmtime::format_err!(
        "the vault is unusable after an earlier trap"
    ))
}

fn preopen_error(dir: &Path, error: wasmtime::Error) -> StoreError {
    StoreError::io(
        format!("opening {}", dir.display()),
        std::io::Error::other(format!("{error:#}")),
    )
}

fn settle<T>(outcome: wasmtime::Result<Result<T, wit::Error>>) -> Result<T, Error> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::Store(convert::error_from_wit(error))),
        Err(trap) => Err(Error::Trap(trap)),
    }
}

// The sharing documented on `Vault` relies on this.
const _: () = {
    const fn send<T: Send>() {}
    send::<Vault>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, blob_len: usize) -> Session {
        Session::from_value(serde_json::json!({
            "sessionId": id, "sessionToken": "t",
            "userContext": {"userId": "u"},
            "tokenMetadata": {"accessToken": "a", "expiresAt": 1, "scopes": []},
            "security": {"ipAddress": "i", "userAgent": "u", "createdAt": 1, "lastAccessedAt": 1, "accessCount": 0},
            "expiresAt": u64::MAX, "createdAt": 1, "blob": "x".repeat(blob_len)
        }))
        .unwrap()
    }

    fn key() -> Secret {
        Secret::RawKey(vec![3; 32])
    }

    #[test]
    fn a_trap_is_not_a_store_error_and_leaves_the_store_intact() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let small = session("small", 10);
        let mut vault = VaultOptions::new()
            .max_session_bytes(16 << 20)
            .memory_limit(4 << 20)
            .open(&dir, key())
            .unwrap();
        vault.create(&small).unwrap();
        // Lowering 8 MiB into a component capped at 4 MiB of memory traps.
        let error = vault.create(&session("big", 8 << 20)).unwrap_err();
        assert!(matches!(error, Error::Trap(_)), "{error}");
        assert!(error.store().is_none());
        assert!(
            matches!(vault.count(), Err(Error::Trap(_))),
            "a trapped vault stays unusable"
        );
        drop(vault);
        let mut vault = Vault::open(&dir, key()).unwrap();
        assert_eq!(vault.get("small").unwrap(), Some(small));
        assert_eq!(vault.count().unwrap(), 1);
        assert_eq!(vault.get("big").unwrap(), None);
    }

    #[test]
    fn a_second_vault_on_the_same_directory_is_locked_out() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Vault::open(tmp.path(), key()).unwrap();
        let second = Vault::open(tmp.path(), key()).err().unwrap();
        assert!(
            matches!(second.store(), Some(StoreError::Locked)),
            "{second}"
        );
        drop(first);
        assert!(
            Vault::open(tmp.path(), key()).is_ok(),
            "the lock goes with the vault"
        );
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let error = Vault::open(&file, key()).err().unwrap();
        assert!(
            matches!(error.store(), Some(StoreError::Io { .. })),
            "{error}"
        );
    }

    #[test]
    fn a_missing_component_file_is_a_component_error() {
        let tmp = tempfile::tempdir().unwrap();
        let error = VaultOptions::new()
            .component(tmp.path().join("missing.wasm"))
            .open(tmp.path().join("store"), key())
            .err()
            .unwrap();
        assert!(matches!(error, Error::Component(_)), "{error}");
    }
}
