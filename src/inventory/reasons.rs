//! Why a flow between two pods is not mTLS, in the inventory's terms: who has no proxy, which
//! port a proxy skips, whose TLS it was.

use super::mesh::{Mesh, MeshStatus};
use super::model::{qualify, Endpoint, Target, WorkloadRef};
use super::scope::scope;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonCode {
    ServerNotMeshed,
    /// Linkerd (and Istio in PERMISSIVE mode) accept plaintext from clients with no proxy.
    ClientNotMeshed,
    PortSkipped,
    /// Both ends are meshed, by different meshes: neither can verify the other.
    DifferentMeshes,
    AppTlsNotMesh,
    MeshTlsWithoutClientCert,
    ProtocolNotProxied,
    Unknown,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::ServerNotMeshed => "server-not-meshed",
            ReasonCode::ClientNotMeshed => "client-not-meshed",
            ReasonCode::PortSkipped => "port-skipped",
            ReasonCode::DifferentMeshes => "different-meshes",
            ReasonCode::AppTlsNotMesh => "app-tls-not-mesh",
            ReasonCode::MeshTlsWithoutClientCert => "mesh-tls-without-client-cert",
            ReasonCode::ProtocolNotProxied => "protocol-not-proxied",
            ReasonCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code and one plain sentence naming the workloads and the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

/// What [`reasons`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct ReasonInput<'a> {
    /// The verdict word (`plaintext`, `tls-server-auth`, ...).
    pub verdict: &'a str,
    /// The protocol word (`tls`, `http1`, `h2c`, `other`, `none`).
    pub protocol: &'a str,
    /// The mesh whose TLS the handshake looked like (`"linkerd"`, `"istio"`), if any.
    pub tls_mesh: Option<&'a str>,
    pub client: &'a Endpoint,
    pub server: &'a Endpoint,
    /// The server port on the wire (a Service port when the server is a Service address).
    pub port: u16,
}

/// Why a pod-to-pod or pod-to-service flow is not mTLS, most telling first. Empty for other
/// scopes and for `mtls` and `no-payload` verdicts; `[unknown]` when nothing explains it.
pub fn reasons(input: &ReasonInput<'_>) -> Vec<Reason> {
    if matches!(input.verdict, "mtls" | "no-payload")
        || !scope(input.client, input.server, false).is_pod_to_pod()
    {
        return Vec::new();
    }
    let Some(client) = input.client.pod() else { return Vec::new() };
    let Some(server) = Server::of(input.server, input.port, &client.namespace) else {
        return Vec::new();
    };
    let ctx = Ctx { input, client, cname: client.workload.clone(), server };
    let out = ctx.explain();
    if out.is_empty() {
        return vec![ctx.unknown()];
    }
    out
}

/// The server side: one pod, or the pods behind a Service.
struct Server<'a> {
    name: String,
    pods: &'a [Arc<WorkloadRef>],
    /// The port the pods listen on (a Service's target port).
    port: u16,
    via_service: bool,
}

impl<'a> Server<'a> {
    fn of(e: &'a Endpoint, port: u16, from_ns: &str) -> Option<Server<'a>> {
        match &e.target {
            Target::Pod(w) => Some(Server {
                name: w.name_from(from_ns),
                pods: std::slice::from_ref(w),
                port,
                via_service: false,
            }),
            Target::Service { service, backends } => Some(Server {
                name: qualify(&service.namespace, &service.name, from_ns),
                pods: backends,
                port: service.target_port(port),
                via_service: true,
            }),
            _ => None,
        }
    }

    fn mesh(&self) -> Option<&MeshStatus> {
        self.pods.iter().map(|p| &p.mesh).find(|m| m.mesh.is_meshed())
    }
}

struct Ctx<'a> {
    input: &'a ReasonInput<'a>,
    client: &'a WorkloadRef,
    cname: String,
    server: Server<'a>,
}

impl Ctx<'_> {
    fn flow(&self) -> String {
        format!("{} -> {}:{}", self.cname, self.server.name, self.input.port)
    }

    fn what(&self) -> String {
        match self.input.verdict {
            "plaintext" => "is plaintext".into(),
            "no-encryption" => "is not encrypted (NULL cipher)".into(),
            "handshake-failed" => "failed its TLS handshake".into(),
            "opaque" => "carries bytes that are neither TLS nor readable plaintext".into(),
            "tls-unknown-auth" => "is TLS whose client authentication could not be seen".into(),
            "tls-server-auth" => "is TLS without a client certificate".into(),
            other => format!("is {other}"),
        }
    }

    fn reason(&self, code: ReasonCode, message: String) -> Reason {
        Reason { code, message }
    }

    fn explain(&self) -> Vec<Reason> {
        let mut out = Vec::new();
        if self.server.pods.is_empty() {
            return out;
        }
        let client_mesh = self.client.mesh.mesh;
        let server_mesh = self.server.mesh().map(|m| m.mesh);
        out.extend(self.server_not_meshed(client_mesh));
        out.extend(self.client_not_meshed(server_mesh));
        out.extend(self.port_skipped());
        if let Some(sm) = server_mesh.filter(|_| client_mesh.is_meshed()) {
            if client_mesh.family() != sm.family() {
                out.push(self.reason(
                    ReasonCode::DifferentMeshes,
                    format!(
                        "{} {} and {} {}: the meshes do not trust each other, so {} {}",
                        self.cname,
                        runs(client_mesh),
                        self.server.name,
                        runs(sm),
                        self.flow(),
                        self.what()
                    ),
                ));
            }
        }
        out.extend(self.tls_reasons());
        if out.is_empty() {
            out.extend(self.protocol_not_proxied(client_mesh, server_mesh));
        }
        out
    }

    fn server_not_meshed(&self, client_mesh: Mesh) -> Option<Reason> {
        let pods = self.server.pods;
        let bare: Vec<&Arc<WorkloadRef>> =
            pods.iter().filter(|p| !p.mesh.mesh.is_meshed()).collect();
        let first = bare.first()?;
        let expected = if client_mesh.is_meshed() {
            client_mesh
        } else {
            self.server.mesh().map_or(Mesh::None, |m| m.mesh)
        };
        let who = if bare.len() == pods.len() {
            format!("{} {}", self.server.name, lacks(expected, false))
        } else {
            let (n, of) = (bare.len(), pods.len());
            format!("{n} of {of} pods behind {} {}", self.server.name, lacks(expected, true))
        };
        let mut message = format!("{who}: {} {}", self.flow(), self.what());
        if let Some(note) = first.mesh.notes.first() {
            message = format!("{message} ({note})");
        }
        Some(self.reason(ReasonCode::ServerNotMeshed, message))
    }

    fn client_not_meshed(&self, server_mesh: Option<Mesh>) -> Option<Reason> {
        let mesh = &self.client.mesh;
        if mesh.mesh.is_meshed() {
            return None;
        }
        let port = self.server.port;
        let message = match server_mesh {
            Some(Mesh::Linkerd) => format!(
                "{} has no linkerd-proxy: {}'s proxy accepts its plaintext on port {port} (no policy requires mTLS)",
                self.cname, self.server.name
            ),
            Some(m) => format!(
                "{} {}: {} accepts its plaintext on port {port} (PeerAuthentication is PERMISSIVE)",
                self.cname,
                lacks(m, false),
                self.server.name
            ),
            None => format!("{} has no mesh proxy either", self.cname),
        };
        let message = match mesh.notes.first() {
            Some(note) => format!("{message} ({note})"),
            None => message,
        };
        Some(self.reason(ReasonCode::ClientNotMeshed, message))
    }

    fn port_skipped(&self) -> Vec<Reason> {
        let mut out = Vec::new();
        let c = &self.client.mesh;
        if let Some(rule) = c.outbound_skip(self.input.port).filter(|_| c.mesh.is_meshed()) {
            out.push(self.reason(
                ReasonCode::PortSkipped,
                format!(
                    "{} skips outbound port {} ({}): {} bypasses its {} and {}",
                    self.cname,
                    self.input.port,
                    rule.source,
                    self.flow(),
                    c.mesh.proxy_name(),
                    self.what()
                ),
            ));
        }
        let port = self.server.port;
        let skipping = self.server.pods.iter().find_map(|p| {
            let m = &p.mesh;
            m.inbound_skip(port).filter(|_| m.mesh.is_meshed()).map(|r| (m, r))
        });
        if let Some((m, rule)) = skipping {
            let via = if self.server.via_service && port != self.input.port {
                format!(" (service port {})", self.input.port)
            } else {
                String::new()
            };
            out.push(self.reason(
                ReasonCode::PortSkipped,
                format!(
                    "{} skips inbound port {port}{via} ({}): {} bypasses its {} and {}",
                    self.server.name,
                    rule.source,
                    self.flow(),
                    m.mesh.proxy_name(),
                    self.what()
                ),
            ));
        }
        out
    }

    fn tls_reasons(&self) -> Option<Reason> {
        let i = self.input;
        if i.protocol != "tls" {
            return None;
        }
        match i.tls_mesh {
            None => Some(self.reason(
                ReasonCode::AppTlsNotMesh,
                format!(
                    "{} carries the application's own TLS, not mesh mTLS: it {}",
                    self.flow(),
                    self.what()
                ),
            )),
            Some(mesh) if i.verdict == "tls-server-auth" => Some(self.reason(
                ReasonCode::MeshTlsWithoutClientCert,
                format!(
                    "{mesh} TLS {} carried no client certificate: {} was not authenticated",
                    self.flow(),
                    self.cname
                ),
            )),
            Some(_) => None,
        }
    }

    /// Both ends run the same mesh's proxy and nothing skips the port, yet the bytes are
    /// unencrypted and not HTTP: the proxy's protocol detection did not handle them (a
    /// server-speaks-first protocol such as MySQL or SMTP).
    fn protocol_not_proxied(&self, client: Mesh, server: Option<Mesh>) -> Option<Reason> {
        let server = server?;
        let unencrypted = matches!(self.input.verdict, "plaintext" | "opaque");
        let not_http = !matches!(self.input.protocol, "http1" | "h2c" | "tls");
        if !(client.is_meshed() && client.family() == server.family() && unencrypted && not_http) {
            return None;
        }
        let port = self.server.port;
        let hint = match server {
            Mesh::Linkerd => {
                let opaque = self.server.mesh().and_then(|m| m.opaque_rule(port));
                if opaque.is_some() {
                    return None; // marked opaque, yet plaintext: nothing here explains it
                }
                format!("list port {port} in config.linkerd.io/opaque-ports")
            }
            _ => format!("declare port {port}'s protocol (appProtocol: tcp or a tcp- port name)"),
        };
        Some(self.reason(
            ReasonCode::ProtocolNotProxied,
            format!(
                "{} {}: {} may not have detected the protocol on {}:{port} (a server-speaks-first \
                 protocol such as MySQL or SMTP must be declared); {hint}",
                self.flow(),
                self.what(),
                server.proxy_name(),
                self.server.name
            ),
        ))
    }

    fn unknown(&self) -> Reason {
        let message = if self.server.pods.is_empty() {
            format!(
                "{} has no endpoints in the inventory: nothing explains why {} {}",
                self.server.name,
                self.flow(),
                self.what()
            )
        } else if let Some(sm) =
            self.server.mesh().map(|m| m.mesh).filter(|_| self.client.mesh.mesh.is_meshed())
        {
            let cm = self.client.mesh.mesh;
            let both = if cm == sm && cm != Mesh::IstioAmbient {
                format!("both run {}", cm.proxy_name())
            } else {
                format!("are both meshed ({cm} and {sm})")
            };
            format!(
                "{} and {} {both} and port {} is not skipped: nothing in the inventory explains why {} {}",
                self.cname,
                self.server.name,
                self.server.port,
                self.flow(),
                self.what()
            )
        } else {
            format!("nothing in the inventory explains why {} {}", self.flow(), self.what())
        };
        self.reason(ReasonCode::Unknown, message)
    }
}

/// "runs linkerd-proxy", "is in Istio's ambient mesh".
fn runs(m: Mesh) -> String {
    match m {
        Mesh::IstioAmbient => "is in Istio's ambient mesh".into(),
        Mesh::None => "has no mesh proxy".into(),
        other => format!("runs {}", other.proxy_name()),
    }
}

/// What a pod outside the mesh `expected` lacks: "has no linkerd-proxy", "is not in the Istio
/// mesh (no istio-proxy, not ambient)".
fn lacks(expected: Mesh, plural: bool) -> String {
    let (has, is) = if plural { ("have", "are") } else { ("has", "is") };
    match expected {
        Mesh::Linkerd => format!("{has} no linkerd-proxy"),
        Mesh::Istio => format!("{has} no istio-proxy"),
        Mesh::IstioAmbient => format!("{is} not in the Istio mesh (no istio-proxy, not ambient)"),
        Mesh::None => format!("{has} no mesh proxy"),
    }
}
