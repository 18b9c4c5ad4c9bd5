"""Drives aliyun-python-sdk-core + aliyun-python-sdk-ecs (RPC, HMAC-SHA1) against crossgate.

    python aliyun_core.py 127.0.0.1:PORT SCENARIO

Scenarios: see ecs_fixtures.py. `do_action_with_exception` forces Format=JSON. One JSON line per SDK
call (see _common.py), with `sdk_string_to_sign`: the string the SDK signed. On a 400
SignatureDoesNotMatch whose message carries that same string, this SDK reports InvalidAccessKeySecret.
"""

import json

from _common import DEMO_SECRET_ID, emit, parse_args, secret_for, unexpected
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526.AttachKeyPairRequest import AttachKeyPairRequest
from aliyunsdkecs.request.v20140526.DetachKeyPairRequest import DetachKeyPairRequest
from ecs_fixtures import KEY, REGION, SCENARIOS, plan


def main():
    args = parse_args(SCENARIOS, {"rpc"}, __doc__)
    action, instances = plan(args.scenario)
    client = AcsClient(DEMO_SECRET_ID, secret_for(args.scenario), REGION, auto_retry=False, timeout=20)
    request = AttachKeyPairRequest() if action == "AttachKeyPair" else DetachKeyPairRequest()
    request.set_endpoint(args.addr)
    request.set_protocol_type("http")
    request.set_KeyPairName(KEY)
    request.set_InstanceIds(json.dumps(instances))
    fields = {"RegionId": REGION, "KeyPairName": KEY, "InstanceIds": instances}
    try:
        body = json.loads(client.do_action_with_exception(request))
        record = {"call": action, "request": fields, "ok": True, "request_id": body.get("RequestId"), "response": body}
    except ServerException as e:
        record = {
            "call": action,
            "request": fields,
            "ok": False,
            "exception": type(e).__name__,
            "code": e.get_error_code(),
            "message": e.get_error_msg(),
            "request_id": e.get_request_id(),
            "http_status": e.get_http_status(),
        }
    except ClientException as e:
        record = {
            "call": action,
            "request": fields,
            "ok": False,
            "exception": type(e).__name__,
            "code": e.get_error_code(),
            "message": e.get_error_msg(),
            "request_id": None,
            "http_status": None,
        }
    except Exception as e:  # noqa: BLE001 - anything else is reported, and fails the Rust assertions
        record = unexpected(action, fields, e)
    record["sdk_string_to_sign"] = getattr(request, "string_to_sign", None)
    emit(record)


if __name__ == "__main__":
    main()
