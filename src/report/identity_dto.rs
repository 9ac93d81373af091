//! The identity fields of the `tls` object (`client_identity`, `server_identity`, `mesh`,
//! `mesh_identity`, `mesh_signals`, `ja4`, `ja4s`) and the identity cell of the table.

use super::AsStr;
use crate::common::Rfc3339Secs;
use crate::identity::{CertInfo, Identities, MeshIdentity, PeerIdentity};
use serde::Serialize;

#[derive(Serialize)]
pub struct PeerDto {
    /// SPIFFE URI, else a Linkerd identity as `sa.ns`, else the first DNS SAN, else the CN.
    pub identity: Option<String>,
    pub certificate: Option<CertDto>,
    /// "clear" | "decrypted" | "sni"
    pub source: &'static str,
}

#[derive(Serialize)]
pub struct CertDto {
    pub subject: String,
    pub issuer: String,
    pub sans: SansDto,
    pub spiffe_id: Option<String>,
    pub serial: String,
    pub not_before: Option<AsStr<Rfc3339Secs>>,
    pub not_after: Option<AsStr<Rfc3339Secs>>,
    pub key: Option<String>,
    pub chain_length: u32,
    pub sha256: String,
    pub flags: Vec<&'static str>,
}

#[derive(Serialize)]
pub struct SansDto {
    pub dns: Vec<String>,
    pub uri: Vec<String>,
    pub ip: Vec<String>,
}

#[derive(Serialize)]
pub struct MeshIdentityDto {
    pub service_account: String,
    pub namespace: String,
    pub trust_domain: String,
    /// "sni" | "certificate"
    pub source: &'static str,
}

/// The identity fields, flattened into `TlsDto`.
#[derive(Serialize, Default)]
pub struct IdentityFields {
    pub client_identity: Option<PeerDto>,
    pub server_identity: Option<PeerDto>,
    /// "linkerd" | "istio" | null
    pub mesh: Option<&'static str>,
    pub mesh_identity: Option<MeshIdentityDto>,
    pub mesh_signals: Vec<String>,
    pub ja4: Option<String>,
    pub ja4s: Option<String>,
}

fn cert(c: &CertInfo) -> CertDto {
    CertDto {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        sans: SansDto { dns: c.sans.dns.clone(), uri: c.sans.uri.clone(), ip: c.sans.ip.clone() },
        spiffe_id: c.spiffe.as_ref().map(|s| s.uri.clone()),
        serial: c.serial.clone(),
        not_before: c.not_before.map(|t| AsStr(Rfc3339Secs(t))),
        not_after: c.not_after.map(|t| AsStr(Rfc3339Secs(t))),
        key: c.key.clone(),
        chain_length: c.chain_length,
        sha256: c.sha256.clone(),
        flags: c.flags.iter().map(|f| f.as_str()).collect(),
    }
}

fn peer(p: &PeerIdentity) -> PeerDto {
    PeerDto {
        identity: p.identity.clone(),
        certificate: p.certificate.as_ref().map(cert),
        source: p.source.as_str(),
    }
}

fn mesh_identity(m: &MeshIdentity) -> MeshIdentityDto {
    MeshIdentityDto {
        service_account: m.service_account.clone(),
        namespace: m.namespace.clone(),
        trust_domain: m.trust_domain.clone(),
        source: m.source.as_str(),
    }
}

pub fn fields(ids: Option<&Identities>) -> IdentityFields {
    let Some(ids) = ids else {
        return IdentityFields::default();
    };
    IdentityFields {
        client_identity: ids.client.as_ref().map(peer),
        server_identity: ids.server.as_ref().map(peer),
        mesh: ids.mesh.mesh.map(|m| m.as_str()),
        mesh_identity: ids.mesh.identity.as_ref().map(mesh_identity),
        mesh_signals: ids.mesh.signals.clone(),
        ja4: ids.ja4.clone(),
        ja4s: ids.ja4s.clone(),
    }
}

/// `emoji.emojivoto -> web.emojivoto (linkerd)`, flags in brackets, `?` for a side not seen,
/// `-` for a client that sent no certificate.
pub fn table_cell(ids: Option<&Identities>, client_sent_none: bool) -> String {
    let Some(ids) = ids else {
        return String::new();
    };
    if ids.client.is_none() && ids.server.is_none() {
        return ids.mesh.mesh.map(|m| format!("({})", m.as_str())).unwrap_or_default();
    }
    let side = |p: &Option<PeerIdentity>, none: &str| match p {
        None => none.to_string(),
        Some(p) => {
            let mut s = p.short().unwrap_or_else(|| "(none)".into());
            let flags: Vec<&str> = p.flags().iter().map(|f| f.as_str()).collect();
            if !flags.is_empty() {
                s.push_str(&format!(" [{}]", flags.join(",")));
            }
            s
        }
    };
    let client = side(&ids.client, if client_sent_none { "-" } else { "?" });
    let mut cell = format!("{client} -> {}", side(&ids.server, "?"));
    if let Some(m) = ids.mesh.mesh {
        cell.push_str(&format!(" ({})", m.as_str()));
    }
    cell
}
