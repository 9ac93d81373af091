//! Pure rendering of [`App`]: reads the state, never changes it.

use super::{App, Row, View};
use crate::verdict::Verdict;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, TableState, Wrap,
};
use ratatui::Frame;

fn verdict_style(app: &App, v: Verdict) -> Style {
    if !app.color {
        return Style::default();
    }
    match v {
        Verdict::Plaintext | Verdict::NoEncryption | Verdict::HandshakeFailed => {
            Style::default().fg(Color::Red)
        }
        Verdict::Mtls => Style::default().fg(Color::Green),
        Verdict::NoPayload => Style::default(),
        _ => Style::default().fg(Color::Yellow),
    }
}

fn bold(app: &App) -> Style {
    if app.color {
        Style::default().add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    }
}

/// Lines above a list's first row: the title rule and the column header.
pub const LIST_HEADER_LINES: u16 = 2;

/// Where each part of the screen goes; shared with the mouse, which must find the same rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Areas {
    pub header: Rect,
    /// The edge or flow list (empty while the detail fills the screen).
    pub main: Rect,
    pub detail: Rect,
    pub footer: Rect,
}

pub fn areas(app: &App, area: Rect) -> Areas {
    if app.detail_zoom {
        let [header, detail, footer] =
            Layout::vertical([Constraint::Length(3), Constraint::Min(4), Constraint::Length(1)])
                .areas(area);
        return Areas { header, main: Rect::default(), detail, footer };
    }
    // Below the header, half for the list and half for the detail and its timeline.
    let detail_height = (area.height.saturating_sub(4) / 2).max(8);
    let [header, main, detail, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(detail_height),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas { header, main, detail, footer }
}

/// The list's first row on screen: the selection stays on the last visible line when it is
/// further down (what ratatui does on its own, fixed here so a click finds the same row).
pub fn list_offset(app: &App, main: Rect) -> usize {
    let visible = usize::from(main.height.saturating_sub(LIST_HEADER_LINES)).max(1);
    app.selected.saturating_sub(visible - 1)
}

pub fn render(app: &App, f: &mut Frame<'_>) {
    let a = areas(app, f.area());
    render_header(app, f, a.header);
    if !app.detail_zoom {
        match app.view {
            View::Edges => render_edges(app, f, a.main),
            View::Flows => render_flows(app, f, a.main),
        }
    }
    render_detail(app, f, a.detail);
    render_footer(app, f, a.footer);
    if app.help {
        render_help(app, f);
    }
}

fn render_header(app: &App, f: &mut Frame<'_>, area: Rect) {
    let s = &app.summary;
    let ifaces = if s.interfaces.iter().all(String::is_empty) {
        "replay".to_string()
    } else {
        s.interfaces.join(",")
    };
    let paused = if app.paused { "  [PAUSED]" } else { "" };
    let lines = vec![
        Line::from(vec![
            Span::styled("mtlscope live", bold(app)),
            Span::raw(format!("  {ifaces}{paused}")),
        ]),
        Line::from(format!(
            "packets {}  drops {} kernel / {} channel  flows {} open / {} done",
            s.packets, s.kernel_drops, s.channel_drops, s.active_flows, s.finished_flows
        )),
        Line::from(Span::styled(app.health(), bold(app))),
    ];
    f.render_widget(Paragraph::new(lines), area);
}

fn table_state(app: &App, area: Rect) -> TableState {
    TableState::default().with_selected(Some(app.selected)).with_offset(list_offset(app, area))
}

/// Reverse video marks the selection with or without colour.
fn selected_style() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

/// " edges by worst verdict (s: sort, tab: flows) ".
fn list_title(app: &App, this: &str, other: &str) -> String {
    format!(" {this} by {} (s: sort, tab: {other}) ", app.sort.as_str())
}

fn render_edges(app: &App, f: &mut Frame<'_>, area: Rect) {
    let rows: Vec<TableRow<'_>> = app
        .edges()
        .into_iter()
        .map(|e| {
            TableRow::new(Vec::<Cell<'_>>::from([
                Span::styled(e.worst.as_str(), verdict_style(app, e.worst)).into(),
                e.client.into(),
                e.server.into(),
                e.flows.to_string().into(),
                e.bytes.to_string().into(),
                e.last_seen.get(11..19).unwrap_or("").to_string().into(),
            ]))
        })
        .collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(
            TableRow::new(["VERDICT", "CLIENT", "SERVER", "FLOWS", "BYTES", "LAST"])
                .style(bold(app)),
        )
        .row_highlight_style(selected_style())
        .block(Block::default().borders(Borders::TOP).title(list_title(app, "edges", "flows")));
    f.render_stateful_widget(table, area, &mut table_state(app, area));
}

fn render_flows(app: &App, f: &mut Frame<'_>, area: Rect) {
    let rows: Vec<TableRow<'_>> = app
        .visible_flows()
        .into_iter()
        .map(|r| {
            TableRow::new(Vec::<Cell<'_>>::from([
                Span::styled(r.verdict.as_str(), verdict_style(app, r.verdict)).into(),
                format!("{}:{}", r.dto.client.ip, r.dto.client.port).into(),
                r.server_label().into(),
                r.dto.protocol.into(),
                (if r.open { "open" } else { "done" }).into(),
                r.dto.bytes.to_string().into(),
            ]))
        })
        .collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(
            TableRow::new(["VERDICT", "CLIENT", "SERVER", "PROTO", "", "BYTES"]).style(bold(app)),
        )
        .row_highlight_style(selected_style())
        .block(Block::default().borders(Borders::TOP).title(list_title(app, "flows", "edges")));
    f.render_stateful_widget(table, area, &mut table_state(app, area));
}

fn render_detail(app: &App, f: &mut Frame<'_>, area: Rect) {
    let title = if app.detail_zoom {
        " detail (j/k: scroll, enter: back) "
    } else {
        " detail (enter: full) "
    };
    let block = Block::default().borders(Borders::TOP).title(title);
    let Some(r) = app.selected_flow() else {
        f.render_widget(Paragraph::new("nothing selected").block(block), area);
        return;
    };
    let lines = detail_lines(app, r);
    // Scrolled no further than the last screenful (wrapping counted roughly: word wrap may
    // need a line more than this estimate).
    let width = usize::from(area.width.max(1));
    let height: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    let last = u16::try_from(height.saturating_sub(usize::from(area.height.saturating_sub(1))))
        .unwrap_or(u16::MAX);
    let scroll = if app.detail_zoom { app.detail_scroll.min(last) } else { 0 };
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: false }).scroll((scroll, 0)),
        area,
    );
}

/// Lines in the selected flow's detail (before wrapping): how far it may scroll.
pub fn detail_len(app: &App) -> u16 {
    let n = app.selected_flow().map_or(0, |r| detail_lines(app, r).len());
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Everything known about one flow: what it is and why, the TLS facts and identities, the
/// HTTP request, the inventory's reasons, and the handshake timeline.
fn detail_lines<'a>(app: &App, r: &'a Row) -> Vec<Line<'a>> {
    let d = &r.dto;
    let mut lines = vec![Line::from(vec![
        Span::styled(r.verdict.as_str(), verdict_style(app, r.verdict)),
        Span::raw(d.proof.map(|p| format!(" ({p})")).unwrap_or_default()),
        Span::raw(format!(
            "  flow {}  {}:{} -> {}:{}  {}  {}",
            d.id,
            d.client.ip,
            d.client.port,
            d.server.ip,
            d.server.port,
            d.protocol,
            if r.open { "open" } else { "done" }
        )),
    ])];
    lines.push(Line::from(format!("evidence: {}", d.evidence)));
    for reason in d.reasons.iter().flatten() {
        lines.push(Line::from(format!("reason: {} ({})", reason.message, reason.code)));
    }
    if let Some(t) = &d.tls {
        lines.push(Line::from(format!(
            "tls {}  sni {}  alpn {}  cipher {}",
            t.version.unwrap_or("?"),
            t.sni.as_deref().unwrap_or("-"),
            t.alpn.as_deref().or(t.alpn_offered.first().map(String::as_str)).unwrap_or("-"),
            t.cipher.as_deref().unwrap_or("-"),
        )));
        let id = |p: Option<&String>| p.map_or("?", String::as_str).to_string();
        let mesh = t.identity.mesh.map(|m| format!(" ({m})")).unwrap_or_default();
        let sent = r.timeline.as_ref().and_then(|tl| tl.client_certificate());
        lines.push(Line::from(format!(
            "identities: {} -> {}{mesh}  client certificate: {}{}",
            id(t.identity.client_identity.as_ref().and_then(|p| p.identity.as_ref())),
            id(t.identity.server_identity.as_ref().and_then(|p| p.identity.as_ref())),
            t.client_certificate,
            sent.map(|s| format!(" ({s})")).unwrap_or_default(),
        )));
    }
    if let Some(h) = &d.http {
        let status = h.status.map(|s| format!(" -> {s}")).unwrap_or_default();
        lines.push(Line::from(format!(
            "http {}: {} {} (Host: {}){status}",
            h.version,
            h.method.as_deref().unwrap_or("-"),
            h.path.as_deref().unwrap_or("-"),
            h.host.as_deref().unwrap_or("-")
        )));
    }
    for w in &d.warnings {
        lines.push(Line::from(format!("warning: {w}")));
    }
    if let Some(tl) = &r.timeline {
        lines.push(Line::from(Span::styled(
            "handshake (time after the first packet, C client, S server, bytes):",
            bold(app),
        )));
        lines.extend(tl.steps.iter().map(|s| Line::from(s.line())));
        if tl.dropped > 0 {
            lines.push(Line::from(format!("  ... {} more not kept", tl.dropped)));
        }
        lines.extend(tl.unread_line().map(Line::from));
    } else if let Some(t) = &d.tls {
        // A flow reported before the UI asked for timelines: the messages seen are still known.
        if !t.handshake_messages.is_empty() {
            let seen: Vec<String> = t.handshake_messages.iter().map(|m| m.0.to_string()).collect();
            lines.push(Line::from(format!("handshake: {}", seen.join(", "))));
        }
    }
    lines
}

fn render_footer(app: &App, f: &mut Frame<'_>, area: Rect) {
    let text = if app.editing_filter {
        format!("filter: {}_  (enter: done)", app.filter)
    } else if let Some(s) = &app.status {
        s.clone()
    } else {
        let mut t = "j/k enter:detail tab:view s:sort /:filter m:not-mTLS p:pause ?:help q:quit"
            .to_string();
        if !app.filter.is_empty() || app.not_mtls_only {
            t = format!("[{}{}] {t}", if app.not_mtls_only { "not mTLS " } else { "" }, app.filter);
        }
        t
    };
    f.render_widget(Paragraph::new(text), area);
}

fn render_help(app: &App, f: &mut Frame<'_>) {
    let area = f.area();
    let w = area.width.min(60);
    let h = area.height.min(17);
    let popup = Rect { x: (area.width - w) / 2, y: (area.height - h) / 2, width: w, height: h };
    let text = vec![
        Line::from("j / down, k / up   move (full detail: scroll)"),
        Line::from("enter              the selected flow in full (timeline)"),
        Line::from("tab                edges <-> flows"),
        Line::from("s                  sort: worst verdict, last seen, bytes,"),
        Line::from("                   flow count, name"),
        Line::from("/                  filter (text; enter ends)"),
        Line::from("m                  only flows that are not mTLS"),
        Line::from("p                  pause / resume"),
        Line::from("c                  clear"),
        Line::from(format!("e                  export to {}", app.export_path.display())),
        Line::from("?                  this help"),
        Line::from("q, esc             quit (esc: close first)"),
        Line::from("mouse              click selects, wheel scrolls"),
        Line::from("red: plaintext  yellow: TLS, not mutual  green: mTLS"),
    ];
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}
