/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_time.c: core/time.c, timestamp parsing and formatting.
 * Expected epoch values were computed independently with Python's datetime module
 * (datetime(..., tzinfo=timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)). */
#include <criterion/criterion.h>
#include <string.h>

#include "core/time.h"

static int64_t parse_ok(const char *s)
{
	struct tw_err err;
	int64_t ms = 0x7fffffff;
	enum tw_rc rc;

	tw_err_clear(&err);
	rc = tw_time_parse(s, strlen(s), &ms, &err);
	cr_assert_eq(rc, TW_OK, "parsing \"%s\" failed: %s", s, err.msg);
	return ms;
}

static void parse_bad(const char *s)
{
	struct tw_err err;
	int64_t ms = 12345;
	enum tw_rc rc;

	tw_err_clear(&err);
	rc = tw_time_parse(s, strlen(s), &ms, &err);
	cr_assert_eq(rc, TW_EPARSE, "\"%s\" should be rejected (got rc %d, ms %lld)", s, rc, (long long)ms);
	cr_assert_eq(err.rc, TW_EPARSE);
	cr_assert(strstr(err.msg, "bad timestamp") != NULL, "message: %s", err.msg);
	cr_assert_eq(ms, 12345, "out value written on failure for \"%s\"", s);
}

Test(core_time, parses_iso_extended_utc)
{
	cr_assert_eq(parse_ok("2026-11-02T00:00:00Z"), 1793577600000LL);
	cr_assert_eq(parse_ok("2013-11-02T01:06:28Z"), 1383354388000LL);
	cr_assert_eq(parse_ok("2013-11-02 01:06:28Z"), 1383354388000LL);
	cr_assert_eq(parse_ok("2013-11-02t01:06:28z"), 1383354388000LL);
	cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
}

Test(core_time, parses_fractions_truncated_to_ms)
{
	cr_assert_eq(parse_ok("2026-11-02T00:00:00.5Z"), 1793577600500LL);
	cr_assert_eq(parse_ok("2026-11-02T00:00:00.12Z"), 1793577600120LL);
	cr_assert_eq(parse_ok("2026-11-02T00:00:00.123Z"), 1793577600123LL);
	cr_assert_eq(parse_ok("2026-11-02T00:00:00.123456789Z"), 1793577600123LL);
	cr_assert_eq(parse_ok("2026-11-02T00:00:00.999999Z"), 1793577600999LL);
	parse_bad("2026-11-02T00:00:00.Z");
}

Test(core_time, applies_utc_offsets)
{
	/* 2026-11-02T02:00:00+02:00 is midnight UTC; -05:30 moves the other way. */
	cr_assert_eq(parse_ok("2026-11-02T02:00:00+02:00"), 1793577600000LL);
	cr_assert_eq(parse_ok("2026-11-02T02:00:00+0200"), 1793577600000LL);
	cr_assert_eq(parse_ok("2026-11-01T18:30:00-05:30"), 1793577600000LL);
	cr_assert_eq(parse_ok("2026-11-01T18:30:00-0530"), 1793577600000LL);
	cr_assert_eq(parse_ok("2026-11-01T18:30:00+00:00"), 1793557800000LL);
	parse_bad("2026-11-02T00:00:00+24:00");
	parse_bad("2026-11-02T00:00:00+02:60");
}

Test(core_time, parses_iso_basic_form)
{
	cr_assert_eq(parse_ok("20131102T010628Z"), 1383354388000LL);
	cr_assert_eq(parse_ok("20131102T010628.250Z"), 1383354388250LL);
	cr_assert_eq(parse_ok("20261102T000000Z"), 1793577600000LL);
}

Test(core_time, parses_epoch_milliseconds_and_seconds)
{
	cr_assert_eq(parse_ok("1700000000000"), 1700000000000LL);
	cr_assert_eq(parse_ok("1700000000"), 1700000000000LL);
	cr_assert_eq(parse_ok("1383354388000"), 1383354388000LL);
	cr_assert_eq(parse_ok("0"), 0);
	parse_bad("17000000x0");
	parse_bad("");
	parse_bad("   ");
}

Test(core_time, knows_leap_years)
{
	cr_assert_eq(parse_ok("2024-02-29T12:00:00Z"), 1709208000000LL);
	cr_assert_eq(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL); /* divisible by 400 */
	parse_bad("2023-02-29T00:00:00Z");
	parse_bad("1900-02-29T00:00:00Z"); /* divisible by 100, not 400 */
	parse_bad("2100-02-29T00:00:00Z");
	parse_bad("2024-02-30T00:00:00Z");
}

Test(core_time, rejects_out_of_range_fields)
{
	parse_bad("2026-13-01T00:00:00Z");
	parse_bad("2026-00-10T00:00:00Z");
	parse_bad("2026-01-00T00:00:00Z");
	parse_bad("2026-01-32T00:00:00Z");
	parse_bad("2026-04-31T00:00:00Z");
	parse_bad("2026-11-02T24:00:00Z");
	parse_bad("2026-11-02T23:60:00Z");
	parse_bad("2026-11-02T23:59:61Z");
	parse_bad("2026-11-02T00:00:00Zjunk");
	parse_bad("2026-11-02X00:00:00Z");
	parse_bad("26-11-02T00:00:00Z");
}

Test(core_time, folds_leap_second_into_59)
{
	cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"), 1483228799000LL);
	cr_assert_eq(parse_ok("2016-12-31T23:59:59Z"), 1483228799000LL);
}

Test(core_time, formats_whole_seconds_and_milliseconds)
{
	char buf[TW_TIME_BUFSZ];

	cr_assert_eq(tw_time_format(1793577600000LL, buf), 20);
	cr_assert_str_eq(buf, "2026-11-02T00:00:00Z");
	cr_assert_eq(tw_time_format(1383354388250LL, buf), 24);
	cr_assert_str_eq(buf, "2013-11-02T01:06:28.250Z");
	tw_time_format(0, buf);
	cr_assert_str_eq(buf, "1970-01-01T00:00:00Z");
	tw_time_format(253402300799000LL, buf);
	cr_assert_str_eq(buf, "9999-12-31T23:59:59Z");
}

Test(core_time, formats_and_parses_times_before_1970)
{
	char buf[TW_TIME_BUFSZ];

	tw_time_format(-1, buf);
	cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
	tw_time_format(-86400000LL, buf);
	cr_assert_str_eq(buf, "1969-12-31T00:00:00Z");
	tw_time_format(-2208988800000LL, buf);
	cr_assert_str_eq(buf, "1900-01-01T00:00:00Z");
	cr_assert_eq(parse_ok("1969-12-31T23:59:59.999Z"), -1);
	cr_assert_eq(parse_ok("1600-03-01T00:00:00Z"), -11670912000000LL);
	cr_assert_eq(parse_ok("1066-10-14T09:00:00Z"), -28502722800000LL);
}

Test(core_time, format_then_parse_round_trips)
{
	/* A spread of values across four centuries, including negative ones and odd milliseconds. */
	int64_t ms = -11670912000000LL;
	int n = 0;

	while (ms < 4102444800000LL) { /* 2100-01-01 */
		char buf[TW_TIME_BUFSZ];
		size_t len = tw_time_format(ms, buf);
		int64_t back = 0;
		struct tw_err err;
		cr_assert_eq(len, strlen(buf));
		cr_assert_eq(tw_time_parse(buf, len, &back, &err), TW_OK, "%s: %s", buf, err.msg);
		cr_assert_eq(back, ms, "%s parsed to %lld, want %lld", buf, (long long)back, (long long)ms);
		ms += 7777777777LL + (ms & 1023); /* ~90 days, uneven milliseconds */
		n++;
	}
	cr_assert_gt(n, 500);
}

Test(core_time, civil_day_conversion_is_inverse)
{
	for (int64_t days = -800000; days < 800000; days += 997) {
		int64_t y;
		unsigned m, d;
		tw_civil_from_days(days, &y, &m, &d);
		cr_assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
		cr_assert_eq(tw_days_from_civil(y, m, d), days);
	}
	cr_assert_eq(tw_days_from_civil(1970, 1, 1), 0);
	cr_assert_eq(tw_days_from_civil(2026, 11, 2), 1793577600000LL / 86400000);
}

Test(core_time, parses_durations)
{
	int64_t ms;
	struct tw_err err;

	cr_assert_eq(tw_duration_parse("90s", &ms, &err), TW_OK);
	cr_assert_eq(ms, 90000);
	cr_assert_eq(tw_duration_parse("15m", &ms, &err), TW_OK);
	cr_assert_eq(ms, 900000);
	cr_assert_eq(tw_duration_parse("24h", &ms, &err), TW_OK);
	cr_assert_eq(ms, 86400000);
	cr_assert_eq(tw_duration_parse("2w", &ms, &err), TW_OK);
	cr_assert_eq(ms, 14 * 86400000LL);
	cr_assert_eq(tw_duration_parse("1500ms", &ms, &err), TW_OK);
	cr_assert_eq(ms, 1500);
	cr_assert_eq(tw_duration_parse("5y", &ms, &err), TW_EPARSE);
	cr_assert_eq(tw_duration_parse("h", &ms, &err), TW_EPARSE);
}
