//! Upkeep of a shared store: cleanup from the expiry index, clear, check (verify every
//! record and rebuild the indexes), and the key ring (add, list, rekey, retire).

use std::collections::{BTreeMap, BTreeSet};

use super::bucket::{Bucket, Change, Entry, Member};
use super::names_key::{names, seal_names};
use super::{BucketStore, layout};
use crate::error::StoreError;
use crate::keyring::Secret;
use crate::seal::format::{self, Kind};
use crate::sessions::clock::Clock;
use crate::sessions::{KeyInfo, RekeyProgress, Report, key_infos};

/// Every record key of the bucket, by kind, from one full listing.
#[derive(Default)]
pub(crate) struct Listing {
    pub(crate) sessions: Vec<String>,
    quarantined: u64,
    users: Vec<String>,
    foreign: u64,
}

impl<K: Bucket, C: Clock> BucketStore<K, C> {
    /// Removes every expired session; returns how many. Reads only what the expiry index
    /// says is due, a batch at a time: the cost follows the expired sessions, not the store.
    pub(crate) fn cleanup(&mut self) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut previous = Vec::new();
        loop {
            let now = self.lifetime.now();
            let due = self.bucket.range(layout::EXPIRY, 0, now, super::BATCH)?;
            if due.is_empty() {
                self.snapshot_ledger()?;
                return Ok(removed);
            }
            // Every pass removes what it was given from the index; a server that gives
            // the same again removed nothing, and would keep this loop going forever.
            if due == previous {
                return Err(StoreError::unavailable(
                    "cleaning up",
                    "the server lists the same expired sessions again after they were \
                     removed from its expiry index",
                ));
            }
            let mut settled = Vec::new();
            for id in &due {
                let (cas, found) = self.watch_session(id)?;
                let Some(bytes) = found else {
                    // Redis dropped it at its TTL: only the index entries are left.
                    // Removed only while the key is still absent, so a create racing this
                    // keeps its entries. (Its user's index drops it when next read.)
                    let remove = [layout::EXPIRY, layout::IDS].map(|index| Member {
                        index: index.into(),
                        member: id.clone(),
                    });
                    let change = Change {
                        remove: remove.into(),
                        ..Change::default()
                    };
                    self.tidy(cas, change)?;
                    continue;
                };
                if let Some(until) = layout::removed_until(&bytes) {
                    // Removed, but an index entry came back (a re-score racing the
                    // removal): the entries go, the marker stays as it was.
                    let remove = [layout::EXPIRY, layout::IDS].map(|index| Member {
                        index: index.into(),
                        member: id.clone(),
                    });
                    let change = Change {
                        value: Some(bytes),
                        expires_at: Some(until),
                        remove: remove.into(),
                        ..Change::default()
                    };
                    self.tidy(cas, change)?;
                    continue;
                }
                match self.open_record(id, &bytes) {
                    Ok(record) if now >= self.lifetime.expiry(&record.session) => {
                        let user = record.session.user();
                        if self.commit(cas, self.removal(id, user))? {
                            removed += 1;
                        }
                    }
                    // Rewritten since it was indexed: the entry is re-scored.
                    Ok(record) => self.bucket.add(&[Entry {
                        index: layout::EXPIRY.into(),
                        member: id.clone(),
                        score: self.lifetime.expiry(&record.session),
                    }])?,
                    // A damaged record is quarantined with its entries, unless another
                    // host rewrote it meanwhile (the next pass reads that).
                    Err(error @ StoreError::Corrupted(_)) => {
                        self.damaged(id, bytes, error)?;
                    }
                    // Under a key this host lacks: its expiry cannot be read, so the entry
                    // goes (`check` with the key puts it back) rather than stay due forever.
                    Err(_) => settled.push(id.clone()),
                }
            }
            // Members whose removal lost to another writer leave the due range through
            // that writer; the rest go explicitly.
            let members: Vec<Member> = settled
                .into_iter()
                .map(|member| Member {
                    index: layout::EXPIRY.into(),
                    member,
                })
                .collect();
            self.bucket.remove(&members)?;
            previous = due;
        }
    }

    /// Removes every session record and index; returns how many records. Each live
    /// session leaves a removal marker until its expiry, as `delete` does (one
    /// compare-and-swap each, so no write racing the clear brings one back).
    pub(crate) fn clear(&mut self) -> Result<u64, StoreError> {
        let mut marked = 0;
        for id in self.listing()?.sessions {
            for _ in 0..super::RETRIES {
                let (cas, found) = self.watch_session(&id)?;
                // Expired, a marker or gone: left to the bulk removal below (which counts
                // them and quarantines nothing).
                let Some(bytes) = found.filter(|b| layout::removed_until(b).is_none()) else {
                    break;
                };
                let Ok(record) = self.open_record(&id, &bytes) else {
                    // Damaged or under a missing key: removed here, with its removal in
                    // the ledger (no record of the id is served again).
                    if self.commit(cas, self.unreadable_removal(&id))? {
                        marked += 1;
                        break;
                    }
                    continue;
                };
                let until = self.lifetime.expiry(&record.session);
                if self.lifetime.now() >= until {
                    break;
                }
                let change = self.removal_until(&id, record.session.user(), until, record.seq);
                if self.commit(cas, change)? {
                    marked += 1;
                    break;
                }
            }
        }
        // Whatever is left (expired, damaged, indexes) goes at once; markers stay.
        Ok(marked + super::clear_sessions(&mut self.bucket, true)?)
    }

    /// Verifies every record, quarantines the damaged ones and rebuilds the indexes
    /// (expiry, ids, users) from the records (adding what they lack, dropping what no
    /// record backs).
    pub(crate) fn check(&mut self) -> Result<Report, StoreError> {
        let listing = self.listing()?;
        self.catch_up()?;
        let now = self.lifetime.now();
        let mut report = Report {
            quarantined: listing.quarantined + self.audit_ledger()?,
            foreign: listing.foreign,
            ..Report::default()
        };
        let mut expiry = BTreeSet::new();
        let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for chunk in listing.sessions.chunks(super::BATCH as usize) {
            let keys: Vec<String> = chunk.iter().map(|id| layout::session(id)).collect();
            let values = self.bucket.get_many(&keys)?;
            // After the records: every frame of a write they could have missed is read.
            self.catch_up()?;
            let mut entries = Vec::new();
            for (id, value) in chunk.iter().zip(values) {
                // An absent key, or a removal marker: no session.
                let Some(bytes) = value.filter(|b| layout::removed_until(b).is_none()) else {
                    continue;
                };
                if let Ok(header) = format::header(&bytes, Kind::Session) {
                    report.oldest_key = Some(
                        report
                            .oldest_key
                            .map_or(header.key_id, |k| k.min(header.key_id)),
                    );
                }
                match self.open_record(id, &bytes) {
                    Ok(record) => {
                        let session = record.session;
                        let live = now < self.lifetime.expiry(&session);
                        *(if live {
                            &mut report.live
                        } else {
                            &mut report.expired
                        }) += 1;
                        entries.push(Entry {
                            index: layout::EXPIRY.into(),
                            member: id.clone(),
                            score: self.lifetime.expiry(&session),
                        });
                        expiry.insert(id.clone());
                        entries.push(Entry {
                            index: layout::IDS.into(),
                            member: id.clone(),
                            score: 0,
                        });
                        if let Some(user) = session.user() {
                            let user = self.user_index(user);
                            entries.push(Entry {
                                index: user.clone(),
                                member: id.clone(),
                                score: session.created_at().unwrap_or(0),
                            });
                            users.entry(user).or_default().insert(id.clone());
                        }
                    }
                    Err(StoreError::MissingKey(_)) => report.missing_key += 1,
                    Err(error) => {
                        // Only what was moved: a record rewritten meanwhile is a session.
                        if self.damaged(id, bytes, error)?.is_some() {
                            report.newly_quarantined.push(id.clone());
                        }
                    }
                }
            }
            self.bucket.add(&entries)?;
        }
        report.quarantined += report.newly_quarantined.len() as u64;
        self.drop_unbacked(layout::EXPIRY, &expiry)?;
        self.drop_unbacked(layout::IDS, &expiry)?;
        for index in &listing.users {
            let backed = users.remove(index).unwrap_or_default();
            self.drop_unbacked(index, &backed)?;
        }
        Ok(report)
    }

    /// Does nothing: the server reclaims space itself. Reports no work.
    pub(crate) fn compact(&mut self) -> crate::sessions::Compaction {
        crate::sessions::Compaction::default()
    }

    /// The store's keys, with how many session records each encrypts.
    pub(crate) fn keys(&mut self) -> Result<Vec<KeyInfo>, StoreError> {
        let counts = self.records_by_key()?;
        Ok(key_infos(&self.meta, &self.keyring, &counts))
    }

    /// Adds the key of `secret` (as a directory store's `add_key` does). Other hosts
    /// keep writing under the key they opened with until they reopen with the new secret;
    /// they still read what this one writes only if they hold the new key too.
    pub(crate) fn add_key(&mut self, secret: &Secret) -> Result<u32, StoreError> {
        let mut meta = self.meta.clone();
        let mut keyring = self.keyring.clone();
        let id = meta.add_key(&mut keyring, secret, self.scrypt_log_n)?;
        let previous = std::mem::replace(&mut self.keyring, keyring);
        if let Err(error) = self.write_meta(meta) {
            self.keyring = previous;
            return Err(error);
        }
        Ok(id)
    }

    /// Re-encrypts up to `limit` records under an older key with the current key, each
    /// with a compare-and-swap (a record another host rewrote meanwhile is skipped: it
    /// is under that host's key).
    pub(crate) fn rekey(&mut self, limit: usize) -> Result<RekeyProgress, StoreError> {
        let mut progress = RekeyProgress::default();
        let current = self.keyring.current;
        let names_stale = self
            .bucket
            .get(layout::NAMES)?
            .and_then(|bytes| format::key_id(&bytes))
            .is_some_and(|id| id != current);
        if names_stale {
            let (cas, _) = self.bucket.watch(layout::NAMES)?;
            let sealed = seal_names(&self.keyring, &self.names, 1)?;
            self.bucket.commit(cas, Change::put(sealed))?;
        }
        for id in self.listing()?.sessions {
            if progress.rekeyed as usize >= limit {
                break;
            }
            let (cas, found) = self.watch_session(&id)?;
            let Some(bytes) = found else { continue };
            if format::key_id(&bytes) == Some(current) {
                continue;
            }
            let Ok(record) = self.open_record(&id, &bytes) else {
                continue;
            };
            let change = self.put(&record.session, record.seq.saturating_add(1), None)?;
            if self.commit(cas, change)? {
                progress.rekeyed += 1;
            }
        }
        progress.remaining = (self.records_by_key()?.into_iter())
            .filter(|(key_id, _)| *key_id != current)
            .map(|(_, sessions)| sessions)
            .sum();
        Ok(progress)
    }

    /// Retires key `id`, refusing while any record (session, quarantined, the names key)
    /// is still sealed under it.
    pub(crate) fn retire_key(&mut self, id: u32) -> Result<(), StoreError> {
        let dependent = self.records_by_key()?.get(&id).copied().unwrap_or(0);
        if dependent > 0 {
            return Err(StoreError::InvalidInput(format!(
                "key {id} still encrypts {dependent} session(s); run rekey first"
            )));
        }
        let listing = self.listing()?;
        if listing.quarantined > 0 {
            return Err(StoreError::InvalidInput(format!(
                "the bucket holds {} quarantined record(s), which may be sealed under key \
                 {id}; inspect and remove them (q:<id> keys), then retire the key",
                listing.quarantined
            )));
        }
        let names_under = self
            .bucket
            .get(layout::NAMES)?
            .and_then(|bytes| format::key_id(&bytes));
        if names_under == Some(id) {
            return Err(StoreError::InvalidInput(format!(
                "key {id} still seals the names key; run rekey first"
            )));
        }
        let mut meta = self.meta.clone();
        let mut keyring = self.keyring.clone();
        meta.retire(&mut keyring, id)?;
        let previous = std::mem::replace(&mut self.keyring, keyring);
        if let Err(error) = self.write_meta(meta) {
            self.keyring = previous;
            return Err(error);
        }
        // Nothing opened under the old ring is served again without it.
        self.cache.borrow_mut().clear();
        // The names key must still open under what the ring holds now.
        self.names = names(&mut self.bucket, &self.keyring)?;
        Ok(())
    }

    /// How many session records each key id seals (from their headers).
    pub(crate) fn records_by_key(&mut self) -> Result<BTreeMap<u32, u64>, StoreError> {
        let mut counts = BTreeMap::new();
        let sessions = self.listing()?.sessions;
        for chunk in sessions.chunks(super::BATCH as usize) {
            let keys: Vec<String> = chunk.iter().map(|id| layout::session(id)).collect();
            for bytes in self.bucket.get_many(&keys)?.into_iter().flatten() {
                if let Some(key_id) = format::key_id(&bytes) {
                    *counts.entry(key_id).or_insert(0) += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Fills the id index of a store written before it existed (by 0.1.0): every session
    /// record's id, scored 0. Run at open while the index holds fewer ids than the expiry
    /// index (every write adds to both, every removal takes from both), so a fill cut
    /// short is finished by the next open; idempotent, and safe beside other hosts (a
    /// member whose record a host removes meanwhile is dropped by `list`).
    pub(crate) fn index_ids(&mut self) -> Result<(), StoreError> {
        if self.bucket.count(layout::IDS, 0, 0)?
            >= self.bucket.count(layout::EXPIRY, 0, u64::MAX)?
        {
            return Ok(());
        }
        let sessions = self.listing()?.sessions;
        for chunk in sessions.chunks(super::BATCH as usize) {
            let entries: Vec<Entry> = (chunk.iter())
                .map(|id| Entry {
                    index: layout::IDS.into(),
                    member: id.clone(),
                    score: 0,
                })
                .collect();
            self.bucket.add(&entries)?;
        }
        Ok(())
    }

    /// Lists the whole bucket once.
    pub(crate) fn listing(&mut self) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        let mut cursor = None;
        loop {
            let (keys, next) = self.bucket.list_keys(cursor)?;
            for key in keys {
                match layout::parse(&key) {
                    layout::Name::Session(id) => listing.sessions.push(id.to_owned()),
                    layout::Name::Quarantined(_) => listing.quarantined += 1,
                    layout::Name::User => listing.users.push(key),
                    layout::Name::Foreign => listing.foreign += 1,
                    layout::Name::Meta
                    | layout::Name::Names
                    | layout::Name::Expiry
                    | layout::Name::Ids
                    | layout::Name::Fence
                    | layout::Name::Ledger => {}
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        // A listing may repeat a key (Redis SCAN does, while keys change).
        listing.sessions.sort_unstable();
        listing.sessions.dedup();
        listing.users.sort_unstable();
        listing.users.dedup();
        Ok(listing)
    }

    /// Removes the members of `index` that are not in `backed` and whose record does
    /// not back them now either (another host may have written it since the listing).
    pub(super) fn drop_unbacked(
        &mut self,
        index: &str,
        backed: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let members = self.bucket.range(index, 0, u64::MAX, u32::MAX)?;
        let unbacked: Vec<String> = members
            .into_iter()
            .filter(|m| !backed.contains(m))
            .collect();
        let mut doomed = Vec::new();
        for chunk in unbacked.chunks(super::BATCH as usize) {
            let keys: Vec<String> = chunk.iter().map(|id| layout::session(id)).collect();
            for (id, value) in chunk.iter().zip(self.bucket.get_many(&keys)?) {
                let backs = value
                    .and_then(|bytes| self.open_record(id, &bytes).ok())
                    .is_some_and(|record| {
                        index == layout::EXPIRY
                            || index == layout::IDS
                            || record
                                .session
                                .user()
                                .is_some_and(|user| self.user_index(user) == index)
                    });
                if !backs {
                    doomed.push(Member {
                        index: index.to_owned(),
                        member: id.clone(),
                    });
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.bucket.remove(&doomed)
    }
}
