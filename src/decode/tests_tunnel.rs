//! Tunnels: VXLAN, Geneve, GRE, ERSPAN, IP-in-IP, nesting, and mutation fuzzing.

use super::tests::{cfg, check_prefixes, err_layer, eth, run, skipped, tcp, Rng, PAYLOAD, SRC4};
use super::tests::{v4_tcp, v6_tcp, ALL_LINKS};
use super::*;
use etherparse::PacketBuilder;

const OUTER_SRC: [u8; 4] = [192, 168, 0, 1];
const OUTER_DST: [u8; 4] = [192, 168, 0, 2];

fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(OUTER_SRC, OUTER_DST, 64).udp(sport, dport).write(&mut v, payload).unwrap();
    v
}

fn ip4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(OUTER_SRC, OUTER_DST, 64).write(&mut v, proto.into(), payload).unwrap();
    v
}

fn inner_eth() -> Vec<u8> {
    eth(0x0800, &v4_tcp(PAYLOAD))
}

fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    [&[0x08u8, 0, 0, 0][..], &(vni << 8).to_be_bytes(), inner].concat()
}

/// Ethernet/IPv4/UDP(4789)/VXLAN around `inner` (an Ethernet frame).
fn vxlan_frame(vni: u32, inner: &[u8]) -> Vec<u8> {
    eth(0x0800, &udp4(51000, 4789, &vxlan(vni, inner)))
}

fn geneve(proto: u16, vni: u32, opt_words: u8, inner: &[u8]) -> Vec<u8> {
    let opts = vec![0xAAu8; usize::from(opt_words) * 4];
    [&[opt_words, 0][..], &proto.to_be_bytes(), &(vni << 8).to_be_bytes(), &opts, inner].concat()
}

/// GRE with the C, K, S words the flags ask for (filled with junk that must be skipped).
fn gre(flags: u16, proto: u16, inner: &[u8]) -> Vec<u8> {
    let words = [0x8000u16, 0x2000, 0x1000].iter().filter(|&&b| flags & b != 0).count();
    [&flags.to_be_bytes()[..], &proto.to_be_bytes(), &vec![0x5A; 4 * words], inner].concat()
}

fn erspan2(session: u16, inner: &[u8]) -> Vec<u8> {
    let head = [0x10u8, 0x64, (session >> 8) as u8 & 0x03, session as u8, 0, 0, 0, 1];
    [&head[..], inner].concat()
}

fn erspan3(session: u16, platform: bool, frame_type: u16, inner: &[u8]) -> Vec<u8> {
    let w5 = (frame_type << 10) | u16::from(platform);
    let mut head = vec![0x20, 0x00, (session >> 8) as u8 & 0x03, session as u8, 1, 2, 3, 4, 0, 0];
    head.extend_from_slice(&w5.to_be_bytes());
    if platform {
        head.extend_from_slice(&[0xEE; 8]);
    }
    [&head[..], inner].concat()
}

#[test]
fn vxlan_inner_decoded_with_vni() {
    let frame = vxlan_frame(0x00AB_CDEF, &inner_eth());
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!(t.tunnel, Some(Tunnel::Vxlan { vni: 0x00AB_CDEF }));
    assert_eq!((t.src, t.dst_port, t.payload), (SRC4.into(), 443, PAYLOAD));
    assert_eq!((t.ip_id, t.ttl), (0x1234, 61)); // the inner IP header's
    check_prefixes(LinkType::ETHERNET, &frame);

    // An outer VLAN tags the underlay; an inner one is the segment's.
    let outer = udp4(51000, 4789, &vxlan(5, &inner_eth()));
    let tagged = eth(0x8100, &[&[0u8, 100, 0x08, 0x00][..], &outer].concat());
    assert_eq!(tcp(run(LinkType::ETHERNET, &tagged)).vlan, None);
    let inner = eth(0x8100, &[&[0u8, 7, 0x08, 0x00][..], &v4_tcp(PAYLOAD)].concat());
    assert_eq!(tcp(run(LinkType::ETHERNET, &vxlan_frame(5, &inner))).vlan, Some(7));
}

#[test]
fn vxlan_ports_come_from_config() {
    // flannel/Cilium's 8472, seen as the source port of a reply.
    let frame = eth(0x0800, &udp4(8472, 40000, &vxlan(1, &inner_eth())));
    assert_eq!(tcp(run(LinkType::ETHERNET, &frame)).tunnel, Some(Tunnel::Vxlan { vni: 1 }));
    let frame = eth(0x0800, &udp4(40000, 9999, &vxlan(1, &inner_eth())));
    assert_eq!(skipped(run(LinkType::ETHERNET, &frame)), Skip::Udp);
    let custom = DecodeConfig { vxlan_ports: vec![9999], ..cfg() };
    assert!(matches!(decode(LinkType::ETHERNET, &frame, &custom), Ok(Decoded::Tcp(_))));
}

#[test]
fn vxlan_invalid_header_is_plain_udp() {
    let mut body = vxlan(1, &inner_eth());
    body[0] = 0;
    assert_eq!(skipped(run(LinkType::RAW, &udp4(1, 4789, &body))), Skip::Udp);
    // A datagram too short to hold the header is not VXLAN.
    assert_eq!(skipped(run(LinkType::RAW, &udp4(1, 4789, &[0x08, 0, 0]))), Skip::Udp);
    // A capture cut inside the header is a truncation.
    let pkt = udp4(1, 4789, &vxlan(1, &inner_eth()));
    assert_eq!(err_layer(run(LinkType::RAW, &pkt[..28 + 5])), ("vxlan", true));
    // Once the header is valid, inner errors are reported.
    assert_eq!(
        err_layer(run(LinkType::RAW, &udp4(1, 4789, &vxlan(1, &[0; 10])))),
        ("ethernet", true)
    );
    let cut_inner = eth(0x0800, &v4_tcp(PAYLOAD)[..30]);
    assert_eq!(err_layer(run(LinkType::RAW, &udp4(1, 4789, &vxlan(1, &cut_inner)))), ("tcp", true));
}

#[test]
fn udp_length_bounds_the_tunnel() {
    // UDP length shorter than the IP payload: the tail is padding, not inner frame.
    let mut pkt = udp4(1, 4789, &vxlan(3, &inner_eth()));
    pkt.extend_from_slice(&[0xFF; 6]);
    let ip_len = pkt.len() as u16;
    pkt[2..4].copy_from_slice(&ip_len.to_be_bytes());
    assert_eq!(tcp(run(LinkType::RAW, &pkt)).payload, PAYLOAD);
    // UDP length below 8 is not a datagram we can open.
    let mut bad = udp4(1, 4789, &vxlan(3, &inner_eth()));
    bad[24..26].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(skipped(run(LinkType::RAW, &bad)), Skip::Udp);
}

#[test]
fn geneve_inner_decoded_with_vni() {
    let frame = eth(0x0800, &udp4(40000, 6081, &geneve(0x6558, 77, 2, &inner_eth())));
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!((t.tunnel, t.payload), (Some(Tunnel::Geneve { vni: 77 }), PAYLOAD));
    check_prefixes(LinkType::ETHERNET, &frame);
    let v4 = udp4(40000, 6081, &geneve(0x0800, 8, 0, &v4_tcp(PAYLOAD)));
    assert_eq!(tcp(run(LinkType::RAW, &v4)).tunnel, Some(Tunnel::Geneve { vni: 8 }));
    let v6 = udp4(40000, 6081, &geneve(0x86DD, 9, 1, &v6_tcp(PAYLOAD)));
    assert_eq!(tcp(run(LinkType::RAW, &v6)).ip_id, 0xABCDE);
}

#[test]
fn geneve_invalid_header_is_plain_udp() {
    let mut version1 = geneve(0x6558, 1, 0, &inner_eth());
    version1[0] |= 0x40;
    assert_eq!(skipped(run(LinkType::RAW, &udp4(1, 6081, &version1))), Skip::Udp);
    let other_proto = geneve(0x894F, 1, 0, &inner_eth());
    assert_eq!(skipped(run(LinkType::RAW, &udp4(1, 6081, &other_proto))), Skip::Udp);
    let mut overlong = geneve(0x6558, 1, 0, &[0; 20]);
    overlong[0] = 63; // 252 bytes of options in a 28-byte datagram
    assert_eq!(skipped(run(LinkType::RAW, &udp4(1, 6081, &overlong))), Skip::Udp);
    let pkt = udp4(1, 6081, &geneve(0x6558, 1, 4, &inner_eth()));
    assert_eq!(err_layer(run(LinkType::RAW, &pkt[..28 + 12])), ("geneve", true));
}

#[test]
fn gre_payloads() {
    let teb = ip4(47, &gre(0, 0x6558, &inner_eth()));
    assert_eq!(tcp(run(LinkType::RAW, &teb)).tunnel, Some(Tunnel::Gre));
    check_prefixes(LinkType::RAW, &teb);
    let all_words = ip4(47, &gre(0xB000, 0x0800, &v4_tcp(PAYLOAD)));
    let t = tcp(run(LinkType::RAW, &all_words));
    assert_eq!((t.tunnel, t.payload), (Some(Tunnel::Gre), PAYLOAD));
    let v6 = ip4(47, &gre(0x2000, 0x86DD, &v6_tcp(PAYLOAD)));
    assert_eq!(tcp(run(LinkType::RAW, &v6)).ip_id, 0xABCDE);

    let pptp = ip4(47, &gre(0x3081, 0x880B, &[0; 30]));
    let routed = ip4(47, &gre(0x4000, 0x0800, &v4_tcp(PAYLOAD)));
    let unknown = ip4(47, &gre(0, 0x8847, &[0; 30]));
    let type1 = ip4(47, &gre(0, 0x88BE, &inner_eth())); // ERSPAN I: no sequence number
    for pkt in [pptp, routed, unknown, type1] {
        assert_eq!(skipped(run(LinkType::RAW, &pkt)), Skip::OtherTransport(47));
    }
    let off = DecodeConfig { gre: false, ..cfg() };
    assert_eq!(decode(LinkType::RAW, &teb, &off), Ok(Decoded::Skipped(Skip::OtherTransport(47))));
    assert_eq!(err_layer(run(LinkType::RAW, &all_words[..20 + 9])), ("gre", true));
}

#[test]
fn erspan_types_2_and_3() {
    let two = ip4(47, &gre(0x1000, 0x88BE, &erspan2(0x2A5, &inner_eth())));
    let t = tcp(run(LinkType::RAW, &two));
    assert_eq!((t.tunnel, t.payload), (Some(Tunnel::Erspan { session: 0x2A5 }), PAYLOAD));
    check_prefixes(LinkType::RAW, &two);
    for platform in [false, true] {
        let three = ip4(47, &gre(0x1000, 0x22EB, &erspan3(17, platform, 0, &inner_eth())));
        assert_eq!(tcp(run(LinkType::RAW, &three)).tunnel, Some(Tunnel::Erspan { session: 17 }));
        check_prefixes(LinkType::RAW, &three);
    }
    let ip_frame = ip4(47, &gre(0, 0x22EB, &erspan3(3, false, 2, &v4_tcp(PAYLOAD))));
    assert_eq!(tcp(run(LinkType::RAW, &ip_frame)).payload, PAYLOAD);
    let other = ip4(47, &gre(0, 0x22EB, &erspan3(3, false, 5, &v4_tcp(PAYLOAD))));
    assert_eq!(skipped(run(LinkType::RAW, &other)), Skip::NotIp);
    let mut wrong = erspan2(1, &inner_eth());
    wrong[0] = 0x20;
    let wrong = ip4(47, &gre(0x1000, 0x88BE, &wrong));
    assert_eq!(err_layer(run(LinkType::RAW, &wrong)), ("erspan", false));
}

/// The shape of a public mirror capture: GRE, ERSPAN, Ethernet, IPv4, UDP, VXLAN, Ethernet, ...
#[test]
fn erspan_then_vxlan_reports_the_innermost_tunnel() {
    let mirrored = vxlan_frame(4242, &inner_eth());
    let frame = eth(0x0800, &ip4(47, &gre(0x1000, 0x88BE, &erspan2(9, &mirrored))));
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!((t.tunnel, t.payload), (Some(Tunnel::Vxlan { vni: 4242 }), PAYLOAD));
    check_prefixes(LinkType::ETHERNET, &frame);
}

#[test]
fn ip_in_ip() {
    let v4 = ip4(4, &v4_tcp(PAYLOAD));
    let t = tcp(run(LinkType::RAW, &v4));
    assert_eq!((t.tunnel, t.src, t.payload), (Some(Tunnel::IpInIp), SRC4.into(), PAYLOAD));
    check_prefixes(LinkType::RAW, &v4);
    let v6 = ip4(41, &v6_tcp(PAYLOAD));
    assert_eq!(tcp(run(LinkType::RAW, &v6)).tunnel, Some(Tunnel::IpInIp));
    let off = DecodeConfig { ip_in_ip: false, ..cfg() };
    assert_eq!(decode(LinkType::RAW, &v4, &off), Ok(Decoded::Skipped(Skip::OtherTransport(4))));
}

#[test]
fn tunnel_depth_is_bounded() {
    let mut ipip = v4_tcp(PAYLOAD);
    let mut vx = inner_eth();
    for depth in 1..=usize::from(MAX_TUNNEL_DEPTH) + 1 {
        ipip = ip4(4, &ipip);
        vx = vxlan_frame(depth as u32, &vx);
        let ok = depth <= usize::from(MAX_TUNNEL_DEPTH);
        for (link, frame) in [(LinkType::RAW, &ipip), (LinkType::ETHERNET, &vx)] {
            match run(link, frame) {
                Ok(Decoded::Tcp(t)) if ok => assert_eq!(t.payload, PAYLOAD),
                Err(DecodeError::Malformed { layer: "tunnel", .. }) if !ok => {}
                other => panic!("depth {depth}: {other:?}"),
            }
        }
    }
    // The innermost VNI is the last one wrapped first.
    let two = vxlan_frame(2, &vxlan_frame(1, &inner_eth()));
    assert_eq!(tcp(run(LinkType::ETHERNET, &two)).tunnel, Some(Tunnel::Vxlan { vni: 1 }));
}

#[test]
fn snaplen_cut_inside_tunnelled_payload() {
    let frame = vxlan_frame(1, &inner_eth());
    let t = tcp(run(LinkType::ETHERNET, &frame[..frame.len() - 4]));
    assert_eq!((t.payload.len(), t.payload_missing), (PAYLOAD.len() - 4, 4));
}

/// Valid frames of every kind with random bytes overwritten and random cuts: never panics, and
/// a decoded payload always lies inside the frame.
#[test]
fn mutated_frames_never_panic() {
    let seeds: Vec<(LinkType, Vec<u8>)> = vec![
        (LinkType::ETHERNET, vxlan_frame(1, &inner_eth())),
        (LinkType::ETHERNET, eth(0x0800, &udp4(1, 6081, &geneve(0x6558, 1, 1, &inner_eth())))),
        (LinkType::RAW, ip4(47, &gre(0x1000, 0x88BE, &erspan2(9, &vxlan_frame(3, &inner_eth()))))),
        (LinkType::RAW, ip4(47, &gre(0x1000, 0x22EB, &erspan3(9, true, 0, &inner_eth())))),
        (LinkType::RAW, ip4(4, &ip4(41, &v6_tcp(PAYLOAD)))),
        (LinkType::ETHERNET, eth(0x86DD, &v6_tcp(PAYLOAD))),
        (LinkType::NFLOG, [&[2u8, 0, 0, 0, 66, 0, 9, 0][..], &v4_tcp(PAYLOAD)].concat()),
    ];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..50_000 {
        let (link, seed) = &seeds[rng.below(seeds.len())];
        let mut frame = seed.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(frame.len());
            frame[at] = rng.next() as u8;
        }
        frame.truncate(rng.below(frame.len() + 1));
        let range = frame.as_ptr_range();
        for l in [*link, ALL_LINKS[rng.below(ALL_LINKS.len())]] {
            if let Ok(Decoded::Tcp(t)) = run(l, &frame) {
                let p = t.payload.as_ptr_range();
                assert!(range.start <= p.start && p.end <= range.end);
            }
        }
    }
}

#[test]
fn gtp_u_inner_ip_decoded_with_teid_and_extension_headers() {
    let inner = v4_tcp(PAYLOAD);
    // Plain G-PDU: flags 0x30 (version 1, PT), type 0xFF, length, TEID.
    let len = (inner.len() as u16).to_be_bytes();
    let plain = [&[0x30u8, 0xFF, len[0], len[1], 0, 0, 0x12, 0x34][..], &inner].concat();
    let frame = eth(0x0800, &udp4(2152, 2152, &plain));
    let t = tcp(run(LinkType::ETHERNET, &frame));
    assert_eq!(t.tunnel, Some(Tunnel::Gtp { teid: 0x1234 }));
    assert_eq!((t.dst_port, t.payload), (443, PAYLOAD));
    check_prefixes(LinkType::ETHERNET, &frame);

    // E flag: sequence, N-PDU, next type 0x85 (PDU session container, 1 word), then none.
    let ext =
        [&[0x34u8, 0xFF, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0x85][..], &[1, 0x10, 0x01, 0x00], &inner]
            .concat();
    let frame = eth(0x0800, &udp4(40000, 2152, &ext));
    assert_eq!(tcp(run(LinkType::ETHERNET, &frame)).tunnel, Some(Tunnel::Gtp { teid: 9 }));

    // A GTP control message (not 0xFF) or a bad extension length is plain UDP.
    let control = [&[0x32u8, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0][..]].concat();
    assert_eq!(
        skipped(run(LinkType::ETHERNET, &eth(0x0800, &udp4(2152, 2152, &control)))),
        Skip::Udp
    );
    let bad =
        [&[0x34u8, 0xFF, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0x85][..], &[0, 0, 0, 0], &inner].concat();
    assert_eq!(skipped(run(LinkType::ETHERNET, &eth(0x0800, &udp4(2152, 2152, &bad)))), Skip::Udp);
}
