//! The version ledger's files, `session-vault.<16 hex>.ledger` in the store directory,
//! one per generation: the I/O both backends share. What the bytes mean is
//! [`crate::seal::ledger`]'s; when they are written is the store's.
//!
//! The three ledger modules: the bytes (`seal::ledger`), these files ([`LedgerFiles`]), and
//! what the open store knows (`directory_store::ledger`, its `LedgerState`).

use super::Durability;
use super::disk::{self, root_entries};
use super::layout::{QUARANTINE_DIR, ledger_generation, ledger_name};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::seal::crypto;

/// The ledger files of a store directory, as the store reads and writes them.
pub trait LedgerIo {
    /// The length of ledger `generation`; `None` if it does not exist.
    fn len(&mut self, generation: u64) -> Result<Option<u64>, StoreError>;
    /// Up to `len` bytes at `offset` of ledger `generation` (fewer at its end).
    fn read(&mut self, generation: u64, offset: u64, len: usize) -> Result<Vec<u8>, StoreError>;
    /// Writes `bytes` at `offset` of ledger `generation`, synced if the backend's writes are
    /// durable.
    fn write(&mut self, generation: u64, offset: u64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Creates ledger `generation` holding `bytes`, always durably (temporary file, sync,
    /// rename, directory sync).
    fn create(&mut self, generation: u64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Removes ledger `generation` (an old one, or one the metadata never named), or
    /// moves it to `quarantine/` if `keep` (a damaged one, kept for inspection).
    fn retire(&mut self, generation: u64, keep: bool) -> Result<(), StoreError>;
    /// The generations of the ledger files in the store directory, in order.
    fn generations(&mut self) -> Result<Vec<u64>, StoreError>;
    /// Syncs what unsynced writes left in the open ledger file.
    fn sync(&mut self) -> Result<(), StoreError>;
}

/// A backend's [`LedgerIo`]: its directory, its durability and its open ledger file.
pub struct LedgerFiles<'a, D: Dir> {
    /// The store directory.
    pub dir: &'a D,
    /// The backend's open ledger file.
    pub file: &'a mut LedgerFile<D::File>,
    /// How durable the backend's writes are, and so its ledger writes.
    pub durability: Durability,
}

/// The open file of the ledger generation last used.
pub struct LedgerFile<F> {
    open: Option<(u64, F)>,
}

impl<F> Default for LedgerFile<F> {
    fn default() -> Self {
        LedgerFile { open: None }
    }
}

impl<D: Dir> LedgerIo for LedgerFiles<'_, D> {
    fn len(&mut self, generation: u64) -> Result<Option<u64>, StoreError> {
        self.file.len(self.dir, generation)
    }
    fn read(&mut self, generation: u64, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        self.file.read(self.dir, generation, offset, len)
    }
    fn write(&mut self, generation: u64, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        (self.file).write(self.dir, generation, offset, bytes, self.durability)
    }
    fn create(&mut self, generation: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.create(self.dir, generation, bytes)
    }
    fn retire(&mut self, generation: u64, keep: bool) -> Result<(), StoreError> {
        self.file.retire(self.dir, generation, keep)
    }
    fn generations(&mut self) -> Result<Vec<u64>, StoreError> {
        generations(self.dir)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        self.file.sync(self.dir)
    }
}

impl<F> LedgerFile<F> {
    /// The open file of `generation`; `None` if there is no such file.
    fn file<D: Dir<File = F>>(
        &mut self,
        dir: &D,
        generation: u64,
    ) -> Result<Option<&F>, StoreError> {
        if self
            .open
            .as_ref()
            .is_none_or(|(open, _)| *open != generation)
        {
            self.open = None;
            let name = ledger_name(generation);
            let file = dir
                .open_file(&name, false)
                .map_err(|e| StoreError::io(format!("opening {name}"), e))?;
            self.open = file.map(|file| (generation, file));
        }
        Ok(self.open.as_ref().map(|(_, file)| file))
    }

    /// The length of ledger `generation`; `None` if it does not exist.
    fn len<D: Dir<File = F>>(
        &mut self,
        dir: &D,
        generation: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(file) = self.file(dir, generation)? else {
            return Ok(None);
        };
        let len = dir
            .file_len(file)
            .map_err(|e| StoreError::io(format!("reading {}", ledger_name(generation)), e))?;
        Ok(Some(len))
    }

    /// Up to `len` bytes at `offset` of ledger `generation` (fewer at its end).
    fn read<D: Dir<File = F>>(
        &mut self,
        dir: &D,
        generation: u64,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let name = ledger_name(generation);
        let file = self.file(dir, generation)?.ok_or_else(|| gone(&name))?;
        dir.read_at(file, offset, len)
            .map_err(|e| StoreError::io(format!("reading {name}"), e))
    }

    /// Writes `bytes` at `offset` of ledger `generation`, synced if `durability` is.
    fn write<D: Dir<File = F>>(
        &mut self,
        dir: &D,
        generation: u64,
        offset: u64,
        bytes: &[u8],
        durability: Durability,
    ) -> Result<(), StoreError> {
        let name = ledger_name(generation);
        let file = self.file(dir, generation)?.ok_or_else(|| gone(&name))?;
        dir.write_at(file, offset, bytes)
            .and_then(|()| match durability {
                Durability::Durable => dir.sync_file(file),
                _ => Ok(()),
            })
            .map_err(|e| StoreError::io(format!("writing {name}"), e))
    }

    /// Creates ledger `generation` holding `bytes`, always durably (temporary file,
    /// sync, rename, directory sync).
    fn create<D: Dir<File = F>>(
        &mut self,
        dir: &D,
        generation: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.open = None;
        disk::replace(dir, &ledger_name(generation), bytes, Durability::Durable)
    }

    /// Syncs the open ledger, if any (what `relaxed` appends left unsynced).
    pub fn sync<D: Dir<File = F>>(&mut self, dir: &D) -> Result<(), StoreError> {
        match &self.open {
            Some((generation, file)) => dir
                .sync_file(file)
                .map_err(|e| StoreError::io(format!("syncing {}", ledger_name(*generation)), e)),
            None => Ok(()),
        }
    }

    /// Removes ledger `generation` (an old one, or one its metadata never named), or
    /// moves it to `quarantine/` if `keep` (a damaged one, kept for inspection).
    fn retire<D: Dir<File = F>>(
        &mut self,
        dir: &D,
        generation: u64,
        keep: bool,
    ) -> Result<(), StoreError> {
        if self
            .open
            .as_ref()
            .is_some_and(|(open, _)| *open == generation)
        {
            self.open = None;
        }
        let name = ledger_name(generation);
        let moved = if keep {
            let mut suffix = [0u8; 8];
            crypto::random(&mut suffix)?;
            let target = format!("{QUARANTINE_DIR}/{name}.{}", hex::encode(suffix));
            crate::fs::create_dirs(dir, QUARANTINE_DIR)
                .and_then(|()| dir.rename(&name, &target))
                .and_then(|()| dir.sync(QUARANTINE_DIR))
        } else {
            dir.remove(&name).map(drop)
        };
        moved
            .and_then(|()| dir.sync(""))
            .map_err(|e| StoreError::io(format!("removing {name}"), e))
    }
}

/// Removes every ledger file of the store directory (a store handed over to a bucket),
/// then syncs the directory.
pub fn remove_all<D: Dir>(dir: &D) -> Result<(), StoreError> {
    for generation in generations(dir)? {
        let name = ledger_name(generation);
        dir.remove(&name)
            .map_err(|e| StoreError::io(format!("removing {name}"), e))?;
    }
    dir.sync("")
        .map_err(|e| StoreError::io("syncing the store directory", e))
}

/// The generations of the ledger files in the store directory, in order.
fn generations<D: Dir>(dir: &D) -> Result<Vec<u64>, StoreError> {
    let mut found: Vec<u64> = root_entries(dir)?
        .iter()
        .filter(|entry| entry.is_file)
        .filter_map(|entry| ledger_generation(&entry.name))
        .collect();
    found.sort_unstable();
    Ok(found)
}

fn gone(name: &str) -> StoreError {
    StoreError::io(
        format!("opening {name}"),
        std::io::Error::new(std::io::ErrorKind::NotFound, "the ledger file is gone"),
    )
}
