//! The store directory on the host side: created private (0700) and held under an
//! exclusive lock for as long as a vault has it open.

use std::fs::{DirBuilder, File, TryLockError};
use std::path::Path;
use std::time::Duration;

use session_vault_guest::StoreError;

/// How long a busy directory lock is retried by default before the open fails with `locked`.
pub const LOCK_TIMEOUT: Duration = Duration::from_millis(100);

/// Creates `dir` with mode 0700, or tightens an existing one to 0700.
pub fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let context = || format!("creating {}", dir.display());
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| StoreError::io(context(), e))?;
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
