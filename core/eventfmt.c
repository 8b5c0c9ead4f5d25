/* SPDX-License-Identifier: Apache-2.0 */
/* core/eventfmt.c: tw_event -> one line of JSON. On the `trailwatch decode` hot path (one call per
 * event), so no printf: numbers, punctuation and plain values are appended directly.
 *
 * Invariants:
 *   1. The output is always one valid JSON object on one line (no CR/LF), whatever the event holds:
 *      values with any byte that needs care (control, '"', '\\', >= 0x80) go through
 *      tw_json_write_str; plain ASCII values are copied as they are, which is exactly what
 *      tw_json_write_str would write. "raw" is embedded verbatim only when it is known to be JSON
 *      (decoders validated CloudTrail records; CloudWatch raw is validated here) and has no line
 *      break, otherwise it is written as a JSON string.
 *   2. The time text is tw_time_format's, built without snprintf (tests compare the two).
 *   3. On failure the buffer is cut back to where it was: a caller never flushes half an object. */
#include "core/eventfmt.h"

#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "core/time.h"

#define LIT(b, s, err) tw_buf_append((b), (s), sizeof(s) - 1, (err))

/* Appends the decimal digits of v. */
static enum tw_rc put_u64(struct tw_buf *b, uint64_t v, struct tw_err *err)
{
	char tmp[24];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return tw_buf_append(b, tmp + i, sizeof tmp - i, err);
}

/* Byte classes, 8 bytes at a time (SWAR). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Nonzero (in the high bit of the byte) when a byte of x is >= 0x80, < 0x20, '"' or '\\'. Each
 * term is exact for "some byte of the word is such": (v - 0x01..) & ~v flags a zero byte of v. */
static inline uint64_t special8(uint64_t x)
{
	uint64_t lt = (x - ONES * 0x20) & ~x;
	uint64_t q = x ^ (ONES * '"'), bs = x ^ (ONES * '\\');

	return (x | lt | ((q - ONES) & ~q) | ((bs - ONES) & ~bs)) & HIGHS;
}

/* 1 when n bytes at s hold anything a JSON string cannot carry as is (control bytes, '"', '\\') or
 * that needs a UTF-8 check (>= 0x80). */
static int needs_escaping(const char *s, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		if (special8(x))
			return 1;
	}
	if (i < n) {
		uint64_t x = ONES * ' '; /* the tail, padded with spaces (which need nothing) */
		memcpy(&x, s + i, n - i);
		if (special8(x))
			return 1;
	}
	return 0;
}

/* Appends ,"name":"value". Most extracted values are plain ASCII (ids, names, ARNs, IPs): key and
 * value then go in with one reserve and two copies; anything else goes through tw_json_write_str. */
static enum tw_rc put_field(struct tw_buf *b, const char *name, const char *s, size_t n, struct tw_err *err)
{
	size_t kn = strlen(name);
	enum tw_rc rc;
	char *o;

	if (needs_escaping(s, n)) {
		if ((rc = tw_buf_reserve(b, kn + 4, err)))
			return rc;
		o = b->p + b->n;
		*o++ = ',';
		*o++ = '"';
		memcpy(o, name, kn);
		o += kn;
		*o++ = '"';
		*o++ = ':';
		b->n = (size_t)(o - b->p);
		return tw_json_write_str(b, s, n, err);
	}
	if ((rc = tw_buf_reserve(b, kn + n + 6, err)))
		return rc;
	o = b->p + b->n;
	*o++ = ',';
	*o++ = '"';
	memcpy(o, name, kn);
	o += kn;
	*o++ = '"';
	*o++ = ':';
	*o++ = '"';
	memcpy(o, s, n);
	o += n;
	*o++ = '"';
	b->n = (size_t)(o - b->p);
	return TW_OK;
}

/* Appends s as a JSON string (resources). */
static enum tw_rc put_str(struct tw_buf *b, const char *s, size_t n, struct tw_err *err)
{
	enum tw_rc rc;

	if (needs_escaping(s, n))
		return tw_json_write_str(b, s, n, err);
	if ((rc = tw_buf_reserve(b, n + 2, err)))
		return rc;
	b->p[b->n++] = '"';
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n++] = '"';
	return TW_OK;
}

static void put2(char *o, unsigned v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

/* Same text as tw_time_format (which it defers to outside years 0-9999), without snprintf: this
 * runs once per event. */
static size_t format_time(int64_t ms, char *out)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t frac = ms - secs * 1000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	unsigned rem = (unsigned)(secs - days * 86400);
	int64_t y;
	unsigned m, d;

	tw_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999)
		return tw_time_format(ms, out);
	put2(out, (unsigned)(y / 100));
	put2(out + 2, (unsigned)(y % 100));
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, rem / 3600);
	out[13] = ':';
	put2(out + 14, rem / 60 % 60);
	out[16] = ':';
	put2(out + 17, rem % 60);
	if (!frac) {
		out[19] = 'Z';
		out[20] = '\0';
		return 20;
	}
	out[19] = '.';
	out[20] = (char)('0' + frac / 100);
	put2(out + 21, (unsigned)(frac % 100));
	out[23] = 'Z';
	out[24] = '\0';
	return 24;
}

/* 1 when raw can be embedded verbatim as a JSON value (see invariant 1). */
static int raw_is_embeddable(const struct tw_event *ev)
{
	struct tw_str r = ev->raw;

	if (r.n == 0 || (r.p[0] != '{' && r.p[0] != '['))
		return 0;
	if (memchr(r.p, '\n', r.n) || memchr(r.p, '\r', r.n))
		return 0;
	if (ev->kind == TW_KIND_CLOUDTRAIL || ev->kind == TW_KIND_INSIGHT)
		return 1; /* tw_ct_decode validated the whole record */
	return tw_json_validate(r.p, r.n, 256, NULL) == TW_OK;
}

static enum tw_rc write_body(struct tw_buf *b, const struct tw_event *ev, unsigned flags, struct tw_err *err)
{
	char tbuf[TW_TIME_BUFSZ];
	size_t tn;
	enum tw_rc rc;

	if ((rc = LIT(b, "{\"kind\":\"", err)))
		return rc;
	{
		const char *k = tw_kind_name(ev->kind);
		if ((rc = tw_buf_append(b, k, strlen(k), err)))
			return rc;
	}
	if ((rc = LIT(b, "\",\"time\":\"", err)))
		return rc;
	tn = format_time(ev->time_ms, tbuf);
	if ((rc = tw_buf_append(b, tbuf, tn, err)) || (rc = tw_buf_putc(b, '"', err)))
		return rc;

	for (int f = 0; f < TW_F__COUNT; f++) {
		const struct tw_str *s = &ev->f[f];
		if (s->n == 0)
			continue;
		if ((rc = put_field(b, tw_field_name((enum tw_field)f), s->p, s->n, err)))
			return rc;
	}
	if (ev->read_only >= 0) {
		rc = ev->read_only ? LIT(b, ",\"readOnly\":true", err) : LIT(b, ",\"readOnly\":false", err);
		if (rc)
			return rc;
	}
	if (ev->nresources) {
		if ((rc = LIT(b, ",\"resources\":[", err)))
			return rc;
		for (uint32_t i = 0; i < ev->nresources; i++) {
			if (i && (rc = tw_buf_putc(b, ',', err)))
				return rc;
			if ((rc = put_str(b, ev->resources[i].p, ev->resources[i].n, err)))
				return rc;
		}
		if ((rc = tw_buf_putc(b, ']', err)))
			return rc;
	}
	if ((rc = LIT(b, ",\"line\":", err)) || (rc = put_u64(b, ev->src_line, err)) ||
	    (rc = LIT(b, ",\"index\":", err)) || (rc = put_u64(b, ev->src_index, err)))
		return rc;
	if (flags & TW_EVENTFMT_RAW) {
		if ((rc = LIT(b, ",\"raw\":", err)))
			return rc;
		if (raw_is_embeddable(ev))
			rc = tw_buf_append(b, ev->raw.p, ev->raw.n, err);
		else
			rc = tw_json_write_str(b, ev->raw.p, ev->raw.n, err);
		if (rc)
			return rc;
	}
	return tw_buf_putc(b, '}', err);
}

enum tw_rc tw_event_write_json(struct tw_buf *b, const struct tw_event *ev, unsigned flags, struct tw_err *err)
{
	size_t start = b->n;
	enum tw_rc rc = write_body(b, ev, flags, err);

	if (rc)
		b->n = start;
	return rc;
}
