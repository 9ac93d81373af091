//! `mtlscope pod`: capture in running pods through the Kubernetes exec API (a sidecar with
//! tcpdump, or an ephemeral debug container) and stream the verdicts as `live` does.

use super::live::{
    check_flow, finish_check, run_tui, summary_line, write_event, LiveCheck, LiveFormat,
    StreamCheckArgs,
};
use super::{load_inventory, load_keylogs, EngineArgs, RunInventory, EXIT_OK, EXIT_UNREADABLE};
use crate::analyze::AnalyzedFlow;
use crate::inventory::live::{parse_request_timeout, KubeArgs};
use crate::live::source::{self, Counters, Sources, CHANNEL_PACKETS, FULL_SNAPLEN};
use crate::live::{self, Event, LiveConfig};
use crate::pod::remote::{self, Outcome, StatusLine, Who};
use crate::pod::{self, Ended, PodOptions, Want, DEFAULT_IMAGE};
use clap::Args;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const POD_EXAMPLES: &str = "\
Examples:
  mtlscope pod -n emojivoto web-7d9f-abcde            (its linkerd-debug sidecar's tcpdump)
  mtlscope pod -n shop web-0 -c debug -o tui          (a container of yours that has tcpdump)
  mtlscope pod -n shop web-0 --ephemeral              (add a debug container; no restart)
  mtlscope pod -n shop -l app=web --duration 60s      (every running pod of app=web, merged)
  mtlscope pod -n shop web-0 db-0 -w both.pcapng      (both ends; the capture kept for analyze)
  mtlscope pod -n shop web-0 --duration 60s --check --expect-traffic
  kubectl mtlscope pod -n shop web-0                  (installed as the kubectl-mtlscope plugin)

How: `sh -c` runs `tcpdump -i any -U -w -` (else `tshark -i any -F pcap -w -`) in the container
through the exec API; its pcap stream feeds the live pipeline, its stderr is shown as status.
Ctrl-C, --duration and --count stop it in the pod (a line on its stdin makes the wrapper send
it SIGTERM) before the final summary. Each packet is tagged with its pod (the flow's
`interface` is namespace/pod).

RBAC: get pods (list pods with -l), create pods/exec; with --ephemeral also patch
pods/ephemeralcontainers. Ephemeral containers cannot be removed: the debug container stays,
idle, until the pod is deleted or replaced (the next --ephemeral run reuses it).

Output: as `mtlscope live` (JSON lines, schema mtlscope-live/v1, or -o tui).

Exit codes:
  0  the capture ran and stopped as asked (--duration, --count, Ctrl-C, the UI's q)
  2  a pod, container or capture tool could not be used (the message says what to do), a
     capture failed in the pod, or a stream dropped mid-way (what was captured is reported)
  with --check: the check's code (a proven violation stays 1 even when a stream dropped)";

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["pods", "selector"]))]
pub struct PodArgs {
    /// Pods to capture in (several are merged into one view, each packet tagged with its pod).
    #[arg(value_name = "POD")]
    pub pods: Vec<String>,

    /// Capture in every running pod this label selector matches, e.g. app=web.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR", conflicts_with = "pods")]
    pub selector: Option<String>,

    /// The pods' namespace [default: the context's namespace, else `default`].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// The kubeconfig context to use [default: its current-context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Path to the kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else the
    /// in-cluster service account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// How long one API call (not the capture stream) may take (0 waits forever).
    #[arg(long, value_name = "DURATION", value_parser = parse_request_timeout, default_value = "30s")]
    pub request_timeout: Duration,

    /// The container that runs tcpdump or tshark [default: linkerd-debug, else a debug
    /// container an earlier --ephemeral run added].
    #[arg(short = 'c', long, value_name = "CONTAINER", conflicts_with = "ephemeral")]
    pub container: Option<String>,

    /// Add an ephemeral debug container with tcpdump to each pod (no restart; it cannot be
    /// removed until the pod is deleted or replaced); a running one from an earlier run with
    /// the same image is reused.
    #[arg(long)]
    pub ephemeral: bool,

    /// The ephemeral container's image: it needs sh and tcpdump or tshark.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,

    /// How long to wait for an ephemeral container to run (image pull included).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "1m")]
    pub pod_running_timeout: Duration,

    /// The capture filter in the pod (default: TCP plus the tunnel protocols the decoder opens).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Bytes captured per packet. Shorter than the default cuts TLS handshakes (warned).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = FULL_SNAPLEN as u32)]
    pub snaplen: u32,

    /// Stop each pod's capture after N packets (the tool's -c).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Stop after this long (e.g. 60s, 5m).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Also save the capture: one pod's stream as the pod wrote it (pcap); several pods into
    /// one pcapng with an interface per pod (namespace/pod), for a later `analyze`.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Output: JSON lines for machines, or a terminal UI.
    #[arg(long, short = 'o', value_enum, default_value_t = LiveFormat::Jsonl)]
    pub format: LiveFormat,

    /// Write a summary line this often (0 turns them off); one is always written at the end.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub summary_interval: Duration,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Kubernetes objects to name the pods at both ends of every flow (as for analyze).
    #[arg(long = "inventory", value_name = "FILE")]
    pub inventories: Vec<PathBuf>,

    #[command(flatten)]
    pub checking: StreamCheckArgs,
}

impl PodArgs {
    pub fn options(&self, engine: &crate::engine::EngineConfig) -> PodOptions {
        let kube = KubeArgs {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
            all_namespaces: false,
            request_timeout: self.request_timeout,
        }
        .options();
        PodOptions {
            want: Want {
                container: self.container.clone(),
                ephemeral: self.ephemeral,
                image: self.image.clone(),
                running_timeout: self.pod_running_timeout,
                request_timeout: kube.request_timeout,
            },
            kube,
            pods: self.pods.clone(),
            selector: self.selector.clone(),
            filter: self
                .filter
                .clone()
                .unwrap_or_else(|| source::default_filter(&engine.decode, false)),
            snaplen: self.snaplen,
            count: self.count.filter(|&n| n > 0),
            duration: self.duration,
            write: self.write.clone(),
        }
    }

    fn checker(&self) -> Result<Option<LiveCheck>, String> {
        let Some(check) = self.checking.check_args() else { return Ok(None) };
        LiveCheck::new(check, super::check::Env::from_system()).map(Some)
    }
}

/// One source thread per pod stream, each tagged with its pod's interface index.
fn sources(capture: &mut pod::Capture, keylog: Option<Arc<crate::keylog::KeyLog>>) -> Sources {
    let (tx, rx) = mpsc::sync_channel(CHANNEL_PACKETS);
    let counters = Arc::new(Counters::default());
    let mut interfaces = Vec::new();
    let mut threads = Vec::new();
    for (i, s) in std::mem::take(&mut capture.streams).into_iter().enumerate() {
        interfaces.push(s.target.label());
        let (tx, c, k) = (tx.clone(), counters.clone(), keylog.clone());
        let iface = u32::try_from(i).unwrap_or(u32::MAX);
        threads.push(std::thread::spawn(move || source::run_tagged(s.reader, iface, tx, c, k)));
    }
    Sources { rx, counters, interfaces, running: threads.len(), threads }
}

pub fn run(args: &PodArgs) -> i32 {
    let mut engine = args.engine.engine_config();
    engine.flow.events = true;
    match load_keylogs(&args.engine.keylogs) {
        Ok(keylog) => engine.keylog = Some(keylog),
        Err(e) => return fail(&e),
    }
    let inventory = match load_inventory(&args.inventories, None) {
        Ok(inv) => inv,
        Err(e) => return fail(&e),
    };
    let mut checker = match args.checker() {
        Ok(c) => c,
        Err(e) => return fail(&format!("--check: {e}")),
    };
    if args.snaplen < 65_535 {
        eprintln!(
            "mtlscope: warning: --snaplen {} cuts packets short: TLS handshakes (certificates) may \
             be unreadable and flows judged unknown; the default is {FULL_SNAPLEN}",
            args.snaplen
        );
    }
    let tui = args.format == LiveFormat::Tui;
    // The capture's stderr as status lines; under the UI they are kept for the end instead.
    let say: StatusLine = if tui {
        Arc::new(|_: &str, _: &str| {})
    } else {
        Arc::new(|pod: &str, line: &str| {
            eprintln!("mtlscope: {pod}: {}", line.strip_prefix("mtlscope: ").unwrap_or(line))
        })
    };
    let mut capture = match pod::start(args.options(&engine), say) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let save_errors: Vec<_> =
        capture.streams.iter().map(|s| (s.target.label(), s.save_error.clone())).collect();
    let sources = sources(&mut capture, engine.keylog.clone());
    // The run ends when the streams do: --duration and Ctrl-C stop the captures in the pods.
    let cfg = LiveConfig {
        engine,
        summary_interval: args.summary_interval,
        duration: None,
        timelines: tui,
    };
    let inv = inventory.as_ref();
    if tui {
        let code = run_tui(sources, cfg, inv, checker);
        let ended = capture.finish();
        let failed = report(&ended, &save_errors, true);
        return if failed { EXIT_UNREADABLE } else { code };
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let enrich = |f: &mut AnalyzedFlow| RunInventory::enrich(inv, f);
    let (mut summary, error) = live::run(sources, &cfg, &enrich, &mut |ev| {
        if let (Some(c), Event::Flow(live::FlowEvent::Finished, f, _)) = (&mut checker, &ev) {
            c.checker.add(&check_flow(f));
        }
        write_event(&mut out, &ev)
    });
    // Normally every capture has ended already; after a closed stdout this stops them.
    let ended = capture.finish();
    summary.timed_out = ended.timed_out;
    let result = match error {
        Some(e) => Err(e),
        None => serde_json::to_writer(&mut out, &summary_line(&summary, true))
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush()),
    };
    let result = match (result, checker) {
        (Ok(()), Some(checker)) => Ok(Some(finish_check(checker, &summary, Some(&mut out)))),
        (r, _) => r.map(|()| None),
    };
    for e in &summary.errors {
        eprintln!("mtlscope: warning: stream stopped: {e}");
    }
    if summary.channel_drops > 0 {
        eprintln!(
            "mtlscope: warning: {} packets dropped because mtlscope fell behind: flows may be \
             judged on incomplete handshakes",
            summary.channel_drops
        );
    }
    let failed = report(&ended, &save_errors, false);
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("mtlscope: error: writing the output: {e}");
            EXIT_UNREADABLE
        }
        Ok(Some(1)) => 1,
        Ok(_) if failed => EXIT_UNREADABLE,
        Ok(Some(code)) => code,
        Ok(None) => EXIT_OK,
    }
}

fn fail(e: &str) -> i32 {
    eprintln!("mtlscope: error: {e}");
    EXIT_UNREADABLE
}

/// How each pod's capture ended, on stderr; true when one failed or dropped (exit 2).
fn report(
    ended: &Ended,
    save_errors: &[(String, Arc<std::sync::Mutex<Option<String>>>)],
    show_stderr: bool,
) -> bool {
    let mut failed = false;
    for (t, o) in &ended.pods {
        let who = Who { namespace: &t.namespace, pod: &t.pod, container: &t.container };
        if show_stderr {
            for line in &o.stderr {
                eprintln!(
                    "mtlscope: {}: {}",
                    t.label(),
                    line.strip_prefix("mtlscope: ").unwrap_or(line)
                );
            }
        }
        if o.dropped() {
            failed = true;
            eprintln!("mtlscope: error: {}", dropped(t, o));
        } else if o.status.is_some() && !o.succeeded() {
            failed = true;
            eprintln!("mtlscope: error: {}", remote::failed(o, &who));
        } else if o.cut_after_stop {
            eprintln!(
                "mtlscope: warning: {}: the capture did not confirm its stop within {:?}; the \
                 session was closed, which ends it in the pod (its stdin ends and its output \
                 breaks)",
                t.label(),
                remote::STOP_GRACE
            );
        }
    }
    for (label, slot) in save_errors {
        if let Some(e) = slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            failed = true;
            eprintln!("mtlscope: error: -w: {label}: {e}");
        }
    }
    failed
}

fn dropped(t: &pod::Target, o: &Outcome) -> String {
    let why = o.failure.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
    format!(
        "{}: the capture stream from container {} ended after {} bytes without the capture's \
         exit status{why}: the connection to the API server dropped, or the pod or container \
         went away; the flows above are what was captured until then",
        t.label(),
        t.container,
        o.bytes
    )
}
