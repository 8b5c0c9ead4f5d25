/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_index_wal.c: the write-ahead log keeps every acknowledged frame and nothing
 * else. Append / reopen / read back; the on-disk bytes checked against index/FORMAT.md with a
 * CRC-32C written here independently; a 3-frame file truncated at every offset and bit-flipped at
 * every bit; ENOSPC, EIO, EINTR and short writes injected through the I/O hook (sticky state);
 * a reader following a writer; reset. Each test works in its own mkdtemp directory. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/evcodec.h"
#include "index/wal.h"

/* ---- helpers ------------------------------------------------------------------------------ */

struct tmp {
	char dir[64];  /* the test's own directory */
	char wal[96];  /* dir/wal */
	char tmpf[96]; /* dir/wal.tmp */
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof t->dir, "/tmp/tw-wal-XXXXXX");
	cr_assert(mkdtemp(t->dir), "mkdtemp: %s", strerror(errno));
	snprintf(t->wal, sizeof t->wal, "%s/wal", t->dir);
	snprintf(t->tmpf, sizeof t->tmpf, "%s/wal.tmp", t->dir);
}

static void tmp_clean(struct tmp *t)
{
	DIR *d = opendir(t->dir);
	struct dirent *de;
	char p[400];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", t->dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(t->dir);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);
	unsigned char *p;

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &sb), 0);
	*n = (size_t)sb.st_size;
	p = malloc(*n ? *n : 1);
	cr_assert(p);
	cr_assert_eq(pread(fd, p, *n, 0), (ssize_t)*n);
	close(fd);
	return p;
}

static void spit(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static size_t file_size(const char *path)
{
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0, "%s: %s", path, strerror(errno));
	return (size_t)sb.st_size;
}

/* A payload for frame i: varied lengths (including 0), bytes depending on i. */
struct payload {
	unsigned char b[300]; /* the bytes */
	size_t n;             /* how many */
};

static void make_payload(struct payload *pl, unsigned i, size_t n)
{
	pl->n = n;
	for (size_t k = 0; k < n; k++)
		pl->b[k] = (unsigned char)(i * 131 + k * 7 + 3);
}

/* Reads path with a reader and checks it holds exactly pl[0..count) with seqs from first_seq. */
static void expect_frames(const char *path, uint64_t first_seq, const struct payload *pl,
			  size_t count)
{
	struct tw_wal_reader *r = NULL;
	struct tw_err err;
	const void *p;
	uint64_t seq;
	size_t n;

	cr_assert_eq(tw_wal_reader_open(path, &r, &err), TW_OK, "%s", err.msg);
	for (size_t i = 0; i < count; i++) {
		cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_OK, "frame %zu: %s", i,
			     err.msg);
		cr_assert_eq(seq, first_seq + i);
		cr_assert_eq(n, pl[i].n, "frame %zu: %zu bytes, want %zu", i, n, pl[i].n);
		cr_assert(n == 0 || memcmp(p, pl[i].b, n) == 0, "frame %zu payload differs", i);
	}
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_ENOENT,
		     "nothing after frame %zu (%s)", count, err.msg);
	tw_wal_reader_close(r);
}

/* I/O hook that injects faults. */
struct fault {
	long budget;             /* bytes pwrite may still write, then fail with errno_; -1 = no limit */
	int errno_;              /* errno once the budget is spent */
	size_t max_chunk;        /* each pwrite writes at most this (0 = no limit): short writes */
	int eintr_once;          /* the next pwrite fails with EINTR */
	int zero_once;           /* the next pwrite returns 0 (no progress, no error) */
	int sync_errno;          /* the next fdatasync fails with this errno (0 = succeed) */
	int real_sync;           /* call the real fdatasync (else pretend: fast) */
	unsigned pwrites, syncs; /* calls seen */
};

static ssize_t fault_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	struct fault *f = ctx;
	ssize_t k;

	f->pwrites++;
	if (f->eintr_once) {
		f->eintr_once = 0;
		errno = EINTR;
		return -1;
	}
	if (f->zero_once) {
		f->zero_once = 0;
		return 0;
	}
	if (f->budget == 0) {
		errno = f->errno_;
		return -1;
	}
	if (f->budget > 0 && n > (size_t)f->budget)
		n = (size_t)f->budget;
	if (f->max_chunk && n > f->max_chunk)
		n = f->max_chunk;
	k = pwrite(fd, p, n, off);
	if (k > 0 && f->budget > 0)
		f->budget -= k;
	return k;
}

static int fault_sync(void *ctx, int fd)
{
	struct fault *f = ctx;
	f->syncs++;
	if (f->sync_errno) {
		errno = f->sync_errno;
		f->sync_errno = 0;
		return -1;
	}
	return f->real_sync ? fdatasync(fd) : 0;
}

static struct tw_wal_opts fault_opts(struct fault *f)
{
	struct tw_wal_opts o;
	memset(&o, 0, sizeof o);
	memset(f, 0, sizeof *f);
	f->budget = -1;
	o.io.pwrite = fault_pwrite;
	o.io.fdatasync = fault_sync;
	o.io.ctx = f;
	return o;
}

/* Independent CRC-32C: bit by bit, reflected polynomial 0x82f63b78. */
static uint32_t ref_crc32c(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= b[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return ~c;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void set32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void set64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes a 3-frame WAL (payloads of 5, 40 and 17 bytes) and returns its bytes. */
static unsigned char *three_frames(struct tmp *t, struct payload pl[3], size_t ends[3], size_t *n)
{
	static const size_t sizes[3] = { 5, 40, 17 };
	struct tw_wal *w = NULL;
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	size_t end = TW_WAL_HEADER_SIZE;

	cr_assert_eq(tw_wal_open(t->wal, &o, &w, NULL, &err), TW_OK, "%s", err.msg);
	for (unsigned i = 0; i < 3; i++) {
		make_payload(&pl[i], i, sizes[i]);
		cr_assert_eq(tw_wal_append(w, pl[i].b, pl[i].n, NULL, &err), TW_OK, "%s", err.msg);
		end += TW_WAL_FRAME_HEADER_SIZE + sizes[i];
		ends[i] = end;
	}
	tw_wal_close(w);
	return slurp(t->wal, n);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(index_wal, appends_reopens_and_reads_back)
{
	static const size_t sizes[5] = { 0, 1, 127, 300, 20 };
	struct payload pl[6];
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct tw_err err;
	struct tmp t;
	uint64_t seq;
	size_t total = TW_WAL_HEADER_SIZE;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.created, 1);
	cr_assert_eq(rec.frames, 0);
	cr_assert_eq(rec.next_seq, 1, "sequence numbers start at 1");
	cr_assert_eq(file_size(t.wal), TW_WAL_HEADER_SIZE);
	struct stat sb;
	cr_assert_eq(stat(t.wal, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
	for (unsigned i = 0; i < 5; i++) {
		make_payload(&pl[i], i, sizes[i]);
		cr_assert_eq(tw_wal_append(w, pl[i].b, pl[i].n, &seq, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(seq, i + 1);
		total += TW_WAL_FRAME_HEADER_SIZE + sizes[i];
		cr_assert_eq(tw_wal_size(w), total);
	}
	tw_wal_close(w);
	cr_assert_eq(file_size(t.wal), total);
	cr_assert(access(t.tmpf, F_OK) != 0, "no wal.tmp left behind");

	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.created, 0);
	cr_assert_eq(rec.frames, 5);
	cr_assert_eq(rec.cut_bytes, 0);
	cr_assert_eq(rec.reason[0], '\0');
	cr_assert_eq(rec.first_seq, 1);
	cr_assert_eq(rec.next_seq, 6);
	cr_assert_eq(tw_wal_next_seq(w), 6);
	cr_assert_eq(tw_wal_size(w), total);
	make_payload(&pl[5], 5, 3);
	cr_assert_eq(tw_wal_append(w, pl[5].b, pl[5].n, &seq, &err), TW_OK);
	cr_assert_eq(seq, 6, "the sequence continues after a reopen");
	tw_wal_close(w);
	expect_frames(t.wal, 1, pl, 6);
	tmp_clean(&t);
}

Test(index_wal, first_seq_option_numbers_a_new_file)
{
	struct tw_wal_opts o = { .first_seq = 1000 };
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[1];
	struct tw_err err;
	struct tmp t;
	uint64_t seq;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, &rec, &err), TW_OK);
	make_payload(&pl[0], 0, 9);
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, &seq, &err), TW_OK);
	cr_assert_eq(seq, 1000);
	tw_wal_close(w);
	/* the option does not renumber an existing file */
	o.first_seq = 5;
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, &rec, &err), TW_OK);
	cr_assert_eq(rec.first_seq, 1000);
	cr_assert_eq(rec.next_seq, 1001);
	tw_wal_close(w);
	expect_frames(t.wal, 1000, pl, 1);
	tmp_clean(&t);
}

Test(index_wal, crc32c_is_the_castagnoli_checksum)
{
	unsigned char buf[1000];
	cr_assert_eq(ref_crc32c("123456789", 9), 0xe3069283u, "the reference itself");
	cr_assert_eq(tw_wal_crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(tw_wal_crc32c(0, "", 0), 0);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * i + 11);
	for (size_t n = 0; n <= sizeof buf; n += 37) {
		uint32_t whole = tw_wal_crc32c(0, buf, n);
		cr_assert_eq(whole, ref_crc32c(buf, n), "length %zu", n);
		cr_assert_eq(tw_wal_crc32c(tw_wal_crc32c(0, buf, n / 3), buf + n / 3, n - n / 3), whole,
			     "continuing a crc over a split gives the same value");
	}
}

/* The file is parsed here by hand from index/FORMAT.md, and a file built by hand is accepted. */
Test(index_wal, file_layout_matches_format_md)
{
	struct tw_wal_opts o = { .max_frame = 1000, .first_seq = 7 };
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[2];
	struct tw_err err;
	struct tmp t;
	unsigned char *f;
	size_t n;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	make_payload(&pl[0], 0, 11);
	make_payload(&pl[1], 1, 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(tw_wal_append(w, pl[i].b, pl[i].n, NULL, &err), TW_OK);
	tw_wal_close(w);

	f = slurp(t.wal, &n);
	cr_assert_eq(n, 32 + 20 + 11 + 20);
	cr_assert(memcmp(f, "TWWAL\r\n\x1a", 8) == 0, "magic");
	cr_assert_eq(le32(f + 8), 1, "version");
	cr_assert_eq(le32(f + 12), 1000, "max_frame");
	cr_assert_eq(le64(f + 16), 7, "base_seq");
	cr_assert_eq(le32(f + 24), 0, "flags");
	cr_assert_eq(le32(f + 28), ref_crc32c(f, 28), "header crc");
	unsigned char *fr = f + 32;
	cr_assert_eq(le64(fr), 7, "seq");
	cr_assert_eq(le32(fr + 8), 11, "len");
	cr_assert_eq(le32(fr + 12), ref_crc32c(pl[0].b, 11), "data crc");
	cr_assert_eq(le32(fr + 16), ref_crc32c(fr, 16), "head crc");
	cr_assert(memcmp(fr + 20, pl[0].b, 11) == 0, "payload");
	fr += 31;
	cr_assert_eq(le64(fr), 8);
	cr_assert_eq(le32(fr + 8), 0);
	cr_assert_eq(le32(fr + 12), ref_crc32c("", 0));
	cr_assert_eq(le32(fr + 16), ref_crc32c(fr, 16));
	free(f);

	/* built by hand: base 50, two frames */
	unsigned char h[32 + 2 * 20 + 11];
	memset(h, 0, sizeof h);
	memcpy(h, "TWWAL\r\n\x1a", 8);
	set32(h + 8, 1);
	set32(h + 12, 4096);
	set64(h + 16, 50);
	set32(h + 28, ref_crc32c(h, 28));
	unsigned char *p = h + 32;
	for (int i = 0; i < 2; i++) {
		set64(p, 50 + (uint64_t)i);
		set32(p + 8, (uint32_t)pl[i].n);
		set32(p + 12, ref_crc32c(pl[i].b, pl[i].n));
		set32(p + 16, ref_crc32c(p, 16));
		memcpy(p + 20, pl[i].b, pl[i].n);
		p += 20 + pl[i].n;
	}
	cr_assert_eq((size_t)(p - h), sizeof h);
	spit(t.wal, h, sizeof h);
	expect_frames(t.wal, 50, pl, 2);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.frames, 2);
	cr_assert_eq(rec.cut_bytes, 0);
	cr_assert_eq(rec.next_seq, 52);
	tw_wal_close(w);
	tmp_clean(&t);
}

Test(index_wal, truncation_at_every_offset_keeps_exactly_the_complete_prefix)
{
	struct payload pl[4];
	size_t ends[3], n;
	struct tmp t;
	unsigned char *orig;

	tmp_make(&t);
	orig = three_frames(&t, pl, ends, &n);
	cr_assert_eq(n, ends[2]);
	make_payload(&pl[3], 3, 9);
	for (size_t cut = 0; cut <= n; cut++) {
		struct tw_wal_recovery rec;
		struct tw_wal *w = NULL;
		struct tw_err err;
		struct fault f;
		struct tw_wal_opts o = fault_opts(&f);
		size_t keep = 0, prefix_end = TW_WAL_HEADER_SIZE;
		uint64_t seq;

		spit(t.wal, orig, cut);
		enum tw_rc rc = tw_wal_open(t.wal, &o, &w, &rec, &err);
		if (cut == 0) { /* an empty file is initialised like a missing one */
			cr_assert_eq(rc, TW_OK, "%s", err.msg);
			cr_assert_eq(rec.created, 1);
			cr_assert_eq(rec.frames, 0);
			tw_wal_close(w);
			continue;
		}
		if (cut < TW_WAL_HEADER_SIZE) {
			cr_assert_eq(rc, TW_ECORRUPT, "cut %zu: rc %d", cut, rc);
			cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
			cr_assert_eq(file_size(t.wal), cut, "a damaged header is never touched");
			continue;
		}
		cr_assert_eq(rc, TW_OK, "cut %zu: %s", cut, err.msg);
		while (keep < 3 && ends[keep] <= cut)
			prefix_end = ends[keep++];
		cr_assert_eq(rec.frames, keep, "cut %zu: %llu frames, want %zu", cut,
			     (unsigned long long)rec.frames, keep);
		cr_assert_eq(rec.cut_offset, prefix_end);
		cr_assert_eq(rec.cut_bytes, cut - prefix_end);
		cr_assert_eq(rec.reason[0] != '\0', cut != prefix_end, "cut %zu: reason '%s'", cut,
			     rec.reason);
		cr_assert_eq(rec.damaged_middle, 0);
		cr_assert_eq(file_size(t.wal), prefix_end, "the torn tail is gone from the file");
		cr_assert_eq(f.syncs, cut != prefix_end ? 1u : 0u, "the cut is synced");
		expect_frames(t.wal, 1, pl, keep);
		/* and the WAL goes on from there */
		cr_assert_eq(tw_wal_append(w, pl[3].b, pl[3].n, &seq, &err), TW_OK);
		cr_assert_eq(seq, keep + 1);
		tw_wal_close(w);
		struct payload after[4];
		memcpy(after, pl, keep * sizeof pl[0]);
		after[keep] = pl[3];
		expect_frames(t.wal, 1, after, keep + 1);
	}
	free(orig);
	tmp_clean(&t);
}

Test(index_wal, every_bit_flip_is_detected)
{
	struct payload pl[3];
	size_t ends[3], n, starts[3];
	unsigned char *orig, *now;
	struct tmp t;
	size_t nbytes;

	tmp_make(&t);
	orig = three_frames(&t, pl, ends, &n);
	starts[0] = TW_WAL_HEADER_SIZE;
	starts[1] = ends[0];
	starts[2] = ends[1];
	for (size_t bit = 0; bit < n * 8; bit++) {
		struct tw_wal_recovery rec;
		struct tw_wal *w = NULL;
		struct tw_err err;
		struct fault f;
		struct tw_wal_opts o = fault_opts(&f);
		size_t byte = bit / 8;
		enum tw_rc rc;

		orig[byte] ^= (unsigned char)(1u << (bit % 8));
		spit(t.wal, orig, n);
		rc = tw_wal_open(t.wal, &o, &w, &rec, &err);
		if (rc != TW_OK) { /* refused: the file is exactly as it was */
			now = slurp(t.wal, &nbytes);
			cr_assert_eq(nbytes, n);
			cr_assert(memcmp(now, orig, n) == 0, "bit %zu: refused but modified", bit);
			free(now);
		}
		if (byte < TW_WAL_HEADER_SIZE) {
			cr_assert(rc == TW_ECORRUPT || rc == TW_EUNSUP, "bit %zu: rc %d", bit, rc);
		} else if (byte < starts[2]) {
			size_t k = byte < starts[1] ? 0 : 1;
			cr_assert_eq(rc, TW_ECORRUPT, "bit %zu (frame %zu): rc %d", bit, k, rc);
			cr_assert(strstr(err.msg, "not a torn tail"), "%s", err.msg);
			/* repair cuts there and says so */
			o.repair = 1;
			cr_assert_eq(tw_wal_open(t.wal, &o, &w, &rec, &err), TW_OK, "%s", err.msg);
			cr_assert_eq(rec.frames, k);
			cr_assert_eq(rec.damaged_middle, 1);
			cr_assert_eq(rec.cut_offset, starts[k]);
			cr_assert_eq(rec.cut_bytes, n - starts[k]);
			tw_wal_close(w);
			expect_frames(t.wal, 1, pl, k);
		} else {
			cr_assert_eq(rc, TW_OK, "bit %zu: %s", bit, err.msg);
			cr_assert_eq(rec.frames, 2, "bit %zu", bit);
			cr_assert_eq(rec.cut_offset, starts[2]);
			cr_assert(rec.reason[0]);
			tw_wal_close(w);
			expect_frames(t.wal, 1, pl, 2);
		}
		orig[byte] ^= (unsigned char)(1u << (bit % 8));
	}
	free(orig);
	tmp_clean(&t);
}

Test(index_wal, zero_filled_tail_after_a_crash_is_cut)
{
	struct payload pl[3];
	size_t ends[3], n;
	unsigned char *orig, *big;
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct tw_err err;
	struct tmp t;

	/* some filesystems leave a file extended with zeros when a crash beats the data */
	tmp_make(&t);
	orig = three_frames(&t, pl, ends, &n);
	big = calloc(1, n + 4096);
	cr_assert(big);
	memcpy(big, orig, n);
	spit(t.wal, big, n + 4096);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.frames, 3);
	cr_assert_eq(rec.cut_bytes, 4096);
	cr_assert(strstr(rec.reason, "crc"), "%s", rec.reason);
	tw_wal_close(w);
	expect_frames(t.wal, 1, pl, 3);
	free(big);
	free(orig);
	tmp_clean(&t);
}

Test(index_wal, enospc_on_second_append_stops_the_wal)
{
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[3];
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	struct tmp t;
	unsigned before;

	tmp_make(&t);
	f.real_sync = 1;
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	for (unsigned i = 0; i < 3; i++)
		make_payload(&pl[i], i, 50 + i);
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_OK);
	f.budget = 0;
	f.errno_ = ENOSPC;
	cr_assert_eq(tw_wal_append(w, pl[1].b, pl[1].n, NULL, &err), TW_EIO);
	cr_assert(strstr(err.msg, strerror(ENOSPC)), "%s", err.msg);
	char first[256];
	snprintf(first, sizeof first, "%s", err.msg);

	/* the disk has room again, but the WAL stays stopped and writes nothing */
	f.budget = -1;
	before = f.pwrites;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(tw_wal_append(w, pl[2].b, pl[2].n, NULL, &err), TW_EIO);
		cr_assert(strstr(err.msg, "WAL stopped after an earlier write error: "), "%s", err.msg);
		cr_assert(strstr(err.msg, first), "repeats the first error: %s", err.msg);
	}
	cr_assert_eq(tw_wal_reset(w, &err), TW_EIO, "no reset either");
	cr_assert_eq(f.pwrites, before, "nothing written after the failure");
	tw_wal_close(w);

	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.frames, 1);
	tw_wal_close(w);
	expect_frames(t.wal, 1, pl, 1);
	tmp_clean(&t);
}

Test(index_wal, short_write_then_enospc_leaves_a_tail_that_reopen_cuts)
{
	/* the hook writes part of the frame (half a header; a header and 7 payload bytes) and then
	 * fails with ENOSPC */
	static const long budgets[2] = { 10, TW_WAL_FRAME_HEADER_SIZE + 7 };
	for (int b = 0; b < 2; b++) {
		struct tw_wal_recovery rec;
		struct tw_wal_reader *r = NULL;
		struct tw_wal *w = NULL;
		struct payload pl[2];
		struct tw_err err;
		struct fault f;
		struct tw_wal_opts o = fault_opts(&f);
		struct tmp t;
		const void *p;
		uint64_t seq;
		size_t n, end1;

		tmp_make(&t);
		cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
		make_payload(&pl[0], 0, 30);
		make_payload(&pl[1], 1, 50);
		cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_OK);
		end1 = tw_wal_size(w);
		f.budget = budgets[b];
		f.errno_ = ENOSPC;
		cr_assert_eq(tw_wal_append(w, pl[1].b, pl[1].n, NULL, &err), TW_EIO);
		cr_assert(strstr(err.msg, strerror(ENOSPC)), "%s", err.msg);
		cr_assert_eq(file_size(t.wal), end1 + (size_t)budgets[b], "the partial frame is there");
		cr_assert_eq(tw_wal_size(w), end1, "but not counted");
		f.budget = -1;
		cr_assert_eq(tw_wal_append(w, pl[1].b, pl[1].n, NULL, &err), TW_EIO);
		cr_assert(strstr(err.msg, "WAL stopped"), "%s", err.msg);
		cr_assert_eq(file_size(t.wal), end1 + (size_t)budgets[b], "nothing after the tail");

		/* a reader sees the partial frame as not complete, not as corruption */
		cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_OK);
		cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_OK);
		cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_ENOENT, "%s", err.msg);
		tw_wal_reader_close(r);
		tw_wal_close(w);

		cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
		cr_assert_eq(rec.frames, 1);
		cr_assert_eq(rec.cut_offset, end1);
		cr_assert_eq(rec.cut_bytes, (uint64_t)budgets[b]);
		cr_assert(strstr(rec.reason, "short"), "%s", rec.reason);
		tw_wal_close(w);
		expect_frames(t.wal, 1, pl, 1);
		tmp_clean(&t);
	}
}

Test(index_wal, short_writes_and_eintr_are_continued)
{
	struct tw_wal *w = NULL;
	struct payload pl[2];
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	struct tmp t;
	unsigned before;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	make_payload(&pl[0], 0, 100);
	make_payload(&pl[1], 1, 10);
	f.max_chunk = 3;
	before = f.pwrites;
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_OK, "%s", err.msg);
	cr_assert_geq(f.pwrites - before, (20 + 100) / 3, "it took many short writes");
	f.max_chunk = 0;
	f.eintr_once = 1;
	cr_assert_eq(tw_wal_append(w, pl[1].b, pl[1].n, NULL, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(f.eintr_once, 0, "the EINTR was seen");
	tw_wal_close(w);
	expect_frames(t.wal, 1, pl, 2);
	tmp_clean(&t);
}

Test(index_wal, fdatasync_failure_stops_the_wal)
{
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[3];
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	struct tmp t;
	unsigned before;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	for (unsigned i = 0; i < 3; i++)
		make_payload(&pl[i], i, 20);
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_OK);
	f.sync_errno = EIO;
	cr_assert_eq(tw_wal_append(w, pl[1].b, pl[1].n, NULL, &err), TW_EIO);
	cr_assert(strstr(err.msg, "fdatasync"), "%s", err.msg);
	before = f.pwrites;
	cr_assert_eq(tw_wal_append(w, pl[2].b, pl[2].n, NULL, &err), TW_EIO);
	cr_assert(strstr(err.msg, "WAL stopped after an earlier write error"), "%s", err.msg);
	cr_assert_eq(f.pwrites, before);
	tw_wal_close(w);
	/* frame 2 was written whole before its sync failed: the kernel still has it, so it comes
	 * back. It was never acknowledged; replaying it is what dedup by event id is for. */
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK);
	cr_assert_eq(rec.frames, 2);
	tw_wal_close(w);
	expect_frames(t.wal, 1, pl, 2);
	tmp_clean(&t);
}

Test(index_wal, reader_follows_a_writer_in_the_same_process)
{
	struct tw_wal_reader *r = NULL;
	struct tw_wal *w = NULL;
	struct payload pl[8];
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	struct tmp t;
	const void *p;
	uint64_t seq;
	size_t n, got = 0;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_ENOENT, "empty so far");
	for (unsigned i = 0; i < 8; i++) {
		make_payload(&pl[i], i, 10 + 30 * i);
		cr_assert_eq(tw_wal_append(w, pl[i].b, pl[i].n, NULL, &err), TW_OK);
		if (i % 3 == 2) /* read in bursts: the reader catches up, then waits again */
			continue;
		while (tw_wal_reader_next(r, &seq, &p, &n, &err) == TW_OK) {
			cr_assert_eq(seq, got + 1);
			cr_assert_eq(n, pl[got].n);
			cr_assert(memcmp(p, pl[got].b, n) == 0);
			got++;
		}
		cr_assert_eq(err.rc, TW_ENOENT, "%s", err.msg);
		cr_assert_eq(got, i + 1, "caught up after append %u", i);
	}
	tw_wal_reader_close(r);
	tw_wal_close(w);
	tmp_clean(&t);
}

Test(index_wal, reader_reports_a_damaged_complete_frame)
{
	struct tw_wal_reader *r = NULL;
	struct payload pl[3];
	size_t ends[3], n;
	struct tw_err err;
	struct tmp t;
	unsigned char *orig;
	const void *p;
	uint64_t seq;
	size_t len;

	tmp_make(&t);
	orig = three_frames(&t, pl, ends, &n);
	orig[ends[0] + 25] ^= 0x40; /* in frame 2's payload */
	spit(t.wal, orig, n);
	cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &len, &err), TW_OK);
	for (int i = 0; i < 2; i++) { /* it stays on the bad frame */
		cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &len, &err), TW_ECORRUPT);
		cr_assert(strstr(err.msg, "payload crc32c"), "%s", err.msg);
	}
	tw_wal_reader_close(r);
	free(orig);
	tmp_clean(&t);
}

Test(index_wal, reset_empties_the_wal_and_keeps_the_sequence)
{
	struct tw_wal_reader *old = NULL;
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[4];
	struct tw_err err;
	struct tmp t;
	const void *p;
	uint64_t seq;
	size_t n;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, NULL, &err), TW_OK);
	for (unsigned i = 0; i < 4; i++)
		make_payload(&pl[i], i, 15 + i);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(tw_wal_append(w, pl[i].b, pl[i].n, NULL, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_open(t.wal, &old, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(old, &seq, &p, &n, &err), TW_OK);

	cr_assert_eq(tw_wal_reset(w, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_wal_size(w), TW_WAL_HEADER_SIZE);
	cr_assert_eq(file_size(t.wal), TW_WAL_HEADER_SIZE);
	cr_assert(access(t.tmpf, F_OK) != 0);
	cr_assert_eq(tw_wal_next_seq(w), 4);
	cr_assert_eq(tw_wal_append(w, pl[3].b, pl[3].n, &seq, &err), TW_OK);
	cr_assert_eq(seq, 4);

	/* a reader that had the old file open still reads it whole */
	for (uint64_t want = 2; want <= 3; want++) {
		cr_assert_eq(tw_wal_reader_next(old, &seq, &p, &n, &err), TW_OK);
		cr_assert_eq(seq, want);
	}
	cr_assert_eq(tw_wal_reader_next(old, &seq, &p, &n, &err), TW_ENOENT);
	tw_wal_reader_close(old);
	tw_wal_close(w);

	expect_frames(t.wal, 4, pl + 3, 1);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK);
	cr_assert_eq(rec.first_seq, 4);
	cr_assert_eq(rec.frames, 1);
	cr_assert_eq(rec.next_seq, 5);
	tw_wal_close(w);
	tmp_clean(&t);
}

Test(index_wal, failed_reset_before_the_rename_leaves_the_wal_usable)
{
	struct tw_wal *w = NULL;
	struct payload pl[2];
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	struct tmp t;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	make_payload(&pl[0], 0, 12);
	make_payload(&pl[1], 1, 13);
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_OK);
	f.budget = 0;
	f.errno_ = ENOSPC;
	cr_assert_eq(tw_wal_reset(w, &err), TW_EIO);
	cr_assert(strstr(err.msg, strerror(ENOSPC)), "%s", err.msg);
	cr_assert(access(t.tmpf, F_OK) != 0, "the temporary file is removed");
	f.budget = -1;
	cr_assert_eq(tw_wal_append(w, pl[1].b, pl[1].n, NULL, &err), TW_OK, "%s", err.msg);
	tw_wal_close(w);
	expect_frames(t.wal, 1, pl, 2);
	tmp_clean(&t);
}

Test(index_wal, second_writer_is_refused)
{
	struct tw_wal *w = NULL, *w2 = NULL;
	struct tw_err err;
	struct tmp t;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, NULL, &err), TW_OK);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w2, NULL, &err), TW_EBUSY, "%s", err.msg);
	cr_assert_null(w2);
	tw_wal_close(w);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w2, NULL, &err), TW_OK, "%s", err.msg);
	tw_wal_close(w2);
	tmp_clean(&t);
}

Test(index_wal, frame_cap_is_enforced_and_belongs_to_the_file)
{
	struct tw_wal_opts o = { .max_frame = 100 };
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[1];
	struct tw_err err;
	struct tmp t;
	unsigned char big[101] = { 0 };

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	cr_assert_eq(tw_wal_append(w, big, 101, NULL, &err), TW_ELIMIT);
	make_payload(&pl[0], 0, 100);
	cr_assert_eq(tw_wal_append(w, pl[0].b, 100, NULL, &err), TW_OK, "an over-cap batch does "
		     "not stop the WAL: %s", err.msg);
	tw_wal_close(w);
	/* reopening with a smaller cap must not cut frames the file allowed */
	o.max_frame = 10;
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, &rec, &err), TW_OK);
	cr_assert_eq(rec.frames, 1);
	cr_assert_eq(rec.cut_bytes, 0);
	tw_wal_close(w);
	o.max_frame = (uint64_t)TW_WAL_MAX_FRAME_LIMIT + 1;
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, &rec, &err), TW_EINVAL);
	tmp_clean(&t);
}

Test(index_wal, refuses_files_that_are_not_its_own)
{
	static const char text[] = "this is a text file, not a write-ahead log at all\n";
	unsigned char h[32];
	struct tw_wal_reader *r = NULL;
	struct tw_wal *w = NULL;
	struct tw_err err;
	struct tmp t;
	unsigned char *now;
	size_t n;

	tmp_make(&t);
	spit(t.wal, text, sizeof text - 1);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, NULL, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "magic"), "%s", err.msg);
	cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_ECORRUPT);
	now = slurp(t.wal, &n);
	cr_assert_eq(n, sizeof text - 1);
	cr_assert(memcmp(now, text, n) == 0, "left alone");
	free(now);

	/* a well-formed header of a future version */
	memset(h, 0, sizeof h);
	memcpy(h, "TWWAL\r\n\x1a", 8);
	set32(h + 8, 2);
	set32(h + 12, 4096);
	set64(h + 16, 1);
	set32(h + 28, ref_crc32c(h, 28));
	spit(t.wal, h, sizeof h);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, NULL, &err), TW_EUNSUP, "%s", err.msg);
	cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_EUNSUP);
	tmp_clean(&t);
}

Test(index_wal, failed_opens_and_null_closes_are_clean)
{
	struct tw_wal_reader *r = NULL;
	struct tw_wal *w = NULL;
	struct tw_err err;
	struct tmp t;
	char path[200];

	tmp_make(&t);
	snprintf(path, sizeof path, "%s/no/such/dir/wal", t.dir);
	cr_assert_eq(tw_wal_open(path, NULL, &w, NULL, &err), TW_ENOENT, "%s", err.msg);
	cr_assert_null(w);
	cr_assert_eq(tw_wal_reader_open(path, &r, &err), TW_ENOENT);
	cr_assert_null(r);
	tw_wal_close(NULL);
	tw_wal_reader_close(NULL);
	tmp_clean(&t);
}

/* The WAL and the codec together: batches of events survive a reopen byte for byte. */
Test(index_wal, event_batches_survive_a_reopen)
{
	struct tw_event evs[3];
	struct tw_wal_reader *r = NULL;
	struct tw_wal *w = NULL;
	struct tw_batch batch;
	struct tw_err err;
	struct tw_buf b;
	struct tmp t;
	const void *p;
	uint64_t seq;
	size_t n;

	memset(evs, 0, sizeof evs);
	for (int i = 0; i < 3; i++) {
		evs[i].kind = TW_KIND_CLOUDTRAIL;
		evs[i].read_only = (int8_t)(i - 1);
		evs[i].time_ms = 1700000000000 + i;
		evs[i].f[TW_F_EVENT_NAME] = (struct tw_str){ "DeleteBucket", 12 };
		evs[i].raw = (struct tw_str){ "{\"eventName\":\"DeleteBucket\"}", 28 };
	}
	tmp_make(&t);
	tw_buf_init(&b, 1 << 20);
	cr_assert_eq(tw_evcodec_encode_batch(&b, evs, 3, &err), TW_OK);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, NULL, &err), TW_OK);
	cr_assert_eq(tw_wal_append(w, b.p, b.n, NULL, &err), TW_OK);
	tw_wal_close(w);
	cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_OK);
	tw_batch_init(&batch);
	cr_assert_eq(tw_evcodec_decode_batch(p, n, 0, &batch, &err), TW_OK, "%s", err.msg);
	tw_wal_reader_close(r); /* the batch owns a copy: the reader's buffer can go */
	cr_assert_eq(batch.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(batch.ev[i].time_ms, evs[i].time_ms);
		cr_assert_eq(batch.ev[i].read_only, evs[i].read_only);
		cr_assert(tw_str_eq(batch.ev[i].f[TW_F_EVENT_NAME], "DeleteBucket"));
		cr_assert(tw_str_eq(batch.ev[i].raw, "{\"eventName\":\"DeleteBucket\"}"));
	}
	tw_batch_free(&batch);
	tw_buf_free(&b);
	tmp_clean(&t);
}

Test(index_wal, a_write_that_makes_no_progress_is_an_error_not_a_loop)
{
	struct tw_wal *w = NULL;
	struct payload pl[1];
	struct tw_err err;
	struct fault f;
	struct tw_wal_opts o = fault_opts(&f);
	struct tmp t;

	tmp_make(&t);
	cr_assert_eq(tw_wal_open(t.wal, &o, &w, NULL, &err), TW_OK);
	make_payload(&pl[0], 0, 10);
	f.zero_once = 1;
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_EIO);
	cr_assert_eq(tw_wal_append(w, pl[0].b, pl[0].n, NULL, &err), TW_EIO);
	cr_assert(strstr(err.msg, "WAL stopped"), "%s", err.msg);
	tw_wal_close(w);
	tmp_clean(&t);
}

/* Writes a WAL by hand: frames with the given seqs and payloads (CRCs computed here). */
static size_t hand_wal(unsigned char *out, uint64_t base, const uint64_t *seqs,
		       const struct payload *pl, size_t nframes)
{
	unsigned char *p = out + 32;
	memset(out, 0, 32);
	memcpy(out, "TWWAL\r\n\x1a", 8);
	set32(out + 8, 1);
	set32(out + 12, 1 << 20);
	set64(out + 16, base);
	set32(out + 28, ref_crc32c(out, 28));
	for (size_t i = 0; i < nframes; i++) {
		set64(p, seqs[i]);
		set32(p + 8, (uint32_t)pl[i].n);
		set32(p + 12, ref_crc32c(pl[i].b, pl[i].n));
		set32(p + 16, ref_crc32c(p, 16));
		memcpy(p + 20, pl[i].b, pl[i].n);
		p += 20 + pl[i].n;
	}
	return (size_t)(p - out);
}

Test(index_wal, out_of_sequence_frames_are_not_accepted)
{
	static const uint64_t dup_tail[3] = { 1, 2, 2 }; /* last frame repeats a seq */
	static const uint64_t gap_mid[4] = { 1, 3, 4, 5 }; /* seq 2 missing, intact frames follow */
	unsigned char file[32 + 4 * 60];
	struct tw_wal_reader *r = NULL;
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[4];
	struct tw_err err;
	struct tmp t;
	const void *p;
	uint64_t seq;
	size_t n;

	tmp_make(&t);
	for (unsigned i = 0; i < 4; i++)
		make_payload(&pl[i], i, 30);
	spit(t.wal, file, hand_wal(file, 1, dup_tail, pl, 3));
	cr_assert_eq(tw_wal_reader_open(t.wal, &r, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_OK);
	cr_assert_eq(tw_wal_reader_next(r, &seq, &p, &n, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "expected 3"), "%s", err.msg);
	tw_wal_reader_close(r);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.frames, 2);
	cr_assert(strstr(rec.reason, "seq 2, expected 3"), "%s", rec.reason);
	tw_wal_close(w);

	spit(t.wal, file, hand_wal(file, 1, gap_mid, pl, 4));
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_ECORRUPT);
	cr_assert(strstr(err.msg, "not a torn tail"), "%s", err.msg);
	tmp_clean(&t);
}

/* A payload can hold bytes that look like a frame header (records carry user-controlled text).
 * When the last frame's header is intact but its payload is damaged, such bytes inside it must not
 * be taken for "an intact frame follows": the search starts after the damaged frame. */
Test(index_wal, frame_header_lookalike_inside_a_damaged_last_payload_is_ignored)
{
	static const uint64_t seqs[2] = { 1, 2 };
	unsigned char file[32 + 2 * 320];
	struct tw_wal_recovery rec;
	struct tw_wal *w = NULL;
	struct payload pl[2];
	struct tw_err err;
	struct tmp t;
	size_t n;

	tmp_make(&t);
	make_payload(&pl[0], 0, 10);
	make_payload(&pl[1], 1, 100);
	set64(pl[1].b + 40, 3); /* a perfect header for seq 3 inside the payload */
	set32(pl[1].b + 48, 0);
	set32(pl[1].b + 52, ref_crc32c("", 0));
	set32(pl[1].b + 56, ref_crc32c(pl[1].b + 40, 16));
	n = hand_wal(file, 1, seqs, pl, 2);
	file[n - 3] ^= 1; /* damage the last payload after the lookalike */
	spit(t.wal, file, n);
	cr_assert_eq(tw_wal_open(t.wal, NULL, &w, &rec, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(rec.frames, 1);
	cr_assert_eq(rec.damaged_middle, 0);
	tw_wal_close(w);
	tmp_clean(&t);
}

/* The search for intact frames after damage reads the file in chunks; a frame header lying
 * across a chunk boundary must still be found. Payload sizes around 64 KiB put the next header
 * across the first boundary for some size in the range, whatever the exact chunk size. */
Test(index_wal, intact_frame_across_a_search_chunk_boundary_is_still_found)
{
	struct payload last;
	struct tw_wal *w = NULL;
	struct tw_err err;
	struct tmp t;
	unsigned char *file;

	tmp_make(&t);
	make_payload(&last, 1, 30);
	file = malloc(32 + 2 * 20 + 65536 + 8 + 30);
	cr_assert(file);
	for (size_t len = 65536 - 48; len <= 65536 + 8; len++) {
		unsigned char *p = file + 32;
		hand_wal(file, 1, NULL, NULL, 0); /* the file header */
		set64(p, 1);
		set32(p + 8, (uint32_t)len);
		memset(p + 20, 0x5a, len);
		set32(p + 12, ref_crc32c(p + 20, len));
		set32(p + 16, ref_crc32c(p, 16));
		p += 20 + len;
		set64(p, 2);
		set32(p + 8, (uint32_t)last.n);
		set32(p + 12, ref_crc32c(last.b, last.n));
		set32(p + 16, ref_crc32c(p, 16));
		memcpy(p + 20, last.b, last.n);
		p += 20 + last.n;
		file[32 + 3] ^= 0x10; /* damage the first frame's header (its seq) */
		spit(t.wal, file, (size_t)(p - file));
		cr_assert_eq(tw_wal_open(t.wal, NULL, &w, NULL, &err), TW_ECORRUPT,
			     "payload %zu: the intact frame after the damage was missed", len);
	}
	free(file);
	tmp_clean(&t);
}
