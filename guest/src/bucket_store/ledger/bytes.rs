//! The version ledger's bytes: a frame's layout, stream ids, and the reader that refuses
//! any field running past the end (docs/FORMAT.md, "The version ledger in a bucket").

use super::{Event, FORMAT, FRAME_MAGIC, Frame};

/// A stream id (`<ms>-<seq>`) as a pair that orders as Redis orders them; text that is
/// no stream id orders first.
pub fn stream_id(text: &str) -> (u64, u64) {
    let mut parts = text.splitn(2, '-');
    let ms = parts.next().and_then(|p| p.parse().ok());
    let seq = parts.next().map_or(Some(0), |p| p.parse().ok());
    match (ms, seq) {
        (Some(ms), Some(seq)) => (ms, seq),
        _ => (0, 0),
    }
}

pub(super) fn put_text(out: &mut Vec<u8>, text: &str) {
    // Ids and cursors are at most 128 bytes; longer text is cut (and then refused).
    let bytes = text.as_bytes();
    let bytes = bytes.get(..bytes.len().min(255)).unwrap_or_default();
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

pub(super) fn encode_frame(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + frame.id.len());
    out.extend_from_slice(FRAME_MAGIC);
    out.push(FORMAT);
    out.push(frame.event as u8);
    for n in [
        frame.writer,
        frame.seq,
        frame.version,
        frame.until,
        frame.at,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    put_text(&mut out, &frame.id);
    out
}

pub(super) fn decode_frame(body: &[u8]) -> Option<Frame> {
    let mut reader = Reader::new(body.strip_prefix(FRAME_MAGIC.as_slice())?);
    (reader.u8()? == FORMAT).then_some(())?;
    let event = match reader.u8()? {
        1 => Event::Written,
        2 => Event::Removed,
        _ => return None,
    };
    let frame = Frame {
        event,
        writer: reader.u64()?,
        seq: reader.u64()?,
        version: reader.u64()?,
        until: reader.u64()?,
        at: reader.u64()?,
        id: reader.text()?,
    };
    reader.is_empty().then_some(frame)
}

/// Reads fields off authenticated bytes, refusing any that run past the end.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(rest: &'a [u8]) -> Self {
        Reader { rest }
    }
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }
    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(super) fn text(&mut self) -> Option<String> {
        let len = usize::from(self.u8()?);
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
