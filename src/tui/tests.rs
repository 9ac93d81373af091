//! Frames on ratatui's TestBackend from fixture captures replayed through the live pipeline,
//! and keys tested through actions.

use super::*;
use crate::live::source::{self, Speed};
use crate::live::{self as live_mod, LiveConfig};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use ratatui::Terminal;
use std::time::Duration;

/// Replays a fixture through `live::run` and feeds every event to a fresh App.
fn replayed(name: &str) -> App {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let file = std::fs::File::open(path).unwrap();
    let sources = source::start_replay(file, Speed::Max, None);
    let cfg = LiveConfig {
        engine: crate::engine::EngineConfig::default(),
        summary_interval: Duration::ZERO,
        duration: None,
        timelines: true,
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
    frame_sized(app, 80, 24)
}

fn frame_sized(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
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

/// The list as (verdict, client, server) in the order shown.
fn edge_order(app: &App) -> Vec<String> {
    app.edges()
        .iter()
        .map(|e| format!("{} {} -> {}", e.worst.as_str(), e.client, e.server))
        .collect()
}

#[test]
fn s_cycles_the_sort_order_of_edges_and_flows() {
    let mut app = replayed("mixed_any_sll2.pcap");
    assert_eq!(app.sort, SortKey::Worst);
    let worst = edge_order(&app);
    assert!(worst[0].starts_with("plaintext") && worst[3].starts_with("mtls"), "{worst:?}");

    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::LastSeen);
    assert_eq!(app.selected, 0, "a new order starts at the top");
    let seen: Vec<String> = app.edges().iter().map(|e| e.last_seen.clone()).collect();
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "newest first: {seen:?}");

    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Bytes);
    let bytes: Vec<u64> = app.edges().iter().map(|e| e.bytes).collect();
    assert_eq!(bytes, [7357, 4725, 272, 228], "most bytes first");
    let flow_bytes: Vec<u64> = app.visible_flows().iter().map(|r| r.dto.bytes).collect();
    assert!(flow_bytes.windows(2).all(|w| w[0] >= w[1]), "{flow_bytes:?}");
    insta::assert_snapshot!("edges_by_bytes", frame(&app));

    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Flows);
    // One flow per edge here: the ties keep the worst-first order.
    assert_eq!(edge_order(&app), worst);

    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Name);
    let names: Vec<(String, String)> =
        app.edges().iter().map(|e| (e.client.clone(), e.server.clone())).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names[0].0, "10.77.0.1");
    assert_eq!(names[3].0, "127.0.0.1");
    press(&mut app, KeyCode::Tab);
    let flows: Vec<String> = app.visible_flows().iter().map(|r| r.client_label()).collect();
    assert_eq!(flows.last().map(String::as_str), Some("127.0.0.1"), "{flows:?}");
    assert!(frame(&app).contains(" flows by name (s: sort, tab: edges) "));

    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Worst, "the cycle comes back to worst first");
}

#[test]
fn flow_count_sort_puts_the_busiest_edge_first() {
    let mut app = replayed("mixed_any_sll2.pcap");
    // A second and third flow on the mTLS edge (its flow again, under new ids).
    let mtls = app.flows.values().find(|r| r.verdict == Verdict::Mtls).unwrap().dto.id;
    for id in [100, 101] {
        let mut row = replayed("mixed_any_sll2.pcap").flows.remove(&mtls).unwrap();
        row.dto.id = id;
        update(&mut app, Action::Flow(FlowEvent::Finished, Box::new(row)));
    }
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('s'));
    }
    assert_eq!(app.sort, SortKey::Flows);
    let edges = app.edges();
    assert_eq!((edges[0].worst, edges[0].flows), (Verdict::Mtls, 3));
    press(&mut app, KeyCode::Tab);
    let first: Vec<Verdict> = app.visible_flows().iter().take(3).map(|r| r.verdict).collect();
    assert_eq!(first, [Verdict::Mtls; 3], "the busiest edge's flows first");
}

/// The mouse event's action, applied (it must have one).
fn click_or_scroll(app: &mut App, ev: MouseEvent, screen: Rect) {
    let action = action_for_mouse(app, ev, screen).expect("an action");
    update(app, action);
}

fn mouse(kind: MouseEventKind, column: u16, row: u16) -> MouseEvent {
    MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE }
}

#[test]
fn a_click_selects_a_row_and_the_wheel_scrolls() {
    let mut app = replayed("mixed_any_sll2.pcap");
    let screen = Rect::new(0, 0, 80, 24);
    let click = |row| mouse(MouseEventKind::Down(MouseButton::Left), 10, row);
    // 3 header lines, the list's title rule and its column header: row 5 is the first edge.
    let Some(a) = action_for_mouse(&app, click(7), screen) else { panic!("no action") };
    update(&mut app, a);
    assert_eq!(app.selected, 2);
    let shown = frame(&app);
    let line = shown.lines().nth(7).unwrap();
    assert!(line.contains("10.77.0.2:9444"), "the clicked line: {line}");
    assert_eq!(app.selected_flow().unwrap().dto.server.port, 9444, "the detail follows");
    assert!(action_for_mouse(&app, click(4), screen).is_none(), "the column header");
    assert!(action_for_mouse(&app, click(12), screen).is_none(), "below the last row");
    assert!(action_for_mouse(&app, click(1), screen).is_none(), "the header");

    for (kind, want) in [(MouseEventKind::ScrollDown, 3), (MouseEventKind::ScrollUp, 2)] {
        click_or_scroll(&mut app, mouse(kind, 0, 0), screen);
        assert_eq!(app.selected, want);
    }
    click_or_scroll(&mut app, mouse(MouseEventKind::ScrollDown, 0, 0), screen);
    click_or_scroll(&mut app, mouse(MouseEventKind::ScrollDown, 0, 0), screen);
    assert_eq!(app.selected, 3, "the wheel stops at the last row");

    // A click on the detail pane opens it full screen; the wheel then scrolls it.
    click_or_scroll(&mut app, click(20), screen);
    assert!(app.detail_zoom);
    click_or_scroll(&mut app, mouse(MouseEventKind::ScrollDown, 0, 0), screen);
    assert_eq!((app.selected, app.detail_scroll), (3, 1));
    click_or_scroll(&mut app, click(10), screen);
    assert!(!app.detail_zoom, "a click on the full detail closes it");
}

#[test]
fn a_click_finds_the_row_when_the_list_is_scrolled() {
    let mut app = replayed("mixed_any_sll2.pcap");
    // 10 lines tall: a list of 3 rows on screen (title rule and column header above).
    let screen = Rect::new(0, 0, 80, 3 + 5 + 8 + 1);
    press(&mut app, KeyCode::Tab);
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('j'));
    }
    assert_eq!(app.selected, 3);
    let main = render::areas(&app, screen).main;
    assert_eq!(render::list_offset(&app, main), 1, "the first row scrolled off");
    let click = mouse(MouseEventKind::Down(MouseButton::Left), 5, main.y + 2);
    click_or_scroll(&mut app, click, screen);
    assert_eq!(app.selected, 1, "the top visible row is the list's second");
}

#[test]
fn the_health_line_leaves_local_hops_out() {
    let app = replayed("mixed_any_sll2.pcap");
    // 127.0.0.1 -> 127.0.0.1:8081 is plaintext inside one pod: mentioned, not counted.
    assert_eq!(
        app.health(),
        "1 edge carries plaintext; 2 of 3 are not mTLS (+1 local hop in the clear)"
    );
    let local = replayed("local_hop_lo.pcap");
    assert!(local.flows.values().all(|r| r.local && r.verdict == Verdict::Plaintext));
    assert_eq!(local.health(), "no edge leaves a pod yet (+1 local hop in the clear)");
    let mtls = replayed("tls13_mutual_veth.pcap");
    assert_eq!(mtls.health(), "the one edge is mTLS");
    let mut both = replayed("tls12_mutual_veth.pcap");
    for (_, mut row) in replayed("tls12_server_auth_veth.pcap").flows {
        row.dto.id += 100; // both replays number their flow 1
        update(&mut both, Action::Flow(FlowEvent::Finished, Box::new(row)));
    }
    assert_eq!(both.health(), "1 of 2 edges are not mTLS");
}

#[test]
fn the_detail_shows_the_tls13_handshake_timeline() {
    let mut app = replayed("tls13_mutual_veth.pcap");
    let tl = app.selected_flow().unwrap().timeline.as_deref().expect("a TLS timeline");
    let lines: Vec<String> = tl.steps.iter().map(|s| s.line()).collect();
    let text = lines.join("\n");
    assert!(lines[0].contains("C->S  ClientHello"), "{text}");
    assert!(lines[1].contains("S->C  ServerHello"), "{text}");
    // The three records the evidence adds up to 1177 bytes.
    for len in [1028, 96, 53] {
        assert!(text.contains(&format!("C->S  encrypted handshake (client flight) {len} B")));
    }
    assert!(text.contains("S->C  encrypted handshake (server flight) 1022 B"), "{text}");
    let unread = tl.unread_line().expect("bytes after the settled handshake");
    assert!(unread.contains(" B C->S and "), "{unread}");
    // The taller screen shows the timeline under the list.
    insta::assert_snapshot!("tls13_mutual_120x40", frame_sized(&app, 120, 40));
    press(&mut app, KeyCode::Enter);
    assert!(app.detail_zoom);
    insta::assert_snapshot!("tls13_mutual_detail_80x24", frame(&app));
    press(&mut app, KeyCode::Esc);
    assert!(!app.detail_zoom && !app.quit, "esc closes the detail first");
}

#[test]
fn the_detail_shows_the_tls12_client_certificate_in_the_timeline() {
    let mut app = replayed("tls12_mutual_veth.pcap");
    let tl = app.selected_flow().unwrap().timeline.as_deref().expect("a TLS timeline");
    assert_eq!(tl.client_certificate().as_deref(), Some("2 certs"));
    let text: Vec<String> = tl.steps.iter().map(|s| s.line()).collect();
    let text = text.join("\n");
    for want in [
        "C->S  ClientHello",
        "S->C  CertificateRequest",
        "C->S  Certificate(2 certs, 1002 B)",
        "C->S  CertificateVerify",
        "C->S  encrypted Finished",
        "S->C  encrypted Finished",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("tls12_mutual_detail_80x24", frame(&app));
    // Scrolled to the end: the last screenful stays in view.
    for _ in 0..40 {
        press(&mut app, KeyCode::Char('j'));
    }
    assert_eq!(app.detail_scroll, render::detail_len(&app) - 1, "no further than the detail");
    insta::assert_snapshot!("tls12_mutual_detail_scrolled_80x24", frame(&app));
}

#[test]
fn the_detail_of_plaintext_shows_the_request_line() {
    let app = replayed("http1_veth.pcap");
    let shown = frame(&app);
    assert!(shown.contains("http 1.1: POST /api/items (Host: 10.77.0.2:8080) -> 201"), "{shown}");
    assert!(app.flows.values().all(|r| r.timeline.is_none()), "no TLS, no timeline");
}
