//! The session operations of a shared store: each read goes to the bucket, each write
//! is a compare-and-swap on the record it read.

use super::bucket::{Bucket, Change, Member};
use super::{BucketStore, RETRIES, Record, layout, lost};
use crate::document::id;
use crate::document::patch::SessionPatch;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::sessions::clock::Clock;
use crate::sessions::page;

/// What a write takes a removal marker on the key for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Absent: `create` (an explicit new session), `touch`, `update`, `revoke-user`.
    Absent,
    /// A refusal while it lasts (`removed`): `set`, which a request in flight at the
    /// removal may call.
    Refuse,
}

/// What a write makes of the record it read.
enum Decision<T> {
    /// Nothing to write.
    Done(T),
    /// Apply the change (if the record is unchanged), then return the value.
    Commit(Change, T),
}

impl<K: Bucket, C: Clock> BucketStore<K, C> {
    /// Stores a new session, replacing an expired one of the same id; `already-exists`
    /// if any host holds it live.
    pub(crate) fn create(&mut self, session: &Session) -> Result<(), StoreError> {
        id::validate(session.id())?;
        let now = self.lifetime.now();
        let mut session = session.clone();
        // A session moved in from a directory brings its first write along.
        session.set_first_written(session.first_written().or(Some(now)));
        let session = &session;
        self.write(session.id(), |store, found| match found {
            None => Ok(Decision::Commit(store.put(session, 1, None)?, ())),
            Some(record) if now < store.lifetime.expiry(&record.session) => {
                Err(StoreError::AlreadyExists)
            }
            Some(record) => {
                let previous = record.session.user();
                let change = store.put(session, record.seq.saturating_add(1), previous)?;
                Ok(Decision::Commit(change, ()))
            }
        })
    }

    /// Stores `session` whether or not its id is live, by compare-and-swap on whatever
    /// record any host holds. A damaged record is quarantined first, then replaced; one
    /// under a key the ring lacks is not (`missing-key`).
    pub(crate) fn set(&mut self, session: &Session) -> Result<(), StoreError> {
        id::validate(session.id())?;
        let now = self.lifetime.now();
        let mut put = |store: &Self, found: Option<Record>| {
            let (seq, previous) = found.as_ref().map_or((1, None), |record| {
                (record.seq.saturating_add(1), record.session.user())
            });
            // A live session replaced keeps where its life began (the maximum lifetime).
            let began = (found.as_ref())
                .filter(|record| now < store.lifetime.expiry(&record.session))
                .and_then(|record| record.session.origin());
            let mut session = session.clone();
            session.set_first_written(Some(began.unwrap_or(now)));
            Ok(Decision::Commit(store.put(&session, seq, previous)?, ()))
        };
        match self.write_over(session.id(), Removal::Refuse, &mut put) {
            // `write` moved the damaged record to quarantine: the id is free now.
            Err(StoreError::Corrupted(_)) => self.write_over(session.id(), Removal::Refuse, put),
            other => other,
        }
    }

    /// [`BucketStore::set`] only if the live record of the session is, as stored,
    /// exactly the document `expected`: a compare-and-swap on the record it compared, so
    /// a write by any other host in between makes it `false`.
    pub(crate) fn set_if_unchanged(
        &mut self,
        session: &Session,
        expected: &str,
    ) -> Result<bool, StoreError> {
        id::validate(session.id())?;
        let now = self.lifetime.now();
        // A removal marker is an absent session: `false`, as a directory store answers.
        let written = self.write_over(session.id(), Removal::Absent, |store, found| {
            let Some(record) = found.filter(|r| now < store.lifetime.expiry(&r.session)) else {
                return Ok(Decision::Done(false));
            };
            if record.session.to_string() != expected {
                return Ok(Decision::Done(false));
            }
            // The session replaced keeps where its life began (the maximum lifetime).
            let mut replacement = session.clone();
            replacement.set_first_written(Some(record.session.origin().unwrap_or(now)));
            let previous = record.session.user();
            let change = store.put(&replacement, record.seq.saturating_add(1), previous)?;
            Ok(Decision::Commit(change, true))
        });
        match written {
            // The damaged record was quarantined: what was expected is not there.
            Err(StoreError::Corrupted(_)) => Ok(false),
            other => other,
        }
    }

    /// The live session `id`; `None` if absent or expired.
    pub(crate) fn get(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        id::validate(id)?;
        for _ in 0..RETRIES {
            let Some(bytes) = self.read_session(id)? else {
                return Ok(None);
            };
            if layout::removed_until(&bytes).is_some() {
                return Ok(None);
            }
            return match self.open_record(id, &bytes) {
                Ok(record) if self.lifetime.is_expired(&record.session) => {
                    // Removed as a directory store removes it, unless rewritten meanwhile.
                    let (cas, found) = self.watch_session(id)?;
                    if found.as_deref() == Some(bytes.as_slice()) {
                        self.tidy(cas, self.removal(id, record.session.user()))?;
                    }
                    Ok(None)
                }
                Ok(record) => Ok(Some(record.session)),
                Err(error) => match self.damaged(id, bytes, error)? {
                    Some(error) => Err(error),
                    // Rewritten since it was read (the refusal may be of an older
                    // version than the ledger read after it): read again.
                    None => continue,
                },
            };
        }
        Err(lost(&format!("reading session {id:?}")))
    }

    /// The record of `id` read again after `bytes` failed to open: the session it holds
    /// now if it was rewritten meanwhile and opens (the ledger read with a bulk read can
    /// be newer than the record read before it), else `None`.
    fn reread(&mut self, id: &str, bytes: &[u8]) -> Result<Option<Record>, StoreError> {
        match self.read_session(id)? {
            Some(now) if now != bytes => Ok(self.open_record(id, &now).ok()),
            _ => Ok(None),
        }
    }

    /// The live session `id` as stored, changing nothing (a damaged record is an error,
    /// not quarantined): what a move out of a fenced bucket reads.
    pub(crate) fn peek(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        let Some(bytes) = self.read_session(id)? else {
            return Ok(None);
        };
        if layout::removed_until(&bytes).is_some() {
            return Ok(None);
        }
        let record = self.open_record(id, &bytes)?;
        Ok(Some(record.session).filter(|s| !self.lifetime.is_expired(s)))
    }

    /// Records an access (`lastAccessedAt` now, `accessCount` + 1) and moves `expiresAt`
    /// to `expires_at` if given: the record is rewritten by compare-and-swap, and its TTL
    /// follows the new expiry. `None` if absent or expired.
    pub(crate) fn touch(
        &mut self,
        id: &str,
        expires_at: Option<u64>,
    ) -> Result<Option<Session>, StoreError> {
        id::validate(id)?;
        let now = self.lifetime.now();
        self.write(id, |store, found| match found {
            Some(record) if now < store.lifetime.expiry(&record.session) => {
                let mut session = record.session;
                if session.access().is_none() && expires_at.is_none() {
                    return Ok(Decision::Done(Some(session)));
                }
                if let Some((_, count)) = session.access() {
                    session.set_access(now, count.saturating_add(1));
                }
                if let Some(at) = expires_at {
                    // No touch carries a session past its maximum lifetime.
                    session.set_expires_at(at.min(store.lifetime.cap(session.origin())));
                }
                let change = store.put(&session, record.seq.saturating_add(1), None)?;
                Ok(Decision::Commit(change, Some(session)))
            }
            _ => Ok(Decision::Done(None)),
        })
    }

    /// Merges `patch` into the live session and returns the result; `not-found` if it
    /// is absent or expired.
    pub(crate) fn update(&mut self, id: &str, patch: SessionPatch) -> Result<Session, StoreError> {
        id::validate(id)?;
        let now = self.lifetime.now();
        self.write(id, |store, found| match found {
            Some(record) if now < store.lifetime.expiry(&record.session) => {
                let previous = record.session.user().map(str::to_owned);
                let session = patch.clone().apply(record.session)?;
                let change =
                    store.put(&session, record.seq.saturating_add(1), previous.as_deref())?;
                Ok(Decision::Commit(change, session))
            }
            _ => Err(StoreError::NotFound),
        })
    }

    /// Removes the session, whatever its record holds; `false` if nothing was stored.
    pub(crate) fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        id::validate(id)?;
        for _ in 0..RETRIES {
            let (cas, found) = self.watch_session(id)?;
            let Some(bytes) = found.filter(|b| layout::removed_until(b).is_none()) else {
                return Ok(false);
            };
            // A record that does not open is removed with no marker and no user index.
            let record = self.open_record(id, &bytes).ok();
            let user = (record.as_ref()).and_then(|r| r.session.user().map(str::to_owned));
            let until = (record.as_ref()).map_or(0, |r| self.lifetime.expiry(&r.session));
            let version = record.as_ref().map_or(0, |r| r.seq);
            if self.commit(cas, self.removal_until(id, user.as_deref(), until, version))? {
                return Ok(true);
            }
        }
        Err(lost(&format!("deleting session {id:?}")))
    }

    /// The live sessions of `user`, by `created_at` then id. Index members whose record
    /// is gone (Redis expired it) are dropped from the index.
    pub(crate) fn user_sessions(&mut self, user: &str) -> Result<Vec<Session>, StoreError> {
        let index = self.user_index(user);
        let ids = self.bucket.range(&index, 0, u64::MAX, u32::MAX)?;
        let keys: Vec<String> = ids.iter().map(|id| layout::session(id)).collect();
        let values = self.bucket.get_many(&keys)?;
        // After the records: every frame of a write they could have missed is read.
        self.catch_up()?;
        let mut sessions = Vec::new();
        let mut gone = Vec::new();
        for (id, value) in ids.iter().zip(values) {
            let Some(bytes) = value else {
                gone.push(Member {
                    index: index.clone(),
                    member: id.clone(),
                });
                continue;
            };
            // A record that does not open, or is another user's (an index is only a
            // hint), is not this user's session.
            let record = match self.open_record(id, &bytes) {
                Ok(record) => Some(record),
                Err(_) => self.reread(id, &bytes)?,
            };
            if let Some(record) = record
                && record.session.user() == Some(user)
                && !self.lifetime.is_expired(&record.session)
            {
                sessions.push(record.session);
            }
        }
        for member in gone {
            // Only while the record is still absent: a create racing this keeps its entry.
            let (cas, found) = self.watch_session(&member.member)?;
            if found.is_none() {
                let change = Change {
                    remove: vec![member],
                    ..Change::default()
                };
                self.tidy(cas, change)?;
            }
        }
        sessions.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
        Ok(sessions)
    }

    /// Removes every session of `user`; returns how many live ones were removed.
    pub(crate) fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        let index = self.user_index(user);
        let mut removed = 0;
        loop {
            let ids = self.bucket.range(&index, 0, u64::MAX, super::BATCH)?;
            if ids.is_empty() {
                return Ok(removed);
            }
            for id in &ids {
                let now = self.lifetime.now();
                let live = self.write(id, |store, found| match found {
                    Some(record) if record.session.user() == Some(user) => {
                        let until = store.lifetime.expiry(&record.session);
                        let change = store.removal_until(id, Some(user), until, record.seq);
                        Ok(Decision::Commit(change, now < until))
                    }
                    _ => Ok(Decision::Done(false)),
                });
                match live {
                    Ok(true) => removed += 1,
                    Ok(false) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            // Whatever is left is not this user's: drop it from the index.
            let members: Vec<Member> = ids
                .into_iter()
                .map(|member| Member {
                    index: index.clone(),
                    member,
                })
                .collect();
            self.bucket.remove(&members)?;
        }
    }

    /// Up to `limit` live sessions after `after`, in id order, from the id index, and the
    /// cursor of the next page. The records of a page are read in one round trip and
    /// opened (a listing of ids costs what one of sessions does); an expired, damaged or
    /// unreadable one is left out, and an index member whose record is gone is dropped.
    pub(crate) fn live_page(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Session>, Option<String>), StoreError> {
        let limit = page::request(after, limit)?;
        let fetch = u32::try_from(limit.saturating_add(1))
            .unwrap_or(super::BATCH)
            .min(super::BATCH);
        let mut cursor = after.unwrap_or_default().to_owned();
        let mut live = Vec::new();
        loop {
            let batch = self.bucket.members_after(layout::IDS, &cursor, fetch)?;
            let Some(last) = batch.last() else {
                return Ok((live, None));
            };
            cursor = last.clone();
            let keys: Vec<String> = batch.iter().map(|id| layout::session(id)).collect();
            let values = self.bucket.get_many(&keys)?;
            self.catch_up()?;
            for (id, value) in batch.iter().zip(values) {
                let Some(bytes) = value.filter(|_| id::is_valid(id)) else {
                    self.drop_unbacked_id(id)?;
                    continue;
                };
                let record = match self.open_record(id, &bytes) {
                    Ok(record) => Ok(record),
                    Err(error) => self.reread(id, &bytes)?.ok_or(error),
                };
                match record {
                    Ok(record) if !self.lifetime.is_expired(&record.session) => {
                        if live.len() == limit {
                            let ids: Vec<String> =
                                live.iter().map(|s: &Session| s.id().to_owned()).collect();
                            return Ok((live, page::next(&ids, true)));
                        }
                        live.push(record.session);
                    }
                    // Expired (the expiry index's cleanup removes it), damaged (a read
                    // quarantines it) or under a key the ring lacks: not listed.
                    _ => {}
                }
            }
        }
    }

    /// Drops `id` from the id index if no record backs it (still absent when re-read).
    fn drop_unbacked_id(&mut self, id: &str) -> Result<(), StoreError> {
        let (cas, found) = self.watch_session(id)?;
        if found.is_none() || !id::is_valid(id) {
            let change = Change {
                remove: vec![Member {
                    index: layout::IDS.into(),
                    member: id.to_owned(),
                }],
                ..Change::default()
            };
            self.tidy(cas, change)?;
        }
        Ok(())
    }

    /// How many live sessions the store holds, from the expiry index.
    pub(crate) fn count(&mut self) -> Result<u64, StoreError> {
        let now = self.lifetime.now();
        self.bucket
            .count(layout::EXPIRY, now.saturating_add(1), u64::MAX)
    }

    /// Reads the record of `id` and commits what `decide` makes of it, re-reading and
    /// deciding again whenever another host changed the record in between. A damaged
    /// record is quarantined (`corrupted`); one under a key the ring lacks is `missing-key`.
    fn write<T>(
        &mut self,
        id: &str,
        decide: impl FnMut(&Self, Option<Record>) -> Result<Decision<T>, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_over(id, Removal::Absent, decide)
    }

    /// [`BucketStore::write`], with what a removal marker on the key means to the write.
    fn write_over<T>(
        &mut self,
        id: &str,
        removal: Removal,
        mut decide: impl FnMut(&Self, Option<Record>) -> Result<Decision<T>, StoreError>,
    ) -> Result<T, StoreError> {
        for _ in 0..RETRIES {
            let (cas, found) = self.watch_session(id)?;
            let now = self.lifetime.now();
            let record = match found {
                None => None,
                Some(bytes) if let Some(until) = layout::removed_until(&bytes) => {
                    if removal == Removal::Refuse && now < until {
                        return Err(StoreError::Removed(format!(
                            "session {id:?} was removed, and stays removed until its expiry \
                             ({until})"
                        )));
                    }
                    None
                }
                Some(bytes) => match self.open_record(id, &bytes) {
                    Ok(record) => Some(record),
                    Err(error) => match self.damaged(id, bytes, error)? {
                        Some(error) => return Err(error),
                        // Rewritten since it was read: read and decide again.
                        None => continue,
                    },
                },
            };
            // An expired record (with its user, if any), which is removed unless this write
            // replaces it.
            let expired = record
                .as_ref()
                .filter(|r| self.lifetime.is_expired(&r.session))
                .map(|r| r.session.user().map(str::to_owned));
            match decide(self, record) {
                Ok(Decision::Commit(change, value)) => {
                    if self.commit(cas, change)? {
                        return Ok(value);
                    }
                }
                Ok(Decision::Done(value)) => {
                    self.drop_expired(cas, id, expired)?;
                    return Ok(value);
                }
                Err(error) => {
                    self.drop_expired(cas, id, expired)?;
                    return Err(error);
                }
            }
        }
        Err(lost(&format!("writing session {id:?}")))
    }

    /// Removes the expired record of session `id` that `cas` read, if `expired` says it
    /// was one (with its user, if any); losing the race means another host already
    /// changed it.
    fn drop_expired(
        &mut self,
        cas: K::Cas,
        id: &str,
        expired: Option<Option<String>>,
    ) -> Result<(), StoreError> {
        match expired {
            Some(user) => self.tidy(cas, self.removal(id, user.as_deref())),
            None => Ok(()),
        }
    }

    /// Commits a change a read makes on its way (dropping an expired record, a stale
    /// index entry, a damaged record): losing the race, or a fenced bucket (whose reads
    /// go on while its store moves out), leaves things as they are.
    pub(super) fn tidy(&mut self, cas: K::Cas, change: Change) -> Result<(), StoreError> {
        match self.commit(cas, change) {
            // A commit's only `invalid-input` is the fence (`bucket::moved_out`).
            Ok(_) | Err(StoreError::InvalidInput(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Handles the record `bytes` of `id` that failed to open with `error`: a damaged
    /// one is moved to quarantine. Returns the error to report, or `None` if another
    /// host rewrote the record meanwhile (nothing was moved: the caller reads it again).
    pub(super) fn damaged(
        &mut self,
        id: &str,
        bytes: Vec<u8>,
        error: StoreError,
    ) -> Result<Option<StoreError>, StoreError> {
        if !matches!(error, StoreError::Corrupted(_)) {
            return Ok(Some(error));
        }
        let (cas, found) = self.watch_session(id)?;
        if found.as_ref() != Some(&bytes) {
            return Ok(None);
        }
        // Copied first: a failure in between leaves the record where it was.
        self.bucket.set(&layout::quarantine(id), &bytes)?;
        self.tidy(cas, self.unreadable_removal(id))?;
        Ok(Some(error))
    }
}
