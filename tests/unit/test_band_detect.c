/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_band_detect.c: `trailwatch detect` end to end: the output layout (one row per
 * input row, timestamps and values echoed byte for byte), causality (a prefix of the input gives
 * a prefix of the output), bad rows named by file:line and skipped with exit 1, the timestamp forms
 * it accepts, and usage errors. Series are built here; nothing is compared with stored output. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"

/* NAB-style CSV: header and n rows at 5-minute steps from 2014-02-14 14:30:00, a level shift at
 * row n/2 and a little deterministic wiggle. Returns malloc'd text. */
static char *nab_csv(int n)
{
	size_t cap = 64 + (size_t)n * 48, len = 0;
	char *s = malloc(cap);

	len += (size_t)snprintf(s + len, cap - len, "timestamp,value\n");
	for (int i = 0; i < n; i++) {
		int mins = 14 * 60 + 30 + 5 * i;
		int day = 14 + mins / 1440, hh = (mins % 1440) / 60, mm = mins % 60;
		double v = 10 + (i % 7) * 0.1 + (i >= n / 2 ? 5 : 0);
		len += (size_t)snprintf(s + len, cap - len, "2014-02-%02d %02d:%02d:00,%.3f\n", day, hh, mm, v);
	}
	return s;
}

/* The i-th line (0-based) of text, as a malloc'd string without its newline. */
static char *line_at(const char *text, int i)
{
	const char *p = text, *e;
	while (i-- > 0 && (p = strchr(p, '\n')) != NULL)
		p++;
	cr_assert(p != NULL && *p, "no line %d", i);
	e = strchr(p, '\n');
	return strndup(p, e ? (size_t)(e - p) : strlen(p));
}

Test(band_detect, echoes_rows_and_adds_a_score_in_0_1)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir(), *csv = nab_csv(400), *path = tw_test_write_str(dir, "s.csv", csv);
	struct tw_test_run r;

	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", path, NULL });
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 401);
	{
		char *h = line_at(r.out, 0);
		cr_assert_str_eq(h, "timestamp,value,anomaly_score");
		free(h);
	}
	for (int i = 1; i <= 400; i++) {
		char *in = line_at(csv, i), *out = line_at(r.out, i), *comma;
		double sc;

		/* "ts,value," then the score */
		cr_assert_eq(strncmp(out, in, strlen(in)), 0, "row %d: '%s' does not start with '%s'", i, out, in);
		cr_assert_eq(out[strlen(in)], ',');
		comma = strrchr(out, ',');
		sc = strtod(comma + 1, NULL);
		cr_assert(sc >= 0 && sc <= 1, "row %d: score %f", i, sc);
		free(in);
		free(out);
	}
	tw_test_run_free(&r);
	free(csv);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(band_detect, is_causal_a_prefix_gives_a_prefix)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir(), *full = nab_csv(600), *cut, *pf, *pp;
	struct tw_test_run rf, rp;
	const char *p = full;

	/* the first 1 + 350 lines (header and rows up to and after the shift at row 300) */
	for (int i = 0; i < 351; i++)
		p = strchr(p, '\n') + 1;
	cut = strndup(full, (size_t)(p - full));
	pf = tw_test_write_str(dir, "full.csv", full);
	pp = tw_test_write_str(dir, "prefix.csv", cut);
	tw_test_run(&rf, NULL, (const char *[]){ bin, "detect", pf, NULL });
	tw_test_run(&rp, NULL, (const char *[]){ bin, "detect", pp, NULL });
	cr_assert_eq(rf.status, 0);
	cr_assert_eq(rp.status, 0);
	cr_assert_eq(tw_test_count_lines(rp.out, rp.nout), 351);
	cr_assert_eq(memcmp(rf.out, rp.out, rp.nout), 0, "prefix run differs from the full run's first rows");
	/* and the shift at row 300 scored something in the prefix run already */
	{
		double best = 0;
		for (int i = 301; i <= 305; i++) {
			char *l = line_at(rp.out, i);
			double sc = strtod(strrchr(l, ',') + 1, NULL);
			best = sc > best ? sc : best;
			free(l);
		}
		cr_assert_geq(best, 0.9, "level shift of 5 over a 0.6 range scored %f", best);
	}
	tw_test_run_free(&rf);
	tw_test_run_free(&rp);
	free(full);
	free(cut);
	free(pf);
	free(pp);
	tw_test_tmpdir_free(dir);
}

Test(band_detect, bad_rows_are_named_skipped_and_exit_1)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *path = tw_test_write_str(dir, "bad.csv",
				       "timestamp,value\n"
				       "2014-02-14 14:30:00,1.5\n"
				       "2014-02-14 14:35:00,abc\n"
				       "2014-02-30 14:40:00,1.5\n"
				       "2014-02-14 14:45:00\n"
				       "2014-02-14 14:50:00,1.7\n");
	struct tw_test_run r;

	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", path, NULL });
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 3, "output: %s", r.out);
	cr_assert(strstr(r.err, "bad.csv:3: value is not a finite number") != NULL, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "bad.csv:4:") != NULL && strstr(r.err, "day out of range") != NULL, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "bad.csv:5: expected two columns") != NULL, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "2014-02-14 14:50:00,1.7,") != NULL);
	tw_test_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(band_detect, accepts_iso_and_epoch_timestamps_and_echoes_them)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *iso = tw_test_write_str(dir, "iso.csv",
				      "time,v\n2014-02-14T14:30:00Z,1\n2014-02-14T14:35:00.500+00:00,2\n");
	char *ep = tw_test_write_str(dir, "ep.csv", "timestamp,value\n1392388200,1\n1392388500.25,2\n1392388800000,3\n");
	struct tw_test_run r;

	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", iso, NULL });
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "\n2014-02-14T14:30:00Z,1,") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "\n2014-02-14T14:35:00.500+00:00,2,") != NULL, "%s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", "--format", "json", "--band", ep, NULL });
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 3);
	cr_assert(strstr(r.out, "{\"timestamp\":\"1392388500.25\",\"value\":2,\"anomaly_score\":") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "\"confidence\":") != NULL);
	tw_test_run_free(&r);
	free(iso);
	free(ep);
	tw_test_tmpdir_free(dir);
}

Test(band_detect, usage_errors_and_help)
{
	const char *bin = tw_test_bin();
	struct tw_test_run r;

	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", "--help", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: trailwatch detect") != NULL);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", NULL });
	cr_assert_eq(r.status, 2);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", "--k", "-1", "x.csv", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "--k") != NULL, "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "detect", "/nonexistent/series.csv", NULL });
	cr_assert_eq(r.status, 3);
	cr_assert(strstr(r.err, "/nonexistent/series.csv") != NULL, "%s", r.err);
	tw_test_run_free(&r);
}
