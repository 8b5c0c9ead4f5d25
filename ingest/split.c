/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/split.c: the splitter of ingest/split.h. Touches every byte of every input: NDJSON lines
 * are found with memchr, and the inside of other JSON values is scanned 64 bytes at a time with
 * bit masks (AVX2 when the CPU has it, else SSE2, else plain C). Finds where records start and
 * end; never judges whether they are valid JSON (decoders do).
 *
 * Shapes, at the top level of the stream:
 *   {...}              one record (NDJSON lines, concatenated values, pretty-printed values)
 *   {"Records":[...]}  a wrapper whose elements are records, emitted one at a time as they
 *                      complete (its other members are ignored); found by its first member, or,
 *                      when the object outgrows max_record, by reading its members in order
 *   [...]              an array whose elements are records
 *   anything else      a text line (CloudWatch Logs export line), up to the newline
 *
 * Invariants:
 *   1. Memory: the caller keeps bytes from tw_split_keep() on; that is at most one candidate, and
 *      a candidate longer than max_record is rejected at once and skipped, not kept.
 *   2. Positions are exact: every '\n' passed is counted, inside values too.
 *   3. Lines mode: when the first top-level value ends on its own line (a newline follows before
 *      anything else), the stream is taken for NDJSON: an object line is one candidate found with
 *      memchr (the fast path: the decoder validates it, so two values on one line make one bad
 *      record), and a newline inside a streamed array means a broken line, rejected, with
 *      scanning resumed on the next line. If the first value spans lines, or another value follows
 *      it on its line, values are found by their structure for the whole stream.
 *   4. Every call makes progress or asks for more bytes; nothing loops on bad input.
 */
#include "ingest/split.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
	ST_TOP,       /* between top-level values */
	ST_VALUE,     /* inside a top-level object: the candidate */
	ST_TEXT,      /* inside a text line: the candidate */
	ST_WRAP,      /* inside a streamed array, between elements */
	ST_ELEM,      /* inside an object or array element of a streamed array: the candidate */
	ST_SCALAR,    /* inside a scalar element of a streamed array: the candidate */
	ST_SKIP,      /* skipping a value (over the cap, or a wrapper's other members) to `target` */
	ST_SKIP_LINE, /* skipping to the next newline */
};

enum { SCAN_MORE, SCAN_DONE, SCAN_NL };

/* ---- the 64-byte block scanner ---------------------------------------------------------- */

/* Bit i of each mask is byte i of the block. */
struct masks {
	uint64_t q;  /* '"' */
	uint64_t bs; /* '\\' */
	uint64_t op; /* '{' or '[' */
	uint64_t cl; /* '}' or ']' */
	uint64_t nl; /* '\n' */
};

#if defined(__SSE2__)
/* 16 bytes -> five 16-bit masks. '[' | 0x20 == '{' and ']' | 0x20 == '}' (no other byte maps
 * there), so two compares find the four brackets. */
#define CLASSIFY16(k)                                                                           \
	do {                                                                                    \
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * (k)));     \
		__m128i y = _mm_or_si128(x, v20);                                               \
		q |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq)) << (16 * (k)); \
		bs |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vb)) << (16 * (k)); \
		nl |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vn)) << (16 * (k)); \
		op |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(y, vo)) << (16 * (k)); \
		cl |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(y, vc)) << (16 * (k)); \
	} while (0)

static inline void classify_base(const char *p, struct masks *m)
{
	const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\'), vn = _mm_set1_epi8('\n');
	const __m128i v20 = _mm_set1_epi8(0x20), vo = _mm_set1_epi8(0x7b), vc = _mm_set1_epi8(0x7d);
	uint64_t q = 0, bs = 0, op = 0, cl = 0, nl = 0;

	CLASSIFY16(0);
	CLASSIFY16(1);
	CLASSIFY16(2);
	CLASSIFY16(3);
	m->q = q;
	m->bs = bs;
	m->op = op;
	m->cl = cl;
	m->nl = nl;
}
#else
static inline void classify_base(const char *p, struct masks *m)
{
	memset(m, 0, sizeof *m);
	for (int i = 0; i < 64; i++) {
		unsigned char c = (unsigned char)p[i];
		uint64_t bit = (uint64_t)1 << i;
		if (c == '"')
			m->q |= bit;
		else if (c == '\\')
			m->bs |= bit;
		else if (c == '\n')
			m->nl |= bit;
		else if ((c | 0x20) == 0x7b)
			m->op |= bit;
		else if ((c | 0x20) == 0x7d)
			m->cl |= bit;
	}
}
#endif

/* Bit i of the result is the xor of bits 0..i of x. */
static inline uint64_t prefix_xor(uint64_t x)
{
	x ^= x << 1;
	x ^= x << 2;
	x ^= x << 4;
	x ^= x << 8;
	x ^= x << 16;
	x ^= x << 32;
	return x;
}

static inline unsigned count_bits(uint64_t x)
{
	unsigned n = 0;
	while (x) {
		x &= x - 1;
		n++;
	}
	return n;
}

/* The scanner, instantiated once per instruction set (below):
 * scans buf[i..to) (stream offsets: buf holds [base, ...)) from the state in s (depth, in_str,
 * esc) until the bracket that brings the depth back to target (SCAN_DONE, *end just after it),
 * a newline when stop_nl (SCAN_NL, *end on it), or `to` (SCAN_MORE). Counts newlines passed into
 * s->line and *nls. Requires depth > target, or the first structural byte to be an opener. */
#define DEFINE_SCAN(NAME, CLASSIFY, POPCOUNT, ATTR)                                                \
	ATTR static int NAME(struct tw_split *s, const char *buf, uint64_t base, uint64_t i, uint64_t to, \
			uint64_t target, int stop_nl, uint64_t *end, uint64_t *nls)                  \
	{                                                                                          \
		uint64_t depth = s->depth, lines = 0;                                              \
		int in_str = s->in_str, esc = s->esc;                                              \
		char pad[64];                                                                      \
                                                                                                   \
		while (i < to) {                                                                   \
			size_t len = to - i < 64 ? (size_t)(to - i) : 64;                          \
			const char *p = buf + (i - base);                                          \
			struct masks m;                                                            \
			uint64_t valid, e = 0, q, str, ev, nl, x;                                  \
			int esc_out = 0, in_out;                                                   \
                                                                                                   \
			if (len < 64) { /* the tail: pad with spaces, which change nothing */      \
				memcpy(pad, p, len);                                               \
				memset(pad + len, ' ', 64 - len);                                  \
				p = pad;                                                           \
				valid = ((uint64_t)1 << len) - 1;                                  \
			} else {                                                                   \
				valid = ~(uint64_t)0;                                              \
			}                                                                          \
			CLASSIFY(p, &m);                                                           \
			/* Escaped bytes: a backslash not itself escaped escapes the next byte. */ \
			if (m.bs | (uint64_t)esc) {                                                \
				uint64_t b = m.bs;                                                 \
				int carry = 0;                                                     \
				if (esc)                                                           \
					e = 1;                                                     \
				while (b) {                                                        \
					unsigned k = (unsigned)__builtin_ctzll(b);                 \
					b &= b - 1;                                                \
					if ((e >> k) & 1)                                          \
						continue;                                          \
					if (k == 63)                                               \
						carry = 1;                                         \
					else                                                       \
						e |= (uint64_t)2 << k;                             \
				}                                                                  \
				esc_out = len == 64 ? carry : (int)((e >> len) & 1);               \
			}                                                                          \
			/* Inside strings: between an unescaped quote and the next. */             \
			q = m.q & ~e & valid;                                                      \
			str = prefix_xor(q);                                                       \
			if (in_str)                                                                \
				str = ~str;                                                        \
			in_out = (int)((str >> (len - 1)) & 1);                                    \
			ev = (m.op | m.cl) & ~str & valid;                                         \
			nl = m.nl & valid;                                                         \
			x = ev | (stop_nl ? nl : 0);                                               \
			while (x) {                                                                \
				unsigned k = (unsigned)__builtin_ctzll(x);                         \
				uint64_t bit = (uint64_t)1 << k;                                   \
				x &= x - 1;                                                        \
				if (nl & bit) { /* only when stop_nl; the state is exact, */       \
					lines += POPCOUNT(nl & (bit - 1)); /* so one may go on */ \
					s->line += lines;                                          \
					*nls = lines;                                              \
					s->depth = depth;                                          \
					s->in_str = (int)((str >> k) & 1);                         \
					s->esc = (int)((e >> k) & 1);                              \
					*end = i + k;                                              \
					return SCAN_NL;                                            \
				}                                                                  \
				if (m.op & bit) {                                                  \
					depth++;                                                   \
				} else if (--depth == target) {                                    \
					lines += POPCOUNT(nl & (bit - 1));                         \
					s->line += lines;                                          \
					*nls = lines;                                              \
					s->depth = depth;                                          \
					s->in_str = 0;                                             \
					s->esc = 0;                                                \
					*end = i + k + 1;                                          \
					return SCAN_DONE;                                          \
				}                                                                  \
			}                                                                          \
			if (nl)                                                                    \
				lines += POPCOUNT(nl);                                             \
			in_str = in_out;                                                           \
			esc = esc_out;                                                             \
			i += len;                                                                  \
		}                                                                                  \
		s->line += lines;                                                                  \
		*nls = lines;                                                                      \
		s->depth = depth;                                                                  \
		s->in_str = in_str;                                                                \
		s->esc = esc;                                                                      \
		*end = to;                                                                         \
		return SCAN_MORE;                                                                  \
	}

DEFINE_SCAN(scan_base, classify_base, count_bits, )

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with AVX2 (two 32-byte compares per class) where the CPU has it. */
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,popcnt,bmi")))
AVX2 static inline void classify_avx2(const char *p, struct masks *m)
{
	const __m256i vq = _mm256_set1_epi8('"'), vb = _mm256_set1_epi8('\\');
	const __m256i vn = _mm256_set1_epi8('\n'), v20 = _mm256_set1_epi8(0x20);
	const __m256i vo = _mm256_set1_epi8(0x7b), vc = _mm256_set1_epi8(0x7d);
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
	__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
	__m256i ay = _mm256_or_si256(a, v20), by = _mm256_or_si256(b, v20);
#define MASK64(x, y, v) \
	((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, v)) | \
	 (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(y, v)) << 32)
	m->q = MASK64(a, b, vq);
	m->bs = MASK64(a, b, vb);
	m->nl = MASK64(a, b, vn);
	m->op = MASK64(ay, by, vo);
	m->cl = MASK64(ay, by, vc);
#undef MASK64
}

AVX2 static inline unsigned popcount64(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}

DEFINE_SCAN(scan_avx2, classify_avx2, popcount64, AVX2)

static int scan(struct tw_split *s, const char *buf, uint64_t base, uint64_t i, uint64_t to,
		uint64_t target, int stop_nl, uint64_t *end, uint64_t *nls)
{
	if (s->avx2)
		return scan_avx2(s, buf, base, i, to, target, stop_nl, end, nls);
	return scan_base(s, buf, base, i, to, target, stop_nl, end, nls);
}

static int have_avx2(void)
{
	return __builtin_cpu_supports("avx2");
}
#else
#define scan scan_base
static int have_avx2(void)
{
	return 0;
}
#endif

/* ---- helpers ------------------------------------------------------------------------------ */

#define AT(off) (buf[(off) - base])

static uint64_t count_nl(const char *p, size_t n)
{
	uint64_t c = 0;
	const char *end = p + n;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

static struct tw_pos pos_at(struct tw_split *s, uint64_t off, uint64_t line)
{
	struct tw_pos pos;
	pos.line = s->line_based ? line : 0;
	pos.index = s->index++;
	pos.offset = s->offset0 + off;
	return pos;
}

static enum tw_rc emit_record(struct tw_split *s, const char *buf, uint64_t base, uint64_t start,
			      uint64_t end, tw_split_emit_fn emit, void *ctx)
{
	struct tw_split_out o;
	o.reject = 0;
	o.start = start;
	o.len = (size_t)(end - start);
	o.p = &AT(start);
	o.pos = pos_at(s, start, s->cand_line);
	o.reason = NULL;
	return emit(ctx, &o);
}

/* A reject of what starts at `start` on `line`; passes the bytes [start, avail) still in the
 * buffer, at most TW_SPLIT_REJECT_BYTES. */
static enum tw_rc emit_reject(struct tw_split *s, const char *buf, uint64_t base, uint64_t start,
			      uint64_t line, uint64_t avail, const char *reason, tw_split_emit_fn emit,
			      void *ctx)
{
	struct tw_split_out o;
	o.reject = 1;
	o.start = start;
	o.len = 0;
	o.p = NULL;
	if (avail > start && start >= base) {
		uint64_t n = avail - start;
		o.len = n > TW_SPLIT_REJECT_BYTES ? TW_SPLIT_REJECT_BYTES : (size_t)n;
		o.p = &AT(start);
	}
	o.pos = pos_at(s, start, line);
	o.reason = reason;
	return emit(ctx, &o);
}

/* A top-level value ended. The first one decides the lines mode (invariant 3): values may span
 * lines if it did; one value per line if a newline follows it before the next value. */
static void top_done(struct tw_split *s)
{
	if (s->lines_mode < 0) {
		if (s->top_nl)
			s->lines_mode = 0;
		else
			s->first_done = 1;
	}
	s->first_nl = 0;
	s->state = ST_TOP;
}

static void saw_newlines(struct tw_split *s, uint64_t nls)
{
	if (nls) {
		s->top_nl = 1;
		if (s->lines_mode < 0 && !(s->state == ST_VALUE && s->first_nl))
			s->lines_mode = 0;
	}
}

static inline int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* At the '{' at offset i: 1 if the object starts with "Records" : [ (*after = just past the
 * '['), 0 if not, -1 if more bytes are needed to tell. */
static int match_records(const char *buf, uint64_t base, uint64_t i, uint64_t end, int eof,
			 uint64_t *after)
{
	static const char key[] = "\"Records\"";
	uint64_t j, cap = i + 4096;
	int stage = 0;
	size_t k = 0;

	for (j = i + 1;; j++) {
		char c;
		if (j >= end)
			return eof ? 0 : -1;
		if (j >= cap)
			return 0;
		c = AT(j);
		switch (stage) {
		case 0:
		case 2:
		case 3:
			if (is_ws(c))
				continue;
			if (stage == 0 && c == '"') {
				stage = 1;
				k = 1;
			} else if (stage == 2 && c == ':') {
				stage = 3;
			} else if (stage == 3 && c == '[') {
				*after = j + 1;
				return 1;
			} else {
				return 0;
			}
			break;
		default:
			if (c != key[k])
				return 0;
			if (++k == sizeof key - 1)
				stage = 2;
			break;
		}
	}
}

/* The object at s->cand outgrew the cap: if one of its members (not the first) is
 * "Records": [ , returns 1 and the offset of the first byte after the '['. */
static int find_records_member(struct tw_split *s, const char *buf, uint64_t base, uint64_t avail,
			       uint64_t *after)
{
	struct tw_json j;
	struct tw_str key;
	int r;

	tw_json_init(&j, &AT(s->cand), (size_t)(avail - s->cand), 512);
	if (!tw_json_obj_begin(&j))
		return 0;
	while ((r = tw_json_obj_next(&j, &key)) == 1) {
		if (tw_str_eq(key, "Records") && tw_json_peek(&j) == TW_JSON_ARRAY) {
			if (!tw_json_arr_begin(&j))
				return 0;
			*after = s->cand + tw_json_offset(&j);
			return 1;
		}
		if (!tw_json_skip(&j, NULL))
			return 0;
	}
	return 0;
}

/* The first value of the stream has a newline at s->pos before its end. 1 if it is a broken
 * NDJSON line (the next line starts with '{', which a pretty-printer never puts at the start of a
 * line inside an object); 0 if it looks pretty-printed (s->first_nl notes the newline, the value
 * goes on); -1 if more bytes are needed to tell. */
static int first_line_breaks(struct tw_split *s, const char *buf, uint64_t base, uint64_t end, int eof)
{
	if (s->pos + 1 >= end && !eof)
		return -1;
	if (s->pos + 1 < end && AT(s->pos + 1) == '{')
		return 1;
	s->first_nl = s->pos;
	return 0;
}

/* Enters the Records array of the object at s->cand; after = just past its '['. */
static void enter_records(struct tw_split *s, const char *buf, uint64_t base, uint64_t after)
{
	uint64_t nls = count_nl(&AT(s->cand), (size_t)(after - s->cand));
	s->line = s->cand_line + nls;
	s->top_nl = 0;
	saw_newlines(s, nls);
	s->depth = 2;
	s->wrap_depth = 2;
	s->wrap_obj = 1;
	s->in_str = s->esc = 0;
	s->pos = after;
	s->state = ST_WRAP;
}

/* ---- the state machine ------------------------------------------------------------------ */

void tw_split_init(struct tw_split *s, size_t max_record, uint64_t line0, uint64_t index0,
		   uint64_t offset0)
{
	memset(s, 0, sizeof *s);
	s->max_record = max_record;
	s->line = line0;
	s->line_based = line0 != 0;
	s->index = index0;
	s->offset0 = offset0;
	s->state = ST_TOP;
	s->lines_mode = -1;
	s->avx2 = have_avx2();
}

uint64_t tw_split_keep(const struct tw_split *s)
{
	switch (s->state) {
	case ST_VALUE:
	case ST_TEXT:
	case ST_ELEM:
	case ST_SCALAR:
		return s->cand;
	default:
		return s->pos;
	}
}

int tw_split_idle(const struct tw_split *s)
{
	return s->state == ST_TOP;
}

/* How far a candidate may be scanned: its max_record bytes plus `extra` (the newline that ends a
 * text line), or UINT64_MAX without a cap. */
static uint64_t cap_end(const struct tw_split *s, uint64_t extra)
{
	return s->max_record ? s->cand + s->max_record + extra : UINT64_MAX;
}

static const char *over_cap(struct tw_split *s)
{
	snprintf(s->reason, sizeof s->reason, "record exceeds %zu bytes", s->max_record);
	return s->reason;
}

enum tw_rc tw_split_feed(struct tw_split *s, const char *buf, size_t n, uint64_t base, int eof,
			 tw_split_emit_fn emit, void *ctx)
{
	const uint64_t end = base + n;
	enum tw_rc rc = TW_OK;

	while (rc == TW_OK) {
		switch (s->state) {
		case ST_TOP: {
			uint64_t i = s->pos;
			char c;
			if (i == 0 && i < end && (unsigned char)AT(0) == 0xef) { /* UTF-8 byte order mark */
				if (end < 3 && !eof)
					return TW_OK;
				if (end >= 3 && (unsigned char)AT(1) == 0xbb && (unsigned char)AT(2) == 0xbf)
					i = 3;
			}
			while (i < end) {
				c = AT(i);
				if (c == '\n') {
					s->line++;
					if (s->lines_mode < 0 && s->first_done)
						s->lines_mode = 1;
				} else if (c != ' ' && c != '\t' && c != '\r') {
					break;
				}
				i++;
			}
			s->pos = i;
			if (i == end)
				return TW_OK;
			c = AT(i);
			if (s->lines_mode < 0 && s->first_done)
				s->lines_mode = 0; /* a second value on the first value's line */
			s->cand = i;
			s->cand_line = s->line;
			s->top_nl = 0;
			s->in_str = s->esc = 0;
			if (c == '{') {
				uint64_t after;
				int r = match_records(buf, base, i, end, eof, &after);
				if (r < 0)
					return TW_OK;
				if (r > 0) {
					enter_records(s, buf, base, after);
				} else {
					/* NDJSON: the line is the record; memchr finds its end and the
					 * decoder validates it. Otherwise scan the value's structure. */
					s->depth = 0;
					s->state = s->lines_mode == 1 ? ST_TEXT : ST_VALUE;
				}
			} else if (c == '[') {
				s->depth = 1;
				s->wrap_depth = 1;
				s->wrap_obj = 0;
				s->pos = i + 1;
				s->state = ST_WRAP;
			} else {
				s->state = ST_TEXT;
			}
			break;
		}
		case ST_VALUE:
		case ST_ELEM: {
			int top = s->state == ST_VALUE;
			/* The first value of the stream stops at its first newline to tell a broken
			 * NDJSON line from a pretty-printed value (first_line_breaks). */
			int first = top && s->lines_mode < 0 && !s->first_nl;
			uint64_t target = top ? 0 : s->wrap_depth, lim = cap_end(s, 0), to, e, nls;
			int r;
			to = end < lim ? end : lim;
			r = scan(s, buf, base, s->pos, to, target, s->lines_mode == 1 || first, &e, &nls);
			if (first && r == SCAN_NL) {
				s->pos = e;
				r = first_line_breaks(s, buf, base, end, eof);
				if (r < 0)
					return TW_OK;
				if (r == 0)
					break; /* pretty-printed: go on scanning the value */
				rc = emit_reject(s, buf, base, s->cand, s->cand_line, e,
						 "line ends inside a JSON value (truncated record or unbalanced brackets)",
						 emit, ctx);
				s->lines_mode = 1;
				s->state = ST_TOP;
				break;
			}
			saw_newlines(s, nls);
			s->pos = e;
			if (r == SCAN_DONE) {
				rc = emit_record(s, buf, base, s->cand, e, emit, ctx);
				if (top)
					top_done(s);
				else
					s->state = ST_WRAP;
				break;
			}
			if (r == SCAN_NL) {
				rc = emit_reject(s, buf, base, s->cand, s->cand_line, e,
						 "line ends inside a JSON value (truncated record or unbalanced brackets)",
						 emit, ctx);
				s->state = ST_TOP;
				break;
			}
			if (to == lim) {
				uint64_t after;
				if (top && find_records_member(s, buf, base, to, &after)) {
					enter_records(s, buf, base, after);
					break;
				}
				if (top && s->lines_mode < 0 && s->first_nl) {
					/* The first value never ends: it was a broken first line of
					 * NDJSON after all. Reject that line, rescan from its end. */
					uint64_t nl = s->first_nl;
					rc = emit_reject(s, buf, base, s->cand, s->cand_line, nl,
							 "line ends inside a JSON value (truncated record or unbalanced brackets)",
							 emit, ctx);
					s->line = s->cand_line;
					s->pos = nl;
					s->first_nl = 0;
					s->lines_mode = 1;
					s->state = ST_TOP;
					break;
				}
				rc = emit_reject(s, buf, base, s->cand, s->cand_line, to, over_cap(s), emit, ctx);
				s->target = target;
				s->then = top ? ST_TOP : ST_WRAP;
				s->state = ST_SKIP;
				break;
			}
			if (!eof)
				return TW_OK;
			/* Cut short by the end of input: the decoder says how. */
			rc = emit_record(s, buf, base, s->cand, end, emit, ctx);
			s->state = ST_TOP;
			return rc;
		}
		case ST_TEXT: {
			uint64_t lim = cap_end(s, 1), to = end < lim ? end : lim, e;
			const char *nl = memchr(&AT(s->pos), '\n', (size_t)(to - s->pos));
			if (nl || eof) {
				e = nl ? base + (uint64_t)(nl - buf) : to;
				if (!nl && to == lim)
					goto text_over;
				s->pos = e;
				if (e > s->cand && AT(e - 1) == '\r')
					e--;
				rc = emit_record(s, buf, base, s->cand, e, emit, ctx);
				top_done(s);
				break;
			}
			s->pos = to;
			if (to != lim)
				return TW_OK;
		text_over:
			s->pos = to;
			if (AT(s->cand) == '{') {
				uint64_t after;
				if (find_records_member(s, buf, base, to, &after)) {
					enter_records(s, buf, base, after);
					break;
				}
			}
			rc = emit_reject(s, buf, base, s->cand, s->cand_line, to - 1, over_cap(s), emit, ctx);
			s->state = ST_SKIP_LINE;
			break;
		}
		case ST_WRAP: {
			uint64_t i = s->pos;
			for (; i < end; i++) {
				char c = AT(i);
				if (c == ' ' || c == '\t' || c == '\r' || c == ',')
					continue;
				if (c == '\n') {
					if (s->lines_mode == 1)
						break;
					s->line++;
					saw_newlines(s, 1);
					continue;
				}
				break;
			}
			s->pos = i;
			if (i == end) {
				if (!eof)
					return TW_OK;
				rc = emit_reject(s, buf, base, i, s->line, i,
						 "input ends inside a JSON array (truncated file?)", emit, ctx);
				s->state = ST_TOP;
				return rc;
			}
			char c = AT(i);
			if (c == '\n') { /* lines mode: the line ends inside the array */
				rc = emit_reject(s, buf, base, i, s->line, i,
						 "line ends inside a JSON array (truncated record?)", emit, ctx);
				s->state = ST_TOP;
			} else if (c == ']') {
				s->pos = i + 1;
				s->depth = s->wrap_depth - 1;
				if (s->wrap_obj) { /* skip the wrapper's other members */
					s->target = 0;
					s->then = ST_TOP;
					s->state = ST_SKIP;
				} else {
					top_done(s);
				}
			} else if (c == '}') {
				rc = emit_reject(s, buf, base, i, s->line, i + 1,
						 "unexpected '}' inside a JSON array", emit, ctx);
				s->pos = i + 1;
				s->state = ST_SKIP_LINE;
			} else {
				s->cand = i;
				s->cand_line = s->line;
				s->in_str = s->esc = 0;
				s->depth = s->wrap_depth;
				s->state = (c == '{' || c == '[') ? ST_ELEM : ST_SCALAR;
			}
			break;
		}
		case ST_SCALAR: {
			uint64_t i = s->pos, lim = cap_end(s, 1), to = end < lim ? end : lim;
			int done = 0;
			for (; i < to; i++) {
				char c = AT(i);
				if (s->in_str) {
					if (s->esc)
						s->esc = 0;
					else if (c == '\\')
						s->esc = 1;
					else if (c == '"')
						s->in_str = 0;
					else if (c == '\n')
						break;
				} else if (c == '"') {
					s->in_str = 1;
				} else if (c == ',' || c == ']' || c == '}' || is_ws(c)) {
					break;
				}
			}
			done = i < to;
			s->pos = i;
			if (done || eof) {
				if (!done && to == lim)
					goto scalar_over;
				s->in_str = s->esc = 0;
				rc = emit_record(s, buf, base, s->cand, i, emit, ctx);
				s->state = ST_WRAP;
				break;
			}
			if (to != lim)
				return TW_OK;
		scalar_over:
			rc = emit_reject(s, buf, base, s->cand, s->cand_line, to, over_cap(s), emit, ctx);
			s->state = ST_SKIP_LINE;
			break;
		}
		case ST_SKIP: {
			uint64_t e, nls;
			int r = scan(s, buf, base, s->pos, end, s->target, s->lines_mode == 1, &e, &nls);
			saw_newlines(s, nls);
			s->pos = e;
			if (r == SCAN_DONE) {
				if (s->then == ST_TOP)
					top_done(s);
				else
					s->state = s->then;
				break;
			}
			if (r == SCAN_NL) {
				s->state = ST_TOP;
				break;
			}
			if (eof)
				s->state = ST_TOP;
			return TW_OK;
		}
		case ST_SKIP_LINE: {
			const char *nl = memchr(&AT(s->pos), '\n', (size_t)(end - s->pos));
			if (nl) {
				s->pos = base + (uint64_t)(nl - buf);
				s->state = ST_TOP;
				break;
			}
			s->pos = end;
			if (eof)
				s->state = ST_TOP;
			return TW_OK;
		}
		default:
			return TW_OK;
		}
	}
	return rc;
}
