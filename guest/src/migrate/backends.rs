//! Moving a directory store between its two backends (`files` and `log`), in the same
//! directory. The steps, each durable before the next: the metadata is marked as moving,
//! every session and access stamp is copied byte for byte (with a sealed index summary
//! where the target keeps them), the metadata commits the move, the old data is removed.
//! A crash before the commit leaves the store where it was (the next open discards the
//! partial copy); after it, the next open finishes removing the old data
//! ([`Backend::settle`]).

use crate::backend::layout;
use crate::backend::log;
use crate::backend::{Backend, BackendKind, Durability};
use crate::directory_store::directory_backend::{DirectoryBackend, discard, write_meta};
use crate::directory_store::{Clock, DirectoryStore};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::keyring::{Keyring, Meta};
use crate::seal::format::{self, Kind};
use crate::seal::summary::Summary;
use crate::sessions::record;

impl<D: Dir + Clone, C: Clock> DirectoryStore<DirectoryBackend<D>, C> {
    /// Moves every session to the `to` backend; returns how many moved (0 if the store
    /// is already there). Safe to interrupt at any point: the next open either discards
    /// the partial copy (the store is still where it was) or finishes removing the old
    /// data (the store has moved); running it again then completes the move.
    pub fn migrate(&mut self, to: BackendKind) -> Result<u64, StoreError> {
        if self.backend().kind() == to {
            return Ok(0);
        }
        if to == BackendKind::Redis {
            return Err(StoreError::InvalidInput(
                "a directory store moves to redis through the key-value component, which \
                 copies it into the server (`migrate --to redis --redis URL`)"
                    .into(),
            ));
        }
        let (backend, meta, keyring) = self.migration_parts();
        let mut summarize = |id: &str, blob: &[u8]| summarize(keyring, id, blob);
        let moved = backend.migrate(meta, keyring, to, &mut summarize)?;
        // The target reopened and gathered what this store already indexes.
        drop(backend.take_summaries());
        // Blobs and stamps moved byte for byte: the index and the stamp cache still hold.
        Ok(moved)
    }
}

/// The sealed summary of session blob `blob`, under the key the blob is under (so the
/// index counts it against that key); empty if the blob does not open, in which case
/// the store reads the blob itself at open.
fn summarize(keyring: &Keyring, id: &str, blob: &[u8]) -> Vec<u8> {
    let sealed = || -> Option<Vec<u8>> {
        let session = record::decode(keyring, id, &layout::session_name(id), blob).ok()?;
        let header = format::header(blob, Kind::Session).ok()?;
        let key = keyring.key(header.key_id)?;
        Summary::of(&session, header.nonce, header.seq)
            .seal(header.key_id, key, &keyring.scope, id)
            .ok()
    };
    sealed().unwrap_or_default()
}

impl<D: Dir> DirectoryBackend<D> {
    /// Copies every session and stamp of this backend into a fresh `to` backend over
    /// the same directory, commits the move in the metadata `store_meta` (updated as each
    /// metadata write lands), removes this backend's data, becomes the `to` backend and returns how
    /// many sessions moved. Each step is durable before the next; see [`Backend::settle`] for a crash
    /// between them. `summarize` gives the sealed index summary of a blob for a target that
    /// keeps summaries (empty if it cannot: the store then reads that blob at open).
    fn migrate(
        &mut self,
        store_meta: &mut Meta,
        keyring: &Keyring,
        to: BackendKind,
        summarize: &mut dyn FnMut(&str, &[u8]) -> Vec<u8>,
    ) -> Result<u64, StoreError>
    where
        D: Clone,
    {
        let from = self.kind();
        let durability = self.durability();
        let dir = self.dir().clone();
        let mut meta = store_meta.clone();
        meta.migrating_to = Some(to);
        write_meta(&dir, &meta, keyring)?;
        discard(&dir, to)?;
        // Copies are always synced: the commit below must not outrun them.
        let mut target = Self::of_kind(dir.clone(), to, Durability::Durable, log::SEGMENT_LIMIT)?;
        let listing = self.list()?;
        let limit = u64::from(crate::document::MAX_MAX_SESSION_BYTES) + 64;
        let mut moved = 0;
        for id in &listing.ids {
            if let Some(blob) = self.read(id, limit)? {
                let summary = if target.keeps_summaries() {
                    summarize(id, &blob)
                } else {
                    Vec::new()
                };
                target.write(id, &blob, &summary)?;
                moved += 1;
            }
        }
        for id in &listing.stamps {
            if listing.ids.binary_search(id).is_ok()
                && let Ok(Some(stamp)) = self.read_stamp(id)
            {
                target.write_stamp(id, &stamp)?;
            }
        }
        if let DirectoryBackend::Log(log) = &mut target {
            log.sync()?;
        }
        meta.backend = to;
        meta.migrating_to = None;
        meta.migrated_from = Some(from);
        write_meta(&dir, &meta, keyring)?;
        drop(target);
        // Committed: from here the store is `to`, whatever happens next, and its metadata
        // says so even if a step below fails (the next open finishes it).
        *store_meta = meta.clone();
        *self = Self::of_kind(dir.clone(), to, durability, log::SEGMENT_LIMIT)?;
        discard(&dir, from)?;
        meta.migrated_from = None;
        write_meta(&dir, &meta, keyring)?;
        *store_meta = meta;
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::layout::{META_FILE, ledger_name};
    use crate::backend::{BackendKind, Durability};
    use crate::directory_store::DirectoryStore;
    use crate::directory_store::directory_backend::DirectoryBackend;
    use crate::directory_store::{Config, ManualClock};
    use crate::document::session::Session;
    use crate::error::StoreError;
    use crate::fs::{StdDir, names};
    use crate::keyring::{Meta, Secret};

    type TestStore = DirectoryStore<DirectoryBackend<StdDir>, ManualClock>;

    fn open(path: &std::path::Path, backend: Option<BackendKind>) -> TestStore {
        let backend =
            DirectoryBackend::open(StdDir::new(path), backend, Durability::Durable).unwrap();
        let config = Config::new(Secret::RawKey(vec![3; 32]));
        DirectoryStore::open(backend, ManualClock::new(100), config).unwrap()
    }

    fn session(id: &str) -> Session {
        crate::document::example(id, "u", 1000)
    }

    /// `meta` as a store with the test key writes it (sealed).
    fn sealed(meta: &Meta) -> Vec<u8> {
        let keyring = meta.unlock(&Secret::RawKey(vec![3; 32])).unwrap();
        meta.sealed(&keyring).unwrap()
    }

    fn meta(path: &std::path::Path) -> Meta {
        Meta::parse(&std::fs::read(path.join(META_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn an_uncommitted_migration_is_undone_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open(tmp.path(), Some(BackendKind::Files));
        store.create(&session("a")).unwrap();
        store.create(&session("b")).unwrap();
        drop(store);
        // Interrupted while copying to the log: the marker is set, the copy partial.
        let mut marked = meta(tmp.path());
        marked.migrating_to = Some(BackendKind::Log);
        std::fs::write(tmp.path().join(META_FILE), sealed(&marked)).unwrap();
        std::fs::create_dir(tmp.path().join("log")).unwrap();
        std::fs::write(tmp.path().join("log/0000000000000001.seg"), b"SVLR partial").unwrap();
        let mut store = open(tmp.path(), None);
        let ledger = ledger_name(1);
        assert_eq!(
            names(tmp.path()),
            vec!["a.svs", "b.svs", &ledger, META_FILE]
        );
        assert_eq!(meta(tmp.path()).migrating_to, None);
        assert_eq!(meta(tmp.path()).backend, BackendKind::Files);
        assert!(store.get("a").unwrap().is_some());
        // Running it again completes it.
        assert_eq!(store.migrate(BackendKind::Log).unwrap(), 2);
        assert_eq!(names(tmp.path()), vec!["log", &ledger_name(1), META_FILE]);
    }

    #[test]
    fn a_committed_migration_finishes_removing_the_old_data_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open(tmp.path(), Some(BackendKind::Files));
        store.create(&session("a")).unwrap();
        store.touch("a", None).unwrap();
        let old: Vec<(String, Vec<u8>)> = ["a.svs", "a.sva"]
            .iter()
            .map(|n| (n.to_string(), std::fs::read(tmp.path().join(n)).unwrap()))
            .collect();
        assert_eq!(store.migrate(BackendKind::Log).unwrap(), 1);
        drop(store);
        // Crashed after the commit, before the old files went.
        for (name, bytes) in &old {
            std::fs::write(tmp.path().join(name), bytes).unwrap();
        }
        let mut marked = meta(tmp.path());
        marked.migrated_from = Some(BackendKind::Files);
        std::fs::write(tmp.path().join(META_FILE), sealed(&marked)).unwrap();
        let mut store = open(tmp.path(), None);
        assert_eq!(names(tmp.path()), vec!["log", &ledger_name(1), META_FILE]);
        assert_eq!(meta(tmp.path()).migrated_from, None);
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(a.access().unwrap().1, 1, "the stamp moved too");
        drop(store);
        let files = DirectoryBackend::open(
            StdDir::new(tmp.path()),
            Some(BackendKind::Files),
            Durability::Durable,
        )
        .unwrap();
        let config = Config::new(Secret::RawKey(vec![3; 32]));
        assert!(matches!(
            DirectoryStore::open(files, ManualClock::new(100), config),
            Err(StoreError::InvalidInput(_))
        ));
    }
}

#[cfg(test)]
mod forged {
    use crate::backend::layout::META_FILE;
    use crate::backend::{BackendKind, Durability};
    use crate::directory_store::DirectoryStore;
    use crate::directory_store::directory_backend::DirectoryBackend;
    use crate::directory_store::{Config, ManualClock};
    use crate::error::StoreError;
    use crate::fs::{StdDir, names};
    use crate::keyring::{Meta, Secret};

    /// Regression (issue: attacker-edited metadata): a migration marker written without
    /// the key made the next open delete `log/` and every session in it. Now an
    /// unauthenticated marker refuses the open and removes nothing.
    #[test]
    fn a_forged_migration_marker_deletes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = || Secret::RawKey(vec![3; 32]);
        let open = |backend| {
            let backend =
                DirectoryBackend::open(StdDir::new(tmp.path()), backend, Durability::Durable)?;
            DirectoryStore::open(backend, ManualClock::new(100), Config::new(secret()))
        };
        let mut store = open(Some(BackendKind::Log)).unwrap();
        store
            .create(&crate::document::example("a", "u", 1000))
            .unwrap();
        drop(store);
        let path = tmp.path().join(META_FILE);
        let mut forged = Meta::parse(&std::fs::read(&path).unwrap()).unwrap();
        forged.backend = BackendKind::Files;
        forged.migrated_from = Some(BackendKind::Log);
        std::fs::write(&path, forged.to_bytes()).unwrap();
        let before = names(tmp.path());
        let segments = names(&tmp.path().join("log"));
        assert!(matches!(open(None), Err(StoreError::Corrupted(_))));
        assert_eq!(names(tmp.path()), before);
        assert_eq!(names(&tmp.path().join("log")), segments);
    }
}
