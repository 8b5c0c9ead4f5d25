/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_buf.c: core/buf.c: the bounded buffer answers TW_ELIMIT at its cap and keeps
 * what it had; the arena aligns, caps, resets and duplicates. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"

Test(core_buf, append_up_to_the_cap_then_elimit)
{
	struct tw_buf b;
	struct tw_err err;
	char chunk[10];

	memset(chunk, 'x', sizeof chunk);
	tw_buf_init(&b, 100);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(tw_buf_append(&b, chunk, sizeof chunk, &err), TW_OK);
	cr_assert_eq(b.n, 100);
	tw_err_clear(&err);
	cr_assert_eq(tw_buf_append(&b, "y", 1, &err), TW_ELIMIT);
	cr_assert_eq(err.rc, TW_ELIMIT);
	cr_assert(strstr(err.msg, "100") != NULL, "message names the cap: %s", err.msg);
	cr_assert_eq(b.n, 100, "a refused append must not change the content");
	cr_assert_eq(tw_buf_putc(&b, 'y', &err), TW_ELIMIT);
	cr_assert_eq(tw_buf_printf(&b, &err, "%d", 7), TW_ELIMIT);
	cr_assert_eq(b.n, 100);
	cr_assert_eq(b.p[99], 'x');
	tw_buf_free(&b);
}

Test(core_buf, huge_reserve_is_elimit_not_overflow)
{
	struct tw_buf b;
	struct tw_err err;

	tw_buf_init(&b, 1000);
	cr_assert_eq(tw_buf_append(&b, "abc", 3, &err), TW_OK);
	cr_assert_eq(tw_buf_reserve(&b, SIZE_MAX, &err), TW_ELIMIT);
	cr_assert_eq(tw_buf_reserve(&b, SIZE_MAX - 2, &err), TW_ELIMIT);
	cr_assert_eq(tw_buf_reserve(&b, 998, &err), TW_ELIMIT); /* 3 + 998 > 1000 */
	cr_assert_eq(tw_buf_reserve(&b, 997, &err), TW_OK);
	cr_assert_eq(b.n, 3);
	tw_buf_free(&b);
}

Test(core_buf, printf_consume_and_cstr)
{
	struct tw_buf b;
	struct tw_err err;

	tw_buf_init(&b, 4096);
	cr_assert_str_eq(tw_buf_cstr(&b), "");
	cr_assert_eq(tw_buf_printf(&b, &err, "line %d: %s", 42, "ok"), TW_OK);
	cr_assert_str_eq(tw_buf_cstr(&b), "line 42: ok");
	tw_buf_consume(&b, 5);
	cr_assert_str_eq(tw_buf_cstr(&b), "42: ok");
	tw_buf_consume(&b, 100);
	cr_assert_eq(b.n, 0);
	/* Growth past the first allocation keeps the bytes. */
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(tw_buf_putc(&b, (char)('a' + i % 26), &err), TW_OK);
	cr_assert_eq(b.n, 1000);
	cr_assert_eq(b.p[0], 'a');
	cr_assert_eq(b.p[999], 'a' + 999 % 26);
	tw_buf_reset(&b);
	cr_assert_eq(b.n, 0);
	tw_buf_free(&b);
	cr_assert_null(b.p);
}

Test(core_buf, str_eq_compares_length_and_bytes)
{
	struct tw_str s = { "abc", 3 };
	struct tw_str empty = { NULL, 0 };

	cr_assert(tw_str_eq(s, "abc"));
	cr_assert(!tw_str_eq(s, "ab"));
	cr_assert(!tw_str_eq(s, "abcd"));
	cr_assert(!tw_str_eq(s, "abd"));
	cr_assert(tw_str_eq(empty, ""));
	cr_assert(!tw_str_eq(empty, "a"));
}

Test(core_buf, arena_allocations_are_aligned_and_distinct)
{
	struct tw_arena a;
	struct tw_err err;
	char *prev = NULL;

	tw_arena_init(&a, 256, 0);
	for (size_t n = 1; n < 700; n += 13) {
		char *p = tw_arena_alloc(&a, n, &err);
		cr_assert_not_null(p, "alloc %zu: %s", n, err.msg);
		cr_assert_eq((uintptr_t)p % 8, 0, "allocation of %zu bytes not 8-aligned", n);
		memset(p, 0x5a, n); /* ASan catches an allocation shorter than asked */
		cr_assert(p != prev);
		prev = p;
	}
	tw_arena_free(&a);
}

Test(core_buf, arena_cap_gives_elimit)
{
	struct tw_arena a;
	struct tw_err err;

	tw_arena_init(&a, 1024, 100);
	cr_assert_not_null(tw_arena_alloc(&a, 64, &err));
	cr_assert_not_null(tw_arena_alloc(&a, 30, &err)); /* 64 + 32 = 96 used */
	tw_err_clear(&err);
	cr_assert_null(tw_arena_alloc(&a, 8, &err));        /* 104 > 100 */
	cr_assert_eq(err.rc, TW_ELIMIT);
	cr_assert_eq(a.used, 96);
	cr_assert_null(tw_arena_alloc(&a, 4, &err)); /* rounded up to 8: the padding counts too */
	cr_assert_eq(a.used, 96);
	tw_arena_free(&a);

	/* Exactly at the cap is allowed. */
	tw_arena_init(&a, 1024, 104);
	cr_assert_not_null(tw_arena_alloc(&a, 96, &err));
	cr_assert_not_null(tw_arena_alloc(&a, 8, &err));
	cr_assert_eq(a.used, 104);
	cr_assert_null(tw_arena_alloc(&a, 1, &err));
	tw_arena_free(&a);
}

Test(core_buf, arena_huge_request_is_elimit)
{
	struct tw_arena a;
	struct tw_err err;

	tw_arena_init(&a, 1024, 1 << 20);
	tw_err_clear(&err);
	cr_assert_null(tw_arena_alloc(&a, SIZE_MAX - 3, &err));
	cr_assert_eq(err.rc, TW_ELIMIT);
	cr_assert_null(tw_arena_alloc(&a, (1 << 20) + 1, &err));
	tw_arena_free(&a);
}

Test(core_buf, arena_reset_forgets_and_reuses)
{
	struct tw_arena a;
	struct tw_err err;
	char *p1, *p2;

	tw_arena_init(&a, 4096, 10000);
	for (int i = 0; i < 5; i++)
		cr_assert_not_null(tw_arena_alloc(&a, 1500, &err));
	cr_assert_eq(a.used, 5 * 1504);
	p1 = tw_arena_alloc(&a, 2500, &err); /* 7520 + 2504 > 10000 */
	cr_assert_null(p1, "the cap of 10000 counts every allocation since the last reset");
	tw_arena_reset(&a);
	cr_assert_eq(a.used, 0);
	/* After a reset the whole cap is available again, from the kept chunk first. */
	p2 = tw_arena_alloc(&a, 2500, &err);
	cr_assert_not_null(p2, "%s", err.msg);
	cr_assert_eq(a.used, 2504);
	memset(p2, 0, 2500);
	tw_arena_free(&a);
	cr_assert_null(a.head);
	cr_assert_eq(a.used, 0);
}

Test(core_buf, arena_dup_copies_and_terminates)
{
	struct tw_arena a;
	struct tw_err err;
	char src[] = "principal";
	struct tw_str out;

	tw_arena_init(&a, 0, 0);
	cr_assert_eq(tw_arena_dup(&a, (struct tw_str){ src, 9 }, &out, &err), TW_OK);
	src[0] = 'X'; /* the copy must not follow the original */
	cr_assert_eq(out.n, 9);
	cr_assert_eq(memcmp(out.p, "principal", 9), 0);
	cr_assert_eq(out.p[9], '\0');
	cr_assert_eq(tw_arena_dup(&a, (struct tw_str){ NULL, 0 }, &out, &err), TW_OK);
	cr_assert_eq(out.n, 0);
	cr_assert_str_eq(out.p, "");
	tw_arena_free(&a);
}

Test(core_buf, arena_dup_over_cap_fails_cleanly)
{
	struct tw_arena a;
	struct tw_err err;
	struct tw_str out = { "untouched", 9 };
	char big[64];

	memset(big, 'b', sizeof big);
	tw_arena_init(&a, 0, 32);
	tw_err_clear(&err);
	cr_assert_eq(tw_arena_dup(&a, (struct tw_str){ big, sizeof big }, &out, &err), TW_ELIMIT);
	cr_assert_eq(out.n, 9);
	cr_assert_str_eq(out.p, "untouched");
	tw_arena_free(&a);
}
