//! The store directory on the host side: created private (0700) and held under an
//! exclusive lock for as long as a vault has it open.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::Duration;

use session_vault_guest::{StdDir, StoreError};

/// How long a busy directory lock is retried by default before the open fails with `locked`.
pub const LOCK_TIMEOUT: Duration = Duration::from_millis(100);

/// Creates `dir` with mode 0700, or tightens an existing one to 0700.
pub fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let context = || format!("creating {}", dir.display());
    // The missing directories, each synced into its parent: a power loss after the first
    // acknowledged write must not take the new store's directory away.
    let mut base = dir;
    let mut missing = Vec::new();
    while std::fs::symlink_metadata(base).is_err() {
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                base = parent;
            }
            _ => break,
        }
    }
    if !missing.is_empty() {
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let path: Vec<&str> = (missing.iter().rev())
            .map(|name| name.to_str())
            .collect::<Option<_>>()
            .ok_or_else(|| {
                StoreError::io(
                    context(),
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not UTF-8"),
                )
            })?;
        session_vault_guest::create_dirs(&StdDir::new(base), &path.join("/"))
            .map_err(|e| StoreError::io(context(), e))?;
    }
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(StoreError::io(
            context(),
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(dir).map_err(|e| StoreError::io(context(), e))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                StoreError::io(format!("restricting {} to mode 0700", dir.display()), e)
            })?;
        }
    }
    Ok(())
}

/// Takes an exclusive advisory lock on the directory itself (flock on Unix), so it
/// needs no lock file and is released by the kernel if the process dies.
///
/// A busy lock is retried for up to `timeout` before it counts as `locked`. Even a short
/// one matters: a lock just released can stay held for a moment, because a thread of this
/// process that forks a child shares every descriptor with it until the child execs.
pub fn lock_dir(dir: &Path, timeout: Duration) -> Result<File, StoreError> {
    let file =
        File::open(dir).map_err(|e| StoreError::io(format!("opening {}", dir.display()), e))?;
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) if !held_by_node(dir) => return Ok(file),
            // Taken the other way round by the npm package (its lock file, then a look for
            // this flock): whichever looks second sees the other and lets go.
            Ok(()) => file
                .unlock()
                .map_err(|e| StoreError::io(format!("unlocking {}", dir.display()), e))?,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(format!("locking {}", dir.display()), e));
            }
        }
        if start.elapsed() >= timeout {
            return Err(StoreError::Locked);
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Whether a live process on this machine holds `dir` through the npm package's lock file
/// (`session-vault.lock`: JSON with its host, pid and start time; see
/// packages/node/src/lock.js). WASI has no locks, so that package keeps one of its own; a
/// file whose holder has gone (killed, say) or that does not parse holds nothing here.
fn held_by_node(dir: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Holder {
        host: String,
        pid: u32,
        started: Option<String>,
    }
    let Ok(bytes) = std::fs::read(dir.join(session_vault_guest::LOCK_FILE)) else {
        return false;
    };
    let Ok(holder) = serde_json::from_slice::<Holder>(&bytes) else {
        return false;
    };
    let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") else {
        // Not Linux: the holder cannot be checked, so it counts.
        return true;
    };
    if holder.host != host.trim_end() {
        // Another machine's process, on a shared directory: it cannot be checked from here.
        return true;
    }
    // Field 22 of /proc/PID/stat, counted after the command name (which ends at ")").
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", holder.pid)) else {
        return false;
    };
    let started = (stat.rsplit_once(") "))
        .and_then(|(_, fields)| fields.split(' ').nth(19).map(str::to_owned));
    holder.started.is_none() || started == holder.started
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_lock(dir: &Path, pid: u32, started: Option<String>) {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let record = serde_json::json!({
            "host": host.trim_end(), "pid": pid, "started": started, "token": "t",
        });
        std::fs::write(dir.join("session-vault.lock"), record.to_string()).unwrap();
    }

    fn own_start() -> Option<String> {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (_, fields) = stat.rsplit_once(") ").unwrap();
        fields.split(' ').nth(19).map(str::to_owned)
    }

    #[test]
    fn a_live_node_holder_is_locked_and_a_gone_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let wait = Duration::from_millis(30);
        node_lock(tmp.path(), std::process::id(), own_start());
        assert!(matches!(
            lock_dir(tmp.path(), wait),
            Err(StoreError::Locked)
        ));
        // The same pid with another start time: the pid was reused, the holder is gone.
        node_lock(tmp.path(), std::process::id(), Some("1".into()));
        assert!(lock_dir(tmp.path(), wait).is_ok());
        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        node_lock(tmp.path(), pid, None);
        assert!(lock_dir(tmp.path(), wait).is_ok());
        // A file that does not parse holds nothing.
        std::fs::write(tmp.path().join("session-vault.lock"), b"{").unwrap();
        assert!(lock_dir(tmp.path(), wait).is_ok());
    }
}
