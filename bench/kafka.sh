#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/kafka.sh: the end-to-end Kafka benchmark (`make bench`). Fills a 4-partition topic of
# librdkafka's mock cluster (a Kafka-protocol broker on 127.0.0.1, hosted by build/bench/kafka_cluster)
# with the benchmark file, one event per message, and times `trailwatch run --count N` from start
# until every event is stored and its offset committed. The mock broker keeps only ~5 MB per
# partition, so the producer runs alongside, paced to stay <= 3 MB ahead of the group's committed
# offsets (see bench/kafka_cluster.c): the consumer sets the pace and nothing is lost to retention. In the same run it times
# `trailwatch ingest` of the same file into a fresh store: the target is a Kafka rate of at least
# 80% of the file-ingest rate. Reports events/s, peak RSS and the number of commits (batches).
#
#   sh bench/kafka.sh build/trailwatch build/bench/kafka_cluster
#   BENCH_DATA=/path/ct-1m.jsonl.gz   the file (default bench/data/ct-1m.jsonl.gz, made by bench/run.sh)
#   BENCH_KAFKA_EVENTS=N              use the first N records only
set -eu

bin=${1:-build/trailwatch}
cluster=${2:-build/bench/kafka_cluster}
data=${BENCH_DATA:-bench/data/ct-1m.jsonl.gz}
[ -x "$bin" ] && [ -x "$cluster" ] || { echo "bench: build $bin and $cluster first (make bench)" >&2; exit 2; }
[ -f "$data" ] || { echo "bench: $data is missing (bench/run.sh makes it)" >&2; exit 2; }

tmpd=$(mktemp -d "${TMPDIR:-/tmp}/tw-kbench.XXXXXX")
cleanup() {
	[ -n "${BENCH_KEEP:-}" ] && { echo "bench: kept $tmpd"; return; }
	exec 3>&- 2>/dev/null || true
	[ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
	rm -rf "$tmpd"
}
trap cleanup EXIT INT TERM

input=$data
if [ -n "${BENCH_KAFKA_EVENTS:-}" ]; then
	zcat -f "$data" | head -n "$BENCH_KAFKA_EVENTS" >"$tmpd/input.jsonl"
	input=$tmpd/input.jsonl
fi

measure() { # CMD...: prints "seconds peak_rss_kb exit_code" (the child's peak RSS)
	python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
with open("/dev/null", "wb") as null:
    p = subprocess.run(sys.argv[1:], stdout=null, stderr=subprocess.PIPE)
dt = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(p.stderr.decode(errors="replace"))
print("%.3f %d %d" % (dt, rss, p.returncode))
PY
}

echo "bench: filling a 4-partition topic of the mock cluster with $input"
mkfifo "$tmpd/hold"
records=$(zcat -f "$input" | grep -c .)
"$cluster" --topic cloudtrail --partitions 4 --group bench "$input" <"$tmpd/hold" >"$tmpd/cluster.out" 2>"$tmpd/cluster.err" &
cpid=$!
exec 3>"$tmpd/hold" # the cluster serves until this closes
i=0
until grep -q '^brokers' "$tmpd/cluster.out" 2>/dev/null; do
	kill -0 "$cpid" 2>/dev/null || { echo "bench: the mock cluster died:" >&2; cat "$tmpd/cluster.err" >&2; exit 1; }
	sleep 1
	i=$((i + 1))
	[ $i -lt 60 ] || { echo "bench: the mock cluster did not start within a minute" >&2; exit 1; }
done
brokers=$(sed -n 's/^brokers //p' "$tmpd/cluster.out")

echo "bench: trailwatch run --count N (4 partitions, one consumer) and trailwatch ingest of the same records"
set -- $(measure "$bin" run --store "$tmpd/kstore" --kafka "$brokers" --topic cloudtrail --group bench \
	--count "$records" --status-interval 3600 ${BENCH_KAFKA_X:-} 2>"$tmpd/run.err")
run_s=$1 run_rss=$2 run_rc=$3
if [ "$run_rc" -ne 0 ]; then
	echo "bench: trailwatch run failed (exit $run_rc):" >&2
	tail -20 "$tmpd/run.err" >&2
	exit 1
fi
grep -q '^produced' "$tmpd/cluster.out" || { echo "bench: the producer did not finish" >&2; exit 1; }
cat "$tmpd/cluster.err" | grep -v MOCK || true
set -- $(measure "$bin" ingest --quiet --store "$tmpd/fstore" "$input" 2>"$tmpd/ingest.err")
ing_s=$1 ing_rss=$2
stored=$("$bin" store stats --format json "$tmpd/kstore" | sed 's/.*"records":\([0-9]*\).*/\1/')
commits=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(s.get("commits",0) for s in d["kafka"]), sum(s.get("batches",0) for s in d["kafka"]))' "$tmpd/kstore/status.json")
set -- $commits

echo
echo "results: Kafka end to end ($records messages, 4 partitions, mock cluster on 127.0.0.1):"
awk -v r="$records" -v s="$run_s" -v rss="$run_rss" -v is="$ing_s" -v irss="$ing_rss" -v st="$stored" \
	-v c="$1" -v b="$2" 'BEGIN {
	printf "  %-34s %8.2f s %11.0f events/s   peak RSS %6.1f MB\n", "trailwatch run (until lag 0)", s, r / s, rss / 1024
	printf "  %-34s %8.2f s %11.0f events/s   peak RSS %6.1f MB\n", "trailwatch ingest (same records)", is, r / is, irss / 1024
	printf "  Kafka rate = %.0f%% of the file-ingest rate (target >= 80%%)\n", 100 * is / s
	printf "  stored %d of %d; %d batches, %d commits (%.0f messages per commit)\n", st, r, b, c, c ? r / c : 0 }'
