//! The live inventory: the objects `kubectl get pods,services,endpointslices,nodes -o json` would
//! show, listed through the Kubernetes API with `kube` and pushed into the same [`Sources`] the
//! offline files fill, so one [`Inventory::build`](super::Inventory::build) serves both.
//!
//! kubectl's conventions: the kubeconfig comes from `--kubeconfig`, else `KUBECONFIG` (a list
//! of files, missing ones ignored), else `~/.kube/config`, else the in-cluster service account;
//! `--context` picks a context (default: `current-context`); `-n` a namespace (default: the
//! context's, else `default`), `-A` all of them. Only `list` is called, page by page, each
//! request bounded by `--request-timeout`.
//!
//! tokio lives here only: [`fetch_blocking`] runs the calls on a current-thread runtime and the
//! rest of mtlscope stays synchronous.

use super::Sources;
use clap::Args;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Objects per list page (kubectl uses 500 too).
const PAGE_SIZE: u32 = 500;

/// The Kubernetes connection flags, named as kubectl names them. Flatten it into a subcommand's
/// arguments with `#[command(flatten)]`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct KubeArgs {
    /// Path to the kubeconfig file [default: $KUBECONFIG (a colon-separated list), else
    /// ~/.kube/config, else the in-cluster service account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use [default: its current-context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The namespace to list pods, services and endpointslices in [default: the context's
    /// namespace, else `default`].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// List pods, services and endpointslices in every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// How long one API request may take, e.g. 10s, 1m (a bare number is seconds; 0 waits
    /// forever).
    #[arg(long, value_name = "DURATION", value_parser = parse_request_timeout, default_value = "30s")]
    pub request_timeout: Duration,
}

impl Default for KubeArgs {
    fn default() -> Self {
        KubeArgs {
            kubeconfig: None,
            context: None,
            namespace: None,
            all_namespaces: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// kubectl's `--request-timeout`: `30s`, `1m`, `1h` or a bare number of seconds.
pub fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (use e.g. 30s, 2m, or 0 for no limit)"))
}

impl KubeArgs {
    /// Whether the command line asked for a cluster (`--kubeconfig`, `--context`, `-n` or `-A`).
    pub fn wants_live(&self) -> bool {
        self.kubeconfig.is_some()
            || self.context.is_some()
            || self.namespace.is_some()
            || self.all_namespaces
    }

    pub fn options(&self) -> KubeOptions {
        let namespaces = match (&self.namespace, self.all_namespaces) {
            (_, true) => Namespaces::All,
            (Some(ns), false) => Namespaces::One(ns.clone()),
            (None, false) => Namespaces::ContextDefault,
        };
        KubeOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespaces,
            request_timeout: (!self.request_timeout.is_zero()).then_some(self.request_timeout),
        }
    }
}

/// Where and what to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespaces: Namespaces,
    /// Per request; `None` waits forever.
    pub request_timeout: Option<Duration>,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeArgs::default().options()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// The context's namespace, else `default`.
    ContextDefault,
    One(String),
    All,
}

/// Why the cluster could not be listed. Each message is one sentence that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "no Kubernetes configuration found: KUBECONFIG is unset or names no existing file, \
         ~/.kube/config does not exist, and this is not a pod with a service account; pass \
         --kubeconfig FILE, or read objects from files with --from"
    )]
    NoConfig,
    #[error("cannot read kubeconfig {path}: {cause}")]
    KubeconfigUnreadable { path: String, cause: String },
    #[error(
        "context \"{context}\" is not in kubeconfig {kubeconfig} (it has: {known}); \
         list them with `kubectl config get-contexts`"
    )]
    UnknownContext { context: String, kubeconfig: String, known: String },
    #[error(
        "kubeconfig {kubeconfig} sets no current-context; pass --context NAME (it has: {known})"
    )]
    NoCurrentContext { kubeconfig: String, known: String },
    #[error("context {context} in {kubeconfig} cannot be used: {cause}")]
    InvalidConfig { context: String, kubeconfig: String, cause: String },
    #[error("cannot use the in-cluster service account: {cause}")]
    InCluster { cause: String },
    #[error(
        "cannot reach the Kubernetes API server at {server} (context {context}): {cause}; check \
         the network, VPN or the server address in the kubeconfig"
    )]
    Unreachable { server: String, context: String, cause: String },
    #[error(
        "the API server at {server} (context {context}) presented a certificate the kubeconfig \
         does not trust ({cause}); check the cluster's certificate-authority in the kubeconfig"
    )]
    UntrustedServer { server: String, context: String, cause: String },
    #[error(
        "the credentials for context {context} were rejected by {server} (401 Unauthorized: \
         expired token or certificate?); log in again or refresh the kubeconfig"
    )]
    Unauthorized { context: String, server: String },
    #[error("cannot get credentials for context {context}: {cause}")]
    Credentials { context: String, cause: String },
    #[error(
        "not allowed to {verb} {resource} {scope} (403 Forbidden: {message}); grant {verb} on \
         {resource} {scope} to this user, check with `kubectl auth can-i {verb} {resource}{can_i}`"
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        /// `in namespace shop`, `in all namespaces` or `(cluster-scoped)`.
        scope: String,
        /// The `-n NS` or `-A` of the matching `kubectl auth can-i`, with its leading space.
        can_i: String,
        message: String,
    },
    #[error(
        "listing {resource} at {server} took longer than {after:?} (--request-timeout); the \
         server is slow or unreachable: try again or raise --request-timeout"
    )]
    Timeout { resource: &'static str, server: String, after: Duration },
    #[error("listing {resource} at {server} failed with {code} {reason}: {message}")]
    Api { resource: &'static str, server: String, code: u16, reason: String, message: String },
    #[error("the answer of {server} to list {resource} is not Kubernetes JSON: {cause}")]
    Response { resource: &'static str, server: String, cause: String },
    #[error("cannot start the runtime for the Kubernetes client: {0}")]
    Runtime(std::io::Error),
}

/// Lists the cluster's objects, blocking the calling thread; see [`fetch`].
pub fn fetch_blocking(opts: &KubeOptions) -> Result<Sources, LiveError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LiveError::Runtime)?;
    rt.block_on(fetch(opts))
}

/// Lists pods, services and endpointslices (in the chosen namespaces), nodes and namespaces
/// (cluster-wide). Nodes and namespaces are optional: when forbidden (or endpointslices are not
/// served), a warning goes into [`Sources::warnings`] and the rest is used.
pub async fn fetch(opts: &KubeOptions) -> Result<Sources, LiveError> {
    let cluster = connect(opts, &Env::from_process()).await?;
    let namespace = match &opts.namespaces {
        Namespaces::All => None,
        Namespaces::One(ns) => Some(ns.clone()),
        Namespaces::ContextDefault => Some(cluster.default_namespace.clone()),
    };
    let ns = namespace.as_deref();
    let c = &cluster.client;
    let scoped = |k| cluster.target(k, ns, opts.request_timeout);
    let global = |k| cluster.target(k, None, opts.request_timeout);
    // With one namespace, only its Namespace object is wanted (for its mesh labels).
    let mut ns_params = ListParams::default().limit(PAGE_SIZE);
    if let Some(n) = ns {
        ns_params = ns_params.fields(&format!("metadata.name={n}"));
    }
    let page = || ListParams::default().limit(PAGE_SIZE);
    let (pods, services, slices, nodes, namespaces) = tokio::join!(
        list_all::<Pod>(in_ns(c, ns), scoped(&PODS), page()),
        list_all::<Service>(in_ns(c, ns), scoped(&SERVICES), page()),
        list_all::<EndpointSlice>(in_ns(c, ns), scoped(&ENDPOINT_SLICES), page()),
        list_all::<Node>(Api::all(c.clone()), global(&NODES), page()),
        list_all::<Namespace>(Api::all(c.clone()), global(&NAMESPACES), ns_params),
    );
    let mut sources = Sources::new();
    let pods = pods?;
    if pods.is_empty() {
        let where_ = ns.map_or_else(
            || "the cluster".to_string(),
            |n| format!("namespace {n} (another one with -n NAMESPACE, or all with -A?)"),
        );
        sources.warnings.push(format!("context {}: no pods in {where_}", cluster.context));
    }
    push_all(&mut sources, pods);
    push_all(&mut sources, services?);
    match slices {
        Ok(s) => push_all(&mut sources, s),
        Err(LiveError::Api { code: 404, .. }) => sources.warnings.push(format!(
            "context {}: the server does not serve discovery.k8s.io/v1 endpointslices \
             (Kubernetes older than 1.21?), so services show no backend pods",
            cluster.context
        )),
        Err(e) => return Err(e),
    }
    optional(&mut sources, &cluster.context, nodes, NODES_MISSING)?;
    optional(&mut sources, &cluster.context, namespaces, NAMESPACES_MISSING)?;
    Ok(sources)
}

const NODES_MISSING: &str = "node addresses are unknown, so kubelet probes and host-network \
pods may show as external";
const NAMESPACES_MISSING: &str = "namespace-wide mesh settings (linkerd.io/inject, \
istio-injection, ambient labels) are not seen";

fn in_ns<K>(c: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(n) => Api::namespaced(c.clone(), n),
        None => Api::all(c.clone()),
    }
}

/// Nodes and namespaces: a 403 is a warning, anything else an error.
fn optional<K: Into<super::Object> + HasMeta>(
    sources: &mut Sources,
    context: &str,
    listed: Result<Vec<K>, LiveError>,
    missing: &str,
) -> Result<(), LiveError> {
    match listed {
        Ok(items) => push_all(sources, items),
        Err(LiveError::Forbidden { verb, resource, scope, .. }) => sources.warnings.push(format!(
            "context {context}: not allowed to {verb} {resource} {scope}, so {missing}; grant \
             {verb} on {resource} to see them"
        )),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Objects as listed, without `managedFields` (bulky, and of no use to the inventory).
fn push_all<K: Into<super::Object> + HasMeta>(sources: &mut Sources, items: Vec<K>) {
    for mut item in items {
        item.meta_mut().managed_fields = None;
        sources.push(item);
    }
}

pub(crate) trait HasMeta {
    fn meta_mut(&mut self) -> &mut ObjectMeta;
}

macro_rules! has_meta {
    ($($t:ty),*) => {$(
        impl HasMeta for $t {
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    )*};
}
has_meta!(Pod, Service, EndpointSlice, Node, Namespace);

/// A resource as RBAC names it.
#[derive(Debug, Clone, Copy)]
struct Kind {
    /// `pods`, `endpointslices.discovery.k8s.io`.
    resource: &'static str,
    namespaced: bool,
}

const PODS: Kind = Kind { resource: "pods", namespaced: true };
const SERVICES: Kind = Kind { resource: "services", namespaced: true };
const ENDPOINT_SLICES: Kind =
    Kind { resource: "endpointslices.discovery.k8s.io", namespaced: true };
const NODES: Kind = Kind { resource: "nodes", namespaced: false };
const NAMESPACES: Kind = Kind { resource: "namespaces", namespaced: false };

/// A connected client and what messages say about it.
pub(crate) struct Cluster {
    pub client: Client,
    /// The context's name, or `in-cluster`.
    pub context: String,
    pub server: String,
    pub default_namespace: String,
}

impl Cluster {
    fn target<'a>(
        &'a self,
        kind: &'static Kind,
        namespace: Option<&'a str>,
        timeout: Option<Duration>,
    ) -> Target<'a> {
        Target { cluster: self, kind, namespace: namespace.filter(|_| kind.namespaced), timeout }
    }
}

/// One list call: what it is for messages.
struct Target<'a> {
    cluster: &'a Cluster,
    kind: &'static Kind,
    namespace: Option<&'a str>,
    timeout: Option<Duration>,
}

impl Target<'_> {
    fn error(&self, e: kube::Error) -> LiveError {
        let server = self.cluster.server.clone();
        let context = self.cluster.context.clone();
        let resource = self.kind.resource;
        match e {
            kube::Error::Api(s) if s.code == 401 => LiveError::Unauthorized { context, server },
            kube::Error::Api(s) if s.code == 403 => {
                let (scope, can_i) = match (self.kind.namespaced, self.namespace) {
                    (false, _) => ("(cluster-scoped)".to_string(), String::new()),
                    (true, Some(ns)) => (format!("in namespace {ns}"), format!(" -n {ns}")),
                    (true, None) => ("in all namespaces".to_string(), " -A".to_string()),
                };
                LiveError::Forbidden { verb: "list", resource, scope, can_i, message: s.message }
            }
            kube::Error::Api(s) => LiveError::Api {
                resource,
                server,
                code: s.code,
                reason: s.reason,
                message: s.message,
            },
            kube::Error::SerdeError(e) => {
                LiveError::Response { resource, server, cause: e.to_string() }
            }
            kube::Error::Auth(e) => LiveError::Credentials { context, cause: innermost(&e) },
            other if timed_out(&other) => {
                LiveError::Timeout { resource, server, after: self.timeout.unwrap_or_default() }
            }
            other if bad_server_certificate(&other) => {
                LiveError::UntrustedServer { server, context, cause: innermost(&other) }
            }
            other => LiveError::Unreachable { server, context, cause: innermost(&other) },
        }
    }
}

/// Every page of one list, following `continue` tokens.
async fn list_all<K>(api: Api<K>, t: Target<'_>, first: ListParams) -> Result<Vec<K>, LiveError>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let mut params = first;
    let mut items = Vec::new();
    let mut tokens = HashSet::new();
    loop {
        let page = match t.timeout {
            Some(after) => tokio::time::timeout(after, api.list(&params)).await.map_err(|_| {
                LiveError::Timeout {
                    resource: t.kind.resource,
                    server: t.cluster.server.clone(),
                    after,
                }
            })?,
            None => api.list(&params).await,
        }
        .map_err(|e| t.error(e))?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                if !tokens.insert(token.clone()) {
                    return Err(LiveError::Response {
                        resource: t.kind.resource,
                        server: t.cluster.server.clone(),
                        cause: format!("the continue token {token:?} came back twice"),
                    });
                }
                params = params.continue_token(&token);
            }
            _ => return Ok(items),
        }
    }
}

/// Whether any error in the chain, or wrapped (at any depth) in an `io::Error` of it, is a `T`
/// that passes `test`. `io::Error::source` skips the error it wraps, hence the `get_ref`.
fn chain_has<T: std::error::Error + 'static>(
    e: &(dyn std::error::Error + 'static),
    test: impl Fn(&T) -> bool,
) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        let mut wrapped = Some(e);
        while let Some(w) = wrapped {
            if w.downcast_ref::<T>().is_some_and(&test) {
                return true;
            }
            let io = w.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
            wrapped = io.map(|i| i as &(dyn std::error::Error + 'static));
        }
        cur = e.source();
    }
    false
}

pub(crate) fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    chain_has::<std::io::Error>(e, |io| io.kind() == std::io::ErrorKind::TimedOut)
}

pub(crate) fn bad_server_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    chain_has::<rustls::Error>(e, |r| {
        matches!(r, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    })
}

/// The most specific cause in an error chain ("Connection refused (os error 111)").
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// What the process environment says about where the configuration is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    pub kubeconfig: Option<OsString>,
    pub home: Option<PathBuf>,
    pub in_cluster: bool,
}

impl Env {
    pub(crate) fn from_process() -> Env {
        Env {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        }
    }
}

/// The configuration to use: a kubeconfig (and where it came from, for messages), or the
/// in-cluster service account.
#[derive(Debug)]
pub(crate) enum Located {
    Kubeconfig { config: Box<Kubeconfig>, name: String },
    InCluster,
}

pub(crate) fn locate(opts: &KubeOptions, env: &Env) -> Result<Located, LiveError> {
    if let Some(path) = &opts.kubeconfig {
        return read_kubeconfig(path).map(|c| Located::Kubeconfig {
            config: Box::new(c),
            name: path.display().to_string(),
        });
    }
    if let Some(var) = env.kubeconfig.as_ref().filter(|v| !v.is_empty()) {
        // Like kubectl: files of the list that do not exist are ignored; the first file to set
        // a value wins.
        let paths: Vec<PathBuf> = std::env::split_paths(var)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if !paths.is_empty() {
            let mut merged = Kubeconfig::default();
            for p in &paths {
                merged = merged.merge(read_kubeconfig(p)?).map_err(|e| {
                    LiveError::KubeconfigUnreadable {
                        path: p.display().to_string(),
                        cause: e.to_string(),
                    }
                })?;
            }
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let name = match names.as_slice() {
                [one] => one.clone(),
                _ => format!("KUBECONFIG ({})", names.join(", ")),
            };
            return Ok(Located::Kubeconfig { config: Box::new(merged), name });
        }
    } else if let Some(home) = &env.home {
        let path = home.join(".kube").join("config");
        if path.exists() {
            let config = read_kubeconfig(&path)?;
            let name = path.display().to_string();
            return Ok(Located::Kubeconfig { config: Box::new(config), name });
        }
    }
    if env.in_cluster {
        return Ok(Located::InCluster);
    }
    Err(LiveError::NoConfig)
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, LiveError> {
    Kubeconfig::read_from(path).map_err(|e| LiveError::KubeconfigUnreadable {
        path: path.display().to_string(),
        cause: match e {
            KubeconfigError::ReadConfig(io, _) => io.to_string(),
            other => other.to_string(),
        },
    })
}

/// The context to use: `--context`, else `current-context`; it must exist.
pub(crate) fn pick_context(
    config: &Kubeconfig,
    name: &str,
    wanted: Option<&str>,
) -> Result<String, LiveError> {
    let known = || {
        let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        if names.is_empty() {
            "no contexts".to_string()
        } else {
            names.join(", ")
        }
    };
    let current = config.current_context.as_deref().filter(|c| !c.is_empty());
    let Some(context) = wanted.or(current) else {
        return Err(LiveError::NoCurrentContext { kubeconfig: name.to_string(), known: known() });
    };
    if !config.contexts.iter().any(|c| c.name == context) {
        return Err(LiveError::UnknownContext {
            context: context.to_string(),
            kubeconfig: name.to_string(),
            known: known(),
        });
    }
    Ok(context.to_string())
}

async fn connect(opts: &KubeOptions, env: &Env) -> Result<Cluster, LiveError> {
    let mut chosen = configure(opts, env).await?;
    if let Some(t) = opts.request_timeout {
        chosen.config.read_timeout = Some(t);
        chosen.config.connect_timeout = Some(chosen.config.connect_timeout.map_or(t, |c| c.min(t)));
    }
    chosen.connect()
}

/// A kube `Config` chosen by kubectl's rules, before a client is built from it (a streaming
/// client, like `mtlscope pod`'s, sets its own timeouts).
pub(crate) struct Chosen {
    pub config: Config,
    /// The context's name, or `in-cluster`.
    pub context: String,
    /// Where the configuration came from, for messages.
    pub kubeconfig: String,
}

impl Chosen {
    pub(crate) fn connect(self) -> Result<Cluster, LiveError> {
        let Chosen { config, context, kubeconfig } = self;
        let server = config.cluster_url.to_string();
        let server = server.trim_end_matches('/').to_string();
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| LiveError::InvalidConfig {
            context: context.clone(),
            kubeconfig,
            cause: innermost(&e),
        })?;
        Ok(Cluster { client, context, server, default_namespace })
    }
}

/// The kubeconfig (or in-cluster) configuration `opts` and the environment pick.
pub(crate) async fn configure(opts: &KubeOptions, env: &Env) -> Result<Chosen, LiveError> {
    match locate(opts, env)? {
        Located::Kubeconfig { config, name } => {
            let context = pick_context(&config, &name, opts.context.as_deref())?;
            let options =
                KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
            let config = Config::from_custom_kubeconfig(*config, &options).await.map_err(|e| {
                LiveError::InvalidConfig {
                    context: context.clone(),
                    kubeconfig: name.clone(),
                    cause: e.to_string(),
                }
            })?;
            Ok(Chosen { config, context, kubeconfig: name })
        }
        Located::InCluster => {
            if let Some(context) = &opts.context {
                return Err(LiveError::UnknownContext {
                    context: context.clone(),
                    kubeconfig: "(none: in-cluster service account)".into(),
                    known: "no contexts".into(),
                });
            }
            let config =
                Config::incluster().map_err(|e| LiveError::InCluster { cause: e.to_string() })?;
            Ok(Chosen {
                config,
                context: "in-cluster".to_string(),
                kubeconfig: "the in-cluster configuration".to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
