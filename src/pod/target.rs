//! Which pods, and which container in each runs the capture: a named one (`-c`), Linkerd's
//! `linkerd-debug` sidecar, a debug container an earlier `--ephemeral` run left, or a new
//! ephemeral container (the `pods/ephemeralcontainers` subresource, as `kubectl debug` adds
//! one: a strategic-merge patch, no restart).

use super::error::{Call, PodError};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

/// The debug image `--ephemeral` uses without `--image`: netshoot ships tcpdump, tshark and a
/// POSIX shell, is multi-arch and maintained; pinned so every run gets the same tools.
pub const DEFAULT_IMAGE: &str = "docker.io/nicolaka/netshoot:v0.15";
/// Linkerd's debug sidecar (`config.linkerd.io/enable-debug-sidecar: "true"`).
pub const LINKERD_DEBUG: &str = "linkerd-debug";
/// Names of the ephemeral containers mtlscope adds (a random suffix follows).
pub const EPHEMERAL_PREFIX: &str = "mtlscope-debug-";
/// What an ephemeral container runs: nothing, until the pod goes. mtlscope execs the capture
/// in it, so its own process never writes a byte that could be missed before an attach.
const IDLE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";
/// How often a starting ephemeral container is looked at.
const POLL: Duration = Duration::from_millis(500);

/// What was asked for on the command line.
#[derive(Debug, Clone)]
pub struct Want {
    pub container: Option<String>,
    pub ephemeral: bool,
    pub image: String,
    pub running_timeout: Duration,
    pub request_timeout: Option<Duration>,
}

/// One pod's capture container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// An ephemeral container added by this run (it stays until the pod goes).
    pub added: bool,
}

impl Target {
    /// `namespace/pod`: the pod's interface name in the run.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.pod)
    }
}

/// The pods API of one namespace, and what messages say about it.
pub struct Pods<'a> {
    pub api: Api<Pod>,
    pub namespace: &'a str,
    pub server: &'a str,
    pub context: &'a str,
    pub want: &'a Want,
}

impl Pods<'_> {
    fn call(&self, action: String, verb: &'static str, resource: &'static str) -> Call<'_> {
        Call {
            action,
            namespace: self.namespace,
            verb,
            resource,
            server: self.server,
            context: self.context,
        }
    }

    async fn bounded<T>(
        &self,
        call: &Call<'_>,
        f: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, PodError> {
        match self.want.request_timeout {
            Some(after) => tokio::time::timeout(after, f).await.map_err(|_| call.timeout(after))?,
            None => f.await,
        }
        .map_err(|e| call.error(e))
    }

    pub async fn get(&self, name: &str) -> Result<Pod, PodError> {
        let call = self.call(format!("get pod {}/{name}", self.namespace), "get", "pods");
        match self.bounded(&call, self.api.get(name)).await {
            Err(PodError::Api { code: 404, .. }) => {
                Err(PodError::PodNotFound { namespace: self.namespace.into(), pod: name.into() })
            }
            other => other,
        }
    }

    /// The running pods `selector` matches (others are named in the error when none runs).
    pub async fn select(&self, selector: &str) -> Result<Vec<Pod>, PodError> {
        let call = self.call(format!("list pods -l {selector}"), "list", "pods");
        let lp = ListParams::default().labels(selector);
        let pods = self.bounded(&call, self.api.list(&lp)).await?.items;
        let (running, other): (Vec<Pod>, Vec<Pod>) =
            pods.into_iter().partition(|p| phase(p) == "Running");
        if running.is_empty() {
            let skipped = if other.is_empty() {
                String::new()
            } else {
                let names: Vec<String> =
                    other.iter().map(|p| format!("{} ({})", name_of(p), phase(p))).collect();
                format!(" (not running: {})", names.join(", "))
            };
            return Err(PodError::NoPodMatches {
                namespace: self.namespace.into(),
                selector: selector.into(),
                skipped,
            });
        }
        Ok(running)
    }

    /// The container to capture in, adding an ephemeral one if `--ephemeral` asks for it.
    pub async fn target(&self, pod: Pod) -> Result<Target, PodError> {
        let name = name_of(&pod);
        let target = |container: String, added| Target {
            namespace: self.namespace.into(),
            pod: name.clone(),
            container,
            added,
        };
        if phase(&pod) != "Running" {
            let reason = pod.status.as_ref().and_then(|s| s.reason.clone().or(s.message.clone()));
            return Err(PodError::PodNotRunning {
                namespace: self.namespace.into(),
                pod: name,
                phase: phase(&pod),
                reason: reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            });
        }
        if self.want.ephemeral {
            if let Some(c) = reusable(&pod, &self.want.image) {
                return Ok(target(c, false));
            }
            let c = self.add_ephemeral(&name).await?;
            self.wait_running(&name, &c).await?;
            return Ok(target(c, true));
        }
        let names = container_names(&pod);
        let chosen = match &self.want.container {
            Some(c) if names.contains(c) => c.clone(),
            Some(c) => {
                return Err(PodError::NoSuchContainer {
                    namespace: self.namespace.into(),
                    pod: name,
                    container: c.clone(),
                    known: names.join(", "),
                })
            }
            None if names.iter().any(|n| n == LINKERD_DEBUG) => LINKERD_DEBUG.to_string(),
            None => match earlier_debug_container(&pod) {
                Some(c) => c,
                None => {
                    return Err(PodError::NoCaptureContainer {
                        namespace: self.namespace.into(),
                        pod: name,
                        known: names.join(", "),
                    })
                }
            },
        };
        if let Some(state) = state_of(&pod, &chosen).filter(|s| s.running.is_none()) {
            return Err(PodError::ContainerNotRunning {
                namespace: self.namespace.into(),
                pod: name,
                container: chosen,
                reason: describe(&state),
            });
        }
        Ok(target(chosen, false))
    }

    async fn add_ephemeral(&self, pod: &str) -> Result<String, PodError> {
        let name = format!("{EPHEMERAL_PREFIX}{}", suffix());
        let patch = json!({"spec": {"ephemeralContainers": [ephemeral_container(&name, &self.want.image)]}});
        let call = self.call(
            format!("add an ephemeral container to pod {}/{pod}", self.namespace),
            "patch",
            "pods/ephemeralcontainers",
        );
        let pp = PatchParams::default();
        let patch = Patch::Strategic(&patch);
        let done = self.api.patch_ephemeral_containers(pod, &pp, &patch);
        match self.bounded(&call, done).await {
            Ok(_) => {}
            Err(PodError::Api { code: 404, message, .. }) => {
                return Err(PodError::EphemeralUnsupported { message })
            }
            Err(PodError::Forbidden { message, .. }) if message.contains("PodSecurity") => {
                return Err(PodError::EphemeralRejected {
                    namespace: self.namespace.into(),
                    pod: pod.into(),
                    message: format!(
                        "{message}; the namespace's Pod Security level does not allow the NET_RAW \
                         and NET_ADMIN capabilities a capture needs (they need the privileged \
                         level): capture from a sidecar with -c instead"
                    ),
                })
            }
            Err(PodError::Api { code: 422, message, .. }) => {
                return Err(PodError::EphemeralRejected {
                    namespace: self.namespace.into(),
                    pod: pod.into(),
                    message,
                })
            }
            Err(e) => return Err(e),
        }
        eprintln!(
            "mtlscope: added ephemeral container {name} (image {}) to pod {}/{pod}; ephemeral \
             containers cannot be removed: it stays, idle, until the pod is deleted or replaced \
             (the next --ephemeral run reuses it)",
            self.want.image, self.namespace
        );
        Ok(name)
    }

    /// Polls the pod until the ephemeral container runs; a pull error or an exit ends it early.
    async fn wait_running(&self, pod: &str, container: &str) -> Result<(), PodError> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let p = self.get(pod).await?;
            let status = p
                .status
                .as_ref()
                .and_then(|s| s.ephemeral_container_statuses.as_ref())
                .and_then(|all| all.iter().find(|c| c.name == container));
            if let Some(state) = status.and_then(|c| c.state.clone()) {
                if state.running.is_some() {
                    return Ok(());
                }
                let who = (self.namespace.to_string(), pod.to_string(), container.to_string());
                if let Some(w) = &state.waiting {
                    let reason = w.reason.clone().unwrap_or_default();
                    if matches!(
                        reason.as_str(),
                        "ErrImagePull"
                            | "ImagePullBackOff"
                            | "InvalidImageName"
                            | "ErrImageNeverPull"
                    ) {
                        return Err(PodError::ImagePull {
                            pod: format!("{}/{}", who.0, who.1),
                            container: who.2,
                            image: self.want.image.clone(),
                            reason,
                            message: w.message.clone().unwrap_or_default(),
                        });
                    }
                }
                if state.terminated.is_some() {
                    return Err(PodError::EphemeralExited {
                        namespace: who.0,
                        pod: who.1,
                        container: who.2,
                        state: describe(&state),
                    });
                }
                last = describe(&state);
            }
            if started.elapsed() >= self.want.running_timeout {
                return Err(PodError::NotStarted {
                    namespace: self.namespace.into(),
                    pod: pod.into(),
                    container: container.into(),
                    after: self.want.running_timeout,
                    state: last,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The ephemeral container's spec: the image, the capabilities a capture needs, an idle command.
pub fn ephemeral_container(name: &str, image: &str) -> serde_json::Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", IDLE],
        "stdin": false,
        "tty": false,
        "terminationMessagePolicy": "File",
        "securityContext": {"capabilities": {"add": ["NET_RAW", "NET_ADMIN"]}},
    })
}

pub fn name_of(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn phase(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".into())
}

/// Every container of the pod: regular, init (sidecars) and ephemeral.
fn container_names(p: &Pod) -> Vec<String> {
    let Some(spec) = &p.spec else { return Vec::new() };
    let regular = spec.containers.iter().map(|c| c.name.clone());
    let init = spec.init_containers.iter().flatten().map(|c| c.name.clone());
    let eph = spec.ephemeral_containers.iter().flatten().map(|c| c.name.clone());
    regular.chain(init).chain(eph).collect()
}

fn statuses(p: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let s = p.status.as_ref();
    let all = [
        s.and_then(|s| s.container_statuses.as_ref()),
        s.and_then(|s| s.init_container_statuses.as_ref()),
        s.and_then(|s| s.ephemeral_container_statuses.as_ref()),
    ];
    all.into_iter().flatten().flatten()
}

fn state_of(p: &Pod, container: &str) -> Option<ContainerState> {
    statuses(p).find(|c| c.name == container).and_then(|c| c.state.clone())
}

/// A running debug container an earlier `--ephemeral` run added.
fn earlier_debug_container(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?.ephemeral_containers.as_ref()?;
    spec.iter()
        .filter(|c| c.name.starts_with(EPHEMERAL_PREFIX))
        .find(|c| state_of(p, &c.name).is_some_and(|s| s.running.is_some()))
        .map(|c| c.name.clone())
}

/// An earlier mtlscope debug container of the same image, still running.
fn reusable(p: &Pod, image: &str) -> Option<String> {
    let spec = p.spec.as_ref()?.ephemeral_containers.as_ref()?;
    spec.iter()
        .filter(|c| c.name.starts_with(EPHEMERAL_PREFIX) && c.image.as_deref() == Some(image))
        .find(|c| state_of(p, &c.name).is_some_and(|s| s.running.is_some()))
        .map(|c| c.name.clone())
}

/// " (waiting: ContainerCreating)", " (terminated: Error, exit code 1)".
fn describe(s: &ContainerState) -> String {
    if let Some(w) = &s.waiting {
        let msg = w.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        return format!(" (waiting: {}{msg})", w.reason.as_deref().unwrap_or("unknown"));
    }
    if let Some(t) = &s.terminated {
        return format!(
            " (terminated: {}, exit code {})",
            t.reason.as_deref().unwrap_or("unknown"),
            t.exit_code
        );
    }
    String::new()
}

/// Five characters from [a-z0-9], like kubectl debug's `debugger-xxxxx`.
fn suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    let mut n = h.finish();
    (0..5)
        .map(|_| {
            let d = (n % 36) as u8;
            n /= 36;
            char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_earlier_debug_container_is_found_only_while_it_runs_and_with_the_same_image() {
        let mut p = pod(json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app"}], "ephemeralContainers": [
                {"name": "mtlscope-debug-abcde", "image": "img:1"},
                {"name": "debugger-xyz", "image": "img:1"}]},
            "status": {"phase": "Running", "ephemeralContainerStatuses": [
                {"name": "mtlscope-debug-abcde", "image": "img:1", "imageID": "", "ready": false,
                 "restartCount": 0, "state": {"running": {}}}]}
        }));
        assert_eq!(reusable(&p, "img:1").as_deref(), Some("mtlscope-debug-abcde"));
        assert_eq!(reusable(&p, "img:2"), None);
        assert_eq!(earlier_debug_container(&p).as_deref(), Some("mtlscope-debug-abcde"));
        let st = p.status.as_mut().unwrap().ephemeral_container_statuses.as_mut().unwrap();
        st[0].state =
            Some(ContainerState { terminated: Some(Default::default()), ..Default::default() });
        assert_eq!(reusable(&p, "img:1"), None);
        assert_eq!(earlier_debug_container(&p), None);
    }

    #[test]
    fn suffixes_are_five_lowercase_alphanumerics() {
        let s = suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{s}");
    }
}
