#!/usr/bin/env python3
"""Derive the fuzz targets' seed corpora from the repository's fixtures.

Writes fuzz/corpus/<target>/<name> (generated, gitignored), in the input layouts that
src/fuzzing.rs documents:

  decode_packet    [link type index] + one frame, for every packet of every capture
  capture_read     every capture whole (pcap and pcapng)
  pipeline         the same captures
  reassembly       one direction of each TCP flow as SYN / segment / ACK / FIN operations,
                   in capture order, reversed and with overlapping copies
  tls_stream       each flow's payloads as two-direction stream operations, and the TLS
  classify_stream  vectors of fixtures/streams replayed in their recorded chunking
  http_detect      the first payload of each direction of each flow
  tls13_flight     TLS 1.3 client record sizes after ChangeCipherSpec, per stream vector
  inventory_load   fixtures/inventory/*, tests/data/inventory/*, tests/data/check/*.yaml
  policy_parse     examples/ci/*.yaml, tests/data/check/policies/*, tests/data/check/invalid/*

Usage: fuzz/seed.py [--out fuzz/corpus]
"""

import argparse
import hashlib
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Index of each link type in mtlscope::fuzzing::LINK_TYPES.
LINK_INDEX = {1: 0, 101: 1, 12: 2, 14: 3, 228: 4, 229: 5, 0: 6, 108: 7, 113: 8, 276: 9, 239: 10}


def packets(data):
    """(link type, frame) of every packet of a classic pcap or pcapng file."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        link = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
        pos = 24
        while pos + 16 <= len(data):
            caplen = struct.unpack(e + "I", data[pos + 8 : pos + 12])[0]
            yield link, data[pos + 16 : pos + 16 + caplen]
            pos += 16 + caplen
        return
    if magic != b"\x0a\x0d\x0d\x0a":
        return
    pos, e, links = 0, "<", []
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            e = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack(e + "II", data[pos : pos + 8])
        if blen < 12:
            return
        body = data[pos + 8 : pos + blen - 4]
        if btype == 1:
            links.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6:
            iface, _, _, caplen, _ = struct.unpack(e + "IIIII", body[:20])
            if iface < len(links):
                yield links[iface], body[20 : 20 + caplen]
        pos += blen


def ip_tcp(link, frame):
    """(src, dst, sport, dport, seq, ack, flags, payload) of a plain TCP frame, or None."""
    if link == 1:
        ty, rest = struct.unpack(">H", frame[12:14])[0] if len(frame) >= 14 else 0, frame[14:]
        while ty in (0x8100, 0x88A8) and len(rest) >= 4:
            ty, rest = struct.unpack(">H", rest[2:4])[0], rest[4:]
    elif link == 113:
        ty, rest = struct.unpack(">H", frame[14:16])[0] if len(frame) >= 16 else 0, frame[16:]
    elif link == 276:
        ty, rest = struct.unpack(">H", frame[0:2])[0] if len(frame) >= 20 else 0, frame[20:]
    elif link in (0, 108):
        ty, rest = 0, frame[4:]
    else:
        ty, rest = 0, frame
    if ty not in (0, 0x0800, 0x86DD) or not rest:
        return None
    version = rest[0] >> 4
    if version == 4 and len(rest) >= 20 and rest[9] == 6:
        hl, total = (rest[0] & 15) * 4, struct.unpack(">H", rest[2:4])[0]
        src, dst, tcp = rest[12:16], rest[16:20], rest[hl : total or len(rest)]
    elif version == 6 and len(rest) >= 40 and rest[6] == 6:
        plen = struct.unpack(">H", rest[4:6])[0]
        src, dst, tcp = rest[8:24], rest[24:40], rest[40 : 40 + plen if plen else len(rest)]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
    off = (tcp[12] >> 4) * 4
    return src + struct.pack(">H", sport), dst + struct.pack(">H", dport), seq, ack, tcp[13], tcp[off:]


def flows(data):
    """TCP flows of a capture: {key: [(from_first_sender, seq, ack, flags, payload)]}."""
    out = {}
    for link, frame in packets(data):
        t = ip_tcp(link, frame)
        if t is None:
            continue
        a, b, seq, ack, flags, payload = t
        key = (min(a, b), max(a, b))
        segs = out.setdefault(key, [])
        first = segs[0][5] if segs else a
        segs.append((a == first, seq, ack, flags, payload, first))
    return {k: [s[:5] for s in v] for k, v in out.items()}


def op(ctl, body=b"", length=None):
    return struct.pack("<BH", ctl, len(body) if length is None else length) + body


def stream_ops(segs):
    """Two-direction stream operations (see fuzzing::stream_ops) for a flow's payloads."""
    out = b""
    for forward, _, _, _, payload in segs:
        for i in range(0, len(payload), 0xFFFF):
            out += op(0 if forward else 1, payload[i : i + 0xFFFF])
    return out


def reassembly_ops(segs, forward=True):
    """One direction as fuzzing::reassembly operations (offsets from the SYN's ISN)."""
    mine = [s for s in segs if s[0] == forward]
    syn = next((s for s in mine if s[3] & 0x02), None)
    if not mine:
        return None
    isn = syn[1] if syn else (mine[0][1] - 1) & 0xFFFFFFFF
    ops = []
    for fwd, seq, ack, flags, payload in segs:
        if fwd == forward:
            off = (seq - isn - 1) & 0xFFFFFFFF
            if flags & 0x02:
                ops.append(struct.pack("<BH", 0, 0))
            if payload:
                ops.append(struct.pack("<BIH", 1 | 8, off, len(payload) % 4096))
            if flags & 0x01:
                ops.append(struct.pack("<BIH", 3 | 8, off, len(payload)))
        elif flags & 0x10:
            ops.append(struct.pack("<BI", 4 | 8, (ack - isn - 1) & 0xFFFFFFFF))
    head = struct.pack("<IH", isn, 0xFFFF)
    return head, ops


class Corpus:
    def __init__(self, out):
        self.out = out
        self.counts = {}

    def add(self, target, data, limit=None):
        if not data:
            return
        d = self.out / target
        d.mkdir(parents=True, exist_ok=True)
        n = self.counts.get(target, 0)
        if limit is not None and n >= limit:
            return
        (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
        self.counts[target] = n + 1


def chunks_stream(name):
    """A fixtures/streams vector replayed in its recorded chunking, as stream operations."""
    c2s = (name.parent / (name.stem + ".c2s.bin")).read_bytes()
    s2c = (name.parent / (name.stem + ".s2c.bin")).read_bytes()
    pos = {"c2s": 0, "s2c": 0}
    out = b""
    for line in name.read_text().split("\n"):
        parts = line.split()
        if len(parts) != 2 or parts[0] not in pos or not parts[1].isdigit():
            continue
        src = c2s if parts[0] == "c2s" else s2c
        n = int(parts[1])
        chunk = src[pos[parts[0]] : pos[parts[0]] + n]
        pos[parts[0]] += n
        for i in range(0, len(chunk), 0xFFFF):
            out += op(0 if parts[0] == "c2s" else 1, chunk[i : i + 0xFFFF])
    return out, c2s


def client_flight_sizes(c2s):
    """Type-23 record lengths a TLS 1.3 client sent after its ChangeCipherSpec."""
    pos, sizes, after_ccs = 0, [], False
    while pos + 5 <= len(c2s):
        ctype, length = c2s[pos], struct.unpack(">H", c2s[pos + 3 : pos + 5])[0]
        if ctype == 20:
            after_ccs = True
        elif ctype == 23 and after_ccs:
            sizes.append(length)
        pos += 5 + length
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "fuzz" / "corpus"))
    out = pathlib.Path(ap.parse_args().out)
    corpus = Corpus(out)
    captures = sorted(p for p in (ROOT / "fixtures").glob("*.pcap*"))
    for cap in captures:
        data = cap.read_bytes()
        corpus.add("capture_read", data)
        corpus.add("pipeline", data)
        for link, frame in packets(data):
            if link in LINK_INDEX:
                corpus.add("decode_packet", bytes([LINK_INDEX[link]]) + frame)
        for segs in flows(data).values():
            for pick in (0, 1):
                corpus.add("tls_stream", bytes([pick]) + stream_ops(segs))
                corpus.add("classify_stream", bytes([pick | 6]) + stream_ops(segs))
            for fwd in (True, False):
                r = reassembly_ops(segs, fwd)
                if r is None:
                    continue
                head, ops = r
                corpus.add("reassembly", head + b"".join(ops), limit=400)
                corpus.add("reassembly", head + b"".join(reversed(ops)), limit=400)
                dup = [o for pair in zip(ops, ops) for o in pair]
                corpus.add("reassembly", head + b"".join(dup), limit=400)
            for fwd in (True, False):
                first = next((s[4] for s in segs if s[0] == fwd and s[4]), b"")
                corpus.add("http_detect", first[:8192])
    # Overlapping copies with different bytes, huge jumps and wraparound, by hand.
    corpus.add("reassembly", struct.pack("<IH", 0xFFFFFF00, 512) + b"".join([
        struct.pack("<BHH", 0, 0, 0), struct.pack("<BHH", 1, 300, 100),
        struct.pack("<BHH", 2, 250, 100), struct.pack("<BHH", 1, 0, 256),
        struct.pack("<BIH", 9, 0x7FFF0000, 10), struct.pack("<BIH", 12, 400, 0),
        struct.pack("<BHH", 6, 0, 0),
    ]))
    for chunks in sorted((ROOT / "fixtures" / "streams").glob("*.chunks")):
        ops, c2s = chunks_stream(chunks)
        corpus.add("tls_stream", b"\x00" + ops)
        corpus.add("classify_stream", b"\x06" + ops)
        corpus.add("http_detect", c2s[:8192])
        sizes = client_flight_sizes(c2s)
        if sizes:
            for suite in (0x1301, 0x1302, 0x1305):
                head = struct.pack("<HHHB", suite, 0, 0, 0)
                corpus.add("tls13_flight", head + b"".join(struct.pack("<H", s) for s in sizes))
    for pattern in ("fixtures/inventory/*.json", "fixtures/inventory/*.yaml",
                    "tests/data/inventory/*.json", "tests/data/inventory/*.yaml",
                    "tests/data/check/*.yaml"):
        for p in sorted(ROOT.glob(pattern)):
            corpus.add("inventory_load", p.read_bytes())
    for pattern in ("examples/ci/*.yaml", "tests/data/check/policies/*",
                    "tests/data/check/invalid/*"):
        for p in sorted(ROOT.glob(pattern)):
            if p.is_file():
                corpus.add("policy_parse", p.read_bytes())
    for target, n in sorted(corpus.counts.items()):
        print(f"seed: {target}: {n} inputs")


if __name__ == "__main__":
    main()
