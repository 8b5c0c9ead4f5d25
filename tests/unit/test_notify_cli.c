/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_notify_cli.c: `trailwatch notify publish` and `notify status` run as a program
 * ($TW_BIN): outcomes per subscription and exit codes, the message from stdin, filter policies
 * on the command line, the status counts, --help and usage errors. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/notifyt.h"

Test(notify_cli, publish_to_file_and_maildir_then_status)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "out.jsonl"),
	     *md = tw_test_join(dir, "Maildir"), *in = tw_test_write_str(dir, "msg.txt", "body from stdin\n");
	char s1[1200], s2[1200], s3[1200];
	struct tw_test_run r;

	snprintf(s1, sizeof s1, "file:%s", out);
	snprintf(s2, sizeof s2, "maildir:%s", md);
	snprintf(s3, sizeof s3, "file:%s/never", dir);
	const char *argv[] = { bin, "notify", "publish", "alarms", "--state", state, "--subject", "root login",
			       "--attr", "severity=high", "--attr-number", "count=2", "--sub", s1, "--sub", s2, "--sub", s3,
			       "--policy", "{\"severity\": [\"low\"]}", "--wait", "10", NULL };
	tw_test_run(&r, in, argv);
	cr_expect_eq(r.status, 0, "stderr: %s", r.err);
	cr_expect(tw_test_contains(r.out, r.nout, "published to alarms: 2 deliveries"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "delivered"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "filtered"), "%s", r.out);
	tw_test_run_free(&r);
	json_t *j = tw_test_json_file(out);
	cr_expect_str_eq(json_string_value(json_object_get(j, "Message")), "body from stdin\n");
	cr_expect_str_eq(json_string_value(json_object_get(j, "Subject")), "root login");
	json_t *ma = json_object_get(j, "MessageAttributes");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(ma, "count"), "Type")), "Number");
	json_decref(j);
	char *newd = tw_test_join(md, "new");
	cr_expect_eq(tw_test_count_files(newd, ""), 1);

	const char *st[] = { bin, "notify", "status", "--state", state, NULL };
	tw_test_run(&r, NULL, st);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(tw_test_contains(r.out, r.nout, "published      1\n"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "delivered      2\n"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "dead-lettered  0\n"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "pending        0 deliveries"), "%s", r.out);
	tw_test_run_free(&r);
	free(newd);
	free(in);
	free(md);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_cli, dead_letters_and_pending_make_exit_1)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state");
	char s1[1200];
	struct tw_test_run r;

	snprintf(s1, sizeof s1, "file:%s/missing/out", dir);
	const char *argv[] = { bin, "notify", "publish", "alarms", "--state", state, "-m", "x", "--sub", s1,
			       "--retries", "1", "--retry-delay", "50ms", NULL };
	tw_test_run(&r, NULL, argv);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(tw_test_contains(r.out, r.nout, "dead-lettered"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "No such file or directory"), "%s", r.out);
	tw_test_run_free(&r);
	const char *st[] = { bin, "notify", "status", "--state", state, NULL };
	tw_test_run(&r, NULL, st);
	cr_expect_eq(r.status, 1);
	cr_expect(tw_test_contains(r.out, r.nout, "dead-lettered  1\n"), "%s", r.out);
	tw_test_run_free(&r);
	/* --wait 0: published, left pending in the outbox. */
	const char *argv2[] = { bin, "notify", "publish", "alarms", "--state", state, "-m", "y", "--sub", s1, "--wait", "0",
				"--retries", "5", "--retry-delay", "10s", NULL };
	tw_test_run(&r, NULL, argv2);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(tw_test_contains(r.out, r.nout, "kept in the outbox"), "%s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, st);
	cr_expect(tw_test_contains(r.out, r.nout, "pending        1 deliveries of 1 messages"), "%s", r.out);
	tw_test_run_free(&r);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_cli, help_and_usage_errors)
{
	const char *bin = tw_test_bin();
	struct tw_test_run r;
	const char *h1[] = { bin, "notify", "--help", NULL };
	const char *h2[] = { bin, "notify", "publish", "--help", NULL };
	const char *h3[] = { bin, "notify", "status", "--help", NULL };
	const char *u1[] = { bin, "notify", "publish", "alarms", "--state", "/tmp/x", NULL };
	const char *u2[] = { bin, "notify", "publish", "alarms", "--state", "/tmp/x", "--sub", "pigeon:home", NULL };
	const char *u3[] = { bin, "notify", "publish", "alarms", "--state", "/tmp/x", "--sub", "email:a@b.c", "-m", "x", NULL };
	const char *u4[] = { bin, "notify", "status", NULL };
	const char *u5[] = { bin, "notify", "frobnicate", NULL };

	tw_test_run(&r, NULL, h1);
	cr_expect_eq(r.status, 0);
	cr_expect(tw_test_contains(r.out, r.nout, "notify publish"));
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, h2);
	cr_expect_eq(r.status, 0);
	cr_expect(tw_test_contains(r.out, r.nout, "exec:PROG,ARG"));
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, h3);
	cr_expect_eq(r.status, 0);
	cr_expect(tw_test_contains(r.out, r.nout, "--state DIR"));
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, u1);
	cr_expect_eq(r.status, 2);
	cr_expect(tw_test_contains(r.err, r.nerr, "--sub"), "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, u2);
	cr_expect_eq(r.status, 2);
	cr_expect(tw_test_contains(r.err, r.nerr, "pigeon:home"), "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, u3);
	cr_expect_eq(r.status, 2);
	cr_expect(tw_test_contains(r.err, r.nerr, "--smtp URL and --from"), "%s", r.err);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, u4);
	cr_expect_eq(r.status, 2);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, u5);
	cr_expect_eq(r.status, 2);
	tw_test_run_free(&r);
}
