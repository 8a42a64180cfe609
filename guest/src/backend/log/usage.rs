//! What the log holds besides its sessions: every key id named by the sealed bytes in
//! `log/` (so a key is not retired while anything still needs it) and the entries that are
//! not ours.

use std::collections::BTreeSet;

use super::record::{self, Kind};
use super::{LOG_DIR, Log, SEGMENT_MAX, names, scan, segment_path};
use crate::backend::disk;
use crate::backend::layout::{self, META_FILE, QUARANTINE_DIR};
use crate::error::StoreError;
use crate::fs::Dir;
use crate::seal::format;

impl<D: Dir> Log<D> {
    /// Every key id named by a sealed record, hint or leftover file in `log/`.
    pub(super) fn key_ids_on_disk(&self) -> Result<BTreeSet<u32>, StoreError> {
        let mut key_ids = BTreeSet::new();
        for (&number, segment) in &self.segments {
            let path = segment_path(number);
            let mut scan = scan::Scan::new(segment.len, self.segment_limit.max(SEGMENT_MAX));
            while let Some(step) = scan
                .step(&self.dir, &segment.file)
                .map_err(|e| StoreError::io(format!("reading {path}"), e))?
            {
                // Damage is replay's business (quarantined at open).
                let scan::Step::Record { bytes, .. } = step else {
                    continue;
                };
                let Some(found) = record::parse(&bytes, 0) else {
                    continue;
                };
                let sealed = match found.kind {
                    Kind::Put => record::split_put(found.payload)
                        .map(|(summary, blob)| if summary.is_empty() { blob } else { summary }),
                    Kind::Stamp => Some(found.payload),
                    Kind::Tombstone => None,
                };
                if let Some(key_id) = sealed.and_then(format::key_id) {
                    key_ids.insert(key_id);
                }
            }
        }
        // Files in `log/` that are not open segments (hints, and anything a failed
        // removal left) may hold sealed bytes too.
        let entries = (self.dir.entries(LOG_DIR))
            .map_err(|e| StoreError::io(format!("listing {LOG_DIR}/"), e))?
            .unwrap_or_default();
        for entry in entries.into_iter().filter(|e| e.is_file) {
            let tracked =
                names::segment_number(&entry.name).is_some_and(|n| self.segments.contains_key(&n));
            if tracked {
                continue;
            }
            let path = format!("{LOG_DIR}/{}", entry.name);
            let file = (self.dir.open_file(&path, false))
                .map_err(|e| StoreError::io(format!("opening {path}"), e))?;
            let Some(file) = file else { continue };
            let len = (self.dir.file_len(&file))
                .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
            let mut at = 0;
            // In chunks that overlap by a header, so no header is cut in two.
            while at < len {
                let chunk = (self.dir.read_at(&file, at, 1 << 20))
                    .map_err(|e| StoreError::io(format!("reading {path}"), e))?;
                key_ids.extend(format::key_ids_in(&chunk));
                if chunk.len() <= format::HEADER_LEN {
                    break;
                }
                at += (chunk.len() - format::HEADER_LEN) as u64;
            }
        }
        Ok(key_ids)
    }

    /// Entries that are not ours, in the store directory and in `log/`.
    pub(super) fn foreign(&self) -> Result<u64, StoreError> {
        let mut foreign = self.foreign;
        for entry in disk::root_entries(&self.dir)? {
            let ours = ((entry.name == META_FILE
                || entry.name == layout::LOCK_FILE
                || layout::ledger_generation(&entry.name).is_some())
                && entry.is_file)
                || ((entry.name == QUARANTINE_DIR || entry.name == LOG_DIR) && !entry.is_file);
            if !ours {
                foreign += 1;
            }
        }
        Ok(foreign)
    }
}
