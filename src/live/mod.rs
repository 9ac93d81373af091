//! Live analysis (`mtlscope live`): packets from running interfaces (or a replayed capture)
//! through the same engine as `analyze`, with verdicts reported as soon as they are decided.
//!
//! ```text
//!  source threads ──OwnedPacket (bounded, drops counted)──▶ engine thread (this module's run)
//!  (libpcap per -i, or -r FILE)                              │ drain_decided / drain_finished
//!                                                            ▼ judge, link, enrich
//!                                                   Event::Flow | Event::Summary ──▶ sink
//! ```
//!
//! The engine stays synchronous and clock-free; only this loop looks at the wall clock, to
//! expire idle flows when no packet comes and to time summaries and `--duration`.

pub mod source;
pub mod timeline;

use crate::analyze::{judge_all, AnalyzedFlow};
use crate::capture::Interface;
use crate::decode::LinkType;
use crate::engine::{Engine, EngineConfig};
use crate::identity::IdentityCache;
use crate::link::Linker;
use crate::verdict::Verdict;
use crate::Timestamp;
use source::{SourceMsg, Sources};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use timeline::Timeline;

/// Why a flow is being reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEvent {
    /// First verdict of a flow that is still open.
    Decided,
    /// The verdict (or what it rests on) changed while the flow is open.
    Updated,
    /// The flow ended (FIN/RST, idle, end of input): its final verdict.
    Finished,
}

impl FlowEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowEvent::Decided => "decided",
            FlowEvent::Updated => "updated",
            FlowEvent::Finished => "finished",
        }
    }
}

/// Counters for the periodic summaries and the end of the run.
#[derive(Debug, Clone, Default)]
pub struct LiveSummary {
    pub interfaces: Vec<String>,
    pub packets: u64,
    pub bytes: u64,
    pub tcp_packets: u64,
    pub kernel_drops: u64,
    pub channel_drops: u64,
    pub truncated_frames: u64,
    pub active_flows: usize,
    pub finished_flows: u64,
    /// Verdicts of finished flows plus the latest verdict of each decided open flow.
    pub verdicts: BTreeMap<&'static str, u64>,
    pub elapsed: Duration,
    /// A source stopped with an error (e.g. the interface went away, a damaged file).
    pub errors: Vec<String>,
    /// The run ended because `--duration` ran out (not end of input).
    pub timed_out: bool,
}

/// What the pipeline reports.
pub enum Event<'a> {
    /// A flow, with its handshake timeline when [`LiveConfig::timelines`] asked for one.
    Flow(FlowEvent, &'a AnalyzedFlow, Option<&'a Timeline>),
    Summary(&'a LiveSummary),
}

/// Settings of one live run.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub engine: EngineConfig,
    /// Zero: no periodic summaries.
    pub summary_interval: Duration,
    pub duration: Option<Duration>,
    /// Read each TLS flow's handshake timeline before it is compacted (the terminal UI's
    /// detail pane); off for JSON lines, which do not carry it.
    pub timelines: bool,
}

/// Called on each judged flow before it is reported (e.g. inventory enrichment).
pub type Enrich<'a> = &'a dyn Fn(&mut AnalyzedFlow);

/// How often decided flows are collected from the engine while packets keep coming.
const DRAIN_EVERY: Duration = Duration::from_millis(50);
/// How long the engine waits for a packet before it looks at the clock.
const IDLE_POLL: Duration = Duration::from_millis(100);

struct Run<'s> {
    engine: Engine,
    linker: Linker,
    /// Chains and fingerprints already read (flows of one workload repeat them).
    identities: IdentityCache,
    ifaces: Vec<Interface>,
    /// Latest verdict of each open flow that was reported.
    open: HashMap<u64, Verdict>,
    /// Timelines of finished flows between judging and reporting (the linker may hold a
    /// flow back a moment); None when timelines are off.
    timelines: Option<HashMap<u64, Timeline>>,
    finished: BTreeMap<&'static str, u64>,
    finished_count: u64,
    sink: &'s mut dyn FnMut(Event<'_>) -> io::Result<()>,
    enrich: Enrich<'s>,
    error: Option<io::Error>,
}

impl Run<'_> {
    fn emit(&mut self, ev: Event<'_>) {
        if self.error.is_none() {
            if let Err(e) = (self.sink)(ev) {
                self.error = Some(e);
            }
        }
    }

    fn collect(&mut self) {
        let decided = self.engine.drain_decided();
        if !decided.is_empty() {
            // judge_all keeps the order: one timeline per flow, read before compaction.
            let timelines: Vec<Option<Timeline>> = match self.timelines {
                Some(_) => decided.iter().map(Timeline::of).collect(),
                None => Vec::new(),
            };
            let mut flows = Vec::with_capacity(decided.len());
            judge_all(&mut |f| flows.push(f), decided, 0, &self.ifaces, &mut self.identities);
            for (i, mut f) in flows.into_iter().enumerate() {
                (self.enrich)(&mut f);
                let ev = match self.open.insert(f.record.id, f.judgement.verdict) {
                    None => FlowEvent::Decided,
                    Some(_) => FlowEvent::Updated,
                };
                let timeline = timelines.get(i).and_then(Option::as_ref);
                self.emit(Event::Flow(ev, &f, timeline));
            }
        }
        let finished = self.engine.drain_finished();
        self.finish_flows(finished);
    }

    fn finish_flows(&mut self, records: Vec<crate::flow::FlowRecord>) {
        if records.is_empty() {
            return;
        }
        if let Some(map) = &mut self.timelines {
            for r in &records {
                if let Some(t) = Timeline::of(r) {
                    map.insert(r.id, t);
                }
            }
        }
        let mut judged = Vec::with_capacity(records.len());
        judge_all(&mut |f| judged.push(f), records, 0, &self.ifaces, &mut self.identities);
        let mut ready = Vec::new();
        for f in judged {
            self.linker.push(f, &mut |f| ready.push(f));
        }
        self.report_finished(ready);
    }

    /// Resumed flows that waited past `cutoff` for their origin are reported unlinked.
    fn release_stale(&mut self, cutoff: Timestamp) {
        let mut ready = Vec::new();
        self.linker.release_stale(cutoff, &mut |f| ready.push(f));
        self.report_finished(ready);
    }

    fn report_finished(&mut self, flows: Vec<AnalyzedFlow>) {
        for mut f in flows {
            (self.enrich)(&mut f);
            self.open.remove(&f.record.id);
            self.finished_count += 1;
            *self.finished.entry(f.judgement.verdict.as_str()).or_default() += 1;
            let timeline = self.timelines.as_mut().and_then(|m| m.remove(&f.record.id));
            self.emit(Event::Flow(FlowEvent::Finished, &f, timeline.as_ref()));
        }
    }

    fn summary(&self, sources: &Sources, started: Instant, errors: &[String]) -> LiveSummary {
        let st = self.engine.stats();
        let mut verdicts = self.finished.clone();
        for v in self.open.values() {
            *verdicts.entry(v.as_str()).or_default() += 1;
        }
        LiveSummary {
            interfaces: sources.interfaces.clone(),
            packets: st.packets,
            bytes: st.bytes,
            tcp_packets: st.tcp_packets,
            kernel_drops: sources.counters.kernel_drops.load(Ordering::Relaxed),
            channel_drops: sources.counters.channel_drops.load(Ordering::Relaxed),
            truncated_frames: st.truncated_frames,
            active_flows: self.engine.active_flows(),
            finished_flows: self.finished_count,
            verdicts,
            elapsed: started.elapsed(),
            errors: errors.to_vec(),
            timed_out: false,
        }
    }
}

/// Runs the engine over `sources` until they end, `cfg.duration` runs out, or `sink` fails
/// (its error is returned: a broken pipe is the caller's to treat as a clean exit).
pub fn run(
    mut sources: Sources,
    cfg: &LiveConfig,
    enrich: Enrich<'_>,
    sink: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> (LiveSummary, Option<io::Error>) {
    let mut engine_cfg = cfg.engine.clone();
    engine_cfg.flow.events = true;
    let ifaces = sources
        .interfaces
        .iter()
        .map(|n| Interface {
            name: (!n.is_empty()).then(|| n.clone()),
            link: LinkType(0),
            snaplen: 0,
        })
        .collect();
    let mut engine = Engine::new(engine_cfg);
    if sources.interfaces.len() > 1 {
        engine.expect_copies();
    }
    let mut run = Run {
        engine,
        linker: Linker::new(cfg.engine.link),
        identities: IdentityCache::default(),
        ifaces,
        open: HashMap::new(),
        timelines: cfg.timelines.then(HashMap::new),
        finished: BTreeMap::new(),
        finished_count: 0,
        sink,
        enrich,
        error: None,
    };
    let started = Instant::now();
    let deadline = cfg.duration.map(|d| started + d);
    let mut next_summary = started + cfg.summary_interval;
    let mut last_drain = started;
    // Packet time of the newest packet, and when it arrived: the clock that expires idle
    // flows when the interface is quiet.
    let mut last_packet: Option<(Timestamp, Instant)> = None;
    let mut last_wall_expiry = started;
    let mut last_stale_check = started;
    // How long (packet time) a resumed flow waits for the handshake that created its session.
    let max_wait = i64::try_from(cfg.engine.flow.idle_timeout_ns).unwrap_or(i64::MAX);
    let mut errors = Vec::new();
    let mut timed_out = false;
    while sources.running > 0 && run.error.is_none() {
        // Someone else (the terminal UI's quit) ended the run.
        if sources.counters.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            timed_out = true;
            break;
        }
        let wait = deadline.map_or(IDLE_POLL, |d| d.saturating_duration_since(now).min(IDLE_POLL));
        match sources.rx.recv_timeout(wait) {
            Ok(SourceMsg::Packet(p)) => {
                run.engine.push(&p.as_packet_ref());
                last_packet = Some((p.ts, Instant::now()));
            }
            Ok(SourceMsg::Done { iface, error }) => {
                sources.running -= 1;
                if let Some(e) = error {
                    let name = sources.interfaces.get(iface as usize).cloned().unwrap_or_default();
                    errors.push(if name.is_empty() { e } else { format!("{name}: {e}") });
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Quiet: let idle flows expire by the clock, at most once a second.
                if let Some((ts, at)) = last_packet {
                    if last_wall_expiry.elapsed() >= Duration::from_secs(1) {
                        let idle = i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX);
                        run.engine.expire(Timestamp(ts.0.saturating_add(idle)));
                        last_wall_expiry = Instant::now();
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_drain.elapsed() >= DRAIN_EVERY {
            run.collect();
            last_drain = Instant::now();
        }
        if last_stale_check.elapsed() >= Duration::from_secs(1) {
            if let Some((ts, at)) = last_packet {
                let idle = i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX);
                let now = ts.0.saturating_add(idle);
                run.release_stale(Timestamp(now.saturating_sub(max_wait)));
            }
            last_stale_check = Instant::now();
        }
        if !cfg.summary_interval.is_zero() && Instant::now() >= next_summary {
            let s = run.summary(&sources, started, &errors);
            run.emit(Event::Summary(&s));
            next_summary += cfg.summary_interval;
        }
    }
    sources.counters.stop.store(true, Ordering::Relaxed);
    // Whatever the sources still had queued is part of the run (unless the sink is gone).
    if run.error.is_none() && !timed_out {
        while let Ok(msg) = sources.rx.try_recv() {
            if let SourceMsg::Packet(p) = msg {
                run.engine.push(&p.as_packet_ref());
            }
        }
    }
    // Live sources notice `stop` within milliseconds (and publish their final drop counts); the
    // channel is dropped first so that one blocked on a full channel is released. A replay
    // blocked reading stdin cannot be interrupted: it is left behind, the process is ending.
    let rx = std::mem::replace(&mut sources.rx, std::sync::mpsc::sync_channel(1).1);
    drop(rx);
    let joining = Instant::now();
    for t in std::mem::take(&mut sources.threads) {
        while !t.is_finished() && joining.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    if run.error.is_none() {
        run.collect();
        let rest = run.engine.finish();
        run.finish_flows(rest);
        let mut ready = Vec::new();
        run.linker.finish(&mut |f| ready.push(f));
        run.report_finished(ready);
    }
    let mut summary = run.summary(&sources, started, &errors);
    summary.timed_out = timed_out;
    (summary, run.error)
}
