//! Every file of the malformed corpus (`tests/malformed_corpus`, derived from the fixtures on
//! each run) through the real binary, as JSON and as the table: no panic and no hang; either a
//! clear error naming the file and a byte offset (exit 2), or the flows that could be read
//! with a warning saying what was damaged (exit 0).

mod malformed_corpus;

use malformed_corpus::{corpus, Case, Expect, FlowKey, Keep};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A hang guard, not a performance bound: the largest case takes well under a second.
const TIMEOUT: Duration = Duration::from_secs(120);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `mtlscope analyze ARGS FILE`, killing it (by its own handle) if it outlives TIMEOUT.
fn analyze(file: &Path, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .arg("analyze")
        .args(args)
        .arg("--no-progress")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("spawn mtlscope");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}: still running after {TIMEOUT:?} (hang)", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).expect("read")).into_owned();
    Run {
        code: status.code().unwrap_or_else(|| panic!("{}: killed by {status}", file.display())),
        stdout: read(&out),
        stderr: read(&err),
    }
}

/// Flow endpoints (unordered) to verdict.
fn flows(doc: &Value) -> BTreeMap<FlowKey, String> {
    let ep = |v: &Value| format!("{}:{}", v["ip"].as_str().expect("ip"), v["port"]);
    doc["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| {
            let (a, b) = (ep(&f["client"]), ep(&f["server"]));
            let key = if a < b { (a, b) } else { (b, a) };
            (key, f["verdict"].as_str().expect("verdict").to_string())
        })
        .collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Checks one case; returns a one-line outcome for the summary.
fn check(case: &Case, dir: &Path, originals: &mut BTreeMap<&'static str, Value>) -> String {
    let file = dir.join(format!("{}.{}", case.name, ext(case.fixture)));
    std::fs::write(&file, &case.bytes).expect("write case");
    let shown = file.display().to_string();
    let json = analyze(&file, &["--format", "json"]);
    let table = analyze(&file, &["--format", "table", "--color", "never"]);
    for (what, run) in [("json", &json), ("table", &table)] {
        assert!(
            !run.stderr.contains("panicked"),
            "{}: {what} panicked:\n{}",
            case.name,
            run.stderr
        );
        assert!(
            matches!(run.code, 0 | 2),
            "{}: {what} exit {}:\n{}",
            case.name,
            run.code,
            run.stderr
        );
    }
    assert_eq!(json.code, table.code, "{}: JSON and table disagree", case.name);
    match &case.expect {
        Expect::Fatal => {
            assert_eq!(json.code, 2, "{}: expected an error, got:\n{}", case.name, json.stderr);
            let line = json.stderr.lines().find(|l| l.contains("error:")).unwrap_or_else(|| {
                panic!("{}: exit 2 without an error line:\n{}", case.name, json.stderr)
            });
            assert!(line.contains(&shown), "{}: error does not name the file: {line}", case.name);
            assert!(line.contains("at byte "), "{}: error names no offset: {line}", case.name);
            line.split(&format!("{shown}: ")).nth(1).unwrap_or(line).to_string()
        }
        Expect::Partial { warning, keep } => {
            assert_eq!(
                json.code, 0,
                "{}: expected partial results, got:\n{}",
                case.name, json.stderr
            );
            let doc: Value = serde_json::from_str(&json.stdout)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", case.name));
            let strings = |v: &Value| -> Vec<String> {
                let list = v.as_array().expect("warnings");
                list.iter().map(|w| w.as_str().expect("a string").to_string()).collect()
            };
            // Damage to a file or a packet is the input's warning (also on stderr); damage
            // inside a TLS stream is the flow's.
            let input_warnings = strings(&doc["inputs"][0]["warnings"]);
            let flow_warnings: Vec<String> = doc["flows"]
                .as_array()
                .expect("flows")
                .iter()
                .flat_map(|f| strings(&f["warnings"]))
                .collect();
            let warnings: Vec<&String> = input_warnings.iter().chain(&flow_warnings).collect();
            if let Some(w) = warning {
                assert!(
                    warnings.iter().any(|x| x.contains(w)),
                    "{}: no warning containing {w:?} in {warnings:?}",
                    case.name
                );
            }
            if !input_warnings.is_empty() {
                assert!(
                    table.stderr.contains(&format!("warning: {shown}: ")),
                    "{}: the table run printed no warning naming the file:\n{}",
                    case.name,
                    table.stderr
                );
            }
            let got = flows(&doc);
            let original = originals.entry(case.fixture).or_insert_with(|| {
                let run = analyze(&fixtures().join(case.fixture), &["--format", "json"]);
                serde_json::from_str(&run.stdout).expect("fixture JSON")
            });
            let want = flows(original);
            match keep {
                Keep::All => assert_eq!(got, want, "{}: flows or verdicts differ", case.name),
                Keep::Before(before) => {
                    let seen: BTreeSet<&FlowKey> = got.keys().collect();
                    for k in before {
                        assert!(
                            seen.contains(k),
                            "{}: lost flow {k:?} before the damage",
                            case.name
                        );
                    }
                }
                Keep::Nothing => assert!(got.is_empty(), "{}: flows from nothing", case.name),
                Keep::Some => assert!(
                    !got.is_empty() && got.len() <= want.len() + 1,
                    "{}: {} flows (fixture: {})",
                    case.name,
                    got.len(),
                    want.len()
                ),
            }
            let table_flows = table.stdout.lines().filter(|l| l.contains(':')).count();
            assert!(
                got.is_empty() || table_flows >= got.len(),
                "{}: table lists fewer flows",
                case.name
            );
            let shown: Vec<&str> = warnings.iter().map(|w| w.as_str()).collect();
            format!("{} flows; {}", got.len(), shown.join(" | "))
        }
    }
}

fn ext(fixture: &str) -> &str {
    fixture.rsplit('.').next().unwrap_or("pcap")
}

#[test]
fn every_malformed_capture_gives_partial_results_or_a_clear_error() {
    let cases = corpus(&fixtures());
    assert!(cases.len() >= 40, "the corpus shrank to {} cases", cases.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut originals = BTreeMap::new();
    for case in &cases {
        let outcome = check(case, dir.path(), &mut originals);
        println!("{:<55} {outcome}", case.name);
    }
}

/// The generator itself: the cases damage what they say they damage.
#[test]
fn the_corpus_is_what_it_claims() {
    let cases = corpus(&fixtures());
    let by_name: BTreeMap<&str, &Case> = cases.iter().map(|c| (c.name.as_str(), c)).collect();
    let frag = by_name["tls13_mutual_veth-client-hello-10000-fragments"];
    let original = std::fs::read(fixtures().join("tls13_mutual_veth.pcap")).expect("fixture");
    let p = malformed_corpus::Pcap::parse(&frag.bytes);
    let q = malformed_corpus::Pcap::parse(&original);
    assert_eq!(p.records.len(), q.records.len() - 1 + 10_000);
    let line = by_name["http1_veth-http-request-line-1mb"];
    assert!(line.bytes.len() > 1024 * 1024);
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
}
