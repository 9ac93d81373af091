//! Evaluation: levels, edges, could-not-verify, exit codes for every case, baselines and the
//! suggested allow rules.

mod check_common;

use check_common::*;
use mtlscope::check::{
    evaluate, suggested_allow, Baseline, CheckArgs, CheckFlow, CheckInput, CheckInputStats,
    EdgeStatus, Level, Outcome, Policy,
};
use mtlscope::inventory::Scope;
use mtlscope::verdict::Verdict;

fn run(flows: &[CheckFlow]) -> mtlscope::check::CheckReport {
    evaluate(&Policy::default(), &opts(), flows, inputs())
}

#[test]
fn require_levels_table() {
    use Verdict::*;
    // (verdict, passes mtls, passes tls)
    let table = [
        (Mtls, true, true),
        (TlsServerAuth, false, true),
        (TlsUnknownAuth, false, true),
        (HandshakeFailed, false, true),
        (Plaintext, false, false),
        (NoEncryption, false, false),
        (Opaque, false, false),
    ];
    for (v, mtls, tls) in table {
        assert_eq!(Level::Mtls.passes(v), mtls, "{v} at mtls");
        assert_eq!(Level::Tls.passes(v), tls, "{v} at tls");
        let f = web_to_emoji(v);
        let r = run(std::slice::from_ref(&f));
        assert_eq!(r.exit_code(), if mtls { 0 } else { 1 }, "{v} default policy");
        let mut o = opts();
        o.level = Some(Level::Tls);
        let r = evaluate(&Policy::default(), &o, [&f], inputs());
        assert_eq!(r.exit_code(), if tls { 0 } else { 1 }, "{v} --require tls");
    }
    // no-payload: nothing to judge, either way; it is not traffic for --expect-traffic.
    let r = run(&[web_to_emoji(Verdict::NoPayload)]);
    assert_eq!((r.exit_code(), r.edges[0].status), (0, EdgeStatus::NoPayload));
    let mut o = opts();
    o.min_flows = 1;
    let r = evaluate(&Policy::default(), &o, [&web_to_emoji(Verdict::NoPayload)], inputs());
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn policy_level_and_cli_override() {
    let p = Policy::from_yaml("version: 1\nlevel: tls\n", "p.yaml").unwrap();
    let f = checkout_to_payments(Verdict::TlsServerAuth);
    assert_eq!(evaluate(&p, &opts(), [&f], inputs()).exit_code(), 0);
    let mut o = opts();
    o.level = Some(Level::Mtls);
    let r = evaluate(&p, &o, [&f], inputs());
    assert_eq!((r.exit_code(), r.level), (1, Level::Mtls));
}

#[test]
fn violations_add_up_by_edge_not_by_ephemeral_port() {
    let mut flows = Vec::new();
    for (i, v) in [Verdict::Mtls, Verdict::Plaintext, Verdict::Plaintext, Verdict::TlsServerAuth]
        .into_iter()
        .enumerate()
    {
        let mut f = web_to_emoji(v);
        f.client_port = 40000 + i as u16;
        f.id = i as u64;
        flows.push(f);
    }
    flows.push(checkout_to_payments(Verdict::Mtls));
    flows.push(checkout_to_payments(Verdict::Mtls));
    let r = run(&flows);
    assert_eq!(r.edges.len(), 2);
    let bad = &r.edges[0];
    assert_eq!(bad.key.to_string(), "emojivoto/web -> emojivoto/emoji:8080");
    assert_eq!((bad.status, bad.flows, bad.violating_flows), (EdgeStatus::Violation, 4, 3));
    assert_eq!(bad.worst(), Verdict::Plaintext);
    assert_eq!(bad.example.id, 1, "the first of the worst flows is the evidence");
    assert_eq!(bad.reasons.len(), 1);
    let good = &r.edges[1];
    assert_eq!(good.key.to_string(), "shop/checkout -> service shop/payments:443");
    assert_eq!((good.status, good.flows), (EdgeStatus::Pass, 2));
    assert_eq!(r.counts.judged, 6);
    assert_eq!(r.counts.violating, 3);
    assert_eq!(mtlscope::check::text::headline(&r), "FAIL: 1 edge carries plaintext between pods");
}

#[test]
fn edges_fall_back_to_addresses_without_workloads() {
    let a = flow(Scope::PodToPod, None, None, 6379, Verdict::Plaintext);
    let mut b = a.clone();
    b.client_port = 50000;
    let r = run(&[a, b]);
    assert_eq!(r.edges.len(), 1);
    assert_eq!(r.edges[0].key.to_string(), "192.0.2.10 -> 192.0.2.20:6379");
    assert_eq!(r.edges[0].flows, 2);
}

fn stats(unreadable: &[&str]) -> CheckInputStats {
    let mut s = inputs();
    for p in unreadable {
        s.inputs.push(CheckInput {
            path: p.to_string(),
            error: Some("not a pcap or pcapng file".into()),
            truncated_frames: 0,
        });
    }
    s
}

#[test]
fn exit_codes_for_every_case() {
    let good = web_to_emoji(Verdict::Mtls);
    let bad = web_to_emoji(Verdict::Plaintext);
    let mut lossy = web_to_emoji(Verdict::TlsUnknownAuth);
    lossy.handshake_lossy = true;
    let expired = Policy::from_yaml(
        "version: 1\nallow:\n  - {name: old, why: x, expires: 2026-01-01, match: {port: 1}}\n",
        "p.yaml",
    )
    .unwrap();
    let expect = |min: u64| {
        let mut o = opts();
        o.min_flows = min;
        o
    };
    let def = Policy::default();
    // (case, policy, options, flows, inputs, outcome)
    let cases: Vec<(&str, &Policy, _, Vec<&CheckFlow>, CheckInputStats, Outcome)> = vec![
        ("pass", &def, expect(1), vec![&good], inputs(), Outcome::Pass),
        ("violation", &def, expect(1), vec![&good, &bad], inputs(), Outcome::Fail),
        ("expired allow rule", &expired, expect(1), vec![&good], inputs(), Outcome::Fail),
        (
            "empty capture, traffic expected",
            &def,
            expect(1),
            vec![],
            inputs(),
            Outcome::CouldNotVerify,
        ),
        ("empty capture, nothing expected", &def, expect(0), vec![], inputs(), Outcome::Pass),
        ("too few flows", &def, expect(3), vec![&good, &good], inputs(), Outcome::CouldNotVerify),
        ("lossy capture", &def, expect(1), vec![&good, &lossy], inputs(), Outcome::CouldNotVerify),
        (
            "unreadable input",
            &def,
            expect(0),
            vec![&good],
            stats(&["node2.pcap"]),
            Outcome::CouldNotVerify,
        ),
        (
            "violation wins over unreadable",
            &def,
            expect(0),
            vec![&bad],
            stats(&["x.pcap"]),
            Outcome::Fail,
        ),
    ];
    for (name, policy, o, flows, ins, want) in cases {
        let r = evaluate(policy, &o, flows, ins);
        assert_eq!(r.outcome, want, "{name}: {:?}", r.could_not_verify);
        assert_eq!(r.exit_code(), [0, 1, 2][want as usize], "{name}");
        let head = mtlscope::check::text::headline(&r);
        let prefix = ["PASS: ", "FAIL: ", "COULD NOT VERIFY: "][want as usize];
        assert!(head.starts_with(prefix), "{name}: {head}");
    }
    assert_eq!(Outcome::Pass.exit_code(), 0);
    assert_eq!(Outcome::Fail.exit_code(), 1);
    assert_eq!(Outcome::CouldNotVerify.exit_code(), 2);
}

#[test]
fn invalid_policy_and_baseline_could_not_verify() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        check: CheckArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let bad_policy = dir.path().join("policy.yaml");
    std::fs::write(&bad_policy, "version: 1\nallow:\n  - name: x\n    match: {port: 1}\n").unwrap();
    let bad_baseline = dir.path().join("baseline.json");
    std::fs::write(&bad_baseline, r#"{"schema":"other/v9","created":"2026-01-01","edges":[]}"#)
        .unwrap();
    let args = Cmd::parse_from(["check", "--policy", bad_policy.to_str().unwrap()]).check;
    let e = args.load_policy().unwrap_err();
    assert!(e.to_string().contains("allow[0]: missing field `why`"), "{e}");
    let args = Cmd::parse_from(["check", "--baseline", bad_baseline.to_str().unwrap()]).check;
    let e = args.options(today()).unwrap_err();
    assert!(e.to_string().contains("baseline schema 'other/v9'"), "{e}");
    let args = Cmd::parse_from(["check", "--max-lossy", "150"]).check;
    assert!(args.options(today()).is_err());
    // The CLI maps any of these to the could-not-verify code.
    assert_eq!(Outcome::CouldNotVerify.exit_code(), 2);
}

#[test]
fn no_traffic_explains_a_missing_inventory() {
    // Without an inventory every network flow is `unknown`: nothing is judged.
    let f = flow(Scope::Unknown, None, None, 8080, Verdict::Plaintext);
    let mut o = opts();
    o.min_flows = 1;
    let r = evaluate(&Policy::default(), &o, [&f, &f], inputs());
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.could_not_verify[0].contains("none of the 2 network flows could be placed"),
        "{:?}",
        r.could_not_verify
    );
    let r = evaluate(&Policy::default(), &o, [], inputs());
    assert!(r.could_not_verify[0].contains("no TCP flows at all"), "{:?}", r.could_not_verify);
}

#[test]
fn loss_below_the_limit_is_reported_not_failed() {
    let mut flows: Vec<CheckFlow> = (0..19).map(|_| web_to_emoji(Verdict::Mtls)).collect();
    let mut lossy = checkout_to_payments(Verdict::TlsUnknownAuth);
    lossy.handshake_lossy = true;
    flows.push(lossy.clone());
    let r = run(&flows); // 1 of 20 = 5% < 10%
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.counts.unverifiable, 1);
    assert!(mtlscope::check::text::render(&r)
        .contains("capture loss: 0 frames cut by snaplen; 1 of 20 judged flows lost handshake bytes (limit 10%)"));
    assert!(r.edges.iter().any(|e| e.status == EdgeStatus::Unverifiable));
    let mut o = opts();
    o.max_lossy_percent = 4.0;
    let r = evaluate(&Policy::default(), &o, &flows, inputs());
    assert_eq!(r.exit_code(), 2);
    assert!(r.could_not_verify[0].starts_with("1 of 20 judged flows (5%) lost handshake bytes"));
    // Plaintext is plaintext however lossy the capture.
    let mut plain = web_to_emoji(Verdict::Plaintext);
    plain.handshake_lossy = true;
    assert_eq!(run(&[plain]).exit_code(), 1);
}

#[test]
fn baseline_round_trip_known_new_fixed() {
    let web = web_to_emoji(Verdict::Plaintext);
    let pay = checkout_to_payments(Verdict::TlsServerAuth);
    let r = run(&[web.clone(), pay.clone()]);
    let baseline = Baseline::from_report(&r);
    assert_eq!(baseline.edges.len(), 2);
    // Stable and sorted: the same report gives byte-identical JSON, and it reads back.
    let json = baseline.to_json();
    assert_eq!(json, Baseline::from_report(&r).to_json());
    let back = Baseline::from_json(&json, "b.json").unwrap();
    assert_eq!(back, baseline);
    let edges: Vec<&str> = back.edges.iter().map(|e| e.edge.as_str()).collect();
    assert_eq!(
        edges,
        ["emojivoto/web -> emojivoto/emoji:8080", "shop/checkout -> service shop/payments:443"]
    );
    assert!(json.contains("\"schema\": \"mtlscope-baseline/v1\""));

    // Same violations with the baseline: known, pass.
    let mut o = opts();
    o.baseline = Some(back.clone());
    let r = evaluate(&Policy::default(), &o, [&web, &pay], inputs());
    assert_eq!(r.exit_code(), 0);
    assert!(r.edges.iter().all(|e| e.status == EdgeStatus::Known));
    assert_eq!((r.counts.known, r.counts.violating), (2, 0));

    // A new edge fails; payments now passes (fixed, seen); web has no traffic (fixed, unseen).
    let new = flow(
        Scope::PodToPod,
        Some(pod("shop", "cart")),
        Some(pod("shop", "redis")),
        6379,
        Verdict::Plaintext,
    );
    let r =
        evaluate(&Policy::default(), &o, [&new, &checkout_to_payments(Verdict::Mtls)], inputs());
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.edges[0].key.to_string(), "shop/cart -> shop/redis:6379");
    let fixed: Vec<(&str, bool)> =
        r.fixed.iter().map(|f| (f.entry.edge.as_str(), f.seen)).collect();
    assert_eq!(
        fixed,
        [
            ("emojivoto/web -> emojivoto/emoji:8080", false),
            ("shop/checkout -> service shop/payments:443", true)
        ]
    );
    let text = mtlscope::check::text::render(&r);
    assert!(text.contains("FIXED  shop/checkout -> service shop/payments:443 (now passes): remove it from the baseline"), "{text}");

    // Worse than recorded: tls-server-auth in the baseline, plaintext now.
    let worse = checkout_to_payments(Verdict::Plaintext);
    let r = evaluate(&Policy::default(), &o, [&worse], inputs());
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.edges[0].baseline.as_ref().unwrap().worst, "tls-server-auth");
}

#[test]
fn write_baseline_adopts_todays_violations() {
    let web = web_to_emoji(Verdict::Plaintext);
    let mut r = run(std::slice::from_ref(&web));
    assert_eq!(r.exit_code(), 1);
    let b = r.adopt_baseline();
    assert_eq!(r.exit_code(), 0, "the written baseline is in force for the run");
    assert_eq!(r.edges[0].status, EdgeStatus::Known);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    b.write(&path).unwrap();
    let mut o = opts();
    o.baseline = Some(Baseline::load(&path).unwrap());
    assert_eq!(evaluate(&Policy::default(), &o, [&web], inputs()).exit_code(), 0);
}

#[test]
fn the_suggested_allow_rule_silences_its_edge() {
    let node = node_to_web(10250, Verdict::Plaintext);
    let flows = [
        web_to_emoji(Verdict::Plaintext),
        checkout_to_payments(Verdict::TlsServerAuth),
        flow(Scope::PodToPod, None, None, 6379, Verdict::Opaque),
        node.clone(),
    ];
    let require = "require:\n  - {name: kubelet, match: {scope: node-to-pod, port: 10250}}\n";
    let base = Policy::from_yaml(&format!("version: 1\n{require}"), "p.yaml").unwrap();
    let r = evaluate(&base, &opts(), &flows, inputs());
    assert_eq!(r.edges_with(EdgeStatus::Violation).count(), 4);
    let mut allow = String::new();
    for e in r.edges_with(EdgeStatus::Violation) {
        let snippet = suggested_allow(e, today());
        let one = format!("version: 1\n{require}allow:\n{}", indent(&snippet));
        let p =
            Policy::from_yaml(&one, "suggested.yaml").unwrap_or_else(|err| panic!("{err}\n{one}"));
        let again = evaluate(&p, &opts(), &flows, inputs());
        let same = again.edges.iter().find(|x| x.key == e.key).unwrap();
        assert_eq!(same.status, EdgeStatus::Allowed, "{one}");
        assert_eq!(
            again.edges_with(EdgeStatus::Allowed).count(),
            1,
            "it allows only its edge:\n{one}"
        );
        allow.push_str(&indent(&snippet));
    }
    let all =
        Policy::from_yaml(&format!("version: 1\n{require}allow:\n{allow}"), "all.yaml").unwrap();
    assert_eq!(evaluate(&all, &opts(), &flows, inputs()).exit_code(), 0);
    let snippet = suggested_allow(&r.edges[0], today());
    assert_eq!(
        snippet,
        "- name: web-to-emoji-8080\n  why: \"TODO: why emojivoto/web -> emojivoto/emoji:8080 may be plaintext\"\n  expires: 2026-08-30\n  match:\n    scope: pod-to-pod\n    client: {namespace: emojivoto, workload: web}\n    server: {namespace: emojivoto, workload: emoji}\n    port: 8080\n    verdict: [plaintext]\n"
    );
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

#[test]
fn write_files_writes_baseline_junit_and_sarif() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        check: CheckArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let args = Cmd::parse_from([
        "check",
        "--write-baseline",
        &p("b.json"),
        "--junit",
        &p("j.xml"),
        "--sarif",
        &p("s.sarif"),
    ])
    .check;
    let mut r = run(&[web_to_emoji(Verdict::Plaintext)]);
    args.write_files(&mut r).unwrap();
    assert_eq!(r.exit_code(), 0, "the written baseline is in force");
    assert_eq!(Baseline::load(dir.path().join("b.json").as_path()).unwrap().edges.len(), 1);
    assert!(std::fs::read_to_string(p("j.xml"))
        .unwrap()
        .contains("<skipped message=\"known violation"));
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("s.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"][0]["baselineState"], "unchanged");
    let bad = Cmd::parse_from(["check", "--junit", "/nonexistent-dir/j.xml"]).check;
    let e = bad.write_files(&mut r).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent-dir/j.xml: "), "{e}");
}

#[test]
fn an_identity_mismatch_is_a_violation_whatever_the_verdict() {
    let mismatch = "server side: the wire identity web.emojivoto.serviceaccount.identity.linkerd.cluster.local (service account web in emojivoto) is not pod emojivoto/emoji's (service account emoji in emojivoto)";
    let mut f = web_to_emoji(Verdict::Mtls);
    f.identity_mismatches = vec![mismatch.into()];
    let ok = web_to_emoji(Verdict::Mtls);
    let r = run(&[f.clone(), ok.clone()]);
    assert_eq!(r.exit_code(), 1);
    assert_eq!((r.counts.violating, r.counts.passed, r.counts.identity_mismatches), (1, 1, 1));
    let e = &r.edges[0];
    assert_eq!(e.status, EdgeStatus::Violation);
    assert!(e.identity_only());
    assert_eq!(e.identity_mismatches, [mismatch]);
    let text = mtlscope::check::text::render(&r);
    assert_eq!(
        text.lines().next().unwrap(),
        "FAIL: 1 edge carries a mesh identity that does not match the pod (IDENTITY MISMATCH)"
    );
    assert!(text.contains(&format!("  identity: IDENTITY MISMATCH: {mismatch}")), "{text}");
    // The suggested rule names the verdict that was seen, so it is valid policy YAML.
    let snippet = suggested_allow(e, today());
    assert!(snippet.contains("verdict: [mtls]"), "{snippet}");
    let policy = Policy::from_yaml(&format!("version: 1\nallow:\n{snippet}"), "p.yaml").unwrap();
    assert_eq!(evaluate(&policy, &opts(), [&f], inputs()).exit_code(), 0, "allowed");
    // --require tls does not excuse it, nor does capture loss (the identity was seen).
    let mut o = opts();
    o.level = Some(Level::Tls);
    let mut lossy = f.clone();
    lossy.handshake_lossy = true;
    assert_eq!(evaluate(&Policy::default(), &o, [&lossy], inputs()).exit_code(), 1);
    // Not judged (node-to-pod under the default policy): reported, not failing.
    let mut node = node_to_web(4143, Verdict::Mtls);
    node.identity_mismatches = vec![mismatch.into()];
    assert_eq!(run(&[node]).exit_code(), 0);
    // A plaintext edge with a mismatch too keeps the not-mTLS headline.
    let mut plain = checkout_to_payments(Verdict::TlsServerAuth);
    plain.identity_mismatches = vec![mismatch.into()];
    let r = run(&[plain, f]);
    let first = mtlscope::check::text::render(&r).lines().next().unwrap().to_string();
    assert!(first.starts_with("FAIL: 1 edge between pods is not mTLS (1 tls-server-auth); 1 edge carries a mesh identity"), "{first}");
}
