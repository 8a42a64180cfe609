//! The operations a store offers, as one trait ([`Sessions`], named for the WIT interface
//! `sessions`), and what both stores share: how a store is opened ([`Config`]), when a
//! session expires, the clock, the cache of opened sessions, opening a sealed record, and
//! the reports of the maintenance calls.
//!
//! `DirectoryStore` (a directory: `files` or `log`) and `BucketStore`
//! (a key-value bucket: `redis`) implement [`Sessions`]; the component's exports, the
//! legacy import, the conformance suite's native fronts and the benchmark call a store
//! only through it. Its fallible methods are the WIT's `store` functions, name for name,
//! with the WIT's meaning (see `wit/store.wit`), beside two helpers (`now`, `is_expired`);
//! `migrate`, which turns one kind of store into the other, is `crate::Store`'s.

pub(crate) mod cache;
pub mod clock;
mod config;
pub(crate) mod lifetime;
pub mod page;
pub(crate) mod record;
mod reports;

pub use cache::DEFAULT_CACHE_BYTES;
pub use config::{Config, Erase};
pub use page::{IdPage, MAX_PAGE, SessionPage};
pub(crate) use reports::key_infos;
pub use reports::{KeyInfo, RekeyProgress, Report};

pub use crate::backend::Compaction;
use crate::document::patch::SessionPatch;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::keyring::Secret;

/// The operations of a session store, whichever medium holds it. Each returns the WIT's
/// error cases as [`StoreError`]; an absent id is never an error but where the WIT says
/// so (`update` of an absent or expired session is `not-found`).
pub trait Sessions {
    /// Stores a new session under its `sessionId`, replacing an expired one.
    ///
    /// Errors: `invalid-id`, `invalid-input`, `too-large`; `already-exists` if a live
    /// session has this id; `io`, `unavailable`.
    fn create(&mut self, session: &Session) -> Result<(), StoreError>;

    /// Stores `session` whether or not its id is live (create or replace), in one atomic
    /// step, as durably as `create`.
    ///
    /// Errors: `invalid-id`, `invalid-input`, `too-large`; `missing-key` if the stored
    /// session is under a key the store lacks; `io`, `unavailable`.
    fn set(&mut self, session: &Session) -> Result<(), StoreError>;

    /// Stores `session` only if the live session of its id is, as stored, exactly the
    /// document text `expected`; `false` (nothing stored) otherwise, also when it was
    /// removed. A store with one
    /// writer (a directory, under its lock) compares and sets in one call; a shared store
    /// overrides this with a compare-and-swap.
    ///
    /// Errors: as `set`.
    fn set_if_unchanged(&mut self, session: &Session, expected: &str) -> Result<bool, StoreError> {
        match self.get(session.id()) {
            Ok(Some(current)) if current.to_string() == expected => {
                self.set(session)?;
                Ok(true)
            }
            Ok(_) | Err(StoreError::Corrupted(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The session with this id; `None` if it is absent or expired (an expired one is
    /// removed).
    ///
    /// Errors: `invalid-id`; `corrupted` (the record is quarantined; later reads give
    /// `None`); `missing-key`; `io`, `unavailable`.
    fn get(&mut self, id: &str) -> Result<Option<Session>, StoreError>;

    /// Records an access (`lastAccessedAt` = now, `accessCount` + 1, where the session has
    /// `security`) and moves `expiresAt` to `expires_at` if given (a rolling expiry),
    /// without rewriting a directory store's session; returns the session so changed;
    /// `None` if it is absent or expired (absolute or idle).
    ///
    /// Errors: as [`Sessions::get`].
    fn touch(&mut self, id: &str, expires_at: Option<u64>) -> Result<Option<Session>, StoreError>;

    /// Merges `patch` into the session and returns the stored result.
    ///
    /// Errors: `not-found` if it is absent or expired; `invalid-id`, `invalid-input`,
    /// `too-large`, `corrupted`, `missing-key`, `io`, `unavailable`.
    fn update(&mut self, id: &str, patch: SessionPatch) -> Result<Session, StoreError>;

    /// Removes the session; `false` if nothing was stored under this id.
    ///
    /// Errors: `invalid-id`; `io`, `unavailable`.
    fn delete(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Removes every expired session; returns how many.
    ///
    /// Errors: `io`, `unavailable`.
    fn cleanup(&mut self) -> Result<u64, StoreError>;

    /// The user's live sessions, oldest `createdAt` first (then by id); empty for a user
    /// with none. A damaged record found on the way is quarantined and left out.
    ///
    /// Errors: `io`, `unavailable`.
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Session>, StoreError>;

    /// How many live sessions the store holds.
    ///
    /// Errors: none for a directory store; `unavailable` for a bucket.
    fn count(&mut self) -> Result<u64, StoreError>;

    /// Up to `limit` (1 to [`MAX_PAGE`]) ids of live sessions after the id `after` (from
    /// the first if `None`), in id order, and the cursor of the next page. Reads no
    /// session of a directory store (its index has what it needs).
    ///
    /// Errors: `invalid-input` for a limit out of range; `invalid-id` for a cursor that
    /// is no id; `unavailable` for a bucket.
    fn list_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdPage, StoreError>;

    /// As [`Sessions::list_ids`], with the sessions themselves: each is read as `get`
    /// reads it, and one that expired or was removed meanwhile, or is damaged (then
    /// quarantined) or under a missing key, is left out of the page.
    ///
    /// Errors: as [`Sessions::list_ids`]; `io`.
    fn list(&mut self, after: Option<&str>, limit: u32) -> Result<SessionPage, StoreError> {
        let page = self.list_ids(after, limit)?;
        let mut sessions = Vec::with_capacity(page.ids.len());
        for id in &page.ids {
            match self.get(id) {
                Ok(Some(session)) => sessions.push(session),
                Ok(None) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(SessionPage {
            sessions,
            next: page.next,
        })
    }

    /// Removes every session, live or expired; returns how many.
    ///
    /// Errors: `io`, `unavailable`.
    fn clear(&mut self) -> Result<u64, StoreError>;

    /// Removes every session of a user; returns how many live ones; 0 for a user with
    /// none.
    ///
    /// Errors: `io`, `unavailable`.
    fn revoke_user(&mut self, user: &str) -> Result<u64, StoreError>;

    /// Adds the key of `secret` (current from now on, or a retired key restored);
    /// returns its id.
    ///
    /// Errors: `invalid-input` (already active, malformed, metadata too large); `io`,
    /// `unavailable`.
    fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError>;

    /// Every key, retired ones included, with how many sessions each seals.
    ///
    /// Errors: none for a directory store; `unavailable` for a bucket.
    fn keys(&mut self) -> Result<Vec<KeyInfo>, StoreError>;

    /// Re-seals up to `limit` sessions still under an older key with the current key.
    ///
    /// Errors: `io`, `unavailable`.
    fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError>;

    /// Retires key `id`: refused (`invalid-input`) while anything may still need it.
    ///
    /// Errors: `invalid-input`; `io`, `unavailable`.
    fn retire_key(&mut self, id: u32) -> Result<(), StoreError>;

    /// Verifies every session, quarantines the damaged ones, reports what is held.
    ///
    /// Errors: `io`, `unavailable`.
    fn check(&mut self) -> Result<Report, StoreError>;

    /// Compacts up to `limit` segments of a `log` store; nothing to do elsewhere
    /// (`remaining` is 0 at once).
    ///
    /// Errors: `io`.
    fn compact(&mut self, limit: u64) -> Result<Compaction, StoreError>;

    /// Holds back the syncs of durable writes until [`Sessions::flush`], so that the writes
    /// made meanwhile share one (a group commit). Nothing is held where writes are not
    /// synced one by one (a relaxed store, the `files` backend, a bucket).
    fn hold_syncs(&mut self) {}

    /// Makes every write since [`Sessions::hold_syncs`] durable, then ends the hold. Until
    /// it returns, no caller may be told those writes (or reads that saw them) are done.
    ///
    /// Errors: `io`; after one, the open store's memory may hold writes the disk lacks:
    /// drop it and open the store again.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The store's clock reading now, in milliseconds since the Unix epoch.
    fn now(&self) -> u64;

    /// Whether `session` has expired by the store's clock and idle timeout.
    fn is_expired(&self, session: &Session) -> bool;
}
