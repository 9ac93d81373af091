//! No leaks (README, Hostile input): a real capture of curl sending secrets in a bearer token,
//! a cookie and a request body never shows them in any output format; with `--redact` the
//! query-string token and the path are gone too; key-log secrets are never echoed. Each
//! "never" is paired with a check that the same run did show what it should (the request
//! line, a decrypted verdict), so a test that looked at the wrong thing would fail.

use mtlscope::engine::EngineConfig;
use mtlscope::live::source::{self, Speed};
use mtlscope::live::{self, LiveConfig};
use mtlscope::tui::{self, Action, App};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CAPTURE: &str = "http1_secrets_veth.pcap";
/// Sent by curl in `Authorization`, `Cookie` and the body (fixtures/make-fixtures.sh).
const NEVER: [&str; 3] = [
    "hdr-secret-7f3a9c2e51d84b60",
    "cookie-secret-0b9d4e7a6c1f2358",
    "body-secret-5e2c8a17f4b39d06",
];
/// In the query string: part of the request line, shown unless `--redact`.
const QUERY: &str = "query-secret-9a4f1c6e3b7d2805";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Everything one command wrote: stdout, stderr and the report files it was asked for.
fn run(args: &[&str], files: &[&Path]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mtlscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("mtlscope runs");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{args:?} exited {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    for f in files {
        all.push_str(&std::fs::read_to_string(f).expect("report file written"));
    }
    all
}

/// Every output format of `analyze`, `check` and `live` for one capture, each as its own text.
fn every_output(capture: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let (junit, sarif) = (dir.path().join("r.xml"), dir.path().join("r.sarif"));
    let cap = capture.to_str().unwrap();
    let inv = fixture("inventory/emojivoto.json");
    let inv = inv.to_str().unwrap();
    let (j, s) = (junit.to_str().unwrap(), sarif.to_str().unwrap());
    let runs: Vec<(&str, Vec<&str>, Vec<&Path>)> = vec![
        ("analyze table", vec!["analyze", cap], vec![]),
        ("analyze json", vec!["analyze", "-o", "json", cap], vec![]),
        ("analyze table inventory", vec!["analyze", "--inventory", inv, "--flows", cap], vec![]),
        ("analyze json inventory", vec!["analyze", "-o", "json", "--inventory", inv, cap], vec![]),
        (
            "check text junit sarif github",
            vec![
                "check",
                cap,
                "--inventory",
                inv,
                "--junit",
                j,
                "--sarif",
                s,
                "--github-annotations",
                "always",
            ],
            vec![junit.as_path(), sarif.as_path()],
        ),
        (
            "check json",
            vec!["check", "-o", "json", cap, "--inventory", inv, "--require", "mtls"],
            vec![],
        ),
        ("live jsonl", vec!["live", "-r", cap, "-o", "jsonl"], vec![]),
    ];
    runs.into_iter()
        .map(|(name, mut args, files)| {
            args.extend_from_slice(extra);
            (name.to_string(), run(&args, &files))
        })
        .collect()
}

/// The terminal UI after a replay: the edges view, the flows view and the selected flow's
/// detail pane, drawn wide enough that nothing is cut.
fn tui_frames(capture: &Path, redact: bool) -> String {
    let file = std::fs::File::open(capture).unwrap();
    let sources = source::start_replay(file, Speed::Max, None);
    let mut engine = EngineConfig::default();
    engine.flow.redact = redact;
    // With handshake timelines, as the terminal UI runs.
    let cfg =
        LiveConfig { engine, summary_interval: Duration::ZERO, duration: None, timelines: true };
    let mut app = App::new(false);
    let (_, err) = live::run(sources, &cfg, &|_| {}, &mut |ev| {
        tui::update(&mut app, tui::action_for_event(&ev));
        Ok(())
    });
    assert!(err.is_none());
    let mut frames = frame(&app);
    tui::update(&mut app, Action::NextView);
    frames.push_str(&frame(&app));
    tui::update(&mut app, Action::Down);
    tui::update(&mut app, Action::Up);
    frames.push_str(&frame(&app));
    // The detail pane (timeline, request line) of the selected flow, full screen.
    tui::update(&mut app, Action::ToggleDetail);
    frames.push_str(&frame(&app));
    frames
}

fn frame(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(400, 40)).unwrap();
    terminal.draw(|f| tui::render::render(app, f)).unwrap();
    let buf = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        out.extend((0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()));
        out.push('\n');
    }
    out
}

#[test]
fn header_and_body_secrets_never_appear_and_the_request_line_does() {
    let mut outputs = every_output(&fixture(CAPTURE), &[]);
    outputs.push(("tui".into(), tui_frames(&fixture(CAPTURE), false)));
    for (name, text) in &outputs {
        for secret in NEVER {
            assert!(!text.contains(secret), "{name} shows {secret}:\n{text}");
        }
        assert!(!text.contains("Bearer") && !text.contains("password"), "{name}:\n{text}");
    }
    // The evidence a verdict needs is there: the request line (with its query) and Host.
    for name in
        ["analyze table", "analyze json", "check text junit sarif github", "live jsonl", "tui"]
    {
        let text = &outputs.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(
            text.contains(&format!("/api/items?token={QUERY}")),
            "{name} lacks the request line:\n{text}"
        );
    }
    let json = &outputs[1].1;
    assert!(json.contains("\"host\":\"10.77.0.2:8080\""), "{json}");
}

#[test]
fn redact_removes_the_query_token_path_and_host_everywhere() {
    let mut outputs = every_output(&fixture(CAPTURE), &["--redact"]);
    outputs.push(("tui".into(), tui_frames(&fixture(CAPTURE), true)));
    for (name, text) in &outputs {
        for secret in NEVER.iter().chain([&QUERY]) {
            assert!(!text.contains(secret), "{name} shows {secret}:\n{text}");
        }
        assert!(!text.contains("/api/items"), "{name} shows the path:\n{text}");
        assert!(!text.contains("Host: 10.77.0.2"), "{name} shows the Host header:\n{text}");
    }
    // Still judged, and the marker says what happened.
    for (name, text) in &outputs {
        if name.starts_with("analyze") || name == "live jsonl" || name == "tui" {
            assert!(text.contains("[redacted]"), "{name}:\n{text}");
            assert!(text.contains("plaintext"), "{name}:\n{text}");
        }
    }
}

/// The third field of every secret line of NSS key-log text.
fn keylog_secrets(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0].contains("SECRET")).then(|| f[2].to_ascii_lowercase())
        })
        .collect()
}

fn assert_no_secret(outputs: &[(String, String)], secrets: &[String]) {
    assert!(!secrets.is_empty());
    for (name, text) in outputs {
        let lower = text.to_ascii_lowercase();
        for s in secrets {
            // Any 16 hex digits of a secret would be a leak, not just the whole of it.
            for part in s.as_bytes().chunks(16).filter(|p| p.len() == 16) {
                let part = std::str::from_utf8(part).unwrap();
                assert!(!lower.contains(part), "{name} echoes key-log secret bytes {part}");
            }
        }
    }
}

#[test]
fn key_log_secrets_are_read_never_echoed() {
    let keylog = fixture("tls13_mutual_veth.keylog");
    let secrets = keylog_secrets(&std::fs::read_to_string(&keylog).unwrap());
    let outputs =
        every_output(&fixture("tls13_mutual_veth.pcap"), &["--keylog", keylog.to_str().unwrap()]);
    assert!(
        outputs[1].1.contains("\"proof\":\"decrypted\""),
        "the key log was used:\n{}",
        outputs[1].1
    );
    assert_no_secret(&outputs, &secrets);

    // A pcapng carrying its key log in a Decryption Secrets Block.
    let ng = fixture("tls13_injected_secrets.pcapng");
    let raw = std::fs::read(&ng).unwrap();
    let secrets = keylog_secrets(&String::from_utf8_lossy(&raw));
    let outputs = every_output(&ng, &[]);
    assert!(outputs[1].1.contains("\"proof\":\"decrypted\""), "{}", outputs[1].1);
    assert_no_secret(&outputs, &secrets);
}
