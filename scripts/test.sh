#!/usr/bin/env bash
# The whole test suite: set-up, formatting and lint gates, then every test of
# the workspace (unit, property, replay golden, RIB and capture robustness).
# Run as root on Debian; README.md names this command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-debian.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
