//! Batch analysis: read each input through the engine and judge every flow. This is the only
//! place of the batch path that touches files; the stages it drives do no I/O.

use crate::capture::{CaptureError, CaptureErrorKind, CaptureReader, Format, Interface};
use crate::classify::Classification;
use crate::engine::{Engine, EngineConfig, PacketStats};
use crate::flow::{is_local_pair, FlowRecord, TableStats};
use crate::identity::{self, Identities, IdentityCache};
use crate::inventory::resolve_flows::{InventoryInfo, Placement};
use crate::keylog::{KeyLog, KeyLogStats};
use crate::link::{self, Linker, Origin, SessionKeys};
use crate::verdict::{self, ClientCert, Judgement};
use std::io::Read;
use std::sync::mpsc;

/// Where a flow ran: inside one pod (never on the network) or across the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Local,
    Network,
}

impl Hop {
    pub fn as_str(self) -> &'static str {
        match self {
            Hop::Local => "local",
            Hop::Network => "network",
        }
    }
}

/// A flow with its verdict.
#[derive(Debug, Clone)]
pub struct AnalyzedFlow {
    pub record: FlowRecord,
    pub judgement: Judgement,
    pub client_certificate: Option<ClientCert>,
    /// TLS flows: certificates, mesh and fingerprints (read before `compact` drops the DER).
    pub identities: Option<Box<Identities>>,
    pub hop: Hop,
    /// Index into [`Analysis::inputs`].
    pub input: usize,
    pub interface: Option<String>,
    /// TLS session handles given out or resumed (for [`crate::link`]).
    pub session: SessionKeys,
    /// The flow whose handshake created the session this flow resumed, once linked.
    pub resumed_from: Option<Origin>,
    /// Where the flow ran in the cluster, when an inventory was given
    /// ([`crate::inventory::resolve_flows::enrich`], after linking).
    pub placement: Option<Box<Placement>>,
    /// Not held back for resumption linking: `--max-resumed-waiting` flows were waiting.
    pub link_cap_hit: bool,
}

impl AnalyzedFlow {
    /// The caps that cut this flow's analysis short, by their flag names (JSON `limits_hit`).
    pub fn limits_hit(&self) -> Vec<&'static str> {
        let mut hit = Vec::new();
        if self.record.evicted {
            hit.push("max-flows");
        }
        if self.record.reassembly.iter().any(|r| r.cap_hit) {
            hit.push("max-flow-buffer");
        }
        if self.link_cap_hit {
            hit.push("max-resumed-waiting");
        }
        hit
    }

    /// The identity the client's certificate named, if one was seen.
    pub fn client_identity(&self) -> Option<String> {
        self.identities.as_ref()?.client.as_ref()?.identity.clone()
    }
}

/// What one input yielded.
#[derive(Debug, Clone)]
pub struct InputReport {
    pub path: String,
    pub format: Option<Format>,
    pub interfaces: Vec<Interface>,
    pub stats: PacketStats,
    pub table: TableStats,
    /// Input unusable from the start (not a capture, unreadable): exit code 2.
    pub fatal: Option<String>,
    pub warnings: Vec<String>,
    /// How often each cap was hit while this input was read.
    pub limits: LimitsHit,
}

/// Caps hit while reading one input (see README, Memory caps). Nothing is dropped silently:
/// each count also has a warning, and the flows concerned say so in `limits_hit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsHit {
    /// Flows finished early because the flow table was full (`--max-flows`).
    pub max_flows: u64,
    /// Flows with bytes left unanalysed because a direction's reassembly buffer was full
    /// (`--max-flow-buffer`).
    pub max_flow_buffer: u64,
    /// Session handles forgotten by the resumption linker (`--max-sessions`).
    pub max_sessions: u64,
    /// Resumed flows reported without waiting for their origin (`--max-resumed-waiting`).
    pub max_resumed_waiting: u64,
}

impl LimitsHit {
    pub fn add(&mut self, o: &LimitsHit) {
        self.max_flows += o.max_flows;
        self.max_flow_buffer += o.max_flow_buffer;
        self.max_sessions += o.max_sessions;
        self.max_resumed_waiting += o.max_resumed_waiting;
    }

    /// Each cap with the number of times it was hit, in flag order.
    fn counts(&self) -> [(&'static Cap, u64); 4] {
        let [flows, buffer, sessions, waiting] = &CAPS;
        [
            (flows, self.max_flows),
            (buffer, self.max_flow_buffer),
            (sessions, self.max_sessions),
            (waiting, self.max_resumed_waiting),
        ]
    }

    /// The caps that were hit: (flag, count, what that cost in a few words).
    pub fn hit(&self) -> impl Iterator<Item = (&'static str, u64, &'static str)> {
        self.counts().into_iter().filter(|(_, n)| *n > 0).map(|(c, n)| (c.flag, n, c.short))
    }

    /// One warning line per cap hit.
    pub fn warnings(&self, cfg: &EngineConfig) -> Vec<String> {
        let limits =
            [cfg.flow.max_flows, cfg.flow.max_pending, cfg.link.max_sessions, cfg.link.max_waiting];
        self.counts()
            .into_iter()
            .zip(limits)
            .filter(|((_, n), _)| *n > 0)
            .map(|((c, n), limit)| {
                format!("{} cap reached ({} {limit}): {n} {}", c.name, c.flag, c.long)
            })
            .collect()
    }
}

/// A configurable cap, for the warnings and the table's summary.
struct Cap {
    name: &'static str,
    flag: &'static str,
    short: &'static str,
    long: &'static str,
}

const CAPS: [Cap; 4] = [
    Cap {
        name: "flow table",
        flag: "--max-flows",
        short: "flows finished early",
        long: "flows were finished early, the longest idle first",
    },
    Cap {
        name: "reassembly buffer",
        flag: "--max-flow-buffer",
        short: "flows not fully analysed",
        long: "flows had bytes left unanalysed",
    },
    Cap {
        name: "resumption linker",
        flag: "--max-sessions",
        short: "session handles forgotten",
        long: "session handles were forgotten, oldest first; later resumptions of them stay \
               unlinked",
    },
    Cap {
        name: "resumption linker",
        flag: "--max-resumed-waiting",
        short: "resumed flows not linked",
        long: "resumed flows were reported without waiting for their origin",
    },
];

#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub inputs: Vec<InputReport>,
    pub flows: Vec<AnalyzedFlow>,
    /// The inventory the flows were enriched with, if any.
    pub inventory: Option<InventoryInfo>,
}

impl InputReport {
    /// Adds the resumption linker's cap counts while this input was read (`after - before`
    /// of [`Linker::counters`]) and their warnings.
    pub fn note_linker(&mut self, cfg: &EngineConfig, before: (u64, u64), after: (u64, u64)) {
        let hit = LimitsHit {
            max_sessions: after.0 - before.0,
            max_resumed_waiting: after.1 - before.1,
            ..LimitsHit::default()
        };
        self.warnings.extend(hit.warnings(cfg));
        self.limits.add(&hit);
    }

    /// A report with nothing read yet.
    pub fn unreadable(path: &str) -> Self {
        InputReport {
            path: path.to_string(),
            format: None,
            interfaces: Vec::new(),
            stats: PacketStats::default(),
            table: TableStats::default(),
            fatal: None,
            warnings: Vec::new(),
            limits: LimitsHit::default(),
        }
    }
}

/// Progress callback: (bytes consumed of this input, flows so far).
pub type Progress<'a> = &'a mut dyn FnMut(u64, usize);

/// Analyse one input stream and append its results to `analysis`.
pub fn analyze_reader<R: Read + Send>(
    analysis: &mut Analysis,
    path: &str,
    input: R,
    cfg: &EngineConfig,
    progress: Progress<'_>,
) {
    let Analysis { inputs, flows, .. } = analysis;
    let mut linker = Linker::new(cfg.link);
    let mut sink = |f| flows.push(f);
    let mut report = analyze_stream(inputs.len(), path, input, cfg, progress, &mut |f| {
        linker.push(f, &mut sink)
    });
    linker.finish(&mut sink);
    report.note_linker(cfg, (0, 0), linker.counters());
    inputs.push(report);
}

/// Analyse one input stream, handing each judged flow to `sink` as soon as it is finished
/// (so a consumer that writes flows out, like the JSON writer, holds none of them).
pub fn analyze_stream<R: Read + Send>(
    index: usize,
    path: &str,
    input: R,
    cfg: &EngineConfig,
    progress: Progress<'_>,
    sink: &mut dyn FnMut(AnalyzedFlow),
) -> InputReport {
    // One key log for the run; this input's Decryption Secrets Blocks join it as they are read.
    let keylog = cfg.keylog.clone().unwrap_or_default();
    let keylog_before = keylog.stats();
    let cfg = EngineConfig { keylog: Some(keylog.clone()), ..cfg.clone() };
    let mut tally = DecryptTally::default();
    // Three stages, so that two cores share the work: the input is read ahead on one thread,
    // the engine runs on another, and finished flows are judged and handed to `sink` here.
    let mut report = std::thread::scope(|scope| {
        let mut reader = match CaptureReader::prefetched(scope, input) {
            Ok(r) => r,
            Err(e) => {
                let mut report = InputReport::unreadable(path);
                report.fatal = Some(e.to_string());
                return report;
            }
        };
        reader.set_keylog(keylog.clone());
        // Up to eight batches of finished flows (a few hundred compact flows each) may wait to
        // be judged: memory stays bounded, and the engine does not stall while a slow batch is
        // judged (with two, it stalled often enough to cost 15% of the time on the benchmark).
        let (tx, rx) = mpsc::sync_channel(8);
        let cfg = &cfg;
        scope.spawn(move || run_engine(path, reader, cfg, &tx));
        let mut finished = 0usize;
        let mut certs = IdentityCache::default();
        let sink = &mut |f: AnalyzedFlow| {
            tally.add(&f);
            sink(f)
        };
        for batch in rx {
            finished += batch.flows.len();
            judge_all(sink, batch.flows, index, &batch.interfaces, &mut certs);
            match batch.report {
                Some(report) => return *report,
                None => progress(batch.offset, finished + batch.active),
            }
        }
        // Only if the engine thread panicked; the scope passes the panic on.
        InputReport::unreadable(path)
    });
    if report.fatal.is_none() {
        report.warnings.extend(tally.warnings(&keylog, keylog_before));
        let hit = LimitsHit {
            max_flows: report.table.flows_evicted,
            max_flow_buffer: tally.buffer_capped,
            ..LimitsHit::default()
        };
        report.warnings.extend(hit.warnings(&cfg));
        report.limits.add(&hit);
    }
    report
}

/// Finished flows on their way from the engine thread to be judged; the last batch carries
/// the input's report.
struct FlowBatch {
    flows: Vec<FlowRecord>,
    interfaces: Vec<Interface>,
    /// Bytes of the input consumed and flows still open when the batch was sent.
    offset: u64,
    active: usize,
    report: Option<Box<InputReport>>,
}

fn run_engine(
    path: &str,
    mut reader: CaptureReader<'_>,
    cfg: &EngineConfig,
    tx: &mpsc::SyncSender<FlowBatch>,
) {
    let mut report = InputReport::unreadable(path);
    let mut engine = Engine::new(cfg.clone());
    let mut n = 0u64;
    loop {
        match reader.next_packets(&mut |p| engine.push_batch(p)) {
            Ok(0) => break,
            Ok(got) => {
                let before = n;
                n += got as u64;
                if n / 16384 != before / 16384 {
                    // Finished flows go to be judged now, so they are kept compact, not whole.
                    let batch = FlowBatch {
                        flows: engine.drain_finished(),
                        interfaces: reader.interfaces().to_vec(),
                        offset: reader.offset(),
                        active: engine.active_flows(),
                        report: None,
                    };
                    if tx.send(batch).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                report.warnings.push(read_warning(&e, engine.stats().packets));
                break;
            }
        }
    }
    let flows = engine.finish();
    report.format = Some(reader.format());
    report.interfaces = reader.interfaces().to_vec();
    report.warnings.extend(reader.warnings().iter().cloned());
    report.stats = engine.stats().clone();
    report.table = engine.table_stats();
    add_stat_warnings(&mut report);
    let interfaces = report.interfaces.clone();
    let last = FlowBatch {
        flows,
        interfaces,
        offset: reader.offset(),
        active: 0,
        report: Some(Box::new(report)),
    };
    // Fails only if the judging side is gone (it panicked).
    let _ = tx.send(last);
}

/// What key-log decryption did for one input's flows.
#[derive(Debug, Default)]
struct DecryptTally {
    decrypted: u64,
    failed: u64,
    /// Flows that hit the reassembly buffer cap (not a key-log count; counted on the way).
    buffer_capped: u64,
}

impl DecryptTally {
    fn add(&mut self, f: &AnalyzedFlow) {
        self.buffer_capped += u64::from(f.record.reassembly.iter().any(|r| r.cap_hit));
        if let Classification::Tls { facts, .. } = &f.record.classification {
            // The client's flight, up to its Finished, is what proves client authentication.
            match facts.decrypted.as_ref().map(|d| d.client_finished) {
                Some(true) => self.decrypted += 1,
                Some(false) => self.failed += 1,
                None => {}
            }
        }
    }

    /// The key-log counts and failures, as input warnings (nothing when no key log is in use).
    fn warnings(&self, keylog: &KeyLog, before: KeyLogStats) -> Vec<String> {
        let now = keylog.stats();
        let mut w = Vec::new();
        let dsb = now.entries - before.entries;
        let dsb_bad = now.malformed - before.malformed;
        if dsb > 0 || dsb_bad > 0 {
            w.push(format!(
                "Decryption Secrets Blocks added {dsb} key-log entries ({dsb_bad} malformed lines ignored)"
            ));
        }
        if now.client_randoms > 0 {
            w.push(format!(
                "key log: {} secrets for {} client randoms; {} TLS 1.3 handshakes of this input decrypted",
                now.entries, now.client_randoms, self.decrypted
            ));
        }
        if self.failed > 0 {
            w.push(format!(
                "{} flows had keys but decryption failed before the client's Finished (see tls.decrypted.error); their verdicts come from record sizes",
                self.failed
            ));
        }
        w
    }
}

pub fn judge_all(
    sink: &mut dyn FnMut(AnalyzedFlow),
    records: Vec<FlowRecord>,
    input: usize,
    ifaces: &[Interface],
    certs: &mut IdentityCache,
) {
    for mut record in records {
        let (mut judgement, client_certificate) = verdict::judge(&record);
        let identities = identity::of_flow_cached(&record, certs).map(Box::new);
        judgement.warnings.extend(identities.iter().flat_map(|i| i.warnings()));
        let session = link::session_keys(&record.classification);
        record.compact();
        let interface = ifaces.get(record.iface as usize).and_then(|i| i.name.clone());
        let hop = hop_of(&record, interface.as_deref());
        sink(AnalyzedFlow {
            record,
            judgement,
            client_certificate,
            identities,
            hop,
            input,
            interface,
            session,
            resumed_from: None,
            placement: None,
            link_cap_hit: false,
        });
    }
}

fn read_warning(e: &CaptureError, packets: u64) -> String {
    let tail = match e.kind {
        CaptureErrorKind::Truncated => {
            "the file ends mid-record (was the capture still being written?)"
        }
        _ => "the rest of the file was skipped",
    };
    format!("{e}; analysed the {packets} packets before it; {tail}")
}

fn add_stat_warnings(report: &mut InputReport) {
    let s = &report.stats;
    let mut w = Vec::new();
    if s.truncated_frames > 0 {
        w.push(format!(
            "{} frames were cut by the capture's snaplen: handshakes in them may be unreadable (capture with -s 0)",
            s.truncated_frames
        ));
    }
    if s.ip_fragments > 0 {
        w.push(format!("{} IP fragments were counted but not reassembled", s.ip_fragments));
    }
    for (what, count) in &s.decode_errors {
        let first = s
            .first_decode_error
            .get(what)
            .map_or(String::new(), |n| format!(" (the first is packet {n})"));
        w.push(format!("{count} packets could not be decoded: {what}{first}"));
    }
    if let Some(first) = s.first_ip_length_overrun {
        w.push(format!(
            "{} packets have IP length fields claiming more bytes than the whole frame holds (the first is packet {first}); only the bytes present were read",
            s.ip_length_overruns
        ));
    }
    if let Some(first) = s.first_bad_tcp_options {
        w.push(format!(
            "{} packets have TCP options that do not parse (the first is packet {first}): their data offset may be wrong, hiding payload bytes as options",
            s.bad_tcp_options
        ));
    }
    if let Some(first) = s.first_time_reversal {
        w.push(format!(
            "{} packets have timestamps earlier than a packet before them (the first is packet {first}); flow start and end times may be out of order",
            s.time_reversals
        ));
    }
    report.warnings.extend(w);
}

/// Loopback interface, loopback addresses, or the same address at both ends (the Linkerd
/// proxy -> app hop runs pod IP -> pod IP on `lo`): the flow never left the pod.
fn hop_of(record: &FlowRecord, interface: Option<&str>) -> Hop {
    let on_lo = interface.is_some_and(|n| n == "lo" || n.starts_with("lo0"))
        // Linux numbers the loopback device 1 in every network namespace.
        || record.ifindex == Some(1);
    if on_lo || is_local_pair(record.client.ip(), record.server.ip()) {
        Hop::Local
    } else {
        Hop::Network
    }
}
