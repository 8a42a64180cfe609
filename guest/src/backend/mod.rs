//! The storage medium behind the store: a [`Backend`] holds opaque encrypted blobs by
//! session id, and knows nothing of keys, expiry or users. [`Files`] is the first
//! backend: one file per session in a directory.

pub mod log;

use std::io;

use crate::document::id;
use crate::error::StoreError;
use crate::fs::{Dir, Entry};
use crate::keyring;
use crate::seal::crypto;

/// What a listing of the medium found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Ids that have a session blob.
    pub ids: Vec<String>,
    /// Ids that have an access stamp (with or without a blob).
    pub stamps: Vec<String>,
    /// Entries that are not the backend's own: never read, moved or removed.
    pub foreign: u64,
}

/// Sealed index summaries (see [`crate::seal::summary`]) a backend gathered while opening, so
/// the store can build its index without reading every session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summaries {
    /// Every id with a blob, with the sealed summary stored beside it (`None`: none was,
    /// e.g. a blob written before summaries existed).
    pub sessions: Vec<(String, Option<Vec<u8>>)>,
    /// The access stamp of each id that has one.
    pub stamps: Vec<(String, Vec<u8>)>,
    /// Entries that are not the backend's own.
    pub foreign: u64,
}

/// Where encrypted sessions are kept.
pub trait Backend {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Removes what interrupted writes left behind; returns how many leftovers it removed.
    fn recover(&mut self) -> Result<u64, StoreError>;
    /// Reads the store metadata; `Ok(None)` for a new store.
    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the store metadata durably.
    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Reads the blob of `id` (at most `limit` bytes); `Ok(None)` if there is none.
    fn read(&mut self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the blob of `id` atomically, as durably as the backend is configured.
    /// `summary` is its sealed index summary: a backend that [keeps
    /// summaries](Backend::keeps_summaries) stores it with the blob, others ignore it.
    fn write(&mut self, id: &str, blob: &[u8], summary: &[u8]) -> Result<(), StoreError>;
    /// Removes the blob of `id`, as durably as the backend is configured; `Ok(false)` if
    /// there was none.
    fn remove(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Lists every id with a blob.
    fn list(&mut self) -> Result<Listing, StoreError>;
    /// Reads the access stamp of `id`; `Ok(None)` if there is none. A stamp that cannot
    /// be a stamp (too long, not a regular file) is `Corrupted`.
    fn read_stamp(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes the access stamp of `id` in place, without syncing: a crash may leave it
    /// torn or missing, so readers must treat it as advisory.
    fn write_stamp(&mut self, id: &str, stamp: &[u8]) -> Result<(), StoreError>;
    /// Removes the access stamp of `id`, without syncing; `Ok(false)` if there was none.
    fn remove_stamp(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Moves the blob of `id` out of the store, keeping it for inspection.
    fn quarantine(&mut self, id: &str) -> Result<(), StoreError>;
    /// How many blobs have been quarantined.
    fn quarantined(&mut self) -> Result<u64, StoreError>;
    /// Reclaims the space of removed and replaced blobs, if the medium keeps any.
    fn compact(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether [`Backend::write`]'s summary is stored (so worth sealing).
    fn keeps_summaries(&self) -> bool {
        false
    }
    /// The summaries gathered at open, once; `None` if this backend keeps none, and the
    /// store must read every blob to index it.
    fn take_summaries(&mut self) -> Option<Summaries> {
        None
    }
}

/// Which backend keeps a store's sessions; recorded in its metadata when it is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// One file per session ([`Files`]).
    Files,
    /// Records appended to segment files ([`crate::backend::log::Log`]): the default for new stores.
    #[default]
    Log,
}

impl BackendKind {
    /// The name used in the metadata, the WIT and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Files => "files",
            BackendKind::Log => "log",
        }
    }

    /// The error of opening a store that keeps its sessions in `self` as `requested`.
    pub fn mismatch(self, requested: BackendKind) -> StoreError {
        StoreError::InvalidInput(format!(
            "this store keeps its sessions in the {} backend, not {}; `migrate` moves it",
            self.name(),
            requested.name()
        ))
    }
}

/// How much of a session write is on disk when it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The file and the directory are synced before a write or removal returns: an
    /// acknowledged change survives a crash or a power loss.
    #[default]
    Durable,
    /// Nothing is synced (what the original store did). A process crash loses nothing the
    /// OS accepted; a power loss or kernel crash can lose recent changes, or leave a
    /// recently written file empty (then quarantined at open as damaged).
    Relaxed,
}

/// The extension of session files.
pub const SESSION_EXT: &str = ".svs";
/// The extension of access stamps.
pub const STAMP_EXT: &str = ".sva";
/// The subdirectory that holds quarantined files.
pub const QUARANTINE_DIR: &str = "quarantine";
const TEMP_EXT: &str = ".tmp";

/// One encrypted file per session, `<id>.svs`, and its access stamp `<id>.sva`, in a
/// directory.
///
/// Every replacement of a session file is: write a uniquely named temporary file
/// `<name>.<16 hex>.tmp` in the same directory, sync it, rename it over the target, sync
/// the directory. Stamps are written in place, unsynced.
#[derive(Debug)]
pub struct Files<D> {
    dir: D,
    durability: Durability,
}

impl<D: Dir> Files<D> {
    /// Uses `dir` as the store directory, with durable writes.
    pub fn new(dir: D) -> Self {
        Files::with_durability(dir, Durability::Durable)
    }

    /// Uses `dir` as the store directory; session writes and removals are as durable as
    /// `durability` says (the metadata and quarantine moves are always synced).
    pub fn with_durability(dir: D, durability: Durability) -> Self {
        Files { dir, durability }
    }

    /// The directory this backend writes to.
    pub fn dir(&self) -> &D {
        &self.dir
    }

    /// How durable its writes are.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn replace(&self, name: &str, bytes: &[u8], durability: Durability) -> Result<(), StoreError> {
        replace(&self.dir, name, bytes, durability)
    }
}

/// Replaces `name` in `dir` with `bytes`: a unique temporary file, synced if durable,
/// renamed over `name`, then the directory synced if durable.
pub(crate) fn replace<D: Dir>(
    dir: &D,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> Result<(), StoreError> {
    let durable = durability == Durability::Durable;
    let temp = temp_name(name)?;
    dir.write_new(&temp, bytes, durable)
        .and_then(|()| dir.rename(&temp, name))
        .map_err(|e| {
            // Best effort: a temp file left behind is removed at the next open anyway.
            let _ = dir.remove(&temp);
            StoreError::io(format!("writing {name}"), e)
        })?;
    if !durable {
        return Ok(());
    }
    dir.sync("")
        .map_err(|e| StoreError::io(format!("syncing the directory after writing {name}"), e))
}

/// Removes the temporary files interrupted writes left in `dir`; returns how many.
pub(crate) fn remove_leftovers<D: Dir>(dir: &D, entries: &[Entry]) -> Result<u64, StoreError> {
    let mut removed = 0;
    for entry in entries {
        if entry.is_file && is_temp_name(&entry.name) {
            dir.remove(&entry.name)
                .map_err(|e| StoreError::io(format!("removing leftover {}", entry.name), e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        dir.sync("")
            .map_err(|e| StoreError::io("syncing the directory after recovery", e))?;
    }
    Ok(removed)
}

/// Reads the store metadata from `dir`; `Ok(None)` for a new store.
pub(crate) fn read_meta<D: Dir>(dir: &D) -> Result<Option<Vec<u8>>, StoreError> {
    dir.read(keyring::FILE_NAME, keyring::MAX_LEN)
        .map_err(|e| StoreError::io(format!("reading {}", keyring::FILE_NAME), e))
}

/// Lists the store directory itself.
pub(crate) fn root_entries<D: Dir>(dir: &D) -> Result<Vec<Entry>, StoreError> {
    dir.entries("")
        .map_err(|e| StoreError::io("listing the store directory", e))?
        .ok_or_else(|| {
            StoreError::io(
                "listing the store directory",
                io::Error::new(io::ErrorKind::NotFound, "the store directory is gone"),
            )
        })
}

impl<D: Dir> Backend for Files<D> {
    fn kind(&self) -> BackendKind {
        BackendKind::Files
    }

    fn recover(&mut self) -> Result<u64, StoreError> {
        remove_leftovers(&self.dir, &self.entries()?)
    }

    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        read_meta(&self.dir)
    }

    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.replace(keyring::FILE_NAME, bytes, Durability::Durable)
    }

    fn read(&mut self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let name = session_name(id);
        match self.dir.read(&name, limit) {
            Ok(bytes) => Ok(bytes),
            // Too long, a symlink, a directory: not a session file we wrote.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(StoreError::Corrupted(format!("{name}: {e}")))
            }
            Err(e) => Err(StoreError::io(format!("reading {name}"), e)),
        }
    }

    fn write(&mut self, id: &str, blob: &[u8], _summary: &[u8]) -> Result<(), StoreError> {
        self.replace(&session_name(id), blob, self.durability)
    }

    fn remove(&mut self, id: &str) -> Result<bool, StoreError> {
        let name = session_name(id);
        let existed = self
            .dir
            .remove(&name)
            .map_err(|e| StoreError::io(format!("removing {name}"), e))?;
        if existed && self.durability == Durability::Durable {
            self.dir.sync("").map_err(|e| {
                StoreError::io(format!("syncing the directory after removing {name}"), e)
            })?;
        }
        Ok(existed)
    }

    fn list(&mut self) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for entry in self.entries()? {
            let stamp = stamp_id(&entry.name);
            match session_id(&entry.name) {
                Some(id) if entry.is_file => listing.ids.push(id.to_owned()),
                _ if entry.is_file && stamp.is_some() => {
                    listing.stamps.extend(stamp.map(str::to_owned));
                }
                _ if entry.name == keyring::FILE_NAME && entry.is_file => {}
                _ if entry.name == QUARANTINE_DIR && !entry.is_file => {}
                _ => listing.foreign += 1,
            }
        }
        listing.ids.sort_unstable();
        listing.stamps.sort_unstable();
        Ok(listing)
    }

    fn read_stamp(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = stamp_name(id);
        match self.dir.read(&name, crate::seal::stamp::LEN as u64) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(StoreError::Corrupted(format!("{name}: {e}")))
            }
            Err(e) => Err(StoreError::io(format!("reading {name}"), e)),
        }
    }

    fn write_stamp(&mut self, id: &str, stamp: &[u8]) -> Result<(), StoreError> {
        let name = stamp_name(id);
        self.dir
            .overwrite(&name, stamp)
            .map_err(|e| StoreError::io(format!("writing {name}"), e))
    }

    fn remove_stamp(&mut self, id: &str) -> Result<bool, StoreError> {
        let name = stamp_name(id);
        self.dir
            .remove(&name)
            .map_err(|e| StoreError::io(format!("removing {name}"), e))
    }

    fn quarantine(&mut self, id: &str) -> Result<(), StoreError> {
        let name = session_name(id);
        let mut suffix = [0u8; 8];
        crypto::random(&mut suffix)?;
        let target = format!("{QUARANTINE_DIR}/{name}.{}", hex::encode(suffix));
        let context = || format!("moving {name} to {QUARANTINE_DIR}/");
        self.dir
            .create_dir(QUARANTINE_DIR)
            .and_then(|()| self.dir.rename(&name, &target))
            .and_then(|()| self.dir.sync(QUARANTINE_DIR))
            .and_then(|()| self.dir.sync(""))
            .map_err(|e| StoreError::io(context(), e))
    }

    fn quarantined(&mut self) -> Result<u64, StoreError> {
        quarantined(&self.dir)
    }
}

impl<D: Dir> Files<D> {
    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        root_entries(&self.dir)
    }
}

/// Removes every session file and stamp of the `files` layout from `dir` (after a
/// migration away from it, or to undo an interrupted one towards it). Returns how many.
pub(crate) fn discard_files<D: Dir>(dir: &D) -> Result<u64, StoreError> {
    let mut removed = 0;
    for entry in root_entries(dir)? {
        let ours = session_id(&entry.name).or_else(|| stamp_id(&entry.name));
        if entry.is_file && ours.is_some() {
            dir.remove(&entry.name)
                .map_err(|e| StoreError::io(format!("removing {}", entry.name), e))?;
            removed += 1;
        }
    }
    dir.sync("")
        .map_err(|e| StoreError::io("syncing the store directory", e))?;
    Ok(removed)
}

/// How many files `quarantine/` holds.
pub(crate) fn quarantined<D: Dir>(dir: &D) -> Result<u64, StoreError> {
    let entries = dir
        .entries(QUARANTINE_DIR)
        .map_err(|e| StoreError::io(format!("listing {QUARANTINE_DIR}/"), e))?;
    Ok(entries.map_or(0, |entries| entries.len() as u64))
}

/// The file name of session `id`.
pub fn session_name(id: &str) -> String {
    format!("{id}{SESSION_EXT}")
}

/// The file name of the access stamp of session `id`.
pub fn stamp_name(id: &str) -> String {
    format!("{id}{STAMP_EXT}")
}

/// The id of an access stamp's file name, if it is one.
pub fn stamp_id(name: &str) -> Option<&str> {
    name.strip_suffix(STAMP_EXT).filter(|id| id::is_valid(id))
}

/// The id of a session file name, if it is one.
pub fn session_id(name: &str) -> Option<&str> {
    name.strip_suffix(SESSION_EXT).filter(|id| id::is_valid(id))
}

fn temp_name(name: &str) -> Result<String, StoreError> {
    let mut suffix = [0u8; 8];
    crypto::random(&mut suffix)?;
    Ok(format!("{name}.{}{TEMP_EXT}", hex::encode(suffix)))
}

/// Whether `name` is a temporary file this backend writes: `<name>.<16 lowercase hex>.tmp`.
pub(crate) fn is_temp_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(TEMP_EXT) else {
        return false;
    };
    match stem.rsplit_once('.') {
        Some((base, hex)) => {
            !base.is_empty()
                && hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{StdDir, names};

    fn files() -> (tempfile::TempDir, Files<StdDir>) {
        let tmp = tempfile::tempdir().unwrap();
        let files = Files::new(StdDir::new(tmp.path()));
        (tmp, files)
    }

    #[test]
    fn write_replaces_through_a_temp_file_and_leaves_none() {
        let (tmp, mut files) = files();
        files.write("a", b"one", &[]).unwrap();
        files.write("a", b"two", &[]).unwrap();
        assert_eq!(files.read("a", 100).unwrap(), Some(b"two".to_vec()));
        assert_eq!(names(tmp.path()), vec!["a.svs"]);
    }

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_temp_name("a.svs.0123456789abcdef.tmp"));
        assert!(is_temp_name("session-vault.json.0123456789abcdef.tmp"));
        assert!(!is_temp_name("a.svs.0123456789ABCDEF.tmp"));
        assert!(!is_temp_name("a.svs.0123.tmp"));
        assert!(!is_temp_name("notes.tmp"));
        assert!(!is_temp_name(".0123456789abcdef.tmp"));
    }

    #[test]
    fn recover_removes_only_our_leftovers() {
        let (tmp, mut files) = files();
        std::fs::write(tmp.path().join("a.svs.0123456789abcdef.tmp"), b"x").unwrap();
        std::fs::write(tmp.path().join("notes.tmp"), b"x").unwrap();
        assert_eq!(files.recover().unwrap(), 1);
        assert_eq!(names(tmp.path()), vec!["notes.tmp"]);
    }

    #[test]
    fn list_separates_sessions_from_foreign_entries() {
        let (tmp, mut files) = files();
        files.write("b", b"x", &[]).unwrap();
        files.write("a", b"x", &[]).unwrap();
        files.write_meta(b"{}").unwrap();
        std::fs::write(tmp.path().join("README"), b"x").unwrap();
        std::fs::write(tmp.path().join("x.session"), b"x").unwrap();
        std::fs::write(tmp.path().join("bad id.svs"), b"x").unwrap();
        std::fs::create_dir(tmp.path().join("c.svs")).unwrap();
        files.write_stamp("a", b"x").unwrap();
        files.write_stamp("z", b"x").unwrap();
        std::fs::create_dir(tmp.path().join("d.sva")).unwrap();
        let listing = files.list().unwrap();
        assert_eq!(listing.ids, vec!["a", "b"]);
        assert_eq!(listing.stamps, vec!["a", "z"]);
        assert_eq!(listing.foreign, 5);
    }

    #[test]
    fn stamps_are_written_in_place_and_bounded_on_read() {
        let (tmp, mut files) = files();
        files.write_stamp("a", b"first").unwrap();
        files.write_stamp("a", b"2nd").unwrap();
        assert_eq!(files.read_stamp("a").unwrap(), Some(b"2ndst".to_vec()));
        std::fs::write(
            tmp.path().join("a.sva"),
            vec![0; crate::seal::stamp::LEN + 1],
        )
        .unwrap();
        assert!(matches!(
            files.read_stamp("a"),
            Err(StoreError::Corrupted(_))
        ));
        assert!(files.remove_stamp("a").unwrap());
        assert!(!files.remove_stamp("a").unwrap());
        assert_eq!(files.read_stamp("a").unwrap(), None);
    }

    #[test]
    fn quarantine_moves_and_never_overwrites() {
        let (tmp, mut files) = files();
        files.write("a", b"1", &[]).unwrap();
        files.quarantine("a").unwrap();
        files.write("a", b"2", &[]).unwrap();
        files.quarantine("a").unwrap();
        assert_eq!(files.quarantined().unwrap(), 2);
        assert_eq!(files.read("a", 10).unwrap(), None);
        let mut kept: Vec<Vec<u8>> = std::fs::read_dir(tmp.path().join("quarantine"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        kept.sort();
        assert_eq!(kept, vec![b"1".to_vec(), b"2".to_vec()]);
    }
}
