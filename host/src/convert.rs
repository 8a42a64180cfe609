//! Conversions between the public serde types and the generated WIT types.

use std::io;

use session_vault_guest::{
    BackendKind, Durability, Erase, Extra, ImportFailure, ImportReport, KeyInfo, Report, Secret,
    SecurityPatch, Session, SessionPatch, StoreError, TokenMetadataPatch, UserContextPatch,
};

use crate::bindings::wit;

pub fn error_from_wit(error: wit::Error) -> StoreError {
    match error {
        wit::Error::InvalidId(m) => StoreError::InvalidId(m),
        wit::Error::InvalidInput(m) => StoreError::InvalidInput(m),
        wit::Error::NotFound => StoreError::NotFound,
        wit::Error::AlreadyExists => StoreError::AlreadyExists,
        wit::Error::Removed(m) => StoreError::Removed(m),
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

/// A session as the JSON text the WIT passes.
pub fn session_to_wit(session: &Session) -> String {
    session.to_string()
}

/// The session whose JSON text the component returned: parsed as strictly as any input,
/// and a text that is no session is `corrupted` (the component never returns one).
pub fn session_from_wit(text: String) -> Result<Session, StoreError> {
    Session::parse(text.as_bytes()).map_err(|e| {
        StoreError::Corrupted(format!(
            "the component returned a session that is not one: {e}"
        ))
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
        let text = r#"{"sessionId":"s","cookie":{"expires":"2030-01-01T00:00:00.000Z"},"n":[1,2.5,null],"expiresAt":9}"#;
        let session = Session::parse(text.as_bytes()).unwrap();
        assert_eq!(session_to_wit(&session), text);
        assert_eq!(session_from_wit(text.to_owned()).unwrap(), session);
    }

    #[test]
    fn a_session_from_the_component_that_is_none_is_corruption() {
        for text in ["{", "[]", r#"{"sessionId":"s","expiresAt":1,"a":1,"a":2}"#] {
            assert!(
                matches!(session_from_wit(text.into()), Err(StoreError::Corrupted(_))),
                "{text}"
            );
        }
    }
}
