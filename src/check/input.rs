//! What the gate needs to know about each flow and each input: plain data, filled by the CLI
//! from an [`AnalyzedFlow`] and the inventory's resolution of its two ends.

use crate::analyze::{AnalyzedFlow, Hop, InputReport};
use crate::classify::Classification;
use crate::inventory::resolve_flows::{IdentityChecks, Placement};
use crate::inventory::{workload_dto, Endpoint, Reason, ReasonCode, Scope};
use crate::report::protocol_of;
use crate::verdict::{Proof, Verdict};
use std::net::IpAddr;

/// One end of a flow in Kubernetes terms (a pod's workload, a Service, or a Node).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckWorkload {
    /// `None` for a Node.
    pub namespace: Option<String>,
    /// The owning workload's name, or the Service or Node name.
    pub workload: String,
    /// `Deployment`, `StatefulSet`, ..., `Pod` (bare), `Service`, `Node`.
    pub kind: String,
    pub pod: Option<String>,
    pub service_account: Option<String>,
    /// `linkerd`, `istio`, `istio-ambient`, `none`, `mixed` (a Service's pods disagree).
    pub mesh: Option<String>,
}

impl CheckWorkload {
    /// A pod's workload, for tests and callers without an inventory [`Endpoint`].
    pub fn pod(namespace: &str, workload: &str, kind: &str, pod: &str, sa: &str) -> Self {
        CheckWorkload {
            namespace: Some(namespace.into()),
            workload: workload.into(),
            kind: kind.into(),
            pod: Some(pod.into()),
            service_account: Some(sa.into()),
            mesh: None,
        }
    }

    pub fn service(namespace: &str, name: &str) -> Self {
        CheckWorkload {
            namespace: Some(namespace.into()),
            workload: name.into(),
            kind: "Service".into(),
            pod: None,
            service_account: None,
            mesh: None,
        }
    }

    pub fn node(name: &str) -> Self {
        CheckWorkload {
            namespace: None,
            workload: name.into(),
            kind: "Node".into(),
            pod: None,
            service_account: None,
            mesh: None,
        }
    }

    /// What the inventory resolved an address to; `None` for an external address.
    pub fn of(e: &Endpoint) -> Option<Self> {
        let d = workload_dto(e)?;
        Some(CheckWorkload {
            namespace: d.namespace,
            workload: d.workload,
            kind: d.kind,
            pod: d.pod,
            service_account: d.service_account,
            mesh: d.mesh,
        })
    }

    /// `shop/payments`, `service shop/payments`, `node kind-worker`.
    pub fn display(&self) -> String {
        let name = match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.workload),
            None => self.workload.clone(),
        };
        match self.kind.as_str() {
            "Service" => format!("service {name}"),
            "Node" => format!("node {name}"),
            _ => name,
        }
    }
}

/// One judged TCP flow, as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFlow {
    /// Index of the capture it came from (into [`CheckInputStats::inputs`]).
    pub input: usize,
    /// Flow number within its input.
    pub id: u64,
    pub scope: Scope,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    pub client: Option<CheckWorkload>,
    pub server: Option<CheckWorkload>,
    pub verdict: Verdict,
    pub proof: Option<Proof>,
    /// `tls`, `http1`, `h2c`, `other`, `none`.
    pub protocol: String,
    pub evidence: String,
    /// Why a pod-to-pod flow is not mTLS (from the inventory); empty otherwise.
    pub reasons: Vec<Reason>,
    /// The flow's warnings (gaps, snaplen cuts, certificate flags, ...).
    pub warnings: Vec<String>,
    /// The mesh identity on the wire does not name the workload at that end (`server side:
    /// ...`, `client side: ...`): a wrong route, a stale inventory or an impersonation. A
    /// judged flow with a mismatch is a violation whatever its verdict.
    pub identity_mismatches: Vec<String>,
    /// Capture loss (a gap, lost record sync, or frames cut by snaplen) hit the TLS handshake,
    /// so the verdict may say less than the wire did.
    pub handshake_lossy: bool,
    /// RFC 3339 time of the flow's first packet.
    pub first_seen: String,
}

/// The inventory's view of a flow: both ends, the scope and the reasons. Borrowed from
/// whatever the CLI resolved (e.g. the inventory stage's placement of the flow).
#[derive(Debug, Clone, Copy)]
pub struct FlowPlacement<'a> {
    pub client: &'a Endpoint,
    pub server: &'a Endpoint,
    pub scope: Scope,
    pub reasons: &'a [Reason],
    /// The mesh identity on the wire checked against the inventory (mesh TLS only).
    pub identity: Option<&'a IdentityChecks>,
}

impl<'a> From<&'a Placement> for FlowPlacement<'a> {
    fn from(p: &'a Placement) -> Self {
        FlowPlacement {
            client: &p.client,
            server: &p.server,
            scope: p.scope,
            reasons: &p.reasons,
            identity: p.identity_check.as_ref(),
        }
    }
}

impl CheckFlow {
    /// The gate's view of an analysed flow. Without a placement (no inventory) a local hop is
    /// `local` and every other flow `unknown`: the default policy then judges nothing, and
    /// `--expect-traffic` says so.
    pub fn from_analyzed(flow: &AnalyzedFlow, placement: Option<FlowPlacement<'_>>) -> Self {
        let r = &flow.record;
        let j = &flow.judgement;
        let scope = match (&placement, flow.hop) {
            (Some(p), _) => p.scope,
            (None, Hop::Local) => Scope::Local,
            (None, Hop::Network) => Scope::Unknown,
        };
        CheckFlow {
            input: flow.input,
            id: r.id,
            scope,
            client_ip: r.client.ip(),
            client_port: r.client.port(),
            server_ip: r.server.ip(),
            server_port: r.server.port(),
            client: placement.and_then(|p| CheckWorkload::of(p.client)),
            server: placement.and_then(|p| CheckWorkload::of(p.server)),
            verdict: j.verdict,
            proof: j.proof,
            protocol: protocol_of(&r.classification).to_string(),
            evidence: j.evidence.clone(),
            reasons: placement.map(|p| p.reasons.to_vec()).unwrap_or_default(),
            identity_mismatches: placement
                .and_then(|p| p.identity)
                .map(|c| c.mismatches().map(|(side, m)| format!("{side} side: {m}")).collect())
                .unwrap_or_default(),
            warnings: j.warnings.clone(),
            handshake_lossy: handshake_lossy(flow),
            first_seen: r.first_seen.rfc3339(),
        }
    }

    /// A flow for tests and examples: TCP between two addresses, no workloads, no reasons.
    pub fn new(
        scope: Scope,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        verdict: Verdict,
        evidence: &str,
    ) -> Self {
        CheckFlow {
            input: 0,
            id: 0,
            scope,
            client_ip: client.0,
            client_port: client.1,
            server_ip: server.0,
            server_port: server.1,
            client: None,
            server: None,
            verdict,
            proof: (verdict == Verdict::Mtls).then_some(Proof::Observed),
            protocol: if verdict == Verdict::Plaintext { "http1" } else { "tls" }.into(),
            evidence: evidence.into(),
            reasons: Vec::new(),
            identity_mismatches: Vec::new(),
            warnings: Vec::new(),
            handshake_lossy: false,
            first_seen: "1970-01-01T00:00:00.000000Z".into(),
        }
    }

    pub fn reason_codes(&self) -> impl Iterator<Item = ReasonCode> + '_ {
        self.reasons.iter().map(|r| r.code)
    }
}

/// Loss hit the handshake: a gap or lost record sync while the TLS handshake was in the clear,
/// or frames cut by snaplen in a TLS flow whose client authentication stayed unknown.
fn handshake_lossy(flow: &AnalyzedFlow) -> bool {
    let Classification::Tls { facts, .. } = &flow.record.classification else { return false };
    let lost_sync = |d: &crate::classify::tls::DirFacts| {
        d.gap_in_handshake || d.error == Some(crate::classify::tls::StreamError::LostSync)
    };
    let cut = flow.record.dirs.iter().any(|d| d.missing_bytes > 0)
        && flow.judgement.verdict == Verdict::TlsUnknownAuth;
    lost_sync(&facts.client) || lost_sync(&facts.server) || cut
}

/// One capture file, as far as the gate cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckInput {
    pub path: String,
    /// Why the input could not be read at all.
    pub error: Option<String>,
    /// Frames the capture cut short (snaplen).
    pub truncated_frames: u64,
}

/// What the inputs were, beside the flows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckInputStats {
    pub inputs: Vec<CheckInput>,
}

impl CheckInputStats {
    pub fn from_inputs(inputs: &[InputReport]) -> Self {
        CheckInputStats {
            inputs: inputs
                .iter()
                .map(|i| CheckInput {
                    path: i.path.clone(),
                    error: i.fatal.clone(),
                    truncated_frames: i.stats.truncated_frames,
                })
                .collect(),
        }
    }

    pub fn unreadable(&self) -> impl Iterator<Item = &CheckInput> {
        self.inputs.iter().filter(|i| i.error.is_some())
    }

    pub fn truncated_frames(&self) -> u64 {
        self.inputs.iter().map(|i| i.truncated_frames).sum()
    }

    pub fn path(&self, input: usize) -> Option<&str> {
        self.inputs.get(input).map(|i| i.path.as_str())
    }
}
