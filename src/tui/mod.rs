//! The live terminal UI (`mtlscope live -o tui`), in the Elm style: one [`App`] state, every
//! change made by [`update`] from an [`Action`], keys and mouse events mapped to actions by
//! [`action_for_key`] and [`action_for_mouse`], and a pure [`render::render`]. The terminal
//! itself is touched only by [`run`].

mod input;
pub mod render;

pub use input::{action_for_key, action_for_mouse};

use crate::analyze::{AnalyzedFlow, Hop};
use crate::live::timeline::Timeline;
use crate::live::{FlowEvent, LiveSummary};
use crate::report::json::{flow_dto, FlowDto};
use crate::verdict::Verdict;
use crate::Timestamp;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::io;

/// Which list the main pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Client -> server:port, flows added up.
    Edges,
    /// Every flow.
    Flows,
}

/// The order of the edge and flow lists (`s` cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Worst verdict first (the default), then the most flows.
    Worst,
    /// Most recently seen first.
    LastSeen,
    /// Most bytes first.
    Bytes,
    /// Most flows first (in the flows view: the flows of the busiest edges first).
    Flows,
    /// Client, then server, alphabetically.
    Name,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Worst => SortKey::LastSeen,
            SortKey::LastSeen => SortKey::Bytes,
            SortKey::Bytes => SortKey::Flows,
            SortKey::Flows => SortKey::Name,
            SortKey::Name => SortKey::Worst,
        }
    }

    /// As the list's title shows it: "by worst verdict".
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Worst => "worst verdict",
            SortKey::LastSeen => "last seen",
            SortKey::Bytes => "bytes",
            SortKey::Flows => "flow count",
            SortKey::Name => "name",
        }
    }
}

/// One flow as the UI keeps it.
pub struct Row {
    pub verdict: Verdict,
    pub open: bool,
    /// The flow never left a pod (loopback, or the same address at both ends).
    pub local: bool,
    pub last_seen: Timestamp,
    /// The same object `analyze --format json` writes (and `e` exports).
    pub dto: FlowDto,
    /// TLS: the handshake as the wire showed it (bounded: see [`Timeline`]).
    pub timeline: Option<Box<Timeline>>,
}

impl Row {
    fn of(f: &AnalyzedFlow, open: bool, timeline: Option<&Timeline>) -> Row {
        let dto = flow_dto(f);
        Row {
            verdict: f.judgement.verdict,
            open,
            local: f.hop == Hop::Local || dto.scope == "local",
            last_seen: f.record.last_seen,
            dto,
            timeline: timeline.map(|t| Box::new(t.clone())),
        }
    }

    /// Who the client is: its workload with an inventory, else its address.
    pub fn client_label(&self) -> String {
        match &self.dto.client.workload {
            Some(w) => label(w.namespace.as_deref(), &w.workload),
            None => self.dto.client.ip.to_string(),
        }
    }

    pub fn server_label(&self) -> String {
        let name = match &self.dto.server.workload {
            Some(w) => label(w.namespace.as_deref(), &w.workload),
            None => self.dto.server.ip.to_string(),
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
    last_seen_ts: Timestamp,
    /// Every flow of the edge stayed inside one pod (loopback, proxy -> app).
    pub local: bool,
    /// The id of the flow with the worst verdict (shown in the detail pane).
    pub example: u64,
}

/// Everything the UI shows.
pub struct App {
    pub summary: LiveSummary,
    pub flows: BTreeMap<u64, Row>,
    pub view: View,
    pub sort: SortKey,
    pub selected: usize,
    /// The selected flow's detail fills the screen (`enter`), scrolled this many lines.
    pub detail_zoom: bool,
    pub detail_scroll: u16,
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
    /// Select this row of the list (a click).
    Select(usize),
    NextView,
    NextSort,
    ToggleDetail,
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
            sort: SortKey::Worst,
            selected: 0,
            detail_zoom: false,
            detail_scroll: 0,
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

    /// The flows shown, in the chosen order (ties: worst first, then newest first).
    pub fn visible_flows(&self) -> Vec<&Row> {
        let mut v: Vec<&Row> = self
            .flows
            .values()
            .filter(|r| !self.not_mtls_only || !matches!(r.verdict, Verdict::Mtls))
            .filter(|r| r.matches(&self.filter))
            .collect();
        // Stable sorts: the default order stays the tie-breaker of the others.
        v.sort_by_key(|r| (r.verdict.severity(), Reverse(r.dto.id)));
        match self.sort {
            SortKey::Worst => {}
            SortKey::LastSeen => v.sort_by_key(|r| Reverse(r.last_seen)),
            SortKey::Bytes => v.sort_by_key(|r| Reverse(r.dto.bytes)),
            SortKey::Flows => {
                let mut per_edge: HashMap<(String, String), usize> = HashMap::new();
                for r in &v {
                    *per_edge.entry((r.client_label(), r.server_label())).or_default() += 1;
                }
                v.sort_by_cached_key(|r| Reverse(per_edge[&(r.client_label(), r.server_label())]));
            }
            SortKey::Name => v.sort_by_cached_key(|r| (r.client_label(), r.server_label())),
        }
        v
    }

    /// The edges of the shown flows, in the chosen order (ties: worst first, most flows,
    /// then by name).
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
                last_seen_ts: Timestamp(i64::MIN),
                local: true,
                example: r.dto.id,
            });
            e.flows += 1;
            e.bytes += r.dto.bytes;
            e.local &= r.local;
            if r.last_seen > e.last_seen_ts {
                e.last_seen_ts = r.last_seen;
                e.last_seen = r.dto.last_seen.0.to_string();
            }
            if r.verdict.severity() < e.worst.severity() {
                e.worst = r.verdict;
                e.example = r.dto.id;
            }
        }
        let mut v: Vec<Edge> = by.into_values().collect();
        v.sort_by_key(|e| (e.worst.severity(), Reverse(e.flows)));
        match self.sort {
            SortKey::Worst => {}
            SortKey::LastSeen => v.sort_by_key(|e| Reverse(e.last_seen_ts)),
            SortKey::Bytes => v.sort_by_key(|e| Reverse(e.bytes)),
            SortKey::Flows => v.sort_by_key(|e| Reverse(e.flows)),
            SortKey::Name => v.sort_by(|a, b| (&a.client, &a.server).cmp(&(&b.client, &b.server))),
        }
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

    /// "1 edge carries plaintext; 2 of 3 are not mTLS (+1 local hop in the clear)". Only
    /// edges that leave a pod count (between pods; between hosts without an inventory):
    /// plaintext inside one pod (loopback, proxy -> app) is mentioned apart.
    pub fn health(&self) -> String {
        let edges = self.edges();
        if edges.is_empty() {
            return "no flow with a verdict yet".into();
        }
        let (local, network): (Vec<&Edge>, Vec<&Edge>) = edges.iter().partition(|e| e.local);
        let plain = network.iter().filter(|e| e.worst == Verdict::Plaintext).count();
        let not_mtls = network
            .iter()
            .filter(|e| !matches!(e.worst, Verdict::Mtls | Verdict::NoPayload))
            .count();
        let mut text = match (network.len(), plain, not_mtls) {
            (0, ..) => "no edge leaves a pod yet".to_string(),
            (1, 0, 0) => "the one edge is mTLS".to_string(),
            (n, 0, 0) => format!("all {n} edges are mTLS"),
            (1, 0, _) => "the one edge is not mTLS".to_string(),
            (n, 0, k) => format!("{k} of {n} edges are not mTLS"),
            (1, 1, _) => "the one edge carries plaintext".to_string(),
            (n, 1, k) => format!("1 edge carries plaintext; {k} of {n} are not mTLS"),
            (n, p, k) => format!("{p} edges carry plaintext; {k} of {n} are not mTLS"),
        };
        let local_plain = local.iter().filter(|e| e.worst == Verdict::Plaintext).count();
        if local_plain > 0 {
            let s = if local_plain == 1 { "" } else { "s" };
            text.push_str(&format!(" (+{local_plain} local hop{s} in the clear)"));
        }
        text
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
        // With the detail filling the screen, up and down scroll it.
        Action::Up if app.detail_zoom => app.detail_scroll = app.detail_scroll.saturating_sub(1),
        Action::Down if app.detail_zoom => {
            let last = render::detail_len(app).saturating_sub(1);
            app.detail_scroll = (app.detail_scroll + 1).min(last);
        }
        Action::Up => select(app, app.selected.saturating_sub(1)),
        Action::Down => select(app, app.selected + 1),
        Action::Select(i) => select(app, i),
        Action::NextView => {
            app.view = match app.view {
                View::Edges => View::Flows,
                View::Flows => View::Edges,
            };
            select(app, 0);
        }
        Action::NextSort => {
            app.sort = app.sort.next();
            select(app, 0);
        }
        Action::ToggleDetail => {
            app.detail_zoom = !app.detail_zoom;
            app.detail_scroll = 0;
        }
        Action::StartFilter => app.editing_filter = true,
        Action::FilterChar(c) => {
            app.filter.push(c);
            select(app, 0);
        }
        Action::FilterBackspace => {
            app.filter.pop();
        }
        Action::FilterDone => app.editing_filter = false,
        Action::ToggleNotMtls => {
            app.not_mtls_only = !app.not_mtls_only;
            select(app, 0);
        }
        Action::TogglePause => app.paused = !app.paused,
        Action::Clear => {
            app.flows.clear();
            select(app, 0);
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

/// Moves the selection, kept within the list; the detail shows the new row from its top.
fn select(app: &mut App, i: usize) {
    app.selected = i.min(app.rows().saturating_sub(1));
    app.detail_scroll = 0;
}

/// A live event as an action (judged on the engine thread, shown on the UI thread).
pub fn action_for_event(ev: &crate::live::Event<'_>) -> Action {
    match ev {
        crate::live::Event::Flow(kind, f, timeline) => {
            Action::Flow(*kind, Box::new(Row::of(f, *kind != FlowEvent::Finished, *timeline)))
        }
        crate::live::Event::Summary(s) => Action::Summary(Box::new((*s).clone())),
    }
}

/// Runs the UI until `q`: the live pipeline runs on its own thread and sends actions here.
/// The terminal is restored on exit and on panic.
pub fn run(actions: std::sync::mpsc::Receiver<Action>, color: bool) -> io::Result<()> {
    use ratatui::crossterm::event::{
        self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent, KeyEventKind,
    };
    use ratatui::crossterm::execute;
    use ratatui::layout::Rect;
    use std::time::Duration;
    let mut terminal = ratatui::init(); // raw mode, alternate screen, and a panic hook
                                        // Clicks select rows, the wheel scrolls; without mouse reporting every key still works.
    let mouse = execute!(io::stdout(), EnableMouseCapture).is_ok();
    let mut app = App::new(color);
    let result = (|| -> io::Result<()> {
        while !app.quit {
            terminal.draw(|f| render::render(&app, f))?;
            if event::poll(Duration::from_millis(100))? {
                let action = match event::read()? {
                    TermEvent::Key(key) if key.kind == KeyEventKind::Press => {
                        action_for_key(&app, key)
                    }
                    TermEvent::Mouse(m) => {
                        let size = terminal.size()?;
                        action_for_mouse(&app, m, Rect::new(0, 0, size.width, size.height))
                    }
                    _ => None,
                };
                if let Some(a) = action {
                    update(&mut app, a);
                }
            }
            // At most a screenful of work per frame keeps keys responsive.
            for a in actions.try_iter().take(4096) {
                update(&mut app, a);
            }
        }
        Ok(())
    })();
    if mouse {
        let _ = execute!(io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests;
