//! Every OpenSSL vector, replayed in its recorded interleaving: facts and verdict.

use super::*;
use crate::verdict::{Proof, Verdict};

fn pki_der(name: &str) -> Vec<u8> {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/streams/pki/");
    std::fs::read(format!("{p}{name}.der")).expect("pki der")
}

fn expect(
    name: &str,
    verdict: Verdict,
    cc: ClientCert,
    proof: Option<Proof>,
) -> (TlsAnalyzer, Judgement) {
    let (a, j, got_cc) = judged(name);
    assert_eq!(
        (j.verdict, got_cc, j.proof),
        (verdict, cc, proof),
        "{name}: {j:?}\n{}",
        a.facts().message_summary()
    );
    assert!(!a.wants_bytes(), "{name}: handshake facts settled");
    assert_eq!(a.buffered(), 0, "{name}: nothing held after the handshake");
    (a, j)
}

#[test]
fn every_vector_gets_a_verdict_and_settles() {
    for name in VECTORS {
        let (a, j, _) = judged(name);
        assert!(!j.evidence.is_empty(), "{name}");
        assert!(!a.wants_bytes(), "{name}");
        assert!(a.facts().client.error.is_none() && a.facts().server.error.is_none(), "{name}");
        assert_eq!(a.facts().client.bytes, load(name).c2s.len() as u64);
    }
}

#[test]
fn tls13_server_auth() {
    let (a, j) =
        expect("tls13_server_auth", Verdict::TlsServerAuth, ClientCert::NotRequested, None);
    let f = a.facts();
    assert_eq!(
        j.evidence,
        "client's encrypted flight was Finished only (53 bytes): no certificate requested"
    );
    let ch = f.client_hello.as_ref().expect("ClientHello");
    assert_eq!(ch.sni.as_deref(), Some("server.test"));
    assert!(ch.offers(Version::TLS13));
    assert_eq!(ch.legacy_version, Version::TLS12);
    assert!(ch.key_share_groups.contains(&29), "x25519 share: {:?}", ch.key_share_groups);
    assert!(
        ch.extensions.contains(&43) && ch.cipher_suites_count as usize == ch.cipher_suites.len()
    );
    let sh = f.server_hello.as_ref().expect("ServerHello");
    assert_eq!(
        (sh.version, sh.cipher_suite, sh.cipher_name),
        (Version::TLS13, 0x1301, Some("TLS_AES_128_GCM_SHA256"))
    );
    assert_eq!(f.finished_record_len, Some(53));
    assert_eq!(f.tls13_client_flight.map(|fl| fl.reading), Some(FlightReading::FinishedOnly));
    assert_eq!(f.message_summary(), "ClientHello, ServerHello");
    assert_eq!(f.client.records.change_cipher_spec, 1);
    assert!(f.server_certs.is_none(), "TLS 1.3 certificates are encrypted");
}

#[test]
fn tls13_mutual_inferred_for_every_key_type() {
    for name in
        ["tls13_mutual_ecdsa", "tls13_mutual_rsa", "tls13_mutual_ed25519", "tls13_hrr_mutual"]
    {
        let (a, j) = expect(name, Verdict::Mtls, ClientCert::Sent, Some(Proof::Inferred));
        assert!(j.evidence.starts_with("client's encrypted flight was "), "{}", j.evidence);
        assert!(
            j.evidence.ends_with("; Finished alone is 53 (TLS_AES_128_GCM_SHA256)"),
            "{}",
            j.evidence
        );
        let fl = a.facts().tls13_client_flight.expect("flight");
        assert_eq!(fl.records, 3, "{name}: Certificate, CertificateVerify, Finished records");
        let FlightReading::Certificate { bytes } = fl.reading else { panic!("{name}") };
        assert!(bytes > 400, "{name}: {bytes}");
    }
}

#[test]
fn tls13_other_suites_change_the_finished_size() {
    let (a, j) =
        expect("tls13_aes256_mutual", Verdict::Mtls, ClientCert::Sent, Some(Proof::Inferred));
    assert_eq!(a.facts().finished_record_len, Some(69));
    assert!(
        j.evidence.ends_with("Finished alone is 69 (TLS_AES_256_GCM_SHA384)"),
        "{}",
        j.evidence
    );
    let (a, j) =
        expect("tls13_ccm8_mutual", Verdict::Mtls, ClientCert::Sent, Some(Proof::Inferred));
    assert_eq!((a.facts().finished_record_len, a.facts().aead_tag_len), (Some(45), Some(8)));
    assert!(j.evidence.ends_with("(TLS_AES_128_CCM_8_SHA256)"), "{}", j.evidence);
}

#[test]
fn tls13_empty_certificate() {
    let (a, j) = expect("tls13_empty_cert", Verdict::TlsServerAuth, ClientCert::Empty, None);
    assert_eq!(a.facts().client.encrypted_records.first().map(|r| r.len), Some(25));
    assert_eq!(
        j.evidence,
        "client's encrypted flight (25 + 53 bytes) was an empty Certificate and Finished: asked for a certificate, the client sent none"
    );
}

#[test]
fn tls13_required_certificate_missing_fails() {
    let (_, j) =
        expect("tls13_required_missing", Verdict::HandshakeFailed, ClientCert::Empty, None);
    assert_eq!(
        j.evidence,
        "server answered the client's flight with one alert-sized encrypted record (19 bytes) and the connection closed: it rejected the client's empty Certificate"
    );
}

#[test]
fn tls13_hello_retry() {
    let (a, j) = expect("tls13_hrr_mutual", Verdict::Mtls, ClientCert::Sent, Some(Proof::Inferred));
    let f = a.facts();
    assert_eq!(f.client_hellos, 2);
    assert_eq!(f.hello_retry.and_then(|h| h.selected_group), Some(24));
    assert_eq!(f.message_summary(), "ClientHello, HelloRetryRequest, ClientHello, ServerHello");
    assert!(
        j.warnings
            .iter()
            .any(|w| w == "HelloRetryRequest: the server asked for key share secp384r1"),
        "{:?}",
        j.warnings
    );
    assert_eq!(
        f.client_hello.as_ref().map(|c| c.key_share_groups.clone()),
        Some(vec![29]),
        "first hello kept"
    );
}

#[test]
fn tls13_client_rejects_server_certificate() {
    let (_, j) =
        expect("tls13_client_rejects_server", Verdict::HandshakeFailed, ClientCert::Unknown, None);
    assert_eq!(
        j.evidence,
        "client sent fatal alert unknown_ca (48) after the server's encrypted flight"
    );
}

#[test]
fn tls13_psk_resumption() {
    let (a, j) = expect("tls13_psk_resumed", Verdict::TlsUnknownAuth, ClientCert::Unknown, None);
    let f = a.facts();
    assert!(f.server_hello.as_ref().is_some_and(|s| s.psk_accepted));
    let ch = f.client_hello.as_ref().expect("hello");
    assert!(ch.pre_shared_key && ch.psk_key_exchange_modes.contains(&1));
    assert_eq!(j.evidence, "TLS 1.3 PSK resumption: no certificates on the wire");
}

#[test]
fn tls12_server_auth() {
    let (a, j) =
        expect("tls12_server_auth", Verdict::TlsServerAuth, ClientCert::NotRequested, None);
    let f = a.facts();
    assert_eq!(
        f.message_summary(),
        format!(
            "ClientHello, ServerHello, Certificate(2 certs, {} B), ServerKeyExchange, ServerHelloDone, ClientKeyExchange, NewSessionTicket",
            f.server_certs.as_ref().map_or(0, |c| c.message_len)
        )
    );
    assert_eq!(f.server_certs.as_ref().map(|c| c.der[0].to_vec()), Some(pki_der("server")));
    assert!(j.evidence.starts_with("TLS 1.2 handshake completed without CertificateRequest"));
    // Finished after CCS is encrypted: logged as a record, never parsed.
    assert_eq!(
        f.client.encrypted_records.first().map(|r| r.content_type),
        Some(ContentType::HANDSHAKE)
    );
}

#[test]
fn tls12_mutual_observed() {
    for name in ["tls12_mutual", "tls12_ticket_full", "tls12_downgrade_mutual"] {
        let (a, j) = expect(name, Verdict::Mtls, ClientCert::Sent, Some(Proof::Observed));
        let f = a.facts();
        let c = f.client_certs.as_ref().expect("client chain");
        assert_eq!(*c.der[0], *pki_der("client-ecdsa"), "{name}");
        assert_eq!(c.count, 2, "{name}: OpenSSL sends leaf + CA");
        assert!(f.certificate_request.as_ref().is_some_and(|cr| cr.cert_types.contains(&64)));
        assert!(f.certificate_verify);
        assert_eq!(
            j.evidence,
            format!("client sent Certificate (2 certs, {} bytes) and CertificateVerify after CertificateRequest", c.message_len)
        );
    }
}

#[test]
fn tls12_empty_and_missing_certificates() {
    let (a, j) = expect("tls12_empty_cert", Verdict::TlsServerAuth, ClientCert::Empty, None);
    assert!(a.facts().client_certs.as_ref().is_some_and(|c| c.is_empty() && c.message_len == 3));
    assert_eq!(
        j.evidence,
        "server sent CertificateRequest; the client answered with an empty Certificate"
    );
    let (_, j) =
        expect("tls12_required_missing", Verdict::HandshakeFailed, ClientCert::Empty, None);
    assert_eq!(
        j.evidence,
        "server sent fatal alert handshake_failure (40) after client's empty Certificate"
    );
    let (_, j) = expect(
        "tls12_client_rejects_server",
        Verdict::HandshakeFailed,
        ClientCert::NotRequested,
        None,
    );
    assert_eq!(j.evidence, "client sent fatal alert unknown_ca (48) after server's Certificate");
}

#[test]
fn tls12_null_cipher_is_not_encryption() {
    let (a, j) = expect("tls12_null_cipher", Verdict::NoEncryption, ClientCert::NotRequested, None);
    assert!(a.facts().server_hello.as_ref().is_some_and(|s| s.null_cipher));
    assert_eq!(
        j.evidence,
        "negotiated TLS_RSA_WITH_NULL_SHA256: records are not encrypted; the client was not asked for a certificate"
    );
}

#[test]
fn tls12_resumption() {
    let (a, j) =
        expect("tls12_session_id_resumed", Verdict::TlsUnknownAuth, ClientCert::Unknown, None);
    assert!(
        a.facts().abbreviated
            && a.facts().server_hello.as_ref().is_some_and(|s| s.session_id_echoed)
    );
    assert_eq!(j.evidence, "TLS 1.2 session resumption by session id: no certificates on the wire");
    let (full, _) =
        expect("tls12_ticket_full", Verdict::Mtls, ClientCert::Sent, Some(Proof::Observed));
    let (a, j) = expect("tls12_ticket_resumed", Verdict::TlsUnknownAuth, ClientCert::Unknown, None);
    assert_eq!(
        j.evidence,
        "TLS 1.2 session resumption by session ticket: no certificates on the wire"
    );
    let issued = full.facts().session_ticket.expect("NewSessionTicket");
    let offered = a.facts().client_hello.as_ref().and_then(|c| c.session_ticket_hash);
    assert_eq!(
        offered,
        Some(issued.hash),
        "the resumed hello offers the ticket the full handshake issued"
    );
    assert_eq!(a.facts().message_summary(), "ClientHello, ServerHello");
}

#[test]
fn tls10_is_flagged() {
    let (_, j) =
        expect("tls10_server_auth", Verdict::TlsServerAuth, ClientCert::NotRequested, None);
    assert!(
        j.warnings.iter().any(|w| w == "negotiated TLS 1.0, deprecated (RFC 8996)"),
        "{:?}",
        j.warnings
    );
}

#[test]
fn feeding_one_direction_then_the_other_gives_the_same_verdict() {
    // The flow layer should feed in capture order; this is the worst case it could do.
    for name in VECTORS {
        let v = load(name);
        let (a, ctx) = replay(&v, Limits::default());
        let want = judge(a.facts(), &ctx);
        let mut b = TlsAnalyzer::new(Limits::default());
        b.feed(Dir::ToServer, &v.c2s, Timestamp(1));
        b.feed(Dir::ToClient, &v.s2c, Timestamp(2));
        let got = judge(b.facts(), &ctx);
        let same = got.0.verdict == want.0.verdict && got.1 == want.1;
        // Cross-direction order only matters to the "server answered with an alert" reading.
        assert!(same || *name == "tls13_required_missing", "{name}: {got:?} vs {want:?}");
        assert_eq!(b.facts().client_hello, a.facts().client_hello, "{name}");
    }
}

#[test]
fn flows_that_send_the_same_certificate_share_one_copy_of_it() {
    let (a, _) = expect("tls12_mutual", Verdict::Mtls, ClientCert::Sent, Some(Proof::Observed));
    let (b, _) =
        expect("tls12_ticket_full", Verdict::Mtls, ClientCert::Sent, Some(Proof::Observed));
    let leaf = |x: &TlsFacts| x.client_certs.as_ref().expect("client chain").der[0].clone();
    let (ca, cb) = (leaf(a.facts()), leaf(b.facts()));
    assert_eq!(*ca, *pki_der("client-ecdsa"));
    assert!(Arc::ptr_eq(&ca, &cb), "one shared copy, not one per flow");
    // Different certificates stay apart.
    let server = a.facts().server_certs.as_ref().expect("server chain").der[0].clone();
    assert!(!Arc::ptr_eq(&ca, &server) && *server == *pki_der("server"));
}
