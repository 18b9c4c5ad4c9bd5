"""Three crossgate replicas on loopback, one shared config, real Redis and PostgreSQL.

Started by tests/replicas.sh (which `.ci/run` runs). It starts redis-server and a throwaway PostgreSQL
cluster from the system's packages, an upstream that counts what reaches it, and three `crossgate serve`
processes with one config, then checks:

  - a signed request answered by replica A and replayed to B and to C is refused by both, and reaches the
    upstream once;
  - Lighthouse's 10 binds per second hold across the three replicas together (within 10%), the excess
    answered with the caller's throttling error;
  - every request sent to any replica is in the one PostgreSQL trail, and `crossgate audit verify` checks
    every replica's chain;
  - with Redis killed mid-run, a bind gets the documented answer within a second; once Redis is back,
    binds go through again.

Python's standard library only. Exit status 0 when every check passed.
"""

import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/debug/crossgate"
CALLER_ID = "AKIDcrossgateDEMOcaller0000000000"
CALLER_SECRET = "crossgate-demo-secret-key"
FAILURES = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, seconds=20):
    until = time.time() + seconds
    while time.time() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port}")


# === the upstream: answers every call with success and counts them ===

class Counter(http.server.BaseHTTPRequestHandler):
    count = 0
    times = []
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with Counter.lock:
            Counter.count += 1
            Counter.times.append(time.monotonic())
            n = Counter.count
        body = json.dumps({"Response": {"RequestId": f"upstream-{n}"}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# === TC3 signing, as the API 3.0 SDKs do it ===

def tc3_request(host, service, action, version, body, timestamp=None):
    timestamp = timestamp or int(time.time())
    payload = json.dumps(body).encode()
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = "\n".join([
        "POST", "/", "",
        f"content-type:application/json\nhost:{host}\n",
        "content-type;host",
        hashlib.sha256(payload).hexdigest(),
    ])
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = hmac.new(("TC3" + CALLER_SECRET).encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": "ap-guangzhou",
        "Authorization": f"TC3-HMAC-SHA256 Credential={CALLER_ID}/{scope}, SignedHeaders=content-type;host, "
                         f"Signature={signature}",
    }
    return headers, payload


def send(port, request):
    """Sends a signed request to the replica on `port`: (status, Response object, seconds)."""
    headers, payload = request
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=payload, headers=headers, method="POST")
    started = time.time()
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            status, body = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    return status, json.loads(body).get("Response", {}), time.time() - started


def bind(host, instance, service="cvm"):
    version = "2020-03-24" if service == "lighthouse" else "2017-03-12"
    key = "lhkp-f7rjie1q" if service == "lighthouse" else "skey-4e5ty7i8"
    return tc3_request(host, service, "AssociateInstancesKeyPairs", version,
                       {"InstanceIds": [instance], "KeyIds": [key]})


# === the servers ===

def as_postgres(args):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + args
    return args


def start_postgres(work):
    bins = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql"))
                  if os.path.exists(os.path.join(d, "initdb")))
    if not bins:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    bindir, data, port = bins[-1], os.path.join(work, "pg"), free_port()
    os.makedirs(data)
    if os.geteuid() == 0:
        shutil.chown(work, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(as_postgres([f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]),
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(as_postgres([f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(data, "log"), "-w", "-o",
                                f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q", "-c",
                    "CREATE DATABASE audit"], check=True)
    return port, lambda: subprocess.run(as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_redis(port):
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, "redis-server")
    return proc


CONFIG = """
listen = "127.0.0.1:0"
[audit]
store = "postgres://postgres@127.0.0.1:{pg}/audit"
[state]
redis = "redis://127.0.0.1:{redis}/0"
[[callers]]
name = "demo"
secret_id = "{caller_id}"
secret_key = "{caller_secret}"
[upstreams.cvm]
provider = "tencent-cvm"
endpoint = "http://127.0.0.1:{up}"
region = "ap-guangzhou"
secret_id = "AKIDupstream"
secret_key = "upstream-secret"
retries = 0
[upstreams.lighthouse]
provider = "tencent-lighthouse"
endpoint = "http://127.0.0.1:{up}"
region = "ap-guangzhou"
secret_id = "AKIDupstream"
secret_key = "upstream-secret"
timeout_ms = 1000
retries = 0
[routing]
default = "cvm"
[[routing.rules]]
instance = "lhins-*"
upstream = "lighthouse"
"""


def main():
    work = tempfile.mkdtemp(prefix="crossgate-replicas-")
    procs, stop_pg = [], None
    try:
        up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
        threading.Thread(target=up.serve_forever, daemon=True).start()
        redis_port = free_port()
        redis = start_redis(redis_port)
        pg_port, stop_pg = start_postgres(work)
        config = os.path.join(work, "crossgate.toml")
        with open(config, "w") as f:
            f.write(CONFIG.format(pg=pg_port, redis=redis_port, up=up.server_address[1], caller_id=CALLER_ID,
                                  caller_secret=CALLER_SECRET))
        ports = [free_port() for _ in range(3)]
        for n, port in enumerate(ports):
            procs.append(subprocess.Popen([BIN, "serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                                           "--replica", f"gw-{n + 1}"], cwd=work,
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"gw-{n + 1}.log"), "w")))
        for port in ports:
            wait_port(port, "a replica")
        a, b, c = ports
        request_ids = []

        # A request answered by A, replayed to B and C.
        request = bind(f"127.0.0.1:{a}", "ins-1e4r6y8i")
        status, first, _ = send(a, request)
        request_ids.append(first.get("RequestId"))
        check("Error" not in first, f"replica A answers the bind ({first})")
        for name, port in (("B", b), ("C", c)):
            _, again, _ = send(port, request)
            request_ids.append(again.get("RequestId"))
            check("received already" in again.get("Error", {}).get("Message", ""),
                  f"replica {name} refuses the replay ({again.get('Error')})")
        check(Counter.count == 1, f"the upstream saw the request once (saw {Counter.count})")

        # Lighthouse's 10 per second, across the three replicas together.
        before = Counter.count
        answers, threads = [], []

        def one(i):
            port = ports[i % 3]
            answers.append(send(port, bind(f"127.0.0.1:{port}", f"lhins-{i:08d}", "lighthouse"))[1])

        for i in range(60):
            threads.append(threading.Thread(target=one, args=(i,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        forwarded = Counter.count - before
        arrivals = Counter.times[before:]
        throttled = sum(1 for r in answers if r.get("Error", {}).get("Code") == "RequestLimitExceeded")
        request_ids += [r.get("RequestId") for r in answers]
        # Turns 100 ms apart from the first: the rate over the binds that went through.
        rate = (forwarded - 1) / (arrivals[-1] - arrivals[0]) if forwarded > 1 else 0
        check(forwarded >= 10 and rate <= 11.0,
              f"{forwarded} binds reached Lighthouse at {rate:.1f} per second from three replicas (10 per second, +10%)")
        others = [r.get("Error") for r in answers
                  if "Error" in r and r["Error"].get("Code") != "RequestLimitExceeded"]
        check(forwarded + throttled == 60, f"the other {throttled} got the throttling error (else: {others})")

        # Redis killed mid-run, then back.
        redis.kill()
        redis.wait()
        status, refused, took = send(b, bind(f"127.0.0.1:{b}", "ins-3e56fg78"))
        request_ids.append(refused.get("RequestId"))
        check("Error" in refused and took < 1.0,
              f"with Redis down a bind is refused within a second ({took:.2f} s: {refused.get('Error')})")
        redis = start_redis(redis_port)
        until, back = time.time() + 10, {}
        while time.time() < until:
            _, back, _ = send(c, bind(f"127.0.0.1:{c}", "ins-3e56fg78"))
            request_ids.append(back.get("RequestId"))
            if "Error" not in back:
                break
            time.sleep(0.2)
        check("Error" not in back, f"with Redis back binds go through ({back.get('Error')})")

        # One trail for every replica, every request in it, every chain intact.
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        out = subprocess.run([BIN, "audit", "query", "--config", config, "--json", "--limit", "100000"],
                             capture_output=True, text=True, cwd=work)
        stored = {json.loads(line)["request_id"] for line in out.stdout.splitlines() if line}
        missing = [r for r in request_ids if r and r not in stored]
        check(out.returncode == 0 and not missing, f"every request is in the one trail ({len(missing)} missing)")
        verify = subprocess.run([BIN, "audit", "verify", "--config", config], capture_output=True, text=True, cwd=work)
        check(verify.returncode == 0 and "gw-1=" in verify.stdout and "gw-3=" in verify.stdout,
              f"the chain of every replica verifies: {verify.stdout.strip() or verify.stderr.strip()}")
        redis.kill()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if stop_pg:
            stop_pg()
        shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        sys.exit(1)
    print("every replica check passed", flush=True)


if __name__ == "__main__":
    main()
