//! Stage 4: decide what a flow's byte streams are (TLS, HTTP/1, HTTP/2, other) from payload,
//! never from the port alone.

pub mod tls;

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
