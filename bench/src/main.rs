//! `session-vault-bench`: every operation's throughput and latency, side by side, for
//! (a) the component through the host API, (b) the same core compiled natively, (c) the
//! raw I/O floor of the same file layout, and (d) the original TypeScript store when its
//! driver is given — in one run, on throwaway stores of sessions shaped like the
//! original's (~2.5 KB).

mod args;
mod native;
mod operations;
mod original;
mod peak;
mod redis;
mod shapes;
mod table;
mod target;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use session_vault::{BackendKind, Durability, ManualClock, Session, SessionPatch};

use args::Args;
pub use original::Original;
use target::{Kind, Target};

fn main() -> ExitCode {
    let args = Args::parse();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, whatever the error chain holds.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("session-vault-bench: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Every size × backend × mode the flags ask for: both modes unless --durability, and
/// `files` and `log` (and `redis` with --redis) unless --backend.
fn bench(args: &Args) -> anyhow::Result<()> {
    if args.shapes {
        let root = temp_dir()?;
        let outcome = shapes::run(
            &args.sessions,
            args.backend.unwrap_or(BackendKind::Log),
            args.durability.unwrap_or(Durability::Relaxed),
            &root,
            args.markdown.as_deref(),
        );
        let _ = std::fs::remove_dir_all(&root);
        return outcome;
    }
    let original = args.original.as_deref().map(Original::new).transpose()?;
    let modes = match args.durability {
        Some(durability) => vec![durability],
        None => vec![Durability::Durable, Durability::Relaxed],
    };
    let backends = match args.backend {
        Some(backend) => vec![backend],
        None => {
            let mut all = vec![BackendKind::Files, BackendKind::Log];
            if args.redis.is_some() {
                all.push(BackendKind::Redis);
            }
            all
        }
    };
    let cli = match &args.cli {
        Some(cli) => cli.clone(),
        None => peak::cli_beside_this_exe()?,
    };
    run(
        &args.sessions,
        &backends,
        &modes,
        original.as_ref(),
        args.redis.as_deref(),
        args.markdown.as_deref(),
        &cli,
    )
}

/// A fresh, not yet created directory under the system's temporary directory.
fn temp_dir() -> anyhow::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
    Ok(std::env::temp_dir().join(format!("session-vault-bench-{}", hex::encode(suffix))))
}

/// Users the sessions are spread over (as in the legacy import benchmark).
const USERS: usize = 97;

/// What one timed operation gave.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    ops_per_s: f64,
    p50_us: u128,
    p99_us: u128,
}

/// Runs the benchmark for each store size, backend and durability mode and prints the
/// tables; the one-shot runs on directory stores are of the CLI at `cli`.
pub fn run(
    sizes: &[usize],
    backends: &[BackendKind],
    modes: &[Durability],
    original: Option<&Original>,
    redis: Option<&str>,
    markdown: Option<&std::path::Path>,
    cli: &std::path::Path,
) -> anyhow::Result<()> {
    if backends.contains(&BackendKind::Redis) && redis.is_none() {
        anyhow::bail!("--backend redis needs the server: --redis URL");
    }
    if backends
        .iter()
        .any(|&backend| backend != BackendKind::Redis)
    {
        anyhow::ensure!(
            cli.is_file(),
            "{} is missing: the one-shot count and compact need the CLI; build it with the \
             same profile (cargo build [--release] --bin session-vault; scripts/bench does) \
             or give --cli PATH",
            cli.display()
        );
    }
    let root = temp_dir()?;
    let outcome = (|| {
        for &n in sizes {
            let baseline = match original {
                Some(original) => Some(original.bench(&root.join(format!("original-{n}")), n)?),
                None => None,
            };
            for &backend in backends {
                // The server's own configuration decides what a redis write waits for.
                let modes = if backend == BackendKind::Redis {
                    &[Durability::Durable][..]
                } else {
                    modes
                };
                for &durability in modes {
                    let mut results = BTreeMap::new();
                    for kind in Kind::ALL {
                        let name = format!("{n}-{}-{durability:?}-{}", backend.name(), kind.name());
                        let dir = root.join(&name);
                        let prefix = format!("bench-{}-{name}", std::process::id());
                        let server = redis
                            .filter(|_| backend == BackendKind::Redis)
                            .map(|url| (url, prefix.as_str()));
                        let measured = measure(kind, &dir, n, backend, durability, server, cli);
                        // Best effort: the directory is under the system's temporary directory.
                        let _ = std::fs::remove_dir_all(&dir);
                        if let Some((url, prefix)) = server {
                            redis::discard(url, prefix)?;
                        }
                        results.insert(kind.name(), measured?);
                    }
                    print(n, backend, durability, &results, baseline.as_ref());
                    if let (Some(path), Some(comp), Some(native), Some(floor)) = (
                        markdown,
                        results.get("component"),
                        results.get("native"),
                        results.get("floor"),
                    ) {
                        let table = table::markdown(
                            n,
                            backend,
                            durability,
                            [comp, native, floor],
                            baseline.as_ref(),
                        );
                        append(path, &table)?;
                    }
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

/// Appends `text` to the file at `path`, creating it.
fn append(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("appending the tables to {}", path.display()))
}

/// Every measurement of one target.
#[derive(Debug, Default)]
struct Results {
    ops: BTreeMap<&'static str, Stats>,
    cold_open: Duration,
    cleanup_removed: u64,
    peak_rss_kib: Option<u64>,
    /// A one-shot `session-vault compact` after the deletes: its time and peak RSS (KiB).
    compact: Option<(Duration, Option<u64>)>,
    session_bytes: usize,
}

/// Sessions the `get (hot)` pass reads over and over: what a server's active users
/// touch, and what the default cache holds (1,000 sessions of ~2.5 KB take ~5.5 MiB).
const HOT: usize = 1_000;

/// The operations in the order they run and print.
const OPS: [&str; 9] = [
    "create",
    "get",
    "get (hot)",
    "update",
    "touch 1st",
    "touch",
    "user-sessions",
    "delete",
    "cleanup",
];

fn measure(
    kind: Kind,
    dir: &std::path::Path,
    n: usize,
    backend: BackendKind,
    durability: Durability,
    redis: Option<(&str, &str)>,
    cli: &std::path::Path,
) -> anyhow::Result<Results> {
    let now = session_vault::Clock::now(&session_vault::SystemClock);
    let clock = ManualClock::new(now);
    let sessions: Vec<Session> = (0..n).map(|i| session(i, now)).collect::<Result<_, _>>()?;
    let ids: Vec<&str> = sessions.iter().map(|s| s.id()).collect();
    let users: Vec<String> = (0..USERS).map(|u| format!("user-{u}")).collect();
    let patch: SessionPatch = serde_json::from_value(serde_json::json!({
        "security": {"lastAccessedAt": now + 1, "accessCount": 2}
    }))?;
    let mut results = Results {
        session_bytes: sessions
            .first()
            .map_or(Ok(0), |s| serde_json::to_vec(s).map(|v| v.len()))?,
        ..Results::default()
    };
    let mut target = kind.open(dir, backend, durability, &clock, redis)?;
    // One-shot runs of the CLI and compaction are measured on directory stores.
    let local = redis.is_none();
    let t: &mut dyn Target = target.as_mut();
    results
        .ops
        .insert("create", time(&sessions, |s| t.create(s))?);
    results.ops.insert("get", time(&ids, |id| t.get(id))?);
    // As many reads, of the first HOT sessions round and round.
    let hot: Vec<&str> = ids.iter().take(HOT).copied().cycle().take(n).collect();
    results.ops.insert("get (hot)", time(&hot, |id| t.get(id))?);
    results
        .ops
        .insert("update", time(&ids, |id| t.update(id, &patch))?);
    results
        .ops
        .insert("touch 1st", time(&ids, |id| t.touch(id))?);
    results.ops.insert("touch", time(&ids, |id| t.touch(id))?);
    results.ops.insert(
        "user-sessions",
        time(&users, |user| t.user_sessions(user).map(drop))?,
    );
    t.close();
    if kind == Kind::Component && local {
        results.peak_rss_kib = peak::one_shot_count(cli, dir)?;
    }
    let start = Instant::now();
    t.reopen()?;
    results.cold_open = start.elapsed();
    let (gone, kept) = ids.split_at(ids.len() / 2);
    results.ops.insert("delete", time(gone, |id| t.delete(id))?);
    if kind == Kind::Component && local {
        // Every session updated and touched twice, half deleted: most records are dead.
        t.close();
        results.compact = Some(peak::one_shot(cli, dir, "compact")?);
        t.reopen()?;
    }
    // Every session expires within a day: a day later, cleanup removes the other half.
    clock.advance(86_400_001);
    let start = Instant::now();
    results.cleanup_removed = t.cleanup()?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        results.cleanup_removed == kept.len() as u64,
        "cleanup removed {} sessions, expected {}",
        results.cleanup_removed,
        kept.len()
    );
    results.ops.insert(
        "cleanup",
        Stats {
            ops_per_s: kept.len() as f64 / elapsed.as_secs_f64(),
            ..Stats::default()
        },
    );
    Ok(results)
}

/// Runs `op` on each item; ops/s over the whole run, p50 and p99 of single calls.
fn time<T>(items: &[T], mut op: impl FnMut(&T) -> anyhow::Result<()>) -> anyhow::Result<Stats> {
    let mut latencies = Vec::with_capacity(items.len());
    let start = Instant::now();
    for item in items {
        let t = Instant::now();
        op(item)?;
        latencies.push(t.elapsed());
    }
    let total = start.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).map_or(0, |d| d.as_micros())
    };
    Ok(Stats {
        ops_per_s: items.len() as f64 / total.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
    })
}

fn print(
    n: usize,
    backend: BackendKind,
    durability: Durability,
    results: &BTreeMap<&str, Results>,
    original: Option<&original::Figures>,
) {
    let (Some(comp), Some(native), Some(floor)) = (
        results.get("component"),
        results.get("native"),
        results.get("floor"),
    ) else {
        return;
    };
    let mode = match durability {
        _ if backend == BackendKind::Redis => "the server's own persistence settings",
        Durability::Durable => "durable (fsync before each call returns)",
        _ => "relaxed (no fsync)",
    };
    println!();
    println!(
        "== {n} sessions of {} bytes, {} backend, {mode}",
        comp.session_bytes,
        backend.name()
    );
    println!(
        "{:<14}|{:>28} |{:>28} |{:>28} | time ratio             | original",
        "",
        "(a) component",
        "(b) native core",
        if backend == BackendKind::Redis {
            "(c) raw Redis floor"
        } else {
            "(c) raw I/O floor"
        }
    );
    println!(
        "{:<14}|{:>10}{:>9}{:>9} |{:>10}{:>9}{:>9} |{:>10}{:>9}{:>9} | {:>10} {:>10} | {:>9} {:>8}",
        "op",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "(a)/(b)",
        "(a)/(c)",
        "ops/s",
        "(a)÷orig"
    );
    for op in OPS {
        let stats = |r: &Results| r.ops.get(op).copied().unwrap_or_default();
        let (a, b, c) = (stats(comp), stats(native), stats(floor));
        let orig = original.and_then(|o| o.ops.get(original_op(op)).copied());
        let latency = |s: Stats, v: u128| {
            if s.p50_us == 0 {
                "-".to_owned()
            } else {
                v.to_string()
            }
        };
        println!(
            "{:<14}|{:>10.0}{:>9}{:>9} |{:>10.0}{:>9}{:>9} |{:>10.0}{:>9}{:>9} | {:>10.2} {:>10.2} | {:>9} {:>8}",
            op,
            a.ops_per_s,
            latency(a, a.p50_us),
            latency(a, a.p99_us),
            b.ops_per_s,
            latency(b, b.p50_us),
            latency(b, b.p99_us),
            c.ops_per_s,
            latency(c, c.p50_us),
            latency(c, c.p99_us),
            b.ops_per_s / a.ops_per_s,
            c.ops_per_s / a.ops_per_s,
            orig.map_or("-".into(), |o| format!("{o:.0}")),
            orig.map_or("-".into(), |o| format!("{:.2}x", a.ops_per_s / o)),
        );
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<14}|{:>26.1}ms |{:>26.1}ms |{:>26.1}ms | {:>10.2} {:>10.2} | {:>9} {:>8}",
        "cold open",
        ms(comp.cold_open),
        ms(native.cold_open),
        ms(floor.cold_open),
        ms(comp.cold_open) / ms(native.cold_open),
        ms(comp.cold_open) / ms(floor.cold_open),
        original.map_or("-".into(), |o| format!("{:.0}ms", o.open_ms)),
        original.map_or("-".into(), |o| format!(
            "{:.2}x",
            o.open_ms / ms(comp.cold_open)
        )),
    );
    if let Some(kib) = comp.peak_rss_kib {
        println!(
            "peak RSS of a one-shot `session-vault count` of the {n} sessions: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    if let Some((elapsed, kib)) = comp.compact {
        println!(
            "one-shot `session-vault compact` after the deletes ({n} sessions updated, touched, \
             half deleted): {:.0} ms, peak RSS {}",
            ms(elapsed),
            kib.map_or("-".into(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0))
        );
    }
    println!(
        "(a)/(b), (a)/(c): time per operation relative to the native core and the floor (1.00 = as fast).\n\
         (a)÷orig: speed-up over the original on Node in this run; its touch is a full update."
    );
}

/// The original's operation `op` is compared with.
fn original_op(op: &str) -> &str {
    match op {
        // The original's session layer records an access with a full update.
        _ if op.starts_with("touch") => "update",
        // The original caches nothing: its hot read is its read.
        "get (hot)" => "get",
        _ => op,
    }
}

/// Session `i`, shaped like the original's fixture sessions.
fn session(i: usize, now: u64) -> anyhow::Result<Session> {
    let filler = |len: usize, seed: usize| -> String {
        (0..len)
            .map(|j| char::from(b'A' + ((j * 7 + seed) % 26) as u8))
            .collect()
    };
    serde_json::from_value(serde_json::json!({
        "sessionId": format!("s{i:07}-bench"),
        "sessionToken": filler(32, i),
        "userContext": {"userId": format!("user-{}", i % USERS), "email": format!("user{}@example.org", i % USERS),
                        "name": "User Ünïcødé", "tenantId": "tenant-1", "roles": ["reader", "member"]},
        "tokenMetadata": {"accessToken": filler(400, i + 1), "refreshToken": filler(268, i + 2),
                          "idToken": filler(1200, i + 3),
                          "expiresAt": now + 3_600_000, "scopes": ["openid", "profile", "offline_access"]},
        "security": {"ipAddress": "10.0.0.1", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
                     "createdAt": now, "lastAccessedAt": now, "accessCount": 1,
                     "fingerprint": filler(32, i + 4)},
        "expiresAt": now + 86_400_000,
        "createdAt": now
    }))
    .context("building a benchmark session")
}
