//! Stage 1: capture sources. Turns pcap and pcapng bytes from any `Read` (a file, stdin, a
//! `tcpdump -U -w -` stream from a pod) into [`PacketRef`]s borrowed from the reader's buffer.
//!
//! Offline input is parsed by `pcap-parser` rather than libpcap because libpcap hides what an
//! auditor needs: the pcapng interface of each packet, the Decryption Secrets Block, and the
//! byte offset at which a damaged file stops making sense. A test checks packet-for-packet
//! agreement with libpcap on every fixture. Live capture uses libpcap (the `pcap` crate).

use crate::decode::LinkType;
use crate::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fmt;
use std::io::Read;

/// Largest block we will grow the read buffer for. Real frames are at most 256 KiB (the largest
/// snaplen any capture tool writes); a record claiming more is corrupt.
const MAX_BLOCK: usize = 16 * 1024 * 1024;
const INITIAL_BUFFER: usize = 1024 * 1024;

/// One captured frame, borrowed from the reader.
#[derive(Debug, Clone, Copy)]
pub struct PacketRef<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Index into [`CaptureReader::interfaces`].
    pub iface: u32,
}

impl PacketRef<'_> {
    /// The capture cut this frame short (snaplen).
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// The file formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap { nanosecond: bool },
    PcapNg,
}

/// An interface described by the capture (one for pcap; one per IDB for pcapng).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: Option<String>,
    pub link: LinkType,
    pub snaplen: u32,
}

/// A capture that could not be read at all, or stopped making sense at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub offset: u64,
    pub kind: CaptureErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureErrorKind {
    Empty,
    NotACapture,
    /// The file ends in the middle of a record.
    Truncated,
    /// A record header that cannot be right (e.g. a length over any snaplen).
    Corrupt(String),
    Io(String),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CaptureErrorKind::Empty => write!(f, "empty input: no capture header"),
            CaptureErrorKind::NotACapture => {
                write!(f, "not a pcap or pcapng capture (unrecognised header)")
            }
            CaptureErrorKind::Truncated => {
                write!(f, "capture truncated at byte {}: last record incomplete", self.offset)
            }
            CaptureErrorKind::Corrupt(what) => {
                write!(f, "corrupt capture at byte {}: {what}", self.offset)
            }
            CaptureErrorKind::Io(e) => write!(f, "read error at byte {}: {e}", self.offset),
        }
    }
}

impl std::error::Error for CaptureError {}

/// Streaming reader of pcap and pcapng.
pub struct CaptureReader<'r> {
    inner: Box<dyn PcapReaderIterator + Send + 'r>,
    state: ReaderState,
    offset: u64,
    done: bool,
}

/// What the blocks read so far say about the ones to come.
struct ReaderState {
    format: Format,
    interfaces: Vec<Interface>,
    /// Per interface: (units per second, offset in seconds) for pcapng timestamps.
    ts_params: Vec<(u64, i64)>,
    /// TLS key logs found in pcapng Decryption Secrets Blocks.
    secrets: Vec<Vec<u8>>,
    /// Where those secrets go as soon as they are read (before the packets after them).
    keylog: Option<std::sync::Arc<crate::keylog::KeyLog>>,
    warnings: Vec<String>,
}

impl<'r> CaptureReader<'r> {
    /// Probe `input` for a pcap or pcapng header.
    pub fn new<R: Read + Send + 'r>(input: R) -> Result<Self, CaptureError> {
        let inner = pcap_parser::create_reader(INITIAL_BUFFER, input).map_err(|e| {
            let kind = match e {
                PcapError::Eof => CaptureErrorKind::Empty,
                PcapError::ReadError => CaptureErrorKind::Io("read failed".into()),
                PcapError::Incomplete(_) | PcapError::UnexpectedEof => CaptureErrorKind::Truncated,
                _ => CaptureErrorKind::NotACapture,
            };
            CaptureError { offset: 0, kind }
        })?;
        let state = ReaderState {
            format: Format::PcapNg,
            interfaces: Vec::new(),
            ts_params: Vec::new(),
            secrets: Vec::new(),
            keylog: None,
            warnings: Vec::new(),
        };
        Ok(CaptureReader { inner, state, offset: 0, done: false })
    }

    pub fn format(&self) -> Format {
        self.state.format
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.state.interfaces
    }

    /// Key-log bytes from pcapng Decryption Secrets Blocks (TLS key log type only).
    pub fn secrets(&self) -> &[Vec<u8>] {
        &self.state.secrets
    }

    /// Add every Decryption Secrets Block's key log to `keylog` the moment it is read.
    pub fn set_keylog(&mut self, keylog: std::sync::Arc<crate::keylog::KeyLog>) {
        self.state.keylog = Some(keylog);
    }

    /// Oddities that did not stop reading (unknown interface ids, bad timestamps...).
    pub fn warnings(&self) -> &[String] {
        &self.state.warnings
    }

    /// Bytes of the input consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Read until the next packet and hand it to `sink`. Returns `Ok(false)` at the end of the
    /// input. An error means the rest of the input is unusable; what was read stays valid.
    pub fn next_packet(
        &mut self,
        sink: &mut dyn FnMut(PacketRef<'_>),
    ) -> Result<bool, CaptureError> {
        while !self.done {
            match self.inner.next() {
                Ok((len, block)) => {
                    let delivered = self.state.block(block, sink);
                    // Shifting the buffer on every block costs a memmove per packet; refill
                    // shifts once per read instead.
                    self.inner.consume_noshift(len);
                    self.offset += len as u64;
                    if delivered {
                        return Ok(true);
                    }
                }
                Err(PcapError::Eof) => self.done = true,
                Err(PcapError::Incomplete(_)) => self.refill()?,
                Err(PcapError::BufferTooSmall) => {
                    let want = self.inner.data().len().saturating_mul(2).max(INITIAL_BUFFER);
                    if want > MAX_BLOCK || !self.inner.grow(want) {
                        return self.fail(CaptureErrorKind::Corrupt(format!(
                            "a record claims more than {} MiB",
                            MAX_BLOCK / (1024 * 1024)
                        )));
                    }
                    self.refill()?;
                }
                Err(PcapError::UnexpectedEof) => {
                    return self.fail(CaptureErrorKind::Truncated);
                }
                Err(PcapError::ReadError) => {
                    return self.fail(CaptureErrorKind::Io("read failed".into()));
                }
                Err(e) => {
                    let what = match e {
                        PcapError::NomError(_, kind) => format!("unparsable block ({kind:?})"),
                        PcapError::OwnedNomError(_, kind) => format!("unparsable block ({kind:?})"),
                        PcapError::HeaderNotRecognized => "unrecognised block".to_string(),
                        _ => "unreadable block".to_string(),
                    };
                    return self.fail(CaptureErrorKind::Corrupt(what));
                }
            }
        }
        Ok(false)
    }

    fn refill(&mut self) -> Result<(), CaptureError> {
        let offset = self.offset;
        self.inner
            .refill()
            .map_err(|_| CaptureError { offset, kind: CaptureErrorKind::Io("read failed".into()) })
    }

    fn fail(&mut self, kind: CaptureErrorKind) -> Result<bool, CaptureError> {
        self.done = true;
        Err(CaptureError { offset: self.offset, kind })
    }
}

const SECRETS_TLS_KEYLOG: u32 = 0x544c_534b;

impl ReaderState {
    /// Apply one block; returns true if a packet went to `sink`.
    fn block(&mut self, block: PcapBlockOwned<'_>, sink: &mut dyn FnMut(PacketRef<'_>)) -> bool {
        let ReaderState { format, interfaces, .. } = self;
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                let nanosecond = matches!(h.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                *format = Format::Pcap { nanosecond };
                interfaces.clear();
                interfaces.push(Interface {
                    name: None,
                    link: LinkType(h.network.0 as u16),
                    snaplen: h.snaplen,
                });
                false
            }
            PcapBlockOwned::Legacy(b) => {
                let nanos = match format {
                    Format::Pcap { nanosecond: true } => b.ts_usec,
                    _ => b.ts_usec.saturating_mul(1000),
                };
                let link = interfaces.first().map_or(LinkType::ETHERNET, |i| i.link);
                sink(PacketRef {
                    ts: Timestamp::from_secs_nanos(i64::from(b.ts_sec), nanos),
                    link,
                    data: b.data,
                    orig_len: b.origlen.max(b.caplen),
                    iface: 0,
                });
                true
            }
            PcapBlockOwned::NG(block) => self.ng_block(block, sink),
        }
    }

    fn ng_block(&mut self, block: Block<'_>, sink: &mut dyn FnMut(PacketRef<'_>)) -> bool {
        let ReaderState { interfaces, ts_params, secrets, keylog, warnings, .. } = self;
        match block {
            Block::SectionHeader(_) => {
                // Interface ids are per section.
                interfaces.clear();
                ts_params.clear();
                false
            }
            Block::InterfaceDescription(idb) => {
                let name = idb.if_name().and_then(|r| r.ok()).map(str::to_owned);
                let resolution = idb.ts_resolution().unwrap_or_else(|| {
                    warnings.push(format!(
                        "interface {}: invalid timestamp resolution; assuming microseconds",
                        interfaces.len()
                    ));
                    1_000_000
                });
                ts_params.push((resolution.max(1), idb.ts_offset()));
                interfaces.push(Interface {
                    name,
                    link: LinkType(idb.linktype.0 as u16),
                    snaplen: idb.snaplen,
                });
                false
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize) else {
                    warn_once(warnings, format!("packet names unknown interface {}", epb.if_id));
                    return false;
                };
                let (resolution, offset) =
                    ts_params.get(epb.if_id as usize).copied().unwrap_or((1_000_000, 0));
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let secs =
                    i64::try_from(raw / resolution).unwrap_or(i64::MAX).saturating_add(offset);
                let frac = raw % resolution;
                let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(resolution)) as u32;
                let caplen = (epb.caplen as usize).min(epb.data.len());
                sink(PacketRef {
                    ts: Timestamp::from_secs_nanos(secs, nanos),
                    link: iface.link,
                    data: &epb.data[..caplen],
                    orig_len: epb.origlen.max(caplen as u32),
                    iface: epb.if_id,
                });
                true
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = interfaces.first() else {
                    warn_once(warnings, "simple packet block before any interface".to_string());
                    return false;
                };
                // A simple packet's captured length is implied: min(origlen, snaplen, block data).
                let mut caplen = spb.data.len().min(spb.origlen as usize);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                sink(PacketRef {
                    ts: Timestamp(0),
                    link: iface.link,
                    data: &spb.data[..caplen],
                    orig_len: spb.origlen,
                    iface: 0,
                });
                true
            }
            Block::DecryptionSecrets(dsb) => {
                if dsb.secrets_type.0 == SECRETS_TLS_KEYLOG {
                    let len = (dsb.secrets_len as usize).min(dsb.data.len());
                    if let Some(k) = keylog {
                        k.add(&dsb.data[..len]);
                    }
                    secrets.push(dsb.data[..len].to_vec());
                }
                false
            }
            _ => false,
        }
    }
}

fn warn_once(warnings: &mut Vec<String>, w: String) {
    if !warnings.contains(&w) && warnings.len() < 32 {
        warnings.push(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_header(magic: u32, link: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&magic.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&0i32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&link.to_le_bytes());
        v
    }

    fn record(sec: u32, frac: u32, data: &[u8], orig: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&frac.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&orig.to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    type Packets = Vec<(Timestamp, Vec<u8>, u32)>;

    fn read_all(bytes: &[u8]) -> (Packets, Result<(), CaptureError>) {
        let mut out = Vec::new();
        let mut r = match CaptureReader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (out, Err(e)),
        };
        loop {
            match r.next_packet(&mut |p| out.push((p.ts, p.data.to_vec(), p.orig_len))) {
                Ok(true) => {}
                Ok(false) => return (out, Ok(())),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn reads_microsecond_and_nanosecond_pcap() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        f.extend(record(10, 5, b"abc", 3));
        let (pkts, res) = read_all(&f);
        assert!(res.is_ok());
        assert_eq!(pkts, vec![(Timestamp(10_000_005_000), b"abc".to_vec(), 3)]);

        let mut f = pcap_header(0xa1b2_3c4d, 1);
        f.extend(record(10, 5, b"abc", 60));
        let (pkts, _) = read_all(&f);
        assert_eq!(pkts, vec![(Timestamp(10_000_000_005), b"abc".to_vec(), 60)]);
    }

    #[test]
    fn truncated_file_keeps_what_was_read_and_names_the_offset() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        f.extend(record(1, 0, b"first", 5));
        let second = record(2, 0, b"second packet", 13);
        f.extend_from_slice(&second[..20]);
        let (pkts, res) = read_all(&f);
        assert_eq!(pkts.len(), 1);
        let err = res.unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::Truncated);
        assert_eq!(err.offset, 24 + 16 + 5);
    }

    #[test]
    fn rejects_non_captures_and_empty_input() {
        let (_, res) = read_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(res.unwrap_err().kind, CaptureErrorKind::NotACapture);
        let (_, res) = read_all(b"");
        assert_eq!(res.unwrap_err().kind, CaptureErrorKind::Empty);
    }

    #[test]
    fn absurd_record_length_is_reported_as_corrupt() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        f.extend(record(1, 0, b"ok", 2));
        let mut bad = record(2, 0, b"", 0);
        bad[8..12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        f.extend(bad);
        f.extend(vec![0u8; 4096]);
        let (pkts, res) = read_all(&f);
        assert_eq!(pkts.len(), 1);
        let err = res.unwrap_err();
        assert!(matches!(err.kind, CaptureErrorKind::Corrupt(_) | CaptureErrorKind::Truncated));
        assert_eq!(err.offset, 24 + 18);
    }

    #[test]
    fn every_prefix_of_a_file_reads_without_panicking() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        for i in 0..5u8 {
            f.extend(record(u32::from(i), 0, &[i; 40], 60));
        }
        for cut in 0..f.len() {
            let (pkts, res) = read_all(&f[..cut]);
            let complete = cut.saturating_sub(24) / 56;
            assert_eq!(pkts.len(), complete, "cut at {cut}");
            if cut >= 24 && (cut - 24) % 56 != 0 {
                assert!(res.is_err(), "cut at {cut} must warn");
            }
        }
    }
}
