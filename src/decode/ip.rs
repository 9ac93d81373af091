//! IPv4, IPv6 (with extension headers) and TCP.

use std::net::IpAddr;

use etherparse::err::{
    ip_auth::HeaderSliceError as AuthError, ipv6_exts::HeaderSliceError as ExtError,
};
use etherparse::TcpHeaderSlice;
use etherparse::{IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

use super::{be16, malformed, truncated, tunnel};
use super::{Ctx, DecodeError, Decoded, Res, Segment, Skip, TcpFlags, TcpPacket};

const PROTO_ICMP: u8 = 1;
pub(super) const PROTO_IPIP: u8 = 4;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
pub(super) const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;
const PROTO_AH: u8 = 51;
const PROTO_ICMPV6: u8 = 58;

/// The IP-layer facts a TCP segment keeps.
#[derive(Debug, Clone, Copy)]
struct IpInfo {
    src: IpAddr,
    dst: IpAddr,
    ip_id: u32,
    ttl: u8,
}

/// Raw IP link types: the version nibble says which.
pub(super) fn any_ip<'a>(ctx: &mut Ctx, data: &'a [u8]) -> Res<'a> {
    match data.first().map(|b| b >> 4) {
        None => Err(truncated("ip")),
        Some(4) => ipv4(ctx, data),
        Some(6) => ipv6(ctx, data),
        Some(v) => Err(malformed("ip", format_args!("version {v}"))),
    }
}

pub(super) fn ipv4<'a>(ctx: &mut Ctx, data: &'a [u8]) -> Res<'a> {
    const L: &str = "ipv4";
    check_version(data, 4, L)?;
    let pkt = Segment::whole(data);
    pkt.need(20, L)?;
    let hl = usize::from(data.first().map_or(0, |b| b & 0x0F)) * 4;
    if hl < 20 {
        return Err(malformed(L, format_args!("header length {hl} below 20")));
    }
    // Total length 0 is what TSO/GSO captures show: trust the capture then.
    let total = usize::from(be16(data, 2).unwrap_or_default());
    let pkt = if total == 0 { pkt } else { pkt.limit(total) };
    pkt.need(hl, L)?;
    let h = Ipv4HeaderSlice::from_slice(data).map_err(|_| truncated(L))?;
    if h.is_fragmenting_payload() {
        return Ok(Decoded::Skipped(Skip::IpFragment));
    }
    let info = IpInfo {
        src: IpAddr::V4(h.source_addr()),
        dst: IpAddr::V4(h.destination_addr()),
        ip_id: u32::from(h.identification()),
        ttl: h.ttl(),
    };
    let mut proto = h.protocol().0;
    let mut body = pkt.skip(hl);
    // IPv6 walks past AH as an extension header; do the same here so both agree.
    if proto == PROTO_AH {
        let ah = IpAuthHeaderSlice::from_slice(body.bytes).map_err(|e| match e {
            AuthError::Len(_) if body.capture_cut() => truncated("ah"),
            e => malformed("ah", e),
        })?;
        proto = ah.next_header().0;
        body = body.skip(ah.slice().len());
    }
    transport(ctx, info, proto, body)
}

pub(super) fn ipv6<'a>(ctx: &mut Ctx, data: &'a [u8]) -> Res<'a> {
    const L: &str = "ipv6";
    check_version(data, 6, L)?;
    let pkt = Segment::whole(data);
    pkt.need(40, L)?;
    let h = Ipv6HeaderSlice::from_slice(data).map_err(|_| truncated(L))?;
    // Payload length 0 means a jumbogram or a TSO/GSO capture: trust the capture then.
    let plen = usize::from(h.payload_length());
    let pkt = if plen == 0 { pkt } else { pkt.limit(40 + plen) };
    let body = pkt.skip(40);
    // The lax walk keeps what it parsed before an error, so a fragment header seen before a
    // garbled header (a non-first fragment's data is not a header) still reads as a fragment.
    let (exts, next, _, err) = Ipv6ExtensionsSlice::from_slice_lax(h.next_header(), body.bytes);
    if exts.is_fragmenting_payload() {
        return Ok(Decoded::Skipped(Skip::IpFragment));
    }
    if let Some((e, _)) = err {
        return Err(match e {
            ExtError::Len(_) if body.capture_cut() => truncated(L),
            e => malformed(L, e),
        });
    }
    let info = IpInfo {
        src: IpAddr::V6(h.source_addr()),
        dst: IpAddr::V6(h.destination_addr()),
        ip_id: h.flow_label().value(),
        ttl: h.hop_limit(),
    };
    transport(ctx, info, next.0, body.skip(exts.slice().len()))
}

fn check_version(data: &[u8], want: u8, layer: &'static str) -> Result<(), DecodeError> {
    match data.first().map(|b| b >> 4) {
        None => Err(truncated(layer)),
        Some(v) if v == want => Ok(()),
        Some(v) => Err(malformed(layer, format_args!("version {v}"))),
    }
}

fn transport<'a>(ctx: &mut Ctx, ip: IpInfo, proto: u8, body: Segment<'a>) -> Res<'a> {
    match proto {
        PROTO_TCP => tcp(ctx, ip, body),
        PROTO_UDP => tunnel::udp(ctx, body),
        PROTO_ICMP | PROTO_ICMPV6 => Ok(Decoded::Skipped(Skip::Icmp)),
        PROTO_GRE if ctx.cfg.gre => tunnel::gre(ctx, body),
        PROTO_IPIP | PROTO_IPV6 if ctx.cfg.ip_in_ip => tunnel::ip_in_ip(ctx, proto, body),
        other => Ok(Decoded::Skipped(Skip::OtherTransport(other))),
    }
}

fn tcp<'a>(ctx: &Ctx, ip: IpInfo, seg: Segment<'a>) -> Res<'a> {
    const L: &str = "tcp";
    seg.need(20, L)?;
    let [off, flags] = be16(seg.bytes, 12).ok_or(truncated(L))?.to_be_bytes();
    let hl = usize::from(off >> 4) * 4;
    if hl < 20 {
        return Err(malformed(L, format_args!("data offset {} below 5", off >> 4)));
    }
    seg.need(hl, L)?;
    let h = TcpHeaderSlice::from_slice(seg.bytes).map_err(|e| malformed(L, e))?;
    let payload = seg.bytes.get(hl..).ok_or(truncated(L))?;
    Ok(Decoded::Tcp(TcpPacket {
        src: ip.src,
        dst: ip.dst,
        src_port: h.source_port(),
        dst_port: h.destination_port(),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        flags: TcpFlags(flags),
        window: h.window_size(),
        payload,
        payload_missing: u32::try_from(seg.missing()).unwrap_or(u32::MAX),
        bad_options: !super::tcp_options_parse(seg.bytes.get(20..hl).unwrap_or_default()),
        ip_id: ip.ip_id,
        ttl: ip.ttl,
        sll: ctx.sll,
        tunnel: ctx.tunnel,
        vlan: ctx.vlan,
    }))
}
