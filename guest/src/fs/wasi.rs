//! [`Dir`] on `wasi:filesystem`, called directly through the `wasip2` bindings rather
//! than `std::fs`: std's open flags are refused by some runtimes' shims (jco's on Node),
//! while these calls work in every component runtime.

use std::io;
use std::rc::Rc;

use wasip2::filesystem::preopens;
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

use crate::error::StoreError;
use crate::fs::{Dir, Entry, too_long};

/// A preopened directory. Clones share the descriptors.
#[derive(Clone)]
pub struct WasiDir {
    /// The preopen, for calls that take a path.
    root: Rc<Descriptor>,
    /// The same directory opened again through the preopen (`.`), for calls on the
    /// directory itself: jco's Node shim refuses `read-directory` and `sync` on a preopen.
    itself: Rc<Descriptor>,
}

impl WasiDir {
    /// The preopen whose guest path is `name`, or the first preopen if `name` is `None`.
    pub fn preopened(name: Option<&str>) -> Result<Self, StoreError> {
        let mut preopens = preopens::get_directories().into_iter();
        let found = match name {
            None => preopens.next(),
            Some(name) => preopens.find(|(_, path)| path == name),
        };
        match found {
            Some((root, _)) => {
                let itself = open_dir(&root, ".")
                    .map_err(|code| StoreError::io("opening the store directory", error(code)))?;
                Ok(WasiDir {
                    root: Rc::new(root),
                    itself: Rc::new(itself),
                })
            }
            None => Err(StoreError::InvalidInput(match name {
                None => "the runtime gave the component no preopened directory".into(),
                Some(name) => format!("no preopened directory has the guest path {name:?}"),
            })),
        }
    }

    /// Runs `f` on the directory at `path` (`""` is the root).
    fn with_dir<T>(
        &self,
        path: &str,
        f: impl FnOnce(&Descriptor) -> Result<T, ErrorCode>,
    ) -> io::Result<T> {
        if path.is_empty() {
            return f(&self.itself).map_err(error);
        }
        let dir = open_dir(&self.root, path).map_err(error)?;
        f(&dir).map_err(error)
    }
}

impl Dir for WasiDir {
    type File = Descriptor;

    fn open_file(&self, path: &str, create: bool) -> io::Result<Option<Self::File>> {
        let flags = if create {
            OpenFlags::CREATE
        } else {
            OpenFlags::empty()
        };
        // No SYMLINK_FOLLOW: a symbolic link fails to open instead of being followed.
        match self.root.open_at(
            PathFlags::empty(),
            path,
            flags,
            DescriptorFlags::READ | DescriptorFlags::WRITE,
        ) {
            Ok(file) => Ok(Some(file)),
            Err(ErrorCode::NoEntry) if !create => Ok(None),
            Err(code) => Err(error(code)),
        }
    }

    fn file_len(&self, file: &Self::File) -> io::Result<u64> {
        Ok(file.stat().map_err(error)?.size)
    }

    fn read_at(&self, file: &Self::File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(len);
        while bytes.len() < len {
            let want = (len - bytes.len()).min(1 << 20) as u64;
            let (chunk, end) = file
                .read(want, offset + bytes.len() as u64)
                .map_err(error)?;
            bytes.extend_from_slice(&chunk);
            if end || chunk.is_empty() {
                break;
            }
        }
        Ok(bytes)
    }

    fn write_at(&self, file: &Self::File, offset: u64, bytes: &[u8]) -> io::Result<()> {
        write_all(file, offset, bytes)
    }

    fn sync_file(&self, file: &Self::File) -> io::Result<()> {
        file.sync_data().map_err(error)
    }

    fn truncate(&self, file: &Self::File, len: u64) -> io::Result<()> {
        file.set_size(len).map_err(error)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        // No SYMLINK_FOLLOW: a symbolic link fails to open instead of being followed.
        let file = match self.root.open_at(
            PathFlags::empty(),
            path,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        ) {
            Ok(file) => file,
            Err(ErrorCode::NoEntry) => return Ok(None),
            Err(code) => return Err(error(code)),
        };
        let stat = file.stat().map_err(error)?;
        if stat.type_ != DescriptorType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        if stat.size > limit {
            return Err(too_long(limit));
        }
        let mut bytes = Vec::new();
        loop {
            let (chunk, end) = file.read(64 * 1024, bytes.len() as u64).map_err(error)?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > limit {
                return Err(too_long(limit));
            }
            if end || chunk.is_empty() {
                return Ok(Some(bytes));
            }
        }
    }

    fn write_new(&self, path: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        let file = self
            .root
            .open_at(
                PathFlags::empty(),
                path,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            )
            .map_err(error)?;
        write_all(&file, 0, bytes)?;
        if sync {
            file.sync().map_err(error)?;
        }
        Ok(())
    }

    fn overwrite(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        // No SYMLINK_FOLLOW: a symbolic link fails to open instead of being written through.
        let file = self
            .root
            .open_at(
                PathFlags::empty(),
                path,
                OpenFlags::CREATE,
                DescriptorFlags::WRITE,
            )
            .map_err(error)?;
        write_all(&file, 0, bytes)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.root.rename_at(from, &self.root, to).map_err(error)
    }

    fn remove(&self, path: &str) -> io::Result<bool> {
        match self.root.unlink_file_at(path) {
            Ok(()) => Ok(true),
            Err(ErrorCode::NoEntry) => Ok(false),
            Err(code) => Err(error(code)),
        }
    }

    fn entries(&self, path: &str) -> io::Result<Option<Vec<Entry>>> {
        let listed = self.with_dir(path, |dir| {
            let stream = dir.read_directory()?;
            let mut entries = Vec::new();
            while let Some(entry) = stream.read_directory_entry()? {
                entries.push(Entry {
                    is_file: entry.type_ == DescriptorType::RegularFile,
                    name: entry.name,
                });
            }
            Ok(entries)
        });
        match listed {
            Ok(entries) => Ok(Some(entries)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn remove_dir(&self, path: &str) -> io::Result<bool> {
        match self.root.remove_directory_at(path) {
            Ok(()) => Ok(true),
            Err(ErrorCode::NoEntry) => Ok(false),
            Err(code) => Err(error(code)),
        }
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        match self.root.create_directory_at(path) {
            Ok(()) | Err(ErrorCode::Exist) => Ok(()),
            Err(code) => Err(error(code)),
        }
    }

    fn sync(&self, path: &str) -> io::Result<()> {
        self.with_dir(path, |dir| dir.sync())
    }
}

/// Opens the directory at `path` under `dir`, without following a symbolic link.
fn open_dir(dir: &Descriptor, path: &str) -> Result<Descriptor, ErrorCode> {
    dir.open_at(
        PathFlags::empty(),
        path,
        OpenFlags::DIRECTORY,
        DescriptorFlags::READ,
    )
}

/// Writes all of `bytes` at `offset` in `file`.
fn write_all(file: &Descriptor, offset: u64, bytes: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        let n = file.write(rest, offset + written as u64).map_err(error)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write made no progress",
            ));
        }
        written += usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
    }
    Ok(())
}

/// The `std::io` error of a WASI error code, keeping the code as its cause.
fn error(code: ErrorCode) -> io::Error {
    let kind = match code {
        ErrorCode::NoEntry => io::ErrorKind::NotFound,
        ErrorCode::Exist => io::ErrorKind::AlreadyExists,
        ErrorCode::Access | ErrorCode::NotPermitted => io::ErrorKind::PermissionDenied,
        ErrorCode::InsufficientSpace | ErrorCode::Quota => io::ErrorKind::StorageFull,
        ErrorCode::ReadOnly => io::ErrorKind::ReadOnlyFilesystem,
        ErrorCode::IsDirectory => io::ErrorKind::IsADirectory,
        ErrorCode::NotDirectory => io::ErrorKind::NotADirectory,
        ErrorCode::Interrupted => io::ErrorKind::Interrupted,
        ErrorCode::Unsupported => io::ErrorKind::Unsupported,
        // ELOOP: the path is a symbolic link we refused to follow.
        ErrorCode::Loop => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, code)
}
