/* SPDX-License-Identifier: Apache-2.0 */
/* index/wal.c: the write-ahead log. Appends CRC32C-framed payloads and makes each durable before
 * saying so; on open, cuts a torn tail and keeps everything before it; reads frames back while a
 * writer appends. It never interprets payloads and never writes after a tail it could not write.
 *
 * Byte layout, version 1 (also in index/FORMAT.md). Integers are little-endian.
 *
 *   file header, 32 bytes
 *     0   8  magic       "TWWAL\r\n\x1a" (54 57 57 41 4c 0d 0a 1a)
 *     8   4  version     1
 *    12   4  max_frame   cap on a frame's payload length, 1..2^30, fixed for the file's life
 *    16   8  base_seq    sequence number of the first frame
 *    24   4  flags       0 (reserved; non-zero is TW_EUNSUP)
 *    28   4  hdr_crc     CRC-32C of bytes 0..27
 *   frames, back to back from offset 32 to the end of the file
 *     0   8  seq         base_seq for the first frame, then +1 per frame
 *     8   4  len         payload length, <= max_frame
 *    12   4  data_crc    CRC-32C of the payload
 *    16   4  head_crc    CRC-32C of bytes 0..15 of this frame header
 *    20 len  payload     opaque (a batch, index/evcodec.h)
 *
 *   CRC-32C: Castagnoli polynomial, reflected, init and final xor 0xffffffff ("123456789" ->
 *   0xe3069283); computed by ISA-L's crc32_iscsi.
 *
 * Invariants:
 *  1. Frames are written only at w->end, the end of the last valid frame, and w->end only moves
 *     past a frame once its write and fdatasync succeeded. So at most one frame (the last) can be
 *     torn by a crash, and a TW_OK append is durable.
 *  2. After any write or sync failure the writer is stopped for good (w->stopped): nothing more is
 *     written through this handle, because after a failed fsync the kernel may already have
 *     dropped the dirty pages and a retry could "succeed" over lost data. Only a new open (which
 *     re-reads and re-checks the file) writes again.
 *  3. A frame is valid iff its header CRC, its seq (= previous + 1), its length (<= max_frame and
 *     within the file) and its payload CRC all check. The frame header has its own CRC so a length
 *     is trusted (and memory sized by it) only once it is known to be what was written.
 *  4. Open cuts only a tail: from the first invalid frame to the end of the file, and only when no
 *     intact frame header (CRC good, seq plausible) follows the damage. Damage that intact frames
 *     follow is media corruption, not a crash, and cutting there would silently drop acknowledged
 *     batches: it is refused (TW_ECORRUPT) unless opts.repair.
 *  5. The file always starts with a complete header: it is created, and reset, by writing
 *     path.tmp, syncing it and renaming it over path (then syncing the directory). A crash leaves
 *     the old file or the new one, never a half header. The sequence continues across a reset.
 *  6. Readers never write. They stop (TW_ENOENT) at a frame that is not complete yet, because a
 *     writer may be in the middle of it; a complete frame that fails its checks is TW_ECORRUPT.
 */
#include "index/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char wal_magic[8] = { 'T', 'W', 'W', 'A', 'L', '\r', '\n', 0x1a };
#define WAL_VERSION 1
#define SCAN_CHUNK (64 * 1024) /* read size while checking payloads and searching for frames */

struct tw_wal {
	int fd;               /* the WAL file, flock'ed; -1 when not open */
	char *path;           /* copy of the path given to open */
	char *tmp;            /* path + ".tmp", used to create and reset */
	struct tw_wal_io io;  /* hooks with the real calls filled in */
	uint64_t new_cap;     /* max_frame written into headers this writer creates (opts) */
	uint64_t max_frame;   /* cap of the current file, from its header */
	uint64_t base_seq;    /* seq of the current file's first frame */
	uint64_t next_seq;    /* seq of the next append */
	uint64_t end;         /* header + valid frames: where the next frame goes (invariant 1) */
	int stopped;          /* sticky error state (invariant 2) */
	char stop_msg[200];   /* the first error, repeated by every later append */
};

struct tw_wal_reader {
	int fd;               /* the WAL file, read-only; -1 when not open */
	char *path;           /* copy of the path, for messages */
	uint64_t max_frame;   /* cap from the header */
	uint64_t next_seq;    /* seq the next frame must have */
	uint64_t off;         /* offset of the next frame */
	unsigned char *buf;   /* the last payload returned */
	size_t cap;           /* bytes allocated in buf */
};

/* ---- small helpers ------------------------------------------------------------------------ */

uint32_t tw_wal_crc32c(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;
	crc = ~crc;
	while (n) {
		size_t k = n > (size_t)INT_MAX ? (size_t)1 << 30 : n;
		crc = crc32_iscsi((unsigned char *)b, (int)k, crc);
		b += k;
		n -= k;
	}
	return ~crc;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static ssize_t real_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	(void)ctx;
	return pwrite(fd, p, n, off);
}

static int real_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return fdatasync(fd);
}

/* Writes all of p through the hook, continuing short writes and EINTR. 0, or an errno value. */
static int write_all(const struct tw_wal_io *io, int fd, const void *p, size_t n, uint64_t off)
{
	const char *b = p;
	while (n) {
		ssize_t k = io->pwrite(io->ctx, fd, b, n, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno ? errno : EIO;
		}
		if (k == 0 || (size_t)k > n)
			return EIO; /* no progress, or a nonsensical count: never loop forever */
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int sync_fd(const struct tw_wal_io *io, int fd)
{
	while (io->fdatasync(io->ctx, fd) != 0) {
		if (errno != EINTR)
			return errno ? errno : EIO;
	}
	return 0;
}

/* Reads up to n bytes at off, stopping early only at the end of the file. Bytes read, or -1. */
static ssize_t read_full(int fd, void *p, size_t n, uint64_t off)
{
	char *b = p;
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, b + got, n - got, (off_t)(off + got));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int fd, rc = 0;

	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) < sizeof dir)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		return ENAMETOOLONG;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

static void make_header(unsigned char h[TW_WAL_HEADER_SIZE], uint64_t cap, uint64_t base_seq)
{
	memcpy(h, wal_magic, 8);
	put32(h + 8, WAL_VERSION);
	put32(h + 12, (uint32_t)cap);
	put64(h + 16, base_seq);
	put32(h + 24, 0);
	put32(h + 28, tw_wal_crc32c(0, h, 28));
}

/* Checks a file header; *cap and *base_seq on success. */
static enum tw_rc parse_header(const char *path, const unsigned char *h, size_t got, uint64_t *cap,
			       uint64_t *base_seq, struct tw_err *err)
{
	uint32_t v, crc;

	if (got < TW_WAL_HEADER_SIZE)
		return tw_err_set(err, TW_ECORRUPT, "%s: WAL header truncated (%zu of %d bytes)", path,
				  got, TW_WAL_HEADER_SIZE);
	if (memcmp(h, wal_magic, 8) != 0)
		return tw_err_set(err, TW_ECORRUPT, "%s: not a trailwatch WAL (bad magic)", path);
	v = get32(h + 8);
	if (v != WAL_VERSION)
		return tw_err_set(err, TW_EUNSUP, "%s: WAL version %u, this build reads %d", path, v,
				  WAL_VERSION);
	crc = tw_wal_crc32c(0, h, 28);
	if (crc != get32(h + 28))
		return tw_err_set(err, TW_ECORRUPT, "%s: WAL header crc32c %08x != %08x", path, crc,
				  get32(h + 28));
	if (get32(h + 24) != 0)
		return tw_err_set(err, TW_EUNSUP, "%s: WAL header flags 0x%x not supported", path,
				  get32(h + 24));
	*cap = get32(h + 12);
	if (*cap == 0 || *cap > TW_WAL_MAX_FRAME_LIMIT)
		return tw_err_set(err, TW_ECORRUPT, "%s: WAL header frame cap %llu out of range", path,
				  (unsigned long long)*cap);
	*base_seq = get64(h + 16);
	return TW_OK;
}

/* Creates w->tmp holding just a header, locks and syncs it, renames it over w->path and syncs
 * the directory (invariant 5). *fd_out on success. *renamed tells a caller whether path already
 * names the new file when an error comes back (only the directory sync can fail after that). */
static enum tw_rc create_file(struct tw_wal *w, uint64_t cap, uint64_t base_seq, int *fd_out,
			      int *renamed, struct tw_err *err)
{
	unsigned char h[TW_WAL_HEADER_SIZE];
	int fd, e;

	*renamed = 0;
	if (unlink(w->tmp) != 0 && errno != ENOENT)
		return tw_err_set(err, TW_EIO, "%s: removing a stale file: %s", w->tmp, strerror(errno));
	fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: create: %s", w->tmp,
				  strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		close(fd);
		return tw_err_set(err, e == EWOULDBLOCK ? TW_EBUSY : TW_EIO, "%s: lock: %s", w->tmp,
				  strerror(e));
	}
	make_header(h, cap, base_seq);
	if ((e = write_all(&w->io, fd, h, sizeof h, 0)) != 0 || (e = sync_fd(&w->io, fd)) != 0) {
		close(fd);
		unlink(w->tmp);
		return tw_err_set(err, TW_EIO, "%s: writing the WAL header: %s", w->tmp, strerror(e));
	}
	if (rename(w->tmp, w->path) != 0) {
		e = errno;
		close(fd);
		unlink(w->tmp);
		return tw_err_set(err, TW_EIO, "%s: rename to %s: %s", w->tmp, w->path, strerror(e));
	}
	*renamed = 1;
	*fd_out = fd;
	if ((e = sync_dir(w->path)) != 0)
		return tw_err_set(err, TW_EIO, "%s: syncing its directory: %s", w->path, strerror(e));
	return TW_OK;
}

/* ---- frame checks (shared by open's scan; the reader has its own incremental version) ------ */

enum frame_state {
	FRAME_OK,    /* valid; *len is its payload length */
	FRAME_SHORT, /* runs past the end of the file */
	FRAME_BAD,   /* complete, fails a check */
};

/* Checks the frame at off. why gets the reason for SHORT/BAD; *resume is where a search for
 * intact frames after a BAD one should start. Returns TW_EIO on read errors only. */
static enum tw_rc check_frame(int fd, const char *path, uint64_t off, uint64_t size, uint64_t seq,
			      uint64_t cap, unsigned char *buf, enum frame_state *st, uint64_t *len,
			      uint64_t *resume, char *why, size_t whyn, struct tw_err *err)
{
	unsigned char h[TW_WAL_FRAME_HEADER_SIZE];
	uint32_t crc, want;
	uint64_t left, pos;
	ssize_t got;

	*resume = off + 1;
	if (size - off < TW_WAL_FRAME_HEADER_SIZE) {
		snprintf(why, whyn, "short frame header (%llu of %d bytes)",
			 (unsigned long long)(size - off), TW_WAL_FRAME_HEADER_SIZE);
		*st = FRAME_SHORT;
		return TW_OK;
	}
	got = read_full(fd, h, sizeof h, off);
	if (got != (ssize_t)sizeof h)
		return tw_err_set(err, TW_EIO, "%s: read at offset %llu: %s", path,
				  (unsigned long long)off, got < 0 ? strerror(errno) : "file shrank");
	crc = tw_wal_crc32c(0, h, 16);
	if (crc != get32(h + 16)) {
		snprintf(why, whyn, "frame header crc32c %08x != %08x", crc, get32(h + 16));
		*st = FRAME_BAD;
		return TW_OK;
	}
	if (get64(h) != seq) {
		snprintf(why, whyn, "frame seq %llu, expected %llu", (unsigned long long)get64(h),
			 (unsigned long long)seq);
		*resume = off; /* an intact header with a surprising seq: look at it too */
		*st = FRAME_BAD;
		return TW_OK;
	}
	*len = get32(h + 8);
	if (*len > cap) {
		snprintf(why, whyn, "frame seq %llu length %llu over the cap of %llu bytes",
			 (unsigned long long)seq, (unsigned long long)*len, (unsigned long long)cap);
		*st = FRAME_BAD;
		return TW_OK;
	}
	left = size - off - TW_WAL_FRAME_HEADER_SIZE;
	if (*len > left) {
		snprintf(why, whyn, "frame seq %llu short payload (%llu of %llu bytes)",
			 (unsigned long long)seq, (unsigned long long)left, (unsigned long long)*len);
		*st = FRAME_SHORT;
		return TW_OK;
	}
	crc = 0;
	pos = off + TW_WAL_FRAME_HEADER_SIZE;
	for (uint64_t k, done = 0; done < *len; done += k) {
		k = *len - done < SCAN_CHUNK ? *len - done : SCAN_CHUNK;
		got = read_full(fd, buf, (size_t)k, pos + done);
		if (got != (ssize_t)k)
			return tw_err_set(err, TW_EIO, "%s: read at offset %llu: %s", path,
					  (unsigned long long)(pos + done),
					  got < 0 ? strerror(errno) : "file shrank");
		crc = tw_wal_crc32c(crc, buf, (size_t)k);
	}
	want = get32(h + 12);
	if (crc != want) {
		snprintf(why, whyn, "frame seq %llu payload crc32c %08x != %08x",
			 (unsigned long long)seq, crc, want);
		*resume = pos + *len; /* the header is good, so the next frame would start here */
		*st = FRAME_BAD;
		return TW_OK;
	}
	*st = FRAME_OK;
	return TW_OK;
}

/* Looks for an intact frame header (CRC good, seq in [seq_lo, seq_lo + frames that could fit])
 * at any offset in [from, size - 20]. 1 found (*at, *found_seq), 0 not, -1 read error. */
static int find_intact(int fd, uint64_t from, uint64_t size, uint64_t seq_lo, unsigned char *buf,
		       uint64_t *at, uint64_t *found_seq)
{
	const size_t H = TW_WAL_FRAME_HEADER_SIZE;
	uint64_t span, x = from;

	if (size < H || from > size - H)
		return 0;
	span = (size - from) / H + 1;
	while (x <= size - H) {
		ssize_t got = read_full(fd, buf, SCAN_CHUNK, x);
		if (got < 0)
			return -1;
		if ((size_t)got < H)
			return 0;
		for (size_t i = 0; i + H <= (size_t)got; i++) {
			uint64_t s = get64(buf + i);
			if (s < seq_lo || s - seq_lo > span)
				continue;
			if (tw_wal_crc32c(0, buf + i, 16) == get32(buf + i + 16)) {
				*at = x + i;
				*found_seq = s;
				return 1;
			}
		}
		x += (uint64_t)got - (H - 1); /* overlap so no header straddles two chunks unseen */
	}
	return 0;
}

/* ---- the writer --------------------------------------------------------------------------- */

void tw_wal_close(struct tw_wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w->tmp);
	free(w);
}

/* Scans an existing file's frames from the header on, cutting a torn tail (invariant 4). */
static enum tw_rc recover(struct tw_wal *w, int repair, struct tw_wal_recovery *rec,
			  struct tw_err *err)
{
	unsigned char *buf = NULL;
	enum frame_state st = FRAME_OK;
	uint64_t size, off = TW_WAL_HEADER_SIZE, len = 0, resume = 0, at, found;
	char why[128] = "";
	struct stat sb;
	enum tw_rc rc = TW_OK;
	int e;

	if (fstat(w->fd, &sb) != 0)
		return tw_err_set(err, TW_EIO, "%s: stat: %s", w->path, strerror(errno));
	size = (uint64_t)sb.st_size;
	buf = malloc(SCAN_CHUNK);
	if (!buf)
		return tw_err_set(err, TW_ENOMEM, "out of memory scanning %s", w->path);
	while (off < size) {
		rc = check_frame(w->fd, w->path, off, size, w->next_seq, w->max_frame, buf, &st, &len,
				 &resume, why, sizeof why, err);
		if (rc)
			goto out;
		if (st != FRAME_OK)
			break;
		off += TW_WAL_FRAME_HEADER_SIZE + len;
		w->next_seq++;
		rec->frames++;
	}
	rec->cut_offset = off;
	if (off == size)
		goto out;
	if (st == FRAME_BAD) {
		e = find_intact(w->fd, resume, size, w->next_seq, buf, &at, &found);
		if (e < 0) {
			rc = tw_err_set(err, TW_EIO, "%s: read: %s", w->path, strerror(errno));
			goto out;
		}
		if (e > 0 && !repair) {
			rc = tw_err_set(err, TW_ECORRUPT,
					"%s: offset %llu: %s, but an intact frame (seq %llu) follows at "
					"offset %llu: damage in the middle, not a torn tail; refusing to "
					"cut %llu bytes (repair would)",
					w->path, (unsigned long long)off, why, (unsigned long long)found,
					(unsigned long long)at, (unsigned long long)(size - off));
			goto out;
		}
		rec->damaged_middle = e > 0;
	}
	snprintf(rec->reason, sizeof rec->reason, "%s", why);
	rec->cut_bytes = size - off;
	if (ftruncate(w->fd, (off_t)off) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: cutting the torn tail at offset %llu: %s", w->path,
				(unsigned long long)off, strerror(errno));
		goto out;
	}
	if ((e = sync_fd(&w->io, w->fd)) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: sync after cutting the tail: %s", w->path,
				strerror(e));
		goto out;
	}
out:
	free(buf);
	w->end = off;
	return rc;
}

enum tw_rc tw_wal_open(const char *path, const struct tw_wal_opts *opts, struct tw_wal **out,
		       struct tw_wal_recovery *rec, struct tw_err *err)
{
	static const struct tw_wal_opts defaults = { 0 };
	unsigned char h[TW_WAL_HEADER_SIZE];
	struct tw_wal_recovery r;
	struct tw_wal *w;
	struct stat sb;
	size_t plen;
	ssize_t got;
	enum tw_rc rc;
	int renamed;

	if (!opts)
		opts = &defaults;
	if (opts->max_frame > TW_WAL_MAX_FRAME_LIMIT)
		return tw_err_set(err, TW_EINVAL, "%s: max_frame %llu over the limit of %u bytes", path,
				  (unsigned long long)opts->max_frame, TW_WAL_MAX_FRAME_LIMIT);
	memset(&r, 0, sizeof r);
	w = calloc(1, sizeof *w);
	if (!w)
		return tw_err_set(err, TW_ENOMEM, "out of memory opening %s", path);
	w->fd = -1;
	plen = strlen(path);
	w->path = strdup(path);
	w->tmp = malloc(plen + 5);
	if (!w->path || !w->tmp) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory opening %s", path);
		goto fail;
	}
	memcpy(w->tmp, path, plen);
	memcpy(w->tmp + plen, ".tmp", 5);
	w->io.pwrite = opts->io.pwrite ? opts->io.pwrite : real_pwrite;
	w->io.fdatasync = opts->io.fdatasync ? opts->io.fdatasync : real_fdatasync;
	w->io.ctx = opts->io.ctx;
	w->new_cap = opts->max_frame ? opts->max_frame : TW_WAL_MAX_FRAME_DEFAULT;

	w->fd = open(path, O_RDWR | O_CLOEXEC);
	if (w->fd < 0 && errno != ENOENT) {
		rc = tw_err_set(err, TW_EIO, "%s: open: %s", path, strerror(errno));
		goto fail;
	}
	if (w->fd >= 0) {
		if (flock(w->fd, LOCK_EX | LOCK_NB) != 0) {
			rc = tw_err_set(err, errno == EWOULDBLOCK ? TW_EBUSY : TW_EIO,
					"%s: WAL is locked by another writer: %s", path, strerror(errno));
			goto fail;
		}
		if (fstat(w->fd, &sb) != 0) {
			rc = tw_err_set(err, TW_EIO, "%s: stat: %s", path, strerror(errno));
			goto fail;
		}
		if (sb.st_size == 0) { /* nothing to lose: initialise it like a new file */
			close(w->fd);
			w->fd = -1;
		}
	}
	if (w->fd < 0) {
		w->base_seq = opts->first_seq ? opts->first_seq : 1;
		rc = create_file(w, w->new_cap, w->base_seq, &w->fd, &renamed, err);
		if (rc)
			goto fail;
		w->max_frame = w->new_cap;
		w->next_seq = w->base_seq;
		w->end = TW_WAL_HEADER_SIZE;
		r.created = 1;
		r.cut_offset = w->end;
	} else {
		got = read_full(w->fd, h, sizeof h, 0);
		if (got < 0) {
			rc = tw_err_set(err, TW_EIO, "%s: read: %s", path, strerror(errno));
			goto fail;
		}
		rc = parse_header(path, h, (size_t)got, &w->max_frame, &w->base_seq, err);
		if (rc)
			goto fail;
		w->next_seq = w->base_seq;
		rc = recover(w, opts->repair, &r, err);
		if (rc)
			goto fail;
	}
	r.first_seq = w->base_seq;
	r.next_seq = w->next_seq;
	if (rec)
		*rec = r;
	*out = w;
	return TW_OK;
fail:
	tw_wal_close(w);
	return rc;
}

/* Enters the sticky error state (invariant 2) and returns TW_EIO with the message. */
static enum tw_rc stop(struct tw_wal *w, struct tw_err *err, const char *what, int e)
{
	w->stopped = 1;
	snprintf(w->stop_msg, sizeof w->stop_msg, "%s: %s: %s", w->path, what, strerror(e));
	return tw_err_set(err, TW_EIO, "%s", w->stop_msg);
}

static enum tw_rc check_stopped(const struct tw_wal *w, struct tw_err *err)
{
	if (w->stopped)
		return tw_err_set(err, TW_EIO, "WAL stopped after an earlier write error: %s",
				  w->stop_msg);
	return TW_OK;
}

enum tw_rc tw_wal_append(struct tw_wal *w, const void *payload, size_t n, uint64_t *seq_out,
			 struct tw_err *err)
{
	unsigned char h[TW_WAL_FRAME_HEADER_SIZE];
	char what[96];
	enum tw_rc rc;
	int e;

	if ((rc = check_stopped(w, err)))
		return rc;
	if (n > w->max_frame)
		return tw_err_set(err, TW_ELIMIT, "%s: batch of %zu bytes over the WAL frame cap of %llu",
				  w->path, n, (unsigned long long)w->max_frame);
	if (w->next_seq == UINT64_MAX)
		return tw_err_set(err, TW_ELIMIT, "%s: WAL sequence numbers exhausted", w->path);
	put64(h, w->next_seq);
	put32(h + 8, (uint32_t)n);
	put32(h + 12, tw_wal_crc32c(0, payload, n));
	put32(h + 16, tw_wal_crc32c(0, h, 16));
	snprintf(what, sizeof what, "write frame seq %llu at offset %llu",
		 (unsigned long long)w->next_seq, (unsigned long long)w->end);
	if ((e = write_all(&w->io, w->fd, h, sizeof h, w->end)) != 0 ||
	    (e = write_all(&w->io, w->fd, payload, n, w->end + sizeof h)) != 0)
		return stop(w, err, what, e);
	if ((e = sync_fd(&w->io, w->fd)) != 0) {
		snprintf(what, sizeof what, "fdatasync after frame seq %llu",
			 (unsigned long long)w->next_seq);
		return stop(w, err, what, e);
	}
	w->end += sizeof h + n;
	if (seq_out)
		*seq_out = w->next_seq;
	w->next_seq++;
	return TW_OK;
}

enum tw_rc tw_wal_reset(struct tw_wal *w, struct tw_err *err)
{
	enum tw_rc rc;
	int fd = -1, renamed;

	if ((rc = check_stopped(w, err)))
		return rc;
	rc = create_file(w, w->new_cap, w->next_seq, &fd, &renamed, err);
	if (!renamed)
		return rc; /* the old file is untouched and still ours */
	/* path now names the new file, whatever the directory sync said. */
	close(w->fd);
	w->fd = fd;
	w->max_frame = w->new_cap;
	w->base_seq = w->next_seq;
	w->end = TW_WAL_HEADER_SIZE;
	if (rc) {
		w->stopped = 1; /* we cannot tell which file a crash would leave */
		snprintf(w->stop_msg, sizeof w->stop_msg, "%.190s", err ? err->msg : "reset failed");
	}
	return rc;
}

uint64_t tw_wal_size(const struct tw_wal *w)
{
	return w->end;
}

uint64_t tw_wal_next_seq(const struct tw_wal *w)
{
	return w->next_seq;
}

/* ---- the reader --------------------------------------------------------------------------- */

void tw_wal_reader_close(struct tw_wal_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->path);
	free(r->buf);
	free(r);
}

enum tw_rc tw_wal_reader_open(const char *path, struct tw_wal_reader **out, struct tw_err *err)
{
	unsigned char h[TW_WAL_HEADER_SIZE];
	struct tw_wal_reader *r;
	enum tw_rc rc;
	ssize_t got;

	r = calloc(1, sizeof *r);
	if (!r)
		return tw_err_set(err, TW_ENOMEM, "out of memory opening %s", path);
	r->fd = -1;
	r->path = strdup(path);
	if (!r->path) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory opening %s", path);
		goto fail;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: open: %s", path,
				strerror(errno));
		goto fail;
	}
	got = read_full(r->fd, h, sizeof h, 0);
	if (got < 0) {
		rc = tw_err_set(err, TW_EIO, "%s: read: %s", path, strerror(errno));
		goto fail;
	}
	rc = parse_header(path, h, (size_t)got, &r->max_frame, &r->next_seq, err);
	if (rc)
		goto fail;
	r->off = TW_WAL_HEADER_SIZE;
	*out = r;
	return TW_OK;
fail:
	tw_wal_reader_close(r);
	return rc;
}

enum tw_rc tw_wal_reader_next(struct tw_wal_reader *r, uint64_t *seq, const void **payload,
			      size_t *n, struct tw_err *err)
{
	unsigned char h[TW_WAL_FRAME_HEADER_SIZE];
	uint32_t crc;
	uint64_t len;
	struct stat sb;
	ssize_t got;

	got = read_full(r->fd, h, sizeof h, r->off);
	if (got < 0)
		return tw_err_set(err, TW_EIO, "%s: read at offset %llu: %s", r->path,
				  (unsigned long long)r->off, strerror(errno));
	if (got < (ssize_t)sizeof h)
		return tw_err_set(err, TW_ENOENT, "%s: no complete frame at offset %llu", r->path,
				  (unsigned long long)r->off);
	crc = tw_wal_crc32c(0, h, 16);
	if (crc != get32(h + 16))
		return tw_err_set(err, TW_ECORRUPT, "%s: offset %llu: frame header crc32c %08x != %08x",
				  r->path, (unsigned long long)r->off, crc, get32(h + 16));
	if (get64(h) != r->next_seq)
		return tw_err_set(err, TW_ECORRUPT, "%s: offset %llu: frame seq %llu, expected %llu",
				  r->path, (unsigned long long)r->off, (unsigned long long)get64(h),
				  (unsigned long long)r->next_seq);
	len = get32(h + 8);
	if (len > r->max_frame)
		return tw_err_set(err, TW_ECORRUPT,
				  "%s: offset %llu: frame length %llu over the cap of %llu bytes", r->path,
				  (unsigned long long)r->off, (unsigned long long)len,
				  (unsigned long long)r->max_frame);
	/* Size memory by the length only once the file holds that many bytes. */
	if (fstat(r->fd, &sb) != 0)
		return tw_err_set(err, TW_EIO, "%s: stat: %s", r->path, strerror(errno));
	if ((uint64_t)sb.st_size < r->off + sizeof h + len)
		return tw_err_set(err, TW_ENOENT, "%s: frame seq %llu at offset %llu not complete yet",
				  r->path, (unsigned long long)r->next_seq, (unsigned long long)r->off);
	if (len > r->cap) {
		unsigned char *p = realloc(r->buf, (size_t)len);
		if (!p)
			return tw_err_set(err, TW_ENOMEM, "out of memory reading a %llu-byte frame",
					  (unsigned long long)len);
		r->buf = p;
		r->cap = (size_t)len;
	}
	got = read_full(r->fd, r->buf, (size_t)len, r->off + sizeof h);
	if (got < 0)
		return tw_err_set(err, TW_EIO, "%s: read at offset %llu: %s", r->path,
				  (unsigned long long)(r->off + sizeof h), strerror(errno));
	if ((uint64_t)got < len)
		return tw_err_set(err, TW_ENOENT, "%s: frame seq %llu at offset %llu not complete yet",
				  r->path, (unsigned long long)r->next_seq, (unsigned long long)r->off);
	crc = tw_wal_crc32c(0, r->buf, (size_t)len);
	if (crc != get32(h + 12))
		return tw_err_set(err, TW_ECORRUPT,
				  "%s: offset %llu: frame seq %llu payload crc32c %08x != %08x", r->path,
				  (unsigned long long)r->off, (unsigned long long)r->next_seq, crc,
				  get32(h + 12));
	*seq = r->next_seq;
	*payload = r->buf;
	*n = (size_t)len;
	r->off += sizeof h + len;
	r->next_seq++;
	return TW_OK;
}
