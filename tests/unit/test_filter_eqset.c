/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_filter_eqset.c: an OR of `$.path = literal` leaves on one path (the CIS pack's
 * lists of eventNames) is evaluated as one sorted-set lookup; these check it answers as the
 * leaves one by one would (expected values by reading the patterns, CloudWatch's semantics): a
 * string or a number's literal text equal to one literal matches, absent fields, other types,
 * prefixes and wildcards do not, escapes are compared decoded, and mixed ORs keep their walk. */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/filter.h"

static int match(const char *pat, const char *msg)
{
	struct tw_filter_set *set;
	struct tw_err err;
	size_t idx;
	int r;

	cr_assert_eq(tw_filter_set_new(&set, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, pat, strlen(pat), &idx, &err), TW_OK, "%s", err.msg);
	r = tw_filter_set_match_text(set, idx, msg, strlen(msg), &err);
	cr_assert_geq(r, 0, "%s", err.msg);
	tw_filter_set_free(set);
	return r;
}

static const char list[] = "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = \"Ab\") || "
			   "($.eventName = ModifyVpcAttribute) || ($.eventName = 42) || ($.eventName = \"\") }";

Test(filter_eqset, or_list_matches_each_literal_and_nothing_else)
{
	cr_assert_eq(match(list, "{\"eventName\":\"CreateVpc\"}"), 1);
	cr_assert_eq(match(list, "{\"eventName\":\"DeleteVpc\"}"), 1);
	cr_assert_eq(match(list, "{\"eventName\":\"ModifyVpcAttribute\"}"), 1);
	cr_assert_eq(match(list, "{\"eventName\":\"Ab\"}"), 1);
	cr_assert_eq(match(list, "{\"eventName\":\"\"}"), 1);
	cr_assert_eq(match(list, "{\"eventName\":\"CreateVp\"}"), 0);   /* a prefix */
	cr_assert_eq(match(list, "{\"eventName\":\"CreateVpcs\"}"), 0);  /* longer */
	cr_assert_eq(match(list, "{\"eventName\":\"createvpc\"}"), 0);   /* case-sensitive */
	cr_assert_eq(match(list, "{\"eventName\":\"Ba\"}"), 0);          /* same length, other bytes */
	cr_assert_eq(match(list, "{\"other\":\"CreateVpc\"}"), 0);       /* absent */
	cr_assert_eq(match(list, "{\"eventName\":[\"CreateVpc\"]}"), 0); /* an array is not a string */
	cr_assert_eq(match(list, "{\"eventName\":null}"), 0);
	cr_assert_eq(match(list, "not json CreateVpc"), 0);
}

Test(filter_eqset, numbers_compare_by_literal_text_and_escapes_decoded)
{
	/* `= 42` is a number value: compared numerically, it is not one of the string leaves */
	cr_assert_eq(match(list, "{\"eventName\":42}"), 1);
	cr_assert_eq(match(list, "{\"eventName\":\"42\"}"), 0);
	/* a string leaf matches a number field by its literal text */
	cr_assert_eq(match("{ ($.code = \"7\") || ($.code = \"8\") }", "{\"code\":8}"), 1);
	cr_assert_eq(match("{ ($.code = \"7\") || ($.code = \"8\") }", "{\"code\":8.0}"), 0);
	/* \u0041 is A: the field is compared decoded */
	cr_assert_eq(match("{ ($.n = Ab) || ($.n = Cd) }", "{\"n\":\"\\u0041b\"}"), 1);
	cr_assert_eq(match("{ ($.n = Ab) || ($.n = Cd) }", "{\"n\":\"\\u0042b\"}"), 0);
}

Test(filter_eqset, mixed_ors_and_nested_lists_keep_their_meaning)
{
	/* a wildcard leaf: not a plain list, the leaves are walked */
	static const char star[] = "{ ($.e = Get*) || ($.e = PutObject) }";
	/* two paths in one OR */
	static const char two[] = "{ ($.e = A) || ($.s = B) }";
	/* a list under an AND, as in the CIS pack's kms and s3 controls */
	static const char and[] = "{ ($.src = kms) && (($.e = DisableKey) || ($.e = ScheduleKeyDeletion)) }";

	cr_assert_eq(match(star, "{\"e\":\"GetObject\"}"), 1);
	cr_assert_eq(match(star, "{\"e\":\"PutObject\"}"), 1);
	cr_assert_eq(match(star, "{\"e\":\"DeleteObject\"}"), 0);
	cr_assert_eq(match(two, "{\"e\":\"X\",\"s\":\"B\"}"), 1);
	cr_assert_eq(match(two, "{\"e\":\"A\"}"), 1);
	cr_assert_eq(match(two, "{\"e\":\"B\",\"s\":\"A\"}"), 0);
	cr_assert_eq(match(and, "{\"src\":\"kms\",\"e\":\"ScheduleKeyDeletion\"}"), 1);
	cr_assert_eq(match(and, "{\"src\":\"kms\",\"e\":\"DisableKey\"}"), 1);
	cr_assert_eq(match(and, "{\"src\":\"s3\",\"e\":\"DisableKey\"}"), 0);
	cr_assert_eq(match(and, "{\"src\":\"kms\",\"e\":\"EnableKey\"}"), 0);
}
