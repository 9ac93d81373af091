//! The shell way, without mtlscope's Kubernetes client: `kubectl exec ... -- tcpdump -i any -U
//! -w - | mtlscope live -r -`. `kubectl exec` is faked by a local shell process that writes a
//! fixture capture to the pipe a packet at a time, then keeps the pipe open for a while like a
//! capture on a quiet interface. The verdicts must be the ones `analyze` gives, and they must
//! come while the pipe is still open (streamed, not read to the end first).

mod pod_fake;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_slow_pipe_from_exec_tcpdump_streams_verdicts_before_it_closes() {
    let fixture = pod_fake::fixture_path("mixed_any_sll2.pcap");
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("parts");
    pod_fake::split_pcap(&fixture, &parts);
    let script =
        format!("for f in '{}'/*; do cat \"$f\"; sleep 0.02; done; sleep 3", parts.display());
    let mtlscope = env!("CARGO_BIN_EXE_mtlscope");
    let pipeline = format!("sh -c '{}' | '{mtlscope}' live -r -", script.replace('\'', "'\\''"));
    let mut child = Command::new("sh")
        .args(["-c", &pipeline])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let mut lines = Vec::new();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the pipeline ran longer than 60s");
        }
        lines.extend(rx.try_iter());
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(100));
    lines.extend(rx.try_iter());
    assert!(status.success(), "{status:?}");
    let parsed: Vec<(Instant, Value)> =
        lines.iter().map(|(t, l)| (*t, serde_json::from_str(l).unwrap())).collect();
    let first_decided = parsed.iter().find(|(_, v)| v["event"] == "decided").expect("decided").0;
    let (last_at, summary) = parsed.last().unwrap();
    assert_eq!(summary["final"], true);
    // The pipe stayed open 3 s after the last packet; verdicts came before that.
    assert!(
        last_at.duration_since(first_decided) >= Duration::from_secs(2),
        "verdicts were not streamed: first at {:?}, end at {:?}",
        first_decided - started,
        *last_at - started
    );
    // The same verdicts as analyze on the file.
    let analyzed = Command::new(mtlscope)
        .args(["analyze", "--format", "json", "--no-progress"])
        .arg(&fixture)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&analyzed.stdout).unwrap();
    let key = |f: &Value| format!("{} {} {}", f["client"], f["server"], f["verdict"]);
    let mut want: Vec<String> = doc["flows"].as_array().unwrap().iter().map(key).collect();
    let mut got: Vec<String> = parsed
        .iter()
        .filter(|(_, v)| v["event"] == "finished")
        .map(|(_, v)| key(&v["flow"]))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(!got.is_empty());
}

#[test]
fn pod_takes_every_check_option_live_takes() {
    let cli = <mtlscope::cli::Cli as clap::CommandFactory>::command();
    let longs = |name: &str| -> Vec<String> {
        let cmd = cli.find_subcommand(name).unwrap_or_else(|| panic!("mtlscope {name}"));
        cmd.get_arguments().filter_map(|a| a.get_long()).map(str::to_string).collect()
    };
    let pod = longs("pod");
    for opt in ["check", "policy", "junit", "sarif", "github-annotations", "write-baseline"] {
        assert!(longs("live").iter().any(|l| l == opt), "live --{opt}");
        assert!(pod.iter().any(|l| l == opt), "pod --{opt}");
    }
}
