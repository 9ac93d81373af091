//! The policy: which flows are judged, what they must be, and which violations are allowed.
//! YAML or JSON, schema in `schemas/mtlscope-policy.schema.json`, documented in
//! README.md ("CI gate: `mtlscope check`").
//!
//! Precedence, in this order:
//! 1. `local` hops are never judged.
//! 2. A flow is judged when its scope is `pod-to-pod` or `pod-to-service` (at the policy's
//!    `level`), or when any `require` rule matches it (at that rule's level). Several apply:
//!    the strictest wins (`mtls` over `tls`). Require rules only widen.
//! 3. A judged flow that does not meet its level is a violation unless an `allow` rule
//!    matches it. Allow rules are tried in file order and the first active match is credited;
//!    an allow rule silences violations whether they came from the default or a require rule.
//! 4. An expired allow rule silences nothing, and is itself a failure.

use super::date::Date;
use super::input::{CheckFlow, CheckWorkload};
use super::words::{
    parse_value, Cidr, Glob, OneOrMany, PortRange, ReasonWord, ScopeWord, VerdictWord, WorkloadName,
};
use crate::verdict::Verdict;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// What a judged flow must be.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Encrypted: TLS of any authentication passes; plaintext, `no-encryption` and `opaque`
    /// fail.
    Tls,
    /// Mutually authenticated TLS, proven on the wire.
    Mtls,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Mtls => "mtls",
            Level::Tls => "tls",
        }
    }

    /// Whether a flow with `verdict` meets this level. `no-payload` is never asked: it is
    /// skipped before (nothing was sent, so nothing to judge).
    pub fn passes(self, verdict: Verdict) -> bool {
        match self {
            Level::Mtls => verdict == Verdict::Mtls,
            Level::Tls => matches!(
                verdict,
                Verdict::Mtls
                    | Verdict::TlsServerAuth
                    | Verdict::TlsUnknownAuth
                    // TLS was attempted and failed: no application byte crossed in the clear.
                    | Verdict::HandshakeFailed
            ),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The only policy format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Version(u32);

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "1" => Ok(Version(1)),
            n => Err(format!("unsupported policy version {n} (this mtlscope reads version 1)")),
        }
    }
}
parse_value!(Version, "the policy version (1)");

/// Matches one end of a flow. Every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideMatch {
    #[serde(default, skip_serializing_if = "OneOrMany::is_empty")]
    pub namespace: OneOrMany<Glob>,
    /// Workload, Service or Node name: `payments` or `shop/payments`.
    #[serde(default, skip_serializing_if = "OneOrMany::is_empty")]
    pub workload: OneOrMany<WorkloadName>,
    #[serde(default, skip_serializing_if = "OneOrMany::is_empty")]
    pub service_account: OneOrMany<Glob>,
    #[serde(default, skip_serializing_if = "OneOrMany::is_empty")]
    pub cidr: OneOrMany<Cidr>,
}

impl SideMatch {
    fn is_empty(&self) -> bool {
        self.namespace.is_empty()
            && self.workload.is_empty()
            && self.service_account.is_empty()
            && self.cidr.is_empty()
    }

    fn matches(&self, w: Option<&CheckWorkload>, ip: std::net::IpAddr) -> bool {
        let ns = w.and_then(|w| w.namespace.as_deref());
        (self.namespace.is_empty() || ns.is_some_and(|ns| self.namespace.any(|g| g.matches(ns))))
            && (self.workload.is_empty()
                || w.is_some_and(|w| self.workload.any(|n| n.matches(ns, &w.workload))))
            && (self.service_account.is_empty()
                || w.and_then(|w| w.service_account.as_deref())
                    .is_some_and(|sa| self.service_account.any(|g| g.matches(sa))))
            && (self.cidr.is_empty() || self.cidr.any(|c| c.contains(ip)))
    }
}

/// Which flows a rule is about. Every given field must match (AND); a list matches any of its
/// values (OR). At least one field is required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMatch")]
pub struct Match {
    #[serde(skip_serializing_if = "OneOrMany::is_empty")]
    pub scope: OneOrMany<ScopeWord>,
    /// Either end's namespace.
    #[serde(skip_serializing_if = "OneOrMany::is_empty")]
    pub namespace: OneOrMany<Glob>,
    /// Either end's workload (or Service, or Node) name.
    #[serde(skip_serializing_if = "OneOrMany::is_empty")]
    pub workload: OneOrMany<WorkloadName>,
    #[serde(skip_serializing_if = "SideMatch::is_empty")]
    pub client: SideMatch,
    #[serde(skip_serializing_if = "SideMatch::is_empty")]
    pub server: SideMatch,
    /// The server port on the wire (a Service port for pod-to-service flows).
    #[serde(skip_serializing_if = "OneOrMany::is_empty")]
    pub port: OneOrMany<PortRange>,
    #[serde(skip_serializing_if = "OneOrMany::is_empty")]
    pub verdict: OneOrMany<VerdictWord>,
    /// Any of the flow's reason codes.
    #[serde(skip_serializing_if = "OneOrMany::is_empty")]
    pub reason: OneOrMany<ReasonWord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    scope: OneOrMany<ScopeWord>,
    #[serde(default)]
    namespace: OneOrMany<Glob>,
    #[serde(default)]
    workload: OneOrMany<WorkloadName>,
    #[serde(default)]
    client: SideMatch,
    #[serde(default)]
    server: SideMatch,
    #[serde(default)]
    port: OneOrMany<PortRange>,
    #[serde(default)]
    verdict: OneOrMany<VerdictWord>,
    #[serde(default)]
    reason: OneOrMany<ReasonWord>,
}

impl TryFrom<RawMatch> for Match {
    type Error = String;
    fn try_from(r: RawMatch) -> Result<Match, String> {
        let m = Match {
            scope: r.scope,
            namespace: r.namespace,
            workload: r.workload,
            client: r.client,
            server: r.server,
            port: r.port,
            verdict: r.verdict,
            reason: r.reason,
        };
        if m == Match::default() {
            return Err("an empty match would match every flow: name at least one of scope, \
                        namespace, workload, client, server, port, verdict, reason"
                .into());
        }
        Ok(m)
    }
}

impl Match {
    pub fn matches(&self, f: &CheckFlow) -> bool {
        let ends = [f.client.as_ref(), f.server.as_ref()];
        let either_ns = |g: &Glob| {
            ends.iter().flatten().any(|w| w.namespace.as_deref().is_some_and(|ns| g.matches(ns)))
        };
        let either_wl = |n: &WorkloadName| {
            ends.iter().flatten().any(|w| n.matches(w.namespace.as_deref(), &w.workload))
        };
        (self.scope.is_empty() || self.scope.any(|s| s.0 == f.scope))
            && (self.namespace.is_empty() || self.namespace.any(either_ns))
            && (self.workload.is_empty() || self.workload.any(either_wl))
            && self.client.matches(f.client.as_ref(), f.client_ip)
            && self.server.matches(f.server.as_ref(), f.server_ip)
            && (self.port.is_empty() || self.port.any(|p| p.contains(f.server_port)))
            && (self.verdict.is_empty() || self.verdict.any(|v| v.0 == f.verdict))
            && (self.reason.is_empty() || f.reason_codes().any(|c| self.reason.any(|r| r.0 == c)))
    }
}

/// Demands a level for more flows than the default (e.g. kubelet's port, a namespace's
/// node-to-pod traffic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireRule {
    pub name: RuleName,
    #[serde(rename = "match")]
    pub matches: Match,
    /// Defaults to the policy's level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Silences violations it matches, for a stated reason, until an optional date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    pub name: RuleName,
    #[serde(rename = "match")]
    pub matches: Match,
    pub why: Why,
    /// The last day the rule allows; from the next day on it fails the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
}

impl AllowRule {
    /// Active on `today` (an `expires` date is the last day it allows).
    pub fn active(&self, today: Date) -> bool {
        self.expires.is_none_or(|e| today <= e)
    }
}

/// A rule's name: what messages, baselines and suggestions call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleName(pub String);

impl std::str::FromStr for RuleName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 100
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(format!(
                "invalid rule name '{s}' (letters, digits, '-', '_', '.'; at most 100)"
            ));
        }
        Ok(RuleName(s.to_string()))
    }
}
parse_value!(RuleName, "a rule name");

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The reason an exception exists: required, never blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Why(pub String);

impl std::str::FromStr for Why {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("`why` must say why this exception is acceptable (it is shown with every \
                        flow it allows)"
                .into());
        }
        Ok(Why(s.to_string()))
    }
}
parse_value!(Why, "a reason");

/// The policy file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: Version,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    require: Vec<RequireRule>,
    #[serde(default)]
    allow: Vec<AllowRule>,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Where it came from (a file name), for messages; `None` for the built-in default.
    #[serde(skip)]
    pub source: Option<String>,
    pub level: Level,
    pub require: Vec<RequireRule>,
    pub allow: Vec<AllowRule>,
}

impl Default for Policy {
    /// Every `pod-to-pod` and `pod-to-service` flow must be `mtls`; nothing else is judged.
    fn default() -> Self {
        Policy { source: None, level: Level::Mtls, require: Vec::new(), allow: Vec::new() }
    }
}

/// Why a policy could not be used: the file, the path inside it, the line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: String,
    /// E.g. `allow[1].expires`; empty for the whole document.
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if !self.path.is_empty() && self.path != "." {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// The YAML reader's messages carry their own path prefix and " at line L column C"; the
/// error has fields for both.
fn strip_location(msg: String, path: &str) -> String {
    let mut msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let mut p = path;
    loop {
        if let Some(rest) = msg.strip_prefix(p).and_then(|r| r.strip_prefix(": ")) {
            msg = rest.to_string();
            break;
        }
        match p.rfind(['.', '[']) {
            Some(i) if i > 0 => p = &p[..i],
            _ => break,
        }
    }
    msg
}

impl Policy {
    /// Parses a YAML policy (JSON is YAML too, but [`Policy::from_json`] gives JSON's lines).
    pub fn from_yaml(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let de = serde_norway::Deserializer::from_str(text);
        let parsed: Result<PolicyFile, _> = serde_path_to_error::deserialize(de);
        let raw = parsed.map_err(|e| {
            let loc = e.inner().location();
            PolicyError {
                file: file.into(),
                path: e.path().to_string(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                message: strip_location(e.inner().to_string(), &e.path().to_string()),
            }
        })?;
        Policy::validate(raw, file)
    }

    pub fn from_json(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed: Result<PolicyFile, _> = serde_path_to_error::deserialize(&mut de);
        let raw = parsed.map_err(|e| PolicyError {
            file: file.into(),
            path: e.path().to_string(),
            line: Some(e.inner().line()),
            column: Some(e.inner().column()),
            message: strip_location(e.inner().to_string(), &e.path().to_string()),
        })?;
        Policy::validate(raw, file)
    }

    /// Reads a policy file: `.json` as JSON, anything else as YAML.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            path: String::new(),
            line: None,
            column: None,
            message: format!("cannot read the policy: {e}"),
        })?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Policy::from_json(&text, &file)
        } else {
            Policy::from_yaml(&text, &file)
        }
    }

    /// Checks what serde cannot: rule names are unique within each list.
    fn validate(raw: PolicyFile, file: &str) -> Result<Policy, PolicyError> {
        let dup = |names: Vec<&str>, list: &str| {
            names.iter().enumerate().find_map(|(i, n)| {
                let first = names.iter().position(|m| m == n)?;
                (first < i).then(|| PolicyError {
                    file: file.into(),
                    path: format!("{list}[{i}].name"),
                    line: None,
                    column: None,
                    message: format!("rule name '{n}' is already used by {list}[{first}]"),
                })
            })
        };
        let allow_names = raw.allow.iter().map(|r| r.name.0.as_str()).collect();
        let require_names = raw.require.iter().map(|r| r.name.0.as_str()).collect();
        if let Some(e) = dup(allow_names, "allow").or_else(|| dup(require_names, "require")) {
            return Err(e);
        }
        Ok(Policy {
            source: Some(file.to_string()),
            level: raw.level.unwrap_or(Level::Mtls),
            require: raw.require,
            allow: raw.allow,
        })
    }

    /// The policy as YAML, in the file format (it reads back as the same policy).
    pub fn to_yaml(&self) -> String {
        let file = PolicyFile {
            version: Version(1),
            level: Some(self.level),
            require: self.require.clone(),
            allow: self.allow.clone(),
        };
        serde_norway::to_string(&file).expect("policy values serialize as strings and lists")
    }
}
