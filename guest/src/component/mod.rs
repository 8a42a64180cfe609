//! The component's exports: `session-vault:store/sessions`, converting between the
//! WIT records and the store's types. No store logic lives here.

#[cfg(feature = "keyvalue")]
mod bucket;
mod convert;
mod opened;

use std::cell::RefCell;

use crate::backend::{BackendKind, Durability};
use crate::directory_store::directory_backend::DirectoryBackend;
use crate::error::StoreError;
use crate::fs::wasi::WasiDir;
use crate::legacy::LegacyStore;
use crate::sessions::clock::SystemClock;
use crate::sessions::{Config, DEFAULT_CACHE_BYTES, Erase, Report};
use crate::store::Store;
use convert::{patch_from_wit, secret_from_wit, session_from_wit, session_to_wit};
use opened::{DestinationConfig, Opened};

#[cfg(not(feature = "keyvalue"))]
wit_bindgen::generate!({
    path: "../wit",
    world: "session-vault",
});

#[cfg(feature = "keyvalue")]
wit_bindgen::generate!({
    path: "../wit",
    world: "session-vault-keyvalue",
    generate_all,
});

use exports::session_vault::store::sessions as wit;

struct Component;

export!(Component);

impl wit::Guest for Component {
    type Store = StoreResource;
    type LegacyStore = LegacyResource;
}

/// The `legacy-store` resource.
struct LegacyResource {
    legacy: LegacyStore<WasiDir>,
}

impl wit::GuestLegacyStore for LegacyResource {
    fn open(directory: String, mut secret: String) -> WitResult<wit::LegacyStore> {
        let opened =
            WasiDir::preopened(Some(&directory)).and_then(|dir| LegacyStore::open(dir, &secret));
        zeroize::Zeroize::zeroize(&mut secret);
        Ok(wit::LegacyStore::new(LegacyResource { legacy: opened? }))
    }

    fn files(&self) -> WitResult<Vec<String>> {
        Ok(self.legacy.files()?)
    }

    fn import_into(
        &self,
        target: wit::StoreBorrow<'_>,
        files: Vec<String>,
    ) -> WitResult<wit::ImportReport> {
        let target: &StoreResource = target.get();
        let report = self
            .legacy
            .import_into(target.store.borrow_mut().sessions(), &files)?;
        Ok(wit::ImportReport {
            imported: report.imported,
            expired: report.expired,
            already_present: report.already_present,
            failed: report
                .failed
                .into_iter()
                .map(|f| wit::ImportFailure {
                    file: f.file,
                    reason: f.reason,
                })
                .collect(),
        })
    }
}

/// The `store` resource: the store, borrowed mutably by one call at a time.
struct StoreResource {
    store: RefCell<Opened>,
    /// The bucket and directory the config named: where a `migrate` moves the store.
    moves: DestinationConfig,
}

fn backend_from_wit(backend: wit::Backend) -> BackendKind {
    match backend {
        wit::Backend::Files => BackendKind::Files,
        wit::Backend::Log => BackendKind::Log,
        wit::Backend::Redis => BackendKind::Redis,
    }
}

type WitResult<T> = Result<T, wit::Error>;

impl wit::GuestStore for StoreResource {
    fn open(config: wit::Config) -> WitResult<wit::Store> {
        let mut store_config = Config::new(secret_from_wit(config.secret));
        store_config.max_session_bytes = config.max_session_bytes;
        store_config.idle_timeout = config.idle_timeout;
        store_config.max_lifetime = config.max_lifetime;
        store_config.cache_bytes = config.cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES);
        store_config.erase = match config.erase {
            None | Some(wit::Erase::Deferred) => Erase::Deferred,
            Some(wit::Erase::Immediate) => Erase::Immediate,
        };
        let durability = match config.durability {
            None | Some(wit::Durability::Durable) => Durability::Durable,
            Some(wit::Durability::Relaxed) => Durability::Relaxed,
        };
        let requested = config.backend.map(backend_from_wit);
        let moves = DestinationConfig {
            bucket: config.bucket.clone(),
            directory: config.directory.clone(),
            durability,
            config: store_config.clone(),
        };
        let opened = if requested == Some(BackendKind::Redis) {
            open_shared(&moves, store_config)?
        } else {
            let dir = WasiDir::preopened(config.directory.as_deref())?;
            match opened::handed_over(&dir, &moves)? {
                Some(shared) => shared,
                None => {
                    let backend = DirectoryBackend::open(dir, requested, durability)?;
                    Store::in_directory(backend, SystemClock, store_config)?
                }
            }
        };
        Ok(wit::Store::new(StoreResource {
            store: RefCell::new(opened),
            moves,
        }))
    }

    fn create(&self, session: String) -> WitResult<()> {
        let session = session_from_wit(session)?;
        Ok(self.store.borrow_mut().sessions().create(&session)?)
    }

    fn set(&self, session: String) -> WitResult<()> {
        let session = session_from_wit(session)?;
        Ok(self.store.borrow_mut().sessions().set(&session)?)
    }

    fn set_if_unchanged(&self, session: String, expected: String) -> WitResult<bool> {
        let session = session_from_wit(session)?;
        let mut store = self.store.borrow_mut();
        Ok(store.sessions().set_if_unchanged(&session, &expected)?)
    }

    fn get(&self, id: String) -> WitResult<Option<String>> {
        let session = self.store.borrow_mut().sessions().get(&id)?;
        Ok(session.map(session_to_wit))
    }

    fn touch(&self, id: String, expires_at: Option<u64>) -> WitResult<Option<String>> {
        let session = self.store.borrow_mut().sessions().touch(&id, expires_at)?;
        Ok(session.map(session_to_wit))
    }

    fn update(&self, id: String, patch: wit::SessionPatch) -> WitResult<String> {
        let patch = patch_from_wit(patch)?;
        let session = self.store.borrow_mut().sessions().update(&id, patch)?;
        Ok(session_to_wit(session))
    }

    fn delete(&self, id: String) -> WitResult<bool> {
        Ok(self.store.borrow_mut().sessions().delete(&id)?)
    }

    fn cleanup(&self) -> WitResult<u64> {
        Ok(self.store.borrow_mut().sessions().cleanup()?)
    }

    fn user_sessions(&self, user_id: String) -> WitResult<Vec<String>> {
        let sessions = self.store.borrow_mut().sessions().user_sessions(&user_id)?;
        Ok(sessions.into_iter().map(session_to_wit).collect())
    }

    fn list_ids(&self, after: Option<String>, limit: u32) -> WitResult<wit::IdPage> {
        let page = (self.store.borrow_mut().sessions()).list_ids(after.as_deref(), limit)?;
        Ok(wit::IdPage {
            ids: page.ids,
            next: page.next,
        })
    }

    fn list(&self, after: Option<String>, limit: u32) -> WitResult<wit::SessionPage> {
        let page = (self.store.borrow_mut().sessions()).list(after.as_deref(), limit)?;
        Ok(wit::SessionPage {
            sessions: page.sessions.into_iter().map(session_to_wit).collect(),
            next: page.next,
        })
    }

    fn count(&self) -> WitResult<u64> {
        Ok(self.store.borrow_mut().sessions().count()?)
    }

    fn clear(&self) -> WitResult<u64> {
        Ok(self.store.borrow_mut().sessions().clear()?)
    }

    fn revoke_user(&self, user_id: String) -> WitResult<u64> {
        Ok(self.store.borrow_mut().sessions().revoke_user(&user_id)?)
    }

    fn add_key(&self, secret: wit::Secret) -> WitResult<u32> {
        Ok(self
            .store
            .borrow_mut()
            .sessions()
            .add_key(&secret_from_wit(secret))?)
    }

    fn keys(&self) -> WitResult<Vec<wit::KeyInfo>> {
        let keys = self.store.borrow_mut().sessions().keys()?;
        Ok(keys
            .into_iter()
            .map(|k| wit::KeyInfo {
                id: k.id,
                current: k.current,
                retired: k.retired,
                sessions: k.sessions,
            })
            .collect())
    }

    fn rekey(&self, limit: u32) -> WitResult<wit::RekeyProgress> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let progress = self.store.borrow_mut().sessions().rekey(limit)?;
        Ok(wit::RekeyProgress {
            rekeyed: progress.rekeyed,
            remaining: progress.remaining,
        })
    }

    fn retire_key(&self, id: u32) -> WitResult<()> {
        Ok(self.store.borrow_mut().sessions().retire_key(id)?)
    }

    fn migrate(&self, to: wit::Backend) -> WitResult<u64> {
        let to = backend_from_wit(to);
        let destination = self.moves.destination();
        Ok(self.store.borrow_mut().migrate(to, destination)?)
    }

    fn check(&self) -> WitResult<wit::Report> {
        let report: Report = self.store.borrow_mut().sessions().check()?;
        Ok(wit::Report {
            live: report.live,
            expired: report.expired,
            missing_key: report.missing_key,
            quarantined: report.quarantined,
            newly_quarantined: report.newly_quarantined,
            foreign: report.foreign,
            dead_bytes: report.dead_bytes,
            oldest_key: report.oldest_key,
        })
    }

    fn compact(&self, limit: u32) -> WitResult<wit::CompactProgress> {
        let progress = self
            .store
            .borrow_mut()
            .sessions()
            .compact(u64::from(limit))?;
        Ok(wit::CompactProgress {
            segments: progress.segments,
            remaining: progress.remaining,
            reclaimed: progress.reclaimed,
        })
    }

    fn hold_syncs(&self) {
        self.store.borrow_mut().sessions().hold_syncs();
    }

    fn flush(&self) -> WitResult<()> {
        Ok(self.store.borrow_mut().sessions().flush()?)
    }
}

impl From<StoreError> for wit::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidId(m) => wit::Error::InvalidId(m),
            StoreError::InvalidInput(m) => wit::Error::InvalidInput(m),
            StoreError::NotFound => wit::Error::NotFound,
            StoreError::AlreadyExists => wit::Error::AlreadyExists,
            StoreError::Removed(m) => wit::Error::Removed(m),
            StoreError::WrongKey => wit::Error::WrongKey,
            StoreError::Corrupted(m) => wit::Error::Corrupted(m),
            StoreError::MissingKey(m) => wit::Error::MissingKey(m),
            StoreError::TooLarge(m) => wit::Error::TooLarge(m),
            StoreError::Locked => wit::Error::Locked,
            StoreError::Io { context, source } => wit::Error::Io(wit::IoFailure {
                operation: context,
                reason: source.to_string(),
            }),
            StoreError::Unavailable { context, source } => {
                wit::Error::Unavailable(wit::IoFailure {
                    operation: context,
                    reason: source.to_string(),
                })
            }
        }
    }
}

/// Opens the store in the shared bucket `moves` names (default `session-vault`).
#[cfg(feature = "keyvalue")]
fn open_shared(moves: &DestinationConfig, config: Config) -> Result<Opened, StoreError> {
    let name = moves.bucket.as_deref().unwrap_or(bucket::DEFAULT_BUCKET);
    let bucket = bucket::WasiBucket::open(name)?;
    Store::in_bucket(bucket, SystemClock, config)
}

#[cfg(not(feature = "keyvalue"))]
fn open_shared(_moves: &DestinationConfig, _config: Config) -> Result<Opened, StoreError> {
    Err(StoreError::InvalidInput(
        "this is the plain-WASI session-vault component: the redis backend needs the \
         session-vault-keyvalue component, which imports wasi:keyvalue"
            .into(),
    ))
}
