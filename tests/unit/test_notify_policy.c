/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_notify_policy.c: SNS filter policies on message attributes and the retry-delay
 * schedule. Expected outcomes come from SNS's documentation of subscription filter policies
 * (AND across keys, OR within a key's list, exact string/number, prefix, anything-but with a
 * list and with a prefix, numeric ranges, exists), worked by hand on the example message of
 * that documentation (store = "example_corp", event = "order_placed", price_usd = 210.75). */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/notify.h"

static const struct tw_notify_attr doc_msg[] = {
	{ "store", "example_corp", 0, 0 },
	{ "event", "order_placed", 0, 0 },
	{ "price_usd", NULL, 210.75, 1 },
};

struct pcase {
	const char *policy; /* the filter policy */
	int want;           /* 1 when the documentation's message matches */
};

static const struct pcase cases[] = {
	/* exact string, OR within a key */
	{ "{\"store\": [\"example_corp\"]}", 1 },
	{ "{\"store\": [\"other_corp\"]}", 0 },
	{ "{\"event\": [\"order_cancelled\", \"order_placed\"]}", 1 },
	/* AND across keys: one key failing rejects */
	{ "{\"store\": [\"example_corp\"], \"event\": [\"order_cancelled\"]}", 0 },
	{ "{\"store\": [\"example_corp\"], \"event\": [\"order_placed\"]}", 1 },
	/* the documentation's combined example (its array attribute left out) */
	{ "{\"store\": [\"example_corp\"], \"event\": [{\"anything-but\": \"order_cancelled\"}],"
	  " \"price_usd\": [{\"numeric\": [\">=\", 100]}]}", 1 },
	/* exact number: typed, so the number matches and the string does not */
	{ "{\"price_usd\": [210.75]}", 1 },
	{ "{\"price_usd\": [\"210.75\"]}", 0 },
	{ "{\"price_usd\": [{\"numeric\": [\"=\", 210.75]}]}", 1 },
	{ "{\"price_usd\": [{\"numeric\": [\"=\", 301.5]}]}", 0 },
	/* numeric ranges */
	{ "{\"price_usd\": [{\"numeric\": [\">\", 0, \"<=\", 150]}]}", 0 },
	{ "{\"price_usd\": [{\"numeric\": [\">\", 200, \"<=\", 210.75]}]}", 1 },
	{ "{\"price_usd\": [{\"numeric\": [\">\", 210.75]}]}", 0 },
	{ "{\"price_usd\": [{\"numeric\": [\"<\", 210.76]}]}", 1 },
	{ "{\"price_usd\": [{\"numeric\": [\">=\", 100, \"<\", 200]}, {\"numeric\": [\">\", 300]}]}", 0 },
	/* a numeric condition never matches a string attribute */
	{ "{\"store\": [{\"numeric\": [\">\", 0]}]}", 0 },
	/* prefix, suffix, equals-ignore-case */
	{ "{\"store\": [{\"prefix\": \"example\"}]}", 1 },
	{ "{\"store\": [{\"prefix\": \"corp\"}]}", 0 },
	{ "{\"event\": [{\"suffix\": \"_placed\"}]}", 1 },
	{ "{\"store\": [{\"equals-ignore-case\": \"EXAMPLE_Corp\"}]}", 1 },
	/* anything-but: list, single, prefix, numbers */
	{ "{\"event\": [{\"anything-but\": [\"order_cancelled\", \"order_failed\"]}]}", 1 },
	{ "{\"event\": [{\"anything-but\": [\"order_placed\", \"order_failed\"]}]}", 0 },
	{ "{\"event\": [{\"anything-but\": {\"prefix\": \"order-\"}}]}", 1 },
	{ "{\"event\": [{\"anything-but\": {\"prefix\": \"order_\"}}]}", 0 },
	{ "{\"price_usd\": [{\"anything-but\": [100, 200]}]}", 1 },
	{ "{\"price_usd\": [{\"anything-but\": [210.75]}]}", 0 },
	/* anything-but needs the attribute present */
	{ "{\"customer\": [{\"anything-but\": \"x\"}]}", 0 },
	/* exists */
	{ "{\"store\": [{\"exists\": true}]}", 1 },
	{ "{\"store\": [{\"exists\": false}]}", 0 },
	{ "{\"encrypted\": [{\"exists\": false}]}", 1 },
	{ "{\"encrypted\": [{\"exists\": true}]}", 0 },
	/* a key whose attribute is absent fails any value condition */
	{ "{\"encrypted\": [\"yes\"]}", 0 },
	{ "{\"encrypted\": [\"yes\", {\"exists\": false}]}", 1 },
};

Test(notify_policy, sns_documentation_cases)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tw_notify_policy *p = NULL;
		struct tw_err err = { 0 };
		cr_assert_eq(tw_notify_policy_parse(cases[i].policy, strlen(cases[i].policy), &p, &err), TW_OK,
			     "case %zu: %s", i, err.msg);
		cr_expect_eq(tw_notify_policy_match(p, doc_msg, 3), cases[i].want, "case %zu: %s should %smatch", i,
			     cases[i].policy, cases[i].want ? "" : "not ");
		tw_notify_policy_free(p);
	}
}

Test(notify_policy, no_policy_and_empty_attributes)
{
	struct tw_notify_policy *p = NULL;
	struct tw_err err = { 0 };
	const char *pol = "{\"severity\": [\"high\"]}";

	cr_assert_eq(tw_notify_policy_match(NULL, NULL, 0), 1);
	cr_assert_eq(tw_notify_policy_parse(pol, strlen(pol), &p, &err), TW_OK);
	cr_assert_eq(tw_notify_policy_match(p, NULL, 0), 0);
	tw_notify_policy_free(p);
}

Test(notify_policy, rejects_bad_policies_with_the_key_named)
{
	static const struct {
		const char *policy; /* bad text */
		const char *needle; /* in the message */
	} bad[] = {
		{ "[1]", "expected a JSON object" },
		{ "{\"a\": \"x\"}", "key \"a\": expected a non-empty array" },
		{ "{\"a\": []}", "key \"a\"" },
		{ "{\"a\": [{\"numeric\": [\"~\", 1]}]}", "expected an operator" },
		{ "{\"a\": [{\"numeric\": [\">\", 5, \"<\", 1]}]}", "empty range" },
		{ "{\"a\": [{\"numeric\": [\"<\", 5, \">\", 1]}]}", "lower bound" },
		{ "{\"a\": [{\"regex\": \"x\"}]}", "unknown operator \"regex\"" },
		{ "{\"a\": [{\"exists\": 1}]}", "exists: expected true or false" },
		{ "{\"a\": {\"b\": [\"x\"]}}", "message attributes only" },
		{ "{\"a\": [\"x\"", "line 1" },
		{ "{\"a\": [1], \"a\": [2]}", "duplicate" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct tw_notify_policy *p = NULL;
		struct tw_err err = { 0 };
		enum tw_rc rc = tw_notify_policy_parse(bad[i].policy, strlen(bad[i].policy), &p, &err);
		cr_expect(rc == TW_EPARSE, "case %zu: rc %d", i, rc);
		cr_expect(strstr(err.msg, bad[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].needle);
		cr_expect_null(p);
	}
}

Test(notify_policy, retry_schedule_follows_the_phases)
{
	/* SNS's documented example policy shape: 3 immediate, 2 at min, backoff, 35 at max. Here
	 * 10 retries: 2 immediate, 1 at min (1 s), 5 backoff linear 1 s .. 5 s, 2 at max (5 s). */
	struct tw_notify_retry rp = { 10, 2, 1, 2, 1000, 5000, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };
	const int64_t want[] = { -1, 0, 0, 1000, 1000, 2000, 3000, 4000, 5000, 5000, 5000, -1 };

	for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_expect_eq(tw_notify_retry_delay(&rp, i), want[i], "retry %u: %lld", i,
			     (long long)tw_notify_retry_delay(&rp, i));
	/* exponential from 1 s to 8 s over 4 steps: 1 + 7 * (2^j - 1) / 7 = 1, 2, 4, 8 s. */
	struct tw_notify_retry ex = { 4, 0, 0, 0, 1000, 8000, TW_NOTIFY_BACKOFF_EXPONENTIAL, 0, 0 };
	cr_expect_eq(tw_notify_retry_delay(&ex, 1), 1000);
	cr_expect_eq(tw_notify_retry_delay(&ex, 2), 2000);
	cr_expect_eq(tw_notify_retry_delay(&ex, 3), 4000);
	cr_expect_eq(tw_notify_retry_delay(&ex, 4), 8000);
	/* SNS's HTTP/S default: 3 retries 20 s apart. */
	struct tw_notify_retry d;
	tw_notify_retry_default(TW_NOTIFY_HTTPS, &d);
	cr_expect_eq(d.num_retries, 3);
	for (unsigned i = 1; i <= 3; i++)
		cr_expect_eq(tw_notify_retry_delay(&d, i), 20000);
	cr_expect_eq(tw_notify_retry_delay(&d, 4), -1);
}
