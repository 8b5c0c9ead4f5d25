#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/tools/parse_mail.py: the independent reader of the mails the notifier writes. Parses a
# mail file with Python's email package (policy.default: RFC 2047 words decoded, transfer
# encodings undone) and prints JSON: {"headers": {name: [values]}, "date_epoch": seconds,
# "content_type", "body" (text of a single part, line breaks as \n), "parts": [{"content_type",
# "body"}] for multipart mails, "defects": [...]}.
import email, json, sys
from email import policy
from email.utils import parsedate_to_datetime

with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=policy.default)


def text(part):
    c = part.get_content()
    if isinstance(c, bytes):
        c = c.decode("utf-8")
    return c.replace("\r\n", "\n")


out = {"headers": {}, "content_type": msg.get_content_type(), "defects": [str(d) for d in msg.defects]}
for k in msg.keys():
    out["headers"].setdefault(k, []).extend(str(v) for v in msg.get_all(k))
if msg["Date"]:
    out["date_epoch"] = parsedate_to_datetime(str(msg["Date"])).timestamp()
if msg.is_multipart():
    out["parts"] = [{"content_type": p.get_content_type(), "body": text(p)}
                    for p in msg.iter_parts()]
else:
    out["body"] = text(msg)
json.dump(out, sys.stdout)
