/* SPDX-License-Identifier: Apache-2.0 */
/* core/json.c: the validating pull reader and the JSON string writer of core/json.h.
 * Hot path of ingest: no recursion, string bodies scanned 16 bytes at a time, no allocation (but
 * for a value nested deeper than SKIP_STACK when max_depth allows it).
 * Must never read outside [start, end) and must never accept text RFC 8259 rejects.
 *
 * Invariants:
 *  1. Errors are sticky: the first failure writes j->err ("offset N: reason") and every later
 *     call fails without touching j->err again.
 *  2. Every byte the reader moves past has been validated, including values that are skipped.
 *  3. j->depth counts the containers opened by obj_begin/arr_begin and not yet closed; skip()
 *     tracks its own nesting on a bit stack (1 = object): SKIP_STACK levels on the C stack, and
 *     only for deeper input (when max_depth allows it) a heap stack of max_depth bits, after
 *     which the value is scanned again from its start.
 *  4. j->first is 1 only between obj_begin/arr_begin and the next obj_next/arr_next. */
#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SKIP_STACK 4096 /* levels of nesting skip() tracks on the C stack (512 bytes) */

/* ---- errors ---------------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5), cold, noinline)) static void
fail(struct tw_json *j, const char *at, enum tw_rc rc, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (j->err.rc != TW_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	tw_err_set(&j->err, rc, "offset %zu: %s", (size_t)(at - j->start), why);
	j->p = at;
}

__attribute__((cold, noinline)) static void fail_eof(struct tw_json *j)
{
	fail(j, j->end, TW_EPARSE, "unexpected end of input");
}

/* Describes the byte at `at` for a message: 'x' when printable, else byte 0xNN. */
__attribute__((cold, noinline)) static void fail_unexpected(struct tw_json *j, const char *at, const char *what)
{
	unsigned char c;

	if (at >= j->end) {
		fail_eof(j);
		return;
	}
	c = (unsigned char)*at;
	if (c >= 0x21 && c < 0x7f)
		fail(j, at, TW_EPARSE, "expected %s, found '%c'", what, c);
	else
		fail(j, at, TW_EPARSE, "expected %s, found byte 0x%02x", what, c);
}

/* ---- lexical helpers ------------------------------------------------------------------- */

static inline const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static inline int is_digit(char c)
{
	return (unsigned char)(c - '0') < 10;
}

static inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 if one is not hex. */
static inline long hex4(const char *p)
{
	int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
	if ((a | b | c | d) < 0)
		return -1;
	return (long)((a << 12) | (b << 8) | (c << 4) | d);
}

/* Length of the valid UTF-8 sequence starting with a byte >= 0x80 at p, or 0 if it is not one
 * (overlong, surrogate, > U+10FFFF, bad or missing continuation bytes). Never reads past end. */
static inline size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t avail = (size_t)(end - p);

	if (c < 0xC2)
		return 0; /* continuation byte or overlong 2-byte lead */
	if (c < 0xE0) {
		if (avail < 2 || (p[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c < 0xF0) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
		if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (c < 0xF5) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* > U+10FFFF */
		if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/* 1 for bytes that end the fast run inside a string: '"', '\\', controls and non-ASCII. */
static const unsigned char str_special[256] = {
	['"'] = 1, ['\\'] = 1,
	[0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
	[0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1,
	[0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
	[0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1,
#define R16(b) [b] = 1, [b + 1] = 1, [b + 2] = 1, [b + 3] = 1, [b + 4] = 1, [b + 5] = 1, [b + 6] = 1, \
	       [b + 7] = 1, [b + 8] = 1, [b + 9] = 1, [b + 10] = 1, [b + 11] = 1, [b + 12] = 1,     \
	       [b + 13] = 1, [b + 14] = 1, [b + 15] = 1
	R16(0x80), R16(0x90), R16(0xa0), R16(0xb0), R16(0xc0), R16(0xd0), R16(0xe0), R16(0xf0),
#undef R16
};

/* Checks the four hex digits of a \u escape at p (the backslash): 1 if they are there, else 0
 * with the error set (end of input, or a byte that is not hex). */
static int check_u4(struct tw_json *j, const char *p, const char *end)
{
	for (int i = 2; i < 6; i++) {
		if (p + i >= end) {
			fail_eof(j);
			return 0;
		}
		if (hexval(p[i]) < 0) {
			fail(j, p, TW_EPARSE, "invalid \\u escape: expected 4 hex digits");
			return 0;
		}
	}
	return 1;
}

/* Validates one escape; p points at the backslash. Returns the byte after it, or NULL. */
static const char *scan_escape(struct tw_json *j, const char *p, const char *end)
{
	const char *q;
	long cp, lo;

	if (end - p < 2) {
		fail_eof(j);
		return NULL;
	}
	switch (p[1]) {
	case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
		return p + 2;
	case 'u':
		break;
	default:
		if ((unsigned char)p[1] >= 0x21 && (unsigned char)p[1] < 0x7f)
			fail(j, p, TW_EPARSE, "invalid escape '\\%c' in string", p[1]);
		else
			fail(j, p, TW_EPARSE, "invalid escape (byte 0x%02x after '\\') in string", (unsigned char)p[1]);
		return NULL;
	}
	if (!check_u4(j, p, end))
		return NULL;
	cp = hex4(p + 2);
	if (cp >= 0xDC00 && cp <= 0xDFFF) {
		fail(j, p, TW_EPARSE, "lone low surrogate \\u%04lX in string", cp);
		return NULL;
	}
	if (cp < 0xD800 || cp > 0xDBFF)
		return p + 6;
	/* High surrogate: a \u escape of a low one must follow at once. */
	q = p + 6;
	if (q < end && *q != '\\')
		goto lone;
	if (q + 1 < end && q[1] != 'u')
		goto lone;
	if (q + 1 >= end) {
		fail_eof(j);
		return NULL;
	}
	if (!check_u4(j, q, end))
		return NULL;
	lo = hex4(q + 2);
	if (lo < 0xDC00 || lo > 0xDFFF)
		goto lone;
	return q + 6;
lone:
	fail(j, p, TW_EPARSE, "lone high surrogate \\u%04lX in string", cp);
	return NULL;
}

/* p points just after an opening quote. Returns the position of the closing quote, or NULL with
 * the error set. *esc is set to 1 when a backslash was seen (never cleared). */
static const char *scan_str(struct tw_json *j, const char *p, const char *end, int *esc)
{
	for (;;) {
#ifdef __SSE2__
		{
			const __m128i quote = _mm_set1_epi8('"');
			const __m128i bslash = _mm_set1_epi8('\\');
			const __m128i ctl = _mm_set1_epi8(0x20);
			while (end - p >= 16) {
				__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
				/* Signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches them. */
				__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
							 _mm_cmplt_epi8(v, ctl));
				unsigned mask = (unsigned)_mm_movemask_epi8(m);
				if (mask) {
					p += __builtin_ctz(mask);
					goto special;
				}
				p += 16;
			}
		}
#endif
		while (p < end && !str_special[(unsigned char)*p])
			p++;
		if (p >= end) {
			fail_eof(j);
			return NULL;
		}
#ifdef __SSE2__
special:
#endif
		if (*p == '"')
			return p;
		if (*p == '\\') {
			*esc = 1;
			p = scan_escape(j, p, end);
			if (!p)
				return NULL;
			continue;
		}
		if ((unsigned char)*p < 0x20) {
			fail(j, p, TW_EPARSE, "control character 0x%02x in string (must be escaped)", (unsigned char)*p);
			return NULL;
		}
		/* Non-ASCII: validate the run of multi-byte sequences. */
		do {
			size_t k = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
			if (!k) {
				fail(j, p, TW_EPARSE, "invalid UTF-8 in string (byte 0x%02x)", (unsigned char)*p);
				return NULL;
			}
			p += k;
		} while (p < end && (unsigned char)*p >= 0x80);
	}
}

/* p points at '-' or a digit. Returns the byte after the number, or NULL. */
static const char *scan_num(struct tw_json *j, const char *p, const char *end)
{
	if (*p == '-')
		p++;
	if (p >= end) {
		fail_eof(j);
		return NULL;
	}
	if (*p == '0') {
		p++;
		if (p < end && is_digit(*p)) {
			fail(j, p - 1, TW_EPARSE, "leading zero in number");
			return NULL;
		}
	} else if (is_digit(*p)) {
		while (++p < end && is_digit(*p))
			;
	} else {
		fail_unexpected(j, p, "a digit");
		return NULL;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !is_digit(*p)) {
			fail_unexpected(j, p, "a digit after the decimal point");
			return NULL;
		}
		while (++p < end && is_digit(*p))
			;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !is_digit(*p)) {
			fail_unexpected(j, p, "a digit in the exponent");
			return NULL;
		}
		while (++p < end && is_digit(*p))
			;
	}
	return p;
}

/* p points at 't', 'f' or 'n'; lit is the literal expected. */
static const char *scan_lit(struct tw_json *j, const char *p, const char *end, const char *lit, size_t n)
{
	size_t avail = (size_t)(end - p);
	size_t k = avail < n ? avail : n;

	if (memcmp(p, lit, k) != 0) {
		fail(j, p, TW_EPARSE, "invalid literal (expected %s)", lit);
		return NULL;
	}
	if (k < n) {
		fail_eof(j);
		return NULL;
	}
	return p + n;
}

/* Scans a scalar at p (not a container). Sets *type; returns the byte after it, or NULL. */
static const char *scan_scalar(struct tw_json *j, const char *p, const char *end, enum tw_json_type *type,
			       int *esc)
{
	switch (*p) {
	case '"': {
		const char *q = scan_str(j, p + 1, end, esc);
		*type = TW_JSON_STRING;
		return q ? q + 1 : NULL;
	}
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		*type = TW_JSON_NUMBER;
		return scan_num(j, p, end);
	case 't':
		*type = TW_JSON_TRUE;
		return scan_lit(j, p, end, "true", 4);
	case 'f':
		*type = TW_JSON_FALSE;
		return scan_lit(j, p, end, "false", 5);
	case 'n':
		*type = TW_JSON_NULL;
		return scan_lit(j, p, end, "null", 4);
	default:
		*type = TW_JSON_NONE;
		fail_unexpected(j, p, "a JSON value");
		return NULL;
	}
}

/* ---- the reader ------------------------------------------------------------------------ */

void tw_json_init(struct tw_json *j, const char *p, size_t n, unsigned max_depth)
{
	j->start = p;
	j->p = p;
	j->end = p + n;
	j->depth = 0;
	j->max_depth = max_depth;
	j->first = 0;
	j->err.rc = TW_OK;
	j->err.msg[0] = '\0';
}

size_t tw_json_offset(const struct tw_json *j)
{
	return (size_t)(j->p - j->start);
}

enum tw_json_type tw_json_peek(struct tw_json *j)
{
	const char *p;

	if (j->err.rc)
		return TW_JSON_NONE;
	p = j->p = skip_ws(j->p, j->end);
	if (p >= j->end)
		return TW_JSON_NONE;
	switch (*p) {
	case '{': return TW_JSON_OBJECT;
	case '[': return TW_JSON_ARRAY;
	case '"': return TW_JSON_STRING;
	case 't': return TW_JSON_TRUE;
	case 'f': return TW_JSON_FALSE;
	case 'n': return TW_JSON_NULL;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return TW_JSON_NUMBER;
	default:
		return TW_JSON_NONE;
	}
}

static int open_container(struct tw_json *j, char c, const char *what)
{
	const char *p;

	if (j->err.rc)
		return 0;
	p = skip_ws(j->p, j->end);
	if (p >= j->end || *p != c) {
		fail_unexpected(j, p, what);
		return 0;
	}
	if (j->depth >= j->max_depth) {
		fail(j, p, TW_ELIMIT, "nesting deeper than %u levels", j->max_depth);
		return 0;
	}
	j->depth++;
	j->first = 1;
	j->p = p + 1;
	return 1;
}

int tw_json_obj_begin(struct tw_json *j)
{
	return open_container(j, '{', "'{'");
}

int tw_json_arr_begin(struct tw_json *j)
{
	return open_container(j, '[', "'['");
}

/* Past the ',' between two members of the container that `close` ('}' or ']') ends: p is on the
 * byte after the previous member (whitespace skipped). Returns the first byte of the next member
 * (whitespace skipped), or NULL with the error set (no ',', or a trailing comma before close).
 * Shared by tw_json_obj_next, tw_json_arr_next and skip_with. */
static inline const char *member_sep(struct tw_json *j, const char *p, char close)
{
	if (*p != ',') {
		fail_unexpected(j, p, close == '}' ? "',' or '}'" : "',' or ']'");
		return NULL;
	}
	p = skip_ws(p + 1, j->end);
	if (p < j->end && *p == close) {
		fail(j, p, TW_EPARSE, "trailing comma before '%c'", close);
		return NULL;
	}
	return p;
}

/* An object key at p (a '"' expected) and the ':' after it. Returns the first byte of the value
 * (whitespace skipped), or NULL with the error set; *key (may be NULL) gets the key's raw text.
 * Shared by tw_json_obj_next and skip_with. */
static inline const char *scan_key(struct tw_json *j, const char *p, struct tw_str *key)
{
	const char *end = j->end, *q;
	int esc = 0;

	if (p >= end || *p != '"') {
		fail_unexpected(j, p, "a string key");
		return NULL;
	}
	q = scan_str(j, p + 1, end, &esc);
	if (!q)
		return NULL;
	if (key) {
		key->p = p + 1;
		key->n = (size_t)(q - p - 1);
	}
	p = q + 1;
	/* The common case ("key":value) needs no whitespace skipping. */
	if (p < end && *p != ':')
		p = skip_ws(p, end);
	if (p >= end || *p != ':') {
		fail_unexpected(j, p, "':' after the key");
		return NULL;
	}
	p++;
	if (p < end && (unsigned char)*p <= ' ')
		p = skip_ws(p, end);
	return p;
}

/* The step tw_json_obj_next and tw_json_arr_next share: consumes the container's `close` (its
 * `open` named in the message when nothing is open) or the ',' before the next member.
 * Returns 1 with *at on the next member, 0 when the container closed, -1 on error. */
static inline int member_next(struct tw_json *j, char open, char close, const char **at)
{
	const char *p, *end = j->end;

	if (j->err.rc)
		return -1;
	p = skip_ws(j->p, end);
	if (p >= end) {
		fail_eof(j);
		return -1;
	}
	if (*p == close) {
		if (j->depth == 0) {
			fail(j, p, TW_EPARSE, "'%c' without a matching '%c'", close, open);
			return -1;
		}
		j->first = 0;
		j->depth--;
		j->p = p + 1;
		return 0;
	}
	if (!j->first && !(p = member_sep(j, p, close)))
		return -1;
	j->first = 0;
	*at = p;
	return 1;
}

int tw_json_obj_next(struct tw_json *j, struct tw_str *key)
{
	const char *p;
	int r = member_next(j, '{', '}', &p);

	if (r <= 0)
		return r;
	if (!(p = scan_key(j, p, key)))
		return -1;
	j->p = p;
	return 1;
}

int tw_json_arr_next(struct tw_json *j)
{
	const char *p;
	int r = member_next(j, '[', ']', &p);

	if (r > 0)
		j->p = p;
	return r;
}

/* Skips one value starting at p (whitespace already skipped). Iterative: containers push a bit on
 * stack[], which holds cap levels. Returns the byte after the value, or NULL with the error set,
 * or NULL with *deeper = 1 (error not set) when the value nests deeper than cap but max_depth
 * would allow it. */
static const char *skip_with(struct tw_json *j, const char *p, uint64_t *stack, unsigned cap, int *deeper)
{
	const char *end = j->end;
	unsigned rel = 0; /* containers open inside this value */
	unsigned room = j->max_depth > j->depth ? j->max_depth - j->depth : 0;
	enum tw_json_type type;
	int esc = 0;

value:
	if (p >= end) {
		fail_eof(j);
		return NULL;
	}
	if (*p == '"') {
		p = scan_str(j, p + 1, end, &esc);
		if (!p)
			return NULL;
		p++;
	} else if (*p == '{' || *p == '[') {
		int is_obj = *p == '{';
		if (rel >= room) {
			fail(j, p, TW_ELIMIT, "nesting deeper than %u levels", j->max_depth);
			return NULL;
		}
		if (rel >= cap) {
			*deeper = 1;
			return NULL;
		}
		if (is_obj)
			stack[rel / 64] |= (uint64_t)1 << (rel % 64);
		else
			stack[rel / 64] &= ~((uint64_t)1 << (rel % 64));
		rel++;
		p = skip_ws(p + 1, end);
		if (p >= end) {
			fail_eof(j);
			return NULL;
		}
		if (*p == (is_obj ? '}' : ']')) {
			rel--;
			p++;
			goto after;
		}
		if (is_obj)
			goto key;
		goto value;
	} else {
		p = scan_scalar(j, p, end, &type, &esc);
		if (!p)
			return NULL;
	}
after:
	if (rel == 0)
		return p;
	if (p < end && (unsigned char)*p <= ' ')
		p = skip_ws(p, end);
	if (p >= end) {
		fail_eof(j);
		return NULL;
	}
	if (stack[(rel - 1) / 64] & ((uint64_t)1 << ((rel - 1) % 64))) {
		if (*p == '}') {
			rel--;
			p++;
			goto after;
		}
		if (!(p = member_sep(j, p, '}')))
			return NULL;
		goto key;
	}
	if (*p == ']') {
		rel--;
		p++;
		goto after;
	}
	if (!(p = member_sep(j, p, ']')))
		return NULL;
	goto value;
key:
	if (!(p = scan_key(j, p, NULL)))
		return NULL;
	goto value;
}

static const char *skip_value(struct tw_json *j, const char *p)
{
	uint64_t local[SKIP_STACK / 64], *heap;
	int deeper = 0;
	const char *q = skip_with(j, p, local, SKIP_STACK, &deeper);
	unsigned room;

	if (q || !deeper)
		return q;
	/* Rare: deeper than SKIP_STACK and allowed by max_depth. Scan again with a big enough stack. */
	room = j->max_depth - j->depth;
	heap = malloc(((size_t)room + 63) / 64 * sizeof *heap);
	if (!heap) {
		fail(j, p, TW_ENOMEM, "out of memory for %u levels of nesting", room);
		return NULL;
	}
	deeper = 0;
	q = skip_with(j, p, heap, room, &deeper);
	free(heap);
	return q;
}

int tw_json_skip(struct tw_json *j, struct tw_str *raw)
{
	const char *p, *q;

	if (j->err.rc)
		return 0;
	p = skip_ws(j->p, j->end);
	q = skip_value(j, p);
	if (!q)
		return 0;
	if (raw) {
		raw->p = p;
		raw->n = (size_t)(q - p);
	}
	j->p = q;
	return 1;
}

int tw_json_string(struct tw_json *j, struct tw_str *s, int *escaped)
{
	const char *p, *q;
	int esc = 0;

	if (j->err.rc)
		return 0;
	p = skip_ws(j->p, j->end);
	if (p >= j->end || *p != '"') {
		fail_unexpected(j, p, "a string");
		return 0;
	}
	q = scan_str(j, p + 1, j->end, &esc);
	if (!q)
		return 0;
	s->p = p + 1;
	s->n = (size_t)(q - p - 1);
	if (escaped)
		*escaped = esc;
	j->p = q + 1;
	return 1;
}

int tw_json_scalar(struct tw_json *j, enum tw_json_type *type, struct tw_str *s, int *escaped)
{
	const char *p, *q;
	int esc = 0;
	enum tw_json_type t;

	if (j->err.rc)
		return 0;
	p = skip_ws(j->p, j->end);
	if (p >= j->end) {
		fail_eof(j);
		return 0;
	}
	if (*p == '{' || *p == '[') {
		t = *p == '{' ? TW_JSON_OBJECT : TW_JSON_ARRAY;
		q = skip_value(j, p);
		if (!q)
			return 0;
		s->p = p;
		s->n = (size_t)(q - p);
	} else {
		q = scan_scalar(j, p, j->end, &t, &esc);
		if (!q)
			return 0;
		if (t == TW_JSON_STRING) {
			s->p = p + 1;
			s->n = (size_t)(q - p - 2);
		} else {
			s->p = p;
			s->n = (size_t)(q - p);
		}
	}
	*type = t;
	if (escaped)
		*escaped = esc;
	j->p = q;
	return 1;
}

int tw_json_end(struct tw_json *j)
{
	const char *p;

	if (j->err.rc)
		return 0;
	p = skip_ws(j->p, j->end);
	if (p < j->end) {
		fail(j, p, TW_EPARSE, "unexpected data after the JSON value");
		return 0;
	}
	j->p = p;
	return 1;
}

enum tw_rc tw_json_validate(const char *p, size_t n, unsigned max_depth, struct tw_err *err)
{
	struct tw_json j;

	tw_json_init(&j, p, n, max_depth);
	if (skip_ws(p, p + n) >= p + n)
		return tw_err_set(err, TW_EPARSE, "offset %zu: empty input (expected a JSON value)", n);
	if (tw_json_skip(&j, NULL) && tw_json_end(&j))
		return TW_OK;
	if (err)
		*err = j.err;
	return j.err.rc;
}

/* ---- unescaping ------------------------------------------------------------------------ */

/* Writes the UTF-8 form of cp (<= 0x10FFFF) at o; returns the byte count. */
static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes raw into o (room for raw.n bytes: decoding never grows). Returns the length written, or
 * (size_t)-1 with err set when raw holds an escape the reader would have rejected. */
static size_t unescape_into(struct tw_str raw, char *o, struct tw_err *err)
{
	const char *p = raw.p, *end = raw.p + raw.n;
	char *o0 = o;

	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
		long cp, lo;

		memcpy(o, p, run);
		o += run;
		p += run;
		if (p >= end)
			break;
		if (end - p < 2)
			goto bad;
		switch (p[1]) {
		case '"': *o++ = '"'; p += 2; continue;
		case '\\': *o++ = '\\'; p += 2; continue;
		case '/': *o++ = '/'; p += 2; continue;
		case 'b': *o++ = '\b'; p += 2; continue;
		case 'f': *o++ = '\f'; p += 2; continue;
		case 'n': *o++ = '\n'; p += 2; continue;
		case 'r': *o++ = '\r'; p += 2; continue;
		case 't': *o++ = '\t'; p += 2; continue;
		case 'u': break;
		default: goto bad;
		}
		if (end - p < 6 || (cp = hex4(p + 2)) < 0)
			goto bad;
		p += 6;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			goto bad;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4(p + 2)) < 0xDC00 || lo > 0xDFFF)
				goto bad;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			p += 6;
		}
		o += put_utf8(o, (unsigned long)cp);
	}
	return (size_t)(o - o0);
bad:
	tw_err_set(err, TW_EPARSE, "offset %zu: invalid escape in string", (size_t)(p - raw.p));
	return (size_t)-1;
}

enum tw_rc tw_json_unescape(struct tw_str raw, struct tw_arena *a, struct tw_str *out, struct tw_err *err)
{
	char *o = tw_arena_alloc(a, raw.n + 1, err);
	size_t n;

	if (!o)
		return err ? err->rc : TW_ENOMEM;
	n = unescape_into(raw, o, err);
	if (n == (size_t)-1)
		return TW_EPARSE;
	o[n] = '\0';
	out->p = o;
	out->n = n;
	return TW_OK;
}

enum tw_rc tw_json_unescape_buf(struct tw_str raw, struct tw_buf *b, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_reserve(b, raw.n, err);
	size_t n;

	if (rc)
		return rc;
	n = unescape_into(raw, b->p + b->n, err);
	if (n == (size_t)-1)
		return TW_EPARSE;
	b->n += n;
	return TW_OK;
}

/* ---- writing --------------------------------------------------------------------------- */

enum tw_rc tw_json_write_str(struct tw_buf *b, const char *s, size_t n, struct tw_err *err)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
	enum tw_rc rc;

	if ((rc = tw_buf_putc(b, '"', err)))
		return rc;
	while (p < end) {
		unsigned char c = *p;
		char esc[6];
		size_t k = 0, elen = 0;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			p++;
			continue;
		}
		if (c >= 0x80) {
			k = utf8_seq(p, end);
			if (k && !(k == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))) {
				p += k;
				continue;
			}
		}
		/* Flush the run of bytes that need nothing. */
		if (p > run && (rc = tw_buf_append(b, run, (size_t)(p - run), err)))
			return rc;
		if (c >= 0x80) {
			if (k) { /* U+2028 / U+2029: valid, but break JavaScript string literals */
				rc = tw_buf_append(b, p[2] == 0xA8 ? "\\u2028" : "\\u2029", 6, err);
				p += 3;
			} else {
				/* Replace the maximal invalid prefix (at least one byte) with one U+FFFD. */
				size_t m = 1;
				if (c >= 0xC2 && c < 0xF5) {
					unsigned char lo = 0x80, hi = 0xBF;
					size_t want = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
					if (c == 0xE0) lo = 0xA0;
					else if (c == 0xED) hi = 0x9F;
					else if (c == 0xF0) lo = 0x90;
					else if (c == 0xF4) hi = 0x8F;
					if (p + 1 < end && p[1] >= lo && p[1] <= hi) {
						m = 2;
						while (m < want && p + m < end && (p[m] & 0xC0) == 0x80)
							m++;
					}
				}
				rc = tw_buf_append(b, "\xEF\xBF\xBD", 3, err);
				p += m;
			}
			if (rc)
				return rc;
			run = p;
			continue;
		}
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; elen = 2; break;
		case '\\': esc[1] = '\\'; elen = 2; break;
		case '\n': esc[1] = 'n'; elen = 2; break;
		case '\r': esc[1] = 'r'; elen = 2; break;
		case '\t': esc[1] = 't'; elen = 2; break;
		case '\b': esc[1] = 'b'; elen = 2; break;
		case '\f': esc[1] = 'f'; elen = 2; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if ((rc = tw_buf_append(b, esc, elen, err)))
			return rc;
		p++;
		run = p;
	}
	if (p > run && (rc = tw_buf_append(b, run, (size_t)(p - run), err)))
		return rc;
	return tw_buf_putc(b, '"', err);
}
