//! Reading stores written by the original TypeScript `FileSessionStore`, exactly:
//!
//! - file `<sessionId>.session`;
//! - text = hex(IV, 16 bytes) || hex(GCM tag, 16 bytes) || hex(ciphertext);
//! - key = scrypt(secret, salt = the 5 ASCII bytes `salt`, N = 16384, r = 8, p = 1, 32 bytes);
//! - AES-256-GCM with the 16-byte IV, no associated data; plaintext = the session's JSON.

use serde::Serialize;

use crate::document::id;
use crate::document::session::Session;
use crate::error::StoreError;
use crate::fs::Dir;
use crate::seal::crypto::{Key, ScryptParams, Unauthentic};
use crate::sessions::Sessions;

/// The extension of the original's session files.
pub const EXT: &str = ".session";
/// The original's fixed scrypt salt.
pub const SALT: &[u8] = b"salt";
/// The original's scrypt cost: Node's default N = 16384.
pub const LOG_N: u8 = 14;
/// The largest legacy file read: the hex of a 16 MiB session and its IV and tag.
pub const MAX_FILE_LEN: u64 = 2 * (16 * 1024 * 1024 + 32) + 2;

/// Derives the original store's key from its secret.
pub fn key(secret: &str) -> Result<Key, StoreError> {
    let params = ScryptParams {
        salt: SALT.to_vec(),
        log_n: LOG_N,
        r: 8,
        p: 1,
    };
    Key::derive(secret, &params)
}

/// Why a legacy file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// The text is not an even number of hex digits.
    #[error("not hex text: {0}")]
    NotHex(String),
    /// Shorter than an IV and a tag.
    #[error("{0} bytes after hex decoding, shorter than the 32-byte IV and tag")]
    Truncated(usize),
    /// Authentication failed: a wrong secret, or changed bytes.
    #[error("authenticated decryption failed (wrong secret, or the file was changed)")]
    Unauthentic(#[from] Unauthentic),
    /// Decrypted, but not a session document.
    #[error("decrypted, but not a session document: {0}")]
    NotSession(String),
}

/// Decrypts and parses one legacy file's bytes.
pub fn decode(key: &Key, file: &[u8]) -> Result<Session, LegacyError> {
    let text = file.trim_ascii();
    let bytes = hex::decode(text).map_err(|e| LegacyError::NotHex(e.to_string()))?;
    let (iv, rest) = bytes
        .split_first_chunk::<16>()
        .ok_or(LegacyError::Truncated(bytes.len()))?;
    let (tag, ciphertext) = rest
        .split_first_chunk::<16>()
        .ok_or(LegacyError::Truncated(bytes.len()))?;
    let mut sealed = Vec::with_capacity(ciphertext.len() + 16);
    sealed.extend_from_slice(ciphertext);
    sealed.extend_from_slice(tag);
    let plaintext = key.open_legacy(iv, &sealed)?;
    serde_json::from_slice(&plaintext).map_err(|e| LegacyError::NotSession(e.to_string()))
}

/// What an import did with the files it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Ids imported into the store.
    pub imported: Vec<String>,
    /// Ids skipped because their session had expired.
    pub expired: Vec<String>,
    /// Ids that already hold a live session in the store; left as they are.
    pub already_present: Vec<String>,
    /// Files that could not be imported, with the reason.
    pub failed: Vec<ImportFailure>,
}

/// A legacy file that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportFailure {
    /// The file's name in the legacy directory.
    pub file: String,
    /// Why it was not imported.
    pub reason: String,
}

impl ImportReport {
    /// Adds another batch's report to this one.
    pub fn extend(&mut self, other: ImportReport) {
        self.imported.extend(other.imported);
        self.expired.extend(other.expired);
        self.already_present.extend(other.already_present);
        self.failed.extend(other.failed);
    }
}

/// A directory written by the original store, read with its secret. Never written to.
pub struct LegacyStore<D> {
    dir: D,
    key: Key,
}

impl<D: Dir> LegacyStore<D> {
    /// Derives the legacy key and checks it: if no legacy file authenticates under it
    /// while at least one well-formed file exists, the secret is wrong (`wrong-key`).
    /// A store whose first file decrypts costs one decryption to check.
    pub fn open(dir: D, secret: &str) -> Result<Self, StoreError> {
        Self::with_key(dir, key(secret)?)
    }

    /// [`LegacyStore::open`] with the key [`key`] derived from the secret, so that
    /// importing many directories runs scrypt once.
    pub fn with_key(dir: D, key: Key) -> Result<Self, StoreError> {
        let legacy = LegacyStore { dir, key };
        let mut unauthentic = 0;
        for file in legacy.files()? {
            match legacy.read(&file) {
                Ok(_) => return Ok(legacy),
                Err(Failure::Legacy(LegacyError::Unauthentic(_))) => unauthentic += 1,
                Err(Failure::Legacy(_) | Failure::Unreadable(_)) => {}
                Err(Failure::Store(e)) => return Err(e),
            }
        }
        if unauthentic > 0 {
            return Err(StoreError::WrongKey);
        }
        Ok(legacy)
    }

    /// The names of the legacy session files (`*.session` regular files), sorted.
    pub fn files(&self) -> Result<Vec<String>, StoreError> {
        let entries = self
            .dir
            .entries("")
            .map_err(|e| StoreError::io("listing the legacy directory", e))?
            .unwrap_or_default();
        let mut files: Vec<String> = entries
            .into_iter()
            .filter(|e| e.is_file && e.name.ends_with(EXT))
            .map(|e| e.name)
            .collect();
        files.sort_unstable();
        Ok(files)
    }

    /// Imports `files` into `store`: live sessions are created; expired ones, ones the
    /// store already holds and files that fail are reported, and nothing is overwritten.
    pub fn import_into(
        &self,
        store: &mut dyn Sessions,
        files: &[String],
    ) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
        for file in files {
            let fail = |reason: String| ImportFailure {
                file: file.clone(),
                reason,
            };
            let session = match self.read(file) {
                Ok(session) => session,
                Err(Failure::Store(e)) => return Err(e),
                Err(Failure::Legacy(e)) => {
                    report.failed.push(fail(e.to_string()));
                    continue;
                }
                Err(Failure::Unreadable(reason)) => {
                    report.failed.push(fail(reason));
                    continue;
                }
            };
            let named = file.strip_suffix(EXT).unwrap_or(file);
            if session.id() != named {
                report.failed.push(fail(format!(
                    "the file is named for session {named:?} but holds session {:?}; imported under neither",
                    session.id()
                )));
                continue;
            }
            if store.is_expired(&session) {
                report.expired.push(session.id().to_owned());
                continue;
            }
            match store.create(&session) {
                Ok(()) => report.imported.push(session.id().to_owned()),
                Err(StoreError::AlreadyExists) => {
                    report.already_present.push(session.id().to_owned())
                }
                Err(
                    e @ (StoreError::InvalidId(_)
                    | StoreError::InvalidInput(_)
                    | StoreError::TooLarge(_)
                    | StoreError::MissingKey(_)),
                ) => report.failed.push(fail(e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    fn read(&self, file: &str) -> Result<Session, Failure> {
        let named = file.strip_suffix(EXT).unwrap_or(file);
        id::validate(named).map_err(|e| Failure::Unreadable(e.to_string()))?;
        let bytes = match self.dir.read(file, MAX_FILE_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Failure::Unreadable("the file disappeared".into())),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(Failure::Unreadable(e.to_string()));
            }
            Err(e) => {
                return Err(Failure::Store(StoreError::io(
                    format!("reading legacy {file}"),
                    e,
                )));
            }
        };
        Ok(decode(&self.key, &bytes)?)
    }
}

/// Why one legacy file could not be read.
enum Failure {
    Legacy(LegacyError),
    Unreadable(String),
    Store(StoreError),
}

impl From<LegacyError> for Failure {
    fn from(e: LegacyError) -> Self {
        Failure::Legacy(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "legacy-fixture-secret-0123456789-abcdefghij";
    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/legacy-ts");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURE}/store/{name}")).unwrap()
    }

    fn expected() -> Vec<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE}/expected.json")).unwrap()).unwrap()
    }

    #[test]
    fn decodes_every_fixture_file_to_its_expected_document() {
        let key = key(SECRET).unwrap();
        for doc in expected() {
            let id = doc["sessionId"].as_str().unwrap();
            let session = decode(&key, &fixture(&format!("{id}{EXT}"))).unwrap();
            assert_eq!(serde_json::to_value(&session).unwrap(), doc, "{id}");
        }
    }

    #[test]
    fn a_wrong_secret_fails_authentication() {
        let key = key("legacy-fixture-secret-0123456789-abcdefghiJ").unwrap();
        let file = fixture("s000000-739e027cdc17fe6f.session");
        assert_eq!(
            decode(&key, &file),
            Err(LegacyError::Unauthentic(Unauthentic))
        );
    }

    #[test]
    fn damage_is_reported_by_kind() {
        let key = key(SECRET).unwrap();
        let file = fixture("s000001-0c9ffa8162d01be9.session");
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            decode(&key, &flipped),
            Err(LegacyError::Unauthentic(Unauthentic))
        );
        assert!(matches!(
            decode(&key, &file[..63]),
            Err(LegacyError::NotHex(_))
        ));
        assert_eq!(decode(&key, &file[..62]), Err(LegacyError::Truncated(31)));
        assert!(matches!(decode(&key, b"zz"), Err(LegacyError::NotHex(_))));
    }
}
