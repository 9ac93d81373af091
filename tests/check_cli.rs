//! `mtlscope check` through the real binary, on fixture captures and the kubectl-shaped
//! inventories of fixtures/inventory: the exit-code contract (0 pass, 1 violation, 2 could not
//! verify), the text report, policy, baseline, JUnit, SARIF, GitHub annotations, JSON, and a
//! closed stdout.

mod check_common;

use check_common::schemas::{junit_errors, sarif_validator};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mtlscope"));
    // The gate reads GITHUB_ACTIONS: the tests' own CI must not change what they see.
    c.env_remove("GITHUB_ACTIONS");
    c
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name).display().to_string()
}

fn inventory(name: &str) -> String {
    fixture(&format!("inventory/{name}"))
}

/// `mtlscope check CAPTURE --inventory INV ARGS...`
fn check(capture: &str, inv: Option<&str>, args: &[&str]) -> Output {
    let mut c = bin();
    c.args(["check", "--no-progress", &fixture(capture)]);
    if let Some(inv) = inv {
        c.args(["--inventory", &inventory(inv)]);
    }
    c.args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn first_line(o: &Output) -> String {
    stdout(o).lines().next().unwrap_or("").to_string()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The unmeshed web server: emoji -> web:8080 is plaintext.
const UNMESHED: (&str, &str) = ("http1_veth.pcap", "emojivoto-web-unmeshed.json");

#[test]
fn mtls_between_pods_passes() {
    for capture in ["linkerd_transport.pcap", "tls13_mutual_veth.pcap"] {
        let o = check(capture, Some("emojivoto.json"), &["--expect-traffic"]);
        assert_eq!(o.status.code(), Some(0), "{capture}: {}{}", stdout(&o), stderr(&o));
        assert!(first_line(&o).starts_with("PASS: 1 edge (1 flow) mTLS"), "{}", stdout(&o));
        assert!(stdout(&o).contains("emojivoto/emoji -> emojivoto/web:"), "{}", stdout(&o));
    }
}

#[test]
fn plaintext_to_an_unmeshed_server_fails_with_the_edge_reason_and_rule() {
    let o = check(UNMESHED.0, Some(UNMESHED.1), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(first_line(&o), "FAIL: 1 edge carries plaintext between pods");
    assert!(
        out.contains("VIOLATION  emojivoto/emoji -> emojivoto/web:8080  plaintext [pod-to-pod]"),
        "{out}"
    );
    assert!(out.contains("(server-not-meshed)"), "{out}");
    assert!(out.contains("GET /api/items HTTP/1.1 in the clear"), "{out}");
    assert!(out.contains("allow it (under `allow:` in the policy):"), "{out}");
    assert!(out.contains("    - name: emoji-to-web-8080\n"), "{out}");
    assert!(out.contains("        server: {namespace: emojivoto, workload: web}\n"), "{out}");
}

const ALLOW_WEB: &str = "\
version: 1
allow:
  - name: web-unmeshed
    why: web gets its proxy in the next sprint (EMOJI-42)
    expires: 2026-09-30
    match:
      server: {namespace: emojivoto, workload: web}
      port: 8080
      verdict: plaintext
";

#[test]
fn an_allow_rule_silences_the_edge_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, ALLOW_WEB).unwrap();
    let p = path_str(&policy);
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--policy", p, "--today", "2026-09-30"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(first_line(&o).starts_with("PASS: "), "{}", stdout(&o));
    assert!(stdout(&o).contains("by 'web-unmeshed'"), "{}", stdout(&o));
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--policy", p, "--today", "2026-10-01"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let line = first_line(&o);
    assert!(line.starts_with("FAIL: "), "{line}");
    assert!(line.contains("allow rule 'web-unmeshed' expired on 2026-09-30"), "{line}");
}

#[test]
fn a_baseline_accepts_known_violations_and_fails_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let b = path_str(&baseline);
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--write-baseline", b]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(written["schema"], "mtlscope-baseline/v1");
    assert_eq!(written["edges"][0]["edge"], "emojivoto/emoji -> emojivoto/web:8080");
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--baseline", b]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("KNOWN  emojivoto/emoji -> emojivoto/web:8080"), "{}", stdout(&o));
    // Another edge (tls-server-auth on :8444) is new: it fails; the recorded one is fixed.
    let o = check("tls13_server_auth_veth.pcap", Some("emojivoto.json"), &["--baseline", b]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("VIOLATION  emojivoto/emoji -> emojivoto/web:8444"), "{out}");
    assert!(out.contains("FIXED  emojivoto/emoji -> emojivoto/web:8080"), "{out}");
}

#[test]
fn require_tls_passes_server_auth_tls() {
    let capture = "tls13_server_auth_veth.pcap";
    let o = check(capture, Some("emojivoto.json"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("(mesh-tls-without-client-cert)"), "{}", stdout(&o));
    let o = check(capture, Some("emojivoto.json"), &["--require", "tls"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(first_line(&o), "PASS: 1 edge (1 flow) encrypted");
}

#[test]
fn an_identity_mismatch_fails_the_gate() {
    let o = check("linkerd_transport.pcap", Some("emojivoto-voting.json"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        first_line(&o),
        "FAIL: 1 edge carries a mesh identity that does not match the pod (IDENTITY MISMATCH)"
    );
    let out = stdout(&o);
    assert!(out.contains("VIOLATION  emojivoto/emoji -> emojivoto/voting:4143  mtls"), "{out}");
    assert!(
        out.contains("identity: IDENTITY MISMATCH: server side: the wire identity web.emojivoto"),
        "{out}"
    );
    // Not excused by --require tls either.
    let o = check("linkerd_transport.pcap", Some("emojivoto-voting.json"), &["--require", "tls"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn an_empty_capture_with_expect_traffic_could_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    // A classic pcap global header (LE, v2.4, snaplen 65535, Ethernet) and no packets.
    let mut header = Vec::new();
    for (v, n) in [(0xa1b2_c3d4_u32, 4), (2, 2), (4, 2), (0, 4), (0, 4), (65535, 4), (1, 4)] {
        header.extend_from_slice(&v.to_le_bytes()[..n]);
    }
    std::fs::write(&empty, &header).unwrap();
    let e = path_str(&empty);
    let inv = inventory("emojivoto.json");
    let run = |extra: &[&str]| {
        let mut args = vec!["check", e, "--inventory", &inv];
        args.extend_from_slice(extra);
        bin().args(&args).output().unwrap()
    };
    let o = run(&["--expect-traffic"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let line = first_line(&o);
    assert!(line.starts_with("COULD NOT VERIFY: no pod-to-pod"), "{line}");
    assert!(line.contains("the capture holds no TCP flows at all"), "{line}");
    // Without --expect-traffic nothing is judged, and it says so.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(first_line(&o).contains("--expect-traffic makes this a failure"), "{}", stdout(&o));
    // --min-flows counts judged flows with payload: one mtls flow is not two.
    let o = check("tls13_mutual_veth.pcap", Some("emojivoto.json"), &["--min-flows", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(first_line(&o).contains("only 1 judged flows carried payload"), "{}", stdout(&o));
}

#[test]
fn unreadable_captures_could_not_verify_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "GET / HTTP/1.1\r\n\r\n").unwrap();
    for path in [path_str(&notes), "/nonexistent/x.pcap"] {
        let o = bin().args(["check", path, "--inventory", &inventory("emojivoto.json")]).output();
        let o = o.unwrap();
        assert_eq!(o.status.code(), Some(2), "{path}");
        let line = first_line(&o);
        assert!(line.starts_with(&format!("COULD NOT VERIFY: capture {path} could not")), "{line}");
        assert!(stderr(&o).contains(&format!("mtlscope: error: {path}: ")), "{}", stderr(&o));
    }
    // A violation seen in a readable capture still wins: exit 1, the unreadable one reported.
    let o = bin()
        .args(["check", "/nonexistent/x.pcap", &fixture(UNMESHED.0)])
        .args(["--inventory", &inventory(UNMESHED.1)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("COULD NOT VERIFY  capture /nonexistent/x.pcap"), "{}", stdout(&o));
}

#[test]
fn invalid_setup_exits_two_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("policy.yaml");
    std::fs::write(&bad, ALLOW_WEB.replace("2026-09-30", "2026-13-01")).unwrap();
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--policy", path_str(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "mtlscope: error: invalid policy: {}:5:14: allow[0].expires: invalid date",
            bad.display()
        )),
        "{err}"
    );
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--policy", "/nonexistent/policy.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/policy.yaml"), "{}", stderr(&o));
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, "{\"schema\": \"mtlscope-baseline/v0\"}").unwrap();
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--baseline", path_str(&baseline)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with("mtlscope: error: invalid baseline: "), "{err}");
    assert!(err.contains("baseline.json"), "{err}");
    let o = check(UNMESHED.0, Some("../../Cargo.toml"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--inventory"), "{}", stderr(&o));
    let o = check(UNMESHED.0, None, &["--keylog", "/nonexistent/keys.txt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--keylog /nonexistent/keys.txt"), "{}", stderr(&o));
    // Bad usage is exit 2 too; analyze's table format is not check's.
    assert_eq!(check(UNMESHED.0, None, &["--format", "table"]).status.code(), Some(2));
    assert_eq!(check(UNMESHED.0, None, &["--flows"]).status.code(), Some(2));
}

#[test]
fn junit_and_sarif_files_are_valid_and_name_the_violation() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, sarif) = (dir.path().join("mtls.xml"), dir.path().join("mtls.sarif"));
    let o = check(
        UNMESHED.0,
        Some(UNMESHED.1),
        &["--junit", path_str(&junit), "--sarif", path_str(&sarif)],
    );
    assert_eq!(o.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(junit_errors(&xml), Vec::<String>::new(), "{xml}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    let case = failure.parent().unwrap();
    assert_eq!(case.attribute("name"), Some("emojivoto/emoji -> emojivoto/web:8080"));
    assert_eq!(case.attribute("classname"), Some("mtlscope.pod-to-pod"));
    assert_eq!(failure.attribute("type"), Some("plaintext"));
    assert!(failure.text().unwrap().contains("server-not-meshed"));
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let validator = sarif_validator();
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "MTLS001");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["partialFingerprints"]["mtlscopeEdge/v1"],
        "emojivoto/emoji -> emojivoto/web:8080"
    );
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        fixture(UNMESHED.0)
    );
    assert_eq!(log["runs"][0]["invocations"][0]["exitCode"], 1);
    // An identity mismatch has its own SARIF rule and JUnit failure type.
    let o = check(
        "linkerd_transport.pcap",
        Some("emojivoto-voting.json"),
        &["--junit", path_str(&junit), "--sarif", path_str(&sarif)],
    );
    assert_eq!(o.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(junit_errors(&xml), Vec::<String>::new(), "{xml}");
    assert!(xml.contains("<failure type=\"identity-mismatch\""), "{xml}");
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert!(validator.is_valid(&log));
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "MTLS005");
}

#[test]
fn an_unwritable_report_file_could_not_verify() {
    let junit = ["--junit", "/nonexistent/dir/mtls.xml"];
    let o = check("tls13_mutual_veth.pcap", Some("emojivoto.json"), &junit);
    assert_eq!(o.status.code(), Some(2), "a pass that cannot be reported");
    let err = stderr(&o);
    assert!(err.starts_with("mtlscope: error: writing /nonexistent/dir/mtls.xml: "), "{err}");
    // A proven violation still wins.
    let o = check(UNMESHED.0, Some(UNMESHED.1), &junit);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/dir/mtls.xml"), "{}", stderr(&o));
}

#[test]
fn github_annotations_when_github_actions_is_true() {
    let run = |env: Option<&str>, extra: &[&str]| {
        let mut c = bin();
        if let Some(v) = env {
            c.env("GITHUB_ACTIONS", v);
        }
        c.args(["check", &fixture(UNMESHED.0), "--inventory", &inventory(UNMESHED.1)]);
        c.args(extra).output().unwrap()
    };
    let o = run(Some("true"), &[]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<String> =
        stdout(&o).lines().filter(|l| l.starts_with("::")).map(String::from).collect();
    assert_eq!(lines.len(), 1, "{}", stdout(&o));
    assert!(
        lines[0].starts_with(
            "::error title=mtlscope%3A plaintext edge not mtls::emojivoto/emoji -> emojivoto/web:8080 is plaintext: "
        ),
        "{}",
        lines[0]
    );
    assert!(first_line(&o).starts_with("FAIL: "), "the verdict stays first");
    let o = run(None, &[]);
    assert!(!stdout(&o).contains("::error"), "{}", stdout(&o));
    let o = run(Some("true"), &["--github-annotations", "never"]);
    assert!(!stdout(&o).contains("::error"));
    // With --format json stdout stays one JSON document; the annotations go to stderr.
    let o = run(Some("true"), &["--format", "json"]);
    serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("one JSON document");
    assert!(stderr(&o).lines().any(|l| l.starts_with("::error title=")), "{}", stderr(&o));
}

#[test]
fn json_is_the_analyze_document_plus_a_check_section() {
    let o = check(UNMESHED.0, Some(UNMESHED.1), &["--format", "json", "--today", "2026-06-01"]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let analyze = bin()
        .args(["analyze", "--format", "json", &fixture(UNMESHED.0)])
        .args(["--inventory", &inventory(UNMESHED.1)])
        .output()
        .unwrap();
    let want: serde_json::Value = serde_json::from_slice(&analyze.stdout).unwrap();
    let mut got = doc.clone();
    let check = got.as_object_mut().unwrap().remove("check").unwrap();
    assert_eq!(got, want, "the analyze document, unchanged");
    // `check` closes the document, after the analyze members.
    let raw = stdout(&o);
    assert!(raw.starts_with("{\"schema\":\"mtlscope/v1\",\"flows\":["), "{raw}");
    let (summary, section) = (raw.find(",\"summary\":").unwrap(), raw.find(",\"check\":").unwrap());
    assert!(summary < section && raw.ends_with("}}\n"), "{raw}");
    assert_eq!(check["schema"], "mtlscope-check/v1");
    assert_eq!(check["outcome"], "fail");
    assert_eq!(check["exit_code"], 1);
    assert_eq!(check["today"], "2026-06-01");
    assert_eq!(check["headline"], "FAIL: 1 edge carries plaintext between pods");
    assert_eq!(check["edges"][0]["edge"], "emojivoto/emoji -> emojivoto/web:8080");
    assert_eq!(check["edges"][0]["reasons"][0]["code"], "server-not-meshed");
    assert_eq!(check["counts"]["flows"], 2);
}

#[test]
fn the_shared_reading_path_honours_keylog_and_engine_flags() {
    let keys = fixture("tls13_server_auth_veth.keylog");
    let o = check(
        "tls13_server_auth_veth.pcap",
        Some("emojivoto.json"),
        &["--format", "json", "--keylog", &keys, "--idle-timeout", "30s"],
    );
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["flows"][0]["proof"], "decrypted", "{}", doc["flows"][0]);
    assert_eq!(doc["check"]["edges"][0]["example"]["proof"], "decrypted");
}

/// A reader that goes away: stdout is closed before mtlscope writes. The exit code is still
/// the verdict's, and nothing panics.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let cases: [(&str, &str, &[&str], i32); 3] = [
        (UNMESHED.0, UNMESHED.1, &[], 1),
        (UNMESHED.0, UNMESHED.1, &["--format", "json"], 1),
        ("tls13_mutual_veth.pcap", "emojivoto.json", &["--format", "json"], 0),
    ];
    for (capture, inv, extra, code) in cases {
        let mut child = bin()
            .args(["check", &fixture(capture), "--inventory", &inventory(inv)])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{capture} {extra:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
    }
}

#[test]
fn help_shows_examples_exit_codes_and_no_analyze_output_flags() {
    let o = bin().args(["check", "--help"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    for want in [
        "Examples:",
        "mtlscope check capture.pcap --inventory cluster.json",
        "Exit codes:",
        "1  at least one violation",
        "2  could not verify",
        "-o, --format <FORMAT>",
        "text: The verdict first",
        "--inventory <FILE>",
        "--keylog <FILE>",
        "--all-namespaces",
        "--today <YYYY-MM-DD>",
    ] {
        assert!(help.contains(want), "{want} missing:\n{help}");
    }
    assert!(!help.contains("--color") && !help.contains("[possible values: table"), "{help}");
    assert!(!help.contains("--flows "), "{help}");
    let top = stdout(&bin().arg("--help").output().unwrap());
    assert!(top.contains("check      Fail a CI build when traffic between pods is not mutual TLS"));
}
