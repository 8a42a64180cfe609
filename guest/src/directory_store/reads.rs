//! Reading sessions: get, user sessions, count, the pages of `list`, and decrypting a
//! session file with its access stamp applied, keeping the index in step with what is found.

use super::index::Entry;
use super::{Clock, DirectoryStore, missing_key_error};
use crate::backend::Backend;
use crate::backend::layout::{self};
use crate::document::MAX_MAX_SESSION_BYTES;
use crate::document::id;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::keyring::Keyring;
use crate::seal::crypto::{NONCE_LEN, TAG_LEN};
use crate::seal::format::{self, HEADER_LEN, Kind};
use crate::seal::stamp::Stamp;
use crate::sessions::page::{self, IdPage};

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// The session with this id; `None` if absent or expired (an expired one is removed).
    pub(crate) fn get(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        id::validate(id)?;
        self.live(id)
    }

    /// The live sessions of `user`, by `created_at` then id.
    pub(crate) fn user_sessions(&mut self, user: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.lifetime.now();
        let mut sessions = Vec::new();
        for id in self.index.user_ids(user) {
            if self.index.entry(&id).is_some_and(|e| now >= e.expires_at) {
                continue;
            }
            match self.read(&id) {
                Ok(Some(session)) if now < self.lifetime.expiry(&session) => sessions.push(session),
                Ok(_) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        sessions.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
        Ok(sessions)
    }

    /// How many live sessions the store holds.
    pub(crate) fn count(&self) -> u64 {
        self.index.live(self.lifetime.now())
    }

    /// A page of live sessions' ids after `after`, from the index alone.
    pub(crate) fn list_ids(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<IdPage, StoreError> {
        let limit = page::request(after, limit)?;
        let (ids, more) = self.index.live_after(after, self.lifetime.now(), limit);
        let next = page::next(&ids, more);
        Ok(IdPage { ids, next })
    }

    /// The live session `id`, removing it if it has expired.
    pub(super) fn live(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        if self.missing_key.contains_key(id) {
            return Err(missing_key_error(id));
        }
        let now = self.lifetime.now();
        match self.index.entry(id) {
            None => return Ok(None),
            Some(entry) if now >= entry.expires_at => {
                self.remove_files(id)?;
                self.unindex(id);
                self.erase_removed()?;
                return Ok(None);
            }
            Some(_) => {}
        }
        Ok(self
            .read(id)?
            .filter(|session| now < self.lifetime.expiry(session)))
    }

    /// Reads and decrypts session `id`, keeping the index in step with what it finds:
    /// a missing file is forgotten, a damaged one quarantined (`corrupted`), one under
    /// an unknown key remembered (`missing-key`). A file whose bytes are exactly those
    /// the cache opened (or wrote) last is not decrypted again: it passed these checks.
    pub(super) fn read(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        let limit = (MAX_MAX_SESSION_BYTES as usize + HEADER_LEN + TAG_LEN) as u64;
        let mut key_id = 0;
        let mut version = [0; NONCE_LEN];
        let mut seq = 0;
        let mut opened = None;
        let decoded = match self.backend.read(id, limit) {
            Ok(Some(file)) => {
                if let Ok(header) = format::header(&file, Kind::Session) {
                    key_id = header.key_id;
                    version = header.nonce;
                    seq = header.seq;
                }
                match self.cache.session(id, &file) {
                    Some(session) => Ok(session),
                    None => decode(&self.keyring, id, &file).and_then(|session| {
                        self.check_version(id, seq)?;
                        opened = Some(file);
                        Ok(session)
                    }),
                }
            }
            Ok(None) => {
                self.unindex(id);
                return Ok(None);
            }
            Err(StoreError::Corrupted(reason)) => Err(StoreError::Corrupted(reason)),
            Err(other) => return Err(other),
        };
        match decoded {
            Ok(session) => {
                if let Some(file) = opened {
                    self.cache.opened(&session, &file);
                }
                let session = self.apply_stamp(id, session, version)?;
                self.index
                    .insert(id, self.entry(&session, key_id, version, seq));
                self.next_seq = self.next_seq.max(seq.saturating_add(1));
                Ok(Some(session))
            }
            Err(StoreError::MissingKey(reason)) => {
                // The header's version is not authenticated without the key: it does not
                // move the sequence number (the ledger's does).
                self.unindex(id);
                self.missing_key.insert(id.to_owned(), key_id);
                Err(StoreError::MissingKey(reason))
            }
            Err(StoreError::Corrupted(reason)) => {
                self.unindex(id);
                self.backend.quarantine(id)?;
                self.drop_stamp(id);
                Err(StoreError::Corrupted(reason))
            }
            Err(other) => Err(other),
        }
    }

    /// The index entry of `session`, its expiry including the idle timeout.
    pub(super) fn entry(
        &self,
        session: &Session,
        key_id: u32,
        version: [u8; NONCE_LEN],
        seq: u64,
    ) -> Entry {
        Entry {
            user: session.user().map(str::to_owned),
            origin: session.origin(),
            expires_at: self.lifetime.expiry(session),
            key_id,
            version,
            seq,
        }
    }

    /// Takes `id` out of the index; the ledger keeps its version, so an older copy found
    /// later (the file quarantined or gone now, an older one put back) is still refused.
    pub(super) fn unindex(&mut self, id: &str) -> Option<Entry> {
        self.cache.forget(id);
        let entry = self.index.remove(id)?;
        if let Some(ledger) = &mut self.ledger {
            ledger.keep(id, entry.seq);
        }
        Some(entry)
    }

    /// `corrupted` if version `seq` of session `id` is not its latest: older than the
    /// one the index or the ledger holds, or of a session removed since.
    pub(super) fn check_version(&self, id: &str, seq: u64) -> Result<(), StoreError> {
        let name = layout::session_name(id);
        if let Some(entry) = self.index.entry(id) {
            if seq < entry.seq {
                return Err(StoreError::Corrupted(format!(
                    "{name} is version {seq}, older than version {} this store wrote: \
                     an older copy was put back",
                    entry.seq
                )));
            }
            return Ok(());
        }
        match self
            .ledger
            .as_ref()
            .and_then(|ledger| ledger.refuses(id, seq))
        {
            Some(why) => Err(StoreError::Corrupted(format!("{name} is {why}"))),
            None => Ok(()),
        }
    }

    /// Overlays the access stamp of `id` on `session` if the stamp is for this `version`
    /// of its file; removes a torn or damaged one.
    pub(super) fn apply_stamp(
        &mut self,
        id: &str,
        mut session: Session,
        version: [u8; NONCE_LEN],
    ) -> Result<Session, StoreError> {
        let stamp = match self.stamps.get(id) {
            None => return Ok(session),
            // The store holds the directory exclusively, so the stamp it wrote or read is
            // the one on the backend.
            Some(Some(stamp)) => Some(*stamp),
            Some(None) => match self.backend.read_stamp(id) {
                Ok(Some(file)) => Stamp::open(&file, &self.keyring.scope, id, |key_id| {
                    self.keyring.key(key_id)
                }),
                Ok(None) => {
                    self.stamps.remove(id);
                    return Ok(session);
                }
                Err(StoreError::Corrupted(_)) => None,
                Err(other) => return Err(other),
            },
        };
        match stamp {
            Some(stamp) => {
                self.stamps.insert(id.to_owned(), Some(stamp));
                // A stamp of an older version stays, void, for the next touch to overwrite.
                if stamp.version == version {
                    session.set_access(stamp.last_accessed_at, stamp.access_count);
                    if let Some(at) = stamp.expires_at {
                        session.set_expires_at(at);
                    }
                }
            }
            // Torn or damaged: removed, so that the next touch starts a clean one.
            None => self.drop_stamp(id),
        }
        Ok(session)
    }
}

/// Decrypts and parses the session file `file` of session `id` with `keyring`: a key the
/// ring lacks is `missing-key`; anything else wrong with the file is `corrupted`.
pub(crate) fn decode(keyring: &Keyring, id: &str, file: &[u8]) -> Result<Session, StoreError> {
    crate::sessions::record::decode(keyring, id, &layout::session_name(id), file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory_store::tests::{access, open, open_log, session};
    use crate::document::patch::SessionPatch;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Every write path leaves the cache serving what the backend holds: the model test
    /// (tests/conformance) runs the same with random sequences through the component.
    #[test]
    fn the_cache_follows_every_write_and_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open_log(tmp.path(), 100, None);
        store.create(&session("a", "u", 900)).unwrap();
        store.create(&session("b", "u", 900)).unwrap();
        assert_eq!(store.cached(), 0, "a write lets nothing in");
        for _ in 0..2 {
            store.get("a").unwrap();
            store.get("b").unwrap();
        }
        assert_eq!(store.cached(), 2, "a second read does");
        let patch = SessionPatch {
            session_token: Some("rotated".into()),
            ..SessionPatch::default()
        };
        store.update("a", patch).unwrap();
        assert_eq!(
            store.get("a").unwrap().unwrap().members()["sessionToken"],
            "rotated"
        );
        store.lifetime.clock.set(150);
        store.touch("a", None).unwrap();
        assert_eq!(access(&store.get("a").unwrap().unwrap()), (150, 1));
        assert_eq!(store.user_sessions("u").unwrap().len(), 2);
        assert!(store.delete("a").unwrap());
        assert_eq!(store.cached(), 1, "a removal forgets at once");
        assert_eq!(store.get("a").unwrap(), None);
        assert_eq!(store.revoke_user("u").unwrap(), 1);
        assert_eq!(store.cached(), 0);
        store.create(&session("c", "u", 200)).unwrap();
        store.clear().unwrap();
        assert_eq!(store.cached(), 0);
        assert_eq!(store.get("c").unwrap(), None);
    }

    #[test]
    fn a_cached_session_is_still_read_from_disk_and_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        store.create(&session("b", "u", 900)).unwrap();
        let path = tmp.path().join("a.svs");
        let written = std::fs::read(&path).unwrap();
        for _ in 0..2 {
            store.get("a").unwrap();
            store.get("b").unwrap();
        }
        assert_eq!(store.cached(), 2);
        // The same bytes are served; one flipped bit is refused as without the cache.
        assert!(store.get("a").unwrap().is_some());
        let mut flipped = written.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(store.get("a"), Err(StoreError::Corrupted(_))));
        assert_eq!(store.cached(), 1);
        // A removed file is gone, whatever the cache held.
        std::fs::remove_file(tmp.path().join("b.svs")).unwrap();
        assert_eq!(store.get("b").unwrap(), None);
        assert_eq!(store.cached(), 0);
    }

    #[test]
    fn an_older_authentic_record_put_back_misses_the_cache_and_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        let old = std::fs::read(tmp.path().join("a.svs")).unwrap();
        store.update("a", SessionPatch::default()).unwrap();
        std::fs::write(tmp.path().join("a.svs"), &old).unwrap();
        assert!(matches!(store.get("a"), Err(StoreError::Corrupted(_))));
    }

    #[test]
    fn a_zero_cache_keeps_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let log = crate::backend::log::Log::open(
            crate::fs::StdDir::new(tmp.path()),
            crate::backend::Durability::Durable,
        )
        .unwrap();
        let mut config =
            crate::directory_store::Config::new(crate::keyring::Secret::RawKey(vec![5; 32]));
        config.cache_bytes = 0;
        let mut store = crate::directory_store::DirectoryStore::open(
            log,
            crate::directory_store::ManualClock::new(100),
            config,
        )
        .unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        for _ in 0..3 {
            assert!(store.get("a").unwrap().is_some());
        }
        assert_eq!(store.cached(), 0);
    }

    #[test]
    fn expired_sessions_vanish_on_every_path() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 200)).unwrap();
        store.create(&session("b", "u", 300)).unwrap();
        now.set(200);
        assert_eq!(store.count(), 1);
        assert_eq!(store.user_sessions("u").unwrap().len(), 1);
        assert!(matches!(
            store.update("a", SessionPatch::default()),
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.get("a").unwrap(), None);
        assert!(!tmp.path().join("a.svs").exists());
        assert_eq!(store.cleanup().unwrap(), 0);
        now.set(300);
        assert_eq!(store.cleanup().unwrap(), 1);
        assert_eq!(store.count(), 0);
    }
}
