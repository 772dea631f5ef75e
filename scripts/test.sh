#!/usr/bin/env bash
# The whole test suite: set-up, formatting and lint gates, a short run of
# every fuzz target, then every test of the workspace (unit, property,
# replay golden, RIB and capture robustness, live in network namespaces).
# Run as root on Debian; README.md names this command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-debian.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Every fuzz target for a short time, after its kept regression inputs
# (fuzz/run.sh; FUZZ_SECS=0 skips, a longer run: fuzz/run.sh 3600).
if [ "${FUZZ_SECS:-20}" != 0 ]; then
    ./fuzz/run.sh "${FUZZ_SECS:-20}"
fi
cargo test --workspace --locked
