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
if [ -d ../shared/corpus ]; then
  cargo build --release --locked
  python3 scripts/conformance.py --corpus ../shared/corpus --bin target/release/mtlscope --min-agreement "${MIN_AGREEMENT:-0.85}"
else
  echo "conformance: skipped (../shared/corpus not present)"
fi
