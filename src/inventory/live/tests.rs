//! Flags, kubeconfig discovery and messages. The calls to a server are tested against a fake
//! API server in tests/kube_live.rs.

use super::*;
use clap::Parser;
use std::fs;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    kube: KubeArgs,
}

fn parse(args: &[&str]) -> Result<KubeArgs, String> {
    let argv = std::iter::once("t").chain(args.iter().copied());
    Cli::try_parse_from(argv).map(|c| c.kube).map_err(|e| e.kind().to_string())
}

#[test]
fn flags_map_to_options() {
    let table: &[(&[&str], Namespaces, Option<Duration>, bool)] = &[
        (&[], Namespaces::ContextDefault, Some(Duration::from_secs(30)), false),
        (&["-n", "shop"], Namespaces::One("shop".into()), Some(Duration::from_secs(30)), true),
        (
            &["--namespace=shop"],
            Namespaces::One("shop".into()),
            Some(Duration::from_secs(30)),
            true,
        ),
        (&["-A"], Namespaces::All, Some(Duration::from_secs(30)), true),
        (&["--all-namespaces"], Namespaces::All, Some(Duration::from_secs(30)), true),
        (&["--context", "kind"], Namespaces::ContextDefault, Some(Duration::from_secs(30)), true),
        (
            &["--kubeconfig", "k.yaml"],
            Namespaces::ContextDefault,
            Some(Duration::from_secs(30)),
            true,
        ),
        (
            &["--request-timeout", "5"],
            Namespaces::ContextDefault,
            Some(Duration::from_secs(5)),
            false,
        ),
        (
            &["--request-timeout", "1m"],
            Namespaces::ContextDefault,
            Some(Duration::from_secs(60)),
            false,
        ),
        (
            &["--request-timeout", "250ms"],
            Namespaces::ContextDefault,
            Some(Duration::from_millis(250)),
            false,
        ),
        (&["--request-timeout", "0"], Namespaces::ContextDefault, None, false),
    ];
    for (argv, namespaces, timeout, live) in table {
        let args = parse(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let o = args.options();
        assert_eq!(
            (&o.namespaces, o.request_timeout, args.wants_live()),
            (namespaces, *timeout, *live),
            "{argv:?}"
        );
    }
    assert_eq!(KubeOptions::default(), parse(&[]).unwrap().options());
}

#[test]
fn bad_flags_are_usage_errors() {
    assert!(parse(&["-A", "-n", "shop"]).unwrap_err().contains("cannot be used with"));
    assert!(parse(&["--request-timeout", "soon"]).is_err());
}

const TWO_CONTEXTS: &str = "\
apiVersion: v1
kind: Config
current-context: kind-a
clusters:
- name: a
  cluster: {server: 'https://127.0.0.1:6443'}
- name: b
  cluster: {server: 'https://127.0.0.1:7443'}
users:
- name: u
  user: {token: abc}
contexts:
- name: kind-a
  context: {cluster: a, user: u, namespace: shop}
- name: kind-b
  context: {cluster: b, user: u}
";

const OTHER: &str = "\
apiVersion: v1
kind: Config
current-context: kind-c
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:8443'}
contexts:
- name: kind-c
  context: {cluster: c}
";

fn contexts(l: &Located) -> (Vec<String>, Option<String>, String) {
    match l {
        Located::Kubeconfig { config, name } => (
            config.contexts.iter().map(|c| c.name.clone()).collect(),
            config.current_context.clone(),
            name.clone(),
        ),
        Located::InCluster => panic!("in-cluster"),
    }
}

#[test]
fn kubeconfig_env_is_a_merged_list_and_missing_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    fs::write(&a, TWO_CONTEXTS).unwrap();
    fs::write(&b, OTHER).unwrap();
    let missing = dir.path().join("missing.yaml");
    let list = std::env::join_paths([&missing, &b, &a]).unwrap();
    let env = Env { kubeconfig: Some(list), ..Env::default() };
    let (names, current, name) = contexts(&locate(&KubeOptions::default(), &env).unwrap());
    // The first file to set current-context wins.
    assert_eq!(current.as_deref(), Some("kind-c"));
    assert_eq!(names, ["kind-c", "kind-a", "kind-b"]);
    assert!(name.starts_with("KUBECONFIG (") && name.contains("b.yaml"), "{name}");
}

#[test]
fn kubeconfig_flag_beats_env_and_home() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    fs::write(&a, TWO_CONTEXTS).unwrap();
    fs::create_dir(dir.path().join(".kube")).unwrap();
    fs::write(dir.path().join(".kube/config"), OTHER).unwrap();
    let env = Env { home: Some(dir.path().into()), ..Env::default() };
    let (names, ..) = contexts(&locate(&KubeOptions::default(), &env).unwrap());
    assert_eq!(names, ["kind-c"], "~/.kube/config when nothing else is given");
    let opts = KubeOptions { kubeconfig: Some(a.clone()), ..KubeOptions::default() };
    let env = Env { kubeconfig: Some(dir.path().join(".kube/config").into()), ..env };
    let (names, _, name) = contexts(&locate(&opts, &env).unwrap());
    assert_eq!((names.len(), name), (2, a.display().to_string()));
}

#[test]
fn no_kubeconfig_falls_back_to_in_cluster_else_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env { home: Some(dir.path().into()), in_cluster: true, ..Env::default() };
    assert!(matches!(locate(&KubeOptions::default(), &env), Ok(Located::InCluster)));
    let env = Env { in_cluster: false, ..env };
    let e = locate(&KubeOptions::default(), &env).unwrap_err();
    assert!(matches!(e, LiveError::NoConfig));
    assert!(e.to_string().contains("pass --kubeconfig FILE"), "{e}");
}

#[test]
fn unreadable_kubeconfig_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    fs::write(&bad, "clusters: [ {name: a\n").unwrap();
    for path in [bad.clone(), dir.path().join("nope.yaml")] {
        let opts = KubeOptions { kubeconfig: Some(path.clone()), ..KubeOptions::default() };
        let e = locate(&opts, &Env::default()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot read kubeconfig {}: ", path.display())), "{e}");
    }
}

#[test]
fn contexts_are_checked_by_name() {
    let config = Kubeconfig::from_yaml(TWO_CONTEXTS).unwrap();
    assert_eq!(pick_context(&config, "k.yaml", None).unwrap(), "kind-a");
    assert_eq!(pick_context(&config, "k.yaml", Some("kind-b")).unwrap(), "kind-b");
    let e = pick_context(&config, "k.yaml", Some("prod")).unwrap_err().to_string();
    assert_eq!(
        e,
        "context \"prod\" is not in kubeconfig k.yaml (it has: kind-a, kind-b); list them with \
         `kubectl config get-contexts`"
    );
    let mut none = config.clone();
    none.current_context = None;
    let e = pick_context(&none, "k.yaml", None).unwrap_err().to_string();
    assert_eq!(
        e,
        "kubeconfig k.yaml sets no current-context; pass --context NAME (it has: kind-a, kind-b)"
    );
}

#[test]
fn forbidden_names_the_grant_and_the_check() {
    let e = LiveError::Forbidden {
        verb: "list",
        resource: "pods",
        scope: "in namespace shop".into(),
        can_i: " -n shop".into(),
        message: "pods is forbidden".into(),
    };
    assert_eq!(
        e.to_string(),
        "not allowed to list pods in namespace shop (403 Forbidden: pods is forbidden); grant \
         list on pods in namespace shop to this user, check with `kubectl auth can-i list pods -n shop`"
    );
}
