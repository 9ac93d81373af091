//! The per-flow classifier: buffers the first bytes of each direction until one detector says
//! yes, then hands the streams to that protocol's analyzer and lets the flow free its buffers.

use super::http1::{self, Request, Response};
use super::http2::{self, H2Request};
use super::other::{self, OtherInfo};
use super::tls::{self, TlsAnalyzer};
use super::{Detect, Limits, Sniff};
use crate::keylog::KeyLog;
use crate::{Dir, Timestamp};
use std::sync::Arc;

/// After a plaintext start, how far into each direction we keep looking for a switch to TLS
/// (STARTTLS, PostgreSQL SSLRequest, HTTP CONNECT).
const UPGRADE_WATCH: u64 = 64 * 1024;

/// What a flow turned out to be.
#[derive(Debug, Clone)]
pub enum Classification {
    /// No payload in either direction.
    Empty,
    Tls {
        facts: Box<tls::TlsFacts>,
        preamble: Option<Preamble>,
    },
    Http1 {
        request: Option<Request>,
        response: Option<Response>,
        midstream: bool,
    },
    H2c {
        request: Option<H2Request>,
        via_upgrade: Option<Request>,
    },
    Other(OtherInfo),
}

/// The plaintext part of a connection that later switched to TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// What was spoken before TLS ("http1 CONNECT", "postgresql-sslrequest", "smtp/ftp", ...).
    pub protocol: String,
    /// One-line description of the plaintext part.
    pub evidence: String,
    /// Plaintext bytes before TLS started, per direction (client, server).
    pub bytes: [u64; 2],
}

/// A hint to the flow: the roles it inferred without a SYN are the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Ok,
    /// The classifier swapped its sides; the flow must swap client and server too.
    SwappedRoles,
}

/// How far a classifier has got, so that a live capture can report a flow's verdict before the
/// flow ends. A change of stage is worth a new report; the packet counters are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    #[default]
    Undecided,
    /// `settled`: the handshake no longer needs bytes (the verdict is what it will be).
    Tls {
        settled: bool,
        preamble: bool,
    },
    Http1 {
        request: bool,
        response: bool,
    },
    H2c {
        request: bool,
    },
    Other,
}

impl Stage {
    /// Whether this stage already carries a verdict worth reporting.
    pub fn decided(self) -> bool {
        match self {
            Stage::Undecided => false,
            Stage::Tls { settled, .. } => settled,
            Stage::Http1 { request, response } => request || response,
            Stage::H2c { .. } | Stage::Other => true,
        }
    }
}

#[derive(Debug)]
enum State {
    Undecided,
    Tls(Box<TlsAnalyzer>, Option<Preamble>),
    Http1 { request: Option<Request>, response: Option<Response>, midstream: bool },
    H2c { request: Option<H2Request>, via_upgrade: Option<Request> },
    Other(OtherInfo),
}

#[derive(Debug)]
pub struct Classifier {
    limits: Limits,
    state: State,
    /// Bytes of each direction kept while the current state still needs them.
    heads: [Vec<u8>; 2],
    /// Stream bytes seen per direction (client, server).
    seen: [u64; 2],
    /// Where TLS began in each direction, after a plaintext preamble.
    tls_started: [bool; 2],
    /// The role hint may still flip client and server.
    can_swap: bool,
    /// Key log for TLS 1.3 handshake decryption, handed to the TLS analyzer.
    keylog: Option<Arc<KeyLog>>,
}

impl Classifier {
    pub fn new(limits: Limits, roles_inferred: bool) -> Self {
        Classifier {
            limits,
            state: State::Undecided,
            heads: [Vec::new(), Vec::new()],
            seen: [0, 0],
            tls_started: [false, false],
            can_swap: roles_inferred,
            keylog: None,
        }
    }

    /// TLS flows found later will decrypt their TLS 1.3 handshake with this key log.
    pub fn set_keylog(&mut self, keylog: Option<Arc<KeyLog>>) {
        self.keylog = keylog;
    }

    fn tls_analyzer(&self) -> Box<TlsAnalyzer> {
        Box::new(TlsAnalyzer::new(self.limits).with_keylog(self.keylog.clone()))
    }

    /// In-order bytes of one direction.
    pub fn feed(&mut self, dir: Dir, data: &[u8], ts: Timestamp) -> Feed {
        let offset = self.seen[dir.index()];
        self.seen[dir.index()] += data.len() as u64;
        let mut fed = Feed::Ok;
        match &mut self.state {
            State::Undecided => {
                push_capped(&mut self.heads[dir.index()], data, self.limits.max_buffer);
                fed = self.decide(dir, ts, false);
            }
            State::Tls(analyzer, Some(preamble)) if !self.tls_started[dir.index()] => {
                if let Some(at) = find_tls_start(data, dir) {
                    self.tls_started[dir.index()] = true;
                    preamble.bytes[dir.index()] += at as u64;
                    analyzer.feed(dir, &data[at..], ts);
                } else {
                    preamble.bytes[dir.index()] += data.len() as u64;
                }
            }
            State::Tls(analyzer, _) => analyzer.feed(dir, data, ts),
            State::Http1 { .. } | State::Other(_) => self.feed_plaintext(dir, data, offset, ts),
            State::H2c { request, .. } => {
                if request.is_none() && dir == Dir::ToServer {
                    push_capped(&mut self.heads[0], data, http2::MAX_SCAN);
                    let frames =
                        self.heads[0].strip_prefix(http2::PREFACE).unwrap_or(&self.heads[0]);
                    match http2::first_request(frames) {
                        Detect::Yes(r) => {
                            *request = Some(r);
                            self.heads[0] = Vec::new();
                        }
                        Detect::No => self.heads[0] = Vec::new(),
                        Detect::NeedMore => {}
                    }
                }
            }
        }
        fed
    }

    /// Bytes lost in one direction.
    pub fn gap(&mut self, dir: Dir, len: u64) {
        self.seen[dir.index()] += len;
        match &mut self.state {
            State::Tls(analyzer, _) => analyzer.gap(dir, len),
            State::Undecided => {
                // What follows a hole is not the start of the stream; judge what we have.
                if self.heads[dir.index()].is_empty() {
                    return;
                }
                self.decide(dir, Timestamp(0), true);
            }
            _ => {}
        }
    }

    /// Whether the flow should keep buffering out-of-order data for us.
    pub fn wants_bytes(&self) -> bool {
        match &self.state {
            State::Undecided => true,
            State::Tls(analyzer, preamble) => {
                analyzer.wants_bytes() || (preamble.is_some() && !self.tls_started[0])
            }
            State::Http1 { request, response, .. } => {
                request.is_none() || response.is_none() || self.watching_upgrade()
            }
            State::H2c { request, .. } => request.is_none(),
            State::Other(_) => self.watching_upgrade(),
        }
    }

    /// Where classification stands (see [`Stage`]).
    pub fn stage(&self) -> Stage {
        match &self.state {
            State::Undecided => Stage::Undecided,
            State::Tls(analyzer, preamble) => {
                Stage::Tls { settled: !analyzer.wants_bytes(), preamble: preamble.is_some() }
            }
            State::Http1 { request, response, .. } => {
                Stage::Http1 { request: request.is_some(), response: response.is_some() }
            }
            State::H2c { request, .. } => Stage::H2c { request: request.is_some() },
            State::Other(_) => Stage::Other,
        }
    }

    /// What the flow is so far, without ending it: what [`Self::finish`] would say if no more
    /// bytes came (except that bytes still buffered while undecided are not judged).
    pub fn snapshot(&self) -> Classification {
        match &self.state {
            State::Undecided => Classification::Empty,
            State::Tls(analyzer, preamble) => Classification::Tls {
                facts: Box::new(analyzer.facts().clone()),
                preamble: preamble.clone(),
            },
            State::Http1 { request, response, midstream } => Classification::Http1 {
                request: request.clone(),
                response: response.clone(),
                midstream: *midstream,
            },
            State::H2c { request, via_upgrade } => {
                Classification::H2c { request: request.clone(), via_upgrade: via_upgrade.clone() }
            }
            State::Other(info) => Classification::Other(info.clone()),
        }
    }

    fn watching_upgrade(&self) -> bool {
        self.seen[0] < UPGRADE_WATCH || self.seen[1] < UPGRADE_WATCH
    }

    /// The flow ended (or the capture did): settle on the best answer for what was seen.
    pub fn finish(&mut self) -> Classification {
        if let State::Undecided = self.state {
            for dir in [Dir::ToServer, Dir::ToClient] {
                if !self.heads[dir.index()].is_empty() {
                    self.decide(dir, Timestamp(0), true);
                    break;
                }
            }
        }
        self.heads = [Vec::new(), Vec::new()];
        match std::mem::replace(&mut self.state, State::Undecided) {
            State::Undecided => Classification::Empty,
            State::Tls(analyzer, preamble) => {
                Classification::Tls { facts: analyzer.into_facts(), preamble }
            }
            State::Http1 { request, response, midstream } => {
                Classification::Http1 { request, response, midstream }
            }
            State::H2c { request, via_upgrade } => Classification::H2c { request, via_upgrade },
            State::Other(info) => Classification::Other(info),
        }
    }

    /// Try every detector on the buffered heads. `force` settles on an answer with what we have.
    fn decide(&mut self, dir: Dir, ts: Timestamp, force: bool) -> Feed {
        let head = &self.heads[dir.index()];
        let from_client = dir == Dir::ToServer;
        let tls = tls::sniff(head);
        if tls == Sniff::Yes {
            let swapped = self.maybe_swap(tls_role(head), dir);
            self.start_tls(ts, None);
            return swapped;
        }
        let request = http1::parse_request(head);
        if let Detect::Yes(_) = request {
            let swapped = self.maybe_swap(Some(Dir::ToServer), dir);
            self.state = State::Http1 { request: None, response: None, midstream: false };
            self.reparse_http();
            return swapped;
        }
        let preface = if from_client { http2::sniff_preface(head) } else { Detect::No };
        if let Detect::Yes(()) = preface {
            self.state = State::H2c { request: None, via_upgrade: None };
            let head = std::mem::take(&mut self.heads[0]);
            self.feed_h2_head(&head);
            return Feed::Ok;
        }
        let response = http1::parse_response(head);
        if let Detect::Yes(_) = response {
            let swapped = self.maybe_swap(Some(Dir::ToClient), dir);
            self.state = State::Http1 { request: None, response: None, midstream: false };
            self.reparse_http();
            return swapped;
        }
        if let Some(info) = self.known_other() {
            self.state = State::Other(info);
            self.heads = [Vec::new(), Vec::new()];
            return Feed::Ok;
        }
        let need_more = tls == Sniff::NeedMore
            || request == Detect::NeedMore
            || response == Detect::NeedMore
            || preface == Detect::NeedMore;
        if !force && (need_more || head.len() < other::WANT) {
            return Feed::Ok;
        }
        if let Some(at) = http1::find_message_start(head) {
            let tail = head[at..].to_vec();
            self.heads[dir.index()] = tail;
            self.state = State::Http1 { request: None, response: None, midstream: true };
            self.reparse_http();
            return Feed::Ok;
        }
        // The client's first bytes say more about a protocol than the server's answer.
        let info = if dir == Dir::ToClient && !self.heads[0].is_empty() {
            other::classify(&self.heads[0], false)
        } else {
            other::classify(head, !from_client)
        };
        self.state = State::Other(info);
        self.heads = [Vec::new(), Vec::new()];
        Feed::Ok
    }

    /// A well-known plaintext protocol in either head, client first.
    fn known_other(&self) -> Option<OtherInfo> {
        [Dir::ToServer, Dir::ToClient].into_iter().find_map(|d| {
            let head = &self.heads[d.index()];
            other::known(head, d == Dir::ToClient)
        })
    }

    /// Without a SYN the roles were a guess; a detector that knows who speaks first corrects it.
    fn maybe_swap(&mut self, sender_role: Option<Dir>, dir: Dir) -> Feed {
        let Some(role) = sender_role else { return Feed::Ok };
        if !self.can_swap || role == dir {
            self.can_swap = false;
            return Feed::Ok;
        }
        self.can_swap = false;
        self.heads.swap(0, 1);
        self.seen.swap(0, 1);
        Feed::SwappedRoles
    }

    fn start_tls(&mut self, ts: Timestamp, preamble: Option<Preamble>) {
        let mut analyzer = self.tls_analyzer();
        let heads = std::mem::take(&mut self.heads);
        for dir in [Dir::ToServer, Dir::ToClient] {
            if !heads[dir.index()].is_empty() {
                analyzer.feed(dir, &heads[dir.index()], ts);
            }
        }
        self.tls_started = [true, true];
        self.state = State::Tls(analyzer, preamble);
    }

    fn feed_h2_head(&mut self, head: &[u8]) {
        let frames = head.strip_prefix(http2::PREFACE).unwrap_or(head);
        if let State::H2c { request, .. } = &mut self.state {
            match http2::first_request(frames) {
                Detect::Yes(r) => *request = Some(r),
                Detect::NeedMore => self.heads[0] = head.to_vec(),
                Detect::No => {}
            }
        }
    }

    /// Parse whatever request/response the heads hold now.
    fn reparse_http(&mut self) {
        let State::Http1 { request, response, .. } = &mut self.state else { return };
        if request.is_none() {
            match http1::parse_request(&self.heads[0]) {
                Detect::Yes(r) => {
                    *request = Some(r);
                    self.heads[0] = Vec::new();
                }
                Detect::No => self.heads[0] = Vec::new(),
                Detect::NeedMore => {}
            }
        }
        if response.is_none() {
            match http1::parse_response(&self.heads[1]) {
                Detect::Yes(r) => {
                    *response = Some(r);
                    self.heads[1] = Vec::new();
                }
                Detect::No => self.heads[1] = Vec::new(),
                Detect::NeedMore => {}
            }
        }
    }

    /// Plaintext states: finish parsing heads, and watch for a switch to TLS or h2c.
    fn feed_plaintext(&mut self, dir: Dir, data: &[u8], offset: u64, ts: Timestamp) {
        if let State::Http1 { request, response, .. } = &self.state {
            let missing = if dir == Dir::ToServer { request.is_none() } else { response.is_none() };
            if missing && offset < http1::MAX_HEAD as u64 {
                push_capped(&mut self.heads[dir.index()], data, http1::MAX_HEAD);
                self.reparse_http();
            }
            if self.h2c_upgraded() {
                let via = match &self.state {
                    State::Http1 { request, .. } => request.clone(),
                    _ => None,
                };
                self.state = State::H2c { request: None, via_upgrade: via };
                return;
            }
        }
        // Only the client starts TLS mid-stream (its ClientHello): the server's bytes, often
        // the bulk of a plaintext flow, need no search.
        if offset >= UPGRADE_WATCH || dir != Dir::ToServer {
            return;
        }
        let Some(at) = find_tls_start(data, dir) else { return };
        let preamble = self.preamble(offset + at as u64);
        let mut analyzer = self.tls_analyzer();
        analyzer.feed(dir, &data[at..], ts);
        self.heads = [Vec::new(), Vec::new()];
        self.tls_started = [true, false];
        self.state = State::Tls(analyzer, Some(preamble));
    }

    fn h2c_upgraded(&self) -> bool {
        matches!(&self.state, State::Http1 { request: Some(r), response: Some(resp), .. }
            if r.upgrade.as_deref() == Some("h2c") && resp.status == 101)
    }

    fn preamble(&self, client_bytes: u64) -> Preamble {
        let (protocol, evidence) = match &self.state {
            State::Http1 { request: Some(r), response, .. } => (
                format!("http1 {}", r.method),
                format!(
                    "{} {} HTTP/1.{} in the clear{}",
                    r.method,
                    r.path,
                    r.version,
                    response
                        .as_ref()
                        .map(|s| format!(", answered {}", s.status))
                        .unwrap_or_default()
                ),
            ),
            State::Other(info) => {
                let name = info.protocol.unwrap_or("plaintext");
                (name.to_string(), format!("{name} in the clear before TLS"))
            }
            _ => ("plaintext".into(), "plaintext before TLS".into()),
        };
        Preamble { protocol, evidence, bytes: [client_bytes, self.seen[1]] }
    }
}

/// Who sends these TLS bytes: a ClientHello comes from the client, a ServerHello from the server.
fn tls_role(head: &[u8]) -> Option<Dir> {
    match head {
        [22, 3, _, _, _, 1, ..] => Some(Dir::ToServer),
        [22, 3, _, _, _, 2, ..] => Some(Dir::ToClient),
        _ => None,
    }
}

/// Offset of a TLS ClientHello (client side) or ServerHello (server side) record in `data`.
fn find_tls_start(data: &[u8], dir: Dir) -> Option<usize> {
    let hs_type = if dir == Dir::ToServer { 1 } else { 2 };
    memchr::memchr_iter(22, data).find(|&at| {
        let Some(h) = data.get(at..at + 9) else { return false };
        let rec_len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let hs_len = (usize::from(h[6]) << 16) | (usize::from(h[7]) << 8) | usize::from(h[8]);
        h[1] == 3
            && h[2] <= 4
            && h[5] == hs_type
            && (4..=16384 + 2048).contains(&rec_len)
            && (hs_len + 4 <= rec_len || hs_len > rec_len)
            && data.get(at + 9..at + 11).is_none_or(|v| v[0] == 3)
    })
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first record of `stream`.
    fn first_record(stream: &[u8]) -> Vec<u8> {
        let len = usize::from(u16::from_be_bytes([stream[3], stream[4]]));
        stream[..5 + len].to_vec()
    }

    /// A plaintext HTTP/1.1 exchange whose response body is `body`, then `client_next` from
    /// the client.
    fn http_then(body: &[u8], client_next: &[u8]) -> Classification {
        let mut c = Classifier::new(Limits::default(), false);
        let ts = Timestamp(0);
        c.feed(Dir::ToServer, b"GET /capture HTTP/1.1\r\nHost: s\r\n\r\n", ts);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        c.feed(Dir::ToClient, &[head.as_bytes(), body].concat(), ts);
        if !client_next.is_empty() {
            c.feed(Dir::ToServer, client_next, ts);
        }
        c.finish()
    }

    #[test]
    fn only_the_clients_hello_switches_a_plaintext_flow_to_tls() {
        // Real OpenSSL streams (fixtures/streams/).
        let v = tls::tests::load("tls13_server_auth");
        let (client_hello, server_hello) = (first_record(&v.c2s), first_record(&v.s2c));
        assert_eq!(tls_role(&client_hello), Some(Dir::ToServer));
        assert_eq!(tls_role(&server_hello), Some(Dir::ToClient));
        // TLS records in what the server sends (a capture downloaded over HTTP, say) are data.
        let body = [server_hello.as_slice(), client_hello.as_slice()].concat();
        let c = http_then(&body, b"");
        assert!(matches!(c, Classification::Http1 { request: Some(_), .. }), "{c:?}");
        // The client's ClientHello after plaintext is a switch to TLS, as after STARTTLS.
        let c = http_then(b"ok", &client_hello);
        assert!(matches!(c, Classification::Tls { preamble: Some(_), .. }), "{c:?}");
    }
}
