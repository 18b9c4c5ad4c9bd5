#!/usr/bin/env bash
# crossgate against nginx as a plain reverse proxy, on this machine, against the same static upstream,
# in one run (see BENCHMARKS.md for what each figure means):
#
#   1. floor:              the load generator straight to the upstream;
#   2. nginx:              through nginx as a plain reverse proxy;
#      hyper:              through examples/passthrough.rs, hyper and tokio alone (the framework's floor);
#      protocol:           through examples/passthrough.rs --protocol: the framework and crossgate's
#                          protocol work alone (detect, verify, decode, encode, re-sign, answer), no
#                          audit, replay check, limits or layers: what a gateway on these parts cannot
#                          do with less;
#   3. crossgate-tc3-cvm:  through crossgate, same dialect (TC3 caller, CVM upstream);
#   4. crossgate-tc3-ecs:  through crossgate translating TC3 to ECS (ACS3), and
#      crossgate-v2-cvm:   legacy v2 (HmacSHA256) to API 3.0 (TC3);
#   5. half-floor / half-nginx / half-hyper / half-crossgate: the floor, nginx, the hyper pass-through and
#      crossgate-tc3-cvm again at a fixed rate of half of crossgate's peak, for the latency crossgate
#      adds (and what a plain reverse proxy and the framework alone add at that rate);
#   6. rss-1000:           crossgate with 1,000 client connections, for its peak memory (and hyper-1000,
#                          the pass-through's);
#   7. scale-1, -2, -3:    1, 2 and 3 replicas behind nginx, sharing their replay keys on Redis
#      (redis-server, installed by the script if absent), printed as ratios to one replica.
#
# For every crossgate run, a fresh gateway (release build, audit on, to a file) and its CPU time per
# request (utime+stime from /proc/PID/stat, before and after; utime alone as its own code's share) and
# peak RSS (VmHWM). The last line is `ratio crossgate-translating/nginx: X`: the slower translating
# run's throughput over nginx's.
#
#   bash bench/compare.sh [--duration SECONDS] [--connections N] [--warmup SECONDS]
#                         [--rss-connections N] [--split-cpus] [--keep]
#
# `--split-cpus` runs the proxy under test (nginx, the pass-through, crossgate, the replicas and their
# nginx) on the upper half of the CPUs and the load generator, the upstream and Redis on the rest
# (taskset; 2 CPUs or more): each proxy then has CPUs of its own instead of competing for them with
# what drives it, and throughput is what half the machine serves.
#
# Defaults (15 s per run, 64 connections) finish in under five minutes on 2 cores, build excluded.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=15
connections=64
warmup=2
rss_connections=1000
split=0
keep=0
# shellcheck source=bench/options.sh
. bench/options.sh
usage() { script_help; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=${2:?--duration SECONDS}; shift 2 ;;
        --connections) connections=${2:?--connections N}; shift 2 ;;
        --warmup) warmup=${2:?--warmup SECONDS}; shift 2 ;;
        --rss-connections) rss_connections=${2:?--rss-connections N}; shift 2 ;;
        --split-cpus) split=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
done
for n in "$duration" "$connections" "$warmup" "$rss_connections"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "compare.sh: '$n' is not a whole number" >&2; exit 2; }
done
[ "$duration" -ge 1 ] && [ "$connections" -ge 1 ] && [ "$rss_connections" -ge 1 ] \
    || { echo "compare.sh: --duration, --connections and --rss-connections must be at least 1" >&2; exit 2; }
[ "$split" = 0 ] || split_cpus

script=compare.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
# With the CPUs split, nginx gets a worker per CPU of its side (`auto` would count them all).
[ "$proxy_cpu_count" = 0 ] || sed -i "s/^worker_processes auto;/worker_processes $proxy_cpu_count;/" "$tmp/proxy.conf"
# The scale run's ports, taken now: later, the runs' client connections may hold ports in TIME_WAIT.
scale_ports=("$(free_port)" "$(free_port)" "$(free_port)")
scale_port=$(free_port)
redis_port=$(free_port)

# === runs ===

rows="$tmp/rows.tsv"
: > "$rows"

# run_load LABEL LOAD_FLAGS...: one run of the load generator; prints its lines and sets `result`.
run_load() {
    local label=$1; shift
    echo "== $label"
    "${driver_side[@]}" "$load_bin" --label "$label" --duration "$duration" --warmup "$warmup" "$@" > "$tmp/logs/$label.out" || true
    grep -v '^RESULT ' "$tmp/logs/$label.out" || true
    result=$(grep '^RESULT ' "$tmp/logs/$label.out" | tail -1 | cut -d' ' -f2-)
    [ -n "$result" ] || { echo "$script: $label gave no RESULT line" >&2; keep=1; exit 1; }
}

# add_row CPU_US_PER_REQUEST USER_US_PER_REQUEST PEAK_RSS_MIB: the last run's row of the summary.
add_row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(field "$result" label)" \
        "$(field "$result" connections)" "$(field "$result" throughput)" "$(field "$result" latency_us/p50)" \
        "$(field "$result" latency_us/p90)" "$(field "$result" latency_us/p99)" "$(field "$result" latency_us/p99.9)" \
        "$(field "$result" errors)" "$(field "$result" attempted)" "$1" "$2" "$3" >> "$rows"
}

# column_of LABEL N: column N of a run's row (3 throughput, 4 p50, 6 p99, 10 CPU, 11 user CPU, 12 RSS).
column_of() { awk -F'\t' -v l="$1" -v c="$2" '$1 == l { print $c }' "$rows"; }

# gateway_run LABEL LOAD_FLAGS...: a fresh crossgate, one load run, its CPU per request and peak RSS.
gateway_run() {
    local label=$1; shift
    start_gateway
    local pid=$gateway_pid rss
    cpu_mark "$pid"
    run_load "$label" --target "http://127.0.0.1:$gateway_port" "$@"
    cpu_since "$pid"
    rss=$(peak_rss_mib "$pid")
    stop "$pid"
    local sent audit_lines
    sent=$(field "$result" attempted)
    # Every request is audited twice: when admitted (before anything is forwarded) and when answered.
    audit_lines=$(cat "$tmp/audit.jsonl"* 2>/dev/null | grep -c '"phase":"admitted"' || true)
    echo "  crossgate: $cpu us CPU per request ($user us its own), peak RSS $rss MiB; $audit_lines requests audited of $sent sent"
    [ "$audit_lines" = "$sent" ] || echo "  WARNING: $label: $sent requests sent (failed connections included) but $audit_lines audited"
    add_row "$cpu" "$user" "$rss"
}

start_upstream

echo "== $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), ${duration} s per run after ${warmup} s warm-up, ${connections} connections"
# Everything here shares the machine with whatever else runs on it: say how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== load average before the runs: $load_before (1, 5, 15 min; anything well above 0 means other work competes for the CPUs)"

# 1. The floor: straight to the upstream.
run_load floor --target "http://127.0.0.1:$cvm_port" --dialect tc3 --connections "$connections"
add_row - - -

# 2. nginx as a plain reverse proxy.
# nginx_run LABEL [LOAD_FLAGS...]: a fresh nginx proxy, one load run, its CPU per request and peak RSS.
nginx_run() {
    local label=$1
    shift
    "${proxy_side[@]}" "$nginx" -p "$tmp/" -c "$tmp/proxy.conf" -e "$tmp/proxy-error.log" &
    local pid=$! procs rss
    started+=("$pid")
    wait_listening "$pid" "$proxy_port" "the nginx proxy"
    procs="$pid $(children "$pid")"
    # shellcheck disable=SC2086
    cpu_mark $procs
    run_load "$label" --target "http://127.0.0.1:$proxy_port" --dialect tc3 --connections "$connections" "$@"
    # shellcheck disable=SC2086
    cpu_since $procs
    rss=$(for p in $(children "$pid"); do peak_rss_mib "$p"; echo; done | sort -n | tail -1)
    stop "$pid"
    echo "  nginx: $cpu us CPU per request ($user us its own; master and workers), peak RSS $rss MiB (largest worker)"
    add_row "$cpu" "$user" "$rss"
}
nginx_run nginx

# 2b. The framework's floor: hyper and tokio alone passing requests through (examples/passthrough.rs);
#     then the same with crossgate's protocol work and nothing else (`--protocol`, for labels protocol*).
# floor_run LABEL CONNECTIONS [LOAD_FLAGS...]: a fresh pass-through, one load run.
floor_run() {
    local label=$1 conns=$2 port mode=()
    shift 2
    case "$label" in protocol*) mode=(--protocol) ;; esac
    port=$(free_port)
    "${proxy_side[@]}" "$passthrough_bin" "127.0.0.1:$port" "127.0.0.1:$cvm_port" "${mode[@]}" > "$tmp/logs/$label.out" 2>&1 &
    local pid=$!
    started+=("$pid")
    wait_listening "$pid" "$port" "the hyper pass-through"
    cpu_mark "$pid"
    run_load "$label" --target "http://127.0.0.1:$port" --dialect tc3 --connections "$conns" "$@"
    cpu_since "$pid"
    local rss
    rss=$(peak_rss_mib "$pid")
    stop "$pid"
    echo "  hyper pass-through${mode[*]:+ ${mode[*]}}: $cpu us CPU per request ($user us its own), peak RSS $rss MiB"
    add_row "$cpu" "$user" "$rss"
}
floor_run hyper "$connections"
floor_run protocol "$connections"

# 3. and 4. crossgate: same dialect, then translating both ways.
gateway_run crossgate-tc3-cvm --dialect tc3 --instance-prefix ins- --connections "$connections"
gateway_run crossgate-tc3-ecs --dialect tc3 --instance-prefix i- --connections "$connections"
gateway_run crossgate-v2-cvm --dialect v2 --instance-prefix ins- --connections "$connections"

# 5. Latency at half of crossgate's peak, against the floor at the same rate, and what a plain reverse
#    proxy and the framework alone add at that rate.
peak=$(column_of crossgate-tc3-cvm 3)
half=$(awk -v p="$peak" 'BEGIN { r = p / 2; if (r < 1) r = 1; printf "%.0f", r }')
run_load half-floor --target "http://127.0.0.1:$cvm_port" --dialect tc3 --connections "$connections" --rate "$half"
add_row - - -
nginx_run half-nginx --rate "$half"
floor_run half-hyper "$connections" --rate "$half"
gateway_run half-crossgate --dialect tc3 --instance-prefix ins- --connections "$connections" --rate "$half"

# 6. A thousand client connections: crossgate's peak memory, and the framework's alone.
gateway_run rss-"$rss_connections" --dialect tc3 --instance-prefix ins- --connections "$rss_connections"
floor_run hyper-"$rss_connections" "$rss_connections"

# 7. Scale: 1, 2 and 3 replicas behind nginx, sharing their replay keys on Redis, each auditing to its
#    own file. On one machine this shows what the shared state costs, not linear growth.
install_if_absent redis-server redis-server
"${driver_side[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$tmp/logs/redis.out" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
wait_listening "$redis_pid" "$redis_port" redis-server
for n in 1 2 3; do
    servers=""
    pids=()
    for r in $(seq 1 "$n"); do
        port=${scale_ports[$((r - 1))]}
        sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
            -e "s|^path = \"$tmp/audit.jsonl\"|path = \"$tmp/scale-$n-$r.jsonl\"|" "$tmp/crossgate.toml" > "$tmp/scale-$r.toml"
        printf '\n[state]\nredis = "redis://127.0.0.1:%s/0"\n' "$redis_port" >> "$tmp/scale-$r.toml"
        "${proxy_side[@]}" "$gateway_bin" serve --config "$tmp/scale-$r.toml" --replica "gw-$r" > "$tmp/logs/scale-$n-$r.out" 2>&1 &
        pids+=("$!")
        started+=("$!")
        wait_listening "$!" "$port" "replica $r"
        servers="$servers        server 127.0.0.1:$port;\n"
    done
    sed -e "s|listen 127.0.0.1:$proxy_port|listen 127.0.0.1:$scale_port|" -e "s|server 127.0.0.1:$cvm_port;|@SERVERS@|" \
        -e "s|/proxy|/scale-proxy|g" "$tmp/proxy.conf" | awk -v s="$servers" '{ gsub(/@SERVERS@/, s); print }' > "$tmp/scale.conf"
    "${proxy_side[@]}" "$nginx" -p "$tmp/" -c "$tmp/scale.conf" -e "$tmp/scale-error.log" &
    scale_pid=$!
    started+=("$scale_pid")
    wait_listening "$scale_pid" "$scale_port" "nginx before the replicas"
    run_load "scale-$n" --target "http://127.0.0.1:$scale_port" --dialect tc3 --instance-prefix ins- --connections "$connections"
    add_row - - -
    stop "$scale_pid"
    for p in "${pids[@]}"; do stop "$p"; done
done
stop "$redis_pid"

# === summary ===

echo
echo "== summary (latencies in microseconds, of successful answers; errors and requests over the measured window / in all)"
printf '%-20s %6s %10s %8s %8s %8s %8s %7s %9s %9s %9s %9s\n' run conns "ok req/s" p50 p90 p99 p99.9 errors sent "cpu us/rq" "user us" "rss MiB"
while IFS=$'\t' read -r label conns thr p50 p90 p99 p999 errors sent cpu user rss; do
    printf '%-20s %6s %10s %8s %8s %8s %8s %7s %9s %9s %9s %9s\n' "$label" "$conns" "$thr" "$p50" "$p90" "$p99" "$p999" "$errors" "$sent" "$cpu" "$user" "$rss"
done < "$rows"

# difference A B: A - B, or `-` when either is missing.
difference() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "") print "-"; else print a - b }'; }
# over A B: A / B to two places, or `-` when B is missing or zero.
over() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "latency added at half of peak ($half req/s): p50 $(difference "$(column_of half-crossgate 4)" "$(column_of half-floor 4)") us," \
    "p99 $(difference "$(column_of half-crossgate 6)" "$(column_of half-floor 6)") us (goals: under 100 us and 1000 us);" \
    "nginx adds p50 $(difference "$(column_of half-nginx 4)" "$(column_of half-floor 4)") us," \
    "p99 $(difference "$(column_of half-nginx 6)" "$(column_of half-floor 6)") us;" \
    "the hyper pass-through adds p50 $(difference "$(column_of half-hyper 4)" "$(column_of half-floor 4)") us," \
    "p99 $(difference "$(column_of half-hyper 6)" "$(column_of half-floor 6)") us"
echo "crossgate CPU per request: $(column_of crossgate-tc3-cvm 10) us same dialect, $(column_of crossgate-tc3-ecs 10) us TC3 to ECS, $(column_of crossgate-v2-cvm 10) us v2 to API 3.0 (goal: under 20 us);" \
    "in its own code (user time) $(column_of crossgate-tc3-cvm 11), $(column_of crossgate-tc3-ecs 11), $(column_of crossgate-v2-cvm 11) us"
echo "crossgate peak RSS with ${rss_connections} connections: $(column_of rss-"$rss_connections" 12) MiB (goal: under 64 MiB; hyper alone: $(column_of hyper-"$rss_connections" 12) MiB)"
echo "framework floor (hyper pass-through): $(column_of hyper 3) req/s, $(column_of hyper 10) us CPU per request, $(column_of hyper 11) us in its own code"
echo "protocol floor (the pass-through with crossgate's protocol work, nothing else): $(column_of protocol 3) req/s" \
    "($(over "$(column_of protocol 3)" "$(column_of nginx 3)")x nginx), $(column_of protocol 10) us CPU per request," \
    "$(column_of protocol 11) us in its own code"
nginx_thr=$(column_of nginx 3)
ecs_thr=$(column_of crossgate-tc3-ecs 3)
v2_thr=$(column_of crossgate-v2-cvm 3)
one=$(column_of scale-1 3)
echo "scale behind nginx, replay keys on Redis: 1 replica $one req/s, 2 replicas $(column_of scale-2 3) ($(over "$(column_of scale-2 3)" "$one")x)," \
    "3 replicas $(column_of scale-3 3) ($(over "$(column_of scale-3 3)" "$one")x)"
if [ "$proxy_cpu_count" = 0 ]; then
    echo "CPUs: all of them shared by the proxies, the load generator and the upstream"
else
    echo "CPUs split: proxies on ${proxy_side[2]}; the load generator, the upstream and Redis on ${driver_side[2]}"
fi
echo "load average before the runs: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (crossgate, nginx and the load generator count in it)"
# translating_over THROUGHPUT: the slower of the two translating runs over THROUGHPUT.
translating_over() {
    awk -v a="$ecs_thr" -v b="$v2_thr" -v n="$1" 'BEGIN { s = (a < b) ? a : b; if (n > 0) printf "%.2f", s / n; else print "n/a" }'
}
# Over the hyper pass-through of this run: steadier than the nginx ratio on a shared machine, since both
# runs pay for the same serving stack.
echo "ratio crossgate-translating/hyper: $(translating_over "$(column_of hyper 3)")"
# Over nginx: the product's throughput goal is at least 1.0.
echo "ratio crossgate-translating/nginx: $(translating_over "$nginx_thr")"
