/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/detect_int.h: private to alerts/insight.c and alerts/firstseen.c: the binary state
 * writer/reader (native byte order, bounds-checked), the 64-bit string hash, and the shared
 * frame of a saved state: magic (8 bytes), version (u32), payload, CRC-32 (zlib) of all before. */
#ifndef TW_ALERTS_DETECT_INT_H
#define TW_ALERTS_DETECT_INT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/err.h"

static inline uint64_t tw_dh_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= 0xff; /* separator */
	h *= 0x100000001b3ULL;
	return h;
}
#define TW_DH_SEED 0xcbf29ce484222325ULL

/* 64-bit finaliser (splitmix64): FNV's low bits are weak for table indexing. */
static inline uint64_t tw_dh_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* ---- writer: appends to a tw_buf; the first failure sticks in err ---------------------------- */
static inline void tw_dw(struct tw_buf *b, const void *p, size_t n, struct tw_err *err)
{
	if (err->rc == TW_OK)
		(void)tw_buf_append(b, p, n, err);
}
static inline void tw_dw_u32(struct tw_buf *b, uint32_t v, struct tw_err *err) { tw_dw(b, &v, 4, err); }
static inline void tw_dw_u64(struct tw_buf *b, uint64_t v, struct tw_err *err) { tw_dw(b, &v, 8, err); }
static inline void tw_dw_i64(struct tw_buf *b, int64_t v, struct tw_err *err) { tw_dw(b, &v, 8, err); }
static inline void tw_dw_f64(struct tw_buf *b, double v, struct tw_err *err) { tw_dw(b, &v, 8, err); }
static inline void tw_dw_str(struct tw_buf *b, const char *s, struct tw_err *err)
{
	uint32_t n = s ? (uint32_t)strlen(s) : 0;
	tw_dw_u32(b, n, err);
	tw_dw(b, s, n, err);
}
/* Frame: begin writes magic and version; end appends the CRC of everything from start. */
static inline void tw_dw_begin(struct tw_buf *b, const char magic[8], uint32_t version, struct tw_err *err)
{
	tw_dw(b, magic, 8, err);
	tw_dw_u32(b, version, err);
}
static inline void tw_dw_end(struct tw_buf *b, size_t start, struct tw_err *err)
{
	if (err->rc == TW_OK) {
		uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)b->p + start, (uInt)(b->n - start));
		tw_dw_u32(b, crc, err);
	}
}

/* ---- reader: bounds-checked; a short read sets bad ---------------------------------------------- */
struct tw_dr {
	const unsigned char *p; /* next byte */
	const unsigned char *end; /* one past the payload (the CRC excluded) */
	int bad;                /* 1 after reading past the end or a bad length */
};
static inline void tw_dr_get(struct tw_dr *r, void *dst, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, r->p, n);
	r->p += n;
}
static inline uint32_t tw_dr_u32(struct tw_dr *r) { uint32_t v; tw_dr_get(r, &v, 4); return v; }
static inline uint64_t tw_dr_u64(struct tw_dr *r) { uint64_t v; tw_dr_get(r, &v, 8); return v; }
static inline int64_t tw_dr_i64(struct tw_dr *r) { int64_t v; tw_dr_get(r, &v, 8); return v; }
static inline double tw_dr_f64(struct tw_dr *r) { double v; tw_dr_get(r, &v, 8); return v; }
/* A string into a fresh malloc'd NUL-terminated copy (max bytes), or NULL with bad set. */
static inline char *tw_dr_str(struct tw_dr *r, uint32_t max)
{
	uint32_t n = tw_dr_u32(r);
	char *s;
	if (r->bad || n > max || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	if (!(s = malloc((size_t)n + 1))) {
		r->bad = 1;
		return NULL;
	}
	memcpy(s, r->p, n);
	s[n] = 0;
	r->p += n;
	return s;
}
/* Checks magic, version and CRC of p[0..n); on success r covers the payload. */
static inline enum tw_rc tw_dr_begin(struct tw_dr *r, const void *p, size_t n, const char magic[8], uint32_t version,
				     const char *what, struct tw_err *err)
{
	const unsigned char *b = p;
	uint32_t v, crc;
	if (n < 16 || memcmp(b, magic, 8))
		return tw_err_set(err, TW_ECORRUPT, "%s: not a saved state (bad magic)", what);
	memcpy(&v, b + 8, 4);
	if (v != version)
		return tw_err_set(err, TW_EUNSUP, "%s: state version %u (this build reads %u)", what, v, version);
	memcpy(&crc, b + n - 4, 4);
	if (crc != (uint32_t)crc32(0L, (const Bytef *)b, (uInt)(n - 4)))
		return tw_err_set(err, TW_ECORRUPT, "%s: checksum mismatch", what);
	r->p = b + 12;
	r->end = b + n - 4;
	r->bad = 0;
	return TW_OK;
}

#endif
