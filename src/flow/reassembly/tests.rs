//! Hand-made cases for each rule, then randomized runs checked against simple oracles.

use super::*;

const ISN: u32 = 1000;
const CAP: usize = 1 << 16;

/// A stream event with adjacent data and adjacent gaps merged, so tests compare streams rather
/// than segment boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Gap(u64),
}

fn data(bytes: &[u8]) -> Ev {
    Ev::Data(bytes.to_vec())
}

fn record(out: &mut Vec<Ev>, chunk: Chunk<'_>) {
    match chunk {
        Chunk::Data(d) => {
            assert!(!d.is_empty(), "empty Data chunk");
            match out.last_mut() {
                Some(Ev::Data(v)) => v.extend_from_slice(d),
                _ => out.push(data(d)),
            }
        }
        Chunk::Gap(n) => {
            assert!(n > 0, "empty Gap chunk");
            match out.last_mut() {
                Some(Ev::Gap(g)) => *g += u64::from(n),
                _ => out.push(Ev::Gap(n.into())),
            }
        }
    }
}

/// A reassembler plus what it delivered; checks the invariants after every call.
struct H {
    r: Reassembler,
    out: Vec<Ev>,
}

impl H {
    fn new(cap: usize) -> Self {
        H { r: Reassembler::new(cap), out: Vec::new() }
    }

    fn with_syn(isn: u32) -> Self {
        let mut h = H::new(CAP);
        h.r.syn(isn);
        h
    }

    fn seg(&mut self, seq: u32, bytes: &[u8]) {
        let out = &mut self.out;
        self.r.segment(seq, bytes, &mut |c| record(out, c));
        self.r.check_invariants();
    }

    /// A segment at `offset` bytes into a stream started by `syn(ISN)`.
    fn at(&mut self, offset: u32, bytes: &[u8]) {
        self.seg(ISN.wrapping_add(1).wrapping_add(offset), bytes);
    }

    fn ack(&mut self, ack: u32) {
        let out = &mut self.out;
        self.r.ack_seen(ack, &mut |c| record(out, c));
        self.r.check_invariants();
    }

    fn flush(&mut self) {
        let out = &mut self.out;
        self.r.flush(&mut |c| record(out, c));
        self.r.check_invariants();
    }

    fn take(&mut self) -> Vec<Ev> {
        std::mem::take(&mut self.out)
    }

    fn stats(&self) -> ReassemblyStats {
        self.r.stats().clone()
    }
}

impl Reassembler {
    fn check_invariants(&self) {
        let mut end = self.next;
        let mut total = 0;
        for (&start, piece) in &self.pending {
            assert!(start > self.next, "piece at {start} not after position {}", self.next);
            assert!(start >= end, "pieces overlap at {start}");
            assert!(!piece.is_empty());
            end = start + piece.len() as u64;
            total += piece.len();
        }
        assert_eq!(total, self.stats.pending_bytes);
        assert!(total <= self.max_pending);
        assert!(self.pending.len() <= self.max_pieces());
        assert!(self.buffering || self.pending.is_empty());
        if let Some(fin) = self.fin_at {
            assert!(end <= fin, "data past the FIN");
        }
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn in_order_segments_are_delivered_borrowed() {
    let mut r = Reassembler::new(CAP);
    r.syn(ISN);
    let (a, b) = (b"hello ".to_vec(), b"world".to_vec());
    let mut seen = Vec::new();
    for (seq, d) in [(ISN + 1, &a), (ISN + 7, &b)] {
        r.segment(seq, d, &mut |c| match c {
            Chunk::Data(x) => seen.push((x.as_ptr(), x.len())),
            Chunk::Gap(_) => panic!("gap"),
        });
    }
    assert_eq!(seen, vec![(a.as_ptr(), 6), (b.as_ptr(), 5)]);
    assert_eq!(r.next_seq(), Some(ISN + 12));
    assert_eq!(r.stats().delivered_bytes, 11);
    assert_eq!(r.stats().pending_bytes, 0);
}

#[test]
fn first_data_segment_fixes_the_start_without_syn() {
    let mut h = H::new(CAP);
    assert_eq!(h.r.next_seq(), None);
    h.seg(5000, b"");
    h.ack(6000);
    assert_eq!(h.r.next_seq(), None, "pure ACKs do not fix the start");
    h.seg(5000, b"abc");
    h.seg(5003, b"def");
    assert_eq!(h.take(), vec![data(b"abcdef")]);
    assert_eq!(h.r.next_seq(), Some(5006));
    // Bytes before the start can never be delivered; they count as retransmitted.
    h.seg(4998, b"xyab");
    h.r.syn(100);
    assert_eq!(h.r.next_seq(), Some(5006), "a SYN after data does not move the start");
    h.flush();
    assert!(h.take().is_empty());
    assert_eq!(h.stats().retransmitted_bytes, 4);
}

#[test]
fn every_permutation_of_five_segments_gives_the_same_stream() {
    let stream: Vec<u8> = (b'a'..=b't').collect();
    // Overlapping cuts on purpose: 2 bytes of [3,7)/[5,10) and 1 of [10,12)/[11,20).
    let cuts = [(0, 3), (3, 7), (5, 10), (10, 12), (11, 20)];
    for isn in [ISN, u32::MAX - 8] {
        for perm in permutations(cuts.len()) {
            let mut h = H::with_syn(isn);
            for &i in &perm {
                let (a, b) = cuts[i];
                h.seg(isn.wrapping_add(1 + a as u32), &stream[a..b]);
            }
            assert_eq!(h.take(), vec![data(&stream)], "order {perm:?}");
            let s = h.stats();
            assert_eq!((s.delivered_bytes, s.retransmitted_bytes, s.gaps), (20, 3, 0));
            assert_eq!((s.pending_bytes, s.overlap_conflicts), (0, 0));
            assert_eq!(h.r.next_seq(), Some(isn.wrapping_add(21)));
        }
    }
}

#[test]
fn overlapping_copies_keep_the_first_in_every_order() {
    let segs: [(usize, usize, u8); 5] =
        [(0, 6, b'a'), (4, 10, b'b'), (2, 12, b'c'), (8, 14, b'd'), (13, 16, b'e')];
    let mut any_conflict = false;
    for perm in permutations(segs.len()) {
        let mut h = H::with_syn(ISN);
        let mut first = [None; 16];
        for &i in &perm {
            let (a, b, fill) = segs[i];
            h.at(a as u32, &vec![fill; b - a]);
            first[a..b].iter_mut().for_each(|v| _ = v.get_or_insert(fill));
        }
        let expect: Vec<u8> = first.iter().map(|v| v.unwrap()).collect();
        assert_eq!(h.take(), vec![data(&expect)], "order {perm:?}");
        any_conflict |= h.stats().overlap_conflicts > 0;
    }
    assert!(any_conflict);
}

#[test]
fn conflicting_pending_copies_keep_the_first_and_are_counted() {
    let mut h = H::with_syn(ISN);
    h.at(5, b"WORLD");
    h.at(5, b"world");
    h.at(5, b"WORLD");
    h.at(0, b"hello");
    assert_eq!(h.take(), vec![data(b"helloWORLD")]);
    let s = h.stats();
    assert_eq!((s.overlap_conflicts, s.retransmitted_bytes), (1, 10));
}

#[test]
fn in_order_segment_over_pending_data_keeps_the_pending_copy() {
    let mut h = H::with_syn(ISN);
    h.at(5, b"XYZ");
    h.at(0, b"hello world");
    assert_eq!(h.take(), vec![data(b"helloXYZrld")]);
    let s = h.stats();
    assert_eq!((s.overlap_conflicts, s.retransmitted_bytes, s.delivered_bytes), (1, 3, 11));

    // Two adjacent pending pieces: both are compared before either is delivered.
    let mut h = H::with_syn(ISN);
    h.at(5, b"XYZ");
    h.at(8, b"QR");
    h.at(0, b"hello world!");
    assert_eq!(h.take(), vec![data(b"helloXYZQRd!")]);
    assert_eq!(h.stats().overlap_conflicts, 2);
}

#[test]
fn overlap_with_delivered_bytes_is_counted_not_compared() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"hello");
    h.at(0, b"HELLO world");
    assert_eq!(h.take(), vec![data(b"hello world")]);
    let s = h.stats();
    assert_eq!((s.overlap_conflicts, s.retransmitted_bytes), (0, 5));
}

#[test]
fn whole_retransmissions_are_ignored_and_counted() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"abc");
    h.at(3, b"def");
    h.at(0, b"abc");
    h.at(3, b"def");
    h.at(1, b"bc");
    assert_eq!(h.take(), vec![data(b"abcdef")]);
    assert_eq!(h.stats().retransmitted_bytes, 8);
    assert_eq!(h.stats().delivered_bytes, 6);
}

#[test]
fn partial_overlap_delivers_only_the_new_part_borrowed() {
    let mut r = Reassembler::new(CAP);
    r.syn(ISN);
    r.segment(ISN + 1, b"abcd", &mut |_| {});
    let seg = b"cdef".to_vec();
    let mut seen = Vec::new();
    r.segment(ISN + 3, &seg, &mut |c| {
        if let Chunk::Data(d) = c {
            seen.push((d.as_ptr(), d.to_vec()));
        }
    });
    assert_eq!(seen, vec![(seg[2..].as_ptr(), b"ef".to_vec())]);
    assert_eq!(r.stats().retransmitted_bytes, 2);
}

#[test]
fn segment_spanning_pending_pieces_fills_every_hole() {
    let mut h = H::with_syn(ISN);
    h.at(2, b"CD");
    h.at(6, b"GH");
    h.at(0, b"abcdefghij");
    assert_eq!(h.take(), vec![data(b"abCDefGHij")]);
    let s = h.stats();
    assert_eq!((s.overlap_conflicts, s.retransmitted_bytes, s.pending_bytes), (2, 4, 0));

    // The same ahead of the position: the holes between pieces are stored, not delivered.
    let mut h = H::with_syn(ISN);
    h.at(4, b"ef");
    h.at(8, b"ij");
    h.at(2, b"cdefghijkl");
    assert!(h.take().is_empty());
    assert_eq!(h.stats().pending_bytes, 10);
    h.at(0, b"ab");
    assert_eq!(h.take(), vec![data(b"abcdefghijkl")]);
    assert_eq!(h.stats().overlap_conflicts, 0);
}

#[test]
fn data_on_the_syn_tcp_fast_open_is_delivered() {
    let mut h = H::new(CAP);
    h.r.syn(ISN);
    h.seg(ISN + 1, b"\x16\x03\x01");
    // The SYN is retransmitted with its data.
    h.r.syn(ISN);
    h.seg(ISN + 1, b"\x16\x03\x01");
    h.seg(ISN + 4, b"\x02\x00");
    assert_eq!(h.take(), vec![data(b"\x16\x03\x01\x02\x00")]);
    assert_eq!(h.stats().retransmitted_bytes, 3);
    assert_eq!(h.stats().gaps, 0);
}

#[test]
fn data_on_the_final_handshake_ack_is_delivered() {
    let (c_isn, s_isn) = (0x1234_5678, 0x9abc_def0);
    let (mut client, mut server) = (H::new(CAP), H::new(CAP));
    client.r.syn(c_isn);
    server.r.syn(s_isn);
    // SYN-ACK acknowledges the client's SYN; the third packet acknowledges the server's and
    // carries the request.
    client.ack(c_isn + 1);
    server.ack(s_isn + 1);
    client.seg(c_isn + 1, b"GET / HTTP/1.1\r\n");
    server.seg(s_isn + 1, b"HTTP/1.1 200 OK\r\n");
    client.ack(c_isn + 17);
    assert_eq!(client.take(), vec![data(b"GET / HTTP/1.1\r\n")]);
    assert_eq!(server.take(), vec![data(b"HTTP/1.1 200 OK\r\n")]);
    assert_eq!(client.stats().gaps + server.stats().gaps, 0);
}

#[test]
fn sequence_numbers_wrap_around_zero() {
    let isn = u32::MAX - 3;
    let stream = b"abcdefghij";
    let mut h = H::with_syn(isn);
    let seq = |off: u32| isn.wrapping_add(1 + off);
    assert_eq!(seq(6), 3);
    h.seg(seq(6), &stream[6..]);
    h.seg(seq(0), &stream[..4]);
    h.seg(seq(4), &stream[4..6]);
    assert_eq!(h.take(), vec![data(stream)]);
    assert_eq!(h.r.next_seq(), Some(seq(10)));

    // Without a SYN, starting just below the wrap.
    let mut h = H::new(CAP);
    h.seg(u32::MAX - 1, b"ab");
    h.seg(1, b"de");
    h.seg(0, b"c");
    assert_eq!(h.take(), vec![data(b"abcde")]);
    assert_eq!(h.r.next_seq(), Some(3));
}

#[test]
fn a_stream_past_4_gib_keeps_unwrapping() {
    let step: u32 = 900 << 20;
    let mut h = H::with_syn(ISN);
    for _ in 0..6 {
        let next = h.r.next_seq().unwrap();
        h.seg(next.wrapping_add(step), b"x");
        assert_eq!(h.stats().pending_bytes, 1);
        h.ack(next.wrapping_add(step + 1));
        assert_eq!(h.take(), vec![Ev::Gap(step.into()), data(b"x")]);
    }
    assert!(h.r.next > 1 << 32);
    let next = h.r.next_seq().unwrap();
    h.seg(next, b"tail");
    assert_eq!(h.take(), vec![data(b"tail")]);
    let s = h.stats();
    assert_eq!((s.gaps, s.gap_bytes, s.delivered_bytes), (6, 6 * u64::from(step), 10));
}

#[test]
fn segments_beyond_the_window_are_garbage() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"abc");
    h.at(3 + 0x8000_0000, b"far");
    h.at(3 + (1 << 30) + 1, b"x");
    h.at(3u32.wrapping_sub((1 << 30) + 1), b"y");
    h.ack(ISN + 4 + 0x8000_0000);
    assert_eq!(h.stats().out_of_window, 3);
    assert_eq!(h.stats().pending_bytes, 0);
    // Exactly one window ahead is still in: it costs its own 4 bytes, not the distance.
    h.at(3 + (1 << 30), b"edge");
    assert_eq!(h.stats().pending_bytes, 4);
    assert_eq!(h.r.pending.len(), 1);
    h.flush();
    assert_eq!(h.take(), vec![data(b"abc"), Ev::Gap(1 << 30), data(b"edge")]);
}

#[test]
fn ack_past_a_hole_declares_it_lost() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"abc");
    h.at(6, b"ghi");
    assert_eq!(h.take(), vec![data(b"abc")]);
    // The receiver holds up to offset 5 only: the hole shrinks to [5, 6).
    h.ack(ISN + 1 + 5);
    assert_eq!(h.take(), vec![Ev::Gap(2)]);
    h.ack(ISN + 1 + 20);
    assert_eq!(h.take(), vec![Ev::Gap(1), data(b"ghi")]);
    h.ack(ISN + 1 + 3);
    h.at(9, b"j");
    assert_eq!(h.take(), vec![data(b"j")]);
    let s = h.stats();
    assert_eq!((s.gaps, s.gap_bytes, s.delivered_bytes), (2, 3, 7));
}

#[test]
fn ack_without_later_data_makes_no_gap() {
    // The ACK may reach the capture before the data it acknowledges.
    let mut h = H::with_syn(ISN);
    h.at(0, b"abc");
    h.ack(ISN + 1 + 10);
    h.at(3, b"defghij");
    assert_eq!(h.take(), vec![data(b"abcdefghij")]);
    // Once later data proves the hole, the next ACK declares it.
    h.at(15, b"p");
    h.ack(ISN + 1 + 16);
    assert_eq!(h.take(), vec![Ev::Gap(5), data(b"p")]);
}

#[test]
fn cap_forces_the_earliest_hole_then_drops() {
    let mut h = H::new(8);
    h.r.syn(ISN);
    h.at(0, b"ab");
    h.at(4, b"efgh");
    h.at(10, b"klmn");
    assert_eq!(h.stats().pending_bytes, 8);
    assert!(!h.stats().cap_hit);
    h.at(16, b"qr");
    assert_eq!(h.take(), vec![data(b"ab"), Ev::Gap(2), data(b"efgh")]);
    assert!(h.stats().cap_hit);
    h.at(20, b"uvwxyz");
    assert_eq!(h.take(), vec![Ev::Gap(2), data(b"klmn")]);
    // Nine bytes can never fit in eight, even after the next hole is forced.
    h.at(30, b"123456789");
    assert_eq!(h.take(), vec![Ev::Gap(2), data(b"qr")]);
    assert_eq!(h.stats().dropped_bytes, 9);
    h.flush();
    assert_eq!(h.take(), vec![Ev::Gap(2), data(b"uvwxyz")]);
    let s = h.stats();
    assert_eq!((s.gaps, s.gap_bytes, s.pending_bytes), (4, 8, 0));
}

#[test]
fn the_forced_hole_may_end_at_the_new_segment() {
    let mut h = H::new(4);
    h.r.syn(ISN);
    h.at(0, b"a");
    h.at(10, b"KLMNOP");
    assert_eq!(h.take(), vec![data(b"a"), Ev::Gap(9), data(b"KLMNOP")]);
    assert_eq!(h.stats().dropped_bytes, 0);

    // With no room at all, every hole is declared at once.
    let mut h = H::new(0);
    h.r.syn(ISN);
    h.at(0, b"a");
    h.at(3, b"d");
    h.at(1, b"bc");
    assert_eq!(h.take(), vec![data(b"a"), Ev::Gap(2), data(b"d")]);
    assert_eq!(h.stats().retransmitted_bytes, 2);
}

#[test]
fn fragmentation_is_bounded_by_a_piece_count() {
    let mut h = H::new(4096);
    h.r.syn(ISN);
    for i in 1..=200 {
        h.at(2 * i, b"x");
    }
    assert_eq!(h.r.max_pieces(), MIN_PIECES);
    assert!(h.r.pending.len() <= MIN_PIECES);
    assert!(h.stats().cap_hit);
    h.flush();
    let s = h.stats();
    assert_eq!(s.delivered_bytes + s.dropped_bytes, 200);
    assert_eq!(s.gap_bytes + s.delivered_bytes, 2 * 200 + 1);
}

#[test]
fn flush_turns_every_hole_into_a_gap() {
    let mut h = H::with_syn(ISN);
    h.at(3, b"def");
    h.at(10, b"klm");
    h.at(8, b"ij");
    assert!(h.take().is_empty());
    h.flush();
    assert_eq!(h.take(), vec![Ev::Gap(3), data(b"def"), Ev::Gap(2), data(b"ijklm")]);
    let s = h.stats();
    assert_eq!((s.gaps, s.gap_bytes, s.pending_bytes), (2, 5, 0));
    h.at(13, b"n");
    assert_eq!(h.take(), vec![data(b"n")]);
}

#[test]
fn gaps_longer_than_u32_are_split_not_wrapped() {
    let mut r = Reassembler::new(CAP);
    let mut got = Vec::new();
    r.gap_to((1 << 32) + 5, &mut |c| got.push(c.gap_len()));
    assert_eq!(got, vec![u32::MAX, 6]);
    assert_eq!((r.stats().gaps, r.stats().gap_bytes), (1, (1 << 32) + 5));
}

impl Chunk<'_> {
    fn gap_len(self) -> u32 {
        match self {
            Chunk::Gap(n) => n,
            Chunk::Data(_) => panic!("data"),
        }
    }
}

#[test]
fn stop_buffering_frees_pending_and_keeps_delivering_in_order() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"abc");
    h.at(10, b"xyz");
    h.r.stop_buffering();
    h.r.check_invariants();
    assert_eq!(h.stats().pending_bytes, 0);
    assert_eq!(h.stats().dropped_bytes, 3);
    assert_eq!(h.take(), vec![data(b"abc")]);

    let seg = b"defg".to_vec();
    let mut ptr = None;
    h.r.segment(ISN + 4, &seg, &mut |c| {
        if let Chunk::Data(d) = c {
            ptr = Some(d.as_ptr());
        }
    });
    assert_eq!(ptr, Some(seg.as_ptr()));
    // Ahead of the position: the hole is a gap at once, nothing is stored.
    h.at(12, b"mn");
    assert_eq!(h.take(), vec![Ev::Gap(5), data(b"mn")]);
    assert_eq!(h.stats().pending_bytes, 0);
    h.at(8, b"i");
    h.flush();
    assert!(h.take().is_empty());
    assert_eq!(h.stats().retransmitted_bytes, 1);
    assert!(!h.stats().cap_hit);
}

#[test]
fn fin_ack_after_data_makes_no_phantom_gap() {
    for call_fin in [false, true] {
        let mut h = H::with_syn(ISN);
        h.at(0, b"bye");
        if call_fin {
            h.r.fin(ISN + 1, 3);
        }
        // The peer acknowledges the data and the FIN's own sequence number.
        h.ack(ISN + 1 + 4);
        h.flush();
        assert_eq!(h.take(), vec![data(b"bye")]);
        assert_eq!(h.stats().gaps, 0);
    }
}

#[test]
fn fin_bounds_the_stream() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"ab");
    h.at(5, b"f");
    h.r.fin(ISN + 1 + 5, 2);
    h.at(7, b"junk");
    h.at(6, b"gX");
    assert_eq!(h.stats().out_of_window, 2);
    h.flush();
    assert_eq!(h.take(), vec![data(b"ab"), Ev::Gap(3), data(b"fg")]);
    assert_eq!(h.r.next_seq(), Some(ISN + 1 + 7));
}

#[test]
fn ack_of_a_fin_after_a_missed_segment_declares_the_gap() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"ab");
    // "cde" at offset 2 never reached the capture; the FIN (no data) is at offset 5.
    h.r.fin(ISN + 1 + 5, 0);
    h.ack(ISN + 1 + 6);
    assert_eq!(h.take(), vec![data(b"ab"), Ev::Gap(3)]);
    h.flush();
    assert!(h.take().is_empty());
    assert_eq!(h.stats().gaps, 1);
}

#[test]
fn a_fin_contradicted_by_data_already_seen_is_ignored() {
    let mut h = H::with_syn(ISN);
    h.at(0, b"abcdef");
    h.r.fin(ISN + 1 + 2, 0);
    h.at(8, b"i");
    h.r.fin(ISN + 1 + 7, 0);
    h.r.fin(ISN + 1, usize::MAX);
    assert_eq!(h.stats().out_of_window, 3);
    h.at(6, b"gh");
    h.flush();
    assert_eq!(h.take(), vec![data(b"abcdefghi")]);
}

/// xorshift64: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A random stream, cut into segments, some lost, some duplicated or overlapped (possibly with
/// different bytes), shuffled.
struct Scenario {
    isn: u32,
    stream: Vec<u8>,
    /// Every segment the sender sent, in capture order: (offset, bytes, captured).
    sent: Vec<(usize, Vec<u8>, bool)>,
    corrupted: bool,
}

impl Scenario {
    fn new(rng: &mut Rng, lose: bool, corrupt: bool) -> Self {
        let len = 1 + rng.below(1500);
        let stream = rng.bytes(len);
        let isn = if rng.one_in(3) { u32::MAX - rng.below(2000) as u32 } else { rng.next() as u32 };
        let mut sent = Vec::new();
        let mut corrupted = false;
        let mut copy = |rng: &mut Rng, a: usize, b: usize| {
            let mut bytes = stream[a..b].to_vec();
            if corrupt && rng.one_in(3) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 + rng.below(255) as u8;
                corrupted = true;
            }
            (a, bytes, true)
        };
        let mut a = 0;
        while a < len {
            let b = (a + 1 + rng.below(120)).min(len);
            sent.push((a, stream[a..b].to_vec(), !(lose && rng.one_in(6))));
            if rng.one_in(6) {
                sent.push(copy(rng, a, b));
            }
            if rng.one_in(6) {
                let x = rng.below(len);
                let y = (x + 1 + rng.below(200)).min(len);
                sent.push(copy(rng, x, y));
            }
            a = b;
        }
        if rng.one_in(2) {
            for i in (1..sent.len()).rev() {
                sent.swap(i, rng.below(i + 1));
            }
        } else {
            for i in 0..sent.len() {
                let j = (i + rng.below(4)).min(sent.len() - 1);
                sent.swap(i, j);
            }
        }
        Scenario { isn, stream, sent, corrupted }
    }

    fn seq(&self, offset: usize) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(offset as u32)
    }
}

/// Without ACKs or cap pressure the result is fully determined: from the start, each byte is its
/// first captured copy, and each run of bytes never captured is one gap (up to the FIN if fed,
/// else up to the last byte captured).
fn check_flushed_stream(seed: u64) {
    let mut rng = Rng::new(seed);
    let (lose, corrupt) = (rng.one_in(2), rng.one_in(4));
    let sc = Scenario::new(&mut rng, lose, corrupt);
    let syn = !rng.one_in(4);
    let captured: Vec<&(usize, Vec<u8>, bool)> = sc.sent.iter().filter(|s| s.2).collect();
    let origin = if syn { 0 } else { captured.first().map_or(0, |s| s.0) };
    // Without a SYN a FIN must not come first: it would fix the start itself.
    let fin_index = rng.one_in(2).then(|| usize::from(!syn) + rng.below(captured.len() + 1));
    let fin_index = fin_index.filter(|&i| i <= captured.len());

    let mut h = H::new(1 << 20);
    if syn {
        h.r.syn(sc.isn);
    }
    let mut first: Vec<Option<u8>> = vec![None; sc.stream.len()];
    let mut fed = 0u64;
    for (i, (off, bytes, _)) in captured.iter().enumerate() {
        if fin_index == Some(i) {
            h.r.fin(sc.seq(sc.stream.len()), 0);
        }
        h.seg(sc.seq(*off), bytes);
        fed += bytes.len() as u64;
        for (k, &b) in bytes.iter().enumerate() {
            if off + k >= origin {
                first[off + k].get_or_insert(b);
            }
        }
    }
    if fin_index == Some(captured.len()) {
        h.r.fin(sc.seq(sc.stream.len()), 0);
    }
    h.flush();

    let end = match fin_index {
        Some(_) => sc.stream.len(),
        None => first.iter().rposition(Option::is_some).map_or(origin, |i| i + 1),
    };
    let mut expect = Vec::new();
    for v in &first[origin..end] {
        match v {
            Some(b) => record(&mut expect, Chunk::Data(&[*b])),
            None => record(&mut expect, Chunk::Gap(1)),
        }
    }
    assert_eq!(h.take(), expect, "seed {seed}");
    if syn && !sc.corrupted && sc.sent.iter().all(|s| s.2) {
        assert_eq!(expect, vec![data(&sc.stream)], "seed {seed}: lossless must be exact");
    }
    let s = h.stats();
    let delivered = first[origin..end].iter().filter(|v| v.is_some()).count() as u64;
    let gap_runs = expect.iter().filter(|e| matches!(e, Ev::Gap(_))).count() as u32;
    assert_eq!(s.delivered_bytes, delivered, "seed {seed}");
    assert_eq!(s.gap_bytes, (end - origin) as u64 - delivered, "seed {seed}");
    assert_eq!(s.gaps, gap_runs, "seed {seed}");
    assert_eq!(s.retransmitted_bytes, fed - delivered, "seed {seed}");
    assert!(s.overlap_conflicts == 0 || sc.corrupted, "seed {seed}");
    assert_eq!((s.out_of_window, s.dropped_bytes, s.cap_hit, s.pending_bytes), (0, 0, false, 0));
    if fed > 0 || fin_index.is_some() {
        assert_eq!(h.r.next_seq(), Some(sc.seq(end)), "seed {seed}");
    }
}

#[test]
fn randomized_streams_match_the_first_copy_oracle() {
    for seed in 0..3000 {
        check_flushed_stream(seed);
    }
}

/// With ACKs, a small cap and `stop_buffering`, exact output depends on timing, but every data
/// byte must be the original at its position and every byte up to the end must be accounted for.
fn check_under_pressure(seed: u64) {
    let mut rng = Rng::new(seed);
    let sc = Scenario::new(&mut rng, true, false);
    let cap = if rng.one_in(4) { 1 << 20 } else { rng.below(600) };
    let stop_at = rng.one_in(4).then(|| rng.below(sc.sent.len() + 1));
    let with_fin = rng.one_in(2);
    let mut r = Reassembler::new(cap);
    r.syn(sc.isn);
    let mut pos = 0usize;
    let stream = &sc.stream;
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data(d) => {
            assert_eq!(d, &stream[pos..pos + d.len()], "seed {seed}: wrong bytes at {pos}");
            pos += d.len();
        }
        Chunk::Gap(n) => {
            assert!(n > 0);
            pos += n as usize;
            assert!(pos <= stream.len(), "seed {seed}: gap past the end");
        }
    };
    // What the receiver holds, captured or not: its cumulative ACK.
    let mut received = vec![false; stream.len()];
    let mut acked = 0;
    for (i, (off, bytes, captured)) in sc.sent.iter().enumerate() {
        if stop_at == Some(i) {
            r.stop_buffering();
        }
        if *captured {
            r.segment(sc.seq(*off), bytes, &mut sink);
        }
        received[*off..off + bytes.len()].iter_mut().for_each(|v| *v = true);
        while acked < received.len() && received[acked] {
            acked += 1;
        }
        if rng.one_in(3) {
            r.ack_seen(sc.seq(acked), &mut sink);
        }
        r.check_invariants();
    }
    if with_fin {
        r.fin(sc.seq(stream.len()), 0);
        r.ack_seen(sc.seq(stream.len() + 1), &mut sink);
    }
    r.flush(&mut sink);
    r.check_invariants();
    let s = r.stats().clone();
    assert_eq!(s.delivered_bytes + s.gap_bytes, pos as u64, "seed {seed}");
    assert_eq!(r.next, pos as u64, "seed {seed}");
    if with_fin {
        assert_eq!(pos, stream.len(), "seed {seed}");
    }
    if s.dropped_bytes > 0 && stop_at.is_none() {
        assert!(s.cap_hit, "seed {seed}: bytes dropped silently");
    }
    assert_eq!((s.out_of_window, s.overlap_conflicts, s.pending_bytes), (0, 0, 0));
}

#[test]
fn randomized_streams_under_acks_caps_and_stop_stay_correct() {
    for seed in 0..1500 {
        check_under_pressure(seed);
    }
}

#[test]
fn arbitrary_input_never_panics_and_keeps_its_bounds() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let cap = rng.below(3000);
        let mut r = Reassembler::new(cap);
        let mut sink = |c: Chunk<'_>| match c {
            Chunk::Data(d) => assert!(!d.is_empty()),
            Chunk::Gap(n) => assert!(n > 0),
        };
        for _ in 0..200 {
            let near = r.next_seq().unwrap_or(0).wrapping_add(rng.below(8000) as u32);
            let seq = match rng.below(4) {
                0 => rng.next() as u32,
                1 => near.wrapping_sub(4000).wrapping_add(1 << 30),
                _ => near.wrapping_sub(4000),
            };
            match rng.below(20) {
                0 => r.syn(seq),
                1 | 2 => r.ack_seen(seq, &mut sink),
                3 => r.fin(seq, if rng.one_in(4) { usize::MAX } else { rng.below(100) }),
                4 if rng.one_in(10) => r.stop_buffering(),
                5 => r.flush(&mut sink),
                _ => {
                    let len = rng.below(300);
                    r.segment(seq, &rng.bytes(len), &mut sink);
                }
            }
            r.check_invariants();
        }
    }
}

#[test]
fn an_in_order_segment_reads_one_cache_line() {
    use std::mem::{offset_of, size_of};
    // What `segment` and `ack_seen` read on the hot path, all in the first 64 bytes; the
    // counters only unusual segments change fill the second line.
    let hot_end = [
        offset_of!(Reassembler, base) + size_of::<Option<u32>>(),
        offset_of!(Reassembler, buffering) + 1,
        offset_of!(Reassembler, next) + 8,
        offset_of!(Reassembler, fin_at) + size_of::<Option<u64>>(),
        offset_of!(Reassembler, pending) + size_of::<BTreeMap<u64, Box<[u8]>>>(),
    ];
    assert!(hot_end.iter().all(|&e| e <= 64), "{hot_end:?}");
    assert_eq!(offset_of!(Reassembler, stats), 64);
}
