//! Tests on real OpenSSL byte streams (fixtures/streams/) and on hand-made bytes.

mod edge;
mod props;
mod vectors;

use super::*;
use crate::verdict::tls::judge;
use crate::verdict::{ClientCert, FlowContext, Judgement};

/// One direction's stream plus the order the recording relay read it in.
pub struct Vector {
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
    /// (direction, length) per read; `None` length = that side closed.
    pub chunks: Vec<(Dir, Option<usize>)>,
}

pub fn load(name: &str) -> Vector {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/streams/");
    let read = |ext: &str| {
        std::fs::read(format!("{dir}{name}.{ext}")).unwrap_or_else(|e| panic!("{name}.{ext}: {e}"))
    };
    let chunks = String::from_utf8(read("chunks"))
        .expect("chunks file is text")
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').expect("two words");
            let d = |s: &str| {
                if s == "c2s" {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                }
            };
            if a == "fin" {
                (d(b), None)
            } else {
                (d(a), Some(b.parse().expect("length")))
            }
        })
        .collect();
    Vector { c2s: read("c2s.bin"), s2c: read("s2c.bin"), chunks }
}

pub fn bytes_of(v: &Vector, dir: Dir) -> &[u8] {
    match dir {
        Dir::ToServer => &v.c2s,
        Dir::ToClient => &v.s2c,
    }
}

/// Replays the recorded interleaving, one feed per relay read, time advancing 1 ms per read.
pub fn replay(v: &Vector, limits: Limits) -> (TlsAnalyzer, FlowContext) {
    let mut a = TlsAnalyzer::new(limits);
    let mut ctx = FlowContext { syn_seen: true, ..Default::default() };
    let mut pos = [0usize; 2];
    for (i, &(dir, len)) in v.chunks.iter().enumerate() {
        match len {
            Some(n) => {
                let p = &mut pos[dir.index()];
                a.feed(dir, &bytes_of(v, dir)[*p..*p + n], Timestamp(i as i64 * 1_000_000));
                *p += n;
            }
            None => ctx.closed = true,
        }
    }
    (a, ctx)
}

pub fn judged(name: &str) -> (TlsAnalyzer, Judgement, ClientCert) {
    let v = load(name);
    let (a, ctx) = replay(&v, Limits::default());
    let (j, cc) = judge(a.facts(), &ctx);
    (a, j, cc)
}

pub const VECTORS: &[&str] = &[
    "tls13_server_auth",
    "tls13_mutual_ecdsa",
    "tls13_mutual_rsa",
    "tls13_mutual_ed25519",
    "tls13_empty_cert",
    "tls13_required_missing",
    "tls13_aes256_mutual",
    "tls13_ccm8_mutual",
    "tls13_hrr_mutual",
    "tls13_client_rejects_server",
    "tls13_psk_resumed",
    "tls12_server_auth",
    "tls12_mutual",
    "tls12_empty_cert",
    "tls12_required_missing",
    "tls12_client_rejects_server",
    "tls12_null_cipher",
    "tls12_session_id_resumed",
    "tls12_ticket_full",
    "tls12_ticket_resumed",
    "tls10_server_auth",
];

/// A record header and body.
pub fn record(ctype: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ctype, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A handshake message (type, u24 length, body).
pub fn hs_msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// The ClientHello message (handshake header + body) of a vector's client stream.
pub fn client_hello_msg(v: &Vector) -> Vec<u8> {
    let len = u16::from_be_bytes([v.c2s[3], v.c2s[4]]) as usize;
    v.c2s[5..5 + len].to_vec()
}

pub fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
