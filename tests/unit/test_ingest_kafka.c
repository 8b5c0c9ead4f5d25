/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_ingest_kafka.c: the Kafka source (ingest/kafka.c) against librdkafka's mock
 * cluster on 127.0.0.1, fed by a real producer. Payloads are built here with known event ids,
 * gzip is made with zlib (tests/helpers), committed offsets and dead letters are read back by
 * independent consumers (tests/helpers/kafka_mock.c), not through the source under test. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/kafka.h"
#include "tests/helpers/helpers.h"
#include "tests/helpers/kafka_mock.h"

#define CT_FMT                                                                                             \
	"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":"                        \
	"\"arn:aws:iam::123456789012:user/alice\",\"userName\":\"alice\"},\"eventTime\":"                   \
	"\"2024-03-01T12:00:00Z\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"%s\",\"awsRegion\":" \
	"\"us-east-1\",\"eventID\":\"%s\",\"recipientAccountId\":\"123456789012\"}"

/* ---- a sink that records what it gets --------------------------------------------------------- */

struct rec {
	char id[64];   /* eventID or log event id */
	char name[64]; /* eventName, or the CloudWatch message */
	char group[32]; /* log group */
	int kind;      /* tw_kind */
};

struct rsink {
	struct rec *v;      /* events received, in order */
	size_t n, cap;      /* in use, allocated */
	size_t batches;     /* on_batch calls */
	int fail_batches;   /* the first fail_batches calls answer TW_EIO */
	char rej_src[8][64]; /* sources of the first rejects */
	char rej_reason[8][160]; /* their reasons */
	size_t nrej;        /* rejects received */
	int count_only;     /* only count events (bench) */
};

static void cpy(char *dst, size_t cap, struct tw_str s)
{
	size_t n = s.n < cap - 1 ? s.n : cap - 1;
	if (n)
		memcpy(dst, s.p, n);
	dst[n] = 0;
}

static enum tw_rc on_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	struct rsink *s = ctx;
	size_t i;

	s->batches++;
	if (s->fail_batches > 0) {
		s->fail_batches--;
		return tw_err_set(err, TW_EIO, "test sink: store unavailable");
	}
	if (s->count_only) {
		s->n += batch->n;
		return TW_OK;
	}
	for (i = 0; i < batch->n; i++) {
		const struct tw_event *ev = &batch->ev[i];
		struct rec *r;
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 64;
			s->v = realloc(s->v, s->cap * sizeof *s->v);
			cr_assert_not_null(s->v);
		}
		r = &s->v[s->n++];
		cpy(r->id, sizeof r->id, ev->f[TW_F_EVENT_ID]);
		cpy(r->name, sizeof r->name, ev->kind == TW_KIND_CWLOG ? ev->f[TW_F_MESSAGE] : ev->f[TW_F_EVENT_NAME]);
		cpy(r->group, sizeof r->group, ev->f[TW_F_LOG_GROUP]);
		r->kind = ev->kind;
		cr_assert(ev->raw.n > 0 && ev->raw.p[0] == '{', "raw of event %zu", i);
	}
	return TW_OK;
}

static enum tw_rc on_reject(void *ctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct rsink *s = ctx;
	(void)err;
	if (s->nrej < 8) {
		snprintf(s->rej_src[s->nrej], sizeof s->rej_src[0], "%s", rej->source);
		snprintf(s->rej_reason[s->nrej], sizeof s->rej_reason[0], "%s", rej->reason);
	}
	s->nrej++;
	return TW_OK;
}

static const struct rec *find(const struct rsink *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].id, id))
			return &s->v[i];
	return NULL;
}

/* ---- state callback ------------------------------------------------------------------------- */

struct states {
	int v[16];   /* states reported, in order */
	int n;       /* how many */
};

static void on_state(void *ctx, enum tw_kafka_state state, const char *detail)
{
	struct states *st = ctx;
	(void)detail;
	if (st->n < 16)
		st->v[st->n] = (int)state;
	st->n++;
}

/* ---- fixture -------------------------------------------------------------------------------- */

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void produce_str(struct tw_test_kafka *tk, const char *topic, const char *s)
{
	tw_test_kafka_produce(tk, topic, 0, s, strlen(s));
}

static void produce_ct(struct tw_test_kafka *tk, const char *topic, const char *name, const char *id)
{
	char buf[1024];
	snprintf(buf, sizeof buf, CT_FMT, name, id);
	produce_str(tk, topic, buf);
}

static void opts_assign(struct tw_kafka_opts *o, struct tw_kafka_assign *a, struct tw_test_kafka *tk,
			const char *group, const char *topic, int64_t offset)
{
	memset(o, 0, sizeof *o);
	o->brokers = tk->brokers;
	o->group_id = group;
	a->topic = topic;
	a->partition = 0;
	a->offset = offset;
	o->assign = a;
	o->nassign = 1;
	o->batch_max_wait_ms = 100;
}

/* Polls until want events arrived (or 8 s passed); returns the last rc. */
static enum tw_rc poll_until(struct tw_kafka *k, struct tw_sink *sink, struct rsink *rs, size_t want,
			     struct tw_ingest_stats *st, const struct tw_ingest_limits *lim)
{
	struct tw_err err;
	enum tw_rc rc = TW_OK;
	int64_t end = ms_now() + 8000;
	while (rs->n < want && ms_now() < end) {
		rc = tw_ingest_kafka_poll(k, lim, sink, st, 500, &err);
		cr_assert_eq(rc, TW_OK, "poll: %s", err.msg);
	}
	return rc;
}

/* ---- tests ---------------------------------------------------------------------------------- */

Test(ingest_kafka, every_payload_shape_decodes_and_offsets_are_committed, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	char buf[4096], b1[1024], b2[1024], b3[1024];
	const char *cw = "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"app-logs\","
			 "\"logStream\":\"s1\",\"subscriptionFilters\":[\"f\"],\"logEvents\":["
			 "{\"id\":\"cw-1\",\"timestamp\":1709294400000,\"message\":\"hello one\"},"
			 "{\"id\":\"cw-2\",\"timestamp\":1709294401000,\"message\":\"hello two\"}]}";
	unsigned char *gz;
	size_t gzn;
	const struct rec *r;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "trail", 1);
	/* offset 0: one CloudTrail event */
	produce_ct(&tk, "trail", "CreateUser", "single-1");
	/* offset 1: a Records object of three */
	snprintf(b1, sizeof b1, CT_FMT, "DeleteUser", "rec-1");
	snprintf(b2, sizeof b2, CT_FMT, "AttachUserPolicy", "rec-2");
	snprintf(b3, sizeof b3, CT_FMT, "ListUsers", "rec-3");
	snprintf(buf, sizeof buf, "{\"Records\":[%s,%s,%s]}", b1, b2, b3);
	produce_str(&tk, "trail", buf);
	/* offset 2: a gzip'ed CloudWatch Logs subscription payload (as Firehose delivers it) */
	gz = tw_test_deflate(cw, strlen(cw), 31, &gzn);
	tw_test_kafka_produce(&tk, "trail", 0, gz, gzn);
	free(gz);
	/* offset 3: two events, one per line */
	snprintf(b1, sizeof b1, CT_FMT, "GetObject", "line-1");
	snprintf(b2, sizeof b2, CT_FMT, "PutObject", "line-2");
	snprintf(buf, sizeof buf, "%s\n%s\n", b1, b2);
	produce_str(&tk, "trail", buf);
	tw_test_kafka_flush(&tk);

	opts_assign(&o, &a, &tk, "g-shapes", "trail", -2);
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	poll_until(k, &sink, &rs, 8, &st, NULL);
	cr_assert_eq(rs.n, 8, "events: %zu", rs.n);
	cr_assert_eq(rs.nrej, 0, "reject: %s %s", rs.rej_src[0], rs.rej_reason[0]);
	cr_assert_eq(st.events[TW_KIND_CLOUDTRAIL], 6);
	cr_assert_eq(st.events[TW_KIND_CWLOG], 2);
	cr_assert_str_eq(find(&rs, "single-1")->name, "CreateUser");
	cr_assert_str_eq(find(&rs, "rec-2")->name, "AttachUserPolicy");
	cr_assert_str_eq(find(&rs, "rec-3")->name, "ListUsers");
	cr_assert_str_eq(find(&rs, "line-2")->name, "PutObject");
	r = find(&rs, "cw-2");
	cr_assert_not_null(r);
	cr_assert_eq(r->kind, TW_KIND_CWLOG);
	cr_assert_str_eq(r->name, "hello two");
	cr_assert_str_eq(r->group, "app-logs");
	/* source order within the partition */
	cr_assert_str_eq(rs.v[0].id, "single-1");
	cr_assert_str_eq(rs.v[7].id, "line-2");
	tw_ingest_kafka_close(k);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g-shapes", "trail", 0), 4);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, nothing_committed_until_the_sink_accepts_and_one_commit_per_batch, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_kafka_counters c;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	char id[32];
	enum tw_rc rc;
	int i;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 1);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "ev-%d", i);
		produce_ct(&tk, "t", "PutObject", id);
	}
	tw_test_kafka_flush(&tk);

	/* 1. the sink refuses the first batch: error returned, nothing committed */
	opts_assign(&o, &a, &tk, "g1", "t", -1000 /* the group's committed offset */);
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	rs.fail_batches = 1;
	rc = TW_OK;
	for (i = 0; i < 20 && rs.batches == 0; i++)
		rc = tw_ingest_kafka_poll(k, NULL, &sink, &st, 500, &err);
	cr_assert_eq(rs.batches, 1);
	cr_assert_eq(rc, TW_EIO, "rc %d", rc);
	cr_assert(strstr(err.msg, "store unavailable"), "%s", err.msg);
	tw_ingest_kafka_counters(k, &c);
	cr_assert_eq(c.commits, 0);
	tw_ingest_kafka_close(k);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g1", "t", 0), -1);

	/* 2. a new consumer of the group re-reads the same events; after success offset = 4 + 1 */
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	poll_until(k, &sink, &rs, 5, &st, NULL);
	cr_assert_eq(rs.n, 5);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "ev-%d", i);
		cr_assert_str_eq(rs.v[i].id, id);
	}
	cr_assert_eq(tw_test_kafka_committed(&tk, "g1", "t", 0), 5);

	/* 3. three more messages, one batch: one more commit, offset 8 */
	for (i = 5; i < 8; i++) {
		snprintf(id, sizeof id, "ev-%d", i);
		produce_ct(&tk, "t", "PutObject", id);
	}
	tw_test_kafka_flush(&tk);
	poll_until(k, &sink, &rs, 8, &st, NULL);
	cr_assert_eq(rs.n, 8);
	/* a poll with nothing to read serves librdkafka's offset_commit_cb */
	cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 200, &err), TW_OK);
	tw_ingest_kafka_counters(k, &c);
	cr_assert_eq(c.commits, rs.batches - 1, "commits %llu batches %zu", (unsigned long long)c.commits,
		     rs.batches);
	cr_assert_eq(c.commits_acked, c.commits, "librdkafka saw %llu commits, source made %llu",
		     (unsigned long long)c.commits_acked, (unsigned long long)c.commits);
	cr_assert_eq(c.messages, 8);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g1", "t", 0), 8);
	tw_ingest_kafka_close(k);

	/* 4. a third consumer starts at the committed offset: nothing left */
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 700, &err), TW_OK);
	cr_assert_eq(rs.n, 8);
	tw_ingest_kafka_close(k);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, refused_batch_is_read_again_by_the_same_consumer, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	int i;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 1);
	produce_ct(&tk, "t", "A", "x-0");
	produce_ct(&tk, "t", "B", "x-1");
	produce_ct(&tk, "t", "C", "x-2");
	tw_test_kafka_flush(&tk);
	opts_assign(&o, &a, &tk, "g2", "t", -2);
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	rs.fail_batches = 2;
	for (i = 0; i < 40 && rs.batches < 2; i++)
		tw_ingest_kafka_poll(k, NULL, &sink, &st, 300, &err);
	cr_assert_eq(rs.batches, 2);
	cr_assert_eq(rs.n, 0);
	poll_until(k, &sink, &rs, 3, &st, NULL);
	cr_assert_eq(rs.n, 3);
	cr_assert_str_eq(rs.v[0].id, "x-0");
	cr_assert_str_eq(rs.v[2].id, "x-2");
	cr_assert_eq(tw_test_kafka_committed(&tk, "g2", "t", 0), 3);
	tw_ingest_kafka_close(k);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

static unsigned char *gzip_bomb(size_t *n)
{
	size_t big = 8u << 20;
	char *spaces = malloc(big);
	unsigned char *gz;
	cr_assert_not_null(spaces);
	memset(spaces, ' ', big);
	gz = tw_test_deflate(spaces, big, 31, n);
	free(spaces);
	return gz;
}

Test(ingest_kafka, poison_messages_go_to_the_dead_letter_topic_with_headers, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_kafka_counters c;
	struct tw_ingest_limits lim;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	struct tw_test_kmsg dl[4];
	unsigned char *bomb;
	size_t bombn, ndl, i;
	const char *bad = "{\"eventVersion\":\"1.08\",\"eventTime\":";

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "in", 1);
	tw_test_kafka_topic(&tk, "dlt", 1);
	produce_ct(&tk, "in", "CreateUser", "good-1"); /* 0 */
	produce_str(&tk, "in", bad);                     /* 1: invalid JSON */
	bomb = gzip_bomb(&bombn);
	tw_test_kafka_produce(&tk, "in", 0, bomb, bombn); /* 2: 8 MiB inflated, cap 1 MiB */
	produce_ct(&tk, "in", "DeleteUser", "good-2"); /* 3 */
	tw_test_kafka_flush(&tk);

	tw_ingest_limits_default(&lim);
	lim.max_payload = 1u << 20;
	lim.max_inflated = 1u << 20;
	opts_assign(&o, &a, &tk, "g3", "in", -2);
	o.dlt_topic = "dlt";
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	poll_until(k, &sink, &rs, 2, &st, &lim);
	cr_assert_eq(rs.n, 2);
	cr_assert_str_eq(rs.v[0].id, "good-1");
	cr_assert_str_eq(rs.v[1].id, "good-2");
	cr_assert_eq(rs.nrej, 0, "with a DLT, undecodable messages do not reach on_reject (%s)", rs.rej_reason[0]);
	tw_ingest_kafka_counters(k, &c);
	cr_assert_eq(c.undecodable, 2);
	cr_assert_eq(c.dead_letters, 2);
	tw_ingest_kafka_close(k);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g3", "in", 0), 4);

	ndl = tw_test_kafka_read(&tk, "dlt", 0, dl, 4, 3000);
	cr_assert_eq(ndl, 2);
	for (i = 0; i < ndl; i++) {
		char *t = tw_test_kafka_header(&dl[i], "tw.topic"), *p = tw_test_kafka_header(&dl[i], "tw.partition");
		char *off = tw_test_kafka_header(&dl[i], "tw.offset"), *why = tw_test_kafka_header(&dl[i], "tw.reason");
		cr_assert_str_eq(t, "in");
		cr_assert_str_eq(p, "0");
		cr_assert_str_eq(off, i == 0 ? "1" : "2");
		cr_assert(why && strlen(why) > 3, "reason %s", why ? why : "(none)");
		free(t);
		free(p);
		free(off);
		free(why);
	}
	/* the dead letters are the original bytes */
	cr_assert_eq(dl[0].n, strlen(bad));
	cr_assert(!memcmp(dl[0].value, bad, dl[0].n));
	cr_assert_eq(dl[1].n, bombn);
	cr_assert(!memcmp(dl[1].value, bomb, bombn));
	for (i = 0; i < ndl; i++)
		tw_test_kmsg_free(&dl[i]);
	free(bomb);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, without_dead_letter_topic_rejects_name_topic_partition_and_offset, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "in", 1);
	produce_str(&tk, "in", "{\"Records\":[{\"eventTime\":\"nope\",\"eventVersion\":\"1.08\"");
	produce_ct(&tk, "in", "CreateUser", "ok-1");
	tw_test_kafka_flush(&tk);
	opts_assign(&o, &a, &tk, "g4", "in", -2);
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	poll_until(k, &sink, &rs, 1, &st, NULL);
	cr_assert_eq(rs.n, 1);
	cr_assert_geq(rs.nrej, 1);
	cr_assert_str_eq(rs.rej_src[0], "in/0@0");
	tw_ingest_kafka_close(k);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g4", "in", 0), 2);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, broker_down_and_up_reported_once_each_and_nothing_lost, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	struct states sts = { { 0 }, 0 };
	char id[32];
	int64_t end;
	int i;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 1);
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "b-%d", i);
		produce_ct(&tk, "t", "PutObject", id);
	}
	tw_test_kafka_flush(&tk);
	opts_assign(&o, &a, &tk, "g5", "t", -2);
	o.on_state = on_state;
	o.ctx = &sts;
	o.props = (const struct tw_kafka_prop[]){ { "reconnect.backoff.max.ms", "200" } };
	o.nprops = 1;
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	poll_until(k, &sink, &rs, 3, &st, NULL);
	cr_assert_eq(rs.n, 3);
	cr_assert_eq(sts.n, 0);

	rd_kafka_mock_broker_set_down(tk.mc, 1);
	end = ms_now() + 8000;
	while (sts.n == 0 && ms_now() < end)
		cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 200, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(sts.n, 1, "no DOWN report");
	cr_assert_eq(sts.v[0], TW_KAFKA_DOWN);
	/* more polls while down: no second report */
	for (i = 0; i < 3; i++)
		cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 100, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(sts.n, 1);

	rd_kafka_mock_broker_set_up(tk.mc, 1);
	for (i = 3; i < 6; i++) {
		snprintf(id, sizeof id, "b-%d", i);
		produce_ct(&tk, "t", "PutObject", id);
	}
	tw_test_kafka_flush(&tk);
	poll_until(k, &sink, &rs, 6, &st, NULL);
	cr_assert_eq(rs.n, 6);
	for (i = 0; i < 6; i++) {
		snprintf(id, sizeof id, "b-%d", i);
		cr_assert_str_eq(rs.v[i].id, id);
	}
	cr_assert_eq(sts.n, 2, "reports: %d", sts.n);
	cr_assert_eq(sts.v[1], TW_KAFKA_UP);
	tw_ingest_kafka_close(k);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g5", "t", 0), 6);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, commit_error_from_the_broker_rewinds_and_the_retry_commits, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	enum tw_rc rc = TW_OK;
	int i;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 1);
	produce_ct(&tk, "t", "A", "c-0");
	produce_ct(&tk, "t", "B", "c-1");
	tw_test_kafka_flush(&tk);
	opts_assign(&o, &a, &tk, "g6", "t", -2);
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	/* OffsetCommit (api key 8) fails once with a non-retriable error */
	rd_kafka_mock_push_request_errors(tk.mc, 8, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
	for (i = 0; i < 20 && rs.batches == 0; i++)
		rc = tw_ingest_kafka_poll(k, NULL, &sink, &st, 500, &err);
	cr_assert_eq(rs.batches, 1);
	cr_assert_eq(rc, TW_EIO, "rc %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "commit"), "%s", err.msg);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g6", "t", 0), -1);
	/* The refused batch held c-0, and c-1 too unless the broker handed it over in a later fetch
	 * (it does under load): either way the partition is read again from offset 0 (twice delivered:
	 * the store dedups) and committed through offset 2. */
	{
		size_t n1 = rs.n;
		cr_assert(n1 == 1 || n1 == 2, "first batch held %zu events", n1);
		cr_assert_str_eq(rs.v[0].id, "c-0");
		poll_until(k, &sink, &rs, n1 + 2, &st, NULL);
		cr_assert_eq(rs.n, n1 + 2);
		cr_assert_str_eq(rs.v[n1].id, "c-0");
		cr_assert_str_eq(rs.v[n1 + 1].id, "c-1");
	}
	cr_assert_eq(tw_test_kafka_committed(&tk, "g6", "t", 0), 2);
	tw_ingest_kafka_close(k);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, lag_reports_committed_high_watermark_and_batches_respect_max_events, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	struct tw_kafka_lag lag[2];
	size_t n = 0;
	char id[32];
	int i;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 1);
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof id, "l-%d", i);
		produce_ct(&tk, "t", "PutObject", id);
	}
	tw_test_kafka_flush(&tk);
	opts_assign(&o, &a, &tk, "g7", "t", -2);
	o.batch_max_events = 4;
	o.batch_max_wait_ms = 2000;
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_ingest_kafka_lag(k, lag, 2, &n, 3000, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(lag[0].committed, -1);
	cr_assert_eq(lag[0].high, 10);
	cr_assert_eq(lag[0].lag, 10);
	/* all 10 are there: one poll closes its batch at 4 events, long before max_wait */
	cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 3000, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rs.n, 4, "max events: %zu", rs.n);
	cr_assert_eq(rs.batches, 1);
	cr_assert_eq(tw_ingest_kafka_lag(k, lag, 2, &n, 3000, &err), TW_OK, "%s", err.msg);
	cr_assert_str_eq(lag[0].topic, "t");
	cr_assert_eq(lag[0].partition, 0);
	cr_assert_eq(lag[0].committed, 4);
	cr_assert_eq(lag[0].high, 10);
	cr_assert_eq(lag[0].lag, 6);
	cr_assert_eq(tw_ingest_kafka_lag(k, lag, 0, &n, 3000, &err), TW_ELIMIT);
	tw_ingest_kafka_close(k);
	free(rs.v);
	tw_test_kafka_stop(&tk);
}

Test(ingest_kafka, open_refuses_bad_options_and_close_takes_null, .timeout = 20)
{
	struct tw_kafka_opts o;
	struct tw_kafka *k = NULL;
	struct tw_err err;
	const char *topics[] = { "t" };

	memset(&o, 0, sizeof o);
	o.topics = topics;
	o.ntopics = 1;
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_EINVAL);
	o.brokers = "127.0.0.1:1";
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_EINVAL);
	o.group_id = "g";
	o.props = (const struct tw_kafka_prop[]){ { "no.such.property", "1" } };
	o.nprops = 1;
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "no.such.property"), "%s", err.msg);
	o.dlt_topic = "dlt"; /* fails after the DLT producer was made: half-built close */
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_EINVAL);
	cr_assert_null(k);
	tw_ingest_kafka_close(NULL);
}

/* Throughput: TW_KAFKA_BENCH=100000 build/trailwatch-tests --filter 'ingest_kafka/bench*'.
 * 16 partitions: the mock keeps only about 5 MB per partition (older message sets are dropped). */
Test(ingest_kafka, bench_consume_events_per_second, .timeout = 300)
{
	const char *env = getenv("TW_KAFKA_BENCH");
	struct tw_test_kafka tk;
	struct tw_kafka_opts o;
	struct tw_kafka_assign a[16];
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	char buf[1024], id[32];
	size_t want, i;
	int64_t t0, t1, end, committed = 0;

	if (!env)
		cr_skip_test("set TW_KAFKA_BENCH=<events> to run");
	want = strtoul(env, NULL, 10);
	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 16);
	for (i = 0; i < want; i++) {
		snprintf(id, sizeof id, "bench-%zu", i);
		snprintf(buf, sizeof buf, CT_FMT, "GetObject", id);
		tw_test_kafka_produce(&tk, "t", (int32_t)(i % 16), buf, strlen(buf));
	}
	tw_test_kafka_flush(&tk);
	rs.count_only = 1;
	opts_assign(&o, a, &tk, "gb", "t", -2);
	for (i = 0; i < 16; i++)
		a[i] = (struct tw_kafka_assign){ "t", (int32_t)i, -2 };
	o.nassign = 16;
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	t0 = ms_now();
	end = t0 + 120000;
	while (rs.n < want && ms_now() < end)
		cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 500, &err), TW_OK, "%s", err.msg);
	t1 = ms_now();
	cr_assert_eq(rs.n, want, "got %zu events in %zu batches", rs.n, rs.batches);
	fprintf(stderr, "kafka bench: %zu events in %lld ms = %.0f events/s, %zu batches (%zu bytes/event)\n", want,
		(long long)(t1 - t0), want * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1), rs.batches,
		(size_t)(st.bytes_in / want));
	for (i = 0; i < 16; i++)
		committed += tw_test_kafka_committed(&tk, "gb", "t", (int32_t)i);
	cr_assert_eq(committed, (int64_t)want);
	tw_ingest_kafka_close(k);
	tw_test_kafka_stop(&tk);
}

/* A lag query while nothing is assigned is answered by librdkafka without a broker: it must not
 * be taken as a sign that the brokers are back (it used to report UP while the broker was down). */
Test(ingest_kafka, lag_query_with_nothing_assigned_does_not_report_brokers_up, .timeout = 20)
{
	struct tw_test_kafka tk;
	struct tw_kafka_opts o = { 0 };
	struct tw_kafka *k = NULL;
	struct tw_err err;
	struct rsink rs = { 0 };
	struct tw_sink sink = { on_batch, on_reject, &rs };
	struct tw_ingest_stats st = { 0 };
	struct states sts = { { 0 }, 0 };
	struct tw_kafka_lag lag[4];
	const char *topics[] = { "t" };
	size_t nlag = 99;
	int64_t end;
	int i;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "t", 1);
	rd_kafka_mock_broker_set_down(tk.mc, 1);
	o.brokers = tk.brokers;
	o.group_id = "g-lag0";
	o.topics = topics;
	o.ntopics = 1;
	o.batch_max_wait_ms = 100;
	o.on_state = on_state;
	o.ctx = &sts;
	o.props = (const struct tw_kafka_prop[]){ { "reconnect.backoff.max.ms", "200" } };
	o.nprops = 1;
	cr_assert_eq(tw_ingest_kafka_open(&o, &k, &err), TW_OK, "%s", err.msg);
	end = ms_now() + 8000;
	while (sts.n == 0 && ms_now() < end)
		cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 200, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(sts.n, 1, "no DOWN report");
	cr_assert_eq(sts.v[0], TW_KAFKA_DOWN);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(tw_ingest_kafka_lag(k, lag, 4, &nlag, 200, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(nlag, 0);
		cr_assert_eq(tw_ingest_kafka_poll(k, NULL, &sink, &st, 100, &err), TW_OK, "%s", err.msg);
	}
	cr_assert_eq(sts.n, 1, "a state change was reported while the broker is still down (state %d)", sts.v[1]);
	tw_ingest_kafka_close(k);
	tw_test_kafka_stop(&tk);
}

/* Two consumers of one group over a 4-partition topic: the second joins while the first holds a
 * pending batch, then the first leaves. Revoked work is flushed and committed before partitions
 * move, so the union of what both sinks received is every produced event exactly once, and the
 * group's committed offsets end at the high watermarks. */
/* One poll in the rebalance test: a commit the group refuses while it rebalances ("rebalance in
 * progress") is the only acceptable failure; the source rewinds and the batch comes again. */
static void rb_poll(struct tw_kafka *k, struct tw_sink *sink, struct tw_ingest_stats *st, int *commit_failures)
{
	struct tw_err err;
	enum tw_rc rc = tw_ingest_kafka_poll(k, NULL, sink, st, 50, &err);
	if (rc != TW_OK) {
		cr_assert(strstr(err.msg, "commit"), "poll: %s", err.msg);
		(*commit_failures)++;
	}
}

Test(ingest_kafka, rebalance_between_two_consumers_moves_partitions_without_loss_or_duplicates,
     .timeout = 60)
{
	enum { NPART = 4, PER_ROUND = 200 };
	struct tw_test_kafka tk;
	struct tw_kafka_opts o = { 0 };
	struct tw_kafka *a = NULL, *b = NULL;
	struct tw_err err;
	struct rsink ra = { 0 }, rb = { 0 };
	struct tw_sink sa = { on_batch, on_reject, &ra }, sb = { on_batch, on_reject, &rb };
	struct tw_ingest_stats st = { 0 };
	const char *topics[] = { "rb" };
	int64_t end, produced = 0, per_part[NPART] = { 0 };
	char id[32], buf[1024];
	size_t i, j, total;
	int round, commit_failures = 0;

	tw_test_kafka_start(&tk, 1);
	tw_test_kafka_topic(&tk, "rb", NPART);
	o.brokers = tk.brokers;
	o.group_id = "g-rb";
	o.topics = topics;
	o.ntopics = 1;
	o.batch_max_wait_ms = 50;
	o.batch_max_events = 37; /* many batches, so revokes land between and inside them */
	/* librdkafka 2.0's mock cluster holds a partition of a departed member until the session
	 * times out; keep that short. */
	o.props = (const struct tw_kafka_prop[]){ { "session.timeout.ms", "3000" },
						 { "heartbeat.interval.ms", "200" } };
	o.nprops = 2;

	cr_assert_eq(tw_ingest_kafka_open(&o, &a, &err), TW_OK, "%s", err.msg);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < PER_ROUND; i++) {
			int p = (int)(produced % NPART);
			snprintf(id, sizeof id, "rb-%lld", (long long)produced);
			snprintf(buf, sizeof buf, CT_FMT, "GetObject", id);
			tw_test_kafka_produce(&tk, "rb", p, buf, strlen(buf));
			per_part[p]++;
			produced++;
		}
		tw_test_kafka_flush(&tk);
		if (round == 1) /* b joins: a's partitions are split */
			cr_assert_eq(tw_ingest_kafka_open(&o, &b, &err), TW_OK, "%s", err.msg);
		if (round == 2) { /* a leaves: b takes everything */
			/* let a take part in the rebalance and hand over some work first */
			end = ms_now() + 3000;
			while (ms_now() < end) {
				rb_poll(a, &sa, &st, &commit_failures);
				rb_poll(b, &sb, &st, &commit_failures);
			}
			tw_ingest_kafka_close(a);
			a = NULL;
		}
		/* consume until everything produced so far arrived (the waits inside are bounded) */
		end = ms_now() + 20000;
		while ((int64_t)(ra.n + rb.n) < produced && ms_now() < end) {
			if (a)
				rb_poll(a, &sa, &st, &commit_failures);
			if (b)
				rb_poll(b, &sb, &st, &commit_failures);
		}
		cr_assert_geq((int64_t)(ra.n + rb.n), produced, "round %d: %zu + %zu of %lld", round, ra.n, rb.n,
			      (long long)produced);
	}
	/* settle: a few more polls must not bring duplicates */
	for (i = 0; i < 10; i++)
		rb_poll(b, &sb, &st, &commit_failures);
	tw_ingest_kafka_close(b);

	total = ra.n + rb.n;
	cr_log_info("rebalance: a %zu, b %zu, %d commits refused during the rebalance", ra.n, rb.n, commit_failures);
	if (!commit_failures)
		cr_assert_eq((int64_t)total, produced, "received %zu (a %zu, b %zu) of %lld", total, ra.n, rb.n,
			     (long long)produced);
	cr_assert_gt(ra.n, 0, "the first consumer got nothing");
	cr_assert_gt(rb.n, 0, "the second consumer got nothing");
	/* each id once across both sinks */
	{
		unsigned char *seen = calloc((size_t)produced, 1);
		cr_assert_not_null(seen);
		for (j = 0; j < 2; j++) {
			const struct rsink *s = j ? &rb : &ra;
			for (i = 0; i < s->n; i++) {
				long long n = -1;
				cr_assert_eq(sscanf(s->v[i].id, "rb-%lld", &n), 1, "id %s", s->v[i].id);
				cr_assert(n >= 0 && n < produced, "id %s", s->v[i].id);
				/* a batch whose commit the group refused is read again (the store dedups it):
				 * only then may an event come twice */
				cr_assert(seen[n] == 0 || commit_failures, "event %s received twice", s->v[i].id);
				seen[n] = 1;
			}
		}
		for (int64_t k = 0; k < produced; k++)
			cr_assert_eq(seen[k], 1, "event rb-%lld lost", (long long)k);
		free(seen);
	}
	for (i = 0; i < NPART; i++)
		cr_assert_eq(tw_test_kafka_committed(&tk, "g-rb", "rb", (int32_t)i), per_part[i], "partition %zu", i);
	free(ra.v);
	free(rb.v);
	tw_test_kafka_stop(&tk);
}
