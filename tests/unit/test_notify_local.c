/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_notify_local.c: the notifier with the endpoints that stay on this machine
 * (file, maildir, exec) and its outbox: the SNS JSON shape field by field, a real Maildir read
 * back by Python's email package, exec argv without a shell, retries and dead letters, restart
 * recovery, torn tails, dedup, caps, dropped messages, compaction and orphaned deliveries. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts/notify.h"
#include "core/time.h"
#include "tests/helpers/helpers.h"
#include "tests/helpers/notifyt.h"
#include "tests/helpers/pyserver.h"

static const struct tw_notify_topic topics[] = { { "alarms", "Trailwatch Alarms" } };

/* Retries at once and 50 ms apart: tests stay fast. */
static const struct tw_notify_retry fast = { 3, 1, 0, 0, 50, 50, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };
static const struct tw_notify_retry none = { 0, 0, 0, 0, 0, 0, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };

static struct tw_notify_config config(const char *state, const struct tw_notify_sub *subs, size_t nsubs)
{
	struct tw_notify_config c = { 0 };

	c.state_dir = state;
	c.topics = topics;
	c.ntopics = 1;
	c.subs = subs;
	c.nsubs = nsubs;
	return c;
}

static struct tw_notify *open_ok(const struct tw_notify_config *c)
{
	struct tw_notify *n = NULL;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_notify_open(c, &n, &err), TW_OK, "open: %s", err.msg);
	return n;
}

static struct tw_notify_receipt publish_ok(struct tw_notify *n, const char *subject, const char *text)
{
	static const struct tw_notify_attr attrs[] = { { "severity", "high", 0, 0 }, { "count", NULL, 3, 1 } };
	struct tw_notify_msg m = { "alarms", subject, text, attrs, 2, NULL, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "publish: %s", err.msg);
	return r;
}

/* Lines of a file as parsed JSON values (array). */
static json_t *json_lines(const char *path)
{
	size_t n = 0;
	char *text = tw_test_read_file(path, &n), *save = NULL;
	json_t *arr = json_array();

	if (!text)
		return arr;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		cr_assert_not_null(j, "%s: not JSON: %s: %s", path, je.text, line);
		json_array_append_new(arr, j);
	}
	free(text);
	return arr;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "(absent)";
}

Test(notify_local, file_gets_the_sns_json_shape)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify *n = open_ok(&c);
	struct timespec t0, t1;
	int64_t ts;
	struct tw_err err = { 0 };

	clock_gettime(CLOCK_REALTIME, &t0);
	struct tw_notify_receipt r = publish_ok(n, "Alarm \"root-login\" is ALARM", "root signed in\nfrom 203.0.113.7");
	clock_gettime(CLOCK_REALTIME, &t1);
	cr_assert_eq(r.deliveries, 1);
	cr_assert(tw_notify_wait(n, r.seq, 5000));
	tw_notify_close(n);

	json_t *lines = json_lines(out);
	cr_assert_eq(json_array_size(lines), 1);
	json_t *j = json_array_get(lines, 0);
	/* Exactly SNS's notification keys (no signature: we do not sign). */
	const char *keys[] = { "Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "MessageAttributes" };
	cr_expect_eq(json_object_size(j), 7);
	for (size_t i = 0; i < 7; i++)
		cr_expect_not_null(json_object_get(j, keys[i]), "missing %s", keys[i]);
	cr_expect_str_eq(jstr(j, "Type"), "Notification");
	cr_expect_str_eq(jstr(j, "MessageId"), r.message_id);
	cr_expect_eq(strlen(r.message_id), 36);
	cr_expect_eq(r.message_id[14], '4', "UUID version 4: %s", r.message_id);
	cr_expect_str_eq(jstr(j, "TopicArn"), "arn:trailwatch:sns:local:trailwatch:alarms");
	cr_expect_str_eq(jstr(j, "Subject"), "Alarm \"root-login\" is ALARM");
	cr_expect_str_eq(jstr(j, "Message"), "root signed in\nfrom 203.0.113.7");
	const char *tss = jstr(j, "Timestamp");
	cr_expect_eq(strlen(tss), 24, "ISO 8601 with milliseconds: %s", tss);
	cr_expect_eq(tss[19], '.');
	cr_expect_eq(tss[23], 'Z');
	cr_assert_eq(tw_time_parse(tss, strlen(tss), &ts, &err), TW_OK, "%s", err.msg);
	cr_expect(ts >= (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000 &&
		  ts <= (int64_t)t1.tv_sec * 1000 + t1.tv_nsec / 1000000 + 1);
	json_t *ma = json_object_get(j, "MessageAttributes");
	cr_expect_str_eq(jstr(json_object_get(ma, "severity"), "Type"), "String");
	cr_expect_str_eq(jstr(json_object_get(ma, "severity"), "Value"), "high");
	cr_expect_str_eq(jstr(json_object_get(ma, "count"), "Type"), "Number");
	cr_expect_str_eq(jstr(json_object_get(ma, "count"), "Value"), "3");
	json_decref(lines);
	free(state);
	free(out);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, maildir_holds_a_mail_python_reads_back)
{
	tw_test_need_python("email");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *md = tw_test_join(dir, "Maildir");
	const char *rcpt[] = { "ops@example.com" };
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_MAILDIR, .endpoint = md };
	sub.smtp.from = "trailwatch@example.org";
	sub.smtp.recipients = rcpt;
	sub.smtp.nrecipients = 1;
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify *n = open_ok(&c);
	/* Non-ASCII subject, '=' and a trailing space, a line of 120 characters. */
	char body[512];
	snprintf(body, sizeof body, "Größe = 5 \n%s\nend", "0123456789012345678901234567890123456789012345678901234567890123456789"
							  "01234567890123456789012345678901234567890123456789");
	struct tw_notify_receipt r = publish_ok(n, "Alarm ✓ Zürich", body);
	cr_assert(tw_notify_wait(n, r.seq, 5000));
	tw_notify_close(n);

	char *newd = tw_test_join(md, "new"), *tmpd = tw_test_join(md, "tmp"), *curd = tw_test_join(md, "cur");
	cr_assert_eq(tw_test_count_files(newd, ""), 1);
	cr_assert_eq(tw_test_count_files(tmpd, ""), 0);
	struct stat st;
	cr_assert_eq(stat(curd, &st), 0, "cur/ exists");

	/* the one file in new/ */
	char cmd[1200], name[600] = "";
	snprintf(cmd, sizeof cmd, "ls %s", newd);
	FILE *p = popen(cmd, "r");
	cr_assert(p && fgets(name, sizeof name, p));
	pclose(p);
	name[strcspn(name, "\n")] = 0;
	cr_expect(strstr(name, r.message_id) != NULL, "name %s carries the message id", name);
	char *path = tw_test_join(newd, name);
	json_t *m = tw_test_mail_parse(path);
	json_t *h = json_object_get(m, "headers");
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(h, "From"), 0)),
			 "Trailwatch Alarms <trailwatch@example.org>");
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(h, "To"), 0)), "ops@example.com");
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(h, "Subject"), 0)), "Alarm ✓ Zürich");
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(h, "MIME-Version"), 0)), "1.0");
	char mid[128];
	snprintf(mid, sizeof mid, "<%s@example.org>", r.message_id);
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(h, "Message-ID"), 0)), mid);
	double de = json_number_value(json_object_get(m, "date_epoch"));
	cr_expect(de > 1.7e9 && (int64_t)de <= (int64_t)time(NULL), "Date %f", de);
	cr_expect_str_eq(json_string_value(json_object_get(m, "content_type")), "text/plain");
	/* The body exactly as given, plus the final newline a mail body ends with. */
	char want[600];
	snprintf(want, sizeof want, "%s\n", body);
	cr_expect_str_eq(json_string_value(json_object_get(m, "body")), want);
	cr_expect_eq(json_array_size(json_object_get(m, "defects")), 0);
	/* Raw bytes: every line at most 78 characters (RFC 5322) and LF endings (local Maildir). */
	size_t len;
	char *raw = tw_test_read_file(path, &len);
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		cr_assert_neq(raw[i], '\r');
		col = raw[i] == '\n' ? 0 : col + 1;
		cr_assert(col <= 78, "line too long at byte %zu", i);
	}
	free(raw);
	json_decref(m);
	free(path);
	free(newd);
	free(tmpd);
	free(curd);
	free(state);
	free(md);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, exec_runs_argv_without_a_shell_and_retries_nonzero_exits)
{
	tw_test_need_python("json");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *sink = tw_test_join(dir, "sink");
	char script[1024];
	struct tw_test_notes notes;

	mkdir(sink, 0700);
	snprintf(script, sizeof script, "%s/tests/tools/exec_sink.py", tw_test_src());
	const char *argv[] = { "/usr/bin/python3", script, sink, "1", "two words; echo pwned > x", "$(id)" };
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_EXEC, .endpoint = "/usr/bin/python3",
				     .argv = argv, .argc = 6, .retry = &fast, .timeout_ms = 5000 };
	struct tw_notify_config c = config(state, &sub, 1);
	tw_test_notes_init(&notes);
	tw_test_notes_attach(&notes, &c);
	struct tw_notify *n = open_ok(&c);
	struct tw_notify_receipt r = publish_ok(n, "s", "exec body");
	cr_assert(tw_notify_wait(n, r.seq, 5000));
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	tw_notify_close(n);

	cr_expect_eq(st.delivered, 1);
	cr_expect_eq(st.retried, 1, "the first run exits 3 and is retried");
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.retrying, 1);
	cr_expect(strstr(t.last_error, "exit status 3") && strstr(t.last_error, "sink refused run 1"), "%s", t.last_error);
	char *p = tw_test_join(sink, "0001.json");
	json_t *j = tw_test_json_file(p);
	json_t *av = json_object_get(j, "argv");
	cr_expect_eq(json_array_size(av), 2);
	cr_expect_str_eq(json_string_value(json_array_get(av, 0)), "two words; echo pwned > x");
	cr_expect_str_eq(json_string_value(json_array_get(av, 1)), "$(id)");
	json_t *in = json_loads(jstr(j, "stdin"), 0, NULL);
	cr_assert_not_null(in, "stdin holds the JSON");
	cr_expect_str_eq(jstr(in, "MessageId"), r.message_id);
	cr_expect_str_eq(jstr(in, "Message"), "exec body");
	char *x = tw_test_join(sink, "x");
	cr_expect_neq(access(x, F_OK), 0, "no shell ran the redirection");
	json_decref(in);
	json_decref(j);
	free(x);
	free(p);
	free(state);
	free(sink);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, exec_past_its_timeout_is_killed_and_dead_lettered)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state");
	const char *argv[] = { "/bin/sleep", "20" };
	struct tw_notify_sub sub = { .name = "sleeper", .topic = "alarms", .proto = TW_NOTIFY_EXEC, .endpoint = "/bin/sleep",
				     .argv = argv, .argc = 2, .retry = &none, .timeout_ms = 300 };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_test_notes notes;
	tw_test_notes_init(&notes);
	tw_test_notes_attach(&notes, &c);
	struct tw_notify *n = open_ok(&c);
	double t0 = (double)time(NULL);
	struct tw_notify_receipt r = publish_ok(n, "s", "m");
	cr_assert(tw_notify_wait(n, r.seq, 5000));
	tw_notify_close(n);
	cr_expect((double)time(NULL) - t0 < 3);
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.dead, 1);
	cr_expect_eq(t.dead_cb, 1);
	cr_expect(strstr(t.last_error, "killed after the timeout of 300 ms") != NULL, "%s", t.last_error);

	char *dl = tw_test_join(state, "dead-letters.jsonl");
	json_t *lines = json_lines(dl);
	cr_assert_eq(json_array_size(lines), 1);
	json_t *d = json_array_get(lines, 0);
	cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), 1);
	cr_expect_str_eq(jstr(json_object_get(d, "subscription"), "name"), "sleeper");
	cr_expect_str_eq(jstr(json_object_get(d, "subscription"), "protocol"), "exec");
	cr_expect_str_eq(jstr(json_object_get(d, "message"), "MessageId"), r.message_id);
	cr_expect(strstr(jstr(d, "error"), "timeout") != NULL);
	json_decref(lines);
	free(dl);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, file_failures_are_retried_then_dead_lettered)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "missing/out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out, .retry = &fast };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_test_notes notes;
	tw_test_notes_init(&notes);
	tw_test_notes_attach(&notes, &c);
	struct tw_notify *n = open_ok(&c);
	struct tw_notify_receipt r = publish_ok(n, "s", "m");
	cr_assert(tw_notify_wait(n, r.seq, 5000));
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	tw_notify_close(n);
	cr_expect_eq(st.dead, 1);
	cr_expect_eq(st.retried, 3);
	cr_expect_eq(st.delivered, 0);
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.dead_cb, 1);
	cr_expect_eq(t.last_attempts, 4, "1 attempt + 3 retries");
	cr_expect(strstr(t.last_error, "No such file or directory") != NULL, "%s", t.last_error);

	struct tw_notify_outbox_stats os;
	struct tw_err err = { 0 };
	cr_assert_eq(tw_notify_outbox_stat(state, &os, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(os.pending, 0);
	cr_expect_eq(os.dead, 1);
	cr_expect_eq(os.delivered, 0);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, restart_delivers_pending_ones_and_not_delivered_ones_again)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify_receipt r[4];
	struct tw_notify_stats st;

	/* 1: publish only (the notifier stops before delivering anything). */
	c.no_delivery = 1;
	struct tw_notify *n = open_ok(&c);
	for (int i = 0; i < 3; i++)
		r[i] = publish_ok(n, "s", "m");
	tw_notify_close(n);
	cr_assert_eq(access(out, F_OK), -1, "nothing delivered yet");
	/* 2: reopen with delivery: the three pending ones go out, and a new one. */
	c.no_delivery = 0;
	n = open_ok(&c);
	tw_notify_stats(n, &st);
	cr_expect_eq(st.recovered, 3);
	r[3] = publish_ok(n, "s", "m");
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_close(n);
	/* 3: reopen: nothing is pending, nothing goes out again. */
	n = open_ok(&c);
	tw_notify_stats(n, &st);
	cr_expect_eq(st.recovered, 0);
	tw_test_sleep_ms(200);
	tw_notify_close(n);

	json_t *lines = json_lines(out);
	cr_assert_eq(json_array_size(lines), 4);
	for (int i = 0; i < 4; i++) {
		int seen = 0;
		for (size_t k = 0; k < 4; k++)
			seen += !strcmp(jstr(json_array_get(lines, k), "MessageId"), r[i].message_id);
		cr_expect_eq(seen, 1, "message %d delivered %d times", i, seen);
	}
	json_decref(lines);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, a_torn_tail_is_cut_and_the_rest_recovered)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify_stats st;
	struct tw_err err = { 0 };
	struct tw_notify *n;

	c.no_delivery = 1;
	n = open_ok(&c);
	publish_ok(n, "s", "first");
	publish_ok(n, "s", "second");
	tw_notify_close(n);
	/* A crash in the middle of the third frame: its header and half its bytes. */
	char *log = tw_test_join(state, "outbox.log");
	struct stat sb;
	cr_assert_eq(stat(log, &sb), 0);
	int fd = open(log, O_WRONLY | O_APPEND);
	const char torn[] = "\x40\x00\x00\x00\x12\x34\x56\x78M{\"seq\":3,\"id\":";
	cr_assert_eq(write(fd, torn, sizeof torn - 1), (ssize_t)(sizeof torn - 1));
	close(fd);
	n = open_ok(&c);
	tw_notify_stats(n, &st);
	cr_expect_eq(st.torn_bytes, sizeof torn - 1);
	cr_expect_eq(st.recovered, 2);
	tw_notify_close(n);
	cr_assert_eq(stat(log, &sb), 0);
	/* Not an outbox at all: refused, not overwritten. */
	char *bad = tw_test_join(dir, "bad");
	mkdir(bad, 0700);
	char *badlog = tw_test_join(bad, "outbox.log");
	tw_test_write_file(badlog, "hello world, not an outbox", 26);
	c.state_dir = bad;
	n = NULL;
	cr_expect_eq(tw_notify_open(&c, &n, &err), TW_ECORRUPT);
	cr_expect(strstr(err.msg, "outbox.log") != NULL, "%s", err.msg);
	free(badlog);
	free(bad);
	free(log);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, dedup_key_delivers_once_also_after_reopen)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify_msg m = { "alarms", "s", "m", NULL, 0, NULL, "root-login/2026-11-21T08:00" };
	struct tw_notify_receipt r1, r2, r3;
	struct tw_err err = { 0 };
	struct tw_notify_stats st;

	struct tw_notify *n = open_ok(&c);
	cr_assert_eq(tw_notify_publish(n, &m, &r1, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_notify_publish(n, &m, &r2, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(r1.duplicate, 0);
	cr_expect_eq(r2.duplicate, 1);
	cr_expect_str_eq(r2.message_id, r1.message_id);
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_stats(n, &st);
	cr_expect_eq(st.duplicates, 1);
	cr_expect_eq(st.published, 1);
	tw_notify_close(n);
	n = open_ok(&c);
	cr_assert_eq(tw_notify_publish(n, &m, &r3, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(r3.duplicate, 1, "the key survives a restart");
	tw_notify_close(n);
	/* A short window: the same key later is a new message. */
	c.dedup_window_ms = 50;
	n = open_ok(&c);
	tw_test_sleep_ms(80);
	cr_assert_eq(tw_notify_publish(n, &m, &r3, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(r3.duplicate, 0);
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_close(n);
	json_t *lines = json_lines(out);
	cr_expect_eq(json_array_size(lines), 2);
	json_decref(lines);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, caps_and_bad_messages_are_refused_with_reasons)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };

	c.no_delivery = 1;
	c.max_pending = 2;
	c.max_message = 100;
	struct tw_notify *n = open_ok(&c);
	publish_ok(n, "s", "one");
	publish_ok(n, "s", "two");
	struct tw_notify_msg m = { "alarms", "s", "three", NULL, 0, NULL, NULL };
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_ELIMIT);
	cr_expect(strstr(err.msg, "outbox full: 2 deliveries pending (at most 2)") != NULL, "%s", err.msg);
	char big[200];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	m.message = big;
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_ELIMIT);
	cr_expect(strstr(err.msg, "at most 100") != NULL, "%s", err.msg);
	m.message = "x";
	m.topic = "nope";
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_EINVAL);
	cr_expect(strstr(err.msg, "topic \"nope\"") != NULL, "%s", err.msg);
	m.topic = "alarms";
	m.mime = "Subject: x\n\nbody";
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_EINVAL);
	m.mime = NULL;
	m.message = "";
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_EINVAL);
	m.message = "caf\xc3 latin-1, not UTF-8";
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_EINVAL);
	cr_expect(strstr(err.msg, "not valid UTF-8") != NULL, "%s", err.msg);
	m.message = "x";
	m.subject = "two\r\nBcc: evil@example.com";
	cr_expect_eq(tw_notify_publish(n, &m, &r, &err), TW_EINVAL, "no header injection through the subject");
	tw_notify_close(n);
	/* Configuration errors name the subscription. */
	struct tw_notify_sub bad = { .name = "ops-mail", .topic = "alarms", .proto = TW_NOTIFY_EMAIL, .endpoint = "ops@x.org" };
	c = config(state, &bad, 1);
	n = NULL;
	cr_expect_eq(tw_notify_open(&c, &n, &err), TW_EINVAL);
	cr_expect(strstr(err.msg, "subscription ops-mail: smtp url") != NULL, "%s", err.msg);
	bad.topic = "other";
	cr_expect_eq(tw_notify_open(&c, &n, &err), TW_EINVAL);
	cr_expect(strstr(err.msg, "topic \"other\" is not configured") != NULL, "%s", err.msg);
	struct tw_notify_sub badpol = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out,
					.filter_policy = "{\"a\": [{\"numeric\": [\"<\"]}]}" };
	c = config(state, &badpol, 1);
	cr_expect_eq(tw_notify_open(&c, &n, &err), TW_EPARSE);
	cr_expect(strstr(err.msg, "key \"a\"") != NULL, "%s", err.msg);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, unmatched_messages_are_counted_not_stored)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *a = tw_test_join(dir, "a.jsonl"),
	     *b = tw_test_join(dir, "b.jsonl");
	struct tw_notify_sub subs[2] = {
		{ .name = "crit", .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = a,
		  .filter_policy = "{\"severity\": [\"critical\"]}" },
		{ .name = "numeric", .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = b,
		  .filter_policy = "{\"count\": [{\"numeric\": [\">\", 0, \"<=\", 5]}]}" },
	};
	struct tw_notify_config c = config(state, subs, 2);
	struct tw_notify *n = open_ok(&c);
	struct tw_notify_stats st;
	struct tw_err err = { 0 };
	struct tw_notify_receipt r;
	char *log = tw_test_join(state, "outbox.log");
	struct stat s0, s1;

	/* severity high, count 3: only "numeric" matches. */
	r = publish_ok(n, "s", "m");
	cr_expect_eq(r.deliveries, 1);
	cr_assert(tw_notify_wait(n, 0, 5000));
	cr_assert_eq(stat(log, &s0), 0);
	struct tw_notify_attr none_match[] = { { "severity", "low", 0, 0 }, { "count", NULL, 9, 1 } };
	struct tw_notify_msg m = { "alarms", "s", "m", none_match, 2, NULL, NULL };
	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(r.deliveries, 0);
	cr_expect_eq(r.seq, 0);
	tw_notify_stats(n, &st);
	cr_expect_eq(st.dropped, 1);
	cr_expect_eq(st.published, 1);
	cr_assert_eq(stat(log, &s1), 0);
	cr_expect_eq(s1.st_size, s0.st_size, "a dropped message is not written");
	tw_notify_close(n);
	cr_expect_eq(access(a, F_OK), -1);
	json_t *lines = json_lines(b);
	cr_expect_eq(json_array_size(lines), 1);
	json_decref(lines);
	free(log);
	free(a);
	free(b);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, compaction_keeps_counters_and_pending_messages)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub subs[2] = {
		{ .name = "file", .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out },
		{ .name = "later", .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out },
	};
	struct tw_notify_config c = config(state, subs, 1);
	struct tw_notify_outbox_stats os;
	struct tw_notify_stats st;
	struct tw_err err = { 0 };

	c.compact_bytes = 1;
	struct tw_notify *n = open_ok(&c);
	for (int i = 0; i < 5; i++)
		publish_ok(n, "s", "m");
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_stats(n, &st);
	tw_notify_close(n);
	cr_expect_geq(st.compactions, 1);
	cr_assert_eq(tw_notify_outbox_stat(state, &os, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(os.pending, 0);
	cr_expect_eq(os.delivered, 5);
	cr_expect_eq(os.published, 5);
	cr_expect_lt(os.bytes, 300, "the log holds only the counters: %llu bytes", (unsigned long long)os.bytes);

	/* With a delivery that cannot go out (KEEP: its subscription is not configured in this
	 * open), compaction carries the pending message over; a later open delivers it. */
	c.subs = subs;
	c.nsubs = 2;
	c.no_delivery = 1;
	n = open_ok(&c);
	publish_ok(n, "s", "kept");
	tw_notify_close(n);
	c.nsubs = 1;
	c.no_delivery = 0;
	c.orphans = TW_NOTIFY_ORPHANS_KEEP;
	n = open_ok(&c);
	for (int i = 0; i < 3; i++)
		publish_ok(n, "s", "m");
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_stats(n, &st);
	cr_expect_eq(st.pending, 1, "the orphan stays pending");
	tw_notify_close(n);
	cr_expect_geq(st.compactions, 1);
	cr_assert_eq(tw_notify_outbox_stat(state, &os, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(os.pending, 1);
	cr_expect_eq(os.published, 9);
	c.nsubs = 2;
	n = open_ok(&c);
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_close(n);
	cr_assert_eq(tw_notify_outbox_stat(state, &os, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(os.pending, 0);
	cr_expect_eq(os.delivered, 5 + 1 + 3 + 1);
	json_t *lines = json_lines(out);
	cr_expect_eq(json_array_size(lines), 10);
	json_decref(lines);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, deliveries_of_removed_subscriptions_are_dead_lettered)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub subs[2] = {
		{ .name = "gone", .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out },
		{ .name = "stays", .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out },
	};
	struct tw_notify_config c = config(state, subs, 2);
	struct tw_test_notes notes;

	c.no_delivery = 1;
	struct tw_notify *n = open_ok(&c);
	publish_ok(n, "s", "m");
	tw_notify_close(n);
	c.subs = subs + 1;
	c.nsubs = 1;
	c.no_delivery = 0;
	tw_test_notes_init(&notes);
	tw_test_notes_attach(&notes, &c);
	n = open_ok(&c);
	cr_assert(tw_notify_wait(n, 0, 5000));
	tw_notify_close(n);
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.delivered, 1);
	cr_expect_eq(t.dead, 1);
	cr_expect(strstr(t.last_error, "subscription gone is no longer configured") || t.delivered, "%s", t.last_error);
	char *dl = tw_test_join(state, "dead-letters.jsonl");
	json_t *lines = json_lines(dl);
	cr_assert_eq(json_array_size(lines), 1);
	cr_expect_str_eq(jstr(json_object_get(json_array_get(lines, 0), "subscription"), "name"), "gone");
	cr_expect(strstr(jstr(json_array_get(lines, 0), "error"), "no longer configured") != NULL);
	json_decref(lines);
	free(dl);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_local, state_directory_is_locked)
{
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl");
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_FILE, .endpoint = out };
	struct tw_notify_config c = config(state, &sub, 1);
	struct tw_notify *n = open_ok(&c), *n2 = NULL;
	struct tw_err err = { 0 };

	cr_expect_eq(tw_notify_open(&c, &n2, &err), TW_EBUSY);
	cr_expect(strstr(err.msg, "in use") != NULL, "%s", err.msg);
	tw_notify_close(n);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}
