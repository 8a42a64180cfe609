//! `SESSION_VAULT_PEAK_RSS_FILE=PATH`: at exit the process writes its peak resident set
//! size in KiB to PATH. What a one-shot command costs in memory: the benchmark
//! (`session-vault-bench`, bench/) and the conformance suite's bounded-read case read it.
//!
//! Not `wait4`'s `ru_maxrss`: a child forked from the measuring process starts out sharing
//! the parent's pages, and that maximum survives `exec`, so it would report the parent's
//! own size. The kernel's `VmHWM` is reset by `exec`: the process reports it itself.

/// The variable that asks `session-vault` to write its peak RSS (KiB) to a file at exit.
pub const PEAK_FILE_ENV: &str = "SESSION_VAULT_PEAK_RSS_FILE";

/// Writes this process's peak RSS in KiB to the file `PEAK_FILE_ENV` names, if set.
/// Best effort: a benchmark without the figure just prints none.
pub fn report() {
    let Some(path) = std::env::var_os(PEAK_FILE_ENV) else {
        return;
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    if let Some(kib) = peak {
        let _ = std::fs::write(path, kib.to_string());
    }
}
