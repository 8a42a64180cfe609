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
use session_vault_guest::bucket::bucket_name;

/// The key prefix of the bucket a user's redis `prefix` names ([`bucket_name`]: `sess:`
/// is bucket `sess`): `{name}:`, a Redis Cluster hash tag, so no glob or brace character
/// can reach a key or a `SCAN` pattern. `invalid-input` naming the prefix otherwise.
fn bucket_prefix(prefix: &str) -> Result<String, StoreError> {
    bucket_name(prefix).map(|name| format!("{{{name}}}:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_cannot_reach_a_key_pattern() {
        for (prefix, keys) in [
            ("app-1.sessions", "{app-1.sessions}:"),
            ("sess:", "{sess}:"),
            ("sess", "{sess}:"),
            ("app:prod", "{app:prod}:"),
        ] {
            assert_eq!(bucket_prefix(prefix).unwrap(), keys, "{prefix}");
        }
        for bad in [
            "",
            ":",
            "a*",
            "a?",
            "a[b]",
            "a}b",
            "a{b",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(bucket_prefix(bad), Err(StoreError::InvalidInput(_))),
                "{bad}"
            );
        }
    }
}
