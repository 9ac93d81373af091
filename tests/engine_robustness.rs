//! The whole pipeline on hostile traffic: well-formed TCP/IP carrying random payloads, random
//! flags and sequence numbers (so every classifier and the reassembler see garbage), plus
//! payloads that start like TLS, HTTP and HTTP/2 and then turn to noise. Nothing may panic,
//! every flow gets a verdict with evidence, and the JSON stays valid.

use mtlscope::analyze::{analyze_reader, Analysis};
use mtlscope::engine::EngineConfig;
use mtlscope::report::json;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PREFIXES: &[&[u8]] = &[
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03",
    b"\x17\x03\x03\x00\x35",
    b"\x14\x03\x03\x00\x01\x01",
    b"\x15\x03\x03\x00\x02\x02\x28",
    b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
    b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
    b"SSH-2.0-x\r\n",
    b"",
];

fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        f.extend_from_slice(&(i as u32 / 100).to_le_bytes());
        f.extend_from_slice(&((i as u32 % 100) * 1000).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let client = rng.below(2) == 0;
    let port = 40000 + rng.below(6) as u16;
    let (src, dst, sp, dp) = if client {
        ([10, 0, 0, 1], [10, 0, 0, 2], port, 443)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 443, port)
    };
    let mut payload = PREFIXES[rng.below(PREFIXES.len() as u64) as usize].to_vec();
    let extra = rng.below(300) as usize;
    payload.extend((0..extra).map(|_| rng.next() as u8));
    let seq = if rng.below(4) == 0 { rng.next() as u32 } else { 1000 + rng.below(4000) as u32 };
    let mut b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, seq, 1000)
        .ack(rng.next() as u32);
    let flags = rng.below(16);
    if flags & 1 != 0 {
        b = b.syn();
    }
    if flags & 2 != 0 {
        b = b.fin();
    }
    if flags & 4 != 0 && rng.below(4) == 0 {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, &payload).expect("packet builds");
    out
}

#[test]
fn random_traffic_never_panics_and_every_flow_has_evidence() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let packets: Vec<Vec<u8>> = (0..400).map(|_| random_packet(&mut rng)).collect();
        let file = pcap(&packets);
        let mut analysis = Analysis::default();
        let cfg = EngineConfig::default();
        analyze_reader(&mut analysis, "random", file.as_slice(), &cfg, &mut |_, _| {});
        assert_eq!(analysis.inputs[0].stats.packets, 400, "seed {seed}");
        assert!(!analysis.flows.is_empty(), "seed {seed}");
        for f in &analysis.flows {
            assert!(!f.judgement.evidence.is_empty(), "seed {seed}: {:?}", f.judgement);
        }
        let doc = serde_json::to_value(json::document(&analysis)).expect("serializes");
        assert_eq!(doc["summary"]["flows"], analysis.flows.len(), "seed {seed}");
    }
}
