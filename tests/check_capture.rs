//! End to end through the library: a fixture capture analysed, its flows placed with a
//! kubectl-shaped inventory (or none), turned into CheckFlows and judged.

use mtlscope::analyze::{analyze_reader, Analysis};
use mtlscope::check::{
    evaluate, CheckFlow, CheckInputStats, CheckOptions, Date, EdgeStatus, FlowPlacement, Outcome,
    Policy,
};
use mtlscope::engine::EngineConfig;
use mtlscope::inventory::{reasons, scope, Inventory, ReasonInput, Sources};
use mtlscope::report::protocol_of;
use mtlscope::verdict::Verdict;
use std::path::Path;

fn analyse(name: &str) -> Analysis {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let file = std::fs::File::open(&path).unwrap();
    let mut analysis = Analysis::default();
    analyze_reader(&mut analysis, name, file, &EngineConfig::default(), &mut |_, _| {});
    analysis
}

fn inventory() -> Inventory {
    let mut sources = Sources::new();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check/emojivoto-inventory.yaml");
    sources.load_file(&path).unwrap();
    Inventory::build(&sources)
}

/// What the CLI will do per flow: resolve both ends, scope, reasons, then the CheckFlow.
fn check_flows(a: &Analysis, inv: Option<&Inventory>) -> Vec<CheckFlow> {
    a.flows
        .iter()
        .map(|f| {
            let Some(inv) = inv else { return CheckFlow::from_analyzed(f, None) };
            let r = &f.record;
            let client = inv.resolve(r.client.ip(), r.first_seen);
            let server = inv.resolve(r.server.ip(), r.first_seen);
            let sc = scope(&client, &server, f.hop == mtlscope::analyze::Hop::Local);
            let why = reasons(&ReasonInput {
                verdict: f.judgement.verdict.as_str(),
                protocol: protocol_of(&r.classification),
                tls_mesh: None,
                client: &client,
                server: &server,
                port: r.server.port(),
            });
            let placement = FlowPlacement {
                client: &client,
                server: &server,
                scope: sc,
                reasons: &why,
                identity: None,
            };
            CheckFlow::from_analyzed(f, Some(placement))
        })
        .collect()
}

fn opts() -> CheckOptions {
    let mut o = CheckOptions::new(Date::new(2026, 6, 1).unwrap());
    o.min_flows = 1;
    o
}

#[test]
fn fixture_with_inventory_fails_on_the_plaintext_edges() {
    let a = analyse("mixed_any_sll2.pcap");
    let inv = inventory();
    let flows = check_flows(&a, Some(&inv));
    let r = evaluate(&Policy::default(), &opts(), &flows, CheckInputStats::from_inputs(&a.inputs));
    assert_eq!(r.outcome, Outcome::Fail, "{}", mtlscope::check::text::render(&r));
    let bad: Vec<_> = r.edges_with(EdgeStatus::Violation).collect();
    assert!(!bad.is_empty());
    for e in &bad {
        assert_eq!(e.key.client.to_string(), "emojivoto/web");
        assert_eq!(e.key.server.to_string(), "emojivoto/emoji");
        assert_ne!(e.worst(), Verdict::Mtls);
        assert!(!e.reasons.is_empty(), "{e:?}");
        assert_eq!(e.example.client.as_ref().unwrap().service_account.as_deref(), Some("web"));
    }
    let plain = bad.iter().find(|e| e.worst() == Verdict::Plaintext).expect("a plaintext edge");
    assert!(
        plain.reasons.iter().any(|x| x.code.as_str() == "client-not-meshed"),
        "{:?}",
        plain.reasons
    );
    assert!(r.edges_with(EdgeStatus::Pass).count() >= 1, "the mtls ports pass");
    assert!(r.counts.local >= 1, "the loopback flow is local, not judged");
    let text = mtlscope::check::text::render(&r);
    assert!(text.lines().next().unwrap().starts_with("FAIL: "), "{text}");
}

#[test]
fn fixture_without_inventory_cannot_verify() {
    let a = analyse("mixed_any_sll2.pcap");
    let flows = check_flows(&a, None);
    assert!(flows.iter().all(|f| matches!(f.scope.as_str(), "local" | "unknown")));
    let r = evaluate(&Policy::default(), &opts(), &flows, CheckInputStats::from_inputs(&a.inputs));
    assert_eq!(r.outcome, Outcome::CouldNotVerify);
    assert!(
        r.could_not_verify[0].contains("could be placed in the cluster"),
        "{:?}",
        r.could_not_verify
    );
    // A require rule on `unknown` judges them by address instead.
    let p = Policy::from_yaml(
        "version: 1\nrequire:\n  - {name: all-network, match: {scope: unknown}}\n",
        "p.yaml",
    )
    .unwrap();
    let r = evaluate(&p, &opts(), &flows, CheckInputStats::from_inputs(&a.inputs));
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(r.edges.iter().all(|e| e.key.client.is_ip()));
}

#[test]
fn an_unreadable_capture_cannot_verify() {
    let mut a = Analysis::default();
    analyze_reader(
        &mut a,
        "notes.txt",
        &b"not a capture at all"[..],
        &EngineConfig::default(),
        &mut |_, _| {},
    );
    let stats = CheckInputStats::from_inputs(&a.inputs);
    assert_eq!(stats.unreadable().count(), 1);
    let r =
        evaluate(&Policy::default(), &CheckOptions::new(Date::new(2026, 6, 1).unwrap()), [], stats);
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.could_not_verify[0].starts_with("capture notes.txt could not be read: "),
        "{:?}",
        r.could_not_verify
    );
}

#[test]
fn lossy_fixtures_mark_their_flows() {
    // snaplen 96: every TLS handshake is cut by the capture.
    let a = analyse("tls13_mutual_snaplen96.pcap");
    let flows = check_flows(&a, None);
    let lossy = flows.iter().filter(|f| f.handshake_lossy).count();
    assert!(lossy > 0, "{:?}", flows.iter().map(|f| (f.verdict, &f.warnings)).collect::<Vec<_>>());
}

#[test]
#[ignore = "prints the report for a person to read"]
fn print_fixture_report() {
    let a = analyse("mixed_any_sll2.pcap");
    let flows = check_flows(&a, Some(&inventory()));
    let r = evaluate(&Policy::default(), &opts(), &flows, CheckInputStats::from_inputs(&a.inputs));
    println!("{}", mtlscope::check::text::render(&r));
    for l in mtlscope::check::github::annotations(&r) {
        println!("{l}");
    }
}
