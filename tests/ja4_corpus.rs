//! JA4 / JA4S against the JA4 project's own captures and expected output
//! (`../shared/corpus/ja4/*.expected.txt`, the reference implementation's snapshot of each
//! capture). Every TCP stream the reference fingerprints must get the same JA4 and JA4S
//! from mtlscope. Skipped, with a message, when the corpus is not beside the checkout.

use mtlscope::analyze::{analyze_reader, Analysis};
use mtlscope::engine::EngineConfig;
use mtlscope::report::json;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("MTLSCOPE_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    dir.join("ja4").is_dir().then(|| dir.join("ja4"))
}

/// One stream of the reference snapshot.
#[derive(Debug, Default)]
struct Expected {
    tcp: bool,
    client: String,
    server: String,
    ja4: Option<String>,
    ja4s: Option<String>,
}

/// Reads the `rust/ja4/src/snapshots/...snap` section: a YAML list of streams whose
/// top-level keys are indented by two spaces.
fn expectations(text: &str) -> Vec<Expected> {
    let Some(start) = text.find("== rust/ja4/src/snapshots/") else {
        return Vec::new();
    };
    let mut out: Vec<Expected> = Vec::new();
    let (mut src, mut dst, mut sport, mut dport) = (String::new(), String::new(), "", "");
    for line in text[start..].lines() {
        if line.starts_with("- stream:") {
            out.push(Expected::default());
            continue;
        }
        let Some(e) = out.last_mut() else { continue };
        let Some((key, value)) = line.strip_prefix("  ").and_then(|l| l.split_once(": ")) else {
            continue;
        };
        match key {
            "transport" => e.tcp = value == "tcp",
            "src" => src = value.to_string(),
            "dst" => dst = value.to_string(),
            "src_port" => sport = value,
            "dst_port" => dport = value,
            "ja4" => e.ja4 = Some(value.to_string()),
            "ja4s" => e.ja4s = Some(value.to_string()),
            _ => {}
        }
        e.client = format!("{src} {sport}");
        e.server = format!("{dst} {dport}");
    }
    out
}

fn analyze(path: &Path) -> Value {
    let mut analysis = Analysis::default();
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cfg = EngineConfig::default();
    analyze_reader(&mut analysis, &path.display().to_string(), file, &cfg, &mut |_, _| {});
    serde_json::to_value(json::document(&analysis)).expect("document serializes")
}

fn endpoint(v: &Value) -> String {
    format!("{} {}", v["ip"].as_str().unwrap_or_default(), v["port"])
}

#[test]
fn ja4_and_ja4s_match_the_reference_on_its_captures() {
    let Some(dir) = corpus() else {
        eprintln!("ja4 corpus: skipped (../shared/corpus/ja4 not present; set MTLSCOPE_CORPUS)");
        return;
    };
    let mut checked = (0, 0);
    let mut errors = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".expected.txt"))
        .collect();
    files.sort();
    for exp_path in files {
        let text = std::fs::read_to_string(&exp_path).expect("expected.txt");
        let want: Vec<Expected> =
            expectations(&text).into_iter().filter(|e| e.tcp && e.ja4.is_some()).collect();
        if want.is_empty() {
            continue;
        }
        let capture = PathBuf::from(exp_path.to_string_lossy().trim_end_matches(".expected.txt"));
        let name = capture.file_name().unwrap_or_default().to_string_lossy().to_string();
        let doc = analyze(&capture);
        let flows = doc["flows"].as_array().cloned().unwrap_or_default();
        for e in want {
            let Some(f) = flows
                .iter()
                .find(|f| endpoint(&f["client"]) == e.client && endpoint(&f["server"]) == e.server)
            else {
                errors.push(format!("{name}: no flow {} -> {}", e.client, e.server));
                continue;
            };
            let got = |k: &str| f["tls"][k].as_str().map(str::to_string);
            for (key, value) in [("ja4", &e.ja4), ("ja4s", &e.ja4s)] {
                let Some(value) = value else { continue };
                if key == "ja4" {
                    checked.0 += 1
                } else {
                    checked.1 += 1
                }
                if got(key).as_ref() != Some(value) {
                    errors.push(format!(
                        "{name} {} -> {}: {key} {:?}, reference {value}",
                        e.client,
                        e.server,
                        got(key)
                    ));
                }
            }
        }
    }
    eprintln!("ja4 corpus: {} JA4 and {} JA4S values checked", checked.0, checked.1);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(checked.0 >= 10, "too few reference values found: {checked:?}");
}
