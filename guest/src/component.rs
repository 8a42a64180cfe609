//! The component's exports: `session-vault:store/sessions`, converting between the
//! WIT records and the store's types. No store logic lives here.

use std::cell::RefCell;

use serde_json::Value;

use crate::backend::{BackendKind, Durability};
use crate::document::model::{Extra, Security, SessionData, TokenMetadata, UserContext};
use crate::document::patch::{SecurityPatch, SessionPatch, TokenMetadataPatch, UserContextPatch};
use crate::error::StoreError;
use crate::fs::wasi::WasiDir;
use crate::keyring::Secret;
use crate::legacy::LegacyStore;
use crate::medium::Medium;
use crate::store::{Config, Erase, Report, Store, SystemClock};

wit_bindgen::generate!({
    path: "../wit",
    world: "session-vault",
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
            .import_into(&mut target.store.borrow_mut(), &files)?;
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
    store: RefCell<Store<Medium<WasiDir>, SystemClock>>,
}

fn backend_from_wit(backend: wit::Backend) -> BackendKind {
    match backend {
        wit::Backend::Files => BackendKind::Files,
        wit::Backend::Log => BackendKind::Log,
    }
}

type WitResult<T> = Result<T, wit::Error>;

impl wit::GuestStore for StoreResource {
    fn open(config: wit::Config) -> WitResult<wit::Store> {
        let dir = WasiDir::preopened(config.directory.as_deref())?;
        let mut store_config = Config::new(secret_from_wit(config.secret));
        store_config.max_session_bytes = config.max_session_bytes;
        store_config.idle_timeout = config.idle_timeout;
        store_config.erase = match config.erase {
            None | Some(wit::Erase::Deferred) => Erase::Deferred,
            Some(wit::Erase::Immediate) => Erase::Immediate,
        };
        let durability = match config.durability {
            None | Some(wit::Durability::Durable) => Durability::Durable,
            Some(wit::Durability::Relaxed) => Durability::Relaxed,
        };
        let requested = config.backend.map(backend_from_wit);
        let backend = Medium::open(dir, requested, durability)?;
        let store = Store::open(backend, SystemClock, store_config)?;
        Ok(wit::Store::new(StoreResource {
            store: RefCell::new(store),
        }))
    }

    fn create(&self, session: wit::SessionData) -> WitResult<()> {
        let session = session_from_wit(session)?;
        Ok(self.store.borrow_mut().create(&session)?)
    }

    fn get(&self, id: String) -> WitResult<Option<wit::SessionData>> {
        let session = self.store.borrow_mut().get(&id)?;
        Ok(session.map(session_to_wit))
    }

    fn touch(&self, id: String) -> WitResult<Option<wit::SessionData>> {
        let session = self.store.borrow_mut().touch(&id)?;
        Ok(session.map(session_to_wit))
    }

    fn update(&self, id: String, patch: wit::SessionPatch) -> WitResult<wit::SessionData> {
        let patch = patch_from_wit(patch)?;
        let session = self.store.borrow_mut().update(&id, patch)?;
        Ok(session_to_wit(session))
    }

    fn delete(&self, id: String) -> WitResult<bool> {
        Ok(self.store.borrow_mut().delete(&id)?)
    }

    fn cleanup(&self) -> WitResult<u64> {
        Ok(self.store.borrow_mut().cleanup()?)
    }

    fn user_sessions(&self, user_id: String) -> WitResult<Vec<wit::SessionData>> {
        let sessions = self.store.borrow_mut().user_sessions(&user_id)?;
        Ok(sessions.into_iter().map(session_to_wit).collect())
    }

    fn count(&self) -> WitResult<u64> {
        Ok(self.store.borrow().count())
    }

    fn clear(&self) -> WitResult<u64> {
        Ok(self.store.borrow_mut().clear()?)
    }

    fn revoke_user(&self, user_id: String) -> WitResult<u64> {
        Ok(self.store.borrow_mut().revoke_user(&user_id)?)
    }

    fn add_key(&self, secret: wit::Secret) -> WitResult<u32> {
        Ok(self.store.borrow_mut().add_key(&secret_from_wit(secret))?)
    }

    fn keys(&self) -> WitResult<Vec<wit::KeyInfo>> {
        let keys = self.store.borrow().keys();
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
        let progress = self.store.borrow_mut().rekey(limit)?;
        Ok(wit::RekeyProgress {
            rekeyed: progress.rekeyed,
            remaining: progress.remaining,
        })
    }

    fn retire_key(&self, id: u32) -> WitResult<()> {
        Ok(self.store.borrow_mut().retire_key(id)?)
    }

    fn migrate(&self, to: wit::Backend) -> WitResult<u64> {
        Ok(self.store.borrow_mut().migrate(backend_from_wit(to))?)
    }

    fn check(&self) -> WitResult<wit::Report> {
        let report: Report = self.store.borrow_mut().check()?;
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
        let progress = self.store.borrow_mut().compact(u64::from(limit))?;
        Ok(wit::CompactProgress {
            segments: progress.segments,
            remaining: progress.remaining,
            reclaimed: progress.reclaimed,
        })
    }
}

impl From<StoreError> for wit::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidId(m) => wit::Error::InvalidId(m),
            StoreError::InvalidInput(m) => wit::Error::InvalidInput(m),
            StoreError::NotFound => wit::Error::NotFound,
            StoreError::AlreadyExists => wit::Error::AlreadyExists,
            StoreError::WrongKey => wit::Error::WrongKey,
            StoreError::Corrupted(m) => wit::Error::Corrupted(m),
            StoreError::MissingKey(m) => wit::Error::MissingKey(m),
            StoreError::TooLarge(m) => wit::Error::TooLarge(m),
            StoreError::Locked => wit::Error::Locked,
            StoreError::Io { context, source } => wit::Error::Io(wit::IoFailure {
                operation: context,
                reason: source.to_string(),
            }),
        }
    }
}

fn secret_from_wit(secret: wit::Secret) -> Secret {
    match secret {
        wit::Secret::Passphrase(phrase) => Secret::Passphrase(phrase),
        wit::Secret::RawKey(bytes) => Secret::RawKey(bytes),
    }
}

fn extra_from_wit(object: &str, fields: Vec<wit::ExtraField>) -> Result<Extra, StoreError> {
    let mut extra = Extra::new();
    for field in fields {
        let value: Value = serde_json::from_str(&field.value).map_err(|e| {
            StoreError::InvalidInput(format!(
                "{object}: extra member {:?} is not valid JSON: {e}",
                field.name
            ))
        })?;
        if extra.insert(field.name.clone(), value).is_some() {
            return Err(StoreError::InvalidInput(format!(
                "{object}: extra member {:?} is given twice",
                field.name
            )));
        }
    }
    Ok(extra)
}

fn extra_to_wit(extra: Extra) -> Vec<wit::ExtraField> {
    extra
        .into_iter()
        .map(|(name, value)| wit::ExtraField {
            name,
            value: value.to_string(),
        })
        .collect()
}

fn session_from_wit(s: wit::SessionData) -> Result<SessionData, StoreError> {
    let u = s.user_context;
    let t = s.token_metadata;
    let c = s.security;
    Ok(SessionData {
        session_id: s.session_id,
        session_token: s.session_token,
        user_context: UserContext {
            user_id: u.user_id,
            email: u.email,
            name: u.name,
            tenant_id: u.tenant_id,
            roles: u.roles,
            extra: extra_from_wit("userContext", u.extra)?,
        },
        token_metadata: TokenMetadata {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            id_token: t.id_token,
            expires_at: t.expires_at,
            scopes: t.scopes,
            extra: extra_from_wit("tokenMetadata", t.extra)?,
        },
        security: Security {
            ip_address: c.ip_address,
            user_agent: c.user_agent,
            created_at: c.created_at,
            last_accessed_at: c.last_accessed_at,
            access_count: c.access_count,
            fingerprint: c.fingerprint,
            extra: extra_from_wit("security", c.extra)?,
        },
        expires_at: s.expires_at,
        created_at: s.created_at,
        extra: extra_from_wit("the session", s.extra)?,
    })
}

fn session_to_wit(s: SessionData) -> wit::SessionData {
    let u = s.user_context;
    let t = s.token_metadata;
    let c = s.security;
    wit::SessionData {
        session_id: s.session_id,
        session_token: s.session_token,
        user_context: wit::UserContext {
            user_id: u.user_id,
            email: u.email,
            name: u.name,
            tenant_id: u.tenant_id,
            roles: u.roles,
            extra: extra_to_wit(u.extra),
        },
        token_metadata: wit::TokenMetadata {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            id_token: t.id_token,
            expires_at: t.expires_at,
            scopes: t.scopes,
            extra: extra_to_wit(t.extra),
        },
        security: wit::Security {
            ip_address: c.ip_address,
            user_agent: c.user_agent,
            created_at: c.created_at,
            last_accessed_at: c.last_accessed_at,
            access_count: c.access_count,
            fingerprint: c.fingerprint,
            extra: extra_to_wit(c.extra),
        },
        expires_at: s.expires_at,
        created_at: s.created_at,
        extra: extra_to_wit(s.extra),
    }
}

fn patch_from_wit(p: wit::SessionPatch) -> Result<SessionPatch, StoreError> {
    Ok(SessionPatch {
        session_id: p.session_id,
        session_token: p.session_token,
        user_context: p
            .user_context
            .map(|u| -> Result<_, StoreError> {
                Ok(UserContextPatch {
                    user_id: u.user_id,
                    email: u.email,
                    name: u.name,
                    tenant_id: u.tenant_id,
                    roles: u.roles,
                    extra: extra_from_wit("userContext", u.extra)?,
                })
            })
            .transpose()?,
        token_metadata: p
            .token_metadata
            .map(|t| -> Result<_, StoreError> {
                Ok(TokenMetadataPatch {
                    access_token: t.access_token,
                    refresh_token: t.refresh_token,
                    id_token: t.id_token,
                    expires_at: t.expires_at,
                    scopes: t.scopes,
                    extra: extra_from_wit("tokenMetadata", t.extra)?,
                })
            })
            .transpose()?,
        security: p
            .security
            .map(|c| -> Result<_, StoreError> {
                Ok(SecurityPatch {
                    ip_address: c.ip_address,
                    user_agent: c.user_agent,
                    created_at: c.created_at,
                    last_accessed_at: c.last_accessed_at,
                    access_count: c.access_count,
                    fingerprint: c.fingerprint,
                    extra: extra_from_wit("security", c.extra)?,
                })
            })
            .transpose()?,
        expires_at: p.expires_at,
        created_at: p.created_at,
        extra: extra_from_wit("the session", p.extra)?,
    })
}
