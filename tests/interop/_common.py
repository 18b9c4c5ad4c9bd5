"""Shared by the interop scripts: the command line, the demo credentials and the one-JSON-line output.

Every script takes the gateway address (HOST:PORT) and a scenario name, drives one official SDK
against crossgate over plain HTTP (HTTPS for legacy_sdk.py, whose SDK knows no other scheme), and prints
one JSON object per SDK call on stdout:

    {"call": ..., "request": {...}, "ok": true,  "request_id": ..., "response": {...}}
    {"call": ..., "request": {...}, "ok": false, "exception": <class>, "code": ..., "message": ...,
     "request_id": ..., "http_status": ...}

Exit status 0 means every call was made (whatever the SDK answered); anything else is a script error.
"""

import argparse
import json
import sys

# The demo caller of src/demo.toml. Not a secret: it is published with the project.
DEMO_SECRET_ID = "AKIDcrossgateDEMOcaller0000000000"
DEMO_SECRET_KEY = "crossgate-demo-secret-key"
# What a caller with the wrong secret signs with.
WRONG_SECRET_KEY = "not-the-demo-secret-key"


def parse_args(scenarios, variants, description):
    """`ADDR SCENARIO [--variant V]`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("addr", help="the gateway, HOST:PORT")
    parser.add_argument("scenario", choices=sorted(scenarios))
    parser.add_argument("--variant", choices=sorted(variants), default=sorted(variants)[0])
    return parser.parse_args()


def secret_for(scenario):
    return WRONG_SECRET_KEY if scenario == "bad-secret" else DEMO_SECRET_KEY


def emit(record):
    """Prints one call's record as one JSON line."""
    sys.stdout.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def unexpected(call, request, exc):
    """A record for an exception that is not the SDK's own error type."""
    return {
        "call": call,
        "request": request,
        "ok": False,
        "exception": type(exc).__module__ + "." + type(exc).__name__,
        "code": None,
        "message": str(exc),
        "request_id": None,
        "http_status": None,
    }
