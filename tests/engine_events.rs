//! Engine events (`drain_decided`) over every fixture capture: what a live capture reports
//! before a flow ends must agree with what the flow ends as.

use mtlscope::capture::CaptureReader;
use mtlscope::engine::{Engine, EngineConfig};
use mtlscope::flow::FlowRecord;
use mtlscope::verdict;
use std::collections::BTreeMap;

fn run(path: &std::path::Path) -> (Vec<FlowRecord>, Vec<FlowRecord>) {
    let mut cfg = EngineConfig::default();
    cfg.flow.events = true;
    let mut engine = Engine::new(cfg);
    let file = std::fs::File::open(path).unwrap();
    let mut reader = CaptureReader::new(file).unwrap();
    let mut decided = Vec::new();
    let mut finished = Vec::new();
    while let Ok(true) = reader.next_packet(&mut |p| engine.push(&p)) {
        // Drain after every packet, as often as a live capture could.
        decided.extend(engine.drain_decided());
        finished.extend(engine.drain_finished());
    }
    finished.extend(engine.finish());
    decided.extend(engine.drain_decided());
    (decided, finished)
}

fn fixtures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_decided_verdict_is_the_verdict_the_flow_ends_with() {
    let mut decided_total = 0;
    for path in fixtures() {
        let (decided, finished) = run(&path);
        let ends: BTreeMap<u64, &FlowRecord> = finished.iter().map(|f| (f.id, f)).collect();
        let mut last: BTreeMap<u64, &FlowRecord> = BTreeMap::new();
        for d in &decided {
            assert!(ends.contains_key(&d.id), "{}: flow {} never finished", path.display(), d.id);
            last.insert(d.id, d);
        }
        decided_total += decided.len();
        for (id, snap) in last {
            let early = verdict::judge(snap).0;
            let end = verdict::judge(ends[&id]).0;
            assert_eq!(
                early.verdict,
                end.verdict,
                "{} flow {id}: decided {:?} ({}) but ended {:?} ({})",
                path.display(),
                early.verdict,
                early.evidence,
                end.verdict,
                end.evidence
            );
        }
    }
    assert!(decided_total > 10, "the fixtures decide flows early: {decided_total}");
}

#[test]
fn tls_handshakes_are_decided_before_the_flow_ends() {
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/tls12_mutual_veth.pcap"
    ));
    let (decided, finished) = run(path);
    assert!(!finished.is_empty());
    let mtls: Vec<_> =
        decided.iter().filter(|d| verdict::judge(d).0.verdict == verdict::Verdict::Mtls).collect();
    assert!(!mtls.is_empty(), "the mutual handshake is reported while the flow is open");
    let mut ids: Vec<u64> = decided.iter().map(|d| d.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), decided.len(), "each flow reported once: its stage never changes again");
}

/// Every flow record an engine produces from one capture, packets fed one by one or in the
/// reader's batches (`next_packets` / `push_batch`, as `analyze` feeds them).
fn records(path: &std::path::Path, batched: bool) -> Vec<FlowRecord> {
    let mut engine = Engine::new(EngineConfig::default());
    let mut reader = CaptureReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut batches = 0;
    loop {
        let more = if batched {
            reader.next_packets(&mut |ps| engine.push_batch(ps)).map(|n| n > 0)
        } else {
            reader.next_packet(&mut |p| engine.push(&p))
        };
        if !more.unwrap() {
            break;
        }
        batches += 1;
        out.extend(engine.drain_finished());
    }
    out.extend(engine.finish());
    assert!(batches > 0 || out.is_empty(), "{}", path.display());
    out
}

#[test]
fn batched_packets_give_the_same_flows_as_one_by_one() {
    let mut flows = 0;
    for path in fixtures() {
        let one = records(&path, false);
        let many = records(&path, true);
        assert_eq!(format!("{many:#?}"), format!("{one:#?}"), "{}", path.display());
        flows += one.len();
    }
    assert!(flows > 50, "only {flows} flows in the fixtures");
}
