#!/usr/bin/env bash
# The whole test suite: set-up, lint, unit + integration tests, and the public-corpus
# conformance report when ../shared/corpus exists beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
# Fuzz targets (fuzz/, a workspace of its own): built so they cannot rot. With a nightly
# toolchain and cargo-fuzz, an unoptimised build and a few seconds of fuzzing per target;
# otherwise a stable `cargo check` of the same code. Long runs: scripts/fuzz.sh SECONDS.
# FUZZ_SMOKE_SECONDS=0 skips the smoke run (the stable check still builds the targets).
if [ "${FUZZ_SMOKE_SECONDS:-3}" != 0 ] && cargo +nightly --version >/dev/null 2>&1 \
    && cargo fuzz --version >/dev/null 2>&1; then
  FUZZ_BUILD=--dev ./scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-3}"
else
  cargo check --locked --manifest-path fuzz/Cargo.toml --bins
fi
if [ -d ../shared/corpus ]; then
  cargo build --release --locked
  python3 scripts/conformance.py --corpus ../shared/corpus --bin target/release/mtlscope --min-agreement "${MIN_AGREEMENT:-0.85}"
else
  echo "conformance: skipped (../shared/corpus not present)"
fi
