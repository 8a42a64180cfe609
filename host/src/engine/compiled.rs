//! The compiled component, kept on disk so that a one-shot process (the CLI) loads it
//! instead of compiling it again (~0.4 s of Cranelift for every command).
//!
//! One artifact per component build and engine configuration, named by a hash of both:
//! `<dir>/session-vault-<16 hex>.cwasm`. Loading maps it and runs its machine code, so it
//! is loaded only from a directory and file that this user owns and no one else can write.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The component compiled for `engine`: loaded from `dir` if a trusted artifact of this
/// exact build is there, otherwise compiled and, best effort, stored there for next time.
/// A cache that cannot be read or written only costs the compile.
pub fn load(engine: &Engine, wasm: &[u8], dir: &Path) -> wasmtime::Result<Component> {
    let path = artifact(engine, wasm, dir);
    if trusted(&path) {
        // SAFETY: `deserialize_file` runs the machine code in the file. `trusted` checked
        // that the file and its directory belong to this user and are writable by no one
        // else, and only `store` below writes there, from `precompile_component`'s output.
        // wasmtime itself refuses an artifact of another version or configuration.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        // A damaged or stale artifact is not an error: compile again and replace it.
        if let Ok(component) = loaded {
            return Ok(component);
        }
    }
    let compiled = engine.precompile_component(wasm)?;
    // Best effort: without a cache the next process compiles again, nothing worse.
    let _ = store(dir, &path, &compiled);
    // SAFETY: the bytes were produced by `precompile_component` on this engine just now.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &compiled) };
    component
}

/// Where the artifact of this component and engine configuration lives.
fn artifact(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    wasm.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("session-vault-{:016x}.cwasm", hasher.finish()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never
/// maps half an artifact; creates `dir` private to this user.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Whether `path` is a regular file, and its directory a directory, both owned by this
/// process's user and writable by no one else. Symbolic links are not trusted.
#[cfg(unix)]
fn trusted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let user = unsafe { libc::geteuid() };
    let private = |meta: &std::fs::Metadata| meta.uid() == user && meta.mode() & 0o022 == 0;
    let dir_ok = path
        .parent()
        .and_then(|dir| std::fs::symlink_metadata(dir).ok())
        .is_some_and(|meta| meta.is_dir() && private(&meta));
    let file_ok = std::fs::symlink_metadata(path)
        .is_ok_and(|meta| meta.file_type().is_file() && private(&meta));
    dir_ok && file_ok
}

/// Without Unix ownership and modes there is no cheap way to tell a planted artifact
/// from ours: always compile.
#[cfg(not(unix))]
fn trusted(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_load_uses_the_stored_artifact() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let engine = Engine::default();
        load(&engine, crate::COMPONENT, &dir).unwrap();
        let stored: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(stored.len(), 1, "one artifact, no temporary file");
        let path = artifact(&engine, crate::COMPONENT, &dir);
        assert!(trusted(&path));
        let stored = std::fs::metadata(&path).unwrap().modified().unwrap();
        load(&engine, crate::COMPONENT, &dir).unwrap();
        let reused = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(stored, reused, "loaded, not compiled and written again");
        // A damaged artifact is compiled again and replaced, not loaded.
        std::fs::write(&path, b"not an artifact").unwrap();
        load(&engine, crate::COMPONENT, &dir).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
    }

    #[cfg(unix)]
    #[test]
    fn artifacts_others_can_write_are_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let engine = Engine::default();
        load(&engine, crate::COMPONENT, &dir).unwrap();
        let path = artifact(&engine, crate::COMPONENT, &dir);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!trusted(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!trusted(&path));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.join("link.cwasm");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(!trusted(&link));
    }
}
