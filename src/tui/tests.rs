//! Frames on ratatui's TestBackend from fixture captures replayed through the live pipeline,
//! and keys tested through actions.

use super::*;
use crate::live::source::{self, Counters, Sources, Speed};
use crate::live::{self as live_mod, LiveConfig};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Replays a fixture through `live::run` and feeds every event to a fresh App.
fn replayed(name: &str) -> App {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let file = std::fs::File::open(path).unwrap();
    let (tx, rx) = mpsc::sync_channel(1024);
    let (names_tx, names_rx) = mpsc::sync_channel(1);
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let t = std::thread::spawn(move || source::run_replay(file, Speed::Max, tx, c, names_tx, None));
    let interfaces = names_rx.recv().unwrap();
    let sources = Sources { rx, counters, interfaces, running: 1, threads: vec![t] };
    let cfg = LiveConfig {
        engine: crate::engine::EngineConfig::default(),
        summary_interval: Duration::ZERO,
        duration: None,
    };
    let mut app = App::new(false);
    let (summary, err) = live_mod::run(sources, &cfg, &|_| {}, &mut |ev| {
        update(&mut app, action_for_event(&ev));
        Ok(())
    });
    assert!(err.is_none());
    let mut summary = summary;
    summary.elapsed = Duration::ZERO; // not shown, but keep the state deterministic
    update(&mut app, Action::Summary(Box::new(summary)));
    app
}

fn frame(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| render::render(app, f)).unwrap();
    let buf = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn press(app: &mut App, c: KeyCode) {
    if let Some(a) = action_for_key(app, key(c)) {
        update(app, a);
    }
}

#[test]
fn edges_view_of_a_mixed_capture() {
    let app = replayed("mixed_any_sll2.pcap");
    assert!(app.health().contains("plaintext"), "{}", app.health());
    insta::assert_snapshot!(frame(&app));
}

#[test]
fn flows_view_after_moving_down_and_the_help_overlay() {
    let mut app = replayed("mixed_any_sll2.pcap");
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Flows);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.selected, 1);
    insta::assert_snapshot!("flows_view", frame(&app));
    press(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help", frame(&app));
}

#[test]
fn keys_filter_not_mtls_pause_clear_and_quit() {
    let mut app = replayed("mixed_any_sll2.pcap");
    let all = app.visible_flows().len();
    press(&mut app, KeyCode::Char('m'));
    assert!(app.visible_flows().iter().all(|r| r.verdict != Verdict::Mtls));
    assert!(app.visible_flows().len() < all);
    press(&mut app, KeyCode::Char('m'));
    press(&mut app, KeyCode::Char('/'));
    for c in "8443".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    assert!(app.editing_filter);
    press(&mut app, KeyCode::Char('q')); // typed into the filter, not quit
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.filter, "8443");
    assert!(!app.quit);
    assert!(app.visible_flows().iter().all(|r| r.server_label().ends_with(":8443")));
    press(&mut app, KeyCode::Char('p'));
    let before = app.flows.len();
    let row = replayed("http1_veth.pcap").flows.pop_first().unwrap().1;
    update(&mut app, Action::Flow(FlowEvent::Finished, Box::new(row)));
    assert_eq!(app.flows.len(), before, "paused: nothing new shown");
    press(&mut app, KeyCode::Char('c'));
    assert!(app.flows.is_empty());
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn export_writes_the_shown_flows_as_json() {
    let mut app = replayed("mixed_any_sll2.pcap");
    let dir = tempfile::tempdir().unwrap();
    app.export_path = dir.path().join("out.json");
    press(&mut app, KeyCode::Char('e'));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&app.export_path).unwrap()).unwrap();
    assert_eq!(doc["flows"].as_array().unwrap().len(), app.flows.len());
    assert!(app.status.as_deref().unwrap().starts_with("exported"));
}

#[test]
fn colors_only_when_asked() {
    let mut app = replayed("mixed_any_sll2.pcap");
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| render::render(&app, f)).unwrap();
    let plain =
        terminal.backend().buffer().content().iter().all(|c| c.fg == ratatui::style::Color::Reset);
    assert!(plain, "NO_COLOR: no colours");
    app.color = true;
    terminal.draw(|f| render::render(&app, f)).unwrap();
    let red =
        terminal.backend().buffer().content().iter().any(|c| c.fg == ratatui::style::Color::Red);
    assert!(red, "plaintext is red");
}
