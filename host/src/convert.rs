//! Conversions between the public serde types and the generated WIT types.

use std::io;

use serde_json::Value;
use session_vault_guest::{
    BackendKind, Durability, Erase, Extra, ImportFailure, ImportReport, KeyInfo, Report, Secret,
    Security, SecurityPatch, SessionData, SessionPatch, StoreError, TokenMetadata,
    TokenMetadataPatch, UserContext, UserContextPatch,
};

use crate::bindings::wit;

pub fn error_from_wit(error: wit::Error) -> StoreError {
    match error {
        wit::Error::InvalidId(m) => StoreError::InvalidId(m),
        wit::Error::InvalidInput(m) => StoreError::InvalidInput(m),
        wit::Error::NotFound => StoreError::NotFound,
        wit::Error::AlreadyExists => StoreError::AlreadyExists,
        wit::Error::WrongKey => StoreError::WrongKey,
        wit::Error::Corrupted(m) => StoreError::Corrupted(m),
        wit::Error::MissingKey(m) => StoreError::MissingKey(m),
        wit::Error::TooLarge(m) => StoreError::TooLarge(m),
        wit::Error::Locked => StoreError::Locked,
        wit::Error::Io(failure) => {
            StoreError::io(failure.operation, io::Error::other(failure.reason))
        }
        wit::Error::Unavailable(failure) => StoreError::Unavailable {
            context: failure.operation,
            source: std::io::Error::other(failure.reason),
        },
    }
}

pub fn secret_to_wit(secret: &Secret) -> wit::Secret {
    match secret {
        Secret::Passphrase(phrase) => wit::Secret::Passphrase(phrase.clone()),
        Secret::RawKey(bytes) => wit::Secret::RawKey(bytes.clone()),
    }
}

pub fn key_info_from_wit(k: wit::KeyInfo) -> KeyInfo {
    KeyInfo {
        id: k.id,
        current: k.current,
        retired: k.retired,
        sessions: k.sessions,
    }
}

pub fn import_report_from_wit(r: wit::ImportReport) -> ImportReport {
    ImportReport {
        imported: r.imported,
        expired: r.expired,
        already_present: r.already_present,
        failed: r
            .failed
            .into_iter()
            .map(|f| ImportFailure {
                file: f.file,
                reason: f.reason,
            })
            .collect(),
    }
}

pub fn report_from_wit(r: wit::Report) -> Report {
    Report {
        live: r.live,
        expired: r.expired,
        missing_key: r.missing_key,
        quarantined: r.quarantined,
        newly_quarantined: r.newly_quarantined,
        foreign: r.foreign,
        dead_bytes: r.dead_bytes,
        oldest_key: r.oldest_key,
    }
}

/// An erase mode as the WIT enum.
pub fn erase_to_wit(erase: Erase) -> wit::Erase {
    match erase {
        Erase::Immediate => wit::Erase::Immediate,
        // `Erase` is non-exhaustive: anything newer than this host erases deferred.
        _ => wit::Erase::Deferred,
    }
}

fn extra_to_wit(extra: &Extra) -> Vec<wit::ExtraField> {
    extra
        .iter()
        .map(|(name, value)| wit::ExtraField {
            name: name.clone(),
            value: value.to_string(),
        })
        .collect()
}

fn extra_from_wit(fields: Vec<wit::ExtraField>) -> Result<Extra, StoreError> {
    fields
        .into_iter()
        .map(|field| {
            let value: Value = serde_json::from_str(&field.value).map_err(|e| {
                StoreError::Corrupted(format!(
                    "the component returned extra member {:?} that is not JSON: {e}",
                    field.name
                ))
            })?;
            Ok((field.name, value))
        })
        .collect()
}

pub fn session_to_wit(s: &SessionData) -> wit::SessionData {
    let u = &s.user_context;
    let t = &s.token_metadata;
    let c = &s.security;
    wit::SessionData {
        session_id: s.session_id.clone(),
        session_token: s.session_token.clone(),
        user_context: wit::UserContext {
            user_id: u.user_id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            tenant_id: u.tenant_id.clone(),
            roles: u.roles.clone(),
            extra: extra_to_wit(&u.extra),
        },
        token_metadata: wit::TokenMetadata {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
            id_token: t.id_token.clone(),
            expires_at: t.expires_at,
            scopes: t.scopes.clone(),
            extra: extra_to_wit(&t.extra),
        },
        security: wit::Security {
            ip_address: c.ip_address.clone(),
            user_agent: c.user_agent.clone(),
            created_at: c.created_at,
            last_accessed_at: c.last_accessed_at,
            access_count: c.access_count,
            fingerprint: c.fingerprint.clone(),
            extra: extra_to_wit(&c.extra),
        },
        expires_at: s.expires_at,
        created_at: s.created_at,
        extra: extra_to_wit(&s.extra),
    }
}

pub fn session_from_wit(s: wit::SessionData) -> Result<SessionData, StoreError> {
    let u = s.user_context;
    let t = s.token_metadata;
    let c = s.security;
    Ok(SessionData {
        session_id: s.session_id,
        session_token: s.session_token,
        user_context: UserContext {
            user_id: u.user_id,
            email: u.email,
            name: u.name,
            tenant_id: u.tenant_id,
            roles: u.roles,
            extra: extra_from_wit(u.extra)?,
        },
        token_metadata: TokenMetadata {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            id_token: t.id_token,
            expires_at: t.expires_at,
            scopes: t.scopes,
            extra: extra_from_wit(t.extra)?,
        },
        security: Security {
            ip_address: c.ip_address,
            user_agent: c.user_agent,
            created_at: c.created_at,
            last_accessed_at: c.last_accessed_at,
            access_count: c.access_count,
            fingerprint: c.fingerprint,
            extra: extra_from_wit(c.extra)?,
        },
        expires_at: s.expires_at,
        created_at: s.created_at,
        extra: extra_from_wit(s.extra)?,
    })
}

pub fn patch_to_wit(p: &SessionPatch) -> wit::SessionPatch {
    wit::SessionPatch {
        session_id: p.session_id.clone(),
        session_token: p.session_token.clone(),
        user_context: p
            .user_context
            .as_ref()
            .map(|u: &UserContextPatch| wit::UserContextPatch {
                user_id: u.user_id.clone(),
                email: u.email.clone(),
                name: u.name.clone(),
                tenant_id: u.tenant_id.clone(),
                roles: u.roles.clone(),
                extra: extra_to_wit(&u.extra),
            }),
        token_metadata: p.token_metadata.as_ref().map(|t: &TokenMetadataPatch| {
            wit::TokenMetadataPatch {
                access_token: t.access_token.clone(),
                refresh_token: t.refresh_token.clone(),
                id_token: t.id_token.clone(),
                expires_at: t.expires_at,
                scopes: t.scopes.clone(),
                extra: extra_to_wit(&t.extra),
            }
        }),
        security: p
            .security
            .as_ref()
            .map(|c: &SecurityPatch| wit::SecurityPatch {
                ip_address: c.ip_address.clone(),
                user_agent: c.user_agent.clone(),
                created_at: c.created_at,
                last_accessed_at: c.last_accessed_at,
                access_count: c.access_count,
                fingerprint: c.fingerprint.clone(),
                extra: extra_to_wit(&c.extra),
            }),
        expires_at: p.expires_at,
        created_at: p.created_at,
        extra: extra_to_wit(&p.extra),
    }
}

/// A durability mode as the WIT enum.
pub fn durability_to_wit(durability: Durability) -> wit::Durability {
    match durability {
        Durability::Relaxed => wit::Durability::Relaxed,
        // Durable, and any mode added later: the safe choice.
        _ => wit::Durability::Durable,
    }
}

/// A backend kind as the WIT enum.
pub fn backend_to_wit(backend: BackendKind) -> wit::Backend {
    match backend {
        BackendKind::Log => wit::Backend::Log,
        BackendKind::Redis => wit::Backend::Redis,
        _ => wit::Backend::Files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_survive_the_wit_round_trip() {
        let doc = serde_json::json!({
            "sessionId": "s", "sessionToken": "t",
            "userContext": {"userId": "u", "roles": ["a"], "x": {"y": [1, 2]}},
            "tokenMetadata": {"accessToken": "a", "expiresAt": 3, "scopes": []},
            "security": {"ipAddress": "i", "userAgent": "u", "createdAt": 1, "lastAccessedAt": 2, "accessCount": 3, "fingerprint": "f"},
            "expiresAt": 9, "createdAt": 1, "z": null
        });
        let session: SessionData = serde_json::from_value(doc.clone()).unwrap();
        let back = session_from_wit(session_to_wit(&session)).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), doc);
    }

    #[test]
    fn non_json_extra_from_the_component_is_corruption() {
        let fields = vec![wit::ExtraField {
            name: "x".into(),
            value: "{".into(),
        }];
        assert!(matches!(
            extra_from_wit(fields),
            Err(StoreError::Corrupted(_))
        ));
    }
}
