//! The `files` backend: one encrypted file per session in the store directory.

use std::io;

use super::disk::{self, quarantined, remove_leftovers, root_entries};
use super::layout::{
    LOCK_FILE, META_FILE, QUARANTINE_DIR, ledger_generation, session_id, session_name, stamp_id,
    stamp_name,
};
use super::ledger::{LedgerFile, LedgerFiles, LedgerIo};
use super::{Backend, BackendKind, Durability, Listing, Usage};
use crate::error::StoreError;
use crate::fs::{Dir, Entry};
use crate::seal::crypto;
use crate::seal::format;

/// One encrypted file per session, `<id>.svs`, and its access stamp `<id>.sva`, in a
/// directory.
///
/// Every replacement of a session file is: write a uniquely named temporary file
/// `<name>.<16 hex>.tmp` in the same directory, sync it, rename it over the target, sync
/// the directory. Stamps are written in place, unsynced.
pub struct Files<D: Dir> {
    dir: D,
    durability: Durability,
    ledger: LedgerFile<D::File>,
}

impl<D: Dir> Files<D> {
    /// Uses `dir` as the store directory, with durable writes.
    pub fn new(dir: D) -> Self {
        Files::with_durability(dir, Durability::Durable)
    }

    /// Uses `dir` as the store directory; session writes and removals are as durable as
    /// `durability` says (the metadata and quarantine moves are always synced).
    pub fn with_durability(dir: D, durability: Durability) -> Self {
        Files {
            dir,
            durability,
            ledger: LedgerFile::default(),
        }
    }

    /// The directory this backend writes to.
    pub fn dir(&self) -> &D {
        &self.dir
    }

    fn replace(&self, name: &str, bytes: &[u8], durability: Durability) -> Result<(), StoreError> {
        disk::replace(&self.dir, name, bytes, durability)
    }
}

impl<D: Dir> Backend for Files<D> {
    fn kind(&self) -> BackendKind {
        BackendKind::Files
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn ledger(&mut self) -> Box<dyn LedgerIo + '_> {
        Box::new(LedgerFiles {
            dir: &self.dir,
            file: &mut self.ledger,
            durability: self.durability,
        })
    }

    fn recover(&mut self) -> Result<u64, StoreError> {
        remove_leftovers(&self.dir, &self.entries()?)
    }

    fn read_meta(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        disk::read_meta(&self.dir)
    }

    fn write_meta(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.replace(META_FILE, bytes, Durability::Durable)
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
                _ if (entry.name == META_FILE || entry.name == LOCK_FILE) && entry.is_file => {}
                _ if ledger_generation(&entry.name).is_some() && entry.is_file => {}
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
        crate::fs::create_dirs(&self.dir, QUARANTINE_DIR)
            .and_then(|()| self.dir.rename(&name, &target))
            .and_then(|()| self.dir.sync(QUARANTINE_DIR))
            .and_then(|()| self.dir.sync(""))
            .map_err(|e| StoreError::io(context(), e))
    }

    fn quarantined(&mut self) -> Result<u64, StoreError> {
        quarantined(&self.dir)
    }

    /// Syncs every session file and stamp, then the directory.
    fn flush(&mut self) -> Result<(), StoreError> {
        for name in own_files(&self.dir)? {
            let context = || format!("syncing {name}");
            if let Some(file) = self
                .dir
                .open_file(&name, false)
                .map_err(|e| StoreError::io(context(), e))?
            {
                self.dir
                    .sync_file(&file)
                    .map_err(|e| StoreError::io(context(), e))?;
            }
        }
        self.ledger.sync(&self.dir)?;
        self.dir
            .sync("")
            .map_err(|e| StoreError::io("syncing the store directory", e))
    }

    /// A removed or replaced session file is gone at once (unlinked), so nothing is dead;
    /// the oldest key is read from the headers of every session file and stamp.
    fn usage(&mut self) -> Result<Usage, StoreError> {
        let mut key_ids = std::collections::BTreeSet::new();
        for name in own_files(&self.dir)? {
            // Only the header is read.
            let context = || format!("reading {name}");
            let header = match self
                .dir
                .open_file(&name, false)
                .map_err(|e| StoreError::io(context(), e))?
            {
                Some(file) => Some(
                    self.dir
                        .read_at(&file, 0, format::HEADER_LEN)
                        .map_err(|e| StoreError::io(context(), e))?,
                ),
                // Removed since the listing.
                None => None,
            };
            if let Some(key_id) = header.as_deref().and_then(format::key_id) {
                key_ids.insert(key_id);
            }
        }
        Ok(Usage {
            dead_bytes: 0,
            key_ids,
        })
    }
}

impl<D: Dir> Files<D> {
    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        root_entries(&self.dir)
    }
}

/// The session files and stamps (regular files with our names) in the store directory.
fn own_files<D: Dir>(dir: &D) -> Result<Vec<String>, StoreError> {
    Ok((root_entries(dir)?.into_iter())
        .filter(|e| e.is_file && session_id(&e.name).or_else(|| stamp_id(&e.name)).is_some())
        .map(|e| e.name)
        .collect())
}

/// Removes every session file and stamp of the `files` layout from `dir` (after a
/// migration away from it, or to undo an interrupted one towards it). Returns how many.
pub(crate) fn discard<D: Dir>(dir: &D) -> Result<u64, StoreError> {
    let mut removed = 0;
    for name in own_files(dir)? {
        dir.remove(&name)
            .map_err(|e| StoreError::io(format!("removing {name}"), e))?;
        removed += 1;
    }
    dir.sync("")
        .map_err(|e| StoreError::io("syncing the store directory", e))?;
    Ok(removed)
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
        // A host's lock file is not foreign.
        std::fs::write(tmp.path().join(LOCK_FILE), b"{}").unwrap();
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
