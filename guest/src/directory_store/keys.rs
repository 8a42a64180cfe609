//! The store's keys: add, list, rekey, retire.

use super::{Clock, DirectoryStore, KeyInfo, RekeyProgress};
use crate::backend::Backend;
use crate::backend::layout::MAX_META_LEN;
use crate::error::StoreError;
use crate::keyring::Secret;
use crate::seal::format;
use crate::sessions::key_infos;

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Adds the key of `secret`: a new secret becomes the current key; the secret of a
    /// retired key restores it (and the sessions that needed it become readable).
    /// Returns the key's id.
    pub(crate) fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError> {
        let mut meta = self.meta.clone();
        let mut keyring = self.keyring.clone();
        let id = meta.add_key(&mut keyring, secret, self.scrypt_log_n)?;
        let bytes = meta.sealed(&keyring)?;
        fits_in_metadata(&bytes)?;
        self.backend.write_meta(&bytes)?;
        self.meta = meta;
        self.keyring = keyring;
        self.lend_keys();
        let waiting: Vec<String> = self
            .missing_key
            .iter()
            .filter(|(_, key_id)| **key_id == id)
            .map(|(session, _)| session.clone())
            .collect();
        for session in waiting {
            self.missing_key.remove(&session);
            match self.read(&session) {
                Ok(_) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => {
                    // Not read (I/O): still waiting for its key, as far as anyone knows.
                    self.missing_key.insert(session, id);
                    return Err(other);
                }
            }
        }
        Ok(id)
    }

    /// The store's keys, with how many sessions each encrypts.
    pub(crate) fn keys(&self) -> Vec<KeyInfo> {
        let mut counts = self.index.by_key();
        for key_id in self.missing_key.values() {
            *counts.entry(*key_id).or_insert(0) += 1;
        }
        key_infos(&self.meta, &self.keyring, &counts)
    }

    /// Re-encrypts up to `limit` sessions still under an older key with the current key.
    /// Each session is rewritten atomically, so an interrupted rekey loses nothing and
    /// can simply be run again.
    pub(crate) fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError> {
        let mut progress = RekeyProgress::default();
        for id in self.index.not_under(self.keyring.current, limit) {
            match self.read(&id) {
                Ok(Some(session)) => {
                    self.write(&session)?;
                    // Its access fields are in the new file; the stamp is under the old key.
                    self.drop_stamp(&id);
                    progress.rekeyed += 1;
                }
                Ok(None) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        let current = self.keyring.current;
        progress.remaining = (self.index.by_key().into_iter())
            .filter(|(key_id, _)| *key_id != current)
            .map(|(_, sessions)| sessions)
            .sum();
        Ok(progress)
    }

    /// Finishes the upgrade of a store from metadata version 2 or earlier: rewrites every
    /// session as a format-v2 record (bound to the store and its version), makes the
    /// rewrites durable, then writes metadata version 3, after which v1 records are no
    /// longer read. Interrupted, the next open starts it again; while a session is under
    /// a key the store lacks it cannot be rewritten, so the upgrade waits for that key.
    pub(super) fn upgrade_records(&mut self) -> Result<(), StoreError> {
        for id in self.index.ids() {
            match self.read(&id) {
                Ok(Some(session)) => {
                    self.write(&session)?;
                    self.drop_stamp(&id);
                }
                Ok(None) | Err(StoreError::Corrupted(_) | StoreError::MissingKey(_)) => {}
                Err(other) => return Err(other),
            }
        }
        if !self.missing_key.is_empty() {
            return Ok(());
        }
        // What the rewrites replaced goes (the log keeps it until compaction), and every
        // rewrite is on disk before the metadata says no v1 record remains.
        self.backend.compact()?;
        self.backend.flush()?;
        self.meta.version = crate::keyring::VERSION;
        self.keyring.scope = self.meta.scope()?;
        self.start_ledger()
    }

    /// Retires key `id`, refusing while any session file is still encrypted under it or
    /// `quarantine/` holds files. Before the metadata forgets the key, its stale access
    /// stamps are removed and the backend compacted, so no record sealed under it remains.
    pub(crate) fn retire_key(&mut self, id: u32) -> Result<(), StoreError> {
        let dependent = self
            .keys()
            .iter()
            .find(|k| k.id == id)
            .map_or(0, |k| k.sessions);
        if dependent > 0 {
            return Err(StoreError::InvalidInput(format!(
                "key {id} still encrypts {dependent} session(s); run rekey first"
            )));
        }
        let quarantined = self.backend.quarantined()?;
        if quarantined > 0 {
            return Err(StoreError::InvalidInput(format!(
                "quarantine/ holds {quarantined} damaged file(s), which may be encrypted under \
                 key {id}; inspect and remove them, then retire the key"
            )));
        }
        let mut meta = self.meta.clone();
        let mut keyring = self.keyring.clone();
        meta.retire(&mut keyring, id)?;
        // Nothing sealed under the key may outlive it: stale stamps go, and compaction
        // drops every dead record (superseded, removed) before the key is forgotten.
        let stamped: Vec<String> = self.stamps.keys().cloned().collect();
        for session in stamped {
            let under = match self.backend.read_stamp(&session) {
                Ok(Some(stamp)) => format::key_id(&stamp),
                Ok(None) => continue,
                Err(StoreError::Corrupted(_)) => None,
                Err(other) => return Err(other),
            };
            if under.is_none_or(|key_id| key_id == id) {
                self.drop_stamp(&session);
            }
        }
        self.backend.compact()?;
        // Relaxed rekeys may be unsynced: they must be on disk before the key is not.
        self.backend.flush()?;
        if self.backend.usage()?.key_ids.contains(&id) {
            return Err(StoreError::InvalidInput(format!(
                "records under key {id} are still on disk after compaction; \
                 run check and rekey, then retire it"
            )));
        }
        // The ledger's frames may be under the key: a new generation, under the current
        // key, replaces them.
        self.snapshot()?;
        meta.ledger = self.meta.ledger;
        self.backend.write_meta(&meta.sealed(&keyring)?)?;
        self.meta = meta;
        self.keyring = keyring;
        self.lend_keys();
        // Nothing opened under the old ring is served again without it.
        self.cache.clear();
        Ok(())
    }
}

/// Refuses metadata `bytes` that the next open would refuse to read.
fn fits_in_metadata(bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() as u64 > MAX_META_LEN {
        return Err(StoreError::InvalidInput(format!(
            "with another key the metadata would be {} bytes, over its {}-byte limit; \
             retire keys no longer needed (key retire) first",
            bytes.len(),
            MAX_META_LEN
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_past_the_read_limit_is_refused_before_it_is_written() {
        let limit = usize::try_from(MAX_META_LEN).unwrap();
        assert!(fits_in_metadata(&vec![b' '; limit]).is_ok());
        match fits_in_metadata(&vec![b' '; limit + 1]) {
            Err(StoreError::InvalidInput(reason)) => assert!(reason.contains("key retire")),
            other => panic!("{other:?}"),
        }
    }
}
