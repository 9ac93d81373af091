//! `mtlscope live`: capture on running interfaces (or replay a capture through the same
//! pipeline) and stream each flow's verdict as soon as it is decided.

use super::check::{could_not_verify, Env};
use super::{
    load_keylogs, load_run_inventory, EngineArgs, NamesArgs, RunInventory, EXIT_OK, EXIT_UNREADABLE,
};
use crate::analyze::AnalyzedFlow;
use crate::check::{
    check_dto, github, text, Annotations, CheckArgs, CheckFlow, CheckFormat, CheckInput,
    CheckInputStats, Checker, Date, FlowPlacement, Level, DEFAULT_MAX_LOSSY_PERCENT,
};
use crate::engine::EngineConfig;
use crate::live::source::{self, Counters, Sources, Speed, CHANNEL_PACKETS, FULL_SNAPLEN};
use crate::live::{self, Event, LiveConfig, LiveSummary};
use crate::report::json::flow_dto;
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const LIVE_SCHEMA: &str = "mtlscope-live/v1";

pub const LIVE_EXAMPLES: &str = "\
Examples:
  sudo mtlscope live -i any                         (every interface of this network namespace)
  sudo mtlscope live -i eth0 -f 'tcp port 8080' --duration 60s
  mtlscope live -r capture.pcap                     (replay a capture, no privileges needed)
  mtlscope live -r capture.pcap --speed recorded    (at the capture's own pace)
  kubectl exec -n shop web-0 -c debug -- tcpdump -i any -U -w - | mtlscope live -r -
  sudo mtlscope live -i any | jq -c 'select(.type == \"flow\") | .flow.verdict'
  sudo mtlscope live -i any --duration 60s --inventory cluster.json --check --expect-traffic
  sudo mtlscope live -i any -A                      (names from the cluster of the kubeconfig)
  sudo mtlscope live -i any --duration 5m -A --check --junit mtls.xml --sarif mtls.sarif

Output (--format jsonl, schema mtlscope-live/v1): one JSON object a line.
  {\"type\":\"flow\",\"event\":\"decided\"|\"updated\"|\"finished\",\"flow\":{...}}   the flow object
      is the one `analyze --format json` writes
  {\"type\":\"summary\",\"final\":false,...}   every --summary-interval, and once at the end
  {\"type\":\"check\",\"check\":{...}}   with --check, last: the check section of `check -o json`

With --check, -o/--format stays the stream's format: the check's text report goes to stderr
(after the terminal UI closes, with -o tui), its JSON section is the last line of the stream,
--junit/--sarif/--write-baseline write files, and GitHub annotations go to stderr.

Privileges: live capture needs CAP_NET_RAW and CAP_NET_ADMIN:
  sudo setcap cap_net_raw,cap_net_admin+eip $(command -v mtlscope)    (or run as root)

Exit codes:
  0  the capture ran (until the input ended, --duration, or the reader of stdout went away)
  2  an interface could not be opened, the replayed input could not be read, bad usage
  with --check: the check's code (0 pass, 1 fail, 2 could not verify), as `mtlscope check`";

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["interfaces", "read"]))]
pub struct LiveArgs {
    /// Interface to capture on (`any`: all of this network namespace); repeatable.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,

    /// Replay a capture file (`-` for stdin) through the live pipeline instead.
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with = "interfaces")]
    pub read: Option<String>,

    /// Replay speed: max (as fast as possible) or recorded (the packets' own spacing).
    #[arg(long, value_enum, default_value_t = SpeedArg::Max)]
    pub speed: SpeedArg,

    /// BPF filter (default: TCP plus the tunnel protocols the decoder opens).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Bytes captured per packet. Shorter than the default cuts TLS handshakes (warned).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = FULL_SNAPLEN)]
    pub snaplen: i32,

    /// Output: JSON lines for machines, or a terminal UI.
    #[arg(long, short = 'o', value_enum, default_value_t = LiveFormat::Jsonl)]
    pub format: LiveFormat,

    /// Write a summary line this often (0 turns them off); one is always written at the end.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub summary_interval: Duration,

    /// Stop after this long (e.g. 60s, 5m) and report every open flow as finished.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(flatten)]
    pub names: NamesArgs,

    #[command(flatten)]
    pub checking: StreamCheckArgs,
}

/// `--check` and its options, shared by `live` and `pod`.
#[derive(Args, Debug, Clone, Default)]
pub struct StreamCheckArgs {
    /// Judge the finished flows like `mtlscope check` when the run ends (--duration, end of
    /// input, Ctrl-C, or `q` in the terminal UI): the text report goes to stderr, a `check` line ends
    /// the JSON lines, and the exit code is the check's (0 pass, 1 fail, 2 could not verify).
    /// A reader of stdout that goes away stops the output, not the judging.
    #[arg(long)]
    pub check: bool,

    /// With --check: the policy file (default: pod-to-pod and pod-to-service must be mtls).
    #[arg(long, value_name = "FILE", requires = "check")]
    pub policy: Option<PathBuf>,

    /// With --check: the level the default scopes must meet (mtls or tls).
    #[arg(long, value_enum, value_name = "LEVEL", requires = "check")]
    pub require: Option<Level>,

    /// With --check: only violations on edges not in this baseline fail.
    #[arg(long, value_name = "FILE", requires = "check")]
    pub baseline: Option<PathBuf>,

    /// With --check: could not verify (exit 2) when no judged flow carried payload.
    #[arg(long, requires = "check")]
    pub expect_traffic: bool,

    /// With --check: could not verify (exit 2) with fewer judged flows than N.
    #[arg(long, value_name = "N", requires = "check")]
    pub min_flows: Option<u64>,

    /// With --check: record today's violating edges in FILE and accept them for this run.
    #[arg(long, value_name = "FILE", requires = "check")]
    pub write_baseline: Option<PathBuf>,

    /// With --check: could not verify (exit 2) when more than PERCENT of the judged flows had
    /// their TLS handshake hit by capture loss (kernel or channel drops, snaplen); default 10.
    #[arg(long, value_name = "PERCENT", requires = "check")]
    pub max_lossy: Option<f64>,

    /// With --check: write a JUnit XML report (one testcase per edge) to FILE.
    #[arg(long, value_name = "FILE", requires = "check")]
    pub junit: Option<PathBuf>,

    /// With --check: write a SARIF 2.1.0 log (for code-scanning upload) to FILE.
    #[arg(long, value_name = "FILE", requires = "check")]
    pub sarif: Option<PathBuf>,

    /// With --check: print GitHub Actions annotations (::error ...) on stderr; auto when
    /// GITHUB_ACTIONS=true.
    #[arg(long, value_enum, value_name = "WHEN", requires = "check")]
    pub github_annotations: Option<Annotations>,

    /// With --check: judge allow-rule expiry as of this day instead of today (UTC).
    #[arg(long, value_name = "YYYY-MM-DD", requires = "check")]
    pub today: Option<Date>,
}

impl StreamCheckArgs {
    /// The `mtlscope check` settings `--check` stands for (None without `--check`).
    pub fn check_args(&self) -> Option<CheckArgs> {
        self.check.then(|| CheckArgs {
            policy: self.policy.clone(),
            require: self.require,
            baseline: self.baseline.clone(),
            write_baseline: self.write_baseline.clone(),
            expect_traffic: self.expect_traffic,
            min_flows: self.min_flows,
            max_lossy: self.max_lossy.unwrap_or(DEFAULT_MAX_LOSSY_PERCENT),
            junit: self.junit.clone(),
            sarif: self.sarif.clone(),
            github_annotations: self.github_annotations.unwrap_or(Annotations::Auto),
            format: CheckFormat::Text,
            today: self.today,
        })
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeedArg {
    Max,
    Recorded,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveFormat {
    Jsonl,
    /// A terminal UI: edges worst first, flows, a detail pane (keys: `?`).
    Tui,
}

impl LiveArgs {
    /// The `mtlscope check` settings `--check` stands for. `check`'s `-o/--format` has no
    /// counterpart: live's `-o/--format` is the stream's, the text report goes to stderr and
    /// the JSON section is the stream's last line.
    pub fn check_args(&self) -> Option<CheckArgs> {
        self.checking.check_args()
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut cfg = self.engine.engine_config();
        // Live reports verdicts as soon as they are decided, not only when flows end.
        cfg.flow.events = true;
        cfg
    }
}

/// Opens every source and starts its thread; an error names what to do (exit 2).
fn start_sources(args: &LiveArgs, cfg: &EngineConfig) -> Result<Sources, String> {
    if let Some(path) = &args.read {
        let input: Box<dyn io::Read + Send> = if path == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(std::fs::File::open(path).map_err(|e| format!("{path}: cannot open: {e}"))?)
        };
        let speed = match args.speed {
            SpeedArg::Max => Speed::Max,
            SpeedArg::Recorded => Speed::Recorded,
        };
        // Unnamed (classic pcap) interfaces stay unnamed, as in `analyze`.
        return Ok(source::start_replay(input, speed, cfg.keylog.clone()));
    }
    let (tx, rx) = mpsc::sync_channel(CHANNEL_PACKETS);
    let counters = Arc::new(Counters::default());
    if args.snaplen < 65_535 {
        eprintln!(
            "mtlscope: warning: --snaplen {} cuts packets short: TLS handshakes (certificates) may \
             be unreadable and flows judged unknown; the default is {FULL_SNAPLEN}",
            args.snaplen
        );
    }
    // Open them all first: a permission error is reported before anything runs.
    let mut caps = Vec::new();
    for name in &args.interfaces {
        let filter = args.filter.as_deref();
        caps.push(source::open_live(name, args.snaplen, filter, &cfg.decode).map_err(|e| e.0)?);
    }
    let mut threads = Vec::new();
    for (i, cap) in caps.into_iter().enumerate() {
        let (tx, c) = (tx.clone(), counters.clone());
        let slot = Arc::new(AtomicU64::new(0));
        let iface = u32::try_from(i).unwrap_or(u32::MAX);
        threads.push(std::thread::spawn(move || source::run_live(cap, iface, tx, c, slot)));
    }
    Ok(Sources {
        rx,
        counters,
        interfaces: args.interfaces.clone(),
        running: threads.len(),
        threads,
    })
}

#[derive(Serialize)]
struct FlowLine {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
    flow: crate::report::json::FlowDto,
}

#[derive(Serialize)]
struct DropsDto {
    kernel: u64,
    channel: u64,
}

#[derive(Serialize)]
struct FlowCountsDto {
    active: usize,
    finished: u64,
}

#[derive(Serialize)]
pub(super) struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: &'static str,
    #[serde(rename = "final")]
    last: bool,
    elapsed_s: f64,
    interfaces: &'a [String],
    packets: u64,
    bytes: u64,
    tcp_packets: u64,
    truncated_frames: u64,
    drops: DropsDto,
    flows: FlowCountsDto,
    verdicts: &'a BTreeMap<&'static str, u64>,
    errors: &'a [String],
    /// The run stopped at --duration (final line only).
    timed_out: bool,
}

pub(super) fn summary_line(s: &LiveSummary, last: bool) -> SummaryLine<'_> {
    SummaryLine {
        kind: "summary",
        schema: LIVE_SCHEMA,
        last,
        elapsed_s: (s.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        interfaces: &s.interfaces,
        packets: s.packets,
        bytes: s.bytes,
        tcp_packets: s.tcp_packets,
        truncated_frames: s.truncated_frames,
        drops: DropsDto { kernel: s.kernel_drops, channel: s.channel_drops },
        flows: FlowCountsDto { active: s.active_flows, finished: s.finished_flows },
        verdicts: &s.verdicts,
        errors: &s.errors,
        timed_out: s.timed_out,
    }
}

/// One event as one JSON line, flushed at once so that `jq` and log shippers see it.
pub(super) fn write_event(out: &mut dyn Write, ev: &Event<'_>) -> io::Result<()> {
    match ev {
        Event::Flow(kind, f, _) => {
            let line = FlowLine { kind: "flow", event: kind.as_str(), flow: flow_dto(f) };
            serde_json::to_writer(&mut *out, &line)?;
        }
        Event::Summary(s) => serde_json::to_writer(&mut *out, &summary_line(s, false))?,
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// `--check`'s settings and its judge, made before the capture starts (an invalid policy or
/// baseline stops the run at once).
pub(super) struct LiveCheck {
    args: CheckArgs,
    pub(super) checker: Checker,
    env: Env,
}

impl LiveCheck {
    pub(super) fn new(args: CheckArgs, env: Env) -> Result<Self, String> {
        let policy = args.load_policy().map_err(|e| format!("invalid policy: {e}"))?;
        let opts = args.options(env.today_utc).map_err(|e| e.to_string())?;
        Ok(LiveCheck { args, checker: Checker::new(policy, opts), env })
    }
}

fn start_check(args: &LiveArgs, env: Env) -> Result<Option<LiveCheck>, String> {
    args.check_args().map(|check| LiveCheck::new(check, env)).transpose()
}

pub(super) fn check_flow(f: &AnalyzedFlow) -> CheckFlow {
    CheckFlow::from_analyzed(f, f.placement.as_deref().map(FlowPlacement::from))
}

#[derive(Serialize)]
struct CheckLine {
    #[serde(rename = "type")]
    kind: &'static str,
    check: crate::check::CheckDto,
}

/// Ends `--check` as `mtlscope check` ends: the files (`--write-baseline`, `--junit`,
/// `--sarif`), the text report and any GitHub annotations on stderr, and the `check` line on
/// `out` (the JSON stream; None under the terminal UI). Returns the exit code: the check's,
/// or could-not-verify when a file could not be written (a proven violation still exits 1).
pub(super) fn finish_check(
    check: LiveCheck,
    summary: &LiveSummary,
    out: Option<&mut dyn Write>,
) -> i32 {
    let input = CheckInput {
        path: summary.interfaces.join(","),
        error: (summary.packets == 0).then(|| summary.errors.first().cloned()).flatten(),
        truncated_frames: summary.truncated_frames,
    };
    let mut report = check.checker.finish(CheckInputStats { inputs: vec![input] });
    let files = check.args.write_files(&mut report);
    eprint!("{}", text::render(&report));
    if check.args.annotate(check.env.github_actions.as_deref()) {
        for line in github::annotations(&report) {
            eprintln!("{line}");
        }
    }
    let mut code = report.exit_code();
    if let Err(e) = files {
        eprintln!("mtlscope: error: writing {e}");
        code = could_not_verify(code);
    }
    if let Some(out) = out {
        let line = CheckLine { kind: "check", check: check_dto(&report) };
        let written = serde_json::to_writer(&mut *out, &line)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        match written {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                eprintln!("mtlscope: error: writing the output: {e}");
                code = could_not_verify(code);
            }
            _ => {}
        }
    }
    code
}

/// The terminal UI on this thread, the live pipeline on another; `q` stops both. With
/// `--check`, the flows finished until then are judged and the report printed once the
/// terminal is restored.
pub(super) fn run_tui(
    sources: Sources,
    mut cfg: LiveConfig,
    inv: Option<&RunInventory>,
    mut check: Option<LiveCheck>,
) -> i32 {
    // The header's counters come from summaries: refresh them every second.
    if cfg.summary_interval.is_zero() || cfg.summary_interval > Duration::from_secs(1) {
        cfg.summary_interval = Duration::from_secs(1);
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let counters = sources.counters.clone();
    let (tx, rx) = mpsc::sync_channel(4096);
    let checking = check.is_some();
    let (result, summary) = std::thread::scope(|scope| {
        let cfg = &cfg;
        let check = &mut check;
        let pipeline = scope.spawn(move || {
            let enrich = |f: &mut AnalyzedFlow| RunInventory::enrich(inv, f);
            let (summary, _) = live::run(sources, cfg, &enrich, &mut |ev| {
                if let (Some(c), Event::Flow(live::FlowEvent::Finished, f, _)) = (&mut *check, &ev)
                {
                    c.checker.add(&check_flow(f));
                }
                // Once the UI has quit (the stop flag ends the run), flows still go to the
                // check: only a run without one stops at the first event nobody reads.
                match tx.send(crate::tui::action_for_event(&ev)) {
                    Err(_) if !checking => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
                    _ => Ok(()),
                }
            });
            // The final counters (a short replay may end before the first periodic summary).
            let _ = tx.send(crate::tui::Action::Summary(Box::new(summary.clone())));
            summary
        });
        let result = crate::tui::run(rx, color);
        counters.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (result, pipeline.join())
    });
    if let Err(e) = result {
        eprintln!("mtlscope: error: terminal: {e}");
        return EXIT_UNREADABLE;
    }
    match (check, summary) {
        (Some(check), Ok(summary)) => finish_check(check, &summary, None),
        _ => EXIT_OK,
    }
}

pub fn run(args: &LiveArgs) -> i32 {
    let mut engine = args.engine_config();
    match load_keylogs(&args.engine.keylogs) {
        Ok(keylog) => engine.keylog = Some(keylog),
        Err(e) => {
            eprintln!("mtlscope: error: {e}");
            return EXIT_UNREADABLE;
        }
    }
    // A policy that cannot be read stops the run before the cluster is asked or a packet read.
    let mut check = match start_check(args, Env::from_system()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mtlscope: error: --check: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let inventory = match load_run_inventory(&args.names) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("mtlscope: error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let sources = match start_sources(args, &engine) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mtlscope: error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let cfg = LiveConfig {
        engine,
        summary_interval: args.summary_interval,
        duration: args.duration,
        timelines: args.format == LiveFormat::Tui,
    };
    let inv = inventory.as_ref();
    if args.format == LiveFormat::Tui {
        return run_tui(sources, cfg, inv, check);
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let enrich = |f: &mut AnalyzedFlow| RunInventory::enrich(inv, f);
    // With --check, a reader that goes away stops the output, not the judging (as for
    // `mtlscope check`): the run goes on to its end and the exit code is the check's.
    let mut closed: Option<io::Error> = None;
    let (summary, error) = live::run(sources, &cfg, &enrich, &mut |ev| {
        if let (Some(c), Event::Flow(live::FlowEvent::Finished, f, _)) = (&mut check, &ev) {
            c.checker.add(&check_flow(f));
        }
        if closed.is_some() {
            return Ok(());
        }
        match write_event(&mut out, &ev) {
            Err(e) if check.is_some() && e.kind() == io::ErrorKind::BrokenPipe => {
                closed = Some(e);
                Ok(())
            }
            r => r,
        }
    });
    let result = match error.or(closed) {
        Some(e) => Err(e),
        None => serde_json::to_writer(&mut out, &summary_line(&summary, true))
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush()),
    };
    for e in &summary.errors {
        eprintln!("mtlscope: warning: capture stopped: {e}");
    }
    if summary.kernel_drops + summary.channel_drops > 0 {
        eprintln!(
            "mtlscope: warning: {} packets dropped by the kernel and {} because mtlscope fell \
             behind: flows may be judged on incomplete handshakes",
            summary.kernel_drops, summary.channel_drops
        );
    }
    if let Some(check) = check {
        return match result {
            Ok(()) => finish_check(check, &summary, Some(&mut out)),
            // The reader went away: the verdict is still the exit code.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => finish_check(check, &summary, None),
            Err(e) => {
                eprintln!("mtlscope: error: writing the output: {e}");
                could_not_verify(finish_check(check, &summary, None))
            }
        };
    }
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("mtlscope: error: writing the output: {e}");
            EXIT_UNREADABLE
        }
        // A replay whose input could not be read at all is a failed run.
        Ok(()) if args.read.is_some() && summary.packets == 0 && !summary.errors.is_empty() => {
            EXIT_UNREADABLE
        }
        Ok(()) => EXIT_OK,
    }
}
