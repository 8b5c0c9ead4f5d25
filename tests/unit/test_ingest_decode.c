/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_ingest_decode.c: the splitter (ingest/split.c) and the dispatcher and blob
 * decoding (ingest/decode.c, tw_ingest_buffer).
 *
 * Where the expected values come from: the inputs are built here piece by piece, so the test knows
 * where each record starts and ends, on which line, and what its eventID is; a streamed run (fed in
 * pieces) must match the one-shot run and the known boundaries; compressed inputs are made with
 * zlib (not the ISA-L inflater under test); base64 is encoded by a few lines here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tests/helpers/helpers.h"
#include "core/json.h"
#include "ingest/ingest.h"
#include "ingest/ingest_int.h"
#include "ingest/split.h"

/* ---- splitter harness --------------------------------------------------------------------- */

struct got {
	int reject;         /* a reject rather than a candidate */
	char *bytes;        /* copy of the bytes (NUL-terminated) */
	size_t len;         /* their length */
	struct tw_pos pos;  /* position */
	char reason[160];   /* reject reason */
};

struct coll {
	struct got *v; /* what was emitted */
	size_t n;      /* entries */
	size_t cap;    /* allocated */
	int keep_bytes; /* copy the bytes (off for huge runs) */
};

static enum tw_rc collect(void *ctx, const struct tw_split_out *o)
{
	struct coll *c = ctx;
	struct got *g;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = realloc(c->v, c->cap * sizeof *c->v);
		cr_assert(c->v);
	}
	g = &c->v[c->n++];
	memset(g, 0, sizeof *g);
	g->reject = o->reject;
	g->len = o->len;
	g->pos = o->pos;
	if (o->reason)
		snprintf(g->reason, sizeof g->reason, "%s", o->reason);
	if (c->keep_bytes) {
		g->bytes = malloc(o->len + 1);
		cr_assert(g->bytes);
		if (o->len)
			memcpy(g->bytes, o->p, o->len);
		g->bytes[o->len] = '\0';
	}
	return TW_OK;
}

static void coll_free(struct coll *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].bytes);
	free(c->v);
	memset(c, 0, sizeof *c);
}

/* Feeds p[0..n) in pieces of `piece` bytes (0: all at once) the way source.c does: the buffer
 * keeps only bytes from tw_split_keep() on. Returns the most bytes the buffer held. */
static size_t split_run(const char *p, size_t n, size_t max_record, size_t piece, struct coll *c)
{
	struct tw_split sp;
	char *buf = NULL;
	size_t have = 0, most = 0, fed = 0;
	uint64_t base = 0;

	c->keep_bytes = c->keep_bytes || c->n == 0;
	tw_split_init(&sp, max_record, 1, 0, 0);
	if (!piece) {
		cr_assert_eq(tw_split_feed(&sp, p, n, 0, 1, collect, c), TW_OK);
		return n;
	}
	while (fed < n || fed == 0) {
		size_t k = n - fed < piece ? n - fed : piece;
		uint64_t keep;
		buf = realloc(buf, have + k + 1);
		cr_assert(buf);
		memcpy(buf + have, p + fed, k);
		have += k;
		fed += k;
		if (have > most)
			most = have;
		cr_assert_eq(tw_split_feed(&sp, buf, have, base, fed == n, collect, c), TW_OK);
		keep = tw_split_keep(&sp);
		cr_assert_geq(keep, base);
		memmove(buf, buf + (keep - base), have - (size_t)(keep - base));
		have -= (size_t)(keep - base);
		base = keep;
		if (n == 0)
			break;
	}
	free(buf);
	return most;
}

static void expect_record(const struct coll *c, size_t i, const char *bytes, uint64_t line, uint64_t index)
{
	cr_assert_lt(i, c->n, "only %zu outputs, wanted #%zu", c->n, i);
	cr_expect_eq(c->v[i].reject, 0, "#%zu is a reject: %s", i, c->v[i].reason);
	cr_expect_str_eq(c->v[i].bytes, bytes, "#%zu", i);
	cr_expect_eq(c->v[i].pos.line, line, "#%zu line %llu, wanted %llu", i,
		     (unsigned long long)c->v[i].pos.line, (unsigned long long)line);
	cr_expect_eq(c->v[i].pos.index, index, "#%zu index", i);
}

static void same_outputs(const struct coll *a, const struct coll *b, const char *what)
{
	cr_assert_eq(a->n, b->n, "%s: %zu vs %zu outputs", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		cr_assert_eq(a->v[i].reject, b->v[i].reject, "%s: #%zu", what, i);
		cr_assert_eq(a->v[i].len, b->v[i].len, "%s: #%zu length", what, i);
		cr_assert_eq(memcmp(a->v[i].bytes, b->v[i].bytes, a->v[i].len), 0, "%s: #%zu bytes", what, i);
		cr_assert_eq(a->v[i].pos.line, b->v[i].pos.line, "%s: #%zu line", what, i);
		cr_assert_eq(a->v[i].pos.index, b->v[i].pos.index, "%s: #%zu index", what, i);
		cr_assert_eq(a->v[i].pos.offset, b->v[i].pos.offset, "%s: #%zu offset", what, i);
		cr_assert_str_eq(a->v[i].reason, b->v[i].reason, "%s: #%zu reason", what, i);
	}
}

/* Splitting in one go, in two pieces cut at every offset, and byte by byte must agree. */
static void check_streaming(const char *p, size_t max_record)
{
	struct coll one = { 0 }, tiny = { 0 };
	size_t n = strlen(p);

	split_run(p, n, max_record, 0, &one);
	split_run(p, n, max_record, 1, &tiny);
	same_outputs(&one, &tiny, "byte by byte");
	for (size_t cut = 1; cut < n; cut++) {
		struct coll two = { 0 };
		struct tw_split sp;
		char *buf = malloc(n + 1);
		uint64_t keep;
		two.keep_bytes = 1;
		tw_split_init(&sp, max_record, 1, 0, 0);
		memcpy(buf, p, cut);
		cr_assert_eq(tw_split_feed(&sp, buf, cut, 0, 0, collect, &two), TW_OK);
		keep = tw_split_keep(&sp);
		memcpy(buf, p + keep, n - (size_t)keep);
		cr_assert_eq(tw_split_feed(&sp, buf, n - (size_t)keep, keep, 1, collect, &two), TW_OK);
		same_outputs(&one, &two, "two pieces");
		coll_free(&two);
		free(buf);
	}
	coll_free(&one);
	coll_free(&tiny);
}

/* ---- splitter: shapes --------------------------------------------------------------------- */

Test(ingest_decode, ndjson_lines_blank_lines_and_crlf)
{
	const char *in = "{\"a\":1}\n{\"b\":\"x}\"}\r\n\n  {\"c\":[1,{\"d\":2}]}\n";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 3);
	expect_record(&c, 0, "{\"a\":1}", 1, 0);
	expect_record(&c, 1, "{\"b\":\"x}\"}", 2, 1);
	expect_record(&c, 2, "{\"c\":[1,{\"d\":2}]}", 4, 2);
	cr_expect_eq(c.v[2].pos.offset, (uint64_t)(strstr(in, "{\"c\"") - in));
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, concatenated_values_with_tricky_strings)
{
	/* Quotes, backslashes and brackets inside strings; no separators between values. */
	const char *in = "{\"s\":\"a\\\"}b\\\\\"}{\"t\":\"\\\\\\\\\"}{\"u\":\"[[{\"} [1,2]";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 5, "got %zu", c.n);
	expect_record(&c, 0, "{\"s\":\"a\\\"}b\\\\\"}", 1, 0);
	expect_record(&c, 1, "{\"t\":\"\\\\\\\\\"}", 1, 1);
	expect_record(&c, 2, "{\"u\":\"[[{\"}", 1, 2);
	/* A top-level array: its elements are the records. */
	expect_record(&c, 3, "1", 1, 3);
	expect_record(&c, 4, "2", 1, 4);
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, top_level_array_of_objects_over_lines)
{
	const char *in = "[\n  {\"a\": 1},\n  {\"b\": [2, 3]}\n]\n{\"c\": 4}\n";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 3);
	expect_record(&c, 0, "{\"a\": 1}", 2, 0);
	expect_record(&c, 1, "{\"b\": [2, 3]}", 3, 1);
	expect_record(&c, 2, "{\"c\": 4}", 5, 2);
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, records_wrapper_pretty_printed_other_keys_ignored)
{
	const char *in = "{\n"
			 "  \"Records\" : [\n"
			 "    {\n      \"eventID\": \"1\",\n      \"x\": \"]}\"\n    },\n"
			 "    {\"eventID\": \"2\"}\n"
			 "  ],\n"
			 "  \"other\": {\"Records\": [{\"no\": 1}]}\n"
			 "}\n"
			 "{\"Records\":[{\"eventID\":\"3\"}]}";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 3, "got %zu", c.n);
	expect_record(&c, 0, "{\n      \"eventID\": \"1\",\n      \"x\": \"]}\"\n    }", 3, 0);
	expect_record(&c, 1, "{\"eventID\": \"2\"}", 7, 1);
	expect_record(&c, 2, "{\"eventID\":\"3\"}", 11, 2);
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, records_member_not_first_found_when_object_outgrows_cap)
{
	/* 300 elements of ~40 bytes behind another member: the whole object is ~12 KB, the cap 1 KB. */
	size_t cap = 64 * 1024, n = 0;
	char *in = malloc(cap);
	struct coll c = { 0 };

	n += (size_t)snprintf(in + n, cap - n, "{\"meta\": {\"k\": [1, 2, \"]\"]},\n \"Records\": [");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(in + n, cap - n, "%s{\"eventID\": \"e%04d\", \"v\": \"%s\"}", i ? "," : "",
				      i, i % 7 ? "plain" : "q\\\"}{");
	n += (size_t)snprintf(in + n, cap - n, "], \"tail\": 1}\n{\"after\": 1}\n");
	split_run(in, n, 1024, 0, &c);
	cr_assert_eq(c.n, 301, "got %zu", c.n);
	for (int i = 0; i < 300; i++) {
		char want[32];
		snprintf(want, sizeof want, "\"e%04d\"", i);
		cr_assert(strstr(c.v[i].bytes, want), "#%d: %s", i, c.v[i].bytes);
		cr_assert_eq(c.v[i].pos.line, 2);
	}
	expect_record(&c, 300, "{\"after\": 1}", 3, 300);
	coll_free(&c);
	free(in);
}

Test(ingest_decode, huge_single_line_wrapper_streams_in_bounded_memory)
{
	/* One 24 MB line {"Records":[...]} fed in 64 KiB pieces with a 4 KiB record cap: every element
	 * comes out, and the buffer never holds more than a piece plus one element. */
	const size_t nel = 200000, piece = 64 * 1024;
	size_t cap = nel * 130 + 64, n = 0, have = 0, fed = 0;
	char *in = malloc(cap), *buf = malloc(piece + 8192), key[32];
	struct coll c = { 0 };
	struct tw_split sp;
	uint64_t base = 0;

	n += (size_t)snprintf(in + n, cap - n, "{\"Records\":[");
	for (size_t i = 0; i < nel; i++)
		n += (size_t)snprintf(in + n, cap - n, "%s{\"eventID\":\"%08zu\",\"p\":\"%s\",\"q\":[{\"r\":%zu}]}",
				      i ? "," : "", i, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", i);
	n += (size_t)snprintf(in + n, cap - n, "]}");
	c.keep_bytes = 0; /* positions only: 200k copies would be slow */
	tw_split_init(&sp, 4096, 1, 0, 0);
	while (fed < n) {
		size_t k = n - fed < piece ? n - fed : piece;
		uint64_t keep;
		cr_assert_leq(have + k, piece + 4096, "the buffer would hold %zu bytes", have + k);
		memcpy(buf + have, in + fed, k);
		have += k;
		fed += k;
		cr_assert_eq(tw_split_feed(&sp, buf, have, base, fed == n, collect, &c), TW_OK);
		keep = tw_split_keep(&sp);
		memmove(buf, buf + (keep - base), have - (size_t)(keep - base));
		have -= (size_t)(keep - base);
		base = keep;
	}
	cr_assert_eq(c.n, nel, "got %zu", c.n);
	for (size_t i = 0; i < c.n; i++) {
		cr_assert_eq(c.v[i].reject, 0);
		cr_assert_eq(c.v[i].pos.index, i);
		cr_assert_eq(c.v[i].pos.line, 1);
	}
	snprintf(key, sizeof key, "{\"eventID\":\"%08d\"", 1000);
	cr_assert_eq(c.v[1000].pos.offset, (uint64_t)(strstr(in, key) - in));
	{
		const char *at = strstr(in, key), *next = strstr(at + 1, "{\"eventID\"");
		cr_assert_eq(c.v[1000].len, (size_t)(next - at) - 1); /* up to the comma */
	}
	coll_free(&c);
	free(buf);
	free(in);
}

Test(ingest_decode, record_over_cap_is_rejected_and_skipped_next_line_decodes)
{
	/* NDJSON: line 2 is too long; pretty input: element 2 is too long. */
	char big[3000];
	char in[8192];
	struct coll c = { 0 };

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(in, sizeof in, "{\"a\":1}\n{\"big\":\"%s\",\"n\":[1,2]}\n{\"b\":2}\nplain text line %s\nlast\n",
		 big, big);
	split_run(in, strlen(in), 1000, 0, &c);
	cr_assert_eq(c.n, 5, "got %zu", c.n);
	expect_record(&c, 0, "{\"a\":1}", 1, 0);
	cr_expect_eq(c.v[1].reject, 1);
	cr_expect_str_eq(c.v[1].reason, "record exceeds 1000 bytes");
	cr_expect_eq(c.v[1].pos.line, 2);
	cr_expect_eq(c.v[1].pos.index, 1);
	cr_expect_eq(c.v[1].len, 1000); /* what was buffered of it, no more */
	expect_record(&c, 2, "{\"b\":2}", 3, 2);
	cr_expect_eq(c.v[3].reject, 1);
	cr_expect_eq(c.v[3].pos.line, 4);
	expect_record(&c, 4, "last", 5, 4);
	coll_free(&c);
	check_streaming(in, 1000);

	snprintf(in, sizeof in, "{\n\"Records\": [\n{\"a\": 1},\n{\"big\": \"%s\",\n \"n\": [1, 2]},\n{\"b\": 2}\n]\n}\n", big);
	memset(&c, 0, sizeof c);
	split_run(in, strlen(in), 1000, 0, &c);
	cr_assert_eq(c.n, 3, "got %zu", c.n);
	expect_record(&c, 0, "{\"a\": 1}", 3, 0);
	cr_expect_eq(c.v[1].reject, 1);
	cr_expect_eq(c.v[1].pos.line, 4);
	expect_record(&c, 2, "{\"b\": 2}", 6, 2);
	coll_free(&c);
}

Test(ingest_decode, broken_lines_stay_on_their_line)
{
	/* NDJSON (the first value ends its line): line 3 never closes its object, yet it is one
	 * candidate (for the decoder to reject) and line 4 is the next one. */
	const char *in = "{\"a\":1}\n{\"b\":2}\n{\"broken\":[1,2}\n{\"c\":3}\n}\n{\"d\":4}\n";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 6, "got %zu", c.n);
	expect_record(&c, 0, "{\"a\":1}", 1, 0);
	expect_record(&c, 1, "{\"b\":2}", 2, 1);
	expect_record(&c, 2, "{\"broken\":[1,2}", 3, 2);
	cr_expect_eq(c.v[2].pos.offset, 16);
	expect_record(&c, 3, "{\"c\":3}", 4, 3);
	/* A stray '}' is a text line for the decoders to refuse. */
	expect_record(&c, 4, "}", 5, 4);
	expect_record(&c, 5, "{\"d\":4}", 6, 5);
	coll_free(&c);
	check_streaming(in, 1 << 20);

	/* A line that ends inside a streamed array is rejected there; the next line decodes. */
	in = "{\"a\":1}\n[{\"b\":2},{\"c\":\n{\"d\":4}\n";
	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 4, "got %zu", c.n);
	expect_record(&c, 1, "{\"b\":2}", 2, 1);
	cr_expect_eq(c.v[2].reject, 1);
	cr_expect_eq(c.v[2].pos.line, 2);
	cr_expect_eq(c.v[2].pos.index, 2);
	cr_expect_str_eq(c.v[2].bytes, "{\"c\":");
	expect_record(&c, 3, "{\"d\":4}", 3, 3);
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, broken_first_line_of_ndjson_does_not_swallow_the_rest)
{
	/* The first line never closes; the next starts with '{': NDJSON with a bad first line. */
	const char *in = "{\"a\":[1,2}\n{\"b\":2}\n{\"c\":3}\n";
	struct coll c = { 0 };
	char *big;
	size_t n = 0;

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 3, "got %zu", c.n);
	cr_expect_eq(c.v[0].reject, 1);
	cr_expect_str_eq(c.v[0].bytes, "{\"a\":[1,2}");
	expect_record(&c, 1, "{\"b\":2}", 2, 1);
	expect_record(&c, 2, "{\"c\":3}", 3, 2);
	coll_free(&c);
	check_streaming(in, 1 << 20);

	/* Same when the next lines are not objects: found when the first value outgrows the cap. */
	big = malloc(4096);
	n += (size_t)snprintf(big + n, 4096 - n, "{\"a\":[1\n");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(big + n, 4096 - n, "  \"k%d\": %d,\n", i, i);
	split_run(big, n, 200, 0, &c);
	cr_assert_eq(c.n, 41, "got %zu", c.n);
	cr_expect_eq(c.v[0].reject, 1);
	cr_expect_str_eq(c.v[0].bytes, "{\"a\":[1");
	for (int i = 0; i < 40; i++)
		cr_expect_eq(c.v[1 + i].pos.line, (uint64_t)i + 2);
	coll_free(&c);
	free(big);

	/* A pretty-printed first value is not mistaken for one. */
	in = "{\n  \"a\": [\n    1\n  ]\n}\n{\"b\":\n 2}";
	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 2, "got %zu", c.n);
	expect_record(&c, 0, "{\n  \"a\": [\n    1\n  ]\n}", 1, 0);
	expect_record(&c, 1, "{\"b\":\n 2}", 6, 1);
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, export_lines_crlf_and_no_final_newline)
{
	const char *in = "\xef\xbb\xbf" "2024-01-01T00:00:00.000Z hello world\r\n"
			 "2024-01-01T00:00:01.000Z {\"json\": \"in a message\"}\r\n"
			 "2024-01-01T00:00:02.000Z last";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 3);
	expect_record(&c, 0, "2024-01-01T00:00:00.000Z hello world", 1, 0);
	cr_expect_eq(c.v[0].pos.offset, 3);
	expect_record(&c, 1, "2024-01-01T00:00:01.000Z {\"json\": \"in a message\"}", 2, 1);
	expect_record(&c, 2, "2024-01-01T00:00:02.000Z last", 3, 2);
	coll_free(&c);
	check_streaming(in, 1 << 20);
}

Test(ingest_decode, truncated_wrapper_and_value_at_end_of_input)
{
	const char *in = "{\"Records\":[{\"a\":1},{\"b\":";
	struct coll c = { 0 };

	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 2);
	expect_record(&c, 0, "{\"a\":1}", 1, 0);
	/* The cut element goes to the decoder, which says how it is cut. */
	expect_record(&c, 1, "{\"b\":", 1, 1);
	coll_free(&c);

	in = "[{\"a\":1},";
	split_run(in, strlen(in), 1 << 20, 0, &c);
	cr_assert_eq(c.n, 2);
	cr_expect_eq(c.v[1].reject, 1);
	cr_expect(strstr(c.v[1].reason, "ends inside a JSON array"));
	coll_free(&c);
}

/* Random objects with strings full of quotes, backslashes and brackets, joined by random
 * separators: the splitter must find exactly the generated values, however it is fed. */
Test(ingest_decode, random_values_match_known_boundaries)
{
	static const char alphabet[] = "ab{}[]\\\" :,x";
	const size_t nvals = 3000;
	size_t cap = nvals * 400, n = 0;
	char *in = malloc(cap);
	size_t *start = malloc(nvals * sizeof *start), *len = malloc(nvals * sizeof *len);
	uint64_t *line = malloc(nvals * sizeof *line), cur_line = 1;
	uint32_t x = 7;
	struct coll one = { 0 }, pieces = { 0 };

#define RND() (x = x * 1103515245u + 12345u, (x >> 16) & 0x7fff)
	for (size_t v = 0; v < nvals; v++) {
		static const char *const seps[] = { "\n", "", " ", "\r\n", "\n\n", "\t" };
		/* The second value shares the first one's line: values are found by structure. */
		const char *sep = v > 1 ? seps[RND() % 6] : v ? " " : "";
		for (const char *s = sep; *s; s++)
			cur_line += *s == '\n';
		n += (size_t)snprintf(in + n, cap - n, "%s", sep);
		start[v] = n;
		line[v] = cur_line;
		in[n++] = '{';
		int members = 1 + (int)(RND() % 4);
		for (int m = 0; m < members; m++) {
			n += (size_t)snprintf(in + n, cap - n, "%s\"k%d\":", m ? "," : "", m);
			if (RND() % 3 == 0) {
				unsigned r1 = RND(), r2 = RND();
				n += (size_t)snprintf(in + n, cap - n, "[{\"z\":[%u]},%u]", r1, r2);
				continue;
			}
			in[n++] = '"';
			int slen = (int)(RND() % 90);
			for (int i = 0; i < slen; i++) {
				char ch = alphabet[RND() % (sizeof alphabet - 1)];
				if (ch == '\\' || ch == '"')
					in[n++] = '\\';
				in[n++] = ch;
			}
			in[n++] = '"';
		}
		in[n++] = '}';
		len[v] = n - start[v];
	}
	in[n] = '\0';
#undef RND
	split_run(in, n, 1 << 20, 0, &one);
	cr_assert_eq(one.n, nvals, "got %zu values", one.n);
	for (size_t v = 0; v < nvals; v++) {
		cr_assert_eq(one.v[v].reject, 0, "#%zu: %s", v, one.v[v].reason);
		cr_assert_eq(one.v[v].pos.offset, start[v], "#%zu offset", v);
		cr_assert_eq(one.v[v].len, len[v], "#%zu length", v);
		cr_assert_eq(one.v[v].pos.line, line[v], "#%zu line", v);
	}
	pieces.keep_bytes = 1;
	split_run(in, n, 1 << 20, 777, &pieces);
	same_outputs(&one, &pieces, "777-byte pieces");
	coll_free(&one);
	coll_free(&pieces);
	free(in);
	free(start);
	free(len);
	free(line);
}

/* ---- dispatcher and tw_ingest_buffer ------------------------------------------------------------ */

#define MAX_SEEN 256

/* What a sink saw. */
struct seen {
	size_t nev;                /* events */
	char ids[MAX_SEEN][48];    /* eventID (or message) of the first MAX_SEEN events */
	enum tw_kind kind[MAX_SEEN]; /* their kinds */
	uint64_t line[MAX_SEEN];   /* src_line */
	uint64_t index[MAX_SEEN];  /* src_index */
	size_t nbatch;             /* on_batch calls */
	size_t max_batch;          /* largest batch */
	size_t nrej;               /* rejects */
	struct {
		char reason[200];      /* reason */
		uint64_t line, index;  /* position */
		char source[64];       /* source name */
	} rej[16];
	int stop_after;            /* on_batch returns TW_ESTOP on this call (1-based; 0 never) */
	size_t ndigest;            /* on_digest calls */
};

static enum tw_rc seen_batch(void *ctx, struct tw_batch *b, struct tw_err *err)
{
	struct seen *s = ctx;
	s->nbatch++;
	if (b->n > s->max_batch)
		s->max_batch = b->n;
	for (size_t i = 0; i < b->n; i++, s->nev++) {
		const struct tw_event *ev = &b->ev[i];
		struct tw_str id = ev->kind == TW_KIND_CWLOG ? ev->f[TW_F_MESSAGE] : ev->f[TW_F_EVENT_ID];
		if (s->nev >= MAX_SEEN)
			continue;
		snprintf(s->ids[s->nev], sizeof s->ids[0], "%.*s", (int)id.n, id.p);
		s->kind[s->nev] = ev->kind;
		s->line[s->nev] = ev->src_line;
		s->index[s->nev] = ev->src_index;
	}
	if (s->stop_after && (int)s->nbatch == s->stop_after)
		return tw_err_set(err, TW_ESTOP, "test sink stops");
	return TW_OK;
}

static enum tw_rc seen_reject(void *ctx, const struct tw_reject *r, struct tw_err *err)
{
	struct seen *s = ctx;
	(void)err;
	if (s->nrej < 16) {
		snprintf(s->rej[s->nrej].reason, sizeof s->rej[0].reason, "%s", r->reason);
		snprintf(s->rej[s->nrej].source, sizeof s->rej[0].source, "%s", r->source);
		s->rej[s->nrej].line = r->line;
		s->rej[s->nrej].index = r->index;
	}
	s->nrej++;
	return TW_OK;
}

static void seen_digest(void *ctx, const char *source, struct tw_str bytes)
{
	struct seen *s = ctx;
	(void)source;
	cr_assert(bytes.n > 10);
	s->ndigest++;
}

static enum tw_rc run_buffer(const char *p, size_t n, struct tw_ingest_limits *lim, struct seen *s,
			     struct tw_ingest_stats *st)
{
	struct tw_sink sink = { seen_batch, seen_reject, s };
	struct tw_ingest_hooks hooks = { seen_digest, NULL, s };
	struct tw_err err;
	struct tw_ingest_limits def;
	if (!lim) {
		tw_ingest_limits_default(&def);
		lim = &def;
	}
	memset(st, 0, sizeof *st);
	return tw_ingest_buffer("test/0@1", p, n, lim, &sink, &hooks, st, &err);
}

/* A CloudTrail record with eventID id (as tw_ct_decode wants: version, time, source, name). */
static int ct_record(char *out, size_t cap, const char *id)
{
	return snprintf(out, cap,
			"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":"
			"\"arn:aws:iam::123456789012:user/alice\",\"accountId\":\"123456789012\","
			"\"userName\":\"alice\"},\"eventTime\":\"2024-03-01T12:00:00Z\",\"eventSource\":"
			"\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"awsRegion\":\"us-east-1\","
			"\"sourceIPAddress\":\"10.0.0.1\",\"userAgent\":\"ua\",\"requestParameters\":"
			"{\"bucketName\":\"b\",\"key\":\"k\"},\"eventID\":\"%s\",\"readOnly\":true,"
			"\"eventType\":\"AwsApiCall\",\"recipientAccountId\":\"123456789012\"}", id);
}

static char *b64enc(const unsigned char *p, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = malloc(4 * (n / 3 + 1) + 1), *q = o;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*q++ = t[v >> 18 & 63];
		*q++ = t[v >> 12 & 63];
		*q++ = i + 1 < n ? t[v >> 6 & 63] : '=';
		*q++ = i + 2 < n ? t[v & 63] : '=';
	}
	*q = '\0';
	return o;
}

Test(ingest_decode, ndjson_events_with_a_bad_line_in_the_middle)
{
	char in[8192], rec[1024];
	size_t n = 0;
	struct seen s = { 0 };
	struct tw_ingest_stats st;

	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof id, "id-%d", i);
		ct_record(rec, sizeof rec, id);
		n += (size_t)snprintf(in + n, sizeof in - n, "%s\n%s", rec, i == 2 ? "{\"eventVersion\":\"1.08\",\n" : "");
	}
	cr_assert_eq(run_buffer(in, n, NULL, &s, &st), TW_OK);
	cr_assert_eq(s.nev, 5);
	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof id, "id-%d", i);
		cr_expect_str_eq(s.ids[i], id);
		cr_expect_eq(s.kind[i], TW_KIND_CLOUDTRAIL);
		cr_expect_eq(s.line[i], (uint64_t)(i < 3 ? i + 1 : i + 2), "event %d line %llu", i,
			     (unsigned long long)s.line[i]);
		cr_expect_eq(s.index[i], (uint64_t)(i < 3 ? i : i + 1));
	}
	cr_assert_eq(s.nrej, 1);
	cr_expect_eq(s.rej[0].line, 4);
	cr_expect_eq(s.rej[0].index, 3);
	cr_expect_str_eq(s.rej[0].source, "test/0@1");
	cr_expect_eq(st.events[TW_KIND_CLOUDTRAIL], 5);
	cr_expect_eq(st.quarantined, 1);
	cr_expect_eq(st.records, 6);
	cr_expect_eq(st.bytes_in, n);
}

Test(ingest_decode, gzip_zlib_and_base64_blobs_give_the_same_events)
{
	char in[4096], rec[1024];
	size_t n = 0, zn;
	struct tw_ingest_stats st;

	for (int i = 0; i < 3; i++) {
		char id[16];
		snprintf(id, sizeof id, "z-%d", i);
		ct_record(rec, sizeof rec, id);
		n += (size_t)snprintf(in + n, sizeof in - n, "%s\n", rec);
	}
	for (int form = 0; form < 3; form++) {
		struct seen s = { 0 };
		unsigned char *z = tw_test_deflate(in, n, form == 1 ? 15 : 31, &zn);
		char *b = form == 2 ? b64enc(z, zn) : NULL;
		cr_assert_eq(run_buffer(b ? b : (char *)z, b ? strlen(b) : zn, NULL, &s, &st), TW_OK);
		cr_assert_eq(s.nev, 3, "form %d: %zu events, %zu rejects (%s)", form, s.nev, s.nrej, s.rej[0].reason);
		cr_expect_str_eq(s.ids[2], "z-2");
		cr_expect_eq(s.line[2], 3);
		cr_expect_eq(st.bytes_decoded, n);
		free(z);
		free(b);
	}
}

Test(ingest_decode, digest_skip_array_and_text_lines_are_routed)
{
	char rec1[1024], rec2[1024], in[8192];
	struct seen s = { 0 };
	struct tw_ingest_stats st;
	int n;

	ct_record(rec1, sizeof rec1, "a1");
	ct_record(rec2, sizeof rec2, "a2");
	n = snprintf(in, sizeof in,
		     "{\"awsAccountId\":\"123456789012\",\"digestStartTime\":\"2024-03-01T11:00:00Z\","
		     "\"digestEndTime\":\"2024-03-01T12:00:00Z\",\"digestS3Bucket\":\"b\",\"digestS3Object\":\"o\","
		     "\"digestPublicKeyFingerprint\":\"f\",\"digestSignatureAlgorithm\":\"SHA256withRSA\","
		     "\"newestEventTime\":null,\"oldestEventTime\":null,\"previousDigestS3Bucket\":null,"
		     "\"previousDigestS3Object\":null,\"previousDigestHashValue\":null,"
		     "\"previousDigestHashAlgorithm\":null,\"previousDigestSignature\":null,\"logFiles\":[]}\n"
		     "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"eventName\":"
		     "\"ObjectCreated:Put\",\"eventTime\":\"2024-03-01T12:00:00.000Z\",\"s3\":{}}]}\n"
		     "[%s, %s]\n"
		     "this is not json\n"
		     "{\"unrelated\": true}\n"
		     "\"a JSON string\"\n"
		     "-12.5e3\n",
		     rec1, rec2);
	cr_assert_eq(run_buffer(in, (size_t)n, NULL, &s, &st), TW_OK);
	cr_expect_eq(s.ndigest, 1);
	cr_expect_eq(st.digests, 1);
	cr_assert_eq(s.nev, 2);
	cr_expect_str_eq(s.ids[0], "a1");
	cr_expect_str_eq(s.ids[1], "a2");
	cr_expect_eq(s.line[1], 3);
	cr_assert_eq(s.nrej, 1);
	cr_expect_str_eq(s.rej[0].reason, "not JSON and not a CloudWatch Logs export line");
	cr_expect_eq(s.rej[0].line, 4);
	cr_expect_eq(st.skipped, 4, "S3 notification, the unrelated object, a string, a number: %llu",
		     (unsigned long long)st.skipped);
}

Test(ingest_decode, records_member_after_other_members_decodes_elements)
{
	char rec[1024], in[4096];
	struct seen s = { 0 };
	struct tw_ingest_stats st;
	int n;

	ct_record(rec, sizeof rec, "late");
	n = snprintf(in, sizeof in, "{\"note\":\"x\",\"Records\":[%s,%s]}", rec, rec);
	cr_assert_eq(run_buffer(in, (size_t)n, NULL, &s, &st), TW_OK);
	cr_assert_eq(s.nev, 2);
	cr_expect_str_eq(s.ids[1], "late");
}

Test(ingest_decode, kinesis_event_of_cloudwatch_payloads)
{
	const char *payload = "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"g\","
			      "\"logStream\":\"s\",\"subscriptionFilters\":[\"f\"],\"logEvents\":["
			      "{\"id\":\"1\",\"timestamp\":1700000000000,\"message\":\"hello\"},"
			      "{\"id\":\"2\",\"timestamp\":1700000000001,\"message\":\"world\"}]}";
	size_t zn;
	unsigned char *z = tw_test_deflate(payload, strlen(payload), 31, &zn);
	char *b = b64enc(z, zn);
	char *in = malloc(2 * strlen(b) + 512);
	struct seen s = { 0 };
	struct tw_ingest_stats st;
	int n;

	n = sprintf(in, "{\"Records\":[{\"kinesis\":{\"data\":\"%s\"},\"eventSource\":\"aws:kinesis\"},"
		    "{\"kinesis\":{\"data\":\"%s\"},\"eventSource\":\"aws:kinesis\"}]}", b, b);
	cr_assert_eq(run_buffer(in, (size_t)n, NULL, &s, &st), TW_OK);
	cr_assert_eq(s.nev, 4, "%zu events, %zu rejects: %s", s.nev, s.nrej, s.rej[0].reason);
	cr_expect_eq(s.kind[0], TW_KIND_CWLOG);
	cr_expect_str_eq(s.ids[0], "hello");
	cr_expect_str_eq(s.ids[3], "world");
	/* Records inside a record share its index. */
	cr_expect_eq(s.index[0], 0);
	cr_expect_eq(s.index[1], 0);
	cr_expect_eq(s.index[2], 1);
	free(in);
	free(b);
	free(z);
}

Test(ingest_decode, batches_hold_at_most_batch_events_and_sink_can_stop)
{
	char in[16384], rec[1024];
	size_t n = 0;
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct seen s = { 0 };

	for (int i = 0; i < 9; i++) {
		char id[16];
		snprintf(id, sizeof id, "b-%d", i);
		ct_record(rec, sizeof rec, id);
		n += (size_t)snprintf(in + n, sizeof in - n, "%s\n", rec);
	}
	tw_ingest_limits_default(&lim);
	lim.batch_events = 2;
	cr_assert_eq(run_buffer(in, n, &lim, &s, &st), TW_OK);
	cr_expect_eq(s.nev, 9);
	cr_expect_eq(s.nbatch, 5);
	cr_expect_eq(s.max_batch, 2);
	cr_expect_str_eq(s.ids[8], "b-8");

	memset(&s, 0, sizeof s);
	s.stop_after = 2;
	cr_assert_eq(run_buffer(in, n, &lim, &s, &st), TW_ESTOP);
	cr_expect_eq(s.nbatch, 2);
	cr_expect_eq(s.nev, 4);
}

Test(ingest_decode, nested_arrays_and_empty_input)
{
	struct seen s = { 0 };
	struct tw_ingest_stats st;
	char in[256];
	size_t n = 0;

	cr_assert_eq(run_buffer("", 0, NULL, &s, &st), TW_OK);
	cr_expect_eq(s.nev + s.nrej, 0);
	for (int i = 0; i < 20; i++)
		in[n++] = '[';
	for (int i = 0; i < 20; i++)
		in[n++] = ']';
	cr_assert_eq(run_buffer(in, n, NULL, &s, &st), TW_OK);
	cr_expect_eq(s.nrej, 1);
	cr_expect(strstr(s.rej[0].reason, "nested"), "%s", s.rej[0].reason);
}

/* Counts events whose raw bytes still parse as the record they were decoded from. */
static enum tw_rc raw_check_batch(void *ctx, struct tw_batch *b, struct tw_err *err)
{
	size_t *good = ctx;
	(void)err;
	for (size_t i = 0; i < b->n; i++) {
		const struct tw_event *ev = &b->ev[i];
		if (ev->raw.n > 20 && ev->raw.p[0] == '{' && ev->raw.p[ev->raw.n - 1] == '}' &&
		    tw_json_validate(ev->raw.p, ev->raw.n, 64, NULL) == TW_OK)
			(*good)++;
	}
	return TW_OK;
}

/* Regression: a gzip'ed blob given to tw_ingest_buffer was inflated into a buffer that was freed
 * before the last batch was delivered, so those events pointed into freed memory (found by ASan on
 * a gzip'ed CloudWatch payload from Kafka). The blob here inflates past malloc's mmap threshold, so
 * the freed buffer is unmapped and a read of it crashes even without ASan. */
Test(ingest_decode, gzip_blob_events_stay_valid_until_delivered)
{
	enum { N = 1000 };
	size_t cap = N * 800, len = 0, zn, good = 0;
	char *text = malloc(cap);
	unsigned char *z;
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_sink sink = { raw_check_batch, NULL, &good };
	struct tw_err err;

	cr_assert(text);
	for (int i = 0; i < N; i++) {
		char id[40];
		snprintf(id, sizeof id, "00000000-0000-0000-0000-%012d", i);
		len += (size_t)ct_record(text + len, cap - len, id);
		text[len++] = '\n';
	}
	cr_assert_gt(len, 200000, "the inflated blob must be large enough to be mmap'ed");
	z = tw_test_deflate(text, len, 31, &zn);
	tw_ingest_limits_default(&lim);
	memset(&st, 0, sizeof st);
	cr_assert_eq(tw_ingest_buffer("test/gz", z, zn, &lim, &sink, NULL, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.events[TW_KIND_CLOUDTRAIL], N);
	cr_assert_eq(good, N, "%zu of %d events had intact raw bytes at delivery", good, N);
	free(z);
	free(text);
}
