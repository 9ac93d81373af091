//! The allow rule that would silence a violating edge, as a YAML snippet to paste under
//! `allow:`. It names the edge exactly (scope, both ends, port, the failing verdicts), asks
//! for a `why`, and expires in 90 days so the exception is looked at again.

use super::date::Date;
use super::eval::{EdgeResult, PeerKey};
use crate::verdict::Verdict;

pub const SUGGESTED_EXPIRY_DAYS: i64 = 90;

/// A YAML list item (`- name: ...`), indented by two spaces per level.
pub fn suggested_allow(e: &EdgeResult, today: Date) -> String {
    let k = &e.key;
    let mut verdicts: Vec<&str> = e
        .verdicts
        .keys()
        .filter(|&&v| v != Verdict::NoPayload && !e.level.passes(v))
        .map(|v| v.as_str())
        .collect();
    let why = if e.identity_only() {
        // Every verdict met the level: the identity is what failed.
        verdicts =
            e.verdicts.keys().filter(|&&v| v != Verdict::NoPayload).map(|v| v.as_str()).collect();
        format!("TODO: why {k} may carry a mesh identity that does not match the pod")
    } else {
        format!("TODO: why {k} may be {}", verdicts.join(" or "))
    };
    let mut s = format!("- name: {}\n", rule_name(&k.client, &k.server, k.port));
    s.push_str(&format!("  why: {}\n", quote(&why)));
    s.push_str(&format!("  expires: {}\n", today.plus_days(SUGGESTED_EXPIRY_DAYS)));
    s.push_str("  match:\n");
    s.push_str(&format!("    scope: {}\n", e.scope.as_str()));
    s.push_str(&format!("    client: {}\n", side(&k.client)));
    s.push_str(&format!("    server: {}\n", side(&k.server)));
    s.push_str(&format!("    port: {}\n", k.port));
    s.push_str(&format!("    verdict: [{}]\n", verdicts.join(", ")));
    s
}

fn side(p: &PeerKey) -> String {
    if p.is_ip() {
        let prefix = if p.name.contains(':') { 128 } else { 32 };
        return format!("{{cidr: {}}}", quote(&format!("{}/{prefix}", p.name)));
    }
    match &p.namespace {
        Some(ns) => format!("{{namespace: {}, workload: {}}}", quote(ns), quote(&p.name)),
        None => format!("{{workload: {}}}", quote(&p.name)),
    }
}

fn rule_name(client: &PeerKey, server: &PeerKey, port: u16) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect()
    };
    let name = format!("{}-to-{}-{port}", clean(&client.name), clean(&server.name));
    name.chars().take(100).collect()
}

/// Plain when YAML reads it back as the same string, else double-quoted (JSON quoting is
/// valid YAML).
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}
