//! The version ledger of a shared store: which version of each session is the latest,
//! so that an older sealed record put back on the server (Redis `RESTORE` of an earlier
//! `DUMP`), or a removed session's record brought back, is refused as the directory
//! stores refuse it (docs/FORMAT.md, "The version ledger in a bucket").
//!
//! Every write and removal appends a **frame** (session id, version, event) to the
//! bucket's ledger stream in the same atomic step as the record itself, so no reader sees
//! a record without its frame. A frame is authenticated (HMAC-SHA256 under a key derived
//! from the store's names key) and numbered in its writer's own sequence: each host
//! instance writes under a random name, one frame after another, so a frame taken out of
//! the stream leaves a gap the next frame of that writer shows. No frame depends on
//! another writer's, so writers never contend on the ledger.
//!
//! Each host reads the stream it has not read yet with every record it reads (one round
//! trip), so it knows the latest version of every session before it opens a record.
//! From time to time (`cleanup`) a host writes a **snapshot** of what it knows and the
//! stream before it is trimmed. What a writer without the key can still do: take out the
//! newest frames of a writer that writes no more (with the records they describe put
//! back) — the counterpart of truncating the directory ledger's newest frames, and of
//! rolling the whole store back.

use std::collections::HashMap;

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::crypto;

mod bytes;
mod store;
pub use bytes::stream_id;
use bytes::{Reader, decode_frame, encode_frame, put_text};

type Hmac = hmac::Hmac<Sha256>;

pub(super) const FRAME_MAGIC: &[u8; 4] = b"SVLF";
const SNAPSHOT_MAGIC: &[u8; 4] = b"SVLS";
pub(super) const FORMAT: u8 = 1;
const TAG: usize = 32;
/// Frames asked for per round trip.
pub const PAGE: u32 = 1000;
/// How long a host writes under one name before it takes a new one (at its next write).
pub const TERM_MS: u64 = 24 * 60 * 60 * 1000;
/// A snapshot forgets a writer whose last frame is older than this: it has taken a new
/// name since (after [`TERM_MS`]) or stopped.
const FORGET_WRITER_MS: u64 = 3 * TERM_MS;

/// The cursor before the first frame of a stream.
pub const START: &str = "0-0";

/// What a frame records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The session was written at this version.
    Written = 1,
    /// The session was removed; this version was spent on the removal.
    Removed = 2,
}

/// One frame, authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What happened to the session.
    pub event: Event,
    /// The writer's name.
    pub writer: u64,
    /// Its place in the writer's sequence, from 1.
    pub seq: u64,
    /// The session's version (its record's sequence number).
    pub version: u64,
    /// Until when a record of this session could still be live (ms since the epoch).
    pub until: u64,
    /// When the frame was made.
    pub at: u64,
    /// The session.
    pub id: String,
}

/// A page of the ledger stream: the frames after a cursor, the stream id of the last one,
/// the highest stream id ever taken out of the stream (trimmed or deleted), and the
/// highest it ever gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerPage {
    /// The frames, oldest first.
    pub frames: Vec<Vec<u8>>,
    /// The stream id of the last frame; empty if there was none.
    pub last: String,
    /// The highest stream id ever taken out of the stream (`0-0`: none).
    pub max_deleted: String,
    /// The highest stream id the stream ever gave (`0-0`: no stream): below a host's
    /// cursor only if the stream was deleted and made again.
    pub last_generated: String,
}

/// The latest version of a session the ledger knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    version: u64,
    removed: bool,
    until: u64,
}

/// What the ledger knows of a writer: its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Writer {
    seq: u64,
    at: u64,
}

/// What this host knows of the ledger, and its own place in it as a writer.
pub struct Ledger {
    key: Zeroizing<[u8; 32]>,
    /// The stream id of the last frame read.
    cursor: String,
    sessions: HashMap<String, Latest>,
    writers: HashMap<u64, Writer>,
    /// This host's name as a writer, the last frame it committed under it, and when it
    /// took the name.
    me: u64,
    my_seq: u64,
    my_since: u64,
    /// Frames read since the snapshot this host loaded or wrote.
    since_snapshot: u64,
    /// Frames that failed to authenticate, frames missing from a writer's sequence, and
    /// frames seen twice, since open.
    damage: u64,
    /// The highest stream id this host knows was taken out of the stream.
    deleted_seen: String,
    /// Reading a stream made again from its first frame: a writer first heard from in
    /// the middle of its sequence is expected, not damage.
    resyncing: bool,
    /// How many sessions it knew after it last forgot the expired ones.
    pruned_at: usize,
    /// The cursor of the last snapshot this host loaded or wrote.
    snapshot_seen: String,
    /// How many times reading started over (a stream made again, a snapshot read
    /// again): bounds a read against a server that never lets it finish.
    pub restarts: u64,
}

impl Ledger {
    /// An empty ledger keyed from the store's names key; this host takes a fresh name.
    pub fn new(names: &[u8; 32], now: u64) -> Result<Self, StoreError> {
        let mut derive = <Hmac>::new_from_slice(names)
            .map_err(|_| StoreError::InvalidInput("the names key has no length".into()))?;
        derive.update(b"session-vault ledger key");
        let mut key = Zeroizing::new([0; 32]);
        key.copy_from_slice(&derive.finalize().into_bytes());
        Ok(Ledger {
            key,
            cursor: START.to_owned(),
            sessions: HashMap::new(),
            writers: HashMap::new(),
            me: fresh_name()?,
            my_seq: 0,
            my_since: now,
            since_snapshot: 0,
            damage: 0,
            deleted_seen: START.to_owned(),
            resyncing: false,
            pruned_at: 0,
            snapshot_seen: START.to_owned(),
            restarts: 0,
        })
    }

    /// Where the next read of the stream starts.
    pub fn cursor(&self) -> &str {
        &self.cursor
    }

    /// Damage seen since open (see [`Ledger::damage`]'s field).
    pub fn damage(&self) -> u64 {
        self.damage
    }

    /// Whether enough frames were read since the last snapshot to write one: half as
    /// many as the sessions it would list, and at least 1,024. (A snapshot costs about
    /// what reading that many frames does, and the stream a host reads at open holds the
    /// frames of about two intervals: the trims lag one snapshot.)
    pub fn wants_snapshot(&self) -> bool {
        self.since_snapshot >= self.interval()
    }

    /// Whether twice that many were read: a store whose `cleanup` is never run (Redis's
    /// TTLs remove its records) still gets snapshots, from its writes.
    pub fn snapshot_overdue(&self) -> bool {
        self.since_snapshot >= self.interval().saturating_mul(2)
    }

    fn interval(&self) -> u64 {
        (self.sessions.len() as u64 / 2).max(1024)
    }

    /// Refuses version `version` of session `id` if the ledger knows a later one, or
    /// knows it removed at or after it, with the reason.
    /// What it knows of a session whose every record has expired by `now` is not held
    /// against a new record: such a record is refused as expired anyway, and a host that
    /// forgot it (see [`Ledger::prune`]) may have created the id again from version 1.
    pub fn admits(&self, id: &str, version: u64, now: u64) -> Result<(), String> {
        match self.sessions.get(id).filter(|latest| latest.until > now) {
            Some(latest) if latest.removed && version <= latest.version => Err(format!(
                "version {version}, but the session was removed (at version {}): a removed \
                 record put back",
                latest.version
            )),
            Some(latest) if version < latest.version => Err(format!(
                "version {version} is older than the ledger's latest, {}: a record put back",
                latest.version
            )),
            _ => Ok(()),
        }
    }

    /// The version a write of `id` takes, at least `seq` (its record's next): above every
    /// version the ledger knows of it, so a session written again after a removal never
    /// reuses a version.
    pub fn next_version(&self, id: &str, seq: u64) -> u64 {
        self.sessions
            .get(id)
            .map_or(seq, |latest| seq.max(latest.version.saturating_add(1)))
    }

    /// Whether the stream was deleted and made again since this host read it (it gave
    /// ids below the cursor): what was read is kept, and reading starts over from the
    /// first frame, the reset counted as damage.
    pub fn restarted(&mut self, page: &LedgerPage) -> bool {
        let generated = stream_id(&page.last_generated);
        if generated >= stream_id(&self.cursor) && generated >= stream_id(&self.deleted_seen) {
            return false;
        }
        self.damage = self.damage.saturating_add(1);
        self.restarts = self.restarts.saturating_add(1);
        self.cursor = START.to_owned();
        self.deleted_seen = START.to_owned();
        // The writers' sequences go on in the new stream: they are learnt again.
        self.writers.clear();
        self.resyncing = true;
        true
    }

    /// Takes a new name if this one is older than [`TERM_MS`] (so that snapshots can forget
    /// names no longer written under).
    pub fn renew(&mut self, now: u64) -> Result<(), StoreError> {
        if now.saturating_sub(self.my_since) >= TERM_MS {
            self.rename(now)?;
        }
        Ok(())
    }

    /// Takes a new name: after a commit whose outcome is unknown (its frame may or may
    /// not be in the stream, so the next number in this sequence is unknown too).
    pub fn rename(&mut self, now: u64) -> Result<(), StoreError> {
        self.me = fresh_name()?;
        self.my_seq = 0;
        self.my_since = now;
        Ok(())
    }

    /// The frame of this host's next write: `event` of session `id` at `version`.
    pub fn frame(&self, event: Event, id: &str, version: u64, until: u64, now: u64) -> Vec<u8> {
        let frame = Frame {
            event,
            writer: self.me,
            seq: self.my_seq.saturating_add(1),
            version,
            until,
            at: now,
            id: id.to_owned(),
        };
        let mut bytes = encode_frame(&frame);
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        bytes
    }

    /// The frame made by [`Ledger::frame`] was committed.
    pub fn committed(&mut self) {
        self.my_seq = self.my_seq.saturating_add(1);
    }

    /// Takes in a page of the stream; a frame that fails is counted as damage, never
    /// obeyed. Returns whether the page was full (more may follow).
    pub fn ingest(&mut self, page: LedgerPage, now: u64) -> bool {
        let full = page.frames.len() >= PAGE as usize;
        for bytes in &page.frames {
            self.since_snapshot = self.since_snapshot.saturating_add(1);
            match self.open_frame(bytes) {
                // A frame of a writer this host does not know, older than any writer a
                // snapshot keeps, is a copy of an old frame put back: not obeyed.
                Some(frame)
                    if !self.resyncing
                        && !self.writers.contains_key(&frame.writer)
                        && now.saturating_sub(frame.at) >= FORGET_WRITER_MS =>
                {
                    self.damage = self.damage.saturating_add(1);
                }
                Some(frame) => self.apply(frame),
                None => self.damage = self.damage.saturating_add(1),
            }
        }
        if !page.last.is_empty() {
            self.cursor = page.last;
        }
        if !full {
            self.resyncing = false;
        }
        full
    }

    /// Whether frames after this host's cursor were taken out of the stream (a snapshot
    /// trimmed past it): it must load the snapshot again.
    pub fn missed(&self, page: &LedgerPage) -> bool {
        let deleted = stream_id(&page.max_deleted);
        deleted > stream_id(&self.cursor) && deleted > stream_id(&self.deleted_seen)
    }

    /// The snapshot was read after frames up to `max_deleted` were taken out: frames
    /// taken out after the snapshot's cursor (by hand) are not waited for again.
    pub fn saw_deleted(&mut self, max_deleted: &str) {
        if stream_id(max_deleted) > stream_id(&self.deleted_seen) {
            self.deleted_seen = max_deleted.to_owned();
        }
    }

    fn apply(&mut self, frame: Frame) {
        // A writer first heard from while a stream made again is read is expected in the
        // middle of its sequence; any other starts at 1.
        let first = if self.resyncing { frame.seq } else { 1 };
        let expected = (self.writers.get(&frame.writer)).map_or(first, |w| w.seq.saturating_add(1));
        if frame.seq < expected {
            // Seen before: a copy put back. It changes nothing.
            self.damage = self.damage.saturating_add(1);
            return;
        }
        if frame.seq > expected {
            // Frames of this writer were taken out.
            self.damage = self.damage.saturating_add(1);
        }
        self.writers.insert(
            frame.writer,
            Writer {
                seq: frame.seq,
                at: frame.at,
            },
        );
        self.merge(frame);
    }

    fn tag(&self, bytes: &[u8]) -> [u8; TAG] {
        let mut mac = match <Hmac>::new_from_slice(self.key.as_slice()) {
            Ok(mac) => mac,
            // HMAC takes a key of any length.
            Err(_) => return [0; TAG],
        };
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    fn authentic<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let body_len = bytes.len().checked_sub(TAG)?;
        let (body, tag) = bytes.split_at(body_len);
        let mut mac = <Hmac>::new_from_slice(self.key.as_slice()).ok()?;
        mac.update(body);
        mac.verify_slice(tag).ok()?;
        Some(body)
    }

    fn open_frame(&self, bytes: &[u8]) -> Option<Frame> {
        decode_frame(self.authentic(bytes)?)
    }

    /// A snapshot of what this host knows, as of its cursor: every session whose record
    /// could still be live at `now`, and every writer heard from recently.
    pub fn snapshot(&self, now: u64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(FORMAT);
        put_text(&mut out, &self.cursor);
        let writers: Vec<_> = (self.writers.iter())
            .filter(|(_, w)| now.saturating_sub(w.at) < FORGET_WRITER_MS)
            .collect();
        out.extend_from_slice(&(writers.len() as u32).to_le_bytes());
        for (name, writer) in writers {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&writer.seq.to_le_bytes());
            out.extend_from_slice(&writer.at.to_le_bytes());
        }
        let sessions: Vec<_> = (self.sessions.iter())
            .filter(|(_, latest)| latest.until > now)
            .collect();
        out.extend_from_slice(&(sessions.len() as u32).to_le_bytes());
        for (id, latest) in sessions {
            out.extend_from_slice(&latest.version.to_le_bytes());
            out.extend_from_slice(&latest.until.to_le_bytes());
            out.push(u8::from(latest.removed));
            put_text(&mut out, id);
        }
        let tag = self.tag(&out);
        out.extend_from_slice(&tag);
        out
    }

    /// The cursor a snapshot was taken at, if it authenticates.
    pub fn snapshot_cursor(&self, bytes: &[u8]) -> Option<String> {
        let body = self.authentic(bytes)?;
        let mut reader = Reader::new(body.strip_prefix(SNAPSHOT_MAGIC.as_slice())?);
        (reader.u8()? == FORMAT).then_some(())?;
        reader.text()
    }

    /// Takes in a snapshot (the one the store opens with, or a newer one after this host
    /// missed trimmed frames): what it knows is merged with what this host knows, and
    /// the cursor moves to the snapshot's if that is further. `corrupted` if it does not
    /// authenticate.
    pub fn load(&mut self, bytes: &[u8], now: u64) -> Result<(), StoreError> {
        let refused = || {
            StoreError::Corrupted(
                "the version ledger's snapshot does not authenticate: refusing to open the \
                 store without it (restore it, or see README, security model)"
                    .into(),
            )
        };
        let body = self.authentic(bytes).ok_or_else(refused)?;
        let mut reader = Reader::new(
            body.strip_prefix(SNAPSHOT_MAGIC.as_slice())
                .ok_or_else(refused)?,
        );
        let parsed = (|| {
            (reader.u8()? == FORMAT).then_some(())?;
            let cursor = reader.text()?;
            let mut writers = Vec::new();
            for _ in 0..reader.u32()? {
                writers.push((reader.u64()?, reader.u64()?, reader.u64()?));
            }
            let mut sessions = Vec::new();
            for _ in 0..reader.u32()? {
                let (version, until) = (reader.u64()?, reader.u64()?);
                let removed = match reader.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                };
                sessions.push((reader.text()?, version, until, removed));
            }
            reader.is_empty().then_some((cursor, writers, sessions))
        })();
        let (cursor, writers, sessions) = parsed.ok_or_else(refused)?;
        // What expired is forgotten first: the snapshot may know the id created again.
        self.prune(now);
        for (name, seq, at) in writers {
            let writer = self.writers.entry(name).or_insert(Writer { seq, at });
            if seq > writer.seq {
                *writer = Writer { seq, at };
            }
        }
        // Entries that expired by now are not taken in (an old snapshot put back could
        // otherwise hold a version above an id created again since).
        for (id, version, until, removed) in sessions.into_iter().filter(|e| e.2 > now) {
            let frame = Frame {
                event: if removed {
                    Event::Removed
                } else {
                    Event::Written
                },
                writer: 0,
                seq: 0,
                version,
                until,
                at: 0,
                id,
            };
            self.merge(frame);
        }
        if stream_id(&cursor) > stream_id(&self.snapshot_seen) {
            self.snapshot_seen = cursor.clone();
        }
        if stream_id(&cursor) > stream_id(&self.cursor) {
            self.cursor = cursor;
        }
        self.since_snapshot = 0;
        Ok(())
    }

    /// Counts damage found outside a page: a snapshot missing or stale.
    pub fn count_damage(&mut self) {
        self.damage = self.damage.saturating_add(1);
    }

    /// A snapshot was written at this host's cursor, or by another host at `cursor`.
    pub fn snapshotted(&mut self, cursor: &str) {
        self.since_snapshot = 0;
        if stream_id(cursor) > stream_id(&self.snapshot_seen) {
            self.snapshot_seen = cursor.to_owned();
        }
    }

    /// Whether a snapshot at `cursor` is newer than the last one this host loaded or
    /// wrote: another host took one since, so this host need not (with many hosts, one
    /// snapshot an interval rather than one each).
    pub fn taken_since(&self, cursor: &str) -> bool {
        stream_id(cursor) > stream_id(&self.snapshot_seen)
    }

    /// Takes in what `frame` says of its session. A frame made once every record the
    /// ledger knew of the session had expired starts the session afresh (an id created
    /// again, perhaps by a host that had forgotten it, from version 1): what came before
    /// it can no longer be served anyway.
    fn merge(&mut self, frame: Frame) {
        let removed = frame.event == Event::Removed;
        let fresh = Latest {
            version: frame.version,
            removed,
            until: frame.until,
        };
        let entry = self.sessions.entry(frame.id).or_insert(fresh);
        if entry.until <= frame.at {
            *entry = fresh;
            return;
        }
        entry.until = entry.until.max(frame.until);
        if frame.version > entry.version || (frame.version == entry.version && removed) {
            entry.version = frame.version;
            entry.removed = removed;
        }
    }

    /// Forgets sessions whose every record has expired by `now` (a record of one put
    /// back is refused as expired), and writers not heard from in a long time.
    pub fn prune(&mut self, now: u64) {
        self.sessions.retain(|_, latest| latest.until > now);
        self.writers
            .retain(|_, writer| now.saturating_sub(writer.at) < FORGET_WRITER_MS);
        self.pruned_at = self.sessions.len();
    }

    /// [`Ledger::prune`] once it knows twice as many sessions as after the last one (at
    /// least 1,024 more), so memory follows the sessions that can still be live.
    pub fn prune_if_grown(&mut self, now: u64) {
        if self.sessions.len() >= self.pruned_at.saturating_mul(2).max(1024) {
            self.prune(now);
        }
    }

    /// Whether a snapshot at `cursor` misses frames the stream no longer holds: frames
    /// after it were taken out (an older snapshot put back, or frames deleted).
    pub fn stale(cursor: &str, page: &LedgerPage) -> bool {
        stream_id(&page.max_deleted) > stream_id(cursor)
    }
}

fn fresh_name() -> Result<u64, StoreError> {
    let mut bytes = [0; 8];
    crypto::random(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests;
