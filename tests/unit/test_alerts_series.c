/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_alerts_series.c: per-period aggregation (alerts/series.c): event-time periods,
 * out-of-order and late values, the lateness window, the "other" tuple past max_keys, default
 * values, the floor a restart sets, and the memory cap. Expected sums are worked out by hand. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alerts/series.h"

#define MIN 60000LL

struct got {
	char line[64][512]; /* "name dims t n sum min max" per point */
	int n;
};

static void collect(void *ctx, const struct tw_series_point *p)
{
	struct got *g = ctx;
	char dims[64] = "";
	size_t o = 0;
	for (unsigned d = 0; d < p->ndims; d++)
		o += (size_t)snprintf(dims + o, sizeof dims - o, "%s%.*s", d ? "," : "", (int)p->dims[d].n, p->dims[d].p);
	cr_assert_lt(g->n, 64);
	snprintf(g->line[g->n++], sizeof g->line[0], "%s[%s] %lld n=%llu sum=%g min=%g max=%g", p->name, dims,
		 (long long)(p->t / MIN), (unsigned long long)p->n, p->sum, p->min, p->max);
}

static struct tw_str S(const char *s)
{
	return (struct tw_str){ s, strlen(s) };
}

Test(alerts_series, out_of_order_values_fold_into_their_minute_and_close_after_lateness)
{
	struct tw_series_opts o;
	struct tw_series *s;
	struct tw_err err;
	struct got g = { .n = 0 };
	const char *dn[] = { "eventName" };
	unsigned id;
	int64_t cu;

	tw_series_opts_default(&o);
	o.lateness_ms = 2 * MIN;
	cr_assert_eq(tw_series_new(&o, &s, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "calls", 1, dn, 0, 0, &id, &err), TW_OK, "%s", err.msg);
	struct tw_str a = S("GetObject"), b = S("PutObject");
	/* minute 10: 3 x a (one arrives after minute 11's), 1 x b; minute 11: a */
	cr_assert_eq(tw_series_put(s, id, &a, 1, 10 * MIN + 5000, &err), TW_OK);
	cr_assert_eq(tw_series_put(s, id, &b, 2, 10 * MIN + 7000, &err), TW_OK);
	cr_assert_eq(tw_series_put(s, id, &a, 1, 11 * MIN + 1000, &err), TW_OK);
	cr_assert_eq(tw_series_put(s, id, &a, 4, 10 * MIN + 59999, &err), TW_OK); /* out of order */
	tw_series_advance(s, 0, collect, &g, &cu);
	cr_assert_eq(g.n, 0, "nothing closes before watermark - lateness passes minute 10's end");
	/* watermark 13:00 -> limit 11:00: minute 10 closes */
	cr_assert_eq(tw_series_put(s, id, &b, 1, 13 * MIN, &err), TW_OK);
	tw_series_advance(s, 0, collect, &g, &cu);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.line[0], "calls[GetObject] 10 n=2 sum=5 min=1 max=4");
	cr_assert_str_eq(g.line[1], "calls[PutObject] 10 n=1 sum=2 min=2 max=2");
	cr_assert_eq(cu, 11 * MIN);
	/* a value for minute 10 now is late: dropped and counted; minute 11 still takes values */
	cr_assert_eq(tw_series_put(s, id, &a, 1, 10 * MIN + 1, &err), TW_OK);
	cr_assert_eq(tw_series_put(s, id, &a, 1, 11 * MIN + 2, &err), TW_OK);
	tw_series_advance(s, 1, collect, &g, &cu);
	cr_assert_eq(g.n, 4);
	cr_assert_str_eq(g.line[2], "calls[GetObject] 11 n=2 sum=2 min=1 max=1");
	cr_assert_str_eq(g.line[3], "calls[PutObject] 13 n=1 sum=1 min=1 max=1");
	struct tw_series_stats st;
	tw_series_get_stats(s, &st);
	cr_assert_eq(st.late, 1);
	cr_assert_eq(st.values, 6);
	cr_assert_eq(st.emitted, 4);
	tw_series_free(s);
}

Test(alerts_series, tuples_past_max_keys_fold_into_other)
{
	struct tw_series_opts o;
	struct tw_series *s;
	struct tw_err err;
	struct got g = { .n = 0 };
	const char *dn[] = { "principal", "eventName" };
	char buf[8][16];
	unsigned id;

	tw_series_opts_default(&o);
	o.max_keys = 3;
	cr_assert_eq(tw_series_new(&o, &s, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "by", 2, dn, 0, 0, &id, &err), TW_OK);
	for (int i = 0; i < 6; i++) {
		struct tw_str d[2];
		snprintf(buf[i], sizeof buf[i], "p%d", i);
		d[0] = S(buf[i]);
		d[1] = S("X");
		cr_assert_eq(tw_series_put(s, id, d, 1, 5 * MIN, &err), TW_OK);
	}
	{ /* a known tuple keeps its own series after the cap is reached */
		struct tw_str d[2] = { S("p1"), S("X") };
		cr_assert_eq(tw_series_put(s, id, d, 10, 5 * MIN, &err), TW_OK);
	}
	tw_series_advance(s, 1, collect, &g, NULL);
	cr_assert_eq(g.n, 4);
	cr_assert_str_eq(g.line[0], "by[p0,X] 5 n=1 sum=1 min=1 max=1");
	cr_assert_str_eq(g.line[1], "by[p1,X] 5 n=2 sum=11 min=1 max=10");
	cr_assert_str_eq(g.line[2], "by[p2,X] 5 n=1 sum=1 min=1 max=1");
	cr_assert_str_eq(g.line[3], "by[other,other] 5 n=3 sum=3 min=1 max=1");
	struct tw_series_stats st;
	tw_series_get_stats(s, &st);
	cr_assert_eq(st.folded, 3);
	tw_series_free(s);
}

Test(alerts_series, a_metric_own_cap_overrides_the_set_cap)
{
	struct tw_series_opts o;
	struct tw_series *s;
	struct tw_err err;
	struct got g = { .n = 0 };
	const char *dn[] = { "principal" };
	char buf[8][16];
	unsigned small, big;

	tw_series_opts_default(&o);
	o.max_keys = 2;
	cr_assert_eq(tw_series_new(&o, &s, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "small", 1, dn, 0, 0, &small, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "big", 1, dn, 0, 0, &big, &err), TW_OK);
	cr_assert_eq(tw_series_metric_set_max_keys(s, big, 5, &err), TW_OK);
	cr_assert_eq(tw_series_metric_set_max_keys(s, big + 1, 5, &err), TW_EINVAL);
	for (int i = 0; i < 4; i++) {
		struct tw_str d = S((snprintf(buf[i], sizeof buf[i], "p%d", i), buf[i]));
		cr_assert_eq(tw_series_put(s, small, &d, 1, 5 * MIN, &err), TW_OK);
		cr_assert_eq(tw_series_put(s, big, &d, 1, 5 * MIN, &err), TW_OK);
	}
	tw_series_advance(s, 1, collect, &g, NULL);
	/* small: p0, p1, other(2); big: p0..p3 each on its own */
	cr_assert_eq(g.n, 7);
	{
		int other = 0, p3 = 0, small_p2 = 0;
		for (int i = 0; i < g.n; i++) {
			other += !strcmp(g.line[i], "small[other] 5 n=2 sum=2 min=1 max=1");
			p3 += !strcmp(g.line[i], "big[p3] 5 n=1 sum=1 min=1 max=1");
			small_p2 += !strncmp(g.line[i], "small[p2]", 9);
		}
		cr_assert(other == 1 && p3 == 1 && small_p2 == 0, "small folds past 2 tuples, big keeps 4");
	}
	tw_series_free(s);
}

Test(alerts_series, default_value_fills_periods_without_a_match_and_floor_ignores_closed_time)
{
	struct tw_series *s;
	struct tw_err err;
	struct got g = { .n = 0 };
	unsigned hits, calls;

	cr_assert_eq(tw_series_new(NULL, &s, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "hits", 0, NULL, 1, 0, &hits, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_series_metric_add(s, "calls", 0, NULL, 0, 0, &calls, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "calls", 0, NULL, 0, 0, &calls, &err), TW_EINVAL);
	{
		const char *dn[] = { "x" };
		unsigned bad;
		cr_assert_eq(tw_series_metric_add(s, "withdim", 1, dn, 1, 0, &bad, &err), TW_EINVAL);
	}
	tw_series_set_floor(s, 100 * MIN);
	cr_assert_eq(tw_series_put(s, calls, NULL, 1, 99 * MIN, &err), TW_OK); /* before the floor */
	cr_assert_eq(tw_series_put(s, calls, NULL, 1, 100 * MIN, &err), TW_OK);
	cr_assert_eq(tw_series_put(s, hits, NULL, 1, 101 * MIN, &err), TW_OK);
	cr_assert_eq(tw_series_put(s, calls, NULL, 1, 101 * MIN, &err), TW_OK);
	tw_series_advance(s, 1, collect, &g, NULL);
	cr_assert_eq(g.n, 4, "%d", g.n);
	cr_assert_str_eq(g.line[0], "calls[] 100 n=1 sum=1 min=1 max=1");
	cr_assert_str_eq(g.line[1], "hits[] 100 n=1 sum=0 min=0 max=0", "the default where nothing matched");
	cr_assert_str_eq(g.line[2], "hits[] 101 n=1 sum=1 min=1 max=1");
	cr_assert_str_eq(g.line[3], "calls[] 101 n=1 sum=1 min=1 max=1");
	struct tw_series_stats st;
	tw_series_get_stats(s, &st);
	cr_assert_eq(st.late, 1);
	tw_series_free(s);
}

Test(alerts_series, open_cells_are_capped)
{
	struct tw_series_opts o;
	struct tw_series *s;
	struct tw_err err;
	unsigned id;
	struct tw_series_stats st;

	tw_series_opts_default(&o);
	o.max_open = 5;
	o.lateness_ms = 1000 * MIN;
	cr_assert_eq(tw_series_new(&o, &s, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(s, "m", 0, NULL, 0, 0, &id, &err), TW_OK);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(tw_series_put(s, id, NULL, 1, i * MIN, &err), TW_OK);
	tw_series_get_stats(s, &st);
	cr_assert_eq(st.values, 5);
	cr_assert_eq(st.dropped, 3);
	tw_series_free(s);
}

/* Restart equivalence: feeding a stream in two runs (the second with the floor the first closed up
 * to, and the values after it replayed) emits exactly what one uninterrupted run emits. */
Test(alerts_series, restart_with_floor_and_replay_equals_one_run)
{
	struct tw_series_opts o;
	struct tw_series *a, *b;
	struct tw_err err;
	struct got one = { .n = 0 }, two = { .n = 0 };
	unsigned ida, idb;
	int64_t ts[40], cu;
	const char *dn[] = { "k" };

	tw_series_opts_default(&o);
	o.lateness_ms = 3 * MIN;
	for (int i = 0; i < 40; i++) /* mostly increasing, some up to 2 minutes late */
		ts[i] = (int64_t)i * 20000 - (i % 7 == 3 ? 2 * MIN : 0);
	cr_assert_eq(tw_series_new(&o, &a, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(a, "m", 1, dn, 0, 0, &ida, &err), TW_OK);
	for (int i = 0; i < 40; i++) {
		struct tw_str d = S(i % 2 ? "odd" : "even");
		cr_assert_eq(tw_series_put(a, ida, &d, i, ts[i], &err), TW_OK);
		tw_series_advance(a, 0, collect, &one, NULL);
	}
	tw_series_advance(a, 1, collect, &one, NULL);

	/* run 1: the first 25 values, closing as it goes; "crash" */
	cr_assert_eq(tw_series_new(&o, &b, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(b, "m", 1, dn, 0, 0, &idb, &err), TW_OK);
	for (int i = 0; i < 25; i++) {
		struct tw_str d = S(i % 2 ? "odd" : "even");
		cr_assert_eq(tw_series_put(b, idb, &d, i, ts[i], &err), TW_OK);
		tw_series_advance(b, 0, collect, &two, &cu);
	}
	tw_series_free(b);
	/* run 2: floor = what run 1 closed; every stored value at or after it is fed again (the store
	 * holds them all), then the rest */
	cr_assert_eq(tw_series_new(&o, &b, &err), TW_OK);
	cr_assert_eq(tw_series_metric_add(b, "m", 1, dn, 0, 0, &idb, &err), TW_OK);
	tw_series_set_floor(b, cu);
	for (int i = 0; i < 40; i++) {
		struct tw_str d = S(i % 2 ? "odd" : "even");
		if (i < 25 && ts[i] < cu)
			continue;
		cr_assert_eq(tw_series_put(b, idb, &d, i, ts[i], &err), TW_OK);
		if (i >= 25)
			tw_series_advance(b, 0, collect, &two, NULL);
	}
	tw_series_advance(b, 1, collect, &two, NULL);
	cr_assert_eq(one.n, two.n, "%d vs %d points", one.n, two.n);
	for (int i = 0; i < one.n; i++)
		cr_assert_str_eq(one.line[i], two.line[i], "point %d", i);
	tw_series_free(a);
	tw_series_free(b);
}
