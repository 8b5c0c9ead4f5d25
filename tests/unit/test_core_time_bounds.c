/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_time_bounds.c: tw_time_parse reads only the n bytes it is given. The
 * decoders hand it slices of larger buffers that are not NUL-terminated; an early version ran
 * strspn() past the slice (found by fuzzing the CloudWatch export-line decoder). Under make check
 * (ASan) a read past the exact-size allocation below fails the test. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"

static int64_t parse_exact(const char *text, enum tw_rc *rc)
{
	size_t n = strlen(text);
	char *p = malloc(n); /* no room for a NUL: any overread leaves the allocation */
	int64_t ms = 0;
	cr_assert(p);
	memcpy(p, text, n);
	*rc = tw_time_parse(p, n, &ms, NULL);
	free(p);
	return ms;
}

Test(core_time_bounds, epoch_digits_without_terminator)
{
	enum tw_rc rc;
	int64_t ms = parse_exact("1700000000123", &rc);
	cr_assert_eq(rc, TW_OK);
	cr_assert_eq(ms, 1700000000123LL);
}

Test(core_time_bounds, iso_without_terminator)
{
	enum tw_rc rc;
	int64_t ms = parse_exact("2026-11-02T00:00:01Z", &rc);
	cr_assert_eq(rc, TW_OK);
	cr_assert_eq(ms, 1793577601000LL);
}

Test(core_time_bounds, slice_of_a_longer_text_ignores_what_follows)
{
	const char *text = "2026-11-02T00:00:01Z trailing message";
	int64_t ms = 0;
	cr_assert_eq(tw_time_parse(text, 20, &ms, NULL), TW_OK);
	cr_assert_eq(ms, 1793577601000LL);
	/* A date-only prefix of digits is read as what the slice holds, not what follows it. */
	cr_assert_eq(tw_time_parse("1234567890123-rest", 13, &ms, NULL), TW_OK);
	cr_assert_eq(ms, 1234567890123LL);
}
