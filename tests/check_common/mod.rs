//! Realistic flows for the check tests: emojivoto (Linkerd demo) and a shop namespace.
#![allow(dead_code)]

pub mod schemas;

use mtlscope::check::{CheckFlow, CheckInput, CheckInputStats, CheckOptions, CheckWorkload, Date};
use mtlscope::inventory::{Reason, ReasonCode, Scope};
use mtlscope::verdict::Verdict;
use std::net::IpAddr;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn today() -> Date {
    Date::new(2026, 6, 1).unwrap()
}

pub fn opts() -> CheckOptions {
    CheckOptions::new(today())
}

pub fn inputs() -> CheckInputStats {
    CheckInputStats {
        inputs: vec![CheckInput { path: "capture.pcap".into(), error: None, truncated_frames: 0 }],
    }
}

/// A deployment pod: `ns/name` with pod `name-7d4b9c-xk2lp`, service account `name`.
pub fn pod(ns: &str, name: &str) -> CheckWorkload {
    let mut w = CheckWorkload::pod(ns, name, "Deployment", &format!("{name}-7d4b9c-xk2lp"), name);
    w.mesh = Some("linkerd".into());
    w
}

/// A flow from `client` to `server` with IPs derived from the names.
pub fn flow(
    scope: Scope,
    client: Option<CheckWorkload>,
    server: Option<CheckWorkload>,
    port: u16,
    verdict: Verdict,
) -> CheckFlow {
    let addr = |w: &Option<CheckWorkload>, last: u8| match w {
        Some(w) => {
            let h = w.workload.bytes().fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
            ip(&format!("10.244.{}.{}", h % 200 + 1, last))
        }
        None => ip(&format!("192.0.2.{last}")),
    };
    let evidence = match verdict {
        Verdict::Plaintext => "GET /api/list HTTP/1.1 in the clear (Host: emoji-svc:8080)",
        Verdict::Mtls => "client sent Certificate (2 certs, 1002 bytes) and CertificateVerify after CertificateRequest",
        Verdict::TlsServerAuth => "no CertificateRequest: only the server authenticated",
        Verdict::TlsUnknownAuth => "a capture gap hid the client's 1.3 handshake messages",
        _ => "see verdict",
    };
    let mut f = CheckFlow::new(
        scope,
        (addr(&client, 10), 41234),
        (addr(&server, 20), port),
        verdict,
        evidence,
    );
    f.client = client;
    f.server = server;
    if !matches!(verdict, Verdict::Mtls | Verdict::NoPayload) && scope.is_pod_to_pod() {
        f.reasons = vec![Reason {
            code: ReasonCode::ServerNotMeshed,
            message: "the server has no linkerd-proxy".into(),
        }];
    }
    f
}

/// emojivoto/web -> emojivoto/emoji:8080, pod-to-pod.
pub fn web_to_emoji(verdict: Verdict) -> CheckFlow {
    flow(
        Scope::PodToPod,
        Some(pod("emojivoto", "web")),
        Some(pod("emojivoto", "emoji")),
        8080,
        verdict,
    )
}

/// shop/checkout -> service shop/payments:443, pod-to-service.
pub fn checkout_to_payments(verdict: Verdict) -> CheckFlow {
    flow(
        Scope::PodToService,
        Some(pod("shop", "checkout")),
        Some(CheckWorkload::service("shop", "payments")),
        443,
        verdict,
    )
}

/// node kind-worker -> emojivoto/web:10250-ish (kubelet probes are node-to-pod).
pub fn node_to_web(port: u16, verdict: Verdict) -> CheckFlow {
    flow(
        Scope::NodeToPod,
        Some(CheckWorkload::node("kind-worker")),
        Some(pod("emojivoto", "web")),
        port,
        verdict,
    )
}

/// A run with one of everything: two violations, an allowed edge, a known (baselined) edge, a
/// passing edge, an expired allow rule, a fixed baseline entry; the evidence quotes awkward
/// bytes (markup, percent signs, newlines, a control character).
pub fn scenario() -> mtlscope::check::CheckReport {
    use mtlscope::check::{evaluate, Baseline, Policy};
    let policy = Policy::from_yaml(
        "version: 1\nallow:\n  - name: legacy-redis\n    why: redis 6 has no TLS (SHOP-1234)\n    expires: 2026-09-30\n    match: {server: {workload: shop/redis}, port: 6379}\n  - name: old-exception\n    why: \"temporary, <until> the 'migration' & more\"\n    expires: 2026-01-31\n    match: {namespace: legacy}\n",
        "ci/mtlscope-policy.yaml",
    )
    .unwrap();
    let mut web = web_to_emoji(Verdict::Plaintext);
    web.evidence =
        "GET /api/vote?choice=<b>%F0%9F\"&x='1' HTTP/1.1 in the clear\u{1}\n(Host: web:80)".into();
    let pay = checkout_to_payments(Verdict::TlsServerAuth);
    let redis = flow(
        Scope::PodToPod,
        Some(pod("shop", "cart")),
        Some(pod("shop", "redis")),
        6379,
        Verdict::Plaintext,
    );
    let voting = flow(
        Scope::PodToPod,
        Some(pod("emojivoto", "web")),
        Some(pod("emojivoto", "voting")),
        8080,
        Verdict::Mtls,
    );
    let known = flow(
        Scope::PodToPod,
        Some(pod("shop", "frontend")),
        Some(pod("shop", "catalog")),
        3550,
        Verdict::Plaintext,
    );
    // Baseline: the known edge, plus an edge that now passes.
    let before = evaluate(
        &Policy::default(),
        &opts(),
        [&known, &web_to_emoji(Verdict::Plaintext)],
        inputs(),
    );
    let mut baseline = Baseline::from_report(&before);
    baseline.edges.retain(|e| e.edge.starts_with("shop/"));
    let mut old = baseline.edges[0].clone();
    old.server.name = "voting".into();
    old.server.namespace = Some("emojivoto".into());
    old.client.name = "web".into();
    old.client.namespace = Some("emojivoto".into());
    old.port = 8080;
    old.edge = "emojivoto/web -> emojivoto/voting:8080".into();
    baseline.edges.push(old);
    let mut o = opts();
    o.baseline = Some(baseline);
    evaluate(&policy, &o, [&web, &pay, &redis, &voting, &known], inputs())
}
