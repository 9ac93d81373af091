//! Where live packets come from: one libpcap capture per interface, or a capture file (or
//! stdin) replayed. Each source runs on its own thread and hands owned packets to the engine
//! thread over one bounded channel; what a source could not hand over is counted, never hidden.

use crate::capture::CaptureReader;
use crate::decode::{DecodeConfig, LinkType};
use crate::keylog::KeyLog;
use crate::Timestamp;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Packets that may wait for the engine. A live capture that outruns the engine drops (and
/// counts) past this instead of growing memory.
pub const CHANNEL_PACKETS: usize = 16 * 1024;
/// How long a live source sleeps when no packet is waiting.
const IDLE_NAP: Duration = Duration::from_millis(2);
/// libpcap's full snaplen: anything shorter can cut a handshake.
pub const FULL_SNAPLEN: i32 = 262_144;

/// One captured frame, owned, so that it can cross to the engine thread.
#[derive(Debug, Clone)]
pub struct OwnedPacket {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: Vec<u8>,
    pub orig_len: u32,
    /// Index into the run's interface names.
    pub iface: u32,
}

impl OwnedPacket {
    /// The packet as the engine takes it.
    pub fn as_packet_ref(&self) -> crate::capture::PacketRef<'_> {
        crate::capture::PacketRef {
            ts: self.ts,
            link: self.link,
            data: &self.data,
            orig_len: self.orig_len,
            iface: self.iface,
        }
    }
}

/// What a source sends to the engine thread.
#[derive(Debug)]
pub enum SourceMsg {
    Packet(OwnedPacket),
    /// The source stopped (end of file, error); `error` says why if it was not the end.
    Done {
        iface: u32,
        error: Option<String>,
    },
}

/// Counters shared by the sources and read by the engine thread for the summaries.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets the kernel or libpcap dropped (`pcap_stats`: ps_drop + ps_ifdrop), all
    /// interfaces; refreshed about once a second.
    pub kernel_drops: AtomicU64,
    /// Packets thrown away because the engine's channel was full.
    pub channel_drops: AtomicU64,
    /// Set to stop every source.
    pub stop: AtomicBool,
}

/// How fast a file is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    /// As fast as the engine takes packets (a file never drops: the reader waits).
    Max,
    /// The packets' own spacing.
    Recorded,
}

/// The default BPF filter: TCP, plus the tunnels the decoder opens (VXLAN, Geneve and GTP-U on
/// their UDP ports, GRE and IP-in-IP by protocol); with `vlan` (Ethernet links only: libpcap
/// refuses `vlan` on Linux cooked captures) also inside one VLAN tag.
pub fn default_filter(decode: &DecodeConfig, vlan: bool) -> String {
    let mut ports: Vec<u16> = decode
        .vxlan_ports
        .iter()
        .chain(&decode.geneve_ports)
        .chain(&decode.gtp_ports)
        .copied()
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let mut parts = vec!["tcp".to_string()];
    if !ports.is_empty() {
        let ports: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
        parts.push(format!("(udp and ({}))", ports.join(" or ")));
    }
    if decode.gre {
        parts.push("ip proto 47 or ip6 proto 47".into());
    }
    if decode.ip_in_ip {
        parts.push("ip proto 4 or ip proto 41 or ip6 proto 4 or ip6 proto 41".into());
    }
    let base = parts.join(" or ");
    if vlan {
        format!("{base} or (vlan and ({base}))")
    } else {
        base
    }
}

/// Why a live capture could not start: the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// The interfaces libpcap can see, for error messages.
pub fn interface_names() -> Vec<String> {
    pcap::Device::list().map(|d| d.into_iter().map(|d| d.name).collect()).unwrap_or_default()
}

fn looks_like_permission(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted") || m.contains("privilege")
}

/// Opens a live capture on `name` (immediate mode, `snaplen`, `filter` or the default one).
pub fn open_live(
    name: &str,
    snaplen: i32,
    filter: Option<&str>,
    decode: &DecodeConfig,
) -> Result<pcap::Capture<pcap::Active>, OpenError> {
    let opened = pcap::Capture::from_device(name)
        .and_then(|c| c.immediate_mode(true).snaplen(snaplen).timeout(100).open());
    let mut cap = match opened {
        Ok(cap) => cap,
        Err(e) => {
            let msg = e.to_string();
            let names = interface_names();
            let list = if names.is_empty() { "none visible".into() } else { names.join(", ") };
            if looks_like_permission(&msg) {
                return Err(OpenError(format!(
                    "cannot capture on interface {name}: {msg}\n  live capture needs CAP_NET_RAW and \
                     CAP_NET_ADMIN: grant them once with\n    sudo setcap cap_net_raw,cap_net_admin+eip \
                     $(command -v mtlscope)\n  or run as root (sudo mtlscope live -i {name}); or \
                     replay a capture without privileges: mtlscope live -r FILE\n  interfaces: {list}"
                )));
            }
            return Err(OpenError(format!(
                "cannot capture on interface {name}: {msg}\n  interfaces: {list}"
            )));
        }
    };
    let filter = match filter {
        Some(f) => f.to_string(),
        None => default_filter(decode, cap.get_datalink() == pcap::Linktype::ETHERNET),
    };
    cap.filter(&filter, true)
        .map_err(|e| OpenError(format!("interface {name}: invalid filter {filter:?}: {e}")))?;
    // In immediate mode Linux libpcap ignores the read timeout and blocks until a packet comes,
    // so a quiet interface would never see `stop`: poll without blocking instead.
    cap.setnonblock().map_err(|e| OpenError(format!("interface {name}: {e}")))
}

/// Runs one live capture until `counters.stop`: owned packets to `tx`, dropped when the
/// channel is full (counted); kernel drops are published about once a second.
pub fn run_live(
    mut cap: pcap::Capture<pcap::Active>,
    iface: u32,
    tx: SyncSender<SourceMsg>,
    counters: Arc<Counters>,
    kernel_slot: Arc<AtomicU64>,
) {
    let link = LinkType(u16::try_from(cap.get_datalink().0).unwrap_or(u16::MAX));
    let mut last_stats = Instant::now();
    let mut error = None;
    while !counters.stop.load(Ordering::Relaxed) {
        if last_stats.elapsed() >= Duration::from_secs(1) {
            publish_kernel_drops(&mut cap, &counters, &kernel_slot);
            last_stats = Instant::now();
        }
        match cap.next_packet() {
            Ok(p) => {
                let ts = Timestamp::from_secs_nanos(
                    p.header.ts.tv_sec,
                    u32::try_from(p.header.ts.tv_usec).unwrap_or(0).saturating_mul(1000),
                );
                let pkt =
                    OwnedPacket { ts, link, data: p.data.to_vec(), orig_len: p.header.len, iface };
                match tx.try_send(SourceMsg::Packet(pkt)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        counters.channel_drops.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            // Nothing waiting (non-blocking): a short nap keeps latency low and the CPU idle.
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_NAP),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    publish_kernel_drops(&mut cap, &counters, &kernel_slot);
    let _ = tx.send(SourceMsg::Done { iface, error });
}

/// Each interface owns a slot with its latest kernel drop count; the total is their sum.
fn publish_kernel_drops(
    cap: &mut pcap::Capture<pcap::Active>,
    counters: &Counters,
    slot: &AtomicU64,
) {
    if let Ok(st) = cap.stats() {
        let now = u64::from(st.dropped) + u64::from(st.if_dropped);
        let before = slot.swap(now, Ordering::Relaxed);
        // pcap counters are 32-bit and may wrap; never count backwards.
        counters.kernel_drops.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
    }
}

/// Starts replaying `input` on its own thread: the sources of a `live -r` run. The interface
/// names are those the capture declares (none for classic pcap).
pub fn start_replay<R: Read + Send + 'static>(
    input: R,
    speed: Speed,
    keylog: Option<Arc<KeyLog>>,
) -> Sources {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_PACKETS);
    let (names_tx, names_rx) = std::sync::mpsc::sync_channel(1);
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let thread = std::thread::spawn(move || run_replay(input, speed, tx, c, names_tx, keylog));
    let interfaces = names_rx.recv().unwrap_or_default();
    Sources { rx, counters, interfaces, running: 1, threads: vec![thread] }
}

/// Replays a capture stream through the live pipeline. Returns the interface names the
/// capture declares (sent before the first packet through `names`).
pub fn run_replay<R: Read + Send>(
    input: R,
    speed: Speed,
    tx: SyncSender<SourceMsg>,
    counters: Arc<Counters>,
    names: SyncSender<Vec<String>>,
    keylog: Option<Arc<KeyLog>>,
) {
    replay(input, speed, tx, counters, Some(names), keylog, None);
}

/// Reads one capture stream of a run with several (`mtlscope pod`: one `tcpdump -w -` per
/// pod): every packet, and the end of the stream, is tagged `iface` whatever interface the
/// stream itself names, so the run's interface `iface` says where it came from.
pub fn run_tagged<R: Read + Send>(
    input: R,
    iface: u32,
    tx: SyncSender<SourceMsg>,
    counters: Arc<Counters>,
    keylog: Option<Arc<KeyLog>>,
) {
    replay(input, Speed::Max, tx, counters, None, keylog, Some(iface));
}

fn replay<R: Read + Send>(
    input: R,
    speed: Speed,
    tx: SyncSender<SourceMsg>,
    counters: Arc<Counters>,
    names: Option<SyncSender<Vec<String>>>,
    keylog: Option<Arc<KeyLog>>,
    tag: Option<u32>,
) {
    let done = tag.unwrap_or(0);
    let send_names = |n: Vec<String>| {
        if let Some(names) = &names {
            let _ = names.send(n);
        }
    };
    let mut reader = match CaptureReader::new(input) {
        Ok(r) => r,
        Err(e) => {
            send_names(Vec::new());
            let _ = tx.send(SourceMsg::Done { iface: done, error: Some(e.to_string()) });
            return;
        }
    };
    // pcapng Decryption Secrets Blocks join the run's key log, as in `analyze`.
    if let Some(keylog) = keylog {
        reader.set_keylog(keylog);
    }
    let mut sent_names = false;
    let mut clock: Option<(Timestamp, Instant)> = None;
    let mut error = None;
    loop {
        if counters.stop.load(Ordering::Relaxed) {
            break;
        }
        let mut pkt = None;
        match reader.next_packet(&mut |p| {
            pkt = Some(OwnedPacket {
                ts: p.ts,
                link: p.link,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
                iface: tag.unwrap_or(p.iface),
            })
        }) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if !sent_names {
            let n = reader.interfaces().iter().map(|i| i.name.clone().unwrap_or_default());
            send_names(n.collect());
            sent_names = true;
        }
        let Some(pkt) = pkt else { continue };
        if speed == Speed::Recorded {
            let (t0, w0) = *clock.get_or_insert((pkt.ts, Instant::now()));
            let due = Duration::from_nanos(pkt.ts.since(t0));
            // Sleep in short steps so that a stop is noticed.
            while w0.elapsed() < due && !counters.stop.load(Ordering::Relaxed) {
                std::thread::sleep((due - w0.elapsed()).min(Duration::from_millis(50)));
            }
        }
        if tx.send(SourceMsg::Packet(pkt)).is_err() {
            return;
        }
    }
    if !sent_names {
        send_names(Vec::new());
    }
    let _ = tx.send(SourceMsg::Done { iface: done, error });
}

/// The receiving end and what the engine thread needs to know about the sources.
pub struct Sources {
    pub rx: Receiver<SourceMsg>,
    pub counters: Arc<Counters>,
    /// Interface names, indexed by `OwnedPacket::iface`.
    pub interfaces: Vec<String>,
    /// Sources still running; the run ends when none is.
    pub running: usize,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_compiles_and_names_every_tunnel_port() {
        let mut decode = DecodeConfig::default();
        decode.vxlan_ports.push(4790);
        for link in [pcap::Linktype::ETHERNET, pcap::Linktype(276), pcap::Linktype(113)] {
            let filter = default_filter(&decode, link == pcap::Linktype::ETHERNET);
            for port in [4789, 8472, 6081, 2152, 4790] {
                assert!(filter.contains(&format!("port {port}")), "{filter}");
            }
            let dead = pcap::Capture::dead(link).unwrap();
            dead.compile(&filter, true).unwrap_or_else(|e| panic!("{filter}: {e}"));
        }
    }
}
