//! Stage 7: reports for people (a table) and machines (JSON).

mod identity_dto;
pub mod json;
pub mod table;
mod tls_dto;

use crate::analyze::{Analysis, AnalyzedFlow, Hop};
use crate::classify::Classification;
use crate::inventory::resolve_flows;
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::fmt;

/// A value written into the JSON as the string its `Display` makes, with no `String` built in
/// between (serde_json escapes what the formatter writes as it goes).
pub struct AsStr<T>(pub T);

impl<T: fmt::Display> serde::Serialize for AsStr<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Counts per verdict and protocol.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub flows: usize,
    pub verdicts: BTreeMap<Verdict, usize>,
    pub protocols: BTreeMap<&'static str, usize>,
    /// Network (non-local) flows with payload whose verdict is not mTLS.
    pub network_not_mtls: usize,
    /// Count per scope word (the hop word when no inventory placed the flow).
    pub scopes: BTreeMap<&'static str, usize>,
    /// Pod-to-pod and pod-to-service flows with payload that are not mTLS.
    pub pod_not_mtls: usize,
    /// Identity checks (server or client side) that found a mismatch.
    pub identity_mismatches: usize,
}

impl Summary {
    pub fn of(analysis: &Analysis) -> Self {
        let mut s = Summary::default();
        analysis.flows.iter().for_each(|f| s.add(f));
        s
    }

    pub fn add(&mut self, f: &AnalyzedFlow) {
        let v = f.judgement.verdict;
        self.flows += 1;
        *self.verdicts.entry(v).or_default() += 1;
        *self.protocols.entry(protocol_of(&f.record.classification)).or_default() += 1;
        if f.hop == Hop::Network && !matches!(v, Verdict::Mtls | Verdict::NoPayload) {
            self.network_not_mtls += 1;
        }
        let scope = f.placement.as_deref().map_or(f.hop.as_str(), |p| p.scope.as_str());
        *self.scopes.entry(scope).or_default() += 1;
        self.pod_not_mtls += usize::from(resolve_flows::pod_flow_not_mtls(f));
        self.identity_mismatches += resolve_flows::identity_mismatches(f);
    }
}

/// The `protocol` word of the JSON.
pub fn protocol_of(c: &Classification) -> &'static str {
    match c {
        Classification::Empty => "none",
        Classification::Tls { .. } => "tls",
        Classification::Http1 { .. } => "http1",
        Classification::H2c { .. } => "h2c",
        Classification::Other(_) => "other",
    }
}

/// Human name of a link type.
pub fn link_type_name(link: u16) -> String {
    match link {
        0 => "null".into(),
        1 => "ethernet".into(),
        12 | 14 | 101 => "raw".into(),
        108 => "loop".into(),
        113 => "linux-sll".into(),
        228 => "ipv4".into(),
        229 => "ipv6".into(),
        239 => "nflog".into(),
        276 => "linux-sll2".into(),
        other => format!("linktype-{other}"),
    }
}
