#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the CloudWatch Logs samples under samples/cloudwatch/ (standard library only).

The files have the shapes CloudWatch Logs subscriptions deliver (a subscription filter sends
gzip-compressed JSON payloads to Kinesis, Firehose or Lambda):

  cloudtrail-via-cwlogs.json.gz  DATA_MESSAGE, gzip: CloudTrail records delivered through the
                                 trail's CloudWatch Logs group (the same events the trail also
                                 delivered to S3: taken from samples/trail/)
  app-payments.json.gz           DATA_MESSAGE, gzip: an ECS service's application logs (JSON and
                                 plain text lines, one multi-line stack trace)
  lambda-envelope-orders.json    what a Lambda subscriber receives: {"awslogs":{"data":
                                 base64(gzip(payload))}} for a Lambda function's own logs
  control-message.json.gz        CONTROL_MESSAGE: the health check CloudWatch Logs sends when a
                                 subscription is created (not an event: skipped and counted)

Same output for the same input: seeded randomness, gzip mtime 0. Run from the repository root:
    python3 samples/make-cloudwatch.py
"""

import base64
import datetime as dt
import glob
import gzip
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cloudwatch")
rng = random.Random(7)


def ms(iso):
    t = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000)


def iso_ms(t_ms):
    t = dt.datetime.fromtimestamp(t_ms / 1000, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t_ms % 1000)


def event_id():
    """CloudWatch Logs event ids are 56-digit decimal strings."""
    return "".join(rng.choice("0123456789") for _ in range(56))


def payload(owner, group, stream, events, filt):
    return {"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group, "logStream": stream,
            "subscriptionFilters": [filt],
            "logEvents": [{"id": event_id(), "timestamp": t, "message": m} for t, m in events]}


def gz(obj):
    return gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def cloudtrail_via_cwlogs():
    """60 records of one account and region, as the trail's log group holds them."""
    files = sorted(glob.glob(os.path.join(HERE, "trail", "AWSLogs", "*", "CloudTrail", "us-east-1", "*", "*", "*",
                                          "*.json.gz")))
    if not files:
        sys.exit("make-cloudwatch.py: samples/trail/ is empty: run samples/make-samples.sh")
    with gzip.open(files[0], "rt") as f:
        recs = json.load(f)["Records"][:60]
    acct = recs[0]["recipientAccountId"]
    events = []
    for r in recs:
        # CloudTrail writes compact JSON to CloudWatch Logs; the log event's timestamp is the
        # event time (delivery happens a few minutes later).
        events.append((ms(r["eventTime"]), json.dumps(r, separators=(",", ":"))))
    return gz(payload(acct, "aws-cloudtrail-logs-%s-4e3c1a2b" % acct, "%s_CloudTrail_us-east-1" % acct, events,
                      "cloudtrail-to-trailwatch"))


def app_payments():
    t = ms("2026-11-02T09:14:00Z")
    task = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    events = []
    for i in range(36):
        t += rng.randint(50, 4000)
        req = "req-%08x" % rng.getrandbits(32)
        r = rng.random()
        if i == 20:
            msg = ("%s ERROR unhandled exception in POST /v1/charges request_id=%s\n"
                   "Traceback (most recent call last):\n"
                   "  File \"/app/payments/api.py\", line 88, in create_charge\n"
                   "    resp = gateway.charge(card, amount)\n"
                   "  File \"/app/payments/gateway.py\", line 41, in charge\n"
                   "    raise GatewayTimeout(\"card network did not answer in 3000 ms\")\n"
                   "payments.gateway.GatewayTimeout: card network did not answer in 3000 ms" % (iso_ms(t), req))
        elif r < 0.6:
            msg = json.dumps({"level": "info", "ts": iso_ms(t), "msg": "charge created", "request_id": req,
                              "amount_cents": rng.choice([499, 1299, 2500, 9900]), "currency": "EUR",
                              "customer": "cus_%06d" % rng.randint(1, 999999)}, separators=(",", ":"))
        elif r < 0.85:
            msg = "%s INFO GET /healthz 200 %dms" % (iso_ms(t), rng.randint(1, 9))
        else:
            msg = "%s WARN retrying card network call (attempt %d) request_id=%s" % (iso_ms(t), rng.randint(2, 3),
                                                                                     req)
        events.append((t, msg))
    return gz(payload("205380810795", "/ecs/payments-api", "ecs/payments-api/" + task, events, "app-logs"))


def lambda_envelope():
    t = ms("2026-11-03T12:00:00Z")
    stream = "2026/11/03/[$LATEST]" + "".join(rng.choice("0123456789abcdef") for _ in range(32))
    events = []
    for _ in range(3):
        req = "%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                               rng.getrandbits(12), rng.getrandbits(48))
        events.append((t, "START RequestId: %s Version: $LATEST\n" % req))
        order = rng.randint(10000, 99999)
        t += rng.randint(5, 40)
        events.append((t, "%s\t%s\tINFO\tcreated order %d for customer cus_%06d\n" % (iso_ms(t), req, order,
                                                                                     rng.randint(1, 999999))))
        dur = rng.uniform(20, 300)
        t += int(dur)
        events.append((t, "END RequestId: %s\n" % req))
        events.append((t, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: 256 MB\t"
                          "Max Memory Used: %d MB\t\n" % (req, dur, int(dur) + 1, rng.randint(60, 90))))
        t += rng.randint(1000, 60000)
    data = base64.b64encode(gz(payload("205380810795", "/aws/lambda/orders-api", stream, events,
                                       "orders-to-trailwatch"))).decode()
    return (json.dumps({"awslogs": {"data": data}}, indent=2) + "\n").encode()


def control_message():
    return gz({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
               "subscriptionFilters": [],
               "logEvents": [{"id": "", "timestamp": ms("2026-11-02T00:00:00Z"),
                              "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]})


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in (("cloudtrail-via-cwlogs.json.gz", cloudtrail_via_cwlogs()),
                       ("app-payments.json.gz", app_payments()),
                       ("lambda-envelope-orders.json", lambda_envelope()),
                       ("control-message.json.gz", control_message())):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print("wrote samples/cloudwatch/%s (%d bytes)" % (name, len(data)))


if __name__ == "__main__":
    main()
