#!/usr/bin/env bash
# Instructions per request, for crossgate, the protocol floor (`examples/passthrough.rs --protocol`:
# crossgate's protocol work on the bare framework, always to CVM) and the hyper pass-through: each runs
# under callgrind (valgrind) while crossgate-load sends it the same signed requests as bench/compare.sh,
# against the same static upstream. Counted instructions do not move with the machine's load as times
# do: run before and after a change, they show what it saved even where timed runs, which scatter by a
# third on a shared machine, cannot.
#
#   bash bench/instructions.sh [--duration SECONDS] [--connections N] [--dialect tc3|v2]
#                              [--instance-prefix ins-|i-] [--rate N] [--out DIR]
#
# Prints per request: crossgate's instructions, SHA-256's share of them (from a second run that counts
# inside `sha2::sha256::compress256` alone: valgrind runs sha2's portable code, where the machine uses
# its SHA instructions, so the share is far larger here than in CPU time), the rest; the same for the
# protocol floor (crossgate's rest minus the floor's is what the audited door costs besides the protocol
# work); the pass-through's; then each one's atomic operations per request (callgrind's `--collect-bus`:
# instructions with a lock prefix, as reference counts, locks and wake-ups use them). Counted, an atomic
# costs what any instruction does; timed, each one whose cache line the other serving thread touched
# last costs some 50 to 130 ns on a two-CPU machine. The callgrind files stay in --out
# (target/instructions) for `callgrind_annotate --inclusive=yes FILE` (`--show=Ge` for the atomics).
# valgrind comes from the system's package (installed with apt-get if absent). About two minutes with the
# defaults (8 connections, 10 s per run), build excluded.
#
# `--rate N` sends N requests per second (a few hundred at most: under valgrind crossgate is some fifty
# times slower) instead of as fast as answers come: what a request costs when requests arrive one by
# one.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
connections=8
dialect=tc3
prefix=ins-
out=target/instructions
keep=0
# shellcheck source=bench/options.sh
. bench/options.sh
load_options "$@"
[ ${#other[@]} -eq 0 ] || { echo "instructions.sh: unknown option ${other[0]}" >&2; exit 2; }

script=instructions.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
install_if_absent valgrind valgrind
mkdir -p "$out"
start_upstream

# counted NAME PORT CALLGRIND_FLAGS -- COMMAND...: COMMAND under callgrind, listening on PORT; counting is on
# only while crossgate-load sends for `duration` seconds, after 3 s of warm-up. Sets `requests` (those
# sent while counting) and `total` (instructions counted); the output stays in $out/NAME.callgrind.
counted() {
    local name=$1 port=$2 flags=() pid
    shift 2
    while [ "$1" != -- ]; do flags+=("$1"); shift; done
    shift
    rm -f "$out/$name.callgrind"
    valgrind --tool=callgrind --instr-atstart=no "${flags[@]}" --callgrind-out-file="$out/$name.callgrind" \
        "$@" > "$tmp/logs/$name.out" 2>&1 &
    pid=$!
    started+=("$pid")
    # Under valgrind a start takes seconds, not milliseconds.
    wait_listening "$pid" "$port" "$name under valgrind" 120
    local load=("$load_bin" --target "http://127.0.0.1:$port" --dialect "$dialect" --instance-prefix "$prefix"
        --connections "$connections" --timeout 30 --warmup 0 "${rate[@]}")
    "${load[@]}" --duration 3 --label "$name-warm-up" > /dev/null || true
    callgrind_control --instr=on "$pid" > /dev/null 2>&1
    "${load[@]}" --duration "$duration" --label "$name" > "$tmp/logs/$name.load" || true
    callgrind_control --instr=off "$pid" > /dev/null 2>&1
    # The counts are written when the process exits: give it the time valgrind needs.
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    requests=$(grep '^RESULT ' "$tmp/logs/$name.load" | cut -d' ' -f2- \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["attempted"])' 2>/dev/null || echo 0)
    total=$(awk '/^totals:/ { print $2 }' "$out/$name.callgrind" 2>/dev/null)
    # With --collect-bus=yes, the second event: instructions with a lock prefix (atomic read-modify-writes).
    atomics=$(awk '/^totals:/ { print $3 }' "$out/$name.callgrind" 2>/dev/null)
    [ -n "$total" ] && [ "$requests" -gt 0 ] || { echo "$script: $name counted nothing; see $tmp/logs" >&2; keep=1; exit 1; }
    echo "  $name: $requests requests, $total instructions${atomics:+, $atomics atomic}"
}

# per_request [COUNT]: COUNT (the instructions unless given) per request of the last counted run.
per_request() { awk -v t="${1:-$total}" -v n="$requests" 'BEGIN { printf "%.0f", t / n }'; }

echo "== $dialect requests ($prefix), $connections connections, ${duration} s counted after 3 s of warm-up"
rm -f "$tmp/audit.jsonl"*
counted crossgate "$gateway_port" --collect-bus=yes -- "$gateway_bin" serve --config "$tmp/crossgate.toml"
crossgate=$(per_request)
crossgate_atomics=$(per_request "$atomics")
rm -f "$tmp/audit.jsonl"*
counted crossgate-sha256 "$gateway_port" --toggle-collect='sha2::sha256::compress256' -- \
    "$gateway_bin" serve --config "$tmp/crossgate.toml"
sha256=$(per_request)
floor_port=$(free_port)
floor_command=("$passthrough_bin" "127.0.0.1:$floor_port" "127.0.0.1:$cvm_port" --protocol)
counted protocol "$floor_port" -- "${floor_command[@]}"
floor=$(per_request)
counted protocol-sha256 "$floor_port" --toggle-collect='sha2::sha256::compress256' -- "${floor_command[@]}"
floor_sha256=$(per_request)
pass_port=$(free_port)
counted passthrough "$pass_port" --collect-bus=yes -- "$passthrough_bin" "127.0.0.1:$pass_port" "127.0.0.1:$cvm_port"
passthrough=$(per_request)
passthrough_atomics=$(per_request "$atomics")

echo
echo "instructions per request:"
echo "  crossgate           $crossgate"
echo "    SHA-256           $sha256"
echo "    the rest          $((crossgate - sha256))"
echo "  protocol floor      $floor$([ "$prefix" = ins- ] || echo ' (to CVM, not translating to ECS as crossgate is here)')"
echo "    SHA-256           $floor_sha256"
echo "    the rest          $((floor - floor_sha256))"
echo "  hyper pass-through  $passthrough"
echo "atomic operations per request (lock-prefixed: reference counts, locks, wake-ups; each one a"
echo "cache line the other serving thread may hold):"
echo "  crossgate           $crossgate_atomics"
echo "  hyper pass-through  $passthrough_atomics"
echo "(callgrind files in $out)"
