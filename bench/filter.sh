#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/filter.sh: the filter benchmark: builds bench/bench_filter.c against build/libtrailwatch.a
# and runs it on the 1M-event CloudTrail file: (a) decode only, (b) decode + the 15 CIS filters,
# in one run, one decode thread (per-core figures; the machine is shared: compare within a run).
#
#   sh bench/filter.sh                 data: $BENCH_DATA, else bench/data/ct-1m.jsonl.gz
#   BENCH_DATA=/tmp/bench/ct-1m.jsonl.gz sh bench/filter.sh
#   TW_SHARED=../shared                where gen-cloudtrail lives (makes 100k events if no data)
set -eu

data=${BENCH_DATA:-bench/data/ct-1m.jsonl.gz}
make --no-print-directory build/libtrailwatch.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -g -I. bench/bench_filter.c build/libtrailwatch.a \
	$(pkg-config --libs zlib libzstd libpcre2-8 jansson libcurl rdkafka libisal) -pthread -lm -o build/bench_filter
if [ ! -f "$data" ]; then
	gen=${TW_SHARED:-../shared}/bench/gen-cloudtrail
	[ -f "$gen" ] || { echo "bench: $data is missing and $gen is not there (set BENCH_DATA or TW_SHARED)" >&2; exit 2; }
	data=build/bench-ct-100k.jsonl.gz
	[ -f "$data" ] || python3 "$gen" --events 100000 --seed 1 -o "$data"
fi
echo "bench: $data"
build/bench_filter "$data"
