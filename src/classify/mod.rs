//! Stage 4: decide what a flow's byte streams are (TLS, HTTP/1, HTTP/2, other) from payload,
//! never from the port alone.

mod dispatch;
pub mod http1;
pub mod http2;
pub mod other;
pub mod tls;

pub use dispatch::{Classification, Classifier, Feed, Preamble, Stage};

/// Three outcomes for a detector: yes, no, or need more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    Yes,
    No,
    NeedMore,
}

/// Per-flow bounds on what the classifiers may buffer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes buffered per direction while a message (e.g. a certificate chain) is incomplete.
    pub max_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_buffer: 256 * 1024 }
    }
}

/// A detector's answer that carries what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detect<T> {
    Yes(T),
    No,
    NeedMore,
}

/// Render wire bytes for evidence: printable ASCII kept, everything else escaped, at most `max`
/// characters (an ellipsis marks a cut).
pub fn printable(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max));
    for &b in bytes {
        if out.len() >= max {
            out.push('…');
            break;
        }
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}
