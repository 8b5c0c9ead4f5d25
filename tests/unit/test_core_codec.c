/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_codec.c: base64, sniffing and inflation (core/codec.c). Expected bytes come
 * from independent sources: RFC 4648's test vectors, streams compressed here with zlib (a different
 * implementation from the ISA-L inflater under test), and two CloudWatch envelopes whose payloads
 * were decoded by hand with Python's base64/gzip/zlib modules. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tests/helpers/helpers.h"
#include "core/codec.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* Pseudo-random but compressible text (a log-like line with counters), deterministic. */
static char *sample_text(size_t n)
{
	char *p = malloc(n);
	uint32_t x = 12345;
	cr_assert(p);
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (i % 61 == 60) ? '\n' : "abcdefghij {}\":,0123456789"[(x >> 16) % 26];
	}
	return p;
}

static enum tw_rc b64(const char *s, struct tw_buf *out, struct tw_err *err)
{
	return tw_base64_decode(s, strlen(s), out, err);
}

/* ---- base64 --------------------------------------------------------------------------- */

Test(core_codec, base64_rfc4648_vectors)
{
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	static const char *const dec[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	struct tw_err err = { 0 };

	for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
		struct tw_buf b;
		tw_buf_init(&b, 1024);
		cr_assert_eq(b64(enc[i], &b, &err), TW_OK, "%s: %s", enc[i], err.msg);
		cr_assert_eq(b.n, strlen(dec[i]));
		cr_assert(b.n == 0 || memcmp(b.p, dec[i], b.n) == 0, "%s", enc[i]);
		tw_buf_free(&b);
	}
}

Test(core_codec, base64_padding_is_optional_and_whitespace_ignored)
{
	struct tw_err err = { 0 };
	struct tw_buf b;

	tw_buf_init(&b, 1024);
	cr_assert_eq(b64("Zm9vYg", &b, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(b64("Zm9vYmE", &b, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(b64(" Zm9v\r\nYmFy\n\tZg = = \n", &b, &err), TW_OK, "%s", err.msg);
	/* Appends: "foob" + "fooba" + "foobarf". */
	cr_assert_eq(b.n, 16);
	cr_assert_arr_eq(b.p, "foobfoobafoobarf", 16);
	tw_buf_free(&b);
}

Test(core_codec, base64_accepts_standard_and_url_safe_alphabets)
{
	/* 0xfb 0xff 0xbf encodes as "+/+/" (standard) and "-_-_" (URL-safe). */
	static const unsigned char want[] = { 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf };
	struct tw_err err = { 0 };
	struct tw_buf b;

	tw_buf_init(&b, 64);
	cr_assert_eq(b64("+/+/", &b, &err), TW_OK);
	cr_assert_eq(b64("-_-_", &b, &err), TW_OK);
	cr_assert_eq(b.n, 6);
	cr_assert_arr_eq(b.p, want, 6);
	tw_buf_reset(&b);
	cr_assert_eq(b64("-_8", &b, &err), TW_OK); /* unpadded URL-safe: 0xfb 0xff */
	cr_assert_eq(b.n, 2);
	cr_assert_arr_eq(b.p, want, 2);
	tw_buf_free(&b);
}

Test(core_codec, base64_rejects_bad_input_with_offset_and_restores_buffer)
{
	struct tw_err err = { 0 };
	struct tw_buf b;

	tw_buf_init(&b, 1024);
	cr_assert_eq(tw_buf_append(&b, "keep", 4, &err), TW_OK);

	cr_assert_eq(b64("Zm9v!mFy", &b, &err), TW_EPARSE);
	cr_assert_str_eq(err.msg, "base64: invalid character 0x21 at offset 4");
	cr_assert_eq(b.n, 4);

	cr_assert_eq(b64("Zg==Zm9v", &b, &err), TW_EPARSE);
	cr_assert_str_eq(err.msg, "base64: data after '=' padding at offset 4");

	cr_assert_eq(b64("Zm9vY", &b, &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);

	cr_assert_eq(b64("Zm9v=", &b, &err), TW_EPARSE);
	cr_assert_str_eq(err.msg, "base64: bad '=' padding at offset 4");
	cr_assert_eq(b64("Zg=", &b, &err), TW_EPARSE);
	cr_assert_eq(b64("Zg===", &b, &err), TW_EPARSE);

	cr_assert_eq(b.n, 4, "failures leave the buffer as it was");
	cr_assert_arr_eq(b.p, "keep", 4);
	tw_buf_free(&b);
}

Test(core_codec, base64_stops_at_the_buffer_cap)
{
	struct tw_err err = { 0 };
	struct tw_buf b;

	tw_buf_init(&b, 5);
	cr_assert_eq(b64("Zm9vYmE=", &b, &err), TW_OK, "5 bytes fit: %s", err.msg);
	cr_assert_eq(b.n, 5);
	tw_buf_reset(&b);
	cr_assert_eq(b64("Zm9vYmFy", &b, &err), TW_ELIMIT);
	cr_assert_str_eq(err.msg, "base64 decodes to more than 5 bytes");
	cr_assert_eq(b.n, 0);
	tw_buf_free(&b);
}

Test(core_codec, base64_looks_like_only_encoded_blobs)
{
	/* A gzip blob: "H4sI..." */
	cr_assert(tw_base64_looks_like("H4sIAAAAAAAAAHWPwQqCQBCGX0Xm7EFt", 32));
	/* zlib (78 da) and JSON ('{"' and '[{') */
	cr_assert(tw_base64_looks_like("eNqFj0+LwjAQxe9+ipCzh7Yb1z+30o0ixO3SdhdEpNR2kEDblCTuIuJ33yS1i4dFL0Nmfi/vzVxGCOEGlCqOkJ07wAuE38IszDc0TcMVxWMrED8tSIv84IVMXqezuXn0qBbHlRSnzlINSrOhH2iqJRTNHb4NHFengyol7zQX7ZLXGqQyyp2T9j3eD0b0G1rtsBkgdHHVIF5Zc7B0XfnO1801N3fporGr+YR4hATz2dTzvD/F7W77fUeTJE72aMml0sjGo4E69XX8IDR4Huo/Ck2hFG31X6qp/f2dqHl5ZiawxgscRlH8+Z7ljH5Rln/EbB1t8ej6C87if5I=", 280));
	cr_assert(tw_base64_looks_like("eyJIZWxsbyI6ICJXb3JsZCJ9", 24));
	cr_assert(tw_base64_looks_like("W3siYSI6MX1d", 12));
	/* "{\n  \"a\": 1}" with leading whitespace inside: "ICB7ImEiOjF9" = "  {\"a\":1}" */
	cr_assert(tw_base64_looks_like("ICB7ImEiOjF9", 12));
	/* Text that happens to be valid base64, or encodes plain text: not worth decoding. */
	cr_assert_not(tw_base64_looks_like("SGVsbG8gV29ybGQ=", 16)); /* "Hello World" */
	cr_assert_not(tw_base64_looks_like("HelloWorld", 10));
	cr_assert_not(tw_base64_looks_like("eyJh", 4)); /* too short to matter */
	cr_assert_not(tw_base64_looks_like("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", 36)); /* a JWT */
	cr_assert_not(tw_base64_looks_like("{\"a\":1}", 7));
	cr_assert_not(tw_base64_looks_like("eyJIZWxsbyI6ICJXb3JsZCJ9=", 25)); /* padding that does not fit */
}

/* ---- sniffing ------------------------------------------------------------------------- */

Test(core_codec, sniff_tells_gzip_zlib_base64_plain)
{
	size_t gn, zn;
	unsigned char *gz = tw_test_deflate("hello", 5, 31, &gn);
	unsigned char *zl = tw_test_deflate("hello", 5, 15, &zn);

	cr_assert_eq(tw_codec_sniff(gz, gn), TW_CODEC_GZIP);
	cr_assert_eq(tw_codec_sniff(zl, zn), TW_CODEC_ZLIB);
	cr_assert_eq(tw_codec_sniff("H4sIAAAAAAAAAHWPwQqCQBCGX0Xm", 28), TW_CODEC_BASE64);
	cr_assert_eq(tw_codec_sniff("{\"Records\":[]}", 14), TW_CODEC_PLAIN);
	cr_assert_eq(tw_codec_sniff("", 0), TW_CODEC_PLAIN);
	/* "x^" passes zlib's FCHECK with FDICT clear, but "x " (FDICT set) and "(" lines do not. */
	cr_assert_eq(tw_codec_sniff("x y z", 5), TW_CODEC_PLAIN);
	cr_assert_eq(tw_codec_sniff("(info) started", 14), TW_CODEC_PLAIN);
	cr_assert_str_eq(tw_codec_name(TW_CODEC_ZLIB), "zlib");
	cr_assert_str_eq(tw_codec_name(TW_CODEC_BASE64), "base64");
	free(gz);
	free(zl);
}

/* ---- inflate -------------------------------------------------------------------------- */

static void roundtrip(int wbits, size_t n)
{
	char *text = sample_text(n);
	size_t zn;
	unsigned char *z = tw_test_deflate(text, n, wbits, &zn);
	struct tw_err err = { 0 };
	struct tw_buf out;
	enum tw_rc rc;

	tw_buf_init(&out, 64u << 20);
	rc = wbits < 0 ? tw_inflate_raw(z, zn, n, &out, &err) : tw_inflate_mem(z, zn, n, &out, &err);
	cr_assert_eq(rc, TW_OK, "wbits %d n %zu: %s", wbits, n, err.msg);
	cr_assert_eq(out.n, n);
	cr_assert(memcmp(out.p, text, n) == 0, "wbits %d: bytes differ", wbits);
	tw_buf_free(&out);
	free(z);
	free(text);
}

Test(core_codec, inflate_gzip_zlib_raw_match_zlib_compressor)
{
	roundtrip(31, 0);
	roundtrip(31, 1);
	roundtrip(31, 3u << 20);
	roundtrip(15, 1);
	roundtrip(15, 3u << 20);
	roundtrip(-15, 1000);
	roundtrip(-15, 1u << 20);
}

Test(core_codec, inflate_concatenated_gzip_members_and_nul_padding)
{
	size_t an, bn;
	unsigned char *a = tw_test_deflate("first member\n", 13, 31, &an);
	unsigned char *b = tw_test_deflate("second\n", 7, 31, &bn);
	unsigned char *ab = calloc(1, an + bn + an + 16);
	struct tw_err err = { 0 };
	struct tw_buf out;

	memcpy(ab, a, an);
	memcpy(ab + an, b, bn);
	memcpy(ab + an + bn, a, an);
	tw_buf_init(&out, 1024);
	cr_assert_eq(tw_inflate_mem(ab, an + bn + an, 1024, &out, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(out.n, 13 + 7 + 13);
	cr_assert_arr_eq(out.p, "first member\nsecond\nfirst member\n", 33);
	/* 16 NUL bytes after the last member: ignored, as gzip(1) does. */
	tw_buf_reset(&out);
	cr_assert_eq(tw_inflate_mem(ab, an + bn + an + 16, 1024, &out, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(out.n, 33);
	/* Other trailing bytes are an error. */
	ab[an + bn + an + 3] = 'x';
	cr_assert_eq(tw_inflate_mem(ab, an + bn + an + 16, 1024, &out, &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "trailing data after the gzip stream"), "%s", err.msg);
	cr_assert_eq(out.n, 33, "failure leaves what was there before the call");
	tw_buf_free(&out);
	free(a);
	free(b);
	free(ab);
}

Test(core_codec, inflate_gzip_header_with_name_extra_comment)
{
	/* Built by hand (RFC 1952): FLG = FEXTRA|FNAME|FCOMMENT, then the raw deflate body from zlib,
	 * then CRC-32 and ISIZE computed by zlib's crc32(). */
	static const char text[] = "named member";
	size_t rn;
	unsigned char *raw = tw_test_deflate(text, 12, -15, &rn);
	unsigned char g[256];
	size_t k = 0;
	uLong crc = crc32(0, (const Bytef *)text, 12);
	struct tw_err err = { 0 };
	struct tw_buf out;

	unsigned char hdr[] = { 0x1f, 0x8b, 8, 4 | 8 | 16, 0, 0, 0, 0, 0, 3, 3, 0, 'a', 'b', 'c' };
	memcpy(g, hdr, sizeof hdr);
	k = sizeof hdr;
	memcpy(g + k, "log.json", 9); /* FNAME, NUL-terminated */
	k += 9;
	memcpy(g + k, "hi", 3); /* FCOMMENT */
	k += 3;
	memcpy(g + k, raw, rn);
	k += rn;
	for (int i = 0; i < 4; i++)
		g[k++] = (unsigned char)(crc >> (8 * i));
	for (int i = 0; i < 4; i++)
		g[k++] = (unsigned char)(12 >> (8 * i));
	tw_buf_init(&out, 1024);
	cr_assert_eq(tw_inflate_mem(g, k, 1024, &out, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(out.n, 12);
	cr_assert_arr_eq(out.p, text, 12);
	tw_buf_free(&out);
	free(raw);
}

Test(core_codec, inflate_reports_crc_and_length_mismatch)
{
	char *text = sample_text(5000);
	size_t gn, zn;
	unsigned char *gz = tw_test_deflate(text, 5000, 31, &gn);
	unsigned char *zl = tw_test_deflate(text, 5000, 15, &zn);
	struct tw_err err = { 0 };
	struct tw_buf out;

	tw_buf_init(&out, 1 << 20);
	gz[gn - 8] ^= 0x01; /* CRC-32 */
	cr_assert_eq(tw_inflate_mem(gz, gn, 1 << 20, &out, &err), TW_EPARSE);
	cr_assert(strncmp(err.msg, "gzip CRC mismatch", 17) == 0, "%s", err.msg);
	cr_assert_eq(out.n, 0);
	gz[gn - 8] ^= 0x01;
	gz[gn - 4] ^= 0x01; /* ISIZE */
	cr_assert_eq(tw_inflate_mem(gz, gn, 1 << 20, &out, &err), TW_EPARSE);
	cr_assert(strncmp(err.msg, "gzip CRC mismatch", 17) == 0, "%s", err.msg);
	zl[zn - 1] ^= 0x01; /* Adler-32 */
	cr_assert_eq(tw_inflate_mem(zl, zn, 1 << 20, &out, &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "Adler-32 mismatch"), "%s", err.msg);
	cr_assert_eq(out.n, 0);
	tw_buf_free(&out);
	free(gz);
	free(zl);
	free(text);
}

Test(core_codec, inflate_every_truncation_is_an_error_not_a_crash)
{
	char *text = sample_text(4000);
	size_t gn, zn;
	unsigned char *gz = tw_test_deflate(text, 4000, 31, &gn);
	unsigned char *zl = tw_test_deflate(text, 4000, 15, &zn);
	struct tw_err err = { 0 };
	struct tw_buf out;

	tw_buf_init(&out, 1 << 20);
	for (size_t cut = 0; cut < gn; cut++) {
		/* Copy so that ASan sees reads past the cut. */
		unsigned char *c = malloc(cut ? cut : 1);
		memcpy(c, gz, cut);
		enum tw_rc rc = tw_inflate_mem(c, cut, 1 << 20, &out, &err);
		cr_assert_eq(rc, TW_EPARSE, "cut %zu/%zu: rc %d", cut, gn, rc);
		if (cut >= 10)
			cr_assert(strstr(err.msg, "truncated gzip stream"), "cut %zu: %s", cut, err.msg);
		cr_assert_eq(out.n, 0);
		free(c);
	}
	for (size_t cut = 2; cut < zn; cut++) {
		unsigned char *c = malloc(cut);
		memcpy(c, zl, cut);
		cr_assert_eq(tw_inflate_mem(c, cut, 1 << 20, &out, &err), TW_EPARSE, "zlib cut %zu", cut);
		cr_assert(strstr(err.msg, "truncated zlib stream"), "cut %zu: %s", cut, err.msg);
		free(c);
	}
	tw_buf_free(&out);
	free(gz);
	free(zl);
	free(text);
}

Test(core_codec, inflate_corrupt_body_is_eparse)
{
	char *text = sample_text(20000);
	size_t gn;
	unsigned char *gz = tw_test_deflate(text, 20000, 31, &gn);
	struct tw_err err = { 0 };
	struct tw_buf out;
	int failures = 0;

	tw_buf_init(&out, 1 << 20);
	/* Flip one bit at a time through the deflate body: each either fails cleanly (EPARSE), or
	 * decodes to other bytes that the CRC then catches. Never TW_OK. */
	for (size_t i = 10; i < gn - 8; i += 7) {
		gz[i] ^= 0x10;
		enum tw_rc rc = tw_inflate_mem(gz, gn, 1 << 20, &out, &err);
		gz[i] ^= 0x10;
		cr_assert(rc == TW_EPARSE || rc == TW_ELIMIT, "flip at %zu: rc %d", i, rc);
		failures += rc == TW_EPARSE;
		cr_assert_eq(out.n, 0);
	}
	cr_assert_gt(failures, 0);
	gz[3] = 0xe0; /* reserved FLG bits */
	cr_assert_eq(tw_inflate_mem(gz, gn, 1 << 20, &out, &err), TW_EPARSE);
	tw_buf_free(&out);
	free(gz);
	free(text);
}

Test(core_codec, inflate_stops_gzip_bomb_at_the_cap)
{
	size_t big = 16u << 20, gn;
	char *zeros = calloc(1, big);
	unsigned char *gz = tw_test_deflate(zeros, big, 31, &gn);
	struct tw_err err = { 0 };
	struct tw_buf out;

	cr_assert_lt(gn, 50000, "16 MiB of zeros compresses to ~16 KB");
	tw_buf_init(&out, SIZE_MAX / 2);
	cr_assert_eq(tw_inflate_mem(gz, gn, 1u << 20, &out, &err), TW_ELIMIT);
	cr_assert_str_eq(err.msg, "inflated size exceeds 1048576 bytes");
	cr_assert_eq(out.n, 0);
	/* tw_buf grows by doubling, so up to twice the cap; never the 16 MiB the trailer claims. */
	cr_assert_leq(out.cap, (2u << 20) + 1, "allocated %zu bytes for a 1 MiB cap", out.cap);
	/* The buffer's own max is a cap too. */
	tw_buf_free(&out);
	tw_buf_init(&out, 1000);
	cr_assert_eq(tw_inflate_mem(gz, gn, big, &out, &err), TW_ELIMIT);
	cr_assert_str_eq(err.msg, "inflated size exceeds 1000 bytes");
	/* Exactly at the cap is fine. */
	tw_buf_free(&out);
	tw_buf_init(&out, big);
	cr_assert_eq(tw_inflate_mem(gz, gn, big, &out, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(out.n, big);
	tw_buf_free(&out);
	free(gz);
	free(zeros);
}

Test(core_codec, inflate_rejects_non_compressed_and_dictionary_streams)
{
	struct tw_err err = { 0 };
	struct tw_buf out;
	/* zlib header 78 bb: FDICT set (0x20) with a valid FCHECK, then a dictionary id. */
	static const unsigned char dict[] = { 0x78, 0xbb, 0, 0, 0, 1, 3, 0 };

	tw_buf_init(&out, 1024);
	cr_assert_eq(tw_inflate_mem("{\"a\":1}", 7, 1024, &out, &err), TW_EPARSE);
	cr_assert_str_eq(err.msg, "not gzip or zlib data (first bytes 7b 22)");
	cr_assert_eq(tw_inflate_mem("", 0, 1024, &out, &err), TW_EPARSE);
	cr_assert_eq(tw_inflate_mem(dict, sizeof dict, 1024, &out, &err), TW_EUNSUP, "%s", err.msg);
	cr_assert_eq(tw_inflate_raw("", 0, 1024, &out, &err), TW_EPARSE);
	tw_buf_free(&out);
}

/* Payloads of two fixtures from tests/data/cloudwatch/powertools_lambda_events/, decoded by hand
 * with python3: json.load -> base64.b64decode -> gzip.decompress / zlib.decompress. */
static void decode_envelope(const char *b64text, const char *want_prefix, size_t want_len)
{
	struct tw_err err = { 0 };
	struct tw_buf z, out;

	tw_buf_init(&z, 1 << 20);
	tw_buf_init(&out, 1 << 20);
	cr_assert_eq(tw_base64_decode(b64text, strlen(b64text), &z, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_inflate_mem(z.p, z.n, 1 << 20, &out, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(out.n, want_len);
	cr_assert(strncmp(out.p, want_prefix, strlen(want_prefix)) == 0, "%.*s", (int)out.n, out.p);
	tw_buf_free(&z);
	tw_buf_free(&out);
}

Test(core_codec, decodes_real_cloudwatch_envelopes)
{
	/* cloudWatchLogEvent.json: gzip (1f 8b 08 00), 325 bytes of compact JSON. */
	decode_envelope("H4sIAAAAAAAAAHWPwQqCQBCGX0Xm7EFtK+smZBEUgXoLCdMhFtKV3akI8d0bLYmibvPPN3wz00CJxmQnTO41whwWQRIctmEcB6sQbFC3CjW3XW8kxpOpP+OC22d1Wml1qZkQGtoMsScxaczKN3plG8zlaHIta5KqWsozoTYw3/djzwhpLwivWFGHGpAFe7DL68JlBUk+l7KSN7tCOEJ4M3/qOI49vMHj+zCKdlFqLaU2ZHV2a4Ct/an0/ivdX8oYc1UVX860fQDQiMdxRQEAAA==",
			"{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789123\",", 325);
	/* cloudWatchLogEventWithPolicyLevel.json: zlib (78 da), pretty-printed, 461 bytes. */
	decode_envelope("eNqFj0+LwjAQxe9+ipCzh7Yb1z+30o0ixO3SdhdEpNR2kEDblCTuIuJ33yS1i4dFL0Nmfi/vzVxGCOEGlCqOkJ07wAuE38IszDc0TcMVxWMrED8tSIv84IVMXqezuXn0qBbHlRSnzlINSrOhH2iqJRTNHb4NHFengyol7zQX7ZLXGqQyyp2T9j3eD0b0G1rtsBkgdHHVIF5Zc7B0XfnO1801N3fporGr+YR4hATz2dTzvD/F7W77fUeTJE72aMml0sjGo4E69XX8IDR4Huo/Ck2hFG31X6qp/f2dqHl5ZiawxgscRlH8+Z7ljH5Rln/EbB1t8ej6C87if5I=",
			"{\n  \"messageType\": \"DATA_MESSAGE\",\n  \"owner\": \"123456789123\",", 461);
}
