//! The report for people: the verdict on the first line, then each violating edge with its
//! evidence, its reason and the allow rule that would silence it; passing edges summarized.

use super::eval::{CheckReport, EdgeResult, EdgeStatus, Outcome};
use super::policy::Level;
use super::suggest::suggested_allow;
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn flows(n: u64) -> String {
    format!("{n} {}", if n == 1 { "flow" } else { "flows" })
}

/// Evidence quotes captured bytes: control characters (a newline, a terminal escape) are
/// shown escaped, never sent to the terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// The first line: `PASS: ...`, `FAIL: ...` or `COULD NOT VERIFY: ...`.
pub fn headline(r: &CheckReport) -> String {
    match r.outcome {
        Outcome::Fail => format!("FAIL: {}", fail_summary(r)),
        Outcome::CouldNotVerify => {
            let mut s = format!("COULD NOT VERIFY: {}", r.could_not_verify.join("; "));
            if r.could_not_verify.is_empty() {
                s.push_str("unknown reason");
            }
            s
        }
        Outcome::Pass => format!("PASS: {}", pass_summary(r)),
    }
}

fn fail_summary(r: &CheckReport) -> String {
    let (identity, bad): (Vec<&EdgeResult>, Vec<&EdgeResult>) =
        r.edges_with(EdgeStatus::Violation).partition(|e| e.identity_only());
    let mut parts = Vec::new();
    if !bad.is_empty() {
        let mut by_worst: BTreeMap<(u8, Verdict), usize> = BTreeMap::new();
        for e in &bad {
            *by_worst.entry((e.worst().severity(), e.worst())).or_default() += 1;
        }
        let between =
            if bad.iter().all(|e| e.scope.is_pod_to_pod()) { " between pods" } else { "" };
        let edges = plural(bad.len(), "edge", "edges");
        let (verb_pl, verb_sg) = if bad.len() == 1 { ("carries", "is") } else { ("carry", "are") };
        let counts = || {
            let list: Vec<String> =
                by_worst.iter().map(|((_, v), n)| format!("{n} {}", v.as_str())).collect();
            list.join(", ")
        };
        let s = if by_worst.keys().all(|(_, v)| *v == Verdict::Plaintext) {
            format!("{edges} {verb_pl} plaintext{between}")
        } else if bad.iter().all(|e| e.level == Level::Mtls) {
            format!("{edges}{between} {verb_sg} not mTLS ({})", counts())
        } else if bad.iter().all(|e| e.level == Level::Tls) {
            format!("{edges}{between} {verb_sg} not encrypted ({})", counts())
        } else {
            format!("{edges}{between} break the policy ({})", counts())
        };
        parts.push(s);
    }
    if !identity.is_empty() {
        let what = if identity.len() == 1 {
            "carries a mesh identity that does not match the pod"
        } else {
            "carry mesh identities that do not match the pods"
        };
        parts.push(format!(
            "{} {what} (IDENTITY MISMATCH)",
            plural(identity.len(), "edge", "edges")
        ));
    }
    match r.expired_rules.as_slice() {
        [] => {}
        [one] => parts.push(format!("allow rule '{}' expired on {}", one.name, one.expired)),
        many => parts.push(format!("{} allow rules expired", many.len())),
    }
    parts.join("; ")
}

fn pass_summary(r: &CheckReport) -> String {
    let judged: Vec<&EdgeResult> =
        r.edges.iter().filter(|e| e.status != EdgeStatus::NoPayload).collect();
    if judged.is_empty() {
        return "no judged traffic in the capture (nothing to check; --expect-traffic makes this \
                a failure)"
            .into();
    }
    let pass = r.edges_with(EdgeStatus::Pass).count();
    let what = match r.level {
        Level::Mtls => "mTLS",
        Level::Tls => "encrypted",
    };
    let mut s = format!(
        "{} ({}) {what}",
        plural(pass, "edge", "edges"),
        plural(usize::try_from(r.counts.passed).unwrap_or(usize::MAX), "flow", "flows")
    );
    let extra = [
        (EdgeStatus::Allowed, "allowed by policy"),
        (EdgeStatus::Known, "known (baseline)"),
        (EdgeStatus::Unverifiable, "unverifiable (capture loss)"),
    ];
    for (status, words) in extra {
        let n = r.edges_with(status).count();
        if n > 0 {
            s.push_str(&format!(", {n} {words}"));
        }
    }
    s
}

/// The whole text report.
pub fn render(r: &CheckReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", headline(r));
    let policy = r.policy.as_deref().unwrap_or("built-in default");
    let c = &r.counts;
    let _ = writeln!(
        s,
        "policy: {policy}, level {}; {} judged of {} flows ({} local, {} not in a judged scope)",
        r.level,
        c.judged,
        c.flows,
        c.local,
        c.not_judged.values().sum::<u64>()
    );
    let cut = r.inputs.truncated_frames();
    if cut > 0 || c.lossy > 0 {
        let _ = writeln!(
            s,
            "capture loss: {cut} frames cut by snaplen; {} of {} judged flows lost handshake bytes \
             (limit {}%)",
            c.lossy, c.judged_with_payload, r.max_lossy_percent
        );
    }
    for e in r.edges_with(EdgeStatus::Violation) {
        edge_block(&mut s, r, e, "VIOLATION");
    }
    for x in &r.expired_rules {
        let _ = writeln!(s, "\nEXPIRED  {}", x.message());
        let _ = writeln!(
            s,
            "  it matched {} violating flows this run; renew its date or fix the traffic",
            x.matched_flows
        );
    }
    if !r.could_not_verify.is_empty() && r.outcome != Outcome::CouldNotVerify {
        for why in &r.could_not_verify {
            let _ = writeln!(s, "\nCOULD NOT VERIFY  {why}");
        }
    }
    for e in r.edges_with(EdgeStatus::Known) {
        let _ = writeln!(
            s,
            "\nKNOWN  {}  {} ({}, in the baseline)",
            e.key,
            e.worst(),
            flows(e.violating_flows)
        );
    }
    for f in &r.fixed {
        let how = if f.seen { "now passes" } else { "no traffic on it this run" };
        let _ = writeln!(s, "\nFIXED  {} ({how}): remove it from the baseline", f.entry.edge);
    }
    summary_lines(&mut s, r);
    s
}

fn edge_block(s: &mut String, r: &CheckReport, e: &EdgeResult, tag: &str) {
    let f = &e.example;
    let verdicts: Vec<String> = e.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    let _ = writeln!(s, "\n{tag}  {}  {} [{}]", e.key, e.worst(), e.scope);
    let _ = writeln!(
        s,
        "  flows:    {} violating of {} ({}); must be {}{}",
        e.violating_flows,
        e.flows,
        verdicts.join(", "),
        e.level,
        if e.required_by.is_empty() {
            String::new()
        } else {
            format!(" (require rule {})", e.required_by.join(", "))
        }
    );
    let input = r.inputs.path(f.input).unwrap_or("?");
    let _ = writeln!(s, "  evidence: {}", printable(&f.evidence));
    let _ = writeln!(
        s,
        "            {}:{} -> {}:{}, {input} flow {}, {}",
        f.client_ip, f.client_port, f.server_ip, f.server_port, f.id, f.first_seen
    );
    for m in &e.identity_mismatches {
        let _ = writeln!(s, "  identity: IDENTITY MISMATCH: {}", printable(m));
    }
    for reason in &e.reasons {
        let _ = writeln!(s, "  reason:   {} ({})", printable(&reason.message), reason.code);
    }
    if e.reasons.is_empty() && e.identity_mismatches.is_empty() {
        let _ =
            writeln!(s, "  reason:   none known (an inventory names the workloads and says why)");
    }
    if let Some(b) = &e.baseline {
        let _ = writeln!(s, "  baseline: recorded as {}; now worse", b.worst);
    }
    for rule in &e.expired_rules {
        let _ = writeln!(s, "  expired:  allow rule '{rule}' would have allowed it");
    }
    let _ = writeln!(s, "  allow it (under `allow:` in the policy):");
    for line in suggested_allow(e, r.today).lines() {
        let _ = writeln!(s, "    {line}");
    }
}

fn summary_lines(s: &mut String, r: &CheckReport) {
    let passing: Vec<&EdgeResult> = r.edges_with(EdgeStatus::Pass).collect();
    if !passing.is_empty() {
        let _ = writeln!(s, "\npassing edges ({}):", passing.len());
        for e in passing {
            let _ = writeln!(s, "  {}  {}", e.key, flows(e.flows));
        }
    }
    let allowed: Vec<&EdgeResult> = r.edges_with(EdgeStatus::Allowed).collect();
    if !allowed.is_empty() {
        let _ = writeln!(s, "\nallowed edges ({}):", allowed.len());
        for e in allowed {
            let rules: Vec<String> =
                e.allowed_by.iter().map(|(n, k)| format!("'{n}' ({})", flows(*k))).collect();
            let _ = writeln!(s, "  {}  {} by {}", e.key, e.worst(), rules.join(", "));
        }
    }
    let unverifiable: Vec<&EdgeResult> = r.edges_with(EdgeStatus::Unverifiable).collect();
    if !unverifiable.is_empty() {
        let _ = writeln!(s, "\nunverifiable edges (handshake lost to capture gaps):");
        for e in unverifiable {
            let _ = writeln!(s, "  {}  {}", e.key, flows(e.unverifiable_flows));
        }
    }
    if !r.unused_rules.is_empty() {
        let _ = writeln!(s, "\nallow rules that matched nothing: {}", r.unused_rules.join(", "));
    }
    let nj = &r.counts.not_judged;
    if !nj.is_empty() {
        let list: Vec<String> = nj.iter().map(|(sc, n)| format!("{n} {sc}")).collect();
        let _ = writeln!(s, "\nnot judged by the policy: {}", list.join(", "));
    }
}

pub fn write(out: &mut dyn Write, r: &CheckReport) -> io::Result<()> {
    out.write_all(render(r).as_bytes())
}
