#!/usr/bin/env bash
# mtlscope live: throughput of the live pipeline (source thread -> bounded channel -> engine ->
# JSON lines) on the benchmark capture, and memory over a long replay.
# Usage: bench/live.sh               (from the repository root, or anywhere)
# Env:   BENCH_CORPUS=path   the capture (default: the newest bench/out/corpus-*.pcap; make one
#                            with bench/run.sh or bench/gen-corpus.py)
#        BENCH_MTLSCOPE=path benchmark this binary (default: target/release/mtlscope, built)
#        BENCH_RUNS (3)      throughput runs (the median is reported)
#        BENCH_LOOPS (4)     passes of the capture in the long replay (0: skip it)
#        BENCH_SAMPLE_S (2)  seconds between RSS samples in the long replay
# Writes bench/out/live-*.txt and prints a summary. A file replay never drops (the reader
# waits for the engine); a live capture that falls behind drops and counts at the channel.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT="$BENCH_DIR/out"
RUNS=${BENCH_RUNS:-3}
LOOPS=${BENCH_LOOPS:-4}
SAMPLE_S=${BENCH_SAMPLE_S:-2}
mkdir -p "$OUT"
log() { printf '[bench-live] %s\n' "$*" >&2; }
die() { printf '[bench-live] error: %s\n' "$*" >&2; exit 1; }

CORPUS=${BENCH_CORPUS:-$(ls -t "$OUT"/corpus-*.pcap 2>/dev/null | head -1 || true)}
[ -n "$CORPUS" ] && [ -s "$CORPUS" ] || die "no capture: set BENCH_CORPUS or run bench/run.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install -y time)"
if [ -n "${BENCH_MTLSCOPE:-}" ]; then
    MTLSCOPE=$BENCH_MTLSCOPE
else
    log "building mtlscope (release)"
    (cd "$ROOT" && cargo build --release --quiet)
    MTLSCOPE="$ROOT/target/release/mtlscope"
fi
BYTES=$(stat -c %s "$CORPUS")
log "corpus: $CORPUS ($BYTES bytes); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$CORPUS" >/dev/null   # from the page cache, like bench/run.sh

# json FIELD... : fields of the final summary line (stdin), tab-separated
summary_fields() {
    python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
print(s["packets"], s["drops"]["kernel"], s["drops"]["channel"], s["flows"]["finished"], sep="\t")'
}

# --- throughput ---------------------------------------------------------------------------
RESULTS="$OUT/live-throughput.txt"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do   # BENCH_RUNS=0 skips to the long replay
    tf=$(mktemp)
    t0=$(date +%s%N)
    # Every flow line is written (decided, updated, finished) and read by tail: the JSON is
    # part of the work measured; only the final summary line is kept.
    last=$(/usr/bin/time -f '%M %U %S' -o "$tf" \
        "$MTLSCOPE" live -r "$CORPUS" --speed max --format jsonl --summary-interval 0 | tail -n 1)
    t1=$(date +%s%N)
    read -r rss_kb user sys <"$tf"; rm -f "$tf"
    IFS=$'\t' read -r packets kdrop cdrop flows < <(printf '%s' "$last" | summary_fields)
    wall=$(python3 -c "print(($t1 - $t0) / 1e9)")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$wall" "$user" "$sys" "$rss_kb" \
        "$packets" "$kdrop" "$cdrop" "$flows" >>"$RESULTS"
    log "run $run: ${wall}s wall, ${user}s user, ${sys}s sys, $((rss_kb / 1024)) MiB peak RSS, $packets packets, drops $kdrop kernel / $cdrop channel, $flows flows"
done
[ "$RUNS" -gt 0 ] && python3 - "$RESULTS" "$BYTES" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
size = int(sys.argv[2])
wall = statistics.median(float(r[1]) for r in rows)
cpu = statistics.median(float(r[2]) + float(r[3]) for r in rows)
rss = max(int(r[4]) for r in rows) / 1024
packets = int(rows[0][5])
drops = sum(int(r[6]) + int(r[7]) for r in rows)
print(f"live -r (median of {len(rows)}): {wall:.2f} s wall, {cpu:.2f} s CPU, "
      f"{packets / wall / 1e6:.2f} M packets/s, {size / wall / 1e9:.2f} GB/s, "
      f"peak RSS {rss:.1f} MiB, {packets} packets, {rows[0][8]} flows, drops {drops}")
EOF

# --- long replay: RSS over time -----------------------------------------------------------
[ "$LOOPS" -gt 0 ] || exit 0
SAMPLES="$OUT/live-rss.txt"
log "long replay: $LOOPS passes through one process (bench/loop-pcap.py | live -r -)"
fifo=$(mktemp -u); mkfifo "$fifo"
python3 "$BENCH_DIR/loop-pcap.py" "$CORPUS" "$LOOPS" >"$fifo" 2>"$OUT/live-loop.stderr" &
feeder=$!
"$MTLSCOPE" live -r - --speed max --format jsonl --summary-interval 5s <"$fifo" \
    | grep '"type":"summary"' >"$OUT/live-loop-summaries.jsonl" &
sleep 0.2
pid=$(pgrep -n -x mtlscope -P $$ || true)
[ -n "$pid" ] || pid=$(pgrep -n -f "$MTLSCOPE live -r -")
start=$(date +%s)
echo -e "elapsed_s\trss_mib\tpasses_written" >"$SAMPLES"
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || true)
    passes=$(grep -c written "$OUT/live-loop.stderr" 2>/dev/null || true)
    printf '%s\t%s\t%s\n' "$(( $(date +%s) - start ))" "${rss:-0}" "${passes:-0}" >>"$SAMPLES"
    sleep "$SAMPLE_S"
done
wait "$feeder" || true
wait || true
rm -f "$fifo"
python3 - "$SAMPLES" "$OUT/live-loop-summaries.jsonl" "$LOOPS" <<'EOF'
import json, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n")[1:] if l]
rss = [float(r[1]) for r in rows if float(r[1]) > 0]
final = [json.loads(l) for l in open(sys.argv[2]) if '"final":true' in l]
s = final[-1] if final else {}
print(f"long replay ({sys.argv[3]} passes): {len(rss)} RSS samples, "
      f"min {min(rss):.1f} / median {sorted(rss)[len(rss) // 2]:.1f} / max {max(rss):.1f} MiB; "
      f"{s.get('packets')} packets, {s.get('flows', {}).get('finished')} flows, "
      f"drops {s.get('drops')}, {s.get('elapsed_s')} s")
by_pass = {}
for r in rows:
    by_pass.setdefault(r[2], []).append(float(r[1]))
for p, v in sorted(by_pass.items()):
    print(f"  {p} of {sys.argv[3]} passes fed: RSS {min(v):.1f}..{max(v):.1f} MiB "
          f"({len(v)} samples)")
EOF
