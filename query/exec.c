/* SPDX-License-Identifier: Apache-2.0 */
/* query/exec.c: the streaming executor. Events are pushed one at a time (borrowed); the commands
 * up to the first sort or stats run on each event as it arrives, the rest run on the kept rows at
 * finish. Knows nothing of the store: the planner decides which events to push.
 *
 * Invariants:
 *  1. Memory is bounded by tw_qexec_opts: kept events (max_rows, max_bytes), stats groups
 *     (max_groups), dedup and count_distinct set entries (max_rows); past a cap: TW_ELIMIT.
 *  2. "limit N" before any sort or stats stops the stream (done) once N events passed it.
 *     "sort ... | limit N" (only fields between) keeps a heap of the N best rows, ties broken by
 *     arrival order, so the result equals a stable sort followed by the limit.
 *  3. Every kept event is one malloc holding the event, its resources, its sort keys and all
 *     their bytes; nothing points into the pushed event after push returns.
 *
 *   push(ev) ─▶ [filter|fields|dedup|limit]* ─▶ block: none  -> rows (event copies)
 *                                                      sort  -> rows or top-N heap
 *                                                      stats -> groups
 *   finish() ─▶ rows/groups ─▶ [remaining commands over rows] ─▶ tw_qexec_row() */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_int.h"

/* ---- a set of byte strings -------------------------------------------------------------------- */
struct hent {
	uint64_t h;    /* hash of the key; 0 marks an empty slot */
	const char *k; /* key bytes (in the executor's keep arena) */
	uint32_t n;    /* key length */
	uint32_t v;    /* value (group index) */
};

struct hset {
	struct hent *e; /* slots (power of two) */
	size_t cap;     /* slots allocated */
	size_t n;       /* slots in use */
};

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	h ^= h >> 29;
	return h ? h : 1;
}

/* Finds k; when absent adds it with value v (copying k into a) and sets *added. *vout gets the value. */
static enum tw_rc hset_put(struct hset *s, struct tw_arena *a, const char *k, size_t n, uint32_t v, uint32_t *vout,
			   int *added, size_t max, struct tw_err *err)
{
	*added = 0;
	if ((s->n + 1) * 10 > s->cap * 7) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		struct hent *ne = calloc(nc, sizeof *ne);
		if (!ne)
			return tw_err_set(err, TW_ENOMEM, "out of memory growing a query hash table to %zu slots", nc);
		for (size_t i = 0; i < s->cap; i++)
			if (s->e[i].h) {
				size_t j = s->e[i].h & (nc - 1);
				while (ne[j].h)
					j = (j + 1) & (nc - 1);
				ne[j] = s->e[i];
			}
		free(s->e);
		s->e = ne;
		s->cap = nc;
	}
	uint64_t h = hash(k, n);
	size_t j = h & (s->cap - 1);
	while (s->e[j].h) {
		if (s->e[j].h == h && s->e[j].n == n && !memcmp(s->e[j].k, k, n)) {
			*vout = s->e[j].v;
			return TW_OK;
		}
		j = (j + 1) & (s->cap - 1);
	}
	if (s->n >= max)
		return TW_ELIMIT; /* the caller writes the message */
	char *c = tw_arena_alloc(a, n ? n : 1, err);
	if (!c)
		return err ? err->rc : TW_ENOMEM;
	memcpy(c, k, n);
	s->e[j] = (struct hent){ h, c, (uint32_t)n, v };
	s->n++;
	*vout = v;
	*added = 1;
	return TW_OK;
}

static void hset_free(struct hset *s)
{
	free(s->e);
	memset(s, 0, sizeof *s);
}

/* ---- rows and groups --------------------------------------------------------------------------- */
struct qrow {
	struct tw_event *ev;   /* event row: owned copy (one malloc with keys); NULL for table rows */
	struct tw_qval *keys;  /* sort keys of the current sort (in the ev block or the keep arena) */
	struct tw_qval *vals;  /* table row: ncols values (keep arena) */
	uint64_t seq;          /* arrival order (tie-breaker) */
	size_t bytes;          /* bytes of the ev block */
};

struct aggst {
	uint64_t n;         /* values counted */
	double d;           /* sum, min or max */
	int64_t t;          /* earliest/latest: time of the kept value */
	struct tw_qval v;   /* earliest/latest: the value (s malloc'd) */
};

struct grp {
	struct tw_qval *keys; /* by values (keep arena) */
	struct aggst *st;     /* one per aggregate */
};

struct tw_qexec {
	const struct tw_query *q;    /* borrowed */
	struct tw_qexec_opts o;      /* caps */
	struct tw_arena scratch;     /* per push / per row values */
	struct tw_arena keep;        /* set keys, group keys, table strings */
	struct tw_buf key;           /* serialized key being built */
	size_t block;                /* first sort or stats command (ncmds if none) */
	uint64_t *count;             /* per command: events passed (limit) */
	struct hset *sets;           /* per command: dedup sets */
	int done;                    /* a leading limit is full */
	int finished;                /* tw_qexec_finish ran */
	uint64_t topn;               /* sort followed by limit: heap size; 0 = keep all */
	struct qrow *rows;           /* kept rows (a heap while topn) */
	size_t nrows, caprows;       /* rows in use / allocated */
	size_t bytes;                /* bytes of kept events */
	uint64_t seq;                /* next arrival number */
	const struct qcmd_s *scmd;   /* the stats command being fed, or NULL */
	struct hset groups;          /* group key -> index */
	struct grp *g;               /* groups */
	size_t ng, capg;             /* groups in use / allocated */
	struct hset distinct;        /* (group, aggregate, value) for count_distinct */
	int stats;                   /* rows are table rows */
	struct tw_str *tcols;        /* table column names */
	size_t tncols;               /* table columns */
	const struct qfield *proj;   /* projection (fields), or NULL */
	size_t nproj;                /* fields in proj */
	struct tw_str *pcols;        /* projection column names */
	struct tw_qval *rowbuf;      /* values handed out by tw_qexec_row */
};

static void row_free(struct qrow *r)
{
	free(r->ev);
	r->ev = NULL;
}

void tw_qexec_free(struct tw_qexec *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->nrows; i++)
		row_free(&x->rows[i]);
	free(x->rows);
	if (x->sets)
		for (size_t k = 0; k < x->q->ncmds; k++)
			hset_free(&x->sets[k]);
	free(x->sets);
	free(x->count);
	for (size_t i = 0; i < x->ng; i++) {
		for (size_t k = 0; x->scmd && k < x->scmd->naggs; k++)
			free((char *)x->g[i].st[k].v.s.p);
		free(x->g[i].st);
	}
	free(x->g);
	hset_free(&x->groups);
	hset_free(&x->distinct);
	free(x->tcols);
	free(x->pcols);
	free(x->rowbuf);
	tw_buf_free(&x->key);
	tw_arena_free(&x->scratch);
	tw_arena_free(&x->keep);
	free(x);
}

enum tw_rc tw_qexec_new(const struct tw_query *q, const struct tw_qexec_opts *opts, struct tw_qexec **out,
			struct tw_err *err)
{
	struct tw_qexec *x = calloc(1, sizeof *x);
	if (!x)
		return tw_err_set(err, TW_ENOMEM, "out of memory for a query executor");
	x->q = q;
	if (opts)
		x->o = *opts;
	if (!x->o.max_groups)
		x->o.max_groups = 1000000;
	if (!x->o.max_rows)
		x->o.max_rows = 1000000;
	if (!x->o.max_bytes)
		x->o.max_bytes = (size_t)512 << 20;
	tw_arena_init(&x->scratch, 4096, 0);
	tw_arena_init(&x->keep, 65536, 0);
	tw_buf_init(&x->key, (size_t)64 << 20);
	x->count = calloc(q->ncmds + 1, sizeof *x->count);
	x->sets = calloc(q->ncmds + 1, sizeof *x->sets);
	if (!x->count || !x->sets) {
		tw_qexec_free(x);
		return tw_err_set(err, TW_ENOMEM, "out of memory for a query executor");
	}
	x->block = 0;
	while (x->block < q->ncmds && q->cmds[x->block].kind != QCMD_SORT && q->cmds[x->block].kind != QCMD_STATS)
		x->block++;
	if (x->block < q->ncmds && q->cmds[x->block].kind == QCMD_SORT) {
		for (size_t k = x->block + 1; k < q->ncmds; k++) {
			if (q->cmds[k].kind == QCMD_FIELDS)
				continue;
			if (q->cmds[k].kind == QCMD_LIMIT)
				x->topn = q->cmds[k].limit;
			break;
		}
	}
	if (x->block < q->ncmds && q->cmds[x->block].kind == QCMD_STATS)
		x->scmd = &q->cmds[x->block];
	*out = x;
	return TW_OK;
}

/* Appends v to x->key in a form where equal values give equal bytes. */
static enum tw_rc key_add(struct tw_qexec *x, const struct tw_qval *v, struct tw_err *err)
{
	char t = (char)v->type;
	enum tw_rc rc = tw_buf_putc(&x->key, t, err);
	if (rc || v->type == TW_QV_NULL)
		return rc;
	if (v->type == TW_QV_NUM) {
		double d = v->num == 0 ? 0 : v->num;
		return tw_buf_append(&x->key, &d, sizeof d, err);
	}
	uint32_t n = (uint32_t)v->s.n;
	if ((rc = tw_buf_append(&x->key, &n, sizeof n, err)))
		return rc;
	return tw_buf_append(&x->key, v->s.p, v->s.n, err);
}

/* Copies v's bytes into the keep arena. */
static enum tw_rc keep_val(struct tw_qexec *x, struct tw_qval *v, struct tw_err *err)
{
	if (!v->s.n) {
		v->s = TW_STR_LIT("");
		return TW_OK;
	}
	return tw_arena_dup(&x->keep, v->s, &v->s, err);
}

static enum tw_rc limit_err(struct tw_err *err, const char *what, size_t max, const char *hint)
{
	return tw_err_set(err, TW_ELIMIT, "query keeps more than %zu %s; %s", max, what, hint);
}

/* ---- stats ------------------------------------------------------------------------------------- */
/* The group of the key in x->key (built by key_add from keys[0..c->nby)): found, or created with
 * copies of keys. */
static enum tw_rc stats_group(struct tw_qexec *x, const struct qcmd_s *c, const struct tw_qval *keys, uint32_t *gi,
			      struct tw_err *err)
{
	int added;
	enum tw_rc rc = hset_put(&x->groups, &x->keep, x->key.p ? x->key.p : "", x->key.n, (uint32_t)x->ng, gi,
				 &added, x->o.max_groups, err);
	if (rc == TW_ELIMIT)
		return limit_err(err, "stats groups", x->o.max_groups, "narrow the filter or group by fewer fields");
	if (rc || !added)
		return rc;
	if (x->ng == x->capg) {
		size_t nc = x->capg ? x->capg * 2 : 64;
		struct grp *ng = realloc(x->g, nc * sizeof *ng);
		if (!ng)
			return tw_err_set(err, TW_ENOMEM, "out of memory for %zu stats groups", nc);
		x->g = ng;
		x->capg = nc;
	}
	struct grp *g = &x->g[x->ng];
	g->keys = tw_arena_alloc(&x->keep, (c->nby + 1) * sizeof *g->keys, err);
	g->st = calloc(c->naggs + 1, sizeof *g->st);
	if (!g->keys || !g->st) {
		free(g->st);
		return tw_err_set(err, TW_ENOMEM, "out of memory for a stats group");
	}
	for (size_t k = 0; k < c->nby; k++) {
		g->keys[k] = keys[k];
		if (c->by[k].is_bin)
			g->keys[k].s = tw_q_fmtnum(&x->scratch, keys[k].num);
		if ((rc = keep_val(x, &g->keys[k], err))) {
			free(g->st);
			return rc;
		}
	}
	x->ng++;
	return TW_OK;
}

static enum tw_rc stats_feed(struct tw_qexec *x, const struct qcmd_s *c, const struct qctx *ctx, struct tw_err *err)
{
	const struct tw_event *ev = ctx->ev;
	tw_buf_reset(&x->key);
	struct tw_qval kv[16], *keys = kv;
	struct tw_qval *heap = NULL;
	enum tw_rc rc = TW_OK;
	if (c->nby > 16) {
		heap = malloc(c->nby * sizeof *heap);
		if (!heap)
			return tw_err_set(err, TW_ENOMEM, "out of memory for group keys");
		keys = heap;
	}
	for (size_t k = 0; k < c->nby; k++) {
		struct tw_qval *v = &keys[k];
		if (c->by[k].is_bin) {
			int64_t b = c->by[k].bin_ms, t = ev->time_ms;
			int64_t f = t / b * b;
			if (f > t)
				f -= b;
			memset(v, 0, sizeof *v);
			v->type = TW_QV_NUM;
			v->num = (double)f;
			v->s = TW_STR_LIT(""); /* text made once per group, below */
		} else if (tw_q_value(ctx, &c->by[k].fld, v)) {
			rc = tw_err_set(err, TW_ENOMEM, "out of memory evaluating a group key");
			goto out;
		}
		if ((rc = key_add(x, v, err)))
			goto out;
	}
	uint32_t gi;
	int added;
	if ((rc = stats_group(x, c, keys, &gi, err)))
		goto out;
	struct grp *g = &x->g[gi];
	for (size_t k = 0; k < c->naggs; k++) {
		const struct qagg *a = &c->aggs[k];
		struct aggst *st = &g->st[k];
		if (a->star) {
			st->n++;
			continue;
		}
		struct tw_qval v;
		if (tw_q_value(ctx, &a->fld, &v)) {
			rc = tw_err_set(err, TW_ENOMEM, "out of memory evaluating an aggregate");
			goto out;
		}
		if (v.type == TW_QV_NULL)
			continue;
		double d;
		switch (a->fn) {
		case QA_COUNT:
			st->n++;
			break;
		case QA_COUNT_DISTINCT: {
			tw_buf_reset(&x->key);
			uint32_t ids[2] = { gi, (uint32_t)k };
			uint32_t dummy;
			if ((rc = tw_buf_append(&x->key, ids, sizeof ids, err)) || (rc = key_add(x, &v, err)))
				goto out;
			rc = hset_put(&x->distinct, &x->keep, x->key.p, x->key.n, 0, &dummy, &added, x->o.max_rows, err);
			if (rc == TW_ELIMIT) {
				rc = limit_err(err, "distinct values for count_distinct", x->o.max_rows,
					       "narrow the filter");
				goto out;
			}
			if (rc)
				goto out;
			st->n += (uint64_t)added;
			break;
		}
		case QA_MIN:
		case QA_MAX:
		case QA_SUM:
		case QA_AVG:
			if (v.type == TW_QV_NUM)
				d = v.num;
			else if (!tw_q_numeric(v.s, &d))
				break;
			if (!st->n)
				st->d = a->fn == QA_AVG || a->fn == QA_SUM ? 0 : d;
			if (a->fn == QA_MIN && d < st->d)
				st->d = d;
			else if (a->fn == QA_MAX && d > st->d)
				st->d = d;
			else if (a->fn == QA_SUM || a->fn == QA_AVG)
				st->d += d;
			st->n++;
			break;
		case QA_EARLIEST:
		case QA_LATEST: {
			int take = !st->n || (a->fn == QA_EARLIEST ? ev->time_ms < st->t : ev->time_ms >= st->t);
			st->n++;
			if (!take)
				break;
			char *m = malloc(v.s.n + 1);
			if (!m) {
				rc = tw_err_set(err, TW_ENOMEM, "out of memory for an aggregate value");
				goto out;
			}
			memcpy(m, v.s.p, v.s.n);
			m[v.s.n] = '\0';
			free((char *)st->v.s.p);
			st->v = v;
			st->v.s.p = m;
			st->t = ev->time_ms;
			break;
		}
		}
	}
out:
	free(heap);
	return rc;
}

struct gsort {
	const struct grp *g; /* the group */
	size_t idx;          /* creation order */
	size_t nby;          /* keys */
};

static int gsort_cmp(const void *pa, const void *pb)
{
	const struct gsort *a = pa, *b = pb;
	for (size_t k = 0; k < a->nby; k++) {
		int r = tw_q_order(&a->g->keys[k], &b->g->keys[k]);
		if (r)
			return r;
	}
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Turns the groups into table rows (sorted by the group keys). */
static enum tw_rc stats_rows(struct tw_qexec *x, const struct qcmd_s *c, struct tw_err *err)
{
	if (!c->nby && !x->ng) { /* stats without groups over nothing: one row of zeros/nulls */
		struct grp *g = calloc(1, sizeof *g);
		if (!g)
			return tw_err_set(err, TW_ENOMEM, "out of memory for stats");
		g->st = calloc(c->naggs + 1, sizeof *g->st);
		if (!g->st) {
			free(g);
			return tw_err_set(err, TW_ENOMEM, "out of memory for stats");
		}
		x->g = g;
		x->ng = x->capg = 1;
	}
	x->tncols = c->nby + c->naggs;
	x->tcols = calloc(x->tncols + 1, sizeof *x->tcols);
	struct gsort *gs = calloc(x->ng + 1, sizeof *gs);
	struct qrow *rows = calloc(x->ng + 1, sizeof *rows);
	if (!x->tcols || !gs || !rows) {
		free(gs);
		free(rows);
		return tw_err_set(err, TW_ENOMEM, "out of memory for stats output");
	}
	for (size_t k = 0; k < c->nby; k++)
		x->tcols[k] = c->by[k].name;
	for (size_t k = 0; k < c->naggs; k++)
		x->tcols[c->nby + k] = c->aggs[k].name;
	for (size_t i = 0; i < x->ng; i++)
		gs[i] = (struct gsort){ &x->g[i], i, c->nby };
	if (x->ng > 1)
		qsort(gs, x->ng, sizeof *gs, gsort_cmp);
	enum tw_rc rc = TW_OK;
	for (size_t i = 0; i < x->ng && !rc; i++) {
		const struct grp *g = gs[i].g;
		struct tw_qval *vals = tw_arena_alloc(&x->keep, (x->tncols + 1) * sizeof *vals, err);
		if (!vals) {
			rc = err ? err->rc : TW_ENOMEM;
			break;
		}
		for (size_t k = 0; k < c->nby; k++)
			vals[k] = g->keys[k];
		for (size_t k = 0; k < c->naggs; k++) {
			const struct aggst *st = &g->st[k];
			struct tw_qval *v = &vals[c->nby + k];
			memset(v, 0, sizeof *v);
			v->s = TW_STR_LIT("");
			switch (c->aggs[k].fn) {
			case QA_COUNT:
			case QA_COUNT_DISTINCT:
				v->type = TW_QV_NUM;
				v->num = (double)st->n;
				break;
			case QA_MIN:
			case QA_MAX:
			case QA_SUM:
			case QA_AVG:
				if (st->n) {
					v->type = TW_QV_NUM;
					v->num = c->aggs[k].fn == QA_AVG ? st->d / (double)st->n : st->d;
				} else if (c->aggs[k].fn == QA_SUM) {
					v->type = TW_QV_NUM;
					v->num = 0;
				}
				break;
			case QA_EARLIEST:
			case QA_LATEST:
				if (st->n) {
					*v = st->v;
					rc = keep_val(x, v, err);
				}
				break;
			}
			if (v->type == TW_QV_NUM)
				v->s = tw_q_fmtnum(&x->keep, v->num);
		}
		rows[i].vals = vals;
		rows[i].seq = i;
	}
	free(gs);
	if (rc) {
		free(rows);
		return rc;
	}
	for (size_t i = 0; i < x->nrows; i++)
		row_free(&x->rows[i]);
	free(x->rows);
	x->rows = rows;
	x->nrows = x->caprows = x->ng;
	x->stats = 1;
	return TW_OK;
}

/* ---- event rows -------------------------------------------------------------------------------- */
static struct tw_event *copy_event(const struct tw_event *ev, const struct tw_qval *keys, size_t nkeys,
				   struct tw_qval **keys_out, size_t *bytes)
{
	size_t n = sizeof *ev + ev->nresources * sizeof(struct tw_str) + nkeys * sizeof(struct tw_qval) + ev->raw.n;
	for (int f = 0; f < TW_F__COUNT; f++)
		n += ev->f[f].n;
	for (uint32_t i = 0; i < ev->nresources; i++)
		n += ev->resources[i].n;
	for (size_t k = 0; k < nkeys; k++)
		n += keys[k].s.n;
	char *m = malloc(n + 1);
	if (!m)
		return NULL;
	struct tw_event *c = (struct tw_event *)m;
	*c = *ev;
	struct tw_str *res = (struct tw_str *)(c + 1);
	struct tw_qval *kv = (struct tw_qval *)(res + ev->nresources);
	char *p = (char *)(kv + nkeys);
#define CP(dst, src)                                          \
	do {                                                  \
		(dst).n = (src).n;                            \
		(dst).p = (src).n ? memcpy(p, (src).p, (src).n) : NULL; \
		p += (src).n;                                 \
	} while (0)
	CP(c->raw, ev->raw);
	for (int f = 0; f < TW_F__COUNT; f++)
		CP(c->f[f], ev->f[f]);
	for (uint32_t i = 0; i < ev->nresources; i++)
		CP(res[i], ev->resources[i]);
	c->resources = ev->nresources ? res : NULL;
	for (size_t k = 0; k < nkeys; k++) {
		kv[k] = keys[k];
		CP(kv[k].s, keys[k].s);
		if (!kv[k].s.p)
			kv[k].s.p = "";
	}
#undef CP
	*keys_out = kv;
	*bytes = n;
	return c;
}

static int row_cmp(const struct qrow *a, const struct qrow *b, const struct qcmd_s *s)
{
	for (size_t k = 0; k < s->nkeys; k++) {
		int r = tw_q_order(&a->keys[k], &b->keys[k]);
		if (r)
			return s->keys[k].desc ? -r : r;
	}
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void heap_down(struct qrow *h, size_t n, size_t i, const struct qcmd_s *s)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && row_cmp(&h[l], &h[m], s) > 0)
			m = l;
		if (r < n && row_cmp(&h[r], &h[m], s) > 0)
			m = r;
		if (m == i)
			return;
		struct qrow t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_up(struct qrow *h, size_t i, const struct qcmd_s *s)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (row_cmp(&h[i], &h[p], s) <= 0)
			return;
		struct qrow t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

/* Keeps ev as a row (sorted by s when s is a sort command). */
static enum tw_rc keep_event(struct tw_qexec *x, const struct qctx *ctx, const struct qcmd_s *s, struct tw_err *err)
{
	size_t nk = s ? s->nkeys : 0;
	struct tw_qval kv[16], *keys = kv;
	if (nk > 16) {
		keys = tw_arena_alloc(&x->scratch, nk * sizeof *keys, err);
		if (!keys)
			return err ? err->rc : TW_ENOMEM;
	}
	for (size_t k = 0; k < nk; k++)
		if (tw_q_value(ctx, &s->keys[k].fld, &keys[k]))
			return tw_err_set(err, TW_ENOMEM, "out of memory evaluating a sort key");
	struct qrow nr = { .seq = x->seq++ };
	if (x->topn && x->nrows >= x->topn) {
		nr.keys = keys;
		if (row_cmp(&nr, &x->rows[0], s) >= 0)
			return TW_OK; /* not among the best N */
	}
	if (x->nrows >= x->o.max_rows && !(x->topn && x->nrows >= x->topn))
		return limit_err(err, "events", x->o.max_rows, "add a limit or use stats");
	nr.ev = copy_event(ctx->ev, keys, nk, &nr.keys, &nr.bytes);
	if (!nr.ev)
		return tw_err_set(err, TW_ENOMEM, "out of memory keeping an event of %zu bytes", ctx->ev->raw.n);
	if (x->topn && x->nrows >= x->topn) {
		x->bytes -= x->rows[0].bytes;
		row_free(&x->rows[0]);
		x->rows[0] = nr;
		x->bytes += nr.bytes;
		heap_down(x->rows, x->nrows, 0, s);
	} else {
		if (x->nrows == x->caprows) {
			size_t nc = x->caprows ? x->caprows * 2 : 64;
			struct qrow *n2 = realloc(x->rows, nc * sizeof *n2);
			if (!n2) {
				free(nr.ev);
				return tw_err_set(err, TW_ENOMEM, "out of memory keeping %zu events", nc);
			}
			x->rows = n2;
			x->caprows = nc;
		}
		x->rows[x->nrows++] = nr;
		x->bytes += nr.bytes;
		if (x->topn)
			heap_up(x->rows, x->nrows - 1, s);
	}
	if (x->bytes > x->o.max_bytes)
		return limit_err(err, "bytes of events", x->o.max_bytes, "add a limit or use stats");
	return TW_OK;
}

/* dedup: 1 if the row's key is new (or holds a null), 0 if seen; -1 on error. */
static int dedup_new(struct tw_qexec *x, size_t k, const struct qcmd_s *c, const struct qctx *ctx, struct tw_err *err)
{
	tw_buf_reset(&x->key);
	for (size_t i = 0; i < c->nflds; i++) {
		struct tw_qval v;
		if (tw_q_value(ctx, &c->flds[i], &v)) {
			tw_err_set(err, TW_ENOMEM, "out of memory evaluating dedup fields");
			return -1;
		}
		if (v.type == TW_QV_NULL)
			return 1;
		if (key_add(x, &v, err))
			return -1;
	}
	uint32_t dummy;
	int added;
	enum tw_rc rc = hset_put(&x->sets[k], &x->keep, x->key.p ? x->key.p : "", x->key.n, 0, &dummy, &added,
				 x->o.max_rows, err);
	if (rc == TW_ELIMIT) {
		limit_err(err, "distinct dedup keys", x->o.max_rows, "narrow the filter");
		return -1;
	}
	return rc ? -1 : added;
}

enum tw_rc tw_qexec_push(struct tw_qexec *x, const struct tw_event *ev, int *done, struct tw_err *err)
{
	const struct tw_query *q = x->q;
	enum tw_rc rc = TW_OK;
	if (x->done || x->finished)
		goto out;
	tw_arena_reset(&x->scratch);
	struct qctx ctx = { .ev = ev, .scratch = &x->scratch };
	for (size_t k = 0; k < x->block; k++) {
		const struct qcmd_s *c = &q->cmds[k];
		switch (c->kind) {
		case QCMD_FILTER:
			if (!tw_q_eval(c->expr, &ctx))
				goto out;
			break;
		case QCMD_LIMIT:
			if (x->count[k] >= c->limit)
				goto out;
			if (++x->count[k] == c->limit)
				x->done = 1; /* later events all stop here */
			break;
		case QCMD_DEDUP: {
			int r = dedup_new(x, k, c, &ctx, err);
			if (r < 0) {
				rc = err ? err->rc : TW_ENOMEM;
				goto out;
			}
			if (!r)
				goto out;
			break;
		}
		default:
			break;
		}
	}
	if (x->block == q->ncmds)
		rc = keep_event(x, &ctx, NULL, err);
	else if (q->cmds[x->block].kind == QCMD_SORT)
		rc = keep_event(x, &ctx, &q->cmds[x->block], err);
	else
		rc = stats_feed(x, &q->cmds[x->block], &ctx, err);
out:
	if (done)
		*done = x->done;
	return rc;
}

enum tw_rc tw_qexec_push_count(struct tw_qexec *x, const struct tw_qval *group_vals, uint64_t count,
			      struct tw_err *err)
{
	const struct qcmd_s *c = x->scmd;
	enum tw_rc rc;
	uint32_t gi;

	if (!c)
		return tw_err_set(err, TW_EINVAL, "pre-aggregated counts need a query whose first blocking command is stats");
	for (size_t k = 0; k < x->block; k++)
		if (x->q->cmds[k].kind != QCMD_FILTER && x->q->cmds[k].kind != QCMD_FIELDS)
			return tw_err_set(err, TW_EINVAL, "pre-aggregated counts: a limit or dedup precedes the stats");
	for (size_t k = 0; k < c->naggs; k++)
		if (c->aggs[k].fn != QA_COUNT || !c->aggs[k].star)
			return tw_err_set(err, TW_EINVAL, "pre-aggregated counts: aggregate %s is not count(*)",
					  c->aggs[k].name.p);
	for (size_t k = 0; k < c->nby; k++)
		if (c->by[k].is_bin)
			return tw_err_set(err, TW_EINVAL, "pre-aggregated counts: cannot group by %s", c->by[k].name.p);
	if (x->finished || !count)
		return TW_OK;
	tw_arena_reset(&x->scratch);
	tw_buf_reset(&x->key);
	for (size_t k = 0; k < c->nby; k++)
		if ((rc = key_add(x, &group_vals[k], err)))
			return rc;
	if ((rc = stats_group(x, c, group_vals, &gi, err)))
		return rc;
	for (size_t k = 0; k < c->naggs; k++)
		x->g[gi].st[k].n += count;
	return TW_OK;
}

/* ---- after the blocking command ---------------------------------------------------------------- */
static void row_ctx(const struct tw_qexec *x, const struct qrow *r, struct qctx *c, struct tw_arena *a)
{
	memset(c, 0, sizeof *c);
	c->scratch = a;
	if (r->ev) {
		c->ev = r->ev;
	} else {
		c->cols = x->tcols;
		c->vals = r->vals;
		c->ncols = x->tncols;
	}
}

static int qsort_rows(const void *a, const void *b, void *s)
{
	return row_cmp(a, b, s);
}

static enum tw_rc post_sort(struct tw_qexec *x, const struct qcmd_s *c, int have_keys, struct tw_err *err)
{
	for (size_t i = 0; !have_keys && i < x->nrows; i++) {
		struct qctx ctx;
		row_ctx(x, &x->rows[i], &ctx, &x->keep);
		struct tw_qval *k = tw_arena_alloc(&x->keep, (c->nkeys + 1) * sizeof *k, err);
		if (!k)
			return err ? err->rc : TW_ENOMEM;
		for (size_t j = 0; j < c->nkeys; j++) {
			if (tw_q_value(&ctx, &c->keys[j].fld, &k[j]))
				return tw_err_set(err, TW_ENOMEM, "out of memory evaluating a sort key");
			if (keep_val(x, &k[j], err))
				return err ? err->rc : TW_ENOMEM;
		}
		x->rows[i].keys = k;
		x->rows[i].seq = i;
	}
	/* Rows carry their own seq; qsort is not stable but (keys, seq) is a total order. */
	if (x->nrows > 1) /* rows is NULL when there are none, and qsort_r's base must not be */
		qsort_r(x->rows, x->nrows, sizeof *x->rows, qsort_rows, (void *)c);
	for (size_t i = 0; i < x->nrows; i++)
		x->rows[i].seq = i;
	return TW_OK;
}

enum tw_rc tw_qexec_finish(struct tw_qexec *x, struct tw_err *err)
{
	const struct tw_query *q = x->q;
	if (x->finished)
		return tw_err_set(err, TW_EINVAL, "tw_qexec_finish called twice");
	x->finished = 1;
	enum tw_rc rc = TW_OK;
	size_t k = x->block;
	if (k < q->ncmds) {
		if (q->cmds[k].kind == QCMD_SORT)
			rc = post_sort(x, &q->cmds[k], 1, err);
		else
			rc = stats_rows(x, &q->cmds[k], err);
		k++;
	}
	for (; !rc && k < q->ncmds; k++) {
		const struct qcmd_s *c = &q->cmds[k];
		size_t w = 0;
		switch (c->kind) {
		case QCMD_FILTER:
			for (size_t i = 0; i < x->nrows; i++) {
				struct qctx ctx;
				tw_arena_reset(&x->scratch);
				row_ctx(x, &x->rows[i], &ctx, &x->scratch);
				if (tw_q_eval(c->expr, &ctx))
					x->rows[w++] = x->rows[i];
				else
					row_free(&x->rows[i]);
			}
			x->nrows = w;
			break;
		case QCMD_LIMIT:
			for (size_t i = c->limit < x->nrows ? (size_t)c->limit : x->nrows; i < x->nrows; i++)
				row_free(&x->rows[i]);
			if (c->limit < x->nrows)
				x->nrows = (size_t)c->limit;
			break;
		case QCMD_DEDUP:
			for (size_t i = 0; i < x->nrows && !rc; i++) {
				struct qctx ctx;
				tw_arena_reset(&x->scratch);
				row_ctx(x, &x->rows[i], &ctx, &x->scratch);
				int r = dedup_new(x, k, c, &ctx, err);
				if (r < 0)
					rc = err ? err->rc : TW_ENOMEM;
				else if (r)
					x->rows[w++] = x->rows[i];
				else
					row_free(&x->rows[i]);
			}
			if (!rc)
				x->nrows = w;
			break;
		case QCMD_SORT:
			rc = post_sort(x, c, 0, err);
			break;
		case QCMD_STATS:
			x->scmd = c;
			for (size_t i = 0; i < x->nrows && !rc; i++) {
				struct qctx ctx;
				tw_arena_reset(&x->scratch);
				row_ctx(x, &x->rows[i], &ctx, &x->scratch);
				rc = stats_feed(x, c, &ctx, err);
			}
			if (!rc)
				rc = stats_rows(x, c, err);
			break;
		case QCMD_FIELDS:
			break;
		}
	}
	if (rc)
		return rc;
	/* Output projection: the last fields command after the stats (or anywhere without stats). */
	size_t first = 0;
	for (size_t i = 0; i < q->ncmds; i++)
		if (q->cmds[i].kind == QCMD_STATS)
			first = i + 1;
	for (size_t i = first; i < q->ncmds; i++)
		if (q->cmds[i].kind == QCMD_FIELDS) {
			x->proj = q->cmds[i].flds;
			x->nproj = q->cmds[i].nflds;
		}
	size_t nc = tw_qexec_ncols(x);
	x->rowbuf = calloc(nc + 1, sizeof *x->rowbuf);
	x->pcols = calloc(x->nproj + 1, sizeof *x->pcols);
	if (!x->rowbuf || !x->pcols)
		return tw_err_set(err, TW_ENOMEM, "out of memory for query output");
	for (size_t i = 0; i < x->nproj; i++)
		x->pcols[i] = x->proj[i].col;
	return TW_OK;
}

size_t tw_qexec_nrows(const struct tw_qexec *x)
{
	return x->finished ? x->nrows : 0;
}

size_t tw_qexec_ncols(const struct tw_qexec *x)
{
	return x->proj ? x->nproj : x->stats ? x->tncols : 0;
}

const char *tw_qexec_col_name(const struct tw_qexec *x, size_t col)
{
	if (col >= tw_qexec_ncols(x))
		return NULL;
	return x->proj ? x->pcols[col].p : x->tcols[col].p;
}

int tw_qexec_is_stats(const struct tw_qexec *x)
{
	return x->stats;
}

enum tw_rc tw_qexec_row(struct tw_qexec *x, size_t i, const struct tw_qval **vals, struct tw_err *err)
{
	if (!x->finished || i >= x->nrows)
		return tw_err_set(err, TW_EINVAL, "row %zu out of range (%zu rows)", i, x->finished ? x->nrows : 0);
	const struct qrow *r = &x->rows[i];
	if (!x->proj) {
		*vals = r->ev ? x->rowbuf : r->vals;
		return TW_OK;
	}
	tw_arena_reset(&x->scratch);
	struct qctx ctx;
	row_ctx(x, r, &ctx, &x->scratch);
	for (size_t k = 0; k < x->nproj; k++)
		if (tw_q_value(&ctx, &x->proj[k], &x->rowbuf[k]))
			return tw_err_set(err, TW_ENOMEM, "out of memory evaluating output fields");
	*vals = x->rowbuf;
	return TW_OK;
}

const struct tw_event *tw_qexec_row_event(const struct tw_qexec *x, size_t i)
{
	return x->finished && i < x->nrows ? x->rows[i].ev : NULL;
}
