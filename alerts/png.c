/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/png.c: PNG encoding with zlib's deflate and crc32 (no image library).
 *
 * Layout written (PNG 1.2 / ISO 15948):
 *   8-byte signature 89 50 4E 47 0D 0A 1A 0A
 *   chunk*: 4-byte big-endian length, 4-byte type, data, CRC32 over type + data
 *   IHDR: width(4) height(4) depth=8 colour(3 palette | 2 RGB) compression=0 filter=0 interlace=0
 *   PLTE (palette images only), one IDAT (zlib stream of filtered rows), IEND.
 * Each filtered row is one filter-type byte followed by the row's bytes. */
#include "alerts/png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static enum tw_rc chunk(struct tw_buf *out, const char *type, const uint8_t *data, size_t n,
			struct tw_err *err)
{
	uint8_t hdr[8], tail[4];
	uLong crc;
	enum tw_rc rc;

	if (n > 0x7fffffffu)
		return tw_err_set(err, TW_ELIMIT, "png: %s chunk of %zu bytes is too large", type, n);
	be32(hdr, (uint32_t)n);
	memcpy(hdr + 4, type, 4);
	crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, hdr + 4, 4);
	if (n)
		crc = crc32(crc, data, (uInt)n);
	be32(tail, (uint32_t)crc);
	if ((rc = tw_buf_append(out, hdr, 8, err)) || (rc = tw_buf_append(out, data, n, err)) ||
	    (rc = tw_buf_append(out, tail, 4, err)))
		return rc;
	return TW_OK;
}

/* Deflates raw (n bytes) and writes the whole PNG around it. */
static enum tw_rc finish(const uint8_t *raw, size_t n, unsigned w, unsigned h, int colour,
			 const uint8_t *pal, unsigned npal, struct tw_buf *out, struct tw_err *err)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a };
	uint8_t ihdr[13];
	uLongf zn = compressBound((uLong)n);
	uint8_t *z = malloc(zn);
	size_t start = out->n;
	enum tw_rc rc;
	int zrc;

	if (!z)
		return tw_err_set(err, TW_ENOMEM, "png: out of memory for %lu compressed bytes",
				  (unsigned long)zn);
	zrc = compress2(z, &zn, raw, (uLong)n, 9);
	if (zrc != Z_OK) {
		free(z);
		return tw_err_set(err, TW_EIO, "png: zlib compress2 failed (%d)", zrc);
	}
	be32(ihdr, w);
	be32(ihdr + 4, h);
	ihdr[8] = 8;
	ihdr[9] = (uint8_t)colour;
	ihdr[10] = ihdr[11] = ihdr[12] = 0;
	if ((rc = tw_buf_append(out, sig, sizeof sig, err)) || (rc = chunk(out, "IHDR", ihdr, 13, err)) ||
	    (colour == 3 && (rc = chunk(out, "PLTE", pal, 3u * npal, err))) ||
	    (rc = chunk(out, "IDAT", z, zn, err)) || (rc = chunk(out, "IEND", NULL, 0, err)))
		out->n = start;
	free(z);
	return rc;
}

static enum tw_rc check_dims(unsigned w, unsigned h, struct tw_err *err)
{
	if (w == 0 || h == 0 || w > TW_PNG_MAX_DIM || h > TW_PNG_MAX_DIM ||
	    (uint64_t)w * h > TW_PNG_MAX_PIXELS)
		return tw_err_set(err, TW_EINVAL, "png: image size %ux%u outside 1x1..%ux%u (max %u pixels)",
				  w, h, TW_PNG_MAX_DIM, TW_PNG_MAX_DIM, TW_PNG_MAX_PIXELS);
	return TW_OK;
}

enum tw_rc tw_png_write_indexed(const uint8_t *px, unsigned w, unsigned h, const uint8_t *pal,
				unsigned npal, struct tw_buf *out, struct tw_err *err)
{
	size_t stride, n, y, i;
	uint8_t *raw;
	enum tw_rc rc;

	if ((rc = check_dims(w, h, err)))
		return rc;
	if (npal == 0 || npal > 256 || !pal || !px)
		return tw_err_set(err, TW_EINVAL, "png: palette of %u colours (want 1..256)", npal);
	for (i = 0; i < (size_t)w * h; i++)
		if (px[i] >= npal)
			return tw_err_set(err, TW_EINVAL, "png: pixel %zu has index %u >= palette size %u",
					  i, px[i], npal);
	stride = (size_t)w + 1;
	n = stride * h;
	if (!(raw = malloc(n)))
		return tw_err_set(err, TW_ENOMEM, "png: out of memory for %zu bytes", n);
	for (y = 0; y < h; y++) {
		raw[y * stride] = 0; /* filter None: recommended for palette images */
		memcpy(raw + y * stride + 1, px + y * w, w);
	}
	rc = finish(raw, n, w, h, 3, pal, npal, out, err);
	free(raw);
	return rc;
}

enum tw_rc tw_png_write_rgb(const uint8_t *px, unsigned w, unsigned h, struct tw_buf *out,
			    struct tw_err *err)
{
	size_t stride, n, y, x;
	uint8_t *raw;
	enum tw_rc rc;

	if ((rc = check_dims(w, h, err)))
		return rc;
	if (!px)
		return tw_err_set(err, TW_EINVAL, "png: no pixels");
	stride = (size_t)w * 3 + 1;
	n = stride * h;
	if (!(raw = malloc(n)))
		return tw_err_set(err, TW_ENOMEM, "png: out of memory for %zu bytes", n);
	for (y = 0; y < h; y++) {
		const uint8_t *row = px + y * (size_t)w * 3;
		uint8_t *dst = raw + y * stride;
		dst[0] = 1; /* filter Sub: each byte minus the byte 3 to its left */
		for (x = 0; x < (size_t)w * 3; x++)
			dst[1 + x] = (uint8_t)(row[x] - (x >= 3 ? row[x - 3] : 0));
	}
	rc = finish(raw, n, w, h, 2, NULL, 0, out, err);
	free(raw);
	return rc;
}
