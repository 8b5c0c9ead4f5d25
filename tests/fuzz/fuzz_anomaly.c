/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_anomaly.c: alerts/anomaly.c (tw_anomaly_read_line), which reads STORE/anomalies
 * lines back. Any line either fails with TW_EPARSE and a message (jansson's "column C: ..." for
 * bad JSON, the member's name for a wrong type) or fills a finding whose JSON line
 * reads back to a finding that writes the same line again (a fixed point after one round). */
#include <stdlib.h>
#include <string.h>

#include "alerts/anomaly.h"
#include "tests/fuzz/fuzz.h"

TW_FUZZ_TARGET(anomaly)
{
	static struct tw_anomaly a, b, c; /* about 10 KB each: not on the stack */
	struct tw_err err;
	struct tw_buf l1, l2;

	if (tw_anomaly_read_line((const char *)data, size, &a, &err) != TW_OK) {
		if (err.rc != TW_EPARSE || !err.msg[0])
			abort();
		return 0;
	}
	tw_buf_init(&l1, 1u << 20);
	tw_buf_init(&l2, 1u << 20);
	if (tw_anomaly_write_json(&a, &l1, &err) != TW_OK)
		abort();
	if (tw_anomaly_read_line(l1.p, l1.n, &b, &err) != TW_OK)
		abort(); /* what we write, we read */
	if (tw_anomaly_write_json(&b, &l2, &err) != TW_OK)
		abort();
	if (tw_anomaly_read_line(l2.p, l2.n, &c, &err) != TW_OK)
		abort();
	tw_buf_reset(&l1);
	if (tw_anomaly_write_json(&c, &l1, &err) != TW_OK || l1.n != l2.n || memcmp(l1.p, l2.p, l1.n))
		abort(); /* write(read(line)) is stable */
	tw_buf_free(&l1);
	tw_buf_free(&l2);
	return 0;
}
