//! The session document: field for field the original `SessionData`, in its camelCase
//! JSON, with every member beyond the schema kept in `extra` so it round-trips unchanged.
//!
//! `null` in an optional field reads as absent and is written as absent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JSON members beyond the schema, in the order they were given.
pub type Extra = Map<String, Value>;

/// One stored session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionData {
    /// The session's identifier: 1 to 128 characters of `[A-Za-z0-9_-]`.
    pub session_id: String,
    /// The session token handed to the client.
    pub session_token: String,
    /// Who the session belongs to.
    pub user_context: UserContext,
    /// The OAuth tokens held by the session.
    pub token_metadata: TokenMetadata,
    /// Where and how often the session was used.
    pub security: Security,
    /// When the session expires, in ms since the epoch.
    pub expires_at: u64,
    /// When the session was created, in ms since the epoch.
    pub created_at: u64,
    /// Top-level members beyond the schema.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Who the session belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserContext {
    /// The user's identifier; sessions are indexed by it.
    pub user_id: String,
    /// The user's e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The user's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Members beyond the schema.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The OAuth tokens held by the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenMetadata {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The OpenID Connect ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// When the access token expires, in ms since the epoch.
    pub expires_at: u64,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Members beyond the schema.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where and how often the session was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    /// The client's IP address.
    pub ip_address: String,
    /// The client's user agent.
    pub user_agent: String,
    /// When the session was first seen, in ms since the epoch.
    pub created_at: u64,
    /// When the session was last used, in ms since the epoch.
    pub last_accessed_at: u64,
    /// How many times the session was used.
    pub access_count: u64,
    /// A client fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Members beyond the schema.
    #[serde(flatten)]
    pub extra: Extra,
}

impl SessionData {
    /// Whether the session has expired at `now` (ms since the epoch): `now >= expires_at`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// The schema's member names of each object, which an `extra` member may not reuse.
pub(crate) mod names {
    /// Top-level members of a session.
    pub const SESSION: &[&str] = &[
        "sessionId",
        "sessionToken",
        "userContext",
        "tokenMetadata",
        "security",
        "expiresAt",
        "createdAt",
    ];
    /// Members of `userContext`.
    pub const USER_CONTEXT: &[&str] = &["userId", "email", "name", "tenantId", "roles"];
    /// Members of `tokenMetadata`.
    pub const TOKEN_METADATA: &[&str] = &[
        "accessToken",
        "refreshToken",
        "idToken",
        "expiresAt",
        "scopes",
    ];
    /// Members of `security`.
    pub const SECURITY: &[&str] = &[
        "ipAddress",
        "userAgent",
        "createdAt",
        "lastAccessedAt",
        "accessCount",
        "fingerprint",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const DOC: &str = r#"{
        "sessionId": "s1",
        "sessionToken": "tok",
        "userContext": {"userId": "u1", "email": "a@b.c", "roles": ["admin"], "locale": "de"},
        "tokenMetadata": {"accessToken": "at", "expiresAt": 5, "scopes": ["openid"]},
        "security": {"ipAddress": "10.0.0.1", "userAgent": "ua", "createdAt": 1,
                     "lastAccessedAt": 2, "accessCount": 3, "risk": {"score": 0.5}},
        "expiresAt": 100,
        "createdAt": 1,
        "tenantPlan": [1, "two", null]
    }"#;

    #[test]
    fn extra_members_round_trip_at_every_level() {
        let session: SessionData = serde_json::from_str(DOC).unwrap();
        assert_eq!(
            session.extra["tenantPlan"],
            serde_json::json!([1, "two", null])
        );
        assert_eq!(session.user_context.extra["locale"], "de");
        assert_eq!(session.security.extra["risk"]["score"], 0.5);
        let back: Value = serde_json::to_value(&session).unwrap();
        let original: Value = serde_json::from_str(DOC).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn expiry_is_inclusive_of_the_expiry_instant() {
        let session: SessionData = serde_json::from_str(DOC).unwrap();
        assert!(!session.is_expired(99));
        assert!(session.is_expired(100));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_rejected() {
        for bad in [
            r#"{"sessionId": 1}"#,
            &DOC.replace(r#""expiresAt": 100"#, r#""expiresAt": -1"#),
            &DOC.replace(r#""expiresAt": 100"#, r#""expiresAt": 1.5"#),
            &DOC.replace(r#""sessionToken": "tok","#, ""),
        ] {
            assert!(serde_json::from_str::<SessionData>(bad).is_err(), "{bad}");
        }
    }
}
