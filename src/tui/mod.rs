//! The live terminal UI (`mtlscope live -o tui`), in the Elm style: one [`App`] state, every
//! change made by [`update`] from an [`Action`], keys mapped to actions by [`action_for_key`],
//! and a pure [`render::render`]. The terminal itself is touched only by [`run`].

pub mod render;

use crate::analyze::AnalyzedFlow;
use crate::live::{FlowEvent, LiveSummary};
use crate::report::json::{flow_dto, FlowDto};
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::io;

/// Which list the main pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Client -> server:port, flows added up, worst verdict first.
    Edges,
    /// Every flow, worst verdict first.
    Flows,
}

/// One flow as the UI keeps it.
pub struct Row {
    pub verdict: Verdict,
    pub open: bool,
    /// The same object `analyze --format json` writes (and `e` exports).
    pub dto: FlowDto,
}

impl Row {
    fn of(f: &AnalyzedFlow, open: bool) -> Row {
        Row { verdict: f.judgement.verdict, open, dto: flow_dto(f) }
    }

    /// Who the client is: its workload with an inventory, else its address.
    pub fn client_label(&self) -> String {
        match &self.dto.client.workload {
            Some(w) => label(w.namespace.as_deref(), &w.workload),
            None => self.dto.client.ip.clone(),
        }
    }

    pub fn server_label(&self) -> String {
        let name = match &self.dto.server.workload {
            Some(w) => label(w.namespace.as_deref(), &w.workload),
            None => self.dto.server.ip.clone(),
        };
        format!("{name}:{}", self.dto.server.port)
    }

    fn matches(&self, filter: &str) -> bool {
        if filter.is_empty() {
            return true;
        }
        let f = filter.to_lowercase();
        [
            self.client_label(),
            self.server_label(),
            self.verdict.as_str().to_string(),
            self.dto.protocol.to_string(),
            self.dto.evidence.clone(),
        ]
        .iter()
        .any(|s| s.to_lowercase().contains(&f))
    }
}

fn label(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Flows added up by client -> server:port.
pub struct Edge {
    pub client: String,
    pub server: String,
    pub worst: Verdict,
    pub flows: usize,
    pub bytes: u64,
    pub last_seen: String,
    /// The id of the flow with the worst verdict (shown in the detail pane).
    pub example: u64,
}

/// Everything the UI shows.
pub struct App {
    pub summary: LiveSummary,
    pub flows: BTreeMap<u64, Row>,
    pub view: View,
    pub selected: usize,
    pub filter: String,
    pub editing_filter: bool,
    pub not_mtls_only: bool,
    pub paused: bool,
    pub help: bool,
    pub quit: bool,
    pub color: bool,
    /// A one-line message (export written, ...).
    pub status: Option<String>,
    /// Where `e` writes the current state.
    pub export_path: std::path::PathBuf,
}

/// Every change to [`App`].
pub enum Action {
    Up,
    Down,
    NextView,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    FilterDone,
    ToggleNotMtls,
    TogglePause,
    Clear,
    Export,
    ToggleHelp,
    Quit,
    Flow(FlowEvent, Box<Row>),
    Summary(Box<LiveSummary>),
}

impl App {
    pub fn new(color: bool) -> App {
        App {
            summary: LiveSummary::default(),
            flows: BTreeMap::new(),
            view: View::Edges,
            selected: 0,
            filter: String::new(),
            editing_filter: false,
            not_mtls_only: false,
            paused: false,
            help: false,
            quit: false,
            color,
            status: None,
            export_path: "mtlscope-live-export.json".into(),
        }
    }

    /// The flows shown, worst first (then newest id first).
    pub fn visible_flows(&self) -> Vec<&Row> {
        let mut v: Vec<&Row> = self
            .flows
            .values()
            .filter(|r| !self.not_mtls_only || !matches!(r.verdict, Verdict::Mtls))
            .filter(|r| r.matches(&self.filter))
            .collect();
        v.sort_by_key(|r| (r.verdict.severity(), std::cmp::Reverse(r.dto.id)));
        v
    }

    /// The edges of the shown flows, worst first.
    pub fn edges(&self) -> Vec<Edge> {
        let mut by: BTreeMap<(String, String), Edge> = BTreeMap::new();
        for r in self.visible_flows() {
            let key = (r.client_label(), r.server_label());
            let e = by.entry(key.clone()).or_insert_with(|| Edge {
                client: key.0,
                server: key.1,
                worst: r.verdict,
                flows: 0,
                bytes: 0,
                last_seen: String::new(),
                example: r.dto.id,
            });
            e.flows += 1;
            e.bytes += r.dto.bytes;
            if r.dto.last_seen > e.last_seen {
                e.last_seen = r.dto.last_seen.clone();
            }
            if r.verdict.severity() < e.worst.severity() {
                e.worst = r.verdict;
                e.example = r.dto.id;
            }
        }
        let mut v: Vec<Edge> = by.into_values().collect();
        v.sort_by_key(|e| (e.worst.severity(), std::cmp::Reverse(e.flows)));
        v
    }

    fn rows(&self) -> usize {
        match self.view {
            View::Edges => self.edges().len(),
            View::Flows => self.visible_flows().len(),
        }
    }

    /// The flow the detail pane shows.
    pub fn selected_flow(&self) -> Option<&Row> {
        match self.view {
            View::Edges => {
                let edges = self.edges();
                self.flows.get(&edges.get(self.selected)?.example)
            }
            View::Flows => self.visible_flows().get(self.selected).copied(),
        }
    }

    /// "2 edges carry plaintext" or "all 5 edges are mTLS".
    pub fn health(&self) -> String {
        let edges = self.edges();
        if edges.is_empty() {
            return "no flow with a verdict yet".into();
        }
        let plain = edges.iter().filter(|e| e.worst == Verdict::Plaintext).count();
        let not_mtls =
            edges.iter().filter(|e| !matches!(e.worst, Verdict::Mtls | Verdict::NoPayload)).count();
        match (plain, not_mtls) {
            (0, 0) => format!("all {} edges are mTLS", edges.len()),
            (0, n) => format!("{n} of {} edges are not mTLS", edges.len()),
            (p, n) => format!("{p} edges carry plaintext; {n} of {} are not mTLS", edges.len()),
        }
    }

    fn export(&self) -> io::Result<usize> {
        let flows: Vec<&FlowDto> = self.visible_flows().iter().map(|r| &r.dto).collect();
        let doc = serde_json::json!({ "schema": crate::cli::live::LIVE_SCHEMA, "flows": flows });
        std::fs::write(&self.export_path, serde_json::to_string_pretty(&doc)?)?;
        Ok(flows.len())
    }
}

/// The one place [`App`] changes.
pub fn update(app: &mut App, action: Action) {
    match action {
        Action::Up => app.selected = app.selected.saturating_sub(1),
        Action::Down => app.selected = (app.selected + 1).min(app.rows().saturating_sub(1)),
        Action::NextView => {
            app.view = match app.view {
                View::Edges => View::Flows,
                View::Flows => View::Edges,
            };
            app.selected = 0;
        }
        Action::StartFilter => app.editing_filter = true,
        Action::FilterChar(c) => {
            app.filter.push(c);
            app.selected = 0;
        }
        Action::FilterBackspace => {
            app.filter.pop();
        }
        Action::FilterDone => app.editing_filter = false,
        Action::ToggleNotMtls => {
            app.not_mtls_only = !app.not_mtls_only;
            app.selected = 0;
        }
        Action::TogglePause => app.paused = !app.paused,
        Action::Clear => {
            app.flows.clear();
            app.selected = 0;
        }
        Action::Export => {
            app.status = Some(match app.export() {
                Ok(n) => format!("exported {n} flows to {}", app.export_path.display()),
                Err(e) => format!("export failed: {}: {e}", app.export_path.display()),
            });
        }
        Action::ToggleHelp => app.help = !app.help,
        Action::Quit => app.quit = true,
        // Paused: the screen holds still; what arrives meanwhile is not shown.
        Action::Flow(..) | Action::Summary(_) if app.paused => {}
        Action::Flow(_, row) => {
            app.flows.insert(row.dto.id, *row);
        }
        Action::Summary(s) => app.summary = *s,
    }
}

/// The key table. While the filter is being typed, keys edit it.
pub fn action_for_key(app: &App, key: ratatui::crossterm::event::KeyEvent) -> Option<Action> {
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.editing_filter {
        return match key.code {
            KeyCode::Enter | KeyCode::Esc => Some(Action::FilterDone),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Tab => Action::NextView,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('m') => Action::ToggleNotMtls,
        KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Char('c') => Action::Clear,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        _ => return None,
    })
}

/// A live event as an action (judged on the engine thread, shown on the UI thread).
pub fn action_for_event(ev: &crate::live::Event<'_>) -> Action {
    match ev {
        crate::live::Event::Flow(kind, f) => {
            Action::Flow(*kind, Box::new(Row::of(f, *kind != FlowEvent::Finished)))
        }
        crate::live::Event::Summary(s) => Action::Summary(Box::new((*s).clone())),
    }
}

/// Runs the UI until `q`: the live pipeline runs on its own thread and sends actions here.
/// The terminal is restored on exit and on panic.
pub fn run(actions: std::sync::mpsc::Receiver<Action>, color: bool) -> io::Result<()> {
    use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
    use std::time::Duration;
    let mut terminal = ratatui::init(); // raw mode, alternate screen, and a panic hook
    let mut app = App::new(color);
    let result = (|| -> io::Result<()> {
        while !app.quit {
            terminal.draw(|f| render::render(&app, f))?;
            if event::poll(Duration::from_millis(100))? {
                if let TermEvent::Key(key) = event::read()? {
                    if key.kind == KeyEventKind::Press {
                        if let Some(a) = action_for_key(&app, key) {
                            update(&mut app, a);
                        }
                    }
                }
            }
            // At most a screenful of work per frame keeps keys responsive.
            for a in actions.try_iter().take(4096) {
                update(&mut app, a);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests;
