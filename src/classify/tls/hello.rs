//! ClientHello and ServerHello bodies -> facts, with tls-parser doing the field parsing.
//!
//! Extensions are walked here (type, length, data) so that one malformed extension costs only
//! itself: tls-parser's list parser stops silently at the first one it cannot read, and the raw
//! type list must stay complete for fingerprints.

use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension, TlsCipherAu, TlsCipherEnc,
    TlsCipherKx, TlsCipherSuite, TlsExtension,
};

use super::facts::{escape, fnv1a64, ClientHelloFacts, ServerHelloFacts, Version, MAX_LIST};

/// SHA-256("HelloRetryRequest"): a ServerHello with this random is a HelloRetryRequest (RFC 8446 4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Splits an extensions block into (type, whole extension bytes); false if it was malformed.
pub(super) fn walk_extensions(mut ext: &[u8], mut each: impl FnMut(u16, &[u8])) -> bool {
    while !ext.is_empty() {
        if ext.len() < 4 {
            return false;
        }
        let typ = u16::from_be_bytes([ext[0], ext[1]]);
        let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        let Some(one) = ext.get(..4 + len) else {
            return false;
        };
        each(typ, one);
        ext = &ext[4 + len..];
    }
    true
}

fn push_capped<T>(v: &mut Vec<T>, x: T) {
    if v.len() < MAX_LIST {
        v.push(x);
    }
}

/// `uint16 list<..>`: the list's elements, or `None` when its length runs past `data`.
fn u16_list(data: &[u8]) -> Option<impl Iterator<Item = u16> + '_> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let list = data.get(2..2 + len)?;
    Some(list.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])))
}

/// key_share in a ClientHello: `KeyShareEntry client_shares<0..2^16-1>`; groups only.
fn key_share_groups(data: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let Some(list) = data.get(2..) else {
        return out;
    };
    let mut rest = list;
    while rest.len() >= 4 {
        let group = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        push_capped(&mut out, group);
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    out
}

pub fn parse_client_hello(body: &[u8]) -> ClientHelloFacts {
    let mut f = ClientHelloFacts {
        len: u32::try_from(body.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    if body.len() >= 2 {
        f.legacy_version = Version(u16::from_be_bytes([body[0], body[1]]));
    }
    let ch = match parse_tls_handshake_client_hello(body) {
        Ok((_, ch)) => ch,
        Err(_) => {
            f.malformed = true;
            return f;
        }
    };
    f.session_id = ch.session_id.unwrap_or_default().to_vec();
    f.random = ch.random.try_into().ok();
    f.cipher_suites_count = u32::try_from(ch.ciphers.len()).unwrap_or(u32::MAX);
    f.cipher_suites = ch.ciphers.iter().take(MAX_LIST).map(|c| c.0).collect();
    f.compression_methods = ch.comp.iter().take(MAX_LIST).map(|c| c.0).collect();
    let ext = ch.ext.unwrap_or_default();
    let ok = walk_extensions(ext, |typ, one| {
        push_capped(&mut f.extensions, typ);
        client_extension(&mut f, typ, one);
    });
    f.malformed |= !ok;
    f
}

fn client_extension(f: &mut ClientHelloFacts, typ: u16, one: &[u8]) {
    if typ == 41 {
        f.psk_identities = psk_identities(one.get(4..).unwrap_or_default());
    }
    if typ == 13 {
        // Read here: tls-parser grows its list one element at a time, and the list is
        // copied again anyway. Same reading (a length-prefixed list; an odd last byte is
        // ignored); a length past the body falls through to tls-parser's verdict.
        if let Some(list) = u16_list(one.get(4..).unwrap_or_default()) {
            f.signature_algorithms = list.take(MAX_LIST).collect();
            return;
        }
    }
    let Ok((_, ext)) = parse_tls_client_hello_extension(one) else {
        // Known type with a body tls-parser rejects: presence still matters.
        match typ {
            41 => f.pre_shared_key = true,
            42 => f.early_data = true,
            49 => f.post_handshake_auth = true,
            _ => {}
        }
        return;
    };
    match ext {
        TlsExtension::SNI(names) => {
            if let Some((_, name)) = names.iter().find(|(t, _)| t.0 == 0) {
                f.sni = Some(escape(name));
            }
        }
        TlsExtension::ALPN(protos) => {
            f.alpn = protos.iter().take(MAX_LIST).map(|p| escape(p)).collect();
        }
        TlsExtension::SupportedVersions(v) => {
            f.supported_versions = v.iter().take(MAX_LIST).map(|v| Version(v.0)).collect();
        }
        TlsExtension::EllipticCurves(g) => {
            f.supported_groups = g.iter().take(MAX_LIST).map(|g| g.0).collect();
        }
        TlsExtension::EcPointFormats(p) => {
            f.ec_point_formats = p.iter().take(MAX_LIST).copied().collect()
        }
        TlsExtension::SignatureAlgorithms(s) => {
            f.signature_algorithms = s.into_iter().take(MAX_LIST).collect();
        }
        TlsExtension::SessionTicket(t) => {
            f.session_ticket = Some(u32::try_from(t.len()).unwrap_or(u32::MAX));
            f.session_ticket_hash = (!t.is_empty()).then(|| fnv1a64(t));
        }
        TlsExtension::PreSharedKey(_) => f.pre_shared_key = true,
        TlsExtension::EarlyData(_) => f.early_data = true,
        TlsExtension::PskExchangeModes(m) => {
            f.psk_key_exchange_modes = m.into_iter().take(MAX_LIST).collect()
        }
        TlsExtension::KeyShare(data) => f.key_share_groups = key_share_groups(data),
        TlsExtension::PostHandshakeAuth => f.post_handshake_auth = true,
        _ => {}
    }
}

/// pre_shared_key in a ClientHello: `PskIdentity identities<7..2^16-1>` (each
/// `opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age`), then the binders.
fn psk_identities(data: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let Some(l) = data.get(..2) else { return out };
    let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
    let mut rest = data.get(2..2 + len).unwrap_or_default();
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let Some(identity) = rest.get(2..2 + n) else { break };
        push_capped(&mut out, fnv1a64(identity));
        rest = rest.get(2 + n + 4..).unwrap_or_default();
    }
    out
}

/// Result of reading a ServerHello body.
pub struct ServerHelloRead {
    pub facts: ServerHelloFacts,
    pub retry: bool,
}

pub fn parse_server_hello(body: &[u8]) -> ServerHelloRead {
    let mut f = ServerHelloFacts::default();
    if body.len() >= 2 {
        f.legacy_version = Version(u16::from_be_bytes([body[0], body[1]]));
        f.version = f.legacy_version;
    }
    let sh = match parse_tls_handshake_server_hello(body) {
        Ok((_, sh)) => sh,
        Err(_) => {
            f.malformed = true;
            return ServerHelloRead { facts: f, retry: false };
        }
    };
    let retry = sh.random == HRR_RANDOM;
    f.session_id = sh.session_id.unwrap_or_default().to_vec();
    f.cipher_suite = sh.cipher.0;
    f.compression = sh.compression.0;
    let ok = walk_extensions(sh.ext.unwrap_or_default(), |typ, one| {
        push_capped(&mut f.extensions, typ);
        let Ok((_, ext)) = parse_tls_server_hello_extension(one) else {
            return;
        };
        match ext {
            TlsExtension::SupportedVersions(v) => {
                if let Some(v) = v.first() {
                    f.version = Version(v.0);
                }
            }
            TlsExtension::PreSharedKey(_) => f.psk_accepted = true,
            TlsExtension::KeyShare(d) if d.len() >= 2 => {
                f.key_share_group = Some(u16::from_be_bytes([d[0], d[1]]));
            }
            TlsExtension::ALPN(p) => f.alpn = p.first().map(|p| escape(p)),
            TlsExtension::SessionTicket(_) => f.session_ticket = true,
            _ => {}
        }
    });
    f.malformed |= !ok;
    classify_suite(&mut f);
    ServerHelloRead { facts: f, retry }
}

fn classify_suite(f: &mut ServerHelloFacts) {
    // RFC 9150 integrity-only TLS 1.3 suites; tls-parser's table may not have them.
    if matches!(f.cipher_suite, 0xc0b4 | 0xc0b5) {
        f.null_cipher = true;
        f.cipher_name =
            Some(if f.cipher_suite == 0xc0b4 { "TLS_SHA256_SHA256" } else { "TLS_SHA384_SHA384" });
        return;
    }
    let Some(cs) = TlsCipherSuite::from_id(f.cipher_suite) else {
        return;
    };
    f.cipher_name = Some(cs.name);
    f.null_cipher = cs.enc == TlsCipherEnc::Null;
    f.anonymous = cs.au == TlsCipherAu::Null && cs.kx != TlsCipherKx::Null;
    f.psk_suite = cs.kx == TlsCipherKx::Psk || cs.au == TlsCipherAu::Psk;
}

/// TLS 1.3 suites: (hash length, AEAD tag length). Finished is hash-length bytes; every
/// encrypted record adds one inner content-type byte and the tag.
pub fn tls13_suite_sizes(suite: u16) -> Option<(u16, u16)> {
    Some(match suite {
        0x1301 | 0x1303 | 0x1304 => (32, 16),
        0x1302 => (48, 16),
        0x1305 => (32, 8),           // TLS_AES_128_CCM_8_SHA256
        0x00c6 | 0x00c7 => (32, 16), // RFC 8998 SM4 suites (SM3 is 32 bytes)
        0xc0b4 => (32, 32),          // TLS_SHA256_SHA256: the "tag" is an HMAC
        0xc0b5 => (48, 48),
        _ => return None,
    })
}

/// The SSL 2.0-compatible ClientHello (RFC 5246 E.2): a 2-byte header with the top bit set,
/// msg_type 1, version, three lengths, 3-byte cipher specs, session id, challenge.
/// `body` is the record after its 2-byte header.
pub fn parse_sslv2_client_hello(body: &[u8]) -> Option<ClientHelloFacts> {
    if body.len() < 9 || body[0] != 1 {
        return None;
    }
    let specs_len = usize::from(u16::from_be_bytes([body[3], body[4]]));
    let sid_len = usize::from(u16::from_be_bytes([body[5], body[6]]));
    let specs = body.get(9..9 + specs_len)?;
    let session_id = body.get(9 + specs_len..9 + specs_len + sid_len)?;
    let mut f = ClientHelloFacts {
        len: u32::try_from(body.len()).unwrap_or(u32::MAX),
        sslv2_format: true,
        legacy_version: Version(u16::from_be_bytes([body[1], body[2]])),
        cipher_suites_count: u32::try_from(specs_len / 3).unwrap_or(u32::MAX),
        session_id: session_id.iter().take(32).copied().collect(),
        ..Default::default()
    };
    // Specs whose first byte is zero are TLS suites; the others are SSL 2.0 kinds.
    for s in specs.chunks_exact(3).filter(|s| s[0] == 0) {
        push_capped(&mut f.cipher_suites, u16::from_be_bytes([s[1], s[2]]));
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_algorithms_read_as_tls_parser_reads_them() {
        let bodies: [&[u8]; 8] = [
            &[0, 4, 4, 3, 8, 4],
            &[0, 0],
            &[0, 5, 4, 3, 8, 4, 1], // an odd last byte
            &[0, 2, 4, 3, 8, 4],    // bytes after the list
            &[0, 6, 4, 3, 8, 4],    // a length past the body
            &[0],                   // no room for the length
            &[],
            &[0, 8, 0x0a, 0x0a, 4, 3, 5, 3, 8, 7],
        ];
        for body in bodies {
            let mut ext = vec![0, 13];
            ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
            ext.extend_from_slice(body);
            let theirs = match parse_tls_client_hello_extension(&ext) {
                Ok((_, TlsExtension::SignatureAlgorithms(l))) => Some(l),
                _ => None,
            };
            let ours = u16_list(body).map(Iterator::collect::<Vec<_>>);
            assert_eq!(ours, theirs, "{body:?}");
            let mut f = ClientHelloFacts::default();
            client_extension(&mut f, 13, &ext);
            assert_eq!(f.signature_algorithms, theirs.unwrap_or_default(), "{body:?}");
        }
    }
}
