//! Batch analysis: read each input through the engine and judge every flow. This is the only
//! place of the batch path that touches files; the stages it drives do no I/O.

use crate::capture::{CaptureError, CaptureErrorKind, CaptureReader, Format, Interface};
use crate::engine::{Engine, EngineConfig, PacketStats};
use crate::flow::{is_local_pair, FlowRecord, TableStats};
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
    pub hop: Hop,
    /// Index into [`Analysis::inputs`].
    pub input: usize,
    pub interface: Option<String>,
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
    /// Key-log bytes found in Decryption Secrets Blocks.
    pub secrets: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub inputs: Vec<InputReport>,
    pub flows: Vec<AnalyzedFlow>,
}

impl InputReport {
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
            secrets: Vec::new(),
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
    let Analysis { inputs, flows } = analysis;
    let report = analyze_stream(inputs.len(), path, input, cfg, progress, &mut |f| flows.push(f));
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
    // Three stages, so that two cores share the work: the input is read ahead on one thread,
    // the engine runs on another, and finished flows are judged and handed to `sink` here.
    std::thread::scope(|scope| {
        let reader = match CaptureReader::prefetched(scope, input) {
            Ok(r) => r,
            Err(e) => {
                let mut report = InputReport::unreadable(path);
                report.fatal = Some(e.to_string());
                return report;
            }
        };
        // Two batches of finished flows may wait to be judged: memory stays bounded.
        let (tx, rx) = mpsc::sync_channel(2);
        scope.spawn(move || run_engine(path, reader, cfg, &tx));
        let mut finished = 0usize;
        for batch in rx {
            finished += batch.flows.len();
            judge_all(sink, batch.flows, index, &batch.interfaces);
            match batch.report {
                Some(report) => return *report,
                None => progress(batch.offset, finished + batch.active),
            }
        }
        // Only if the engine thread panicked; the scope passes the panic on.
        InputReport::unreadable(path)
    })
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
        match reader.next_packet(&mut |p| engine.push(&p)) {
            Ok(true) => {
                n += 1;
                if n % 16384 == 0 {
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
            Ok(false) => break,
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
    report.secrets = reader.secrets().to_vec();
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

fn judge_all(
    sink: &mut dyn FnMut(AnalyzedFlow),
    records: Vec<FlowRecord>,
    input: usize,
    ifaces: &[Interface],
) {
    for mut record in records {
        let (judgement, client_certificate) = verdict::judge(&record);
        record.compact();
        let interface = ifaces.get(record.iface as usize).and_then(|i| i.name.clone());
        let hop = hop_of(&record, interface.as_deref());
        sink(AnalyzedFlow { record, judgement, client_certificate, hop, input, interface });
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
        w.push(format!("{count} packets could not be decoded: {what}"));
    }
    if report.table.flows_evicted > 0 {
        w.push(format!(
            "flow table cap reached: {} flows were finished early",
            report.table.flows_evicted
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
