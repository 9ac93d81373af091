//! Memory bounds (README, Hostile input / Memory caps): each cap, set small, is hit by
//! generated traffic; the state it bounds stays under it at every step, and the hit is in the
//! report (per input, per flow, and as a warning), never silent. No timings here: the
//! full-size cases are measured by bench/adversarial.sh.

use mtlscope::analyze::{analyze_reader, analyze_stream, Analysis, AnalyzedFlow};
use mtlscope::engine::{Engine, EngineConfig};
use mtlscope::flow::reassembly::{Chunk, Reassembler};
use mtlscope::link::{LinkLimits, Linker};
use mtlscope::report::json;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// Ethernet + IPv4 + TCP (checksums are not checked by mtlscope).
fn frame(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    let total = (40 + data.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(data);
    f
}

/// A classic pcap of `(microseconds, frame)`.
fn pcap(packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&262_144u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (us, p) in packets {
        let secs = 1_700_000_000 + us / 1_000_000;
        f.extend_from_slice(&(secs as u32).to_le_bytes());
        f.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

fn client(i: u32) -> ([u8; 4], u16) {
    ([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 20000 + (i % 1000) as u16)
}

const SERVER: ([u8; 4], u16) = ([10, 200, 0, 1], 443);

fn analyze(cfg: &EngineConfig, capture: &[u8]) -> Analysis {
    let mut a = Analysis::default();
    analyze_reader(&mut a, "gen.pcap", capture, cfg, &mut |_, _| {});
    a
}

fn doc(a: &Analysis) -> serde_json::Value {
    serde_json::to_value(json::document(a)).expect("serializes")
}

#[test]
fn syn_flood_keeps_the_flow_table_at_max_flows_and_says_so() {
    let mut cfg = EngineConfig::default();
    cfg.flow.max_flows = 256;
    let n = 5000u32;
    let packets: Vec<(u64, Vec<u8>)> =
        (0..n).map(|i| (u64::from(i), frame(client(i), SERVER, i * 7919, 0, SYN, b""))).collect();
    // The engine itself: the table never holds more than the cap.
    let mut engine = Engine::new(cfg.clone());
    let capture = pcap(&packets);
    let mut reader = mtlscope::capture::CaptureReader::new(&capture[..]).expect("pcap");
    let mut finished = 0usize;
    while reader.next_packet(&mut |p| engine.push(&p)).expect("reads") {
        assert!(engine.active_flows() <= 256, "{} flows tracked", engine.active_flows());
        let done = engine.drain_finished();
        assert!(done.iter().all(|r| r.evicted), "only the cap finishes a SYN here");
        finished += done.len();
    }
    assert_eq!(engine.table_stats().peak_flows, 256);
    assert_eq!(engine.table_stats().flows_evicted as usize, finished);
    assert_eq!(finished + engine.finish().len(), n as usize, "no flow is lost");

    // The report: per input, per flow, as a warning and in the summary.
    let a = analyze(&cfg, &capture);
    let input = &a.inputs[0];
    assert_eq!(a.flows.len(), n as usize);
    assert_eq!(input.limits.max_flows, u64::from(n) - 256);
    assert!(
        input.warnings.iter().any(|w| w.contains("--max-flows 256") && w.contains("4744 flows")),
        "{:?}",
        input.warnings
    );
    let d = doc(&a);
    assert_eq!(d["inputs"][0]["limits_hit"]["max_flows"], 4744);
    assert_eq!(d["inputs"][0]["peak_flows"], 256);
    assert_eq!(d["summary"]["limits_hit"]["max_flows"], 4744);
    let evicted = d["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["limits_hit"] == serde_json::json!(["max-flows"]))
        .count();
    assert_eq!(evicted, 4744);
    // The longest idle go first: the last 256 SYNs are the ones still tracked at the end.
    let last: Vec<u64> =
        a.flows.iter().filter(|f| !f.record.evicted).map(|f| f.record.id).collect();
    assert_eq!(last.len(), 256);
    assert!(last.iter().all(|&id| id > u64::from(n - 256)), "{last:?}");
}

#[test]
fn a_hundred_thousand_holes_hold_a_bounded_number_of_pieces() {
    let max_pending = 64 * 1024;
    let mut r = Reassembler::new(max_pending);
    r.syn(999);
    let (mut data, mut gaps) = (0u64, 0u64);
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data(d) => data += d.len() as u64,
        Chunk::Gap(g) => gaps += u64::from(g),
    };
    let seg = [0x5au8; 100];
    for k in 0..100_000u32 {
        // 100 bytes, then a 100-byte hole, from the start: nothing is ever in order.
        r.segment(1000 + (2 * k + 1) * 100, &seg, &mut sink);
        assert!(r.pending_pieces() <= 1024, "{} pieces at segment {k}", r.pending_pieces());
        assert!(r.stats().pending_bytes <= max_pending);
    }
    r.flush(&mut sink);
    let st = r.stats().clone();
    assert!(st.cap_hit);
    assert_eq!(st.gaps, 100_000, "every hole is a gap, none glued");
    assert_eq!(data, 100_000 * 100, "every captured byte is delivered once");
    assert_eq!(gaps, 100_000 * 100);
    assert_eq!(r.pending_pieces(), 0);
}

#[test]
fn a_flow_over_its_buffer_cap_says_so() {
    let mut cfg = EngineConfig::default();
    cfg.flow.max_pending = 4096;
    cfg.flow.limits.max_buffer = 4096;
    let c = client(7);
    let mut p = vec![
        (0, frame(c, SERVER, 1000, 0, SYN, b"")),
        (1, frame(SERVER, c, 5000, 1001, SYN | ACK, b"")),
    ];
    // A TLS record header claiming a 16 KiB ClientHello, in 100-byte pieces with holes.
    let mut seg = vec![0x16, 3, 1, 0x40, 0, 1, 0, 0x3f, 0xfc];
    seg.resize(100, 0);
    for k in 0..2000u32 {
        p.push((
            2 + u64::from(k),
            frame(c, SERVER, 1001 + (2 * k + 1) * 100, 5001, PSH | ACK, &seg),
        ));
    }
    let a = analyze(&cfg, &pcap(&p));
    let f = &a.flows[0];
    assert_eq!(f.limits_hit(), ["max-flow-buffer"]);
    assert!(f.judgement.warnings.iter().any(|w| w.contains("reassembly buffer cap hit")));
    assert_eq!(a.inputs[0].limits.max_flow_buffer, 1);
    assert!(a.inputs[0].warnings.iter().any(|w| w.contains("--max-flow-buffer 4096")));
    assert_eq!(doc(&a)["flows"][0]["limits_hit"], serde_json::json!(["max-flow-buffer"]));
}

fn hs(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 0, (body.len() >> 8) as u8, body.len() as u8];
    v.extend_from_slice(body);
    v
}

fn rec(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
    v.extend_from_slice(body);
    v
}

fn hello(t: u8, random: &[u8; 32], sid: &[u8]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(random);
    b.push(sid.len() as u8);
    b.extend_from_slice(sid);
    if t == 1 {
        b.extend_from_slice(&[0, 2, 0xc0, 0x2f, 1, 0]);
    } else {
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
    }
    b.extend_from_slice(&[0, 5, 0xff, 1, 0, 1, 0]);
    hs(t, &b)
}

/// `n` closed TLS 1.2 flows, 100 us apart: even ones full handshakes giving out a fresh session
/// id, odd ones resuming an id no handshake gave out (what bench/gen-adversarial.py writes).
fn resumptions(n: u32) -> Vec<u8> {
    let mut p = Vec::new();
    let ccs = rec(20, &[1]);
    let fin = rec(22, &[0; 40]);
    for i in 0..n {
        let c = client(i);
        let t = u64::from(i) * 100;
        let (ci, si) = (i.wrapping_mul(7919), i.wrapping_mul(104_729));
        let sid: Vec<u8> = i.to_be_bytes().repeat(8);
        let random = [(i % 251) as u8; 32];
        let (ch, flight) = if i % 2 == 0 {
            let mut s = hello(2, &random, &sid);
            s.extend(hs(11, &[0, 0, 0]));
            s.extend(hs(14, &[]));
            (rec(22, &hello(1, &random, &[])), [rec(22, &s), ccs.clone(), fin.clone()].concat())
        } else {
            (
                rec(22, &hello(1, &random, &sid)),
                [rec(22, &hello(2, &random, &sid)), ccs.clone(), fin.clone()].concat(),
            )
        };
        let cf = [ccs.clone(), fin.clone()].concat();
        let (mut cs, mut ss) = (ci + 1, si + 1);
        p.push((t, frame(c, SERVER, ci, 0, SYN, b"")));
        p.push((t + 1, frame(SERVER, c, si, cs, SYN | ACK, b"")));
        p.push((t + 2, frame(c, SERVER, cs, ss, PSH | ACK, &ch)));
        cs += ch.len() as u32;
        p.push((t + 3, frame(SERVER, c, ss, cs, PSH | ACK, &flight)));
        ss += flight.len() as u32;
        p.push((t + 4, frame(c, SERVER, cs, ss, PSH | ACK, &cf)));
        cs += cf.len() as u32;
        p.push((t + 5, frame(c, SERVER, cs, ss, FIN | ACK, b"")));
        p.push((t + 6, frame(SERVER, c, ss, cs + 1, FIN | ACK, b"")));
    }
    pcap(&p)
}

#[test]
fn resumption_linker_state_stays_under_its_caps_and_says_so() {
    let limits = LinkLimits { max_sessions: 100, max_waiting: 50 };
    let mut cfg = EngineConfig { link: limits, ..EngineConfig::default() };
    cfg.flow.max_flows = 10_000;
    let n = 2000u32;
    let capture = resumptions(n);
    // The linker, step by step.
    let mut linker = Linker::new(limits);
    let mut out: Vec<AnalyzedFlow> = Vec::new();
    let report = analyze_stream(0, "gen.pcap", &capture[..], &cfg, &mut |_, _| {}, &mut |f| {
        linker.push(f, &mut |f| out.push(f));
        assert!(linker.sessions() <= 100, "{} sessions", linker.sessions());
        assert!(linker.waiting() <= 50, "{} waiting", linker.waiting());
    });
    linker.finish(&mut |f| out.push(f));
    assert_eq!(out.len(), n as usize, "no flow is lost");
    assert_eq!(linker.counters(), (900, 950), "(forgotten, not held back)");
    assert_eq!(
        (report.limits.max_flows, report.limits.max_flow_buffer),
        (0, 0),
        "only the linker's caps"
    );
    let resumed = out.iter().filter(|f| f.session.resumes.len() == 1).count();
    assert_eq!(resumed, 1000, "the generator's odd flows resume");

    // The report of the same run through the batch driver.
    let a = analyze(&cfg, &capture);
    let input = &a.inputs[0];
    assert_eq!((input.limits.max_sessions, input.limits.max_resumed_waiting), (900, 950));
    assert!(
        input.warnings.iter().any(|w| w.contains("--max-sessions 100")),
        "{:?}",
        input.warnings
    );
    assert!(input.warnings.iter().any(|w| w.contains("--max-resumed-waiting 50")));
    let d = doc(&a);
    assert_eq!(d["summary"]["limits_hit"]["max_resumed_waiting"], 950);
    let flagged: Vec<&AnalyzedFlow> =
        a.flows.iter().filter(|f| f.limits_hit() == ["max-resumed-waiting"]).collect();
    assert_eq!(flagged.len(), 950);
    assert!(flagged[0].judgement.warnings.iter().any(|w| w.contains("--max-resumed-waiting")));
}
