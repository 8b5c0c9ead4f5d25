#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/campaign.sh: runs the built libFuzzer targets (build/fuzz/fuzz_<t>), FUZZ_JOBS at a
# time, each until FUZZ_RUNS executions or FUZZ_SECONDS seconds, whichever comes first, and writes
# one line per target to build/fuzz/results.tsv (target, executions, seconds, executions/s, peak
# RSS, result). A target that crashes leaves its input in tests/fuzz/corpus/<t>/crash-* and the
# campaign goes on with the others; the exit status is 1 if any target failed.
#
#   FUZZ_TARGETS="wal segment" FUZZ_SECONDS=1800 FUZZ_RUNS=10000000 FUZZ_JOBS=2 bash tests/fuzz/campaign.sh
set -u

seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:--1}
jobs=${FUZZ_JOBS:-1}
targets=${FUZZ_TARGETS:?FUZZ_TARGETS lists the targets to run}
out=build/fuzz
results=$out/results.tsv
mkdir -p "$out/log"
[ -f "$results" ] || printf 'target\texecutions\tseconds\texec_per_s\tpeak_rss_mb\tresult\tfinished\n' >"$results"

one() {
	t=$1
	log=$out/log/$t.log
	mkdir -p "tests/fuzz/corpus/$t" "$out/scratch/$t"
	dict=tests/fuzz/$t.dict
	if [ -f "$dict" ]; then set -- "-dict=$dict"; else set --; fi
	# tests/fuzz/<t>.options: the target's own flags (a smaller -max_len for short texts)
	[ -f "tests/fuzz/$t.options" ] && set -- "$@" $(grep -v '^#' "tests/fuzz/$t.options")
	start=$(date +%s)
	"$out/fuzz_$t" -max_total_time="$seconds" -runs="$runs" -max_len=65536 -rss_limit_mb=1024 \
		-print_final_stats=1 -artifact_prefix="tests/fuzz/corpus/$t/" "$@" \
		"$out/scratch/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
	[ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
	[ -n "$execs" ] || execs=0
	rate=$((execs / (took > 0 ? took : 1)))
	if [ "$rc" -eq 0 ]; then result=clean; else result="FAILED(exit $rc, see $log)"; fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$execs" "$took" "$rate" "${rss:-?}" "$result" \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$results"
	printf '== fuzz_%s: %s executions in %s s (%s/s), peak RSS %s MB: %s\n' \
		"$t" "$execs" "$took" "$rate" "${rss:-?}" "$result"
	[ "$rc" -eq 0 ]
}

# A job pool: FUZZ_JOBS targets at a time, the next one starting when any finishes.
failed=0
running=0
for t in $targets; do
	one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
exit $failed
