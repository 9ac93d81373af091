//! Stage 2: link layers, IP and TCP. Turns one captured frame into a borrowed TCP segment.
//!
//! [`decode`] walks the frame outside-in, one function per layer, and never allocates on the
//! success path:
//!
//! ```text
//!  link (Ethernet+VLANs, raw IP, SLL, SLL2, NULL/LOOP, NFLOG)       mod.rs, linux.rs
//!    └─ IPv4 / IPv6 (+ extension headers, fragments, AH)            ip.rs
//!         ├─ TCP ─────────────────────────────▶ Decoded::Tcp
//!         ├─ UDP ─ VXLAN / Geneve ─┐                                tunnel.rs
//!         ├─ GRE ─ TEB / IP / ERSPAN II, III ─┼─▶ back to Ethernet or IP (at most
//!         └─ IP-in-IP (Calico) ───────────────┘   MAX_TUNNEL_DEPTH tunnels deep)
//! ```
//!
//! Lengths in headers are believed only as far as the captured bytes go: a TCP payload never
//! extends past the capture nor past what the IP (and UDP) length fields allow, so Ethernet
//! padding is excluded and a snaplen cut shows up as [`TcpPacket::payload_missing`].

mod ip;
mod linux;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tunnel;
mod tunnel;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// A pcap/pcapng link type (DLT/LINKTYPE value). Open newtype: unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// DLT_RAW as most BSDs number it; some files carry it instead of 101.
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// DLT_RAW as OpenBSD numbers it.
    pub const RAW_DLT14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// TCP header flags (the low 8 bits of the flags field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// What decoding needs to know beyond the frame: which encapsulations to open.
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    /// UDP ports (source or destination) that carry VXLAN (IANA 4789; flannel and Cilium 8472).
    pub vxlan_ports: Vec<u16>,
    /// UDP ports (source or destination) that carry Geneve.
    pub geneve_ports: Vec<u16>,
    /// UDP ports carrying GTPv1-U (default 2152).
    pub gtp_ports: Vec<u16>,
    /// Open GRE (IP protocol 47): transparent Ethernet, IP, ERSPAN II/III.
    pub gre: bool,
    /// Open IP-in-IP (IP protocols 4 and 41), which Calico's IPIP mode uses between nodes.
    pub ip_in_ip: bool,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            vxlan_ports: vec![4789, 8472],
            geneve_ports: vec![6081],
            gtp_ports: vec![2152],
            gre: true,
            ip_in_ip: true,
        }
    }
}

/// Tunnels nested deeper than this are refused, so a crafted frame cannot make decode loop.
pub const MAX_TUNNEL_DEPTH: u8 = 4;

/// One TCP segment, borrowing its payload from the captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// Captured TCP payload only: never past the captured bytes, never past what the IP length
    /// fields allow (so Ethernet padding is excluded).
    pub payload: &'a [u8],
    /// Payload bytes the IP header says exist but the capture cut off (snaplen). Zero when the
    /// IP length field was 0 (TSO/GSO captures, jumbograms), as the real length is then unknown.
    pub payload_missing: u32,
    /// The TCP options do not parse (an option runs past the header): the data offset may lie,
    /// and then part of the payload was read as options.
    pub bad_options: bool,
    /// IPv4 identification; IPv6: flow label. Tells `-i any` duplicates from retransmissions.
    pub ip_id: u32,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// Present for LINUX_SLL / LINUX_SLL2 frames (the outermost header).
    pub sll: Option<SllMeta>,
    /// Innermost tunnel the segment was found in, if any.
    pub tunnel: Option<Tunnel>,
    /// VLAN id of the Ethernet frame that carried the IP packet (innermost tag; VID 0, a
    /// priority-only tag, is not a VLAN). Entering a tunnel forgets the outer VLAN.
    pub vlan: Option<u16>,
}

/// Linux cooked-capture metadata: which interface and which way (`-i any` sees a packet once
/// per interface it crosses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SllMeta {
    /// 0 to us, 1 broadcast, 2 multicast, 3 to another host, 4 outgoing.
    pub packet_type: u16,
    /// SLL v1 has no interface index; SLL2 has one.
    pub ifindex: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    Vxlan {
        vni: u32,
    },
    Geneve {
        vni: u32,
    },
    /// GRE carrying Ethernet (0x6558) or IP directly.
    Gre,
    /// GRE carrying ERSPAN type II or III (port mirroring); `session` is the 10-bit session id.
    Erspan {
        session: u16,
    },
    /// IPv4 or IPv6 directly inside IPv4/IPv6 (IP protocol 4 or 41).
    IpInIp,
    /// GTPv1-U (mobile core), with its tunnel endpoint id.
    Gtp {
        teid: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    Tcp(TcpPacket<'a>),
    Skipped(Skip),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NotIp,
    Udp,
    Icmp,
    OtherTransport(u8),
    /// An IPv4 fragment or an IPv6 fragment header with an offset or MF (not an atomic one).
    IpFragment,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u16),
    #[error("{layer} header truncated")]
    Truncated { layer: &'static str },
    #[error("malformed {layer} header: {detail}")]
    Malformed { layer: &'static str, detail: String },
}

/// Decodes one captured frame of the given link type.
pub fn decode<'a>(
    link: LinkType,
    frame: &'a [u8],
    cfg: &DecodeConfig,
) -> Result<Decoded<'a>, DecodeError> {
    if link == LinkType::ETHERNET {
        if let Some(tcp) = ethernet_ipv4_tcp(frame) {
            return Ok(Decoded::Tcp(tcp));
        }
    }
    decode_layers(link, frame, cfg)
}

/// The common case in one step: untagged Ethernet, IPv4 without options, not a fragment, a
/// whole TCP header. Anything else (or anything odd) is `None` and goes the long way, which
/// gives the same answer for what this accepts (a test checks).
#[inline]
fn ethernet_ipv4_tcp(frame: &[u8]) -> Option<TcpPacket<'_>> {
    let ip = frame.get(14..)?;
    if frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let h: &[u8; 20] = ip.first_chunk()?;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // Version 4 with a 20-byte header; no MF flag nor fragment offset; TCP.
    if h[0] != 0x45 || total < 40 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 || h[9] != 6 {
        return None;
    }
    // What the IP length allows of the capture (so Ethernet padding is excluded).
    let tcp = ip.get(20..total.min(ip.len()))?;
    let t: &[u8; 20] = tcp.first_chunk()?;
    let hl = usize::from(t[12] >> 4) * 4;
    if hl < 20 || hl > tcp.len() {
        return None;
    }
    let be32 = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    Some(TcpPacket {
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        src_port: u16::from_be_bytes([t[0], t[1]]),
        dst_port: u16::from_be_bytes([t[2], t[3]]),
        seq: be32(4),
        ack: be32(8),
        flags: TcpFlags(t[13]),
        window: u16::from_be_bytes([t[14], t[15]]),
        payload: &tcp[hl..],
        payload_missing: u32::try_from(total - 20 - tcp.len()).unwrap_or(u32::MAX),
        bad_options: !tcp_options_parse(&tcp[20..hl]),
        ip_id: u32::from(u16::from_be_bytes([h[4], h[5]])),
        ttl: h[8],
        sll: None,
        tunnel: None,
        vlan: None,
    })
}

/// Whether TCP options walk cleanly to the end of the header: every option but End (0) and
/// No-Operation (1) has a length of at least 2 that stays inside the options.
fn tcp_options_parse(mut opts: &[u8]) -> bool {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return true,
            1 => opts = &opts[1..],
            _ => match opts.get(1).map(|&l| usize::from(l)) {
                Some(len) if len >= 2 && len <= opts.len() => opts = &opts[len..],
                _ => return false,
            },
        }
    }
    true
}

/// Decodes one frame layer by layer (see the module documentation).
fn decode_layers<'a>(
    link: LinkType,
    frame: &'a [u8],
    cfg: &DecodeConfig,
) -> Result<Decoded<'a>, DecodeError> {
    let mut ctx = Ctx { cfg, sll: None, tunnel: None, vlan: None, depth: 0 };
    match link {
        LinkType::ETHERNET => ethernet(&mut ctx, frame),
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => ip::any_ip(&mut ctx, frame),
        LinkType::IPV4 => ip::ipv4(&mut ctx, frame),
        LinkType::IPV6 => ip::ipv6(&mut ctx, frame),
        LinkType::NULL => null(&mut ctx, frame, false),
        LinkType::LOOP => null(&mut ctx, frame, true),
        LinkType::LINUX_SLL => linux::sll(&mut ctx, frame),
        LinkType::LINUX_SLL2 => linux::sll2(&mut ctx, frame),
        LinkType::NFLOG => linux::nflog(&mut ctx, frame),
        LinkType(other) => Err(DecodeError::UnsupportedLinkType(other)),
    }
}

/// What the layers found so far, carried down into the TCP segment.
struct Ctx<'c> {
    cfg: &'c DecodeConfig,
    sll: Option<SllMeta>,
    tunnel: Option<Tunnel>,
    vlan: Option<u16>,
    depth: u8,
}

impl Ctx<'_> {
    fn enter(&mut self, tunnel: Tunnel) -> Result<(), DecodeError> {
        if self.depth >= MAX_TUNNEL_DEPTH {
            return Err(malformed("tunnel", format_args!("more than {MAX_TUNNEL_DEPTH} nested")));
        }
        self.depth += 1;
        self.tunnel = Some(tunnel);
        // An outer VLAN tags the tunnel's transport, not the inner frame.
        self.vlan = None;
        Ok(())
    }
}

type Res<'a> = Result<Decoded<'a>, DecodeError>;

fn truncated(layer: &'static str) -> DecodeError {
    DecodeError::Truncated { layer }
}

fn malformed(layer: &'static str, detail: impl fmt::Display) -> DecodeError {
    DecodeError::Malformed { layer, detail: detail.to_string() }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?.first_chunk::<2>().map(|c| u16::from_be_bytes(*c))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?.first_chunk::<4>().map(|c| u32::from_be_bytes(*c))
}

/// Bytes of one layer: what was captured, and how long its enclosing header says it is.
///
/// Invariant: `bytes.len() <= claimed` whenever `claimed` is known. `claimed` is `None` when the
/// length field was 0, which TSO/GSO captures and IPv6 jumbograms write: then the capture is
/// all we know.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    bytes: &'a [u8],
    claimed: Option<usize>,
}

/// Whether a header of some length fits in a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    Yes,
    /// The length fields allow it, but the capture stopped short (snaplen).
    CaptureCut,
    /// The length fields themselves leave no room for it: the header lies.
    Overrun(usize),
}

impl<'a> Segment<'a> {
    fn whole(bytes: &'a [u8]) -> Self {
        Segment { bytes, claimed: None }
    }

    /// Narrows to `len` bytes as a nested length field says, never past an outer claim:
    /// a field longer than its container is clamped, a shorter one drops trailing padding.
    fn limit(self, len: usize) -> Self {
        let claimed = self.claimed.map_or(len, |c| c.min(len));
        let bytes = self.bytes.get(..claimed).unwrap_or(self.bytes);
        Segment { bytes, claimed: Some(claimed) }
    }

    /// Drops the first `n` bytes; call after [`Segment::fit`] said yes.
    fn skip(self, n: usize) -> Self {
        Segment {
            bytes: self.bytes.get(n..).unwrap_or_default(),
            claimed: self.claimed.map(|c| c.saturating_sub(n)),
        }
    }

    fn fit(&self, n: usize) -> Fit {
        match self.claimed {
            Some(c) if n > c => Fit::Overrun(c),
            _ if n > self.bytes.len() => Fit::CaptureCut,
            _ => Fit::Yes,
        }
    }

    /// Like [`Segment::fit`], as an error naming `layer`.
    fn need(&self, n: usize, layer: &'static str) -> Result<(), DecodeError> {
        match self.fit(n) {
            Fit::Yes => Ok(()),
            Fit::CaptureCut => Err(truncated(layer)),
            Fit::Overrun(c) => Err(malformed(
                layer,
                format_args!("needs {n} bytes but the length fields leave {c}"),
            )),
        }
    }

    /// Whether the capture, not a length field, is what ends these bytes.
    fn capture_cut(&self) -> bool {
        self.claimed.is_none_or(|c| c > self.bytes.len())
    }

    fn missing(&self) -> usize {
        self.claimed.map_or(0, |c| c.saturating_sub(self.bytes.len()))
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// Transparent Ethernet Bridging: an Ethernet frame follows (GRE, Geneve).
const ETHERTYPE_TEB: u16 = 0x6558;

fn ethernet<'a>(ctx: &mut Ctx, frame: &'a [u8]) -> Res<'a> {
    let (Some(ty), Some(rest)) = (be16(frame, 12), frame.get(14..)) else {
        return Err(truncated("ethernet"));
    };
    ethertype(ctx, ty, rest)
}

/// Dispatches on an EtherType, peeling any number of 802.1Q / 802.1ad / 0x9100 tags (each
/// consumes four bytes, so the loop ends).
fn ethertype<'a>(ctx: &mut Ctx, mut ty: u16, mut rest: &'a [u8]) -> Res<'a> {
    loop {
        match ty {
            ETHERTYPE_IPV4 => return ip::ipv4(ctx, rest),
            ETHERTYPE_IPV6 => return ip::ipv6(ctx, rest),
            0x8100 | 0x88A8 | 0x9100 | 0x9200 => {
                let (Some(tci), Some(next), Some(after)) =
                    (be16(rest, 0), be16(rest, 2), rest.get(4..))
                else {
                    return Err(truncated("vlan"));
                };
                let vid = tci & 0x0FFF;
                if vid != 0 {
                    ctx.vlan = Some(vid);
                }
                ty = next;
                rest = after;
            }
            // ARP, LLDP, 802.3 length fields, MPLS, ...
            _ => return Ok(Decoded::Skipped(Skip::NotIp)),
        }
    }
}

/// BSD loopback: a 4-byte address family, in network order for LOOP and in the capturing
/// host's order for NULL.
fn null<'a>(ctx: &mut Ctx, frame: &'a [u8], network_order: bool) -> Res<'a> {
    let (Some(raw), Some(rest)) = (frame.first_chunk::<4>(), frame.get(4..)) else {
        return Err(truncated("null"));
    };
    let be = u32::from_be_bytes(*raw);
    // Families are small numbers, so of the two readings the smaller is the true one.
    let family = if network_order { be } else { be.min(u32::from_le_bytes(*raw)) };
    match family {
        2 => ip::ipv4(ctx, rest),
        // AF_INET6 on Linux, Windows (Npcap loopback), NetBSD/OpenBSD, FreeBSD, macOS.
        10 | 23 | 24 | 28 | 30 => ip::ipv6(ctx, rest),
        _ => Ok(Decoded::Skipped(Skip::NotIp)),
    }
}
