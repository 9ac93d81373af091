//! The malformed-capture corpus, derived from the real fixtures on every run (no hand-edited
//! binaries): each case damages one fixture in one way and says what the analysis must still
//! deliver. `tests/malformed.rs` runs every case through the binary.

use mtlscope::decode::{self, DecodeConfig, Decoded, LinkType};
use std::collections::BTreeSet;
use std::path::Path;

/// An unordered pair of endpoints, as `ip:port` strings.
pub type FlowKey = (String, String);

/// What a damaged file must give.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Exit 2 with an error naming the file and a byte offset.
    Fatal,
    /// Exit 0, a warning containing `warning` (none expected for hostile but valid input),
    /// and the flows `keep` says.
    Partial { warning: Option<&'static str>, keep: Keep },
}

#[derive(Debug, Clone)]
pub enum Keep {
    /// Every flow of the undamaged fixture, with the same verdict.
    All,
    /// At least every flow that had a packet before the damage.
    Before(BTreeSet<FlowKey>),
    /// No flow (nothing could be decoded).
    Nothing,
    /// At least one flow, and no more than the fixture has.
    Some,
}

pub struct Case {
    pub name: String,
    pub fixture: &'static str,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

const HEADER: usize = 24;
const REC: usize = 16;

/// A little-endian classic pcap, record by record.
#[derive(Clone)]
pub struct Pcap {
    pub header: [u8; HEADER],
    pub records: Vec<Record>,
}

#[derive(Clone)]
pub struct Record {
    pub ts_sec: u32,
    pub ts_frac: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
    /// Written as the record's caplen instead of `data.len()` when set.
    pub caplen: Option<u32>,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl Pcap {
    pub fn parse(bytes: &[u8]) -> Pcap {
        assert_eq!(le32(bytes, 0) & 0xffff_0000, 0xa1b2_0000, "little-endian pcap");
        let header: [u8; HEADER] = bytes[..HEADER].try_into().expect("header");
        let mut records = Vec::new();
        let mut pos = HEADER;
        while pos + REC <= bytes.len() {
            let caplen = le32(bytes, pos + 8) as usize;
            records.push(Record {
                ts_sec: le32(bytes, pos),
                ts_frac: le32(bytes, pos + 4),
                orig_len: le32(bytes, pos + 12),
                data: bytes[pos + REC..pos + REC + caplen].to_vec(),
                caplen: None,
            });
            pos += REC + caplen;
        }
        Pcap { header, records }
    }

    pub fn link(&self) -> LinkType {
        LinkType(le32(&self.header, 20) as u16)
    }

    pub fn write(&self) -> Vec<u8> {
        let mut out = self.header.to_vec();
        for r in &self.records {
            out.extend_from_slice(&r.ts_sec.to_le_bytes());
            out.extend_from_slice(&r.ts_frac.to_le_bytes());
            let caplen = r.caplen.unwrap_or(r.data.len() as u32);
            out.extend_from_slice(&caplen.to_le_bytes());
            out.extend_from_slice(&r.orig_len.to_le_bytes());
            out.extend_from_slice(&r.data);
        }
        out
    }

    /// Byte offset of record `k` in [`Pcap::write`]'s output.
    pub fn offset_of(&self, k: usize) -> usize {
        HEADER + self.records[..k].iter().map(|r| REC + r.data.len()).sum::<usize>()
    }

    /// The flows that have a packet among the first `k` records.
    pub fn flows_before(&self, k: usize) -> BTreeSet<FlowKey> {
        let cfg = DecodeConfig::default();
        let mut out = BTreeSet::new();
        for r in &self.records[..k] {
            if let Ok(Decoded::Tcp(t)) = decode::decode(self.link(), &r.data, &cfg) {
                let a = format!("{}:{}", t.src, t.src_port);
                let b = format!("{}:{}", t.dst, t.dst_port);
                out.insert(if a < b { (a, b) } else { (b, a) });
            }
        }
        out
    }
}

/// Where the IPv4 and TCP headers and the payload of an untagged Ethernet IPv4 TCP frame are.
#[derive(Debug, Clone, Copy)]
pub struct Tcp4 {
    pub ip: usize,
    pub tcp: usize,
    pub payload: usize,
}

pub fn tcp4(frame: &[u8]) -> Option<Tcp4> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
        return None;
    }
    let ip = 14;
    let tcp = ip + usize::from(frame[ip] & 0x0f) * 4;
    let payload = tcp + usize::from(frame.get(tcp + 12)? >> 4) * 4;
    (payload <= frame.len()).then_some(Tcp4 { ip, tcp, payload })
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// An Ethernet IPv4 TCP frame like `template`, carrying `payload` at sequence number `seq`.
fn reframe(template: &[u8], at: Tcp4, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = template[..at.payload].to_vec();
    f.extend_from_slice(payload);
    let total = (f.len() - at.ip) as u16;
    f[at.ip + 2..at.ip + 4].copy_from_slice(&total.to_be_bytes());
    put_be32(&mut f, at.tcp + 4, seq);
    f
}

/// Replaces the client payload of record `k` (an Ethernet IPv4 TCP frame) with `pieces`, one
/// frame each, and shifts the client's later sequence numbers and the server's
/// acknowledgements so that the rest of the flow still lines up.
fn replace_payload(p: &mut Pcap, k: usize, pieces: &[Vec<u8>]) {
    let template = p.records[k].data.clone();
    let at = tcp4(&template).expect("an Ethernet IPv4 TCP frame");
    let old_len = (template.len() - at.payload) as u32;
    let new_len: u32 = pieces.iter().map(|x| x.len() as u32).sum();
    let delta = new_len.wrapping_sub(old_len);
    let seq0 = be32(&template, at.tcp + 4);
    let client = template[at.tcp..at.tcp + 2].to_vec();
    let mut seq = seq0;
    let base = p.records[k].clone();
    let frames: Vec<Record> = pieces
        .iter()
        .map(|piece| {
            let data = reframe(&template, at, seq, piece);
            seq = seq.wrapping_add(piece.len() as u32);
            Record { orig_len: data.len() as u32, data, caplen: None, ..base.clone() }
        })
        .collect();
    let after = seq0.wrapping_add(old_len);
    for r in &mut p.records[k + 1..] {
        let Some(t) = tcp4(&r.data) else { continue };
        let from_client = r.data[t.tcp..t.tcp + 2] == client[..];
        let field = if from_client { t.tcp + 4 } else { t.tcp + 8 };
        let v = be32(&r.data, field);
        if (v.wrapping_sub(after) as i32) >= 0 {
            put_be32(&mut r.data, field, v.wrapping_add(delta));
        }
    }
    p.records.splice(k..=k, frames);
}

/// The first record from the client with a payload that starts with `prefix`.
fn first_payload(p: &Pcap, prefix: &[u8]) -> usize {
    p.records
        .iter()
        .position(|r| tcp4(&r.data).is_some_and(|t| r.data[t.payload..].starts_with(prefix)))
        .expect("a payload with that prefix")
}

pub fn load(fixtures: &Path, name: &str) -> Vec<u8> {
    std::fs::read(fixtures.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every malformed case, derived from the fixtures in `fixtures`.
pub fn corpus(fixtures: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for name in ["tls13_mutual_veth.pcap", "mixed_any_sll2.pcap", "http1_veth.pcap"] {
        file_level(&mut cases, name, &load(fixtures, name));
    }
    for name in ["multi_iface.pcapng", "tls13_injected_secrets.pcapng"] {
        pcapng_level(&mut cases, name, &load(fixtures, name));
    }
    packet_level(&mut cases, fixtures);
    tls_level(&mut cases, fixtures);
    cases
}

fn case(cases: &mut Vec<Case>, fixture: &'static str, what: &str, bytes: Vec<u8>, e: Expect) {
    let stem = fixture.split('.').next().unwrap_or(fixture);
    cases.push(Case { name: format!("{stem}-{what}"), fixture, bytes, expect: e });
}

fn partial(warning: &'static str, keep: Keep) -> Expect {
    Expect::Partial { warning: Some(warning), keep }
}

fn valid(keep: Keep) -> Expect {
    Expect::Partial { warning: None, keep }
}

/// Damage to the file structure of a classic pcap.
fn file_level(cases: &mut Vec<Case>, fixture: &'static str, bytes: &[u8]) {
    let p = Pcap::parse(bytes);
    let n = p.records.len();
    let k = n / 2;
    let at = p.offset_of(k);
    for cut in [0, 4, 10, 23] {
        case(cases, fixture, &format!("header-cut-{cut}"), bytes[..cut].to_vec(), Expect::Fatal);
    }
    let before = || Keep::Before(p.flows_before(k));
    let cut = |len: usize| bytes[..len].to_vec();
    case(cases, fixture, "record-header-cut", cut(at + 8), partial("truncated at byte", before()));
    let mid = at + REC + p.records[k].data.len() / 2;
    case(cases, fixture, "mid-packet-cut", cut(mid), partial("truncated at byte", before()));
    case(cases, fixture, "data-cut", cut(at + REC), partial("truncated at byte", before()));
    let mut b = bytes.to_vec();
    b[..4].copy_from_slice(b"\x00\x11\x22\x33");
    case(cases, fixture, "wrong-magic", b, Expect::Fatal);
    let mut b = bytes.to_vec();
    b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    case(cases, fixture, "snaplen-absurd", b, partial("snaplen", Keep::All));

    let mut q = p.clone();
    for r in &mut q.records {
        r.orig_len = (r.data.len() as u32).saturating_sub(1);
    }
    case(cases, fixture, "caplen-over-len", q.write(), partial("caplen > len", Keep::All));
    let mut q = p.clone();
    q.records[k].caplen = Some(0x7fff_ffff);
    case(cases, fixture, "caplen-absurd", q.write(), partial("corrupt capture at byte", before()));
    let mut q = p.clone();
    q.records[n - 1].caplen = Some(60_000);
    let last = Keep::Before(p.flows_before(n - 1));
    case(cases, fixture, "caplen-past-end", q.write(), partial("truncated at byte", last));

    let mut q = p.clone();
    q.records = p
        .records
        .iter()
        .flat_map(|r| [Record { data: Vec::new(), orig_len: 0, ..r.clone() }, r.clone()])
        .collect();
    case(
        cases,
        fixture,
        "zero-length-packets",
        q.write(),
        partial("could not be decoded", Keep::All),
    );
    let mut q = p.clone();
    let times: Vec<(u32, u32)> = p.records.iter().rev().map(|r| (r.ts_sec, r.ts_frac)).collect();
    for (r, (s, f)) in q.records.iter_mut().zip(times) {
        (r.ts_sec, r.ts_frac) = (s, f);
    }
    case(
        cases,
        fixture,
        "timestamps-backwards",
        q.write(),
        partial("timestamps earlier", Keep::Some),
    );
    let mut b = bytes.to_vec();
    b[20..24].copy_from_slice(&147u32.to_le_bytes());
    case(
        cases,
        fixture,
        "unknown-link-type",
        b,
        partial("unsupported link type 147", Keep::Nothing),
    );
}

/// Damage to pcapng blocks: cuts inside a block, an absurd block length, wrong magic.
fn pcapng_level(cases: &mut Vec<Case>, fixture: &'static str, bytes: &[u8]) {
    let mut blocks = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        blocks.push(pos);
        pos += le32(bytes, pos + 4) as usize;
    }
    // An Enhanced Packet Block in the middle.
    let epbs: Vec<usize> = blocks.iter().copied().filter(|&b| le32(bytes, b) == 6).collect();
    let at = epbs[epbs.len() / 2];
    let keep = || Keep::Some;
    for cut in [0, 10, 27] {
        case(cases, fixture, &format!("header-cut-{cut}"), bytes[..cut].to_vec(), Expect::Fatal);
    }
    case(cases, fixture, "block-cut", bytes[..at + 20].to_vec(), partial("truncated", keep()));
    let mut b = bytes.to_vec();
    b[at + 4..at + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    case(cases, fixture, "block-length-absurd", b, partial("at byte", keep()));
    let mut b = bytes.to_vec();
    b[at + 8..at + 12].copy_from_slice(&99u32.to_le_bytes());
    case(cases, fixture, "unknown-interface", b, partial("names interface 99", keep()));
    let mut b = bytes.to_vec();
    b[..4].copy_from_slice(b"\x0a\x0d\x0d\x0b");
    case(cases, fixture, "wrong-magic", b, Expect::Fatal);
}

/// Lies in IP and TCP headers, on every client packet that carries data.
fn packet_level(cases: &mut Vec<Case>, fixtures: &Path) {
    const F: &str = "http1_veth.pcap";
    let p = Pcap::parse(&load(fixtures, F));
    let edit = |f: &dyn Fn(&mut Vec<u8>, Tcp4)| {
        let mut q = p.clone();
        for r in &mut q.records {
            if let Some(t) = tcp4(&r.data).filter(|t| t.payload < r.data.len()) {
                f(&mut r.data, t);
            }
        }
        q.write()
    };
    let b = edit(&|d, t| d[t.ip + 2..t.ip + 4].copy_from_slice(&0xffffu16.to_be_bytes()));
    case(cases, F, "ip-total-length-too-long", b, partial("length", Keep::All));
    let b = edit(&|d, t| d[t.ip + 2..t.ip + 4].copy_from_slice(&24u16.to_be_bytes()));
    case(cases, F, "ip-total-length-too-short", b, partial("malformed tcp header", Keep::Some));
    let b = edit(&|d, t| d[t.tcp + 12] = (d[t.tcp + 12] & 0x0f) | 0xf0);
    case(cases, F, "tcp-data-offset-too-long", b, partial("TCP options", Keep::Some));
    let b = edit(&|d, t| d[t.tcp + 12] = (d[t.tcp + 12] & 0x0f) | 0x20);
    case(cases, F, "tcp-data-offset-below-5", b, partial("malformed tcp header", Keep::Some));
}

/// Lies inside TLS records, a ClientHello in 10,000 fragments, a 1 MB HTTP request line.
fn tls_level(cases: &mut Vec<Case>, fixtures: &Path) {
    const T: &str = "tls12_mutual_veth.pcap";
    let p = Pcap::parse(&load(fixtures, T));
    let k = first_payload(&p, b"\x16\x03");
    let t = tcp4(&p.records[k].data).expect("tcp");
    let mut q = p.clone();
    q.records[k].data[t.payload + 3..t.payload + 5].copy_from_slice(&0xffffu16.to_be_bytes());
    case(cases, T, "tls-record-over-max", q.write(), partial("record length 65535", Keep::Some));
    let mut q = p.clone();
    q.records[k].data[t.payload + 6..t.payload + 9].copy_from_slice(&[0xff, 0xff, 0xff]);
    case(
        cases,
        T,
        "tls-handshake-overflows-record",
        q.write(),
        partial("over the buffer cap", Keep::Some),
    );

    const C: &str = "tls13_mutual_veth.pcap";
    let p = Pcap::parse(&load(fixtures, C));
    let k = first_payload(&p, b"\x16\x03");
    let t = tcp4(&p.records[k].data).expect("tcp");
    let record = &p.records[k].data[t.payload..];
    let hello = padded_client_hello(record, 10_000);
    let version = [record[1], record[2]];
    let pieces: Vec<Vec<u8>> = hello
        .chunks(1)
        .map(|frag| {
            let mut r = vec![22, version[0], version[1]];
            r.extend_from_slice(&(frag.len() as u16).to_be_bytes());
            r.extend_from_slice(frag);
            r
        })
        .collect();
    assert_eq!(pieces.len(), 10_000);
    let mut q = p.clone();
    replace_payload(&mut q, k, &pieces);
    case(cases, C, "client-hello-10000-fragments", q.write(), valid(Keep::All));

    const H: &str = "http1_veth.pcap";
    let p = Pcap::parse(&load(fixtures, H));
    let k = first_payload(&p, b"GET ");
    let t = tcp4(&p.records[k].data).expect("tcp");
    let old = &p.records[k].data[t.payload..];
    let line_end = old.windows(2).position(|w| w == b"\r\n").expect("request line");
    let mut req = b"GET /".to_vec();
    req.resize(1024 * 1024, b'a');
    req.extend_from_slice(b" HTTP/1.1");
    req.extend_from_slice(&old[line_end..]);
    let pieces: Vec<Vec<u8>> = req.chunks(1448).map(<[u8]>::to_vec).collect();
    let mut q = p.clone();
    replace_payload(&mut q, k, &pieces);
    case(cases, H, "http-request-line-1mb", q.write(), valid(Keep::All));
}

/// The ClientHello handshake message of `record` (one whole TLS record), grown with a padding
/// extension (type 21) to at least `min_len` bytes.
fn padded_client_hello(record: &[u8], min_len: usize) -> Vec<u8> {
    let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
    let msg = &record[5..5 + len];
    assert_eq!(msg[0], 1, "a ClientHello");
    let body = &msg[4..];
    // version(2) random(32) session_id cipher_suites compression_methods extensions
    let mut at = 34;
    at += 1 + usize::from(body[at]);
    at += 2 + usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    at += 1 + usize::from(body[at]);
    let ext_len = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    let pad = min_len.saturating_sub(4 + body.len() + 4);
    let mut exts = body[at + 2..at + 2 + ext_len].to_vec();
    // Padding goes before pre_shared_key, which must stay last; these fixtures have none.
    exts.extend_from_slice(&21u16.to_be_bytes());
    exts.extend_from_slice(&(pad as u16).to_be_bytes());
    exts.resize(exts.len() + pad, 0);
    let mut new_body = body[..at].to_vec();
    new_body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    new_body.extend_from_slice(&exts);
    let mut out = vec![1];
    out.extend_from_slice(&(new_body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&new_body);
    out
}
