#!/usr/bin/env python3
"""JA4 / JA4S of every TCP TLS stream in a capture, computed from tshark's dissection.

An independent cross-check of mtlscope's fingerprints (src/identity/ja4.rs): nothing here is
shared with the Rust code; the fields come from Wireshark's TLS dissector.

    scripts/ja4-from-tshark.py fixtures/tls12_mutual_veth.pcap
    -> client_ip:port server_ip:port JA4 JA4S
"""
import hashlib
import json
import subprocess
import sys

GREASE = {0x0A0A + 0x1010 * i for i in range(16)}
VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2"}


def hash12(s):
    return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def extensions(hs):
    """(type, extension dict) in dissection order; repeated names come merged as lists."""
    out = []
    for key, val in hs.items():
        if key.startswith("Extension: "):
            for ext in as_list(val):
                out.append((int(ext["tls.handshake.extension.type"]), ext))
    return out


def find(d, name):
    """Every value of `name` anywhere under d, in order."""
    if isinstance(d, dict):
        for k, v in d.items():
            if k == name:
                yield from as_list(v)
            else:
                yield from find(v, name)
    elif isinstance(d, list):
        for x in d:
            yield from find(x, name)


def alpn_chars(value):
    if not value:
        return "00"
    c = lambda ch: ch if ch.isascii() else "9"
    return c(value[0]) + (c(value[-1]) if len(value) > 1 else "0")


def ja4(hs):
    exts = [(t, e) for t, e in extensions(hs) if t not in GREASE]
    types = [t for t, _ in exts]
    if 43 in types:
        sv = [int(v, 16) for _, e in exts if _ == 43 for v in find(e, "tls.handshake.extensions.supported_version")]
        version = max(v for v in sv if v not in GREASE)
    else:
        version = int(hs["tls.handshake.version"], 16)
    ciphers = [int(c, 16) for c in find(hs, "tls.handshake.ciphersuite")]
    ciphers = [c for c in ciphers if c not in GREASE]
    alpn = next((v for t, e in exts if t == 16 for v in find(e, "tls.handshake.extensions_alpn_str")), "")
    sigs = [v[2:] for t, e in exts if t == 13 for v in find(e, "tls.handshake.sig_hash_alg")]
    head = "t%s%s%02d%02d%s" % (VERSIONS.get(version, "00"), "d" if 0 in types else "i",
                                min(len(ciphers), 99), min(len(types), 99), alpn_chars(alpn))
    c = ",".join("%04x" % x for x in sorted(ciphers))
    e = ",".join("%04x" % x for x in sorted(t for t in types if t not in (0, 16)))
    if sigs:
        e += "_" + ",".join(sigs)
    return "%s_%s_%s" % (head, hash12(c), hash12(e))


def ja4s(hs):
    exts = extensions(hs)
    types = [t for t, _ in exts]
    sv = [int(v, 16) for t, e in exts if t == 43 for v in find(e, "tls.handshake.extensions.supported_version")]
    version = sv[0] if sv else int(hs["tls.handshake.version"], 16)
    alpn = next((v for t, e in exts if t == 16 for v in find(e, "tls.handshake.extensions_alpn_str")), "")
    cipher = int(next(find(hs, "tls.handshake.ciphersuite")), 16)
    head = "t%s%02d%s" % (VERSIONS.get(version, "00"), min(len(types), 99), alpn_chars(alpn))
    return "%s_%04x_%s" % (head, cipher, hash12(",".join("%04x" % t for t in types)))


def main(path):
    out = subprocess.run(
        ["tshark", "-r", path, "-Y", "tcp && (tls.handshake.type == 1 || tls.handshake.type == 2)",
         "-T", "json", "--no-duplicate-keys"], capture_output=True, text=True, check=True).stdout
    flows = {}
    for pkt in json.loads(out or "[]"):
        layers = pkt["_source"]["layers"]
        ip = layers.get("ip") or layers.get("ipv6")
        ip = ip[-1] if isinstance(ip, list) else ip  # tunnels: the innermost header
        src = ip.get("ip.src") or ip.get("ipv6.src")
        dst = ip.get("ip.dst") or ip.get("ipv6.dst")
        tcp = layers["tcp"]
        a, b = "%s:%s" % (src, tcp["tcp.srcport"]), "%s:%s" % (dst, tcp["tcp.dstport"])
        for hs in find(layers.get("tls", {}), "tls.handshake"):
            if not isinstance(hs, dict):
                continue
            kind = hs.get("tls.handshake.type")
            if kind == "1":
                flows.setdefault((a, b), {}).setdefault("ja4", ja4(hs))
            elif kind == "2" and hs.get("tls.handshake.random", "").replace(":", "") != HRR:
                flows.setdefault((b, a), {}).setdefault("ja4s", ja4s(hs))
    for (c, s), fp in flows.items():
        print(c, s, fp.get("ja4", "-"), fp.get("ja4s", "-"))


# A ServerHello with this random is a HelloRetryRequest: JA4S reads the real ServerHello.
HRR = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"

if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p)
