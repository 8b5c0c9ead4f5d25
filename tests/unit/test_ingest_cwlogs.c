/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_ingest_cwlogs.c: CloudWatch Logs decoding (ingest/cwlogs.c) on the real fixtures
 * copied under tests/data/cloudwatch/ and on hostile inputs.
 *
 * Where the expected values come from (never from trailwatch's own output):
 *  - counts, ids, timestamps, groups, streams and messages were read by hand from the fixtures and
 *    decoded with python3 (json, base64, gzip, zlib) before writing these tests;
 *  - per-event checks on plain JSON fixtures compare with jansson's parse of the same file (a
 *    different parser from core/json.c), and `raw` must point inside the loaded file (so it is the
 *    original bytes, not a re-serialization) and parse (jansson) to the very log event;
 *  - envelope payloads were inflated with Python; their raw log event texts are quoted below;
 *  - CloudTrail eventTime values were converted to epoch ms with Python's datetime.
 * Expected counts per fixture (python3 -c 'json.load ... len(logEvents) ...'):
 *   datadog cloudwatch_log.json 2 cwlog; cloudwatch_logs.json 19 cwlog; cloudwatch_logs_2.json 1;
 *   cloudwatch_log_cloudtrail.json 4 CloudTrail; step_functions_log.json 1 cwlog (its message is
 *   broken JSON, not CloudTrail); otel cloudtrail_log_cw.json 1 CloudTrail; multiple_json_objects
 *   2 cwlog in 2 payloads; valid_cloudwatch_log.json 3 truncated CloudTrail messages -> 3 rejects,
 *   0 events; valid_cloudwatch_log_control.json 1 control message; valid_vpc_flow_cw.json 2 cwlog;
 *   powertools cloudWatchLogEvent.json (gzip) 2, ...WithPolicyLevel.json (zlib) 2,
 *   kinesisStreamCloudWatchLogsEvent.json 2 records x 3 = 6 cwlog; kinesisFirehosePutEvent.json:
 *   "Hello World" (text: quarantined) and {"Hello": "World"} (skipped), 0 events. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/codec.h"
#include "ingest/ingest_int.h"

/* ---- harness -------------------------------------------------------------------------- */

#define MAX_REJ 64

struct rej {
	char reason[512]; /* copy of the reason */
	uint64_t line;    /* pos of the reject */
	uint64_t index;   /* record index */
	uint64_t offset;  /* byte offset */
	char *bytes;      /* copy of the offending bytes (malloc'd) */
	size_t n;         /* their length */
};

struct fx {
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_batch batch;
	struct tw_decoder d;
	struct rej rej[MAX_REJ];
	size_t nrej;
	const char *file; /* loaded fixture (in the arena) */
	size_t nfile;
};

static enum tw_rc on_reject(struct tw_decoder *d, const struct tw_reject *r)
{
	struct fx *f = d->reject_ctx;
	struct rej *x;

	cr_assert_lt(f->nrej, MAX_REJ);
	x = &f->rej[f->nrej++];
	snprintf(x->reason, sizeof x->reason, "%s", r->reason);
	x->line = r->line;
	x->index = r->index;
	x->offset = r->offset;
	x->n = r->bytes.n;
	x->bytes = malloc(x->n + 1);
	memcpy(x->bytes, r->bytes.p, x->n);
	x->bytes[x->n] = '\0';
	return TW_OK;
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof *f);
	tw_ingest_limits_default(&f->lim);
	tw_batch_init(&f->batch);
	f->d.lim = &f->lim;
	f->d.st = &f->st;
	f->d.batch = &f->batch;
	f->d.source = "test";
	f->d.reject = on_reject;
	f->d.reject_ctx = f;
	return f;
}

static void fx_free(struct fx *f)
{
	for (size_t i = 0; i < f->nrej; i++)
		free(f->rej[i].bytes);
	tw_batch_free(&f->batch);
	free(f);
}

/* Copies s into the batch arena (decoders are handed bytes that live there). */
static struct tw_str in_arena(struct fx *f, const char *s, size_t n)
{
	struct tw_str out;
	cr_assert_eq(tw_arena_dup(&f->batch.arena, (struct tw_str){ s, n }, &out, NULL), TW_OK);
	return out;
}

/* Loads tests/data/cloudwatch/<rel> into the arena. */
static struct tw_str load(struct fx *f, const char *rel)
{
	const char *src = getenv("TW_SRC");
	char path[4096];
	FILE *fp;
	char *buf;
	long n;
	struct tw_str s;

	snprintf(path, sizeof path, "%s/tests/data/cloudwatch/%s", src ? src : ".", rel);
	fp = fopen(path, "rb");
	cr_assert(fp, "open %s (set TW_SRC to the source tree)", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	s = in_arena(f, buf, (size_t)n);
	free(buf);
	f->file = s.p;
	f->nfile = s.n;
	return s;
}

static int obj(struct fx *f, struct tw_str s)
{
	struct tw_pos pos = { 1, 0, 0 };
	int handled = -1;
	cr_assert_eq(tw_cw_decode_object(&f->d, s.p, s.n, &pos, &handled), TW_OK, "%s", f->d.err.msg);
	cr_assert(handled == 0 || handled == 1);
	return handled;
}

static int objs(struct fx *f, const char *s)
{
	return obj(f, in_arena(f, s, strlen(s)));
}

static int str_is(struct tw_str s, const char *c)
{
	return s.n == strlen(c) && (s.n == 0 || memcmp(s.p, c, s.n) == 0);
}

#define assert_str(s, want)                                                                        \
	cr_assert(str_is((s), (want)), "got \"%.*s\", want \"%s\"", (int)(s).n, (s).p ? (s).p : "", (want))

/* The event's raw bytes lie inside the loaded file (so they are the original text). */
static void assert_raw_in_file(const struct fx *f, const struct tw_event *ev)
{
	cr_assert(ev->raw.p >= f->file && ev->raw.p + ev->raw.n <= f->file + f->nfile,
		  "raw is not a slice of the input");
}

/* Checks every event of a plain (not enveloped) payload against jansson's reading of it. */
static void check_against_jansson(const struct fx *f, struct tw_str text, size_t first_ev, int want_ct)
{
	json_error_t jerr;
	json_t *root = json_loadb(text.p, text.n, 0, &jerr), *events;
	size_t i;

	cr_assert(root, "jansson: %s", jerr.text);
	events = json_object_get(root, "logEvents");
	cr_assert_eq(f->batch.n - first_ev, json_array_size(events));
	for (i = 0; i < json_array_size(events); i++) {
		const struct tw_event *ev = &f->batch.ev[first_ev + i];
		json_t *le = json_array_get(events, i);
		const char *msg = json_string_value(json_object_get(le, "message"));

		assert_str(ev->f[TW_F_LOG_GROUP], json_string_value(json_object_get(root, "logGroup")));
		assert_str(ev->f[TW_F_LOG_STREAM], json_string_value(json_object_get(root, "logStream")));
		if (want_ct) {
			json_t *rec = json_loads(msg, 0, &jerr);
			cr_assert_eq(ev->kind, TW_KIND_CLOUDTRAIL);
			/* raw is the message, unescaped, byte for byte */
			cr_assert_eq(ev->raw.n, strlen(msg));
			cr_assert_arr_eq(ev->raw.p, msg, ev->raw.n);
			assert_str(ev->f[TW_F_EVENT_ID], json_string_value(json_object_get(rec, "eventID")));
			assert_str(ev->f[TW_F_EVENT_NAME], json_string_value(json_object_get(rec, "eventName")));
			cr_assert_eq(ev->f[TW_F_MESSAGE].n, 0);
			json_decref(rec);
		} else {
			json_t *back = json_loadb(ev->raw.p, ev->raw.n, 0, &jerr);
			cr_assert_eq(ev->kind, TW_KIND_CWLOG);
			assert_raw_in_file(f, ev);
			cr_assert(back && json_equal(back, le), "raw of log event %zu is not that log event", i);
			json_decref(back);
			assert_str(ev->f[TW_F_EVENT_ID], json_string_value(json_object_get(le, "id")));
			cr_assert_eq(ev->time_ms, json_integer_value(json_object_get(le, "timestamp")));
			assert_str(ev->f[TW_F_MESSAGE], msg);
			assert_str(ev->f[TW_F_ACCOUNT], json_string_value(json_object_get(root, "owner")));
		}
	}
	json_decref(root);
}

/* ---- test-side encoders (zlib and a plain base64 writer) ------------------------------ */

static char *gzip_b64(const char *p, size_t n, int wbits)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	z_stream zs;
	size_t cap = n + n / 10 + 1024, zn, i, o = 0;
	unsigned char *z = malloc(cap);
	char *b;

	memset(&zs, 0, sizeof zs);
	cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)(uintptr_t)p;
	zs.avail_in = (uInt)n;
	zs.next_out = z;
	zs.avail_out = (uInt)cap;
	cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	zn = zs.total_out;
	deflateEnd(&zs);
	b = malloc(zn / 3 * 4 + 8);
	for (i = 0; i + 2 < zn; i += 3) {
		uint32_t v = (uint32_t)z[i] << 16 | (uint32_t)z[i + 1] << 8 | z[i + 2];
		b[o++] = al[v >> 18];
		b[o++] = al[(v >> 12) & 63];
		b[o++] = al[(v >> 6) & 63];
		b[o++] = al[v & 63];
	}
	if (zn - i == 1) {
		uint32_t v = (uint32_t)z[i] << 16;
		b[o++] = al[v >> 18];
		b[o++] = al[(v >> 12) & 63];
		b[o++] = '=';
		b[o++] = '=';
	} else if (zn - i == 2) {
		uint32_t v = (uint32_t)z[i] << 16 | (uint32_t)z[i + 1] << 8;
		b[o++] = al[v >> 18];
		b[o++] = al[(v >> 12) & 63];
		b[o++] = al[(v >> 6) & 63];
		b[o++] = '=';
	}
	b[o] = '\0';
	free(z);
	return b;
}

/* {"awslogs":{"data":"<base64(gzip(payload))>"}} (malloc'd). */
static char *awslogs(const char *payload)
{
	char *b = gzip_b64(payload, strlen(payload), 31), *out;
	size_t n = strlen(b) + 64;
	out = malloc(n);
	snprintf(out, n, "{\"awslogs\":{\"data\":\"%s\"}}", b);
	free(b);
	return out;
}

static const char PAYLOAD1[] =
	"{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"111122223333\",\"logGroup\":\"/g1\",\"logStream\":\"s1\","
	"\"subscriptionFilters\":[\"f\"],\"logEvents\":[{\"id\":\"1\",\"timestamp\":1000,\"message\":\"one\"}]}";
static const char PAYLOAD2[] =
	"{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"111122223333\",\"logGroup\":\"/g2\",\"logStream\":\"s2\","
	"\"subscriptionFilters\":[\"f\"],\"logEvents\":[{\"id\":\"2\",\"timestamp\":2000,\"message\":\"two\"},"
	"{\"id\":\"3\",\"timestamp\":3000,\"message\":\"three\"}]}";

/* A CloudTrail record as CloudTrail writes it (compact). */
static const char CT_REC[] =
	"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"principalId\":\"AIDAEXAMPLE\","
	"\"arn\":\"arn:aws:iam::111122223333:user/alice\",\"accountId\":\"111122223333\",\"userName\":\"alice\"},"
	"\"eventTime\":\"2026-11-02T00:00:01Z\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\","
	"\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"198.51.100.7\",\"userAgent\":\"aws-cli/2\","
	"\"requestParameters\":{\"userName\":\"bob\"},\"responseElements\":null,"
	"\"eventID\":\"0d3f1a52-0000-4000-8000-000000000001\",\"readOnly\":false,\"eventType\":\"AwsApiCall\","
	"\"recipientAccountId\":\"111122223333\"}";

/* ---- datadog fixtures ----------------------------------------------------------------- */

Test(ingest_cwlogs, datadog_two_text_events_exact)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "datadog_forwarder_cloudwatch_events/cloudwatch_log.json");
	const struct tw_event *ev;

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 2);
	cr_assert_eq(f->nrej, 0);
	ev = &f->batch.ev[0];
	cr_assert_eq(ev->kind, TW_KIND_CWLOG);
	cr_assert_eq(ev->time_ms, 1440442987000);
	assert_str(ev->f[TW_F_EVENT_ID], "eventId1");
	assert_str(ev->f[TW_F_ACCOUNT], "123456789123");
	assert_str(ev->f[TW_F_LOG_GROUP], "testLogGroup");
	assert_str(ev->f[TW_F_LOG_STREAM], "testLogStream");
	assert_str(ev->f[TW_F_MESSAGE], "[ERROR] First test message");
	assert_str(ev->raw, "{\n\t\t\t\"id\": \"eventId1\",\n\t\t\t\"timestamp\": 1440442987000,\n\t\t\t\"message\": "
			    "\"[ERROR] First test message\"\n\t\t}");
	assert_raw_in_file(f, ev);
	ev = &f->batch.ev[1];
	cr_assert_eq(ev->time_ms, 1440442987001);
	assert_str(ev->f[TW_F_EVENT_ID], "eventId2");
	assert_str(ev->f[TW_F_MESSAGE], "[ERROR] Second test message");
	check_against_jansson(f, s, 0, 0);
	fx_free(f);
}

Test(ingest_cwlogs, datadog_nineteen_lambda_events)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "datadog_forwarder_cloudwatch_events/cloudwatch_logs.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 19);
	cr_assert_eq(f->nrej, 0);
	/* ids stay strings: 56 digits, never rounded through a double */
	assert_str(f->batch.ev[0].f[TW_F_EVENT_ID], "35311576111948622874033876462979853992919938886093242368");
	/* JSON-looking messages that are not CloudTrail ({"e":...,"m":"aws.lambda.enhanced..."}) stay logs */
	cr_assert(memmem(f->batch.ev[4].f[TW_F_MESSAGE].p, f->batch.ev[4].f[TW_F_MESSAGE].n,
			 "aws.lambda.enhanced.invocations", 31));
	check_against_jansson(f, s, 0, 0);
	fx_free(f);
}

Test(ingest_cwlogs, datadog_cloudtrail_through_cloudwatch)
{
	static const char *const ids[] = { "14b20909-b46b-4f74-b725-d987888edbc7", "303c31dd-aeee-4d5d-9311-61a1aa802c6f",
					   "6b574dee-bdc5-4abe-b6ec-10888ac258a2", "6b574dee-bdc5-4abe-b6ec-10888ac258a2" };
	static const int64_t ms[] = { 1600361051000, 1600361068000, 1600361050000, 1600361050000 };
	static const size_t rawlen[] = { 1120, 876, 1120, 1118 };
	struct fx *f = fx_new();
	struct tw_str s = load(f, "datadog_forwarder_cloudwatch_events/cloudwatch_log_cloudtrail.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 4);
	cr_assert_eq(f->nrej, 0);
	for (size_t i = 0; i < 4; i++) {
		const struct tw_event *ev = &f->batch.ev[i];
		cr_assert_eq(ev->kind, TW_KIND_CLOUDTRAIL);
		assert_str(ev->f[TW_F_EVENT_ID], ids[i]);
		cr_assert_eq(ev->time_ms, ms[i], "event %zu", i);
		cr_assert_eq(ev->raw.n, rawlen[i]);
		assert_str(ev->f[TW_F_LOG_GROUP], "aws-cloudtrail-logs-123456789123-c81b5193");
		assert_str(ev->f[TW_F_LOG_STREAM], "123456789123_CloudTrail_us-east-1");
		assert_str(ev->f[TW_F_ACCOUNT], "123456789123");
	}
	assert_str(f->batch.ev[0].f[TW_F_PRINCIPAL],
		   "arn:aws:sts::123456789123:assumed-role/DatadogAWSIntegrationRole/DatadogAWSIntegration");
	assert_str(f->batch.ev[1].f[TW_F_EVENT_NAME], "DescribeEventAggregates");
	cr_assert(strncmp(f->batch.ev[0].raw.p, "{\"eventVersion\":\"1.05\",\"userIdentity\":{\"type\":\"AssumedRole\"",
			  59) == 0);
	check_against_jansson(f, s, 0, 1);
	fx_free(f);
}

Test(ingest_cwlogs, datadog_broken_json_message_that_is_not_cloudtrail_stays_a_log)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "datadog_forwarder_cloudwatch_events/step_functions_log.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 1);
	cr_assert_eq(f->nrej, 0);
	cr_assert_eq(f->batch.ev[0].kind, TW_KIND_CWLOG);
	cr_assert_eq(f->batch.ev[0].time_ms, 1668095539607);
	cr_assert(strncmp(f->batch.ev[0].f[TW_F_MESSAGE].p, "{\"id\":\"1\",\"type\":\"ExecutionStarted\"", 34) == 0);
	check_against_jansson(f, s, 0, 0);
	fx_free(f);
}

Test(ingest_cwlogs, datadog_timestamp_kept_as_written)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "datadog_forwarder_cloudwatch_events/cloudwatch_logs_2.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 1);
	cr_assert_eq(f->batch.ev[0].time_ms, 1737735732); /* seconds in the fixture: not guessed at */
	assert_str(f->batch.ev[0].f[TW_F_LOG_GROUP], "/aws/rds/cluster");
	/* the message ends with a newline, kept */
	cr_assert_eq(f->batch.ev[0].f[TW_F_MESSAGE].p[f->batch.ev[0].f[TW_F_MESSAGE].n - 1], '\n');
	check_against_jansson(f, s, 0, 0);
	fx_free(f);
}

/* ---- otel fixtures -------------------------------------------------------------------- */

Test(ingest_cwlogs, otel_cloudtrail_log_cw)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "otel_awslogs_encoding_testdata/cloudtrail_log_cw.json");
	const struct tw_event *ev;

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 1);
	ev = &f->batch.ev[0];
	cr_assert_eq(ev->kind, TW_KIND_CLOUDTRAIL);
	cr_assert_eq(ev->time_ms, 1769592419000); /* eventTime, not the log event's timestamp */
	assert_str(ev->f[TW_F_EVENT_ID], "5cb53c22-36b5-3ca3-a389-dae3eec919df");
	assert_str(ev->f[TW_F_EVENT_NAME], "PutObject");
	assert_str(ev->f[TW_F_LOG_GROUP], "/aws/cloudtrail/logs");
	assert_str(ev->f[TW_F_LOG_STREAM], "123456789010_CloudTrail_us-east-1");
	assert_str(ev->f[TW_F_ACCOUNT], "627286350134"); /* recipientAccountId, not the CW owner */
	cr_assert_eq(ev->raw.n, 1478);
	check_against_jansson(f, s, 0, 1);
	fx_free(f);
}

Test(ingest_cwlogs, otel_truncated_cloudtrail_messages_are_rejected)
{
	static const char *const ids[] = { "31953106606966983378809025079804211143289615424298221568",
					   "31953106606966983378809025079804211143289615424298221569",
					   "31953106606966983378809025079804211143289615424298221570" };
	struct fx *f = fx_new();
	struct tw_str s = load(f, "otel_awslogs_encoding_testdata/valid_cloudwatch_log.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 0);
	cr_assert_eq(f->nrej, 3);
	cr_assert_eq(f->st.quarantined, 3);
	for (size_t i = 0; i < 3; i++) {
		char want[128];
		const struct rej *r = &f->rej[i];
		snprintf(want, sizeof want, "log event %zu (id %s)", i + 1, ids[i]);
		cr_assert(strstr(r->reason, want), "reason \"%s\" lacks \"%s\"", r->reason, want);
		cr_assert(strstr(r->reason, "CloudTrail"), "%s", r->reason);
		cr_assert_eq(r->line, 1);
		/* offset = the log event's '{' in the file; bytes = the log event */
		cr_assert_lt(r->offset, s.n);
		cr_assert_eq(s.p[r->offset], '{');
		cr_assert_eq(memcmp(s.p + r->offset, r->bytes, r->n), 0);
		cr_assert(strstr(r->bytes, ids[i]));
	}
	fx_free(f);
}

Test(ingest_cwlogs, truncated_cloudtrail_rejected_and_neighbours_go_on)
{
	struct fx *f = fx_new();
	char *p = malloc(4096);
	snprintf(p, 4096, "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"1\",\"logGroup\":\"CloudTrail/x\","
		 "\"logStream\":\"s\",\"logEvents\":[{\"id\":\"a\",\"timestamp\":1,\"message\":\"plain text\"},"
		 "{\"id\":\"b\",\"timestamp\":2,\"message\":\"{\\\"eventVersion\\\":\\\"1.08\\\",\\\"eventTime\\\":\\\"2026-1\"},"
		 "{\"id\":\"c\",\"timestamp\":3,\"message\":\"{\\\"eventVersion\\\":\\\"1.08\\\",\\\"eventTime\\\":\\\"nope\\\"}\"},"
		 "{\"id\":\"d\",\"timestamp\":4,\"message\":\"%s\"}]}",
		 "{\\\"eventVersion\\\":\\\"1.08\\\",\\\"eventTime\\\":\\\"2026-11-02T00:00:00Z\\\",\\\"eventName\\\":\\\"X\\\"}");

	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->batch.n, 2);
	cr_assert_eq(f->batch.ev[0].kind, TW_KIND_CWLOG);
	cr_assert_eq(f->batch.ev[1].kind, TW_KIND_CLOUDTRAIL);
	cr_assert_eq(f->batch.ev[1].time_ms, 1793577600000);
	assert_str(f->batch.ev[1].f[TW_F_LOG_GROUP], "CloudTrail/x");
	cr_assert_eq(f->nrej, 2);
	cr_assert(strstr(f->rej[0].reason, "log event 2 (id b)"), "%s", f->rej[0].reason);
	cr_assert(strstr(f->rej[1].reason, "log event 3 (id c)"), "%s", f->rej[1].reason);
	cr_assert(strstr(f->rej[1].reason, "eventTime"), "%s", f->rej[1].reason);
	free(p);
	fx_free(f);
}

Test(ingest_cwlogs, otel_control_message_is_counted_not_an_event)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "otel_awslogs_encoding_testdata/valid_cloudwatch_log_control.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 0);
	cr_assert_eq(f->nrej, 0);
	cr_assert_eq(f->st.control_messages, 1);
	fx_free(f);
}

Test(ingest_cwlogs, otel_two_payloads_back_to_back)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "otel_awslogs_encoding_testdata/multiple_json_objects.json");
	const char *cut = strstr(s.p, "}\n{");
	struct tw_str a = { s.p, (size_t)(cut + 1 - s.p) }, b = { cut + 2, s.n - (size_t)(cut + 2 - s.p) };

	cr_assert(cut);
	cr_assert_eq(obj(f, a), 1);
	cr_assert_eq(obj(f, b), 1);
	cr_assert_eq(f->batch.n, 2);
	assert_str(f->batch.ev[0].f[TW_F_LOG_GROUP], "/my/first/log/group");
	assert_str(f->batch.ev[0].f[TW_F_MESSAGE], "some text");
	assert_str(f->batch.ev[0].f[TW_F_EVENT_ID], "39494971786919662926967737244165955921131981322179969024");
	cr_assert_eq(f->batch.ev[0].time_ms, 1771015786034);
	assert_str(f->batch.ev[1].f[TW_F_LOG_STREAM], "/my/second/log/stream");
	assert_str(f->batch.ev[1].f[TW_F_MESSAGE], "some other text");
	check_against_jansson(f, b, 1, 0);
	fx_free(f);
}

Test(ingest_cwlogs, otel_vpc_flow_log_messages_are_plain_logs)
{
	struct fx *f = fx_new();
	struct tw_str s = load(f, "otel_awslogs_encoding_testdata/valid_vpc_flow_cw.json");

	cr_assert_eq(obj(f, s), 1);
	cr_assert_eq(f->batch.n, 2);
	assert_str(f->batch.ev[0].f[TW_F_MESSAGE], "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 "
						    "20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK");
	assert_str(f->batch.ev[1].f[TW_F_EVENT_ID], "eventId2");
	assert_str(f->batch.ev[1].raw, "{\"id\":\"eventId2\",\"timestamp\":1418530010000,\"message\":\"2 123456789010 "
				       "eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 "
				       "1418530070 REJECT OK\"}");
	check_against_jansson(f, s, 0, 0);
	fx_free(f);
}

/* ---- powertools envelopes ------------------------------------------------------------- */

static void check_test_log_group(const struct fx *f, const char *raw0, const char *raw1)
{
	cr_assert_eq(f->batch.n, 2);
	cr_assert_eq(f->nrej, 0);
	for (size_t i = 0; i < 2; i++) {
		const struct tw_event *ev = &f->batch.ev[i];
		cr_assert_eq(ev->kind, TW_KIND_CWLOG);
		assert_str(ev->f[TW_F_LOG_GROUP], "testLogGroup");
		assert_str(ev->f[TW_F_LOG_STREAM], "testLogStream");
		assert_str(ev->f[TW_F_ACCOUNT], "123456789123");
		cr_assert_eq(ev->time_ms, 1440442987000 + (int64_t)i);
	}
	assert_str(f->batch.ev[0].f[TW_F_MESSAGE], "[ERROR] First test message");
	assert_str(f->batch.ev[1].f[TW_F_EVENT_ID], "eventId2");
	assert_str(f->batch.ev[0].raw, raw0);
	assert_str(f->batch.ev[1].raw, raw1);
}

Test(ingest_cwlogs, powertools_awslogs_gzip_envelope)
{
	struct fx *f = fx_new();

	cr_assert_eq(obj(f, load(f, "powertools_lambda_events/cloudWatchLogEvent.json")), 1);
	check_test_log_group(f, "{\"id\":\"eventId1\",\"timestamp\":1440442987000,\"message\":\"[ERROR] First test message\"}",
			     "{\"id\":\"eventId2\",\"timestamp\":1440442987001,\"message\":\"[ERROR] Second test message\"}");
	fx_free(f);
}

Test(ingest_cwlogs, powertools_awslogs_zlib_envelope)
{
	struct fx *f = fx_new();

	cr_assert_eq(obj(f, load(f, "powertools_lambda_events/cloudWatchLogEventWithPolicyLevel.json")), 1);
	check_test_log_group(f,
			     "{\n      \"id\": \"eventId1\",\n      \"timestamp\": 1440442987000,\n      \"message\": "
			     "\"[ERROR] First test message\"\n    }",
			     "{\n      \"id\": \"eventId2\",\n      \"timestamp\": 1440442987001,\n      \"message\": "
			     "\"[ERROR] Second test message\"\n    }");
	fx_free(f);
}

Test(ingest_cwlogs, powertools_kinesis_event_two_records_six_events)
{
	struct fx *f = fx_new();
	const struct tw_event *ev;

	cr_assert_eq(obj(f, load(f, "powertools_lambda_events/kinesisStreamCloudWatchLogsEvent.json")), 1);
	cr_assert_eq(f->batch.n, 6);
	cr_assert_eq(f->nrej, 0);
	for (size_t i = 0; i < 6; i++) {
		ev = &f->batch.ev[i];
		cr_assert_eq(ev->kind, TW_KIND_CWLOG);
		assert_str(ev->f[TW_F_LOG_GROUP], "/aws/lambda/pt-1488-DummyLogDataFunction-gnWXPvL6jJyG");
		assert_str(ev->f[TW_F_ACCOUNT], "231436140809");
		assert_str(ev->f[TW_F_LOG_STREAM], i < 3 ? "2022/11/10/[$LATEST]26b6a45d574f442ea28438923cbf7bf7"
							  : "2022/11/10/[$LATEST]6749cb3ec3b34895986d592d7421cab2");
	}
	ev = &f->batch.ev[0];
	assert_str(ev->f[TW_F_EVENT_ID], "37199717562907174288355125807040114704837640994633613312");
	cr_assert_eq(ev->time_ms, 1668093027015);
	assert_str(ev->f[TW_F_MESSAGE], "START RequestId: 06e46194-f277-454e-88d3-1dd7e3860eaa Version: $LATEST\n");
	assert_str(ev->raw, "{\"id\":\"37199717562907174288355125807040114704837640994633613312\",\"timestamp\":"
			    "1668093027015,\"message\":\"START RequestId: 06e46194-f277-454e-88d3-1dd7e3860eaa Version: "
			    "$LATEST\\n\"}");
	ev = &f->batch.ev[5];
	assert_str(ev->f[TW_F_EVENT_ID], "37199708127528783025644065984112445928870980030173937666");
	cr_assert_eq(ev->time_ms, 1668092603918);
	cr_assert_eq(ev->f[TW_F_MESSAGE].n, 232);
	fx_free(f);
}

Test(ingest_cwlogs, kinesis_record_wrapper_alone)
{
	struct fx *f = fx_new();
	char *inner = gzip_b64(PAYLOAD2, strlen(PAYLOAD2), 31);
	char *p = malloc(strlen(inner) + 256);

	sprintf(p, "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"data\":\"%s\"},\"eventSource\":\"aws:kinesis\"}", inner);
	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->batch.n, 2);
	assert_str(f->batch.ev[1].f[TW_F_MESSAGE], "three");
	free(inner);
	free(p);
	fx_free(f);
}

Test(ingest_cwlogs, powertools_firehose_records_go_through_the_dispatcher)
{
	struct fx *f = fx_new();

	/* "Hello World" is text without a timestamp (quarantined by the dispatcher), {"Hello": "World"}
	 * is JSON that is not a record (skipped): no events either way. */
	cr_assert_eq(obj(f, load(f, "powertools_lambda_events/kinesisFirehosePutEvent.json")), 1);
	cr_assert_eq(f->batch.n, 0);
	cr_assert_eq(f->st.skipped, 1);
	cr_assert_eq(f->nrej, 1);
	cr_assert_eq(f->rej[0].n, 11);
	cr_assert_arr_eq(f->rej[0].bytes, "Hello World", 11);
	fx_free(f);
}

Test(ingest_cwlogs, firehose_records_with_cloudwatch_payloads)
{
	struct fx *f = fx_new();
	char *a = gzip_b64(PAYLOAD1, strlen(PAYLOAD1), 31), *b = gzip_b64(PAYLOAD2, strlen(PAYLOAD2), 31);
	char *p = malloc(strlen(a) + strlen(b) + 512);

	sprintf(p, "{\"invocationId\":\"x\",\"deliveryStreamArn\":\"arn:aws:firehose:us-east-1:1:deliverystream/d\","
		   "\"records\":[{\"recordId\":\"r1\",\"approximateArrivalTimestamp\":1,\"data\":\"%s\"},"
		   "{\"recordId\":\"r2\",\"data\":\"%s\"},{\"recordId\":\"r3\"}]}", a, b);
	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->batch.n, 3);
	assert_str(f->batch.ev[0].f[TW_F_LOG_GROUP], "/g1");
	assert_str(f->batch.ev[2].f[TW_F_MESSAGE], "three");
	cr_assert_eq(f->nrej, 1, "r3 has no data");
	cr_assert(strstr(f->rej[0].reason, "records[2]"), "%s", f->rej[0].reason);
	cr_assert_str_eq(f->rej[0].bytes, "{\"recordId\":\"r3\"}", "only the bad record is quarantined");
	free(a);
	free(b);
	free(p);
	fx_free(f);
}

Test(ingest_cwlogs, several_payloads_in_one_blob)
{
	struct fx *f = fx_new();
	char both[2048];
	char *env;

	snprintf(both, sizeof both, "%s%s\n", PAYLOAD1, PAYLOAD2);
	env = awslogs(both);
	cr_assert_eq(objs(f, env), 1);
	cr_assert_eq(f->batch.n, 3);
	assert_str(f->batch.ev[0].f[TW_F_MESSAGE], "one");
	assert_str(f->batch.ev[1].f[TW_F_LOG_GROUP], "/g2");
	assert_str(f->batch.ev[2].raw, "{\"id\":\"3\",\"timestamp\":3000,\"message\":\"three\"}");
	free(env);
	fx_free(f);
}

/* ---- things that are not logs --------------------------------------------------------- */

Test(ingest_cwlogs, non_log_objects_are_left_to_the_dispatcher)
{
	struct fx *f = fx_new();

	cr_assert_eq(obj(f, load(f, "powertools_lambda_events/cloudWatchAlarmEventSingleMetric.json")), 0);
	cr_assert_eq(obj(f, load(f, "powertools_lambda_events/eventBridgeEvent.json")), 0);
	cr_assert_eq(objs(f, "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"s3\":{}}]}"), 0);
	cr_assert_eq(objs(f, "{\"Records\":[{\"messageId\":\"m\",\"body\":\"{}\",\"eventSource\":\"aws:sqs\"}]}"), 0);
	cr_assert_eq(objs(f, "{\"Type\":\"Notification\",\"Message\":\"x\"}"), 0);
	cr_assert_eq(objs(f, "{\"messageType\":\"SOMETHING\",\"other\":1}"), 0);
	cr_assert_eq(objs(f, "{\"detail-type\":\"AWS API Call via CloudTrail\",\"detail\":{\"foo\":1}}"), 0);
	cr_assert_eq(objs(f, "[1,2]"), 0);
	cr_assert_eq(f->batch.n, 0);
	cr_assert_eq(f->nrej, 0);
	fx_free(f);
}

Test(ingest_cwlogs, eventbridge_cloudtrail_detail_is_the_record)
{
	struct fx *f = fx_new();
	char p[4096];
	const struct tw_event *ev;

	snprintf(p, sizeof p, "{\"version\":\"0\",\"id\":\"e\",\"detail-type\":\"AWS API Call via CloudTrail\","
			      "\"source\":\"aws.iam\",\"account\":\"111122223333\",\"time\":\"2026-11-02T00:00:01Z\","
			      "\"region\":\"us-east-1\",\"resources\":[],\"detail\": %s }", CT_REC);
	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->batch.n, 1);
	ev = &f->batch.ev[0];
	cr_assert_eq(ev->kind, TW_KIND_CLOUDTRAIL);
	assert_str(ev->raw, CT_REC);
	assert_str(ev->f[TW_F_EVENT_NAME], "CreateUser");
	cr_assert_eq(ev->time_ms, 1793577601000);
	/* a CloudTrail detail without eventTime is quarantined */
	cr_assert_eq(objs(f, "{\"detail-type\":\"AWS Console Sign In via CloudTrail\",\"detail\":"
			     "{\"eventVersion\":\"1.08\",\"eventName\":\"ConsoleLogin\"}}"), 1);
	cr_assert_eq(f->batch.n, 1);
	cr_assert_eq(f->nrej, 1);
	cr_assert(strstr(f->rej[0].reason, "EventBridge"), "%s", f->rej[0].reason);
	fx_free(f);
}

/* ---- payload details ------------------------------------------------------------------ */

Test(ingest_cwlogs, member_order_escapes_and_numeric_ids)
{
	struct fx *f = fx_new();
	const struct tw_event *ev;

	cr_assert_eq(objs(f, "{\"logEvents\":[{\"message\":\"caf\\u00e9 \\\"q\\\"\",\"timestamp\":5,\"id\":123456789012345678901234567890},"
			     "{\"timestamp\":-6,\"id\":\"x\"}],"
			     "\"logStream\":\"a\\/b\",\"logGroup\":\"\\/aws\\/lambda\\/f\",\"owner\":\"42\","
			     "\"messageType\":\"DATA_MESSAGE\"}"), 1);
	cr_assert_eq(f->batch.n, 2);
	ev = &f->batch.ev[0];
	assert_str(ev->f[TW_F_LOG_GROUP], "/aws/lambda/f");
	assert_str(ev->f[TW_F_LOG_STREAM], "a/b");
	assert_str(ev->f[TW_F_ACCOUNT], "42");
	assert_str(ev->f[TW_F_MESSAGE], "caf\xc3\xa9 \"q\"");
	assert_str(ev->f[TW_F_EVENT_ID], "123456789012345678901234567890");
	cr_assert_eq(ev->time_ms, 5);
	ev = &f->batch.ev[1];
	cr_assert_eq(ev->time_ms, -6);
	cr_assert_eq(ev->f[TW_F_MESSAGE].n, 0, "no message: empty");
	fx_free(f);
}

Test(ingest_cwlogs, bad_log_events_are_rejected_one_by_one)
{
	struct fx *f = fx_new();

	cr_assert_eq(objs(f, "{\"messageType\":\"DATA_MESSAGE\",\"logGroup\":\"g\",\"logEvents\":["
			     "{\"id\":\"1\",\"message\":\"no time\"},"
			     "{\"id\":\"2\",\"timestamp\":1.5,\"message\":\"float\"},"
			     "{\"id\":\"3\",\"timestamp\":\"7\",\"message\":\"string\"},"
			     "\"not an object\","
			     "{\"id\":\"5\",\"timestamp\":99999999999999999999,\"message\":\"overflow\"},"
			     "{\"id\":\"6\",\"timestamp\":6,\"message\":\"good\"}]}"), 1);
	cr_assert_eq(f->batch.n, 1);
	assert_str(f->batch.ev[0].f[TW_F_MESSAGE], "good");
	cr_assert_eq(f->nrej, 5);
	cr_assert(strstr(f->rej[0].reason, "log event 1 (id 1): no timestamp"), "%s", f->rej[0].reason);
	cr_assert(strstr(f->rej[1].reason, "not an integer"), "%s", f->rej[1].reason);
	cr_assert(strstr(f->rej[3].reason, "log event 4 is not an object"), "%s", f->rej[3].reason);
	cr_assert_str_eq(f->rej[3].bytes, "\"not an object\"");
	fx_free(f);
}

Test(ingest_cwlogs, malformed_payloads_are_rejected)
{
	struct fx *f = fx_new();

	cr_assert_eq(objs(f, "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":{}}"), 1);
	cr_assert_eq(objs(f, "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"1\"}"), 1);
	cr_assert_eq(objs(f, "{\"messageType\":\"WEIRD\",\"logEvents\":[]}"), 1);
	cr_assert_eq(objs(f, "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[}"), 1);
	cr_assert_eq(f->batch.n, 0);
	cr_assert_eq(f->nrej, 4);
	cr_assert(strstr(f->rej[0].reason, "logEvents is not an array"), "%s", f->rej[0].reason);
	cr_assert(strstr(f->rej[1].reason, "without logEvents"), "%s", f->rej[1].reason);
	cr_assert(strstr(f->rej[2].reason, "unknown messageType \"WEIRD\""), "%s", f->rej[2].reason);
	cr_assert(strstr(f->rej[3].reason, "invalid JSON"), "%s", f->rej[3].reason);
	fx_free(f);
}

/* ---- hostile blobs -------------------------------------------------------------------- */

Test(ingest_cwlogs, bad_base64_and_bad_gzip_are_rejected_with_reasons)
{
	struct fx *f = fx_new();
	char *good = gzip_b64(PAYLOAD1, strlen(PAYLOAD1), 31), *p = malloc(2 * strlen(good) + 64);

	cr_assert_eq(objs(f, "{\"awslogs\":{\"data\":\"H4sI!!!!\"}}"), 1);
	cr_assert_eq(objs(f, "{\"awslogs\":{\"nodata\":1}}"), 1);
	/* cut the gzip short: 12 base64 characters = 9 bytes of header */
	cr_assert_eq(objs(f, "{\"awslogs\":{\"data\":\"H4sIAAAAAAAAAHWP\"}}"), 1);
	/* escaped slashes in the JSON string are fine */
	sprintf(p, "{\"awslogs\":{\"data\":\"%s\"}}", good);
	for (char *s = strchr(p, '/'); s; s = strchr(s + 2, '/')) {
		memmove(s + 1, s, strlen(s) + 1);
		*s = '\\';
	}
	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->batch.n, 1);
	assert_str(f->batch.ev[0].f[TW_F_MESSAGE], "one");
	cr_assert_eq(f->nrej, 3);
	cr_assert(strstr(f->rej[0].reason, "awslogs.data: base64: invalid character 0x21 at offset 4"), "%s",
		  f->rej[0].reason);
	cr_assert(strstr(f->rej[1].reason, "no \"data\" string"), "%s", f->rej[1].reason);
	cr_assert(strstr(f->rej[2].reason, "truncated gzip stream"), "%s", f->rej[2].reason);
	free(good);
	free(p);
	fx_free(f);
}

Test(ingest_cwlogs, gzip_bomb_and_huge_base64_stop_at_max_payload)
{
	struct fx *f = fx_new();
	size_t big = 8u << 20;
	char *zeros = calloc(1, big), *b, *p;

	f->lim.max_payload = 1u << 20;
	memset(zeros, ' ', big);
	b = gzip_b64(zeros, big, 31);
	p = malloc(strlen(b) + 64);
	sprintf(p, "{\"awslogs\":{\"data\":\"%s\"}}", b);
	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->nrej, 1);
	cr_assert(strstr(f->rej[0].reason, "inflated size exceeds 1048576 bytes"), "%s", f->rej[0].reason);
	free(p);
	free(b);

	/* 2 MB of base64 for a 1 MB cap: refused before decoding */
	p = malloc(big / 4 + 64);
	memcpy(p, "{\"awslogs\":{\"data\":\"", 20);
	memset(p + 20, 'A', big / 4);
	strcpy(p + 20 + big / 4, "\"}}");
	cr_assert_eq(objs(f, p), 1);
	cr_assert_eq(f->nrej, 2);
	cr_assert(strstr(f->rej[1].reason, "exceed the payload limit"), "%s", f->rej[1].reason);
	cr_assert_eq(f->batch.n, 0);
	free(p);
	free(zeros);
	fx_free(f);
}

Test(ingest_cwlogs, nesting_is_capped)
{
	struct fx *f = fx_new();
	char *env = strdup(PAYLOAD1);

	/* 2 envelopes: fine */
	for (int i = 0; i < 2; i++) {
		char *next = awslogs(env);
		free(env);
		env = next;
	}
	cr_assert_eq(objs(f, env), 1);
	cr_assert_eq(f->batch.n, 1);
	cr_assert_eq(f->nrej, 0);
	/* 10 envelopes: refused, no crash, no event */
	for (int i = 0; i < 8; i++) {
		char *next = awslogs(env);
		free(env);
		env = next;
	}
	cr_assert_eq(objs(f, env), 1);
	cr_assert_eq(f->batch.n, 1);
	cr_assert_eq(f->nrej, 1);
	cr_assert(strstr(f->rej[0].reason, "nest"), "%s", f->rej[0].reason);
	cr_assert_eq(f->d.nesting, 0, "nesting unwound");
	free(env);
	fx_free(f);
}

/* ---- export lines --------------------------------------------------------------------- */

static int line(struct fx *f, const char *s)
{
	struct tw_str l = in_arena(f, s, strlen(s));
	struct tw_pos pos = { 7, 6, 600 };
	int handled = -1;
	cr_assert_eq(tw_cw_decode_export_line(&f->d, l.p, l.n, &pos, &handled), TW_OK);
	return handled;
}

Test(ingest_cwlogs, export_lines)
{
	struct fx *f = fx_new();
	char ct[2048];
	const struct tw_event *ev;

	cr_assert_eq(line(f, "2026-11-02T00:00:01.250Z START RequestId: abc Version: $LATEST\n"), 1);
	ev = &f->batch.ev[0];
	cr_assert_eq(ev->kind, TW_KIND_CWLOG);
	cr_assert_eq(ev->time_ms, 1793577601250);
	assert_str(ev->f[TW_F_MESSAGE], "START RequestId: abc Version: $LATEST");
	assert_str(ev->raw, "2026-11-02T00:00:01.250Z START RequestId: abc Version: $LATEST");
	cr_assert_eq(ev->src_line, 7);
	cr_assert_eq(ev->src_index, 6);

	snprintf(ct, sizeof ct, "2026-11-02T00:00:00.000Z %s", CT_REC);
	cr_assert_eq(line(f, ct), 1);
	ev = &f->batch.ev[1];
	cr_assert_eq(ev->kind, TW_KIND_CLOUDTRAIL);
	assert_str(ev->raw, CT_REC);
	cr_assert_eq(ev->time_ms, 1793577601000); /* eventTime */

	cr_assert_eq(line(f, "2026-11-02T00:00:00Z"), 1); /* empty message */
	assert_str(f->batch.ev[2].f[TW_F_MESSAGE], "");
	cr_assert_eq(line(f, "2026-11-02 00:00:00.5 spaced"), 1);
	assert_str(f->batch.ev[3].f[TW_F_MESSAGE], "spaced");
	cr_assert_eq(f->batch.ev[3].time_ms, 1793577600500);

	cr_assert_eq(line(f, "2026-11-02T00:00:00Z {\"eventVersion\":\"1.08\",\"eventTime\":\"x"), 1);
	cr_assert_eq(f->nrej, 1);
	cr_assert_eq(f->rej[0].line, 7);
	cr_assert(strstr(f->rej[0].reason, "CloudTrail"), "%s", f->rej[0].reason);

	cr_assert_eq(line(f, "hello world"), 0);
	cr_assert_eq(line(f, "1700000000000 epoch first"), 0);
	cr_assert_eq(line(f, "2026-11-02 date only"), 0);
	cr_assert_eq(line(f, "2026-13-02T00:00:00Z bad month"), 0);
	cr_assert_eq(line(f, ""), 0);
	cr_assert_eq(f->batch.n, 4);
	fx_free(f);
}
