//! A [`Dir`] that fails chosen calls, for fault-injection tests: it wraps a real
//! directory and, while a fault is armed, makes the matching call fail with `ENOSPC` or
//! `EIO`, or write only part of its bytes and then fail, as a full disk does.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use crate::fs::{Dir, Entry};

/// The calls a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// Any write of file bytes: `write_at`, `write_new`, `overwrite`.
    Write,
    /// `sync_file` and directory `sync`.
    Sync,
    /// `rename`.
    Rename,
    /// `remove` (of a file).
    Remove,
    /// `read`, `read_at`.
    Read,
}

/// How a targeted call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `ENOSPC`: no space left on the device; nothing written.
    NoSpace,
    /// `EIO`: an input/output error; nothing written.
    Io,
    /// The first half of the bytes is written, then `ENOSPC`.
    ShortWrite,
}

/// Linux's `ENOSPC` and `EIO` (the wasm build has no `libc` crate).
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::NoSpace | Fault::ShortWrite => io::Error::from_raw_os_error(ENOSPC),
            Fault::Io => io::Error::from_raw_os_error(EIO),
        }
    }
}

/// What is armed: `fault` on the `skip + 1`th `call` from now, and every one after it
/// while `sticky` (a disk that stays full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The calls targeted.
    pub call: Call,
    /// How they fail.
    pub fault: Fault,
    /// Matching calls let through first.
    pub skip: u32,
    /// Whether every later matching call fails too, until [`Faults::clear`].
    pub sticky: bool,
}

/// The switch shared by a [`FaultyDir`] and the test driving it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    plan: Rc<RefCell<Option<Plan>>>,
    injected: Rc<RefCell<u32>>,
}

impl Faults {
    /// Arms `plan`, replacing any other.
    pub fn arm(&self, plan: Plan) {
        *self.plan.borrow_mut() = Some(plan);
    }

    /// Disarms: every call goes through again.
    pub fn clear(&self) {
        *self.plan.borrow_mut() = None;
    }

    /// How many calls have failed on purpose so far.
    pub fn injected(&self) -> u32 {
        *self.injected.borrow()
    }

    /// The fault this `call` must suffer, if any; counts it.
    fn hit(&self, call: Call) -> Option<Fault> {
        let mut plan = self.plan.borrow_mut();
        let armed = plan.as_mut().filter(|p| p.call == call)?;
        if armed.skip > 0 {
            armed.skip -= 1;
            return None;
        }
        let fault = armed.fault;
        if !armed.sticky {
            *plan = None;
        }
        *self.injected.borrow_mut() += 1;
        Some(fault)
    }
}

/// A [`Dir`] over `inner` that fails the calls [`Faults`] arms.
#[derive(Debug, Clone)]
pub struct FaultyDir<D> {
    inner: D,
    faults: Faults,
}

impl<D: Dir> FaultyDir<D> {
    /// Wraps `inner`; `faults` arms and clears failures.
    pub fn new(inner: D, faults: Faults) -> Self {
        FaultyDir { inner, faults }
    }

    fn check(&self, call: Call) -> io::Result<()> {
        match self.faults.hit(call) {
            Some(fault) => Err(fault.error()),
            None => Ok(()),
        }
    }

    /// Fails a write as armed: a short write lands half of `bytes` through `write`.
    fn write_with(
        &self,
        bytes: &[u8],
        write: impl FnOnce(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        match self.faults.hit(Call::Write) {
            None => write(bytes),
            Some(Fault::ShortWrite) => {
                write(bytes.get(..bytes.len() / 2).unwrap_or_default())?;
                Err(Fault::ShortWrite.error())
            }
            Some(fault) => Err(fault.error()),
        }
    }
}

impl<D: Dir> Dir for FaultyDir<D> {
    type File = D::File;

    fn open_file(&self, path: &str, create: bool) -> io::Result<Option<Self::File>> {
        self.inner.open_file(path, create)
    }
    fn file_len(&self, file: &Self::File) -> io::Result<u64> {
        self.inner.file_len(file)
    }
    fn read_at(&self, file: &Self::File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.check(Call::Read)?;
        self.inner.read_at(file, offset, len)
    }
    fn write_at(&self, file: &Self::File, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.write_with(bytes, |b| self.inner.write_at(file, offset, b))
    }
    fn sync_file(&self, file: &Self::File) -> io::Result<()> {
        self.check(Call::Sync)?;
        self.inner.sync_file(file)
    }
    fn truncate(&self, file: &Self::File, len: u64) -> io::Result<()> {
        self.inner.truncate(file, len)
    }
    fn read(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        self.check(Call::Read)?;
        self.inner.read(path, limit)
    }
    fn write_new(&self, path: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        self.write_with(bytes, |b| self.inner.write_new(path, b, sync))
    }
    fn overwrite(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_with(bytes, |b| self.inner.overwrite(path, b))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.check(Call::Rename)?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &str) -> io::Result<bool> {
        self.check(Call::Remove)?;
        self.inner.remove(path)
    }
    fn entries(&self, path: &str) -> io::Result<Option<Vec<Entry>>> {
        self.inner.entries(path)
    }
    fn create_dir(&self, path: &str) -> io::Result<()> {
        self.inner.create_dir(path)
    }
    fn remove_dir(&self, path: &str) -> io::Result<bool> {
        self.inner.remove_dir(path)
    }
    fn sync(&self, path: &str) -> io::Result<()> {
        self.check(Call::Sync)?;
        self.inner.sync(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdDir;

    #[test]
    fn an_armed_fault_hits_the_chosen_call_once_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let faults = Faults::default();
        let dir = FaultyDir::new(StdDir::new(tmp.path()), faults.clone());
        faults.arm(Plan {
            call: Call::Write,
            fault: Fault::NoSpace,
            skip: 1,
            sticky: false,
        });
        dir.write_new("a", b"1", false).unwrap();
        let error = dir.write_new("b", b"2", false).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28));
        dir.write_new("c", b"3", false).unwrap();
        faults.arm(Plan {
            call: Call::Write,
            fault: Fault::ShortWrite,
            skip: 0,
            sticky: true,
        });
        assert!(dir.overwrite("d", b"abcd").is_err());
        assert_eq!(std::fs::read(tmp.path().join("d")).unwrap(), b"ab");
        assert!(dir.overwrite("e", b"x").is_err());
        faults.clear();
        dir.overwrite("e", b"x").unwrap();
        assert_eq!(faults.injected(), 3);
    }
}
