//! Stage 6: verdicts. One closed vocabulary, shared by the table, the JSON and the CI gate.

use std::fmt;

pub mod tls;

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
