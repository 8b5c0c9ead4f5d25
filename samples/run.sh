#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# samples/run.sh: the demo `make run` runs: decodes everything under samples/ (an S3-layout
# CloudTrail trail and CloudWatch Logs payloads), prints the decode summary (events by kind, top
# principals and event names), one decoded event, and checks that the planted incidents listed in
# samples/labels.jsonl are all in the output; then ingests them into a store (twice: the second run
# stores nothing) and prints its stats. Works from a fresh clone: reads only samples/.
#
#   sh samples/run.sh build/trailwatch
set -eu

bin=${1:-build/trailwatch}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$bin" ] || { echo "run.sh: $bin is not built (make build/trailwatch)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trailwatch-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "== trailwatch decode --summary samples/trail samples/cloudwatch"
rc=0
"$bin" decode --summary --quarantine "$tmp/quarantine.jsonl" "$here/trail" "$here/cloudwatch" \
	>"$tmp/events.jsonl" 2>"$tmp/summary.txt" || rc=$?
sed "s|$here/|samples/|g" "$tmp/summary.txt"
if [ "$rc" -ne 0 ]; then
	echo "run.sh: FAILED: trailwatch decode exited with $rc (0 expected: the samples are all valid)"
	exit 1
fi

events=$(wc -l <"$tmp/events.jsonl" | tr -d ' ')
ct=$(grep -c '^{"kind":"cloudtrail"' "$tmp/events.jsonl" || true)
cw=$(grep -c '^{"kind":"cwlog"' "$tmp/events.jsonl" || true)

if ! command -v jq >/dev/null 2>&1; then
	echo "(jq is not installed: skipping the event display and the incident check; make deps installs it)"
	echo "run.sh: OK: $events events decoded from samples/ ($ct cloudtrail, $cw cloudwatch logs)"
	exit 0
fi

echo
echo "== one decoded event (first line of the output, through jq)"
head -n 1 "$tmp/events.jsonl" | jq .

echo
echo "== a CloudWatch Logs event (the Lambda envelope)"
grep '"logGroup":"/aws/lambda/orders-api"' "$tmp/events.jsonl" | sed -n 2p | jq -c '{time, logGroup, message}'

echo
echo "== planted incidents (samples/labels.jsonl) in the decoded events"
# Event ids of the CloudTrail events, once each (the CloudWatch copy of a record has the same id).
jq -r 'select(.kind == "cloudtrail") | .eventID' "$tmp/events.jsonl" | sort -u >"$tmp/ids"
found=0
total=0
while IFS= read -r label; do
	total=$((total + 1))
	kind=$(printf '%s' "$label" | jq -r .kind)
	start=$(printf '%s' "$label" | jq -r .start)
	nids=$(printf '%s' "$label" | jq '.event_ids // [] | length')
	if [ "$nids" -gt 0 ]; then
		printf '%s' "$label" | jq -r '.event_ids[]' | sort -u >"$tmp/want"
		have=$(comm -12 "$tmp/want" "$tmp/ids" | wc -l | tr -d ' ')
		who=$(printf '%s' "$label" | jq -r .principal)
		printf '  %-26s %s  %-55s %s/%s events\n' "$kind" "$start" "$who" "$have" "$nids"
		[ "$have" -eq "$nids" ] && found=$((found + 1))
	else
		# A silence: no event of that source inside the window.
		src=$(printf '%s' "$label" | jq -r .eventSource)
		end=$(printf '%s' "$label" | jq -r .end)
		inside=$(jq -r --arg s "$src" --arg a "$start" --arg b "$end" \
			'select(.eventSource == $s and .time >= $a and .time < $b) | .eventID' "$tmp/events.jsonl" | wc -l | tr -d ' ')
		printf '  %-26s %s  %-55s %s events in the hour (0 expected)\n' "$kind" "$start" "$src silent until $end" "$inside"
		[ "$inside" -eq 0 ] && found=$((found + 1))
	fi
done <"$here/labels.jsonl"

echo
echo "== who used a root account? (a who-did-what question, answered with jq until queries exist)"
jq -r 'select(.identityType == "Root")
	| "  " + ([.time, .principal, .eventName, "from " + .sourceIPAddress, (.errorCode // empty)] | join("  "))' \
	"$tmp/events.jsonl" | sort -u

echo
echo "== trailwatch ingest --store STORE samples/trail samples/cloudwatch (twice: the second run stores nothing)"
"$bin" ingest --store "$tmp/store" "$here/trail" "$here/cloudwatch" 2>&1 | sed "s|$tmp/store|STORE|g; s|$here/|samples/|g"
"$bin" ingest --store "$tmp/store" "$here/trail" "$here/cloudwatch" 2>&1 | grep 'events:' | sed 's/^/second run:/'
"$bin" store stats "$tmp/store" | sed "s|$tmp/store|STORE|"
"$bin" store verify "$tmp/store" | sed "s|$tmp/store|STORE|"
stored=$("$bin" store stats --format json "$tmp/store" | jq .records)

echo
if [ "$found" -ne "$total" ]; then
	echo "run.sh: FAILED: only $found of $total planted incidents found in the decoded events"
	exit 1
fi
echo "run.sh: OK: $events events decoded from samples/ ($ct cloudtrail, $cw cloudwatch logs); $found/$total planted incidents present; $stored stored once each"
