//! The simulated disk's state: nodes as reads see them and as a cut keeps them for sure,
//! the pending operations, and the power switch.

use std::collections::BTreeMap;
use std::io;

use super::{Fate, Pending, SECTOR};

pub(super) type Ino = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<String, Ino>),
}

#[derive(Debug, Clone)]
pub(super) enum Op {
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
    pub(super) fn pending(&self) -> Pending {
        match self {
            Op::Write { bytes, .. } => Pending::Write { len: bytes.len() },
            Op::Truncate { .. } => Pending::Truncate,
            _ => Pending::Name,
        }
    }

    pub(super) fn is_data_of(&self, file: Ino) -> bool {
        matches!(self, Op::Write { ino, .. } | Op::Truncate { ino, .. } if *ino == file)
    }

    pub(super) fn is_name_in(&self, directory: Ino) -> bool {
        match self {
            Op::Link { dir, .. } | Op::Unlink { dir, .. } => *dir == directory,
            Op::Rename { to_dir, .. } => *to_dir == directory,
            _ => false,
        }
    }

    /// Applies the operation to `nodes`; `fate` says how much of a write lands.
    pub(super) fn apply(&self, nodes: &mut [Node], fate: Fate) {
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
pub(super) struct Disk {
    /// What reads see.
    pub(super) current: Vec<Node>,
    /// What a cut keeps for sure; node 0 is the root in both.
    pub(super) durable: Vec<Node>,
    /// Unsynced operations, oldest first.
    pub(super) pending: Vec<Op>,
    /// Changes made so far (writes, truncates, names, syncs).
    pub(super) changes: u64,
    /// After this many changes every call fails: the power is off.
    pub(super) power_off_after: Option<u64>,
}

/// The error of every call once the power is off.
pub(super) fn power_off() -> io::Error {
    io::Error::other("the power is off")
}

pub(super) fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

impl Disk {
    pub(super) fn check_power(&self) -> io::Result<()> {
        match self.power_off_after {
            Some(limit) if self.changes >= limit => Err(power_off()),
            _ => Ok(()),
        }
    }

    /// Counts a change about to be made, refusing it if the power is off.
    pub(super) fn change(&mut self) -> io::Result<()> {
        self.check_power()?;
        self.changes += 1;
        Ok(())
    }

    /// The inode at `path` in the volatile view.
    pub(super) fn lookup(&self, path: &str) -> Option<Ino> {
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
    pub(super) fn parent<'p>(&self, path: &'p str) -> io::Result<(Ino, &'p str)> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        match self.lookup(dir) {
            Some(ino) if matches!(self.current.get(ino), Some(Node::Dir(_))) => Ok((ino, name)),
            _ => Err(not_found(dir)),
        }
    }

    pub(super) fn file(&self, ino: Ino) -> io::Result<&Vec<u8>> {
        match self.current.get(ino) {
            Some(Node::File(data)) => Ok(data),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            )),
        }
    }

    /// Records `op` as pending and applies it to the volatile view.
    pub(super) fn record(&mut self, op: Op) {
        op.apply(&mut self.current, Fate::Kept);
        self.pending.push(op);
    }

    /// A new node, linked nowhere yet.
    pub(super) fn allocate(&mut self, node: Node) -> Ino {
        let empty = match node {
            Node::File(_) => Node::File(Vec::new()),
            Node::Dir(_) => Node::Dir(BTreeMap::new()),
        };
        self.current.push(node);
        self.durable.push(empty);
        self.current.len() - 1
    }

    pub(super) fn create_file(&mut self, path: &str) -> io::Result<Ino> {
        let (dir, name) = self.parent(path)?;
        let ino = self.allocate(Node::File(Vec::new()));
        self.record(Op::Link {
            dir,
            name: name.to_owned(),
            ino,
        });
        Ok(ino)
    }

    /// Removes the name `path` (counted as a change).
    pub(super) fn unlink(&mut self, path: &str) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        self.change()?;
        self.record(Op::Unlink {
            dir,
            name: name.to_owned(),
        });
        Ok(())
    }

    pub(super) fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> io::Result<()> {
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
    pub(super) fn make_durable(&mut self, durable: impl Fn(&Op) -> bool) {
        let (now, later): (Vec<Op>, Vec<Op>) = self.pending.drain(..).partition(durable);
        for op in &now {
            op.apply(&mut self.durable, Fate::Kept);
        }
        self.pending = later;
    }
}
