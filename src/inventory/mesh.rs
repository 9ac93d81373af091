//! Which service mesh, if any, carries a pod's traffic, read from the pod spec, its annotations
//! and labels, and its namespace's.

use k8s_openapi::api::core::v1::{Container, Namespace, Pod};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The data plane in front of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mesh {
    /// No proxy: the pod's traffic leaves as the application wrote it.
    None,
    /// A `linkerd-proxy` sidecar (classic or native).
    Linkerd,
    /// An `istio-proxy` sidecar (classic or native).
    Istio,
    /// Istio ambient mode: ztunnel on the node captures the pod's traffic.
    IstioAmbient,
}

impl Mesh {
    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::None => "none",
            Mesh::Linkerd => "linkerd",
            Mesh::Istio => "istio",
            Mesh::IstioAmbient => "istio-ambient",
        }
    }

    /// The family name a TLS mesh marker uses (`"linkerd"` or `"istio"`).
    pub fn family(self) -> Option<&'static str> {
        match self {
            Mesh::None => None,
            Mesh::Linkerd => Some("linkerd"),
            Mesh::Istio | Mesh::IstioAmbient => Some("istio"),
        }
    }

    pub fn is_meshed(self) -> bool {
        self != Mesh::None
    }

    /// What "has no proxy" means for this family, for sentences.
    pub fn proxy_name(self) -> &'static str {
        match self {
            Mesh::None => "mesh proxy",
            Mesh::Linkerd => "linkerd-proxy",
            Mesh::Istio => "istio-proxy",
            Mesh::IstioAmbient => "ztunnel",
        }
    }
}

impl fmt::Display for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of TCP ports written as `25,443,4190-4191`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    /// Parses a comma-separated list of ports and `lo-hi` ranges; items that are not ports are
    /// ignored (the mesh ignores them too), so a typo never hides the valid ports around it.
    pub fn parse(s: &str) -> PortSet {
        let mut ranges = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let range = match item.split_once('-') {
                Some((lo, hi)) => lo.trim().parse().ok().zip(hi.trim().parse().ok()),
                None => item.parse().ok().map(|p| (p, p)),
            };
            if let Some((lo, hi)) = range.filter(|(lo, hi)| lo <= hi) {
                ranges.push((lo, hi));
            }
        }
        PortSet { ranges }
    }

    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if lo == hi {
                write!(f, "{sep}{lo}")?;
            } else {
                write!(f, "{sep}{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// Ports a mesh leaves alone, and where that was said (an annotation, or proxy-init's arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub ports: PortSet,
    /// E.g. `annotation config.linkerd.io/skip-inbound-ports`.
    pub source: String,
}

/// What the inventory says about a pod's mesh membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshStatus {
    pub mesh: Mesh,
    /// What showed the mesh (or its absence), e.g. "linkerd-proxy native sidecar".
    pub evidence: String,
    /// Inbound ports that bypass the proxy.
    pub skip_inbound: Vec<PortRule>,
    /// Outbound (destination) ports that bypass the proxy.
    pub skip_outbound: Vec<PortRule>,
    /// Linkerd opaque ports: proxied (and mTLS'd) without protocol detection.
    pub opaque: Vec<PortRule>,
    /// Things an operator should know, e.g. injection asked for but not done.
    pub notes: Vec<String>,
}

impl MeshStatus {
    pub fn none() -> Self {
        MeshStatus {
            mesh: Mesh::None,
            evidence: "no mesh proxy".into(),
            skip_inbound: Vec::new(),
            skip_outbound: Vec::new(),
            opaque: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn inbound_skip(&self, port: u16) -> Option<&PortRule> {
        self.skip_inbound.iter().find(|r| r.ports.contains(port))
    }

    pub fn outbound_skip(&self, port: u16) -> Option<&PortRule> {
        self.skip_outbound.iter().find(|r| r.ports.contains(port))
    }

    pub fn opaque_rule(&self, port: u16) -> Option<&PortRule> {
        self.opaque.iter().find(|r| r.ports.contains(port))
    }
}

const LINKERD_PROXY: &str = "linkerd-proxy";
const LINKERD_INIT: &str = "linkerd-init";
const ISTIO_PROXY: &str = "istio-proxy";
const AMBIENT_LABEL: &str = "istio.io/dataplane-mode";
const AMBIENT_REDIRECTION: &str = "ambient.istio.io/redirection";

type Strings = BTreeMap<String, String>;

fn empty() -> &'static Strings {
    static EMPTY: Strings = BTreeMap::new();
    &EMPTY
}

/// Mesh status of `pod`; `namespace` (when the inventory has it) supplies namespace-wide
/// labels and annotations that the pod does not override.
pub fn mesh_status(pod: &Pod, namespace: Option<&Namespace>) -> MeshStatus {
    let meta = &pod.metadata;
    let annotations = meta.annotations.as_ref().unwrap_or(empty());
    let labels = meta.labels.as_ref().unwrap_or(empty());
    let ns_meta = namespace.map(|n| &n.metadata);
    let ns_annotations = ns_meta.and_then(|m| m.annotations.as_ref()).unwrap_or(empty());
    let ns_labels = ns_meta.and_then(|m| m.labels.as_ref()).unwrap_or(empty());
    let ns_name = meta.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let inits = spec.and_then(|s| s.init_containers.as_deref()).unwrap_or_default();

    let mut status = MeshStatus::none();
    if let Some(evidence) = sidecar(containers, inits, LINKERD_PROXY) {
        status.mesh = Mesh::Linkerd;
        status.evidence = evidence;
    } else if let Some(evidence) = sidecar(containers, inits, ISTIO_PROXY) {
        status.mesh = Mesh::Istio;
        status.evidence = evidence;
    } else if let Some(evidence) = ambient(annotations, labels, ns_labels, ns_name) {
        status.mesh = Mesh::IstioAmbient;
        status.evidence = evidence;
    }
    if status.mesh == Mesh::Linkerd && sidecar(containers, inits, ISTIO_PROXY).is_some() {
        status.notes.push("the pod runs both linkerd-proxy and istio-proxy".into());
    }

    let lookup = Lookup { annotations, ns_annotations, ns_name };
    status.skip_inbound = lookup.rules(&[
        "config.linkerd.io/skip-inbound-ports",
        "traffic.sidecar.istio.io/excludeInboundPorts",
    ]);
    status.skip_outbound = lookup.rules(&[
        "config.linkerd.io/skip-outbound-ports",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
    ]);
    status.opaque = lookup.rules(&["config.linkerd.io/opaque-ports"]);
    if let Some(init) = inits.iter().find(|c| c.name == LINKERD_INIT) {
        status.skip_inbound.extend(init_arg_rule(init, "--inbound-ports-to-ignore"));
        status.skip_outbound.extend(init_arg_rule(init, "--outbound-ports-to-ignore"));
    }
    if status.mesh == Mesh::None {
        status.notes.extend(injection_notes(annotations, labels, ns_annotations, ns_labels));
    }
    status
}

/// `Some(evidence)` when a container called `name` runs beside the app: a regular container,
/// or a native sidecar (an init container with `restartPolicy: Always`, Kubernetes >= 1.28).
fn sidecar(containers: &[Container], inits: &[Container], name: &str) -> Option<String> {
    if containers.iter().any(|c| c.name == name) {
        return Some(format!("{name} container"));
    }
    inits
        .iter()
        .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
        .then(|| format!("{name} native sidecar (init container with restartPolicy: Always)"))
}

fn ambient(
    annotations: &Strings,
    labels: &Strings,
    ns_labels: &Strings,
    ns: &str,
) -> Option<String> {
    // The istio-cni agent writes this once it has redirected the pod: the strongest evidence.
    if annotations.get(AMBIENT_REDIRECTION).map(String::as_str) == Some("enabled") {
        return Some(format!("annotation {AMBIENT_REDIRECTION}=enabled"));
    }
    match labels.get(AMBIENT_LABEL).map(String::as_str) {
        Some("ambient") => return Some(format!("label {AMBIENT_LABEL}=ambient")),
        Some("none") => return None,
        _ => {}
    }
    (ns_labels.get(AMBIENT_LABEL).map(String::as_str) == Some("ambient"))
        .then(|| format!("label {AMBIENT_LABEL}=ambient on namespace {ns}"))
}

struct Lookup<'a> {
    annotations: &'a Strings,
    ns_annotations: &'a Strings,
    ns_name: &'a str,
}

impl Lookup<'_> {
    /// One rule per key found, the pod's annotation taking precedence over its namespace's.
    fn rules(&self, keys: &[&str]) -> Vec<PortRule> {
        let mut rules = Vec::new();
        for key in keys {
            let (value, source) = if let Some(v) = self.annotations.get(*key) {
                (v, format!("annotation {key}"))
            } else if let Some(v) = self.ns_annotations.get(*key) {
                (v, format!("annotation {key} on namespace {}", self.ns_name))
            } else {
                continue;
            };
            let ports = PortSet::parse(value);
            if !ports.is_empty() {
                rules.push(PortRule { ports, source });
            }
        }
        rules
    }
}

/// linkerd-init's `--inbound-ports-to-ignore 4190,4191` (or `--flag=value`): what the iptables
/// rules really skip, whether it came from an annotation or the cluster-wide configuration.
fn init_arg_rule(init: &Container, flag: &str) -> Option<PortRule> {
    let args = init.args.as_deref().unwrap_or_default();
    let value = args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(flag).and_then(|rest| rest.strip_prefix('='))
        }
    })?;
    let ports = PortSet::parse(value);
    (!ports.is_empty())
        .then(|| PortRule { ports, source: format!("{LINKERD_INIT} argument {flag}") })
}

/// Injection asked for (on the pod or its namespace) but no proxy in the pod: it predates the
/// injector or was skipped, and a restart would mesh it.
fn injection_notes(
    annotations: &Strings,
    labels: &Strings,
    ns_annotations: &Strings,
    ns_labels: &Strings,
) -> Vec<String> {
    let mut notes = Vec::new();
    let linkerd = annotations
        .get("linkerd.io/inject")
        .map(|v| (v, "the pod"))
        .or_else(|| ns_annotations.get("linkerd.io/inject").map(|v| (v, "its namespace")));
    if let Some((v, on)) = linkerd.filter(|(v, _)| matches!(v.as_str(), "enabled" | "ingress")) {
        notes.push(format!(
            "linkerd.io/inject={v} on {on} but no linkerd-proxy container: the pod was not injected (restart it)"
        ));
    }
    let istio_pod =
        labels.get("sidecar.istio.io/inject").or(annotations.get("sidecar.istio.io/inject"));
    let istio_ns = ns_labels.get("istio-injection").map(|v| v == "enabled").unwrap_or(false)
        || ns_labels.contains_key("istio.io/rev");
    let istio_asked = match istio_pod.map(String::as_str) {
        Some("true") => Some("sidecar.istio.io/inject=true on the pod"),
        Some("false") => None,
        _ if istio_ns => Some("istio injection enabled on its namespace"),
        _ => None,
    };
    if let Some(asked) = istio_asked {
        notes.push(format!(
            "{asked} but no istio-proxy container: the pod was not injected (restart it)"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_sets_parse_lists_and_ranges_and_ignore_junk() {
        let p = PortSet::parse(" 25, 4190-4191,x,9000-8000,,443 ");
        assert!(p.contains(25) && p.contains(4190) && p.contains(4191) && p.contains(443));
        assert!(!p.contains(9000) && !p.contains(26));
        assert_eq!(p.to_string(), "25,4190-4191,443");
        assert!(PortSet::parse("").is_empty());
    }

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn init_container_named_linkerd_proxy_without_always_is_not_a_sidecar() {
        let p = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "n",
                         "annotations": {"linkerd.io/inject": "enabled"}},
            "spec": {"containers": [{"name": "app"}],
                     "initContainers": [{"name": "linkerd-proxy"}]}
        }));
        let s = mesh_status(&p, None);
        assert_eq!(s.mesh, Mesh::None);
        assert!(s.notes[0].contains("was not injected"), "{:?}", s.notes);
    }

    #[test]
    fn istio_native_sidecar_is_istio() {
        let p = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "n",
                         "annotations": {"traffic.sidecar.istio.io/excludeInboundPorts": "9000"}},
            "spec": {"containers": [{"name": "app"}],
                     "initContainers": [{"name": "istio-init"},
                                        {"name": "istio-proxy", "restartPolicy": "Always"}]}
        }));
        let s = mesh_status(&p, None);
        assert_eq!(s.mesh, Mesh::Istio);
        assert!(s.evidence.starts_with("istio-proxy native sidecar"), "{}", s.evidence);
        let skip = s.inbound_skip(9000).unwrap();
        assert_eq!(skip.source, "annotation traffic.sidecar.istio.io/excludeInboundPorts");
    }

    #[test]
    fn init_args_give_skipped_ports() {
        let p = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"containers": [{"name": "app"}, {"name": "linkerd-proxy"}],
                     "initContainers": [{"name": "linkerd-init",
                        "args": ["--inbound-ports-to-ignore", "4190,4191,5432",
                                 "--outbound-ports-to-ignore=443"]}]}
        }));
        let s = mesh_status(&p, None);
        assert_eq!(s.mesh, Mesh::Linkerd);
        assert_eq!(
            s.inbound_skip(5432).unwrap().source,
            "linkerd-init argument --inbound-ports-to-ignore"
        );
        assert!(s.outbound_skip(443).is_some());
        assert!(s.inbound_skip(8080).is_none());
    }

    #[test]
    fn ambient_opt_out_label_beats_namespace() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "n", "labels": {"istio.io/dataplane-mode": "ambient"}}
        }))
        .unwrap();
        let mut p = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"containers": [{"name": "app"}]}
        }));
        assert_eq!(mesh_status(&p, Some(&ns)).mesh, Mesh::IstioAmbient);
        p.metadata.labels = Some([(AMBIENT_LABEL.to_string(), "none".to_string())].into());
        assert_eq!(mesh_status(&p, Some(&ns)).mesh, Mesh::None);
    }
}
