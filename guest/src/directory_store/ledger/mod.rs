//! The version ledger: the latest version of every session, authenticated, so an older
//! copy of a session (or of a removed one) put back on disk is refused as `corrupted`
//! instead of served. A record alone cannot say whether it is the latest: the ledger
//! can, because it is written with every change and anchored by the metadata, which names
//! its generation under the MAC. Its bytes are `seal::ledger`'s, its files
//! `backend::ledger`'s (`LedgerFiles`); what the open store knows is `known.rs`'s
//! `LedgerState`.
//!
//! Each write and removal appends a frame once the change is on the backend (synced with
//! it when durable); every so many frames a new generation starts from a snapshot of the
//! index. What a power loss can legitimately undo is never held against the store: a
//! frame or snapshot of a `relaxed` store only raises the next sequence number.

mod known;

use std::collections::HashMap;

use known::Known;
pub(super) use known::LedgerState;

use super::{Clock, DirectoryStore};
use crate::backend::Backend;
use crate::backend::Durability;
use crate::backend::layout::{META_FILE, ledger_name};
use crate::error::StoreError;
use crate::seal::format::DecodeError;
use crate::seal::ledger::{self, Change, Event, FRAME_LEN, Snapshot};

/// A new generation starts once the frames outnumber the sessions and this.
const SNAPSHOT_MIN_FRAMES: u64 = 1024;
/// Frames read at a time at open.
const FRAMES_PER_READ: u64 = 4096;
/// The most frames open reads (or twice the sessions the snapshot lists, if more): a
/// larger ledger is damaged or hostile, and its tail is ignored (the file quarantined).
const MAX_FRAMES: u64 = 1 << 24;

impl<B: Backend, C: Clock> DirectoryStore<B, C> {
    /// Reads the ledger generation the metadata names. Missing, or with a damaged header
    /// or snapshot, it is `corrupted`: nothing else records which versions are current.
    pub(super) fn load_ledger(&mut self, generation: u64) -> Result<LedgerState, StoreError> {
        let name = ledger_name(generation);
        let corrupted = |why: String| StoreError::Corrupted(format!("{name}: {why}"));
        let mut io = self.backend.ledger();
        let len = io.len(generation)?.ok_or_else(|| {
            StoreError::Corrupted(format!(
                "{META_FILE} names the version ledger {name}, which is missing; restore it \
                 from the same backup as the rest of the store"
            ))
        })?;
        let fixed = io.read(generation, 0, ledger::HEADER_LEN)?;
        let header = ledger::header(&fixed).map_err(|e| corrupted(e.to_string()))?;
        if header.generation != generation {
            return Err(corrupted(format!(
                "it says it is generation {}",
                header.generation
            )));
        }
        let unsealed = |e: DecodeError| match e {
            DecodeError::MissingKey(key_id) => corrupted(format!(
                "sealed under key {key_id}, which this store does not hold"
            )),
            other => corrupted(other.to_string()),
        };
        let relaxed = header.relaxed;
        let mut ledger = LedgerState {
            generation,
            frames_at: 0,
            frames: 0,
            floor: if relaxed { 0 } else { header.floor },
            known: HashMap::new(),
            max_seq: header.floor,
            damaged: 0,
            stale: false,
        };
        // Block by block: each is at most MAX_BLOCK, checked before it is read.
        let mut at = ledger::HEADER_LEN as u64;
        let mut listed: u64 = 0;
        for block in 0..header.blocks {
            let cut = || corrupted(format!("{len} bytes, cut inside its snapshot"));
            let prefix = io.read(generation, at, ledger::BLOCK_PREFIX)?;
            if prefix.len() < ledger::BLOCK_PREFIX {
                return Err(cut());
            }
            let sealed_len = ledger::block_len(&prefix).map_err(unsealed)?;
            let start = at + 4;
            let end = start + (ledger::BLOCK_PREFIX - 4) as u64 + u64::from(sealed_len);
            if end > len {
                return Err(cut());
            }
            let bytes = io.read(generation, start, (end - start) as usize)?;
            let sessions = ledger::open_block(&fixed, block, &bytes, &self.keyring.scope, |k| {
                self.keyring.key(k)
            })
            .map_err(unsealed)?;
            for (id, seq) in sessions {
                listed += 1;
                ledger.max_seq = ledger.max_seq.max(seq);
                if !relaxed {
                    ledger.known.insert(id, Known::written(seq));
                }
            }
            at = end;
        }
        ledger.frames_at = at;
        // A legitimate ledger holds at most about one frame per session past its snapshot.
        let max_frames = MAX_FRAMES.max(2 * listed + SNAPSHOT_MIN_FRAMES);
        let stored = ((len - at) / FRAME_LEN as u64).min(max_frames);
        let mut failed = 0;
        let mut index = 0;
        while index < stored {
            let count = FRAMES_PER_READ.min(stored - index);
            let offset = at + index * FRAME_LEN as u64;
            // At most FRAMES_PER_READ frames: about 700 KiB.
            let chunk = io.read(generation, offset, (count as usize) * FRAME_LEN)?;
            for frame in chunk.chunks(FRAME_LEN) {
                let change =
                    ledger::open_frame(frame, &self.keyring.scope, generation, index, |k| {
                        self.keyring.key(k)
                    });
                index += 1;
                match change {
                    Some(change) => {
                        ledger.damaged += failed;
                        failed = 0;
                        ledger.frames = index;
                        ledger.apply(change);
                    }
                    None => failed += 1,
                }
            }
        }
        if (len - at) / FRAME_LEN as u64 > max_frames {
            ledger.damaged += 1;
        }
        Ok(ledger)
    }

    /// Starts the ledger of a store that has none (a new one, or one being upgraded):
    /// a snapshot of the index as generation 1, then the metadata naming it.
    pub(super) fn start_ledger(&mut self) -> Result<(), StoreError> {
        self.write_snapshot(1)?;
        Ok(())
    }

    /// Appends the frame of `event` of session `id` at sequence `seq`, once the change is
    /// on the backend; starts a new generation when the frames outgrow the sessions.
    pub(super) fn record(&mut self, event: Event, id: &str, seq: u64) -> Result<(), StoreError> {
        let Some(ledger) = self.ledger.as_mut() else {
            return Ok(());
        };
        match event {
            // The index holds it now.
            Event::Written => drop(ledger.known.remove(id)),
            Event::Removed => drop(ledger.known.insert(id.to_owned(), Known::removed(seq))),
        }
        let change = Change {
            event,
            seq,
            relaxed: self.backend.durability() != Durability::Durable,
            id: id.to_owned(),
        };
        let key = self.keyring.current_key()?;
        let (generation, index) = (ledger.generation, ledger.frames);
        let at = ledger.frames_at + index * FRAME_LEN as u64;
        let frame = ledger::seal_frame(
            &change,
            &self.keyring.scope,
            generation,
            index,
            self.keyring.current,
            key,
        )?;
        // Held: written by the flush, once the change it records is synced.
        let written = match self.held.as_mut() {
            Some(frames) => {
                frames.push((generation, at, frame));
                Ok(())
            }
            None => self.backend.ledger().write(generation, at, &frame),
        };
        // Its slot is spent either way: the frame may be on disk even if its sync failed,
        // and must not be overwritten by the next one. What it records is in memory; the
        // next snapshot writes it down.
        ledger.frames += 1;
        ledger.stale |= written.is_err();
        written?;
        let sessions = self.index.len() as u64 + self.missing_key.len() as u64;
        if ledger.frames >= sessions.max(SNAPSHOT_MIN_FRAMES) || ledger.stale {
            self.snapshot()?;
        }
        Ok(())
    }

    /// Marks the ledger's current generation as missing frames (they were not written):
    /// the next change starts a new generation from a snapshot.
    pub(super) fn ledger_gapped(&mut self) {
        if let Some(ledger) = self.ledger.as_mut() {
            ledger.stale = true;
        }
    }

    /// Starts a new generation of the ledger from a snapshot of the index, under the
    /// current key; the old generation is removed, or quarantined if it was damaged.
    pub(super) fn snapshot(&mut self) -> Result<(), StoreError> {
        let Some(ledger) = self.ledger.as_ref() else {
            return Ok(());
        };
        let (old, damaged) = (ledger.generation, ledger.damaged > 0);
        // A snapshot lists versions as on disk: held writes must be, first. Their frames
        // belong to the generation the snapshot ends: once it is written, they never are.
        if self.held.is_some() {
            self.backend.sync_held()?;
        }
        self.write_snapshot(old.saturating_add(1))?;
        if let Some(frames) = self.held.as_mut() {
            frames.clear();
        }
        self.backend.ledger().retire(old, damaged)
    }

    /// Writes ledger `generation` from the index and the metadata naming it. In a durable
    /// store every version it lists is already on disk; a relaxed store's snapshot is
    /// marked so, and is not held against the store at open (its versions may not be).
    fn write_snapshot(&mut self, generation: u64) -> Result<(), StoreError> {
        // The index's versions, and the latest the ledger knows of what the index does not
        // hold (a session under a missing key, one quarantined or gone): never a version
        // read from a header that did not authenticate.
        let mut sessions: Vec<(String, u64)> = self.index.versions();
        if let Some(ledger) = &self.ledger {
            sessions.extend(
                (ledger.known.iter())
                    .filter(|(id, known)| !known.removed && self.index.entry(id).is_none())
                    .map(|(id, known)| (id.clone(), known.seq)),
            );
        }
        // A removal recorded while its caller still indexes the id (a `clear` under way)
        // is the latest word on it: the floor stands for it from now on.
        if let Some(ledger) = &self.ledger {
            sessions.retain(|(id, seq)| {
                (ledger.known.get(id)).is_none_or(|known| !(known.removed && known.seq > *seq))
            });
        }
        let snapshot = Snapshot {
            floor: self.next_seq.saturating_sub(1),
            relaxed: self.backend.durability() != Durability::Durable,
            sessions,
        };
        let key = self.keyring.current_key()?;
        let bytes = ledger::seal_snapshot(
            &snapshot,
            &self.keyring.scope,
            generation,
            self.keyring.current,
            key,
        )?;
        self.backend.ledger().create(generation, &bytes)?;
        let mut meta = self.meta.clone();
        meta.ledger = Some(generation);
        self.backend.write_meta(&meta.sealed(&self.keyring)?)?;
        self.meta = meta;
        // The snapshot is what is known now; its floor stands for the removals, and the
        // index holds what it lists but sessions under a missing key.
        let known = (snapshot.sessions.into_iter())
            .filter(|(id, _)| self.index.entry(id).is_none())
            .map(|(id, seq)| (id, Known::written(seq)))
            .collect();
        self.ledger = Some(LedgerState {
            generation,
            frames_at: bytes.len() as u64,
            frames: 0,
            floor: snapshot.floor,
            known,
            max_seq: snapshot.floor,
            damaged: 0,
            stale: false,
        });
        Ok(())
    }

    /// Removes the ledger files the metadata does not name: a generation an interrupted
    /// snapshot left, before or after its metadata write.
    pub(super) fn remove_other_ledgers(&mut self, keep: u64) -> Result<(), StoreError> {
        let mut io = self.backend.ledger();
        for generation in io.generations()? {
            if generation != keep {
                io.retire(generation, false)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::layout::ledger_name;
    use crate::directory_store::tests::{open, session};
    use crate::document::patch::SessionPatch;
    use crate::error::StoreError;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn generations_roll_over_and_an_older_copy_is_still_refused_after_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        store.create(&session("b", "u", 900)).unwrap();
        let old = std::fs::read(tmp.path().join("a.svs")).unwrap();
        store.update("a", SessionPatch::default()).unwrap();
        assert!(tmp.path().join(ledger_name(1)).exists());
        for _ in 0..SNAPSHOT_MIN_FRAMES {
            store.update("b", SessionPatch::default()).unwrap();
        }
        assert!(store.delete("b").unwrap());
        assert_eq!(
            store.meta.ledger,
            Some(2),
            "a new generation once frames outgrew 1024"
        );
        assert!(
            !tmp.path().join(ledger_name(1)).exists(),
            "the old one is removed"
        );
        drop(store);
        std::fs::write(tmp.path().join("a.svs"), &old).unwrap();
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(store.opened().newly_quarantined, vec!["a".to_owned()]);
        assert_eq!(store.get("a").unwrap(), None);
        // What the rolled-over snapshot holds is what the next one starts from.
        assert!(store.ledger.as_ref().is_some_and(|l| l.max_seq() >= 1027));
        assert_eq!(
            store.next_seq,
            store.ledger.as_ref().map_or(0, LedgerState::max_seq) + 1
        );
    }

    #[test]
    fn a_snapshot_taken_during_a_clear_does_not_list_what_the_clear_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        for i in 0..1100 {
            store
                .create(&session(&format!("s{i:04}"), "u", 900))
                .unwrap();
        }
        let old = std::fs::read(tmp.path().join("s0000.svs")).unwrap();
        let generation = store.meta.ledger;
        assert_eq!(store.clear().unwrap(), 1100);
        assert_ne!(
            store.meta.ledger, generation,
            "a snapshot was taken during the clear"
        );
        drop(store);
        std::fs::write(tmp.path().join("s0000.svs"), &old).unwrap();
        let store = open(tmp.path(), &now).unwrap();
        assert_eq!(store.opened().newly_quarantined, vec!["s0000".to_owned()]);
        assert_eq!(store.count(), 0);
    }

    /// A record under a key the store lacks carries a version nobody has authenticated:
    /// it must not move the sequence number (else one planted at u64::MAX would make
    /// every later version equal, and the check blind).
    #[test]
    fn an_unauthenticated_version_does_not_move_the_sequence_number() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        let old = std::fs::read(tmp.path().join("a.svs")).unwrap();
        drop(store);
        let mut planted = old.clone();
        planted[6..10].copy_from_slice(&999u32.to_le_bytes());
        planted[10..18].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(tmp.path().join("zz.svs"), &planted).unwrap();
        let mut store = open(tmp.path(), &now).unwrap();
        assert_eq!(store.opened().missing_key, 1);
        assert!(store.next_seq < 10, "{}", store.next_seq);
        store.update("a", SessionPatch::default()).unwrap();
        drop(store);
        std::fs::write(tmp.path().join("a.svs"), &old).unwrap();
        let store = open(tmp.path(), &now).unwrap();
        assert_eq!(store.opened().newly_quarantined, vec!["a".to_owned()]);
    }

    /// The index forgets a session whose file is damaged (quarantined) or gone; the ledger
    /// must not: an older copy put back afterwards, in the same process, is refused.
    #[test]
    fn a_session_the_index_dropped_is_still_checked_against_its_version() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Rc::new(Cell::new(100));
        let mut store = open(tmp.path(), &now).unwrap();
        store.create(&session("a", "u", 900)).unwrap();
        let old = std::fs::read(tmp.path().join("a.svs")).unwrap();
        store.update("a", SessionPatch::default()).unwrap();
        std::fs::write(tmp.path().join("a.svs"), b"garbage").unwrap();
        assert!(matches!(store.get("a"), Err(StoreError::Corrupted(_))));
        std::fs::write(tmp.path().join("a.svs"), &old).unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.newly_quarantined, vec!["a".to_owned()]);
        // And across a snapshot and a reopen.
        std::fs::write(tmp.path().join("a.svs"), &old).unwrap();
        store.snapshot().unwrap();
        drop(store);
        let store = open(tmp.path(), &now).unwrap();
        assert_eq!(store.opened().newly_quarantined, vec!["a".to_owned()]);
    }
}
