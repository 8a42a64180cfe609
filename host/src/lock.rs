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
        session_vault_guest::fs::create_dirs(&StdDir::new(base), &path.join("/"))
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
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked),
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(format!("locking {}", dir.display()), e));
            }
        }
    }
}
