//! The table for people: one row per flow, worst verdicts first, then a summary per verdict
//! and the inputs' warnings.

use super::{protocol_of, Summary};
use crate::analyze::{Analysis, AnalyzedFlow, Hop};
use crate::classify::Classification;
use crate::verdict::{ClientCert, Verdict};
use std::io::{self, Write};

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

const HEADERS: [&str; 9] =
    ["CLIENT", "SERVER", "PROTO", "VERDICT", "TLS", "SNI", "ALPN", "IDENTITY", "EVIDENCE"];
/// The last column is not padded.
const LAST: usize = HEADERS.len() - 1;

pub fn write(out: &mut dyn Write, analysis: &Analysis, style: Style) -> io::Result<()> {
    let mut flows: Vec<&AnalyzedFlow> = analysis.flows.iter().collect();
    flows.sort_by_key(|f| {
        (f.hop == Hop::Local, f.judgement.verdict.severity(), f.record.first_seen, f.record.id)
    });
    let rows: Vec<[String; 9]> = flows.iter().map(|f| row(f)).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()).take(LAST) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if !rows.is_empty() {
        let header: Vec<String> =
            HEADERS.iter().zip(widths).map(|(h, w)| format!("{h:<w$}")).collect();
        writeln!(out, "{}", style.bold(header.join("  ").trim_end()))?;
    }
    for (r, f) in rows.iter().zip(&flows) {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
            let padded = if i == LAST { cell.clone() } else { format!("{cell:<w$}  ") };
            if i == 3 {
                line.push_str(&style.paint(&padded, f.judgement.verdict));
            } else {
                line.push_str(&padded);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    write_summary(out, analysis, style)
}

fn row(f: &AnalyzedFlow) -> [String; 9] {
    let r = &f.record;
    let mut client = r.client.to_string();
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
    [
        client,
        r.server.to_string(),
        protocol_of(&r.classification).to_string(),
        verdict,
        version,
        sni,
        alpn,
        super::identity_dto::table_cell(
            f.identities.as_deref(),
            matches!(f.client_certificate, Some(ClientCert::Empty | ClientCert::NotRequested)),
        ),
        f.judgement.evidence.clone(),
    ]
}

fn write_summary(out: &mut dyn Write, analysis: &Analysis, style: Style) -> io::Result<()> {
    let s = Summary::of(analysis);
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
    Ok(())
}
