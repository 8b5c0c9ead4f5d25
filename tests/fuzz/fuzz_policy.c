/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_policy.c: alerts/notify_policy.c. Any text either compiles or fails with a
 * message; a compiled policy answers a match on a few attributes (no crash, no leak), and the
 * answer does not depend on the attributes' order. */
#include <stdlib.h>
#include "alerts/notify.h"
#include "tests/fuzz/fuzz.h"

TW_FUZZ_TARGET(policy)
{
	static const struct tw_notify_attr a[] = {
		{ "severity", "high", 0, 0 }, { "count", NULL, 3, 1 }, { "a", "", 0, 0 }, { "price_usd", NULL, -0.5, 1 },
	};
	const struct tw_notify_attr b[] = { a[3], a[2], a[1], a[0] };
	struct tw_notify_policy *p = NULL;
	struct tw_err err;

	if (tw_notify_policy_parse((const char *)data, size, &p, &err) != TW_OK) {
		if (p || !err.msg[0])
			abort();
		return 0;
	}
	if (tw_notify_policy_match(p, a, 4) != tw_notify_policy_match(p, b, 4))
		abort();
	tw_notify_policy_match(p, a, 1);
	tw_notify_policy_match(p, NULL, 0);
	tw_notify_policy_free(p);
	return 0;
}
