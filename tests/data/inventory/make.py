#!/usr/bin/env python3
"""Writes the inventory test files in this directory.

The objects are modelled on what `kubectl get pods,services,endpointslices,nodes -A -o json`
(and `-o yaml`) prints for a kind cluster running Linkerd 2.14 (classic and native sidecars),
Istio 1.22 (sidecar and ambient), a node-exporter DaemonSet on the host network, a dual-stack
StatefulSet and a CronJob whose finished Job pod's address was reused: kubectl's key order
(sorted), its 4-space JSON and its YAML layout, with uids, owner references, conditions and
container statuses as the API server fills them. Pod addresses are 10.77.0.x, as in the
capture fixtures: 10.77.0.1 is the client (frontend), 10.77.0.2 the server (payments).

    python3 tests/data/inventory/make.py     # rewrites cluster.json, cluster.yaml, extras.yaml, pod.json
"""
import json
import os
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = "2024-05-01T08:00:00Z"


def uid(n):
    return "6f1c2a4e-0000-4000-8000-%012d" % n


def owner(kind, name, n, api="apps/v1"):
    return [{"apiVersion": api, "blockOwnerDeletion": True, "controller": True,
             "kind": kind, "name": name, "uid": uid(n)}]


def container(name, image, ports=(), **extra):
    c = {"image": image, "imagePullPolicy": "IfNotPresent", "name": name, "resources": {},
         "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "File",
         "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                           "name": "kube-api-access-%s" % name[:5], "readOnly": True}]}
    if ports:
        c["ports"] = [{"containerPort": p, "name": n, "protocol": "TCP"} for n, p in ports]
    c.update(extra)
    return c


def linkerd_init(inbound="4190,4191,4567,4568", outbound="4567,4568", **extra):
    return container("linkerd-init", "cr.l5d.io/linkerd/proxy-init:v2.2.3", args=[
        "--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140",
        "--proxy-uid", "2102", "--inbound-ports-to-ignore", inbound,
        "--outbound-ports-to-ignore", outbound], securityContext={
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}, "privileged": False,
        "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 65534}, **extra)


def linkerd_proxy(**extra):
    return container("linkerd-proxy", "cr.l5d.io/linkerd/proxy:stable-2.14.10",
                     [("linkerd-proxy", 4143), ("linkerd-admin", 4191)],
                     env=[{"name": "LINKERD2_PROXY_LOG", "value": "warn,linkerd=info"},
                          {"name": "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "value": "0.0.0.0:4143"}],
                     securityContext={"allowPrivilegeEscalation": False,
                                      "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                      "runAsUser": 2102}, **extra)


def istio_proxy(**extra):
    return container("istio-proxy", "docker.io/istio/proxyv2:1.22.1",
                     [("http-envoy-prom", 15090)],
                     args=["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                           "--proxyLogLevel=warning"], **extra)


def running(names, start):
    return [{"containerID": "containerd://%064x" % (i + 1), "image": "img", "imageID": "img@sha256:%064x" % i,
             "lastState": {}, "name": n, "ready": True, "restartCount": 0, "started": True,
             "state": {"running": {"startedAt": start}}} for i, n in enumerate(names)]


def conditions(t, ready="True"):
    return [{"lastProbeTime": None, "lastTransitionTime": t, "status": s, "type": ty}
            for ty, s in [("PodReadyToStartContainers", "True"), ("Initialized", "True"),
                          ("Ready", ready), ("ContainersReady", ready), ("PodScheduled", "True")]]


def pod(n, ns, name, ips, node, host_ip, containers, created=T0, labels=None, annotations=None,
        owners=None, init=None, sa="default", host_network=False, phase="Running", statuses=None):
    meta = {"creationTimestamp": created, "name": name, "namespace": ns,
            "resourceVersion": str(1000 + n), "uid": uid(n)}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    if owners:
        meta["ownerReferences"] = owners
        meta["generateName"] = name[: name.rfind("-") + 1]
    spec = {"containers": containers, "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
            "nodeName": node, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
            "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "serviceAccount": sa, "serviceAccountName": sa,
            "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready",
                             "operator": "Exists", "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access-x", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]}
    if init:
        spec["initContainers"] = init
    if host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    start = created.replace(":00Z", ":02Z")
    status = {"conditions": conditions(start, "True" if phase == "Running" else "False"),
              "containerStatuses": statuses or running([c["name"] for c in containers], start),
              "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "phase": phase,
              "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips], "qosClass": "BestEffort",
              "startTime": start}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(n, name, ip, ipv6=None, pod_cidrs=("10.77.0.0/24",)):
    addrs = [{"address": ip, "type": "InternalIP"}]
    if ipv6:
        addrs.append({"address": ipv6, "type": "InternalIP"})
    addrs.append({"address": name, "type": "Hostname"})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {
        "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                        "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        "creationTimestamp": "2024-04-30T12:00:00Z",
        "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                   "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                   "kubernetes.io/os": "linux"},
        "name": name, "resourceVersion": str(500 + n), "uid": uid(n)},
        "spec": {"podCIDR": pod_cidrs[0], "podCIDRs": list(pod_cidrs),
                 "providerID": "kind://docker/mtlscope/" + name},
        "status": {"addresses": addrs,
                   "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
                   "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
                   "conditions": [{"lastHeartbeatTime": "2024-05-01T09:59:00Z",
                                   "lastTransitionTime": "2024-04-30T12:00:30Z",
                                   "message": "kubelet is posting ready status", "reason": "KubeletReady",
                                   "status": "True", "type": "Ready"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "nodeInfo": {"architecture": "amd64", "bootID": uid(n), "containerRuntimeVersion": "containerd://1.7.15",
                                "kernelVersion": "6.1.0-21-amd64", "kubeProxyVersion": "v1.30.0",
                                "kubeletVersion": "v1.30.0", "machineID": "%032x" % n,
                                "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "systemUUID": uid(n)}}}


def service(n, ns, name, ips, ports, selector):
    fam = ["IPv6" if ":" in ip else "IPv4" for ip in ips]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {
        "creationTimestamp": T0, "labels": {"app": name}, "name": name, "namespace": ns,
        "resourceVersion": str(2000 + n), "uid": uid(n)},
        "spec": {"clusterIP": ips[0], "clusterIPs": ips, "internalTrafficPolicy": "Cluster",
                 "ipFamilies": fam, "ipFamilyPolicy": "PreferDualStack" if len(ips) > 1 else "SingleStack",
                 "ports": [dict(p, protocol="TCP") for p in ports], "selector": selector,
                 "sessionAffinity": "None", "type": "ClusterIP"},
        "status": {"loadBalancer": {}}}


def slice_(n, ns, svc, family, endpoints, ports):
    return {"addressType": family, "apiVersion": "discovery.k8s.io/v1",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                           "nodeName": nd, "targetRef": {"kind": "Pod", "name": pn, "namespace": ns, "uid": uid(pu)}}
                          for ip, pn, pu, nd in endpoints],
            "kind": "EndpointSlice",
            "metadata": {"annotations": {"endpoints.kubernetes.io/last-change-trigger-time": T0},
                         "creationTimestamp": T0, "generateName": svc + "-", "generation": 3,
                         "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                    "kubernetes.io/service-name": svc},
                         "name": "%s-%s" % (svc, "x7k2q" if family == "IPv4" else "m4p9z"),
                         "namespace": ns,
                         "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": True, "controller": True,
                                              "kind": "Service", "name": svc, "uid": uid(n)}],
                         "resourceVersion": str(3000 + n), "uid": uid(n + 500)},
            "ports": [dict(p, protocol="TCP") for p in ports]}


LINKERD_ANN = {"linkerd.io/created-by": "linkerd/proxy-injector stable-2.14.10",
               "linkerd.io/inject": "enabled", "linkerd.io/proxy-version": "stable-2.14.10",
               "linkerd.io/trust-root-sha256": "f6f1c9b1e0a1c3b2d7a8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"}

pods = [
    # Linkerd, classic sidecar: the client of the capture fixtures.
    pod(101, "shop", "frontend-6c9d8f7b5d-x2x7k", ["10.77.0.1"], "mtlscope-worker", "172.18.0.3",
        [linkerd_proxy(), container("frontend", "ghcr.io/example/frontend:1.4", [("http", 8080)])],
        labels={"app": "frontend", "linkerd.io/control-plane-ns": "linkerd",
                "linkerd.io/proxy-deployment": "frontend", "linkerd.io/workload-ns": "shop",
                "pod-template-hash": "6c9d8f7b5d"},
        annotations=dict(LINKERD_ANN, **{"config.linkerd.io/skip-outbound-ports": "5432"}),
        owners=owner("ReplicaSet", "frontend-6c9d8f7b5d", 201), init=[linkerd_init()], sa="frontend"),
    # Linkerd, native sidecar (linkerd-proxy is an init container with restartPolicy: Always).
    pod(102, "shop", "payments-7f8b9c6d4-qwv5r", ["10.77.0.2"], "mtlscope-worker", "172.18.0.3",
        [container("payments", "ghcr.io/example/payments:2.0", [("http", 8080), ("metrics", 9090)])],
        labels={"app": "payments", "linkerd.io/control-plane-ns": "linkerd",
                "linkerd.io/proxy-deployment": "payments", "linkerd.io/workload-ns": "shop",
                "pod-template-hash": "7f8b9c6d4"},
        annotations=dict(LINKERD_ANN, **{"config.alpha.linkerd.io/proxy-enable-native-sidecar": "true",
                                         "config.linkerd.io/skip-inbound-ports": "9090",
                                         "config.linkerd.io/opaque-ports": "5672"}),
        owners=owner("ReplicaSet", "payments-7f8b9c6d4", 202),
        init=[linkerd_init(inbound="4190,4191,4567,4568,9090"), linkerd_proxy(restartPolicy="Always")],
        sa="payments"),
    # No proxy, in a namespace with linkerd.io/inject=enabled: created before injection.
    pod(103, "shop", "legacy-5b6c7d8f9-tt4wn", ["10.77.0.3"], "mtlscope-worker", "172.18.0.3",
        [container("legacy", "ghcr.io/example/legacy:0.9", [("http", 8080)])],
        labels={"app": "legacy", "pod-template-hash": "5b6c7d8f9"},
        owners=owner("ReplicaSet", "legacy-5b6c7d8f9", 203), sa="legacy"),
    # Istio sidecar.
    pod(104, "bookinfo", "reviews-v1-5c4b8d9f7c-9zq5m", ["10.77.0.4"], "mtlscope-worker", "172.18.0.3",
        [container("reviews", "docker.io/istio/examples-bookinfo-reviews-v1:1.19.1", [("http", 9080)]),
         istio_proxy()],
        labels={"app": "reviews", "pod-template-hash": "5c4b8d9f7c", "security.istio.io/tlsMode": "istio",
                "service.istio.io/canonical-name": "reviews", "service.istio.io/canonical-revision": "v1",
                "version": "v1"},
        annotations={"istio.io/rev": "default", "kubectl.kubernetes.io/default-container": "reviews",
                     "prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020",
                     "sidecar.istio.io/status": json.dumps({"initContainers": ["istio-init"],
                                                           "containers": ["istio-proxy"],
                                                           "volumes": ["istio-envoy"], "revision": "default"})},
        owners=owner("ReplicaSet", "reviews-v1-5c4b8d9f7c", 204),
        init=[container("istio-init", "docker.io/istio/proxyv2:1.22.1",
                        args=["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                              "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"])],
        sa="bookinfo-reviews"),
    # Istio ambient: ztunnel redirection annotated by istio-cni.
    pod(105, "ambient", "productpage-v1-d5789fdfb-5cjkz", ["10.77.0.5"], "mtlscope-worker", "172.18.0.3",
        [container("productpage", "docker.io/istio/examples-bookinfo-productpage-v1:1.19.1", [("http", 9080)])],
        labels={"app": "productpage", "pod-template-hash": "d5789fdfb", "version": "v1"},
        annotations={"ambient.istio.io/redirection": "enabled"},
        owners=owner("ReplicaSet", "productpage-v1-d5789fdfb", 205), sa="bookinfo-productpage"),
    # Istio ambient by its namespace's label only (extras.yaml has the Namespace).
    pod(106, "ambient", "details-v1-65cfcf56f9-4dn6c", ["10.77.0.6"], "mtlscope-worker", "172.18.0.3",
        [container("details", "docker.io/istio/examples-bookinfo-details-v1:1.19.1", [("http", 9080)])],
        labels={"app": "details", "pod-template-hash": "65cfcf56f9", "version": "v1"},
        owners=owner("ReplicaSet", "details-v1-65cfcf56f9", 206), sa="bookinfo-details"),
    # Dual stack StatefulSet pod.
    pod(107, "shop", "cart-0", ["10.77.0.7", "fd00:77::7"], "mtlscope-worker", "172.18.0.3",
        [container("cart", "ghcr.io/example/cart:3.1", [("grpc", 9000)])],
        labels={"app": "cart", "apps.kubernetes.io/pod-index": "0", "controller-revision-hash": "cart-7d9c8b6f5",
                "statefulset.kubernetes.io/pod-name": "cart-0"},
        owners=owner("StatefulSet", "cart", 207), sa="cart"),
    # Host-network DaemonSet pod: shares the node's address.
    pod(108, "monitoring", "node-exporter-9xk2p", ["172.18.0.3"], "mtlscope-worker", "172.18.0.3",
        [container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.0", [("metrics", 9100)])],
        labels={"app.kubernetes.io/name": "node-exporter", "controller-revision-hash": "6b8d4d7f9c",
                "pod-template-generation": "1"},
        owners=owner("DaemonSet", "node-exporter", 208), sa="node-exporter", host_network=True),
    # A CronJob's finished Job pod ...
    pod(109, "batch", "report-28583310-8xk4v", ["10.77.0.9"], "mtlscope-worker", "172.18.0.3",
        [container("report", "ghcr.io/example/report:1.0")], created="2024-05-01T09:00:00Z",
        labels={"batch.kubernetes.io/controller-uid": uid(209), "batch.kubernetes.io/job-name": "report-28583310",
                "controller-uid": uid(209), "job-name": "report-28583310"},
        owners=owner("Job", "report-28583310", 209, api="batch/v1"), phase="Succeeded",
        statuses=[{"containerID": "containerd://%064x" % 9, "image": "ghcr.io/example/report:1.0",
                   "imageID": "ghcr.io/example/report@sha256:%064x" % 9, "lastState": {}, "name": "report",
                   "ready": False, "restartCount": 0, "started": False,
                   "state": {"terminated": {"containerID": "containerd://%064x" % 9, "exitCode": 0,
                                            "finishedAt": "2024-05-01T09:00:42Z", "reason": "Completed",
                                            "startedAt": "2024-05-01T09:00:03Z"}}}]),
    # ... whose address a later pod was given.
    pod(110, "shop", "search-5d7f9b8c6-h4k2m", ["10.77.0.9"], "mtlscope-worker", "172.18.0.3",
        [container("search", "ghcr.io/example/search:1.2", [("http", 8080)])], created="2024-05-01T09:30:00Z",
        labels={"app": "search", "pod-template-hash": "5d7f9b8c6"},
        owners=owner("ReplicaSet", "search-5d7f9b8c6", 210), sa="search"),
]

services = [
    service(301, "shop", "payments", ["10.96.0.20"], [{"name": "http", "port": 80, "targetPort": 8080}],
            {"app": "payments"}),
    service(302, "shop", "cart", ["10.96.0.30", "fd00:96::30"], [{"name": "grpc", "port": 9000, "targetPort": "grpc"}],
            {"app": "cart"}),
    service(303, "shop", "legacy", ["10.96.0.40"], [{"name": "http", "port": 8080, "targetPort": 8080}],
            {"app": "legacy"}),
]
slices = [
    slice_(301, "shop", "payments", "IPv4", [("10.77.0.2", "payments-7f8b9c6d4-qwv5r", 102, "mtlscope-worker")],
           [{"name": "http", "port": 8080}]),
    slice_(302, "shop", "cart", "IPv4", [("10.77.0.7", "cart-0", 107, "mtlscope-worker")], [{"name": "grpc", "port": 9000}]),
    slice_(302, "shop", "cart", "IPv6", [("fd00:77::7", "cart-0", 107, "mtlscope-worker")], [{"name": "grpc", "port": 9000}]),
    slice_(303, "shop", "legacy", "IPv4", [("10.77.0.3", "legacy-5b6c7d8f9-tt4wn", 103, "mtlscope-worker")],
           [{"name": "http", "port": 8080}]),
]
nodes = [node(401, "mtlscope-control-plane", "172.18.0.2", "fc00:f853:ccd:e793::2", ("10.244.0.0/24", "fd00:10:244::/64")),
         node(402, "mtlscope-worker", "172.18.0.3", "fc00:f853:ccd:e793::3", ("10.77.0.0/24", "fd00:77::/64"))]

# `kubectl get pods,services,endpointslices,nodes -A -o json` lists kinds in the order asked.
cluster = {"apiVersion": "v1", "items": pods + services + slices + nodes, "kind": "List",
           "metadata": {"resourceVersion": ""}}

namespaces = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "annotations": {"linkerd.io/inject": "enabled"}, "creationTimestamp": "2024-04-30T12:10:00Z",
        "labels": {"kubernetes.io/metadata.name": "shop"}, "name": "shop", "resourceVersion": "90",
        "uid": uid(501)}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "creationTimestamp": "2024-04-30T12:10:00Z",
        "labels": {"istio.io/dataplane-mode": "ambient", "kubernetes.io/metadata.name": "ambient"},
        "name": "ambient", "resourceVersion": "91", "uid": uid(502)},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
]
replica_set = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
    "annotations": {"deployment.kubernetes.io/desired-replicas": "1", "deployment.kubernetes.io/max-replicas": "2",
                    "deployment.kubernetes.io/revision": "3"},
    "creationTimestamp": T0, "generation": 1,
    "labels": {"app": "frontend", "pod-template-hash": "6c9d8f7b5d"}, "name": "frontend-6c9d8f7b5d",
    "namespace": "shop", "ownerReferences": owner("Deployment", "frontend", 601), "resourceVersion": "1201",
    "uid": uid(201)},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "frontend", "pod-template-hash": "6c9d8f7b5d"}},
             "template": {"metadata": {"labels": {"app": "frontend", "pod-template-hash": "6c9d8f7b5d"}},
                          "spec": {"containers": [{"image": "ghcr.io/example/frontend:1.4", "name": "frontend"}]}}},
    "status": {"availableReplicas": 1, "fullyLabeledReplicas": 1, "observedGeneration": 1,
               "readyReplicas": 1, "replicas": 1}}
job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
    "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2024-05-01T09:00:00Z"},
    "creationTimestamp": "2024-05-01T09:00:00Z", "generation": 1,
    "labels": {"batch.kubernetes.io/controller-uid": uid(209), "batch.kubernetes.io/job-name": "report-28583310",
               "controller-uid": uid(209), "job-name": "report-28583310"},
    "name": "report-28583310", "namespace": "batch", "ownerReferences": owner("CronJob", "report", 609, api="batch/v1"),
    "resourceVersion": "1209", "uid": uid(209)},
    "spec": {"backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1, "parallelism": 1,
             "template": {"spec": {"containers": [{"image": "ghcr.io/example/report:1.0", "name": "report"}],
                                   "restartPolicy": "OnFailure"}}},
    "status": {"completionTime": "2024-05-01T09:00:45Z", "conditions": [
        {"lastProbeTime": "2024-05-01T09:00:45Z", "lastTransitionTime": "2024-05-01T09:00:45Z",
         "status": "True", "type": "Complete"}], "ready": 0, "startTime": "2024-05-01T09:00:00Z",
        "succeeded": 1, "uncountedTerminatedPods": {}}}
config_map = {"apiVersion": "v1", "data": {"LOG_LEVEL": "info"}, "kind": "ConfigMap", "metadata": {
    "creationTimestamp": T0, "name": "frontend-config", "namespace": "shop", "resourceVersion": "77", "uid": uid(701)}}


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


write("cluster.json", json.dumps(cluster, indent=4, sort_keys=True) + "\n")
write("cluster.yaml", yaml.safe_dump(cluster, sort_keys=True, default_flow_style=False, width=1000))
# `kubectl get namespaces,replicasets,jobs,configmaps -A -o yaml` split into documents, as
# `kubectl get ... -o yaml` piped through `yq -s` or hand-kept manifests look.
write("extras.yaml", "".join("---\n" + yaml.safe_dump(o, sort_keys=True, default_flow_style=False, width=1000)
                             for o in namespaces + [replica_set, job, config_map]))
# `kubectl get pod -n shop cart-0 -o json`: a single object.
write("pod.json", json.dumps(pods[6], indent=4, sort_keys=True) + "\n")
