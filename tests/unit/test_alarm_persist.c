/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_alarm_persist.c: the alarm set's state directory: a restart in ALARM restores the
 * state without re-firing, a changed definition keeps the state and records a ConfigurationUpdate,
 * the history is JSON lines and a torn last line does not spoil the next record. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/alarm.h"
#include "tests/helpers/helpers.h"

#define T0 1795255200000LL

static struct tw_alarm_def def(double threshold)
{
	static const char *topics[] = { "ops" };
	struct tw_alarm_def d = { 0 };
	d.name = "db/errors high";
	d.statistic = "Sum";
	d.period_s = 60;
	d.eval_periods = 1;
	d.threshold = threshold;
	d.alarm_actions = (struct tw_alarm_strs){ topics, 1 };
	d.actions_enabled = 1;
	return d;
}

/* Counts history lines of type `type` (every line must be valid JSON except a torn one if allowed). */
static size_t count_type(const char *dir, const char *type, int allow_torn)
{
	char *path = tw_test_join(dir, "history.jsonl");
	char *text = tw_test_read_file(path, NULL), *save = NULL, *line;
	size_t n = 0, bad = 0;

	cr_assert_not_null(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j) {
			bad++;
			continue;
		}
		if (!strcmp(json_string_value(json_object_get(j, "type")), type))
			n++;
		json_decref(j);
	}
	cr_assert(bad <= (size_t)allow_torn, "%zu unreadable history lines", bad);
	free(text);
	free(path);
	return n;
}

Test(alarm_persist, restart_in_alarm_does_not_refire)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = def(1);
	struct tw_alarm_point hi = { .t_ms = T0, .value = 7 };
	struct tw_alarm_info *info;
	size_t n;
	struct tw_err err;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_eval(set, d.name, &hi, 1, T0 + 60000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	tw_alarm_set_close(set);

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	/* Known from its state file before it is defined (what the CLI sees). */
	cr_assert_eq(tw_alarm_set_list(set, &info, &n, &err), TW_OK);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(info[0].name, "db/errors high");
	cr_assert_eq(info[0].state, TW_ALARM_ALARM);
	cr_assert_eq(info[0].since_ms, T0 + 60000);
	cr_assert(strstr(info[0].reason, "Threshold Crossed: 1 out of the last 1 datapoints [7.0"), "%s", info[0].reason);
	cr_assert_eq(info[0].defined, 0);
	free(info);
	cr_assert_eq(tw_alarm_set_define(set, &d, T0 + 120000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 0, "no transition on restart");
	/* Still ALARM: nothing fires again. */
	hi.t_ms += 120000;
	cr_assert_eq(tw_alarm_set_eval(set, d.name, &hi, 1, T0 + 180000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 0);
	cr_assert_eq(count_type(dir, "StateUpdate", 0), 1);
	cr_assert_eq(count_type(dir, "ConfigurationUpdate", 0), 1, "only the creation");
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}

Test(alarm_persist, changed_definition_keeps_state_and_records_update)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = def(1);
	struct tw_alarm_point hi = { .t_ms = T0, .value = 7 };
	struct tw_alarm_info *info;
	size_t n;
	struct tw_err err;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_eval(set, d.name, &hi, 1, T0 + 60000, &err), TW_OK);
	tw_alarm_set_close(set);

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	d = def(10); /* threshold changed */
	cr_assert_eq(tw_alarm_set_define(set, &d, T0 + 120000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 0);
	cr_assert_eq(tw_alarm_set_list(set, &info, &n, &err), TW_OK);
	cr_assert_eq(info[0].state, TW_ALARM_ALARM, "state kept");
	free(info);
	cr_assert_eq(count_type(dir, "ConfigurationUpdate", 0), 2, "created, then updated");
	/* The same definition again: nothing more. */
	cr_assert_eq(tw_alarm_set_define(set, &d, T0 + 130000, &err), TW_OK);
	cr_assert_eq(count_type(dir, "ConfigurationUpdate", 0), 2);
	/* Under the new threshold 7 is fine: OK. */
	cr_assert_eq(tw_alarm_set_eval(set, d.name, &hi, 1, T0 + 180000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(set), 1);
	cr_assert_eq(tw_alarm_set_pending(set, 0)->new_state, TW_ALARM_OK);
	tw_alarm_set_close(set);
	tw_test_tmpdir_free(dir);
}

Test(alarm_persist, torn_history_line_is_tolerated)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *set;
	struct tw_alarm_def d = def(1);
	struct tw_alarm_point hi = { .t_ms = T0, .value = 7 };
	char *hist = tw_test_join(dir, "history.jsonl");
	FILE *f;
	struct tw_err err;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(set, &d, T0, &err), TW_OK);
	/* A crash in the middle of an append left half a line. */
	f = fopen(hist, "a");
	cr_assert_not_null(f);
	fputs("{\"time\":\"2026-11-21T10:00:00Z\",\"alarm\":\"x\",\"ty", f);
	fclose(f);
	cr_assert_eq(tw_alarm_set_eval(set, d.name, &hi, 1, T0 + 60000, &err), TW_OK, "%s", err.msg);
	/* The torn line stays one bad line; the new record is whole and readable. */
	cr_assert_eq(count_type(dir, "StateUpdate", 1), 1);
	cr_assert_eq(count_type(dir, "ConfigurationUpdate", 1), 1);
	tw_alarm_set_close(set);
	free(hist);
	tw_test_tmpdir_free(dir);
}

Test(alarm_persist, corrupt_state_file_is_named)
{
	char *dir = tw_test_tmpdir();
	char *sdir = tw_test_join(dir, "state");
	struct tw_alarm_set *set;
	struct tw_err err;
	char *p;

	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_OK, "%s", err.msg);
	tw_alarm_set_close(set);
	p = tw_test_write_str(sdir, "x.json", "{\"name\": \"x\", \"state\": \"MAYBE\"}");
	cr_assert_eq(tw_alarm_set_open(dir, &set, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "x.json"), "%s", err.msg);
	free(p);
	free(sdir);
	tw_test_tmpdir_free(dir);
}

Test(alarm_persist, daemon_adopts_set_state_from_another_process)
{
	char *dir = tw_test_tmpdir();
	struct tw_alarm_set *daemon, *cli;
	struct tw_alarm_def d = def(1);
	struct tw_err err;
	const struct tw_alarm_transition *tr;

	cr_assert_eq(tw_alarm_set_open(dir, &daemon, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_define(daemon, &d, T0, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_sync(daemon, T0 + 1000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(daemon), 0, "nothing changed on disk");
	/* `trailwatch alarms set-state` in another process. */
	cr_assert_eq(tw_alarm_set_open(dir, &cli, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_set_state(cli, d.name, TW_ALARM_ALARM, "testing the pager", T0 + 5000, &err), TW_OK);
	tw_alarm_set_close(cli);
	cr_assert_eq(tw_alarm_set_sync(daemon, T0 + 6000, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_alarm_set_npending(daemon), 1);
	tr = tw_alarm_set_pending(daemon, 0);
	cr_assert_eq(tr->new_state, TW_ALARM_ALARM);
	cr_assert_eq(tr->time_ms, T0 + 5000);
	cr_assert_str_eq(tr->reason, "testing the pager");
	cr_assert_eq(tr->actions.n, 1, "SetAlarmState fires the actions");
	tw_alarm_set_pending_clear(daemon);
	cr_assert_eq(tw_alarm_set_sync(daemon, T0 + 7000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_npending(daemon), 0, "adopted once");
	tw_alarm_set_close(daemon);
	tw_test_tmpdir_free(dir);
}
