//! Flows added up into edges: client workload -> server workload:port, with verdict counts.

use super::model::{Endpoint, Target};
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
    pub flows: u64,
    pub verdicts: BTreeMap<String, u64>,
    /// The verdict of lowest severity among the flows.
    pub worst: String,
    pub worst_severity: u8,
}

/// Adds flows up by (client peer, server peer, port); worst edges first, then by name.
pub fn edges<'a>(flows: impl IntoIterator<Item = EdgeFlow<'a>>) -> Vec<Edge> {
    let mut by_key: BTreeMap<(Peer, Peer, u16), Edge> = BTreeMap::new();
    for f in flows {
        let (client, server) = (Peer::of(f.client), Peer::of(f.server));
        let edge = by_key.entry((client.clone(), server.clone(), f.port)).or_insert_with(|| Edge {
            client,
            server,
            port: f.port,
            flows: 0,
            verdicts: BTreeMap::new(),
            worst: f.verdict.to_string(),
            worst_severity: f.severity,
        });
        edge.flows += 1;
        *edge.verdicts.entry(f.verdict.to_string()).or_default() += 1;
        if f.severity < edge.worst_severity {
            edge.worst = f.verdict.to_string();
            edge.worst_severity = f.severity;
        }
    }
    let mut out: Vec<Edge> = by_key.into_values().collect();
    out.sort_by_key(|e| e.worst_severity); // stable: name order within a severity
    out
}
