/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_detect_cli.c: the detectors behind `trailwatch ingest` and `trailwatch
 * anomalies` on samples/: the planted new-IP console sign-in and GetSecretValue spike
 * (samples/labels.jsonl) are found, with the labelled principal and event ids; ingesting the same
 * files again (all duplicates) adds no finding; the command's table, filters, help and usage errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"

static char *ingest(const char *dir, struct tw_test_run *r)
{
	char *store = tw_test_join(dir, "store");
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	char *cw = tw_test_join(tw_test_src(), "samples/cloudwatch");
	const char *argv[] = { tw_test_bin(), "ingest", "--quiet", "--store", store, trail, cw, NULL };
	tw_test_run(r, NULL, argv);
	free(trail);
	free(cw);
	return store;
}

Test(detect_cli, samples_incidents_are_found_and_not_found_twice, .timeout = 60)
{
	char *dir = tw_test_tmpdir(), *store, *path, *text, *text2;
	struct tw_test_run r;
	size_t n, n2;

	store = ingest(dir, &r);
	cr_assert_eq(r.status, 0, "%s", r.err);
	tw_test_run_free(&r);
	path = tw_test_join(store, "anomalies/anomalies.jsonl");
	text = tw_test_read_file(path, &n);
	cr_assert(text);
	/* labels.jsonl: new_ip_console_login by sanjay.chen, event 3624440e-...; api_rate_spike of
	 * GetSecretValue by trent.smith from 05:58 */
	cr_assert(tw_test_contains(text, n, "\"detector\":\"console_login_new_ip\""));
	cr_assert(tw_test_contains(text, n, "\"3624440e-2790-412b-998a-db8ddf3f0e17\""));
	cr_assert(tw_test_contains(text, n, "\"principal\":\"arn:aws:iam::534439589175:user/sanjay.chen\""));
	cr_assert(tw_test_contains(text, n, "GetSecretValue calls in 205380810795/us-east-1 averaged"));
	cr_assert(tw_test_contains(text, n, "top principal arn:aws:iam::205380810795:user/trent.smith"));
	/* again: every event is a duplicate, so the detectors see nothing new */
	free(ingest(dir, &r));
	tw_test_run_free(&r);
	text2 = tw_test_read_file(path, &n2);
	cr_assert_eq(n2, n);
	free(text2);
	{
		const char *argv[] = { tw_test_bin(), "anomalies", "--store", store, "--detector", "console_login_new_ip", NULL };
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 0, "%s", r.err);
		cr_assert(tw_test_contains(r.out, r.nout, "TIME (UTC)"));
		cr_assert(tw_test_contains(r.out, r.nout, "45.25.135.20"));
		cr_assert(!tw_test_contains(r.out, r.nout, "api_call_rate"));
		tw_test_run_free(&r);
	}
	{
		const char *argv[] = { tw_test_bin(), "anomalies", "--store", store, "--format", "json", "--from",
				       "2026-11-04T05:00:00Z", "--until", "2026-11-04T07:00:00Z", NULL };
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 0, "%s", r.err);
		cr_assert(tw_test_count_lines(r.out, r.nout) >= 2);
		cr_assert(!tw_test_contains(r.out, r.nout, "sanjay.chen"));
		tw_test_run_free(&r);
	}
	free(text);
	free(path);
	free(store);
	tw_test_tmpdir_free(dir);
}

Test(detect_cli, help_and_usage_errors)
{
	struct tw_test_run r;
	const char *help[] = { tw_test_bin(), "anomalies", "--help", NULL };
	const char *bad[] = { tw_test_bin(), "anomalies", "--store", "/nonexistent", "--detector", "nope", NULL };
	const char *nostore[] = { tw_test_bin(), "anomalies", NULL };
	const char *missing[] = { tw_test_bin(), "anomalies", "--store", "/nonexistent", NULL };

	tw_test_run(&r, NULL, help);
	cr_assert_eq(r.status, 0);
	cr_assert(tw_test_contains(r.out, r.nout, "usage: trailwatch anomalies"));
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, bad);
	cr_assert_eq(r.status, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "unknown detector 'nope'"));
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, nostore);
	cr_assert_eq(r.status, 2);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, missing);
	cr_assert_eq(r.status, 3);
	tw_test_run_free(&r);
}
