//! JUnit XML (`--junit FILE`): one testcase per edge, failures with evidence, in the shape of
//! the Jenkins/Surefire `junit-10.xsd` that GitLab, Jenkins and GitHub test reporters read.

use super::eval::{CheckReport, EdgeResult, EdgeStatus};
use super::text::headline;
use std::fmt::Write as _;

/// XML 1.0 text or attribute value: markup escaped, characters XML cannot carry dropped
/// (evidence quotes captured bytes).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute values normalize raw newlines away; keep them as references.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

struct Case {
    classname: String,
    name: String,
    /// `("failure" | "error" | "skipped", type, message, body)`.
    outcome: Option<(&'static str, String, String, String)>,
    system_out: Option<String>,
}

fn edge_case(r: &CheckReport, e: &EdgeResult) -> Case {
    let f = &e.example;
    let input = r.inputs.path(f.input).unwrap_or("?");
    let detail = || {
        let mut body = format!(
            "{} [{}], must be {}\nevidence: {}\nflow: {}:{} -> {}:{} ({input} flow {}, {})\n",
            e.key,
            e.scope,
            e.level,
            f.evidence,
            f.client_ip,
            f.client_port,
            f.server_ip,
            f.server_port,
            f.id,
            f.first_seen
        );
        for m in &e.identity_mismatches {
            let _ = writeln!(body, "IDENTITY MISMATCH: {m}");
        }
        for reason in &e.reasons {
            let _ = writeln!(body, "reason: {} ({})", reason.message, reason.code);
        }
        let verdicts: Vec<String> = e.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
        let _ = writeln!(body, "flows: {}", verdicts.join(", "));
        body
    };
    let outcome = match e.status {
        EdgeStatus::Violation if e.identity_only() => Some((
            "failure",
            "identity-mismatch".to_string(),
            format!(
                "{}: the mesh identity on the wire does not match the pod ({} violating flows)",
                e.key, e.violating_flows
            ),
            detail(),
        )),
        EdgeStatus::Violation => Some((
            "failure",
            e.worst().as_str().to_string(),
            format!("{} is {} ({} violating flows)", e.key, e.worst(), e.violating_flows),
            detail(),
        )),
        EdgeStatus::Known => Some((
            "skipped",
            String::new(),
            format!("known violation ({}), recorded in the baseline", e.worst()),
            detail(),
        )),
        EdgeStatus::Unverifiable => Some((
            "skipped",
            String::new(),
            "the handshake was lost to capture gaps: cannot judge".to_string(),
            detail(),
        )),
        _ => None,
    };
    let system_out = match e.status {
        EdgeStatus::Allowed => {
            let rules: Vec<String> =
                e.allowed_by.iter().map(|(n, k)| format!("allow rule '{n}' ({k} flows)")).collect();
            Some(format!("{} allowed by {}\n{}", e.worst(), rules.join(", "), detail()))
        }
        EdgeStatus::Pass | EdgeStatus::NoPayload => {
            let verdicts: Vec<String> =
                e.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
            Some(format!("{}: {}", e.key, verdicts.join(", ")))
        }
        _ => None,
    };
    Case {
        classname: format!("mtlscope.{}", e.scope),
        name: e.key.to_string(),
        outcome,
        system_out,
    }
}

fn cases(r: &CheckReport) -> Vec<Case> {
    let mut out: Vec<Case> = r.edges.iter().map(|e| edge_case(r, e)).collect();
    for x in &r.expired_rules {
        out.push(Case {
            classname: "mtlscope.policy".into(),
            name: format!("allow rule '{}'", x.name),
            outcome: Some(("failure", "expired-allow-rule".into(), x.message(), x.message())),
            system_out: None,
        });
    }
    for f in &r.fixed {
        out.push(Case {
            classname: "mtlscope.baseline".into(),
            name: f.entry.edge.clone(),
            outcome: Some((
                "skipped",
                String::new(),
                "no violation on this edge any more: remove it from the baseline".into(),
                String::new(),
            )),
            system_out: None,
        });
    }
    let capture = match r.could_not_verify.as_slice() {
        [] => None,
        reasons => {
            Some(("error", "could-not-verify".to_string(), reasons.join("; "), reasons.join("\n")))
        }
    };
    out.push(Case {
        classname: "mtlscope.capture".into(),
        name: "the capture can prove the policy".into(),
        outcome: capture,
        system_out: None,
    });
    out
}

/// The JUnit XML document.
pub fn render(r: &CheckReport) -> String {
    let cases = cases(r);
    let count = |kind: &str| {
        cases.iter().filter(|c| c.outcome.as_ref().is_some_and(|o| o.0 == kind)).count()
    };
    let (tests, failures, errors, skipped) =
        (cases.len(), count("failure"), count("error"), count("skipped"));
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"mtlscope check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"0\">"
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"mtlscope check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"0\">"
    );
    let _ = writeln!(s, "    <properties>");
    let props = [
        ("outcome", r.outcome.as_str().to_string()),
        ("headline", headline(r)),
        ("level", r.level.as_str().to_string()),
        ("policy", r.policy.clone().unwrap_or_else(|| "built-in default".into())),
    ];
    for (k, v) in props {
        let _ = writeln!(s, "      <property name=\"{k}\" value=\"{}\"/>", xml_escape(&v));
    }
    let _ = writeln!(s, "    </properties>");
    for c in cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            xml_escape(&c.classname),
            xml_escape(&c.name)
        );
        if c.outcome.is_none() && c.system_out.is_none() {
            let _ = writeln!(s, "{open}/>");
            continue;
        }
        let _ = writeln!(s, "{open}>");
        if let Some((kind, ty, message, body)) = c.outcome {
            let ty = if ty.is_empty() {
                String::new()
            } else {
                format!(" type=\"{}\"", xml_escape(&ty))
            };
            let _ = writeln!(
                s,
                "      <{kind}{ty} message=\"{}\">{}</{kind}>",
                xml_escape(&message),
                xml_escape(&body)
            );
        }
        if let Some(out) = c.system_out {
            let _ = writeln!(s, "      <system-out>{}</system-out>", xml_escape(&out));
        }
        let _ = writeln!(s, "    </testcase>");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
