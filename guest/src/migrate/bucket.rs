//! Moving a directory store into a bucket (`migrate --to redis`), and finishing a move a
//! crash interrupted.
//!
//! The steps, each durable before the next:
//! 1. The bucket gets metadata for the store: a new key ring from the same secret, the
//!    directory store's id, marked `migrating` so no host opens it. A partial copy of the
//!    same store left there by an earlier try is cleared.
//! 2. Every live session is sealed into the bucket.
//! 3. The directory's metadata is replaced by one naming `redis`: the directory no longer
//!    opens as a store ([`hand_over_directory`]).
//! 4. The bucket's metadata is marked finished: hosts may open it.
//! 5. The directory's sessions, stamps and ledger are erased
//!    ([`erase_handed_over`]).
//!
//! A crash before 3 leaves the directory store as it was: running the move again starts
//! the copy over. After 3, opening the directory with the bucket ([`finish`]) does 4 and 5
//! and opens the bucket.
//!
//! Moving a bucket's store out to a directory ([`move_out`], `migrate --to files|log`):
//! 1. What would stop the move is refused first: a directory that is not empty and holds
//!    no copy of this store (same store id), or a record under a key the ring lacks.
//!    Then the bucket is fenced: its metadata says where the store goes, and the fence
//!    key makes every commit of every host fail from then on (reads go on).
//! 2. A partial copy is wiped. A new directory store is created there under the same
//!    secret and store id, marked incomplete (no open but the move's accepts it), every
//!    live session is sealed into it, and the mark is cleared.
//! 3. The bucket's metadata names the directory backend (every open of the bucket is
//!    refused from here, and erases what is left), then its records, indexes and names
//!    key are erased.
//!
//! A crash in 2 leaves the bucket fenced and readable and the directory refusing to
//! open: running the move again wipes the partial copy and starts over. A crash between
//! 2 and 3 leaves a complete directory store (usable, and kept by a second run, which
//! only does 3).

use crate::backend::layout::META_FILE;
use crate::backend::{Backend, BackendKind};
use crate::backend::{disk, ledger};
use crate::bucket_store::bucket::Bucket;
use crate::bucket_store::{BucketStore, Mode, clear_sessions, layout};
use crate::directory_store::directory_backend::{DirectoryBackend, discard, write_meta};
use crate::directory_store::{Clock, Config, DirectoryStore};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::keyring::{Keyring, Meta};

/// Moves `local` into `bucket` (opened with `config`, whose secret opened `local`);
/// returns how many sessions moved and the store in the bucket. `local` is left handed
/// over: its directory no longer opens as a store.
///
/// Errors: `invalid-input` if the bucket holds another store, or if sessions are under a
/// key the ring lacks (add it or retire them first: they could not be carried); `corrupted`
/// sessions are quarantined in the directory and not carried; `unavailable` and `io` as
/// the two sides report them. Safe to interrupt and run again.
pub fn move_into<D: Dir, C: Clock, K: Bucket, C2: Clock>(
    local: &mut DirectoryStore<DirectoryBackend<D>, C>,
    bucket: K,
    clock: C2,
    config: Config,
) -> Result<(u64, BucketStore<K, C2>), StoreError> {
    if local.missing_keys() > 0 {
        return Err(StoreError::InvalidInput(format!(
            "{} sessions are under a key this store lacks and could not be carried: add the \
             key (`key add`) or remove them before migrating",
            local.missing_keys()
        )));
    }
    let (meta, _) = local.meta();
    let store_id = meta
        .store_id
        .clone()
        .ok_or_else(|| StoreError::Corrupted("the store's metadata has no store id".into()))?;
    let from = local.backend().kind();
    let mode = Mode::Fill {
        store_id: &store_id,
        from,
    };
    let mut shared = BucketStore::open_as(bucket, clock, config, mode)?;
    // A partial copy of this store from an earlier try: start over.
    shared.clear()?;
    let mut moved = 0;
    for id in local.ids() {
        match local.get(&id) {
            Ok(Some(session)) => {
                shared.create(&session)?;
                moved += 1;
            }
            // Expired (and now removed), or damaged and quarantined where it is.
            Ok(None) | Err(StoreError::Corrupted(_)) => {}
            Err(other) => return Err(other),
        }
    }
    let (meta, keyring) = local.meta();
    let dir = local.backend().dir();
    let handed = hand_over_directory(dir, meta, keyring, from)?;
    finish_migration(&mut shared)?;
    erase_handed_over(dir, &handed, keyring)?;
    Ok((moved, shared))
}

/// Opens the bucket (`bucket` opens it) of a store whose directory `dir` says it was
/// handed over to one, finishing the move first if a crash interrupted it (steps 4 and 5
/// above). `None` if the directory holds no handed-over store (open it as a directory
/// store).
///
/// Errors: `wrong-key` or `corrupted` if the directory's metadata does not authenticate
/// under `config`'s secret (nothing is acted on before it does); `invalid-input` if the
/// bucket holds another store.
pub fn finish<D: Dir, K: Bucket, C: Clock>(
    dir: &D,
    bucket: impl FnOnce() -> Result<K, StoreError>,
    clock: C,
    config: Config,
) -> Result<Option<BucketStore<K, C>>, StoreError> {
    let Some(bytes) = disk::read_meta(dir)? else {
        return Ok(None);
    };
    let meta = Meta::parse(&bytes)?;
    if meta.backend != BackendKind::Redis {
        return Ok(None);
    }
    let keyring = meta.unlock(&config.secret)?;
    meta.authenticate(&keyring)?;
    let store_id = meta
        .store_id
        .clone()
        .ok_or_else(|| StoreError::Corrupted("the store's metadata has no store id".into()))?;
    let mode = Mode::Finish {
        store_id: &store_id,
    };
    let mut shared = BucketStore::open_as(bucket()?, clock, config, mode)?;
    finish_migration(&mut shared)?;
    if meta.migrated_from.is_some() {
        erase_handed_over(dir, &meta, &keyring)?;
    }
    Ok(Some(shared))
}

/// Moves the store of `shared` into a directory store on `backend` (empty, or holding a
/// copy of this store from an earlier try); returns how many sessions are there and the
/// directory store. `shared` is left handed over: its bucket no longer opens.
///
/// Errors: `invalid-input` if the directory holds another store (checked before the
/// bucket is fenced) or if sessions are under a key the ring lacks; `unavailable` and
/// `io` as the two sides report them. Other hosts' writes fail with `invalid-input` from
/// the fence on. Safe to interrupt and run again.
pub fn move_out<K: Bucket, C: Clock, D: Dir + Clone, C2: Clock>(
    shared: &mut BucketStore<K, C>,
    mut backend: DirectoryBackend<D>,
    clock: C2,
    config: Config,
) -> Result<(u64, DirectoryStore<DirectoryBackend<D>, C2>), StoreError> {
    let to = backend.kind();
    let store_id = shared
        .meta
        .store_id
        .clone()
        .ok_or_else(|| StoreError::Corrupted("the store's metadata has no store id".into()))?;
    // What would stop the move is refused before every host's writes are stopped: a
    // wrong directory, or sessions it could not carry (the fence would then also stop
    // the `key add` that could carry them).
    let found = directory(&backend, &store_id, &config)?;
    refuse_missing_keys(shared)?;
    fence(shared, to)?;
    // Listed again: what other hosts wrote before the fence is carried too.
    let sessions = shared.listing()?.sessions;
    let (moved, local) = match found {
        // Filled and marked complete before a crash: the bucket is fenced since, so
        // nothing was written there that the directory lacks.
        Found::Complete => {
            let local = DirectoryStore::open(backend, clock, config)?;
            (local.count(), local)
        }
        Found::Partial | Found::Empty => {
            if let Found::Partial = found {
                wipe(backend.dir())?;
                // What the backend read of the wiped copy when it opened is gone too.
                let (dir, durability) = (backend.dir().clone(), backend.durability());
                backend = DirectoryBackend::open(dir, Some(to), durability)?;
            }
            let (mut meta, key) = Meta::create_with_cost(&config.secret, config.scrypt_log_n)?;
            meta.store_id = Some(store_id);
            meta.backend = to;
            // Marks it incomplete: no open but this move's until it is filled.
            meta.migrated_from = Some(BackendKind::Redis);
            let keyring = Keyring::single(meta.current_key, key, meta.scope()?);
            write_meta(backend.dir(), &meta, &keyring)?;
            let mut local = DirectoryStore::open_incoming(backend, clock, config)?;
            let moved = fill(shared, &mut local, &sessions)?;
            local.finish_incoming()?;
            (moved, local)
        }
    };
    hand_over_bucket(shared, to)?;
    Ok((moved, local))
}

/// What the directory a store moves out to holds.
enum Found {
    /// No store.
    Empty,
    /// A copy of this store that was not finished, or what its move in left: wiped.
    Partial,
    /// A finished copy of this store.
    Complete,
}

/// What `backend`'s directory holds, for a move out of the store `store_id`; another
/// store (or session files of none) is refused. Its metadata is authenticated first.
fn directory<D: Dir>(
    backend: &DirectoryBackend<D>,
    store_id: &str,
    config: &Config,
) -> Result<Found, StoreError> {
    let Some(bytes) = disk::read_meta(backend.dir())? else {
        // Not a store: it must be empty (a folder of anything else is no place for one).
        let entries = (backend.dir().entries(""))
            .map_err(|e| StoreError::io("listing the directory to move to", e))?;
        let mut entries = entries.unwrap_or_default();
        entries.retain(|e| !(e.name == crate::backend::layout::LOCK_FILE && e.is_file));
        return match entries.is_empty() {
            true => Ok(Found::Empty),
            false => Err(StoreError::InvalidInput(
                "the directory to move the store to is not empty: give an empty or new one".into(),
            )),
        };
    };
    let meta = Meta::parse(&bytes)?;
    let keyring = meta.unlock(&config.secret)?;
    meta.authenticate(&keyring)?;
    if meta.store_id.as_deref() != Some(store_id) {
        return Err(another_store());
    }
    let incoming = meta.migrated_from == Some(BackendKind::Redis);
    Ok(if meta.backend == BackendKind::Redis || incoming {
        Found::Partial
    } else {
        Found::Complete
    })
}

/// Refuses a move out while any record is sealed under a key the ring lacks.
fn refuse_missing_keys<K: Bucket, C: Clock>(
    shared: &mut BucketStore<K, C>,
) -> Result<(), StoreError> {
    let counts = shared.records_by_key()?;
    let lacking: u64 = (counts.iter())
        .filter(|(key_id, _)| shared.keyring.key(**key_id).is_none())
        .map(|(_, records)| records)
        .sum();
    if lacking > 0 {
        return Err(StoreError::InvalidInput(format!(
            "{lacking} sessions are sealed under a key this store lacks and could not be \
             carried: add the key (`key add`) first"
        )));
    }
    Ok(())
}

/// Seals every live session of the fenced `shared` among `sessions` into `local`;
/// returns how many. A damaged record is kept in the bucket's quarantine, which the
/// hand-over leaves.
fn fill<K: Bucket, C: Clock, D: Dir, C2: Clock>(
    shared: &mut BucketStore<K, C>,
    local: &mut DirectoryStore<DirectoryBackend<D>, C2>,
    sessions: &[String],
) -> Result<u64, StoreError> {
    let mut moved = 0;
    for id in sessions {
        match shared.peek(id) {
            Ok(Some(session)) => {
                local.create(&session)?;
                moved += 1;
            }
            // Expired, or gone meanwhile: not carried.
            Ok(None) => {}
            Err(StoreError::Corrupted(_)) => {
                if let Some(bytes) = shared.bucket.get(&layout::session(id))? {
                    shared.bucket.set(&layout::quarantine(id), &bytes)?;
                }
            }
            Err(other) => return Err(other),
        }
    }
    Ok(moved)
}

fn another_store() -> StoreError {
    StoreError::InvalidInput(
        "the directory holds another store: move into an empty directory".into(),
    )
}

/// Marks the store in `dir` as handed over to a bucket it was copied into: metadata
/// naming the `redis` backend, so the directory never opens as a store again, and `from`,
/// the backend whose data [`erase_handed_over`] is still to remove. Durable when it
/// returns; returns the metadata written.
fn hand_over_directory<D: Dir>(
    dir: &D,
    meta: &Meta,
    keyring: &Keyring,
    from: BackendKind,
) -> Result<Meta, StoreError> {
    let mut moved = meta.clone();
    moved.backend = BackendKind::Redis;
    moved.migrating_to = None;
    moved.migrated_from = Some(from);
    moved.ledger = None;
    write_meta(dir, &moved, keyring)?;
    Ok(moved)
}

/// Erases what a store handed over to a bucket left in `dir` (its authentic metadata
/// `meta`): the sessions and stamps of the backend it was in, and its version ledger; then
/// records that nothing is left. Quarantined files stay, as `clear` leaves them.
fn erase_handed_over<D: Dir>(dir: &D, meta: &Meta, keyring: &Keyring) -> Result<(), StoreError> {
    if let Some(from) = meta
        .migrated_from
        .filter(|kind| *kind != BackendKind::Redis)
    {
        discard(dir, from)?;
    }
    ledger::remove_all(dir)?;
    let mut done = meta.clone();
    done.migrated_from = None;
    write_meta(dir, &done, keyring)
}

/// Erases a store from `dir`: the data of both backends, the ledger and the metadata
/// (a partial copy a move out of a bucket left). Quarantined files stay.
fn wipe<D: Dir>(dir: &D) -> Result<(), StoreError> {
    discard(dir, BackendKind::Log)?;
    discard(dir, BackendKind::Files)?;
    ledger::remove_all(dir)?;
    dir.remove(META_FILE)
        .map_err(|e| StoreError::io(format!("removing {META_FILE}"), e))?;
    dir.sync("")
        .map_err(|e| StoreError::io("syncing the store directory", e))
}

/// Ends a migration into this bucket: from here hosts may open it.
fn finish_migration<K: Bucket, C: Clock>(shared: &mut BucketStore<K, C>) -> Result<(), StoreError> {
    if shared.meta.migrating_to != Some(BackendKind::Redis) {
        return Ok(());
    }
    let mut meta = shared.meta.clone();
    meta.migrating_to = None;
    meta.migrated_from = None;
    shared.write_meta(meta)
}

/// Fences the bucket for a move to the directory backend `to`: the metadata says so
/// (no host opens it for writing from here), then the fence key stops every commit
/// of every host already open.
fn fence<K: Bucket, C: Clock>(
    shared: &mut BucketStore<K, C>,
    to: BackendKind,
) -> Result<(), StoreError> {
    if let Some(other) = shared.meta.migrating_to.filter(|kind| *kind != to) {
        return Err(StoreError::InvalidInput(format!(
            "this store is moving to the {} backend: run `migrate --to {}` again",
            other.name(),
            other.name()
        )));
    }
    if shared.meta.migrating_to != Some(to) {
        let mut meta = shared.meta.clone();
        meta.migrating_to = Some(to);
        shared.write_meta(meta)?;
    }
    shared.bucket.set(layout::FENCE, to.name().as_bytes())
}

/// Hands a fenced bucket over to the directory store it was copied into: metadata
/// naming that backend (every open of the bucket is refused from here), then every
/// record, index and the names key erased. The fence stays.
fn hand_over_bucket<K: Bucket, C: Clock>(
    shared: &mut BucketStore<K, C>,
    to: BackendKind,
) -> Result<(), StoreError> {
    let found = shared.bucket.get(layout::META)?;
    if found.as_deref() != Some(shared.meta_bytes.as_slice()) {
        return Err(StoreError::InvalidInput(
            "another host changed the store's key ring during the move: run it again".into(),
        ));
    }
    let mut meta = shared.meta.clone();
    meta.backend = to;
    meta.migrating_to = None;
    // Fenced: no commit goes through, so the metadata is set as it is.
    let sealed = meta.sealed(&shared.keyring)?;
    shared.bucket.set(layout::META, &sealed)?;
    shared.meta = meta;
    shared.meta_bytes = sealed;
    clear_sessions(&mut shared.bucket, false)?;
    shared.bucket.delete_many(&[layout::NAMES.to_owned()])
}
