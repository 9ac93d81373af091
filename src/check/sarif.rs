//! SARIF 2.1.0 (`--sarif FILE`) for code-scanning upload. One result per violating, known or
//! allowed edge (allowed ones carry an external suppression with the rule's `why`), one per
//! expired allow rule, and one when the run could not be verified.

use super::eval::{CheckReport, EdgeResult, EdgeStatus, Outcome};
use super::policy::Level;
use super::suggest::suggested_allow;
use serde_json::{json, Value};

pub const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// `(id, name, short description, full description)`.
const RULES: [(&str, &str, &str, &str); 5] = [
    (
        "MTLS001",
        "NotMutualTls",
        "Traffic between workloads is not mutually authenticated TLS",
        "A judged edge (pod-to-pod, pod-to-service, or one a require rule names) carried flows whose verdict was not mtls. The evidence names what was seen on the wire.",
    ),
    (
        "MTLS002",
        "NotEncrypted",
        "Traffic between workloads is not encrypted",
        "A judged edge at level tls carried plaintext, a NULL cipher, or bytes that are not provably encrypted.",
    ),
    (
        "MTLS003",
        "AllowRuleExpired",
        "An allow rule in the policy has expired",
        "The rule's expires date has passed: it no longer allows anything. Fix the traffic, or renew the rule with a reason.",
    ),
    (
        "MTLS004",
        "CouldNotVerify",
        "The capture cannot prove the policy",
        "No judged traffic, unreadable inputs, or too many handshakes lost to capture gaps.",
    ),
    (
        "MTLS005",
        "IdentityMismatch",
        "A mesh identity on the wire does not match the pod",
        "The mesh TLS identity the client demanded or the peer presented names another ServiceAccount than the inventory's pod at that address: a wrong route, a stale inventory, or an impersonation.",
    ),
];

fn rule_index(id: &str) -> usize {
    RULES.iter().position(|r| r.0 == id).expect("a known rule id")
}

fn location(uri: &str, logical: Option<&str>) -> Value {
    let mut loc = json!({ "physicalLocation": { "artifactLocation": { "uri": uri } } });
    if let Some(name) = logical {
        loc["logicalLocations"] = json!([{ "name": name, "kind": "resource" }]);
    }
    loc
}

fn edge_result(r: &CheckReport, e: &EdgeResult) -> Option<Value> {
    let id = if e.identity_only() {
        "MTLS005"
    } else if e.level == Level::Mtls {
        "MTLS001"
    } else {
        "MTLS002"
    };
    let f = &e.example;
    let level = match e.status {
        EdgeStatus::Violation => "error",
        EdgeStatus::Known | EdgeStatus::Allowed => "note",
        _ => return None,
    };
    let mut text = format!(
        "{} is {} ({} of {} flows break level {}). Evidence: {}",
        e.key,
        e.worst(),
        e.violating_flows.max(e.allowed_by.iter().map(|(_, n)| n).sum()),
        e.flows,
        e.level,
        f.evidence
    );
    for m in &e.identity_mismatches {
        text.push_str(&format!(" IDENTITY MISMATCH: {m}."));
    }
    for reason in &e.reasons {
        text.push_str(&format!(" Reason ({}): {}", reason.code, reason.message));
    }
    let uri = r.inputs.path(f.input).unwrap_or("capture");
    let mut result = json!({
        "ruleId": id,
        "ruleIndex": rule_index(id),
        "level": level,
        "message": { "text": text },
        "locations": [location(uri, Some(&e.key.to_string()))],
        "partialFingerprints": { "mtlscopeEdge/v1": e.key.to_string() },
        "properties": {
            "scope": e.scope.as_str(),
            "status": e.status.as_str(),
            "worst": e.worst().as_str(),
            "flows": e.flows,
            "reasons": e.reasons.iter().map(|x| x.code.as_str()).collect::<Vec<_>>(),
            "identityMismatches": e.identity_mismatches,
            "example": format!("{}:{} -> {}:{} flow {}", f.client_ip, f.client_port, f.server_ip, f.server_port, f.id),
        },
    });
    match e.status {
        EdgeStatus::Violation | EdgeStatus::Known => {
            result["properties"]["suggestedAllow"] = json!(suggested_allow(e, r.today));
        }
        _ => {}
    }
    if r.baseline_used {
        result["baselineState"] =
            json!(if e.status == EdgeStatus::Known { "unchanged" } else { "new" });
    }
    if e.status == EdgeStatus::Allowed {
        let why: Vec<String> =
            e.allowed_by.iter().map(|(n, _)| format!("allow rule '{n}'")).collect();
        result["suppressions"] =
            json!([{ "kind": "external", "state": "accepted", "justification": why.join(", ") }]);
    }
    Some(result)
}

/// The SARIF log as a JSON value.
pub fn sarif(r: &CheckReport) -> Value {
    let mut results: Vec<Value> = r.edges.iter().filter_map(|e| edge_result(r, e)).collect();
    let policy_uri = r.policy.as_deref().unwrap_or("mtlscope-policy.yaml");
    for x in &r.expired_rules {
        results.push(json!({
            "ruleId": "MTLS003",
            "ruleIndex": rule_index("MTLS003"),
            "level": "error",
            "message": { "text": x.message() },
            "locations": [location(policy_uri, Some(&format!("allow/{}", x.name)))],
            "partialFingerprints": { "mtlscopeRule/v1": x.name },
        }));
    }
    let first_input = r.inputs.inputs.first().map_or("capture", |i| i.path.as_str());
    for why in &r.could_not_verify {
        results.push(json!({
            "ruleId": "MTLS004",
            "ruleIndex": rule_index("MTLS004"),
            "level": "error",
            "message": { "text": why },
            "locations": [location(first_input, None)],
        }));
    }
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, name, short, full)| {
            json!({
                "id": id,
                "name": name,
                "shortDescription": { "text": short },
                "fullDescription": { "text": full },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let notifications: Vec<Value> = r
        .could_not_verify
        .iter()
        .map(|why| json!({ "level": "error", "message": { "text": why } }))
        .collect();
    json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "mtlscope",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": r.outcome != Outcome::CouldNotVerify,
                "exitCode": r.exit_code(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

pub fn render(r: &CheckReport) -> String {
    let mut s = serde_json::to_string_pretty(&sarif(r)).expect("SARIF is plain JSON");
    s.push('\n');
    s
}
