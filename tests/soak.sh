#!/usr/bin/env bash
# The soak run (not part of the default test run): a few minutes of mixed valid, badly signed, replayed
# and abandoned requests against a release build of crossgate, with a fake upstream that records every
# call; the gateway is killed with SIGKILL halfway and restarted on the same audit file. It checks that
# every call the upstream received is in the audit, that no signed request reached the upstream twice,
# and that memory stayed bounded, and prints the figures (see RELIABILITY.md).
#
#   bash tests/soak.sh [SECONDS] [WORKERS]     # defaults: 120 s, 16 concurrent clients
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
workers=${2:-16}
cargo build --release --locked --bin crossgate --example soak
exec target/release/examples/soak --seconds "$seconds" --workers "$workers" --binary target/release/crossgate
