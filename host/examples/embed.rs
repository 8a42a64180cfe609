//! Embedding the session-vault component in your own wasmtime host, without this crate's
//! `Vault`: bindings generated from `wit/`, WASI from `wasmtime-wasi`, one preopened
//! directory. Run it with `cargo run --example embed -- [STORE_DIR]`.
//!
//! Your host must also hold an exclusive lock on the directory while a store is open (WASI
//! has no file locks); `host/src/vault.rs` shows that, the clock, and a memory limit.

use anyhow::{Context, anyhow};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

// `bindgen!` emits `unsafe` blocks around typed function handles it has checked itself.
#[allow(unsafe_code)]
mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "session-vault" });
}
use bindings::exports::session_vault::store::sessions as wit;

/// What the component's WASI imports run against.
struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("session-vault-embed-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let engine = Engine::default();
    // The component's bytes; a host of your own would read the .wasm file instead.
    let component = Component::new(&engine, session_vault::COMPONENT)?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.preopened_dir(&dir, "/store", FsPerms::ReadWrite)?;
    let host = Host {
        wasi: wasi.build(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(&engine, host);
    let instance = bindings::SessionVault::instantiate(&mut store, &component, &linker)?;
    let sessions = instance.session_vault_store_sessions().store();

    // Every call returns Result<Result<T, wit::Error>, wasmtime::Error>: the outer error
    // is a trap, the inner one the store's answer.
    let config = wit::Config {
        secret: wit::Secret::RawKey(vec![42; 32]),
        directory: Some("/store".into()),
        max_session_bytes: None,
        idle_timeout: None,
        max_lifetime: None,
        durability: None,
        backend: None,
        erase: None,
        bucket: None,
        cache_bytes: None,
    };
    let vault = sessions
        .call_open(&mut store, &config)?
        .map_err(|e| anyhow!("open: {e:?}"))?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let id = format!("embed-{now}");
    // A session is any JSON object with a `sessionId` and an `expiresAt` (ms since the
    // epoch); `security`, when present, is where `touch` records accesses.
    let session = serde_json::json!({
        "sessionId": id,
        "userContext": {"userId": "alice"},
        "security": {"ipAddress": "10.0.0.1", "userAgent": "embed", "createdAt": now,
                     "lastAccessedAt": now, "accessCount": 0},
        "expiresAt": now + 86_400_000,
        "plan": "pro"
    })
    .to_string();
    sessions
        .call_create(&mut store, vault, &session)?
        .map_err(|e| anyhow!("create: {e:?}"))?;
    let touched = sessions
        .call_touch(&mut store, vault, &id, None)?
        .map_err(|e| anyhow!("touch: {e:?}"))?
        .context("the session just created is live")?;
    let absent = sessions.call_get(&mut store, vault, "no-such-session")?;
    let invalid = sessions.call_get(&mut store, vault, "../etc/passwd")?;
    let count = sessions.call_count(&mut store, vault)?;
    println!("store: {}", dir.display());
    let touched: serde_json::Value = serde_json::from_str(&touched)?;
    println!(
        "created and touched {id}: access count {}",
        touched.pointer("/security/accessCount").unwrap_or_default()
    );
    println!("get no-such-session: {absent:?}");
    println!("get ../etc/passwd: {invalid:?}");
    println!("count: {count:?}");
    vault.resource_drop(&mut store)?;
    Ok(())
}
