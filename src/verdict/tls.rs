//! TLS facts -> verdict, with one sentence of evidence naming what was seen.
//!
//! | what the wire showed (first match wins)                         | verdict            | client cert |
//! |------------------------------------------------------------------|--------------------|-------------|
//! | fatal alert in the clear                                         | handshake-failed   | as seen     |
//! | NULL-encryption suite negotiated                                 | no-encryption      | as seen     |
//! | mid-stream start, or only one direction, or no hellos            | tls-unknown-auth   | unknown     |
//! | resumed (1.2 abbreviated, 1.3 PSK)                               | tls-unknown-auth   | unknown     |
//! | 1.3: closed after one alert-sized encrypted record               | handshake-failed   | as read     |
//! | handshake incomplete and the connection closed                   | handshake-failed   | as seen     |
//! | handshake incomplete, capture ended / gap hid the messages       | tls-unknown-auth   | unknown     |
//! | 1.2: no CertificateRequest                                       | tls-server-auth    | not-requested |
//! | 1.2: CertificateRequest, empty (or no) client Certificate        | tls-server-auth    | empty       |
//! | 1.2: CertificateRequest, client Certificate with certificates    | mtls (observed)    | sent        |
//! | 1.3: client flight = Finished only / empty Certificate + Finished | tls-server-auth   | not-requested / empty |
//! | 1.3: client flight holds >= MIN_CERT_FLIGHT bytes before Finished | mtls (inferred)   | sent        |
//! | 1.3: sizes fit no rule                                           | tls-unknown-auth   | unknown     |

use crate::classify::tls::{
    group_name, Alert, DirFacts, FlightReading, StreamError, StreamStart, TlsFacts, TlsNote,
    Version,
};
use crate::common::Dir;

use super::{ClientCert, FlowContext, Judgement, Proof, Verdict};

pub fn judge(facts: &TlsFacts, ctx: &FlowContext) -> (Judgement, ClientCert) {
    let (mut j, cc) = decide(facts, ctx);
    let mut w = warnings(facts, ctx);
    let pha = facts.client_hello.as_ref().is_some_and(|c| c.post_handshake_auth);
    if j.verdict != Verdict::Mtls && facts.is_tls13() && pha {
        w.push("client offered post-handshake authentication: a later certificate request would be encrypted".into());
    }
    if j.verdict == Verdict::Mtls
        && facts.version().is_some_and(|v| v < Version::TLS13)
        && !facts.certificate_verify
    {
        w.push("client sent a certificate but no CertificateVerify was seen".into());
    }
    j.warnings.extend(w);
    (j, cc)
}

fn verdict(v: Verdict, evidence: impl Into<String>, cc: ClientCert) -> (Judgement, ClientCert) {
    (Judgement::new(v, evidence), cc)
}

fn unknown(evidence: impl Into<String>) -> (Judgement, ClientCert) {
    verdict(Verdict::TlsUnknownAuth, evidence, ClientCert::Unknown)
}

fn decide(f: &TlsFacts, ctx: &FlowContext) -> (Judgement, ClientCert) {
    if f.client.records.total() == 0 && f.server.records.total() == 0 {
        return unknown("no TLS records were seen");
    }
    if let Some(a) = f.alerts.iter().find(|a| a.is_fatal()) {
        return verdict(Verdict::HandshakeFailed, alert_evidence(f, a), client_cert(f));
    }
    if let Some(sh) = f.server_hello.as_ref().filter(|sh| sh.null_cipher) {
        let (auth, cc) = null_auth(f);
        let name = sh.cipher_name.unwrap_or("a NULL cipher suite");
        return verdict(
            Verdict::NoEncryption,
            format!("negotiated {name}: records are not encrypted; {auth}"),
            cc,
        );
    }
    if let Some(partial) = partial_tls12(f, ctx) {
        return partial;
    }
    if let Some(e) = capture_shape(f) {
        return unknown(e);
    }
    match f.version() {
        Some(Version::TLS13) if f.server_hello.is_some() => tls13(f, ctx),
        Some(Version::TLS13) => {
            incomplete(f, ctx, "the server's ServerHello after its HelloRetryRequest")
        }
        Some(_) => tls12(f, ctx),
        None => incomplete(f, ctx, "ServerHello"),
    }
}

fn tls12_complete(f: &TlsFacts) -> bool {
    let done = |d: &DirFacts| d.change_cipher_spec && !d.encrypted_records.is_empty();
    done(&f.client) && done(&f.server)
}

/// TLS <= 1.2 handshakes whose end was not captured (one direction only, or the capture
/// stopped) can still settle client authentication: a non-empty client Certificate in the clear
/// is only ever sent on request, and a server flight that reached ServerHelloDone without a
/// CertificateRequest never asks for one. A connection that closed early is judged failed
/// elsewhere.
fn partial_tls12(f: &TlsFacts, ctx: &FlowContext) -> Option<(Judgement, ClientCert)> {
    if f.is_tls13() || f.abbreviated || tls12_complete(f) || ctx.closed {
        return None;
    }
    let not_seen = if f.server.bytes == 0 {
        "; the server's side was not captured"
    } else {
        "; the end of the handshake was not captured"
    };
    if f.client_certs.as_ref().is_some_and(|c| !c.is_empty()) {
        let mut sentence = client_cert_sentence(f);
        if f.certificate_request.is_none() {
            sentence =
                sentence.replace("after CertificateRequest", "(only sent when the server asks)");
        }
        let (mut j, cc) = verdict(Verdict::Mtls, format!("{sentence}{not_seen}"), ClientCert::Sent);
        j.proof = Some(Proof::Observed);
        return Some((j, cc));
    }
    let server_done = f.server_hello_done && !f.server.gap_in_handshake;
    if server_done && f.certificate_request.is_none() && f.version().is_some() {
        let v = f.version().map(|v| v.to_string()).unwrap_or_default();
        return Some(verdict(
            Verdict::TlsServerAuth,
            format!(
                "{v} server flight ended (ServerHelloDone) without CertificateRequest: the client was not asked for a certificate{not_seen}"
            ),
            ClientCert::NotRequested,
        ));
    }
    None
}

/// Captures that cannot show a handshake at all.
fn capture_shape(f: &TlsFacts) -> Option<String> {
    let mid = |d: &DirFacts| d.start == StreamStart::MidStream;
    if f.client_hello.is_none() && f.server_hello.is_none() && (mid(&f.client) || mid(&f.server)) {
        return Some("TLS application data from mid-stream; handshake not captured".into());
    }
    for (dir, d) in [(Dir::ToServer, &f.client), (Dir::ToClient, &f.server)] {
        if let StreamStart::UnexpectedHandshake(t) = d.start {
            return Some(format!(
                "the {dir} stream began with {t}: capture started inside the handshake"
            ));
        }
    }
    let one = |dir: Dir| {
        format!("only the {dir} stream was captured; the other side's messages are missing")
    };
    if f.server.bytes == 0 && f.server.gap_bytes == 0 && f.client.bytes > 0 {
        return Some(one(Dir::ToServer));
    }
    if f.client.bytes == 0 && f.client.gap_bytes == 0 && f.server.bytes > 0 {
        return Some(one(Dir::ToClient));
    }
    None
}

fn last_message(f: &TlsFacts) -> String {
    match f.messages.last() {
        Some(m) => format!("last message seen: {} from {}", m, m.dir.map_or("?", Dir::sender)),
        None => "no handshake message seen".into(),
    }
}

fn gap_note(f: &TlsFacts) -> &'static str {
    let lost = |d: &DirFacts| d.gap_in_handshake || d.error == Some(StreamError::LostSync);
    if lost(&f.client) || lost(&f.server) {
        " (a capture gap hid part of the handshake)"
    } else {
        ""
    }
}

/// The handshake did not get as far as `missing`.
fn incomplete(f: &TlsFacts, ctx: &FlowContext, missing: &str) -> (Judgement, ClientCert) {
    let last = last_message(f);
    if ctx.closed && gap_note(f).is_empty() {
        return verdict(
            Verdict::HandshakeFailed,
            format!("connection closed before {missing}; {last}"),
            client_cert(f),
        );
    }
    unknown(format!("capture ended before {missing}{}; {last}", gap_note(f)))
}

fn tls12(f: &TlsFacts, ctx: &FlowContext) -> (Judgement, ClientCert) {
    let complete = tls12_complete(f);
    let Some(sh) = f.server_hello.as_ref() else {
        return incomplete(f, ctx, "ServerHello");
    };
    let v = sh.version;
    if f.abbreviated {
        if !complete && ctx.closed {
            return incomplete(f, ctx, "the resumed handshake completed");
        }
        // A client offering a ticket may also send a session id that the server echoes.
        let ticket = f.client_hello.as_ref().is_some_and(|c| c.session_ticket.unwrap_or(0) > 0);
        let how = if ticket || !sh.session_id_echoed { "session ticket" } else { "session id" };
        return unknown(format!("{v} session resumption by {how}: no certificates on the wire"));
    }
    if !complete {
        return incomplete(f, ctx, "both sides sent ChangeCipherSpec and Finished");
    }
    let suite = sh.cipher_name.unwrap_or("an unknown suite");
    if sh.anonymous {
        return unknown(format!(
            "anonymous suite {suite}: no certificates, neither side authenticated"
        ));
    }
    if sh.psk_suite {
        return unknown(format!(
            "pre-shared-key suite {suite}: authenticated by a shared key, no certificates"
        ));
    }
    if f.client.gap_in_handshake && f.client_certs.is_none() {
        return unknown(format!("a capture gap hid the client's {v} handshake messages"));
    }
    if f.server.gap_in_handshake && f.certificate_request.is_none() {
        return unknown(format!("a capture gap hid the server's {v} handshake messages"));
    }
    match (&f.certificate_request, &f.client_certs) {
        (None, None) => verdict(
            Verdict::TlsServerAuth,
            format!("{v} handshake completed without CertificateRequest: the client was not asked for a certificate"),
            ClientCert::NotRequested,
        ),
        (None, Some(_)) => unknown("client sent a Certificate but no CertificateRequest was seen"),
        (Some(_), None) => verdict(
            Verdict::TlsServerAuth,
            "server sent CertificateRequest; the client sent no Certificate",
            ClientCert::Empty,
        ),
        (Some(_), Some(c)) if c.is_empty() => verdict(
            Verdict::TlsServerAuth,
            "server sent CertificateRequest; the client answered with an empty Certificate",
            ClientCert::Empty,
        ),
        (Some(_), Some(_)) => {
            let (mut j, cc) = verdict(Verdict::Mtls, client_cert_sentence(f), ClientCert::Sent);
            j.proof = Some(Proof::Observed);
            (j, cc)
        }
    }
}

fn client_cert_sentence(f: &TlsFacts) -> String {
    let Some(c) = &f.client_certs else {
        return String::new();
    };
    let what = if c.parsed {
        let s = if c.count == 1 { "" } else { "s" };
        format!("Certificate ({} cert{s}, {} bytes)", c.count, c.message_len)
    } else {
        format!("Certificate ({} bytes, not parsed)", c.message_len)
    };
    let cv = if f.certificate_verify { " and CertificateVerify" } else { "" };
    format!("client sent {what}{cv} after CertificateRequest")
}

/// NULL-cipher flows: who authenticated, in words and as ClientCert.
fn null_auth(f: &TlsFacts) -> (String, ClientCert) {
    match client_cert(f) {
        ClientCert::Sent => (client_cert_sentence(f), ClientCert::Sent),
        ClientCert::Empty => ("the client sent no certificate".into(), ClientCert::Empty),
        ClientCert::NotRequested => {
            ("the client was not asked for a certificate".into(), ClientCert::NotRequested)
        }
        ClientCert::Unknown => ("client authentication not visible".into(), ClientCert::Unknown),
    }
}

/// What the client did about certificates, from whatever was seen (for failed/NULL flows).
fn client_cert(f: &TlsFacts) -> ClientCert {
    if f.is_tls13() {
        return match f.tls13_client_flight.map(|fl| fl.reading) {
            Some(FlightReading::Certificate { .. }) => ClientCert::Sent,
            Some(FlightReading::EmptyCertificate) => ClientCert::Empty,
            Some(FlightReading::FinishedOnly) => ClientCert::NotRequested,
            _ => ClientCert::Unknown,
        };
    }
    match (&f.certificate_request, &f.client_certs) {
        (Some(_), Some(c)) if !c.is_empty() => ClientCert::Sent,
        (Some(_), Some(_)) => ClientCert::Empty,
        (None, None)
            if f.server_hello_done && !f.client.gap_in_handshake && !f.server.gap_in_handshake =>
        {
            ClientCert::NotRequested
        }
        _ => ClientCert::Unknown,
    }
}

fn alert_evidence(f: &TlsFacts, a: &Alert) -> String {
    let who = a.dir.map_or("one side", Dir::sender);
    let level = if a.level == 2 { "fatal alert" } else { "alert" };
    let context = match a.dir {
        Some(Dir::ToClient) => match (&f.client_certs, f.server_hello.is_some()) {
            (Some(c), _) if c.is_empty() => " after client's empty Certificate".to_string(),
            (Some(c), _) => format!(" after client's Certificate ({} bytes)", c.message_len),
            (None, false) => " in response to ClientHello".to_string(),
            (None, true)
                if f.is_tls13() && f.tls13_client_flight.is_some_and(|fl| fl.records > 0) =>
            {
                " after client's encrypted flight".to_string()
            }
            _ => String::new(),
        },
        Some(Dir::ToServer) if f.server_certs.is_some() => {
            " after server's Certificate".to_string()
        }
        Some(Dir::ToServer) if f.is_tls13() => " after the server's encrypted flight".to_string(),
        Some(Dir::ToServer) if f.server_hello.is_none() => " before ServerHello".to_string(),
        _ => String::new(),
    };
    format!("{who} sent {level} {}{context}", a.description)
}

/// TLS 1.3: the size inference always runs; a decrypted handshake (key log) overrides it.
fn tls13(f: &TlsFacts, ctx: &FlowContext) -> (Judgement, ClientCert) {
    super::tls_decrypted::judge(f, tls13_by_sizes(f, ctx))
}

fn tls13_by_sizes(f: &TlsFacts, ctx: &FlowContext) -> (Judgement, ClientCert) {
    let Some(sh) = f.server_hello.as_ref() else {
        return incomplete(f, ctx, "ServerHello");
    };
    let suite = sh.cipher_name.unwrap_or("unknown suite");
    let client_recs: Vec<u16> = f.client.app_record_sizes().collect();
    let complete = !client_recs.is_empty() && !f.server.encrypted_records.is_empty();
    let alert_len = f.aead_tag_len.map(|t| 2 + 1 + t);
    if sh.psk_accepted {
        if !complete && ctx.closed {
            return incomplete(f, ctx, "the resumed handshake completed");
        }
        return unknown("TLS 1.3 PSK resumption: no certificates on the wire");
    }
    if ctx.closed
        && alert_len.is_some()
        && client_recs.len() == 1
        && Some(client_recs[0]) == alert_len
    {
        return verdict(
            Verdict::HandshakeFailed,
            format!("client's only encrypted record was alert-sized ({} bytes) and the connection closed: the client rejected the handshake", client_recs[0]),
            ClientCert::Unknown,
        );
    }
    if !complete {
        return incomplete(f, ctx, "the client's encrypted flight");
    }
    let (Some(fin), Some(flight)) = (f.finished_record_len, f.tls13_client_flight) else {
        return unknown(format!(
            "TLS 1.3 suite 0x{:04x} has no known record overhead",
            sh.cipher_suite
        ));
    };
    if let Some(e) = server_rejected(f, ctx, alert_len) {
        return verdict(Verdict::HandshakeFailed, e, client_cert(f));
    }
    let sizes = |n: usize| {
        let v: Vec<String> = client_recs.iter().take(n).map(u16::to_string).collect();
        v.join(" + ")
    };
    match flight.reading {
        FlightReading::FinishedOnly => verdict(
            Verdict::TlsServerAuth,
            format!("client's encrypted flight was Finished only ({fin} bytes): no certificate requested"),
            ClientCert::NotRequested,
        ),
        FlightReading::EmptyCertificate => verdict(
            Verdict::TlsServerAuth,
            format!("client's encrypted flight ({} bytes) was an empty Certificate and Finished: asked for a certificate, the client sent none", sizes(usize::from(flight.records))),
            ClientCert::Empty,
        ),
        FlightReading::Certificate { .. } => {
            let e = format!("client's encrypted flight was {} bytes; Finished alone is {fin} ({suite})", flight.bytes);
            let (mut j, cc) = verdict(Verdict::Mtls, e, ClientCert::Sent);
            j.proof = Some(Proof::Inferred);
            (j, cc)
        }
        FlightReading::NoFit => unknown(format!(
            "client's encrypted records ({} bytes) fit no size rule; Finished alone is {fin} ({suite})",
            sizes(8)
        )),
        FlightReading::Pending => unknown(format!(
            "capture ended during the client's encrypted flight ({} bytes so far){}",
            sizes(8),
            gap_note(f)
        )),
    }
}

/// TLS 1.3: the server's only record after the client's flight was alert-sized, then close.
fn server_rejected(f: &TlsFacts, ctx: &FlowContext, alert_len: Option<u16>) -> Option<String> {
    let flight = f.tls13_client_flight?;
    if !ctx.closed || flight.records == 0 {
        return None;
    }
    let last = f
        .client
        .encrypted_records
        .iter()
        .filter(|r| r.content_type.0 == 23)
        .nth(usize::from(flight.records) - 1)?;
    let end = last.offset + 5 + u64::from(last.len);
    let after: Vec<u16> =
        f.server.encrypted_records.iter().filter(|r| r.peer_bytes >= end).map(|r| r.len).collect();
    if after.len() != 1 || Some(after[0]) != alert_len {
        return None;
    }
    let what = match flight.reading {
        FlightReading::EmptyCertificate => "the client's empty Certificate",
        FlightReading::FinishedOnly => "the client's flight",
        FlightReading::Certificate { .. } => "the client's certificate",
        _ => "the client's flight",
    };
    Some(format!(
        "server answered the client's flight with one alert-sized encrypted record ({} bytes) and the connection closed: it rejected {what}",
        after[0]
    ))
}

fn warnings(f: &TlsFacts, ctx: &FlowContext) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(v) = f.version().filter(|v| v.is_legacy()) {
        w.push(format!("negotiated {v}, deprecated (RFC 8996)"));
    }
    if let Some(sh) = f.server_hello.as_ref().filter(|sh| sh.compression != 0) {
        w.push(format!("TLS compression method {} negotiated (CRIME)", sh.compression));
    }
    for n in &f.notes {
        w.push(match n {
            TlsNote::HelloRetry => {
                let g = f.hello_retry.and_then(|h| h.selected_group).map(group_name);
                format!(
                    "HelloRetryRequest: the server asked for key share {}",
                    g.unwrap_or_else(|| "(none)".into())
                )
            }
            TlsNote::Sslv2ClientHello => "client sent an SSL 2.0-format ClientHello".into(),
            TlsNote::RolesSwapped => {
                "the client->server stream began with a ServerHello: client and server look swapped"
                    .into()
            }
        });
    }
    if f.client_hello.as_ref().is_some_and(|c| c.early_data) {
        w.push("client offered 0-RTT early data".into());
    }
    for (dir, d) in [(Dir::ToServer, &f.client), (Dir::ToClient, &f.server)] {
        if d.buffer_capped {
            w.push(format!("{dir}: a handshake message over the buffer cap was skipped unparsed"));
        }
        if d.gap_bytes > 0 || ctx.gaps[dir.index()] {
            let during = if d.gap_in_handshake { " during the handshake" } else { "" };
            w.push(format!("{dir}: capture gap ({} bytes lost){during}", d.gap_bytes));
        }
        if let Some(e) = d.error {
            let at = d.error_offset.map(|o| format!(" at byte {o}")).unwrap_or_default();
            w.push(format!("{dir}: reading stopped{at}: {e}"));
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tls::{AlertDescription, ContentType};
    use crate::classify::tls::{
        CertChain, ClientHelloFacts, EncRecord, ServerHelloFacts, Tls13Flight, TlsFacts,
    };

    fn enc(len: u16, offset: u64, peer: u64) -> EncRecord {
        EncRecord {
            content_type: ContentType(23),
            len,
            offset,
            peer_bytes: peer,
            ..Default::default()
        }
    }

    fn tls13(flight: FlightReading, records: u8, bytes: u32) -> TlsFacts {
        let mut f = TlsFacts::default();
        f.client.bytes = 500;
        f.server.bytes = 2000;
        f.client.records.handshake = 1;
        f.client_hello = Some(ClientHelloFacts::default());
        f.server_hello = Some(ServerHelloFacts {
            version: Version::TLS13,
            cipher_suite: 0x1301,
            cipher_name: Some("TLS_AES_128_GCM_SHA256"),
            ..Default::default()
        });
        f.finished_record_len = Some(53);
        f.aead_tag_len = Some(16);
        f.tls13_client_flight = Some(Tls13Flight { reading: flight, records, bytes });
        f.client.encrypted_records = vec![enc(53, 300, 2000)];
        f.server.encrypted_records = vec![enc(23, 130, 250), enc(300, 160, 400)];
        f
    }

    #[test]
    fn tls13_readings_map_to_verdicts() {
        let ctx = FlowContext::default();
        let (j, cc) = judge(&tls13(FlightReading::FinishedOnly, 1, 53), &ctx);
        assert_eq!((j.verdict, cc), (Verdict::TlsServerAuth, ClientCert::NotRequested));
        assert_eq!(
            j.evidence,
            "client's encrypted flight was Finished only (53 bytes): no certificate requested"
        );
        let (j, cc) = judge(&tls13(FlightReading::Certificate { bytes: 900 }, 3, 1011), &ctx);
        assert_eq!(
            (j.verdict, j.proof, cc),
            (Verdict::Mtls, Some(Proof::Inferred), ClientCert::Sent)
        );
        assert_eq!(j.evidence, "client's encrypted flight was 1011 bytes; Finished alone is 53 (TLS_AES_128_GCM_SHA256)");
        let (j, _) = judge(&tls13(FlightReading::NoFit, 0, 0), &ctx);
        assert_eq!(j.verdict, Verdict::TlsUnknownAuth);
        let (j, _) = judge(&tls13(FlightReading::Pending, 0, 0), &ctx);
        assert_eq!(j.verdict, Verdict::TlsUnknownAuth);
    }

    #[test]
    fn psk_resumption_is_never_server_only() {
        let mut f = tls13(FlightReading::FinishedOnly, 1, 53);
        if let Some(sh) = f.server_hello.as_mut() {
            sh.psk_accepted = true;
        }
        let (j, cc) = judge(&f, &FlowContext::default());
        assert_eq!((j.verdict, cc), (Verdict::TlsUnknownAuth, ClientCert::Unknown));
        assert_eq!(j.evidence, "TLS 1.3 PSK resumption: no certificates on the wire");
    }

    #[test]
    fn fatal_alert_names_itself_and_context() {
        let mut f = tls13(FlightReading::Pending, 0, 0);
        f.server_hello = Some(ServerHelloFacts { version: Version::TLS12, ..Default::default() });
        f.certificate_request = Some(Default::default());
        f.client_certs = Some(CertChain { message_len: 3, parsed: true, ..Default::default() });
        f.alerts.push(Alert {
            dir: Some(Dir::ToClient),
            level: 2,
            description: AlertDescription(40),
            ..Default::default()
        });
        let (j, cc) = judge(&f, &FlowContext::default());
        assert_eq!((j.verdict, cc), (Verdict::HandshakeFailed, ClientCert::Empty));
        assert_eq!(
            j.evidence,
            "server sent fatal alert handshake_failure (40) after client's empty Certificate"
        );
    }

    #[test]
    fn closed_versus_capture_end_mid_handshake() {
        let mut f = TlsFacts::default();
        f.client.bytes = 300;
        f.server.bytes = 1000;
        f.client.records.handshake = 1;
        f.server_hello = Some(ServerHelloFacts { version: Version::TLS12, ..Default::default() });
        let open = FlowContext::default();
        let closed = FlowContext { closed: true, ..Default::default() };
        assert_eq!(judge(&f, &open).0.verdict, Verdict::TlsUnknownAuth);
        assert_eq!(judge(&f, &closed).0.verdict, Verdict::HandshakeFailed);
    }

    #[test]
    fn nothing_seen_is_unknown() {
        let (j, cc) = judge(&TlsFacts::default(), &FlowContext::default());
        assert_eq!((j.verdict, cc), (Verdict::TlsUnknownAuth, ClientCert::Unknown));
    }
}
