//! Key-log decryption of TLS 1.3 handshakes on the real fixtures: every key-logged TLS 1.3 flow
//! decrypts, the decryption agrees with the size inference, verdicts become proof `decrypted`,
//! pcapng Decryption Secrets Blocks work mid-stream, and a wrong key falls back safely.

use mtlscope::analyze::{analyze_reader, Analysis};
use mtlscope::classify::Classification;
use mtlscope::engine::EngineConfig;
use mtlscope::keylog::KeyLog;
use mtlscope::report::json;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn keylog_of(text: &[u8]) -> Arc<KeyLog> {
    let log = Arc::new(KeyLog::new());
    log.add(text);
    log
}

fn analyze_bytes(name: &str, bytes: &[u8], keylog: Option<Arc<KeyLog>>) -> Analysis {
    let mut analysis = Analysis::default();
    let cfg = EngineConfig { keylog, ..Default::default() };
    analyze_reader(&mut analysis, name, bytes, &cfg, &mut |_, _| {});
    analysis
}

fn doc(a: &Analysis) -> Value {
    serde_json::to_value(json::document(a)).expect("document serializes")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (capture, key log) pairs of the fixture set.
fn keylogged_captures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let name = entry.expect("entry").file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".keylog") else { continue };
        for ext in ["pcap", "pcapng"] {
            let capture = format!("{stem}.{ext}");
            if fixtures_dir().join(&capture).exists() {
                out.push((capture, name.clone()));
            }
        }
    }
    out.sort();
    out
}

fn server_of(flow: &Value) -> String {
    let ip = flow["server"]["ip"].as_str().unwrap_or_default();
    let port = flow["server"]["port"].as_u64().unwrap_or_default();
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[test]
fn every_keylogged_tls13_fixture_flow_decrypts_and_agrees_with_the_size_inference() {
    let captures = keylogged_captures();
    assert!(captures.len() >= 15, "too few key-logged fixtures: {captures:?}");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("expected.json")).unwrap(),
    )
    .unwrap();
    let mut errors = Vec::new();
    let mut decrypted = 0;
    for (capture, keylog) in &captures {
        let d = doc(&analyze_bytes(capture, &read(capture), Some(keylog_of(&read(keylog)))));
        for flow in d["flows"].as_array().into_iter().flatten() {
            let tls = &flow["tls"];
            let at = format!("{capture} -> {}", server_of(flow));
            if tls["version"] != "1.3" {
                if !tls["decrypted"].is_null() {
                    errors.push(format!("{at}: not TLS 1.3 but has a decrypted object"));
                }
                continue;
            }
            let dec = &tls["decrypted"];
            if dec["client_finished"] != true
                || dec["server_finished"] != true
                || !dec["error"].is_null()
            {
                errors.push(format!("{at}: did not decrypt: {dec}"));
                continue;
            }
            decrypted += 1;
            // The size inference ran on the same flight: it must read what decryption shows.
            let shown = match dec["client_certificates"]["count"].as_u64() {
                Some(0) => "empty",
                Some(_) => "sent",
                None => "not-requested",
            };
            if dec["size_inference"] != shown {
                errors.push(format!(
                    "{at}: size inference {} but decryption {shown}",
                    dec["size_inference"]
                ));
            }
            let warned = flow["warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|w| w.as_str().is_some_and(|w| w.contains("size inference said")));
            if warned {
                errors.push(format!("{at}: disagreement warning {}", flow["warnings"]));
            }
            if tls["resumption"] == "psk" {
                // No certificates in a PSK handshake: the decrypted ticket of the original
                // (mutual) handshake links it, and it inherits that verdict.
                let linked = flow["verdict"] == "mtls"
                    && flow["proof"] == "resumed"
                    && tls["resumed_from"]["by"] == "ticket"
                    && tls["resumed_from"]["proof"] == "decrypted";
                if !linked || !dec["client_certificates"].is_null() {
                    errors.push(format!("{at}: PSK resumption judged {} {}", flow["verdict"], tls));
                }
                continue;
            }
            // Verdicts of key-logged TLS 1.3 flows: expected.json's, now proven by decryption.
            let want = expected["captures"][capture.as_str()]["flows"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|w| w["server"] == server_of(flow).as_str() && w["tls_version"] == "1.3");
            let Some(want) = want else {
                errors.push(format!("{at}: no expectation"));
                continue;
            };
            if flow["verdict"] != want["verdict"]
                || flow["proof"] != "decrypted"
                || tls["client_certificate"] != want["client_certificate"]
            {
                errors.push(format!(
                    "{at}: {} {} {} (want {} decrypted {})",
                    flow["verdict"],
                    flow["proof"],
                    tls["client_certificate"],
                    want["verdict"],
                    want["client_certificate"]
                ));
            }
            let evidence = flow["evidence"].as_str().unwrap_or_default();
            if !evidence.contains("decrypted with the key log") {
                errors.push(format!("{at}: evidence {evidence:?}"));
            }
            if want["verdict"] == "mtls"
                && (dec["client_certificate_verify"] != true
                    || dec["client_certificates"]["count"].as_u64().unwrap_or(0) == 0
                    || !evidence.contains("CertificateVerify"))
            {
                errors.push(format!("{at}: mutual but {dec}"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(decrypted >= 17, "only {decrypted} TLS 1.3 flows decrypted");
}

#[test]
fn psk_resumption_offers_a_ticket_the_decrypted_handshake_received() {
    let name = "tls13_psk_resumption.pcap";
    let a = analyze_bytes(name, &read(name), Some(keylog_of(&read("tls13_psk_resumption.keylog"))));
    let facts: Vec<_> = a
        .flows
        .iter()
        .filter_map(|f| match &f.record.classification {
            Classification::Tls { facts, .. } => Some(facts),
            _ => None,
        })
        .collect();
    assert_eq!(facts.len(), 2);
    let full = facts.iter().find(|f| !f.server_hello.as_ref().unwrap().psk_accepted).unwrap();
    let resumed = facts.iter().find(|f| f.server_hello.as_ref().unwrap().psk_accepted).unwrap();
    let tickets: Vec<u64> =
        full.decrypted.as_ref().unwrap().tickets.iter().map(|t| t.hash).collect();
    let offered = &resumed.client_hello.as_ref().unwrap().psk_identities;
    assert!(!tickets.is_empty() && !offered.is_empty());
    assert!(offered.iter().any(|h| tickets.contains(h)), "{offered:?} vs {tickets:?}");
    assert!(full.client_hello.as_ref().unwrap().random.is_some());
}

#[test]
fn a_wrong_key_reports_an_error_and_falls_back_to_the_size_inference() {
    let text = String::from_utf8(read("tls13_mutual_veth.keylog")).unwrap();
    // Change the last hex digit of every secret: same labels and randoms, wrong keys.
    let wrong: String = text
        .lines()
        .map(|l| {
            let mut l = l.to_string();
            if let Some(c) = l.pop() {
                l.push(if c == '0' { '1' } else { '0' });
            }
            l + "\n"
        })
        .collect();
    let name = "tls13_mutual_veth.pcap";
    let a = analyze_bytes(name, &read(name), Some(keylog_of(wrong.as_bytes())));
    let d = doc(&a);
    let flow = &d["flows"][0];
    assert_eq!(flow["verdict"], "mtls");
    assert_eq!(flow["proof"], "inferred");
    let err = flow["tls"]["decrypted"]["error"].as_str().expect("an error");
    assert!(err.contains("did not open"), "{err}");
    assert!(flow["warnings"].to_string().contains("decryption failed"), "{}", flow["warnings"]);
    let input_warnings = d["inputs"][0]["warnings"].to_string();
    assert!(input_warnings.contains("1 flows had keys but decryption failed"), "{input_warnings}");
}

#[test]
fn no_key_log_means_no_decrypted_object() {
    let name = "tls13_mutual_veth.pcap";
    let d = doc(&analyze_bytes(name, &read(name), None));
    assert!(d["flows"][0]["tls"].get("decrypted").is_none());
    assert_eq!(d["flows"][0]["proof"], "inferred");
}

/// A pcap file rewritten as pcapng, with a Decryption Secrets Block holding `secrets`
/// inserted before packet number `dsb_before` (as `editcap --inject-secrets` writes one).
fn pcap_to_pcapng(pcap: &[u8], secrets: &[u8], dsb_before: usize) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&total.to_le_bytes());
    }
    let u32le = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(u32le(pcap, 0), 0xa1b2_c3d4, "little-endian microsecond pcap expected");
    let mut out = Vec::new();
    let mut shb = vec![];
    shb.extend_from_slice(&0x1a2b_3c4d_u32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = vec![];
    idb.extend_from_slice(&(u32le(pcap, 20) as u16).to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&u32le(pcap, 16).to_le_bytes());
    block(&mut out, 1, &idb);
    let mut dsb = vec![];
    dsb.extend_from_slice(&0x544c_534b_u32.to_le_bytes()); // "TLSK"
    dsb.extend_from_slice(&(secrets.len() as u32).to_le_bytes());
    dsb.extend_from_slice(secrets);
    let mut at = 24;
    let mut n = 0;
    while at + 16 <= pcap.len() {
        if n == dsb_before {
            block(&mut out, 0x0000_000a, &dsb);
        }
        let (sec, usec, caplen, origlen) =
            (u32le(pcap, at), u32le(pcap, at + 4), u32le(pcap, at + 8), u32le(pcap, at + 12));
        let data = &pcap[at + 16..at + 16 + caplen as usize];
        let ts = u64::from(sec) * 1_000_000 + u64::from(usec);
        let mut epb = vec![];
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&caplen.to_le_bytes());
        epb.extend_from_slice(&origlen.to_le_bytes());
        epb.extend_from_slice(data);
        block(&mut out, 6, &epb);
        at += 16 + caplen as usize;
        n += 1;
    }
    out
}

#[test]
fn decryption_secrets_blocks_feed_the_key_log_mid_stream() {
    let pcap = read("tls13_mutual_veth.pcap");
    let secrets = read("tls13_mutual_veth.keylog");
    // At the start (editcap's place), and after the ClientHello (SYN, SYN-ACK, ACK, ClientHello).
    for before in [0, 4] {
        let ng = pcap_to_pcapng(&pcap, &secrets, before);
        let d = doc(&analyze_bytes("dsb.pcapng", &ng, None));
        let flow = &d["flows"][0];
        assert_eq!(d["inputs"][0]["format"], "pcapng");
        assert_eq!((&flow["verdict"], &flow["proof"]), (&"mtls".into(), &"decrypted".into()));
        let w = d["inputs"][0]["warnings"].to_string();
        assert!(w.contains("Decryption Secrets Blocks added 5 key-log entries"), "{w}");
    }
}

#[test]
fn cli_keylog_flag_proves_and_an_unreadable_one_exits_two() {
    let bin = env!("CARGO_BIN_EXE_mtlscope");
    let capture = fixtures_dir().join("tls13_mutual_veth.pcap");
    let keylog = fixtures_dir().join("tls13_mutual_veth.keylog");
    let out = Command::new(bin)
        .args(["analyze", "--color", "never", "--keylog"])
        .arg(&keylog)
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mtls (decrypted)"), "{text}");
    let out = Command::new(bin)
        .args(["analyze", "--keylog", "/nonexistent/keys.txt"])
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/keys.txt") && err.contains("cannot read"), "{err}");
}

#[test]
fn mutated_keylogged_captures_never_panic() {
    let pcap = read("tls13_mutual_veth.pcap");
    let keys = keylog_of(&read("tls13_mutual_veth.keylog"));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..64 {
        let mut bytes = pcap.clone();
        // Flip a few bytes past the file header: headers, hellos and ciphertext alike.
        for _ in 0..1 + next() % 4 {
            let at = 24 + (next() as usize) % (bytes.len() - 24);
            bytes[at] ^= 1 << (next() % 8);
        }
        let d = doc(&analyze_bytes("mutated.pcap", &bytes, Some(keys.clone())));
        for flow in d["flows"].as_array().into_iter().flatten() {
            assert!(!flow["evidence"].as_str().unwrap_or_default().is_empty());
            if flow["proof"] == "decrypted" {
                assert!(flow["tls"]["decrypted"]["client_finished"] == true);
            }
        }
    }
}

#[test]
fn decrypted_alpn_and_identities_reach_the_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .args(["analyze", "--color", "never", "--keylog"])
        .arg(fixtures_dir().join("istio_mutual.keylog"))
        .arg(fixtures_dir().join("istio_mutual.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.contains(":8452 ")).expect("the TLS 1.3 flow's row");
    // EncryptedExtensions chose istio-peer-exchange; without keys the row lists the offer.
    assert!(row.contains(" istio-peer-exchange ") && !row.contains("istio-h2"), "{row}");
    assert!(row.contains("frontend.default -> backend.default (istio)"), "{row}");
    assert!(row.contains("mtls (decrypted)"), "{row}");
}
