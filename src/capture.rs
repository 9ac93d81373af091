//! Stage 1: capture sources. Turns pcap and pcapng bytes from any `Read` (a file, stdin, a
//! `tcpdump -U -w -` stream from a pod) into [`PacketRef`]s borrowed from the reader's buffer.
//!
//! Offline input is parsed by `pcap-parser` rather than libpcap because libpcap hides what an
//! auditor needs: the pcapng interface of each packet, the Decryption Secrets Block, and the
//! byte offset at which a damaged file stops making sense. A test checks packet-for-packet
//! agreement with libpcap on every fixture. Live capture uses libpcap (the `pcap` crate).

use crate::decode::LinkType;
use crate::Timestamp;
use pcap_parser::pcapng::Block as NgBlock;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fmt;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::Scope;

/// Largest block we will grow the read buffer for. Real frames are at most 256 KiB (the largest
/// snaplen any capture tool writes); a record claiming more is corrupt.
const MAX_BLOCK: usize = 16 * 1024 * 1024;
const INITIAL_BUFFER: usize = 1024 * 1024;

/// Most packets [`CaptureReader::next_packets`] hands over at once.
pub const BATCH: usize = 32;

/// Bytes asked of the input per `read`: classic pcap records are framed in place in these
/// blocks, so only a record that straddles two blocks is ever copied.
const READ_BLOCK: usize = 1024 * 1024;
/// The reader thread fills a block in reads of this size, and indexes each read's records
/// ([`RecordIndex`]) while they are still in its core's cache.
const READ_CHUNK: usize = 256 * 1024;
/// Blocks a prefetching reader thread may have filled ahead of the parser (plus the one being
/// filled and the one being parsed): memory stays bounded at a few MiB.
const PREFETCH_DEPTH: usize = 2;
/// Blocks a reader thread makes: the one it fills, the queued ones and the one being parsed.
const BLOCKS: usize = PREFETCH_DEPTH + 2;

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
            CaptureErrorKind::Empty => write!(f, "empty input: no capture header at byte 0"),
            CaptureErrorKind::NotACapture => write!(
                f,
                "not a pcap or pcapng capture: unrecognised header at byte {}",
                self.offset
            ),
            // Nothing is consumed before the file header is whole.
            CaptureErrorKind::Truncated if self.offset == 0 => {
                write!(f, "capture truncated at byte 0: the file header is incomplete")
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
    inner: Parser<'r>,
    state: ReaderState,
    offset: u64,
    done: bool,
}

/// Classic pcap (the common case, and the one huge files come in) is framed by our own code,
/// in place in the input's blocks; pcapng and the rare "modified" pcap go through
/// `pcap-parser`.
enum Parser<'r> {
    Legacy(Box<LegacyFramer<'r>>),
    Generic(Box<dyn PcapReaderIterator + Send + 'r>),
}

/// What the blocks read so far say about the ones to come.
struct ReaderState {
    format: Format,
    interfaces: Vec<Interface>,
    /// Per interface: (units per second, offset in seconds) for pcapng timestamps.
    ts_params: Vec<(u64, i64)>,
    /// pcapng Decryption Secrets Blocks with a TLS key log seen so far. Their bytes go only
    /// into `keylog`: the raw key log is never kept (nor echoed).
    secrets_blocks: u64,
    /// Where those secrets go as soon as they are read (before the packets after them).
    keylog: Option<std::sync::Arc<crate::keylog::KeyLog>>,
    warnings: Vec<String>,
    /// Records whose captured length exceeds their original length, and where the first was.
    oversized: u64,
    oversized_at: u64,
    /// Byte offset of the block being applied (pcapng and modified pcap).
    at: u64,
    /// Byte order of the current pcapng section, once its header was read.
    ng_big_endian: Option<bool>,
    /// Packets skipped for naming an interface the section did not describe, and the first.
    unknown_iface: (u64, String),
}

impl<'r> CaptureReader<'r> {
    /// Probe `input` for a pcap or pcapng header. The input is read on the calling thread.
    pub fn new<R: Read + Send + 'r>(input: R) -> Result<Self, CaptureError> {
        Self::from_source(Source::Direct(Box::new(input)))
    }

    /// Like [`CaptureReader::new`], but `input` is read ahead on a thread of `scope`, so the
    /// kernel's copy of the file overlaps the analysis. Memory stays bounded (a few blocks of
    /// 1 MiB, recycled). The thread ends when the input does, or soon after the reader is
    /// dropped (after its current `read` returns).
    pub fn prefetched<'scope, 'env, R: Read + Send + 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        input: R,
    ) -> Result<CaptureReader<'static>, CaptureError> {
        CaptureReader::from_source(Source::Prefetch(Prefetch::spawn(scope, input)))
    }

    fn from_source(mut source: Source<'r>) -> Result<Self, CaptureError> {
        let mut first = Block::default();
        let read_error = || CaptureError { offset: 0, kind: read_failed() };
        source.next_block(&mut first).map_err(|_| read_error())?;
        // A pipe may hand out the file header in pieces.
        while first.len < PCAP_HEADER_LEN && first.len > 0 {
            let mut more = Block::default();
            source.next_block(&mut more).map_err(|_| read_error())?;
            if more.len == 0 {
                break;
            }
            first.data.truncate(first.len);
            first.data.extend_from_slice(more.filled());
            first.len = first.data.len();
            source.recycle(more);
        }
        let state = ReaderState {
            format: Format::PcapNg,
            interfaces: Vec::new(),
            ts_params: Vec::new(),
            secrets_blocks: 0,
            keylog: None,
            warnings: Vec::new(),
            oversized: 0,
            oversized_at: 0,
            at: 0,
            unknown_iface: (0, String::new()),
            ng_big_endian: None,
        };
        let inner = match LegacyFramer::probe(first.filled()) {
            Some(header) => {
                let mut state = state;
                let framer = LegacyFramer::new(source, first, header, &mut state);
                let mut reader = CaptureReader {
                    inner: Parser::Legacy(Box::new(framer)),
                    state,
                    offset: 0,
                    done: false,
                };
                reader.offset = PCAP_HEADER_LEN as u64;
                return Ok(reader);
            }
            None => {
                let cut_header = is_cut_header(first.filled());
                let input = BlockRead { source, block: first, pos: 0 };
                pcap_parser::create_reader(INITIAL_BUFFER, input).map_err(|e| {
                    let kind = match e {
                        PcapError::Eof => CaptureErrorKind::Empty,
                        PcapError::ReadError => CaptureErrorKind::Io("read failed".into()),
                        PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
                            CaptureErrorKind::Truncated
                        }
                        _ if cut_header => CaptureErrorKind::Truncated,
                        _ => CaptureErrorKind::NotACapture,
                    };
                    CaptureError { offset: 0, kind }
                })?
            }
        };
        Ok(CaptureReader { inner: Parser::Generic(inner), state, offset: 0, done: false })
    }

    pub fn format(&self) -> Format {
        self.state.format
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.state.interfaces
    }

    /// pcapng Decryption Secrets Blocks with a TLS key log read so far.
    pub fn secrets_blocks(&self) -> u64 {
        self.state.secrets_blocks
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

    /// Like [`Self::next_packet`], but hands over several packets at a time where it can
    /// (classic pcap records lying whole in one read block; pcapng goes one by one). Returns
    /// how many were handed over, 0 at the end of the input.
    pub fn next_packets(
        &mut self,
        sink: &mut dyn FnMut(&[PacketRef<'_>]),
    ) -> Result<usize, CaptureError> {
        if let (Parser::Legacy(framer), false) = (&mut self.inner, self.done) {
            let link = self.state.interfaces.first().map_or(LinkType::ETHERNET, |i| i.link);
            let before = framer.oversized;
            let got = framer.next_batch(link, sink);
            if got.packets > 0 {
                let at = self.offset + got.first_oversized.unwrap_or(0) as u64;
                self.state.note_oversized(framer.oversized - before, at);
                self.offset += got.bytes as u64;
                return Ok(got.packets);
            }
        }
        self.next_packet(&mut |p| sink(&[p])).map(usize::from)
    }

    /// Read until the next packet and hand it to `sink`. Returns `Ok(false)` at the end of the
    /// input. An error means the rest of the input is unusable; what was read stays valid.
    pub fn next_packet(
        &mut self,
        sink: &mut dyn FnMut(PacketRef<'_>),
    ) -> Result<bool, CaptureError> {
        if self.done {
            return Ok(false);
        }
        let step = match &mut self.inner {
            Parser::Legacy(framer) => {
                let link = self.state.interfaces.first().map_or(LinkType::ETHERNET, |i| i.link);
                let oversized = framer.oversized;
                match framer.next(link, sink) {
                    Ok(Some(len)) => {
                        self.state.note_oversized(framer.oversized - oversized, self.offset);
                        self.offset += len as u64;
                        Step::Packet
                    }
                    Ok(None) => Step::End,
                    Err(kind) => Step::Fail(kind),
                }
            }
            Parser::Generic(inner) => next_generic(inner, &mut self.state, &mut self.offset, sink)?,
        };
        match step {
            Step::Packet => Ok(true),
            Step::End => {
                self.done = true;
                self.state.end_warnings();
                Ok(false)
            }
            Step::Fail(kind) => self.fail(kind),
        }
    }

    fn fail(&mut self, kind: CaptureErrorKind) -> Result<bool, CaptureError> {
        self.done = true;
        self.state.end_warnings();
        Err(CaptureError { offset: self.offset, kind })
    }
}

/// What one call of `LegacyFramer::next_batch` handed over.
#[derive(Default)]
struct Batch {
    packets: usize,
    bytes: usize,
    /// Offset (from the batch's start) of its first record whose caplen exceeds its length.
    first_oversized: Option<usize>,
}

/// What one call of `next_packet` came to.
enum Step {
    Packet,
    End,
    Fail(CaptureErrorKind),
}

/// `next_packet` through `pcap-parser`. A failed refill is an error that does not end reading.
fn next_generic(
    inner: &mut Box<dyn PcapReaderIterator + Send + '_>,
    state: &mut ReaderState,
    offset: &mut u64,
    sink: &mut dyn FnMut(PacketRef<'_>),
) -> Result<Step, CaptureError> {
    loop {
        if let Some(len) = short_ng_block(inner.data(), state) {
            return Ok(Step::Fail(CaptureErrorKind::Corrupt(format!(
                "a pcapng block claims {len} bytes, under the 12 a block header takes"
            ))));
        }
        match inner.next() {
            Ok((len, block)) => {
                let oversized = state.oversized;
                state.at = *offset;
                let delivered = state.block(block, sink);
                if oversized == 0 && state.oversized > 0 {
                    state.oversized_at = *offset;
                }
                // Shifting the buffer on every block costs a memmove per packet; refill
                // shifts once per read instead.
                inner.consume_noshift(len);
                *offset += len as u64;
                if delivered {
                    return Ok(Step::Packet);
                }
            }
            Err(PcapError::Eof) => return Ok(Step::End),
            Err(PcapError::Incomplete(_)) => refill(inner, *offset)?,
            Err(PcapError::BufferTooSmall) => {
                let want = inner.data().len().saturating_mul(2).max(INITIAL_BUFFER);
                if want > MAX_BLOCK || !inner.grow(want) {
                    return Ok(Step::Fail(too_big()));
                }
                refill(inner, *offset)?;
            }
            Err(PcapError::UnexpectedEof) => return Ok(Step::Fail(CaptureErrorKind::Truncated)),
            Err(PcapError::ReadError) => return Ok(Step::Fail(read_failed())),
            Err(e) => {
                let what = match e {
                    PcapError::NomError(_, kind) => format!("unparsable block ({kind:?})"),
                    PcapError::OwnedNomError(_, kind) => format!("unparsable block ({kind:?})"),
                    PcapError::HeaderNotRecognized => "unrecognised block".to_string(),
                    _ => "unreadable block".to_string(),
                };
                return Ok(Step::Fail(CaptureErrorKind::Corrupt(what)));
            }
        }
    }
}

/// The length of the pcapng block at the start of `data` if it is under the 12-byte minimum.
/// `pcap-parser` 0.17 underflows on such a length for blocks with a shorter header of their
/// own (the Process Information Block), so it is refused before parsing.
fn short_ng_block(data: &[u8], state: &ReaderState) -> Option<u32> {
    let big_endian = state.ng_big_endian?;
    let h = data.first_chunk::<8>()?;
    if h[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        return None; // a new section: its own header says its byte order
    }
    let b = [h[4], h[5], h[6], h[7]];
    let len = if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
    (len < 12).then_some(len)
}

fn refill(
    inner: &mut Box<dyn PcapReaderIterator + Send + '_>,
    offset: u64,
) -> Result<(), CaptureError> {
    inner.refill().map_err(|_| CaptureError { offset, kind: read_failed() })
}

fn read_failed() -> CaptureErrorKind {
    CaptureErrorKind::Io("read failed".into())
}

fn too_big() -> CaptureErrorKind {
    CaptureErrorKind::Corrupt(format!(
        "a record claims more than {} MiB",
        MAX_BLOCK / (1024 * 1024)
    ))
}

const PCAP_HEADER_LEN: usize = 24;
/// The smallest pcapng Section Header Block.
const PCAPNG_SHB_MIN_LEN: usize = 28;

/// The whole input is shorter than a file header and starts like one (a capture cut right
/// after it began), rather than being something else.
fn is_cut_header(b: &[u8]) -> bool {
    const MAGICS: [u32; 7] = [
        0x0a0d_0d0a, // pcapng Section Header Block
        0xa1b2_c3d4,
        0xd4c3_b2a1,
        0xa1b2_3c4d,
        0x4d3c_b2a1,
        0xa1b2_cd34, // "modified" pcap
        0x34cd_b2a1,
    ];
    let n = b.len().min(4);
    b.len() < PCAPNG_SHB_MIN_LEN && MAGICS.iter().any(|m| m.to_be_bytes()[..n] == b[..n])
}
const PCAP_RECORD_HEADER_LEN: usize = 16;

/// A classic pcap file header, as far as framing needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LegacyHeader {
    pub(crate) big_endian: bool,
    pub(crate) nanosecond: bool,
    pub(crate) snaplen: u32,
    pub(crate) network: u32,
}

impl LegacyHeader {
    /// The 24-byte global header of a classic pcap file (also read by `pod`'s stream splitter).
    pub(crate) fn parse(h: &[u8; PCAP_HEADER_LEN]) -> Option<LegacyHeader> {
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanosecond) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let field = |at: usize| {
            let b = [h[at], h[at + 1], h[at + 2], h[at + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Some(LegacyHeader { big_endian, nanosecond, snaplen: field(16), network: field(20) })
    }

    fn field(&self, rec: &[u8], at: usize) -> u32 {
        let b = [rec[at], rec[at + 1], rec[at + 2], rec[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Bytes the record starting `rec` takes, once its header is there.
    fn record_len(&self, rec: &[u8]) -> Option<Result<usize, CaptureErrorKind>> {
        if rec.len() < PCAP_RECORD_HEADER_LEN {
            return None;
        }
        let caplen = self.field(rec, 8) as usize;
        Some(if caplen > MAX_BLOCK - PCAP_RECORD_HEADER_LEN {
            Err(too_big())
        } else {
            Ok(PCAP_RECORD_HEADER_LEN + caplen)
        })
    }

    /// The record claims more captured bytes than were on the wire (caplen > len).
    fn oversized(&self, rec: &[u8]) -> bool {
        self.field(rec, 8) > self.field(rec, 12)
    }

    fn packet<'a>(&self, rec: &'a [u8], link: LinkType) -> PacketRef<'a> {
        let ts_sec = self.field(rec, 0);
        let frac = self.field(rec, 4);
        let caplen = self.field(rec, 8);
        let origlen = self.field(rec, 12);
        let nanos = if self.nanosecond { frac } else { frac.saturating_mul(1000) };
        PacketRef {
            ts: Timestamp::from_secs_nanos(i64::from(ts_sec), nanos),
            link,
            data: &rec[PCAP_RECORD_HEADER_LEN..],
            orig_len: origlen.max(caplen),
            iface: 0,
        }
    }
}

/// Frames classic pcap records in place in the input's blocks: a record is handed out
/// borrowed from the block it lies in; only one that straddles two blocks is copied (into
/// `joined`). Same outcomes as `pcap-parser`'s reader: a record cut by the end of the input is
/// `Truncated`, one claiming more than `MAX_BLOCK` bytes is `Corrupt`.
struct LegacyFramer<'r> {
    source: Source<'r>,
    block: Block,
    /// Next record's start in `block`.
    pos: usize,
    /// A record straddling blocks, put together.
    joined: Vec<u8>,
    header: LegacyHeader,
    eof: bool,
    /// Records so far whose caplen exceeds their original length.
    oversized: u64,
}

impl<'r> LegacyFramer<'r> {
    /// A classic (not "modified") pcap header, little- or big-endian, micro- or nanosecond.
    fn probe(first: &[u8]) -> Option<LegacyHeader> {
        LegacyHeader::parse(first.first_chunk::<PCAP_HEADER_LEN>()?)
    }

    fn new(
        source: Source<'r>,
        block: Block,
        header: LegacyHeader,
        state: &mut ReaderState,
    ) -> Self {
        state.format = Format::Pcap { nanosecond: header.nanosecond };
        state.interfaces.clear();
        state.interfaces.push(Interface {
            name: None,
            link: LinkType(header.network as u16),
            snaplen: header.snaplen,
        });
        LegacyFramer {
            source,
            block,
            pos: PCAP_HEADER_LEN,
            joined: Vec::new(),
            header,
            eof: false,
            oversized: 0,
        }
    }

    /// The next record to `sink`; its length, or `None` at a clean end of the input.
    fn next(
        &mut self,
        link: LinkType,
        sink: &mut dyn FnMut(PacketRef<'_>),
    ) -> Result<Option<usize>, CaptureErrorKind> {
        let rest = &self.block.filled()[self.pos..];
        if let Some(len) = self.header.record_len(rest) {
            let len = len?;
            if let Some(rec) = rest.get(..len) {
                self.pos += len;
                self.oversized += u64::from(self.header.oversized(rec));
                sink(self.header.packet(rec, link));
                return Ok(Some(len));
            }
        }
        // The record straddles blocks (or the input ends): put it together in `joined`.
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        joined.extend_from_slice(rest);
        self.pos = self.block.filled().len();
        let res = self.join(&mut joined);
        let out = match res {
            Ok(Some(len)) => {
                self.oversized += u64::from(self.header.oversized(&joined[..len]));
                sink(self.header.packet(&joined[..len], link));
                Ok(Some(len))
            }
            other => other,
        };
        self.joined = joined;
        out
    }

    /// Up to `BATCH` records lying whole in the current block, handed to `sink` together.
    /// Nothing is handed over when the next record straddles blocks, the input ends or the
    /// next record is corrupt: [`Self::next`] deals with those, one record at a time.
    fn next_batch(&mut self, link: LinkType, sink: &mut dyn FnMut(&[PacketRef<'_>])) -> Batch {
        let empty = PacketRef { ts: Timestamp(0), link, data: &[], orig_len: 0, iface: 0 };
        let mut packets = [empty; BATCH];
        let mut out = Batch::default();
        let block = self.block.filled();
        self.touch_next(block);
        while out.packets < BATCH {
            let rest = &block[self.pos + out.bytes..];
            let Some(Ok(len)) = self.header.record_len(rest) else { break };
            let Some(rec) = rest.get(..len) else { break };
            if self.header.oversized(rec) {
                out.first_oversized.get_or_insert(out.bytes);
                self.oversized += 1;
            }
            packets[out.packets] = self.header.packet(rec, link);
            out.packets += 1;
            out.bytes += len;
        }
        self.pos += out.bytes;
        if out.packets > 0 {
            sink(&packets[..out.packets]);
        }
        out
    }

    /// Reads a byte of each of the next `BATCH` records' first two cache lines (the record
    /// header, and the link, IP and TCP headers after it) where the reader thread found them
    /// ([`RecordIndex`]): the loads do not depend on each other, so their misses overlap,
    /// and the framing loop then finds every header in cache.
    fn touch_next(&self, block: &[u8]) {
        let starts = &self.block.starts;
        let first = starts.partition_point(|&s| (s as usize) < self.pos);
        let byte = |i: usize| block.get(i).copied().unwrap_or(0);
        let touched = starts[first..].iter().take(BATCH).fold(0u8, |acc, &s| {
            acc ^ byte(s as usize + 8) ^ byte(s as usize + PCAP_RECORD_HEADER_LEN + 54)
        });
        std::hint::black_box(touched);
    }

    fn join(&mut self, joined: &mut Vec<u8>) -> Result<Option<usize>, CaptureErrorKind> {
        loop {
            let need = match self.header.record_len(joined) {
                None => PCAP_RECORD_HEADER_LEN,
                Some(len) => len?,
            };
            if joined.len() >= need {
                return Ok(Some(need));
            }
            if self.pos >= self.block.len {
                if !self.eof && self.source.next_block(&mut self.block).is_err() {
                    self.eof = true;
                    return Err(read_failed());
                }
                self.pos = 0;
                if self.eof || self.block.len == 0 {
                    self.eof = true;
                    return if joined.is_empty() {
                        Ok(None)
                    } else {
                        Err(CaptureErrorKind::Truncated)
                    };
                }
            }
            let rest = &self.block.filled()[self.pos..];
            let take = (need - joined.len()).min(rest.len());
            joined.extend_from_slice(&rest[..take]);
            self.pos += take;
        }
    }
}

/// A block of input bytes: `data[..len]` is filled; `data` keeps its size, so refilling
/// never zeroes memory again.
#[derive(Default)]
struct Block {
    data: Vec<u8>,
    len: usize,
    /// Where classic pcap records start in `data`, as the reader thread found them
    /// ([`RecordIndex`]): a hint for touching the next records' headers all at once, never
    /// used to frame.
    starts: Vec<u32>,
}

impl Block {
    fn filled(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Empty, with room for `READ_BLOCK` bytes.
    fn reset(&mut self) {
        if self.data.len() < READ_BLOCK {
            self.data = vec![0; READ_BLOCK];
        }
        self.len = 0;
        self.starts.clear();
    }

    /// One `read` into the block (retried if interrupted); `len` 0 means end of input.
    fn read_from(&mut self, input: &mut dyn Read) -> io::Result<()> {
        self.reset();
        loop {
            match input.read(&mut self.data) {
                Ok(n) => {
                    self.len = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The reader thread's read: fills the block in reads of `READ_CHUNK`, indexing each
    /// ([`RecordIndex`]), until it is full or a read comes back short (the end of a file, or a
    /// pipe with nothing more yet: what came is handed on without waiting). A read error after
    /// some bytes hands those on; the next call meets the error again.
    fn read_indexed(&mut self, input: &mut dyn Read, index: &mut RecordIndex) -> io::Result<()> {
        self.reset();
        loop {
            let want = (self.data.len() - self.len).min(READ_CHUNK);
            let read = &mut self.data[self.len..self.len + want];
            match input.read(read) {
                Ok(n) => {
                    index.scan(&read[..n], self.len, &mut self.starts);
                    self.len += n;
                    if n < want || self.len == self.data.len() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.len > 0 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Finds where the classic pcap records start in each read, on the reader thread, while the
/// bytes it has just read are still in its core's cache. The parser frames records by reading
/// each header to learn where the next one starts: a chain of loads, each a cache miss on the
/// parser's core when thousands of small records go by. Knowing the starts, it touches the
/// next batch's headers together first ([`LegacyFramer::next_batch`]), so the misses overlap.
/// Only a hint: a wrong start costs a useless load, never a wrong packet.
#[derive(Default)]
struct RecordIndex {
    /// `None` before the first read; `Some(None)` when the input is not classic pcap (or its
    /// first read is shorter than the file header), or once a record claims an impossible
    /// length (the parser reports that; the index stops).
    format: Option<Option<LegacyHeader>>,
    /// Input offset of the next read, and of the next record.
    at: u64,
    next: u64,
    /// The next record's header, collected across reads.
    head: [u8; PCAP_RECORD_HEADER_LEN],
    have: usize,
}

impl RecordIndex {
    /// `data`: bytes just read, at `base` in their block; their record starts go to `starts`.
    fn scan(&mut self, data: &[u8], base: usize, starts: &mut Vec<u32>) {
        let at = self.at;
        self.at += data.len() as u64;
        let format = *self.format.get_or_insert_with(|| {
            self.next = PCAP_HEADER_LEN as u64;
            data.first_chunk().and_then(LegacyHeader::parse)
        });
        let Some(header) = format else { return };
        while self.next < self.at {
            let start = self.next.checked_sub(at).map(|s| s as usize);
            if let (Some(s), 0) = (start, self.have) {
                // A block holds at most `MAX_BLOCK` bytes.
                starts.push((base + s) as u32);
            }
            let len = match start.and_then(|s| header.record_len(&data[s..])) {
                Some(len) => len,
                // The header straddles reads: collect it.
                None => {
                    let from = start.unwrap_or(0);
                    let take = (PCAP_RECORD_HEADER_LEN - self.have).min(data.len() - from);
                    self.head[self.have..self.have + take]
                        .copy_from_slice(&data[from..from + take]);
                    self.have += take;
                    if self.have < PCAP_RECORD_HEADER_LEN {
                        return;
                    }
                    self.have = 0;
                    // A whole header now: always `Some`.
                    let Some(len) = header.record_len(&self.head) else { return };
                    len
                }
            };
            let Ok(len) = len else {
                self.format = Some(None);
                return;
            };
            self.next += len as u64;
        }
    }
}

/// Where the capture's bytes come from.
enum Source<'r> {
    /// Read on the parsing thread.
    Direct(Box<dyn Read + Send + 'r>),
    /// Read ahead on another thread.
    Prefetch(Prefetch),
}

impl Source<'_> {
    /// Done with a block that is not the one `next_block` replaced.
    fn recycle(&self, block: Block) {
        if let Source::Prefetch(p) = self {
            p.recycle(block);
        }
    }

    /// Replaces `block` with the next bytes of the input (empty at the end).
    fn next_block(&mut self, block: &mut Block) -> io::Result<()> {
        match self {
            Source::Direct(input) => block.read_from(input),
            Source::Prefetch(p) => p.next_block(block),
        }
    }
}

/// The parsing side of a reader thread: full blocks come in, used ones go back to be
/// refilled.
struct Prefetch {
    full: Receiver<io::Result<Block>>,
    empty: SyncSender<Block>,
    ended: bool,
}

impl Prefetch {
    fn spawn<'scope, R: Read + Send + 'scope>(
        scope: &'scope Scope<'scope, '_>,
        mut input: R,
    ) -> Self {
        let (full_tx, full) = mpsc::sync_channel::<io::Result<Block>>(PREFETCH_DEPTH);
        // Room for every block there is, so giving one back never blocks.
        let (empty, empty_rx) = mpsc::sync_channel::<Block>(BLOCKS + 4);
        scope.spawn(move || {
            let mut made = 0;
            let mut index = RecordIndex::default();
            loop {
                // Blocks come back as soon as they are parsed; a new one is made only while
                // fewer than `BLOCKS` exist (allocating 1 MiB costs page faults and zeroing).
                let next = match empty_rx.try_recv() {
                    Err(TryRecvError::Empty) if made < BLOCKS => {
                        made += 1;
                        Ok(Block::default())
                    }
                    Err(TryRecvError::Empty) => empty_rx.recv().map_err(|_| ()),
                    other => other.map_err(|_| ()),
                };
                let Ok(mut block) = next else { return }; // the parser is gone
                let res = block.read_indexed(&mut input, &mut index);
                let end = res.is_err() || block.len == 0;
                // The send fails once the parser is gone: stop reading then.
                if full_tx.send(res.map(|()| block)).is_err() || end {
                    return;
                }
            }
        });
        Prefetch { full, empty, ended: false }
    }

    /// Gives a block back to be refilled (it must not be lost: the thread makes only so many).
    fn recycle(&self, block: Block) {
        // Fails only once the thread has ended; the block is then just freed.
        let _ = self.empty.try_send(block);
    }

    fn next_block(&mut self, block: &mut Block) -> io::Result<()> {
        if self.ended {
            block.len = 0;
            return Ok(());
        }
        match self.full.recv() {
            Ok(Ok(next)) => {
                let used = std::mem::replace(block, next);
                self.ended = block.len == 0;
                self.recycle(used);
                Ok(())
            }
            Ok(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            Err(_) => {
                self.ended = true;
                Err(io::Error::other("reader thread ended"))
            }
        }
    }
}

/// `Read` over a [`Source`], for `pcap-parser` (pcapng): starts with the block already read.
struct BlockRead<'r> {
    source: Source<'r>,
    block: Block,
    pos: usize,
}

impl Read for BlockRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.block.len {
            self.source.next_block(&mut self.block)?;
            self.pos = 0;
        }
        let rest = &self.block.filled()[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
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
                self.oversized += u64::from(b.caplen > b.origlen);
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

    fn ng_block(&mut self, block: NgBlock<'_>, sink: &mut dyn FnMut(PacketRef<'_>)) -> bool {
        let ReaderState {
            interfaces,
            ts_params,
            secrets_blocks,
            keylog,
            warnings,
            oversized,
            at,
            unknown_iface,
            ng_big_endian,
            ..
        } = self;
        match block {
            NgBlock::SectionHeader(shb) => {
                *ng_big_endian = Some(shb.big_endian());
                // Interface ids are per section.
                interfaces.clear();
                ts_params.clear();
                false
            }
            NgBlock::InterfaceDescription(idb) => {
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
            NgBlock::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize) else {
                    if unknown_iface.0 == 0 {
                        unknown_iface.1 = format!("at byte {at} names interface {}", epb.if_id);
                    }
                    unknown_iface.0 += 1;
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
                *oversized += u64::from(epb.caplen > epb.origlen);
                sink(PacketRef {
                    ts: Timestamp::from_secs_nanos(secs, nanos),
                    link: iface.link,
                    data: &epb.data[..caplen],
                    orig_len: epb.origlen.max(caplen as u32),
                    iface: epb.if_id,
                });
                true
            }
            NgBlock::SimplePacket(spb) => {
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
            NgBlock::DecryptionSecrets(dsb) => {
                if dsb.secrets_type.0 == SECRETS_TLS_KEYLOG {
                    let len = (dsb.secrets_len as usize).min(dsb.data.len());
                    if let Some(k) = keylog {
                        k.add(&dsb.data[..len]);
                    }
                    *secrets_blocks += 1;
                }
                false
            }
            _ => false,
        }
    }
}

impl ReaderState {
    /// `n` more records with caplen > len, the first of them at byte `at`.
    fn note_oversized(&mut self, n: u64, at: u64) {
        if n > 0 && self.oversized == 0 {
            self.oversized_at = at;
        }
        self.oversized += n;
    }

    /// Warnings about the whole file, once reading has stopped.
    fn end_warnings(&mut self) {
        if self.unknown_iface.0 > 0 {
            self.warnings.push(format!(
                "{} packets name an unknown interface and were skipped (the first {})",
                self.unknown_iface.0, self.unknown_iface.1
            ));
        }
        if self.oversized > 0 {
            self.warnings.push(format!(
                "{} records claim more captured bytes than were on the wire (caplen > len), the first at byte {}; the captured length was used",
                self.oversized, self.oversized_at
            ));
        }
        if let Some(i) = self.interfaces.iter().find(|i| i.snaplen > MAX_BLOCK as u32) {
            self.warnings.push(format!(
                "the file header's snaplen {} is implausible (over {} MiB); it was ignored",
                i.snaplen,
                MAX_BLOCK / (1024 * 1024)
            ));
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
        match CaptureReader::new(bytes) {
            Ok(r) => read_with(r),
            Err(e) => (Vec::new(), Err(e)),
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

    /// Hands out at most `n` bytes per `read`, so records straddle the reader's blocks.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_with(mut r: CaptureReader<'_>) -> (Packets, Result<(), CaptureError>) {
        let mut out = Vec::new();
        loop {
            match r.next_packet(&mut |p| out.push((p.ts, p.data.to_vec(), p.orig_len))) {
                Ok(true) => {}
                Ok(false) => return (out, Ok(())),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn records_straddling_reads_and_prefetching_give_the_same_packets() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        for i in 0..50u32 {
            f.extend(record(i, i * 7, &vec![i as u8; (i as usize * 37) % 300], 400));
        }
        let (want, res) = read_all(&f);
        assert!(res.is_ok());
        assert_eq!(want.len(), 50);
        for n in [1, 5, 16, 17, 100, 4096] {
            let (got, res) = read_with(CaptureReader::new(Trickle(&f, n)).expect("header"));
            assert!(res.is_ok(), "reads of {n}");
            assert_eq!(got, want, "reads of {n}");
            let (got, res) = std::thread::scope(|s| {
                read_with(CaptureReader::prefetched(s, Trickle(&f, n)).expect("header"))
            });
            assert!(res.is_ok(), "prefetched reads of {n}");
            assert_eq!(got, want, "prefetched reads of {n}");
        }
        // A cut inside the last record, seen through small reads, is still named at its start.
        let cut = &f[..f.len() - 3];
        let (got, res) = read_with(CaptureReader::new(Trickle(cut, 5)).expect("header"));
        assert_eq!(got.len(), 49);
        let err = res.unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::Truncated);
        assert_eq!(err.offset, f.len() as u64 - (16 + (49 * 37) % 300) as u64);
    }

    /// Every packet with the input offset after it (one by one), or after its batch (batched);
    /// the warnings; the error, if any.
    type Trace = (Vec<(Timestamp, Vec<u8>, u32)>, Vec<u64>, Vec<String>, Option<CaptureError>);

    fn trace(mut r: CaptureReader<'_>, batched: bool) -> Trace {
        let (mut pkts, mut offsets) = (Vec::new(), Vec::new());
        let error = loop {
            let mut got = Vec::new();
            let res = if batched {
                r.next_packets(&mut |ps| {
                    assert!(!ps.is_empty() && ps.len() <= BATCH, "a batch of {}", ps.len());
                    got.extend(ps.iter().map(|p| (p.ts, p.data.to_vec(), p.orig_len)));
                })
            } else {
                r.next_packet(&mut |p| got.push((p.ts, p.data.to_vec(), p.orig_len)))
                    .map(usize::from)
            };
            match res {
                Ok(0) => break None,
                Ok(n) => {
                    assert_eq!(n, got.len());
                    pkts.extend(got);
                    offsets.push(r.offset());
                }
                Err(e) => break Some(e),
            }
        };
        (pkts, offsets, r.warnings().to_vec(), error)
    }

    #[test]
    fn batched_reading_hands_over_the_same_packets_warnings_and_errors() {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        for i in 0..150u32 {
            // Every 40th record claims fewer bytes on the wire than it holds.
            let len = (i as usize * 37) % 300;
            let orig = if i % 40 == 7 { len as u32 / 2 } else { 400 };
            f.extend(record(i, i * 7, &vec![i as u8; len], orig));
        }
        let mut corrupt = f.clone();
        corrupt.extend(record(999, 0, b"xyz", 3));
        let n = corrupt.len();
        corrupt[n - 11..n - 7].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let inputs =
            [("whole", f.clone()), ("cut", f[..f.len() - 3].to_vec()), ("corrupt", corrupt)];
        for (name, bytes) in &inputs {
            for chunk in [7, 100, 1000, 1 << 20] {
                let one = trace(CaptureReader::new(Trickle(bytes, chunk)).expect("header"), false);
                let many = trace(CaptureReader::new(Trickle(bytes, chunk)).expect("header"), true);
                assert_eq!(many.0, one.0, "{name}, reads of {chunk}");
                assert_eq!(many.1.last(), one.1.last(), "{name}, reads of {chunk}");
                // Batch boundaries are a subset of the record boundaries.
                assert!(many.1.iter().all(|o| one.1.contains(o)), "{name}, reads of {chunk}");
                assert_eq!(many.2, one.2, "{name}, reads of {chunk}");
                assert_eq!(
                    many.3.as_ref().map(|e| (e.offset, e.kind.clone())),
                    one.3.as_ref().map(|e| (e.offset, e.kind.clone())),
                    "{name}, reads of {chunk}"
                );
            }
            if *name == "whole" {
                // Large reads do batch; the oversized records are warned about, from the first.
                let many =
                    trace(CaptureReader::new(Trickle(bytes, 1 << 20)).expect("header"), true);
                assert!(many.1.len() < 150 / 4, "{} calls for 150 packets", many.1.len());
                assert!(many.2.iter().any(|w| w.starts_with("4 records claim")), "{:?}", many.2);
            }
        }
    }

    /// A classic pcap of `n` records of assorted sizes (some far larger than a read), and the
    /// offset of each record.
    fn assorted_records(n: u32) -> (Vec<u8>, Vec<u64>) {
        let mut f = pcap_header(0xa1b2_c3d4, 1);
        let mut starts = Vec::new();
        for i in 0..n {
            let len = if i % 97 == 3 { 70_000 } else { (i as usize * 37) % 1500 };
            starts.push(f.len() as u64);
            f.extend(record(i, 0, &vec![i as u8; len], len as u32));
        }
        (f, starts)
    }

    /// Fills blocks from `input` as the reader thread does; the record starts found, as input
    /// offsets, and the bytes read.
    fn indexed(mut input: impl Read) -> (Vec<u64>, usize) {
        let (mut index, mut block) = (RecordIndex::default(), Block::default());
        let (mut found, mut at) = (Vec::new(), 0);
        loop {
            block.read_indexed(&mut input, &mut index).expect("read");
            if block.len == 0 {
                return (found, at);
            }
            found.extend(block.starts.iter().map(|&s| (at + s as usize) as u64));
            at += block.len;
        }
    }

    #[test]
    fn the_reader_threads_index_finds_every_record_start() {
        let (f, starts) = assorted_records(3000);
        assert!(f.len() > 3 * READ_BLOCK, "blocks of several reads, records across blocks");
        for chunk in [24, 25, 31, 100, 1000, 4096, READ_CHUNK, READ_CHUNK + 1, 1 << 22] {
            let (found, read) = indexed(Trickle(&f, chunk));
            assert_eq!(read, f.len(), "reads of {chunk}");
            assert_eq!(found, starts, "reads of {chunk}");
        }
    }

    #[test]
    fn the_index_stops_where_it_cannot_follow_the_records() {
        // Not classic pcap, or a first read too short to show the file header: no hints.
        let (f, starts) = assorted_records(50);
        assert!(indexed(Trickle(&f, 23)).0.is_empty());
        assert!(indexed(&include_bytes!("../fixtures/multi_iface.pcapng")[..]).0.is_empty());
        // A record claiming an impossible length: the starts up to it, then none.
        let mut corrupt = f.clone();
        let at = starts[20] as usize + 8;
        corrupt[at..at + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert_eq!(indexed(&corrupt[..]).0, starts[..21]);
    }

    #[test]
    fn a_read_error_after_some_bytes_hands_those_bytes_on_first() {
        /// Fills every read while it has bytes, then fails.
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let bytes = vec![7u8; READ_CHUNK];
        let (mut index, mut block) = (RecordIndex::default(), Block::default());
        let mut input = Failing(&bytes);
        // The first read is full, so the block asks for more and meets the error.
        block.read_indexed(&mut input, &mut index).expect("the bytes first");
        assert_eq!(block.len, READ_CHUNK);
        let err = block.read_indexed(&mut input, &mut index).expect_err("then the error");
        assert_eq!(err.to_string(), "disk on fire");
    }

    #[test]
    fn reads_big_endian_pcap() {
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
        f.extend_from_slice(&2u16.to_be_bytes());
        f.extend_from_slice(&4u16.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_be_bytes());
        f.extend_from_slice(&101u32.to_be_bytes());
        for v in [7u32, 9, 3, 60] {
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(b"abc");
        let mut r = CaptureReader::new(&f[..]).expect("header");
        let mut got = Vec::new();
        assert!(r
            .next_packet(&mut |p| got.push((p.ts, p.link, p.data.to_vec(), p.orig_len)))
            .unwrap());
        assert_eq!(got, vec![(Timestamp(7_000_009_000), LinkType::RAW, b"abc".to_vec(), 60)]);
        assert_eq!(r.format(), Format::Pcap { nanosecond: false });
        assert_eq!(r.interfaces()[0].snaplen, 65535);
        assert!(!r.next_packet(&mut |_| {}).unwrap());
    }

    /// Found by fuzzing (capture_read): a Process Information Block of length 4 made
    /// pcap-parser subtract 12 from 4.
    #[test]
    fn a_pcapng_block_shorter_than_its_header_is_corrupt() {
        let mut f = Vec::new();
        for w in [0x0a0d_0d0au32, 28, 0x1a2b_3c4d] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(&[1, 0, 0, 0]); // version 1.0
        f.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        f.extend_from_slice(&28u32.to_le_bytes());
        let shb = f.len();
        for w in [0x8000_0001u32, 4, 0, 0] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        let (pkts, res) = read_all(&f);
        assert!(pkts.is_empty());
        let err = res.unwrap_err();
        assert!(matches!(err.kind, CaptureErrorKind::Corrupt(_)), "{err}");
        assert_eq!(err.offset, shb as u64);
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
