/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_metrics.c: the metrics `ingest` computes beside the store, read back with
 * `trailwatch metrics show`, checked against independent counts: each CIS metric's total equals
 * what `trailwatch filter test` finds with the control's pattern on the same files, the calls
 * series sums to the CloudTrail records stored, and a second ingest of the same files (all
 * duplicates) changes no series. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/cis.h"
#include "tests/helpers/helpers.h"

/* Sum of the value column of `metrics show NAME --format csv`. */
static double series_total(const char *store, const char *name)
{
	const char *argv[] = { tw_test_bin(), "metrics", "show", name, "--store", store, "--format", "csv", NULL };
	struct tw_test_run r;
	double total = 0;
	char *line, *save = NULL;

	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 0, "metrics show %s: %s", name, r.err);
	line = strtok_r(r.out, "\n", &save); /* header */
	cr_assert(line && !strncmp(line, "time,", 5), "header: %s", line ? line : "");
	while ((line = strtok_r(NULL, "\n", &save))) {
		const char *comma = strrchr(line, ',');
		cr_assert_not_null(comma);
		total += strtod(comma + 1, NULL);
	}
	tw_test_run_free(&r);
	return total;
}

static long filter_count(const char *pattern, const char *path)
{
	const char *argv[] = { tw_test_bin(), "filter", "test", pattern, path, NULL };
	struct tw_test_run r;
	long n = -1;

	tw_test_run_to(&r, NULL, "/dev/null", argv);
	cr_assert_eq(r.status, 0, "filter test: %s", r.err);
	cr_assert_eq(sscanf(r.err, "%ld of", &n), 1, "stderr: %s", r.err);
	tw_test_run_free(&r);
	return n;
}

Test(cli_metrics, ingest_series_agree_with_filter_test_and_survive_a_second_ingest, .timeout = 120)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	const char *ing[] = { tw_test_bin(), "ingest", "--quiet", "--store", store, trail, NULL };
	struct tw_test_run r;
	const struct tw_cis_control *cis;
	size_t ncis, nonzero = 0;
	double calls;

	tw_test_run(&r, NULL, ing);
	cr_assert_eq(r.status, 0, "ingest: %s", r.err);
	tw_test_run_free(&r);
	cis = tw_cis_controls(&ncis);
	for (size_t i = 0; i < ncis; i++) {
		double got = series_total(store, cis[i].metric);
		long want = filter_count(cis[i].pattern, trail);
		cr_assert_eq((long)got, want, "%s (%s): series total %g, filter test %ld", cis[i].id, cis[i].metric, got,
			     want);
		nonzero += want > 0;
	}
	cr_assert_geq(nonzero, 10, "the samples should exercise most controls");
	calls = series_total(store, "calls");
	{
		const char *q[] = { tw_test_bin(), "query", "--store", store, "--format", "csv",
				    "filter kind = \"cloudtrail\" | stats count(*) as n", NULL };
		tw_test_run(&r, NULL, q);
		cr_assert_eq(r.status, 0, "query: %s", r.err);
		cr_assert_eq((long)calls, strtol(strchr(r.out, '\n') + 1, NULL, 10), "calls %g vs query %s", calls, r.out);
		tw_test_run_free(&r);
	}
	/* the same files again: all duplicates, nothing counted twice */
	tw_test_run(&r, NULL, ing);
	cr_assert_eq(r.status, 0, "second ingest: %s", r.err);
	tw_test_run_free(&r);
	cr_assert_eq(series_total(store, "calls"), calls);
	free(trail);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* The lines of STORE/metrics/points.jsonl, sorted (the order of points within a flush may differ). */
static char *sorted_points(const char *store)
{
	char *path = tw_test_join(store, "metrics/points.jsonl");
	char cmd[8192], *out;
	size_t n;
	char *sorted = tw_test_join(store, "points.sorted");

	snprintf(cmd, sizeof cmd, "LC_ALL=C sort '%s' > '%s'", path, sorted);
	cr_assert_eq(system(cmd), 0);
	out = tw_test_read_file(sorted, &n);
	free(path);
	free(sorted);
	return out;
}

Test(cli_metrics, rebuild_from_the_store_gives_the_series_ingest_computed, .timeout = 120)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	const char *ing[] = { tw_test_bin(), "ingest", "--quiet", "--store", store, trail, NULL };
	const char *reb[] = { tw_test_bin(), "metrics", "rebuild", "--store", store, NULL };
	struct tw_test_run r;
	char *before, *after;

	tw_test_run(&r, NULL, ing);
	cr_assert_eq(r.status, 0, "ingest: %s", r.err);
	tw_test_run_free(&r);
	before = sorted_points(store);
	cr_assert_gt(strlen(before), 1000);
	tw_test_run(&r, NULL, reb);
	cr_assert_eq(r.status, 0, "rebuild: %s", r.err);
	cr_assert(strstr(r.out, "events"), "%s", r.out);
	tw_test_run_free(&r);
	after = sorted_points(store);
	cr_assert(!strcmp(before, after), "rebuilt points differ from the ingested ones");
	free(before);
	free(after);
	free(trail);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* A daemon killed with periods open: the events of those periods are in the store but counted
 * nowhere; the next run must feed them again from the store, so that the series equal those of
 * a run that was never interrupted. */
Test(cli_metrics, run_killed_with_open_periods_refeeds_them_at_restart, .timeout = 120)
{
	char *tmp = tw_test_tmpdir();
	char *a = tw_test_join(tmp, "a"), *b = tw_test_join(tmp, "b");
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	const char *ra[] = { tw_test_bin(), "run", "--store", a, "--follow", trail, "--exit-at-end", NULL };
	const char *rb[] = { tw_test_bin(), "run", "--store", b, "--follow", trail, "--exit-at-end", NULL };
	struct tw_test_run r;
	char *pa, *pb;

	tw_test_run(&r, NULL, ra);
	cr_assert_eq(r.status, 0, "uninterrupted run: %s", r.err);
	tw_test_run_free(&r);
	/* killed right after its 5th durable batch (SIGKILL: nothing flushed, the periods open) */
	setenv("TRAILWATCH_TEST_KILL_AFTER_STORE", "5", 1);
	tw_test_run(&r, NULL, rb);
	unsetenv("TRAILWATCH_TEST_KILL_AFTER_STORE");
	cr_assert(r.status != 0, "the hook did not kill the run");
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, rb);
	cr_assert_eq(r.status, 0, "restarted run: %s", r.err);
	tw_test_run_free(&r);
	pa = sorted_points(a);
	pb = sorted_points(b);
	cr_assert(!strcmp(pa, pb), "the series after a crash differ from an uninterrupted run's");
	free(pa);
	free(pb);
	free(trail);
	free(a);
	free(b);
	tw_test_tmpdir_free(tmp);
}

/* A damaged segment: the metrics are rebuilt from the rest of the store, and the damage is named,
 * instead of the rebuild (or the refeed of a daemon's start) failing as a whole. */
Test(cli_metrics, rebuild_leaves_out_a_damaged_block_and_names_it, .timeout = 120)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	char *seg = tw_test_join(store, "seg/00000001.tws");
	const char *ing[] = { tw_test_bin(), "ingest", "--quiet", "--store", store, trail, NULL };
	const char *reb[] = { tw_test_bin(), "metrics", "rebuild", "--store", store, NULL };
	struct tw_test_run r;
	unsigned char *p;
	size_t n;
	long events = -1;

	tw_test_run(&r, NULL, ing);
	cr_assert_eq(r.status, 0, "ingest: %s", r.err);
	tw_test_run_free(&r);
	p = (unsigned char *)tw_test_read_file(seg, &n);
	cr_assert_gt(n, 6000);
	for (size_t i = 5000; i < 5100; i++) /* inside the first block's compressed bytes */
		p[i] ^= 0xff;
	tw_test_write_file(seg, p, n);
	free(p);
	tw_test_run(&r, NULL, reb);
	cr_assert_eq(r.status, 0, "rebuild: %s", r.err);
	cr_assert(strstr(r.err, "00000001.tws") && strstr(r.err, "left out of the series"), "%s", r.err);
	cr_assert_eq(sscanf(r.out, "rebuilt %*s %ld events", &events), 1, "%s", r.out);
	cr_assert(events > 0 && events < 14966, "the rest of the store: %ld events", events);
	tw_test_run_free(&r);
	free(seg);
	free(trail);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* --since counts back from $TW_NOW when set (as query does), so old logs can be looked at "as of"
 * a moment: 6 hours before the samples' end hold calls; 6 hours before a later day hold none. */
Test(cli_metrics, since_counts_back_from_tw_now, .timeout = 60)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	const char *ing[] = { tw_test_bin(), "ingest", "--quiet", "--store", store, trail, NULL };
	const char *show[] = { tw_test_bin(), "metrics", "show", "calls", "--store", store, "--since", "6h",
			       "--format", "csv", NULL };
	struct tw_test_run r;

	tw_test_run(&r, NULL, ing);
	cr_assert_eq(r.status, 0, "ingest: %s", r.err);
	tw_test_run_free(&r);
	setenv("TW_NOW", "2026-11-05T00:00:00Z", 1);
	tw_test_run(&r, NULL, show);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_gt(tw_test_count_lines(r.out, strlen(r.out)), 300, "6 h of minutes before the samples' end");
	tw_test_run_free(&r);
	setenv("TW_NOW", "2026-11-09T00:00:00Z", 1);
	tw_test_run(&r, NULL, show);
	unsetenv("TW_NOW");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_leq(tw_test_count_lines(r.out, strlen(r.out)), 1, "nothing in the 6 h before Nov 9: %s", r.out);
	tw_test_run_free(&r);
	free(trail);
	free(store);
	tw_test_tmpdir_free(tmp);
}
