# What bench/compare.sh, bench/profile.sh and bench/instructions.sh share, sourced from the repository
# root with `script` (the name errors start with) and `keep` (1: leave the temp dir) set. Sourcing it:
#   - installs nginx with apt-get if it is absent (`install_if_absent`, for the scripts' own tools too),
#     and builds the release binaries;
#   - makes a temp dir ($tmp) with the filled-in configs, on free loopback ports ($cvm_port, $ecs_port,
#     $proxy_port, $gateway_port), and fresh secrets for the caller and the upstreams;
#   - traps EXIT to stop every process started through it (by pid) and remove the temp dir.
# Processes run on every CPU unless bench/options.sh's `split_cpus` gave the proxies CPUs of their own.
# shellcheck shell=bash

# install_if_absent COMMAND PACKAGE: installs the system's PACKAGE with apt-get unless COMMAND is there.
install_if_absent() {
    command -v "$1" >/dev/null && return 0
    echo "== $1 is not installed: installing $2 with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

install_if_absent nginx nginx
nginx=$(command -v nginx)
command -v python3 >/dev/null || { echo "$script: python3 is needed to read the RESULT lines" >&2; exit 1; }

echo "== building (cargo build --release --bins --example passthrough)"
cargo build --release --bins --example passthrough --quiet
load_bin=target/release/crossgate-load
gateway_bin=target/release/crossgate
passthrough_bin=target/release/examples/passthrough

# Enough descriptors for a thousand clients and their upstream connections.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# === processes, and their cleanup ===

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crossgate-bench.XXXXXX")
started=()
cleanup() {
    for pid in "${started[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$keep" = 1 ]; then echo "== kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nothing listens on now, below the kernel's range of ephemeral ports: a port in that range may be
# the local end of one of the runs' many client connections (or of one in TIME_WAIT), and a server
# cannot bind it.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
    local port
    while :; do
        port=$((10000 + RANDOM % (ephemeral_low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
}

# wait_listening PID PORT NAME [SECONDS]: waits until PID listens on PORT; fails if it dies or takes
# over SECONDS (10 unless given).
wait_listening() {
    local pid=$1 port=$2 name=$3 seconds=${4:-10}
    for _ in $(seq $((seconds * 20))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || { echo "$script: $name exited at start; see $tmp" >&2; keep=1; exit 1; }
        sleep 0.05
    done
    echo "$script: $name is not listening on $port after $seconds s" >&2
    keep=1
    exit 1
}

# stop PID: SIGTERM, then SIGKILL if it has not exited within 10 s.
stop() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID...: utime+stime of the processes (all their threads), in clock ticks.
cpu_ticks() { stat_ticks '$12 + $13' "$@"; }
# user_ticks PID...: utime alone: the processes' own code, without the kernel's work for them.
user_ticks() { stat_ticks '$12' "$@"; }
# stat_ticks SUM PID...: SUM (an awk expression over /proc/PID/stat's fields after the name) of the processes.
stat_ticks() {
    local sum=$1 total=0 p
    shift
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk "{ print $sum }")))
    done
    echo "$total"
}
children() { ps -o pid= --ppid "$1" | tr -d ' ' | tr '\n' ' '; }
peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# field JSON NAME: one field of a RESULT (`latency_us/p50` for a nested one); `-` when null.
field() {
    python3 -c 'import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("/"):
    v = v[k]
print("-" if v is None else v)' "$1" "$2"
}

ticks_per_second=$(getconf CLK_TCK)

# cpu_us_per_request TICKS REQUESTS: CPU microseconds per request.
cpu_us_per_request() {
    awk -v d="$1" -v t="$ticks_per_second" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", d / t * 1e6 / n; else print "-" }'
}

# cpu_mark PID...: the processes' CPU time now, for cpu_since.
cpu_mark() { mark_cpu=$(cpu_ticks "$@"); mark_user=$(user_ticks "$@"); }

# cpu_since PID...: the processes' CPU microseconds per request sent in the last run (`result`, its
# RESULT line's JSON) since cpu_mark: in all (`cpu`) and in their own code (`user`, the rest being the
# kernel's work for them).
cpu_since() {
    local sent
    sent=$(field "$result" attempted)
    cpu=$(cpu_us_per_request $(($(cpu_ticks "$@") - mark_cpu)) "$sent")
    user=$(cpu_us_per_request $(($(user_ticks "$@") - mark_user)) "$sent")
}

fill() {
    sed -e "s|@TMP@|$tmp|g" -e "s|@CVM_PORT@|$cvm_port|g" -e "s|@ECS_PORT@|$ecs_port|g" \
        -e "s|@PROXY_PORT@|$proxy_port|g" -e "s|@GATEWAY_PORT@|$gateway_port|g" "$1" > "$2"
}

cvm_port=$(free_port)
ecs_port=$(free_port)
proxy_port=$(free_port)
gateway_port=$(free_port)
mkdir -p "$tmp/logs"
fill bench/upstream.nginx.conf "$tmp/upstream.conf"
fill bench/proxy.nginx.conf "$tmp/proxy.conf"
fill bench/crossgate.toml "$tmp/crossgate.toml"

CROSSGATE_BENCH_CALLER_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
CROSSGATE_BENCH_UPSTREAM_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
export CROSSGATE_BENCH_CALLER_SECRET CROSSGATE_BENCH_UPSTREAM_SECRET
# The load generator reads the caller's credentials from its environment, never from its command line.
export CROSSGATE_LOAD_SECRET_ID=AKIDcrossgateBENCHcaller000000000
export CROSSGATE_LOAD_SECRET_KEY=$CROSSGATE_BENCH_CALLER_SECRET

# start_upstream: the static upstream (nginx), both ports listening.
start_upstream() {
    "${driver_side[@]}" "$nginx" -p "$tmp/" -c "$tmp/upstream.conf" -e "$tmp/upstream-error.log" &
    upstream_pid=$!
    started+=("$upstream_pid")
    wait_listening "$upstream_pid" "$cvm_port" "the static upstream"
    wait_listening "$upstream_pid" "$ecs_port" "the static upstream"
}

# start_gateway: a fresh crossgate on the bench config, its audit file emptied; sets gateway_pid.
start_gateway() {
    rm -f "$tmp/audit.jsonl"*
    "${proxy_side[@]}" "$gateway_bin" serve --config "$tmp/crossgate.toml" > "$tmp/logs/gateway.out" \
        2>> "$tmp/logs/gateway.err" &
    gateway_pid=$!
    started+=("$gateway_pid")
    wait_listening "$gateway_pid" "$gateway_port" crossgate
}
