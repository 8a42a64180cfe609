//! The component's `wasi:keyvalue` and `indexes` imports, on the vault's [`Server`].
//! A server failure is the WIT `error::other` with its cause; a bucket when the vault
//! has no server is `no-such-store`.
//!
//! As in wasmtime's own `wasi-keyvalue`, the imports run on a view ([`KeyvalueView`])
//! that borrows this module's state ([`KeyvalueCtx`]) and the store's resource table,
//! so that whoever owns the store data links them with [`add_to_linker`] and this
//! module needs to know nothing of it.

use session_vault_guest::bucket::{Change, Entry, LedgerPage, Member};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::bindings::{atomics, batch, indexes, store};
use super::bucket_prefix;
use super::commands::Commit;
use super::handles::{Bucket, Cas};
use super::server::Server;

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

/// The state the key-value imports run against, kept in the store's data.
pub struct KeyvalueCtx {
    /// The server behind `wasi:keyvalue`; `None`: every bucket is `no-such-store`.
    server: Option<Server>,
}

impl KeyvalueCtx {
    /// The imports over `server`, or over no server (every bucket `no-such-store`).
    pub fn new(server: Option<Server>) -> KeyvalueCtx {
        KeyvalueCtx { server }
    }
}

/// What the key-value imports see of the store's data: its [`KeyvalueCtx`], and the
/// resource table, shared with WASI, that holds the guest's bucket and `cas` handles.
pub struct KeyvalueView<'a> {
    ctx: &'a mut KeyvalueCtx,
    table: &'a mut ResourceTable,
}

impl<'a> KeyvalueView<'a> {
    /// The view of `ctx` and `table`.
    pub fn new(ctx: &'a mut KeyvalueCtx, table: &'a mut ResourceTable) -> KeyvalueView<'a> {
        KeyvalueView { ctx, table }
    }

    /// Runs `request` on the server, a failure as `other` with its cause.
    fn on_server<T>(
        &mut self,
        request: impl FnOnce(&mut Server) -> Result<T, String>,
    ) -> Result<T, store::Error> {
        let server = self.ctx.server.as_mut().ok_or(store::Error::NoSuchStore)?;
        request(server).map_err(store::Error::Other)
    }

    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<&Bucket> {
        Ok(self.table.get(bucket)?)
    }
}

/// Tells the generated bindings that the imports run on a [`KeyvalueView`], which
/// borrows the store's data for as long as one call.
struct HasKeyvalue;

impl HasData for HasKeyvalue {
    type Data<'a> = KeyvalueView<'a>;
}

/// Adds the key-value imports (`wasi:keyvalue` `store`, `atomics` and `batch`, and
/// `indexes`) to `linker`; `view` makes the [`KeyvalueView`] of a store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KeyvalueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKeyvalue>(linker, view)?;
    atomics::add_to_linker::<T, HasKeyvalue>(linker, view)?;
    batch::add_to_linker::<T, HasKeyvalue>(linker, view)?;
    indexes::add_to_linker::<T, HasKeyvalue>(linker, view)?;
    Ok(())
}

fn entry(entry: indexes::Entry) -> Entry {
    Entry {
        index: entry.index,
        member: entry.member,
        score: entry.score,
    }
}

fn page_to_wit(page: LedgerPage) -> indexes::LedgerPage {
    indexes::LedgerPage {
        frames: page.frames,
        last: page.last,
        max_deleted: page.max_deleted,
        last_generated: page.last_generated,
    }
}

fn member(member: indexes::Member) -> Member {
    Member {
        index: member.index,
        member: member.member,
    }
}

impl store::Host for KeyvalueView<'_> {
    fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        if self.ctx.server.is_none() {
            return Ok(Err(store::Error::NoSuchStore));
        }
        let prefix = match bucket_prefix(&identifier) {
            Ok(prefix) => prefix,
            Err(refused) => return Ok(Err(store::Error::Other(refused.to_string()))),
        };
        Ok(Ok(self.table.push(Bucket { prefix })?))
    }
}

impl store::HostBucket for KeyvalueView<'_> {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let key = self.bucket(&bucket)?.key(&key);
        Ok(self.on_server(|s| s.get(&key)))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let key = self.bucket(&bucket)?.key(&key);
        Ok(self.on_server(|s| s.set(&key, &value)))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let key = self.bucket(&bucket)?.key(&key);
        Ok(self.on_server(|s| s.delete_many(&[key])))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let key = self.bucket(&bucket)?.key(&key);
        Ok(self.on_server(|s| s.exists(&key)))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Outcome<store::KeyResponse> {
        let prefix = self.bucket(&bucket)?.prefix.clone();
        let page = self.on_server(|s| s.scan(&prefix, cursor.as_deref()));
        Ok(page.map(|(keys, cursor)| store::KeyResponse { keys, cursor }))
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyvalueView<'_> {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Outcome<i64> {
        let key = self.bucket(&bucket)?.key(&key);
        Ok(self.on_server(|s| s.increment(&key, delta)))
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let change = Change {
            value: Some(value),
            ..Change::default()
        };
        self.commit_cas(cas, &change)
    }
}

impl atomics::HostCas for KeyvalueView<'_> {
    fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Resource<Cas>> {
        let bucket = self.bucket(&bucket)?;
        let (key, prefix) = (bucket.key(&key), bucket.prefix.clone());
        let read = match self.on_server(|s| s.get(&key)) {
            Ok(read) => read,
            Err(error) => return Ok(Err(error)),
        };
        Ok(Ok(self.table.push(Cas { key, read, prefix })?))
    }

    fn current(&mut self, cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.read.clone()))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl KeyvalueView<'_> {
    /// Applies `change` through `cas`: the handle is consumed when applied or failed,
    /// and given back when the key changed (as `wasi:keyvalue`'s `swap` does).
    fn commit_cas(
        &mut self,
        cas: Resource<Cas>,
        change: &Change,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.get(&cas)?;
        let (prefix, key, read) = (
            handle.prefix.clone(),
            handle.key.clone(),
            handle.read.clone(),
        );
        Ok(
            match self.on_server(|s| s.commit(&prefix, &key, read.as_deref(), change)) {
                Ok(Commit::Applied) => {
                    self.table.delete(cas)?;
                    Ok(())
                }
                Ok(Commit::Changed) => Err(atomics::CasError::CasFailed(cas)),
                // `indexes.commit` documents a fenced bucket as `access-denied`.
                Ok(Commit::Fenced) => {
                    self.table.delete(cas)?;
                    Err(atomics::CasError::StoreError(store::Error::AccessDenied))
                }
                Err(error) => {
                    self.table.delete(cas)?;
                    Err(atomics::CasError::StoreError(error))
                }
            },
        )
    }
}

impl batch::Host for KeyvalueView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let bucket = self.bucket(&bucket)?;
        let full: Vec<String> = keys.iter().map(|k| bucket.key(k)).collect();
        let values = self.on_server(|s| s.get_many(&full));
        Ok(values.map(|values| {
            keys.into_iter()
                .zip(values)
                .map(|(key, value)| value.map(|v| (key, v)))
                .collect()
        }))
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let bucket = self.bucket(&bucket)?;
        let pairs: Vec<(String, Vec<u8>)> = key_values
            .into_iter()
            .map(|(k, v)| (bucket.key(&k), v))
            .collect();
        Ok(self.on_server(|s| s.set_many(&pairs)))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let bucket = self.bucket(&bucket)?;
        let full: Vec<String> = keys.iter().map(|k| bucket.key(k)).collect();
        Ok(self.on_server(|s| s.delete_many(&full)))
    }
}

impl indexes::Host for KeyvalueView<'_> {
    fn commit(
        &mut self,
        cas: Resource<Cas>,
        change: indexes::Change,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let change = Change {
            value: change.value,
            expires_at: change.expires_at,
            add: change.add.into_iter().map(entry).collect(),
            remove: change.remove.into_iter().map(member).collect(),
            frame: change.frame,
        };
        self.commit_cas(cas, &change)
    }

    fn ledger(
        &mut self,
        bucket: Resource<Bucket>,
        after: String,
        limit: u32,
    ) -> Outcome<indexes::LedgerPage> {
        let prefix = self.bucket(&bucket)?.prefix.clone();
        Ok(self
            .on_server(|s| s.ledger(&prefix, &after, limit))
            .map(page_to_wit))
    }

    fn read(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        after: String,
        limit: u32,
    ) -> Outcome<(Option<Vec<u8>>, indexes::LedgerPage)> {
        let bucket = self.bucket(&bucket)?;
        let (prefix, key) = (bucket.prefix.clone(), bucket.key(&key));
        Ok(self
            .on_server(|s| s.read(&prefix, &key, &after, limit))
            .map(|(value, page)| (value, page_to_wit(page))))
    }

    fn watch(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        after: String,
        limit: u32,
    ) -> Outcome<(Resource<Cas>, Option<Vec<u8>>, indexes::LedgerPage)> {
        let bucket = self.bucket(&bucket)?;
        let (prefix, key) = (bucket.prefix.clone(), bucket.key(&key));
        let (read, page) = match self.on_server(|s| s.read(&prefix, &key, &after, limit)) {
            Ok(found) => found,
            Err(error) => return Ok(Err(error)),
        };
        let cas = self.table.push(Cas {
            key,
            read: read.clone(),
            prefix,
        })?;
        Ok(Ok((cas, read, page_to_wit(page))))
    }

    fn trim_ledger(&mut self, bucket: Resource<Bucket>, before: String) -> Outcome<()> {
        let prefix = self.bucket(&bucket)?.prefix.clone();
        Ok(self.on_server(|s| s.trim_ledger(&prefix, &before)))
    }

    fn add(&mut self, bucket: Resource<Bucket>, entries: Vec<indexes::Entry>) -> Outcome<()> {
        let prefix = self.bucket(&bucket)?.prefix.clone();
        let entries: Vec<Entry> = entries.into_iter().map(entry).collect();
        Ok(self.on_server(|s| s.add(&prefix, &entries)))
    }

    fn remove(&mut self, bucket: Resource<Bucket>, members: Vec<indexes::Member>) -> Outcome<()> {
        let prefix = self.bucket(&bucket)?.prefix.clone();
        let members: Vec<Member> = members.into_iter().map(member).collect();
        Ok(self.on_server(|s| s.remove(&prefix, &members)))
    }

    fn range(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Outcome<Vec<String>> {
        let key = self.bucket(&bucket)?.key(&index);
        Ok(self.on_server(|s| s.range(&key, min, max, limit)))
    }

    fn members_after(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        after: String,
        limit: u32,
    ) -> Outcome<Vec<String>> {
        let key = self.bucket(&bucket)?.key(&index);
        Ok(self.on_server(|s| s.members_after(&key, &after, limit)))
    }

    fn count(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        min: u64,
        max: u64,
    ) -> Outcome<u64> {
        let key = self.bucket(&bucket)?.key(&index);
        Ok(self.on_server(|s| s.count(&key, min, max)))
    }
}
