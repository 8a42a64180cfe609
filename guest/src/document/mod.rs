//! The session document: its model, update's patch and merge rules, and the id rule.

pub mod id;
pub mod model;
pub mod patch;

use crate::error::StoreError;
use model::{Extra, SessionData, names};

/// The default largest serialized session, in bytes.
pub const DEFAULT_MAX_SESSION_BYTES: u32 = 64 * 1024;
/// The smallest value `max_session_bytes` may take.
pub const MIN_MAX_SESSION_BYTES: u32 = 1024;
/// The largest value `max_session_bytes` may take; also bounds every read.
pub const MAX_MAX_SESSION_BYTES: u32 = 16 * 1024 * 1024;

/// Checks what serde cannot: a valid id, and no extra member that repeats a schema name.
pub fn validate(session: &SessionData) -> Result<(), StoreError> {
    id::validate(&session.session_id)?;
    check_extra("the session", &session.extra, names::SESSION)?;
    check_extra(
        "userContext",
        &session.user_context.extra,
        names::USER_CONTEXT,
    )?;
    check_extra(
        "tokenMetadata",
        &session.token_metadata.extra,
        names::TOKEN_METADATA,
    )?;
    check_extra("security", &session.security.extra, names::SECURITY)
}

/// `session` validated and serialized, `too-large` past `max_bytes`.
pub fn serialize(session: &SessionData, max_bytes: u32) -> Result<Vec<u8>, StoreError> {
    validate(session)?;
    let plaintext = serde_json::to_vec(session)
        .map_err(|e| StoreError::InvalidInput(format!("cannot serialize the session: {e}")))?;
    if plaintext.len() > max_bytes as usize {
        return Err(StoreError::TooLarge(format!(
            "session {:?} serializes to {} bytes; the limit is {max_bytes}",
            session.session_id,
            plaintext.len(),
        )));
    }
    Ok(plaintext)
}

fn check_extra(object: &str, extra: &Extra, schema: &[&str]) -> Result<(), StoreError> {
    match extra.keys().find(|name| schema.contains(&name.as_str())) {
        Some(name) => Err(StoreError::InvalidInput(format!(
            "{object} has an extra member {name:?}, which is a schema field"
        ))),
        None => Ok(()),
    }
}

/// A minimal valid session for tests: `id` of `user`, expiring at `expires_at`.
#[cfg(test)]
pub(crate) fn example(id: &str, user: &str, expires_at: u64) -> SessionData {
    let document = serde_json::json!({
        "sessionId": id, "sessionToken": "t",
        "userContext": {"userId": user},
        "tokenMetadata": {"accessToken": "a", "expiresAt": 1, "scopes": []},
        "security": {"ipAddress": "i", "userAgent": "u", "createdAt": 1, "lastAccessedAt": 1, "accessCount": 0},
        "expiresAt": expires_at, "createdAt": 1
    });
    // Every required field is present with its type: this document always parses.
    serde_json::from_value(document).unwrap_or_else(|e| panic!("example session: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_members_may_not_shadow_schema_fields() {
        let mut bad = example("a", "u", 200);
        assert!(validate(&bad).is_ok());
        bad.user_context
            .extra
            .insert("userId".into(), serde_json::json!("x"));
        assert!(matches!(validate(&bad), Err(StoreError::InvalidInput(_))));
    }
}
