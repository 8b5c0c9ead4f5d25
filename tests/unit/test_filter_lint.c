/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_filter_lint.c: each linter finding, its column (counted by hand), and silence on
 * patterns that are fine. */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/filter.h"

static size_t lint(const char *pat, struct tw_filter_warning *w)
{
	size_t nw = 99;
	struct tw_err err;
	cr_assert_eq(tw_filter_lint(pat, strlen(pat), w, 8, &nw, &err), TW_OK, "%s: %s", pat, err.msg);
	return nw;
}

Test(filter_lint, each_finding_with_its_column)
{
	struct tw_filter_warning w[8];

	cr_assert_eq(lint("{ $.a = 1 || $.b != 2 }", w), 1);
	cr_expect_str_eq(w[0].code, "neq-in-or");
	cr_expect_eq(w[0].column, 14);

	cr_assert_eq(lint("{ $.a = 1 && $.b = 2 || $.c = 3 }", w), 1);
	cr_expect_str_eq(w[0].code, "mixed-and-or");
	cr_expect_eq(w[0].column, 11);

	cr_assert_eq(lint("{ $.eventName > 5 }", w), 1);
	cr_expect_str_eq(w[0].code, "type-mismatch");
	cr_expect_eq(w[0].column, 3);
	cr_assert_eq(lint("{ $.readOnly = \"true\" }", w), 1);
	cr_expect_str_eq(w[0].code, "type-mismatch");
	cr_assert_eq(lint("{ $.errorCode IS TRUE }", w), 1);
	cr_expect_str_eq(w[0].code, "type-mismatch");

	cr_assert_eq(lint("{ $.x = 1 && $.x = 2 }", w), 1);
	cr_expect_str_eq(w[0].code, "never-matches");
	cr_expect_eq(w[0].column, 14);
	cr_assert_eq(lint("{ $.x > 5 && $.x < 3 }", w), 1);
	cr_expect_str_eq(w[0].code, "never-matches");
	cr_assert_eq(lint("{ $.x = \"a\" && $.x NOT EXISTS }", w), 1);
	cr_expect_str_eq(w[0].code, "never-matches");
	cr_assert_eq(lint("{ $.x = a && $.x != a }", w), 1);
	cr_expect_str_eq(w[0].code, "never-matches");

	cr_assert_eq(lint("", w), 1);
	cr_expect_str_eq(w[0].code, "match-all");
	cr_assert_eq(lint("\" \"", w), 1);
	cr_expect_str_eq(w[0].code, "match-all");
	cr_assert_eq(lint("%x*%", w), 1);
	cr_expect_str_eq(w[0].code, "match-all");
	cr_assert_eq(lint("[...]", w), 1);
	cr_expect_str_eq(w[0].code, "match-all");
}

Test(filter_lint, fine_patterns_are_silent)
{
	struct tw_filter_warning w[8];
	static const char *ok[] = {
		"ERROR",
		"%ERR+%",
		"{ $.x > 1 && $.x < 3 }",
		"{ $.x >= 3 && $.x <= 3 }",
		"{ ($.a = 1 && $.b != 2) || $.c = 3 }",
		"{ $.readOnly IS TRUE }",
		"{ $.eventName = \"Delete*\" && $.eventName = \"*Bucket\" }",
		"{ $.x = 1 && $.y = 2 }",
		"[a, b = 3, ...]",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		cr_expect_eq(lint(ok[i], w), 0, "%s: %s", ok[i], w[0].msg);
}

Test(filter_lint, syntax_error_is_reported_like_compile)
{
	struct tw_filter_warning w[8];
	size_t nw;
	struct tw_err err;
	cr_expect_eq(tw_filter_lint("{ $.a = }", 9, w, 8, &nw, &err), TW_EPARSE);
	cr_expect_eq(tw_filter_error_column(&err), 9);
}
