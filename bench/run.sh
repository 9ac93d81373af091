#!/usr/bin/env bash
# mtlscope benchmark: mtlscope vs a bare libpcap read vs tshark on one large capture.
# Usage: bench/run.sh            (from the repository root, or anywhere)
# Env:   BENCH_SIZE_GB (2)  BENCH_FLOWS (40000)  BENCH_RUNS (3)  BENCH_SEED (1)
#        BENCH_CORPUS=path  use this capture instead of generating one
#        BENCH_TSHARK=auto|full|slice|skip  (auto: full file unless the 200 MB probe
#                                            extrapolates to more than BENCH_TSHARK_MAX_S)
#        BENCH_TSHARK_MAX_S (600)  BENCH_SLICE_MB (200)
#        BENCH_MTLSCOPE=path  benchmark this binary instead of building target/release/mtlscope
# Targets: mtlscope within 1.5x of the libpcap read, >= 50x faster than tshark,
#          peak RSS < 64 MiB (2 GB / ~40k flows).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT="$BENCH_DIR/out"
SIZE_GB=${BENCH_SIZE_GB:-2}
FLOWS=${BENCH_FLOWS:-40000}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-1}
TSHARK_MODE=${BENCH_TSHARK:-auto}
TSHARK_MAX_S=${BENCH_TSHARK_MAX_S:-600}
SLICE_MB=${BENCH_SLICE_MB:-200}
# the corpus name changes with the generator and the fixture set (its templates)
FXTAG=$( { cat "$BENCH_DIR/gen-corpus.py"
           for f in "$ROOT"/fixtures/*.pcap; do [ -e "$f" ] && echo "$(stat -c %s "$f") $f"; done
           true; } | md5sum | cut -c1-8)
CORPUS=${BENCH_CORPUS:-$OUT/corpus-${SIZE_GB}gb-${FLOWS}f-s${SEED}-${FXTAG}.pcap}
MEAS="$OUT/measurements.tsv"

mkdir -p "$OUT"
log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
# set -e would otherwise end the script without a word
trap 'printf "[bench] error: line %s failed: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

for tool in gcc python3 tshark editcap capinfos cargo; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install -y time)"
[ -e /usr/include/pcap/pcap.h ] || die "libpcap headers missing (apt-get install -y libpcap-dev)"

# --- build ---------------------------------------------------------------------------
log "building pcap_read"
gcc -O2 -o "$OUT/pcap_read" "$BENCH_DIR/pcap_read.c" -lpcap
if [ -n "${BENCH_MTLSCOPE:-}" ]; then
    MTLSCOPE=$BENCH_MTLSCOPE   # a prebuilt binary (e.g. to compare two builds)
else
    log "building mtlscope (release)"
    (cd "$ROOT" && cargo build --release --quiet)
    MTLSCOPE="$ROOT/target/release/mtlscope"
fi
[ -x "$MTLSCOPE" ] || die "no $MTLSCOPE after cargo build"

# --- corpus --------------------------------------------------------------------------
if [ ! -s "$CORPUS" ]; then
    [ -n "${BENCH_CORPUS:-}" ] && die "BENCH_CORPUS=$CORPUS does not exist"
    # drop earlier generated corpora (multi-GB each)
    find "$OUT" -maxdepth 1 -name 'corpus-*.pcap*' -delete
    log "generating $CORPUS (${SIZE_GB} GB, ~${FLOWS} flows)"
    python3 "$BENCH_DIR/gen-corpus.py" --size-gb "$SIZE_GB" --flows "$FLOWS" --seed "$SEED" \
        --out "$CORPUS" -q
fi
FILE_BYTES=$(stat -c %s "$CORPUS")
log "corpus: $CORPUS ($FILE_BYTES bytes)"

# warm the page cache so every tool reads from memory (the file must fit in RAM)
cat "$CORPUS" >/dev/null

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# run_timed NAME FILE RUN CMD...: /usr/bin/time -f '%e %M' (plus user/sys CPU) around CMD;
# the wall time used is measured in ns around it (%e has 10 ms resolution; both recorded).
run_timed() {
    local name=$1 file=$2 run=$3; shift 3
    local tf; tf=$(mktemp)
    local l0; l0=$(loadavg)
    local t0; t0=$(date +%s%N)
    if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >/dev/null 2>"$OUT/$name.stderr"; then
        echo "[bench] $name failed:" >&2; tail -5 "$OUT/$name.stderr" >&2; tail -1 "$tf" >&2
        rm -f "$tf"; return 1
    fi
    local t1; t1=$(date +%s%N)
    local l1; l1=$(loadavg)
    local e rss usr sys
    read -r e rss usr sys < <(tail -1 "$tf")
    rm -f "$tf"
    local wall; wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    local cpu; cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$file" "$run" "$wall" "$e" "$rss" "$cpu" \
        "$l0" "$l1" >>"$MEAS"
    log "$name run $run: ${wall}s wall (time: ${e}s), ${cpu}s CPU, peak RSS ${rss} KiB (load ${l0} -> ${l1})"
}

printf 'tool\tfile\trun\twall_s\ttime_e_s\trss_kib\tcpu_s\tload_before\tload_after\n' >"$MEAS"
PACKETS=$("$OUT/pcap_read" "$CORPUS" | sed -n 's/^packets=\([0-9]*\).*/\1/p')

for i in $(seq 1 "$RUNS"); do
    run_timed pcap_read "$CORPUS" "$i" "$OUT/pcap_read" "$CORPUS"
    run_timed mtlscope "$CORPUS" "$i" "$MTLSCOPE" analyze --format json "$CORPUS"
    # the default output: the table for people (sorted, so it keeps one short row per flow)
    run_timed mtlscope_table "$CORPUS" "$i" "$MTLSCOPE" analyze --color never "$CORPUS"
done

# --- tshark --------------------------------------------------------------------------
TSHARK_ARGS=(-n -o tcp.desegment_tcp_streams:TRUE -T fields
    -e tcp.stream -e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport
    -e tls.handshake.type -e tls.handshake.version -e tls.handshake.certificates_length
    -e http.request.method -e http.request.uri)
SLICE="$OUT/slice-${SLICE_MB}mb.pcap"
SLICE_PACKETS=0
rm -f "$SLICE" "$OUT/check.json"
make_slice() {
    # the first packets of the corpus, up to SLICE_MB MB (classic pcap, little-endian)
    local n
    n=$(python3 - "$CORPUS" "$SLICE_MB" <<'PY'
import struct, sys
limit = int(float(sys.argv[2]) * 1e6)
n, off = 0, 24
with open(sys.argv[1], "rb") as f:
    f.seek(24)
    while off < limit:
        h = f.read(16)
        if len(h) < 16:
            break
        incl = struct.unpack("<IIII", h)[2]
        f.seek(incl, 1)
        off += 16 + incl
        n += 1
print(max(n, 1))
PY
)
    editcap -r "$CORPUS" "$SLICE" "1-$n" 2>/dev/null
    SLICE_PACKETS=$n
}
TSHARK_NOTE=""
if [ "$TSHARK_MODE" != skip ]; then
    command -v tshark >/dev/null || die "tshark not found"
    if [ "$FILE_BYTES" -le $(( SLICE_MB * 1000000 * 3 / 2 )) ]; then
        TSHARK_MODE=full
    fi
    if [ "$TSHARK_MODE" = auto ] || [ "$TSHARK_MODE" = slice ]; then
        make_slice
        cat "$SLICE" >/dev/null
        # tshark's fixed start-up cost (a 1-packet file) is not scaled when extrapolating
        editcap -r "$CORPUS" "$OUT/one-packet.pcap" 1 2>/dev/null
        run_timed tshark_startup "$OUT/one-packet.pcap" 1 tshark -r "$OUT/one-packet.pcap" "${TSHARK_ARGS[@]}"
        run_timed tshark_slice "$SLICE" 1 tshark -r "$SLICE" "${TSHARK_ARGS[@]}"
        sw=$(awk -F'\t' '$1=="tshark_slice"{print $4}' "$MEAS" | tail -1)
        s0=$(awk -F'\t' '$1=="tshark_startup"{print $4}' "$MEAS" | tail -1)
        sb=$(stat -c %s "$SLICE")
        est=$(python3 -c "print(round($s0 + max(0.0, $sw - $s0) * $FILE_BYTES / $sb))")
        log "tshark on the ${SLICE_MB} MB slice: ${sw}s -> full file ~${est}s"
        if [ "$TSHARK_MODE" = auto ] && [ "$est" -le "$TSHARK_MAX_S" ]; then
            TSHARK_MODE=full
        else
            TSHARK_MODE=slice
        fi
    fi
    if [ "$TSHARK_MODE" = full ]; then
        run_timed tshark "$CORPUS" 1 tshark -r "$CORPUS" "${TSHARK_ARGS[@]}"
    fi
fi

# --- sanity: what mtlscope reports (on the slice if there is one, untimed) -----------
CHECK_FILE="$CORPUS"; [ -s "$SLICE" ] && CHECK_FILE="$SLICE"
if [ "$(stat -c %s "$CHECK_FILE")" -le 400000000 ]; then
    "$MTLSCOPE" analyze --format json "$CHECK_FILE" >"$OUT/check.json" 2>"$OUT/check.stderr" || true
fi

# --- report --------------------------------------------------------------------------
LOAD_NOTE="$(nproc) cores, load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
TSHARK_VER=$(tshark --version 2>/dev/null | head -1 | sed 's/\.$//')
LIBPCAP_VER=$("$OUT/pcap_read" --version | sed -n 's/^libpcap version //p')
REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
export MEAS FILE_BYTES PACKETS CORPUS SLICE SLICE_PACKETS TSHARK_MODE LOAD_NOTE CPU TSHARK_VER \
    LIBPCAP_VER REV RUNS SIZE_GB FLOWS OUT
python3 - <<'PY'
import csv, json, os, statistics

E = os.environ
rows = list(csv.DictReader(open(E["MEAS"]), delimiter="\t"))
size = int(E["FILE_BYTES"]); packets = int(E["PACKETS"])
corpus = E["CORPUS"]; slice_path = E["SLICE"]
meta = {}
try:
    meta = json.load(open(corpus + ".meta.json"))
except OSError:
    pass

def stats(tool):
    rs = [r for r in rows if r["tool"] == tool]
    if not rs:
        return None
    wall = statistics.median(float(r["wall_s"]) for r in rs)
    cpu = statistics.median(float(r["cpu_s"]) for r in rs)
    rss = max(int(r["rss_kib"]) for r in rs) / 1024
    loads = [float(r["load_before"]) for r in rs] + [float(r["load_after"]) for r in rs]
    return {"wall": wall, "cpu": cpu, "rss": rss, "n": len(rs), "walls": [float(r["wall_s"]) for r in rs],
            "load": max(loads)}

res = {}
for tool in ("pcap_read", "mtlscope", "mtlscope_table"):
    s = stats(tool)
    if s:
        s.update(bytes=size, packets=packets, note="median of %d: %s" % (
            s["n"], ", ".join("%.2f" % w for w in s["walls"])))
        res[tool] = s
ts = stats("tshark")
sl = stats("tshark_slice")
if ts:
    ts.update(bytes=size, packets=packets, note="1 run on the full file")
    res["tshark"] = ts
elif sl:
    sb = os.path.getsize(slice_path); sp = int(E["SLICE_PACKETS"])
    f = size / sb
    st = stats("tshark_startup") or {"wall": 0.0, "cpu": 0.0}
    sl.update(bytes=sb, packets=sp, measured=sl["wall"],
              wall=st["wall"] + max(0.0, sl["wall"] - st["wall"]) * f,
              cpu=st["cpu"] + max(0.0, sl["cpu"] - st["cpu"]) * f,
              note="1 run on the first %.0f MB (%.1f s), extrapolated linearly to the file size "
              "(start-up %.2f s not scaled); RSS is the slice's" % (sb / 1e6, sl["wall"], st["wall"]))
    res["tshark"] = sl

def fmt_row(name, s):
    mbps = s["bytes"] / 1e6 / (s.get("measured") or s["wall"])
    pps = s["packets"] / (s.get("measured") or s["wall"])
    return [name, ("%.3f" if s["wall"] < 10 else "%.1f") % s["wall"], "%.2f" % s["cpu"], "%.1f" % mbps, "%.0f" % pps,
            "%.1f" % s["rss"], s["note"]]

hdr = ["tool", "wall s", "CPU s", "MB/s", "packets/s", "peak RSS MiB", "how"]
NAMES = {"mtlscope": "mtlscope --format json", "mtlscope_table": "mtlscope (table)"}
table = [fmt_row(NAMES.get(n, n), res[n])
         for n in ("pcap_read", "mtlscope", "mtlscope_table", "tshark") if n in res]

lines = []
lines.append("## Benchmark results\n")
src = meta.get("template_source", "?")
if src.startswith("fixtures: "):
    src = "templates from %d fixture files" % len(src[10:].split(","))
lines.append("Corpus: `%s`: %.2f GB, %d packets, %s flows (%s); generated by `bench/gen-corpus.py`"
             % (os.path.basename(corpus), size / 1e9, packets, meta.get("flows", "?"), src))
if meta.get("categories"):
    lines.append("  flow mix: %s." % ", ".join("%s %d" % kv for kv in sorted(meta["categories"].items())))
lines.append("")
lines.append("Machine: %s, %s. mtlscope %s, %s, libpcap %s. File in page cache."
             % (E["CPU"], E["LOAD_NOTE"], E["REV"], E["TSHARK_VER"], E["LIBPCAP_VER"]))
lines.append("")
w = [max(len(str(r[i])) for r in [hdr] + table) for i in range(len(hdr))]
lines.append("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
lines.append("|" + "|".join("-" * (w[i] + 2) for i in range(len(hdr))) + "|")
for r in table:
    lines.append("| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |")
lines.append("")

verdict = []
p, t = res.get("pcap_read"), res.get("tshark")
ok_all = True
scale = "" if abs(size / 1e9 - 2) < 0.2 else " (target is for 2 GB; this file is %.2f GB)" % (size / 1e9)
for key in ("mtlscope", "mtlscope_table"):
    m, name = res.get(key), NAMES[key]
    if m and p:
        r = m["wall"] / p["wall"]
        ok = r <= 1.5
        ok_all &= ok
        verdict.append("| %s / pcap_read wall time | %.2fx | <= 1.5x | %s |" % (name, r, "PASS" if ok else "FAIL"))
    if m and t:
        r = t["wall"] / m["wall"]
        ok = r >= 50
        ok_all &= ok
        verdict.append("| tshark / %s wall time | %.1fx | >= 50x | %s |" % (name, r, "PASS" if ok else "FAIL"))
    if m:
        ok = m["rss"] < 64
        ok_all &= ok
        verdict.append("| %s peak RSS | %.1f MiB | < 64 MiB%s | %s |" % (name, m["rss"], scale, "PASS" if ok else "FAIL"))
lines.append("| check | measured | target | verdict |")
lines.append("|---|---|---|---|")
lines += verdict
lines.append("")
loads = [s["load"] for s in res.values()]
lines.append("Wall times are medians (interleaved pcap_read/mtlscope runs); CPU s is user+sys. "
             "Highest 1-minute load average seen around a run: %.2f on %s cores (other work shares "
             "this machine)." % (max(loads) if loads else 0, os.cpu_count()))
chk = os.path.join(E["OUT"], "check.json")
if os.path.exists(chk):
    try:
        doc = json.load(open(chk))
        from collections import Counter
        c = Counter(f.get("verdict") for f in doc.get("flows", []))
        lines.append("")
        lines.append("Sanity check (untimed, `%s`): mtlscope reported %d flows: %s."
                     % (os.path.basename((doc.get("inputs") or [{}])[0].get("path") or "?"),
                        len(doc.get("flows", [])), ", ".join("%s %d" % kv for kv in c.most_common())))
    except Exception as e:  # the report format is not this script's business
        lines.append("")
        lines.append("Sanity check: could not read mtlscope's JSON (%s)." % e)
lines.append("")
lines.append("Overall: %s" % ("all targets met" if ok_all else "targets MISSED"))
text = "\n".join(lines) + "\n"
open(os.path.join(E["OUT"], "results.md"), "w").write(text)
print(text)
PY
log "results written to $OUT/results.md"
