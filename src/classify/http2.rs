//! HTTP/2 in the clear (h2c): the prior-knowledge preface and the first request's HEADERS,
//! decoded with HPACK to show `:method` and `:path` as evidence. gRPC is h2 with a
//! `content-type: application/grpc*`.

use super::{printable, Detect};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How far into the client stream we look for the first HEADERS block.
pub const MAX_SCAN: usize = 32 * 1024;
const FRAME_HEADER: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct H2Request {
    pub method: Option<String>,
    pub path: Option<String>,
    pub authority: Option<String>,
    pub content_type: Option<String>,
}

impl H2Request {
    pub fn is_grpc(&self) -> bool {
        self.content_type.as_deref().is_some_and(|c| c.starts_with("application/grpc"))
    }
}

/// Does the client stream start with the HTTP/2 connection preface?
pub fn sniff_preface(buf: &[u8]) -> Detect<()> {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Detect::No
    } else if n < PREFACE.len() {
        Detect::NeedMore
    } else {
        Detect::Yes(())
    }
}

/// Find and decode the first request header block in `frames` (the client stream after the
/// preface). `NeedMore` until a complete header block is present; `No` if the frames are not
/// HTTP/2 or the block does not decode.
pub fn first_request(frames: &[u8]) -> Detect<H2Request> {
    let mut at = 0usize;
    let mut block: Vec<u8> = Vec::new();
    let mut in_headers = false;
    loop {
        let Some(header) = frames.get(at..at + FRAME_HEADER) else {
            return if frames.len() >= MAX_SCAN { Detect::No } else { Detect::NeedMore };
        };
        let len =
            (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        if len > 1 << 24 || (!in_headers && kind > 0x9 && kind != 0x10) {
            return Detect::No;
        }
        let Some(payload) = frames.get(at + FRAME_HEADER..at + FRAME_HEADER + len) else {
            return if at + FRAME_HEADER + len > MAX_SCAN { Detect::No } else { Detect::NeedMore };
        };
        at += FRAME_HEADER + len;
        match (in_headers, kind) {
            (false, TYPE_HEADERS) => {
                let Some(fragment) = headers_fragment(payload, flags) else {
                    return Detect::No;
                };
                block.extend_from_slice(fragment);
                in_headers = true;
            }
            (true, TYPE_CONTINUATION) => block.extend_from_slice(payload),
            (true, _) => return Detect::No,
            (false, _) => continue,
        }
        if flags & FLAG_END_HEADERS != 0 {
            return decode_block(&block);
        }
    }
}

/// Strip padding and priority from a HEADERS payload.
fn headers_fragment(payload: &[u8], flags: u8) -> Option<&[u8]> {
    let mut start = 0usize;
    let mut end = payload.len();
    if flags & FLAG_PADDED != 0 {
        let pad = usize::from(*payload.first()?);
        start = 1;
        end = end.checked_sub(pad)?;
    }
    if flags & FLAG_PRIORITY != 0 {
        start += 5;
    }
    payload.get(start..end)
}

fn decode_block(block: &[u8]) -> Detect<H2Request> {
    let mut decoder = loona_hpack::Decoder::new();
    decoder.set_max_allowed_table_size(4096);
    let mut req = H2Request::default();
    let result = decoder.decode_with_cb(block, |name, value| {
        let slot = match name.as_ref() {
            b":method" => &mut req.method,
            b":path" => &mut req.path,
            b":authority" => &mut req.authority,
            b"content-type" => &mut req.content_type,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(printable(&value, 256));
        }
    });
    match result {
        Ok(()) if req.method.is_some() || req.path.is_some() => Detect::Yes(req),
        _ => Detect::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn grpc_headers() -> Vec<u8> {
        let mut enc = loona_hpack::Encoder::new();
        enc.encode(vec![
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", b"/helloworld.Greeter/SayHello"),
            (b":authority", b"greeter:50051"),
            (b"content-type", b"application/grpc"),
        ])
    }

    #[test]
    fn preface_prefixes() {
        for n in 0..PREFACE.len() {
            assert_eq!(sniff_preface(&PREFACE[..n]), Detect::NeedMore);
        }
        assert_eq!(sniff_preface(PREFACE), Detect::Yes(()));
        assert_eq!(sniff_preface(b"PRI * HTTP/1.1"), Detect::No);
    }

    #[test]
    fn decodes_grpc_request_after_settings() {
        let mut s = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        s.extend(frame(0x8, 0, 0, &[0, 0, 0, 10]));
        s.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &grpc_headers()));
        let Detect::Yes(r) = first_request(&s) else { panic!("no request") };
        assert_eq!(r.method.as_deref(), Some("POST"));
        assert_eq!(r.path.as_deref(), Some("/helloworld.Greeter/SayHello"));
        assert!(r.is_grpc());
        // every prefix: need more, never a wrong answer
        for n in 0..s.len() {
            assert_eq!(first_request(&s[..n]), Detect::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn continuation_padding_and_priority() {
        let block = grpc_headers();
        let (a, b) = block.split_at(7);
        let mut padded = vec![3u8];
        padded.extend_from_slice(&[0, 0, 0, 0, 16]);
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0, 0, 0]);
        let mut s = frame(TYPE_HEADERS, FLAG_PADDED | FLAG_PRIORITY, 1, &padded);
        s.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, b));
        let Detect::Yes(r) = first_request(&s) else { panic!("no request") };
        assert_eq!(r.authority.as_deref(), Some("greeter:50051"));
    }

    #[test]
    fn garbage_is_not_http2() {
        assert_eq!(first_request(&[0xff; 64]), Detect::No);
        let s = frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(first_request(&s), Detect::No);
    }
}
