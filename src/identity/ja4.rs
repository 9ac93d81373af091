//! JA4 (TLS client) and JA4S (TLS server) fingerprints, after FoxIO's specification and its
//! reference implementation (checked against the JA4 project's own captures, see
//! tests/ja4_corpus.rs). Only TLS over TCP, so the first character is always `t`.
//!
//! JA4:  `t13d1516h2_8daaf6152771_b186095e22b6`
//!       version (highest supported_versions, else the ClientHello version), SNI `d`/`i`,
//!       ciphers and extensions counted without GREASE (at most 99), first and last
//!       character of the first ALPN (`00` without ALPN); sha256/12 of the sorted ciphers;
//!       sha256/12 of the sorted extensions without SNI and ALPN, `_`, signature algorithms
//!       in wire order (no `_` when there are none). An empty list hashes to `000000000000`.
//! JA4S: `t130200_1301_234ea6891581`
//!       version, extension count, ALPN chosen; the cipher; sha256/12 of the extensions in
//!       wire order.

use sha2::{Digest, Sha256};

use crate::classify::tls::{ClientHelloFacts, ServerHelloFacts};

const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// GREASE values (RFC 8701): 0x?a?a with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let digest = Sha256::digest(s.as_bytes());
    crate::common::hex(&digest[..6])
}

fn hex_list(values: impl Iterator<Item = u16>) -> String {
    values.map(|v| format!("{v:04x}")).collect::<Vec<_>>().join(",")
}

/// Undo `facts::escape` (printable ASCII kept, `\\` and `\xNN` otherwise).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let byte = s.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.unwrap_or(b'\\'));
            i += if byte.is_some() { 4 } else { 1 };
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// First and last character of an ALPN value; a non-ASCII byte counts as `9`, a missing one
/// as `0` (as the reference implementation does).
fn alpn_chars(alpn: Option<&String>) -> String {
    let bytes = alpn.map(|a| unescape(a)).unwrap_or_default();
    let ch = |b: Option<&u8>| match b {
        Some(&b) if b.is_ascii() => char::from(b),
        Some(_) => '9',
        None => '0',
    };
    let last = if bytes.len() > 1 { bytes.last() } else { None };
    format!("{}{}", ch(bytes.first()), ch(last))
}

/// JA4 of a ClientHello; `None` when its body could not be read at all.
pub fn ja4(ch: &ClientHelloFacts) -> Option<String> {
    if ch.malformed && ch.cipher_suites.is_empty() {
        return None;
    }
    let exts: Vec<u16> = ch.extensions.iter().copied().filter(|&e| !is_grease(e)).collect();
    let version = if exts.contains(&EXT_SUPPORTED_VERSIONS) {
        ch.supported_versions.iter().map(|v| v.0).filter(|&v| !is_grease(v)).max().unwrap_or(0)
    } else {
        ch.legacy_version.0
    };
    let sni = if exts.contains(&EXT_SNI) { 'd' } else { 'i' };
    let mut ciphers: Vec<u16> =
        ch.cipher_suites.iter().copied().filter(|&c| !is_grease(c)).collect();
    let head = format!(
        "t{}{sni}{:02}{:02}{}",
        version_code(version),
        ciphers.len().min(99),
        exts.len().min(99),
        alpn_chars(ch.alpn.first())
    );
    ciphers.sort_unstable();
    let mut sorted: Vec<u16> =
        exts.iter().copied().filter(|&e| e != EXT_SNI && e != EXT_ALPN).collect();
    sorted.sort_unstable();
    let sigs = hex_list(ch.signature_algorithms.iter().copied().filter(|&s| !is_grease(s)));
    let mut ext_part = hex_list(sorted.into_iter());
    if !sigs.is_empty() {
        ext_part.push('_');
        ext_part.push_str(&sigs);
    }
    Some(format!("{head}_{}_{}", hash12(&hex_list(ciphers.into_iter())), hash12(&ext_part)))
}

/// JA4 and JA4S of hellos already fingerprinted in this run, by their exact fields: one
/// client stack sends the same hello on every connection, and one server answers alike.
#[derive(Debug, Default)]
pub struct Ja4Cache {
    hellos: Memo<Ja4Input>,
    server_hellos: Memo<Ja4sInput>,
}

/// Fingerprints by the fields they were computed from. Bounded: forgotten wholesale when full.
#[derive(Debug)]
struct Memo<K> {
    seen: rustc_hash::FxHashMap<u64, Vec<(K, Option<String>)>>,
    len: usize,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Memo { seen: Default::default(), len: 0 }
    }
}

impl<K: std::hash::Hash + Eq> Memo<K> {
    const MAX: usize = 1024;

    fn get_or(&mut self, input: K, make: impl FnOnce() -> Option<String>) -> Option<String> {
        use std::hash::BuildHasher;
        let key = rustc_hash::FxBuildHasher.hash_one(&input);
        if let Some((_, hit)) = self.seen.get(&key).and_then(|v| v.iter().find(|e| e.0 == input)) {
            return hit.clone();
        }
        let fingerprint = make();
        if self.len >= Self::MAX {
            self.seen.clear();
            self.len = 0;
        }
        self.seen.entry(key).or_default().push((input, fingerprint.clone()));
        self.len += 1;
        fingerprint
    }
}

/// The ClientHello fields JA4 reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ja4Input {
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    signature_algorithms: Vec<u16>,
    versions: Vec<u16>,
    legacy: u16,
    alpn: Option<String>,
    malformed: bool,
}

impl Ja4Input {
    fn of(ch: &ClientHelloFacts) -> Self {
        Ja4Input {
            ciphers: ch.cipher_suites.clone(),
            extensions: ch.extensions.clone(),
            signature_algorithms: ch.signature_algorithms.clone(),
            versions: ch.supported_versions.iter().map(|v| v.0).collect(),
            legacy: ch.legacy_version.0,
            alpn: ch.alpn.first().cloned(),
            malformed: ch.malformed,
        }
    }
}

/// The ServerHello fields JA4S reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ja4sInput {
    version: u16,
    cipher: u16,
    extensions: Vec<u16>,
    alpn: Option<String>,
    malformed: bool,
}

impl Ja4Cache {
    /// [`ja4`], remembering the result.
    pub fn ja4(&mut self, ch: &ClientHelloFacts) -> Option<String> {
        self.hellos.get_or(Ja4Input::of(ch), || ja4(ch))
    }

    /// [`ja4s`], remembering the result.
    pub fn ja4s(&mut self, sh: &ServerHelloFacts) -> Option<String> {
        let input = Ja4sInput {
            version: sh.version.0,
            cipher: sh.cipher_suite,
            extensions: sh.extensions.clone(),
            alpn: sh.alpn.clone(),
            malformed: sh.malformed,
        };
        self.server_hellos.get_or(input, || ja4s(sh))
    }
}

/// JA4S of a ServerHello (the real one, after any HelloRetryRequest).
pub fn ja4s(sh: &ServerHelloFacts) -> Option<String> {
    if sh.malformed && sh.cipher_suite == 0 {
        return None;
    }
    Some(format!(
        "t{}{:02}{}_{:04x}_{}",
        // supported_versions when the server sent it, else the legacy field.
        version_code(sh.version.0),
        sh.extensions.len().min(99),
        alpn_chars(sh.alpn.as_ref()),
        sh.cipher_suite,
        hash12(&hex_list(sh.extensions.iter().copied()))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tls::Version;

    /// The worked example of the reference implementation's unit test (Chrome-like hello).
    fn chrome() -> ClientHelloFacts {
        ClientHelloFacts {
            legacy_version: Version::TLS12,
            supported_versions: vec![Version(0x3a3a), Version::TLS13, Version::TLS12],
            sni: Some("example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            cipher_suites: vec![
                0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x0a0a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005,
                0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0xfafa,
            ],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..Default::default()
        }
    }

    #[test]
    fn ja4_of_the_reference_example_ignores_grease() {
        assert_eq!(ja4(&chrome()).as_deref(), Some("t13d1516h2_8daaf6152771_e5627efa2ab1"));
    }

    #[test]
    fn ja4_without_sni_alpn_or_sigs() {
        let mut ch = chrome();
        ch.extensions.retain(|&e| e != 0x0000 && e != 0x0010 && e != 0x000d);
        ch.sni = None;
        ch.alpn.clear();
        ch.signature_algorithms.clear();
        let fp = ja4(&ch).expect("ja4");
        assert!(fp.starts_with("t13i151300_8daaf6152771_"), "{fp}");
        // Extensions only, no trailing underscore before hashing.
        let exts = "0005,000a,000b,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01";
        assert_eq!(&fp[24..], hash12(exts));
    }

    #[test]
    fn ja4_version_from_legacy_field_and_non_ascii_alpn() {
        let mut ch = chrome();
        ch.extensions.retain(|&e| e != EXT_SUPPORTED_VERSIONS);
        ch.alpn = vec![escape_for_test(&[0xab, b'x', 0xcd])];
        assert!(ja4(&ch).expect("ja4").starts_with("t12d151599_"));
        ch.alpn = vec!["h".into()];
        assert!(ja4(&ch).expect("ja4").starts_with("t12d1515h0_"));
    }

    fn escape_for_test(b: &[u8]) -> String {
        crate::classify::tls::escape(b)
    }

    #[test]
    fn ja4s_of_the_reference_example() {
        let sh = ServerHelloFacts {
            legacy_version: Version::TLS12,
            version: Version::TLS12,
            cipher_suite: 0xc030,
            extensions: vec![0x0005, 0x0017, 0xff01, 0x0000],
            ..Default::default()
        };
        assert_eq!(ja4s(&sh).as_deref(), Some("t120400_c030_4e8089b08790"));
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301) && !is_grease(0xaaab));
    }

    #[test]
    fn unescape_round_trips() {
        let raw = [b'a', b'\\', 0x00, 0xff, b'x'];
        assert_eq!(unescape(&crate::classify::tls::escape(&raw)), raw);
    }
}
