/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_faults_store.c: a store file made unreadable or corrupted under `trailwatch
 * query`: bytes flipped inside a block, a damaged header, a damaged section table, a segment the
 * MANIFEST lists but that is gone, a segment that cannot be read. Each time the query names the
 * file on stderr, answers from the rest of the store and exits 1 (partial). The store is three
 * segments of 200 records each (three ingests of files written here, users u0, u1, u2), so the
 * expected answers are counted by construction: 400 rows without the damaged segment. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"

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
