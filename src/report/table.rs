//! The table for people: one row per flow, worst verdicts first, then a summary per verdict
//! and the inputs' warnings. With an inventory: one row per edge (client workload -> server
//! workload:port), the reasons and identity mismatches, and the flows only with `--flows`.

use super::{protocol_of, Summary};
use crate::analyze::{Analysis, AnalyzedFlow, Hop};
use crate::classify::Classification;
use crate::inventory::resolve_flows;
use crate::inventory::{EdgeSet, Endpoint, Target};
use crate::verdict::{ClientCert, Verdict};
use std::collections::HashSet;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Terminal styling. `plain()` when NO_COLOR is set or the output is not a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn plain() -> Self {
        Style { color: false }
    }

    fn paint(self, text: &str, verdict: Verdict) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match verdict {
            Verdict::Plaintext | Verdict::NoEncryption => "31",
            Verdict::HandshakeFailed | Verdict::Opaque => "35",
            Verdict::TlsServerAuth | Verdict::TlsUnknownAuth => "33",
            Verdict::Mtls => "32",
            Verdict::NoPayload => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn bold(self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// What the table lists. Without an inventory: every flow. With one: the edges, and the flows
/// too when `flows` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub flows: bool,
}

const FLOW_HEADERS: [&str; 9] =
    ["CLIENT", "SERVER", "PROTO", "VERDICT", "TLS", "SNI", "ALPN", "IDENTITY", "EVIDENCE"];
/// With an inventory, after SERVER and before EVIDENCE.
const SCOPE: &str = "SCOPE";
const REASONS: &str = "REASONS";
const EDGE_HEADERS: [&str; 7] =
    ["CLIENT", "SERVER", "SCOPE", "FLOWS", "WORST", "VERDICTS", "REASONS"];

/// Builds the table flow by flow, keeping only what it prints: the summary counts, the edges
/// (with an inventory) and, when flows are listed, each flow's cells and sort key. A judged
/// flow is dropped as soon as it is added, so memory grows by one short row per flow (not by
/// the flow's facts).
pub struct TableWriter {
    style: Style,
    layout: Layout,
    inventory: bool,
    summary: Summary,
    edges: EdgeSet,
    rows: Vec<FlowRow>,
    /// Every distinct [`FlowRow::rest`], kept once.
    rests: HashSet<Arc<str>>,
}

/// One flow's cells, the worst first when sorted. The client and server cells are the
/// flow's own; the cells after them (protocol, verdict, TLS details, identity, evidence) are
/// shared with every row that reads the same, as most rows of a busy capture do (the
/// benchmark's 41,773 flows have 31 distinct evidence sentences).
struct FlowRow {
    key: (bool, u8, crate::Timestamp, u64),
    verdict: Verdict,
    /// The client and server cells, joined by `CELL_SEP`.
    ends: Box<str>,
    /// The other cells, joined by `CELL_SEP`.
    rest: Arc<str>,
}

/// Cells before [`FlowRow::rest`]: client and server.
const ROW_ENDS: usize = 2;

/// Cells never hold control characters (payload-derived text goes through `printable`).
const CELL_SEP: char = '\0';

impl TableWriter {
    /// `inventory`: the flows were placed with an inventory (edges first, flows only with
    /// `layout.flows`).
    pub fn new(style: Style, layout: Layout, inventory: bool) -> Self {
        TableWriter {
            style,
            layout,
            inventory,
            summary: Summary::default(),
            edges: EdgeSet::default(),
            rows: Vec::new(),
            rests: HashSet::new(),
        }
    }

    pub fn add(&mut self, f: &AnalyzedFlow) {
        self.summary.add(f);
        if self.inventory {
            resolve_flows::add_edge(&mut self.edges, f);
        }
        if !self.inventory || self.layout.flows {
            let verdict = f.judgement.verdict;
            let mut cells = row(f, self.inventory);
            let rest = join_cells(cells.split_off(ROW_ENDS));
            let rest = match self.rests.get(&*rest) {
                Some(shared) => shared.clone(),
                None => {
                    let rest: Arc<str> = rest.into();
                    self.rests.insert(rest.clone());
                    rest
                }
            };
            self.rows.push(FlowRow {
                key: (f.hop == Hop::Local, verdict.severity(), f.record.first_seen, f.record.id),
                verdict,
                ends: join_cells(cells),
                rest,
            });
        }
    }

    /// Write the table; `inputs` are the inputs read (for the caps they hit).
    pub fn finish(
        mut self,
        out: &mut dyn Write,
        inputs: &[crate::analyze::InputReport],
    ) -> io::Result<()> {
        let style = self.style;
        if self.inventory {
            write_edges(out, &self.edges, style)?;
        }
        if !self.inventory || self.layout.flows {
            if self.inventory && !self.rows.is_empty() {
                writeln!(out)?;
                writeln!(out, "{}", style.bold("FLOWS"))?;
            }
            self.rows.sort_unstable_by_key(|r| r.key);
            let mut headers: Vec<&str> = FLOW_HEADERS.to_vec();
            let verdict_col = if self.inventory {
                headers.insert(2, SCOPE);
                headers.insert(headers.len() - 1, REASONS);
                4
            } else {
                3
            };
            grid(out, &headers, &self.rows, verdict_col, style)?;
        }
        write_summary(out, &self.summary, inputs, self.inventory, style, self.layout)
    }
}

/// The cells in one string; a `CELL_SEP` inside a cell (a hostile SNI, say) is escaped.
fn join_cells(cells: Vec<String>) -> Box<str> {
    let mut line = String::with_capacity(cells.iter().map(|c| c.len() + 1).sum());
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(CELL_SEP);
        }
        if cell.contains(CELL_SEP) {
            line.push_str(&cell.replace(CELL_SEP, "\\x00"));
        } else {
            line.push_str(cell);
        }
    }
    line.into_boxed_str()
}

/// The whole table of an analysis at once.
pub fn write(
    out: &mut dyn Write,
    analysis: &Analysis,
    style: Style,
    layout: Layout,
) -> io::Result<()> {
    let mut table = TableWriter::new(style, layout, analysis.inventory.is_some());
    analysis.flows.iter().for_each(|f| table.add(f));
    table.finish(out, &analysis.inputs)
}

/// A row of [`grid`]: its cells in column order, and the verdict that colours it.
trait GridRow {
    fn cells(&self) -> impl Iterator<Item = &str>;
    fn verdict(&self) -> Verdict;
}

/// Cells are read straight from the row's strings: printing allocates no per-row cell list
/// (for the benchmark's 41,773 flows, such lists took 7 MB).
impl GridRow for FlowRow {
    fn cells(&self) -> impl Iterator<Item = &str> {
        self.ends.split(CELL_SEP).chain(self.rest.split(CELL_SEP))
    }

    fn verdict(&self) -> Verdict {
        self.verdict
    }
}

impl GridRow for (Vec<String>, Verdict) {
    fn cells(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    fn verdict(&self) -> Verdict {
        self.1
    }
}

/// Columns padded to their widest cell (the last one is not padded); cell `paint` of each row
/// coloured by the row's verdict.
fn grid(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[impl GridRow],
    paint: usize,
    style: Style,
) -> io::Result<()> {
    let last = headers.len() - 1;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r.cells()).take(last) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if !rows.is_empty() {
        let header: Vec<String> =
            headers.iter().zip(&widths).map(|(h, &w)| format!("{h:<w$}")).collect();
        writeln!(out, "{}", style.bold(header.join("  ").trim_end()))?;
    }
    let mut line = String::new();
    for r in rows {
        line.clear();
        for (i, (cell, &w)) in r.cells().zip(&widths).enumerate() {
            let start = line.len();
            line.push_str(cell);
            if i != last {
                // Widths count chars, as `{:<w$}` does.
                push_spaces(&mut line, w.saturating_sub(cell.chars().count()) + 2);
            }
            if i == paint {
                let painted = style.paint(&line[start..], r.verdict());
                line.truncate(start);
                line.push_str(&painted);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `n` spaces, a slice at a time (`{:<w$}` writes its fill one char at a time: on the
/// benchmark's 41,773 rows that was most of the time spent printing the table).
fn push_spaces(line: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let k = n.min(SPACES.len());
        line.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// `ns/pod:port` (or `ns/service:port (svc)`, `node/name:port`) when the inventory knows the
/// address, else `ip:port`.
fn endpoint_cell(addr: SocketAddr, endpoint: Option<&Endpoint>) -> String {
    let port = addr.port();
    match endpoint.map(|e| &e.target) {
        Some(Target::Pod(w)) => format!("{}/{}:{port}", w.namespace, w.pod),
        Some(Target::Service { service, .. }) => {
            format!("{}/{}:{port} (svc)", service.namespace, service.name)
        }
        Some(Target::Node { node, .. }) => format!("node/{}:{port}", node.name),
        Some(Target::External) | None => addr.to_string(),
    }
}

fn row(f: &AnalyzedFlow, inventory: bool) -> Vec<String> {
    let r = &f.record;
    let place = f.placement.as_deref();
    let mut client = endpoint_cell(r.client, place.map(|p| &p.client));
    if r.client_by.is_inferred() {
        client.push('?');
    }
    if f.hop == Hop::Local {
        client.push_str(" (local)");
    }
    let (version, sni, alpn) = match &r.classification {
        Classification::Tls { facts, .. } => super::tls_dto::table_cells(facts),
        _ => (String::new(), String::new(), String::new()),
    };
    let mut verdict = f.judgement.verdict.as_str().to_string();
    if let Some(p) = f.judgement.proof {
        verdict = format!("{verdict} ({})", p.as_str());
    }
    let mut identity = super::identity_dto::table_cell(
        f.identities.as_deref(),
        matches!(f.client_certificate, Some(ClientCert::Empty | ClientCert::NotRequested)),
    );
    if resolve_flows::identity_mismatches(f) > 0 {
        identity.push_str(" IDENTITY MISMATCH");
    }
    let mut cells = vec![
        client,
        endpoint_cell(r.server, place.map(|p| &p.server)),
        protocol_of(&r.classification).to_string(),
        verdict,
        version,
        sni,
        alpn,
        identity,
        f.judgement.evidence.clone(),
    ];
    if inventory {
        let scope = place.map_or(f.hop.as_str(), |p| p.scope.as_str());
        cells.insert(2, scope.to_string());
        let codes: Vec<&str> =
            place.into_iter().flat_map(|p| &p.reasons).map(|r| r.code.as_str()).collect();
        cells.insert(cells.len() - 1, codes.join(","));
    }
    cells
}

fn verdict_named(word: &str) -> Verdict {
    Verdict::ALL.into_iter().find(|v| v.as_str() == word).unwrap_or(Verdict::Plaintext)
}

/// One row per edge (pod-to-pod first, worst first), then why the edges that are not mTLS
/// are not, and every identity mismatch.
fn write_edges(out: &mut dyn Write, set: &EdgeSet, style: Style) -> io::Result<()> {
    let edges = set.sorted();
    if edges.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}", style.bold("EDGES"))?;
    let rows: Vec<(Vec<String>, Verdict)> = edges
        .iter()
        .map(|e| {
            let verdicts: Vec<String> =
                e.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
            let mut reasons: Vec<&str> = e.reasons.keys().map(|c| c.as_str()).collect();
            if e.identity_mismatches > 0 {
                reasons.push("IDENTITY-MISMATCH");
            }
            let cells = vec![
                e.client.label(),
                format!("{}:{}", e.server.label(), e.port),
                e.scope.as_str().to_string(),
                e.flows.to_string(),
                e.worst.clone(),
                verdicts.join(", "),
                reasons.join(","),
            ];
            (cells, verdict_named(&e.worst))
        })
        .collect();
    grid(out, &EDGE_HEADERS, &rows, 4, style)?;
    let explained: Vec<_> = edges.iter().filter(|e| !e.reasons.is_empty()).collect();
    if !explained.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", style.bold("WHY NOT MTLS"))?;
        for e in explained {
            writeln!(out, "{} -> {}:{}", e.client.label(), e.server.label(), e.port)?;
            for (code, message) in &e.reasons {
                writeln!(out, "  {code}: {message}")?;
            }
        }
    }
    for e in edges.iter().filter(|e| e.identity_mismatches > 0) {
        let what = e.identity_mismatch.as_deref().unwrap_or_default();
        let n = e.identity_mismatches;
        let line = format!(
            "IDENTITY MISMATCH on {} -> {}:{} ({n} {}): {what}",
            e.client.label(),
            e.server.label(),
            e.port,
            if n == 1 { "check" } else { "checks" }
        );
        writeln!(out)?;
        writeln!(out, "{}", style.paint(&line, Verdict::Plaintext))?;
    }
    Ok(())
}

fn write_summary(
    out: &mut dyn Write,
    s: &Summary,
    inputs: &[crate::analyze::InputReport],
    inventory: bool,
    style: Style,
    layout: Layout,
) -> io::Result<()> {
    writeln!(out)?;
    let noun = if s.flows == 1 { "flow" } else { "flows" };
    let parts: Vec<String> =
        s.verdicts.iter().map(|(v, n)| style.paint(&format!("{n} {v}"), *v)).collect();
    if parts.is_empty() {
        writeln!(out, "{} TCP {noun}", s.flows)?;
    } else {
        writeln!(out, "{} TCP {noun}: {}", s.flows, parts.join(", "))?;
    }
    if s.network_not_mtls > 0 {
        writeln!(
            out,
            "{} network {} not mTLS (local hops excluded)",
            s.network_not_mtls,
            if s.network_not_mtls == 1 { "flow is" } else { "flows are" }
        )?;
    }
    let mut hit = crate::analyze::LimitsHit::default();
    inputs.iter().for_each(|i| hit.add(&i.limits));
    let caps: Vec<String> =
        hit.hit().map(|(flag, n, what)| format!("{flag}: {n} {what}")).collect();
    if !caps.is_empty() {
        let line = format!("caps hit ({}; see warnings)", caps.join(", "));
        writeln!(out, "{}", style.paint(&line, Verdict::Plaintext))?;
    }
    if inventory {
        if s.pod_not_mtls > 0 {
            let noun = if s.pod_not_mtls == 1 { "flow is" } else { "flows are" };
            writeln!(out, "{} pod-to-pod/pod-to-service {noun} not mTLS", s.pod_not_mtls)?;
        }
        if s.identity_mismatches > 0 {
            let noun = if s.identity_mismatches == 1 { "MISMATCH" } else { "MISMATCHES" };
            let line = format!("{} IDENTITY {noun} (see above)", s.identity_mismatches);
            writeln!(out, "{}", style.paint(&line, Verdict::Plaintext))?;
        }
        if !layout.flows && s.flows > 0 {
            writeln!(out, "(--flows lists every flow)")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_cells_split_back_and_a_separator_inside_a_cell_is_escaped() {
        let cells = vec!["a b".to_string(), String::new(), "evil\0sni".to_string(), "x".into()];
        let line = join_cells(cells);
        let back: Vec<&str> = line.split(CELL_SEP).collect();
        assert_eq!(back, ["a b", "", "evil\\x00sni", "x"]);
    }

    #[test]
    fn rows_keep_every_cell_and_share_the_cells_after_the_endpoints() {
        let mut analysis = Analysis::default();
        let file = std::fs::File::open("fixtures/mixed_any_sll2.pcap").unwrap();
        let cfg = crate::engine::EngineConfig::default();
        crate::analyze::analyze_reader(&mut analysis, "mixed", file, &cfg, &mut |_, _| {});
        let flows = &analysis.flows;
        assert!(flows.len() > 3, "the fixture has several flows");
        let mut table = TableWriter::new(Style::plain(), Layout { flows: true }, false);
        // Every flow twice: the second copy of a row reads exactly like the first.
        for f in flows.iter().chain(flows) {
            table.add(f);
        }
        let n = flows.len();
        for (i, f) in flows.iter().enumerate() {
            let (first, second) = (&table.rows[i], &table.rows[n + i]);
            let expected = row(f, false);
            assert_eq!(first.cells().collect::<Vec<_>>(), expected);
            assert_eq!(second.cells().collect::<Vec<_>>(), expected);
            assert!(Arc::ptr_eq(&first.rest, &second.rest), "flow {i}'s copy has its own cells");
        }
        let distinct: HashSet<&str> = table.rows.iter().map(|r| &*r.rest).collect();
        assert_eq!(table.rests.len(), distinct.len());
    }

    struct Cells(Vec<&'static str>, Verdict);

    impl GridRow for Cells {
        fn cells(&self) -> impl Iterator<Item = &str> {
            self.0.iter().copied()
        }
        fn verdict(&self) -> Verdict {
            self.1
        }
    }

    /// The grid pads as `{:<w$}` does (by chars, a cell wider than the spaces kept at hand
    /// too), paints the verdict cell with its padding, and trims each line's end.
    #[test]
    fn grid_pads_by_chars_like_format_and_paints_the_padded_verdict_cell() {
        let wide: &'static str = Box::leak("w".repeat(150).into_boxed_str());
        let rows = [
            Cells(vec!["10.0.0.1:1", "héllo→", "plaintext", "last cell  "], Verdict::Plaintext),
            Cells(vec![wide, "", "mtls", "x"], Verdict::Mtls),
            Cells(vec!["", "ü", "no-payload", ""], Verdict::NoPayload),
        ];
        let headers = ["A", "BEE", "VERDICT", "EVIDENCE"];
        let widths = [150, 6, 10];
        for style in [Style::plain(), Style { color: true }] {
            let mut out = Vec::new();
            grid(&mut out, &headers, &rows, 2, style).unwrap();
            let mut want = format!(
                "{}\n",
                style.bold(
                    format!("{:<150}  {:<6}  {:<10}  EVIDENCE", "A", "BEE", "VERDICT").trim_end()
                )
            );
            for r in &rows {
                let mut line = String::new();
                for (i, cell) in r.0.iter().enumerate() {
                    let padded = match widths.get(i) {
                        Some(&w) => format!("{cell:<w$}  "),
                        None => cell.to_string(),
                    };
                    line.push_str(&if i == 2 { style.paint(&padded, r.1) } else { padded });
                }
                want.push_str(line.trim_end());
                want.push('\n');
            }
            assert_eq!(String::from_utf8(out).unwrap(), want, "color: {}", style.color);
        }
    }
}
