/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/source.c: files, directories and stdin (tw_ingest_paths). Reads with large reads,
 * inflates gzip/zlib with ISA-L (detected by content), cuts the text into chunks of whole records
 * with the splitter, decodes chunks on worker threads and delivers the results in source order
 * from the calling thread. Knows nothing of record formats: decode.c does.
 *
 * Pipeline (the calling thread C, workers W1..Wn):
 *
 *   C: read -> inflate -> splitter -> chunk {text, items} --queue--> W: decode items -> batch,
 *                                                                       held rejects, stats
 *   C: <- in chunk order (a reorder window): rejects and batches to the sink, stats merged,
 *        on_progress
 *
 * Invariants:
 *   1. The calling thread runs the splitter over every file in order, so each item (a record
 *      candidate or a splitter reject) carries its exact line, index and offset; workers only
 *      decode. Results reach the sink strictly in chunk order, so the sink sees the same calls
 *      whatever the number of threads.
 *   2. A chunk owns its text; its batch's events point into it; the chunk is recycled only after
 *      its batch was delivered. Chunks come from a pool of 2 * workers + 2, so memory is bounded
 *      by the pool (each chunk ~5 MiB, more only for a record near max_record).
 *   3. Only the calling thread touches the caller's stats, the sink and on_progress; workers fill
 *      per-chunk stats merged at delivery. on_digest is called from the decoding thread.
 *   4. Every file ends with a chunk marked last (possibly empty) that carries the file-level
 *      rejects (truncated gzip, bomb, not a regular file) and owns the file's name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/codec.h"
#include "ingest/ingest_int.h"
#include "ingest/split.h"

#define CHUNK_TARGET ((size_t)4 << 20) /* text per chunk before it is cut */
#define READ_SIZE ((size_t)1 << 20)    /* compressed bytes per read */
#define PLAIN_READ ((size_t)4 << 20)   /* most plain bytes per read */
#define MAX_DIR_DEPTH 256              /* directory nesting we walk */
#define PROGRESS_NS 100000000LL        /* on_progress period */

/* ---- limits --------------------------------------------------------------------------------- */

void tw_ingest_limits_default(struct tw_ingest_limits *lim)
{
	lim->max_record = (size_t)8 << 20;
	lim->max_payload = (size_t)64 << 20;
	lim->max_inflated = (uint64_t)16 << 30;
	lim->max_depth = 256;
	lim->batch_events = 4096;
	lim->threads = 0;
	lim->regular_only = 0;
}

uint64_t tw_ingest_stats_events(const struct tw_ingest_stats *st)
{
	uint64_t n = 0;
	for (int k = 1; k <= TW_KIND_MAX; k++)
		n += st->events[k];
	return n;
}

void tw_ingest_limits_fill(struct tw_ingest_limits *out, const struct tw_ingest_limits *lim)
{
	struct tw_ingest_limits def;

	tw_ingest_limits_default(&def);
	if (!lim) {
		*out = def;
		return;
	}
	*out = *lim;
	if (!out->max_record)
		out->max_record = def.max_record;
	if (!out->max_payload)
		out->max_payload = def.max_payload;
	if (!out->max_inflated)
		out->max_inflated = def.max_inflated;
	if (!out->max_depth)
		out->max_depth = def.max_depth;
	if (!out->batch_events)
		out->batch_events = def.batch_events;
}

/* ---- chunks ------------------------------------------------------------------------------- */

/* A record candidate or a splitter/file reject inside a chunk. */
struct item {
	struct tw_pos pos;  /* exact position in the file */
	size_t off;         /* candidate: offset in chunk->buf; reject: offset of the bytes in aux */
	size_t len;         /* bytes */
	size_t reason;      /* reject: offset of the NUL-terminated reason in aux + 1; 0: candidate */
};

/* A reject a worker made, kept for in-order delivery. */
struct held {
	struct tw_pos pos; /* where */
	size_t reason;     /* offset of the NUL-terminated reason in rejbuf */
	size_t bytes;      /* offset of the (truncated) bytes in rejbuf */
	size_t nbytes;     /* their length */
	size_t evpos;      /* events in the batch when it was made */
};

struct chunk {
	struct chunk *next;          /* in-flight list, or free list */
	char *buf;                   /* the text: whole records */
	size_t n;                    /* bytes in buf */
	size_t cap;                  /* bytes allocated */
	struct item *items;          /* what to decode, in order */
	size_t nitems;               /* items in use */
	size_t capitems;             /* items allocated */
	struct tw_buf aux;           /* reasons and bytes of the items that are rejects */
	const char *source;          /* file name, borrowed (owned by the file's last chunk) */
	char *owned_name;            /* last chunk: the file name to free after delivery */
	int last;                    /* last chunk of its file: on_progress after delivery */
	int queued;                  /* handed to the workers */
	int done;                    /* decoded (under run.mu once queued) */
	struct tw_batch batch;       /* decoded events; point into buf */
	struct held *rej;            /* rejects made while decoding */
	size_t nrej;                 /* in use */
	size_t caprej;               /* allocated */
	struct tw_buf rejbuf;        /* their reasons and bytes */
	struct tw_ingest_stats st;   /* counters of this chunk */
	enum tw_rc rc;               /* non-OK: decoding had to stop (ENOMEM) */
	struct tw_err err;           /* why */
};

/* A directory already walked (symlink loops, a directory named twice). */
struct dirid {
	dev_t dev; /* st_dev */
	ino_t ino; /* st_ino */
};

/* One run of tw_ingest_paths. */
struct run {
	struct tw_ingest_limits lim;        /* caps, defaults filled in */
	struct tw_sink *sink;               /* where results go */
	const struct tw_ingest_hooks *hooks; /* may be NULL */
	struct tw_ingest_stats *st;         /* the caller's counters */
	enum tw_rc path_rc;                 /* first error of a path that could not be read */
	struct tw_err path_err;             /* its message */
	enum tw_rc stop;                    /* non-OK: the run stops (sink, ENOMEM) */
	struct tw_err stop_err;             /* why */
	unsigned nworkers;                  /* worker threads wanted (<= 1: decode inline) */
	unsigned started;                   /* worker threads running */
	pthread_t *tids;                    /* their ids */
	pthread_mutex_t mu;                 /* guards queue, done flags, quit, abort */
	pthread_cond_t work_cv;             /* work queued or quit */
	pthread_cond_t done_cv;             /* a chunk was decoded */
	struct chunk **queue;               /* ring of chunks waiting for a worker */
	size_t qhead;                       /* first waiting */
	size_t qlen;                        /* waiting */
	size_t qcap;                        /* ring size (= pool size) */
	int quit;                           /* workers exit when the queue is empty */
	int abort;                          /* workers skip decoding (the run stops) */
	struct chunk *head;                 /* oldest chunk in flight (source order) */
	struct chunk *tail;                 /* newest chunk in flight */
	size_t ninflight;                   /* chunks in that list */
	struct chunk *free;                 /* recycled chunks */
	size_t nchunks;                     /* chunks allocated */
	size_t pool;                        /* most chunks allocated at once */
	int64_t last_progress;              /* ns, monotonic */
	const char *current;                /* file being read (for on_progress) */
	char *in;                           /* compressed input buffer (READ_SIZE) */
	struct inflate_state *inf;          /* ISA-L state, reused per file */
	struct dirid *dirs;                 /* directories already walked */
	size_t ndirs;                       /* in use */
	size_t capdirs;                     /* allocated */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void set_stop(struct run *r, enum tw_rc rc, const struct tw_err *err)
{
	if (r->stop)
		return;
	r->stop = rc;
	if (err && err->rc)
		r->stop_err = *err;
	else
		tw_err_set(&r->stop_err, rc, "ingest stopped (%s)", tw_rc_str(rc));
	r->stop_err.rc = rc;
}

static void path_error(struct run *r, enum tw_rc rc, const char *path, const char *what, int e)
{
	if (r->path_rc)
		return;
	r->path_rc = rc;
	tw_err_set(&r->path_err, rc, "%s: %s: %s", path, what, strerror(e));
}

static struct chunk *chunk_new(size_t cap)
{
	struct chunk *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->buf = malloc(cap);
	if (!c->buf) {
		free(c);
		return NULL;
	}
	c->cap = cap;
	tw_buf_init(&c->aux, SIZE_MAX / 2);
	tw_buf_init(&c->rejbuf, SIZE_MAX / 2);
	tw_batch_init(&c->batch);
	return c;
}

static void chunk_free(struct chunk *c)
{
	if (!c)
		return;
	free(c->buf);
	free(c->items);
	free(c->rej);
	free(c->owned_name);
	tw_buf_free(&c->aux);
	tw_buf_free(&c->rejbuf);
	tw_batch_free(&c->batch);
	free(c);
}

/* Forgets a delivered chunk's contents and puts it on the free list. */
static void chunk_recycle(struct run *r, struct chunk *c)
{
	c->n = 0;
	c->nitems = 0;
	c->nrej = 0;
	tw_buf_reset(&c->aux);
	tw_buf_reset(&c->rejbuf);
	tw_batch_reset(&c->batch);
	c->source = NULL;
	free(c->owned_name);
	c->owned_name = NULL;
	c->last = c->queued = c->done = 0;
	c->rc = TW_OK;
	tw_err_clear(&c->err);
	memset(&c->st, 0, sizeof c->st);
	c->next = r->free;
	r->free = c;
}

/* Makes room for `need` bytes in c->buf (keeping its contents). */
static enum tw_rc chunk_reserve(struct chunk *c, size_t need, struct tw_err *err)
{
	size_t cap = c->cap;
	char *p;

	if (need <= c->cap)
		return TW_OK;
	while (cap < need)
		cap *= 2;
	p = realloc(c->buf, cap);
	if (!p)
		return tw_err_set(err, TW_ENOMEM, "out of memory growing a chunk to %zu bytes", cap);
	c->buf = p;
	c->cap = cap;
	return TW_OK;
}

static enum tw_rc item_push(struct chunk *c, struct item **it, struct tw_err *err)
{
	if (c->nitems == c->capitems) {
		size_t cap = c->capitems ? c->capitems * 2 : 1024;
		struct item *p = realloc(c->items, cap * sizeof *p);
		if (!p)
			return tw_err_set(err, TW_ENOMEM, "out of memory growing a chunk's item list");
		c->items = p;
		c->capitems = cap;
	}
	*it = &c->items[c->nitems++];
	return TW_OK;
}

/* Adds a reject item (reason and up to TW_SPLIT_REJECT_BYTES bytes are copied). */
static enum tw_rc item_reject(struct chunk *c, const struct tw_pos *pos, const char *reason,
			      const char *p, size_t n, struct tw_err *err)
{
	struct item *it = NULL;
	enum tw_rc rc = item_push(c, &it, err);
	if (rc)
		return rc;
	if (n > TW_SPLIT_REJECT_BYTES)
		n = TW_SPLIT_REJECT_BYTES;
	it->pos = *pos;
	it->reason = c->aux.n + 1;
	rc = tw_buf_append(&c->aux, reason, strlen(reason) + 1, err);
	if (rc == TW_OK) {
		it->off = c->aux.n;
		it->len = n;
		rc = tw_buf_append(&c->aux, p, n, err);
	}
	if (rc)
		c->nitems--;
	return rc;
}

/* ---- decoding a chunk (any thread) -------------------------------------------------------- */

static enum tw_rc hold_reject(struct tw_decoder *d, const struct tw_reject *rej)
{
	struct chunk *c = d->reject_ctx;
	struct held *h;
	size_t n = rej->bytes.n > TW_SPLIT_REJECT_BYTES ? TW_SPLIT_REJECT_BYTES : rej->bytes.n;
	const char *reason = rej->reason ? rej->reason : "";
	enum tw_rc rc;

	if (c->nrej == c->caprej) {
		size_t cap = c->caprej ? c->caprej * 2 : 64;
		struct held *p = realloc(c->rej, cap * sizeof *p);
		if (!p)
			return tw_err_set(&d->err, TW_ENOMEM, "out of memory keeping rejects");
		c->rej = p;
		c->caprej = cap;
	}
	h = &c->rej[c->nrej];
	h->pos.line = rej->line;
	h->pos.index = rej->index;
	h->pos.offset = rej->offset;
	h->evpos = c->batch.n;
	h->reason = c->rejbuf.n;
	rc = tw_buf_append(&c->rejbuf, reason, strlen(reason) + 1, &d->err);
	if (rc)
		return rc;
	h->bytes = c->rejbuf.n;
	h->nbytes = n;
	rc = tw_buf_append(&c->rejbuf, rej->bytes.p, n, &d->err);
	if (rc)
		return rc;
	c->nrej++;
	return TW_OK;
}

static void decode_chunk(struct run *r, struct chunk *c)
{
	struct tw_decoder d;
	enum tw_rc rc = TW_OK;

	memset(&d, 0, sizeof d);
	d.lim = &r->lim;
	d.hooks = r->hooks;
	d.st = &c->st;
	d.batch = &c->batch;
	d.source = c->source;
	d.reject = hold_reject;
	d.reject_ctx = c;
	c->batch.source = c->source;
	for (size_t i = 0; i < c->nitems && rc == TW_OK; i++) {
		const struct item *it = &c->items[i];
		c->st.records++;
		if (it->reason)
			rc = tw_decoder_reject(&d, &it->pos, c->aux.p + it->reason - 1, c->aux.p + it->off,
					       it->len);
		else
			rc = tw_decode_value(&d, c->buf + it->off, it->len, &it->pos);
	}
	if (rc) {
		c->rc = rc;
		if (d.err.rc)
			c->err = d.err;
		else
			tw_err_set(&c->err, rc, "%s: decoding stopped (%s)", c->source, tw_rc_str(rc));
	}
}

static void *worker(void *arg)
{
	struct run *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct chunk *c;
		int skip;
		while (!r->qlen && !r->quit)
			pthread_cond_wait(&r->work_cv, &r->mu);
		if (!r->qlen)
			break;
		c = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % r->qcap;
		r->qlen--;
		skip = r->abort;
		pthread_mutex_unlock(&r->mu);
		if (!skip)
			decode_chunk(r, c);
		pthread_mutex_lock(&r->mu);
		c->done = 1;
		pthread_cond_broadcast(&r->done_cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- delivery (calling thread) -------------------------------------------------------------- */

static void merge_stats(struct tw_ingest_stats *to, const struct tw_ingest_stats *from)
{
	to->records += from->records;
	for (int k = 0; k <= TW_KIND_MAX; k++)
		to->events[k] += from->events[k];
	to->digests += from->digests;
	to->control_messages += from->control_messages;
	to->skipped += from->skipped;
	to->quarantined += from->quarantined;
}

static void progress(struct run *r, const char *current)
{
	if (r->hooks && r->hooks->on_progress) {
		r->hooks->on_progress(r->hooks->ctx, r->st, current ? current : "");
		r->last_progress = now_ns();
	}
}

static void maybe_progress(struct run *r)
{
	if (r->hooks && r->hooks->on_progress && now_ns() - r->last_progress >= PROGRESS_NS)
		progress(r, r->current);
}

/* Hands a decoded chunk's rejects and events to the sink, in order: the rejects made while a
 * window of events was filling come just before that window. */
static void deliver(struct run *r, struct chunk *c)
{
	struct tw_err err;
	size_t ev = 0, k = 0, nev = c->batch.n, max = r->lim.batch_events;
	enum tw_rc rc = TW_OK;

	if (r->stop)
		return;
	merge_stats(r->st, &c->st);
	if (c->rc) {
		set_stop(r, c->rc, &c->err);
		return;
	}
	tw_err_clear(&err);
	while (rc == TW_OK && (ev < nev || k < c->nrej)) {
		size_t to = nev - ev > max ? ev + max : nev;
		while (rc == TW_OK && k < c->nrej && (c->rej[k].evpos < to || ev >= nev)) {
			const struct held *h = &c->rej[k++];
			struct tw_reject rej;
			if (!r->sink->on_reject)
				continue;
			rej.source = c->source;
			rej.line = h->pos.line;
			rej.index = h->pos.index;
			rej.offset = h->pos.offset;
			rej.reason = c->rejbuf.p + h->reason;
			rej.bytes.p = h->nbytes ? c->rejbuf.p + h->bytes : NULL;
			rej.bytes.n = h->nbytes;
			rc = r->sink->on_reject(r->sink->ctx, &rej, &err);
		}
		if (rc == TW_OK && ev < nev) {
			rc = tw_ingest_deliver(r->sink, &c->batch, ev, to, max, &err);
			ev = to;
		}
	}
	if (rc) {
		if (!err.rc)
			tw_err_set(&err, rc, "%s: the sink stopped the run (%s)", c->source, tw_rc_str(rc));
		set_stop(r, rc, &err);
		return;
	}
	if (c->last)
		progress(r, c->source);
}

/* Delivers the oldest chunk in flight, decoding it here if no worker has it; recycles it. */
static void deliver_oldest(struct run *r)
{
	struct chunk *c = r->head;

	if (!c)
		return;
	if (!c->queued) {
		if (!r->stop)
			decode_chunk(r, c);
		c->done = 1;
	} else {
		pthread_mutex_lock(&r->mu);
		while (!c->done)
			pthread_cond_wait(&r->done_cv, &r->mu);
		pthread_mutex_unlock(&r->mu);
	}
	r->head = c->next;
	if (!r->head)
		r->tail = NULL;
	r->ninflight--;
	deliver(r, c);
	chunk_recycle(r, c);
}

/* Delivers chunks at the head that are already decoded, without waiting. */
static void deliver_ready(struct run *r)
{
	while (r->head && r->head->queued) {
		int done;
		pthread_mutex_lock(&r->mu);
		done = r->head->done;
		pthread_mutex_unlock(&r->mu);
		if (!done)
			break;
		deliver_oldest(r);
	}
}

static void queue_push(struct run *r, struct chunk *c)
{
	pthread_mutex_lock(&r->mu);
	r->queue[(r->qhead + r->qlen) % r->qcap] = c;
	r->qlen++;
	c->queued = 1;
	pthread_cond_signal(&r->work_cv);
	pthread_mutex_unlock(&r->mu);
}

static void start_workers(struct run *r)
{
	r->tids = calloc(r->nworkers, sizeof *r->tids);
	r->queue = calloc(r->pool, sizeof *r->queue);
	r->qcap = r->pool;
	if (!r->tids || !r->queue) {
		r->nworkers = 1;
		return;
	}
	for (unsigned i = 0; i < r->nworkers; i++) {
		if (pthread_create(&r->tids[i], NULL, worker, r) != 0)
			break;
		r->started++;
	}
	if (!r->started)
		r->nworkers = 1; /* decode inline */
}

/* Appends a filled chunk to the in-flight list and gets it decoded: inline with one thread,
 * held back while it is the only chunk so far (small inputs start no thread), else queued. */
static void dispatch(struct run *r, struct chunk *c)
{
	c->next = NULL;
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	r->ninflight++;
	if (r->stop || r->nworkers <= 1) {
		deliver_oldest(r);
		return;
	}
	if (!r->started) {
		if (r->ninflight < 2)
			return;
		start_workers(r);
		if (!r->started) {
			while (r->head)
				deliver_oldest(r);
			return;
		}
		for (struct chunk *x = r->head; x; x = x->next)
			if (!x->queued)
				queue_push(r, x);
	} else {
		queue_push(r, c);
	}
	deliver_ready(r);
}

/* A chunk with room for at least `room` bytes: from the free list, a new one while the pool
 * allows, else the oldest in flight once delivered. NULL only on ENOMEM (r->stop set). */
static struct chunk *chunk_get(struct run *r, size_t room)
{
	struct chunk *c;
	struct tw_err err;

	while (!r->free && r->nchunks >= r->pool && r->head)
		deliver_oldest(r);
	if (r->free) {
		c = r->free;
		r->free = c->next;
	} else {
		c = chunk_new(CHUNK_TARGET + PLAIN_READ + READ_SIZE);
		if (!c) {
			tw_err_set(&err, TW_ENOMEM, "out of memory allocating a chunk");
			set_stop(r, TW_ENOMEM, &err);
			return NULL;
		}
		r->nchunks++;
	}
	c->next = NULL;
	if (chunk_reserve(c, room, &err) != TW_OK) {
		set_stop(r, TW_ENOMEM, &err);
		c->next = r->free;
		r->free = c;
		return NULL;
	}
	return c;
}

/* ---- reading and inflating one file ----------------------------------------------------------- */

enum fault { F_NONE, F_TRUNC, F_CORRUPT, F_CRC, F_TRAILING, F_BOMB, F_IO };

/* Decoded bytes of one file. */
struct reader {
	int fd;                 /* open descriptor */
	int codec;              /* TW_CODEC_PLAIN, _GZIP or _ZLIB */
	size_t in_pos, in_len;  /* unread compressed (or sniffed plain) bytes in run.in */
	int in_eof;             /* read() reported the end */
	int eof;                /* no more decoded bytes */
	enum fault fault;       /* why the stream ended early */
	int ferrno;             /* errno of F_IO */
	int ret;                /* ISA-L code of F_CORRUPT */
	unsigned members;       /* gzip members finished */
	uint64_t total_in;      /* bytes read from the file */
	uint64_t total_out;     /* decoded bytes produced */
};

/* Reads more compressed bytes into run.in (keeping the unread ones). */
static void rd_refill(struct run *r, struct reader *rd)
{
	ssize_t got;

	if (rd->in_pos) {
		memmove(r->in, r->in + rd->in_pos, rd->in_len - rd->in_pos);
		rd->in_len -= rd->in_pos;
		rd->in_pos = 0;
	}
	do
		got = read(rd->fd, r->in + rd->in_len, READ_SIZE - rd->in_len);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		rd->fault = F_IO;
		rd->ferrno = errno;
		rd->in_eof = 1;
		return;
	}
	if (got == 0)
		rd->in_eof = 1;
	rd->in_len += (size_t)got;
	rd->total_in += (uint64_t)got;
	r->st->bytes_in += (uint64_t)got;
}

/* Reads the first bytes of a file and decides how to decode it. */
static void rd_start(struct run *r, struct reader *rd, int fd)
{
	memset(rd, 0, sizeof *rd);
	rd->fd = fd;
	while (!rd->in_eof && rd->in_len < 64)
		rd_refill(r, rd);
	switch (tw_codec_sniff(r->in, rd->in_len < 64 ? rd->in_len : 64)) {
	case TW_CODEC_GZIP:
		rd->codec = TW_CODEC_GZIP;
		break;
	case TW_CODEC_ZLIB:
		rd->codec = TW_CODEC_ZLIB;
		break;
	case TW_CODEC_PLAIN:
	case TW_CODEC_BASE64:
		rd->codec = TW_CODEC_PLAIN;
		break;
	}
	if (rd->codec != TW_CODEC_PLAIN) {
		isal_inflate_init(r->inf);
		r->inf->crc_flag = rd->codec == TW_CODEC_GZIP ? ISAL_GZIP : ISAL_ZLIB;
	}
}

/* Plain files: sniffed bytes first, then reads straight into dst. */
static size_t rd_plain(struct run *r, struct reader *rd, char *dst, size_t cap)
{
	ssize_t got;

	if (rd->in_pos < rd->in_len) {
		size_t k = rd->in_len - rd->in_pos;
		if (k > cap)
			k = cap;
		memcpy(dst, r->in + rd->in_pos, k);
		rd->in_pos += k;
		return k;
	}
	if (rd->in_eof) {
		rd->eof = 1;
		return 0;
	}
	if (cap > PLAIN_READ)
		cap = PLAIN_READ;
	do
		got = read(rd->fd, dst, cap);
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		if (got < 0) {
			rd->fault = F_IO;
			rd->ferrno = errno;
		}
		rd->eof = 1;
		return 0;
	}
	rd->total_in += (uint64_t)got;
	r->st->bytes_in += (uint64_t)got;
	return (size_t)got;
}

/* Between gzip members: 1 to go on with the next member, 0 at the clean end (or a fault). */
static int rd_next_member(struct run *r, struct reader *rd)
{
	for (;;) {
		while (rd->in_pos < rd->in_len && r->in[rd->in_pos] == 0)
			rd->in_pos++; /* NUL padding after the last member */
		if (rd->in_pos < rd->in_len)
			break;
		if (rd->in_eof)
			return 0;
		rd_refill(r, rd);
	}
	if (rd->codec == TW_CODEC_GZIP && (unsigned char)r->in[rd->in_pos] == 0x1f) {
		isal_inflate_reset(r->inf);
		r->inf->crc_flag = ISAL_GZIP;
		return 1;
	}
	rd->fault = F_TRAILING;
	return 0;
}

/* Compressed files: up to cap inflated bytes at dst; stops at max_inflated (F_BOMB). */
static size_t rd_inflate(struct run *r, struct reader *rd, char *dst, size_t cap)
{
	struct inflate_state *s = r->inf;
	uint64_t maxo = r->lim.max_inflated;
	size_t made = 0;

	while (made < cap && !rd->eof) {
		size_t want = cap - made, avail, used, out;
		int ret;
		if (s->block_state == ISAL_BLOCK_FINISH) {
			rd->members++;
			if (!rd_next_member(r, rd)) {
				rd->eof = 1;
				break;
			}
		}
		if (rd->in_pos == rd->in_len && !rd->in_eof)
			rd_refill(r, rd);
		if (rd->fault) {
			rd->eof = 1;
			break;
		}
		/* Ask for one byte past the cap to tell a bomb from a file of exactly the cap. */
		if (maxo < UINT64_MAX && want > maxo + 1 - rd->total_out)
			want = (size_t)(maxo + 1 - rd->total_out);
		if (want > UINT32_MAX)
			want = UINT32_MAX;
		avail = rd->in_len - rd->in_pos;
		s->next_in = (uint8_t *)r->in + rd->in_pos;
		s->avail_in = (uint32_t)avail;
		s->next_out = (uint8_t *)dst + made;
		s->avail_out = (uint32_t)want;
		ret = isal_inflate(s);
		used = avail - s->avail_in;
		out = want - s->avail_out;
		rd->in_pos += used;
		made += out;
		rd->total_out += out;
		if (ret < 0) {
			rd->fault = ret == ISAL_INCORRECT_CHECKSUM ? F_CRC : F_CORRUPT;
			rd->ret = ret;
			rd->eof = 1;
			break;
		}
		if (rd->total_out > maxo) {
			made -= (size_t)(rd->total_out - maxo);
			rd->total_out = maxo;
			rd->fault = F_BOMB;
			rd->eof = 1;
			break;
		}
		if (!used && !out && s->block_state != ISAL_BLOCK_FINISH) {
			if (rd->in_eof) {
				rd->fault = F_TRUNC;
				rd->eof = 1;
				break;
			}
			if (rd->in_pos == 0 && rd->in_len == READ_SIZE) { /* no progress on a full buffer */
				rd->fault = F_CORRUPT;
				rd->eof = 1;
				break;
			}
			rd_refill(r, rd);
		}
	}
	return made;
}

static size_t rd_fill(struct run *r, struct reader *rd, char *dst, size_t cap)
{
	size_t got = rd->codec == TW_CODEC_PLAIN ? rd_plain(r, rd, dst, cap) : rd_inflate(r, rd, dst, cap);
	r->st->bytes_decoded += got;
	return got;
}

/* The reject that says why a file's stream ended early (none for F_NONE and F_IO). */
static const char *fault_reason(const struct run *r, const struct reader *rd, uint64_t records,
				char *buf, size_t n)
{
	const char *kind = rd->codec == TW_CODEC_GZIP ? "gzip" : "zlib";
	switch (rd->fault) {
	case F_NONE:
	case F_IO:
		return NULL;
	case F_TRUNC:
		snprintf(buf, n, "truncated %s stream: the file ends after %llu compressed bytes, "
			 "%llu bytes inflated", kind, (unsigned long long)rd->total_in,
			 (unsigned long long)rd->total_out);
		break;
	case F_CORRUPT:
		snprintf(buf, n, "corrupt %s stream (ISA-L error %d) after %llu bytes inflated", kind,
			 rd->ret, (unsigned long long)rd->total_out);
		break;
	case F_CRC:
		snprintf(buf, n, "%s in member %u of the %s stream", rd->codec == TW_CODEC_GZIP ?
			 "gzip CRC mismatch" : "zlib Adler-32 mismatch", rd->members + 1, kind);
		break;
	case F_TRAILING:
		snprintf(buf, n, "trailing data after the %s stream (%llu bytes inflated before it)", kind,
			 (unsigned long long)rd->total_out);
		break;
	case F_BOMB:
		snprintf(buf, n, "inflated size exceeds %llu bytes, file skipped after record %llu",
			 (unsigned long long)r->lim.max_inflated, (unsigned long long)records);
		break;
	}
	return buf;
}

/* What the splitter's callback fills. */
struct cut {
	struct chunk *c;  /* the chunk being filled */
	uint64_t base;    /* stream offset of c->buf[0] */
	struct tw_err err; /* ENOMEM */
};

static enum tw_rc cut_emit(void *ctx, const struct tw_split_out *o)
{
	struct cut *k = ctx;
	struct item *it = NULL;
	enum tw_rc rc;

	if (o->reject)
		return item_reject(k->c, &o->pos, o->reason, o->p, o->len, &k->err);
	rc = item_push(k->c, &it, &k->err);
	if (rc)
		return rc;
	it->pos = o->pos;
	it->off = (size_t)(o->start - k->base);
	it->len = o->len;
	it->reason = 0;
	return TW_OK;
}

/* Reads, inflates and splits one open file into chunks. name is borrowed for the chunks; owned
 * (may be NULL) is handed to the last chunk. Closes nothing. */
static void ingest_fd(struct run *r, int fd, const char *name, char *owned)
{
	struct tw_split sp;
	struct reader rd;
	struct cut k;
	char why[192];
	const char *reason;
	const size_t room = CHUNK_TARGET + PLAIN_READ;

	r->current = name;
	r->st->files++;
	k.c = chunk_get(r, room);
	if (!k.c) {
		free(owned);
		return;
	}
	k.c->source = name;
	k.base = 0;
	tw_err_clear(&k.err);
	tw_split_init(&sp, r->lim.max_record, 1, 0, 0);
	rd_start(r, &rd, fd);
	while (!r->stop) {
		struct chunk *c = k.c;
		size_t keep = (size_t)(tw_split_keep(&sp) - k.base), got;
		enum tw_rc rc;
		/* Room to read into: cut off the whole records, or drop what the splitter no longer
		 * needs, or grow for one long record (bounded: the splitter lets go past max_record). */
		if (c->n >= CHUNK_TARGET || c->cap - c->n < READ_SIZE || c->aux.n >= CHUNK_TARGET) {
			if (c->nitems) {
				struct chunk *nc = chunk_get(r, (c->n - keep) + room);
				if (!nc)
					break;
				memcpy(nc->buf, c->buf + keep, c->n - keep);
				nc->n = c->n - keep;
				nc->source = name;
				c->n = keep;
				dispatch(r, c);
				k.c = c = nc;
				k.base += keep;
			} else if (keep) {
				memmove(c->buf, c->buf + keep, c->n - keep);
				c->n -= keep;
				k.base += keep;
			}
			if (c->cap - c->n < READ_SIZE && chunk_reserve(c, c->n + room, &k.err) != TW_OK) {
				set_stop(r, TW_ENOMEM, &k.err);
				break;
			}
		}
		/* Fill up to the chunk target (past it only while one long record is pending). */
		got = c->cap - c->n;
		if (c->n < CHUNK_TARGET && got > CHUNK_TARGET - c->n)
			got = CHUNK_TARGET - c->n;
		got = rd_fill(r, &rd, c->buf + c->n, got);
		c->n += got;
		/* A bomb or a read error drops the record in progress; other faults hand it to the
		 * decoder, which says how it is cut. */
		rc = tw_split_feed(&sp, c->buf, c->n, k.base,
				   rd.eof && rd.fault != F_BOMB && rd.fault != F_IO, cut_emit, &k);
		if (rc) {
			set_stop(r, rc, &k.err);
			break;
		}
		if (rd.eof)
			break;
		maybe_progress(r);
	}
	if (rd.fault == F_IO)
		path_error(r, TW_EIO, name, "read failed", rd.ferrno);
	reason = fault_reason(r, &rd, sp.index, why, sizeof why);
	if (reason && !r->stop) {
		struct tw_pos pos = { sp.line, sp.index, rd.total_out };
		if (item_reject(k.c, &pos, reason, NULL, 0, &k.err) != TW_OK)
			set_stop(r, TW_ENOMEM, &k.err);
	}
	k.c->last = 1;
	k.c->owned_name = owned;
	dispatch(r, k.c);
}

/* A file-level reject with no bytes (a special file in a directory). */
static void reject_path(struct run *r, char *owned, const char *reason)
{
	struct tw_pos pos = { 0, 0, 0 };
	struct tw_err err;
	struct chunk *c = chunk_get(r, 0);

	if (!c) {
		free(owned);
		return;
	}
	c->source = owned;
	c->owned_name = owned;
	c->last = 1;
	if (item_reject(c, &pos, reason, NULL, 0, &err) != TW_OK)
		set_stop(r, TW_ENOMEM, &err);
	dispatch(r, c);
}

/* ---- paths ---------------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 if the directory was walked already (a symlink loop or a path given twice); else notes it. */
static int dir_seen(struct run *r, const struct stat *sb)
{
	for (size_t i = 0; i < r->ndirs; i++)
		if (r->dirs[i].dev == sb->st_dev && r->dirs[i].ino == sb->st_ino)
			return 1;
	if (r->ndirs == r->capdirs) {
		size_t cap = r->capdirs ? r->capdirs * 2 : 64;
		struct dirid *p = realloc(r->dirs, cap * sizeof *p);
		if (!p)
			return 0;
		r->dirs = p;
		r->capdirs = cap;
	}
	r->dirs[r->ndirs].dev = sb->st_dev;
	r->dirs[r->ndirs].ino = sb->st_ino;
	r->ndirs++;
	return 0;
}

/* Opens a file and decodes it. `walked`: found in a directory, so anything but a regular file is
 * rejected (never opened in a way that could block); named paths may be FIFOs or ttys. */
static void ingest_file(struct run *r, char *owned, const char *path, const struct stat *sb, int walked)
{
	struct stat fsb;
	int fd, flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;

	if (walked || S_ISREG(sb->st_mode))
		flags |= O_NONBLOCK;
	if (r->lim.regular_only)
		flags |= O_NOFOLLOW | O_NONBLOCK;
	fd = open(path, flags);
	if (fd < 0 && errno == ELOOP && r->lim.regular_only) {
		reject_path(r, owned, "became a symbolic link before it was opened (not followed)");
		return;
	}
	if (fd < 0) {
		path_error(r, errno == ENOENT ? TW_ENOENT : TW_EIO, path, "cannot open", errno);
		free(owned);
		return;
	}
	if (fstat(fd, &fsb) != 0) {
		path_error(r, TW_EIO, path, "cannot stat", errno);
		close(fd);
		free(owned);
		return;
	}
	if (!S_ISREG(fsb.st_mode) &&
	    (walked || r->lim.regular_only || !(S_ISFIFO(fsb.st_mode) || S_ISCHR(fsb.st_mode)))) {
		close(fd);
		reject_path(r, owned, "not a regular file");
		return;
	}
	if (flags & O_NONBLOCK)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	ingest_fd(r, fd, path, owned);
	close(fd);
}

static void walk(struct run *r, const char *path, const struct stat *sb, unsigned depth)
{
	DIR *dir;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	size_t plen = strlen(path);

	if (dir_seen(r, sb))
		return;
	if (depth >= MAX_DIR_DEPTH) {
		errno = ELOOP;
		path_error(r, TW_ELIMIT, path, "directories nested too deep", ELOOP);
		return;
	}
	dir = opendir(path);
	if (!dir) {
		path_error(r, errno == ENOENT ? TW_ENOENT : TW_EIO, path, "cannot open directory", errno);
		return;
	}
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **p = realloc(names, nc * sizeof *p);
			if (!p)
				break;
			names = p;
			cap = nc;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	if (errno)
		path_error(r, TW_EIO, path, "cannot read directory", errno);
	closedir(dir);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n; i++) {
		size_t len = plen + 1 + strlen(names[i]) + 1;
		char *full = r->stop ? NULL : malloc(len);
		struct stat csb;
		if (full) {
			snprintf(full, len, "%s%s%s", path, plen && path[plen - 1] == '/' ? "" : "/", names[i]);
			if (stat(full, &csb) != 0) {
				int e = errno;
				char why[160];
				/* A symbolic link that loops or dangles is bad input in the tree, not an
				 * I/O error of ours: each one is rejected by name (and quarantined). */
				if (lstat(full, &csb) == 0 && S_ISLNK(csb.st_mode)) {
					snprintf(why, sizeof why, "symbolic link %s: %s",
						 e == ELOOP ? "loops" : "leads nowhere", strerror(e));
					reject_path(r, full, why);
				} else {
					path_error(r, e == ENOENT ? TW_ENOENT : TW_EIO, full, "cannot stat", e);
					free(full);
				}
			} else if (S_ISDIR(csb.st_mode)) {
				walk(r, full, &csb, depth + 1);
				free(full);
			} else if (S_ISREG(csb.st_mode)) {
				ingest_file(r, full, full, &csb, 1);
			} else {
				reject_path(r, full, "not a regular file");
			}
		}
		free(names[i]);
	}
	free(names);
}

static void ingest_path(struct run *r, const char *path)
{
	struct stat sb;

	if (!strcmp(path, "-")) {
		ingest_fd(r, STDIN_FILENO, "-", NULL);
		return;
	}
	if ((r->lim.regular_only ? lstat(path, &sb) : stat(path, &sb)) != 0) {
		path_error(r, errno == ENOENT ? TW_ENOENT : TW_EIO, path, "cannot stat", errno);
		return;
	}
	if (r->lim.regular_only && !S_ISREG(sb.st_mode)) {
		char *o = strdup(path);
		struct tw_err err;
		if (!o) {
			tw_err_set(&err, TW_ENOMEM, "out of memory");
			set_stop(r, TW_ENOMEM, &err);
			return;
		}
		reject_path(r, o, S_ISLNK(sb.st_mode) ? "a symbolic link (not followed here)" : "not a regular file");
		return;
	}
	if (S_ISDIR(sb.st_mode)) {
		walk(r, path, &sb, 0);
		return;
	}
	char *owned = strdup(path);
	if (!owned) {
		struct tw_err err;
		tw_err_set(&err, TW_ENOMEM, "out of memory");
		set_stop(r, TW_ENOMEM, &err);
		return;
	}
	ingest_file(r, owned, owned, &sb, 0);
}

enum tw_rc tw_ingest_paths(const char *const *paths, size_t npaths, const struct tw_ingest_limits *lim,
			   struct tw_sink *sink, const struct tw_ingest_hooks *hooks,
			   struct tw_ingest_stats *st, struct tw_err *err)
{
	struct run r;
	enum tw_rc rc;
	long cores;

	tw_err_clear(err);
	if (!sink || !sink->on_batch || !st || (npaths && !paths))
		return tw_err_set(err, TW_EINVAL, "tw_ingest_paths: missing sink, stats or paths");
	memset(&r, 0, sizeof r);
	tw_ingest_limits_fill(&r.lim, lim);
	r.sink = sink;
	r.hooks = hooks;
	r.st = st;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	r.nworkers = r.lim.threads ? r.lim.threads : (cores > 0 ? (unsigned)cores : 1);
	if (r.nworkers > 256)
		r.nworkers = 256;
	r.pool = r.nworkers <= 1 ? 3 : 2 * (size_t)r.nworkers + 2;
	r.last_progress = now_ns();
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.work_cv, NULL);
	pthread_cond_init(&r.done_cv, NULL);
	r.in = malloc(READ_SIZE);
	r.inf = malloc(sizeof *r.inf);
	if (!r.in || !r.inf) {
		tw_err_set(&r.stop_err, TW_ENOMEM, "out of memory starting ingest");
		r.stop = TW_ENOMEM;
	}
	for (size_t i = 0; i < npaths && !r.stop; i++)
		ingest_path(&r, paths[i]);

	/* Drain: deliver what is decoded (or discard it if the run stopped), then stop workers. */
	if (r.stop) {
		pthread_mutex_lock(&r.mu);
		r.abort = 1;
		pthread_mutex_unlock(&r.mu);
	}
	while (r.head)
		deliver_oldest(&r);
	pthread_mutex_lock(&r.mu);
	r.quit = 1;
	pthread_cond_broadcast(&r.work_cv);
	pthread_mutex_unlock(&r.mu);
	for (unsigned i = 0; i < r.started; i++)
		pthread_join(r.tids[i], NULL);
	while (r.free) {
		struct chunk *c = r.free;
		r.free = c->next;
		chunk_free(c);
	}
	free(r.tids);
	free(r.queue);
	free(r.in);
	free(r.inf);
	free(r.dirs);
	pthread_cond_destroy(&r.work_cv);
	pthread_cond_destroy(&r.done_cv);
	pthread_mutex_destroy(&r.mu);

	if (r.stop) {
		if (err)
			*err = r.stop_err;
		rc = r.stop;
	} else if (r.path_rc) {
		if (err)
			*err = r.path_err;
		rc = r.path_rc;
	} else {
		rc = TW_OK;
	}
	return rc;
}
