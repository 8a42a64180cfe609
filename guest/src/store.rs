//! The store one WIT `store` resource serves: in a directory (`files`, `log`) or in a
//! key-value bucket (`redis`). One [`Sessions`] over both, and the moves that turn one
//! into the other, so a caller (the component, the conformance suite, the benchmark)
//! names each operation once.

use crate::backend::BackendKind;
use crate::bucket_store::BucketStore;
use crate::bucket_store::bucket::Bucket;
use crate::directory_store::DirectoryStore;
use crate::directory_store::directory_backend::DirectoryBackend;
use crate::error::StoreError;
use crate::fs::Dir;
use crate::migrate::bucket;
use crate::sessions::clock::Clock;
use crate::sessions::{Config, Sessions};

/// A store in a directory over `D`, or in a bucket `K`, on clock `C`.
// The bucket store is not boxed: with a bucket type that has no values (the plain
// component's `Infallible`) the variant cannot exist, and the compiler leaves out the
// bucket store's code altogether.
#[allow(clippy::large_enum_variant)]
pub enum Store<D: Dir, K, C> {
    /// In a directory (`files` or `log`).
    Directory(Box<DirectoryStore<DirectoryBackend<D>, C>>),
    /// In a shared key-value bucket (`redis`).
    Bucket(BucketStore<K, C>),
}

/// Opens the bucket a directory store moves into.
pub type OpenBucket<'a, K> = Box<dyn FnOnce() -> Result<K, StoreError> + 'a>;

/// Opens the directory backend (of the kind given) a bucket's store moves out to.
pub type OpenDirectory<'a, D> =
    Box<dyn FnOnce(BackendKind) -> Result<DirectoryBackend<D>, StoreError> + 'a>;

/// Where a store may move, each side opened only if the move needs it, and how to open
/// the store there.
pub struct Destination<'a, D: Dir, K, C> {
    /// The bucket a directory store moves into; `None`: no server is attached.
    pub bucket: Option<OpenBucket<'a, K>>,
    /// The directory a bucket's store moves out to; `None`: none was given.
    pub directory: Option<OpenDirectory<'a, D>>,
    /// The clock of the store on the other side.
    pub clock: C,
    /// How to open the store on the other side (the secret that opened this one).
    pub config: Config,
}

impl<D: Dir + Clone, K: Bucket, C: Clock> Store<D, K, C> {
    /// Opens the store in the directory `backend` is over (see [`DirectoryStore::open`]).
    pub fn in_directory(
        backend: DirectoryBackend<D>,
        clock: C,
        config: Config,
    ) -> Result<Self, StoreError> {
        let store = DirectoryStore::open(backend, clock, config)?;
        Ok(Store::Directory(Box::new(store)))
    }

    /// Opens the store in `bucket` (see [`BucketStore::open`]).
    pub fn in_bucket(bucket: K, clock: C, config: Config) -> Result<Self, StoreError> {
        Ok(Store::Bucket(BucketStore::open(bucket, clock, config)?))
    }

    /// The store in the bucket `open_bucket` opens, if the directory `dir` says its store
    /// was handed over to that bucket (finishing the move if a crash interrupted it);
    /// `None` if the directory holds no handed-over store (open it as a directory store).
    ///
    /// Errors: `wrong-key` or `corrupted` if the directory's metadata does not authenticate
    /// under `config`'s secret (nothing is acted on before it does); `invalid-input` if the
    /// bucket holds another store; `unavailable` and `io` as the two sides report them.
    pub fn handed_over(
        dir: &D,
        open_bucket: OpenBucket<'_, K>,
        clock: C,
        config: Config,
    ) -> Result<Option<Self>, StoreError> {
        let shared = bucket::finish(dir, open_bucket, clock, config)?;
        Ok(shared.map(Store::Bucket))
    }

    /// The store's operations, whichever medium holds it.
    pub fn sessions(&mut self) -> &mut dyn Sessions {
        match self {
            Store::Directory(store) => &mut **store,
            // Decided when compiled: without buckets no code of a bucket store is built.
            Store::Bucket(store) if K::EXISTS => store,
            Store::Bucket(_) => unreachable!("no store is in a bucket that cannot exist"),
        }
    }

    /// Moves the store to the `to` backend; returns how many sessions moved (0 if it is
    /// there already). Between a directory's backends the move stays in the directory;
    /// a directory store moves into `destination`'s bucket, a bucket's store out to its
    /// directory, and from then `self` is the store there.
    ///
    /// Errors: `invalid-input` if the side a move needs is missing from `destination`, if
    /// the other side holds another store, or if sessions are under a key the ring lacks
    /// (they could not be carried); `unavailable` and `io` as the two sides report them.
    /// Safe to interrupt and run again.
    pub fn migrate(
        &mut self,
        to: BackendKind,
        destination: Destination<'_, D, K, C>,
    ) -> Result<u64, StoreError> {
        match self {
            Store::Directory(local) => match destination.bucket {
                Some(open) if K::EXISTS && to == BackendKind::Redis => {
                    let (moved, shared) =
                        bucket::move_into(local, open()?, destination.clock, destination.config)?;
                    *self = Store::Bucket(shared);
                    Ok(moved)
                }
                None if K::EXISTS && to == BackendKind::Redis => Err(StoreError::InvalidInput(
                    "`migrate --to redis` needs the server to move into (--redis URL)".into(),
                )),
                // A build without buckets: the directory store says how a move to redis
                // is made.
                _ => local.migrate(to),
            },
            Store::Bucket(_) if to == BackendKind::Redis => Ok(0),
            Store::Bucket(shared) if K::EXISTS => {
                let open = destination.directory.ok_or_else(|| {
                    StoreError::InvalidInput(
                        "`migrate --to files|log` of a redis store needs the directory to move \
                         to (--dir DIR)"
                            .into(),
                    )
                })?;
                let (moved, local) =
                    bucket::move_out(shared, open(to)?, destination.clock, destination.config)?;
                *self = Store::Directory(Box::new(local));
                Ok(moved)
            }
            Store::Bucket(_) => unreachable!("no store is in a bucket that cannot exist"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::bucket_store::memory::MemoryBucket;
    use crate::fs::StdDir;
    use crate::keyring::Secret;
    use crate::sessions::clock::ManualClock;

    fn directory_store<K: Bucket>(dir: &std::path::Path) -> Store<StdDir, K, ManualClock> {
        let backend =
            DirectoryBackend::open(StdDir::new(dir), Some(BackendKind::Log), Default::default())
                .unwrap();
        let config = Config::new(Secret::RawKey(vec![4; 32]));
        Store::in_directory(backend, ManualClock::new(100), config).unwrap()
    }

    fn nowhere<K>() -> Destination<'static, StdDir, K, ManualClock> {
        Destination {
            bucket: None,
            directory: None,
            clock: ManualClock::new(100),
            config: Config::new(Secret::RawKey(vec![4; 32])),
        }
    }

    #[test]
    fn a_move_to_redis_without_a_server_says_what_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = directory_store::<MemoryBucket>(tmp.path());
        let refused = store.migrate(BackendKind::Redis, nowhere());
        assert!(matches!(&refused, Err(StoreError::InvalidInput(m)) if m.contains("--redis URL")));
        assert!(
            matches!(store, Store::Directory(_)),
            "still the directory store"
        );
    }

    #[test]
    fn a_build_without_buckets_serves_a_directory_store_and_refuses_redis() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = directory_store::<Infallible>(tmp.path());
        let session = crate::document::example("s1", "alice", 1_000);
        store.sessions().create(&session).unwrap();
        assert_eq!(store.sessions().get("s1").unwrap(), Some(session));
        let refused = store.migrate(BackendKind::Redis, nowhere());
        assert!(matches!(&refused, Err(StoreError::InvalidInput(m)) if m.contains("key-value")));
        assert_eq!(store.migrate(BackendKind::Files, nowhere()).unwrap(), 1);
    }
}
