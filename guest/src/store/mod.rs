//! The store: encryption, expiry, merge and the index over a [`Backend`].
//!
//! The index is authoritative while the store is open (the host holds an exclusive lock
//! on the directory); `check`, `cleanup` and `clear` also reconcile it with the medium.

pub mod index;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::backend::{Backend, Listing, Summaries};
use crate::document::id;
use crate::document::model::{Extra, SessionData, names};
use crate::document::patch::SessionPatch;
use crate::error::StoreError;
use crate::keyring::{self, Keyring, Meta, Secret};
use crate::seal::crypto::{self, NONCE_LEN, TAG_LEN};
use crate::seal::format::{self, DecodeError, HEADER_LEN, Kind};
use crate::seal::stamp::Stamp;
use crate::seal::summary::Summary;
use crate::store::index::{Entry, Index};

/// The default largest serialized session, in bytes.
pub const DEFAULT_MAX_SESSION_BYTES: u32 = 64 * 1024;
/// The smallest value `max_session_bytes` may take.
pub const MIN_MAX_SESSION_BYTES: u32 = 1024;
/// The largest value `max_session_bytes` may take; also bounds every read.
pub const MAX_MAX_SESSION_BYTES: u32 = 16 * 1024 * 1024;

/// A source of "now", in milliseconds since the Unix epoch.
pub trait Clock {
    /// The current time.
    fn now(&self) -> u64;
}

/// The system's wall clock (`wasi:clocks/wall-clock` in the component).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock before 1970 reads as 1970: every session then counts as live until its expiry.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl<F: Fn() -> u64> Clock for F {
    fn now(&self) -> u64 {
        self()
    }
}

/// A clock that moves only when told to: for tests and for reproducing expiry.
/// Clones share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ManualClock {
    /// A clock reading `now` (ms since the epoch).
    pub fn new(now: u64) -> Self {
        let clock = ManualClock::default();
        clock.set(now);
        clock
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.now.store(now, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store's secret.
    pub secret: Secret,
    /// The largest serialized session accepted; `None` is 64 KiB.
    pub max_session_bytes: Option<u32>,
    /// scrypt's log2 N for a new passphrase store.
    pub scrypt_log_n: u8,
    /// Sessions not accessed (`security.lastAccessedAt`) for this many milliseconds are
    /// expired, on top of their `expiresAt`; `None` turns the idle timeout off.
    pub idle_timeout: Option<u64>,
}

impl Config {
    /// A configuration with the defaults and `secret`.
    pub fn new(secret: Secret) -> Self {
        Config {
            secret,
            max_session_bytes: None,
            scrypt_log_n: keyring::DEFAULT_LOG_N,
            idle_timeout: None,
        }
    }
}

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Sessions that decrypted and have not expired.
    pub live: u64,
    /// Sessions that decrypted and have expired.
    pub expired: u64,
    /// SessionData files under a key this store does not hold.
    pub missing_key: u64,
    /// Files in `quarantine/`.
    pub quarantined: u64,
    /// Ids moved to `quarantine/` by this check.
    pub newly_quarantined: Vec<String>,
    /// Entries that are not session-vault files.
    pub foreign: u64,
}

/// One key of the store, as `keys` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The id session files record in their header.
    pub id: u32,
    /// Whether new writes use this key.
    pub current: bool,
    /// Whether the key was retired (the store no longer holds it).
    pub retired: bool,
    /// How many session files are encrypted under it.
    pub sessions: u64,
}

/// How far `rekey` got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RekeyProgress {
    /// Sessions re-encrypted under the current key by this call.
    pub rekeyed: u64,
    /// Sessions still under an older key.
    pub remaining: u64,
}

/// An open session store.
pub struct Store<B, C> {
    backend: B,
    clock: C,
    meta: Meta,
    keyring: Keyring,
    scrypt_log_n: u8,
    index: Index,
    /// Session files under a key the keyring lacks, with that key's id.
    missing_key: BTreeMap<String, u32>,
    /// Ids with an access stamp on the medium (see [`crate::seal::stamp`]), with the stamp
    /// once it has been read or written (`None`: not read yet).
    stamps: HashMap<String, Option<Stamp>>,
    max_session_bytes: u32,
    idle_timeout: Option<u64>,
    opened: Report,
}

impl<B: Backend, C: Clock> Store<B, C> {
    /// Opens the store on `backend`: recovers from interrupted writes, creates or
    /// verifies the metadata, and indexes every session. A backend that keeps sealed
    /// summaries is indexed from them (a few dozen bytes a session); otherwise every session
    /// is read and verified as [`Store::check`] does, quarantining damaged ones.
    pub fn open(mut backend: B, clock: C, config: Config) -> Result<Self, StoreError> {
        let max_session_bytes = config
            .max_session_bytes
            .unwrap_or(DEFAULT_MAX_SESSION_BYTES);
        if !(MIN_MAX_SESSION_BYTES..=MAX_MAX_SESSION_BYTES).contains(&max_session_bytes) {
            return Err(StoreError::InvalidInput(format!(
                "max-session-bytes is {max_session_bytes}; it must be between \
                 {MIN_MAX_SESSION_BYTES} and {MAX_MAX_SESSION_BYTES}"
            )));
        }
        if config.idle_timeout == Some(0) {
            return Err(StoreError::InvalidInput(
                "idle-timeout must be at least 1 ms (or none to turn it off)".into(),
            ));
        }
        backend.recover()?;
        let (meta, keyring) = match backend.read_meta()? {
            Some(bytes) => {
                let meta = Meta::parse(&bytes)?;
                if meta.backend != backend.kind() {
                    return Err(meta.backend.mismatch(backend.kind()));
                }
                let keyring = meta.unlock(&config.secret)?;
                (meta, keyring)
            }
            None => {
                let listing = backend.list()?;
                if !listing.ids.is_empty() {
                    return Err(StoreError::Corrupted(format!(
                        "{} is missing but the directory holds {} session files; \
                         restore it rather than start a new store over them",
                        keyring::FILE_NAME,
                        listing.ids.len()
                    )));
                }
                let (mut meta, key) = Meta::create_with_cost(&config.secret, config.scrypt_log_n)?;
                meta.backend = backend.kind();
                backend.write_meta(&meta.to_bytes())?;
                let keyring = Keyring::single(meta.current_key, key);
                (meta, keyring)
            }
        };
        let mut store = Store {
            backend,
            clock,
            meta,
            keyring,
            scrypt_log_n: config.scrypt_log_n,
            index: Index::default(),
            missing_key: BTreeMap::new(),
            stamps: HashMap::new(),
            max_session_bytes,
            idle_timeout: config.idle_timeout,
            opened: Report::default(),
        };
        store.opened = match store.backend.take_summaries() {
            Some(summaries) => store.index_summaries(summaries)?,
            None => store.check()?,
        };
        Ok(store)
    }

    /// The store's clock reading now.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// When `session` expires: its `expiresAt`, or earlier if the idle timeout runs out first.
    pub fn expiry(&self, session: &SessionData) -> u64 {
        let idle = self.idle_timeout.map_or(u64::MAX, |t| {
            session.security.last_accessed_at.saturating_add(t)
        });
        session.expires_at.min(idle)
    }

    /// Whether `session` has expired now (absolute or idle).
    pub fn is_expired(&self, session: &SessionData) -> bool {
        self.clock.now() >= self.expiry(session)
    }

    /// What the verification at open found.
    pub fn opened(&self) -> &Report {
        &self.opened
    }

    /// Stores a new session, replacing an expired one of the same id.
    pub fn create(&mut self, session: &SessionData) -> Result<(), StoreError> {
        id::validate(&session.session_id)?;
        let id = session.session_id.as_str();
        if self.missing_key.contains_key(id) {
            return Err(missing_key_error(id));
        }
        let now = self.clock.now();
        if self.index.entry(id).is_some_and(|e| now < e.expires_at) {
            return Err(StoreError::AlreadyExists);
        }
        self.write(session)
    }

    /// The session with this id; `None` if absent or expired (an expired one is removed).
    pub fn get(&mut self, id: &str) -> Result<Option<SessionData>, StoreError> {
        id::validate(id)?;
        self.live(id)
    }

    /// Merges `patch` into the session and returns the stored result.
    pub fn update(&mut self, id: &str, patch: SessionPatch) -> Result<SessionData, StoreError> {
        id::validate(id)?;
        let session = self.live(id)?.ok_or(StoreError::NotFound)?;
        let session = patch.apply(session)?;
        self.write(&session)?;
        Ok(session)
    }

    /// Records an access: sets `security.lastAccessedAt` to now and adds one to
    /// `security.accessCount`; returns the session, or `None` if absent or expired.
    ///
    /// The access goes to the session's access stamp, written in place without a sync,
    /// not to its file: a crash may lose the latest accesses, never the session.
    pub fn touch(&mut self, id: &str) -> Result<Option<SessionData>, StoreError> {
        id::validate(id)?;
        let Some(mut session) = self.live(id)? else {
            return Ok(None);
        };
        session.security.last_accessed_at = self.clock.now();
        session.security.access_count = session.security.access_count.saturating_add(1);
        // `live` has just indexed the session it returned.
        let Some(entry) = self.index.entry(id).cloned() else {
            self.write(&session)?;
            return Ok(Some(session));
        };
        match self.stamp(id, &session, entry.version) {
            Ok(()) => {
                let entry = self.entry(&session, entry.key_id, entry.version);
                self.index.insert(id, entry);
            }
            // The stamp cannot be written (say, a directory squats its name): record the
            // access by rewriting the session instead, which reports its own failure.
            Err(_) => self.write(&session)?,
        }
        Ok(Some(session))
    }

    /// Removes the session without reading it; `false` if nothing was stored.
    pub fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        id::validate(id)?;
        let existed = self.remove_files(id)?;
        self.index.remove(id);
        self.missing_key.remove(id);
        Ok(existed)
    }

    /// Removes every expired session, indexing first any session file the index lacks.
    pub fn cleanup(&mut self) -> Result<u64, StoreError> {
        let listing = self.backend.list()?;
        self.adopt_stamps(&listing);
        for id in &listing.ids {
            if self.index.entry(id).is_none() && !self.missing_key.contains_key(id) {
                match self.read(id) {
                    Ok(_) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        let mut removed = 0;
        for id in self.index.expired_ids(self.clock.now()) {
            self.remove_files(&id)?;
            self.index.remove(&id);
            removed += 1;
        }
        self.backend.compact()?;
        Ok(removed)
    }

    /// The live sessions of `user`, by `created_at` then id.
    pub fn user_sessions(&mut self, user: &str) -> Result<Vec<SessionData>, StoreError> {
        let now = self.clock.now();
        let mut sessions = Vec::new();
        for id in self.index.user_ids(user) {
            if self.index.entry(&id).is_some_and(|e| now >= e.expires_at) {
                continue;
            }
            match self.read(&id) {
                Ok(Some(session)) if now < self.expiry(&session) => sessions.push(session),
                Ok(_) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        sessions.sort_by(|a, b| (a.created_at, &a.session_id).cmp(&(b.created_at, &b.session_id)));
        Ok(sessions)
    }

    /// How many live sessions the store holds.
    pub fn count(&self) -> u64 {
        self.index.live(self.clock.now())
    }

    /// Removes every session file; returns how many were removed.
    pub fn clear(&mut self) -> Result<u64, StoreError> {
        let listing = self.backend.list()?;
        self.adopt_stamps(&listing);
        let mut removed = 0;
        for id in &listing.ids {
            if self.remove_files(id)? {
                removed += 1;
            }
        }
        self.index.clear();
        self.missing_key.clear();
        Ok(removed)
    }

    /// Removes every session of `user`; returns how many live ones were removed.
    pub fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut removed = 0;
        for id in self.index.user_ids(user) {
            self.remove_files(&id)?;
            if self.index.remove(&id).is_some_and(|e| now < e.expires_at) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Adds the key of `secret`: a new secret becomes the current key; the secret of a
    /// retired key restores it (and the sessions that needed it become readable).
    /// Returns the key's id.
    pub fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError> {
        let mut meta = self.meta.clone();
        let mut keyring = self.keyring.clone();
        let id = meta.add_key(&mut keyring, secret, self.scrypt_log_n)?;
        let bytes = meta.to_bytes();
        fits_in_metadata(&bytes)?;
        self.backend.write_meta(&bytes)?;
        self.meta = meta;
        self.keyring = keyring;
        let waiting: Vec<String> = self
            .missing_key
            .iter()
            .filter(|(_, key_id)| **key_id == id)
            .map(|(session, _)| session.clone())
            .collect();
        for session in waiting {
            self.missing_key.remove(&session);
            match self.read(&session) {
                Ok(_) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(id)
    }

    /// The store's keys, with how many sessions each encrypts.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let mut counts = self.index.by_key();
        for key_id in self.missing_key.values() {
            *counts.entry(*key_id).or_insert(0) += 1;
        }
        self.meta
            .entries()
            .iter()
            .map(|entry| KeyInfo {
                id: entry.id,
                current: entry.id == self.keyring.current,
                retired: entry.retired,
                sessions: counts.get(&entry.id).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Re-encrypts up to `limit` sessions still under an older key with the current key.
    /// Each session is rewritten atomically, so an interrupted rekey loses nothing and
    /// can simply be run again.
    pub fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError> {
        let mut progress = RekeyProgress::default();
        for id in self.index.not_under(self.keyring.current, limit) {
            match self.read(&id) {
                Ok(Some(session)) => {
                    self.write(&session)?;
                    progress.rekeyed += 1;
                }
                Ok(None) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        let current = self.keyring.current;
        progress.remaining = (self.index.by_key().into_iter())
            .filter(|(key_id, _)| *key_id != current)
            .map(|(_, sessions)| sessions)
            .sum();
        Ok(progress)
    }

    /// Retires key `id`, refusing while any session file is still encrypted under it.
    pub fn retire_key(&mut self, id: u32) -> Result<(), StoreError> {
        let dependent = self
            .keys()
            .iter()
            .find(|k| k.id == id)
            .map_or(0, |k| k.sessions);
        if dependent > 0 {
            return Err(StoreError::InvalidInput(format!(
                "key {id} still encrypts {dependent} session(s); run rekey first"
            )));
        }
        let mut meta = self.meta.clone();
        let mut keyring = self.keyring.clone();
        meta.retire(&mut keyring, id)?;
        self.backend.write_meta(&meta.to_bytes())?;
        self.meta = meta;
        self.keyring = keyring;
        Ok(())
    }

    /// Verifies every session file, quarantines the damaged ones and rebuilds the index.
    pub fn check(&mut self) -> Result<Report, StoreError> {
        let listing = self.backend.list()?;
        let now = self.clock.now();
        let mut report = Report {
            foreign: listing.foreign,
            ..Report::default()
        };
        self.index.clear();
        self.missing_key.clear();
        self.adopt_stamps(&listing);
        for id in listing.ids {
            self.verify(id, now, &mut report)?;
        }
        report.quarantined = self.backend.quarantined()?;
        Ok(report)
    }

    /// Reads and decrypts session `id` (see [`Store::read`]) and counts what it found in
    /// `report`; only an error that is not about the session itself is returned.
    fn verify(&mut self, id: String, now: u64, report: &mut Report) -> Result<(), StoreError> {
        match self.read(&id) {
            Ok(Some(session)) if now >= self.expiry(&session) => report.expired += 1,
            Ok(Some(_)) => report.live += 1,
            Ok(None) => {}
            Err(StoreError::MissingKey(_)) => report.missing_key += 1,
            Err(StoreError::Corrupted(_)) => report.newly_quarantined.push(id),
            Err(other) => return Err(other),
        }
        Ok(())
    }

    /// Builds the index from the sealed `summaries` a backend gathered at open. A session
    /// whose summary is absent or does not open is read and verified instead, as by
    /// [`Store::check`]; one under a key the store lacks is remembered (`missing-key`).
    fn index_summaries(&mut self, summaries: Summaries) -> Result<Report, StoreError> {
        let now = self.clock.now();
        let mut report = Report {
            foreign: summaries.foreign,
            ..Report::default()
        };
        self.index.clear();
        self.missing_key.clear();
        self.stamps.clear();
        for (id, file) in summaries.stamps {
            if self.idle_timeout.is_none() {
                // Only an idle timeout makes a stamp matter to the index: read it when
                // its session is read.
                self.stamps.insert(id, None);
                continue;
            }
            let stamp = Stamp::open(&file, &id, |key_id| self.keyring.key(key_id));
            let void = stamp.is_none();
            self.stamps.insert(id.clone(), stamp);
            if void {
                self.drop_stamp(&id);
            }
        }
        for (id, sealed) in summaries.sessions {
            let opened = sealed.as_deref().map(|sealed| {
                let key_id = format::header(sealed, Kind::Summary).map(|h| h.key_id);
                (key_id, Summary::open(sealed, &id, |k| self.keyring.key(k)))
            });
            match opened {
                Some((Ok(key_id), Ok(summary))) => {
                    let entry = self.summary_entry(&id, summary, key_id);
                    if now >= entry.expires_at {
                        report.expired += 1;
                    } else {
                        report.live += 1;
                    }
                    self.index.insert(&id, entry);
                }
                Some((Ok(key_id), Err(DecodeError::MissingKey(_)))) => {
                    self.missing_key.insert(id, key_id);
                    report.missing_key += 1;
                }
                // No summary, or a damaged one: the session itself decides.
                _ => self.verify(id, now, &mut report)?,
            }
        }
        let orphans: Vec<String> = (self.stamps.keys())
            .filter(|id| self.index.entry(id).is_none() && !self.missing_key.contains_key(*id))
            .cloned()
            .collect();
        for id in orphans {
            self.drop_stamp(&id);
        }
        report.quarantined = self.backend.quarantined()?;
        Ok(report)
    }

    /// The index entry a summary gives, with the access stamp of its version applied.
    fn summary_entry(&self, id: &str, summary: Summary, key_id: u32) -> Entry {
        let mut last_accessed_at = summary.last_accessed_at;
        if let Some(Some(stamp)) = self.stamps.get(id)
            && stamp.version == summary.version
        {
            last_accessed_at = stamp.last_accessed_at;
        }
        let idle = self
            .idle_timeout
            .map_or(u64::MAX, |t| last_accessed_at.saturating_add(t));
        Entry {
            user: summary.user,
            expires_at: summary.expires_at.min(idle),
            key_id,
            version: summary.version,
        }
    }

    /// The live session `id`, removing it if it has expired.
    fn live(&mut self, id: &str) -> Result<Option<SessionData>, StoreError> {
        if self.missing_key.contains_key(id) {
            return Err(missing_key_error(id));
        }
        let now = self.clock.now();
        match self.index.entry(id) {
            None => return Ok(None),
            Some(entry) if now >= entry.expires_at => {
                self.remove_files(id)?;
                self.index.remove(id);
                return Ok(None);
            }
            Some(_) => {}
        }
        Ok(self.read(id)?.filter(|session| now < self.expiry(session)))
    }

    /// Reads and decrypts session `id`, keeping the index in step with what it finds:
    /// a missing file is forgotten, a damaged one quarantined (`corrupted`), one under
    /// an unknown key remembered (`missing-key`).
    fn read(&mut self, id: &str) -> Result<Option<SessionData>, StoreError> {
        let limit = (MAX_MAX_SESSION_BYTES as usize + HEADER_LEN + TAG_LEN) as u64;
        let mut key_id = 0;
        let mut version = [0; NONCE_LEN];
        let decoded = match self.backend.read(id, limit) {
            Ok(Some(file)) => {
                if let Ok(header) = format::header(&file, Kind::Session) {
                    key_id = header.key_id;
                    version = header.nonce;
                }
                decode(&self.keyring, id, &file)
            }
            Ok(None) => {
                self.index.remove(id);
                return Ok(None);
            }
            Err(StoreError::Corrupted(reason)) => Err(StoreError::Corrupted(reason)),
            Err(other) => return Err(other),
        };
        match decoded {
            Ok(session) => {
                let session = self.apply_stamp(id, session, version)?;
                self.index.insert(id, self.entry(&session, key_id, version));
                Ok(Some(session))
            }
            Err(StoreError::MissingKey(reason)) => {
                self.index.remove(id);
                self.missing_key.insert(id.to_owned(), key_id);
                Err(StoreError::MissingKey(reason))
            }
            Err(StoreError::Corrupted(reason)) => {
                self.index.remove(id);
                self.backend.quarantine(id)?;
                self.drop_stamp(id);
                Err(StoreError::Corrupted(reason))
            }
            Err(other) => Err(other),
        }
    }

    /// The index entry of `session`, its expiry including the idle timeout.
    fn entry(&self, session: &SessionData, key_id: u32, version: [u8; NONCE_LEN]) -> Entry {
        Entry {
            user: session.user_context.user_id.clone(),
            expires_at: self.expiry(session),
            key_id,
            version,
        }
    }

    /// Overlays the access stamp of `id` on `session` if the stamp is for this `version`
    /// of its file; removes a torn or damaged one.
    fn apply_stamp(
        &mut self,
        id: &str,
        mut session: SessionData,
        version: [u8; NONCE_LEN],
    ) -> Result<SessionData, StoreError> {
        let stamp = match self.stamps.get(id) {
            None => return Ok(session),
            // The store holds the directory exclusively, so the stamp it wrote or read is
            // the one on the medium.
            Some(Some(stamp)) => Some(*stamp),
            Some(None) => match self.backend.read_stamp(id) {
                Ok(Some(file)) => Stamp::open(&file, id, |key_id| self.keyring.key(key_id)),
                Ok(None) => {
                    self.stamps.remove(id);
                    return Ok(session);
                }
                Err(StoreError::Corrupted(_)) => None,
                Err(other) => return Err(other),
            },
        };
        match stamp {
            Some(stamp) => {
                self.stamps.insert(id.to_owned(), Some(stamp));
                // A stamp of an older version stays, void, for the next touch to overwrite.
                if stamp.version == version {
                    session.security.last_accessed_at = stamp.last_accessed_at;
                    session.security.access_count = stamp.access_count;
                }
            }
            // Torn or damaged: removed, so that the next touch starts a clean one.
            None => self.drop_stamp(id),
        }
        Ok(session)
    }

    /// Writes the access stamp of `session`, whose file version is `version`.
    fn stamp(
        &mut self,
        id: &str,
        session: &SessionData,
        version: [u8; NONCE_LEN],
    ) -> Result<(), StoreError> {
        let stamp = Stamp {
            last_accessed_at: session.security.last_accessed_at,
            access_count: session.security.access_count,
            version,
        };
        let key = self.keyring.current_key()?;
        let file = stamp.seal(self.keyring.current, key, crypto::nonce()?, id)?;
        let written = self.backend.write_stamp(id, &file);
        // After a failed write the file may hold anything: read it again when needed.
        self.stamps
            .insert(id.to_owned(), written.is_ok().then_some(stamp));
        written
    }

    /// Removes the access stamp of `id`, if it has one. Best effort, hence no error: a
    /// stamp left behind is void (torn, or naming a file version that no longer exists)
    /// and the next open removes it if its session is gone.
    fn drop_stamp(&mut self, id: &str) {
        if self.stamps.remove(id).is_some() {
            let _ = self.backend.remove_stamp(id);
        }
    }

    /// Removes session `id`'s file (durably) and its stamp; `false` if there was no file.
    fn remove_files(&mut self, id: &str) -> Result<bool, StoreError> {
        let existed = match self.backend.remove(id) {
            Ok(existed) => existed,
            Err(error) => {
                self.resync(id);
                return Err(error);
            }
        };
        self.drop_stamp(id);
        Ok(existed)
    }

    /// After a failed write or removal of `id`, makes the index follow what the medium
    /// holds: the failure may have come after the change became visible (a directory sync
    /// failing after the rename), or before it. Best effort: if `id` cannot be read now,
    /// its next read settles it.
    fn resync(&mut self, id: &str) {
        if self.read(id).is_err() {
            self.index.remove(id);
        }
    }

    /// Takes the stamps of `listing` as the ones on the medium, removing those whose
    /// session file is gone.
    fn adopt_stamps(&mut self, listing: &Listing) {
        self.stamps = listing.stamps.iter().map(|id| (id.clone(), None)).collect();
        for id in &listing.stamps {
            // `list` returns `ids` sorted.
            if listing.ids.binary_search(id).is_err() {
                self.drop_stamp(id);
            }
        }
    }

    /// Encrypts and durably writes `session` under the current key. Its access fields are
    /// now in the file, so its access stamp (which names the previous file) is void; it
    /// stays, to be overwritten in place by the next touch, which is cheaper than a new file.
    fn write(&mut self, session: &SessionData) -> Result<(), StoreError> {
        validate(session)?;
        let id = session.session_id.as_str();
        let plaintext = serde_json::to_vec(session)
            .map_err(|e| StoreError::InvalidInput(format!("cannot serialize the session: {e}")))?;
        if plaintext.len() > self.max_session_bytes as usize {
            return Err(StoreError::TooLarge(format!(
                "session {id:?} serializes to {} bytes; the limit is {}",
                plaintext.len(),
                self.max_session_bytes
            )));
        }
        let key = self.keyring.current_key()?;
        let version = crypto::nonce()?;
        let file = format::encode(
            Kind::Session,
            self.keyring.current,
            key,
            version,
            id,
            &plaintext,
        )?;
        let summary = if self.backend.keeps_summaries() {
            Summary::of(session, version).seal(self.keyring.current, key, crypto::nonce()?, id)?
        } else {
            Vec::new()
        };
        if let Err(error) = self.backend.write(id, &file, &summary) {
            self.resync(id);
            return Err(error);
        }
        self.missing_key.remove(id);
        let entry = self.entry(session, self.keyring.current, version);
        self.index.insert(id, entry);
        Ok(())
    }
}

impl<D: crate::fs::Dir + Clone, C: Clock> Store<crate::medium::Medium<D>, C> {
    /// Moves every session to the `to` backend; returns how many moved (0 if the store
    /// is already there). Safe to interrupt at any point: the next open either discards
    /// the partial copy (the store is still where it was) or finishes removing the old
    /// data (the store has moved); running it again then completes the move.
    pub fn migrate(&mut self, to: crate::backend::BackendKind) -> Result<u64, StoreError> {
        if self.backend.kind() == to {
            return Ok(0);
        }
        let keyring = &self.keyring;
        let mut summarize = |id: &str, blob: &[u8]| summarize(keyring, id, blob);
        let (meta, moved) = self.backend.migrate(&self.meta, to, &mut summarize)?;
        // The target reopened and gathered what this store already indexes.
        drop(self.backend.take_summaries());
        // Blobs and stamps moved byte for byte: the index and the stamp cache still hold.
        self.meta = meta;
        Ok(moved)
    }
}

/// The sealed summary of session blob `blob`, under the key the blob is under (so the
/// index counts it against that key); empty if the blob does not open, in which case
/// the store reads the blob itself at open.
fn summarize(keyring: &Keyring, id: &str, blob: &[u8]) -> Vec<u8> {
    let sealed = || -> Option<Vec<u8>> {
        let session = decode(keyring, id, blob).ok()?;
        let header = format::header(blob, Kind::Session).ok()?;
        let key = keyring.key(header.key_id)?;
        let nonce = crypto::nonce().ok()?;
        Summary::of(&session, header.nonce)
            .seal(header.key_id, key, nonce, id)
            .ok()
    };
    sealed().unwrap_or_default()
}

/// Decrypts and parses the session file `file` of session `id` with `keyring`: a key the
/// ring lacks is `missing-key`; anything else wrong with the file is `corrupted`.
fn decode(keyring: &Keyring, id: &str, file: &[u8]) -> Result<SessionData, StoreError> {
    let name = crate::backend::session_name(id);
    let plaintext = format::decode(file, Kind::Session, id, |key_id| keyring.key(key_id)).map_err(
        |e| match e {
            DecodeError::MissingKey(key_id) => StoreError::MissingKey(format!(
                "{name} is encrypted under key id {key_id}, which this store does not hold"
            )),
            other => StoreError::Corrupted(format!("{name}: {other}")),
        },
    )?;
    let session: SessionData = serde_json::from_slice(&plaintext).map_err(|e| {
        StoreError::Corrupted(format!(
            "{name}: decrypted, but not a session document: {e}"
        ))
    })?;
    if session.session_id != id {
        return Err(StoreError::Corrupted(format!(
            "{name} holds session {:?}",
            session.session_id
        )));
    }
    Ok(session)
}

/// Refuses metadata `bytes` that the next open would refuse to read.
fn fits_in_metadata(bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() as u64 > keyring::MAX_LEN {
        return Err(StoreError::InvalidInput(format!(
            "with another key the metadata would be {} bytes, over its {}-byte limit; \
             retire keys no longer needed (key retire) first",
            bytes.len(),
            keyring::MAX_LEN
        )));
    }
    Ok(())
}

fn missing_key_error(id: &str) -> StoreError {
    StoreError::MissingKey(format!(
        "{} is encrypted under a key this store does not hold",
        crate::backend::session_name(id)
    ))
}

/// Checks what serde cannot: a valid id, and no extra member that repeats a schema name.
pub fn validate(session: &SessionData) -> Result<(), StoreError> {
    id::validate(&session.session_id)?;
    check_extra("the session", &session.extra, names::SESSION)?;
    check_extra(
        "userContext",
        &session.user_context.extra,
        names::USER_CONTEXT,
    )?;
    check_extra(
        "tokenMetadata",
        &session.token_metadata.extra,
        names::TOKEN_METADATA,
    )?;
    check_extra("security", &session.security.extra, names::SECURITY)
}

fn check_extra(object: &str, extra: &Extra, schema: &[&str]) -> Result<(), StoreError> {
    match extra.keys().find(|name| schema.contains(&name.as_str())) {
        Some(name) => Err(StoreError::InvalidInput(format!(
            "{object} has an extra member {name:?}, which is a schema field"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Files;
    use crate::fs::StdDir;
    use std::cell::Cell;
    use std::rc::Rc;

    type TestStore = Store<Files<StdDir>, Box<dyn Fn() -> u64>>;

    fn open(dir: &std::path::Path, now: &Rc<Cell<u64>>) -> Result<TestStore, StoreError> {
        let now = Rc::clone(now);
        let clock: Box<dyn Fn() -> u64> = Box::new(move || now.get());
        Store::open(
            Files::new(StdDir::new(dir)),
            clock,
            Config::new(Secret::RawKey(vec![5; 32])),
        )
    }

    fn session(id: &str, user: &str, expires_at: u64) -> SessionData {
        serde_json::from_value(serde_json::json!({
            "sessionId": id, "sessionToken": "t",
            "userContext": {"userId": user},
            "tokenMetadata": {"accessToken": "a", "expiresAt": 1, "scopes": []},
            "security": {"ipAddress": "i", "userAgent": "u", "createdAt": 1, "lastAccessedAt": 1, "accessCount": 0},
            "expiresAt": expires_at, "createdAt": 1
        }))
        .unwrap()
    }

    #[test]
    fn expired_sessions_vanish_on_every_path() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 200)).unwrap();
        store.create(&session("b", "u", 300)).unwrap();
        now.set(200);
        assert_eq!(store.count(), 1);
        assert_eq!(store.user_sessions("u").unwrap().len(), 1);
        assert!(matches!(
            store.update("a", SessionPatch::default()),
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.get("a").unwrap(), None);
        assert!(!tmp.path().join("a.svs").exists());
        assert_eq!(store.cleanup().unwrap(), 0);
        now.set(300);
        assert_eq!(store.cleanup().unwrap(), 1);
        assert_eq!(store.count(), 0);
    }

    #[test]
    fn create_refuses_a_live_id_and_replaces_an_expired_one() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 200)).unwrap();
        assert!(matches!(
            store.create(&session("a", "v", 300)),
            Err(StoreError::AlreadyExists)
        ));
        now.set(250);
        store.create(&session("a", "v", 300)).unwrap();
        assert_eq!(store.get("a").unwrap().unwrap().user_context.user_id, "v");
    }

    #[test]
    fn a_reopened_store_rebuilds_its_index() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 200)).unwrap();
        store.create(&session("b", "w", 200)).unwrap();
        drop(store);
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(store.count(), 2);
        assert_eq!(store.user_sessions("w").unwrap()[0].session_id, "b");
        assert_eq!(store.opened().live, 2);
    }

    #[test]
    fn missing_metadata_beside_sessions_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        open(tmp.path(), &now)
            .unwrap()
            .create(&session("a", "u", 200))
            .unwrap();
        std::fs::remove_file(tmp.path().join(keyring::FILE_NAME)).unwrap();
        assert!(matches!(
            open(tmp.path(), &now),
            Err(StoreError::Corrupted(_))
        ));
    }

    #[test]
    fn extra_members_may_not_shadow_schema_fields() {
        let mut bad = session("a", "u", 200);
        bad.user_context
            .extra
            .insert("userId".into(), serde_json::json!("x"));
        assert!(matches!(validate(&bad), Err(StoreError::InvalidInput(_))));
    }

    fn access(session: &SessionData) -> (u64, u64) {
        (
            session.security.last_accessed_at,
            session.security.access_count,
        )
    }

    #[test]
    fn touch_writes_a_stamp_and_leaves_the_session_file_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        let file = std::fs::read(tmp.path().join("a.svs")).unwrap();
        now.set(150);
        store.touch("a").unwrap().unwrap();
        now.set(160);
        assert_eq!(access(&store.touch("a").unwrap().unwrap()), (160, 2));
        assert_eq!(std::fs::read(tmp.path().join("a.svs")).unwrap(), file);
        assert_eq!(
            std::fs::metadata(tmp.path().join("a.sva")).unwrap().len(),
            crate::seal::stamp::LEN as u64
        );
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (160, 2));
        drop(store);
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (160, 2));
        assert_eq!(access(&store.user_sessions("u").unwrap()[0]), (160, 2));
    }

    #[test]
    fn a_write_folds_the_stamp_into_the_file_and_voids_it() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        now.set(150);
        store.touch("a").unwrap().unwrap();
        let stale = std::fs::read(tmp.path().join("a.sva")).unwrap();
        let patch: SessionPatch =
            serde_json::from_value(serde_json::json!({"security": {"accessCount": 40}})).unwrap();
        let updated = store.update("a", patch).unwrap();
        assert_eq!(access(&updated), (150, 40));
        // The stamp stays, void: it names the file before the update.
        assert_eq!(std::fs::read(tmp.path().join("a.sva")).unwrap(), stale);
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (150, 40));
        drop(store);
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (150, 40));
        now.set(170);
        assert_eq!(access(&store.touch("a").unwrap().unwrap()), (170, 41));
        // An older stamp put back over the current one is void too.
        std::fs::write(tmp.path().join("a.sva"), &stale).unwrap();
        drop(store);
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (150, 40));
    }

    #[test]
    fn torn_or_moved_stamps_are_ignored_and_never_quarantine_the_session() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        store.create(&session("b", "u", 900)).unwrap();
        now.set(150);
        store.touch("a").unwrap().unwrap();
        let stamp = std::fs::read(tmp.path().join("a.sva")).unwrap();
        drop(store);
        for torn in [&stamp[..0], &stamp[..40], &stamp[..stamp.len() - 1]] {
            std::fs::write(tmp.path().join("a.sva"), torn).unwrap();
            let mut store = open(tmp.path(), &now).unwrap();
            assert_eq!(access(&store.get("a").unwrap().unwrap()), (1, 0));
            assert_eq!(
                store.check().unwrap().newly_quarantined,
                Vec::<String>::new()
            );
            assert!(!tmp.path().join("a.sva").exists());
        }
        // A stamp copied to another id does not authenticate there.
        std::fs::write(tmp.path().join("b.sva"), &stamp).unwrap();
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(access(&store.get("b").unwrap().unwrap()), (1, 0));
        assert_eq!(store.opened().foreign, 0);
    }

    #[test]
    fn stamps_go_with_their_session() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        for id in ["a", "b", "c"] {
            store.create(&session(id, "u", 900)).unwrap();
            store.touch(id).unwrap().unwrap();
        }
        assert!(store.delete("a").unwrap());
        assert!(!tmp.path().join("a.sva").exists());
        assert_eq!(store.clear().unwrap(), 2);
        assert_eq!(crate::fs::names(tmp.path()), vec![keyring::FILE_NAME]);
        // An orphan stamp (its session deleted before a crash) goes at the next open.
        store.create(&session("d", "u", 900)).unwrap();
        store.touch("d").unwrap().unwrap();
        drop(store);
        std::fs::remove_file(tmp.path().join("d.svs")).unwrap();
        let store = open(tmp.path(), &now).unwrap();
        assert!(!tmp.path().join("d.sva").exists());
        assert_eq!(store.count(), 0);
    }

    #[test]
    fn touch_rewrites_the_session_when_its_stamp_cannot_be_written() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        std::fs::create_dir(tmp.path().join("a.sva")).unwrap();
        now.set(150);
        assert_eq!(access(&store.touch("a").unwrap().unwrap()), (150, 1));
        drop(store);
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (150, 1));
        assert_eq!(store.opened().foreign, 1);
    }

    type LogStore = Store<crate::backend::log::Log<StdDir>, ManualClock>;

    fn open_log(dir: &std::path::Path, now: u64, idle: Option<u64>) -> LogStore {
        let log =
            crate::backend::log::Log::open(StdDir::new(dir), crate::Durability::Durable).unwrap();
        let mut config = Config::new(Secret::RawKey(vec![5; 32]));
        config.idle_timeout = idle;
        Store::open(log, ManualClock::new(now), config).unwrap()
    }

    #[test]
    fn a_log_store_is_indexed_from_summaries_and_stamps_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open_log(tmp.path(), 100, Some(1_000));
        store.create(&session("a", "alice", 10_000)).unwrap();
        store.create(&session("b", "alice", 10_000)).unwrap();
        store.create(&session("c", "bob", 500)).unwrap();
        store.clock.set(900);
        store.touch("b").unwrap();
        drop(store);
        // At 1,200: a idled out (last access 1 + 1,000), b was touched at 900, c expired.
        let mut store = open_log(tmp.path(), 1_200, Some(1_000));
        let opened = store.opened().clone();
        assert_eq!((opened.live, opened.expired), (1, 2));
        assert_eq!(store.count(), 1);
        let ids: Vec<String> = (store.user_sessions("alice").unwrap().into_iter())
            .map(|s| s.session_id)
            .collect();
        assert_eq!(ids, vec!["b"]);
        assert_eq!(
            store.get("b").unwrap().unwrap().security.last_accessed_at,
            900
        );
        // Expired sessions stay on disk (and under their key) until removed.
        assert_eq!(store.keys()[0].sessions, 3);
    }

    #[test]
    fn open_trusts_summaries_and_reads_a_session_only_when_its_summary_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open_log(tmp.path(), 100, None);
        for id in ["a", "b", "c"] {
            store.create(&session(id, "u", 10_000)).unwrap();
        }
        drop(store);
        let mut log =
            crate::backend::log::Log::open(StdDir::new(tmp.path()), crate::Durability::Durable)
                .unwrap();
        let summaries = log.take_summaries().unwrap();
        let summary = |id: &str| {
            (summaries.sessions.iter())
                .find(|(s, _)| s == id)
                .and_then(|(_, sealed)| sealed.clone())
                .unwrap()
        };
        let blob_b = log.read("b", 1 << 20).unwrap().unwrap();
        // a: a whole record whose blob does not open, under an authentic summary.
        log.write("a", b"not a session file", &summary("a"))
            .unwrap();
        // b: its blob with no summary; c: its blob with a summary that fails to open.
        log.write("b", &blob_b, b"").unwrap();
        let mut bad = summary("c");
        bad[30] ^= 1;
        let blob_c = log.read("c", 1 << 20).unwrap().unwrap();
        log.write("c", &blob_c, &bad).unwrap();
        drop(log);
        let mut store = open_log(tmp.path(), 200, None);
        // a was never decrypted at open, b and c were, and are whole.
        assert_eq!(store.opened().newly_quarantined, Vec::<String>::new());
        assert_eq!(store.count(), 3);
        assert!(store.get("b").unwrap().is_some());
        assert!(store.get("c").unwrap().is_some());
        assert!(matches!(store.get("a"), Err(StoreError::Corrupted(_))));
        assert_eq!(store.count(), 2);
        // A full check verifies every session.
        assert_eq!(store.check().unwrap().live, 2);
    }

    #[test]
    fn metadata_past_the_read_limit_is_refused_before_it_is_written() {
        let limit = usize::try_from(keyring::MAX_LEN).unwrap();
        assert!(fits_in_metadata(&vec![b' '; limit]).is_ok());
        match fits_in_metadata(&vec![b' '; limit + 1]) {
            Err(StoreError::InvalidInput(reason)) => assert!(reason.contains("key retire")),
            other => panic!("{other:?}"),
        }
    }
}
