//! What the version ledger knows while the store is open: the latest version or removal
//! of each session the index does not hold, the floor below which every version was
//! spent, and the rule that refuses an older copy ([`LedgerState`]). Its bytes are
//! `seal::ledger`'s, its files `backend::ledger`'s (`LedgerFiles`).

use std::collections::HashMap;

use crate::directory_store::index::Index;
use crate::seal::ledger::{Change, Event};

/// What the ledger says of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Known {
    /// Its latest version, or the sequence number of its removal.
    pub(super) seq: u64,
    /// Whether that was a removal.
    pub(super) removed: bool,
}

impl Known {
    /// Version `seq` was written.
    pub(super) fn written(seq: u64) -> Self {
        Known {
            seq,
            removed: false,
        }
    }

    /// The session was removed at sequence `seq`.
    pub(super) fn removed(seq: u64) -> Self {
        Known { seq, removed: true }
    }
}

/// The ledger's state while the store is open.
#[derive(Debug)]
pub(in crate::directory_store) struct LedgerState {
    /// The generation the metadata names.
    pub(super) generation: u64,
    /// Where frame 0 is.
    pub(super) frames_at: u64,
    /// The index of the next frame.
    pub(super) frames: u64,
    /// Every version below this was spent before the snapshot: a version at or below it
    /// of a session the ledger does not know was removed.
    pub(super) floor: u64,
    /// What the ledger says of the sessions the index does not hold: removals, sessions
    /// under a missing key, and (at open, until they are indexed) every session. The
    /// index holds the latest version of the rest.
    pub(super) known: HashMap<String, Known>,
    /// The highest sequence number the ledger holds.
    pub(super) max_seq: u64,
    /// Frames that failed to open before the last good one: damage, not a torn append.
    pub(super) damaged: u64,
    /// A frame could not be written: the next change starts a new generation, which
    /// records what the frame did not.
    pub(super) stale: bool,
}

impl LedgerState {
    /// Why version `seq` of session `id` is not to be served, if it is not: an older
    /// version than the ledger knows, or one of a session removed since.
    pub(in crate::directory_store) fn refuses(&self, id: &str, seq: u64) -> Option<String> {
        match self.known.get(id) {
            Some(known) if seq < known.seq && known.removed => Some(format!(
                "version {seq} of a session removed at sequence {}: a removed session was put back",
                known.seq
            )),
            Some(known) if seq < known.seq => Some(format!(
                "version {seq}, older than version {} the ledger holds: an older copy was put back",
                known.seq
            )),
            None if seq <= self.floor => Some(format!(
                "version {seq} of a session the ledger does not hold (it holds every session \
                 written up to sequence {}): a removed session was put back",
                self.floor
            )),
            _ => None,
        }
    }

    /// Keeps version `seq` of `id`, which the index no longer holds (unless it knows of a
    /// later change).
    pub(in crate::directory_store) fn keep(&mut self, id: &str, seq: u64) {
        self.learn(id, Known::written(seq));
    }

    /// Takes in `latest` for `id`, unless what it knows already is as recent.
    fn learn(&mut self, id: &str, latest: Known) {
        match self.known.get_mut(id) {
            Some(known) if known.seq >= latest.seq => {}
            Some(known) => *known = latest,
            None => drop(self.known.insert(id.to_owned(), latest)),
        }
    }

    /// Forgets what the index now holds (its versions are the latest).
    pub(in crate::directory_store) fn settle(&mut self, index: &Index) {
        self.known
            .retain(|id, known| known.removed || index.entry(id).is_none());
    }

    /// Takes the index's versions back before the index is rebuilt from the backend (a
    /// verification), so every session is read against them.
    pub(in crate::directory_store) fn remember(&mut self, index: &Index) {
        for (id, seq) in index.versions() {
            self.learn(&id, Known::written(seq));
        }
    }

    /// The highest sequence number spent, as far as the ledger knows.
    pub(in crate::directory_store) fn max_seq(&self) -> u64 {
        self.max_seq.max(self.floor)
    }
}

impl LedgerState {
    /// Takes in one frame read at open. A relaxed change may have been undone by a power
    /// loss that kept its frame, so it only raises the sequence number.
    pub(super) fn apply(&mut self, change: Change) {
        self.max_seq = self.max_seq.max(change.seq);
        if change.relaxed {
            return;
        }
        let known = match change.event {
            Event::Written => Known::written(change.seq),
            Event::Removed => Known::removed(change.seq),
        };
        self.learn(&change.id, known);
    }

    /// Whether frames were damaged (so the next snapshot quarantines this generation).
    pub(in crate::directory_store) fn is_damaged(&self) -> bool {
        self.damaged > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> LedgerState {
        LedgerState {
            generation: 1,
            frames_at: 0,
            frames: 0,
            floor: 10,
            known: HashMap::from([
                ("a".to_owned(), Known::written(5)),
                ("gone".to_owned(), Known::removed(12)),
            ]),
            max_seq: 12,
            damaged: 0,
            stale: false,
        }
    }

    #[test]
    fn older_versions_and_removed_sessions_are_refused() {
        let ledger = ledger();
        assert_eq!(ledger.refuses("a", 5), None);
        assert_eq!(ledger.refuses("a", 6), None, "newer: its frame was lost");
        assert!(ledger.refuses("a", 4).unwrap().contains("older copy"));
        assert!(ledger.refuses("gone", 11).unwrap().contains("removed"));
        assert_eq!(
            ledger.refuses("gone", 13),
            None,
            "written again after the removal"
        );
        assert!(ledger.refuses("never", 10).unwrap().contains("removed"));
        assert_eq!(
            ledger.refuses("never", 11),
            None,
            "written after the snapshot"
        );
    }

    #[test]
    fn relaxed_frames_only_raise_the_sequence_number() {
        let mut ledger = ledger();
        ledger.apply(Change {
            event: Event::Written,
            seq: 20,
            relaxed: true,
            id: "a".into(),
        });
        assert_eq!(ledger.refuses("a", 5), None);
        assert_eq!(ledger.max_seq(), 20);
        ledger.apply(Change {
            event: Event::Written,
            seq: 21,
            relaxed: false,
            id: "a".into(),
        });
        assert!(ledger.refuses("a", 20).is_some());
        // A stale frame (a lower sequence number) does not lower what is known.
        ledger.apply(Change {
            event: Event::Removed,
            seq: 7,
            relaxed: false,
            id: "a".into(),
        });
        assert!(ledger.refuses("a", 20).is_some());
    }
}
