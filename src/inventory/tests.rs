use super::*;
use serde_json::json;
use std::net::IpAddr;

fn t(s: &str) -> Timestamp {
    let ts: k8s_openapi::jiff::Timestamp = s.parse().unwrap();
    Timestamp(ts.as_nanosecond() as i64)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn inventory(objects: serde_json::Value) -> Inventory {
    let mut s = Sources::new();
    s.load("test.json", objects.to_string().as_bytes()).unwrap();
    Inventory::build(&s)
}

fn pod(name: &str, ip: &str, created: Option<&str>, extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": name},
        "spec": {"containers": [{"name": "app"}], "nodeName": "node-a"},
        "status": {"phase": "Running", "podIP": ip}
    });
    if let Some(c) = created {
        p["metadata"]["creationTimestamp"] = json!(c);
    }
    merge(&mut p, extra);
    p
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

#[test]
fn without_timestamps_the_running_pod_wins_by_current_state() {
    let inv = inventory(json!([
        pod("old", "10.77.0.5", None, json!({"status": {"phase": "Succeeded"}})),
        pod("new", "10.77.0.5", None, json!({})),
    ]));
    let e = inv.resolve(ip("10.77.0.5"), t("2024-05-01T10:00:00Z"));
    assert_eq!(e.pod().unwrap().pod, "new");
    assert_eq!(e.basis, Basis::CurrentState);
}

#[test]
fn a_finished_pod_with_no_end_time_holds_its_ip_until_the_next_pod() {
    let inv = inventory(json!([
        pod(
            "job",
            "10.77.0.5",
            Some("2024-05-01T10:00:00Z"),
            json!({"status": {"phase": "Succeeded"}})
        ),
        pod("web", "10.77.0.5", Some("2024-05-01T10:05:00Z"), json!({})),
    ]));
    let at = |s| inv.resolve(ip("10.77.0.5"), t(s));
    assert_eq!(at("2024-05-01T10:04:59Z").pod().unwrap().pod, "job");
    assert_eq!(at("2024-05-01T10:04:59Z").basis, Basis::TimeMatched);
    assert_eq!(at("2024-05-01T10:05:00Z").pod().unwrap().pod, "web");
    // Before anything we know of: the current holder, by current state.
    let before = at("2024-05-01T09:00:00Z");
    assert_eq!((before.pod().unwrap().pod.as_str(), before.basis), ("web", Basis::CurrentState));
}

#[test]
fn a_later_snapshot_keeps_the_addresses_an_earlier_one_saw() {
    let early = pod("job", "10.77.0.6", Some("2024-05-01T10:00:00Z"), json!({}));
    let mut late = early.clone();
    late["status"] = json!({"phase": "Succeeded"});
    let inv = inventory(json!([early, late]));
    assert_eq!(inv.pods().len(), 1);
    assert_eq!(inv.pods()[0].phase.as_deref(), Some("Succeeded"));
    assert_eq!(inv.pods()[0].ips, [ip("10.77.0.6")]);
}

#[test]
fn host_network_pod_without_a_node_object_makes_an_inferred_node() {
    let inv = inventory(json!([pod(
        "agent",
        "192.168.5.10",
        None,
        json!({"spec": {"hostNetwork": true, "nodeName": "worker-9"}})
    )]));
    let e = inv.resolve(ip("192.168.5.10"), Timestamp(0));
    let Target::Node { node, host_network_pods } = &e.target else { panic!("{e:?}") };
    assert_eq!((node.name.as_str(), node.inferred), ("worker-9", true));
    assert_eq!(host_network_pods[0].pod, "agent");
}

#[test]
fn unknown_address_is_external() {
    let inv = inventory(json!([]));
    let e = inv.resolve(ip("1.1.1.1"), Timestamp(0));
    assert_eq!(e.target, Target::External);
    assert_eq!(e.basis, Basis::CurrentState);
}

fn service(name: &str, cluster_ip: &str, backends: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"clusterIP": cluster_ip, "ports": [{"port": 80, "targetPort": 8080}]}
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": format!("{name}-abcde"), "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": name}},
        "endpoints": backends.iter().map(|(ip, pod)| json!({
            "addresses": [ip], "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}
        })).collect::<Vec<_>>(),
        "ports": [{"port": 8080}]
    });
    vec![svc, slice]
}

fn linkerd() -> serde_json::Value {
    json!({"spec": {"containers": [{"name": "app"}, {"name": "linkerd-proxy"}]}})
}

fn why(inv: &Inventory, client: &str, server: &str, port: u16) -> Vec<Reason> {
    let (c, s) = (inv.resolve(ip(client), Timestamp(0)), inv.resolve(ip(server), Timestamp(0)));
    let input = ReasonInput {
        verdict: "plaintext",
        protocol: "http1",
        tls_mesh: None,
        client: &c,
        server: &s,
        port,
    };
    reasons(&input)
}

#[test]
fn some_backends_unmeshed_and_skipped_target_port() {
    let mut objects = vec![
        pod("web", "10.77.0.1", None, linkerd()),
        pod("api-1", "10.77.0.11", None, linkerd()),
        pod("api-2", "10.77.0.12", None, json!({})),
        pod(
            "db",
            "10.77.0.13",
            None,
            json!({"metadata": {"annotations": {"config.linkerd.io/skip-inbound-ports": "8080"}},
                   "spec": {"containers": [{"name": "app"}, {"name": "linkerd-proxy"}]}}),
        ),
    ];
    objects.extend(service(
        "api",
        "10.96.0.11",
        &[("10.77.0.11", "api-1"), ("10.77.0.12", "api-2")],
    ));
    objects.extend(service("db", "10.96.0.13", &[("10.77.0.13", "db")]));
    objects.extend(service("empty", "10.96.0.14", &[]));
    let inv = inventory(serde_json::Value::Array(objects));

    let r = why(&inv, "10.77.0.1", "10.96.0.11", 80);
    assert_eq!(r[0].code, ReasonCode::ServerNotMeshed);
    assert_eq!(
        r[0].message,
        "1 of 2 pods behind api have no linkerd-proxy: web -> api:80 is plaintext"
    );
    // Service port 80 forwards to 8080, which db's proxy skips.
    let r = why(&inv, "10.77.0.1", "10.96.0.13", 80);
    assert_eq!(
        r[0].message,
        "db skips inbound port 8080 (service port 80) (annotation config.linkerd.io/skip-inbound-ports): \
         web -> db:80 bypasses its linkerd-proxy and is plaintext"
    );
    let r = why(&inv, "10.77.0.1", "10.96.0.14", 80);
    assert_eq!(r[0].code, ReasonCode::Unknown);
    assert_eq!(
        r[0].message,
        "empty has no endpoints in the inventory: nothing explains why web -> empty:80 is plaintext"
    );
}

#[test]
fn edge_set_puts_pod_edges_first_local_last_and_caps_new_edges() {
    let inv = inventory(json!([
        pod("a", "10.77.0.1", None, json!({})),
        pod("b", "10.77.0.2", None, json!({})),
    ]));
    let at = t("2024-05-01T10:00:00Z");
    let r = |s: &str| inv.resolve(ip(s), at);
    let (a, b, ext) = (r("10.77.0.1"), r("10.77.0.2"), r("93.184.216.34"));
    let flow = |client, server, verdict, severity| EdgeFlow {
        client,
        server,
        port: 8080,
        verdict,
        severity,
    };
    let mut set = EdgeSet::new(3);
    set.add(flow(&b, &b, "plaintext", 0)); // same address both ends: local
    set.add(flow(&a, &ext, "plaintext", 0));
    set.add(flow(&a, &b, "mtls", 7));
    set.add(flow(&a, &b, "tls-server-auth", 5));
    assert!(set.add(flow(&ext, &a, "plaintext", 0)).is_none(), "a fourth edge is over the cap");
    assert!(set.add(flow(&a, &b, "mtls", 7)).is_some(), "known edges still count");
    assert_eq!(set.dropped_flows, 1);
    let order: Vec<(Scope, &str, u64)> =
        set.sorted().iter().map(|e| (e.scope, e.worst.as_str(), e.flows)).collect();
    assert_eq!(
        order,
        [
            (Scope::PodToPod, "tls-server-auth", 3),
            (Scope::PodToExternal, "plaintext", 1),
            (Scope::Local, "plaintext", 1)
        ]
    );
}
