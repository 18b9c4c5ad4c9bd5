"""Drives tencentcloud-sdk-python (API 3.0: CVM 2017-03-12 and Lighthouse 2020-03-24) against crossgate.

    python tencent_sdk.py 127.0.0.1:PORT SCENARIO --variant cvm-tc3|cvm-hmacsha256|lighthouse-tc3

Scenarios (ids from the simulator's demo set, src/sim/demo.toml):
  bind, unbind       AssociateInstancesKeyPairs / DisassociateInstancesKeyPairs on a Linux instance
  bad-secret         bind, signed with the wrong secret key
  unknown-instance   bind on a well-formed id that no cloud knows
  windows            bind on a Windows instance
  too-many           bind on 101 instances (the API 3.0 limit is 100)
  running            CVM only: bind on a RUNNING instance without ForceStop
  running-force      CVM only: the same with ForceStop=True
  replicate          CVM only: bind skey-7mig2ecs (known on CVM only) on the caller's alias for the ECS
                     machine; a gateway whose [[keys]] row replicates imports it on ECS first
  bind-elsewhere     bind on the caller's alias for a machine on another provider (the matrix config of
                     tests/it/harness.rs: CVM ins-ccccecs1 is ECS i-m5eg7be9ndloji64jknv, Lighthouse
                     lhins-aaaacvm1 is CVM ins-1e4r6y8i)
One JSON line per SDK call (see _common.py).
"""

import json

from _common import DEMO_SECRET_ID, emit, parse_args, secret_for, unexpected
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

REGION = "ap-guangzhou"

VARIANTS = {
    # variant: (product, signMethod)
    "cvm-tc3": ("cvm", "TC3-HMAC-SHA256"),
    "cvm-hmacsha256": ("cvm", "HmacSHA256"),
    "lighthouse-tc3": ("lighthouse", "TC3-HMAC-SHA256"),
}

# Per product: the Linux instance to bind, a RUNNING one, a Windows one, an unknown one, the key, and
# the prefix of made-up ids for the too-many batch.
FIXTURES = {
    "cvm": {
        "linux": "ins-1e4r6y8i",
        "running": "ins-w34e5rl9",
        "windows": "ins-5wq8v2kd",
        "unknown": "ins-0000dead",
        "elsewhere": "ins-ccccecs1",
        "key": "skey-4e5ty7i8",
        "cvm_only_key": "skey-7mig2ecs",
        "prefix": "ins-",
    },
    "lighthouse": {
        "linux": "lhins-ruy9d2tw",
        "windows": "lhins-w1n2d3s4",
        "unknown": "lhins-0000dead",
        "elsewhere": "lhins-aaaacvm1",
        "key": "lhkp-f7rjie1q",
        "prefix": "lhins-",
    },
}

SCENARIOS = {
    "bind",
    "unbind",
    "bad-secret",
    "unknown-instance",
    "windows",
    "too-many",
    "running",
    "running-force",
    "bind-elsewhere",
    "replicate",
}


def client_for(product, sign_method, addr, secret_key):
    cred = credential.Credential(DEMO_SECRET_ID, secret_key)
    http = HttpProfile(endpoint=addr, protocol="http", reqTimeout=20)
    profile = ClientProfile(signMethod=sign_method, httpProfile=http)
    if product == "cvm":
        from tencentcloud.cvm.v20170312 import cvm_client, models

        return cvm_client.CvmClient(cred, REGION, profile), models
    from tencentcloud.lighthouse.v20200324 import lighthouse_client, models

    return lighthouse_client.LighthouseClient(cred, REGION, profile), models


def plan(product, scenario):
    """The SDK method and the request fields for a scenario."""
    f = FIXTURES[product]
    if scenario in ("running", "running-force", "replicate") and "running" not in f:
        raise SystemExit("scenario %s is CVM only" % scenario)
    instances = {
        "bind": [f["linux"]],
        "unbind": [f["linux"]],
        "bad-secret": [f["linux"]],
        "unknown-instance": [f["unknown"]],
        "windows": [f["windows"]],
        "too-many": ["%s%08d" % (f["prefix"], i) for i in range(101)],
        "running": [f.get("running")],
        "running-force": [f.get("running")],
        "bind-elsewhere": [f["elsewhere"]],
        "replicate": [f["elsewhere"]],
    }[scenario]
    key = f["cvm_only_key"] if scenario == "replicate" else f["key"]
    fields = {"InstanceIds": instances, "KeyIds": [key]}
    if scenario == "running-force":
        fields["ForceStop"] = True
    call = "DisassociateInstancesKeyPairs" if scenario == "unbind" else "AssociateInstancesKeyPairs"
    return call, fields


def main():
    args = parse_args(SCENARIOS, VARIANTS, __doc__)
    product, sign_method = VARIANTS[args.variant]
    call, fields = plan(product, args.scenario)
    client, models = client_for(product, sign_method, args.addr, secret_for(args.scenario))
    request = getattr(models, call + "Request")()
    request.from_json_string(json.dumps(fields))
    try:
        response = getattr(client, call)(request)
        record = {
            "call": call,
            "request": fields,
            "ok": True,
            "request_id": response.RequestId,
            "response": json.loads(response.to_json_string()),
        }
    except TencentCloudSDKException as e:
        record = {
            "call": call,
            "request": fields,
            "ok": False,
            "exception": type(e).__name__,
            "code": e.get_code(),
            "message": e.get_message(),
            "request_id": e.get_request_id(),
            "http_status": None,
        }
    except Exception as e:  # noqa: BLE001 - anything else is reported, and fails the Rust assertions
        record = unexpected(call, fields, e)
    emit(record)


if __name__ == "__main__":
    main()
