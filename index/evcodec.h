/* SPDX-License-Identifier: Apache-2.0 */
/* index/evcodec.h: the on-disk encoding of one struct tw_event and of a batch of them (the payload
 * of a WAL frame, later the records inside segment blocks). Lossless, compact (LEB128 varints,
 * zigzag time, a presence bitmap), versioned; decoding is zero copy and treats its input as
 * hostile. Byte layout: index/FORMAT.md, "Event encoding". Knows nothing of files. */
#ifndef TW_INDEX_EVCODEC_H
#define TW_INDEX_EVCODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"

#define TW_EVCODEC_VERSION 1   /* the leading format byte of every encoded event */
#define TW_EVCODEC_MIN_EVENT 6 /* bytes of the smallest possible encoded event */

/* Appends the encoding of ev to out. Encodes kind, time_ms, read_only, every field, resources and
 * raw; not src_index / src_line. Atomic: on failure out->n is what it was.
 * Errors: TW_EINVAL (kind not in 1..TW_KIND_MAX, read_only not -1/0/1, a slice with n > 0 and a
 * NULL pointer), TW_ELIMIT / TW_ENOMEM from out. ev is borrowed. */
enum tw_rc tw_evcodec_encode(struct tw_buf *out, const struct tw_event *ev, struct tw_err *err);

/* Decodes the one event that starts at p (n bytes available; trailing bytes are allowed and left
 * alone). On success *used (may be NULL) is the bytes it took and *ev is filled; every tw_str of
 * ev points into p (so p must outlive ev; empty strings are {NULL, 0}), the resources array (if
 * any) is allocated in a (required), src_index and src_line are 0.
 * Only canonical encodings are accepted, so a decoded event re-encodes to exactly p[0..*used).
 * Errors: TW_ECORRUPT with the reason and offset (truncated, overlong or non-minimal varint,
 * length past the end, reserved bits set, unknown kind or field), TW_EUNSUP (unknown format
 * version), TW_ELIMIT / TW_ENOMEM from a. Never reads outside p[0..n); allocates at most 16 bytes
 * per input byte, and nothing on corrupt input. *ev and *used are written only on success. */
enum tw_rc tw_evcodec_decode(const char *p, size_t n, size_t *used, struct tw_event *ev,
			     struct tw_arena *a, struct tw_err *err);

/* Appends one batch payload: varint count, then the count events (tw_evcodec_encode each).
 * Atomic like tw_evcodec_encode. ev may be NULL when n == 0. */
enum tw_rc tw_evcodec_encode_batch(struct tw_buf *out, const struct tw_event *ev, size_t n,
				   struct tw_err *err);

/* ---- the varint and zigzag primitives (inline: the codec and the segment's columns run them per
 * field, index/segment.c included) ----------------------------------------------------------- */

/* Writes v as a minimal LEB128 varint at dst (10 bytes of room); returns the bytes written. */
static inline size_t tw_evcodec_varint_put(uint8_t *dst, uint64_t v)
{
	size_t i = 0;
	while (v >= 0x80) {
		dst[i++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	dst[i++] = (uint8_t)v;
	return i;
}

/* The bytes tw_evcodec_varint_put writes for v (1 to 10). */
static inline size_t tw_evcodec_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Zigzag: 0,-1,1,-2,... -> 0,1,2,3,... (a small magnitude makes a short varint). */
static inline uint64_t tw_evcodec_zigzag(int64_t v)
{
	return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

/* The inverse of tw_evcodec_zigzag. */
static inline int64_t tw_evcodec_unzigzag(uint64_t z)
{
	uint64_t u = (z >> 1) ^ (0 - (z & 1));
	int64_t v;
	memcpy(&v, &u, sizeof v); /* two's complement reinterpretation, no implementation-defined cast */
	return v;
}

/* Same as tw_evcodec_encode_batch for the events ev[sel[0]], ..., ev[sel[n - 1]] in that order
 * (a subset of a batch without copying its events). sel may be NULL only when n == 0. */
enum tw_rc tw_evcodec_encode_batch_sel(struct tw_buf *out, const struct tw_event *ev, const uint32_t *sel,
				       size_t n, struct tw_err *err);

/* Flags for tw_evcodec_decode_batch. */
#define TW_EVCODEC_BORROW 1u /* events point into p itself (the caller keeps p alive as long as
			      * the events); default: p is first copied into the batch arena, so
			      * the batch owns its bytes as core/event.h requires */

/* Decodes a whole batch payload (exactly n bytes: trailing bytes are corruption) and appends its
 * events to batch (tw_batch_push). All or nothing: on failure the events this call pushed are
 * removed (the arena may keep some bytes until the batch is reset).
 * Errors: as tw_evcodec_decode, with the event's index in the message; TW_EINVAL for bad flags. */
enum tw_rc tw_evcodec_decode_batch(const char *p, size_t n, unsigned flags, struct tw_batch *batch,
				   struct tw_err *err);

#endif
