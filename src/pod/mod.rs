//! Capture from pods (`mtlscope pod`): a `tcpdump -i any -U -w -` in each pod, run through the
//! Kubernetes exec API, streamed into the live pipeline as one source per pod.
//!
//! ```text
//!  kube thread (tokio, current-thread)                      source threads    engine thread
//!  ┌ per pod: exec sh -c SCRIPT ──stdout chunks (bounded)──▶ StreamReader ──▶ live::run
//!  │          stderr lines ──▶ the user (status)             run_tagged(iface = pod)
//!  │          stdin "\n" ◀── stop (Ctrl-C, --duration, the UI's quit)
//!  └ error channel: the capture's exit status ──▶ Outcome
//! ```
//!
//! Packets carry their pod as their interface (`namespace/pod`), so the merged view and the
//! JSON lines say which pod saw each flow; a flow seen from both of its pods is one flow (the
//! engine counts the second pod's copies as `duplicates`, as it does for `-i any`).
//!
//! Stopping is always the same path: the stop line goes to every capture, each flushes and
//! exits, their streams end, the sources end, and the pipeline reports the final summary.

pub mod error;
pub mod remote;
pub mod stream;
pub mod target;

use crate::inventory::live::{configure, Env, KubeOptions, Namespaces};
use error::{Call, PodError};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use remote::{Outcome, StatusLine, Who};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stream::{PcapSplitter, PcapngWriter, StreamReader, Tee, STREAM_CHUNKS};
pub use target::{Target, Want, DEFAULT_IMAGE};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a capture may take to write its first bytes before the run goes on without them.
const FIRST_BYTES: Duration = Duration::from_secs(10);

/// What to capture, and where.
#[derive(Debug, Clone)]
pub struct PodOptions {
    pub kube: KubeOptions,
    /// Pod names (in the namespace), or none with `selector`.
    pub pods: Vec<String>,
    pub selector: Option<String>,
    pub want: Want,
    /// The tool's capture filter (BPF).
    pub filter: String,
    pub snaplen: u32,
    /// Each pod's capture ends after this many packets (the tool's `-c`).
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    /// `-w`: the stream (one pod) or a pcapng with an interface per pod (several).
    pub write: Option<PathBuf>,
}

/// One pod's stream, ready for a source thread.
pub struct PodStream {
    pub target: Target,
    pub reader: StreamReader,
    /// The first error `-w` met for this stream.
    pub save_error: Arc<Mutex<Option<String>>>,
}

/// A started capture: the streams, and the thread that drives the exec sessions.
pub struct Capture {
    pub streams: Vec<PodStream>,
    /// Set to stop every capture (the pipeline ended first: the UI's quit, a closed stdout).
    pub stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Ended>,
}

/// How the run ended, pod by pod.
#[derive(Debug, Default)]
pub struct Ended {
    pub pods: Vec<(Target, Outcome)>,
    /// `--duration` ran out.
    pub timed_out: bool,
    /// Ctrl-C (or SIGTERM) asked for the stop.
    pub interrupted: bool,
}

impl Capture {
    /// Asks every capture to stop (if it has not ended) and waits for the sessions to close.
    pub fn finish(self) -> Ended {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Finds the pods and their capture containers (adding ephemeral ones if asked), starts a
/// capture in each and returns once every one has written its first bytes (or could not
/// start: the error says why and what to do). `say` shows the captures' stderr.
pub fn start(opts: PodOptions, say: StatusLine) -> Result<Capture, PodError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let stop = Arc::new(AtomicBool::new(false));
    let ext_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("kube".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(PodError::Runtime(e)));
                    return Ended::default();
                }
            };
            rt.block_on(run(opts, say, ready_tx, ext_stop))
        })
        .map_err(PodError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok(streams)) => Ok(Capture { streams, stop, thread }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(PodError::Runtime(std::io::Error::other("the Kubernetes client thread ended")))
        }
    }
}

type Ready = std::sync::mpsc::SyncSender<Result<Vec<PodStream>, PodError>>;

/// A capture that runs: its pod and the task driving its session.
struct Running {
    target: Target,
    task: tokio::task::JoinHandle<Outcome>,
}

async fn run(opts: PodOptions, say: StatusLine, ready: Ready, ext_stop: Arc<AtomicBool>) -> Ended {
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = match setup(&opts, &say, stop_rx).await {
        Ok((running, streams)) => {
            let _ = ready.send(Ok(streams));
            running
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ended::default();
        }
    };
    let mut ended = Ended::default();
    watch_for_stop(&opts, &running, &stop_tx, &ext_stop, &mut ended).await;
    for r in running {
        let outcome = r.task.await.unwrap_or_else(|_| Outcome {
            stop_sent: true,
            cut_after_stop: true,
            ..Outcome::default()
        });
        ended.pods.push((r.target, outcome));
    }
    ended
}

/// Until every capture has ended: Ctrl-C/SIGTERM, `--duration` or the pipeline's end sends
/// the stop; a second Ctrl-C cuts the sessions at once.
async fn watch_for_stop(
    opts: &PodOptions,
    running: &[Running],
    stop: &watch::Sender<bool>,
    ext_stop: &AtomicBool,
    ended: &mut Ended,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let mut stopped = false;
    while !running.iter().all(|r| r.task.is_finished()) {
        let interrupted = async {
            match (&mut int, &mut term) {
                (Some(i), Some(t)) => tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} },
                _ => std::future::pending().await,
            }
        };
        let timer = async {
            match deadline {
                Some(at) if !stopped => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = interrupted => {
                if stopped {
                    for r in running {
                        r.task.abort();
                    }
                }
                ended.interrupted = true;
                stopped = true;
                let _ = stop.send(true);
            }
            () = timer => {
                ended.timed_out = true;
                stopped = true;
                let _ = stop.send(true);
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if !stopped && ext_stop.load(Ordering::Relaxed) {
                    stopped = true;
                    let _ = stop.send(true);
                }
            }
        }
    }
}

/// Connects, resolves every pod's capture container and starts the captures.
async fn setup(
    opts: &PodOptions,
    say: &StatusLine,
    stop: watch::Receiver<bool>,
) -> Result<(Vec<Running>, Vec<PodStream>), PodError> {
    let mut chosen = configure(&opts.kube, &Env::from_process()).await?;
    // A capture may be quiet for minutes: no read timeout on the streams. Each plain call is
    // bounded by --request-timeout instead.
    chosen.config.read_timeout = None;
    if let Some(t) = opts.kube.request_timeout {
        chosen.config.connect_timeout = Some(t);
    }
    let cluster = chosen.connect()?;
    let namespace = match &opts.kube.namespaces {
        Namespaces::One(ns) => ns.clone(),
        _ => cluster.default_namespace.clone(),
    };
    let pods = target::Pods {
        api: Api::namespaced(cluster.client.clone(), &namespace),
        namespace: &namespace,
        server: &cluster.server,
        context: &cluster.context,
        want: &opts.want,
    };
    let found: Vec<Pod> = match &opts.selector {
        Some(sel) => pods.select(sel).await?,
        None => {
            let mut found = Vec::new();
            for name in &opts.pods {
                found.push(pods.get(name).await?);
            }
            found
        }
    };
    let mut targets = Vec::new();
    for pod in found {
        targets.push(pods.target(pod).await?);
    }
    let tees = tees(opts.write.as_ref(), &targets)?;
    let mut running = Vec::new();
    let mut streams = Vec::new();
    for (target, tee) in targets.into_iter().zip(tees) {
        let who =
            Who { namespace: &target.namespace, pod: &target.pod, container: &target.container };
        let call = Call {
            action: format!("exec in pod {}", target.label()),
            namespace: &namespace,
            verb: "create",
            resource: "pods/exec",
            server: &cluster.server,
            context: &cluster.context,
        };
        let cmd = remote::command(&opts.filter, opts.snaplen, opts.count);
        let params = remote::attach_params(&target.container);
        let exec = pods.api.exec(&target.pod, cmd, &params);
        let proc = match opts.kube.request_timeout {
            Some(t) => tokio::time::timeout(t, exec).await.map_err(|_| call.timeout(t))?,
            None => exec.await,
        }
        .map_err(|e| call.error(e))?;
        let (tx, rx) = mpsc::channel(STREAM_CHUNKS);
        let (started_tx, started_rx) = oneshot::channel();
        let task = tokio::spawn(remote::drive(
            proc,
            target.label(),
            tx,
            stop.clone(),
            say.clone(),
            started_tx,
        ));
        // The capture tool writes its header at once: wait for it, or for the reason it could
        // not start (no tcpdump, no permission), before the pipeline starts.
        let started = tokio::time::timeout(FIRST_BYTES, started_rx).await;
        if matches!(started, Ok(Err(_))) {
            let outcome = task.await.unwrap_or_default();
            if outcome.bytes == 0 {
                return Err(remote::startup_error(&outcome, &who, &opts.want.image));
            }
            return Err(remote::failed(&outcome, &who));
        }
        let (reader, save_error) = StreamReader::new(rx, tee);
        streams.push(PodStream { target: target.clone(), reader, save_error });
        running.push(Running { target, task });
    }
    Ok((running, streams))
}

/// `-w FILE`: the raw stream for one pod, a shared pcapng for several.
fn tees(path: Option<&PathBuf>, targets: &[Target]) -> Result<Vec<Option<Tee>>, PodError> {
    let Some(path) = path else { return Ok(targets.iter().map(|_| None).collect()) };
    let cannot = |e: std::io::Error| PodError::Write {
        path: path.display().to_string(),
        cause: e.to_string(),
    };
    let file = File::create(path).map_err(cannot)?;
    if let [_] = targets {
        return Ok(vec![Some(Tee::Raw(BufWriter::new(file)))]);
    }
    let shared = Arc::new(Mutex::new(PcapngWriter::new(file).map_err(cannot)?));
    Ok(targets
        .iter()
        .map(|t| {
            Some(Tee::Pcapng {
                name: t.label(),
                splitter: PcapSplitter::default(),
                file: shared.clone(),
            })
        })
        .collect())
}
