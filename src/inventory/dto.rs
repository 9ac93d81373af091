//! JSON shapes of the inventory: the `client.workload` / `server.workload` objects of a flow,
//! edges, and the whole resolved inventory (`mtlscope inventory`). Their own types, so that
//! internal changes never change the contract.

use super::edges::{Edge, Peer};
use super::mesh::{MeshStatus, PortRule};
use super::model::{Endpoint, NodeRef, ServiceRef, Target, WorkloadRef};
use super::Inventory;
use crate::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

pub const INVENTORY_SCHEMA: &str = "mtlscope-inventory/v1";

/// What an address of a flow is. `null` in a flow for an external address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadDto {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    /// The workload, service or node name.
    pub workload: String,
    /// `Deployment`, `StatefulSet`, ..., `Pod` (bare), or `Service`, `Node`.
    pub kind: String,
    pub service_account: Option<String>,
    pub node: Option<String>,
    /// `linkerd`, `istio`, `istio-ambient`, `none`; for a Service, its pods' mesh when they
    /// agree, `mixed` when not; `null` for a node.
    pub mesh: Option<String>,
    /// `time-matched` or `current-state`.
    pub basis: &'static str,
    /// A Service's backend pods or a node's host-network pods, as `namespace/pod`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
}

pub fn workload_dto(e: &Endpoint) -> Option<WorkloadDto> {
    let basis = e.basis.as_str();
    let pod_names = |pods: &[std::sync::Arc<WorkloadRef>]| {
        pods.iter().map(|p| format!("{}/{}", p.namespace, p.pod)).collect::<Vec<_>>()
    };
    Some(match &e.target {
        Target::Pod(w) => WorkloadDto {
            namespace: Some(w.namespace.clone()),
            pod: Some(w.pod.clone()),
            workload: w.workload.clone(),
            kind: w.kind.as_str().to_string(),
            service_account: Some(w.service_account.clone()),
            node: w.node.clone(),
            mesh: Some(w.mesh.mesh.as_str().to_string()),
            basis,
            pods: Vec::new(),
        },
        Target::Service { service, backends } => {
            let mut meshes: Vec<&str> = backends.iter().map(|b| b.mesh.mesh.as_str()).collect();
            meshes.dedup();
            let mesh = match meshes.as_slice() {
                [] => None,
                [one] => Some(one.to_string()),
                _ => Some("mixed".to_string()),
            };
            WorkloadDto {
                namespace: Some(service.namespace.clone()),
                pod: None,
                workload: service.name.clone(),
                kind: "Service".into(),
                service_account: None,
                node: None,
                mesh,
                basis,
                pods: pod_names(backends),
            }
        }
        Target::Node { node, host_network_pods } => WorkloadDto {
            namespace: None,
            pod: None,
            workload: node.name.clone(),
            kind: "Node".into(),
            service_account: None,
            node: Some(node.name.clone()),
            mesh: None,
            basis,
            pods: pod_names(host_network_pods),
        },
        Target::External => return None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerDto {
    pub kind: String,
    pub namespace: Option<String>,
    /// Workload, service or node name, or the address of an external peer.
    pub name: String,
}

impl From<&Peer> for PeerDto {
    fn from(p: &Peer) -> Self {
        match p {
            Peer::Workload { namespace, name, kind } => PeerDto {
                kind: kind.clone(),
                namespace: Some(namespace.clone()),
                name: name.clone(),
            },
            Peer::Service { namespace, name } => PeerDto {
                kind: "Service".into(),
                namespace: Some(namespace.clone()),
                name: name.clone(),
            },
            Peer::Node { name } => {
                PeerDto { kind: "Node".into(), namespace: None, name: name.clone() }
            }
            Peer::External { ip } => {
                PeerDto { kind: "External".into(), namespace: None, name: ip.to_string() }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeDto {
    pub client: PeerDto,
    pub server: PeerDto,
    pub port: u16,
    /// The scope word of the edge's flows (`pod-to-pod`, ...).
    pub scope: &'static str,
    pub flows: u64,
    pub verdicts: BTreeMap<String, u64>,
    pub worst: String,
    /// The reason codes of the edge's flows that are not mTLS, most telling first.
    pub reasons: Vec<ReasonDto>,
    /// Flows whose mesh identity on the wire is not the one the inventory gives the pod.
    pub identity_mismatches: u64,
}

/// One reason code of an edge, with the sentence of the first flow that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonDto {
    pub code: &'static str,
    pub message: String,
}

pub fn edge_dto(e: &Edge) -> EdgeDto {
    EdgeDto {
        client: (&e.client).into(),
        server: (&e.server).into(),
        port: e.port,
        scope: e.scope.as_str(),
        flows: e.flows,
        verdicts: e.verdicts.clone(),
        worst: e.worst.clone(),
        reasons: e
            .reasons
            .iter()
            .map(|(c, m)| ReasonDto { code: c.as_str(), message: m.clone() })
            .collect(),
        identity_mismatches: e.identity_mismatches,
    }
}

/// The resolved inventory, for archiving next to a capture.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryDto {
    pub schema: &'static str,
    pub pods: Vec<PodDto>,
    pub services: Vec<ServiceDto>,
    pub nodes: Vec<NodeDto>,
    pub skipped_kinds: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodDto {
    pub namespace: String,
    pub pod: String,
    pub workload: String,
    pub kind: String,
    /// The owner came from names and labels (pod-template-hash, a CronJob's Job name).
    pub workload_inferred: bool,
    pub service_account: String,
    pub node: Option<String>,
    pub ips: Vec<String>,
    pub host_network: bool,
    pub phase: Option<String>,
    pub created: Option<String>,
    pub ended: Option<String>,
    pub mesh: MeshDto,
}

#[derive(Debug, Clone, Serialize)]
pub struct MeshDto {
    pub mesh: &'static str,
    pub evidence: String,
    pub skip_inbound_ports: Vec<PortRuleDto>,
    pub skip_outbound_ports: Vec<PortRuleDto>,
    pub opaque_ports: Vec<PortRuleDto>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortRuleDto {
    pub ports: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceDto {
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub ips: Vec<String>,
    pub ports: Vec<ServicePortDto>,
    pub endpoints: Vec<BackendDto>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServicePortDto {
    pub name: Option<String>,
    pub port: u16,
    pub target_port: Option<u16>,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendDto {
    pub ip: String,
    pub pod: Option<String>,
    pub ready: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeDto {
    pub name: String,
    pub ips: Vec<String>,
    /// Known only from a host-network pod, no Node object.
    pub inferred: bool,
    pub host_network_pods: Vec<String>,
}

fn time(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::rfc3339)
}

fn rules(r: &[PortRule]) -> Vec<PortRuleDto> {
    r.iter().map(|r| PortRuleDto { ports: r.ports.to_string(), source: r.source.clone() }).collect()
}

fn mesh_dto(m: &MeshStatus) -> MeshDto {
    MeshDto {
        mesh: m.mesh.as_str(),
        evidence: m.evidence.clone(),
        skip_inbound_ports: rules(&m.skip_inbound),
        skip_outbound_ports: rules(&m.skip_outbound),
        opaque_ports: rules(&m.opaque),
        notes: m.notes.clone(),
    }
}

fn pod_dto(w: &WorkloadRef) -> PodDto {
    PodDto {
        namespace: w.namespace.clone(),
        pod: w.pod.clone(),
        workload: w.workload.clone(),
        kind: w.kind.as_str().to_string(),
        workload_inferred: w.workload_inferred,
        service_account: w.service_account.clone(),
        node: w.node.clone(),
        ips: w.ips.iter().map(ToString::to_string).collect(),
        host_network: w.host_network,
        phase: w.phase.clone(),
        created: time(w.lifetime.created),
        ended: time(w.lifetime.ended),
        mesh: mesh_dto(&w.mesh),
    }
}

fn service_dto(s: &ServiceRef) -> ServiceDto {
    ServiceDto {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        service_type: s.service_type.clone(),
        ips: s.ips.iter().map(ToString::to_string).collect(),
        ports: s
            .ports
            .iter()
            .map(|p| ServicePortDto {
                name: p.name.clone(),
                port: p.port,
                target_port: p.target_port,
                app_protocol: p.app_protocol.clone(),
            })
            .collect(),
        endpoints: s
            .endpoints
            .iter()
            .map(|e| BackendDto { ip: e.ip.to_string(), pod: e.pod.clone(), ready: e.ready })
            .collect(),
    }
}

fn node_dto(inv: &Inventory, n: &NodeRef) -> NodeDto {
    NodeDto {
        name: n.name.clone(),
        ips: n.ips.iter().map(ToString::to_string).collect(),
        inferred: n.inferred,
        host_network_pods: inv
            .host_network_pods(&n.name)
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.pod))
            .collect(),
    }
}

impl Inventory {
    /// The inventory as its JSON document's DTO; pods, services and nodes sorted by name.
    pub fn dto(&self) -> InventoryDto {
        let mut pods: Vec<PodDto> = self.pods().iter().map(|p| pod_dto(p)).collect();
        pods.sort_by(|a, b| {
            (&a.namespace, &a.pod, &a.created).cmp(&(&b.namespace, &b.pod, &b.created))
        });
        let mut services: Vec<ServiceDto> =
            self.services().iter().map(|s| service_dto(s)).collect();
        services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut nodes: Vec<NodeDto> = self.nodes().iter().map(|n| node_dto(self, n)).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        InventoryDto {
            schema: INVENTORY_SCHEMA,
            pods,
            services,
            nodes,
            skipped_kinds: self.skipped().clone(),
            warnings: self.warnings().to_vec(),
        }
    }

    /// The inventory as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.dto()).expect("inventory DTOs have string keys only")
    }

    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &self.dto())?;
        writeln!(out)
    }
}
