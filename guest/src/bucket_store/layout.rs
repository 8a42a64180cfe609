//! The names of a shared store's keys inside its bucket (the host puts the bucket's
//! prefix, a Redis hash tag, in front of each). Any other key is foreign: counted by
//! `check`, never read or removed.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::document::id;

/// The sealed metadata: key ring, KDF salt, store id, MAC.
pub const META: &str = "meta";
/// The sealed names key, which keys the per-user index names.
pub const NAMES: &str = "names";
/// The expiry index: every session id scored by when it expires.
pub const EXPIRY: &str = "x";
/// The id index: every session id, scored 0, so that the server keeps them in byte order
/// (`list` pages through it).
pub const IDS: &str = "i";
/// The fence: present while the store moves out to a directory and after it moved,
/// when every commit is refused. Its value is the backend it went to (a hint for the
/// error only: anyone with access to the server can set it, which can only stop writes).
pub const FENCE: &str = "moving";
/// The version ledger's stream: one authenticated frame per write and removal
/// (`ledger/`).
pub const LEDGER: &str = "l";
/// The version ledger's snapshot: what the stream said before it was trimmed.
pub const SNAPSHOT: &str = "ls";
/// The id the names record is sealed under: not a valid session id, so no session
/// record can pass for it.
pub const NAMES_ID: &str = "#names";

/// What a session's key holds once the session was removed before its expiry: this magic
/// and that expiry (u64 LE), until then (the key's TTL). `set` refuses the id meanwhile, so
/// that a request in flight at a logout cannot bring the session back; every read takes
/// it for absent. Not sealed: forging one only blocks an id, which whoever can write the
/// server can do anyway.
const REMOVED_MAGIC: &[u8; 4] = b"SVRM";

/// The value that marks a session removed until `until`.
pub fn removed_marker(until: u64) -> Vec<u8> {
    let mut value = REMOVED_MAGIC.to_vec();
    value.extend_from_slice(&until.to_le_bytes());
    value
}

/// Until when `value` marks its session removed; `None` if it is no removal marker.
pub fn removed_until(value: &[u8]) -> Option<u64> {
    let rest = value.strip_prefix(REMOVED_MAGIC)?;
    Some(u64::from_le_bytes(rest.try_into().ok()?))
}

const SESSION: &str = "s:";
const QUARANTINE: &str = "q:";
const USER: &str = "u:";

/// The record of session `id`.
pub fn session(id: &str) -> String {
    format!("{SESSION}{id}")
}

/// Where a damaged record of session `id` is moved.
pub fn quarantine(id: &str) -> String {
    format!("{QUARANTINE}{id}")
}

/// The per-user index of `user`: named by an HMAC of the user id under the names key,
/// so the server sees which sessions share a user, never who the user is.
pub fn user(names: &[u8; 32], user: &str) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    let mut mac = match <Hmac>::new_from_slice(names) {
        Ok(mac) => mac,
        Err(_) => return format!("{USER}-"),
    };
    mac.update(user.as_bytes());
    format!("{USER}{}", hex::encode(mac.finalize().into_bytes()))
}

type Hmac = hmac::Hmac<Sha256>;

/// What a key of the bucket is.
#[derive(Debug, PartialEq, Eq)]
pub enum Name<'a> {
    /// [`META`].
    Meta,
    /// [`NAMES`].
    Names,
    /// [`EXPIRY`].
    Expiry,
    /// [`IDS`].
    Ids,
    /// [`FENCE`].
    Fence,
    /// [`LEDGER`] or [`SNAPSHOT`].
    Ledger,
    /// The record of this session.
    Session(&'a str),
    /// The quarantined record of this session.
    Quarantined(&'a str),
    /// A per-user index.
    User,
    /// Not a key this store writes.
    Foreign,
}

/// Classifies `key`; a session key whose id is not valid is foreign.
pub fn parse(key: &str) -> Name<'_> {
    let valid = |id: &'_ str| id::is_valid(id);
    match key {
        META => Name::Meta,
        NAMES => Name::Names,
        EXPIRY => Name::Expiry,
        IDS => Name::Ids,
        FENCE => Name::Fence,
        LEDGER | SNAPSHOT => Name::Ledger,
        _ => {
            if let Some(id) = key.strip_prefix(SESSION).filter(|id| valid(id)) {
                Name::Session(id)
            } else if let Some(id) = key.strip_prefix(QUARANTINE).filter(|id| valid(id)) {
                Name::Quarantined(id)
            } else if key
                .strip_prefix(USER)
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                Name::User
            } else {
                Name::Foreign
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_name_parses_back() {
        assert_eq!(parse(META), Name::Meta);
        assert_eq!(parse(NAMES), Name::Names);
        assert_eq!(parse(EXPIRY), Name::Expiry);
        assert_eq!(parse(IDS), Name::Ids);
        assert_eq!(parse(FENCE), Name::Fence);
        assert_eq!(parse(&session("a-b_1")), Name::Session("a-b_1"));
        assert_eq!(parse(&quarantine("a")), Name::Quarantined("a"));
        assert_eq!(parse(&user(&[1; 32], "alice")), Name::User);
    }

    #[test]
    fn a_removal_marker_says_until_when_and_nothing_else_is_one() {
        assert_eq!(removed_until(&removed_marker(7)), Some(7));
        assert_eq!(removed_until(b"SVRM"), None);
        assert_eq!(removed_until(b"SVLT\x02\x01"), None);
        let mut longer = removed_marker(7);
        longer.push(0);
        assert_eq!(removed_until(&longer), None);
    }

    #[test]
    fn anything_else_is_foreign() {
        for key in [
            "s:", "s:a/b", "s:#names", "u:abc", "u:", "metadata", "x2", "q:",
        ] {
            assert_eq!(parse(key), Name::Foreign, "{key}");
        }
    }

    #[test]
    fn user_index_names_hide_the_user_and_depend_on_the_key() {
        let name = user(&[1; 32], "alice");
        assert!(!name.contains("alice"));
        assert_eq!(name, user(&[1; 32], "alice"));
        assert_ne!(name, user(&[2; 32], "alice"));
        assert_ne!(name, user(&[1; 32], "bob"));
    }
}
