//! A bucket in memory: the [`Bucket`] contract without a server, for the store's tests
//! (two clones are two hosts on one server). A test double: only in test builds and with
//! the `testing` feature.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::bucket::{Bucket, Change, Entry, Member, Page, Watched, moved_out};
use super::layout;
use super::ledger::{LedgerPage, stream_id};
use crate::error::StoreError;

/// What a [`MemoryBucket`] holds: values with their expiry, and the indexes.
#[derive(Debug, Default)]
pub struct Memory {
    /// Every key's value and the expiry its last change set.
    pub values: BTreeMap<String, (Vec<u8>, Option<u64>)>,
    /// Every index: member to score.
    pub indexes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The ledger stream: stream id (`<n>-0`) and frame.
    pub ledger: Vec<(u64, Vec<u8>)>,
    /// The last stream id given out.
    pub ledger_last: u64,
    /// The highest stream id taken out of the stream.
    pub ledger_deleted: u64,
}

impl Memory {
    fn ledger_page(&self, after: &str, limit: u32) -> LedgerPage {
        let after = stream_id(after);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let frames: Vec<&(u64, Vec<u8>)> = (self.ledger.iter())
            .filter(|(id, _)| (*id, 0) > after)
            .take(limit)
            .collect();
        LedgerPage {
            last: frames
                .last()
                .map_or(String::new(), |(id, _)| format!("{id}-0")),
            frames: frames.into_iter().map(|(_, frame)| frame.clone()).collect(),
            max_deleted: format!("{}-0", self.ledger_deleted),
            last_generated: format!("{}-0", self.ledger_last),
        }
    }
}

/// A bucket in memory. Clones share their contents, as two hosts share one server.
#[derive(Debug, Clone, Default)]
pub struct MemoryBucket {
    memory: Rc<RefCell<Memory>>,
}

impl MemoryBucket {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `edit` on the contents, as another writer (or an attacker) would.
    pub fn edit<T>(&self, edit: impl FnOnce(&mut Memory) -> T) -> T {
        edit(&mut self.memory.borrow_mut())
    }
}

/// The key and the value a [`MemoryBucket`] compare-and-swap read.
#[derive(Debug)]
pub struct MemoryCas {
    key: String,
    read: Option<Vec<u8>>,
}

impl Bucket for MemoryBucket {
    type Cas = MemoryCas;

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.memory.borrow().values.get(key).map(|v| v.0.clone()))
    }

    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    fn watch(&mut self, key: &str) -> Result<(MemoryCas, Option<Vec<u8>>), StoreError> {
        let read = self.get(key)?;
        let cas = MemoryCas {
            key: key.to_owned(),
            read: read.clone(),
        };
        Ok((cas, read))
    }

    fn commit(&mut self, cas: MemoryCas, change: Change) -> Result<bool, StoreError> {
        let mut memory = self.memory.borrow_mut();
        if memory.values.contains_key(layout::FENCE) {
            return Err(moved_out());
        }
        if memory.values.get(&cas.key).map(|v| &v.0) != cas.read.as_ref() {
            return Ok(false);
        }
        match change.value {
            Some(value) => {
                memory.values.insert(cas.key, (value, change.expires_at));
            }
            None => {
                memory.values.remove(&cas.key);
            }
        }
        for entry in change.add {
            let index = memory.indexes.entry(entry.index).or_default();
            index.insert(entry.member, entry.score);
        }
        for member in change.remove {
            if let Some(index) = memory.indexes.get_mut(&member.index) {
                index.remove(&member.member);
            }
        }
        memory.indexes.retain(|_, index| !index.is_empty());
        if let Some(frame) = change.frame {
            memory.ledger_last += 1;
            let id = memory.ledger_last;
            memory.ledger.push((id, frame));
        }
        Ok(true)
    }

    fn ledger(&mut self, after: &str, limit: u32) -> Result<LedgerPage, StoreError> {
        Ok(self.memory.borrow().ledger_page(after, limit))
    }

    fn read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), StoreError> {
        Ok((self.get(key)?, self.ledger(after, limit)?))
    }

    fn watch_read(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<Watched<MemoryCas>, StoreError> {
        let (cas, read) = self.watch(key)?;
        Ok((cas, read, self.ledger(after, limit)?))
    }

    fn trim_ledger(&mut self, before: &str) -> Result<(), StoreError> {
        let before = stream_id(before);
        let mut memory = self.memory.borrow_mut();
        let trimmed = (memory.ledger.iter())
            .filter(|(id, _)| (*id, 0) < before)
            .map(|(id, _)| *id)
            .max();
        if let Some(trimmed) = trimmed {
            memory.ledger_deleted = memory.ledger_deleted.max(trimmed);
        }
        memory.ledger.retain(|(id, _)| (*id, 0) >= before);
        Ok(())
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut memory = self.memory.borrow_mut();
        memory.values.insert(key.to_owned(), (value.to_vec(), None));
        Ok(())
    }

    fn delete_many(&mut self, keys: &[String]) -> Result<(), StoreError> {
        let mut memory = self.memory.borrow_mut();
        for key in keys {
            memory.values.remove(key);
            memory.indexes.remove(key);
            if key == layout::LEDGER {
                memory.ledger.clear();
            }
        }
        Ok(())
    }

    fn list_keys(&mut self, cursor: Option<String>) -> Result<Page, StoreError> {
        const PAGE: usize = 100;
        let memory = self.memory.borrow();
        // A cursor this bucket did not give lists nothing past it, as a finished scan.
        let start = cursor.map_or(0, |c| c.parse::<usize>().unwrap_or(usize::MAX));
        let keys: Vec<String> = memory
            .values
            .keys()
            .chain(memory.indexes.keys())
            .skip(start)
            .take(PAGE)
            .cloned()
            .collect();
        let next = (keys.len() == PAGE).then(|| (start + PAGE).to_string());
        Ok((keys, next))
    }

    fn add(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let mut memory = self.memory.borrow_mut();
        for entry in entries {
            let index = memory.indexes.entry(entry.index.clone()).or_default();
            index.insert(entry.member.clone(), entry.score);
        }
        Ok(())
    }

    fn remove(&mut self, members: &[Member]) -> Result<(), StoreError> {
        let mut memory = self.memory.borrow_mut();
        for member in members {
            if let Some(index) = memory.indexes.get_mut(&member.index) {
                index.remove(&member.member);
            }
        }
        memory.indexes.retain(|_, index| !index.is_empty());
        Ok(())
    }

    fn range(
        &mut self,
        index: &str,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let memory = self.memory.borrow();
        let Some(index) = memory.indexes.get(index) else {
            return Ok(Vec::new());
        };
        let mut members: Vec<(u64, &String)> = index
            .iter()
            .filter(|(_, score)| (min..=max).contains(*score))
            .map(|(member, score)| (*score, member))
            .collect();
        members.sort();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(members
            .into_iter()
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect())
    }

    fn members_after(
        &mut self,
        index: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let memory = self.memory.borrow();
        let Some(index) = memory.indexes.get(index) else {
            return Ok(Vec::new());
        };
        let mut members: Vec<&String> = index.keys().filter(|m| m.as_str() > after).collect();
        members.sort();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(members.into_iter().take(limit).cloned().collect())
    }

    fn count(&mut self, index: &str, min: u64, max: u64) -> Result<u64, StoreError> {
        let memory = self.memory.borrow();
        Ok(memory.indexes.get(index).map_or(0, |index| {
            index.values().filter(|s| (min..=max).contains(*s)).count() as u64
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_refuses_a_key_changed_since_it_was_read() {
        let mut bucket = MemoryBucket::new();
        let (cas, read) = bucket.watch("k").unwrap();
        assert_eq!(read, None);
        bucket.set("k", b"other").unwrap();
        let change = Change {
            value: Some(b"mine".to_vec()),
            ..Change::default()
        };
        assert!(!bucket.commit(cas, change.clone()).unwrap());
        assert_eq!(bucket.get("k").unwrap().as_deref(), Some(&b"other"[..]));
        let (cas, _) = bucket.watch("k").unwrap();
        assert!(bucket.commit(cas, change).unwrap());
        assert_eq!(bucket.get("k").unwrap().as_deref(), Some(&b"mine"[..]));
    }

    #[test]
    fn indexes_range_and_count_by_score() {
        let mut bucket = MemoryBucket::new();
        let entry = |member: &str, score| Entry {
            index: "x".into(),
            member: member.into(),
            score,
        };
        bucket
            .add(&[entry("b", 20), entry("a", 10), entry("c", 30)])
            .unwrap();
        assert_eq!(bucket.range("x", 0, 25, 10).unwrap(), ["a", "b"]);
        assert_eq!(bucket.range("x", 0, u64::MAX, 1).unwrap(), ["a"]);
        assert_eq!(bucket.count("x", 11, u64::MAX).unwrap(), 2);
        bucket
            .remove(&[Member {
                index: "x".into(),
                member: "a".into(),
            }])
            .unwrap();
        assert_eq!(bucket.count("x", 0, u64::MAX).unwrap(), 2);
        assert!(bucket.range("absent", 0, u64::MAX, 10).unwrap().is_empty());
    }
}
