#!/usr/bin/env python3
"""Build a large classic pcap (Ethernet) for the mtlscope benchmark.

Template flows come from the Ethernet .pcap fixtures of the repository (link type 1,
IPv4, complete TCP flows starting with a SYN). If fewer than 3 such fixture files exist,
realistic flows are synthesised instead (TCP handshake + HTTP/1.1, TLS 1.2 server-auth
and mutual handshakes with real certificates, TLS 1.3 handshakes).

Every copy of a template is a distinct flow: client and server IPv4 addresses, the
client port and both initial sequence numbers are rewritten (IPv4 header checksums are
recomputed; TCP checksums are left at 0). TLS and HTTP/1 templates get bulk data spliced
in before their close (server-to-client TLS application-data records in 1448-byte
segments, or a second HTTP/1.1 request whose response body is the bulk), with a client
ACK every second segment, so the file is dominated by full-size data packets. Flows are
interleaved round-robin over a window of concurrently open flows.

Python 3 standard library only; output is streamed in large batches.
"""

import argparse
import base64
import glob
import json
import math
import os
import random
import re
import struct
import sys
import time

M32 = 0xFFFFFFFF
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

IPTCP = struct.Struct("!HHHHBBHIIHHIIHHHH")  # IPv4 (IHL 5) + fixed TCP header
IPTCP_pack = IPTCP.pack
REC_pack = struct.Struct("<IIII").pack
PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)

TLS_REC_BODY = 16384 + 17  # full AEAD record body (TLS 1.3 style: 16 KiB + type + tag)
TLS_REC_LEN = TLS_REC_BODY + 5

# ---------------------------------------------------------------------------------------
# Template packets and flows


class TPkt:
    """One template packet; seq/ack are relative to the sender's/peer's ISN."""

    __slots__ = ("dir", "eth", "tos", "ff", "ttl", "win", "urg", "flags", "opts",
                 "payload", "seq", "ack", "vt", "ipconst", "offfl", "recs")

    def __init__(self, d, eth, tos, ff, ttl, win, urg, flags, opts, payload, seq, ack):
        self.dir = d
        self.eth = eth
        self.tos = tos
        self.ff = ff
        self.ttl = ttl
        self.win = win
        self.urg = urg
        self.flags = flags
        self.opts = opts
        self.payload = payload
        self.seq = seq
        self.ack = ack
        self.vt = (0x45 << 8) | tos
        self.ipconst = self.vt + ff + ((ttl << 8) | 6)
        self.offfl = (((20 + len(opts)) // 4) << 12) | flags
        self.recs = ()  # TLS record types starting in this packet: ((type, len), ...)


class Template:
    def __init__(self, name, pkts, sport):
        self.name = name
        self.pkts = pkts
        self.sport = sport
        self.kind = "other"
        self.bulk = False  # bulk data can be spliced in
        self.ins = len(pkts)
        self.cnext = self.snext = 1
        self.chdr = self.shdr = None
        self.mss = 1448
        self.host = b"svc.default.svc.cluster.local"
        self.tls_version = b"\x03\x03"
        self.bytes = sum(16 + 54 + len(p.opts) + len(p.payload) for p in pkts)
        self.npkts = len(pkts)


def _streams(pkts):
    """Per-direction byte streams and each payload packet's stream offset."""
    streams = [bytearray(), bytearray()]
    offs = {}
    for i, p in enumerate(pkts):
        if not p.payload:
            continue
        s = streams[p.dir]
        o = (p.seq - (0 if p.flags & SYN else 1)) & M32  # data on a SYN (TFO) follows the SYN
        offs[i] = o
        if o + len(p.payload) > len(s) and o <= len(s):
            s += p.payload[len(s) - o:]
    return streams, offs


def _tls_records(stream):
    recs = {}
    o = 0
    while o + 5 <= len(stream):
        t = stream[o]
        if t not in (20, 21, 22, 23, 24) or stream[o + 1] != 3:
            break
        ln = (stream[o + 3] << 8) | stream[o + 4]
        recs[o] = (t, ln)
        o += 5 + ln
    return recs


HTTP_REQ = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")


def analyse_template(t):
    """Classify a template flow and find where bulk data can be spliced in."""
    pkts = t.pkts
    streams, offs = _streams(pkts)
    cs, ss = streams
    if cs[:2] in (b"\x16\x03",):
        t.kind = "tls"
    elif cs.startswith(b"PRI * HTTP/2.0"):
        t.kind = "other"
    elif HTTP_REQ.match(bytes(cs[:64])):
        head = bytes(cs[: cs.find(b"\r\n\r\n") + 1]).lower()
        t.kind = "other" if b"upgrade: h2c" in head else "http"
        m = re.search(rb"\r\nhost: *([^\r\n]+)", head)
        if m:
            t.host = m.group(1)
    else:
        t.kind = "other"

    rec = [{}, {}]
    if t.kind == "tls":
        rec = [_tls_records(cs), _tls_records(ss)]
        if ss[:1] == b"\x16" and ss[1:2] == b"\x03":
            t.tls_version = bytes(ss[1:3])
        for i, p in enumerate(pkts):
            if i in offs:
                r = rec[p.dir]
                o, end = offs[i], offs[i] + len(p.payload)
                p.recs = tuple(v for k, v in r.items() if o <= k < end)

    ins = len(pkts)
    for i, p in enumerate(pkts):
        if p.flags & (FIN | RST):
            ins = i
            break
        if t.kind == "tls" and i in offs and p.recs and offs[i] in rec[p.dir]:
            ty, ln = p.recs[0]
            if ty == 21 or (ty == 23 and ln == 19):  # (encrypted TLS 1.3) close_notify
                ins = i
                break
    t.ins = ins

    if t.kind == "tls":
        # the server must have answered after the client's CCS/encrypted flight:
        # the handshake completed, application data can follow.
        k = None
        ok = False
        for i, p in enumerate(pkts[:ins]):
            types = [ty for ty, _ in p.recs]
            if p.dir == 0 and k is None and (20 in types or 23 in types):
                k = i
            elif p.dir == 1 and k is not None and (20 in types or 23 in types):
                ok = True
        t.bulk = ok
    elif t.kind == "http":
        t.bulk = any(p.dir == 1 and p.payload for p in pkts[:ins])

    cn, sn = 1, 1
    for p in pkts[:ins]:
        nxt = (p.seq + len(p.payload) + (1 if p.flags & (SYN | FIN) else 0)) & M32
        if p.dir == 0:
            cn = max(cn, nxt)
        else:
            sn = max(sn, nxt)
    t.cnext, t.snext = cn, sn

    def hdr_for(d):
        best = None
        for p in pkts[:ins]:
            if p.dir == d and p.flags & ACK and not p.flags & (SYN | FIN | RST):
                best = p
        if best is None:
            best = next(p for p in pkts if p.dir == d)
        return best

    t.chdr, t.shdr = hdr_for(0), hdr_for(1)
    mss = 1460
    o = pkts[0].opts
    j = 0
    while j < len(o):
        if o[j] == 0 or o[j] == 1:
            j += 1
            continue
        if j + 1 >= len(o) or o[j + 1] < 2:
            break
        if o[j] == 2 and o[j + 1] == 4:
            mss = struct.unpack_from("!H", o, j + 2)[0]
        j += o[j + 1]
    t.mss = max(64, min(1448, mss - len(t.shdr.opts)))
    if t.mss < 1000:
        t.bulk = False  # small-MTU template: keep as-is, the bulk is full-size segments
    return t


# ---------------------------------------------------------------------------------------
# Reading fixtures


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return None
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None  # pcapng or not a capture
    if struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF != 1:
        return None  # Ethernet only
    out = []
    off = 24
    while off + 16 <= len(data):
        _s, _f, incl, orig = struct.unpack_from(e + "IIII", data, off)
        off += 16
        if off + incl > len(data):
            break
        out.append((data[off:off + incl], orig))
        off += incl
    return out


def _strip_sack(opts):
    """SACK blocks carry the template's sequence numbers: blank them out with NOPs."""
    j = 0
    out = None
    while j < len(opts):
        k = opts[j]
        if k == 0:
            break
        if k == 1:
            j += 1
            continue
        if j + 1 >= len(opts) or opts[j + 1] < 2:
            break
        ln = opts[j + 1]
        if k == 5:
            if out is None:
                out = bytearray(opts)
            out[j:j + ln] = b"\x01" * min(ln, len(opts) - j)
        j += ln
    return opts if out is None else bytes(out)


def templates_from_pcap(path):
    frames = read_pcap(path)
    if frames is None:
        return None
    flows = {}
    order = []
    truncated = set()
    for frame, orig in frames:
        if len(frame) < 54 or frame[12:14] != b"\x08\x00":
            continue
        if frame[14] != 0x45 or frame[23] != 6:
            continue
        tos = frame[15]
        totlen, _id, ff = struct.unpack_from("!HHH", frame, 16)
        ttl = frame[22]
        src, dst = struct.unpack_from("!II", frame, 26)
        sp, dp, seq, ack, offfl, win, _c, urg = struct.unpack_from("!HHIIHHHH", frame, 34)
        doff = (offfl >> 12) * 4
        a, b = (src, sp), (dst, dp)
        key = (a, b) if a <= b else (b, a)
        if key not in flows:
            flows[key] = []
            order.append(key)
        if len(frame) < orig or doff < 20 or 34 + doff > 14 + totlen or 14 + totlen > len(frame):
            truncated.add(key)  # snaplen-cut or malformed: not usable as a template
            continue
        flows[key].append((a, frame[:14], tos, ff, ttl, win, urg, offfl & 0x1FF,
                           _strip_sack(frame[54:34 + doff]), frame[34 + doff:14 + totlen],
                           seq, ack))
    out = []
    base = os.path.basename(path)
    for n, key in enumerate(order):
        raw = flows[key]
        if key in truncated:
            continue
        syn = next((r for r in raw if r[7] & SYN and not r[7] & ACK), None)
        if syn is None:
            continue
        client = syn[0]
        synack = next((r for r in raw if r[7] & SYN and r[7] & ACK and r[0] != client), None)
        if synack is None:
            continue
        isn = (syn[10], synack[10])
        pkts = []
        started = False
        for r in raw:
            if r is syn:
                started = True
            if not started:
                continue
            d = 0 if r[0] == client else 1
            flags = r[7]
            ack = (r[11] - isn[1 - d]) & M32 if flags & ACK else 0
            pkts.append(TPkt(d, r[1], r[2], r[3], r[4], r[5], r[6], flags, r[8], r[9],
                             (r[10] - isn[d]) & M32, ack))
        sport = synack[0][1]
        out.append(analyse_template(Template("%s#%d" % (base, n), pkts, sport)))
    return out


# ---------------------------------------------------------------------------------------
# Synthetic templates (fallback when the fixture set is small)

CERT_CA = """
MIIDITCCAgmgAwIBAgIUAr0Z/GjTcsqbcdeGR9adMt5fE28wDQYJKoZIhvcNAQELBQAwGDEWMBQG
A1UECgwNY2x1c3Rlci5sb2NhbDAeFw0yNjExMjQwMDU4MTlaFw0zNjExMjEwMDU4MTlaMBgxFjAU
BgNVBAoMDWNsdXN0ZXIubG9jYWwwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCgv5NB
/TDDPA30Q9j9EPWgwcFdQl2Rlce6HZ2+lIpxFqGXeZUC7Au+uFgQGYoyAInNieNxDzIJJHA/zjaS
OCdK25AI5B6N1OYWdEF9uspRljYM9aTPV426oq3vifp+3RUYLiQ4ALZkKlQIRbktbCWu/lLd6B5j
qAx1o49cTUcLpznwoWZAy5Jf/ZCDOR4bC0SZoCH2Sd3YVW9ptyAiHz5sxFgDS1+CYmHqRYf7Tpzp
+UZA6Wzga92CqpcnOiwVXzNHVXMb6S69Ko1WJyGumuzY6wJkJrS1SZFWtr/SWhrtqNiQ6AeIIoHP
earyVHPXDXgvvqcoWE4pAlpgrgFoINfdAgMBAAGjYzBhMB0GA1UdDgQWBBTzDBE9vfAVKZuz+Qfq
7blHo6suHzAfBgNVHSMEGDAWgBTzDBE9vfAVKZuz+Qfq7blHo6suHzAPBgNVHRMBAf8EBTADAQH/
MA4GA1UdDwEB/wQEAwIBBjANBgkqhkiG9w0BAQsFAAOCAQEAZDbcyXl7AcqApgMx7G3KojDXZddN
Es5HcfpiUSLRVWmYc8ZqRigb/LiG9J13WeWJ059rT94fTpVivnBx0Z3lT+uBQkqNMGeGzXtaA9sN
ntTaL1araEv5PlpUoSGVu402B1z2PUTCYws2+IiSwGe+aQAZX0Wg9Q0ud0nU0NPHozROEjTuXSr1
rgzSoKeWLy2ZZus+cvjN4R7lpDF2UafByHcuzlKEJ++cCNExaI85U7QncZcQdr6izIu2s1267i0+
2fUugTw1hfLFBsyExrjkW3WX2EOA6GtLGtKtS0S+o4le3zgCSfSg2hyj1udIeapK4buGfuDEwCzO
Adz5Zjbvkw==
"""
CERT_BACKEND = """
MIIDYDCCAkigAwIBAgIUdvq4ulyFIFB8fa0CCPQPefDsd3IwDQYJKoZIhvcNAQELBQAwGDEWMBQG
A1UECgwNY2x1c3Rlci5sb2NhbDAeFw0yNjExMjQwMDU4MjBaFw0zNjExMjEwMDU4MjBaMAAwggEi
MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCmMECXM3rvpgCS03MYZLT0BIUn90yTboQvM6Hs
L91Lx9w9TxOlW0sGLReKaPgaNRa5DuZ/7TPBLB95c0pnA+kMQmZ4Mx9E55oo2kKgYFmwlXqFWVR5
SyRVZHrjYtyTLLssqPcOkOZdwEY/1885tWL/s6HgJmTxLBYT7ln1fAoRp/fEklmeo2hzT4Hkf2Ge
M+UsANoXJNXap1mH4TqT2Xcs/89HZQ6DJubFIJLBLB4TVmZxGh3wcqLehhSTAkdEUplh144zXiYg
XkSPsPLNGGF8aQYjYIFwzFGZLOnxePl1hDiaDd/NFUyWcjOnjgSqnueXXRp4XReve+E5XDbOE4vt
AgMBAAGjgbkwgbYwNwYDVR0RBDAwLoYsc3BpZmZlOi8vY2x1c3Rlci5sb2NhbC9ucy9kZWZhdWx0
L3NhL2JhY2tlbmQwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcD
AjAMBgNVHRMBAf8EAjAAMB0GA1UdDgQWBBQ2Et/IAZMEoYNudGqRGLvp9WKZVDAfBgNVHSMEGDAW
gBTzDBE9vfAVKZuz+Qfq7blHo6suHzANBgkqhkiG9w0BAQsFAAOCAQEAhU5Y2W8NwO4ef9Z/Fiay
HGsA0E1iDLcpCva1cOFe70yoQWsX996PMbEuIZ4lQqV3pu2cro+MjhdjJVQlUy3B00ZIHL44xZZZ
XsoP7UW3XTHd24SD/cxkKwWBe6aKMGkJsu51BuStYcCBUSqgiVAALqJ95sIzHur9Zwt160VFtn11
aivmN4VBlgAd9tcyMmQrb3MSUA1ThrNsl5xg+knb9jd4SdATWjacZL6nkf4/vmkllTLH26Ru7RJQ
qyfCGfdP5Exaj5YFCHJW2oe35v2g1VJ5wvaQj0l/dgqY6owkz1ufypck/1Ny43LdIFh8ZibJr71b
2IUCBVfbItYGMS8v8w==
"""
CERT_FRONTEND = """
MIIDYTCCAkmgAwIBAgIUdvq4ulyFIFB8fa0CCPQPefDsd3MwDQYJKoZIhvcNAQELBQAwGDEWMBQG
A1UECgwNY2x1c3Rlci5sb2NhbDAeFw0yNjExMjQwMDU4MjBaFw0zNjExMjEwMDU4MjBaMAAwggEi
MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQC2+frL3qAFZE0ChE4K8izHqG3pMqGZ8zHc1VTi
vOxQJV1L1M6rw7WiWR1HU9r48ouQyuJpEvyBNSG/Q+kVBRy8PCt5iWO1z11f4aF9t7KMV0DQLk2R
vbOHnRJwxqfUe6RUrVdqkHzHM8soG/PKesQiRUcXTxZGOlg/XhxFASe7QHX/BSY6u827ASBlzGUm
JsmGa5xsnMZgdPKR+LwfCeJQBIj6N3CE3Qi93L552UV4fHIYadXOnNmnIKy1FBYtxpFqtE99IIIB
N6va3lX0JCYsWwy7/rkDSky6tqGZCWbil/M4SxIHRuDDiVPrMdDVy6BXV0yZ327dEibMIO6hX0pl
AgMBAAGjgbowgbcwOAYDVR0RBDEwL4Ytc3BpZmZlOi8vY2x1c3Rlci5sb2NhbC9ucy9kZWZhdWx0
L3NhL2Zyb250ZW5kMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUH
AwIwDAYDVR0TAQH/BAIwADAdBgNVHQ4EFgQU1BSjVYfjX+rtruCEwQW1FWPySVgwHwYDVR0jBBgw
FoAU8wwRPb3wFSmbs/kH6u25R6OrLh8wDQYJKoZIhvcNAQELBQADggEBAFgxHoLM0bAaHQnhY2RY
ccdXTjfV564Nrhyjdww9e42SleMkWXJoZI7XEbaTzrgUK/bIhSC2K4p6CpcbH2E8DPZt//qs6rRn
yGO+VRi15DRcLbL2YWU2IGQl5ccLNZW/rtC+7NJnfLXDpJh3ZCMqxZg3G01xZEoxsWP2m6nq2gCC
TXWYnKI/D230Aj6kh1bOfbDjKiXQyDR4jKHY/l0AuMQtnhWdSvnEbQUSGbA3vu9uy46eodj+LnF+
D7Nl4P8n/J4NYniv8saUiKCa6TgBkxqEgQKX3IyxMr+bhBCiiINLAICxfu6fhRZWbkJrAHZdNaWC
OWCKRPRrkOW5wSiMfi8=
"""


def _len2(b):
    return struct.pack("!H", len(b)) + b


def _len3(b):
    return struct.pack("!I", len(b))[1:] + b


def _hs(t, body):
    return bytes([t]) + _len3(body)


def _rec(ct, body, ver=b"\x03\x03"):
    return bytes([ct]) + ver + _len2(body)


def _ext(t, data):
    return struct.pack("!H", t) + _len2(data)


class _Synth:
    """Builds a TCP flow packet by packet, tracking relative sequence numbers."""

    CMAC = bytes.fromhex("0a580af40105")
    SMAC = bytes.fromhex("0a580af40209")

    def __init__(self, rnd, mss=1448):
        self.rnd = rnd
        self.mss = mss
        self.pkts = []
        self.nxt = [1, 1]
        self.ts = [rnd.getrandbits(32), rnd.getrandbits(32)]
        self.eth = [self.SMAC + self.CMAC + b"\x08\x00", self.CMAC + self.SMAC + b"\x08\x00"]

    def _opts(self, d, syn):
        self.ts[d] = (self.ts[d] + 1) & M32
        tsopt = b"\x08\x0a" + struct.pack("!II", self.ts[d], self.ts[1 - d])
        if syn:
            return b"\x02\x04\x05\xb4\x04\x02" + tsopt + b"\x01\x03\x03\x0a"
        return b"\x01\x01" + tsopt

    def pkt(self, d, flags, payload=b"", seq=None):
        seq = self.nxt[d] if seq is None else seq
        ack = self.nxt[1 - d] if flags & ACK else 0
        p = TPkt(d, self.eth[d], 0, 0x4000, 64, 502, 0, flags, self._opts(d, flags & SYN),
                 payload, seq, ack)
        self.pkts.append(p)
        self.nxt[d] = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & M32

    def handshake(self):
        self.pkt(0, SYN, seq=0)
        self.pkt(1, SYN | ACK, seq=0)
        self.pkt(0, ACK)

    def send(self, d, data, ack_after=True):
        for o in range(0, len(data), self.mss):
            seg = data[o:o + self.mss]
            self.pkt(d, ACK | (PSH if o + self.mss >= len(data) else 0), seg)
        if ack_after:
            self.pkt(1 - d, ACK)

    def close(self):
        self.pkt(0, FIN | ACK)
        self.pkt(1, FIN | ACK)
        self.pkt(0, ACK)


def synthetic_templates(seed):
    rnd = random.Random(seed ^ 0x5EED)
    ca = base64.b64decode(CERT_CA)
    srv_chain = [base64.b64decode(CERT_BACKEND), ca]
    cli_chain = [base64.b64decode(CERT_FRONTEND), ca]
    sni = b"backend.default.svc.cluster.local"
    out = []

    def rb(n):
        return rnd.randbytes(n)

    def certs(chain):
        body = b"".join(_len3(c) for c in chain)
        return _hs(11, _len3(body))

    sigalgs = _len2(bytes.fromhex("080404030805050308060603040105010601"))

    def client_hello(tls13):
        exts = [_ext(0, _len2(b"\x00" + _len2(sni))),
                _ext(11, b"\x01\x00"),
                _ext(10, _len2(bytes.fromhex("001d00170018"))),
                _ext(35, b""),
                _ext(16, _len2(b"\x02h2\x08http/1.1")),
                _ext(23, b""),
                _ext(13, sigalgs)]
        if tls13:
            exts += [_ext(43, b"\x04\x03\x04\x03\x03"),
                     _ext(45, b"\x01\x01"),
                     _ext(51, _len2(b"\x00\x1d" + _len2(rb(32))))]
        ciphers = bytes.fromhex("130213031301c02cc030cca9cca8c02bc02f009f009e00ff")
        body = (b"\x03\x03" + rb(32) + b"\x20" + rb(32) + _len2(ciphers) + b"\x01\x00"
                + _len2(b"".join(exts)))
        return _rec(22, _hs(1, body), b"\x03\x01")

    # DER of the CA's subject, O=cluster.local (for CertificateRequest)
    oid = bytes.fromhex("060355040a")
    val = b"\x0c" + bytes([13]) + b"cluster.local"
    atv = b"\x30" + bytes([len(oid) + len(val)]) + oid + val
    rdn = b"\x31" + bytes([len(atv)]) + atv
    ca_dn = b"\x30" + bytes([len(rdn)]) + rdn

    def http_flow(method, path, body, status, resp_body):
        s = _Synth(rnd)
        s.handshake()
        req = (b"%s %s HTTP/1.1\r\nHost: backend.default.svc.cluster.local:8080\r\n"
               b"User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n" % (method, path))
        if body:
            req += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        req += b"\r\n" + body
        s.send(0, req)
        resp = (b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nDate: Tue, 24 Nov 2026 "
                b"00:00:00 GMT\r\nContent-Length: %d\r\n\r\n" % (status, len(resp_body))) + resp_body
        s.send(1, resp)
        s.close()
        return s.pkts

    def tls12_flow(mutual):
        s = _Synth(rnd)
        s.handshake()
        s.send(0, client_hello(False))
        sh = _hs(2, b"\x03\x03" + rb(32) + b"\x20" + rb(32) + b"\xc0\x2f\x00"
                 + _len2(_ext(0xFF01, b"\x00") + _ext(23, b"") + _ext(11, b"\x01\x00")))
        ske = _hs(12, b"\x03\x00\x1d\x20" + rb(32) + b"\x08\x04" + _len2(rb(256)))
        flight = sh + certs(srv_chain) + ske
        if mutual:
            flight += _hs(13, b"\x02\x01\x40" + sigalgs + _len2(_len2(ca_dn)))
        flight += _hs(14, b"")
        s.send(1, _rec(22, flight))
        cflight = b""
        if mutual:
            cflight += certs(cli_chain)
        cflight += _hs(16, b"\x20" + rb(32))
        if mutual:
            cflight += _hs(15, b"\x08\x04" + _len2(rb(256)))
        s.send(0, _rec(22, cflight) + _rec(20, b"\x01") + _rec(22, rb(40)), ack_after=False)
        s.send(1, _rec(22, _hs(4, struct.pack("!I", 7200) + _len2(rb(176)))) + _rec(20, b"\x01") + _rec(22, rb(40)))
        s.send(0, _rec(23, rb(8 + 180 + 16)), ack_after=False)
        s.send(1, _rec(23, rb(8 + 420 + 16)))
        s.send(0, _rec(21, rb(26)), ack_after=False)
        s.close()
        return s.pkts

    def tls13_flow(mutual):
        s = _Synth(rnd)
        s.handshake()
        s.send(0, client_hello(True))
        sh = _hs(2, b"\x03\x03" + rb(32) + b"\x20" + rb(32) + b"\x13\x01\x00"
                 + _len2(_ext(43, b"\x03\x04") + _ext(51, b"\x00\x1d" + _len2(rb(32)))))
        chain_len = sum(len(c) + 3 for c in srv_chain)
        enc = _rec(23, rb(40)) + _rec(23, rb(chain_len + 30)) + _rec(23, rb(280)) + _rec(23, rb(53))
        if mutual:
            enc = _rec(23, rb(40)) + _rec(23, rb(60)) + enc[45:]
        s.send(1, _rec(22, sh) + _rec(20, b"\x01") + enc)
        cfl = _rec(20, b"\x01")
        if mutual:
            cl = sum(len(c) + 3 for c in cli_chain)
            cfl += _rec(23, rb(cl + 30)) + _rec(23, rb(280))
        cfl += _rec(23, rb(53))
        s.send(0, cfl)
        s.send(1, _rec(23, rb(250)) + _rec(23, rb(250)), ack_after=False)
        s.send(0, _rec(23, rb(180 + 17)))
        s.send(1, _rec(23, rb(420 + 17)))
        s.send(0, _rec(23, rb(19)), ack_after=False)
        s.send(1, _rec(23, rb(19)))
        s.close()
        return s.pkts

    specs = [
        ("synth-http1-get", 8080, http_flow(b"GET", b"/api/items", b"", b"200 OK",
                                            b'{"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}')),
        ("synth-http1-post", 8080, http_flow(b"POST", b"/api/items", b'{"name":"c"}',
                                             b"201 Created", b'{"id":3,"name":"c"}')),
        ("synth-tls12-server-auth", 8443, tls12_flow(False)),
        ("synth-tls12-mutual", 8443, tls12_flow(True)),
        ("synth-tls13-server-auth", 8443, tls13_flow(False)),
        ("synth-tls13-mutual", 8443, tls13_flow(True)),
    ]
    for name, port, pkts in specs:
        out.append(analyse_template(Template(name, pkts, port)))
    return out


# ---------------------------------------------------------------------------------------
# Instantiation


class Corpus:
    def __init__(self, args, templates):
        self.rng = random.Random(args.seed)
        rng = self.rng
        self.templates = templates
        # categories and weights
        cats = {
            "tls-bulk": [t for t in templates if t.kind == "tls" and t.bulk],
            "http-bulk": [t for t in templates if t.kind == "http" and t.bulk],
            "as-is": [t for t in templates if not t.bulk],
        }
        want = {"tls-bulk": args.tls_share, "http-bulk": args.http_share,
                "as-is": max(0.0, 1.0 - args.tls_share - args.http_share)}
        self.cats = [(c, cats[c], want[c]) for c in cats if cats[c] and want[c] > 0]
        tot = sum(w for _, _, w in self.cats)
        acc = 0.0
        self.cum = []
        for c, ts, w in self.cats:
            acc += w / tot
            self.cum.append(acc)
        self.flows = max(1, args.flows)
        self.npods = max(64, self.flows // 6)
        self.nsvc = max(16, self.flows // 150)
        # random payload pool: 1 MiB, plus a tail so any segment can be sliced without wrap
        pool = rng.randbytes(1 << 20)
        self.pool = memoryview(pool + pool[:65536])
        self.pool_len = len(pool)
        # periodic TLS application-data stream (8 full records) per record-layer version
        bodies = [rng.randbytes(TLS_REC_BODY) for _ in range(8)]
        self.tls_period = 8 * TLS_REC_LEN
        self.tls_buf = {}
        for v in sorted({t.tls_version for t in templates if t.kind == "tls"}):
            recs = b"".join(b"\x17" + v + struct.pack("!H", TLS_REC_BODY) + b for b in bodies)
            self.tls_buf[v] = memoryview(recs + recs[:65536])
        avg_tpl = sum(t.bytes for t in templates) / len(templates)
        per_flow = args.size_bytes / self.flows
        # bulk payload mean (headers and ACKs add ~8.5 %)
        self.bulk_mean = max(0.0, (per_flow - avg_tpl - 600) / 1.085)
        self.sigma = args.sigma
        self.bulk_max = 64 << 20
        self.counts = {}
        self.tpl_counts = {}

    def pick(self):
        rng = self.rng
        x = rng.random()
        for (c, ts, _w), cu in zip(self.cats, self.cum):
            if x <= cu:
                return c, ts[rng.randrange(len(ts))]
        c, ts, _w = self.cats[-1]
        return c, ts[rng.randrange(len(ts))]

    def bulk_size(self):
        if self.bulk_mean <= 0:
            return 0
        s = self.sigma
        mu = math.log(self.bulk_mean) - s * s / 2
        return int(min(self.bulk_max, self.rng.lognormvariate(mu, s)))

    def new_flow(self, fi):
        """Returns (generator of packets, estimated bytes incl. record headers)."""
        rng = self.rng
        cat, t = self.pick()
        self.counts[cat] = self.counts.get(cat, 0) + 1
        self.tpl_counts[t.name] = self.tpl_counts.get(t.name, 0) + 1
        pod = fi % self.npods
        cip = 0x0AF40000 + ((pod // 250) << 8) + (pod % 250) + 2            # 10.244.x.y
        svc = rng.randrange(self.nsvc)
        sip = 0x0A600000 + ((svc // 250) << 8) + (svc % 250) + 1            # 10.96.x.y
        cport = 32768 + (fi // self.npods) % 28000
        sport = t.sport
        isn = (rng.getrandbits(32), rng.getrandbits(32))
        ipid = [rng.getrandbits(16), rng.getrandbits(16)]
        bulk = self.bulk_size() if t.bulk else 0
        gen, est = self._flow(t, cip, sip, cport, sport, isn, ipid, bulk, fi)
        return gen, est

    def _flow(self, t, cip, sip, cport, sport, isn, ipid, B, fi):
        rng = self.rng
        csum = (cip >> 16) + (cip & 0xFFFF) + (sip >> 16) + (sip & 0xFFFF)
        seg = t.mss
        # what gets spliced in
        creq = b""
        prefix = b""
        suffix = b""
        mid_buf, mid_period = self.pool, self.pool_len
        if B and t.kind == "tls":
            lc = rng.randrange(80, 600)
            o = rng.randrange(self.pool_len)
            ver = t.tls_version
            creq = b"\x17" + ver + struct.pack("!H", lc) + bytes(self.pool[o:o + lc])
            nfull, rem = divmod(B, TLS_REC_LEN)
            if 0 < rem < 24:
                rem = 24
            mid_len = nfull * TLS_REC_LEN
            mid_buf, mid_period = self.tls_buf[ver], self.tls_period
            if rem:
                o = rng.randrange(self.pool_len)
                suffix = (b"\x17" + ver + struct.pack("!H", rem - 5)
                          + bytes(self.pool[o:o + rem - 5]))
        elif B and t.kind == "http":
            creq = (b"GET /api/v1/blobs/%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: "
                    b"Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n" % (fi, t.host))
            prefix = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Date: Tue, 24 Nov 2026 00:00:00 GMT\r\nContent-Length: %d\r\n\r\n" % B)
            mid_len = B
        else:
            mid_len = 0
        Bc = len(creq)
        Bs = len(prefix) + mid_len + len(suffix)
        nseg = (Bs + seg - 1) // seg
        nack = (nseg + 1) // 2
        ch, sh = t.chdr, t.shdr
        est = (t.bytes
               + (70 + len(ch.opts) + Bc if Bc else 0)
               + nseg * (70 + len(sh.opts)) + Bs
               + nack * (70 + len(ch.opts)))
        return self._packets(t, cip, sip, cport, sport, isn, ipid, csum, creq,
                             prefix, mid_buf, mid_period, mid_len, suffix, Bs, seg), est

    def _packets(self, t, cip, sip, cport, sport, isn, ipid, asum, creq,
                 prefix, mid_buf, mid_period, mid_len, suffix, Bs, seg):
        pack = IPTCP_pack
        addrs = ((cip, sip, cport, sport), (sip, cip, sport, cport))
        ins = t.ins
        pkts = t.pkts
        isn_c, isn_s = isn
        C0, S0 = t.cnext, t.snext
        Bc = len(creq)
        # template part before the splice point
        for p in pkts[:ins]:
            d = p.dir
            src, dst, sp, dp = addrs[d]
            pl = p.payload
            tot = 40 + len(p.opts) + len(pl)
            i = ipid[d] = (ipid[d] + 1) & 0xFFFF
            s = p.ipconst + tot + i + asum
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            if d == 0:
                seq, ack = (p.seq + isn_c) & M32, ((p.ack + isn_s) & M32 if p.flags & ACK else 0)
            else:
                seq, ack = (p.seq + isn_s) & M32, ((p.ack + isn_c) & M32 if p.flags & ACK else 0)
            yield (tot + 14, p.eth, pack(p.vt, tot, i, p.ff, p.ttl, 6, ~s & 0xFFFF, src, dst,
                                         sp, dp, seq, ack, p.offfl, p.win, 0, p.urg), p.opts, pl)
        ch, sh = t.chdr, t.shdr
        cseq = (C0 + isn_c) & M32
        sseq0 = (S0 + isn_s) & M32
        if Bc:
            # client request (one segment; requests here are < 1 MSS)
            src, dst, sp, dp = addrs[0]
            tot = 40 + len(ch.opts) + Bc
            i = ipid[0] = (ipid[0] + 1) & 0xFFFF
            s = ch.ipconst + tot + i + asum
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            yield (tot + 14, ch.eth, pack(ch.vt, tot, i, ch.ff, ch.ttl, 6, ~s & 0xFFFF, src, dst,
                                          sp, dp, cseq, sseq0, (ch.offfl & 0xF000) | PSH | ACK,
                                          ch.win, 0, 0), ch.opts, creq)
            cseq = (cseq + Bc) & M32
        if Bs:
            P = len(prefix)
            F = P + mid_len
            s_src, s_dst, s_sp, s_dp = addrs[1]
            c_src, c_dst, c_sp, c_dp = addrs[0]
            s_off = (sh.offfl & 0xF000) | ACK
            c_off = (ch.offfl & 0xF000) | ACK
            s_hlen = 40 + len(sh.opts)
            c_tot = 40 + len(ch.opts)
            s_opts, c_opts = sh.opts, ch.opts
            s_eth, c_eth = sh.eth, ch.eth
            s_const = sh.ipconst + asum
            c_const = ch.ipconst + c_tot + asum
            n = 0
            for a in range(0, Bs, seg):
                b = a + seg
                if b > Bs:
                    b = Bs
                if a >= P and b <= F:
                    o = (a - P) % mid_period
                    pl = mid_buf[o:o + b - a]
                else:
                    parts = []
                    if a < P:
                        parts.append(prefix[a:min(b, P)])
                    lo, hi = max(a, P), min(b, F)
                    if lo < hi:
                        o = (lo - P) % mid_period
                        parts.append(mid_buf[o:o + hi - lo])
                    lo = max(a, F)
                    if lo < b:
                        parts.append(suffix[lo - F:b - F])
                    pl = b"".join(parts)
                tot = s_hlen + b - a
                i = ipid[1] = (ipid[1] + 1) & 0xFFFF
                s = s_const + tot + i
                s = (s & 0xFFFF) + (s >> 16)
                s = (s & 0xFFFF) + (s >> 16)
                yield (tot + 14, s_eth, pack(sh.vt, tot, i, sh.ff, sh.ttl, 6, ~s & 0xFFFF, s_src,
                                             s_dst, s_sp, s_dp, (sseq0 + a) & M32, cseq,
                                             s_off | (PSH if b == Bs else 0), sh.win, 0, 0),
                       s_opts, pl)
                n += 1
                if n & 1 == 0 or b == Bs:
                    i = ipid[0] = (ipid[0] + 1) & 0xFFFF
                    s = c_const + i
                    s = (s & 0xFFFF) + (s >> 16)
                    s = (s & 0xFFFF) + (s >> 16)
                    yield (c_tot + 14, c_eth, pack(ch.vt, c_tot, i, ch.ff, ch.ttl, 6, ~s & 0xFFFF,
                                                   c_src, c_dst, c_sp, c_dp, cseq,
                                                   (sseq0 + b) & M32, c_off, ch.win, 0, 0),
                           c_opts, b"")
        # template part after the splice point, shifted by what was spliced in
        for p in pkts[ins:]:
            d = p.dir
            src, dst, sp, dp = addrs[d]
            pl = p.payload
            tot = 40 + len(p.opts) + len(pl)
            i = ipid[d] = (ipid[d] + 1) & 0xFFFF
            s = p.ipconst + tot + i + asum
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            if d == 0:
                seq = p.seq + (Bc if p.seq >= C0 else 0) + isn_c
                ack = (p.ack + (Bs if p.ack >= S0 else 0) + isn_s) if p.flags & ACK else 0
            else:
                seq = p.seq + (Bs if p.seq >= S0 else 0) + isn_s
                ack = (p.ack + (Bc if p.ack >= C0 else 0) + isn_c) if p.flags & ACK else 0
            yield (tot + 14, p.eth, pack(p.vt, tot, i, p.ff, p.ttl, 6, ~s & 0xFFFF, src, dst,
                                         sp, dp, seq & M32, ack & M32, p.offfl, p.win, 0, p.urg),
                   p.opts, pl)


def write_corpus(args, templates):
    corpus = Corpus(args, templates)
    target = args.size_bytes
    window = args.window
    tmp = args.out + ".tmp"
    f = open(tmp, "wb", buffering=0)
    f.write(PCAP_HDR)
    written = 24
    committed = 24
    fi = 0
    active = []
    while len(active) < window and committed < target:
        g, est = corpus.new_flow(fi)
        fi += 1
        committed += est
        active.append(g)
    parts = []
    app = parts.append
    batch = 0
    BATCH = 16 << 20
    ts_ns = 1_764_000_000 * 10**9
    ns_per_byte = 8.0 / args.rate_gbps
    npk = 0
    t0 = time.time()
    last_report = t0
    while active:
        i = 0
        while i < len(active):
            item = next(active[i], None)
            if item is None:
                if committed < target:
                    g, est = corpus.new_flow(fi)
                    fi += 1
                    committed += est
                    active[i] = g
                else:
                    active[i] = active[-1]
                    active.pop()
                continue
            flen = item[0]
            ts_ns += int(flen * ns_per_byte) + 40
            us = ts_ns // 1000
            app(REC_pack(us // 1000000, us % 1000000, flen, flen))
            app(item[1])
            app(item[2])
            app(item[3])
            app(item[4])
            batch += flen + 16
            npk += 1
            i += 1
            if batch >= BATCH:
                f.write(b"".join(parts))
                written += batch
                parts.clear()
                batch = 0
                now = time.time()
                if now - last_report > 5 and not args.quiet:
                    last_report = now
                    print("  %6.0f MB  %8d packets  %6d flows  %5.1f MB/s" % (
                        written / 1e6, npk, fi, written / 1e6 / (now - t0)), file=sys.stderr)
    if parts:
        f.write(b"".join(parts))
        written += batch
    f.close()
    os.replace(tmp, args.out)
    dt = time.time() - t0
    meta = {
        "file": os.path.abspath(args.out),
        "bytes": written,
        "packets": npk,
        "flows": fi,
        "seed": args.seed,
        "size_gb_requested": args.size_gb,
        "flows_requested": args.flows,
        "window": window,
        "categories": corpus.counts,
        "templates": corpus.tpl_counts,
        "template_source": args.template_source,
        "generate_seconds": round(dt, 1),
    }
    with open(args.out + ".meta.json", "w") as mf:
        json.dump(meta, mf, indent=1, sort_keys=True)
    if not args.quiet:
        print("wrote %s: %.3f GB, %d packets, %d flows in %.1fs (%.0f MB/s)" % (
            args.out, written / 1e9, npk, fi, dt, written / 1e6 / max(dt, 1e-9)), file=sys.stderr)
        print("  categories: %s" % json.dumps(corpus.counts, sort_keys=True), file=sys.stderr)
    return meta


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gb", type=float, default=2.0, help="target file size in GB (1e9 bytes)")
    ap.add_argument("--flows", type=int, default=40000, help="target number of TCP flows")
    ap.add_argument("--out", default=os.path.join(here, "out", "corpus.pcap"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=int, default=3000,
                    help="flows open at once (interleaved round-robin)")
    ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(here), "fixtures"),
                    help="directory of template .pcap files (default: <repo>/fixtures)")
    ap.add_argument("--synthetic", action="store_true",
                    help="always use synthesised templates, ignore fixtures")
    ap.add_argument("--tls-share", type=float, default=0.85, help="share of TLS flows with bulk data")
    ap.add_argument("--http-share", type=float, default=0.10,
                    help="share of plaintext HTTP/1 flows with bulk data (rest: templates as-is)")
    ap.add_argument("--sigma", type=float, default=1.2,
                    help="log-normal sigma of the per-flow bulk size")
    ap.add_argument("--rate-gbps", type=float, default=1.0,
                    help="link rate used to space packet timestamps")
    ap.add_argument("--list-templates", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    args.size_bytes = int(args.size_gb * 1e9)

    templates = []
    used_files = []
    if not args.synthetic:
        for path in sorted(glob.glob(os.path.join(args.fixtures, "*.pcap"))):
            ts = templates_from_pcap(path)
            if ts:
                templates += ts
                used_files.append(os.path.basename(path))
    if len(used_files) < 3:
        if not args.quiet and not args.synthetic:
            print("only %d Ethernet fixture(s) in %s: adding synthesised template flows"
                  % (len(used_files), args.fixtures), file=sys.stderr)
        templates += synthetic_templates(args.seed)
        args.template_source = "synthetic" + (" + " + ",".join(used_files) if used_files else "")
    else:
        args.template_source = "fixtures: " + ",".join(used_files)
    if args.list_templates or not args.quiet:
        for t in templates:
            print("  template %-36s kind=%-5s bulk=%-5s pkts=%3d mss=%d" % (
                t.name, t.kind, t.bulk, t.npkts, t.mss), file=sys.stderr)
        if args.list_templates:
            return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_corpus(args, templates)


if __name__ == "__main__":
    main()
