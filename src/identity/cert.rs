//! X.509 certificates seen on the wire -> the fields an operator reads and the flags they must
//! act on. Parsing is by `x509-parser`; nothing here verifies signatures (the capture holds no
//! trust anchors): the flags are what can be told from the certificates alone.

use sha2::{Digest, Sha256};
use std::sync::Arc;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::mesh::{self, Spiffe};
use crate::common::Timestamp;

/// Most entries kept per SAN kind, and most characters per name or SAN.
const MAX_SANS: usize = 16;
const MAX_NAME: usize = 256;

/// Something about a certificate chain that an operator must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CertFlag {
    /// The leaf's notAfter is before the flow's first packet.
    Expired,
    /// The leaf's notBefore is after the flow's first packet.
    NotYetValid,
    /// The leaf's issuer is its own subject.
    SelfSigned,
    /// A certificate's issuer is not the next certificate's subject.
    ChainDoesNotLink,
    /// A client certificate with no SAN and an empty CN: it names nobody.
    NoIdentity,
    /// A certificate in the chain could not be parsed as X.509.
    Unparseable,
}

impl CertFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            CertFlag::Expired => "expired",
            CertFlag::NotYetValid => "not-yet-valid",
            CertFlag::SelfSigned => "self-signed",
            CertFlag::ChainDoesNotLink => "chain-does-not-link",
            CertFlag::NoIdentity => "no-identity",
            CertFlag::Unparseable => "unparseable",
        }
    }
}

/// Subject alternative names by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sans {
    pub dns: Vec<String>,
    pub uri: Vec<String>,
    pub ip: Vec<String>,
    /// Other kinds (e-mail, directory name, ...): counted, not shown.
    pub other: u32,
}

/// The leaf certificate of a chain, read for people, with the chain's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// Empty strings and `None`s when the leaf did not parse (`flags` says so).
    pub subject: String,
    pub issuer: String,
    pub sans: Sans,
    pub spiffe: Option<Spiffe>,
    /// Lowercase hex, no separators.
    pub serial: String,
    /// Seconds since the Unix epoch.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// "rsa-2048", "ec-p256", "ed25519", ...
    pub key: Option<String>,
    /// Certificates in the Certificate message (the chain as sent).
    pub chain_length: u32,
    /// SHA-256 of the leaf's DER, lowercase hex.
    pub sha256: String,
    pub flags: Vec<CertFlag>,
    /// One sentence per flag, for the flow's warnings.
    pub problems: Vec<String>,
}

impl CertInfo {
    pub fn has(&self, flag: CertFlag) -> bool {
        self.flags.contains(&flag)
    }

    /// Lifetime in seconds, when both dates are known.
    pub fn lifetime(&self) -> Option<i64> {
        Some(self.not_after? - self.not_before?)
    }

    /// The common name of the subject ("" when absent).
    pub fn common_name(&self) -> &str {
        common_name(&self.subject)
    }

    /// The short identity: SPIFFE URI, else a Linkerd identity as `sa.ns`, else the first DNS
    /// SAN, else the CN. `None` when the certificate names nobody.
    pub fn short_identity(&self) -> Option<String> {
        if let Some(s) = &self.spiffe {
            return Some(s.uri.clone());
        }
        if let Some(l) = self.sans.dns.iter().find_map(|d| mesh::linkerd_identity(d)) {
            return Some(l.short());
        }
        if let Some(d) = self.sans.dns.first() {
            return Some(d.clone());
        }
        let cn = self.common_name();
        (!cn.is_empty()).then(|| cn.to_string())
    }
}

/// The value of the first `CN=` in an RFC 4514-style string.
fn common_name(dn: &str) -> &str {
    dn.split(", ").find_map(|rdn| rdn.strip_prefix("CN=")).unwrap_or("")
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_NAME {
        return s;
    }
    let mut out: String = s.chars().take(MAX_NAME).collect();
    out.push('…');
    out
}

use crate::common::hex;

/// RFC 3339 (seconds, UTC) for any second since the epoch, including before 1970.
pub fn rfc3339_secs(t: i64) -> String {
    crate::common::Rfc3339Secs(t).to_string()
}

fn key_name(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.3.101.112" => return "ed25519".into(),
        "1.3.101.113" => return "ed448".into(),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            return match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ec-p256".into(),
                Some("1.3.132.0.34") => "ec-p384".into(),
                Some("1.3.132.0.35") => "ec-p521".into(),
                Some("1.3.132.0.10") => "ec-secp256k1".into(),
                Some(other) => format!("ec-{other}"),
                None => "ec".into(),
            };
        }
        _ => {}
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", rsa.key_size()),
        Ok(PublicKey::DSA(_)) => "dsa".into(),
        _ => format!("oid-{alg}"),
    }
}

fn read_sans(cert: &X509Certificate<'_>) -> Sans {
    let mut sans = Sans::default();
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return sans;
    };
    for name in &ext.value.general_names {
        let (list, value) = match name {
            GeneralName::DNSName(d) => (&mut sans.dns, d.to_string()),
            GeneralName::URI(u) => (&mut sans.uri, u.to_string()),
            GeneralName::IPAddress(b) => (&mut sans.ip, ip_string(b)),
            _ => {
                sans.other += 1;
                continue;
            }
        };
        if list.len() < MAX_SANS {
            list.push(clip(crate::classify::printable(value.as_bytes(), MAX_NAME)));
        }
    }
    sans
}

fn ip_string(b: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        std::net::Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
        std::net::Ipv6Addr::from(v6).to_string()
    } else {
        hex(b)
    }
}

/// Which end sent the chain: only a client certificate must name someone for the server to
/// authorise it (a server is named by the SNI the client checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Reads a chain (leaf first, as sent) at the flow's time `at`. `None` for an empty chain.
pub fn read_chain(der: &[Arc<[u8]>], count: u32, side: Side, at: Timestamp) -> Option<CertInfo> {
    Some(ParsedChain::parse(der, count, side)?.at(side, at))
}

/// What a chain says independently of when it was seen: parsed once, judged per flow.
#[derive(Debug, Clone)]
struct ParsedChain {
    /// The leaf read, with the flags that come before the validity checks.
    info: CertInfo,
    leaf_parsed: bool,
    /// Flags from linking the chain, added after the validity checks.
    links: CertInfo,
}

impl ParsedChain {
    fn parse(der: &[Arc<[u8]>], count: u32, side: Side) -> Option<ParsedChain> {
        let leaf_der = der.first()?;
        let parsed: Vec<Option<X509Certificate<'_>>> =
            der.iter().map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c)).collect();
        let mut info = CertInfo {
            chain_length: count.max(u32::try_from(der.len()).unwrap_or(u32::MAX)),
            sha256: hex(&Sha256::digest(leaf_der)),
            ..Default::default()
        };
        let who = side.word();
        if let Some(i) = parsed.iter().position(Option::is_none) {
            let which = if i == 0 { "leaf".to_string() } else { format!("certificate {}", i + 1) };
            info.flag(CertFlag::Unparseable, format!("{who} {which} could not be parsed as X.509"));
        }
        let leaf_parsed = matches!(parsed.first(), Some(Some(_)));
        if let Some(Some(leaf)) = parsed.first() {
            fill_leaf(&mut info, leaf);
        }
        let mut links = CertInfo::default();
        check_links(&mut links, &parsed, who);
        Some(ParsedChain { info, leaf_parsed, links })
    }

    /// The chain as judged at the flow's time `at`.
    fn at(&self, side: Side, at: Timestamp) -> CertInfo {
        let mut info = self.info.clone();
        if self.leaf_parsed {
            check_leaf(&mut info, side, at);
        }
        for (flag, problem) in self.links.flags.iter().zip(&self.links.problems) {
            info.flag(*flag, problem.clone());
        }
        info
    }
}

/// One remembered chain: who presented it, its certificate count, its bytes, and the parse.
type CachedChain = (Side, u32, Vec<Arc<[u8]>>, ParsedChain);

/// Chains already parsed in this run, by their exact bytes: a workload presents the same
/// certificate on every connection, so most flows of a busy capture skip the X.509 parse.
/// Bounded: forgotten wholesale when full.
#[derive(Debug, Default)]
pub struct ChainCache {
    chains: rustc_hash::FxHashMap<u64, Vec<CachedChain>>,
    len: usize,
}

impl ChainCache {
    const MAX_CHAINS: usize = 1024;

    /// [`read_chain`], remembering the parse.
    pub fn read(
        &mut self,
        der: &[Arc<[u8]>],
        count: u32,
        side: Side,
        at: Timestamp,
    ) -> Option<CertInfo> {
        use std::hash::BuildHasher;
        let key = rustc_hash::FxBuildHasher.hash_one(der);
        let same = |e: &&CachedChain| e.0 == side && e.1 == count && e.2.as_slice() == der;
        if let Some(hit) = self.chains.get(&key).and_then(|v| v.iter().find(same)) {
            return Some(hit.3.at(side, at));
        }
        let parsed = ParsedChain::parse(der, count, side)?;
        let info = parsed.at(side, at);
        if self.len >= Self::MAX_CHAINS {
            self.chains.clear();
            self.len = 0;
        }
        self.chains.entry(key).or_default().push((side, count, der.to_vec(), parsed));
        self.len += 1;
        Some(info)
    }
}

fn fill_leaf(info: &mut CertInfo, leaf: &X509Certificate<'_>) {
    info.subject = clip(leaf.subject().to_string());
    info.issuer = clip(leaf.issuer().to_string());
    info.sans = read_sans(leaf);
    info.spiffe = info.sans.uri.iter().find_map(|u| mesh::parse_spiffe(u));
    // Without the sign-padding zero, as `openssl x509 -serial` prints it.
    let serial = leaf.raw_serial();
    let lead = serial.iter().take_while(|&&b| b == 0).count().min(serial.len().saturating_sub(1));
    info.serial = hex(&serial[lead..]);
    info.not_before = Some(leaf.validity().not_before.timestamp());
    info.not_after = Some(leaf.validity().not_after.timestamp());
    info.key = Some(key_name(leaf));
    // Compared as DER: a self-signed certificate repeats its subject byte for byte.
    if leaf.subject().as_raw() == leaf.issuer().as_raw() {
        info.flags.push(CertFlag::SelfSigned);
    }
}

fn check_leaf(info: &mut CertInfo, side: Side, at: Timestamp) {
    let who = side.word();
    let secs = at.secs();
    let when = Timestamp::from_secs_nanos(secs, 0).rfc3339();
    if let Some(na) = info.not_after.filter(|&na| secs > na) {
        let msg =
            format!("{who} certificate expired at {} (the flow began {when})", rfc3339_secs(na));
        info.flag(CertFlag::Expired, msg);
    }
    if let Some(nb) = info.not_before.filter(|&nb| secs < nb) {
        let msg = format!(
            "{who} certificate is not valid before {} (the flow began {when})",
            rfc3339_secs(nb)
        );
        info.flag(CertFlag::NotYetValid, msg);
    }
    if info.flags.contains(&CertFlag::SelfSigned) {
        info.problems.push(format!("{who} certificate is self-signed ({})", info.subject));
    }
    let sans = &info.sans;
    let empty = sans.dns.is_empty() && sans.uri.is_empty() && sans.ip.is_empty() && sans.other == 0;
    if side == Side::Client && empty && info.common_name().trim().is_empty() {
        let msg = format!("{who} certificate carries no identity (no SAN and an empty CN)");
        info.flag(CertFlag::NoIdentity, msg);
    }
}

fn check_links(info: &mut CertInfo, parsed: &[Option<X509Certificate<'_>>], who: &str) {
    for (i, pair) in parsed.windows(2).enumerate() {
        let (Some(cert), Some(next)) = (&pair[0], &pair[1]) else {
            continue;
        };
        if cert.issuer().as_raw() != next.subject().as_raw() {
            let msg = format!(
                "{who} certificate chain does not link: certificate {} is issued by \"{}\" but certificate {} is \"{}\"",
                i + 1,
                clip(cert.issuer().to_string()),
                i + 2,
                clip(next.subject().to_string())
            );
            info.flag(CertFlag::ChainDoesNotLink, msg);
            return;
        }
    }
}

impl CertInfo {
    fn flag(&mut self, flag: CertFlag, problem: String) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
            self.problems.push(problem);
        }
    }
}
