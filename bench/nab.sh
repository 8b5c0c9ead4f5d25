#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/nab.sh: `make bench-nab`: runs `trailwatch detect` over the 17 NAB realAWSCloudwatch series
# in ../shared/data/nab-aws, scores the results with ../shared/bench/nab-score (best threshold per
# profile, as NAB's published figures are) and prints them next to the published detectors, scored
# by the same tool from their result folders. Writes only under build/nab/. Usage:
#   sh bench/nab.sh build/trailwatch
# Also scores a fixed split of the files: the threshold swept on the "tune" half (8 files) is applied
# unchanged to the "held-out" half (9 files), which says how far a threshold carries to unseen series.
set -eu

BIN=${1:-build/trailwatch}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SHARED=../shared
NAB=$SHARED/data/nab-aws
SCORE=$SHARED/bench/nab-score
CAT=realAWSCloudwatch
OUT=build/nab
DET=trailwatch

if [ ! -d "$NAB/data/$CAT" ] || [ ! -x "$SCORE" ]; then
	echo "bench-nab: skipped: $NAB/data/$CAT or $SCORE not found (../shared is absent)"
	exit 0
fi
[ -x "$BIN" ] || { echo "bench-nab: $BIN is not built (make build/trailwatch)" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || { echo "bench-nab: python3 is needed to run nab-score" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT/results/$DET/$CAT"

# ---- run the detector (two at a time) ------------------------------------------------------------
start=$(date +%s)
files=$(cd "$NAB/data/$CAT" && ls *.csv | sort)
nfiles=$(echo "$files" | wc -l)
echo "bench-nab: trailwatch detect over $nfiles series of $NAB/data/$CAT"
echo "$files" | xargs -P 2 -I{} sh -c \
	'"$1" detect "$2/{}" > "$3/{}" 2>"$3/{}.err" || { echo "detect failed on {}:"; cat "$3/{}.err"; exit 1; }' \
	sh "$BIN" "$NAB/data/$CAT" "$OUT/results/$DET/$CAT"
for f in $files; do
	mv "$OUT/results/$DET/$CAT/$f" "$OUT/results/$DET/$CAT/${DET}_$f"
	rm -f "$OUT/results/$DET/$CAT/$f.err"
done
t_detect=$(( $(date +%s) - start ))

# ---- the split: every other file (sorted by name) is held out ------------------------------------
tune_args=""
held_args=""
i=0
for f in $files; do
	if [ $((i % 2)) -eq 1 ]; then tune_args="$tune_args --files $f"; else held_args="$held_args --files $f"; fi
	i=$((i + 1))
done
echo "$files" | awk 'NR % 2 == 0' > "$OUT/split-tune.txt"
echo "$files" | awk 'NR % 2 == 1' > "$OUT/split-heldout.txt"

# score DIR NAME [nab-score args...]: prints "standard lowFP lowFN" normalized, and the thresholds
# to $OUT/<NAME>.thr (profile=threshold per line).
score() {
	dir=$1 name=$2
	shift 2
	"$SCORE" --data "$NAB/data" --results "$dir" --detector "$name" --category "$CAT" \
		--profile all --summary "$@" > "$OUT/score.txt" 2>&1 || { cat "$OUT/score.txt" >&2; exit 1; }
	awk '$1 == "standard" || $1 == "reward_low_FP_rate" || $1 == "reward_low_FN_rate" \
		{ print $1 "=" $2 }' "$OUT/score.txt" > "$OUT/$name.thr"
	awk '$1 == "standard" { s = $NF } $1 == "reward_low_FP_rate" { p = $NF }
		$1 == "reward_low_FN_rate" { n = $NF } END { printf "%6.1f %6.1f %6.1f", s, p, n }' "$OUT/score.txt"
}

row() { printf '%-30s %s   %s   %s\n' "$1" "$2" "$3" "$4"; }

line_for() {
	dir=$1 name=$2
	all=$(score "$dir" "$name")
	# tune-half threshold, applied to the held-out half
	score "$dir" "$name" $tune_args > /dev/null
	thr=""
	while read -r t; do thr="$thr --threshold $t"; done < "$OUT/$name.thr"
	held=$(score "$dir" "$name" $held_args $thr)
	heldsw=$(score "$dir" "$name" $held_args)
	row "$3" "$all" "$held" "$heldsw"
}

echo
echo "NAB scores, normalized (null detector 0, perfect 100); profiles standard / reward_low_FP / reward_low_FN"
printf '%-30s %-20s   %-20s   %-20s\n' "" "all 17 files" "held-out 9 files" "held-out 9 files"
printf '%-30s %-20s   %-20s   %-20s\n' "detector" "(best threshold)" "(threshold of tune 8)" "(best threshold)"
printf '%-30s %6s %6s %6s   %6s %6s %6s   %6s %6s %6s\n' "" std lowFP lowFN std lowFP lowFN std lowFP lowFN
line_for "$OUT/results/$DET" "$DET" "trailwatch detect (this build)"
for d in numenta randomCutForest twitterADVec; do
	if [ -d "$NAB/results/$d" ]; then
		case $d in
		numenta) label="numenta HTM (published)" ;;
		randomCutForest) label="Random Cut Forest (published)" ;;
		*) label="Twitter ADVec (published)" ;;
		esac
		line_for "$NAB/results/$d" "$d" "$label"
	fi
done
printf '%-30s %6s %6s %6s   (no result files in ../shared; NAB README figure)\n' \
	"rolling z-score (published)" "36.0" "-" "-"

# ---- generality: constructed series the detector was not tuned on (tests/tools/band_synth.py) ----
SYN=$OUT/synth
python3 tests/tools/band_synth.py "$SYN"
mkdir -p "$SYN/results/$DET/synthetic"
for f in "$SYN"/data/synthetic/*.csv; do
	"$BIN" detect "$f" > "$SYN/results/$DET/synthetic/${DET}_$(basename "$f")"
done
"$SCORE" --data "$SYN/data" --labels "$SYN/labels.json" --results "$SYN/results/$DET" --detector "$DET" \
	--profile all --summary > "$OUT/score.txt" 2>&1 || { cat "$OUT/score.txt" >&2; exit 1; }
nsyn=$(ls "$SYN"/data/synthetic/*.csv | wc -l)
printf '\n%-30s %s   (%s constructed series: step, spike, silence, variance burst, daily\n%-30s %20s    peak off schedule / missing, drift, bursts, shifts, none)\n' \
	"trailwatch on synthetic series" \
	"$(awk '$1 == "standard" { s = $NF } $1 == "reward_low_FP_rate" { p = $NF }
		$1 == "reward_low_FN_rate" { n = $NF } END { printf "%6.1f %6.1f %6.1f", s, p, n }' "$OUT/score.txt")" \
	"$nsyn" "" ""
rm -f "$OUT/score.txt"
echo
echo "detector run time: ${t_detect}s for $nfiles series; results in $OUT/results/$DET (NAB layout)"
echo "split: tune = $(tr '\n' ' ' < "$OUT/split-tune.txt")"
