//! The few directory operations the `files` backend needs, so the same backend runs on
//! `wasi:filesystem` in the component and on `std::fs` natively.
//!
//! Paths are relative to the store directory and built only from validated ids and
//! fixed names: they never contain `..` or start with `/`.

// Test doubles: a directory that fails on cue, a disk that loses what was not synced.
#[cfg(any(test, feature = "testing"))]
pub mod fault;
#[cfg(any(test, feature = "testing"))]
pub mod power_cut;
#[cfg(target_family = "wasm")]
pub(crate) mod wasi;

use std::io;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (not a path).
    pub name: String,
    /// Whether it is a regular file; symbolic links, directories and others are not.
    pub is_file: bool,
}

/// A directory the store owns.
pub trait Dir {
    /// An open file, for the `log` backend's segments: read and written at offsets.
    type File;
    /// Opens `path` for reading and writing, creating it if `create`; `Ok(None)` if it
    /// does not exist and `create` is false. Symbolic links are not followed.
    fn open_file(&self, path: &str, create: bool) -> io::Result<Option<Self::File>>;
    /// The length of an open file.
    fn file_len(&self, file: &Self::File) -> io::Result<u64>;
    /// Reads up to `len` bytes at `offset` (fewer only at the end of the file).
    fn read_at(&self, file: &Self::File, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Writes all of `bytes` at `offset`.
    fn write_at(&self, file: &Self::File, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Syncs an open file's data (and the metadata needed to read it back).
    fn sync_file(&self, file: &Self::File) -> io::Result<()>;
    /// Cuts an open file to `len` bytes.
    fn truncate(&self, file: &Self::File, len: u64) -> io::Result<()>;
    /// Reads a whole regular file; `Ok(None)` if it does not exist. A file longer than
    /// `limit` bytes is an `InvalidData` error. Symbolic links are not followed.
    fn read(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>>;
    /// Creates `path`, which must not exist, and writes `bytes`; syncs the file if `sync`.
    fn write_new(&self, path: &str, bytes: &[u8], sync: bool) -> io::Result<()>;
    /// Writes `bytes` at the start of `path`, creating it if needed, without syncing and
    /// without truncating (a longer old file keeps its tail). Symbolic links are not followed.
    fn overwrite(&self, path: &str, bytes: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically if it exists.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file; `Ok(false)` if it did not exist.
    fn remove(&self, path: &str) -> io::Result<bool>;
    /// Lists a directory (`""` is the store directory); `Ok(None)` if it does not exist.
    fn entries(&self, path: &str) -> io::Result<Option<Vec<Entry>>>;
    /// Creates a directory; succeeds if it already exists.
    fn create_dir(&self, path: &str) -> io::Result<()>;
    /// Removes an empty directory; `Ok(false)` if it did not exist.
    fn remove_dir(&self, path: &str) -> io::Result<bool>;
    /// Syncs a directory (`""` is the store directory), making renames and removals in it durable.
    fn sync(&self, path: &str) -> io::Result<()>;
}

/// A [`Dir`] on `std::fs`, for the natively built store (tests and benchmarks).
#[derive(Debug, Clone)]
pub struct StdDir {
    root: std::path::PathBuf,
}

impl StdDir {
    /// Uses the directory at `root`, which must exist.
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        StdDir { root: root.into() }
    }

    fn path(&self, path: &str) -> std::path::PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

impl Dir for StdDir {
    type File = std::fs::File;

    fn open_file(&self, path: &str, create: bool) -> io::Result<Option<Self::File>> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(create);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        match options.open(self.path(path)) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn file_len(&self, file: &Self::File) -> io::Result<u64> {
        Ok(file.metadata()?.len())
    }

    fn read_at(&self, file: &Self::File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut reader = file;
        reader.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(len);
        reader.take(len as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn write_at(&self, file: &Self::File, offset: u64, bytes: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut writer = file;
        writer.seek(SeekFrom::Start(offset))?;
        writer.write_all(bytes)
    }

    fn sync_file(&self, file: &Self::File) -> io::Result<()> {
        file.sync_data()
    }

    fn truncate(&self, file: &Self::File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let file = match open_no_follow(&self.path(path)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(too_long(limit));
        }
        Ok(Some(bytes))
    }

    fn write_new(&self, path: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(self.path(path))?;
        file.write_all(bytes)?;
        if sync { file.sync_all() } else { Ok(()) }
    }

    fn overwrite(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        options.open(self.path(path))?.write_all(bytes)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))
    }

    fn remove(&self, path: &str) -> io::Result<bool> {
        match std::fs::remove_file(self.path(path)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn entries(&self, path: &str) -> io::Result<Option<Vec<Entry>>> {
        let listing = match std::fs::read_dir(self.path(path)) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for entry in listing {
            let entry = entry?;
            entries.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_file: entry.file_type()?.is_file(),
            });
        }
        Ok(Some(entries))
    }

    fn remove_dir(&self, path: &str) -> io::Result<bool> {
        match std::fs::remove_dir(self.path(path)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        // The mode is set on unix only.
        #[allow(unused_mut)]
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(self.path(path)) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    fn sync(&self, path: &str) -> io::Result<()> {
        std::fs::File::open(self.path(path))?.sync_all()
    }
}

/// Creates directory `path` under `root` with every missing directory above it, each
/// made durable in turn: a new directory's name is synced in its parent before anything
/// is created inside it, so nothing acknowledged later can vanish with the directory.
pub fn create_dirs<D: Dir>(root: &D, path: &str) -> io::Result<()> {
    let mut parent = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        let here = match parent.as_str() {
            "" => part.to_owned(),
            _ => format!("{parent}/{part}"),
        };
        root.create_dir(&here)?;
        root.sync(&parent)?;
        parent = here;
    }
    Ok(())
}

/// The names in a directory, sorted: what tests compare against.
#[cfg(test)]
pub(crate) fn names(path: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The error of a file longer than the reader's limit.
pub fn too_long(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("longer than the {limit}-byte limit"),
    )
}

#[cfg(unix)]
fn open_no_follow(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &std::path::Path) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_to_replace() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StdDir::new(tmp.path());
        dir.write_new("a", b"1", true).unwrap();
        assert_eq!(
            dir.write_new("a", b"2", true).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(dir.read("a", 10).unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn overwrite_creates_or_writes_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StdDir::new(tmp.path());
        dir.overwrite("a", b"12345").unwrap();
        dir.overwrite("a", b"ab").unwrap();
        assert_eq!(dir.read("a", 10).unwrap(), Some(b"ab345".to_vec()));
    }

    #[test]
    fn read_enforces_the_limit_and_reports_absence() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StdDir::new(tmp.path());
        dir.write_new("a", b"12345", false).unwrap();
        assert_eq!(dir.read("a", 5).unwrap(), Some(b"12345".to_vec()));
        assert_eq!(
            dir.read("a", 4).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(dir.read("b", 4).unwrap(), None);
        assert!(!dir.remove("b").unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_not_files_and_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a.svs")).unwrap();
        let dir = StdDir::new(tmp.path());
        let entries = dir.entries("").unwrap().unwrap();
        assert_eq!(
            entries,
            vec![Entry {
                name: "a.svs".into(),
                is_file: false
            }]
        );
        assert!(dir.read("a.svs", 10).is_err());
        assert!(dir.overwrite("a.svs", b"x").is_err());
        assert_eq!(std::fs::read(outside.path()).unwrap(), b"");
    }
}
