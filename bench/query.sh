#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/query.sh: query latency on a store of 1M CloudTrail records (not part of make test).
# Builds the store once (cached next to the data, keyed by the data file's size) with
# `trailwatch ingest`, then times four questions as whole processes (start-up included, median
# of 5) next to `zcat | jq` answering the same questions once each:
#   q1 one principal's events in one hour      q2 top 10 eventName by count over all
#   q3 everything touching one bucket          q4 AccessDenied count by principal per hour
# The values (principal, hour, bucket) are picked from the data.
#
#   sh bench/query.sh [build/trailwatch]
#   BENCH_DATA=/path/ct-1m.jsonl.gz    the input (default /tmp/bench/ct-1m.jsonl.gz)
#   BENCH_STORE=/path/store            where the store is cached (default $BENCH_DATA.store)
#   BENCH_QUICK=1                      jq reads the first 100k lines only; times are extrapolated
set -eu

bin=${1:-build/trailwatch}
data=${BENCH_DATA:-/tmp/bench/ct-1m.jsonl.gz}
store=${BENCH_STORE:-$data.store}
quick=${BENCH_QUICK:-0}
[ -x "$bin" ] || { echo "bench: $bin is not built" >&2; exit 2; }
[ -f "$data" ] || { echo "bench: $data is missing (set BENCH_DATA)" >&2; exit 2; }

stamp="$(wc -c < "$data")"
# Rebuild when the data changed or this binary cannot read the cached store (an older format).
if [ ! -f "$store/.bench-stamp" ] || [ "$(cat "$store/.bench-stamp")" != "$stamp" ] ||
	! "$bin" store stats "$store" >/dev/null 2>&1; then
	rm -rf "$store"
	echo "bench: building $store from $data (once)"
	t0=$(date +%s.%N)
	"$bin" ingest --quiet --store "$store" "$data"
	"$bin" store compact "$store" > /dev/null
	echo "$stamp" > "$store/.bench-stamp"
	echo "bench: ingest+compact took $(echo "$(date +%s.%N) - $t0" | bc) s"
fi
"$bin" store stats "$store" | sed 's/^/  /'

# Values from the data: the most frequent IAM user principal, its busiest hour, a bucket.
pick() { "$bin" query -S "$store" --format csv "$1" | sed -n 2p; }
principal=$(pick 'filter identityType = "IAMUser" | stats count(*) as n by principal | sort n desc | limit 1' | cut -d, -f1)
hour=$(pick "filter principal = \"$principal\" | stats count(*) as n by bin(1h) | sort n desc | limit 1" | cut -d, -f1)
bucket=$(pick 'filter eventSource = "s3.amazonaws.com" | stats count(*) as n by resource | sort n desc | limit 1' | cut -d, -f1)
hour_end=$(python3 -c "import datetime as d,sys; t=d.datetime.strptime(sys.argv[1],'%Y-%m-%dT%H:%M:%SZ'); print((t+d.timedelta(seconds=3599)).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$hour")
echo "bench: principal=$principal hour=$hour bucket=$bucket"

q1="filter principal = \"$principal\""
q2='stats count(*) as n by eventName | sort n desc | limit 10'
q3="filter resource = \"$bucket\""
q4='filter errorCode = "AccessDenied" | stats count(*) by principal, bin(1h)'

# median5 CMD...: median wall seconds of 5 runs, stdout discarded.
median5() {
	python3 - "$@" <<'EOF'
import subprocess, sys, time
ts = []
for _ in range(5):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    ts.append(time.perf_counter() - t)
ts.sort()
print("%.1f" % (ts[2] * 1000))
EOF
}

jqtime() { # jqtime FILTER: seconds for zcat | jq (extrapolated to the whole file in quick mode)
	python3 - "$data" "$1" "$quick" <<'EOF'
import subprocess, sys, time
data, flt, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
head = "| head -n 100000" if quick else ""
t = time.perf_counter()
subprocess.run("zcat '%s' %s | jq -c %s > /dev/null" % (data, head, "'" + flt + "'"), shell=True, check=True)
s = time.perf_counter() - t
print("%.1f" % (s * 10 if quick else s))
EOF
}

P=$principal
j1=".|select(.userIdentity.arn==\"$P\" and .eventTime>=\"$hour\" and .eventTime<=\"$hour_end\")"
j2='.eventName'   # then sort | uniq -c in a real pipeline: the jq pass dominates
j3=".|select([.resources[]?.ARN, .requestParameters.bucketName?]|index(\"$bucket\") != null)"
j4='.|select(.errorCode=="AccessDenied")|[.userIdentity.arn, .eventTime[0:13]]'

printf '%-4s %-60s %10s %10s\n' id question "trailwatch" "zcat|jq"
for i in 1 2 3 4; do
	case $i in
	1) tw=$(median5 "$bin" query -S "$store" --from "$hour" --until "$hour_end" "$q1"); jq=$(jqtime "$j1"); d="one principal, one hour";;
	2) tw=$(median5 "$bin" query -S "$store" "$q2"); jq=$(jqtime "$j2"); d="top 10 eventName over all";;
	3) tw=$(median5 "$bin" query -S "$store" "$q3"); jq=$(jqtime "$j3"); d="everything touching $bucket";;
	4) tw=$(median5 "$bin" query -S "$store" "$q4"); jq=$(jqtime "$j4"); d="AccessDenied by principal per hour";;
	esac
	printf 'q%-3s %-60s %7s ms %8s s\n' "$i" "$d" "$tw" "$jq"
done
[ "$quick" = 1 ] && echo "(jq times extrapolated x10 from the first 100k lines)"
echo "plans:"
"$bin" query -S "$store" --explain --from "$hour" --until "$hour_end" "$q1" 2>&1 >/dev/null | sed 's/^/  q1 /'
"$bin" query -S "$store" --explain "$q2" 2>&1 >/dev/null | sed 's/^/  q2 /'
"$bin" query -S "$store" --explain "$q3" 2>&1 >/dev/null | sed 's/^/  q3 /'
"$bin" query -S "$store" --explain "$q4" 2>&1 >/dev/null | sed 's/^/  q4 /'
