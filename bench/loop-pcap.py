#!/usr/bin/env python3
"""Stream a classic pcap N times as one capture, on stdout: the global header once, then the
records of each pass with their timestamps moved a day later per pass, so that the flows of
one pass are long finished (idle) before the same addresses and ports come back. For soak
tests of `mtlscope live -r -` (bench/live.sh). pcapng is not supported."""
import struct
import sys

CHUNK = 1 << 20
DAY = 86400


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: loop-pcap.py FILE.pcap PASSES", file=sys.stderr)
        return 2
    path, passes = sys.argv[1], int(sys.argv[2])
    out = sys.stdout.buffer
    with open(path, "rb") as f:
        header = f.read(24)
    magic = header[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        rec = struct.Struct("<IIII")
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        rec = struct.Struct(">IIII")
    else:
        print(f"{path}: not a classic pcap", file=sys.stderr)
        return 2
    out.write(header)
    try:
        for n in range(passes):
            shift = n * DAY
            with open(path, "rb") as f:
                f.seek(24)
                buf = b""
                while True:
                    data = f.read(CHUNK)
                    if not data and not buf:
                        break
                    buf += data
                    parts = []
                    i = 0
                    while i + 16 <= len(buf):
                        sec, frac, incl, orig = rec.unpack_from(buf, i)
                        end = i + 16 + incl
                        if end > len(buf):
                            break
                        parts.append(rec.pack(sec + shift, frac, incl, orig))
                        parts.append(buf[i + 16:end])
                        i = end
                    out.write(b"".join(parts))
                    buf = buf[i:]
                    if not data:
                        break  # a truncated last record is dropped
            print(f"loop-pcap: pass {n + 1}/{passes} written", file=sys.stderr, flush=True)
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
