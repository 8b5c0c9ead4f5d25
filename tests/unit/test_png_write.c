/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_png_write.c: alerts/png.c. Every image is decoded back by two independent
 * decoders and compared pixel for pixel: one here (a bitwise CRC-32 written from the PNG spec's
 * polynomial, zlib inflate, all five row filters), and tests/tools/email_check.py (Python zlib +
 * struct). The IHDR bytes are checked against the layout in the PNG specification. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "alerts/png.h"
#include "tests/helpers/helpers.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* CRC-32 as the PNG spec defines it (reflected polynomial 0xedb88320), bit by bit. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
	}
	return c ^ 0xffffffffu;
}

struct decoded {
	unsigned w, h;
	uint8_t *rgb; /* w * h * 3 */
};

static int paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
	return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Decodes 8-bit palette or RGB PNGs; fails the test on any structural error. */
static void decode(const uint8_t *d, size_t n, struct decoded *out)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a };
	uint8_t *idat = NULL, pal[768];
	size_t nidat = 0, pos = 8, npal = 0;
	unsigned w = 0, h = 0, colour = 0, seen_end = 0, nchunks = 0;

	cr_assert(n >= 8 && memcmp(d, sig, 8) == 0, "bad signature");
	while (pos < n) {
		cr_assert(pos + 12 <= n, "truncated chunk at %zu", pos);
		uint32_t len = rd32(d + pos);
		cr_assert(pos + 12 + len <= n, "chunk overruns the file");
		const uint8_t *type = d + pos + 4, *body = d + pos + 8;
		cr_assert_eq(rd32(body + len), crc_bitwise(type, len + 4), "bad CRC in %.4s", (const char *)type);
		cr_assert(!seen_end, "chunk after IEND");
		if (nchunks == 0)
			cr_assert(memcmp(type, "IHDR", 4) == 0, "first chunk is %.4s", (const char *)type);
		if (memcmp(type, "IHDR", 4) == 0) {
			cr_assert_eq(len, 13);
			w = rd32(body);
			h = rd32(body + 4);
			cr_assert_eq(body[8], 8, "bit depth");
			colour = body[9];
			cr_assert(colour == 2 || colour == 3);
			cr_assert(body[10] == 0 && body[11] == 0 && body[12] == 0);
		} else if (memcmp(type, "PLTE", 4) == 0) {
			cr_assert(len % 3 == 0 && len <= 768 && len > 0);
			memcpy(pal, body, len);
			npal = len / 3;
		} else if (memcmp(type, "IDAT", 4) == 0) {
			idat = realloc(idat, nidat + len);
			memcpy(idat + nidat, body, len);
			nidat += len;
		} else if (memcmp(type, "IEND", 4) == 0) {
			cr_assert_eq(len, 0);
			seen_end = 1;
		}
		nchunks++;
		pos += 12 + len;
	}
	cr_assert(seen_end, "no IEND");
	unsigned bpp = colour == 2 ? 3 : 1;
	size_t stride = (size_t)w * bpp, rawn = (stride + 1) * h;
	uint8_t *raw = malloc(rawn + 1);
	uLongf got = rawn + 1;
	cr_assert_eq(uncompress(raw, &got, idat, nidat), Z_OK);
	cr_assert_eq(got, rawn, "inflated %lu bytes, want %zu", (unsigned long)got, rawn);
	out->w = w;
	out->h = h;
	out->rgb = malloc((size_t)w * h * 3);
	uint8_t *prev = calloc(stride, 1), *cur = malloc(stride);
	for (unsigned y = 0; y < h; y++) {
		const uint8_t *r = raw + y * (stride + 1);
		for (size_t i = 0; i < stride; i++) {
			int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0, p;
			switch (r[0]) {
			case 0: p = 0; break;
			case 1: p = a; break;
			case 2: p = b; break;
			case 3: p = (a + b) / 2; break;
			case 4: p = paeth(a, b, c); break;
			default: cr_assert_fail("filter type %u", r[0]); p = 0;
			}
			cur[i] = (uint8_t)(r[1 + i] + p);
		}
		for (unsigned x = 0; x < w; x++) {
			uint8_t *o = out->rgb + ((size_t)y * w + x) * 3;
			if (colour == 2) {
				memcpy(o, cur + x * 3, 3);
			} else {
				cr_assert(cur[x] < npal, "index %u outside a palette of %zu", cur[x], npal);
				memcpy(o, pal + cur[x] * 3, 3);
			}
		}
		memcpy(prev, cur, stride);
	}
	free(prev);
	free(cur);
	free(raw);
	free(idat);
}

/* Decodes with tests/tools/email_check.py and compares with want (skips without python3). */
static void python_matches(const struct tw_buf *png, unsigned w, unsigned h, const uint8_t *want)
{
	if (access("/usr/bin/python3", X_OK) != 0)
		return;
	char *dir = tw_test_tmpdir(), *in = tw_test_join(dir, "x.png"), *out = tw_test_join(dir, "x.raw");
	char *script = tw_test_join(tw_test_src(), "tests/tools/email_check.py"), head[32];
	const char *argv[] = { "/usr/bin/python3", script, "png", in, out, NULL };
	struct tw_test_run run;
	size_t n;

	tw_test_write_file(in, png->p, png->n);
	tw_test_run(&run, NULL, argv);
	cr_assert_eq(run.status, 0, "python decoder: %s", run.err);
	char *raw = tw_test_read_file(out, &n);
	int hl = snprintf(head, sizeof head, "%u %u\n", w, h);
	cr_assert_eq(n, (size_t)hl + (size_t)w * h * 3);
	cr_assert(memcmp(raw, head, (size_t)hl) == 0);
	cr_assert(memcmp(raw + hl, want, (size_t)w * h * 3) == 0, "python decoded other pixels");
	free(raw);
	tw_test_run_free(&run);
	free(script);
	free(in);
	free(out);
	tw_test_tmpdir_free(dir);
}

Test(png_write, palette_image_decodes_to_the_same_pixels, .timeout = 30)
{
	enum { W = 37, H = 23, NPAL = 7 };
	uint8_t px[W * H], pal[NPAL * 3], want[W * H * 3];
	struct tw_buf b;
	struct tw_err err;
	struct decoded d;

	for (int i = 0; i < NPAL * 3; i++)
		pal[i] = (uint8_t)(i * 37 + 11);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			px[y * W + x] = (uint8_t)((x * 3 + y * 5 + x * y) % NPAL);
			memcpy(want + (y * W + x) * 3, pal + px[y * W + x] * 3, 3);
		}
	tw_buf_init(&b, 1 << 20);
	cr_assert_eq(tw_png_write_indexed(px, W, H, pal, NPAL, &b, &err), TW_OK, "%s", err.msg);
	/* IHDR right after the signature: length 13, "IHDR", 37, 23, depth 8, colour 3, 0, 0, 0. */
	static const uint8_t ihdr[] = { 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 37, 0, 0, 0, 23, 8, 3, 0, 0, 0 };
	cr_assert(memcmp(b.p + 8, ihdr, sizeof ihdr) == 0);
	/* PLTE follows IHDR with exactly NPAL entries. */
	cr_assert_eq(rd32((const uint8_t *)b.p + 33), NPAL * 3);
	cr_assert(memcmp(b.p + 37, "PLTE", 4) == 0);
	decode((const uint8_t *)b.p, b.n, &d);
	cr_assert_eq(d.w, W);
	cr_assert_eq(d.h, H);
	cr_assert(memcmp(d.rgb, want, sizeof want) == 0);
	python_matches(&b, W, H, want);
	free(d.rgb);
	tw_buf_free(&b);
}

Test(png_write, rgb_image_decodes_to_the_same_pixels, .timeout = 30)
{
	enum { W = 50, H = 40 };
	uint8_t px[W * H * 3];
	struct tw_buf b;
	struct tw_err err;
	struct decoded d;

	for (int i = 0; i < W * H * 3; i++)
		px[i] = (uint8_t)(i * 7 + (i / 150) * 13);
	tw_buf_init(&b, 1 << 20);
	cr_assert_eq(tw_png_write_rgb(px, W, H, &b, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(((const uint8_t *)b.p)[25], 2, "colour type 2");
	decode((const uint8_t *)b.p, b.n, &d);
	cr_assert_eq(d.w, W);
	cr_assert_eq(d.h, H);
	cr_assert(memcmp(d.rgb, px, sizeof px) == 0);
	python_matches(&b, W, H, px);
	free(d.rgb);
	tw_buf_free(&b);
}

Test(png_write, one_pixel_image)
{
	uint8_t px = 0, pal[3] = { 0xff, 0x80, 0x01 };
	struct tw_buf b;
	struct tw_err err;
	struct decoded d;

	tw_buf_init(&b, 4096);
	cr_assert_eq(tw_png_write_indexed(&px, 1, 1, pal, 1, &b, &err), TW_OK);
	/* Ends with the fixed IEND chunk: length 0, "IEND", CRC ae 42 60 82. */
	static const uint8_t iend[] = { 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82 };
	cr_assert(memcmp(b.p + b.n - 12, iend, 12) == 0);
	decode((const uint8_t *)b.p, b.n, &d);
	cr_assert(d.w == 1 && d.h == 1 && memcmp(d.rgb, pal, 3) == 0);
	free(d.rgb);
	tw_buf_free(&b);
}

Test(png_write, rejects_bad_input_and_respects_the_cap)
{
	uint8_t px[16] = { 0 }, pal[6] = { 0 };
	struct tw_buf b;
	struct tw_err err;

	tw_buf_init(&b, 1 << 20);
	cr_assert_eq(tw_png_write_indexed(px, 0, 4, pal, 2, &b, &err), TW_EINVAL);
	cr_assert_eq(tw_png_write_indexed(px, 4, 0, pal, 2, &b, &err), TW_EINVAL);
	cr_assert_eq(tw_png_write_indexed(px, TW_PNG_MAX_DIM + 1, 1, pal, 2, &b, &err), TW_EINVAL);
	cr_assert_eq(tw_png_write_rgb(px, 4096, 4096, &b, &err), TW_EINVAL, "over the pixel cap");
	cr_assert_eq(tw_png_write_indexed(px, 4, 4, pal, 0, &b, &err), TW_EINVAL);
	cr_assert_eq(tw_png_write_indexed(px, 4, 4, pal, 257, &b, &err), TW_EINVAL);
	px[5] = 2;
	cr_assert_eq(tw_png_write_indexed(px, 4, 4, pal, 2, &b, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "pixel 5"), "%s", err.msg);
	cr_assert_eq(b.n, 0);
	tw_buf_free(&b);

	px[5] = 0;
	tw_buf_init(&b, 40); /* the signature and IHDR fit, the rest does not */
	cr_assert_eq(tw_png_write_indexed(px, 4, 4, pal, 2, &b, &err), TW_ELIMIT);
	cr_assert_eq(b.n, 0, "partial PNG left in the buffer");
	tw_buf_free(&b);
}
