//! The store: encryption, expiry, merge and the index over a [`Backend`].
//!
//! The index is authoritative while the store is open (the host holds an exclusive lock
//! on the directory); `check`, `cleanup` and `clear` also reconcile it with the backend.

pub mod directory_backend;
mod group_commit;
pub mod index;
mod keys;
mod ledger;
mod maintain;
mod reads;
mod sealer;
mod summaries;
mod writes;

pub use crate::backend::Compaction;
pub use crate::sessions::clock::Clock;
#[cfg(test)]
pub use crate::sessions::clock::ManualClock;
pub use crate::sessions::{Config, Erase, KeyInfo, RekeyProgress, Report};
pub use directory_backend::DirectoryBackend;

use std::collections::{BTreeMap, HashMap};

use crate::backend::layout::{self, META_FILE};
use crate::backend::{Backend, BackendKind};
use crate::directory_store::index::Index;
use crate::document::patch::SessionPatch;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::keyring::{self, Keyring, Meta, Secret};
use crate::seal::stamp::Stamp;
use crate::sessions::cache::SessionCache;
use crate::sessions::lifetime::Lifetime;
use crate::sessions::{IdPage, Sessions};

/// An open session store.
pub struct DirectoryStore<B, C> {
    backend: B,
    lifetime: Lifetime<C>,
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
    erase: Erase,
    opened: Report,
    /// The sequence number of the next write: above every version the store has seen.
    next_seq: u64,
    /// The version ledger; `None` until a store of an older format is upgraded.
    ledger: Option<ledger::LedgerState>,
    /// Sessions recently read or written, with the records they came from.
    cache: SessionCache,
    /// Ids removed (`delete`, `revoke-user`, `clear`) before their expiry, with that
    /// expiry: `set` refuses them until then, so that a request in flight at the removal
    /// does not bring the session back. Kept in memory: the store's lock makes this open
    /// the only one, so no request in flight can outlive it.
    removed: HashMap<String, u64>,
    /// Between `hold_syncs` and `flush`: the ledger frames of the writes made meanwhile
    /// (generation, offset, bytes), written once those writes are synced.
    held: Option<Vec<(u64, u64, Vec<u8>)>>,
}

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Opens the store on `backend`: recovers from interrupted writes, creates or
    /// verifies the metadata, and indexes every session. A backend that keeps sealed
    /// summaries is indexed from them (a few dozen bytes a session); otherwise every session
    /// is read and verified as `check` does, quarantining damaged ones.
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
            lifetime: Lifetime {
                clock,
                idle_timeout: config.idle_timeout,
                max_lifetime: config.max_lifetime,
            },
            meta,
            keyring,
            scrypt_log_n: config.scrypt_log_n,
            index: Index::default(),
            missing_key: BTreeMap::new(),
            removed: HashMap::new(),
            held: None,
            stamps: HashMap::new(),
            max_session_bytes,
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

    /// What a move between backends changes: the backend, the metadata (which records the
    /// move), and the key ring it is sealed with.
    pub(crate) fn migration_parts(&mut self) -> (&mut B, &mut Meta, &Keyring) {
        (&mut self.backend, &mut self.meta, &self.keyring)
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

/// The WIT's operations, each done by the module named beside it.
impl<B: Backend, C: Clock> Sessions for DirectoryStore<B, C> {
    fn create(&mut self, session: &Session) -> Result<(), StoreError> {
        DirectoryStore::create(self, session) // writes.rs
    }
    fn set(&mut self, session: &Session) -> Result<(), StoreError> {
        DirectoryStore::set(self, session) // writes.rs
    }
    fn list_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdPage, StoreError> {
        DirectoryStore::list_ids(self, after, limit) // reads.rs
    }
    fn get(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        DirectoryStore::get(self, id) // reads.rs
    }
    fn touch(&mut self, id: &str, expires_at: Option<u64>) -> Result<Option<Session>, StoreError> {
        DirectoryStore::touch(self, id, expires_at) // writes.rs
    }
    fn update(&mut self, id: &str, patch: SessionPatch) -> Result<Session, StoreError> {
        DirectoryStore::update(self, id, patch) // writes.rs
    }
    fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        DirectoryStore::delete(self, id) // writes.rs
    }
    fn cleanup(&mut self) -> Result<u64, StoreError> {
        DirectoryStore::cleanup(self) // maintain.rs
    }
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Session>, StoreError> {
        DirectoryStore::user_sessions(self, user) // reads.rs
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        Ok(DirectoryStore::count(self)) // reads.rs
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        DirectoryStore::clear(self) // maintain.rs
    }
    fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        DirectoryStore::revoke_user(self, user) // maintain.rs
    }
    fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError> {
        DirectoryStore::add_key(self, secret) // keys.rs
    }
    fn keys(&mut self) -> Result<Vec<KeyInfo>, StoreError> {
        Ok(DirectoryStore::keys(self)) // keys.rs
    }
    fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError> {
        DirectoryStore::rekey(self, limit) // keys.rs
    }
    fn retire_key(&mut self, id: u32) -> Result<(), StoreError> {
        DirectoryStore::retire_key(self, id) // keys.rs
    }
    fn check(&mut self) -> Result<Report, StoreError> {
        DirectoryStore::check(self) // maintain.rs
    }
    fn compact(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        DirectoryStore::compact(self, limit) // maintain.rs
    }
    fn hold_syncs(&mut self) {
        DirectoryStore::hold_syncs(self) // group_commit.rs
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        DirectoryStore::flush(self) // group_commit.rs
    }
    fn now(&self) -> u64 {
        self.lifetime.now()
    }
    fn is_expired(&self, session: &Session) -> bool {
        self.lifetime.is_expired(session)
    }
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

    pub(super) fn session(id: &str, user: &str, expires_at: u64) -> Session {
        crate::document::example(id, user, expires_at)
    }

    pub(super) fn access(session: &Session) -> (u64, u64) {
        (session.access().unwrap().0, session.access().unwrap().1)
    }

    pub(super) type LogStore = DirectoryStore<crate::backend::log::Log<StdDir>, ManualClock>;

    pub(super) fn open_log(dir: &std::path::Path, now: u64, idle: Option<u64>) -> LogStore {
        let log =
            crate::backend::log::Log::open(StdDir::new(dir), crate::backend::Durability::Durable)
                .unwrap();
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
        assert_eq!(store.user_sessions("w").unwrap()[0].id(), "b");
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
        store.lifetime.clock.set(900);
        store.touch("b", None).unwrap();
        drop(store);
        // At 1,200: a idled out (last access 1 + 1,000), b was touched at 900, c expired.
        let mut store = open_log(tmp.path(), 1_200, Some(1_000));
        let opened = store.opened().clone();
        assert_eq!((opened.live, opened.expired), (1, 2));
        assert_eq!(store.count(), 1);
        let ids: Vec<String> = (store.user_sessions("alice").unwrap().into_iter())
            .map(|s| s.id().to_owned())
            .collect();
        assert_eq!(ids, vec!["b"]);
        assert_eq!(store.get("b").unwrap().unwrap().access().unwrap().0, 900);
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
        let mut log = crate::backend::log::Log::open(
            StdDir::new(tmp.path()),
            crate::backend::Durability::Durable,
        )
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
