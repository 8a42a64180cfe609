//! The store: encryption, expiry, merge and the index over a [`Backend`].
//!
//! The index is authoritative while the store is open (the host holds an exclusive lock
//! on the directory); `check`, `cleanup` and `clear` also reconcile it with the backend.

pub mod index;
mod keys;
mod ledger;
mod maintain;
mod reads;
mod sealer;
mod summaries;
mod writes;

pub(crate) use reads::decode_named;

pub use crate::backend::Compaction;
pub use crate::sessions::cache::DEFAULT_CACHE_BYTES;
pub use crate::sessions::clock::{Clock, ManualClock, SystemClock};

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::backend::layout::{self, META_FILE};
use crate::backend::{Backend, BackendKind};
use crate::directory_store::index::Index;
use crate::document::model::SessionData;
use crate::document::{DEFAULT_MAX_SESSION_BYTES, MAX_MAX_SESSION_BYTES, MIN_MAX_SESSION_BYTES};
use crate::error::StoreError;
use crate::keyring::{self, Keyring, Meta, Secret};
use crate::seal::stamp::Stamp;
use crate::sessions::cache::SessionCache;

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
    /// When removed sessions are erased from the backend.
    pub erase: Erase,
    /// The most bytes of opened sessions kept in memory, so that a read of a recently
    /// used session skips the backend and the decryption (see `cache.rs`); 0 keeps none.
    pub cache_bytes: u64,
}

/// When the records of removed sessions leave the backend (the `files` backend unlinks
/// a removed session's file at once either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Erase {
    /// At the next compaction: `cleanup`, `compact`, or once dead records pass 1 MiB in
    /// a log under 16 MiB (half the log above that).
    #[default]
    Deferred,
    /// Before `delete`, `revoke-user`, `clear` or `cleanup` returns: the log is compacted.
    Immediate,
}

impl Config {
    /// The session size limit, after checking it and the idle timeout are allowed.
    pub(crate) fn checked_max_session_bytes(&self) -> Result<u32, StoreError> {
        let max_session_bytes = self.max_session_bytes.unwrap_or(DEFAULT_MAX_SESSION_BYTES);
        if !(MIN_MAX_SESSION_BYTES..=MAX_MAX_SESSION_BYTES).contains(&max_session_bytes) {
            return Err(StoreError::InvalidInput(format!(
                "max-session-bytes is {max_session_bytes}; it must be between \
                 {MIN_MAX_SESSION_BYTES} and {MAX_MAX_SESSION_BYTES}"
            )));
        }
        if self.idle_timeout == Some(0) {
            return Err(StoreError::InvalidInput(
                "idle-timeout must be at least 1 ms (or none to turn it off)".into(),
            ));
        }
        Ok(max_session_bytes)
    }

    /// A configuration with the defaults and `secret`.
    pub fn new(secret: Secret) -> Self {
        Config {
            secret,
            max_session_bytes: None,
            scrypt_log_n: keyring::DEFAULT_LOG_N,
            idle_timeout: None,
            erase: Erase::Deferred,
            cache_bytes: DEFAULT_CACHE_BYTES,
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
    /// Bytes of removed or replaced records still on disk (`check` only; 0 at open).
    pub dead_bytes: u64,
    /// The oldest key id any record on disk is sealed under, live or dead (`check`
    /// only; `None` at open).
    pub oldest_key: Option<u32>,
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
pub struct DirectoryStore<B, C> {
    backend: B,
    clock: C,
    meta: Meta,
    keyring: Keyring,
    scrypt_log_n: u8,
    index: Index,
    /// Session files under a key the keyring lacks, with that key's id.
    missing_key: BTreeMap<String, u32>,
    /// Ids with an access stamp on the backend (see [`crate::seal::stamp`]), with the stamp
    /// once it has been read or written (`None`: not read yet).
    stamps: HashMap<String, Option<Stamp>>,
    max_session_bytes: u32,
    idle_timeout: Option<u64>,
    erase: Erase,
    opened: Report,
    /// The sequence number of the next write: above every version the store has seen.
    next_seq: u64,
    /// The version ledger; `None` until a store of an older format is upgraded.
    ledger: Option<ledger::LedgerState>,
    /// Sessions recently read or written, with the records they came from.
    cache: SessionCache,
}

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Opens the store on `backend`: recovers from interrupted writes, creates or
    /// verifies the metadata, and indexes every session. A backend that keeps sealed
    /// summaries is indexed from them (a few dozen bytes a session); otherwise every session
    /// is read and verified as [`DirectoryStore::check`] does, quarantining damaged ones.
    pub fn open(backend: B, clock: C, config: Config) -> Result<Self, StoreError> {
        Self::open_as(backend, clock, config, false)
    }

    /// Opens the store a move out of a bucket is filling (its metadata says it comes from
    /// `redis`, which [`DirectoryStore::open`] refuses): the mark stays until
    /// [`DirectoryStore::finish_incoming`].
    pub(crate) fn open_incoming(backend: B, clock: C, config: Config) -> Result<Self, StoreError> {
        Self::open_as(backend, clock, config, true)
    }

    /// Records that the store a move out of a bucket filled is complete: it opens as any
    /// other from here.
    pub(crate) fn finish_incoming(&mut self) -> Result<(), StoreError> {
        self.meta.migrated_from = None;
        self.backend.write_meta(&self.meta.sealed(&self.keyring)?)
    }

    fn open_as(
        mut backend: B,
        clock: C,
        config: Config,
        incoming: bool,
    ) -> Result<Self, StoreError> {
        let max_session_bytes = config.checked_max_session_bytes()?;
        backend.recover()?;
        let (meta, keyring) = match backend.read_meta()? {
            Some(bytes) => {
                let mut meta = Meta::parse(&bytes)?;
                let mut keyring = meta.unlock(&config.secret)?;
                // Nothing the metadata says is acted on before it authenticates.
                meta.authenticate(&keyring)?;
                if meta.backend != backend.kind() {
                    return Err(meta.backend.mismatch(backend.kind()));
                }
                if meta.migrating_to == Some(BackendKind::Redis) {
                    // The copy is in the server: only the migration can settle it.
                    return Err(StoreError::InvalidInput(
                        "this store was being migrated to redis; run `migrate --to redis` \
                         again to finish (its sessions are still here)"
                            .into(),
                    ));
                }
                // Being filled by a move out of a bucket: only that move opens it.
                let filling = meta.migrated_from == Some(BackendKind::Redis);
                if filling && !incoming {
                    return Err(StoreError::InvalidInput(format!(
                        "this store is being moved here from redis and is not complete: run \
                         `migrate --to {}` from the bucket again",
                        backend.kind().name()
                    )));
                }
                let arrived = if filling {
                    None
                } else {
                    meta.migrated_from.take()
                };
                let unsettled = (meta.migrating_to.take(), arrived);
                let from_v1 = meta.version < keyring::VERSION_MAC;
                if from_v1 {
                    meta.upgrade(&mut keyring)?;
                }
                if unsettled != (None, None) || from_v1 {
                    backend.settle(unsettled.0, unsettled.1)?;
                    backend.write_meta(&meta.sealed(&keyring)?)?;
                }
                (meta, keyring)
            }
            None => {
                let listing = backend.list()?;
                if !listing.ids.is_empty() {
                    return Err(StoreError::Corrupted(format!(
                        "{} is missing but the directory holds {} session files; \
                         restore it rather than start a new store over them",
                        META_FILE,
                        listing.ids.len()
                    )));
                }
                let (mut meta, key) = Meta::create_with_cost(&config.secret, config.scrypt_log_n)?;
                meta.backend = backend.kind();
                let keyring = Keyring::single(meta.current_key, key, meta.scope()?);
                backend.write_meta(&meta.sealed(&keyring)?)?;
                (meta, keyring)
            }
        };
        let mut store = DirectoryStore {
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
            erase: config.erase,
            opened: Report::default(),
            next_seq: 1,
            ledger: None,
            cache: SessionCache::new(config.cache_bytes),
        };
        if let Some(generation) = store.meta.ledger {
            let ledger = store.load_ledger(generation)?;
            store.next_seq = ledger.max_seq().saturating_add(1);
            store.ledger = Some(ledger);
            store.remove_other_ledgers(generation)?;
        }
        store.opened = match store.backend.take_summaries() {
            Some(summaries) => store.index_summaries(summaries)?,
            None => store.verify_all()?,
        };
        if store.meta.version < keyring::VERSION {
            store.upgrade_records()?;
        }
        store.lend_keys();
        match &mut store.ledger {
            // A new store, or one whose creation stopped before its ledger existed (it
            // cannot hold sessions yet: the ledger is written before open returns).
            None if store.meta.version >= keyring::VERSION => {
                if !store.index.is_empty() || !store.missing_key.is_empty() {
                    return Err(StoreError::Corrupted(format!(
                        "{META_FILE} names no version ledger, yet the store holds sessions: \
                         it is older than they are; restore the current one"
                    )));
                }
                store.start_ledger()?
            }
            None => {}
            Some(ledger) => {
                ledger.settle(&store.index);
                if ledger.is_damaged() {
                    store.snapshot()?;
                }
            }
        }
        Ok(store)
    }

    /// How many sessions the cache holds (for tests of what enters and leaves it).
    #[cfg(test)]
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The store's clock reading now.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// When `session` expires: its `expiresAt`, or earlier if the idle timeout runs out first.
    pub fn expiry(&self, session: &SessionData) -> u64 {
        expiry(session, self.idle_timeout)
    }

    /// Whether `session` has expired now (absolute or idle).
    pub fn is_expired(&self, session: &SessionData) -> bool {
        self.clock.now() >= self.expiry(session)
    }

    /// What the verification at open found.
    pub fn opened(&self) -> &Report {
        &self.opened
    }

    /// The authentic metadata and key ring (for a move into a bucket).
    pub fn meta(&self) -> (&Meta, &Keyring) {
        (&self.meta, &self.keyring)
    }

    /// Every session id the index holds, live or expired.
    pub fn ids(&self) -> Vec<String> {
        self.index.ids()
    }

    /// How many sessions are under a key the key ring lacks.
    pub fn missing_keys(&self) -> usize {
        self.missing_key.len()
    }

    /// The backend the sessions are kept in.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Lends the backend the key ring, to seal its hints' index blocks with (again after
    /// every change of the ring).
    pub(super) fn lend_keys(&mut self) {
        if self.backend.keeps_summaries() {
            let sealer = sealer::BlockSealer::new(self.keyring.clone());
            self.backend.lend_sealer(Box::new(sealer));
        }
    }
}

/// When `session` expires under `idle_timeout`: its `expiresAt`, or earlier if the idle
/// timeout runs out first.
pub(crate) fn expiry(session: &SessionData, idle_timeout: Option<u64>) -> u64 {
    expiry_at(
        session.expires_at,
        session.security.last_accessed_at,
        idle_timeout,
    )
}

/// When a session that expires at `expires_at` and was last accessed at
/// `last_accessed_at` expires under `idle_timeout`.
fn expiry_at(expires_at: u64, last_accessed_at: u64, idle_timeout: Option<u64>) -> u64 {
    let idle = idle_timeout.map_or(u64::MAX, |t| last_accessed_at.saturating_add(t));
    expires_at.min(idle)
}

fn missing_key_error(id: &str) -> StoreError {
    StoreError::MissingKey(format!(
        "{} is encrypted under a key this store does not hold",
        layout::session_name(id)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Files;
    use crate::fs::StdDir;
    use std::cell::Cell;
    use std::rc::Rc;

    pub(super) type TestStore = DirectoryStore<Files<StdDir>, Box<dyn Fn() -> u64>>;

    pub(super) fn open(
        dir: &std::path::Path,
        now: &Rc<Cell<u64>>,
    ) -> Result<TestStore, StoreError> {
        let now = Rc::clone(now);
        let clock: Box<dyn Fn() -> u64> = Box::new(move || now.get());
        DirectoryStore::open(
            Files::new(StdDir::new(dir)),
            clock,
            Config::new(Secret::RawKey(vec![5; 32])),
        )
    }

    pub(super) fn session(id: &str, user: &str, expires_at: u64) -> SessionData {
        crate::document::example(id, user, expires_at)
    }

    pub(super) fn access(session: &SessionData) -> (u64, u64) {
        (
            session.security.last_accessed_at,
            session.security.access_count,
        )
    }

    pub(super) type LogStore = DirectoryStore<crate::backend::log::Log<StdDir>, ManualClock>;

    pub(super) fn open_log(dir: &std::path::Path, now: u64, idle: Option<u64>) -> LogStore {
        let log =
            crate::backend::log::Log::open(StdDir::new(dir), crate::Durability::Durable).unwrap();
        let mut config = Config::new(Secret::RawKey(vec![5; 32]));
        config.idle_timeout = idle;
        DirectoryStore::open(log, ManualClock::new(now), config).unwrap()
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
        std::fs::remove_file(tmp.path().join(META_FILE)).unwrap();
        assert!(matches!(
            open(tmp.path(), &now),
            Err(StoreError::Corrupted(_))
        ));
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
}
