//! Linux-only link layers: cooked captures (SLL, and SLL2 which `-i any` writes since
//! libpcap 1.10) and NFLOG (iptables/nftables `log` targets).

use super::{be16, be32, ethertype, ip, malformed, truncated, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::{Ctx, Decoded, Res, Skip, SllMeta};

const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NETLINK: u16 = 824;
/// Devices with no link header at all: tun, WireGuard.
const ARPHRD_NONE: u16 = 0xFFFE;

/// SLL v1, 16 bytes: packet type, ARPHRD type, address length, address (8), protocol.
pub(super) fn sll<'a>(ctx: &mut Ctx, frame: &'a [u8]) -> Res<'a> {
    let (Some(packet_type), Some(arphrd), Some(proto), Some(rest)) =
        (be16(frame, 0), be16(frame, 2), be16(frame, 14), frame.get(16..))
    else {
        return Err(truncated("sll"));
    };
    ctx.sll = Some(SllMeta { packet_type, ifindex: None });
    cooked(ctx, arphrd, proto, rest)
}

/// SLL2, 20 bytes: protocol, reserved, interface index, ARPHRD type, packet type (u8),
/// address length (u8), address (8).
pub(super) fn sll2<'a>(ctx: &mut Ctx, frame: &'a [u8]) -> Res<'a> {
    let (Some(proto), Some(ifindex), Some(arphrd), Some(&packet_type), Some(rest)) =
        (be16(frame, 0), be32(frame, 4), be16(frame, 8), frame.get(10), frame.get(20..))
    else {
        return Err(truncated("sll2"));
    };
    ctx.sll = Some(SllMeta { packet_type: u16::from(packet_type), ifindex: Some(ifindex) });
    cooked(ctx, arphrd, proto, rest)
}

/// The protocol field is an EtherType (libpcap re-inserts stripped VLAN tags as 0x8100), except
/// on netlink captures; loopback and header-less devices carry IP even when it says otherwise.
fn cooked<'a>(ctx: &mut Ctx, arphrd: u16, proto: u16, rest: &'a [u8]) -> Res<'a> {
    match (arphrd, proto) {
        (ARPHRD_NETLINK, _) => Ok(Decoded::Skipped(Skip::NotIp)),
        (_, ETHERTYPE_IPV4 | ETHERTYPE_IPV6) => ethertype(ctx, proto, rest),
        (ARPHRD_LOOPBACK | ARPHRD_NONE, _) => match rest.first().map(|b| b >> 4) {
            Some(4 | 6) => ip::any_ip(ctx, rest),
            _ => Ok(Decoded::Skipped(Skip::NotIp)),
        },
        _ => ethertype(ctx, proto, rest),
    }
}

const NFULA_PAYLOAD: u16 = 9;
/// Attribute types above this are not NFLOG's: used to guess the TLV byte order.
const NFULA_MAX_PLAUSIBLE: u16 = 64;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// NFLOG: family (u8), version (u8, 0), resource id (u16), then netlink-style TLVs padded to
/// four bytes. TLV length and type are in the capturing host's byte order, which the file
/// does not say, so it is guessed from the first TLV.
pub(super) fn nflog<'a>(ctx: &mut Ctx, frame: &'a [u8]) -> Res<'a> {
    const L: &str = "nflog";
    let (Some(&family), Some(&version), Some(mut rest)) =
        (frame.first(), frame.get(1), frame.get(4..))
    else {
        return Err(truncated(L));
    };
    if version != 0 {
        return Err(malformed(L, format_args!("version {version}")));
    }
    let mut little_endian = None;
    while let Some(tlv) = rest.first_chunk::<4>() {
        let le = *little_endian.get_or_insert_with(|| guess_little_endian(tlv));
        let read = |b: [u8; 2]| {
            if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let [a, b, c, d] = *tlv;
        let len = usize::from(read([a, b]));
        // The top two type bits are netlink's nested / byte-order flags.
        let ty = read([c, d]) & 0x3FFF;
        if len < 4 {
            return Err(malformed(L, format_args!("TLV length {len}")));
        }
        if ty == NFULA_PAYLOAD {
            // A snaplen cut shortens the last TLV; the IP header then reports what is missing.
            let payload = rest.get(4..len).or_else(|| rest.get(4..)).unwrap_or_default();
            return match family {
                AF_INET => ip::ipv4(ctx, payload),
                AF_INET6 => ip::ipv6(ctx, payload),
                _ => Ok(Decoded::Skipped(Skip::NotIp)),
            };
        }
        if len > rest.len() {
            return Err(truncated(L));
        }
        // The last TLV may end the frame without its padding.
        rest = rest.get(len.saturating_add(3) & !3..).unwrap_or_default();
    }
    if rest.is_empty() {
        // Logged without a payload (e.g. `--nflog-size 0`).
        Ok(Decoded::Skipped(Skip::NotIp))
    } else {
        Err(truncated(L))
    }
}

/// Attribute types are small and never 0, so read the wrong way round they are multiples of
/// 256: the type alone tells the order; ties go to little-endian, as most capture hosts are.
fn guess_little_endian(tlv: &[u8; 4]) -> bool {
    let plausible =
        |len: u16, ty: u16| len >= 4 && (1..=NFULA_MAX_PLAUSIBLE).contains(&(ty & 0x3FFF));
    let [a, b, c, d] = *tlv;
    plausible(u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d]))
        || !plausible(u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))
}
