//! The names and size limits of a store directory, shared by every backend.

use crate::document::id;
use crate::error::StoreError;
use crate::seal::crypto;

/// The store metadata file (key entries, backend, migration state), in the store directory.
pub const META_FILE: &str = "session-vault.json";
/// The largest metadata file a store reads. Every key ever added keeps an entry (a
/// retired one too, so its secret can bring it back), so this bounds the keyring.
pub const MAX_META_LEN: u64 = 1024 * 1024;
/// The extension of session files.
pub const SESSION_EXT: &str = ".svs";
/// The extension of access stamps.
pub const STAMP_EXT: &str = ".sva";
/// The lock file a host without directory locks (the npm package: WASI has none) keeps in
/// the store directory while it has the store open. The store never reads it: it is not
/// foreign, and a directory holding only it is still empty.
pub const LOCK_FILE: &str = "session-vault.lock";
/// The subdirectory that holds quarantined files.
pub const QUARANTINE_DIR: &str = "quarantine";
const TEMP_EXT: &str = ".tmp";
const LEDGER_PREFIX: &str = "session-vault.";
const LEDGER_EXT: &str = ".ledger";

/// The file name of generation `generation` of the version ledger.
pub fn ledger_name(generation: u64) -> String {
    format!("{LEDGER_PREFIX}{generation:016x}{LEDGER_EXT}")
}

/// The generation a ledger's file name names, if it is one:
/// `session-vault.<16 lowercase hex>.ledger`.
pub fn ledger_generation(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(LEDGER_PREFIX)?.strip_suffix(LEDGER_EXT)?;
    let lower = hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    lower.then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

/// The file name of session `id`.
pub fn session_name(id: &str) -> String {
    format!("{id}{SESSION_EXT}")
}

/// The file name of the access stamp of session `id`.
pub fn stamp_name(id: &str) -> String {
    format!("{id}{STAMP_EXT}")
}

/// The id of an access stamp's file name, if it is one.
pub fn stamp_id(name: &str) -> Option<&str> {
    name.strip_suffix(STAMP_EXT).filter(|id| id::is_valid(id))
}

/// The id of a session file name, if it is one.
pub fn session_id(name: &str) -> Option<&str> {
    name.strip_suffix(SESSION_EXT).filter(|id| id::is_valid(id))
}

pub(crate) fn temp_name(name: &str) -> Result<String, StoreError> {
    let mut suffix = [0u8; 8];
    crypto::random(&mut suffix)?;
    Ok(format!("{name}.{}{TEMP_EXT}", hex::encode(suffix)))
}

/// Whether `name` is a temporary file this backend writes: `<name>.<16 lowercase hex>.tmp`.
pub(crate) fn is_temp_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(TEMP_EXT) else {
        return false;
    };
    match stem.rsplit_once('.') {
        Some((base, hex)) => {
            !base.is_empty()
                && hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_temp_name("a.svs.0123456789abcdef.tmp"));
        assert!(is_temp_name("session-vault.json.0123456789abcdef.tmp"));
        assert!(!is_temp_name("a.svs.0123456789ABCDEF.tmp"));
        assert!(!is_temp_name("a.svs.0123.tmp"));
        assert!(!is_temp_name("notes.tmp"));
        assert!(!is_temp_name(".0123456789abcdef.tmp"));
    }

    #[test]
    fn ledger_names_round_trip_and_nothing_else_matches() {
        assert_eq!(ledger_name(26), "session-vault.000000000000001a.ledger");
        assert_eq!(ledger_generation(&ledger_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(
            ledger_generation("session-vault.000000000000001A.ledger"),
            None
        );
        assert_eq!(ledger_generation("session-vault.1a.ledger"), None);
        assert_eq!(ledger_generation("session-vault.json"), None);
        assert_eq!(session_id(&ledger_name(1)), None);
    }
}
