//! Moves between a directory and a bucket, over the in-memory bucket.

mod bucket;

use crate::backend::BackendKind;
use crate::bucket_store::bucket::Bucket;
use crate::bucket_store::memory::MemoryBucket;
use crate::bucket_store::tests::{Host, Testing, config, host, session};
use crate::bucket_store::{BucketStore, layout};
use crate::directory_store::{Config, ManualClock};
use crate::error::StoreError;
use crate::keyring::Secret;
