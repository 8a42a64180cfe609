//! An axum server with tower-sessions on session-vault: log in, a page that needs the
//! session (it counts the visits), log out, log out everywhere.
//!
//! ```text
//! SESSION_VAULT_SECRET=... cargo run -p session-vault-tower --example axum -- \
//!     --listen 127.0.0.1:3000 [--dir ./sessions | --redis redis://127.0.0.1/ [--prefix sess:]]
//! ```
//!
//! The secret comes from the environment (`SESSION_VAULT_SECRET`, a passphrase of 32
//! characters or more, or `hex:` and 64 hex digits), never from the command line; the
//! flags may also come from `SESSION_VAULT_DIR`, `SESSION_VAULT_REDIS_URL`,
//! `SESSION_VAULT_PREFIX` and `LISTEN`. A bad configuration stops it at startup with the
//! reason (exit 2).

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use session_vault::{Secret, VaultOptions};
use session_vault_tower::VaultStore;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// Where the example keeps its sessions, and where it listens.
struct Config {
    listen: SocketAddr,
    dir: String,
    redis: Option<String>,
    prefix: Option<String>,
    secret: Secret,
}

fn config() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut listen = env("LISTEN").unwrap_or_else(|| "127.0.0.1:3000".into());
    let mut dir = env("SESSION_VAULT_DIR").unwrap_or_else(|| "./sessions".into());
    let mut redis = env("SESSION_VAULT_REDIS_URL");
    let mut prefix = env("SESSION_VAULT_PREFIX");
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--dir" => dir = value()?,
            "--redis" => redis = Some(value()?),
            "--prefix" => prefix = Some(value()?),
            "--secret" => {
                return Err("the secret is read from SESSION_VAULT_SECRET, never from argv".into());
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let listen = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?} is not an address: {e}"))?;
    let text = env("SESSION_VAULT_SECRET").ok_or("SESSION_VAULT_SECRET is not set")?;
    let secret = match text.strip_prefix("hex:") {
        Some(hex) => Secret::RawKey(decode_hex(hex).ok_or("the hex: secret is not 64 hex digits")?),
        None => Secret::Passphrase(text),
    };
    Ok(Config {
        listen,
        dir,
        redis,
        prefix,
        secret,
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("session-vault axum example: {reason}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let config = config()?;
    let mut options = VaultOptions::new();
    if let Some(url) = &config.redis {
        options = options.redis(url.clone());
    }
    if let Some(prefix) = &config.prefix {
        options = options.prefix(prefix.clone());
    }
    let store = VaultStore::open(options, config.dir.clone(), config.secret)
        .await
        .map_err(|e| format!("opening the session store: {}", chain(&e)))?
        .with_user_key("user");
    let sessions = SessionManagerLayer::new(store.clone())
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)));
    let app = axum::Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(sessions)
        .with_state(store);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", config.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

/// A failure of the session layer, as a 500 with its reason.
fn failed(error: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
}

/// Logs `{"user": NAME}` in: a new session id (no fixation), the user in the session.
async fn login(session: Session, Json(body): Json<Value>) -> Response {
    let Some(user) = body.get("user").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, "a JSON body {\"user\": NAME}").into_response();
    };
    if let Err(e) = session.cycle_id().await {
        return failed(e);
    }
    match session.insert("user", user).await {
        Ok(()) => Json(json!({ "user": user })).into_response(),
        Err(e) => failed(e),
    }
}

/// The page that needs a session: who is logged in, and how often this session came.
async fn me(session: Session) -> Response {
    let user: Option<String> = match session.get("user").await {
        Ok(user) => user,
        Err(e) => return failed(e),
    };
    let Some(user) = user else {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "user": null }))).into_response();
    };
    let visits: u64 = match session.get("visits").await {
        Ok(visits) => visits.unwrap_or(0) + 1,
        Err(e) => return failed(e),
    };
    match session.insert("visits", visits).await {
        Ok(()) => Json(json!({ "user": user, "visits": visits })).into_response(),
        Err(e) => failed(e),
    }
}

async fn logout(session: Session) -> Response {
    match session.flush().await {
        Ok(()) => Json(json!({ "loggedOut": true })).into_response(),
        Err(e) => failed(e),
    }
}

/// Ends every session of the logged-in user, on every device.
async fn logout_everywhere(State(store): State<VaultStore>, session: Session) -> Response {
    let user: Option<String> = match session.get("user").await {
        Ok(user) => user,
        Err(e) => return failed(e),
    };
    let Some(user) = user else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match store.revoke_user(&user).await {
        Ok(ended) => Json(json!({ "ended": ended })).into_response(),
        Err(e) => failed(e),
    }
}
