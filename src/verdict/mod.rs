//! Stage 6: verdicts. One closed vocabulary, shared by the table, the JSON and the CI gate.

use std::fmt;

pub mod tls;
mod tls_decrypted;

/// What a flow is, in the words the JSON and the CI gate use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Plaintext application data (HTTP/1, h2c, or another readable protocol).
    Plaintext,
    /// TLS with a NULL cipher: authenticated, not encrypted.
    NoEncryption,
    /// The TLS handshake was seen to fail or never completed.
    HandshakeFailed,
    /// Bytes that are neither TLS nor readable plaintext (e.g. SSH after key exchange).
    Opaque,
    /// TLS whose client authentication cannot be seen (mid-stream, truncated, resumed, padded).
    TlsUnknownAuth,
    /// TLS where the server authenticated and the client did not.
    TlsServerAuth,
    /// Mutually authenticated TLS.
    Mtls,
    /// A connection that carried no payload in either direction.
    NoPayload,
}

impl Verdict {
    pub const ALL: [Verdict; 8] = [
        Verdict::Plaintext,
        Verdict::NoEncryption,
        Verdict::HandshakeFailed,
        Verdict::Opaque,
        Verdict::TlsUnknownAuth,
        Verdict::TlsServerAuth,
        Verdict::Mtls,
        Verdict::NoPayload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Mtls => "mtls",
            Verdict::TlsServerAuth => "tls-server-auth",
            Verdict::TlsUnknownAuth => "tls-unknown-auth",
            Verdict::Plaintext => "plaintext",
            Verdict::NoEncryption => "no-encryption",
            Verdict::HandshakeFailed => "handshake-failed",
            Verdict::Opaque => "opaque",
            Verdict::NoPayload => "no-payload",
        }
    }

    /// Order for "worst first" listings: plaintext is worst, mTLS best.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::Plaintext => 0,
            Verdict::NoEncryption => 1,
            Verdict::HandshakeFailed => 2,
            Verdict::Opaque => 3,
            Verdict::TlsUnknownAuth => 4,
            Verdict::TlsServerAuth => 5,
            Verdict::NoPayload => 6,
            Verdict::Mtls => 7,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an `mtls` verdict was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The client's Certificate message was seen in the clear (TLS <= 1.2).
    Observed,
    /// TLS 1.3: the sizes of the client's encrypted handshake records imply a certificate.
    Inferred,
    /// TLS 1.3 handshake decrypted with a key log.
    Decrypted,
    /// Resumed session whose original handshake was mutual.
    Resumed,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Observed => "observed",
            Proof::Inferred => "inferred",
            Proof::Decrypted => "decrypted",
            Proof::Resumed => "resumed",
        }
    }
}

/// What the client did about certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCert {
    Sent,
    Empty,
    NotRequested,
    Unknown,
}

impl ClientCert {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientCert::Sent => "sent",
            ClientCert::Empty => "empty",
            ClientCert::NotRequested => "not-requested",
            ClientCert::Unknown => "unknown",
        }
    }
}

/// A verdict with the evidence that supports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub proof: Option<Proof>,
    /// One sentence naming what was seen.
    pub evidence: String,
    /// Things an operator should know that do not change the verdict.
    pub warnings: Vec<String>,
}

impl Judgement {
    pub fn new(verdict: Verdict, evidence: impl Into<String>) -> Self {
        Judgement { verdict, proof: None, evidence: evidence.into(), warnings: Vec::new() }
    }
}

/// What the verdict stage needs to know about the flow around the classifier's facts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowContext {
    /// The connection was seen to close (FIN or RST) rather than the capture ending.
    pub closed: bool,
    /// A RST was seen.
    pub reset: bool,
    /// The connection's start (SYN) was seen.
    pub syn_seen: bool,
    /// Bytes were lost (capture gaps) in the client->server / server->client stream.
    pub gaps: [bool; 2],
}

use crate::classify::http1::{Request, Response};
use crate::classify::http2::H2Request;
use crate::classify::other::{OtherInfo, OtherKind};
use crate::classify::Classification;
use crate::flow::FlowRecord;

/// The verdict for a finished flow, with its evidence.
pub fn judge(flow: &FlowRecord) -> (Judgement, Option<ClientCert>) {
    let ctx = FlowContext {
        closed: flow.closed(),
        reset: flow.reset,
        syn_seen: flow.syn_seen,
        gaps: [flow.reassembly[0].gaps > 0, flow.reassembly[1].gaps > 0],
    };
    let (mut j, cert) = match &flow.classification {
        Classification::Tls { facts, preamble } => {
            let (mut j, cert) = tls::judge(facts, &ctx);
            if let Some(p) = preamble {
                j.evidence = format!("{}; then TLS: {}", p.evidence, j.evidence);
                j.warnings.push(format!(
                    "connection started in the clear ({}) and switched to TLS",
                    p.protocol
                ));
            }
            (j, Some(cert))
        }
        Classification::Empty => (judge_empty(flow), None),
        Classification::Http1 { request, response, midstream } => {
            (judge_http1(request.as_ref(), response.as_ref(), *midstream), None)
        }
        Classification::H2c { request, via_upgrade } => {
            (judge_h2c(request.as_ref(), via_upgrade.as_ref()), None)
        }
        Classification::Other(info) => (judge_other(info), None),
    };
    if flow.dirs.iter().any(|d| d.missing_bytes > 0) {
        j.warnings.push("some frames were cut short by the capture's snaplen".into());
    }
    for (dir, r) in ["client", "server"].iter().zip(&flow.reassembly) {
        if r.cap_hit {
            j.warnings.push(format!(
                "{dir} stream: reassembly buffer cap hit, {} bytes not analysed",
                r.dropped_bytes
            ));
        }
    }
    (j, cert)
}

fn judge_empty(flow: &FlowRecord) -> Judgement {
    let what = if flow.syn_seen { "connection" } else { "packets" };
    Judgement::new(Verdict::NoPayload, format!("{what} carried no payload in either direction"))
}

fn judge_http1(
    request: Option<&Request>,
    response: Option<&Response>,
    midstream: bool,
) -> Judgement {
    let mut evidence = match (request, response) {
        (Some(r), _) => {
            let host = r.host.as_deref().map(|h| format!(" (Host: {h})")).unwrap_or_default();
            format!("{} {} HTTP/1.{} in the clear{host}", r.method, r.path, r.version)
        }
        (None, Some(s)) => format!("HTTP/1.{} {} response in the clear", s.version, s.status),
        (None, None) => "HTTP/1 in the clear".to_string(),
    };
    if midstream {
        evidence.push_str(" (found mid-stream)");
    }
    Judgement::new(Verdict::Plaintext, evidence)
}

fn judge_h2c(request: Option<&H2Request>, via_upgrade: Option<&Request>) -> Judgement {
    let how = if via_upgrade.is_some() {
        "HTTP/1.1 Upgrade: h2c"
    } else {
        "HTTP/2 prior-knowledge preface"
    };
    let req = match (request, via_upgrade) {
        (Some(r), _) => format!(
            "; first request {} {}{}",
            r.method.as_deref().unwrap_or("?"),
            r.path.as_deref().unwrap_or("?"),
            if r.is_grpc() { " (gRPC)" } else { "" }
        ),
        (None, Some(r)) => format!("; first request {} {}", r.method, r.path),
        (None, None) => String::new(),
    };
    Judgement::new(Verdict::Plaintext, format!("{how} in the clear{req}"))
}

fn judge_other(info: &OtherInfo) -> Judgement {
    let who = if info.from_server { "server" } else { "client" };
    let name = info.protocol.map(|p| format!("{p} ")).unwrap_or_default();
    let word = info.first_word.as_deref().map(|w| format!(", starting '{w}'")).unwrap_or_default();
    match info.kind {
        OtherKind::Plaintext => Judgement::new(
            Verdict::Plaintext,
            format!("{who} sent readable {name}text in the clear{word}"),
        ),
        OtherKind::EncryptedNonTls => Judgement::new(
            Verdict::Opaque,
            format!(
                "{who} sent a {name}banner; the protocol encrypts after key exchange, not with TLS"
            ),
        ),
        OtherKind::Opaque => Judgement::new(
            Verdict::Opaque,
            format!("{who} sent high-entropy bytes with no TLS framing: not provably encrypted"),
        ),
        OtherKind::Binary => Judgement::new(
            Verdict::Plaintext,
            format!("{who} sent unrecognised low-entropy binary data in the clear"),
        ),
    }
}
