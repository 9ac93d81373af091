//! Overlay and mirror encapsulations: VXLAN and Geneve over UDP, GRE (Ethernet, IP, ERSPAN
//! II/III) and IP-in-IP. Each opens into the Ethernet or IP decoder again, at most
//! [`super::MAX_TUNNEL_DEPTH`] times.

use super::ip::{self, PROTO_IPIP};
use super::{be16, be32, ethernet, malformed, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_TEB};
use super::{truncated, DecodeError};
use super::{Ctx, Decoded, Fit, Res, Segment, Skip, Tunnel};

const SKIP_UDP: Res<'static> = Ok(Decoded::Skipped(Skip::Udp));
const GRE_NOT_OPENED: Res<'static> = Ok(Decoded::Skipped(Skip::OtherTransport(47)));

pub(super) fn udp<'a>(ctx: &mut Ctx, seg: Segment<'a>) -> Res<'a> {
    seg.need(8, "udp")?;
    let (Some(sport), Some(dport), Some(len)) =
        (be16(seg.bytes, 0), be16(seg.bytes, 2), be16(seg.bytes, 4))
    else {
        return Err(truncated("udp"));
    };
    // Length 0 appears with GSO and IPv6 jumbograms: the IP length rules then.
    let dgram = match usize::from(len) {
        0 => seg,
        n if n >= 8 => seg.limit(n),
        _ => return SKIP_UDP,
    };
    let body = dgram.skip(8);
    let on = |ports: &[u16]| ports.contains(&sport) || ports.contains(&dport);
    if on(&ctx.cfg.vxlan_ports) {
        vxlan(ctx, body)
    } else if on(&ctx.cfg.geneve_ports) {
        geneve(ctx, body)
    } else if on(&ctx.cfg.gtp_ports) {
        gtp_u(ctx, body)
    } else {
        SKIP_UDP
    }
}

/// Checks a tunnel header of `n` bytes fits: a datagram too short for it is just UDP, a capture
/// too short is a truncation.
fn tunnel_fits(body: &Segment, n: usize, layer: &'static str) -> Result<bool, DecodeError> {
    match body.fit(n) {
        Fit::Yes => Ok(true),
        Fit::CaptureCut => Err(truncated(layer)),
        Fit::Overrun(_) => Ok(false),
    }
}

/// RFC 7348: flags (I bit 0x08 says the VNI is valid), 3 reserved, VNI (24 bits), 1 reserved.
fn vxlan<'a>(ctx: &mut Ctx, body: Segment<'a>) -> Res<'a> {
    if !tunnel_fits(&body, 8, "vxlan")? {
        return SKIP_UDP;
    }
    let (Some(&flags), Some(word)) = (body.bytes.first(), be32(body.bytes, 4)) else {
        return Err(truncated("vxlan"));
    };
    if flags & 0x08 == 0 {
        return SKIP_UDP;
    }
    ctx.enter(Tunnel::Vxlan { vni: word >> 8 })?;
    ethernet(ctx, body.skip(8).bytes)
}

/// RFC 8926: version (2 bits) and option length (6 bits, in 4-byte words), flags, protocol
/// type, VNI (24 bits), reserved, then the options.
fn geneve<'a>(ctx: &mut Ctx, body: Segment<'a>) -> Res<'a> {
    if !tunnel_fits(&body, 8, "geneve")? {
        return SKIP_UDP;
    }
    let (Some(&b0), Some(proto), Some(word)) =
        (body.bytes.first(), be16(body.bytes, 2), be32(body.bytes, 4))
    else {
        return Err(truncated("geneve"));
    };
    let inner_is_ip = matches!(proto, ETHERTYPE_IPV4 | ETHERTYPE_IPV6);
    if b0 >> 6 != 0 || !(proto == ETHERTYPE_TEB || inner_is_ip) {
        return SKIP_UDP;
    }
    let hl = 8 + usize::from(b0 & 0x3F) * 4;
    if !tunnel_fits(&body, hl, "geneve")? {
        return SKIP_UDP;
    }
    ctx.enter(Tunnel::Geneve { vni: word >> 8 })?;
    let inner = body.skip(hl).bytes;
    match proto {
        ETHERTYPE_IPV4 => ip::ipv4(ctx, inner),
        ETHERTYPE_IPV6 => ip::ipv6(ctx, inner),
        _ => ethernet(ctx, inner),
    }
}

const GTP_G_PDU: u8 = 0xFF;

/// 3GPP TS 29.281 GTPv1-U (mobile core captures): flags (version 1, PT 1, E/S/PN), message type
/// (0xFF carries a user packet), length, TEID; then sequence/N-PDU/next-extension when any of
/// E, S, PN is set, and a chain of extension headers (length in 4-byte words).
fn gtp_u<'a>(ctx: &mut Ctx, body: Segment<'a>) -> Res<'a> {
    if !tunnel_fits(&body, 8, "gtp")? {
        return SKIP_UDP;
    }
    let (Some(&flags), Some(&kind), Some(teid)) =
        (body.bytes.first(), body.bytes.get(1), be32(body.bytes, 4))
    else {
        return Err(truncated("gtp"));
    };
    if flags >> 5 != 1 || flags & 0x10 == 0 || kind != GTP_G_PDU {
        return SKIP_UDP;
    }
    let mut hl = 8;
    if flags & 0x07 != 0 {
        if !tunnel_fits(&body, 12, "gtp")? {
            return SKIP_UDP;
        }
        hl = 12;
        let mut next = body.bytes.get(11).copied().unwrap_or(0);
        // Each extension: length (words), contents, next type; bounded by the header's size.
        while next != 0 {
            let words = usize::from(body.bytes.get(hl).copied().unwrap_or(0));
            if words == 0 || !tunnel_fits(&body, hl + words * 4, "gtp")? {
                return SKIP_UDP;
            }
            hl += words * 4;
            next = body.bytes.get(hl - 1).copied().unwrap_or(0);
        }
    }
    ctx.enter(Tunnel::Gtp { teid })?;
    ip::any_ip(ctx, body.skip(hl).bytes)
}

const GRE_CSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQ: u16 = 0x1000;
const GRE_VERSION: u16 = 0x0007;
const ERSPAN_II: u16 = 0x88BE;
const ERSPAN_III: u16 = 0x22EB;

/// RFC 2784/2890 GRE: flags and version, protocol type, then checksum, key and sequence words
/// as the C, K and S bits say.
pub(super) fn gre<'a>(ctx: &mut Ctx, seg: Segment<'a>) -> Res<'a> {
    const L: &str = "gre";
    seg.need(4, L)?;
    let (Some(fl), Some(proto)) = (be16(seg.bytes, 0), be16(seg.bytes, 2)) else {
        return Err(truncated(L));
    };
    // Version 1 is PPTP's enhanced GRE (PPP inside); RFC 1701 source routing is obsolete.
    if fl & (GRE_VERSION | GRE_ROUTING) != 0 {
        return GRE_NOT_OPENED;
    }
    let words = [GRE_CSUM, GRE_KEY, GRE_SEQ].iter().filter(|&&bit| fl & bit != 0).count();
    let hl = 4 + 4 * words;
    seg.need(hl, L)?;
    let inner = seg.skip(hl);
    match proto {
        ETHERTYPE_TEB => {
            ctx.enter(Tunnel::Gre)?;
            ethernet(ctx, inner.bytes)
        }
        ETHERTYPE_IPV4 => {
            ctx.enter(Tunnel::Gre)?;
            ip::ipv4(ctx, inner.bytes)
        }
        ETHERTYPE_IPV6 => {
            ctx.enter(Tunnel::Gre)?;
            ip::ipv6(ctx, inner.bytes)
        }
        // Type I ERSPAN (no sequence number, no ERSPAN header) is not opened.
        ERSPAN_II if fl & GRE_SEQ != 0 => erspan(ctx, inner, 1),
        ERSPAN_III => erspan(ctx, inner, 2),
        _ => GRE_NOT_OPENED,
    }
}

/// ERSPAN type II (version 1, 8-byte header) and type III (version 2, 12 bytes plus an
/// optional 8-byte platform subheader). Both start with version (4 bits), VLAN (12), then
/// COS/flags (6 bits) and the session id (10).
fn erspan<'a>(ctx: &mut Ctx, seg: Segment<'a>, version: u8) -> Res<'a> {
    const L: &str = "erspan";
    seg.need(4, L)?;
    let (Some(w0), Some(w1)) = (be16(seg.bytes, 0), be16(seg.bytes, 2)) else {
        return Err(truncated(L));
    };
    let found = (w0 >> 12) as u8;
    if found != version {
        return Err(malformed(L, format_args!("version {found}, GRE type says {version}")));
    }
    let session = w1 & 0x03FF;
    if version == 1 {
        seg.need(8, L)?;
        ctx.enter(Tunnel::Erspan { session })?;
        return ethernet(ctx, seg.skip(8).bytes);
    }
    seg.need(12, L)?;
    let w5 = be16(seg.bytes, 10).ok_or(truncated(L))?;
    let hl = if w5 & 0x0001 != 0 { 20 } else { 12 };
    seg.need(hl, L)?;
    ctx.enter(Tunnel::Erspan { session })?;
    let inner = seg.skip(hl).bytes;
    // Frame type: 0 Ethernet, 2 IP.
    match (w5 >> 10) & 0x1F {
        0 => ethernet(ctx, inner),
        2 => ip::any_ip(ctx, inner),
        _ => Ok(Decoded::Skipped(Skip::NotIp)),
    }
}

pub(super) fn ip_in_ip<'a>(ctx: &mut Ctx, proto: u8, seg: Segment<'a>) -> Res<'a> {
    ctx.enter(Tunnel::IpInIp)?;
    if proto == PROTO_IPIP {
        ip::ipv4(ctx, seg.bytes)
    } else {
        ip::ipv6(ctx, seg.bytes)
    }
}
