//! The command line contract: exit codes, stdin, error messages that name the file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtlscope"))
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name).display().to_string()
}

#[test]
fn analyses_a_capture_and_exits_zero() {
    let out = bin()
        .args(["analyze", "--color", "never", &fixture("tls12_mutual_veth.pcap")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mtls (observed)"), "{text}");
    assert!(text.contains("1 TCP flow: 1 mtls"), "{text}");
}

#[test]
fn not_a_capture_exits_two_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "GET / HTTP/1.1\r\n\r\n").unwrap();
    let out = bin().args(["analyze", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt") && err.contains("not a pcap or pcapng"), "{err}");
}

#[test]
fn a_missing_file_exits_two_but_the_others_are_still_analysed() {
    let out = bin()
        .args(["analyze", "--format", "json", "/nonexistent/x.pcap", &fixture("http1_veth.pcap")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["flows"].as_array().unwrap().len(), 2);
    assert!(doc["inputs"][0]["error"].as_str().unwrap().contains("cannot open"));
}

#[test]
fn a_truncated_file_keeps_what_was_read_warns_and_exits_zero() {
    let bytes = std::fs::read(fixture("http1_veth.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let out = bin().args(["analyze", "--format", "json", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap") && err.contains("truncated at byte"), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["flows"].as_array().unwrap().len(), 2);
}

#[test]
fn reads_a_capture_stream_from_stdin() {
    let bytes = std::fs::read(fixture("mixed_any_sll2.pcap")).unwrap();
    let mut child = bin()
        .args(["analyze", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written in small pieces, like `tcpdump -U -w -` through a pipe.
    for chunk in bytes.chunks(700) {
        stdin.write_all(chunk).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["inputs"][0]["link_types"][0], "linux-sll2");
    assert_eq!(doc["summary"]["flows"], 4);
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = bin().args(["analyze", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Examples:") && text.contains("Exit codes:"), "{text}");
}

#[test]
fn bad_usage_exits_two() {
    let out = bin().args(["analyze"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
