//! A pod's capture bytes on their way from the exec session (async) to the live pipeline
//! (a source thread reading any `Read`), and what `-w FILE` keeps of them.
//!
//! With one pod, `-w` writes the bytes exactly as the pod's tcpdump wrote them (a pcap file).
//! With several, it writes one pcapng file with one interface per pod, named `namespace/pod`,
//! so a later `mtlscope analyze` tells the pods apart as the live run did.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Chunks of stream that may wait for the source thread (each up to 64 KiB).
pub const STREAM_CHUNKS: usize = 64;

/// A synchronous `Read` over the chunks an exec session sends; end of input when the session
/// drops its sender. Must be read from a thread outside the async runtime.
pub struct StreamReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    tee: Option<Tee>,
    /// The first error `-w` met (the capture goes on without it).
    tee_error: Arc<Mutex<Option<String>>>,
}

impl StreamReader {
    pub fn new(
        rx: mpsc::Receiver<Vec<u8>>,
        tee: Option<Tee>,
    ) -> (Self, Arc<Mutex<Option<String>>>) {
        let tee_error = Arc::new(Mutex::new(None));
        let r = StreamReader { rx, chunk: Vec::new(), pos: 0, tee, tee_error: tee_error.clone() };
        (r, tee_error)
    }

    fn save(&mut self) {
        let Some(tee) = &mut self.tee else { return };
        if let Err(e) = tee.write(&self.chunk) {
            *self.tee_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            self.tee = None;
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                    self.save();
                }
                None => {
                    if let Some(tee) = &mut self.tee {
                        if let Err(e) = tee.flush() {
                            *self.tee_error.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(e.to_string());
                        }
                    }
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Where a pod's stream is saved.
pub enum Tee {
    /// The stream's own bytes (one pod).
    Raw(BufWriter<File>),
    /// Re-framed into the run's shared pcapng file as interface `name`.
    Pcapng { name: String, splitter: PcapSplitter, file: Arc<Mutex<PcapngWriter<File>>> },
}

impl Tee {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Tee::Raw(w) => w.write_all(bytes),
            Tee::Pcapng { name, splitter, file } => splitter.push(bytes, &mut |rec| {
                let mut w = file.lock().unwrap_or_else(|p| p.into_inner());
                match rec {
                    Record::Header(h) if w.iface_of(name).is_none() => {
                        w.interface(name, h.link, h.snaplen, h.nanosecond)
                    }
                    Record::Header(_) => Ok(()),
                    Record::Packet { ts, frac_per_sec, incl, orig, data } => {
                        let iface = w.iface_of(name).unwrap_or(0);
                        w.packet(iface, ts, frac_per_sec, incl, orig, data)
                    }
                }
            }),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Tee::Raw(w) => w.flush(),
            Tee::Pcapng { file, .. } => file.lock().unwrap_or_else(|p| p.into_inner()).flush(),
        }
    }
}

/// A classic pcap stream's header, as far as a pcapng interface needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub link: u16,
    pub snaplen: u32,
    pub nanosecond: bool,
    big_endian: bool,
}

/// What [`PcapSplitter`] finds in a stream.
pub enum Record<'a> {
    Header(Header),
    Packet {
        /// Seconds and the fraction, in the stream's units.
        ts: (u32, u32),
        frac_per_sec: u32,
        incl: u32,
        orig: u32,
        data: &'a [u8],
    },
}

/// Finds the records of a classic pcap stream in chunks cut anywhere.
#[derive(Default)]
pub struct PcapSplitter {
    buf: Vec<u8>,
    header: Option<Header>,
}

const RECORD_MAX: u32 = 16 * 1024 * 1024;

impl PcapSplitter {
    pub fn push(
        &mut self,
        bytes: &[u8],
        sink: &mut dyn FnMut(Record<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            let Some(h) = self.header else {
                let Some(first) = rest.first_chunk::<24>() else { break };
                let h = parse_header(first).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the pod's stream is not a classic pcap stream: not saved",
                    )
                })?;
                self.header = Some(h);
                sink(Record::Header(h))?;
                at += 24;
                continue;
            };
            let Some(rh) = rest.first_chunk::<16>() else { break };
            let field = |i: usize| {
                let b = [rh[i], rh[i + 1], rh[i + 2], rh[i + 3]];
                if h.big_endian {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            };
            let (sec, frac, incl, orig) = (field(0), field(4), field(8), field(12));
            if incl > RECORD_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a pcap record of {incl} bytes in the pod's stream: not saved"),
                ));
            }
            let end = 16 + incl as usize;
            if rest.len() < end {
                break;
            }
            let frac_per_sec = if h.nanosecond { 1_000_000_000 } else { 1_000_000 };
            sink(Record::Packet {
                ts: (sec, frac),
                frac_per_sec,
                incl,
                orig,
                data: &rest[16..end],
            })?;
            at += end;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

fn parse_header(h: &[u8; 24]) -> Option<Header> {
    let g = crate::capture::LegacyHeader::parse(h)?;
    let link = u16::try_from(g.network & 0x0fff_ffff).ok()?;
    Some(Header { link, snaplen: g.snaplen, nanosecond: g.nanosecond, big_endian: g.big_endian })
}

/// A little-endian pcapng writer: one section, interfaces added as streams start.
pub struct PcapngWriter<W: Write> {
    out: BufWriter<W>,
    ifaces: Vec<String>,
}

impl<W: Write> PcapngWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        let mut out = BufWriter::new(out);
        // Section Header Block: byte-order magic, version 1.0, section length unknown.
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        out.write_all(&b)?;
        Ok(PcapngWriter { out, ifaces: Vec::new() })
    }

    pub fn iface_of(&self, name: &str) -> Option<u32> {
        self.ifaces.iter().position(|n| n == name).and_then(|i| u32::try_from(i).ok())
    }

    /// An Interface Description Block named `name` (`if_name`), with the stream's time unit.
    pub fn interface(&mut self, name: &str, link: u16, snaplen: u32, nano: bool) -> io::Result<()> {
        let mut opts = Vec::new();
        push_option(&mut opts, 2, name.as_bytes());
        push_option(&mut opts, 9, &[if nano { 9 } else { 6 }]);
        opts.extend_from_slice(&[0, 0, 0, 0]);
        let len = 20 + opts.len() as u32;
        let mut b = Vec::with_capacity(len as usize);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&link.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        b.extend_from_slice(&opts);
        b.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&b)?;
        self.ifaces.push(name.to_string());
        Ok(())
    }

    /// An Enhanced Packet Block; the timestamp in the interface's unit.
    pub fn packet(
        &mut self,
        iface: u32,
        (sec, frac): (u32, u32),
        frac_per_sec: u32,
        incl: u32,
        orig: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let ts = u64::from(sec) * u64::from(frac_per_sec) + u64::from(frac);
        let padded = data.len().div_ceil(4) * 4;
        let len = u32::try_from(32 + padded).map_err(io::Error::other)?;
        let mut b = Vec::with_capacity(len as usize);
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&iface.to_le_bytes());
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&incl.to_le_bytes());
        b.extend_from_slice(&orig.to_le_bytes());
        b.extend_from_slice(data);
        b.resize(28 + padded, 0);
        b.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&b)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn push_option(opts: &mut Vec<u8>, code: u16, value: &[u8]) {
    opts.extend_from_slice(&code.to_le_bytes());
    opts.extend_from_slice(&(value.len() as u16).to_le_bytes());
    opts.extend_from_slice(value);
    opts.resize(opts.len().div_ceil(4) * 4, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;
    use std::path::Path;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
    }

    /// (interface name, link, ts, data) of every packet, as the capture reader sees them.
    fn packets(bytes: &[u8]) -> Vec<(Option<String>, u16, i64, Vec<u8>)> {
        let mut r = CaptureReader::new(bytes).unwrap();
        let mut all = Vec::new();
        loop {
            let mut one = None;
            let more =
                r.next_packet(&mut |p| one = Some((p.iface, p.link.0, p.ts.0, p.data.to_vec())));
            if !more.unwrap() {
                break;
            }
            let Some((i, link, ts, data)) = one else { continue };
            let name = r.interfaces()[i as usize].name.clone();
            all.push((name, link, ts, data));
        }
        all
    }

    #[test]
    fn two_pcap_streams_cut_anywhere_become_one_pcapng_with_an_interface_each() {
        let (a, b) = (fixture("mixed_any_sll2.pcap"), fixture("http1_nanosecond.pcap"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merged.pcapng");
        let file = Arc::new(Mutex::new(PcapngWriter::new(File::create(&path).unwrap()).unwrap()));
        let tee = |name: &str| Tee::Pcapng {
            name: name.into(),
            splitter: PcapSplitter::default(),
            file: file.clone(),
        };
        let (mut ta, mut tb) = (tee("shop/web-0"), tee("shop/db-0"));
        // Interleaved, in odd-sized pieces that split headers and records.
        let (mut ia, mut ib) = (a.chunks(7), b.chunks(13));
        loop {
            let (x, y) = (ia.next(), ib.next());
            if x.is_none() && y.is_none() {
                break;
            }
            if let Some(c) = x {
                ta.write(c).unwrap();
            }
            if let Some(c) = y {
                tb.write(c).unwrap();
            }
        }
        ta.flush().unwrap();
        let merged = packets(&std::fs::read(&path).unwrap());
        let strip = |v: Vec<(Option<String>, u16, i64, Vec<u8>)>| {
            v.into_iter().map(|(_, l, t, d)| (l, t, d)).collect::<Vec<_>>()
        };
        let of = |name: &str| {
            merged.iter().filter(|p| p.0.as_deref() == Some(name)).cloned().collect::<Vec<_>>()
        };
        assert_eq!(strip(of("shop/web-0")), strip(packets(&a)));
        assert_eq!(strip(of("shop/db-0")), strip(packets(&b)));
        assert_eq!(merged.len(), packets(&a).len() + packets(&b).len());
    }

    #[test]
    fn a_stream_that_is_not_pcap_is_refused() {
        let mut s = PcapSplitter::default();
        let e = s.push(&[0u8; 40], &mut |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("not a classic pcap"), "{e}");
    }
}
