//! What both stores share: the clock and the cache of opened sessions.

pub(crate) mod cache;
pub mod clock;
