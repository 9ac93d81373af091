//! The live inventory against a fake Kubernetes API server started by each test: HTTPS on
//! 127.0.0.1 with a CA, server and client certificates made at test time, a kubeconfig file
//! pointing at it, and kube's real config loading and `Client`. Nothing is mocked below HTTP.
//! The server answers the list calls with real-shaped JSON (typed lists, `resourceVersion`,
//! `continue` tokens, pages of at most 4 items) built from tests/data/inventory/cluster.json,
//! and errors with real `Status` bodies.

use mtlscope::inventory::live::{fetch_blocking, KubeOptions, LiveError, Namespaces};
use mtlscope::inventory::{Inventory, Sources};
use mtlscope::Timestamp;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const PAGE: usize = 4;
const TOKEN: &str = "good-token";

// ---- certificates ----

#[path = "support/http.rs"]
mod support_http;
#[path = "support/pki.rs"]
mod support_pki;
use support_pki::{pki, Pki};

// ---- the fake API server ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The TLS handshake requires a client certificate from the test CA.
    ClientCert,
    /// `Authorization: Bearer good-token`; anything else gets 401.
    Token,
}

struct Request {
    path: String,
    query: Vec<(String, String)>,
}

impl Request {
    fn param(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str())
    }
}

enum Reply {
    Json(u16, Value),
    /// Never answer (until the server stops).
    Hang,
}

/// Decides the answer before the default cluster data is served; `None` serves the data.
type Override = Box<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;

struct FakeApi {
    addr: SocketAddr,
    pki: Pki,
    dir: tempfile::TempDir,
    /// `path?query` of every request, in arrival order.
    seen: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    fn start(auth: Auth, over: Override) -> FakeApi {
        let pki = pki();
        let tls = pki.server_config(matches!(auth, Auth::ClientCert));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = Arc::new(Handler { auth, over, data: cluster_data(), seen: seen.clone() });
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let (acceptor, handler) = (acceptor.clone(), handler.clone());
                            tokio::spawn(async move {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    serve(tls, &handler).await;
                                }
                            });
                        }
                    }
                }
            });
            // Dropping the runtime cancels the connections still open (the hanging ones).
        });
        let dir = tempfile::tempdir().unwrap();
        FakeApi { addr, pki, dir, seen, stop: Some(stop), thread: Some(thread) }
    }

    fn server(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kubeconfig with context `fake` (the client certificate and the token both, so either
    /// server mode accepts it), `fake-shop` (namespace shop), `fake-expired` (a stale token)
    /// and `fake-other-ca` (trusts another CA).
    fn kubeconfig(&self) -> PathBuf {
        let d = self.dir.path();
        std::fs::write(d.join("ca.pem"), &self.pki.ca_pem).unwrap();
        std::fs::write(d.join("other-ca.pem"), pki().ca_pem).unwrap();
        std::fs::write(d.join("client.pem"), &self.pki.client_pem).unwrap();
        std::fs::write(d.join("client-key.pem"), &self.pki.client_key_pem).unwrap();
        let server = self.server();
        let text = format!(
            "apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster: {{server: '{server}', certificate-authority: ca.pem}}
- name: fake-other-ca
  cluster: {{server: '{server}', certificate-authority: other-ca.pem}}
users:
- name: admin
  user: {{client-certificate: client.pem, client-key: client-key.pem, token: {TOKEN}}}
- name: expired
  user: {{token: expired-token}}
contexts:
- name: fake
  context: {{cluster: fake, user: admin}}
- name: fake-shop
  context: {{cluster: fake, user: admin, namespace: shop}}
- name: fake-expired
  context: {{cluster: fake, user: expired}}
- name: fake-other-ca
  context: {{cluster: fake-other-ca, user: admin}}
"
        );
        let path = d.join("kubeconfig.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn options(&self, context: &str, namespaces: Namespaces) -> KubeOptions {
        KubeOptions {
            kubeconfig: Some(self.kubeconfig()),
            context: Some(context.into()),
            namespaces,
            request_timeout: Some(Duration::from_secs(5)),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The paths asked for, without queries.
    fn paths(&self) -> BTreeSet<String> {
        self.seen().iter().map(|s| s.split('?').next().unwrap_or_default().to_string()).collect()
    }
}

impl FakeApi {
    /// Stops listening and closes every connection (bounded: the accept loop ends at once and
    /// dropping its runtime cancels the connection tasks).
    fn stop(&mut self) {
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

struct Handler {
    auth: Auth,
    over: Override,
    /// Objects by list kind (`PodList`, ...), as the API server stores them.
    data: Vec<(&'static str, Vec<Value>)>,
    seen: Arc<Mutex<Vec<String>>>,
}

/// HTTP/1.1 with keep-alive: requests without bodies, answers with Content-Length.
async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: S, h: &Handler) {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = support_http::read_head(&mut io, &mut buf).await else { return };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(&buf[..head_end]).is_err() {
            return;
        }
        let target = req.path.unwrap_or("/").to_string();
        let bearer = req
            .headers
            .iter()
            .find(|hd| hd.name.eq_ignore_ascii_case("authorization"))
            .map(|hd| String::from_utf8_lossy(hd.value).to_string());
        buf.drain(..head_end);
        h.seen.lock().unwrap().push(target.clone());
        let reply =
            if h.auth == Auth::Token && bearer.as_deref() != Some(&format!("Bearer {TOKEN}")) {
                Reply::Json(401, status(401, "Unauthorized", "Unauthorized"))
            } else {
                let r = request(&target);
                (h.over)(&r).unwrap_or_else(|| h.list(&r))
            };
        match reply {
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
            Reply::Json(code, body) => {
                let body = body.to_string();
                let head = format!(
                    "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nCache-Control: no-cache, private\r\n\r\n",
                    reason(code),
                    body.len()
                );
                let written = io.write_all(head.as_bytes()).await;
                if written.is_err() || io.write_all(body.as_bytes()).await.is_err() {
                    return;
                }
                let _ = io.flush().await;
            }
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    }
}

fn request(target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.replace("%3D", "=").replace("%2F", "/"))
        })
        .collect();
    Request { path: path.to_string(), query }
}

/// A Kubernetes `Status` body, as the API server sends it with an error.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

fn forbidden(resource: &str, namespace: Option<&str>) -> Reply {
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{resource} is forbidden: User \"system:serviceaccount:x:y\" cannot list resource \
         \"{resource}\" in API group \"\" {scope}"
    );
    let mut body = status(403, "Forbidden", &message);
    body["details"] = json!({ "kind": resource });
    Reply::Json(403, body)
}

impl Handler {
    /// `GET /api/v1/[namespaces/NS/]pods` and friends, a page at a time.
    fn list(&self, r: &Request) -> Reply {
        let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        let (api_version, rest) = match segs.as_slice() {
            ["api", "v1", rest @ ..] => ("v1", rest),
            ["apis", "discovery.k8s.io", "v1", rest @ ..] => ("discovery.k8s.io/v1", rest),
            _ => {
                return Reply::Json(
                    404,
                    status(404, "NotFound", "the server could not find the requested resource"),
                )
            }
        };
        let (namespace, resource) = match rest {
            ["namespaces", ns, resource] => (Some(*ns), *resource),
            [resource] => (None, *resource),
            _ => return Reply::Json(404, status(404, "NotFound", "not found")),
        };
        let kind = match resource {
            "pods" => "PodList",
            "services" => "ServiceList",
            "endpointslices" => "EndpointSliceList",
            "nodes" => "NodeList",
            "namespaces" => "NamespaceList",
            _ => return Reply::Json(404, status(404, "NotFound", "not found")),
        };
        let all = &self.data.iter().find(|(k, _)| *k == kind).unwrap().1;
        let field = r.param("fieldSelector").and_then(|f| f.strip_prefix("metadata.name="));
        let items: Vec<&Value> = all
            .iter()
            .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
            .filter(|o| field.is_none_or(|name| o["metadata"]["name"] == name))
            .collect();
        assert!(r.param("limit").is_some(), "list without a limit: {}", r.path);
        let from: usize =
            r.param("continue").map_or(0, |c| c.trim_start_matches("c").parse().unwrap());
        let page: Vec<&Value> = items.iter().skip(from).take(PAGE).copied().collect();
        let mut metadata = json!({ "resourceVersion": "4242" });
        if from + PAGE < items.len() {
            metadata["continue"] = json!(format!("c{}", from + PAGE));
        }
        Reply::Json(
            200,
            json!({ "kind": kind, "apiVersion": api_version, "metadata": metadata, "items": page }),
        )
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/inventory").join(name)
}

fn namespaces() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "uid": "ns-0"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "uid": "ns-1",
            "annotations": {"linkerd.io/inject": "enabled"}}}),
    ]
}

/// cluster.json's objects by list kind, without `apiVersion` and `kind` (the API server leaves
/// them out of list items), plus two namespaces.
fn cluster_data() -> Vec<(&'static str, Vec<Value>)> {
    let file: Value =
        serde_json::from_slice(&std::fs::read(data("cluster.json")).unwrap()).unwrap();
    let items = file["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(namespaces().iter())
        .cloned()
        .collect::<Vec<_>>();
    ["Pod", "Service", "EndpointSlice", "Node", "Namespace"]
        .into_iter()
        .map(|kind| {
            let of_kind = items
                .iter()
                .filter(|o| o["kind"] == kind)
                .map(|o| {
                    let mut o = o.clone();
                    let m = o.as_object_mut().unwrap();
                    m.remove("kind");
                    m.remove("apiVersion");
                    o
                })
                .collect();
            (list_kind(kind), of_kind)
        })
        .collect()
}

fn list_kind(kind: &str) -> &'static str {
    match kind {
        "Pod" => "PodList",
        "Service" => "ServiceList",
        "EndpointSlice" => "EndpointSliceList",
        "Node" => "NodeList",
        _ => "NamespaceList",
    }
}

fn no_override() -> Override {
    Box::new(|_| None)
}

/// The same objects read from the files, for comparison.
fn file_inventory() -> Inventory {
    let mut s = Sources::new();
    s.load_file(&data("cluster.json")).unwrap();
    s.load(
        "namespaces",
        json!({"kind": "List", "apiVersion": "v1", "items": namespaces()}).to_string().as_bytes(),
    )
    .unwrap();
    Inventory::build(&s)
}

fn pod_at(inv: &Inventory, ip: &str) -> String {
    let e = inv.resolve(ip.parse().unwrap(), Timestamp(0));
    let p = e.pod().unwrap_or_else(|| panic!("{ip} is not a pod: {e:?}"));
    format!("{}/{} {}", p.namespace, p.workload, p.mesh.mesh)
}

// ---- listing ----

#[test]
fn client_certificate_all_namespaces_lists_and_maps_the_pods() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let sources = fetch_blocking(&api.options("fake", Namespaces::All)).unwrap();
    assert!(sources.warnings.is_empty(), "{:?}", sources.warnings);
    let inv = Inventory::build(&sources);
    assert_eq!((inv.pods().len(), inv.services().len(), inv.nodes().len()), (10, 3, 2));
    assert_eq!(pod_at(&inv, "10.77.0.1"), "shop/frontend linkerd");
    assert_eq!(pod_at(&inv, "10.77.0.2"), "shop/payments linkerd");
    // The very inventory the same objects give from files.
    assert_eq!(inv.to_json(), file_inventory().to_json());
    let paths: Vec<String> = api.paths().into_iter().collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces",
            "/api/v1/nodes",
            "/api/v1/pods",
            "/api/v1/services",
            "/apis/discovery.k8s.io/v1/endpointslices",
        ]
    );
    // 10 pods in pages of 4: two continue tokens followed.
    let pods: Vec<String> =
        api.seen().into_iter().filter(|s| s.starts_with("/api/v1/pods?")).collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(pods[1].contains("continue=c4") && pods[2].contains("continue=c8"), "{pods:?}");
}

#[test]
fn bearer_token_namespace_flag_lists_that_namespace_only() {
    let api = FakeApi::start(Auth::Token, no_override());
    let sources = fetch_blocking(&api.options("fake", Namespaces::One("shop".into()))).unwrap();
    let inv = Inventory::build(&sources);
    assert!(inv.pods().iter().all(|p| p.namespace == "shop"));
    assert_eq!(pod_at(&inv, "10.77.0.2"), "shop/payments linkerd");
    assert!(inv.resolve("10.77.0.4".parse().unwrap(), Timestamp(0)).pod().is_none(), "bookinfo");
    let paths: Vec<String> = api.paths().into_iter().collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces",
            "/api/v1/namespaces/shop/pods",
            "/api/v1/namespaces/shop/services",
            "/api/v1/nodes",
            "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices",
        ]
    );
    let ns = api.seen().into_iter().find(|s| s.starts_with("/api/v1/namespaces?")).unwrap();
    assert!(ns.contains("fieldSelector=metadata.name%3Dshop"), "{ns}");
    let namespaces =
        sources.objects.iter().filter(|o| matches!(o, mtlscope::inventory::Object::Namespace(_)));
    assert_eq!(namespaces.count(), 1);
}

#[test]
fn without_namespace_flag_the_contexts_namespace_is_used() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    fetch_blocking(&api.options("fake-shop", Namespaces::ContextDefault)).unwrap();
    assert!(api.paths().contains("/api/v1/namespaces/shop/pods"), "{:?}", api.paths());
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let sources = fetch_blocking(&api.options("fake", Namespaces::ContextDefault)).unwrap();
    assert!(api.paths().contains("/api/v1/namespaces/default/pods"), "{:?}", api.paths());
    assert_eq!(
        sources.warnings,
        ["context fake: no pods in namespace default (another one with -n NAMESPACE, or all with -A?)"]
    );
}

// ---- errors ----

#[test]
fn rejected_credentials_say_so() {
    let api = FakeApi::start(Auth::Token, no_override());
    let e = fetch_blocking(&api.options("fake-expired", Namespaces::All)).unwrap_err();
    assert!(matches!(e, LiveError::Unauthorized { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "the credentials for context fake-expired were rejected by {} (401 Unauthorized: \
             expired token or certificate?); log in again or refresh the kubeconfig",
            api.server()
        )
    );
}

#[test]
fn forbidden_pods_name_the_grant() {
    let over: Override = Box::new(|r| {
        (r.path == "/api/v1/namespaces/shop/pods").then(|| forbidden("pods", Some("shop")))
    });
    let api = FakeApi::start(Auth::ClientCert, over);
    let e = fetch_blocking(&api.options("fake", Namespaces::One("shop".into()))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not allowed to list pods in namespace shop (403 Forbidden: pods is forbidden: User \
         \"system:serviceaccount:x:y\" cannot list resource \"pods\" in API group \"\" in the \
         namespace \"shop\"); grant list on pods in namespace shop to this user, check with \
         `kubectl auth can-i list pods -n shop`"
    );
}

#[test]
fn forbidden_nodes_and_namespaces_are_warnings() {
    let over: Override = Box::new(|r| match r.path.as_str() {
        "/api/v1/nodes" => Some(forbidden("nodes", None)),
        "/api/v1/namespaces" => Some(forbidden("namespaces", None)),
        _ => None,
    });
    let api = FakeApi::start(Auth::ClientCert, over);
    let sources = fetch_blocking(&api.options("fake", Namespaces::All)).unwrap();
    let inv = Inventory::build(&sources);
    assert_eq!(pod_at(&inv, "10.77.0.1"), "shop/frontend linkerd");
    assert_eq!(inv.nodes().iter().filter(|n| !n.inferred).count(), 0);
    assert_eq!(sources.warnings.len(), 2, "{:?}", sources.warnings);
    assert!(
        sources.warnings[0].starts_with(
            "context fake: not allowed to list nodes (cluster-scoped), so node addresses are unknown"
        ),
        "{}",
        sources.warnings[0]
    );
    assert!(sources.warnings[1].contains("grant list on namespaces"), "{}", sources.warnings[1]);
}

#[test]
fn a_hanging_server_times_out() {
    let over: Override = Box::new(|r| r.path.ends_with("/pods").then_some(Reply::Hang));
    let api = FakeApi::start(Auth::ClientCert, over);
    let mut opts = api.options("fake", Namespaces::All);
    opts.request_timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let e = fetch_blocking(&opts).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(matches!(e, LiveError::Timeout { resource: "pods", .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("listing pods at {} took longer than 300ms", api.server())),
        "{e}"
    );
}

#[test]
fn an_unreachable_server_is_named_with_the_cause() {
    let mut api = FakeApi::start(Auth::ClientCert, no_override());
    let opts = api.options("fake", Namespaces::All);
    let server = api.server();
    api.stop(); // nothing listens on the port any more
    let e = fetch_blocking(&opts).unwrap_err();
    assert!(matches!(e, LiveError::Unreachable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Kubernetes API server at {server} (context fake): "
        )),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let e = fetch_blocking(&api.options("fake-other-ca", Namespaces::All)).unwrap_err();
    assert!(matches!(e, LiveError::UntrustedServer { .. }), "{e:?}");
    let msg = e.to_string();
    let start = format!(
        "the API server at {} (context fake-other-ca) presented a certificate",
        api.server()
    );
    assert!(msg.starts_with(&start) && msg.contains("invalid peer certificate"), "{msg}");
}

// ---- the command ----

fn mtlscope(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn inventory_command_archives_what_analyze_reads() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let kubeconfig = api.kubeconfig();
    let out = api.dir.path().join("inventory.json");
    let (k, o) = (kubeconfig.to_str().unwrap(), out.to_str().unwrap());
    let (code, stdout, stderr) =
        mtlscope(&["inventory", "--kubeconfig", k, "--context", "fake", "-A", "-o", o]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    // What `analyze --inventory` does with the file: Sources::load_file, then build.
    let mut back = Sources::new();
    back.load_file(&out).unwrap();
    assert_eq!(Inventory::build(&back).to_json(), file_inventory().to_json());
    // The binary itself reads the archive back.
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mixed_any_sll2.pcap");
    let (code, stdout, stderr) =
        mtlscope(&["analyze", "--inventory", o, "--format", "json", capture.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("frontend"), "{stdout}");

    // --resolved: the mtlscope-inventory/v1 view, on stdout.
    let (code, stdout, _) =
        mtlscope(&["inventory", "--kubeconfig", k, "--context", "fake", "-A", "--resolved"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["schema"], "mtlscope-inventory/v1");
    assert_eq!(v["pods"].as_array().unwrap().len(), 10);
}

#[test]
fn inventory_command_errors_exit_2_with_one_line() {
    let api = FakeApi::start(Auth::Token, no_override());
    let k = api.kubeconfig();
    let out = api.dir.path().join("never.json");
    let (code, stdout, stderr) = mtlscope(&[
        "inventory",
        "--kubeconfig",
        k.to_str().unwrap(),
        "--context",
        "fake-expired",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr
            .starts_with("mtlscope: error: the credentials for context fake-expired were rejected"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!out.exists(), "no file is written on failure");
    let (code, _, stderr) =
        mtlscope(&["inventory", "--kubeconfig", k.to_str().unwrap(), "--context", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("context \"nope\" is not in kubeconfig"), "{stderr}");
}

#[test]
fn inventory_command_from_files_needs_no_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.json");
    let (c, y) = (data("cluster.yaml"), data("extras.yaml"));
    let args = [
        "inventory",
        "--from",
        c.to_str().unwrap(),
        "--from",
        y.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let (code, _, stderr) = mtlscope(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning:") && stderr.contains("ConfigMap"), "{stderr}");
    let mut back = Sources::new();
    back.load_file(&out).unwrap();
    let mut orig = Sources::new();
    orig.load_file(&c).unwrap();
    orig.load_file(&y).unwrap();
    orig.skipped.clear();
    orig.warnings.clear();
    assert_eq!(Inventory::build(&back).to_json(), Inventory::build(&orig).to_json());
    let (code, _, stderr) = mtlscope(&["inventory", "--from", c.to_str().unwrap(), "-A"]);
    assert_eq!(code, 2, "--from with -A is bad usage: {stderr}");
}

/// The flows are pod-to-pod, and both ends carry the names the file inventory gives their
/// addresses.
fn assert_named_as_the_file_inventory_names_them(flows: &[Value]) {
    let inv = file_inventory();
    let named = |w: &Value| {
        format!(
            "{}/{} {}",
            w["namespace"].as_str().unwrap(),
            w["workload"].as_str().unwrap(),
            w["mesh"].as_str().unwrap()
        )
    };
    for f in flows {
        assert_eq!(f["scope"], "pod-to-pod", "{f:#}");
        assert_eq!(named(&f["client"]["workload"]), pod_at(&inv, "10.77.0.1"));
        assert_eq!(named(&f["server"]["workload"]), pod_at(&inv, "10.77.0.2"));
    }
}

fn mtlscope_owned(args: Vec<String>) -> (i32, String, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    mtlscope(&a)
}

#[test]
fn analyze_names_pods_from_a_live_cluster() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let kubeconfig = api.kubeconfig();
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http1_veth.pcap");
    let (code, stdout, stderr) = mtlscope(&[
        "analyze",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--context",
        "fake",
        "-A",
        "--format",
        "json",
        "--no-progress",
        capture.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let flows = doc["flows"].as_array().unwrap();
    assert!(!flows.is_empty());
    assert_named_as_the_file_inventory_names_them(flows);
    assert!(doc["inventory"]["sources"].to_string().contains("cluster (fake, all namespaces)"));

    // A cluster that cannot be read stops the analysis: exit 2, one line naming why.
    let token_api = FakeApi::start(Auth::Token, no_override());
    let kubeconfig = token_api.kubeconfig();
    let (code, stdout, stderr) = mtlscope(&[
        "analyze",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--context",
        "fake-expired",
        capture.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(stderr.contains("were rejected"), "{stderr}");
}

#[test]
fn check_judges_with_a_live_cluster() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let kubeconfig = api.kubeconfig();
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http1_veth.pcap");
    let args = |context: &'static str| {
        vec![
            "check".to_string(),
            "--kubeconfig".into(),
            kubeconfig.to_str().unwrap().into(),
            "--context".into(),
            context.into(),
            "-A".into(),
            "--expect-traffic".into(),
            capture.to_str().unwrap().into(),
        ]
    };
    // Plaintext between two pods the cluster names: a violation, not "could not verify".
    let (code, stdout, stderr) = mtlscope_owned(args("fake"));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("FAIL: "), "{stdout}");
    let inv = file_inventory();
    let client = pod_at(&inv, "10.77.0.1");
    let client = client.split(' ').next().unwrap();
    assert!(stdout.contains(&format!("VIOLATION  {client} -> ")), "{stdout}");
    // A cluster that cannot be read (this server wants a client certificate the context does
    // not have): could not verify, one line naming why.
    let (code, stdout, stderr) = mtlscope_owned(args("fake-expired"));
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("mtlscope: error: cannot reach the Kubernetes API"), "{stderr}");
}

#[test]
fn live_names_pods_from_a_live_cluster() {
    let api = FakeApi::start(Auth::ClientCert, no_override());
    let kubeconfig = api.kubeconfig();
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http1_veth.pcap");
    let args = |context: &str, extra: &[&str]| {
        let mut a = vec![
            "live".to_string(),
            "-r".into(),
            capture.to_str().unwrap().into(),
            "--summary-interval".into(),
            "0".into(),
            "--kubeconfig".into(),
            kubeconfig.to_str().unwrap().into(),
            "--context".into(),
            context.into(),
            "-A".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, stdout, stderr) = mtlscope_owned(args("fake", &[]));
    assert_eq!(code, 0, "{stderr}");
    let flows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "flow")
        .map(|e| e["flow"].clone())
        .collect();
    assert!(!flows.is_empty(), "{stdout}");
    assert_named_as_the_file_inventory_names_them(&flows);
    assert!(api.paths().contains("/api/v1/pods"), "listed every namespace: {:?}", api.paths());

    // --check judges with the cluster's names: plaintext between two pods fails.
    let (code, stdout, stderr) = mtlscope_owned(args("fake", &["--check", "--expect-traffic"]));
    assert_eq!(code, 1, "{stderr}");
    let client = pod_at(&file_inventory(), "10.77.0.1");
    let client = client.split(' ').next().unwrap();
    assert!(stderr.contains(&format!("VIOLATION  {client} -> ")), "{stderr}");
    assert!(stdout.lines().last().unwrap().contains("\"type\":\"check\""), "{stdout}");

    // A cluster that cannot be read stops the run before any packet: exit 2, one line.
    let (code, stdout, stderr) = mtlscope_owned(args("fake-expired", &[]));
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("mtlscope: error: cannot reach the Kubernetes API"), "{stderr}");
}
