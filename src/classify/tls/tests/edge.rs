//! Hand-made bytes: limits, malformed input, odd framings, and no panic on anything.

use super::*;
use crate::verdict::{Proof, Verdict};

fn ext(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut e = typ.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

/// A TLS 1.3-style ClientHello message offering TLS_AES_128_GCM_SHA256.
fn client_hello(exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let e = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend_from_slice(&e);
    hs_msg(1, &b)
}

fn server_hello(cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[9; 32]);
    b.push(0);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    let e = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend_from_slice(&e);
    hs_msg(2, &b)
}

fn sv13() -> Vec<u8> {
    ext(43, &[2, 3, 4])
}

/// A TLS 1.3 exchange: client hello + CCS + encrypted records of `sizes`; server hello + records.
fn tls13_flow(
    ch_exts: &[Vec<u8>],
    sh_exts: &[Vec<u8>],
    sizes: &[u16],
) -> (TlsAnalyzer, FlowContext) {
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &record(22, &client_hello(ch_exts)), Timestamp(1));
    let mut s = record(22, &server_hello(0x1301, sh_exts));
    s.extend(record(20, &[1]));
    for len in [23, 800, 80, 53] {
        s.extend(record(23, &vec![0xaa; len]));
    }
    a.feed(Dir::ToClient, &s, Timestamp(2));
    let mut c = record(20, &[1]);
    for &len in sizes {
        c.extend(record(23, &vec![0x55; usize::from(len)]));
    }
    a.feed(Dir::ToServer, &c, Timestamp(3));
    a.feed(Dir::ToClient, &record(23, &[0xaa; 300]), Timestamp(4));
    (a, FlowContext::default())
}

#[test]
fn record_length_over_the_maximum() {
    let ok = [23, 3, 3, 0x48, 0x00]; // 2^14 + 2048
    let long = [23, 3, 3, 0x48, 0x01];
    assert_eq!(sniff(&ok), Sniff::Yes);
    assert_eq!(sniff(&long), Sniff::No);
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &long, Timestamp(0));
    assert_eq!(a.facts().client.error, Some(StreamError::RecordTooLong(18433)));
    a.feed(Dir::ToServer, &[0; 100], Timestamp(0));
    assert_eq!(a.facts().client.records.total(), 0, "reading stopped");
}

/// Found by the malformed-capture corpus: a hello whose record claims more than TLS allows was
/// taken for unknown cleartext (verdict plaintext); it is TLS, damaged, and says so.
#[test]
fn an_overlong_hello_record_is_damaged_tls() {
    let hello = [22, 3, 1, 0xff, 0xff, 1, 0, 0x01, 0xfc];
    assert_eq!(sniff(&hello[..5]), Sniff::NeedMore);
    assert_eq!(sniff(&hello), Sniff::Yes);
    assert_eq!(sniff(&[22, 3, 1, 0xff, 0xff, 20]), Sniff::No, "not a hello");
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &hello, Timestamp(0));
    assert_eq!(a.facts().client.error, Some(StreamError::RecordTooLong(0xffff)));
}

/// Found by the malformed-capture corpus: a ClientHello sent one byte per record was called
/// plaintext, as the sniffer wanted a whole handshake header in the first record.
#[test]
fn a_hello_in_one_byte_records_is_tls() {
    assert_eq!(sniff(&[22, 3, 1, 0, 1, 1]), Sniff::Yes);
    assert_eq!(sniff(&[22, 3, 1, 0, 0, 1]), Sniff::No, "empty handshake records are not");
}

#[test]
fn handshake_length_overflowing_its_record() {
    let mut msg = hs_msg(1, &[0; 1000]);
    msg.truncate(100);
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &record(22, &msg), Timestamp(0));
    assert_eq!(a.facts().client.partial_message, Some((HandshakeType::CLIENT_HELLO, 96, 1000)));
    assert_eq!(a.buffered(), 100);
    // Another record type inside a fragmented message: handshake parsing stops, counting goes on.
    a.feed(Dir::ToServer, &record(23, &[1; 40]), Timestamp(0));
    let f = a.facts();
    assert_eq!(f.client.error, Some(StreamError::InterleavedHandshake));
    assert!(f.client_hello.is_none() && f.client.partial_message.is_none());
    assert_eq!((f.client.records.application_data, a.buffered()), (1, 0));
}

#[test]
fn client_hello_fragmented_over_many_records() {
    let pad = ext(21, &[0; 900]);
    let msg = client_hello(&[ext(0, b"\x00\x0e\x00\x00\x0bserver.test"), sv13(), pad]);
    let mut whole = TlsAnalyzer::new(Limits::default());
    whole.feed(Dir::ToServer, &record(22, &msg), Timestamp(0));
    let want = whole.facts().client_hello.clone().expect("hello");
    assert_eq!(want.sni.as_deref(), Some("server.test"));
    let mut stream = Vec::new();
    for (i, piece) in msg.chunks(10).enumerate() {
        stream.extend(record(22, piece));
        if i % 7 == 0 {
            stream.extend(record(22, &[])); // zero-length records carry nothing
        }
    }
    assert!(msg.len() / 10 >= 90);
    assert!(matches!(peek_client_hello(&stream, 1 << 16), Peek::Done(ch) if ch == want));
    let mut a = TlsAnalyzer::new(Limits::default());
    for b in stream.chunks(3) {
        a.feed(Dir::ToServer, b, Timestamp(0));
    }
    assert_eq!(a.facts().client_hello.as_ref(), Some(&want));
    assert_eq!(a.facts().messages.len(), 1);
}

#[test]
fn large_post_quantum_client_hello_split_over_records() {
    // ~20 KB: several big key shares, as hybrid post-quantum groups make.
    let mut shares = Vec::new();
    for g in [0x11ecu16, 0x11eb, 0x6399, 29] {
        shares.extend_from_slice(&g.to_be_bytes());
        let n: u16 = if g == 29 { 32 } else { 6400 };
        shares.extend_from_slice(&n.to_be_bytes());
        shares.extend(std::iter::repeat_n(0x42, usize::from(n)));
    }
    let mut ks = (shares.len() as u16).to_be_bytes().to_vec();
    ks.extend(shares);
    let msg = client_hello(&[sv13(), ext(51, &ks)]);
    assert!(msg.len() > 19_000);
    let stream: Vec<u8> = msg.chunks(1 << 14).flat_map(|p| record(22, p)).collect();
    let mut a = TlsAnalyzer::new(Limits::default());
    for b in stream.chunks(1460) {
        a.feed(Dir::ToServer, b, Timestamp(0));
    }
    let ch = a.facts().client_hello.clone().expect("hello");
    assert_eq!(ch.key_share_groups, vec![0x11ec, 0x11eb, 0x6399, 29]);
    assert_eq!(a.facts().client.records.handshake, 2);
}

#[test]
fn zero_length_records_are_counted() {
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(
        Dir::ToClient,
        &[record(23, &[]), record(23, &[]), record(23, &[5; 10])].concat(),
        Timestamp(0),
    );
    let d = &a.facts().server;
    assert_eq!((d.records.application_data, d.start), (3, StreamStart::MidStream));
    assert_eq!(d.encrypted_records.iter().map(|r| r.len).collect::<Vec<_>>(), vec![0, 0, 10]);
}

#[test]
fn garbage_after_valid_records() {
    let v = load("tls12_server_auth");
    let mut c2s = v.c2s.clone();
    c2s.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &v.c2s[..client_hello_msg(&v).len() + 5], Timestamp(0));
    a.feed(Dir::ToClient, &v.s2c, Timestamp(1));
    a.feed(Dir::ToServer, &c2s[client_hello_msg(&v).len() + 5..], Timestamp(2));
    let f = a.facts();
    assert_eq!(f.client.error, Some(StreamError::BadContentType(b'G')));
    assert_eq!(f.client.error_offset, Some(v.c2s.len() as u64));
    let (j, _) = judge(f, &FlowContext::default());
    assert_eq!(j.verdict, Verdict::TlsServerAuth, "facts before the garbage stand");
    assert!(j.warnings.iter().any(|w| w.contains("reading stopped at byte")), "{:?}", j.warnings);
}

#[test]
fn alert_in_the_clear() {
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &record(22, &client_hello(&[sv13()])), Timestamp(0));
    assert!(a.wants_bytes());
    a.feed(Dir::ToClient, &record(21, &[2, 40]), Timestamp(1));
    assert!(!a.wants_bytes());
    let f = a.facts();
    assert_eq!(f.alerts.len(), 1);
    assert_eq!(
        (f.alerts[0].dir, f.alerts[0].level, f.alerts[0].description.0),
        (Some(Dir::ToClient), 2, 40)
    );
    let (j, cc) = judge(f, &FlowContext { closed: true, ..Default::default() });
    assert_eq!((j.verdict, cc), (Verdict::HandshakeFailed, ClientCert::Unknown));
    assert_eq!(
        j.evidence,
        "server sent fatal alert handshake_failure (40) in response to ClientHello"
    );
    // Encrypted alerts (with a MAC or tag) are not read as cleartext alerts.
    a.feed(Dir::ToServer, &record(21, &[2, 40, 0, 0, 0, 0]), Timestamp(2));
    assert_eq!(a.facts().alerts.len(), 1);
}

#[test]
fn sslv2_compatible_client_hello() {
    let mut body = vec![1, 3, 1, 0, 9, 0, 0, 0, 16];
    body.extend_from_slice(&[0, 0, 0x2f, 0, 0, 0x35, 7, 0, 0xc0]);
    body.extend_from_slice(&[0xcc; 16]);
    let mut rec = vec![0x80, body.len() as u8];
    rec.extend_from_slice(&body);
    assert_eq!(sniff(&rec), Sniff::Yes);
    assert!(matches!(peek_client_hello(&rec, 1 << 16), Peek::Done(ref ch) if ch.sslv2_format));
    let mut a = TlsAnalyzer::new(Limits::default());
    for b in rec.chunks(1) {
        a.feed(Dir::ToServer, b, Timestamp(0));
    }
    let f = a.facts();
    let ch = f.client_hello.as_ref().expect("hello");
    assert!(ch.sslv2_format);
    assert_eq!((ch.legacy_version, ch.cipher_suites_count), (Version::TLS10, 3));
    assert_eq!(ch.cipher_suites, vec![0x2f, 0x35]);
    assert_eq!((f.client.records.sslv2, f.client.start), (1, StreamStart::Hello));
    assert!(f.notes.contains(&TlsNote::Sslv2ClientHello));
    // SSL 2.0-looking bytes that are not a CLIENT-HELLO.
    assert_eq!(sniff(&[0x80, 0x20, 0x02, 0x03, 0x01]), Sniff::No);
    assert_eq!(sniff(&[0x80, 0x20, 0x01, 0x05]), Sniff::No);
    assert_eq!(sniff(&[0x80, 0x20, 0x01]), Sniff::NeedMore);
}

#[test]
fn sniff_rejects_what_is_not_tls() {
    for b in [
        &b"GET / HTTP/1.1"[..],
        b"PRI * HTTP/2.0",
        b"SSH-2.0-OpenSSH",
        &[22, 2, 0, 0, 5, 1],
        &[22, 3, 5, 0, 5, 1],
        &[22, 3, 1, 0, 5, 99],
        &[20, 3, 3, 0, 2, 1],
    ] {
        assert_eq!(sniff(b), Sniff::No, "{b:?}");
    }
    assert_eq!(sniff(&[22, 3, 1, 0, 200]), Sniff::NeedMore);
    assert_eq!(sniff(&[22, 3, 1, 0, 200, 1]), Sniff::Yes);
    assert_eq!(sniff(&[23, 3, 3, 0, 20]), Sniff::Yes, "application data mid-stream");
}

#[test]
fn buffer_cap_skips_big_messages_and_stays_bounded() {
    let v = load("tls12_mutual");
    let limits = Limits { max_buffer: 600 };
    let mut a = TlsAnalyzer::new(limits);
    let mut pos = [0usize; 2];
    for &(dir, len) in &v.chunks {
        let Some(n) = len else { continue };
        let p = &mut pos[dir.index()];
        for b in bytes_of(&v, dir)[*p..*p + n].chunks(1) {
            a.feed(dir, b, Timestamp(0));
            assert!(a.buffered() <= 600);
        }
        *p += n;
    }
    let f = a.facts();
    assert!(f.server.buffer_capped && f.client.buffer_capped);
    let c = f.client_certs.as_ref().expect("client Certificate listed");
    assert!(!c.parsed && !c.is_empty());
    assert!(
        f.message_summary().contains("Certificate(835 B, not parsed)")
            || f.message_summary().contains("not parsed")
    );
    let (j, cc) = judge(f, &FlowContext::default());
    assert_eq!((j.verdict, j.proof, cc), (Verdict::Mtls, Some(Proof::Observed), ClientCert::Sent));
    assert!(j.evidence.contains("not parsed"), "{}", j.evidence);
    assert!(j.warnings.iter().any(|w| w.contains("buffer cap")));
}

#[test]
fn gap_inside_the_server_certificate_hides_the_request() {
    let v = load("tls12_mutual");
    let (full, ctx) = replay(&v, Limits::default());
    assert_eq!(judge(full.facts(), &ctx).0.verdict, Verdict::Mtls);
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &v.c2s[..5 + client_hello_msg(&v).len()], Timestamp(0));
    let cut = 5 + 65 + 5 + 100; // inside the Certificate record body
    a.feed(Dir::ToClient, &v.s2c[..cut], Timestamp(1));
    a.gap(Dir::ToClient, 200);
    a.feed(Dir::ToClient, &v.s2c[cut + 200..], Timestamp(2));
    a.feed(Dir::ToServer, &v.c2s[5 + client_hello_msg(&v).len()..], Timestamp(3));
    let f = a.facts();
    assert!(f.server.gap_in_handshake && f.server.error.is_none(), "record sync kept");
    assert!(f.certificate_request.is_none() && f.server.change_cipher_spec);
    let (j, cc) = judge(f, &FlowContext { gaps: [false, true], ..Default::default() });
    assert_eq!((j.verdict, cc), (Verdict::TlsUnknownAuth, ClientCert::Unknown));
    assert_eq!(j.evidence, "a capture gap hid the server's TLS 1.2 handshake messages");
}

#[test]
fn gaps_in_tls13_encrypted_records() {
    let v = load("tls13_mutual_ecdsa");
    let ch = 5 + client_hello_msg(&v).len();
    let run = |gap_at: usize, gap: usize| {
        let mut a = TlsAnalyzer::new(Limits::default());
        a.feed(Dir::ToServer, &v.c2s[..ch], Timestamp(0));
        a.feed(Dir::ToClient, &v.s2c, Timestamp(1));
        a.feed(Dir::ToServer, &v.c2s[ch..gap_at], Timestamp(2));
        a.gap(Dir::ToServer, gap as u64);
        a.feed(Dir::ToServer, &v.c2s[gap_at + gap..], Timestamp(3));
        let (j, _) = judge(a.facts(), &FlowContext::default());
        (j, a)
    };
    // Inside the Certificate record: sizes are still known.
    let (j, a) = run(ch + 6 + 5 + 100, 300);
    assert_eq!((j.verdict, j.proof), (Verdict::Mtls, Some(Proof::Inferred)), "{j:?}");
    assert!(!a.facts().client.gap_in_handshake);
    assert!(
        j.warnings.iter().any(|w| w == "client->server: capture gap (300 bytes lost)"),
        "{:?}",
        j.warnings
    );
    // Across a record boundary: sync is lost, the flight cannot be read.
    let (j, a) = run(ch + 6 + 5 + 800, 200);
    assert_eq!(a.facts().client.error, Some(StreamError::LostSync));
    assert_eq!(j.verdict, Verdict::TlsUnknownAuth, "{j:?}");
}

#[test]
fn mid_stream_capture() {
    let v = load("tls13_mutual_ecdsa");
    // Start each direction at its first application-data record after the handshake.
    let from = |b: &[u8], skip_records: usize| {
        let mut i = 0;
        for _ in 0..skip_records {
            i += 5 + usize::from(u16::from_be_bytes([b[i + 3], b[i + 4]]));
        }
        b[i..].to_vec()
    };
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &from(&v.c2s, 5), Timestamp(0));
    a.feed(Dir::ToClient, &from(&v.s2c, 9), Timestamp(1));
    let f = a.facts();
    assert_eq!((f.client.start, f.server.start), (StreamStart::MidStream, StreamStart::MidStream));
    assert_eq!(f.client.first_record_version, Some(Version::TLS12), "1.3 writes 0x0303 too");
    assert!(!a.wants_bytes());
    let (j, cc) = judge(f, &FlowContext::default());
    assert_eq!((j.verdict, cc), (Verdict::TlsUnknownAuth, ClientCert::Unknown));
    assert_eq!(j.evidence, "TLS application data from mid-stream; handshake not captured");
}

#[test]
fn only_the_server_side_captured() {
    let v = load("tls12_mutual");
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToClient, &v.s2c, Timestamp(0));
    let (j, _) = judge(a.facts(), &FlowContext::default());
    assert_eq!(j.verdict, Verdict::TlsUnknownAuth);
    assert_eq!(
        j.evidence,
        "only the server->client stream was captured; the other side's messages are missing"
    );
}

#[test]
fn closed_or_cut_during_the_handshake() {
    let v = load("tls12_mutual");
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &v.c2s[..5 + client_hello_msg(&v).len()], Timestamp(0));
    a.feed(Dir::ToClient, &v.s2c[..5 + 65 + 5 + 813], Timestamp(1));
    let closed = judge(a.facts(), &FlowContext { closed: true, ..Default::default() }).0;
    assert_eq!(closed.verdict, Verdict::HandshakeFailed);
    assert!(
        closed.evidence.starts_with("connection closed before both sides sent ChangeCipherSpec"),
        "{}",
        closed.evidence
    );
    assert!(
        closed.evidence.ends_with("last message seen: Certificate(2 certs, 809 B) from server"),
        "{}",
        closed.evidence
    );
    let cut = judge(a.facts(), &FlowContext::default()).0;
    assert_eq!(cut.verdict, Verdict::TlsUnknownAuth, "a capture that just ends is not a failure");
}

#[test]
fn swapped_roles_are_noticed() {
    let v = load("tls12_server_auth");
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &v.s2c, Timestamp(0));
    a.feed(Dir::ToClient, &v.c2s, Timestamp(0));
    let f = a.facts();
    assert_eq!(f.client.start, StreamStart::UnexpectedHandshake(HandshakeType::SERVER_HELLO));
    assert!(f.notes.contains(&TlsNote::RolesSwapped));
    assert_eq!(judge(f, &FlowContext::default()).0.verdict, Verdict::TlsUnknownAuth);
}

#[test]
fn tls13_coalesced_client_flights() {
    let (a, ctx) = tls13_flow(&[sv13()], &[ext(43, &[3, 4])], &[53 + 8, 22]);
    assert_eq!(a.facts().finished_record_len, Some(53));
    let (j, cc) = judge(a.facts(), &ctx);
    assert_eq!((j.verdict, cc), (Verdict::TlsServerAuth, ClientCert::Empty), "{j:?}");
    let (a, ctx) = tls13_flow(&[sv13()], &[ext(43, &[3, 4])], &[53 + 600, 22]);
    let (j, cc) = judge(a.facts(), &ctx);
    assert_eq!((j.verdict, j.proof, cc), (Verdict::Mtls, Some(Proof::Inferred), ClientCert::Sent));
    assert_eq!(
        j.evidence,
        "client's encrypted flight was 653 bytes; Finished alone is 53 (TLS_AES_128_GCM_SHA256)"
    );
    let (a, ctx) = tls13_flow(&[sv13()], &[ext(43, &[3, 4])], &[120, 53]);
    assert_eq!(judge(a.facts(), &ctx).0.verdict, Verdict::TlsUnknownAuth, "103 bytes fit no rule");
}

#[test]
fn tls13_early_data_and_psk() {
    let ed = [sv13(), ext(42, &[]), ext(45, &[1, 1]), ext(41, &[0; 40])];
    let (a, ctx) = tls13_flow(&ed, &[ext(43, &[3, 4])], &[400, 53]);
    let (j, _) = judge(a.facts(), &ctx);
    assert_eq!(j.verdict, Verdict::TlsUnknownAuth, "0-RTT data or a certificate: cannot tell");
    assert!(j.warnings.iter().any(|w| w == "client offered 0-RTT early data"));
    let ch = a.facts().client_hello.as_ref().expect("hello");
    assert!(ch.early_data && ch.pre_shared_key && ch.psk_key_exchange_modes == vec![1]);
    let (a, ctx) = tls13_flow(&ed, &[ext(43, &[3, 4]), ext(41, &[0, 0])], &[400, 21, 53]);
    assert!(a.facts().server_hello.as_ref().is_some_and(|s| s.psk_accepted));
    assert_eq!(
        judge(a.facts(), &ctx).0.evidence,
        "TLS 1.3 PSK resumption: no certificates on the wire"
    );
}

#[test]
fn malformed_certificate_list_is_not_empty() {
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &record(22, &client_hello(&[])), Timestamp(0));
    let mut s = record(22, &server_hello(0xc02f, &[]));
    s.extend(record(22, &hs_msg(11, &[0, 0, 10, 0, 0, 20, 1, 2])));
    a.feed(Dir::ToClient, &s, Timestamp(0));
    let c = a.facts().server_certs.as_ref().expect("listed");
    assert!(c.malformed && !c.is_empty() && c.count == 0);
    assert_eq!(
        a.facts().server_hello.as_ref().and_then(|s| s.cipher_name),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
}

#[test]
fn alpn_and_sni_are_escaped() {
    let alpn = ext(16, &[0, 7, 2, b'h', b'2', 3, 0xff, b'\\', 0]);
    let sni = ext(0, b"\x00\x08\x00\x00\x05a\x01b.c");
    let mut a = TlsAnalyzer::new(Limits::default());
    a.feed(Dir::ToServer, &record(22, &client_hello(&[sni, alpn])), Timestamp(0));
    let ch = a.facts().client_hello.as_ref().expect("hello");
    assert_eq!(ch.alpn, vec!["h2".to_string(), "\\xff\\\\\\x00".to_string()]);
    assert_eq!(ch.sni.as_deref(), Some("a\\x01b.c"));
    assert_eq!(ch.extensions, vec![0, 16]);
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let starts: [&[u8]; 5] =
        [&[22, 3, 3], &[23, 3, 3], &[22, 3, 1, 0, 60, 1], &[0x80], &[21, 3, 3, 0, 2]];
    for i in 0..100_000u32 {
        let len = (xorshift(&mut seed) % if i % 100 == 0 { 2000 } else { 80 }) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        if i % 2 == 0 {
            let s = starts[(xorshift(&mut seed) % 5) as usize];
            for (j, &x) in s.iter().enumerate() {
                if let Some(y) = b.get_mut(j) {
                    *y = x;
                }
            }
        }
        let _ = sniff(&b);
        let _ = peek_client_hello(&b, 4096);
        let limits = Limits { max_buffer: 1 + (xorshift(&mut seed) % 4096) as usize };
        let mut a = TlsAnalyzer::new(limits);
        let mut rest = &b[..];
        while !rest.is_empty() {
            let n = 1 + (xorshift(&mut seed) % 40) as usize;
            let (chunk, r) = rest.split_at(n.min(rest.len()));
            let dir =
                if xorshift(&mut seed).is_multiple_of(4) { Dir::ToClient } else { Dir::ToServer };
            a.feed(dir, chunk, Timestamp(i as i64));
            if xorshift(&mut seed).is_multiple_of(50) {
                a.gap(dir, xorshift(&mut seed) % 100);
            }
            rest = r;
            assert!(a.buffered() <= 2 * (limits.max_buffer + 11), "bounded per direction");
        }
        let _ = a.wants_bytes();
        let _ = judge(a.facts(), &FlowContext { closed: i % 3 == 0, ..Default::default() });
    }
}

#[test]
fn mutated_real_streams_never_panic() {
    let mut seed = 0xdead_beef_cafe_f00d;
    let vectors: Vec<Vector> = VECTORS.iter().map(|n| load(n)).collect();
    for _ in 0..3000 {
        let v = &vectors[(xorshift(&mut seed) % vectors.len() as u64) as usize];
        let mut m = Vector { c2s: v.c2s.clone(), s2c: v.s2c.clone(), chunks: v.chunks.clone() };
        for _ in 0..1 + xorshift(&mut seed) % 4 {
            let side = if xorshift(&mut seed).is_multiple_of(2) { &mut m.c2s } else { &mut m.s2c };
            let at = (xorshift(&mut seed) % side.len().min(700) as u64) as usize;
            side[at] = xorshift(&mut seed) as u8;
        }
        let (a, ctx) = replay(&m, Limits { max_buffer: 2048 });
        let (j, _) = judge(a.facts(), &ctx);
        if j.verdict == Verdict::Mtls {
            assert!(!j.evidence.is_empty());
        }
    }
}
