//! A simulated disk that loses what was not synced, for power-loss tests (in the manner
//! of SQLite's crash-test layer and of ALICE's persistence models).
//!
//! Every write, truncate, create, rename and removal changes the volatile view at once
//! (what reads see) and is kept as a pending operation. A file's sync makes its pending
//! data durable; a directory's sync makes the names in it durable (creates, removals, and
//! renames into it). [`PowerCut::power_off_after`] makes every call after the `n`th
//! change fail, as a process on a machine that lost power would; [`PowerCut::cut`] then
//! yields the disk as it would be found after the reboot: all that was synced, plus, for
//! each pending operation, what the [`Model`] lets survive. A file whose name never
//! became durable does not exist after the cut, whatever was synced inside it.
//!
//! Renames are atomic (the old and the new name change together) and become durable with
//! a sync of the directory they rename into.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use crate::fs::{Dir, Entry, too_long};

/// The granularity of a torn write.
pub const SECTOR: usize = 512;

/// What survives of the operations pending at the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Model {
    /// Strict POSIX: only what was synced is sure; each pending operation is independently
    /// kept or dropped, and a pending write may be torn (per sector: new, old or zeroed).
    Posix,
    /// Like ext4 with `data=ordered`: names and sizes are journaled in order, so a prefix
    /// of the pending metadata operations survives, and the data written before the last
    /// surviving one is flushed with it; later writes are kept, dropped or torn.
    Ordered,
}

/// What becomes of one pending operation at the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It reached the disk.
    Kept,
    /// It did not.
    Dropped,
    /// A write reached the disk in part: each sector new, old or zeroed, as the bits of
    /// this pattern say (two bits a sector, cycling).
    Torn(u64),
}

/// A pending operation, as a cut sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A write of `len` bytes to a file.
    Write {
        /// The number of bytes.
        len: usize,
    },
    /// A change of a file's length.
    Truncate,
    /// A name created, removed or renamed.
    Name,
}

type Ino = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<String, Ino>),
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        ino: Ino,
        offset: u64,
        bytes: Vec<u8>,
    },
    Truncate {
        ino: Ino,
        len: u64,
    },
    Link {
        dir: Ino,
        name: String,
        ino: Ino,
    },
    Unlink {
        dir: Ino,
        name: String,
    },
    Rename {
        from_dir: Ino,
        from: String,
        to_dir: Ino,
        to: String,
        ino: Ino,
    },
}

impl Op {
    fn pending(&self) -> Pending {
        match self {
            Op::Write { bytes, .. } => Pending::Write { len: bytes.len() },
            Op::Truncate { .. } => Pending::Truncate,
            _ => Pending::Name,
        }
    }

    fn is_data_of(&self, file: Ino) -> bool {
        matches!(self, Op::Write { ino, .. } | Op::Truncate { ino, .. } if *ino == file)
    }

    fn is_name_in(&self, directory: Ino) -> bool {
        match self {
            Op::Link { dir, .. } | Op::Unlink { dir, .. } => *dir == directory,
            Op::Rename { to_dir, .. } => *to_dir == directory,
            _ => false,
        }
    }

    /// Applies the operation to `nodes`; `fate` says how much of a write lands.
    fn apply(&self, nodes: &mut [Node], fate: Fate) {
        if fate == Fate::Dropped {
            return;
        }
        match self {
            Op::Write { ino, offset, bytes } => {
                let Some(Node::File(data)) = nodes.get_mut(*ino) else {
                    return;
                };
                let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(bytes.len());
                if data.len() < end {
                    data.resize(end, 0);
                }
                for (i, byte) in bytes.iter().enumerate() {
                    let at = start + i;
                    let choice = match fate {
                        Fate::Torn(pattern) => (pattern >> ((at / SECTOR % 32) * 2)) & 3,
                        _ => 0,
                    };
                    if let Some(slot) = data.get_mut(at) {
                        match choice {
                            // 0 and 3: the new byte; 1: the old one stays; 2: zeroed.
                            1 => {}
                            2 => *slot = 0,
                            _ => *slot = *byte,
                        }
                    }
                }
            }
            Op::Truncate { ino, len } => {
                if let Some(Node::File(data)) = nodes.get_mut(*ino) {
                    data.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0);
                }
            }
            Op::Link { dir, name, ino } => {
                if let Some(Node::Dir(names)) = nodes.get_mut(*dir) {
                    names.insert(name.clone(), *ino);
                }
            }
            Op::Unlink { dir, name } => {
                if let Some(Node::Dir(names)) = nodes.get_mut(*dir) {
                    names.remove(name);
                }
            }
            Op::Rename {
                from_dir,
                from,
                to_dir,
                to,
                ino,
            } => {
                if let Some(Node::Dir(names)) = nodes.get_mut(*from_dir)
                    && names.get(from) == Some(ino)
                {
                    names.remove(from);
                }
                if let Some(Node::Dir(names)) = nodes.get_mut(*to_dir) {
                    names.insert(to.clone(), *ino);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Disk {
    /// What reads see.
    current: Vec<Node>,
    /// What a cut keeps for sure; node 0 is the root in both.
    durable: Vec<Node>,
    /// Unsynced operations, oldest first.
    pending: Vec<Op>,
    /// Changes made so far (writes, truncates, names, syncs).
    changes: u64,
    /// After this many changes every call fails: the power is off.
    power_off_after: Option<u64>,
}

/// A simulated disk; clones share it.
#[derive(Debug, Clone)]
pub struct PowerCut {
    disk: Rc<RefCell<Disk>>,
}

impl Default for PowerCut {
    fn default() -> Self {
        PowerCut::new()
    }
}

impl PowerCut {
    /// An empty disk: a root directory, durable.
    pub fn new() -> Self {
        let root = Node::Dir(BTreeMap::new());
        PowerCut::of(vec![root])
    }

    fn of(nodes: Vec<Node>) -> Self {
        PowerCut {
            disk: Rc::new(RefCell::new(Disk {
                current: nodes.clone(),
                durable: nodes,
                pending: Vec::new(),
                changes: 0,
                power_off_after: None,
            })),
        }
    }

    /// The directory at `path` on this disk (`""` is the root), as a [`Dir`]. It need
    /// not exist yet: calls resolve the path each time.
    pub fn dir(&self, path: &str) -> PowerCutDir {
        PowerCutDir {
            disk: Rc::clone(&self.disk),
            base: path.trim_matches('/').to_owned(),
        }
    }

    /// Makes every call after the `changes`th change from now fail with an I/O error.
    pub fn power_off_after(&self, changes: u64) {
        let mut disk = self.disk.borrow_mut();
        disk.power_off_after = Some(disk.changes.saturating_add(changes));
    }

    /// Whether the power is off.
    pub fn is_off(&self) -> bool {
        let disk = self.disk.borrow();
        disk.power_off_after
            .is_some_and(|limit| disk.changes >= limit)
    }

    /// How many changes have been made.
    pub fn changes(&self) -> u64 {
        self.disk.borrow().changes
    }

    /// The operations pending now, oldest first.
    pub fn pending(&self) -> Vec<Pending> {
        self.disk.borrow().pending.iter().map(Op::pending).collect()
    }

    /// The disk after a power loss now, each pending operation's fate drawn from `seed`
    /// under `model`.
    pub fn cut(&self, model: Model, seed: u64) -> PowerCut {
        let mut rng = Rng(seed);
        let pending = self.pending();
        let metadata: Vec<usize> = (pending.iter().enumerate())
            .filter(|(_, p)| !matches!(p, Pending::Write { .. }))
            .map(|(i, _)| i)
            .collect();
        // Ordered: the journal commits a prefix of the metadata changes, with the data
        // written before the last of them.
        let journaled = rng.below(metadata.len() as u64 + 1) as usize;
        let flushed_before = match journaled {
            0 => 0,
            n => metadata.get(n - 1).map_or(0, |i| i + 1),
        };
        let random_write = |rng: &mut Rng| match rng.below(3) {
            0 => Fate::Kept,
            1 => Fate::Dropped,
            _ => Fate::Torn(rng.bits()),
        };
        let fates: Vec<Fate> = (pending.iter().enumerate())
            .map(|(i, p)| match (model, p) {
                (Model::Posix, Pending::Write { .. }) => random_write(&mut rng),
                (Model::Posix, _) => {
                    if rng.below(2) == 0 {
                        Fate::Kept
                    } else {
                        Fate::Dropped
                    }
                }
                (Model::Ordered, Pending::Write { .. }) if i < flushed_before => Fate::Kept,
                (Model::Ordered, Pending::Write { .. }) => random_write(&mut rng),
                (Model::Ordered, _) => {
                    if metadata.iter().take(journaled).any(|&m| m == i) {
                        Fate::Kept
                    } else {
                        Fate::Dropped
                    }
                }
            })
            .collect();
        self.cut_with(&fates)
    }

    /// The disk after a power loss now, with the given fate for each pending operation
    /// (oldest first; missing ones are dropped).
    pub fn cut_with(&self, fates: &[Fate]) -> PowerCut {
        let disk = self.disk.borrow();
        let mut nodes = disk.durable.clone();
        for (i, op) in disk.pending.iter().enumerate() {
            op.apply(&mut nodes, fates.get(i).copied().unwrap_or(Fate::Dropped));
        }
        PowerCut::of(nodes)
    }

    /// Every file on the disk now, by path, sorted: what tests inspect.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let disk = self.disk.borrow();
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), 0)];
        while let Some((path, ino)) = stack.pop() {
            match disk.current.get(ino) {
                Some(Node::File(data)) => out.push((path, data.clone())),
                Some(Node::Dir(names)) => {
                    for (name, child) in names {
                        let child_path = match path.as_str() {
                            "" => name.clone(),
                            _ => format!("{path}/{name}"),
                        };
                        stack.push((child_path, *child));
                    }
                }
                None => {}
            }
        }
        out.sort();
        out
    }
}

/// A directory on a [`PowerCut`] disk.
#[derive(Debug, Clone)]
pub struct PowerCutDir {
    disk: Rc<RefCell<Disk>>,
    base: String,
}

/// The error of every call once the power is off.
fn power_off() -> io::Error {
    io::Error::other("the power is off")
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

impl Disk {
    fn check_power(&self) -> io::Result<()> {
        match self.power_off_after {
            Some(limit) if self.changes >= limit => Err(power_off()),
            _ => Ok(()),
        }
    }

    /// Counts a change about to be made, refusing it if the power is off.
    fn change(&mut self) -> io::Result<()> {
        self.check_power()?;
        self.changes += 1;
        Ok(())
    }

    /// The inode at `path` in the volatile view.
    fn lookup(&self, path: &str) -> Option<Ino> {
        let mut ino = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match self.current.get(ino) {
                Some(Node::Dir(names)) => ino = *names.get(part)?,
                _ => return None,
            }
        }
        Some(ino)
    }

    /// The parent directory of `path` and the last name in it.
    fn parent<'p>(&self, path: &'p str) -> io::Result<(Ino, &'p str)> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        match self.lookup(dir) {
            Some(ino) if matches!(self.current.get(ino), Some(Node::Dir(_))) => Ok((ino, name)),
            _ => Err(not_found(dir)),
        }
    }

    fn file(&self, ino: Ino) -> io::Result<&Vec<u8>> {
        match self.current.get(ino) {
            Some(Node::File(data)) => Ok(data),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            )),
        }
    }

    /// Records `op` as pending and applies it to the volatile view.
    fn record(&mut self, op: Op) {
        op.apply(&mut self.current, Fate::Kept);
        self.pending.push(op);
    }

    /// A new node, linked nowhere yet.
    fn allocate(&mut self, node: Node) -> Ino {
        let empty = match node {
            Node::File(_) => Node::File(Vec::new()),
            Node::Dir(_) => Node::Dir(BTreeMap::new()),
        };
        self.current.push(node);
        self.durable.push(empty);
        self.current.len() - 1
    }

    fn create_file(&mut self, path: &str) -> io::Result<Ino> {
        let (dir, name) = self.parent(path)?;
        let ino = self.allocate(Node::File(Vec::new()));
        self.record(Op::Link {
            dir,
            name: name.to_owned(),
            ino,
        });
        Ok(ino)
    }

    fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file(ino)?;
        self.change()?;
        self.record(Op::Write {
            ino,
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    /// Makes the pending operations that `durable` selects durable, in order.
    fn make_durable(&mut self, durable: impl Fn(&Op) -> bool) {
        let (now, later): (Vec<Op>, Vec<Op>) = self.pending.drain(..).partition(durable);
        for op in &now {
            op.apply(&mut self.durable, Fate::Kept);
        }
        self.pending = later;
    }
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
        let (dir, name) = disk.parent(&path)?;
        disk.change()?;
        disk.record(Op::Unlink {
            dir,
            name: name.to_owned(),
        });
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
        let (dir, name) = disk.parent(&path)?;
        disk.change()?;
        disk.record(Op::Unlink {
            dir,
            name: name.to_owned(),
        });
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

/// splitmix64: small, seeded, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.bits() % n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_synced_data_under_a_durable_name_survives() {
        let disk = PowerCut::new();
        let dir = disk.dir("");
        dir.write_new("a", b"synced", true).unwrap();
        dir.sync("").unwrap();
        dir.write_new("b", b"data synced, name not", true).unwrap();
        let file = dir.open_file("a", false).unwrap().unwrap();
        dir.write_at(&file, 0, b"SYNCED").unwrap();
        let after = disk.cut_with(&[]);
        assert_eq!(after.files(), vec![("a".to_owned(), b"synced".to_vec())]);
        let all_kept = disk.cut_with(&[Fate::Kept; 8]);
        assert_eq!(
            all_kept.files(),
            vec![
                ("a".to_owned(), b"SYNCED".to_vec()),
                ("b".to_owned(), b"data synced, name not".to_vec())
            ]
        );
    }

    #[test]
    fn a_directory_that_was_never_linked_durably_takes_its_files_with_it() {
        let disk = PowerCut::new();
        let root = disk.dir("");
        root.create_dir("store").unwrap();
        let store = disk.dir("store");
        store.write_new("f", b"x", true).unwrap();
        store.sync("").unwrap();
        assert_eq!(disk.cut_with(&[]).files(), vec![]);
        root.sync("").unwrap();
        assert_eq!(
            disk.cut_with(&[]).files(),
            vec![("store/f".to_owned(), b"x".to_vec())]
        );
    }

    #[test]
    fn torn_writes_mix_new_old_and_zeroed_sectors() {
        let disk = PowerCut::new();
        let dir = disk.dir("");
        dir.write_new("f", &[1; 3 * SECTOR], true).unwrap();
        dir.sync("").unwrap();
        let file = dir.open_file("f", false).unwrap().unwrap();
        dir.write_at(&file, 0, &[9; 3 * SECTOR]).unwrap();
        // Sector 0 new, 1 old, 2 zeroed.
        let torn = disk.cut_with(&[Fate::Torn(0b10_01_00)]);
        let (_, data) = torn.files().pop().unwrap();
        assert_eq!(&data[..SECTOR], &[9; SECTOR][..]);
        assert_eq!(&data[SECTOR..2 * SECTOR], &[1; SECTOR][..]);
        assert_eq!(&data[2 * SECTOR..], &[0; SECTOR][..]);
    }

    #[test]
    fn renames_are_atomic_and_durable_with_their_directory() {
        let disk = PowerCut::new();
        let dir = disk.dir("");
        dir.write_new("t", b"new", true).unwrap();
        dir.rename("t", "f").unwrap();
        assert_eq!(disk.pending(), vec![Pending::Name, Pending::Name]);
        // The create kept, the rename dropped: the temporary name survives.
        let half = disk.cut_with(&[Fate::Kept, Fate::Dropped]);
        assert_eq!(half.files(), vec![("t".to_owned(), b"new".to_vec())]);
        dir.sync("").unwrap();
        assert_eq!(
            disk.cut_with(&[]).files(),
            vec![("f".to_owned(), b"new".to_vec())]
        );
    }

    #[test]
    fn every_call_fails_once_the_power_is_off_and_cuts_are_reproducible() {
        let disk = PowerCut::new();
        let dir = disk.dir("");
        disk.power_off_after(2);
        dir.write_new("a", b"1", false).unwrap();
        assert!(disk.is_off());
        assert!(dir.read("a", 10).is_err());
        assert!(dir.write_new("b", b"2", false).is_err());
        for model in [Model::Posix, Model::Ordered] {
            assert_eq!(disk.cut(model, 7).files(), disk.cut(model, 7).files());
        }
    }
}
