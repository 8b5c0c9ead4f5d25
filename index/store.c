/* SPDX-License-Identifier: Apache-2.0 */
/* index/store.c: the store directory. One writer (LOCK), a WAL of durable batches, immutable
 * segments sealed from it, and a MANIFEST naming the live segments; dedup by event id, sealing,
 * compaction, retention; lock-free snapshots for readers. Layout: index/FORMAT.md, "Store directory".
 *
 *   DIR/LOCK              flock(LOCK_EX|LOCK_NB) by the writer; holds its pid (text) for messages
 *   DIR/MANIFEST          which segments are live, and the WAL seq sealed through (text, CRC-32C)
 *   DIR/MANIFEST.tmp      a MANIFEST being written (ignored and overwritten)
 *   DIR/wal               index/wal.h
 *   DIR/wal.sealing       a frozen WAL being sealed (the writer appends to a fresh wal meanwhile)
 *   DIR/seg/NNNNNNNN.tws  segments (index/segment.h), numbered 1, 2, 3 ... never reused
 *
 *   MANIFEST, version 1 (every line ends in \n, numbers in decimal, no other whitespace):
 *     trailwatch-manifest 1
 *     next-segment <N>        number the next segment gets
 *     sealed-seq <S>          every WAL frame with seq <= S is in a live segment (or was retained)
 *     segments <K>
 *     segment <NNNNNNNN>.tws  K lines, ascending
 *     crc32c <8 hex digits>   CRC-32C of every byte before this line
 *
 * Invariants:
 *  1. Only the process holding LOCK writes anything in DIR. Readers (snapshots, stat, verify)
 *     never write and never take the lock.
 *  2. The MANIFEST is replaced only atomically (MANIFEST.tmp written, fsynced, renamed, directory
 *     fsynced): a reader or a crash sees the old one or the new one whole. Its CRC catches media
 *     damage; a bad one is TW_ECORRUPT, never "empty store".
 *  3. A record is in exactly one place: a live segment, or a frame with seq > sealed-seq of wal
 *     or wal.sealing. Seal order: (a) rename wal -> wal.sealing, fsync dir, create a fresh wal
 *     (seqs continue); (b) write seg/N.tws from the in-memory copy of wal.sealing's payloads
 *     (atomically, by tw_segw; on the sealer thread when seal_async); (c) MANIFEST with N and
 *     sealed-seq = wal.sealing's last frame; (d) unlink wal.sealing, fsync dir, forget its keys.
 *     A crash after (a) leaves wal.sealing (replayed at open; its frames still count, plus an
 *     orphan after (b)); after (c) leaves frames <= sealed-seq in wal.sealing, which everybody
 *     skips and open deletes. WAL seqs never go back (a new WAL starts at sealed-seq + 1 or after
 *     wal.sealing's last frame; open refuses a WAL behind). At most one seal in flight; (c)-(d)
 *     run on the writer's thread, so s->segs, s->man and the key sets have one owner.
 *  4. Files in seg/ that the MANIFEST does not name are garbage from a seal, compaction or
 *     retention cut short; the writer deletes them at open. Segment numbers are never reused
 *     (next-segment only grows, and open bumps it past any file it finds).
 *  5. Compaction and retention swap the MANIFEST first and unlink the old files after, so a
 *     reader holding an old snapshot keeps its open (mmap'ed) files; a crash in between leaves
 *     orphans (invariant 4), never a MANIFEST naming a missing file.
 *  6. Dedup: a record's key is "I" + eventID, or when it has none "C" + kind + time + raw length +
 *     a 128-bit hash of raw (content). An appended record is skipped when its key is in a WAL set
 *     (keys of the frames after sealed-seq of wal and of wal.sealing, rebuilt at open), earlier in the same batch, or in a
 *     live segment whose [tmin, tmax] holds its time (tw_seg_has_id; for id-less records a per-
 *     segment content set built on first need). Ids are compared exactly, never by hash alone.
 *  7. A batch is acknowledged (TW_OK) only after its frame is durable. Any I/O failure of the
 *     writer (WAL, segment, MANIFEST) makes it stop for good: every later call fails with the
 *     first error, and only a new open (which re-reads the directory) writes again.
 *  8. A snapshot is consistent: it reads the MANIFEST, opens its segments and the WAL frames after
 *     its sealed-seq, then re-reads the MANIFEST; if it changed (or a segment vanished) it retries.
 */
#include "index/store.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/evcodec.h"
#include "index/store_int.h"

enum tw_store_crash tw_store_test_crash_at = TW_STORE_CRASH_NONE;
size_t tw_store_test_merge_fanin = 0;
size_t tw_store_test_merge_peak = 0;

#define MANIFEST_MAX (16u << 20)  /* cap on a MANIFEST file's size */
#define SNAP_TRIES 8              /* snapshot retries when the MANIFEST moves underneath */
#define KEYS_MAX ((size_t)1 << 40) /* cap on a key set's bytes (really bounded by seal_bytes) */

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t clock_realtime(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A 64-bit hash (multiply-xorshift over 8-byte words); two seeds give two independent-enough
 * halves of a 128-bit content hash. Not cryptographic: see FORMAT.md about content keys. */
static uint64_t hash64(const void *data, size_t n, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
	unsigned char t[8] = { 0 };

	while (n >= 8) {
		h ^= rd64(p);
		h *= 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
		p += 8;
		n -= 8;
	}
	if (n) {
		memcpy(t, p, n);
		h ^= rd64(t);
		h *= 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	h ^= h >> 30;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 27;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 31;
	return h;
}

/* fsync a directory (after a rename or unlink in it). */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r, e;

	if (fd < 0)
		return errno;
	r = fsync(fd);
	e = errno;
	close(fd);
	return r ? e : 0;
}

static char *path_join(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *p = malloc(na + nb + 2);

	if (!p)
		return NULL;
	memcpy(p, a, na);
	p[na] = '/';
	memcpy(p + na + 1, b, nb + 1);
	return p;
}

/* "NNNNNNNN.tws" -> number; 0 when name is not a segment name. */
static uint64_t seg_num_of(const char *name)
{
	uint64_t v = 0;
	size_t i, n = strlen(name);

	if (n < 12 || n > 24 || strcmp(name + n - 4, ".tws") != 0)
		return 0;
	for (i = 0; i < n - 4; i++) {
		if (name[i] < '0' || name[i] > '9' || v > UINT64_MAX / 10 - 1)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	return v;
}

static void seg_name(char *out, size_t cap, uint64_t num)
{
	snprintf(out, cap, "%08" PRIu64 ".tws", num);
}

/* ---- key sets (invariant 6) --------------------------------------------------------------- */

/* One slot of a key set. */
struct kslot {
	uint64_t h;   /* hash of the key; 0 = empty slot */
	uint64_t off; /* key bytes at keys.p + off */
	uint32_t len; /* key length */
};

/* An open-addressing hash set of byte strings, compared exactly. */
struct kset {
	struct kslot *t; /* slots; cap is a power of two */
	size_t cap;      /* slots allocated */
	size_t n;        /* keys held */
	struct tw_buf keys; /* the key bytes, back to back */
};

static void kset_init(struct kset *k)
{
	memset(k, 0, sizeof *k);
	tw_buf_init(&k->keys, KEYS_MAX);
}

static void kset_free(struct kset *k)
{
	free(k->t);
	tw_buf_free(&k->keys);
	memset(k, 0, sizeof *k);
}

static void kset_clear(struct kset *k)
{
	if (k->t)
		memset(k->t, 0, k->cap * sizeof *k->t);
	k->n = 0;
	tw_buf_reset(&k->keys);
}

static uint64_t kset_hash(const void *key, size_t n)
{
	uint64_t h = hash64(key, n, 0x5157d1e5ull);

	return h ? h : 1;
}

static int kset_has(const struct kset *k, const void *key, size_t n, uint64_t h)
{
	size_t i;

	if (!k->cap)
		return 0;
	for (i = h & (k->cap - 1); k->t[i].h; i = (i + 1) & (k->cap - 1))
		if (k->t[i].h == h && k->t[i].len == n && memcmp(k->keys.p + k->t[i].off, key, n) == 0)
			return 1;
	return 0;
}

static enum tw_rc kset_grow(struct kset *k, struct tw_err *err)
{
	size_t ncap = k->cap ? k->cap * 2 : 1024, i, j;
	struct kslot *nt = calloc(ncap, sizeof *nt);

	if (!nt)
		return tw_err_set(err, TW_ENOMEM, "out of memory growing the dedup set to %zu keys", ncap);
	for (i = 0; i < k->cap; i++) {
		if (!k->t[i].h)
			continue;
		for (j = k->t[i].h & (ncap - 1); nt[j].h; j = (j + 1) & (ncap - 1))
			;
		nt[j] = k->t[i];
	}
	free(k->t);
	k->t = nt;
	k->cap = ncap;
	return TW_OK;
}

/* Adds key (no check for presence: callers check first). */
static enum tw_rc kset_add(struct kset *k, const void *key, size_t n, uint64_t h, struct tw_err *err)
{
	enum tw_rc rc;
	size_t i;

	if (n > UINT32_MAX)
		return tw_err_set(err, TW_ELIMIT, "dedup key of %zu bytes", n);
	if ((k->n + 1) * 4 > k->cap * 3 && (rc = kset_grow(k, err)))
		return rc;
	i = k->keys.n;
	if ((rc = tw_buf_append(&k->keys, key, n, err)))
		return rc;
	{
		size_t j;

		for (j = h & (k->cap - 1); k->t[j].h; j = (j + 1) & (k->cap - 1))
			;
		k->t[j].h = h;
		k->t[j].off = i;
		k->t[j].len = (uint32_t)n;
	}
	k->n++;
	return TW_OK;
}

/* The dedup key of ev into key (reset first). */
static enum tw_rc ev_key(const struct tw_event *ev, struct tw_buf *key, struct tw_err *err)
{
	unsigned char c[1 + 1 + 8 + 8 + 16];
	uint64_t v;

	tw_buf_reset(key);
	if (ev->f[TW_F_EVENT_ID].n) {
		enum tw_rc rc = tw_buf_putc(key, 'I', err);

		return rc ? rc : tw_buf_append(key, ev->f[TW_F_EVENT_ID].p, ev->f[TW_F_EVENT_ID].n, err);
	}
	c[0] = 'C';
	c[1] = (unsigned char)ev->kind;
	memcpy(c + 2, &ev->time_ms, 8);
	v = ev->raw.n;
	memcpy(c + 10, &v, 8);
	v = hash64(ev->raw.p, ev->raw.n, 0x243f6a8885a308d3ull);
	memcpy(c + 18, &v, 8);
	v = hash64(ev->raw.p, ev->raw.n, 0x13198a2e03707344ull ^ 0xa4093822299f31d0ull);
	memcpy(c + 26, &v, 8);
	return tw_buf_append(key, c, sizeof c, err);
}

/* ---- MANIFEST (invariant 2) --------------------------------------------------------------- */

/* The parsed MANIFEST. */
struct manifest {
	uint64_t next_seg;   /* number the next segment gets (>= 1) */
	uint64_t sealed_seq; /* WAL frames with seq <= this are in segments */
	uint64_t *segs;      /* live segment numbers, ascending */
	size_t n;            /* entries in segs */
};

static void man_free(struct manifest *m)
{
	free(m->segs);
	memset(m, 0, sizeof *m);
}

static void man_empty(struct manifest *m)
{
	memset(m, 0, sizeof *m);
	m->next_seg = 1;
}

/* Reads "<word> <decimal>\n" at *p; advances. */
static int parse_line(const char **p, const char *end, const char *word, uint64_t *v)
{
	size_t wn = strlen(word);
	const char *q = *p;
	uint64_t x = 0;
	int digits = 0;

	if ((size_t)(end - q) < wn + 1 || memcmp(q, word, wn) != 0 || q[wn] != ' ')
		return -1;
	q += wn + 1;
	while (q < end && *q >= '0' && *q <= '9') {
		if (x > (UINT64_MAX - 9) / 10 || (digits && x == 0))
			return -1;
		x = x * 10 + (uint64_t)(*q - '0');
		q++;
		digits++;
	}
	if (!digits || q >= end || *q != '\n')
		return -1;
	*p = q + 1;
	*v = x;
	return 0;
}

/* Parses MANIFEST bytes. TW_ECORRUPT with the reason. */
static enum tw_rc man_parse(const char *path, const char *b, size_t n, struct manifest *m,
			    struct tw_err *err)
{
	const char *p = b, *end = b + n, *crcline;
	uint64_t ver, cnt, num;
	unsigned int crc;
	char hex[9];
	size_t i;

	man_empty(m);
	/* the crc line is the last line: "crc32c xxxxxxxx\n" (16 bytes) */
	if (n < 16 || memcmp(end - 16, "crc32c ", 7) != 0 || end[-1] != '\n')
		return tw_err_set(err, TW_ECORRUPT, "%s: no checksum line (truncated or not a MANIFEST)", path);
	crcline = end - 16;
	memcpy(hex, crcline + 7, 8);
	hex[8] = 0;
	for (i = 0; i < 8; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return tw_err_set(err, TW_ECORRUPT, "%s: bad checksum line", path);
	crc = (unsigned int)strtoul(hex, NULL, 16);
	if (crc != tw_wal_crc32c(0, b, (size_t)(crcline - b)))
		return tw_err_set(err, TW_ECORRUPT, "%s: checksum %08x != %08x (damaged)", path, crc,
				  tw_wal_crc32c(0, b, (size_t)(crcline - b)));
	end = crcline;
	if (parse_line(&p, end, "trailwatch-manifest", &ver))
		return tw_err_set(err, TW_ECORRUPT, "%s: not a trailwatch MANIFEST", path);
	if (ver != 1)
		return tw_err_set(err, TW_EUNSUP, "%s: MANIFEST version %" PRIu64 " (this build reads 1)",
				  path, ver);
	if (parse_line(&p, end, "next-segment", &m->next_seg) || m->next_seg == 0 ||
	    parse_line(&p, end, "sealed-seq", &m->sealed_seq) || parse_line(&p, end, "segments", &cnt) ||
	    cnt > (size_t)(end - p) / 8)
		return tw_err_set(err, TW_ECORRUPT, "%s: bad header lines", path);
	m->segs = calloc(cnt ? cnt : 1, sizeof *m->segs);
	if (!m->segs)
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
	for (i = 0; i < cnt; i++) {
		char name[32];
		const char *q = p;
		size_t k = 0;

		if ((size_t)(end - q) < 9 || memcmp(q, "segment ", 8) != 0)
			goto bad;
		q += 8;
		while (q < end && *q != '\n' && k < sizeof name - 1)
			name[k++] = *q++;
		name[k] = 0;
		if (q >= end || *q != '\n' || !(num = seg_num_of(name)) || num >= m->next_seg ||
		    (i && num <= m->segs[i - 1]))
			goto bad;
		m->segs[i] = num;
		p = q + 1;
	}
	m->n = (size_t)cnt;
	if (p != end)
		goto bad;
	return TW_OK;
bad:
	man_free(m);
	return tw_err_set(err, TW_ECORRUPT, "%s: bad segment line %zu", path, i + 1);
}

/* Reads the whole MANIFEST file into raw (reset first). TW_ENOENT when missing. */
static enum tw_rc man_load(const char *path, struct tw_buf *raw, struct tw_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	enum tw_rc rc = TW_OK;
	char chunk[4096];
	ssize_t got;

	tw_buf_reset(raw);
	if (fd < 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: open: %s", path,
				  strerror(errno));
	for (;;) {
		got = read(fd, chunk, sizeof chunk);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = tw_err_set(err, TW_EIO, "%s: read: %s", path, strerror(errno));
			break;
		}
		if (got == 0)
			break;
		if ((rc = tw_buf_append(raw, chunk, (size_t)got, err))) {
			if (rc == TW_ELIMIT)
				rc = tw_err_set(err, TW_ECORRUPT, "%s: over %u bytes: not a MANIFEST", path,
						MANIFEST_MAX);
			break;
		}
	}
	close(fd);
	return rc;
}

/* Reads and parses; a missing file is the empty store. raw (may be NULL) keeps the bytes. */
static enum tw_rc man_read(const char *path, struct manifest *m, struct tw_buf *raw, struct tw_err *err)
{
	struct tw_buf own;
	enum tw_rc rc;

	tw_buf_init(&own, MANIFEST_MAX);
	if (!raw)
		raw = &own;
	rc = man_load(path, raw, err);
	if (rc == TW_ENOENT) {
		tw_err_clear(err);
		man_empty(m);
		rc = TW_OK;
	} else if (rc == TW_OK) {
		rc = man_parse(path, raw->p, raw->n, m, err);
	}
	tw_buf_free(&own);
	return rc;
}

static enum tw_rc man_format(const struct manifest *m, struct tw_buf *b, struct tw_err *err)
{
	enum tw_rc rc;
	size_t i;

	tw_buf_reset(b);
	rc = tw_buf_printf(b, err, "trailwatch-manifest 1\nnext-segment %" PRIu64 "\nsealed-seq %" PRIu64
			   "\nsegments %zu\n", m->next_seg, m->sealed_seq, m->n);
	for (i = 0; !rc && i < m->n; i++)
		rc = tw_buf_printf(b, err, "segment %08" PRIu64 ".tws\n", m->segs[i]);
	if (!rc)
		rc = tw_buf_printf(b, err, "crc32c %08x\n", tw_wal_crc32c(0, b->p, b->n));
	return rc;
}

/* ---- the writer --------------------------------------------------------------------------- */

/* A live segment as the writer keeps it. */
struct livseg {
	uint64_t num;        /* its number */
	struct tw_seg *seg;  /* open (mmap) for dedup lookups */
	struct kset *content; /* content keys of its id-less records, built on first need; or NULL */
};

/* The unsealed frames of one WAL file, kept in memory as the payloads written (so a seal neither
 * re-reads nor re-checks the file), with the dedup keys of their records. */
struct gen {
	struct tw_buf bytes; /* the payloads, back to back */
	uint64_t *ends;      /* end offset in bytes of each frame's payload */
	size_t n;            /* frames */
	size_t cap;          /* entries allocated in ends */
	uint64_t last_seq;   /* seq of the last frame; 0 when n == 0 */
	struct kset keys;    /* keys of their records (invariant 6) */
};

/* A seal's build step (decode, sort, write seg/N.tws): runs on the sealer thread or inline. */
struct sealjob {
	pthread_t th;        /* the sealer thread while running */
	int running;         /* 1: th started and not joined yet */
	atomic_int done;     /* set by the thread when it finished (join will not block) */
	uint64_t num;        /* the segment number it writes */
	char *path;          /* seg/N.tws */
	const struct gen *g; /* the frames it seals (the store's frozen generation; read only) */
	const struct tw_seg_opts *so; /* segment options */
	int made;            /* out: 1 if a segment was written (0 when the frames held no record) */
	enum tw_rc rc;       /* out: the result */
	struct tw_err err;   /* out: the error */
};

struct tw_store {
	char *dir;           /* the directory */
	char *segdir;        /* dir/seg */
	char *walpath;       /* dir/wal */
	char *sealpath;      /* dir/wal.sealing: a frozen WAL being sealed */
	char *manpath;       /* dir/MANIFEST */
	char *mantmp;        /* dir/MANIFEST.tmp */
	int lockfd;          /* dir/LOCK, flock'ed; -1 when not open */
	struct tw_store_opts o; /* options (defaults filled in) */
	struct tw_wal *wal;  /* the WAL, open for appending */
	struct manifest man; /* the current MANIFEST */
	struct livseg *segs; /* live segments, in MANIFEST order */
	size_t nsegs;        /* entries in segs (== man.n) */
	struct gen act;      /* frames of wal after man.sealed_seq */
	struct gen frz;      /* frames of wal.sealing after man.sealed_seq (when has_frz) */
	int has_frz;         /* 1 while wal.sealing exists with unsealed frames */
	struct sealjob job;  /* the seal of frz, when running */
	int64_t oldest_ms;   /* when the oldest frame of act was appended (or found at open); 0 none */
	struct tw_buf key;   /* scratch: one key */
	int stopped;         /* invariant 7: set after an I/O failure */
	char stop_msg[256];  /* the first failure */
};

void tw_store_opts_default(struct tw_store_opts *o)
{
	memset(o, 0, sizeof *o);
	o->seal_bytes = 64ull << 20;
	o->seal_async = 1;
	o->seal_age_ms = 5 * 60 * 1000;
	tw_seg_opts_default(&o->seg);
}

static int64_t now_ms(const struct tw_store *s)
{
	return s->o.clock ? s->o.clock(s->o.clock_ctx) : clock_realtime(NULL);
}

/* Invariant 7: remember the first failure; returns rc. */
static enum tw_rc stop(struct tw_store *s, enum tw_rc rc, struct tw_err *err)
{
	if (!s->stopped) {
		s->stopped = 1;
		snprintf(s->stop_msg, sizeof s->stop_msg, "%s", err && err->msg[0] ? err->msg : tw_rc_str(rc));
	}
	return rc;
}

static enum tw_rc check_stopped(const struct tw_store *s, struct tw_err *err)
{
	if (s->stopped)
		return tw_err_set(err, TW_EIO, "store %s stopped after an earlier error: %s", s->dir,
				  s->stop_msg);
	return TW_OK;
}

/* Test hook: stop here as if killed. */
static int crash_here(struct tw_store *s, enum tw_store_crash at, struct tw_err *err)
{
	if (tw_store_test_crash_at != at)
		return 0;
	tw_store_test_crash_at = TW_STORE_CRASH_NONE;
	tw_err_set(err, TW_EIO, "test crash point %d", (int)at);
	stop(s, TW_EIO, err);
	return 1;
}

/* Writes m as the new MANIFEST (invariant 2) and makes it s->man on success. */
static enum tw_rc man_write(struct tw_store *s, struct manifest *m, struct tw_err *err)
{
	struct tw_buf b;
	enum tw_rc rc;
	size_t off = 0;
	int fd, e;

	tw_buf_init(&b, MANIFEST_MAX);
	if ((rc = man_format(m, &b, err)))
		goto out;
	fd = open(s->mantmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = tw_err_set(err, TW_EIO, "%s: create: %s", s->mantmp, strerror(errno));
		goto out;
	}
	while (off < b.n) {
		ssize_t w = write(fd, b.p + off, b.n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = tw_err_set(err, TW_EIO, "%s: write: %s", s->mantmp, w < 0 ? strerror(errno) : "no progress");
			close(fd);
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: fsync: %s", s->mantmp, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (rename(s->mantmp, s->manpath) != 0) {
		rc = tw_err_set(err, TW_EIO, "rename %s -> %s: %s", s->mantmp, s->manpath, strerror(errno));
		goto out;
	}
	if ((e = fsync_dir(s->dir)) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: fsync: %s", s->dir, strerror(e));
		goto out;
	}
	man_free(&s->man);
	s->man = *m;
	memset(m, 0, sizeof *m);
out:
	tw_buf_free(&b);
	return rc;
}

static void livseg_clear(struct livseg *l)
{
	tw_seg_close(l->seg);
	if (l->content) {
		kset_free(l->content);
		free(l->content);
	}
	memset(l, 0, sizeof *l);
}

static enum tw_rc seg_open_num(const char *segdir, uint64_t num, struct tw_seg **out, struct tw_err *err)
{
	char name[32], *p;
	enum tw_rc rc;

	seg_name(name, sizeof name, num);
	if (!(p = path_join(segdir, name)))
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	rc = tw_seg_open(p, out, err);
	free(p);
	return rc;
}

/* Deletes seg/ files the MANIFEST does not name (invariant 4); bumps next_seg past any number. */
static enum tw_rc remove_orphans(struct tw_store *s, uint64_t *removed, uint64_t *maxnum, struct tw_err *err)
{
	DIR *d = opendir(s->segdir);
	struct dirent *de;
	enum tw_rc rc = TW_OK;
	int any = 0, e;

	*removed = 0;
	*maxnum = 0;
	if (!d)
		return tw_err_set(err, TW_EIO, "%s: opendir: %s", s->segdir, strerror(errno));
	while ((de = readdir(d))) {
		uint64_t num;
		size_t i, nl = strlen(de->d_name);
		int live = 0;
		char *p;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		{
			char base[32];

			/* numbers of "N.tws" and of "N.tws.tmp" both count for next_seg */
			if (nl > 4 && nl < sizeof base && !strcmp(de->d_name + nl - 4, ".tmp")) {
				memcpy(base, de->d_name, nl - 4);
				base[nl - 4] = 0;
				num = seg_num_of(base);
			} else {
				num = seg_num_of(de->d_name);
				for (i = 0; num && i < s->man.n; i++)
					if (s->man.segs[i] == num)
						live = 1;
			}
		}
		if (num > *maxnum)
			*maxnum = num;
		if (live)
			continue;
		if (!(p = path_join(s->segdir, de->d_name))) {
			rc = tw_err_set(err, TW_ENOMEM, "out of memory");
			break;
		}
		if (unlink(p) != 0 && errno != ENOENT) {
			rc = tw_err_set(err, TW_EIO, "%s: unlink: %s", p, strerror(errno));
			free(p);
			break;
		}
		free(p);
		(*removed)++;
		any = 1;
	}
	closedir(d);
	if (!rc && any && (e = fsync_dir(s->segdir)) != 0)
		rc = tw_err_set(err, TW_EIO, "%s: fsync: %s", s->segdir, strerror(e));
	return rc;
}

static void gen_init(struct gen *g)
{
	memset(g, 0, sizeof *g);
	tw_buf_init(&g->bytes, KEYS_MAX);
	kset_init(&g->keys);
}

static void gen_free(struct gen *g)
{
	tw_buf_free(&g->bytes);
	free(g->ends);
	kset_free(&g->keys);
	memset(g, 0, sizeof *g);
}

/* Empties g, keeping its memory for the next WAL. */
static void gen_clear(struct gen *g)
{
	tw_buf_reset(&g->bytes);
	g->n = 0;
	g->last_seq = 0;
	kset_clear(&g->keys);
}

/* Records that the payload ending at g->bytes.n is frame seq. */
static enum tw_rc gen_push(struct gen *g, uint64_t seq, struct tw_err *err)
{
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 1024;
		uint64_t *p = realloc(g->ends, ncap * sizeof *p);

		if (!p)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		g->ends = p;
		g->cap = ncap;
	}
	g->ends[g->n++] = g->bytes.n;
	g->last_seq = seq;
	return TW_OK;
}

/* Adds the keys of one batch payload to g->keys. */
static enum tw_rc load_payload_keys(struct tw_store *s, struct gen *g, const void *payload, size_t n,
				    struct tw_batch *tmp, struct tw_err *err)
{
	enum tw_rc rc;
	size_t i;

	tw_batch_reset(tmp);
	if ((rc = tw_evcodec_decode_batch(payload, n, TW_EVCODEC_BORROW, tmp, err)))
		return rc;
	for (i = 0; i < tmp->n; i++) {
		uint64_t h;

		if ((rc = ev_key(&tmp->ev[i], &s->key, err)))
			return rc;
		h = kset_hash(s->key.p, s->key.n);
		if (!kset_has(&g->keys, s->key.p, s->key.n, h) &&
		    (rc = kset_add(&g->keys, s->key.p, s->key.n, h, err)))
			return rc;
	}
	return TW_OK;
}

/* Reads the frames of the WAL at path after sealed_seq into g (payloads and keys). */
static enum tw_rc load_gen(struct tw_store *s, const char *path, struct gen *g, struct tw_err *err)
{
	struct tw_wal_reader *r = NULL;
	struct tw_batch tmp;
	const void *payload;
	uint64_t seq;
	size_t n;
	enum tw_rc rc;

	tw_batch_init(&tmp);
	if ((rc = tw_wal_reader_open(path, &r, err)))
		goto out;
	while ((rc = tw_wal_reader_next(r, &seq, &payload, &n, err)) == TW_OK) {
		if (seq <= s->man.sealed_seq)
			continue;
		if ((rc = load_payload_keys(s, g, payload, n, &tmp, err)) ||
		    (rc = tw_buf_append(&g->bytes, payload, n, err)) || (rc = gen_push(g, seq, err))) {
			tw_err_prefix(err, "%s: frame seq %" PRIu64, path, seq);
			goto out;
		}
	}
	if (rc == TW_ENOENT) {
		tw_err_clear(err);
		rc = TW_OK;
	}
out:
	tw_wal_reader_close(r);
	tw_batch_free(&tmp);
	return rc;
}

static enum tw_rc take_lock(struct tw_store *s, struct tw_err *err)
{
	char *p = path_join(s->dir, "LOCK"), pid[32];
	int n;

	if (!p)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	s->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		enum tw_rc rc = tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: open: %s", p,
					   strerror(errno));
		free(p);
		return rc;
	}
	free(p);
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t got;
		long other = 0;

		if (errno != EWOULDBLOCK)
			return tw_err_set(err, TW_EIO, "%s/LOCK: flock: %s", s->dir, strerror(errno));
		got = pread(s->lockfd, pid, sizeof pid - 1, 0);
		if (got > 0) {
			pid[got] = 0;
			other = strtol(pid, NULL, 10);
		}
		return tw_err_set(err, TW_EBUSY, "store %s is being written by another process (pid %ld)",
				  s->dir, other);
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s->lockfd, 0) != 0 || pwrite(s->lockfd, pid, (size_t)n, 0) != n)
		return tw_err_set(err, TW_EIO, "%s/LOCK: write pid: %s", s->dir, strerror(errno));
	return TW_OK;
}

static int file_exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* Recovers a frozen WAL (wal.sealing) left by a seal cut short: its frames after sealed-seq go
 * into s->frz (sealed by the next seal); when none are left, the file is removed. *next is the
 * seq after its last frame (0 when there is no such file). */
static enum tw_rc recover_frozen(struct tw_store *s, uint64_t *next, uint64_t *cut, struct tw_err *err)
{
	struct tw_wal_recovery wr;
	struct tw_wal_opts wo;
	struct tw_wal *w = NULL;
	enum tw_rc rc;
	int e;

	*next = 0;
	if (!file_exists(s->sealpath))
		return TW_OK;
	memset(&wo, 0, sizeof wo);
	wo.first_seq = s->man.sealed_seq + 1;
	if (s->o.io)
		wo.io = *s->o.io;
	if ((rc = tw_wal_open(s->sealpath, &wo, &w, &wr, err)))
		return rc;
	*next = tw_wal_next_seq(w);
	*cut += wr.cut_bytes;
	tw_wal_close(w);
	if ((rc = load_gen(s, s->sealpath, &s->frz, err)))
		return rc;
	if (s->frz.n) {
		s->has_frz = 1;
		return TW_OK;
	}
	/* every frame is sealed already (a crash after the MANIFEST, before the unlink) */
	if (unlink(s->sealpath) != 0 && errno != ENOENT)
		return tw_err_set(err, TW_EIO, "%s: unlink: %s", s->sealpath, strerror(errno));
	if ((e = fsync_dir(s->dir)) != 0)
		return tw_err_set(err, TW_EIO, "%s: fsync: %s", s->dir, strerror(e));
	return TW_OK;
}

enum tw_rc tw_store_open(const char *dir, const struct tw_store_opts *opts, struct tw_store **out,
			 struct tw_store_recovery *rec, struct tw_err *err)
{
	struct tw_store_recovery r;
	struct tw_wal_recovery wr;
	struct tw_wal_opts wo;
	struct tw_store *s;
	uint64_t maxnum = 0, frz_next = 0;
	enum tw_rc rc;
	size_t i;

	memset(&r, 0, sizeof r);
	if (!(s = calloc(1, sizeof *s)))
		return tw_err_set(err, TW_ENOMEM, "out of memory opening store %s", dir);
	s->lockfd = -1;
	gen_init(&s->act);
	gen_init(&s->frz);
	tw_buf_init(&s->key, (size_t)1 << 30);
	if (opts)
		s->o = *opts;
	else
		tw_store_opts_default(&s->o);
	if (!s->o.seal_bytes)
		s->o.seal_bytes = 64ull << 20;
	s->dir = strdup(dir);
	s->segdir = path_join(dir, "seg");
	s->walpath = path_join(dir, "wal");
	s->sealpath = path_join(dir, "wal.sealing");
	s->manpath = path_join(dir, "MANIFEST");
	s->mantmp = path_join(dir, "MANIFEST.tmp");
	if (!s->dir || !s->segdir || !s->walpath || !s->sealpath || !s->manpath || !s->mantmp) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory opening store %s", dir);
		goto fail;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: mkdir: %s", dir, strerror(errno));
		goto fail;
	}
	if ((rc = take_lock(s, err)))
		goto fail;
	if (mkdir(s->segdir, 0700) != 0 && errno != EEXIST) {
		rc = tw_err_set(err, TW_EIO, "%s: mkdir: %s", s->segdir, strerror(errno));
		goto fail;
	}
	if ((rc = man_read(s->manpath, &s->man, NULL, err)))
		goto fail;
	unlink(s->mantmp); /* a MANIFEST write cut short */

	if ((rc = recover_frozen(s, &frz_next, &r.wal_bytes_cut, err)))
		goto fail;
	memset(&wo, 0, sizeof wo);
	wo.first_seq = s->man.sealed_seq + 1 > frz_next ? s->man.sealed_seq + 1 : frz_next;
	if (s->o.io)
		wo.io = *s->o.io;
	if ((rc = tw_wal_open(s->walpath, &wo, &s->wal, &wr, err)))
		goto fail;
	if (tw_wal_next_seq(s->wal) <= s->man.sealed_seq) {
		rc = tw_err_set(err, TW_ECORRUPT,
				"%s: WAL sequence %" PRIu64 " is behind the MANIFEST's sealed-seq %" PRIu64
				" (the WAL file was replaced?)", s->walpath, tw_wal_next_seq(s->wal),
				s->man.sealed_seq);
		goto fail;
	}
	if (frz_next && wr.frames && wr.first_seq < frz_next) {
		rc = tw_err_set(err, TW_ECORRUPT,
				"%s: WAL starts at seq %" PRIu64 ", inside %s (which ends before %" PRIu64 ")",
				s->walpath, wr.first_seq, s->sealpath, frz_next);
		goto fail;
	}
	r.wal_bytes_cut += wr.cut_bytes;

	if ((rc = remove_orphans(s, &r.orphans_removed, &maxnum, err)))
		goto fail;
	if (maxnum >= s->man.next_seg)
		s->man.next_seg = maxnum + 1;
	s->segs = calloc(s->man.n ? s->man.n : 1, sizeof *s->segs);
	if (!s->segs) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->man.n; i++) {
		s->segs[i].num = s->man.segs[i];
		if ((rc = seg_open_num(s->segdir, s->man.segs[i], &s->segs[i].seg, err)))
			goto fail;
		s->nsegs++;
	}
	if ((rc = load_gen(s, s->walpath, &s->act, err)))
		goto fail;
	r.wal_frames = s->act.n + s->frz.n;
	if (s->act.n)
		s->oldest_ms = now_ms(s);
	{
		size_t k = 0;

		if (r.wal_bytes_cut)
			k += (size_t)snprintf(r.note + k, sizeof r.note - k, "cut a torn WAL tail of %" PRIu64
					      " bytes (%s); ", r.wal_bytes_cut, wr.reason);
		if (r.orphans_removed && k < sizeof r.note)
			snprintf(r.note + k, sizeof r.note - k, "removed %" PRIu64
				 " segment file(s) the MANIFEST does not list (a seal or compaction cut short)",
				 r.orphans_removed);
	}
	if (rec)
		*rec = r;
	*out = s;
	return TW_OK;
fail:
	tw_store_close(s, NULL);
	return rc;
}

static enum tw_rc seal_wait(struct tw_store *s, struct tw_err *err);

enum tw_rc tw_store_close(struct tw_store *s, struct tw_err *err)
{
	enum tw_rc rc = TW_OK;
	size_t i;

	if (!s)
		return TW_OK;
	/* a seal in flight finishes (its segment goes into the MANIFEST unless the writer stopped) */
	if (s->job.running)
		rc = seal_wait(s, err);
	tw_wal_close(s->wal);
	for (i = 0; i < s->nsegs; i++)
		livseg_clear(&s->segs[i]);
	free(s->segs);
	man_free(&s->man);
	gen_free(&s->act);
	gen_free(&s->frz);
	tw_buf_free(&s->key);
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->dir);
	free(s->segdir);
	free(s->walpath);
	free(s->sealpath);
	free(s->manpath);
	free(s->mantmp);
	free(s);
	return rc;
}

/* Builds l->content: the content keys of the segment's records that have no event id. */
static enum tw_rc build_content(struct livseg *l, struct tw_err *err)
{
	const struct tw_seg_info *info = tw_seg_get_info(l->seg);
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_event ev;
	struct tw_buf key;
	enum tw_rc rc = TW_OK;
	uint32_t i;

	if (!(l->content = malloc(sizeof *l->content)))
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	kset_init(l->content);
	tw_buf_init(&key, (size_t)1 << 30);
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 4096, 0);
	for (i = 0; i < info->records; i++) {
		uint64_t h;

		tw_arena_reset(&a);
		if ((rc = tw_seg_get(l->seg, i, &bb, &ev, &a, err)))
			break;
		if (ev.f[TW_F_EVENT_ID].n)
			continue;
		if ((rc = ev_key(&ev, &key, err)))
			break;
		h = kset_hash(key.p, key.n);
		if (!kset_has(l->content, key.p, key.n, h) && (rc = kset_add(l->content, key.p, key.n, h, err)))
			break;
	}
	tw_buf_free(&key);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	if (rc) {
		kset_free(l->content);
		free(l->content);
		l->content = NULL;
	}
	return rc;
}

static enum tw_rc seal_start(struct tw_store *s, struct tw_err *err);
static enum tw_rc seal_reap_if_done(struct tw_store *s, struct tw_err *err);

static enum tw_rc maybe_seal(struct tw_store *s, struct tw_err *err)
{
	if (tw_wal_size(s->wal) >= s->o.seal_bytes)
		return s->o.seal_async ? seal_start(s, err) : tw_store_seal(s, err);
	if (s->o.seal_age_ms > 0 && s->oldest_ms && now_ms(s) - s->oldest_ms >= s->o.seal_age_ms)
		return tw_store_seal(s, err);
	if (s->has_frz && !s->job.running && s->o.seal_async) /* recovered at open: seal it now */
		return seal_start(s, err);
	return TW_OK;
}

/* Segment lookups of one batch (invariant 6), cheap in both common cases: a fresh event newer
 * than every segment is skipped by the time ranges alone; a batch of duplicates (the same files
 * ingested again) is looked up in tw_seg_order, the order records have inside segments, so
 * candidates in the same block come one after the other and the segment decompresses that
 * block's id frame once (tw_seg_has_id keeps the last one) rather than once per event. The first
 * SEG_PROBE lookups of a segment run in batch order; the rest are sorted only when at least a
 * quarter of those were found (sorting a fresh batch whose ids the filter rejects would only cost). */
#define SEG_PROBE 32

static int ev_order_cmp(const void *a, const void *b, void *vev)
{
	const struct tw_event *ev = vev;
	int c = tw_seg_order(&ev[*(const uint32_t *)a], &ev[*(const uint32_t *)b]);

	if (c)
		return c;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* Marks dup[i] = 1 for the candidates cand[0..n) (indexes into ev) found in a live segment. cand
 * is reordered; work has room for n entries. */
static enum tw_rc dedup_segments(struct tw_store *s, const struct tw_event *ev, uint32_t *cand, size_t n,
				 uint32_t *work, unsigned char *dup, struct tw_err *err)
{
	int64_t bmin = INT64_MAX, bmax = INT64_MIN;
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (ev[cand[i]].time_ms < bmin)
			bmin = ev[cand[i]].time_ms;
		if (ev[cand[i]].time_ms > bmax)
			bmax = ev[cand[i]].time_ms;
	}
	for (j = 0; n && j < s->nsegs; j++) {
		struct livseg *l = &s->segs[j];
		const struct tw_seg_info *info = tw_seg_get_info(l->seg);
		size_t k = 0, probed = 0, found = 0, m = 0;
		int sorted = 0;

		if (bmax < info->tmin || bmin > info->tmax)
			continue;
		/* the candidates still undecided whose time this segment covers */
		for (i = 0; i < n; i++)
			if (!dup[cand[i]] && ev[cand[i]].time_ms >= info->tmin && ev[cand[i]].time_ms <= info->tmax)
				work[m++] = cand[i];
		for (k = 0; k < m; k++) {
			const struct tw_event *e = &ev[work[k]];
			struct tw_err e2;
			int r;

			if (!sorted && probed == SEG_PROBE && found * 4 >= probed) {
				qsort_r(work + k, m - k, sizeof *work, ev_order_cmp, (void *)ev);
				sorted = 1;
				e = &ev[work[k]];
			}
			if (!e->f[TW_F_EVENT_ID].n) {
				if ((r = ev_key(e, &s->key, err)))
					return r;
				if (!l->content && (r = build_content(l, err)))
					return r;
				if (kset_has(l->content, s->key.p, s->key.n, kset_hash(s->key.p, s->key.n)))
					dup[work[k]] = 1;
				continue;
			}
			tw_err_clear(&e2);
			r = tw_seg_has_id(l->seg, e->f[TW_F_EVENT_ID], NULL, &e2);
			if (r < 0 || (r == 0 && e2.rc != TW_OK)) {
				if (e2.rc == TW_OK)
					tw_err_set(&e2, TW_ECORRUPT, "%s: event id lookup failed", tw_seg_path(l->seg));
				if (err)
					*err = e2;
				return e2.rc;
			}
			probed++;
			if (r) {
				found++;
				dup[work[k]] = 1;
			}
		}
	}
	return TW_OK;
}

/* Per-event scratch of one append. */
struct akey {
	uint64_t h;   /* hash of the key */
	uint64_t off; /* key bytes in the batch's local set */
	uint32_t len; /* key length */
};

enum tw_rc tw_store_append(struct tw_store *s, const struct tw_batch *batch, struct tw_store_append_result *res,
			   struct tw_err *err)
{
	return tw_store_append_dups(s, batch, res, NULL, err);
}

enum tw_rc tw_store_append_dups(struct tw_store *s, const struct tw_batch *batch,
				struct tw_store_append_result *res, unsigned char *dup_out, struct tw_err *err)
{
	struct tw_store_append_result out = { 0, 0 };
	struct akey *ak = NULL;
	uint32_t *cand = NULL, *work = NULL;
	unsigned char *dup = NULL;
	struct kset local;
	size_t i, ncand = 0, nkeep = 0;
	enum tw_rc rc;

	if ((rc = check_stopped(s, err)) || (rc = seal_reap_if_done(s, err)))
		return rc;
	kset_init(&local);
	if (batch->n > UINT32_MAX) {
		rc = tw_err_set(err, TW_ELIMIT, "batch of %zu events", batch->n);
		goto out;
	}
	if (batch->n && (!(ak = malloc(batch->n * sizeof *ak)) || !(cand = malloc(batch->n * sizeof *cand)) ||
			 !(work = malloc(batch->n * sizeof *work)) || !(dup = calloc(batch->n, 1)))) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory deduplicating a batch of %zu", batch->n);
		goto out;
	}
	/* the WAL's sets and the batch itself first: a key seen there is a duplicate */
	for (i = 0; i < batch->n; i++) {
		const struct tw_event *ev = &batch->ev[i];
		uint64_t h;

		if ((rc = ev_key(ev, &s->key, err)))
			goto out;
		h = kset_hash(s->key.p, s->key.n);
		if (kset_has(&s->act.keys, s->key.p, s->key.n, h) || kset_has(&s->frz.keys, s->key.p, s->key.n, h) ||
		    kset_has(&local, s->key.p, s->key.n, h)) {
			dup[i] = 1;
			continue;
		}
		ak[i].h = h;
		ak[i].off = local.keys.n;
		ak[i].len = (uint32_t)s->key.n;
		if ((rc = kset_add(&local, s->key.p, s->key.n, h, err)))
			goto out;
		cand[ncand++] = (uint32_t)i;
	}
	/* then the live segments; cand is reordered, so rebuild the kept list in batch order after */
	if (ncand && s->nsegs && (rc = dedup_segments(s, batch->ev, cand, ncand, work, dup, err))) {
		if (rc == TW_OK)
			rc = TW_ECORRUPT;
		goto out;
	}
	for (i = 0; i < batch->n; i++)
		if (!dup[i])
			cand[nkeep++] = (uint32_t)i;
	out.duplicates = batch->n - nkeep;
	if (nkeep) {
		struct gen *g = &s->act;
		size_t off = g->bytes.n;
		uint64_t seq = 0;

		/* the payload goes straight into the in-memory copy of the WAL (reserved once) */
		if (!g->bytes.cap && (rc = tw_buf_reserve(&g->bytes, (size_t)(s->o.seal_bytes < (1ull << 30) ?
									     s->o.seal_bytes : (1ull << 30)) + (1u << 20), err)))
			goto out;
		if ((rc = tw_evcodec_encode_batch_sel(&g->bytes, batch->ev, cand, nkeep, err)))
			goto out;
		if ((rc = tw_wal_append(s->wal, g->bytes.p + off, g->bytes.n - off, &seq, err))) {
			g->bytes.n = off;
			if (rc != TW_ELIMIT)
				stop(s, rc, err);
			goto out;
		}
		/* memory only from here; on ENOMEM a later duplicate could slip in, so stop */
		if ((rc = gen_push(g, seq, err))) {
			stop(s, rc, err);
			goto out;
		}
		if (g->n == 1)
			s->oldest_ms = now_ms(s);
		for (i = 0; i < nkeep; i++) {
			const struct akey *k = &ak[cand[i]];

			if ((rc = kset_add(&g->keys, local.keys.p + k->off, k->len, k->h, err))) {
				stop(s, rc, err);
				goto out;
			}
		}
		out.stored = nkeep;
	}
	if (dup_out && batch->n)
		memcpy(dup_out, dup, batch->n);
	if (res)
		*res = out;
	rc = maybe_seal(s, err);
out:
	free(ak);
	free(cand);
	free(work);
	free(dup);
	kset_free(&local);
	return rc;
}

/* Reads the WAL frames after sealed_seq into batch; *last = the last frame's seq (0 if none). */
static enum tw_rc read_unsealed(const char *walpath, uint64_t sealed, struct tw_batch *batch, uint64_t *last,
				struct tw_err *err)
{
	struct tw_wal_reader *r = NULL;
	const void *payload;
	uint64_t seq;
	size_t n;
	enum tw_rc rc;

	*last = 0;
	if ((rc = tw_wal_reader_open(walpath, &r, err)))
		return rc;
	while ((rc = tw_wal_reader_next(r, &seq, &payload, &n, err)) == TW_OK) {
		if (seq <= sealed)
			continue;
		if ((rc = tw_evcodec_decode_batch(payload, n, 0, batch, err))) {
			tw_err_prefix(err, "%s: frame seq %" PRIu64, walpath, seq);
			break;
		}
		*last = seq;
	}
	if (rc == TW_ENOENT) {
		tw_err_clear(err);
		rc = TW_OK;
	}
	tw_wal_reader_close(r);
	return rc;
}

/* A copy of s->man with the live list replaced: drop[] removed (may be NULL), add appended. */
static enum tw_rc man_derive(const struct manifest *from, const uint64_t *drop, size_t ndrop, uint64_t add,
			     struct manifest *to, struct tw_err *err)
{
	size_t i, j;

	*to = *from;
	to->segs = calloc(from->n + 1, sizeof *to->segs);
	if (!to->segs)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	to->n = 0;
	for (i = 0; i < from->n; i++) {
		int gone = 0;

		for (j = 0; j < ndrop; j++)
			if (drop[j] == from->segs[i])
				gone = 1;
		if (!gone)
			to->segs[to->n++] = from->segs[i];
	}
	if (add) {
		/* keep ascending: add is always the largest number so far */
		to->segs[to->n++] = add;
		to->next_seg = add + 1;
	}
	return TW_OK;
}

/* Re-syncs s->segs with s->man: closes dropped segments, opens new ones. */
static enum tw_rc sync_segs(struct tw_store *s, struct tw_err *err)
{
	struct livseg *nl = calloc(s->man.n ? s->man.n : 1, sizeof *nl);
	enum tw_rc rc = TW_OK;
	size_t i, j;

	if (!nl)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (i = 0; i < s->man.n; i++) {
		nl[i].num = s->man.segs[i];
		for (j = 0; j < s->nsegs; j++)
			if (s->segs[j].seg && s->segs[j].num == nl[i].num) {
				nl[i] = s->segs[j];
				memset(&s->segs[j], 0, sizeof s->segs[j]);
			}
		if (!nl[i].seg && !rc)
			rc = seg_open_num(s->segdir, nl[i].num, &nl[i].seg, err);
	}
	for (j = 0; j < s->nsegs; j++)
		livseg_clear(&s->segs[j]);
	free(s->segs);
	s->segs = nl;
	s->nsegs = s->man.n;
	if (rc) { /* keep only the open ones usable: a NULL seg would crash lookups */
		size_t k = 0;

		for (i = 0; i < s->nsegs; i++)
			if (s->segs[i].seg)
				s->segs[k++] = s->segs[i];
		s->nsegs = k;
	}
	return rc;
}

static enum tw_rc unlink_seg(struct tw_store *s, uint64_t num, struct tw_err *err)
{
	char name[32], *p;

	seg_name(name, sizeof name, num);
	if (!(p = path_join(s->segdir, name)))
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	if (unlink(p) != 0 && errno != ENOENT) {
		enum tw_rc rc = tw_err_set(err, TW_EIO, "%s: unlink: %s", p, strerror(errno));

		free(p);
		return rc;
	}
	free(p);
	return TW_OK;
}

/* ---- sealing (invariant 3) ---------------------------------------------------------------- */

/* Reads the LEB128 count that starts a batch payload; 0 when it does not parse (the decode then
 * reports the damage). */
static uint64_t payload_count(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n && i < 10; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80))
			return v;
	}
	return 0;
}

/* Ranks of one string field: events with equal values get equal ranks, and rank order is
 * tw_seg_order's byte order, so sorting compares small integers instead of long ARNs that share
 * their first 20 bytes. One hash probe per event, then a sort of the distinct values only. */
struct rank_slot {
	uint64_t h;    /* hash of the value; 0 = empty */
	uint32_t rep;  /* an event holding the value */
	uint32_t id;   /* distinct value number */
};

static int str_order(struct tw_str a, struct tw_str b)
{
	size_t m = a.n < b.n ? a.n : b.n;
	int c = m ? memcmp(a.p, b.p, m) : 0;

	if (c)
		return c < 0 ? -1 : 1;
	return a.n < b.n ? -1 : a.n > b.n;
}

/* Context of the qsort_r calls below. */
struct rank_ctx {
	const struct tw_event *ev; /* the events */
	int f;                     /* the field (enum tw_field) */
};

static int rep_cmp(const void *a, const void *b, void *vctx)
{
	const struct rank_ctx *c = vctx;

	return str_order(c->ev[*(const uint32_t *)a].f[c->f], c->ev[*(const uint32_t *)b].f[c->f]);
}

static enum tw_rc rank_field(const struct tw_event *ev, size_t n, int f, uint32_t *rank, struct tw_err *err)
{
	struct rank_ctx ctx = { ev, f };
	size_t cap = 1024, i, j, d = 0;
	struct rank_slot *t;
	uint32_t *reps, *pos;

	while (cap < n * 2)
		cap *= 2;
	t = calloc(cap, sizeof *t);
	reps = malloc((n ? n : 1) * sizeof *reps);
	pos = malloc((n ? n : 1) * sizeof *pos);
	if (!t || !reps || !pos) {
		free(t);
		free(reps);
		free(pos);
		return tw_err_set(err, TW_ENOMEM, "out of memory sorting %zu records", n);
	}
	for (i = 0; i < n; i++) {
		struct tw_str v = ev[i].f[f];
		uint64_t h = hash64(v.p, v.n, 0x2545f4914f6cdd1dull);

		h = h ? h : 1;
		for (j = h & (cap - 1); t[j].h; j = (j + 1) & (cap - 1))
			if (t[j].h == h && str_order(ev[t[j].rep].f[f], v) == 0)
				break;
		if (!t[j].h) {
			t[j].h = h;
			t[j].rep = (uint32_t)i;
			t[j].id = (uint32_t)d;
			reps[d++] = (uint32_t)i;
		}
		rank[i] = t[j].id; /* the distinct number for now */
	}
	/* sort the distinct values; pos[id] = its rank */
	{
		uint32_t *order = malloc((d ? d : 1) * sizeof *order);

		if (!order) {
			free(t);
			free(reps);
			free(pos);
			return tw_err_set(err, TW_ENOMEM, "out of memory sorting %zu records", n);
		}
		for (i = 0; i < d; i++)
			order[i] = reps[i];
		qsort_r(order, d, sizeof *order, rep_cmp, &ctx);
		/* order[k] is an event whose value has rank k; its distinct number is rank[order[k]] */
		for (i = 0; i < d; i++)
			pos[rank[order[i]]] = (uint32_t)i;
		free(order);
	}
	for (i = 0; i < n; i++)
		rank[i] = pos[rank[i]];
	free(t);
	free(reps);
	free(pos);
	return TW_OK;
}

/* One record's sort key: tw_seg_order with the three strings replaced by their ranks. */
struct skey {
	uint64_t k1; /* principal rank << 32 | event source rank */
	int64_t t;   /* time_ms */
	uint32_t k2; /* event name rank */
	uint32_t i;  /* the event */
};

static int skey_cmp(const void *pa, const void *pb, void *vev)
{
	const struct skey *a = pa, *b = pb;
	const struct tw_event *ev = vev;

	if (a->k1 != b->k1)
		return a->k1 < b->k1 ? -1 : 1;
	if (a->k2 != b->k2)
		return a->k2 < b->k2 ? -1 : 1;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return str_order(ev[a->i].f[TW_F_EVENT_ID], ev[b->i].f[TW_F_EVENT_ID]);
}

/* Writes the records of g (decoded zero copy) as segment path, in tw_seg_order. *made = 0 when g
 * holds no record. Touches nothing but g (read only), path and its own memory: safe on the sealer
 * thread while the writer appends. */
static enum tw_rc seal_build(const struct gen *g, const char *path, const struct tw_seg_opts *so, int *made,
			     struct tw_err *err)
{
	struct tw_batch batch;
	struct tw_segw *w = NULL;
	struct skey *keys = NULL;
	uint32_t *rp = NULL, *rs = NULL, *rn = NULL;
	uint64_t total = 0;
	enum tw_rc rc = TW_OK;
	size_t i;

	*made = 0;
	tw_batch_init(&batch);
	for (i = 0; i < g->n; i++) {
		uint64_t start = i ? g->ends[i - 1] : 0;

		total += payload_count((const unsigned char *)g->bytes.p + start, g->ends[i] - start);
	}
	if (total > UINT32_MAX)
		return tw_err_set(err, TW_ELIMIT, "seal of %" PRIu64 " records: over 2^32", total);
	if (total && !(batch.ev = malloc(total * sizeof *batch.ev))) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory sealing %" PRIu64 " records", total);
		goto out;
	}
	batch.cap = total;
	for (i = 0; i < g->n; i++) {
		uint64_t start = i ? g->ends[i - 1] : 0;

		if ((rc = tw_evcodec_decode_batch(g->bytes.p + start, g->ends[i] - start, TW_EVCODEC_BORROW, &batch,
						  err))) {
			tw_err_prefix(err, "sealing frame %zu", i);
			goto out;
		}
	}
	if (!batch.n)
		goto out;
	keys = malloc(batch.n * sizeof *keys);
	rp = malloc(batch.n * sizeof *rp);
	rs = malloc(batch.n * sizeof *rs);
	rn = malloc(batch.n * sizeof *rn);
	if (!keys || !rp || !rs || !rn) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory sealing %zu records", batch.n);
		goto out;
	}
	if ((rc = rank_field(batch.ev, batch.n, TW_F_PRINCIPAL, rp, err)) ||
	    (rc = rank_field(batch.ev, batch.n, TW_F_EVENT_SOURCE, rs, err)) ||
	    (rc = rank_field(batch.ev, batch.n, TW_F_EVENT_NAME, rn, err)))
		goto out;
	for (i = 0; i < batch.n; i++) {
		keys[i].k1 = (uint64_t)rp[i] << 32 | rs[i];
		keys[i].k2 = rn[i];
		keys[i].t = batch.ev[i].time_ms;
		keys[i].i = (uint32_t)i;
	}
	free(rp);
	free(rs);
	free(rn);
	rp = rs = rn = NULL;
	qsort_r(keys, batch.n, sizeof *keys, skey_cmp, batch.ev);
	if ((rc = tw_segw_open(path, so, &w, err)))
		goto out;
	for (i = 0; i < batch.n; i++)
		if ((rc = tw_segw_add(w, &batch.ev[keys[i].i], err)))
			goto out;
	rc = tw_segw_finish(w, NULL, err);
	w = NULL;
	if (!rc)
		*made = 1;
out:
	tw_segw_abort(w);
	free(keys);
	free(rp);
	free(rs);
	free(rn);
	tw_batch_free(&batch);
	return rc;
}

static void *seal_thread(void *arg)
{
	struct sealjob *j = arg;

	tw_err_clear(&j->err);
	j->rc = seal_build(j->g, j->path, j->so, &j->made, &j->err);
	atomic_store(&j->done, 1);
	return NULL;
}

/* Moves wal to wal.sealing and starts a fresh wal whose seqs continue; act becomes frz. */
static enum tw_rc rotate(struct tw_store *s, struct tw_err *err)
{
	struct tw_wal_opts wo;
	struct gen tmp;
	uint64_t next = tw_wal_next_seq(s->wal);
	enum tw_rc rc;
	int e;

	if (rename(s->walpath, s->sealpath) != 0)
		return stop(s, tw_err_set(err, TW_EIO, "rename %s -> %s: %s", s->walpath, s->sealpath,
					  strerror(errno)), err);
	if ((e = fsync_dir(s->dir)) != 0)
		return stop(s, tw_err_set(err, TW_EIO, "%s: fsync: %s", s->dir, strerror(e)), err);
	tmp = s->frz;
	s->frz = s->act;
	s->act = tmp;
	gen_clear(&s->act);
	s->has_frz = 1;
	s->oldest_ms = 0;
	tw_wal_close(s->wal);
	s->wal = NULL;
	if (crash_here(s, TW_STORE_CRASH_ROTATE_RENAMED, err))
		return TW_EIO;
	memset(&wo, 0, sizeof wo);
	wo.first_seq = next;
	if (s->o.io)
		wo.io = *s->o.io;
	if ((rc = tw_wal_open(s->walpath, &wo, &s->wal, NULL, err)))
		return stop(s, rc, err);
	if (crash_here(s, TW_STORE_CRASH_ROTATE_DONE, err))
		return TW_EIO;
	return TW_OK;
}

/* After the build of s->frz: the MANIFEST takes the segment and sealed-seq, then wal.sealing goes. */
static enum tw_rc seal_commit(struct tw_store *s, struct sealjob *j, struct tw_err *err)
{
	struct manifest nm = { 0 };
	enum tw_rc rc;
	int e;

	if (j->rc) {
		if (err)
			*err = j->err;
		return stop(s, j->rc, err);
	}
	if (crash_here(s, TW_STORE_CRASH_SEAL_SEGMENT, err))
		return TW_EIO;
	if ((rc = man_derive(&s->man, NULL, 0, j->made ? j->num : 0, &nm, err)))
		return stop(s, rc, err);
	nm.sealed_seq = s->frz.last_seq;
	if ((rc = man_write(s, &nm, err))) {
		man_free(&nm);
		return stop(s, rc, err);
	}
	if (crash_here(s, TW_STORE_CRASH_SEAL_MANIFEST, err))
		return TW_EIO;
	if ((rc = sync_segs(s, err)))
		return stop(s, rc, err);
	if (unlink(s->sealpath) != 0 && errno != ENOENT)
		return stop(s, tw_err_set(err, TW_EIO, "%s: unlink: %s", s->sealpath, strerror(errno)), err);
	if ((e = fsync_dir(s->dir)) != 0)
		return stop(s, tw_err_set(err, TW_EIO, "%s: fsync: %s", s->dir, strerror(e)), err);
	gen_clear(&s->frz);
	s->has_frz = 0;
	return TW_OK;
}

static void job_prepare(struct tw_store *s, struct sealjob *j, char *path)
{
	free(j->path);
	memset(j, 0, sizeof *j);
	j->num = s->man.next_seg;
	j->path = path;
	j->g = &s->frz;
	j->so = &s->o.seg;
}

static char *job_path(struct tw_store *s, struct tw_err *err)
{
	char name[32], *p;

	seg_name(name, sizeof name, s->man.next_seg);
	if (!(p = path_join(s->segdir, name)))
		tw_err_set(err, TW_ENOMEM, "out of memory");
	return p;
}

/* Seals s->frz on the calling thread. */
static enum tw_rc seal_frozen_inline(struct tw_store *s, struct tw_err *err)
{
	struct sealjob j;
	char *path = job_path(s, err);
	enum tw_rc rc;

	if (!path)
		return stop(s, TW_ENOMEM, err);
	memset(&j, 0, sizeof j);
	job_prepare(s, &j, path);
	tw_err_clear(&j.err);
	j.rc = seal_build(j.g, j.path, j.so, &j.made, &j.err);
	rc = seal_commit(s, &j, err);
	free(j.path);
	return rc;
}

/* Waits for the seal in flight and commits it. */
static enum tw_rc seal_wait(struct tw_store *s, struct tw_err *err)
{
	struct sealjob *j = &s->job;
	enum tw_rc rc = TW_OK;

	if (!j->running)
		return TW_OK;
	pthread_join(j->th, NULL);
	j->running = 0;
	if (!s->stopped)
		rc = seal_commit(s, j, err);
	else
		rc = check_stopped(s, err);
	free(j->path);
	j->path = NULL;
	return rc;
}

static enum tw_rc seal_reap_if_done(struct tw_store *s, struct tw_err *err)
{
	return s->job.running && atomic_load(&s->job.done) ? seal_wait(s, err) : TW_OK;
}

/* Starts a background seal: waits for the one in flight (backpressure: at most one), then
 * rotates the WAL unless a frozen one is still pending, and hands wal.sealing to the thread. */
static enum tw_rc seal_start(struct tw_store *s, struct tw_err *err)
{
	enum tw_rc rc;
	char *path;
	int e;

	if ((rc = seal_wait(s, err)) || (rc = check_stopped(s, err)))
		return rc;
	if (!s->has_frz) {
		if (!s->act.n) { /* only sealed leftovers in the WAL */
			if (tw_wal_size(s->wal) > TW_WAL_HEADER_SIZE && (rc = tw_wal_reset(s->wal, err)))
				return stop(s, rc, err);
			return TW_OK;
		}
		if ((rc = rotate(s, err)))
			return rc;
	}
	if (!(path = job_path(s, err)))
		return stop(s, TW_ENOMEM, err);
	job_prepare(s, &s->job, path);
	if ((e = pthread_create(&s->job.th, NULL, seal_thread, &s->job)) != 0) {
		free(s->job.path);
		s->job.path = NULL;
		return seal_frozen_inline(s, err); /* no thread: seal here */
	}
	s->job.running = 1;
	return TW_OK;
}

enum tw_rc tw_store_seal(struct tw_store *s, struct tw_err *err)
{
	enum tw_rc rc;

	if ((rc = check_stopped(s, err)) || (rc = seal_wait(s, err)))
		return rc;
	if (s->has_frz && (rc = seal_frozen_inline(s, err)))
		return rc;
	if (!s->act.n) { /* nothing after sealed_seq: drop sealed leftovers, if any */
		if (tw_wal_size(s->wal) > TW_WAL_HEADER_SIZE && (rc = tw_wal_reset(s->wal, err)))
			return stop(s, rc, err);
		s->oldest_ms = 0;
		return TW_OK;
	}
	if ((rc = rotate(s, err)))
		return rc;
	return seal_frozen_inline(s, err);
}

/* ---- compaction --------------------------------------------------------------------------- */

/* Memory of a compaction, bounded whatever the store size: a pass merges at most MERGE_FANIN
 * inputs, each holding one decompressed block (fields + raw, ~2.5 MB at 1 MiB blocks); more small
 * segments take more passes, an output becoming an input of a later pass. Each input is the
 * merge's own handle on the file, closed and reopened every MERGE_REOPEN_BLOCKS blocks, so the
 * mapped pages already read leave the resident set (a long merge reads every byte of up to
 * max_bytes of inputs). 1M CloudTrail records in 327 segments: peak RSS 910 MB (all inputs at once)
 * -> 162 MB (passes of 16), for 1.7x the time (records go through about three merges, not one). */
#define MERGE_FANIN 16
#define MERGE_REOPEN_BLOCKS 4

/* One input of the k-way merge. */
struct mcur {
	struct tw_seg *seg;         /* the input: the merge's own handle (not s->segs') */
	uint64_t num;               /* its segment number (to reopen it) */
	uint32_t next;              /* next record to fetch */
	uint32_t n;                 /* records in seg */
	uint32_t blk;               /* block of the last record fetched; UINT32_MAX before the first */
	uint32_t blocks;            /* blocks entered since seg was (re)opened */
	struct tw_seg_blockbuf bb;  /* its block cache (ev's strings point here) */
	struct tw_arena a;          /* ev's resources */
	struct tw_event ev;         /* the current record */
	int has;                    /* 1 while ev is valid */
};

/* Fetches the next record of c. The previous one is consumed (written out) by then, so entering a
 * new block is when the handle may be reopened to drop the pages read so far. */
static enum tw_rc mcur_next(struct mcur *c, const char *segdir, struct tw_err *err)
{
	enum tw_rc rc;
	uint32_t b;

	if (c->next >= c->n) {
		c->has = 0;
		return TW_OK;
	}
	b = tw_seg_block_of(c->seg, c->next);
	if (b != c->blk) {
		c->blk = b;
		if (++c->blocks > MERGE_REOPEN_BLOCKS) {
			tw_seg_close(c->seg);
			c->seg = NULL;
			c->bb.seg = NULL; /* the cached block belonged to the closed handle */
			c->bb.frames = 0;
			if ((rc = seg_open_num(segdir, c->num, &c->seg, err)))
				return rc;
			if (tw_seg_get_info(c->seg)->records != c->n)
				return tw_err_set(err, TW_ECORRUPT, "%s: record count changed during compaction",
						  tw_seg_path(c->seg));
			c->blocks = 1;
		}
	}
	tw_arena_reset(&c->a);
	if ((rc = tw_seg_get(c->seg, c->next, &c->bb, &c->ev, &c->a, err)))
		return rc;
	c->next++;
	c->has = 1;
	return TW_OK;
}

/* Merges s->segs[idx[0..k)] into segment number num. */
static enum tw_rc merge_group(struct tw_store *s, const size_t *idx, size_t k, uint64_t num, struct tw_err *err)
{
	struct mcur *c = calloc(k, sizeof *c);
	struct tw_segw *w = NULL;
	char name[32], *path = NULL;
	enum tw_rc rc = TW_OK;
	size_t i;

	if (!c)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (i = 0; i < k; i++) {
		c[i].num = s->segs[idx[i]].num;
		c[i].n = (uint32_t)tw_seg_get_info(s->segs[idx[i]].seg)->records;
		c[i].blk = UINT32_MAX;
		tw_seg_blockbuf_init(&c[i].bb);
		tw_arena_init(&c[i].a, 4096, 0);
	}
	if (k > tw_store_test_merge_peak)
		tw_store_test_merge_peak = k;
	for (i = 0; i < k; i++)
		if ((rc = seg_open_num(s->segdir, c[i].num, &c[i].seg, err)))
			goto out;
	seg_name(name, sizeof name, num);
	if (!(path = path_join(s->segdir, name))) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = tw_segw_open(path, &s->o.seg, &w, err)))
		goto out;
	for (i = 0; i < k; i++)
		if ((rc = mcur_next(&c[i], s->segdir, err)))
			goto out;
	for (;;) {
		struct mcur *best = NULL;

		for (i = 0; i < k; i++)
			if (c[i].has && (!best || tw_seg_order(&c[i].ev, &best->ev) < 0))
				best = &c[i];
		if (!best)
			break;
		if ((rc = tw_segw_add(w, &best->ev, err)) || (rc = mcur_next(best, s->segdir, err)))
			goto out;
	}
	rc = tw_segw_finish(w, NULL, err);
	w = NULL;
out:
	tw_segw_abort(w);
	for (i = 0; i < k; i++) {
		tw_seg_blockbuf_free(&c[i].bb);
		tw_arena_free(&c[i].a);
		tw_seg_close(c[i].seg);
	}
	free(c);
	free(path);
	return rc;
}

enum tw_rc tw_store_compact(struct tw_store *s, uint64_t max_bytes, uint64_t *merged, struct tw_err *err)
{
	uint64_t done = 0, first;
	size_t *idx = NULL, fanin;
	uint64_t *drop = NULL;
	enum tw_rc rc;

	if ((rc = check_stopped(s, err)) || (rc = seal_wait(s, err)))
		return rc;
	if (!max_bytes)
		max_bytes = 512ull << 20;
	fanin = tw_store_test_merge_fanin >= 2 ? tw_store_test_merge_fanin : MERGE_FANIN;
	first = s->man.next_seg; /* this call's outputs are numbered from here */
	for (;;) {
		struct manifest nm = { 0 };
		uint64_t sum = 0, num;
		size_t i, k = 0;

		free(idx);
		free(drop);
		idx = calloc(s->nsegs + 1, sizeof *idx);
		drop = calloc(s->nsegs + 1, sizeof *drop);
		if (!idx || !drop) {
			rc = tw_err_set(err, TW_ENOMEM, "out of memory");
			break;
		}
		/* the oldest small segments first, while they fit in max_bytes together */
		for (i = 0; i < s->nsegs; i++) {
			uint64_t b = tw_seg_get_info(s->segs[i].seg)->bytes_total;

			if (b >= max_bytes / 4)
				continue;
			if (k >= 2 && sum + b > max_bytes)
				break;
			if (k >= fanin)
				break;
			idx[k] = i;
			drop[k] = s->segs[i].num;
			k++;
			sum += b;
		}
		if (k < 2) {
			rc = TW_OK;
			break;
		}
		num = s->man.next_seg;
		if ((rc = merge_group(s, idx, k, num, err)))
			goto fail;
		if (crash_here(s, TW_STORE_CRASH_COMPACT_SEGMENT, err)) {
			rc = TW_EIO;
			break;
		}
		if ((rc = man_derive(&s->man, drop, k, num, &nm, err)))
			goto fail;
		if ((rc = man_write(s, &nm, err))) {
			man_free(&nm);
			goto fail;
		}
		man_free(&nm);
		if (crash_here(s, TW_STORE_CRASH_COMPACT_MANIFEST, err)) {
			rc = TW_EIO;
			break;
		}
		if ((rc = sync_segs(s, err)))
			goto fail;
		for (i = 0; i < k; i++) {
			if ((rc = unlink_seg(s, drop[i], err)))
				goto fail;
			done += drop[i] < first; /* count each segment of the store once, not the passes' */
		}
	}
	goto out;
fail:
	stop(s, rc, err);
out:
	free(idx);
	free(drop);
	if (merged)
		*merged = done;
	return rc;
}

enum tw_rc tw_store_retain(struct tw_store *s, int64_t cutoff_ms, uint64_t *removed, struct tw_err *err)
{
	struct manifest nm = { 0 };
	uint64_t *drop = NULL;
	size_t i, k = 0;
	enum tw_rc rc;

	if (removed)
		*removed = 0;
	if ((rc = check_stopped(s, err)) || (rc = seal_wait(s, err)))
		return rc;
	if (!(drop = calloc(s->nsegs + 1, sizeof *drop)))
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (i = 0; i < s->nsegs; i++) {
		const struct tw_seg_info *info = tw_seg_get_info(s->segs[i].seg);

		/* an empty segment (tmin > tmax) holds nothing to keep */
		if (info->tmax < cutoff_ms || info->tmin > info->tmax)
			drop[k++] = s->segs[i].num;
	}
	if (!k)
		goto out;
	if ((rc = man_derive(&s->man, drop, k, 0, &nm, err)) || (rc = man_write(s, &nm, err)))
		goto fail;
	if (crash_here(s, TW_STORE_CRASH_RETAIN_MANIFEST, err)) {
		rc = TW_EIO;
		goto out;
	}
	if ((rc = sync_segs(s, err)))
		goto fail;
	for (i = 0; i < k; i++)
		if ((rc = unlink_seg(s, drop[i], err)))
			goto fail;
	if (removed)
		*removed = k;
	goto out;
fail:
	stop(s, rc, err);
out:
	man_free(&nm);
	free(drop);
	return rc;
}

/* ---- readers ------------------------------------------------------------------------------ */

struct tw_snap {
	struct tw_seg **segs; /* the MANIFEST's segments, open */
	size_t n;             /* entries in segs */
	struct tw_batch tail; /* the WAL frames after sealed-seq, decoded (owns its bytes) */
	int partial;          /* tw_snap_open_partial: leave out segments that cannot be opened */
	char **prob;          /* partial: why each left-out segment was left out (owned) */
	size_t nprob;         /* entries in prob */
};

/* Records a left-out segment's problem (err's message) in a partial snapshot; err is cleared. */
static enum tw_rc snap_problem(struct tw_snap *snap, struct tw_err *err)
{
	char **p = realloc(snap->prob, (snap->nprob + 1) * sizeof *p);

	if (!p)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	snap->prob = p;
	if (!(p[snap->nprob] = strdup(err->msg)))
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	snap->nprob++;
	tw_err_clear(err);
	return TW_OK;
}

void tw_snap_close(struct tw_snap *snap)
{
	size_t i;

	if (!snap)
		return;
	for (i = 0; i < snap->n; i++)
		tw_seg_close(snap->segs[i]);
	free(snap->segs);
	for (i = 0; i < snap->nprob; i++)
		free(snap->prob[i]);
	free(snap->prob);
	tw_batch_free(&snap->tail);
	free(snap);
}

/* Which files are at wal and wal.sealing (device, inode; zeros when missing). */
struct wal_ids {
	uint64_t v[4]; /* wal dev, ino, wal.sealing dev, ino */
};

static void wal_ids_get(const char *walpath, const char *sealpath, struct wal_ids *id)
{
	struct stat sb;

	memset(id, 0, sizeof *id);
	if (stat(walpath, &sb) == 0) {
		id->v[0] = (uint64_t)sb.st_dev;
		id->v[1] = (uint64_t)sb.st_ino;
	}
	if (stat(sealpath, &sb) == 0) {
		id->v[2] = (uint64_t)sb.st_dev;
		id->v[3] = (uint64_t)sb.st_ino;
	}
}

/* One attempt; *retry set when the directory moved underneath (invariant 8). */
static enum tw_rc snap_try(const char *dir, struct tw_snap *snap, int *retry, struct tw_err *err)
{
	char *manpath = path_join(dir, "MANIFEST"), *segdir = path_join(dir, "seg");
	char *walpath = path_join(dir, "wal"), *sealpath = path_join(dir, "wal.sealing");
	struct manifest m = { 0 };
	struct tw_buf raw1, raw2;
	uint64_t last, after;
	struct wal_ids id1, id2;
	enum tw_rc rc;
	size_t i;

	*retry = 0;
	tw_buf_init(&raw1, MANIFEST_MAX);
	tw_buf_init(&raw2, MANIFEST_MAX);
	if (!manpath || !segdir || !walpath || !sealpath) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = man_read(manpath, &m, &raw1, err)))
		goto out;
	wal_ids_get(walpath, sealpath, &id1);
	if (!(snap->segs = calloc(m.n ? m.n : 1, sizeof *snap->segs))) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < m.n; i++) {
		rc = seg_open_num(segdir, m.segs[i], &snap->segs[snap->n], err);
		if (rc == TW_ENOENT) { /* compacted or retained after we read the MANIFEST? */
			struct tw_err e2;

			if (man_load(manpath, &raw2, &e2) == TW_OK && raw1.n == raw2.n &&
			    memcmp(raw1.p, raw2.p, raw1.n) == 0) {
				rc = tw_err_set(err, TW_ECORRUPT, "%s lists segment %08" PRIu64
						".tws, which is missing", manpath, m.segs[i]);
				if (snap->partial && (rc = snap_problem(snap, err)) == TW_OK)
					continue;
				goto out;
			}
			tw_err_clear(err);
			rc = TW_OK;
			*retry = 1;
			goto out;
		}
		/* a damaged or unreadable segment: a partial snapshot goes on without it */
		if (rc && rc != TW_ENOMEM && snap->partial && (rc = snap_problem(snap, err)) == TW_OK)
			continue;
		if (rc)
			goto out;
		snap->n++;
	}
	/* the frozen WAL (if a seal is under way), then the WAL; their seqs follow each other */
	after = m.sealed_seq;
	rc = read_unsealed(sealpath, after, &snap->tail, &last, err);
	if (rc == TW_ENOENT) {
		tw_err_clear(err);
		rc = TW_OK;
	}
	if (rc)
		goto out;
	if (last > after)
		after = last;
	rc = read_unsealed(walpath, after, &snap->tail, &last, err);
	if (rc == TW_ENOENT) { /* no WAL yet: a store that was never written */
		tw_err_clear(err);
		rc = TW_OK;
	}
	if (rc)
		goto out;
	/* a rotation (wal -> wal.sealing, new wal) while we read: start over */
	wal_ids_get(walpath, sealpath, &id2);
	if (memcmp(&id1, &id2, sizeof id1) != 0)
		*retry = 1;
	if ((rc = man_load(manpath, &raw2, err)) == TW_ENOENT) {
		tw_err_clear(err);
		rc = TW_OK;
		tw_buf_reset(&raw2);
	}
	if (rc)
		goto out;
	if (raw1.n != raw2.n || (raw1.n && memcmp(raw1.p, raw2.p, raw1.n) != 0))
		*retry = 1;
out:
	man_free(&m);
	tw_buf_free(&raw1);
	tw_buf_free(&raw2);
	free(manpath);
	free(segdir);
	free(walpath);
	free(sealpath);
	return rc;
}

static enum tw_rc snap_open(const char *dir, int partial, struct tw_snap **out, struct tw_err *err);

enum tw_rc tw_snap_open(const char *dir, struct tw_snap **out, struct tw_err *err)
{
	return snap_open(dir, 0, out, err);
}

enum tw_rc tw_snap_open_partial(const char *dir, struct tw_snap **out, struct tw_err *err)
{
	return snap_open(dir, 1, out, err);
}

size_t tw_snap_nproblems(const struct tw_snap *snap)
{
	return snap->nprob;
}

const char *tw_snap_problem(const struct tw_snap *snap, size_t i)
{
	return i < snap->nprob ? snap->prob[i] : NULL;
}

static enum tw_rc snap_open(const char *dir, int partial, struct tw_snap **out, struct tw_err *err)
{
	struct stat sb;
	int tries;

	if (stat(dir, &sb) != 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "store %s: %s", dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return tw_err_set(err, TW_EINVAL, "store %s: not a directory", dir);
	for (tries = 0; tries < SNAP_TRIES; tries++) {
		struct tw_snap *snap = calloc(1, sizeof *snap);
		enum tw_rc rc;
		int retry;

		if (!snap)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		tw_batch_init(&snap->tail);
		snap->partial = partial;
		rc = snap_try(dir, snap, &retry, err);
		if (rc == TW_OK && !retry) {
			*out = snap;
			return TW_OK;
		}
		tw_snap_close(snap);
		if (!retry)
			return rc;
		tw_err_clear(err);
	}
	return tw_err_set(err, TW_EBUSY, "%s: the MANIFEST kept changing during %d attempts to open a snapshot",
			  dir, SNAP_TRIES);
}

size_t tw_snap_nsegs(const struct tw_snap *snap)
{
	return snap->n;
}

struct tw_seg *tw_snap_seg(struct tw_snap *snap, size_t i)
{
	return i < snap->n ? snap->segs[i] : NULL;
}

const struct tw_batch *tw_snap_tail(const struct tw_snap *snap)
{
	return &snap->tail;
}

/* Sum of the sizes of the regular files in dir (not recursive). */
static uint64_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat sb;

		if (fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode))
			sum += (uint64_t)sb.st_size;
	}
	closedir(d);
	return sum;
}

enum tw_rc tw_store_stat(const char *dir, struct tw_store_stats *st, struct tw_err *err)
{
	struct tw_store_stats r;
	struct tw_snap *snap;
	struct stat sb;
	enum tw_rc rc;
	size_t i;
	char *p;

	if ((rc = tw_snap_open(dir, &snap, err)))
		return rc;
	memset(&r, 0, sizeof r);
	r.tmin = INT64_MAX;
	r.tmax = INT64_MIN;
	for (i = 0; i < snap->n; i++) {
		const struct tw_seg_info *info = tw_seg_get_info(snap->segs[i]);

		r.records += info->records;
		r.raw_bytes += info->raw_bytes;
		r.bytes_blocks += info->bytes_blocks;
		r.bytes_postings += info->bytes_postings;
		if (info->records && info->tmin < r.tmin)
			r.tmin = info->tmin;
		if (info->records && info->tmax > r.tmax)
			r.tmax = info->tmax;
	}
	r.segments = snap->n;
	for (i = 0; i < snap->tail.n; i++) {
		const struct tw_event *ev = &snap->tail.ev[i];

		r.raw_bytes += ev->raw.n;
		if (ev->time_ms < r.tmin)
			r.tmin = ev->time_ms;
		if (ev->time_ms > r.tmax)
			r.tmax = ev->time_ms;
	}
	r.wal_records = snap->tail.n;
	r.records += r.wal_records;
	tw_snap_close(snap);
	if ((p = path_join(dir, "wal")) && stat(p, &sb) == 0)
		r.bytes_wal = (uint64_t)sb.st_size;
	free(p);
	if ((p = path_join(dir, "wal.sealing")) && stat(p, &sb) == 0)
		r.bytes_wal += (uint64_t)sb.st_size;
	free(p);
	r.bytes_total = dir_bytes(dir);
	if ((p = path_join(dir, "seg")))
		r.bytes_total += dir_bytes(p);
	free(p);
	*st = r;
	return TW_OK;
}

/* Counts and forwards problems. */
struct vctx {
	void (*report)(void *ctx, const char *problem); /* the caller's, or NULL */
	void *ctx;          /* for report */
	uint64_t problems;  /* reported so far */
};

static void vreport(void *ctx, const char *problem)
{
	struct vctx *v = ctx;

	v->problems++;
	if (v->report)
		v->report(v->ctx, problem);
}

static void vreportf(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vreportf(struct vctx *v, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	vreport(v, line);
}

enum tw_rc tw_store_verify(const char *dir, void (*report)(void *ctx, const char *problem), void *ctx,
			   uint64_t *problems, struct tw_err *err)
{
	char *manpath = path_join(dir, "MANIFEST"), *segdir = path_join(dir, "seg");
	char *walpath = path_join(dir, "wal"), *sealpath = path_join(dir, "wal.sealing");
	struct vctx v = { report, ctx, 0 };
	struct manifest m = { 0 };
	struct tw_wal_reader *r = NULL;
	struct tw_batch tmp;
	struct tw_err e;
	enum tw_rc rc = TW_OK;
	size_t i;

	tw_batch_init(&tmp);
	if (!manpath || !segdir || !walpath || !sealpath) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory");
		goto out;
	}
	tw_err_clear(&e);
	if (man_read(manpath, &m, NULL, &e)) {
		vreportf(&v, "%s", e.msg);
		man_empty(&m);
	}
	for (i = 0; i < m.n; i++) {
		struct tw_seg *seg = NULL;
		uint64_t before = v.problems;

		tw_err_clear(&e);
		if (seg_open_num(segdir, m.segs[i], &seg, &e)) {
			vreportf(&v, "%s", e.msg);
			continue;
		}
		tw_err_clear(&e);
		if (tw_seg_verify(seg, vreport, &v, &e) != TW_OK && v.problems == before)
			vreportf(&v, "%s: %s", tw_seg_path(seg), e.msg);
		tw_seg_close(seg);
	}
	for (i = 0; i < 2; i++) { /* wal.sealing (a seal under way), then wal */
		const char *wp = i ? walpath : sealpath;

		tw_err_clear(&e);
		if (tw_wal_reader_open(wp, &r, &e) == TW_OK) {
			const void *payload;
			uint64_t seq;
			size_t n;

			while ((rc = tw_wal_reader_next(r, &seq, &payload, &n, &e)) == TW_OK) {
				tw_batch_reset(&tmp);
				if (tw_evcodec_decode_batch(payload, n, TW_EVCODEC_BORROW, &tmp, &e))
					vreportf(&v, "%s: frame seq %" PRIu64 ": %s", wp, seq, e.msg);
			}
			if (rc != TW_ENOENT)
				vreportf(&v, "%s", e.msg);
			rc = TW_OK;
			tw_wal_reader_close(r);
			r = NULL;
		} else if (e.rc != TW_ENOENT) {
			vreportf(&v, "%s", e.msg);
		}
	}
	if (v.problems)
		rc = tw_err_set(err, TW_ECORRUPT, "store %s: %" PRIu64 " problem(s) found", dir, v.problems);
out:
	tw_wal_reader_close(r);
	tw_batch_free(&tmp);
	man_free(&m);
	free(manpath);
	free(segdir);
	free(walpath);
	free(sealpath);
	if (problems)
		*problems = v.problems;
	return rc;
}
