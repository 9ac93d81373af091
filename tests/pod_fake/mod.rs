//! A fake Kubernetes API server for `mtlscope pod`: HTTPS on 127.0.0.1 with a CA and
//! certificates made at test time, a kubeconfig pointing at it, and kube's real `Config` and
//! `Client` in the binary under test. Nothing is mocked below HTTP/WebSocket.
//!
//! It serves `GET pods/NAME`, `GET pods?labelSelector=`, the `pods/NAME/ephemeralcontainers`
//! PATCH (the container then starts after two polls, or fails to pull), and `pods/NAME/exec`
//! as a real WebSocket upgrade speaking the channel protocol (`v5.channel.k8s.io` or
//! `v4.channel.k8s.io`: 0 stdin, 1 stdout, 2 stderr, 3 the exit `Status`, 255 close).
//!
//! **The container** is a directory on this machine: exec runs the requested command there
//! with `PATH` set to the container's bin directory and nothing else, like the container
//! runtime would. So the real wrapper script mtlscope sends runs under the real `sh`, and
//! finds (or not) the container's `tcpdump`: a shell script that writes a fixture capture, a
//! packet at a time with a pause, as `tcpdump -U -w -` would, then idles like a quiet
//! interface until it gets SIGTERM, noting how it ended and its pid in a state directory.
//! Every process the server starts is its child, killed on drop; the pid files let tests
//! prove nothing was left running.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

pub const NS: &str = "emojivoto";

// ---- certificates ----

#[path = "../support/http.rs"]
mod support_http;
#[path = "../support/pki.rs"]
mod support_pki;
use support_pki::{pki, Pki};

// ---- what the server holds ----

/// A container's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tools {
    /// sh, cat, sleep and the fake tcpdump.
    Tcpdump,
    /// sh, cat, sleep: a shell but no capture tool.
    ShellOnly,
    /// Nothing at all (distroless).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralMode {
    /// Waiting (ContainerCreating) for two polls, then running, with tcpdump.
    Starts,
    /// ImagePullBackOff.
    PullFails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V4,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
        }
    }
}

/// One exec session as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub protocol: String,
    /// Every byte that came on the stdin channel.
    pub stdin: Vec<u8>,
    /// A v5 CLOSE for stdin came.
    pub stdin_closed: bool,
    /// The client closed the WebSocket (or the connection) before the command ended.
    pub client_left: bool,
    pub exit: Option<i32>,
    /// The stdout bytes sent.
    pub sent: u64,
    /// The server cut the connection mid-stream (the test asked for it).
    pub cut: bool,
}

pub struct State {
    pub pods: HashMap<String, Value>,
    /// (pod, container) -> tools.
    pub tools: HashMap<(String, String), Tools>,
    /// Pod -> the fixture its tcpdump streams.
    pub fixture: HashMap<String, PathBuf>,
    pub protocol: Protocol,
    pub ephemeral: EphemeralMode,
    /// Paths answered 403 (exact path, any method).
    pub forbidden: Vec<String>,
    /// Cut the named pod's stream after this many stdout bytes.
    pub cut: Option<(String, u64)>,
    /// Pause between packets of the fake tcpdump (a `sleep` argument).
    pub pause: String,
    pub sessions: Vec<Session>,
    /// `METHOD path?query` of every request.
    pub requests: Vec<String>,
    /// (Content-Type, body) of every PATCH.
    pub patches: Vec<(String, Value)>,
    /// GETs of a pod since its ephemeral container was added.
    polls: HashMap<String, u32>,
}

pub struct FakeApi {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pki: Pki,
    pub state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let pki = pki();
        let tls = pki.server_config(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(Mutex::new(State {
            pods: HashMap::new(),
            tools: HashMap::new(),
            fixture: HashMap::new(),
            protocol: Protocol::V5,
            ephemeral: EphemeralMode::Starts,
            forbidden: Vec::new(),
            cut: None,
            pause: "0.01".into(),
            sessions: Vec::new(),
            requests: Vec::new(),
            patches: Vec::new(),
            polls: HashMap::new(),
        }));
        let env = Arc::new(Env { root: dir.path().to_path_buf(), state: state.clone() });
        make_bins(dir.path());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let (acceptor, env) = (acceptor.clone(), env.clone());
                            tokio::spawn(async move {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    serve(tls, &env).await;
                                }
                            });
                        }
                    }
                }
            });
            // Dropping the runtime cancels every connection; their children are killed on drop.
        });
        FakeApi { addr, dir, pki, state, stop: Some(stop), thread: Some(thread) }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        let d = self.dir.path();
        std::fs::write(d.join("ca.pem"), &self.pki.ca_pem).unwrap();
        std::fs::write(d.join("client.pem"), &self.pki.client_pem).unwrap();
        std::fs::write(d.join("client-key.pem"), &self.pki.client_key_pem).unwrap();
        let text = format!(
            "apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster: {{server: 'https://{}', certificate-authority: ca.pem}}
users:
- name: admin
  user: {{client-certificate: client.pem, client-key: client-key.pem}}
contexts:
- name: fake
  context: {{cluster: fake, user: admin, namespace: {NS}}}
",
            self.addr
        );
        let path = d.join("kubeconfig.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A running pod with these containers (name, tools) streaming `fixture` when captured in.
    pub fn add_pod(&self, name: &str, labels: Value, containers: &[(&str, Tools)], fixture: &str) {
        let specs: Vec<Value> =
            containers.iter().map(|(c, _)| json!({"name": c, "image": "app:1"})).collect();
        let statuses: Vec<Value> = containers.iter().map(|(c, _)| running_status(c)).collect();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels, "uid": format!("uid-{name}")},
            "spec": {"containers": specs},
            "status": {"phase": "Running", "podIP": "10.77.0.2", "containerStatuses": statuses},
        });
        let mut st = self.state.lock().unwrap();
        st.pods.insert(name.into(), pod);
        for (c, t) in containers {
            st.tools.insert((name.into(), c.to_string()), *t);
        }
        st.fixture.insert(name.into(), fixture_path(fixture));
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.state.lock().unwrap().sessions.clone()
    }

    /// How the pod's fake tcpdump ended (`stopped-by-sigterm`, `count-reached`), if it did.
    pub fn tcpdump_end(&self, pod: &str) -> Option<String> {
        std::fs::read_to_string(self.state_dir(pod).join("tcpdump.end"))
            .ok()
            .map(|s| s.trim().into())
    }

    /// The pod's fake tcpdump's pid, once it started.
    pub fn tcpdump_pid(&self, pod: &str) -> Option<u32> {
        std::fs::read_to_string(self.state_dir(pod).join("tcpdump.pid")).ok()?.trim().parse().ok()
    }

    pub fn state_dir(&self, pod: &str) -> PathBuf {
        let d = self.dir.path().join("state").join(pod);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn running_status(c: &str) -> Value {
    json!({"name": c, "image": "app:1", "imageID": "", "ready": true, "restartCount": 0,
           "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}})
}

/// The fake tcpdump (see the module doc).
const FAKE_TCPDUMP: &str = r#"#!/bin/sh
count=0
while [ $# -gt 0 ]; do
  if [ "$1" = "-c" ]; then count=$2; shift; fi
  shift
done
echo $$ > "$FAKE_STATE/tcpdump.pid"
n=0
trap 'kill $s 2>/dev/null; echo "$n packets captured" >&2; echo stopped-by-sigterm > "$FAKE_STATE/tcpdump.end"; exit 0' TERM
echo "tcpdump: listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes" >&2
for f in "$FAKE_PARTS"/*; do
  cat "$f"
  case "$f" in *header) ;; *) n=$((n+1)) ;; esac
  if [ "$count" -gt 0 ] && [ "$n" -ge "$count" ]; then
    echo "$n packets captured" >&2
    echo count-reached > "$FAKE_STATE/tcpdump.end"
    exit 0
  fi
  sleep "$FAKE_PAUSE"
done
sleep 60 &
s=$!
wait $s
echo idle-timeout > "$FAKE_STATE/tcpdump.end"
"#;

fn make_bins(root: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    for (name, tools) in
        [("tcpdump", Tools::Tcpdump), ("shell", Tools::ShellOnly), ("none", Tools::Nothing)]
    {
        let d = root.join("bin").join(name);
        std::fs::create_dir_all(&d).unwrap();
        if tools == Tools::Nothing {
            continue;
        }
        for tool in ["sh", "cat", "sleep"] {
            let real = which(tool);
            symlink(real, d.join(tool)).unwrap();
        }
        if tools == Tools::Tcpdump {
            let p = d.join("tcpdump");
            std::fs::write(&p, FAKE_TCPDUMP).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

fn which(tool: &str) -> PathBuf {
    for dir in ["/bin", "/usr/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} not found in /bin or /usr/bin");
}

fn bin_dir(root: &Path, tools: Tools) -> PathBuf {
    root.join("bin").join(match tools {
        Tools::Tcpdump => "tcpdump",
        Tools::ShellOnly => "shell",
        Tools::Nothing => "none",
    })
}

/// Splits a classic pcap into its header and one file per record, in order.
pub fn split_pcap(fixture: &Path, out: &Path) -> Vec<u64> {
    let bytes = std::fs::read(fixture).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    let be = matches!(magic, 0xd4c3_b2a1 | 0x4d3c_b2a1);
    assert!(be || matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d), "not a classic pcap");
    std::fs::write(out.join("00000-header"), &bytes[..24]).unwrap();
    let mut ends = vec![24u64];
    let mut at = 24;
    let mut i = 1;
    while at + 16 <= bytes.len() {
        let f: [u8; 4] = bytes[at + 8..at + 12].try_into().unwrap();
        let incl = if be { u32::from_be_bytes(f) } else { u32::from_le_bytes(f) } as usize;
        let end = at + 16 + incl;
        std::fs::write(out.join(format!("{i:05}")), &bytes[at..end]).unwrap();
        ends.push(end as u64);
        at = end;
        i += 1;
    }
    ends
}

// ---- HTTP ----

struct Env {
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    /// Every value of a query parameter, percent-decoded, in order.
    fn params(&self, key: &str) -> Vec<String> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(mut io: S, env: &Env) {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = support_http::read_head(&mut io, &mut buf).await else { return };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(&buf[..head_end]).is_err() {
            return;
        }
        let head = Head {
            method: req.method.unwrap_or("GET").into(),
            target: req.path.unwrap_or("/").into(),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).to_string()))
                .collect(),
        };
        buf.drain(..head_end);
        let len: usize = head.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        while buf.len() < len {
            let mut chunk = [0u8; 4096];
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        env.state.lock().unwrap().requests.push(format!("{} {}", head.method, head.target));
        let forbidden = env.state.lock().unwrap().forbidden.iter().any(|p| p == head.path());
        if forbidden {
            let verb = if head.path().ends_with("/exec") { "create" } else { "patch" };
            let msg = format!(
                "pods is forbidden: User \"mtlscope-test\" cannot {verb} resource \"pods/x\" in \
                 API group \"\" in the namespace \"{NS}\""
            );
            if !reply(&mut io, 403, status(403, "Forbidden", &msg)).await {
                return;
            }
            continue;
        }
        if head.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            exec(io, &head, env).await;
            return;
        }
        let (code, body) = answer(&head, &body, env);
        if !reply(&mut io, code, body).await {
            return;
        }
    }
}

async fn reply<S: AsyncWrite + Unpin>(io: &mut S, code: u16, body: Value) -> bool {
    let body = body.to_string();
    let reason = match code {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    io.write_all(head.as_bytes()).await.is_ok()
        && io.write_all(body.as_bytes()).await.is_ok()
        && io.flush().await.is_ok()
}

pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn not_found(what: &str) -> (u16, Value) {
    (404, status(404, "NotFound", &format!("pods \"{what}\" not found")))
}

/// Plain requests: get, list and the ephemeral containers patch.
fn answer(head: &Head, body: &[u8], env: &Env) -> (u16, Value) {
    let prefix = format!("/api/v1/namespaces/{NS}/pods");
    let Some(rest) = head.path().strip_prefix(&prefix) else {
        return (404, status(404, "NotFound", "the server could not find the requested resource"));
    };
    let mut st = env.state.lock().unwrap();
    let segs: Vec<&str> =
        rest.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match (head.method.as_str(), segs.as_slice()) {
        ("GET", []) => {
            let selector = head.params("labelSelector").pop().unwrap_or_default();
            let (k, v) = selector.split_once('=').unwrap_or(("", ""));
            let mut names: Vec<&String> = st.pods.keys().collect();
            names.sort();
            let items: Vec<Value> = names
                .into_iter()
                .map(|n| st.pods[n].clone())
                .filter(|p| k.is_empty() || p["metadata"]["labels"][k] == v)
                .collect();
            (
                200,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        ("GET", [name]) => {
            let name = name.to_string();
            let Some(mut pod) = st.pods.get(&name).cloned() else { return not_found(&name) };
            if let Some(n) = st.polls.get_mut(&name) {
                *n += 1;
                let polls = *n;
                let mode = st.ephemeral;
                let statuses = pod["status"]["ephemeralContainerStatuses"].as_array_mut();
                for s in statuses.into_iter().flatten() {
                    match mode {
                        EphemeralMode::Starts if polls >= 2 => {
                            s["state"] = json!({"running": {"startedAt": "2025-01-01T00:00:00Z"}})
                        }
                        EphemeralMode::PullFails => {
                            s["state"] = json!({"waiting": {"reason": "ImagePullBackOff",
                                "message": "Back-off pulling image \"registry.invalid/nope:1\""}})
                        }
                        _ => {}
                    }
                }
                st.pods.insert(name, pod.clone());
            }
            (200, pod)
        }
        ("PATCH", [name, "ephemeralcontainers"]) => {
            let name = name.to_string();
            let patch: Value = serde_json::from_slice(body).unwrap();
            let ctype = head.header("content-type").unwrap_or_default().to_string();
            st.patches.push((ctype, patch.clone()));
            let Some(mut pod) = st.pods.get(&name).cloned() else { return not_found(&name) };
            for c in patch["spec"]["ephemeralContainers"].as_array().into_iter().flatten() {
                let cname = c["name"].as_str().unwrap().to_string();
                pod["spec"]["ephemeralContainers"]
                    .as_array_mut()
                    .map(|a| a.push(c.clone()))
                    .unwrap_or_else(|| pod["spec"]["ephemeralContainers"] = json!([c]));
                let s = json!({"name": cname, "image": c["image"], "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}});
                pod["status"]["ephemeralContainerStatuses"]
                    .as_array_mut()
                    .map(|a| a.push(s.clone()))
                    .unwrap_or_else(|| pod["status"]["ephemeralContainerStatuses"] = json!([s]));
                st.tools.insert((name.clone(), cname), Tools::Tcpdump);
            }
            st.polls.insert(name.clone(), 0);
            st.pods.insert(name, pod.clone());
            (200, pod)
        }
        _ => (404, status(404, "NotFound", "the server could not find the requested resource")),
    }
}

// ---- exec over WebSocket ----

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

async fn exec<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut io: S,
    head: &Head,
    env: &Env,
) {
    let segs: Vec<&str> = head.path().split('/').collect();
    let pod = segs.get(segs.len().wrapping_sub(2)).copied().unwrap_or_default().to_string();
    let container = head.params("container").pop().unwrap_or_default();
    let command = head.params("command");
    let (tools, fixture, protocol, cut, pause) = {
        let st = env.state.lock().unwrap();
        (
            st.tools.get(&(pod.clone(), container.clone())).copied(),
            st.fixture.get(&pod).cloned(),
            st.protocol,
            st.cut.clone().filter(|(p, _)| *p == pod).map(|(_, n)| n),
            st.pause.clone(),
        )
    };
    let Some(tools) = tools else {
        let msg = format!("container {container} is not valid for pod {pod}");
        let _ = reply(&mut io, 400, status(400, "BadRequest", &msg)).await;
        return;
    };
    let offered = head.header("sec-websocket-protocol").unwrap_or_default();
    assert!(offered.contains(protocol.name()), "client offered {offered}");
    let key = head.header("sec-websocket-key").unwrap_or_default();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let switching = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
        protocol.name()
    );
    if io.write_all(switching.as_bytes()).await.is_err() {
        return;
    }
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        io,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        None,
    )
    .await;
    let index = {
        let mut st = env.state.lock().unwrap();
        st.sessions.push(Session {
            pod: pod.clone(),
            container: container.clone(),
            command: command.clone(),
            protocol: protocol.name().into(),
            ..Session::default()
        });
        st.sessions.len() - 1
    };
    let log = |f: &dyn Fn(&mut Session)| f(&mut env.state.lock().unwrap().sessions[index]);
    let (mut tx, mut rx) = ws.split();
    // The API server opens each channel with a one-byte message.
    for ch in [STDOUT, STDERR] {
        let _ = tx.send(Message::binary(vec![ch])).await;
    }
    let bin = bin_dir(&env.root, tools);
    let program = command.first().map(|c| bin.join(c));
    let Some(program) = program.filter(|p| p.exists()) else {
        let c = command.first().cloned().unwrap_or_default();
        let msg = format!(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \
             \"{c}\": executable file not found in $PATH: unknown"
        );
        let mut st = status(500, "InternalError", &msg);
        st["details"] = json!({"causes": [{"message": msg}]});
        st.as_object_mut().unwrap().remove("code");
        let _ = tx.send(Message::binary([&[ERROR][..], st.to_string().as_bytes()].concat())).await;
        let _ = tx.close().await;
        return;
    };
    let state_dir = env.root.join("state").join(&pod);
    std::fs::create_dir_all(&state_dir).unwrap();
    let parts = env.root.join("parts").join(&pod);
    if let Some(f) = &fixture {
        if !parts.exists() {
            split_pcap(f, &parts);
        }
    }
    let mut child = tokio::process::Command::new(&program)
        .args(&command[1..])
        .env_clear()
        .env("PATH", &bin)
        .env("FAKE_STATE", &state_dir)
        .env("FAKE_PARTS", &parts)
        .env("FAKE_PAUSE", &pause)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    for (ch, pipe) in [
        (STDOUT, Box::new(child.stdout.take().unwrap()) as Box<dyn AsyncRead + Unpin + Send>),
        (STDERR, Box::new(child.stderr.take().unwrap())),
    ] {
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            let mut pipe = pipe;
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 || out_tx.send((ch, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(out_tx);
    let mut sent = 0u64;
    let mut outputs_open = true;
    while outputs_open {
        tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&STDIN) => {
                    log(&|s| s.stdin.extend_from_slice(&b[1..]));
                    if let Some(w) = &mut stdin {
                        let _ = w.write_all(&b[1..]).await;
                        let _ = w.flush().await;
                    }
                }
                Some(Ok(Message::Binary(b))) if b.as_ref() == [CLOSE, STDIN] => {
                    log(&|s| s.stdin_closed = true);
                    stdin = None;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away: like the kubelet, end the command's stdin.
                    log(&|s| s.client_left = true);
                    drop(stdin.take());
                    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            out = out_rx.recv() => match out {
                Some((ch, mut bytes)) => {
                    let mut cut_now = false;
                    if ch == STDOUT {
                        if let Some(limit) = cut {
                            if sent + bytes.len() as u64 >= limit {
                                bytes.truncate((limit - sent) as usize);
                                cut_now = true;
                            }
                        }
                        sent += bytes.len() as u64;
                        log(&|s| s.sent = sent);
                    }
                    let msg = [&[ch][..], &bytes].concat();
                    if tx.send(Message::binary(msg)).await.is_err() {
                        return;
                    }
                    if cut_now {
                        // Gone mid-stream, no status, no close frame: drop the connection and
                        // end the command's stdin as the kubelet would.
                        log(&|s| s.cut = true);
                        drop(tx);
                        drop(rx);
                        drop(stdin.take());
                        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                        return;
                    }
                }
                None => outputs_open = false,
            },
        }
    }
    let code = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .ok()
        .and_then(|r| r.ok())
        .and_then(|s| s.code())
        .unwrap_or(-1);
    log(&|s| s.exit = Some(code));
    let st = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        let cmd = command.join(" ");
        json!({"metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [{cmd}], exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
    };
    let _ = tx.send(Message::binary([&[ERROR][..], st.to_string().as_bytes()].concat())).await;
    let _ = tx.close().await;
}
