/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_query_exec.c: query/ evaluation and the streaming executor on hand-built events
 * (every operator, aggregate, bin(), sort with ties, limit, dedup, missing fields, numbers vs
 * strings, regexes, JSON paths with arrays and escapes), and a differential test against
 * tests/tools/query_reference.py over a generated CloudTrail file (skipped without $TW_SHARED). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/time.h"
#include "ingest/ingest.h"
#include "index/store.h"
#include "query/query.h"
#include "tests/helpers/helpers.h"

#define S(lit) ((struct tw_str){ (lit), sizeof(lit) - 1 })
static struct tw_str cs(const char *s) { return (struct tw_str){ s, s ? strlen(s) : 0 }; }

/* A small fixed population. Times are minutes after 2026-11-02T00:00:00Z. */
#define T0 1793577600000LL
#define MIN 60000LL
static struct tw_str res_a[] = { S("arn:aws:s3:::logs"), S("logs") };
static struct tw_str res_b[] = { S("arn:aws:s3:::data"), S("data"), S("arn:aws:kms:us-east-1:1:key/k") };

static struct tw_event evs[6];

static void mk(int i, int64_t minutes, const char *user, const char *name, const char *ip, const char *raw)
{
	struct tw_event *ev = &evs[i];
	memset(ev, 0, sizeof *ev);
	ev->kind = TW_KIND_CLOUDTRAIL;
	ev->time_ms = T0 + minutes * MIN;
	ev->read_only = -1;
	ev->raw = cs(raw);
	ev->f[TW_F_USER_NAME] = cs(user);
	ev->f[TW_F_EVENT_NAME] = cs(name);
	ev->f[TW_F_SOURCE_IP] = cs(ip);
	ev->f[TW_F_EVENT_ID] = cs((const char *[]){ "id0", "id1", "id2", "id3", "id4", "id5" }[i]);
}

static void setup(void)
{
	mk(0, 0, "alice", "GetObject", "10.0.0.1",
	   "{\"n\":10,\"s\":\"10\",\"t\":\"abc\",\"resources\":[{\"ARN\":\"arn:1\"},{\"ARN\":\"arn:2\"}],"
	   "\"we\\\"ird\":{\"k\":\"v\\u00e9\"},\"esc\":\"a\\\"b\",\"bytes\":100,\"nul\":null,\"ro\":true}");
	mk(1, 5, "bob", "PutObject", "10.0.0.2", "{\"n\":2,\"s\":\"9\",\"bytes\":50,\"nested\":{\"a\":[1,[2,3]]}}");
	mk(2, 61, "alice", "DeleteObject", "10.0.0.1", "{\"n\":2,\"bytes\":\"7\",\"msg\":\"Access DENIED here\"}");
	mk(3, 62, "carol", "GetObject", "10.0.0.3", "{\"n\":-1.5,\"bytes\":\"many\"}");
	mk(4, 125, NULL, "ListBuckets", "10.0.0.1", "not json at all");
	mk(5, 130, "alice", "GetObject", "10.0.0.2", "{\"n\":10}");
	evs[0].resources = res_a;
	evs[0].nresources = 2;
	evs[1].resources = res_b;
	evs[1].nresources = 3;
	evs[0].read_only = 1;
	evs[1].read_only = 0;
}

static struct tw_query *parse(const char *text)
{
	struct tw_query *q = NULL;
	struct tw_err err;
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s: %s", text, err.msg);
	return q;
}

/* The indexes of the events that match, as a string "0 2 5". */
static char *matches(const char *text)
{
	static char out[64];
	struct tw_query *q = parse(text);
	out[0] = '\0';
	for (int i = 0; i < 6; i++)
		if (tw_query_match(q, &evs[i]))
			snprintf(out + strlen(out), sizeof out - strlen(out), "%s%d", out[0] ? " " : "", i);
	tw_query_free(q);
	return out;
}

#define MATCH(text, want) cr_assert_str_eq(matches(text), want, "%s", text)

Test(query_exec, comparisons_numbers_and_strings, .init = setup)
{
	MATCH("filter n > 9", "0 5");
	MATCH("filter n = 10.0", "0 5");
	MATCH("filter n <= 2", "1 2 3");
	MATCH("filter n < 0", "3");
	MATCH("filter n >= -1.5 and n != 10", "1 2 3");
	MATCH("filter s > 9", "0");    /* "10" is numeric against a number: 10 > 9 */
	MATCH("filter s > \"9\"", ""); /* two strings compare bytewise: "10" < "9", "9" = "9" */
	MATCH("filter s >= \"9\"", "1");
	MATCH("filter t > 5", "0");    /* "abc" is not a number: bytewise "abc" > "5" */
	MATCH("filter bytes = 7", "2"); /* "7" numeric */
	MATCH("filter bytes > 60", "0 3"); /* 100 > 60; "many" vs "60" bytewise m > 6 */
	MATCH("filter user = \"alice\"", "0 2 5");
	MATCH("filter \"alice\" = user", "0 2 5");
	MATCH("filter user != \"alice\"", "1 3"); /* missing user: comparisons are false */
	MATCH("filter not user = \"alice\"", "1 3 4");
	MATCH("filter user < \"b\"", "0 2 5");
	MATCH("filter user = null", "4");
	MATCH("filter user != null", "0 1 2 3 5");
	MATCH("filter nul = null", "0 1 2 3 4 5");
}

Test(query_exec, json_null_is_absent, .init = setup)
{
	/* "nul" is JSON null in event 0 and absent elsewhere: both are null. */
	MATCH("filter nul = null and n = 10", "0 5");
	MATCH("filter ispresent(nul)", "");
	MATCH("filter ispresent(n)", "0 1 2 3 5");
	MATCH("filter not ispresent(n)", "4");
}

Test(query_exec, boolean_logic_and_lists, .init = setup)
{
	MATCH("filter user = \"alice\" and eventName = \"GetObject\"", "0 5");
	MATCH("filter user = \"bob\" or ip = \"10.0.0.3\"", "1 3");
	MATCH("filter not (user = \"alice\" or user = \"bob\")", "3 4");
	MATCH("filter user = \"alice\" and (n = 2 or n = 10) and not eventName = \"GetObject\"", "2");
	MATCH("filter eventName in [\"PutObject\", \"ListBuckets\"]", "1 4");
	MATCH("filter eventName not in [\"PutObject\", \"ListBuckets\"]", "0 2 3 5");
	MATCH("filter n in [2, \"10\"]", "0 1 2 5");
	MATCH("filter eventName in []", "");
	MATCH("filter user in [null, \"carol\"]", "3 4");
	MATCH("filter eventName = \"GetObject\" | filter user = \"alice\"", "0 5");
}

Test(query_exec, like_and_regex, .init = setup)
{
	MATCH("filter eventName like \"Object\"", "0 1 2 3 5");
	MATCH("filter eventName like \"object\"", "");
	MATCH("filter eventName not like \"Get\"", "1 2 4");
	MATCH("filter eventName like /^(Get|Put)/", "0 1 3 5");
	MATCH("filter eventName =~ /object$/", "");
	MATCH("filter eventName =~ /(?i)object$/", "0 1 2 3 5");
	MATCH("filter eventName =~ /OBJECT$/i", "0 1 2 3 5");
	MATCH("filter msg =~ /access denied/i", "2");
	MATCH("filter @message like \"not json\"", "4");
	MATCH("filter ip =~ /^10\\.0\\.0\\.[12]$/", "0 1 2 4 5");
	MATCH("filter n =~ /^-/", "3"); /* numbers match on their text */
}

Test(query_exec, runaway_regex_stops_at_the_match_limit, .timeout = 10)
{
	char raw[128];
	snprintf(raw, sizeof raw, "{\"v\":\"%.*s!\",\"w\":\"aaaa\"}", 60,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	struct tw_event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = TW_KIND_CLOUDTRAIL;
	ev.read_only = -1;
	ev.raw = cs(raw);
	struct tw_query *q = parse("filter v =~ /^(a|aa)+$/ or w =~ /^(a|aa)+$/");
	/* 2^60 ways to split the a's without a limit; with it v gives up and w still matches */
	cr_assert_eq(tw_query_match(q, &ev), 1);
	tw_query_free(q);
	q = parse("filter v =~ /^(a|aa)+$/");
	cr_assert_eq(tw_query_match(q, &ev), 0);
	tw_query_free(q);
}

Test(query_exec, json_paths_with_arrays_and_escapes, .init = setup)
{
	MATCH("filter resources.0.ARN = \"arn:1\"", "0");
	MATCH("filter resources.1.ARN = \"arn:2\"", "0");
	MATCH("filter ispresent(resources.2.ARN)", "");
	MATCH("filter `we\"ird`.k = \"v\\u00e9\"", "0");
	MATCH("filter `we\"ird`.k = \"v\xc3\xa9\"", "0");
	MATCH("filter esc = 'a\"b'", "0");
	MATCH("filter nested.a.1.0 = 2", "1");
	MATCH("filter nested.a.1 = \"[2,3]\"", "1"); /* containers compare as their JSON text */
	MATCH("filter ro = true", "0");
	MATCH("filter readOnly = false", "1");
	MATCH("filter kind = \"cloudtrail\"", "0 1 2 3 4 5");
}

Test(query_exec, resource_matches_any, .init = setup)
{
	MATCH("filter resource = \"logs\"", "0");
	MATCH("filter resource = \"arn:aws:kms:us-east-1:1:key/k\"", "1");
	MATCH("filter resource in [\"data\", \"nothing\"]", "1");
	MATCH("filter resource like \"kms\"", "1");
	MATCH("filter resource =~ /^arn:aws:s3/", "0 1");
	MATCH("filter resource != \"logs\"", "1"); /* no resource equals; absent: false */
	MATCH("filter ispresent(resource)", "0 1");
}

Test(query_exec, timestamp_compares_with_iso_strings, .init = setup)
{
	MATCH("filter @timestamp >= \"2026-11-02T01:00:00Z\"", "2 3 4 5");
	MATCH("filter @timestamp < \"2026-11-02T01:01:00Z\" and time > 1793577600000", "1");
	MATCH("filter @timestamp = \"2026-11-02T02:10:00Z\"", "5");
}

/* ---- executor ----------------------------------------------------------------------------------- */
static struct tw_qexec *run(const char *text, struct tw_query **qout, const int *order, int n)
{
	struct tw_query *q = parse(text);
	struct tw_qexec *x;
	struct tw_err err;
	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK);
	for (int i = 0; i < n; i++)
		cr_assert_eq(tw_qexec_push(x, &evs[order ? order[i] : i], NULL, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK, "%s", err.msg);
	*qout = q;
	return x;
}

/* Renders the table: "col1,col2\nv,v\n..." (null as "-"). */
static char *table(struct tw_qexec *x)
{
	struct tw_buf b;
	tw_buf_init(&b, 1 << 20);
	for (size_t c = 0; c < tw_qexec_ncols(x); c++)
		tw_buf_printf(&b, NULL, "%s%s", c ? "," : "", tw_qexec_col_name(x, c));
	tw_buf_putc(&b, '\n', NULL);
	for (size_t r = 0; r < tw_qexec_nrows(x); r++) {
		const struct tw_qval *v;
		cr_assert_eq(tw_qexec_row(x, r, &v, NULL), TW_OK);
		for (size_t c = 0; c < tw_qexec_ncols(x); c++) {
			if (c)
				tw_buf_putc(&b, ',', NULL);
			if (v[c].type == TW_QV_NULL)
				tw_buf_putc(&b, '-', NULL);
			else
				tw_buf_append(&b, v[c].s.p, v[c].s.n, NULL);
		}
		tw_buf_putc(&b, '\n', NULL);
	}
	char *s = strdup(tw_buf_cstr(&b));
	tw_buf_free(&b);
	return s;
}

static void expect_table(const char *text, const char *want)
{
	struct tw_query *q;
	struct tw_qexec *x = run(text, &q, NULL, 6);
	char *got = table(x);
	cr_assert_str_eq(got, want, "%s", text);
	free(got);
	tw_qexec_free(x);
	tw_query_free(q);
}

/* Event ids of the rows, "id0 id2". */
static void expect_ids(const char *text, const int *order, int n, const char *want)
{
	struct tw_query *q;
	struct tw_qexec *x = run(text, &q, order, n);
	char got[128] = "";
	cr_assert_eq(tw_qexec_is_stats(x), 0);
	for (size_t r = 0; r < tw_qexec_nrows(x); r++) {
		const struct tw_event *ev = tw_qexec_row_event(x, r);
		cr_assert(ev);
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", r ? " " : "",
			 (int)ev->f[TW_F_EVENT_ID].n, ev->f[TW_F_EVENT_ID].p);
	}
	cr_assert_str_eq(got, want, "%s", text);
	tw_qexec_free(x);
	tw_query_free(q);
}

Test(query_exec, stats_aggregates_by_field, .init = setup)
{
	/* alice: events 0 (n 10, bytes 100), 2 (n 2, bytes "7"), 5 (n 10, no bytes); bob: 1; carol: 3;
	 * event 4 has no user: its group key is null (sorts first). */
	expect_table("stats count(*) as c, count(bytes), count_distinct(n) as dn, min(n), max(n), sum(bytes), "
		     "avg(n) by user",
		     "user,c,count(bytes),dn,min(n),max(n),sum(bytes),avg(n)\n"
		     "-,1,0,0,-,-,0,-\n"
		     "alice,3,2,2,2,10,107,7.333333333333333\n"
		     "bob,1,1,1,2,2,50,2\n"
		     "carol,1,1,1,-1.5,-1.5,0,-1.5\n");
}

Test(query_exec, earliest_and_latest_whatever_the_order, .init = setup)
{
	static const int rev[] = { 5, 4, 3, 2, 1, 0 };
	for (int k = 0; k < 2; k++) {
		struct tw_query *q;
		struct tw_qexec *x = run("filter user = \"alice\" | stats earliest(eventName) as e, latest(eventName) as l, "
					 "earliest(bytes) as eb, latest(bytes) as lb",
					 &q, k ? rev : NULL, 6);
		char *got = table(x);
		/* bytes: event 0 has 100, event 2 has "7", event 5 has none (skipped). */
		cr_assert_str_eq(got, "e,l,eb,lb\nGetObject,GetObject,100,7\n");
		free(got);
		tw_qexec_free(x);
		tw_query_free(q);
	}
	expect_table("stats earliest(eventName) as e, latest(eventName) as l by user | filter user = \"alice\"",
		     "user,e,l\nalice,GetObject,GetObject\n");
	expect_table("filter user = \"alice\" and eventName != \"GetObject\" | stats latest(ip)", "latest(ip)\n10.0.0.1\n");
}

Test(query_exec, stats_bins_and_empty_input, .init = setup)
{
	/* minutes 0,5 | 61,62 | 125,130 */
	expect_table("stats count(*) by bin(1h)",
		     "bin(1h),count(*)\n1793577600000,2\n1793581200000,2\n1793584800000,2\n");
	expect_table("stats count(*) as n by bin(1h), user | filter n > 1", "bin(1h),user,n\n");
	expect_table("stats count(*) as n by bin(30m) | sort n desc, `bin(30m)` desc | limit 2",
		     "bin(30m),n\n1793584800000,2\n1793581200000,2\n");
	expect_table("filter user = \"nobody\" | stats count(*), sum(n), avg(n)", "count(*),sum(n),avg(n)\n0,0,-\n");
	expect_table("filter user = \"nobody\" | stats count(*) by user", "user,count(*)\n");
	/* stats after a sort and limit counts the kept events: the two latest are 5 (alice) and 4 (none) */
	expect_table("sort @timestamp desc | limit 2 | stats count(*) as n by user", "user,n\n-,1\nalice,1\n");
}

Test(query_exec, sort_with_ties_is_stable, .init = setup)
{
	/* n: 0:10 1:2 2:2 3:-1.5 4:absent 5:10; absent is the smallest. */
	expect_ids("sort n", NULL, 6, "id4 id3 id1 id2 id0 id5");
	expect_ids("sort n desc", NULL, 6, "id0 id5 id1 id2 id3 id4");
	static const int rev[] = { 5, 4, 3, 2, 1, 0 };
	expect_ids("sort n desc", rev, 6, "id5 id0 id2 id1 id3 id4");
	expect_ids("sort user, @timestamp desc", NULL, 6, "id4 id5 id2 id0 id1 id3");
	/* top-N equals sort-then-limit, ties included */
	expect_ids("sort n desc | limit 3", NULL, 6, "id0 id5 id1");
	expect_ids("sort n desc | fields eventName | limit 3", rev, 6, "id5 id0 id2");
	expect_ids("sort n | limit 1", NULL, 6, "id4");
}

Test(query_exec, limit_stops_the_stream, .init = setup)
{
	struct tw_query *q = parse("filter user = \"alice\" | limit 2");
	struct tw_qexec *x;
	struct tw_err err;
	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK);
	int done = 0, pushed = 0;
	for (int i = 0; i < 6 && !done; i++, pushed++)
		cr_assert_eq(tw_qexec_push(x, &evs[i], &done, &err), TW_OK);
	cr_assert_eq(pushed, 3); /* alice is events 0 and 2: done right after event 2 */
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK);
	cr_assert_eq(tw_qexec_nrows(x), 2);
	cr_assert_eq(tw_qexec_row_event(x, 1)->time_ms, evs[2].time_ms);
	tw_qexec_free(x);
	tw_query_free(q);
	expect_ids("limit 2 | filter user = \"alice\"", NULL, 6, "id0");
	expect_ids("filter n = 2 | sort @timestamp desc | limit 1", NULL, 6, "id2");
}

Test(query_exec, dedup_keeps_the_first_and_rows_with_nulls, .init = setup)
{
	expect_ids("dedup user", NULL, 6, "id0 id1 id3 id4");
	expect_ids("dedup user, ip", NULL, 6, "id0 id1 id3 id4 id5");
	expect_ids("sort @timestamp desc | dedup user", NULL, 6, "id5 id4 id3 id1");
	expect_table("stats count(*) as n by user | dedup n", "user,n\n-,1\nalice,3\n");
}

Test(query_exec, fields_project_values_and_events_are_copies, .init = setup)
{
	struct tw_query *q;
	struct tw_qexec *x;
	struct tw_err err;
	q = parse("filter user = \"alice\" | fields @timestamp, user, resources.1.ARN, nope");
	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK);
	char raw[256];
	struct tw_event ev = evs[0];
	snprintf(raw, sizeof raw, "%.*s", (int)evs[0].raw.n, evs[0].raw.p);
	ev.raw = cs(raw);
	cr_assert_eq(tw_qexec_push(x, &ev, NULL, &err), TW_OK);
	memset(raw, 'x', sizeof raw - 1); /* the executor must not point into pushed memory */
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK);
	char *got = table(x);
	cr_assert_str_eq(got, "@timestamp,user,resources.1.ARN,nope\n1793577600000,alice,arn:2,-\n");
	free(got);
	cr_assert_eq(tw_qexec_row_event(x, 0)->nresources, 2);
	cr_assert(tw_str_eq(tw_qexec_row_event(x, 0)->resources[1], "logs"));
	tw_qexec_free(x);
	tw_query_free(q);
	expect_table("stats count(*) as n by user | fields n", "n\n1\n3\n1\n1\n");
}

Test(query_exec, group_cap_gives_elimit, .init = setup)
{
	struct tw_query *q = parse("stats count(*) by eventID");
	struct tw_qexec *x;
	struct tw_err err;
	struct tw_qexec_opts o = { .max_groups = 3 };
	cr_assert_eq(tw_qexec_new(q, &o, &x, &err), TW_OK);
	enum tw_rc rc = TW_OK;
	for (int i = 0; i < 6 && rc == TW_OK; i++)
		rc = tw_qexec_push(x, &evs[i], NULL, &err);
	cr_assert_eq(rc, TW_ELIMIT);
	cr_assert(strstr(err.msg, "more than 3 stats groups") != NULL, "%s", err.msg);
	tw_qexec_free(x);
	struct tw_qexec_opts o2 = { .max_rows = 2 };
	tw_query_free(q);
	q = parse("filter n > 0");
	cr_assert_eq(tw_qexec_new(q, &o2, &x, &err), TW_OK);
	rc = TW_OK;
	for (int i = 0; i < 6 && rc == TW_OK; i++)
		rc = tw_qexec_push(x, &evs[i], NULL, &err);
	cr_assert_eq(rc, TW_ELIMIT);
	tw_qexec_free(x);
	tw_query_free(q);
}

/* ---- differential test against tests/tools/query_reference.py ------------------------------------- */
static uint64_t rng_state = 1;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Events decoded from a generated file, copied out of their batches (one malloc each). */
struct evstore {
	struct tw_event **ev; /* copies */
	size_t n, cap;        /* in use / allocated */
};

static struct tw_event *dup_event(const struct tw_event *ev)
{
	size_t n = sizeof *ev + ev->nresources * sizeof(struct tw_str) + ev->raw.n;
	for (int f = 0; f < TW_F__COUNT; f++)
		n += ev->f[f].n;
	for (uint32_t i = 0; i < ev->nresources; i++)
		n += ev->resources[i].n;
	char *m = malloc(n);
	cr_assert(m);
	struct tw_event *c = (struct tw_event *)m;
	*c = *ev;
	struct tw_str *res = (struct tw_str *)(c + 1);
	char *p = (char *)(res + ev->nresources);
	memcpy(p, ev->raw.p, ev->raw.n);
	c->raw.p = p;
	p += ev->raw.n;
	for (int f = 0; f < TW_F__COUNT; f++) {
		memcpy(p, ev->f[f].p ? ev->f[f].p : "", ev->f[f].n);
		c->f[f].p = p;
		p += ev->f[f].n;
	}
	for (uint32_t i = 0; i < ev->nresources; i++) {
		memcpy(p, ev->resources[i].p, ev->resources[i].n);
		res[i] = (struct tw_str){ p, ev->resources[i].n };
		p += ev->resources[i].n;
	}
	c->resources = res;
	return c;
}

static enum tw_rc store_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	(void)err;
	struct evstore *st = ctx;
	for (size_t i = 0; i < batch->n; i++) {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 1024;
			st->ev = realloc(st->ev, st->cap * sizeof *st->ev);
			cr_assert(st->ev);
		}
		st->ev[st->n++] = dup_event(&batch->ev[i]);
	}
	return TW_OK;
}

/* The fields the generator draws from: query spelling and the JSON path the reference walks. */
static const struct {
	const char *q;
	const char *path[3];
} dfields[] = {
	{ "eventName", { "eventName" } },
	{ "source", { "eventSource" } },
	{ "region", { "awsRegion" } },
	{ "error", { "errorCode" } },
	{ "ip", { "sourceIPAddress" } },
	{ "readOnly", { "readOnly" } },
	{ "userAgent", { "userAgent" } },
	{ "recipientAccountId", { "recipientAccountId" } },
	{ "userIdentity.type", { "userIdentity", "type" } },
	{ "userIdentity.userName", { "userIdentity", "userName" } },
	{ "userIdentity.arn", { "userIdentity", "arn" } },
	{ "requestParameters.bucketName", { "requestParameters", "bucketName" } },
};
#define NDF (sizeof dfields / sizeof dfields[0])

/* Query text and the reference's JSON description, built side by side. */
struct gen {
	struct tw_buf q;           /* query text */
	struct tw_buf d;           /* JSON description */
	const struct evstore *st;  /* values come from these events */
	struct tw_arena a;         /* scratch for values */
};

static void desc_path(struct tw_buf *d, size_t f)
{
	tw_buf_putc(d, '[', NULL);
	for (int k = 0; k < 3 && dfields[f].path[k]; k++) {
		if (k)
			tw_buf_putc(d, ',', NULL);
		tw_json_write_str(d, dfields[f].path[k], strlen(dfields[f].path[k]), NULL);
	}
	tw_buf_putc(d, ']', NULL);
}

/* A value of field f from a random event, decoded ("nope" when the event lacks it). */
static struct tw_str sample(struct gen *g, size_t f)
{
	const struct tw_event *ev = g->st->ev[rnd() % g->st->n];
	struct tw_query *q;
	char text[96];
	snprintf(text, sizeof text, "fields %s", dfields[f].q);
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, NULL), TW_OK);
	struct tw_qexec *x;
	cr_assert_eq(tw_qexec_new(q, NULL, &x, NULL), TW_OK);
	tw_qexec_push(x, ev, NULL, NULL);
	tw_qexec_finish(x, NULL);
	const struct tw_qval *v;
	cr_assert_eq(tw_qexec_row(x, 0, &v, NULL), TW_OK);
	struct tw_str out = S("nope");
	if (v[0].type != TW_QV_NULL)
		tw_arena_dup(&g->a, v[0].s, &out, NULL);
	tw_qexec_free(x);
	tw_query_free(q);
	return out;
}

static void lit(struct gen *g, struct tw_str s)
{
	tw_json_write_str(&g->q, s.p, s.n, NULL); /* JSON string escapes are query string escapes */
	tw_json_write_str(&g->d, s.p, s.n, NULL);
}

/* A regex that matches s literally: non-alphanumeric ASCII escaped (pcre2 and Python agree). */
static void regex_of(struct tw_buf *b, struct tw_str s, int json)
{
	for (size_t i = 0; i < s.n; i++) {
		unsigned char c = (unsigned char)s.p[i];
		int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
		if (!alnum)
			tw_buf_printf(b, NULL, json ? "\\\\" : "\\");
		if (json && c == '"')
			tw_buf_printf(b, NULL, "\\\"");
		else
			tw_buf_putc(b, (char)c, NULL);
	}
}

static void gen_leaf(struct gen *g)
{
	size_t f = rnd() % NDF;
	struct tw_str v = sample(g, f);
	int kind = (int)(rnd() % 8);
	const char *fq = dfields[f].q;
	switch (kind) {
	case 0:
	case 1:
		tw_buf_printf(&g->q, NULL, "%s %s ", fq, kind ? "!=" : "=");
		tw_buf_printf(&g->d, NULL, "[\"%s\",", kind ? "ne" : "eq");
		desc_path(&g->d, f);
		tw_buf_putc(&g->d, ',', NULL);
		lit(g, v);
		tw_buf_putc(&g->d, ']', NULL);
		break;
	case 2: {
		tw_buf_printf(&g->q, NULL, "%s in [", fq);
		tw_buf_printf(&g->d, NULL, "[\"in\",");
		desc_path(&g->d, f);
		tw_buf_printf(&g->d, NULL, ",[");
		int nv = 1 + (int)(rnd() % 4);
		for (int i = 0; i < nv; i++) {
			if (i) {
				tw_buf_printf(&g->q, NULL, ", ");
				tw_buf_putc(&g->d, ',', NULL);
			}
			lit(g, i ? sample(g, f) : v);
		}
		tw_buf_putc(&g->q, ']', NULL);
		tw_buf_printf(&g->d, NULL, "]]");
		break;
	}
	case 3: { /* like "substring" */
		size_t a = v.n > 1 ? rnd() % (v.n - 1) : 0;
		size_t l = 1 + rnd() % 5;
		if (a + l > v.n)
			l = v.n - a;
		while (a > 0 && ((unsigned char)v.p[a] & 0xc0) == 0x80)
			a--;
		while (a + l < v.n && ((unsigned char)v.p[a + l] & 0xc0) == 0x80)
			l++;
		struct tw_str sub = { v.p + a, l };
		tw_buf_printf(&g->q, NULL, "%s like ", fq);
		tw_buf_printf(&g->d, NULL, "[\"like\",");
		desc_path(&g->d, f);
		tw_buf_putc(&g->d, ',', NULL);
		lit(g, sub);
		tw_buf_putc(&g->d, ']', NULL);
		break;
	}
	case 4:
	case 5: { /* regex: anchored prefix, or a case-folded piece */
		int icase = kind == 5;
		size_t l = v.n < 4 ? v.n : 2 + rnd() % (v.n - 2);
		while (l < v.n && ((unsigned char)v.p[l] & 0xc0) == 0x80)
			l++;
		struct tw_str pre = { v.p, l };
		struct tw_buf low;
		tw_buf_init(&low, 1 << 16);
		for (size_t i = 0; i < pre.n; i++) {
			char c = pre.p[i];
			tw_buf_putc(&low, icase && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c, NULL);
		}
		struct tw_str pat = { low.p, low.n };
		int form = (int)(rnd() % 3); /* icase spelled (?i) or /i; prefix with or without ^ */
		tw_buf_printf(&g->q, NULL, "%s %s /%s", fq, rnd() % 2 ? "=~" : "like", icase && form == 0 ? "(?i)" : "");
		if (!icase || form)
			tw_buf_putc(&g->q, '^', NULL);
		regex_of(&g->q, pat, 0);
		tw_buf_printf(&g->q, NULL, "/%s", icase && form ? "i" : "");
		tw_buf_printf(&g->d, NULL, "[\"regex\",");
		desc_path(&g->d, f);
		tw_buf_printf(&g->d, NULL, ",\"%s", !icase || form ? "^" : "");
		regex_of(&g->d, pat, 1);
		tw_buf_printf(&g->d, NULL, "\",%s]", icase ? "true" : "false");
		tw_buf_free(&low);
		break;
	}
	case 6:
		tw_buf_printf(&g->q, NULL, "ispresent(%s)", fq);
		tw_buf_printf(&g->d, NULL, "[\"present\",");
		desc_path(&g->d, f);
		tw_buf_putc(&g->d, ']', NULL);
		break;
	default:
		tw_buf_printf(&g->q, NULL, "not ispresent(%s)", fq);
		tw_buf_printf(&g->d, NULL, "[\"not\",[\"present\",");
		desc_path(&g->d, f);
		tw_buf_printf(&g->d, NULL, "]]");
		break;
	}
}

static void gen_expr(struct gen *g, int depth)
{
	int k = depth >= 2 ? 0 : (int)(rnd() % 5);
	if (k <= 1) {
		gen_leaf(g);
		return;
	}
	if (k == 2) {
		tw_buf_printf(&g->q, NULL, "not (");
		tw_buf_printf(&g->d, NULL, "[\"not\",");
		gen_expr(g, depth + 1);
		tw_buf_printf(&g->q, NULL, ")");
		tw_buf_putc(&g->d, ']', NULL);
		return;
	}
	const char *op = k == 3 ? "and" : "or";
	tw_buf_printf(&g->q, NULL, "(");
	tw_buf_printf(&g->d, NULL, "[\"%s\",", op);
	gen_expr(g, depth + 1);
	tw_buf_printf(&g->q, NULL, " %s ", op);
	tw_buf_putc(&g->d, ',', NULL);
	gen_expr(g, depth + 1);
	tw_buf_printf(&g->q, NULL, ")");
	tw_buf_putc(&g->d, ']', NULL);
}

static void write_val(struct tw_buf *b, const struct tw_qval *v)
{
	if (v->type == TW_QV_NULL)
		tw_buf_printf(b, NULL, "null");
	else if (v->type == TW_QV_NUM)
		tw_buf_append(b, v->s.p, v->s.n, NULL);
	else
		tw_json_write_str(b, v->s.p, v->s.n, NULL);
}

Test(query_exec, differential_against_python_reference, .timeout = 120)
{
	const char *shared = getenv("TW_SHARED");
	char gen_path[4096];
	snprintf(gen_path, sizeof gen_path, "%s/bench/gen-cloudtrail", shared ? shared : "");
	if (!shared || access(gen_path, X_OK) != 0)
		cr_skip_test("TW_SHARED/bench/gen-cloudtrail not available");
	char *dir = tw_test_tmpdir();
	char *data = tw_test_join(dir, "ct.jsonl");
	struct tw_test_run r;
	const char *argv[] = { gen_path, "--events", "20000", "--seed", "11", "-o", data, NULL };
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 0, "gen-cloudtrail: %s", r.err);
	tw_test_run_free(&r);

	struct evstore st = { 0 };
	struct tw_sink sink = { .on_batch = store_batch, .ctx = &st };
	struct tw_ingest_limits lim;
	tw_ingest_limits_default(&lim);
	lim.threads = 1;
	struct tw_err err;
	struct tw_ingest_stats ist = { 0 };
	const char *paths[] = { data };
	cr_assert_eq(tw_ingest_paths(paths, 1, &lim, &sink, NULL, &ist, &err), TW_OK, "%s", err.msg);
	cr_assert_gt(st.n, 19000);

	/* The same events in a store with many small segments and blocks and a WAL tail, so that half
	 * of the queries below are answered by the planner from postings and blocks. */
	char *store_dir = tw_test_join(dir, "store");
	{
		struct tw_store *sto;
		struct tw_store_opts so;
		struct tw_batch batch;
		struct tw_store_append_result res;
		uint64_t stored = 0;
		tw_store_opts_default(&so);
		so.seal_bytes = 2u << 20;
		so.seg.block_bytes = 64u << 10;
		so.seg.fsync = 0;
		cr_assert_eq(tw_store_open(store_dir, &so, &sto, NULL, &err), TW_OK, "%s", err.msg);
		tw_batch_init(&batch);
		for (size_t e = 0; e < st.n; e++) {
			struct tw_event *ev = tw_batch_push(&batch, &err);
			cr_assert(ev);
			*ev = *st.ev[e];
			if (batch.n == 1000 || e + 1 == st.n) {
				cr_assert_eq(tw_store_append(sto, &batch, &res, &err), TW_OK, "%s", err.msg);
				stored += res.stored;
				tw_batch_reset(&batch);
			}
		}
		tw_batch_free(&batch);
		cr_assert_eq(stored, st.n, "the generated events have distinct ids: all are stored");
		cr_assert_eq(tw_store_close(sto, &err), TW_OK, "%s", err.msg);
	}

	struct gen g = { .st = &st };
	tw_arena_init(&g.a, 1 << 16, 0);
	tw_buf_init(&g.q, 1 << 20);
	tw_buf_init(&g.d, 1 << 20);
	struct tw_buf descs, results;
	tw_buf_init(&descs, 64 << 20);
	tw_buf_init(&results, 256 << 20);
	rng_state = 0x2545f4914f6cdd1dull;
	const int nq = 300;
	for (int i = 0; i < nq; i++) {
		tw_buf_reset(&g.q);
		tw_buf_reset(&g.d);
		tw_buf_printf(&g.q, NULL, "filter ");
		gen_expr(&g, 0);
		int mode = (int)(rnd() % 4); /* 0,1: events; 2: count by; 3: count_distinct [by] */
		size_t byf = rnd() % NDF, df = rnd() % NDF;
		int has_by = mode == 2 || rnd() % 2;
		if (mode == 2)
			tw_buf_printf(&g.q, NULL, " | stats count(*) as n by %s", dfields[byf].q);
		else if (mode == 3)
			tw_buf_printf(&g.q, NULL, " | stats count_distinct(%s) as n%s%s", dfields[df].q, has_by ? " by " : "",
				      has_by ? dfields[byf].q : "");
		tw_buf_printf(&descs, NULL, "{\"id\":%d,\"text\":", i);
		tw_json_write_str(&descs, g.q.p, g.q.n, NULL);
		tw_buf_printf(&descs, NULL, ",\"filter\":%.*s,\"stats\":", (int)g.d.n, g.d.p);
		if (mode < 2) {
			tw_buf_printf(&descs, NULL, "null}\n");
		} else {
			tw_buf_printf(&descs, NULL, "{\"agg\":\"%s\",\"field\":", mode == 2 ? "count" : "count_distinct");
			if (mode == 3)
				desc_path(&descs, df);
			else
				tw_buf_printf(&descs, NULL, "null");
			tw_buf_printf(&descs, NULL, ",\"by\":");
			if (has_by)
				desc_path(&descs, byf);
			else
				tw_buf_printf(&descs, NULL, "null");
			tw_buf_printf(&descs, NULL, "}}\n");
		}

		struct tw_query *q;
		cr_assert_eq(tw_query_parse(g.q.p, g.q.n, &q, &err), TW_OK, "%.*s: %s", (int)g.q.n, g.q.p, err.msg);
		struct tw_qexec *x;
		cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK);
		if (i % 2 == 0) {
			/* Through the store: planner (postings, block pruning), segments and the WAL tail. */
			struct tw_qrun_opts ro = { .ordered = tw_query_needs_order(q) };
			const char *stores[1] = { store_dir };
			cr_assert_eq(tw_query_run(stores, 1, q, INT64_MIN, INT64_MAX, &ro, x, NULL, &err), TW_OK,
				     "%.*s: %s", (int)g.q.n, g.q.p, err.msg);
		} else {
			/* Straight into the executor. */
			for (size_t e = 0; e < st.n; e++)
				cr_assert_eq(tw_qexec_push(x, st.ev[e], NULL, &err), TW_OK, "%s", err.msg);
		}
		cr_assert_eq(tw_qexec_finish(x, &err), TW_OK, "%s", err.msg);
		size_t nrows = tw_qexec_nrows(x);
		if (mode < 2 && nrows > 200) { /* a big event list travels as count and hash sums */
			uint64_t s1 = 0, s2 = 0;
			for (size_t row = 0; row < nrows; row++) {
				struct tw_str id = tw_qexec_row_event(x, row)->f[TW_F_EVENT_ID];
				uint64_t h = 14695981039346656037ull;
				for (size_t b = 0; b < id.n; b++)
					h = (h ^ (unsigned char)id.p[b]) * 1099511628211ull;
				s1 += h;
				s2 += h * h;
			}
			tw_buf_printf(&results, NULL, "{\"id\":%d,\"count\":%zu,\"sum\":%llu,\"sum2\":%llu}\n", i, nrows,
				      (unsigned long long)s1, (unsigned long long)s2);
			tw_qexec_free(x);
			tw_query_free(q);
			continue;
		}
		tw_buf_printf(&results, NULL, "{\"id\":%d,\"rows\":[", i);
		for (size_t row = 0; row < nrows; row++) {
			if (row)
				tw_buf_putc(&results, ',', NULL);
			if (mode < 2) {
				const struct tw_event *ev = tw_qexec_row_event(x, row);
				tw_json_write_str(&results, ev->f[TW_F_EVENT_ID].p, ev->f[TW_F_EVENT_ID].n, NULL);
				continue;
			}
			const struct tw_qval *v;
			cr_assert_eq(tw_qexec_row(x, row, &v, &err), TW_OK);
			tw_buf_putc(&results, '[', NULL);
			if (has_by) {
				write_val(&results, &v[0]);
				tw_buf_putc(&results, ',', NULL);
				write_val(&results, &v[1]);
			} else {
				tw_buf_printf(&results, NULL, "null,");
				write_val(&results, &v[0]);
			}
			tw_buf_putc(&results, ']', NULL);
		}
		tw_buf_printf(&results, NULL, "]}\n");
		tw_qexec_free(x);
		tw_query_free(q);
	}
	char *qpath = tw_test_join(dir, "queries.jsonl");
	char *rpath = tw_test_join(dir, "results.jsonl");
	tw_test_write_file(qpath, descs.p, descs.n);
	tw_test_write_file(rpath, results.p, results.n);
	char *tool = tw_test_join(tw_test_src(), "tests/tools/query_reference.py");
	const char *pargv[] = { "/usr/bin/env", "python3", tool, data, qpath, rpath, NULL };
	tw_test_run(&r, NULL, pargv);
	cr_assert_eq(r.status, 0, "reference disagrees:\n%s%s", r.out, r.err);
	char want[64];
	snprintf(want, sizeof want, "ok %d queries", nq);
	cr_assert(strstr(r.out, want) != NULL, "%s", r.out);
	cr_log_info("query_reference.py: %s", r.out);
	tw_test_run_free(&r);

	free(tool);
	free(qpath);
	free(rpath);
	free(store_dir);
	tw_buf_free(&descs);
	tw_buf_free(&results);
	tw_buf_free(&g.q);
	tw_buf_free(&g.d);
	tw_arena_free(&g.a);
	for (size_t e = 0; e < st.n; e++)
		free(st.ev[e]);
	free(st.ev);
	free(data);
	tw_test_tmpdir_free(dir);
}
