//! Per-direction TCP reassembly: segments in capture order in, the sender's byte stream out, in
//! order, with every hole reported as a [`Chunk::Gap`] and never glued over.
//!
//! Positions are 64-bit offsets from the stream start. A 32-bit sequence number is unwrapped to
//! the offset nearest the current position, so wraparound needs no special case and a stream may
//! run past 4 GiB. Anything more than 1 GiB away from the position is garbage.
//!
//! Memory is bounded by `max_pending` bytes of out-of-order data (plus a bound on how many pieces
//! hold them); nothing is ever sized by a sequence-number distance. In-order data goes straight
//! from the caller's slice to the sink without a copy or an allocation.

use std::collections::BTreeMap;

#[cfg(test)]
mod tests;

/// Segments, ACKs and FINs farther than this from the position, either way, are garbage.
const WINDOW: u32 = 1 << 30;

/// Bounds how many pieces the pending store may hold, so that a flood of 1-byte segments with
/// holes between them cannot cost ~60 bytes of allocator and tree overhead per payload byte.
const BYTES_PER_PIECE: usize = 64;
const MIN_PIECES: usize = 64;

/// What the reassembler hands to its sink, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next stream bytes. Valid only for the duration of the callback.
    Data(&'a [u8]),
    /// This many stream bytes were never seen in the capture; the stream resumes after them.
    Gap(u32),
}

/// Counters for the report. Byte counts are stream bytes, not frames. `repr(C)`, widest fields
/// first, so that it packs into what is left of the reassembler's second cache line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ReassemblyStats {
    /// Bytes handed to the sink as [`Chunk::Data`].
    pub delivered_bytes: u64,
    /// Copies of bytes already delivered, declared lost, or pending (duplicates are discarded).
    pub retransmitted_bytes: u64,
    pub gap_bytes: u64,
    /// Captured bytes thrown away unread: over the pending cap, or pending at `stop_buffering`.
    pub dropped_bytes: u64,
    /// Out-of-order bytes held right now.
    pub pending_bytes: usize,
    /// Holes declared lost (one per hole, however many `Gap` chunks it took).
    pub gaps: u32,
    /// Times a copy of pending bytes differed from the pending copy (the first copy was kept).
    pub overlap_conflicts: u32,
    /// Garbage ignored: segments more than 1 GiB from the position or reaching past an accepted
    /// FIN (cut there), and FINs that are that far off or would end the stream before data seen.
    pub out_of_window: u32,
    /// The pending cap forced a hole to become a gap or made bytes be dropped.
    pub cap_hit: bool,
}

/// Reassembles one direction of one TCP connection, in two cache lines: the first holds all
/// that an in-order segment or an ACK reads (see the flow table's `Flow`), the second the
/// counters that only unusual segments change. Delivered bytes are not counted per segment:
/// every stream byte up to the position was either delivered or declared lost, so they are the
/// position minus the gap bytes.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Reassembler {
    /// Sequence number of stream offset 0: set by a SYN, or else by the first data segment.
    base: Option<u32>,
    buffering: bool,
    /// Offset of the next byte to deliver.
    next: u64,
    /// Offset where the sender's FIN says the stream ends.
    fin_at: Option<u64>,
    /// Out-of-order data by start offset. Pieces never overlap and all start after `next`
    /// between calls.
    pending: BTreeMap<u64, Box<[u8]>>,
    /// `delivered_bytes` stays 0 here: [`Reassembler::stats`] derives it.
    stats: ReassemblyStats,
    max_pending: usize,
}

impl Reassembler {
    pub fn new(max_pending: usize) -> Self {
        Reassembler {
            base: None,
            next: 0,
            pending: BTreeMap::new(),
            max_pending,
            fin_at: None,
            buffering: true,
            stats: ReassemblyStats::default(),
        }
    }

    /// Offset of the next byte to deliver (on the line an in-order segment reads).
    pub fn position(&self) -> u64 {
        self.next
    }

    /// A SYN from this direction's sender: the stream starts at `isn + 1`. Data carried on the
    /// SYN (TCP Fast Open) must be fed as `segment(isn.wrapping_add(1), payload)`. Ignored once the
    /// start is known (a retransmitted SYN, or a SYN seen after data).
    pub fn syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// Feeds one segment's payload. Empty payloads (pure ACKs) are ignored and do not fix the
    /// stream start.
    pub fn segment(&mut self, seq: u32, data: &[u8], sink: &mut dyn FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let Some(start) = self.offset_of(base, seq) else {
            self.count_out_of_window();
            return;
        };
        let data = self.cut_at_fin(start, data);
        // Bytes before the position were delivered or declared lost already.
        let behind = u64::try_from(self.next as i64 - start).unwrap_or(0);
        let skip = usize::try_from(behind).map_or(data.len(), |b| b.min(data.len()));
        if skip > 0 {
            self.stats.retransmitted_bytes += skip as u64;
        }
        let data = &data[skip..];
        if data.is_empty() {
            return;
        }
        let start = self.next.max(u64::try_from(start).unwrap_or(0));
        if start == self.next && self.pending.is_empty() {
            // The per-packet hot path: borrowed, no copy, no allocation.
            self.deliver(data, sink);
        } else if !self.buffering {
            self.gap_to(start, sink);
            self.deliver(data, sink);
        } else {
            self.insert(start, data, sink);
        }
    }

    /// The sender's FIN, carried by the segment at `seq` with `payload_len` bytes of data (feed
    /// that data through [`segment`](Self::segment) first). The FIN's own sequence number is not
    /// data: ACKs for it never make a gap, and data after it is ignored. A FIN that would end the
    /// stream before data already seen is ignored: the first copy wins here too.
    pub fn fin(&mut self, seq: u32, payload_len: usize) {
        let base = *self.base.get_or_insert(seq);
        let end = self.offset_of(base, seq).and_then(|start| {
            let len = u32::try_from(payload_len).ok().filter(|&l| l <= WINDOW)?;
            u64::try_from(start + i64::from(len)).ok()
        });
        let seen_end =
            self.pending.last_key_value().map_or(self.next, |(&s, b)| s + b.len() as u64);
        match end {
            Some(end) if end >= seen_end => {
                self.fin_at = Some(self.fin_at.map_or(end, |f| f.min(end)));
            }
            _ => self.count_out_of_window(),
        }
    }

    /// An ACK sent by the peer (the receiver of this direction). The receiver holds everything
    /// before `ack`, so a hole below it that the capture missed is declared lost and what follows
    /// is delivered. A hole is only believed when later data (or the FIN) proves it exists: with
    /// both directions captured on different interfaces an ACK can precede, in the capture, the
    /// data it acknowledges.
    pub fn ack_seen(&mut self, ack: u32, sink: &mut dyn FnMut(Chunk<'_>)) {
        let Some(base) = self.base else { return };
        let Some(ack) = self.offset_of(base, ack).and_then(|a| u64::try_from(a).ok()) else {
            return;
        };
        // Pending data starts before the FIN, so an ACK of the FIN's own sequence number never
        // reaches past `known`.
        let Some(known) = self.pending.keys().next().copied().or(self.fin_at) else {
            return;
        };
        if ack > self.next {
            self.gap_to(ack.min(known), sink);
            self.drain(sink);
        }
    }

    /// End of flow or of capture: every remaining hole becomes a gap (up to the FIN when one was
    /// seen) and all pending data is delivered. The reassembler stays usable.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(&start) = self.pending.keys().next() {
            self.gap_to(start, sink);
            self.drain(sink);
        }
        if let Some(fin) = self.fin_at {
            self.gap_to(fin, sink);
        }
    }

    /// The flow is classified: free the pending store and keep only the position and counters.
    /// In-order data still reaches the sink; a segment ahead of the position turns the hole into a
    /// gap at once.
    pub fn stop_buffering(&mut self) {
        self.buffering = false;
        self.stats.dropped_bytes += self.stats.pending_bytes as u64;
        self.stats.pending_bytes = 0;
        self.pending = BTreeMap::new();
    }

    /// Sequence number of the next byte expected, once the stream start is known.
    pub fn next_seq(&self) -> Option<u32> {
        self.base.map(|b| b.wrapping_add(self.next as u32))
    }

    pub fn stats(&self) -> ReassemblyStats {
        ReassemblyStats { delivered_bytes: self.next - self.stats.gap_bytes, ..self.stats.clone() }
    }

    /// Out-of-order pieces held now (at most `max(max_pending / 64, 64)`, whatever the holes).
    pub fn pending_pieces(&self) -> usize {
        self.pending.len()
    }

    /// Unwraps `seq` to the offset nearest the position; `None` if it is more than a window away.
    /// The result is negative for sequence numbers before the stream start.
    fn offset_of(&self, base: u32, seq: u32) -> Option<i64> {
        // Truncating `next` is the point: only the distance modulo 2^32 is known.
        let diff = seq.wrapping_sub(base).wrapping_sub(self.next as u32) as i32;
        (diff.unsigned_abs() <= WINDOW).then(|| self.next as i64 + i64::from(diff))
    }

    /// Drops the part of a segment at or after the FIN.
    fn cut_at_fin<'d>(&mut self, start: i64, data: &'d [u8]) -> &'d [u8] {
        let Some(fin) = self.fin_at else { return data };
        let keep = (fin as i64).saturating_sub(start).max(0);
        match usize::try_from(keep) {
            Ok(keep) if keep >= data.len() => data,
            Ok(keep) => {
                self.count_out_of_window();
                &data[..keep]
            }
            Err(_) => data,
        }
    }

    /// Slow path: `data` starts at `start >= next` and pending data exists or it is ahead.
    /// Walks the segment left to right: parts over pending pieces are compared and discarded
    /// (the first copy wins), parts at the position are delivered borrowed, parts in later holes
    /// are copied into the store.
    fn insert(&mut self, start: u64, data: &[u8], sink: &mut dyn FnMut(Chunk<'_>)) {
        let end = start + data.len() as u64;
        let at = |pos: u64| (pos - start) as usize;
        let mut pos = start;
        let mut dropping = false;
        while pos < end {
            if pos < self.next {
                // The cap forced the position past this part while we walked.
                let upto = self.next.min(end);
                self.stats.retransmitted_bytes += upto - pos;
                pos = upto;
                continue;
            }
            if let Some(stop) = self.overlap_pending(pos, &data[at(pos)..]) {
                pos = stop;
                // Pieces now fully compared can go, so the next hole part can be delivered
                // borrowed; pieces the rest of the segment overlaps stay to be compared.
                self.drain_before(pos, sink);
                continue;
            }
            let hole_end = self.pending.range(pos..).next().map_or(end, |(&s, _)| s.min(end));
            let part = &data[at(pos)..at(hole_end)];
            if pos == self.next {
                self.deliver(part, sink);
            } else if dropping || !self.store(pos, part, sink) {
                dropping = true;
                self.stats.dropped_bytes += part.len() as u64;
            }
            pos = hole_end;
        }
        self.drain(sink);
    }

    /// If a pending piece holds the byte at `pos`, compares it with the start of `new` and
    /// returns where the overlap ends.
    fn overlap_pending(&mut self, pos: u64, new: &[u8]) -> Option<u64> {
        let (&piece_start, piece) = self.pending.range(..=pos).next_back()?;
        let old = piece.get(usize::try_from(pos - piece_start).ok()?..)?;
        let n = old.len().min(new.len());
        if n == 0 {
            return None;
        }
        if old[..n] != new[..n] {
            self.stats.overlap_conflicts = self.stats.overlap_conflicts.saturating_add(1);
        }
        self.stats.retransmitted_bytes += n as u64;
        Some(pos + n as u64)
    }

    /// Copies an out-of-order part into the store. Over the cap, first forces the earliest hole
    /// (which may end at this very part) to a gap; if that is not enough, returns false and the
    /// caller drops the part.
    fn store(&mut self, pos: u64, part: &[u8], sink: &mut dyn FnMut(Chunk<'_>)) -> bool {
        if !self.fits(part.len()) {
            self.stats.cap_hit = true;
            let hole_end = self.pending.keys().next().map_or(pos, |&s| s.min(pos));
            self.gap_to(hole_end, sink);
            self.drain(sink);
            if pos == self.next {
                self.deliver(part, sink);
                return true;
            }
            if !self.fits(part.len()) {
                return false;
            }
        }
        self.pending.insert(pos, part.into());
        self.stats.pending_bytes += part.len();
        true
    }

    /// Most pieces the pending store may hold (derived, not stored: the second cache line is
    /// full).
    fn max_pieces(&self) -> usize {
        (self.max_pending / BYTES_PER_PIECE).max(MIN_PIECES)
    }

    fn fits(&self, len: usize) -> bool {
        self.stats.pending_bytes.saturating_add(len) <= self.max_pending
            && self.pending.len() < self.max_pieces()
    }

    fn drain(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) {
        self.drain_before(u64::MAX, sink);
    }

    /// Delivers pending pieces that start at the position and before `limit`.
    fn drain_before(&mut self, limit: u64, sink: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.next || start >= limit {
                break;
            }
            let piece = entry.remove();
            self.stats.pending_bytes -= piece.len();
            // Pieces never start before the position; if one did, its head is a duplicate.
            let skip =
                usize::try_from(self.next - start).map_or(piece.len(), |s| s.min(piece.len()));
            self.stats.retransmitted_bytes += skip as u64;
            self.deliver(&piece[skip..], sink);
        }
    }

    fn deliver(&mut self, data: &[u8], sink: &mut dyn FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        sink(Chunk::Data(data));
        self.next += data.len() as u64;
    }

    /// Declares everything from the position up to `target` lost.
    fn gap_to(&mut self, target: u64, sink: &mut dyn FnMut(Chunk<'_>)) {
        if target <= self.next {
            return;
        }
        let mut left = target - self.next;
        self.stats.gaps = self.stats.gaps.saturating_add(1);
        self.stats.gap_bytes += left;
        // Holes are bounded by the window, but a Gap must not wrap if that ever changes.
        while left > 0 {
            let n = u32::try_from(left).unwrap_or(u32::MAX);
            sink(Chunk::Gap(n));
            left -= u64::from(n);
        }
        self.next = target;
    }

    fn count_out_of_window(&mut self) {
        self.stats.out_of_window = self.stats.out_of_window.saturating_add(1);
    }
}
