#!/usr/bin/env python3
"""Sums a flat perf profile by area, for bench/profile.sh.

Reads `perf report --stdio --no-children --sort dso,symbol -g none` on standard input and prints each
area's share of the samples: the kernel (network stack, scheduling, syscalls), the allocator, the C
library's memory copies, then the crates (crossgate by module). A Rust symbol belongs to the first crate
it names that is not the standard library, so `<&mut serde_json::ser::Serializer<W> as serde::Serializer>`
is JSON and `drop_in_place<crossgate::audit::AuditEntry>` is crossgate's audit.
"""

import re
import sys
from collections import defaultdict

# Crates (or crossgate modules) grouped into the areas a reader knows them by.
AREAS = [
    ("crossgate::audit", "crossgate: audit records"),
    ("crossgate::layer::audit", "crossgate: audit records"),
    ("crossgate::sign", "crossgate: signatures (canonical forms)"),
    ("crossgate::dialect", "crossgate: codecs (decode, encode)"),
    ("crossgate::mapping", "crossgate: mapping tables"),
    ("crossgate::translate", "crossgate: translation"),
    ("crossgate::route", "crossgate: translation"),
    ("crossgate::gateway", "crossgate: gateway (plan, merge)"),
    ("crossgate::provider", "crossgate: upstream calls"),
    ("crossgate::replay", "crossgate: replay store"),
    ("crossgate::layer", "crossgate: layers (detect, auth, respond, ...)"),
    ("crossgate::server", "crossgate: server (accept, connections)"),
    ("crossgate", "crossgate: other"),
    ("sha2", "hashing and HMAC (sha2, sha1, hmac, hex)"),
    ("sha1", "hashing and HMAC (sha2, sha1, hmac, hex)"),
    ("hmac", "hashing and HMAC (sha2, sha1, hmac, hex)"),
    ("digest", "hashing and HMAC (sha2, sha1, hmac, hex)"),
    ("hex", "hashing and HMAC (sha2, sha1, hmac, hex)"),
    ("base64", "hashing and HMAC (sha2, sha1, hmac, hex)"),
    ("serde_json", "JSON (serde_json)"),
    ("serde", "JSON (serde_json)"),
    ("serde_core", "JSON (serde_json)"),
    ("quick_xml", "XML (quick_xml)"),
    ("time", "time formatting (time)"),
    ("uuid", "request ids (uuid, rand)"),
    ("rand", "request ids (uuid, rand)"),
    ("hyper", "HTTP (hyper, http, httparse)"),
    ("hyper_util", "HTTP (hyper, http, httparse)"),
    ("http", "HTTP (hyper, http, httparse)"),
    ("httparse", "HTTP (hyper, http, httparse)"),
    ("http_body_util", "HTTP (hyper, http, httparse)"),
    ("tower", "runtime (tokio, tower, futures)"),
    ("tower_http", "runtime (tokio, tower, futures)"),
    ("tower_service", "runtime (tokio, tower, futures)"),
    ("tokio", "runtime (tokio, tower, futures)"),
    ("tokio_util", "runtime (tokio, tower, futures)"),
    ("futures_util", "runtime (tokio, tower, futures)"),
    ("futures_core", "runtime (tokio, tower, futures)"),
    ("mio", "runtime (tokio, tower, futures)"),
    ("tracing", "runtime (tokio, tower, futures)"),
    ("bytes", "bytes and buffers"),
    ("percent_encoding", "crossgate: signatures (canonical forms)"),
]
STD = {"core", "alloc", "std"}
# The first segment of a path: a name followed by `::` and not itself preceded by one.
CRATE = re.compile(r"(?<![:\w])([A-Za-z_]\w*)::")
LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$")


def area_of(dso, kind, symbol):
    if kind == "k" or dso.startswith("[kernel"):
        return "kernel (network stack, scheduling, syscalls)"
    if symbol.startswith(("mi_", "_mi_", "mimalloc")) or "malloc" in symbol or symbol in ("free", "cfree"):
        return "allocator (mimalloc)"
    if dso.startswith("libc") or dso == "[vdso]":
        if "mem" in symbol or "str" in symbol:
            return "memory copies and compares (libc)"
        return "C library and vdso (clock, locks)"
    names = [m.group(1) for m in CRATE.finditer(symbol)]
    crates = [n for n in names if n not in STD]
    if not crates:
        return "standard library (core, alloc, std)" if names else "other: " + (symbol[:60] or dso)
    first = crates[0]
    if first == "crossgate":
        path = symbol[symbol.find("crossgate::"):]
        for prefix, area in AREAS:
            if prefix.startswith("crossgate") and path.startswith(prefix + "::"):
                return area
        return "crossgate: other"
    for prefix, area in AREAS:
        if first == prefix:
            return area
    return "other crates (" + first + ")"


def main():
    totals = defaultdict(float)
    for line in sys.stdin:
        if line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        share, dso, kind, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        totals[area_of(dso, kind, symbol)] += share
    for area, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        if share >= 0.1:
            print(f"{share:6.1f}%  {area}")


if __name__ == "__main__":
    main()
