//! The inventory on kubectl-shaped files (tests/data/inventory, written by make.py there).

use mtlscope::inventory::*;
use mtlscope::Timestamp;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/inventory").join(name)
}

fn sources(files: &[&str]) -> Sources {
    let mut s = Sources::new();
    for f in files {
        s.load_file(&data(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    s
}

/// The cluster snapshot plus namespaces, a ReplicaSet, a Job and a ConfigMap.
fn cluster() -> Inventory {
    Inventory::build(&sources(&["cluster.json", "extras.yaml"]))
}

fn t(s: &str) -> Timestamp {
    let ts: k8s_openapi::jiff::Timestamp = s.parse().unwrap();
    Timestamp(i64::try_from(ts.as_nanosecond()).unwrap())
}

/// A packet time when every long-running fixture pod was up.
fn now() -> Timestamp {
    t("2024-05-01T10:00:00Z")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pod_at(inv: &Inventory, addr: &str) -> WorkloadRef {
    let e = inv.resolve(ip(addr), now());
    e.pod().unwrap_or_else(|| panic!("{addr} is not a pod: {e:?}")).clone()
}

// ---- loading ----

#[test]
fn kubectl_json_list_loads_every_kind() {
    let mut s = Sources::new();
    let summary = s.load_file(&data("cluster.json")).unwrap();
    assert_eq!(summary, LoadSummary { objects: 19, skipped: 0 });
    let inv = Inventory::build(&s);
    assert_eq!((inv.pods().len(), inv.services().len(), inv.nodes().len()), (10, 3, 2));
    assert!(inv.warnings().is_empty(), "{:?}", inv.warnings());
}

#[test]
fn yaml_list_gives_the_same_inventory_as_json() {
    let json = Inventory::build(&sources(&["cluster.json"]));
    let yaml = Inventory::build(&sources(&["cluster.yaml"]));
    assert_eq!(json.to_json(), yaml.to_json());
}

#[test]
fn multi_document_yaml_merges_and_counts_skipped_kinds() {
    let mut s = sources(&["cluster.json"]);
    let summary = s.load_file(&data("extras.yaml")).unwrap();
    assert_eq!(summary, LoadSummary { objects: 4, skipped: 1 });
    assert_eq!(s.skipped.get("ConfigMap"), Some(&1));
    let name = data("extras.yaml").display().to_string();
    assert_eq!(
        s.warnings,
        [format!("{name}: skipped 1 objects of kinds the inventory does not use: ConfigMap (1)")]
    );
    let inv = Inventory::build(&s);
    assert_eq!(inv.to_json().matches("\"skipped_kinds\": {\n    \"ConfigMap\": 1").count(), 1);
}

#[test]
fn single_object_file_loads() {
    let inv = Inventory::build(&sources(&["pod.json"]));
    let w = pod_at(&inv, "fd00:77::7");
    assert_eq!((w.pod.as_str(), w.kind.clone()), ("cart-0", WorkloadKind::StatefulSet));
}

#[test]
fn typed_objects_feed_the_same_builder() {
    // What a kube client would hand over: k8s-openapi objects, no files.
    let text = std::fs::read_to_string(data("pod.json")).unwrap();
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_str(&text).unwrap();
    let inv: Inventory = std::iter::once(Object::from(pod)).collect();
    assert_eq!(pod_at(&inv, "10.77.0.7").workload, "cart");
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let e = Sources::new().load_file(&data("bad-syntax.json")).unwrap_err();
    let name = data("bad-syntax.json").display().to_string();
    assert_eq!(
        e.to_string(),
        format!("{name}: not valid JSON: expected `,` or `}}` (line 10, column 13)")
    );
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let e =
        Sources::new().load("bad-indent.yaml", &std::fs::read(data("bad-indent.yaml")).unwrap());
    let msg = e.unwrap_err().to_string();
    assert!(msg.starts_with("bad-indent.yaml: not valid YAML: "), "{msg}");
    assert!(msg.contains("line 5 column 13"), "{msg}");
}

#[test]
fn bad_field_names_object_and_path() {
    let mut s = Sources::new();
    let e = s.load("bad-field.yaml", &std::fs::read(data("bad-field.yaml")).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad-field.yaml: items[1] (Pod shop/payments-7f8b9c6d4-qwv5r): field \
         spec.containers[0].ports[0].containerPort: invalid type: string \"http-alt\", expected i32"
    );
    assert!(s.objects.is_empty(), "a malformed file adds nothing");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let e = Sources::new().load_file(Path::new("/nonexistent/inv.json")).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/inv.json: cannot read: "), "{e}");
}

// ---- mapping ----

#[test]
fn linkerd_sidecar_pod_is_meshed_with_its_skip_ports() {
    let w = pod_at(&cluster(), "10.77.0.1");
    assert_eq!(w.namespace, "shop");
    assert_eq!(w.pod, "frontend-6c9d8f7b5d-x2x7k");
    // The ReplicaSet object is in extras.yaml: its owner is read, not inferred.
    assert_eq!(
        (w.workload.as_str(), &w.kind, w.workload_inferred),
        ("frontend", &WorkloadKind::Deployment, false)
    );
    assert_eq!(w.service_account, "frontend");
    assert_eq!(w.node.as_deref(), Some("mtlscope-worker"));
    assert_eq!(w.mesh.mesh, Mesh::Linkerd);
    assert_eq!(w.mesh.evidence, "linkerd-proxy container");
    let rule = w.mesh.outbound_skip(5432).unwrap();
    assert_eq!(rule.source, "annotation config.linkerd.io/skip-outbound-ports");
    assert_eq!(
        w.mesh.inbound_skip(4191).unwrap().source,
        "linkerd-init argument --inbound-ports-to-ignore"
    );
    assert_eq!(w.mesh.inbound_skip(8080), None);
}

#[test]
fn linkerd_native_sidecar_pod_is_meshed() {
    let w = pod_at(&cluster(), "10.77.0.2");
    assert_eq!(
        (w.workload.as_str(), &w.kind, w.workload_inferred),
        ("payments", &WorkloadKind::Deployment, true)
    );
    assert_eq!(w.mesh.mesh, Mesh::Linkerd);
    assert_eq!(
        w.mesh.evidence,
        "linkerd-proxy native sidecar (init container with restartPolicy: Always)"
    );
    assert_eq!(
        w.mesh.inbound_skip(9090).unwrap().source,
        "annotation config.linkerd.io/skip-inbound-ports"
    );
    assert!(w.mesh.opaque_rule(5672).is_some());
}

#[test]
fn istio_sidecar_and_ambient_pods() {
    let inv = cluster();
    let reviews = pod_at(&inv, "10.77.0.4");
    assert_eq!((reviews.mesh.mesh, reviews.workload.as_str()), (Mesh::Istio, "reviews-v1"));
    let productpage = pod_at(&inv, "10.77.0.5");
    assert_eq!(productpage.mesh.mesh, Mesh::IstioAmbient);
    assert_eq!(productpage.mesh.evidence, "annotation ambient.istio.io/redirection=enabled");
    let details = pod_at(&inv, "10.77.0.6");
    assert_eq!(details.mesh.mesh, Mesh::IstioAmbient);
    assert_eq!(details.mesh.evidence, "label istio.io/dataplane-mode=ambient on namespace ambient");
    // Without the Namespace object the namespace label is unknown.
    let bare = Inventory::build(&sources(&["cluster.json"]));
    assert_eq!(pod_at(&bare, "10.77.0.6").mesh.mesh, Mesh::None);
}

#[test]
fn unmeshed_pod_in_an_injected_namespace_says_so() {
    let w = pod_at(&cluster(), "10.77.0.3");
    assert_eq!(w.mesh.mesh, Mesh::None);
    assert_eq!(
        w.mesh.notes,
        ["linkerd.io/inject=enabled on its namespace but no linkerd-proxy container: the pod was not injected (restart it)"]
    );
}

#[test]
fn host_network_daemonset_address_is_its_node() {
    let inv = cluster();
    let e = inv.resolve(ip("172.18.0.3"), now());
    let Target::Node { node, host_network_pods } = &e.target else { panic!("{e:?}") };
    assert_eq!((node.name.as_str(), node.inferred), ("mtlscope-worker", false));
    let names: Vec<_> =
        host_network_pods.iter().map(|p| (p.pod.as_str(), p.kind.clone())).collect();
    assert_eq!(names, [("node-exporter-9xk2p", WorkloadKind::DaemonSet)]);
    assert_eq!(e.basis, Basis::TimeMatched);
    // The node's IPv6 InternalIP too.
    assert!(matches!(inv.resolve(ip("fc00:f853:ccd:e793::2"), now()).target, Target::Node { .. }));
}

#[test]
fn dual_stack_pod_resolves_on_both_families() {
    let inv = cluster();
    let v4 = pod_at(&inv, "10.77.0.7");
    let v6 = pod_at(&inv, "fd00:77::7");
    assert_eq!(v4, v6);
    assert_eq!((v4.workload.as_str(), &v4.kind), ("cart", &WorkloadKind::StatefulSet));
    assert_eq!(v4.ips, [ip("10.77.0.7"), ip("fd00:77::7")]);
}

#[test]
fn reused_address_resolves_by_packet_time() {
    let inv = cluster();
    let during_job = inv.resolve(ip("10.77.0.9"), t("2024-05-01T09:00:20Z"));
    let job_pod = during_job.pod().unwrap();
    assert_eq!(job_pod.pod, "report-28583310-8xk4v");
    // The Job object names its CronJob.
    assert_eq!(
        (job_pod.workload.as_str(), &job_pod.kind, job_pod.workload_inferred),
        ("report", &WorkloadKind::CronJob, false)
    );
    assert_eq!(during_job.basis, Basis::TimeMatched);

    let later = inv.resolve(ip("10.77.0.9"), t("2024-05-01T09:45:00Z"));
    assert_eq!(later.pod().unwrap().workload, "search");
    assert_eq!(later.basis, Basis::TimeMatched);

    // Between the two nobody had it: the current holder, flagged as such.
    let gap = inv.resolve(ip("10.77.0.9"), t("2024-05-01T09:10:00Z"));
    assert_eq!((gap.pod().unwrap().workload.as_str(), gap.basis), ("search", Basis::CurrentState));

    // Without the Job object, the CronJob is inferred from the Job's name.
    let bare = Inventory::build(&sources(&["cluster.json"]));
    let w = bare.resolve(ip("10.77.0.9"), t("2024-05-01T09:00:20Z"));
    let w = w.pod().unwrap();
    assert_eq!(
        (w.workload.as_str(), &w.kind, w.workload_inferred),
        ("report", &WorkloadKind::CronJob, true)
    );
}

#[test]
fn service_cluster_ips_resolve_with_their_backends() {
    let inv = cluster();
    for addr in ["10.96.0.30", "fd00:96::30"] {
        let e = inv.resolve(ip(addr), now());
        let Target::Service { service, backends } = &e.target else { panic!("{e:?}") };
        assert_eq!((service.namespace.as_str(), service.name.as_str()), ("shop", "cart"));
        // targetPort "grpc" resolved through the EndpointSlice's port of that name.
        assert_eq!(service.target_port(9000), 9000);
        assert_eq!(backends.len(), 1);
        assert_eq!(backends[0].pod, "cart-0");
    }
    let e = inv.resolve(ip("10.96.0.20"), now());
    let Target::Service { service, backends } = &e.target else { panic!("{e:?}") };
    assert_eq!(service.target_port(80), 8080);
    assert_eq!(backends[0].workload, "payments");
}

#[test]
fn addresses_outside_the_cluster_are_external() {
    let e = cluster().resolve(ip("93.184.216.34"), now());
    assert_eq!(e.target, Target::External);
}

// ---- scope ----

#[test]
fn scopes() {
    let inv = cluster();
    let r = |a: &str| inv.resolve(ip(a), now());
    let cases = [
        ("10.77.0.1", "10.77.0.2", false, Scope::PodToPod),
        ("10.77.0.1", "10.96.0.20", false, Scope::PodToService),
        ("172.18.0.3", "10.77.0.2", false, Scope::NodeToPod),
        ("10.77.0.1", "172.18.0.2", false, Scope::PodToNode),
        ("10.77.0.1", "93.184.216.34", false, Scope::PodToExternal),
        ("93.184.216.34", "10.77.0.2", false, Scope::ExternalToPod),
        ("10.77.0.2", "10.77.0.2", false, Scope::Local),
        ("127.0.0.1", "127.0.0.1", false, Scope::Local),
        ("10.77.0.1", "10.77.0.2", true, Scope::Local),
        ("172.18.0.2", "93.184.216.34", false, Scope::Unknown),
    ];
    for (c, s, local, want) in cases {
        assert_eq!(scope(&r(c), &r(s), local), want, "{c} -> {s}");
    }
    assert_eq!(Scope::PodToService.as_str(), "pod-to-service");
}

// ---- reasons ----

fn why(
    verdict: &str,
    protocol: &str,
    mesh: Option<&str>,
    client: &str,
    server: &str,
    port: u16,
) -> Vec<(ReasonCode, String)> {
    let inv = cluster();
    let (c, s) = (inv.resolve(ip(client), now()), inv.resolve(ip(server), now()));
    let input = ReasonInput { verdict, protocol, tls_mesh: mesh, client: &c, server: &s, port };
    reasons(&input).into_iter().map(|r| (r.code, r.message)).collect()
}

#[test]
fn server_not_meshed() {
    assert_eq!(
        why("plaintext", "http1", None, "10.77.0.1", "10.77.0.3", 8080),
        [(
            ReasonCode::ServerNotMeshed,
            "legacy has no linkerd-proxy: frontend -> legacy:8080 is plaintext (linkerd.io/inject=enabled on its \
             namespace but no linkerd-proxy container: the pod was not injected (restart it))"
                .to_string()
        )]
    );
    // Through the Service: named after it.
    let via = why("plaintext", "http1", None, "10.77.0.1", "10.96.0.40", 8080);
    assert_eq!(via[0].0, ReasonCode::ServerNotMeshed);
    assert!(
        via[0].1.starts_with("legacy has no linkerd-proxy: frontend -> legacy:8080 is plaintext"),
        "{}",
        via[0].1
    );
}

#[test]
fn client_not_meshed() {
    let r = why("plaintext", "http1", None, "10.77.0.3", "10.77.0.2", 8080);
    assert_eq!(
        r,
        [(
            ReasonCode::ClientNotMeshed,
            "legacy has no linkerd-proxy: payments's proxy accepts its plaintext on port 8080 (no policy requires \
             mTLS) (linkerd.io/inject=enabled on its namespace but no linkerd-proxy container: the pod was not \
             injected (restart it))"
                .to_string()
        )]
    );
}

#[test]
fn port_skipped_inbound_and_outbound() {
    let inbound = why("plaintext", "http1", None, "10.77.0.1", "10.77.0.2", 9090);
    assert_eq!(
        inbound,
        [(
            ReasonCode::PortSkipped,
            "payments skips inbound port 9090 (annotation config.linkerd.io/skip-inbound-ports): \
             frontend -> payments:9090 bypasses its linkerd-proxy and is plaintext"
                .to_string()
        )]
    );
    let outbound = why("opaque", "other", None, "10.77.0.1", "10.77.0.2", 5432);
    assert_eq!(outbound[0].0, ReasonCode::PortSkipped);
    assert!(outbound[0].1.starts_with("frontend skips outbound port 5432"), "{}", outbound[0].1);
}

#[test]
fn app_tls_and_mesh_tls_without_client_cert() {
    let app = why("tls-server-auth", "tls", None, "10.77.0.1", "10.77.0.2", 8443);
    assert_eq!(
        app,
        [(
            ReasonCode::AppTlsNotMesh,
            "frontend -> payments:8443 carries the application's own TLS, not mesh mTLS: it is TLS without a \
             client certificate"
                .to_string()
        )]
    );
    let mesh = why("tls-server-auth", "tls", Some("linkerd"), "10.77.0.1", "10.77.0.2", 8080);
    assert_eq!(mesh[0].0, ReasonCode::MeshTlsWithoutClientCert);
    assert_eq!(
        mesh[0].1,
        "linkerd TLS frontend -> payments:8080 carried no client certificate: frontend was not authenticated"
    );
}

#[test]
fn protocol_not_proxied_and_unknown() {
    let r = why("opaque", "other", None, "10.77.0.1", "10.77.0.2", 3306);
    assert_eq!(r[0].0, ReasonCode::ProtocolNotProxied);
    assert!(r[0].1.ends_with("list port 3306 in config.linkerd.io/opaque-ports"), "{}", r[0].1);
    // Plain HTTP between two Linkerd pods on an unskipped port: nothing here explains it.
    let u = why("plaintext", "http1", None, "10.77.0.1", "10.77.0.2", 8080);
    assert_eq!(
        u,
        [(
            ReasonCode::Unknown,
            "frontend and payments both run linkerd-proxy and port 8080 is not skipped: nothing in the \
             inventory explains why frontend -> payments:8080 is plaintext"
                .to_string()
        )]
    );
}

#[test]
fn different_meshes_and_other_namespaces() {
    let r = why("plaintext", "http1", None, "10.77.0.1", "10.77.0.4", 9080);
    assert_eq!(r[0].0, ReasonCode::DifferentMeshes);
    assert!(
        r[0].1.starts_with("frontend runs linkerd-proxy and bookinfo/reviews-v1 runs istio-proxy"),
        "{}",
        r[0].1
    );
}

#[test]
fn no_reasons_for_mtls_or_non_pod_scopes() {
    assert!(why("mtls", "tls", Some("linkerd"), "10.77.0.1", "10.77.0.2", 8080).is_empty());
    assert!(why("no-payload", "none", None, "10.77.0.1", "10.77.0.3", 8080).is_empty());
    assert!(why("plaintext", "http1", None, "172.18.0.3", "10.77.0.2", 8080).is_empty());
    assert!(why("plaintext", "http1", None, "10.77.0.1", "93.184.216.34", 80).is_empty());
}

// ---- identity ----

#[test]
fn identity_cross_check() {
    let inv = cluster();
    let payments = inv.resolve(ip("10.77.0.2"), now());
    let ok =
        check_identity("payments.shop.serviceaccount.identity.linkerd.cluster.local", &payments);
    assert_eq!(ok.as_str(), "match");
    let bad = check_identity("spiffe://cluster.local/ns/shop/sa/frontend", &payments);
    assert_eq!(
        bad,
        IdentityCheck::Mismatch(
            "the wire identity spiffe://cluster.local/ns/shop/sa/frontend (service account frontend in shop) \
             is not pod shop/payments-7f8b9c6d4-qwv5r's (service account payments in shop)"
                .into()
        )
    );
    let via_service = check_identity("payments.shop", &inv.resolve(ip("10.96.0.20"), now()));
    assert_eq!(via_service.as_str(), "match");
    let node = check_identity("payments.shop", &inv.resolve(ip("172.18.0.3"), now()));
    assert_eq!(node.as_str(), "not-applicable");
    let sni = check_identity("payments.shop.svc.cluster.local", &payments);
    assert_eq!(
        sni,
        IdentityCheck::NotApplicable(
            "payments.shop.svc.cluster.local is not a mesh identity".into()
        )
    );
}

// ---- edges and DTOs ----

#[test]
fn edges_add_up_per_workload_and_port() {
    let inv = cluster();
    let r = |a: &str| inv.resolve(ip(a), now());
    let (frontend, payments, legacy) = (r("10.77.0.1"), r("10.77.0.2"), r("10.77.0.3"));
    let flows = [
        (&frontend, &payments, 8080, "mtls", 7),
        (&frontend, &payments, 8080, "plaintext", 0),
        (&frontend, &payments, 8080, "mtls", 7),
        (&frontend, &legacy, 8080, "tls-server-auth", 5),
    ];
    let edges = edges(flows.iter().map(|&(client, server, port, verdict, severity)| EdgeFlow {
        client,
        server,
        port,
        verdict,
        severity,
    }));
    assert_eq!(edges.len(), 2);
    let worst = &edges[0];
    assert_eq!((worst.flows, worst.worst.as_str()), (3, "plaintext"));
    assert_eq!(worst.verdicts.get("mtls"), Some(&2));
    let dto = serde_json::to_value(edge_dto(worst)).unwrap();
    assert_eq!(
        dto,
        serde_json::json!({
            "client": {"kind": "Deployment", "namespace": "shop", "name": "frontend"},
            "server": {"kind": "Deployment", "namespace": "shop", "name": "payments"},
            "port": 8080, "scope": "pod-to-pod", "flows": 3,
            "verdicts": {"mtls": 2, "plaintext": 1}, "worst": "plaintext",
            "reasons": [], "identity_mismatches": 0
        })
    );
}

#[test]
fn workload_dtos() {
    let inv = cluster();
    let dto = |a: &str| serde_json::to_value(workload_dto(&inv.resolve(ip(a), now()))).unwrap();
    assert_eq!(
        dto("10.77.0.1"),
        serde_json::json!({
            "namespace": "shop", "pod": "frontend-6c9d8f7b5d-x2x7k", "workload": "frontend",
            "kind": "Deployment", "service_account": "frontend", "node": "mtlscope-worker",
            "mesh": "linkerd", "basis": "time-matched"
        })
    );
    assert_eq!(
        dto("10.96.0.30"),
        serde_json::json!({
            "namespace": "shop", "pod": null, "workload": "cart", "kind": "Service",
            "service_account": null, "node": null, "mesh": "none", "basis": "time-matched",
            "pods": ["shop/cart-0"]
        })
    );
    assert_eq!(dto("172.18.0.3")["pods"], serde_json::json!(["monitoring/node-exporter-9xk2p"]));
    assert_eq!(dto("8.8.8.8"), serde_json::Value::Null);
}

#[test]
fn inventory_json_is_archivable() {
    let doc: serde_json::Value = serde_json::from_str(&cluster().to_json()).unwrap();
    assert_eq!(doc["schema"], INVENTORY_SCHEMA);
    let pods = doc["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 10);
    let job = pods.iter().find(|p| p["pod"] == "report-28583310-8xk4v").unwrap();
    assert_eq!(job["created"], "2024-05-01T09:00:00.000000Z");
    assert_eq!(job["ended"], "2024-05-01T09:00:42.000000Z");
    assert_eq!(job["kind"], "CronJob");
    let payments = pods.iter().find(|p| p["workload"] == "payments").unwrap();
    assert_eq!(
        payments["mesh"]["skip_inbound_ports"],
        serde_json::json!([
            {"ports": "9090", "source": "annotation config.linkerd.io/skip-inbound-ports"},
            {"ports": "4190,4191,4567,4568,9090", "source": "linkerd-init argument --inbound-ports-to-ignore"}
        ])
    );
    let cart = doc["services"].as_array().unwrap().iter().find(|s| s["name"] == "cart").unwrap();
    assert_eq!(cart["ips"], serde_json::json!(["10.96.0.30", "fd00:96::30"]));
    let worker =
        doc["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "mtlscope-worker").unwrap();
    assert_eq!(worker["host_network_pods"], serde_json::json!(["monitoring/node-exporter-9xk2p"]));
}

#[test]
fn ambient_sentences() {
    let r = why("plaintext", "http1", None, "10.77.0.5", "10.77.0.3", 8080);
    assert_eq!(r[0].0, ReasonCode::ServerNotMeshed);
    assert!(
        r[0].1.starts_with(
            "shop/legacy is not in the Istio mesh (no istio-proxy, not ambient): \
             productpage-v1 -> shop/legacy:8080 is plaintext"
        ),
        "{}",
        r[0].1
    );
    let c = why("plaintext", "http1", None, "10.77.0.3", "10.77.0.6", 9080);
    assert_eq!(c[0].0, ReasonCode::ClientNotMeshed);
    assert!(
        c[0].1.starts_with(
            "legacy is not in the Istio mesh (no istio-proxy, not ambient): ambient/details-v1 \
             accepts its plaintext on port 9080"
        ),
        "{}",
        c[0].1
    );
}
