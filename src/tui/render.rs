//! Pure rendering of [`App`]: reads the state, never changes it.

use super::{App, View};
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

pub fn render(app: &App, f: &mut Frame<'_>) {
    let [header, main, detail, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(8),
        Constraint::Length(1),
    ])
    .areas(f.area());
    render_header(app, f, header);
    match app.view {
        View::Edges => render_edges(app, f, main),
        View::Flows => render_flows(app, f, main),
    }
    render_detail(app, f, detail);
    render_footer(app, f, footer);
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

fn table_state(app: &App) -> TableState {
    TableState::default().with_selected(Some(app.selected))
}

/// Reverse video marks the selection with or without colour.
fn selected_style() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
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
        .block(Block::default().borders(Borders::TOP).title(" edges (tab: flows) "));
    f.render_stateful_widget(table, area, &mut table_state(app));
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
        .block(Block::default().borders(Borders::TOP).title(" flows (tab: edges) "));
    f.render_stateful_widget(table, area, &mut table_state(app));
}

fn render_detail(app: &App, f: &mut Frame<'_>, area: Rect) {
    let block = Block::default().borders(Borders::TOP).title(" detail ");
    let Some(r) = app.selected_flow() else {
        f.render_widget(Paragraph::new("nothing selected").block(block), area);
        return;
    };
    let d = &r.dto;
    let mut lines = vec![Line::from(vec![
        Span::styled(r.verdict.as_str(), verdict_style(app, r.verdict)),
        Span::raw(d.proof.map(|p| format!(" ({p})")).unwrap_or_default()),
        Span::raw(format!(
            "  flow {}  {}:{} -> {}:{}  {}",
            d.id, d.client.ip, d.client.port, d.server.ip, d.server.port, d.protocol
        )),
    ])];
    lines.push(Line::from(format!("evidence: {}", d.evidence)));
    if let Some(t) = &d.tls {
        lines.push(Line::from(format!(
            "tls {}  sni {}  alpn {}  cipher {}  client cert {}",
            t.version.unwrap_or("?"),
            t.sni.as_deref().unwrap_or("-"),
            t.alpn.as_deref().unwrap_or("-"),
            t.cipher.as_deref().unwrap_or("-"),
            t.client_certificate
        )));
        if !t.handshake_messages.is_empty() {
            lines.push(Line::from(format!("handshake: {}", t.handshake_messages.join(", "))));
        }
    }
    if let Some(h) = &d.http {
        lines.push(Line::from(format!(
            "http {}: {} {} (Host: {})",
            h.version,
            h.method.as_deref().unwrap_or("-"),
            h.path.as_deref().unwrap_or("-"),
            h.host.as_deref().unwrap_or("-")
        )));
    }
    if let Some(reasons) = d.reasons.as_ref().filter(|r| !r.is_empty()) {
        let words: Vec<String> =
            reasons.iter().map(|r| serde_json::to_string(r).unwrap_or_default()).collect();
        lines.push(Line::from(format!("reasons: {}", words.join("; "))));
    }
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: true }), area);
}

fn render_footer(app: &App, f: &mut Frame<'_>, area: Rect) {
    let text = if app.editing_filter {
        format!("filter: {}_  (enter: done)", app.filter)
    } else if let Some(s) = &app.status {
        s.clone()
    } else {
        let mut t = "j/k move tab:view /:filter m:not-mTLS p:pause c:clear e:export ?:help q:quit"
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
    let w = area.width.min(50);
    let h = area.height.min(14);
    let popup = Rect { x: (area.width - w) / 2, y: (area.height - h) / 2, width: w, height: h };
    let text = vec![
        Line::from("j / down, k / up   move"),
        Line::from("tab                edges <-> flows"),
        Line::from("/                  filter (text; enter ends)"),
        Line::from("m                  only flows that are not mTLS"),
        Line::from("p                  pause / resume"),
        Line::from("c                  clear"),
        Line::from(format!("e                  export to {}", app.export_path.display())),
        Line::from("?                  this help"),
        Line::from("q, esc             quit"),
        Line::from(""),
        Line::from("red: plaintext  yellow: TLS, not mutual  green: mTLS"),
    ];
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}
