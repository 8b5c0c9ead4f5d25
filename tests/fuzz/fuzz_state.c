/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_state.c: the detectors' saved states as found in STORE/anomalies/ (insight.c,
 * firstseen.c) and a band model's file (band.c). The first input byte picks the loader (bits 0-1:
 * 0 insight, 1 first-seen, 2 band) and bit 2 rewrites the trailing checksum first (so the fuzzer
 * reaches the decoder; a hostile file can carry a good CRC); the rest is the file. Checks: a state
 * that loads saves, and that save loads again and saves to the same bytes; the loaded state then
 * takes an event (a point) and moves its clock forward without crashing. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alerts/band.h"
#include "alerts/firstseen.h"
#include "alerts/insight.h"
#include "tests/fuzz/fuzz.h"

#define T0 1793598360000LL /* 2026-11-02T05:46:00Z */

static void no_emit(void *ctx, const struct tw_anomaly *a)
{
	(void)ctx;
	if (!a->detector[0])
		abort();
}

static void same(const struct tw_buf *a, const struct tw_buf *b)
{
	if (a->n != b->n || memcmp(a->p, b->p, a->n))
		abort(); /* load(save(s)) saves to the same bytes */
}

static void insight(const uint8_t *p, size_t n)
{
	struct tw_insight *s = NULL, *s2 = NULL;
	struct tw_insight_obs ob = { T0, TW_STR_LIT("1"), TW_STR_LIT("us-east-1"), TW_STR_LIT("iam.amazonaws.com"),
				     TW_STR_LIT("ListUsers"), TW_STR_LIT("arn:aws:iam::1:user/a"),
				     TW_STR_LIT("aws-cli/2"), TW_STR_LIT("AccessDenied"), TW_STR_LIT("id-1") };
	struct tw_buf b1, b2;
	struct tw_err err;

	tw_buf_init(&b1, 64u << 20);
	tw_buf_init(&b2, 64u << 20);
	if (tw_insight_new(NULL, &s, &err) || tw_insight_new(NULL, &s2, &err))
		abort();
	if (tw_insight_load(s, p, n, &err) == TW_OK) {
		if (tw_insight_save(s, &b1, &err) || tw_insight_load(s2, b1.p, b1.n, &err) ||
		    tw_insight_save(s2, &b2, &err))
			abort();
		same(&b1, &b2);
		(void)tw_insight_observe(s, &ob, no_emit, NULL, &err);
		(void)tw_insight_advance(s, T0 + 3600000, no_emit, NULL, &err);
	}
	tw_insight_free(s);
	tw_insight_free(s2);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
}

static void firstseen(const uint8_t *p, size_t n)
{
	struct tw_firstseen *s = NULL, *s2 = NULL;
	struct tw_firstseen_obs ob = { T0, TW_STR_LIT("1"), TW_STR_LIT("us-east-1"), TW_STR_LIT("iam.amazonaws.com"),
				       TW_STR_LIT("ListUsers"), TW_STR_LIT("arn:aws:iam::1:user/a"), TW_STR_LIT("10.1.2.3"),
				       TW_STR_LIT("aws-cli/2"), TW_STR_LIT("id-1") };
	struct tw_buf b1, b2;
	struct tw_err err;

	tw_buf_init(&b1, 64u << 20);
	tw_buf_init(&b2, 64u << 20);
	if (tw_firstseen_new(NULL, &s, &err) || tw_firstseen_new(NULL, &s2, &err))
		abort();
	if (tw_firstseen_load(s, p, n, &err) == TW_OK) {
		if (tw_firstseen_save(s, &b1, &err) || tw_firstseen_load(s2, b1.p, b1.n, &err) ||
		    tw_firstseen_save(s2, &b2, &err))
			abort();
		same(&b1, &b2);
		(void)tw_firstseen_observe(s, &ob, no_emit, NULL, &err);
		tw_firstseen_advance(s, T0 + 3600000, 1, no_emit, NULL);
	}
	tw_firstseen_free(s);
	tw_firstseen_free(s2);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
}

static void band(const uint8_t *p, size_t n)
{
	static struct tw_band b, b2; /* about 6 KB each */
	struct tw_band_point pt;
	struct tw_buf s1, s2;
	struct tw_err err;

	tw_band_init(&b, 0);
	if (tw_band_load(&b, p, n, &err) != TW_OK)
		return;
	tw_buf_init(&s1, 1u << 20);
	tw_buf_init(&s2, 1u << 20);
	if (tw_band_save(&b, &s1, &err) || tw_band_load(&b2, s1.p, s1.n, &err) || tw_band_save(&b2, &s2, &err))
		abort();
	same(&s1, &s2);
	(void)tw_band_update(&b, T0, 42, &pt, &err);
	tw_band_peek(&b, T0 + 60000, &pt);
	(void)tw_band_confidence(&b);
	tw_buf_free(&s1);
	tw_buf_free(&s2);
}

TW_FUZZ_TARGET(state)
{
	uint8_t *f;
	size_t n;

	if (size < 1 || !(f = malloc(size)))
		return 0;
	n = size - 1;
	memcpy(f, data + 1, n);
	if ((data[0] & 4) && n >= 4 && (data[0] & 3) == 2) {
		uint32_t h = 2166136261u; /* a band file ends in FNV-1a 32 of the rest, little-endian */
		for (size_t i = 0; i < n - 4; i++)
			h = (h ^ f[i]) * 16777619u;
		for (int i = 0; i < 4; i++)
			f[n - 4 + i] = (uint8_t)(h >> (8 * i));
	} else if ((data[0] & 4) && n >= 4) {
		uint32_t crc = (uint32_t)crc32(0L, f, (uInt)(n - 4));
		memcpy(f + n - 4, &crc, 4); /* native order, as the detectors write it */
	}
	switch (data[0] & 3) {
	case 0:
		insight(f, n);
		break;
	case 1:
		firstseen(f, n);
		break;
	case 2:
		band(f, n);
		break;
	default:
		break;
	}
	free(f);
	return 0;
}
