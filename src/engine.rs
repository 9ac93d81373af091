//! The synchronous core: packets in, finished flows out. No I/O, no clocks: everything is
//! driven by the packets' own timestamps, so a capture replays identically every time.

use crate::capture::PacketRef;
use crate::decode::{self, DecodeConfig, DecodeError, Decoded, LinkType, Skip};
use crate::flow::{FlowConfig, FlowRecord, FlowTable, TableStats};
use crate::keylog::KeyLog;
use crate::link::LinkLimits;
use crate::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    /// Secrets to decrypt TLS 1.3 handshakes with (`--keylog`, pcapng Decryption Secrets).
    pub keylog: Option<Arc<KeyLog>>,
    /// Bounds of the resumption linker that follows the engine (`analyze`, `check`, `live`).
    pub link: LinkLimits,
}

/// What the engine counted while reading packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketStats {
    pub packets: u64,
    /// Bytes on the wire (original frame lengths).
    pub bytes: u64,
    pub tcp_packets: u64,
    /// Frames the capture cut short (snaplen).
    pub truncated_frames: u64,
    pub ip_fragments: u64,
    pub non_tcp: u64,
    /// Decode failures by reason (e.g. "unsupported link type 147", "tcp header truncated").
    pub decode_errors: BTreeMap<String, u64>,
    /// Per decode failure reason, the number (1-based, as Wireshark counts) of its first packet.
    pub first_decode_error: BTreeMap<String, u64>,
    pub link_types: BTreeMap<u16, u64>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Packets whose timestamp went backwards relative to the previous one.
    pub time_reversals: u64,
    /// Whole frames (not cut by the capture) whose IP length fields claim more bytes than the
    /// frame holds: the header lies. With the number (1-based) of the first.
    pub ip_length_overruns: u64,
    pub first_ip_length_overrun: Option<u64>,
    /// TCP segments whose options do not parse (the data offset may lie), and the first.
    pub bad_tcp_options: u64,
    pub first_bad_tcp_options: Option<u64>,
    /// The number (1-based) of the first packet whose timestamp went backwards.
    pub first_time_reversal: Option<u64>,
}

pub struct Engine {
    cfg: EngineConfig,
    table: FlowTable,
    stats: PacketStats,
    /// The input has shown more than one vantage point: look for packets captured twice.
    dedup: bool,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let mut table = FlowTable::new(cfg.flow);
        table.set_keylog(cfg.keylog.clone());
        Engine { cfg, table, stats: PacketStats::default(), dedup: false }
    }

    /// The input will show several vantage points (live capture on several interfaces, or
    /// several pods): look for copies from the first packet on, not only once a second
    /// vantage point has shown itself (its first packets' copies would be missed).
    pub fn expect_copies(&mut self) {
        self.dedup = true;
    }

    pub fn stats(&self) -> &PacketStats {
        &self.stats
    }

    pub fn table_stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.table.len()
    }

    /// Feed captured frames in order, as [`Self::push`] would one by one. Their flows are
    /// looked up and read all together first ([`FlowTable::preload`]): with thousands of
    /// flows interleaved each flow's state is a cache miss, and misses issued together
    /// overlap instead of stalling one packet at a time.
    pub fn push_batch(&mut self, pkts: &[PacketRef<'_>]) {
        if let [one] = pkts {
            // pcapng and records that straddle read blocks come one at a time.
            return self.push(one);
        }
        // Counted per run of one link type (a classic pcap has one): a map update per
        // packet was 1.5% of a run's instructions.
        for run in pkts.chunk_by(|a, b| a.link == b.link) {
            *self.stats.link_types.entry(run[0].link.0).or_default() += run.len() as u64;
        }
        let cfg = &self.cfg.decode;
        let decoded: Vec<_> = pkts.iter().map(|p| decode::decode(p.link, p.data, cfg)).collect();
        self.table.preload(decoded.iter().filter_map(|d| match d {
            Ok(Decoded::Tcp(tcp)) => Some(tcp),
            _ => None,
        }));
        for (pkt, d) in pkts.iter().zip(decoded) {
            self.push_decoded(pkt, d);
        }
    }

    /// Feed one captured frame.
    pub fn push(&mut self, pkt: &PacketRef<'_>) {
        *self.stats.link_types.entry(pkt.link.0).or_default() += 1;
        let d = decode::decode(pkt.link, pkt.data, &self.cfg.decode);
        self.push_decoded(pkt, d);
    }

    /// Everything but the link type count, which the callers keep.
    fn push_decoded(&mut self, pkt: &PacketRef<'_>, decoded: Result<Decoded<'_>, DecodeError>) {
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += u64::from(pkt.orig_len);
        if pkt.is_truncated() {
            s.truncated_frames += 1;
        }
        if let Some(last) = s.last_ts {
            if pkt.ts < last {
                s.time_reversals += 1;
                s.first_time_reversal.get_or_insert(s.packets);
            }
        }
        s.first_ts = Some(s.first_ts.map_or(pkt.ts, |f| f.min(pkt.ts)));
        s.last_ts = Some(s.last_ts.map_or(pkt.ts, |l| l.max(pkt.ts)));
        match decoded {
            Ok(Decoded::Tcp(tcp)) => {
                self.stats.tcp_packets += 1;
                if tcp.bad_options {
                    self.stats.bad_tcp_options += 1;
                    self.stats.first_bad_tcp_options.get_or_insert(self.stats.packets);
                }
                if tcp.payload_missing > 0 && !pkt.is_truncated() {
                    self.stats.ip_length_overruns += 1;
                    self.stats.first_ip_length_overrun.get_or_insert(self.stats.packets);
                }
                // `-i any` (SLL), a second pcapng interface, or a tunnel can each show one
                // packet twice; a plain single-interface capture cannot.
                self.dedup |= pkt.iface != 0 || tcp.sll.is_some() || tcp.tunnel.is_some();
                self.table.push(&tcp, pkt.iface, pkt.ts, self.dedup);
            }
            Ok(Decoded::Skipped(Skip::IpFragment)) => self.stats.ip_fragments += 1,
            Ok(Decoded::Skipped(_)) => self.stats.non_tcp += 1,
            Err(e) => self.count_error(pkt.link, e),
        }
    }

    fn count_error(&mut self, link: LinkType, e: DecodeError) {
        let key = match e {
            DecodeError::UnsupportedLinkType(_) => format!("unsupported link type {}", link.0),
            DecodeError::Truncated { layer } => format!("{layer} header truncated"),
            DecodeError::Malformed { layer, .. } => format!("malformed {layer} header"),
        };
        let packet = self.stats.packets;
        if !self.stats.first_decode_error.contains_key(&key) {
            self.stats.first_decode_error.insert(key.clone(), packet);
        }
        *self.stats.decode_errors.entry(key).or_default() += 1;
    }

    /// Flows that ended (FIN/RST linger or idle expiry) since the last call.
    pub fn drain_finished(&mut self) -> Vec<FlowRecord> {
        self.table.drain_finished()
    }

    /// Flows still open whose verdict was decided (or changed) since the last call, as
    /// snapshots; needs `cfg.flow.events` (see [`crate::flow::FlowTable::drain_decided`]).
    pub fn drain_decided(&mut self) -> Vec<FlowRecord> {
        self.table.drain_decided()
    }

    /// Finish flows idle past their timeout at time `now`. Packets drive expiry by themselves;
    /// a live capture calls this when no packet comes, so that a quiet interface still flushes.
    pub fn expire(&mut self, now: Timestamp) {
        self.table.expire(now);
    }

    /// End of input: finish every flow.
    pub fn finish(&mut self) -> Vec<FlowRecord> {
        self.table.flush()
    }
}
