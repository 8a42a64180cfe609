//! The benchmark's command line, as clap parses it: the flags `session-vault bench` took,
//! its own and the CLI's global ones it used (--durability, --backend, --redis), and the
//! CLI it runs one-shot (--cli).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

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
    #[arg(long, value_name = "MODE")]
    pub durability: Option<DurabilityArg>,
    /// Measure only this backend. (Default: `files` and `log`, and `redis` with --redis.)
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<BackendArg>,
    /// Also measure the `redis` backend in this Redis (or Valkey) server:
    /// `redis://[user:password@]HOST:PORT/DB`. Each store is a throwaway key prefix.
    #[arg(long, value_name = "URL", env = "SESSION_VAULT_REDIS_URL")]
    pub redis: Option<String>,
    /// The `session-vault` CLI whose one-shot `count` and `compact` of the `files` and
    /// `log` stores are measured. (Default: the one beside this executable, where
    /// `cargo build [--release] --bin session-vault` puts it.)
    #[arg(long, value_name = "PATH")]
    pub cli: Option<PathBuf>,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    /// Synced before each command returns.
    Durable,
    /// Not synced.
    Relaxed,
}

impl From<DurabilityArg> for session_vault::Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Durable => session_vault::Durability::Durable,
            DurabilityArg::Relaxed => session_vault::Durability::Relaxed,
        }
    }
}

/// `--backend`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// One file per session.
    Files,
    /// Records appended to segment files.
    Log,
    /// Sealed records in a Redis server shared by many hosts (needs --redis).
    Redis,
}

impl From<BackendArg> for session_vault::BackendKind {
    fn from(arg: BackendArg) -> Self {
        match arg {
            BackendArg::Files => session_vault::BackendKind::Files,
            BackendArg::Log => session_vault::BackendKind::Log,
            BackendArg::Redis => session_vault::BackendKind::Redis,
        }
    }
}
