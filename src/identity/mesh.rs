//! Service-mesh names: Linkerd identities (DNS names), SPIFFE IDs (Istio), Istio's outbound
//! SNI, and the markers (ALPN, SNI shape, certificate shape, version) that tell a mesh's
//! proxies from an application's own TLS.

use crate::classify::tls::{TlsFacts, Version};
use memchr::memmem;
use std::sync::LazyLock;

/// A SPIFFE ID, `spiffe://<trust-domain>/<path>`; Kubernetes meshes use `/ns/<ns>/sa/<sa>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spiffe {
    pub uri: String,
    pub trust_domain: String,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
}

impl Spiffe {
    /// `sa.ns` when the path has that shape, else the URI.
    pub fn short(&self) -> String {
        match (&self.service_account, &self.namespace) {
            (Some(sa), Some(ns)) => format!("{sa}.{ns}"),
            _ => self.uri.clone(),
        }
    }
}

pub fn parse_spiffe(uri: &str) -> Option<Spiffe> {
    let rest = uri.strip_prefix("spiffe://")?;
    let (td, path) = rest.split_once('/').unwrap_or((rest, ""));
    if td.is_empty() {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let (namespace, service_account) = match parts.as_slice() {
        ["ns", ns, "sa", sa] if !ns.is_empty() && !sa.is_empty() => {
            (Some(ns.to_string()), Some(sa.to_string()))
        }
        _ => (None, None),
    };
    Some(Spiffe { uri: uri.to_string(), trust_domain: td.to_string(), namespace, service_account })
}

/// A Linkerd identity: `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkerdIdentity {
    pub service_account: String,
    pub namespace: String,
    pub control_plane: String,
    pub trust_domain: String,
}

impl LinkerdIdentity {
    pub fn short(&self) -> String {
        format!("{}.{}", self.service_account, self.namespace)
    }
}

pub fn linkerd_identity(name: &str) -> Option<LinkerdIdentity> {
    const MARK: &str = ".serviceaccount.identity.";
    // Built once: `split_once` with a string pattern prepares a searcher on every call, and
    // this runs for every SNI and DNS SAN of every TLS flow.
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(MARK));
    // `MARK` is ASCII, so both ends of the match are char boundaries.
    let at = FINDER.find(name.as_bytes())?;
    let (head, tail) = (&name[..at], &name[at + MARK.len()..]);
    let (sa, ns) = head.split_once('.')?;
    let (cp, td) = tail.split_once('.')?;
    let label = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(label(sa) && label(ns) && label(cp)) || td.is_empty() || td.contains("..") {
        return None;
    }
    Some(LinkerdIdentity {
        service_account: sa.into(),
        namespace: ns.into(),
        control_plane: cp.into(),
        trust_domain: td.into(),
    })
}

/// Istio's client-side SNI: `outbound_.<port>_.<subset>_.<host>` (subset may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioSni {
    pub port: u16,
    pub subset: String,
    pub host: String,
}

pub fn istio_sni(sni: &str) -> Option<IstioSni> {
    let rest = sni.strip_prefix("outbound_.")?;
    let (port, rest) = rest.split_once("_.")?;
    let (subset, host) = rest.split_once("_.")?;
    Some(IstioSni { port: port.parse().ok()?, subset: subset.into(), host: host.into() })
}

/// Linkerd's opaque/tagged transport protocol (the proxy's inbound port 4143).
pub const LINKERD_TRANSPORT_ALPN: &str = "transport.l5d.io/v1";
pub const LINKERD_INBOUND_PORT: u16 = 4143;
pub const ISTIO_ALPNS: [&str; 5] =
    ["istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"];
/// Istio ambient's HBONE tunnel port (mTLS between ztunnels / waypoints).
pub const ISTIO_HBONE_PORT: u16 = 15008;
/// Linkerd issues workload certificates for 24 hours.
const LINKERD_CERT_LIFETIME: i64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mesh {
    Linkerd,
    Istio,
}

impl Mesh {
    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::Linkerd => "linkerd",
            Mesh::Istio => "istio",
        }
    }
}

/// Where a mesh identity was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshSource {
    /// The client's SNI (Linkerd names the server identity it expects there).
    Sni,
    /// The server's certificate (clear or decrypted).
    Certificate,
}

impl MeshSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MeshSource::Sni => "sni",
            MeshSource::Certificate => "certificate",
        }
    }
}

/// The server's identity in a mesh's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshIdentity {
    pub service_account: String,
    pub namespace: String,
    pub trust_domain: String,
    pub source: MeshSource,
}

/// The mesh verdict for one flow, with the signals (one phrase each) that led to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshReading {
    pub mesh: Option<Mesh>,
    pub identity: Option<MeshIdentity>,
    pub signals: Vec<String>,
}

/// What the certificates showed, for the mesh rules (leaf of each side).
#[derive(Debug, Clone, Copy, Default)]
pub struct CertView<'a> {
    pub server: Option<&'a super::cert::CertInfo>,
    pub client: Option<&'a super::cert::CertInfo>,
}

fn tls13_possible(facts: &TlsFacts) -> bool {
    match facts.version() {
        Some(v) => v == Version::TLS13,
        None => facts.client_hello.as_ref().is_none_or(|c| c.offers(Version::TLS13)),
    }
}

/// Linkerd's markers. Returns (markers found, identity read from them).
fn linkerd_markers(
    facts: &TlsFacts,
    certs: CertView<'_>,
    server_port: u16,
    signals: &mut Vec<String>,
) -> (bool, Option<MeshIdentity>) {
    let ch = facts.client_hello.as_ref();
    let mut found = false;
    let mut identity = None;
    if let Some(sni) = ch.and_then(|c| c.sni.as_deref()) {
        if let Some(l) = linkerd_identity(sni) {
            signals.push(format!(
                "SNI {sni} has Linkerd's identity shape (service account {}, namespace {})",
                l.service_account, l.namespace
            ));
            found = true;
            identity = Some(MeshIdentity {
                service_account: l.service_account,
                namespace: l.namespace,
                trust_domain: l.trust_domain,
                source: MeshSource::Sni,
            });
        }
    }
    if ch.is_some_and(|c| c.alpn.iter().any(|a| a == LINKERD_TRANSPORT_ALPN)) {
        let port = if server_port == LINKERD_INBOUND_PORT {
            format!(" to the proxy's inbound port {LINKERD_INBOUND_PORT}")
        } else {
            String::new()
        };
        signals.push(format!("ALPN {LINKERD_TRANSPORT_ALPN} (Linkerd's opaque transport){port}"));
        found = true;
    }
    for (side, cert) in [("server", certs.server), ("client", certs.client)] {
        let Some(cert) = cert else { continue };
        let Some(l) = cert.sans.dns.iter().find_map(|d| linkerd_identity(d)) else {
            continue;
        };
        let one = if cert.sans.dns.len() == 1 && cert.sans.uri.is_empty() { "one " } else { "" };
        let day = if cert.lifetime() == Some(LINKERD_CERT_LIFETIME) {
            ", valid for 24 h like Linkerd's"
        } else {
            ""
        };
        signals
            .push(format!("{side} certificate has {one}Linkerd-shaped DNS SAN {}{day}", l.short()));
        found = true;
        if side == "server" {
            identity = Some(MeshIdentity {
                service_account: l.service_account,
                namespace: l.namespace,
                trust_domain: l.trust_domain,
                source: MeshSource::Certificate,
            });
        }
    }
    (found, identity)
}

/// Istio's markers. Returns (markers found, identity read from the server's SPIFFE ID).
fn istio_markers(
    facts: &TlsFacts,
    certs: CertView<'_>,
    server_port: u16,
    signals: &mut Vec<String>,
) -> (bool, Option<MeshIdentity>) {
    let ch = facts.client_hello.as_ref();
    let mut found = false;
    let mut identity = None;
    let alpns: Vec<&str> = ch
        .map(|c| c.alpn.iter().map(String::as_str).filter(|a| ISTIO_ALPNS.contains(a)).collect())
        .unwrap_or_default();
    if !alpns.is_empty() {
        signals.push(format!("ALPN {} (Istio's sidecar protocols)", alpns.join(", ")));
        found = true;
    }
    if let Some(sni) = ch.and_then(|c| c.sni.as_deref()) {
        if let Some(o) = istio_sni(sni) {
            let subset =
                if o.subset.is_empty() { String::new() } else { format!(" subset {}", o.subset) };
            signals.push(format!(
                "SNI {sni} has Istio's outbound shape (service {} port {}{subset})",
                o.host, o.port
            ));
            found = true;
        }
    }
    for (side, cert) in [("server", certs.server), ("client", certs.client)] {
        let Some(s) = cert.and_then(|c| c.spiffe.as_ref()) else { continue };
        let (Some(sa), Some(ns)) = (&s.service_account, &s.namespace) else { continue };
        signals.push(format!("{side} certificate has SPIFFE ID {}", s.uri));
        found = true;
        if side == "server" {
            identity = Some(MeshIdentity {
                service_account: sa.clone(),
                namespace: ns.clone(),
                trust_domain: s.trust_domain.clone(),
                source: MeshSource::Certificate,
            });
        }
    }
    if found && server_port == ISTIO_HBONE_PORT {
        signals.push(format!("server port {ISTIO_HBONE_PORT} (Istio ambient's HBONE)"));
    }
    (found, identity)
}

/// Which mesh's proxies made this connection, from payload markers only (ports only add
/// context). A flow without markers is no mesh's, even when it is mutual TLS.
pub fn detect(facts: &TlsFacts, certs: CertView<'_>, server_port: u16) -> MeshReading {
    let mut signals = Vec::new();
    let (linkerd, l_id) = linkerd_markers(facts, certs, server_port, &mut signals);
    let (istio, i_id) = istio_markers(facts, certs, server_port, &mut signals);
    let mut reading = MeshReading { signals, ..Default::default() };
    match (linkerd, istio) {
        (true, true) => {
            reading.signals.push("markers of both Linkerd and Istio: no mesh claimed".into())
        }
        (true, false) if !tls13_possible(facts) => {
            let v = facts.version().map_or("a version below TLS 1.3".into(), |v| v.to_string());
            reading.signals.push(format!(
                "negotiated {v}, but Linkerd's proxies speak only TLS 1.3: Linkerd-shaped names used by other software, not a Linkerd proxy connection"
            ));
        }
        (true, false) => {
            reading.mesh = Some(Mesh::Linkerd);
            reading.identity = l_id;
        }
        (false, true) => {
            reading.mesh = Some(Mesh::Istio);
            reading.identity = i_id;
        }
        (false, false) => {}
    }
    reading
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tls::{ClientHelloFacts, ServerHelloFacts};

    fn facts(sni: Option<&str>, alpn: &[&str], version: Version) -> TlsFacts {
        TlsFacts {
            client_hello: Some(ClientHelloFacts {
                sni: sni.map(str::to_string),
                alpn: alpn.iter().map(|a| a.to_string()).collect(),
                supported_versions: vec![Version::TLS13, Version::TLS12],
                ..Default::default()
            }),
            server_hello: Some(ServerHelloFacts { version, ..Default::default() }),
            ..Default::default()
        }
    }

    const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";

    #[test]
    fn linkerd_sni_names_the_server_identity() {
        let r = detect(&facts(Some(WEB), &[], Version::TLS13), CertView::default(), 8443);
        assert_eq!(r.mesh, Some(Mesh::Linkerd));
        let id = r.identity.expect("identity");
        assert_eq!(
            (id.service_account.as_str(), id.namespace.as_str(), id.trust_domain.as_str()),
            ("web", "emojivoto", "cluster.local")
        );
        assert_eq!(id.source, MeshSource::Sni);
        assert!(r.signals[0].contains("Linkerd's identity shape"), "{:?}", r.signals);
    }

    #[test]
    fn linkerd_shape_over_tls12_is_not_linkerd() {
        let r = detect(&facts(Some(WEB), &[], Version::TLS12), CertView::default(), 9443);
        assert_eq!(r.mesh, None);
        assert_eq!(r.identity, None);
        assert!(r.signals.iter().any(|s| s.contains("only TLS 1.3")), "{:?}", r.signals);
    }

    #[test]
    fn linkerd_transport_alpn_on_4143() {
        let r = detect(
            &facts(None, &[LINKERD_TRANSPORT_ALPN], Version::TLS13),
            CertView::default(),
            4143,
        );
        assert_eq!(r.mesh, Some(Mesh::Linkerd));
        assert!(r.signals[0].contains("inbound port 4143"), "{:?}", r.signals);
    }

    #[test]
    fn istio_alpn_and_outbound_sni() {
        let sni = "outbound_.9080_.v1_.reviews.default.svc.cluster.local";
        let r = detect(
            &facts(Some(sni), &["istio-peer-exchange", "istio"], Version::TLS12),
            CertView::default(),
            9080,
        );
        assert_eq!(r.mesh, Some(Mesh::Istio));
        assert_eq!(r.signals.len(), 2, "{:?}", r.signals);
        assert!(
            r.signals[1].contains("service reviews.default.svc.cluster.local port 9080 subset v1")
        );
        assert_eq!(
            istio_sni("outbound_.443_._.x.svc"),
            Some(IstioSni { port: 443, subset: String::new(), host: "x.svc".into() })
        );
    }

    #[test]
    fn no_markers_no_mesh() {
        let r = detect(
            &facts(Some("api.example.com"), &["h2"], Version::TLS13),
            CertView::default(),
            443,
        );
        assert_eq!(r, MeshReading::default());
    }

    #[test]
    fn spiffe_ids() {
        let s = parse_spiffe("spiffe://cluster.local/ns/default/sa/reviews").expect("spiffe");
        assert_eq!(s.trust_domain, "cluster.local");
        assert_eq!(s.namespace.as_deref(), Some("default"));
        assert_eq!(s.service_account.as_deref(), Some("reviews"));
        assert_eq!(s.short(), "reviews.default");
        let other = parse_spiffe("spiffe://example.org/workload/x").expect("spiffe");
        assert_eq!(
            (other.namespace.clone(), other.short()),
            (None, "spiffe://example.org/workload/x".into())
        );
        assert_eq!(parse_spiffe("https://x"), None);
        assert_eq!(parse_spiffe("spiffe:///ns/a/sa/b"), None);
    }

    #[test]
    fn linkerd_names() {
        let l = linkerd_identity(WEB).expect("linkerd");
        assert_eq!(l.short(), "web.emojivoto");
        assert_eq!(l.control_plane, "linkerd");
        assert_eq!(linkerd_identity("web.emojivoto.svc.cluster.local"), None);
        assert_eq!(linkerd_identity("web.serviceaccount.identity.linkerd.cluster.local"), None);
    }

    /// The name splits at the first marker, as `split_once` does; names with non-ASCII text
    /// around the marker are sliced without panicking, and rejected by the label rules.
    #[test]
    fn linkerd_names_split_at_the_first_marker() {
        let twice = "sa.ns.serviceaccount.identity.cp.td.serviceaccount.identity.x";
        let l = linkerd_identity(twice).expect("linkerd");
        assert_eq!((l.service_account.as_str(), l.namespace.as_str()), ("sa", "ns"));
        assert_eq!(
            (l.control_plane.as_str(), l.trust_domain.as_str()),
            ("cp", "td.serviceaccount.identity.x")
        );
        for name in [
            ".serviceaccount.identity.",
            "sa.ns.serviceaccount.identity.",
            "é.ns.serviceaccount.identity.cp.td",
            "sa.ns.serviceaccount.identity.ünï.td",
            "sa.né.serviceaccount.identity.cp.tdé",
            "sa.ns.serviceaccount.identity",
        ] {
            assert_eq!(linkerd_identity(name), None, "{name}");
        }
        let l = linkerd_identity("sa.ns.serviceaccount.identity.cp.tdé").expect("any trust domain");
        assert_eq!(l.trust_domain, "tdé");
    }
}
