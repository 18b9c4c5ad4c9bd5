#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ from the repository's own
golden files (tests/golden), signature vectors (tests/vectors), mapping tables, demo config and the
README's config example. Standard library only; safe to run again (it only adds files named after their
content). Usage: python3 fuzz/seed.py
"""

import hashlib
import json
import pathlib
import re

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"

MAPPINGS = [
    "actions.toml",
    "limits.toml",
    "errors/tencent_v2.toml",
    "errors/tencent_cvm.toml",
    "errors/tencent_lighthouse.toml",
    "errors/aliyun_ecs.toml",
]

# Error replies as the clouds send them, so the reply targets start from the error shapes too.
TENCENT_ERROR = b'{"Response":{"Error":{"Code":"InvalidInstanceId.NotFound","Message":"not found"},"RequestId":"0f1e2d3c"}}'
LEGACY_ERROR = b'{"code":4000,"message":"(100004)unknown instance","codeDesc":"InvalidInstanceId.NotFound"}'
ECS_ERROR_JSON = b'{"RequestId":"473469C7","HostId":"ecs.aliyuncs.com","Code":"InvalidInstanceId.NotFound","Message":"not found","Recommend":""}'
ECS_ERROR_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><RequestId>473469C7</RequestId><HostId>ecs.aliyuncs.com'
    b"</HostId><Code>InvalidInstanceId.NotFound</Code><Message>not found</Message></Error>"
)


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def http_request(method, path, query, headers, body):
    """The request.http golden form: request line, `Name: value` lines, an empty line, the body."""
    target = path + ("?" + query if query else "")
    lines = [f"{method} {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\n".join(lines) + "\n\n" + body).encode()


def http_reply(status, content_type, body):
    return f"HTTP/1.1 {status}\ncontent-type: {content_type}\n\n".encode() + body


def vectors():
    for path in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        for vector in json.loads(path.read_text())["vectors"]:
            yield path.stem, vector["inputs"]


def request_targets(scheme_file, path):
    if path == "/v2/index.php":
        return ["tencent_v2_request"]
    if scheme_file.startswith("aliyun"):
        return ["aliyun_ecs_request"]
    return ["tencent_v3_request"]


def main():
    # Requests: the golden requests and every vector's request exactly as the SDK sent it.
    for request in sorted((ROOT / "tests" / "golden").glob("*/*/request.http")):
        dialect = request.parent.parent.name
        data = request.read_bytes()
        for target in ["detect", f"{dialect}_request"]:
            write(target, data)
    for scheme_file, v in vectors():
        headers = {str(k): str(val) for k, val in v["headers"].items()}
        if not any(k.lower() == "host" for k in headers):
            headers = {"Host": v["host"], **headers}
        data = http_request(v["method"], v["path"], v["query"], headers, v["body"])
        for target in ["detect"] + request_targets(scheme_file, v["path"]):
            write(target, data)
        # Signature parameters and encodings: the query and the form body as sent.
        for text in [v["query"], v["body"]]:
            if text:
                write("encoding", text)
                if "Signature=" in text:
                    write("param_signature", text)
        # Authorization headers, and the lines the sign -> split -> verify half reads.
        for name, value in headers.items():
            if name.lower() == "authorization":
                write("authorization", value)
        lines = [v["method"], v["host"], headers.get("Content-Type", ""), v["query"], v.get("service", "cvm"), v["body"]]
        write("authorization", "\n".join(lines))

    # Replies: the golden answers and the documents' examples, as an upstream would send them.
    for dialect, target in [("tencent_v2", "tencent_reply"), ("tencent_v3", "tencent_reply")]:
        for response in sorted((ROOT / "tests" / "golden" / dialect).glob("*/response.json")):
            write(target, http_reply(200, "application/json", response.read_bytes()))
    write("tencent_reply", http_reply(200, "application/json", TENCENT_ERROR))
    write("tencent_reply", http_reply(200, "application/json", LEGACY_ERROR))
    for case in sorted((ROOT / "tests" / "golden" / "aliyun_ecs").glob("*/")):
        for name in ["response.json", "document.json", "response.xml", "document.xml"]:
            path = case / name
            if path.exists():
                kind = "text/xml;charset=utf-8" if name.endswith(".xml") else "application/json;charset=utf-8"
                write("aliyun_ecs_reply", http_reply(200, kind, path.read_bytes()))
    write("aliyun_ecs_reply", http_reply(404, "application/json;charset=utf-8", ECS_ERROR_JSON))
    write("aliyun_ecs_reply", http_reply(404, "text/xml;charset=utf-8", ECS_ERROR_XML))

    # Config: the embedded demo config and the README's example.
    write("config", (ROOT / "src" / "demo.toml").read_bytes())
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[-1]
    for block in re.findall(r"```toml\n(.*?)```", section, re.S)[:1]:
        write("config", block)

    # Simulator seeds: the built-in demo clouds.
    write("sim_seed", (ROOT / "src" / "sim" / "demo.toml").read_bytes())

    # Mappings: each table, its index first (the target's first byte picks the table it replaces).
    for index, name in enumerate(MAPPINGS):
        write("mappings", bytes([index]) + (ROOT / "mappings" / name).read_bytes())

    for folder in sorted(CORPUS.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
