//! Baselines: today's violations recorded by edge, so a team can adopt the gate before
//! everything is meshed. Versioned JSON, sorted, one entry per edge (never an ephemeral port).

use super::date::Date;
use super::eval::{CheckReport, EdgeKey, EdgeStatus, PeerKey};
use crate::inventory::Scope;
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const BASELINE_SCHEMA: &str = "mtlscope-baseline/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub schema: String,
    /// The day it was written.
    pub created: Date,
    /// Sorted by edge.
    pub edges: Vec<BaselineEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// For people: `shop/web -> shop/payments:8080`. Matching uses the fields below.
    pub edge: String,
    pub client: PeerKey,
    pub server: PeerKey,
    pub port: u16,
    pub scope: String,
    /// The worst verdict recorded: a later run that is worse on this edge fails again.
    pub worst: String,
}

impl BaselineEntry {
    pub fn edge_key(&self) -> EdgeKey {
        EdgeKey { client: self.client.clone(), server: self.server.clone(), port: self.port }
    }

    pub fn worst_verdict(&self) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == self.worst)
    }

    fn new(key: &EdgeKey, scope: Scope, worst: Verdict) -> Self {
        BaselineEntry {
            edge: key.to_string(),
            client: key.client.clone(),
            server: key.server.clone(),
            port: key.port,
            scope: scope.as_str().to_string(),
            worst: worst.as_str().to_string(),
        }
    }
}

impl Baseline {
    /// Today's violating edges (new and already known), sorted.
    pub fn from_report(report: &CheckReport) -> Baseline {
        let mut edges: Vec<BaselineEntry> = report
            .edges
            .iter()
            .filter(|e| matches!(e.status, EdgeStatus::Violation | EdgeStatus::Known))
            .map(|e| BaselineEntry::new(&e.key, e.scope, e.worst()))
            .collect();
        edges.sort_by_key(BaselineEntry::edge_key);
        Baseline { schema: BASELINE_SCHEMA.into(), created: report.today, edges }
    }

    pub fn find(&self, key: &EdgeKey) -> Option<&BaselineEntry> {
        self.edges
            .iter()
            .find(|e| e.client == key.client && e.server == key.server && e.port == key.port)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("baseline has string keys only");
        s.push('\n');
        s
    }

    pub fn from_json(text: &str, file: &str) -> Result<Baseline, String> {
        let b: Baseline = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        if b.schema != BASELINE_SCHEMA {
            return Err(format!(
                "{file}: baseline schema '{}' is not '{BASELINE_SCHEMA}' (written by another mtlscope?)",
                b.schema
            ));
        }
        if let Some(bad) = b.edges.iter().find(|e| e.worst_verdict().is_none()) {
            return Err(format!("{file}: edge '{}': unknown verdict '{}'", bad.edge, bad.worst));
        }
        Ok(b)
    }

    pub fn load(path: &Path) -> Result<Baseline, String> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{file}: cannot read the baseline: {e}"))?;
        Baseline::from_json(&text, &file)
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json())
    }
}
