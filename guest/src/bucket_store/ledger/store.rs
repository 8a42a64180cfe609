//! How a shared store keeps its version ledger: every record read comes with the frames
//! not yet read, every commit moves this host's place as a writer on, snapshots are taken
//! and loaded, and the stream is checked when the store opens.

use super::{Ledger, LedgerPage};
use crate::bucket_store::bucket::{Bucket, Change};
use crate::bucket_store::{BucketStore, layout, ledger};
use crate::error::StoreError;
use crate::sessions::clock::Clock;

impl<K: Bucket, C: Clock> BucketStore<K, C> {
    /// Reads the record of session `id` and the ledger's new frames, in one round trip.
    pub(in crate::bucket_store) fn read_session(
        &mut self,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = layout::session(id);
        let (value, page) = self.bucket.read(&key, self.ledger.cursor(), ledger::PAGE)?;
        if self.take_in(page)? {
            self.catch_up()?;
        }
        Ok(value)
    }

    /// [`Bucket::watch`] on the record of session `id`, with the ledger's new frames in
    /// the same round trip.
    pub(in crate::bucket_store) fn watch_session(
        &mut self,
        id: &str,
    ) -> Result<(K::Cas, Option<Vec<u8>>), StoreError> {
        self.ledger.renew(self.lifetime.now())?;
        let key = layout::session(id);
        let (cas, value, page) =
            (self.bucket).watch_read(&key, self.ledger.cursor(), ledger::PAGE)?;
        if self.take_in(page)? {
            self.catch_up()?;
        }
        Ok((cas, value))
    }

    /// [`Bucket::commit`], keeping this host's place in the ledger: a frame committed
    /// moves it on; a commit whose outcome is unknown makes the host write under a new
    /// name (the frame may be in the stream or not).
    pub(in crate::bucket_store) fn commit(
        &mut self,
        cas: K::Cas,
        change: Change,
    ) -> Result<bool, StoreError> {
        let framed = change.frame.is_some();
        match self.bucket.commit(cas, change) {
            Ok(applied) => {
                if applied && framed {
                    self.ledger.committed();
                    if self.ledger.snapshot_overdue() {
                        // The write is done whatever becomes of the snapshot; a failure
                        // here shows again on the next call that reads.
                        let _ = self.snapshot_ledger();
                    }
                }
                Ok(applied)
            }
            // `invalid-input` is the fence: nothing was applied.
            Err(error @ StoreError::InvalidInput(_)) => Err(error),
            Err(error) => {
                if framed {
                    self.ledger.rename(self.lifetime.now())?;
                }
                Err(error)
            }
        }
    }

    /// Reads every frame of the ledger this host has not read.
    pub(in crate::bucket_store) fn catch_up(&mut self) -> Result<(), StoreError> {
        let restarts = self.ledger.restarts;
        loop {
            let page = self.bucket.ledger(self.ledger.cursor(), ledger::PAGE)?;
            if !self.take_in(page)? {
                return Ok(());
            }
            if self.ledger.restarts > restarts.saturating_add(3) {
                return Err(StoreError::unavailable(
                    "reading the version ledger",
                    "its stream started over, or its snapshot was read again, more than \
                     three times in one call",
                ));
            }
        }
    }

    /// Takes in a page of the ledger; whether more may follow. When frames after this
    /// host's cursor were trimmed (another host wrote a snapshot), the snapshot is read
    /// and the page dropped: reading goes on from the snapshot's cursor.
    pub(in crate::bucket_store) fn take_in(
        &mut self,
        page: LedgerPage,
    ) -> Result<bool, StoreError> {
        if self.ledger.restarted(&page) {
            return Ok(true);
        }
        if self.ledger.missed(&page) {
            self.ledger.restarts = self.ledger.restarts.saturating_add(1);
            match self.bucket.get(layout::SNAPSHOT)? {
                Some(snapshot) => self.ledger.load(&snapshot, self.lifetime.now())?,
                None => self.ledger.count_damage(),
            }
            if Ledger::stale(self.ledger.cursor(), &page) {
                // Frames after the snapshot were taken out: counted, not waited for.
                self.ledger.count_damage();
            }
            self.ledger.saw_deleted(&page.max_deleted);
            return Ok(true);
        }
        let more = self.ledger.ingest(page, self.lifetime.now());
        self.ledger.prune_if_grown(self.lifetime.now());
        Ok(more)
    }

    /// Loads the ledger's snapshot and reads the stream after it. A store from before the
    /// ledger (or a new one) gets its first snapshot, then metadata that says it has one,
    /// so that a snapshot deleted later refuses the store rather than forget every version.
    pub(in crate::bucket_store) fn start_ledger(&mut self) -> Result<(), StoreError> {
        let (mut cas, mut found) = self.bucket.watch(layout::SNAPSHOT)?;
        let mut tries = 0;
        while let Some(snapshot) = found.as_deref() {
            self.ledger.load(snapshot, self.lifetime.now())?;
            let page = self.bucket.ledger(self.ledger.cursor(), 1)?;
            if self.opens_over(&page) {
                break;
            }
            // Another host may have written a snapshot and trimmed between the two
            // reads: the snapshot is read again before it is called stale.
            tries += 1;
            if tries == 3 {
                return Err(StoreError::Corrupted(
                    "the version ledger's snapshot is older than the frames its stream \
                     no longer holds (an older snapshot put back, or the stream deleted): \
                     refusing to open the store, since older records put back would be \
                     served (see README, security model)"
                        .into(),
                ));
            }
            (cas, found) = self.bucket.watch(layout::SNAPSHOT)?;
        }
        match found {
            Some(_) => {}
            None if self.meta.ledger.is_some() => {
                return Err(StoreError::Corrupted(
                    "the version ledger's snapshot (key `ls`) is gone: refusing to open the \
                     store without it, since any older record put back would be served \
                     (restore the key, or see README, security model)"
                        .into(),
                ));
            }
            None => match self
                .bucket
                .commit(cas, Change::put(self.ledger.snapshot(0)))
            {
                Ok(true) => {
                    // No snapshot was there, so no host of 0.3.0 has written a frame: a
                    // stream already there means the metadata from before the ledger
                    // was put back and the snapshot deleted.
                    let page = self.bucket.ledger(ledger::START, 1)?;
                    if ledger::stream_id(&page.last_generated) > (0, 0) {
                        return Err(StoreError::Corrupted(
                            "the store's metadata says it has no version ledger, but the \
                             bucket holds its stream (`l`): older metadata put back? \
                             Refusing to open (see README, security model)"
                                .into(),
                        ));
                    }
                }
                // Another host started it first, or fenced (moving out): read only.
                Ok(false) | Err(StoreError::InvalidInput(_)) => {}
                Err(error) => return Err(error),
            },
        }
        self.catch_up()?;
        if self.meta.ledger.is_none() && !self.bucket_fenced()? {
            let mut meta = self.meta.clone();
            meta.ledger = Some(1);
            self.write_meta(meta)?;
        }
        Ok(())
    }

    /// Whether the stream `page` describes goes on from the snapshot this host loaded:
    /// nothing after its cursor taken out, and not made again since.
    pub(in crate::bucket_store) fn opens_over(&self, page: &LedgerPage) -> bool {
        let cursor = ledger::stream_id(self.ledger.cursor());
        !Ledger::stale(self.ledger.cursor(), page)
            && ledger::stream_id(&page.last_generated) >= cursor
    }

    pub(in crate::bucket_store) fn bucket_fenced(&mut self) -> Result<bool, StoreError> {
        Ok(self.bucket.get(layout::FENCE)?.is_some())
    }

    /// Writes a snapshot of the ledger if enough frames were read since the last one,
    /// then trims the stream before it: housekeeping, run by `cleanup`.
    pub(in crate::bucket_store) fn snapshot_ledger(&mut self) -> Result<(), StoreError> {
        self.catch_up()?;
        let now = self.lifetime.now();
        self.ledger.prune(now);
        if !self.ledger.wants_snapshot() {
            return Ok(());
        }
        let (cas, found) = self.bucket.watch(layout::SNAPSHOT)?;
        let cursor = self.ledger.cursor().to_owned();
        let previous = (found.as_deref()).and_then(|bytes| self.ledger.snapshot_cursor(bytes));
        if let Some(theirs) = previous.as_deref()
            && (self.ledger.taken_since(theirs)
                || ledger::stream_id(theirs) >= ledger::stream_id(&cursor))
        {
            // Another host took one since this host last did.
            self.ledger.snapshotted(theirs);
            return Ok(());
        }
        {
            match self
                .bucket
                .commit(cas, Change::put(self.ledger.snapshot(now)))
            {
                // Trimmed one snapshot behind: a host that keeps reading the stream never
                // has frames trimmed past its cursor, so never reads a whole snapshot.
                Ok(true) => {
                    if let Some(previous) = previous {
                        self.bucket.trim_ledger(&previous)?;
                    }
                }
                Ok(false) | Err(StoreError::InvalidInput(_)) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        self.ledger.snapshotted(&cursor);
        Ok(())
    }

    /// Reads the whole ledger afresh (snapshot and stream); how many of its frames fail:
    /// not authentic, missing from a writer's sequence, or repeated. `check` reports them.
    pub(in crate::bucket_store) fn audit_ledger(&mut self) -> Result<u64, StoreError> {
        let mut fresh = Ledger::new(&self.names, self.lifetime.now())?;
        if let Some(snapshot) = self.bucket.get(layout::SNAPSHOT)? {
            fresh.load(&snapshot, self.lifetime.now())?;
        }
        loop {
            let page = self.bucket.ledger(fresh.cursor(), ledger::PAGE)?;
            if !fresh.ingest(page, self.lifetime.now()) {
                return Ok(fresh.damage());
            }
        }
    }
}
