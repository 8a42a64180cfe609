//! [`PowerCutDir`]: the [`Dir`] calls over a simulated disk.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use super::disk::{Disk, Ino, Node, Op, not_found};
use crate::fs::{Dir, Entry, too_long};

/// A directory on a [`super::PowerCut`] disk.
#[derive(Debug, Clone)]
pub struct PowerCutDir {
    pub(super) disk: Rc<RefCell<Disk>>,
    pub(super) base: String,
}

impl PowerCutDir {
    fn path(&self, path: &str) -> String {
        match (self.base.as_str(), path) {
            (base, "") => base.to_owned(),
            ("", path) => path.to_owned(),
            (base, path) => format!("{base}/{path}"),
        }
    }

    fn disk(&self) -> io::Result<std::cell::RefMut<'_, Disk>> {
        let disk = self.disk.borrow_mut();
        disk.check_power()?;
        Ok(disk)
    }
}

impl Dir for PowerCutDir {
    type File = Ino;

    fn open_file(&self, path: &str, create: bool) -> io::Result<Option<Ino>> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        match disk.lookup(&path) {
            Some(ino) => disk.file(ino).map(|_| Some(ino)),
            None if create => {
                disk.change()?;
                disk.create_file(&path).map(Some)
            }
            None => Ok(None),
        }
    }

    fn file_len(&self, file: &Ino) -> io::Result<u64> {
        Ok(self.disk()?.file(*file)?.len() as u64)
    }

    fn read_at(&self, file: &Ino, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let disk = self.disk()?;
        let data = disk.file(*file)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(data.get(start..end).unwrap_or_default().to_vec())
    }

    fn write_at(&self, file: &Ino, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.disk()?.write(*file, offset, bytes)
    }

    fn sync_file(&self, file: &Ino) -> io::Result<()> {
        let mut disk = self.disk()?;
        disk.change()?;
        let ino = *file;
        disk.make_durable(|op| op.is_data_of(ino));
        Ok(())
    }

    fn truncate(&self, file: &Ino, len: u64) -> io::Result<()> {
        let mut disk = self.disk()?;
        disk.file(*file)?;
        disk.change()?;
        disk.record(Op::Truncate { ino: *file, len });
        Ok(())
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let disk = self.disk()?;
        let Some(ino) = disk.lookup(&self.path(path)) else {
            return Ok(None);
        };
        let data = disk.file(ino)?;
        if data.len() as u64 > limit {
            return Err(too_long(limit));
        }
        Ok(Some(data.clone()))
    }

    fn write_new(&self, path: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        if disk.lookup(&path).is_some() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, path));
        }
        disk.change()?;
        let ino = disk.create_file(&path)?;
        disk.write(ino, 0, bytes)?;
        if sync {
            disk.change()?;
            disk.make_durable(|op| op.is_data_of(ino));
        }
        Ok(())
    }

    fn overwrite(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        let ino = match disk.lookup(&path) {
            Some(ino) => ino,
            None => {
                disk.change()?;
                disk.create_file(&path)?
            }
        };
        disk.write(ino, 0, bytes)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from), self.path(to));
        let mut disk = self.disk()?;
        let ino = disk.lookup(&from).ok_or_else(|| not_found(&from))?;
        let (from_dir, from_name) = disk.parent(&from)?;
        let (to_dir, to_name) = disk.parent(&to)?;
        if let Some(target) = disk.lookup(&to)
            && matches!(disk.current.get(target), Some(Node::Dir(_)))
        {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, to));
        }
        disk.change()?;
        disk.record(Op::Rename {
            from_dir,
            from: from_name.to_owned(),
            to_dir,
            to: to_name.to_owned(),
            ino,
        });
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<bool> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        let Some(ino) = disk.lookup(&path) else {
            return Ok(false);
        };
        disk.file(ino)?;
        disk.unlink(&path)?;
        Ok(true)
    }

    fn entries(&self, path: &str) -> io::Result<Option<Vec<Entry>>> {
        let disk = self.disk()?;
        let Some(ino) = disk.lookup(&self.path(path)) else {
            return Ok(None);
        };
        match disk.current.get(ino) {
            Some(Node::Dir(names)) => Ok(Some(
                (names.iter())
                    .map(|(name, child)| Entry {
                        name: name.clone(),
                        is_file: matches!(disk.current.get(*child), Some(Node::File(_))),
                    })
                    .collect(),
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )),
        }
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        match disk.lookup(&path) {
            Some(ino) if matches!(disk.current.get(ino), Some(Node::Dir(_))) => Ok(()),
            Some(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, path)),
            None => {
                let (dir, name) = disk.parent(&path)?;
                disk.change()?;
                let ino = disk.allocate(Node::Dir(BTreeMap::new()));
                disk.record(Op::Link {
                    dir,
                    name: name.to_owned(),
                    ino,
                });
                Ok(())
            }
        }
    }

    fn remove_dir(&self, path: &str) -> io::Result<bool> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        let Some(ino) = disk.lookup(&path) else {
            return Ok(false);
        };
        match disk.current.get(ino) {
            Some(Node::Dir(names)) if names.is_empty() => {}
            Some(Node::Dir(_)) => {
                return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, path));
            }
            _ => return Err(io::Error::new(io::ErrorKind::NotADirectory, path)),
        }
        disk.unlink(&path)?;
        Ok(true)
    }

    fn sync(&self, path: &str) -> io::Result<()> {
        let path = self.path(path);
        let mut disk = self.disk()?;
        let ino = disk.lookup(&path).ok_or_else(|| not_found(&path))?;
        disk.change()?;
        disk.make_durable(|op| op.is_name_in(ino));
        Ok(())
    }
}
