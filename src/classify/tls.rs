//! TLS record and handshake analysis of one flow's two byte streams.
//!
//! ```text
//!  feed(dir, bytes) ─▶ record (boundaries, counts, sizes) ─▶ handshake (reassembly, messages)
//!                                   │                                 │
//!                                   └──────────▶ TlsFacts ◀───────────┘ ──▶ verdict::tls::judge
//! ```
//!
//! Everything a verdict needs is read from the wire in the clear: TLS <= 1.2 shows the whole
//! handshake until ChangeCipherSpec; TLS 1.3 shows the hellos, and the sizes of the client's
//! encrypted records tell whether it sent a certificate (see [`flight`]). With a key log, the
//! TLS 1.3 handshake itself is decrypted as its records arrive (see [`decrypt`]).
//!
//! Any chunking gives the same facts; buffers are bounded by [`Limits::max_buffer`]; no input
//! can make it panic. Feed both directions in capture order: cross-direction facts (which
//! record came after which) use the order of the calls.

mod decrypt;
mod facts;
mod flight;
mod handshake;
mod hello;
mod record;

#[cfg(test)]
pub(super) mod tests;

pub use decrypt::{hkdf_expand_label, Aead, Hash, RecordKey};
pub use facts::*;
pub use flight::{read_flight, FLIGHT_RECORDS, MIN_CERT_FLIGHT};
pub use hello::{tls13_suite_sizes, HRR_RANDOM};
pub use record::MAX_RECORD_LEN;

use handshake::Ctx;
use record::DirState;

use super::{Limits, Sniff};
use crate::common::{Dir, Timestamp};
use crate::keylog::KeyLog;
use std::sync::Arc;

/// Certificates kept for interning, per thread; the table starts over when full.
const INTERNED_CERTS: usize = 1024;

thread_local! {
    static CERTS: std::cell::RefCell<rustc_hash::FxHashMap<u64, Arc<[u8]>>> =
        std::cell::RefCell::default();
}

/// One shared copy of a certificate's DER for every flow that sends it: in a cluster the same
/// few certificates are sent again and again, and each open TLS flow would otherwise hold its
/// own copies until it ends.
pub(crate) fn intern_cert(der: &[u8]) -> Arc<[u8]> {
    use std::hash::BuildHasher;
    let key = rustc_hash::FxBuildHasher.hash_one(der);
    CERTS.with_borrow_mut(|certs| {
        if let Some(hit) = certs.get(&key).filter(|c| ***c == *der) {
            return hit.clone();
        }
        if certs.len() >= INTERNED_CERTS {
            certs.clear();
        }
        let cert: Arc<[u8]> = Arc::from(der);
        certs.insert(key, cert.clone());
        cert
    })
}

/// Does a direction's stream start with TLS? Looks at up to 6 bytes: a record header
/// (content type 20..=24, version 3.0..=3.4, length <= 2^14+2048) whose first byte of body
/// makes sense for its type, or an SSL 2.0-compatible ClientHello header.
pub fn sniff(first_bytes: &[u8]) -> Sniff {
    let b = first_bytes;
    let Some(&t) = b.first() else {
        return Sniff::NeedMore;
    };
    if t & 0x80 != 0 {
        return sniff_sslv2(b);
    }
    if !(20..=24).contains(&t) {
        return Sniff::No;
    }
    let Some(&major) = b.get(1) else {
        return Sniff::NeedMore;
    };
    if major != 3 {
        return Sniff::No;
    }
    let Some(&minor) = b.get(2) else {
        return Sniff::NeedMore;
    };
    if minor > 4 {
        return Sniff::No;
    }
    let Some(len) = b.get(3..5).map(|l| u16::from_be_bytes([l[0], l[1]])) else {
        return Sniff::NeedMore;
    };
    let plausible = match t {
        20 => len == 1,
        21 => len >= 2,
        // Handshake messages may be split over records of any size, even one byte each.
        22 => len >= 1,
        24 => len >= 3,
        _ => true,
    };
    // A hello whose record claims more than TLS allows is still TLS, damaged: the analyzer
    // reports the bad length instead of the flow passing for unknown cleartext.
    if len > MAX_RECORD_LEN {
        return match (t, b.get(5)) {
            (22, None) => Sniff::NeedMore,
            (22, Some(1 | 2)) => Sniff::Yes,
            _ => Sniff::No,
        };
    }
    if !plausible {
        return Sniff::No;
    }
    if t != 22 {
        return Sniff::Yes;
    }
    // A direction's first handshake record starts with a hello (or, when the capture began
    // mid-handshake, another cleartext message); encrypted ones start with anything.
    match b.get(5) {
        None => Sniff::NeedMore,
        Some(0..=2 | 4 | 11..=16 | 22) => Sniff::Yes,
        Some(_) => Sniff::No,
    }
}

/// SSL 2.0 header with the top bit set: length, msg_type 1 (CLIENT-HELLO), version 3.x or 2.0.
fn sniff_sslv2(b: &[u8]) -> Sniff {
    if b.len() < 5 {
        let bad = b.get(2).is_some_and(|&m| m != 1) || b.get(3).is_some_and(|&v| v > 3 || v == 1);
        return if bad { Sniff::No } else { Sniff::NeedMore };
    }
    let len = u16::from_be_bytes([b[0] & 0x7f, b[1]]);
    let version_ok = (b[3] == 3 && b[4] <= 4) || (b[3] == 0 && b[4] == 2);
    if b[2] == 1 && version_ok && len >= 9 {
        Sniff::Yes
    } else {
        Sniff::No
    }
}

/// Three outcomes for parsing a ClientHello from the start of a client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek<T> {
    Done(T),
    No(NotClientHello),
    NeedMore,
}

/// Why a stream does not start with a ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotClientHello {
    NotTls,
    /// The first record is not a handshake record.
    NotHandshake(u8),
    /// The first handshake message is another type.
    OtherMessage(HandshakeType),
    /// Another record type arrived before the ClientHello was complete.
    Interrupted,
    /// The ClientHello is longer than the limit given.
    TooLong,
}

/// Parses the ClientHello at the start of a client stream, across as many records as it
/// spans; allocates only what the input holds (at most `max_len` bytes of message).
pub fn peek_client_hello(stream: &[u8], max_len: usize) -> Peek<ClientHelloFacts> {
    match sniff(stream) {
        Sniff::No => return Peek::No(NotClientHello::NotTls),
        Sniff::NeedMore => return Peek::NeedMore,
        Sniff::Yes => {}
    }
    if stream[0] & 0x80 != 0 {
        let len = usize::from(u16::from_be_bytes([stream[0] & 0x7f, stream[1]]));
        return match stream.get(2..2 + len) {
            Some(body) => hello::parse_sslv2_client_hello(body)
                .map_or(Peek::No(NotClientHello::NotTls), Peek::Done),
            None => Peek::NeedMore,
        };
    }
    let mut msg: Vec<u8> = Vec::new();
    let mut rest = stream;
    loop {
        let Some(h) = rest.get(..5) else {
            return Peek::NeedMore;
        };
        if h[0] != 22 {
            return Peek::No(if msg.is_empty() {
                NotClientHello::NotHandshake(h[0])
            } else {
                NotClientHello::Interrupted
            });
        }
        if h[1] != 3 || h[2] > 4 || u16::from_be_bytes([h[3], h[4]]) > MAX_RECORD_LEN {
            return Peek::No(NotClientHello::NotTls);
        }
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let body = &rest[5..];
        let avail = &body[..body.len().min(len)];
        msg.extend_from_slice(avail);
        if let Some(&t) = msg.first() {
            if t != 1 {
                return Peek::No(NotClientHello::OtherMessage(HandshakeType(t)));
            }
        }
        if msg.len() >= 4 {
            let need = 4 + u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
            if need > max_len {
                return Peek::No(NotClientHello::TooLong);
            }
            if msg.len() >= need {
                return Peek::Done(hello::parse_client_hello(&msg[4..need]));
            }
        }
        if avail.len() < len {
            return Peek::NeedMore;
        }
        rest = &body[len..];
    }
}

fn ctx<'a>(
    facts: &TlsFacts,
    limits: Limits,
    keylog: Option<&'a KeyLog>,
    dir: Dir,
    ts: Timestamp,
) -> Ctx<'a> {
    let peer = facts.dir(dir.flip());
    Ctx { dir, ts, limits, peer_bytes: peer.bytes + peer.gap_bytes, keylog }
}

/// Follows both directions of one flow and keeps [`TlsFacts`].
#[derive(Debug)]
pub struct TlsAnalyzer {
    limits: Limits,
    /// Boxed from the start: the flow's classification takes the box as it is when the flow
    /// finishes, with no copy of its kilobyte or so.
    facts: Box<TlsFacts>,
    /// Indexed by `Dir::index()`.
    dirs: [DirState; 2],
    /// Secrets for TLS 1.3 handshake decryption (see `decrypt`).
    keylog: Option<Arc<KeyLog>>,
}

impl TlsAnalyzer {
    pub fn new(limits: Limits) -> Self {
        TlsAnalyzer {
            limits,
            facts: Box::default(),
            dirs: [DirState::new(), DirState::new()],
            keylog: None,
        }
    }

    /// Decrypt TLS 1.3 handshakes whose client random is in this key log.
    pub fn with_keylog(mut self, keylog: Option<Arc<KeyLog>>) -> Self {
        self.keylog = keylog;
        self
    }

    /// In-order stream bytes of one direction, in any chunking.
    pub fn feed(&mut self, dir: Dir, data: &[u8], ts: Timestamp) {
        let cx = ctx(&self.facts, self.limits, self.keylog.as_deref(), dir, ts);
        self.facts.dir_mut(dir).bytes += data.len() as u64;
        self.dirs[dir.index()].feed(&mut self.facts, &cx, data);
    }

    /// `len` bytes of `dir` were lost (a capture gap) before the next `feed`.
    pub fn gap(&mut self, dir: Dir, len: u64) {
        let ts = self.facts.dir(dir).last_record.unwrap_or_default();
        let cx = ctx(&self.facts, self.limits, self.keylog.as_deref(), dir, ts);
        let st = &mut self.dirs[dir.index()];
        st.gap(&mut self.facts, dir, len);
        st.finish_if_empty(&mut self.facts, &cx);
    }

    /// True while the verdict still depends on in-order bytes of either direction.
    pub fn wants_bytes(&self) -> bool {
        if self.facts.alerts.iter().any(Alert::is_fatal) {
            return false;
        }
        !(self.settled(Dir::ToServer) && self.settled(Dir::ToClient))
    }

    fn settled(&self, dir: Dir) -> bool {
        let st = &self.dirs[dir.index()];
        let f = &self.facts;
        let d = f.dir(dir);
        if st.dead
            || d.gap_in_handshake
            || matches!(d.start, StreamStart::MidStream | StreamStart::UnexpectedHandshake(_))
        {
            return true;
        }
        // Decryption still reading this direction's handshake (or the server's tickets).
        if st.dec.active() {
            return false;
        }
        match f.version() {
            Some(Version::TLS13) if f.server_hello.is_some() => match dir {
                Dir::ToServer => self.client_flight_settled(),
                Dir::ToClient => self.client_flight_settled() && self.server_answered_flight(),
            },
            // TLS <= 1.2: settled once a record follows this side's ChangeCipherSpec (Finished).
            Some(_) => st.dark && !d.encrypted_records.is_empty(),
            None => false,
        }
    }

    fn client_flight_settled(&self) -> bool {
        let recs = &self.facts.client.encrypted_records;
        let n = recs.iter().filter(|r| r.content_type.0 == 23).count();
        let fin = self.facts.finished_record_len;
        n >= FLIGHT_RECORDS || fin.is_some_and(|f| recs.iter().any(|r| r.len == f))
    }

    /// The server sent a record after the client's last flight record, or its log is full.
    fn server_answered_flight(&self) -> bool {
        let f = &self.facts;
        let flight = f.tls13_client_flight.map_or(0, |fl| usize::from(fl.records));
        let Some(last) = f.client.encrypted_records.get(flight.max(1) - 1) else {
            return false;
        };
        let end = last.offset + 5 + u64::from(last.len);
        f.server.encrypted_records.len() >= MAX_ENCRYPTED_RECORDS
            || f.server.encrypted_records.iter().any(|r| r.peer_bytes >= end)
    }

    /// Bytes held right now (both directions).
    pub fn buffered(&self) -> usize {
        self.dirs.iter().map(DirState::buffered).sum()
    }

    pub fn facts(&self) -> &TlsFacts {
        &self.facts
    }

    /// The facts, without the parser state.
    pub fn into_facts(self) -> Box<TlsFacts> {
        self.facts
    }
}
