//! Moves between a directory and a bucket, over the in-memory bucket.

mod bucket;

use crate::backend::BackendKind;
use crate::bucket_store::bucket::Bucket;
use crate::bucket_store::memory::MemoryBucket;
use crate::bucket_store::tests::Testing;
use crate::bucket_store::{BucketStore, layout};
use crate::directory_store::{Config, ManualClock};
use crate::document::model::SessionData;
use crate::error::StoreError;
use crate::keyring::Secret;

type Host = BucketStore<MemoryBucket, ManualClock>;

fn config(key: u8) -> Config {
    Config::new(Secret::RawKey(vec![key; 32]))
}

fn host(bucket: &MemoryBucket, clock: &ManualClock) -> Host {
    BucketStore::open(bucket.clone(), clock.clone(), config(5)).unwrap()
}

fn session(id: &str, user: &str, expires_at: u64) -> SessionData {
    crate::document::example(id, user, expires_at)
}
