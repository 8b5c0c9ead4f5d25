#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/tools/email_screenshot.sh: renders the sample alarm email (the notice of
# tests/unit/test_email_render.c) and screenshots its HTML part in headless Chromium, with the
# chart inlined as a data: URI. Not part of `make test`. Needs build/trailwatch-tests, chromium
# (Debian: apt-get install -y chromium) and /usr/bin/python3.
#   sh tests/tools/email_screenshot.sh [OUT.png]     (default /tmp/tw-email-screenshot.png)
#   TW_SHOT_SIZE=900,1900 sets the window size (default 900,1400).
set -eu
out=${1:-/tmp/tw-email-screenshot.png}
src=$(cd "$(dirname "$0")/../.." && pwd)
tests=$src/build/trailwatch-tests
[ -x "$tests" ] || { echo "email_screenshot: build $tests first (make build/trailwatch-tests)" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "email_screenshot: chromium not found (apt-get install -y chromium)" >&2; exit 2; }
dir=$(mktemp -d /tmp/tw-email-shot-XXXXXX)
trap 'rm -rf "$dir"' EXIT
TW_EMAIL_DUMP_DIR=$dir TW_SRC=$src "$tests" --filter 'email_render/mime_parses_with_python_checker' >/dev/null 2>&1 || {
	echo "email_screenshot: the render test failed; run it for details" >&2; exit 1; }
/usr/bin/python3 "$src/tests/tools/email_check.py" mime "$dir/alarm.eml" \
	--html-out "$dir/body.html" --png-out "$dir/chart.png" >/dev/null
/usr/bin/python3 - "$dir" <<'PY'
import base64, re, sys
d = sys.argv[1]
html = open(d + '/body.html', encoding='utf-8').read()
uri = 'data:image/png;base64,' + base64.b64encode(open(d + '/chart.png', 'rb').read()).decode()
open(d + '/page.html', 'w', encoding='utf-8').write(re.sub(r'src="cid:[^"]*"', 'src="' + uri + '"', html))
PY
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$out" \
	--window-size=${TW_SHOT_SIZE:-900,1400} "file://$dir/page.html" >/dev/null 2>&1
cp "$dir/chart.png" "${out%.png}-chart.png"
echo "email_screenshot: wrote $out and ${out%.png}-chart.png"
