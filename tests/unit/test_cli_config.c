/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_config.c: `trailwatch config check` end to end: the committed sample
 * validates, exit codes (0 valid, 1 warnings, 2 invalid or usage, 3 unreadable), the error names
 * the key path, and a secret's value never reaches stdout or stderr in either format. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/helpers/helpers.h"

/* A Kafka config whose password comes from env TW_CLI_CFG_PW and whose ssl key password from
 * the file pwfile. */
static char *write_secret_config(const char *dir, const char *pwfile)
{
	char text[1024];

	snprintf(text, sizeof text,
		 "{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b:9092\","
		 " \"group\": \"g\", \"topics\": [\"t\"], \"properties\": {\"sasl.password\": {\"env\": \"TW_CLI_CFG_PW\"},"
		 " \"ssl.key.password\": {\"file\": \"%s\"}}}}]}",
		 pwfile);
	return tw_test_write_str(dir, "c.json", text);
}

Test(cli_config, sample_config_validates)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char src[4096];
	struct tw_test_run r;
	char *text, *copy;

	/* The sample as committed (its mode depends on the checkout: 0 or 1 for the warnings). */
	snprintf(src, sizeof src, "%s/samples/config/trailwatch.json", tw_test_src());
	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", src, NULL });
	cr_assert(r.status == 0 || r.status == 1, "status %d: %s", r.status, r.err);
	cr_assert(tw_test_contains(r.out, r.nout, "store.dir = \"/var/lib/trailwatch/store\"\n"), "%s", r.out);
	cr_assert(tw_test_contains(r.err, r.nerr, "valid (2 sources, 2 secrets,"), "%s", r.err);
	tw_test_run_free(&r);

	/* A private copy with its secret's variable set: valid without warnings. */
	text = tw_test_read_file(src, NULL);
	cr_assert_not_null(text);
	copy = tw_test_write_str(dir, "trailwatch.json", text);
	cr_assert_eq(chmod(copy, 0600), 0);
	setenv("TRAILWATCH_KAFKA_PASSWORD", "sample-pw-value", 1);
	setenv("TRAILWATCH_SMTP_PASSWORD", "sample-smtp-pw", 1);
	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", copy, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(tw_test_contains(r.out, r.nout,
				   "properties[\"sasl.password\"] = <from env TRAILWATCH_KAFKA_PASSWORD> (set)\n"), "%s", r.out);
	cr_assert(!tw_test_contains(r.out, r.nout, "sample-pw-value"));
	cr_assert(!tw_test_contains(r.err, r.nerr, "sample-pw-value"));
	cr_assert(!tw_test_contains(r.out, r.nout, "sample-smtp-pw"));
	tw_test_run_free(&r);
	free(text);
	free(copy);
	tw_test_tmpdir_free(dir);
}

Test(cli_config, secret_values_are_never_printed)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *pwfile = tw_test_write_str(dir, "pw", "FILE-VALUE-9d1c\n");
	char *cfg = write_secret_config(dir, pwfile);
	const char *fmts[] = { "text", "json" };

	setenv("TW_CLI_CFG_PW", "ENV-VALUE-77ab", 1);
	cr_assert_eq(chmod(cfg, 0644), 0); /* warnings too: they must not leak either */
	cr_assert_eq(chmod(pwfile, 0644), 0);
	for (int i = 0; i < 2; i++) {
		struct tw_test_run r;
		tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", "--format", fmts[i], cfg, NULL });
		cr_assert_eq(r.status, 1, "%s: status %d: %s", fmts[i], r.status, r.err);
		cr_assert(r.nout > 0);
		cr_assert(!tw_test_contains(r.out, r.nout, "ENV-VALUE-77ab"), "%s", r.out);
		cr_assert(!tw_test_contains(r.err, r.nerr, "ENV-VALUE-77ab"), "%s", r.err);
		cr_assert(!tw_test_contains(r.out, r.nout, "FILE-VALUE-9d1c"), "%s", r.out);
		cr_assert(!tw_test_contains(r.err, r.nerr, "FILE-VALUE-9d1c"), "%s", r.err);
		cr_assert(tw_test_contains(r.err, r.nerr, "readable by every user (mode 0644) and names 2 secrets"), "%s",
			  r.err);
		tw_test_run_free(&r);
	}
	free(cfg);
	free(pwfile);
	tw_test_tmpdir_free(dir);
}

Test(cli_config, unset_secret_is_reported_not_set)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *pwfile = tw_test_write_str(dir, "pw", "x");
	char *cfg = write_secret_config(dir, pwfile);
	struct tw_test_run r;

	cr_assert_eq(chmod(cfg, 0600), 0);
	cr_assert_eq(chmod(pwfile, 0600), 0);
	unsetenv("TW_CLI_CFG_PW");
	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", cfg, NULL });
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert(tw_test_contains(r.out, r.nout, "<from env TW_CLI_CFG_PW> (NOT set)\n"), "%s", r.out);
	cr_assert(tw_test_contains(r.err, r.nerr, "warning: secret from env TW_CLI_CFG_PW is NOT set\n"), "%s", r.err);
	tw_test_run_free(&r);

	setenv("TW_CLI_CFG_PW", "v", 1);
	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", cfg, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	tw_test_run_free(&r);
	free(cfg);
	free(pwfile);
	tw_test_tmpdir_free(dir);
}

Test(cli_config, invalid_config_exits_2_with_the_key_path)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *cfg = tw_test_write_str(dir, "c.json", "{\"store\": {\"dri\": \"d\"}}");
	char want[512];
	struct tw_test_run r;

	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", cfg, NULL });
	cr_assert_eq(r.status, 2);
	snprintf(want, sizeof want, "trailwatch config: %s: unknown key $.store.dri (did you mean dir?)\n", cfg);
	cr_assert_str_eq(r.err, want);
	cr_assert_eq(r.nout, 0);
	tw_test_run_free(&r);
	free(cfg);
	tw_test_tmpdir_free(dir);
}

Test(cli_config, usage_and_unreadable_file)
{
	const char *bin = tw_test_bin();
	struct tw_test_run r;

	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", "/nonexistent/tw.json", NULL });
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.err, "trailwatch config: /nonexistent/tw.json: No such file or directory\n");
	tw_test_run_free(&r);

	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", "--help", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(tw_test_contains(r.out, r.nout, "usage: trailwatch config check"));
	tw_test_run_free(&r);

	tw_test_run(&r, NULL, (const char *[]){ bin, "help", "config", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(tw_test_contains(r.out, r.nout, "exit codes: 0 valid; 1 valid, with warnings"));
	tw_test_run_free(&r);

	tw_test_run(&r, NULL, (const char *[]){ bin, "config", NULL });
	cr_assert_eq(r.status, 2);
	tw_test_run_free(&r);

	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", "--format", "yaml", "x.json", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "--format must be text or json, not 'yaml'"), "%s", r.err);
	tw_test_run_free(&r);

	tw_test_run(&r, NULL, (const char *[]){ bin, "config", "check", NULL });
	cr_assert_eq(r.status, 2);
	tw_test_run_free(&r);
}
