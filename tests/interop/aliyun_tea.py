"""Drives alibabacloud-ecs20140526 (the tea / darabonba SDK) against crossgate.

    python aliyun_tea.py 127.0.0.1:PORT SCENARIO --variant acs3|v2

`acs3` is the SDK's default (ACS3-HMAC-SHA256, action and version in x-acs-* headers); `v2` sets
signature_algorithm='v2' (RPC, HMAC-SHA1 in the query). Scenarios: see ecs_fixtures.py. One JSON line
per SDK call (see _common.py), with `sdk_string_to_sign`: the string the SDK signed, recorded by
watching the SDK's HMAC calls (the SDK does not expose it), to compare with the server's in a
SignatureDoesNotMatch message.
"""

import hmac
import json

from _common import DEMO_SECRET_ID, emit, parse_args, secret_for, unexpected
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi import exceptions as tea_exceptions
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi import utils as tea_utils
from ecs_fixtures import REGION, SCENARIOS, plan

VARIANTS = {"acs3": None, "v2": "v2"}

SIGNED = []


class _WatchedHmac:
    """Stands in for the `hmac` module inside the SDK's signing helpers and records what they sign."""

    @staticmethod
    def new(key, msg=None, digestmod=None):
        if msg is not None:
            SIGNED.append(msg.decode("utf-8") if isinstance(msg, bytes) else msg)
        return hmac.new(key, msg, digestmod)


tea_utils.hmac = _WatchedHmac


def main():
    args = parse_args(SCENARIOS, VARIANTS, __doc__)
    action, instances, key = plan(args.scenario)
    config = open_api_models.Config(
        access_key_id=DEMO_SECRET_ID,
        access_key_secret=secret_for(args.scenario),
        endpoint=args.addr,
        protocol="http",
        region_id=REGION,
        read_timeout=20000,
        connect_timeout=5000,
    )
    if VARIANTS[args.variant]:
        config.signature_algorithm = VARIANTS[args.variant]
    client = Client(config)
    fields = {"RegionId": REGION, "KeyPairName": key, "InstanceIds": instances}
    kwargs = {"region_id": REGION, "key_pair_name": key, "instance_ids": json.dumps(instances)}
    try:
        if action == "AttachKeyPair":
            response = client.attach_key_pair(ecs_models.AttachKeyPairRequest(**kwargs))
        else:
            response = client.detach_key_pair(ecs_models.DetachKeyPairRequest(**kwargs))
        body = response.body.to_map()
        record = {
            "call": action,
            "request": fields,
            "ok": True,
            "request_id": response.body.request_id,
            "http_status": response.status_code,
            "response": body,
        }
    except tea_exceptions.AlibabaCloudException as e:
        record = {
            "call": action,
            "request": fields,
            "ok": False,
            "exception": type(e).__name__,
            "code": e.code,
            "message": e.message,
            "request_id": e.request_id,
            "http_status": e.status_code,
        }
    except Exception as e:  # noqa: BLE001 - anything else is reported, and fails the Rust assertions
        record = unexpected(action, fields, e)
    record["sdk_string_to_sign"] = SIGNED[-1] if SIGNED else None
    emit(record)


if __name__ == "__main__":
    main()
