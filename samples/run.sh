#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# samples/run.sh: the main job `make run` runs on the samples: `trailwatch run` with
# samples/config/demo.json ingests samples/trail (an S3-layout CloudTrail trail) and
# samples/cloudwatch (CloudWatch Logs payloads) into a store, computes the metrics, evaluates the
# alarms and event rules on event time, and delivers the alarm emails to a local maildir (no SMTP
# server needed). Then a short report: events ingested, top principals, the alarms raised with the
# path of each email, and a check that every incident planted in the samples (samples/labels.jsonl)
# raised its alarm. Everything lands in build/run/ (kept: open the emails with any mail reader).
#
#   sh samples/run.sh build/trailwatch [OUTDIR]
set -eu

bin=${1:-build/trailwatch}
out=${2:-build/run}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$bin" ] || { echo "run.sh: $bin is not built (make build/trailwatch)" >&2; exit 2; }
command -v jq >/dev/null 2>&1 || { echo "run.sh: jq is needed for the report (make deps installs it)" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
store=$out/store
sed -e "s|@STORE@|$store|g" -e "s|@SAMPLES@|$here|g" "$here/config/demo.json" >"$out/trailwatch.json"

echo "== trailwatch run --config $out/trailwatch.json --exit-at-end"
echo "   (samples/config/demo.json: $(jq '.alarms | length' "$out/trailwatch.json") alarms," \
	"$(jq '.rules | length' "$out/trailwatch.json") event rule, emails to the maildir $store/mail)"
start=$(date +%s)
if ! "$bin" run --config "$out/trailwatch.json" --exit-at-end 2>"$out/run.log"; then
	cat "$out/run.log"
	echo "run.sh: FAILED: trailwatch run exited with an error (log above)"
	exit 1
fi
secs=$(($(date +%s) - start))
grep -E 'files:|alarms:|stopping' "$out/run.log" | sed -e 's/^[^ ]* [^ ]* *//' -e "s|$here/|samples/|g" -e 's/^/   /'

stats=$("$bin" store stats --format json "$store")
records=$(printf '%s' "$stats" | jq .records)
echo
echo "== report"
echo "events ingested: $records in the store ($secs s)"
echo
echo "top principals:"
"$bin" query --store "$store" --format csv \
	'filter kind = "cloudtrail" | stats count(*) as events by principal | sort events desc | limit 5' |
	tail -n +2 | awk -F, '{ printf "  %6d  %s\n", $NF, $1 }'

# the transitions to ALARM, in time order
"$bin" alarms history --store "$store" --format json |
	jq -c 'select(.type == "StateUpdate" and .new_state == "ALARM")' | jq -s -c 'sort_by(.time_ms) | .[]' \
	>"$out/raised.jsonl" || true
echo
echo "alarms raised: $(wc -l <"$out/raised.jsonl" | tr -d ' ') (trailwatch alarms history --store $store)"
jq -r '"  " + .time + "  " + .alarm' "$out/raised.jsonl"

echo
n=$(ls "$store/mail/new" 2>/dev/null | wc -l | tr -d ' ')
echo "emails delivered: $n (maildir $store/mail)"
for f in "$store"/mail/new/*; do
	[ -f "$f" ] || continue
	subj=$(grep -m1 '^Subject: ' "$f" | cut -c10- | tr -d '\r')
	printf '%s\t%s\n' "$subj" "$f"
done | sort | awk -F '\t' '{ printf "  %-62s %s\n", (length($1) > 62 ? substr($1, 1, 59) "..." : $1), $2 }'

# every planted incident must have raised its alarm: the alarm that watches for its kind went to
# ALARM between the incident's start and an hour after its end, and an email about it was delivered
alarm_for() {
	case $1 in
	access_denied_burst) echo unauthorized-api-calls-burst ;;
	root_console_login_no_mfa) echo root-account-usage ;;
	new_ip_console_login) echo new-console-login-ip ;;
	destructive_spike) echo destructive-calls-burst ;;
	logging_tamper) echo trail-tampering ;;
	access_key_for_other_user) echo access-key-for-another-user ;;
	api_rate_spike) echo secret-reads-spike ;;
	service_silence) echo ec2-silent-while-busy ;;
	*) echo "?" ;;
	esac
}
echo
echo "planted incidents (samples/labels.jsonl):"
found=0
total=0
while IFS= read -r label; do
	total=$((total + 1))
	kind=$(printf '%s' "$label" | jq -r .kind)
	s=$(date -u -d "$(printf '%s' "$label" | jq -r .start)" +%s)
	e=$(date -u -d "$(printf '%s' "$label" | jq -r .end)" +%s)
	alarm=$(alarm_for "$kind")
	hit=$(jq -r --arg a "$alarm" --argjson s "$((s * 1000))" --argjson e "$(((e + 3600) * 1000))" \
		'select(.alarm == $a and .time_ms >= $s and .time_ms <= $e) | .time' "$out/raised.jsonl" | head -n 1)
	mail=$(grep -l "^Subject: ALARM: \"$alarm\"" "$store"/mail/new/* 2>/dev/null | head -n 1 || true)
	if [ -n "$hit" ] && [ -n "$mail" ]; then
		found=$((found + 1))
		printf '  ok       %-26s -> %-30s %s\n' "$kind" "$alarm" "$(basename "$mail")"
	else
		printf '  MISSED   %-26s -> %-30s (no ALARM in the window or no email)\n' "$kind" "$alarm"
	fi
done <"$here/labels.jsonl"

echo
if [ "$found" -ne "$total" ]; then
	echo "run.sh: FAILED: $found of $total planted incidents raised their alarm"
	exit 1
fi
echo "run.sh: OK: $records events stored, $found/$total planted incidents raised their alarm, $n emails in $store/mail/new"
