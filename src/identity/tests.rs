//! The fixture PKI (fixtures/pki, made by fixtures/make-fixtures.sh with openssl) read back:
//! expected values come from `openssl x509 -noout -text -fingerprint -sha256 -serial`.

use super::*;
use crate::classify::tls::{ClientHelloFacts, DecryptedHandshake, ServerHelloFacts, Version};
use std::sync::Arc;

fn pem(name: &str) -> Vec<Arc<[u8]>> {
    let path = format!("{}/fixtures/pki/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let blocks = x509_parser::pem::Pem::iter_from_buffer(&text);
    blocks.map(|p| Arc::from(p.expect("PEM block").contents)).collect()
}

fn chain_of(names: &[&str]) -> CertChain {
    let der: Vec<Arc<[u8]>> = names.iter().flat_map(|n| pem(n)).collect();
    CertChain {
        count: der.len() as u32,
        parsed: true,
        message_len: der.iter().map(|d| d.len() as u32 + 3).sum::<u32>() + 3,
        der,
        ..Default::default()
    }
}

/// 2026-11-25T00:00:00Z: a day after the fixture PKI was made (its notBefore is 2026-11-24).
const AT_2026: Timestamp = Timestamp(1_795_564_800 * Timestamp::NANOS_PER_SEC);
/// 2020-01-01T12:00:00Z: inside expired-client.crt's one day of validity.
const AT_2020: Timestamp = Timestamp(1_577_880_000 * Timestamp::NANOS_PER_SEC);

fn read(names: &[&str], side: Side, at: Timestamp) -> CertInfo {
    let c = chain_of(names);
    cert::read_chain(&c.der, c.count, side, at).expect("a certificate")
}

#[test]
fn linkerd_leaf_reads_as_sa_ns() {
    let info = read(&["web.chain.pem"], Side::Server, AT_2026);
    assert_eq!(info.short_identity().as_deref(), Some("web.emojivoto"));
    assert_eq!(info.subject, "CN=web.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    assert_eq!(info.issuer, "CN=identity.linkerd.cluster.local");
    assert_eq!(info.sans.dns, ["web.emojivoto.serviceaccount.identity.linkerd.cluster.local"]);
    assert!(info.sans.uri.is_empty() && info.sans.ip.is_empty());
    assert_eq!(info.serial, "116e9a61df280797");
    assert_eq!(info.sha256, "a79d706d10846f618c2f7c5fafe171fd542c37a1b68eab8157ffb730cabfc3fb");
    assert_eq!(info.key.as_deref(), Some("ec-p256"));
    assert_eq!(info.chain_length, 2);
    assert_eq!(cert::rfc3339_secs(info.not_before.expect("nb")), "2026-11-24T01:20:48Z");
    assert_eq!(cert::rfc3339_secs(info.not_after.expect("na")), "2046-11-19T01:20:48Z");
    assert!(info.flags.is_empty(), "{:?}", info.problems);
}

#[test]
fn rsa_key_size() {
    let info = read(&["web-rsa.crt"], Side::Server, AT_2026);
    assert_eq!(info.key.as_deref(), Some("rsa-2048"));
    assert_eq!(info.serial, "78e43a32455129c4");
}

#[test]
fn istio_leaves_carry_spiffe_ids() {
    for sa in ["backend", "frontend", "productpage", "reviews"] {
        let info = read(&[&format!("istio-{sa}.crt")], Side::Client, AT_2026);
        let uri = format!("spiffe://cluster.local/ns/default/sa/{sa}");
        assert_eq!(info.short_identity().as_deref(), Some(uri.as_str()));
        let s = info.spiffe.as_ref().expect("spiffe");
        assert_eq!(s.trust_domain, "cluster.local");
        assert_eq!(s.namespace.as_deref(), Some("default"));
        assert_eq!(s.service_account.as_deref(), Some(sa));
        assert_eq!(info.subject, "");
        // An empty subject is fine: the URI SAN names the workload.
        assert!(!info.has(CertFlag::NoIdentity), "{:?}", info.flags);
    }
    let reviews = read(&["istio-reviews.crt"], Side::Server, AT_2026);
    assert_eq!(
        reviews.sha256,
        "532e3f7438862736 50146dbead1ac1e617ebe13c0d8f172a74ae75a64d81d62e".replace(' ', "")
    );
}

#[test]
fn expired_client_is_expired_in_2026_and_valid_in_2020() {
    let late = read(&["expired-client.crt"], Side::Client, AT_2026);
    assert_eq!(late.flags, [CertFlag::Expired]);
    assert_eq!(late.serial, "2001");
    assert!(
        late.problems[0].starts_with("client certificate expired at 2020-01-02T00:00:00Z"),
        "{:?}",
        late.problems
    );
    let early = read(&["expired-client.crt"], Side::Client, AT_2020);
    assert!(early.flags.is_empty(), "{:?}", early.flags);
    let before = read(&["expired-client.crt"], Side::Client, Timestamp(0));
    assert_eq!(before.flags, [CertFlag::NotYetValid]);
}

#[test]
fn self_signed_server() {
    let info = read(&["selfsigned.crt"], Side::Server, AT_2026);
    assert_eq!(info.flags, [CertFlag::SelfSigned]);
    assert_eq!(info.sha256, "04a68455a9b370b5880bea147981afbc7e4cd9ad9088d8e39dbedacbef302825");
    assert!(info.problems[0].contains("self-signed"));
}

#[test]
fn chain_that_skips_its_issuer_does_not_link() {
    let info = read(&["web.crt", "ca.crt"], Side::Server, AT_2026);
    assert_eq!(info.flags, [CertFlag::ChainDoesNotLink]);
    assert!(info.problems[0].contains("identity.linkerd.cluster.local"), "{:?}", info.problems);
    let whole = read(&["web.crt", "issuer.crt", "ca.crt"], Side::Server, AT_2026);
    assert!(whole.flags.is_empty(), "{:?}", whole.flags);
}

#[test]
fn garbage_is_unparseable_but_fingerprinted() {
    let der: Vec<Arc<[u8]>> = vec![Arc::from(&b"not a certificate"[..])];
    let info = cert::read_chain(&der, 1, Side::Client, AT_2026).expect("info");
    assert_eq!(info.flags, [CertFlag::Unparseable]);
    assert_eq!(info.short_identity(), None);
    assert_eq!(info.sha256.len(), 64);
    assert!(cert::read_chain(&[], 0, Side::Client, AT_2026).is_none());
}

#[test]
fn rfc3339_before_the_epoch() {
    assert_eq!(cert::rfc3339_secs(0), "1970-01-01T00:00:00Z");
    assert_eq!(cert::rfc3339_secs(-1), "1969-12-31T23:59:59Z");
    assert_eq!(cert::rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(cert::rfc3339_secs(253_402_300_799), "9999-12-31T23:59:59Z");
    // Past four-digit years the date is still right, in as many digits as it takes.
    assert_eq!(cert::rfc3339_secs(253_402_300_800), "10000-01-01T00:00:00Z");
}

/// Formatted by hand: the same text as humantime's for every second it can show (a sweep of
/// 1970..=9999 in uneven steps, and each day's edges around leap years and century rules).
#[test]
fn rfc3339_secs_agrees_with_humantime() {
    let mut seconds: Vec<i64> = (0..253_402_300_800).step_by(7_919_993).collect();
    for day in [951_696_000, 951_782_400, 4_107_456_000, 4_107_542_400, 13_574_563_200] {
        seconds.extend([day - 1, day, day + 86_399, day + 86_400]);
    }
    for t in seconds {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64);
        let want = humantime::format_rfc3339_seconds(time).to_string();
        assert_eq!(cert::rfc3339_secs(t), want, "second {t}");
    }
}

fn tls(version: Version, sni: &str) -> TlsFacts {
    TlsFacts {
        client_hello: Some(ClientHelloFacts {
            sni: Some(sni.into()),
            supported_versions: vec![Version::TLS13, Version::TLS12],
            ..Default::default()
        }),
        server_hello: Some(ServerHelloFacts { version, ..Default::default() }),
        ..Default::default()
    }
}

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";

#[test]
fn tls12_mutual_with_linkerd_shaped_certs_is_not_linkerd() {
    let mut f = tls(Version::TLS12, WEB);
    f.server_certs = Some(chain_of(&["web.chain.pem"]));
    f.client_certs = Some(chain_of(&["emoji.chain.pem"]));
    let ids = identify(&f, AT_2026, 9443);
    let client = ids.client.clone().expect("client");
    let server = ids.server.clone().expect("server");
    assert_eq!(client.identity.as_deref(), Some("emoji.emojivoto"));
    assert_eq!(server.identity.as_deref(), Some("web.emojivoto"));
    assert_eq!((client.source, server.source), (IdentitySource::Clear, IdentitySource::Clear));
    assert_eq!(ids.mesh.mesh, None);
    assert!(ids.mesh.signals.iter().any(|s| s.contains("only TLS 1.3")));
    assert!(ids.warnings().is_empty());
}

#[test]
fn decrypted_chains_win_over_clear_ones() {
    let mut f = tls(Version::TLS13, WEB);
    f.decrypted = Some(DecryptedHandshake {
        server_certs: Some(chain_of(&["web.chain.pem"])),
        client_certs: Some(chain_of(&["expired-client.chain.pem"])),
        ..Default::default()
    });
    let ids = identify(&f, AT_2026, 8443);
    let client = ids.client.clone().expect("client");
    assert_eq!(client.source, IdentitySource::Decrypted);
    assert_eq!(client.flags(), [CertFlag::Expired]);
    assert_eq!(ids.mesh.mesh, Some(Mesh::Linkerd));
    let m = ids.mesh.identity.clone().expect("mesh identity");
    assert_eq!((m.service_account.as_str(), m.source), ("web", MeshSource::Certificate));
    assert_eq!(ids.warnings().len(), 1);
}

#[test]
fn tls13_without_keys_names_the_server_from_sni() {
    let ids = identify(&tls(Version::TLS13, WEB), AT_2026, 8443);
    assert_eq!(ids.client, None);
    let server = ids.server.clone().expect("server");
    assert_eq!(
        (server.identity.as_deref(), server.source),
        (Some("web.emojivoto"), IdentitySource::Sni)
    );
    assert_eq!(ids.mesh.mesh, Some(Mesh::Linkerd));
    assert_eq!(ids.mesh.identity.expect("mesh identity").source, MeshSource::Sni);
}

#[test]
fn istio_spiffe_certs_mark_istio() {
    let mut f = tls(Version::TLS12, "reviews.default.svc.cluster.local");
    f.server_certs = Some(chain_of(&["istio-reviews.crt", "istio-ca.crt"]));
    f.client_certs = Some(chain_of(&["istio-productpage.crt", "istio-ca.crt"]));
    let ids = identify(&f, AT_2026, 9080);
    assert_eq!(ids.mesh.mesh, Some(Mesh::Istio));
    let m = ids.mesh.identity.expect("mesh identity");
    assert_eq!((m.service_account.as_str(), m.namespace.as_str()), ("reviews", "default"));
    assert_eq!(ids.client.expect("client").short().as_deref(), Some("productpage.default"));
}

#[test]
fn client_certificate_without_san_or_cn_names_nobody() {
    // istio-ca.crt: subject O=cluster.local, no SAN, no CN (self-signed root).
    let info = read(&["istio-ca.crt"], Side::Client, AT_2026);
    assert!(info.has(CertFlag::NoIdentity) && info.has(CertFlag::SelfSigned), "{:?}", info.flags);
    assert_eq!(info.short_identity(), None);
    assert!(info.problems.iter().any(|p| p.contains("carries no identity")));
    // A server is named by the SNI the client checked: the flag is for clients only.
    let server = read(&["istio-ca.crt"], Side::Server, AT_2026);
    assert!(!server.has(CertFlag::NoIdentity));
}

#[test]
fn a_cached_chain_is_still_judged_at_each_flows_time() {
    let mut cache = cert::ChainCache::default();
    let der = pem("expired-client.crt");
    for (at, want) in [
        (AT_2026, vec![CertFlag::Expired]),
        (AT_2020, vec![]),
        (Timestamp(0), vec![CertFlag::NotYetValid]),
        (AT_2026, vec![CertFlag::Expired]),
    ] {
        let cached = cache.read(&der, 1, Side::Client, at).unwrap();
        assert_eq!(cached, cert::read_chain(&der, 1, Side::Client, at).unwrap());
        assert_eq!(cached.flags, want);
    }
    // The same bytes presented by the other side are another entry (its sentences differ).
    let as_server = cache.read(&der, 1, Side::Server, AT_2026).unwrap();
    assert!(as_server.problems[0].starts_with("server certificate expired"));
    // A chain that does not link keeps its link flag after the validity flags on a hit too.
    let mut broken = pem("web.crt");
    broken.extend(pem("ca.crt"));
    for _ in 0..2 {
        let info = cache.read(&broken, 2, Side::Server, AT_2026).unwrap();
        assert_eq!(info, cert::read_chain(&broken, 2, Side::Server, AT_2026).unwrap());
        assert_eq!(info.flags, [CertFlag::ChainDoesNotLink]);
    }
}

#[test]
fn cached_identities_equal_uncached_ones_on_every_fixture_shape() {
    let mut cache = IdentityCache::default();
    let mut facts =
        tls(Version::TLS12, "web.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    facts.server_certs = Some(chain_of(&["web.crt", "issuer.crt"]));
    facts.client_certs = Some(chain_of(&["emoji.crt", "issuer.crt"]));
    let ch = facts.client_hello.as_mut().unwrap();
    ch.cipher_suites = vec![0x0a0a, 0x1301, 0xc02f];
    ch.extensions = vec![0x0000, 0x0010, 0x002b, 0x000d];
    ch.signature_algorithms = vec![0x0403, 0x0804];
    for _ in 0..2 {
        let cached = identify_cached(&facts, AT_2026, 443, &mut cache);
        let fresh = identify(&facts, AT_2026, 443);
        assert_eq!(cached, fresh);
        assert!(cached.ja4.is_some());
    }
    // A different hello is not served the first one's fingerprint.
    facts.client_hello.as_mut().unwrap().cipher_suites.push(0x1302);
    assert_eq!(identify_cached(&facts, AT_2026, 443, &mut cache), identify(&facts, AT_2026, 443));
}
