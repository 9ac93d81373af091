//! Stage 3: the flow table. Bidirectional TCP flows keyed by their endpoints, per-direction
//! reassembly feeding the classifier, duplicate suppression for `-i any`, and expiry driven by
//! packet time.

mod map;
pub mod reassembly;

use crate::classify::{Classification, Classifier, Feed, Limits, Stage};
use crate::decode::{TcpFlags, TcpPacket, Tunnel};
use crate::keylog::KeyLog;
use crate::{Dir, Timestamp};
use map::FlowMap;
use reassembly::{Chunk, Reassembler, ReassemblyStats};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Bounds and timeouts of the flow table.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// A flow with no packet for this long (packet time) is finished.
    pub idle_timeout_ns: u64,
    /// A closed flow (FIN both ways, or RST) is finished after this long without packets.
    pub closed_linger_ns: u64,
    /// Most out-of-order bytes held per direction.
    pub max_pending: usize,
    /// Most flows tracked at once; beyond it the longest-idle flow is finished early.
    pub max_flows: usize,
    pub limits: Limits,
    /// Note flows whose verdict is decided before they end, for [`FlowTable::drain_decided`]
    /// (live capture). Off for batch analysis, which pays nothing for it.
    pub events: bool,
    /// `--redact`: records leave the table with payload-derived text replaced
    /// ([`crate::redact`]).
    pub redact: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_ns: 600 * 1_000_000_000,
            closed_linger_ns: 1_000_000_000,
            max_pending: 256 * 1024,
            max_flows: 500_000,
            limits: Limits::default(),
            events: false,
            redact: false,
        }
    }
}

/// How the client of a flow was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBy {
    /// It sent the SYN.
    Syn,
    /// It received the SYN-ACK.
    SynAck,
    /// It sent what only a client sends (ClientHello, HTTP request, h2 preface).
    Payload,
    /// Guess: the endpoint with the higher port.
    HigherPort,
}

impl ClientBy {
    pub fn is_inferred(self) -> bool {
        !matches!(self, ClientBy::Syn | ClientBy::SynAck)
    }
}

/// Canonical key: the lower endpoint first, so both directions find the same flow. Tunnel ids
/// are deliberately not part of it: on a node, `-i any` sees a pod's packet both inside VXLAN
/// on eth0 and decapsulated on the overlay device, and that is one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey {
    lo: SocketAddr,
    hi: SocketAddr,
}

impl FlowKey {
    fn new(a: SocketAddr, b: SocketAddr) -> Self {
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

/// Where a copy of a packet was seen: the capture interface, the SLL interface index, and
/// whether it was inside a tunnel. Two copies of one segment at different vantage points are
/// duplicates; the same segment twice at one vantage point is a retransmission.
fn vantage(pkt: &TcpPacket<'_>, iface: u32) -> u64 {
    let ifindex = pkt.sll.and_then(|s| s.ifindex).unwrap_or(u32::MAX);
    (u64::from(iface) << 33) ^ (u64::from(ifindex) << 1) ^ u64::from(pkt.tunnel.is_some())
}

/// Per-direction counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirStats {
    pub packets: u64,
    /// TCP payload bytes on the wire (including bytes the capture cut).
    pub payload_bytes: u64,
    /// Payload bytes cut by snaplen.
    pub missing_bytes: u64,
    pub fin: bool,
}

/// A flow that has ended (or was flushed at the end of the input), with its classification.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub client_by: ClientBy,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Client->server and server->client.
    pub dirs: [DirStats; 2],
    pub reassembly: [ReassemblyStats; 2],
    pub syn_seen: bool,
    pub reset: bool,
    /// Copies of packets seen again on another interface (`-i any`), not counted in `dirs`.
    pub duplicates: u64,
    /// The capture interface of the first packet.
    pub iface: u32,
    /// SLL/SLL2 interface index of the first packet, when the link layer has one.
    pub ifindex: Option<u32>,
    pub tunnel: Option<Tunnel>,
    pub vlan: Option<u16>,
    /// Finished early because the flow table was full (`--max-flows`): a later packet of the
    /// connection starts a new flow.
    pub evicted: bool,
    pub classification: Classification,
}

impl FlowRecord {
    pub fn closed(&self) -> bool {
        self.reset || (self.dirs[0].fin && self.dirs[1].fin)
    }

    /// Once judged, drop what only the verdict needed, to keep finished flows small.
    pub fn compact(&mut self) {
        if let Classification::Tls { facts, .. } = &mut self.classification {
            facts.compact();
        }
    }
}

/// Recent segment signatures per direction, to spot the same packet captured twice.
#[derive(Debug, Default, Clone, Copy)]
struct SeenRing {
    sigs: [(u64, u64, Timestamp); 8],
    next: usize,
}

/// Two captures of one packet on different interfaces arrive within this window.
const DUP_WINDOW_NS: u64 = 50_000_000;

impl SeenRing {
    /// True if the same segment was seen on another interface just before.
    fn is_duplicate(&mut self, sig: u64, vantage: u64, ts: Timestamp) -> bool {
        let dup = self
            .sigs
            .iter()
            .any(|&(s, v, t)| s == sig && v != vantage && ts.since(t) <= DUP_WINDOW_NS);
        if !dup {
            self.sigs[self.next] = (sig, vantage, ts);
            self.next = (self.next + 1) % self.sigs.len();
        }
        dup
    }
}

/// Fields in the order a packet uses them (`repr(C)` keeps it): with thousands of flows
/// interleaved, each packet's flow state comes from far memory, and the flow table's working
/// set is what decides the speed. A packet of a classified flow reads and writes four cache
/// lines: the endpoints (the lookup's key), the counters and flags, and the first line of each
/// direction's reassembler. The classifier and what only the report needs come last.
#[derive(Debug)]
#[repr(C, align(64))]
struct Flow {
    /// The endpoints come first: they are the key the table's lookup compares ([`map`]).
    client: SocketAddr,
    server: SocketAddr,
    last_seen: Timestamp,
    /// Per direction (client->server, server->client): packets, payload bytes on the wire
    /// (including bytes the capture cut), FIN seen.
    packets: [u64; 2],
    payload_bytes: [u64; 2],
    /// The client's initial sequence number, from its SYN.
    client_isn: Option<u32>,
    fin: [bool; 2],
    buffering: bool,
    syn_seen: bool,
    reset: bool,
    /// Queued in [`FlowTable::closing`] to be finished once it has been quiet long enough
    /// (read with `reset` and the FIN flags on every packet, so kept beside them).
    closing: bool,
    duplicates: u64,
    reasm: [Reassembler; 2],
    /// Payload bytes cut by snaplen, per direction.
    missing_bytes: [u64; 2],
    /// Recent segments per direction, kept only when the input can hold one packet twice
    /// (`-i any`, several interfaces, tunnels): most captures never pay for it.
    seen: Option<Box<[SeenRing; 2]>>,
    classifier: Classifier,
    id: u64,
    client_by: ClientBy,
    first_seen: Timestamp,
    iface: u32,
    ifindex: Option<u32>,
    tunnel: Option<Tunnel>,
    vlan: Option<u16>,
    /// The stage last reported by [`FlowTable::drain_decided`].
    reported: Stage,
    /// Waiting in [`FlowTable::pending`] to be reported.
    pending: bool,
}

/// Which way a packet goes relative to the flow's roles.
fn direction(flow: &Flow, src: SocketAddr) -> Dir {
    if src == flow.client {
        Dir::ToServer
    } else {
        Dir::ToClient
    }
}

impl Flow {
    fn new(id: u64, pkt: &TcpPacket<'_>, iface: u32, ts: Timestamp, cfg: &FlowConfig) -> Self {
        let src = SocketAddr::new(pkt.src, pkt.src_port);
        let dst = SocketAddr::new(pkt.dst, pkt.dst_port);
        let syn = pkt.flags.has(TcpFlags::SYN);
        let ack = pkt.flags.has(TcpFlags::ACK);
        let (client, server, client_by) = if syn && !ack {
            (src, dst, ClientBy::Syn)
        } else if syn && ack {
            (dst, src, ClientBy::SynAck)
        } else if pkt.src_port >= pkt.dst_port {
            (src, dst, ClientBy::HigherPort)
        } else {
            (dst, src, ClientBy::HigherPort)
        };
        Flow {
            id,
            client,
            server,
            client_by,
            first_seen: ts,
            last_seen: ts,
            packets: [0; 2],
            payload_bytes: [0; 2],
            missing_bytes: [0; 2],
            fin: [false; 2],
            reasm: [Reassembler::new(cfg.max_pending), Reassembler::new(cfg.max_pending)],
            syn_seen: false,
            client_isn: None,
            reset: false,
            duplicates: 0,
            iface,
            ifindex: pkt.sll.and_then(|s| s.ifindex),
            tunnel: pkt.tunnel,
            vlan: pkt.vlan,
            seen: None,
            classifier: Classifier::new(cfg.limits, client_by.is_inferred()),
            buffering: true,
            reported: Stage::Undecided,
            pending: false,
            closing: false,
        }
    }

    fn closed(&self) -> bool {
        self.reset || (self.fin[0] && self.fin[1])
    }

    fn key(&self) -> FlowKey {
        FlowKey::new(self.client, self.server)
    }

    fn segment(&mut self, pkt: &TcpPacket<'_>, iface: u32, ts: Timestamp, dedup: bool) {
        let dir = direction(self, SocketAddr::new(pkt.src, pkt.src_port));
        if dedup {
            let seen = self.seen.get_or_insert_with(Default::default);
            if seen[dir.index()].is_duplicate(signature(pkt), vantage(pkt, iface), ts) {
                self.duplicates += 1;
                return;
            }
        }
        self.last_seen = ts;
        let i = dir.index();
        self.packets[i] += 1;
        self.payload_bytes[i] += pkt.payload.len() as u64 + u64::from(pkt.payload_missing);
        if pkt.payload_missing > 0 {
            self.missing_bytes[i] += u64::from(pkt.payload_missing);
        }
        if pkt.flags.has(TcpFlags::SYN) {
            self.syn_seen = true;
            if dir == Dir::ToServer && !pkt.flags.has(TcpFlags::ACK) {
                self.client_isn.get_or_insert(pkt.seq);
            }
            self.reasm[dir.index()].syn(pkt.seq);
        }
        if pkt.flags.has(TcpFlags::RST) {
            self.reset = true;
        }
        let Flow {
            reasm,
            classifier,
            client_by,
            client,
            server,
            packets,
            payload_bytes,
            missing_bytes,
            fin,
            seen,
            buffering,
            ..
        } = &mut *self;
        let mut swapped = false;
        let mut sink = |chunk: Chunk<'_>| match chunk {
            // Once classified, stream bytes only move the reassembler's position.
            Chunk::Data(_) | Chunk::Gap(_) if !*buffering => {}
            Chunk::Data(bytes) => {
                let d = if swapped { dir.flip() } else { dir };
                if classifier.feed(d, bytes, ts) == Feed::SwappedRoles {
                    swapped = !swapped;
                }
            }
            Chunk::Gap(len) => {
                classifier.gap(if swapped { dir.flip() } else { dir }, u64::from(len))
            }
        };
        if !pkt.payload.is_empty() || pkt.flags.has(TcpFlags::SYN) {
            // A payload cut by snaplen is delivered as captured, then the rest as a gap.
            // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
            let seq = if pkt.flags.has(TcpFlags::SYN) { pkt.seq.wrapping_add(1) } else { pkt.seq };
            reasm[dir.index()].segment(seq, pkt.payload, &mut sink);
            if pkt.payload_missing > 0 {
                reasm[dir.index()].flush(&mut sink);
            }
        }
        if pkt.flags.has(TcpFlags::ACK) {
            reasm[dir.flip().index()].ack_seen(pkt.ack, &mut sink);
        }
        if pkt.flags.has(TcpFlags::FIN) {
            fin[dir.index()] = true;
            reasm[dir.index()].fin(pkt.seq, pkt.payload.len() + pkt.payload_missing as usize);
        }
        if swapped {
            std::mem::swap(client, server);
            reasm.swap(0, 1);
            packets.swap(0, 1);
            payload_bytes.swap(0, 1);
            missing_bytes.swap(0, 1);
            fin.swap(0, 1);
            if let Some(seen) = seen {
                seen.swap(0, 1);
            }
            *client_by = ClientBy::Payload;
        }
        if self.buffering && !self.classifier.wants_bytes() {
            self.buffering = false;
            self.reasm.iter_mut().for_each(Reassembler::stop_buffering);
        }
    }

    fn finish(mut self) -> FlowRecord {
        let Flow { reasm, classifier, last_seen, .. } = &mut self;
        let ts = *last_seen;
        for dir in [Dir::ToServer, Dir::ToClient] {
            let mut sink = |chunk: Chunk<'_>| match chunk {
                Chunk::Data(bytes) => {
                    classifier.feed(dir, bytes, ts);
                }
                Chunk::Gap(len) => classifier.gap(dir, u64::from(len)),
            };
            reasm[dir.index()].flush(&mut sink);
        }
        let classification = self.classifier.finish();
        self.record(classification)
    }

    /// What the flow is so far, leaving it open (bytes held out of order are not judged yet).
    fn snapshot(&self) -> FlowRecord {
        self.record(self.classifier.snapshot())
    }

    /// A new stage with a verdict, not reported yet: the flow should be queued for a report.
    fn stage_changed(&mut self) -> bool {
        let stage = self.classifier.stage();
        if self.pending || stage == self.reported || !stage.decided() {
            return false;
        }
        self.pending = true;
        true
    }

    fn record(&self, classification: Classification) -> FlowRecord {
        FlowRecord {
            id: self.id,
            client: self.client,
            server: self.server,
            client_by: self.client_by,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            dirs: [0, 1].map(|i| DirStats {
                packets: self.packets[i],
                payload_bytes: self.payload_bytes[i],
                missing_bytes: self.missing_bytes[i],
                fin: self.fin[i],
            }),
            reassembly: [self.reasm[0].stats(), self.reasm[1].stats()],
            syn_seen: self.syn_seen,
            reset: self.reset,
            duplicates: self.duplicates,
            iface: self.iface,
            ifindex: self.ifindex,
            tunnel: self.tunnel,
            vlan: self.vlan,
            evicted: false,
            classification,
        }
    }
}

/// What identifies one transmission of a segment (retransmissions differ in IP id).
fn signature(pkt: &TcpPacket<'_>) -> u64 {
    let mut h = u64::from(pkt.seq);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(pkt.ack);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (pkt.payload.len() as u64) << 8
        ^ u64::from(pkt.flags.0);
    h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(pkt.ip_id)
}

/// Counters of the table itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStats {
    pub flows_created: u64,
    pub flows_evicted: u64,
    pub duplicates: u64,
    pub peak_flows: usize,
}

/// The flow table.
pub struct FlowTable {
    cfg: FlowConfig,
    flows: FlowMap,
    next_id: u64,
    last_sweep: Timestamp,
    finished: Vec<FlowRecord>,
    stats: TableStats,
    /// Key log for TLS 1.3 handshake decryption, given to every new flow's classifier.
    keylog: Option<Arc<KeyLog>>,
    /// With `events`: flows whose stage changed since the last [`Self::drain_decided`], each
    /// at most once while it is tracked (its `pending` flag); entries of flows that finished
    /// meanwhile are skipped, and pruned when they outnumber the flows.
    pending: Vec<FlowKey>,
    /// Closed flows (both FINs or a RST) by their last packet time when queued, earliest
    /// first: each is finished as soon as it has been quiet for the linger time, so finished
    /// flows leave at an even pace, not in bursts at each sweep. Flows quiet since the same
    /// time leave in the order they started: the flow id breaks the tie, so the keys (two
    /// socket addresses, slow to compare) are never compared.
    closing: BinaryHeap<Reverse<(Timestamp, u64, FlowKey)>>,
    /// Latest packet time per capture interface (the first [`MAX_CLOCKS`]): a closed flow is
    /// quiet when its own interface's time has moved on, so that a stream running ahead of
    /// another (two pods merged in `mtlscope pod`) does not finish the other's flows before
    /// their last packets arrive.
    clocks: Vec<Timestamp>,
}

const MAX_CLOCKS: usize = 256;

const SWEEP_EVERY_NS: u64 = 1_000_000_000;

/// When the table is full, this fraction of it (the longest idle) is finished at once.
const EVICT_BATCH: usize = 64;

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            cfg,
            flows: FlowMap::default(),
            next_id: 1,
            last_sweep: Timestamp(i64::MIN),
            finished: Vec::new(),
            stats: TableStats::default(),
            keylog: None,
            pending: Vec::new(),
            closing: BinaryHeap::new(),
            clocks: Vec::new(),
        }
    }

    pub fn set_keylog(&mut self, keylog: Option<Arc<KeyLog>>) {
        self.keylog = keylog;
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Reads the state that segments' updates will touch, for all of them before any is
    /// applied (see [`crate::engine::Engine::push_batch`]): the lookups touch only the
    /// table's own memory, then the flows' hot cache lines are read in one tight loop, so
    /// that their misses overlap. A hint only: a lookup by hash tag alone may pick another
    /// flow, which costs a useless read, and nothing is changed.
    pub fn preload<'p>(&self, pkts: impl Iterator<Item = &'p TcpPacket<'p>>) {
        const MAX: usize = crate::capture::BATCH;
        let mut found: [Option<&Flow>; MAX] = [None; MAX];
        for (slot, pkt) in found.iter_mut().zip(pkts) {
            let src = SocketAddr::new(pkt.src, pkt.src_port);
            let dst = SocketAddr::new(pkt.dst, pkt.dst_port);
            *slot = self.flows.likely(&src, &dst);
        }
        let words = found.iter().flatten().fold(0u64, |acc, f| {
            // One word of each of the four lines a segment of a classified flow reads (see
            // `Flow`): the endpoints the lookup compares, the counters, each reassembler.
            acc ^ u64::from(f.client.port())
                ^ f.last_seen.0 as u64
                ^ f.reasm[0].position()
                ^ f.reasm[1].position()
        });
        std::hint::black_box(words);
    }

    /// Account one TCP segment. `dedup`: the input may hold copies of one packet from several
    /// vantage points (see [`vantage`]).
    pub fn push(&mut self, pkt: &TcpPacket<'_>, iface: u32, ts: Timestamp, dedup: bool) {
        if ts.since(self.last_sweep) >= SWEEP_EVERY_NS {
            self.expire(ts);
        }
        self.tick(iface, ts);
        self.finish_quiet_closed(ts);
        let src = SocketAddr::new(pkt.src, pkt.src_port);
        let dst = SocketAddr::new(pkt.dst, pkt.dst_port);
        let fresh_syn = pkt.flags.has(TcpFlags::SYN) && !pkt.flags.has(TcpFlags::ACK);
        if let Some(flow) = self.flows.get_pair_mut(&src, &dst) {
            // A retransmitted SYN carries the same initial sequence number; a new connection
            // on a reused 5-tuple carries another one. A copy of the SYN seen at another
            // vantage point after the flow closed (a second pod's stream behind the first's in
            // `mtlscope pod`) is the same connection too.
            let reused = fresh_syn && flow.client_isn.map_or(flow.closed(), |isn| isn != pkt.seq);
            if !reused {
                let watch = self.cfg.events && flow.buffering;
                if dedup {
                    let before = flow.duplicates;
                    flow.segment(pkt, iface, ts, dedup);
                    self.stats.duplicates += flow.duplicates - before;
                } else {
                    // Duplicates are only looked for with `dedup`.
                    flow.segment(pkt, iface, ts, dedup);
                }
                if !flow.closing && flow.closed() {
                    flow.closing = true;
                    self.closing.push(Reverse((flow.last_seen, flow.id, flow.key())));
                }
                // Once a flow stops buffering its classifier sees no more bytes: its stage is
                // final, so only buffering flows are looked at.
                if watch && flow.stage_changed() {
                    let key = flow.key();
                    self.queue(key);
                }
                return;
            }
            if let Some(old) = self.flows.remove(&FlowKey::new(src, dst)) {
                self.finished.push(old.finish());
            }
        }
        if self.flows.len() >= self.cfg.max_flows {
            self.evict_oldest();
        }
        let mut flow = Box::new(Flow::new(self.next_id, pkt, iface, ts, &self.cfg));
        flow.classifier.set_keylog(self.keylog.clone());
        self.next_id += 1;
        self.stats.flows_created += 1;
        flow.segment(pkt, iface, ts, dedup);
        self.stats.duplicates += flow.duplicates;
        let changed = self.cfg.events && flow.stage_changed();
        let key = flow.key();
        if flow.closed() {
            flow.closing = true;
            self.closing.push(Reverse((flow.last_seen, flow.id, key)));
        }
        self.flows.insert_new(flow);
        if changed {
            self.queue(key);
        }
        self.stats.peak_flows = self.stats.peak_flows.max(self.flows.len());
    }

    fn tick(&mut self, iface: u32, ts: Timestamp) {
        let i = (iface as usize).min(MAX_CLOCKS - 1);
        if i >= self.clocks.len() {
            self.clocks.resize(i + 1, Timestamp(i64::MIN));
        }
        self.clocks[i] = self.clocks[i].max(ts);
    }

    /// Finish the closed flows quiet for the linger time at packet time `now`, by their own
    /// interface's time too (a flow that is not quiet yet is looked at again later).
    fn finish_quiet_closed(&mut self, now: Timestamp) {
        let linger = self.cfg.closed_linger_ns;
        while let Some(&Reverse((quiet_since, id, key))) = self.closing.peek() {
            if now.since(quiet_since) < linger {
                return;
            }
            self.closing.pop();
            // The flow may be gone already (expired, evicted, or replaced on its 5-tuple by a
            // newer flow, which has its own entry). The one with this id is the queued one, so
            // its `closing` flag is set.
            let Some(flow) = self.flows.get_mut(&key).filter(|f| f.id == id) else { continue };
            let own = self.clocks[(flow.iface as usize).min(MAX_CLOCKS - 1)];
            if own.since(flow.last_seen) < linger || now.since(flow.last_seen) < linger {
                self.closing.push(Reverse((flow.last_seen.max(now), id, key)));
            } else if let Some(flow) = self.flows.remove(&key) {
                self.finished.push(flow.finish());
            }
        }
    }

    /// Finish flows idle past their timeout at packet time `now`, in the order they started.
    pub fn expire(&mut self, now: Timestamp) {
        self.last_sweep = now;
        let cfg = self.cfg;
        let expired: Vec<Box<Flow>> = self
            .flows
            .extract_if(|f| {
                let idle = now.since(f.last_seen);
                idle >= cfg.idle_timeout_ns || (f.closed() && idle >= cfg.closed_linger_ns)
            })
            .collect();
        self.finished.extend(finish_in_start_order(expired));
    }

    /// The table is full: finish the longest-idle `1/EVICT_BATCH` of it (at least one flow) in
    /// one pass, so that a flood of new flows costs a table scan per batch, not per flow.
    fn evict_oldest(&mut self) {
        let n = (self.flows.len() / EVICT_BATCH).max(1);
        let mut times: Vec<Timestamp> = self.flows.values().map(|f| f.last_seen).collect();
        if times.is_empty() {
            return;
        }
        let (_, &mut cut, _) = times.select_nth_unstable(n - 1);
        // Flows idle longer than the cut all go; of those exactly at it, only as many as fit.
        let mut at_cut = n - times.iter().filter(|&&t| t < cut).count();
        drop(times);
        let out: Vec<Box<Flow>> = self
            .flows
            .extract_if(|f| {
                f.last_seen < cut
                    || (f.last_seen == cut && at_cut > 0 && {
                        at_cut -= 1;
                        true
                    })
            })
            .collect();
        self.stats.flows_evicted += out.len() as u64;
        self.finished.extend(finish_in_start_order(out).map(|mut record| {
            record.evicted = true;
            record
        }));
    }

    fn queue(&mut self, key: FlowKey) {
        if self.pending.len() >= 2 * self.flows.len() + 1024 {
            let flows = &self.flows;
            self.pending.retain(|k| flows.get(k).is_some_and(|f| f.pending));
        }
        self.pending.push(key);
    }

    /// With [`FlowConfig::events`]: snapshots of the flows still open whose verdict was
    /// decided, or whose stage changed again, since the last call; each flow once per change,
    /// in the order the changes happened. Flows that finished meanwhile are left to
    /// [`Self::drain_finished`].
    pub fn drain_decided(&mut self) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        for key in std::mem::take(&mut self.pending) {
            if let Some(flow) = self.flows.get_mut(&key).filter(|f| f.pending) {
                flow.pending = false;
                flow.reported = flow.classifier.stage();
                out.push(flow.snapshot());
            }
        }
        self.redact(&mut out);
        out
    }

    /// Flows finished since the last call.
    pub fn drain_finished(&mut self) -> Vec<FlowRecord> {
        // About as many finish before the next call: room for them now saves growing the
        // vector of 528-byte records step by step (each step a copy of all of them).
        let room = Vec::with_capacity(self.finished.len());
        let mut out = std::mem::replace(&mut self.finished, room);
        self.redact(&mut out);
        out
    }

    /// Finish every flow (end of input).
    pub fn flush(&mut self) -> Vec<FlowRecord> {
        self.closing.clear();
        let flows: Vec<Box<Flow>> = self.flows.drain().collect();
        let mut out = std::mem::take(&mut self.finished);
        out.extend(finish_in_start_order(flows));
        self.redact(&mut out);
        out
    }

    /// Every record leaves the table through here (`--redact`).
    fn redact(&self, records: &mut [FlowRecord]) {
        if self.cfg.redact {
            records.iter_mut().for_each(crate::redact::record);
        }
    }
}

/// Flows taken out of the table together leave in the order they started (the table's own
/// order is its hash's, which is seeded per run). Boxed as the table holds them: sorting moves
/// pointers, not kilobyte-sized flows.
#[allow(clippy::vec_box)]
fn finish_in_start_order(mut flows: Vec<Box<Flow>>) -> impl Iterator<Item = FlowRecord> {
    flows.sort_by_key(|f| f.id);
    flows.into_iter().map(|f| f.finish())
}

/// Loopback or same-host addresses: the connection never left the pod.
pub fn is_local_pair(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_loopback() || b.is_loopback()
}

#[cfg(test)]
mod tests;
