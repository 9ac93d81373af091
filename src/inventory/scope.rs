//! Where a flow ran, in Kubernetes terms.

use super::model::{Endpoint, Target};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    PodToPod,
    PodToService,
    NodeToPod,
    PodToNode,
    PodToExternal,
    ExternalToPod,
    /// Inside one pod: loopback, or the same address at both ends (the proxy -> app hop).
    Local,
    Unknown,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PodToPod => "pod-to-pod",
            Scope::PodToService => "pod-to-service",
            Scope::NodeToPod => "node-to-pod",
            Scope::PodToNode => "pod-to-node",
            Scope::PodToExternal => "pod-to-external",
            Scope::ExternalToPod => "external-to-pod",
            Scope::Local => "local",
            Scope::Unknown => "unknown",
        }
    }

    /// Flows between two pods, directly or through a Service: the ones mTLS is expected on.
    pub fn is_pod_to_pod(self) -> bool {
        matches!(self, Scope::PodToPod | Scope::PodToService)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope of a flow from `client` to `server`; `local` is the analysis's own finding that
/// the hop never left a pod (loopback interface or addresses).
pub fn scope(client: &Endpoint, server: &Endpoint, local: bool) -> Scope {
    if local || client.ip == server.ip || client.ip.is_loopback() || server.ip.is_loopback() {
        return Scope::Local;
    }
    match (&client.target, &server.target) {
        (Target::Pod(_), Target::Pod(_)) => Scope::PodToPod,
        (Target::Pod(_), Target::Service { .. }) => Scope::PodToService,
        (Target::Node { .. }, Target::Pod(_)) => Scope::NodeToPod,
        (Target::Pod(_), Target::Node { .. }) => Scope::PodToNode,
        (Target::Pod(_), Target::External) => Scope::PodToExternal,
        (Target::External, Target::Pod(_)) => Scope::ExternalToPod,
        _ => Scope::Unknown,
    }
}
