#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/tools/exec_sink.py: the program the exec protocol's tests run. Usage:
#   exec_sink.py OUTDIR FAIL_FIRST ARG...
# Each run increments OUTDIR/runs; the first FAIL_FIRST runs exit 3 (after printing a reason on
# stderr); the others write OUTDIR/NNNN.json = {"argv": [ARG...], "stdin": the text read}.
import json, os, sys

out, fail_first = sys.argv[1], int(sys.argv[2])
data = sys.stdin.read()
runs_path = os.path.join(out, "runs")
runs = int(open(runs_path).read()) if os.path.exists(runs_path) else 0
runs += 1
with open(runs_path, "w") as f:
    f.write(str(runs))
if runs <= fail_first:
    sys.stderr.write("sink refused run %d\n" % runs)
    sys.exit(3)
n = len([x for x in os.listdir(out) if x.endswith(".json")]) + 1
with open(os.path.join(out, "%04d.json" % n), "w") as f:
    json.dump({"argv": sys.argv[3:], "stdin": data}, f)
