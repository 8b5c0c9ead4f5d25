/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_band_state.c: alerts/band.c state: save, load and continue is bit for bit the
 * uninterrupted run; a backfill through tw_band_train is the same state as feeding point by point;
 * damaged saved states are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "alerts/band.h"

#define T0 1391000000000LL /* 2014-01-29T12:53:20Z */
#define STEP_MS 300000LL   /* 5 minutes */

/* A series with a daily bump, noise, a spike and a level shift: every part of the state moves. */
static double series(int i)
{
	uint64_t s = (uint64_t)i * 2654435761u + 12345;
	double noise = (double)(s % 1000) / 500.0 - 1.0;
	double h = (double)(((T0 + i * STEP_MS) / 1000) % 86400) / 3600.0;
	return 20 + 8 * exp(-(h - 12) * (h - 12) / 4) + noise + (i == 2500 ? 40 : 0) + (i >= 3200 ? 15 : 0);
}

static void run(struct tw_band *b, int from, int to, struct tw_band_point *out)
{
	struct tw_err err;
	for (int i = from; i < to; i++)
		cr_assert_eq(tw_band_update(b, T0 + i * STEP_MS, series(i), &out[i], &err), TW_OK);
}

Test(band_state, save_load_continue_is_bit_exact)
{
	enum { N = 4000 };
	static struct tw_band_point whole[N], resumed[N];
	const int cuts[] = { 1, 7, 1500, 2501, 3203 };

	for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
		struct tw_band a, b, loaded;
		struct tw_buf buf;
		struct tw_err err;

		tw_band_init(&a, 2);
		run(&a, 0, N, whole);
		tw_band_init(&b, 2);
		run(&b, 0, cuts[c], resumed);
		tw_buf_init(&buf, 1 << 20);
		cr_assert_eq(tw_band_save(&b, &buf, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(buf.n, TW_BAND_SAVED_SIZE);
		memset(&loaded, 0xa5, sizeof loaded);
		cr_assert_eq(tw_band_load(&loaded, buf.p, buf.n, &err), TW_OK, "%s", err.msg);
		run(&loaded, cuts[c], N, resumed);
		for (int i = 0; i < N; i++)
			cr_assert_eq(memcmp(&whole[i], &resumed[i], sizeof whole[i]), 0,
				     "cut at %d: point %d differs (score %.17g vs %.17g)", cuts[c], i,
				     whole[i].score, resumed[i].score);
		tw_buf_free(&buf);
	}
}

Test(band_state, train_equals_point_by_point)
{
	enum { N = 3000 };
	static int64_t ts[N];
	static double vs[N];
	static struct tw_band_point pts[N];
	struct tw_band a, b;
	struct tw_buf sa, sb;
	struct tw_err err;
	size_t skipped = 99;

	for (int i = 0; i < N; i++) {
		ts[i] = T0 + i * STEP_MS;
		vs[i] = series(i);
	}
	vs[10] = NAN; /* skipped by train, as update would refuse it */
	tw_band_init(&a, 2);
	cr_assert_eq(tw_band_train(&a, ts, vs, N, &skipped, &err), TW_OK);
	cr_assert_eq(skipped, 1);
	tw_band_init(&b, 2);
	for (int i = 0; i < N; i++)
		if (i != 10)
			cr_assert_eq(tw_band_update(&b, ts[i], vs[i], &pts[i], &err), TW_OK);
	tw_buf_init(&sa, 1 << 20);
	tw_buf_init(&sb, 1 << 20);
	cr_assert_eq(tw_band_save(&a, &sa, &err), TW_OK);
	cr_assert_eq(tw_band_save(&b, &sb, &err), TW_OK);
	cr_assert_eq(sa.n, sb.n);
	cr_assert_eq(memcmp(sa.p, sb.p, sa.n), 0);
	tw_buf_free(&sa);
	tw_buf_free(&sb);
}

Test(band_state, load_refuses_damaged_states)
{
	struct tw_band b, keep;
	struct tw_buf buf;
	struct tw_err err;
	static struct tw_band_point pts[500];

	tw_band_init(&b, 2);
	run(&b, 0, 500, pts);
	tw_buf_init(&buf, 1 << 20);
	cr_assert_eq(tw_band_save(&b, &buf, &err), TW_OK);
	memset(&keep, 0x5a, sizeof keep);
	/* short */
	cr_assert_eq(tw_band_load(&keep, buf.p, buf.n - 1, &err), TW_ECORRUPT);
	/* one flipped bit anywhere in the body: checksum */
	for (size_t off = 8; off < buf.n; off += 97) {
		buf.p[off] ^= 0x10;
		cr_assert_eq(tw_band_load(&keep, buf.p, buf.n, &err), TW_ECORRUPT, "flip at %zu accepted", off);
		buf.p[off] ^= 0x10;
	}
	/* magic */
	buf.p[0] = 'X';
	cr_assert_eq(tw_band_load(&keep, buf.p, buf.n, &err), TW_ECORRUPT);
	buf.p[0] = 'T';
	/* another version (with its checksum fixed up the way band.c computes it: FNV-1a 32) */
	buf.p[6] = 3;
	{
		uint32_t h = 2166136261u;
		for (size_t i = 0; i + 4 < buf.n; i++) {
			h ^= (unsigned char)buf.p[i];
			h *= 16777619u;
		}
		for (int i = 0; i < 4; i++)
			buf.p[buf.n - 4 + (size_t)i] = (char)(h >> (8 * i));
	}
	cr_assert_eq(tw_band_load(&keep, buf.p, buf.n, &err), TW_EUNSUP);
	cr_assert(strstr(err.msg, "version 3") != NULL, "%s", err.msg);
	for (size_t i = 0; i < sizeof keep; i++)
		cr_assert_eq(((unsigned char *)&keep)[i], 0x5a, "state written on a refused load");
	tw_buf_free(&buf);
}

Test(band_state, save_respects_the_buffer_cap)
{
	struct tw_band b;
	struct tw_buf buf;
	struct tw_err err;

	tw_band_init(&b, 2);
	tw_buf_init(&buf, 100);
	cr_assert_eq(tw_band_save(&b, &buf, &err), TW_ELIMIT);
	cr_assert_eq(buf.n, 0);
	tw_buf_free(&buf);
}

Test(band_state, state_size_is_fixed_and_small)
{
	/* all state lives in the struct (no pointers to grow): its size is the memory per series */
	cr_assert_leq(sizeof(struct tw_band), 8192);
	cr_assert_leq(TW_BAND_SAVED_SIZE, 8192);
}
