/* SPDX-License-Identifier: Apache-2.0 */
/* core/codec.h: the blob codecs ingest peels off before it sees JSON: base64 (standard and
 * URL-safe), gzip (one or several members), zlib, raw deflate. Whole-buffer, bounded: every
 * decoder writes into a caller's struct tw_buf and stops with TW_ELIMIT past a cap, so a gzip
 * bomb or a huge base64 string costs at most the cap. No I/O, no global state: every function is
 * thread-safe. Inputs are borrowed for the call; `err` may be NULL everywhere. */
#ifndef TW_CORE_CODEC_H
#define TW_CORE_CODEC_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* What a blob looks like from its first bytes (tw_codec_sniff). */
enum tw_codec {
	TW_CODEC_PLAIN = 0,  /* none of the below: text or JSON as is */
	TW_CODEC_GZIP = 1,   /* 1f 8b 08: gzip member(s) */
	TW_CODEC_ZLIB = 2,   /* 78 xx with a valid FCHECK and no preset dictionary */
	TW_CODEC_BASE64 = 3, /* base64 text that decodes to gzip, zlib or JSON (tw_base64_looks_like) */
};

/* Classifies p[0..n) by its first bytes (and, for base64, a scan of the whole text). Never fails;
 * a wrong guess is caught by the decoder that follows. Thread-safe. */
enum tw_codec tw_codec_sniff(const void *p, size_t n);

/* "plain", "gzip", "zlib", "base64". */
const char *tw_codec_name(enum tw_codec c);

/* Decodes base64 text p[0..n) and appends the bytes to out (out->max applies: TW_ELIMIT
 * "base64 decodes to more than N bytes"). Accepts the standard (+/) and URL-safe (-_) alphabets,
 * even mixed; padding '=' is optional but, when present, must only end the text and complete the
 * last quantum; ASCII whitespace (space, \t, \r, \n, \v, \f) anywhere is ignored. Other bytes, data
 * after padding, or a lone trailing character give TW_EPARSE naming the offset. On failure out->n
 * is restored to its value on entry. Thread-safe. */
enum tw_rc tw_base64_decode(const char *p, size_t n, struct tw_buf *out, struct tw_err *err);

/* 1 if p[0..n) is plausibly a base64-encoded blob worth decoding: only base64 characters,
 * whitespace and final padding, at least 8 significant characters, a length that can be complete,
 * and a first decoded byte that starts gzip, zlib or JSON ('{' or '[', after whitespace). Cheap
 * (one pass over a table); 0 for ordinary words and log lines. */
int tw_base64_looks_like(const char *p, size_t n);

/* Inflates a gzip (one or several concatenated members; trailing NUL padding is ignored) or a
 * zlib stream, detected from the first bytes, appending at most max_out bytes to out (out->max
 * also applies). Errors (out->n restored on failure):
 *   TW_ELIMIT  "inflated size exceeds N bytes" (a gzip bomb stops here, having written N bytes)
 *   TW_EPARSE  "not gzip or zlib data", "truncated gzip stream ...", "gzip CRC mismatch ...",
 *              "zlib Adler-32 mismatch ...", "corrupt deflate data ...", "N bytes of trailing
 *              data after the gzip stream at offset M"
 *   TW_EUNSUP  a zlib stream that needs a preset dictionary, or a compression method other
 *              than deflate
 *   TW_ENOMEM
 * Uses ISA-L (isal_inflate). Thread-safe; allocates ~90 KB of state per call. */
enum tw_rc tw_inflate_mem(const void *p, size_t n, size_t max_out, struct tw_buf *out, struct tw_err *err);

/* Same for a raw deflate stream (no header, no checksum); trailing bytes after the final block
 * are an error. Only for callers that know their input is raw deflate: it cannot be sniffed. */
enum tw_rc tw_inflate_raw(const void *p, size_t n, size_t max_out, struct tw_buf *out, struct tw_err *err);

#endif
