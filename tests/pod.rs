//! `mtlscope pod` end to end: the binary, kube's real client, a fake API server over TLS that
//! runs the capture command mtlscope sends under a real `sh` in a fake container (see
//! tests/pod_fake/mod.rs). Every run is bounded; every process is started here and killed by
//! its own handle.

mod pod_fake;

use pod_fake::{fixture_path, EphemeralMode, FakeApi, Protocol, Tools, NS};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WEB: &str = "web-7d9f-abcde";
const EMOJI: &str = "emoji-5c4b-fghij";
const LIMIT: Duration = Duration::from_secs(60);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mtlscope"))
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
    fn finished(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["type"] == "flow" && l["event"] == "finished")
            .map(|l| l["flow"].clone())
            .collect()
    }
    fn summary(&self) -> Value {
        self.lines().into_iter().rfind(|l| l["type"] == "summary").expect("a summary line")
    }
}

/// Starts the binary (or `program`) with stdout and stderr read on threads.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<(Instant, String)>,
    stderr: std::thread::JoinHandle<String>,
}

fn spawn(program: &Path, args: &[&str]) -> Running {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, stdout) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Running { child, stdout, stderr }
}

impl Running {
    /// Waits (bounded) for the exit; a run over the limit is killed and fails the test.
    fn wait(mut self) -> Out {
        let started = Instant::now();
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code().unwrap_or(-1);
            }
            if started.elapsed() > LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("mtlscope ran longer than {LIMIT:?}: {}", self.stderr.join().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.join().unwrap();
        let stdout: Vec<String> = self.stdout.try_iter().map(|(_, l)| l).collect();
        Out { code, stdout: stdout.join("\n"), stderr }
    }
}

fn run(args: &[&str]) -> Out {
    spawn(&exe(), args).wait()
}

fn kube<'a>(api: &'a FakeApi, kubeconfig: &'a Path, rest: &[&'a str]) -> Vec<&'a str> {
    let _ = api;
    let mut a = vec!["pod", "--kubeconfig", kubeconfig.to_str().unwrap(), "-n", NS];
    a.extend_from_slice(rest);
    a
}

/// (client, server) -> verdict, as `analyze` judges the fixture.
fn expected(fixture: &str) -> BTreeMap<String, String> {
    let out = Command::new(exe())
        .args(["analyze", "--format", "json", "--no-progress"])
        .arg(fixture_path(fixture))
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    verdicts(doc["flows"].as_array().unwrap())
}

fn verdicts(flows: &[Value]) -> BTreeMap<String, String> {
    let addr = |e: &Value| format!("{}:{}", e["ip"].as_str().unwrap(), e["port"]);
    flows
        .iter()
        .map(|f| {
            let key = format!("{} -> {}", addr(&f["client"]), addr(&f["server"]));
            (key, format!("{} {}", f["verdict"].as_str().unwrap(), f["proof"]))
        })
        .collect()
}

fn packets_in(fixture: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    pod_fake::split_pcap(&fixture_path(fixture), dir.path()).len() - 1
}

/// The process is gone (not even a zombie of ours: the fake server reaped it).
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn debug_pod(api: &FakeApi, name: &str, fixture: &str) {
    let containers = [
        ("web", Tools::ShellOnly),
        ("linkerd-proxy", Tools::Nothing),
        ("linkerd-debug", Tools::Tcpdump),
    ];
    api.add_pod(name, json!({"app": "web"}), &containers, fixture);
}

// ---- the happy path ----

#[test]
fn linkerd_debug_sidecar_streams_verdicts_as_json_lines_and_w_keeps_the_raw_capture() {
    let api = FakeApi::start();
    let fixture = "mixed_any_sll2.pcap";
    debug_pod(&api, WEB, fixture);
    let k = api.kubeconfig();
    let saved = api.dir.path().join("web.pcap");
    // As the kubectl plugin: a symlink named kubectl-mtlscope.
    let plugin = api.dir.path().join("kubectl-mtlscope");
    std::os::unix::fs::symlink(exe(), &plugin).unwrap();
    let count = packets_in(fixture).to_string();
    let args = kube(&api, &k, &[WEB, "--count", &count, "-w", saved.to_str().unwrap()]);
    let out = spawn(&plugin, &args).wait();
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The verdicts analyze gives the same capture, every flow tagged with its pod.
    let flows = out.finished();
    assert_eq!(verdicts(&flows), expected(fixture));
    assert!(verdicts(&flows).values().any(|v| v.starts_with("mtls")), "{flows:?}");
    for f in &flows {
        assert_eq!(f["interface"], format!("{NS}/{WEB}"), "{f}");
    }
    let summary = out.summary();
    assert_eq!(summary["final"], true);
    assert_eq!(summary["interfaces"], json!([format!("{NS}/{WEB}")]));
    assert_eq!(summary["errors"], json!([]));
    // tcpdump's stderr reached the user as status, not the parser.
    assert!(
        out.stderr.contains(&format!("mtlscope: {NS}/{WEB}: tcpdump: listening on any")),
        "{}",
        out.stderr
    );
    // -w: the stream exactly as the pod's tcpdump wrote it.
    assert_eq!(std::fs::read(&saved).unwrap(), std::fs::read(fixture_path(fixture)).unwrap());

    // The session: sh -c in the linkerd-debug container, v5, the count passed to tcpdump,
    // which ended by itself (no stop needed), and the whole stream delivered.
    let s = &api.sessions()[0];
    assert_eq!((s.pod.as_str(), s.container.as_str()), (WEB, "linkerd-debug"));
    assert_eq!(s.protocol, "v5.channel.k8s.io");
    assert_eq!(&s.command[..2], ["sh", "-c"]);
    assert_eq!(s.command.last().unwrap(), &count);
    assert_eq!(s.exit, Some(0));
    assert_eq!(s.sent, std::fs::metadata(fixture_path(fixture)).unwrap().len());
    assert_eq!(api.tcpdump_end(WEB).as_deref(), Some("count-reached"));
    assert!(gone(api.tcpdump_pid(WEB).unwrap()));
}

#[test]
fn plugin_help_says_kubectl_mtlscope() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-mtlscope");
    std::os::unix::fs::symlink(exe(), &plugin).unwrap();
    let out = spawn(&plugin, &["pod", "--help"]).wait();
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Usage: kubectl mtlscope pod"), "{}", out.stdout);
    let out = run(&["pod", "--help"]);
    assert!(out.stdout.contains("Usage: mtlscope pod"), "{}", out.stdout);
}

// ---- stopping ----

#[test]
fn duration_stops_the_remote_tcpdump_over_v4_and_nothing_is_left_running() {
    let api = FakeApi::start();
    api.state.lock().unwrap().protocol = Protocol::V4;
    debug_pod(&api, WEB, "http1_veth.pcap");
    let k = api.kubeconfig();
    let started = Instant::now();
    let out = run(&kube(&api, &k, &[WEB, "--duration", "2s"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(verdicts(&out.finished()), expected("http1_veth.pcap"));
    assert_eq!(out.summary()["timed_out"], true);
    // The stop line went to the wrapper, which sent tcpdump SIGTERM; tcpdump exited 0 and
    // so did the session, with its status.
    let s = &api.sessions()[0];
    assert_eq!(s.protocol, "v4.channel.k8s.io");
    assert_eq!(s.stdin, b"\n");
    assert_eq!(s.exit, Some(0));
    assert!(!s.client_left, "the session ended with a status, not a dropped client");
    assert_eq!(api.tcpdump_end(WEB).as_deref(), Some("stopped-by-sigterm"));
    assert!(out.stderr.contains("packets captured"), "{}", out.stderr);
    assert!(gone(api.tcpdump_pid(WEB).unwrap()));
}

#[test]
fn check_judges_the_pods_flows_and_writes_its_junit_report() {
    let api = FakeApi::start();
    debug_pod(&api, WEB, "mixed_any_sll2.pcap");
    let k = api.kubeconfig();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let inv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check/emojivoto-inventory.yaml");
    let (inv, junit_arg) = (inv.to_str().unwrap(), junit.to_str().unwrap());
    let rest = [WEB, "--duration", "2s", "--inventory", inv, "--check", "--expect-traffic"];
    let mut args = kube(&api, &k, &rest);
    args.extend(["--junit", junit_arg]);
    let out = run(&args);
    assert_eq!(out.code, 1, "plaintext between pods fails the check: {}", out.stderr);
    assert!(out.stderr.contains("FAIL: "), "{}", out.stderr);
    let last = out.lines().pop().expect("output");
    assert_eq!(last["type"], "check");
    assert_eq!(last["check"]["outcome"], "fail");
    assert!(out.finished().iter().any(|f| f["scope"] == "pod-to-pod"), "named by the inventory");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    assert!(xml.contains("<failure"), "{xml}");
    // The capture was still stopped cleanly in the pod.
    assert_eq!(api.tcpdump_end(WEB).as_deref(), Some("stopped-by-sigterm"));
}

#[test]
fn ctrl_c_stops_the_remote_tcpdump_then_prints_the_summary() {
    let api = FakeApi::start();
    debug_pod(&api, WEB, "mixed_any_sll2.pcap");
    let k = api.kubeconfig();
    let args = kube(&api, &k, &[WEB]);
    let running = spawn(&exe(), &args);
    // Wait (bounded) for the first verdict, then Ctrl-C.
    let first = running.stdout.recv_timeout(LIMIT).expect("a first line");
    assert!(first.1.contains("\"type\":\"flow\""), "{}", first.1);
    // Let the fake tcpdump finish its packets and idle.
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.sessions()[0].sent
        < std::fs::metadata(fixture_path("mixed_any_sll2.pcap")).unwrap().len()
    {
        assert!(Instant::now() < deadline, "the stream never completed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = running.child.id().to_string();
    // The shell's builtin kill: no procps needed.
    let int = format!("kill -INT {pid}");
    assert!(Command::new("sh").args(["-c", &int]).status().unwrap().success());
    let mut out = running.wait();
    out.stdout = format!("{}\n{}", first.1, out.stdout);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(verdicts(&out.finished()), expected("mixed_any_sll2.pcap"));
    assert_eq!(out.summary()["final"], true);
    let s = &api.sessions()[0];
    assert_eq!(s.stdin, b"\n", "the stop line");
    // The fake API records the command's exit as it sends the status; on a loaded machine
    // mtlscope may stop waiting for that status first (it still ends cleanly).
    assert_eq!(recorded_exit(&api, 0), Some(0));
    assert_eq!(api.tcpdump_end(WEB).as_deref(), Some("stopped-by-sigterm"));
    assert!(gone(api.tcpdump_pid(WEB).unwrap()));
}

/// The exit status of session `i`'s command once the fake API has recorded it (bounded wait).
fn recorded_exit(api: &FakeApi, i: usize) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exit = api.sessions()[i].exit;
        if exit.is_some() || Instant::now() > deadline {
            return exit;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- several pods ----

#[test]
fn two_pods_by_label_are_merged_each_flow_tagged_and_w_writes_one_pcapng() {
    let api = FakeApi::start();
    let debug = [("linkerd-debug", Tools::Tcpdump)];
    api.add_pod(WEB, json!({"app": "shop"}), &debug, "tls13_mutual_veth.pcap");
    api.add_pod(EMOJI, json!({"app": "shop"}), &debug, "http1_veth.pcap");
    api.add_pod("other-0", json!({"app": "other"}), &debug, "tls12_mutual_veth.pcap");
    let k = api.kubeconfig();
    let saved = api.dir.path().join("both.pcapng");
    let args = ["-l", "app=shop", "--duration", "3s", "-w", saved.to_str().unwrap()];
    let out = run(&kube(&api, &k, &args));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let flows = out.finished();
    let of = |pod: &str| -> Vec<Value> {
        flows.iter().filter(|f| f["interface"] == format!("{NS}/{pod}")).cloned().collect()
    };
    assert_eq!(verdicts(&of(WEB)), expected("tls13_mutual_veth.pcap"));
    assert_eq!(verdicts(&of(EMOJI)), expected("http1_veth.pcap"));
    assert_eq!(flows.len(), of(WEB).len() + of(EMOJI).len(), "only the selected pods");
    let mut ifaces: Vec<String> =
        serde_json::from_value(out.summary()["interfaces"].clone()).unwrap();
    ifaces.sort();
    assert_eq!(ifaces, [format!("{NS}/{EMOJI}"), format!("{NS}/{WEB}")]);
    // Both captures were stopped, and both sessions ended with a status.
    let sessions = api.sessions();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.stdin == b"\n" && s.exit == Some(0)), "{sessions:?}");
    assert!(api
        .state
        .lock()
        .unwrap()
        .requests
        .iter()
        .any(|r| r.contains("labelSelector=app%3Dshop")));
    // -w: one pcapng, an interface per pod; analyze tells the pods apart as the live run did.
    let back = Command::new(exe())
        .args(["analyze", "--format", "json", "--no-progress"])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let doc: Value = serde_json::from_slice(&back.stdout).unwrap();
    let back_flows = doc["flows"].as_array().unwrap();
    assert_eq!(verdicts(back_flows), verdicts(&flows));
    for f in back_flows {
        let live = flows.iter().find(|l| l["client"] == f["client"] && l["server"] == f["server"]);
        assert_eq!(f["interface"], live.unwrap()["interface"], "{f}");
    }
}

#[test]
fn the_same_flow_seen_from_both_pods_is_one_flow() {
    let api = FakeApi::start();
    let debug = [("linkerd-debug", Tools::Tcpdump)];
    // Both ends of one conversation: each pod's capture holds the same packets.
    api.add_pod(WEB, json!({"app": "shop"}), &debug, "http1_nanosecond.pcap");
    api.add_pod(EMOJI, json!({"app": "shop"}), &debug, "http1_nanosecond.pcap");
    api.state.lock().unwrap().pause = "0".into();
    let k = api.kubeconfig();
    let count = packets_in("http1_nanosecond.pcap").to_string();
    let out = run(&kube(&api, &k, &[WEB, EMOJI, "--count", &count]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let flows = out.finished();
    assert_eq!(verdicts(&flows), expected("http1_nanosecond.pcap"));
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0]["packets"].as_u64().unwrap(), count.parse::<u64>().unwrap());
    assert_eq!(flows[0]["duplicates"].as_u64().unwrap(), count.parse::<u64>().unwrap());
}

// ---- errors ----

#[test]
fn a_container_without_tcpdump_suggests_ephemeral() {
    let api = FakeApi::start();
    debug_pod(&api, WEB, "http1_veth.pcap");
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &[WEB, "-c", "web"]));
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "mtlscope: error: container web of pod {NS}/{WEB} has neither tcpdump nor tshark; run \
             with --ephemeral"
        )),
        "{}",
        out.stderr
    );
    // The script said so and exited 127: the exit status came on the error channel.
    assert_eq!(api.sessions()[0].exit, Some(127));

    // Distroless: not even a shell.
    let out = run(&kube(&api, &k, &[WEB, "-c", "linkerd-proxy"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("has no shell (sh) to run tcpdump from; run with --ephemeral"),
        "{}",
        out.stderr
    );
}

#[test]
fn exec_forbidden_names_the_rbac_rule() {
    let api = FakeApi::start();
    debug_pod(&api, WEB, "http1_veth.pcap");
    api.state.lock().unwrap().forbidden.push(format!("/api/v1/namespaces/{NS}/pods/{WEB}/exec"));
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &[WEB]));
    assert_eq!((out.code, out.stdout.as_str()), (2, ""));
    assert!(
        out.stderr.contains(&format!(
            "not allowed to create pods/exec in namespace {NS} (403 Forbidden: pods is forbidden"
        )) && out.stderr.contains("grant `create` on `pods/exec`")
            && out.stderr.contains(&format!("kubectl auth can-i create pods/exec -n {NS}")),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_stream_cut_mid_packet_reports_what_was_captured_and_exits_2() {
    let api = FakeApi::start();
    let fixture = "mixed_any_sll2.pcap";
    debug_pod(&api, WEB, fixture);
    let dir = tempfile::tempdir().unwrap();
    let ends = pod_fake::split_pcap(&fixture_path(fixture), dir.path());
    // Halfway through packet 40.
    let cut = (ends[39] + ends[40]) / 2;
    api.state.lock().unwrap().cut = Some((WEB.into(), cut));
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &[WEB]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    // The flows of the first 39 packets, and the final summary, were still written.
    let flows = out.finished();
    assert!(!flows.is_empty());
    let summary = out.summary();
    assert_eq!(summary["final"], true);
    assert_eq!(summary["packets"], 39);
    let errors = summary["errors"].to_string();
    assert!(errors.contains(&format!("{NS}/{WEB}")) && errors.contains("truncated"), "{errors}");
    assert!(
        out.stderr.contains(&format!(
            "mtlscope: error: {NS}/{WEB}: the capture stream from container linkerd-debug ended \
             after {cut} bytes without the capture's exit status"
        )),
        "{}",
        out.stderr
    );
    // In the pod, the end of stdin stopped the capture: nothing left running.
    let s = &api.sessions()[0];
    assert!(s.cut && s.stdin.is_empty());
    assert!(gone(api.tcpdump_pid(WEB).unwrap()));
    assert_eq!(api.tcpdump_end(WEB).as_deref(), Some("stopped-by-sigterm"));
}

#[test]
fn pod_not_found_and_not_running() {
    let api = FakeApi::start();
    api.add_pod("pending-0", json!({}), &[("linkerd-debug", Tools::Tcpdump)], "http1_veth.pcap");
    {
        let mut st = api.state.lock().unwrap();
        let p = st.pods.get_mut("pending-0").unwrap();
        p["status"] = json!({"phase": "Pending", "reason": "Unschedulable"});
    }
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &["nope-0"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with(&format!(
            "mtlscope: error: pod nope-0 not found in namespace {NS}; list them with `kubectl get \
             pods -n {NS}`"
        )),
        "{}",
        out.stderr
    );
    let out = run(&kube(&api, &k, &["pending-0"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("pod {NS}/pending-0 is Pending, not Running (Unschedulable)")),
        "{}",
        out.stderr
    );
    let out = run(&kube(&api, &k, &["-l", "app=none"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no running pod in namespace emojivoto matches -l app=none"),
        "{}",
        out.stderr
    );
    assert!(api.sessions().is_empty(), "nothing was exec'd");
}

#[test]
fn a_pod_without_a_capture_container_says_what_to_do() {
    let api = FakeApi::start();
    api.add_pod(WEB, json!({}), &[("web", Tools::ShellOnly)], "http1_veth.pcap");
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &[WEB]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("has no capture container (no linkerd-debug sidecar; containers: web)")
            && out.stderr.contains("--ephemeral"),
        "{}",
        out.stderr
    );
}

// ---- ephemeral containers ----

#[test]
fn ephemeral_container_is_added_waited_for_and_captured_in() {
    let api = FakeApi::start();
    api.add_pod(WEB, json!({}), &[("web", Tools::ShellOnly)], "http1_veth.pcap");
    let k = api.kubeconfig();
    let count = packets_in("http1_veth.pcap").to_string();
    let out =
        run(&kube(&api, &k, &[WEB, "--ephemeral", "--image", "test/tcpdump:1", "--count", &count]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(verdicts(&out.finished()), expected("http1_veth.pcap"));
    let (ctype, patch) = api.state.lock().unwrap().patches[0].clone();
    assert_eq!(ctype, "application/strategic-merge-patch+json");
    let c = &patch["spec"]["ephemeralContainers"][0];
    assert_eq!(c["image"], "test/tcpdump:1");
    assert_eq!(c["securityContext"]["capabilities"]["add"], json!(["NET_RAW", "NET_ADMIN"]));
    let name = c["name"].as_str().unwrap();
    assert!(name.starts_with("mtlscope-debug-"), "{name}");
    // Exec'd into the new container once it ran (after it was seen waiting).
    let s = &api.sessions()[0];
    assert_eq!(s.container, name);
    let requests = api.state.lock().unwrap().requests.clone();
    let polls = requests
        .iter()
        .filter(|r| *r == &format!("GET /api/v1/namespaces/{NS}/pods/{WEB}"))
        .count();
    assert!(polls >= 3, "{requests:?}");
    assert!(out.stderr.contains("ephemeral containers cannot be removed"), "{}", out.stderr);

    // A second run reuses the running debug container: no new patch.
    let out =
        run(&kube(&api, &k, &[WEB, "--ephemeral", "--image", "test/tcpdump:1", "--count", &count]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(api.state.lock().unwrap().patches.len(), 1);
    assert_eq!(api.sessions()[1].container, name);
}

#[test]
fn ephemeral_image_pull_failure_names_the_image() {
    let api = FakeApi::start();
    api.add_pod(WEB, json!({}), &[("web", Tools::ShellOnly)], "http1_veth.pcap");
    api.state.lock().unwrap().ephemeral = EphemeralMode::PullFails;
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &[WEB, "--ephemeral", "--image", "registry.invalid/nope:1"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("in pod {NS}/{WEB} cannot pull image registry.invalid/nope:1 (ImagePullBackOff: Back-off pulling image"))
            && out.stderr.contains("--image"),
        "{}",
        out.stderr
    );
    assert!(api.sessions().is_empty());
}

#[test]
fn ephemeral_containers_forbidden_names_the_rbac_rule() {
    let api = FakeApi::start();
    api.add_pod(WEB, json!({}), &[("web", Tools::ShellOnly)], "http1_veth.pcap");
    api.state
        .lock()
        .unwrap()
        .forbidden
        .push(format!("/api/v1/namespaces/{NS}/pods/{WEB}/ephemeralcontainers"));
    let k = api.kubeconfig();
    let out = run(&kube(&api, &k, &[WEB, "--ephemeral"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("grant `patch` on `pods/ephemeralcontainers`")
            && out
                .stderr
                .contains(&format!("kubectl auth can-i patch pods/ephemeralcontainers -n {NS}")),
        "{}",
        out.stderr
    );
}
