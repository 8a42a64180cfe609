//! [`Bucket`] over the imported `wasi:keyvalue` interfaces and session-vault's `indexes`.

use super::session_vault::store::indexes;
use super::wasi::keyvalue::{atomics, batch, store};
use crate::bucket_store::bucket::{Bucket, Change, Entry, Member, Page, Watched, moved_out};
use crate::bucket_store::ledger::LedgerPage;
use crate::bucket_store::name::bucket_name;
use crate::error::StoreError;

/// The bucket a store opens when its config names none.
pub const DEFAULT_BUCKET: &str = "session-vault";

/// An open `wasi:keyvalue` bucket.
pub struct WasiBucket {
    bucket: store::Bucket,
}

impl WasiBucket {
    /// Opens the bucket of redis prefix `prefix` ([`bucket_name`]: `sess:` is `sess`).
    pub fn open(prefix: &str) -> Result<Self, StoreError> {
        let name = bucket_name(prefix)?;
        let bucket = store::open(name).map_err(|e| failed(&format!("opening bucket {name}"), e))?;
        Ok(WasiBucket { bucket })
    }
}

/// The error of a key-value call that failed while `context`.
fn failed(context: &str, error: store::Error) -> StoreError {
    let reason = match error {
        store::Error::NoSuchStore => "the host has no such bucket".to_owned(),
        store::Error::AccessDenied => "the host denied access to the bucket".to_owned(),
        store::Error::Other(reason) => reason,
    };
    StoreError::unavailable(context, reason)
}

impl Bucket for WasiBucket {
    type Cas = atomics::Cas;

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket
            .get(key)
            .map_err(|e| failed(&format!("reading {key}"), e))
    }

    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let found = batch::get_many(&self.bucket, keys)
            .map_err(|e| failed(&format!("reading {} keys", keys.len()), e))?;
        if found.len() != keys.len() {
            return Err(StoreError::unavailable(
                "reading many keys",
                format!("asked for {} keys, got {}", keys.len(), found.len()),
            ));
        }
        Ok(found.into_iter().map(|kv| kv.map(|(_, v)| v)).collect())
    }

    fn watch(&mut self, key: &str) -> Result<(atomics::Cas, Option<Vec<u8>>), StoreError> {
        let context = || format!("reading {key}");
        let cas = atomics::Cas::new(&self.bucket, key).map_err(|e| failed(&context(), e))?;
        let current = cas.current().map_err(|e| failed(&context(), e))?;
        Ok((cas, current))
    }

    fn commit(&mut self, cas: atomics::Cas, change: Change) -> Result<bool, StoreError> {
        let change = indexes::Change {
            value: change.value,
            expires_at: change.expires_at,
            add: change.add.into_iter().map(entry_to_wit).collect(),
            remove: change.remove.into_iter().map(member_to_wit).collect(),
            frame: change.frame,
        };
        match indexes::commit(cas, &change) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            // A fenced bucket: its store moves or moved to a directory.
            Err(atomics::CasError::StoreError(store::Error::AccessDenied)) => Err(moved_out()),
            Err(atomics::CasError::StoreError(e)) => Err(failed("writing a record", e)),
        }
    }

    fn ledger(&mut self, after: &str, limit: u32) -> Result<LedgerPage, StoreError> {
        indexes::ledger(&self.bucket, after, limit)
            .map(page_from_wit)
            .map_err(|e| failed("reading the version ledger", e))
    }

    fn read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), StoreError> {
        let (value, page) = indexes::read(&self.bucket, key, after, limit)
            .map_err(|e| failed(&format!("reading {key}"), e))?;
        Ok((value, page_from_wit(page)))
    }

    fn watch_read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<Watched<atomics::Cas>, StoreError> {
        let (cas, value, page) = indexes::watch(&self.bucket, key, after, limit)
            .map_err(|e| failed(&format!("reading {key}"), e))?;
        Ok((cas, value, page_from_wit(page)))
    }

    fn trim_ledger(&mut self, before: &str) -> Result<(), StoreError> {
        indexes::trim_ledger(&self.bucket, before)
            .map_err(|e| failed("trimming the version ledger", e))
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket
            .set(key, value)
            .map_err(|e| failed(&format!("writing {key}"), e))
    }

    fn delete_many(&mut self, keys: &[String]) -> Result<(), StoreError> {
        batch::delete_many(&self.bucket, keys)
            .map_err(|e| failed(&format!("removing {} keys", keys.len()), e))
    }

    fn list_keys(&mut self, cursor: Option<String>) -> Result<Page, StoreError> {
        let page = self
            .bucket
            .list_keys(cursor.as_deref())
            .map_err(|e| failed("listing the bucket", e))?;
        Ok((page.keys, page.cursor))
    }

    fn add(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries: Vec<indexes::Entry> = entries.iter().cloned().map(entry_to_wit).collect();
        indexes::add(&self.bucket, &entries).map_err(|e| failed("adding index entries", e))
    }

    fn remove(&mut self, members: &[Member]) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        let members: Vec<indexes::Member> = members.iter().cloned().map(member_to_wit).collect();
        indexes::remove(&self.bucket, &members).map_err(|e| failed("removing index entries", e))
    }

    fn range(
        &mut self,
        index: &str,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        indexes::range(&self.bucket, index, min, max, limit)
            .map_err(|e| failed(&format!("reading index {index}"), e))
    }

    fn members_after(
        &mut self,
        index: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        indexes::members_after(&self.bucket, index, after, limit)
            .map_err(|e| failed(&format!("reading index {index}"), e))
    }

    fn count(&mut self, index: &str, min: u64, max: u64) -> Result<u64, StoreError> {
        indexes::count(&self.bucket, index, min, max)
            .map_err(|e| failed(&format!("counting index {index}"), e))
    }
}

fn entry_to_wit(entry: Entry) -> indexes::Entry {
    indexes::Entry {
        index: entry.index,
        member: entry.member,
        score: entry.score,
    }
}

fn page_from_wit(page: indexes::LedgerPage) -> LedgerPage {
    LedgerPage {
        frames: page.frames,
        last: page.last,
        max_deleted: page.max_deleted,
        last_generated: page.last_generated,
    }
}

fn member_to_wit(member: Member) -> indexes::Member {
    indexes::Member {
        index: member.index,
        member: member.member,
    }
}
