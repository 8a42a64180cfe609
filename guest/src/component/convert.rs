//! Conversions between the WIT records and the store's types.

use serde_json::Value;

use super::wit;
use crate::document::model::Extra;
use crate::document::patch::{SecurityPatch, SessionPatch, TokenMetadataPatch, UserContextPatch};
use crate::document::session::Session;
use crate::error::StoreError;
use crate::keyring::Secret;

pub(super) fn secret_from_wit(secret: wit::Secret) -> Secret {
    match secret {
        wit::Secret::Passphrase(phrase) => Secret::Passphrase(phrase),
        wit::Secret::RawKey(bytes) => Secret::RawKey(bytes),
    }
}

fn extra_from_wit(object: &str, fields: Vec<wit::ExtraField>) -> Result<Extra, StoreError> {
    let mut extra = Extra::new();
    for field in fields {
        let value: Value = serde_json::from_str(&field.value).map_err(|e| {
            StoreError::InvalidInput(format!(
                "{object}: extra member {:?} is not valid JSON: {e}",
                field.name
            ))
        })?;
        if extra.insert(field.name.clone(), value).is_some() {
            return Err(StoreError::InvalidInput(format!(
                "{object}: extra member {:?} is given twice",
                field.name
            )));
        }
    }
    Ok(extra)
}

/// The session whose JSON text the caller passed; refused as `Session::parse` says.
pub(super) fn session_from_wit(text: String) -> Result<Session, StoreError> {
    Session::parse(text.as_bytes())
}

/// A session as the JSON text the WIT passes.
pub(super) fn session_to_wit(session: Session) -> String {
    session.to_string()
}

pub(super) fn patch_from_wit(p: wit::SessionPatch) -> Result<SessionPatch, StoreError> {
    Ok(SessionPatch {
        session_id: p.session_id,
        session_token: p.session_token,
        user_context: p
            .user_context
            .map(|u| -> Result<_, StoreError> {
                Ok(UserContextPatch {
                    user_id: u.user_id,
                    email: u.email,
                    name: u.name,
                    tenant_id: u.tenant_id,
                    roles: u.roles,
                    extra: extra_from_wit("userContext", u.extra)?,
                })
            })
            .transpose()?,
        token_metadata: p
            .token_metadata
            .map(|t| -> Result<_, StoreError> {
                Ok(TokenMetadataPatch {
                    access_token: t.access_token,
                    refresh_token: t.refresh_token,
                    id_token: t.id_token,
                    expires_at: t.expires_at,
                    scopes: t.scopes,
                    extra: extra_from_wit("tokenMetadata", t.extra)?,
                })
            })
            .transpose()?,
        security: p
            .security
            .map(|c| -> Result<_, StoreError> {
                Ok(SecurityPatch {
                    ip_address: c.ip_address,
                    user_agent: c.user_agent,
                    created_at: c.created_at,
                    last_accessed_at: c.last_accessed_at,
                    access_count: c.access_count,
                    fingerprint: c.fingerprint,
                    extra: extra_from_wit("security", c.extra)?,
                })
            })
            .transpose()?,
        expires_at: p.expires_at,
        created_at: p.created_at,
        extra: extra_from_wit("the session", p.extra)?,
    })
}
