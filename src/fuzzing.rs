//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_regressions.rs`, which
//! replays every input a fuzzer ever crashed. Each takes raw bytes, drives one stage through its
//! public API, and asserts what must hold for any input; a panic is a bug. Not a stable API.
//!
//! Structured inputs (segment sequences, chunked streams) are read from the bytes with
//! [`Bytes`], a tiny reader that never fails (missing bytes read as zero), so every byte string
//! is a valid input and the seeds in `fuzz/corpus/` stay plain files.

use crate::analyze::{self, Analysis, AnalyzedFlow, InputReport};
use crate::capture::CaptureReader;
use crate::check::Policy;
use crate::classify::tls::{self, read_flight, tls13_suite_sizes, TlsAnalyzer, MAX_RECORD_LEN};
use crate::classify::{http1, http2, other, printable, Classification, Classifier, Limits};
use crate::decode::{self, DecodeConfig, Decoded, LinkType};
use crate::engine::{Engine, EngineConfig};
use crate::flow::reassembly::{Chunk, Reassembler};
use crate::flow::{ClientBy, DirStats, FlowRecord};
use crate::identity::IdentityCache;
use crate::keylog::KeyLog;
use crate::link::{LinkLimits, Linker};
use crate::report::{json, table};
use crate::{Dir, Timestamp};
use std::sync::Arc;

/// Reads fixed-width fields off the front of a byte string; past the end, everything is zero.
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// The link types [`decode::decode`] supports; [`decode_packet`]'s first byte picks one.
pub const LINK_TYPES: [LinkType; 11] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::RAW_DLT12,
    LinkType::RAW_DLT14,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NFLOG,
];

/// One frame: `[link type index][frame bytes]`.
pub fn decode_packet(data: &[u8]) {
    let Some((&pick, frame)) = data.split_first() else { return };
    let link = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    if let Ok(Decoded::Tcp(tcp)) = decode::decode(link, frame, &DecodeConfig::default()) {
        // The payload is borrowed from the frame, never made up.
        let start = tcp.payload.as_ptr() as usize - frame.as_ptr() as usize;
        assert!(start + tcp.payload.len() <= frame.len(), "payload outside the frame");
    }
}

/// The byte every copy of sequence number `seq` carries in [`reassembly`]'s segments.
fn stream_byte(seq: u32) -> u8 {
    (seq.wrapping_mul(0x9E37_79B1) >> 24) as u8
}

/// One direction's reassembly fed a sequence of operations:
/// `[isn u32][max_pending u16]` then ops `[kind u8][offset u16 or u32][...]` (kind bit 3 picks
/// a 32-bit offset from the ISN, so jumps, wraparound and garbage are all reachable). Every
/// copy of a sequence number carries the same byte unless an op asks for a conflicting copy;
/// the output must then be exactly those bytes, in order, with holes as gaps, and the pending
/// store must stay under its cap.
pub fn reassembly(data: &[u8]) {
    let mut b = Bytes(data);
    let isn = b.u32();
    let max_pending = usize::from(b.u16()) + 1;
    let mut r = Reassembler::new(max_pending);
    let mut conflicts = false;
    let mut out = Output::default();
    let mut ops = 0;
    while !b.is_empty() && ops < 10_000 {
        ops += 1;
        let kind = b.u8();
        let off = if kind & 8 != 0 { b.u32() } else { u32::from(b.u16()) };
        let seq = isn.wrapping_add(1).wrapping_add(off);
        match kind & 7 {
            0 => r.syn(isn),
            op @ (1 | 2) => {
                let len = usize::from(b.u16() % 4096);
                let conflict = op == 2;
                conflicts |= conflict;
                let bytes: Vec<u8> = (0..len as u32)
                    .map(|i| stream_byte(seq.wrapping_add(i)) ^ if conflict { 0x5a } else { 0 })
                    .collect();
                out.cursor = r.next_seq().unwrap_or(seq);
                r.segment(seq, &bytes, &mut |c| out.take(c, !conflicts));
            }
            3 => r.fin(seq, usize::from(b.u16())),
            4 => {
                out.cursor = r.next_seq().unwrap_or(0);
                r.ack_seen(seq, &mut |c| out.take(c, !conflicts));
            }
            5 => r.stop_buffering(),
            _ => {
                out.cursor = r.next_seq().unwrap_or(0);
                r.flush(&mut |c| out.take(c, !conflicts));
            }
        }
        let st = r.stats();
        assert!(st.pending_bytes <= max_pending, "pending {} over the cap", st.pending_bytes);
        if out.any {
            assert_eq!(r.next_seq(), Some(out.cursor), "position disagrees with the output");
        }
        assert_eq!(st.delivered_bytes, out.data, "delivered bytes miscounted");
        assert_eq!(st.gap_bytes, out.gap, "gap bytes miscounted");
    }
}

/// What [`reassembly`]'s sink saw.
#[derive(Default)]
struct Output {
    /// Sequence number of the next byte the sink expects.
    cursor: u32,
    data: u64,
    gap: u64,
    any: bool,
}

impl Output {
    fn take(&mut self, c: Chunk<'_>, check_bytes: bool) {
        self.any = true;
        match c {
            Chunk::Data(d) => {
                assert!(!d.is_empty(), "empty data chunk");
                for (i, &byte) in d.iter().enumerate() {
                    let seq = self.cursor.wrapping_add(i as u32);
                    if check_bytes {
                        assert_eq!(byte, stream_byte(seq), "wrong byte at seq {seq}");
                    }
                }
                self.cursor = self.cursor.wrapping_add(d.len() as u32);
                self.data += d.len() as u64;
            }
            Chunk::Gap(n) => {
                assert!(n > 0, "empty gap");
                self.cursor = self.cursor.wrapping_add(n);
                self.gap += u64::from(n);
            }
        }
    }
}

/// A two-direction stream as operations: `[ctl u8][len u16]` then `len` bytes. `ctl` bit 0:
/// server to client; bit 1: a capture gap of `len` bytes (no bytes follow); bit 2: the bytes
/// are key-log text.
pub enum StreamOp<'a> {
    Data(Dir, &'a [u8]),
    Gap(Dir, u64),
    KeyLog(&'a [u8]),
}

/// The operations of a stream input (at most 10,000).
pub fn stream_ops(data: &[u8]) -> Vec<StreamOp<'_>> {
    let mut b = Bytes(data);
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < 10_000 {
        let ctl = b.u8();
        let len = b.u16();
        let dir = if ctl & 1 == 0 { Dir::ToServer } else { Dir::ToClient };
        ops.push(if ctl & 2 != 0 {
            StreamOp::Gap(dir, u64::from(len))
        } else if ctl & 4 != 0 {
            StreamOp::KeyLog(b.take(usize::from(len)))
        } else {
            StreamOp::Data(dir, b.take(usize::from(len)))
        });
    }
    ops
}

/// Limits small enough that buffering caps are reached by short inputs, or the defaults.
fn limits(pick: u8) -> Limits {
    if pick & 1 == 0 {
        Limits::default()
    } else {
        Limits { max_buffer: 4096 }
    }
}

/// The TLS record and handshake analyzer over both directions: `[limits u8]` then stream ops.
/// Also peeks a ClientHello from the client's bytes.
pub fn tls_stream(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let limits = limits(pick);
    let keylog = Arc::new(KeyLog::new());
    let mut a = TlsAnalyzer::new(limits).with_keylog(Some(keylog.clone()));
    let mut client = Vec::new();
    // What may be held at once: per direction, the handshake buffer, and one record being
    // decrypted with its plaintext.
    let bound = 2 * (limits.max_buffer + 3 * (usize::from(MAX_RECORD_LEN) + 5) + 64);
    for (i, op) in stream_ops(rest).into_iter().enumerate() {
        match op {
            StreamOp::Data(dir, bytes) => {
                if dir == Dir::ToServer && client.len() < 64 * 1024 {
                    client.extend_from_slice(bytes);
                }
                a.feed(dir, bytes, Timestamp(i as i64));
            }
            StreamOp::Gap(dir, len) => a.gap(dir, len),
            StreamOp::KeyLog(text) => {
                keylog.add(text);
            }
        }
        assert!(a.buffered() <= bound, "buffered {} over {bound}", a.buffered());
        let _ = a.wants_bytes();
    }
    let _ = tls::peek_client_hello(&client, 64 * 1024);
    let mut facts = a.into_facts();
    let _ = facts.message_summary();
    facts.compact();
}

/// TLS 1.3 client-flight inference: `[suite u16][fin u16][tag u16][early u8]` then record
/// sizes (u16 each).
pub fn tls13_flight(data: &[u8]) {
    let mut b = Bytes(data);
    let suite = b.u16();
    let (fin, tag) = tls13_suite_sizes(suite).unwrap_or((b.u16(), b.u16()));
    let early = b.u8() & 1 != 0;
    let mut sizes = Vec::new();
    while !b.is_empty() && sizes.len() < 64 {
        sizes.push(b.u16());
    }
    let flight = read_flight(&sizes, fin, tag, early);
    let given: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    assert!(u64::from(flight.bytes) <= given, "flight larger than its records");
    assert!(usize::from(flight.records) <= sizes.len(), "more flight records than given");
}

/// HTTP/1 request and response parsing, message-start search, the HTTP/2 preface and first
/// request, and the other-protocol sniffers, on the same bytes.
pub fn http_detect(data: &[u8]) {
    let _ = http1::parse_request(data);
    let _ = http1::parse_response(data);
    if let Some(at) = http1::find_message_start(data) {
        assert!(at <= data.len(), "message start past the end");
    }
    let _ = http2::sniff_preface(data);
    let _ = http2::first_request(data.strip_prefix(http2::PREFACE).unwrap_or(data));
    let _ = other::classify(data, false);
    let _ = other::classify(data, true);
    let e = other::entropy(data);
    assert!((0.0..=8.0).contains(&e), "entropy {e}");
    assert!(printable(data, 80).chars().count() <= 4 * 80 + 1);
}

/// The per-flow classifier over both directions (`[flags u8]` then stream ops), then the
/// verdict, identities and the JSON DTO of the flow it makes.
pub fn classify_stream(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let limits = limits(pick);
    let keylog = Arc::new(KeyLog::new());
    let mut c = Classifier::new(limits, pick & 2 != 0);
    c.set_keylog(Some(keylog.clone()));
    let mut dirs = [DirStats::default(); 2];
    for (i, op) in stream_ops(rest).into_iter().enumerate() {
        match op {
            StreamOp::Data(dir, bytes) => {
                dirs[dir.index()].packets += 1;
                dirs[dir.index()].payload_bytes += bytes.len() as u64;
                let _ = c.feed(dir, bytes, Timestamp(i as i64));
            }
            StreamOp::Gap(dir, len) => c.gap(dir, len),
            StreamOp::KeyLog(text) => {
                keylog.add(text);
            }
        }
        let _ = (c.wants_bytes(), c.stage());
        if i % 64 == 63 {
            let _ = c.snapshot();
        }
    }
    let classification = c.finish();
    judge_and_render(vec![record(classification, dirs, pick & 4 != 0)]);
}

/// A finished flow around a classification, as the flow table would make it (also the
/// resumption linker's tests' flows).
pub(crate) fn record(classification: Classification, dirs: [DirStats; 2], syn: bool) -> FlowRecord {
    FlowRecord {
        id: 1,
        client: "10.0.0.1:40000".parse().expect("address"),
        server: "10.0.0.2:443".parse().expect("address"),
        client_by: if syn { ClientBy::Syn } else { ClientBy::HigherPort },
        first_seen: Timestamp(0),
        last_seen: Timestamp(1),
        dirs,
        reassembly: Default::default(),
        syn_seen: syn,
        reset: false,
        duplicates: 0,
        iface: 0,
        ifindex: None,
        tunnel: None,
        vlan: None,
        evicted: false,
        classification,
    }
}

/// Verdicts, identities, resumption linking, the JSON document and the table of these flows.
fn judge_and_render(records: Vec<FlowRecord>) -> Analysis {
    judge_and_render_input(records, InputReport::unreadable("fuzz"))
}

fn judge_and_render_input(records: Vec<FlowRecord>, input: InputReport) -> Analysis {
    let mut analysis = Analysis::default();
    let mut linker = Linker::new(LinkLimits::default());
    let mut judged: Vec<AnalyzedFlow> = Vec::new();
    let mut certs = IdentityCache::default();
    analyze::judge_all(&mut |f| judged.push(f), records, 0, &[], &mut certs);
    for f in judged {
        linker.push(f, &mut |f| analysis.flows.push(f));
    }
    linker.finish(&mut |f| analysis.flows.push(f));
    analysis.inputs.push(input);
    json::write(&mut std::io::sink(), &analysis).expect("JSON to a sink");
    table::write(&mut std::io::sink(), &analysis, table::Style::plain(), Default::default())
        .expect("table to a sink");
    analysis
}

/// pcap/pcapng reading alone: every packet, until the end or an error.
pub fn capture_read(data: &[u8]) {
    let Ok(mut reader) = CaptureReader::new(data) else { return };
    let mut last = reader.offset();
    for _ in 0..100_000 {
        let mut len = 0;
        match reader.next_packet(&mut |p| len = p.data.len()) {
            Ok(true) => {
                assert!(len <= data.len(), "a packet larger than the file");
                assert!(reader.offset() > last, "no progress at {last}");
                last = reader.offset();
            }
            Ok(false) => break,
            Err(e) => {
                assert!(e.offset <= data.len() as u64, "error offset past the end");
                break;
            }
        }
    }
    let _ = (reader.interfaces(), reader.warnings(), reader.secrets_blocks());
}

/// A whole capture through the engine (decode, flows, reassembly, classification), then the
/// verdicts and both reports.
pub fn pipeline(data: &[u8]) {
    let Ok(mut reader) = CaptureReader::new(data) else { return };
    let keylog = Arc::new(KeyLog::new());
    reader.set_keylog(keylog.clone());
    let cfg = EngineConfig { keylog: Some(keylog), ..EngineConfig::default() };
    let mut engine = Engine::new(cfg);
    let mut records = Vec::new();
    for _ in 0..100_000 {
        match reader.next_packet(&mut |p| engine.push(&p)) {
            Ok(true) => records.extend(engine.drain_finished()),
            Ok(false) | Err(_) => break,
        }
    }
    records.extend(engine.finish());
    let mut input = InputReport::unreadable("fuzz");
    input.stats = engine.stats().clone();
    input.interfaces = reader.interfaces().to_vec();
    judge_and_render_input(records, input);
}

/// Inventory files (JSON or YAML, told apart by their first byte), then the index built from
/// them.
pub fn inventory_load(data: &[u8]) {
    let mut sources = crate::inventory::Sources::new();
    if sources.load("fuzz.yaml", data).is_ok() {
        let _ = crate::inventory::Inventory::build(&sources);
    }
}

/// Policy files, as YAML and as JSON.
pub fn policy_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = Policy::from_yaml(text, "fuzz.yaml") {
        // What is written back reads back.
        let again = Policy::from_yaml(&p.to_yaml(), "again.yaml");
        assert!(again.is_ok(), "to_yaml gave an unreadable policy: {again:?}");
    }
    let _ = Policy::from_json(text, "fuzz.json");
}
