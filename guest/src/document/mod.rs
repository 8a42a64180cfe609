//! The session document: any JSON object with a `sessionId` and an `expiresAt`
//! ([`session::Session`]), the original's typed model of one ([`model::SessionData`]),
//! update's patch and merge rules, and the id rule.

pub mod id;
pub mod model;
pub mod patch;
pub mod session;
mod strict;

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

/// The first byte of a stored plaintext that carries when the session was first written
/// (`FIRST_WRITTEN || u64 LE || JSON`): never the first byte of a JSON object (`{`).
const FIRST_WRITTEN: u8 = 0x01;

/// `session` as stored: its JSON text, preceded by when it was first written for a
/// session that has it (one without `createdAt`); `too-large` past `max_bytes` (which
/// counts the JSON only).
pub fn serialize(session: &Session, max_bytes: u32) -> Result<Vec<u8>, StoreError> {
    let json = session.to_vec();
    if json.len() > max_bytes as usize {
        return Err(StoreError::TooLarge(format!(
            "session {:?} serializes to {} bytes; the limit is {max_bytes}",
            session.id(),
            json.len(),
        )));
    }
    let plaintext = match session
        .first_written()
        .filter(|_| session.created_at().is_none())
    {
        Some(at) => {
            let mut plaintext = Vec::with_capacity(9 + json.len());
            plaintext.push(FIRST_WRITTEN);
            plaintext.extend_from_slice(&at.to_le_bytes());
            plaintext.extend_from_slice(&json);
            plaintext
        }
        None => json,
    };
    // Every read is bounded by the largest limit: nothing past it may be written.
    if plaintext.len() > MAX_MAX_SESSION_BYTES as usize {
        return Err(StoreError::TooLarge(format!(
            "session {:?} is {} bytes as stored; no store holds more than {MAX_MAX_SESSION_BYTES}",
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

/// Refuses an extra member of `object` that names one of its `schema` fields: in a typed
/// session or a patch, it would dodge that field's rules (through a patch's extras,
/// `sessionId` would write over another session).
pub(crate) fn check_extra(object: &str, extra: &Extra, schema: &[&str]) -> Result<(), StoreError> {
    match extra.keys().find(|name| schema.contains(&name.as_str())) {
        Some(name) => Err(StoreError::InvalidInput(format!(
            "{object} has an extra member {name:?}, which is a schema field"
        ))),
        None => Ok(()),
    }
}

/// The session a stored plaintext holds (see [`serialize`]); errors as
/// [`Session::parse`], or `invalid-input` for a first-write prefix cut short.
pub fn deserialize(plaintext: &[u8]) -> Result<Session, StoreError> {
    match plaintext.split_first() {
        Some((&FIRST_WRITTEN, rest)) => {
            let (at, json) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| StoreError::InvalidInput("a first-write time cut short".into()))?;
            let mut session = Session::parse(json)?;
            session.set_first_written(Some(u64::from_le_bytes(*at)));
            Ok(session)
        }
        _ => Session::parse(plaintext),
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
    fn the_first_write_time_travels_beside_the_json() {
        let mut session = Session::parse(br#"{"sessionId":"a","expiresAt":9}"#).unwrap();
        let bare = serialize(&session, 1024).unwrap();
        assert_eq!(bare, br#"{"sessionId":"a","expiresAt":9}"#);
        session.set_first_written(Some(7));
        let stored = serialize(&session, 1024).unwrap();
        assert_eq!(stored[0], FIRST_WRITTEN);
        assert_eq!(&stored[9..], &bare[..]);
        let back = deserialize(&stored).unwrap();
        assert_eq!(
            (back.first_written(), back.to_vec()),
            (Some(7), bare.clone())
        );
        assert_eq!(deserialize(&bare).unwrap().first_written(), None);
        assert!(deserialize(&stored[..5]).is_err());
        // With a `createdAt` the document says where its life began: nothing is added.
        let mut dated = example("a", "u", 9);
        dated.set_first_written(Some(7));
        assert_eq!(serialize(&dated, 4096).unwrap()[0], b'{');
        // The limit counts the document, not the prefix; but nothing is stored past what
        // any read takes.
        assert!(serialize(&session, bare.len() as u32).is_ok());
        let max = MAX_MAX_SESSION_BYTES as usize;
        let pad = "x".repeat(max - r#"{"sessionId":"a","expiresAt":9,"p":""}"#.len());
        let mut largest =
            Session::parse(format!(r#"{{"sessionId":"a","expiresAt":9,"p":"{pad}"}}"#).as_bytes())
                .unwrap();
        assert_eq!(largest.to_vec().len(), max);
        assert!(serialize(&largest, MAX_MAX_SESSION_BYTES).is_ok());
        largest.set_first_written(Some(7));
        assert!(matches!(
            serialize(&largest, MAX_MAX_SESSION_BYTES),
            Err(StoreError::TooLarge(_))
        ));
    }

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
