//! Upkeep: cleanup of expired sessions, clear, revoke-user, check (verify every
//! session and rebuild the index), and migration between backends.

use super::reads::decode;
use super::{Clock, DirectoryStore, Erase, Report};
use crate::backend::{Backend, Compaction, Listing};
use crate::error::StoreError;
use crate::keyring::Keyring;
use crate::seal::format::{self, Kind};
use crate::seal::summary::Summary;

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
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
            self.unindex(&id);
            removed += 1;
        }
        self.backend.compact()?;
        Ok(removed)
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
        // What the index held but the listing lacked keeps its version in the ledger.
        if let Some(ledger) = &mut self.ledger {
            ledger.remember(&self.index);
        }
        self.index.clear();
        self.cache.clear();
        self.missing_key.clear();
        self.erase_removed()?;
        Ok(removed)
    }

    /// Removes every session of `user`; returns how many live ones were removed.
    pub fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut removed = 0;
        for id in self.index.user_ids(user) {
            self.remove_files(&id)?;
            if self.unindex(&id).is_some_and(|e| now < e.expires_at) {
                removed += 1;
            }
        }
        self.erase_removed()?;
        Ok(removed)
    }

    /// Verifies every session file, quarantines the damaged ones and rebuilds the index.
    /// Also reports the dead bytes and the oldest key still on the backend.
    pub fn check(&mut self) -> Result<Report, StoreError> {
        let mut report = self.verify_all()?;
        let usage = self.backend.usage()?;
        report.dead_bytes = usage.dead_bytes;
        report.oldest_key = usage.key_ids.first().copied();
        Ok(report)
    }

    /// Compacts up to `limit` units of the backend (log segments), oldest first; call until
    /// `remaining` is 0. Safe to interrupt: what a step did not finish, the next one does.
    pub fn compact(&mut self, limit: u64) -> Result<Compaction, StoreError> {
        self.backend.compact_step(limit)
    }

    /// Erases what removals left on the backend, if the store was opened to.
    pub(super) fn erase_removed(&mut self) -> Result<(), StoreError> {
        match self.erase {
            Erase::Immediate => self.backend.compact(),
            _ => Ok(()),
        }
    }

    /// Verifies every session and rebuilds the index (what `check` and the open of a
    /// backend without summaries do).
    pub(super) fn verify_all(&mut self) -> Result<Report, StoreError> {
        let listing = self.backend.list()?;
        let now = self.clock.now();
        let mut report = Report {
            foreign: listing.foreign,
            ..Report::default()
        };
        if let Some(ledger) = &mut self.ledger {
            ledger.remember(&self.index);
        }
        self.index.clear();
        self.cache.clear();
        self.missing_key.clear();
        self.adopt_stamps(&listing);
        for id in listing.ids {
            self.verify(id, now, &mut report)?;
        }
        if let Some(ledger) = &mut self.ledger {
            ledger.settle(&self.index);
        }
        report.quarantined = self.backend.quarantined()?;
        Ok(report)
    }

    /// Reads and decrypts session `id` (see [`DirectoryStore::read`]) and counts what it found in
    /// `report`; only an error that is not about the session itself is returned.
    pub(super) fn verify(
        &mut self,
        id: String,
        now: u64,
        report: &mut Report,
    ) -> Result<(), StoreError> {
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

    /// Takes the stamps of `listing` as the ones on the backend, removing those whose
    /// session file is gone.
    pub(super) fn adopt_stamps(&mut self, listing: &Listing) {
        self.stamps = listing.stamps.iter().map(|id| (id.clone(), None)).collect();
        for id in &listing.stamps {
            // `list` returns `ids` sorted.
            if listing.ids.binary_search(id).is_err() {
                self.drop_stamp(id);
            }
        }
    }
}

impl<D: crate::fs::Dir + Clone, C: Clock>
    DirectoryStore<crate::backend::directory::DirectoryBackend<D>, C>
{
    /// Moves every session to the `to` backend; returns how many moved (0 if the store
    /// is already there). Safe to interrupt at any point: the next open either discards
    /// the partial copy (the store is still where it was) or finishes removing the old
    /// data (the store has moved); running it again then completes the move.
    pub fn migrate(&mut self, to: crate::backend::BackendKind) -> Result<u64, StoreError> {
        if self.backend.kind() == to {
            return Ok(0);
        }
        if to == crate::backend::BackendKind::Redis {
            return Err(StoreError::InvalidInput(
                "a directory store moves to redis through the key-value component, which \
                 copies it into the server (`migrate --to redis --redis URL`)"
                    .into(),
            ));
        }
        let keyring = &self.keyring;
        let mut summarize = |id: &str, blob: &[u8]| summarize(keyring, id, blob);
        let moved = self
            .backend
            .migrate(&mut self.meta, keyring, to, &mut summarize)?;
        // The target reopened and gathered what this store already indexes.
        drop(self.backend.take_summaries());
        // Blobs and stamps moved byte for byte: the index and the stamp cache still hold.
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
        Summary::of(&session, header.nonce, header.seq)
            .seal(header.key_id, key, &keyring.scope, id)
            .ok()
    };
    sealed().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::directory::DirectoryBackend;
    use crate::backend::layout::{META_FILE, ledger_name};
    use crate::backend::{BackendKind, Durability};
    use crate::directory_store::{Config, ManualClock};
    use crate::document::model::SessionData;
    use crate::fs::{StdDir, names};
    use crate::keyring::{Meta, Secret};

    type TestStore = DirectoryStore<DirectoryBackend<StdDir>, ManualClock>;

    fn open(path: &std::path::Path, backend: Option<BackendKind>) -> TestStore {
        let backend =
            DirectoryBackend::open(StdDir::new(path), backend, Durability::Durable).unwrap();
        let config = Config::new(Secret::RawKey(vec![3; 32]));
        DirectoryStore::open(backend, ManualClock::new(100), config).unwrap()
    }

    fn session(id: &str) -> SessionData {
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
        store.touch("a").unwrap();
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
        assert_eq!(a.security.access_count, 1, "the stamp moved too");
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
    use super::*;
    use crate::backend::directory::DirectoryBackend;
    use crate::backend::layout::META_FILE;
    use crate::backend::{BackendKind, Durability};
    use crate::directory_store::{Config, ManualClock};
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
