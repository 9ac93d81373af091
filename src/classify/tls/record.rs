//! The record layer of one direction: finds record boundaries in a byte stream fed in any
//! chunking, counts records, and routes each record's body (cleartext handshake bytes to the
//! handshake reassembler, two-byte alerts to the alert list, encrypted records to a size log).
//! Bodies that are not parsed are skipped as they stream past, never buffered.

use super::decrypt::{self, Dec};
use super::facts::{
    Alert, AlertDescription, ContentType, EncRecord, StreamError, StreamStart, TlsFacts, Version,
    MAX_ALERTS, MAX_ENCRYPTED_RECORDS,
};
use super::handshake::{self, Ctx, Reassembly};
use crate::common::Dir;

/// RFC 5246 6.2.3: TLSCiphertext.length must not exceed 2^14 + 2048.
pub const MAX_RECORD_LEN: u16 = (1 << 14) + 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Handshake,
    Alert,
    /// A client record of type 22 after its ChangeCipherSpec while the version is unknown:
    /// a TLS 1.3 second ClientHello or a TLS 1.2 encrypted Finished. Decided on its first bytes.
    Peek,
    /// The SSL 2.0-compatible ClientHello, buffered whole (it is one record).
    Sslv2,
    /// A TLS 1.3 encrypted record opened with key-log secrets (see `decrypt`).
    Decrypt,
    Skip,
}

#[derive(Debug)]
struct Rec {
    ctype: u8,
    len: u16,
    left: u16,
    start: u64,
    route: Route,
    /// Whether its size goes into the encrypted-record log.
    log: bool,
    small: [u8; 6],
    small_len: usize,
}

/// Per-direction reading state (not facts: nothing here is reported).
#[derive(Debug, Default)]
pub struct DirState {
    hdr: [u8; 5],
    hdr_len: usize,
    rec: Option<Rec>,
    /// Stream offset of the next byte (gaps included).
    pub offset: u64,
    /// Reading stopped (not TLS, or record sync lost).
    pub dead: bool,
    /// Records are encrypted from here on (after the server's 1.3 ServerHello, after CCS in 1.2).
    pub dark: bool,
    /// Client only: CCS seen before the version was known (see Route::Peek).
    pub ccs_undecided: bool,
    pub hs: Reassembly,
    /// TLS 1.3 handshake decryption of this direction.
    pub dec: Dec,
}

impl DirState {
    pub fn new() -> Self {
        DirState { hs: Reassembly::new(), ..Default::default() }
    }

    /// Bytes held right now.
    pub fn buffered(&self) -> usize {
        self.hdr_len
            + self.rec.as_ref().map_or(0, |r| r.small_len)
            + self.hs.buffered()
            + self.dec.buffered()
    }

    pub fn feed(&mut self, facts: &mut TlsFacts, cx: &Ctx, mut data: &[u8]) {
        while !data.is_empty() && !self.dead {
            if self.rec.is_none() {
                let n = self.header_bytes(cx, data);
                data = &data[n..];
                if self.rec.is_none() {
                    continue;
                }
                self.start_record(facts, cx);
                continue;
            }
            let Some(rec) = self.rec.as_mut() else { break };
            let n = usize::from(rec.left).min(data.len());
            let chunk = &data[..n];
            data = &data[n..];
            rec.left -= n as u16; // n <= left, a u16
            self.offset += n as u64;
            self.body(facts, cx, chunk);
            if self.rec.as_ref().is_some_and(|r| r.left == 0) {
                self.end_record(facts, cx);
            }
        }
    }

    /// Takes header bytes; opens `rec` when a header is complete. Returns bytes used.
    fn header_bytes(&mut self, cx: &Ctx, data: &[u8]) -> usize {
        let sslv2 = cx.dir == Dir::ToServer && self.offset == self.hdr_len as u64 && {
            let first = if self.hdr_len > 0 { self.hdr[0] } else { data[0] };
            first & 0x80 != 0
        };
        let want = if sslv2 { 2 } else { 5 };
        let n = (want - self.hdr_len).min(data.len());
        self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[..n]);
        self.hdr_len += n;
        self.offset += n as u64;
        if self.hdr_len < want {
            return n;
        }
        let start = self.offset - want as u64;
        self.hdr_len = 0;
        let (ctype, len) = if sslv2 {
            (0x80, u16::from_be_bytes([self.hdr[0] & 0x7f, self.hdr[1]]))
        } else {
            (self.hdr[0], u16::from_be_bytes([self.hdr[3], self.hdr[4]]))
        };
        self.rec = Some(Rec {
            ctype,
            len,
            left: len,
            start,
            route: Route::Skip,
            log: false,
            small: [0; 6],
            small_len: 0,
        });
        n
    }

    pub fn fail(&mut self, facts: &mut TlsFacts, dir: Dir, err: StreamError, at: u64) {
        self.dead = true;
        decrypt::abort(self, facts, dir, &format!("reading stopped: {err}"));
        self.rec = None;
        let d = facts.dir_mut(dir);
        if self.hs.active {
            d.gap_in_handshake |= err == StreamError::LostSync;
            d.partial_message = None;
            self.hs.stop();
        }
        d.error.get_or_insert(err);
        d.error_offset.get_or_insert(at);
    }

    fn start_record(&mut self, facts: &mut TlsFacts, cx: &Ctx) {
        let Some(rec) = self.rec.as_ref() else { return };
        let (ctype, len, start) = (rec.ctype, rec.len, rec.start);
        let version = u16::from_be_bytes([self.hdr[1], self.hdr[2]]);
        if ctype != 0x80 {
            let err = if !(20..=24).contains(&ctype) {
                Some(StreamError::BadContentType(ctype))
            } else if !(0x0300..=0x0304).contains(&version) {
                Some(StreamError::BadVersion(version))
            } else if len > MAX_RECORD_LEN {
                Some(StreamError::RecordTooLong(len))
            } else {
                None
            };
            if let Some(err) = err {
                return self.fail(facts, cx.dir, err, start);
            }
        }
        let d = facts.dir_mut(cx.dir);
        d.first_record.get_or_insert(cx.ts);
        d.last_record = Some(cx.ts);
        if ctype != 0x80 {
            d.first_record_version.get_or_insert(Version(version));
        }
        match ctype {
            20 => d.records.change_cipher_spec += 1,
            21 => d.records.alert += 1,
            22 => d.records.handshake += 1,
            23 => d.records.application_data += 1,
            24 => d.records.heartbeat += 1,
            _ => d.records.sslv2 += 1,
        }
        if d.start == StreamStart::Nothing && ctype != 22 && ctype != 0x80 {
            d.start = StreamStart::MidStream;
            self.hs.stop();
        }
        // A message split over records may only continue in handshake records.
        if ctype != 22 && self.hs.in_message() {
            let d = facts.dir_mut(cx.dir);
            d.error.get_or_insert(StreamError::InterleavedHandshake);
            d.partial_message = None;
            self.hs.stop();
        }
        if ctype == 20 {
            handshake::on_change_cipher_spec(self, facts, cx);
        }
        let mut route = self.route(facts, cx.dir, ctype, len);
        if route == Route::Skip && ctype == 23 && decrypt::wants(self, facts, cx) {
            route = Route::Decrypt;
            let [l0, l1] = len.to_be_bytes();
            decrypt::start(self, [ctype, self.hdr[1], self.hdr[2], l0, l1]);
        }
        if let Some(rec) = self.rec.as_mut() {
            rec.route = route;
            rec.log = ctype == 23 || (self.dark && ctype != 20);
            if rec.left == 0 {
                self.end_record(facts, cx);
            }
        }
    }

    fn route(&mut self, facts: &TlsFacts, dir: Dir, ctype: u8, len: u16) -> Route {
        match ctype {
            0x80 => Route::Sslv2,
            // Encrypted alerts carry a MAC or tag, so only two-byte ones are in the clear.
            21 if len == 2 => Route::Alert,
            22 if self.dark || !self.hs.active => Route::Skip,
            22 if dir == Dir::ToServer && self.ccs_undecided => match facts.version() {
                Some(v) if v == Version::TLS13 => Route::Handshake,
                Some(_) => {
                    self.go_dark();
                    Route::Skip
                }
                None => Route::Peek,
            },
            22 => Route::Handshake,
            _ => Route::Skip,
        }
    }

    /// Records from here on are encrypted: stop handshake parsing and free its buffer.
    pub fn go_dark(&mut self) {
        self.dark = true;
        self.ccs_undecided = false;
        self.hs.stop();
    }

    fn body(&mut self, facts: &mut TlsFacts, cx: &Ctx, chunk: &[u8]) {
        let Some(route) = self.rec.as_ref().map(|r| r.route) else {
            return;
        };
        match route {
            Route::Handshake => handshake::push(self, facts, cx, chunk),
            Route::Sslv2 => {
                if !self.hs.push_raw(chunk, cx.limits.max_buffer) {
                    facts.client.buffer_capped = true;
                }
            }
            Route::Alert | Route::Peek => {
                let Some(rec) = self.rec.as_mut() else { return };
                let cap = if route == Route::Alert { 2 } else { 6 };
                let n = chunk.len().min(cap - rec.small_len.min(cap));
                rec.small[rec.small_len..rec.small_len + n].copy_from_slice(&chunk[..n]);
                rec.small_len += n;
                if route == Route::Peek && rec.small_len == 6 {
                    self.decide_peek(facts, cx, &chunk[n..]);
                }
            }
            Route::Decrypt => decrypt::push(self, chunk),
            Route::Skip => {}
        }
    }

    /// A TLS 1.3 second ClientHello starts `01 <u24 len> 03 03`; an encrypted Finished
    /// starts with an explicit nonce or ciphertext (the odds of that prefix are ~2^-24).
    fn decide_peek(&mut self, facts: &mut TlsFacts, cx: &Ctx, rest: &[u8]) {
        let Some(rec) = self.rec.as_mut() else { return };
        let head = rec.small;
        let n = rec.small_len;
        let hello = n == 6 && head[0] == 1 && head[4] == 3 && head[5] == 3;
        if hello {
            rec.route = Route::Handshake;
            self.ccs_undecided = false;
            handshake::push(self, facts, cx, &head[..n]);
            handshake::push(self, facts, cx, rest);
        } else {
            rec.route = Route::Skip;
            rec.log = true;
            self.go_dark();
        }
    }

    fn end_record(&mut self, facts: &mut TlsFacts, cx: &Ctx) {
        let Some(rec) = self.rec.take() else { return };
        match rec.route {
            Route::Alert if rec.small_len == 2 && facts.alerts.len() < MAX_ALERTS => {
                facts.alerts.push(Alert {
                    dir: Some(cx.dir),
                    level: rec.small[0],
                    description: AlertDescription(rec.small[1]),
                    ts: cx.ts,
                });
            }
            Route::Peek if rec.small_len < 6 => {
                // Too short to be a ClientHello: an encrypted record.
                self.go_dark();
                self.log(facts, cx, &Rec { log: true, ..rec });
                return;
            }
            Route::Sslv2 => handshake::sslv2_hello(self, facts, cx, rec.len),
            Route::Decrypt => decrypt::end(self, facts, cx),
            _ => {}
        }
        if rec.log {
            self.log(facts, cx, &rec);
        }
    }

    fn log(&mut self, facts: &mut TlsFacts, cx: &Ctx, rec: &Rec) {
        let d = facts.dir_mut(cx.dir);
        if d.encrypted_records.len() < MAX_ENCRYPTED_RECORDS {
            d.encrypted_records.push(EncRecord {
                content_type: ContentType(rec.ctype),
                len: rec.len,
                ts: cx.ts,
                offset: rec.start,
                peer_bytes: cx.peer_bytes,
            });
        }
        if cx.dir == Dir::ToServer && rec.ctype == 23 {
            handshake::refresh_flight(facts);
        }
    }

    /// `len` bytes of this direction were lost.
    pub fn gap(&mut self, facts: &mut TlsFacts, dir: Dir, len: u64) {
        facts.dir_mut(dir).gap_bytes += len;
        if len > 0 {
            decrypt::abort(self, facts, dir, "a capture gap hid encrypted bytes");
        }
        let at = self.offset;
        self.offset += len;
        if self.dead || len == 0 {
            return;
        }
        let in_body =
            self.hdr_len == 0 && self.rec.as_ref().is_some_and(|r| len <= u64::from(r.left));
        if !in_body {
            return self.fail(facts, dir, StreamError::LostSync, at);
        }
        // Inside a record body: the boundaries are still known, only its content is lost.
        if let Some(rec) = self.rec.as_mut() {
            rec.left -= len as u16; // len <= left
            if rec.route != Route::Skip {
                rec.route = Route::Skip;
                if self.hs.active {
                    let d = facts.dir_mut(dir);
                    d.gap_in_handshake = true;
                    d.partial_message = None;
                    self.hs.stop();
                }
            }
        }
    }

    /// Finishes a record whose last bytes were lost (called by the analyzer after `gap`).
    pub fn finish_if_empty(&mut self, facts: &mut TlsFacts, cx: &Ctx) {
        if self.rec.as_ref().is_some_and(|r| r.left == 0) {
            self.end_record(facts, cx);
        }
    }
}
