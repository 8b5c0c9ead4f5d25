/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_ingest_source.c: files, directories, stdin and worker threads
 * (ingest/source.c, tw_ingest_paths).
 *
 * Where the expected values come from: every input is generated here, record by record, with a
 * known eventID, line and index (bad records are planted at chosen lines); gzip and zlib files are
 * written with zlib, not with the ISA-L inflater under test. Expectations are those known values,
 * never a previous run's output. The S3-layout test reads gen-cloudtrail's files itself (zlib +
 * jansson, directories sorted by scandir) to know the delivery order. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ingest/ingest.h"
#include "tests/helpers/helpers.h"

/* ---- generated inputs ------------------------------------------------------------------------- */

/* A CloudTrail record with eventID "ev-<i>" and a size that varies with i (300..2300 bytes),
 * with quotes, backslashes and brackets inside strings now and then. */
static size_t ct_record(char *out, size_t cap, unsigned i)
{
	char pad[2100];
	size_t npad = (i * 7919u) % 2000;
	int n;

	for (size_t k = 0; k < npad; k++)
		pad[k] = "abcdefghijklmnopqrstuvwxyz{}[] "[(i + k) % 31];
	pad[npad] = '\0';
	n = snprintf(out, cap,
		     "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":"
		     "\"arn:aws:iam::123456789012:user/u%u\",\"accountId\":\"123456789012\",\"userName\":\"u%u\"},"
		     "\"eventTime\":\"2024-03-01T12:%02u:%02uZ\",\"eventSource\":\"s3.amazonaws.com\","
		     "\"eventName\":\"GetObject\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"10.0.0.1\","
		     "\"userAgent\":\"%s\",\"requestParameters\":{\"bucketName\":\"b\",\"key\":\"k/%u\","
		     "\"pad\":\"%s\"},\"eventID\":\"ev-%06u\",\"readOnly\":true,\"eventType\":\"AwsApiCall\","
		     "\"recipientAccountId\":\"123456789012\"}",
		     i, i, (i / 60) % 60, i % 60, i % 5 == 0 ? "sdk \\\"quoted\\\" C:\\\\path ]}" : "aws-cli/2",
		     i, pad, i);
	cr_assert(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* NDJSON of nrec records; a bad (unbalanced) line is inserted before record k for every k in
 * bad[] (sorted). Returns the text (malloc'd); *n its length. */
static char *ndjson(unsigned nrec, const unsigned *bad, size_t nbad, const char *eol, size_t *n)
{
	size_t cap = (size_t)nrec * 2600 + nbad * 64 + 64, len = 0, b = 0;
	char *p = malloc(cap);

	cr_assert(p);
	for (unsigned i = 0; i < nrec; i++) {
		while (b < nbad && bad[b] == i) {
			len += (size_t)snprintf(p + len, cap - len, "{\"eventVersion\":\"1.08\",\"broken\":[%u}%s", i, eol);
			b++;
		}
		len += ct_record(p + len, cap - len, i);
		len += (size_t)snprintf(p + len, cap - len, "%s", eol);
	}
	*n = len;
	return p;
}

static void write_gz(const char *path, const void *p, size_t n)
{
	gzFile g = gzopen(path, "wb1");
	cr_assert(g, "%s", path);
	for (size_t off = 0; off < n;) {
		unsigned k = n - off > (1u << 30) ? (1u << 30) : (unsigned)(n - off);
		cr_assert_eq(gzwrite(g, (const char *)p + off, k), (int)k);
		off += k;
	}
	cr_assert_eq(gzclose(g), Z_OK);
}

/* ---- a sink that remembers everything ----------------------------------------------------------- */

struct evrec {
	unsigned id;       /* the number in "ev-NNNNNN" */
	uint64_t line;     /* src_line */
	uint64_t index;    /* src_index */
};

struct rejrec {
	char source[256];  /* source */
	char reason[256];  /* reason */
	uint64_t line;     /* position */
	uint64_t index;
	size_t nbytes;     /* bytes passed */
};

struct rec {
	struct evrec *ev;     /* every event */
	size_t nev, capev;
	struct rejrec *rej;   /* every reject */
	size_t nrej, caprej;
	size_t nbatch;        /* on_batch calls */
	size_t max_batch;     /* largest */
	char first_source[256]; /* batch->source of the first batch */
	int stop_at;          /* on_batch returns TW_ESTOP on this call (1-based; 0: never) */
	size_t nprogress;     /* on_progress calls */
	char progress_names[4096]; /* the names given to on_progress, ';'-joined (deduplicated) */
};

static enum tw_rc rec_batch(void *ctx, struct tw_batch *b, struct tw_err *err)
{
	struct rec *r = ctx;
	if (!r->nbatch && b->source)
		snprintf(r->first_source, sizeof r->first_source, "%s", b->source);
	r->nbatch++;
	if (b->n > r->max_batch)
		r->max_batch = b->n;
	for (size_t i = 0; i < b->n; i++) {
		const struct tw_event *ev = &b->ev[i];
		struct tw_str id = ev->f[TW_F_EVENT_ID];
		char tmp[32];
		if (r->nev == r->capev) {
			r->capev = r->capev ? r->capev * 2 : 1024;
			r->ev = realloc(r->ev, r->capev * sizeof *r->ev);
			cr_assert(r->ev);
		}
		cr_assert(id.n > 3 && id.n < sizeof tmp && !memcmp(id.p, "ev-", 3), "eventID %.*s", (int)id.n, id.p);
		memcpy(tmp, id.p + 3, id.n - 3);
		tmp[id.n - 3] = '\0';
		r->ev[r->nev].id = (unsigned)strtoul(tmp, NULL, 10);
		r->ev[r->nev].line = ev->src_line;
		r->ev[r->nev].index = ev->src_index;
		/* raw must be the record's own bytes */
		cr_assert(ev->raw.n > 2 && ev->raw.p[0] == '{' && ev->raw.p[ev->raw.n - 1] == '}');
		r->nev++;
	}
	if (r->stop_at && (int)r->nbatch == r->stop_at)
		return tw_err_set(err, TW_ESTOP, "test sink is full");
	return TW_OK;
}

static enum tw_rc rec_reject(void *ctx, const struct tw_reject *j, struct tw_err *err)
{
	struct rec *r = ctx;
	(void)err;
	if (r->nrej == r->caprej) {
		r->caprej = r->caprej ? r->caprej * 2 : 64;
		r->rej = realloc(r->rej, r->caprej * sizeof *r->rej);
		cr_assert(r->rej);
	}
	snprintf(r->rej[r->nrej].source, sizeof r->rej[0].source, "%s", j->source);
	snprintf(r->rej[r->nrej].reason, sizeof r->rej[0].reason, "%s", j->reason);
	r->rej[r->nrej].line = j->line;
	r->rej[r->nrej].index = j->index;
	r->rej[r->nrej].nbytes = j->bytes.n;
	r->nrej++;
	return TW_OK;
}

static void rec_progress(void *ctx, const struct tw_ingest_stats *st, const char *current)
{
	struct rec *r = ctx;
	(void)st;
	r->nprogress++;
	if (current[0] && !strstr(r->progress_names, current)) {
		size_t n = strlen(r->progress_names);
		snprintf(r->progress_names + n, sizeof r->progress_names - n, "%s;", current);
	}
}

static void rec_free(struct rec *r)
{
	free(r->ev);
	free(r->rej);
	memset(r, 0, sizeof *r);
}

static enum tw_rc run(const char *const *paths, size_t n, struct tw_ingest_limits *lim, struct rec *r,
		      struct tw_ingest_stats *st, struct tw_err *err)
{
	struct tw_sink sink = { rec_batch, rec_reject, r };
	struct tw_ingest_hooks hooks = { NULL, rec_progress, r };
	memset(st, 0, sizeof *st);
	return tw_ingest_paths(paths, n, lim, &sink, &hooks, st, err);
}

static enum tw_rc run1(const char *path, unsigned threads, struct rec *r, struct tw_ingest_stats *st,
		       struct tw_err *err)
{
	struct tw_ingest_limits lim;
	tw_ingest_limits_default(&lim);
	lim.threads = threads;
	return run(&path, 1, &lim, r, st, err);
}

static void same_results(const struct rec *a, const struct rec *b)
{
	cr_assert_eq(a->nev, b->nev);
	for (size_t i = 0; i < a->nev; i++) {
		cr_assert_eq(a->ev[i].id, b->ev[i].id, "event #%zu", i);
		cr_assert_eq(a->ev[i].line, b->ev[i].line, "event #%zu", i);
		cr_assert_eq(a->ev[i].index, b->ev[i].index, "event #%zu", i);
	}
	cr_assert_eq(a->nrej, b->nrej);
	for (size_t i = 0; i < a->nrej; i++) {
		cr_assert_str_eq(a->rej[i].reason, b->rej[i].reason);
		cr_assert_eq(a->rej[i].line, b->rej[i].line);
		cr_assert_eq(a->rej[i].index, b->rej[i].index);
	}
}

/* ---- tests -------------------------------------------------------------------------------------- */

Test(ingest_source, one_and_two_threads_give_the_same_ordered_results)
{
	/* 20k records (~24 MB, several chunks) with bad lines planted across the file. */
	static const unsigned bad[] = { 0, 3, 4000, 4001, 9999, 19999 };
	const unsigned nrec = 20000;
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "trail.jsonl.gz");
	size_t n;
	char *text = ndjson(nrec, bad, 6, "\n", &n);
	struct rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct tw_ingest_stats st;
	struct tw_ingest_limits lim;
	struct tw_err err;

	write_gz(path, text, n);
	tw_ingest_limits_default(&lim);
	lim.batch_events = 1000;
	lim.threads = 1;
	cr_assert_eq(run((const char *const *)&path, 1, &lim, &r1, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.bytes_decoded, n);
	cr_assert_eq(st.events[TW_KIND_CLOUDTRAIL], nrec);
	cr_assert_eq(st.quarantined, 6);
	cr_assert_eq(st.records, nrec + 6);
	lim.threads = 2;
	cr_assert_eq(run((const char *const *)&path, 1, &lim, &r2, &st, &err), TW_OK, "%s", err.msg);
	lim.threads = 3;
	cr_assert_eq(run((const char *const *)&path, 1, &lim, &r3, &st, &err), TW_OK, "%s", err.msg);

	/* Every record, in order, with its exact line and index. */
	cr_assert_eq(r1.nev, nrec);
	for (unsigned i = 0, b = 0; i < nrec; i++) {
		while (b < 6 && bad[b] <= i)
			b++;
		cr_assert_eq(r1.ev[i].id, i, "event #%u is ev-%06u", i, r1.ev[i].id);
		cr_assert_eq(r1.ev[i].line, (uint64_t)i + b + 1, "ev-%06u line", i);
		cr_assert_eq(r1.ev[i].index, (uint64_t)i + b, "ev-%06u index", i);
	}
	cr_assert_eq(r1.nrej, 6);
	for (unsigned b = 0; b < 6; b++) {
		cr_expect_eq(r1.rej[b].line, (uint64_t)bad[b] + b + 1, "reject %u line %llu", b,
			     (unsigned long long)r1.rej[b].line);
		cr_expect_eq(r1.rej[b].index, (uint64_t)bad[b] + b);
		cr_expect_str_eq(r1.rej[b].source, path);
		/* the bad line itself travels with the reject */
		cr_expect_eq(r1.rej[b].nbytes, (size_t)snprintf(NULL, 0, "{\"eventVersion\":\"1.08\",\"broken\":[%u}", bad[b]));
	}
	cr_assert_leq(r1.max_batch, 1000);
	cr_assert_leq(r2.max_batch, 1000);
	same_results(&r1, &r2);
	same_results(&r1, &r3);
	rec_free(&r1);
	rec_free(&r2);
	rec_free(&r3);
	free(text);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, records_wrapper_over_many_chunks_pretty_printed)
{
	/* An S3 delivery file, pretty-printed, ~12 MB: elements stream out in order with their lines. */
	const unsigned nrec = 9000, badat = 7777;
	size_t cap = (size_t)nrec * 2700 + 256, len = 0;
	char *p = malloc(cap), *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "delivery.json");
	uint64_t line = 3, bad_line = 0;
	uint64_t *lines = malloc(nrec * sizeof *lines);
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	len += (size_t)snprintf(p + len, cap - len, "{\n  \"Records\": [\n");
	for (unsigned i = 0; i < nrec; i++) {
		if (i == badat) {
			bad_line = line;
			len += (size_t)snprintf(p + len, cap - len,
						"    {\n      \"eventVersion\": \"1.08\",\n      \"eventTime\": \"yesterday\","
						"\n      \"eventSource\": \"s3.amazonaws.com\",\n      \"eventName\": \"X\"\n    },\n");
			line += 6;
		}
		lines[i] = line;
		len += (size_t)snprintf(p + len, cap - len, "    ");
		len += ct_record(p + len, cap - len, i);
		len += (size_t)snprintf(p + len, cap - len, "%s\n", i + 1 < nrec ? "," : "");
		line++;
	}
	len += (size_t)snprintf(p + len, cap - len, "  ],\n  \"after\": [\"ignored\"]\n}\n");
	tw_test_write_file(path, p, len);

	cr_assert_eq(run1(path, 2, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, nrec);
	for (unsigned i = 0; i < nrec; i++) {
		cr_assert_eq(r.ev[i].id, i);
		cr_assert_eq(r.ev[i].line, lines[i], "ev-%06u line %llu, want %llu", i,
			     (unsigned long long)r.ev[i].line, (unsigned long long)lines[i]);
		cr_assert_eq(r.ev[i].index, i < badat ? i : i + 1);
	}
	cr_assert_eq(r.nrej, 1);
	cr_expect_eq(r.rej[0].line, bad_line);
	cr_expect_eq(r.rej[0].index, badat);
	cr_expect(strstr(r.rej[0].reason, "eventTime"), "%s", r.rej[0].reason);
	rec_free(&r);
	free(lines);
	free(p);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, truncated_gzip_keeps_records_before_the_cut)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "cut.json.gz");
	size_t n, zn;
	char *text = ndjson(3000, NULL, 0, "\n", &n);
	unsigned char *z = tw_test_deflate(text, n, 31, &zn);
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	tw_test_write_file(path, z, zn * 6 / 10);
	cr_assert_eq(run1(path, 2, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_gt(r.nev, 100);
	cr_assert_lt(r.nev, 3000);
	for (size_t i = 0; i < r.nev; i++)
		cr_assert_eq(r.ev[i].id, i);
	/* The record cut in half is rejected by the decoder, then the file-level reason. */
	cr_assert_geq(r.nrej, 1);
	cr_assert_leq(r.nrej, 2);
	cr_expect_str_eq(r.rej[r.nrej - 1].source, path);
	cr_expect(!strncmp(r.rej[r.nrej - 1].reason, "truncated gzip stream", 21), "%s",
		  r.rej[r.nrej - 1].reason);
	cr_expect_eq(st.bytes_in, zn * 6 / 10);
	rec_free(&r);
	free(z);
	free(text);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, gzip_bomb_stops_at_max_inflated_in_bounded_memory)
{
	/* 1000 gzip members of the same 1 MiB block (1024 lines of 1024 bytes): 1000 MiB inflated
	 * from ~4 MB. With max_inflated = 4 MiB exactly 4096 records decode, and reading stops. */
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "bomb.gz");
	const size_t block = 1 << 20;
	char *p = malloc(block), rec[2600];
	size_t zn, len = 0;
	unsigned char *z;
	FILE *f;
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_ingest_limits lim;
	struct tw_err err;
	struct rusage ru;
	const char *paths[1] = { path };

	size_t rn = ct_record(rec, sizeof rec, 0);
	cr_assert_lt(rn, 1023);
	while (len < block) {
		memcpy(p + len, rec, rn);
		memset(p + len + rn, ' ', 1023 - rn);
		p[len + 1023] = '\n';
		len += 1024;
	}
	z = tw_test_deflate(p, block, 31, &zn);
	f = fopen(path, "wb");
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(fwrite(z, 1, zn, f), zn);
	fclose(f);

	tw_ingest_limits_default(&lim);
	lim.max_inflated = 4 << 20;
	lim.threads = 2;
	cr_assert_eq(run(paths, 1, &lim, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 4096);
	cr_assert_eq(r.nrej, 1);
	cr_expect_str_eq(r.rej[0].reason, "inflated size exceeds 4194304 bytes, file skipped after record 4096");
	cr_expect_eq(st.bytes_decoded, 4 << 20);
	cr_assert_lt(st.bytes_in, (uint64_t)zn * 500, "read %llu of %llu compressed bytes",
		     (unsigned long long)st.bytes_in, (unsigned long long)zn * 1000);
	getrusage(RUSAGE_SELF, &ru);
	cr_expect_lt(ru.ru_maxrss, 200 * 1024, "max RSS %ld KB", ru.ru_maxrss);

	/* Without the cap, multi-member gzip decodes every member. */
	rec_free(&r);
	lim.max_inflated = 0; /* default */
	f = fopen(path, "wb");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fwrite(z, 1, zn, f), zn);
	fclose(f);
	cr_assert_eq(run(paths, 1, &lim, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 3 * 1024);
	cr_assert_eq(r.nrej, 0);
	rec_free(&r);
	free(z);
	free(p);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, crc_mismatch_and_zlib_and_crlf)
{
	char *dir = tw_test_tmpdir(), *gz = tw_test_join(dir, "crc.gz"), *zl = tw_test_join(dir, "x.zlib");
	char *crlf = tw_test_join(dir, "crlf.jsonl");
	size_t n, zn;
	char *text = ndjson(50, NULL, 0, "\r\n", &n);
	unsigned char *z = tw_test_deflate(text, n, 31, &zn);
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	z[zn - 8] ^= 0x55; /* the CRC32 in the trailer */
	tw_test_write_file(gz, z, zn);
	cr_assert_eq(run1(gz, 1, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 50);
	cr_assert_eq(r.nrej, 1);
	cr_expect(strstr(r.rej[0].reason, "CRC mismatch"), "%s", r.rej[0].reason);
	rec_free(&r);
	free(z);

	z = tw_test_deflate(text, n, 15, &zn);
	tw_test_write_file(zl, z, zn);
	cr_assert_eq(run1(zl, 1, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 50);
	cr_assert_eq(r.nrej, 0);
	rec_free(&r);

	tw_test_write_file(crlf, text, n);
	cr_assert_eq(run1(crlf, 1, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 50);
	cr_assert_eq(r.nrej, 0);
	cr_expect_eq(r.ev[49].line, 50);
	rec_free(&r);
	free(z);
	free(text);
	free(gz);
	free(zl);
	free(crlf);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, zero_byte_file_and_record_over_cap)
{
	char *dir = tw_test_tmpdir(), *empty = tw_test_join(dir, "empty.json"), *big = tw_test_join(dir, "big.json");
	size_t n;
	char *text = ndjson(30, NULL, 0, "\n", &n);
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_ingest_limits lim;
	struct tw_err err;
	const char *paths[2] = { empty, big };

	tw_test_write_file(empty, "", 0);
	cr_assert_eq(run1(empty, 2, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_expect_eq(r.nev + r.nrej + r.nbatch, 0);
	cr_expect_eq(st.files, 1);

	/* Records of 300..2300 bytes with a 1500-byte cap: the long ones are rejected, in place. */
	tw_test_write_file(big, text, n);
	tw_ingest_limits_default(&lim);
	lim.max_record = 1500;
	rec_free(&r);
	cr_assert_eq(run(paths, 2, &lim, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev + r.nrej, 30);
	cr_assert_gt(r.nrej, 0);
	cr_assert_gt(r.nev, 0);
	for (size_t i = 0, e = 0, j = 0; i < 30; i++) {
		char rec[2600];
		size_t len = ct_record(rec, sizeof rec, (unsigned)i);
		if (len > 1500) {
			cr_assert_lt(j, r.nrej);
			cr_expect_eq(r.rej[j].line, i + 1);
			cr_expect_str_eq(r.rej[j].reason, "record exceeds 1500 bytes");
			cr_expect_eq(r.rej[j].nbytes, 1500);
			j++;
		} else {
			cr_assert_lt(e, r.nev);
			cr_expect_eq(r.ev[e].id, i);
			e++;
		}
	}
	cr_expect_eq(st.files, 2);
	rec_free(&r);
	free(text);
	free(empty);
	free(big);
	tw_test_tmpdir_free(dir);
}

/* One record file named `name` under dir whose eventID is ev-<id>; gzip'ed if gz. */
static void one_file(const char *dir, const char *name, unsigned id, int gz)
{
	char rec[2600], *path = tw_test_join(dir, name);
	size_t n = ct_record(rec, sizeof rec, id);
	rec[n++] = '\n';
	if (gz)
		write_gz(path, rec, n);
	else
		tw_test_write_file(path, rec, n);
	free(path);
}

Test(ingest_source, directory_walk_in_byte_order_skipping_fifo_and_loops)
{
	char *dir = tw_test_tmpdir(), *a = tw_test_join(dir, "a"), *fifo = tw_test_join(dir, "fifo");
	char *loop = tw_test_join(dir, "loop"), *aloop = tw_test_join(a, "up");
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;
	static const unsigned want[] = { 1, 2, 3, 4, 5, 6 };

	cr_assert_eq(mkdir(a, 0700), 0);
	one_file(dir, "b.json", 5, 0);
	one_file(a, "2.json", 4, 0);
	one_file(a, "10.json", 3, 1);
	one_file(dir, "A.json", 2, 0);
	one_file(dir, ".hidden.json", 1, 0);
	one_file(dir, "c.json.gz", 6, 1);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(symlink(".", loop), 0);    /* dir/loop -> dir */
	cr_assert_eq(symlink("..", aloop), 0);  /* dir/a/up -> dir */

	cr_assert_eq(run1(dir, 2, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 6);
	for (int i = 0; i < 6; i++)
		cr_expect_eq(r.ev[i].id, want[i], "#%d is ev-%06u", i, r.ev[i].id);
	cr_assert_eq(r.nrej, 1);
	cr_expect_str_eq(r.rej[0].source, fifo);
	cr_expect_str_eq(r.rej[0].reason, "not a regular file");
	cr_expect_eq(st.files, 6);
	cr_expect(strstr(r.progress_names, "c.json.gz"), "%s", r.progress_names);
	cr_expect(strstr(r.progress_names, "a/10.json"), "%s", r.progress_names);
	rec_free(&r);
	free(a);
	free(fifo);
	free(loop);
	free(aloop);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, missing_path_is_named_and_the_others_go_on)
{
	char *dir = tw_test_tmpdir(), *missing = tw_test_join(dir, "missing.json"), *ok = tw_test_join(dir, "ok.json");
	const char *paths[3] = { missing, ok, missing };
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	one_file(dir, "ok.json", 7, 0);
	cr_assert_eq(run(paths, 3, NULL, &r, &st, &err), TW_ENOENT);
	cr_expect(strstr(err.msg, missing), "%s", err.msg);
	cr_expect(strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
	cr_assert_eq(r.nev, 1);
	cr_expect_eq(r.ev[0].id, 7);
	rec_free(&r);
	free(missing);
	free(ok);
	tw_test_tmpdir_free(dir);
}

/* regular_only (the follow source): a path that is a symbolic link by the time it is read is
 * refused by name, not followed (here to a file whose records would otherwise be read), and a
 * FIFO is refused without blocking; the regular file beside them is read. */
Test(ingest_source, regular_only_refuses_links_and_special_files_by_name, .timeout = 20)
{
	char *dir = tw_test_tmpdir(), *sub = tw_test_join(dir, "elsewhere");
	char *target = tw_test_join(sub, "secret.json"), *link = tw_test_join(dir, "swapped.json");
	char *fifo = tw_test_join(dir, "fifo.json"), *ok = tw_test_join(dir, "ok.json");
	const char *paths[3] = { link, fifo, ok };
	struct tw_ingest_limits lim;
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	cr_assert_eq(mkdir(sub, 0700), 0);
	one_file(sub, "secret.json", 9, 0);
	one_file(dir, "ok.json", 7, 0);
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(mkfifo(fifo, 0600), 0);

	/* without the flag the link is followed (as for paths named on the command line) */
	cr_assert_eq(run(paths, 1, NULL, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 1);
	cr_expect_eq(r.ev[0].id, 9);
	rec_free(&r);

	tw_ingest_limits_default(&lim);
	lim.regular_only = 1;
	cr_assert_eq(run(paths, 3, &lim, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(r.nev, 1, "only ok.json is read, got %zu events", r.nev);
	cr_expect_eq(r.ev[0].id, 7);
	cr_assert_eq(r.nrej, 2);
	cr_expect_str_eq(r.rej[0].source, link);
	cr_expect(strstr(r.rej[0].reason, "symbolic link"), "%s", r.rej[0].reason);
	cr_expect_str_eq(r.rej[1].source, fifo);
	cr_expect_str_eq(r.rej[1].reason, "not a regular file");
	rec_free(&r);
	free(sub);
	free(target);
	free(link);
	free(fifo);
	free(ok);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, stdin_dash_reads_a_pipe)
{
	int fds[2], saved = dup(STDIN_FILENO);
	size_t n;
	char *text = ndjson(20, NULL, 0, "\n", &n);
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	cr_assert_lt(n, 60000); /* fits in the pipe: no writer thread needed */
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], text, n), (ssize_t)n);
	close(fds[1]);
	cr_assert_geq(dup2(fds[0], STDIN_FILENO), 0);
	close(fds[0]);
	cr_assert_eq(run1("-", 2, &r, &st, &err), TW_OK, "%s", err.msg);
	dup2(saved, STDIN_FILENO);
	close(saved);
	cr_assert_eq(r.nev, 20);
	cr_expect_eq(r.ev[19].id, 19);
	cr_expect_str_eq(r.first_source, "-");
	cr_expect_eq(st.bytes_in, n);
	rec_free(&r);
	free(text);
}

Test(ingest_source, sink_stop_ends_the_run_cleanly)
{
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "many.jsonl");
	size_t n;
	char *text = ndjson(12000, NULL, 0, "\n", &n);
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	tw_test_write_file(path, text, n);
	r.stop_at = 2;
	cr_assert_eq(run1(path, 2, &r, &st, &err), TW_ESTOP);
	cr_expect_str_eq(err.msg, "test sink is full");
	cr_expect_eq(r.nbatch, 2);
	for (size_t i = 0; i < r.nev; i++)
		cr_assert_eq(r.ev[i].id, i);
	rec_free(&r);
	free(text);
	free(path);
	tw_test_tmpdir_free(dir);
}

Test(ingest_source, progress_after_each_file)
{
	char *dir = tw_test_tmpdir();
	char *p1 = tw_test_join(dir, "one.json"), *p2 = tw_test_join(dir, "two.json");
	const char *paths[2] = { p1, p2 };
	struct rec r = { 0 };
	struct tw_ingest_stats st;
	struct tw_err err;

	one_file(dir, "one.json", 1, 0);
	one_file(dir, "two.json", 2, 1);
	cr_assert_eq(run(paths, 2, NULL, &r, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_geq(r.nprogress, 2);
	cr_expect(strstr(r.progress_names, p1), "%s", r.progress_names);
	cr_expect(strstr(r.progress_names, p2), "%s", r.progress_names);
	cr_expect_eq(r.nev, 2);
	rec_free(&r);
	free(p1);
	free(p2);
	tw_test_tmpdir_free(dir);
}

/* ---- on gen-cloudtrail's S3 layout (skipped when the generator is not there) --------------- */

/* eventIDs in delivery order. */
struct ids {
	char **v;   /* malloc'd strings */
	size_t n;   /* in use */
	size_t cap; /* allocated */
};

static void ids_add(struct ids *ids, const char *p, size_t n)
{
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 1024;
		ids->v = realloc(ids->v, ids->cap * sizeof *ids->v);
		cr_assert(ids->v);
	}
	ids->v[ids->n] = strndup(p, n);
	cr_assert(ids->v[ids->n]);
	ids->n++;
}

static void ids_free(struct ids *ids)
{
	for (size_t i = 0; i < ids->n; i++)
		free(ids->v[i]);
	free(ids->v);
	memset(ids, 0, sizeof *ids);
}

static enum tw_rc ids_batch(void *ctx, struct tw_batch *b, struct tw_err *err)
{
	(void)err;
	for (size_t i = 0; i < b->n; i++)
		ids_add(ctx, b->ev[i].f[TW_F_EVENT_ID].p, b->ev[i].f[TW_F_EVENT_ID].n);
	return TW_OK;
}

static int by_bytes(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The expected order, found independently: scandir sorted bytewise, gzread, jansson. */
static void expected_ids(const char *dir, struct ids *ids)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, by_bytes);

	cr_assert_geq(n, 0, "%s", dir);
	for (int i = 0; i < n; i++) {
		char *path = tw_test_join(dir, ents[i]->d_name);
		struct stat sb;
		if (ents[i]->d_name[0] != '.' && stat(path, &sb) == 0) {
			if (S_ISDIR(sb.st_mode)) {
				expected_ids(path, ids);
			} else {
				gzFile g = gzopen(path, "rb");
				char *text = malloc((size_t)64 << 20);
				int len = gzread(g, text, (64u << 20) - 1);
				json_error_t je;
				json_t *root, *recs;
				cr_assert_gt(len, 0, "%s", path);
				gzclose(g);
				root = json_loadb(text, (size_t)len, 0, &je);
				cr_assert(root, "%s: %s", path, je.text);
				recs = json_object_get(root, "Records");
				for (size_t k = 0; k < json_array_size(recs); k++) {
					json_t *id = json_object_get(json_array_get(recs, k), "eventID");
					ids_add(ids, json_string_value(id), json_string_length(id));
				}
				json_decref(root);
				free(text);
			}
		}
		free(path);
		free(ents[i]);
	}
	free(ents);
}

Test(ingest_source, gen_cloudtrail_s3_layout_in_delivery_order)
{
	const char *shared = getenv("TW_SHARED");
	char gen[4096], *dir, *trail;
	struct ids want = { 0 }, got1 = { 0 }, got2 = { 0 };
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_err err;
	struct tw_test_run run_gen;

	snprintf(gen, sizeof gen, "%s/bench/gen-cloudtrail", shared ? shared : "");
	if (!shared || access(gen, X_OK) != 0)
		cr_skip_test("gen-cloudtrail not found under $TW_SHARED/bench");
	dir = tw_test_tmpdir();
	trail = tw_test_join(dir, "trail");
	{
		const char *argv[] = { gen, "--events", "3000", "--seed", "5", "--s3-layout", trail, NULL };
		tw_test_run(&run_gen, NULL, argv);
		cr_assert_eq(run_gen.status, 0, "%s", run_gen.err);
		tw_test_run_free(&run_gen);
	}
	expected_ids(trail, &want);
	cr_assert_eq(want.n, 3000);
	tw_ingest_limits_default(&lim);
	for (unsigned t = 1; t <= 2; t++) {
		struct ids *got = t == 1 ? &got1 : &got2;
		struct tw_sink sink = { ids_batch, NULL, got };
		const char *paths[1] = { trail };
		lim.threads = t;
		memset(&st, 0, sizeof st);
		cr_assert_eq(tw_ingest_paths(paths, 1, &lim, &sink, NULL, &st, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(got->n, want.n, "threads=%u: %zu events", t, got->n);
		for (size_t i = 0; i < want.n; i++)
			cr_assert_str_eq(got->v[i], want.v[i], "threads=%u: event #%zu", t, i);
		cr_assert_eq(st.quarantined, 0);
	}
	ids_free(&want);
	ids_free(&got1);
	ids_free(&got2);
	free(trail);
	tw_test_tmpdir_free(dir);
}
