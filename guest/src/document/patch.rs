//! `update`'s patch and its merge, with the original store's rules: top-level fields
//! replace; `userContext`, `tokenMetadata` and `security` merge field by field.
//!
//! In patch JSON an absent member keeps the stored value. For an optional field,
//! `null` removes it; for a required one, `null` is rejected. A nested object given
//! as `null` is kept, as the original's spread did.

use serde::{Deserialize, Deserializer, Serialize};

use serde_json::Value;

use crate::document::check_extra;
use crate::document::model::{Extra, names};
use crate::document::session::Session;
use crate::error::StoreError;

/// A change for `update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPatch {
    /// Must be absent or equal to the session's id.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_id: Option<String>,
    /// Replaces the session token.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_token: Option<String>,
    /// Merged into the user context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_context: Option<UserContextPatch>,
    /// Merged into the token metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_metadata: Option<TokenMetadataPatch>,
    /// Merged into the security record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityPatch>,
    /// Replaces the expiry.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<u64>,
    /// Replaces the creation time.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<u64>,
    /// Top-level extra members to set.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A change to the user context. `Some(None)` removes an optional field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserContextPatch {
    /// Replaces the user; the session moves to the new user's list.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
    /// Sets or removes the e-mail address.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<Option<String>>,
    /// Sets or removes the display name.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Option<String>>,
    /// Sets or removes the tenant.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tenant_id: Option<Option<String>>,
    /// Sets or removes the roles.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub roles: Option<Option<Vec<String>>>,
    /// Extra members to set.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A change to the token metadata. `Some(None)` removes an optional field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenMetadataPatch {
    /// Replaces the access token.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token: Option<String>,
    /// Sets or removes the refresh token.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<Option<String>>,
    /// Sets or removes the ID token.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_token: Option<Option<String>>,
    /// Replaces the access token's expiry.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<u64>,
    /// Replaces the scopes.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes: Option<Vec<String>>,
    /// Extra members to set.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A change to the security record. `Some(None)` removes an optional field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityPatch {
    /// Replaces the IP address.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address: Option<String>,
    /// Replaces the user agent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_agent: Option<String>,
    /// Replaces the first-seen time.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<u64>,
    /// Replaces the last-used time.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_accessed_at: Option<u64>,
    /// Replaces the use count.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_count: Option<u64>,
    /// Sets or removes the fingerprint.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub fingerprint: Option<Option<String>>,
    /// Extra members to set.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A member that, when present, must hold a value (`null` is an error).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A member whose `null` means "remove": present-and-null becomes `Some(None)`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl SessionPatch {
    /// Returns `session` with this patch merged in. A nested object the session lacks is
    /// created from the patch (which must then give its required members).
    ///
    /// Fails with `invalid-input` if the patch would change the session id, or leaves a
    /// document that is no valid session (see [`Session::from_value`]).
    pub fn apply(self, session: Session) -> Result<Session, StoreError> {
        if let Some(id) = self.session_id
            && id != session.id()
        {
            return Err(StoreError::InvalidInput(format!(
                "a patch cannot change sessionId (from {:?} to {id:?})",
                session.id()
            )));
        }
        check_extra("the patch", &self.extra, names::SESSION)?;
        for (object, patch, schema) in [
            (
                "userContext",
                self.user_context.as_ref().map(|p| &p.extra),
                names::USER_CONTEXT,
            ),
            (
                "tokenMetadata",
                self.token_metadata.as_ref().map(|p| &p.extra),
                names::TOKEN_METADATA,
            ),
            (
                "security",
                self.security.as_ref().map(|p| &p.extra),
                names::SECURITY,
            ),
        ] {
            if let Some(extra) = patch {
                check_extra(object, extra, schema)?;
            }
        }
        let first_written = session.first_written();
        let mut members = session.into_members();
        set(&mut members, "sessionToken", self.session_token);
        if let Some(patch) = self.user_context {
            merge(&mut members, "userContext", |target| patch.apply(target));
        }
        if let Some(patch) = self.token_metadata {
            merge(&mut members, "tokenMetadata", |target| patch.apply(target));
        }
        if let Some(patch) = self.security {
            merge(&mut members, "security", |target| patch.apply(target));
        }
        set(&mut members, "expiresAt", self.expires_at);
        set(&mut members, "createdAt", self.created_at);
        members.extend(self.extra);
        let mut merged = Session::from_value(Value::Object(members))?;
        merged.set_first_written(first_written);
        Ok(merged)
    }
}

impl UserContextPatch {
    fn apply(self, target: &mut Extra) {
        set(target, "userId", self.user_id);
        set_or_remove(target, "email", self.email);
        set_or_remove(target, "name", self.name);
        set_or_remove(target, "tenantId", self.tenant_id);
        set_or_remove(target, "roles", self.roles);
        target.extend(self.extra);
    }
}

impl TokenMetadataPatch {
    fn apply(self, target: &mut Extra) {
        set(target, "accessToken", self.access_token);
        set_or_remove(target, "refreshToken", self.refresh_token);
        set_or_remove(target, "idToken", self.id_token);
        set(target, "expiresAt", self.expires_at);
        set(target, "scopes", self.scopes);
        target.extend(self.extra);
    }
}

impl SecurityPatch {
    fn apply(self, target: &mut Extra) {
        set(target, "ipAddress", self.ip_address);
        set(target, "userAgent", self.user_agent);
        set(target, "createdAt", self.created_at);
        set(target, "lastAccessedAt", self.last_accessed_at);
        set(target, "accessCount", self.access_count);
        set_or_remove(target, "fingerprint", self.fingerprint);
        target.extend(self.extra);
    }
}

/// Applies `change` to the object member `name` of `members`, in place (created empty
/// where absent; validation has made every original member present an object).
fn merge(members: &mut Extra, name: &str, change: impl FnOnce(&mut Extra)) {
    let mut inner = match members.get_mut(name).map(std::mem::take) {
        Some(Value::Object(inner)) => inner,
        _ => Extra::new(),
    };
    change(&mut inner);
    members.insert(name.to_owned(), Value::Object(inner));
}

/// Sets member `name` to `value` if given (in place, where it already is).
fn set<T: Into<Value>>(target: &mut Extra, name: &str, value: Option<T>) {
    if let Some(value) = value {
        target.insert(name.to_owned(), value.into());
    }
}

/// `Some(Some(v))` sets member `name`, `Some(None)` removes it (keeping the others'
/// order), `None` leaves it.
fn set_or_remove<T: Into<Value>>(target: &mut Extra, name: &str, value: Option<Option<T>>) {
    match value {
        Some(Some(value)) => set(target, name, Some(value)),
        Some(None) => {
            target.shift_remove(name);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session() -> Session {
        Session::from_value(json!({
            "sessionId": "s1", "sessionToken": "t1",
            "userContext": {"userId": "u1", "email": "a@b.c", "name": "A", "x": 1},
            "tokenMetadata": {"accessToken": "at", "refreshToken": "rt", "expiresAt": 5, "scopes": ["a"]},
            "security": {"ipAddress": "ip", "userAgent": "ua", "createdAt": 1, "lastAccessedAt": 2, "accessCount": 3},
            "expiresAt": 100, "createdAt": 1, "top": {"keep": true}
        }))
        .unwrap()
    }

    fn patched(patch: Value) -> Result<Value, StoreError> {
        let patch: SessionPatch = serde_json::from_value(patch).unwrap();
        Ok(patch.apply(session())?.to_value())
    }

    #[test]
    fn nested_objects_merge_field_by_field() {
        let out = patched(json!({
            "userContext": {"name": "B", "y": 2},
            "tokenMetadata": {"accessToken": "at2"},
            "security": {"accessCount": 4, "lastAccessedAt": 9}
        }))
        .unwrap();
        assert_eq!(
            out["userContext"],
            json!({"userId": "u1", "email": "a@b.c", "name": "B", "x": 1, "y": 2})
        );
        assert_eq!(out["tokenMetadata"]["refreshToken"], "rt");
        assert_eq!(out["tokenMetadata"]["accessToken"], "at2");
        assert_eq!(out["security"]["accessCount"], 4);
        assert_eq!(out["security"]["ipAddress"], "ip");
    }

    #[test]
    fn top_level_fields_replace_whole() {
        let out =
            patched(json!({"top": {"new": 1}, "sessionToken": "t2", "expiresAt": 7})).unwrap();
        assert_eq!(out["top"], json!({"new": 1}));
        assert_eq!(out["sessionToken"], "t2");
        assert_eq!(out["expiresAt"], 7);
    }

    #[test]
    fn null_removes_optional_fields_and_keeps_null_objects() {
        let out = patched(json!({
            "userContext": {"email": null},
            "tokenMetadata": {"refreshToken": null},
            "security": null
        }))
        .unwrap();
        assert!(out["userContext"].get("email").is_none());
        assert!(out["tokenMetadata"].get("refreshToken").is_none());
        assert_eq!(out["security"]["accessCount"], 3);
    }

    #[test]
    fn null_for_a_required_field_is_rejected() {
        for patch in [
            json!({"expiresAt": null}),
            json!({"userContext": {"userId": null}}),
            json!({"security": {"accessCount": null}}),
        ] {
            assert!(
                serde_json::from_value::<SessionPatch>(patch.clone()).is_err(),
                "{patch}"
            );
        }
    }

    #[test]
    fn an_extra_member_cannot_stand_in_for_a_field() {
        let mut patch = SessionPatch::default();
        patch.extra.insert("sessionId".into(), json!("other"));
        assert!(matches!(
            patch.apply(session()),
            Err(StoreError::InvalidInput(_))
        ));
        let mut patch = SessionPatch::default();
        let mut user = UserContextPatch::default();
        user.extra.insert("userId".into(), json!("mallory"));
        patch.user_context = Some(user);
        assert!(matches!(
            patch.apply(session()),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn session_id_may_repeat_but_not_change() {
        assert!(patched(json!({"sessionId": "s1"})).is_ok());
        assert!(matches!(
            patched(json!({"sessionId": "s2"})),
            Err(StoreError::InvalidInput(_))
        ));
    }
}
