//! (b) the store core compiled natively, through the same `Sessions` the component
//! exports: a store in a directory, or in a bucket of the benchmark's Redis server.

use std::path::Path;

use anyhow::Context;
use session_vault::{
    BackendKind, Durability, ManualClock, RedisBucket, Secret, Session, SessionPatch,
};
use session_vault_guest::{Config, DirectoryBackend, Sessions, StdDir, Store};

use super::operations::Target;

/// A store of either kind, on the benchmark's clock.
type NativeStore = Store<StdDir, RedisBucket, ManualClock>;

/// Opens the store again, as a restarted process would.
type Open = Box<dyn Fn() -> anyhow::Result<NativeStore>>;

/// The native core on one store.
pub struct Native {
    open: Open,
    store: Option<NativeStore>,
}

impl Native {
    /// On a new store of `backend` in `dir`, sealed with `key`.
    pub fn in_directory(
        dir: &Path,
        backend: BackendKind,
        durability: Durability,
        clock: &ManualClock,
        key: Vec<u8>,
    ) -> anyhow::Result<Self> {
        let (dir, clock) = (dir.to_owned(), clock.clone());
        Self::opened(Box::new(move || {
            let backend = DirectoryBackend::open(StdDir::new(&dir), Some(backend), durability)?;
            let config = Config::new(Secret::RawKey(key.clone()));
            Ok(Store::in_directory(backend, clock.clone(), config)?)
        }))
    }

    /// On a new store in bucket `prefix` of the server at `url`, sealed with `key`.
    pub fn in_bucket(
        url: &str,
        prefix: &str,
        clock: &ManualClock,
        key: Vec<u8>,
    ) -> anyhow::Result<Self> {
        let (url, prefix, clock) = (url.to_owned(), prefix.to_owned(), clock.clone());
        Self::opened(Box::new(move || {
            let bucket = RedisBucket::open(&super::redis::config(&url), &prefix)?;
            let config = Config::new(Secret::RawKey(key.clone()));
            Ok(Store::in_bucket(bucket, clock.clone(), config)?)
        }))
    }

    fn opened(open: Open) -> anyhow::Result<Self> {
        let store = open()?;
        Ok(Native {
            open,
            store: Some(store),
        })
    }

    fn sessions(&mut self) -> anyhow::Result<&mut dyn Sessions> {
        Ok(self
            .store
            .as_mut()
            .context("the store is closed")?
            .sessions())
    }
}

impl Target for Native {
    fn create(&mut self, session: &Session) -> anyhow::Result<()> {
        Ok(self.sessions()?.create(session)?)
    }
    fn get(&mut self, id: &str) -> anyhow::Result<()> {
        self.sessions()?
            .get(id)?
            .context("a benchmark session is missing")?;
        Ok(())
    }
    fn update(&mut self, id: &str, patch: &SessionPatch) -> anyhow::Result<()> {
        self.sessions()?.update(id, patch.clone())?;
        Ok(())
    }
    fn touch(&mut self, id: &str) -> anyhow::Result<()> {
        self.sessions()?
            .touch(id, None)?
            .context("a benchmark session is missing")?;
        Ok(())
    }
    fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        self.sessions()?.delete(id)?;
        Ok(())
    }
    fn user_sessions(&mut self, user: &str) -> anyhow::Result<usize> {
        Ok(self.sessions()?.user_sessions(user)?.len())
    }
    fn cleanup(&mut self) -> anyhow::Result<u64> {
        Ok(self.sessions()?.cleanup()?)
    }
    fn close(&mut self) {
        self.store = None;
    }
    fn reopen(&mut self) -> anyhow::Result<()> {
        // Closing first, as a process that exits does.
        self.store = None;
        self.store = Some((self.open)()?);
        Ok(())
    }
}
