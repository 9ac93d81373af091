//! Flow-table behaviour that the fixture captures do not pin down on their own.

use super::*;
use crate::decode::SllMeta;
use std::net::Ipv4Addr;

const C: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const S: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

struct Seg {
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &'static [u8],
    ip_id: u32,
    ifindex: Option<u32>,
}

fn packet(s: &Seg) -> TcpPacket<'static> {
    let (src, dst, sp, dp) = if s.from_client { (C, S, 40000, 8080) } else { (S, C, 8080, 40000) };
    TcpPacket {
        src,
        dst,
        src_port: sp,
        dst_port: dp,
        seq: s.seq,
        ack: s.ack,
        flags: TcpFlags(s.flags),
        window: 1000,
        payload: s.payload,
        payload_missing: 0,
        bad_options: false,
        ip_id: s.ip_id,
        ttl: 64,
        sll: s.ifindex.map(|i| SllMeta { packet_type: 0, ifindex: Some(i) }),
        tunnel: None,
        vlan: None,
    }
}

fn seg(
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &'static [u8],
    ip_id: u32,
) -> Seg {
    Seg { from_client, flags, seq, ack, payload, ip_id, ifindex: Some(2) }
}

const SYN: u8 = TcpFlags::SYN;
const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
const ACK: u8 = TcpFlags::ACK;
const PSH: u8 = TcpFlags::PSH | TcpFlags::ACK;
const REQ: &[u8] = b"GET /x HTTP/1.1\r\nHost: s\r\n\r\n";

fn handshake() -> Vec<Seg> {
    vec![
        seg(true, SYN, 100, 0, b"", 1),
        seg(false, SYNACK, 500, 101, b"", 9),
        seg(true, ACK, 101, 501, b"", 2),
        seg(true, PSH, 101, 501, REQ, 3),
    ]
}

fn run(segs: &[Seg], dedup: bool) -> (Vec<FlowRecord>, TableStats) {
    let mut table = FlowTable::new(FlowConfig::default());
    for (i, s) in segs.iter().enumerate() {
        table.push(&packet(s), 0, Timestamp(1_000_000 * i as i64), dedup);
    }
    let flows = table.flush();
    (flows, table.stats())
}

#[test]
fn a_packet_seen_on_two_interfaces_is_counted_once() {
    let mut segs = Vec::new();
    for s in handshake() {
        // `-i any` on a node: the same segment on the pod's veth (3) and on the bridge (2).
        segs.push(Seg {
            ifindex: Some(3),
            ..seg(s.from_client, s.flags, s.seq, s.ack, s.payload, s.ip_id)
        });
        segs.push(s);
    }
    let (flows, stats) = run(&segs, true);
    assert_eq!(flows.len(), 1, "one connection, not two");
    assert_eq!(flows[0].dirs[0].packets + flows[0].dirs[1].packets, 4);
    assert_eq!(flows[0].duplicates, 4);
    assert_eq!(stats.duplicates, 4);
    assert!(matches!(flows[0].classification, Classification::Http1 { .. }));
}

#[test]
fn a_retransmission_on_the_same_interface_is_not_a_duplicate() {
    let mut segs = handshake();
    segs.push(seg(true, PSH, 101, 501, REQ, 4)); // same bytes again, new IP id
    let (flows, _) = run(&segs, true);
    assert_eq!(flows[0].duplicates, 0);
    assert_eq!(flows[0].dirs[0].packets, 4);
    assert_eq!(flows[0].reassembly[0].retransmitted_bytes, REQ.len() as u64);
}

#[test]
fn without_a_syn_the_sender_of_a_request_is_the_client() {
    // The capture starts mid-connection and the server's answer comes first, from the lower port.
    let segs = vec![
        seg(false, PSH, 500, 101, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1),
        seg(true, PSH, 101, 540, REQ, 2),
    ];
    let (flows, _) = run(&segs, false);
    assert_eq!(flows[0].client, SocketAddr::new(C, 40000));
    assert!(flows[0].client_by.is_inferred());
}

#[test]
fn a_retransmitted_syn_is_the_same_connection_a_new_isn_is_a_new_one() {
    let mut segs = vec![seg(true, SYN, 100, 0, b"", 1), seg(true, SYN, 100, 0, b"", 2)];
    segs.extend(handshake().into_iter().skip(1));
    let (flows, _) = run(&segs, false);
    assert_eq!(flows.len(), 1);

    let mut segs = handshake();
    segs.push(seg(true, TcpFlags::FIN | ACK, 129, 501, b"", 5));
    segs.push(seg(false, TcpFlags::FIN | ACK, 501, 130, b"", 10));
    segs.push(seg(true, SYN, 9000, 0, b"", 6));
    let (flows, _) = run(&segs, false);
    assert_eq!(flows.len(), 2, "a new SYN on a closed 5-tuple is a new flow");
    assert!(flows[0].closed());
}

#[test]
fn data_on_the_syn_is_delivered_from_its_first_byte() {
    let segs = vec![
        seg(true, SYN, 100, 0, REQ, 1),
        seg(false, SYNACK, 500, 101 + REQ.len() as u32, b"", 9),
    ];
    let (flows, _) = run(&segs, false);
    match &flows[0].classification {
        Classification::Http1 { request: Some(r), .. } => assert_eq!(r.method, "GET"),
        other => panic!("TFO request not parsed: {other:?}"),
    }
}

#[test]
fn the_flow_cap_finishes_the_longest_idle_flow_and_counts_it() {
    let cfg = FlowConfig { max_flows: 2, ..FlowConfig::default() };
    let mut table = FlowTable::new(cfg);
    for port in 0..3u16 {
        let mut p = packet(&seg(true, SYN, 100, 0, b"", 1));
        p.src_port = 1000 + port;
        table.push(&p, 0, Timestamp(i64::from(port)), false);
    }
    assert_eq!(table.len(), 2);
    assert_eq!(table.stats().flows_evicted, 1);
    assert_eq!(table.drain_finished()[0].client.port(), 1000);
}

fn events_table() -> FlowTable {
    FlowTable::new(FlowConfig { events: true, ..FlowConfig::default() })
}

fn push_all(table: &mut FlowTable, segs: &[Seg], t0: i64) {
    for (i, s) in segs.iter().enumerate() {
        table.push(&packet(s), 0, Timestamp(t0 + 1_000_000 * i as i64), false);
    }
}

const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn without_events_nothing_is_reported_before_the_end() {
    let mut table = FlowTable::new(FlowConfig::default());
    push_all(&mut table, &handshake(), 0);
    assert!(table.drain_decided().is_empty());
    assert!(table.pending.is_empty());
}

#[test]
fn a_request_decides_a_flow_once_and_its_response_updates_it_once() {
    let mut table = events_table();
    push_all(&mut table, &handshake()[..3], 0);
    assert!(table.drain_decided().is_empty(), "no payload yet: nothing decided");
    push_all(&mut table, &handshake()[3..], 10_000_000);
    let decided = table.drain_decided();
    assert_eq!(decided.len(), 1);
    match &decided[0].classification {
        Classification::Http1 { request: Some(r), response: None, .. } => {
            assert_eq!(r.method, "GET")
        }
        other => panic!("expected the request: {other:?}"),
    }
    assert!(table.drain_decided().is_empty(), "reported once per change");
    assert_eq!(table.len(), 1, "a snapshot leaves the flow open");
    // The same request again (a retransmission) changes nothing.
    push_all(&mut table, &[seg(true, PSH, 101, 501, REQ, 7)], 20_000_000);
    assert!(table.drain_decided().is_empty());
    push_all(&mut table, &[seg(false, PSH, 501, 129, RESP, 10)], 30_000_000);
    let updated = table.drain_decided();
    assert_eq!(updated.len(), 1);
    assert!(matches!(
        updated[0].classification,
        Classification::Http1 { request: Some(_), response: Some(_), .. }
    ));
    assert_eq!(updated[0].id, decided[0].id);
    assert_eq!(updated[0].dirs[1].packets, 2, "counters as of the change");
    let finished = table.flush();
    assert_eq!(finished.len(), 1);
    assert!(table.drain_decided().is_empty());
}

#[test]
fn a_flow_that_finished_before_the_drain_is_left_to_drain_finished() {
    let mut table = events_table();
    push_all(&mut table, &handshake(), 0);
    table.expire(Timestamp(1_000_000_000_000_000));
    assert!(table.drain_decided().is_empty());
    assert_eq!(table.drain_finished().len(), 1);
}

#[test]
fn undrained_events_stay_bounded() {
    let mut table = events_table();
    let mut t = 0;
    for port in 0..5000u16 {
        // A request on the SYN (TCP Fast Open) decides the flow with its first packet.
        let mut p = packet(&seg(true, SYN, 100, 0, REQ, 1));
        p.src_port = 1000 + port;
        t += 1_000;
        table.push(&p, 0, Timestamp(t), false);
        if port % 100 == 99 {
            t += 700 * 1_000_000_000;
            table.expire(Timestamp(t));
            table.drain_finished();
        }
        // At most 100 flows are open at once: the queue never holds much more than twice that
        // plus the slack pruning leaves.
        assert!(table.pending.len() <= 2 * 100 + 1025, "{}", table.pending.len());
    }
    let decided = table.drain_decided();
    assert!(decided.len() <= 100, "only flows still open: {}", decided.len());
}

fn closed_flow() -> Vec<Seg> {
    let mut segs = handshake();
    segs.push(seg(true, TcpFlags::FIN | ACK, 101 + REQ.len() as u32, 501, b"", 4));
    segs.push(seg(false, TcpFlags::FIN | ACK, 501, 102 + REQ.len() as u32, b"", 10));
    segs
}

/// A SYN of another connection (another client port).
fn other_connection() -> TcpPacket<'static> {
    TcpPacket { src_port: 50000, ..packet(&seg(true, SYN, 9, 0, b"", 1)) }
}

/// Pushes `segs` one millisecond apart from `t0` (ns) on capture interface `iface`.
fn push_on(table: &mut FlowTable, segs: &[Seg], iface: u32, t0: i64) {
    for (i, s) in segs.iter().enumerate() {
        table.push(&packet(s), iface, Timestamp(t0 + 1_000_000 * i as i64), false);
    }
}

#[test]
fn a_closed_flow_finishes_once_quiet_for_the_linger_time_not_at_the_next_sweep() {
    let mut table = FlowTable::new(FlowConfig::default());
    let linger = FlowConfig::default().closed_linger_ns as i64;
    push_on(&mut table, &closed_flow(), 0, 0);
    // Another connection keeps packets coming. The first of them runs the once-a-second sweep
    // (the flow is not quiet yet then), so the second finds no sweep due: only the closing
    // queue can finish the flow there.
    let last = 1_000_000 * (closed_flow().len() as i64 - 1);
    table.push(&other_connection(), 0, Timestamp(last + linger - 1), false);
    assert!(table.drain_finished().is_empty(), "not quiet for the linger time yet");
    table.push(&other_connection(), 0, Timestamp(last + linger), false);
    let done = table.drain_finished();
    assert_eq!(done.len(), 1, "finished exactly when quiet for the linger time");
    assert!(done[0].closed() && done[0].dirs[0].packets == 4);
}

#[test]
fn a_stream_running_ahead_does_not_finish_another_interfaces_closed_flow() {
    let mut table = FlowTable::new(FlowConfig::default());
    let linger = FlowConfig::default().closed_linger_ns as i64;
    let segs = closed_flow();
    let (head, tail) = segs.split_at(segs.len() - 1);
    push_on(&mut table, head, 1, 0);
    // Interface 2's packets are a few seconds ahead (another pod's stream, merged).
    table.push(&other_connection(), 2, Timestamp(3 * linger), false);
    assert!(table.drain_finished().is_empty(), "interface 1's time has not moved on");
    // The flow's last packet, late in arrival but in its own time, still counts in the flow.
    push_on(&mut table, tail, 1, 1_000_000 * head.len() as i64);
    let flows = table.flush();
    let flow = flows.iter().find(|f| f.server.port() == 8080 && f.dirs[1].packets > 0).unwrap();
    assert_eq!(flow.dirs[0].packets + flow.dirs[1].packets, segs.len() as u64);
    assert_eq!(flows.len(), 2, "no third flow made of the late packet alone");
}

/// A SYN from `src` to `dst`, the first packet of a flow.
fn syn_between(src: SocketAddr, dst: SocketAddr) -> TcpPacket<'static> {
    TcpPacket {
        src: src.ip(),
        dst: dst.ip(),
        src_port: src.port(),
        dst_port: dst.port(),
        ..packet(&seg(true, SYN, 100, 0, b"", 1))
    }
}

#[test]
fn flows_whose_endpoints_differ_only_in_address_family_stay_apart() {
    use std::net::Ipv6Addr;
    // 10.0.0.1 and ::a00:1 have the same 32 low bits; ::ffff:10.0.0.1 is its mapped form.
    let v4 = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), p);
    let v6 = |p| SocketAddr::new(IpAddr::V6(Ipv6Addr::from_bits(0x0a00_0001)), p);
    let mapped = |p| SocketAddr::new(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()), p);
    let mut table = FlowTable::new(FlowConfig::default());
    for (i, (a, b)) in [(v4(1), v4(2)), (v6(1), v6(2)), (mapped(1), mapped(2))].iter().enumerate() {
        table.push(&syn_between(*a, *b), 0, Timestamp(i as i64), false);
        // The answer from the other end finds the same flow.
        let mut answer = syn_between(*b, *a);
        answer.flags = TcpFlags(SYNACK);
        table.push(&answer, 0, Timestamp(i as i64), false);
    }
    let flows = table.flush();
    assert_eq!(flows.len(), 3);
    for f in &flows {
        assert_eq!((f.dirs[0].packets, f.dirs[1].packets), (1, 1), "{} -> {}", f.client, f.server);
        assert_eq!(f.client_by, ClientBy::Syn);
    }
}

#[test]
fn flows_idle_past_the_timeout_finish_in_the_order_they_started() {
    let cfg = FlowConfig { idle_timeout_ns: 1_000, ..FlowConfig::default() };
    let mut table = FlowTable::new(cfg);
    let server = SocketAddr::new(S, 443);
    // Enough flows that the table's own order would differ from the start order.
    for port in 0..200u16 {
        let client = SocketAddr::new(C, 20_000 + port.wrapping_mul(7919) % 40_000);
        table.push(&syn_between(client, server), 0, Timestamp(i64::from(port)), false);
    }
    table.expire(Timestamp(1_000_000));
    let ids: Vec<u64> = table.drain_finished().iter().map(|f| f.id).collect();
    assert_eq!(ids, (1..=200).collect::<Vec<u64>>());
    assert!(table.is_empty());
}

#[test]
fn a_packet_of_a_classified_flow_touches_four_cache_lines() {
    // The working set of the flow table decides its speed (see `Flow`): the key and the
    // counters fill the first two lines, each direction's reassembler starts on its own line
    // with everything an in-order segment or an ACK reads in that line.
    assert_eq!(std::mem::align_of::<Flow>(), 64);
    assert!(std::mem::offset_of!(Flow, duplicates) + 8 <= 128);
    assert_eq!(std::mem::offset_of!(Flow, reasm), 128);
    assert_eq!(std::mem::size_of::<Reassembler>(), 128);
}

#[test]
fn flows_closed_at_the_same_time_finish_in_the_order_they_started() {
    let mut table = FlowTable::new(FlowConfig::default());
    let linger = FlowConfig::default().closed_linger_ns as i64;
    let server = SocketAddr::new(S, 8080);
    // Each client's endpoint sorts below the one before it: a tie broken by the flows' keys
    // would finish them last-started first.
    let clients: Vec<SocketAddr> = (0..20u8)
        .map(|i| {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 200 - i)), 60_000 - u16::from(i))
        })
        .collect();
    for (i, &client) in clients.iter().enumerate() {
        table.push(&syn_between(client, server), 0, Timestamp(i as i64), false);
    }
    // All reset at one instant: queued to close with the same quiet-since time.
    let reset_at = 1_000_000;
    for &client in &clients {
        let mut rst = syn_between(client, server);
        rst.flags = TcpFlags(TcpFlags::RST);
        table.push(&rst, 0, Timestamp(reset_at), false);
    }
    // As in the linger test above: the first packet runs the sweep (too early), the second
    // finds no sweep due, so the closing queue alone finishes the flows.
    table.push(&other_connection(), 0, Timestamp(reset_at + linger - 1), false);
    assert!(table.drain_finished().is_empty());
    table.push(&other_connection(), 0, Timestamp(reset_at + linger), false);
    let ids: Vec<u64> = table.drain_finished().iter().map(|f| f.id).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
}
