//! Calls one operation of the host API over and over, to profile what one call of the
//! component costs (scripts/profile runs it under `perf record` and sorts the samples
//! into AEAD, JSON, the canonical ABI, WASI and the rest):
//!
//! ```sh
//! cargo run --release --example calls -- OP N [CACHE_BYTES]
//! ```
//!
//! OP is `get`, `create`, `update` or `touch`; N sessions of ~2.5 KB (the benchmark's
//! shape) are created first (for `create`, into a second store), in a `log` store without
//! fsync. OP `open` updates and touches each twice, then times a reopen of the store. With `PERF_CTL_FIFO` set, it writes `enable` to that `perf record --control`
//! FIFO once the setup is done, so only the N measured calls are sampled. It prints the
//! mean time per call. `CALLS_COMPONENT=FILE` runs another build of the component;
//! `CALLS_DIR=DIR` keeps the store in `DIR/store` (raw key of 32 bytes 0x07).

use std::io::Write as _;
use std::time::Instant;

use anyhow::{Context, bail};
use session_vault::{BackendKind, Durability, Secret, Session, SessionPatch, Vault, VaultOptions};

fn session(i: usize, now: u64) -> anyhow::Result<Session> {
    let filler = |len: usize, seed: usize| -> String {
        (0..len)
            .map(|j| char::from(b'A' + ((j * 7 + seed) % 26) as u8))
            .collect()
    };
    Ok(serde_json::from_value(serde_json::json!({
        "sessionId": format!("s{i:07}-calls"),
        "sessionToken": filler(32, i),
        "userContext": {"userId": format!("user-{}", i % 97), "email": "user@example.org",
                        "name": "User Ünïcødé", "tenantId": "tenant-1", "roles": ["reader"]},
        "tokenMetadata": {"accessToken": filler(400, i + 1), "refreshToken": filler(268, i + 2),
                          "idToken": filler(1200, i + 3), "expiresAt": now + 3_600_000,
                          "scopes": ["openid", "profile", "offline_access"]},
        "security": {"ipAddress": "10.0.0.1", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                     "createdAt": now, "lastAccessedAt": now, "accessCount": 1,
                     "fingerprint": filler(32, i + 4)},
        "expiresAt": now + 86_400_000,
        "createdAt": now
    }))?)
}

fn open(dir: &std::path::Path, cache_bytes: u64) -> anyhow::Result<Vault> {
    let mut options = VaultOptions::new()
        .backend(BackendKind::Log)
        .durability(Durability::Relaxed)
        .cache_bytes(cache_bytes);
    // Another build of the component, to compare builds without rebuilding the host.
    if let Some(path) = std::env::var_os("CALLS_COMPONENT") {
        options = options.component(path);
    }
    Ok(options.open(dir, Secret::RawKey(vec![7; 32]))?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(op), Some(n)) = (args.first(), args.get(1)) else {
        bail!("usage: calls get|create|update|touch|open N [CACHE_BYTES]");
    };
    let n: usize = n.parse().context("N")?;
    let cache_bytes = match args.get(2) {
        Some(bytes) => bytes.parse().context("CACHE_BYTES")?,
        None => session_vault::DEFAULT_CACHE_BYTES,
    };
    let now = session_vault::Clock::now(&session_vault::SystemClock);
    let sessions: Vec<Session> = (0..n).map(|i| session(i, now)).collect::<Result<_, _>>()?;
    let tmp = tempfile::tempdir()?;
    // CALLS_DIR keeps the store (raw key 0x07 × 32), e.g. for a one-shot `count` after `open`.
    let root = std::env::var_os("CALLS_DIR").map_or_else(|| tmp.path().to_owned(), Into::into);
    let mut vault = open(&root.join("store"), cache_bytes)?;
    let mut target = open(&tmp.path().join("target"), cache_bytes)?;
    for s in &sessions {
        vault.create(s)?;
    }
    let patch: SessionPatch = serde_json::from_value(serde_json::json!({
        "security": {"lastAccessedAt": now + 1, "accessCount": 2}
    }))?;
    let profile = || -> anyhow::Result<()> {
        if let Some(fifo) = std::env::var_os("PERF_CTL_FIFO") {
            let mut control = std::fs::OpenOptions::new().write(true).open(fifo)?;
            control.write_all(b"enable\n")?;
        }
        Ok(())
    };
    if op == "open" {
        // A store with history: each session updated and touched twice, as the
        // benchmark leaves it; then the time to open it again.
        for s in &sessions {
            vault.update(s.id(), &patch)?;
            vault.touch(s.id())?;
            vault.touch(s.id())?;
        }
        drop(vault);
        profile()?;
        let start = Instant::now();
        let vault = open(&root.join("store"), cache_bytes)?;
        let elapsed = start.elapsed();
        drop(vault);
        println!(
            "open: {:.1} ms for {n} sessions",
            elapsed.as_secs_f64() * 1e3
        );
        return Ok(());
    }
    profile()?;
    let start = Instant::now();
    for s in &sessions {
        let id = s.id();
        match op.as_str() {
            "get" => drop(vault.get(id)?),
            "touch" => drop(vault.touch(id)?),
            "update" => drop(vault.update(id, &patch)?),
            "create" => target.create(s)?,
            other => bail!("unknown operation {other:?}"),
        }
    }
    let per_call = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{op}: {per_call:.1} µs per call over {n} calls");
    Ok(())
}
