//! Resumption linking: a resumed TLS session carries no certificates, so its authentication is
//! the one of the full handshake that created the session. This stage links each resumed flow
//! to that origin across all flows and inputs of a run:
//!
//! - TLS <= 1.2 by session id (the id a full handshake's ServerHello gave out, echoed by an
//!   abbreviated handshake) or by ticket (NewSessionTicket is sent in the clear, and a later
//!   ClientHello offers the same bytes);
//! - TLS 1.3 by PSK identity, which is the ticket of a NewSessionTicket that only a key log can
//!   show (the ticket travels encrypted).
//!
//! Flows stream through [`Linker::push`]; a resumed flow whose origin has not been seen yet
//! waits (bounded) until the origin arrives or the run ends ([`Linker::finish`]). Session ids
//! and tickets are kept as 64-bit digests only.

use crate::analyze::AnalyzedFlow;
use crate::classify::tls::{fnv1a64, TlsFacts, Version};
use crate::classify::Classification;
use crate::verdict::{ClientCert, Judgement, Proof, Verdict};
use crate::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A session handle: the digest of a session id or of a ticket (TLS 1.2 ticket or TLS 1.3 PSK
/// identity, which are the same bytes as the NewSessionTicket's ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKey {
    Id(u64),
    Ticket(u64),
}

/// The session handles of one flow, taken before the flow is compacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionKeys {
    /// Handles this flow's handshake gave out (a later flow may resume with them).
    pub issued: Vec<SessionKey>,
    /// Handles under which this flow resumed a session (accepted by the server), best first.
    pub resumes: Vec<SessionKey>,
    /// The resumption is TLS 1.3 PSK (its ticket was issued encrypted).
    pub psk: bool,
}

impl SessionKeys {
    pub fn of(f: &TlsFacts) -> SessionKeys {
        let mut keys = SessionKeys::default();
        let (Some(ch), Some(sh)) = (f.client_hello.as_ref(), f.server_hello.as_ref()) else {
            return keys;
        };
        if sh.version == Version::TLS13 {
            if sh.psk_accepted {
                keys.psk = true;
                keys.resumes.extend(ch.psk_identities.iter().map(|&h| SessionKey::Ticket(h)));
            }
            if let Some(d) = &f.decrypted {
                keys.issued.extend(d.tickets.iter().map(|t| SessionKey::Ticket(t.hash)));
            }
            return keys;
        }
        if f.abbreviated {
            keys.resumes.extend(ch.session_ticket_hash.map(SessionKey::Ticket));
            if sh.session_id_echoed && !sh.session_id.is_empty() {
                keys.resumes.push(SessionKey::Id(fnv1a64(&sh.session_id)));
            }
        } else if !sh.session_id.is_empty() {
            keys.issued.push(SessionKey::Id(fnv1a64(&sh.session_id)));
        }
        // A resumed handshake may renew the ticket: the new one leads to the same origin.
        keys.issued.extend(f.session_ticket.map(|t| SessionKey::Ticket(t.hash)));
        keys
    }

    pub fn is_empty(&self) -> bool {
        self.issued.is_empty() && self.resumes.is_empty()
    }
}

/// The flow whose full handshake created a session that another flow resumed.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// Index of the input the origin was read from.
    pub input: usize,
    /// The origin's flow id within that input.
    pub flow: u64,
    pub verdict: Verdict,
    pub proof: Option<Proof>,
    pub client_certificate: Option<ClientCert>,
    /// The origin's client identity, when its certificate named one.
    pub client_identity: Option<String>,
    pub first_seen: Timestamp,
    /// How this flow was linked: "session-id" or "ticket".
    pub by: &'static str,
}

/// Bounds that keep the linker's memory flat on endless captures (`--max-sessions`,
/// `--max-resumed-waiting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Session handles remembered (oldest forgotten first once full). An origin flow's
    /// summary is kept only while one of its handles is remembered.
    pub max_sessions: usize,
    /// Resumed flows held back waiting for an origin (beyond: reported unlinked at once).
    pub max_waiting: usize,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits { max_sessions: 1 << 18, max_waiting: 1 << 14 }
    }
}

/// What a resumed flow inherits from its origin; shared by the origin's handles and freed
/// with the last of them.
#[derive(Debug, Clone)]
struct Known {
    input: usize,
    flow: u64,
    verdict: Verdict,
    proof: Option<Proof>,
    client_certificate: Option<ClientCert>,
    client_identity: Option<String>,
    first_seen: Timestamp,
}

/// Links resumed flows to their origins as flows stream by.
#[derive(Debug, Default)]
pub struct Linker {
    limits: LinkLimits,
    sessions: FxHashMap<SessionKey, Arc<Known>>,
    /// Insertion order of `sessions`, to forget the oldest when full.
    order: VecDeque<SessionKey>,
    /// Flows waiting for an origin, by arrival number (so the end of the run reports them in
    /// arrival order).
    waiting: BTreeMap<u64, AnalyzedFlow>,
    /// Arrival numbers of the waiting flows, per handle they resume. A flow leaves every list
    /// it is on when it is released, so this never outgrows `waiting`.
    waiting_by_key: FxHashMap<SessionKey, Vec<u64>>,
    arrivals: u64,
    /// Resumed flows reported without waiting because `max_waiting` was reached.
    pub overflowed: u64,
    /// Session handles forgotten because `max_sessions` was reached.
    pub forgotten: u64,
}

impl Linker {
    pub fn new(limits: LinkLimits) -> Self {
        Linker { limits, ..Linker::default() }
    }

    /// (session handles forgotten, resumed flows not held back) so far.
    pub fn counters(&self) -> (u64, u64) {
        (self.forgotten, self.overflowed)
    }

    /// Session handles remembered now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Resumed flows waiting for their origin now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Take one judged flow; hand it (and any flow it unblocks) to `sink` when it is final.
    pub fn push(&mut self, mut flow: AnalyzedFlow, sink: &mut dyn FnMut(AnalyzedFlow)) {
        if !flow.session.resumes.is_empty() {
            if let Some((origin, by)) = self.find(&flow.session.resumes) {
                link(&mut flow, &origin, by);
            } else if self.waiting.len() < self.limits.max_waiting {
                let n = self.arrivals;
                self.arrivals += 1;
                for key in &flow.session.resumes {
                    let list = self.waiting_by_key.entry(*key).or_default();
                    if !list.contains(&n) {
                        list.push(n);
                    }
                }
                self.waiting.insert(n, flow);
                return;
            } else {
                self.overflowed += 1;
                flow.link_cap_hit = true;
                flow.judgement.warnings.push(format!(
                    "not linked to the handshake that created its session: {} resumed flows were \
                     already waiting for theirs (--max-resumed-waiting)",
                    self.limits.max_waiting
                ));
                unlinked(&mut flow, "too many resumed flows were waiting for their origin");
            }
        }
        let mut ready = vec![flow];
        while let Some(flow) = ready.pop() {
            if let Some(origin) = self.register(&flow) {
                // Flows that waited for one of the handles this flow gave out.
                for key in &flow.session.issued {
                    for n in self.waiting_by_key.remove(key).unwrap_or_default() {
                        if let Some(mut waiter) = self.release(n) {
                            link(&mut waiter, &origin, by_word(*key));
                            ready.push(waiter);
                        }
                    }
                }
            }
            sink(flow);
        }
    }

    /// The run is over: report every flow still waiting as unlinked, in arrival order.
    pub fn finish(&mut self, sink: &mut dyn FnMut(AnalyzedFlow)) {
        self.waiting_by_key.clear();
        for mut flow in std::mem::take(&mut self.waiting).into_values() {
            let why = if flow.session.psk {
                "no handshake in this run is known to have issued its ticket (TLS 1.3 sends \
                 tickets encrypted: a key log for the original handshake links them)"
            } else {
                "the full handshake that created this session is not in the capture"
            };
            unlinked(&mut flow, why);
            sink(flow);
        }
    }

    /// Report, unlinked, every waiting flow whose last packet is older than `cutoff` (packet
    /// time). A run that never ends (`live`) calls this so that a resumed flow whose origin is
    /// not coming cannot wait forever; a batch run waits for the end of its input instead.
    pub fn release_stale(&mut self, cutoff: Timestamp, sink: &mut dyn FnMut(AnalyzedFlow)) {
        let stale: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, f)| f.record.last_seen < cutoff)
            .map(|(&n, _)| n)
            .collect();
        for n in stale {
            if let Some(mut flow) = self.release(n) {
                unlinked(
                    &mut flow,
                    "the handshake that created this session was not seen while the flow \
                     waited for it (live runs wait one idle timeout)",
                );
                sink(flow);
            }
        }
    }

    /// Take waiting flow `n` out, and off the lists of its other handles.
    fn release(&mut self, n: u64) -> Option<AnalyzedFlow> {
        let flow = self.waiting.remove(&n)?;
        for key in &flow.session.resumes {
            if let Some(list) = self.waiting_by_key.get_mut(key) {
                list.retain(|&m| m != n);
                if list.is_empty() {
                    self.waiting_by_key.remove(key);
                }
            }
        }
        Some(flow)
    }

    fn find(&self, keys: &[SessionKey]) -> Option<(Arc<Known>, &'static str)> {
        keys.iter().find_map(|k| self.sessions.get(k).map(|o| (o.clone(), by_word(*k))))
    }

    /// Remember the handles `flow` gave out; returns what a flow resuming them inherits.
    fn register(&mut self, flow: &AnalyzedFlow) -> Option<Arc<Known>> {
        if flow.session.issued.is_empty() {
            return None;
        }
        let known = Arc::new(Known {
            input: flow.input,
            flow: flow.record.id,
            verdict: flow.judgement.verdict,
            proof: flow.judgement.proof,
            client_certificate: flow.client_certificate,
            client_identity: flow.client_identity(),
            first_seen: flow.record.first_seen,
        });
        for key in &flow.session.issued {
            if self.sessions.contains_key(key) || self.limits.max_sessions == 0 {
                continue;
            }
            while self.sessions.len() >= self.limits.max_sessions {
                let Some(old) = self.order.pop_front() else { break };
                if self.sessions.remove(&old).is_some() {
                    self.forgotten += 1;
                }
            }
            self.sessions.insert(*key, known.clone());
            self.order.push_back(*key);
        }
        Some(known)
    }
}

/// A resumed flow that renewed its ticket is itself an origin: a chain of resumptions names its
/// nearest link, whose verdict was inherited from the one before.
fn link(flow: &mut AnalyzedFlow, k: &Known, by: &'static str) {
    let (verdict, proof, cert) = (k.verdict, k.proof, k.client_certificate);
    let origin = Origin {
        input: k.input,
        flow: k.flow,
        verdict,
        proof,
        client_certificate: cert,
        client_identity: k.client_identity.clone(),
        first_seen: k.first_seen,
        by,
    };
    let j = &mut flow.judgement;
    if j.verdict == Verdict::TlsUnknownAuth {
        let whose = match &origin.client_identity {
            Some(id) => format!(" (client {id})"),
            None => String::new(),
        };
        let from = format!(
            "it resumes the session that flow {} of input {} created at {}",
            origin.flow,
            origin.input,
            origin.first_seen.rfc3339()
        );
        match verdict {
            Verdict::Mtls => {
                *j = Judgement {
                    verdict: Verdict::Mtls,
                    proof: Some(Proof::Resumed),
                    evidence: format!(
                        "{}; {from} with a mutual handshake{whose}",
                        base_evidence(&j.evidence)
                    ),
                    warnings: std::mem::take(&mut j.warnings),
                };
                flow.client_certificate = cert;
            }
            Verdict::TlsServerAuth => {
                *j = Judgement {
                    verdict: Verdict::TlsServerAuth,
                    proof: Some(Proof::Resumed),
                    evidence: format!(
                        "{}; {from} without a client certificate",
                        base_evidence(&j.evidence)
                    ),
                    warnings: std::mem::take(&mut j.warnings),
                };
                flow.client_certificate = cert;
            }
            other => {
                j.evidence = format!(
                    "{}; {from}, whose authentication is not known either ({other})",
                    base_evidence(&j.evidence)
                );
            }
        }
    }
    flow.resumed_from = Some(origin);
}

fn by_word(key: SessionKey) -> &'static str {
    match key {
        SessionKey::Id(_) => "session-id",
        SessionKey::Ticket(_) => "ticket",
    }
}

/// The resumption sentence without its "no certificates on the wire" tail.
fn base_evidence(e: &str) -> &str {
    e.strip_suffix(": no certificates on the wire").unwrap_or(e)
}

fn unlinked(flow: &mut AnalyzedFlow, why: &str) {
    if flow.judgement.verdict == Verdict::TlsUnknownAuth {
        flow.judgement.evidence = format!("{}; {why}", flow.judgement.evidence);
    }
}

/// The session handles of a judged flow (empty for anything but TLS).
pub fn session_keys(c: &Classification) -> SessionKeys {
    match c {
        Classification::Tls { facts, .. } => SessionKeys::of(facts),
        _ => SessionKeys::default(),
    }
}

#[cfg(test)]
mod tests;
