use super::*;
use crate::analyze::Hop;

const RESUMED: &str = "TLS 1.2 session resumption by session ticket: no certificates on the wire";

fn flow(id: u64, verdict: Verdict, issued: &[SessionKey], resumes: &[SessionKey]) -> AnalyzedFlow {
    let mut judgement = Judgement::new(verdict, if resumes.is_empty() { "full" } else { RESUMED });
    if verdict == Verdict::Mtls {
        judgement.proof = Some(Proof::Observed);
    }
    let mut record = crate::fuzzing::record(Classification::Empty, Default::default(), true);
    record.id = id;
    record.first_seen = Timestamp(id as i64 * 1_000_000_000);
    record.last_seen = record.first_seen;
    AnalyzedFlow {
        record,
        client_certificate: Some(if verdict == Verdict::Mtls {
            ClientCert::Sent
        } else {
            ClientCert::Unknown
        }),
        judgement,
        identities: None,
        hop: Hop::Network,
        input: 0,
        interface: None,
        session: SessionKeys { issued: issued.to_vec(), resumes: resumes.to_vec(), psk: false },
        resumed_from: None,
        placement: None,
        link_cap_hit: false,
    }
}

fn run(linker: &mut Linker, flows: Vec<AnalyzedFlow>) -> Vec<AnalyzedFlow> {
    let mut out = Vec::new();
    for f in flows {
        linker.push(f, &mut |f| out.push(f));
    }
    linker.finish(&mut |f| out.push(f));
    out
}

const T1: SessionKey = SessionKey::Ticket(0x1111);
const T2: SessionKey = SessionKey::Ticket(0x2222);
const ID1: SessionKey = SessionKey::Id(0x1111);

#[test]
fn resumed_flow_inherits_a_mutual_origin() {
    let out = run(
        &mut Linker::default(),
        vec![flow(1, Verdict::Mtls, &[T1], &[]), flow(2, Verdict::TlsUnknownAuth, &[], &[T1])],
    );
    let r = &out[1];
    assert_eq!(r.judgement.verdict, Verdict::Mtls);
    assert_eq!(r.judgement.proof, Some(Proof::Resumed));
    assert_eq!(r.client_certificate, Some(ClientCert::Sent));
    assert!(r.judgement.evidence.contains("resumes the session that flow 1 of input 0"));
    assert!(
        !r.judgement.evidence.contains("no certificates on the wire"),
        "{}",
        r.judgement.evidence
    );
    let o = r.resumed_from.as_ref().unwrap();
    assert_eq!(
        (o.flow, o.by, o.verdict, o.proof),
        (1, "ticket", Verdict::Mtls, Some(Proof::Observed))
    );
}

#[test]
fn server_only_origin_makes_a_server_only_resumption() {
    let out = run(
        &mut Linker::default(),
        vec![
            flow(1, Verdict::TlsServerAuth, &[ID1], &[]),
            flow(2, Verdict::TlsUnknownAuth, &[], &[ID1]),
        ],
    );
    assert_eq!(out[1].judgement.verdict, Verdict::TlsServerAuth);
    assert_eq!(out[1].judgement.proof, Some(Proof::Resumed));
    assert_eq!(out[1].resumed_from.as_ref().unwrap().by, "session-id");
}

#[test]
fn session_id_and_ticket_are_distinct_handles() {
    // Same digest, different kind of handle: no link.
    let out = run(
        &mut Linker::default(),
        vec![flow(1, Verdict::Mtls, &[ID1], &[]), flow(2, Verdict::TlsUnknownAuth, &[], &[T1])],
    );
    assert_eq!(out[1].judgement.verdict, Verdict::TlsUnknownAuth);
    assert!(out[1].resumed_from.is_none());
}

#[test]
fn resumed_flow_waits_for_an_origin_that_finishes_later() {
    // The pooled origin connection outlives the resumed one, so it is judged after it.
    let out = run(
        &mut Linker::default(),
        vec![
            flow(2, Verdict::TlsUnknownAuth, &[], &[T1]),
            flow(3, Verdict::TlsServerAuth, &[], &[]),
            flow(1, Verdict::Mtls, &[T1], &[]),
        ],
    );
    let ids: Vec<u64> = out.iter().map(|f| f.record.id).collect();
    assert_eq!(ids, [3, 1, 2], "the waiting flow is released right after its origin");
    assert_eq!(out[2].judgement.verdict, Verdict::Mtls);
    assert_eq!(out[2].resumed_from.as_ref().unwrap().flow, 1);
}

#[test]
fn missing_origin_is_reported_at_the_end_and_says_why() {
    let out = run(&mut Linker::default(), vec![flow(2, Verdict::TlsUnknownAuth, &[], &[T1])]);
    assert_eq!(out.len(), 1, "a waiting flow is never lost");
    assert_eq!(out[0].judgement.verdict, Verdict::TlsUnknownAuth);
    assert!(out[0].judgement.evidence.ends_with("is not in the capture"));
    assert!(out[0].resumed_from.is_none());
}

#[test]
fn a_renewed_ticket_chains_to_the_resumed_flow() {
    let out = run(
        &mut Linker::default(),
        vec![
            flow(1, Verdict::Mtls, &[T1], &[]),
            flow(2, Verdict::TlsUnknownAuth, &[T2], &[T1]),
            flow(3, Verdict::TlsUnknownAuth, &[], &[T2]),
        ],
    );
    assert_eq!(out[2].judgement.verdict, Verdict::Mtls);
    let o = out[2].resumed_from.as_ref().unwrap();
    assert_eq!((o.flow, o.verdict, o.proof), (2, Verdict::Mtls, Some(Proof::Resumed)));
}

#[test]
fn waiting_is_bounded() {
    let mut linker = Linker::new(LinkLimits { max_sessions: 8, max_waiting: 1 });
    let out = run(
        &mut linker,
        vec![
            flow(2, Verdict::TlsUnknownAuth, &[], &[T1]),
            flow(3, Verdict::TlsUnknownAuth, &[], &[T2]),
        ],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(linker.overflowed, 1);
    assert!(out[0].judgement.evidence.contains("too many resumed flows were waiting"));
}

#[test]
fn remembered_sessions_are_bounded_oldest_first() {
    let mut linker = Linker::new(LinkLimits { max_sessions: 1, max_waiting: 0 });
    let out = run(
        &mut linker,
        vec![
            flow(1, Verdict::Mtls, &[T1], &[]),
            flow(2, Verdict::Mtls, &[T2], &[]),
            flow(3, Verdict::TlsUnknownAuth, &[], &[T1]),
            flow(4, Verdict::TlsUnknownAuth, &[], &[T2]),
        ],
    );
    assert_eq!(linker.forgotten, 1);
    assert_eq!(out[2].judgement.verdict, Verdict::TlsUnknownAuth, "T1 was forgotten");
    assert_eq!(out[3].judgement.verdict, Verdict::Mtls);
}

#[test]
fn a_failed_resumption_keeps_its_own_verdict() {
    let mut failed = flow(2, Verdict::HandshakeFailed, &[], &[T1]);
    failed.judgement.evidence = "server sent fatal alert".into();
    let out = run(&mut Linker::default(), vec![flow(1, Verdict::Mtls, &[T1], &[]), failed]);
    assert_eq!(out[1].judgement.verdict, Verdict::HandshakeFailed);
    assert_eq!(out[1].resumed_from.as_ref().unwrap().flow, 1, "the link is still shown");
}

#[test]
fn an_unlinked_psk_resumption_points_at_the_key_log() {
    let mut psk = flow(2, Verdict::TlsUnknownAuth, &[], &[T1]);
    psk.session.psk = true;
    let out = run(&mut Linker::default(), vec![psk]);
    assert!(out[0].judgement.evidence.contains("a key log for the original handshake"));
}

#[test]
fn a_live_run_releases_resumed_flows_whose_origin_never_came() {
    let mut linker = Linker::default();
    let mut out = Vec::new();
    for f in
        [flow(5, Verdict::TlsUnknownAuth, &[], &[T1]), flow(9, Verdict::TlsUnknownAuth, &[], &[T2])]
    {
        linker.push(f, &mut |f| out.push(f));
    }
    assert!(out.is_empty());
    // Flow 5's last packet is at 5 s, flow 9's at 9 s.
    linker.release_stale(Timestamp(5_000_000_000), &mut |f| out.push(f));
    assert!(out.is_empty(), "not older than the cutoff yet");
    linker.release_stale(Timestamp(6_000_000_000), &mut |f| out.push(f));
    assert_eq!(out.iter().map(|f| f.record.id).collect::<Vec<_>>(), [5]);
    assert_eq!(linker.waiting(), 1);
    assert_eq!(out[0].judgement.verdict, Verdict::TlsUnknownAuth);
    assert!(out[0].judgement.evidence.contains("was not seen while the flow waited"));
    // An origin arriving later for the other one still links it.
    linker.push(flow(10, Verdict::Mtls, &[T2], &[]), &mut |f| out.push(f));
    let linked = out.iter().find(|f| f.record.id == 9).expect("flow 9 released by its origin");
    assert_eq!(linked.judgement.verdict, Verdict::Mtls);
    assert_eq!(linker.waiting(), 0);
}
