//! What the maintenance calls report: `check`'s findings, the key list, `rekey`'s
//! progress.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::keyring::{Keyring, Meta};

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Sessions that decrypted and have not expired.
    pub live: u64,
    /// Sessions that decrypted and have expired.
    pub expired: u64,
    /// SessionData files under a key this store does not hold.
    pub missing_key: u64,
    /// Files in `quarantine/`.
    pub quarantined: u64,
    /// Ids moved to `quarantine/` by this check.
    pub newly_quarantined: Vec<String>,
    /// Entries that are not session-vault files.
    pub foreign: u64,
    /// Bytes of removed or replaced records still on disk (`check` only; 0 at open).
    pub dead_bytes: u64,
    /// The oldest key id any record on disk is sealed under, live or dead (`check`
    /// only; `None` at open).
    pub oldest_key: Option<u32>,
}

/// One key of the store, as `keys` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The id session files record in their header.
    pub id: u32,
    /// Whether new writes use this key.
    pub current: bool,
    /// Whether the key was retired (the store no longer holds it).
    pub retired: bool,
    /// How many session files are encrypted under it.
    pub sessions: u64,
}

/// How far `rekey` got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RekeyProgress {
    /// Sessions re-encrypted under the current key by this call.
    pub rekeyed: u64,
    /// Sessions still under an older key.
    pub remaining: u64,
}

/// The keys `meta` lists, with how many sessions `counts` puts under each and which one
/// `keyring` writes with.
pub(crate) fn key_infos(
    meta: &Meta,
    keyring: &Keyring,
    counts: &BTreeMap<u32, u64>,
) -> Vec<KeyInfo> {
    meta.entries()
        .iter()
        .map(|entry| KeyInfo {
            id: entry.id,
            current: entry.id == keyring.current,
            retired: entry.retired,
            sessions: counts.get(&entry.id).copied().unwrap_or(0),
        })
        .collect()
}
