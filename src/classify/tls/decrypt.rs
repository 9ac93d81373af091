//! TLS 1.3 handshake decryption with key-log secrets: definitive proof of client authentication.
//!
//! ```text
//!  ServerHello ─▶ lookup(client random) ─▶ per direction: handshake traffic secret
//!      ─▶ HKDF-Expand-Label "key"/"iv" ─▶ AEAD open each record (nonce = iv XOR seq)
//!      ─▶ strip padding + inner type ─▶ handshake messages (may span records)
//! ```
//!
//! Both directions are read independently, inline as records complete: only the current
//! record's ciphertext and one incomplete handshake message are held. The client's records are
//! read up to its Finished; its application data is never opened. After its Finished the server
//! switches to SERVER_TRAFFIC_SECRET_0 only to find NewSessionTicket messages, for at most
//! [`MAX_TICKET_RECORDS`] records, and stops at the first application-data record (dropped unread).
//! A record that fails to open stops decryption of that direction with an `error`; the verdict
//! then falls back to the size inference. Client records that fail while 0-RTT was offered are
//! early data (another key) and are skipped, at most [`MAX_EARLY_RECORDS`].

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::{Sha256, Sha384};

use super::facts::{
    escape, fnv1a64, CertChain, DecryptedHandshake, HandshakeMsg, HandshakeType, TicketFacts,
    TlsFacts, Version, MAX_MESSAGES,
};
use super::handshake::Ctx;
use super::hello::walk_extensions;
use super::record::DirState;
use crate::common::Dir;

/// Post-handshake server records opened to look for NewSessionTicket.
pub const MAX_TICKET_RECORDS: u8 = 8;
/// Client records skipped as 0-RTT early data (they do not open with the handshake key).
pub const MAX_EARLY_RECORDS: u8 = 16;
/// Most tickets kept.
const MAX_TICKETS: usize = 8;

/// The hash of a TLS 1.3 suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// The AEAD of a TLS 1.3 suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Aead {
    fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha20Poly1305 => 32,
        }
    }
}

/// The suites this module can open (CCM and the integrity-only suites are not supported).
pub fn suite(cipher_suite: u16) -> Option<(Aead, Hash)> {
    Some(match cipher_suite {
        0x1301 => (Aead::Aes128Gcm, Hash::Sha256),
        0x1302 => (Aead::Aes256Gcm, Hash::Sha384),
        0x1303 => (Aead::ChaCha20Poly1305, Hash::Sha256),
        _ => return None,
    })
}

/// RFC 8446 7.1: HKDF-Expand-Label(Secret, Label, Context, Length) with "tls13 " prefixed.
pub fn hkdf_expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full = 6 + label.len();
    let mut info = Vec::with_capacity(4 + full + context.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full).ok()?);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = vec![0; len];
    match hash {
        Hash::Sha256 => Hkdf::<Sha256>::from_prk(secret).ok()?.expand(&info, &mut out).ok()?,
        Hash::Sha384 => Hkdf::<Sha384>::from_prk(secret).ok()?.expand(&info, &mut out).ok()?,
    }
    Some(out)
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// One direction's record protection: AEAD key, static IV and the next sequence number.
pub struct RecordKey {
    cipher: Cipher,
    iv: [u8; 12],
    /// Records opened with this key so far (the next record's sequence number).
    pub seq: u64,
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKey").field("seq", &self.seq).finish_non_exhaustive()
    }
}

impl RecordKey {
    /// RFC 8446 7.3: key = HKDF-Expand-Label(secret, "key", "", key_len), iv likewise ("iv", 12).
    pub fn new(aead: Aead, hash: Hash, secret: &[u8]) -> Option<RecordKey> {
        let key = hkdf_expand_label(hash, secret, b"key", &[], aead.key_len())?;
        let iv = hkdf_expand_label(hash, secret, b"iv", &[], 12)?;
        RecordKey::from_parts(aead, &key, iv.try_into().ok()?)
    }

    pub fn from_parts(aead: Aead, key: &[u8], iv: [u8; 12]) -> Option<RecordKey> {
        let cipher = match aead {
            Aead::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Aead::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Aead::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        };
        Some(RecordKey { cipher, iv, seq: 0 })
    }

    /// Opens one record in place (`buf`: ciphertext and tag; `header`: the 5-byte record header,
    /// the AAD). The sequence number advances only when it opened.
    pub fn open(&mut self, header: &[u8; 5], buf: &mut Vec<u8>) -> bool {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        let nonce = aes_gcm::Nonce::from_slice(&nonce);
        let ok = match &self.cipher {
            Cipher::Aes128(c) => c.decrypt_in_place(nonce, header, buf).is_ok(),
            Cipher::Aes256(c) => c.decrypt_in_place(nonce, header, buf).is_ok(),
            Cipher::ChaCha(c) => c.decrypt_in_place(nonce, header, buf).is_ok(),
        };
        if ok {
            self.seq += 1;
        }
        ok
    }
}

/// TLSInnerPlaintext: content, the real content type, then zero padding. Strips the padding
/// and the type; None when the record is all zeros.
pub fn inner_type(buf: &mut Vec<u8>) -> Option<u8> {
    let end = buf.iter().rposition(|&b| b != 0)?;
    let t = buf[end];
    buf.truncate(end);
    Some(t)
}

/// Decryption state of one direction.
#[derive(Debug, Default)]
pub enum Dec {
    /// Not decided yet (no TLS 1.3 ServerHello, or no encrypted record yet).
    #[default]
    Undecided,
    /// No keys, finished, or failed: records are not opened.
    Off,
    On(Box<DirDecrypt>),
}

impl Dec {
    pub fn active(&self) -> bool {
        matches!(self, Dec::On(_))
    }

    pub fn buffered(&self) -> usize {
        match self {
            Dec::On(d) => d.record.len() + d.hs.len(),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    /// Server, after its Finished: application keys, looking for NewSessionTicket.
    Tickets(u8),
}

/// What one direction is decrypting.
#[derive(Debug)]
pub struct DirDecrypt {
    aead: Aead,
    hash: Hash,
    key: RecordKey,
    phase: Phase,
    /// The current record: header (AAD) and ciphertext so far.
    aad: [u8; 5],
    record: Vec<u8>,
    /// Decrypted handshake bytes not yet a whole message.
    hs: Vec<u8>,
    early_skips: u8,
    /// SERVER_TRAFFIC_SECRET_0, to read tickets after the server's Finished.
    app_secret: Option<Vec<u8>>,
}

/// After a record: keep going, or stop (with an error when decryption failed).
enum Next {
    Go,
    Stop(Option<String>),
}

fn label(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        Dir::ToClient => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    }
}

/// Should this encrypted (outer type 23) record be opened? Looks the keys up on the first
/// record of a direction after a TLS 1.3 ServerHello.
pub fn wants(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx) -> bool {
    if matches!(st.dec, Dec::Undecided) {
        match facts.version() {
            Some(Version::TLS13) if facts.server_hello.is_some() => st.dec = lookup(facts, cx),
            // TLS <= 1.2 is not decrypted: decide once.
            Some(v) if v != Version::TLS13 => st.dec = Dec::Off,
            _ => return false,
        }
    }
    st.dec.active()
}

fn lookup(facts: &mut TlsFacts, cx: &Ctx) -> Dec {
    let (Some(log), Some(ch), Some(sh)) = (cx.keylog, &facts.client_hello, &facts.server_hello)
    else {
        return Dec::Off;
    };
    let Some(secrets) = ch.random.and_then(|r| log.lookup(&r)) else {
        return Dec::Off;
    };
    let early = ch.early_data;
    let cipher_suite = sh.cipher_suite;
    let d = facts.decrypted.get_or_insert_with(DecryptedHandshake::default);
    let Some((aead, hash)) = suite(cipher_suite) else {
        d.error.get_or_insert(format!(
            "cipher suite 0x{cipher_suite:04x} is not supported for decryption"
        ));
        return Dec::Off;
    };
    let (secret, app_secret) = match cx.dir {
        Dir::ToServer => (secrets.client_handshake, None),
        Dir::ToClient => (secrets.server_handshake, secrets.server_traffic_0),
    };
    let Some(secret) = secret else {
        d.error.get_or_insert(format!("the key log has no {} for this flow", label(cx.dir)));
        return Dec::Off;
    };
    let key =
        (secret.len() == hash.output_len()).then(|| RecordKey::new(aead, hash, &secret)).flatten();
    let Some(key) = key else {
        d.error.get_or_insert(format!(
            "the key log's {} is {} bytes; the suite needs {}",
            label(cx.dir),
            secret.len(),
            hash.output_len()
        ));
        return Dec::Off;
    };
    let app_secret = app_secret.filter(|s| s.len() == hash.output_len());
    Dec::On(Box::new(DirDecrypt {
        aead,
        hash,
        key,
        phase: Phase::Handshake,
        aad: [0; 5],
        record: Vec::new(),
        hs: Vec::new(),
        early_skips: if cx.dir == Dir::ToServer && early { MAX_EARLY_RECORDS } else { 0 },
        app_secret,
    }))
}

/// A record to open starts: remember its header (the AAD).
pub fn start(st: &mut DirState, header: [u8; 5]) {
    if let Dec::On(d) = &mut st.dec {
        d.aad = header;
        d.record.clear();
    }
}

/// Ciphertext bytes of the current record.
pub fn push(st: &mut DirState, chunk: &[u8]) {
    if let Dec::On(d) = &mut st.dec {
        d.record.extend_from_slice(chunk);
    }
}

/// Stops decrypting this direction (a capture gap, the stream stopped being TLS).
pub fn abort(st: &mut DirState, facts: &mut TlsFacts, dir: Dir, why: &str) {
    if st.dec.active() {
        st.dec = Dec::Off;
        if let Some(d) = facts.decrypted.as_mut() {
            d.error.get_or_insert(format!("{}: {why}", dir.sender()));
        }
    }
}

/// The current record is complete: open it and read what it holds.
pub fn end(st: &mut DirState, facts: &mut TlsFacts, cx: &Ctx) {
    let Dec::On(d) = &mut st.dec else { return };
    let next = d.record_done(facts, cx);
    if let Next::Stop(err) = next {
        st.dec = Dec::Off;
        if let (Some(e), Some(dh)) = (err, facts.decrypted.as_mut()) {
            dh.error.get_or_insert(format!("{}: {e}", cx.dir.sender()));
        }
    }
}

impl DirDecrypt {
    fn record_done(&mut self, facts: &mut TlsFacts, cx: &Ctx) -> Next {
        let mut buf = std::mem::take(&mut self.record);
        let seq = self.key.seq;
        if !self.key.open(&self.aad, &mut buf) {
            if self.early_skips > 0 && seq == 0 && self.phase == Phase::Handshake {
                // 0-RTT data (or EndOfEarlyData) under the early key: not ours to read.
                self.early_skips -= 1;
                return Next::Go;
            }
            let what = match self.phase {
                Phase::Handshake => label(cx.dir),
                Phase::Tickets(_) => "SERVER_TRAFFIC_SECRET_0",
            };
            return Next::Stop(Some(format!(
                "encrypted record {} did not open with the key log's {what} (wrong key, or bytes altered)",
                seq + 1
            )));
        }
        let Some(ctype) = inner_type(&mut buf) else {
            return Next::Stop(Some("a decrypted record had no content type".into()));
        };
        if let Phase::Tickets(n) = &mut self.phase {
            *n += 1;
            if ctype != 22 || *n > MAX_TICKET_RECORDS {
                // Application data (dropped unread), an alert, or enough looking.
                return Next::Stop(None);
            }
        }
        match ctype {
            22 => {
                if self.hs.len() + buf.len() > cx.limits.max_buffer {
                    return Next::Stop(Some(
                        "a decrypted handshake message is over the buffer cap".into(),
                    ));
                }
                self.hs.extend_from_slice(&buf);
                self.messages(facts, cx)
            }
            // An alert under handshake keys ends the handshake; nothing more to read.
            21 => Next::Stop(None),
            23 => Next::Stop(Some("application data before the Finished message".into())),
            t => Next::Stop(Some(format!("decrypted record has content type {t}"))),
        }
    }

    /// Reads every whole handshake message in the buffer.
    fn messages(&mut self, facts: &mut TlsFacts, cx: &Ctx) -> Next {
        loop {
            let Some(h) = self.hs.get(..4) else { return Next::Go };
            let (typ, len) = (h[0], u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize);
            if 4 + len > cx.limits.max_buffer {
                return Next::Stop(Some(format!(
                    "a decrypted {} of {len} bytes is over the buffer cap",
                    HandshakeType(typ)
                )));
            }
            if self.hs.len() < 4 + len {
                return Next::Go;
            }
            let rest = self.hs.split_off(4 + len);
            let msg = std::mem::replace(&mut self.hs, rest);
            if let Next::Stop(e) = self.message(facts, cx, typ, &msg[4..]) {
                return Next::Stop(e);
            }
        }
    }

    fn message(&mut self, facts: &mut TlsFacts, cx: &Ctx, typ: u8, body: &[u8]) -> Next {
        let d = facts.decrypted.get_or_insert_with(DecryptedHandshake::default);
        let mut msg = HandshakeMsg {
            dir: Some(cx.dir),
            kind: HandshakeType(typ),
            len: u32::try_from(body.len()).unwrap_or(u32::MAX),
            ts: cx.ts,
            ..Default::default()
        };
        let mut next = Next::Go;
        match (cx.dir, typ, self.phase) {
            (Dir::ToClient, 8, Phase::Handshake) => d.alpn = encrypted_extensions_alpn(body),
            (Dir::ToClient, 13, Phase::Handshake) => d.certificate_request = true,
            (_, 11, Phase::Handshake) => {
                let chain = parse_chain13(body);
                msg.certs = Some(chain.summary());
                let slot = match cx.dir {
                    Dir::ToServer => &mut d.client_certs,
                    Dir::ToClient => &mut d.server_certs,
                };
                slot.get_or_insert(chain);
            }
            (Dir::ToServer, 15, Phase::Handshake) => d.client_certificate_verify = true,
            (Dir::ToClient, 20, Phase::Handshake) => {
                d.server_finished = true;
                next = self.switch_to_application_keys();
            }
            (Dir::ToServer, 20, Phase::Handshake) => {
                d.client_finished = true;
                next = Next::Stop(None);
            }
            (Dir::ToClient, 4, Phase::Tickets(_)) if d.tickets.len() < MAX_TICKETS => {
                d.tickets.push(ticket13(body));
            }
            // KeyUpdate changes the keys: stop reading.
            (_, 24, _) => next = Next::Stop(None),
            _ => {}
        }
        if d.messages.len() < MAX_MESSAGES {
            d.messages.push(msg);
        }
        next
    }

    /// After the server's Finished: its application keys, to find NewSessionTicket.
    fn switch_to_application_keys(&mut self) -> Next {
        if !self.hs.is_empty() {
            return Next::Stop(Some("handshake bytes after Finished under the same key".into()));
        }
        let Some(secret) = self.app_secret.take() else {
            return Next::Stop(None);
        };
        match RecordKey::new(self.aead, self.hash, &secret) {
            Some(key) => {
                self.key = key;
                self.phase = Phase::Tickets(0);
                Next::Go
            }
            None => Next::Stop(None),
        }
    }
}

/// ALPN selected in EncryptedExtensions: `Extension extensions<0..2^16-1>`.
fn encrypted_extensions_alpn(body: &[u8]) -> Option<String> {
    let exts = body.get(2..)?;
    let mut alpn = None;
    walk_extensions(exts, |typ, one| {
        if typ == 16 {
            // ProtocolNameList: u16 length, then u8-length names; the server picks one.
            let len = one.get(6).copied().map(usize::from);
            alpn = len.and_then(|n| one.get(7..7 + n)).map(escape);
        }
    });
    alpn
}

/// TLS 1.3 Certificate: `opaque certificate_request_context<0..2^8-1>;
/// CertificateEntry certificate_list<0..2^24-1>`, each entry
/// `opaque cert_data<1..2^24-1>; Extension extensions<0..2^16-1>`.
pub fn parse_chain13(body: &[u8]) -> CertChain {
    let ctx_len = body.first().map_or(0, |&n| usize::from(n));
    super::handshake::parse_cert_list(body, 1 + ctx_len, true)
}

/// TLS 1.3 NewSessionTicket: `uint32 ticket_lifetime; uint32 ticket_age_add;
/// opaque ticket_nonce<0..255>; opaque ticket<1..2^16-1>; Extension extensions<0..2^16-2>`.
fn ticket13(body: &[u8]) -> TicketFacts {
    let lifetime_hint = body.get(..4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let nonce_len = body.get(8).map_or(0, |&n| usize::from(n));
    let at = 9 + nonce_len;
    let ticket = body
        .get(at..at + 2)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        .and_then(|len| body.get(at + 2..at + 2 + len))
        .unwrap_or_default();
    TicketFacts {
        lifetime_hint,
        len: u32::try_from(ticket.len()).unwrap_or(u32::MAX),
        hash: fnv1a64(ticket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // RFC 8448 section 3, "Simple 1-RTT Handshake".
    const S_HS_SECRET: &str =
        "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
    const C_HS_SECRET: &str =
        "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
    const CLIENT_FINISHED_RECORD: &str =
        "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c
        56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c
        ae ac ab 68 67 d7 26 c4 05 46";
    const CLIENT_FINISHED: &str = "14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a c1 fc eb e1 1a 03
        9e c1 76 94 fa c6 e9 85 27 b6 42 f2 ed d5 ce 61";

    #[test]
    fn hkdf_expand_label_matches_rfc8448() {
        let e = |secret: &str, label: &[u8], n| {
            hkdf_expand_label(Hash::Sha256, &h(secret), label, &[], n).expect("expands")
        };
        assert_eq!(
            e(S_HS_SECRET, b"key", 16),
            h("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(e(S_HS_SECRET, b"iv", 12), h("5d 31 3e b2 67 12 76 ee 13 00 0b 30"));
        assert_eq!(
            e(C_HS_SECRET, b"key", 16),
            h("db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01")
        );
        assert_eq!(e(C_HS_SECRET, b"iv", 12), h("5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f"));
        // The server's finished_key: HKDF-Expand-Label(secret, "finished", "", 32).
        assert_eq!(
            e(S_HS_SECRET, b"finished", 32),
            h("00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85 c3 1f c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8 cd c1 9f c8")
        );
    }

    #[test]
    fn opens_the_rfc8448_client_finished_record() {
        let mut key = RecordKey::new(Aead::Aes128Gcm, Hash::Sha256, &h(C_HS_SECRET)).expect("key");
        let record = h(CLIENT_FINISHED_RECORD);
        let header: [u8; 5] = record[..5].try_into().expect("header");
        let mut buf = record[5..].to_vec();
        assert!(key.open(&header, &mut buf));
        assert_eq!(inner_type(&mut buf), Some(22));
        assert_eq!(buf, h(CLIENT_FINISHED));
        assert_eq!(key.seq, 1);
        // Same bytes again: sequence 1 gives another nonce, so it must not open.
        let mut again = record[5..].to_vec();
        assert!(!key.open(&header, &mut again));
        // A wrong key never opens it, and never panics.
        let mut wrong =
            RecordKey::new(Aead::Aes128Gcm, Hash::Sha256, &h(S_HS_SECRET)).expect("key");
        let mut buf = record[5..].to_vec();
        assert!(!wrong.open(&header, &mut buf));
        let mut short = vec![1, 2, 3];
        assert!(!wrong.open(&header, &mut short));
    }

    #[test]
    fn chacha20_poly1305_records_open_in_sequence() {
        let secret = [7u8; 32];
        let key = hkdf_expand_label(Hash::Sha256, &secret, b"key", &[], 32).expect("key");
        let iv = hkdf_expand_label(Hash::Sha256, &secret, b"iv", &[], 12).expect("iv");
        let sealer = ChaCha20Poly1305::new_from_slice(&key).expect("cipher");
        let mut opener =
            RecordKey::new(Aead::ChaCha20Poly1305, Hash::Sha256, &secret).expect("key");
        for seq in 0u64..3 {
            let mut nonce: [u8; 12] = iv.clone().try_into().expect("12 bytes");
            for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *n ^= s;
            }
            let mut buf = vec![20, 0, 0, 32, seq as u8, 22, 0, 0];
            let len = (buf.len() + 16) as u16;
            let header = [23, 3, 3, (len >> 8) as u8, len as u8];
            let nonce = chacha20poly1305::Nonce::from_slice(&nonce);
            sealer.encrypt_in_place(nonce, &header, &mut buf).expect("sealed");
            assert!(opener.open(&header, &mut buf), "record {seq}");
            assert_eq!(inner_type(&mut buf), Some(22));
            assert_eq!(buf, [20, 0, 0, 32, seq as u8]);
        }
    }

    #[test]
    fn inner_plaintext_padding() {
        let mut b = vec![1, 2, 22, 0, 0, 0];
        assert_eq!(inner_type(&mut b), Some(22));
        assert_eq!(b, [1, 2]);
        assert_eq!(inner_type(&mut vec![0, 0]), None);
        assert_eq!(inner_type(&mut Vec::new()), None);
    }

    #[test]
    fn tls13_certificate_message() {
        // Context "", two entries (3 and 2 bytes) with no extensions.
        let body = h("00 00 00 0f 00 00 03 aa bb cc 00 00 00 00 02 dd ee 00 00");
        let c = parse_chain13(&body);
        assert_eq!((c.count, c.malformed, c.der.len()), (2, false, 2));
        assert!(!c.is_empty());
        let empty = parse_chain13(&h("00 00 00 00"));
        assert!(empty.is_empty());
        // Every prefix parses without panicking.
        for n in 0..body.len() {
            let _ = parse_chain13(&body[..n]);
        }
    }

    #[test]
    fn tls13_ticket() {
        let body = h("00 00 1c 20 01 02 03 04 02 aa bb 00 03 de ad be 00 00");
        let t = ticket13(&body);
        assert_eq!((t.lifetime_hint, t.len, t.hash), (7200, 3, fnv1a64(&[0xde, 0xad, 0xbe])));
    }
}
