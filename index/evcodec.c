/* SPDX-License-Identifier: Apache-2.0 */
/* index/evcodec.c: struct tw_event <-> bytes. The decoder is the first thing that touches bytes
 * coming back from disk, so it assumes they are hostile: every length is checked against what is
 * left, every varint must be minimal, and nothing is allocated before the event is validated.
 *
 * Event encoding, version 1 (also in index/FORMAT.md):
 *
 *   u8      version            1
 *   u8      head               bits 0-3 kind (1..TW_KIND_MAX); bits 4-5 read_only
 *                              (0 absent, 1 false, 2 true; 3 is invalid); bits 6-7 zero
 *   varint  zigzag(time_ms)    zigzag: 0,-1,1,-2,... -> 0,1,2,3,...
 *   varint  presence bitmap    bit i set = field with disk id i present (disk ids below)
 *   for each present field, by ascending disk id:
 *     varint len (>= 1), len bytes
 *   varint  nresources         <= UINT32_MAX
 *   for each resource: varint len (may be 0), len bytes
 *   varint  raw len, raw bytes
 *
 *   varint = unsigned LEB128, 7 bits per byte, least significant group first, high bit = more.
 *   At most 10 bytes, minimal (no trailing 0x00 group), the 10th byte is 0 or 1.
 *
 * Invariants:
 *  1. Every encoding the decoder accepts is canonical: re-encoding the decoded event gives the
 *     same bytes. That is what makes "decode(bytes) succeeded" mean "these are the bytes we wrote"
 *     as far as the codec can tell (checksums are the WAL's and segments' job).
 *  2. The decoder reads only inside p[0..n) and allocates only after the whole event validated,
 *     at most 16 bytes (one tw_str) per resource, each resource costing at least one input byte.
 *  3. Disk field ids are fixed here (disk_field[]), not by the order of enum tw_field, which is
 *     part of no on-disk format. A new field takes the next disk id.
 */
#include "index/evcodec.h"

#include <string.h>

/* Disk id -> field. Append only; never reorder. */
static const enum tw_field disk_field[] = {
	TW_F_EVENT_ID,       /* 0 */
	TW_F_EVENT_NAME,     /* 1 */
	TW_F_EVENT_SOURCE,   /* 2 */
	TW_F_REGION,         /* 3 */
	TW_F_ACCOUNT,        /* 4 */
	TW_F_PRINCIPAL,      /* 5 */
	TW_F_IDENTITY_TYPE,  /* 6 */
	TW_F_USER_NAME,      /* 7 */
	TW_F_ACCESS_KEY,     /* 8 */
	TW_F_SESSION_ISSUER, /* 9 */
	TW_F_SSO_USER,       /* 10 */
	TW_F_SOURCE_IP,      /* 11 */
	TW_F_USER_AGENT,     /* 12 */
	TW_F_ERROR_CODE,     /* 13 */
	TW_F_ERROR_MESSAGE,  /* 14 */
	TW_F_EVENT_TYPE,     /* 15 */
	TW_F_LOG_GROUP,      /* 16 */
	TW_F_LOG_STREAM,     /* 17 */
	TW_F_MESSAGE,        /* 18 */
};
#define NDISK ((unsigned)(sizeof disk_field / sizeof disk_field[0]))
_Static_assert(sizeof disk_field / sizeof disk_field[0] == TW_F__COUNT,
	       "a field was added to enum tw_field: give it the next disk id in disk_field[]");
_Static_assert(TW_KIND_MAX <= 15, "kind must fit in 4 bits of the head byte");

#define HEAD_KIND_MASK 0x0fu
#define HEAD_RO_SHIFT 4
#define HEAD_RO_MASK 0x30u
#define HEAD_RESERVED 0xc0u

/* ---- encoding ----------------------------------------------------------------------------- */

static enum tw_rc check_event(const struct tw_event *ev, struct tw_err *err)
{
	if ((int)ev->kind < 1 || (int)ev->kind > TW_KIND_MAX)
		return tw_err_set(err, TW_EINVAL, "event kind %d is not a valid kind", (int)ev->kind);
	if (ev->read_only < -1 || ev->read_only > 1)
		return tw_err_set(err, TW_EINVAL, "event read_only is %d, not -1, 0 or 1", ev->read_only);
	for (unsigned i = 0; i < TW_F__COUNT; i++)
		if (ev->f[i].n && !ev->f[i].p)
			return tw_err_set(err, TW_EINVAL, "event field %s has length %zu and no bytes",
					  tw_field_name((enum tw_field)i), ev->f[i].n);
	if (ev->nresources && !ev->resources)
		return tw_err_set(err, TW_EINVAL, "event has %u resources and no array", ev->nresources);
	for (uint32_t i = 0; i < ev->nresources; i++)
		if (ev->resources[i].n && !ev->resources[i].p)
			return tw_err_set(err, TW_EINVAL, "event resource %u has length %zu and no bytes", i,
					  ev->resources[i].n);
	if (ev->raw.n && !ev->raw.p)
		return tw_err_set(err, TW_EINVAL, "event raw has length %zu and no bytes", ev->raw.n);
	return TW_OK;
}

/* Validates ev and returns the exact number of bytes its encoding takes in *size (so a batch is
 * sized first, reserved once and then written with plain stores). */
static enum tw_rc encoded_size(const struct tw_event *ev, size_t *size, struct tw_err *err)
{
	enum tw_rc rc = check_event(ev, err);
	uint32_t bitmap = 0;
	size_t n;

	if (rc)
		return rc;
	n = 2 + tw_evcodec_varint_len(tw_evcodec_zigzag(ev->time_ms));
	for (unsigned d = 0; d < NDISK; d++)
		if (ev->f[disk_field[d]].n) {
			bitmap |= (uint32_t)1 << d;
			n += tw_evcodec_varint_len(ev->f[disk_field[d]].n) + ev->f[disk_field[d]].n;
		}
	n += tw_evcodec_varint_len(bitmap);
	n += tw_evcodec_varint_len(ev->nresources);
	for (uint32_t i = 0; i < ev->nresources; i++)
		n += tw_evcodec_varint_len(ev->resources[i].n) + ev->resources[i].n;
	n += tw_evcodec_varint_len(ev->raw.n) + ev->raw.n;
	*size = n;
	return TW_OK;
}

static uint8_t *put_str(uint8_t *dst, struct tw_str s)
{
	dst += tw_evcodec_varint_put(dst, s.n);
	if (s.n)
		memcpy(dst, s.p, s.n);
	return dst + s.n;
}

/* Writes the encoding of a checked ev at dst (room for encoded_size bytes); returns its end. */
static uint8_t *write_one(uint8_t *dst, const struct tw_event *ev)
{
	uint32_t bitmap = 0;

	*dst++ = TW_EVCODEC_VERSION;
	*dst++ = (uint8_t)((unsigned)ev->kind |
			   (unsigned)(ev->read_only < 0 ? 0 : ev->read_only + 1) << HEAD_RO_SHIFT);
	for (unsigned d = 0; d < NDISK; d++)
		if (ev->f[disk_field[d]].n)
			bitmap |= (uint32_t)1 << d;
	dst += tw_evcodec_varint_put(dst, tw_evcodec_zigzag(ev->time_ms));
	dst += tw_evcodec_varint_put(dst, bitmap);
	for (unsigned d = 0; d < NDISK; d++)
		if (ev->f[disk_field[d]].n)
			dst = put_str(dst, ev->f[disk_field[d]]);
	dst += tw_evcodec_varint_put(dst, ev->nresources);
	for (uint32_t i = 0; i < ev->nresources; i++)
		dst = put_str(dst, ev->resources[i]);
	return put_str(dst, ev->raw);
}

enum tw_rc tw_evcodec_encode(struct tw_buf *out, const struct tw_event *ev, struct tw_err *err)
{
	size_t size;
	enum tw_rc rc;

	if ((rc = encoded_size(ev, &size, err)) || (rc = tw_buf_reserve(out, size, err)))
		return rc;
	out->n = (size_t)((char *)write_one((uint8_t *)out->p + out->n, ev) - out->p);
	return TW_OK;
}

/* Encodes ev[sel[i]] (or ev[i] when sel is NULL) for i < n: sizes and checks every event first,
 * reserves once, then writes; nothing is written on failure. */
static enum tw_rc encode_sel(struct tw_buf *out, const struct tw_event *ev, const uint32_t *sel,
			     size_t n, struct tw_err *err)
{
	size_t total = tw_evcodec_varint_len(n), size;
	uint8_t *dst;
	enum tw_rc rc;

	for (size_t i = 0; i < n; i++) {
		if ((rc = encoded_size(&ev[sel ? sel[i] : i], &size, err))) {
			tw_err_prefix(err, "batch event %zu", i);
			return rc;
		}
		if (size > SIZE_MAX - total)
			return tw_err_set(err, TW_ELIMIT, "batch of %zu events too large to encode", n);
		total += size;
	}
	if ((rc = tw_buf_reserve(out, total, err)))
		return rc;
	dst = (uint8_t *)out->p + out->n;
	dst += tw_evcodec_varint_put(dst, n);
	for (size_t i = 0; i < n; i++)
		dst = write_one(dst, &ev[sel ? sel[i] : i]);
	out->n = (size_t)((char *)dst - out->p);
	return TW_OK;
}

enum tw_rc tw_evcodec_encode_batch(struct tw_buf *out, const struct tw_event *ev, size_t n,
				   struct tw_err *err)
{
	return encode_sel(out, ev, NULL, n, err);
}

enum tw_rc tw_evcodec_encode_batch_sel(struct tw_buf *out, const struct tw_event *ev, const uint32_t *sel,
				       size_t n, struct tw_err *err)
{
	if (n && !sel)
		return tw_err_set(err, TW_EINVAL, "encode_batch_sel: no selection");
	return encode_sel(out, ev, sel, n, err);
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* A read position in untrusted bytes. */
struct cur {
	const uint8_t *p; /* first byte of the input */
	size_t n;         /* input length */
	size_t off;       /* next byte to read; off <= n always */
};

static enum tw_rc get_varint(struct cur *c, const char *what, uint64_t *out, struct tw_err *err)
{
	size_t start = c->off;
	uint64_t v = 0;

	for (unsigned i = 0;; i++) {
		uint8_t b;
		if (c->off >= c->n)
			return tw_err_set(err, TW_ECORRUPT, "offset %zu: %s: truncated varint", start, what);
		b = c->p[c->off++];
		if (i == 9 && b > 1)
			return tw_err_set(err, TW_ECORRUPT, "offset %zu: %s: varint overflows 64 bits",
					  start, what);
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0)
				return tw_err_set(err, TW_ECORRUPT, "offset %zu: %s: non-minimal varint",
						  start, what);
			*out = v;
			return TW_OK;
		}
	}
}

/* Reads a length-prefixed string; s points into the input ({NULL, 0} when empty). */
static enum tw_rc get_str(struct cur *c, const char *what, struct tw_str *s, struct tw_err *err)
{
	uint64_t len;
	enum tw_rc rc = get_varint(c, what, &len, err);
	if (rc)
		return rc;
	if (len > c->n - c->off)
		return tw_err_set(err, TW_ECORRUPT,
				  "offset %zu: %s: length %llu runs past the end (%zu bytes left)", c->off,
				  what, (unsigned long long)len, c->n - c->off);
	s->p = len ? (const char *)c->p + c->off : NULL;
	s->n = (size_t)len;
	c->off += (size_t)len;
	return TW_OK;
}

enum tw_rc tw_evcodec_decode(const char *p, size_t n, size_t *used, struct tw_event *ev,
			     struct tw_arena *a, struct tw_err *err)
{
	struct cur c = { (const uint8_t *)p, n, 0 };
	struct tw_event e;
	uint64_t v, bitmap, nres;
	size_t res_off;
	unsigned kind, ro;
	struct tw_str s;
	enum tw_rc rc;

	memset(&e, 0, sizeof e);
	if (n < 2)
		return tw_err_set(err, TW_ECORRUPT, "event truncated: %zu bytes, need at least %d", n,
				  TW_EVCODEC_MIN_EVENT);
	if (c.p[0] != TW_EVCODEC_VERSION)
		return tw_err_set(err, TW_EUNSUP, "event format version %u, this build reads %d",
				  c.p[0], TW_EVCODEC_VERSION);
	kind = c.p[1] & HEAD_KIND_MASK;
	ro = (c.p[1] & HEAD_RO_MASK) >> HEAD_RO_SHIFT;
	if (c.p[1] & HEAD_RESERVED)
		return tw_err_set(err, TW_ECORRUPT, "offset 1: reserved bits set in head byte 0x%02x",
				  c.p[1]);
	if (kind < 1 || kind > TW_KIND_MAX)
		return tw_err_set(err, TW_ECORRUPT, "offset 1: unknown event kind %u", kind);
	if (ro == 3)
		return tw_err_set(err, TW_ECORRUPT, "offset 1: invalid read_only code 3");
	e.kind = (enum tw_kind)kind;
	e.read_only = (int8_t)((int)ro - 1);
	c.off = 2;

	if ((rc = get_varint(&c, "time", &v, err)))
		return rc;
	e.time_ms = tw_evcodec_unzigzag(v);
	if ((rc = get_varint(&c, "field bitmap", &bitmap, err)))
		return rc;
	if (bitmap >> NDISK)
		return tw_err_set(err, TW_ECORRUPT, "field bitmap 0x%llx has unknown field bits",
				  (unsigned long long)bitmap);
	for (unsigned d = 0; d < NDISK; d++) {
		if (!(bitmap >> d & 1))
			continue;
		if ((rc = get_str(&c, tw_field_name(disk_field[d]), &s, err)))
			return rc;
		if (s.n == 0) /* absent fields are not in the bitmap: present ones are non-empty */
			return tw_err_set(err, TW_ECORRUPT, "offset %zu: field %s present with length 0",
					  c.off - 1, tw_field_name(disk_field[d]));
		e.f[disk_field[d]] = s;
	}

	/* Resources: validate them all first, allocate only then (invariant 2). */
	if ((rc = get_varint(&c, "resource count", &nres, err)))
		return rc;
	if (nres > UINT32_MAX || nres > c.n - c.off)
		return tw_err_set(err, TW_ECORRUPT,
				  "offset %zu: %llu resources cannot fit in the %zu bytes left", c.off,
				  (unsigned long long)nres, c.n - c.off);
	res_off = c.off;
	for (uint64_t i = 0; i < nres; i++)
		if ((rc = get_str(&c, "resource", &s, err)))
			return rc;
	if ((rc = get_str(&c, "raw", &e.raw, err)))
		return rc;

	if (nres) {
		struct cur rc2 = { c.p, c.n, res_off };
		e.resources = tw_arena_alloc(a, (size_t)nres * sizeof *e.resources, err);
		if (!e.resources)
			return err ? err->rc : TW_ENOMEM;
		for (uint64_t i = 0; i < nres; i++)
			get_str(&rc2, "resource", &e.resources[i], NULL); /* validated above */
		e.nresources = (uint32_t)nres;
	}
	*ev = e;
	if (used)
		*used = c.off;
	return TW_OK;
}

enum tw_rc tw_evcodec_decode_batch(const char *p, size_t n, unsigned flags, struct tw_batch *batch,
				   struct tw_err *err)
{
	struct cur c = { (const uint8_t *)p, n, 0 };
	size_t first = batch->n, used;
	const char *base = p;
	uint64_t count;
	enum tw_rc rc;

	if (flags & ~TW_EVCODEC_BORROW)
		return tw_err_set(err, TW_EINVAL, "unknown evcodec flags 0x%x", flags);
	rc = get_varint(&c, "batch count", &count, err);
	if (rc)
		return rc;
	if (count > (n - c.off) / TW_EVCODEC_MIN_EVENT)
		return tw_err_set(err, TW_ECORRUPT,
				  "batch of %llu events cannot fit in %zu bytes", (unsigned long long)count,
				  n - c.off);
	if (!(flags & TW_EVCODEC_BORROW) && n) {
		char *copy = tw_arena_alloc(&batch->arena, n, err);
		if (!copy)
			return err ? err->rc : TW_ENOMEM;
		memcpy(copy, p, n);
		base = copy;
	}
	for (uint64_t i = 0; i < count; i++) {
		struct tw_event *ev = tw_batch_push(batch, err);
		if (!ev) {
			rc = err ? err->rc : TW_ENOMEM;
			goto fail;
		}
		rc = tw_evcodec_decode(base + c.off, n - c.off, &used, ev, &batch->arena, err);
		if (rc) {
			tw_err_prefix(err, "batch event %llu at offset %zu", (unsigned long long)i, c.off);
			goto fail;
		}
		c.off += used;
	}
	if (c.off != n) {
		rc = tw_err_set(err, TW_ECORRUPT, "batch: %zu trailing bytes after %llu events",
				n - c.off, (unsigned long long)count);
		goto fail;
	}
	return TW_OK;
fail:
	while (batch->n > first)
		tw_batch_pop(batch);
	return rc;
}
