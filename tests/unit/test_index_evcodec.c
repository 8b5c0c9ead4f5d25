/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_index_evcodec.c: the event codec round-trips every part of an event, matches
 * the byte layout of index/FORMAT.md (bytes worked out by hand from the document), accepts only
 * canonical encodings, and treats truncated or bit-flipped input as corruption without reading
 * out of bounds or allocating (make check runs this under ASan). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/evcodec.h"

/* Deterministic PRNG so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct tw_str S(const char *s)
{
	struct tw_str t = { s, strlen(s) };
	return t;
}

static void assert_str_eq(struct tw_str a, struct tw_str b, const char *what)
{
	cr_assert_eq(a.n, b.n, "%s: length %zu != %zu", what, a.n, b.n);
	if (a.n)
		cr_assert(memcmp(a.p, b.p, a.n) == 0, "%s: bytes differ", what);
}

static void assert_event_eq(const struct tw_event *a, const struct tw_event *b)
{
	cr_assert_eq(a->kind, b->kind);
	cr_assert_eq(a->time_ms, b->time_ms, "time %lld != %lld", (long long)a->time_ms,
		     (long long)b->time_ms);
	cr_assert_eq(a->read_only, b->read_only);
	for (int f = 0; f < TW_F__COUNT; f++)
		assert_str_eq(a->f[f], b->f[f], tw_field_name((enum tw_field)f));
	cr_assert_eq(a->nresources, b->nresources);
	for (uint32_t i = 0; i < a->nresources; i++)
		assert_str_eq(a->resources[i], b->resources[i], "resource");
	assert_str_eq(a->raw, b->raw, "raw");
}

static int inside(struct tw_str s, const char *p, size_t n)
{
	return s.n == 0 || (s.p >= p && s.p + s.n <= p + n);
}

/* Storage for the varied events below. */
static char big_raw[200000];
static char binary_field[64];
static struct tw_str many_res[1000];
static char res_bytes[1000][40];

static struct tw_event blank(enum tw_kind kind)
{
	struct tw_event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.read_only = -1;
	return ev;
}

/* Fills evs with events covering the corners; returns how many. */
static size_t varied_events(struct tw_event *evs)
{
	size_t n = 0;
	struct tw_event ev;

	/* 0: the smallest event: nothing present, empty raw. */
	evs[n++] = blank(TW_KIND_CLOUDTRAIL);

	/* 1: every field, with escapes, quotes, NUL, UTF-8 and 0xff bytes. */
	for (size_t i = 0; i < sizeof binary_field; i++)
		binary_field[i] = (char)(i * 37 + 1);
	binary_field[5] = '\0';
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.time_ms = 1700000000123;
	ev.read_only = 1;
	for (int f = 0; f < TW_F__COUNT; f++)
		ev.f[f] = S(tw_field_name((enum tw_field)f));
	ev.f[TW_F_USER_AGENT] = S("aws-cli/2.0 \"quoted\" back\\slash \\u00e9 caf\xc3\xa9 \xff\n\t");
	ev.f[TW_F_ERROR_MESSAGE] = (struct tw_str){ binary_field, sizeof binary_field };
	ev.raw = S("{\"eventName\":\"Get\\\"Object\",\"x\":\"\\u0000\"}");
	evs[n++] = ev;

	/* 2: negative time, read_only false, only the last field, a few empty resources. */
	ev = blank(TW_KIND_CWLOG);
	ev.time_ms = -1;
	ev.read_only = 0;
	ev.f[TW_F_MESSAGE] = S("m");
	static struct tw_str empties[3];
	ev.resources = empties;
	ev.nresources = 3;
	ev.raw = S("x");
	evs[n++] = ev;

	/* 3, 4: the extreme times. */
	ev = blank(TW_KIND_INSIGHT);
	ev.time_ms = INT64_MIN;
	evs[n++] = ev;
	ev.time_ms = INT64_MAX;
	ev.read_only = 1;
	evs[n++] = ev;

	/* 5: many resources of varying length (including lengths around 127/128). */
	for (size_t i = 0; i < 1000; i++) {
		size_t len = (i * 7) % 40;
		for (size_t j = 0; j < len; j++)
			res_bytes[i][j] = (char)('a' + (i + j) % 26);
		many_res[i] = (struct tw_str){ len ? res_bytes[i] : NULL, len };
	}
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.time_ms = 42;
	ev.resources = many_res;
	ev.nresources = 1000;
	ev.f[TW_F_EVENT_ID] = S("e");
	ev.raw = S("{}");
	evs[n++] = ev;

	/* 6: a large raw (3-byte length varint) and fields of 127 / 128 / 16384 bytes. */
	for (size_t i = 0; i < sizeof big_raw; i++)
		big_raw[i] = (char)(' ' + i % 90);
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.time_ms = -1700000000000;
	ev.f[TW_F_PRINCIPAL] = (struct tw_str){ big_raw, 127 };
	ev.f[TW_F_REGION] = (struct tw_str){ big_raw + 1, 128 };
	ev.f[TW_F_LOG_GROUP] = (struct tw_str){ big_raw + 2, 16384 };
	ev.raw = (struct tw_str){ big_raw, sizeof big_raw };
	evs[n++] = ev;
	return n;
}

Test(index_evcodec, round_trips_varied_events_zero_copy)
{
	struct tw_event evs[16], out;
	size_t n = varied_events(evs);
	struct tw_err err;
	struct tw_arena a;
	struct tw_buf b, again;

	tw_arena_init(&a, 4096, 0);
	for (size_t i = 0; i < n; i++) {
		size_t used = 0;
		tw_buf_init(&b, 1 << 24);
		tw_buf_init(&again, 1 << 24);
		cr_assert_eq(tw_evcodec_encode(&b, &evs[i], &err), TW_OK, "%zu: %s", i, err.msg);
		/* trailing bytes after an event are not the event's business */
		cr_assert_eq(tw_buf_append(&b, "zz", 2, &err), TW_OK);
		cr_assert_eq(tw_evcodec_decode(b.p, b.n, &used, &out, &a, &err), TW_OK, "%zu: %s", i,
			     err.msg);
		cr_assert_eq(used, b.n - 2, "event %zu used %zu of %zu", i, used, b.n - 2);
		assert_event_eq(&evs[i], &out);
		cr_assert_eq(out.src_index, 0);
		cr_assert_eq(out.src_line, 0);
		/* zero copy: every slice points into the encoded bytes */
		cr_assert(inside(out.raw, b.p, b.n));
		for (int f = 0; f < TW_F__COUNT; f++)
			cr_assert(inside(out.f[f], b.p, b.n));
		for (uint32_t r = 0; r < out.nresources; r++)
			cr_assert(inside(out.resources[r], b.p, b.n));
		cr_assert_eq(tw_evcodec_encode(&again, &out, &err), TW_OK);
		cr_assert_eq(again.n, used);
		cr_assert(memcmp(again.p, b.p, used) == 0, "event %zu re-encodes differently", i);
		tw_buf_free(&b);
		tw_buf_free(&again);
	}
	tw_arena_free(&a);
}

/* The bytes below are worked out by hand from index/FORMAT.md, not taken from the encoder. */
Test(index_evcodec, encodes_the_documented_bytes)
{
	static const unsigned char want[] = {
		0x01,             /* version */
		0x21,             /* head: kind 1 (cloudtrail) | read_only true (2) << 4 */
		0xd8, 0x04,       /* zigzag(300) = 600 = 0x258: 0x58|0x80, 0x04 */
		0x0a,             /* bitmap: eventName (disk id 1) + awsRegion (disk id 3) */
		0x03, 'G', 'e', 't',
		0x02, 'u', 's',
		0x01,             /* one resource */
		0x02, 'a', 'b',
		0x02, '{', '}',   /* raw */
	};
	static const unsigned char want_neg[] = { 0x01, 0x03, 0x05, 0x00, 0x00, 0x00 };
	struct tw_str res = S("ab");
	struct tw_event ev = blank(TW_KIND_CLOUDTRAIL);
	struct tw_err err;
	struct tw_buf b;

	ev.time_ms = 300;
	ev.read_only = 1;
	ev.f[TW_F_EVENT_NAME] = S("Get");
	ev.f[TW_F_REGION] = S("us");
	ev.resources = &res;
	ev.nresources = 1;
	ev.raw = S("{}");
	tw_buf_init(&b, 1024);
	cr_assert_eq(tw_evcodec_encode(&b, &ev, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(b.n, sizeof want);
	cr_assert(memcmp(b.p, want, sizeof want) == 0);

	/* cwlog, read_only absent, time -3 -> zigzag 5, nothing else: the 6-byte minimum */
	tw_buf_reset(&b);
	ev = blank(TW_KIND_CWLOG);
	ev.time_ms = -3;
	cr_assert_eq(tw_evcodec_encode(&b, &ev, &err), TW_OK);
	cr_assert_eq(b.n, sizeof want_neg);
	cr_assert_eq(b.n, TW_EVCODEC_MIN_EVENT);
	cr_assert(memcmp(b.p, want_neg, sizeof want_neg) == 0);
	tw_buf_free(&b);
}

Test(index_evcodec, rejects_every_truncation_without_allocating)
{
	struct tw_event evs[16], out;
	size_t n = varied_events(evs);
	struct tw_err err;
	struct tw_arena a;
	struct tw_buf b;

	tw_arena_init(&a, 4096, 0);
	for (size_t i = 0; i < n; i++) {
		tw_buf_init(&b, 1 << 24);
		cr_assert_eq(tw_evcodec_encode(&b, &evs[i], &err), TW_OK);
		/* every length for the small events; a sample of lengths for the 200 KB one */
		size_t step = b.n > 20000 ? 997 : 1;
		for (size_t k = 0; k < b.n; k += step) {
			/* a copy of exactly k bytes, so ASan sees any read past the end */
			char *p = malloc(k ? k : 1);
			size_t used = 12345;
			cr_assert(p);
			memcpy(p, b.p, k);
			err.msg[0] = '\0';
			enum tw_rc rc = tw_evcodec_decode(p, k, &used, &out, &a, &err);
			cr_assert_eq(rc, TW_ECORRUPT, "event %zu cut at %zu: rc %d", i, k, rc);
			cr_assert(err.msg[0], "a reason is given");
			cr_assert_eq(used, 12345, "used is written only on success");
			cr_assert_eq(a.used, 0, "nothing allocated for corrupt input");
			free(p);
		}
		tw_buf_free(&b);
	}
	tw_arena_free(&a);
}

/* Decodes p[0..n) and checks the contract: fails with a reason, or succeeds on bytes that are
 * exactly the re-encoding of what it returned. */
static void check_decode_contract(const char *p, size_t n, struct tw_arena *a)
{
	struct tw_event out;
	struct tw_err err;
	struct tw_buf again;
	size_t used = 0;
	enum tw_rc rc = tw_evcodec_decode(p, n, &used, &out, a, &err);

	if (rc != TW_OK) {
		cr_assert(rc == TW_ECORRUPT || rc == TW_EUNSUP, "rc %d", rc);
		cr_assert(err.msg[0]);
		return;
	}
	cr_assert(used <= n);
	tw_buf_init(&again, 1 << 24);
	cr_assert_eq(tw_evcodec_encode(&again, &out, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(again.n, used);
	cr_assert(memcmp(again.p, p, used) == 0, "accepted a non-canonical encoding");
	tw_buf_free(&again);
}

Test(index_evcodec, byte_flips_fail_or_decode_canonically)
{
	struct tw_event evs[16];
	size_t n = varied_events(evs);
	struct tw_err err;
	struct tw_arena a;
	struct tw_buf b;
	size_t tried = 0;

	tw_arena_init(&a, 1 << 16, 0);
	for (size_t i = 0; i < n; i++) {
		tw_buf_init(&b, 1 << 24);
		cr_assert_eq(tw_evcodec_encode(&b, &evs[i], &err), TW_OK);
		char *p = malloc(b.n);
		cr_assert(p);
		memcpy(p, b.p, b.n);
		/* the first 400 bytes (all the structure of most events) bit by bit, then random
		 * byte values at random places */
		size_t lim = b.n < 400 ? b.n : 400;
		for (size_t k = 0; k < lim * 8 + 2000; k++) {
			size_t pos;
			unsigned char mask;
			if (k < lim * 8) {
				pos = k / 8;
				mask = (unsigned char)(1u << (k % 8));
			} else {
				pos = rnd() % b.n;
				mask = (unsigned char)(rnd() % 255 + 1);
			}
			p[pos] = (char)(p[pos] ^ mask);
			check_decode_contract(p, b.n, &a);
			p[pos] = b.p[pos];
			tried++;
			tw_arena_reset(&a);
		}
		free(p);
		tw_buf_free(&b);
	}
	cr_assert_gt(tried, 10000);
	tw_arena_free(&a);
}

Test(index_evcodec, rejects_non_canonical_and_hostile_encodings)
{
	static const struct {
		const char *why;
		unsigned char b[16];
		size_t n;
		enum tw_rc rc;
	} cases[] = {
		{ "valid minimum", { 1, 1, 0, 0, 0, 0 }, 6, TW_OK },
		{ "version 2", { 2, 1, 0, 0, 0, 0 }, 6, TW_EUNSUP },
		{ "version 0", { 0, 1, 0, 0, 0, 0 }, 6, TW_EUNSUP },
		{ "kind 0", { 1, 0, 0, 0, 0, 0 }, 6, TW_ECORRUPT },
		{ "kind 4", { 1, 4, 0, 0, 0, 0 }, 6, TW_ECORRUPT },
		{ "read_only code 3", { 1, 0x31, 0, 0, 0, 0 }, 6, TW_ECORRUPT },
		{ "reserved head bit", { 1, 0x41, 0, 0, 0, 0 }, 6, TW_ECORRUPT },
		{ "non-minimal time", { 1, 1, 0x80, 0x00, 0, 0, 0 }, 7, TW_ECORRUPT },
		{ "non-minimal raw length", { 1, 1, 0, 0, 0, 0x80, 0x00 }, 7, TW_ECORRUPT },
		{ "11-byte varint",
		  { 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0 },
		  16, TW_ECORRUPT },
		{ "10th varint byte over 1",
		  { 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0 }, 15,
		  TW_ECORRUPT },
		{ "10-byte max time", /* zigzag(INT64_MIN) = 2^64 - 1 */
		  { 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0 }, 15,
		  TW_OK },
		{ "unknown field bit 19", { 1, 1, 0, 0x80, 0x80, 0x20, 0, 0 }, 8, TW_ECORRUPT },
		{ "present field of length 0", { 1, 1, 0, 0x01, 0x00, 0, 0 }, 7, TW_ECORRUPT },
		{ "field runs past the end", { 1, 1, 0, 0x01, 0x05, 'a', 0, 0 }, 8, TW_ECORRUPT },
		{ "2^32 - 1 resources", { 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0 }, 10,
		  TW_ECORRUPT },
		{ "2^32 resources", { 1, 1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0 }, 10, TW_ECORRUPT },
		{ "raw length past the end", { 1, 1, 0, 0, 0, 0x7f, 'x' }, 7, TW_ECORRUPT },
	};
	struct tw_arena a;
	struct tw_event out;
	struct tw_err err;

	tw_arena_init(&a, 4096, 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* exact-size copy so ASan catches any over-read */
		char *p = malloc(cases[i].n);
		size_t used;
		cr_assert(p);
		memcpy(p, cases[i].b, cases[i].n);
		enum tw_rc rc = tw_evcodec_decode(p, cases[i].n, &used, &out, &a, &err);
		cr_assert_eq(rc, cases[i].rc, "%s: rc %d (%s)", cases[i].why, rc,
			     rc ? err.msg : "ok");
		if (rc == TW_OK)
			check_decode_contract(p, cases[i].n, &a);
		else
			cr_assert_eq(a.used, 0, "%s: allocated for corrupt input", cases[i].why);
		free(p);
	}
	/* the 10-byte time decodes to INT64_MIN */
	cr_assert_eq(tw_evcodec_decode((const char *)cases[11].b, cases[11].n, NULL, &out, &a, &err),
		     TW_OK);
	cr_assert_eq(out.time_ms, INT64_MIN);
	tw_arena_free(&a);
}

Test(index_evcodec, encode_rejects_invalid_events_atomically)
{
	struct tw_event ev;
	struct tw_err err;
	struct tw_buf b;
	struct tw_str bad = { NULL, 3 };

	tw_buf_init(&b, 1024);
	cr_assert_eq(tw_buf_append(&b, "keep", 4, &err), TW_OK);

	ev = blank((enum tw_kind)0);
	cr_assert_eq(tw_evcodec_encode(&b, &ev, &err), TW_EINVAL);
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.read_only = 2;
	cr_assert_eq(tw_evcodec_encode(&b, &ev, &err), TW_EINVAL);
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.f[TW_F_REGION] = bad;
	cr_assert_eq(tw_evcodec_encode(&b, &ev, &err), TW_EINVAL);
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.resources = &bad;
	ev.nresources = 1;
	cr_assert_eq(tw_evcodec_encode(&b, &ev, &err), TW_EINVAL);
	cr_assert_eq(b.n, 4, "a failed encode leaves the buffer as it was");

	/* a buffer cap reached half way: TW_ELIMIT, buffer unchanged */
	struct tw_buf small;
	tw_buf_init(&small, 10);
	ev = blank(TW_KIND_CLOUDTRAIL);
	ev.raw = S("0123456789abcdef");
	cr_assert_eq(tw_evcodec_encode(&small, &ev, &err), TW_ELIMIT);
	cr_assert_eq(small.n, 0);
	tw_buf_free(&small);
	tw_buf_free(&b);
}

Test(index_evcodec, batch_round_trips_and_owns_its_bytes)
{
	struct tw_event evs[16];
	size_t n = varied_events(evs);
	struct tw_batch batch, borrowed;
	struct tw_err err;
	struct tw_buf b;

	tw_buf_init(&b, 1 << 24);
	cr_assert_eq(tw_evcodec_encode_batch(&b, evs, n, &err), TW_OK, "%s", err.msg);

	/* default: the batch copies the payload, so the input can go away */
	char *p = malloc(b.n);
	cr_assert(p);
	memcpy(p, b.p, b.n);
	tw_batch_init(&batch);
	cr_assert_eq(tw_evcodec_decode_batch(p, b.n, 0, &batch, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(batch.n, n);
	for (size_t i = 0; i < n; i++)
		cr_assert(!inside(batch.ev[i].raw, p, b.n) || batch.ev[i].raw.n == 0);
	memset(p, 0xee, b.n);
	free(p);
	for (size_t i = 0; i < n; i++)
		assert_event_eq(&evs[i], &batch.ev[i]);

	/* BORROW: the events point into the payload itself */
	tw_batch_init(&borrowed);
	cr_assert_eq(tw_evcodec_decode_batch(b.p, b.n, TW_EVCODEC_BORROW, &borrowed, &err), TW_OK);
	cr_assert_eq(borrowed.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_event_eq(&evs[i], &borrowed.ev[i]);
		cr_assert(inside(borrowed.ev[i].raw, b.p, b.n));
	}
	cr_assert_lt(borrowed.arena.used, b.n, "borrowing does not copy the payload");

	/* re-encoding the decoded batch gives the same payload */
	struct tw_buf again;
	tw_buf_init(&again, 1 << 24);
	cr_assert_eq(tw_evcodec_encode_batch(&again, batch.ev, batch.n, &err), TW_OK);
	cr_assert_eq(again.n, b.n);
	cr_assert(memcmp(again.p, b.p, b.n) == 0);

	cr_assert_eq(tw_evcodec_decode_batch(b.p, b.n, 8, &borrowed, &err), TW_EINVAL);
	tw_buf_free(&again);
	tw_batch_free(&batch);
	tw_batch_free(&borrowed);
	tw_buf_free(&b);
}

Test(index_evcodec, empty_batch_is_one_zero_byte)
{
	struct tw_batch batch;
	struct tw_err err;
	struct tw_buf b;

	tw_buf_init(&b, 16);
	cr_assert_eq(tw_evcodec_encode_batch(&b, NULL, 0, &err), TW_OK);
	cr_assert_eq(b.n, 1);
	cr_assert_eq(b.p[0], 0);
	tw_batch_init(&batch);
	cr_assert_eq(tw_evcodec_decode_batch(b.p, b.n, 0, &batch, &err), TW_OK);
	cr_assert_eq(batch.n, 0);
	cr_assert_eq(tw_evcodec_decode_batch(b.p, 0, 0, &batch, &err), TW_ECORRUPT,
		     "zero bytes are not a batch");
	tw_batch_free(&batch);
	tw_buf_free(&b);
}

Test(index_evcodec, batch_decode_is_all_or_nothing)
{
	struct tw_event evs[16];
	size_t n = varied_events(evs);
	struct tw_batch batch;
	struct tw_err err;
	struct tw_buf b;

	/* a small batch (the first five events) so every truncation can be tried */
	tw_buf_init(&b, 1 << 24);
	cr_assert_eq(tw_evcodec_encode_batch(&b, evs, 5, &err), TW_OK);
	tw_batch_init(&batch);
	cr_assert(tw_batch_push(&batch, &err)); /* an event already in the batch stays */
	for (size_t k = 0; k < b.n; k++) {
		char *p = malloc(k ? k : 1);
		cr_assert(p);
		memcpy(p, b.p, k);
		cr_assert_eq(tw_evcodec_decode_batch(p, k, TW_EVCODEC_BORROW, &batch, &err),
			     TW_ECORRUPT, "cut at %zu", k);
		cr_assert_eq(batch.n, 1, "cut at %zu left %zu events", k, batch.n);
		free(p);
	}
	/* trailing garbage after the last event */
	cr_assert_eq(tw_buf_putc(&b, 0, &err), TW_OK);
	cr_assert_eq(tw_evcodec_decode_batch(b.p, b.n, 0, &batch, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "trailing"), "%s", err.msg);
	cr_assert_eq(batch.n, 1);

	/* a count that the bytes cannot hold is refused before anything is allocated */
	static const char huge[] = { (char)0xff, (char)0xff, (char)0xff, 0x7f, 1, 1, 0, 0, 0, 0 };
	size_t used_before = batch.arena.used;
	cr_assert_eq(tw_evcodec_decode_batch(huge, sizeof huge, 0, &batch, &err), TW_ECORRUPT);
	cr_assert_eq(batch.arena.used, used_before);
	cr_assert_eq(batch.n, 1);
	(void)n;
	tw_batch_free(&batch);
	tw_buf_free(&b);
}

Test(index_evcodec, batch_sel_encodes_the_selected_events_in_that_order)
{
	struct tw_event evs[16], copies[16];
	size_t n = varied_events(evs), k = 0;
	uint32_t sel[16];
	struct tw_batch batch;
	struct tw_err err;
	struct tw_buf a, b;

	cr_assert(n >= 3);
	/* every other event, last first: a subset in an order of its own */
	for (size_t i = n; i-- > 0;)
		if (i % 2 == 0) {
			sel[k] = (uint32_t)i;
			copies[k++] = evs[i];
		}
	tw_buf_init(&a, 1 << 24);
	tw_buf_init(&b, 1 << 24);
	cr_assert_eq(tw_evcodec_encode_batch(&a, copies, k, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_buf_append(&b, "pre", 3, &err), TW_OK);
	cr_assert_eq(tw_evcodec_encode_batch_sel(&b, evs, sel, k, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(b.n, 3 + a.n);
	cr_assert(memcmp(b.p + 3, a.p, a.n) == 0, "sel differs from encoding the copies");
	tw_batch_init(&batch);
	cr_assert_eq(tw_evcodec_decode_batch(b.p + 3, b.n - 3, TW_EVCODEC_BORROW, &batch, &err), TW_OK, "%s",
		     err.msg);
	cr_assert_eq(batch.n, k);
	for (size_t i = 0; i < k; i++)
		assert_event_eq(&evs[sel[i]], &batch.ev[i]);
	tw_batch_free(&batch);

	/* an invalid event outside the selection does not matter; one inside fails atomically and is
	 * named by its position in the selection */
	evs[1].kind = (enum tw_kind)0;
	cr_assert_eq(tw_evcodec_encode_batch_sel(&b, evs, sel, k, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(b.n, 3 + 2 * a.n);
	evs[sel[1]].read_only = 5;
	cr_assert_eq(tw_evcodec_encode_batch_sel(&b, evs, sel, k, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "batch event 1") != NULL, "%s", err.msg);
	cr_assert_eq(b.n, 3 + 2 * a.n, "a failed encode leaves the buffer as it was");
	cr_assert_eq(tw_evcodec_encode_batch_sel(&b, evs, NULL, 1, &err), TW_EINVAL);
	cr_assert_eq(tw_evcodec_encode_batch_sel(&b, evs, NULL, 0, &err), TW_OK);
	cr_assert_eq(b.n, 3 + 2 * a.n + 1);
	tw_buf_free(&a);
	tw_buf_free(&b);
}
