//! Every fixture capture (made by real software through fixtures/make-fixtures.sh) gives the
//! verdicts, evidence and handshake details that fixtures/expected.json says it must.

use mtlscope::analyze::{analyze_reader, Analysis};
use mtlscope::engine::EngineConfig;
use mtlscope::report::json;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn analyze_file(path: &Path) -> Value {
    let mut analysis = Analysis::default();
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    analyze_reader(
        &mut analysis,
        &path.display().to_string(),
        file,
        &EngineConfig::default(),
        &mut |_, _| {},
    );
    serde_json::to_value(json::document(&analysis)).expect("document serializes")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("expected.json"))
        .expect("fixtures/expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

/// The JSON path in a flow for each expectation key.
fn actual<'a>(flow: &'a Value, key: &str) -> Option<&'a Value> {
    match key {
        "protocol" | "verdict" | "proof" | "hop" => flow.get(key),
        "tls_version" => flow.pointer("/tls/version"),
        "client_certificate" => flow.pointer("/tls/client_certificate"),
        "sni" => flow.pointer("/tls/sni"),
        "alpn" => flow.pointer("/tls/alpn"),
        "alpn_offered" => flow.pointer("/tls/alpn_offered"),
        "resumption" => flow.pointer("/tls/resumption"),
        "hello_retry" => flow.pointer("/tls/hello_retry"),
        "http_upgrade" => flow.pointer("/http/upgrade"),
        "encapsulation" => flow.pointer("/tunnel/type"),
        "vni" => flow.pointer("/tunnel/vni"),
        "cipher" => flow.pointer("/tls/cipher"),
        "resumed" => flow.pointer("/tls/resumed"),
        "resumed_by" => flow.pointer("/tls/resumed_from/by"),
        "client_identity" => flow.pointer("/tls/client_identity/identity"),
        "server_identity" => flow.pointer("/tls/server_identity/identity"),
        "client_cert_flags" => flow.pointer("/tls/client_identity/certificate/flags"),
        "server_cert_flags" => flow.pointer("/tls/server_identity/certificate/flags"),
        "mesh" => flow.pointer("/tls/mesh"),
        "http_method" => flow.pointer("/http/method"),
        "http_path" => flow.pointer("/http/path"),
        "grpc" => flow.pointer("/http/grpc"),
        "interface" => flow.get("interface"),
        "vlan" => flow.get("vlan"),
        "client_inferred" => flow.get("client_inferred"),
        "upgrade_from" => flow.pointer("/upgrade/from"),
        _ => panic!("expected.json uses the key {key:?}, which this test does not map to the JSON"),
    }
}

const META_KEYS: &[&str] = &["client_ip", "server", "count", "note", "evidence_contains", "client"];

fn server_of(flow: &Value) -> String {
    let ip = flow["server"]["ip"].as_str().unwrap_or_default();
    let port = flow["server"]["port"].as_u64().unwrap_or_default();
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Field mismatches between one expectation and one flow (a null expectation also accepts an
/// absent field: e.g. no `http` object on a TLS flow).
fn mismatches(want: &Value, flow: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in want.as_object().into_iter().flatten() {
        if META_KEYS.contains(&key.as_str()) {
            continue;
        }
        let got = actual(flow, key);
        // expected.json lists VLAN tags outer first; the JSON reports the innermost one.
        let value = match (key.as_str(), value) {
            ("vlan", Value::Array(tags)) => tags.last().unwrap_or(&Value::Null),
            _ => value,
        };
        let ok = got == Some(value) || (value.is_null() && got.is_none());
        if !ok {
            out.push(format!(
                "{key} = {} (want {value})",
                got.map_or("<absent>".to_string(), Value::to_string)
            ));
        }
    }
    if let Some(needle) = want.get("evidence_contains").and_then(Value::as_str) {
        if !flow["evidence"].as_str().unwrap_or_default().contains(needle) {
            out.push(format!("evidence lacks {needle:?}"));
        }
    }
    if flow["evidence"].as_str().unwrap_or_default().is_empty() {
        out.push("no evidence".to_string());
    }
    out.extend(evidence_mismatch(flow));
    if let Some(path) = want.get("http_path").and_then(Value::as_str) {
        if !flow["evidence"].as_str().unwrap_or_default().contains(path) {
            out.push(format!("evidence does not show the request path {path}"));
        }
    }
    out
}

/// Each verdict must rest on its own kind of evidence: the sentence names what was seen.
fn evidence_mismatch(flow: &Value) -> Option<String> {
    let evidence = flow["evidence"].as_str().unwrap_or_default();
    let verdict = flow["verdict"].as_str().unwrap_or_default();
    let needles: &[&str] = match (verdict, flow["proof"].as_str(), flow["protocol"].as_str()) {
        ("mtls", Some("observed"), _) => &["client sent Certificate ("],
        ("mtls", Some("inferred"), _) => &["Finished alone is"],
        ("mtls", Some("resumed"), _) => &["resumes the session that flow"],
        ("mtls", Some("decrypted"), _) => &["decrypted with the key log"],
        ("mtls", _, _) => return Some("mtls without a proof".into()),
        ("tls-server-auth", _, _) => &["CertificateRequest", "Finished only", "empty Certificate"],
        ("tls-unknown-auth", _, _) => &["mid-stream", "resumption", "capture", "only the"],
        ("handshake-failed", _, _) => &["alert", "closed"],
        ("no-encryption", _, _) => &["NULL"],
        ("plaintext", _, Some("http1")) => &["HTTP/1.1 in the clear", "HTTP/1.0 in the clear"],
        ("plaintext", _, Some("h2c")) => &["HTTP/2 prior-knowledge", "Upgrade: h2c"],
        ("plaintext", _, _) => &["in the clear"],
        _ => &[""],
    };
    (!needles.iter().any(|n| evidence.contains(n)))
        .then(|| format!("{verdict} evidence {evidence:?} names none of {needles:?}"))
}

fn check_capture(name: &str, spec: &Value) -> Vec<String> {
    let doc = analyze_file(&fixtures_dir().join(name));
    let flows = doc["flows"].as_array().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let mut taken = vec![false; flows.len()];
    // Each expectation claims `count` flows to its server that match every field; flows to the
    // same server are assigned to the first expectation they fully satisfy.
    for want in spec["flows"].as_array().into_iter().flatten() {
        let server = want["server"].as_str().unwrap_or_default();
        let candidates: Vec<usize> = (0..flows.len())
            .filter(|&i| !taken[i] && server_of(&flows[i]) == server)
            .filter(|&i| {
                want.get("client_ip")
                    .and_then(Value::as_str)
                    .is_none_or(|c| flows[i]["client"]["ip"] == c)
            })
            .collect();
        let count = want.get("count").and_then(Value::as_u64).unwrap_or(1) as usize;
        let mut claimed = 0;
        for &i in &candidates {
            if claimed < count && mismatches(want, &flows[i]).is_empty() {
                taken[i] = true;
                claimed += 1;
            }
        }
        if claimed < count {
            let detail: Vec<String> = candidates
                .iter()
                .filter(|&&i| !taken[i])
                .map(|&i| {
                    format!(
                        "  flow from port {}: {} [{}]",
                        flows[i]["client"]["port"],
                        mismatches(want, &flows[i]).join("; "),
                        flows[i]["evidence"]
                    )
                })
                .collect();
            errors.push(format!(
                "{name}: {count} flow(s) to {server} like {want} expected, {claimed} found\n{}",
                detail.join("\n")
            ));
        }
    }
    for (i, flow) in flows.iter().enumerate() {
        if !taken[i] && flow["verdict"] != "no-payload" {
            errors.push(format!(
                "{name}: unexpected flow {}:{} -> {} ({} {}: {})",
                flow["client"]["ip"],
                flow["client"]["port"],
                server_of(flow),
                flow["protocol"],
                flow["verdict"],
                flow["evidence"]
            ));
        }
    }
    errors
}

#[test]
fn every_fixture_capture_gives_its_expected_verdicts() {
    let expected = expected();
    let captures = expected["captures"].as_object().expect("captures object");
    assert!(captures.len() >= 10, "the fixture set is too small: {}", captures.len());
    let mut errors = Vec::new();
    for (name, spec) in captures {
        errors.extend(check_capture(name, spec));
    }
    assert!(errors.is_empty(), "{} mismatches:\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn every_fixture_file_is_described() {
    let expected = expected();
    let captures = expected["captures"].as_object().expect("captures object");
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let name = entry.expect("entry").file_name().to_string_lossy().to_string();
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            assert!(captures.contains_key(&name), "{name} is not described in expected.json");
        }
    }
}

#[test]
fn streamed_json_equals_the_whole_document() {
    let path = fixtures_dir().join("mixed_any_sll2.pcap");
    let whole = analyze_file(&path);
    let mut out = Vec::new();
    let mut writer = json::StreamWriter::new(&mut out).expect("header");
    let report = mtlscope::analyze::analyze_stream(
        0,
        &path.display().to_string(),
        std::fs::File::open(&path).expect("fixture"),
        &EngineConfig::default(),
        &mut |_, _| {},
        &mut |f| writer.flow(&f),
    );
    writer.finish(&[report]).expect("written");
    let streamed: Value =
        serde_json::from_slice(&out).expect("streamed output is one JSON document");
    assert_eq!(streamed, whole);
    assert_eq!(streamed["flows"].as_array().map(Vec::len), Some(4));
}
