#!/usr/bin/env bash
# The container image, built and run as a user would: the demo reachable through -p with nothing
# mounted, a signed request answered, the healthcheck healthy, the audit kept on the data volume (and a
# clear refusal when the volume is not writable by uid 10001), and a mounted TLS config on another port
# that the healthcheck follows.
#
# Needs a container engine (docker) and the base images (rust:1.95-bookworm, debian:bookworm-slim),
# pulled or already present. Without them it says why and exits 0 without checking anything.
#
#   bash tests/docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { echo "docker image checks skipped: $*"; exit 0; }

command -v docker >/dev/null 2>&1 || skip "no docker client on this machine"
if ! info=$(docker info 2>&1); then
    skip "no container engine answers ($(printf '%s' "$info" | grep -m1 -iE 'cannot|error' || echo 'docker info failed'))"
fi
for image in rust:1.95-bookworm debian:bookworm-slim; do
    if ! docker image inspect "$image" >/dev/null 2>&1 && ! docker pull -q "$image" >/dev/null 2>&1; then
        skip "the base image $image is neither present nor pullable"
    fi
done

tag=crossgate:ci-$$
work=$(mktemp -d)
containers=()
cleanup() {
    for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
    docker rmi -f "$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for c in "${containers[@]}"; do docker logs "$c" 2>&1 | tail -20; done; exit 1; }

echo "== build"
docker build -q -t "$tag" . >/dev/null

# Starts a container; prints its name.
start() {
    local name="crossgate-ci-$$-$1"; shift
    docker run -d --name "$name" "$@" >/dev/null
    containers+=("$name")
    echo "$name"
}

# Waits for the container's healthcheck to say healthy.
wait_healthy() {
    local status
    for _ in $(seq 1 60); do
        status=$(docker inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone)
        [ "$status" = healthy ] && return 0
        [ "$status" = gone ] && break
        sleep 1
    done
    fail "$1 is not healthy (last status: $status)"
}

host_port() { docker port "$1" "$2" | head -n1 | sed 's/.*://'; }

echo "== the demo, nothing mounted"
demo=$(start demo -p 127.0.0.1::8080 "$tag")
wait_healthy "$demo"
port=$(host_port "$demo" 8080/tcp)
curl -fsS "http://127.0.0.1:$port/healthz" | grep -q ok || fail "/healthz through -p"
request=$(docker logs "$demo" 2>/dev/null | grep -m1 "^curl ") || fail "the demo printed no example request"
# The printed request is signed for 127.0.0.1:8080 (its Host header); reach it through the mapped port.
answer=$(eval "${request/curl -s/curl -s --connect-to 127.0.0.1:8080:127.0.0.1:$port}")
echo "$answer" | grep -q '"RequestId"' || fail "the signed request got: $answer"
echo "$answer" | grep -q '"Error"' && fail "the signed request was refused: $answer"

echo "== the audit survives on the data volume"
mkdir -p "$work/data" && chown 10001:10001 "$work/data"
kept=$(start kept -p 127.0.0.1::8080 -v "$work/data:/var/lib/crossgate" "$tag")
wait_healthy "$kept"
port=$(host_port "$kept" 8080/tcp)
request=$(docker logs "$kept" 2>/dev/null | grep -m1 "^curl ")
eval "${request/curl -s/curl -s --connect-to 127.0.0.1:8080:127.0.0.1:$port}" >/dev/null
docker stop -t 10 "$kept" >/dev/null
ls "$work/data" | grep -q '^audit\.' || fail "no audit file on the volume: $(ls "$work/data")"
[ -s "$(ls -d "$work"/data/audit.* | head -n1)" ] || fail "the audit file on the volume is empty"

echo "== a volume uid 10001 cannot write is refused, naming the owner"
mkdir -p "$work/rootonly" && chmod 755 "$work/rootonly"
denied=$(start denied -v "$work/rootonly:/var/lib/crossgate" "$tag")
docker wait "$denied" >/dev/null
docker logs "$denied" 2>&1 | grep -q "uid 10001" || fail "the refusal does not name uid 10001"

echo "== a mounted TLS config on another port, followed by the healthcheck"
mkdir -p "$work/etc" && chown 10001:10001 "$work/etc"
docker run --rm -v "$work/etc:/out" "$tag" certs --out /out >/dev/null
sed -e 's/^listen = .*/listen = "0.0.0.0:9443"/' -e 's/^store = "sqlite:audit.db"/store = "sqlite:\/var\/lib\/crossgate\/audit.db"/' \
    src/demo.toml > "$work/etc/crossgate.toml"
printf '\n[tls]\ncert = "/etc/crossgate/conf/dev.pem"\nkey = "/etc/crossgate/conf/dev-key.pem"\n' >> "$work/etc/crossgate.toml"
chmod 644 "$work/etc/crossgate.toml"
tls=$(start tls -p 127.0.0.1::9443 -v "$work/etc:/etc/crossgate/conf:ro" \
    -e CROSSGATE_CONFIG=/etc/crossgate/conf/crossgate.toml -e CROSSGATE_LISTEN= -e CROSSGATE_SIM_SECRET=ci-secret "$tag")
wait_healthy "$tls"
port=$(host_port "$tls" 9443/tcp)
curl -fsS --cacert "$work/etc/dev.pem" --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/healthz" | grep -q ok \
    || fail "/healthz over TLS through -p"

echo "docker image checks passed"
