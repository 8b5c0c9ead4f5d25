/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_index_segment.c: segment files round-trip every record byte for byte, their
 * lookups equal a brute-force scan, the event-id index survives forced hash collisions, and a
 * truncated or bit-flipped file fails cleanly (TW_ECORRUPT naming the block or section) while
 * its undamaged parts stay readable, and each posting-list encoding (delta, runs, bitmap) is
 * chosen where it is smallest, decodes (by an independent decoder here) to the scan's answer,
 * and is refused when malformed; the writer's fast paths keep the format exact (field columns say
 * "same" exactly when the previous record of the block matches, the order check reaches every key,
 * id-index entries sorted by bucket, fingerprint, block); tw_seg_get_fields gives every field
 * without raw, never reads a block's raw frame, and a later tw_seg_get of a cached block reads only
 * that frame; raw records rebuilt one at a time equal the written ones in any fetch order, and a bad
 * raw entry late in a block fails from that record on while the earlier ones still decode. Offsets of blocks and sections are found by reading the layout documented in
 * index/FORMAT.md, not through the reader under test. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"
#include "index/evcodec.h"
#include "index/segment.h"
#include "index/segment_int.h"
#include "index/wal.h"

#include <zstd.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct tw_arena pool; /* strings of the generated events */

static struct tw_str dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct tw_str dupf(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	struct tw_str out = { NULL, 0 };
	if (n > 0)
		cr_assert_eq(tw_arena_dup(&pool, (struct tw_str){ tmp, (size_t)n }, &out, NULL), TW_OK);
	return out;
}

static const char *principals[] = { "", "arn:aws:iam::111:user/alice", "arn:aws:iam::111:user/bob",
				    "arn:aws:sts::222:assumed-role/Admin/x", "root", "a\"b\\c\xc3\xa9" };
static const char *sources[] = { "iam.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com", "" };
static const char *names[] = { "GetObject", "PutObject", "AssumeRole", "ListBuckets", "Get" };

/* Fills ev[0..n) with varied events (CloudTrail with ids, CW log events without, escapes). */
static void make_events(struct tw_event *ev, size_t n)
{
	tw_arena_init(&pool, 1 << 16, 0);
	for (size_t i = 0; i < n; i++) {
		struct tw_event *e = &ev[i];
		memset(e, 0, sizeof(*e));
		uint64_t r = rnd();
		e->kind = r % 10 == 0 ? TW_KIND_CWLOG : r % 10 == 1 ? TW_KIND_INSIGHT : TW_KIND_CLOUDTRAIL;
		e->time_ms = 1700000000000ll + (int64_t)(rnd() % 86400000) - (r % 97 == 0 ? 1700000000000ll * 2 : 0);
		e->read_only = (int8_t)((int)(rnd() % 3) - 1);
		const char *pr = principals[rnd() % 6];
		if (*pr)
			e->f[TW_F_PRINCIPAL] = dupf("%s", pr);
		if (*sources[r % 4])
			e->f[TW_F_EVENT_SOURCE] = dupf("%s", sources[r % 4]);
		e->f[TW_F_EVENT_NAME] = dupf("%s", names[rnd() % 5]);
		if (e->kind != TW_KIND_CWLOG && rnd() % 50)
			e->f[TW_F_EVENT_ID] = dupf("%08llx-%zu", (unsigned long long)(rnd() & 0xffffffff), i);
		if (e->kind == TW_KIND_CWLOG) {
			e->f[TW_F_LOG_GROUP] = dupf("/aws/lambda/f%llu", (unsigned long long)(rnd() % 4));
			e->f[TW_F_LOG_STREAM] = dupf("stream-%llu", (unsigned long long)(rnd() % 30));
			e->f[TW_F_MESSAGE] = dupf("line %zu \t tab", i);
		}
		e->f[TW_F_REGION] = dupf("us-east-%llu", (unsigned long long)(rnd() % 3));
		e->f[TW_F_ACCOUNT] = dupf("%012llu", (unsigned long long)(rnd() % 5));
		if (rnd() % 3 == 0)
			e->f[TW_F_ERROR_CODE] = dupf("AccessDenied%s", rnd() % 2 ? "" : "Exception");
		if (rnd() % 2)
			e->f[TW_F_SOURCE_IP] = dupf("10.0.%llu.%llu", (unsigned long long)(rnd() % 4),
						    (unsigned long long)(rnd() % 250));
		e->f[TW_F_USER_NAME] = dupf("user%llu", (unsigned long long)(rnd() % 40));
		if (rnd() % 4 == 0)
			e->f[TW_F_ACCESS_KEY] = dupf("AKIA%06llu", (unsigned long long)(rnd() % 20));
		if (rnd() % 5 == 0)
			e->f[TW_F_SSO_USER] = dupf("sso%llu", (unsigned long long)(rnd() % 3));
		if (rnd() % 5 == 0)
			e->f[TW_F_SESSION_ISSUER] = dupf("arn:aws:iam::1:role/R%llu", (unsigned long long)(rnd() % 3));
		e->f[TW_F_IDENTITY_TYPE] = dupf("%s", rnd() % 2 ? "IAMUser" : "AssumedRole");
		e->nresources = (uint32_t)(rnd() % 4);
		if (e->nresources) {
			e->resources = tw_arena_alloc(&pool, e->nresources * sizeof(struct tw_str), NULL);
			for (uint32_t k = 0; k < e->nresources; k++)
				e->resources[k] = rnd() % 9 == 0 ? (struct tw_str){ NULL, 0 }
								 : dupf("arn:aws:s3:::bucket%llu", (unsigned long long)(rnd() % 25));
		}
		struct tw_str id = e->f[TW_F_EVENT_ID];
		if (i % 4 == 0) /* the segment keeps the id once: raw must come back with it in place */
			e->raw = dupf("{\"eventName\":\"%.*s\",\"n\":%zu,\"s\":\"caf\\u00e9 \\\"q\\\" \\n\"}",
				      (int)e->f[TW_F_EVENT_NAME].n, e->f[TW_F_EVENT_NAME].p, i);
		else if (i % 4 == 1)
			e->raw = dupf("{\"eventID\":\"%.*s\",\"n\":%zu}", (int)id.n, id.p, i);
		else if (i % 4 == 2)
			e->raw = dupf("%.*s", (int)id.n, id.p); /* nothing but the id (or empty) */
		else
			e->raw = dupf("%.*s|%zu|%.*s", (int)id.n, id.p, i, (int)id.n, id.p);
	}
}

/* Appends to out each value of indexed field f in ev, written independently of segment.c. */
static size_t values_of(const struct tw_event *e, int f, struct tw_str *out)
{
	static const int map[TW_IX__COUNT] = { TW_F_EVENT_NAME, TW_F_EVENT_SOURCE, TW_F_REGION,
					       TW_F_ACCOUNT, TW_F_PRINCIPAL, TW_F_IDENTITY_TYPE,
					       TW_F_USER_NAME, TW_F_ACCESS_KEY, TW_F_SSO_USER,
					       TW_F_SESSION_ISSUER, TW_F_SOURCE_IP, TW_F_ERROR_CODE,
					       -1, -1, TW_F_LOG_GROUP, TW_F_LOG_STREAM, -1, -1 };
	size_t n = 0;
	if (f == TW_IX_READ_ONLY) {
		if (e->read_only >= 0)
			out[n++] = e->read_only ? TW_STR_LIT("true") : TW_STR_LIT("false");
	} else if (f == TW_IX_KIND) {
		out[n++] = e->kind == TW_KIND_CWLOG ? TW_STR_LIT("cwlog")
			   : e->kind == TW_KIND_INSIGHT ? TW_STR_LIT("insight") : TW_STR_LIT("cloudtrail");
	} else if (f == TW_IX_RESOURCE) {
		for (uint32_t k = 0; k < e->nresources; k++)
			if (e->resources[k].n)
				out[n++] = e->resources[k];
	} else if (e->f[map[f]].n) {
		out[n++] = e->f[map[f]];
	}
	return n;
}

static int str_eq(struct tw_str a, struct tw_str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static int has_value(const struct tw_event *e, int f, struct tw_str v, int prefix)
{
	struct tw_str vals[16];
	size_t n = values_of(e, f, vals);
	for (size_t i = 0; i < n; i++)
		if (prefix ? (vals[i].n >= v.n && memcmp(vals[i].p, v.p, v.n) == 0) : str_eq(vals[i], v))
			return 1;
	return 0;
}

static void check_ids(const struct tw_ids *ids, const struct tw_event *ev, size_t n, int f,
		      struct tw_str v, int prefix)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (has_value(&ev[i], f, v, prefix)) {
			cr_assert(k < ids->n, "field %s value %.*s: record %zu missing", tw_ix_name(f),
				  (int)v.n, v.p, i);
			cr_assert_eq(ids->v[k], i, "field %s value %.*s: id %u != %zu", tw_ix_name(f),
				     (int)v.n, v.p, ids->v[k], i);
			k++;
		}
	cr_assert_eq(k, ids->n, "field %s: %zu ids, expected %zu", tw_ix_name(f), ids->n, k);
}

/* Encodes e for a byte-for-byte comparison. */
static void enc(const struct tw_event *e, struct tw_buf *b)
{
	tw_buf_reset(b);
	cr_assert_eq(tw_evcodec_encode(b, e, NULL), TW_OK);
}

#define N_EVENTS 3000

/* What the tw_seg_values callback checks against. */
struct vals_ctx {
	struct tw_event *ev; /* the events, in segment order */
	int f;               /* field */
	struct tw_str prev;  /* previous value */
	size_t n, total;     /* values seen, sum of their counts */
};
static int cb(void *ctx, struct tw_str v, uint32_t count);

static struct tw_seg *write_and_open(const char *path, struct tw_event *ev, size_t n, size_t block_bytes,
				     struct tw_seg_info *info)
{
	struct tw_seg_opts o;
	struct tw_err err;
	struct tw_seg *s;
	tw_seg_opts_default(&o);
	o.block_bytes = block_bytes;
	o.fsync = 0;
	cr_assert_eq(tw_seg_write(path, ev, n, &o, info, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_seg_open(path, &s, &err), TW_OK, "%s", err.msg);
	return s;
}

Test(index_segment, round_trip_and_lookups_match_a_scan)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "a.tws");
	static struct tw_event ev[N_EVENTS];
	struct tw_seg_info info;
	struct tw_err err;
	make_events(ev, N_EVENTS);
	struct tw_seg *s = write_and_open(path, ev, N_EVENTS, 64 << 10, &info);
	/* tw_seg_write sorted ev: record i is ev[i] */
	for (size_t i = 1; i < N_EVENTS; i++)
		cr_assert(tw_seg_order(&ev[i - 1], &ev[i]) <= 0);
	const struct tw_seg_info *si = tw_seg_get_info(s);
	cr_assert_eq(si->records, N_EVENTS);
	cr_assert_eq(info.records, N_EVENTS);
	cr_assert_gt(si->blocks, 3, "64 KiB blocks should give several blocks");
	cr_assert_eq(si->bytes_total, info.bytes_total);
	cr_assert_eq(si->bytes_blocks, info.bytes_blocks);
	uint64_t raw = 0;
	int64_t tmin = INT64_MAX, tmax = INT64_MIN;
	for (size_t i = 0; i < N_EVENTS; i++) {
		raw += ev[i].raw.n;
		tmin = ev[i].time_ms < tmin ? ev[i].time_ms : tmin;
		tmax = ev[i].time_ms > tmax ? ev[i].time_ms : tmax;
	}
	cr_assert_eq(si->raw_bytes, raw);
	cr_assert_eq(si->tmin, tmin);
	cr_assert_eq(si->tmax, tmax);

	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_buf b1, b2;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	tw_buf_init(&b1, 1 << 20);
	tw_buf_init(&b2, 1 << 20);
	for (size_t i = 0; i < N_EVENTS; i++) {
		struct tw_event got;
		cr_assert_eq(tw_seg_get(s, (uint32_t)i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
		enc(&ev[i], &b1);
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %zu differs", i);
		cr_assert(str_eq(got.raw, ev[i].raw));
		uint32_t blk = tw_seg_block_of(s, (uint32_t)i);
		struct tw_seg_block m;
		tw_seg_block_meta(s, blk, &m);
		cr_assert(m.first <= i && i < m.first + m.count);
		cr_assert(m.tmin <= got.time_ms && got.time_ms <= m.tmax);
		cr_assert_eq(m.codec, TW_SEG_ZSTD);
	}
	/* random access order too */
	for (int k = 0; k < 500; k++) {
		size_t i = rnd() % N_EVENTS;
		struct tw_event got;
		cr_assert_eq(tw_seg_get(s, (uint32_t)i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
		enc(&ev[i], &b1);
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %zu differs", i);
	}
	struct tw_event dummy;
	cr_assert_eq(tw_seg_get(s, N_EVENTS, &bb, &dummy, &a, &err), TW_ENOENT);

	/* every value of every field (from a brute-force scan), plus absent values */
	struct tw_ids ids = { 0 };
	for (int f = 0; f < TW_IX__COUNT; f++) {
		if (f == TW_IX_EVENT_ID)
			continue;
		size_t checked = 0;
		for (size_t i = 0; i < N_EVENTS; i += 7) {
			struct tw_str vals[16];
			size_t nv = values_of(&ev[i], f, vals);
			for (size_t k = 0; k < nv; k++) {
				ids.n = 0;
				cr_assert_eq(tw_seg_lookup(s, f, vals[k], &ids, &err), TW_OK, "%s", err.msg);
				check_ids(&ids, ev, N_EVENTS, f, vals[k], 0);
				checked++;
			}
		}
		ids.n = 0;
		cr_assert_eq(tw_seg_lookup(s, f, TW_STR_LIT("no such value"), &ids, &err), TW_OK);
		cr_assert_eq(ids.n, 0);
		/* tw_seg_values: ascending byte order, counts equal the scan */
		struct vals_ctx vc = { ev, f, { NULL, 0 }, 0, 0 };
		cr_assert_eq(tw_seg_values(s, f, cb, &vc, &err), TW_OK);
		size_t total = 0;
		for (size_t i = 0; i < N_EVENTS; i++) {
			struct tw_str vals[16];
			size_t nv = values_of(&ev[i], f, vals);
			/* distinct values per record */
			for (size_t k = 0; k < nv; k++) {
				int dup = 0;
				for (size_t j = 0; j < k; j++)
					dup |= str_eq(vals[j], vals[k]);
				total += !dup;
			}
		}
		cr_assert_eq(vc.total, total, "field %s: value counts sum %zu != %zu", tw_ix_name(f),
			     vc.total, total);
		if (f != TW_IX_SSO_USER)
			cr_assert_gt(checked, 0, "field %s", tw_ix_name(f));
	}
	/* prefixes */
	const struct { int f; const char *p; } pre[] = {
		{ TW_IX_PRINCIPAL, "arn:aws:iam::111:user/" }, { TW_IX_PRINCIPAL, "arn:" },
		{ TW_IX_RESOURCE, "arn:aws:s3:::bucket1" },    { TW_IX_EVENT_NAME, "Get" },
		{ TW_IX_EVENT_NAME, "" },                      { TW_IX_SOURCE_IP, "10.0.3." },
		{ TW_IX_LOG_GROUP, "/aws/lambda/" },           { TW_IX_ERROR_CODE, "zzz" },
	};
	for (size_t k = 0; k < sizeof(pre) / sizeof(pre[0]); k++) {
		struct tw_str p = { pre[k].p, strlen(pre[k].p) };
		ids.n = 0;
		cr_assert_eq(tw_seg_lookup_prefix(s, pre[k].f, p, &ids, &err), TW_OK, "%s", err.msg);
		check_ids(&ids, ev, N_EVENTS, pre[k].f, p, 1);
	}
	ids.n = 0;
	cr_assert_eq(tw_seg_lookup(s, TW_IX_EVENT_ID, TW_STR_LIT("x"), &ids, &err), TW_EINVAL);
	/* event ids: present ones found at their record, absent ones not */
	size_t with_id = 0;
	for (size_t i = 0; i < N_EVENTS; i++) {
		if (!ev[i].f[TW_F_EVENT_ID].n)
			continue;
		uint32_t rec = UINT32_MAX;
		with_id++;
		cr_assert_eq(tw_seg_has_id(s, ev[i].f[TW_F_EVENT_ID], &rec, &err), 1, "%zu", i);
		cr_assert(str_eq(ev[rec].f[TW_F_EVENT_ID], ev[i].f[TW_F_EVENT_ID]));
	}
	cr_assert_gt(with_id, N_EVENTS / 2);
	cr_assert_lt(with_id, N_EVENTS);
	cr_assert_eq(tw_seg_has_id(s, TW_STR_LIT("00000000-999999"), NULL, &err), 0);
	cr_assert_eq(tw_seg_has_id(s, TW_STR_LIT(""), NULL, &err), 0);
	cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_ids_free(&ids);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
	tw_arena_free(&pool);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* tw_seg_values callback: checks order and sums the counts. */
static int cb(void *ctx, struct tw_str v, uint32_t count)
{
	struct vals_ctx *vc = ctx;
	if (vc->n) {
		size_t m = vc->prev.n < v.n ? vc->prev.n : v.n;
		int c = memcmp(vc->prev.p, v.p, m);
		cr_assert(c < 0 || (c == 0 && vc->prev.n < v.n), "values not ascending");
	}
	size_t scan = 0;
	for (size_t i = 0; i < N_EVENTS; i++)
		scan += has_value(&vc->ev[i], vc->f, v, 0);
	cr_assert_eq(count, scan, "value %.*s: count %u != %zu", (int)v.n, v.p, count, scan);
	vc->prev = v;
	vc->n++;
	vc->total += count;
	return 0;
}

Test(index_segment, writer_refuses_out_of_order_records)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "o.tws");
	struct tw_segw *w;
	struct tw_err err;
	struct tw_seg_opts o;
	struct tw_event a = { .kind = TW_KIND_CLOUDTRAIL, .read_only = -1, .time_ms = 5 };
	struct tw_event b = a;
	a.f[TW_F_PRINCIPAL] = TW_STR_LIT("bob");
	b.f[TW_F_PRINCIPAL] = TW_STR_LIT("alice");
	tw_seg_opts_default(&o);
	o.fsync = 0;
	cr_assert_eq(tw_segw_open(path, &o, &w, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_segw_add(w, &a, &err), TW_OK);
	cr_assert_eq(tw_segw_add(w, &b, &err), TW_EINVAL);
	a.time_ms = 4; /* same principal, earlier time */
	cr_assert_eq(tw_segw_add(w, &a, &err), TW_EINVAL);
	a.time_ms = 6;
	cr_assert_eq(tw_segw_add(w, &a, &err), TW_OK, "%s", err.msg);
	struct tw_seg_info info;
	cr_assert_eq(tw_segw_finish(w, &info, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(info.records, 2);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	char *tmp = tw_test_join(dir, "o.tws.tmp");
	cr_assert_neq(stat(tmp, &st), 0, "tmp file left behind");
	/* abort removes the temporary file */
	char *p2 = tw_test_join(dir, "p.tws");
	cr_assert_eq(tw_segw_open(p2, &o, &w, &err), TW_OK);
	tw_segw_abort(w);
	cr_assert_neq(stat(p2, &st), 0);
	free(p2);
	free(tmp);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* Forces every id into three hash buckets: has_id must still find exactly the right record. */
static uint64_t bad_hash(struct tw_str id)
{
	return id.n % 3;
}

Test(index_segment, id_index_survives_hash_collisions)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "c.tws");
	static struct tw_event ev[600];
	struct tw_err err;
	tw_seg_test_set_id_hash(bad_hash);
	make_events(ev, 600);
	struct tw_seg *s = write_and_open(path, ev, 600, 8 << 10, NULL);
	for (size_t i = 0; i < 600; i++) {
		if (!ev[i].f[TW_F_EVENT_ID].n)
			continue;
		uint32_t rec = UINT32_MAX;
		cr_assert_eq(tw_seg_has_id(s, ev[i].f[TW_F_EVENT_ID], &rec, &err), 1);
		cr_assert(str_eq(ev[rec].f[TW_F_EVENT_ID], ev[i].f[TW_F_EVENT_ID]));
	}
	/* same lengths (so same hashes) as present ids, different bytes */
	cr_assert_eq(tw_seg_has_id(s, TW_STR_LIT("zzzzzzzz-1"), NULL, &err), 0);
	cr_assert_eq(tw_seg_has_id(s, TW_STR_LIT("zzzzzzzz-12"), NULL, &err), 0);
	cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_seg_close(s);
	tw_seg_test_set_id_hash(NULL);
	tw_arena_free(&pool);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* Reads a little-endian integer from the file image. */
static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Finds section (kind, field) through the footer and section table as FORMAT.md lays them out. */
static void find_section(const unsigned char *f, size_t size, uint32_t kind, uint32_t field,
			 uint64_t *off, uint64_t *len)
{
	const unsigned char *ft = f + size - 72;
	cr_assert(memcmp(ft + 64, "TWSEG\r\n\x1a", 8) == 0);
	const unsigned char *tab = f + le(ft, 8);
	uint32_t n = (uint32_t)le(tab, 4);
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *e = tab + 8 + 32 * i;
		if (le(e, 4) == kind && le(e + 4, 4) == field) {
			*off = le(e + 8, 8);
			*len = le(e + 16, 8);
			return;
		}
	}
	cr_assert_fail("section %u/%u not found", kind, field);
}

/* Every present id is found at its record; an id whose fingerprint nothing shares is answered
 * from the id index alone: with every block's id frame damaged it still says 0, while present
 * ids then report the damage instead of a false "absent". */
Test(index_segment, id_lookup_reads_id_frames_only_for_fingerprint_matches)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "i.tws"), *bad = tw_test_join(dir, "bad.tws");
	static struct tw_event ev[800];
	struct tw_err err;
	size_t size, with_id = 0;
	make_events(ev, 800);
	struct tw_seg *s = write_and_open(path, ev, 800, 8 << 10, NULL);
	uint32_t nblocks = tw_seg_get_info(s)->blocks;
	cr_assert_gt(nblocks, 3);
	for (uint32_t i = 0; i < 800; i++) {
		if (!ev[i].f[TW_F_EVENT_ID].n)
			continue;
		with_id++;
		uint32_t rec = UINT32_MAX;
		cr_assert_eq(tw_seg_has_id(s, ev[i].f[TW_F_EVENT_ID], &rec, &err), 1);
		cr_assert_eq(rec, i); /* ev is in segment order after tw_seg_write */
	}
	cr_assert_gt(with_id, 600);
	static const char *absent[] = { "nope", "00000000-1", "ffffffff-799", "x", "abcdefgh-12345" };
	for (size_t k = 0; k < 5; k++)
		cr_assert_eq(tw_seg_has_id(s, (struct tw_str){ absent[k], strlen(absent[k]) }, NULL, &err), 0);
	tw_seg_close(s);

	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t bt, btlen;
	find_section(f, size, 1, 0, &bt, &btlen);
	for (uint32_t b = 0; b < nblocks; b++) {
		const unsigned char *e = f + bt + 8 + 80 * b;
		uint64_t idoff = le(e + 24, 8) + le(e + 32, 4), idlen = le(e + 48, 4);
		cr_assert_gt(idlen, 0);
		f[idoff + idlen / 2] ^= 0x08;
	}
	tw_test_write_file(bad, f, size);
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	for (size_t k = 0; k < 5; k++)
		cr_assert_eq(tw_seg_has_id(s, (struct tw_str){ absent[k], strlen(absent[k]) }, NULL, &err), 0);
	for (uint32_t i = 0; i < 800; i += 7) {
		if (!ev[i].f[TW_F_EVENT_ID].n)
			continue;
		cr_assert_eq(tw_seg_has_id(s, ev[i].f[TW_F_EVENT_ID], NULL, &err), -1);
		cr_assert_eq(err.rc, TW_ECORRUPT);
		cr_assert(strstr(err.msg, "id frame: crc") && strstr(err.msg, "bad.tws"), "%s", err.msg);
		struct tw_seg_blockbuf bb;
		struct tw_arena a;
		struct tw_event got;
		tw_seg_blockbuf_init(&bb);
		tw_arena_init(&a, 4096, 0);
		cr_assert_eq(tw_seg_get(s, i, &bb, &got, &a, &err), TW_ECORRUPT);
		tw_arena_free(&a);
		tw_seg_blockbuf_free(&bb);
	}
	tw_seg_close(s);
	free(f);
	free(bad);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

static int problems;
static void count_problem(void *ctx, const char *msg)
{
	(void)msg;
	(void)ctx;
	problems++;
}

/* Exercises every read path of the file at path; each call must succeed or say TW_ECORRUPT. */
static void poke(const char *path)
{
	struct tw_seg *s;
	struct tw_err err;
	enum tw_rc rc = tw_seg_open(path, &s, &err);
	if (rc) {
		cr_assert(rc == TW_ECORRUPT || rc == TW_EUNSUP, "open: %s", err.msg);
		return;
	}
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_ids ids = { 0 };
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	uint64_t n = tw_seg_get_info(s)->records;
	for (uint32_t i = 0; i < n; i++) {
		struct tw_event ev;
		tw_arena_reset(&a);
		rc = tw_seg_get(s, i, &bb, &ev, &a, &err);
		cr_assert(rc == TW_OK || rc == TW_ECORRUPT, "get: %s", err.msg);
	}
	for (int f = 0; f < TW_IX__COUNT; f++) {
		if (f == TW_IX_EVENT_ID)
			continue;
		rc = tw_seg_lookup_prefix(s, f, TW_STR_LIT(""), &ids, &err);
		cr_assert(rc == TW_OK || rc == TW_ECORRUPT, "lookup: %s", err.msg);
	}
	int h = tw_seg_has_id(s, TW_STR_LIT("abc"), NULL, &err);
	cr_assert(h >= -1 && h <= 1);
	rc = tw_seg_verify(s, count_problem, NULL, &err);
	cr_assert(rc == TW_OK || rc == TW_ECORRUPT);
	tw_ids_free(&ids);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
}

Test(index_segment, truncated_files_fail_cleanly)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "t.tws"), *cut = tw_test_join(dir, "cut.tws");
	static struct tw_event ev[300];
	size_t size;
	make_events(ev, 300);
	struct tw_seg *s = write_and_open(path, ev, 300, 4 << 10, NULL);
	tw_seg_close(s);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	cr_assert(f && size > 200);
	for (size_t n = 0; n < size; n++) {
		if (n % 97 && n + 64 < size && n + 72 < size)
			continue;
		tw_test_write_file(cut, f, n);
		struct tw_seg *t;
		struct tw_err err;
		enum tw_rc rc = tw_seg_open(cut, &t, &err);
		cr_assert_eq(rc, TW_ECORRUPT, "truncated at %zu of %zu: %s", n, size,
			     rc ? err.msg : "opened");
	}
	/* a few whole-file rewrites with garbage in the footer / section table */
	for (size_t k = 1; k <= 72; k++) {
		f[size - k] ^= 0x40;
		tw_test_write_file(cut, f, size);
		poke(cut);
		f[size - k] ^= 0x40;
	}
	free(f);
	free(cut);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

Test(index_segment, damage_is_confined_to_its_block_or_section)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "d.tws"), *bad = tw_test_join(dir, "bad.tws");
	static struct tw_event ev[800];
	size_t size;
	struct tw_err err;
	make_events(ev, 800);
	struct tw_seg *s = write_and_open(path, ev, 800, 8 << 10, NULL);
	uint32_t nblocks = tw_seg_get_info(s)->blocks;
	cr_assert_gt(nblocks, 3);
	tw_seg_close(s);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t bt, btlen, po, polen;
	find_section(f, size, 1, 0, &bt, &btlen);
	cr_assert_eq(le(f + bt, 4), nblocks);
	/* flip a bit in the middle of block 2 */
	const unsigned char *e = f + bt + 8 + 80 * 2;
	uint64_t boff = le(e + 24, 8), blen = le(e + 32, 4);
	uint32_t first = (uint32_t)le(e, 4), count = (uint32_t)le(e + 4, 4);
	f[boff + blen / 2] ^= 0x10;
	tw_test_write_file(bad, f, size);
	f[boff + blen / 2] ^= 0x10;
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	for (uint32_t i = 0; i < 800; i++) {
		struct tw_event got;
		enum tw_rc rc = tw_seg_get(s, i, &bb, &got, &a, &err);
		if (i >= first && i < first + count) {
			cr_assert_eq(rc, TW_ECORRUPT);
			cr_assert(strstr(err.msg, "block 2") && strstr(err.msg, "bad.tws"), "%s", err.msg);
		} else {
			cr_assert_eq(rc, TW_OK, "record %u: %s", i, err.msg);
		}
	}
	struct tw_ids ids = { 0 };
	cr_assert_eq(tw_seg_lookup(s, TW_IX_PRINCIPAL, TW_STR_LIT("root"), &ids, &err), TW_OK);
	check_ids(&ids, ev, 800, TW_IX_PRINCIPAL, TW_STR_LIT("root"), 0);
	problems = 0;
	cr_assert_eq(tw_seg_verify(s, count_problem, NULL, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "block 2"), "%s", err.msg);
	cr_assert_gt(problems, 0);
	tw_seg_close(s);

	/* flip a bit in the principal postings */
	find_section(f, size, 2, TW_IX_PRINCIPAL, &po, &polen);
	f[po + polen / 2] ^= 0x01;
	tw_test_write_file(bad, f, size);
	f[po + polen / 2] ^= 0x01;
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	ids.n = 0;
	cr_assert_eq(tw_seg_lookup(s, TW_IX_PRINCIPAL, TW_STR_LIT("root"), &ids, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "section postings[principal]: crc "), "%s", err.msg);
	/* the second use says the same */
	cr_assert_eq(tw_seg_values(s, TW_IX_PRINCIPAL, cb, NULL, &err), TW_ECORRUPT);
	ids.n = 0;
	cr_assert_eq(tw_seg_lookup(s, TW_IX_EVENT_NAME, TW_STR_LIT("Get"), &ids, &err), TW_OK, "%s", err.msg);
	check_ids(&ids, ev, 800, TW_IX_EVENT_NAME, TW_STR_LIT("Get"), 0);
	for (uint32_t i = 0; i < 800; i += 13) {
		struct tw_event got;
		cr_assert_eq(tw_seg_get(s, i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
	}
	problems = 0;
	cr_assert_eq(tw_seg_verify(s, count_problem, NULL, &err), TW_ECORRUPT);
	cr_assert_eq(problems, 1, "only the postings section is damaged");
	tw_seg_close(s);

	/* flips anywhere: every call answers OK or ECORRUPT */
	for (size_t k = 0; k < 300; k++) {
		size_t at = rnd() % size;
		unsigned char bit = (unsigned char)(1u << (rnd() % 8));
		f[at] ^= bit;
		tw_test_write_file(bad, f, size);
		poke(bad);
		f[at] ^= bit;
	}
	tw_ids_free(&ids);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	free(f);
	free(bad);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

Test(index_segment, empty_segment_and_other_codecs)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "e.tws");
	struct tw_seg_info info;
	struct tw_err err;
	struct tw_seg *s;
	cr_assert_eq(tw_seg_write(path, NULL, 0, NULL, &info, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(info.records, 0);
	cr_assert_gt(info.tmin, info.tmax);
	cr_assert_eq(tw_seg_open(path, &s, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_seg_get_info(s)->records, 0);
	struct tw_ids ids = { 0 };
	cr_assert_eq(tw_seg_lookup(s, TW_IX_PRINCIPAL, TW_STR_LIT("a"), &ids, &err), TW_OK);
	cr_assert_eq(ids.n, 0);
	cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_seg_close(s);
	static struct tw_event ev[400];
	make_events(ev, 400);
	for (int c = TW_SEG_RAW; c <= TW_SEG_DEFLATE; c++) {
		struct tw_seg_opts o;
		tw_seg_opts_default(&o);
		o.codec = (enum tw_seg_codec)c;
		o.block_bytes = 16 << 10;
		o.fsync = 0;
		cr_assert_eq(tw_seg_write(path, ev, 400, &o, &info, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(tw_seg_open(path, &s, &err), TW_OK, "%s", err.msg);
		struct tw_seg_block m;
		tw_seg_block_meta(s, 0, &m);
		cr_assert_eq(m.codec, c);
		struct tw_seg_blockbuf bb;
		struct tw_arena a;
		struct tw_buf b1, b2;
		tw_seg_blockbuf_init(&bb);
		tw_arena_init(&a, 4096, 0);
		tw_buf_init(&b1, 1 << 20);
		tw_buf_init(&b2, 1 << 20);
		for (uint32_t i = 0; i < 400; i++) {
			struct tw_event got;
			cr_assert_eq(tw_seg_get(s, i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
			enc(&ev[i], &b1);
			enc(&got, &b2);
			cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0);
		}
		cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
		tw_buf_free(&b1);
		tw_buf_free(&b2);
		tw_arena_free(&a);
		tw_seg_blockbuf_free(&bb);
		tw_seg_close(s);
	}
	tw_arena_free(&pool);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* ---- posting-list encodings (format version 3, kept in 4) ----------------------------------- */

#define N_ENC 2000

/* Reads a varint as FORMAT.md defines it (minimal LEB128). */
static uint64_t rd_varint(const unsigned char **p, const unsigned char *end)
{
	uint64_t v = 0;
	for (int i = 0; i < 10; i++) {
		cr_assert(*p < end, "varint runs past the end");
		unsigned char c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80))
			return v;
	}
	cr_assert_fail("varint too long");
	return 0;
}

/* Events for the encoding tests: principal "a-run" on records 0..999 (one run once sorted),
 * sourceIP 10.9.9.9 on ~1% of them (scattered), errorCode Dense on ~half (dense), Other on a
 * few more, resources r1/r2 overlapping (for prefix unions). */
static void make_enc_events(struct tw_event *ev, size_t n)
{
	tw_arena_init(&pool, 1 << 16, 0);
	for (size_t i = 0; i < n; i++) {
		struct tw_event *e = &ev[i];
		memset(e, 0, sizeof(*e));
		e->kind = TW_KIND_CLOUDTRAIL;
		e->read_only = -1;
		e->time_ms = 1700000000000ll + (int64_t)i;
		e->f[TW_F_PRINCIPAL] = dupf("%s", i < n / 2 ? "a-run" : "b-other");
		e->f[TW_F_EVENT_NAME] = dupf("E%zu", i % 3);
		e->f[TW_F_EVENT_ID] = dupf("id-%zu", i);
		if (rnd() % 100 == 0)
			e->f[TW_F_SOURCE_IP] = dupf("10.9.9.9");
		uint64_t r = rnd() % 16;
		if (r < 8)
			e->f[TW_F_ERROR_CODE] = dupf("Dense");
		else if (r == 8)
			e->f[TW_F_ERROR_CODE] = dupf("Other");
		e->nresources = i % 3 == 0 ? 2 : i % 5 == 0 ? 1 : 0;
		if (e->nresources) {
			e->resources = tw_arena_alloc(&pool, 2 * sizeof(struct tw_str), NULL);
			e->resources[0] = dupf("r2");
			e->resources[1] = dupf("r1");
		}
		e->raw = dupf("{\"n\":%zu}", i);
	}
}

/* The decompressed body of postings section field of the file image f (codec per FORMAT.md). */
static unsigned char *postings_body(const unsigned char *f, size_t size, uint32_t field, size_t *bn)
{
	uint64_t off, len;
	find_section(f, size, 2, field, &off, &len);
	cr_assert_geq(len, 16);
	uint32_t codec = (uint32_t)le(f + off, 4);
	cr_assert_eq(le(f + off + 4, 4), field);
	size_t ulen = (size_t)le(f + off + 8, 8);
	unsigned char *b = malloc(ulen + 1);
	cr_assert(b);
	if (codec == 0) {
		cr_assert_eq(ulen, len - 16);
		memcpy(b, f + off + 16, ulen);
	} else {
		cr_assert_eq(codec, 2);
		cr_assert_eq(ZSTD_decompress(b, ulen, f + off + 16, len - 16), ulen);
	}
	*bn = ulen;
	return b;
}

/* Finds value v in a postings body and decodes its list as FORMAT.md describes, independently
 * of segment.c; returns the encoding byte and fills ids. */
static int decode_value(const unsigned char *b, size_t bn, struct tw_str v, uint32_t *ids, size_t *nids)
{
	const unsigned char *p = b, *end = b + bn;
	uint64_t nv = rd_varint(&p, end);
	for (uint64_t i = 0; i < nv; i++) {
		uint64_t vn = rd_varint(&p, end);
		const unsigned char *val = p;
		p += vn;
		uint64_t count = rd_varint(&p, end);
		int enc = *p++;
		uint64_t plen = rd_varint(&p, end);
		const unsigned char *lp = p, *lend = p + plen;
		p += plen;
		if (vn != v.n || memcmp(val, v.p, vn) != 0)
			continue;
		size_t n = 0;
		if (enc == 0) {
			uint64_t cur = 0;
			for (uint64_t k = 0; k < count; k++)
				ids[n++] = (uint32_t)(cur += rd_varint(&lp, lend));
		} else if (enc == 1) {
			uint64_t next = 0; /* the previous run's end + 1 (first run: 0, no gap) */
			int first = 1;
			while (lp < lend) {
				uint64_t skip = rd_varint(&lp, lend), len = rd_varint(&lp, lend) + 1;
				uint64_t start = first ? skip : next + skip;
				for (uint64_t k = 0; k < len; k++)
					ids[n++] = (uint32_t)(start + k);
				next = start + len + 1;
				first = 0;
			}
		} else {
			cr_assert_eq(enc, 2);
			uint64_t base = rd_varint(&lp, lend);
			for (size_t byte = 0; lp + byte < lend; byte++)
				for (int bit = 0; bit < 8; bit++)
					if (lp[byte] >> bit & 1)
						ids[n++] = (uint32_t)(base + 8 * byte + (size_t)bit);
		}
		cr_assert_eq(n, count, "value %.*s: %zu ids decoded, count %llu", (int)v.n, v.p, n,
			     (unsigned long long)count);
		*nids = n;
		return enc;
	}
	cr_assert_fail("value %.*s not in the postings", (int)v.n, v.p);
	return -1;
}

/* Each case forces one encoding: its list is smaller that way than in the other two. */
static const struct {
	int f;
	const char *v;
	int enc; /* 0 delta, 1 runs, 2 bitmap */
} enc_cases[] = {
	{ TW_IX_PRINCIPAL, "a-run", 1 },      /* records 0..999: one run, 2 bytes */
	{ TW_IX_PRINCIPAL, "b-other", 1 },    /* records 1000..1999 */
	{ TW_IX_SOURCE_IP, "10.9.9.9", 0 },   /* ~20 ids, gaps ~100: 1 byte each */
	{ TW_IX_ERROR_CODE, "Dense", 2 },     /* ~1000 of 2000, random: 250 bytes as bits */
	{ TW_IX_EVENT_NAME, "E1", 1 },        /* one run inside each principal's records */
	{ TW_IX_KIND, "cloudtrail", 1 },      /* all records */
};

Test(index_segment, each_posting_encoding_is_chosen_and_decodes)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "p.tws");
	static struct tw_event ev[N_ENC];
	static uint32_t got[N_ENC];
	struct tw_err err;
	size_t size;
	make_enc_events(ev, N_ENC);
	struct tw_seg *s = write_and_open(path, ev, N_ENC, 16 << 10, NULL);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	cr_assert_eq(le(f + 8, 4), 4, "format version 4");
	struct tw_ids ids = { 0 };
	for (size_t k = 0; k < sizeof(enc_cases) / sizeof(enc_cases[0]); k++) {
		struct tw_str v = { enc_cases[k].v, strlen(enc_cases[k].v) };
		int f_ix = enc_cases[k].f;
		/* the reader agrees with a scan */
		ids.n = 0;
		cr_assert_eq(tw_seg_lookup(s, f_ix, v, &ids, &err), TW_OK, "%s", err.msg);
		check_ids(&ids, ev, N_ENC, f_ix, v, 0);
		cr_assert_gt(ids.n, 0);
		/* the bytes say what FORMAT.md says, with the expected encoding */
		size_t bn, n;
		unsigned char *b = postings_body(f, size, (uint32_t)f_ix, &bn);
		int enc = decode_value(b, bn, v, got, &n);
		cr_assert_eq(enc, enc_cases[k].enc, "%s=%s: encoding %d, expected %d", tw_ix_name(f_ix),
			     enc_cases[k].v, enc, enc_cases[k].enc);
		cr_assert_eq(n, ids.n);
		cr_assert(memcmp(got, ids.v, n * sizeof(uint32_t)) == 0, "%s: independent decode differs",
			  enc_cases[k].v);
		free(b);
	}
	/* prefix unions: dense + sparse lists (bitmap union), overlapping resources (dedup), and a
	 * small union (sorting path) */
	const struct { int f; const char *p; } pre[] = {
		{ TW_IX_ERROR_CODE, "" }, { TW_IX_RESOURCE, "r" }, { TW_IX_PRINCIPAL, "" },
		{ TW_IX_EVENT_NAME, "E" }, { TW_IX_SOURCE_IP, "10." },
	};
	for (size_t k = 0; k < sizeof(pre) / sizeof(pre[0]); k++) {
		struct tw_str p = { pre[k].p, strlen(pre[k].p) };
		ids.n = 0;
		cr_assert_eq(tw_seg_lookup_prefix(s, pre[k].f, p, &ids, &err), TW_OK, "%s", err.msg);
		check_ids(&ids, ev, N_ENC, pre[k].f, p, 1);
	}
	/* a small union of two scattered lists, appended after ids already there */
	ids.n = 0;
	cr_assert_eq(tw_seg_lookup(s, TW_IX_SOURCE_IP, TW_STR_LIT("10.9.9.9"), &ids, &err), TW_OK);
	size_t before = ids.n;
	cr_assert_eq(tw_seg_lookup_prefix(s, TW_IX_RESOURCE, TW_STR_LIT("r"), &ids, &err), TW_OK);
	for (size_t i = before + 1; i < ids.n; i++)
		cr_assert_lt(ids.v[i - 1], ids.v[i]);
	cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_ids_free(&ids);
	tw_seg_close(s);
	free(f);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* Rewrites the file image f so that postings section field holds body (stored raw), appended
 * after the old sections with a new section table and footer (offsets and CRCs as FORMAT.md
 * lays them out), and writes it to out. */
static void rewrite_postings(const unsigned char *f, size_t size, uint32_t field,
			     const unsigned char *body, size_t bn, const char *out)
{
	const unsigned char *ft = f + size - 72;
	uint64_t st_off = le(ft, 8);
	uint32_t nsec = (uint32_t)le(f + st_off, 4);
	size_t tab_len = 8 + 32 * (size_t)nsec, nsize = st_off + 16 + bn + tab_len + 72;
	unsigned char *g = malloc(nsize);
	cr_assert(g);
	memcpy(g, f, st_off);
	unsigned char *sec = g + st_off;
	memset(sec, 0, 16);
	sec[4] = (unsigned char)field;
	for (int i = 0; i < 8; i++)
		sec[8 + i] = (unsigned char)((uint64_t)bn >> (8 * i));
	memcpy(sec + 16, body, bn);
	unsigned char *tab = sec + 16 + bn;
	memcpy(tab, f + st_off, tab_len);
	int found = 0;
	for (uint32_t i = 0; i < nsec; i++) {
		unsigned char *e = tab + 8 + 32 * i;
		if (le(e, 4) != 2 || le(e + 4, 4) != field)
			continue;
		uint64_t o = st_off, l = 16 + bn;
		uint32_t c = tw_wal_crc32c(0, sec, l);
		for (int b = 0; b < 8; b++) {
			e[8 + b] = (unsigned char)(o >> (8 * b));
			e[16 + b] = (unsigned char)(l >> (8 * b));
		}
		for (int b = 0; b < 4; b++)
			e[24 + b] = (unsigned char)(c >> (8 * b));
		found = 1;
	}
	cr_assert(found);
	unsigned char *nft = tab + tab_len;
	memcpy(nft, ft, 72);
	uint64_t to = (uint64_t)(tab - g);
	uint32_t tc = tw_wal_crc32c(0, tab, tab_len);
	for (int b = 0; b < 8; b++)
		nft[b] = (unsigned char)(to >> (8 * b));
	for (int b = 0; b < 4; b++)
		nft[16 + b] = (unsigned char)(tc >> (8 * b));
	uint32_t fc = tw_wal_crc32c(0, nft, 60);
	for (int b = 0; b < 4; b++)
		nft[60 + b] = (unsigned char)(fc >> (8 * b));
	tw_test_write_file(out, g, nsize);
	free(g);
}

/* A postings body with one value "v" whose list is (count, enc, bytes). */
static size_t one_list_body(unsigned char *b, uint32_t count, int enc, const unsigned char *lst, size_t ln)
{
	size_t n = 0;
	b[n++] = 1;   /* one value */
	b[n++] = 1;   /* vlen */
	b[n++] = 'v';
	cr_assert_lt(count, 128);
	b[n++] = (unsigned char)count;
	b[n++] = (unsigned char)enc;
	b[n++] = (unsigned char)ln;
	memcpy(b + n, lst, ln);
	return n + ln;
}

/* Well-formed and malformed lists in every encoding, in a file whose checksums are all right:
 * good ones decode to their ids, bad ones are TW_ECORRUPT naming the section (never a crash or
 * an out-of-range id), and the other sections stay usable. */
Test(index_segment, malformed_posting_lists_are_refused)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "m.tws"), *bad = tw_test_join(dir, "bad.tws");
	static struct tw_event ev[60];
	struct tw_err err;
	size_t size;
	make_enc_events(ev, 60);
	struct tw_seg *s = write_and_open(path, ev, 60, 16 << 10, NULL);
	tw_seg_close(s);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	static const struct {
		uint32_t count;
		int enc;
		unsigned char lst[12];
		size_t ln;
		uint32_t want[8]; /* the ids when good */
		int good;
	} cases[] = {
		{ 3, 0, { 2, 3, 50 }, 3, { 2, 5, 55 }, 1 },           /* delta */
		{ 5, 1, { 1, 1, 3, 2 }, 4, { 1, 2, 7, 8, 9 }, 1 },    /* runs [1,2], 3 more than 3+1: 7..9 */
		{ 4, 2, { 10, 0x0b, 0x02 }, 3, { 10, 11, 13, 19 }, 1 }, /* bitmap from 10 */
		{ 3, 0, { 2, 0, 5 }, 3, { 0 }, 0 },                   /* delta gap 0: duplicate id */
		{ 2, 0, { 2, 58 }, 2, { 0 }, 0 },                     /* delta past the 60 records */
		{ 2, 0, { 2, 3, 4 }, 3, { 0 }, 0 },                   /* delta trailing bytes */
		{ 5, 1, { 1, 1 }, 2, { 0 }, 0 },                      /* runs: fewer ids than count */
		{ 2, 1, { 1, 3 }, 2, { 0 }, 0 },                      /* runs: more ids than count */
		{ 3, 1, { 58, 2 }, 2, { 0 }, 0 },                     /* runs past the records */
		{ 3, 1, { 0x7f, 0x7f, 0x7f, 0x7f }, 4, { 0 }, 0 },    /* runs: huge skip */
		{ 3, 1, { 1, 0x80 }, 2, { 0 }, 0 },                   /* runs: truncated varint */
		{ 3, 2, { 10, 0x0a }, 2, { 0 }, 0 },                  /* bitmap: first bit not set */
		{ 2, 2, { 10, 0x01, 0x00 }, 3, { 0 }, 0 },            /* bitmap: zero last byte */
		{ 3, 2, { 10, 0x03 }, 2, { 0 }, 0 },                  /* bitmap: popcount 2 != 3 */
		{ 2, 2, { 55, 0x81 }, 2, { 0 }, 0 },                  /* bitmap: id 62 >= 60 */
		{ 20, 2, { 0, 0xff }, 2, { 0 }, 0 },                  /* bitmap: count > 8 bits */
		{ 1, 3, { 0 }, 1, { 0 }, 0 },                         /* unknown encoding */
		{ 100, 1, { 0, 99 }, 2, { 0 }, 0 },                   /* count above the records */
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		unsigned char body[64];
		size_t bn = one_list_body(body, cases[k].count, cases[k].enc, cases[k].lst, cases[k].ln);
		rewrite_postings(f, size, TW_IX_SOURCE_IP, body, bn, bad);
		cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "case %zu: %s", k, err.msg);
		struct tw_ids ids = { 0 };
		enum tw_rc rc = tw_seg_lookup(s, TW_IX_SOURCE_IP, TW_STR_LIT("v"), &ids, &err);
		if (cases[k].good) {
			cr_assert_eq(rc, TW_OK, "case %zu: %s", k, err.msg);
			cr_assert_eq(ids.n, cases[k].count, "case %zu", k);
			for (size_t i = 0; i < ids.n; i++)
				cr_assert_eq(ids.v[i], cases[k].want[i], "case %zu id %zu", k, i);
		} else {
			cr_assert_eq(rc, TW_ECORRUPT, "case %zu decoded %zu ids", k, ids.n);
			cr_assert(strstr(err.msg, "section postings[sourceIPAddress]") && strstr(err.msg, "bad.tws"),
				  "case %zu: %s", k, err.msg);
			cr_assert_eq(ids.n, 0, "case %zu", k);
			ids.n = 0;
			cr_assert_eq(tw_seg_lookup_prefix(s, TW_IX_SOURCE_IP, TW_STR_LIT(""), &ids, &err),
				     TW_ECORRUPT, "case %zu", k);
			cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_ECORRUPT, "case %zu", k);
		}
		ids.n = 0;
		cr_assert_eq(tw_seg_lookup(s, TW_IX_PRINCIPAL, TW_STR_LIT("a-run"), &ids, &err), TW_OK);
		check_ids(&ids, ev, 60, TW_IX_PRINCIPAL, TW_STR_LIT("a-run"), 0);
		tw_ids_free(&ids);
		tw_seg_close(s);
	}
	/* two values each claiming all 60 records: more postings than a one-value field can have */
	static const unsigned char two[] = { 2, 1, 'v', 60, 1, 2, 0, 59, 1, 'w', 60, 1, 2, 0, 59 };
	rewrite_postings(f, size, TW_IX_SOURCE_IP, two, sizeof(two), bad);
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	struct tw_ids ids = { 0 };
	cr_assert_eq(tw_seg_lookup(s, TW_IX_SOURCE_IP, TW_STR_LIT("v"), &ids, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "section postings[sourceIPAddress]"), "%s", err.msg);
	tw_seg_close(s);
	/* the same with one of them: accepted (a run over every record) */
	static const unsigned char one[] = { 1, 1, 'v', 60, 1, 2, 0, 59 };
	rewrite_postings(f, size, TW_IX_SOURCE_IP, one, sizeof(one), bad);
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_seg_lookup(s, TW_IX_SOURCE_IP, TW_STR_LIT("v"), &ids, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(ids.n, 60);
	cr_assert_eq(ids.v[59], 59);
	tw_ids_free(&ids);
	tw_seg_close(s);
	free(f);
	free(bad);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* ---- writer fast paths: what they must keep exactly as FORMAT.md says ---------------------- */

/* The field columns' order in a fields frame, as FORMAT.md lists them. */
static const int main_cols[18] = {
	TW_F_EVENT_NAME, TW_F_EVENT_SOURCE, TW_F_REGION, TW_F_ACCOUNT, TW_F_PRINCIPAL,
	TW_F_IDENTITY_TYPE, TW_F_USER_NAME, TW_F_ACCESS_KEY, TW_F_SESSION_ISSUER, TW_F_SSO_USER,
	TW_F_SOURCE_IP, TW_F_USER_AGENT, TW_F_ERROR_CODE, TW_F_ERROR_MESSAGE, TW_F_EVENT_TYPE,
	TW_F_LOG_GROUP, TW_F_LOG_STREAM, TW_F_MESSAGE,
};

/* Every field column of every block codes 1 ("same") exactly when the previous record of the
 * block has an equal value, 0 when absent, else the literal: checked on a raw-codec file with
 * small blocks (so runs cross block starts), values of equal length that differ in one byte, and
 * unindexed columns (userAgent, errorMessage) too. */
Test(index_segment, field_columns_say_same_exactly_when_the_previous_record_matches)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "f.tws");
	static struct tw_event ev[1500];
	static const char *agents[] = { "aws-cli/2.1", "aws-cli/2.2", "Boto3/1.2 Python/3.11" };
	struct tw_seg_opts o;
	struct tw_seg_info info;
	struct tw_err err;
	size_t size, checked_same = 0, checked_lit = 0;
	make_events(ev, 1500);
	for (size_t i = 0; i < 1500; i++) {
		uint64_t r = rnd() % 4;
		if (r < 3)
			ev[i].f[TW_F_USER_AGENT] = dupf("%s", agents[r]);
		if (rnd() % 3 == 0)
			ev[i].f[TW_F_ERROR_MESSAGE] = dupf("denied %llu", (unsigned long long)(rnd() % 2));
	}
	tw_seg_opts_default(&o);
	o.codec = TW_SEG_RAW;
	o.block_bytes = 2048;
	o.fsync = 0;
	cr_assert_eq(tw_seg_write(path, ev, 1500, &o, &info, &err), TW_OK, "%s", err.msg);
	cr_assert_gt(info.blocks, 20);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t off, len;
	find_section(f, size, 1, 0, &off, &len);
	const unsigned char *bt = f + off;
	cr_assert_eq(le(bt, 4), info.blocks);
	for (uint32_t b = 0; b < info.blocks; b++) {
		const unsigned char *e = bt + 8 + 80 * (size_t)b;
		uint32_t first = (uint32_t)le(e, 4), count = (uint32_t)le(e + 4, 4);
		cr_assert_eq(le(e + 40, 4), 0, "block %u not stored raw", b);
		const unsigned char *p = f + le(e + 24, 8), *end = p + le(e + 32, 4);
		uint64_t clen[21];
		for (int c = 0; c < 21; c++)
			clen[c] = rd_varint(&p, end);
		p += clen[0] + clen[1]; /* head, time */
		for (int c = 0; c < 18; c++) {
			const unsigned char *q = p, *qend = p + clen[2 + c];
			cr_assert(qend <= end);
			for (uint32_t r = first; r < first + count; r++) {
				struct tw_str v = ev[r].f[main_cols[c]];
				uint64_t code = rd_varint(&q, qend);
				if (!v.n) {
					cr_assert_eq(code, 0, "block %u record %u column %d", b, r, c);
				} else if (r > first && str_eq(ev[r - 1].f[main_cols[c]], v)) {
					cr_assert_eq(code, 1, "block %u record %u column %d: %llu", b, r, c,
						     (unsigned long long)code);
					checked_same++;
				} else {
					cr_assert_eq(code, v.n + 1, "block %u record %u column %d", b, r, c);
					cr_assert((size_t)(qend - q) >= v.n && memcmp(q, v.p, v.n) == 0);
					q += v.n;
					checked_lit++;
				}
			}
			cr_assert_eq(q, qend, "block %u column %d has extra bytes", b, c);
			p = qend;
		}
	}
	cr_assert_gt(checked_same, 1000);
	cr_assert_gt(checked_lit, 1000);
	/* and the records read back */
	struct tw_seg *s;
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_buf b1, b2;
	tw_buf_init(&b1, 1 << 20);
	tw_buf_init(&b2, 1 << 20);
	tw_arena_init(&a, 1 << 12, 0);
	tw_seg_blockbuf_init(&bb);
	cr_assert_eq(tw_seg_open(path, &s, &err), TW_OK, "%s", err.msg);
	for (uint32_t r = 0; r < 1500; r++) {
		struct tw_event got;
		cr_assert_eq(tw_seg_get(s, r, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
		enc(&ev[r], &b1);
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", r);
	}
	cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_seg_close(s);
	tw_seg_blockbuf_free(&bb);
	tw_arena_free(&a);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
	free(f);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* The order check compares every key once the earlier ones are equal, also right after a block
 * was flushed (one record a block here) and across absent values (absent sorts first). */
Test(index_segment, order_check_reaches_every_key_across_blocks)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "k.tws");
	struct tw_segw *w;
	struct tw_err err;
	struct tw_seg_opts o;
	struct tw_seg_info info;
	struct tw_event e = { .kind = TW_KIND_CLOUDTRAIL, .read_only = 1, .time_ms = 10 };
	tw_seg_opts_default(&o);
	o.fsync = 0;
	o.block_bytes = 1;
	cr_assert_eq(tw_segw_open(path, &o, &w, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_OK, "%s", err.msg);        /* all absent */
	e.f[TW_F_EVENT_ID] = TW_STR_LIT("id-b");
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_OK, "%s", err.msg);        /* id: absent < id-b */
	e.f[TW_F_EVENT_ID] = TW_STR_LIT("id-a");
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_EINVAL);                   /* id goes back */
	e.f[TW_F_EVENT_ID] = TW_STR_LIT("id-b");
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_OK, "%s", err.msg);        /* equal keys are fine */
	e.f[TW_F_PRINCIPAL] = TW_STR_LIT("user/bob");
	e.f[TW_F_EVENT_SOURCE] = TW_STR_LIT("s3");
	e.f[TW_F_EVENT_NAME] = TW_STR_LIT("Get");
	e.f[TW_F_EVENT_ID] = TW_STR_LIT("id-0");
	e.time_ms = 1;
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_OK, "%s", err.msg);        /* principal decides */
	e.f[TW_F_PRINCIPAL] = TW_STR_LIT("user/bo");
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_EINVAL);                   /* a shorter prefix */
	e.f[TW_F_PRINCIPAL] = TW_STR_LIT("user/boa");
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_EINVAL);                   /* same length, less */
	e.f[TW_F_PRINCIPAL] = TW_STR_LIT("user/bob");
	e.f[TW_F_EVENT_SOURCE] = (struct tw_str){ NULL, 0 };
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_EINVAL);                   /* source now absent */
	e.f[TW_F_EVENT_SOURCE] = TW_STR_LIT("s3");
	e.f[TW_F_EVENT_NAME] = TW_STR_LIT("Ge");
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_EINVAL);                   /* name goes back */
	e.f[TW_F_EVENT_NAME] = TW_STR_LIT("Get");
	e.time_ms = 0;
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_EINVAL);                   /* time goes back */
	e.time_ms = 1;
	e.read_only = 0; /* not part of the order */
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_OK, "%s", err.msg);
	e.f[TW_F_EVENT_NAME] = TW_STR_LIT("Put");
	e.time_ms = -5; /* a later name resets time */
	e.f[TW_F_EVENT_ID] = (struct tw_str){ NULL, 0 };
	cr_assert_eq(tw_segw_add(w, &e, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_segw_finish(w, &info, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(info.records, 6);
	cr_assert_eq(info.blocks, 6);
	struct tw_seg *s;
	struct tw_ids ids = { 0 };
	cr_assert_eq(tw_seg_open(path, &s, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_seg_lookup(s, TW_IX_EVENT_NAME, TW_STR_LIT("Get"), &ids, &err), TW_OK);
	cr_assert_eq(ids.n, 2);
	cr_assert(ids.v[0] == 3 && ids.v[1] == 4);
	ids.n = 0;
	cr_assert_eq(tw_seg_lookup(s, TW_IX_READ_ONLY, TW_STR_LIT("true"), &ids, &err), TW_OK);
	cr_assert_eq(ids.n, 4);
	cr_assert(ids.v[0] == 0 && ids.v[3] == 3);
	ids.n = 0;
	cr_assert_eq(tw_seg_lookup(s, TW_IX_READ_ONLY, TW_STR_LIT("false"), &ids, &err), TW_OK);
	cr_assert(ids.n == 2 && ids.v[0] == 4 && ids.v[1] == 5);
	cr_assert_eq(tw_seg_verify(s, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_ids_free(&ids);
	tw_seg_close(s);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* One id-index entry as the test expects it. */
struct xid {
	uint64_t key;   /* bucket and fingerprint bits */
	uint32_t block; /* block of the record */
};
static int xid_cmp(const void *a, const void *b)
{
	const struct xid *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* The id index holds, for every record with an id, its (bucket, fingerprint, block) sorted as
 * FORMAT.md says: computed here from the events and the block table, with the real hash and with
 * a hash that collides everything (ties then order by block). */
Test(index_segment, id_index_entries_are_sorted_by_bucket_fingerprint_block)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "x.tws");
	static struct tw_event ev[3000];
	static struct xid want[3000];
	struct tw_seg_info info;
	struct tw_err err;
	for (int round = 0; round < 2; round++) {
		tw_seg_test_set_id_hash(round ? bad_hash : NULL);
		make_events(ev, 3000);
		struct tw_seg_opts o;
		tw_seg_opts_default(&o);
		o.fsync = 0;
		o.block_bytes = 2048;
		cr_assert_eq(tw_seg_write(path, ev, 3000, &o, &info, &err), TW_OK, "%s", err.msg);
		size_t size, n = 0;
		unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
		uint64_t off, len;
		find_section(f, size, 1, 0, &off, &len);
		const unsigned char *bt = f + off;
		find_section(f, size, 3, 0, &off, &len);
		const unsigned char *ix = f + off;
		unsigned k = ix[8], bw = ix[9];
		uint32_t b = 0;
		for (uint32_t r = 0; r < 3000; r++) {
			while (r >= le(bt + 8 + 80 * (size_t)b, 4) + le(bt + 8 + 80 * (size_t)b + 4, 4))
				b++;
			if (!ev[r].f[TW_F_EVENT_ID].n)
				continue;
			want[n].key = tw_seg_id_hash(ev[r].f[TW_F_EVENT_ID]) >> (48 - k);
			want[n++].block = b;
		}
		cr_assert_eq(le(ix, 8), n);
		cr_assert_gt(k, 6);
		cr_assert_eq(b + 1, info.blocks);
		qsort(want, n, sizeof(*want), xid_cmp);
		const unsigned char *tab = ix + 16, *fps = tab + 4 * (((size_t)1 << k) + 1), *blks = fps + 2 * n;
		uint32_t bucket = 0;
		for (size_t i = 0; i < n; i++) {
			while (le(tab + 4 * ((size_t)bucket + 1), 4) <= i)
				bucket++;
			uint64_t key = (uint64_t)bucket << 16 | le(fps + 2 * i, 2);
			uint32_t blk = 0;
			for (unsigned x = 0; x < bw; x++) {
				size_t bit = i * bw + x;
				blk |= (uint32_t)(blks[bit >> 3] >> (bit & 7) & 1) << x;
			}
			cr_assert_eq(key, want[i].key, "round %d entry %zu", round, i);
			cr_assert_eq(blk, want[i].block, "round %d entry %zu", round, i);
		}
		free(f);
		tw_arena_free(&pool);
	}
	tw_seg_test_set_id_hash(NULL);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* ---- fields frame / raw frame (format version 4) ------------------------------------------- */

/* Writes v as an n-byte little-endian integer at p. */
static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* After an edit of the block table in the file image f: recomputes its CRC in the section table,
 * the section table's CRC in the footer and the footer's CRC, as FORMAT.md lays them out. */
static void reseal_block_table(unsigned char *f, size_t size)
{
	unsigned char *ft = f + size - 72, *tab = f + le(ft, 8);
	uint32_t nsec = (uint32_t)le(tab, 4);
	for (uint32_t i = 0; i < nsec; i++) {
		unsigned char *e = tab + 8 + 32 * i;
		if (le(e, 4) == 1)
			put_le(e + 24, tw_wal_crc32c(0, f + le(e + 8, 8), le(e + 16, 8)), 4);
	}
	put_le(ft + 16, tw_wal_crc32c(0, tab, 8 + 32 * (size_t)nsec), 4);
	put_le(ft + 60, tw_wal_crc32c(0, ft, 60), 4);
}

/* ev with no raw: what tw_seg_get_fields must give back. */
static void enc_fields(const struct tw_event *e, struct tw_buf *b)
{
	struct tw_event x = *e;
	x.raw = (struct tw_str){ NULL, 0 };
	enc(&x, b);
}

/* tw_seg_get_fields gives every record's fields (resources, eventID, kind, time, readOnly) and an
 * empty raw; mixed with tw_seg_get on one blockbuf, in any order, each call gives what it
 * promises and strings handed out earlier for the same block stay valid. The block table's
 * frames lie back to back (fields, id, raw) from each block's offset up to the next block. */
Test(index_segment, fields_fetch_equals_full_fetch_without_raw)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "g.tws");
	static struct tw_event ev[2000];
	struct tw_seg_info info;
	struct tw_err err;
	size_t size;
	make_events(ev, 2000);
	struct tw_seg *s = write_and_open(path, ev, 2000, 16 << 10, &info);
	cr_assert_gt(info.blocks, 5);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t bt, btlen, sum = 0;
	find_section(f, size, 1, 0, &bt, &btlen);
	cr_assert_eq(btlen, 8 + 80 * (uint64_t)info.blocks);
	for (uint32_t b = 0; b < info.blocks; b++) {
		const unsigned char *e = f + bt + 8 + 80 * (size_t)b;
		uint64_t end = le(e + 24, 8) + le(e + 32, 4) + le(e + 48, 4) + le(e + 64, 4);
		sum += le(e + 32, 4) + le(e + 48, 4) + le(e + 64, 4);
		cr_assert_eq(end, b + 1 < info.blocks ? le(e + 80 + 24, 8) : bt, "block %u", b);
		cr_assert_geq(le(e + 36, 4), 21 * le(e + 4, 4), "block %u: fields frame size", b);
		cr_assert_geq(le(e + 68, 4), 2 * le(e + 4, 4), "block %u: raw frame size", b);
	}
	cr_assert_eq(le(f + bt + 8 + 24, 8), 16);
	cr_assert_eq(sum, info.bytes_blocks);

	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_buf b1, b2;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	tw_buf_init(&b1, 1 << 20);
	tw_buf_init(&b2, 1 << 20);
	for (uint32_t i = 0; i < 2000; i++) {
		struct tw_event got;
		cr_assert_eq(tw_seg_get_fields(s, i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(got.raw.n, 0);
		enc_fields(&ev[i], &b1);
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", i);
	}
	/* per block: fields of its first record, then the full last record, then fields again */
	for (uint32_t b = 0; b < info.blocks; b++) {
		struct tw_seg_block m;
		struct tw_event e1, e2, e3;
		tw_seg_block_meta(s, b, &m);
		uint32_t r1 = m.first, r2 = m.first + m.count - 1;
		tw_arena_reset(&a);
		cr_assert_eq(tw_seg_get_fields(s, r1, &bb, &e1, &a, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(tw_seg_get(s, r2, &bb, &e2, &a, &err), TW_OK, "%s", err.msg);
		cr_assert(str_eq(e2.raw, ev[r2].raw), "block %u: raw of record %u", b, r2);
		enc(&ev[r2], &b1);
		enc(&e2, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0);
		enc_fields(&ev[r1], &b1);
		enc(&e1, &b2); /* e1 was handed out before the raw frame was loaded */
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "block %u", b);
		cr_assert_eq(tw_seg_get_fields(s, r2, &bb, &e3, &a, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(e3.raw.n, 0);
		cr_assert(str_eq(e3.f[TW_F_EVENT_ID], ev[r2].f[TW_F_EVENT_ID]));
		cr_assert(str_eq(e2.raw, ev[r2].raw), "block %u: raw still valid", b);
	}
	struct tw_event got;
	cr_assert_eq(tw_seg_get_fields(s, 2000, &bb, &got, &a, &err), TW_ENOENT);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
	free(f);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* A damaged raw frame fails only tw_seg_get of its block ("block 2 raw frame: crc"), never
 * tw_seg_get_fields: so the fields fetch does not read it. And once a blockbuf holds a block's
 * fields, tw_seg_get of that block reads only the raw frame: damage written into the fields frame
 * afterwards (seen by a fresh blockbuf through the same mapping) does not reach it. */
Test(index_segment, fields_fetch_skips_the_raw_frame_and_get_adds_only_it)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "r.tws"), *bad = tw_test_join(dir, "bad.tws");
	static struct tw_event ev[800];
	struct tw_err err;
	size_t size;
	make_events(ev, 800);
	struct tw_seg *s = write_and_open(path, ev, 800, 8 << 10, NULL);
	cr_assert_gt(tw_seg_get_info(s)->blocks, 3);
	tw_seg_close(s);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t bt, btlen;
	find_section(f, size, 1, 0, &bt, &btlen);
	const unsigned char *e = f + bt + 8 + 80 * 2;
	uint32_t first = (uint32_t)le(e, 4), count = (uint32_t)le(e + 4, 4);
	uint64_t foff = le(e + 24, 8), flen = le(e + 32, 4);
	uint64_t roff = foff + flen + le(e + 48, 4), rlen = le(e + 64, 4);
	f[roff + rlen / 2] ^= 0x04;
	tw_test_write_file(bad, f, size);
	f[roff + rlen / 2] ^= 0x04;
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	struct tw_seg_blockbuf bb, bb2;
	struct tw_arena a;
	struct tw_buf b1, b2;
	tw_seg_blockbuf_init(&bb);
	tw_seg_blockbuf_init(&bb2);
	tw_arena_init(&a, 4096, 0);
	tw_buf_init(&b1, 1 << 20);
	tw_buf_init(&b2, 1 << 20);
	for (uint32_t i = 0; i < 800; i++) {
		struct tw_event got;
		tw_arena_reset(&a);
		cr_assert_eq(tw_seg_get_fields(s, i, &bb, &got, &a, &err), TW_OK, "record %u: %s", i, err.msg);
		enc_fields(&ev[i], &b1);
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", i);
		enum tw_rc rc = tw_seg_get(s, i, &bb2, &got, &a, &err);
		if (i >= first && i < first + count) {
			cr_assert_eq(rc, TW_ECORRUPT);
			cr_assert(strstr(err.msg, "bad.tws: block 2 raw frame: crc "), "%s", err.msg);
			/* the same blockbuf still serves the block's fields */
			cr_assert_eq(tw_seg_get_fields(s, i, &bb2, &got, &a, &err), TW_OK, "%s", err.msg);
			enc(&got, &b2);
			cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", i);
		} else {
			cr_assert_eq(rc, TW_OK, "record %u: %s", i, err.msg);
			cr_assert(str_eq(got.raw, ev[i].raw));
		}
	}
	problems = 0;
	cr_assert_eq(tw_seg_verify(s, count_problem, NULL, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "block 2 raw frame"), "%s", err.msg);
	cr_assert_gt(problems, 0);
	tw_seg_close(s);

	/* fields cached, then the fields frame damaged in the file under the mapping */
	tw_test_write_file(bad, f, size);
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	struct tw_event got;
	cr_assert_eq(tw_seg_get_fields(s, first, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
	FILE *fp = fopen(bad, "r+b");
	cr_assert(fp);
	cr_assert_eq(fseek(fp, (long)(foff + flen / 2), SEEK_SET), 0);
	cr_assert_eq(fputc(f[foff + flen / 2] ^ 0x20, fp), f[foff + flen / 2] ^ 0x20);
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(tw_seg_get_fields(s, first, &bb2, &got, &a, &err), TW_ECORRUPT,
		     "a fresh blockbuf sees the damaged fields frame");
	cr_assert(strstr(err.msg, "block 2: crc "), "%s", err.msg);
	for (uint32_t i = first; i < first + count; i++) {
		cr_assert_eq(tw_seg_get(s, i, &bb, &got, &a, &err), TW_OK, "record %u: %s", i, err.msg);
		enc(&ev[i], &b1);
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", i);
	}
	tw_seg_close(s);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_blockbuf_free(&bb2);
	free(f);
	free(bad);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* The raw frame's entry in the block table is checked at open like the others (sizes below
 * 2 bytes a record, past the block area, unknown codec), and a raw frame with a good CRC but an
 * impossible record (the id put back past the end) fails tw_seg_get of its block only. */
Test(index_segment, raw_frame_entries_and_contents_are_checked)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "h.tws"), *bad = tw_test_join(dir, "bad.tws");
	static struct tw_event ev[600];
	struct tw_seg_opts o;
	struct tw_seg_info info;
	struct tw_err err;
	struct tw_seg *s;
	size_t size;
	make_events(ev, 600);
	tw_seg_opts_default(&o);
	o.codec = TW_SEG_RAW;
	o.block_bytes = 4096;
	o.fsync = 0;
	cr_assert_eq(tw_seg_write(path, ev, 600, &o, &info, &err), TW_OK, "%s", err.msg);
	cr_assert_gt(info.blocks, 3);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t bt, btlen;
	find_section(f, size, 1, 0, &bt, &btlen);
	unsigned char *e = f + bt + 8 + 80;
	uint32_t count = (uint32_t)le(e + 4, 4), first = (uint32_t)le(e, 4);
	cr_assert_eq(le(e + 72, 4), 0, "raw frame stored raw");
	unsigned char saved[80];
	memcpy(saved, e, 80);
	static const struct {
		int at;             /* byte of the entry */
		uint32_t v;         /* new u32 there */
		const char *why;    /* what open says */
	} cases[] = {
		{ 68, 0, "impossible sizes (" },
		{ 64, 0xfffffff0u, "outside the block area" },
		{ 72, 3, "unknown codec" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint32_t v = cases[k].v;
		if (cases[k].at == 68) /* one byte short of 2 a record (raw codec: clen too) */
			v = 2 * count - 1, put_le(e + 64, v, 4);
		put_le(e + cases[k].at, v, 4);
		reseal_block_table(f, size);
		tw_test_write_file(bad, f, size);
		cr_assert_eq(tw_seg_open(bad, &s, &err), TW_ECORRUPT, "case %zu opened", k);
		cr_assert(strstr(err.msg, "block table: block 1: ") && strstr(err.msg, cases[k].why),
			  "case %zu: %s", k, err.msg);
		if (cases[k].at == 68)
			cr_assert(strstr(err.msg, " raw frame "), "%s", err.msg);
		memcpy(e, saved, 80);
	}
	/* the first record's id put back one byte past its raw bytes; CRC made to match */
	uint64_t roff = le(e + 24, 8) + le(e + 32, 4) + le(e + 48, 4), rlen = le(e + 64, 4);
	const unsigned char *p = f + roff, *pe = p + rlen;
	uint64_t at = rd_varint(&p, pe), len = rd_varint(&p, pe);
	cr_assert_lt(at, 128);
	cr_assert_lt(len + 2, 128);
	f[roff] = (unsigned char)(len + 2);
	put_le(e + 76, tw_wal_crc32c(0, f + roff, rlen), 4);
	reseal_block_table(f, size);
	tw_test_write_file(bad, f, size);
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	for (uint32_t i = 0; i < 600; i++) {
		struct tw_event got;
		tw_arena_reset(&a);
		cr_assert_eq(tw_seg_get_fields(s, i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
		enum tw_rc rc = tw_seg_get(s, i, &bb, &got, &a, &err);
		if (i >= first && i < first + count) {
			cr_assert_eq(rc, TW_ECORRUPT, "record %u", i);
			cr_assert(strstr(err.msg, "block 1: raw frame puts back an id"), "%s", err.msg);
		} else {
			cr_assert_eq(rc, TW_OK, "record %u: %s", i, err.msg);
			cr_assert(str_eq(got.raw, ev[i].raw));
		}
	}
	problems = 0;
	cr_assert_eq(tw_seg_verify(s, count_problem, NULL, &err), TW_ECORRUPT);
	cr_assert_gt(problems, 0);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
	free(f);
	free(bad);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* Raw records are rebuilt one at a time, when tw_seg_get asks for them: one record fetched from
 * each of many blocks (a different position in each), then the rest of each block in reverse
 * order on the same blockbuf, all equal the events written, and a raw string handed out first
 * stays valid while the others of its block are rebuilt. */
Test(index_segment, single_records_from_many_blocks_equal_the_full_decode)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "one.tws");
	static struct tw_event ev[2000];
	struct tw_seg_info info;
	struct tw_err err;
	make_events(ev, 2000);
	struct tw_seg *s = write_and_open(path, ev, 2000, 4 << 10, &info);
	cr_assert_gt(info.blocks, 20);
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_buf b1, b2;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	tw_buf_init(&b1, 1 << 20);
	tw_buf_init(&b2, 1 << 20);
	for (uint32_t b = 0; b < info.blocks; b++) {
		struct tw_seg_block m;
		struct tw_event one, got;
		tw_seg_block_meta(s, b, &m);
		uint32_t pick = m.first + (uint32_t)((b * 7u) % m.count);
		tw_arena_reset(&a);
		cr_assert_eq(tw_seg_get(s, pick, &bb, &one, &a, &err), TW_OK, "%s", err.msg);
		enc(&ev[pick], &b1);
		enc(&one, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "block %u: record %u differs", b, pick);
		if (b % 3) /* the others of the block on the next pass over the blocks */
			continue;
		for (uint32_t r = m.first + m.count; r-- > m.first;) {
			cr_assert_eq(tw_seg_get(s, r, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
			enc(&ev[r], &b1);
			enc(&got, &b2);
			cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", r);
		}
		cr_assert(str_eq(one.raw, ev[pick].raw), "block %u: the first raw still valid", b);
	}
	/* every record, blocks visited in turn again (each block reloaded) */
	for (uint32_t b = 0; b < info.blocks; b++) {
		struct tw_seg_block m;
		tw_seg_block_meta(s, b, &m);
		for (uint32_t r = m.first; r < m.first + m.count; r++) {
			struct tw_event got;
			tw_arena_reset(&a);
			cr_assert_eq(tw_seg_get(s, r, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
			enc(&ev[r], &b1);
			enc(&got, &b2);
			cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", r);
		}
	}
	tw_buf_free(&b1);
	tw_buf_free(&b2);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}

/* A raw-frame entry late in a block that puts its id back past its bytes (CRC made to match):
 * the block's records before it still come back whole, it gives TW_ECORRUPT naming the problem,
 * and so do the ones after it (the frame past a bad entry is not trusted); every record's fields
 * still come back, other blocks are untouched, and verify reports it. */
Test(index_segment, a_bad_raw_record_late_in_a_block_fails_alone_with_its_successors)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "late.tws"), *bad = tw_test_join(dir, "bad.tws");
	static struct tw_event ev[600];
	struct tw_seg_opts o;
	struct tw_seg_info info;
	struct tw_err err;
	struct tw_seg *s;
	size_t size;
	make_events(ev, 600);
	tw_seg_opts_default(&o);
	o.codec = TW_SEG_RAW;
	o.block_bytes = 4096;
	o.fsync = 0;
	cr_assert_eq(tw_seg_write(path, ev, 600, &o, &info, &err), TW_OK, "%s", err.msg);
	cr_assert_gt(info.blocks, 3);
	unsigned char *f = (unsigned char *)tw_test_read_file(path, &size);
	uint64_t bt, btlen;
	find_section(f, size, 1, 0, &bt, &btlen);
	unsigned char *e = f + bt + 8 + 80 * 2;
	uint32_t count = (uint32_t)le(e + 4, 4), first = (uint32_t)le(e, 4);
	cr_assert_eq(le(e + 72, 4), 0, "raw frame stored raw");
	uint64_t roff = le(e + 24, 8) + le(e + 32, 4) + le(e + 48, 4), rlen = le(e + 64, 4);
	/* the first entry of the block's second half with an id to put back, one-byte varints */
	const unsigned char *p = f + roff, *pe = p + rlen;
	uint32_t victim = UINT32_MAX;
	uint64_t vlen = 0, vpos = 0;
	for (uint32_t k = 0; k < count; k++) {
		uint64_t pos = (uint64_t)(p - f);
		uint64_t at = rd_varint(&p, pe), len = rd_varint(&p, pe);
		if (victim == UINT32_MAX && k >= count / 2 && at >= 1 && at < 128 && len + 2 < 128)
			victim = k, vlen = len, vpos = pos;
		p += len;
	}
	cr_assert_eq(p, pe, "entries fill the frame");
	cr_assert_neq(victim, UINT32_MAX);
	cr_assert_gt(victim, 0);
	cr_assert_lt(victim + 1, count, "records follow it");
	f[vpos] = (unsigned char)(vlen + 2);
	put_le(e + 76, tw_wal_crc32c(0, f + roff, rlen), 4);
	reseal_block_table(f, size);
	tw_test_write_file(bad, f, size);
	cr_assert_eq(tw_seg_open(bad, &s, &err), TW_OK, "%s", err.msg);
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_buf b1, b2;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	tw_buf_init(&b1, 1 << 20);
	tw_buf_init(&b2, 1 << 20);
	for (uint32_t i = 0; i < 600; i++) {
		struct tw_event got;
		tw_arena_reset(&a);
		enum tw_rc rc = tw_seg_get(s, i, &bb, &got, &a, &err);
		if (i >= first + victim && i < first + count) {
			cr_assert_eq(rc, TW_ECORRUPT, "record %u", i);
			cr_assert(strstr(err.msg, "bad.tws: block 2: raw frame puts back an id"), "%s", err.msg);
			cr_assert_eq(tw_seg_get_fields(s, i, &bb, &got, &a, &err), TW_OK, "%s", err.msg);
			enc_fields(&ev[i], &b1);
		} else {
			cr_assert_eq(rc, TW_OK, "record %u: %s", i, err.msg);
			enc(&ev[i], &b1);
		}
		enc(&got, &b2);
		cr_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0, "record %u differs", i);
	}
	problems = 0;
	cr_assert_eq(tw_seg_verify(s, count_problem, NULL, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "block 2: raw frame puts back an id"), "%s", err.msg);
	/* one per record it hides, and the id index then holds more ids than the records read */
	cr_assert_eq(problems, (int)(count - victim) + 1, "%d problems for %u hidden: %s", problems,
		     count - victim, err.msg);
	tw_buf_free(&b1);
	tw_buf_free(&b2);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	tw_seg_close(s);
	free(f);
	free(bad);
	free(path);
	tw_arena_free(&pool);
	tw_test_tmpdir_free(dir);
}
