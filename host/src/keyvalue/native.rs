//! [`RedisBucket`]: the guest's [`Bucket`] over Redis without the component, so the
//! shared store's logic runs natively against the same server (tests, and the native
//! column of `session-vault-bench --backend redis`).

use session_vault_guest::StoreError;
use session_vault_guest::bucket::{
    Bucket, Change, Entry, LedgerPage, Member, Page, Watched, moved_out,
};

use super::bucket_prefix;
use super::commands::Commit;
use super::server::{RedisConfig, Server};

/// A bucket of a Redis server: every key `{name}:…`.
pub struct RedisBucket {
    server: Server,
    prefix: String,
}

/// What a [`RedisBucket`] compare-and-swap remembers: the full key and the value read.
pub struct RedisCas {
    key: String,
    read: Option<Vec<u8>>,
}

impl RedisBucket {
    /// The bucket of redis prefix `name` (see `bucket_name`: `sess:` is bucket `sess`) on
    /// the server `config` names; nothing is connected until the first call.
    /// `invalid-input` for a bad prefix or URL.
    pub fn open(config: &RedisConfig, name: &str) -> Result<Self, StoreError> {
        let prefix = bucket_prefix(name)?;
        let server = Server::new(config)
            .map_err(|e| StoreError::InvalidInput(format!("the redis url is not valid: {e}")))?;
        Ok(RedisBucket { server, prefix })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// The failure of `context` as `unavailable`.
fn unavailable(context: impl Into<String>) -> impl FnOnce(String) -> StoreError {
    move |reason| StoreError::unavailable(context, reason)
}

impl Bucket for RedisBucket {
    type Cas = RedisCas;

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let full = self.key(key);
        self.server
            .get(&full)
            .map_err(unavailable(format!("reading {key}")))
    }

    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.server
            .get_many(&full)
            .map_err(unavailable(format!("reading {} keys", keys.len())))
    }

    fn watch(&mut self, key: &str) -> Result<(RedisCas, Option<Vec<u8>>), StoreError> {
        let full = self.key(key);
        let read = self
            .server
            .get(&full)
            .map_err(unavailable(format!("reading {key}")))?;
        Ok((
            RedisCas {
                key: full,
                read: read.clone(),
            },
            read,
        ))
    }

    fn commit(&mut self, cas: RedisCas, change: Change) -> Result<bool, StoreError> {
        let outcome = self
            .server
            .commit(&self.prefix, &cas.key, cas.read.as_deref(), &change)
            .map_err(unavailable("writing a record"))?;
        match outcome {
            Commit::Applied => Ok(true),
            Commit::Changed => Ok(false),
            Commit::Fenced => Err(moved_out()),
        }
    }

    fn ledger(&mut self, after: &str, limit: u32) -> Result<LedgerPage, StoreError> {
        self.server
            .ledger(&self.prefix, after, limit)
            .map_err(unavailable("reading the version ledger"))
    }

    fn read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), StoreError> {
        let full = self.key(key);
        self.server
            .read(&self.prefix, &full, after, limit)
            .map_err(unavailable(format!("reading {key}")))
    }

    fn watch_read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<Watched<RedisCas>, StoreError> {
        let full = self.key(key);
        let (read, page) = self
            .server
            .read(&self.prefix, &full, after, limit)
            .map_err(unavailable(format!("reading {key}")))?;
        let cas = RedisCas {
            key: full,
            read: read.clone(),
        };
        Ok((cas, read, page))
    }

    fn trim_ledger(&mut self, before: &str) -> Result<(), StoreError> {
        self.server
            .trim_ledger(&self.prefix, before)
            .map_err(unavailable("trimming the version ledger"))
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let full = self.key(key);
        self.server
            .set(&full, value)
            .map_err(unavailable(format!("writing {key}")))
    }

    fn delete_many(&mut self, keys: &[String]) -> Result<(), StoreError> {
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.server
            .delete_many(&full)
            .map_err(unavailable(format!("removing {} keys", keys.len())))
    }

    fn list_keys(&mut self, cursor: Option<String>) -> Result<Page, StoreError> {
        self.server
            .scan(&self.prefix, cursor.as_deref())
            .map_err(unavailable("listing the bucket"))
    }

    fn add(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        self.server
            .add(&self.prefix, entries)
            .map_err(unavailable("adding index entries"))
    }

    fn remove(&mut self, members: &[Member]) -> Result<(), StoreError> {
        self.server
            .remove(&self.prefix, members)
            .map_err(unavailable("removing index entries"))
    }

    fn range(
        &mut self,
        index: &str,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let full = self.key(index);
        self.server
            .range(&full, min, max, limit)
            .map_err(unavailable(format!("reading index {index}")))
    }

    fn members_after(
        &mut self,
        index: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let full = self.key(index);
        self.server
            .members_after(&full, after, limit)
            .map_err(unavailable(format!("reading index {index}")))
    }

    fn count(&mut self, index: &str, min: u64, max: u64) -> Result<u64, StoreError> {
        let full = self.key(index);
        self.server
            .count(&full, min, max)
            .map_err(unavailable(format!("counting index {index}")))
    }
}
