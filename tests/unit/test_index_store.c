/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_index_store.c: the store directory keeps exactly the acknowledged records, once.
 * Round trips through seals, reopen and compaction (raw bytes compared); dedup by id and by
 * content within a batch, the WAL, segments and across reopen; the writer lock; every crash point
 * of seal / compaction / retention (index/store_int.h hook); ENOSPC through the WAL hook; seal by
 * age and retention with an injected clock; stat; verify on clean and damaged stores; snapshots
 * surviving a seal and a compaction; a kill -9 loop; a reader thread opening snapshots while a
 * writer thread seals in the background and compacts; and a segment write that fails (RLIMIT_FSIZE
 * in a child, so it works as root) on the inline and the background seal path; compaction in passes
 * of bounded fan-in (40 segments, 4 at a time; a crash between passes). Each test uses its
 * own mkdtemp directory. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index/store.h"
#include "index/store_int.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];
	struct stat sb;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* A test's directory: root (mkdtemp) and root/store. */
struct tdir {
	char root[64];  /* mkdtemp */
	char dir[96];   /* the store */
};

static void tdir_make(struct tdir *t)
{
	snprintf(t->root, sizeof t->root, "/tmp/tw-store-XXXXXX");
	cr_assert(mkdtemp(t->root), "mkdtemp: %s", strerror(errno));
	snprintf(t->dir, sizeof t->dir, "%s/store", t->root);
}

static void tdir_clean(struct tdir *t)
{
	rm_tree(t->root);
}

/* Raw JSON of generated record i (id-less records when noid). */
static int gen_raw(char *out, size_t cap, unsigned i, int noid)
{
	if (noid)
		return snprintf(out, cap, "{\"noid\":%u,\"msg\":\"line %u\"}", i, i);
	return snprintf(out, cap, "{\"eventID\":\"ev-%08u\",\"eventName\":\"Op%u\",\"n\":%u}", i, i % 11, i);
}

static int64_t gen_time(unsigned i)
{
	return 1700000000000ll + (int64_t)((i * 7919u) % 100000u) * 1000;
}

static struct tw_str dup_str(struct tw_batch *b, const char *s)
{
	struct tw_str out;

	cr_assert_eq(tw_arena_dup(&b->arena, (struct tw_str){ s, strlen(s) }, &out, NULL), TW_OK);
	return out;
}

/* Appends record i to b (time t, or gen_time(i) when t == 0). */
static void gen_push_t(struct tw_batch *b, unsigned i, int noid, int64_t t)
{
	struct tw_event *ev = tw_batch_push(b, NULL);
	char tmp[160];

	cr_assert(ev);
	ev->kind = noid ? TW_KIND_CWLOG : TW_KIND_CLOUDTRAIL;
	ev->time_ms = t ? t : gen_time(i);
	gen_raw(tmp, sizeof tmp, i, noid);
	ev->raw = dup_str(b, tmp);
	if (!noid) {
		snprintf(tmp, sizeof tmp, "ev-%08u", i);
		ev->f[TW_F_EVENT_ID] = dup_str(b, tmp);
		snprintf(tmp, sizeof tmp, "Op%u", i % 11);
		ev->f[TW_F_EVENT_NAME] = dup_str(b, tmp);
		snprintf(tmp, sizeof tmp, "arn:aws:iam::123456789012:user/u%u", i % 17);
		ev->f[TW_F_PRINCIPAL] = dup_str(b, tmp);
		snprintf(tmp, sizeof tmp, "s%u.amazonaws.com", i % 5);
		ev->f[TW_F_EVENT_SOURCE] = dup_str(b, tmp);
	} else {
		ev->f[TW_F_LOG_GROUP] = dup_str(b, "/app/log");
	}
}

static void gen_push(struct tw_batch *b, unsigned i, int noid)
{
	gen_push_t(b, i, noid, 0);
}

/* Appends records [from, to) in one batch; checks the result counts. */
static void append_range(struct tw_store *s, unsigned from, unsigned to, int noid, uint64_t want_stored,
			 uint64_t want_dups)
{
	struct tw_store_append_result res = { 99, 99 };
	struct tw_batch b;
	struct tw_err err = { 0 };
	unsigned i;

	tw_batch_init(&b);
	for (i = from; i < to; i++)
		gen_push(&b, i, noid);
	cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_OK, "append: %s", err.msg);
	cr_assert_eq(res.stored, want_stored, "stored %llu, want %llu", (unsigned long long)res.stored,
		     (unsigned long long)want_stored);
	cr_assert_eq(res.duplicates, want_dups, "dups %llu, want %llu", (unsigned long long)res.duplicates,
		     (unsigned long long)want_dups);
	tw_batch_free(&b);
}

/* Every record of a snapshot, as malloc'd NUL-terminated raw strings. */
struct rawset {
	char **v;   /* strings */
	size_t n;   /* in use */
	size_t cap; /* allocated */
};

static void rawset_add(struct rawset *r, struct tw_str s)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = realloc(r->v, r->cap * sizeof *r->v);
		cr_assert(r->v);
	}
	r->v[r->n] = malloc(s.n + 1);
	cr_assert(r->v[r->n]);
	memcpy(r->v[r->n], s.p, s.n);
	r->v[r->n][s.n] = 0;
	r->n++;
}

static void rawset_free(struct rawset *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof *r);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads every record a snapshot holds. */
static void snap_collect(struct tw_snap *snap, struct rawset *r)
{
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	const struct tw_batch *tail;
	size_t i;

	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	for (i = 0; i < tw_snap_nsegs(snap); i++) {
		struct tw_seg *seg = tw_snap_seg(snap, i);
		uint64_t k, n = tw_seg_get_info(seg)->records;

		for (k = 0; k < n; k++) {
			struct tw_event ev;
			struct tw_err err = { 0 };

			tw_arena_reset(&a);
			cr_assert_eq(tw_seg_get(seg, (uint32_t)k, &bb, &ev, &a, &err), TW_OK, "get: %s", err.msg);
			rawset_add(r, ev.raw);
		}
	}
	tail = tw_snap_tail(snap);
	for (i = 0; i < tail->n; i++)
		rawset_add(r, tail->ev[i].raw);
	tw_seg_blockbuf_free(&bb);
	tw_arena_free(&a);
}

/* Checks that the store (a fresh snapshot) holds exactly records [0, n) (ids) plus [0, nnoid) (no ids). */
static void check_exact_snap(struct tw_snap *snap, unsigned n, unsigned nnoid)
{
	struct rawset got = { 0 }, want = { 0 };
	char tmp[160];
	unsigned i;
	size_t k;

	snap_collect(snap, &got);
	for (i = 0; i < n; i++) {
		gen_raw(tmp, sizeof tmp, i, 0);
		rawset_add(&want, (struct tw_str){ tmp, strlen(tmp) });
	}
	for (i = 0; i < nnoid; i++) {
		gen_raw(tmp, sizeof tmp, i, 1);
		rawset_add(&want, (struct tw_str){ tmp, strlen(tmp) });
	}
	cr_assert_eq(got.n, want.n, "store holds %zu records, want %zu", got.n, want.n);
	if (got.n) {
		qsort(got.v, got.n, sizeof *got.v, cmp_str);
		qsort(want.v, want.n, sizeof *want.v, cmp_str);
	}
	for (k = 0; k < got.n; k++)
		cr_assert_str_eq(got.v[k], want.v[k], "record %zu differs", k);
	rawset_free(&got);
	rawset_free(&want);
}

static void check_exact(const char *dir, unsigned n, unsigned nnoid)
{
	struct tw_snap *snap = NULL;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_snap_open(dir, &snap, &err), TW_OK, "snap: %s", err.msg);
	check_exact_snap(snap, n, nnoid);
	tw_snap_close(snap);
}

static void check_verify_clean(const char *dir)
{
	struct tw_err err = { 0 };
	uint64_t problems = 99;

	cr_assert_eq(tw_store_verify(dir, NULL, NULL, &problems, &err), TW_OK, "verify: %s", err.msg);
	cr_assert_eq(problems, 0);
}

/* Options: small seals driven by the test, fsync on. */
static void small_opts(struct tw_store_opts *o)
{
	tw_store_opts_default(o);
	o->seal_bytes = 1ull << 40; /* the tests seal by hand unless they say otherwise */
	o->seal_age_ms = 0;
	o->seg.block_bytes = 4096;  /* several blocks per segment */
}

static struct tw_store *open_store(const char *dir, const struct tw_store_opts *o, struct tw_store_recovery *rec)
{
	struct tw_store *s = NULL;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_store_open(dir, o, &s, rec, &err), TW_OK, "open: %s", err.msg);
	return s;
}

static void seal(struct tw_store *s)
{
	struct tw_err err = { 0 };

	cr_assert_eq(tw_store_seal(s, &err), TW_OK, "seal: %s", err.msg);
}

static uint64_t nsegs(const char *dir)
{
	struct tw_store_stats st;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_store_stat(dir, &st, &err), TW_OK, "stat: %s", err.msg);
	return st.segments;
}

/* Files in dir/seg. */
static unsigned seg_files(const char *dir)
{
	char p[160];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;

	snprintf(p, sizeof p, "%s/seg", dir);
	d = opendir(p);
	cr_assert(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- round trips -------------------------------------------------------------------------- */

Test(index_store, roundtrip_through_seals_reopen_and_compaction)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	uint64_t merged = 0;
	unsigned i;
	struct stat sb;
	char p[160];

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 0);
	check_exact(t.dir, 0, 0);
	for (i = 0; i < 10; i++)
		append_range(s, i * 100, i * 100 + 100, 0, 100, 0);
	check_exact(t.dir, 1000, 0); /* all in the WAL */
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 10);
	cr_assert_eq(rec.wal_bytes_cut, 0);
	check_exact(t.dir, 1000, 0);
	seal(s);
	cr_assert_eq(nsegs(t.dir), 1);
	check_exact(t.dir, 1000, 0);
	{
		struct tw_store_stats st;

		cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK);
		cr_assert_eq(st.bytes_wal, TW_WAL_HEADER_SIZE, "the WAL is emptied by a seal");
		cr_assert_eq(st.wal_records, 0);
	}
	for (i = 10; i < 40; i++) {
		append_range(s, i * 100, i * 100 + 100, 0, 100, 0);
		if (i % 10 == 9)
			seal(s);
	}
	append_range(s, 4000, 4050, 0, 50, 0);
	cr_assert_eq(nsegs(t.dir), 4);
	check_exact(t.dir, 4050, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 1);
	check_exact(t.dir, 4050, 0);
	cr_assert_eq(tw_store_compact(s, 0, &merged, &err), TW_OK, "compact: %s", err.msg);
	cr_assert_eq(merged, 4);
	cr_assert_eq(nsegs(t.dir), 1);
	cr_assert_eq(seg_files(t.dir), 1, "old segment files unlinked");
	check_exact(t.dir, 4050, 0);
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	/* permissions: directories 0700, files 0600 */
	cr_assert_eq(stat(t.dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	snprintf(p, sizeof p, "%s/MANIFEST", t.dir);
	cr_assert_eq(stat(p, &sb), 0);
	cr_assert_eq(sb.st_mode & 0077, 0);
	snprintf(p, sizeof p, "%s/seg", t.dir);
	cr_assert_eq(stat(p, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	tdir_clean(&t);
}

Test(index_store, seals_by_size_on_its_own)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	unsigned i;

	tdir_make(&t);
	small_opts(&o);
	o.seal_bytes = 16 << 10;
	s = open_store(t.dir, &o, NULL);
	for (i = 0; i < 30; i++)
		append_range(s, i * 50, i * 50 + 50, 0, 50, 0);
	cr_assert_geq(nsegs(t.dir), 3, "a 16 KiB seal threshold over ~100 KiB of WAL seals several times");
	check_exact(t.dir, 1500, 0);
	/* after seals, ids in segments still dedup */
	append_range(s, 0, 1500, 0, 0, 1500);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	check_verify_clean(t.dir);
	tdir_clean(&t);
}

/* ---- dedup -------------------------------------------------------------------------------- */

Test(index_store, dedup_by_id_in_batch_wal_segment_and_reopen)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_append_result res;
	struct tw_batch b;
	struct tw_err err = { 0 };
	unsigned i;

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	append_range(s, 0, 100, 0, 0, 100);       /* the same batch again: all in the WAL set */
	append_range(s, 50, 150, 0, 50, 50);      /* half new */
	/* duplicates within one batch: 150..159 twice, 0..9 (already stored) twice */
	tw_batch_init(&b);
	for (i = 150; i < 160; i++) {
		gen_push(&b, i, 0);
		gen_push(&b, i, 0);
	}
	for (i = 0; i < 10; i++) {
		gen_push(&b, i, 0);
		gen_push(&b, i, 0);
	}
	cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(res.stored, 10);
	cr_assert_eq(res.duplicates, 30);
	tw_batch_free(&b);
	check_exact(t.dir, 160, 0);
	seal(s);
	append_range(s, 0, 160, 0, 0, 160);       /* across a seal: found in the segment */
	append_range(s, 155, 170, 0, 10, 5);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 170, 0, 0, 170);       /* across a reopen: segment + rebuilt WAL set */
	append_range(s, 165, 200, 0, 30, 5);
	check_exact(t.dir, 200, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

Test(index_store, dedup_records_without_id_by_content)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_append_result res;
	struct tw_batch b;
	struct tw_err err = { 0 };

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 50, 1, 50, 0);
	append_range(s, 0, 50, 1, 0, 50);
	/* same raw, other time: a different record; same raw and time: a duplicate */
	tw_batch_init(&b);
	gen_push_t(&b, 7, 1, gen_time(7) + 1);
	gen_push(&b, 8, 1);
	cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(res.stored, 1);
	cr_assert_eq(res.duplicates, 1);
	tw_batch_free(&b);
	seal(s);
	append_range(s, 0, 60, 1, 10, 50);        /* through the segment's content set */
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 60, 1, 0, 60);         /* segment + WAL after reopen */
	/* ids and id-less records mixed */
	append_range(s, 0, 10, 0, 10, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	{
		struct tw_store_stats st;

		cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK);
		cr_assert_eq(st.records, 60 + 1 + 10);
	}
	tdir_clean(&t);
}

/* ---- the lock ----------------------------------------------------------------------------- */

Test(index_store, second_writer_gets_ebusy_with_pid)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s, *s2 = NULL;
	struct tw_err err = { 0 };
	char want[64];
	pid_t pid;
	int status;

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	cr_assert_eq(tw_store_open(t.dir, &o, &s2, NULL, &err), TW_EBUSY);
	cr_assert_null(s2);
	snprintf(want, sizeof want, "(pid %ld)", (long)getpid());
	cr_assert(strstr(err.msg, want), "message names the holder: %s", err.msg);
	cr_assert(strstr(err.msg, "being written by another process"), "%s", err.msg);
	/* another process too */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct tw_store *c = NULL;
		struct tw_err e2 = { 0 };

		_exit(tw_store_open(t.dir, &o, &c, NULL, &e2) == TW_EBUSY ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* readers need no lock */
	check_exact(t.dir, 0, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	s = open_store(t.dir, &o, NULL); /* released on close */
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

/* ---- crash windows ------------------------------------------------------------------------ */

/* Builds 3 segments (0..300) + WAL (300..350), arms the hook, runs op, reopens and checks. */
static void crash_case(enum tw_store_crash at, int op, uint64_t want_orphans)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	uint64_t x = 0;
	enum tw_rc rc;

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	append_range(s, 100, 200, 0, 100, 0);
	seal(s);
	append_range(s, 200, 300, 0, 100, 0);
	seal(s);
	append_range(s, 300, 350, 0, 50, 0);
	tw_store_test_crash_at = at;
	if (op == 0)
		rc = tw_store_seal(s, &err);
	else if (op == 1)
		rc = tw_store_compact(s, 0, &x, &err);
	else
		rc = tw_store_retain(s, gen_time(0) + 200000000, &x, &err); /* after every record */
	cr_assert_eq(rc, TW_EIO, "the hook fired at %d: %s", (int)at, err.msg);
	/* sticky */
	{
		struct tw_batch b;
		struct tw_store_append_result res;

		tw_batch_init(&b);
		gen_push(&b, 9999, 0);
		cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_EIO);
		cr_assert(strstr(err.msg, "stopped"), "%s", err.msg);
		tw_batch_free(&b);
	}
	tw_store_close(s, NULL); /* frees memory only, like a crash */
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.orphans_removed, want_orphans, "orphans %llu, want %llu",
		     (unsigned long long)rec.orphans_removed, (unsigned long long)want_orphans);
	if (want_orphans)
		cr_assert(rec.note[0], "the note says what happened");
	if (op == 2) {
		struct tw_store_stats st;

		cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK);
		cr_assert_eq(st.records, 50);
		cr_assert_eq(st.segments, 0);
		cr_assert_eq(seg_files(t.dir), 0);
	} else {
		check_exact(t.dir, 350, 0);
		append_range(s, 0, 350, 0, 0, 350); /* nothing lost from the dedup state either */
		seal(s);
		check_exact(t.dir, 350, 0);
	}
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

Test(index_store, crash_after_seal_segment_written)
{
	crash_case(TW_STORE_CRASH_SEAL_SEGMENT, 0, 1);
}

Test(index_store, crash_after_seal_manifest_written)
{
	crash_case(TW_STORE_CRASH_SEAL_MANIFEST, 0, 0);
}

Test(index_store, crash_after_compaction_segment_written)
{
	crash_case(TW_STORE_CRASH_COMPACT_SEGMENT, 1, 1);
}

Test(index_store, crash_after_compaction_manifest_swapped)
{
	crash_case(TW_STORE_CRASH_COMPACT_MANIFEST, 1, 3);
}

Test(index_store, crash_after_retention_manifest_swapped)
{
	crash_case(TW_STORE_CRASH_RETAIN_MANIFEST, 2, 3);
}

Test(index_store, crash_after_wal_renamed_to_sealing)
{
	crash_case(TW_STORE_CRASH_ROTATE_RENAMED, 0, 0);
}

Test(index_store, crash_after_wal_rotated_before_segment)
{
	crash_case(TW_STORE_CRASH_ROTATE_DONE, 0, 0);
}

static int path_exists(const char *dir, const char *name)
{
	char p[160];
	struct stat sb;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return stat(p, &sb) == 0;
}

/* A seal stopped after the WAL was frozen (wal.sealing) and, at `at`, before or after the new wal:
 * readers see every record; a reopen keeps the frozen frames as unsealed (they dedup and are
 * counted) without sealing them until asked, and the seal then removes wal.sealing. */
static void frozen_case(enum tw_store_crash at)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	struct tw_store_stats st;

	tdir_make(&t);
	small_opts(&o);
	o.seal_async = 0;
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	append_range(s, 100, 150, 0, 50, 0);
	append_range(s, 150, 200, 0, 50, 0);
	tw_store_test_crash_at = at;
	cr_assert_eq(tw_store_seal(s, &err), TW_EIO, "the hook fired: %s", err.msg);
	tw_store_close(s, NULL);
	cr_assert(path_exists(t.dir, "wal.sealing"), "the frozen WAL is left");
	cr_assert_eq(path_exists(t.dir, "wal"), at == TW_STORE_CRASH_ROTATE_DONE);
	check_exact(t.dir, 200, 0); /* snapshots read wal.sealing (and wal when there) */
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.wal_records, 100);
	cr_assert_eq(st.segments, 1);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 2, "the two frozen frames are recovered");
	cr_assert_eq(rec.orphans_removed, 0);
	cr_assert(path_exists(t.dir, "wal"), "a fresh WAL is created");
	/* no seal ran at open (seal_async = 0): the frozen frames dedup from memory */
	append_range(s, 100, 250, 0, 50, 100);
	cr_assert(path_exists(t.dir, "wal.sealing"));
	check_exact(t.dir, 250, 0);
	seal(s);
	cr_assert(!path_exists(t.dir, "wal.sealing"), "sealed and removed");
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.wal_records, 0);
	cr_assert_eq(st.segments, 3, "the frozen WAL and the new one are two segments");
	check_exact(t.dir, 250, 0);
	append_range(s, 0, 250, 0, 0, 250);
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 0);
	check_exact(t.dir, 250, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

Test(index_store, frozen_wal_without_new_wal_is_recovered)
{
	frozen_case(TW_STORE_CRASH_ROTATE_RENAMED);
}

Test(index_store, frozen_wal_next_to_new_wal_is_recovered)
{
	frozen_case(TW_STORE_CRASH_ROTATE_DONE);
}

/* Background seals: appends go on while wal.sealing is sealed; duplicates of records in the
 * frozen WAL, in the fresh WAL and in segments are all caught; close waits for the seal in flight. */
Test(index_store, background_seals_keep_every_record_once)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	struct tw_store_stats st;
	unsigned i;

	tdir_make(&t);
	small_opts(&o);
	o.seal_async = 1;
	o.seal_bytes = 8 << 10;
	s = open_store(t.dir, &o, NULL);
	for (i = 0; i < 40; i++) {
		append_range(s, i * 50, i * 50 + 50, 0, 50, 0);
		/* the previous batch is in the WAL, wal.sealing or a segment: a duplicate either way */
		append_range(s, i ? i * 50 - 50 : 0, i * 50 + 50, 0, 0, i ? 100 : 50);
	}
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
	cr_assert(!path_exists(t.dir, "wal.sealing"), "close committed the seal in flight");
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_geq(st.segments, 5, "8 KiB seals over ~200 KiB of WAL: %llu segments",
		      (unsigned long long)st.segments);
	check_exact(t.dir, 2000, 0);
	s = open_store(t.dir, &o, &rec);
	append_range(s, 0, 2000, 0, 0, 2000);
	seal(s);
	check_exact(t.dir, 2000, 0);
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

/* The same with seals on the calling thread (seal_async = 0): each due seal is done on return. */
Test(index_store, synchronous_seals_by_size)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	unsigned i;

	tdir_make(&t);
	small_opts(&o);
	o.seal_async = 0;
	o.seal_bytes = 16 << 10;
	s = open_store(t.dir, &o, NULL);
	for (i = 0; i < 30; i++) {
		append_range(s, i * 50, i * 50 + 50, 0, 50, 0);
		cr_assert(!path_exists(t.dir, "wal.sealing"), "no seal left in flight");
	}
	cr_assert_geq(nsegs(t.dir), 3);
	check_exact(t.dir, 1500, 0);
	append_range(s, 0, 1500, 0, 0, 1500);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	check_verify_clean(t.dir);
	tdir_clean(&t);
}

Test(index_store, leftover_tmp_files_are_removed)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	char p[200];

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	snprintf(p, sizeof p, "%s/seg/00000002.tws.tmp", t.dir);
	{
		int fd = open(p, O_WRONLY | O_CREAT, 0600);

		cr_assert(fd >= 0);
		cr_assert_eq(write(fd, "half", 4), 4);
		close(fd);
	}
	snprintf(p, sizeof p, "%s/MANIFEST.tmp", t.dir);
	{
		int fd = open(p, O_WRONLY | O_CREAT, 0600);

		cr_assert(fd >= 0);
		cr_assert_eq(write(fd, "half", 4), 4);
		close(fd);
	}
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.orphans_removed, 1);
	cr_assert_eq(access(p, F_OK), -1, "MANIFEST.tmp removed");
	cr_assert_eq(seg_files(t.dir), 1);
	append_range(s, 100, 200, 0, 100, 0);
	seal(s); /* must not reuse number 2 (it was seen on disk) */
	snprintf(p, sizeof p, "%s/seg/00000003.tws", t.dir);
	cr_assert_eq(access(p, F_OK), 0, "the next segment skips the number of the leftover");
	check_exact(t.dir, 200, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

/* ---- I/O failure -------------------------------------------------------------------------- */

/* WAL hook: fails every write with ENOSPC once armed. */
struct nospace {
	int armed; /* 1: fail */
	int calls; /* failed calls */
};

static ssize_t nospace_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	struct nospace *ns = ctx;

	if (ns->armed) {
		ns->calls++;
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, p, n, off);
}

Test(index_store, enospc_stops_the_writer_and_keeps_acknowledged_batches)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	struct nospace ns = { 0, 0 };
	struct tw_wal_io io = { nospace_pwrite, NULL, &ns };
	struct tw_store_append_result res;
	struct tw_batch b;
	unsigned i;

	tdir_make(&t);
	small_opts(&o);
	o.io = &io;
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	append_range(s, 100, 200, 0, 100, 0);
	ns.armed = 1;
	tw_batch_init(&b);
	for (i = 200; i < 300; i++)
		gen_push(&b, i, 0);
	cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_EIO);
	cr_assert(strstr(err.msg, strerror(ENOSPC)), "%s", err.msg);
	ns.armed = 0; /* the disk has room again: the writer must still refuse */
	cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_EIO);
	cr_assert(strstr(err.msg, "stopped"), "%s", err.msg);
	cr_assert_eq(tw_store_seal(s, &err), TW_EIO);
	tw_batch_free(&b);
	cr_assert_geq(ns.calls, 1);
	tw_store_close(s, NULL);
	o.io = NULL;
	s = open_store(t.dir, &o, NULL);
	check_exact(t.dir, 200, 0);
	append_range(s, 150, 300, 0, 100, 50);
	check_exact(t.dir, 300, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	check_verify_clean(t.dir);
	tdir_clean(&t);
}

/* ---- age, retention, stat ----------------------------------------------------------------- */

static int64_t fake_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

Test(index_store, seal_by_age_retention_and_stat)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	struct tw_store_stats st;
	struct tw_batch b;
	struct tw_store_append_result res;
	int64_t now = 1000000, day = 86400000, t0 = 1700000000000ll;
	uint64_t removed = 99, raw = 0;
	unsigned i;
	char tmp[160];

	tdir_make(&t);
	small_opts(&o);
	o.seal_age_ms = 60000;
	o.clock = fake_clock;
	o.clock_ctx = &now;
	s = open_store(t.dir, &o, NULL);
	/* three days of records, one batch per day, sealed by age */
	for (i = 0; i < 3; i++) {
		unsigned k;

		tw_batch_init(&b);
		for (k = 0; k < 10; k++) {
			gen_push_t(&b, i * 10 + k, 0, t0 + (int64_t)i * day + k);
			gen_raw(tmp, sizeof tmp, i * 10 + k, 0);
			raw += strlen(tmp);
		}
		cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(res.stored, 10);
		tw_batch_free(&b);
		cr_assert_eq(nsegs(t.dir), i, "not sealed before the age is reached");
		now += 59999;
		append_range(s, 0, 0, 0, 0, 0); /* an empty batch still checks the age */
		cr_assert_eq(nsegs(t.dir), i);
		now += 1;
		append_range(s, 0, 0, 0, 0, 0);
		cr_assert_eq(nsegs(t.dir), i + 1, "sealed once the oldest batch is 60 s old");
	}
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.records, 30);
	cr_assert_eq(st.wal_records, 0);
	cr_assert_eq(st.segments, 3);
	cr_assert_eq(st.tmin, t0);
	cr_assert_eq(st.tmax, t0 + 2 * day + 9);
	cr_assert_eq(st.raw_bytes, raw);
	cr_assert_gt(st.bytes_blocks, 0);
	cr_assert_geq(st.bytes_total, st.bytes_blocks + st.bytes_postings + st.bytes_wal);
	/* keep the last day and a half */
	cr_assert_eq(tw_store_retain(s, t0 + day + 9, &removed, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(removed, 1, "only the first day's segment is entirely older");
	cr_assert_eq(tw_store_retain(s, t0 + day + 9, &removed, &err), TW_OK);
	cr_assert_eq(removed, 0, "the second day's tmax is the cutoff: kept");
	append_range(s, 30, 35, 0, 5, 0);
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK);
	cr_assert_eq(st.records, 25);
	cr_assert_eq(st.wal_records, 5);
	cr_assert_eq(st.segments, 2);
	{
		int64_t want = t0 + day; /* the oldest kept segment, or an older WAL record */

		for (i = 30; i < 35; i++)
			if (gen_time(i) < want)
				want = gen_time(i);
		cr_assert_eq(st.tmin, want, "tmin %lld", (long long)st.tmin);
	}
	cr_assert_eq(seg_files(t.dir), 2);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	/* an empty store */
	{
		struct tdir t2;

		tdir_make(&t2);
		s = open_store(t2.dir, &o, NULL);
		cr_assert_eq(tw_store_stat(t2.dir, &st, &err), TW_OK);
		cr_assert_eq(st.records, 0);
		cr_assert_gt(st.tmin, st.tmax);
		tw_store_close(s, NULL);
		tdir_clean(&t2);
	}
	tdir_clean(&t);
}

/* ---- verify ------------------------------------------------------------------------------- */

struct lines {
	char buf[4096]; /* every problem, newline-separated */
	int n;          /* problems */
};

static void collect_problem(void *ctx, const char *problem)
{
	struct lines *l = ctx;
	size_t k = strlen(l->buf);

	snprintf(l->buf + k, sizeof l->buf - k, "%s\n", problem);
	l->n++;
}

Test(index_store, verify_names_a_damaged_segment)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	struct lines l;
	uint64_t problems = 0;
	char p[200];
	struct stat sb;
	int fd;
	unsigned char c;

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 500, 0, 500, 0);
	seal(s);
	append_range(s, 500, 600, 0, 100, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	check_verify_clean(t.dir);
	snprintf(p, sizeof p, "%s/seg/00000001.tws", t.dir);
	cr_assert_eq(stat(p, &sb), 0);
	fd = open(p, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &c, 1, sb.st_size / 3), 1); /* inside the blocks */
	c ^= 0x10;
	cr_assert_eq(pwrite(fd, &c, 1, sb.st_size / 3), 1);
	close(fd);
	memset(&l, 0, sizeof l);
	cr_assert_eq(tw_store_verify(t.dir, collect_problem, &l, &problems, &err), TW_ECORRUPT);
	cr_assert_geq(problems, 1);
	cr_assert_eq((int)problems, l.n);
	cr_assert(strstr(l.buf, "00000001.tws"), "names the file: %s", l.buf);
	/* a damaged MANIFEST is reported too, never read as empty */
	snprintf(p, sizeof p, "%s/MANIFEST", t.dir);
	fd = open(p, O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &c, 1, 30), 1);
	c ^= 0x01;
	cr_assert_eq(pwrite(fd, &c, 1, 30), 1);
	close(fd);
	memset(&l, 0, sizeof l);
	cr_assert_eq(tw_store_verify(t.dir, collect_problem, &l, &problems, &err), TW_ECORRUPT);
	cr_assert(strstr(l.buf, "MANIFEST"), "%s", l.buf);
	{
		struct tw_snap *snap = NULL;

		cr_assert_eq(tw_snap_open(t.dir, &snap, &err), TW_ECORRUPT);
		cr_assert_eq(tw_store_open(t.dir, &o, &s, NULL, &err), TW_ECORRUPT);
	}
	tdir_clean(&t);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

Test(index_store, snapshot_survives_seal_compaction_and_retention)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_snap *snap = NULL;
	struct tw_err err = { 0 };
	uint64_t merged = 0, removed = 0;

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	append_range(s, 100, 200, 0, 100, 0);
	seal(s);
	append_range(s, 200, 250, 0, 50, 0);
	cr_assert_eq(tw_snap_open(t.dir, &snap, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_snap_nsegs(snap), 2);
	cr_assert_eq(tw_snap_tail(snap)->n, 50);
	seal(s);
	append_range(s, 250, 260, 0, 10, 0); /* after the snapshot: not in it */
	cr_assert_eq(tw_store_compact(s, 0, &merged, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(merged, 3);
	cr_assert_eq(seg_files(t.dir), 1, "the snapshot's files are unlinked");
	check_exact_snap(snap, 250, 0);
	cr_assert_eq(tw_store_retain(s, INT64_MAX, &removed, &err), TW_OK);
	cr_assert_eq(removed, 1);
	check_exact_snap(snap, 250, 0);
	tw_snap_close(snap);
	{
		struct tw_store_stats st;

		cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK);
		cr_assert_eq(st.records, 10);
	}
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

/* ---- kill -9 ------------------------------------------------------------------------------ */

#define KILL_BATCH 40 /* records per batch */

/* The child: appends batches from batch k0 - 1 (a redelivery of the last stored one) on, reports
 * each acknowledged batch number + 1 through fd, never returns. */
static void kill_child(const char *dir, unsigned k0, int fd)
{
	struct tw_store_opts o;
	struct tw_store *s = NULL;
	struct tw_err err = { 0 };
	unsigned k = k0 ? k0 - 1 : 0;

	small_opts(&o);
	o.seal_bytes = 24 << 10;
	if (tw_store_open(dir, &o, &s, NULL, &err) != TW_OK)
		_exit(3);
	for (;; k++) {
		struct tw_batch b;
		struct tw_store_append_result res;
		unsigned i;
		uint32_t ack = k + 1;

		tw_batch_init(&b);
		for (i = 0; i < KILL_BATCH; i++)
			gen_push(&b, k * KILL_BATCH + i, 0);
		if (tw_store_append(s, &b, &res, &err) != TW_OK)
			_exit(4);
		if (k + 1 == k0 ? res.duplicates != KILL_BATCH : res.stored != KILL_BATCH)
			_exit(5);
		tw_batch_free(&b);
		if (write(fd, &ack, sizeof ack) != sizeof ack)
			_exit(6);
		if (k % 7 == 6) {
			uint64_t m;

			if (tw_store_compact(s, 1 << 20, &m, &err) != TW_OK)
				_exit(7);
		}
	}
}

Test(index_store, kill9_loses_nothing_acknowledged_and_duplicates_nothing, .timeout = 60)
{
	struct tdir t;
	unsigned seed = 12345, iter, stored = 0;

	tdir_make(&t);
	for (iter = 0; iter < 20; iter++) {
		int pfd[2], status;
		pid_t pid;
		uint32_t ack, acked = 0, want_acks;
		struct timespec t1, t2;
		long spin_us;
		struct tw_store_stats st;
		struct tw_err err = { 0 };
		struct tw_store *s;
		struct tw_store_recovery rec;

		cr_assert_eq(pipe(pfd), 0);
		want_acks = stored / KILL_BATCH + 1 + (unsigned)(rand_r(&seed) % 12);
		spin_us = rand_r(&seed) % 4000;
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(pfd[0]);
			kill_child(t.dir, stored / KILL_BATCH, pfd[1]);
			_exit(9);
		}
		close(pfd[1]);
		/* wait for a random number of acks, then a random spin, then kill */
		while (acked < want_acks && read(pfd[0], &ack, sizeof ack) == sizeof ack)
			acked = ack;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		do
			clock_gettime(CLOCK_MONOTONIC, &t2);
		while ((t2.tv_sec - t1.tv_sec) * 1000000 + (t2.tv_nsec - t1.tv_nsec) / 1000 < spin_us);
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status), "child exited by itself with %d (iteration %u)",
			  WIFEXITED(status) ? WEXITSTATUS(status) : -1, iter);
		while (read(pfd[0], &ack, sizeof ack) == sizeof ack)
			acked = ack;
		close(pfd[0]);
		/* exactly the acknowledged batches, plus maybe the one in flight */
		s = open_store(t.dir, NULL, &rec);
		cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
		cr_assert(st.records == (uint64_t)acked * KILL_BATCH || st.records == (uint64_t)(acked + 1) * KILL_BATCH,
			  "iteration %u: %llu records, %u batches acknowledged", iter,
			  (unsigned long long)st.records, acked);
		stored = (unsigned)st.records;
		check_exact(t.dir, stored, 0);
		check_verify_clean(t.dir);
		tw_store_close(s, NULL);
	}
	cr_assert_gt(stored, 20 * KILL_BATCH);
	tdir_clean(&t);
}

Test(index_store, missing_segment_is_damage_not_a_race)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_snap *snap = NULL;
	struct tw_err err = { 0 };
	struct lines l;
	uint64_t problems = 0;
	char p[200];

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	snprintf(p, sizeof p, "%s/seg/00000001.tws", t.dir);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(tw_snap_open(t.dir, &snap, &err), TW_ECORRUPT);
	cr_assert_null(snap);
	cr_assert(strstr(err.msg, "00000001.tws") && strstr(err.msg, "missing"), "%s", err.msg);
	memset(&l, 0, sizeof l);
	cr_assert_eq(tw_store_verify(t.dir, collect_problem, &l, &problems, &err), TW_ECORRUPT);
	cr_assert_eq(problems, 1);
	cr_assert(strstr(l.buf, "00000001.tws"), "%s", l.buf);
	cr_assert_neq(tw_store_open(t.dir, &o, &s, NULL, &err), TW_OK, "the writer refuses too");
	tdir_clean(&t);
}

/* A whole store ingested again, shuffled and mixed with new records, several segments of many
 * blocks: the sorted segment lookups (index/store.c, dedup_segments) must find every old record and
 * no new one, whatever the order, and a duplicate inside the batch counts once. */
Test(index_store, reingest_shuffled_finds_every_duplicate_across_blocks)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_append_result res;
	struct tw_batch b;
	struct tw_err err = { 0 };
	unsigned order[3000], i;
	uint64_t x = 12345;

	tdir_make(&t);
	small_opts(&o);
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 1000, 0, 1000, 0);
	seal(s);
	append_range(s, 1000, 2000, 0, 1000, 0);
	seal(s);
	cr_assert_eq(nsegs(t.dir), 2);
	/* 0..1999 are stored, 2000..2999 are new; shuffle all 3000 */
	for (i = 0; i < 3000; i++)
		order[i] = i;
	for (i = 2999; i > 0; i--) {
		unsigned j, tmp;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		j = (unsigned)((x >> 33) % (i + 1));
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	tw_batch_init(&b);
	for (i = 0; i < 3000; i++)
		gen_push(&b, order[i], 0);
	gen_push(&b, 2500, 0); /* new, and twice in this batch */
	gen_push(&b, 10, 0);   /* old, and twice in this batch */
	cr_assert_eq(tw_store_append(s, &b, &res, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(res.stored, 1000);
	cr_assert_eq(res.duplicates, 2002);
	tw_batch_free(&b);
	check_exact(t.dir, 3000, 0);
	append_range(s, 0, 3000, 0, 0, 3000);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

/* ---- a reader during seals and compactions ------------------------------------------------- */

#define RACE_BATCH 25        /* new records per batch */
#define RACE_MAX (1u << 18)  /* ids the writer may use at most */

/* Shared between the writer thread and the reader (the test's thread). */
struct race {
	const char *dir;           /* the store */
	atomic_uint acked;         /* ids [0, acked) are acknowledged */
	atomic_uint tried;         /* ids [0, tried) were handed to an append (acked or not) */
	atomic_int stop;           /* the reader asks the writer to finish */
	unsigned compactions;      /* compactions that merged something */
	char fail[512];            /* the writer's first failure, "" if none */
};

static void *race_writer(void *arg)
{
	struct race *r = arg;
	struct tw_store_opts o;
	struct tw_store *s = NULL;
	struct tw_err err = { 0 };
	unsigned k;

	small_opts(&o);
	o.seal_async = 1;
	o.seal_bytes = 6 << 10; /* a seal every couple of batches */
	if (tw_store_open(r->dir, &o, &s, NULL, &err) != TW_OK) {
		snprintf(r->fail, sizeof r->fail, "open: %s", err.msg);
		return NULL;
	}
	for (k = 0; !atomic_load(&r->stop) && (k + 1) * RACE_BATCH <= RACE_MAX; k++) {
		struct tw_batch b;
		struct tw_store_append_result res;
		unsigned i, lo = k * RACE_BATCH, hi = lo + RACE_BATCH;
		enum tw_rc rc;

		tw_batch_init(&b);
		for (i = lo; i < hi; i++)
			gen_push(&b, i, 0);
		for (i = lo >= 5 ? lo - 5 : lo; i < lo; i++) /* a redelivery of the previous batch's tail */
			gen_push(&b, i, 0);
		atomic_store(&r->tried, hi);
		rc = tw_store_append(s, &b, &res, &err);
		tw_batch_free(&b);
		if (rc != TW_OK || res.stored != RACE_BATCH || res.duplicates != (lo >= 5 ? 5u : 0u)) {
			snprintf(r->fail, sizeof r->fail, "batch %u: rc %d stored %llu dups %llu: %s", k, (int)rc,
				 (unsigned long long)res.stored, (unsigned long long)res.duplicates, err.msg);
			break;
		}
		atomic_store(&r->acked, hi);
		if (k % 6 == 5) {
			uint64_t m = 0;

			if (tw_store_compact(s, 1 << 20, &m, &err) != TW_OK) {
				snprintf(r->fail, sizeof r->fail, "compact after batch %u: %s", k, err.msg);
				break;
			}
			r->compactions += m > 0;
		}
	}
	if (tw_store_close(s, &err) != TW_OK && !r->fail[0])
		snprintf(r->fail, sizeof r->fail, "close: %s", err.msg);
	return NULL;
}

/* The id of generated record raw ("ev-%08u"), or UINT_MAX if it has none. */
static unsigned raw_id(struct tw_str raw)
{
	char tmp[160];
	unsigned id;

	if (raw.n >= sizeof tmp)
		return UINT_MAX;
	memcpy(tmp, raw.p, raw.n);
	tmp[raw.n] = 0;
	return sscanf(tmp, "{\"eventID\":\"ev-%8u\"", &id) == 1 ? id : UINT_MAX;
}

/* One reader pass: a snapshot holds every id acknowledged before it was opened, only ids handed
 * to an append, and each once. seen is a RACE_MAX-byte scratch. Returns the records read. */
static size_t race_read(struct race *rc, unsigned char *seen)
{
	unsigned acked_before, tried_after, id, i;
	struct tw_snap *snap = NULL;
	struct tw_err err = { 0 };
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	const struct tw_batch *tail;
	size_t nrec = 0, k;

	memset(seen, 0, RACE_MAX);
	acked_before = atomic_load(&rc->acked);
	cr_assert_eq(tw_snap_open(rc->dir, &snap, &err), TW_OK, "snapshot while sealing: %s", err.msg);
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	for (k = 0; k < tw_snap_nsegs(snap); k++) {
		struct tw_seg *seg = tw_snap_seg(snap, k);
		uint64_t r, n = tw_seg_get_info(seg)->records;

		for (r = 0; r < n; r++) {
			struct tw_event ev;

			tw_arena_reset(&a);
			cr_assert_eq(tw_seg_get(seg, (uint32_t)r, &bb, &ev, &a, &err), TW_OK, "segment %zu record %llu: %s",
				     k, (unsigned long long)r, err.msg);
			id = raw_id(ev.raw);
			cr_assert_lt(id, RACE_MAX, "a record that was never generated in segment %zu", k);
			cr_assert_eq(seen[id], 0, "id %u twice in one snapshot", id);
			seen[id] = 1;
			nrec++;
		}
	}
	tail = tw_snap_tail(snap);
	for (k = 0; k < tail->n; k++) {
		id = raw_id(tail->ev[k].raw);
		cr_assert_lt(id, RACE_MAX, "a record that was never generated in the WAL tail");
		cr_assert_eq(seen[id], 0, "id %u twice in one snapshot (WAL tail)", id);
		seen[id] = 1;
		nrec++;
	}
	tried_after = atomic_load(&rc->tried);
	for (i = 0; i < acked_before; i++)
		cr_assert(seen[i], "id %u was acknowledged before the snapshot opened, but is missing", i);
	for (i = tried_after; i < RACE_MAX; i++)
		cr_assert(!seen[i], "id %u is in the snapshot but was never appended", i);
	tw_seg_blockbuf_free(&bb);
	tw_arena_free(&a);
	tw_snap_close(snap);
	return nrec;
}

/* A writer thread appends (background seals every couple of batches, a compaction every six)
 * while this thread opens snapshot after snapshot and reads every record of each: ~2 s. */
Test(index_store, reader_during_background_seals_and_compaction_sees_every_acked_record_once, .timeout = 30)
{
	struct tdir t;
	struct race r;
	pthread_t th;
	unsigned char *seen = malloc(RACE_MAX);
	struct timespec t0, t1;
	unsigned snaps = 0, acked;
	size_t maxrec = 0;

	cr_assert(seen);
	tdir_make(&t);
	memset(&r, 0, sizeof r);
	r.dir = t.dir;
	atomic_init(&r.acked, 0);
	atomic_init(&r.tried, 0);
	atomic_init(&r.stop, 0);
	{ /* create the store first, so the first snapshot finds it */
		struct tw_store_opts o;

		small_opts(&o);
		tw_store_close(open_store(t.dir, &o, NULL), NULL);
	}
	cr_assert_eq(pthread_create(&th, NULL, race_writer, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		size_t n = race_read(&r, seen);

		if (n > maxrec)
			maxrec = n;
		snaps++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (!r.fail[0] && (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	cr_assert_eq(r.fail[0], 0, "writer: %s", r.fail);
	acked = atomic_load(&r.acked);
	cr_assert_gt(snaps, 10, "only %u snapshots", snaps);
	cr_assert_gt(acked, 40 * RACE_BATCH, "the writer made too little progress (%u records)", acked);
	cr_assert_gt(r.compactions, 0, "no compaction merged anything");
	cr_log_info("race: %u snapshots, up to %zu records each, %u acknowledged, %u compactions", snaps, maxrec,
		    acked, r.compactions);
	check_exact(t.dir, acked, 0);
	check_verify_clean(t.dir);
	free(seen);
	tdir_clean(&t);
}

/* ---- a segment that cannot be written ------------------------------------------------------ */

/* Sends msg (with its NUL) through fd; the parent asserts on it. */
static void send_msg(int fd, const char *msg)
{
	size_t n = strlen(msg) + 1;

	if (write(fd, msg, n) != (ssize_t)n)
		_exit(20);
}

/* Waits for child pid, which must exit 0, and splits the n messages it sent through fd. */
static void child_msgs(pid_t pid, int fd, char *buf, size_t cap, const char **msgs, int n)
{
	size_t got = 0;
	ssize_t r;
	int status, m;
	const char *p;

	while ((r = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed at step %d",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
	buf[got] = 0;
	for (m = 0, p = buf; m < n; m++) {
		cr_assert_lt((size_t)(p - buf), got, "message %d missing", m);
		msgs[m] = p;
		p += strlen(p) + 1;
	}
}

/* The child of seal_that_cannot_be_written: 7 batches of 100 acknowledged (3 sealed, 4 in the
 * WAL), then a file size limit of 2 KiB (the WAL is not written again: the seal renames it and
 * starts a fresh one of a header only; the segment of 400 records is several KiB), then the seal.
 * Exit code: which expectation failed (0 = all held); the three error messages go through fd. */
static void fsize_child(const char *dir, int fd)
{
	struct tw_store_opts o;
	struct tw_store *s = NULL;
	struct tw_err err = { 0 };
	struct tw_store_append_result res;
	struct rlimit rl;
	struct tw_batch b;
	unsigned k, i;

	small_opts(&o);
	o.seal_async = 0;
	if (tw_store_open(dir, &o, &s, NULL, &err) != TW_OK)
		_exit(2);
	for (k = 0; k < 7; k++) {
		tw_batch_init(&b);
		for (i = k * 100; i < k * 100 + 100; i++)
			gen_push(&b, i, 0);
		if (tw_store_append(s, &b, &res, &err) != TW_OK || res.stored != 100)
			_exit(3);
		tw_batch_free(&b);
		if (k == 2 && tw_store_seal(s, &err) != TW_OK)
			_exit(4);
	}
	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
		_exit(5);
	rl.rlim_cur = 2048;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		_exit(6);
	if (tw_store_seal(s, &err) != TW_EIO)
		_exit(7);
	send_msg(fd, err.msg);
	/* sticky: appends and seals keep failing, with the first error */
	tw_batch_init(&b);
	for (i = 700; i < 710; i++)
		gen_push(&b, i, 0);
	if (tw_store_append(s, &b, &res, &err) != TW_EIO)
		_exit(8);
	send_msg(fd, err.msg);
	tw_batch_free(&b);
	if (tw_store_seal(s, &err) != TW_EIO)
		_exit(9);
	send_msg(fd, err.msg);
	tw_store_close(s, NULL);
	_exit(0);
}

Test(index_store, seal_that_cannot_be_written_stops_and_loses_nothing, .timeout = 30)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	struct tw_store_stats st;
	const char *msgs[3];
	char buf[2048], want[200];
	int pfd[2];
	pid_t pid;

	tdir_make(&t);
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		fsize_child(t.dir, pfd[1]);
	}
	close(pfd[1]);
	child_msgs(pid, pfd[0], buf, sizeof buf, msgs, 3);
	cr_log_info("seal: %s | append: %s", msgs[0], msgs[1]);
	/* the seal names the segment file and the cause */
	snprintf(want, sizeof want, "%s/seg/00000002.tws", t.dir);
	cr_assert(strstr(msgs[0], want), "names the segment: %s", msgs[0]);
	cr_assert(strstr(msgs[0], strerror(EFBIG)), "says why: %s", msgs[0]);
	cr_assert(strstr(msgs[1], "stopped") && strstr(msgs[1], strerror(EFBIG)), "append: %s", msgs[1]);
	cr_assert(strstr(msgs[2], "stopped") && strstr(msgs[2], want), "seal: %s", msgs[2]);
	/* readers see every acknowledged record while the writer is stopped */
	cr_assert(path_exists(t.dir, "wal.sealing"), "the frozen WAL is kept");
	check_exact(t.dir, 700, 0);
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.segments, 1);
	cr_assert_eq(st.wal_records, 400);
	/* a new writer without the limit replays the frozen WAL and seals it */
	small_opts(&o);
	o.seal_async = 0;
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 4, "the four unsealed batches are recovered");
	cr_assert_eq(seg_files(t.dir), 1, "no half-written segment is left");
	check_exact(t.dir, 700, 0);
	append_range(s, 0, 710, 0, 10, 700); /* the dedup state has all 700 */
	seal(s);
	cr_assert(!path_exists(t.dir, "wal.sealing"), "the later seal sealed the frozen WAL");
	cr_assert_eq(tw_store_stat(t.dir, &st, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(st.wal_records, 0);
	cr_assert_geq(st.segments, 2);
	check_exact(t.dir, 710, 0);
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 0);
	check_exact(t.dir, 710, 0);
	cr_assert_eq(tw_store_close(s, &err), TW_OK);
	tdir_clean(&t);
}

/* The child of background_seal_that_cannot_be_written: under a 2 KiB file size limit it opens a
 * store whose frozen WAL (300 records) is waiting to be sealed; one append into the fresh WAL is
 * acknowledged and starts the background seal, whose segment write fails; the seal (which waits
 * for it) and the next append report it. */
static void fsize_async_child(const char *dir, int fd)
{
	struct tw_store_opts o;
	struct tw_store *s = NULL;
	struct tw_err err = { 0 };
	struct tw_store_append_result res;
	struct rlimit rl;
	struct tw_batch b;
	unsigned i;

	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
		_exit(2);
	rl.rlim_cur = 2048;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		_exit(3);
	small_opts(&o);
	o.seal_async = 1;
	o.seal_bytes = 1 << 20;
	if (tw_store_open(dir, &o, &s, NULL, &err) != TW_OK)
		_exit(4);
	tw_batch_init(&b);
	for (i = 400; i < 410; i++)
		gen_push(&b, i, 0);
	if (tw_store_append(s, &b, &res, &err) != TW_OK || res.stored != 10)
		_exit(5);
	tw_batch_free(&b);
	if (tw_store_seal(s, &err) != TW_EIO)
		_exit(6);
	send_msg(fd, err.msg);
	tw_batch_init(&b);
	for (i = 410; i < 420; i++)
		gen_push(&b, i, 0);
	if (tw_store_append(s, &b, &res, &err) != TW_EIO)
		_exit(7);
	send_msg(fd, err.msg);
	tw_batch_free(&b);
	tw_store_close(s, NULL);
	_exit(0);
}

Test(index_store, background_seal_that_cannot_be_written_stops_and_loses_nothing, .timeout = 30)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	const char *msgs[2];
	char buf[2048], want[200];
	int pfd[2];
	pid_t pid;

	tdir_make(&t);
	/* a segment of 100, then a seal of 300 cut short once the WAL was frozen */
	small_opts(&o);
	o.seal_async = 0;
	s = open_store(t.dir, &o, NULL);
	append_range(s, 0, 100, 0, 100, 0);
	seal(s);
	append_range(s, 100, 200, 0, 100, 0);
	append_range(s, 200, 300, 0, 100, 0);
	append_range(s, 300, 400, 0, 100, 0);
	tw_store_test_crash_at = TW_STORE_CRASH_ROTATE_DONE;
	cr_assert_eq(tw_store_seal(s, &err), TW_EIO, "%s", err.msg);
	tw_store_close(s, NULL);
	cr_assert(path_exists(t.dir, "wal.sealing"));
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		fsize_async_child(t.dir, pfd[1]);
	}
	close(pfd[1]);
	child_msgs(pid, pfd[0], buf, sizeof buf, msgs, 2);
	cr_log_info("background seal: %s | append: %s", msgs[0], msgs[1]);
	snprintf(want, sizeof want, "%s/seg/00000002.tws", t.dir);
	cr_assert(strstr(msgs[0], want) && strstr(msgs[0], strerror(EFBIG)), "seal: %s", msgs[0]);
	cr_assert(strstr(msgs[1], "stopped") && strstr(msgs[1], want), "append: %s", msgs[1]);
	check_exact(t.dir, 410, 0);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.wal_frames, 4, "three frozen batches and the acknowledged one");
	cr_assert_eq(seg_files(t.dir), 1, "no half-written segment is left");
	append_range(s, 0, 420, 0, 10, 410);
	seal(s);
	cr_assert(!path_exists(t.dir, "wal.sealing"));
	check_exact(t.dir, 420, 0);
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
	tdir_clean(&t);
}

/* ---- compaction in passes of bounded fan-in ------------------------------------------------ */

/* 40 sealed segments of 30 records (ids 0..1199; the first 40 id-less ones split over 4 of them). */
static struct tw_store *forty_segments(const char *dir, const struct tw_store_opts *o)
{
	struct tw_store *s = open_store(dir, o, NULL);
	unsigned i;

	for (i = 0; i < 40; i++) {
		append_range(s, i * 30, i * 30 + 30, 0, 30, 0);
		if (i % 10 == 0)
			append_range(s, i, i + 10, 1, 10, 0);
		seal(s);
	}
	cr_assert_eq(nsegs(dir), 40);
	check_exact(dir, 1200, 40);
	return s;
}

Test(index_store, compaction_with_fanin_four_merges_forty_segments_in_passes)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_err err = { 0 };
	uint64_t merged = 0;

	tdir_make(&t);
	small_opts(&o);
	s = forty_segments(t.dir, &o);
	tw_store_test_merge_fanin = 4;
	tw_store_test_merge_peak = 0;
	cr_assert_eq(tw_store_compact(s, 0, &merged, &err), TW_OK, "compact: %s", err.msg);
	tw_store_test_merge_fanin = 0;
	cr_assert_eq(tw_store_test_merge_peak, 4, "at most 4 inputs (blockbufs) alive at once, got %zu",
		     tw_store_test_merge_peak);
	cr_assert_eq(merged, 40, "each of the store's segments counted once, got %llu", (unsigned long long)merged);
	cr_assert_eq(nsegs(t.dir), 1, "passes go on until one segment is left");
	cr_assert_eq(seg_files(t.dir), 1, "inputs and intermediate outputs unlinked");
	check_exact(t.dir, 1200, 40);
	check_verify_clean(t.dir);
	/* ids still deduplicated against the merged segment */
	append_range(s, 1190, 1210, 0, 10, 10);
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
	check_exact(t.dir, 1210, 40);
	tdir_clean(&t);
}

/* A crash between two passes (the first pass's MANIFEST swapped, its inputs not unlinked yet):
 * the reopen removes the orphans, nothing is lost or doubled, and a new compaction finishes. */
Test(index_store, compaction_crash_between_passes_loses_nothing)
{
	struct tdir t;
	struct tw_store_opts o;
	struct tw_store *s;
	struct tw_store_recovery rec;
	struct tw_err err = { 0 };
	uint64_t merged = 0;

	tdir_make(&t);
	small_opts(&o);
	s = forty_segments(t.dir, &o);
	tw_store_test_merge_fanin = 4;
	tw_store_test_crash_at = TW_STORE_CRASH_COMPACT_MANIFEST;
	cr_assert_eq(tw_store_compact(s, 0, &merged, &err), TW_EIO);
	tw_store_test_crash_at = TW_STORE_CRASH_NONE;
	tw_store_close(s, NULL);
	cr_assert_eq(nsegs(t.dir), 37, "first pass swapped in: 40 - 4 + 1");
	check_exact(t.dir, 1200, 40);
	s = open_store(t.dir, &o, &rec);
	cr_assert_eq(rec.orphans_removed, 4);
	tw_store_test_merge_peak = 0;
	cr_assert_eq(tw_store_compact(s, 0, &merged, &err), TW_OK, "compact: %s", err.msg);
	tw_store_test_merge_fanin = 0;
	cr_assert_eq(tw_store_test_merge_peak, 4);
	cr_assert_eq(merged, 37);
	cr_assert_eq(nsegs(t.dir), 1);
	cr_assert_eq(seg_files(t.dir), 1);
	check_exact(t.dir, 1200, 40);
	check_verify_clean(t.dir);
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
	tdir_clean(&t);
}
