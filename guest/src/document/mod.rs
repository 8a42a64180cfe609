//! The session document: any JSON object with a `sessionId` and an `expiresAt`
//! ([`session::Session`]), the original's typed model of one ([`model::SessionData`]),
//! update's patch and merge rules, and the id rule.

pub mod id;
pub mod model;
pub mod patch;
pub mod session;

use crate::error::StoreError;
use model::{Extra, SessionData, names};
use session::Session;

/// The default largest serialized session, in bytes.
pub const DEFAULT_MAX_SESSION_BYTES: u32 = 64 * 1024;
/// The smallest value `max_session_bytes` may take.
pub const MIN_MAX_SESSION_BYTES: u32 = 1024;
/// The largest value `max_session_bytes` may take; also bounds every read.
pub const MAX_MAX_SESSION_BYTES: u32 = 16 * 1024 * 1024;

/// Checks what serde cannot in an original-shaped session: a valid id, and no extra
/// member that repeats a schema name.
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

/// `session` as stored: its JSON text, `too-large` past `max_bytes`.
pub fn serialize(session: &Session, max_bytes: u32) -> Result<Vec<u8>, StoreError> {
    let plaintext = session.to_vec();
    if plaintext.len() > max_bytes as usize {
        return Err(StoreError::TooLarge(format!(
            "session {:?} serializes to {} bytes; the limit is {max_bytes}",
            session.id(),
            plaintext.len(),
        )));
    }
    Ok(plaintext)
}

impl TryFrom<&SessionData> for Session {
    type Error = StoreError;

    /// The document of an original-shaped session; `invalid-id` or `invalid-input` as
    /// [`validate`].
    fn try_from(session: &SessionData) -> Result<Session, StoreError> {
        validate(session)?;
        let value = serde_json::to_value(session)
            .map_err(|e| StoreError::InvalidInput(format!("cannot serialize the session: {e}")))?;
        Session::from_value(value)
    }
}

impl TryFrom<&Session> for SessionData {
    type Error = StoreError;

    /// The original's typed view of `session`; `invalid-input` if it is not
    /// original-shaped (a member missing or of another type).
    fn try_from(session: &Session) -> Result<SessionData, StoreError> {
        serde_json::from_value(session.to_value()).map_err(|e| {
            StoreError::InvalidInput(format!(
                "session {:?} is not an original-shaped session: {e}",
                session.id()
            ))
        })
    }
}

fn check_extra(object: &str, extra: &Extra, schema: &[&str]) -> Result<(), StoreError> {
    match extra.keys().find(|name| schema.contains(&name.as_str())) {
        Some(name) => Err(StoreError::InvalidInput(format!(
            "{object} has an extra member {name:?}, which is a schema field"
        ))),
        None => Ok(()),
    }
}

/// A minimal valid original-shaped session for tests: `id` of `user`, expiring at
/// `expires_at`.
#[cfg(test)]
pub(crate) fn example(id: &str, user: &str, expires_at: u64) -> Session {
    let document = serde_json::json!({
        "sessionId": id, "sessionToken": "t",
        "userContext": {"userId": user},
        "tokenMetadata": {"accessToken": "a", "expiresAt": 1, "scopes": []},
        "security": {"ipAddress": "i", "userAgent": "u", "createdAt": 1, "lastAccessedAt": 1, "accessCount": 0},
        "expiresAt": expires_at, "createdAt": 1
    });
    // Every required field is present with its type: this document always parses.
    Session::from_value(document).unwrap_or_else(|e| panic!("example session: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_members_may_not_shadow_schema_fields() {
        let mut bad = SessionData::try_from(&example("a", "u", 200)).unwrap();
        assert!(validate(&bad).is_ok());
        bad.user_context
            .extra
            .insert("userId".into(), serde_json::json!("x"));
        assert!(matches!(validate(&bad), Err(StoreError::InvalidInput(_))));
        assert!(matches!(
            Session::try_from(&bad),
            Err(StoreError::InvalidInput(_))
        ));
    }
}
