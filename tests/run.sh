#!/usr/bin/env bash
# The test command: every Rust test, then the interop suite, in which the clouds' own Python SDKs talk
# to a running crossgate. The SDKs are installed once into target/interop-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/interop-venv
if ! "$venv/bin/python" -c "import tencentcloud.cvm, aliyunsdkecs, alibabacloud_ecs20140526, QcloudApi.qcloudapi" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
fi

export CROSSGATE_INTEROP_PYTHON="$PWD/$venv/bin/python"
cargo test --locked -- --include-ignored
