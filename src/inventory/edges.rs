//! Flows added up into edges: client workload -> server workload:port, with verdict counts.

use super::model::{Endpoint, Target};
use super::reasons::ReasonCode;
use super::scope::{scope, Scope};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One end of an edge: a workload, not a pod, so that replicas add up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    Workload { namespace: String, name: String, kind: String },
    Service { namespace: String, name: String },
    Node { name: String },
    External { ip: IpAddr },
}

impl Peer {
    pub fn of(e: &Endpoint) -> Peer {
        match &e.target {
            Target::Pod(w) => Peer::Workload {
                namespace: w.namespace.clone(),
                name: w.workload.clone(),
                kind: w.kind.as_str().to_string(),
            },
            Target::Service { service, .. } => {
                Peer::Service { namespace: service.namespace.clone(), name: service.name.clone() }
            }
            Target::Node { node, .. } => Peer::Node { name: node.name.clone() },
            Target::External => Peer::External { ip: e.ip },
        }
    }

    /// `ns/name` for workloads, `ns/name (svc)` for services, `node/name`, or the address.
    pub fn label(&self) -> String {
        match self {
            Peer::Workload { namespace, name, .. } => format!("{namespace}/{name}"),
            Peer::Service { namespace, name } => format!("{namespace}/{name} (svc)"),
            Peer::Node { name } => format!("node/{name}"),
            Peer::External { ip } => ip.to_string(),
        }
    }
}

/// What [`edges`] needs of one flow.
#[derive(Debug, Clone, Copy)]
pub struct EdgeFlow<'a> {
    pub client: &'a Endpoint,
    pub server: &'a Endpoint,
    pub port: u16,
    /// The verdict word.
    pub verdict: &'a str,
    /// Lower is worse (as `Verdict::severity`: plaintext 0, mtls 7).
    pub severity: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub client: Peer,
    pub server: Peer,
    pub port: u16,
    /// The scope of the edge's first flow (the peers decide it, so every flow shares it,
    /// unless the caller marks a hop local that the addresses do not show).
    pub scope: Scope,
    pub flows: u64,
    pub verdicts: BTreeMap<String, u64>,
    /// The verdict of lowest severity among the flows.
    pub worst: String,
    pub worst_severity: u8,
    /// Reason codes of the edge's flows, with the first sentence given for each.
    pub reasons: BTreeMap<ReasonCode, String>,
    /// Flows whose wire identity contradicted the inventory, with the first sentence.
    pub identity_mismatches: u64,
    pub identity_mismatch: Option<String>,
}

/// The edge key: (client peer, server peer, server port).
type Key = (Peer, Peer, u16);

/// Adds flows up one at a time, for a report that streams its flows: memory grows with the
/// number of distinct edges (workload pairs and ports), not with flows, and is capped.
#[derive(Debug, Clone)]
pub struct EdgeSet {
    by_key: BTreeMap<Key, Edge>,
    max_edges: usize,
    /// Flows not added because the cap was reached and their edge was new.
    pub dropped_flows: u64,
}

impl Default for EdgeSet {
    fn default() -> Self {
        EdgeSet::new(EdgeSet::DEFAULT_MAX_EDGES)
    }
}

impl EdgeSet {
    /// Enough for every workload pair and port of a large cluster; external peers are keyed by
    /// address, so a capture full of internet clients is what reaches it.
    pub const DEFAULT_MAX_EDGES: usize = 100_000;

    pub fn new(max_edges: usize) -> Self {
        EdgeSet { by_key: BTreeMap::new(), max_edges, dropped_flows: 0 }
    }

    /// Counts one flow; returns its edge for the caller to add reasons to (`None` when the
    /// edge is new and the cap is reached).
    pub fn add(&mut self, f: EdgeFlow<'_>) -> Option<&mut Edge> {
        let (client, server) = (Peer::of(f.client), Peer::of(f.server));
        let key = (client, server, f.port);
        if !self.by_key.contains_key(&key) && self.by_key.len() >= self.max_edges {
            self.dropped_flows += 1;
            return None;
        }
        let edge = self.by_key.entry(key).or_insert_with_key(|(client, server, port)| Edge {
            client: client.clone(),
            server: server.clone(),
            port: *port,
            scope: scope(f.client, f.server, false),
            flows: 0,
            verdicts: BTreeMap::new(),
            worst: f.verdict.to_string(),
            worst_severity: f.severity,
            reasons: BTreeMap::new(),
            identity_mismatches: 0,
            identity_mismatch: None,
        });
        edge.flows += 1;
        *edge.verdicts.entry(f.verdict.to_string()).or_default() += 1;
        if f.severity < edge.worst_severity {
            edge.worst = f.verdict.to_string();
            edge.worst_severity = f.severity;
        }
        Some(edge)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The edges, most urgent first: pod-to-pod and pod-to-service before other scopes and
    /// local hops last, then worst verdict first, then by name.
    pub fn sorted(&self) -> Vec<&Edge> {
        let mut out: Vec<&Edge> = self.by_key.values().collect();
        out.sort_by_key(|e| (scope_rank(e.scope), e.worst_severity)); // stable: name order kept
        out
    }

    pub fn into_sorted(self) -> Vec<Edge> {
        let mut out: Vec<Edge> = self.by_key.into_values().collect();
        out.sort_by_key(|e| (scope_rank(e.scope), e.worst_severity));
        out
    }
}

fn scope_rank(s: Scope) -> u8 {
    match s {
        Scope::PodToPod | Scope::PodToService => 0,
        Scope::Local => 2,
        _ => 1,
    }
}

/// Adds flows up by (client peer, server peer, port); see [`EdgeSet::sorted`] for the order.
pub fn edges<'a>(flows: impl IntoIterator<Item = EdgeFlow<'a>>) -> Vec<Edge> {
    let mut set = EdgeSet::new(usize::MAX);
    for f in flows {
        set.add(f);
    }
    set.into_sorted()
}
