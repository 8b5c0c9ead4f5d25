#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/anomalies.sh: recall and false findings of the behaviour detectors (rate/error-rate
# insights, first-seen) on generated CloudTrail with planted, labelled incidents. Generates 7 days
# (200,000 events, seed 3) with ../shared/bench/gen-cloudtrail, ingests them into a fresh store
# (which runs the detectors), and compares STORE/anomalies/anomalies.jsonl with the labels.
# Writes only under build/anomalies/. Usage: sh bench/anomalies.sh [build/trailwatch]
#   BENCH_EVENTS=200000 BENCH_DAYS=7 BENCH_SEED=3   the data set
#
# A finding matches a label when their spans overlap (10 minutes of slack) and it names the
# label's principal (as its principal or an insight contributor) or cites one of its event ids.
# An insight's start and end count as one finding. Kinds these detectors are meant to catch:
# access_denied_burst (error-rate insight), destructive_spike and api_rate_spike (call-rate
# insights, first-seen API), new_ip_console_login and root_console_login_no_mfa
# (console_login_new_ip); logging_tamper and access_key_for_other_user only when the API is new
# to the principal (first_seen_api); service_silence is the anomaly band's (a drop, not a rise).
set -eu

BIN=${1:-build/trailwatch}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
GEN=${TW_SHARED:-../shared}/bench/gen-cloudtrail
OUT=build/anomalies
EVENTS=${BENCH_EVENTS:-200000}
DAYS=${BENCH_DAYS:-7}
SEED=${BENCH_SEED:-3}

[ -f "$GEN" ] || { echo "bench-anomalies: skipped: $GEN not found (../shared is absent)"; exit 0; }
[ -x "$BIN" ] || { echo "bench-anomalies: $BIN is not built" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT"
# gen-cloudtrail reads --days as a float and passes the span to range(): make the span an
# integer (as samples/make-samples.sh does).
python3 - "$GEN" --events "$EVENTS" --days "$DAYS" --seed "$SEED" --s3-layout "$OUT/trail" \
	--anomalies "$OUT/labels.jsonl" <<'PY'
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("gen_cloudtrail", sys.argv[1])
spec = importlib.util.spec_from_loader("gen_cloudtrail", loader)
gen = importlib.util.module_from_spec(spec)
loader.exec_module(gen)
init = gen.Generator.__init__
def fixed_init(self, args):
    init(self, args)
    self.span = int(self.span)
gen.Generator.__init__ = fixed_init
sys.exit(gen.main(sys.argv[2:]))
PY
start=$(date +%s)
"$BIN" ingest --quiet --store "$OUT/store" "$OUT/trail" >/dev/null
end=$(date +%s)
echo "bench-anomalies: $EVENTS events over $DAYS days (seed $SEED) ingested with the detectors in $((end - start)) s"
python3 - "$OUT/labels.jsonl" "$OUT/store/anomalies/anomalies.jsonl" "$DAYS" <<'PY'
import json, sys
from datetime import datetime, timezone

def ms(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)

labels = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
found = {}
for l in open(sys.argv[2]):
    try:
        a = json.loads(l)
    except ValueError:
        continue
    f = found.setdefault(a["id"], {"detector": a["detector"], "start": a["start_ms"], "end": a["end_ms"],
                                   "principals": set(), "ids": set(), "source": a["eventSource"]})
    f["end"] = max(f["end"], a["end_ms"])
    f["principals"].add(a["principal"])
    for c in a["insight_contributors"]["principals"]:
        f["principals"].add(c["key"])
    f["ids"].update(a["event_ids"])
days = float(sys.argv[3])
slack = 10 * 60 * 1000
matched = set()
print("%-28s %-6s %s" % ("label kind", "found", "by"))
for lab in labels:
    s, e = ms(lab["start"]), ms(lab["end"])
    by = []
    for fid, f in found.items():
        if f["start"] > e + slack or f["end"] < s - slack:
            continue
        if lab.get("principal") in f["principals"] or f["ids"] & set(lab.get("event_ids", [])) or \
                (not lab.get("principal") and f["source"] == lab.get("eventSource")):
            by.append(f["detector"])
            matched.add(fid)
    print("%-28s %-6s %s" % (lab["kind"], "yes" if by else "no", ",".join(sorted(set(by)))))
false = [f for fid, f in found.items() if fid not in matched]
per = {}
for f in false:
    per[f["detector"]] = per.get(f["detector"], 0) + 1
print("findings: %d (insights counted once), matching a label: %d, false: %d = %.1f per day (%s)" % (
    len(found), len(matched), len(false), len(false) / days,
    ", ".join("%s %d" % kv for kv in sorted(per.items())) or "none"))
PY
