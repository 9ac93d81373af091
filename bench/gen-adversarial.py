#!/usr/bin/env python3
"""Write hostile captures for mtlscope's memory and time bounds (README, Hostile input).

    gen-adversarial.py syn      N  > syn.pcap    N SYN-only flows, 1 us apart (fills the flow table)
    gen-adversarial.py holes    N  > holes.pcap  one flow with N holes (lost segments), never ACKed
    gen-adversarial.py stream   GB | mtlscope analyze -   one HTTP/1 flow carrying GB gigabytes
    gen-adversarial.py resumed  N  > res.pcap    N TLS 1.2 flows: every other one a full handshake
                                                 giving out a new session id, the others
                                                 abbreviated handshakes resuming ids never seen

Classic pcap (Ethernet, IPv4) on stdout, written as it is generated: `stream` is meant to be
piped (10 GB never touches the disk). TCP checksums are 0 (mtlscope does not check them).
Python 3 standard library only.
"""

import os
import struct
import sys

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xFFFFFFFF
ETH = bytes.fromhex("020000000002" "020000000001" "0800")
PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
REC = struct.Struct("<IIII").pack
IPTCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH").pack
SERVER = bytes([10, 200, 0, 1])


def ip_checksum(hdr):
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Writer:
    """Packets to a buffered stdout, with a packet clock in microseconds."""

    def __init__(self, start_us=1_700_000_000 * 1_000_000):
        self.out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
        self.out.write(PCAP_HDR)
        self.us = start_us
        self.ip_id = 0

    def tcp(self, src, sport, dst, dport, seq, ack, flags, payload=b""):
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        total = 40 + len(payload)
        hdr = bytearray(IPTCP(0x45, 0, total, self.ip_id, 0x4000, 64, 6, 0, src, dst,
                              sport, dport, seq & M32, ack & M32, 0x50, flags, 65535, 0, 0))
        struct.pack_into("!H", hdr, 10, ip_checksum(bytes(hdr[:20])))
        n = 14 + total
        self.out.write(REC(self.us // 1_000_000, self.us % 1_000_000, n, n))
        self.out.write(ETH)
        self.out.write(hdr)
        if payload:
            self.out.write(payload)

    def tick(self, us=1):
        self.us += us

    def close(self):
        self.out.flush()


def client_ip(i):
    return bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])


def handshake(w, cip, cport, sport, cisn, sisn):
    w.tcp(cip, cport, SERVER, sport, cisn, 0, SYN)
    w.tick()
    w.tcp(SERVER, sport, cip, cport, sisn, cisn + 1, SYN | ACK)
    w.tick()
    w.tcp(cip, cport, SERVER, sport, cisn + 1, sisn + 1, ACK)
    w.tick()


def close(w, cip, cport, sport, cseq, sseq):
    w.tcp(cip, cport, SERVER, sport, cseq, sseq, FIN | ACK)
    w.tick()
    w.tcp(SERVER, sport, cip, cport, sseq, cseq + 1, FIN | ACK)
    w.tick()
    w.tcp(cip, cport, SERVER, sport, cseq + 1, sseq + 1, ACK)
    w.tick()


def gen_syn(n):
    """n flows of one SYN each: distinct clients, one server, 1 us apart (no flow expires)."""
    w = Writer()
    for i in range(n):
        w.tcp(client_ip(i >> 4), 10000 + (i & 15), SERVER, 443, i * 7919, 0, SYN)
        w.tick()
    w.close()


def gen_holes(n):
    """One flow whose client sends n 100-byte segments with a 100-byte hole before each (the
    server never ACKs them, so nothing tells the reassembler the holes are lost: they stay
    holes until its caps or the end of the flow). The bytes are a TLS record header claiming
    a 16 KiB ClientHello, then zeros."""
    w = Writer()
    cip, cport, cisn, sisn = client_ip(1), 40000, 1000, 5000
    handshake(w, cip, cport, 443, cisn, sisn)
    seg = (b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc" + bytes(91))
    for k in range(n):
        w.tcp(cip, cport, SERVER, 443, cisn + 1 + (2 * k + 1) * 100, sisn + 1, PSH | ACK, seg)
        w.tick(10)
    close(w, cip, cport, 443, cisn + 1 + 2 * n * 100, sisn + 1)
    w.close()


def gen_stream(gb):
    """One HTTP/1.1 download of `gb` GB (10^9 bytes) in 32 KiB segments (what a capture with
    GRO sees), the client ACKing every eighth."""
    w = Writer()
    cip, cport, cisn, sisn = client_ip(2), 40001, 1000, 5000
    handshake(w, cip, cport, 8080, cisn, sisn)
    req = b"GET /big HTTP/1.1\r\nHost: bulk:8080\r\n\r\n"
    w.tcp(cip, cport, SERVER, 8080, cisn + 1, sisn + 1, PSH | ACK, req)
    w.tick()
    cseq = cisn + 1 + len(req)
    total = int(gb * 1_000_000_000)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % total
    sseq = sisn + 1
    w.tcp(SERVER, 8080, cip, cport, sseq, cseq, PSH | ACK, head)
    sseq += len(head)
    body = bytes(range(256)) * 128  # 32 KiB
    sent, k = 0, 0
    while sent < total:
        chunk = body if total - sent >= len(body) else body[: total - sent]
        w.tcp(SERVER, 8080, cip, cport, sseq, cseq, ACK, chunk)
        sseq += len(chunk)
        sent += len(chunk)
        k += 1
        w.tick(3)
        if k % 8 == 0:
            w.tcp(cip, cport, SERVER, 8080, cseq, sseq, ACK)
    close(w, cip, cport, 8080, cseq, sseq)
    w.close()


def hs(t, body):
    return bytes([t]) + len(body).to_bytes(3, "big") + body


def rec(ct, body):
    return bytes([ct, 3, 3]) + len(body).to_bytes(2, "big") + body


RENEG = b"\xff\x01\x00\x01\x00"


def client_hello(rand, sid):
    body = (b"\x03\x03" + rand + bytes([len(sid)]) + sid + b"\x00\x02\xc0\x2f" + b"\x01\x00"
            + len(RENEG).to_bytes(2, "big") + RENEG)
    return rec(22, hs(1, body))


def server_hello(rand, sid):
    body = (b"\x03\x03" + rand + bytes([len(sid)]) + sid + b"\xc0\x2f" + b"\x00"
            + len(RENEG).to_bytes(2, "big") + RENEG)
    return hs(2, body)


def gen_resumed(n):
    """n TLS 1.2 flows on distinct client ports, 100 us apart, each closed: even ones are full
    handshakes (ServerHello with a fresh session id, an empty Certificate, ServerHelloDone),
    odd ones abbreviated handshakes (the server echoes the client's session id and sends
    ChangeCipherSpec) resuming an id no handshake gave out."""
    w = Writer()
    ccs = rec(20, b"\x01")
    fin = rec(22, bytes(40))  # encrypted Finished: opaque to the wire
    for i in range(n):
        cip, cport = client_ip(i >> 12), 20000 + (i & 0xFFF)
        cisn, sisn = (i * 7919) & M32, (i * 104729) & M32
        handshake(w, cip, cport, 443, cisn, sisn)
        sid = i.to_bytes(8, "big") * 4
        rand = (i + 1).to_bytes(8, "big") * 4
        if i % 2 == 0:
            ch = client_hello(rand, b"")
            flight = rec(22, server_hello(rand, sid) + hs(11, b"\x00\x00\x00") + hs(14, b""))
            cflight = ccs + fin
            sflight2 = ccs + fin
        else:
            ch = client_hello(rand, sid)
            flight = rec(22, server_hello(rand, sid)) + ccs + fin
            cflight = ccs + fin
            sflight2 = b""
        c, s = cisn + 1, sisn + 1
        w.tcp(cip, cport, SERVER, 443, c, s, PSH | ACK, ch)
        c += len(ch)
        w.tick()
        w.tcp(SERVER, 443, cip, cport, s, c, PSH | ACK, flight)
        s += len(flight)
        w.tick()
        w.tcp(cip, cport, SERVER, 443, c, s, PSH | ACK, cflight)
        c += len(cflight)
        w.tick()
        if sflight2:
            w.tcp(SERVER, 443, cip, cport, s, c, PSH | ACK, sflight2)
            s += len(sflight2)
            w.tick()
        close(w, cip, cport, 443, c, s)
        w.tick(90)
    w.close()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("syn", "holes", "stream", "resumed"):
        sys.exit(__doc__)
    kind, size = sys.argv[1], sys.argv[2]
    try:
        if kind == "stream":
            gen_stream(float(size))
        else:
            {"syn": gen_syn, "holes": gen_holes, "resumed": gen_resumed}[kind](int(size))
    except BrokenPipeError:
        # The reader stopped early; that is its business.
        sys.stderr.close()


if __name__ == "__main__":
    main()
