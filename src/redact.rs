//! `--redact`: what a flow's record keeps of the application's own words is replaced by
//! [`MARKER`] before the record leaves the flow table, so no output (table, JSON, JSON Lines,
//! the CI gate's reports, the terminal UI) and no verdict sentence can carry it.
//!
//! Replaced: the HTTP/1 request target (path and query) and Host, the HTTP/2 `:path` and
//! `:authority`, a non-standard `:method`, media type parameters, unusual `Upgrade` values,
//! the first word of other plaintext, and the request target inside an upgrade preamble's
//! evidence. Kept: HTTP methods, status codes, protocol names, and TLS metadata (SNI, ALPN,
//! certificates): they are names the handshake sends in the clear to every on-path observer,
//! never credentials, and the mesh identity checks stand on them.

use crate::classify::http1::{Request, METHODS};
use crate::classify::http2::H2Request;
use crate::classify::other::OtherInfo;
use crate::classify::{Classification, Preamble};
use crate::flow::FlowRecord;

/// What a redacted value reads as.
pub const MARKER: &str = "[redacted]";

/// Redact one record's classification in place.
pub fn record(r: &mut FlowRecord) {
    classification(&mut r.classification);
}

pub fn classification(c: &mut Classification) {
    match c {
        Classification::Empty => {}
        Classification::Tls { preamble, .. } => {
            if let Some(p) = preamble {
                preamble_evidence(p);
            }
        }
        Classification::Http1 { request, .. } => {
            if let Some(r) = request {
                http1(r);
            }
        }
        Classification::H2c { request, via_upgrade } => {
            if let Some(r) = request {
                h2(r);
            }
            if let Some(r) = via_upgrade {
                http1(r);
            }
        }
        Classification::Other(info) => other(info),
    }
}

fn marker() -> String {
    MARKER.to_string()
}

fn http1(r: &mut Request) {
    // The method is one of the standard tokens the detector accepts; keep it.
    r.path = marker();
    if r.host.is_some() {
        r.host = Some(marker());
    }
    r.upgrade = r.upgrade.take().map(|u| if is_token(&u) { u } else { marker() });
    r.content_type = r.content_type.take().map(media_type);
}

fn h2(r: &mut H2Request) {
    let standard = |m: &String| METHODS.iter().any(|k| k == &m.as_bytes());
    r.method = r.method.take().map(|m| if standard(&m) { m } else { marker() });
    r.path = r.path.as_ref().map(|_| marker());
    r.authority = r.authority.as_ref().map(|_| marker());
    r.content_type = r.content_type.take().map(media_type);
}

fn other(info: &mut OtherInfo) {
    info.first_word = info.first_word.as_ref().map(|_| marker());
}

/// An HTTP preamble's evidence is "METHOD TARGET HTTP/1.x in the clear..." (the target has no
/// spaces): the target goes. Other preambles only name their protocol.
fn preamble_evidence(p: &mut Preamble) {
    if !p.protocol.starts_with("http1 ") {
        return;
    }
    let mut words = p.evidence.splitn(3, ' ');
    if let (Some(method), Some(_target), Some(rest)) = (words.next(), words.next(), words.next()) {
        p.evidence = format!("{method} {MARKER} {rest}");
    }
}

/// `application/grpc+proto; charset=...` -> `application/grpc+proto`: parameters go.
fn media_type(c: String) -> String {
    match c.split_once(';') {
        Some((t, _)) => t.trim_end().to_string(),
        None => c,
    }
}

/// A short protocol token such as `h2c`, `websocket`, `TLS/1.2`.
fn is_token(s: &str) -> bool {
    s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/.-_+".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_keeps_the_method_and_drops_target_and_host() {
        let mut c = Classification::Http1 {
            request: Some(Request {
                method: "GET".into(),
                path: "/a?token=s3cret".into(),
                version: 1,
                host: Some("api.internal:8080".into()),
                upgrade: Some("h2c".into()),
                content_type: Some("text/plain; boundary=s3cret".into()),
                line_only: false,
            }),
            response: None,
            midstream: false,
        };
        classification(&mut c);
        let Classification::Http1 { request: Some(r), .. } = c else { panic!("shape") };
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, MARKER);
        assert_eq!(r.host.as_deref(), Some(MARKER));
        assert_eq!(r.upgrade.as_deref(), Some("h2c"));
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn h2_path_authority_and_odd_methods_go() {
        let mut r = H2Request {
            method: Some("X-S3CRET".into()),
            path: Some("/svc/Call?k=s3cret".into()),
            authority: Some("greeter:50051".into()),
            content_type: Some("application/grpc".into()),
        };
        h2(&mut r);
        assert_eq!(r.method.as_deref(), Some(MARKER));
        assert_eq!(r.path.as_deref(), Some(MARKER));
        assert_eq!(r.authority.as_deref(), Some(MARKER));
        assert!(r.is_grpc(), "the gRPC marker survives");
        let mut post = H2Request { method: Some("POST".into()), ..H2Request::default() };
        h2(&mut post);
        assert_eq!(post.method.as_deref(), Some("POST"));
        assert_eq!(post.path, None, "nothing is invented");
    }

    #[test]
    fn preamble_target_and_other_first_word_go() {
        let mut p = Preamble {
            protocol: "http1 CONNECT".into(),
            evidence: "CONNECT vault:8200 HTTP/1.1 in the clear, answered 200".into(),
            bytes: [10, 20],
        };
        preamble_evidence(&mut p);
        assert_eq!(p.evidence, "CONNECT [redacted] HTTP/1.1 in the clear, answered 200");
        let mut info = crate::classify::other::classify(b"hunter2 is the password\n", false);
        assert_eq!(info.first_word.as_deref(), Some("hunter2"));
        other(&mut info);
        assert_eq!(info.first_word.as_deref(), Some(MARKER));
    }
}
