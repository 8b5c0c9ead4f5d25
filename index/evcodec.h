/* SPDX-License-Identifier: Apache-2.0 */
/* index/evcodec.h: the on-disk encoding of one struct tw_event and of a batch of them (the payload
 * of a WAL frame, later the records inside segment blocks). Lossless, compact (LEB128 varints,
 * zigzag time, a presence bitmap), versioned; decoding is zero copy and treats its input as
 * hostile. Byte layout: index/FORMAT.md, "Event encoding". Knows nothing of files. */
#ifndef TW_INDEX_EVCODEC_H
#define TW_INDEX_EVCODEC_H

#include <stddef.h>
#include <stdint.h>

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
