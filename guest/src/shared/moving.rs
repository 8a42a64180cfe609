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

use super::{Bucket, Mode, Shared};
use crate::backend::disk;
use crate::backend::{Backend, BackendKind};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::keyring::Meta;
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
