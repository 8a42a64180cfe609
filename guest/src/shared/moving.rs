//! Moving a directory store into a bucket (`migrate --to redis`), and finishing a move a
//! crash interrupted.
//!
//! The steps, each durable before the next:
//! 1. The bucket gets metadata for the store: a new key ring from the same secret, the
//!    directory store's id, marked `migrating` so no host opens it. A partial copy of the
//!    same store left there by an earlier try is cleared.
//! 2. Every live session is sealed into the bucket.
//! 3. The directory's metadata is replaced by one naming `redis`: the directory no longer
//!    opens as a store ([`medium::hand_over`]).
//! 4. The bucket's metadata is marked finished: hosts may open it.
//! 5. The directory's sessions, stamps and ledger are erased
//!    ([`medium::erase_handed_over`]).
//!
//! A crash before 3 leaves the directory store as it was: running the move again starts
//! the copy over. After 3, opening the directory with the bucket ([`finish`]) does 4 and 5
//! and opens the bucket.
//!
//! Moving a bucket's store out to a directory ([`move_out`], `migrate --to files|log`):
//! 1. The bucket is fenced: its metadata says where the store goes (no host opens it for
//!    writing), and the fence key makes every commit of every host fail from then on.
//! 2. The directory must be empty or hold a partial copy of the same store (same store
//!    id), which is wiped. A new directory store is created there under the same secret
//!    and store id, and every live session is sealed into it.
//! 3. The bucket's metadata names the directory backend (every open of the bucket is
//!    refused from here, and erases what is left), then its records, indexes and names
//!    key are erased.
//!
//! A crash before 3 leaves the bucket fenced and readable: running the move again wipes
//! the partial copy and starts over.

use super::{Bucket, Mode, Shared};
use crate::backend::disk;
use crate::backend::{Backend, BackendKind};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::keyring::{Keyring, Meta};
use crate::medium::{self, Medium};
use crate::store::{Clock, Config, Store};

/// Moves `local` into `bucket` (opened with `config`, whose secret opened `local`);
/// returns how many sessions moved and the store in the bucket. `local` is left handed
/// over: its directory no longer opens as a store.
///
/// Errors: `invalid-input` if the bucket holds another store, or if sessions are under a
/// key the ring lacks (add it or retire them first: they could not be carried); `corrupted`
/// sessions are quarantined in the directory and not carried; `unavailable` and `io` as
/// the two sides report them. Safe to interrupt and run again.
pub fn move_into<D: Dir, C: Clock, K: Bucket, C2: Clock>(
    local: &mut Store<Medium<D>, C>,
    bucket: K,
    clock: C2,
    config: Config,
) -> Result<(u64, Shared<K, C2>), StoreError> {
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
    let mut shared = Shared::open_as(bucket, clock, config, mode)?;
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
    let handed = medium::hand_over(dir, meta, keyring, from)?;
    shared.finish_migration()?;
    medium::erase_handed_over(dir, &handed, keyring)?;
    Ok((moved, shared))
}

/// Opens the bucket (`bucket` opens it) of a store whose directory `dir` says it was
/// handed over to one,
/// finishing the move first if a crash interrupted it (steps 4 and 5 above). `None` if
/// the directory holds no handed-over store (open it as a directory store).
///
/// Errors: `wrong-key` or `corrupted` if the directory's metadata does not authenticate
/// under `config`'s secret (nothing is acted on before it does); `invalid-input` if the
/// bucket holds another store.
pub fn finish<D: Dir, K: Bucket, C: Clock>(
    dir: &D,
    bucket: impl FnOnce() -> Result<K, StoreError>,
    clock: C,
    config: Config,
) -> Result<Option<Shared<K, C>>, StoreError> {
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
    let mut shared = Shared::open_as(bucket()?, clock, config, mode)?;
    shared.finish_migration()?;
    if meta.migrated_from.is_some() {
        medium::erase_handed_over(dir, &meta, &keyring)?;
    }
    Ok(Some(shared))
}

/// Moves the store of the fenced-to-be `shared` into a new directory store on `medium`
/// (empty, or holding a partial copy of this store); returns how many sessions moved
/// and the directory store. `shared` is left handed over: its bucket no longer opens.
///
/// Errors: `invalid-input` if the directory holds another store or if sessions are under
/// a key the ring lacks; `unavailable` and `io` as the two sides report them. Other
/// hosts' writes fail with `invalid-input` from the start of the move. Safe to interrupt
/// and run again.
pub fn move_out<K: Bucket, C: Clock, D: Dir, C2: Clock>(
    shared: &mut Shared<K, C>,
    mut medium: Medium<D>,
    clock: C2,
    config: Config,
) -> Result<(u64, Store<Medium<D>, C2>), StoreError> {
    let to = medium.kind();
    let store_id = shared
        .meta
        .store_id
        .clone()
        .ok_or_else(|| StoreError::Corrupted("the store's metadata has no store id".into()))?;
    shared.fence(to)?;
    let holds_sessions = !medium.list()?.ids.is_empty();
    let dir = medium.dir();
    match disk::read_meta(dir)? {
        Some(bytes) => {
            let meta = Meta::parse(&bytes)?;
            let keyring = meta.unlock(&config.secret)?;
            meta.authenticate(&keyring)?;
            if meta.store_id.as_deref() != Some(store_id.as_str()) {
                return Err(another_store());
            }
            medium::wipe(dir)?;
        }
        None if holds_sessions => return Err(another_store()),
        None => {}
    }
    let (mut meta, key) = Meta::create_with_cost(&config.secret, config.scrypt_log_n)?;
    meta.store_id = Some(store_id);
    meta.backend = to;
    let keyring = Keyring::single(meta.current_key, key, meta.scope()?);
    medium::write_meta(dir, &meta, &keyring)?;
    let mut local = Store::open(medium, clock, config)?;
    let mut moved = 0;
    for id in shared.listing()?.sessions {
        match shared.peek(&id) {
            Ok(Some(session)) => {
                local.create(&session)?;
                moved += 1;
            }
            // Expired, gone meanwhile, or damaged: not carried (the bucket is erased).
            Ok(None) | Err(StoreError::Corrupted(_)) => {}
            Err(StoreError::MissingKey(_)) => {
                return Err(StoreError::InvalidInput(format!(
                    "session {id:?} is under a key this store lacks and could not be \
                     carried: add the key (`key add`) and run the move again"
                )));
            }
            Err(other) => return Err(other),
        }
    }
    shared.hand_over(to)?;
    Ok((moved, local))
}

fn another_store() -> StoreError {
    StoreError::InvalidInput(
        "the directory holds another store: move into an empty directory".into(),
    )
}
