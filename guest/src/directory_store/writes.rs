//! Writing sessions: create, update, touch (access stamps), delete, and the index kept
//! in step with the backend after a failed write.

use super::{Clock, DirectoryStore, missing_key_error};
use crate::backend::Backend;
use crate::document::id;
use crate::document::patch::SessionPatch;
use crate::document::serialize;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::seal::crypto::NONCE_LEN;
use crate::seal::format::{self, Kind};
use crate::seal::ledger::Event;
use crate::seal::stamp::Stamp;
use crate::seal::summary::{NO_ACCESS, Summary};

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Stores a new session, replacing an expired one of the same id.
    pub(crate) fn create(&mut self, session: &Session) -> Result<(), StoreError> {
        id::validate(session.id())?;
        let id = session.id();
        if self.missing_key.contains_key(id) {
            return Err(missing_key_error(id));
        }
        let now = self.lifetime.now();
        if self.index.entry(id).is_some_and(|e| now < e.expires_at) {
            return Err(StoreError::AlreadyExists);
        }
        // An explicit create of a removed id is a new session, not a resurrection.
        self.removed.remove(id);
        let mut session = session.clone();
        // A session moved in from a bucket brings its first write along.
        session.set_first_written(session.first_written().or(Some(now)));
        self.write(&session)
    }

    /// Stores `session` whether or not its id is live: one durable write, like `create`'s.
    /// A stored session under a key the ring lacks is not overwritten (`missing-key`); an
    /// id removed before its expiry is refused until then (`removed`).
    pub(crate) fn set(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id();
        id::validate(id)?;
        if self.missing_key.contains_key(id) {
            return Err(missing_key_error(id));
        }
        let now = self.lifetime.now();
        if let Some(until) = self.removed.get(id).copied() {
            if now < until {
                return Err(StoreError::Removed(format!(
                    "session {id:?} was removed, and stays removed until its expiry ({until})"
                )));
            }
            self.removed.remove(id);
        }
        // A live session replaced keeps where its life began (for the maximum lifetime);
        // its index entry knows, or else the session itself (a summary of 0.1.0).
        let began = match self.index.entry(id).filter(|e| now < e.expires_at) {
            Some(entry) if entry.origin.is_some() => entry.origin,
            Some(_) => match self.live(id) {
                Ok(Some(old)) => old.origin(),
                Ok(None) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => None,
                Err(other) => return Err(other),
            },
            None => None,
        };
        let mut session = session.clone();
        session.set_first_written(Some(began.unwrap_or(now)));
        self.write(&session)
    }

    /// Remembers that `id`, which expired at `until`, was removed (if that is still ahead).
    pub(super) fn remember_removed(&mut self, id: &str, until: u64) {
        if self.lifetime.now() < until {
            self.removed.insert(id.to_owned(), until);
        }
    }

    /// Forgets removed ids whose expiry has passed.
    pub(super) fn forget_lapsed_removals(&mut self) {
        let now = self.lifetime.now();
        self.removed.retain(|_, until| now < *until);
    }

    /// Merges `patch` into the session and returns the stored result.
    pub(crate) fn update(&mut self, id: &str, patch: SessionPatch) -> Result<Session, StoreError> {
        id::validate(id)?;
        let session = self.live(id)?.ok_or(StoreError::NotFound)?;
        let session = patch.apply(session)?;
        self.write(&session)?;
        Ok(session)
    }

    /// Records an access: sets `security.lastAccessedAt` to now and adds one to
    /// `security.accessCount`, and moves `expiresAt` to `expires_at` if given; returns the
    /// session, or `None` if absent or expired. A session without `security` records no
    /// access: without `expires_at` nothing is written.
    ///
    /// The access goes to the session's access stamp, written in place without a sync,
    /// not to its file: a crash may lose the latest accesses, never the session.
    pub(crate) fn touch(
        &mut self,
        id: &str,
        expires_at: Option<u64>,
    ) -> Result<Option<Session>, StoreError> {
        id::validate(id)?;
        let Some(mut session) = self.live(id)? else {
            return Ok(None);
        };
        let access = session.access();
        if access.is_none() && expires_at.is_none() {
            return Ok(Some(session));
        }
        // An expiry brought forward is written durably, as the whole session: a stamp is
        // not synced, and a lost one must never leave a session alive past what it said.
        // No touch carries a session past its maximum lifetime.
        let expires_at = expires_at.map(|at| at.min(self.lifetime.cap(session.origin())));
        let shortens = expires_at.is_some_and(|at| at < session.expires_at());
        if let Some((_, count)) = access {
            session.set_access(self.lifetime.now(), count.saturating_add(1));
        }
        if let Some(at) = expires_at {
            session.set_expires_at(at);
        }
        if shortens {
            self.write(&session)?;
            return Ok(Some(session));
        }
        // `live` has just indexed the session it returned.
        let Some(entry) = self.index.entry(id).cloned() else {
            self.write(&session)?;
            return Ok(Some(session));
        };
        match self.stamp(id, &session, entry.version, entry.seq) {
            Ok(()) => {
                let entry = self.entry(&session, entry.key_id, entry.version, entry.seq);
                self.index.insert(id, entry);
            }
            // The stamp cannot be written (say, a directory squats its name): record the
            // access by rewriting the session instead, which reports its own failure.
            Err(_) => self.write(&session)?,
        }
        Ok(Some(session))
    }

    /// Removes the session without reading it; `false` if nothing was stored.
    pub(crate) fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        id::validate(id)?;
        let existed = self.remove_files(id)?;
        if let Some(entry) = self.unindex(id) {
            self.remember_removed(id, entry.expires_at);
        }
        self.missing_key.remove(id);
        if existed {
            self.erase_removed()?;
        }
        Ok(existed)
    }

    /// Encrypts and durably writes `session` under the current key. Its access fields are
    /// now in the file, so its access stamp (which names the previous file) is void; it
    /// stays, to be overwritten in place by the next touch, which is cheaper than a new file.
    pub(super) fn write(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id();
        let plaintext = serialize(session, self.max_session_bytes)?;
        let key = self.keyring.current_key()?;
        let seq = self.next_seq;
        let file = format::encode(
            Kind::Session,
            self.keyring.current,
            key,
            &self.keyring.scope,
            seq,
            id,
            &plaintext,
        )?;
        // `encode` wrote a whole header.
        let version = format::header(&file, Kind::Session)
            .map(|header| header.nonce)
            .unwrap_or_default();
        let summary = if self.backend.keeps_summaries() {
            Summary::of(session, version, seq).seal(
                self.keyring.current,
                key,
                &self.keyring.scope,
                id,
            )?
        } else {
            Vec::new()
        };
        // Taken before the write: a failed write may still have landed.
        self.next_seq = seq.saturating_add(1);
        if let Err(error) = self.backend.write(id, &file, &summary) {
            self.cache.forget(id);
            self.resync(id);
            return Err(error);
        }
        self.missing_key.remove(id);
        let entry = self.entry(session, self.keyring.current, version, seq);
        self.index.insert(id, entry);
        self.cache.written(session, &file);
        self.record(Event::Written, id, seq)
    }

    /// Writes the access stamp of `session`, whose file version is `version` (sequence
    /// number `seq`).
    pub(super) fn stamp(
        &mut self,
        id: &str,
        session: &Session,
        version: [u8; NONCE_LEN],
        seq: u64,
    ) -> Result<(), StoreError> {
        let (last_accessed_at, access_count) = session.access().unwrap_or((NO_ACCESS, 0));
        let stamp = Stamp {
            last_accessed_at,
            access_count,
            version,
            expires_at: Some(session.expires_at()),
        };
        let key = self.keyring.current_key()?;
        let file = stamp.seal(self.keyring.current, key, &self.keyring.scope, seq, id)?;
        let written = self.backend.write_stamp(id, &file);
        // After a failed write the file may hold anything: read it again when needed.
        self.stamps
            .insert(id.to_owned(), written.is_ok().then_some(stamp));
        written
    }

    /// Removes the access stamp of `id`, if it has one. Best effort, hence no error: a
    /// stamp left behind is void (torn, or naming a file version that no longer exists)
    /// and the next open removes it if its session is gone.
    pub(super) fn drop_stamp(&mut self, id: &str) {
        if self.stamps.remove(id).is_some() {
            let _ = self.backend.remove_stamp(id);
        }
    }

    /// Removes session `id`'s file (durably) and its stamp; `false` if there was no file.
    pub(super) fn remove_files(&mut self, id: &str) -> Result<bool, StoreError> {
        let existed = match self.backend.remove(id) {
            Ok(existed) => existed,
            Err(error) => {
                self.resync(id);
                return Err(error);
            }
        };
        self.drop_stamp(id);
        if existed {
            let seq = self.next_seq;
            self.next_seq = seq.saturating_add(1);
            self.record(Event::Removed, id, seq)?;
        }
        Ok(existed)
    }

    /// After a failed write or removal of `id`, makes the index follow what the backend
    /// holds: the failure may have come after the change became visible (a directory sync
    /// failing after the rename), or before it. Best effort, after the error the caller
    /// returns: a read that fails on I/O leaves the entry as it was (the file may well be
    /// there), for the next read to settle; a gone or damaged file leaves the index there.
    pub(super) fn resync(&mut self, id: &str) {
        // Its own error is the caller's error again, or the next read's.
        let _settled_by_the_next_read = self.read(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::layout::META_FILE;
    use crate::directory_store::tests::{access, open, session};
    use std::cell::Cell;
    use std::rc::Rc;

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
        assert_eq!(store.get("a").unwrap().unwrap().user().unwrap(), "v");
    }

    #[test]
    fn a_first_write_time_it_is_given_is_kept_and_set_keeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        // As a move from a bucket creates it: its first write comes along.
        let mut moved = Session::parse(br#"{"sessionId":"m","expiresAt":900}"#).unwrap();
        moved.set_first_written(Some(7));
        store.create(&moved).unwrap();
        now.set(150);
        store
            .set(&Session::parse(br#"{"sessionId":"m","expiresAt":900,"x":1}"#).unwrap())
            .unwrap();
        store.cache.clear();
        assert_eq!(store.get("m").unwrap().unwrap().first_written(), Some(7));
        // A new one begins now.
        store
            .create(&Session::parse(br#"{"sessionId":"n","expiresAt":900}"#).unwrap())
            .unwrap();
        store.cache.clear();
        assert_eq!(store.get("n").unwrap().unwrap().first_written(), Some(150));
    }

    #[test]
    fn touch_writes_a_stamp_and_leaves_the_session_file_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        let file = std::fs::read(tmp.path().join("a.svs")).unwrap();
        now.set(150);
        store.touch("a", None).unwrap().unwrap();
        now.set(160);
        assert_eq!(access(&store.touch("a", None).unwrap().unwrap()), (160, 2));
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
        store.touch("a", None).unwrap().unwrap();
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
        assert_eq!(access(&store.touch("a", None).unwrap().unwrap()), (170, 41));
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
        store.touch("a", None).unwrap().unwrap();
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
            store.touch(id, None).unwrap().unwrap();
        }
        assert!(store.delete("a").unwrap());
        assert!(!tmp.path().join("a.sva").exists());
        assert_eq!(store.clear().unwrap(), 2);
        let ledger = crate::backend::layout::ledger_name(1);
        assert_eq!(crate::fs::names(tmp.path()), vec![&ledger, META_FILE]);
        // An orphan stamp (its session deleted before a crash) goes at the next open.
        store.create(&session("d", "u", 900)).unwrap();
        store.touch("d", None).unwrap().unwrap();
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
        assert_eq!(access(&store.touch("a", None).unwrap().unwrap()), (150, 1));
        drop(store);
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (150, 1));
        assert_eq!(store.opened().foreign, 1);
    }
}
