//! Directory operations both on-disk backends (and the metadata) share.

use std::io;

use super::Durability;
use super::layout::{MAX_META_LEN, META_FILE, QUARANTINE_DIR, is_temp_name, temp_name};
use crate::error::StoreError;
use crate::fs::{Dir, Entry};

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
    dir.read(META_FILE, MAX_META_LEN)
        .map_err(|e| StoreError::io(format!("reading {}", META_FILE), e))
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

/// How many files `quarantine/` holds.
pub(crate) fn quarantined<D: Dir>(dir: &D) -> Result<u64, StoreError> {
    let entries = dir
        .entries(QUARANTINE_DIR)
        .map_err(|e| StoreError::io(format!("listing {QUARANTINE_DIR}/"), e))?;
    Ok(entries.map_or(0, |entries| entries.len() as u64))
}
