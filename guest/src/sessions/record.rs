//! Opening a session's sealed record: the same checks for a file, a log record and a
//! bucket's value.

use crate::document::session::Session;
use crate::error::StoreError;
use crate::keyring::Keyring;
use crate::seal::format::{self, DecodeError, Kind};

/// Decrypts and parses the sealed record `file` of session `id` with `keyring`, named
/// `name` in errors: a key the ring lacks is `missing-key`; anything else wrong with the
/// record (it does not open, is not a session document, or holds another session) is
/// `corrupted`.
pub(crate) fn decode(
    keyring: &Keyring,
    id: &str,
    name: &str,
    file: &[u8],
) -> Result<Session, StoreError> {
    let plaintext = format::decode(file, Kind::Session, &keyring.scope, id, |key_id| {
        keyring.key(key_id)
    })
    .map_err(|e| match e {
        DecodeError::MissingKey(key_id) => StoreError::MissingKey(format!(
            "{name} is encrypted under key id {key_id}, which this store does not hold"
        )),
        other => StoreError::Corrupted(format!("{name}: {other}")),
    })?
    .plaintext;
    let session = crate::document::deserialize(&plaintext).map_err(|e| {
        StoreError::Corrupted(format!(
            "{name}: decrypted, but not a session document: {e}"
        ))
    })?;
    if session.id() != id {
        return Err(StoreError::Corrupted(format!(
            "{name} holds session {:?}",
            session.id()
        )));
    }
    Ok(session)
}
