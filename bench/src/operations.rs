//! What every benchmark target runs: the store's operations, behind one trait.

use session_vault::{Session, SessionPatch};

/// One way of running the store's operations on a directory.
pub trait Target {
    /// Stores a new session.
    fn create(&mut self, session: &Session) -> anyhow::Result<()>;
    /// Reads a session.
    fn get(&mut self, id: &str) -> anyhow::Result<()>;
    /// Merges a patch into a session.
    fn update(&mut self, id: &str, patch: &SessionPatch) -> anyhow::Result<()>;
    /// Records an access.
    fn touch(&mut self, id: &str) -> anyhow::Result<()>;
    /// Removes a session.
    fn delete(&mut self, id: &str) -> anyhow::Result<()>;
    /// Reads every live session of a user; returns how many.
    fn user_sessions(&mut self, user: &str) -> anyhow::Result<usize>;
    /// Removes every expired session; returns how many.
    fn cleanup(&mut self) -> anyhow::Result<u64>;
    /// Closes the store (releasing its directory).
    fn close(&mut self);
    /// Opens the store again (closing it first if open), as a restarted process would.
    fn reopen(&mut self) -> anyhow::Result<()>;
}
