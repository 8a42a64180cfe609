//! The store's source of "now": the system clock, or a manual one for tests.

/// A source of "now", in milliseconds since the Unix epoch.
pub trait Clock {
    /// The current time.
    fn now(&self) -> u64;
}

/// The system's wall clock (`wasi:clocks/wall-clock` in the component).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock before 1970 reads as 1970: every session then counts as live until its expiry.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl<F: Fn() -> u64> Clock for F {
    fn now(&self) -> u64 {
        self()
    }
}

/// A clock that moves only when told to: for tests and for reproducing expiry.
/// Clones share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ManualClock {
    /// A clock reading `now` (ms since the epoch).
    pub fn new(now: u64) -> Self {
        let clock = ManualClock::default();
        clock.set(now);
        clock
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.now.store(now, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }
}
