//! The outputs: text, the JSON `check` section, JUnit XML (validated against the vendored
//! Jenkins junit-10.xsd), SARIF 2.1.0 (validated against the OASIS schema) and GitHub
//! Actions annotations (escaping).

mod check_common;

use check_common::schemas::{junit_errors, sarif_validator};
use check_common::*;
use mtlscope::check::evaluate;
use mtlscope::check::{check_dto, github, junit, sarif, text, CheckReport, EdgeStatus, Policy};
use mtlscope::verdict::Verdict;

fn reports() -> Vec<(&'static str, CheckReport)> {
    let mut o = opts();
    o.min_flows = 1;
    vec![
        ("scenario", scenario()),
        ("pass", evaluate(&Policy::default(), &opts(), [&web_to_emoji(Verdict::Mtls)], inputs())),
        ("could not verify", evaluate(&Policy::default(), &o, [], inputs())),
    ]
}

#[test]
fn scenario_statuses() {
    let r = scenario();
    let st: Vec<(String, EdgeStatus)> =
        r.edges.iter().map(|e| (e.key.to_string(), e.status)).collect();
    assert_eq!(
        st,
        [
            ("emojivoto/web -> emojivoto/emoji:8080".to_string(), EdgeStatus::Violation),
            ("shop/checkout -> service shop/payments:443".to_string(), EdgeStatus::Violation),
            ("shop/frontend -> shop/catalog:3550".to_string(), EdgeStatus::Known),
            ("shop/cart -> shop/redis:6379".to_string(), EdgeStatus::Allowed),
            ("emojivoto/web -> emojivoto/voting:8080".to_string(), EdgeStatus::Pass),
        ]
    );
    assert_eq!(r.expired_rules.len(), 1);
    assert_eq!(r.fixed.len(), 1);
    assert!(r.fixed[0].seen);
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn text_report() {
    let r = scenario();
    let s = text::render(&r);
    let first = s.lines().next().unwrap();
    assert_eq!(
        first,
        "FAIL: 2 edges between pods are not mTLS (1 plaintext, 1 tls-server-auth); allow rule 'old-exception' expired on 2026-01-31"
    );
    for want in [
        "policy: ci/mtlscope-policy.yaml, level mtls; 5 judged of 5 flows (0 local, 0 not in a judged scope)",
        "VIOLATION  emojivoto/web -> emojivoto/emoji:8080  plaintext [pod-to-pod]",
        "  reason:   the server has no linkerd-proxy (server-not-meshed)",
        "  allow it (under `allow:` in the policy):",
        "    - name: checkout-to-payments-443",
        "        server: {namespace: shop, workload: payments}",
        "EXPIRED  allow rule 'old-exception' expired on 2026-01-31 (it allowed: temporary, <until> the 'migration' & more)",
        "KNOWN  shop/frontend -> shop/catalog:3550  plaintext (1 flow, in the baseline)",
        "FIXED  emojivoto/web -> emojivoto/voting:8080 (now passes): remove it from the baseline",
        "passing edges (1):",
        "  shop/cart -> shop/redis:6379  plaintext by 'legacy-redis' (1 flow)",
        "  evidence: GET /api/vote?choice=<b>%F0%9F\"&x='1' HTTP/1.1 in the clear\\u{1}\\n(Host: web:80)",
    ] {
        assert!(s.lines().any(|l| l == want), "missing line {want:?} in\n{s}");
    }
    assert_eq!(text::headline(&reports()[1].1), "PASS: 1 edge (1 flow) mTLS");
    assert_eq!(
        text::headline(&reports()[2].1),
        "COULD NOT VERIFY: no pod-to-pod or pod-to-service traffic with payload was captured (at least 1 expected); the capture holds no TCP flows at all"
    );
}

#[test]
fn json_check_section() {
    let r = scenario();
    let v = serde_json::to_value(check_dto(&r)).unwrap();
    assert_eq!(v["schema"], "mtlscope-check/v1");
    assert_eq!(v["outcome"], "fail");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["level"], "mtls");
    assert_eq!(v["edges"][0]["edge"], "emojivoto/web -> emojivoto/emoji:8080");
    assert_eq!(v["edges"][0]["status"], "violation");
    assert_eq!(
        v["edges"][0]["client"],
        serde_json::json!({"kind": "Deployment", "namespace": "emojivoto", "name": "web"})
    );
    assert_eq!(v["edges"][0]["reasons"][0]["code"], "server-not-meshed");
    assert_eq!(v["edges"][0]["example"]["verdict"], "plaintext");
    assert!(v["edges"][0]["suggested_allow"]
        .as_str()
        .unwrap()
        .starts_with("- name: web-to-emoji-8080\n"));
    assert_eq!(v["edges"][3]["allowed_by"][0]["rule"], "legacy-redis");
    assert!(v["edges"][4]["suggested_allow"].is_null());
    assert_eq!(v["expired_rules"][0]["name"], "old-exception");
    assert_eq!(v["baseline_fixed"][0]["seen"], true);
    assert_eq!(v["counts"]["judged"], 5);
    assert_eq!(v["counts"]["known"], 1);
    let mut buf = Vec::new();
    mtlscope::check::write_section(&mut buf, &r).unwrap();
    let back: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(back, v);
}

// ---- JUnit against the XSD ----------------------------------------------------------------

#[test]
fn the_xsd_validator_catches_mistakes() {
    let bad = r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0" time="1.5s"><testcase classname="c"><failure>boom</failure><bogus/></testcase></testsuite></testsuites>"#;
    let errors = junit_errors(bad);
    assert!(errors.iter().any(|e| e.contains("time")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("required attribute name missing")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("child bogus not allowed")), "{errors:?}");
}

#[test]
fn junit_is_valid_and_says_what_failed() {
    for (name, r) in reports() {
        let xml = junit::render(&r);
        let errors = junit_errors(&xml);
        assert!(errors.is_empty(), "{name}: {errors:?}\n{xml}");
    }
    let r = scenario();
    let xml = junit::render(&r);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    // 5 edges, 1 expired rule, 1 fixed baseline entry, 1 capture check.
    assert_eq!(cases.len(), 8);
    assert_eq!(suite.attribute("tests"), Some("8"));
    assert_eq!(suite.attribute("failures"), Some("3"));
    assert_eq!(suite.attribute("errors"), Some("0"));
    assert_eq!(suite.attribute("skipped"), Some("2"));
    let web = cases[0];
    assert_eq!(web.attribute("name"), Some("emojivoto/web -> emojivoto/emoji:8080"));
    assert_eq!(web.attribute("classname"), Some("mtlscope.pod-to-pod"));
    let failure = web.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("type"), Some("plaintext"));
    let body = failure.text().unwrap();
    // Markup and quotes survive escaping; the control character is dropped.
    assert!(body.contains("evidence: GET /api/vote?choice=<b>%F0%9F\"&x='1' HTTP/1.1 in the clear\n(Host: web:80)"), "{body}");
    assert!(body.contains("reason: the server has no linkerd-proxy (server-not-meshed)"));
    let expired =
        cases.iter().find(|c| c.attribute("classname") == Some("mtlscope.policy")).unwrap();
    let f = expired.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(f.attribute("message").unwrap().contains("temporary, <until> the 'migration' & more"));
    let cnv = junit::render(&reports()[2].1);
    assert!(cnv.contains("<error type=\"could-not-verify\""), "{cnv}");
}

// ---- SARIF against the OASIS schema -------------------------------------------------------

#[test]
fn sarif_is_valid_sarif_2_1_0() {
    let validator = sarif_validator();
    for (name, r) in reports() {
        let log = sarif::sarif(&r);
        let errors: Vec<String> =
            validator.iter_errors(&log).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        // The schema is not a rubber stamp: a wrong version fails it.
        let mut broken = log.clone();
        broken["version"] = "2.0.0".into();
        assert!(!validator.is_valid(&broken));
    }
    let log = sarif::sarif(&scenario());
    let results = log["runs"][0]["results"].as_array().unwrap();
    let ids: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["ruleId"].as_str().unwrap(), r["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("MTLS001", "error"),
            ("MTLS001", "error"),
            ("MTLS001", "note"),
            ("MTLS001", "note"),
            ("MTLS003", "error")
        ]
    );
    assert_eq!(results[0]["baselineState"], "new");
    assert_eq!(results[2]["baselineState"], "unchanged");
    assert_eq!(results[3]["suppressions"][0]["kind"], "external");
    assert_eq!(results[3]["suppressions"][0]["state"], "accepted");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "capture.pcap"
    );
    assert_eq!(
        results[0]["partialFingerprints"]["mtlscopeEdge/v1"],
        "emojivoto/web -> emojivoto/emoji:8080"
    );
    assert_eq!(
        results[4]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "ci/mtlscope-policy.yaml"
    );
    assert_eq!(log["runs"][0]["invocations"][0]["exitCode"], 1);
}

// ---- GitHub Actions annotations -------------------------------------------------------------

#[test]
fn github_escaping() {
    assert_eq!(github::escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
    assert_eq!(github::escape_property("a:b,c%d\ne"), "a%3Ab%2Cc%25d%0Ae");
    assert_eq!(
        github::command(
            "error",
            &[("file", "ci/policy,v2.yaml"), ("title", "mtlscope: x")],
            "fd00::1 -> fd00::2:80\n50%"
        ),
        "::error file=ci/policy%2Cv2.yaml,title=mtlscope%3A x::fd00::1 -> fd00::2:80%0A50%25"
    );
    assert_eq!(github::command("notice", &[], "hi"), "::notice::hi");
    assert!(github::github_actions_detected(Some("true")));
    assert!(!github::github_actions_detected(Some("false")));
    assert!(!github::github_actions_detected(None));
}

/// Splits a workflow command back into (command, properties, message), unescaped.
fn parse_command(line: &str) -> (String, Vec<(String, String)>, String) {
    let unescape = |s: &str| {
        s.replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%25", "%")
    };
    let rest = line.strip_prefix("::").unwrap();
    let (head, message) = rest.split_once("::").unwrap();
    let (cmd, props) = head.split_once(' ').unwrap_or((head, ""));
    let props = props
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), unescape(v))
        })
        .collect();
    (cmd.to_string(), props, unescape(message))
}

#[test]
fn github_annotations_for_a_report() {
    let r = scenario();
    let lines = github::annotations(&r);
    assert!(lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')), "{lines:?}");
    let parsed: Vec<_> = lines.iter().map(|l| parse_command(l)).collect();
    let kinds: Vec<&str> = parsed.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(kinds, ["error", "error", "error", "notice", "notice"]);
    let (_, props, msg) = &parsed[0];
    assert_eq!(props[0], ("title".to_string(), "mtlscope: plaintext edge not mtls".to_string()));
    assert!(
        msg.starts_with(
            "emojivoto/web -> emojivoto/emoji:8080 is plaintext: GET /api/vote?choice=<b>%F0%9F"
        ),
        "{msg}"
    );
    assert!(msg.contains("\nreason: the server has no linkerd-proxy"));
    let (_, props, msg) = &parsed[2];
    assert_eq!(props[0], ("file".to_string(), "ci/mtlscope-policy.yaml".to_string()));
    assert!(msg.starts_with("allow rule 'old-exception' expired on 2026-01-31"));
}
