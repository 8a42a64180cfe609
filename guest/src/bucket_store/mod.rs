//! A store many hosts share: sealed records in a key-value [`Bucket`] (the `redis`
//! backend), with the per-user and expiry indexes kept by the server.
//!
//! Every read goes to the bucket, every write is a compare-and-swap on the record it
//! read, retried when another host won, so two hosts never lose each other's updates.
//! Between calls a host keeps its key ring and a cache of the sessions it opened, each
//! served only when the bytes fetched are exactly those it was opened from. What the server holds is treated
//! as written by an attacker without the key: records must decrypt under the store's
//! scope and id, index entries are hints checked against the records they name.

pub mod bucket;
pub mod layout;
pub mod ledger;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod name;
mod names_key;
mod sessions;
mod upkeep;

use std::cell::RefCell;

use zeroize::Zeroizing;

use crate::backend::BackendKind;
use crate::document::patch::SessionPatch;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::keyring::Secret;
use crate::keyring::{self, Keyring, Meta};
use crate::seal::format::{self, Kind};
use crate::sessions::cache::SessionCache;
use crate::sessions::clock::Clock;
use crate::sessions::lifetime::Lifetime;
use crate::sessions::{
    Compaction, Config, IdPage, KeyInfo, RekeyProgress, Report, SessionPage, Sessions, record,
};
use bucket::{Bucket, Change, Entry, Member};
use ledger::{Event, Ledger};
use names_key::names;

/// How often a write re-reads and retries after another host changed its record.
pub const RETRIES: u32 = 64;

/// How many ids one round trip of upkeep handles.
const BATCH: u32 = 256;

/// A store in a shared bucket.
pub struct BucketStore<K, C> {
    pub(crate) bucket: K,
    lifetime: Lifetime<C>,
    pub(crate) meta: Meta,
    /// The metadata as this host last read or wrote it: a key-ring change by another
    /// host since is refused rather than overwritten.
    pub(crate) meta_bytes: Vec<u8>,
    pub(crate) keyring: Keyring,
    names: Zeroizing<[u8; 32]>,
    scrypt_log_n: u8,
    max_session_bytes: u32,
    /// Sessions this host opened, each served again only for the exact record bytes it
    /// was opened from (other hosts write the bucket: the bytes fetched decide).
    cache: RefCell<SessionCache>,
    /// The version ledger as far as this host has read it, and its place as a writer.
    ledger: Ledger,
}

/// A session record as read: the session and the header fields a rewrite needs.
struct Record {
    session: Session,
    seq: u64,
}

impl<K: Bucket, C: Clock> BucketStore<K, C> {
    /// Opens the store in `bucket`: verifies its metadata, or writes it (with a
    /// compare-and-swap: of hosts racing to create a store, one wins and the others
    /// open what it wrote).
    pub fn open(bucket: K, clock: C, config: Config) -> Result<Self, StoreError> {
        Self::open_as(bucket, clock, config, Mode::Open)
    }

    /// [`BucketStore::open`] as `mode` asks (see [`Mode`]).
    pub(crate) fn open_as(
        mut bucket: K,
        mut clock: C,
        config: Config,
        mode: Mode<'_>,
    ) -> Result<Self, StoreError> {
        let max_session_bytes = config.checked_max_session_bytes()?;
        for _ in 0..RETRIES {
            let (cas, found) = bucket.watch(layout::META)?;
            let (meta, keyring, meta_bytes) = match found {
                Some(bytes) => {
                    let meta = Meta::parse(&bytes)?;
                    let keyring = meta.unlock(&config.secret)?;
                    // Nothing the metadata says is acted on before it authenticates.
                    if meta.version < keyring::VERSION_MAC {
                        return Err(StoreError::Corrupted(
                            "the bucket's metadata has no MAC: refusing to act on it".into(),
                        ));
                    }
                    meta.authenticate(&keyring)?;
                    if meta.backend != BackendKind::Redis {
                        // The store moved out to a directory: what a hand-over cut short
                        // left is erased; the same store may move back in.
                        clear_sessions(&mut bucket, false)?;
                        if let Mode::Fill { .. } = mode {
                            // Hosts that had the store open may still be attached, and
                            // only the fence keeps their old key ring from writing here.
                            return Err(StoreError::InvalidInput(
                                "this bucket held a store that moved out to a directory, and \
                                 hosts may still be attached to it: move into another \
                                 --prefix (or delete this one's keys once every host is \
                                 stopped)"
                                    .into(),
                            ));
                        }
                        return Err(StoreError::InvalidInput(format!(
                            "this store moved out of redis to a directory (the {} backend): \
                             open it there",
                            meta.backend.name()
                        )));
                    }
                    mode.admits(&meta)?;
                    (meta, keyring, bytes)
                }
                None => {
                    if let Mode::Finish { .. } = mode {
                        return Err(StoreError::InvalidInput(
                            "the store directory says its store moved to this bucket, which \
                             holds no store: check the redis url and --prefix"
                                .into(),
                        ));
                    }
                    refuse_orphans(&mut bucket)?;
                    // A fence with no store is not ours to keep (anyone could have set it).
                    bucket.delete_many(&[layout::FENCE.to_owned()])?;
                    let (mut meta, key) =
                        Meta::create_with_cost(&config.secret, config.scrypt_log_n)?;
                    meta.backend = BackendKind::Redis;
                    if let Mode::Fill { store_id, from } = mode {
                        meta.store_id = Some(store_id.to_owned());
                        meta.migrating_to = Some(BackendKind::Redis);
                        meta.migrated_from = Some(from);
                    }
                    let keyring = Keyring::single(meta.current_key, key, meta.scope()?);
                    let sealed = meta.sealed(&keyring)?;
                    if !bucket.commit(cas, Change::put(sealed.clone()))? {
                        continue;
                    }
                    (meta, keyring, sealed)
                }
            };
            let names = names(&mut bucket, &keyring)?;
            let ledger = Ledger::new(&names, clock.now())?;
            let mut store = BucketStore {
                bucket,
                lifetime: Lifetime {
                    clock,
                    idle_timeout: config.idle_timeout,
                    max_lifetime: config.max_lifetime,
                },
                meta,
                meta_bytes,
                keyring,
                names,
                scrypt_log_n: config.scrypt_log_n,
                max_session_bytes,
                cache: RefCell::new(SessionCache::new(config.cache_bytes)),
                ledger,
            };
            match store.start_ledger() {
                Ok(()) => {}
                // Another host started the ledger of this store at the same time.
                Err(StoreError::InvalidInput(_)) if store.meta.ledger.is_none() => {
                    (bucket, clock) = (store.bucket, store.lifetime.clock);
                    continue;
                }
                Err(error) => return Err(error),
            }
            store.index_ids()?;
            return Ok(store);
        }
        Err(lost("creating the store's metadata"))
    }

    /// The authentic metadata and keys (for a migration out of the bucket).
    pub fn meta(&self) -> (&Meta, &Keyring) {
        (&self.meta, &self.keyring)
    }

    /// Decrypts the record of session `id`: `missing-key` under a key the ring lacks,
    /// `corrupted` for anything else wrong with it.
    fn open_record(&self, id: &str, bytes: &[u8]) -> Result<Record, StoreError> {
        let name = || format!("the record of session {id:?}");
        let header = format::header(bytes, Kind::Session)
            .map_err(|e| StoreError::Corrupted(format!("{}: {e}", name())))?;
        // A version the header claims without authenticating can only make a record
        // refused here, never accepted: an authentic record carries its true version.
        (self.ledger.admits(id, header.seq, self.lifetime.now()))
            .map_err(|why| StoreError::Corrupted(format!("{}: {why}", name())))?;
        let cached = self.cache.borrow_mut().session(id, bytes);
        let session = match cached {
            Some(session) => session,
            None => {
                let session = record::decode(&self.keyring, id, &name(), bytes)?;
                self.cache.borrow_mut().opened(&session, bytes);
                session
            }
        };
        Ok(Record {
            session,
            seq: header.seq,
        })
    }

    /// Drops what this host's cache holds of `id`: it is being removed.
    fn forget(&self, id: &str) {
        self.cache.borrow_mut().forget(id);
    }

    /// The change that stores `session` as version `seq` in place of a record of
    /// `previous_user`'s (or none), with its TTL and index entries.
    fn put(
        &self,
        session: &Session,
        seq: u64,
        previous_user: Option<&str>,
    ) -> Result<Change, StoreError> {
        let plaintext = crate::document::serialize(session, self.max_session_bytes)?;
        let id = session.id();
        let seq = self.ledger.next_version(id, seq);
        let sealed = format::encode(
            Kind::Session,
            self.keyring.current,
            self.keyring.current_key()?,
            &self.keyring.scope,
            seq,
            id,
            &plaintext,
        )?;
        let user = session.user();
        let expires_at = self.lifetime.expiry(session);
        let mut change = Change {
            value: Some(sealed),
            expires_at: Some(expires_at),
            add: vec![
                Entry {
                    index: layout::EXPIRY.into(),
                    member: id.into(),
                    score: expires_at,
                },
                Entry {
                    index: layout::IDS.into(),
                    member: id.into(),
                    score: 0,
                },
            ],
            remove: Vec::new(),
            // The document's own expiry, not this host's idle timeout or cap: a host
            // configured with longer ones still sees the record live until then.
            frame: Some(self.ledger.frame(
                Event::Written,
                id,
                seq,
                session.expires_at().max(expires_at),
                self.lifetime.now(),
            )),
        };
        if let Some(user) = user {
            change.add.push(Entry {
                index: self.user_index(user),
                member: id.into(),
                score: session.created_at().unwrap_or(0),
            });
        }
        if let Some(previous) = previous_user.filter(|p| Some(*p) != user) {
            change.remove.push(Member {
                index: self.user_index(previous),
                member: id.into(),
            });
        }
        Ok(change)
    }

    /// The change that removes session `id` (of `user`), which expires at `until`, and
    /// its index entries, leaving a removal marker until then if that is still ahead (see
    /// [`layout::removed_marker`]): what `delete`, `revoke-user` and `clear` commit.
    /// The ledger records the removal above `version` (the removed record's, 0 if it did
    /// not open) and above every version it knows, so no record of the session, the one
    /// removed or an older one, is served again.
    fn removal_until(&self, id: &str, user: Option<&str>, until: u64, version: u64) -> Change {
        let mut change = self.removal(id, user);
        let now = self.lifetime.now();
        if now < until {
            change.value = Some(layout::removed_marker(until));
            change.expires_at = Some(until);
        }
        let version = self.ledger.next_version(id, version.saturating_add(1));
        change.frame = Some(self.ledger.frame(Event::Removed, id, version, until, now));
        change
    }

    /// The change that removes a record of `id` that does not open (damaged, put back,
    /// or under a key this host lacks), recorded as a removal in the ledger: had it hidden
    /// the latest record, that record is not served if put back later either.
    fn unreadable_removal(&self, id: &str) -> Change {
        let now = self.lifetime.now();
        let mut change = self.removal(id, None);
        let version = self.ledger.next_version(id, 1);
        change.frame = Some(self.ledger.frame(Event::Removed, id, version, now, now));
        change
    }

    /// The change that removes session `id` (of `user`, if its record could be read)
    /// and its index entries.
    fn removal(&self, id: &str, user: Option<&str>) -> Change {
        self.forget(id);
        let mut remove = vec![
            Member {
                index: layout::EXPIRY.into(),
                member: id.into(),
            },
            Member {
                index: layout::IDS.into(),
                member: id.into(),
            },
        ];
        if let Some(user) = user {
            remove.push(Member {
                index: self.user_index(user),
                member: id.into(),
            });
        }
        Change {
            remove,
            ..Change::default()
        }
    }

    fn user_index(&self, user: &str) -> String {
        layout::user(&self.names, user)
    }

    /// Replaces the metadata with `meta` if no other host changed it since this one read it.
    pub(crate) fn write_meta(&mut self, meta: Meta) -> Result<(), StoreError> {
        let (cas, found) = self.bucket.watch(layout::META)?;
        if found.as_deref() != Some(self.meta_bytes.as_slice()) {
            return Err(StoreError::InvalidInput(
                "another host changed the store's key ring since this one opened it: \
                 reopen the store and retry"
                    .into(),
            ));
        }
        let sealed = meta.sealed(&self.keyring)?;
        if !self.bucket.commit(cas, Change::put(sealed.clone()))? {
            return Err(StoreError::InvalidInput(
                "another host changed the store's key ring just now: reopen the store and \
                 retry"
                    .into(),
            ));
        }
        self.meta = meta;
        self.meta_bytes = sealed;
        Ok(())
    }
}

/// The WIT's operations: sessions.rs serves the sessions, upkeep.rs the maintenance and
/// keys.
impl<K: Bucket, C: Clock> Sessions for BucketStore<K, C> {
    fn create(&mut self, session: &Session) -> Result<(), StoreError> {
        BucketStore::create(self, session)
    }
    fn set(&mut self, session: &Session) -> Result<(), StoreError> {
        BucketStore::set(self, session)
    }
    fn set_if_unchanged(&mut self, session: &Session, expected: &str) -> Result<bool, StoreError> {
        BucketStore::set_if_unchanged(self, session, expected)
    }
    fn list_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdPage, StoreError> {
        let (sessions, next) = self.live_page(after, limit)?;
        let ids = sessions.iter().map(|s| s.id().to_owned()).collect();
        Ok(IdPage { ids, next })
    }
    fn list(&mut self, after: Option<&str>, limit: u32) -> Result<SessionPage, StoreError> {
        let (sessions, next) = self.live_page(after, limit)?;
        Ok(SessionPage { sessions, next })
    }
    fn get(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        BucketStore::get(self, id)
    }
    fn touch(&mut self, id: &str, expires_at: Option<u64>) -> Result<Option<Session>, StoreError> {
        BucketStore::touch(self, id, expires_at)
    }
    fn update(&mut self, id: &str, patch: SessionPatch) -> Result<Session, StoreError> {
        BucketStore::update(self, id, patch)
    }
    fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        BucketStore::delete(self, id)
    }
    fn cleanup(&mut self) -> Result<u64, StoreError> {
        BucketStore::cleanup(self)
    }
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Session>, StoreError> {
        BucketStore::user_sessions(self, user)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        BucketStore::count(self)
    }
    fn clear(&mut self) -> Result<u64, StoreError> {
        BucketStore::clear(self)
    }
    fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        BucketStore::revoke_user(self, user)
    }
    fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError> {
        BucketStore::add_key(self, secret)
    }
    fn keys(&mut self) -> Result<Vec<KeyInfo>, StoreError> {
        BucketStore::keys(self)
    }
    fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError> {
        BucketStore::rekey(self, limit)
    }
    fn retire_key(&mut self, id: u32) -> Result<(), StoreError> {
        BucketStore::retire_key(self, id)
    }
    fn check(&mut self) -> Result<Report, StoreError> {
        BucketStore::check(self)
    }
    /// The server reclaims space itself: there is nothing to compact.
    fn compact(&mut self, _limit: u64) -> Result<Compaction, StoreError> {
        Ok(BucketStore::compact(self))
    }
    fn now(&self) -> u64 {
        self.lifetime.now()
    }
    fn is_expired(&self, session: &Session) -> bool {
        self.lifetime.is_expired(session)
    }
}

impl Change {
    /// Sets the key to `value`, with no expiry and no index change.
    pub fn put(value: Vec<u8>) -> Self {
        Change {
            value: Some(value),
            ..Change::default()
        }
    }
}

/// What a bucket's metadata must say for [`BucketStore::open_as`] to open it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode<'a> {
    /// A store open to every host: not being filled by a move in.
    Open,
    /// The bucket a move of the directory store `store_id` (kept in `from`) fills:
    /// empty (the store is created for it, marked `migrating`), or already marked so for
    /// that store.
    Fill {
        store_id: &'a str,
        from: BackendKind,
    },
    /// The bucket the directory store `store_id` was handed over to, finished or not.
    Finish { store_id: &'a str },
}

impl Mode<'_> {
    /// Refuses authentic metadata `meta` this mode may not open.
    fn admits(self, meta: &Meta) -> Result<(), StoreError> {
        let is = |id: &str| meta.store_id.as_deref() == Some(id);
        let inbound = meta.migrating_to == Some(BackendKind::Redis);
        match self {
            // A store moving out opens (fenced: reads only), so its move can resume.
            Mode::Open if inbound => Err(StoreError::InvalidInput(
                "a migration into this bucket did not finish; run `migrate --to redis` \
                 from the directory store again"
                    .into(),
            )),
            Mode::Fill { store_id, .. } if !(is(store_id) && inbound) => {
                Err(StoreError::InvalidInput(
                    "the bucket already holds a store; migrate into an empty bucket \
                     (another --prefix)"
                        .into(),
                ))
            }
            Mode::Finish { store_id } if !is(store_id) => Err(StoreError::InvalidInput(
                "the store directory says its store moved to this bucket, which holds \
                 another store: check the redis url and --prefix"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// The error of a write that lost its compare-and-swap [`RETRIES`] times in a row.
fn lost(context: &str) -> StoreError {
    StoreError::unavailable(
        context,
        format!("other hosts changed the same key {RETRIES} times in a row"),
    )
}

/// Refuses to start a store in a bucket that holds session records without metadata
/// (deleted metadata would otherwise make every session unreadable under a new key).
fn refuse_orphans<K: Bucket>(bucket: &mut K) -> Result<(), StoreError> {
    let mut cursor = None;
    loop {
        let (keys, next) = bucket.list_keys(cursor)?;
        if let Some(key) = keys
            .iter()
            .find(|k| matches!(layout::parse(k), layout::Name::Session(_)))
        {
            return Err(StoreError::Corrupted(format!(
                "the bucket has no metadata but holds session records (such as {key:?}); \
                 restore the metadata rather than start a new store over them"
            )));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Removes every session record and index of the bucket; returns how many records. With
/// `keep_markers`, removal markers (see [`layout::removed_marker`]) stay.
pub(crate) fn clear_sessions<K: Bucket>(
    bucket: &mut K,
    keep_markers: bool,
) -> Result<u64, StoreError> {
    let mut doomed = Vec::new();
    let mut sessions = 0;
    let mut cursor = None;
    loop {
        let (keys, next) = bucket.list_keys(cursor)?;
        for key in keys {
            match layout::parse(&key) {
                // A removal marker left by `clear` or `delete` stays until it lapses.
                layout::Name::Session(_) if keep_markers => {
                    match bucket.get(&key)?.as_deref().map(layout::removed_until) {
                        None | Some(Some(_)) => continue,
                        Some(None) => sessions += 1,
                    }
                }
                layout::Name::Session(_) => sessions += 1,
                layout::Name::User | layout::Name::Expiry | layout::Name::Ids => {}
                // The ledger goes with the store (a store moving out), not at a `clear`.
                layout::Name::Ledger if !keep_markers => {}
                _ => continue,
            }
            doomed.push(key);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    doomed.sort_unstable();
    doomed.dedup();
    for chunk in doomed.chunks(BATCH as usize) {
        bucket.delete_many(chunk)?;
    }
    Ok(sessions)
}

#[cfg(test)]
pub(crate) mod tests;
