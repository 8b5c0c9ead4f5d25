/* SPDX-License-Identifier: Apache-2.0 */
/* cli/detectors.c: the behaviour detectors beside the store (alerts/insight.h, alerts/firstseen.h).
 * The metrics path hands over every newly stored CloudTrail event; events wait here until their
 * period is closed (event time), then go to the detectors in time order, whatever order the files
 * came in. Findings are appended to STORE/anomalies/anomalies.jsonl (fsynced) and only then are the
 * detectors' states saved (insight.state, firstseen.state: write, fsync, rename) and the callback
 * told. A crash loses at most the events of periods not yet closed, as for the metrics.
 * A waiting event keeps its eventID in a pool and its other strings as ids into a table of distinct
 * strings (accounts, regions, APIs, principals, addresses and user agents repeat: a backfill holds
 * every event until it ends, and a copy of each event's strings was most of its memory). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts/firstseen.h"
#include "alerts/insight.h"
#include "cli/cli.h"
#include "core/hash.h"

#define NF 9                        /* strings kept per waiting event */
#define NI (NF - 1)                 /* ... of which interned (all but the eventID, the last) */
#define TAB_KEEP 65536              /* distinct strings kept across advances (then rebuilt) */
#define MAX_WAITING (2u << 20)      /* waiting events before the oldest half is processed early */
#define POOL_MAX ((size_t)1 << 31)  /* bytes of waiting strings */
#define STATE_MAX ((size_t)1 << 30) /* largest state file read */

/* The fields kept, in this order. */
static const enum tw_field kept[NF] = { TW_F_ACCOUNT,   TW_F_REGION,    TW_F_EVENT_SOURCE,
					TW_F_EVENT_NAME, TW_F_PRINCIPAL, TW_F_SOURCE_IP,
					TW_F_USER_AGENT, TW_F_ERROR_CODE, TW_F_EVENT_ID };

/* One event waiting for its period to close. */
struct wait {
	int64_t t;        /* eventTime */
	uint64_t seq;     /* arrival order (ties) */
	size_t off;       /* its eventID in the pool */
	uint32_t id[NI];  /* its other strings (cut at 65535 bytes) in the string table; 0 = empty */
	uint16_t elen;    /* length of the eventID (cut at 65535) */
};

/* Distinct strings, each once: id k >= 1 is bytes[off[k] .. off[k] + len[k]). */
struct strtab {
	struct tw_buf bytes; /* the strings, back to back */
	uint32_t *off;       /* [cap] offset of string k */
	uint16_t *len;       /* [cap] its length */
	uint64_t *hash;      /* [cap] its hash */
	uint32_t n, cap;     /* ids in use (id 0 included), allocated */
	uint32_t *slot;      /* open addressing: id, 0 = empty */
	uint32_t nslot;      /* slots (a power of two) */
};

struct tw_cli_detectors {
	int64_t wmin;               /* the oldest time among the waiting events (when nw > 0) */
	struct tw_insight *ins;     /* rate insights */
	struct tw_firstseen *fs;    /* first-seen */
	char dir[4096];             /* STORE/anomalies */
	int fd;                     /* anomalies.jsonl, O_APPEND */
	struct wait *w;             /* waiting events */
	size_t nw, capw;            /* used, allocated */
	struct tw_buf pool;         /* their eventIDs */
	struct strtab tab;          /* their other strings */
	uint64_t seq;               /* next arrival number */
	int64_t closed;             /* events before this are late (INT64_MIN: none) */
	uint64_t late;              /* events dropped as late */
	struct tw_anomaly *found;   /* findings of the advance in progress */
	size_t nfound, capfound;    /* used, allocated */
	int oom;                    /* a finding could not be kept */
	struct tw_buf line;         /* JSON scratch */
	void (*cb)(void *ctx, const struct tw_anomaly *a); /* on each durable finding */
	void *cb_ctx;               /* its context */
	int failed;                 /* sticky failure */
	struct tw_err err;          /* the first failure */
};

static int advance(struct tw_cli_detectors *d, int64_t closed_until, int flush_all, int early, struct tw_err *err);

static void collect(void *ctx, const struct tw_anomaly *a)
{
	struct tw_cli_detectors *d = ctx;
	if (d->nfound == d->capfound) {
		size_t cap = d->capfound ? d->capfound * 2 : 16;
		struct tw_anomaly *n = realloc(d->found, cap * sizeof *n);
		if (!n) {
			d->oom = 1;
			return;
		}
		d->found = n;
		d->capfound = cap;
	}
	d->found[d->nfound++] = *a;
}

/* ---- the string table --------------------------------------------------------------------------- */

static void tab_init(struct strtab *t)
{
	memset(t, 0, sizeof *t);
	tw_buf_init(&t->bytes, POOL_MAX);
}

static void tab_free(struct strtab *t)
{
	tw_buf_free(&t->bytes);
	free(t->off);
	free(t->len);
	free(t->hash);
	free(t->slot);
	memset(t, 0, sizeof *t);
}

static int tab_grow_slots(struct strtab *t)
{
	uint32_t ns = t->nslot ? t->nslot * 2 : 1024;
	uint32_t *sl = calloc(ns, sizeof *sl);

	if (!sl)
		return -1;
	for (uint32_t k = 1; k < t->n; k++) {
		uint32_t i = (uint32_t)t->hash[k] & (ns - 1);
		while (sl[i])
			i = (i + 1) & (ns - 1);
		sl[i] = k;
	}
	free(t->slot);
	t->slot = sl;
	t->nslot = ns;
	return 0;
}

/* The id of s (at most 65535 bytes), added when new; 0 for the empty string. 0 or -1 (err). */
static int tab_intern(struct strtab *t, const char *p, size_t n, uint32_t *id, struct tw_err *err)
{
	uint64_t h;
	uint32_t i;

	if (!n) {
		*id = 0;
		return 0;
	}
	h = tw_hash_final(tw_hash_bytes(TW_HASH_SEED, p, n));
	if (t->nslot)
		for (i = (uint32_t)h & (t->nslot - 1); t->slot[i]; i = (i + 1) & (t->nslot - 1)) {
			uint32_t k = t->slot[i];
			if (t->hash[k] == h && t->len[k] == n && !memcmp(t->bytes.p + t->off[k], p, n)) {
				*id = k;
				return 0;
			}
		}
	if (!t->n)
		t->n = 1; /* id 0 is the empty string */
	if (t->n == UINT32_MAX)
		return tw_err_set(err, TW_ELIMIT, "detectors: too many distinct strings"), -1;
	if ((uint64_t)(t->n + 1) * 2 > t->nslot && tab_grow_slots(t))
		return tw_err_set(err, TW_ENOMEM, "detectors: out of memory"), -1;
	if (t->n >= t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 1024;
		uint32_t *o = realloc(t->off, cap * sizeof *o);
		uint16_t *l;
		uint64_t *hh;
		if (o)
			t->off = o;
		l = o ? realloc(t->len, cap * sizeof *l) : NULL;
		if (l)
			t->len = l;
		hh = l ? realloc(t->hash, cap * sizeof *hh) : NULL;
		if (!hh)
			return tw_err_set(err, TW_ENOMEM, "detectors: out of memory"), -1;
		t->hash = hh;
		t->cap = cap;
	}
	if (t->bytes.n + n > UINT32_MAX)
		return tw_err_set(err, TW_ELIMIT, "detectors: waiting strings over 4 GB"), -1;
	t->off[t->n] = (uint32_t)t->bytes.n;
	if (tw_buf_append(&t->bytes, p, n, err))
		return -1;
	t->len[t->n] = (uint16_t)n;
	t->hash[t->n] = h;
	for (i = (uint32_t)h & (t->nslot - 1); t->slot[i]; i = (i + 1) & (t->nslot - 1))
		;
	t->slot[i] = t->n;
	*id = t->n++;
	return 0;
}

static struct tw_str tab_get(const struct strtab *t, uint32_t id)
{
	return id ? (struct tw_str){ t->bytes.p + t->off[id], t->len[id] } : (struct tw_str){ NULL, 0 };
}

static int read_file(const char *path, char **out, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long sz;

	*out = NULL;
	*n = 0;
	if (!f)
		return errno == ENOENT ? 1 : -1;
	if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || (size_t)sz > STATE_MAX || fseek(f, 0, SEEK_SET) ||
	    !(p = malloc((size_t)sz + 1)) || fread(p, 1, (size_t)sz, f) != (size_t)sz) {
		free(p);
		fclose(f);
		return -1;
	}
	fclose(f);
	*out = p;
	*n = (size_t)sz;
	return 0;
}

static int write_atomic(const char *path, const void *p, size_t n)
{
	char tmp[4200];
	int fd, ok;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	ok = write(fd, p, n) == (ssize_t)n && !fsync(fd);
	ok = !close(fd) && ok && !rename(tmp, path);
	return ok ? 0 : -1;
}

int tw_cli_detectors_open(const char *store, struct tw_cli_detectors **out, struct tw_err *err)
{
	struct tw_cli_detectors *d = calloc(1, sizeof *d);
	char path[4200], *buf;
	size_t n;
	int r;

	if (!d)
		return tw_err_set(err, TW_ENOMEM, "detectors: out of memory"), -1;
	d->fd = -1;
	d->closed = INT64_MIN;
	tw_buf_init(&d->pool, POOL_MAX);
	tab_init(&d->tab);
	tw_buf_init(&d->line, 1 << 20);
	if (snprintf(d->dir, sizeof d->dir, "%s/anomalies", store) >= (int)sizeof d->dir) {
		tw_err_set(err, TW_EINVAL, "%s: path too long", store);
		goto fail;
	}
	if (mkdir(d->dir, 0700) && errno != EEXIST) {
		tw_err_set(err, TW_EIO, "%s: %s", d->dir, strerror(errno));
		goto fail;
	}
	if (tw_insight_new(NULL, &d->ins, err) || tw_firstseen_new(NULL, &d->fs, err))
		goto fail;
	snprintf(path, sizeof path, "%s/insight.state", d->dir);
	if ((r = read_file(path, &buf, &n)) < 0) {
		tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (r == 0) {
		enum tw_rc rc = tw_insight_load(d->ins, buf, n, err);
		free(buf);
		if (rc) {
			tw_err_prefix(err, "%s", path);
			goto fail;
		}
		d->closed = tw_insight_closed(d->ins);
	}
	snprintf(path, sizeof path, "%s/firstseen.state", d->dir);
	if ((r = read_file(path, &buf, &n)) < 0) {
		tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (r == 0) {
		enum tw_rc rc = tw_firstseen_load(d->fs, buf, n, err);
		free(buf);
		if (rc) {
			tw_err_prefix(err, "%s", path);
			goto fail;
		}
	}
	snprintf(path, sizeof path, "%s/anomalies.jsonl", d->dir);
	if ((d->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	tw_cli_detectors_close(d);
	return -1;
}

void tw_cli_detectors_on_anomaly(struct tw_cli_detectors *d, void (*fn)(void *ctx, const struct tw_anomaly *a),
				 void *ctx)
{
	d->cb = fn;
	d->cb_ctx = ctx;
}

static int fail(struct tw_cli_detectors *d, struct tw_err *err)
{
	d->failed = 1;
	d->err = *err;
	return -1;
}

int tw_cli_detectors_feed(struct tw_cli_detectors *d, const struct tw_batch *b, const unsigned char *dup,
			  struct tw_err *err)
{
	if (d->failed) {
		*err = d->err;
		return -1;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct tw_event *ev = &b->ev[i];
		struct wait *w;
		if ((dup && dup[i]) || ev->kind != TW_KIND_CLOUDTRAIL)
			continue;
		if (d->closed != INT64_MIN && ev->time_ms < d->closed) {
			d->late++;
			continue;
		}
		if (d->nw == d->capw) {
			size_t cap = d->capw ? d->capw * 2 : 4096;
			struct wait *nw = realloc(d->w, cap * sizeof *nw);
			if (!nw) {
				tw_err_set(err, TW_ENOMEM, "detectors: out of memory");
				return fail(d, err);
			}
			d->w = nw;
			d->capw = cap;
		}
		w = &d->w[d->nw];
		w->t = ev->time_ms;
		if (!d->nw || ev->time_ms < d->wmin)
			d->wmin = ev->time_ms;
		w->seq = d->seq++;
		for (int f = 0; f < NI; f++) {
			struct tw_str s = ev->f[kept[f]];
			if (tab_intern(&d->tab, s.p, s.n > 65535 ? 65535 : s.n, &w->id[f], err))
				return fail(d, err);
		}
		{
			struct tw_str s = ev->f[kept[NI]];
			w->off = d->pool.n;
			w->elen = (uint16_t)(s.n > 65535 ? 65535 : s.n);
			if (w->elen && tw_buf_append(&d->pool, s.p, w->elen, err))
				return fail(d, err);
		}
		d->nw++;
		/* too much waiting: process the oldest half now (later events before it are late) */
		if (d->nw >= MAX_WAITING && advance(d, INT64_MIN, 0, 1, err))
			return -1;
	}
	return 0;
}

static int wait_cmp(const void *a, const void *b)
{
	const struct wait *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int found_cmp(const void *a, const void *b)
{
	const struct tw_anomaly *x = a, *y = b;
	int64_t tx = strcmp(x->phase, "end") ? x->start_ms : x->end_ms;
	int64_t ty = strcmp(y->phase, "end") ? y->start_ms : y->end_ms;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(x->id, y->id);
}

static struct tw_str fieldof(const struct tw_cli_detectors *d, const struct wait *w, int f)
{
	if (f < NI)
		return tab_get(&d->tab, w->id[f]);
	return (struct tw_str){ w->elen ? d->pool.p + w->off : NULL, w->elen };
}

/* After an advance took events out: the strings of those still waiting into a fresh table, when
 * the table holds many more than they need (none waiting: an empty one). 0 or -1 (err). */
static int tab_trim(struct tw_cli_detectors *d, struct tw_err *err)
{
	struct strtab nt;

	if (!d->nw) {
		tab_free(&d->tab);
		tab_init(&d->tab);
		return 0;
	}
	if (d->tab.n <= TAB_KEEP || d->tab.n / NI <= 4 * d->nw)
		return 0;
	tab_init(&nt);
	for (size_t i = 0; i < d->nw; i++)
		for (int f = 0; f < NI; f++) {
			struct tw_str s = tab_get(&d->tab, d->w[i].id[f]);
			if (tab_intern(&nt, s.p, s.n, &d->w[i].id[f], err)) {
				tab_free(&nt);
				return -1;
			}
		}
	tab_free(&d->tab);
	d->tab = nt;
	return 0;
}

static int save_states(struct tw_cli_detectors *d, struct tw_err *err)
{
	struct tw_buf b;
	char path[4200];
	int rc = 0;

	tw_buf_init(&b, STATE_MAX);
	if (tw_insight_save(d->ins, &b, err))
		rc = -1;
	snprintf(path, sizeof path, "%s/insight.state", d->dir);
	if (!rc && write_atomic(path, b.p, b.n)) {
		tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	b.n = 0;
	if (!rc && tw_firstseen_save(d->fs, &b, err))
		rc = -1;
	snprintf(path, sizeof path, "%s/firstseen.state", d->dir);
	if (!rc && write_atomic(path, b.p, b.n)) {
		tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	tw_buf_free(&b);
	return rc;
}

/* early: called from feed when too many events wait: processes the older half. */
static int advance(struct tw_cli_detectors *d, int64_t closed_until, int flush_all, int early, struct tw_err *err)
{
	size_t due = 0, keep;
	struct tw_buf pool;

	if (d->failed) {
		*err = d->err;
		return -1;
	}
	/* nothing newly closed (0: the metrics never closed a period, e.g. during a backfill): the
	 * waiting events stay as they are; sorting and repacking them at every batch made a backfill
	 * quadratic (1M events: 89 s instead of 11 s) */
	if (!early && (closed_until <= 0 || (d->closed != INT64_MIN && closed_until <= d->closed)) && !flush_all)
		return 0;
	if (!early && closed_until == INT64_MIN)
		closed_until = d->closed;
	/* sort only when some waiting event is due: during a backfill the closed mark moves through
	 * empty time (a month of lateness) while everything waits, and sorting it all each time was
	 * quadratic */
	if (d->nw && (early || flush_all || d->wmin < closed_until))
		qsort(d->w, d->nw, sizeof *d->w, wait_cmp);
	else if (d->nw)
		goto scanned; /* nothing due: due stays 0 */
	if (early) {
		due = d->nw / 2;
		closed_until = d->w[due].t; /* everything before the median: events of equal time stay */
		while (due > 0 && d->w[due - 1].t >= closed_until)
			due--;
	} else
		while (due < d->nw && d->w[due].t < closed_until)
			due++;
scanned:
	d->nfound = 0;
	d->oom = 0;
	for (size_t i = 0; i < due; i++) {
		const struct wait *w = &d->w[i];
		struct tw_insight_obs io = { w->t,
					     fieldof(d, w, 0),
					     fieldof(d, w, 1),
					     fieldof(d, w, 2),
					     fieldof(d, w, 3),
					     fieldof(d, w, 4),
					     fieldof(d, w, 6),
					     fieldof(d, w, 7),
					     fieldof(d, w, 8) };
		struct tw_firstseen_obs fo = { w->t,
					       fieldof(d, w, 0),
					       fieldof(d, w, 1),
					       fieldof(d, w, 2),
					       fieldof(d, w, 3),
					       fieldof(d, w, 4),
					       fieldof(d, w, 5),
					       fieldof(d, w, 6),
					       fieldof(d, w, 8) };
		if (tw_insight_observe(d->ins, &io, collect, d, err) || tw_firstseen_observe(d->fs, &fo, collect, d, err))
			return fail(d, err);
	}
	if (tw_insight_advance(d->ins, closed_until, collect, d, err))
		return fail(d, err);
	tw_firstseen_advance(d->fs, closed_until, flush_all && !early, collect, d);
	if (d->oom) {
		tw_err_set(err, TW_ENOMEM, "detectors: out of memory");
		return fail(d, err);
	}
	/* the events still waiting move to a fresh pool (when some were taken out) */
	keep = d->nw - due;
	tw_buf_init(&pool, POOL_MAX);
	for (size_t i = 0; due && i < keep; i++) {
		struct wait *w = &d->w[due + i];
		size_t n = w->elen, off = pool.n;
		if (n && tw_buf_append(&pool, d->pool.p + w->off, n, err)) {
			tw_buf_free(&pool);
			return fail(d, err);
		}
		w->off = off;
	}
	if (keep && due)
		memmove(d->w, d->w + due, keep * sizeof *d->w);
	d->nw = keep;
	if (due) { /* sorted: the oldest still waiting is first */
		d->wmin = keep ? d->w[0].t : INT64_MAX;
	}
	if (due) {
		tw_buf_free(&d->pool);
		d->pool = pool;
		if (tab_trim(d, err))
			return fail(d, err);
	} else {
		tw_buf_free(&pool);
	}
	if (d->closed == INT64_MIN || closed_until > d->closed)
		d->closed = closed_until;
	/* findings durable, then the states, then the callback */
	if (d->nfound) {
		qsort(d->found, d->nfound, sizeof *d->found, found_cmp);
		int bad = 0;
		d->line.n = 0;
		for (size_t i = 0; i < d->nfound && !bad; i++) {
			if (tw_anomaly_write_json(&d->found[i], &d->line, err))
				return fail(d, err);
			if (d->line.n > (256u << 10) || i + 1 == d->nfound) {
				bad = write(d->fd, d->line.p, d->line.n) != (ssize_t)d->line.n;
				d->line.n = 0;
			}
		}
		if (bad || fsync(d->fd)) {
			tw_err_set(err, TW_EIO, "%s/anomalies.jsonl: %s", d->dir, strerror(errno));
			return fail(d, err);
		}
	}
	if (save_states(d, err))
		return fail(d, err);
	if (d->cb)
		for (size_t i = 0; i < d->nfound; i++)
			d->cb(d->cb_ctx, &d->found[i]);
	d->nfound = 0;
	return 0;
}

int tw_cli_detectors_advance(struct tw_cli_detectors *d, int64_t closed_until, int flush_all, struct tw_err *err)
{
	return advance(d, closed_until, flush_all, 0, err);
}

const char *tw_cli_detectors_failure(const struct tw_cli_detectors *d)
{
	return d && d->failed ? d->err.msg : NULL;
}

void tw_cli_detectors_close(struct tw_cli_detectors *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	tw_insight_free(d->ins);
	tw_firstseen_free(d->fs);
	free(d->w);
	free(d->found);
	tw_buf_free(&d->pool);
	tab_free(&d->tab);
	tw_buf_free(&d->line);
	free(d);
}
