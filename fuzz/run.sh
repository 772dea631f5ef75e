#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 60) from seeds made by
# seeds.py plus the corpus kept in fuzz/corpus/<target> (grown by earlier
# runs; not committed) and the regression inputs in fuzz/regressions/
# (crashes found and fixed: committed, replayed by every run).
#   fuzz/run.sh [SECS] [TARGET...]
# Needs cargo-fuzz (installed here from crates.io if missing) and the
# nightly toolchain (rust-toolchain.toml in this folder). Built without a
# sanitizer (-s none): the fuzzed code is safe Rust (the unsafe I/O is not
# reached), and AddressSanitizer made the pipeline target 9x slower; a
# panic or failed assertion is the finding.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(pipeline packet pcap iptables nft config ctl_request)
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (cargo-fuzz needs one; rustup toolchain install nightly)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
python3 seeds.py seeds >/dev/null
build_log=$(mktemp)
if ! cargo fuzz build -O -s none >"$build_log" 2>&1; then
    tail -n 40 "$build_log"
    echo "fuzz: building the targets failed"
    exit 1
fi
rm -f "$build_log"
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "regressions/$t"
    # Known crashes first: each must pass now.
    for f in regressions/"$t"/*; do
        [ -e "$f" ] || continue
        cargo fuzz run -O -s none "$t" "$f" -- -runs=1 >/dev/null 2>&1 || {
            echo "fuzz: $t: regression input $f fails"; exit 1; }
    done
    log=$(mktemp)
    if ! cargo fuzz run -O -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $t FAILED (the input is under fuzz/artifacts/$t/; once fixed, keep it in fuzz/regressions/$t/)"
        rm -f "$log"
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    echo "fuzz: $t: ${secs}s, ${execs} executions, ${cov}, no crash"
    rm -f "$log"
done
