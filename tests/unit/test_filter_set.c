/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_filter_set.c: a set of patterns and value paths evaluated on events: what text a
 * pattern sees per event kind, value types and numbers at paths, several patterns at once. */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/filter.h"

static struct tw_event ct(const char *raw)
{
	struct tw_event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = TW_KIND_CLOUDTRAIL;
	ev.raw.p = raw;
	ev.raw.n = strlen(raw);
	return ev;
}

Test(filter_set, values_at_paths_have_types_and_numbers)
{
	static const char rec[] = "{\"a\":{\"b\":\"x\\ny\",\"n\":-2.5e1,\"t\":true,\"z\":null,"
				  "\"o\":{\"k\":[1,2]},\"arr\":[{\"c\":\"first\"},{\"c\":\"second\"}]}}";
	struct tw_filter_set *set;
	struct tw_filter_result r;
	struct tw_err err;
	size_t ib, in, it, iz, io, ic, iabs, iarr, again;
	struct tw_event ev = ct(rec);

	cr_assert_eq(tw_filter_set_new(&set, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.b", 5, &ib, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.n", 5, &in, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.t", 5, &it, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.z", 5, &iz, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.o", 5, &io, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.arr[1].c", 12, &ic, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.missing", 11, &iabs, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.arr", 7, &iarr, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add_path(set, "$.a.b", 5, &again, &err), TW_OK);
	cr_expect_eq(again, ib);
	cr_expect_eq(tw_filter_set_add_path(set, "a.b", 3, &again, &err), TW_EPARSE);
	cr_assert_eq(tw_filter_result_init(set, &r, &err), TW_OK);
	cr_assert_eq(tw_filter_set_eval(set, &ev, &r, &err), TW_OK);

	cr_expect_eq(r.values[ib].type, TW_FILTER_STRING);
	cr_expect_eq(r.values[ib].s.n, 4); /* x \ n y, raw */
	cr_expect_eq(r.values[ib].escaped, 1);
	cr_expect_eq(r.values[in].type, TW_FILTER_NUMBER);
	cr_expect(r.values[in].has_num && r.values[in].num == -25.0);
	cr_expect_eq(r.values[it].type, TW_FILTER_BOOL);
	cr_expect_eq(r.values[it].b, 1);
	cr_expect_eq(r.values[iz].type, TW_FILTER_NULL);
	cr_expect_eq(r.values[io].type, TW_FILTER_OBJECT);
	cr_expect_eq(r.values[io].s.n, strlen("{\"k\":[1,2]}"));
	cr_expect(!memcmp(r.values[io].s.p, "{\"k\":[1,2]}", r.values[io].s.n));
	cr_expect_eq(r.values[ic].type, TW_FILTER_STRING);
	cr_expect(r.values[ic].s.n == 6 && !memcmp(r.values[ic].s.p, "second", 6));
	cr_expect_eq(r.values[iabs].type, TW_FILTER_ABSENT);
	cr_expect_eq(r.values[iarr].type, TW_FILTER_ARRAY);
	cr_expect_eq(r.values[iarr].s.n, strlen("[{\"c\":\"first\"},{\"c\":\"second\"}]"));
	tw_filter_result_free(&r);
	tw_filter_set_free(set);
}

Test(filter_set, patterns_see_raw_record_or_cw_message)
{
	struct tw_filter_set *set;
	struct tw_filter_result r;
	struct tw_err err;
	size_t iterm, ijson, idel;
	struct tw_event ev = ct("{\"eventName\":\"StopLogging\",\"x\":\"GET 404\"}");

	cr_assert_eq(tw_filter_set_new(&set, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, "StopLogging", 11, &iterm, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, "{ $.eventName = StopLogging }", 29, &ijson, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, "[verb, code = 404]", 18, &idel, &err), TW_OK);
	cr_assert_eq(tw_filter_result_init(set, &r, &err), TW_OK);
	cr_assert_eq(tw_filter_set_eval(set, &ev, &r, &err), TW_OK);
	cr_expect_eq(r.matched[iterm], 1);
	cr_expect_eq(r.matched[ijson], 1);
	cr_expect_eq(r.matched[idel], 0); /* the raw JSON is one token with spaces inside quotes... */

	struct tw_event cw;
	memset(&cw, 0, sizeof cw);
	cw.kind = TW_KIND_CWLOG;
	cw.raw = ev.raw; /* the envelope: must not be what patterns see */
	cw.f[TW_F_MESSAGE].p = "GET 404";
	cw.f[TW_F_MESSAGE].n = 7;
	cr_assert_eq(tw_filter_set_eval(set, &cw, &r, &err), TW_OK);
	cr_expect_eq(r.matched[iterm], 0);
	cr_expect_eq(r.matched[ijson], 0); /* not JSON: a JSON pattern never matches */
	cr_expect_eq(r.matched[idel], 1);

	cw.f[TW_F_MESSAGE].p = "{\"eventName\": \"StopLogging\"}";
	cw.f[TW_F_MESSAGE].n = strlen(cw.f[TW_F_MESSAGE].p);
	cr_assert_eq(tw_filter_set_eval(set, &cw, &r, &err), TW_OK);
	cr_expect_eq(r.matched[ijson], 1);
	tw_filter_result_free(&r);

	/* A result sized before the last add is refused. */
	size_t more;
	cr_assert_eq(tw_filter_result_init(set, &r, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, "x", 1, &more, &err), TW_OK);
	cr_expect_eq(tw_filter_set_eval(set, &ev, &r, &err), TW_EINVAL);
	tw_filter_result_free(&r);
	tw_filter_set_free(set);
}

Test(filter_set, early_stop_does_not_miss_later_duplicates_of_other_paths)
{
	/* Paths found early must not hide a path that appears only at the end. */
	struct tw_filter_set *set;
	struct tw_filter_result r;
	struct tw_err err;
	size_t i1, i2;
	struct tw_event ev = ct("{\"a\":1,\"pad\":[1,2,3],\"b\":{\"c\":\"deep\"}}");

	cr_assert_eq(tw_filter_set_new(&set, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, "{ $.a = 1 && $.b.c = deep }", 27, &i1, &err), TW_OK);
	cr_assert_eq(tw_filter_set_add(set, "{ $.b.c NOT EXISTS }", 20, &i2, &err), TW_OK);
	cr_assert_eq(tw_filter_result_init(set, &r, &err), TW_OK);
	cr_assert_eq(tw_filter_set_eval(set, &ev, &r, &err), TW_OK);
	cr_expect_eq(r.matched[i1], 1);
	cr_expect_eq(r.matched[i2], 0);
	tw_filter_result_free(&r);
	tw_filter_set_free(set);
}
