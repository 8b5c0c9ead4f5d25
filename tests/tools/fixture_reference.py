#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reference counts for the real fixtures in ../shared/data, computed independently of trailwatch.

Python's json module plays the decoder: for every fixture file it says how many CloudTrail events,
Insights events, CloudWatch log events, digests, CONTROL_MESSAGEs and skipped objects a correct
decoder must find, and whether it must quarantine something. tests/unit/test_fixtures_shared.c
compares trailwatch's own counts with this table (tests/golden/fixture_counts.tsv).

Regenerate: python3 tests/tools/fixture_reference.py ../shared/data > tests/golden/fixture_counts.tsv

The classification rules (the same as ingest/ documents):
  - a JSON array: each element is a record; {"Records": [...]}: each element is a record
  - CloudTrail record: has eventVersion, or eventTime and eventName, or eventID and eventSource,
    and is not a Lambda Kinesis/S3 event record (a "kinesis" key, or an eventSource "aws:...");
    it needs a parsable eventTime, else it is quarantined; eventType AwsCloudTrailInsight = Insights
  - digest: has digestPublicKeyFingerprint, digestS3Bucket or digestStartTime (counted, not an event)
  - CloudWatch Logs subscription payload: messageType DATA_MESSAGE -> one event per logEvents entry
    (a CloudTrail event when the message is a CloudTrail record); CONTROL_MESSAGE -> counted
  - envelopes: {"awslogs":{"data":b64}}, {"kinesis":{"data":b64}}, Firehose {"records":[{"data":b64}]},
    EventBridge {"detail-type": "AWS API Call via CloudTrail", "detail": {...}}: decoded and counted
    as what they hold; base64 -> gzip/zlib -> possibly several payloads back to back
  - a log message that is a CloudTrail record cut short: quarantined
  - anything else that is valid JSON (objects, strings, numbers): skipped; a line that is not JSON and not "<ISO time> <message>": quarantined
Wrapped fixtures (panther's {"log": ...}, the AWS docs' {"record": ...}) are unwrapped first, one
record per line; the test does the same.
"""
import base64, gzip, json, os, re, sys, zlib

WRAPPED = {
    "panther_rule_tests_cloudtrail.jsonl": "log",
    "panther_test_scenarios.jsonl": "log",
    "cloudtrail_examples_from_user_guide.jsonl": "record",
}
SKIP_NAMES = re.compile(r"(LICENSE|NOTICE|SOURCES\.tsv|README|\.md$|unparseable_example_blocks\.txt|panther_rule_tests_vpcflow)")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\s")
TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$|^\d{8}T\d{6}Z$|^\d{10,13}$")


def zero():
    return {"cloudtrail": 0, "insight": 0, "cwlog": 0, "digests": 0, "control": 0, "skipped": 0, "rejects": 0}


def is_ct(o):
    # Lambda's Kinesis and S3 event records also carry eventVersion/eventID/eventSource, with an
    # eventSource of "aws:kinesis" / "aws:s3"; CloudTrail's eventSource is a service host name.
    if "kinesis" in o or str(o.get("eventSource", "")).startswith("aws:"):
        return False
    return "eventVersion" in o or ("eventTime" in o and "eventName" in o) or ("eventID" in o and "eventSource" in o)


def good_time(t):
    return isinstance(t, str) and TIME.match(t) is not None


def blob(data, c):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif len(data) > 1 and data[0] == 0x78 and ((data[0] << 8) | data[1]) % 31 == 0:
        data = zlib.decompress(data)
    text(data.decode("utf-8"), c)


def b64(s, c):
    blob(base64.b64decode(s), c)


def cw_message(msg, c):
    m = msg.strip()
    if m.startswith("{"):
        try:
            o = json.loads(m)
        except ValueError:
            o = None
        if isinstance(o, dict) and is_ct(o):
            record(o, c)
            return
        if o is None and '"eventVersion"' in m:
            # a CloudTrail record cut short (CloudWatch Logs truncates events over 256 KB)
            c["rejects"] += 1
            return
    c["cwlog"] += 1


def record(o, c):
    if isinstance(o, list):
        for e in o:
            record(e, c)
        return
    if not isinstance(o, dict):
        c["skipped"] += 1
        return
    if "digestPublicKeyFingerprint" in o or "digestS3Bucket" in o or "digestStartTime" in o:
        c["digests"] += 1
    elif is_ct(o):
        if not good_time(o.get("eventTime")):
            c["rejects"] += 1
        elif o.get("eventType") == "AwsCloudTrailInsight":
            c["insight"] += 1
        else:
            c["cloudtrail"] += 1
    elif isinstance(o.get("Records"), list):
        for e in o["Records"]:
            record(e, c)
    elif o.get("messageType") == "DATA_MESSAGE":
        for e in o.get("logEvents", []):
            cw_message(e.get("message", ""), c)
    elif o.get("messageType") == "CONTROL_MESSAGE":
        c["control"] += 1
    elif isinstance(o.get("awslogs"), dict) and "data" in o["awslogs"]:
        b64(o["awslogs"]["data"], c)
    elif isinstance(o.get("kinesis"), dict) and "data" in o["kinesis"]:
        b64(o["kinesis"]["data"], c)
    elif isinstance(o.get("records"), list) and all(isinstance(r, dict) and "data" in r for r in o["records"]):
        for r in o["records"]:
            b64(r["data"], c)
    elif o.get("detail-type") == "AWS API Call via CloudTrail" and isinstance(o.get("detail"), dict):
        record(o["detail"], c)
    else:
        c["skipped"] += 1


def text(s, c):
    dec = json.JSONDecoder()
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if s[i] in "{[":
            try:
                o, j = dec.raw_decode(s, i)
                record(o, c)
                i = j
                continue
            except ValueError:
                pass
        # not JSON here: one line of text
        j = s.find("\n", i)
        j = n if j < 0 else j
        line = s[i:j]
        if ISO.match(line + " "):
            cw_message(line.split(" ", 1)[1] if " " in line else "", c)
        else:
            c["rejects"] += 1
        i = j + 1


def main(root):
    print("# file\tcloudtrail\tinsight\tcwlog\tdigests\tcontrol\tskipped\trejects")
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(base, f)
            rel = os.path.relpath(path, root)
            if not (rel.startswith("cloudtrail/") or rel.startswith("cloudwatch/")) or SKIP_NAMES.search(f):
                continue
            c = zero()
            raw = open(path, "rb").read()
            if f in WRAPPED:
                for line in raw.decode().splitlines():
                    if line.strip():
                        record(json.loads(line)[WRAPPED[f]], c)
            else:
                blob(raw, c)
            row = [str(c[k]) for k in ("cloudtrail", "insight", "cwlog", "digests", "control", "skipped", "rejects")]
            if c["rejects"] > 0 and "Bad" in f:
                # Structurally broken JSON: what survives depends on where a decoder resynchronises.
                # Only "something was quarantined" is specified ('*' = any count, '+' = at least one).
                row = ["*"] * 6 + ["+"]
            print("\t".join([rel] + row))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
