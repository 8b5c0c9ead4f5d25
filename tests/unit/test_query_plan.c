/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_query_plan.c: the store planner (query/plan.c) against a full scan: on stores
 * built here (several segments, small blocks, a WAL tail, two shards), every query returns exactly
 * the events that tw_query_match and the time range accept over all generated events (as
 * multisets), with and without postings; ordered runs come in ascending time; --explain counters
 * show pruning. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/event.h"
#include "index/store.h"
#include "query/query.h"
#include "tests/helpers/helpers.h"

#define BASE_MS 1793577600000ll /* 2026-11-02T00:00:00Z */
#define NEV 3000

static struct tw_str dup_str(struct tw_batch *b, const char *s)
{
	struct tw_str out;
	cr_assert_eq(tw_arena_dup(&b->arena, (struct tw_str){ s, strlen(s) }, &out, NULL), TW_OK);
	return out;
}

/* Event i of shard `shard`: principals u0..u22, Op0..Op12, every 10th AccessDenied, one or two
 * resources, times scattered over 50 hours (not in generation order). */
static void gen(struct tw_batch *b, unsigned i, unsigned shard)
{
	struct tw_event *ev = tw_batch_push(b, NULL);
	char raw[512], id[32], pr[80], name[16], res0[32], res1[32], src[32];
	unsigned k = i + shard * 100000u;

	cr_assert(ev);
	snprintf(id, sizeof id, "ev-%u-%06u", shard, i);
	snprintf(pr, sizeof pr, "arn:aws:iam::123456789012:user/u%u", (k * 7) % 23);
	snprintf(name, sizeof name, "Op%u", k % 13);
	snprintf(res0, sizeof res0, "bucket-%u", k % 7);
	snprintf(res1, sizeof res1, "key-%u", k % 5);
	snprintf(src, sizeof src, "s%u.amazonaws.com", k % 4);
	ev->kind = TW_KIND_CLOUDTRAIL;
	ev->time_ms = BASE_MS + (int64_t)((k * 7919u) % 3000u) * 60000;
	ev->read_only = (int8_t)(k % 3 == 0 ? -1 : (int)(k % 2));
	snprintf(raw, sizeof raw, "{\"eventID\":\"%s\",\"eventName\":\"%s\",\"n\":%u,\"userIdentity\":{\"arn\":\"%s\"}}",
		 id, name, k, pr);
	ev->raw = dup_str(b, raw);
	ev->f[TW_F_EVENT_ID] = dup_str(b, id);
	ev->f[TW_F_EVENT_NAME] = dup_str(b, name);
	ev->f[TW_F_PRINCIPAL] = dup_str(b, pr);
	ev->f[TW_F_EVENT_SOURCE] = dup_str(b, src);
	if (k % 10 == 0)
		ev->f[TW_F_ERROR_CODE] = dup_str(b, "AccessDenied");
	ev->nresources = k % 3 == 1 ? 2 : 1;
	ev->resources = tw_arena_alloc(&b->arena, 2 * sizeof *ev->resources, NULL);
	cr_assert(ev->resources);
	ev->resources[0] = dup_str(b, res0);
	ev->resources[1] = dup_str(b, res1);
}

/* A store directory holding `all` (built by the caller): sealed in small segments with small
 * blocks, the last slice left in the WAL. */
static void build_store(const char *dir, struct tw_batch *all)
{
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	size_t step = 250;

	tw_store_opts_default(&o);
	o.seal_bytes = 40 * 1024;
	o.seal_async = 0;
	o.seal_age_ms = 0;
	o.seg.block_bytes = 4096;
	o.seg.fsync = 0;
	cr_assert_eq(tw_store_open(dir, &o, &s, NULL, &err), TW_OK, "%s", err.msg);
	for (size_t from = 0; from < all->n; from += step) {
		struct tw_batch sl = *all;
		struct tw_store_append_result res;
		sl.ev = all->ev + from;
		sl.n = all->n - from < step ? all->n - from : step;
		cr_assert_eq(tw_store_append(s, &sl, &res, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(res.stored, sl.n);
		if (from + step < all->n && from + 2 * step >= all->n)
			cr_assert_eq(tw_store_seal(s, &err), TW_OK, "%s", err.msg);
	}
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
}

struct fixture {
	char *tmp;            /* test directory */
	char *dirs[2];        /* the two shards */
	struct tw_batch b[2]; /* their events */
};

static void fixture_make(struct fixture *f, unsigned n1)
{
	f->tmp = tw_test_tmpdir();
	for (unsigned s = 0; s < 2; s++) {
		char name[16];
		snprintf(name, sizeof name, "store%u", s);
		f->dirs[s] = tw_test_join(f->tmp, name);
		tw_batch_init(&f->b[s]);
		for (unsigned i = 0; i < (s ? n1 : NEV); i++)
			gen(&f->b[s], i, s);
		build_store(f->dirs[s], &f->b[s]);
	}
}

static void fixture_free(struct fixture *f)
{
	for (unsigned s = 0; s < 2; s++) {
		tw_batch_free(&f->b[s]);
		free(f->dirs[s]);
	}
	tw_test_tmpdir_free(f->tmp);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The raws of the planner's result rows (sorted), checking time order when ordered. */
static char **run_planner(const char *const *dirs, size_t nd, struct tw_query *q, int64_t lo, int64_t hi,
			  int ordered, int no_index, size_t *n, struct tw_qrun_stats *st)
{
	struct tw_qexec *x;
	struct tw_err err = { 0 };
	struct tw_qrun_opts o = { ordered, no_index, 0, 0, NULL, NULL };
	char **v;

	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_query_run(dirs, nd, q, lo, hi, &o, x, st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK, "%s", err.msg);
	*n = tw_qexec_nrows(x);
	v = calloc(*n + 1, sizeof *v);
	for (size_t i = 0; i < *n; i++) {
		const struct tw_event *ev = tw_qexec_row_event(x, i);
		cr_assert(ev);
		if (ordered && i)
			cr_assert_leq(tw_qexec_row_event(x, i - 1)->time_ms, ev->time_ms, "row %zu out of time order", i);
		v[i] = strndup(ev->raw.p, ev->raw.n);
	}
	qsort(v, *n, sizeof *v, cmp_cstr);
	tw_qexec_free(x);
	return v;
}

static char **run_scan(struct tw_batch *const *bs, size_t nb, struct tw_query *q, int64_t lo, int64_t hi, size_t *n)
{
	size_t cap = 16;
	char **v = malloc(cap * sizeof *v);

	*n = 0;
	for (size_t k = 0; k < nb; k++)
		for (size_t i = 0; i < bs[k]->n; i++) {
			const struct tw_event *ev = &bs[k]->ev[i];
			if (ev->time_ms < lo || ev->time_ms > hi || !tw_query_match(q, ev))
				continue;
			if (*n == cap)
				v = realloc(v, (cap *= 2) * sizeof *v);
			v[(*n)++] = strndup(ev->raw.p, ev->raw.n);
		}
	qsort(v, *n, sizeof *v, cmp_cstr);
	return v;
}

static void free_strs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const char *const queries[] = {
	"filter principal = 'arn:aws:iam::123456789012:user/u3'",
	"filter principal = 'arn:aws:iam::123456789012:user/u5' and eventName in ['Op1', 'Op2', 'Op12']",
	"filter errorCode = 'AccessDenied'",
	"filter resource = 'bucket-3'",
	"filter resource = 'key-2' and error = 'AccessDenied'",
	"filter eventName =~ /^Op1/",
	"filter principal = 'nobody'",
	"filter eventName in []",
	"filter eventName = 'Op4' or errorCode = 'AccessDenied'",
	"filter not principal = 'arn:aws:iam::123456789012:user/u1' and readOnly = 'true'",
	"filter @timestamp >= '2026-11-03T01:00:00Z' and eventName = 'Op2'",
	"filter n > 1000 and source = 's2.amazonaws.com'",
	"filter kind = 'cloudtrail'",
	"filter eventID = 'ev-0-000042'",
	"filter eventID in ['ev-1-000007', 'ev-0-002999', 'ev-0-nope']",
	"filter userIdentity.arn like 'u1' | filter eventName != 'Op3'",
};

static void check_all(const char *const *dirs, size_t nd, struct tw_batch *const *bs, int64_t lo, int64_t hi)
{
	for (size_t k = 0; k < sizeof queries / sizeof queries[0]; k++) {
		struct tw_query *q;
		struct tw_err err = { 0 };
		size_t nw, ng;
		char **want, **got;

		cr_assert_eq(tw_query_parse(queries[k], strlen(queries[k]), &q, &err), TW_OK, "%s: %s", queries[k], err.msg);
		want = run_scan(bs, nd, q, lo, hi, &nw);
		for (int mode = 0; mode < 3; mode++) {
			got = run_planner(dirs, nd, q, lo, hi, mode != 1, mode == 2, &ng, NULL);
			cr_assert_eq(ng, nw, "%s (mode %d): %zu events, full scan %zu", queries[k], mode, ng, nw);
			for (size_t i = 0; i < nw; i++)
				cr_assert_str_eq(got[i], want[i], "%s (mode %d): event %zu differs", queries[k], mode, i);
			free_strs(got, ng);
		}
		free_strs(want, nw);
		tw_query_free(q);
	}
}

Test(query_plan, matches_full_scan_on_one_store)
{
	struct fixture f;
	struct tw_batch *bs[1];

	fixture_make(&f, 10);
	bs[0] = &f.b[0];
	check_all((const char *const *)f.dirs, 1, bs, INT64_MIN, INT64_MAX);
	fixture_free(&f);
}

Test(query_plan, matches_full_scan_with_time_range_and_shards)
{
	struct fixture f;
	struct tw_batch *bs[2];

	fixture_make(&f, 1200);
	bs[0] = &f.b[0];
	bs[1] = &f.b[1];
	check_all((const char *const *)f.dirs, 2, bs, BASE_MS + 10 * 3600000ll, BASE_MS + 20 * 3600000ll - 1);
	check_all((const char *const *)f.dirs, 2, bs, BASE_MS + 49 * 3600000ll, INT64_MAX);
	fixture_free(&f);
}

Test(query_plan, explain_shows_block_pruning_for_a_selective_principal)
{
	struct fixture f;
	struct tw_query *q;
	struct tw_err err = { 0 };
	struct tw_qrun_stats st, st_all;
	const char *text = "filter principal = 'arn:aws:iam::123456789012:user/u3'";
	size_t n, nall;
	char **v;

	fixture_make(&f, 10);
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	v = run_planner((const char *const *)f.dirs, 1, q, INT64_MIN, INT64_MAX, 1, 0, &n, &st);
	free_strs(v, n);
	v = run_planner((const char *const *)f.dirs, 1, q, INT64_MIN, INT64_MAX, 1, 1, &nall, &st_all);
	free_strs(v, nall);
	cr_assert_eq(n, nall);
	cr_assert_gt(n, 0);
	cr_assert_gt(st.segments, 1, "the fixture should have several segments");
	cr_assert_eq(st.records, NEV);
	cr_assert_eq(st.terms_used, 1);
	cr_assert(strstr(st.terms, "principal="), "%s", st.terms);
	cr_assert_lt(st.blocks_read, st.blocks, "blocks read %llu of %llu", (unsigned long long)st.blocks_read,
		     (unsigned long long)st.blocks);
	cr_assert_lt(st.fetched, st_all.fetched);
	cr_assert_eq(st_all.blocks_read, st_all.blocks);
	cr_assert_eq(st.matched, n);
	tw_query_free(q);

	/* A time range before all data prunes every segment. */
	text = "filter eventName = 'Op1'";
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	v = run_planner((const char *const *)f.dirs, 1, q, 0, BASE_MS - 1, 1, 0, &n, &st);
	free_strs(v, n);
	cr_assert_eq(n, 0);
	cr_assert_eq(st.segments_pruned, st.segments);
	cr_assert_eq(st.fetched, 0);
	tw_query_free(q);
	fixture_free(&f);
}

Test(query_plan, stats_equal_executor_fed_every_event)
{
	struct fixture f;
	const char *text = "filter errorCode = 'AccessDenied' | stats count(*) as n by principal | sort n desc, principal";
	struct tw_query *q;
	struct tw_qexec *x1, *x2;
	struct tw_err err = { 0 };
	const char *const *dirs;

	fixture_make(&f, 500);
	dirs = (const char *const *)f.dirs;
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_new(q, NULL, &x1, &err), TW_OK);
	cr_assert_eq(tw_qexec_new(q, NULL, &x2, &err), TW_OK);
	cr_assert_eq(tw_query_run(dirs, 2, q, INT64_MIN, INT64_MAX, NULL, x1, NULL, &err), TW_OK, "%s", err.msg);
	for (unsigned s = 0; s < 2; s++)
		for (size_t i = 0; i < f.b[s].n; i++)
			cr_assert_eq(tw_qexec_push(x2, &f.b[s].ev[i], NULL, &err), TW_OK);
	cr_assert_eq(tw_qexec_finish(x1, &err), TW_OK);
	cr_assert_eq(tw_qexec_finish(x2, &err), TW_OK);
	cr_assert(tw_qexec_is_stats(x1));
	cr_assert_eq(tw_qexec_nrows(x1), tw_qexec_nrows(x2));
	cr_assert_gt(tw_qexec_nrows(x1), 3);
	for (size_t i = 0; i < tw_qexec_nrows(x1); i++) {
		const struct tw_qval *a, *b;
		cr_assert_eq(tw_qexec_row(x1, i, &a, &err), TW_OK);
		char *s0 = strndup(a[0].s.p, a[0].s.n), *n0 = strndup(a[1].s.p, a[1].s.n);
		cr_assert_eq(tw_qexec_row(x2, i, &b, &err), TW_OK);
		cr_assert_eq(b[0].s.n, strlen(s0));
		cr_assert(!memcmp(b[0].s.p, s0, b[0].s.n), "row %zu: %s", i, s0);
		cr_assert_eq(b[1].num, strtod(n0, NULL), "row %zu", i);
		free(s0);
		free(n0);
	}
	tw_qexec_free(x1);
	tw_qexec_free(x2);
	tw_query_free(q);
	fixture_free(&f);
}

Test(query_plan, limit_keeps_the_earliest_events_in_order)
{
	struct fixture f;
	const char *text = "filter eventName = 'Op5' | limit 7";
	const char *full = "filter eventName = 'Op5'";
	struct tw_query *q, *qf;
	struct tw_qexec *x, *xf;
	struct tw_err err = { 0 };
	struct tw_qrun_opts o = { 1, 0, 0, 0, NULL, NULL };

	fixture_make(&f, 10);
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_query_parse(full, strlen(full), &qf, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK);
	cr_assert_eq(tw_qexec_new(qf, NULL, &xf, &err), TW_OK);
	cr_assert_eq(tw_query_run((const char *const *)f.dirs, 1, q, INT64_MIN, INT64_MAX, &o, x, NULL, &err), TW_OK);
	cr_assert_eq(tw_query_run((const char *const *)f.dirs, 1, qf, INT64_MIN, INT64_MAX, &o, xf, NULL, &err), TW_OK);
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK);
	cr_assert_eq(tw_qexec_finish(xf, &err), TW_OK);
	cr_assert_eq(tw_qexec_nrows(x), 7);
	cr_assert_gt(tw_qexec_nrows(xf), 7);
	for (size_t i = 0; i < 7; i++)
		cr_assert_eq(tw_qexec_row_event(x, i)->time_ms, tw_qexec_row_event(xf, i)->time_ms, "row %zu", i);
	tw_qexec_free(x);
	tw_qexec_free(xf);
	tw_query_free(q);
	tw_query_free(qf);
	fixture_free(&f);
}

/* ---- count(*) stats answered from postings ---------------------------------------------------- */
#define NCOUNT 2650 /* events of the count fixture: segments of 400 in time order, a WAL tail of 250 */

/* Event i of the count fixture: one a minute from BASE_MS (so each segment covers its own time
 * slice), some fields absent (null groups), two kinds. */
static void gen_count(struct tw_batch *b, unsigned i)
{
	struct tw_event *ev = tw_batch_push(b, NULL);
	char id[32], pr[80], name[16], src[32], reg[16], user[16], grp[32];

	cr_assert(ev);
	snprintf(id, sizeof id, "ev-%06u", i);
	snprintf(pr, sizeof pr, "arn:aws:iam::123456789012:user/u%u", (i * 7) % 23);
	snprintf(name, sizeof name, "Op%u", i % 13);
	snprintf(src, sizeof src, "s%u.amazonaws.com", i % 4);
	snprintf(reg, sizeof reg, "r%u", (i / 3) % 3);
	snprintf(user, sizeof user, "n%u", i % 3);
	snprintf(grp, sizeof grp, "/aws/lambda/f%u", i % 2);
	ev->kind = i % 11 == 0 ? TW_KIND_CWLOG : TW_KIND_CLOUDTRAIL;
	ev->time_ms = BASE_MS + (int64_t)i * 60000;
	ev->read_only = (int8_t)(i % 3 == 0 ? -1 : (int)(i % 2));
	ev->raw = dup_str(b, id);
	ev->f[TW_F_EVENT_ID] = dup_str(b, id);
	ev->f[TW_F_EVENT_NAME] = dup_str(b, name);
	ev->f[TW_F_PRINCIPAL] = dup_str(b, pr);
	ev->f[TW_F_EVENT_SOURCE] = dup_str(b, src);
	ev->f[TW_F_REGION] = dup_str(b, reg);
	if (i % 5 == 0)
		ev->f[TW_F_USER_NAME] = dup_str(b, user);
	if (i % 10 == 0)
		ev->f[TW_F_ERROR_CODE] = dup_str(b, "AccessDenied");
	else if (i % 25 == 3)
		ev->f[TW_F_ERROR_CODE] = dup_str(b, "Throttling");
	if (ev->kind == TW_KIND_CWLOG)
		ev->f[TW_F_LOG_GROUP] = dup_str(b, grp);
	ev->nresources = 1;
	ev->resources = tw_arena_alloc(&b->arena, sizeof *ev->resources, NULL);
	cr_assert(ev->resources);
	ev->resources[0] = dup_str(b, i % 2 ? "bucket-1" : "bucket-2");
}

/* Appends all in steps of 50, sealing every `seal` events except the last `tail`. */
static void build_count_store(const char *dir, struct tw_batch *all, size_t seal, size_t tail)
{
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };

	tw_store_opts_default(&o);
	o.seal_bytes = 1ull << 30;
	o.seal_async = 0;
	o.seal_age_ms = 0;
	o.seg.block_bytes = 4096;
	o.seg.fsync = 0;
	cr_assert_eq(tw_store_open(dir, &o, &s, NULL, &err), TW_OK, "%s", err.msg);
	for (size_t from = 0; from < all->n; from += 50) {
		struct tw_batch sl = *all;
		struct tw_store_append_result res;
		sl.ev = all->ev + from;
		sl.n = all->n - from < 50 ? all->n - from : 50;
		cr_assert_eq(tw_store_append(s, &sl, &res, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(res.stored, sl.n);
		if ((from + sl.n) % seal == 0 && from + sl.n <= all->n - tail)
			cr_assert_eq(tw_store_seal(s, &err), TW_OK, "%s", err.msg);
	}
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
}

/* The result table as one string: columns, then each row's typed values. */
static char *table_text(struct tw_qexec *x)
{
	struct tw_buf b;
	struct tw_err err = { 0 };
	char *out;

	tw_buf_init(&b, (size_t)16 << 20);
	cr_assert(tw_qexec_is_stats(x));
	for (size_t c = 0; c < tw_qexec_ncols(x); c++)
		cr_assert_eq(tw_buf_printf(&b, &err, "%s|", tw_qexec_col_name(x, c)), TW_OK, "%s", err.msg);
	for (size_t i = 0; i < tw_qexec_nrows(x); i++) {
		const struct tw_qval *v;
		cr_assert_eq(tw_qexec_row(x, i, &v, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(tw_buf_printf(&b, &err, "\n"), TW_OK);
		for (size_t c = 0; c < tw_qexec_ncols(x); c++)
			cr_assert_eq(tw_buf_printf(&b, &err, "%d:%.*s|", (int)v[c].type, (int)v[c].s.n,
						   v[c].s.p ? v[c].s.p : ""), TW_OK, "%s", err.msg);
	}
	cr_assert_gt(b.n, 0);
	out = strndup(b.p, b.n);
	tw_buf_free(&b);
	return out;
}

/* Runs q with opts o over the stores; returns the table text. */
static char *count_run(const char *const *dirs, size_t nd, struct tw_query *q, int64_t lo, int64_t hi,
		       const struct tw_qrun_opts *o, struct tw_qrun_stats *st)
{
	struct tw_qexec *x;
	struct tw_err err = { 0 };
	char *t;

	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_query_run(dirs, nd, q, lo, hi, o, x, st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK, "%s", err.msg);
	t = table_text(x);
	tw_qexec_free(x);
	return t;
}

/* The executor fed every event in [lo, hi] (it applies the filters itself): the full scan. */
static char *count_scan(struct tw_batch *const *bs, size_t nb, struct tw_query *q, int64_t lo, int64_t hi)
{
	struct tw_qexec *x;
	struct tw_err err = { 0 };
	char *t;

	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK, "%s", err.msg);
	for (size_t k = 0; k < nb; k++)
		for (size_t i = 0; i < bs[k]->n; i++)
			if (bs[k]->ev[i].time_ms >= lo && bs[k]->ev[i].time_ms <= hi)
				cr_assert_eq(tw_qexec_push(x, &bs[k]->ev[i], NULL, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK, "%s", err.msg);
	t = table_text(x);
	tw_qexec_free(x);
	return t;
}

/* Count queries the planner answers from postings. */
static const char *const count_fast[] = {
	"stats count(*) by eventName",
	"stats count(*) as n by eventName | sort n desc | limit 5",
	"stats count(*)",
	"stats count(*) as a, count() as b by principal",
	"stats count(*) by errorCode",
	"stats count(*) by userName, readOnly",
	"stats count(*) by kind, logGroup",
	"stats count(*) by user",
	"filter eventSource = 's1.amazonaws.com' | stats count(*) by eventName",
	"filter eventName in ['Op1', 'Op2', 'Op3'] and errorCode = 'AccessDenied' | stats count(*) by principal, eventName",
	"filter principal = 'nobody' | stats count(*) by eventName",
	"filter eventName in [] | stats count(*)",
	"filter readOnly = 'true' | fields eventName | stats count(*) by region",
	"filter @timestamp >= '2026-11-02T10:00:00Z' and kind = 'cloudtrail' | stats count(*) by eventSource, eventName, region",
	"filter eventID = 'ev-000042' | stats count(*) by eventName",
	"filter errorCode = 'Throttling' | filter region = 'r1' | stats count(*)",
	"stats count(*) as n by eventName, principal, eventSource, errorCode | filter n > 3 | sort n desc, eventName",
	"filter @timestamp < '2026-11-02T15:00:00Z' | stats count(*) by userName",
};

/* Count-like queries it must not answer from postings (checked against the scan all the same). */
static const char *const count_slow[] = {
	"stats count(*) by resource",
	"stats count(*) by bin(1h)",
	"stats count(*) by eventName, bin(1h)",
	"filter eventName = 'Op1' or eventName = 'Op2' | stats count(*) by principal",
	"filter eventName =~ /^Op1/ | stats count(*) by principal",
	"filter eventName != 'Op1' | stats count(*) by principal",
	"filter resource = 'bucket-1' | stats count(*) by eventName",
	"filter userName like 'n1' | stats count(*) by eventName",
	"stats count(eventName) by principal",
	"stats count(*), count_distinct(principal) by eventName",
	"stats count(*) by eventID",
	"stats count(*) by userAgent",
	"stats count(*) by principal, eventName, eventSource, region, errorCode",
};

static void check_counts(const char *const *dirs, size_t nd, struct tw_batch *const *bs, int64_t lo, int64_t hi,
			 int expect_counted)
{
	const struct tw_qrun_opts fast = { 0, 0, 0, 0, NULL, NULL }, normal = { 0, 0, 0, 1, NULL, NULL }, noix = { 0, 1, 0, 0, NULL, NULL };

	for (size_t k = 0; k < sizeof count_fast / sizeof count_fast[0] + sizeof count_slow / sizeof count_slow[0]; k++) {
		int is_fast = k < sizeof count_fast / sizeof count_fast[0];
		const char *text = is_fast ? count_fast[k] : count_slow[k - sizeof count_fast / sizeof count_fast[0]];
		struct tw_query *q;
		struct tw_err err = { 0 };
		struct tw_qrun_stats st, st_n;
		char *want, *got, *got_n, *got_x;

		cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s: %s", text, err.msg);
		cr_assert_eq(tw_query_counts_from_postings(q), is_fast, "%s", text);
		want = count_scan(bs, nd, q, lo, hi);
		got = count_run(dirs, nd, q, lo, hi, &fast, &st);
		got_n = count_run(dirs, nd, q, lo, hi, &normal, &st_n);
		got_x = count_run(dirs, nd, q, lo, hi, &noix, NULL);
		cr_assert(strchr(want, '|'), "%s", text);
		cr_assert_str_eq(got, want, "%s: from postings\n%s\nfull scan\n%s", text, got, want);
		cr_assert_str_eq(got_n, want, "%s: normal path", text);
		cr_assert_str_eq(got_x, want, "%s: without index", text);
		cr_assert_eq(st_n.segments_counted, 0, "%s", text);
		if (!is_fast)
			cr_assert_eq(st.segments_counted, 0, "%s", text);
		else if (expect_counted)
			cr_assert_gt(st.segments_counted, 0, "%s: no segment answered from postings", text);
		if (st.segments_counted)
			cr_assert_eq(st.fetched + st.records_counted >= st_n.fetched ? 1 : 0, 1, "%s", text);
		cr_assert_leq(st.fetched, st_n.fetched, "%s", text);
		free(want);
		free(got);
		free(got_n);
		free(got_x);
		tw_query_free(q);
	}
}

struct cfix {
	char *tmp;            /* test directory */
	char *dirs[2];        /* two shards */
	struct tw_batch b[2]; /* their events */
};

static void cfix_make(struct cfix *f)
{
	f->tmp = tw_test_tmpdir();
	for (unsigned s = 0; s < 2; s++) {
		char name[16];
		snprintf(name, sizeof name, "c%u", s);
		f->dirs[s] = tw_test_join(f->tmp, name);
		tw_batch_init(&f->b[s]);
		for (unsigned i = 0; i < (s ? 1000u : NCOUNT); i++)
			gen_count(&f->b[s], i + s * 7u);
		build_count_store(f->dirs[s], &f->b[s], 400, 250);
	}
}

static void cfix_free(struct cfix *f)
{
	for (unsigned s = 0; s < 2; s++) {
		tw_batch_free(&f->b[s]);
		free(f->dirs[s]);
	}
	tw_test_tmpdir_free(f->tmp);
}

Test(query_plan, count_from_postings_equals_normal_path_and_full_scan)
{
	struct cfix f;
	struct tw_batch *bs[2];

	cfix_make(&f);
	bs[0] = &f.b[0];
	bs[1] = &f.b[1];
	check_counts((const char *const *)f.dirs, 1, bs, INT64_MIN, INT64_MAX, 1);
	check_counts((const char *const *)f.dirs, 2, bs, INT64_MIN, INT64_MAX, 1);
	cfix_free(&f);
}

Test(query_plan, count_from_postings_with_time_ranges)
{
	struct cfix f;
	struct tw_batch *bs[1];
	const char *const *dirs;
	int64_t min = 60000;

	cfix_make(&f);
	bs[0] = &f.b[0];
	dirs = (const char *const *)f.dirs;
	/* exactly segments 1 and 2 (events 400..1199) */
	check_counts(dirs, 1, bs, BASE_MS + 400 * min, BASE_MS + 1200 * min - 1, 1);
	/* segments 1 and 2 whole, cutting through 0 and 3 */
	check_counts(dirs, 1, bs, BASE_MS + 350 * min, BASE_MS + 1250 * min, 1);
	/* inside segment 1 only: nothing can be answered from postings */
	check_counts(dirs, 1, bs, BASE_MS + 500 * min + 1, BASE_MS + 700 * min, 0);
	/* from the middle of the last segment into the WAL tail */
	check_counts(dirs, 1, bs, BASE_MS + 2100 * min, INT64_MAX, 0);
	cfix_free(&f);
}

Test(query_plan, count_from_postings_explain_counters)
{
	struct cfix f;
	const char *text = "stats count(*) by eventName";
	const struct tw_qrun_opts fast = { 0, 0, 0, 0, NULL, NULL };
	struct tw_query *q;
	struct tw_err err = { 0 };
	struct tw_qrun_stats st;
	int64_t min = 60000;
	char *t;

	cfix_make(&f);
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	t = count_run((const char *const *)f.dirs, 1, q, INT64_MIN, INT64_MAX, &fast, &st);
	free(t);
	/* 2650 events: 6 sealed segments of 400, 250 in the WAL */
	cr_assert_eq(st.segments, 6);
	cr_assert_eq(st.segments_counted, 6);
	cr_assert_eq(st.records_counted, 2400);
	cr_assert_eq(st.fetched, 0);
	cr_assert_eq(st.blocks_read, 0);
	cr_assert_eq(st.tail_scanned, 250);
	cr_assert_eq(st.matched, 250);
	/* a range through the middle of segments 0 and 3: those two are read */
	t = count_run((const char *const *)f.dirs, 1, q, BASE_MS + 350 * min, BASE_MS + 1250 * min, &fast, &st);
	free(t);
	cr_assert_eq(st.segments_counted, 2);
	cr_assert_eq(st.records_counted, 800);
	cr_assert_gt(st.fetched, 100);
	cr_assert_leq(st.fetched, 800);
	cr_assert_eq(st.matched, 50 + 51, "events 350..399 and 1200..1250 are pushed one by one");
	tw_query_free(q);
	/* event output, and a limit before the stats (its result depends on arrival order), are never
	 * counted from postings */
	text = "filter eventName = 'Op1'";
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_query_counts_from_postings(q), 0);
	tw_query_free(q);
	text = "limit 10 | stats count(*) by eventName";
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_query_counts_from_postings(q), 0);
	tw_query_free(q);
	cfix_free(&f);
}

Test(query_plan, count_from_postings_falls_back_past_the_distinct_value_cap)
{
	char *tmp = tw_test_tmpdir(), *dir = tw_test_join(tmp, "s");
	struct tw_batch b, *bs[1] = { &b };
	const char *text = "stats count(*) as n by sourceIPAddress | sort n desc, sourceIPAddress | limit 5";
	const char *text2 = "stats count(*) by eventName";
	const struct tw_qrun_opts fast = { 0, 0, 0, 0, NULL, NULL };
	struct tw_query *q;
	struct tw_err err = { 0 };
	struct tw_qrun_stats st;
	char *got, *want;

	tw_batch_init(&b);
	for (unsigned i = 0; i < 10100; i++) {
		char ip[32];
		gen_count(&b, i);
		snprintf(ip, sizeof ip, "10.0.%u.%u", (i % 10050) / 256, (i % 10050) % 256);
		b.ev[i].f[TW_F_SOURCE_IP] = dup_str(&b, ip);
	}
	build_count_store(dir, &b, 10100, 0);
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	cr_assert(tw_query_counts_from_postings(q));
	got = count_run((const char *const *)&dir, 1, q, INT64_MIN, INT64_MAX, &fast, &st);
	want = count_scan(bs, 1, q, INT64_MIN, INT64_MAX);
	cr_assert_str_eq(got, want);
	cr_assert_eq(st.segments, 1);
	cr_assert_eq(st.segments_counted, 0, "10,050 distinct values: read the segment");
	cr_assert_eq(st.fetched, 10100);
	free(got);
	free(want);
	tw_query_free(q);
	cr_assert_eq(tw_query_parse(text2, strlen(text2), &q, &err), TW_OK, "%s", err.msg);
	got = count_run((const char *const *)&dir, 1, q, INT64_MIN, INT64_MAX, &fast, &st);
	want = count_scan(bs, 1, q, INT64_MIN, INT64_MAX);
	cr_assert_str_eq(got, want);
	cr_assert_eq(st.segments_counted, 1);
	free(got);
	free(want);
	tw_query_free(q);
	tw_batch_free(&b);
	free(dir);
	tw_test_tmpdir_free(tmp);
}
