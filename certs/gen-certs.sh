#!/usr/bin/env bash
# Makes certs/dev.pem and certs/dev-key.pem (self-signed, localhost and 127.0.0.1) for local HTTPS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -- certs --out certs "$@"
