/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_alarm_cli.c: `trailwatch alarms` and `trailwatch silence` end to end on a state
 * directory built through the library: the aligned table and JSON of list, history with a name
 * filter and a torn line (exit 1), set-state, --store DIR meaning DIR/alarms, silences added,
 * listed and expired, usage errors (exit 2) and --help. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alerts/alarm.h"
#include "tests/helpers/helpers.h"

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* <dir>/alarms with "api-errors" in ALARM and "cpu" in INSUFFICIENT_DATA. */
static char *make_state(const char *dir)
{
	char *ad = tw_test_join(dir, "alarms");
	struct tw_alarm_set *set;
	struct tw_alarm_def d = { 0 };
	struct tw_alarm_point p = { .t_ms = wall_ms() - 120000, .value = 9 };
	struct tw_err err;

	cr_assert_eq(tw_alarm_set_open(ad, &set, &err), TW_OK, "%s", err.msg);
	d.name = "api-errors";
	d.statistic = "Sum";
	d.period_s = 60;
	d.eval_periods = 1;
	d.threshold = 5;
	cr_assert_eq(tw_alarm_set_define(set, &d, wall_ms() - 60000, &err), TW_OK);
	cr_assert_eq(tw_alarm_set_eval(set, "api-errors", &p, 1, wall_ms() - 30000, &err), TW_OK);
	d.name = "cpu";
	cr_assert_eq(tw_alarm_set_define(set, &d, wall_ms() - 60000, &err), TW_OK);
	tw_alarm_set_close(set);
	return ad;
}

Test(alarm_cli, list_table_and_json)
{
	char *dir = tw_test_tmpdir(), *ad = make_state(dir);
	const char *bin = tw_test_bin();
	struct tw_test_run r;
	char *line2, *line3;

	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "list", "--state", ad, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 3, "%s", r.out);
	/* Aligned: the STATE column starts at the same offset on every line (name width 10 + 2). */
	cr_assert(!strncmp(r.out, "NAME        STATE              SINCE", 36), "%s", r.out);
	line2 = strchr(r.out, '\n') + 1;
	line3 = strchr(line2, '\n') + 1;
	cr_assert(!strncmp(line2, "api-errors  ALARM              ", 31), "%s", r.out);
	cr_assert(!strncmp(line3, "cpu         INSUFFICIENT_DATA  - ", 33), "%s", r.out);
	cr_assert(tw_test_contains(r.out, r.nout, "Threshold Crossed: 1 out of the last 1 datapoints [9.0"), "%s", r.out);
	tw_test_run_free(&r);

	/* --store DIR means DIR/alarms; JSON: one object per alarm. */
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "list", "--store", dir, "--format", "json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	{
		json_t *j = json_loads(r.out, JSON_DISABLE_EOF_CHECK, NULL);
		cr_assert_not_null(j, "%s", r.out);
		cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "api-errors");
		cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "ALARM");
		cr_assert(json_is_object(json_object_get(j, "reason_data")));
		json_decref(j);
	}
	tw_test_run_free(&r);
	free(ad);
	tw_test_tmpdir_free(dir);
}

Test(alarm_cli, history_set_state_and_torn_line)
{
	char *dir = tw_test_tmpdir(), *ad = make_state(dir), *hist;
	const char *bin = tw_test_bin();
	struct tw_test_run r;
	FILE *f;

	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "set-state", "--state", ad, "cpu", "ALARM", "--reason",
						"testing the pager", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "history", "--state", ad, "cpu", "--since", "1h", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(tw_test_contains(r.out, r.nout, "INSUFFICIENT_DATA -> ALARM"), "%s", r.out);
	cr_assert(tw_test_contains(r.out, r.nout, "testing the pager"), "%s", r.out);
	cr_assert(!tw_test_contains(r.out, r.nout, "api-errors"), "NAME filters: %s", r.out);
	tw_test_run_free(&r);
	/* A torn last line: the rest is shown, exit 1. */
	hist = tw_test_join(ad, "history.jsonl");
	f = fopen(hist, "a");
	fputs("{\"time\":", f);
	fclose(f);
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "history", "--state", ad, "--format", "json", NULL });
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 4, "2 creations, 1 state update, 1 set-state: %s", r.out);
	cr_assert(tw_test_contains(r.err, r.nerr, "1 unreadable line skipped"), "%s", r.err);
	tw_test_run_free(&r);
	/* Usage errors. */
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "set-state", "--state", ad, "cpu", "BROKEN", "--reason", "x", NULL });
	cr_assert_eq(r.status, 2);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "set-state", "--state", ad, "nope", "OK", "--reason", "x", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "alarm \"nope\" is not known"), "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "list", "--state", "/nonexistent/tw", NULL });
	cr_assert_eq(r.status, 3);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "alarms", "--help", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(tw_test_contains(r.out, r.nout, "usage: trailwatch alarms list"));
	tw_test_run_free(&r);
	free(hist);
	free(ad);
	tw_test_tmpdir_free(dir);
}

Test(alarm_cli, silence_add_list_expire)
{
	char *dir = tw_test_tmpdir(), *ad = tw_test_join(dir, "alarms");
	const char *bin = tw_test_bin();
	struct tw_test_run r;
	char id[32];

	cr_assert_eq(mkdir(ad, 0755), 0);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "add", "--state", ad, "--match", "alarm=~db-.*", "--match",
						"severity!=low", "--for", "2h", "--comment", "db maintenance", "--author",
						"alice", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.nout, 17, "an id and a newline: %s", r.out);
	snprintf(id, sizeof id, "%.16s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "list", "--state", ad, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(tw_test_contains(r.out, r.nout, id));
	cr_assert(tw_test_contains(r.out, r.nout, "  active  "), "%s", r.out);
	cr_assert(tw_test_contains(r.out, r.nout, "alarm=~db-.*,severity!=low"), "%s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "expire", "--state", ad, id, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "list", "--state", ad, NULL });
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 1, "expired ones hidden: %s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "list", "--state", ad, "--all", "--format", "json", NULL });
	cr_assert(tw_test_contains(r.out, r.nout, "\"state\":\"expired\""), "%s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "expire", "--state", ad, "0000000000000000", NULL });
	cr_assert_eq(r.status, 2);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "add", "--state", ad, "--match", "alarm=~(", "--for", "2h",
						"--comment", "x", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "missing closing parenthesis"), "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "add", "--state", ad, "--match", "alarm=x", "--comment", "x", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "--for"), "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, (const char *[]){ bin, "silence", "--help", NULL });
	cr_assert_eq(r.status, 0);
	tw_test_run_free(&r);
	free(ad);
	tw_test_tmpdir_free(dir);
}
