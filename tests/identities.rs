//! Who is talking, end to end through the CLI: certificate identities, mesh and JA4/JA4S on
//! the fixture captures.
//!
//! Expected values are not mtlscope's own output pasted back: certificate fields come from
//! `openssl x509 -noout -fingerprint -sha256 -serial -in fixtures/pki/<leaf>.crt`, and every
//! JA4/JA4S from `scripts/ja4-from-tshark.py` (Wireshark's dissection, an independent
//! implementation that reproduces the JA4 project's own expected values on its captures).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name).display().to_string()
}

fn json_of(name: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .args(["analyze", "--format", "json", &fixture(name)])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The one TLS flow to `port`.
fn flow(doc: &Value, port: u64) -> &Value {
    let flows = doc["flows"].as_array().expect("flows");
    let mut it = flows.iter().filter(|f| f["server"]["port"] == port && f["tls"].is_object());
    let f = it.next().unwrap_or_else(|| panic!("no flow to port {port}"));
    assert!(it.next().is_none(), "several flows to port {port}");
    f
}

#[test]
fn tls12_mutual_names_both_ends_from_clear_certificates() {
    let doc = json_of("tls12_mutual_veth.pcap");
    let tls = &flow(&doc, 9443)["tls"];
    let client = &tls["client_identity"];
    let server = &tls["server_identity"];
    assert_eq!(client["identity"], "emoji.emojivoto");
    assert_eq!(server["identity"], "web.emojivoto");
    assert_eq!((&client["source"], &server["source"]), (&"clear".into(), &"clear".into()));
    // openssl x509 -fingerprint -sha256 -serial of pki/emoji.crt and pki/web.crt
    let c = &client["certificate"];
    assert_eq!(c["sha256"], "5892a53ad4879e2651045f4d1bc34988dfa1ef22f3a3dbdcdd7119f9e571f133");
    assert_eq!(c["serial"], "fb2700ed7c973d63");
    assert_eq!(c["subject"], "CN=emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    assert_eq!(c["issuer"], "CN=identity.linkerd.cluster.local");
    assert_eq!(
        c["sans"]["dns"][0],
        "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    );
    assert_eq!(c["spiffe_id"], Value::Null);
    assert_eq!(c["key"], "ec-p256");
    assert_eq!(c["chain_length"], 2);
    assert_eq!(c["not_before"], "2026-11-24T01:20:48Z");
    assert_eq!(c["flags"], serde_json::json!([]));
    let s = &server["certificate"];
    assert_eq!(s["sha256"], "a79d706d10846f618c2f7c5fafe171fd542c37a1b68eab8157ffb730cabfc3fb");
    assert_eq!(s["serial"], "116e9a61df280797");
    // Linkerd-shaped names over TLS 1.2: not Linkerd's proxies, and the output says why.
    assert_eq!(tls["mesh"], Value::Null);
    assert_eq!(tls["mesh_identity"], Value::Null);
    let signals = tls["mesh_signals"].to_string();
    assert!(signals.contains("speak only TLS 1.3"), "{signals}");
    assert_eq!(tls["ja4"], "t12d280700_d943125447b4_e7e480e5a997");
    assert_eq!(tls["ja4s"], "t120400_c02c_12a20535f9be");
}

#[test]
fn tls13_without_keys_reads_linkerd_identity_from_sni() {
    let doc = json_of("tls13_mutual_veth.pcap");
    let tls = &flow(&doc, 8443)["tls"];
    assert_eq!(tls["client_identity"], Value::Null);
    assert_eq!(tls["server_identity"]["identity"], "web.emojivoto");
    assert_eq!(tls["server_identity"]["source"], "sni");
    assert_eq!(tls["server_identity"]["certificate"], Value::Null);
    assert_eq!(tls["mesh"], "linkerd");
    assert_eq!(
        tls["mesh_identity"],
        serde_json::json!({"service_account": "web", "namespace": "emojivoto",
                           "trust_domain": "cluster.local", "source": "sni"})
    );
    assert_eq!(tls["ja4"], "t13d031000_cee661580557_78f1d400d464");
    assert_eq!(tls["ja4s"], "t130200_1301_a56c5b993250");
}

#[test]
fn table_shows_who_talks_to_whom() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .args(["analyze", "--color", "never", &fixture("tls12_mutual_veth.pcap")])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("IDENTITY"), "{text}");
    assert!(text.contains("emoji.emojivoto -> web.emojivoto"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .args(["analyze", "--color", "never", &fixture("tls12_server_auth_veth.pcap")])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("- -> web.emojivoto"), "{text}");
}

/// (capture, server port, JA4, JA4S), each from scripts/ja4-from-tshark.py on the capture.
const JA4_BY_TSHARK: &[(&str, u64, &str, &str)] = &[
    (
        "tls10_server_auth.pcap",
        9450,
        "t10d090600_c491f621fb4c_195413a0cc0f",
        "t100500_c00a_a9440a032a1a",
    ),
    (
        "tls12_null_cipher.pcap",
        9447,
        "t12d020500_69d68bc28b42_dd2006f5fa1e",
        "t120400_003b_44d9b4fea138",
    ),
    (
        "mixed_any_sll2.pcap",
        9444,
        "t12d2808h2_d943125447b4_a107e8d581b3",
        "t120300_c02c_460f64128655",
    ),
    (
        "tls13_aes256_mutual.pcap",
        8446,
        "t13d021000_9d5106e3f751_78f1d400d464",
        "t130200_1302_a56c5b993250",
    ),
    (
        "tls13_mutual_small_mtu.pcap",
        8448,
        "t13d861000_6cec2fb478ee_5ac7197df9d2",
        "t130200_1301_a56c5b993250",
    ),
    // After a HelloRetryRequest, JA4S is of the real ServerHello.
    (
        "tls13_hrr_mutual.pcap",
        8447,
        "t13d031000_cee661580557_78f1d400d464",
        "t130200_1301_a56c5b993250",
    ),
    (
        "postgres_sslrequest.pcap",
        5432,
        "t13d311000_e8f1e7e78f70_1f22a2ca17c4",
        "t130200_1302_a56c5b993250",
    ),
    ("ipv6_mutual.pcap", 8443, "t13d031000_cee661580557_78f1d400d464", "t130200_1301_a56c5b993250"),
];

#[test]
fn ja4_matches_an_independent_computation_from_tshark() {
    for (capture, port, ja4, ja4s) in JA4_BY_TSHARK {
        let doc = json_of(capture);
        let tls = &flow(&doc, *port)["tls"];
        assert_eq!(tls["ja4"], *ja4, "{capture}");
        assert_eq!(tls["ja4s"], *ja4s, "{capture}");
    }
}

#[test]
fn psk_resumption_has_its_own_ja4() {
    // The resumed hello adds pre_shared_key (0x0029): 11 extensions, and a JA4S with 3.
    let doc = json_of("tls13_psk_resumption.pcap");
    let fps: Vec<(String, String)> = doc["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| (f["tls"]["ja4"].to_string(), f["tls"]["ja4s"].to_string()))
        .collect();
    let want = [
        ("t13d031000_cee661580557_78f1d400d464", "t130200_1301_a56c5b993250"),
        ("t13d031100_cee661580557_6775ac8fe30b", "t130300_1301_0ee26285a86f"),
    ];
    for (ja4, ja4s) in want {
        assert!(
            fps.iter().any(|(a, b)| a.trim_matches('"') == ja4 && b.trim_matches('"') == ja4s),
            "{fps:?}"
        );
    }
}
