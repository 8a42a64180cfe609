//! The native front: the store core without wasm, through the crate's one `Store`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use session_vault::{BackendKind, Durability, ManualClock, SessionPatch, StoreError};
use session_vault_guest::{Config, DirectoryBackend, LegacyStore, Sessions, StdDir};
use session_vault_guest::{Destination, OpenBucket, OpenDirectory, Store};

use super::*;

/// The store core built natively, the same logic without wasm: over `std::fs` for a
/// directory setup, over the test server for a `redis` one. Like the component, it
/// moves between the setup's directory and the server attached to it (`Setup::server`)
/// and then serves the store where it went.
pub struct Native {
    store: Store<StdDir, session_vault::RedisBucket, ManualClock>,
    /// Where `migrate` may move the store.
    moves: NativeDestination,
}

/// The setup's directory and server, and how to open a store there.
#[derive(Clone)]
struct NativeDestination {
    dir: PathBuf,
    durability: Durability,
    server: Option<RedisStore>,
    config: Config,
    clock: ManualClock,
}

fn native_fail(error: StoreError) -> Fail {
    error.kind().to_owned()
}

/// The bucket `server` names, as the native core opens it.
fn native_bucket(server: &RedisStore) -> Result<session_vault::RedisBucket, StoreError> {
    let config = session_vault::RedisConfig {
        url: server.url.clone(),
        timeout: std::time::Duration::from_secs(2),
    };
    session_vault::RedisBucket::open(&config, &server.prefix)
}

/// The `to` backend in `dir`, created private as the host creates it.
fn native_directory(
    dir: &Path,
    to: BackendKind,
    durability: Durability,
) -> Result<DirectoryBackend<StdDir>, StoreError> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .expect("creating the store directory");
    DirectoryBackend::open(StdDir::new(dir), Some(to), durability)
}

impl Native {
    fn sessions(&mut self) -> &mut dyn Sessions {
        self.store.sessions()
    }
}

impl Front for Native {
    const LOCKS: bool = false;
    const REOPENS: bool = false;
    const PRIVATE_FILES: bool = true;

    fn open(setup: &Setup) -> Result<Self, Fail> {
        let mut config = Config::new(setup.secret.secret());
        config.max_session_bytes = setup.max_session_bytes;
        config.idle_timeout = setup.idle_timeout;
        config.max_lifetime = setup.max_lifetime;
        config.erase = setup.erase;
        let moves = NativeDestination {
            dir: setup.dir.clone(),
            durability: setup.durability,
            server: setup.server.clone(),
            config: config.clone(),
            clock: setup.clock.clone(),
        };
        let clock = setup.clock.clone();
        let store = match &setup.redis {
            Some(redis) => {
                let bucket = native_bucket(redis).map_err(native_fail)?;
                Store::in_bucket(bucket, clock, config).map_err(native_fail)?
            }
            None => {
                let backend = native_directory(&setup.dir, setup.backend, setup.durability)
                    .map_err(native_fail)?;
                Store::in_directory(backend, clock, config).map_err(native_fail)?
            }
        };
        Ok(Native { store, moves })
    }

    fn create_text(&mut self, text: &str) -> Result<(), Fail> {
        let session = parse_session(text)?;
        self.sessions().create(&session).map_err(native_fail)
    }

    fn set_text(&mut self, text: &str) -> Result<(), Fail> {
        let session = parse_session(text)?;
        self.sessions().set(&session).map_err(native_fail)
    }

    fn set_if_unchanged(&mut self, doc: &Value, expected: &Value) -> Result<bool, Fail> {
        let session = parse_session(&doc.to_string())?;
        (self.sessions())
            .set_if_unchanged(&session, &expected.to_string())
            .map_err(native_fail)
    }

    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        let session = self.sessions().get(id).map_err(native_fail)?;
        Ok(session.as_ref().map(value))
    }

    fn touch_until(&mut self, id: &str, expires_at: u64) -> Result<Option<Value>, Fail> {
        let session = (self.sessions())
            .touch(id, Some(expires_at))
            .map_err(native_fail)?;
        Ok(session.as_ref().map(value))
    }

    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        let session = self.sessions().touch(id, None).map_err(native_fail)?;
        Ok(session.as_ref().map(value))
    }

    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail> {
        let patch: SessionPatch = parse(patch)?;
        Ok(value(
            &self.sessions().update(id, patch).map_err(native_fail)?,
        ))
    }

    fn delete(&mut self, id: &str) -> Result<bool, Fail> {
        self.sessions().delete(id).map_err(native_fail)
    }

    fn cleanup(&mut self) -> Result<u64, Fail> {
        self.sessions().cleanup().map_err(native_fail)
    }

    fn page_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdsPage, Fail> {
        let page = self
            .sessions()
            .list_ids(after, limit)
            .map_err(native_fail)?;
        Ok((page.ids, page.next))
    }

    fn page(&mut self, after: Option<&str>, limit: u32) -> Result<Page, Fail> {
        let page = self.sessions().list(after, limit).map_err(native_fail)?;
        Ok((page.sessions.iter().map(value).collect(), page.next))
    }

    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail> {
        let sessions = self.sessions().user_sessions(user).map_err(native_fail)?;
        Ok(sessions.iter().map(value).collect())
    }

    fn count(&mut self) -> Result<u64, Fail> {
        self.sessions().count().map_err(native_fail)
    }

    fn clear(&mut self) -> Result<u64, Fail> {
        self.sessions().clear().map_err(native_fail)
    }

    fn revoke_user(&mut self, user: &str) -> Result<u64, Fail> {
        self.sessions().revoke_user(user).map_err(native_fail)
    }

    fn check(&mut self) -> Result<Value, Fail> {
        let report = self.sessions().check().map_err(native_fail)?;
        Ok(serde_json::to_value(report).expect("a report serializes"))
    }

    fn add_key(&mut self, secret: &TestSecret) -> Result<u32, Fail> {
        self.sessions()
            .add_key(&secret.secret())
            .map_err(native_fail)
    }

    fn keys(&mut self) -> Result<Value, Fail> {
        let keys = self.sessions().keys().map_err(native_fail)?;
        Ok(serde_json::to_value(keys).expect("keys serialize"))
    }

    fn rekey(&mut self) -> Result<u64, Fail> {
        let mut total = 0;
        loop {
            let step = self.sessions().rekey(7).map_err(native_fail)?;
            total += step.rekeyed;
            if step.remaining == 0 {
                return Ok(total);
            }
        }
    }

    fn retire_key(&mut self, id: u32) -> Result<(), Fail> {
        self.sessions().retire_key(id).map_err(native_fail)
    }

    fn hold_syncs(&mut self) -> Result<(), Fail> {
        self.sessions().hold_syncs();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Fail> {
        self.sessions().flush().map_err(native_fail)
    }

    fn compact(&mut self) -> Result<u64, Fail> {
        let mut reclaimed = 0;
        loop {
            let step = self.sessions().compact(2).map_err(native_fail)?;
            reclaimed += step.reclaimed;
            if step.remaining == 0 {
                return Ok(reclaimed);
            }
        }
    }

    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail> {
        let moves = self.moves.clone();
        let bucket = moves.server.map(|server| {
            Box::new(move || native_bucket(&server)) as OpenBucket<'_, session_vault::RedisBucket>
        });
        let (dir, durability) = (moves.dir, moves.durability);
        let directory: OpenDirectory<'_, StdDir> =
            Box::new(move |to| native_directory(&dir, to, durability));
        let destination = Destination {
            bucket,
            directory: Some(directory),
            clock: moves.clock,
            config: moves.config,
        };
        self.store.migrate(to, destination).map_err(native_fail)
    }

    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail> {
        let legacy = LegacyStore::open(StdDir::new(from), secret).map_err(native_fail)?;
        let files = legacy.files().map_err(native_fail)?;
        Ok(legacy
            .import_into(self.sessions(), &files)
            .map_err(native_fail)?
            .into())
    }
}
