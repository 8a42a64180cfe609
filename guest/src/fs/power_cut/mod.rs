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
use std::rc::Rc;

mod dir;
mod disk;
mod rng;

pub use dir::PowerCutDir;
pub use rng::Rng;

use disk::{Disk, Node, Op};

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

    /// The directory at `path` on this disk (`""` is the root), as a
    /// [`Dir`](crate::fs::Dir). It need not exist yet: calls resolve the path each time.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Dir;

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
