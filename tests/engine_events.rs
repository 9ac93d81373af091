//! Engine events (`drain_decided`) over every fixture capture: what a live capture reports
//! before a flow ends must agree with what the flow ends as.

use mtlscope::capture::{CaptureReader, PacketRef};
use mtlscope::decode::LinkType;
use mtlscope::engine::{Engine, EngineConfig, PacketStats};
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

/// Every flow record an engine produces from one capture, and its packet counters, packets fed
/// one by one or in the reader's batches (`next_packets` / `push_batch`, as `analyze` feeds
/// them).
fn records(path: &std::path::Path, batched: bool) -> (Vec<FlowRecord>, PacketStats) {
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
    (out, engine.stats().clone())
}

#[test]
fn batched_packets_give_the_same_flows_as_one_by_one() {
    let mut flows = 0;
    for path in fixtures() {
        let (one, one_stats) = records(&path, false);
        let (many, many_stats) = records(&path, true);
        assert_eq!(format!("{many:#?}"), format!("{one:#?}"), "{}", path.display());
        assert_eq!(many_stats, one_stats, "{}", path.display());
        assert_eq!(one_stats.link_types.values().sum::<u64>(), one_stats.packets);
        flows += one.len();
    }
    assert!(flows > 50, "only {flows} flows in the fixtures");
}

/// A batch mixing link types (the API allows it; the reader never makes one) counts each
/// packet under its own link type, as packets fed one by one are.
#[test]
fn a_batch_of_mixed_link_types_counts_each_packet_under_its_own() {
    let path = fixtures().into_iter().find(|p| p.ends_with("http1_veth.pcap")).expect("fixture");
    let bytes = std::fs::read(path).unwrap();
    let mut reader = CaptureReader::new(&bytes[..]).unwrap();
    let mut frames = Vec::new();
    while reader.next_packet(&mut |p| frames.push((p.ts, p.data.to_vec(), p.orig_len))).unwrap() {}
    assert!(frames.len() > 8, "{} frames", frames.len());
    // Runs of 1, 2 and 3 packets of the capture's link type, and of an unknown one.
    let links = [1, 999, 999, 1, 1, 999, 999, 999, 1];
    let batch: Vec<PacketRef<'_>> = frames
        .iter()
        .zip(links.iter().cycle())
        .map(|((ts, data, orig_len), &link)| PacketRef {
            ts: *ts,
            link: LinkType(link),
            data,
            orig_len: *orig_len,
            iface: 0,
        })
        .collect();
    let mut batched = Engine::new(EngineConfig::default());
    batched.push_batch(&batch);
    let mut single = Engine::new(EngineConfig::default());
    batch.iter().for_each(|p| single.push(p));
    assert_eq!(batched.stats(), single.stats());
    let unknown = batch.iter().filter(|p| p.link.0 == 999).count() as u64;
    assert_eq!(batched.stats().link_types.get(&999), Some(&unknown));
    assert_eq!(batched.stats().link_types.get(&1), Some(&(batch.len() as u64 - unknown)));
}
