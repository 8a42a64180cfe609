//! Upkeep: cleanup of expired sessions, clear, revoke-user, check (verify every
//! session and rebuild the index), compaction.

use super::{Clock, DirectoryStore, Erase, Report};
use crate::backend::{Backend, Compaction, Listing};
use crate::error::StoreError;

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Removes every expired session, indexing first any session file the index lacks.
    pub(crate) fn cleanup(&mut self) -> Result<u64, StoreError> {
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
        for id in self.index.expired_ids(self.lifetime.now()) {
            self.remove_files(&id)?;
            self.unindex(&id);
            removed += 1;
        }
        self.forget_lapsed_removals();
        self.backend.compact()?;
        Ok(removed)
    }

    /// Removes every session file; returns how many were removed.
    pub(crate) fn clear(&mut self) -> Result<u64, StoreError> {
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
        for id in self.index.ids() {
            if let Some(until) = self.index.entry(&id).map(|e| e.expires_at) {
                self.remember_removed(&id, until);
            }
        }
        self.index.clear();
        self.cache.clear();
        self.missing_key.clear();
        self.erase_removed()?;
        Ok(removed)
    }

    /// Removes every session of `user`; returns how many live ones were removed.
    pub(crate) fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError> {
        let now = self.lifetime.now();
        let mut removed = 0;
        for id in self.index.user_ids(user) {
            self.remove_files(&id)?;
            if let Some(entry) = self.unindex(&id) {
                self.remember_removed(&id, entry.expires_at);
                removed += u64::from(now < entry.expires_at);
            }
        }
        self.erase_removed()?;
        Ok(removed)
    }

    /// Verifies every session file, quarantines the damaged ones and rebuilds the index.
    /// Also reports the dead bytes and the oldest key still on the backend.
    pub(crate) fn check(&mut self) -> Result<Report, StoreError> {
        let mut report = self.verify_all()?;
        let usage = self.backend.usage()?;
        report.dead_bytes = usage.dead_bytes;
        report.oldest_key = usage.key_ids.first().copied();
        Ok(report)
    }

    /// Compacts up to `limit` units of the backend (log segments), oldest first; call until
    /// `remaining` is 0. Safe to interrupt: what a step did not finish, the next one does.
    pub(crate) fn compact(&mut self, limit: u64) -> Result<Compaction, StoreError> {
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
        let now = self.lifetime.now();
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
            Ok(Some(session)) if now >= self.lifetime.expiry(&session) => report.expired += 1,
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
