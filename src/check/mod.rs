//! Stage 8: the CI gate (`mtlscope check`). Judged flows against a policy, violations added up
//! by edge, a baseline applied, and one outcome with an exit code; reports for people, JUnit,
//! SARIF, JSON and GitHub Actions.
//!
//! ```text
//!  AnalyzedFlow + placement ──▶ CheckFlow ──▶ Checker::add ──▶ (one entry per edge)
//!  (the CLI: flows, inventory)                    │ Policy, CheckOptions (level, today,
//!                                                 │ min flows, loss limit, Baseline)
//!                                                 ▼ finish(CheckInputStats)
//!                                             CheckReport ──▶ text | check_dto | junit | sarif
//!                                                 │              | github annotations
//!                                                 └──▶ Outcome::exit_code: 0 pass, 1 fail, 2 could not verify
//! ```
//!
//! Pure: no clock (the caller passes "today"), no environment (the caller passes
//! `GITHUB_ACTIONS`), and no I/O except the thin file helpers [`Policy::load`],
//! [`Baseline::load`] and [`CheckArgs::write_files`]. Documented in README.md
//! ("CI gate: `mtlscope check`").

mod args;
mod baseline;
mod date;
mod dto;
mod eval;
pub mod github;
mod input;
pub mod junit;
mod policy;
pub mod sarif;
mod suggest;
pub mod text;
mod words;

pub use args::{Annotations, CheckArgs, CheckFormat, SetupError, CHECK_ABOUT, CHECK_EXAMPLES};
pub use baseline::{Baseline, BaselineEntry, BASELINE_SCHEMA};
pub use date::Date;
pub use dto::{check_dto, write_section, CheckDto, CheckEdgeDto, CHECK_SCHEMA};
pub use eval::{
    evaluate, CheckOptions, CheckReport, Checker, Counts, EdgeKey, EdgeResult, EdgeStatus,
    ExpiredRule, FixedEntry, Outcome, PeerKey, DEFAULT_MAX_LOSSY_PERCENT, EXIT_COULD_NOT_VERIFY,
    EXIT_FAIL, EXIT_PASS,
};
pub use input::{CheckFlow, CheckInput, CheckInputStats, CheckWorkload, FlowPlacement};
pub use policy::{AllowRule, Level, Match, Policy, PolicyError, RequireRule};
pub use suggest::suggested_allow;
