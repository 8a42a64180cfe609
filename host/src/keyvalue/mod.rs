//! The key-value component's imports over a Redis server: `wasi:keyvalue` (`store`,
//! `atomics`, `batch`) and session-vault's `indexes` (in [`wasi`], linked by
//! [`add_to_linker`] on a [`KeyvalueView`] of whatever holds the store's data), and the
//! same bucket natively ([`RedisBucket`]). Both send the commands of [`commands`].
//!
//! A bucket named `P` is every key `{P}:…`: the braces are a Redis Cluster hash tag,
//! so one store's keys share a slot and one script may touch them all. A
//! compare-and-swap remembers the value it read; its commit is one Lua script that
//! compares, writes (with a TTL) and updates the indexes atomically.

pub(crate) mod bindings;
mod commands;
mod handles;
mod native;
mod server;
mod wasi;

pub use native::{RedisBucket, RedisCas};
pub use server::{DEFAULT_TIMEOUT, RedisConfig, Server};
pub use wasi::{KeyvalueCtx, KeyvalueView, add_to_linker};

use session_vault_guest::StoreError;

/// The key prefix of bucket `name`: 1 to 64 characters of `[A-Za-z0-9_.-]`, so no glob
/// or hash-tag character can reach a key or a `SCAN` pattern.
fn bucket_prefix(name: &str) -> Option<String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let valid = !name.is_empty() && name.len() <= 64;
    (valid && name.bytes().all(allowed)).then(|| format!("{{{name}}}:"))
}

fn invalid_bucket(name: &str) -> StoreError {
    StoreError::InvalidInput(format!(
        "bucket (prefix) {name:?} must be 1 to 64 characters of [A-Za-z0-9_.-]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_cannot_reach_a_key_pattern() {
        assert_eq!(
            bucket_prefix("app-1.sessions").as_deref(),
            Some("{app-1.sessions}:")
        );
        for bad in ["", "a*", "a?", "a[b]", "a}b", "a:b", "a b", &"x".repeat(65)] {
            assert_eq!(bucket_prefix(bad), None, "{bad}");
        }
    }
}
