/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_filter.c: alerts/filter.c. Arbitrary bytes compiled as a filter pattern; when they
 * compile, the normalized form must compile again to the same form, and the pattern is evaluated
 * (with the linter run too) on a CloudTrail record, a JSON message and a text line. */
#include <stdlib.h>
#include <string.h>

#include "alerts/filter.h"
#include "tests/fuzz/fuzz.h"

static const char rec[] = "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"Root\",\"arn\":\"arn:aws:iam::1:root\"},"
			  "\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":"
			  "\"PutBucketPolicy\",\"errorCode\":\"AccessDenied\",\"readOnly\":false,\"n\":1.5e3,"
			  "\"resources\":[{\"ARN\":\"arn:aws:s3:::b\"},[1,2]],\"z\":null}";
static const char line[] = "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /a.html HTTP/1.0\" 404 1534";

TW_FUZZ_TARGET(filter)
{
	struct tw_filter_set *set;
	struct tw_filter_result r;
	struct tw_filter_warning w[8];
	struct tw_err err;
	size_t idx, nw, pidx;
	struct tw_event ev;

	if (tw_filter_set_new(&set, &err))
		return 0;
	if (tw_filter_set_add(set, (const char *)data, size, &idx, &err) == TW_OK) {
		struct tw_buf b, b2;
		struct tw_filter *f;
		tw_buf_init(&b, 1 << 16);
		tw_buf_init(&b2, 1 << 16);
		if (tw_filter_format(tw_filter_set_get(set, idx), &b, &err) == TW_OK && b.n <= TW_FILTER_MAX_PATTERN &&
		    tw_filter_compile(b.p, b.n, &f, &err) == TW_OK) {
			if (tw_filter_format(f, &b2, &err) != TW_OK || b.n != b2.n || memcmp(b.p, b2.p, b.n))
				abort();
			tw_filter_free(f);
		}
		tw_buf_free(&b);
		tw_buf_free(&b2);
		tw_filter_set_add_path(set, "$.resources[1]", 14, &pidx, &err);
		if (tw_filter_result_init(set, &r, &err) == TW_OK) {
			memset(&ev, 0, sizeof ev);
			ev.kind = TW_KIND_CLOUDTRAIL;
			ev.raw.p = rec;
			ev.raw.n = sizeof rec - 1;
			tw_filter_set_eval(set, &ev, &r, &err);
			ev.kind = TW_KIND_CWLOG;
			ev.f[TW_F_MESSAGE].p = line;
			ev.f[TW_F_MESSAGE].n = sizeof line - 1;
			tw_filter_set_eval(set, &ev, &r, &err);
			ev.f[TW_F_MESSAGE] = ev.raw;
			tw_filter_set_eval(set, &ev, &r, &err);
			tw_filter_result_free(&r);
		}
		if (tw_filter_lint((const char *)data, size, w, 8, &nw, &err) != TW_OK)
			abort();
	}
	tw_filter_set_free(set);
	return 0;
}
