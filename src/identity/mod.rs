//! Who is talking: the peers' identities from their certificates (seen in the clear, or read
//! by key-log decryption), the service mesh whose proxies made the connection, and the JA4 /
//! JA4S fingerprints of the hellos.
//!
//! Pure and bounded: reads a flow's TLS facts, keeps only short strings. Must run before
//! `FlowRecord::compact`, which drops the certificate DER and the raw ClientHello lists.

pub mod cert;
pub mod ja4;
pub mod mesh;

use crate::classify::tls::{CertChain, TlsFacts};
use crate::classify::Classification;
use crate::common::Timestamp;
use crate::flow::FlowRecord;
pub use cert::{CertFlag, CertInfo, Side};
pub use mesh::{Mesh, MeshIdentity, MeshReading, MeshSource};

/// Where a peer identity was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// A Certificate message in the clear (TLS <= 1.2).
    Clear,
    /// A Certificate message read by key-log decryption (TLS 1.3).
    Decrypted,
    /// The client's SNI, when it has a mesh identity's shape (no certificate seen).
    Sni,
}

impl IdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Clear => "clear",
            IdentitySource::Decrypted => "decrypted",
            IdentitySource::Sni => "sni",
        }
    }
}

/// One end's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// SPIFFE URI, else a Linkerd identity as `sa.ns`, else the first DNS SAN, else the CN;
    /// `None` when the certificate names nobody (or could not be parsed).
    pub identity: Option<String>,
    pub certificate: Option<CertInfo>,
    pub source: IdentitySource,
}

impl PeerIdentity {
    /// The identity for a table cell: `sa.ns` for a SPIFFE ID of that shape.
    pub fn short(&self) -> Option<String> {
        match self.certificate.as_ref().and_then(|c| c.spiffe.as_ref()) {
            Some(s) => Some(s.short()),
            None => self.identity.clone(),
        }
    }

    pub fn flags(&self) -> &[CertFlag] {
        self.certificate.as_ref().map_or(&[], |c| c.flags.as_slice())
    }
}

/// Everything this module found about a TLS flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    pub client: Option<PeerIdentity>,
    pub server: Option<PeerIdentity>,
    pub mesh: MeshReading,
    pub ja4: Option<String>,
    pub ja4s: Option<String>,
}

impl Identities {
    /// One sentence per certificate problem, for the flow's warnings.
    pub fn warnings(&self) -> Vec<String> {
        [&self.client, &self.server]
            .into_iter()
            .flatten()
            .filter_map(|p| p.certificate.as_ref())
            .flat_map(|c| c.problems.iter().cloned())
            .collect()
    }
}

/// The identities of a finished flow; `None` unless it is TLS.
pub fn of_flow(record: &FlowRecord) -> Option<Identities> {
    of_flow_cached(record, &mut IdentityCache::default())
}

/// What identifying earlier flows of a run learned that later flows can reuse: parsed chains
/// and ClientHello fingerprints (both bounded).
#[derive(Debug, Default)]
pub struct IdentityCache {
    chains: cert::ChainCache,
    ja4: ja4::Ja4Cache,
}

/// [`of_flow`] with a cache of the chains already parsed in this run.
pub fn of_flow_cached(record: &FlowRecord, cache: &mut IdentityCache) -> Option<Identities> {
    match &record.classification {
        Classification::Tls { facts, .. } => {
            Some(identify_cached(facts, record.first_seen, record.server.port(), cache))
        }
        _ => None,
    }
}

/// A chain with certificates in it: decrypted first (TLS 1.3 with a key log), else clear.
fn chain<'a>(
    decrypted: Option<&'a CertChain>,
    clear: Option<&'a CertChain>,
) -> Option<(&'a CertChain, IdentitySource)> {
    let usable = |c: &&CertChain| !c.der.is_empty();
    decrypted
        .filter(usable)
        .map(|c| (c, IdentitySource::Decrypted))
        .or_else(|| clear.filter(usable).map(|c| (c, IdentitySource::Clear)))
}

fn peer(
    chain: Option<(&CertChain, IdentitySource)>,
    side: Side,
    at: Timestamp,
    cache: &mut IdentityCache,
) -> Option<PeerIdentity> {
    let (chain, source) = chain?;
    let info = cache.chains.read(&chain.der, chain.count, side, at)?;
    Some(PeerIdentity { identity: info.short_identity(), certificate: Some(info), source })
}

/// `at` is the flow's first packet time: validity is judged then, not now.
pub fn identify(facts: &TlsFacts, at: Timestamp, server_port: u16) -> Identities {
    identify_cached(facts, at, server_port, &mut IdentityCache::default())
}

/// [`identify`] with a cache of the chains already parsed in this run.
pub fn identify_cached(
    facts: &TlsFacts,
    at: Timestamp,
    server_port: u16,
    cache: &mut IdentityCache,
) -> Identities {
    let dec = facts.decrypted.as_ref();
    let server_chain =
        chain(dec.and_then(|d| d.server_certs.as_ref()), facts.server_certs.as_ref());
    let client_chain =
        chain(dec.and_then(|d| d.client_certs.as_ref()), facts.client_certs.as_ref());
    let client = peer(client_chain, Side::Client, at, cache);
    let mut server = peer(server_chain, Side::Server, at, cache);
    let view = mesh::CertView {
        server: server.as_ref().and_then(|p| p.certificate.as_ref()),
        client: client.as_ref().and_then(|p| p.certificate.as_ref()),
    };
    let mesh = mesh::detect(facts, view, server_port);
    if server.is_none() {
        // No certificate seen: a Linkerd-shaped SNI names the identity the client demanded.
        let sni = facts.client_hello.as_ref().and_then(|c| c.sni.as_deref());
        server = sni.and_then(mesh::linkerd_identity).map(|l| PeerIdentity {
            identity: Some(l.short()),
            certificate: None,
            source: IdentitySource::Sni,
        });
    }
    Identities {
        client,
        server,
        mesh,
        ja4: facts.client_hello.as_ref().and_then(|ch| cache.ja4.ja4(ch)),
        ja4s: facts.server_hello.as_ref().and_then(|sh| cache.ja4.ja4s(sh)),
    }
}

#[cfg(test)]
mod tests;
