/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_faults_store.c: a store file made unreadable or corrupted under `trailwatch
 * query`: bytes flipped inside a block, a damaged header, a damaged section table, a segment the
 * MANIFEST lists but that is gone, a segment that cannot be read. Each time the query names the
 * file on stderr, answers from the rest of the store and exits 1 (partial). The store is three
 * segments of 200 records each (three ingests of files written here, users u0, u1, u2), so the
 * expected answers are counted by construction: 400 rows without the damaged segment. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/hostile.h"

#define PER_SEG 200

/* A store of three segments 00000001..3.tws holding users u0, u1, u2. Returns its path. */
static char *make_store(const char *tmp)
{
	char *store = tw_test_join(tmp, "store");

	for (int part = 0; part < 3; part++) {
		char name[32], *path;
		FILE *f;
		snprintf(name, sizeof name, "p%d.jsonl", part);
		path = tw_test_join(tmp, name);
		f = fopen(path, "w");
		cr_assert_not_null(f);
		for (int i = 0; i < PER_SEG; i++)
			fprintf(f,
				"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\","
				"\"arn\":\"arn:aws:iam::111122223333:user/u%d\",\"userName\":\"u%d\"},"
				"\"eventTime\":\"2026-01-0%dT00:%02d:%02dZ\",\"eventSource\":\"s3.amazonaws.com\","
				"\"eventName\":\"GetObject\",\"awsRegion\":\"us-east-1\",\"eventID\":\"e-%d-%d\","
				"\"recipientAccountId\":\"111122223333\"}\n",
				part, part, part + 1, i / 60, i % 60, part, i);
		fclose(f);
		const char *argv[] = { tw_test_bin(), "ingest", "--quiet", "--store", store, path, NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 0, "ingest %s: %s", name, r.err);
		tw_test_run_free(&r);
		free(path);
	}
	return store;
}

static char *seg_path(const char *store, int n)
{
	char name[64];
	snprintf(name, sizeof name, "seg/%08d.tws", n);
	return tw_test_join(store, name);
}

static void flip(const char *path, long off, size_t n)
{
	FILE *f = fopen(path, "r+b");
	cr_assert_not_null(f, "%s", path);
	for (size_t i = 0; i < n; i++) {
		int c;
		cr_assert_eq(fseek(f, off + (long)i, SEEK_SET), 0);
		c = fgetc(f);
		cr_assert_neq(c, EOF, "%s: offset %ld is past the end", path, off + (long)i);
		cr_assert_eq(fseek(f, off + (long)i, SEEK_SET), 0);
		fputc(c ^ 0xff, f);
	}
	fclose(f);
}

static long file_size(const char *path)
{
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0, "%s", path);
	return (long)sb.st_size;
}

/* Runs `query --store store --format json text`; checks exit 1, rows and that stderr names file. */
static void expect_partial(const char *store, const char *text, size_t rows, const char *file)
{
	const char *argv[] = { tw_test_bin(), "query", "--store", store, "--format", "json", text, NULL };
	struct tw_test_run r;

	tw_test_run(&r, NULL, argv);
	cr_expect_eq(r.status, 1, "query '%s': exit %d (want 1, partial)\nstderr: %s", text, r.status, r.err);
	cr_expect_eq(tw_test_count_lines(r.out, r.nout), rows, "query '%s': rows\nstderr: %s", text, r.err);
	cr_expect(strstr(r.err, file) != NULL, "stderr does not name %s: %s", file, r.err);
	tw_test_run_free(&r);
}

/* Flipped bytes in the middle of segment 2's blocks: its block fails its CRC when read; the
 * other segments answer, and a filter the index sends elsewhere never touches the damage. */
Test(faults_store, flipped_block_bytes_are_reported_and_the_rest_answers)
{
	char *tmp = tw_test_tmpdir(), *store = make_store(tmp), *seg = seg_path(store, 2);

	flip(seg, file_size(seg) / 4, 32);
	expect_partial(store, "fields eventID", 2 * PER_SEG, "00000002.tws");
	{ /* u0 lives in segment 1 only: the postings keep the query away from segment 2 */
		const char *argv[] = { tw_test_bin(), "query", "--store", store, "--format", "json",
				       "filter user = \"u0\" | fields eventID", NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, argv);
		cr_expect_eq(r.status, 0, "exit %d: %s", r.status, r.err);
		cr_expect_eq(tw_test_count_lines(r.out, r.nout), PER_SEG);
		tw_test_run_free(&r);
	}
	{ /* store verify names the same file */
		const char *argv[] = { tw_test_bin(), "store", "verify", store, NULL };
		struct tw_test_run r;
		tw_test_run(&r, NULL, argv);
		cr_expect_eq(r.status, 1, "verify exit %d", r.status);
		cr_expect(strstr(r.out, "00000002.tws") || strstr(r.err, "00000002.tws"), "%s%s", r.out, r.err);
		tw_test_run_free(&r);
	}
	free(seg);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* A damaged header (the magic at offset 0) and a damaged end of file (section table and footer):
 * the segment cannot be opened at all; the query goes on without it. */
Test(faults_store, damaged_header_or_footer_leaves_the_segment_out)
{
	char *tmp = tw_test_tmpdir(), *store = make_store(tmp);
	char *s1 = seg_path(store, 1), *s3 = seg_path(store, 3);

	flip(s1, 0, 4);
	expect_partial(store, "fields eventID", 2 * PER_SEG, "00000001.tws");
	flip(s3, file_size(s3) - 8, 8);
	expect_partial(store, "fields eventID", PER_SEG, "00000003.tws");
	expect_partial(store, "stats count(*) by user", 1, "00000003.tws");
	free(s1);
	free(s3);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* A segment the MANIFEST lists that is gone, and one that cannot be read (mode 000 for a user
 * without CAP_DAC_OVERRIDE; for root, which reads through any mode, a directory in its place:
 * open succeeds and read fails with EISDIR). */
Test(faults_store, missing_or_unreadable_segment_is_named)
{
	char *tmp = tw_test_tmpdir(), *store = make_store(tmp);
	char *s2 = seg_path(store, 2), *s3 = seg_path(store, 3);

	cr_assert_eq(unlink(s2), 0);
	expect_partial(store, "fields eventID", 2 * PER_SEG, "00000002.tws");
	if (geteuid() != 0) {
		cr_assert_eq(chmod(s3, 0), 0);
	} else {
		cr_assert_eq(unlink(s3), 0);
		cr_assert_eq(mkdir(s3, 0700), 0);
	}
	expect_partial(store, "fields eventID", PER_SEG, "00000003.tws");
	if (geteuid() != 0)
		chmod(s3, 0600);
	free(s2);
	free(s3);
	free(store);
	tw_test_tmpdir_free(tmp);
}

/* ---- a write that fails mid-stream: the file size limit (ulimit -f) ------------------------------ */

#define FS_FILES 40
#define FS_PER 500

/* in/f000.jsonl..f039.jsonl, FS_PER records each, eventIDs f-0..f-19999. */
static void write_follow_files(const char *dir)
{
	cr_assert_eq(mkdir(dir, 0700), 0);
	for (int f = 0; f < FS_FILES; f++) {
		char name[32], *path;
		FILE *out;
		snprintf(name, sizeof name, "f%03d.jsonl", f);
		path = tw_test_join(dir, name);
		cr_assert_not_null(out = fopen(path, "w"));
		for (int i = 0; i < FS_PER; i++) {
			int id = f * FS_PER + i;
			fprintf(out,
				"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\","
				"\"arn\":\"arn:aws:iam::111122223333:user/u%d\",\"userName\":\"u%d\"},"
				"\"eventTime\":\"2026-01-01T%02d:%02d:%02dZ\",\"eventSource\":\"s3.amazonaws.com\","
				"\"eventName\":\"GetObject\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"10.0.%d.%d\","
				"\"requestParameters\":{\"bucketName\":\"b%d\",\"key\":\"k/%d/%d\"},"
				"\"eventID\":\"f-%d\",\"recipientAccountId\":\"111122223333\"}\n",
				id % 7, id % 7, id / 3600 % 24, id / 60 % 60, id % 60, id % 250, id % 200, id % 13, f, i, id);
		}
		fclose(out);
		free(path);
	}
}

/* counts[id] = how many times f-<id> is in the store. */
static void stored_ids(const char *store, unsigned *counts)
{
	const char *argv[] = { tw_test_bin(), "query", "--store", store, "--format", "json", "fields eventID", NULL };
	struct tw_test_run r;
	const char *p;

	memset(counts, 0, FS_FILES * FS_PER * sizeof *counts);
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 0, "query: %s", r.err);
	for (p = r.out; (p = strstr(p, "\"f-")); p += 3) {
		long id = strtol(p + 3, NULL, 10);
		cr_assert(id >= 0 && id < FS_FILES * FS_PER, "unexpected id %ld", id);
		counts[id]++;
	}
	tw_test_run_free(&r);
}

/* The store's writer meets a write that fails (EFBIG past a 1 MiB file size limit: the same path
 * as ENOSPC on a full disk, reachable without root; the tmpfs disk-full case is in make soak):
 * `run` stops with exit 3 and an error naming the file and the reason; every file the follow
 * source acknowledged (its checkpoint) is whole in the store; started again without the limit it
 * takes the rest: every record exactly once and `store verify` clean. */
Test(faults_store, a_failing_write_stops_the_writer_and_loses_nothing_acknowledged, .timeout = 180)
{
	char *tmp = tw_test_tmpdir(), *in = tw_test_join(tmp, "in"), *store = tw_test_join(tmp, "store");
	char *log = tw_test_join(tmp, "run.log"), *cfg, *text, *ck, *ckpath, *line;
	char conf[4096];
	unsigned *counts = calloc(FS_FILES * FS_PER, sizeof *counts);
	struct tw_hostile_run r;
	size_t n;
	int acked = 0, lost = 0, dups = 0, missing = 0;

	cr_assert_not_null(counts);
	write_follow_files(in);
	snprintf(conf, sizeof conf,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"follow\",\"follow\":{\"path\":\"%s\","
		 "\"rescan\":\"200ms\"}}],\"log\":{\"file\":\"%s\"}}",
		 store, in, log);
	cfg = tw_test_write_str(tmp, "run.json", conf);
	const char *argv[] = { tw_test_bin(), "run", "--config", cfg, "--exit-at-end", NULL };

	tw_hostile_run_fsize(&r, argv, NULL, 077, 120, 1L << 20);
	text = tw_test_read_file(log, &n);
	cr_assert_eq(r.status, 3, "run under a 1 MiB file size limit: exit %d (want 3)\n%s", r.status, text);
	cr_expect(strstr(text, "error: ") && strstr(text, store) && strstr(text, strerror(EFBIG)),
		  "the log names the file and the reason:\n%s", text);
	tw_hostile_run_free(&r);

	/* what the checkpoint acknowledged is whole in the store */
	ckpath = tw_test_join(store, "follow-0.checkpoint");
	ck = tw_test_read_file(ckpath, &n);
	stored_ids(store, counts);
	for (line = ck; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		/* "size mtime rel": rel is f<NNN>.jsonl */
		char *nl = strchr(line, '\n'), *f = line;
		for (char *c = line; *c && c != nl; c++)
			if (*c == ' ')
				f = c + 1;
		if (*f != 'f')
			continue;
		int file = atoi(f + 1);
		cr_assert(file >= 0 && file < FS_FILES, "checkpoint line %.80s", line);
		acked++;
		for (int i = 0; i < FS_PER; i++)
			lost += counts[file * FS_PER + i] != 1;
	}
	cr_assert(acked > 0 && acked < FS_FILES, "%d of %d files acknowledged: the limit was not met mid-way", acked,
		  FS_FILES);
	cr_expect_eq(lost, 0, "%d records of the %d acknowledged files are not in the store once", lost, acked);

	/* the limit lifted: the rest lands, nothing twice */
	tw_hostile_run(&r, argv, NULL, 077, 120);
	cr_assert_eq(r.status, 0, "restart: exit %d\n%s", r.status, r.err);
	tw_hostile_run_free(&r);
	stored_ids(store, counts);
	for (int i = 0; i < FS_FILES * FS_PER; i++) {
		missing += counts[i] == 0;
		dups += counts[i] > 1;
	}
	cr_expect_eq(missing, 0, "%d records missing after the restart", missing);
	cr_expect_eq(dups, 0, "%d records stored twice", dups);
	{
		const char *vargv[] = { tw_test_bin(), "store", "verify", store, NULL };
		struct tw_test_run v;
		tw_test_run(&v, NULL, vargv);
		cr_expect_eq(v.status, 0, "store verify: %s%s", v.out, v.err);
		tw_test_run_free(&v);
	}
	free(counts);
	free(ck);
	free(ckpath);
	free(text);
	free(cfg);
	free(log);
	free(in);
	free(store);
	tw_test_tmpdir_free(tmp);
}
