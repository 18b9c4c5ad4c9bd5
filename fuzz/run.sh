#!/usr/bin/env bash
# Runs every fuzz target of crossgate, one after the other, from the seed corpus (see fuzz/README.md).
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET]   each target for that long (default 60)
#   bash fuzz/run.sh --ci                   the bounded mode: each target for a few seconds
#
# Stable toolchain only: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes. Installs
# cargo-fuzz from crates.io when absent. Runs every target even after one fails, then exits non-zero if
# any did, naming the inputs that made them fail (kept in fuzz/artifacts/<target>/).
set -euo pipefail

cd "$(dirname "$0")/.."

seconds=60
# Options for both `cargo fuzz build` and `cargo fuzz run` (different ones would make `run` rebuild).
flags=(--fuzz-dir fuzz)
if [[ "${1:-}" == "--ci" ]]; then
    seconds=8
    # Built unoptimised and without AddressSanitizer: half the build time of the full mode on two cores,
    # and still several thousand runs per target in the time given (the code is safe Rust; the checks
    # are the assertions, overflow checks included).
    flags+=(--dev --sanitizer none)
elif [[ -n "${1:-}" ]]; then
    [[ "$1" =~ ^[0-9]+$ ]] || { echo "usage: bash fuzz/run.sh [SECONDS_PER_TARGET | --ci]" >&2; exit 2; }
    seconds=$1
fi

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

python3 fuzz/seed.py >/dev/null
started=$(date +%s)
cargo fuzz build "${flags[@]}"
echo "build: $(( $(date +%s) - started ))s"

failed=()
for target in $(cargo fuzz list --fuzz-dir fuzz); do
    echo "=== $target: ${seconds}s"
    # -rss_limit_mb: a parser that balloons is a finding too; -timeout: so is one input taking seconds.
    if ! cargo fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>"fuzz/target/$target.log"; then
        tail -n 60 "fuzz/target/$target.log" >&2
        failed+=("$target")
    else
        grep -E '^stat::(number_of_executed_units|new_units_added)' "fuzz/target/$target.log" | tr '\n' ' '
        echo
    fi
done
echo "total: $(( $(date +%s) - started ))s"

if (( ${#failed[@]} )); then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/; replay with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET INPUT)" >&2
    exit 1
fi
echo "every target ran without a failure"
