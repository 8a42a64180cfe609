//! What the benchmark measures, behind one trait: the component through the host API,
//! the same core compiled natively, and the raw I/O floor of the same file layout.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use session_vault::{
    BackendKind, Durability, ManualClock, Secret, Session, SessionPatch, VaultOptions,
};

use super::native::Native;
pub use super::operations::Target;

/// Which target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// (a) the component in wasmtime, through the host API.
    Component,
    /// (b) the same store core compiled natively.
    Native,
    /// (c) plain std::fs doing the same reads, writes, syncs and renames (or appends),
    /// without crypto.
    Floor,
}

impl Kind {
    /// Every target, in the order the report prints them.
    pub const ALL: [Kind; 3] = [Kind::Component, Kind::Native, Kind::Floor];

    /// The report's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Native => "native",
            Kind::Floor => "floor",
        }
    }

    /// Opens this target on a new store of `backend` in `dir`, or (`redis`) in bucket
    /// `redis.1` of the server at `redis.0`.
    pub fn open(
        self,
        dir: &Path,
        backend: BackendKind,
        durability: Durability,
        clock: &ManualClock,
        redis: Option<(&str, &str)>,
    ) -> anyhow::Result<Box<dyn Target>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = vec![0x5a; 32];
        if let Some((url, prefix)) = redis {
            return Ok(match self {
                Kind::Component => {
                    let options = VaultOptions::new()
                        .clock(clock.clone())
                        .redis(url)
                        .prefix(prefix);
                    let vault = options.open(dir, Secret::RawKey(key.clone()))?;
                    Box::new(Component {
                        vault: Some(vault),
                        options,
                        dir: dir.to_owned(),
                        key,
                    })
                }
                Kind::Native => Box::new(Native::in_bucket(url, prefix, clock, key)?),
                Kind::Floor => Box::new(super::redis::Floor::open(url, prefix, clock)?),
            });
        }
        Ok(match self {
            Kind::Component => {
                let options = VaultOptions::new()
                    .clock(clock.clone())
                    .durability(durability)
                    .backend(backend);
                let vault = options.open(dir, Secret::RawKey(key.clone()))?;
                Box::new(Component {
                    vault: Some(vault),
                    options,
                    dir: dir.to_owned(),
                    key,
                })
            }
            Kind::Native => Box::new(Native::in_directory(dir, backend, durability, clock, key)?),
            Kind::Floor if backend == BackendKind::Log => Box::new(LogFloor::new(
                dir,
                durability == Durability::Durable,
                clock,
            )?),
            Kind::Floor => Box::new(Floor {
                dir: dir.to_owned(),
                durable: durability == Durability::Durable,
                clock: clock.clone(),
                sessions: HashMap::new(),
                users: HashMap::new(),
                serial: 0,
            }),
        })
    }
}

struct Component {
    vault: Option<session_vault::Vault>,
    options: VaultOptions,
    dir: PathBuf,
    key: Vec<u8>,
}

impl Component {
    fn vault(&mut self) -> anyhow::Result<&mut session_vault::Vault> {
        self.vault.as_mut().context("the vault is closed")
    }
}

impl Target for Component {
    fn create(&mut self, session: &Session) -> anyhow::Result<()> {
        Ok(self.vault()?.create(session)?)
    }
    fn get(&mut self, id: &str) -> anyhow::Result<()> {
        self.vault()?
            .get(id)?
            .context("a benchmark session is missing")?;
        Ok(())
    }
    fn update(&mut self, id: &str, patch: &SessionPatch) -> anyhow::Result<()> {
        self.vault()?.update(id, patch)?;
        Ok(())
    }
    fn touch(&mut self, id: &str) -> anyhow::Result<()> {
        self.vault()?
            .touch(id)?
            .context("a benchmark session is missing")?;
        Ok(())
    }
    fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        self.vault()?.delete(id)?;
        Ok(())
    }
    fn user_sessions(&mut self, user: &str) -> anyhow::Result<usize> {
        Ok(self.vault()?.user_sessions(user)?.len())
    }
    fn cleanup(&mut self) -> anyhow::Result<u64> {
        Ok(self.vault()?.cleanup()?)
    }
    fn close(&mut self) {
        self.vault = None;
    }
    fn reopen(&mut self) -> anyhow::Result<()> {
        // Closing first releases the directory lock.
        self.vault = None;
        let secret = Secret::RawKey(self.key.clone());
        self.vault = Some(self.options.open(&self.dir, secret)?);
        Ok(())
    }
}

/// The file layout of the `files` backend done with plain std::fs: the same file sizes,
/// temp-file-and-rename replacements, syncs, stamps and removals; no crypto, no JSON
/// parsing, no component. What the store costs above this is its own overhead.
struct Floor {
    dir: PathBuf,
    durable: bool,
    clock: ManualClock,
    /// id → (file length, expiry, user).
    sessions: HashMap<String, (usize, u64, String)>,
    users: HashMap<String, Vec<String>>,
    serial: u64,
}

/// A session file's overhead over its JSON: header and tag.
const FILE_OVERHEAD: usize = 38;
const STAMP_LEN: usize = 66;

impl Floor {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn replace(&mut self, id: &str, len: usize) -> anyhow::Result<()> {
        self.serial += 1;
        let temp = self.path(&format!("{id}.svs.{:016x}.tmp", self.serial));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(&vec![0x17; len])?;
        if self.durable {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temp, self.path(&format!("{id}.svs")))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> anyhow::Result<()> {
        if self.durable {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    fn read(&self, id: &str) -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(self.path(&format!("{id}.svs")))?)
    }

    fn remove(&mut self, id: &str) -> anyhow::Result<()> {
        std::fs::remove_file(self.path(&format!("{id}.svs")))?;
        if let Some((_, _, user)) = self.sessions.remove(id)
            && let Some(ids) = self.users.get_mut(&user)
        {
            ids.retain(|other| other != id);
        }
        self.sync_dir()
    }
}

impl Target for Floor {
    fn create(&mut self, session: &Session) -> anyhow::Result<()> {
        let len = serde_json::to_vec(session)?.len() + FILE_OVERHEAD;
        let id = session.id().to_owned();
        self.replace(&id, len)?;
        let user = session.user().unwrap_or_default().to_owned();
        self.users.entry(user.clone()).or_default().push(id.clone());
        self.sessions.insert(id, (len, session.expires_at(), user));
        Ok(())
    }
    fn get(&mut self, id: &str) -> anyhow::Result<()> {
        self.read(id).map(drop)
    }
    fn update(&mut self, id: &str, _patch: &SessionPatch) -> anyhow::Result<()> {
        let len = self.read(id)?.len();
        self.replace(id, len)
    }
    fn touch(&mut self, id: &str) -> anyhow::Result<()> {
        self.read(id)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(&format!("{id}.sva")))?
            .write_all(&[0x2a; STAMP_LEN])?;
        Ok(())
    }
    fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        self.remove(id)
    }
    fn user_sessions(&mut self, user: &str) -> anyhow::Result<usize> {
        let ids = self.users.get(user).cloned().unwrap_or_default();
        for id in &ids {
            self.read(id)?;
        }
        Ok(ids.len())
    }
    fn cleanup(&mut self) -> anyhow::Result<u64> {
        let now = session_vault::Clock::now(&self.clock);
        let expired: Vec<String> = (self.sessions.iter())
            .filter(|(_, (_, expires_at, _))| now >= *expires_at)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove(id)?;
        }
        Ok(expired.len() as u64)
    }
    fn close(&mut self) {}
    fn reopen(&mut self) -> anyhow::Result<()> {
        // What the files backend's open does: list the directory, read every session file.
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".svs")) {
                self.read(id)?;
            }
        }
        Ok(())
    }
}

/// The `log` backend's layout done with plain std::fs: one file kept open, each write an
/// append of a record of the same size (synced when durable), each read a positioned read.
struct LogFloor {
    path: PathBuf,
    file: std::fs::File,
    durable: bool,
    clock: ManualClock,
    len: u64,
    /// id → (offset, record length, expiry, user).
    sessions: HashMap<String, (u64, usize, u64, String)>,
    users: HashMap<String, Vec<String>>,
}

/// A log record's overhead over its payload: header, then the id.
const RECORD_HEADER: usize = 22;

impl LogFloor {
    fn new(dir: &Path, durable: bool, clock: &ManualClock) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("log"))?;
        let path = dir.join("log/0000000000000001.seg");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(LogFloor {
            path,
            file,
            durable,
            clock: clock.clone(),
            len: 0,
            sessions: HashMap::new(),
            users: HashMap::new(),
        })
    }

    fn append(&mut self, len: usize, sync: bool) -> anyhow::Result<u64> {
        use std::os::unix::fs::FileExt;
        let offset = self.len;
        self.file.write_all_at(&vec![0x17; len], offset)?;
        self.len += len as u64;
        if sync && self.durable {
            self.file.sync_data()?;
        }
        Ok(offset)
    }

    fn read(&self, id: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::FileExt;
        let (offset, len, _, _) = self
            .sessions
            .get(id)
            .context("a benchmark session is missing")?;
        let mut bytes = vec![0; *len];
        self.file.read_exact_at(&mut bytes, *offset)?;
        Ok(())
    }

    fn put(&mut self, id: &str, len: usize, expires_at: u64, user: String) -> anyhow::Result<()> {
        let offset = self.append(len, true)?;
        let previous = self
            .sessions
            .insert(id.to_owned(), (offset, len, expires_at, user.clone()));
        if previous.is_none() {
            self.users.entry(user).or_default().push(id.to_owned());
        }
        Ok(())
    }

    fn tombstone(&mut self, id: &str) -> anyhow::Result<()> {
        self.append(RECORD_HEADER + id.len(), true)?;
        if let Some((_, _, _, user)) = self.sessions.remove(id)
            && let Some(ids) = self.users.get_mut(&user)
        {
            ids.retain(|other| other != id);
        }
        Ok(())
    }
}

impl Target for LogFloor {
    fn create(&mut self, session: &Session) -> anyhow::Result<()> {
        let id = session.id();
        let len = RECORD_HEADER + id.len() + serde_json::to_vec(session)?.len() + FILE_OVERHEAD;
        self.put(
            id,
            len,
            session.expires_at(),
            session.user().unwrap_or_default().to_owned(),
        )
    }
    fn get(&mut self, id: &str) -> anyhow::Result<()> {
        self.read(id)
    }
    fn update(&mut self, id: &str, _patch: &SessionPatch) -> anyhow::Result<()> {
        self.read(id)?;
        let (_, len, expires_at, user) = self.sessions.get(id).cloned().context("missing")?;
        self.put(id, len, expires_at, user)
    }
    fn touch(&mut self, id: &str) -> anyhow::Result<()> {
        self.read(id)?;
        self.append(RECORD_HEADER + id.len() + STAMP_LEN, false)?;
        Ok(())
    }
    fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        self.tombstone(id)
    }
    fn user_sessions(&mut self, user: &str) -> anyhow::Result<usize> {
        let ids = self.users.get(user).cloned().unwrap_or_default();
        for id in &ids {
            self.read(id)?;
        }
        Ok(ids.len())
    }
    fn cleanup(&mut self) -> anyhow::Result<u64> {
        let now = session_vault::Clock::now(&self.clock);
        let expired: Vec<String> = (self.sessions.iter())
            .filter(|(_, (_, _, expires_at, _))| now >= *expires_at)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.tombstone(id)?;
        }
        Ok(expired.len() as u64)
    }
    fn close(&mut self) {}
    fn reopen(&mut self) -> anyhow::Result<()> {
        // What the log backend's open does: read every segment whole.
        std::fs::read(&self.path)?;
        Ok(())
    }
}
