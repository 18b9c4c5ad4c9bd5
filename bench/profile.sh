#!/usr/bin/env bash
# Where crossgate's CPU time goes: the same gateway, config and static upstream as bench/compare.sh,
# under crossgate-load, sampled with `perf record -e cpu-clock` (a software clock, so it works in VMs
# without hardware counters) for the measured part of the run. Prints the functions that use the most
# CPU themselves, then the same time summed by area (bench/perf_areas.py), and keeps perf.data.
#
#   bash bench/profile.sh [--duration SECONDS] [--connections N] [--dialect tc3|v2]
#                         [--instance-prefix ins-|i-] [--rate N] [--inclusive] [--out DIR]
#
# `--rate N` sends N requests per second instead of as fast as answers come (compare.sh's half-peak
# runs): where the time goes when requests arrive one by one.
# `--inclusive` records call stacks too (DWARF unwinding, fewer samples) and also prints the share of
# crossgate's own functions with everything they call: where the request path spends its time.
# `--instance-prefix i-` with `--dialect tc3` profiles the translation to ECS. perf comes from Debian's
# `linux-perf` package (installed with apt-get if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=15
connections=64
dialect=tc3
prefix=ins-
out=target/profile
inclusive=0
keep=0
# shellcheck source=bench/options.sh
. bench/options.sh
load_options "$@"
for option in "${other[@]}"; do
    case "$option" in
        --inclusive) inclusive=1 ;;
        *) echo "profile.sh: unknown option $option" >&2; exit 2 ;;
    esac
done

script=profile.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
install_if_absent perf linux-perf
mkdir -p "$out"

start_upstream
start_gateway
warmup=2
echo "== crossgate-load: $dialect, $connections connections, ${duration} s after ${warmup} s warm-up; perf samples crossgate (pid $gateway_pid)"
"$load_bin" --target "http://127.0.0.1:$gateway_port" --dialect "$dialect" --instance-prefix "$prefix" \
    --connections "$connections" --warmup "$warmup" --duration "$duration" "${rate[@]}" --label profile \
    > "$tmp/logs/profile.out" &
load_pid=$!
started+=("$load_pid")
sleep "$warmup"
if [ "$inclusive" = 1 ]; then sampling=(-F 499 --call-graph dwarf,16384); else sampling=(-F 1999); fi
perf record -q -e cpu-clock "${sampling[@]}" -p "$gateway_pid" -o "$out/perf.data" -- sleep "$duration" 2> "$tmp/logs/perf.err" \
    || { cat "$tmp/logs/perf.err" >&2; exit 1; }
wait "$load_pid" || true
grep -v '^RESULT ' "$tmp/logs/profile.out" || true
stop "$gateway_pid"

report="$out/report.txt"
perf report -i "$out/perf.data" --stdio --no-children --sort dso,symbol -F overhead,dso,sym -g none 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | sed 's/ *$//' | sort -rn > "$report" || true
echo
echo "== the 40 functions with the most CPU time of their own (every one in $report)"
head -40 "$report" | cut -c1-160
echo
echo "== the same time by area"
python3 bench/perf_areas.py < "$report"
if [ "$inclusive" = 1 ]; then
    echo
    echo "== crossgate's own functions with everything they call (over 1%)"
    perf report -i "$out/perf.data" --stdio --children --sort symbol -F overhead_children,sym -g none 2>/dev/null \
        | grep -v '^#' | grep 'crossgate::' | sed 's/ *$//' | awk '$1 + 0 >= 1' | sort -rn | head -40 | cut -c1-160
fi
