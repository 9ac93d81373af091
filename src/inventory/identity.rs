//! Does the mesh identity seen on the wire belong to the pod at that address?

use super::model::{Endpoint, Target, WorkloadRef};
use serde::Serialize;

/// A workload identity a mesh puts in certificates: a ServiceAccount in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeshIdentity {
    pub namespace: String,
    pub service_account: String,
    /// The SPIFFE trust domain, or the domain after `serviceaccount.identity.` for Linkerd.
    pub trust_domain: Option<String>,
}

/// Reads `spiffe://TD/ns/NS/sa/SA` (Istio, and Linkerd since 2.15), Linkerd's DNS-like
/// `SA.NS.serviceaccount.identity.linkerd.cluster.local`, or its short `SA.NS` form. Anything
/// else (a service name like `web.shop.svc.cluster.local`, a public host) is not an identity.
pub fn parse_mesh_identity(s: &str) -> Option<MeshIdentity> {
    if let Some(rest) = s.strip_prefix("spiffe://") {
        let mut parts = rest.split('/');
        let td = parts.next().filter(|t| !t.is_empty())?;
        let (k1, ns, k2, sa) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if k1 != "ns" || k2 != "sa" || ns.is_empty() || sa.is_empty() || parts.next().is_some() {
            return None;
        }
        return Some(MeshIdentity {
            namespace: ns.into(),
            service_account: sa.into(),
            trust_domain: Some(td.into()),
        });
    }
    let labels: Vec<&str> = s.split('.').collect();
    let valid = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match labels.as_slice() {
        [sa, ns] if valid(sa) && valid(ns) => Some(MeshIdentity {
            namespace: (*ns).into(),
            service_account: (*sa).into(),
            trust_domain: None,
        }),
        [sa, ns, "serviceaccount", "identity", domain @ ..]
            if valid(sa) && valid(ns) && !domain.is_empty() =>
        {
            Some(MeshIdentity {
                namespace: (*ns).into(),
                service_account: (*sa).into(),
                trust_domain: Some(domain.join(".")),
            })
        }
        _ => None,
    }
}

/// The outcome of comparing a wire identity with the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "message", rename_all = "kebab-case")]
pub enum IdentityCheck {
    Match(String),
    Mismatch(String),
    NotApplicable(String),
}

impl IdentityCheck {
    pub fn as_str(&self) -> &'static str {
        match self {
            IdentityCheck::Match(_) => "match",
            IdentityCheck::Mismatch(_) => "mismatch",
            IdentityCheck::NotApplicable(_) => "not-applicable",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            IdentityCheck::Match(m)
            | IdentityCheck::Mismatch(m)
            | IdentityCheck::NotApplicable(m) => m,
        }
    }
}

/// Compares `wire` (from a certificate's SAN or the SNI) with the ServiceAccount and namespace
/// of the pod at `endpoint`. For a Service address every backend must run as the same account.
pub fn check_identity(wire: &str, endpoint: &Endpoint) -> IdentityCheck {
    let Some(id) = parse_mesh_identity(wire) else {
        return IdentityCheck::NotApplicable(format!("{wire} is not a mesh identity"));
    };
    let (who, ns, sa) = match &endpoint.target {
        Target::Pod(w) => (
            format!("pod {}/{}", w.namespace, w.pod),
            w.namespace.as_str(),
            w.service_account.as_str(),
        ),
        Target::Service { service, backends } => {
            let Some(first) = backends.first() else {
                return IdentityCheck::NotApplicable(format!(
                    "service {}/{} has no pods in the inventory",
                    service.namespace, service.name
                ));
            };
            let same = |b: &WorkloadRef| {
                (&b.namespace, &b.service_account) == (&first.namespace, &first.service_account)
            };
            if !backends.iter().all(|b| same(b)) {
                return IdentityCheck::NotApplicable(format!(
                    "the pods behind service {}/{} run as different service accounts",
                    service.namespace, service.name
                ));
            }
            let who = format!("the pods behind service {}/{}", service.namespace, service.name);
            (who, first.namespace.as_str(), first.service_account.as_str())
        }
        Target::Node { node, .. } => {
            return IdentityCheck::NotApplicable(format!("{} is node {}", endpoint.ip, node.name))
        }
        Target::External => {
            return IdentityCheck::NotApplicable(format!("{} is not in the inventory", endpoint.ip))
        }
    };
    let wire_says = format!(
        "the wire identity {wire} (service account {} in {})",
        id.service_account, id.namespace
    );
    if id.namespace == ns && id.service_account == sa {
        IdentityCheck::Match(format!("{wire_says} is {who}'s"))
    } else {
        IdentityCheck::Mismatch(format!(
            "{wire_says} is not {who}'s (service account {sa} in {ns})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spiffe_and_linkerd_forms() {
        let s = parse_mesh_identity("spiffe://cluster.local/ns/shop/sa/web").unwrap();
        assert_eq!((s.namespace.as_str(), s.service_account.as_str()), ("shop", "web"));
        assert_eq!(s.trust_domain.as_deref(), Some("cluster.local"));
        let l =
            parse_mesh_identity("web.shop.serviceaccount.identity.linkerd.cluster.local").unwrap();
        assert_eq!((l.namespace.as_str(), l.service_account.as_str()), ("shop", "web"));
        assert_eq!(l.trust_domain.as_deref(), Some("linkerd.cluster.local"));
        let short = parse_mesh_identity("web.shop").unwrap();
        assert_eq!(short.trust_domain, None);
    }

    #[test]
    fn rejects_non_identities() {
        for s in [
            "web.shop.svc.cluster.local",
            "spiffe://td/ns/shop",
            "spiffe://td/ns/shop/sa/web/extra",
            "spiffe:///ns/a/sa/b",
            "Web.Shop",
            "",
        ] {
            assert_eq!(parse_mesh_identity(s), None, "{s}");
        }
    }
}
