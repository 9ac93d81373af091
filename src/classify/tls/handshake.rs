//! Handshake messages in the clear: reassembly across records (a message may span many records,
//! a record may hold many messages) and what each message tells.
//!
//! The buffer holds at most one message and never grows past `Limits::max_buffer`: a message
//! announced bigger than that is listed, marked skipped, and its bytes are counted past.
//! Nothing is reserved from a length field; the buffer only grows with bytes that arrived.

use tls_parser::parse_tls_handshake_certificaterequest;

use super::facts::{
    fnv1a64, CertChain, CertRequestFacts, ClientHelloFacts, HandshakeMsg, HandshakeType,
    HelloRetryFacts, StreamError, StreamStart, TicketFacts, TlsFacts, TlsNote, Version, MAX_CERTS,
    MAX_CERT_BYTES, MAX_MESSAGES,
};
use super::flight::{read_flight, FLIGHT_RECORDS};
use super::hello::{self, parse_client_hello, parse_server_hello, tls13_suite_sizes};
use super::record::DirState;
use crate::classify::Limits;
use crate::common::{Dir, Timestamp};
use crate::keylog::KeyLog;

/// What a call into the record layer needs to know about the bytes it is handed.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub dir: Dir,
    pub ts: Timestamp,
    pub limits: Limits,
    /// Bytes the other direction had delivered so far.
    pub peer_bytes: u64,
    /// Secrets to decrypt the TLS 1.3 handshake with, when the run has a key log.
    pub keylog: Option<&'a KeyLog>,
}

/// Handshake reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Reassembly {
    buf: Vec<u8>,
    /// Bytes of an over-cap message still to count past.
    skip: u32,
    skip_type: u8,
    skip_len: u32,
    /// Still parsing cleartext handshake messages in this direction.
    pub active: bool,
}

impl Reassembly {
    pub fn new() -> Self {
        Reassembly { active: true, ..Default::default() }
    }

    /// Stops parsing and frees the buffer.
    pub fn stop(&mut self) {
        self.active = false;
        self.buf = Vec::new();
        self.skip = 0;
    }

    pub fn in_message(&self) -> bool {
        self.active && (!self.buf.is_empty() || self.skip > 0)
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends raw bytes up to `cap` in total; false once something did not fit.
    pub fn push_raw(&mut self, data: &[u8], cap: usize) -> bool {
        let room = cap.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        data.len() <= room
    }

    fn header(&self) -> Option<(u8, u32)> {
        message_header(&self.buf)
    }
}

/// A handshake message header at the start of `b`: its type and body length.
fn message_header(b: &[u8]) -> Option<(u8, u32)> {
    let h = b.get(..4)?;
    Some((h[0], u32::from_be_bytes([0, h[1], h[2], h[3]])))
}

/// Feeds cleartext handshake-record bytes.
pub fn push(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx, mut data: &[u8]) {
    while !data.is_empty() && st.hs.active {
        let hs = &mut st.hs;
        if hs.skip > 0 {
            let n = data.len().min(hs.skip as usize);
            hs.skip -= n as u32; // n <= skip
            data = &data[n..];
            continue;
        }
        // A whole message in the bytes at hand (the common case: a hello in one segment) is
        // read where it lies, not copied into the buffer first.
        if let Some((typ, total)) = whole_message(hs, data, cx.limits.max_buffer) {
            if !first_message_ok(st, facts, cx.dir, typ) {
                return;
            }
            process(st, facts, cx, typ, &data[4..total]);
            data = &data[total..];
            continue;
        }
        if hs.buf.len() < 4 {
            let n = (4 - hs.buf.len()).min(data.len());
            hs.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            let Some((typ, len)) = hs.header() else { break };
            if !first_message_ok(st, facts, cx.dir, typ) {
                return;
            }
            if 4 + len as usize > cx.limits.max_buffer {
                skip_message(st, facts, cx, typ, len);
                continue;
            }
        }
        let Some((typ, len)) = st.hs.header() else {
            break;
        };
        let total = 4 + len as usize;
        let n = (total - st.hs.buf.len()).min(data.len());
        st.hs.buf.extend_from_slice(&data[..n]);
        data = &data[n..];
        if st.hs.buf.len() == total {
            let msg = std::mem::take(&mut st.hs.buf);
            process(st, facts, cx, typ, &msg[4..]);
            if st.hs.active {
                st.hs.buf = msg;
                st.hs.buf.clear();
            }
        }
    }
    note_partial(st, facts, cx.dir);
}

/// The type and length (header included) of a message that starts `data` and lies wholly in
/// it, when nothing is buffered and the message is within the cap.
fn whole_message(hs: &Reassembly, data: &[u8], cap: usize) -> Option<(u8, usize)> {
    if !hs.buf.is_empty() {
        return None;
    }
    let (typ, len) = message_header(data)?;
    let total = 4 + len as usize;
    (total <= data.len() && total <= cap).then_some((typ, total))
}

fn note_partial(st: &DirState, facts: &mut TlsFacts, dir: Dir) {
    let hs = &st.hs;
    facts.dir_mut(dir).partial_message = if !hs.active {
        None
    } else if hs.skip > 0 {
        Some((HandshakeType(hs.skip_type), hs.skip_len - hs.skip, hs.skip_len))
    } else {
        hs.header().map(|(t, len)| (HandshakeType(t), (hs.buf.len() - 4) as u32, len))
    };
}

/// The first message of a direction must be its hello; otherwise the capture began inside
/// the handshake (or the roles are swapped) and nothing after can be trusted as a header.
fn first_message_ok(st: &mut DirState, facts: &mut TlsFacts, dir: Dir, typ: u8) -> bool {
    let d = facts.dir_mut(dir);
    if d.start != StreamStart::Nothing {
        return true;
    }
    let expected = if dir == Dir::ToServer { 1 } else { 2 };
    if typ == expected {
        d.start = StreamStart::Hello;
        return true;
    }
    d.start = StreamStart::UnexpectedHandshake(HandshakeType(typ));
    if dir == Dir::ToServer && typ == 2 {
        facts.note(TlsNote::RolesSwapped);
    }
    st.hs.stop();
    false
}

fn skip_message(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx, typ: u8, len: u32) {
    st.hs.buf.clear();
    st.hs.skip = len;
    st.hs.skip_type = typ;
    st.hs.skip_len = len;
    facts.dir_mut(cx.dir).buffer_capped = true;
    let msg = HandshakeMsg {
        dir: Some(cx.dir),
        kind: HandshakeType(typ),
        len,
        ts: cx.ts,
        skipped: true,
        ..Default::default()
    };
    list(facts, msg);
    // Length alone still says whether a TLS <= 1.2 certificate list is empty.
    if typ == 11 {
        let chain = CertChain { message_len: len, ..Default::default() };
        match cx.dir {
            Dir::ToServer => facts.client_certs = Some(chain),
            Dir::ToClient => facts.server_certs = Some(chain),
        }
    }
}

fn list(facts: &mut TlsFacts, msg: HandshakeMsg) {
    if facts.messages.len() < MAX_MESSAGES {
        facts.messages.push(msg);
    } else {
        facts.messages_dropped = facts.messages_dropped.saturating_add(1);
    }
}

fn process(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx, typ: u8, body: &[u8]) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut msg = HandshakeMsg {
        dir: Some(cx.dir),
        kind: HandshakeType(typ),
        len,
        ts: cx.ts,
        ..Default::default()
    };
    match (cx.dir, typ) {
        (Dir::ToServer, 1) => {
            list(facts, msg);
            return client_hello(facts, parse_client_hello(body));
        }
        (Dir::ToClient, 2) => {
            let read = parse_server_hello(body);
            msg.retry = read.retry;
            list(facts, msg);
            return server_hello(st, facts, read);
        }
        (_, 11) => {
            let chain = parse_chain(body);
            msg.certs = Some(chain.summary());
            let slot = match cx.dir {
                Dir::ToServer => &mut facts.client_certs,
                Dir::ToClient => &mut facts.server_certs,
            };
            slot.get_or_insert(chain);
        }
        (Dir::ToClient, 4) => facts.session_ticket = Some(ticket(body)),
        (Dir::ToClient, 12) => facts.server_key_exchange = true,
        (Dir::ToClient, 13) => facts.certificate_request = Some(cert_request(body)),
        (Dir::ToClient, 14) => facts.server_hello_done = true,
        (Dir::ToServer, 15) => facts.certificate_verify = true,
        (Dir::ToServer, 16) => facts.client_key_exchange = true,
        _ => {}
    }
    list(facts, msg);
}

fn client_hello(facts: &mut TlsFacts, ch: ClientHelloFacts) {
    facts.client_hellos = facts.client_hellos.saturating_add(1);
    if ch.sslv2_format {
        facts.note(TlsNote::Sslv2ClientHello);
    }
    facts.client_hello.get_or_insert(ch);
    // The encrypted flight that matters follows the last ClientHello.
    facts.client.encrypted_records.clear();
    session_echo(facts);
    refresh_flight(facts);
}

fn server_hello(st: &mut DirState, facts: &mut TlsFacts, read: hello::ServerHelloRead) {
    let sh = read.facts;
    if read.retry {
        facts.hello_retry = Some(HelloRetryFacts {
            cipher_suite: sh.cipher_suite,
            selected_group: sh.key_share_group,
        });
        facts.note(TlsNote::HelloRetry);
        return;
    }
    if facts.server_hello.is_some() {
        return;
    }
    let tls13 = sh.version == Version::TLS13;
    if tls13 {
        if let Some((hash, tag)) = tls13_suite_sizes(sh.cipher_suite) {
            facts.finished_record_len = Some(4 + hash + 1 + tag);
            facts.aead_tag_len = Some(tag);
        }
    }
    facts.server_hello = Some(sh);
    session_echo(facts);
    if tls13 {
        // Everything after a TLS 1.3 ServerHello is encrypted.
        st.go_dark();
        refresh_flight(facts);
    }
}

fn session_echo(facts: &mut TlsFacts) {
    if let (Some(ch), Some(sh)) = (&facts.client_hello, &mut facts.server_hello) {
        sh.session_id_echoed = !ch.session_id.is_empty() && ch.session_id == sh.session_id;
    }
}

/// TLS <= 1.2 Certificate: `ASN.1Cert certificate_list<0..2^24-1>`, each `opaque<1..2^24-1>`.
fn parse_chain(body: &[u8]) -> CertChain {
    parse_cert_list(body, 0, false)
}

/// The `certificate_list` of a Certificate message, starting at `at` (after TLS 1.3's request
/// context). TLS 1.3 entries carry `Extension extensions<0..2^16-1>` after each certificate
/// (`entry_extensions`). Certificate DER is kept up to MAX_CERTS / MAX_CERT_BYTES.
pub(crate) fn parse_cert_list(body: &[u8], at: usize, entry_extensions: bool) -> CertChain {
    let mut chain = CertChain {
        message_len: u32::try_from(body.len()).unwrap_or(u32::MAX),
        parsed: true,
        ..Default::default()
    };
    let Some(head) = body.get(at..at + 3) else {
        chain.malformed = true;
        return chain;
    };
    let list_len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut rest = &body[at + 3..];
    chain.malformed = list_len != rest.len();
    let mut kept = 0usize;
    while !rest.is_empty() {
        let Some(h) = rest.get(..3) else {
            chain.malformed = true;
            break;
        };
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let Some(der) = rest.get(3..3 + len) else {
            chain.malformed = true;
            break;
        };
        let mut next = 3 + len;
        if entry_extensions {
            let Some(e) = rest.get(next..next + 2) else {
                chain.malformed = true;
                break;
            };
            next += 2 + usize::from(u16::from_be_bytes([e[0], e[1]]));
        }
        chain.count += 1;
        if chain.der.len() < MAX_CERTS && kept + der.len() <= MAX_CERT_BYTES {
            kept += der.len();
            chain.der.push(super::intern_cert(der));
        } else {
            chain.der_truncated = true;
        }
        let Some(after) = rest.get(next..) else {
            chain.malformed = true;
            break;
        };
        rest = after;
    }
    chain
}

fn cert_request(body: &[u8]) -> CertRequestFacts {
    match parse_tls_handshake_certificaterequest(body) {
        Ok((_, cr)) => CertRequestFacts {
            cert_types: cr.cert_types,
            ca_names: u32::try_from(cr.unparsed_ca.len()).unwrap_or(u32::MAX),
        },
        Err(_) => CertRequestFacts::default(),
    }
}

/// RFC 5077: `uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>`.
fn ticket(body: &[u8]) -> TicketFacts {
    let lifetime_hint = body.get(..4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let t = body.get(6..).unwrap_or_default();
    TicketFacts { lifetime_hint, len: u32::try_from(t.len()).unwrap_or(u32::MAX), hash: fnv1a64(t) }
}

pub fn on_change_cipher_spec(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx) {
    facts.dir_mut(cx.dir).change_cipher_spec = true;
    let version = facts.version();
    // TLS 1.3's compatibility ChangeCipherSpec changes nothing.
    if version == Some(Version::TLS13) {
        return;
    }
    match cx.dir {
        Dir::ToClient => {
            // ChangeCipherSpec before any Certificate/ServerHelloDone: abbreviated handshake.
            // (Only if this side's handshake was still being read: a gap could hide them.)
            facts.abbreviated |= version.is_some()
                && st.hs.active
                && facts.server_certs.is_none()
                && !facts.server_hello_done
                && !facts.server_key_exchange;
            st.go_dark();
        }
        Dir::ToServer => {
            let offered13 = facts.client_hello.as_ref().is_some_and(|ch| ch.offers(Version::TLS13));
            if version.is_none() && offered13 {
                st.ccs_undecided = true;
            } else {
                st.go_dark();
            }
        }
    }
}

/// The SSL 2.0-compatible ClientHello record is complete (its body is in the buffer).
pub fn sslv2_hello(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx, len: u16) {
    let body = std::mem::take(&mut st.hs.buf);
    match hello::parse_sslv2_client_hello(&body) {
        Some(ch) if !facts.client.buffer_capped => {
            facts.client.start = StreamStart::Hello;
            let msg = HandshakeMsg {
                dir: Some(cx.dir),
                kind: HandshakeType::CLIENT_HELLO,
                len: u32::from(len),
                ts: cx.ts,
                ..Default::default()
            };
            list(facts, msg);
            client_hello(facts, ch);
        }
        _ => st.fail(facts, cx.dir, StreamError::BadContentType(0x80), 0),
    }
}

/// Re-reads the TLS 1.3 client flight after a client record or the ServerHello.
pub fn refresh_flight(facts: &mut TlsFacts) {
    let (Some(fin), Some(tag)) = (facts.finished_record_len, facts.aead_tag_len) else {
        return;
    };
    // A second ClientHello (after HelloRetryRequest) may not offer early data.
    let early =
        facts.hello_retry.is_none() && facts.client_hello.as_ref().is_some_and(|c| c.early_data);
    let sizes: Vec<u16> = facts.client.app_record_sizes().take(FLIGHT_RECORDS).collect();
    facts.tls13_client_flight = Some(read_flight(&sizes, fin, tag, early));
}
