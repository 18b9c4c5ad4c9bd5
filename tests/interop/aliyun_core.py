"""Drives aliyun-python-sdk-core + aliyun-python-sdk-ecs (RPC, HMAC-SHA1) against crossgate.

    python aliyun_core.py 127.0.0.1:PORT SCENARIO [--variant rpc|xml]

Scenarios: see ecs_fixtures.py. One JSON line per SDK call (see _common.py), with
`sdk_string_to_sign`: the string the SDK signed.

  rpc  `do_action_with_exception`, which forces Format=JSON. On a 400 SignatureDoesNotMatch whose
       message carries the SDK's own string to sign, this SDK reports InvalidAccessKeySecret.
  xml  `set_accept_format('xml')` and `get_response`, which keeps the format and returns status, headers
       and body whatever the status. The SDK sends its `x-acs-action` header as always. The body is
       parsed as XML here; the line carries the fields read from it (root, RequestId, Code, Message,
       HostId, the counts and every Result), the Content-Type, and the raw text.
"""

import json
from xml.etree import ElementTree

from _common import DEMO_SECRET_ID, emit, parse_args, secret_for, unexpected
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526.AttachKeyPairRequest import AttachKeyPairRequest
from aliyunsdkecs.request.v20140526.DetachKeyPairRequest import DetachKeyPairRequest
from ecs_fixtures import REGION, SCENARIOS, plan


def xml_record(client, request, action, fields):
    """Asks for XML and reads what the SDK received."""
    request.set_accept_format("xml")
    status, headers, body = client.get_response(request)
    text = body.decode("utf-8", "replace")
    record = {
        "call": action,
        "request": fields,
        "ok": 200 <= status < 300,
        "http_status": status,
        "content_type": headers.get("Content-Type"),
        "xml": text,
    }
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        record.update({"exception": "ParseError", "message": str(e), "code": None, "request_id": None})
        return record
    record.update(
        {
            "root": root.tag,
            "request_id": root.findtext("RequestId"),
            "code": root.findtext("Code"),
            "message": root.findtext("Message"),
            "host_id": root.findtext("HostId"),
            "response": {
                "TotalCount": root.findtext("TotalCount"),
                "FailCount": root.findtext("FailCount"),
                "KeyPairName": root.findtext("KeyPairName"),
                "Results": [
                    {child.tag: child.text for child in result}
                    for result in root.findall("./Results/Result")
                ],
            },
        }
    )
    return record


def main():
    args = parse_args(SCENARIOS, {"rpc", "xml"}, __doc__)
    action, instances, key = plan(args.scenario)
    client = AcsClient(DEMO_SECRET_ID, secret_for(args.scenario), REGION, auto_retry=False, timeout=20)
    request = AttachKeyPairRequest() if action == "AttachKeyPair" else DetachKeyPairRequest()
    request.set_endpoint(args.addr)
    request.set_protocol_type("http")
    request.set_KeyPairName(key)
    request.set_InstanceIds(json.dumps(instances))
    fields = {"RegionId": REGION, "KeyPairName": key, "InstanceIds": instances}
    if args.variant == "xml":
        try:
            record = xml_record(client, request, action, fields)
        except Exception as e:  # noqa: BLE001 - reported, and fails the Rust assertions
            record = unexpected(action, fields, e)
        record["sdk_string_to_sign"] = getattr(request, "string_to_sign", None)
        emit(record)
        return
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
