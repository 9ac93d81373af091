//! The inventory applied to a run's judged flows: both ends resolved at the flow's first
//! packet, the scope, why a pod-to-pod flow is not mTLS, and the mesh identity on the wire
//! checked against the pods' ServiceAccounts.
//!
//! ```text
//!  --inventory FILE...  ─┐
//!  (live cluster, later) ┴─▶ build_inventory ──▶ Inventory
//!  Linker::push ──AnalyzedFlow (final verdict)──▶ enrich ──▶ report (JSON writer, table)
//!                                                   └──────▶ EdgeSet (one entry per edge)
//! ```
//!
//! Enrichment runs after resumption linking, so a resumed flow's reasons follow the verdict it
//! inherited. Flows are enriched one at a time: nothing here holds a flow.

use super::{
    check_identity, parse_mesh_identity, reasons, scope, EdgeFlow, EdgeSet, Endpoint,
    IdentityCheck, Inventory, LoadError, Reason, ReasonInput, Scope, Sources,
};
use crate::analyze::{AnalyzedFlow, Hop};
use crate::classify::Classification;
use crate::identity::{Identities, MeshSource};
use crate::verdict::{ClientCert, Verdict};
use std::path::PathBuf;

/// Loads every `--inventory` file, in order, then `extra` (objects a live cluster returned),
/// into one inventory. The first file that cannot be read or parsed is the error; its message
/// names it. Loader warnings (skipped kinds) are in [`Inventory::warnings`].
///
/// Objects loaded twice keep the state loaded last, so `extra`, the freshest, wins.
pub fn build_inventory(files: &[PathBuf], extra: Option<Sources>) -> Result<Inventory, LoadError> {
    let mut sources = Sources::new();
    for path in files {
        sources.load_file(path)?;
    }
    if let Some(mut extra) = extra {
        sources.objects.append(&mut extra.objects);
        for (kind, n) in extra.skipped {
            *sources.skipped.entry(kind).or_default() += n;
        }
        sources.warnings.append(&mut extra.warnings);
    }
    Ok(Inventory::build(&sources))
}

/// What the run's inventory was, for the report: where it came from and what it held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryInfo {
    /// File names, in load order (a live source will add its own description).
    pub sources: Vec<String>,
    pub pods: usize,
    pub services: usize,
    pub nodes: usize,
    pub warnings: Vec<String>,
}

impl InventoryInfo {
    pub fn of(inventory: &Inventory, sources: Vec<String>) -> Self {
        InventoryInfo {
            sources,
            pods: inventory.pods().len(),
            services: inventory.services().len(),
            nodes: inventory.nodes().len(),
            warnings: inventory.warnings().to_vec(),
        }
    }
}

/// Where a flow ran in the cluster, and what that says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub client: Endpoint,
    pub server: Endpoint,
    pub scope: Scope,
    /// Why a pod-to-pod or pod-to-service flow is not mTLS; empty otherwise.
    pub reasons: Vec<Reason>,
    /// TLS flows of a mesh with an identity on the wire.
    pub identity_check: Option<IdentityChecks>,
}

/// The wire identity of each side against the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityChecks {
    pub server: IdentityCheck,
    pub client: IdentityCheck,
}

impl IdentityChecks {
    /// `("server" | "client", message)` of each side that does not match.
    pub fn mismatches(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("server", &self.server), ("client", &self.client)]
            .into_iter()
            .filter(|(_, c)| matches!(c, IdentityCheck::Mismatch(_)))
            .map(|(side, c)| (side, c.message()))
    }
}

/// The warning a mismatch adds to its flow: it means a wrong route or an impersonation.
pub fn mismatch_warning(side: &str, message: &str) -> String {
    format!(
        "IDENTITY MISMATCH: {side} side: {message}; the traffic reached a workload the mesh \
         identity does not name (a wrong route, a stale inventory, or an impersonation)"
    )
}

/// Resolves a judged flow against `inventory`.
pub fn place(flow: &AnalyzedFlow, inventory: &Inventory) -> Placement {
    let r = &flow.record;
    let at = r.first_seen;
    let client = inventory.resolve(r.client.ip(), at);
    let server = inventory.resolve(r.server.ip(), at);
    let scope = scope(&client, &server, flow.hop == Hop::Local);
    let ids = flow.identities.as_deref();
    let reasons = if scope.is_pod_to_pod() {
        reasons(&ReasonInput {
            verdict: flow.judgement.verdict.as_str(),
            protocol: crate::report::protocol_of(&r.classification),
            tls_mesh: ids.and_then(|i| i.mesh.mesh).map(|m| m.as_str()),
            client: &client,
            server: &server,
            port: r.server.port(),
        })
    } else {
        Vec::new()
    };
    let identity_check = identity_checks(flow, &client, &server);
    Placement { client, server, scope, reasons, identity_check }
}

/// Adds the flow's [`Placement`] and, for each identity mismatch, a loud warning.
pub fn enrich(flow: &mut AnalyzedFlow, inventory: &Inventory) {
    let placement = place(flow, inventory);
    if let Some(checks) = &placement.identity_check {
        let warnings = checks.mismatches().map(|(side, m)| mismatch_warning(side, m));
        flow.judgement.warnings.extend(warnings);
    }
    flow.placement = Some(Box::new(placement));
}

/// Counts an enriched flow into its edge (flows without a placement are not counted).
pub fn add_edge(edges: &mut EdgeSet, flow: &AnalyzedFlow) {
    let Some(p) = flow.placement.as_deref() else { return };
    let verdict = flow.judgement.verdict;
    let Some(edge) = edges.add(EdgeFlow {
        client: &p.client,
        server: &p.server,
        port: flow.record.server.port(),
        verdict: verdict.as_str(),
        severity: verdict.severity(),
    }) else {
        return;
    };
    if p.scope == Scope::Local {
        edge.scope = Scope::Local;
    }
    for r in &p.reasons {
        edge.reasons.entry(r.code).or_insert_with(|| r.message.clone());
    }
    if let Some(checks) = &p.identity_check {
        for (side, m) in checks.mismatches() {
            edge.identity_mismatches += 1;
            edge.identity_mismatch.get_or_insert_with(|| format!("{side} side: {m}"));
        }
    }
}

/// Pod-to-pod or pod-to-service with payload, and not mTLS: what a mesh should have covered.
pub fn pod_flow_not_mtls(flow: &AnalyzedFlow) -> bool {
    flow.placement.as_deref().is_some_and(|p| p.scope.is_pod_to_pod())
        && !matches!(flow.judgement.verdict, Verdict::Mtls | Verdict::NoPayload)
}

pub fn identity_mismatches(flow: &AnalyzedFlow) -> usize {
    let checks = flow.placement.as_deref().and_then(|p| p.identity_check.as_ref());
    checks.map_or(0, |c| c.mismatches().count())
}

/// Checks both sides when the flow is a mesh's TLS and at least one side shows a mesh
/// identity (server: Linkerd SNI, certificate SAN or SPIFFE ID; client: its certificate).
fn identity_checks(
    flow: &AnalyzedFlow,
    client: &Endpoint,
    server: &Endpoint,
) -> Option<IdentityChecks> {
    let ids = flow.identities.as_deref()?;
    ids.mesh.mesh?;
    let server_wire = server_wire_identity(flow, ids);
    let client_wire = client_wire_identity(ids);
    let is_mesh_id = |w: &Option<String>| w.as_deref().and_then(parse_mesh_identity).is_some();
    if !is_mesh_id(&server_wire) && !is_mesh_id(&client_wire) {
        return None;
    }
    let server_check = match &server_wire {
        Some(w) => check_identity(w, server),
        None => IdentityCheck::NotApplicable("no mesh identity of the server on the wire".into()),
    };
    let client_check = match &client_wire {
        Some(w) => check_identity(w, client),
        None => IdentityCheck::NotApplicable(client_not_seen(flow, ids)),
    };
    Some(IdentityChecks { server: server_check, client: client_check })
}

/// The server identity the mesh put on the wire, as written there: the whole SNI, or the
/// server certificate's SPIFFE ID or Linkerd-shaped DNS SAN.
fn server_wire_identity(flow: &AnalyzedFlow, ids: &Identities) -> Option<String> {
    let mesh_id = ids.mesh.identity.as_ref()?;
    if mesh_id.source == MeshSource::Sni {
        if let Classification::Tls { facts, .. } = &flow.record.classification {
            if let Some(sni) = facts.client_hello.as_ref().and_then(|c| c.sni.clone()) {
                return Some(sni);
            }
        }
    }
    let from_cert = ids.server.as_ref().and_then(|p| cert_identity(p.certificate.as_ref()));
    Some(from_cert.unwrap_or_else(|| format!("{}.{}", mesh_id.service_account, mesh_id.namespace)))
}

fn client_wire_identity(ids: &Identities) -> Option<String> {
    let peer = ids.client.as_ref()?;
    cert_identity(peer.certificate.as_ref()).or_else(|| peer.identity.clone())
}

/// A certificate's SPIFFE ID, else its first Linkerd-shaped DNS SAN.
fn cert_identity(cert: Option<&crate::identity::CertInfo>) -> Option<String> {
    let cert = cert?;
    if let Some(s) = &cert.spiffe {
        return Some(s.uri.clone());
    }
    cert.sans.dns.iter().find(|d| parse_mesh_identity(d).is_some()).cloned()
}

fn client_not_seen(flow: &AnalyzedFlow, ids: &Identities) -> String {
    if ids.client.is_some() {
        return "the client's certificate names no identity".into();
    }
    match flow.client_certificate {
        Some(ClientCert::Empty) => "the client sent an empty Certificate".into(),
        Some(ClientCert::NotRequested) => "the server did not ask for a client certificate".into(),
        _ => {
            "the client's certificate was not seen (TLS 1.3 encrypts it: a key log shows it)".into()
        }
    }
}
