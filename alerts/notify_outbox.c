/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify_outbox.c: the byte format of the notifier's outbox log and a read-only summary
 * of it (`trailwatch notify status`). The log's meaning (which delivery is pending) is decided
 * in notify.c; this file only frames, checksums and walks bytes.
 *
 * STATE_DIR/outbox.log:
 *   header  8 bytes: "TWOB" then u32 LE version (1)
 *   frame*  u32 LE payload length n | u32 LE crc32(type byte, payload) | u8 type | payload[n]
 * Types (payloads are JSON objects):
 *   'M' {"seq", "id", "topic", "subject"?, "message", "attrs": {name: {"Type","Value"}},
 *        "mime"?, "dedup"?, "ts", "subs": [subscription name, ...], "carried"?}   a message and
 *        its deliveries; "carried": true when compaction rewrote it (its subs are the pending ones)
 *   'R' {"seq", "sub", "state": "delivered"|"dead", "attempts", "error"?}   a delivery's end
 *   'S' {"next_seq", "published", "delivered", "dead"}   counters carried over a compaction
 *   'K' {"key", "ts", "id"}   a dedup key still inside its window, carried over a compaction
 * Invariants:
 *   1. A frame is fsynced before the call that wrote it returns (publish, or the end of a delivery).
 *   2. Reading stops at the first frame that is short or fails its CRC: that is a torn tail; the
 *      opener cuts it (everything before it was acknowledged, nothing after it was).
 *   3. The log is only ever rewritten whole (compaction: a new file, fsync, rename, fsync dir). */
#include "alerts/notify_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "TWOB"
#define VERSION 1u
#define HDR 8
#define FHDR 9

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static enum tw_rc write_all(int fd, const void *p, size_t n, struct tw_err *err)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return tw_err_set(err, TW_EIO, "outbox: write: %s", w < 0 ? strerror(errno) : "short write");
		c += w;
		n -= (size_t)w;
	}
	return TW_OK;
}

enum tw_rc tw_notify_outbox_header(int fd, struct tw_err *err)
{
	unsigned char h[HDR];

	memcpy(h, MAGIC, 4);
	put32(h + 4, VERSION);
	return write_all(fd, h, HDR, err);
}

enum tw_rc tw_notify_frame_append(int fd, int type, const char *p, size_t n, int sync, struct tw_err *err)
{
	unsigned char h[FHDR];
	unsigned char t = (unsigned char)type;
	uLong crc;
	char *frame;
	enum tw_rc rc;

	if (n > TW_NOTIFY_FRAME_MAX)
		return tw_err_set(err, TW_ELIMIT, "outbox: frame of %zu bytes (at most %u)", n, TW_NOTIFY_FRAME_MAX);
	crc = crc32(0L, &t, 1);
	crc = crc32(crc, (const Bytef *)p, (uInt)n);
	put32(h, (uint32_t)n);
	put32(h + 4, (uint32_t)crc);
	h[8] = t;
	/* One write per frame: a crash leaves at most one torn frame at the tail. */
	frame = malloc(FHDR + n);
	if (!frame)
		return tw_err_set(err, TW_ENOMEM, "outbox: out of memory");
	memcpy(frame, h, FHDR);
	memcpy(frame + FHDR, p, n);
	rc = write_all(fd, frame, FHDR + n, err);
	free(frame);
	if (rc)
		return rc;
	if (sync && fdatasync(fd))
		return tw_err_set(err, TW_EIO, "outbox: fsync: %s", strerror(errno));
	return TW_OK;
}

static enum tw_rc read_at(int fd, void *p, size_t n, uint64_t off, size_t *got, struct tw_err *err)
{
	size_t k = 0;

	while (k < n) {
		ssize_t r = pread(fd, (char *)p + k, n - k, (off_t)(off + k));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return tw_err_set(err, TW_EIO, "outbox: read: %s", strerror(errno));
		if (r == 0)
			break;
		k += (size_t)r;
	}
	*got = k;
	return TW_OK;
}

enum tw_rc tw_notify_frame_scan(int fd, enum tw_rc (*fn)(void *ctx, int type, const char *p, size_t n, struct tw_err *err),
				void *ctx, uint64_t *good, uint64_t *size, struct tw_err *err)
{
	struct stat st;
	unsigned char h[FHDR];
	uint64_t off = HDR;
	char *buf = NULL;
	size_t cap = 0, got;
	enum tw_rc rc = TW_OK;

	if (fstat(fd, &st))
		return tw_err_set(err, TW_EIO, "outbox: stat: %s", strerror(errno));
	*size = (uint64_t)st.st_size;
	if ((rc = read_at(fd, h, HDR, 0, &got, err)))
		return rc;
	if (got < HDR || memcmp(h, MAGIC, 4))
		return tw_err_set(err, TW_ECORRUPT, "outbox: not a trailwatch outbox (bad magic)");
	if (get32(h + 4) != VERSION)
		return tw_err_set(err, TW_EUNSUP, "outbox: version %u (this trailwatch reads %u)", get32(h + 4), VERSION);
	for (;;) {
		uint32_t n, crc;
		uLong c;
		if ((rc = read_at(fd, h, FHDR, off, &got, err)))
			break;
		if (got < FHDR)
			break;
		n = get32(h);
		crc = get32(h + 4);
		if (n > TW_NOTIFY_FRAME_MAX || off + FHDR + n > *size)
			break;
		if (n + 1 > cap) {
			char *nb = realloc(buf, n + 1);
			if (!nb) {
				rc = tw_err_set(err, TW_ENOMEM, "outbox: out of memory");
				break;
			}
			buf = nb;
			cap = n + 1;
		}
		if ((rc = read_at(fd, buf, n, off + FHDR, &got, err)))
			break;
		if (got < n)
			break;
		c = crc32(0L, h + 8, 1);
		c = crc32(c, (const Bytef *)buf, n);
		if ((uint32_t)c != crc)
			break;
		buf[n] = 0;
		if (fn && (rc = fn(ctx, h[8], buf, n, err)))
			break;
		off += FHDR + n;
	}
	free(buf);
	*good = off;
	return rc;
}

/* ---- read-only summary ------------------------------------------------------------------------- */

struct pend {
	uint64_t seq;  /* message */
	unsigned left; /* deliveries not finished */
	int64_t ts;    /* publication time */
};

struct statctx {
	struct tw_notify_outbox_stats *st; /* being filled */
	struct pend *p;                    /* messages in seq order */
	size_t n, cap;                     /* entries / allocated */
};

static enum tw_rc stat_frame(void *ctx, int type, const char *p, size_t n, struct tw_err *err)
{
	struct statctx *sc = ctx;
	json_t *j = json_loadb(p, n, 0, NULL);
	uint64_t seq;

	if (!j)
		return TW_OK; /* an unreadable payload behind a good CRC: skipped, as the opener does */
	seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
	if (type == TW_NOTIFY_F_MSG) {
		if (sc->n == sc->cap) {
			size_t nc = sc->cap ? sc->cap * 2 : 64;
			struct pend *np = realloc(sc->p, nc * sizeof *np);
			if (!np) {
				json_decref(j);
				return tw_err_set(err, TW_ENOMEM, "outbox: out of memory");
			}
			sc->p = np;
			sc->cap = nc;
		}
		sc->p[sc->n].seq = seq;
		sc->p[sc->n].left = (unsigned)json_array_size(json_object_get(j, "subs"));
		sc->p[sc->n].ts = (int64_t)json_integer_value(json_object_get(j, "ts"));
		sc->n++;
		if (!json_is_true(json_object_get(j, "carried")))
			sc->st->published++;
	} else if (type == TW_NOTIFY_F_RESULT) {
		const char *state = json_string_value(json_object_get(j, "state"));
		size_t lo = 0, hi = sc->n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (sc->p[mid].seq < seq)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < sc->n && sc->p[lo].seq == seq && sc->p[lo].left)
			sc->p[lo].left--;
		if (state && !strcmp(state, "delivered"))
			sc->st->delivered++;
		else
			sc->st->dead++;
	} else if (type == TW_NOTIFY_F_STATE) {
		sc->st->published += (uint64_t)json_integer_value(json_object_get(j, "published"));
		sc->st->delivered += (uint64_t)json_integer_value(json_object_get(j, "delivered"));
		sc->st->dead += (uint64_t)json_integer_value(json_object_get(j, "dead"));
	}
	json_decref(j);
	return TW_OK;
}

enum tw_rc tw_notify_outbox_stat(const char *state_dir, struct tw_notify_outbox_stats *st, struct tw_err *err)
{
	char path[4096];
	struct statctx sc = { st, NULL, 0, 0 };
	uint64_t good, size;
	enum tw_rc rc;
	int fd;

	memset(st, 0, sizeof *st);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", state_dir, TW_NOTIFY_OUTBOX_NAME) >= sizeof path)
		return tw_err_set(err, TW_ELIMIT, "%s: path too long", state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: %s", path, strerror(errno));
	rc = tw_notify_frame_scan(fd, stat_frame, &sc, &good, &size, err);
	close(fd);
	if (rc) {
		tw_err_prefix(err, "%s", path);
		free(sc.p);
		return rc;
	}
	st->bytes = size;
	for (size_t i = 0; i < sc.n; i++) {
		if (sc.p[i].left) {
			st->messages++;
			st->pending += sc.p[i].left;
			if (!st->oldest_ms || sc.p[i].ts < st->oldest_ms)
				st->oldest_ms = sc.p[i].ts;
		}
	}
	free(sc.p);
	return TW_OK;
}
