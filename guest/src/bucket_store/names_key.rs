//! The store's names key: 32 random bytes, sealed in the bucket, that key the per-user
//! index names and the version ledger's MACs.

use zeroize::Zeroizing;

use super::bucket::{Bucket, Change};
use super::{RETRIES, layout, lost};
use crate::error::StoreError;
use crate::keyring::Keyring;
use crate::seal::crypto;
use crate::seal::format::{self, Kind};

/// The names key of the store in `bucket`, created (sealed under the current key) if absent.
pub(super) fn names<K: Bucket>(
    bucket: &mut K,
    keyring: &Keyring,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    for _ in 0..RETRIES {
        let (cas, found) = bucket.watch(layout::NAMES)?;
        if let Some(bytes) = found {
            return open_names(keyring, &bytes);
        }
        let mut names = Zeroizing::new([0; 32]);
        crypto::random(names.as_mut_slice())?;
        let sealed = seal_names(keyring, &names, 1)?;
        if bucket.commit(cas, Change::put(sealed))? {
            return Ok(names);
        }
    }
    Err(lost("creating the names key"))
}

pub(super) fn seal_names(
    keyring: &Keyring,
    names: &[u8; 32],
    seq: u64,
) -> Result<Vec<u8>, StoreError> {
    format::encode(
        Kind::Session,
        keyring.current,
        keyring.current_key()?,
        &keyring.scope,
        seq,
        layout::NAMES_ID,
        names,
    )
}

fn open_names(keyring: &Keyring, bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let opened = format::decode(
        bytes,
        Kind::Session,
        &keyring.scope,
        layout::NAMES_ID,
        |id| keyring.key(id),
    )
    .map_err(|e| match e {
        format::DecodeError::MissingKey(id) => StoreError::MissingKey(format!(
            "the names key is sealed under key id {id}, which this store does not hold"
        )),
        other => StoreError::Corrupted(format!("the names key: {other}")),
    })?;
    let plaintext = Zeroizing::new(opened.plaintext);
    let names: [u8; 32] = plaintext
        .as_slice()
        .try_into()
        .map_err(|_len| StoreError::Corrupted("the names key is not 32 bytes".into()))?;
    Ok(Zeroizing::new(names))
}
