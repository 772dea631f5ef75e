#!/usr/bin/env bash
# Runs DPDK's rte_lpm benchmark (Debian's dpdk-test, lpm_perf_autotest: 1M
# routes with a real prefix-length mix, random lookups) and xgate's `lpm`
# criterion bench back to back, so the two are compared on one machine in
# one sitting. Needs root (apt). Prints DPDK's cycles per lookup with the
# TSC rate it measured, then criterion's ns per lookup.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v dpdk-test >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpdk dpdk-dev
fi

echo "== DPDK rte_lpm (dpdk-test lpm_perf_autotest); cycles are TSC cycles at:"
grep -m1 "cpu MHz" /proc/cpuinfo
prefix="xgate-lpm-$$"
echo lpm_perf_autotest | dpdk-test --no-huge -m 1024 --no-pci --file-prefix "$prefix" -l 0 2>&1 |
    grep -E "TSC|Average LPM|BULK|LPM Lookup|Test OK|Test Failed|Unique|No. routes|Lookup" || true

echo "== xgate lpm (cargo bench --bench lpm)"
cargo bench --bench lpm -- --noplot 2>&1 | grep -E "^(lpm|fib)|time:|build|memory|prefixes" || true
