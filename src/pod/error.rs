//! Why a pod capture could not start or did not finish. Each message is one sentence that says
//! what to do, naming the RBAC rule when the API server said no.

use crate::inventory::live::{bad_server_certificate, innermost, timed_out, LiveError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The kubeconfig, the context or the connection (the inventory's messages).
    #[error(transparent)]
    Kube(#[from] LiveError),
    #[error(
        "pod {pod} not found in namespace {namespace}; list them with `kubectl get pods -n \
         {namespace}` (another namespace with -n NAMESPACE?)"
    )]
    PodNotFound { namespace: String, pod: String },
    #[error("no running pod in namespace {namespace} matches -l {selector}{skipped}")]
    NoPodMatches { namespace: String, selector: String, skipped: String },
    #[error(
        "pod {namespace}/{pod} is {phase}, not Running{reason}: nothing to capture until it runs \
         (`kubectl describe pod -n {namespace} {pod}`)"
    )]
    PodNotRunning { namespace: String, pod: String, phase: String, reason: String },
    #[error(
        "pod {namespace}/{pod} has no container {container} (it has: {known}); pick one with -c, \
         or add a debug container with --ephemeral"
    )]
    NoSuchContainer { namespace: String, pod: String, container: String, known: String },
    #[error("container {container} of pod {namespace}/{pod} is not running{reason}")]
    ContainerNotRunning { namespace: String, pod: String, container: String, reason: String },
    #[error(
        "pod {namespace}/{pod} has no capture container (no linkerd-debug sidecar; containers: \
         {known}); name one that has tcpdump or tshark with -c CONTAINER, or add an ephemeral \
         debug container with --ephemeral"
    )]
    NoCaptureContainer { namespace: String, pod: String, known: String },
    #[error(
        "container {container} of pod {namespace}/{pod} has {missing}; run with --ephemeral to \
         add a debug container that has tcpdump (image {image}), or name another container with \
         -c"
    )]
    NoCaptureTool {
        namespace: String,
        pod: String,
        container: String,
        /// "neither tcpdump nor tshark", "no shell (sh)".
        missing: String,
        image: String,
    },
    #[error(
        "not allowed to {verb} {resource} in namespace {namespace} (403 Forbidden: {message}); \
         grant `{verb}` on `{resource}` in namespace {namespace} (check with `kubectl auth can-i \
         {verb} {resource} -n {namespace}`)"
    )]
    Forbidden { verb: &'static str, resource: &'static str, namespace: String, message: String },
    #[error(
        "this cluster does not serve ephemeral containers ({message}); they need Kubernetes 1.23 \
         or later (1.16-1.22 with the EphemeralContainers feature gate); use a container with \
         tcpdump instead (-c CONTAINER)"
    )]
    EphemeralUnsupported { message: String },
    #[error("the API server refused the ephemeral container for pod {namespace}/{pod}: {message}")]
    EphemeralRejected { namespace: String, pod: String, message: String },
    #[error(
        "ephemeral container {container} in pod {pod} cannot pull image {image} ({reason}: \
         {message}); check the name and the pull secret, or choose another image with --image"
    )]
    ImagePull {
        /// `namespace/pod`.
        pod: String,
        container: String,
        image: String,
        reason: String,
        message: String,
    },
    #[error(
        "ephemeral container {container} in pod {namespace}/{pod} did not start within \
         {after:?} (--pod-running-timeout){state}"
    )]
    NotStarted { namespace: String, pod: String, container: String, after: Duration, state: String },
    #[error(
        "ephemeral container {container} in pod {namespace}/{pod} stopped{state}; it cannot be \
         restarted: run again with --ephemeral to add a new one"
    )]
    EphemeralExited { namespace: String, pod: String, container: String, state: String },
    #[error("the capture in {namespace}/{pod} (container {container}) failed: {message}{hint}")]
    CaptureFailed {
        namespace: String,
        pod: String,
        container: String,
        message: String,
        /// What to do, with its leading `; `.
        hint: String,
    },
    #[error(
        "{action} at {server} took longer than {after:?} (--request-timeout); the server is \
         slow or unreachable: try again or raise --request-timeout"
    )]
    Timeout { action: String, server: String, after: Duration },
    #[error("{action} at {server} failed with {code} {reason}: {message}")]
    Api { action: String, server: String, code: u16, reason: String, message: String },
    #[error("{action}: cannot reach the Kubernetes API server at {server}: {cause}")]
    Unreachable { action: String, server: String, cause: String },
    #[error("-w {path}: cannot write: {cause}")]
    Write { path: String, cause: String },
    #[error("cannot start the runtime for the Kubernetes client: {0}")]
    Runtime(std::io::Error),
}

/// What a call was for, to turn its `kube::Error` into a message.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// "get pod shop/web-0".
    pub action: String,
    pub namespace: &'a str,
    /// The RBAC verb and resource a 403 names.
    pub verb: &'static str,
    pub resource: &'static str,
    pub server: &'a str,
    pub context: &'a str,
}

impl Call<'_> {
    pub(crate) fn error(&self, e: kube::Error) -> PodError {
        let server = self.server.to_string();
        match e {
            kube::Error::Api(s) if s.code == 401 => {
                PodError::Kube(LiveError::Unauthorized { context: self.context.into(), server })
            }
            kube::Error::Api(s) if s.code == 403 => PodError::Forbidden {
                verb: self.verb,
                resource: self.resource,
                namespace: self.namespace.into(),
                message: s.message,
            },
            kube::Error::Api(s) => PodError::Api {
                action: self.action.clone(),
                server,
                code: s.code,
                reason: s.reason,
                message: s.message,
            },
            other if bad_server_certificate(&other) => PodError::Kube(LiveError::UntrustedServer {
                server,
                context: self.context.into(),
                cause: innermost(&other),
            }),
            other if timed_out(&other) => {
                PodError::Timeout { action: self.action.clone(), server, after: Duration::ZERO }
            }
            other => PodError::Unreachable {
                action: self.action.clone(),
                server,
                cause: innermost(&other),
            },
        }
    }

    pub(crate) fn timeout(&self, after: Duration) -> PodError {
        PodError::Timeout { action: self.action.clone(), server: self.server.into(), after }
    }
}
