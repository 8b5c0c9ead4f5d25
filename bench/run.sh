#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh: the decode benchmark (`make bench`). Times `trailwatch decode FILE > /dev/null`
# against the usual baseline `zcat FILE | jq -c . > /dev/null` on the same 1M-record CloudTrail
# file, in one run (the machine is shared: compare the ratio, not absolute numbers), and reports
# events/s, MB/s of uncompressed JSON, the ratio, and trailwatch's peak RSS.
#
#   sh bench/run.sh build/trailwatch
#   BENCH_DATA=/path/ct-1m.jsonl.gz   use this file instead of bench/data/ct-1m.jsonl.gz
#   BENCH_QUICK=1                     run jq on the first 100k lines only and extrapolate
#   TW_SHARED=../shared               where gen-cloudtrail lives (to make the data file once)
set -eu

bin=${1:-build/trailwatch}
data=${BENCH_DATA:-bench/data/ct-1m.jsonl.gz}
quick=${BENCH_QUICK:-0}
[ -x "$bin" ] || { echo "bench: $bin is not built" >&2; exit 2; }

if [ ! -f "$data" ]; then
	gen=${TW_SHARED:-../shared}/bench/gen-cloudtrail
	[ -f "$gen" ] || { echo "bench: $data is missing and $gen is not there to make it (set TW_SHARED or BENCH_DATA)" >&2; exit 2; }
	echo "bench: generating $data with gen-cloudtrail --events 1000000 --seed 1 (about a minute)"
	mkdir -p "$(dirname "$data")"
	python3 "$gen" --events 1000000 --seed 1 -o "$data.tmp.gz"
	mv "$data.tmp.gz" "$data"
fi

# measure LABEL CMD...: runs CMD (stdout to /dev/null), prints "seconds peak_rss_kb exit_code".
# Python's getrusage(RUSAGE_CHILDREN) gives the child's peak RSS without GNU time.
measure() {
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

echo "bench: reading $data"
set -- $(zcat "$data" | wc -lc)
records=$1
ubytes=$2
gzbytes=$(wc -c <"$data" | tr -d ' ')
awk -v r="$records" -v u="$ubytes" -v g="$gzbytes" -v n="$(nproc)" 'BEGIN {
	printf "bench: %d records, %.1f MB of JSON (%.1f MB gzip), %d cores\n", r, u / 1e6, g / 1e6, n }'

row() { # label seconds records rss_kb note
	awk -v l="$1" -v s="$2" -v r="$3" -v u="$ubytes" -v rss="$4" -v note="$5" 'BEGIN {
		printf "  %-34s %8.2f s %11.0f events/s %8.1f MB/s", l, s, r / s, u / 1e6 / s
		if (rss > 0) printf "   peak RSS %6.1f MB", rss / 1024
		if (note != "") printf "   %s", note
		printf "\n" }'
}

echo "bench: trailwatch decode (all cores, then one thread)"
errf=$(mktemp "${TMPDIR:-/tmp}/tw-bench.XXXXXX")
trap 'rm -f "$errf"' EXIT INT TERM
set -- $(measure "$bin" decode --quiet "$data" 2>"$errf")
tw_s=$1 tw_rss=$2 tw_rc=$3
set -- $(measure "$bin" decode --quiet --threads 1 "$data" 2>>"$errf")
tw1_s=$1 tw1_rss=$2 tw1_rc=$3
if [ "$tw_rc" -ne 0 ] || [ "$tw1_rc" -ne 0 ]; then
	echo "bench: trailwatch decode failed (exit $tw_rc / $tw1_rc):" >&2
	head -20 "$errf" >&2
	exit 1
fi
rm -f "$errf"

if [ "$quick" = 1 ]; then
	jq_records=100000
	echo "bench: zcat | jq -c . on the first $jq_records lines (BENCH_QUICK=1; extrapolated to $records)"
	set -- $(measure sh -c "zcat '$data' | head -n $jq_records | jq -c ." 2>/dev/null)
	jq_s=$(awk -v s="$1" -v a="$jq_records" -v b="$records" 'BEGIN { printf "%.3f", s * b / a }')
	jq_note="(extrapolated from ${jq_records} lines)"
else
	echo "bench: zcat | jq -c . on the whole file (1-2 minutes; BENCH_QUICK=1 for a sample)"
	set -- $(measure sh -c "zcat '$data' | jq -c ." 2>/dev/null)
	jq_s=$1
	jq_note=""
fi

echo
echo "results ($records records, rates over the uncompressed JSON):"
row "trailwatch decode ($(nproc) threads)" "$tw_s" "$records" "$tw_rss" ""
row "trailwatch decode --threads 1" "$tw1_s" "$records" "$tw1_rss" ""
row "zcat | jq -c ." "$jq_s" "$records" 0 "$jq_note"
awk -v a="$tw_s" -v b="$jq_s" -v c="$tw1_s" 'BEGIN {
	printf "  ratio: trailwatch decode is %.1fx faster than zcat | jq (%.1fx on one thread)\n", b / a, b / c }'

# ---- the store: trailwatch ingest into a fresh store ------------------------------------------
# Yardsticks on the same records: the raw JSONL, gzip -9 and zstd -19 of it (sizes computed once
# and cached beside the data file: zstd -19 of 1.25 GB takes minutes), and the time of gzip -6 on
# the raw file, measured in this run since it moves with the machine.
[ "${BENCH_STORE:-1}" = 1 ] || exit 0
raw="$data.raw"
sizes="$data.sizes"
if [ ! -f "$raw" ]; then
	echo "bench: writing the raw JSONL once ($raw)"
	zcat "$data" >"$raw.tmp" && mv "$raw.tmp" "$raw"
fi
if [ ! -f "$sizes" ]; then
	echo "bench: computing gzip -9 and zstd -19 sizes of the raw JSONL once (several minutes)"
	g9=$(gzip -9 -c "$raw" | wc -c)
	z19=$(zstd -19 -T0 -q -c "$raw" | wc -c)
	echo "$g9 $z19" >"$sizes.tmp" && mv "$sizes.tmp" "$sizes"
fi
set -- $(cat "$sizes")
g9=$1 z19=$2
tmpd=$(mktemp -d "${TMPDIR:-/tmp}/tw-bench-store.XXXXXX")
trap 'rm -rf "$tmpd"' EXIT INT TERM
echo "bench: trailwatch ingest into a fresh store, and gzip -6 of the raw file"
set -- $(measure "$bin" ingest --quiet --store "$tmpd/store" "$data" 2>"$tmpd/err")
ing_s=$1 ing_rss=$2 ing_rc=$3
if [ "$ing_rc" -ne 0 ]; then
	echo "bench: trailwatch ingest failed (exit $ing_rc):" >&2
	head -20 "$tmpd/err" >&2
	exit 1
fi
store_size() { # bytes of the store directory, minus the (empty) quarantine file
	b=$(du -sb "$tmpd/store" | cut -f1)
	q=$(wc -c <"$tmpd/store/quarantine.jsonl" 2>/dev/null || echo 0)
	echo $((b - q))
}
store_bytes=$(store_size)
# the price of the metrics (built-in series, the 15 CIS filters and the behaviour detectors): the
# same ingest without them, right after (back to back: the machine may be shared)
set -- $(measure "$bin" ingest --quiet --no-metrics --store "$tmpd/store-nm" "$data" 2>"$tmpd/err")
nm_s=$1 nm_rss=$2
rm -rf "$tmpd/store-nm"
set -- $(measure "$bin" store compact "$tmpd/store")
cmp_s=$1 cmp_rss=$2
compact_bytes=$(store_size)
set -- $(measure gzip -6 -c "$raw")
gz6_s=$1
echo
echo "results: the store ($records records, rates over the uncompressed JSON):"
row "trailwatch ingest" "$ing_s" "$records" "$ing_rss" ""
row "trailwatch ingest --no-metrics" "$nm_s" "$records" "$nm_rss" ""
row "trailwatch store compact (after)" "$cmp_s" "$records" "$cmp_rss" ""
row "gzip -6 of the raw JSONL (yardstick)" "$gz6_s" "$records" 0 ""
awk -v n="$nm_s" -v nr="$nm_rss" -v r="$ing_rss" -v s="$store_bytes" -v c="$compact_bytes" -v u="$ubytes" -v g="$g9" -v z="$z19" -v a="$ing_s" -v b="$gz6_s" 'BEGIN {
	printf "  sizes: raw JSONL %.1f MB, gzip -9 %.1f MB, zstd -19 %.1f MB\n", u / 1e6, g / 1e6, z / 1e6
	printf "  store after ingest:  %.1f MB = %.3fx raw, %.3fx gzip -9, %.3fx zstd -19 (index included)\n",
		s / 1e6, s / u, s / g, s / z
	printf "  store after compact: %.1f MB = %.3fx raw, %.3fx gzip -9, %.3fx zstd -19\n",
		c / 1e6, c / u, c / g, c / z
	printf "  ingest takes %.2fx the time of gzip -6 on the same records\n", a / b
	printf "  the metrics (series, 15 CIS filters, detectors) cost %.0f%% of the ingest rate (%.2f s vs %.2f s without: %.2fx the time)\n",
		(1 - n / a) * 100, a, n, a / n
	printf "  peak RSS with the metrics %.1f MB, without %.1f MB (%.2fx)\n", r / 1024, nr / 1024, r / nr }'
"$bin" store stats "$tmpd/store" | sed 's/^/  /'
