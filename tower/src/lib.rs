//! session-vault as a [tower-sessions] 0.15 store, for axum and any tower service:
//! [`VaultStore`] implements `SessionStore` and `ExpiredDeletion` over session-vault's
//! [`Vault`], so every session is sealed with AES-256-GCM, written crash-safely (or kept in
//! Redis under compare-and-swap), never served past its expiry, and can be ended for a
//! user on every device at once.
//!
//! ```no_run
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! use session_vault::{Secret, VaultOptions};
//! let secret = Secret::Passphrase(std::env::var("SESSION_SECRET")?);
//! let store = session_vault_tower::VaultStore::open(VaultOptions::new(), "./sessions", secret)
//!     .await?
//!     .with_user_key("user");
//! // tower_sessions::SessionManagerLayer::new(store) …
//! # Ok(()) }
//! ```
//!
//! A tower-sessions record is stored as a free-form session:
//! `{"sessionId": <the id as tower-sessions prints it>, "expiresAt": <expiry_date in ms>,
//! "data": <the record's data>}`, plus `"userContext": {"userId": …}` when the store names
//! the data key that holds the user ([`VaultStore::with_user_key`]).
//!
//! [`Vault`] is synchronous: each call runs on tokio's blocking pool, holding one vault
//! of the store's pool. A call runs to its end even if the request future that made it is
//! dropped, so a cancelled request never leaves a write half done or a vault held.
//!
//! [tower-sessions]: https://docs.rs/tower-sessions/0.15

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::path::Path;

use session_vault::{Secret, Session, StoreError, Vault, VaultOptions};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

/// How often `create` draws a new id when the one it was given belongs to a live session.
const CREATE_ATTEMPTS: usize = 16;

/// A tower-sessions store on session-vault: one [`Vault`] (a directory store, whose lock
/// admits one), or several vaults of one `redis` store ([`VaultStore::pool`]), so that
/// requests of different sessions run at once. Clones share the vaults.
#[derive(Clone)]
pub struct VaultStore {
    vaults: Arc<[Mutex<Vault>]>,
    user_key: Option<Arc<str>>,
}

impl fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultStore")
            .field("vaults", &self.vaults.len())
            .field("user_key", &self.user_key)
            .finish()
    }
}

/// Why a [`VaultStore`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool needs at least one vault.
    #[error("a pool of vaults needs at least one vault")]
    Empty,
}

impl VaultStore {
    /// Opens the vault `options` describe (its directory `dir`, or its redis store) and
    /// makes a store over it, off the async runtime: a [`Vault`] runs the component on a
    /// runtime of its own, so it is opened and called on tokio's blocking pool.
    pub async fn open(
        options: VaultOptions,
        dir: impl AsRef<Path> + Send + 'static,
        secret: Secret,
    ) -> Result<Self, session_vault::Error> {
        let vault = tokio::task::spawn_blocking(move || options.open(dir, secret))
            .await
            .map_err(|error| {
                session_vault::Error::from(StoreError::unavailable(
                    "opening the store",
                    format!("the opening did not finish: {error}"),
                ))
            })??;
        Ok(VaultStore::new(vault))
    }

    /// A store over one vault.
    pub fn new(vault: Vault) -> Self {
        VaultStore {
            vaults: Arc::from([Mutex::new(vault)]),
            user_key: None,
        }
    }

    /// A store over several vaults of one shared (`redis`) store: a session's calls go to
    /// one vault (by its id), so different sessions are served at once.
    pub fn pool(vaults: Vec<Vault>) -> Result<Self, PoolError> {
        if vaults.is_empty() {
            return Err(PoolError::Empty);
        }
        Ok(VaultStore {
            vaults: vaults.into_iter().map(Mutex::new).collect(),
            user_key: None,
        })
    }

    /// Indexes each session by the user named by the string under `key` in its data
    /// (for example the key an axum-login handler inserts), so that
    /// [`VaultStore::revoke_user`] ends every session of that user.
    pub fn with_user_key(mut self, key: impl Into<String>) -> Self {
        self.user_key = Some(Arc::from(key.into()));
        self
    }

    /// Ends every session of `user` (as [`VaultStore::with_user_key`] names it); returns
    /// how many live ones were ended. A request in flight on one of them cannot bring it
    /// back: its save is refused.
    pub async fn revoke_user(&self, user: &str) -> session_store::Result<u64> {
        let user = user.to_owned();
        self.run(None, move |vault| vault.revoke_user(&user).store())
            .await
    }

    /// Runs `work` on the vault that serves `id` (the first for calls on no session), on
    /// tokio's blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        id: Option<&Id>,
        work: impl FnOnce(&mut Vault) -> session_store::Result<T> + Send + 'static,
    ) -> session_store::Result<T> {
        let count = self.vaults.len() as u128;
        let index = id.map_or(0, |id| (id.0.unsigned_abs() % count) as usize);
        let vaults = Arc::clone(&self.vaults);
        tokio::task::spawn_blocking(move || {
            let Some(vault) = vaults.get(index) else {
                return Err(backend("no vault serves this session"));
            };
            // A panic inside a call leaves the vault as the vault itself left it (a trap
            // poisons it, and it says so); the lock is not what keeps it whole.
            let mut vault = vault
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut vault)
        })
        .await
        .map_err(|error| backend(format!("the store's call did not finish: {error}")))?
    }

    fn document(&self, record: &Record) -> session_store::Result<Session> {
        document(record, self.user_key.as_deref())
    }
}

/// The store's error for a failure of the vault or of the call.
fn backend(reason: impl fmt::Display) -> session_store::Error {
    session_store::Error::Backend(reason.to_string())
}

/// A vault's error on its way to tower-sessions (as `Backend`, with every cause).
struct StoreFailure(session_vault::Error);

impl From<StoreFailure> for session_store::Error {
    fn from(failure: StoreFailure) -> Self {
        let mut text = failure.0.to_string();
        let mut cause = std::error::Error::source(&failure.0);
        while let Some(inner) = cause {
            text = format!("{text}: {inner}");
            cause = inner.source();
        }
        session_store::Error::Backend(text)
    }
}

/// `?` on a vault's result inside [`VaultStore::run`].
trait IntoStoreResult<T> {
    fn store(self) -> session_store::Result<T>;
}

impl<T> IntoStoreResult<T> for Result<T, session_vault::Error> {
    fn store(self) -> session_store::Result<T> {
        self.map_err(|error| StoreFailure(error).into())
    }
}

/// The store error case of a vault's error, if it is one.
fn kind(error: &session_vault::Error) -> Option<&StoreError> {
    error.store()
}

/// The free-form session that keeps `record`.
fn document(record: &Record, user_key: Option<&str>) -> session_store::Result<Session> {
    let encode = |reason: String| session_store::Error::Encode(reason);
    let nanos = record.expiry_date.unix_timestamp_nanos();
    let expires_at = u64::try_from(nanos / 1_000_000)
        .map_err(|_| encode(format!("expiry {} is before 1970", record.expiry_date)))?;
    let mut doc = Map::new();
    doc.insert("sessionId".into(), Value::String(record.id.to_string()));
    doc.insert("expiresAt".into(), Value::from(expires_at));
    let data: Map<String, Value> = record.data.clone().into_iter().collect();
    if let Some(Value::String(user)) = user_key.and_then(|key| data.get(key)) {
        let mut context = Map::new();
        context.insert("userId".into(), Value::String(user.clone()));
        doc.insert("userContext".into(), Value::Object(context));
    }
    doc.insert("data".into(), Value::Object(data));
    let text = serde_json::to_vec(&Value::Object(doc)).map_err(|e| encode(e.to_string()))?;
    Session::parse(&text).map_err(|e| encode(e.to_string()))
}

/// The record a session of this store keeps; `Decode` for one this store did not write.
fn record(session: &Session) -> session_store::Result<Record> {
    let decode = |reason: &str| session_store::Error::Decode(reason.to_owned());
    let value: Value =
        serde_json::from_str(&session.to_string()).map_err(|e| decode(&e.to_string()))?;
    let id: Id = (value.get("sessionId").and_then(Value::as_str))
        .ok_or_else(|| decode("the session has no sessionId"))?
        .parse()
        .map_err(|_| decode("the sessionId is not a tower-sessions id"))?;
    let expires_at = (value.get("expiresAt").and_then(Value::as_u64))
        .ok_or_else(|| decode("the session has no expiresAt"))?;
    let expiry_date = OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
        .map_err(|_| decode("expiresAt is out of range"))?;
    let data: HashMap<String, Value> = match value.get("data") {
        Some(Value::Object(data)) => data.clone().into_iter().collect(),
        None => HashMap::new(),
        Some(_) => return Err(decode("the session's data is not an object")),
    };
    Ok(Record {
        id,
        data,
        expiry_date,
    })
}

#[async_trait]
impl SessionStore for VaultStore {
    /// Stores a new session. An id that a live session already has gets a new random id
    /// (as tower-sessions' own stores do), up to 16 times.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        for _ in 0..CREATE_ATTEMPTS {
            let session = self.document(record)?;
            let created = self
                .run(Some(&record.id), move |vault| {
                    match vault.create(&session) {
                        Ok(()) => Ok(true),
                        Err(error) if matches!(kind(&error), Some(StoreError::AlreadyExists)) => {
                            Ok(false)
                        }
                        Err(error) => Err(StoreFailure(error).into()),
                    }
                })
                .await?;
            if created {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(backend(format!(
            "{CREATE_ATTEMPTS} random session ids in a row were taken"
        )))
    }

    /// Stores the session whole. A session removed meanwhile (logged out, or revoked)
    /// stays removed: the save is refused by the vault and dropped here, so a request in
    /// flight at logout cannot bring it back.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let session = self.document(record)?;
        self.run(Some(&record.id), move |vault| match vault.set(&session) {
            Ok(()) => Ok(()),
            Err(error) if matches!(kind(&error), Some(StoreError::Removed(_))) => Ok(()),
            Err(error) => Err(StoreFailure(error).into()),
        })
        .await
    }

    /// The live session; `None` if absent or expired (by the vault's clock), or if the
    /// session was quarantined as damaged or put back.
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let text = id.to_string();
        let found = self
            .run(Some(id), move |vault| match vault.get(&text) {
                Ok(found) => Ok(found),
                // Refused and quarantined: no session, as the middleware expects.
                Err(error) if matches!(kind(&error), Some(StoreError::Corrupted(_))) => Ok(None),
                Err(error) => Err(StoreFailure(error).into()),
            })
            .await?;
        found.as_ref().map(record).transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let text = id.to_string();
        self.run(Some(id), move |vault| vault.delete(&text).store().map(drop))
            .await
    }
}

#[async_trait]
impl ExpiredDeletion for VaultStore {
    /// Removes every expired session (the vault's `cleanup`).
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.run(None, |vault| vault.cleanup().store().map(drop))
            .await
    }
}

#[cfg(test)]
mod tests;
