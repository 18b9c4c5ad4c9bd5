#!/usr/bin/env bash
# Before and after: two crossgate binaries under the same load, one after the other, in alternating
# order for `--rounds` pairs, against the same static upstream and config as bench/compare.sh. Prints
# each run's throughput, p50 and p99, and CPU per request (utime+stime from /proc, and utime alone), then
# both binaries' means and the after/before ratio of CPU per request in every pair. A change worth a few
# percent hides in the scatter between separate compare.sh runs on a shared machine; paired runs, each
# against its neighbour, show it.
#
#   bash bench/ab.sh BEFORE AFTER [--rounds N] [--duration SECONDS] [--connections N]
#                    [--dialect tc3|v2] [--instance-prefix ins-|i-] [--rate N]
#
# BEFORE and AFTER are crossgate binaries, e.g. a build of the previous commit from a worktree:
#   git worktree add ../before HEAD~1 && (cd ../before && cargo build --release --bin crossgate)
#   bash bench/ab.sh ../before/target/release/crossgate target/release/crossgate
# Defaults: 4 rounds of 10 s per binary after 2 s of warm-up, 64 connections (under 2 minutes, build
# excluded). `--rate N` sends N requests per second instead of as fast as answers come.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
connections=64
dialect=tc3
prefix=ins-
out=target/ab
keep=0
rounds=4
# shellcheck source=bench/options.sh
. bench/options.sh
load_options "$@"
binaries=()
for ((i = 0; i < ${#other[@]}; i++)); do
    case "${other[$i]}" in
        --rounds) rounds=${other[$((i + 1))]:-}; i=$((i + 1)) ;;
        -*) echo "ab.sh: unknown option ${other[$i]}" >&2; exit 2 ;;
        *) binaries+=("${other[$i]}") ;;
    esac
done
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 ]] || { echo "ab.sh: '$rounds' is not a whole number of at least 1" >&2; exit 2; }
[ ${#binaries[@]} -eq 2 ] || { echo "ab.sh: give two crossgate binaries, BEFORE and AFTER (--help)" >&2; exit 2; }
for binary in "${binaries[@]}"; do
    [ -x "$binary" ] || { echo "ab.sh: $binary is not an executable" >&2; exit 2; }
done
before=$(realpath "${binaries[0]}")
after=$(realpath "${binaries[1]}")

script=ab.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
mkdir -p "$out"
start_upstream
results="$out/results.tsv"
: > "$results"

# measure LABEL BINARY: one run of BINARY, its row appended to $results.
measure() {
    local label=$1 row
    gateway_bin=$2
    start_gateway
    local load=("$load_bin" --target "http://127.0.0.1:$gateway_port" --dialect "$dialect" --instance-prefix "$prefix"
        --connections "$connections" --warmup 0)
    "${load[@]}" --label warm-up --duration 2 > /dev/null
    cpu_mark "$gateway_pid"
    "${load[@]}" --label "$label" --duration "$duration" "${rate[@]}" > "$tmp/logs/$label.load"
    result=$(grep '^RESULT ' "$tmp/logs/$label.load" | tail -1 | cut -d' ' -f2-)
    [ -n "$result" ] || { echo "$script: $label gave no RESULT line" >&2; keep=1; exit 1; }
    cpu_since "$gateway_pid"
    stop "$gateway_pid"
    row=("$label" "$(field "$result" throughput)" "$(field "$result" latency_us/p50)" \
        "$(field "$result" latency_us/p99)" "$(field "$result" errors)" "$cpu" "$user")
    printf '%-7s %9.0f req/s  p50 %6d us  p99 %6d us  errors %d  cpu %6s us  user %6s us\n' "${row[@]}"
    (IFS=$'\t'; echo "${row[*]}") >> "$results"
}

echo "== before: $before"
echo "== after:  $after"
echo "== $rounds rounds, $dialect ($prefix), $connections connections, $duration s per run${rate[*]:+, ${rate[*]}}"
for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then
        measure before "$before"
        measure after "$after"
    else
        measure after "$after"
        measure before "$before"
    fi
done

python3 - "$results" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = {"before": [], "after": []}
for label, throughput, p50, p99, errors, cpu, user in rows:
    runs[label].append((float(throughput), float(cpu), float(user), int(errors)))
mean = lambda xs: sum(xs) / len(xs)
print()
for label in ("before", "after"):
    r = runs[label]
    print("%-7s mean %9.0f req/s  cpu %6.2f us  user %6.2f us  errors %d"
          % (label, mean([x[0] for x in r]), mean([x[1] for x in r]), mean([x[2] for x in r]), sum(x[3] for x in r)))
ratios = [a[1] / b[1] for b, a in zip(runs["before"], runs["after"])]
print("CPU per request after/before, pair by pair: " + " ".join("%.3f" % x for x in ratios))
print("after/before CPU per request: %.3f (lower in %d of %d pairs)"
      % (mean(ratios), sum(x < 1 for x in ratios), len(ratios)))
PY
