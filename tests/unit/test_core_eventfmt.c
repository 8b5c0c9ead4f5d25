/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_eventfmt.c: core/eventfmt.c, tw_event -> one JSON line.
 * Hand-built events; the output is (1) parsed back with jansson and checked field by field against
 * the event (independently of our writer), (2) compared with tests/golden/eventfmt_events.jsonl,
 * which fixes key order and spelling (reviewed by hand). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "core/eventfmt.h"
#include "core/json.h"
#include "core/time.h"
#include "tests/helpers/helpers.h"

#define S(lit) ((struct tw_str){ (lit), sizeof(lit) - 1 })

static const char ct_raw[] =
	"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::123456789012:user/alice\","
	"\"userName\":\"alice\",\"accessKeyId\":\"AKIAEXAMPLE\"},\"eventTime\":\"2026-11-02T00:00:00Z\","
	"\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetBucketAcl\",\"awsRegion\":\"us-east-1\","
	"\"sourceIPAddress\":\"203.0.113.7\",\"userAgent\":\"aws-cli/2.15\",\"requestParameters\":{\"bucketName\":\"logs\"},"
	"\"readOnly\":true,\"eventID\":\"6f1e-4c1d\",\"recipientAccountId\":\"123456789012\"}";

static struct tw_str ct_resources[] = {
	{ "arn:aws:s3:::logs", 17 },
	{ "logs", 4 },
};

/* A CloudTrail event with every CloudTrail field set, readOnly, resources. */
static void make_ct(struct tw_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = TW_KIND_CLOUDTRAIL;
	ev->time_ms = 1793577600000LL; /* 2026-11-02T00:00:00Z */
	ev->read_only = 1;
	ev->raw = (struct tw_str){ ct_raw, sizeof ct_raw - 1 };
	ev->f[TW_F_EVENT_ID] = S("6f1e-4c1d");
	ev->f[TW_F_EVENT_NAME] = S("GetBucketAcl");
	ev->f[TW_F_EVENT_SOURCE] = S("s3.amazonaws.com");
	ev->f[TW_F_REGION] = S("us-east-1");
	ev->f[TW_F_ACCOUNT] = S("123456789012");
	ev->f[TW_F_PRINCIPAL] = S("arn:aws:iam::123456789012:user/alice");
	ev->f[TW_F_IDENTITY_TYPE] = S("IAMUser");
	ev->f[TW_F_USER_NAME] = S("alice");
	ev->f[TW_F_ACCESS_KEY] = S("AKIAEXAMPLE");
	ev->f[TW_F_SOURCE_IP] = S("203.0.113.7");
	ev->f[TW_F_USER_AGENT] = S("aws-cli/2.15");
	ev->f[TW_F_EVENT_TYPE] = S("AwsApiCall");
	ev->resources = ct_resources;
	ev->nresources = 2;
	ev->src_line = 3;
	ev->src_index = 2;
}

/* A CloudWatch Logs event from an export line: text raw, awkward message bytes. */
static const char cw_raw[] = "2026-11-02T00:00:00.123Z ERROR \"quoted\"\ttab\x01 caf\xc3\xa9 bad\xff end";

static void make_cw_text(struct tw_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = TW_KIND_CWLOG;
	ev->time_ms = 1793577600123LL;
	ev->read_only = -1;
	ev->raw = (struct tw_str){ cw_raw, sizeof cw_raw - 1 };
	ev->f[TW_F_MESSAGE] = (struct tw_str){ cw_raw + 25, sizeof cw_raw - 1 - 25 };
	ev->f[TW_F_LOG_GROUP] = S("/aws/lambda/orders");
	ev->f[TW_F_LOG_STREAM] = S("2026/11/02/[$LATEST]abc");
	ev->src_line = 1;
	ev->src_index = 0;
}

/* A CloudTrail Insights record, pretty-printed over several lines; readOnly false. */
static const char insight_raw[] = "{\n  \"eventType\": \"AwsCloudTrailInsight\",\n  \"eventID\": \"i-1\"\n}";

static void make_insight(struct tw_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = TW_KIND_INSIGHT;
	ev->time_ms = -1; /* 1969-12-31T23:59:59.999Z: formatting must cope */
	ev->read_only = 0;
	ev->raw = (struct tw_str){ insight_raw, sizeof insight_raw - 1 };
	ev->f[TW_F_EVENT_ID] = S("i-1");
	ev->f[TW_F_EVENT_TYPE] = S("AwsCloudTrailInsight");
	ev->src_line = 0;
	ev->src_index = 9007199254740993ull; /* 2^53 + 1: must print exactly (no double on the way) */
}

/* A CloudWatch log event whose raw is the JSON log event object (embedded verbatim), and one whose
 * raw looks like JSON but is not (written as a string). */
static const char cwj_raw[] = "{\"id\":\"3598\",\"timestamp\":1793577600000,\"message\":\"hello \\u2028 world\"}";
static const char cwbad_raw[] = "{\"id\":\"3599\",\"timestamp\":17935776";

static void make_cw_json(struct tw_event *ev, int bad)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = TW_KIND_CWLOG;
	ev->time_ms = 1793577600000LL;
	ev->read_only = -1;
	ev->raw = bad ? (struct tw_str){ cwbad_raw, sizeof cwbad_raw - 1 } : (struct tw_str){ cwj_raw, sizeof cwj_raw - 1 };
	ev->f[TW_F_EVENT_ID] = bad ? S("3599") : S("3598");
	ev->f[TW_F_MESSAGE] = S("hello \xe2\x80\xa8 world");
	ev->src_line = 7;
	ev->src_index = 6;
}

static json_t *parse_line(const char *p, size_t n)
{
	json_error_t je;
	json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, &je);

	cr_assert_not_null(j, "not JSON (%s at %d): %.*s", je.text, je.position, (int)n, p);
	cr_assert(json_is_object(j));
	return j;
}

static void write_ok(struct tw_buf *b, const struct tw_event *ev, unsigned flags)
{
	struct tw_err err;
	enum tw_rc rc;

	tw_buf_reset(b);
	rc = tw_event_write_json(b, ev, flags, &err);
	cr_assert_eq(rc, TW_OK, "%s", err.msg);
	cr_assert_null(memchr(b->p, '\n', b->n), "output must be one line");
	cr_assert_null(memchr(b->p, '\r', b->n), "output must be one line");
}

static const char *str_of(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

Test(core_eventfmt, cloudtrail_fields_round_trip_through_a_json_parser)
{
	struct tw_event ev;
	struct tw_buf b;
	json_t *j, *res;

	make_ct(&ev);
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, 0);
	j = parse_line(b.p, b.n);
	cr_assert_str_eq(str_of(j, "kind"), "cloudtrail");
	cr_assert_str_eq(str_of(j, "time"), "2026-11-02T00:00:00Z");
	for (int f = 0; f < TW_F__COUNT; f++) {
		const char *v = str_of(j, tw_field_name((enum tw_field)f));
		if (ev.f[f].n == 0) {
			cr_assert_null(json_object_get(j, tw_field_name((enum tw_field)f)), "empty %s must be omitted",
				       tw_field_name((enum tw_field)f));
			continue;
		}
		cr_assert_not_null(v, "field %s missing", tw_field_name((enum tw_field)f));
		cr_assert_eq(strlen(v), ev.f[f].n);
		cr_assert_eq(memcmp(v, ev.f[f].p, ev.f[f].n), 0);
	}
	cr_assert(json_is_true(json_object_get(j, "readOnly")));
	res = json_object_get(j, "resources");
	cr_assert(json_is_array(res));
	cr_assert_eq(json_array_size(res), 2);
	cr_assert_str_eq(json_string_value(json_array_get(res, 0)), "arn:aws:s3:::logs");
	cr_assert_str_eq(json_string_value(json_array_get(res, 1)), "logs");
	cr_assert_eq(json_integer_value(json_object_get(j, "line")), 3);
	cr_assert_eq(json_integer_value(json_object_get(j, "index")), 2);
	cr_assert_null(json_object_get(j, "raw"), "raw only with TW_EVENTFMT_RAW");
	json_decref(j);
	tw_buf_free(&b);
}

Test(core_eventfmt, starts_with_kind_time_and_ends_with_line_index)
{
	struct tw_event ev;
	struct tw_buf b;
	static const char want_head[] = "{\"kind\":\"cloudtrail\",\"time\":\"2026-11-02T00:00:00Z\",\"eventID\":\"6f1e-4c1d\",";
	static const char want_tail[] = ",\"readOnly\":true,\"resources\":[\"arn:aws:s3:::logs\",\"logs\"],\"line\":3,\"index\":2}";

	make_ct(&ev);
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, 0);
	cr_assert_eq(memcmp(b.p, want_head, sizeof want_head - 1), 0, "got %.*s", (int)b.n, b.p);
	cr_assert_geq(b.n, sizeof want_tail - 1);
	cr_assert_eq(memcmp(b.p + b.n - (sizeof want_tail - 1), want_tail, sizeof want_tail - 1), 0, "got %.*s",
		     (int)b.n, b.p);
	tw_buf_free(&b);
}

Test(core_eventfmt, raw_json_record_is_embedded_byte_for_byte)
{
	struct tw_event ev;
	struct tw_buf b;
	static const char key[] = ",\"raw\":";
	const char *at;

	make_ct(&ev);
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	at = memmem(b.p, b.n, key, sizeof key - 1);
	cr_assert_not_null(at);
	at += sizeof key - 1;
	/* The raw value runs to the closing brace of the object. */
	cr_assert_eq((size_t)(b.p + b.n - 1 - at), sizeof ct_raw - 1);
	cr_assert_eq(memcmp(at, ct_raw, sizeof ct_raw - 1), 0);
	cr_assert_eq(b.p[b.n - 1], '}');
	json_decref(parse_line(b.p, b.n));
	tw_buf_free(&b);
}

Test(core_eventfmt, text_raw_and_awkward_messages_are_escaped)
{
	struct tw_event ev;
	struct tw_buf b;
	json_t *j;
	const char *raw, *msg;

	make_cw_text(&ev);
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	j = parse_line(b.p, b.n);
	cr_assert_str_eq(str_of(j, "kind"), "cwlog");
	cr_assert_str_eq(str_of(j, "time"), "2026-11-02T00:00:00.123Z");
	cr_assert_null(json_object_get(j, "readOnly"), "absent readOnly must be omitted");
	cr_assert_null(json_object_get(j, "resources"), "no resources: omitted");
	raw = str_of(j, "raw");
	cr_assert_not_null(raw, "text raw must be a JSON string");
	/* Everything but the invalid byte 0xff comes back; 0xff becomes U+FFFD. */
	cr_assert_str_eq(raw, "2026-11-02T00:00:00.123Z ERROR \"quoted\"\ttab\x01 caf\xc3\xa9 bad\xef\xbf\xbd end");
	msg = str_of(j, "message");
	cr_assert_str_eq(msg, "ERROR \"quoted\"\ttab\x01 caf\xc3\xa9 bad\xef\xbf\xbd end");
	cr_assert_str_eq(str_of(j, "logGroup"), "/aws/lambda/orders");
	json_decref(j);
	tw_buf_free(&b);
}

Test(core_eventfmt, multiline_raw_becomes_a_string_with_the_same_bytes)
{
	struct tw_event ev;
	struct tw_buf b;
	json_t *j;

	make_insight(&ev);
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	j = parse_line(b.p, b.n);
	cr_assert_str_eq(str_of(j, "kind"), "insight");
	cr_assert_str_eq(str_of(j, "time"), "1969-12-31T23:59:59.999Z");
	cr_assert(json_is_false(json_object_get(j, "readOnly")));
	cr_assert_str_eq(str_of(j, "raw"), insight_raw);
	cr_assert(tw_test_contains(b.p, b.n, "\"line\":0,\"index\":9007199254740993,"), "%.*s", (int)b.n, b.p);
	json_decref(j);
	tw_buf_free(&b);
}

Test(core_eventfmt, prints_the_largest_index_in_full)
{
	struct tw_event ev;
	struct tw_buf b;

	make_ct(&ev);
	ev.src_index = 18446744073709551615ull;
	ev.src_line = 10;
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, 0);
	cr_assert(tw_test_contains(b.p, b.n, "\"line\":10,\"index\":18446744073709551615}"), "%.*s", (int)b.n, b.p);
	tw_buf_free(&b);
}

Test(core_eventfmt, cloudwatch_raw_is_embedded_only_when_valid_json)
{
	struct tw_event ev;
	struct tw_buf b;
	json_t *j;

	tw_buf_init(&b, 1 << 20);
	make_cw_json(&ev, 0);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	cr_assert(tw_test_contains(b.p, b.n, cwj_raw), "valid JSON raw embedded verbatim: %.*s", (int)b.n, b.p);
	j = parse_line(b.p, b.n);
	cr_assert(json_is_object(json_object_get(j, "raw")));
	/* U+2028 in a field value is escaped (it breaks JavaScript string literals). */
	cr_assert(tw_test_contains(b.p, b.n, "\"message\":\"hello \\u2028 world\""), "%.*s", (int)b.n, b.p);
	json_decref(j);

	make_cw_json(&ev, 1);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	j = parse_line(b.p, b.n);
	cr_assert_str_eq(str_of(j, "raw"), cwbad_raw, "invalid JSON raw must be written as a string");
	json_decref(j);
	tw_buf_free(&b);
}

/* eventfmt has its own fast paths for time and plain strings: they must write exactly what
 * tw_time_format and tw_json_write_str write. */
Test(core_eventfmt, time_text_equals_tw_time_format)
{
	static const int64_t edge[] = { 0, -1, -999, -1000, -1001, 999, 1000, 1001, 86399999, 86400000,
					-86400000, 951782400000LL, 253402300799999LL, 253402300800000LL,
					-62167219200000LL, -62167219200001LL, 1793577600123LL };
	struct tw_event ev;
	struct tw_buf b;
	int64_t ms = -62167219200000LL - 86400000LL * 400; /* from year -1 */

	make_cw_json(&ev, 0);
	tw_buf_init(&b, 1 << 16);
	for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 4000; i++) {
		char want[TW_TIME_BUFSZ + 16], field[TW_TIME_BUFSZ + 16];
		const char *at;
		size_t wn;
		if (i < sizeof edge / sizeof edge[0]) {
			ev.time_ms = edge[i];
		} else {
			ev.time_ms = ms;
			ms += 86400000LL * 977 + 123457; /* ~2.7 years and odd milliseconds per step */
		}
		wn = tw_time_format(ev.time_ms, want);
		snprintf(field, sizeof field, "\"time\":\"%.*s\",", (int)wn, want);
		write_ok(&b, &ev, 0);
		at = memmem(b.p, b.n, field, strlen(field));
		cr_assert_not_null(at, "time %lld: want %s in %.*s", (long long)ev.time_ms, field, (int)b.n, b.p);
	}
	tw_buf_free(&b);
}

Test(core_eventfmt, string_text_equals_tw_json_write_str)
{
	static const char *const values[] = {
		"", "a", "plain-ascii-value", "0123456789abcdef", "0123456789abcdefg", "exactly8",
		"with \"quote\"", "back\\slash", "tab\there", "nl\n", "ctl\x01\x1f", "del\x7f",
		"caf\xc3\xa9", "bad \xff byte", "line sep \xe2\x80\xa8", "emoji \xf0\x9f\x98\x80",
		"arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef",
		"long plain text value that spans several words of eight bytes each and ends with a quote\"",
		"\x80 leading high byte", "space ", " ", "~}|{`_^]", "!#$%&'()*+,-./:;<=>?@[",
	};
	struct tw_event ev;
	struct tw_buf b, want;
	struct tw_err err;

	tw_buf_init(&b, 1 << 16);
	tw_buf_init(&want, 1 << 16);
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		struct tw_str v = { values[i], strlen(values[i]) };
		make_cw_json(&ev, 0);
		ev.f[TW_F_USER_AGENT] = v;
		ev.resources = &v;
		ev.nresources = 1;
		write_ok(&b, &ev, 0);
		tw_buf_reset(&want);
		cr_assert_eq(tw_buf_append(&want, "\"userAgent\":", 12, &err), TW_OK);
		cr_assert_eq(tw_json_write_str(&want, v.p, v.n, &err), TW_OK);
		cr_assert_eq(tw_buf_append(&want, ",", 1, &err), TW_OK);
		if (v.n) {
			cr_assert_not_null(memmem(b.p, b.n, want.p, want.n), "value %zu: want %.*s in %.*s", i,
					   (int)want.n, want.p, (int)b.n, b.p);
		} else {
			cr_assert_null(memmem(b.p, b.n, "\"userAgent\"", 11), "empty fields are omitted");
		}
		tw_buf_reset(&want);
		cr_assert_eq(tw_buf_append(&want, "\"resources\":[", 13, &err), TW_OK);
		cr_assert_eq(tw_json_write_str(&want, v.p, v.n, &err), TW_OK);
		cr_assert_eq(tw_buf_append(&want, "]", 1, &err), TW_OK);
		cr_assert_not_null(memmem(b.p, b.n, want.p, want.n), "resource %zu: want %.*s in %.*s", i,
				   (int)want.n, want.p, (int)b.n, b.p);
	}
	tw_buf_free(&b);
	tw_buf_free(&want);
}

Test(core_eventfmt, buffer_cap_gives_elimit_and_keeps_earlier_content)
{
	struct tw_event ev;
	struct tw_buf b;
	struct tw_err err;
	size_t full;

	make_ct(&ev);
	tw_buf_init(&b, 1 << 20);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	full = b.n;
	tw_buf_free(&b);

	/* Room for the prefix and a bit of the event, not all of it. */
	tw_buf_init(&b, 10 + full - 1);
	cr_assert_eq(tw_buf_append(&b, "0123456789", 10, &err), TW_OK);
	cr_assert_eq(tw_event_write_json(&b, &ev, TW_EVENTFMT_RAW, &err), TW_ELIMIT);
	cr_assert_eq(b.n, 10, "a failed write must cut the buffer back");
	cr_assert_eq(memcmp(b.p, "0123456789", 10), 0);
	tw_buf_free(&b);

	tw_buf_init(&b, 10 + full);
	cr_assert_eq(tw_buf_append(&b, "0123456789", 10, &err), TW_OK);
	cr_assert_eq(tw_event_write_json(&b, &ev, TW_EVENTFMT_RAW, &err), TW_OK, "exactly fits: %s", err.msg);
	cr_assert_eq(b.n, 10 + full);
	tw_buf_free(&b);
}

Test(core_eventfmt, matches_golden_lines)
{
	struct tw_event ev;
	struct tw_buf b, all;
	struct tw_err err;

	tw_buf_init(&b, 1 << 20);
	tw_buf_init(&all, 1 << 20);
	make_ct(&ev);
	write_ok(&b, &ev, 0);
	cr_assert_eq(tw_buf_append(&all, b.p, b.n, &err), TW_OK);
	cr_assert_eq(tw_buf_putc(&all, '\n', &err), TW_OK);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	cr_assert_eq(tw_buf_append(&all, b.p, b.n, &err), TW_OK);
	cr_assert_eq(tw_buf_putc(&all, '\n', &err), TW_OK);
	make_cw_text(&ev);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	cr_assert_eq(tw_buf_append(&all, b.p, b.n, &err), TW_OK);
	cr_assert_eq(tw_buf_putc(&all, '\n', &err), TW_OK);
	make_insight(&ev);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	cr_assert_eq(tw_buf_append(&all, b.p, b.n, &err), TW_OK);
	cr_assert_eq(tw_buf_putc(&all, '\n', &err), TW_OK);
	make_cw_json(&ev, 0);
	write_ok(&b, &ev, TW_EVENTFMT_RAW);
	cr_assert_eq(tw_buf_append(&all, b.p, b.n, &err), TW_OK);
	cr_assert_eq(tw_buf_putc(&all, '\n', &err), TW_OK);
	tw_test_golden("eventfmt_events.jsonl", all.p, all.n);
	tw_buf_free(&b);
	tw_buf_free(&all);
}
