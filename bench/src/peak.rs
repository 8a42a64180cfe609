//! Peak memory of a one-shot CLI process: what a cold open of a store costs the host.
//!
//! Not `wait4`'s `ru_maxrss`: a child forked from the benchmark process starts out sharing
//! the parent's pages, and that maximum survives `exec`, so it would report the benchmark's
//! own size. The kernel's `VmHWM` is reset by `exec`: the child reports it itself (the
//! CLI's `cli::peak::report`, at exit).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The variable that asks `session-vault` to write its peak RSS (KiB) to a file at exit
/// (the CLI's `cli::peak::PEAK_FILE_ENV`).
pub const PEAK_FILE_ENV: &str = "SESSION_VAULT_PEAK_RSS_FILE";

/// The `session-vault` CLI beside this executable: cargo builds both into one target
/// directory.
pub fn cli_beside_this_exe() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()
        .context("finding this executable")?
        .with_file_name("session-vault"))
}

/// Runs `CLI --dir DIR count` on the benchmark's store and returns the peak resident set
/// size of that process in KiB (`None` where the OS does not say).
pub fn one_shot_count(cli: &Path, dir: &Path) -> anyhow::Result<Option<u64>> {
    one_shot(cli, dir, "count").map(|(_, peak)| peak)
}

/// Runs `CLI --dir DIR COMMAND` on the benchmark's store; returns how long the process
/// took and its peak resident set size in KiB (`None` where the OS does not say).
pub fn one_shot(cli: &Path, dir: &Path, command: &str) -> anyhow::Result<(Duration, Option<u64>)> {
    let report = dir.with_extension("peak");
    let start = Instant::now();
    let status = Command::new(cli)
        .arg("--dir")
        .arg(dir)
        .arg(command)
        .env("SESSION_VAULT_SECRET", format!("hex:{}", "5a".repeat(32)))
        .env(PEAK_FILE_ENV, &report)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {} {command}", cli.display()))?;
    let elapsed = start.elapsed();
    anyhow::ensure!(status.success(), "session-vault {command} failed: {status}");
    let peak = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| text.trim().parse().ok());
    // Best effort: the file is beside the benchmark's temporary store.
    let _ = std::fs::remove_file(&report);
    Ok((elapsed, peak))
}
