//! The CI examples in examples/ci/ run in users' pipelines; here they are read: both parse as
//! YAML, and every `mtlscope check` command line in them parses with the real `CheckArgs`.

use clap::Parser;
use mtlscope::check::{CheckArgs, CheckFormat, Level, CHECK_EXAMPLES};
use std::path::{Path, PathBuf};

/// The check command as the CLI will assemble it: captures and `--inventory` come from the
/// CLI's shared arguments (not this module); everything else is `CheckArgs`.
#[derive(Parser, Debug)]
#[command(name = "mtlscope-check", after_help = CHECK_EXAMPLES)]
struct CheckCommand {
    #[arg(required = true, value_name = "CAPTURE")]
    inputs: Vec<String>,
    #[arg(long)]
    inventory: Vec<PathBuf>,
    #[command(flatten)]
    check: CheckArgs,
}

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci").join(name))
        .unwrap()
}

/// Every string in a YAML document.
fn strings(v: &serde_norway::Value, out: &mut Vec<String>) {
    match v {
        serde_norway::Value::String(s) => out.push(s.clone()),
        serde_norway::Value::Sequence(items) => items.iter().for_each(|i| strings(i, out)),
        serde_norway::Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        serde_norway::Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

/// Shell words of a one-line command (quotes removed; variables left as written).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in {line}");
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The `mtlscope check ...` command lines of a pipeline file.
fn check_commands(yaml: &str) -> Vec<Vec<String>> {
    let doc: serde_norway::Value = serde_norway::from_str(yaml).expect("valid YAML");
    let mut all = Vec::new();
    strings(&doc, &mut all);
    let mut out = Vec::new();
    for script in all {
        let joined = script.replace("\\\n", " ");
        for line in joined.lines() {
            if let Some(i) = line.find("mtlscope check ") {
                let words = shell_words(&line[i..]);
                out.push(words[1..].to_vec());
            }
        }
    }
    out
}

fn parse(words: &[String]) -> CheckCommand {
    let argv = std::iter::once("mtlscope-check".to_string()).chain(words.iter().skip(1).cloned());
    CheckCommand::try_parse_from(argv).unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

#[test]
fn github_actions_example() {
    let cmds = check_commands(&example("github-actions.yml"));
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let c = parse(&cmds[0]);
    assert_eq!(c.inputs, ["mtls.pcap"]);
    assert_eq!(c.inventory, [PathBuf::from("inventory.json")]);
    assert_eq!(c.check.policy, Some(PathBuf::from(".github/mtlscope-policy.yaml")));
    assert_eq!(c.check.baseline, Some(PathBuf::from(".github/mtlscope-baseline.json")));
    assert!(c.check.expect_traffic);
    assert_eq!(c.check.max_lossy, 5.0);
    assert_eq!(c.check.junit, Some(PathBuf::from("mtlscope-junit.xml")));
    assert_eq!(c.check.sarif, Some(PathBuf::from("mtlscope.sarif")));
    // Under Actions the annotations come on by themselves.
    assert!(c.check.annotate(Some("true")));
    assert!(!c.check.annotate(None));
    let doc: serde_norway::Value = serde_norway::from_str(&example("github-actions.yml")).unwrap();
    assert_eq!(doc["permissions"]["security-events"], "write");
    assert!(doc["jobs"]["mtls"]["steps"].as_sequence().unwrap().len() >= 8);
}

#[test]
fn gitlab_example() {
    let yaml = example("gitlab-ci.yml");
    let cmds = check_commands(&yaml);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let c = parse(&cmds[0]);
    assert_eq!(c.check.policy, Some(PathBuf::from("ci/mtlscope-policy.yaml")));
    assert_eq!(c.check.junit, Some(PathBuf::from("mtlscope-junit.xml")));
    assert!(!c.check.annotate(Some("true")), "--github-annotations never");
    let doc: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(doc["mtls-gate"]["artifacts"]["reports"]["junit"], "mtlscope-junit.xml");
    let script: Vec<&str> = doc["mtls-gate"]["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        script.iter().any(|s| s.starts_with("kubectl debug node/")),
        "captures with kubectl debug"
    );
}

#[test]
fn unknown_flags_are_caught() {
    let words: Vec<String> =
        ["check", "cap.pcap", "--polcy", "p.yaml"].iter().map(|s| s.to_string()).collect();
    let argv = std::iter::once("mtlscope-check".to_string()).chain(words.into_iter().skip(1));
    assert!(CheckCommand::try_parse_from(argv).is_err());
}

#[test]
fn check_args_defaults_and_help() {
    let c = CheckCommand::try_parse_from(["mtlscope-check", "cap.pcap"]).unwrap();
    assert_eq!(c.check.require, None);
    assert_eq!(c.check.format, CheckFormat::Text);
    assert_eq!(c.check.min_flows(), 0);
    assert_eq!(c.check.max_lossy, 10.0);
    let c = CheckCommand::try_parse_from([
        "mtlscope-check",
        "cap.pcap",
        "--require",
        "tls",
        "--min-flows",
        "5",
        "--expect-traffic",
        "--today",
        "2026-03-01",
        "-o",
        "json",
    ])
    .unwrap();
    assert_eq!(c.check.require, Some(Level::Tls));
    assert_eq!(c.check.min_flows(), 5);
    assert_eq!(c.check.today.unwrap().to_string(), "2026-03-01");
    assert_eq!(c.check.format, CheckFormat::Json);
    assert!(CheckCommand::try_parse_from(["mtlscope-check", "c.pcap", "--today", "2026-02-30"])
        .is_err());
    assert!(
        CheckCommand::try_parse_from(["mtlscope-check", "c.pcap", "--require", "mutual"]).is_err()
    );
    let help = <CheckCommand as clap::CommandFactory>::command().render_long_help().to_string();
    for flag in [
        "--policy",
        "--require",
        "--baseline",
        "--write-baseline",
        "--expect-traffic",
        "--min-flows",
        "--max-lossy",
        "--junit",
        "--sarif",
        "--github-annotations",
        "--today",
        "Exit codes:",
        "2  could not verify",
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

#[test]
fn the_readme_section_names_every_flag() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("\n## CI gate: `mtlscope check`\n").expect("the CI gate section");
    let end = readme[start + 1..].find("\n## ").map_or(readme.len(), |i| start + 1 + i);
    let text = &readme[start..end];
    // The real command: the gate's options and the input options it shares with analyze.
    let cli = <mtlscope::cli::Cli as clap::CommandFactory>::command();
    let cmd = cli.find_subcommand("check").expect("mtlscope check");
    assert!(cmd.get_arguments().any(|a| a.get_long() == Some("policy")));
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            if long != "help" {
                assert!(text.contains(&format!("--{long}")), "README section misses --{long}");
            }
        }
    }
}
