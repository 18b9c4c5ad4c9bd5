"""Drives qcloudapi-sdk-python (Tencent's legacy API 2.0 SDK, module `cvm`) against crossgate's
`/v2/index.php`.

    SSL_CERT_FILE=CA.pem python legacy_sdk.py 127.0.0.1:PORT SCENARIO --variant METHOD-SIGNATURE

The SDK speaks HTTPS only (its connection class is an `HTTPSConnection`, with no setting for the
scheme), so the gateway must serve TLS, with a certificate for 127.0.0.1 that Python trusts:
`SSL_CERT_FILE` names it (OpenSSL's own variable, which Python's default context reads). Its host is
the class attribute `Cvm.requestHost`, the only place the `cvm` module takes one from (the `endpoint`
setting is read for modules the SDK does not know); the SDK signs `host:port` as it sends it.

Variants: get-hmacsha1, get-hmacsha256, post-hmacsha1, post-hmacsha256 (the SDK's `method` and
`SignatureMethod` settings). New-style lists are written as the SDK flattens Python lists (0-based
`InstanceIds.0`) for POST, and 1-based (`InstanceIds.1`) as the API documentation writes them for GET.

Scenarios (ids from the simulator's demo set, src/sim/demo.toml; key skey-4e5ty7i8):
  associate, disassociate      new-style AssociateInstancesKeyPairs / DisassociateInstancesKeyPairs
                               (Version=2017-03-12) on ins-1e4r6y8i and ins-3e56fg78
  bind-old, unbind-old         old-style BindInstanceKey / UnBindInstanceKey (instanceIds.n, keyId) on the
                               same two instances
  bad-secret, bad-secret-old   associate / bind-old signed with the wrong secret key
  unknown-instance(-old)       on a well-formed id that no cloud knows
  windows(-old)                on the Windows instance ins-5wq8v2kd
  too-many                     associate on 101 instances (the limit is 100)

The SDK raises only for a non-200 status or a network failure; otherwise it returns the body text,
which is parsed. One JSON line per SDK call (see _common.py): `ok` is true when the SDK returned, with
`response` the parsed body and `request_id` the envelope's `Response.RequestId` (an old-style body has
none).
"""

import json

from _common import DEMO_SECRET_ID, DEMO_SECRET_KEY, WRONG_SECRET_KEY, emit, parse_args, unexpected
from QcloudApi.common.api_exception import (
    ApiClientNetworkException,
    ApiClientParamException,
    ApiServerNetworkException,
)
from QcloudApi.modules.cvm import Cvm
from QcloudApi.qcloudapi import QcloudApi

REGION = "ap-guangzhou"
VERSION = "2017-03-12"
KEY = "skey-4e5ty7i8"
LINUX = ["ins-1e4r6y8i", "ins-3e56fg78"]
WINDOWS = "ins-5wq8v2kd"
UNKNOWN = "ins-0000dead"

VARIANTS = {
    # variant: (method, SignatureMethod)
    "get-hmacsha1": ("GET", "HmacSHA1"),
    "get-hmacsha256": ("GET", "HmacSHA256"),
    "post-hmacsha1": ("POST", "HmacSHA1"),
    "post-hmacsha256": ("POST", "HmacSHA256"),
}

# scenario: (new style?, binds?, instances)
PLANS = {
    "associate": (True, True, LINUX),
    "disassociate": (True, False, LINUX),
    "bind-old": (False, True, LINUX),
    "unbind-old": (False, False, LINUX),
    "bad-secret": (True, True, LINUX[:1]),
    "bad-secret-old": (False, True, LINUX[:1]),
    "unknown-instance": (True, True, [UNKNOWN]),
    "unknown-instance-old": (False, True, [UNKNOWN]),
    "windows": (True, True, [WINDOWS]),
    "windows-old": (False, True, [WINDOWS]),
    "too-many": (True, True, ["ins-%08d" % i for i in range(101)]),
}


def plan(scenario, method):
    """The action, the SDK's params, and the request as recorded."""
    new_style, binds, instances = PLANS[scenario]
    if not new_style:
        action = "BindInstanceKey" if binds else "UnBindInstanceKey"
        return action, {"instanceIds": instances, "keyId": KEY}
    action = "AssociateInstancesKeyPairs" if binds else "DisassociateInstancesKeyPairs"
    params = {"Version": VERSION}
    if method == "POST":
        params.update({"InstanceIds": instances, "KeyIds": [KEY]})
    else:
        params.update({"InstanceIds.%d" % (i + 1): v for i, v in enumerate(instances)})
        params["KeyIds.1"] = KEY
    return action, params


def main():
    args = parse_args(PLANS, VARIANTS, __doc__)
    method, sign_method = VARIANTS[args.variant]
    action, params = plan(args.scenario, method)
    Cvm.requestHost = args.addr
    config = {
        "Region": REGION,
        "secretId": DEMO_SECRET_ID,
        "secretKey": WRONG_SECRET_KEY if args.scenario.startswith("bad-secret") else DEMO_SECRET_KEY,
        "method": method,
        "SignatureMethod": sign_method,
    }
    service = QcloudApi("cvm", config)
    try:
        text = service.call(action, params, req_timeout=20)
        body = json.loads(text)
        response = body.get("Response") if isinstance(body, dict) else None
        request_id = response.get("RequestId") if isinstance(response, dict) else None
        record = {"call": action, "request": params, "ok": True, "request_id": request_id, "response": body}
    except ApiServerNetworkException as e:
        record = {
            "call": action,
            "request": params,
            "ok": False,
            "exception": type(e).__name__,
            "code": None,
            "message": str(e),
            "request_id": None,
            "http_status": e.status,
        }
    except (ApiClientNetworkException, ApiClientParamException) as e:
        record = {
            "call": action,
            "request": params,
            "ok": False,
            "exception": type(e).__name__,
            "code": None,
            "message": e.message,
            "request_id": None,
            "http_status": None,
        }
    except Exception as e:  # noqa: BLE001 - anything else is reported, and fails the Rust assertions
        record = unexpected(action, params, e)
    emit(record)


if __name__ == "__main__":
    main()
