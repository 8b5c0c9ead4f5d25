/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_segment.c: index/segment.c's reader on a segment file from someone else's disk.
 * The first input byte picks the mode, the rest is the file: bit 0 rewrites every checksum the
 * file's own tables locate (block frames, sections, section table, footer) so the fuzzer reaches
 * the decoders behind them (a hostile file can carry good CRCs). The file is opened, verified,
 * every record fetched (fields only, then whole), every indexed field listed and looked up, and an
 * id looked up. Checks: no crash, no leak; a segment that verifies clean serves all its records. */
#include <stdlib.h>
#include <string.h>

#include "index/segment.h"
#include "index/wal.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/scratch.h"

#define FOOTER 72
#define MAX_RECORDS 4096 /* records fetched per input: keeps executions fast */

static uint32_t crc_at(const uint8_t *f, size_t n, uint64_t off, uint64_t len, int *ok)
{
	*ok = off <= n && len <= n - off;
	return *ok ? tw_wal_crc32c(0, f + off, (size_t)len) : 0;
}

/* Rewrites the CRCs of the block frames, the sections, the section table and the footer. */
static void fix_crcs(uint8_t *f, size_t n)
{
	uint8_t *foot;
	uint64_t toff, tlen;
	uint32_t nsec, crc;
	int ok;

	if (n < 16 + FOOTER)
		return;
	foot = f + n - FOOTER;
	toff = tw_fuzz_get64(foot);
	tlen = tw_fuzz_get64(foot + 8);
	if (toff <= n - FOOTER && tlen <= n - FOOTER - toff && tlen >= 8) {
		uint8_t *tab = f + toff;
		nsec = tw_fuzz_get32(tab);
		for (int pass = 0; pass < 2; pass++) /* block frames first: they sit in the block table */
			for (uint64_t i = 0; i < nsec && 8 + 32 * (i + 1) <= tlen; i++) {
				uint8_t *e = tab + 8 + 32 * i;
				uint64_t soff = tw_fuzz_get64(e + 8), slen = tw_fuzz_get64(e + 16);
				if (pass == 0 && tw_fuzz_get32(e) == 1 && soff <= n && slen <= n - soff && slen >= 8) {
					uint8_t *bt = f + soff;
					uint32_t nb = tw_fuzz_get32(bt);
					for (uint64_t b = 0; b < nb && 8 + 80 * (b + 1) <= slen; b++) {
						uint8_t *be = bt + 8 + 80 * b;
						uint64_t at = tw_fuzz_get64(be + 24);
						for (int fr = 0; fr < 3; fr++) {
							uint8_t *d = be + 32 + 16 * fr;
							uint32_t clen = tw_fuzz_get32(d);
							crc = crc_at(f, n, at, clen, &ok);
							if (!ok)
								break;
							tw_fuzz_put32(d + 12, crc);
							at += clen;
						}
					}
				}
				if (pass == 1 && (crc = crc_at(f, n, soff, slen, &ok), ok))
					tw_fuzz_put32(e + 24, crc);
			}
		tw_fuzz_put32(foot + 16, tw_wal_crc32c(0, tab, (size_t)tlen));
	}
	tw_fuzz_put32(foot + 60, tw_wal_crc32c(0, foot, 60));
}

static void no_report(void *ctx, const char *problem)
{
	int *problems = ctx;
	if (!problem[0])
		abort();
	(*problems)++;
}

static int count_values(void *ctx, struct tw_str value, uint32_t count)
{
	size_t *nv = ctx;
	if (!value.n || !count)
		abort(); /* values are non-empty and counted */
	return ++*nv >= 64;
}

static void read_segment(const char *path)
{
	struct tw_seg *s = NULL;
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_err err;
	struct tw_ids ids = { 0 };
	const struct tw_seg_info *info;
	int problems = 0, clean;
	uint32_t rec;

	if (tw_seg_open(path, &s, &err) != TW_OK)
		return;
	info = tw_seg_get_info(s);
	clean = tw_seg_verify(s, no_report, &problems, &err) == TW_OK;
	if (clean && problems)
		abort();
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 0, 64u << 20);
	for (uint64_t r = 0; r < info->records && r < MAX_RECORDS; r++) {
		struct tw_event ev;
		enum tw_rc rc1 = tw_seg_get_fields(s, (uint32_t)r, &bb, &ev, &a, &err);
		enum tw_rc rc2 = tw_seg_get(s, (uint32_t)r, &bb, &ev, &a, &err);
		if (clean && (rc1 != TW_OK || rc2 != TW_OK))
			abort(); /* verify said every block decodes */
		if (rc2 == TW_OK && ev.f[TW_F_EVENT_ID].n &&
		    tw_seg_has_id(s, ev.f[TW_F_EVENT_ID], &rec, &err) != 1 && clean)
			abort(); /* a clean segment finds each of its ids */
		tw_arena_reset(&a);
	}
	for (int f = 0; f < TW_IX__COUNT; f++) {
		size_t nv = 0;
		if (f == TW_IX_EVENT_ID)
			continue;
		(void)tw_seg_values(s, (enum tw_ix)f, count_values, &nv, &err);
		(void)tw_seg_lookup(s, (enum tw_ix)f, TW_STR_LIT("true"), &ids, &err);
		ids.n = 0;
		(void)tw_seg_lookup_prefix(s, (enum tw_ix)f, TW_STR_LIT("a"), &ids, &err);
		for (size_t i = 1; i < ids.n; i++)
			if (ids.v[i - 1] >= ids.v[i])
				abort(); /* sorted, unique */
		ids.n = 0;
	}
	(void)tw_seg_has_id(s, TW_STR_LIT("00000000-0000-0000-0000-000000000000"), &rec, &err);
	tw_ids_free(&ids);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
}

TW_FUZZ_TARGET(segment)
{
	static const char *dir;
	static char path[512];
	uint8_t *f;

	if (!dir) {
		if (!(dir = tw_fuzz_scratch("segment")))
			return 0;
		snprintf(path, sizeof path, "%s/00000001.tws", dir);
	}
	if (size < 1 || !(f = malloc(size)))
		return 0;
	memcpy(f, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(f, size - 1);
	if (tw_fuzz_write_file(path, f, size - 1) == 0)
		read_segment(path);
	free(f);
	return 0;
}
