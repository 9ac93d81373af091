//! The policy: parsing (YAML and JSON, errors with file, path and line), the JSON Schema, and
//! table-driven matching of every rule kind, expiry and precedence.

mod check_common;

use check_common::*;
use mtlscope::check::{evaluate, CheckFlow, EdgeStatus, Level, Policy};
use mtlscope::inventory::{Reason, ReasonCode, Scope};
use mtlscope::verdict::Verdict;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check").join(name)
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(data(dir)).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/mtlscope-policy.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the policy schema is a valid JSON Schema")
}

/// A policy file as a JSON value (YAML read through serde_norway).
fn as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_norway::from_str(&text).unwrap()
    }
}

fn example_policies() -> Vec<PathBuf> {
    let mut v = files("policies");
    v.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/mtlscope-policy.yaml"));
    v
}

#[test]
fn example_policies_load_and_match_the_schema() {
    let schema = schema();
    for path in example_policies() {
        Policy::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let errors: Vec<String> = schema
            .iter_errors(&as_json(&path))
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn invalid_policies_are_refused_by_the_loader_and_the_schema() {
    let schema = schema();
    let invalid = files("invalid");
    assert!(invalid.len() >= 10);
    for path in invalid {
        let err = Policy::load(&path).expect_err(&path.display().to_string());
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        let text = std::fs::read_to_string(&path).unwrap();
        // Syntax aside, the schema must agree that the file is wrong.
        if let Ok(v) = std::panic::catch_unwind(|| as_json(&path)) {
            assert!(!schema.is_valid(&v), "schema accepts {}:\n{text}", path.display());
        }
    }
}

#[test]
fn policy_errors_name_the_file_path_and_line() {
    let cases = [
        ("missing-why.yaml", "allow[0]", "missing field `why`", Some(3)),
        ("bad-date.yaml", "allow[0].expires", "invalid date '2026-13-01'", Some(5)),
        (
            "bad-verdict.yaml",
            "allow[0].match.verdict[1]",
            "unknown verdict 'mtls-ish' (one of: plaintext,",
            Some(6),
        ),
        ("unknown-field.yaml", "allow[0].match.labels", "unknown field `labels`", Some(7)),
        // A whole-match error is placed at the rule that holds it.
        ("empty-match.yaml", "allow[0].match", "an empty match would match every flow", Some(3)),
        ("bad-cidr.json", "allow[0].match.client.cidr", "invalid CIDR '10.0.0.0/40'", Some(4)),
        ("version-2.yaml", "version", "unsupported policy version 2", Some(1)),
        ("bad-level.yaml", "level", "unknown variant `mutual`", Some(2)),
        ("blank-why.yaml", "allow[0].why", "`why` must say why", Some(4)),
        ("bad-port.yaml", "require[0].match.port", "invalid port '70000'", Some(4)),
        ("bad-scope.yaml", "require[0].match.scope", "unknown scope 'node-to-everything'", Some(4)),
        ("empty-list.yaml", "require[0].match.scope", "an empty list would match nothing", Some(4)),
        ("bad-name.yaml", "allow[0].name", "invalid rule name 'legacy redis!'", Some(3)),
    ];
    for (file, path, message, line) in cases {
        let p = data(&format!("invalid/{file}"));
        let e = Policy::load(&p).unwrap_err();
        assert_eq!(e.path, path, "{file}: {e}");
        assert!(e.message.contains(message), "{file}: {e}");
        assert_eq!(e.line, line, "{file}: {e}");
        let shown = e.to_string();
        assert!(shown.contains(&format!("{}:{}", p.display(), line.unwrap())), "{shown}");
        assert!(!shown.contains(" at line "), "location said twice: {shown}");
    }
    assert_eq!(cases.len(), files("invalid").len(), "every invalid file has a case");
}

#[test]
fn duplicate_rule_names_and_unreadable_files_are_errors() {
    let text = "version: 1\nallow:\n  - {name: a, why: x, match: {port: 1}}\n  - {name: a, why: y, match: {port: 2}}\n";
    let e = Policy::from_yaml(text, "p.yaml").unwrap_err();
    assert_eq!(e.to_string(), "p.yaml: allow[1].name: rule name 'a' is already used by allow[0]");
    let e = Policy::load(Path::new("/nonexistent/policy.yaml")).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/policy.yaml: cannot read the policy"), "{e}");
    let e = Policy::from_yaml("version: 1\nallow: [\n", "broken.yaml").unwrap_err();
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn yaml_and_json_give_the_same_policy_and_round_trip() {
    let yaml = Policy::load(&data("policies/emojivoto.yaml")).unwrap();
    let json_text = serde_json::to_string(&as_json(&data("policies/emojivoto.yaml"))).unwrap();
    let json = Policy::from_json(&json_text, "emojivoto.json").unwrap();
    assert_eq!(Policy { source: None, ..yaml.clone() }, Policy { source: None, ..json });
    let again = Policy::from_yaml(&yaml.to_yaml(), "again.yaml").unwrap();
    assert_eq!(Policy { source: None, ..yaml }, Policy { source: None, ..again });
}

fn policy(yaml: &str) -> Policy {
    Policy::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The status of the edge `f` falls on, judged alone.
fn status(p: &Policy, f: &CheckFlow) -> Option<EdgeStatus> {
    let r = evaluate(p, &opts(), [f], inputs());
    r.edges.first().map(|e| e.status)
}

fn with_reason(mut f: CheckFlow, code: ReasonCode) -> CheckFlow {
    f.reasons = vec![Reason { code, message: format!("because {code}") }];
    f
}

#[test]
fn each_allow_matcher_kind() {
    let plain = web_to_emoji(Verdict::Plaintext);
    let rule = |m: &str| {
        policy(&format!("version: 1\nallow:\n  - name: r\n    why: test\n    match: {m}\n"))
    };
    // (match, flow, allowed?)
    let cases: Vec<(&str, CheckFlow, bool)> = vec![
        ("{scope: pod-to-pod}", plain.clone(), true),
        ("{scope: [pod-to-service, node-to-pod]}", plain.clone(), false),
        ("{namespace: emojivoto}", plain.clone(), true),
        ("{namespace: emoji*}", plain.clone(), true),
        ("{namespace: shop}", plain.clone(), false),
        ("{workload: emoji}", plain.clone(), true),
        ("{workload: web}", plain.clone(), true),
        ("{workload: emojivoto/emoji}", plain.clone(), true),
        ("{workload: shop/emoji}", plain.clone(), false),
        ("{client: {workload: web}}", plain.clone(), true),
        ("{client: {workload: emoji}}", plain.clone(), false),
        ("{server: {workload: emoji, namespace: emojivoto}}", plain.clone(), true),
        ("{server: {service_account: emoji}}", plain.clone(), true),
        ("{server: {service_account: web}}", plain.clone(), false),
        ("{client: {cidr: 10.244.0.0/16}}", plain.clone(), true),
        ("{client: {cidr: 10.96.0.0/12}}", plain.clone(), false),
        ("{server: {cidr: [\"fd00::/8\", 10.0.0.0/8]}}", plain.clone(), true),
        ("{port: 8080}", plain.clone(), true),
        ("{port: \"8000-8099\"}", plain.clone(), true),
        ("{port: [443, 9090]}", plain.clone(), false),
        ("{verdict: plaintext}", plain.clone(), true),
        ("{verdict: [tls-server-auth, opaque]}", plain.clone(), false),
        ("{reason: server-not-meshed}", plain.clone(), true),
        ("{reason: [port-skipped]}", plain.clone(), false),
        ("{reason: port-skipped}", with_reason(plain.clone(), ReasonCode::PortSkipped), true),
        // AND across fields: one wrong field spoils the match.
        ("{namespace: emojivoto, port: 9090}", plain.clone(), false),
        ("{namespace: emojivoto, port: 8080, verdict: plaintext}", plain.clone(), true),
        // Services and nodes match by name; an address with no workload never matches a name.
        ("{server: {workload: shop/payments}}", checkout_to_payments(Verdict::Plaintext), true),
        ("{workload: other}", flow(Scope::PodToPod, None, None, 80, Verdict::Plaintext), false),
        (
            "{client: {cidr: 192.0.2.0/24}}",
            flow(Scope::PodToPod, None, None, 80, Verdict::Plaintext),
            true,
        ),
    ];
    for (m, f, allowed) in cases {
        let want = if allowed { EdgeStatus::Allowed } else { EdgeStatus::Violation };
        assert_eq!(status(&rule(m), &f), Some(want), "match {m}");
    }
}

#[test]
fn expiry_is_judged_against_the_given_day() {
    let f = web_to_emoji(Verdict::Plaintext);
    // today() is 2026-06-01; `expires` is the last day allowed.
    for (expires, active) in [("2026-06-01", true), ("2026-12-31", true), ("2026-05-31", false)] {
        let p = policy(&format!(
            "version: 1\nallow:\n  - name: legacy\n    why: migrating\n    expires: {expires}\n    match: {{workload: emoji}}\n"
        ));
        let r = evaluate(&p, &opts(), [&f], inputs());
        if active {
            assert_eq!(r.edges[0].status, EdgeStatus::Allowed, "{expires}");
            assert!(r.expired_rules.is_empty());
            assert_eq!(r.exit_code(), 0);
        } else {
            assert_eq!(r.edges[0].status, EdgeStatus::Violation, "{expires}");
            assert_eq!(r.edges[0].expired_rules, ["legacy"]);
            assert_eq!(r.expired_rules.len(), 1);
            assert_eq!(
                r.expired_rules[0].message(),
                "allow rule 'legacy' expired on 2026-05-31 (it allowed: migrating)"
            );
            assert_eq!(r.exit_code(), 1);
        }
    }
}

#[test]
fn an_expired_rule_fails_even_when_it_matches_nothing() {
    let p = policy(
        "version: 1\nallow:\n  - {name: old, why: gone, expires: 2025-01-01, match: {port: 1}}\n",
    );
    let r = evaluate(&p, &opts(), [&web_to_emoji(Verdict::Mtls)], inputs());
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.expired_rules[0].matched_flows, 0);
    assert!(mtlscope::check::text::headline(&r)
        .starts_with("FAIL: allow rule 'old' expired on 2025-01-01"));
}

#[test]
fn precedence() {
    let node = node_to_web(10250, Verdict::Plaintext);
    let probe = node_to_web(8080, Verdict::Plaintext);
    // Node-to-pod is reported, not judged, by default.
    let r = evaluate(&Policy::default(), &opts(), [&node, &probe], inputs());
    assert!(r.edges.is_empty());
    assert_eq!(r.counts.not_judged[&Scope::NodeToPod], 2);
    assert_eq!(r.exit_code(), 0);

    // A require rule widens judgement to what it matches, only.
    let p = policy(
        "version: 1\nrequire:\n  - {name: kubelet, match: {scope: node-to-pod, port: 10250}}\n",
    );
    let r = evaluate(&p, &opts(), [&node, &probe], inputs());
    assert_eq!(r.edges.len(), 1);
    assert_eq!(r.edges[0].required_by, ["kubelet"]);
    assert_eq!(r.edges[0].status, EdgeStatus::Violation);

    // An allow rule silences a violation that a require rule created.
    let p = policy(
        "version: 1\nrequire:\n  - {name: kubelet, match: {scope: node-to-pod}}\nallow:\n  - {name: probes, why: kubelet probes, match: {port: 8080}}\n",
    );
    let r = evaluate(&p, &opts(), [&node, &probe], inputs());
    let by_port = |port| r.edges.iter().find(|e| e.key.port == port).unwrap().status;
    assert_eq!(by_port(8080), EdgeStatus::Allowed);
    assert_eq!(by_port(10250), EdgeStatus::Violation);

    // The strictest level applies: a tls require rule does not relax pod-to-pod's mtls.
    let f = web_to_emoji(Verdict::TlsServerAuth);
    let p = policy(
        "version: 1\nrequire:\n  - {name: relaxed, level: tls, match: {namespace: emojivoto}}\n",
    );
    let r = evaluate(&p, &opts(), [&f], inputs());
    assert_eq!((r.edges[0].level, r.edges[0].status), (Level::Mtls, EdgeStatus::Violation));
    // ... and an mtls require rule is stricter than --require tls.
    let p = policy(
        "version: 1\nrequire:\n  - {name: strict, level: mtls, match: {namespace: emojivoto}}\n",
    );
    let mut o = opts();
    o.level = Some(Level::Tls);
    let r = evaluate(&p, &o, [&f], inputs());
    assert_eq!((r.edges[0].level, r.edges[0].status), (Level::Mtls, EdgeStatus::Violation));

    // Allow rules: the first active match in file order is credited; expired ones are skipped.
    let p = policy(
        "version: 1\nallow:\n  - {name: expired, why: old, expires: 2026-01-01, match: {namespace: emojivoto}}\n  - {name: first, why: a, match: {workload: web}}\n  - {name: second, why: b, match: {workload: emoji}}\n",
    );
    let plain = web_to_emoji(Verdict::Plaintext);
    let r = evaluate(&p, &opts(), [&plain], inputs());
    assert_eq!(r.edges[0].allowed_by, [("first".to_string(), 1)]);
    assert_eq!(r.unused_rules, ["second"]);
    assert_eq!(r.exit_code(), 1, "the expired rule still fails the run");

    // Local hops are never judged, whatever the rules say.
    let mut local = web_to_emoji(Verdict::Plaintext);
    local.scope = Scope::Local;
    let p = policy("version: 1\nrequire:\n  - {name: all, match: {scope: [local, pod-to-pod]}}\n");
    let r = evaluate(&p, &opts(), [&local], inputs());
    assert!(r.edges.is_empty());
    assert_eq!(r.counts.local, 1);
}
