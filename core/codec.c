/* SPDX-License-Identifier: Apache-2.0 */
/* core/codec.c: base64 decoding, blob sniffing, and gzip/zlib/deflate inflation through ISA-L.
 * Whole-buffer and bounded: output goes into a caller's tw_buf and never past its caps. Must not
 * allocate in proportion to what a stream claims (gzip ISIZE, base64 length) beyond the caps.
 *
 * Invariants:
 *  1. On any failure the output buffer is cut back to its length on entry (out->n), so a caller
 *     never sees half a layer.
 *  2. Inflation stops as soon as the output would pass the cap: at most max_out bytes are written
 *     and the stream is not read further (a 1 KB bomb of 1 GB costs max_out, not 1 GB).
 *  3. After a gzip member ends, ISA-L leaves next_in just past its 8-byte trailer; whatever
 *     follows is another member (1f 8b), NUL padding (ignored, as gzip(1) does), or an error.
 */
#include "core/codec.h"

#include <isa-l/igzip_lib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- sniffing ------------------------------------------------------------------------- */

static int is_gzip(const uint8_t *p, size_t n)
{
	return n >= 2 && p[0] == 0x1f && p[1] == 0x8b && (n < 3 || p[2] == 8);
}

/* zlib header: CM = 8 (deflate), CINFO <= 7, FCHECK makes the pair a multiple of 31. `strict`
 * also wants the usual 32 KB window (0x78) and no preset dictionary, to keep text lines starting
 * with 'x' or '(' from passing as zlib when sniffing. */
static int is_zlib(const uint8_t *p, size_t n, int strict)
{
	if (n < 2 || (p[0] & 0x0f) != 8 || (p[0] >> 4) > 7 || ((p[0] << 8) | p[1]) % 31 != 0)
		return 0;
	return !strict || (p[0] == 0x78 && !(p[1] & 0x20));
}

enum tw_codec tw_codec_sniff(const void *p, size_t n)
{
	const uint8_t *b = p;

	if (is_gzip(b, n))
		return TW_CODEC_GZIP;
	if (is_zlib(b, n, 1))
		return TW_CODEC_ZLIB;
	if (tw_base64_looks_like(p, n))
		return TW_CODEC_BASE64;
	return TW_CODEC_PLAIN;
}

const char *tw_codec_name(enum tw_codec c)
{
	switch (c) {
	case TW_CODEC_PLAIN: return "plain";
	case TW_CODEC_GZIP: return "gzip";
	case TW_CODEC_ZLIB: return "zlib";
	case TW_CODEC_BASE64: return "base64";
	}
	return "?";
}

/* ---- base64 --------------------------------------------------------------------------- */

#define BAD -1 /* not base64 */
#define WS -2  /* ASCII whitespace: ignored */
#define PAD -3 /* '=' */

/* Value of each byte: 0..63 for both alphabets ('+' and '-' are 62, '/' and '_' are 63). */
static const int8_t b64[256] = {
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,  WS,  WS,  WS,  WS,  WS, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	 WS, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,  62, BAD,  62, BAD,  63,
	 52,  53,  54,  55,  56,  57,  58,  59,  60,  61, BAD, BAD, BAD, PAD, BAD, BAD,
	BAD,   0,   1,   2,   3,   4,   5,   6,   7,   8,   9,  10,  11,  12,  13,  14,
	 15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25, BAD, BAD, BAD, BAD,  63,
	BAD,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
	 41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
};

enum tw_rc tw_base64_decode(const char *p, size_t n, struct tw_buf *out, struct tw_err *err)
{
	const uint8_t *s = (const uint8_t *)p;
	size_t n0 = out->n, room = out->max > out->n ? out->max - out->n : 0;
	size_t bound = n / 4 * 3 + 3, want = bound < room ? bound : room;
	size_t i, pad = 0, pad_off = 0;
	uint32_t acc = 0;
	unsigned k = 0;
	uint8_t *o, *oend;
	enum tw_rc rc;

	rc = tw_buf_reserve(out, want, err);
	if (rc)
		return rc;
	o = (uint8_t *)out->p + out->n;
	oend = o + want;
	for (i = 0; i < n; i++) {
		int v = b64[s[i]];
		if (v >= 0) {
			if (pad) {
				out->n = n0;
				return tw_err_set(err, TW_EPARSE, "base64: data after '=' padding at offset %zu", i);
			}
			acc = acc << 6 | (uint32_t)v;
			if (++k == 4) {
				if (oend - o < 3)
					goto too_big;
				o[0] = (uint8_t)(acc >> 16);
				o[1] = (uint8_t)(acc >> 8);
				o[2] = (uint8_t)acc;
				o += 3;
				k = 0;
				acc = 0;
			}
		} else if (v == PAD) {
			if (!pad++)
				pad_off = i;
		} else if (v != WS) {
			out->n = n0;
			return tw_err_set(err, TW_EPARSE, "base64: invalid character 0x%02x at offset %zu", s[i], i);
		}
	}
	if (k == 1) {
		out->n = n0;
		return tw_err_set(err, TW_EPARSE, "base64: truncated (a lone character at the end)");
	}
	if (pad && (pad > 2 || k == 0 || k + pad != 4)) {
		out->n = n0;
		return tw_err_set(err, TW_EPARSE, "base64: bad '=' padding at offset %zu", pad_off);
	}
	if (k) {
		if ((size_t)(oend - o) < k - 1)
			goto too_big;
		acc <<= 6 * (4 - k);
		*o++ = (uint8_t)(acc >> 16);
		if (k == 3)
			*o++ = (uint8_t)(acc >> 8);
	}
	out->n = (size_t)(o - (uint8_t *)out->p);
	return TW_OK;

too_big:
	out->n = n0;
	return tw_err_set(err, TW_ELIMIT, "base64 decodes to more than %zu bytes", room);
}

int tw_base64_looks_like(const char *p, size_t n)
{
	const uint8_t *s = (const uint8_t *)p;
	uint8_t head[12];
	size_t i, sig = 0, pad = 0, nh = 0;
	uint32_t acc = 0;
	unsigned k = 0;

	for (i = 0; i < n; i++) {
		int v = b64[s[i]];
		if (v >= 0) {
			if (pad)
				return 0;
			sig++;
			if (nh < sizeof head) {
				acc = acc << 6 | (uint32_t)v;
				if (++k == 4) {
					head[nh++] = (uint8_t)(acc >> 16);
					head[nh++] = (uint8_t)(acc >> 8);
					head[nh++] = (uint8_t)acc;
					k = 0;
					acc = 0;
				}
			}
		} else if (v == PAD) {
			pad++;
		} else if (v != WS) {
			return 0;
		}
	}
	if (sig < 8 || sig % 4 == 1 || pad > 2 || (pad && (sig + pad) % 4 != 0))
		return 0;
	if (is_gzip(head, nh) || is_zlib(head, nh, 1))
		return 1;
	for (i = 0; i < nh; i++) {
		if (head[i] == '{' || head[i] == '[')
			return 1;
		if (head[i] != ' ' && head[i] != '\t' && head[i] != '\r' && head[i] != '\n')
			return 0;
	}
	return 0;
}

/* ---- inflate -------------------------------------------------------------------------- */

enum wrap { WRAP_GZIP, WRAP_ZLIB, WRAP_RAW };

static const char *const wrap_name[] = { "gzip", "zlib", "deflate" };

/* How much output room to ask for first: gzip's ISIZE trailer when the blob is one member (never
 * trusted beyond what deflate can expand n bytes to, about 1032:1), else 4 x the input. */
static size_t first_guess(const uint8_t *p, size_t n, enum wrap w, size_t limit)
{
	size_t g = n < SIZE_MAX / 4 ? n * 4 : SIZE_MAX;

	if (w == WRAP_GZIP && n >= 18) {
		size_t isize = (size_t)p[n - 4] | (size_t)p[n - 3] << 8 | (size_t)p[n - 2] << 16 |
			       (size_t)p[n - 1] << 24;
		if (isize && n < SIZE_MAX / 1032 && isize <= n * 1032)
			g = isize;
	}
	if (g < 4096)
		g = 4096;
	return g < limit ? g : limit;
}

static enum tw_rc isal_fail(int rc, enum wrap w, unsigned member, size_t member_off, size_t at,
			    struct tw_err *err)
{
	const char *name = wrap_name[w];

	switch (rc) {
	case ISAL_INCORRECT_CHECKSUM:
		if (w == WRAP_GZIP)
			return tw_err_set(err, TW_EPARSE,
					  "gzip CRC mismatch (member %u at offset %zu: CRC-32 or length "
					  "trailer does not match the data)", member, member_off);
		return tw_err_set(err, TW_EPARSE, "zlib Adler-32 mismatch (the data is corrupt)");
	case ISAL_INVALID_WRAPPER:
		return tw_err_set(err, TW_EPARSE, "invalid %s header (member %u at offset %zu)", name,
				  member, member_off);
	case ISAL_UNSUPPORTED_METHOD:
		return tw_err_set(err, TW_EUNSUP, "%s compression method is not deflate", name);
	case ISAL_NEED_DICT:
		return tw_err_set(err, TW_EUNSUP, "zlib stream needs a preset dictionary");
	case ISAL_INVALID_BLOCK:
	case ISAL_INVALID_SYMBOL:
	case ISAL_INVALID_LOOKBACK:
	default:
		return tw_err_set(err, TW_EPARSE, "corrupt deflate data in %s stream near input offset %zu "
				  "(%s)", name, at,
				  rc == ISAL_INVALID_BLOCK ? "invalid block" :
				  rc == ISAL_INVALID_SYMBOL ? "invalid symbol" :
				  rc == ISAL_INVALID_LOOKBACK ? "invalid distance" : "error");
	}
}

static enum tw_rc inflate_wrapped(const uint8_t *p, size_t n, enum wrap w, size_t max_out,
				  struct tw_buf *out, struct tw_err *err)
{
	static const uint32_t flag[] = { ISAL_GZIP, ISAL_ZLIB, ISAL_DEFLATE };
	size_t n0 = out->n, limit = max_out, off = 0, member_off, fed;
	unsigned member = 0;
	struct inflate_state *s;
	enum tw_rc rc = TW_OK;

	if (out->max < out->n)
		return tw_err_set(err, TW_EINVAL, "inflate: output buffer already past its limit");
	if (out->max - out->n < limit)
		limit = out->max - out->n;
	s = malloc(sizeof *s);
	if (!s)
		return tw_err_set(err, TW_ENOMEM, "out of memory for inflate state");
	rc = tw_buf_reserve(out, first_guess(p, n, w, limit), err);
	if (rc)
		goto fail;
next_member:
	member_off = off;
	if (w == WRAP_GZIP && n - off >= 4 && (p[off + 3] & 0xe0)) {
		/* ISA-L ignores the reserved FLG bits; RFC 1952 (and gzip(1)) reject them. */
		rc = tw_err_set(err, TW_EPARSE, "invalid gzip header (member %u at offset %zu: reserved "
				"flag bits set)", member, off);
		goto fail;
	}
	isal_inflate_init(s);
	s->crc_flag = flag[w];
	fed = n - off > UINT32_MAX ? UINT32_MAX : n - off;
	s->next_in = (uint8_t *)(uintptr_t)(p + off);
	s->avail_in = (uint32_t)fed;
	for (;;) {
		size_t produced = out->n - n0, room = out->cap > out->n ? out->cap - out->n - 1 : 0;
		uint8_t probe[64], *o;
		const uint8_t *in_before = s->next_in;
		int irc;

		if (produced >= limit) {
			/* At the cap: ask for a few more bytes only to learn whether the stream has any. */
			o = probe;
			s->avail_out = sizeof probe;
		} else {
			if (room == 0) {
				size_t more = produced > 65536 ? produced : 65536;
				if (more > limit - produced)
					more = limit - produced;
				rc = tw_buf_reserve(out, more, err);
				if (rc)
					goto fail;
				room = out->cap - out->n - 1;
			}
			if (room > limit - produced)
				room = limit - produced;
			if (room > UINT32_MAX)
				room = UINT32_MAX;
			o = (uint8_t *)out->p + out->n;
			s->avail_out = (uint32_t)room;
		}
		s->next_out = o;
		irc = isal_inflate(s);
		if (o == probe) {
			if (s->next_out != probe) {
				rc = tw_err_set(err, TW_ELIMIT, "inflated size exceeds %zu bytes", limit);
				goto fail;
			}
		} else {
			out->n += (size_t)(s->next_out - o);
		}
		if (irc != ISAL_DECOMP_OK) {
			rc = isal_fail(irc, w, member, member_off, (size_t)(s->next_in - p), err);
			goto fail;
		}
		if (s->block_state == ISAL_BLOCK_FINISH)
			break;
		if (s->avail_in == 0 && off + fed < n) {
			/* Inputs past 4 GiB: feed the next slice. */
			size_t at = off + fed;
			fed = n - at > UINT32_MAX ? UINT32_MAX : n - at;
			off = at;
			s->next_in = (uint8_t *)(uintptr_t)(p + at);
			s->avail_in = (uint32_t)fed;
			continue;
		}
		if (s->avail_in == 0 && s->avail_out > 0) {
			rc = tw_err_set(err, TW_EPARSE, "truncated %s stream (input ends after %zu bytes, "
					"%zu bytes inflated)", wrap_name[w], n, out->n - n0);
			goto fail;
		}
		if (s->next_in == in_before && s->avail_out > 0) {
			rc = tw_err_set(err, TW_EPARSE, "corrupt deflate data in %s stream near input "
					"offset %zu (no progress)", wrap_name[w], (size_t)(s->next_in - p));
			goto fail;
		}
	}
	/* The member ended: where are we in the input? (invariant 3) */
	off = (size_t)(s->next_in - p) - (size_t)(s->read_in_length / 8);
	if (off < n) {
		size_t i;
		if (w == WRAP_GZIP && is_gzip(p + off, n - off)) {
			member++;
			goto next_member;
		}
		for (i = off; i < n && w == WRAP_GZIP && p[i] == 0; i++)
			;
		if (w != WRAP_GZIP || i < n) {
			rc = tw_err_set(err, TW_EPARSE, "%zu bytes of trailing data after the %s stream at "
					"offset %zu", n - off, wrap_name[w], off);
			goto fail;
		}
	}
	free(s);
	return TW_OK;

fail:
	free(s);
	out->n = n0;
	return rc;
}

enum tw_rc tw_inflate_mem(const void *p, size_t n, size_t max_out, struct tw_buf *out, struct tw_err *err)
{
	const uint8_t *b = p;

	if (is_gzip(b, n))
		return inflate_wrapped(b, n, WRAP_GZIP, max_out, out, err);
	if (is_zlib(b, n, 0))
		return inflate_wrapped(b, n, WRAP_ZLIB, max_out, out, err);
	if (n == 0)
		return tw_err_set(err, TW_EPARSE, "not gzip or zlib data (empty input)");
	if (n == 1)
		return tw_err_set(err, TW_EPARSE, "not gzip or zlib data (1 byte: %02x)", b[0]);
	return tw_err_set(err, TW_EPARSE, "not gzip or zlib data (first bytes %02x %02x)", b[0], b[1]);
}

enum tw_rc tw_inflate_raw(const void *p, size_t n, size_t max_out, struct tw_buf *out, struct tw_err *err)
{
	if (n == 0)
		return tw_err_set(err, TW_EPARSE, "truncated deflate stream (empty input)");
	return inflate_wrapped(p, n, WRAP_RAW, max_out, out, err);
}
