/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_filter_parse.c: the CloudWatch Logs documentation examples of
 * tests/golden/filter_parse.txt: each pattern's normalized form or error column, and the log lines
 * it must (+) or must not (-) match. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/filter.h"
#include "tests/helpers/helpers.h"

Test(filter_parse, documentation_examples_golden)
{
	char *path = tw_test_join(tw_test_src(), "tests/golden/filter_parse.txt");
	size_t n;
	char *text = tw_test_read_file(path, &n);
	cr_assert(text, "cannot read %s", path);
	struct tw_filter_set *set = NULL;
	struct tw_err err;
	size_t idx = 0, npat = 0, nsamples = 0, nerr = 0;
	int ok = 0; /* current pattern compiled */
	char pat[2048] = "";
	unsigned lineno = 0;

	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		lineno++;
		if (line[0] == '#' || line[0] == 0)
			continue;
		cr_assert(strlen(line) >= 2 && line[1] == ' ', "golden line %u: malformed: %s", lineno, line);
		const char *arg = line + 2;
		if (line[0] == 'P') {
			snprintf(pat, sizeof pat, "%s", arg);
			tw_filter_set_free(set);
			cr_assert_eq(tw_filter_set_new(&set, &err), TW_OK);
			ok = tw_filter_set_add(set, pat, strlen(pat), &idx, &err) == TW_OK;
			npat++;
		} else if (line[0] == '=') {
			cr_assert(ok, "pattern '%s' should compile, got: %s", pat, err.msg);
			struct tw_buf b;
			tw_buf_init(&b, 1 << 16);
			cr_assert_eq(tw_filter_format(tw_filter_set_get(set, idx), &b, &err), TW_OK);
			cr_expect_str_eq(tw_buf_cstr(&b), arg, "pattern '%s'", pat);
			tw_buf_free(&b);
		} else if (line[0] == '!') {
			cr_assert(!ok, "pattern '%s' should be rejected", pat);
			cr_expect_eq(tw_filter_error_column(&err), (size_t)atoi(arg), "pattern '%s': %s (want column %s)",
				     pat, err.msg, arg);
			cr_expect(strncmp(err.msg, "column ", 7) == 0);
			nerr++;
		} else if (line[0] == '+' || line[0] == '-') {
			cr_assert(ok, "pattern '%s' did not compile: %s", pat, err.msg);
			int m = tw_filter_set_match_text(set, idx, arg, strlen(arg), &err);
			cr_expect_eq(m, line[0] == '+', "pattern '%s' on '%s': got %d", pat, arg, m);
			nsamples++;
		} else {
			cr_assert_fail("golden line %u: unknown tag %c", lineno, line[0]);
		}
	}
	tw_filter_set_free(set);
	cr_expect_geq(npat, 60);
	cr_expect_geq(nsamples, 100);
	cr_expect_geq(nerr, 20);
	free(text);
	free(path);
}

Test(filter_parse, caps_bound_pattern_size_depth_and_terms)
{
	struct tw_filter *f;
	struct tw_err err;
	char big[2100];

	memset(big, 'a', sizeof big);
	cr_expect_eq(tw_filter_compile(big, sizeof big, &f, &err), TW_ELIMIT);
	cr_expect_eq(tw_filter_error_column(&err), 1025);

	char deep[600] = "{ ";
	for (int i = 0; i < 40; i++)
		strcat(deep, "(");
	strcat(deep, "$.a = 1");
	for (int i = 0; i < 40; i++)
		strcat(deep, ")");
	strcat(deep, " }");
	cr_expect_eq(tw_filter_compile(deep, strlen(deep), &f, &err), TW_ELIMIT);
	cr_expect_eq(tw_filter_error_column(&err), 2 + 17, "%s", err.msg); /* the 17th '(' */

	char many[1024] = "";
	for (int i = 0; i < 200; i++)
		strcat(many, "a ");
	cr_expect_eq(tw_filter_compile(many, strlen(many), &f, &err), TW_ELIMIT);
	cr_expect_eq(tw_filter_error_column(&err), 2 * 128 + 1, "%s", err.msg);
}

Test(filter_parse, nul_byte_is_rejected_with_its_column)
{
	struct tw_filter *f;
	struct tw_err err;
	cr_expect_eq(tw_filter_compile("ab\0c", 4, &f, &err), TW_EPARSE);
	cr_expect_eq(tw_filter_error_column(&err), 3);
}
