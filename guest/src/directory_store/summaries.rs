//! Building the index at open from the sealed summaries a backend gathered: index blocks
//! first (one AEAD per closed segment), then summaries sealed one by one, and the session
//! itself wherever neither opens.

use std::collections::HashMap;

use super::index::Entry;
use super::{Clock, DirectoryStore, Report};
use crate::backend::{Backend, SealedBlock, Summaries};
use crate::error::StoreError;
use crate::seal::format::{self, DecodeError, Kind};
use crate::seal::index_block::{self, ItemKind};
use crate::seal::stamp::Stamp;
use crate::seal::summary::Summary;

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Builds the index from the sealed `summaries` a backend gathered at open: index
    /// blocks first (one AEAD for each closed segment), then the summaries sealed one by
    /// one. A session whose summary is absent or does not open is read and verified
    /// instead, as by [`DirectoryStore::check`]; one under a key the store lacks is remembered
    /// (`missing-key`).
    pub(super) fn index_summaries(&mut self, summaries: Summaries) -> Result<Report, StoreError> {
        let now = self.lifetime.now();
        let mut report = Report {
            foreign: summaries.foreign,
            ..Report::default()
        };
        self.index.clear();
        self.missing_key.clear();
        self.stamps.clear();
        self.stamps.reserve(summaries.stamps.len());
        for (id, file) in summaries.stamps {
            if file.is_empty() {
                // In an index block: read with the block.
                self.stamps.insert(id, None);
                continue;
            }
            let stamp = Stamp::open(&file, &self.keyring.scope, &id, |key_id| {
                self.keyring.key(key_id)
            });
            let void = stamp.is_none();
            self.stamps.insert(id.clone(), stamp);
            if void {
                self.drop_stamp(&id);
            }
        }
        let mut unstamped = HashMap::new();
        for block in &summaries.blocks {
            self.index_block(block, now, &mut report, &mut unstamped)?;
        }
        for (id, sealed) in summaries.sessions {
            if sealed.is_none()
                && (self.index.entry(&id).is_some() || self.missing_key.contains_key(&id))
            {
                // Indexed from its block.
                continue;
            }
            let opened = sealed.as_deref().map(|sealed| {
                let header = format::header(sealed, Kind::Summary);
                let summary =
                    Summary::open(sealed, &self.keyring.scope, &id, |k| self.keyring.key(k));
                (header, summary)
            });
            match opened {
                // Without its origin a summary cannot say when a capped session expires:
                // the session itself does (summaries written by 0.1.0).
                Some((Ok(_), Ok(summary)))
                    if self.lifetime.max_lifetime.is_some() && summary.origin.is_none() =>
                {
                    self.verify(id, now, &mut report)?
                }
                Some((Ok(_), Ok(summary))) if self.check_version(&id, summary.seq).is_err() => {
                    self.backend.quarantine(&id)?;
                    self.drop_stamp(&id);
                    report.newly_quarantined.push(id);
                }
                Some((Ok(header), Ok(summary))) => {
                    self.next_seq = self.next_seq.max(summary.seq.saturating_add(1));
                    let entry = self.summary_entry(&id, summary, header.key_id);
                    if now >= entry.expires_at {
                        report.expired += 1;
                    } else {
                        report.live += 1;
                    }
                    self.index.insert(&id, entry);
                }
                Some((Ok(header), Err(DecodeError::MissingKey(_)))) => {
                    // Its version is not authenticated without the key (see `read`).
                    self.missing_key.insert(id, header.key_id);
                    report.missing_key += 1;
                }
                // No summary, or a damaged one: the session itself decides.
                _ => self.verify(id, now, &mut report)?,
            }
        }
        let orphans: Vec<String> = (self.stamps.keys())
            .filter(|id| self.index.entry(id).is_none() && !self.missing_key.contains_key(*id))
            .cloned()
            .collect();
        for id in orphans {
            self.drop_stamp(&id);
        }
        report.quarantined = self.backend.quarantined()?;
        Ok(report)
    }

    /// Indexes the items of `block` that are still the latest of their id. Blocks come
    /// newest segment first, and compaction may have moved a put past its stamp: a
    /// session indexed before its stamp was seen is kept in `unstamped` (with its own
    /// `expiresAt`), and its expiry moved when the stamp comes. A block that does not
    /// open indexes nothing: its sessions are read one by one afterwards.
    fn index_block(
        &mut self,
        block: &SealedBlock,
        now: u64,
        report: &mut Report,
        unstamped: &mut HashMap<String, (u64, Option<u64>)>,
    ) -> Result<(), StoreError> {
        let Some(sealed) = self.backend.read_block(block)? else {
            return Ok(());
        };
        let keyring = &self.keyring;
        let opened = index_block::open(
            &sealed,
            block.segment,
            block.segment_len,
            &keyring.scope,
            |k| keyring.key(k),
        );
        let Ok(opened) = opened else {
            return Ok(());
        };
        let Ok(items) = opened.items() else {
            return Ok(());
        };
        for item in items {
            let stamp = item.kind == ItemKind::Stamp;
            if !self.backend.is_latest(item.id, item.seq, stamp) {
                continue;
            }
            if stamp {
                let Some(stamp) = Stamp::parse(item.body) else {
                    continue;
                };
                self.stamps.insert(item.id.to_owned(), Some(stamp));
                if let (Some((expires_at, origin)), Some(entry)) =
                    (unstamped.remove(item.id), self.index.entry(item.id))
                    && entry.version == stamp.version
                {
                    let mut entry = entry.clone();
                    let was_live = now < entry.expires_at;
                    entry.expires_at = self.lifetime.expiry_of(
                        stamp.expires_at.unwrap_or(expires_at),
                        stamp.last_accessed_at,
                        origin,
                    );
                    if !was_live && now < entry.expires_at {
                        report.expired -= 1;
                        report.live += 1;
                    }
                    self.index.insert(item.id, entry);
                }
                continue;
            }
            if self.keyring.key(item.key_id).is_none() {
                self.missing_key.insert(item.id.to_owned(), item.key_id);
                report.missing_key += 1;
                continue;
            }
            let Ok(summary) = Summary::parse(item.body, item.version) else {
                // Left out: read in full afterwards.
                continue;
            };
            if self.lifetime.max_lifetime.is_some() && summary.origin.is_none() {
                // Left out too: only the session says where its life began.
                continue;
            }
            let id = item.id.to_owned();
            if self.check_version(&id, summary.seq).is_err() {
                self.backend.quarantine(&id)?;
                self.drop_stamp(&id);
                report.newly_quarantined.push(id);
                continue;
            }
            if matches!(self.stamps.get(&id), Some(None)) {
                unstamped.insert(id.clone(), (summary.expires_at, summary.origin));
            }
            self.next_seq = self.next_seq.max(summary.seq.saturating_add(1));
            let entry = self.summary_entry(&id, summary, item.key_id);
            if now >= entry.expires_at {
                report.expired += 1;
            } else {
                report.live += 1;
            }
            self.index.insert(&id, entry);
        }
        Ok(())
    }

    /// The index entry a summary gives, with the access stamp of its version applied.
    fn summary_entry(&self, id: &str, summary: Summary, key_id: u32) -> Entry {
        let mut last_accessed_at = summary.last_accessed_at;
        let mut expires_at = summary.expires_at;
        if let Some(Some(stamp)) = self.stamps.get(id)
            && stamp.version == summary.version
        {
            last_accessed_at = stamp.last_accessed_at;
            expires_at = stamp.expires_at.unwrap_or(expires_at);
        }
        Entry {
            user: summary.user,
            origin: summary.origin,
            expires_at: self
                .lifetime
                .expiry_of(expires_at, last_accessed_at, summary.origin),
            key_id,
            version: summary.version,
            seq: summary.seq,
        }
    }
}
