//! A Pod object turned into a [`WorkloadRef`]: its owner, addresses, lifetime and mesh.

use super::mesh::mesh_status;
use super::model::{Lifetime, WorkloadKind, WorkloadRef};
use crate::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use std::collections::HashMap;
use std::net::IpAddr;

/// Owner objects by (namespace, name), to follow a pod's owner one level further up.
#[derive(Default)]
pub(crate) struct Owners<'a> {
    pub replica_sets: HashMap<(&'a str, &'a str), &'a ReplicaSet>,
    pub jobs: HashMap<(&'a str, &'a str), &'a Job>,
    pub namespaces: HashMap<&'a str, &'a Namespace>,
}

pub(crate) fn to_time(t: &Time) -> Timestamp {
    Timestamp(i64::try_from(t.0.as_nanosecond()).unwrap_or(i64::MAX))
}

pub(crate) fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

pub(crate) fn workload_ref(pod: &Pod, owners: &Owners<'_>) -> WorkloadRef {
    let meta = &pod.metadata;
    let namespace = namespace_of(meta);
    let name = meta.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let (workload, kind, inferred) = owner(pod, owners);
    let service_account = spec
        .and_then(|s| s.service_account_name.clone().or_else(|| s.service_account.clone()))
        .unwrap_or_else(|| "default".to_string());
    WorkloadRef {
        namespace: namespace.to_string(),
        pod: name,
        workload,
        kind,
        workload_inferred: inferred,
        service_account,
        node: spec.and_then(|s| s.node_name.clone()),
        mesh: mesh_status(pod, owners.namespaces.get(namespace).copied()),
        ips: pod_ips(pod),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        phase: pod.status.as_ref().and_then(|s| s.phase.clone()),
        lifetime: lifetime(pod),
    }
}

/// Every address in `status.podIPs`, else `status.podIP`; unparsable ones are left out.
pub(crate) fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else { return Vec::new() };
    let mut ips: Vec<IpAddr> =
        status.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()).collect();
    if ips.is_empty() {
        ips.extend(status.pod_ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()));
    }
    ips
}

fn lifetime(pod: &Pod) -> Lifetime {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let terminal =
        status.and_then(|s| s.phase.as_deref()).is_some_and(|p| p == "Succeeded" || p == "Failed");
    let finished_at = status
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(to_time)
        .max();
    let deleted = meta.deletion_timestamp.as_ref().map(to_time);
    let ended = match (terminal.then_some(finished_at).flatten(), deleted) {
        (Some(f), Some(d)) => Some(f.min(d)),
        (f, d) => f.or(d),
    };
    Lifetime {
        created: meta.creation_timestamp.as_ref().map(to_time),
        ended,
        finished: terminal || deleted.is_some(),
    }
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let refs = meta.owner_references.as_deref().unwrap_or_default();
    refs.iter().find(|r| r.controller == Some(true)).or_else(|| refs.first())
}

/// (workload name, kind, inferred from names/labels rather than owner objects).
fn owner(pod: &Pod, owners: &Owners<'_>) -> (String, WorkloadKind, bool) {
    let meta = &pod.metadata;
    let namespace = namespace_of(meta);
    let pod_name = meta.name.clone().unwrap_or_default();
    let labels = meta.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let Some(owner) = controller(meta) else {
        // A Job's pods carry its name even when the owner reference was stripped.
        return match label("batch.kubernetes.io/job-name").or(label("job-name")) {
            Some(job) => job_owner(job, namespace, owners),
            None => (pod_name, WorkloadKind::Pod, false),
        };
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            if let Some(rs) = owners.replica_sets.get(&(namespace, owner.name.as_str())) {
                return match controller(&rs.metadata) {
                    Some(up) => (up.name.clone(), WorkloadKind::from_owner_kind(&up.kind), false),
                    None => (owner.name.clone(), WorkloadKind::ReplicaSet, false),
                };
            }
            match deployment_from_replica_set(&owner.name, label("pod-template-hash")) {
                Some(d) => (d.to_string(), WorkloadKind::Deployment, true),
                None => (owner.name.clone(), WorkloadKind::ReplicaSet, false),
            }
        }
        "Job" => job_owner(&owner.name, namespace, owners),
        kind => (owner.name.clone(), WorkloadKind::from_owner_kind(kind), false),
    }
}

fn job_owner(job: &str, namespace: &str, owners: &Owners<'_>) -> (String, WorkloadKind, bool) {
    if let Some(j) = owners.jobs.get(&(namespace, job)) {
        return match controller(&j.metadata) {
            Some(up) => (up.name.clone(), WorkloadKind::from_owner_kind(&up.kind), false),
            None => (job.to_string(), WorkloadKind::Job, false),
        };
    }
    match cronjob_from_job(job) {
        Some(c) => (c.to_string(), WorkloadKind::CronJob, true),
        None => (job.to_string(), WorkloadKind::Job, false),
    }
}

/// A Deployment's ReplicaSet is `<deployment>-<pod-template-hash>`. With the pod's
/// `pod-template-hash` label the suffix is known; without it, a suffix drawn from the alphabet
/// Kubernetes uses for such hashes (no vowels, no 0, 1, 3) is taken as one.
pub(crate) fn deployment_from_replica_set<'a>(rs: &'a str, hash: Option<&str>) -> Option<&'a str> {
    let (base, suffix) = rs.rsplit_once('-')?;
    if base.is_empty() {
        return None;
    }
    let looks_like_hash = || {
        (5..=10).contains(&suffix.len())
            && suffix.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    };
    match hash {
        Some(h) => (suffix == h).then_some(base),
        None => looks_like_hash().then_some(base),
    }
}

/// A CronJob names its Jobs `<cronjob>-<scheduled time in minutes since the epoch>`.
pub(crate) fn cronjob_from_job(job: &str) -> Option<&str> {
    let (base, suffix) = job.rsplit_once('-')?;
    let minutes = (!base.is_empty() && (8..=10).contains(&suffix.len()))
        .then(|| suffix.parse::<u64>().ok())
        .flatten()?;
    // 2001 .. 2100: a timestamp, not a counter or a version.
    (16_000_000..68_000_000).contains(&minutes).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_set_names_give_the_deployment() {
        assert_eq!(deployment_from_replica_set("web-7d4b9c8f5", Some("7d4b9c8f5")), Some("web"));
        assert_eq!(deployment_from_replica_set("web-api-7d4b9c8f5", None), Some("web-api"));
        assert_eq!(deployment_from_replica_set("web-7d4b9c8f5", Some("other")), None);
        // "backend" has vowels: not a hash, so the ReplicaSet is its own workload.
        assert_eq!(deployment_from_replica_set("my-backend", None), None);
        assert_eq!(deployment_from_replica_set("nodash", None), None);
    }

    #[test]
    fn cronjob_names_give_the_cronjob() {
        assert_eq!(cronjob_from_job("nightly-backup-28583310"), Some("nightly-backup"));
        assert_eq!(cronjob_from_job("migrate-1"), None);
        assert_eq!(cronjob_from_job("db-migrate-v2"), None);
        assert_eq!(cronjob_from_job("-28583310"), None);
    }
}
