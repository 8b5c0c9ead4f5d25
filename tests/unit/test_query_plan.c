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
	struct tw_qrun_opts o = { ordered, no_index, 0 };
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
	struct tw_qrun_opts o = { 1, 0, 0 };

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
