//! `mtlscope check`: the CI gate. The captures are read exactly as `analyze` reads them
//! ([`InputArgs`], [`Prepared::read_all`]); each final flow (linked, placed in the cluster) is
//! turned into a [`CheckFlow`] and added to a streaming [`Checker`], which keeps one entry per
//! edge, never the flows. With `--format json` the flows also stream out as the analyze
//! document, which closes with a `check` section.
//!
//! The clock and the environment are read once, here at the edge ([`Env`]); everything below
//! is given them.

use super::{report_inputs, InputArgs, Prepared, OUT_BUFFER};
use crate::analyze::{AnalyzedFlow, InputReport};
use crate::check::{
    github, text, write_section, CheckArgs, CheckFlow, CheckFormat, CheckInputStats, CheckReport,
    Checker, Date, FlowPlacement, EXIT_COULD_NOT_VERIFY, EXIT_FAIL,
};
use crate::report::json;
use clap::Args;
use std::io::{self, Write};

#[derive(Args, Debug)]
pub struct CheckCommandArgs {
    #[command(flatten)]
    pub check: CheckArgs,

    #[command(flatten, next_help_heading = "Reading the captures (as in analyze)")]
    pub input: InputArgs,
}

/// What the gate reads from the world: today's date (UTC) and `GITHUB_ACTIONS`.
#[derive(Debug, Clone)]
pub struct Env {
    pub today_utc: Date,
    pub github_actions: Option<String>,
}

impl Env {
    pub fn from_system() -> Env {
        Env { today_utc: Date::today_utc(), github_actions: std::env::var("GITHUB_ACTIONS").ok() }
    }
}

pub fn run(args: &CheckCommandArgs) -> i32 {
    run_with(args, &Env::from_system())
}

/// Runs the gate and returns the exit code: 0 pass, 1 violation, 2 could not verify. A
/// broken pipe on stdout does not change it: the verdict is the exit code's, not the reader's.
pub fn run_with(args: &CheckCommandArgs, env: &Env) -> i32 {
    let policy = match args.check.load_policy() {
        Ok(p) => p,
        Err(e) => return setup_error(&format!("invalid policy: {e}")),
    };
    let opts = match args.check.options(env.today_utc) {
        Ok(o) => o,
        Err(e) => return setup_error(&e.to_string()),
    };
    let prepared = match args.input.prepare() {
        Ok(p) => p,
        Err(e) => return setup_error(&e),
    };
    let checker = Checker::new(policy, opts);
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(OUT_BUFFER, stdout.lock());
    let mut inputs = Vec::new();
    let (report, written, files) = match args.check.format {
        CheckFormat::Json => check_json(args, &prepared, checker, &mut out, &mut inputs),
        CheckFormat::Text => {
            let mut report = judge(args, &prepared, checker, &mut inputs, &mut |_| {});
            let files = args.check.write_files(&mut report);
            let written = text::write(&mut out, &report);
            (report, written, files)
        }
    };
    let annotations = if args.check.annotate(env.github_actions.as_deref()) {
        github::annotations(&report)
    } else {
        Vec::new()
    };
    // Workflow commands are read from stdout and stderr alike; JSON keeps stdout one document.
    let written = match args.check.format {
        CheckFormat::Text => written.and_then(|()| write_lines(&mut out, &annotations)),
        CheckFormat::Json => {
            let _ = write_lines(&mut io::stderr(), &annotations);
            written
        }
    };
    let written = written.and_then(|()| out.flush());
    report_inputs(&inputs);
    let mut code = report.exit_code();
    if let Err(e) = files {
        eprintln!("mtlscope: error: writing {e}");
        code = could_not_verify(code);
    }
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            eprintln!("mtlscope: error: writing the report: {e}");
            could_not_verify(code)
        }
        Ok(()) => code,
    }
}

/// A report that could not be written makes a pass "could not verify"; a proven violation
/// still wins (exit 1), as it does over every other could-not-verify reason.
pub(super) fn could_not_verify(code: i32) -> i32 {
    if code == EXIT_FAIL {
        EXIT_FAIL
    } else {
        EXIT_COULD_NOT_VERIFY
    }
}

fn setup_error(message: &str) -> i32 {
    eprintln!("mtlscope: error: {message}");
    EXIT_COULD_NOT_VERIFY
}

fn write_lines(out: &mut dyn Write, lines: &[String]) -> io::Result<()> {
    lines.iter().try_for_each(|l| writeln!(out, "{l}"))
}

/// Reads the inputs and judges each final flow, with its placement in the cluster; `also`
/// sees each flow first (the JSON writer).
fn judge(
    args: &CheckCommandArgs,
    prepared: &Prepared,
    mut checker: Checker,
    inputs: &mut Vec<InputReport>,
    also: &mut dyn FnMut(&AnalyzedFlow),
) -> CheckReport {
    prepared.read_all(&args.input, inputs, &mut |f| {
        also(&f);
        let placement = f.placement.as_deref().map(FlowPlacement::from);
        checker.add(&CheckFlow::from_analyzed(&f, placement));
    });
    checker.finish(CheckInputStats::from_inputs(inputs))
}

/// The analyze JSON document, flows streamed as they are judged, then the `check` section.
/// A write error (a closed pipe) stops the writing, never the judging: the exit code still
/// says what the capture showed, and the files are still written.
fn check_json(
    args: &CheckCommandArgs,
    prepared: &Prepared,
    checker: Checker,
    out: &mut dyn Write,
    inputs: &mut Vec<InputReport>,
) -> (CheckReport, io::Result<()>, io::Result<()>) {
    let mut writer = json::StreamWriter::new(out).map(|w| match &prepared.inventory {
        Some(inv) => w.with_inventory(inv.info.clone()),
        None => w,
    });
    let mut report = judge(args, prepared, checker, inputs, &mut |f| {
        if let Ok(w) = &mut writer {
            w.flow(f);
        }
    });
    let files = args.check.write_files(&mut report);
    let written = writer.and_then(|w| {
        w.finish_with(inputs, &mut |o| {
            o.write_all(b",\"check\":")?;
            write_section(o, &report)
        })
    });
    (report, written, files)
}
