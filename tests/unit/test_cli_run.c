/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_run.c: `trailwatch run` ($TW_BIN) as a daemon against librdkafka's mock
 * cluster, which lives in this test process (the child connects to it over 127.0.0.1). Records
 * are counted with `trailwatch store stats`, committed offsets read by an independent consumer
 * (tests/helpers/kafka_mock.c): nothing is taken from the daemon's own reporting. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/kafka_mock.h"

#define CT_FMT                                                                                             \
	"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":"                        \
	"\"arn:aws:iam::123456789012:user/alice\",\"userName\":\"alice\"},\"eventTime\":"                   \
	"\"2024-03-01T12:%02d:%02dZ\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"GetUser\","     \
	"\"awsRegion\":\"us-east-1\",\"eventID\":\"run-%d\",\"recipientAccountId\":\"123456789012\"}"

/* The daemon under test, killed by kill_child when a test fails while it runs. */
static pid_t g_child;

static void kill_child(void)
{
	if (g_child > 0) {
		kill(g_child, SIGKILL);
		waitpid(g_child, NULL, 0);
		g_child = 0;
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Produces events run-<first> .. run-<first+n-1>, one CloudTrail record per message. */
static void produce_events(struct tw_test_kafka *tk, const char *topic, int first, int n)
{
	char buf[1024];

	for (int i = first; i < first + n; i++) {
		int len = snprintf(buf, sizeof buf, CT_FMT, (i / 60) % 60, i % 60, i);
		tw_test_kafka_produce(tk, topic, 0, buf, (size_t)len);
	}
	tw_test_kafka_flush(tk);
}

/* `store stats --format json DIR`'s records, or -1 when it fails (store not created yet). */
static long long store_records(const char *dir)
{
	const char *argv[] = { tw_test_bin(), "store", "stats", "--format", "json", dir, NULL };
	struct tw_test_run r;
	long long n = -1;
	const char *p;

	tw_test_run(&r, NULL, argv);
	if (r.status == 0 && (p = strstr(r.out, "\"records\":")) != NULL)
		n = strtoll(p + 10, NULL, 10);
	tw_test_run_free(&r);
	return n;
}

/* Starts argv with stdout and stderr sent to log_path. */
static pid_t spawn(const char *const *argv, const char *log_path)
{
	pid_t pid = fork();

	cr_assert(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (fd < 0 || nul < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	g_child = pid;
	return pid;
}

/* Waits for pid at most secs; kills it (and fails) past that. Returns the exit status. */
static int wait_exit(pid_t pid, double secs)
{
	double end = now_s() + secs;
	int st = 0;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		cr_assert(w >= 0, "waitpid");
		if (w == pid) {
			g_child = 0;
			break;
		}
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			cr_assert_fail("trailwatch run did not exit within %.0f s of SIGTERM", secs);
		}
		nap_ms(20);
	}
	cr_assert(WIFEXITED(st), "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

/* Polls the store until it holds want records (or the daemon died, or the deadline passed). */
static long long wait_records(pid_t pid, const char *dir, long long want, double secs, const char *log_path)
{
	double end = now_s() + secs;
	long long n = -1;

	while (now_s() < end) {
		int st;
		n = store_records(dir);
		if (n >= want)
			return n;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			g_child = 0;
			char *log = tw_test_read_file(log_path, NULL);
			cr_assert_fail("trailwatch run exited early (status %d): %s", st, log ? log : "");
		}
		nap_ms(50);
	}
	return n;
}

/* Waits until the file at path contains needle; returns 1, or 0 past the deadline. */
static int wait_log(const char *path, const char *needle, double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		size_t n = 0;
		char *s = tw_test_read_file(path, &n);
		int found = s && tw_test_contains(s, n, needle);
		free(s);
		if (found)
			return 1;
		nap_ms(50);
	}
	return 0;
}

/* The mock cluster of librdkafka 2.0.2 waits session.timeout.ms - 1 s before it rebalances a group
 * that a member left (the previous run's LeaveGroup), and 3 s on a first join: a short session
 * timeout (above 3 s, or the first join expires the member) keeps the restart quick. */
Test(cli_run, consumes_commits_and_resumes_without_duplicates, .timeout = 40, .fini = kill_child)
{
	enum { N = 40, M = 25 };
	struct tw_test_kafka tk;
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *log1 = tw_test_join(tmp, "run1.log");
	char *log2 = tw_test_join(tmp, "run2.log");
	char *quar;
	const char *argv[] = { tw_test_bin(), "run", "--store", store, "--kafka", NULL, "--topic", "t",
			       "--group", "g", "--status-interval", "1", "-X", "session.timeout.ms=4000",
			       "-X", "heartbeat.interval.ms=500", NULL };
	char *text, *cfg = NULL;
	size_t n;
	pid_t pid;
	const char *argv2[] = { tw_test_bin(), "run", "--config", NULL, "--status-interval", "1", NULL };

	tw_test_kafka_start(&tk, 1);
	argv[5] = tk.brokers;
	tw_test_kafka_topic(&tk, "t", 1);
	produce_events(&tk, "t", 0, N);

	/* first run: all N stored, then the status line reports lag 0 (the batch was committed) */
	pid = spawn(argv, log1);
	cr_assert_eq(wait_records(pid, store, N, 12, log1), N, "records after the first run");
	cr_assert(wait_log(log1, "t/0=0", 5), "no status line with lag t/0=0 in the log");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 5), 0, "exit status of the first run");
	cr_assert_eq(tw_test_kafka_committed(&tk, "g", "t", 0), N, "committed offset after the first run");
	cr_assert_eq(store_records(store), N);
	text = tw_test_read_file(log1, &n);
	cr_assert(text && tw_test_contains(text, n, "status:"), "log: %s", text ? text : "");
	free(text);

	/* second run: M more events and one undecodable message; nothing stored twice */
	produce_events(&tk, "t", N, M);
	tw_test_kafka_produce(&tk, "t", 0, "this is not a record", 20);
	tw_test_kafka_flush(&tk);
	{ /* the config form this time, with librdkafka properties */
		char cfgtext[1024];
		snprintf(cfgtext, sizeof cfgtext,
			 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"kafka\",\"kafka\":{\"brokers\":\"%s\","
			 "\"group\":\"g\",\"topics\":[\"t\"],\"properties\":{\"session.timeout.ms\":\"4000\","
			 "\"heartbeat.interval.ms\":\"500\"}}}]}",
			 store, tk.brokers);
		cfg = tw_test_write_str(tmp, "run.json", cfgtext);
	}
	argv2[3] = cfg;
	pid = spawn(argv2, log2);
	cr_assert_eq(wait_records(pid, store, N + M, 12, log2), N + M, "records after the second run");
	cr_assert(wait_log(log2, "t/0=0", 5), "no status line with lag t/0=0 in the second log");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 5), 0, "exit status of the second run");
	cr_assert_eq(tw_test_kafka_committed(&tk, "g", "t", 0), N + M + 1, "committed offset after the second run");
	cr_assert_eq(store_records(store), N + M, "store records (a duplicate would make more)");
	quar = tw_test_join(store, "quarantine.jsonl");
	text = tw_test_read_file(quar, &n);
	cr_assert_not_null(text, "no quarantine file");
	cr_assert_eq(tw_test_count_lines(text, n), 1, "quarantine: %s", text);
	cr_assert(tw_test_contains(text, n, "t/0@65"), "quarantine names the message: %s", text);
	free(text);

	tw_test_kafka_stop(&tk);
	free(quar);
	free(log1);
	free(log2);
	free(store);
	free(cfg);
	tw_test_tmpdir_free(tmp);
}

Test(cli_run, follow_source_with_missing_directory_exits_2)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char cfgtext[1024];
	char *cfg;
	struct tw_test_run r;

	snprintf(cfgtext, sizeof cfgtext,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"follow\",\"follow\":{\"path\":\"%s/missing\"}}]}",
		 store, tmp);
	cfg = tw_test_write_str(tmp, "run.json", cfgtext);
	{
		const char *argv[] = { tw_test_bin(), "run", "--config", cfg, NULL };
		tw_test_run(&r, NULL, argv);
	}
	cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
	cr_assert(tw_test_contains(r.err, r.nerr, "follow.path"), "stderr: %s", r.err);
	cr_assert_eq(access(store, F_OK), -1, "the store was created although nothing could run");
	tw_test_run_free(&r);
	free(cfg);
	free(store);
	tw_test_tmpdir_free(tmp);
}

Test(cli_run, usage_errors_exit_2)
{
	const char *a1[] = { tw_test_bin(), "run", NULL };
	const char *a2[] = { tw_test_bin(), "run", "--store", "/nonexistent-tw", "--kafka", "127.0.0.1:1", NULL };
	const char *a3[] = { tw_test_bin(), "run", "--config", "/nonexistent-tw/run.json", NULL };
	const char *const *all[] = { a1, a2, a3 };
	struct tw_test_run r;

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		tw_test_run(&r, NULL, all[i]);
		cr_assert_eq(r.status, 2, "case %zu: status %d, stderr: %s", i, r.status, r.err);
		cr_assert(r.nerr > 0, "case %zu: no message", i);
		tw_test_run_free(&r);
	}
}

/* A config with only a `files` source: ingested once at start, then the daemon idles; SIGHUP makes
 * it reopen log.file (moved away as logrotate does), SIGTERM ends it with 0. */
Test(cli_run, files_source_once_and_sighup_reopens_log, .timeout = 20, .fini = kill_child)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *logf = tw_test_join(tmp, "run.log");
	char *rotated = tw_test_join(tmp, "run.log.1");
	char *out = tw_test_join(tmp, "out.txt");
	char rec1[1024], rec2[1024], body[2400], cfgtext[1024];
	char *input, *cfg, *text;
	size_t n;
	pid_t pid;

	snprintf(rec1, sizeof rec1, CT_FMT, 1, 2, 901);
	snprintf(rec2, sizeof rec2, CT_FMT, 3, 4, 902);
	snprintf(body, sizeof body, "{\"Records\":[%s,%s]}", rec1, rec2);
	input = tw_test_write_str(tmp, "trail.json", body);
	snprintf(cfgtext, sizeof cfgtext,
		 "{\"store\":{\"dir\":\"%s\"},\"log\":{\"file\":\"%s\"},"
		 "\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\"]}}]}",
		 store, logf, input);
	cfg = tw_test_write_str(tmp, "run.json", cfgtext);
	{
		const char *argv[] = { tw_test_bin(), "run", "--config", cfg, NULL };
		pid = spawn(argv, out);
	}
	cr_assert_eq(wait_records(pid, store, 2, 10, out), 2, "records from the files source");
	cr_assert(wait_log(logf, "running:", 5), "no start line in log.file");
	cr_assert_eq(rename(logf, rotated), 0);
	kill(pid, SIGHUP);
	cr_assert(wait_log(logf, "reopened", 5), "no new log file after SIGHUP");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 5), 0, "exit status");
	text = tw_test_read_file(logf, &n);
	cr_assert(text && tw_test_contains(text, n, "stopped"), "new log: %s", text ? text : "");
	free(text);
	text = tw_test_read_file(rotated, &n);
	cr_assert(text && !tw_test_contains(text, n, "stopped"), "old log got later lines: %s", text ? text : "");
	free(text);
	text = tw_test_read_file(out, &n);
	cr_assert(text && n == 0, "stderr should be empty with log.file set: %s", text ? text : "");
	free(text);
	cr_assert_eq(store_records(store), 2);

	free(input);
	free(cfg);
	free(out);
	free(rotated);
	free(logf);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* The quick form `run --store DIR --follow DIR`: files that appear are stored once; a restart
 * reads nothing again (the checkpoint lives in the store), and a file added while stopped is
 * picked up by the next run. */
Test(cli_run, follow_quick_form_stores_new_files_once_across_restarts, .timeout = 40, .fini = kill_child)
{
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *in = tw_test_join(tmp, "in");
	char *out = tw_test_join(tmp, "out.txt");
	char rec1[1024], rec2[1024], rec3[1024], body[2400];
	char *f1, *f2;
	pid_t pid;

	cr_assert_eq(mkdir(in, 0700), 0);
	snprintf(rec1, sizeof rec1, CT_FMT, 1, 2, 911);
	snprintf(rec2, sizeof rec2, CT_FMT, 3, 4, 912);
	snprintf(rec3, sizeof rec3, CT_FMT, 5, 6, 913);
	{
		const char *argv[] = { tw_test_bin(), "run", "--store", store, "--follow", in, NULL };
		pid = spawn(argv, out);
	}
	snprintf(body, sizeof body, "{\"Records\":[%s,%s]}", rec1, rec2);
	f1 = tw_test_write_str(in, "a.json", body);
	cr_assert_eq(wait_records(pid, store, 2, 15, out), 2, "records from the first file");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 5), 0, "exit status");
	g_child = 0;

	snprintf(body, sizeof body, "{\"Records\":[%s]}", rec3);
	f2 = tw_test_write_str(in, "b.json", body); /* written while no daemon runs */
	{
		const char *argv[] = { tw_test_bin(), "run", "--store", store, "--follow", in, NULL };
		pid = spawn(argv, out);
	}
	cr_assert_eq(wait_records(pid, store, 3, 15, out), 3, "the file added while stopped");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 5), 0, "exit status");
	g_child = 0;
	/* nothing read twice: a.json would have been counted as 2 duplicates, not records, so check
	 * the checkpoint names each file once */
	{
		char *ck = tw_test_join(store, "follow-0.checkpoint");
		size_t n;
		char *text = tw_test_read_file(ck, &n);
		cr_assert(text, "no checkpoint in the store");
		cr_assert_eq(tw_test_count_lines(text, n), 2, "checkpoint: %s", text);
		free(text);
		free(ck);
	}
	cr_assert_eq(store_records(store), 3);
	free(f1);
	free(f2);
	free(out);
	free(in);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* Crash safety: `trailwatch run` is SIGKILLed K times at seeded random moments (during the start
 * and group join, or a random 0-100 ms after the store has grown, i.e. around the commit), with more
 * events produced between some kills. A last run then stores everything and stops with SIGTERM.
 * Nothing lost: the store holds exactly every distinct eventID produced (they are all distinct, so
 * a count below the total is a loss and above it a duplicate the dedup missed), `store verify`
 * passes after the kills, and the group's committed offset is the total number of messages. */
Test(cli_run, sigkill_restarts_lose_and_duplicate_nothing, .timeout = 90, .fini = kill_child)
{
	enum { N0 = 3000, K = 5 };
	unsigned int seed = 20261121u;
	struct tw_test_kafka tk;
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *logf = tw_test_join(tmp, "run.log");
	const char *argv[] = { tw_test_bin(), "run", "--store", store, "--kafka", NULL, "--topic", "t",
			       "--group", "g", "-X", "session.timeout.ms=4000", "-X", "heartbeat.interval.ms=500",
			       "--status-interval", "1", NULL };
	int total = N0, mid_stream_kills = 0;
	pid_t pid;
	int st;

	tw_test_kafka_start(&tk, 1);
	argv[5] = tk.brokers;
	tw_test_kafka_topic(&tk, "t", 1);
	produce_events(&tk, "t", 0, N0);

	for (int k = 0; k < K; k++) {
		long long before = store_records(store);

		if (before < 0) /* no store yet */
			before = 0;
		pid = spawn(argv, logf);
		if (k % 2 == 1 || before >= total) {
			/* a crash while starting: opening the store, joining the group */
			nap_ms(10 + (long)(rand_r(&seed) % 291));
		} else {
			/* a crash mid-stream: once the store has grown, after a random 0-100 ms */
			long long n = wait_records(pid, store, before + 1, 15, logf);
			cr_assert_gt(n, before, "round %d: no progress within 15 s (store %lld)", k, n);
			nap_ms((long)(rand_r(&seed) % 101));
			mid_stream_kills++;
		}
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		g_child = 0;
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: the run ended by itself (%d)", k, st);
		cr_log_info("round %d: killed with %lld of %d records stored, committed offset %lld", k,
			    store_records(store), total, (long long)tw_test_kafka_committed(&tk, "g", "t", 0));
		if (rand_r(&seed) % 2) {
			int more = 100 + (int)(rand_r(&seed) % 400);
			produce_events(&tk, "t", total, more);
			total += more;
		}
	}
	cr_assert_geq(mid_stream_kills, 2, "too few kills while consuming");

	{ /* the store is consistent after the crashes, before any clean run */
		const char *va[] = { tw_test_bin(), "store", "verify", store, NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, va);
		cr_assert_eq(r.status, 0, "store verify after the kills: %s%s", r.out, r.err);
		tw_test_run_free(&r);
	}

	pid = spawn(argv, logf);
	cr_assert_eq(wait_records(pid, store, total, 30, logf), total, "records after the last run");
	/* the batch that completed the store is committed once the status line shows lag 0 */
	cr_assert(wait_log(logf, "t/0=0", 10), "no status line with lag t/0=0 in the log");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 10), 0, "exit status of the last run");
	cr_assert_eq(store_records(store), total, "store records (a duplicate would make more)");
	cr_assert_eq(tw_test_kafka_committed(&tk, "g", "t", 0), total, "committed offset");
	{
		const char *va[] = { tw_test_bin(), "store", "verify", store, NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, va);
		cr_assert_eq(r.status, 0, "store verify at the end: %s%s", r.out, r.err);
		tw_test_run_free(&r);
	}

	tw_test_kafka_stop(&tk);
	free(logf);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* The replay window: the daemon dies (SIGKILL, from its test hook) right after a batch became
 * durable in the store and before the Kafka offsets of that batch were committed. Each death is
 * checked to have landed in the window (the store holds more records than the committed offset
 * says were acknowledged); the restart reads the unacknowledged batch again and dedup absorbs it,
 * so the final store holds every event exactly once and the committed offset is the total. */
Test(cli_run, sigkill_between_store_and_commit_replays_without_duplicates, .timeout = 90, .fini = kill_child)
{
	enum { N0 = 2000 };
	struct tw_test_kafka tk;
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *logf = tw_test_join(tmp, "run.log");
	const char *argv[] = { tw_test_bin(), "run", "--store", store, "--kafka", NULL, "--topic", "t",
			       "--group", "g", "-X", "session.timeout.ms=4000", "-X", "heartbeat.interval.ms=500",
			       "--status-interval", "1", "--batch-events", "500", NULL };
	const char *hooks[] = { "1", "2", "1", "3" };
	int total = N0, window_hits = 0;
	pid_t pid;
	int st;

	tw_test_kafka_start(&tk, 1);
	argv[5] = tk.brokers;
	tw_test_kafka_topic(&tk, "t", 1);
	produce_events(&tk, "t", 0, N0);

	for (size_t k = 0; k < sizeof hooks / sizeof hooks[0]; k++) {
		long long stored;
		int64_t committed;

		setenv("TRAILWATCH_TEST_KILL_AFTER_STORE", hooks[k], 1);
		pid = spawn(argv, logf);
		unsetenv("TRAILWATCH_TEST_KILL_AFTER_STORE");
		{ /* bounded: a run that never reaches its Nth batch must fail the test, not hang it */
			double end = now_s() + 30;
			pid_t w;
			while ((w = waitpid(pid, &st, WNOHANG)) == 0 && now_s() < end)
				nap_ms(20);
			cr_assert_eq(w, pid, "round %zu: the run did not reach batch %s within 30 s", k, hooks[k]);
		}
		g_child = 0;
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %zu: the run did not die in the hook (%d)",
			  k, st);
		if (k == 0) { /* `trailwatch status` sees that the daemon is gone */
			const char *sa[] = { tw_test_bin(), "status", "--store", store, NULL };
			struct tw_test_run r;
			tw_test_run(&r, NULL, sa);
			cr_assert_eq(r.status, 1, "status after a crash: exit %d\n%s%s", r.status, r.out, r.err);
			cr_assert(strstr(r.out, "not running (crashed or killed)"), "%s", r.out);
			tw_test_run_free(&r);
		}
		stored = store_records(store);
		committed = tw_test_kafka_committed(&tk, "g", "t", 0);
		if (committed < 0)
			committed = 0;
		cr_log_info("round %zu: died after store #%s with %lld stored, committed %lld", k, hooks[k], stored,
			    (long long)committed);
		cr_assert_leq(stored, total, "round %zu: more records than produced (a duplicate)", k);
		if (stored > committed)
			window_hits++;
		produce_events(&tk, "t", total, 150);
		total += 150;
	}
	cr_assert_eq(window_hits, 4, "only %d of 4 deaths landed between store and commit", window_hits);

	pid = spawn(argv, logf);
	cr_assert_eq(wait_records(pid, store, total, 30, logf), total, "records after the last run");
	cr_assert(wait_log(logf, "t/0=0", 10), "no status line with lag t/0=0 in the log");
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid, 10), 0, "exit status of the last run");
	cr_assert_eq(store_records(store), total, "store records (a duplicate would make more)");
	cr_assert_eq(tw_test_kafka_committed(&tk, "g", "t", 0), total, "committed offset");
	{
		const char *va[] = { tw_test_bin(), "store", "verify", store, NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, va);
		cr_assert_eq(r.status, 0, "store verify at the end: %s%s", r.out, r.err);
		tw_test_run_free(&r);
	}
	tw_test_kafka_stop(&tk);
	free(logf);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* --exit-at-end (kcat -e): the run stops by itself once the partitions are caught up, and the
 * status it leaves says so: `trailwatch status` shows the stopped daemon, the stored count and a
 * lag of 0 on each of the 3 partitions (committed == high == what was produced there). */
Test(cli_run, exit_at_end_and_status_report_the_caught_up_partitions, .timeout = 60, .fini = kill_child)
{
	struct tw_test_kafka tk;
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *logf = tw_test_join(tmp, "run.log");
	const char *argv[] = { tw_test_bin(), "run", "--store", store, "--kafka", NULL, "--topic", "t3",
			       "--group", "g", "-X", "session.timeout.ms=4000", "--exit-at-end", NULL };
	const char *sa[] = { tw_test_bin(), "status", "--store", store, "--format", "json", NULL };
	int per[3] = { 0, 0, 0 };
	struct tw_test_run r;
	char buf[1024], want[128];
	pid_t pid;

	tw_test_kafka_start(&tk, 1);
	argv[5] = tk.brokers;
	tw_test_kafka_topic(&tk, "t3", 3);
	for (int i = 0; i < 300; i++) {
		int len = snprintf(buf, sizeof buf, CT_FMT, (i / 60) % 60, i % 60, i);
		tw_test_kafka_produce(&tk, "t3", i % 3, buf, (size_t)len);
		per[i % 3]++;
	}
	tw_test_kafka_flush(&tk);
	pid = spawn(argv, logf);
	cr_assert_eq(wait_exit(pid, 40), 0, "exit status of run --exit-at-end");
	g_child = 0;
	cr_assert_eq(store_records(store), 300);
	for (int p = 0; p < 3; p++)
		cr_assert_eq(tw_test_kafka_committed(&tk, "g", "t3", p), per[p], "partition %d", p);

	tw_test_run(&r, NULL, sa);
	cr_assert_eq(r.status, 1, "status of a stopped daemon: exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "\"state\":\"stopped\""), "%s", r.out);
	cr_assert(strstr(r.out, "\"stored\":300"), "%s", r.out);
	cr_assert(strstr(r.out, "\"records\":300"), "%s", r.out);
	for (int p = 0; p < 3; p++) {
		snprintf(want, sizeof want, "\"partition\":%d,\"committed\":%d,\"high\":%d,\"lag\":0", p, per[p], per[p]);
		cr_assert(strstr(r.out, want), "no %s in %s", want, r.out);
	}
	tw_test_run_free(&r);

	{ /* the table form names the stopped daemon and lines up the partitions */
		const char *ta[] = { tw_test_bin(), "status", "--store", store, NULL };
		tw_test_run(&r, NULL, ta);
		cr_assert(strstr(r.out, "stopped (pid"), "%s", r.out);
		cr_assert(strstr(r.out, "t3"), "%s", r.out);
		tw_test_run_free(&r);
	}
	tw_test_kafka_stop(&tk);
	free(logf);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* --count N (kcat -c): the run stops by itself after the batch that brings it to N events, and
 * what it stored is exactly what it committed. */
Test(cli_run, count_stops_after_n_events_with_the_commit_matching_the_store, .timeout = 60, .fini = kill_child)
{
	struct tw_test_kafka tk;
	char *tmp = tw_test_tmpdir();
	char *store = tw_test_join(tmp, "store");
	char *logf = tw_test_join(tmp, "run.log");
	const char *argv[] = { tw_test_bin(), "run", "--store", store, "--kafka", NULL, "--topic", "t",
			       "--group", "g", "-X", "session.timeout.ms=4000", "--batch-events", "20",
			       "--count", "60", NULL };
	long long n;
	pid_t pid;

	tw_test_kafka_start(&tk, 1);
	argv[5] = tk.brokers;
	tw_test_kafka_topic(&tk, "t", 1);
	produce_events(&tk, "t", 0, 100);
	pid = spawn(argv, logf);
	cr_assert_eq(wait_exit(pid, 40), 0, "exit status of run --count 60");
	g_child = 0;
	n = store_records(store);
	cr_assert(n >= 60 && n < 100, "stored %lld (batches of 20 from 100 events, stop at >= 60)", n);
	cr_assert_eq(tw_test_kafka_committed(&tk, "g", "t", 0), n, "the committed offset is what was stored");
	cr_assert(wait_log(logf, "(--count)", 1), "no --count line in the log");
	tw_test_kafka_stop(&tk);
	free(logf);
	free(store);
	tw_test_tmpdir_free(tmp);
}
