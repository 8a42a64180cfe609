//! The component's `wasi:clocks/wall-clock`, read from the vault's [`Clock`].

use std::sync::Arc;
use std::time::Duration;

use session_vault_guest::Clock;

/// A [`Clock`] as the component's `wasi:clocks/wall-clock`.
pub struct WallClock(pub Arc<dyn Clock + Send + Sync>);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now())
    }
}
