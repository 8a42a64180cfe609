//! `--shapes`: what a framework's session costs beside the original's, in one run. For
//! each store size, the component through the host API creates, reads, replaces (`set`)
//! and touches (a rolling expiry) stores of four documents: the original-shaped session
//! (~2.5 KB, typed members validated), an express-session document (its `cookie` and a
//! user id, ~200 bytes), a tower-sessions record (its `data` map, ~150 bytes), and a
//! free-form document padded to the original's size, so that the free-form path is
//! compared with the original-shaped one byte for byte.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use session_vault::{BackendKind, Durability, ManualClock, Session, Vault, VaultOptions};

use crate::{Stats, time};

/// The documents measured, each a function of its index and now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Original,
    Express,
    Tower,
    FreeFormLarge,
}

impl Shape {
    const ALL: [Shape; 4] = [
        Shape::Original,
        Shape::Express,
        Shape::Tower,
        Shape::FreeFormLarge,
    ];

    fn name(self) -> &'static str {
        match self {
            Shape::Original => "original-shaped",
            Shape::Express => "express-session",
            Shape::Tower => "tower-sessions",
            Shape::FreeFormLarge => "free-form, original's size",
        }
    }

    fn session(self, i: usize, now: u64) -> anyhow::Result<Session> {
        let id = format!("s{i:07}-bench");
        let expires_at = now + 86_400_000;
        let document = match self {
            Shape::Original => return crate::session(i, now),
            Shape::Express => json!({
                "cookie": {"originalMaxAge": 86_400_000, "expires": "2026-12-08T19:00:00.000Z",
                           "secure": true, "httpOnly": true, "path": "/", "sameSite": "lax"},
                "userId": format!("user-{}", i % crate::USERS),
                "sessionId": id,
                "expiresAt": expires_at
            }),
            Shape::Tower => json!({
                "sessionId": id,
                "expiresAt": expires_at,
                "data": {"user_id": i % crate::USERS, "csrf": format!("{:032x}", i * 7919),
                         "visits": 5}
            }),
            Shape::FreeFormLarge => {
                let target = crate::session(i, now)?.to_vec().len();
                let mut document = json!({
                    "cookie": {"originalMaxAge": 86_400_000, "expires": "2026-12-08T19:00:00.000Z",
                               "httpOnly": true, "path": "/"},
                    "sessionId": id,
                    "expiresAt": expires_at,
                    "grant": ""
                });
                let len = document.to_string().len();
                if let Some(grant) = document.get_mut("grant") {
                    *grant = json!("g".repeat(target.saturating_sub(len)));
                }
                document
            }
        };
        Session::from_value(document).context("building a benchmark session")
    }
}

/// One shape's figures at one size.
struct Row {
    shape: Shape,
    bytes: usize,
    ops: Vec<(&'static str, Stats)>,
}

/// Measures every shape at each of `sizes` on `backend` in `durability` mode; prints the
/// tables, and appends them in Markdown to `markdown` if given.
pub fn run(
    sizes: &[usize],
    backend: BackendKind,
    durability: Durability,
    root: &Path,
    markdown: Option<&Path>,
) -> anyhow::Result<()> {
    for &n in sizes {
        let mut rows = Vec::new();
        for shape in Shape::ALL {
            let dir = root.join(format!("shapes-{n}-{}", shape as u8));
            let measured = measure(shape, n, &dir, backend, durability);
            let _ = std::fs::remove_dir_all(&dir);
            rows.push(measured?);
        }
        let table = table(n, backend, durability, &rows);
        print!("{table}");
        if let Some(path) = markdown {
            crate::append(path, &table)?;
        }
    }
    Ok(())
}

fn measure(
    shape: Shape,
    n: usize,
    dir: &Path,
    backend: BackendKind,
    durability: Durability,
) -> anyhow::Result<Row> {
    let now = session_vault::Clock::now(&session_vault::SystemClock);
    let clock = ManualClock::new(now);
    let sessions: Vec<Session> = (0..n)
        .map(|i| shape.session(i, now))
        .collect::<Result<_, _>>()?;
    let ids: Vec<&str> = sessions.iter().map(|s| s.id()).collect();
    let mut vault: Vault = VaultOptions::new()
        .clock(clock.clone())
        .backend(backend)
        .durability(durability)
        .open(dir, session_vault::Secret::RawKey(vec![7; 32]))
        .with_context(|| format!("opening a store in {}", dir.display()))?;
    let mut ops = Vec::new();
    ops.push(("create", time(&sessions, |s| Ok(vault.create(s)?))?));
    ops.push((
        "get",
        time(&ids, |id| {
            vault
                .get(id)?
                .context("a session just created is missing")?;
            Ok(())
        })?,
    ));
    ops.push(("set", time(&sessions, |s| Ok(vault.set(s)?))?));
    let rolled = now + 2 * 86_400_000;
    ops.push((
        "touch (rolling)",
        time(&ids, |id| {
            vault
                .touch_until(id, Some(rolled))?
                .context("a session just set is missing")?;
            Ok(())
        })?,
    ));
    Ok(Row {
        shape,
        bytes: sessions.first().map_or(0, |s| s.to_vec().len()),
        ops,
    })
}

fn table(n: usize, backend: BackendKind, durability: Durability, rows: &[Row]) -> String {
    let mut out = format!(
        "\n#### {n} sessions, `{}` backend, {durability:?} (component through the host API)\n\n\
         | document | bytes | operation | ops/s | p50 µs | p99 µs | ns per byte (mean) |\n\
         |---|---:|---|---:|---:|---:|---:|\n",
        backend.name()
    );
    for row in rows {
        for (op, stats) in &row.ops {
            let per_byte = 1e9 / stats.ops_per_s / row.bytes.max(1) as f64;
            out.push_str(&format!(
                "| {} | {} | {op} | {:.0} | {} | {} | {per_byte:.1} |\n",
                row.shape.name(),
                row.bytes,
                stats.ops_per_s,
                stats.p50_us,
                stats.p99_us
            ));
        }
    }
    out
}
