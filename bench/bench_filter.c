/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_filter.c: the CIS pack (15 filter patterns, alerts/cis.c) evaluated on decoded
 * CloudTrail events, on one core. One run, two passes over the same file with one decode thread:
 * (a) decode only, (b) decode + tw_filter_set_eval of the 15-pattern set on every event; plus the
 * time spent inside tw_filter_set_eval alone. Built and run by bench/filter.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts/cis.h"
#include "alerts/filter.h"
#include "ingest/ingest.h"

struct ctx {
	struct tw_filter_set *set;  /* NULL: decode only */
	struct tw_filter_result r;  /* scratch */
	unsigned long long events;  /* seen */
	unsigned long long hits[16]; /* matches per control */
	double eval_s;              /* seconds inside tw_filter_set_eval */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static enum tw_rc on_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct ctx *c = vctx;
	c->events += batch->n;
	if (!c->set)
		return TW_OK;
	double t0 = now();
	for (size_t i = 0; i < batch->n; i++) {
		if (tw_filter_set_eval(c->set, &batch->ev[i], &c->r, err))
			return err->rc;
		for (size_t k = 0; k < c->r.npatterns; k++)
			c->hits[k] += c->r.matched[k];
	}
	c->eval_s += now() - t0;
	return TW_OK;
}

static double run(const char *path, struct ctx *c)
{
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_sink sink = { on_batch, NULL, c };
	struct tw_err err;
	tw_ingest_limits_default(&lim);
	lim.threads = 1;
	memset(&st, 0, sizeof st);
	double t0 = now();
	if (tw_ingest_paths(&path, 1, &lim, &sink, NULL, &st, &err)) {
		fprintf(stderr, "bench_filter: %s\n", err.msg);
		exit(3);
	}
	return now() - t0;
}

int main(int argc, char **argv)
{
	struct ctx a, b;
	struct tw_err err;
	size_t n, idx;
	const struct tw_cis_control *cc = tw_cis_controls(&n);

	if (argc != 2) {
		fprintf(stderr, "usage: bench_filter FILE.jsonl.gz\n");
		return 2;
	}
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	if (tw_filter_set_new(&b.set, &err))
		return 3;
	for (size_t i = 0; i < n; i++)
		if (tw_filter_set_add(b.set, cc[i].pattern, strlen(cc[i].pattern), &idx, &err)) {
			fprintf(stderr, "%s: %s\n", cc[i].id, err.msg);
			return 3;
		}
	if (tw_filter_result_init(b.set, &b.r, &err))
		return 3;
	double ta = run(argv[1], &a);
	double tb = run(argv[1], &b);
	printf("(a) decode only:          %llu events in %.2f s: %.0f events/s\n", a.events, ta, a.events / ta);
	printf("(b) decode + 15 filters:  %llu events in %.2f s: %.0f events/s (%.0f filter evaluations/s end to end)\n",
	       b.events, tb, b.events / tb, 15.0 * b.events / tb);
	printf("    inside tw_filter_set_eval: %.2f s: %.0f events/s, %.0f filter evaluations/s per core\n", b.eval_s,
	       b.events / b.eval_s, 15.0 * b.events / b.eval_s);
	printf("    matches:");
	for (size_t i = 0; i < n; i++)
		printf(" %s=%llu", cc[i].id + 4, b.hits[i]);
	printf("\n");
	tw_filter_result_free(&b.r);
	tw_filter_set_free(b.set);
	return 0;
}
