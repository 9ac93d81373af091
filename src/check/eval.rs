//! The gate itself: each flow judged against the policy, violations added up by edge (client
//! workload -> server workload:port), a baseline applied, and one outcome.
//!
//! [`Checker`] takes flows one at a time and keeps one entry per edge, never the flows, so it
//! can ride along a streaming analysis.

use super::baseline::{Baseline, BaselineEntry};
use super::date::Date;
use super::input::{CheckFlow, CheckInputStats, CheckWorkload};
use super::policy::{Level, Policy};
use crate::inventory::{Reason, Scope};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How the run ended; [`Outcome::exit_code`] is the one place codes are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every judged flow meets the policy (allowed and baselined violations included).
    Pass,
    /// At least one violation not allowed nor baselined, or an expired allow rule.
    Fail,
    /// Bad input, no traffic, an unusable capture, or an invalid policy or baseline.
    CouldNotVerify,
}

pub const EXIT_PASS: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_COULD_NOT_VERIFY: i32 = 2;

impl Outcome {
    /// The exit-code contract: 0 pass, 1 violation (or expired allow rule), 2 could not
    /// verify. A proven violation wins over could-not-verify (see [`CheckReport::outcome`]).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => EXIT_PASS,
            Outcome::Fail => EXIT_FAIL,
            Outcome::CouldNotVerify => EXIT_COULD_NOT_VERIFY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::CouldNotVerify => "could-not-verify",
        }
    }
}

/// Settings that come from the command line rather than the policy file.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `--require`: replaces the policy's default level (rules with their own level keep it).
    pub level: Option<Level>,
    /// Expiry is judged against this day (the CLI passes today in UTC).
    pub today: Date,
    /// Fewer judged flows with payload than this is "could not verify" (`--expect-traffic` is
    /// 1; 0 expects nothing).
    pub min_flows: u64,
    /// More than this share of judged flows with their handshake hit by capture loss is
    /// "could not verify" (percent).
    pub max_lossy_percent: f64,
    pub baseline: Option<Baseline>,
}

pub const DEFAULT_MAX_LOSSY_PERCENT: f64 = 10.0;

impl CheckOptions {
    pub fn new(today: Date) -> Self {
        CheckOptions {
            level: None,
            today,
            min_flows: 0,
            max_lossy_percent: DEFAULT_MAX_LOSSY_PERCENT,
            baseline: None,
        }
    }
}

/// One end of an edge: a workload (or Service, or Node), else an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerKey {
    /// `Deployment`, `StatefulSet`, `Service`, `Node`, ..., or `IP` when no workload is known.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl PeerKey {
    fn of(w: Option<&CheckWorkload>, ip: std::net::IpAddr) -> PeerKey {
        match w {
            Some(w) => PeerKey {
                kind: w.kind.clone(),
                namespace: w.namespace.clone(),
                name: w.workload.clone(),
            },
            None => PeerKey { kind: "IP".into(), namespace: None, name: ip.to_string() },
        }
    }

    pub fn is_ip(&self) -> bool {
        self.kind == "IP"
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.kind.as_str() {
            "Service" => "service ",
            "Node" => "node ",
            _ => "",
        };
        match &self.namespace {
            Some(ns) => write!(f, "{prefix}{ns}/{}", self.name),
            None => write!(f, "{prefix}{}", self.name),
        }
    }
}

/// Client -> server:port, the unit violations are counted and baselined in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeKey {
    pub client: PeerKey,
    pub server: PeerKey,
    pub port: u16,
}

impl EdgeKey {
    pub fn of(f: &CheckFlow) -> EdgeKey {
        EdgeKey {
            client: PeerKey::of(f.client.as_ref(), f.client_ip),
            server: PeerKey::of(f.server.as_ref(), f.server_ip),
            port: f.server_port,
        }
    }
}

impl fmt::Display for EdgeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}:{}", self.client, self.server, self.port)
    }
}

/// What became of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeStatus {
    /// A flow broke the policy and nothing allows it: the check fails.
    Violation,
    /// Violations recorded in the baseline: reported, not failing.
    Known,
    /// Violations silenced by allow rules.
    Allowed,
    /// Flows whose handshake was lost to capture gaps: neither pass nor fail.
    Unverifiable,
    Pass,
    /// Only connections that carried nothing.
    NoPayload,
}

impl EdgeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeStatus::Violation => "violation",
            EdgeStatus::Known => "known",
            EdgeStatus::Allowed => "allowed",
            EdgeStatus::Unverifiable => "unverifiable",
            EdgeStatus::Pass => "pass",
            EdgeStatus::NoPayload => "no-payload",
        }
    }
}

/// One judged edge, with what the report needs to explain it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeResult {
    pub key: EdgeKey,
    pub status: EdgeStatus,
    pub scope: Scope,
    /// The level the edge's flows had to meet (the strictest that applied).
    pub level: Level,
    /// Require rules that brought the edge into judgement (empty: the default scopes did).
    pub required_by: Vec<String>,
    pub flows: u64,
    pub verdicts: BTreeMap<Verdict, u64>,
    /// Flows that broke the policy and were not allowed.
    pub violating_flows: u64,
    /// Allow rules that silenced flows, with counts, in policy order.
    pub allowed_by: Vec<(String, u64)>,
    /// Expired allow rules that would have matched a violating flow.
    pub expired_rules: Vec<String>,
    pub unverifiable_flows: u64,
    /// Reasons of the violating (else allowed) flows, one per code, most telling first.
    pub reasons: Vec<Reason>,
    /// Mesh identities on the wire that did not name the workload (violating, else allowed
    /// flows; the first few distinct messages).
    pub identity_mismatches: Vec<String>,
    /// The worst violating flow (else the first flow): evidence for the report.
    pub example: CheckFlow,
    /// For a known edge, its baseline entry; for a violation worse than its baseline entry,
    /// that entry too.
    pub baseline: Option<BaselineEntry>,
}

impl EdgeResult {
    /// The verdict of lowest severity among the edge's violating flows, else among all.
    pub fn worst(&self) -> Verdict {
        self.example.verdict
    }

    /// The edge breaks the policy only by a mesh identity mismatch: its verdicts meet the level.
    pub fn identity_only(&self) -> bool {
        !self.identity_mismatches.is_empty() && self.level.passes(self.worst())
    }
}

/// Distinct identity-mismatch messages kept per edge.
const MAX_MISMATCH_MESSAGES: usize = 4;

/// An allow rule past its date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpiredRule {
    pub name: String,
    pub expired: Date,
    pub why: String,
    /// Violating flows it would have allowed this run.
    pub matched_flows: u64,
}

impl ExpiredRule {
    pub fn message(&self) -> String {
        format!("allow rule '{}' expired on {} (it allowed: {})", self.name, self.expired, self.why)
    }
}

/// A baseline entry with no violation this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixedEntry {
    pub entry: BaselineEntry,
    /// The edge carried judged traffic this run and it passed (else: no traffic on it).
    pub seen: bool,
}

/// Flow counts of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub flows: u64,
    /// Flows the policy judged (default scopes or a require rule).
    pub judged: u64,
    /// Judged flows that carried payload: the traffic `--expect-traffic` counts.
    pub judged_with_payload: u64,
    pub passed: u64,
    pub violating: u64,
    pub allowed: u64,
    pub known: u64,
    pub unverifiable: u64,
    /// Judged flows with payload whose handshake was hit by capture loss.
    pub lossy: u64,
    /// Judged flows whose mesh identity on the wire did not name the workload (each also
    /// counted as violating, allowed or known).
    pub identity_mismatches: u64,
    pub local: u64,
    /// Network flows no rule judged, by scope (node-to-pod, external, unknown, ...).
    pub not_judged: BTreeMap<Scope, u64>,
}

/// Everything the outputs need.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub outcome: Outcome,
    /// The default level in force (`--require` or the policy's).
    pub level: Level,
    pub policy: Option<String>,
    pub today: Date,
    /// Violations first (worst verdict first), then known, allowed, unverifiable, passing.
    pub edges: Vec<EdgeResult>,
    pub expired_rules: Vec<ExpiredRule>,
    /// Allow rules that matched no violating flow (candidates for removal; not a failure).
    pub unused_rules: Vec<String>,
    pub fixed: Vec<FixedEntry>,
    /// Why the run could not be verified (empty when it could).
    pub could_not_verify: Vec<String>,
    pub counts: Counts,
    pub inputs: CheckInputStats,
    /// A baseline was applied (`--baseline`).
    pub baseline_used: bool,
    pub max_lossy_percent: f64,
}

impl CheckReport {
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }

    pub fn edges_with(&self, status: EdgeStatus) -> impl Iterator<Item = &EdgeResult> {
        self.edges.iter().filter(move |e| e.status == status)
    }
}

/// What one flow came to.
#[derive(Debug, Clone, PartialEq)]
enum Judged {
    NoPayload,
    Pass,
    Unverifiable,
    /// Index of the allow rule that silenced it.
    Allowed(usize),
    Violation,
}

#[derive(Debug, Clone)]
struct EdgeAgg {
    scope: Scope,
    level: Level,
    required_by: BTreeSet<usize>,
    flows: u64,
    verdicts: BTreeMap<Verdict, u64>,
    violating: u64,
    allowed_by: BTreeMap<usize, u64>,
    expired: BTreeSet<usize>,
    unverifiable: u64,
    passed: u64,
    reasons: Vec<Reason>,
    identity_mismatches: Vec<String>,
    example: CheckFlow,
    /// The example is a violating (else an allowed) flow.
    example_rank: u8,
}

/// Judges flows one at a time; [`Checker::finish`] gives the report.
pub struct Checker {
    policy: Policy,
    opts: CheckOptions,
    edges: BTreeMap<EdgeKey, EdgeAgg>,
    counts: Counts,
    /// Violating flows each expired allow rule matched.
    expired_hits: BTreeMap<usize, u64>,
    allow_hits: BTreeMap<usize, u64>,
}

impl Checker {
    pub fn new(policy: Policy, opts: CheckOptions) -> Checker {
        Checker {
            policy,
            opts,
            edges: BTreeMap::new(),
            counts: Counts::default(),
            expired_hits: BTreeMap::new(),
            allow_hits: BTreeMap::new(),
        }
    }

    fn default_level(&self) -> Level {
        self.opts.level.unwrap_or(self.policy.level)
    }

    /// The level a flow must meet and the require rules that asked for it; `None`: not judged.
    fn level_for(&self, f: &CheckFlow) -> Option<(Level, BTreeSet<usize>)> {
        if f.scope == Scope::Local {
            return None;
        }
        let default = self.default_level();
        let mut level = f.scope.is_pod_to_pod().then_some(default);
        let mut by = BTreeSet::new();
        for (i, r) in self.policy.require.iter().enumerate() {
            if r.matches.matches(f) {
                let l = r.level.unwrap_or(default);
                level = Some(level.map_or(l, |cur| cur.max(l)));
                by.insert(i);
            }
        }
        level.map(|l| (l, by))
    }

    pub fn add(&mut self, f: &CheckFlow) {
        self.counts.flows += 1;
        let Some((level, required_by)) = self.level_for(f) else {
            if f.scope == Scope::Local {
                self.counts.local += 1;
            } else {
                *self.counts.not_judged.entry(f.scope).or_default() += 1;
            }
            return;
        };
        self.counts.judged += 1;
        self.counts.identity_mismatches += u64::from(!f.identity_mismatches.is_empty());
        let judged = self.judge(f, level);
        if f.verdict != Verdict::NoPayload {
            self.counts.judged_with_payload += 1;
            self.counts.lossy += u64::from(f.handshake_lossy);
        }
        let agg = self.edges.entry(EdgeKey::of(f)).or_insert_with(|| EdgeAgg {
            scope: f.scope,
            level,
            required_by: BTreeSet::new(),
            flows: 0,
            verdicts: BTreeMap::new(),
            violating: 0,
            allowed_by: BTreeMap::new(),
            expired: BTreeSet::new(),
            unverifiable: 0,
            passed: 0,
            reasons: Vec::new(),
            identity_mismatches: Vec::new(),
            example: f.clone(),
            example_rank: 3,
        });
        agg.level = agg.level.max(level);
        agg.required_by.extend(required_by);
        agg.flows += 1;
        *agg.verdicts.entry(f.verdict).or_default() += 1;
        let rank = match &judged {
            Judged::Violation => {
                agg.violating += 1;
                self.counts.violating += 1;
                0
            }
            Judged::Allowed(i) => {
                *agg.allowed_by.entry(*i).or_default() += 1;
                *self.allow_hits.entry(*i).or_default() += 1;
                self.counts.allowed += 1;
                1
            }
            Judged::Unverifiable => {
                agg.unverifiable += 1;
                self.counts.unverifiable += 1;
                2
            }
            Judged::Pass => {
                agg.passed += 1;
                self.counts.passed += 1;
                3
            }
            Judged::NoPayload => 3,
        };
        if rank < 2 {
            for r in &f.reasons {
                if !agg.reasons.iter().any(|x| x.code == r.code) {
                    agg.reasons.push(r.clone());
                }
            }
            for m in &f.identity_mismatches {
                let ids = &mut agg.identity_mismatches;
                if ids.len() < MAX_MISMATCH_MESSAGES && !ids.contains(m) {
                    ids.push(m.clone());
                }
            }
            for (i, rule) in self.policy.allow.iter().enumerate() {
                if !rule.active(self.opts.today) && rule.matches.matches(f) {
                    agg.expired.insert(i);
                    *self.expired_hits.entry(i).or_default() += 1;
                }
            }
        }
        let worse = rank < agg.example_rank
            || (rank == agg.example_rank && f.verdict.severity() < agg.example.verdict.severity());
        if worse {
            agg.example = f.clone();
            agg.example_rank = rank;
        }
    }

    fn judge(&self, f: &CheckFlow, level: Level) -> Judged {
        if f.verdict == Verdict::NoPayload {
            return Judged::NoPayload;
        }
        // A mesh identity that does not name the pod is not acceptable mTLS, at any level: the
        // traffic reached a workload other than the one the client authenticated.
        let mismatch = !f.identity_mismatches.is_empty();
        if level.passes(f.verdict) && !mismatch {
            return Judged::Pass;
        }
        // Plaintext seen is plaintext, however lossy; anything else may be the loss talking.
        // A mismatch is read from identities that were seen, so loss does not excuse it.
        if f.handshake_lossy
            && !mismatch
            && !matches!(f.verdict, Verdict::Plaintext | Verdict::NoEncryption)
        {
            return Judged::Unverifiable;
        }
        let today = self.opts.today;
        match self.policy.allow.iter().position(|r| r.active(today) && r.matches.matches(f)) {
            Some(i) => Judged::Allowed(i),
            None => Judged::Violation,
        }
    }

    pub fn finish(self, inputs: CheckInputStats) -> CheckReport {
        let Checker { policy, opts, edges, mut counts, expired_hits, allow_hits } = self;
        let rule_name = |i: &usize| policy.allow[*i].name.0.clone();
        let mut results: Vec<EdgeResult> = edges
            .into_iter()
            .map(|(key, a)| {
                let status = if a.violating > 0 {
                    EdgeStatus::Violation
                } else if !a.allowed_by.is_empty() {
                    EdgeStatus::Allowed
                } else if a.passed > 0 {
                    EdgeStatus::Pass
                } else if a.unverifiable > 0 {
                    EdgeStatus::Unverifiable
                } else {
                    EdgeStatus::NoPayload
                };
                EdgeResult {
                    key,
                    status,
                    scope: a.scope,
                    level: a.level,
                    required_by: a
                        .required_by
                        .iter()
                        .map(|&i| policy.require[i].name.0.clone())
                        .collect(),
                    flows: a.flows,
                    verdicts: a.verdicts,
                    violating_flows: a.violating,
                    allowed_by: a.allowed_by.iter().map(|(i, n)| (rule_name(i), *n)).collect(),
                    expired_rules: a.expired.iter().map(rule_name).collect(),
                    unverifiable_flows: a.unverifiable,
                    reasons: a.reasons,
                    identity_mismatches: a.identity_mismatches,
                    example: a.example,
                    baseline: None,
                }
            })
            .collect();
        let fixed = apply_baseline(opts.baseline.as_ref(), &mut results, &mut counts);
        results.sort_by(|a, b| {
            (a.status, a.worst().severity(), &a.key).cmp(&(b.status, b.worst().severity(), &b.key))
        });
        let expired_rules: Vec<ExpiredRule> = policy
            .allow
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.active(opts.today))
            .map(|(i, r)| ExpiredRule {
                name: r.name.0.clone(),
                expired: r.expires.expect("an inactive rule has a date"),
                why: r.why.0.clone(),
                matched_flows: expired_hits.get(&i).copied().unwrap_or(0),
            })
            .collect();
        let unused_rules = policy
            .allow
            .iter()
            .enumerate()
            .filter(|(i, r)| r.active(opts.today) && !allow_hits.contains_key(i))
            .map(|(_, r)| r.name.0.clone())
            .collect();
        let could_not_verify = could_not_verify(&opts, &counts, &inputs);
        let outcome = outcome_of(&results, &expired_rules, &could_not_verify);
        CheckReport {
            outcome,
            level: opts.level.unwrap_or(policy.level),
            policy: policy.source.clone(),
            today: opts.today,
            edges: results,
            expired_rules,
            unused_rules,
            fixed,
            could_not_verify,
            counts,
            inputs,
            baseline_used: opts.baseline.is_some(),
            max_lossy_percent: opts.max_lossy_percent,
        }
    }
}

/// A proven failure (a violation or an expired allow rule) wins over could-not-verify: the
/// violation is real whatever else was lost; the could-not-verify reasons are still reported.
fn outcome_of(edges: &[EdgeResult], expired: &[ExpiredRule], cnv: &[String]) -> Outcome {
    if edges.iter().any(|e| e.status == EdgeStatus::Violation) || !expired.is_empty() {
        Outcome::Fail
    } else if !cnv.is_empty() {
        Outcome::CouldNotVerify
    } else {
        Outcome::Pass
    }
}

impl CheckReport {
    /// `--write-baseline`: records today's violating edges and accepts them, so the run
    /// reports them as known (it still fails on expired allow rules and could-not-verify).
    pub fn adopt_baseline(&mut self) -> Baseline {
        let baseline = Baseline::from_report(self);
        for e in &mut self.edges {
            if e.status == EdgeStatus::Violation {
                e.status = EdgeStatus::Known;
                e.baseline = baseline.find(&e.key).cloned();
                self.counts.violating -= e.violating_flows;
                self.counts.known += e.violating_flows;
            }
        }
        self.edges.sort_by(|a, b| {
            (a.status, a.worst().severity(), &a.key).cmp(&(b.status, b.worst().severity(), &b.key))
        });
        self.fixed.clear();
        self.baseline_used = true;
        self.outcome = outcome_of(&self.edges, &self.expired_rules, &self.could_not_verify);
        baseline
    }
}

/// Violating edges in the baseline become known (unless worse than recorded); baseline entries
/// with no violation are returned as fixed.
fn apply_baseline(
    baseline: Option<&Baseline>,
    edges: &mut [EdgeResult],
    counts: &mut Counts,
) -> Vec<FixedEntry> {
    let Some(baseline) = baseline else { return Vec::new() };
    let mut matched = BTreeSet::new();
    for e in edges.iter_mut() {
        let Some(entry) = baseline.find(&e.key) else { continue };
        if e.status != EdgeStatus::Violation {
            continue;
        }
        matched.insert(e.key.clone());
        e.baseline = Some(entry.clone());
        let recorded = entry.worst_verdict().map_or(0, Verdict::severity);
        if e.worst().severity() >= recorded {
            e.status = EdgeStatus::Known;
            counts.violating -= e.violating_flows;
            counts.known += e.violating_flows;
        }
    }
    baseline
        .edges
        .iter()
        .filter(|b| !matched.contains(&b.edge_key()))
        .map(|b| FixedEntry { entry: b.clone(), seen: edges.iter().any(|e| e.key == b.edge_key()) })
        .collect()
}

/// Reasons the run cannot vouch for the cluster, in the order they are printed.
fn could_not_verify(opts: &CheckOptions, c: &Counts, inputs: &CheckInputStats) -> Vec<String> {
    let mut out: Vec<String> = inputs
        .unreadable()
        .map(|i| {
            format!("capture {} could not be read: {}", i.path, i.error.as_deref().unwrap_or(""))
        })
        .collect();
    if c.judged_with_payload < opts.min_flows {
        let mut msg = if c.judged_with_payload == 0 {
            "no pod-to-pod or pod-to-service traffic with payload was captured".to_string()
        } else {
            format!("only {} judged flows carried payload", c.judged_with_payload)
        };
        msg.push_str(&format!(" (at least {} expected)", opts.min_flows));
        let unknown = c.not_judged.get(&Scope::Unknown).copied().unwrap_or(0);
        let placed: u64 =
            c.not_judged.iter().filter(|(s, _)| **s != Scope::Unknown).map(|(_, n)| n).sum();
        if unknown > 0 && placed == 0 && c.judged == 0 {
            msg.push_str(&format!(
                "; none of the {unknown} network flows could be placed in the cluster: is the \
                 inventory missing, or from another cluster?"
            ));
        } else if c.flows == 0 {
            msg.push_str("; the capture holds no TCP flows at all");
        }
        out.push(msg);
    }
    if c.judged_with_payload > 0 {
        let pct = 100.0 * c.lossy as f64 / c.judged_with_payload as f64;
        if pct > opts.max_lossy_percent {
            out.push(format!(
                "{} of {} judged flows ({pct:.0}%) lost handshake bytes to capture gaps or \
                 snaplen (limit {}%): capture with -s 0 and a larger buffer (tcpdump -B)",
                c.lossy, c.judged_with_payload, opts.max_lossy_percent
            ));
        }
    }
    out
}

/// Judges `flows` in one go.
pub fn evaluate<'a>(
    policy: &Policy,
    opts: &CheckOptions,
    flows: impl IntoIterator<Item = &'a CheckFlow>,
    inputs: CheckInputStats,
) -> CheckReport {
    let mut checker = Checker::new(policy.clone(), opts.clone());
    for f in flows {
        checker.add(f);
    }
    checker.finish(inputs)
}
