#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reference evaluator for the query differential test (tests/unit/test_query_exec.c).

Usage: query_reference.py DATA.jsonl QUERIES.jsonl RESULTS.jsonl

DATA is CloudTrail JSON lines. Each line of QUERIES describes one query the C test ran, as JSON:
  {"id": 3, "text": "filter ...", "filter": EXPR, "stats": null | {"agg": "count" | "count_distinct",
   "field": PATH | null, "by": PATH | null}}
  EXPR: ["eq"|"ne", PATH, "v"] ["in", PATH, ["v", ...]] ["like", PATH, "substring"]
        ["regex", PATH, "pattern", icase] ["present", PATH] ["not", EXPR] ["and"|"or", EXPR, EXPR]
  PATH: a list of keys (strings) walked from the record.
RESULTS holds what trailwatch answered: {"id": 3, "rows": [...]}: event IDs for plain filters,
[group key, number] pairs for stats (key null when there is no "by"). More than 200 event IDs come
as {"id": 3, "count": N, "sum": S1, "sum2": S2}: the sums (mod 2^64) of h and h*h over the IDs,
h = 64-bit FNV-1a of the ID's UTF-8 bytes (a multiset fingerprint).

The semantics are the ones query/query.h documents, evaluated here straight from Python's json
module, written without looking at the C code: a missing key or JSON null is null; booleans are
the strings "true"/"false"; strings compare exactly; a comparison with null is false except
"= null"; like is a substring test; regexes are searched, unanchored, with re (the test only makes
patterns both engines read the same way). Results are compared as multisets. Prints "ok N queries"
and exits 0, or lists the disagreements and exits 1.
"""
import collections
import json
import re
import sys

MASK = (1 << 64) - 1


def walk(rec, path):
    v = rec
    for k in path:
        if isinstance(v, dict) and k in v:
            v = v[k]
        elif isinstance(v, list) and k.isdigit() and int(k) < len(v):
            v = v[int(k)]
        else:
            return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return v


class Column:
    """The values of one path over all records: distinct value -> set of record indexes."""

    def __init__(self, records, path):
        self.values = [walk(r, path) for r in records]
        self.index = collections.defaultdict(set)
        for i, v in enumerate(self.values):
            self.index[v].add(i)

    def where(self, pred):
        out = set()
        for v, ids in self.index.items():
            if pred(v):
                out |= ids
        return out


def main():
    data, queries, results = sys.argv[1:4]
    records = [json.loads(line) for line in open(data, encoding="utf-8") if line.strip()]
    everything = set(range(len(records)))
    columns = {}

    def col(path):
        key = tuple(path)
        if key not in columns:
            columns[key] = Column(records, path)
        return columns[key]

    number = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")

    def eq(v, lit):
        if v is None or lit is None:
            return v is None and lit is None
        if isinstance(v, str):
            return v == lit
        # a JSON number against a string literal: numerically when the literal is a number
        return bool(number.match(lit)) and float(lit) == float(v)

    def ev(e):
        op = e[0]
        if op == "and":
            return ev(e[1]) & ev(e[2])
        if op == "or":
            return ev(e[1]) | ev(e[2])
        if op == "not":
            return everything - ev(e[1])
        c = col(e[1])
        if op == "eq":
            return c.where(lambda v: eq(v, e[2]))
        if op == "ne":
            return c.where(lambda v: v is not None and not eq(v, e[2]))
        if op == "in":
            return c.where(lambda v: any(eq(v, x) for x in e[2]))
        if op == "like":
            return c.where(lambda v: v is not None and e[2] in str(v))
        if op == "regex":
            rx = re.compile(e[2], re.IGNORECASE if e[3] else 0)
            return c.where(lambda v: v is not None and rx.search(str(v)) is not None)
        if op == "present":
            return c.where(lambda v: v is not None)
        raise ValueError("unknown op %r" % op)

    mine = {}
    texts = {}
    for line in open(queries, encoding="utf-8"):
        q = json.loads(line)
        texts[q["id"]] = q["text"]
        ids = ev(q["filter"])
        st = q["stats"]
        if st is None:
            mine[q["id"]] = sorted(records[i]["eventID"] for i in ids)
            continue
        groups = collections.defaultdict(list)
        for i in ids:
            key = walk(records[i], st["by"]) if st["by"] else None
            groups[key].append(i)
        if not st["by"] and not groups:
            groups[None] = []
        rows = []
        for key, members in groups.items():
            if st["agg"] == "count":
                n = len(members)
            else:
                n = len({walk(records[i], st["field"]) for i in members} - {None})
            rows.append([key, n])
        mine[q["id"]] = sorted(rows, key=lambda r: (r[0] is not None, str(r[0]), r[1]))

    hashes = {}

    def fnv(s):
        if s not in hashes:
            h = 14695981039346656037
            for b in s.encode("utf-8"):
                h = ((h ^ b) * 1099511628211) & MASK
            hashes[s] = h
        return hashes[s]

    def fingerprint(ids):
        hs = [fnv(i) for i in ids]
        return sum(hs) & MASK, sum(h * h for h in hs) & MASK

    bad = 0
    seen = 0
    nonempty = 0
    for line in open(results, encoding="utf-8"):
        r = json.loads(line)
        seen += 1
        want = mine.get(r["id"])
        nonempty += bool(want)
        if "count" in r:
            if want is None or len(want) != r["count"] or fingerprint(want) != (r["sum"], r["sum2"]):
                bad += 1
                if bad <= 5:
                    print("query %d: %s" % (r["id"], texts.get(r["id"])))
                    print("  trailwatch: %d events; reference: %d events (or different ones)"
                          % (r["count"], len(want or [])))
            continue
        got = r["rows"]
        if got and isinstance(got[0], list):
            got = sorted(got, key=lambda x: (x[0] is not None, str(x[0]), x[1]))
        else:
            got = sorted(got)
        if got != want:
            bad += 1
            if bad <= 5:
                print("query %d: %s" % (r["id"], texts.get(r["id"])))
                gs, ws = collections.Counter(map(json.dumps, got)), collections.Counter(map(json.dumps, want or []))
                print("  trailwatch only: %s" % list((gs - ws).elements())[:5])
                print("  reference only:  %s" % list((ws - gs).elements())[:5])
    if seen != len(mine):
        print("results for %d queries, descriptions for %d" % (seen, len(mine)))
        bad += 1
    if bad:
        print("%d queries disagree" % bad)
        return 1
    print("ok %d queries (%d with a non-empty result)" % (seen, nonempty))
    return 0


if __name__ == "__main__":
    sys.exit(main())
