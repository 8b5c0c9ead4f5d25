/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_faults_restart.c: regressions of `trailwatch run` across restarts, found with
 * the crash soak (tests/soak/soak.py). 1. After a restart the files already in the followed
 * directory were a backfill that, once in, closed *every* open metric period, ignoring the
 * configured lateness: what a live source brought next for those periods (Kafka's backlog after
 * the group join, the next CloudTrail file) was dropped as late, and an alarm burst split across
 * the two was never seen. 2. A crash between the durable append and an event rule's publish lost
 * the rule's mail (the replayed record is a duplicate). Expected values are counted by
 * construction (3 + 3 AccessDenied records; one StopLogging record, one mail). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"

static pid_t g_child;

static void kill_child(void)
{
	if (g_child > 0) {
		kill(g_child, SIGKILL);
		waitpid(g_child, NULL, 0);
		g_child = 0;
	}
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes the records into dir/name through a hidden temporary name and a rename (a complete
 * file appears at once, as the follow source expects). */
static void drop_file(const char *dir, const char *name, const char *text)
{
	char tmpname[64];
	char *tmp, *dst;

	snprintf(tmpname, sizeof tmpname, ".%s.tmp", name);
	tmp = tw_test_write_str(dir, tmpname, text);
	dst = tw_test_join(dir, name);
	cr_assert_eq(rename(tmp, dst), 0);
	free(tmp);
	free(dst);
}

static void rec(char *buf, size_t cap, const char *id, const char *time, const char *name, const char *error)
{
	size_t n = strlen(buf);
	snprintf(buf + n, cap - n,
		 "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::111122223333:"
		 "user/eve\",\"userName\":\"eve\"},\"eventTime\":\"%s\",\"eventSource\":\"s3.amazonaws.com\","
		 "\"eventName\":\"%s\",\"awsRegion\":\"us-east-1\",\"eventID\":\"%s\",%s%s%s"
		 "\"recipientAccountId\":\"111122223333\"}\n",
		 time, name, id, error ? "\"errorCode\":\"" : "", error ? error : "", error ? "\"," : "");
}

static long long store_records(const char *store)
{
	const char *argv[] = { tw_test_bin(), "store", "stats", "--format", "json", store, NULL };
	struct tw_test_run r;
	long long n = -1;
	const char *p;

	tw_test_run(&r, NULL, argv);
	if (r.status == 0 && (p = strstr(r.out, "\"records\":")))
		n = strtoll(p + 10, NULL, 10);
	tw_test_run_free(&r);
	return n;
}

/* The Sum of metric `denied` for the period starting at t_ms in points.jsonl, or -1 if absent. */
static double denied_sum(const char *points, long long t_ms)
{
	char *text = tw_test_read_file(points, NULL);
	double sum = -1;

	if (!text)
		return -1;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *j = json_loads(line, 0, NULL);
		if (j && !strcmp(json_string_value(json_object_get(j, "m")) ?: "", "denied") &&
		    json_integer_value(json_object_get(j, "t")) == t_ms)
			sum = json_number_value(json_object_get(j, "sum"));
		json_decref(j);
	}
	free(text);
	return sum;
}

/* The files already in the followed directory at start are a backfill; once they are in, the
 * periods inside the lateness stay open for what a live source brings next. 10:05 gets three
 * AccessDenied from the file there at start and three from a file dropped while the run goes on:
 * the point of 10:05 must say 6 (before the fix it said 3, and the second three were "late"). */
Test(faults_restart, follow_backlog_end_keeps_periods_inside_the_lateness_open, .timeout = 60, .fini = kill_child)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store"), *dir = tw_test_join(tmp, "in"), *logf = tw_test_join(tmp, "run.log");
	char *points, *cfg, cfgtext[2048], a[4096] = "", b[4096] = "";
	const long long t1005 = (1767225600LL + 10 * 3600 + 5 * 60) * 1000; /* 2026-01-01T10:05:00Z */
	double end, sum = -1;
	int st;

	cr_assert_eq(mkdir(dir, 0700), 0);
	rec(a, sizeof a, "a1", "2026-01-01T10:05:10Z", "GetObject", "AccessDenied");
	rec(a, sizeof a, "a2", "2026-01-01T10:05:20Z", "GetObject", "AccessDenied");
	rec(a, sizeof a, "a3", "2026-01-01T10:05:30Z", "GetObject", "AccessDenied");
	rec(a, sizeof a, "a4", "2026-01-01T10:06:00Z", "ListBuckets", NULL);
	drop_file(dir, "a.jsonl", a);
	snprintf(cfgtext, sizeof cfgtext,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"follow\",\"follow\":{\"path\":\"%s\","
		 "\"rescan\":\"200ms\"}}],\"log\":{\"file\":\"%s\"},\"metrics\":{\"period\":\"1m\",\"lateness\":\"5m\","
		 "\"filters\":[{\"name\":\"denied\",\"pattern\":\"{ $.errorCode = \\\"AccessDenied\\\" }\"}]}}",
		 store, dir, logf);
	cfg = tw_test_write_str(tmp, "run.json", cfgtext);

	g_child = fork();
	cr_assert_geq(g_child, 0);
	if (g_child == 0) {
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(tw_test_bin(), tw_test_bin(), "run", "--config", cfg, (char *)NULL);
		_exit(127);
	}
	/* the backlog (a.jsonl) is in; the run has ended its backfill in the same loop turn */
	end = now_s() + 20;
	while (store_records(store) < 4 && now_s() < end)
		nap_ms(50);
	cr_assert_eq(store_records(store), 4, "a.jsonl was not stored within 20 s");
	nap_ms(800);

	/* three more AccessDenied for 10:05 (inside the 5-minute lateness of 10:06), then 10:30 moves
	 * the watermark past 10:05 so that its period closes */
	rec(b, sizeof b, "b1", "2026-01-01T10:05:40Z", "GetObject", "AccessDenied");
	rec(b, sizeof b, "b2", "2026-01-01T10:05:45Z", "GetObject", "AccessDenied");
	rec(b, sizeof b, "b3", "2026-01-01T10:05:50Z", "GetObject", "AccessDenied");
	rec(b, sizeof b, "b4", "2026-01-01T10:30:00Z", "ListBuckets", NULL);
	drop_file(dir, "b.jsonl", b);
	points = tw_test_join(store, "metrics/points.jsonl");
	end = now_s() + 20;
	while (now_s() < end && (store_records(store) < 8 || (sum = denied_sum(points, t1005)) < 6))
		nap_ms(100);
	kill(g_child, SIGTERM);
	cr_assert_eq(waitpid(g_child, &st, 0), g_child);
	g_child = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run status %d", st);
	cr_assert_eq(store_records(store), 8);
	sum = denied_sum(points, t1005);
	cr_expect_eq(sum, 6, "Sum of denied at 10:05 is %g, want 3 + 3 = 6", sum);

	free(points);
	free(cfg);
	free(logf);
	free(dir);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* Runs `trailwatch run --config cfg --exit-at-end` with env NAME=VALUE (NULL: none); returns the
 * raw wait status. */
static int run_once(const char *cfg, const char *name, const char *value)
{
	int st;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (name)
			setenv(name, value, 1);
		execl(tw_test_bin(), tw_test_bin(), "run", "--config", cfg, "--exit-at-end", (char *)NULL);
		_exit(127);
	}
	g_child = pid;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	g_child = 0;
	return st;
}

/* Mails in the maildir's new/ holding needle. */
static int mails_with(const char *maildir, const char *needle)
{
	char cmd[4300];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof cmd, "grep -l -s -F '%s' %s/new/* 2>/dev/null | wc -l", needle, maildir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (fscanf(p, "%d", &n) != 1)
		n = 0;
	pclose(p);
	return n;
}

/* A crash between the durable append and the event rule's publish: the restart reads the file
 * again, its records are duplicates now (and duplicates are not evaluated), so the rule's mail
 * was lost for good. The rules' journal (STORE/alarms/rules.pending) names the record; the open
 * evaluates it again. Exactly one mail for the one StopLogging record, also after a third run. */
Test(faults_restart, crash_between_append_and_rule_publish_still_mails_once, .timeout = 90, .fini = kill_child)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store"), *dir = tw_test_join(tmp, "in"), *mail;
	char *cfg, cfgtext[2048], a[4096] = "";
	int st;

	cr_assert_eq(mkdir(dir, 0700), 0);
	rec(a, sizeof a, "r1", "2026-01-01T10:05:10Z", "GetObject", NULL);
	rec(a, sizeof a, "r2-stoplogging", "2026-01-01T10:05:20Z", "StopLogging", NULL);
	rec(a, sizeof a, "r3", "2026-01-01T10:05:30Z", "GetObject", NULL);
	drop_file(dir, "a.jsonl", a);
	snprintf(cfgtext, sizeof cfgtext,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"follow\",\"follow\":{\"path\":\"%s\","
		 "\"rescan\":\"200ms\"}}],\"log\":{\"file\":\"%s/run.log\"},"
		 "\"rules\":[{\"name\":\"trail-stopped\",\"pattern\":\"{ $.eventName = StopLogging }\",\"topic\":\"alarms\"}]}",
		 store, dir, tmp);
	cfg = tw_test_write_str(tmp, "run.json", cfgtext);
	mail = tw_test_join(store, "mail");

	st = run_once(cfg, "TRAILWATCH_TEST_KILL_BEFORE_FEED", "1");
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the first run did not die in the hook (%d)", st);
	cr_assert_eq(store_records(store), 3, "the batch is durable");
	cr_assert_eq(mails_with(mail, "r2-stoplogging"), 0, "the crash was not between the append and the publish");

	st = run_once(cfg, NULL, NULL);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "second run: status %d", st);
	cr_assert_eq(store_records(store), 3);
	cr_expect_eq(mails_with(mail, "r2-stoplogging"), 1, "rule mails for the StopLogging record after the restart");

	st = run_once(cfg, NULL, NULL);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "third run: status %d", st);
	cr_expect_eq(mails_with(mail, "r2-stoplogging"), 1, "a third run mails nothing more");

	free(mail);
	free(cfg);
	free(dir);
	free(store);
	tw_test_tmpdir_free(tmp);
}
