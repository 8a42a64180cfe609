//! The host API's error: a store error is kept apart from a failure of the component.

use std::fmt;

use session_vault_guest::StoreError;

/// Why a [`Vault`](crate::Vault) call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed the operation; the vault is still usable.
    Store(StoreError),
    /// The component trapped (or could not be entered). The vault is unusable from
    /// then on: drop it and open the store again.
    Trap(wasmtime::Error),
    /// The component could not be compiled, linked or instantiated.
    Component(wasmtime::Error),
}

impl Error {
    /// The store error, if this is one.
    pub fn store(&self) -> Option<&StoreError> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(e) => e.fmt(f),
            Error::Trap(_) => f.write_str("the session-vault component trapped"),
            Error::Component(_) => f.write_str("cannot load the session-vault component"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: the store error is displayed as this error, so its cause comes next.
            Error::Store(e) => std::error::Error::source(e),
            Error::Trap(e) | Error::Component(e) => Some(e.as_ref()),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_display_as_themselves_and_keep_their_kind() {
        let error = Error::from(StoreError::WrongKey);
        assert_eq!(error.store().map(StoreError::kind), Some("wrong-key"));
        assert_eq!(error.to_string(), StoreError::WrongKey.to_string());
    }

    #[test]
    fn traps_are_not_store_errors() {
        let error = Error::Trap(wasmtime::format_err!("unreachable"));
        assert!(error.store().is_none());
        assert!(error.to_string().contains("trapped"));
    }
}
