//! The `check` section of the JSON document (`--format json`): its own DTO types, so that the
//! report's internals never change the contract.

use super::eval::{CheckReport, Counts, EdgeResult, EdgeStatus, ExpiredRule, PeerKey};
use super::suggest::suggested_allow;
use super::text::headline;
use crate::inventory::Reason;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

pub const CHECK_SCHEMA: &str = "mtlscope-check/v1";

#[derive(Debug, Serialize)]
pub struct CheckDto {
    pub schema: &'static str,
    /// `pass`, `fail`, `could-not-verify`.
    pub outcome: &'static str,
    pub exit_code: i32,
    /// The text report's first line.
    pub headline: String,
    pub level: &'static str,
    /// The policy file, or null for the built-in default.
    pub policy: Option<String>,
    /// The day expiry was judged against.
    pub today: String,
    pub counts: Counts,
    /// Violations first, then known, allowed, unverifiable, passing.
    pub edges: Vec<CheckEdgeDto>,
    pub expired_rules: Vec<ExpiredRuleDto>,
    pub unused_rules: Vec<String>,
    /// Baseline entries with no violation this run: remove them.
    pub baseline_fixed: Vec<FixedDto>,
    pub could_not_verify: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckEdgeDto {
    /// `shop/web -> shop/payments:8080`.
    pub edge: String,
    pub client: PeerKey,
    pub server: PeerKey,
    pub port: u16,
    pub status: &'static str,
    pub scope: &'static str,
    pub level: &'static str,
    pub required_by: Vec<String>,
    pub flows: u64,
    pub verdicts: BTreeMap<&'static str, u64>,
    pub worst: &'static str,
    pub violating_flows: u64,
    pub allowed_by: Vec<AllowedByDto>,
    pub expired_rules: Vec<String>,
    pub unverifiable_flows: u64,
    pub reasons: Vec<Reason>,
    /// `server side: ...` / `client side: ...`: the mesh identity on the wire does not name
    /// the workload (a violation whatever the verdict).
    pub identity_mismatches: Vec<String>,
    pub example: ExampleDto,
    /// The verdict the baseline recorded, for known edges and those now worse.
    pub baseline_worst: Option<String>,
    /// YAML to paste under `allow:` (violations and known edges).
    pub suggested_allow: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AllowedByDto {
    pub rule: String,
    pub flows: u64,
}

/// The flow shown as evidence.
#[derive(Debug, Serialize)]
pub struct ExampleDto {
    pub input: usize,
    pub flow: u64,
    pub client: String,
    pub server: String,
    pub verdict: &'static str,
    pub proof: Option<&'static str>,
    pub protocol: String,
    pub evidence: String,
    pub warnings: Vec<String>,
    pub handshake_lossy: bool,
    pub first_seen: String,
}

#[derive(Debug, Serialize)]
pub struct ExpiredRuleDto {
    pub name: String,
    pub expired: String,
    pub why: String,
    pub matched_flows: u64,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct FixedDto {
    pub edge: String,
    pub worst: String,
    /// The edge carried judged traffic and it passed (else no traffic on it this run).
    pub seen: bool,
}

fn sock(ip: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

fn edge_dto(r: &CheckReport, e: &EdgeResult) -> CheckEdgeDto {
    let f = &e.example;
    let failing = matches!(e.status, EdgeStatus::Violation | EdgeStatus::Known);
    CheckEdgeDto {
        edge: e.key.to_string(),
        client: e.key.client.clone(),
        server: e.key.server.clone(),
        port: e.key.port,
        status: e.status.as_str(),
        scope: e.scope.as_str(),
        level: e.level.as_str(),
        required_by: e.required_by.clone(),
        flows: e.flows,
        verdicts: e.verdicts.iter().map(|(v, n)| (v.as_str(), *n)).collect(),
        worst: e.worst().as_str(),
        violating_flows: e.violating_flows,
        allowed_by: e
            .allowed_by
            .iter()
            .map(|(rule, flows)| AllowedByDto { rule: rule.clone(), flows: *flows })
            .collect(),
        expired_rules: e.expired_rules.clone(),
        unverifiable_flows: e.unverifiable_flows,
        reasons: e.reasons.clone(),
        identity_mismatches: e.identity_mismatches.clone(),
        example: ExampleDto {
            input: f.input,
            flow: f.id,
            client: sock(f.client_ip, f.client_port),
            server: sock(f.server_ip, f.server_port),
            verdict: f.verdict.as_str(),
            proof: f.proof.map(|p| p.as_str()),
            protocol: f.protocol.clone(),
            evidence: f.evidence.clone(),
            warnings: f.warnings.clone(),
            handshake_lossy: f.handshake_lossy,
            first_seen: f.first_seen.clone(),
        },
        baseline_worst: e.baseline.as_ref().map(|b| b.worst.clone()),
        suggested_allow: failing.then(|| suggested_allow(e, r.today)),
    }
}

fn expired_dto(x: &ExpiredRule) -> ExpiredRuleDto {
    ExpiredRuleDto {
        name: x.name.clone(),
        expired: x.expired.to_string(),
        why: x.why.clone(),
        matched_flows: x.matched_flows,
        message: x.message(),
    }
}

pub fn check_dto(r: &CheckReport) -> CheckDto {
    CheckDto {
        schema: CHECK_SCHEMA,
        outcome: r.outcome.as_str(),
        exit_code: r.exit_code(),
        headline: headline(r),
        level: r.level.as_str(),
        policy: r.policy.clone(),
        today: r.today.to_string(),
        counts: r.counts.clone(),
        edges: r.edges.iter().map(|e| edge_dto(r, e)).collect(),
        expired_rules: r.expired_rules.iter().map(expired_dto).collect(),
        unused_rules: r.unused_rules.clone(),
        baseline_fixed: r
            .fixed
            .iter()
            .map(|f| FixedDto {
                edge: f.entry.edge.clone(),
                worst: f.entry.worst.clone(),
                seen: f.seen,
            })
            .collect(),
        could_not_verify: r.could_not_verify.clone(),
    }
}

/// Writes the `check` section as one JSON value (the caller writes `,"check":` before it
/// inside the analyze document).
pub fn write_section(out: &mut dyn Write, r: &CheckReport) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &check_dto(r))?;
    Ok(())
}
