#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), one after another, and prints
# executions and time per target. Needs a nightly toolchain; installs cargo-fuzz if missing.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Seeds come from the fixtures (fuzz/seed.py -> fuzz/corpus/, not committed). A crash stops
# that target and leaves its input in fuzz/artifacts/TARGET/; copy it to
# tests/data/fuzz-regressions/TARGET/ (named after what it found) so tests/fuzz_regressions.rs
# replays it forever. FUZZ_JOBS (default 1) runs that many targets at once.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
python3 fuzz/seed.py
# Release build with debug assertions and overflow checks (FUZZ_BUILD=--dev: unoptimised, for
# a quick smoke run); Rust needs no address sanitizer.
build=(-s none -a)
[ -z "${FUZZ_BUILD:-}" ] || build+=("$FUZZ_BUILD")
cargo +nightly fuzz build "${build[@]}"
mkdir -p fuzz/logs
run() {
  local t="$1"
  local log="fuzz/logs/$t.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  local start=$SECONDS
  local rc=0
  # -rss_limit_mb: an input that makes the engine allocate by an unvalidated length is a bug.
  cargo +nightly fuzz run "${build[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
  local status=ok
  [ "$rc" -eq 0 ] || status="FAILED (exit $rc, see $log and fuzz/artifacts/$t/)"
  printf '%-18s %12s execs %6ss  %s\n' "$t" "$execs" "$((SECONDS - start))" "$status"
  return "$rc"
}
failed=0
jobs="${FUZZ_JOBS:-1}"
for t in "${targets[@]}"; do
  if [ "$jobs" -gt 1 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
    run "$t" &
  else
    run "$t" || failed=1
  fi
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
exit "$failed"
