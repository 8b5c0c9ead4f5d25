/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_hostile_input.c: the real binary ($TW_BIN `trailwatch decode`) on hostile input
 * generated here into a private directory (nothing large is committed): gzip bombs (per file and
 * per record, and inside a CloudWatch envelope), 10,000-deep nesting, a 1 GiB line (a sparse file),
 * NUL bytes and invalid UTF-8 in strings, numbers out of range, duplicate keys. Each case checks
 * the error on stderr (file, line, reason), the quarantine line with its reason, that the good
 * records around the bad one are still decoded, the exit code (1 = partial) and the child's peak
 * RSS (wait4) against a cap. Expected reasons and positions are derived from how the input is
 * built here; duplicate keys follow Python's json module (last wins), an independent reference.
 * With TW_RSS_LOG=FILE each case appends its measured peak RSS (for the README table). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/hostile.h"

/* A valid CloudTrail record with eventID `id` (and extra members before the closing brace). */
#define REC(id, extra)                                                                                   \
	"{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventSource\":\"s3.amazonaws.com\"," \
	"\"eventName\":\"GetObject\",\"eventID\":\"" id "\"" extra "}"

#define MiB (1024L * 1024L)

/* One gzip member holding n copies of byte c (written through zlib in 1 MiB pieces). */
static unsigned char *gzip_fill(int c, size_t n, size_t *outn)
{
	z_stream z;
	size_t cap = n / 256 + 4096, piece = (size_t)MiB;
	unsigned char *in = malloc(piece), *out = malloc(cap);

	cr_assert(in && out);
	memset(in, c, piece);
	memset(&z, 0, sizeof z);
	cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_RLE), Z_OK);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	for (size_t done = 0; done < n;) {
		size_t k = n - done < piece ? n - done : piece;
		z.next_in = in;
		z.avail_in = (uInt)k;
		done += k;
		cr_assert_neq(deflate(&z, done == n ? Z_FINISH : Z_NO_FLUSH), Z_STREAM_ERROR);
		cr_assert(z.avail_in == 0 && z.avail_out > 0, "gzip_fill: output buffer too small");
	}
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	*outn = z.total_out;
	deflateEnd(&z);
	free(in);
	return out;
}

static void append(FILE *f, const void *p, size_t n)
{
	cr_assert_eq(fwrite(p, 1, n, f), n);
}

/* Appends gzip(text) as one member. */
static void append_gz_text(FILE *f, const char *text)
{
	size_t n;
	unsigned char *z = tw_test_deflate(text, strlen(text), 31, &n);
	append(f, z, n);
	free(z);
}

/* Counts the events in decode's stdout whose eventID is id. */
static int has_event(const struct tw_hostile_run *r, const char *id)
{
	char needle[256];
	snprintf(needle, sizeof needle, "\"eventID\":\"%s\"", id);
	return tw_test_contains(r->out, r->nout, needle);
}

/* Runs `trailwatch decode --quiet --quarantine DIR/q.jsonl [opts...] paths...`. */
static void decode(struct tw_hostile_run *r, const char *dir, const char *const *opts, const char *const *paths,
		   int timeout_s)
{
	const char *argv[32];
	char *q = tw_test_join(dir, "q.jsonl");
	size_t k = 0;

	unlink(q);
	argv[k++] = tw_test_bin();
	argv[k++] = "decode";
	argv[k++] = "--quiet";
	argv[k++] = "--quarantine";
	argv[k++] = q;
	for (size_t i = 0; opts && opts[i]; i++)
		argv[k++] = opts[i];
	for (size_t i = 0; paths[i]; i++)
		argv[k++] = paths[i];
	argv[k] = NULL;
	tw_hostile_run(r, argv, NULL, 022, timeout_s);
	free(q);
}

/* The quarantine file of the last decode (malloc'd, "" when absent). */
static char *quarantine(const char *dir, size_t *n)
{
	char *q = tw_test_join(dir, "q.jsonl");
	char *text = tw_test_read_file(q, n);
	free(q);
	if (!text) {
		text = strdup("");
		*n = 0;
	}
	return text;
}

static void check_rss(const char *name, const struct tw_hostile_run *r, long cap_mib, const char *note)
{
	long cap = tw_hostile_cap_kb(cap_mib);
	tw_hostile_log(name, r, note);
	fprintf(stderr, "[----] %s: peak RSS %ld KiB (baseline %ld KiB, cap %ld KiB), %.2f s\n", name, r->maxrss_kb,
		tw_hostile_baseline_kb(), cap, r->seconds);
	cr_expect(r->maxrss_kb > 0 && r->maxrss_kb <= cap, "%s: peak RSS %ld KiB over the cap %ld KiB", name,
		  r->maxrss_kb, cap);
}

/* A .json.gz of 40 gzip members of 64 MiB of newlines each (2.5 GiB inflated from 2.6 MB), after
 * one good record: --max-inflated 256M stops the file at 256 MiB with a reject naming the cap;
 * the next file is still decoded. Memory: the file is streamed through fixed buffers, so the peak
 * stays near the baseline whatever the inflated size: cap 64 MiB. */
Test(hostile_input, gzip_bomb_stops_at_max_inflated_and_the_next_file_is_decoded, .timeout = 120)
{
	char *dir = tw_test_tmpdir();
	char *bomb = tw_test_join(dir, "bomb.json.gz");
	char *ok = tw_test_write_str(dir, "ok.json", REC("after", "") "\n");
	const char *opts[] = { "--max-inflated", "256M", NULL };
	const char *paths[] = { bomb, ok, NULL };
	struct tw_hostile_run r;
	size_t zn, qn;
	unsigned char *z = gzip_fill('\n', (size_t)64 * MiB, &zn);
	FILE *f = fopen(bomb, "wb");
	struct stat sb;
	char *q;

	cr_assert_not_null(f);
	append_gz_text(f, REC("first", "") "\n");
	for (int i = 0; i < 40; i++)
		append(f, z, zn);
	append_gz_text(f, REC("never", "") "\n");
	fclose(f);
	free(z);
	cr_assert_eq(stat(bomb, &sb), 0);
	cr_assert_lt(sb.st_size, 8 * MiB, "the bomb is small: %lld bytes", (long long)sb.st_size);

	decode(&r, dir, opts, paths, 90);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "bomb.json.gz: line "), "stderr: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "inflated size exceeds 268435456 bytes"), "stderr: %s", r.err);
	cr_expect(has_event(&r, "first"), "the record before the bomb: %s", r.out);
	cr_expect(!has_event(&r, "never"), "the file is skipped after the cap");
	cr_expect(has_event(&r, "after"), "the next file is decoded: %s", r.out);
	q = quarantine(dir, &qn);
	cr_expect(tw_test_contains(q, qn, "\"source\":\"") && tw_test_contains(q, qn, "bomb.json.gz\""), "%s", q);
	cr_expect(tw_test_contains(q, qn, "\"reason\":\"inflated size exceeds 268435456 bytes"), "%s", q);
	check_rss("gzip bomb, 2.5 GiB inflated (file cap 256M)", &r, 64, "--max-inflated 256M");
	free(q);
	tw_hostile_run_free(&r);
	free(bomb);
	free(ok);
	tw_test_tmpdir_free(dir);
}

/* One record that inflates to 2 GiB ('a' x 2 GiB inside a string: gzip members concatenated),
 * between two good records: the per-record cap (--max-record 1M) rejects it without keeping it,
 * the splitter skips to its end, and the record after it on the next line is decoded. Cap 64 MiB:
 * at most one max_record (1 MiB) is held, the rest are fixed buffers. */
Test(hostile_input, record_bomb_stops_at_max_record_and_the_next_line_is_decoded, .timeout = 120)
{
	char *dir = tw_test_tmpdir();
	char *bomb = tw_test_join(dir, "rec.json.gz");
	const char *opts[] = { "--max-record", "1M", NULL };
	const char *paths[] = { bomb, NULL };
	struct tw_hostile_run r;
	size_t zn, qn;
	unsigned char *z = gzip_fill('a', (size_t)64 * MiB, &zn);
	FILE *f = fopen(bomb, "wb");
	char *q;

	cr_assert_not_null(f);
	append_gz_text(f, REC("r1", "") "\n{\"eventName\":\"x\",\"padding\":\"");
	for (int i = 0; i < 32; i++)
		append(f, z, zn);
	append_gz_text(f, "\"}\n" REC("r3", "") "\n");
	fclose(f);
	free(z);

	decode(&r, dir, opts, paths, 90);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "rec.json.gz: line 2 (record 2): record exceeds 1048576 bytes"),
		  "stderr: %s", r.err);
	cr_expect(has_event(&r, "r1") && has_event(&r, "r3"), "records around the bomb: %s", r.out);
	q = quarantine(dir, &qn);
	cr_expect(tw_test_contains(q, qn, "\"line\":2,\"index\":1"), "%s", q);
	cr_expect(tw_test_contains(q, qn, "\"reason\":\"record exceeds 1048576 bytes\""), "%s", q);
	cr_expect_lt(qn, 200 * 1024, "the quarantine keeps a prefix (64 KiB), not the record: %zu bytes", qn);
	check_rss("gzip bomb, one 2 GiB record (record cap 1M)", &r, 64, "--max-record 1M");
	free(q);
	tw_hostile_run_free(&r);
	free(bomb);
	tw_test_tmpdir_free(dir);
}

/* A Lambda envelope {"awslogs":{"data":"<base64 gzip>"}} whose payload inflates to 1 GiB from a
 * 1.4 MB line: the blob's inflated size is capped (by --max-inflated when it is smaller than the
 * 64 MiB payload cap), the line is rejected with the cap in its reason, the next line decoded.
 * Cap 160 MiB: the payload is inflated into memory up to its cap (64 MiB by default). */
Test(hostile_input, gzip_bomb_in_a_cloudwatch_envelope_is_capped, .timeout = 120)
{
	char *dir = tw_test_tmpdir();
	char *path = tw_test_join(dir, "env.json");
	const char *paths[] = { path, NULL };
	const char *opts_small[] = { "--max-inflated", "8M", NULL };
	static const char head[] = "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"1\",\"logGroup\":\"g\","
				   "\"logStream\":\"s\",\"subscriptionFilters\":[],\"logEvents\":[{\"id\":\"1\","
				   "\"timestamp\":1700000000000,\"message\":\"";
	struct tw_hostile_run r;
	size_t zn, qn, bn;
	unsigned char *z = gzip_fill('a', (size_t)1024 * MiB, &zn), *all;
	char *b64, *q;
	FILE *f;

	/* gzip member of the head, then the 1 GiB of 'a' (never closed: the payload is the bomb) */
	{
		size_t hn;
		unsigned char *h = tw_test_deflate(head, sizeof head - 1, 31, &hn);
		all = malloc(hn + zn);
		cr_assert_not_null(all);
		memcpy(all, h, hn);
		memcpy(all + hn, z, zn);
		bn = hn + zn;
		free(h);
	}
	b64 = malloc(bn / 3 * 4 + 8);
	cr_assert_not_null(b64);
	{ /* base64 (RFC 4648), written here so no library of ours is trusted for the input */
		static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t o = 0, i = 0;
		for (; i + 2 < bn; i += 3) {
			unsigned v = (unsigned)all[i] << 16 | (unsigned)all[i + 1] << 8 | all[i + 2];
			b64[o++] = al[v >> 18 & 63], b64[o++] = al[v >> 12 & 63];
			b64[o++] = al[v >> 6 & 63], b64[o++] = al[v & 63];
		}
		if (bn - i == 1) {
			unsigned v = (unsigned)all[i] << 16;
			b64[o++] = al[v >> 18 & 63], b64[o++] = al[v >> 12 & 63], b64[o++] = '=', b64[o++] = '=';
		} else if (bn - i == 2) {
			unsigned v = (unsigned)all[i] << 16 | (unsigned)all[i + 1] << 8;
			b64[o++] = al[v >> 18 & 63], b64[o++] = al[v >> 12 & 63], b64[o++] = al[v >> 6 & 63];
			b64[o++] = '=';
		}
		b64[o] = 0;
	}
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n{\"awslogs\":{\"data\":\"%s\"}}\n%s\n", REC("e1", ""), b64, REC("e3", ""));
	fclose(f);
	free(z);
	free(all);
	free(b64);

	/* default caps: the 64 MiB payload cap */
	decode(&r, dir, NULL, paths, 60);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "env.json: line 2 (record 2): awslogs.data: inflated size exceeds "
						  "67108864 bytes"), "stderr: %s", r.err);
	cr_expect(has_event(&r, "e1") && has_event(&r, "e3"), "records around the bomb: %s", r.out);
	q = quarantine(dir, &qn);
	cr_expect(tw_test_contains(q, qn, "\"reason\":\"awslogs.data: inflated size exceeds 67108864 bytes\""),
		  "%.300s", q);
	check_rss("gzip bomb in a CloudWatch envelope, 1 GiB (payload cap 64M)", &r, 160, "default caps");
	free(q);
	tw_hostile_run_free(&r);

	/* --max-inflated below the payload cap governs blobs too */
	decode(&r, dir, opts_small, paths, 60);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "awslogs.data: inflated size exceeds 8388608 bytes"), "stderr: %s",
		  r.err);
	cr_expect(has_event(&r, "e1") && has_event(&r, "e3"), "records around the bomb: %s", r.out);
	check_rss("gzip bomb in a CloudWatch envelope, 1 GiB (--max-inflated 8M)", &r, 64, "--max-inflated 8M");
	tw_hostile_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* 10,000 levels of arrays, of objects, and an unclosed 10,000-deep line: each rejected with the
 * depth limit (256) or as unbalanced, with its line; the last record is decoded. Cap 48 MiB. */
Test(hostile_input, ten_thousand_deep_nesting_is_rejected_with_its_line, .timeout = 60)
{
	char *dir = tw_test_tmpdir();
	char *path = tw_test_join(dir, "deep.json");
	const char *paths[] = { path, NULL };
	struct tw_hostile_run r;
	size_t qn;
	char *q;
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f, "%s\n", REC("d1", ""));
	fputs(REC("d2", ",\"requestParameters\":"), f);
	fseek(f, -1, SEEK_CUR); /* reopen the record before its '}' */
	for (int i = 0; i < 10000; i++)
		fputc('[', f);
	for (int i = 0; i < 10000; i++)
		fputc(']', f);
	fputs("}\n", f);
	fputs("{\"eventVersion\":\"1.08\",\"requestParameters\":", f);
	for (int i = 0; i < 10000; i++)
		fputs("{\"a\":", f);
	fputc('1', f);
	for (int i = 0; i < 10000; i++)
		fputc('}', f);
	fputs("}\n", f);
	for (int i = 0; i < 10000; i++)
		fputc('[', f);
	fputc('\n', f);
	fprintf(f, "%s\n", REC("d5", ""));
	fclose(f);

	decode(&r, dir, NULL, paths, 30);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "deep.json: line 2 (record 2): ") &&
		  tw_test_contains(r.err, r.nerr, "deep.json: line 3 (record 3): "), "stderr: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "nesting deeper than 256 levels"), "stderr: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "deep.json: line 4 (record 4): "), "stderr: %s", r.err);
	cr_expect(has_event(&r, "d1") && has_event(&r, "d5"), "%s", r.out);
	q = quarantine(dir, &qn);
	cr_expect_eq(tw_test_count_lines(q, qn), 3, "three rejects: %s", q);
	cr_expect(tw_test_contains(q, qn, "nesting deeper than 256 levels"), "%.300s", q);
	check_rss("10,000-deep nesting", &r, 48, "max_depth 256");
	free(q);
	tw_hostile_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* A 1 GiB line (a sparse file: the hole reads as NUL bytes, nothing is written) between two good
 * records: rejected as over max_record after streaming through it, never held whole. Cap 64 MiB:
 * one max_record (8 MiB) plus the read buffers. */
Test(hostile_input, one_gigabyte_line_is_streamed_not_held, .timeout = 180)
{
	char *dir = tw_test_tmpdir();
	char *path = tw_test_join(dir, "big.json");
	const char *paths[] = { path, NULL };
	static const char head[] = REC("g1", "") "\n{\"eventName\":\"x\",\"padding\":\"";
	static const char tail[] = "\"}\n" REC("g3", "") "\n";
	struct tw_hostile_run r;
	struct stat sb;
	size_t qn;
	char *q;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, head, sizeof head - 1), (ssize_t)(sizeof head - 1));
	cr_assert_eq(lseek(fd, 1024 * MiB, SEEK_SET), 1024 * MiB);
	cr_assert_eq(write(fd, tail, sizeof tail - 1), (ssize_t)(sizeof tail - 1));
	close(fd);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_gt(sb.st_size, 1024 * MiB);

	decode(&r, dir, NULL, paths, 150);
	cr_assert_eq(r.status, 1, "exit %d (timed out %d), stderr: %s", r.status, r.timed_out, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "big.json: line 2 (record 2): record exceeds 8388608 bytes"),
		  "stderr: %s", r.err);
	cr_expect(has_event(&r, "g1") && has_event(&r, "g3"), "records around the line: %s", r.out);
	q = quarantine(dir, &qn);
	cr_expect(tw_test_contains(q, qn, "\"reason\":\"record exceeds 8388608 bytes\""), "%.300s", q);
	check_rss("1 GiB line (sparse file)", &r, 64, "max_record 8M");
	free(q);
	tw_hostile_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* Raw NUL and control bytes, invalid UTF-8 (0xFF, overlong C0 80, an encoded surrogate ED A0 80)
 * and a lone \ud800 escape inside strings: rejected with the byte and its offset (RFC 8259 §7-8:
 * control characters must be escaped, text is UTF-8); an escaped \u0000 is valid JSON and kept. */
Test(hostile_input, nul_bytes_and_invalid_utf8_in_strings_are_rejected_with_the_byte, .timeout = 30)
{
	char *dir = tw_test_tmpdir();
	char *path = tw_test_join(dir, "strs.json");
	const char *paths[] = { path, NULL };
	struct tw_hostile_run r;
	size_t qn;
	char *q;
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	fprintf(f, "%s\n", REC("s1", ""));
	append(f, REC("s2", ",\"userAgent\":\"a\0b\"") "\n", sizeof(REC("s2", ",\"userAgent\":\"a\0b\"") "\n") - 1);
	fprintf(f, "%s\n", REC("s3", ",\"userAgent\":\"a\\u0000b\""));
	fprintf(f, "%s\n", REC("s4", ",\"userAgent\":\"\xff\xfe\""));
	fprintf(f, "%s\n", REC("s5", ",\"userAgent\":\"\xc0\x80\""));
	fprintf(f, "%s\n", REC("s6", ",\"userAgent\":\"\xed\xa0\x80\""));
	fprintf(f, "%s\n", REC("s7", ",\"userAgent\":\"\\ud800x\""));
	fprintf(f, "%s\n", REC("s8", ",\"userAgent\":\"caf\xc3\xa9\""));
	fclose(f);

	decode(&r, dir, NULL, paths, 30);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "strs.json: line 2 (record 2): ") &&
		  tw_test_contains(r.err, r.nerr, "control character 0x00 in string"), "stderr: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "strs.json: line 4 (record 4): ") &&
		  tw_test_contains(r.err, r.nerr, "invalid UTF-8 in string (byte 0xff)"), "stderr: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "strs.json: line 5 (record 5): "), "overlong: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "strs.json: line 6 (record 6): "), "surrogate: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "strs.json: line 7 (record 7): ") &&
		  tw_test_contains(r.err, r.nerr, "lone high surrogate"), "stderr: %s", r.err);
	cr_expect(has_event(&r, "s1") && has_event(&r, "s3") && has_event(&r, "s8"), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "\"userAgent\":\"a\\u0000b\""), "escaped NUL kept: %s", r.out);
	cr_expect(!has_event(&r, "s2") && !has_event(&r, "s4") && !has_event(&r, "s5") && !has_event(&r, "s6") &&
		  !has_event(&r, "s7"), "%s", r.out);
	q = quarantine(dir, &qn);
	cr_expect_eq(tw_test_count_lines(q, qn), 5, "five rejects: %s", q);
	check_rss("NUL bytes and invalid UTF-8", &r, 48, "");
	free(q);
	tw_hostile_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* Numbers out of range. Fields we interpret: a CloudWatch log event timestamp outside the years
 * 0000-9999 that ISO 8601 timestamps can name (below -62167219200000 ms or above 253402300799999
 * ms), or not an integer (1e400, 10^23), is rejected; eventTime with a 5-digit year or month 13 is
 * rejected. Numbers we only carry (requestParameters: 1e999999, 30 digits) are kept verbatim. */
Test(hostile_input, numbers_out_of_range_are_rejected_where_we_interpret_them, .timeout = 30)
{
	char *dir = tw_test_tmpdir();
	char *path = tw_test_join(dir, "nums.json");
	const char *paths[] = { path, NULL };
	struct tw_hostile_run r;
	size_t qn;
	char *q;
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f, "%s\n", REC("n1", ",\"requestParameters\":{\"x\":1e999999,\"y\":-1e99999,"
				     "\"z\":123456789012345678901234567890}"));
	fputs("{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"1\",\"logGroup\":\"g\",\"logStream\":\"s\","
	      "\"subscriptionFilters\":[],\"logEvents\":["
	      "{\"id\":\"c1\",\"timestamp\":99999999999999999999999,\"message\":\"m\"},"
	      "{\"id\":\"c2\",\"timestamp\":-99999999999999999,\"message\":\"m\"},"
	      "{\"id\":\"c3\",\"timestamp\":1e400,\"message\":\"m\"},"
	      "{\"id\":\"c4\",\"timestamp\":253402300800000,\"message\":\"m\"},"
	      "{\"id\":\"c5\",\"timestamp\":253402300799999,\"message\":\"last ms of 9999\"},"
	      "{\"id\":\"c6\",\"timestamp\":-62167219200000,\"message\":\"year 0\"},"
	      "{\"id\":\"c7\",\"timestamp\":-62167219200001,\"message\":\"m\"}]}\n", f);
	fprintf(f, "%s\n", "{\"eventVersion\":\"1.08\",\"eventTime\":\"99999-01-01T00:00:00Z\",\"eventSource\":"
			   "\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"eventID\":\"n3\"}");
	fprintf(f, "%s\n", "{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-13-01T00:00:00Z\",\"eventSource\":"
			   "\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"eventID\":\"n4\"}");
	fprintf(f, "%s\n", REC("n5", ""));
	fclose(f);

	decode(&r, dir, NULL, paths, 30);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(has_event(&r, "n1") && has_event(&r, "n5"), "%s", r.out);
	cr_expect(has_event(&r, "c5") && tw_test_contains(r.out, r.nout, "\"time\":\"9999-12-31T23:59:59.999Z\""),
		  "%s", r.out);
	cr_expect(has_event(&r, "c6") && tw_test_contains(r.out, r.nout, "\"time\":\"0000-01-01T00:00:00Z\""), "%s",
		  r.out);
	for (int i = 1; i <= 7; i++) {
		char id[16], needle[64];
		if (i == 5 || i == 6)
			continue;
		snprintf(id, sizeof id, "c%d", i);
		cr_expect(!has_event(&r, id), "%s decoded: %s", id, r.out);
		snprintf(needle, sizeof needle, "log event %d (id %s)", i, id);
		cr_expect(tw_test_contains(r.err, r.nerr, needle), "%s in stderr: %s", needle, r.err);
	}
	cr_expect(tw_test_contains(r.err, r.nerr, "out of range"), "the reason says so: %s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "nums.json: line 3 (record 3): bad eventTime") &&
		  tw_test_contains(r.err, r.nerr, "nums.json: line 4 (record 4): bad eventTime"), "%s", r.err);
	cr_expect(!has_event(&r, "n3") && !has_event(&r, "n4"), "%s", r.out);
	q = quarantine(dir, &qn);
	cr_expect_eq(tw_test_count_lines(q, qn), 7, "5 log events and 2 records: %s", q);
	check_rss("numbers out of range", &r, 48, "");
	free(q);
	tw_hostile_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* Duplicate keys: the last one wins, in CloudTrail records and in CloudWatch payloads alike, as
 * Python's json.loads does (checked by the test itself when /usr/bin/python3 is present). */
Test(hostile_input, duplicate_keys_last_one_wins_everywhere, .timeout = 30)
{
	char *dir = tw_test_tmpdir();
	static const char text[] =
		"{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventTime\":\"2027-01-01T00:00:00Z\","
		"\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"First\",\"eventName\":\"Second\",\"eventID\":\"k1\","
		"\"eventID\":\"k2\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:a\"},"
		"\"userIdentity\":{\"type\":\"Root\",\"arn\":\"arn:b\"}}\n"
		"{\"messageType\":\"CONTROL_MESSAGE\",\"messageType\":\"DATA_MESSAGE\",\"owner\":\"1\",\"logGroup\":\"g1\","
		"\"logGroup\":\"g2\",\"logStream\":\"s\",\"subscriptionFilters\":[],\"logEvents\":[{\"id\":\"w1\","
		"\"timestamp\":1700000000000,\"timestamp\":1800000000000,\"message\":\"a\",\"message\":\"b\"}]}\n"
		"{\"messageType\":\"DATA_MESSAGE\",\"messageType\":\"CONTROL_MESSAGE\",\"owner\":\"1\",\"logGroup\":\"g\","
		"\"logStream\":\"s\",\"subscriptionFilters\":[],\"logEvents\":[{\"id\":\"w2\",\"timestamp\":1,"
		"\"message\":\"control\"}]}\n";
	char *path = tw_test_write_str(dir, "dups.json", text);
	const char *paths[] = { path, NULL };
	struct tw_hostile_run r;

	if (access("/usr/bin/python3", X_OK) == 0) { /* the reference: what json.loads keeps */
		char cmd[8192];
		snprintf(cmd, sizeof cmd,
			 "/usr/bin/python3 -c 'import json,sys\n"
			 "a,b,c=[json.loads(l) for l in open(sys.argv[1])]\n"
			 "assert (a[\"eventName\"],a[\"eventID\"],a[\"eventTime\"],a[\"userIdentity\"][\"arn\"])=="
			 "(\"Second\",\"k2\",\"2027-01-01T00:00:00Z\",\"arn:b\")\n"
			 "assert (b[\"messageType\"],b[\"logGroup\"],b[\"logEvents\"][0][\"message\"],"
			 "b[\"logEvents\"][0][\"timestamp\"])==(\"DATA_MESSAGE\",\"g2\",\"b\",1800000000000)\n"
			 "assert c[\"messageType\"]==\"CONTROL_MESSAGE\"' %s",
			 path);
		cr_assert_eq(system(cmd), 0, "the Python reference disagrees with the expectations");
	}
	decode(&r, dir, NULL, paths, 30);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	cr_expect(tw_test_contains(r.out, r.nout, "\"time\":\"2027-01-01T00:00:00Z\",\"eventID\":\"k2\","
						  "\"eventName\":\"Second\""), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "\"principal\":\"arn:b\",\"identityType\":\"Root\""), "%s", r.out);
	cr_expect(!has_event(&r, "k1"), "%s", r.out);
	/* 1800000000000 ms = 2027-01-15T08:00:00Z */
	cr_expect(tw_test_contains(r.out, r.nout, "\"time\":\"2027-01-15T08:00:00Z\",\"eventID\":\"w1\""), "%s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "\"logGroup\":\"g2\"") &&
		  tw_test_contains(r.out, r.nout, "\"message\":\"b\""), "%s", r.out);
	cr_expect(!has_event(&r, "w2"), "the payload whose last messageType is CONTROL_MESSAGE: %s", r.out);
	cr_expect_eq(tw_test_count_lines(r.out, r.nout), 2, "%s", r.out);
	check_rss("duplicate keys", &r, 48, "last wins");
	tw_hostile_run_free(&r);
	free(path);
	tw_test_tmpdir_free(dir);
}
