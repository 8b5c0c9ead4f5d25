/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/png.h: a minimal PNG writer (8-bit palette or 8-bit RGB, no interlace) built on zlib
 * alone, for the chart in alarm emails. Writes only; never reads or decodes. */
#ifndef TW_ALERTS_PNG_H
#define TW_ALERTS_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define TW_PNG_MAX_DIM 4096          /* width and height are each at most this */
#define TW_PNG_MAX_PIXELS (4u << 20) /* width * height at most this (4 Mi pixels) */

/* Appends a PNG of w x h palette indices (px: row-major, one byte per pixel, each < npal) with
 * palette pal (npal RGB triples, 1..256) to out. Chunks: IHDR (bit depth 8, colour type 3), PLTE,
 * one IDAT (zlib deflate, level 9, filter 0 on every row), IEND, each with its CRC32.
 * Errors: TW_EINVAL (zero or oversized dimensions, bad palette size, an index >= npal),
 * TW_ENOMEM, TW_ELIMIT (out's cap), TW_EIO (zlib failure). out is unchanged on error except for
 * its capacity. Borrowed arguments; thread-safe. */
enum tw_rc tw_png_write_indexed(const uint8_t *px, unsigned w, unsigned h, const uint8_t *pal,
				unsigned npal, struct tw_buf *out, struct tw_err *err);

/* Same for w x h RGB pixels (px: 3 bytes per pixel, row-major): colour type 2, filter 1 (Sub)
 * on every row. */
enum tw_rc tw_png_write_rgb(const uint8_t *px, unsigned w, unsigned h, struct tw_buf *out,
			    struct tw_err *err);

#endif
