//! Resumed sessions linked to the full handshake that created them, on real captures: within
//! one file, across the files of one run, and in neither (the origin was not captured).

use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn analyze(files: &[&Path]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .args(["analyze", "--format", "json", "--no-progress"])
        .args(files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The TCP ports of an Ethernet/IPv4 frame, if it is one.
fn ports(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
        return None;
    }
    let tcp = 14 + usize::from(frame[14] & 0x0f) * 4;
    let p = frame.get(tcp..tcp + 4)?;
    Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
}

/// Copy the packets of a classic pcap file whose TCP ports satisfy `keep` into a new file.
fn split(src: &Path, dst: &Path, keep: impl Fn(u16, u16) -> bool) -> usize {
    let data = std::fs::read(src).unwrap();
    assert_eq!(&data[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a little-endian microsecond pcap");
    let mut out = data[..24].to_vec();
    let (mut at, mut kept) = (24, 0);
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..at + 16 + caplen];
        if ports(frame).is_some_and(|(s, d)| keep(s, d)) {
            out.extend_from_slice(&data[at..at + 16 + caplen]);
            kept += 1;
        }
        at += 16 + caplen;
    }
    std::fs::write(dst, out).unwrap();
    kept
}

fn tls_flows(doc: &Value) -> Vec<&Value> {
    doc["flows"].as_array().unwrap().iter().filter(|f| f["protocol"] == "tls").collect()
}

#[test]
fn tls12_resumption_links_by_session_id_and_by_ticket() {
    let doc = analyze(&[&fixture("tls12_resumption.pcap")]);
    let flows = tls_flows(&doc);
    assert_eq!(flows.len(), 4);
    for f in &flows {
        assert_eq!(f["verdict"], "mtls", "{f:#}");
    }
    let resumed: Vec<&&Value> = flows.iter().filter(|f| f["tls"]["resumed"] == true).collect();
    assert_eq!(resumed.len(), 2);
    for r in resumed {
        assert_eq!(r["proof"], "resumed");
        let origin = &r["tls"]["resumed_from"];
        assert_eq!(origin["by"], r["tls"]["resumption"], "linked the way it resumed");
        assert_eq!(origin["verdict"], "mtls");
        assert_eq!(origin["proof"], "observed");
        assert_eq!(origin["client_identity"], "emoji.emojivoto");
        // The origin is the full handshake to the same server port, earlier in the file.
        let o = flows.iter().find(|f| f["id"] == origin["flow"]).unwrap();
        assert_eq!(o["server"], r["server"]);
        assert_eq!(o["tls"]["resumed"], false);
        assert!(o["first_seen"].as_str() < r["first_seen"].as_str());
    }
}

/// Client ports of the resumed flows of tls12_resumption.pcap.
fn resumed_client_ports(doc: &Value) -> HashSet<u16> {
    tls_flows(doc)
        .iter()
        .filter(|f| f["tls"]["resumed"] == true)
        .map(|f| f["client"]["port"].as_u64().unwrap() as u16)
        .collect()
}

#[test]
fn resumption_links_across_the_files_of_one_run_and_says_when_the_origin_is_missing() {
    let whole = fixture("tls12_resumption.pcap");
    let resumed = resumed_client_ports(&analyze(&[&whole]));
    let dir = tempfile::tempdir().unwrap();
    let (origins, later) = (dir.path().join("origins.pcap"), dir.path().join("resumed.pcap"));
    let is_resumed = |s: u16, d: u16| resumed.contains(&s) || resumed.contains(&d);
    assert!(split(&whole, &origins, |s, d| !is_resumed(s, d)) > 0);
    assert!(split(&whole, &later, is_resumed) > 0);

    // Resumed flows first on the command line: they wait for the origins read after them.
    let doc = analyze(&[&later, &origins]);
    let flows = tls_flows(&doc);
    assert_eq!(flows.len(), 4);
    for f in flows.iter().filter(|f| f["input"] == 0) {
        assert_eq!(f["verdict"], "mtls", "{f:#}");
        assert_eq!(f["proof"], "resumed");
        assert_eq!(f["tls"]["resumed_from"]["input"], 1);
    }

    // Without the origins: resumed, unknown, and the evidence says why.
    let doc = analyze(&[&later]);
    let flows = tls_flows(&doc);
    assert_eq!(flows.len(), 2);
    for f in flows {
        assert_eq!(f["verdict"], "tls-unknown-auth");
        assert_eq!(f["tls"]["resumed"], true);
        assert_eq!(f["tls"]["resumed_from"], Value::Null);
        let evidence = f["evidence"].as_str().unwrap();
        assert!(evidence.contains("not in the capture"), "{evidence}");
    }
}
