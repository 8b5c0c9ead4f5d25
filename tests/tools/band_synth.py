#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""band_synth.py: a small NAB-format corpus of constructed series with known anomalies, to check
that `trailwatch detect` generalizes beyond the NAB AWS files (bench/nab.sh scores it with
nab-score). Standard library only; the same seed gives the same files.

    band_synth.py OUTDIR      writes OUTDIR/data/synthetic/*.csv and OUTDIR/labels.json

Each series: 4032 points at 5 minutes (two weeks, like most NAB AWS files), anomalies after the
first 15% (NAB's probation). Windows are made the way NAB's labeler makes them: each anomaly point
a gets [a - L/2, a + L/2] with L = int(0.10 * n / anomalies_in_file)."""
import json
import math
import os
import random
import sys
from datetime import datetime, timedelta, timezone

N = 4032
STEP = timedelta(minutes=5)
START = datetime(2014, 3, 3, 0, 0, tzinfo=timezone.utc)


def hour(i):
    t = START + i * STEP
    return t.hour + t.minute / 60.0


def bump(h, centre, width=1.5):
    d = (h - centre) / width
    return math.exp(-d * d)


def make(rng):
    """Returns {name: (values, [anomaly indices])}."""
    g = rng.gauss
    out = {}

    a = int(N * 0.7)
    out["step_up"] = ([50 + g(0, 2) + (10 if i >= a else 0) for i in range(N)], [a])

    a = int(N * 0.6)
    out["spike"] = ([50 + g(0, 2) + (30 if i == a else 0) for i in range(N)], [a])

    a = int(N * 0.65)
    out["silence"] = ([0.0 if a <= i < a + 24 else 200 + g(0, 10) for i in range(N)], [a])

    a = int(N * 0.55)
    out["variance_burst"] = ([20 + g(0, 8 if a <= i < a + 36 else 1) for i in range(N)], [a])

    a = 11 * 288 + 3 * 12  # day 11, 03:00
    out["daily_offschedule_peak"] = (
        [100 + 40 * bump(hour(i), 14) + 40 * (bump(hour(i), 3, 0.5) if a - 24 <= i <= a + 24 else 0) + g(0, 2)
         for i in range(N)], [a])

    a = 12 * 288 + 14 * 12  # the day-12 peak does not happen
    out["daily_missing_peak"] = (
        [100 + (0 if abs(i - a) < 36 else 40 * bump(hour(i), 14)) + g(0, 2) for i in range(N)], [a - 24])

    a = int(N * 0.8)
    out["drift_then_drop"] = ([10 + 0.005 * i + g(0, 1) - (8 if i >= a else 0) for i in range(N)], [a])

    a = int(N * 0.6)
    vals = []
    for i in range(N):
        rate = 0.5 if a <= i < a + 48 else 0.02
        vals.append(rng.expovariate(1 / 5e6) if rng.random() < rate else 0.0)
    out["bursty_sustained"] = (vals, [a])

    out["daily_no_anomaly"] = ([100 + 40 * bump(hour(i), 14) + g(0, 2) for i in range(N)], [])

    a1, a2 = int(N * 0.4), int(N * 0.75)
    out["trend_two_shifts"] = ([30 + 0.002 * i + g(0, 1.5) - (12 if a1 <= i < a2 else 0) for i in range(N)], [a1, a2])

    a = int(N * 0.5)
    out["quantized_flat_then_change"] = ([round(2 + rng.random() * 0.01, 3) + (0.5 if i >= a else 0) for i in range(N)], [a])
    return out


def ts(i):
    return (START + i * STEP).strftime("%Y-%m-%d %H:%M:%S")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: band_synth.py OUTDIR")
    outdir = sys.argv[1]
    ddir = os.path.join(outdir, "data", "synthetic")
    os.makedirs(ddir, exist_ok=True)
    labels = {}
    for name, (vals, anomalies) in sorted(make(random.Random(20140303)).items()):
        with open(os.path.join(ddir, name + ".csv"), "w") as f:
            f.write("timestamp,value\n")
            for i, v in enumerate(vals):
                f.write("%s,%s\n" % (ts(i), repr(round(v, 6))))
        wins = []
        if anomalies:
            width = int(0.10 * N / len(anomalies))
            for a in anomalies:
                s, e = max(0, a - width // 2), min(N - 1, a + width // 2)
                if wins and s <= wins[-1][1]:
                    wins[-1][1] = e
                else:
                    wins.append([s, e])
        labels["synthetic/%s.csv" % name] = [[ts(s) + ".000000", ts(e) + ".000000"] for s, e in wins]
    with open(os.path.join(outdir, "labels.json"), "w") as f:
        json.dump(labels, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
