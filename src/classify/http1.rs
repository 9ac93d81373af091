//! HTTP/1.x in the clear: request and status lines, Host, and `Upgrade`/`CONNECT` hints.
//! Only what a verdict needs as evidence is kept (method, path, Host, status), never bodies or
//! other headers.

use super::{printable, Detect};

/// Longest request head we wait for before settling for the request line alone.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_FIELD: usize = 256;

pub(crate) const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"PUT",
    b"DELETE",
    b"HEAD",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
    b"PURGE",
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Minor version: 0 or 1.
    pub version: u8,
    pub host: Option<String>,
    /// Lower-cased `Upgrade` header value (e.g. `h2c`, `websocket`).
    pub upgrade: Option<String>,
    pub content_type: Option<String>,
    /// The headers did not fit in [`MAX_HEAD`] or were malformed: only the request line is known.
    pub line_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub version: u8,
    pub status: u16,
}

/// Does `buf` start with an HTTP/1 request? `Yes` once the request line (and, when they fit,
/// the headers) are complete.
pub fn parse_request(buf: &[u8]) -> Detect<Request> {
    match method_prefix(buf) {
        Detect::No => return Detect::No,
        Detect::NeedMore => return Detect::NeedMore,
        Detect::Yes(()) => {}
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => Detect::Yes(request_from(&req, false)),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
            // httparse fills the request line as soon as it is complete.
            if req.version.is_some() && memchr::memmem::find(buf, b"\r\n\r\n").is_none() {
                Detect::NeedMore
            } else if req.version.is_some() {
                Detect::Yes(request_from(&req, true))
            } else {
                Detect::NeedMore
            }
        }
        Ok(httparse::Status::Partial) => request_line_only(buf),
        Err(httparse::Error::TooManyHeaders) => request_line_only(buf),
        Err(_) => request_line_only(buf),
    }
}

/// Parse the request line alone (headers too long or malformed).
fn request_line_only(buf: &[u8]) -> Detect<Request> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return if buf.len() < MAX_HEAD { Detect::NeedMore } else { Detect::No };
    };
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Detect::No;
    };
    let minor = match version {
        b"HTTP/1.0" => 0,
        b"HTTP/1.1" => 1,
        _ => return Detect::No,
    };
    Detect::Yes(Request {
        method: printable(method, MAX_FIELD),
        path: printable(path, MAX_FIELD),
        version: minor,
        line_only: true,
        ..Request::default()
    })
}

fn request_from(req: &httparse::Request<'_, '_>, line_only: bool) -> Request {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| printable(h.value, MAX_FIELD))
    };
    Request {
        method: req.method.unwrap_or_default().to_string(),
        path: printable(req.path.unwrap_or_default().as_bytes(), MAX_FIELD),
        version: req.version.unwrap_or(1),
        host: header("host"),
        upgrade: header("upgrade").map(|u| u.to_ascii_lowercase()),
        content_type: header("content-type"),
        line_only,
    }
}

/// A method token followed by a space, or a prefix of one.
fn method_prefix(buf: &[u8]) -> Detect<()> {
    let token_len = buf.iter().take(10).take_while(|b| b.is_ascii_uppercase()).count();
    let token = &buf[..token_len];
    if token_len == buf.len() {
        // Still inside the first token: a prefix of some method?
        let prefix = token.is_empty() || METHODS.iter().any(|m| m.starts_with(token));
        return if prefix { Detect::NeedMore } else { Detect::No };
    }
    if buf[token_len] == b' ' && METHODS.contains(&token) {
        Detect::Yes(())
    } else {
        Detect::No
    }
}

/// Does `buf` start with an HTTP/1 status line?
pub fn parse_response(buf: &[u8]) -> Detect<Response> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Detect::No;
    }
    if buf.len() < 12 {
        return Detect::NeedMore;
    }
    let version = match buf[7] {
        b'0' => 0,
        b'1' => 1,
        _ => return Detect::No,
    };
    let code = &buf[9..12];
    if buf[8] != b' ' || !code.iter().all(u8::is_ascii_digit) {
        return Detect::No;
    }
    let status = code.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Detect::Yes(Response { version, status })
}

/// A capture that starts mid-stream: find the first request or status line that begins a line
/// within `buf` (at offset 0 or after a `\n`). Returns its offset.
pub fn find_message_start(buf: &[u8]) -> Option<usize> {
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', buf).map(|i| i + 1));
    starts.take(256).find(|&at| {
        let rest = &buf[at..];
        matches!(parse_request(rest), Detect::Yes(_))
            || matches!(parse_response(rest), Detect::Yes(_))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /api/items?id=7 HTTP/1.1\r\nHost: web.emojivoto:8080\r\nUser-Agent: curl/7.88\r\nAccept: */*\r\n\r\n";

    #[test]
    fn parses_a_request_with_host() {
        let Detect::Yes(r) = parse_request(REQ) else { panic!("not detected") };
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/items?id=7");
        assert_eq!(r.version, 1);
        assert_eq!(r.host.as_deref(), Some("web.emojivoto:8080"));
        assert!(!r.line_only);
    }

    #[test]
    fn every_prefix_needs_more_then_never_flips() {
        let mut answered = false;
        for n in 0..=REQ.len() {
            match parse_request(&REQ[..n]) {
                Detect::NeedMore => assert!(!answered, "flipped back to need-more at {n}"),
                Detect::Yes(r) => {
                    answered = true;
                    assert_eq!(r.method, "GET");
                }
                Detect::No => panic!("prefix {n} rejected"),
            }
        }
        assert!(answered);
    }

    #[test]
    fn rejects_non_http() {
        assert_eq!(parse_request(b"\x16\x03\x01\x02\x00\x01"), Detect::No);
        assert_eq!(parse_request(b"GETX / HTTP/1.1\r\n"), Detect::No);
        assert_eq!(parse_request(b"SSH-2.0-OpenSSH"), Detect::No);
        assert_eq!(parse_request(b"PRI * HTTP/2.0\r\n"), Detect::No);
    }

    #[test]
    fn upgrade_and_connect_are_kept() {
        let r = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n";
        let Detect::Yes(r) = parse_request(r) else { panic!() };
        assert_eq!(r.upgrade.as_deref(), Some("h2c"));
        let c = b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n";
        let Detect::Yes(c) = parse_request(c) else { panic!() };
        assert_eq!(c.method, "CONNECT");
        assert_eq!(c.path, "api.example:443");
    }

    #[test]
    fn oversized_head_falls_back_to_request_line() {
        let mut r = b"POST /upload HTTP/1.1\r\nX-Big: ".to_vec();
        r.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        let Detect::Yes(r) = parse_request(&r) else { panic!() };
        assert!(r.line_only);
        assert_eq!(r.path, "/upload");
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\n"),
            Detect::Yes(Response { version: 1, status: 200 })
        );
        assert_eq!(parse_response(b"HTTP/1."), Detect::NeedMore);
        assert_eq!(parse_response(b"HTTP/2 200"), Detect::No);
        assert_eq!(parse_response(b"\x17\x03\x03"), Detect::No);
    }

    #[test]
    fn finds_a_request_after_a_partial_body() {
        let mut buf = b"tail of a previous body\r\nmore\n".to_vec();
        let at = buf.len();
        buf.extend_from_slice(REQ);
        assert_eq!(find_message_start(&buf), Some(at));
        assert_eq!(find_message_start(b"\x00\x01binary\nstuff"), None);
    }
}
