//! The `tls` object of a flow in the JSON, and the TLS cells of the table.

use super::AsStr;
use crate::classify::tls::{Alert, CertChain, FlightReading, HandshakeMsg, TlsFacts, Version};
use crate::identity::Identities;
use crate::link::Origin;
use crate::verdict::{ClientCert, Proof};
use crate::{Dir, Rfc3339};
use serde::Serialize;
use std::fmt;

#[derive(Serialize)]
pub struct TlsDto {
    /// Negotiated version: "1.0" .. "1.3" (or "ssl3"); null when no ServerHello was seen.
    pub version: Option<&'static str>,
    pub sni: Option<String>,
    pub alpn_offered: Vec<String>,
    /// The selected ALPN when it is visible (TLS <= 1.2 ServerHello); TLS 1.3 encrypts it.
    pub alpn: Option<String>,
    pub offered_versions: Vec<&'static str>,
    /// IANA cipher suite name.
    pub cipher: Option<String>,
    pub client_certificate: &'static str,
    pub resumed: bool,
    /// How the session was resumed: "session-id", "ticket" (TLS <= 1.2) or "psk" (TLS 1.3).
    pub resumption: Option<&'static str>,
    pub handshake_seen: bool,
    pub hello_retry: bool,
    /// Handshake messages seen in the clear, in order, prefixed by the sender.
    pub handshake_messages: Vec<AsStr<Sent>>,
    pub certificate_request: bool,
    pub server_certificates: Option<CertsDto>,
    pub client_certificates: Option<CertsDto>,
    /// TLS 1.3: the client's encrypted records after ServerHello, in bytes.
    pub client_flight_records: Vec<u16>,
    /// TLS 1.3: the size of a client Finished record for the negotiated suite.
    pub finished_record_len: Option<u16>,
    pub alerts: Vec<AlertDto>,
    /// The flow whose full handshake created the session this one resumed (null when the
    /// flow is not resumed, or its origin is not in the run).
    pub resumed_from: Option<OriginDto>,
    /// TLS 1.3 handshake read with a key log; absent when the key log had no keys for the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypted: Option<DecryptedDto>,
    /// Peer identities, mesh and fingerprints (see `identity_dto`).
    #[serde(flatten)]
    pub identity: super::identity_dto::IdentityFields,
}

/// A handshake message with its sender: "client: ClientHello".
pub struct Sent(pub HandshakeMsg);

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.dir {
            Some(d) => write!(f, "{}: {}", d.sender(), self.0),
            None => self.0.fmt(f),
        }
    }
}

#[derive(Serialize)]
pub struct OriginDto {
    pub input: usize,
    pub flow: u64,
    /// "session-id" or "ticket" (TLS 1.3 PSK identities are tickets).
    pub by: &'static str,
    pub verdict: &'static str,
    pub proof: Option<&'static str>,
    pub client_identity: Option<String>,
    pub first_seen: AsStr<Rfc3339>,
}

pub fn origin_dto(o: &Origin) -> OriginDto {
    OriginDto {
        input: o.input,
        flow: o.flow,
        by: o.by,
        verdict: o.verdict.as_str(),
        proof: o.proof.map(Proof::as_str),
        client_identity: o.client_identity.clone(),
        first_seen: AsStr(Rfc3339(o.first_seen)),
    }
}

#[derive(Serialize)]
pub struct CertsDto {
    pub count: u32,
    pub bytes: u32,
}

#[derive(Serialize)]
pub struct AlertDto {
    pub from: Option<&'static str>,
    pub level: &'static str,
    pub description: String,
}

pub fn version_word(v: Version) -> Option<&'static str> {
    Some(match v.0 {
        0x0300 => "ssl3",
        0x0301 => "1.0",
        0x0302 => "1.1",
        0x0303 => "1.2",
        0x0304 => "1.3",
        _ => return None,
    })
}

fn certs(chain: &Option<CertChain>) -> Option<CertsDto> {
    chain.as_ref().map(|c| CertsDto { count: c.count, bytes: c.message_len })
}

fn alert(a: &Alert) -> AlertDto {
    AlertDto {
        from: a.dir.map(Dir::sender),
        level: if a.level == 2 { "fatal" } else { "warning" },
        description: match a.description.name() {
            Some(name) => format!("{name} ({})", a.description.0),
            None => a.description.0.to_string(),
        },
    }
}

pub fn tls_dto(f: &TlsFacts, cert: Option<ClientCert>, ids: Option<&Identities>) -> TlsDto {
    let ch = f.client_hello.as_ref();
    let sh = f.server_hello.as_ref();
    TlsDto {
        version: f.version().and_then(version_word),
        sni: ch.and_then(|c| c.sni.clone()),
        alpn_offered: ch.map(|c| c.alpn.clone()).unwrap_or_default(),
        alpn: selected_alpn(f),
        offered_versions: ch
            .map(|c| c.supported_versions.iter().filter_map(|v| version_word(*v)).collect())
            .unwrap_or_default(),
        cipher: sh.map(|s| {
            s.cipher_name.map_or_else(|| format!("0x{:04x}", s.cipher_suite), str::to_string)
        }),
        client_certificate: cert.unwrap_or(ClientCert::Unknown).as_str(),
        resumed: resumption(f).is_some(),
        resumption: resumption(f),
        handshake_seen: ch.is_some() || sh.is_some(),
        hello_retry: f.hello_retry.is_some(),
        handshake_messages: f.messages.iter().map(|&m| AsStr(Sent(m))).collect(),
        certificate_request: f.certificate_request.is_some(),
        server_certificates: certs(&f.server_certs),
        client_certificates: certs(&f.client_certs),
        client_flight_records: client_flight(f),
        finished_record_len: f.finished_record_len,
        alerts: f.alerts.iter().map(alert).collect(),
        resumed_from: None,
        decrypted: decrypted_dto(f),
        identity: super::identity_dto::fields(ids),
    }
}

fn resumption(f: &TlsFacts) -> Option<&'static str> {
    if f.server_hello.as_ref().is_some_and(|s| s.psk_accepted) {
        Some("psk")
    } else if f.abbreviated {
        let ticket =
            f.client_hello.as_ref().is_some_and(|c| c.session_ticket.is_some_and(|t| t > 0));
        Some(if ticket { "ticket" } else { "session-id" })
    } else {
        None
    }
}

/// The client's encrypted handshake records (TLS 1.3), as shown for the size inference.
fn client_flight(f: &TlsFacts) -> Vec<u16> {
    match f.tls13_client_flight {
        Some(flight) if flight.reading != FlightReading::Pending => f
            .client
            .encrypted_records
            .iter()
            .take(usize::from(flight.records.max(1)))
            .map(|r| r.len)
            .collect(),
        _ => Vec::new(),
    }
}

/// The selected ALPN: in the clear (TLS <= 1.2 ServerHello) or from decrypted EncryptedExtensions.
fn selected_alpn(f: &TlsFacts) -> Option<String> {
    let clear = f.server_hello.as_ref().and_then(|s| s.alpn.clone());
    clear.or_else(|| f.decrypted.as_ref()?.alpn.clone())
}

/// (version, SNI, ALPN) for the table.
pub fn table_cells(f: &TlsFacts) -> (String, String, String) {
    let version = f.version().and_then(version_word).unwrap_or("").to_string();
    let ch = f.client_hello.as_ref();
    let sni = ch.and_then(|c| c.sni.clone()).unwrap_or_default();
    let alpn = match selected_alpn(f) {
        Some(selected) => selected,
        None => ch.map(|c| c.alpn.join(",")).unwrap_or_default(),
    };
    (version, sni, alpn)
}

// --- Key-log decryption (TLS 1.3) -------------------------------------------------------------

/// What decrypting the TLS 1.3 handshake with the key log showed.
#[derive(Serialize)]
pub struct DecryptedDto {
    /// Handshake messages read from the decrypted records, prefixed by the sender.
    pub messages: Vec<String>,
    /// ALPN protocol selected in EncryptedExtensions.
    pub alpn: Option<String>,
    pub certificate_request: bool,
    pub server_certificates: Option<CertsDto>,
    /// The client's Certificate message (count 0: an empty Certificate).
    pub client_certificates: Option<CertsDto>,
    pub client_certificate_verify: bool,
    pub server_finished: bool,
    pub client_finished: bool,
    /// NewSessionTicket messages found after the server's Finished.
    pub tickets: usize,
    /// What the record-size inference read from the same flight ("sent", "empty",
    /// "not-requested", "unknown"), to compare.
    pub size_inference: &'static str,
    /// Why decryption stopped early, if it did.
    pub error: Option<String>,
}

fn decrypted_dto(f: &TlsFacts) -> Option<DecryptedDto> {
    let d = f.decrypted.as_ref()?;
    let size_inference = match f.tls13_client_flight.map(|fl| fl.reading) {
        Some(FlightReading::Certificate { .. }) => ClientCert::Sent,
        Some(FlightReading::EmptyCertificate) => ClientCert::Empty,
        Some(FlightReading::FinishedOnly) => ClientCert::NotRequested,
        _ => ClientCert::Unknown,
    };
    Some(DecryptedDto {
        messages: d
            .messages
            .iter()
            .map(|m| match m.dir {
                Some(dir) => format!("{}: {m}", dir.sender()),
                None => m.to_string(),
            })
            .collect(),
        alpn: d.alpn.clone(),
        certificate_request: d.certificate_request,
        server_certificates: certs(&d.server_certs),
        client_certificates: certs(&d.client_certs),
        client_certificate_verify: d.client_certificate_verify,
        server_finished: d.server_finished,
        client_finished: d.client_finished,
        tickets: d.tickets.len(),
        size_inference: size_inference.as_str(),
        error: d.error.clone(),
    })
}
