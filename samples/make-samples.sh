#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# samples/make-samples.sh: regenerates every file under samples/ (they are committed: `make run`
# never runs this). Needs the shared benchmark tools: $TW_SHARED or ../shared next to the checkout.
# Same output every time (fixed seeds). Run from the repository root: sh samples/make-samples.sh
set -eu

shared=${TW_SHARED:-../shared}
gen=$shared/bench/gen-cloudtrail
[ -f "$gen" ] || { echo "make-samples.sh: $gen not found (set TW_SHARED)" >&2; exit 1; }

rm -rf samples/trail samples/cloudwatch samples/labels.jsonl
# gen-cloudtrail parses --days as a float and then uses the span as a range() bound, which
# fails for any explicit --days; load it as a module and make the span an integer.
python3 - "$gen" --events 15000 --days 3 --s3-layout samples/trail --anomalies samples/labels.jsonl --seed 7 <<'PY'
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
python3 samples/make-cloudwatch.py
du -sh samples
