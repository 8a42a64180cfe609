//! `session-vault bench`: operation throughput and latency through the component, on a
//! throwaway store, with sessions shaped like the original's (~2.6 KB).

use std::time::{Duration, Instant};

use anyhow::Context;
use session_vault::{Secret, SessionData, SessionPatch, VaultOptions};

/// Runs each operation `n` times and prints ops/s, p50 and p99 per operation, then the
/// ratio of `touch` to `update` time.
pub fn run(n: usize) -> anyhow::Result<()> {
    let dir = super::demo::temp_dir()?;
    let outcome = measure(&dir, n);
    // Best effort: the directory is under the system's temporary directory anyway.
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn measure(dir: &std::path::Path, n: usize) -> anyhow::Result<()> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
    let mut vault = VaultOptions::new()
        .open(dir, Secret::RawKey(key))
        .context("opening a benchmark store")?;
    let now = session_vault::Clock::now(&session_vault::SystemClock);
    let sessions: Vec<SessionData> = (0..n).map(|i| session(i, now)).collect::<Result<_, _>>()?;
    let ids: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
    let patch: SessionPatch = serde_json::from_value(serde_json::json!({
        "security": {"lastAccessedAt": now + 1, "accessCount": 2}
    }))?;
    let size = match sessions.first() {
        Some(session) => serde_json::to_vec(session)?.len(),
        None => 0,
    };
    println!("{n} sessions of {size} bytes, durable writes, component in wasmtime");
    println!(
        "{:<9} {:>10} {:>10} {:>10}",
        "op", "ops/s", "p50 µs", "p99 µs"
    );
    time("create", &sessions, |s| vault.create(s).map(drop))?;
    time("get", &ids, |id| vault.get(id).map(drop))?;
    let update = time("update", &ids, |id| vault.update(id, &patch).map(drop))?;
    // The first touch after a full write creates the access stamp; later ones (a session
    // layer touches on every request) write it in place.
    let first = time("touch 1st", &ids, |id| vault.touch(id).map(drop))?;
    let again = time("touch", &ids, |id| vault.touch(id).map(drop))?;
    time("delete", &ids, |id| vault.delete(id).map(drop))?;
    let ratio = |touch: Duration| touch.as_secs_f64() / update.as_secs_f64();
    println!(
        "touch / update time: {:.3} (first touch: creates the stamp), {:.3} (every later touch)",
        ratio(first),
        ratio(again)
    );
    Ok(())
}

fn time<T>(
    name: &str,
    items: &[T],
    mut op: impl FnMut(&T) -> Result<(), session_vault::Error>,
) -> anyhow::Result<Duration> {
    let mut latencies = Vec::with_capacity(items.len());
    let start = Instant::now();
    for item in items {
        let t = Instant::now();
        op(item).with_context(|| format!("{name} failed"))?;
        latencies.push(t.elapsed());
    }
    let total = start.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).map_or(0, |d| d.as_micros())
    };
    println!(
        "{name:<9} {:>10.0} {:>10} {:>10}",
        items.len() as f64 / total.as_secs_f64(),
        at(0.50),
        at(0.99)
    );
    Ok(total)
}

fn session(i: usize, now: u64) -> anyhow::Result<SessionData> {
    let filler = |len: usize, seed: usize| -> String {
        (0..len)
            .map(|j| char::from(b'A' + ((j * 7 + seed) % 26) as u8))
            .collect()
    };
    Ok(serde_json::from_value(serde_json::json!({
        "sessionId": format!("s{i:07}-bench"),
        "sessionToken": filler(32, i),
        "userContext": {"userId": format!("user-{}", i % 97), "email": format!("user{}@example.org", i % 97),
                        "name": "User Ünïcødé", "tenantId": "tenant-1", "roles": ["reader", "member"]},
        "tokenMetadata": {"accessToken": filler(400, i + 1), "refreshToken": filler(268, i + 2),
                          "idToken": filler(1200, i + 3),
                          "expiresAt": now + 3_600_000, "scopes": ["openid", "profile", "offline_access"]},
        "security": {"ipAddress": "10.0.0.1", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
                     "createdAt": now, "lastAccessedAt": now, "accessCount": 1,
                     "fingerprint": filler(32, i + 4)},
        "expiresAt": now + 86_400_000,
        "createdAt": now
    }))?)
}
