//! `analyze --inventory`, end to end through the command line: the real fixture captures
//! (10.77.0.1 client, 10.77.0.2 server) with the hand-written inventories of
//! fixtures/inventory/ that name those addresses as emojivoto pods (see fixtures/README.md).

use mtlscope::analyze::{analyze_stream, Analysis};
use mtlscope::engine::EngineConfig;
use mtlscope::inventory::resolve_flows::{build_inventory, enrich, InventoryInfo};
use mtlscope::link::{LinkLimits, Linker};
use mtlscope::report::json;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EMOJI_POD: &str = "emoji-5f7d8c6b9-xk2lp";
const WEB_POD: &str = "web-7c9d5b8f6-qz4mn";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name).display().to_string()
}

fn inventory(name: &str) -> String {
    fixture(&format!("inventory/{name}"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtlscope")).arg("analyze").args(args).output().unwrap()
}

/// `analyze --format json` of `captures` with `inv` (and any extra arguments).
fn analyze_json(inv: Option<&str>, captures: &[&str], extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec!["--format".into(), "json".into()];
    if let Some(inv) = inv {
        args.extend(["--inventory".into(), inventory(inv)]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(captures.iter().map(|c| fixture(c)));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&argv);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn table(args: &[&str]) -> String {
    let out = run(&[&["--color", "never"], args].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn flows(doc: &Value) -> &Vec<Value> {
    doc["flows"].as_array().expect("flows")
}

fn flow_to(doc: &Value, port: u64) -> Vec<&Value> {
    flows(doc).iter().filter(|f| f["server"]["port"] == port).collect()
}

fn codes(flow: &Value) -> Vec<&str> {
    flow["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect()
}

#[test]
fn flows_get_pod_names_scope_and_edges() {
    let doc = analyze_json(Some("emojivoto.json"), &["http1_veth.pcap"], &[]);
    for f in flows(&doc) {
        assert_eq!(f["scope"], "pod-to-pod");
        assert_eq!(f["hop"], "network");
        assert_eq!(f["client"]["ip"], "10.77.0.1");
        assert_eq!(
            f["client"]["workload"],
            json!({
                "namespace": "emojivoto", "pod": EMOJI_POD, "workload": "emoji",
                "kind": "Deployment", "service_account": "emoji", "node": "mtlscope-worker",
                "mesh": "linkerd", "basis": "time-matched"
            })
        );
        assert_eq!(f["server"]["workload"]["pod"], WEB_POD);
        assert_eq!(f["server"]["workload"]["service_account"], "web");
        // Both ends run linkerd-proxy and nothing skips 8080: the inventory cannot explain it.
        assert_eq!(codes(f), ["unknown"]);
        assert_eq!(f["identity_check"], Value::Null);
    }
    assert_eq!(
        doc["edges"],
        json!([{
            "client": {"kind": "Deployment", "namespace": "emojivoto", "name": "emoji"},
            "server": {"kind": "Deployment", "namespace": "emojivoto", "name": "web"},
            "port": 8080, "scope": "pod-to-pod", "flows": 2, "verdicts": {"plaintext": 2},
            "worst": "plaintext",
            "reasons": [{"code": "unknown", "message": "emoji and web both run linkerd-proxy and \
                port 8080 is not skipped: nothing in the inventory explains why emoji -> web:8080 \
                is plaintext"}],
            "identity_mismatches": 0
        }])
    );
    assert_eq!(
        doc["inventory"],
        json!({"sources": [inventory("emojivoto.json")], "pods": 2, "services": 1, "nodes": 1,
               "warnings": []})
    );
    let s = &doc["summary"];
    assert_eq!(
        (&s["scopes"], &s["pod_flows_not_mtls"], &s["identity_mismatches"]),
        (&json!({"pod-to-pod": 2}), &json!(2), &json!(0))
    );
}

#[test]
fn ipv6_pod_addresses_resolve_too() {
    let doc = analyze_json(Some("emojivoto.json"), &["ipv6_mutual.pcap"], &[]);
    for f in flows(&doc) {
        assert_eq!(f["client"]["workload"]["pod"], EMOJI_POD, "{f}");
        assert_eq!(f["server"]["workload"]["pod"], WEB_POD, "{f}");
        assert_eq!(f["scope"], "pod-to-pod");
    }
}

#[test]
fn plaintext_to_a_server_without_proxy_is_server_not_meshed() {
    let doc = analyze_json(
        Some("emojivoto-web-unmeshed.json"),
        &["http1_veth.pcap", "mixed_any_sll2.pcap"],
        &[],
    );
    let http = flow_to(&doc, 8080);
    assert_eq!(http.len(), 3);
    for f in http {
        assert_eq!(f["server"]["workload"]["mesh"], "none");
        assert_eq!(f["reasons"][0]["code"], "server-not-meshed");
        assert_eq!(
            f["reasons"][0]["message"],
            "web has no linkerd-proxy: emoji -> web:8080 is plaintext"
        );
    }
    // mTLS needs no reason; TLS 1.2 with Linkerd-shaped names is not Linkerd's: the app's own.
    assert_eq!(codes(flow_to(&doc, 8443)[0]), Vec::<&str>::new());
    assert_eq!(codes(flow_to(&doc, 9444)[0]), ["server-not-meshed", "app-tls-not-mesh"]);
    // The loopback health check never left a pod.
    let local = flow_to(&doc, 8081)[0];
    assert_eq!((&local["scope"], &local["reasons"]), (&json!("local"), &json!([])));
    // Flows of both captures add up into one edge per port, worst first.
    let edges = doc["edges"].as_array().unwrap();
    assert_eq!(edges[0]["port"], 8080);
    assert_eq!(edges[0]["flows"], 3);
    assert_eq!(edges[0]["reasons"][0]["code"], "server-not-meshed");
    assert_eq!(edges.last().unwrap()["scope"], "local");
    assert_eq!(doc["summary"]["pod_flows_not_mtls"], 4);
}

#[test]
fn plaintext_from_a_client_without_proxy_is_client_not_meshed() {
    // The YAML inventory: kubectl -o yaml.
    let doc = analyze_json(Some("emojivoto-emoji-unmeshed.yaml"), &["http1_veth.pcap"], &[]);
    for f in flows(&doc) {
        assert_eq!(f["client"]["workload"]["mesh"], "none");
        assert_eq!(codes(f), ["client-not-meshed"]);
        assert_eq!(
            f["reasons"][0]["message"],
            "emoji has no linkerd-proxy: web's proxy accepts its plaintext on port 8080 (no \
             policy requires mTLS)"
        );
    }
}

#[test]
fn the_apps_own_tls_between_meshed_pods_is_app_tls_not_mesh() {
    let doc = analyze_json(Some("emojivoto.json"), &["app_tls_in_mesh.pcap"], &[]);
    assert_eq!(flows(&doc).len(), 2);
    for f in flows(&doc) {
        assert_eq!(f["verdict"], "tls-server-auth");
        assert_eq!(codes(f), ["app-tls-not-mesh"]);
        // No mesh on the wire: nothing to cross-check.
        assert_eq!(f["identity_check"], Value::Null);
    }
}

#[test]
fn linkerd_identity_on_the_wire_matches_the_server_pod() {
    let doc = analyze_json(Some("emojivoto.json"), &["linkerd_transport.pcap"], &[]);
    let f = &flows(&doc)[0];
    assert_eq!((&f["verdict"], &f["reasons"]), (&json!("mtls"), &json!([])));
    assert_eq!(
        f["identity_check"],
        json!({
            "server": {"result": "match", "message": format!(
                "the wire identity web.emojivoto.serviceaccount.identity.linkerd.cluster.local \
                 (service account web in emojivoto) is pod emojivoto/{WEB_POD}'s")},
            "client": {"result": "not-applicable", "message": "the client's certificate was not \
                seen (TLS 1.3 encrypts it: a key log shows it)"}
        })
    );
    assert_eq!(doc["summary"]["identity_mismatches"], 0);
    // With the key log the client's certificate is read, and checked too.
    let keylog = fixture("linkerd_transport.keylog");
    let doc =
        analyze_json(Some("emojivoto.json"), &["linkerd_transport.pcap"], &["--keylog", &keylog]);
    let client = &flows(&doc)[0]["identity_check"]["client"];
    assert_eq!(client["result"], "match");
    assert!(client["message"].as_str().unwrap().contains(EMOJI_POD), "{client}");
}

#[test]
fn a_server_running_as_another_account_is_an_identity_mismatch() {
    let doc = analyze_json(Some("emojivoto-voting.json"), &["linkerd_transport.pcap"], &[]);
    let f = &flows(&doc)[0];
    assert_eq!(f["identity_check"]["server"]["result"], "mismatch");
    assert_eq!(
        f["identity_check"]["server"]["message"],
        "the wire identity web.emojivoto.serviceaccount.identity.linkerd.cluster.local (service \
         account web in emojivoto) is not pod emojivoto/voting-7c9d5b8f6-qz4mn's (service \
         account voting in emojivoto)"
    );
    let warnings = f["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().starts_with("IDENTITY MISMATCH: server side")),
        "{warnings:?}"
    );
    assert_eq!(doc["summary"]["identity_mismatches"], 1);
    assert_eq!(doc["edges"][0]["identity_mismatches"], 1);
    let text = table(&[
        "--inventory",
        &inventory("emojivoto-voting.json"),
        &fixture("linkerd_transport.pcap"),
    ]);
    assert!(
        text.contains("IDENTITY MISMATCH on emojivoto/emoji -> emojivoto/voting:4143"),
        "{text}"
    );
    assert!(text.contains("1 IDENTITY MISMATCH"), "{text}");
}

#[test]
fn resumed_flows_are_explained_by_the_verdict_they_inherit() {
    // Before linking the abbreviated handshakes are tls-unknown-auth, which would give
    // app-tls-not-mesh; enrichment runs after linking, so they are mtls with no reasons.
    let doc = analyze_json(Some("emojivoto.json"), &["tls12_resumption.pcap"], &[]);
    let resumed: Vec<&Value> = flows(&doc).iter().filter(|f| f["proof"] == "resumed").collect();
    assert_eq!(resumed.len(), 2);
    for f in resumed {
        assert_eq!((&f["verdict"], &f["reasons"]), (&json!("mtls"), &json!([])), "{f}");
    }
    for edge in doc["edges"].as_array().unwrap() {
        assert_eq!(edge["worst"], "mtls", "{edge}");
    }
    assert_eq!(doc["summary"]["pod_flows_not_mtls"], 0);
}

#[test]
fn the_proxy_to_app_hop_is_local() {
    let doc = analyze_json(Some("emojivoto.json"), &["local_hop_lo.pcap"], &[]);
    let f = &flows(&doc)[0];
    assert_eq!((&f["scope"], &f["hop"]), (&json!("local"), &json!("local")));
    assert_eq!(f["client"]["workload"]["pod"], WEB_POD);
    assert_eq!(f["server"]["workload"]["pod"], WEB_POD);
    assert_eq!(f["reasons"], json!([]));
    assert_eq!(doc["edges"][0]["scope"], "local");
    assert_eq!(doc["summary"]["pod_flows_not_mtls"], 0);
}

/// The flows minus what the inventory adds.
fn without_inventory_keys(mut doc: Value) -> Value {
    for f in doc["flows"].as_array_mut().unwrap() {
        let f = f.as_object_mut().unwrap();
        for k in ["scope", "reasons", "identity_check"] {
            f.remove(k);
        }
        for side in ["client", "server"] {
            f[side].as_object_mut().unwrap().remove("workload");
        }
    }
    doc["flows"].take()
}

#[test]
fn without_an_inventory_the_new_keys_are_null_and_the_rest_is_unchanged() {
    let captures = ["mixed_any_sll2.pcap", "linkerd_transport.pcap", "local_hop_lo.pcap"];
    let plain = analyze_json(None, &captures, &[]);
    for f in flows(&plain) {
        assert_eq!(f["client"]["workload"], Value::Null);
        assert_eq!(f["server"]["workload"], Value::Null);
        assert_eq!(f["scope"], f["hop"]);
        assert_eq!((&f["reasons"], &f["identity_check"]), (&Value::Null, &Value::Null));
    }
    assert_eq!((&plain["edges"], &plain["inventory"]), (&Value::Null, &Value::Null));
    let s = &plain["summary"];
    assert_eq!((&s["pod_flows_not_mtls"], &s["identity_mismatches"]), (&Value::Null, &Value::Null));
    assert_eq!(s["scopes"], json!({"network": 4, "local": 2}));
    // An inventory only adds: every other field of every flow is the same.
    let named = analyze_json(Some("emojivoto.json"), &captures, &[]);
    assert_eq!(without_inventory_keys(named), without_inventory_keys(plain));
    // And the table is today's flow table.
    let text = table(&[&fixture("http1_veth.pcap")]);
    assert!(text.starts_with("CLIENT "), "{text}");
    assert!(!text.contains("EDGES") && text.contains("10.77.0.1:"), "{text}");
}

#[test]
fn the_table_shows_edges_first_and_flows_on_request() {
    let inv = inventory("emojivoto-web-unmeshed.json");
    let captures = [fixture("linkerd_transport.pcap"), fixture("http1_veth.pcap")];
    let text = table(&["--inventory", &inv, &captures[0], &captures[1]]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "EDGES");
    assert!(lines[1].starts_with("CLIENT ") && lines[1].contains("REASONS"), "{text}");
    // Not-yet-mTLSed on top, with its reason code.
    assert!(lines[2].starts_with("emojivoto/emoji  emojivoto/web:8080  pod-to-pod"), "{text}");
    assert!(lines[2].contains("plaintext") && lines[2].ends_with("server-not-meshed"), "{text}");
    assert!(lines[3].contains("emojivoto/web:4143") && lines[3].contains("mtls"), "{text}");
    assert!(text.contains("WHY NOT MTLS\nemojivoto/emoji -> emojivoto/web:8080\n  server-not-meshed: web has no linkerd-proxy"), "{text}");
    assert!(text.contains("2 pod-to-pod/pod-to-service flows are not mTLS"), "{text}");
    assert!(!text.contains(EMOJI_POD), "flows are listed only with --flows:\n{text}");
    let text = table(&["--inventory", &inv, "--flows", &captures[0], &captures[1]]);
    assert!(text.contains("\nFLOWS\nCLIENT "), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("emojivoto/{EMOJI_POD}:")))
        .expect("a flow row named by pod");
    assert!(row.contains(&format!("emojivoto/{WEB_POD}:8080  pod-to-pod")), "{row}");
    assert!(row.contains("server-not-meshed"), "{row}");
}

#[test]
fn an_inventory_that_cannot_be_loaded_exits_two_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cluster.json");
    std::fs::write(&bad, "{\"kind\": \"List\", \"items\": [}").unwrap();
    let capture = fixture("http1_veth.pcap");
    let out = run(&["--inventory", bad.to_str().unwrap(), &capture]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("mtlscope: error: --inventory {}: not valid JSON", bad.display())),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = run(&["--inventory", "/nonexistent/cluster.yaml", &capture]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cluster.yaml: cannot read"), "{err}");
}

#[test]
fn loader_warnings_reach_stderr_and_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.yaml");
    std::fs::write(&extra, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").unwrap();
    let out = run(&[
        "--format",
        "json",
        "--inventory",
        &inventory("emojivoto.json"),
        "--inventory",
        extra.to_str().unwrap(),
        &fixture("http1_veth.pcap"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mtlscope: warning: --inventory ") && err.contains("ConfigMap (1)"),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["inventory"]["sources"].as_array().unwrap().len(), 2);
    assert!(doc["inventory"]["warnings"][0].as_str().unwrap().contains("ConfigMap (1)"));
}

/// The library path the CLI uses, with a linker: the streamed document and the whole one agree.
#[test]
fn streamed_json_with_an_inventory_equals_the_whole_document() {
    let files: Vec<PathBuf> = vec![inventory("emojivoto-voting.json").into()];
    let inv = build_inventory(&files, None).unwrap();
    let info = InventoryInfo::of(&inv, vec!["voting".into()]);
    let path = fixture("mixed_any_sll2.pcap");
    let mut whole = Analysis { inventory: Some(info.clone()), ..Analysis::default() };
    let mut out = Vec::new();
    let mut writer = json::StreamWriter::new(&mut out).unwrap().with_inventory(info);
    let mut linker = Linker::new(LinkLimits::default());
    let mut emit = |mut f| {
        enrich(&mut f, &inv);
        writer.flow(&f);
        whole.flows.push(f);
    };
    let file = std::fs::File::open(&path).unwrap();
    let cfg = EngineConfig::default();
    let report =
        analyze_stream(0, &path, file, &cfg, &mut |_, _| {}, &mut |f| linker.push(f, &mut emit));
    linker.finish(&mut emit);
    whole.inputs.push(report.clone());
    writer.finish(&[report]).unwrap();
    let streamed: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(streamed, serde_json::to_value(json::document(&whole)).unwrap());
    assert_eq!(streamed["edges"].as_array().map(Vec::len), Some(4));
}
