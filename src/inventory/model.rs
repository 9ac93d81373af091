//! What an IP address is in the cluster: the resolved types handed to the later stages.

use super::mesh::{Mesh, MeshStatus};
use crate::Timestamp;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// What owns a pod, as `kubectl` would name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ReplicationController,
    /// A static pod from a node's manifest directory (its mirror pod is owned by the Node).
    StaticPod,
    /// A pod with no owner.
    Pod,
    /// An owner of another kind (an operator's custom resource, an Argo Rollout, ...).
    Other(String),
}

impl WorkloadKind {
    pub fn as_str(&self) -> &str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::StaticPod => "StaticPod",
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Other(k) => k,
        }
    }

    pub(crate) fn from_owner_kind(kind: &str) -> WorkloadKind {
        match kind {
            "Deployment" => WorkloadKind::Deployment,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            "ReplicationController" => WorkloadKind::ReplicationController,
            "Node" => WorkloadKind::StaticPod,
            other => WorkloadKind::Other(other.to_string()),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When an object existed, as far as its timestamps tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// When it stopped holding its IP: the last container's `finishedAt` for a pod that
    /// Succeeded or Failed, else `metadata.deletionTimestamp`.
    pub ended: Option<Timestamp>,
    /// It has ended (terminal phase or being deleted), whether or not `ended` is known.
    pub finished: bool,
}

impl Lifetime {
    /// `Some(true)` when known alive at `t`, `Some(false)` when known not, `None` when the
    /// timestamps cannot tell.
    pub fn alive_at(&self, t: Timestamp) -> Option<bool> {
        if self.created.is_some_and(|c| t < c) || self.ended.is_some_and(|e| t >= e) {
            return Some(false);
        }
        let after_start = self.created.is_some();
        let before_end = self.ended.is_some() || !self.finished;
        (after_start && before_end).then_some(true)
    }
}

/// One pod and the workload it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    pub namespace: String,
    pub pod: String,
    /// The owning workload's name (the pod's own name for a bare pod).
    pub workload: String,
    pub kind: WorkloadKind,
    /// The owner was worked out from names and labels, not read from the owner object.
    pub workload_inferred: bool,
    pub service_account: String,
    pub node: Option<String>,
    pub mesh: MeshStatus,
    /// Every address in `status.podIPs` (or `status.podIP`).
    pub ips: Vec<IpAddr>,
    pub host_network: bool,
    pub phase: Option<String>,
    pub lifetime: Lifetime,
}

impl WorkloadRef {
    /// The workload's name, qualified by namespace when it differs from `from_namespace`.
    pub fn name_from(&self, from_namespace: &str) -> String {
        qualify(&self.namespace, &self.workload, from_namespace)
    }
}

pub(crate) fn qualify(namespace: &str, name: &str, from_namespace: &str) -> String {
    if namespace == from_namespace {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// A port of a Service and the pod port it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortRef {
    pub name: Option<String>,
    pub port: u16,
    /// The pod port: `targetPort` when numeric, else the EndpointSlice port of the same name.
    pub target_port: Option<u16>,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    /// `spec.type`: ClusterIP, NodePort, LoadBalancer.
    pub service_type: String,
    /// Every `spec.clusterIPs`, then `externalIPs` and load-balancer ingress IPs.
    pub ips: Vec<IpAddr>,
    pub ports: Vec<ServicePortRef>,
    /// Backend addresses from the EndpointSlices labelled with this service's name.
    pub endpoints: Vec<BackendAddress>,
}

impl ServiceRef {
    /// The pod port behind service port `port` (the port itself when unknown).
    pub fn target_port(&self, port: u16) -> u16 {
        self.ports.iter().find(|p| p.port == port).and_then(|p| p.target_port).unwrap_or(port)
    }
}

/// One address of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendAddress {
    pub ip: IpAddr,
    /// `targetRef` when it names a Pod.
    pub pod: Option<String>,
    pub ready: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub name: String,
    /// InternalIP and ExternalIP addresses.
    pub ips: Vec<IpAddr>,
    /// No Node object was loaded: the node is known only from a host-network pod.
    pub inferred: bool,
}

/// How the object behind an address was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The object's timestamps show it held the address at the packet's time.
    TimeMatched,
    /// Taken from the inventory as it is; the timestamps could not confirm the packet's time.
    CurrentState,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::TimeMatched => "time-matched",
            Basis::CurrentState => "current-state",
        }
    }
}

/// What an address was at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pod(Arc<WorkloadRef>),
    /// A Service address; `backends` are the pods behind its EndpointSlices at that time.
    Service {
        service: Arc<ServiceRef>,
        backends: Vec<Arc<WorkloadRef>>,
    },
    /// A node address; `host_network_pods` share it.
    Node {
        node: Arc<NodeRef>,
        host_network_pods: Vec<Arc<WorkloadRef>>,
    },
    External,
}

/// An address resolved against the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub target: Target,
    pub basis: Basis,
}

impl Endpoint {
    pub fn pod(&self) -> Option<&WorkloadRef> {
        match &self.target {
            Target::Pod(w) => Some(w),
            _ => None,
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match &self.target {
            Target::Pod(w) => Some(&w.namespace),
            Target::Service { service, .. } => Some(&service.namespace),
            Target::Node { .. } | Target::External => None,
        }
    }

    /// A short name for sentences: the workload, service or node name, else the address.
    pub fn display_name(&self, from_namespace: &str) -> String {
        match &self.target {
            Target::Pod(w) => w.name_from(from_namespace),
            Target::Service { service, .. } => {
                qualify(&service.namespace, &service.name, from_namespace)
            }
            Target::Node { node, .. } => format!("node {}", node.name),
            Target::External => self.ip.to_string(),
        }
    }

    /// The mesh of the pod behind this endpoint (`None` for nodes, external addresses and
    /// services with no backends).
    pub fn mesh(&self) -> Option<Mesh> {
        match &self.target {
            Target::Pod(w) => Some(w.mesh.mesh),
            Target::Service { backends, .. } => backends.first().map(|b| b.mesh.mesh),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_alive_at() {
        let t = Timestamp;
        let running = Lifetime { created: Some(t(10)), ended: None, finished: false };
        assert_eq!(running.alive_at(t(5)), Some(false));
        assert_eq!(running.alive_at(t(10)), Some(true));
        let done = Lifetime { created: Some(t(10)), ended: Some(t(20)), finished: true };
        assert_eq!(done.alive_at(t(19)), Some(true));
        assert_eq!(done.alive_at(t(20)), Some(false));
        let done_unknown_end = Lifetime { created: Some(t(10)), ended: None, finished: true };
        assert_eq!(done_unknown_end.alive_at(t(15)), None);
        assert_eq!(Lifetime::default().alive_at(t(15)), None);
    }
}
