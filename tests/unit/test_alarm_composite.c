/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_alarm_composite.c: composite alarm rules as CloudWatch writes them: parsing
 * (good rules, and bad ones with the column), precedence NOT > AND > OR, evaluation when a child
 * changes, cycles refused. Expected truth values worked out by hand. */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/alarm.h"
#include "tests/helpers/helpers.h"

#define T0 1795255200000LL

/* Children for rule evaluation: a=ALARM, o=OK, i=INSUFFICIENT_DATA, anything else unknown (INSUFFICIENT). */
static int states(void *ctx, const char *name)
{
	(void)ctx;
	if (!strcmp(name, "a") || !strcmp(name, "my alarm"))
		return TW_ALARM_ALARM;
	if (!strcmp(name, "o"))
		return TW_ALARM_OK;
	return TW_ALARM_INSUFFICIENT;
}

static int eval(const char *text)
{
	struct tw_alarm_rule *r;
	struct tw_err err;
	int v;

	cr_assert_eq(tw_alarm_rule_parse(text, &r, &err), TW_OK, "%s: %s", text, err.msg);
	v = tw_alarm_rule_eval(r, states, NULL);
	tw_alarm_rule_free(r);
	return v;
}

Test(alarm_composite, parses_and_evaluates)
{
	cr_assert_eq(eval("ALARM(a)"), 1);
	cr_assert_eq(eval("ALARM(\"a\")"), 1);
	cr_assert_eq(eval("ALARM(\"my alarm\")"), 1);
	cr_assert_eq(eval("OK(a)"), 0);
	cr_assert_eq(eval("OK(o)"), 1);
	cr_assert_eq(eval("INSUFFICIENT_DATA(i)"), 1);
	cr_assert_eq(eval("INSUFFICIENT_DATA(unknown)"), 1);
	cr_assert_eq(eval("TRUE"), 1);
	cr_assert_eq(eval("FALSE"), 0);
	cr_assert_eq(eval("NOT ALARM(a)"), 0);
	cr_assert_eq(eval("ALARM(a) AND NOT OK(o)"), 0);
	/* Precedence: AND binds tighter than OR: TRUE OR (FALSE AND FALSE) = TRUE;
	 * left-to-right would give (TRUE OR FALSE) AND FALSE = FALSE. */
	cr_assert_eq(eval("TRUE OR FALSE AND FALSE"), 1);
	cr_assert_eq(eval("(TRUE OR FALSE) AND FALSE"), 0);
	/* NOT binds tighter than AND: (NOT FALSE) AND FALSE = FALSE; NOT (FALSE AND FALSE) = TRUE. */
	cr_assert_eq(eval("NOT FALSE AND FALSE"), 0);
	cr_assert_eq(eval("NOT (FALSE AND FALSE)"), 1);
	cr_assert_eq(eval("  ( ALARM( a ) OR ALARM(b) )\tAND OK(o) "), 1);
}

static void bad(const char *text, const char *want)
{
	struct tw_alarm_rule *r = NULL;
	struct tw_err err;

	cr_assert_eq(tw_alarm_rule_parse(text, &r, &err), TW_EPARSE, "%s parsed", text);
	cr_assert_null(r);
	cr_assert(strstr(err.msg, want), "%s: got \"%s\", want \"%s\"", text, err.msg, want);
}

Test(alarm_composite, bad_rules_name_the_column)
{
	bad("", "column 1: expected ALARM");
	bad("ALARM(a) AND", "column 13: expected ALARM");
	bad("ALARM(a) ANDOK(b)", "column 10: expected AND, OR or the end");
	bad("ALARM a", "column 7: expected '(' after the state function");
	bad("ALARM()", "column 7: expected an alarm name");
	bad("ALARM(\"abc", "column 7: unterminated quoted alarm name");
	bad("(ALARM(a)", "column 10: expected ')'");
	bad("ALARM(a))", "column 9: unbalanced ')'");
	bad("alarm(a)", "column 1: unknown word");
	bad("OR ALARM(a)", "column 1: operator without a left operand");
	bad("ALARM(a) $", "column 10: expected AND, OR or the end");
}

Test(alarm_composite, deep_nesting_is_refused)
{
	char text[400];
	struct tw_alarm_rule *r;
	struct tw_err err;

	memset(text, '(', 150);
	strcpy(text + 150, "TRUE");
	cr_assert_eq(tw_alarm_rule_parse(text, &r, &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "nesting deeper than 100"), "%s", err.msg);
}

static struct tw_alarm_def metric(const char *name)
{
	struct tw_alarm_def d = { 0 };
	d.name = name;
	d.statistic = "Sum";
	d.period_s = 60;
	d.eval_periods = 1;
	d.threshold = 1;
	d.actions_enabled = 1;
	return d;
}

Test(alarm_composite, follows_its_children_and_refuses_cycles)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def a = metric("cpu"), b = metric("deploy"), c = { 0 }, c2 = { 0 };
	struct tw_alarm_point hi = { .t_ms = T0, .value = 5 }, lo = { .t_ms = T0, .value = 0 };
	static const char *topics[] = { "pager" };
	struct tw_err err;
	const struct tw_alarm_transition *tr;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(set, &a, T0, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_define(set, &b, T0, &err), TW_OK);
	c.name = "page-me";
	c.rule = "ALARM(cpu) AND NOT ALARM(\"deploy\")";
	c.alarm_actions = (struct tw_alarm_strs){ topics, 1 };
	c.actions_enabled = 1;
	/* Defined while both children are INSUFFICIENT_DATA: the rule is FALSE, so OK at once. */
	cr_assert_eq(tw_alarm_set_define(set, &c, T0, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	cr_assert_eq(tw_alarm_set_pending(set, 0)->new_state, TW_ALARM_OK);
	tw_alarm_set_pending_clear(set);
	/* cpu goes to ALARM: the child's transition, then the composite's. */
	cr_assert_eq(tw_alarm_set_eval(set, "cpu", &hi, 1, T0 + 60000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 2);
	tr = tw_alarm_set_pending(set, 1);
	cr_assert_str_eq(tr->alarm, "page-me");
	cr_assert_eq(tr->new_state, TW_ALARM_ALARM);
	cr_assert(tr->composite);
	cr_assert_str_eq(tr->actions.v[0], "pager");
	cr_assert_str_eq(tr->reason, "cpu transitioned to ALARM at 2026-11-21T10:01:00Z");
	cr_assert(strstr(tr->reason_data, "\"triggeringAlarms\":[{\"name\":\"cpu\""), "%s", tr->reason_data);
	tw_alarm_set_pending_clear(set);
	/* A deployment starts: the composite returns to OK. */
	cr_assert_eq(tw_alarm_set_eval(set, "deploy", &hi, 1, T0 + 120000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 2);
	cr_assert_eq(tw_alarm_set_pending(set, 1)->new_state, TW_ALARM_OK);
	tw_alarm_set_pending_clear(set);
	/* deploy back to OK, composite ALARM again; cpu unchanged: no transition for cpu. */
	cr_assert_eq(tw_alarm_set_eval(set, "cpu", &hi, 1, T0 + 180000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 0);
	cr_assert_eq(tw_alarm_set_eval(set, "deploy", &lo, 1, T0 + 180000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 2);
	tw_alarm_set_pending_clear(set);
	/* A composite over the composite is fine; one closing the loop is not. */
	c2.name = "meta";
	c2.rule = "ALARM(\"page-me\") OR ALARM(meta2)";
	cr_assert_eq(tw_alarm_set_define(set, &c2, T0, &err), TW_OK, "%s", err.msg);
	c2.name = "meta2";
	c2.rule = "OK(meta)";
	cr_assert_eq(tw_alarm_set_define(set, &c2, T0, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "cycle"), "%s", err.msg);
	c2.name = "self";
	c2.rule = "ALARM(self)";
	cr_assert_eq(tw_alarm_set_define(set, &c2, T0, &err), TW_EINVAL);
	/* Evaluating a composite with datapoints is a usage error. */
	cr_assert_eq(tw_alarm_set_eval(set, "page-me", &hi, 1, T0, &err), TW_EINVAL);
	/* A rule error names the alarm and the column. */
	c2.name = "broken";
	c2.rule = "ALARM(cpu) AND";
	cr_assert_eq(tw_alarm_set_define(set, &c2, T0, &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "alarm \"broken\": alarm rule: column 15"), "%s", err.msg);
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}

Test(alarm_composite, doubles_print_like_cloudwatch)
{
	char s[40];
	struct {
		double v;
		const char *want;
	} c[] = { { 5, "5.0" }, { 0.25, "0.25" }, { 10, "10.0" }, { 1234567, "1234567.0" }, { -3.5, "-3.5" },
		  { 0.1, "0.1" }, { 1e20, "1e+20" } };
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		tw_alarm_fmt_double(c[i].v, s, sizeof s);
		cr_expect_str_eq(s, c[i].want);
	}
}
