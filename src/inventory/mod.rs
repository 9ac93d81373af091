//! Stage 5: inventory. What the addresses of a capture are in the cluster, from Kubernetes
//! objects, and what that says about each flow.
//!
//! ```text
//!  kubectl -o json/yaml ──▶ Sources ──▶ Inventory ──resolve(ip, t)──▶ Endpoint
//!  (or kube: live.rs)      (typed      (indexes by IP)                 (pod, service, node,
//!                           objects)                                    external) + basis
//!
//!  Endpoint × Endpoint ──▶ scope()   pod-to-pod, pod-to-service, node-to-pod, ...
//!  + verdict, protocol ──▶ reasons() why a pod-to-pod flow is not mTLS
//!  + wire identity     ──▶ check_identity()
//!  many flows          ──▶ edges()   workload -> workload:port with verdict counts
//! ```
//!
//! Everything here is pure: bytes and objects in, values out. [`Sources::load_file`] and
//! [`resolve_flows::build_inventory`] are the helpers that read files, [`live`] the one module
//! that talks to a cluster; [`resolve_flows`] applies all of the above to the judged flows of a
//! run.

mod archive;
mod dto;
mod edges;
mod identity;
pub mod live;
mod load;
mod mesh;
mod model;
mod pod;
mod reasons;
pub mod resolve_flows;
mod scope;

pub use dto::{
    edge_dto, workload_dto, EdgeDto, InventoryDto, MeshDto, NodeDto, PeerDto, PodDto, PortRuleDto,
    ReasonDto, ServiceDto, WorkloadDto, INVENTORY_SCHEMA,
};
pub use edges::{edges, Edge, EdgeFlow, EdgeSet, Peer};
pub use identity::{check_identity, parse_mesh_identity, IdentityCheck, MeshIdentity};
pub use load::{LoadError, LoadSummary, Object, Sources};
pub use mesh::{Mesh, MeshStatus, PortRule, PortSet};
pub use model::{
    BackendAddress, Basis, Endpoint, Lifetime, NodeRef, ServicePortRef, ServiceRef, Target,
    WorkloadKind, WorkloadRef,
};
pub use reasons::{reasons, Reason, ReasonCode, ReasonInput};
pub use scope::{scope, Scope};

use crate::Timestamp;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pod::{namespace_of, to_time, Owners};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// The cluster's objects, indexed by address.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pods: Vec<Arc<WorkloadRef>>,
    /// Non-host-network pods holding each address, oldest first.
    pod_ips: HashMap<IpAddr, Vec<usize>>,
    pods_by_name: HashMap<(String, String), Vec<usize>>,
    services: Vec<Arc<ServiceRef>>,
    service_lifetimes: Vec<Lifetime>,
    service_ips: HashMap<IpAddr, usize>,
    nodes: Vec<Arc<NodeRef>>,
    node_lifetimes: Vec<Lifetime>,
    node_ips: HashMap<IpAddr, usize>,
    /// Host-network pods by node index.
    host_pods: HashMap<usize, Vec<usize>>,
    skipped: BTreeMap<String, usize>,
    warnings: Vec<String>,
}

/// Objects of one kind, deduplicated: the last one loaded wins.
struct Latest<'a, T> {
    items: Vec<&'a T>,
    index: HashMap<String, usize>,
}

impl<'a, T> Latest<'a, T> {
    fn new() -> Self {
        Latest { items: Vec::new(), index: HashMap::new() }
    }

    /// Returns the object it replaced.
    fn put(&mut self, key: String, item: &'a T) -> Option<&'a T> {
        match self.index.get(&key) {
            Some(&i) => Some(std::mem::replace(&mut self.items[i], item)),
            None => {
                self.index.insert(key, self.items.len());
                self.items.push(item);
                None
            }
        }
    }
}

fn key(meta: &ObjectMeta) -> String {
    format!("{}/{}", namespace_of(meta), meta.name.as_deref().unwrap_or_default())
}

/// Pods are told apart by uid: a StatefulSet's `web-0` recreated is a new pod, often with a new
/// address, and both belong in the history.
fn pod_key(meta: &ObjectMeta) -> String {
    match &meta.uid {
        Some(uid) => uid.clone(),
        None => key(meta),
    }
}

fn meta_lifetime(meta: &ObjectMeta) -> Lifetime {
    let ended = meta.deletion_timestamp.as_ref().map(to_time);
    Lifetime {
        created: meta.creation_timestamp.as_ref().map(to_time),
        ended,
        finished: ended.is_some(),
    }
}

impl Inventory {
    /// Indexes everything in `sources`. Objects loaded twice (several snapshots) keep their
    /// latest state, except that a pod keeps the addresses an earlier snapshot saw if the later
    /// one has none.
    pub fn build(sources: &Sources) -> Inventory {
        let mut pods = Latest::new();
        let mut pod_ips_seen: HashMap<String, Vec<IpAddr>> = HashMap::new();
        let mut services = Latest::new();
        let mut slices = Latest::new();
        let mut nodes = Latest::new();
        let mut owners = Owners::default();
        for object in &sources.objects {
            match object {
                Object::Pod(p) => {
                    let k = pod_key(&p.metadata);
                    let ips = pod::pod_ips(p);
                    if !ips.is_empty() {
                        pod_ips_seen.insert(k.clone(), ips);
                    }
                    pods.put(k, p.as_ref());
                }
                Object::Service(s) => drop(services.put(key(&s.metadata), s.as_ref())),
                Object::EndpointSlice(s) => drop(slices.put(key(&s.metadata), s.as_ref())),
                Object::Node(n) => drop(nodes.put(key(&n.metadata), n.as_ref())),
                Object::Namespace(n) => {
                    owners.namespaces.insert(n.metadata.name.as_deref().unwrap_or_default(), n);
                }
                Object::ReplicaSet(r) => {
                    let m = &r.metadata;
                    owners.replica_sets.insert((namespace_of(m), name_of(m)), r);
                }
                Object::Job(j) => {
                    let m = &j.metadata;
                    owners.jobs.insert((namespace_of(m), name_of(m)), j);
                }
            }
        }
        let mut inv = Inventory {
            skipped: sources.skipped.clone(),
            warnings: sources.warnings.clone(),
            ..Inventory::default()
        };
        for n in &nodes.items {
            inv.add_node(n);
        }
        for p in &pods.items {
            let mut w = pod::workload_ref(p, &owners);
            if w.ips.is_empty() {
                w.ips = pod_ips_seen.get(&pod_key(&p.metadata)).cloned().unwrap_or_default();
            }
            inv.add_pod(w);
        }
        for ips in inv.pod_ips.values_mut() {
            let pods = &inv.pods;
            ips.sort_by_key(|&i| pods[i].lifetime.created);
        }
        let slices = group_slices(&slices.items);
        for s in &services.items {
            inv.add_service(
                s,
                slices.get(&key(&s.metadata)).map(Vec::as_slice).unwrap_or_default(),
            );
        }
        inv
    }

    fn add_node(&mut self, node: &Node) {
        let addresses =
            node.status.as_ref().and_then(|s| s.addresses.as_deref()).unwrap_or_default();
        let ips: Vec<IpAddr> = addresses
            .iter()
            .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        let name = name_of(&node.metadata).to_string();
        let i = self.nodes.len();
        for ip in &ips {
            self.node_ips.insert(*ip, i);
        }
        self.nodes.push(Arc::new(NodeRef { name, ips, inferred: false }));
        self.node_lifetimes.push(meta_lifetime(&node.metadata));
    }

    fn add_pod(&mut self, w: WorkloadRef) {
        let i = self.pods.len();
        self.pods_by_name.entry((w.namespace.clone(), w.pod.clone())).or_default().push(i);
        if w.host_network {
            let node = self.node_for_host_pod(&w);
            self.host_pods.entry(node).or_default().push(i);
        } else {
            for ip in &w.ips {
                self.pod_ips.entry(*ip).or_default().push(i);
            }
        }
        self.pods.push(Arc::new(w));
    }

    /// The node a host-network pod runs on, by name or address; one is made up (and its
    /// addresses indexed) when no Node object was loaded.
    fn node_for_host_pod(&mut self, w: &WorkloadRef) -> usize {
        let by_name = w.node.as_ref().and_then(|n| self.nodes.iter().position(|x| &x.name == n));
        let by_ip = || w.ips.iter().find_map(|ip| self.node_ips.get(ip).copied());
        let i = match by_name.or_else(by_ip) {
            Some(i) => i,
            None => {
                let name = w.node.clone().unwrap_or_else(|| {
                    w.ips.first().map_or_else(|| "unknown".into(), IpAddr::to_string)
                });
                self.nodes.push(Arc::new(NodeRef { name, ips: Vec::new(), inferred: true }));
                self.node_lifetimes.push(Lifetime::default());
                self.nodes.len() - 1
            }
        };
        for ip in &w.ips {
            self.node_ips.entry(*ip).or_insert(i);
            if !self.nodes[i].ips.contains(ip) {
                Arc::make_mut(&mut self.nodes[i]).ips.push(*ip);
            }
        }
        i
    }

    fn add_service(&mut self, s: &Service, slices: &[&EndpointSlice]) {
        let spec = s.spec.clone().unwrap_or_default();
        let lb = s.status.as_ref().and_then(|st| st.load_balancer.as_ref());
        let lb_ips = lb.and_then(|l| l.ingress.as_deref()).unwrap_or_default().iter();
        let cluster_ips = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.clone(),
            _ => spec.cluster_ip.iter().cloned().collect(),
        };
        let ips: Vec<IpAddr> = cluster_ips
            .iter()
            .chain(spec.external_ips.iter().flatten())
            .chain(lb_ips.filter_map(|i| i.ip.as_ref()))
            .filter_map(|ip| ip.parse().ok()) // "None" (headless) is not an address
            .collect();
        let slice_port = |name: Option<&str>| {
            slices.iter().flat_map(|s| s.ports.iter().flatten()).find_map(|p| {
                (p.name.as_deref().unwrap_or_default() == name.unwrap_or_default())
                    .then_some(p.port)
                    .flatten()
            })
        };
        let ports = spec
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().is_none_or(|pr| pr == "TCP"))
            .map(|p| ServicePortRef {
                name: p.name.clone(),
                port: u16::try_from(p.port).unwrap_or_default(),
                target_port: match &p.target_port {
                    None => u16::try_from(p.port).ok(),
                    Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
                    Some(IntOrString::String(_)) => {
                        slice_port(p.name.as_deref()).and_then(|n| u16::try_from(n).ok())
                    }
                },
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let endpoints = slices
            .iter()
            .flat_map(|sl| sl.endpoints.iter())
            .flat_map(|e| {
                let pod = e.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Pod"));
                let pod = pod.and_then(|r| r.name.clone());
                let ready = e.conditions.as_ref().and_then(|c| c.ready);
                e.addresses.iter().filter_map(move |a| {
                    Some(BackendAddress { ip: a.parse().ok()?, pod: pod.clone(), ready })
                })
            })
            .collect();
        let i = self.services.len();
        for ip in &ips {
            self.service_ips.insert(*ip, i);
        }
        self.services.push(Arc::new(ServiceRef {
            namespace: namespace_of(&s.metadata).to_string(),
            name: name_of(&s.metadata).to_string(),
            service_type: spec.type_.clone().unwrap_or_else(|| "ClusterIP".into()),
            ips,
            ports,
            endpoints,
        }));
        self.service_lifetimes.push(meta_lifetime(&s.metadata));
    }

    /// What `ip` was at packet time `at`.
    pub fn resolve(&self, ip: IpAddr, at: Timestamp) -> Endpoint {
        if let Some((i, basis)) = self.pod_at(ip, at) {
            return Endpoint { ip, target: Target::Pod(self.pods[i].clone()), basis };
        }
        if let Some(&i) = self.service_ips.get(&ip) {
            let service = self.services[i].clone();
            let backends = self.backends(&service, at);
            let basis = basis_of(self.service_lifetimes[i], at);
            return Endpoint { ip, target: Target::Service { service, backends }, basis };
        }
        if let Some(&i) = self.node_ips.get(&ip) {
            let host_network_pods = self
                .host_pods
                .get(&i)
                .into_iter()
                .flatten()
                .filter(|&&p| self.pods[p].lifetime.alive_at(at) != Some(false))
                .map(|&p| self.pods[p].clone())
                .collect();
            let node = self.nodes[i].clone();
            let basis = basis_of(self.node_lifetimes[i], at);
            return Endpoint { ip, target: Target::Node { node, host_network_pods }, basis };
        }
        Endpoint { ip, target: Target::External, basis: Basis::CurrentState }
    }

    /// The pod that held `ip` at `at`. Several pods may have held it over time: the one whose
    /// lifetime covers `at` wins (time-matched). A pod that finished at an unknown time is
    /// taken to have held the address until the next pod with it was created. When no
    /// lifetime covers `at`, the pod holding the address now is taken (current state).
    fn pod_at(&self, ip: IpAddr, at: Timestamp) -> Option<(usize, Basis)> {
        let candidates = self.pod_ips.get(&ip)?;
        let life = |i: usize| {
            let lt = self.pods[i].lifetime;
            if lt.finished && lt.ended.is_none() {
                let next = candidates
                    .iter()
                    .filter_map(|&j| self.pods[j].lifetime.created)
                    .filter(|&c| lt.created.is_some_and(|mine| c > mine))
                    .min();
                return Lifetime { ended: next, ..lt };
            }
            lt
        };
        let alive = candidates.iter().copied().filter(|&i| life(i).alive_at(at) == Some(true));
        if let Some(best) = alive.max_by_key(|&i| self.pods[i].lifetime.created) {
            let all_dated = candidates.iter().all(|&i| self.pods[i].lifetime.created.is_some());
            let basis = if all_dated { Basis::TimeMatched } else { Basis::CurrentState };
            return Some((best, basis));
        }
        let current = candidates
            .iter()
            .copied()
            .max_by_key(|&i| (!self.pods[i].lifetime.finished, self.pods[i].lifetime.created))?;
        Some((current, Basis::CurrentState))
    }

    /// The pods behind a service's EndpointSlice addresses at `at`.
    fn backends(&self, service: &ServiceRef, at: Timestamp) -> Vec<Arc<WorkloadRef>> {
        let mut out: Vec<Arc<WorkloadRef>> = Vec::new();
        for e in &service.endpoints {
            let by_ip = self.pod_at(e.ip, at).map(|(i, _)| i);
            let by_name = || {
                let k = (service.namespace.clone(), e.pod.clone()?);
                self.pods_by_name.get(&k)?.last().copied()
            };
            if let Some(i) = by_ip.or_else(by_name) {
                if !out.iter().any(|w| Arc::ptr_eq(w, &self.pods[i])) {
                    out.push(self.pods[i].clone());
                }
            }
        }
        out
    }

    pub fn pods(&self) -> &[Arc<WorkloadRef>] {
        &self.pods
    }

    pub fn services(&self) -> &[Arc<ServiceRef>] {
        &self.services
    }

    pub fn nodes(&self) -> &[Arc<NodeRef>] {
        &self.nodes
    }

    /// Host-network pods of `node`.
    pub fn host_network_pods(&self, node: &str) -> Vec<Arc<WorkloadRef>> {
        let Some(i) = self.nodes.iter().position(|n| n.name == node) else { return Vec::new() };
        self.host_pods.get(&i).into_iter().flatten().map(|&p| self.pods[p].clone()).collect()
    }

    /// Objects of unused kinds, by kind.
    pub fn skipped(&self) -> &BTreeMap<String, usize> {
        &self.skipped
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn basis_of(lifetime: Lifetime, at: Timestamp) -> Basis {
    match lifetime.alive_at(at) {
        Some(true) => Basis::TimeMatched,
        _ => Basis::CurrentState,
    }
}

/// EndpointSlices by the `namespace/name` of the service named in their
/// `kubernetes.io/service-name` label.
fn group_slices<'a>(slices: &[&'a EndpointSlice]) -> HashMap<String, Vec<&'a EndpointSlice>> {
    let mut by_service: HashMap<String, Vec<&EndpointSlice>> = HashMap::new();
    for s in slices {
        let labels = s.metadata.labels.as_ref();
        if let Some(svc) = labels.and_then(|l| l.get("kubernetes.io/service-name")) {
            let k = format!("{}/{svc}", namespace_of(&s.metadata));
            by_service.entry(k).or_default().push(s);
        }
    }
    by_service
}

/// Lets tests and the live client build an inventory from typed objects directly.
impl FromIterator<Object> for Inventory {
    fn from_iter<I: IntoIterator<Item = Object>>(iter: I) -> Self {
        let mut sources = Sources::new();
        sources.objects.extend(iter);
        Inventory::build(&sources)
    }
}

#[cfg(test)]
mod tests;
