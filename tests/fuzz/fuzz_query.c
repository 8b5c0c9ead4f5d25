/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_query.c: query/ parser. Any text either parses (and then prints its canonical
 * tree and runs over one event) or fails with a message and a caret that can be rendered. */
#include <stdlib.h>
#include <string.h>
#include "query/query.h"
#include "tests/fuzz/fuzz.h"

TW_FUZZ_TARGET(query)
{
	static const char raw[] = "{\"eventName\":\"GetObject\",\"a\":[1,{\"b\":\"x\"}]}";
	struct tw_query *q = NULL;
	struct tw_err err;
	struct tw_buf out = { .max = 1 << 20 };
	struct tw_event ev;
	struct tw_qexec *x = NULL;

	if (tw_query_parse((const char *)data, size, &q, &err) != TW_OK) {
		if (!err.msg[0] || tw_query_caret((const char *)data, size, &err, &out, NULL) != TW_OK)
			abort();
		tw_buf_free(&out);
		return 0;
	}
	if (tw_query_print(q, &out, &err) != TW_OK || out.n == 0)
		abort();
	memset(&ev, 0, sizeof ev);
	ev.kind = TW_KIND_CLOUDTRAIL;
	ev.read_only = -1;
	ev.raw = (struct tw_str){ raw, sizeof raw - 1 };
	ev.f[TW_F_EVENT_NAME] = TW_STR_LIT("GetObject");
	(void)tw_query_match(q, &ev);
	if (tw_qexec_new(q, NULL, &x, &err) == TW_OK) {
		(void)tw_qexec_push(x, &ev, NULL, &err);
		(void)tw_qexec_finish(x, &err);
	}
	tw_qexec_free(x);
	tw_query_free(q);
	tw_buf_free(&out);
	return 0;
}
