//! Peak memory of a one-shot CLI process: what a cold open of a store costs the host.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;

/// Runs `session-vault --dir DIR count` on the benchmark's store and returns the peak
/// resident set size of that process in KiB (`None` where the OS does not say).
pub fn one_shot_count(dir: &Path) -> anyhow::Result<Option<u64>> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let child = Command::new(exe)
        .arg("--dir")
        .arg(dir)
        .arg("count")
        .env("SESSION_VAULT_SECRET", format!("hex:{}", "5a".repeat(32)))
        .stdout(Stdio::null())
        .spawn()
        .context("running session-vault count")?;
    wait_peak_kib(child)
}

/// Waits for `child` and returns its own peak RSS (not that of other children).
#[cfg(unix)]
fn wait_peak_kib(child: std::process::Child) -> anyhow::Result<Option<u64>> {
    let pid = libc::pid_t::try_from(child.id()).context("the child's pid")?;
    let mut status = 0;
    // SAFETY: `rusage` is plain integers, for which all-zero is a valid value; wait4
    // writes only into the two locals it is given, and reaps a child this process spawned
    // and has not waited for (std's `Child` is dropped without waiting).
    #[allow(unsafe_code)]
    let (reaped, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::wait4(pid, &mut status, 0, &mut usage), usage)
    };
    anyhow::ensure!(reaped == pid, "waiting for session-vault count failed");
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "session-vault count failed (wait status {status})"
    );
    // Linux reports ru_maxrss in KiB.
    Ok(u64::try_from(usage.ru_maxrss).ok())
}

#[cfg(not(unix))]
fn wait_peak_kib(mut child: std::process::Child) -> anyhow::Result<Option<u64>> {
    let status = child.wait().context("waiting for session-vault count")?;
    anyhow::ensure!(status.success(), "session-vault count failed: {status}");
    Ok(None)
}
