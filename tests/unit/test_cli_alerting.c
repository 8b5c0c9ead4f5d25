/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_alerting.c: the alarms inside `trailwatch run`, end to end: CloudTrail
 * records written by the test (so every count is known by construction) go through a config with
 * metric alarms, a composite alarm and an event rule; the run with --exit-at-end evaluates the
 * alarms on event time and delivers the emails to the default maildir (STORE/mail). Checked: the
 * alarm fires once with its evidence in the mail, a restart (same files, then later quiet events)
 * does not fire it again, an event rule publishes each matching record once, a silence (missing
 * data as breaching) raises its alarm, an anomaly band catches a burst above what it learned, and a
 * composite follows its children. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"

#define T0 "2026-11-02T10:"

/* Appends one CloudTrail record at minute `min` and second `sec` after 10:00 (min may be negative,
 * down to -600: midnight). */
static void rec(FILE *f, int min, int sec, const char *source, const char *name, const char *user, const char *error,
		int id)
{
	fprintf(f,
		"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"principalId\":\"AIDA%d\","
		"\"arn\":\"arn:aws:iam::111122223333:user/%s\",\"accountId\":\"111122223333\",\"userName\":\"%s\"},"
		"\"eventTime\":\"2026-11-02T%02d:%02d:%02dZ\",\"eventSource\":\"%s\",\"eventName\":\"%s\","
		"\"awsRegion\":\"eu-west-1\",\"sourceIPAddress\":\"198.51.100.%d\",\"userAgent\":\"aws-cli/2.15.0\","
		"%s%s%s\"requestParameters\":{\"bucketName\":\"data-%d\"},\"responseElements\":null,"
		"\"eventID\":\"00000000-0000-4000-8000-%012d\",\"readOnly\":false,\"eventType\":\"AwsApiCall\","
		"\"recipientAccountId\":\"111122223333\"}\n",
		id, user, user, (600 + min) / 60, (600 + min) % 60, sec, source, name, id % 200 + 1, error ? "\"errorCode\":\"" : "",
		error ? error : "", error ? "\"," : "", id % 3, id);
}

static char *write_cfg(const char *dir, const char *store, const char *files, const char *extra)
{
	char text[8192];
	snprintf(text, sizeof text,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\"]}}],"
		 "\"metrics\":{\"period\":\"1m\",\"lateness\":\"1m\"},%s}",
		 store, files, extra);
	return tw_test_write_str(dir, "tw.json", text);
}

static char g_log[65536]; /* the last run's log (its stderr), shown when an assertion fails */

static void run_cfg(const char *cfg)
{
	const char *argv[] = { tw_test_bin(), "run", "--config", cfg, "--exit-at-end", NULL };
	struct tw_test_run r;
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 0, "run: %s", r.err);
	snprintf(g_log, sizeof g_log, "%s", r.err ? r.err : "");
	tw_test_run_free(&r);
}

/* The mails in STORE/mail/new whose Subject line contains `needle`; *all gets every mail. */
static int mails(const char *store, const char *needle, int *all, char **first)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	int n = 0;

	*all = 0;
	snprintf(path, sizeof path, "%s/mail/new", store);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		char f[8192], *text, *subj;
		size_t len;
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof f, "%s/%s", path, e->d_name);
		text = tw_test_read_file(f, &len);
		(*all)++;
		{ /* undo quoted-printable soft line breaks so that sentences can be searched */
			char *o = text;
			for (char *p = text; *p; p++) {
				if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
					p += 2;
					continue;
				}
				*o++ = *p;
			}
			*o = 0;
		}
		subj = strstr(text, "\nSubject: ");
		if (subj && strstr(subj, needle) && strstr(subj, needle) < strchr(subj + 1, '\n')) {
			n++;
			if (first && !*first)
				*first = text, text = NULL;
		}
		free(text);
	}
	closedir(d);
	return n;
}

static const char ALARMS[] =
	"\"alarms\":[{\"name\":\"denied-burst\",\"metric\":\"unauthorized_api_calls_metric\",\"statistic\":\"Sum\","
	"\"period\":\"5m\",\"threshold\":3,\"comparison\":\"GreaterThanOrEqualToThreshold\","
	"\"treat_missing_data\":\"notBreaching\",\"alarm_actions\":[\"alarms\"],\"severity\":\"high\"},"
	"{\"name\":\"s3-silent\",\"metric\":\"calls\",\"dimensions\":{\"eventSource\":\"s3.amazonaws.com\"},"
	"\"period\":\"5m\",\"evaluation_periods\":2,\"threshold\":1,\"comparison\":\"LessThanThreshold\","
	"\"treat_missing_data\":\"breaching\",\"alarm_actions\":[\"alarms\"]},"
	"{\"name\":\"dynamo-band\",\"metric\":\"calls\",\"dimensions\":{\"eventName\":\"GetItem\"},"
	"\"period\":\"1m\",\"comparison\":\"GreaterThanUpperThreshold\",\"band\":3,"
	"\"treat_missing_data\":\"notBreaching\",\"alarm_actions\":[\"alarms\"]},"
	"{\"name\":\"denied-not-silent\",\"rule\":\"ALARM(\\\"denied-burst\\\") AND NOT ALARM(\\\"s3-silent\\\")\","
	"\"alarm_actions\":[\"alarms\"]}],"
	"\"rules\":[{\"name\":\"stop-logging\",\"pattern\":\"{ $.eventName = StopLogging }\",\"topic\":\"alarms\"}],"
	"\"notifier\":{\"group_wait\":\"0s\",\"group_interval\":\"1m\",\"repeat_interval\":\"0s\","
	"\"topics\":[{\"name\":\"alarms\"}],\"subscriptions\":[{\"topic\":\"alarms\",\"protocol\":\"maildir\","
	"\"endpoint\":\"%s/mail\"}]}";

Test(cli_alerting, alarm_rule_and_silence_fire_once_with_evidence_and_not_again_after_restarts, .timeout = 120)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *f1 = tw_test_join(tmp, "a.json"), *f2 = tw_test_join(tmp, "b.json");
	char extra[4096], *cfg, *mail = NULL;
	FILE *f;
	int all, id = 1;

	/* a.json: 10:00-10:39, one s3 GetObject a minute; 10:12 five AccessDenied calls by mallory (a
	 * 5-minute Sum of 5 >= 3: denied-burst fires for the period 10:10-10:15, then goes OK); two
	 * StopLogging events (the rule publishes each); s3 silent 10:20-10:29 (two periods of no data,
	 * breaching: s3-silent fires for 10:20-10:30) */
	f = fopen(f1, "w");
	cr_assert_not_null(f);
	/* ten hours of a quiet background first (one call every 10 minutes): far more alarm periods
	 * than an alarm keeps in memory, all closed at once when the files backfill ends */
	for (int m = -600; m < 0; m += 10)
		rec(f, m, 30, "s3.amazonaws.com", "ListBuckets", "carol", NULL, id++);
	for (int m = 0; m < 40; m++)
		if (m < 20 || m >= 30)
			rec(f, m, 5, "s3.amazonaws.com", "GetObject", "alice", NULL, id++);
	for (int i = 0; i < 5; i++)
		rec(f, 12, 10 + i, "iam.amazonaws.com", "DeleteUserPolicy", "mallory", "AccessDenied", id++);
	/* dynamodb GetItem: one a minute all along, and 12 more at 10:32 (the band learned 1/min) */
	for (int m = 0; m < 40; m++)
		rec(f, m, 40, "dynamodb.amazonaws.com", "GetItem", "dave", NULL, id++);
	for (int i = 0; i < 12; i++)
		rec(f, 32, 41 + i, "dynamodb.amazonaws.com", "GetItem", "eve", NULL, id++);
	rec(f, 33, 1, "cloudtrail.amazonaws.com", "StopLogging", "mallory", NULL, id++);
	rec(f, 36, 2, "cloudtrail.amazonaws.com", "StopLogging", "bob", NULL, id++);
	fclose(f);
	snprintf(extra, sizeof extra, ALARMS, store);
	cfg = write_cfg(tmp, store, f1, extra);
	run_cfg(cfg);

	cr_assert_eq(mails(store, "ALARM: \"denied-burst\"", &all, &mail), 1, "one denied-burst mail (of %d)\n%s", all, g_log);
	cr_assert_eq(mails(store, "ALARM: \"s3-silent\"", &all, NULL), 1, "one s3-silent mail (of %d)\n%s", all, g_log);
	cr_assert_eq(mails(store, "RULE: \"stop-logging\"", &all, NULL), 2, "two rule mails (of %d)\n%s", all, g_log);
	/* the composite: denied-burst went ALARM at 10:15 while s3-silent was not in ALARM */
	cr_assert_eq(mails(store, "ALARM: \"denied-not-silent\"", &all, NULL), 1, "composite mail (of %d)\n%s", all, g_log);
	cr_assert_eq(mails(store, "ALARM: \"dynamo-band\"", &all, NULL), 1, "one anomaly-band mail (of %d)\n%s", all, g_log);
	cr_assert_eq(all, 6, "six mails in all\n%s", g_log);
	/* the evidence: the reason, the top principal, the records, a chart, a command to dig */
	cr_assert(strstr(mail, "mallory"), "the mail names the principal");
	cr_assert(strstr(mail, "AccessDenied"), "the mail shows the error code");
	cr_assert(strstr(mail, "greater than or equal to the threshold (3.0)"), "the reason sentence");
	cr_assert(strstr(mail, "image/png"), "the chart");
	cr_assert(strstr(mail, "trailwatch what"), "a dig-further command");
	cr_assert(strstr(mail, "00000000-0000-4000-8000-0000000000"), "an event id of the burst");
	free(mail);
	{ /* the rules' patterns ran once per stored record (the journal before the append, its
	   * narrowing after it and the publish share one evaluation), plus once more for each of
	   * the two matches (to tell which rule matched) */
		char *st = tw_test_join(store, "status.json"), *text, want[64];
		size_t n;
		text = tw_test_read_file(st, &n);
		snprintf(want, sizeof want, "\"rule_evaluations\": %d", id - 1 + 2);
		cr_assert(text && strstr(text, want), "want %s in status.json: %s", want, text);
		free(text);
		free(st);
	}

	/* restart with the same file: everything is a duplicate, nothing fires again */
	run_cfg(cfg);
	cr_assert_eq(mails(store, "", &all, NULL), 6, "no new mail after a restart on the same files\n%s", g_log);
	/* later events, all quiet: still nothing new (the alarms are OK or stay OK) */
	f = fopen(f2, "w");
	cr_assert_not_null(f);
	for (int m = 40; m < 60; m++)
		rec(f, m, 5, "s3.amazonaws.com", "GetObject", "alice", NULL, id++);
	fclose(f);
	free(cfg);
	cfg = write_cfg(tmp, store, f2, extra);
	run_cfg(cfg);
	cr_assert_eq(mails(store, "", &all, NULL), 6, "quiet events raise nothing\n%s", g_log);
	{ /* trailwatch status reports what the alarms did in the last run */
		const char *argv[] = { tw_test_bin(), "status", "--store", store, NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, argv);
		cr_assert(strstr(r.out, "alarms ") && strstr(r.out, " evaluations,"), "status: %s", r.out);
		tw_test_run_free(&r);
	}
	{ /* the states and the history agree */
		const char *argv[] = { tw_test_bin(), "alarms", "list", "--store", store, "--format", "json", NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 0, "alarms list: %s", r.err);
		cr_assert(strstr(r.out, "denied-burst"), "%s", r.out);
		tw_test_run_free(&r);
	}
	free(cfg);
	free(f1);
	free(f2);
	free(store);
	tw_test_tmpdir_free(tmp);
}

Test(cli_alerting, unknown_metric_or_dimension_is_a_config_error, .timeout = 30)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *f1 = tw_test_write_str(tmp, "a.json", "");
	char *cfg;
	const char *argv[] = { tw_test_bin(), "run", "--config", NULL, "--exit-at-end", NULL };
	struct tw_test_run r;

	cfg = write_cfg(tmp, store, f1,
			"\"alarms\":[{\"name\":\"x\",\"metric\":\"no_such_metric\",\"threshold\":1,\"alarm_actions\":[\"alarms\"]}]");
	argv[3] = cfg;
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 2, "exit 2 for an unknown metric: %d %s", r.status, r.err);
	cr_assert(strstr(r.err, "alarms[0].metric: unknown metric \"no_such_metric\""), "%s", r.err);
	tw_test_run_free(&r);
	free(cfg);
	cfg = write_cfg(tmp, store, f1,
			"\"alarms\":[{\"name\":\"x\",\"metric\":\"calls\",\"dimensions\":{\"bucket\":\"b\"},\"threshold\":1}]");
	argv[3] = cfg;
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 2, "exit 2 for an unknown dimension: %d %s", r.status, r.err);
	cr_assert(strstr(r.err, "has no dimension \"bucket\""), "%s", r.err);
	tw_test_run_free(&r);
	free(cfg);
	free(f1);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* A subscription whose program cannot be run dead-letters its deliveries; that raises the built-in
 * alarm trailwatch-delivery-failures, notified on every topic (here: the maildir still works). */
Test(cli_alerting, a_dead_letter_raises_the_delivery_alarm, .timeout = 60)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *f1 = tw_test_join(tmp, "a.json");
	char extra[4096], *cfg, *dead, *text;
	size_t n;
	FILE *f;
	int all;

	f = fopen(f1, "w");
	cr_assert_not_null(f);
	rec(f, 1, 1, "cloudtrail.amazonaws.com", "StopLogging", "mallory", NULL, 1);
	rec(f, 2, 1, "s3.amazonaws.com", "GetObject", "alice", NULL, 2);
	fclose(f);
	snprintf(extra, sizeof extra,
		 "\"rules\":[{\"name\":\"stop-logging\",\"pattern\":\"{ $.eventName = StopLogging }\",\"topic\":\"alarms\"}],"
		 "\"notifier\":{\"topics\":[{\"name\":\"alarms\"}],\"subscriptions\":["
		 "{\"topic\":\"alarms\",\"protocol\":\"maildir\",\"endpoint\":\"%s/mail\"},"
		 "{\"topic\":\"alarms\",\"protocol\":\"exec\",\"endpoint\":\"%s/no-such-program\"}]}",
		 store, tmp);
	cfg = write_cfg(tmp, store, f1, extra);
	run_cfg(cfg);
	cr_assert_eq(mails(store, "RULE: \"stop-logging\"", &all, NULL), 1, "the rule mail (of %d)\n%s", all, g_log);
	cr_assert_eq(mails(store, "ALARM: \"trailwatch-delivery-failures\"", &all, NULL), 1,
		     "the delivery alarm mail (of %d)\n%s", all, g_log);
	dead = tw_test_join(store, "notify/dead-letters.jsonl");
	text = tw_test_read_file(dead, &n);
	cr_assert(n > 0 && strstr(text, "no-such-program"), "the dead letter names the subscription: %s", text);
	free(text);
	free(dead);
	free(cfg);
	free(f1);
	free(store);
	tw_test_tmpdir_free(tmp);
}
