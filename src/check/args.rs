//! `mtlscope check` options, ready to flatten into the CLI's command (which adds the captures,
//! the inventory and the engine options it shares with `analyze`).

use super::baseline::Baseline;
use super::date::Date;
use super::eval::{CheckOptions, CheckReport, DEFAULT_MAX_LOSSY_PERCENT};
use super::github::github_actions_detected;
use super::policy::{Level, Policy, PolicyError};
use clap::{Args, ValueEnum};
use std::io;
use std::path::{Path, PathBuf};

pub const CHECK_ABOUT: &str = "Fail a CI build when traffic between pods is not mutual TLS";

pub const CHECK_EXAMPLES: &str = "\
Examples:
  mtlscope check capture.pcap --inventory cluster.json
  mtlscope check node1.pcap node2.pcap --inventory cluster.json --policy mtls-policy.yaml \\
      --baseline mtls-baseline.json --expect-traffic --junit mtls.xml --sarif mtls.sarif
  mtlscope check capture.pcap --inventory cluster.json --write-baseline mtls-baseline.json
  mtlscope check capture.pcap --inventory cluster.json --require tls    (encryption only)

Default policy: every pod-to-pod and pod-to-service flow must be mtls; local hops are ignored;
node-to-pod and external flows are reported, not judged, unless a require rule names them.

Exit codes:
  0  every judged flow meets the policy (allowed and baselined violations included)
  1  at least one violation, or an expired allow rule
  2  could not verify: an unreadable capture, no judged traffic (--expect-traffic,
     --min-flows), too many handshakes lost to capture gaps (--max-lossy), or an invalid
     policy or baseline";

/// How the report is printed on stdout.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    /// The verdict first, then violating edges with evidence and a suggested allow rule.
    Text,
    /// The analyze JSON document with a `check` section.
    Json,
}

/// When to print GitHub Actions annotations.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Annotations {
    /// When the environment says GITHUB_ACTIONS=true.
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct CheckArgs {
    /// Policy file (YAML, or JSON by its .json name): allow and require rules. Without one:
    /// every pod-to-pod and pod-to-service flow must be mtls.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// The level the default scopes must meet, overriding the policy's `level`: mtls, or tls
    /// (encrypted: TLS without a client certificate passes; plaintext still fails).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub require: Option<Level>,

    /// Only violations on edges not recorded in this baseline fail (see --write-baseline).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Record today's violating edges in FILE and accept them for this run.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Could not verify (exit 2) when no judged flow carried payload: an empty capture never
    /// passes. Same as --min-flows 1.
    #[arg(long)]
    pub expect_traffic: bool,

    /// Could not verify (exit 2) with fewer judged flows carrying payload than N.
    #[arg(long, value_name = "N")]
    pub min_flows: Option<u64>,

    /// Could not verify (exit 2) when more than PERCENT of the judged flows had their TLS
    /// handshake hit by capture loss (gaps, snaplen).
    #[arg(long, value_name = "PERCENT", default_value_t = DEFAULT_MAX_LOSSY_PERCENT)]
    pub max_lossy: f64,

    /// Write a JUnit XML report (one testcase per edge) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write a SARIF 2.1.0 log (for code-scanning upload) to FILE.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,

    /// Print GitHub Actions annotations (::error ...): auto when GITHUB_ACTIONS=true.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Annotations::Auto)]
    pub github_annotations: Annotations,

    /// Output on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// Judge allow-rule expiry as of this day instead of today (UTC), e.g. to replay a run.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub today: Option<Date>,
}

/// Why the check could not start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("invalid baseline: {0}")]
    Baseline(String),
    #[error("--max-lossy must be a percentage from 0 to 100, not {0}")]
    MaxLossy(f64),
}

impl CheckArgs {
    /// The policy file, or the default policy.
    pub fn load_policy(&self) -> Result<Policy, PolicyError> {
        match &self.policy {
            Some(path) => Policy::load(path),
            None => Ok(Policy::default()),
        }
    }

    pub fn min_flows(&self) -> u64 {
        self.min_flows.unwrap_or(0).max(u64::from(self.expect_traffic))
    }

    /// The settings for [`super::Checker`]; `today_utc` is used unless `--today` was given.
    pub fn options(&self, today_utc: Date) -> Result<CheckOptions, SetupError> {
        if !(0.0..=100.0).contains(&self.max_lossy) {
            return Err(SetupError::MaxLossy(self.max_lossy));
        }
        let baseline = match &self.baseline {
            Some(path) => Some(Baseline::load(path).map_err(SetupError::Baseline)?),
            None => None,
        };
        Ok(CheckOptions {
            level: self.require,
            today: self.today.unwrap_or(today_utc),
            min_flows: self.min_flows(),
            max_lossy_percent: self.max_lossy,
            baseline,
        })
    }

    /// Whether to print annotations, given the value of `GITHUB_ACTIONS`.
    pub fn annotate(&self, github_actions_env: Option<&str>) -> bool {
        match self.github_annotations {
            Annotations::Always => true,
            Annotations::Never => false,
            Annotations::Auto => github_actions_detected(github_actions_env),
        }
    }

    /// Writes `--write-baseline`, `--junit` and `--sarif` files (after
    /// [`CheckReport::adopt_baseline`] when a baseline is being written).
    pub fn write_files(&self, report: &mut CheckReport) -> io::Result<()> {
        if let Some(path) = &self.write_baseline {
            let baseline = report.adopt_baseline();
            write_file(path, &baseline.to_json())?;
        }
        if let Some(path) = &self.junit {
            write_file(path, &super::junit::render(report))?;
        }
        if let Some(path) = &self.sarif {
            write_file(path, &super::sarif::render(report))?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}
