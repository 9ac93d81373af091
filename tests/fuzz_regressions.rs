//! Every input a fuzz target ever failed on, replayed through the same entry point
//! (`mtlscope::fuzzing`). Inputs live in `tests/data/fuzz-regressions/TARGET/`, each named after
//! what it found; the fuzz targets themselves are in `fuzz/` (see fuzz/README.md).

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("decode_packet", mtlscope::fuzzing::decode_packet),
    ("reassembly", mtlscope::fuzzing::reassembly),
    ("tls_stream", mtlscope::fuzzing::tls_stream),
    ("tls13_flight", mtlscope::fuzzing::tls13_flight),
    ("classify_stream", mtlscope::fuzzing::classify_stream),
    ("http_detect", mtlscope::fuzzing::http_detect),
    ("capture_read", mtlscope::fuzzing::capture_read),
    ("pipeline", mtlscope::fuzzing::pipeline),
    ("inventory_load", mtlscope::fuzzing::inventory_load),
    ("policy_parse", mtlscope::fuzzing::policy_parse),
];

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_saved_fuzz_input_runs_clean() {
    let mut replayed = 0;
    for (target, run) in TARGETS {
        for (name, bytes) in inputs(target) {
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}/{name} fails again");
            replayed += 1;
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let files = std::fs::read_dir(&dir).map_or(0, |d| d.count());
    assert!(
        files == 0 || replayed > 0,
        "tests/data/fuzz-regressions holds inputs for no known target"
    );
}

/// Replays one saved input (panics, as the fuzzer saw, if the bug is back).
fn replay(target: &str, name: &str) {
    let (_, run) = TARGETS.iter().find(|(t, _)| *t == target).expect("a known target");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz-regressions")
        .join(target)
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    run(&bytes);
}

/// `read_flight` added one to the AEAD tag length in u16: a tag of 0xffff overflowed.
#[test]
fn tls13_flight_tag_length_overflow() {
    replay("tls13_flight", "add-overflow-tag-0xffff");
}

/// A pcapng Process Information Block claiming 4 bytes made pcap-parser 0.17 compute 4 - 12
/// (a panic in debug builds, a wrapped length in release); now refused as corrupt.
#[test]
fn capture_read_pcapng_block_length_under_12() {
    replay("capture_read", "pcapng-block-length-under-12");
    replay("pipeline", "pcapng-block-length-under-12");
}

/// The directory names are the targets' names: an input saved under a misspelt target would
/// never run.
#[test]
fn saved_inputs_belong_to_known_targets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries {
        let name = e.expect("dir entry").file_name().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        assert!(TARGETS.iter().any(|(t, _)| *t == name), "unknown fuzz target directory {name}");
    }
}
