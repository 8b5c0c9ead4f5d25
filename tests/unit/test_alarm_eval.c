/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_alarm_eval.c: the metric alarm's decision: CloudWatch's missing-data table row by
 * row (tests/golden/alarm_missing.txt, written by hand from the documentation), M out of N
 * sequences, every comparison operator, transitions only on change, the reason sentence and the
 * StateReasonData JSON (expected texts derived by hand from CloudWatch's formats). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/alarm.h"
#include "tests/helpers/helpers.h"

/* 2026-11-21T10:00:00Z */
#define T0 1795255200000LL
#define MIN 60000LL

static struct tw_alarm_def base_def(const char *name)
{
	static const char *topics[] = { "ops" };
	struct tw_alarm_def d = { 0 };
	d.name = name;
	d.metric = "Errors";
	d.statistic = "Sum";
	d.period_s = 60;
	d.eval_periods = 3;
	d.to_alarm = 3;
	d.threshold = 1.0;
	d.cmp = TW_ALARM_GE;
	d.missing = TW_ALARM_MISSING_MISSING;
	d.alarm_actions = (struct tw_alarm_strs){ topics, 1 };
	d.ok_actions = (struct tw_alarm_strs){ topics, 1 };
	d.actions_enabled = 1;
	return d;
}

/* "0 - X" -> points from T0, one a minute: 0 => 0.0, X => 5.0, - => missing. */
static size_t points(const char *pat, struct tw_alarm_point *pts)
{
	size_t n = 0;
	for (const char *p = pat; *p; p++) {
		if (*p == ' ')
			continue;
		pts[n] = (struct tw_alarm_point){ .t_ms = T0 + (int64_t)n * MIN, .missing = *p == '-',
						  .value = *p == 'X' ? 5.0 : 0.0 };
		n++;
	}
	return n;
}

Test(alarm_eval, missing_data_table_matches_the_documentation)
{
	char path[4096], line[512];
	FILE *f;
	unsigned rows = 0;

	snprintf(path, sizeof path, "%s/tests/golden/alarm_missing.txt", tw_test_src());
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof line, f)) {
		unsigned m, n;
		char pat[64], treat[32], want[32];
		struct tw_alarm_point pts[16];
		struct tw_alarm_def d = base_def("t");
		size_t np;
		int mi;
		enum tw_alarm_state from_ok, from_alarm, from_ins;
		const char *got;

		if (line[0] == '#')
			continue;
		cr_assert_eq(sscanf(line, "M=%u N=%u | %63[-0X ] | %31s | %31s", &m, &n, pat, treat, want), 5, "%s", line);
		d.to_alarm = m;
		d.eval_periods = n;
		mi = tw_alarm_missing_parse(treat);
		cr_assert(mi >= 0, "%s", treat);
		d.missing = (enum tw_alarm_missing)mi;
		np = points(pat, pts);
		cr_assert_eq(np, 5, "%s", line);
		from_ok = tw_alarm_decide(&d, pts, np, TW_ALARM_OK, NULL, NULL, NULL);
		from_alarm = tw_alarm_decide(&d, pts, np, TW_ALARM_ALARM, NULL, NULL, NULL);
		from_ins = tw_alarm_decide(&d, pts, np, TW_ALARM_INSUFFICIENT, NULL, NULL, NULL);
		if (from_ok == TW_ALARM_OK && from_alarm == TW_ALARM_ALARM && from_ins == TW_ALARM_INSUFFICIENT)
			got = "retain";
		else if (from_ok == from_alarm && from_alarm == from_ins)
			got = tw_alarm_state_str(from_ok);
		else
			got = "depends-on-state-inconsistently";
		cr_expect_str_eq(got, want, "row: %s", line);
		rows++;
	}
	fclose(f);
	cr_assert_eq(rows, 40, "10 rows x 4 treatments, got %u", rows);
}

Test(alarm_eval, m_out_of_n_sequences)
{
	struct tw_alarm_def d = base_def("t");
	struct tw_alarm_point pts[8];
	unsigned B, P, F;

	d.eval_periods = 5;
	d.to_alarm = 3;
	/* 3 of 5 breaching, not consecutive: ALARM. */
	cr_assert_eq(tw_alarm_decide(&d, pts, points("X0X0X", pts), TW_ALARM_OK, &B, &P, &F), TW_ALARM_ALARM);
	cr_assert_eq(B, 3);
	cr_assert_eq(P, 5);
	cr_assert_eq(F, 0);
	/* 2 of 5: OK. */
	cr_assert_eq(tw_alarm_decide(&d, pts, points("X000X", pts), TW_ALARM_ALARM, NULL, NULL, NULL), TW_ALARM_OK);
	/* Breaching datapoints older than the last 5 do not count. */
	cr_assert_eq(tw_alarm_decide(&d, pts, points("XXX00000", pts), TW_ALARM_ALARM, NULL, NULL, NULL), TW_ALARM_OK);
	/* to_alarm 0 means N. */
	d.to_alarm = 0;
	cr_assert_eq(tw_alarm_decide(&d, pts, points("XXXX0", pts), TW_ALARM_OK, NULL, NULL, NULL), TW_ALARM_OK);
	cr_assert_eq(tw_alarm_decide(&d, pts, points("XXXXX", pts), TW_ALARM_OK, NULL, NULL, NULL), TW_ALARM_ALARM);
}

Test(alarm_eval, every_comparison_operator)
{
	struct tw_alarm_def d = base_def("t");
	struct tw_alarm_point p = { .t_ms = T0, .value = 1.0, .lower = 0.5, .upper = 2.0 };
	/* value, cmp, breaches? (threshold 1.0; band [0.5, 2.0]) */
	struct {
		double v;
		enum tw_alarm_cmp c;
		int want;
	} cases[] = {
		{ 1.0, TW_ALARM_GE, 1 }, { 0.99, TW_ALARM_GE, 0 }, { 1.0, TW_ALARM_GT, 0 }, { 1.01, TW_ALARM_GT, 1 },
		{ 1.0, TW_ALARM_LT, 0 }, { 0.99, TW_ALARM_LT, 1 }, { 1.0, TW_ALARM_LE, 1 }, { 1.01, TW_ALARM_LE, 0 },
		{ 0.4, TW_ALARM_BAND_OUTSIDE, 1 }, { 2.1, TW_ALARM_BAND_OUTSIDE, 1 }, { 0.5, TW_ALARM_BAND_OUTSIDE, 0 },
		{ 2.0, TW_ALARM_BAND_OUTSIDE, 0 }, { 2.1, TW_ALARM_BAND_GT_UPPER, 1 }, { 0.4, TW_ALARM_BAND_GT_UPPER, 0 },
		{ 0.4, TW_ALARM_BAND_LT_LOWER, 1 }, { 2.1, TW_ALARM_BAND_LT_LOWER, 0 }, { 1.0, TW_ALARM_BAND_LT_LOWER, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		d.cmp = cases[i].c;
		p.value = cases[i].v;
		cr_expect_eq(tw_alarm_breaches(&d, &p), cases[i].want, "case %zu: %g %s", i, cases[i].v,
			     tw_alarm_cmp_str(cases[i].c));
	}
	for (int c = 0; c < 7; c++)
		cr_assert_eq(tw_alarm_cmp_parse(tw_alarm_cmp_str((enum tw_alarm_cmp)c)), c);
	cr_assert_eq(tw_alarm_cmp_parse("GreaterThan"), -1);
}

Test(alarm_eval, statistics_accepted)
{
	cr_assert(tw_alarm_statistic_valid("Sum"));
	cr_assert(tw_alarm_statistic_valid("SampleCount"));
	cr_assert(tw_alarm_statistic_valid("p99"));
	cr_assert(tw_alarm_statistic_valid("p99.9"));
	cr_assert(!tw_alarm_statistic_valid("p101"));
	cr_assert(!tw_alarm_statistic_valid("sum"));
	cr_assert(!tw_alarm_statistic_valid("p"));
}

Test(alarm_eval, transitions_only_on_change_with_reason_and_data)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = base_def("HighErrors");
	struct tw_alarm_point pts[8];
	const struct tw_alarm_transition *tr;
	struct tw_err err;
	int64_t now = T0 + 3 * MIN + 30000;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_npending(set), 0, "a new alarm starts in INSUFFICIENT_DATA silently");
	/* values 3.0, 4.0, 5.0 at 10:00, 10:01, 10:02 */
	pts[0] = (struct tw_alarm_point){ .t_ms = T0, .value = 3.0 };
	pts[1] = (struct tw_alarm_point){ .t_ms = T0 + MIN, .value = 4.0 };
	pts[2] = (struct tw_alarm_point){ .t_ms = T0 + 2 * MIN, .value = 5.0 };
	cr_assert_eq(tw_alarm_set_eval(set, "HighErrors", pts, 3, now, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	tr = tw_alarm_set_pending(set, 0);
	cr_assert_eq(tr->old_state, TW_ALARM_INSUFFICIENT);
	cr_assert_eq(tr->new_state, TW_ALARM_ALARM);
	cr_assert_eq(tr->actions.n, 1);
	cr_assert_str_eq(tr->actions.v[0], "ops");
	/* CloudWatch's sentence: breaching datapoints most recent first, dd/mm/yy times. */
	cr_assert_str_eq(tr->reason,
			 "Threshold Crossed: 3 out of the last 3 datapoints [5.0 (21/11/26 10:02:00), 4.0 (21/11/26 10:01:00), "
			 "3.0 (21/11/26 10:00:00)] were greater than or equal to the threshold (1.0) (minimum 3 datapoints "
			 "for INSUFFICIENT_DATA -> ALARM transition).");
	cr_assert_str_eq(tr->reason_data,
			 "{\"version\":\"1.0\",\"queryDate\":\"2026-11-21T10:03:30.000+0000\","
			 "\"startDate\":\"2026-11-21T10:00:00.000+0000\",\"statistic\":\"Sum\",\"period\":60,"
			 "\"recentDatapoints\":[3.0,4.0,5.0],\"threshold\":1.0,\"evaluatedDatapoints\":["
			 "{\"timestamp\":\"2026-11-21T10:02:00.000+0000\",\"value\":5.0},"
			 "{\"timestamp\":\"2026-11-21T10:01:00.000+0000\",\"value\":4.0},"
			 "{\"timestamp\":\"2026-11-21T10:00:00.000+0000\",\"value\":3.0}]}");
	tw_alarm_set_pending_clear(set);
	/* Same state again: nothing. */
	pts[0].value = 9.5;
	cr_assert_eq(tw_alarm_set_eval(set, "HighErrors", pts, 3, now + MIN, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 0);
	/* Back to OK: one of three under the threshold is enough for 3-of-3 (minimum N-M+1 = 1). */
	pts[2].value = 0.25;
	cr_assert_eq(tw_alarm_set_eval(set, "HighErrors", pts, 3, now + 2 * MIN, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	tr = tw_alarm_set_pending(set, 0);
	cr_assert_eq(tr->new_state, TW_ALARM_OK);
	cr_assert_str_eq(tr->reason, "Threshold Crossed: 1 out of the last 3 datapoints [0.25 (21/11/26 10:02:00)] was "
				     "not greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition).");
	tw_alarm_set_pending_clear(set);
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}

Test(alarm_eval, reasons_for_missing_data_and_bands)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = base_def("Quiet");
	struct tw_alarm_point pts[8];
	struct tw_err err;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	d.missing = TW_ALARM_MISSING_BREACHING;
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_eval(set, "Quiet", pts, points("---", pts), T0 + 3 * MIN, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	cr_assert_str_eq(tw_alarm_set_pending(set, 0)->reason,
			 "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were "
			 "treated as [Breaching].");
	tw_alarm_set_pending_clear(set);

	d = base_def("Missing");
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	d.eval_periods = 1;
	d.to_alarm = 1;
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	pts[0] = (struct tw_alarm_point){ .t_ms = T0, .value = 0.0 };
	cr_assert_eq(tw_alarm_set_eval(set, "Missing", pts, 1, T0 + MIN, &err), TW_OK);
	cr_assert_str_eq(tw_alarm_set_pending(set, 0)->reason,
			 "Threshold Crossed: 1 out of the last 1 datapoints [0.0 (21/11/26 10:00:00)] was not greater than "
			 "or equal to the threshold (1.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> OK transition).");
	tw_alarm_set_pending_clear(set);
	pts[0].missing = 1;
	cr_assert_eq(tw_alarm_set_eval(set, "Missing", pts, 1, T0 + 2 * MIN, &err), TW_OK);
	cr_assert_str_eq(tw_alarm_set_pending(set, 0)->reason, "Insufficient Data: 1 datapoint was unknown.");
	tw_alarm_set_pending_clear(set);

	d = base_def("Band");
	d.cmp = TW_ALARM_BAND_GT_UPPER;
	d.eval_periods = 1;
	d.to_alarm = 1;
	d.statistic = "p99";
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	pts[0] = (struct tw_alarm_point){ .t_ms = T0, .value = 42.0, .lower = 10.0, .upper = 30.5 };
	cr_assert_eq(tw_alarm_set_eval(set, "Band", pts, 1, T0 + MIN, &err), TW_OK);
	cr_assert_str_eq(tw_alarm_set_pending(set, 0)->reason,
			 "Thresholds Crossed: 1 out of the last 1 datapoints [42.0 (21/11/26 10:00:00) [10.0, 30.5]] was "
			 "greater than the upper thresholds (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition).");
	cr_assert_str_eq(tw_alarm_set_pending(set, 0)->reason_data,
			 "{\"version\":\"1.0\",\"queryDate\":\"2026-11-21T10:01:00.000+0000\",\"startDate\":"
			 "\"2026-11-21T10:00:00.000+0000\",\"statistic\":\"p99\",\"period\":60,\"recentDatapoints\":[42.0],"
			 "\"recentLowerThresholds\":[10.0],\"recentUpperThresholds\":[30.5],\"evaluatedDatapoints\":["
			 "{\"timestamp\":\"2026-11-21T10:00:00.000+0000\",\"value\":42.0}]}");
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}

Test(alarm_eval, disabled_actions_and_set_state)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = base_def("Quiet");
	struct tw_alarm_point pts[4];
	struct tw_err err;

	d.actions_enabled = 0;
	d.eval_periods = d.to_alarm = 1;
	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_eval(set, "Quiet", pts, points("X", pts), T0 + MIN, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	cr_assert_eq(tw_alarm_set_pending(set, 0)->actions.n, 0, "actions disabled: a transition but no action");
	tw_alarm_set_pending_clear(set);
	/* SetAlarmState forces OK until the next evaluation. */
	cr_assert_eq(tw_alarm_set_set_state(set, "Quiet", TW_ALARM_OK, "testing the pager", T0 + 2 * MIN, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	cr_assert_str_eq(tw_alarm_set_pending(set, 0)->reason, "testing the pager");
	tw_alarm_set_pending_clear(set);
	cr_assert_eq(tw_alarm_set_eval(set, "Quiet", pts, points("X", pts), T0 + 3 * MIN, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	cr_assert_eq(tw_alarm_set_pending(set, 0)->new_state, TW_ALARM_ALARM);
	cr_assert_eq(tw_alarm_set_set_state(set, "Nope", TW_ALARM_OK, "x", T0, &err), TW_ENOENT);
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}

Test(alarm_eval, bad_definitions_rejected)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = base_def("Bad");
	struct tw_err err;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	d.to_alarm = 4;
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "datapoints to alarm (4) above evaluation periods (3)"), "%s", err.msg);
	d = base_def("Bad");
	d.statistic = "Median";
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "Median"), "%s", err.msg);
	d = base_def("");
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_EINVAL);
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}
