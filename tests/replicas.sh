#!/usr/bin/env bash
# Three replicas of crossgate on loopback with one shared config, real Redis and PostgreSQL from the
# system's packages (`.ci/run` installs them): shared replay keys, a shared rate limit, one audit trail,
# and Redis killed and started again mid-run. See tests/replicas/run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet --bin crossgate
python3 tests/replicas/run.py "$PWD/target/debug/crossgate"
