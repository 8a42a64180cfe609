//! When a session expires: its `expiresAt`, or earlier once the idle timeout runs out or
//! its maximum lifetime is reached, by the store's clock. One rule for both stores.

use crate::document::session::Session;
use crate::sessions::clock::Clock;

/// A store's clock and idle timeout.
#[derive(Debug, Clone)]
pub(crate) struct Lifetime<C> {
    pub(crate) clock: C,
    /// Sessions not accessed for this many milliseconds have expired; `None`: no idle
    /// timeout.
    pub(crate) idle_timeout: Option<u64>,
    /// Sessions this many milliseconds past their origin (`createdAt`, or their first
    /// write) have expired, whatever their `expiresAt` says; `None`: no cap.
    pub(crate) max_lifetime: Option<u64>,
}

impl<C: Clock> Lifetime<C> {
    /// The clock's reading now.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// When `session` expires: its `expiresAt`, or earlier if the idle timeout runs out
    /// first. The idle timeout counts from `security.lastAccessedAt`: a session without
    /// `security` records no access, and expires at its `expiresAt` (which `touch` can
    /// move).
    pub(crate) fn expiry(&self, session: &Session) -> u64 {
        let last_accessed_at = session.access().map_or(u64::MAX, |(last, _)| last);
        self.expiry_of(session.expires_at(), last_accessed_at, session.origin())
    }

    /// When a session expires that says `expires_at`, was last accessed at
    /// `last_accessed_at` and began at `origin`.
    pub(crate) fn expiry_of(
        &self,
        expires_at: u64,
        last_accessed_at: u64,
        origin: Option<u64>,
    ) -> u64 {
        expiry_at(expires_at, last_accessed_at, self.idle_timeout).min(self.cap(origin))
    }

    /// The latest expiry a session that began at `origin` may have.
    pub(crate) fn cap(&self, origin: Option<u64>) -> u64 {
        match (self.max_lifetime, origin) {
            (Some(max), Some(origin)) => origin.saturating_add(max),
            _ => u64::MAX,
        }
    }

    /// Whether `session` has expired now (absolute or idle).
    pub(crate) fn is_expired(&self, session: &Session) -> bool {
        self.now() >= self.expiry(session)
    }
}

/// When a session that expires at `expires_at` and was last accessed at
/// `last_accessed_at` expires under `idle_timeout`.
pub(crate) fn expiry_at(expires_at: u64, last_accessed_at: u64, idle_timeout: Option<u64>) -> u64 {
    let idle = idle_timeout.map_or(u64::MAX, |t| last_accessed_at.saturating_add(t));
    expires_at.min(idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_timeout_only_brings_expiry_forward() {
        assert_eq!(expiry_at(1_000, 100, None), 1_000);
        assert_eq!(expiry_at(1_000, 100, Some(50)), 150);
        assert_eq!(expiry_at(1_000, 100, Some(5_000)), 1_000);
        assert_eq!(expiry_at(1_000, u64::MAX, Some(1)), 1_000, "no overflow");
    }
}
