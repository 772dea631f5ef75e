#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine, as root: installs what is missing,
# builds the release binary and runs `xgate demo` (a gateway with two LAN
# hosts, a WAN server, masquerade and a port forward, all in network
# namespaces it creates and deletes). Extra arguments go to `xgate demo`
# (default: --duration 20; Ctrl-C stops it earlier).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-debian.sh

cargo build --release --locked --bin xgate
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--duration 20)
exec "${CARGO_TARGET_DIR:-target}/release/xgate" demo "${args[@]}"
