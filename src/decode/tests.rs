//! Link layers, IP and TCP. Tunnels are in `tests_tunnel.rs`. Frames are built with etherparse's
//! PacketBuilder where it can, by hand where it cannot.

use super::*;
use etherparse::{PacketBuilder, TcpOptionElement, VlanId};
use std::net::{Ipv4Addr, Ipv6Addr};

pub(super) const SRC4: [u8; 4] = [10, 1, 0, 1];
pub(super) const DST4: [u8; 4] = [10, 2, 0, 2];
const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub(super) const PAYLOAD: &[u8] = b"\x16\x03\x01\x00\x05hello";
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub(super) fn cfg() -> DecodeConfig {
    DecodeConfig::default()
}

/// Raw IPv4/TCP with options, IP id 0x1234 and TTL 61.
pub(super) fn v4_tcp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(SRC4, DST4, 61)
        .tcp(40000, 443, 1000, 502)
        .ack(2000)
        .psh()
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap()
        .write(&mut v, payload)
        .unwrap();
    v[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    v
}

/// Raw IPv6/TCP with flow label 0xABCDE and hop limit 63.
pub(super) fn v6_tcp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(SRC6, DST6, 63)
        .tcp(40000, 443, 1000, 502)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v[1] = (v[1] & 0xF0) | 0x0A;
    v[2..4].copy_from_slice(&[0xBC, 0xDE]);
    v
}

pub(super) fn eth(ty: u16, body: &[u8]) -> Vec<u8> {
    [&MAC_B[..], &MAC_A, &ty.to_be_bytes(), body].concat()
}

pub(super) fn run(link: LinkType, frame: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode(link, frame, &cfg())
}

#[track_caller]
pub(super) fn tcp(r: Result<Decoded<'_>, DecodeError>) -> TcpPacket<'_> {
    match r {
        Ok(Decoded::Tcp(t)) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn skipped(r: Result<Decoded<'_>, DecodeError>) -> Skip {
    match r {
        Ok(Decoded::Skipped(s)) => s,
        other => panic!("expected a skip, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn err_layer(r: Result<Decoded<'_>, DecodeError>) -> (&'static str, bool) {
    match r {
        Err(DecodeError::Truncated { layer }) => (layer, true),
        Err(DecodeError::Malformed { layer, .. }) => (layer, false),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Every strict prefix of a valid frame gives `Truncated`, or the same segment with a shorter
/// captured payload and the rest counted as missing.
#[track_caller]
pub(super) fn check_prefixes(link: LinkType, frame: &[u8]) {
    let full = tcp(run(link, frame));
    let total = full.payload.len() + full.payload_missing as usize;
    for n in 0..frame.len() {
        match run(link, &frame[..n]) {
            Err(DecodeError::Truncated { .. }) => {}
            Ok(Decoded::Tcp(t)) => {
                assert!(full.payload.starts_with(t.payload), "prefix {n}");
                assert_eq!(t.payload.len() + t.payload_missing as usize, total, "prefix {n}");
                assert_eq!((t.seq, t.src, t.tunnel), (full.seq, full.src, full.tunnel));
            }
            other => panic!("prefix {n} of {link:?}: {other:?}"),
        }
    }
}

#[test]
fn ethernet_ipv4_tcp_fields() {
    let frame = eth(0x0800, &v4_tcp(PAYLOAD));
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!(t.src, IpAddr::V4(Ipv4Addr::from(SRC4)));
    assert_eq!(t.dst, IpAddr::V4(Ipv4Addr::from(DST4)));
    assert_eq!((t.src_port, t.dst_port, t.seq, t.ack, t.window), (40000, 443, 1000, 2000, 502));
    assert_eq!(t.flags, TcpFlags(TcpFlags::ACK | TcpFlags::PSH));
    assert!(t.flags.has(TcpFlags::PSH) && !t.flags.has(TcpFlags::SYN));
    assert_eq!((t.payload, t.payload_missing), (PAYLOAD, 0));
    assert_eq!((t.ip_id, t.ttl), (0x1234, 61));
    assert_eq!((t.sll, t.tunnel, t.vlan), (None, None, None));
}

#[test]
fn ethernet_ipv6_tcp_fields() {
    let frame = eth(0x86DD, &v6_tcp(PAYLOAD));
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!(t.src, IpAddr::V6(Ipv6Addr::from(SRC6)));
    assert_eq!(t.dst, IpAddr::V6(Ipv6Addr::from(DST6)));
    assert_eq!(t.flags, TcpFlags(TcpFlags::SYN));
    assert_eq!((t.payload, t.ip_id, t.ttl), (PAYLOAD, 0xABCDE, 63));
}

#[test]
fn vlan_single_and_builder_qinq() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4(SRC4, DST4, 64)
        .tcp(1, 2, 3, 4)
        .write(&mut frame, PAYLOAD)
        .unwrap();
    assert_eq!(tcp(run(LinkType::ETHERNET, &frame)).vlan, Some(100));

    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(VlanId::try_new(10).unwrap(), VlanId::try_new(20).unwrap())
        .ipv6(SRC6, DST6, 64)
        .tcp(1, 2, 3, 4)
        .write(&mut frame, PAYLOAD)
        .unwrap();
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!((t.vlan, t.payload), (Some(20), PAYLOAD));
}

#[test]
fn vlan_tpids_qinq_and_priority_tag() {
    let ip = v4_tcp(PAYLOAD);
    for outer in [0x88A8u16, 0x9100, 0x8100] {
        let tags = [0x0Cu8, 0x01, 0x81, 0x00, 0xE0, 0x2A, 0x08, 0x00]; // 3073 then 42 (PCP 7)
        let frame = eth(outer, &[&tags[..], &ip].concat());
        assert_eq!(tcp(run(LinkType::ETHERNET, &frame)).vlan, Some(42), "{outer:#x}");
    }
    // VID 0 only carries a priority: not a VLAN, and it does not hide an outer one.
    let frame = eth(0x8100, &[&[0xE0u8, 0x00, 0x08, 0x00][..], &ip].concat());
    assert_eq!(tcp(run(LinkType::ETHERNET, &frame)).vlan, None);
    let frame = eth(0x88A8, &[&[0x00u8, 0x05, 0x81, 0x00, 0, 0, 0x08, 0x00][..], &ip].concat());
    assert_eq!(tcp(run(LinkType::ETHERNET, &frame)).vlan, Some(5));
    // A tag cut short.
    assert_eq!(err_layer(run(LinkType::ETHERNET, &eth(0x8100, &[0, 1, 8]))), ("vlan", true));
}

#[test]
fn not_ip_ethertypes() {
    for ty in [0x0806u16, 0x88CC, 0x8847, 0x0040] {
        assert_eq!(skipped(run(LinkType::ETHERNET, &eth(ty, &[0; 40]))), Skip::NotIp);
    }
}

#[test]
fn ethernet_padding_excluded_by_ip_length() {
    for ip in [v4_tcp(b"hi"), v6_tcp(b"hi")] {
        let ty = if ip[0] >> 4 == 4 { 0x0800 } else { 0x86DD };
        let mut frame = eth(ty, &ip);
        frame.resize(frame.len().max(60) + 4, 0xEE); // minimum size, plus an FCS
        let t = tcp(run(LinkType::ETHERNET, &frame));
        assert_eq!((t.payload, t.payload_missing), (&b"hi"[..], 0));
    }
}

#[test]
fn snaplen_cut_payload_is_counted_missing() {
    for ip in [v4_tcp(PAYLOAD), v6_tcp(PAYLOAD)] {
        let ty = if ip[0] >> 4 == 4 { 0x0800 } else { 0x86DD };
        let frame = eth(ty, &ip);
        let t = tcp(run(LinkType::ETHERNET, &frame[..frame.len() - 4]));
        assert_eq!((t.payload, t.payload_missing), (&PAYLOAD[..PAYLOAD.len() - 4], 4));
        let t = tcp(run(LinkType::ETHERNET, &frame[..frame.len() - PAYLOAD.len()]));
        assert_eq!((t.payload.len(), t.payload_missing), (0, PAYLOAD.len() as u32));
    }
}

#[test]
fn every_prefix_truncates_cleanly() {
    check_prefixes(LinkType::ETHERNET, &eth(0x0800, &v4_tcp(PAYLOAD)));
    check_prefixes(LinkType::ETHERNET, &eth(0x86DD, &v6_exts(&[0, 43, 60, 44], &atomic_frag())));
    check_prefixes(LinkType::RAW, &v4_tcp(PAYLOAD));
    check_prefixes(LinkType::LINUX_SLL, &sll(4, 1, 0x0800, &v4_tcp(PAYLOAD)));
    check_prefixes(LinkType::LINUX_SLL2, &sll2(0x86DD, 7, 1, 0, &v6_tcp(PAYLOAD)));
    check_prefixes(LinkType::NULL, &[&2u32.to_le_bytes()[..], &v4_tcp(PAYLOAD)].concat());
}

#[test]
fn cut_inside_tcp_header_is_truncated_tcp() {
    let frame = eth(0x0800, &v4_tcp(PAYLOAD));
    for cut in [14 + 20, 14 + 20 + 10, 14 + 20 + 19, 14 + 20 + 25] {
        assert_eq!(err_layer(run(LinkType::ETHERNET, &frame[..cut])), ("tcp", true), "{cut}");
    }
    assert_eq!(err_layer(run(LinkType::ETHERNET, &frame[..14 + 12])), ("ipv4", true));
    assert_eq!(err_layer(run(LinkType::ETHERNET, &frame[..13])), ("ethernet", true));
}

#[test]
fn tcp_data_offset_lies_are_malformed() {
    let mut ip = v4_tcp(PAYLOAD);
    ip[20 + 12] = 0x40; // data offset 4
    assert_eq!(err_layer(run(LinkType::RAW, &ip)), ("tcp", false));
    // Data offset 15 (60 bytes) but the IP total length leaves 32 + payload: a lie, not a cut.
    let mut ip = v4_tcp(b"");
    ip[20 + 12] = 0xF0;
    assert_eq!(err_layer(run(LinkType::RAW, &ip)), ("tcp", false));
    // The same frame with a big enough IP total length is only cut by the capture.
    ip[2..4].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(err_layer(run(LinkType::RAW, &ip)), ("tcp", true));
    // IP total length too short for even a TCP header.
    let mut ip = v4_tcp(PAYLOAD);
    ip[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(err_layer(run(LinkType::RAW, &ip)), ("tcp", false));
}

#[test]
fn ipv4_total_length_lies() {
    let ip = v4_tcp(PAYLOAD);
    // Longer than the capture: as a snaplen cut.
    let mut long = ip.clone();
    long[2..4].copy_from_slice(&((ip.len() + 100) as u16).to_be_bytes());
    let t = tcp(run(LinkType::RAW, &long));
    assert_eq!((t.payload, t.payload_missing), (PAYLOAD, 100));
    // Zero, as TSO/GSO captures write: the capture is the length.
    let mut tso = ip.clone();
    tso[2..4].copy_from_slice(&[0, 0]);
    let t = tcp(run(LinkType::RAW, &tso));
    assert_eq!((t.payload, t.payload_missing), (PAYLOAD, 0));
    // Shorter than the header itself.
    let mut short = ip.clone();
    short[2..4].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(err_layer(run(LinkType::RAW, &short)), ("ipv4", false));
    // Header length below 20, or past the total length.
    let mut ihl = ip.clone();
    ihl[0] = 0x44;
    assert_eq!(err_layer(run(LinkType::RAW, &ihl)), ("ipv4", false));
    let mut ihl = ip.clone();
    ihl[0] = 0x4F;
    ihl[2..4].copy_from_slice(&40u16.to_be_bytes());
    assert_eq!(err_layer(run(LinkType::RAW, &ihl)), ("ipv4", false));
}

#[test]
fn ipv4_options_are_skipped() {
    let ip = v4_tcp(PAYLOAD);
    let opts = [0x94u8, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00]; // router alert, NOPs, EOL
    let mut with = [&ip[..20], &opts[..], &ip[20..]].concat();
    with[0] = 0x47;
    with[2..4].copy_from_slice(&((ip.len() + 8) as u16).to_be_bytes());
    let t = tcp(run(LinkType::RAW, &with));
    assert_eq!((t.dst_port, t.payload), (443, PAYLOAD));
    check_prefixes(LinkType::RAW, &with);
}

#[test]
fn ipv4_fragments_are_skipped() {
    let ip = v4_tcp(PAYLOAD);
    for (flags_off, want_frag) in [(0x2000u16, true), (0x0001, true), (0x4000, false), (0, false)] {
        let mut f = ip.clone();
        f[6..8].copy_from_slice(&flags_off.to_be_bytes());
        match run(LinkType::RAW, &f) {
            Ok(Decoded::Skipped(Skip::IpFragment)) => assert!(want_frag, "{flags_off:#x}"),
            Ok(Decoded::Tcp(_)) => assert!(!want_frag, "{flags_off:#x}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn ipv4_auth_header_is_walked() {
    let ip = v4_tcp(PAYLOAD);
    let ah = [6u8, 1, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1]; // next TCP, 12 bytes
    let mut with = [&ip[..20], &ah[..], &ip[20..]].concat();
    with[9] = 51;
    with[2..4].copy_from_slice(&((ip.len() + 12) as u16).to_be_bytes());
    assert_eq!(tcp(run(LinkType::RAW, &with)).payload, PAYLOAD);
    assert_eq!(err_layer(run(LinkType::RAW, &with[..26])), ("ah", true));
}

/// IPv6 with the given extension headers (8 bytes each) in front of the TCP segment of
/// [`v6_tcp`]; `frag` is the fragment header's offset/flags word.
fn v6_exts(kinds: &[u8], frag: &[u8; 2]) -> Vec<u8> {
    let base = v6_tcp(PAYLOAD);
    let mut exts = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        let next = kinds.get(i + 1).copied().unwrap_or(6);
        match kind {
            44 => exts.extend_from_slice(&[next, 0, frag[0], frag[1], 0, 0, 0, 7]),
            43 => exts.extend_from_slice(&[next, 0, 4, 0, 0, 0, 0, 0]), // SRH type 4, 0 left
            _ => exts.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]),  // PadN
        }
    }
    let mut v = [&base[..40], &exts, &base[40..]].concat();
    v[6] = kinds.first().copied().unwrap_or(6);
    let plen = (base.len() - 40 + exts.len()) as u16;
    v[4..6].copy_from_slice(&plen.to_be_bytes());
    v
}

fn atomic_frag() -> [u8; 2] {
    [0, 0]
}

#[test]
fn ipv6_extension_headers() {
    let ip = v6_exts(&[0, 43, 60], &atomic_frag());
    let t = tcp(run(LinkType::RAW, &ip));
    assert_eq!((t.dst_port, t.payload, t.ip_id), (443, PAYLOAD, 0xABCDE));
    // Hop-by-hop anywhere but first is malformed.
    assert_eq!(err_layer(run(LinkType::RAW, &v6_exts(&[60, 0], &atomic_frag()))), ("ipv6", false));
    // An extension header running past the payload length lies; past the capture is a cut.
    let mut short = ip.clone();
    short[4..6].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(err_layer(run(LinkType::RAW, &short)), ("ipv6", false));
    assert_eq!(err_layer(run(LinkType::RAW, &ip[..52])), ("ipv6", true));
}

#[test]
fn ipv6_atomic_fragment_is_not_a_fragment() {
    let atomic = v6_exts(&[44], &atomic_frag());
    let t = tcp(run(LinkType::RAW, &atomic));
    assert_eq!(t.payload, PAYLOAD);
    for word in [[0u8, 1], [0, 8], [0x12, 0x30]] {
        let ip = v6_exts(&[0, 44], &word);
        assert_eq!(skipped(run(LinkType::RAW, &ip)), Skip::IpFragment, "{word:?}");
    }
    // A later fragment whose data does not parse as the header its next-header names.
    let mut ip = v6_exts(&[44], &[0, 8]);
    ip[40] = 60;
    ip[48..52].copy_from_slice(&[6, 200, 0, 0]);
    assert_eq!(skipped(run(LinkType::RAW, &ip)), Skip::IpFragment);
}

#[test]
fn ipv6_payload_length_lies() {
    let ip = v6_tcp(PAYLOAD);
    let mut long = ip.clone();
    long[4..6].copy_from_slice(&((ip.len() - 40 + 50) as u16).to_be_bytes());
    assert_eq!(tcp(run(LinkType::RAW, &long)).payload_missing, 50);
    let mut zero = ip.clone();
    zero[4..6].copy_from_slice(&[0, 0]);
    let t = tcp(run(LinkType::RAW, &zero));
    assert_eq!((t.payload, t.payload_missing), (PAYLOAD, 0));
}

#[test]
fn other_transports_are_skipped() {
    let mut udp = Vec::new();
    PacketBuilder::ipv4(SRC4, DST4, 9).udp(53, 53).write(&mut udp, b"x").unwrap();
    assert_eq!(skipped(run(LinkType::RAW, &udp)), Skip::Udp);
    let mut icmp = Vec::new();
    PacketBuilder::ipv4(SRC4, DST4, 9).icmpv4_echo_request(1, 1).write(&mut icmp, b"x").unwrap();
    assert_eq!(skipped(run(LinkType::RAW, &icmp)), Skip::Icmp);
    let mut icmp6 = Vec::new();
    PacketBuilder::ipv6(SRC6, DST6, 9).icmpv6_echo_request(1, 1).write(&mut icmp6, b"x").unwrap();
    assert_eq!(skipped(run(LinkType::RAW, &icmp6)), Skip::Icmp);
    for proto in [132u8, 50, 89] {
        let mut sctp = Vec::new();
        PacketBuilder::ipv4(SRC4, DST4, 9).write(&mut sctp, proto.into(), &[0; 12]).unwrap();
        assert_eq!(skipped(run(LinkType::RAW, &sctp)), Skip::OtherTransport(proto));
    }
    let mut none = Vec::new();
    PacketBuilder::ipv6(SRC6, DST6, 9).write(&mut none, 59.into(), &[]).unwrap();
    assert_eq!(skipped(run(LinkType::RAW, &none)), Skip::OtherTransport(59));
}

#[test]
fn raw_ip_link_types() {
    for link in [LinkType::RAW, LinkType::RAW_DLT12, LinkType::RAW_DLT14] {
        assert_eq!(tcp(run(link, &v4_tcp(PAYLOAD))).payload, PAYLOAD);
        assert_eq!(tcp(run(link, &v6_tcp(PAYLOAD))).payload, PAYLOAD);
        assert_eq!(err_layer(run(link, &[0x50; 40])), ("ip", false));
        assert_eq!(err_layer(run(link, &[])), ("ip", true));
    }
    assert_eq!(tcp(run(LinkType::IPV4, &v4_tcp(PAYLOAD))).ttl, 61);
    assert_eq!(tcp(run(LinkType::IPV6, &v6_tcp(PAYLOAD))).ttl, 63);
    assert_eq!(err_layer(run(LinkType::IPV4, &v6_tcp(PAYLOAD))), ("ipv4", false));
    assert_eq!(err_layer(run(LinkType::IPV6, &v4_tcp(PAYLOAD))), ("ipv6", false));
}

#[test]
fn bsd_null_both_byte_orders_and_loop() {
    let v4 = v4_tcp(PAYLOAD);
    let v6 = v6_tcp(PAYLOAD);
    for fam in [2u32, 10, 23, 24, 28, 30] {
        let ip = if fam == 2 { &v4 } else { &v6 };
        for bytes in [fam.to_le_bytes(), fam.to_be_bytes()] {
            let frame = [&bytes[..], ip].concat();
            assert_eq!(tcp(run(LinkType::NULL, &frame)).payload, PAYLOAD, "{fam} {bytes:?}");
        }
        let frame = [&fam.to_be_bytes()[..], ip].concat();
        assert_eq!(tcp(run(LinkType::LOOP, &frame)).payload, PAYLOAD, "{fam}");
    }
    // LOOP is always network order: a little-endian 2 is no family.
    let frame = [&2u32.to_le_bytes()[..], &v4].concat();
    assert_eq!(skipped(run(LinkType::LOOP, &frame)), Skip::NotIp);
    let frame = [&7u32.to_le_bytes()[..], &v4].concat();
    assert_eq!(skipped(run(LinkType::NULL, &frame)), Skip::NotIp);
    assert_eq!(err_layer(run(LinkType::NULL, &[2, 0, 0])), ("null", true));
}

fn sll(packet_type: u16, arphrd: u16, proto: u16, body: &[u8]) -> Vec<u8> {
    let head = [&packet_type.to_be_bytes()[..], &arphrd.to_be_bytes(), &[0, 6], &MAC_A, &[0, 0]];
    [&head.concat()[..], &proto.to_be_bytes(), body].concat()
}

fn sll2(proto: u16, ifindex: u32, arphrd: u16, packet_type: u8, body: &[u8]) -> Vec<u8> {
    let head = [&proto.to_be_bytes()[..], &[0, 0], &ifindex.to_be_bytes(), &arphrd.to_be_bytes()];
    [&head.concat()[..], &[packet_type, 6], &MAC_A, &[0, 0], body].concat()
}

#[test]
fn linux_sll() {
    let frame = sll(4, 1, 0x0800, &v4_tcp(PAYLOAD));
    let t = tcp(run(LinkType::LINUX_SLL, &frame));
    assert_eq!(t.sll, Some(SllMeta { packet_type: 4, ifindex: None }));
    assert_eq!(t.payload, PAYLOAD);
    // Loopback carries IP whatever the protocol field says.
    let frame = sll(0, 772, 0, &v6_tcp(PAYLOAD));
    let t = tcp(run(LinkType::LINUX_SLL, &frame));
    assert_eq!(t.ip_id, 0xABCDE);
    // libpcap re-inserts a stripped VLAN tag.
    let tagged = [&[0u8, 9, 0x08, 0x00][..], &v4_tcp(PAYLOAD)].concat();
    assert_eq!(tcp(run(LinkType::LINUX_SLL, &sll(0, 1, 0x8100, &tagged))).vlan, Some(9));
    assert_eq!(skipped(run(LinkType::LINUX_SLL, &sll(0, 1, 0x0806, &[0; 28]))), Skip::NotIp);
    assert_eq!(skipped(run(LinkType::LINUX_SLL, &sll(0, 824, 0x0800, &[0x45; 28]))), Skip::NotIp);
    assert_eq!(skipped(run(LinkType::LINUX_SLL, &sll(0, 772, 0, &[0x10; 28]))), Skip::NotIp);
    assert_eq!(err_layer(run(LinkType::LINUX_SLL, &[0; 15])), ("sll", true));
}

#[test]
fn linux_sll2() {
    let frame = sll2(0x0800, 0x0102_0304, 1, 4, &v4_tcp(PAYLOAD));
    let t = tcp(run(LinkType::LINUX_SLL2, &frame));
    assert_eq!(t.sll, Some(SllMeta { packet_type: 4, ifindex: Some(0x0102_0304) }));
    assert_eq!(t.payload, PAYLOAD);
    // WireGuard/tun interfaces have no link header (ARPHRD_NONE).
    let frame = sll2(0, 3, 0xFFFE, 0, &v6_tcp(PAYLOAD));
    let t = tcp(run(LinkType::LINUX_SLL2, &frame));
    assert_eq!(t.sll.and_then(|s| s.ifindex), Some(3));
    assert_eq!(skipped(run(LinkType::LINUX_SLL2, &sll2(0x0806, 3, 1, 0, &[0; 28]))), Skip::NotIp);
    assert_eq!(err_layer(run(LinkType::LINUX_SLL2, &[0; 19])), ("sll2", true));
}

/// NFLOG with a packet-header TLV, a prefix TLV needing padding, then the payload TLV.
fn nflog(family: u8, le: bool, ip: &[u8]) -> Vec<u8> {
    let tlv = |ty: u16, v: &[u8]| {
        let len = (v.len() + 4) as u16;
        let head = if le {
            [len.to_le_bytes(), ty.to_le_bytes()].concat()
        } else {
            [len.to_be_bytes(), ty.to_be_bytes()].concat()
        };
        let mut t = [&head[..], v].concat();
        t.resize(t.len().next_multiple_of(4), 0);
        t
    };
    [vec![family, 0, 0, 1], tlv(1, &[8, 0, 3, 0]), tlv(10, b"drop\0"), tlv(9, ip)].concat()
}

#[test]
fn linux_nflog() {
    for le in [true, false] {
        let frame = nflog(2, le, &v4_tcp(PAYLOAD));
        let t = tcp(run(LinkType::NFLOG, &frame));
        assert_eq!(t.payload, PAYLOAD, "le={le}");
        let frame = nflog(10, le, &v6_tcp(PAYLOAD));
        let t = tcp(run(LinkType::NFLOG, &frame));
        assert_eq!(t.ip_id, 0xABCDE, "le={le}");
    }
    let frame = nflog(2, true, &v4_tcp(PAYLOAD));
    let t = tcp(run(LinkType::NFLOG, &frame[..frame.len() - 2 - 3])); // padding, then 3 bytes
    assert_eq!(t.payload_missing, 3);
    // Every prefix: truncated, a shorter payload, or (cut between TLVs) no payload at all.
    for n in 0..frame.len() {
        match run(LinkType::NFLOG, &frame[..n]) {
            Err(DecodeError::Truncated { .. }) | Ok(Decoded::Skipped(Skip::NotIp)) => {}
            Ok(Decoded::Tcp(t)) => assert!(PAYLOAD.starts_with(t.payload)),
            other => panic!("prefix {n}: {other:?}"),
        }
    }
    let no_payload = &frame[..4 + 8 + 12];
    assert_eq!(skipped(run(LinkType::NFLOG, no_payload)), Skip::NotIp);
    let mut bad = frame.clone();
    bad[1] = 1;
    assert_eq!(err_layer(run(LinkType::NFLOG, &bad)), ("nflog", false));
}

#[test]
fn unsupported_link_type_and_error_text() {
    assert_eq!(run(LinkType(147), &[0; 40]).unwrap_err(), DecodeError::UnsupportedLinkType(147));
    assert_eq!(DecodeError::Truncated { layer: "tcp" }.to_string(), "tcp header truncated");
    let e = run(LinkType::RAW, &[0x50; 40]).unwrap_err();
    assert_eq!(e.to_string(), "malformed ip header: version 5");
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub(super) const ALL_LINKS: [LinkType; 12] = [
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::RAW_DLT12,
    LinkType::RAW_DLT14,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::NFLOG,
    LinkType::LINUX_SLL2,
    LinkType(999),
];

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buf = [0u8; 256];
    for _ in 0..100_000 {
        let len = rng.below(buf.len() + 1);
        for b in buf.iter_mut().take(len) {
            *b = rng.next() as u8;
        }
        for link in ALL_LINKS {
            if let Ok(Decoded::Tcp(t)) = decode(link, &buf[..len], &cfg()) {
                assert!(t.payload.len() <= len);
            }
        }
    }
}

/// The one-step Ethernet/IPv4/TCP path and the layer-by-layer one agree on every frame the
/// first accepts, and it accepts the plain frames it is there for.
#[test]
fn fast_path_agrees_with_the_layered_decoder() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let cfg = DecodeConfig::default();
    let mut accepted = 0;
    for i in 0..20_000 {
        let payload = (next() % 80) as usize;
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12] = 0x08;
        f[14] = 0x45;
        let total = (40 + payload) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[23] = 6;
        f[14 + 20 + 12] = 0x50;
        for b in f.iter_mut().skip(14 + 4).take(2) {
            *b = next() as u8;
        }
        for b in f.iter_mut().skip(14 + 8).take(1) {
            *b = next() as u8;
        }
        for b in f.iter_mut().skip(14 + 12).take(8 + 12) {
            *b = next() as u8;
        }
        // Mostly plain frames; some with one field or the length disturbed.
        match i % 10 {
            0 => {
                let at = (next() % 54) as usize;
                f[at] = next() as u8;
            }
            1 => f.truncate((next() % f.len() as u64) as usize),
            2 => f.extend(std::iter::repeat_n(0, (next() % 20) as usize)),
            3 => {
                let t = (next() % 200) as u16;
                f[16..18].copy_from_slice(&t.to_be_bytes());
            }
            4 => f[14 + 20 + 12] = (next() as u8) & 0xF0,
            5 => f[20] = (next() as u8) & 0x7f,
            _ => {}
        }
        let layered = decode_layers(LinkType::ETHERNET, &f, &cfg);
        if let Some(fast) = ethernet_ipv4_tcp(&f) {
            accepted += 1;
            assert_eq!(layered, Ok(Decoded::Tcp(fast)), "frame {i}: {f:02x?}");
        }
        assert_eq!(decode(LinkType::ETHERNET, &f, &cfg), layered, "frame {i}");
    }
    assert!(accepted > 10_000, "fast path took only {accepted} frames");
}

/// A TCP data offset that lies (found by the malformed-capture corpus) shows as options that
/// do not parse; well-formed options, padding after End, and no options at all are fine.
#[test]
fn tcp_options_that_do_not_parse_are_flagged() {
    use super::tcp_options_parse;
    assert!(tcp_options_parse(&[]));
    assert!(tcp_options_parse(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]), "NOP NOP timestamps");
    assert!(tcp_options_parse(&[2, 4, 5, 0xb4, 0, 0xff, 0xff, 0xff]), "MSS, End, padding");
    assert!(!tcp_options_parse(b"GET /api/items HTTP/1.1\r\n"), "payload read as options");
    assert!(!tcp_options_parse(&[2, 1, 0, 0]), "length below 2");
    assert!(!tcp_options_parse(&[8, 10, 0, 0]), "length past the header");
}
