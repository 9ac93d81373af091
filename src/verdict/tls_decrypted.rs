//! TLS 1.3 verdicts from a handshake decrypted with a key log (proof `decrypted`).
//!
//! | decrypted client flight (up to its Finished)          | verdict          | client cert   |
//! |--------------------------------------------------------|------------------|---------------|
//! | Certificate with certificates + CertificateVerify      | mtls (decrypted) | sent          |
//! | Certificate with certificates, no CertificateVerify    | tls-unknown-auth | unknown       |
//! | empty Certificate (after CertificateRequest)           | tls-server-auth  | empty         |
//! | no Certificate, no CertificateRequest                  | tls-server-auth  | not-requested |
//!
//! The size inference always runs too: when both decide and disagree, the flow gets a warning
//! and the decryption wins. When decryption did not reach the client's Finished (wrong key, a
//! capture gap, unsupported suite) the size inference decides, with a warning saying why.
//! Resumed (PSK) and failed handshakes keep the verdict the clear-text rules gave them.

use crate::classify::tls::{CertChain, DecryptedHandshake, TlsFacts};

use super::{ClientCert, Judgement, Proof, Verdict};

/// Replaces the size-inference judgement with the decrypted one when decryption proved it.
pub fn judge(f: &TlsFacts, inferred: (Judgement, ClientCert)) -> (Judgement, ClientCert) {
    let Some(d) = &f.decrypted else {
        return inferred;
    };
    let (mut inf, inf_cc) = inferred;
    let psk = f.server_hello.as_ref().is_some_and(|s| s.psk_accepted);
    if psk || inf.verdict == Verdict::HandshakeFailed {
        return (inf, inf_cc);
    }
    if !d.client_finished {
        let why = d.error.clone().unwrap_or_else(|| {
            "the capture ended before the client's Finished was decrypted".to_string()
        });
        inf.warnings.push(format!(
            "the key log had secrets for this flow but decryption failed ({why}); verdict from record sizes"
        ));
        return (inf, inf_cc);
    }
    let (mut j, cc) = decrypted(d);
    if inf_cc != ClientCert::Unknown && cc != ClientCert::Unknown && inf_cc != cc {
        j.warnings.push(format!(
            "size inference said client certificate {}, decryption shows {}; trusting decryption",
            inf_cc.as_str(),
            cc.as_str()
        ));
    }
    if let Some(e) = &d.error {
        j.warnings.push(format!("decryption stopped after the handshake: {e}"));
    }
    (j, cc)
}

fn certs(c: &CertChain) -> String {
    let s = if c.count == 1 { "" } else { "s" };
    format!("Certificate ({} cert{s}, {} bytes)", c.count, c.message_len)
}

fn decrypted(d: &DecryptedHandshake) -> (Judgement, ClientCert) {
    const BY: &str = "TLS 1.3 handshake decrypted with the key log";
    let asked = if d.certificate_request {
        "server sent CertificateRequest"
    } else {
        "no CertificateRequest was seen"
    };
    let (verdict, evidence, cc) = match &d.client_certs {
        Some(c) if !c.is_empty() && d.client_certificate_verify => (
            Verdict::Mtls,
            format!("{BY}: {asked}; client sent {}, CertificateVerify and Finished", certs(c)),
            ClientCert::Sent,
        ),
        Some(c) if !c.is_empty() => (
            Verdict::TlsUnknownAuth,
            format!("{BY}: client sent {} but no CertificateVerify", certs(c)),
            ClientCert::Unknown,
        ),
        Some(_) => (
            Verdict::TlsServerAuth,
            format!("{BY}: {asked}; the client answered with an empty Certificate"),
            ClientCert::Empty,
        ),
        None if d.certificate_request => (
            Verdict::TlsServerAuth,
            format!("{BY}: server sent CertificateRequest; the client sent no Certificate"),
            ClientCert::Empty,
        ),
        None => (
            Verdict::TlsServerAuth,
            format!("{BY}: no CertificateRequest; the client's flight was Finished only"),
            ClientCert::NotRequested,
        ),
    };
    let mut j = Judgement::new(verdict, evidence);
    if verdict != Verdict::TlsUnknownAuth {
        j.proof = Some(Proof::Decrypted);
    }
    (j, cc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tls::ServerHelloFacts;

    fn facts(d: DecryptedHandshake) -> TlsFacts {
        TlsFacts {
            server_hello: Some(ServerHelloFacts::default()),
            decrypted: Some(d),
            ..Default::default()
        }
    }

    fn chain(count: u32) -> CertChain {
        CertChain { message_len: 4 + count * 400, count, parsed: true, ..Default::default() }
    }

    #[test]
    fn decrypted_flight_decides_and_flags_disagreement() {
        let d = DecryptedHandshake {
            certificate_request: true,
            client_certs: Some(chain(2)),
            client_certificate_verify: true,
            client_finished: true,
            ..Default::default()
        };
        let inferred = (Judgement::new(Verdict::TlsServerAuth, "x"), ClientCert::Empty);
        let (j, cc) = judge(&facts(d), inferred);
        assert_eq!(
            (j.verdict, j.proof, cc),
            (Verdict::Mtls, Some(Proof::Decrypted), ClientCert::Sent)
        );
        assert!(j.evidence.contains("Certificate (2 certs, 804 bytes), CertificateVerify"));
        assert_eq!(
            j.warnings,
            ["size inference said client certificate empty, decryption shows sent; trusting decryption"]
        );
    }

    #[test]
    fn empty_and_absent_certificates() {
        let d = DecryptedHandshake {
            certificate_request: true,
            client_certs: Some(chain(0)),
            client_finished: true,
            ..Default::default()
        };
        let inferred = (Judgement::new(Verdict::TlsServerAuth, "x"), ClientCert::Empty);
        let (j, cc) = judge(&facts(d), inferred);
        assert_eq!(
            (j.verdict, j.proof, cc),
            (Verdict::TlsServerAuth, Some(Proof::Decrypted), ClientCert::Empty)
        );
        assert!(j.warnings.is_empty());
        let d = DecryptedHandshake { client_finished: true, ..Default::default() };
        let inferred = (Judgement::new(Verdict::TlsUnknownAuth, "x"), ClientCert::Unknown);
        let (j, cc) = judge(&facts(d), inferred);
        assert_eq!((j.verdict, cc), (Verdict::TlsServerAuth, ClientCert::NotRequested));
    }

    #[test]
    fn failed_decryption_falls_back_with_a_warning() {
        let d = DecryptedHandshake { error: Some("client: bad key".into()), ..Default::default() };
        let inferred = (Judgement::new(Verdict::Mtls, "sizes"), ClientCert::Sent);
        let (j, cc) = judge(&facts(d), inferred);
        assert_eq!(
            (j.verdict, j.evidence.as_str(), cc),
            (Verdict::Mtls, "sizes", ClientCert::Sent)
        );
        assert!(j.warnings[0].contains("decryption failed (client: bad key)"));
    }
}
