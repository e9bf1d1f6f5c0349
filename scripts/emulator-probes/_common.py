"""Shared helpers for the emulator probes: clients pointed at the emulators, and a result log.

Run a probe with the emulators up, e.g.
    scripts/emulators run -- scripts/emulators tool python scripts/emulator-probes/s3_object_lock.py
Each probe prints one line per observation: "OK|DIFF|INFO  <what>: <observed>".
OK = behaves like AWS documents, DIFF = differs from AWS, INFO = fact worth knowing.
Exit code is 0 unless a probe itself crashes (observations never fail the run).
"""

import json
import os
import sys
import uuid

import boto3
import botocore
from botocore.config import Config

AWS = os.environ.get("STEWARD_TEST_AWS_ENDPOINT")
DDB = os.environ.get("STEWARD_TEST_DYNAMODB_ENDPOINT")
if not AWS or not DDB:
    sys.exit("run under `scripts/emulators run -- ...` or load the env file from `scripts/emulators start`")

_cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)


def client(service, endpoint=None):
    return boto3.client(
        service,
        endpoint_url=endpoint or (DDB if service in ("dynamodb", "dynamodbstreams") else AWS),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=_cfg,
    )


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def report(kind, what, observed):
    if not isinstance(observed, str):
        observed = json.dumps(observed, default=str, sort_keys=True)
    print(f"{kind:<5} {what}: {observed}", flush=True)


def err(e):
    """A ClientError as 'HTTP code Code: message'."""
    if isinstance(e, botocore.exceptions.ClientError):
        r = e.response
        return (f"HTTP {r.get('ResponseMetadata', {}).get('HTTPStatusCode')} "
                f"{r.get('Error', {}).get('Code')}: {r.get('Error', {}).get('Message')}")
    return f"{type(e).__name__}: {e}"


def attempt(what, fn, expect_error=None, ok_if=None):
    """Call fn(); report the result. expect_error: the AWS error code AWS would return
    (None = AWS succeeds). ok_if(result) -> bool decides OK/DIFF on success."""
    try:
        res = fn()
    except botocore.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        report("OK" if expect_error and code in expect_error.split("|") else "DIFF", what, err(e))
        return e
    except Exception as e:  # noqa: BLE001 (unimplemented operations surface as other errors)
        report("DIFF", what, err(e))
        return e
    if expect_error:
        report("DIFF", what, f"succeeded, AWS returns {expect_error}: {short(res)}")
    else:
        report("OK" if ok_if is None or ok_if(res) else "DIFF", what, short(res))
    return res


def short(res):
    if isinstance(res, dict):
        res = {k: v for k, v in res.items() if k != "ResponseMetadata"}
        for k, v in list(res.items()):
            if hasattr(v, "read"):
                res[k] = v.read()
    s = json.dumps(res, default=str, sort_keys=True)
    return s if len(s) <= 400 else s[:400] + "..."
