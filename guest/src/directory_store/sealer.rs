//! The store's keys lent to a backend to seal its hints' index blocks
//! ([`crate::seal::index_block`]): each summary and stamp of a closing segment is opened
//! and the lot sealed again as one block under the current key.

use crate::backend::{IndexSealer, SealedItem};
use crate::keyring::Keyring;
use crate::seal::format::{self, Kind};
use crate::seal::index_block::{self, Item, ItemKind};

/// A copy of the store's key ring (keys zeroed when it is dropped).
pub(super) struct BlockSealer {
    keyring: Keyring,
}

impl BlockSealer {
    pub(super) fn new(keyring: Keyring) -> Self {
        BlockSealer { keyring }
    }
}

impl IndexSealer for BlockSealer {
    fn seal(&self, segment: u64, segment_len: u64, items: &[SealedItem<'_>]) -> Option<Vec<u8>> {
        let keyring = &self.keyring;
        let mut opened = Vec::with_capacity(items.len());
        for item in items {
            let kind = if item.stamp {
                Kind::Access
            } else {
                Kind::Summary
            };
            // A summary is sealed under the session's own key; so is a stamp.
            let record = format::decode(item.sealed, kind, &keyring.scope, item.id, |k| {
                keyring.key(k)
            })
            .ok()?;
            opened.push((item, record.header, record.plaintext));
        }
        let items: Vec<Item<'_>> = opened
            .iter()
            .map(|(item, header, plaintext)| Item {
                kind: if item.stamp {
                    ItemKind::Stamp
                } else {
                    ItemKind::Summary
                },
                key_id: header.key_id,
                seq: item.seq,
                version: header.seq,
                id: item.id,
                body: plaintext,
            })
            .collect();
        let key = keyring.current_key().ok()?;
        index_block::seal(
            &items,
            segment,
            segment_len,
            keyring.current,
            key,
            &keyring.scope,
        )
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::Durability;
    use crate::backend::log::Log;
    use crate::directory_store::tests::{access, session};
    use crate::directory_store::{Config, DirectoryStore, ManualClock};
    use crate::document::patch::SessionPatch;
    use crate::fs::StdDir;
    use crate::keyring::Secret;
    use crate::seal::index_block::{self, ItemKind};
    use std::path::Path;

    type Small = DirectoryStore<Log<StdDir>, ManualClock>;

    /// A `log` store whose segments close every KiB (two sessions or so), so that
    /// most of its records are described by hints.
    fn small(path: &Path, now: u64, idle: Option<u64>) -> Small {
        let log =
            Log::open_with_segment_limit(StdDir::new(path), Durability::Durable, 1 << 10).unwrap();
        let mut config = Config::new(Secret::RawKey(vec![5; 32]));
        config.idle_timeout = idle;
        DirectoryStore::open(log, ManualClock::new(now), config).unwrap()
    }

    fn hints(path: &Path) -> Vec<std::path::PathBuf> {
        let mut hints: Vec<_> = std::fs::read_dir(path.join("log"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "hint"))
            .collect();
        hints.sort();
        hints
    }

    /// Rewrites `hint` with its CRC made good again after `edit`, so that only the
    /// block's own seal can refuse it.
    fn edit_hint(hint: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = std::fs::read(hint).unwrap();
        edit(&mut bytes);
        let end = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(hint, bytes).unwrap();
    }

    fn fill(store: &mut Small, n: usize) {
        for i in 0..n {
            store
                .create(&session(
                    &format!("s{i:02}"),
                    &format!("u{}", i % 3),
                    10_000,
                ))
                .unwrap();
        }
    }

    #[test]
    fn closed_segments_get_sealed_index_blocks_that_open_rebuilds_the_index_from() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = small(tmp.path(), 100, None);
        fill(&mut store, 30);
        // Records the blocks no longer describe as latest: a rewrite, a stamp, a removal.
        store.update("s01", SessionPatch::default()).unwrap();
        store.touch("s02", None).unwrap();
        store.delete("s03").unwrap();
        drop(store);
        let hints = hints(tmp.path());
        assert!(hints.len() >= 5, "{} hints", hints.len());
        for hint in &hints {
            assert_eq!(std::fs::read(hint).unwrap()[4], 2, "{}", hint.display());
        }
        let mut store = small(tmp.path(), 100, None);
        assert_eq!(store.opened().live, 29);
        assert_eq!(store.opened().newly_quarantined, Vec::<String>::new());
        assert_eq!(store.count(), 29);
        assert_eq!(store.user_sessions("u1").unwrap().len(), 10);
        assert_eq!(access(&store.get("s02").unwrap().unwrap()), (100, 1));
        assert_eq!(store.get("s03").unwrap(), None);
        // The store writes on from where the blocks left it.
        store.create(&session("new", "u0", 10_000)).unwrap();
        assert_eq!(store.count(), 30);
    }

    #[test]
    fn a_block_leaves_out_the_records_superseded_before_its_segment_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let segments = |path: &Path| {
            let log = Log::open_with_segment_limit(StdDir::new(path), Durability::Durable, 4 << 10);
            let config = Config::new(Secret::RawKey(vec![5; 32]));
            DirectoryStore::open(log.unwrap(), ManualClock::new(100), config).unwrap()
        };
        let mut store = segments(tmp.path());
        // Two puts and four stamps of one id, all in the first segment; then enough
        // sessions to close it.
        store.create(&session("hot", "u0", 10_000)).unwrap();
        for _ in 0..4 {
            store.touch("hot", None).unwrap();
        }
        store.update("hot", SessionPatch::default()).unwrap();
        store.touch("hot", None).unwrap();
        fill(&mut store, 12);
        drop(store);
        let mut store = segments(tmp.path());
        let keyring = &store.keyring;
        let (mut summaries, mut stamps) = (0, 0);
        for hint in hints(tmp.path()) {
            let bytes = std::fs::read(&hint).unwrap();
            let len = u32::from_le_bytes(bytes[17..21].try_into().unwrap()) as usize;
            let segment: u64 = hint.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let segment_len = std::fs::metadata(hint.with_extension("seg")).unwrap().len();
            let block = index_block::open(
                &bytes[21..21 + len],
                segment,
                segment_len,
                &keyring.scope,
                |k| keyring.key(k),
            )
            .unwrap();
            for item in block.items().unwrap().iter().filter(|i| i.id == "hot") {
                match item.kind {
                    ItemKind::Summary => summaries += 1,
                    ItemKind::Stamp => stamps += 1,
                }
            }
        }
        assert_eq!((summaries, stamps), (1, 1), "only the latest put and stamp");
        assert_eq!(access(&store.get("hot").unwrap().unwrap()), (100, 5));
    }

    #[test]
    fn the_blocks_of_segments_with_nothing_live_are_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = small(tmp.path(), 100, None);
        fill(&mut store, 12);
        // Every session written again: the first segments hold nothing live any more.
        let patch = SessionPatch {
            session_token: Some("rewritten".into()),
            ..SessionPatch::default()
        };
        for i in 0..12 {
            store.update(&format!("s{i:02}"), patch.clone()).unwrap();
        }
        drop(store);
        let mut log =
            Log::open_with_segment_limit(StdDir::new(tmp.path()), Durability::Durable, 1 << 10)
                .unwrap();
        let blocks = crate::backend::Backend::take_summaries(&mut log)
            .unwrap()
            .blocks;
        drop(log);
        let hints = hints(tmp.path()).len();
        assert!(blocks.len() < hints, "{} of {hints} blocks", blocks.len());
        let mut store = small(tmp.path(), 100, None);
        assert_eq!(store.count(), 12);
        for i in 0..12 {
            let session = store.get(&format!("s{i:02}")).unwrap().unwrap();
            assert_eq!(session.members()["sessionToken"], "rewritten");
        }
    }

    #[test]
    fn a_block_that_does_not_open_costs_a_read_of_each_session_not_the_sessions() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = small(tmp.path(), 100, None);
        fill(&mut store, 30);
        drop(store);
        let hints = hints(tmp.path());
        // A flipped bit inside the first block; the second block moved into the third
        // hint (authentic, but for another segment).
        edit_hint(&hints[0], |bytes| bytes[60] ^= 1);
        let block = |bytes: &[u8]| {
            let len = u32::from_le_bytes(bytes[17..21].try_into().unwrap()) as usize;
            bytes[21..21 + len].to_vec()
        };
        let second = block(&std::fs::read(&hints[1]).unwrap());
        edit_hint(&hints[2], |bytes| {
            let len = u32::from_le_bytes(bytes[17..21].try_into().unwrap()) as usize;
            let mut rebuilt = bytes[..17].to_vec();
            rebuilt.extend_from_slice(&(second.len() as u32).to_le_bytes());
            rebuilt.extend_from_slice(&second);
            rebuilt.extend_from_slice(&bytes[21 + len..]);
            *bytes = rebuilt;
        });
        let mut store = small(tmp.path(), 100, None);
        assert_eq!(store.opened().live, 30);
        assert_eq!(store.count(), 30);
        for i in 0..30 {
            assert!(store.get(&format!("s{i:02}")).unwrap().is_some(), "s{i:02}");
        }
    }

    #[test]
    fn a_stamp_older_than_its_moved_session_still_sets_its_idle_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let idle = Some(1_000);
        let mut store = small(tmp.path(), 100, idle);
        fill(&mut store, 12);
        // s00's stamp lands in a later segment than its put; then everything before it
        // dies, so compaction moves the put past the stamp.
        store.lifetime.clock.set(900);
        store.touch("s00", None).unwrap();
        for i in 1..12 {
            store.delete(&format!("s{i:02}")).unwrap();
        }
        fill(&mut store, 0);
        store.compact(u64::MAX).unwrap();
        for i in 20..40 {
            store
                .create(&session(&format!("s{i:02}"), "u9", 10_000))
                .unwrap();
        }
        drop(store);
        // Idle since 900, not since 100: live at 1,500, expired at 1,900.
        let mut store = small(tmp.path(), 1_500, idle);
        assert_eq!(access(&store.get("s00").unwrap().unwrap()), (900, 1));
        drop(store);
        let mut store = small(tmp.path(), 1_900, idle);
        assert_eq!(store.get("s00").unwrap(), None);
    }
}
