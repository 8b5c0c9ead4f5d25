/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_filter_cli.c: `trailwatch filter test|lint` and `trailwatch rules list`: exit
 * codes, the caret under a syntax error, matched records printed as decode prints them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"

Test(filter_cli, test_prints_matches_like_decode_and_counts)
{
	char *dir = tw_test_tmpdir();
	char *in = tw_test_write_str(dir, "in.jsonl",
		"{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventID\":\"a\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"StopLogging\",\"awsRegion\":\"us-east-1\"}\n"
		"{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:01Z\",\"eventID\":\"b\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"RunInstances\",\"awsRegion\":\"us-east-1\"}\n");
	const char *bin = tw_test_bin();
	struct tw_test_run r, d;
	const char *argv[] = { bin, "filter", "test", "{ $.eventName = Stop* }", in, NULL };
	tw_test_run(&r, NULL, argv);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "1 of 2 records matched"), "%s", r.err);
	const char *dargv[] = { bin, "decode", "-q", in, NULL };
	tw_test_run(&d, NULL, dargv);
	char *nl = strchr(d.out, '\n');
	cr_assert(nl);
	cr_expect_eq(r.nout, (size_t)(nl - d.out) + 1);
	cr_expect(!strncmp(r.out, d.out, r.nout), "filter: %s\ndecode: %s", r.out, d.out);
	tw_test_run_free(&r);
	tw_test_run_free(&d);

	const char *bad[] = { bin, "filter", "test", "{ $.a = }", in, NULL };
	tw_test_run(&r, NULL, bad);
	cr_expect_eq(r.status, 2);
	cr_expect(tw_test_contains(r.err, r.nerr, "column 9: expected a value"), "%s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "  { $.a = }\n          ^\n"), "%s", r.err);
	tw_test_run_free(&r);

	const char *missing[] = { bin, "filter", "test", "x", "/nonexistent/file", NULL };
	tw_test_run(&r, NULL, missing);
	cr_expect_eq(r.status, 1, "%s", r.err);
	tw_test_run_free(&r);
	free(in);
	tw_test_tmpdir_free(dir);
}

Test(filter_cli, lint_exit_codes_and_rules_list)
{
	const char *bin = tw_test_bin();
	struct tw_test_run r;
	const char *clean[] = { bin, "filter", "lint", "{ $.eventName = A && $.x != 1 }", NULL };
	tw_test_run(&r, NULL, clean);
	cr_expect_eq(r.status, 0, "%s", r.err);
	tw_test_run_free(&r);
	const char *warn[] = { bin, "filter", "lint", "{ $.a = 1 || $.b != 2 }", NULL };
	tw_test_run(&r, NULL, warn);
	cr_expect_eq(r.status, 1);
	cr_expect(tw_test_contains(r.err, r.nerr, "column 14: warning [neq-in-or]"), "%s", r.err);
	tw_test_run_free(&r);
	const char *bad[] = { bin, "filter", "lint", "{", NULL };
	tw_test_run(&r, NULL, bad);
	cr_expect_eq(r.status, 2);
	tw_test_run_free(&r);

	const char *list[] = { bin, "rules", "list", NULL };
	tw_test_run(&r, NULL, list);
	cr_expect_eq(r.status, 0);
	cr_expect_eq(tw_test_count_lines(r.out, r.nout), 16);
	cr_expect(tw_test_contains(r.out, r.nout, "CIS-4.10  cis-security-group-changes      Security group changes\n"), "%s", r.out);
	tw_test_run_free(&r);
	const char *json[] = { bin, "rules", "list", "--format", "json", NULL };
	tw_test_run(&r, NULL, json);
	cr_expect_eq(r.status, 0);
	cr_expect_eq(tw_test_count_lines(r.out, r.nout), 15);
	tw_test_run_free(&r);
	const char *help[] = { bin, "rules", "--help", NULL };
	tw_test_run(&r, NULL, help);
	cr_expect_eq(r.status, 0);
	tw_test_run_free(&r);
}
