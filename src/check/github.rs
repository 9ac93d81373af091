//! GitHub Actions workflow commands (`::error title=...::message`), printed when running under
//! Actions so violations show on the run's summary and in the log.

use super::eval::{CheckReport, EdgeStatus};

/// Whether to annotate, from the value of `GITHUB_ACTIONS` (passed in, never read here).
pub fn github_actions_detected(github_actions_env: Option<&str>) -> bool {
    github_actions_env == Some("true")
}

/// A command's message: `%`, CR and LF are escaped.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A command's property value: as data, plus `:` and `,`, which end properties.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command line (`level` is `error`, `warning` or `notice`).
pub fn command(level: &str, props: &[(&str, &str)], message: &str) -> String {
    let props: Vec<String> =
        props.iter().map(|(k, v)| format!("{k}={}", escape_property(v))).collect();
    let sep = if props.is_empty() { "" } else { " " };
    format!("::{level}{sep}{}::{}", props.join(","), escape_data(message))
}

/// Every annotation for the report, in report order.
pub fn annotations(r: &CheckReport) -> Vec<String> {
    let mut out = Vec::new();
    for e in r.edges_with(EdgeStatus::Violation) {
        let mut msg = format!("{} is {}: {}", e.key, e.worst(), e.example.evidence);
        if let Some(m) = e.identity_mismatches.first() {
            msg.push_str(&format!("\nIDENTITY MISMATCH: {m}"));
        }
        if let Some(reason) = e.reasons.first() {
            msg.push_str(&format!("\nreason: {}", reason.message));
        }
        let title = if e.identity_only() {
            "mtlscope: mesh identity does not match the pod".to_string()
        } else {
            format!("mtlscope: {} edge not {}", e.worst(), e.level)
        };
        out.push(command("error", &[("title", &title)], &msg));
    }
    let policy = r.policy.as_deref();
    for x in &r.expired_rules {
        let title = "mtlscope: allow rule expired";
        match policy {
            Some(file) => {
                out.push(command("error", &[("file", file), ("title", title)], &x.message()))
            }
            None => out.push(command("error", &[("title", title)], &x.message())),
        }
    }
    for why in &r.could_not_verify {
        out.push(command("error", &[("title", "mtlscope: could not verify")], why));
    }
    for e in r.edges_with(EdgeStatus::Known) {
        let msg = format!("{} is {} (known: in the baseline)", e.key, e.worst());
        out.push(command("notice", &[("title", "mtlscope: known violation")], &msg));
    }
    for f in &r.fixed {
        let msg =
            format!("{} no longer violates the policy: remove it from the baseline", f.entry.edge);
        out.push(command("notice", &[("title", "mtlscope: baseline entry fixed")], &msg));
    }
    for name in &r.unused_rules {
        let msg = format!("allow rule '{name}' matched no violating flow this run");
        out.push(command("warning", &[("title", "mtlscope: unused allow rule")], &msg));
    }
    out
}
