//! The benchmark's command line, as clap parses it: the sizes, the original store to run
//! beside, the tables file, the modes and backends (--durability, --backend, --redis), and
//! the CLI it runs one-shot (--cli).

use std::path::PathBuf;

use clap::Parser;
use session_vault::{BackendKind, Durability};

/// Measure every operation side by side: the component, the native core, the raw I/O
/// floor and (with --original) the original store, on throwaway stores.
#[derive(Debug, Parser)]
#[command(name = "session-vault-bench", version)]
pub struct Args {
    /// Store sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub sessions: Vec<usize>,
    /// The original store's built benchmark driver (a directory with dist/driver.js).
    #[arg(long, value_name = "DIR")]
    pub original: Option<PathBuf>,
    /// Also append each table, in Markdown, to this file (scripts/bench puts them
    /// in docs/PERFORMANCE.md).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Measure only this durability mode: `durable` syncs every session write and removal
    /// before it returns, `relaxed` does not. (Default: both.)
    #[arg(long, value_name = "MODE", value_parser = durability)]
    pub durability: Option<Durability>,
    /// Measure only this backend. (Default: `files` and `log`, and `redis` with --redis.)
    #[arg(long, value_name = "BACKEND", value_parser = backend)]
    pub backend: Option<BackendKind>,
    /// Also measure the `redis` backend in this Redis (or Valkey) server:
    /// `redis://[user:password@]HOST:PORT/DB`. Each store is a throwaway key prefix.
    #[arg(long, value_name = "URL", env = "SESSION_VAULT_REDIS_URL")]
    pub redis: Option<String>,
    /// The `session-vault` CLI whose one-shot `count` and `compact` of the `files` and
    /// `log` stores are measured. (Default: the one beside this executable, where
    /// `cargo build [--release] --bin session-vault` puts it.)
    #[arg(long, value_name = "PATH")]
    pub cli: Option<PathBuf>,
    /// Instead, measure create, get, set and a rolling touch of a framework's session
    /// (express-session, tower-sessions) beside the original-shaped one, through the
    /// component, in one `--backend` (default `log`) and `--durability` (default
    /// `relaxed`).
    #[arg(long)]
    pub shapes: bool,
}

/// `--durability`: `durable` or `relaxed`, the CLI's names.
fn durability(name: &str) -> Result<Durability, String> {
    match name {
        "durable" => Ok(Durability::Durable),
        "relaxed" => Ok(Durability::Relaxed),
        _ => Err(format!("{name:?}: the modes are durable and relaxed")),
    }
}

/// `--backend`: `files`, `log` or `redis`, the names the store records.
fn backend(name: &str) -> Result<BackendKind, String> {
    [BackendKind::Files, BackendKind::Log, BackendKind::Redis]
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| format!("{name:?}: the backends are files, log and redis"))
}
