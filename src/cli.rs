//! Command line: clap arguments -> validated settings -> the mode to run. Exit codes are a
//! contract (see README): `analyze` 0 analysed, 2 an input could not be read at all or bad
//! usage; `check` 0 pass, 1 violation, 2 could not verify (see [`check`]).
//!
//! `analyze` and `check` read their captures through one path ([`InputArgs::prepare`],
//! [`Prepared::read_all`]): engine settings, key logs, inventory (files and live), the
//! resumption linker and the inventory's placement of each final flow.

use crate::analyze;
use crate::engine::EngineConfig;
use crate::inventory::live::{fetch_blocking, KubeArgs};
use crate::inventory::resolve_flows::{self, InventoryInfo};
use crate::inventory::{Inventory, Sources};
use crate::keylog::KeyLog;
use crate::link::{LinkLimits, Linker};
use crate::report::{json, table};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod check;
pub mod inventory;
pub mod live;
pub mod pod;

pub const EXIT_OK: i32 = 0;
pub const EXIT_UNREADABLE: i32 = 2;

/// Reports are written to stdout through a buffer this big: stdout's own line buffering
/// would otherwise pass a big report on in many small writes (a JSON flow is ~2 KiB).
const OUT_BUFFER: usize = 64 * 1024;

const ANALYZE_EXAMPLES: &str = "\
Examples:
  mtlscope analyze capture.pcap
  mtlscope analyze --format json node1.pcapng node2.pcap > flows.json
  kubectl exec -n shop web-0 -c debug -- tcpdump -i any -U -w - | mtlscope analyze -
  mtlscope analyze --geneve-port 47101 overlay.pcap
  mtlscope analyze --keylog sslkeys.txt capture.pcap    (TLS 1.3: decrypt the handshake)
  kubectl get pods,services,endpointslices,nodes -A -o json > cluster.json
  mtlscope analyze --inventory cluster.json capture.pcap (names, scopes, edges, reasons)

Exit codes:
  0  every input was analysed (a truncated file is analysed up to the damage, with a warning)
  2  an input could not be read at all (missing, not a pcap/pcapng), an unreadable
     --keylog or --inventory file, or bad usage";

#[derive(Parser, Debug)]
#[command(
    name = "mtlscope",
    version,
    about = "Prove from the wire that traffic between pods is mutually authenticated TLS",
    long_about = "mtlscope follows every TCP flow in a capture and decides what it is: plaintext \
HTTP/1, h2c/gRPC, other plaintext, TLS with server-only authentication, mutual TLS, TLS whose \
authentication cannot be seen, or TLS without encryption. Every verdict carries its evidence."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse pcap/pcapng files (or `-` for stdin) and report every TCP flow's verdict.
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// Resolve the Kubernetes inventory (live from the cluster, or from files) and write it as
    /// JSON, to archive it next to a capture.
    #[command(after_help = inventory::INVENTORY_EXAMPLES)]
    Inventory(inventory::InventoryArgs),
    #[command(
        about = crate::check::CHECK_ABOUT,
        long_about = "Fail a CI build when traffic between pods is not mutual TLS: the captures' \
flows are read as `analyze` reads them and judged against a policy (default: every pod-to-pod \
and pod-to-service flow must be mtls). The first line of the report is the verdict.",
        after_help = crate::check::CHECK_EXAMPLES
    )]
    Check(check::CheckCommandArgs),
    /// Capture on running interfaces (or replay a capture) and stream each flow's verdict as
    /// soon as it is decided.
    #[command(after_help = live::LIVE_EXAMPLES)]
    Live(live::LiveArgs),
    /// Capture in running pods through the Kubernetes API (a sidecar's tcpdump, or an
    /// ephemeral debug container) and stream each flow's verdict as `live` does.
    #[command(after_help = pod::POD_EXAMPLES)]
    Pod(pod::PodArgs),
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Colour the table: auto (terminal and no NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// With an inventory the table shows edges; also list every flow.
    #[arg(long)]
    pub flows: bool,
}

/// What `analyze` and `check` share: the captures and how they are read (engine settings, key
/// logs, the inventory from files or a live cluster). Output options belong to each command.
#[derive(Args, Debug)]
pub struct InputArgs {
    /// Capture files (pcap or pcapng); `-` reads a capture stream from stdin.
    #[arg(required = true, value_name = "CAPTURE")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(flatten)]
    pub names: NamesArgs,

    /// Never show progress on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// How the engine reads packets: what `analyze`, `check` and `live` share.
#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Extra UDP port carrying VXLAN (4789 and 8472 are always decoded).
    #[arg(long = "vxlan-port", value_name = "PORT")]
    pub vxlan_ports: Vec<u16>,

    /// Extra UDP port carrying Geneve (6081 is always decoded).
    #[arg(long = "geneve-port", value_name = "PORT")]
    pub geneve_ports: Vec<u16>,

    /// Extra UDP port carrying GTPv1-U (2152 is always decoded).
    #[arg(long = "gtp-port", value_name = "PORT")]
    pub gtp_ports: Vec<u16>,

    /// A flow idle this long is finished, e.g. 600s, 10m (by packet time; `live` also by the
    /// clock when nothing arrives).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub idle_timeout: Duration,

    /// Most bytes buffered per flow direction while classifying.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub max_flow_buffer: usize,

    /// Most flows tracked at once; beyond it the longest-idle flows are finished early
    /// (reported per flow and per input).
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    pub max_flows: usize,

    /// Most TLS session handles (session ids, tickets) remembered to link resumed sessions
    /// to the handshake that created them; the oldest are forgotten first (reported).
    #[arg(long, value_name = "N", default_value_t = LinkLimits::default().max_sessions)]
    pub max_sessions: usize,

    /// Most resumed flows held back waiting for their origin handshake to finish; beyond it
    /// a resumed flow is reported unlinked at once (reported per flow and per input).
    #[arg(long, value_name = "N", default_value_t = LinkLimits::default().max_waiting)]
    pub max_resumed_waiting: usize,

    /// Replace what the application wrote (HTTP paths and queries, Host, HTTP/2 :path and
    /// :authority, the first word of other plaintext) with "[redacted]" in every output.
    /// TLS metadata (SNI, ALPN, certificates) is kept.
    #[arg(long)]
    pub redact: bool,

    /// NSS key log (SSLKEYLOGFILE format) to decrypt TLS 1.3 handshakes with, for proof
    /// `decrypted`; repeatable. pcapng Decryption Secrets Blocks are always used too.
    #[arg(long = "keylog", value_name = "FILE")]
    pub keylogs: Vec<PathBuf>,
}

impl EngineArgs {
    /// The engine settings these flags give (the key log is loaded separately).
    pub fn engine_config(&self) -> EngineConfig {
        let mut cfg = EngineConfig::default();
        cfg.decode.vxlan_ports.extend(&self.vxlan_ports);
        cfg.decode.geneve_ports.extend(&self.geneve_ports);
        cfg.decode.gtp_ports.extend(&self.gtp_ports);
        cfg.flow.idle_timeout_ns = u64::try_from(self.idle_timeout.as_nanos()).unwrap_or(u64::MAX);
        cfg.flow.max_pending = self.max_flow_buffer;
        cfg.flow.limits.max_buffer = self.max_flow_buffer;
        cfg.flow.max_flows = self.max_flows.max(1);
        cfg.flow.redact = self.redact;
        cfg.link =
            LinkLimits { max_sessions: self.max_sessions, max_waiting: self.max_resumed_waiting };
        cfg
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl InputArgs {
    /// Validated engine settings (without the key log: see [`Self::prepare`]).
    /// Everything a run needs before the first packet: the engine settings with the key log,
    /// and the inventory (files, then a live cluster's objects). The error is one line for
    /// stderr (exit 2): an unreadable key log or inventory, or a cluster that cannot be read.
    pub fn prepare(&self) -> Result<Prepared, String> {
        let mut cfg = self.engine.engine_config();
        cfg.keylog = Some(load_keylogs(&self.engine.keylogs)?);
        let inventory = load_run_inventory(&self.names)?;
        Ok(Prepared { cfg, inventory })
    }
}

/// Where the names of a run's pods come from (`analyze`, `check` and `live`).
#[derive(Args, Debug, Clone, Default)]
pub struct NamesArgs {
    /// Kubernetes objects (what `kubectl get pods,services,endpointslices,nodes -A -o json`
    /// writes; JSON or YAML, a List or single objects) to name the pods at both ends of every
    /// flow, give its scope, why it is not mTLS, and check mesh identities; repeatable.
    #[arg(long = "inventory", value_name = "FILE")]
    pub inventories: Vec<PathBuf>,

    /// Read the inventory from a live cluster as well, once at the start (any of these flags
    /// turns it on; objects from the cluster win over --inventory files).
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// The inventory from `--inventory` files and, when any kubectl-style flag asks for it, a live
/// cluster; an error is one line for stderr (exit 2).
pub fn load_run_inventory(names: &NamesArgs) -> Result<Option<RunInventory>, String> {
    let (files, kube) = (&names.inventories, &names.kube);
    let live = if kube.wants_live() {
        let sources = fetch_blocking(&kube.options()).map_err(|e| e.to_string())?;
        Some((sources, live_name(kube)))
    } else {
        None
    };
    load_inventory(files, live)
}

/// A run's settings once the key logs and the inventory are loaded.
#[derive(Debug)]
pub struct Prepared {
    pub cfg: EngineConfig,
    pub inventory: Option<RunInventory>,
}

impl Prepared {
    /// Reads every input in order through one [`Linker`] (a session resumed in one file may
    /// have begun in another) and hands each flow to `sink` once final: linked, and placed in
    /// the cluster when there is an inventory. Nothing here keeps a flow. One report per input
    /// is pushed to `inputs`.
    pub fn read_all(
        &self,
        args: &InputArgs,
        inputs: &mut Vec<analyze::InputReport>,
        sink: &mut dyn FnMut(analyze::AnalyzedFlow),
    ) {
        let inventory = self.inventory.as_ref();
        let mut emit = |mut f: analyze::AnalyzedFlow| {
            RunInventory::enrich(inventory, &mut f);
            sink(f)
        };
        let mut linker = Linker::new(self.cfg.link);
        for path in &args.inputs {
            let before = linker.counters();
            let mut report =
                read_input(args, &self.cfg, path, inputs.len(), &mut |f| linker.push(f, &mut emit));
            report.note_linker(&self.cfg, before, linker.counters());
            inputs.push(report);
        }
        linker.finish(&mut emit);
    }
}

/// Each input's fatal error and warnings, on stderr, naming the file.
pub fn report_inputs(inputs: &[analyze::InputReport]) {
    for input in inputs {
        if let Some(e) = &input.fatal {
            eprintln!("mtlscope: error: {}: {e}", input.path);
        }
        for w in &input.warnings {
            eprintln!("mtlscope: warning: {}: {w}", input.path);
        }
    }
}

/// Entry point: parse arguments, run, and return the exit code.
pub fn main() -> i32 {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_UNREADABLE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Inventory(args) => inventory::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Live(args) => live::run(&args),
        Command::Pod(args) => pod::run(&args),
    }
}

/// Parses the command line; run as `kubectl-mtlscope` (the kubectl plugin: a copy or a
/// symlink of the binary on PATH), usage and help say `kubectl mtlscope`.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = Cli::command();
    if args.first().is_some_and(|a| invoked_as_plugin(a)) {
        cmd = cmd.bin_name("kubectl mtlscope");
    }
    let matches = cmd.try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Whether argv[0] names the kubectl plugin (`kubectl-mtlscope`, any directory).
pub fn invoked_as_plugin(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "kubectl-mtlscope" || n.starts_with("kubectl-mtlscope."))
}

/// Reads every `--keylog` file into the run's one key log. Malformed lines are warned about;
/// an unreadable file is an error (exit 2).
pub fn load_keylogs(paths: &[PathBuf]) -> Result<Arc<KeyLog>, String> {
    let keylog = Arc::new(KeyLog::new());
    for path in paths {
        let text = std::fs::read(path)
            .map_err(|e| format!("--keylog {}: cannot read: {e}", path.display()))?;
        let st = keylog.add(&text);
        if st.malformed > 0 {
            eprintln!(
                "mtlscope: warning: --keylog {}: {} malformed lines ignored",
                path.display(),
                st.malformed
            );
        }
        if st.entries == 0 {
            eprintln!("mtlscope: warning: --keylog {}: no TLS secrets found", path.display());
        }
    }
    Ok(keylog)
}

/// The run's inventory from the `--inventory` files (and, later, a live cluster's objects in
/// `extra`); `None` when there is none. A file that cannot be loaded is an error (exit 2), its
/// message naming it; loader warnings are printed here and kept for the JSON.
pub fn load_inventory(
    files: &[PathBuf],
    extra: Option<(Sources, String)>,
) -> Result<Option<RunInventory>, String> {
    if files.is_empty() && extra.is_none() {
        return Ok(None);
    }
    let mut names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let extra = extra.map(|(sources, name)| {
        names.push(name);
        sources
    });
    let inventory =
        resolve_flows::build_inventory(files, extra).map_err(|e| format!("--inventory {e}"))?;
    for w in inventory.warnings() {
        eprintln!("mtlscope: warning: --inventory {w}");
    }
    let info = InventoryInfo::of(&inventory, names);
    Ok(Some(RunInventory { inventory, info }))
}

/// How the live inventory is named in the report: "cluster (context prod, namespace shop)".
fn live_name(k: &KubeArgs) -> String {
    let context = k.context.as_deref().unwrap_or("current context");
    let scope = match (&k.namespace, k.all_namespaces) {
        (_, true) => "all namespaces".to_string(),
        (Some(ns), _) => format!("namespace {ns}"),
        (None, false) => "the context's namespace".to_string(),
    };
    format!("cluster ({context}, {scope})")
}

/// An inventory and how it was described, for the reports.
#[derive(Debug)]
pub struct RunInventory {
    pub inventory: Inventory,
    pub info: InventoryInfo,
}

impl RunInventory {
    /// Called on each flow once its verdict is final (after resumption linking).
    fn enrich(this: Option<&Self>, flow: &mut analyze::AnalyzedFlow) {
        if let Some(inv) = this {
            resolve_flows::enrich(flow, &inv.inventory);
        }
    }
}

fn run_analyze(args: &AnalyzeArgs) -> i32 {
    let prepared = match args.input.prepare() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mtlscope: error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(OUT_BUFFER, stdout.lock());
    let mut inputs = Vec::new();
    let result = match args.format {
        OutputFormat::Json => analyze_json(args, &prepared, &mut out, &mut inputs),
        OutputFormat::Table => analyze_table(args, &prepared, &mut out, &mut inputs),
    };
    let result = result.and_then(|()| out.flush());
    report_inputs(&inputs);
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("mtlscope: error: writing the report: {e}");
            EXIT_UNREADABLE
        }
        Ok(()) if inputs.iter().any(|i| i.fatal.is_some()) => EXIT_UNREADABLE,
        Ok(()) => EXIT_OK,
    }
}

/// JSON streams each flow out as soon as it is judged: memory stays flat.
fn analyze_json(
    args: &AnalyzeArgs,
    prepared: &Prepared,
    out: &mut dyn Write,
    inputs: &mut Vec<analyze::InputReport>,
) -> io::Result<()> {
    let mut writer = json::StreamWriter::new(out)?;
    if let Some(inv) = &prepared.inventory {
        writer = writer.with_inventory(inv.info.clone());
    }
    prepared.read_all(&args.input, inputs, &mut |f| writer.flow(&f));
    writer.finish(inputs)
}

/// The table sorts the worst flows first, so it keeps one short row per flow until the end.
fn analyze_table(
    args: &AnalyzeArgs,
    prepared: &Prepared,
    out: &mut dyn Write,
    inputs: &mut Vec<analyze::InputReport>,
) -> io::Result<()> {
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let style = table::Style { color };
    let layout = table::Layout { flows: args.flows };
    let mut table = table::TableWriter::new(style, layout, prepared.inventory.is_some());
    prepared.read_all(&args.input, inputs, &mut |f| table.add(&f));
    table.finish(out, inputs)
}

/// Open one input (a path or `-`) and analyse it.
fn read_input(
    args: &InputArgs,
    cfg: &EngineConfig,
    path: &str,
    index: usize,
    sink: &mut dyn FnMut(analyze::AnalyzedFlow),
) -> analyze::InputReport {
    let mut progress = Progress::new(path, io::stderr().is_terminal() && !args.no_progress);
    let report = if path == "-" {
        analyze::analyze_stream(index, "-", io::stdin(), cfg, &mut |b, f| progress.show(b, f), sink)
    } else {
        match std::fs::File::open(path) {
            Ok(file) => {
                progress.total = file.metadata().map(|m| m.len()).ok();
                // The capture reader buffers by itself: no BufReader (a second copy).
                analyze::analyze_stream(
                    index,
                    path,
                    file,
                    cfg,
                    &mut |b, f| progress.show(b, f),
                    sink,
                )
            }
            Err(e) => {
                let mut report = analyze::InputReport::unreadable(path);
                report.fatal = Some(format!("cannot open: {e}"));
                report
            }
        }
    };
    progress.clear();
    report
}

/// A one-line progress indicator on stderr, refreshed at most 5 times a second.
struct Progress<'a> {
    path: &'a str,
    enabled: bool,
    total: Option<u64>,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl<'a> Progress<'a> {
    fn new(path: &'a str, enabled: bool) -> Self {
        let now = Instant::now();
        Progress { path, enabled, total: None, started: now, last: now, shown: false }
    }

    fn show(&mut self, bytes: u64, flows: usize) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = bytes as f64 / secs / 1e6;
        let pct = self
            .total
            .filter(|&t| t > 0)
            .map(|t| format!("{:>3}% ", bytes * 100 / t))
            .unwrap_or_default();
        eprint!(
            "\r\x1b[2K{}: {pct}{:.0} MB read, {flows} flows, {rate:.0} MB/s",
            self.path,
            bytes as f64 / 1e6
        );
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }
}
