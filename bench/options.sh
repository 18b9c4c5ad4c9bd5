# The options bench/profile.sh and bench/instructions.sh share, and every bench script's help: sourced
# before bench/lib.sh (so that `--help` needs no build), with `duration`, `connections`, `dialect`,
# `prefix` and `out` set to the script's defaults. `rate` is left empty (as fast as answers come) or set
# to crossgate-load's `--rate N` (a fixed number of requests per second, as in compare.sh's half-peak
# runs). `split_cpus` puts the proxy under test and what drives it on CPUs of their own.
# shellcheck shell=bash

# script_help: the running script's header comment (every comment line after the first line, up to
# the first line that is not one), without its `#`s: its usage, for -h and --help.
script_help() { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; }

# load_options ARG...: sets the variables above from --duration, --connections, --dialect,
# --instance-prefix, --rate and --out; prints the script's help for -h and --help; leaves every other
# argument in `other`, for the script to read or refuse.
load_options() {
    other=()
    rate=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --duration) duration=${2:?--duration SECONDS}; shift 2 ;;
            --connections) connections=${2:?--connections N}; shift 2 ;;
            --dialect) dialect=${2:?--dialect tc3|v2}; shift 2 ;;
            --instance-prefix) prefix=${2:?--instance-prefix PREFIX}; shift 2 ;;
            --rate) rate=(--rate "${2:?--rate REQUESTS_PER_SECOND}"); shift 2 ;;
            --out) out=${2:?--out DIR}; shift 2 ;;
            -h|--help) script_help; exit 0 ;;
            *) other+=("$1"); shift ;;
        esac
    done
    local n
    for n in "$duration" "$connections" "${rate[@]:1}"; do
        [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || { echo "$(basename "$0"): '$n' is not a whole number of at least 1" >&2; exit 2; }
    done
}

# === which CPUs each side runs on ===

# Command prefixes for the proxy under test (`proxy_side`) and for what drives and answers it: the load
# generator, the static upstream, Redis (`driver_side`). Empty: every process may run on every CPU.
proxy_side=()
driver_side=()
proxy_cpu_count=0

# split_cpus [CPU_LIST]: the proxies on the upper half of the CPUs this script may use (or of CPU_LIST,
# in the kernel's list form: `0-3,6`), everything else on the rest (`taskset`), so that a proxy's CPU
# time no longer competes with the load generator's; with two CPUs, one each. Sets proxy_side,
# driver_side and proxy_cpu_count, and says which is where.
split_cpus() {
    local list=${1:-$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)} allowed=() part cpu
    for part in ${list//,/ }; do
        if [[ "$part" == *-* ]]; then
            for cpu in $(seq "${part%-*}" "${part#*-}"); do allowed+=("$cpu"); done
        else
            allowed+=("$part")
        fi
    done
    local n=${#allowed[@]}
    [ "$n" -ge 2 ] || { echo "$(basename "$0"): --split-cpus needs at least 2 CPUs, this process may use $n" >&2; exit 2; }
    proxy_cpu_count=$((n / 2))
    local drivers proxies
    drivers=$(IFS=,; echo "${allowed[*]:0:n - proxy_cpu_count}")
    proxies=$(IFS=,; echo "${allowed[*]:n - proxy_cpu_count}")
    proxy_side=(taskset -c "$proxies")
    driver_side=(taskset -c "$drivers")
    echo "== CPUs split: proxies on $proxies, the load generator, the upstream and Redis on $drivers"
}
