//! `mtlscope live`: replays through the live pipeline agree with `analyze`; events come in
//! order; a closed stdout ends the run cleanly; without privileges the error says what to do;
//! and, as root, a real capture on a veth pair between two network namespaces.

#[path = "check_common/schemas.rs"]
mod schemas;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mtlscope")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run mtlscope")
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

/// Every flow event of a replay is well-formed: each flow finishes once, after any decided or
/// updated events, and `decided` comes first. Returns the finished flows by id.
fn check_events(events: &[Value], what: &str) -> BTreeMap<u64, Value> {
    let mut seen: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    let mut finished = BTreeMap::new();
    let last = events.last().unwrap_or_else(|| panic!("{what}: no output"));
    assert_eq!(last["type"], "summary", "{what}: ends with the final summary");
    assert_eq!(last["final"], true, "{what}");
    for ev in &events[..events.len() - 1] {
        if ev["type"] == "summary" {
            assert_eq!(ev["final"], false);
            continue;
        }
        assert_eq!(ev["type"], "flow", "{what}: {ev}");
        let id = ev["flow"]["id"].as_u64().unwrap();
        let kind = ev["event"].as_str().unwrap();
        let history = seen.entry(id).or_default();
        assert!(!history.contains(&"finished"), "{what}: flow {id} reported after it finished");
        match kind {
            "decided" => assert!(history.is_empty(), "{what}: flow {id} decided twice"),
            "updated" => assert!(history.first() == Some(&"decided"), "{what}: flow {id}"),
            "finished" => {
                finished.insert(id, ev["flow"].clone());
            }
            other => panic!("{what}: unknown event {other}"),
        }
        history.push(kind);
    }
    assert_eq!(finished.len(), seen.len(), "{what}: every flow reported finishes");
    assert_eq!(last["flows"]["finished"].as_u64(), Some(finished.len() as u64), "{what}");
    finished
}

#[test]
fn a_replay_gives_the_same_flows_as_analyze() {
    for path in fixtures() {
        let p = path.to_str().unwrap();
        let mut keylog = path.clone();
        keylog.set_extension("keylog");
        let mut extra = Vec::new();
        if keylog.exists() {
            extra = vec!["--keylog".to_string(), keylog.to_str().unwrap().to_string()];
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut a = vec!["analyze", "--format", "json", p];
        a.extend(&extra);
        let analyzed = run(&a);
        assert!(analyzed.status.success(), "{p}: {}", String::from_utf8_lossy(&analyzed.stderr));
        let doc: Value = serde_json::from_slice(&analyzed.stdout).unwrap();
        let mut l = vec!["live", "-r", p, "--format", "jsonl", "--summary-interval", "0"];
        l.extend(&extra);
        let live = run(&l);
        assert!(live.status.success(), "{p}: {}", String::from_utf8_lossy(&live.stderr));
        let finished = check_events(&lines(&live.stdout), p);
        let flows = doc["flows"].as_array().unwrap();
        assert_eq!(flows.len(), finished.len(), "{p}: flow count");
        for f in flows {
            let id = f["id"].as_u64().unwrap();
            // The whole flow object, not only the verdict: same DTO, same pipeline.
            assert_eq!(&finished[&id], f, "{p}: flow {id} differs");
        }
    }
}

#[test]
fn mixed_any_sll2_decides_every_payload_flow_before_it_finishes() {
    let out = run(&["live", "-r", fixture("mixed_any_sll2.pcap").to_str().unwrap()]);
    assert!(out.status.success());
    let events = lines(&out.stdout);
    let finished = check_events(&events, "mixed_any_sll2");
    let verdicts: Vec<&str> = finished.values().map(|f| f["verdict"].as_str().unwrap()).collect();
    assert!(verdicts.contains(&"mtls") && verdicts.contains(&"plaintext"), "{verdicts:?}");
    let decided = events.iter().filter(|e| e["event"] == "decided").count();
    assert_eq!(decided, finished.len(), "every flow here is decided while open");
    let last = events.last().unwrap();
    assert_eq!(last["schema"], "mtlscope-live/v1");
    assert_eq!(last["drops"]["channel"], 0);
    assert_eq!(last["timed_out"], false);
}

#[test]
fn a_recorded_speed_replay_reports_in_the_same_order() {
    // No timing assertion (it would flake on a loaded machine): the same events, in order.
    let p = fixture("http1_veth.pcap");
    let p = p.to_str().unwrap();
    let max = lines(&run(&["live", "-r", p, "--summary-interval", "0"]).stdout);
    let rec = run(&["live", "-r", p, "--speed", "recorded", "--summary-interval", "0"]);
    assert!(rec.status.success());
    let rec = lines(&rec.stdout);
    let key = |v: &Vec<Value>| -> Vec<(String, u64, String)> {
        v.iter()
            .filter(|e| e["type"] == "flow")
            .map(|e| {
                let ev = e["event"].as_str().unwrap().to_string();
                (ev, e["flow"]["id"].as_u64().unwrap(), e["flow"]["verdict"].to_string())
            })
            .collect()
    };
    assert_eq!(key(&max), key(&rec));
    check_events(&rec, "recorded");
}

#[test]
fn stdin_replay_and_a_closed_stdout_end_cleanly() {
    let bytes = std::fs::read(fixture("mixed_any_sll2.pcap")).unwrap();
    let mut child = Command::new(bin())
        .args(["live", "-r", "-", "--summary-interval", "100ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The capture arrives, but stdin stays open (like `tcpdump -U -w -` over kubectl exec).
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes).unwrap();
    stdin.flush().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["type"], "flow", "verdicts stream while the input is still open");
    drop(out); // the reader goes away: the next summary line hits a broken pipe
    let status = wait_bounded(&mut child, Duration::from_secs(20)).expect("live exits");
    drop(stdin);
    assert_eq!(status.code(), Some(0), "a broken pipe is a clean exit");
}

#[test]
fn an_unreadable_replay_is_exit_2() {
    let out = run(&["live", "-r", "/nonexistent.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pcap"));
    let out = run(&["live", "-r", fixture("README.md").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["live"]);
    assert_eq!(out.status.code(), Some(2), "-i or -r is required");
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[test]
fn without_privileges_the_error_names_the_interface_and_the_remedy() {
    let mut cmd = if is_root() {
        if !Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success()) {
            eprintln!("SKIPPED: running as root and setpriv is missing: cannot drop privileges");
            return;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin()]);
        c
    } else {
        Command::new(bin())
    };
    let out = cmd.args(["live", "-i", "lo", "--duration", "1s"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        eprintln!("SKIPPED: this user may capture (the binary has capabilities?): {err}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("interface lo"), "{err}");
    assert!(err.contains("setcap cap_net_raw,cap_net_admin+eip"), "{err}");
    assert!(err.contains("interfaces: "), "lists what exists: {err}");
}

/// Two network namespaces joined by a veth pair, servers in one, clients in the other; torn
/// down (processes by PID, then the namespaces) however the test ends.
struct NetLab {
    server_ns: String,
    client_ns: String,
    children: Vec<Child>,
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

fn wait_listening(ns: &str, port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let out = in_ns(ns, &["ss", "-ltnH"]).output();
        if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(":{port} "))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn live_capture_on_a_veth_sees_plaintext_and_mtls() {
    if !is_root() {
        eprintln!("SKIPPED live_capture_on_a_veth_sees_plaintext_and_mtls: needs root");
        return;
    }
    for tool in ["openssl", "curl", "ss", "timeout"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| !o.status.success())
        {
            eprintln!("SKIPPED live_capture_on_a_veth_sees_plaintext_and_mtls: {tool} is missing");
            return;
        }
    }
    let pid = std::process::id();
    let (s_ns, c_ns) = (format!("mtls-s-{pid}"), format!("mtls-c-{pid}"));
    let (s_if, c_if) = (format!("mvs{pid}"), format!("mvc{pid}"));
    if !sh(&["ip", "netns", "add", &s_ns]) {
        eprintln!("SKIPPED live_capture_on_a_veth_sees_plaintext_and_mtls: `ip netns` unavailable");
        return;
    }
    let mut lab = NetLab { server_ns: s_ns.clone(), client_ns: c_ns.clone(), children: vec![] };
    let setup = [
        vec!["ip", "netns", "add", &c_ns],
        vec!["ip", "link", "add", &s_if, "type", "veth", "peer", "name", &c_if],
        vec!["ip", "link", "set", &s_if, "netns", &s_ns],
        vec!["ip", "link", "set", &c_if, "netns", &c_ns],
        vec!["ip", "-n", &s_ns, "addr", "add", "10.201.0.1/24", "dev", &s_if],
        vec!["ip", "-n", &c_ns, "addr", "add", "10.201.0.2/24", "dev", &c_if],
        vec!["ip", "-n", &s_ns, "link", "set", &s_if, "up"],
        vec!["ip", "-n", &c_ns, "link", "set", &c_if, "up"],
        vec!["ip", "-n", &s_ns, "link", "set", "lo", "up"],
        vec!["ip", "-n", &c_ns, "link", "set", "lo", "up"],
    ];
    for step in &setup {
        assert!(sh(step), "setup failed: {step:?}");
    }
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pki");
    let pki = |f: &str| pki.join(f).to_str().unwrap().to_string();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "hello\n").unwrap();
    let python =
        if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let http = in_ns(&s_ns, &[python, "-m", "http.server", "8080", "--bind", "10.201.0.1"])
        .current_dir(www.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    lab.children.push(http);
    let (cert, key, chain, ca) = (pki("web.crt"), pki("web.key"), pki("issuer.crt"), pki("ca.crt"));
    let tls = in_ns(
        &s_ns,
        &[
            "openssl",
            "s_server",
            "-accept",
            "8443",
            "-rev",
            "-tls1_2",
            "-cert",
            &cert,
            "-key",
            &key,
            "-cert_chain",
            &chain,
            "-CAfile",
            &ca,
            "-Verify",
            "5",
            "-verify_return_error",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("openssl s_server");
    lab.children.push(tls);
    assert!(wait_listening(&s_ns, 8080), "http server did not listen");
    assert!(wait_listening(&s_ns, 8443), "openssl s_server did not listen");

    let capture =
        in_ns(&s_ns, &[bin(), "live", "-i", &s_if, "--format", "jsonl", "--duration", "6s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mtlscope live");
    lab.children.push(capture);
    // libpcap opens the interface within milliseconds; leave it a generous moment.
    std::thread::sleep(Duration::from_millis(1500));

    let curl = in_ns(&c_ns, &["curl", "-sS", "--max-time", "5", "http://10.201.0.1:8080/"])
        .output()
        .unwrap();
    assert!(curl.status.success(), "curl: {}", String::from_utf8_lossy(&curl.stderr));
    let (ccert, ckey) = (pki("emoji.crt"), pki("emoji.key"));
    let mut s_client = in_ns(
        &c_ns,
        &[
            "timeout",
            "5",
            "openssl",
            "s_client",
            "-connect",
            "10.201.0.1:8443",
            "-tls1_2",
            "-cert",
            &ccert,
            "-key",
            &ckey,
            "-cert_chain",
            &chain,
            "-CAfile",
            &ca,
            "-quiet",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut input = s_client.stdin.take().unwrap();
    input.write_all(b"GET /api/items emoji->web\n").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(input);
    wait_bounded(&mut s_client, Duration::from_secs(10));

    let mut capture = lab.children.pop().unwrap();
    let status = wait_bounded(&mut capture, Duration::from_secs(20)).expect("live ends");
    let out = capture.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "{err}");
    let events = lines(&out.stdout);
    let finished = check_events(&events, "veth");
    let found = |verdict: &str, port: u64, protocol: &str| {
        finished.values().any(|f| {
            f["verdict"] == verdict && f["server"]["port"] == port && f["protocol"] == protocol
        })
    };
    assert!(found("plaintext", 8080, "http1"), "no plaintext http1 flow: {events:#?}");
    assert!(found("mtls", 8443, "tls"), "no mtls flow: {events:#?}\n{err}");
    let decided = events.iter().filter(|e| e["event"] == "decided").count();
    assert!(decided >= 2, "verdicts were streamed before the end: {events:#?}");
}

#[test]
fn check_judges_the_finished_flows_and_exits_with_the_checks_code() {
    let p = fixture("mixed_any_sll2.pcap");
    let inv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check/emojivoto-inventory.yaml");
    let (p, inv) = (p.to_str().unwrap(), inv.to_str().unwrap());
    // Without an inventory nothing is in a judged scope: could not verify.
    let out = run(&["live", "-r", p, "--check", "--expect-traffic"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["live", "-r", p, "--inventory", inv, "--check", "--expect-traffic"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "plaintext between pods fails: {err}");
    assert!(err.contains("FAIL: "), "{err}");
    let events = lines(&out.stdout);
    let check = events.last().unwrap();
    assert_eq!(check["type"], "check");
    assert_eq!(check["check"]["outcome"], "fail");
    // Flows are enriched with the inventory, as analyze does.
    assert!(events.iter().any(|e| e["type"] == "flow" && e["flow"]["scope"] == "pod-to-pod"));
    check_events(&events[..events.len() - 1], "check");
    let out = run(&["live", "-r", p, "--policy", "x.yaml"]);
    assert_eq!(out.status.code(), Some(2), "--policy needs --check");
}

fn inventory(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    p.to_str().unwrap().to_string()
}

/// `live -r FIXTURE --inventory INV --check ARGS...` with GITHUB_ACTIONS unset.
fn live_check(capture: &str, inv: &str, args: &[&str]) -> Output {
    let p = fixture(capture);
    Command::new(bin())
        .args(["live", "-r", p.to_str().unwrap(), "--summary-interval", "0"])
        .args(["--inventory", &inventory(inv), "--check", "--today", "2026-06-01"])
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

const VIOLATING: (&str, &str) =
    ("mixed_any_sll2.pcap", "tests/data/check/emojivoto-inventory.yaml");
const PASSING: (&str, &str) = ("tls13_mutual_veth.pcap", "fixtures/inventory/emojivoto.json");

#[test]
fn check_writes_junit_and_sarif_files() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, sarif) = (dir.path().join("mtls.xml"), dir.path().join("mtls.sarif"));
    let (j, s) = (junit.to_str().unwrap(), sarif.to_str().unwrap());
    let out = live_check(VIOLATING.0, VIOLATING.1, &["--junit", j, "--sarif", s]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("FAIL: "), "the text report on stderr: {err}");
    assert!(!err.contains("::error"), "no annotations unless asked (GITHUB_ACTIONS unset)");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(schemas::junit_errors(&xml), Vec::<String>::new(), "{xml}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failures: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .map(|f| (f.parent().unwrap().attribute("name").unwrap(), f.attribute("type").unwrap()))
        .collect();
    assert!(
        failures.contains(&("emojivoto/web -> emojivoto/emoji:8080", "plaintext")),
        "{failures:?}"
    );

    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let errors: Vec<String> =
        schemas::sarif_validator().iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let rules: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    // Not mTLS (the plaintext and the server-auth edges), and the identity mismatch.
    assert_eq!(rules, ["MTLS001", "MTLS001", "MTLS005"]);
    assert_eq!(log["runs"][0]["invocations"][0]["exitCode"], 1);

    // The stream stays JSON lines, closed by the check line.
    let events = lines(&out.stdout);
    assert_eq!(events.last().unwrap()["type"], "check");
    assert_eq!(events.last().unwrap()["check"]["outcome"], "fail");
}

#[test]
fn check_prints_github_annotations_on_stderr() {
    let out = live_check(VIOLATING.0, VIOLATING.1, &["--github-annotations", "always"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let errors = err.lines().filter(|l| l.starts_with("::error ")).count();
    assert_eq!(errors, 3, "one per violating edge: {err}");
    assert!(err.contains("emojivoto/web -> emojivoto/emoji:8080 is plaintext"), "{err}");
    // stdout is still one JSON object a line (annotations would break it).
    lines(&out.stdout);
    // auto: when the environment says GitHub Actions.
    let p = fixture(VIOLATING.0);
    let auto = Command::new(bin())
        .args(["live", "-r", p.to_str().unwrap(), "--inventory", &inventory(VIOLATING.1)])
        .args(["--check"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&auto.stderr).contains("::error "));
    let never = live_check(VIOLATING.0, VIOLATING.1, &["--github-annotations", "never"]).stderr;
    assert!(!String::from_utf8_lossy(&never).contains("::error"));
}

#[test]
fn check_writes_a_baseline_that_a_later_run_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let b = baseline.to_str().unwrap();
    let out = live_check(VIOLATING.0, VIOLATING.1, &["--write-baseline", b]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(written["schema"], "mtlscope-baseline/v1", "{written:#}");
    let out = live_check(VIOLATING.0, VIOLATING.1, &["--baseline", b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the recorded edges are known: {err}");
    assert!(err.starts_with("PASS: "), "{err}");
}

#[test]
fn check_options_without_check_and_unwritable_files() {
    let p = fixture(PASSING.0);
    for flag in [["--junit", "x.xml"], ["--sarif", "x.sarif"], ["--today", "2026-06-01"]] {
        let out = run(&["live", "-r", p.to_str().unwrap(), flag[0], flag[1]]);
        assert_eq!(out.status.code(), Some(2), "{flag:?} needs --check");
    }
    let out = live_check(PASSING.0, PASSING.1, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // A pass that cannot be reported could not be verified; a violation still exits 1.
    let junit = ["--junit", "/nonexistent/dir/mtls.xml"];
    let out = live_check(PASSING.0, PASSING.1, &junit);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mtlscope: error: writing /nonexistent/dir/mtls.xml: "), "{err}");
    assert_eq!(live_check(VIOLATING.0, VIOLATING.1, &junit).status.code(), Some(1));
}

/// Kills the tmux session however the test ends.
struct TmuxSession(String);

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

fn tmux_screen(session: &str) -> String {
    let out = Command::new("tmux").args(["capture-pane", "-p", "-t", session]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls the screen until `want` shows (bounded).
fn tmux_wait_for(session: &str, want: &str) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux_screen(session);
        if screen.contains(want) || start.elapsed() > Duration::from_secs(15) {
            return screen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_terminal_ui_runs_in_tmux_and_answers_keys() {
    if !Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED the_terminal_ui_runs_in_tmux_and_answers_keys: tmux is not installed");
        return;
    }
    let session = TmuxSession(format!("mtlscope-tui-{}", std::process::id()));
    let cmd = format!(
        "{} live -r {} -o tui; echo EXITED $?; sleep 30",
        bin(),
        fixture("mixed_any_sll2.pcap").display()
    );
    let ok = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session.0, "-x", "80", "-y", "24", &cmd])
        .env_remove("NO_COLOR")
        .status()
        .unwrap();
    assert!(ok.success());
    let screen = tmux_wait_for(&session.0, "4 done");
    assert!(screen.contains("edges by worst verdict (s: sort, tab: flows)"), "{screen}");
    assert!(screen.contains("1 edge carries plaintext"), "local hops are not counted: {screen}");
    let keys = |k: &[&str]| {
        let mut c = Command::new("tmux");
        c.args(["send-keys", "-t", &session.0]).args(k);
        assert!(c.status().unwrap().success());
    };
    keys(&["s", "s"]);
    let screen = tmux_wait_for(&session.0, "edges by bytes");
    assert!(screen.contains("edges by bytes (s: sort"), "{screen}");
    keys(&["Tab"]);
    let screen = tmux_wait_for(&session.0, "tab: edges)");
    assert!(screen.contains("flows by bytes"), "{screen}");
    assert!(screen.contains("10.77.0.1:48740"), "{screen}");
    keys(&["Enter"]);
    let screen = tmux_wait_for(&session.0, "enter: back");
    assert!(screen.contains("encrypted Finished"), "the handshake timeline: {screen}");
    keys(&["Escape"]);
    let screen = tmux_wait_for(&session.0, "enter: full");
    assert!(!screen.contains("EXITED"), "esc closed the detail, not the UI: {screen}");
    keys(&["?"]);
    let screen = tmux_wait_for(&session.0, " keys ");
    assert!(screen.contains("only flows that are not mTLS"), "{screen}");
    keys(&["q"]);
    let screen = tmux_wait_for(&session.0, "EXITED");
    assert!(screen.contains("EXITED 0"), "quit restores the terminal and exits 0: {screen}");
}

#[test]
fn check_under_the_terminal_ui_reports_when_it_quits() {
    if !Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED check_under_the_terminal_ui_reports_when_it_quits: tmux is missing");
        return;
    }
    let session = TmuxSession(format!("mtlscope-tui-check-{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("mtls.xml");
    let cmd = format!(
        "{} live -r {} -o tui --inventory {} --check --junit {}; echo EXITED $?; sleep 30",
        bin(),
        fixture(VIOLATING.0).display(),
        inventory(VIOLATING.1),
        junit.display()
    );
    let ok = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session.0, "-x", "100", "-y", "30", &cmd])
        .env_remove("GITHUB_ACTIONS")
        .status()
        .unwrap();
    assert!(ok.success());
    let screen = tmux_wait_for(&session.0, "4 done");
    assert!(screen.contains("4 done"), "{screen}");
    assert!(!junit.exists(), "judged when the UI quits, not before");
    let q = Command::new("tmux").args(["send-keys", "-t", &session.0, "q"]).status().unwrap();
    assert!(q.success());
    let screen = tmux_wait_for(&session.0, "EXITED");
    assert!(screen.contains("EXITED 1"), "the check's exit code: {screen}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
    assert!(xml.contains("<failure"), "{xml}");
}

#[test]
fn the_readme_live_section_names_every_flag() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("\n## Live (`mtlscope live`)\n").expect("the Live section");
    let end = readme[start + 1..].find("\n## ").map_or(readme.len(), |i| start + 1 + i);
    let text = &readme[start..end];
    let cli = <mtlscope::cli::Cli as clap::CommandFactory>::command();
    let cmd = cli.find_subcommand("live").expect("mtlscope live");
    assert!(cmd.get_arguments().any(|a| a.get_long() == Some("junit")));
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long().filter(|l| *l != "help") else { continue };
        assert!(text.contains(&format!("--{long}")), "the Live section misses --{long}");
    }
}
