/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/series.c: per-period metric aggregates (see series.h). Dimension tuples are interned per
 * metric (open addressing over FNV-1a hashes); open periods are a sorted array, each with an open-
 * addressed table from (metric, tuple) to its cell, cells kept in first-appearance order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/series.h"
#include "core/hash.h"

struct metric {
	char *name;                          /* owned */
	unsigned ndims;                      /* dimensions */
	char *dim_names[TW_SERIES_MAX_DIMS]; /* owned */
	int has_default;                     /* emit default_value in empty periods */
	double default_value;                /* CloudWatch's metric-filter default value */
	struct tw_buf tuples;                /* interned tuples: for each, ndims x (u32 len, bytes) */
	uint32_t *toff;                      /* offset of tuple k in tuples */
	uint64_t *thash;                     /* hash of tuple k */
	uint32_t ntuples, captuples;         /* tuples interned, room */
	uint32_t *table;                     /* open addressing: tuple index + 1, 0 = empty */
	uint32_t tcap;                       /* slots in table (power of two) */
	int32_t other;                       /* index of the "other" tuple, -1 before it exists */
	size_t max_keys;                     /* this metric's cap on tuples (0: the set's) */
	int seen;                            /* got a value in the period being built (defaults) */
};

struct cell {
	uint32_t metric; /* metric id */
	uint32_t tuple;  /* tuple index in the metric */
	uint64_t n;      /* values */
	double sum, min, max; /* aggregates */
};

struct period {
	int64_t t;          /* start */
	struct cell *cells; /* in first-appearance order */
	uint32_t n, cap;    /* cells, room */
	uint32_t *table;    /* open addressing: cell index + 1 */
	uint32_t tcap;      /* slots (power of two) */
};

struct tw_series {
	struct tw_series_opts o;        /* options */
	struct metric m[TW_SERIES_MAX_METRICS]; /* metrics */
	unsigned nm;                    /* metrics in use */
	struct period *p;               /* open periods, sorted by t */
	size_t np, capp;                /* open periods, room */
	size_t open_cells;              /* cells in all open periods */
	int64_t watermark;              /* newest event time seen (or the floor) */
	int64_t closed;                 /* every period ending at or before this is closed */
	size_t last;                    /* index in p of the period found last (checked before use) */
	struct tw_series_stats st;      /* counters */
};

void tw_series_opts_default(struct tw_series_opts *o)
{
	o->period_ms = 60000;
	o->lateness_ms = 300000;
	o->max_keys = 1000;
	o->max_open = 1000000;
}

/* Hash of a tuple: its values' lengths and bytes, 8 bytes at a time (the hashes only place tuples
 * in the table: nothing stored or emitted depends on them). */
static uint64_t tuple_hash(const struct tw_str *dims, unsigned ndims)
{
	uint64_t h = TW_HASH_SEED;

	for (unsigned d = 0; d < ndims; d++)
		h = tw_hash_bytes(h, dims[d].p, dims[d].n);
	return tw_hash_final(h);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

enum tw_rc tw_series_new(const struct tw_series_opts *opts, struct tw_series **out, struct tw_err *err)
{
	struct tw_series *s = calloc(1, sizeof *s);

	if (!s)
		return tw_err_set(err, TW_ENOMEM, "series: out of memory");
	tw_series_opts_default(&s->o);
	if (opts) {
		if (opts->period_ms > 0)
			s->o.period_ms = opts->period_ms;
		if (opts->lateness_ms >= 0)
			s->o.lateness_ms = opts->lateness_ms;
		if (opts->max_keys)
			s->o.max_keys = opts->max_keys;
		if (opts->max_open)
			s->o.max_open = opts->max_open;
	}
	s->watermark = INT64_MIN;
	s->closed = INT64_MIN;
	*out = s;
	return TW_OK;
}

static void period_free(struct period *p)
{
	free(p->cells);
	free(p->table);
}

void tw_series_free(struct tw_series *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nm; i++) {
		struct metric *m = &s->m[i];
		free(m->name);
		for (unsigned d = 0; d < m->ndims; d++)
			free(m->dim_names[d]);
		tw_buf_free(&m->tuples);
		free(m->toff);
		free(m->thash);
		free(m->table);
	}
	for (size_t i = 0; i < s->np; i++)
		period_free(&s->p[i]);
	free(s->p);
	free(s);
}

void tw_series_set_window(struct tw_series *s, int64_t lateness_ms, size_t max_open)
{
	if (lateness_ms >= 0)
		s->o.lateness_ms = lateness_ms;
	if (max_open)
		s->o.max_open = max_open;
}

enum tw_rc tw_series_metric_set_max_keys(struct tw_series *s, unsigned id, size_t max_keys, struct tw_err *err)
{
	if (id >= s->nm || !max_keys)
		return tw_err_set(err, TW_EINVAL, "series: bad metric id or cap");
	s->m[id].max_keys = max_keys;
	return TW_OK;
}

int tw_series_metric_find(const struct tw_series *s, const char *name)
{
	for (unsigned i = 0; i < s->nm; i++)
		if (!strcmp(s->m[i].name, name))
			return (int)i;
	return -1;
}

enum tw_rc tw_series_metric_add(struct tw_series *s, const char *name, unsigned ndims, const char *const *dim_names,
				int has_default, double default_value, unsigned *id, struct tw_err *err)
{
	struct metric *m;

	if (!name || !*name || ndims > TW_SERIES_MAX_DIMS || (ndims && !dim_names))
		return tw_err_set(err, TW_EINVAL, "series: metric needs a name and at most %d dimensions",
				  TW_SERIES_MAX_DIMS);
	if (has_default && ndims)
		return tw_err_set(err, TW_EINVAL, "metric %s: a default value cannot go with dimensions", name);
	if (tw_series_metric_find(s, name) >= 0)
		return tw_err_set(err, TW_EINVAL, "metric %s is declared twice", name);
	if (s->nm == TW_SERIES_MAX_METRICS)
		return tw_err_set(err, TW_ELIMIT, "more than %d metrics", TW_SERIES_MAX_METRICS);
	m = &s->m[s->nm];
	memset(m, 0, sizeof *m);
	m->other = -1;
	tw_buf_init(&m->tuples, (size_t)1 << 30); /* interned tuples: max_keys bounds them first */
	if (!(m->name = strdup(name)))
		goto nomem;
	for (unsigned d = 0; d < ndims; d++) {
		if (!(m->dim_names[d] = strdup(dim_names[d] ? dim_names[d] : "")))
			goto nomem;
		m->ndims = d + 1;
	}
	m->ndims = ndims;
	m->has_default = has_default;
	m->default_value = default_value;
	*id = s->nm++;
	return TW_OK;
nomem:
	free(m->name);
	for (unsigned d = 0; d < TW_SERIES_MAX_DIMS; d++)
		free(m->dim_names[d]);
	memset(m, 0, sizeof *m);
	return tw_err_set(err, TW_ENOMEM, "series: out of memory");
}

void tw_series_set_floor(struct tw_series *s, int64_t floor_ms)
{
	if (floor_ms > s->closed)
		s->closed = floor_ms;
	if (floor_ms > s->watermark)
		s->watermark = floor_ms;
}

int64_t tw_series_watermark(const struct tw_series *s)
{
	return s->watermark;
}

void tw_series_get_stats(const struct tw_series *s, struct tw_series_stats *out)
{
	*out = s->st;
}

/* ---- tuples -------------------------------------------------------------------------------------- */

static int tuple_eq(const struct metric *m, uint32_t k, const struct tw_str *dims)
{
	const char *p = m->tuples.p + m->toff[k];
	for (unsigned d = 0; d < m->ndims; d++) {
		uint32_t n;
		memcpy(&n, p, 4);
		if (n != dims[d].n || (n && memcmp(p + 4, dims[d].p, n)))
			return 0;
		p += 4 + n;
	}
	return 1;
}

static enum tw_rc tuple_grow(struct metric *m, struct tw_err *err)
{
	uint32_t ncap = m->tcap ? m->tcap * 2 : 64;
	uint32_t *t = calloc(ncap, sizeof *t);

	if (!t)
		return tw_err_set(err, TW_ENOMEM, "series: out of memory");
	for (uint32_t k = 0; k < m->ntuples; k++) {
		uint32_t i = (uint32_t)m->thash[k] & (ncap - 1);
		while (t[i])
			i = (i + 1) & (ncap - 1);
		t[i] = k + 1;
	}
	free(m->table);
	m->table = t;
	m->tcap = ncap;
	return TW_OK;
}

/* Interns dims for m: *k gets the tuple index (the "other" tuple past max_keys; *folded set). */
static enum tw_rc tuple_get(struct tw_series *s, struct metric *m, const struct tw_str *dims, uint32_t *k,
			    int *folded, struct tw_err *err)
{
	static const struct tw_str other[TW_SERIES_MAX_DIMS] = { { TW_SERIES_OTHER, 5 }, { TW_SERIES_OTHER, 5 },
								 { TW_SERIES_OTHER, 5 }, { TW_SERIES_OTHER, 5 } };
	uint64_t h = tuple_hash(dims, m->ndims);
	uint32_t i;
	enum tw_rc rc;

	*folded = 0;
	if (m->tcap) {
		for (i = (uint32_t)h & (m->tcap - 1); m->table[i]; i = (i + 1) & (m->tcap - 1)) {
			uint32_t c = m->table[i] - 1;
			if (m->thash[c] == h && tuple_eq(m, c, dims)) {
				*k = c;
				return TW_OK;
			}
		}
	}
	if (m->ntuples >= (m->max_keys ? m->max_keys : s->o.max_keys) + (m->other >= 0 ? 1 : 0)) {
		*folded = 1;
		if (m->other >= 0) {
			*k = (uint32_t)m->other;
			return TW_OK;
		}
		dims = other; /* intern the overflow tuple once */
		h = tuple_hash(dims, m->ndims);
	}
	if ((m->ntuples + 1) * 2 > m->tcap && (rc = tuple_grow(m, err)))
		return rc;
	if (m->ntuples == m->captuples) {
		uint32_t cap = m->captuples ? m->captuples * 2 : 16;
		uint32_t *o = realloc(m->toff, cap * sizeof *o);
		uint64_t *hh;
		if (!o)
			return tw_err_set(err, TW_ENOMEM, "series: out of memory");
		m->toff = o;
		if (!(hh = realloc(m->thash, cap * sizeof *hh)))
			return tw_err_set(err, TW_ENOMEM, "series: out of memory");
		m->thash = hh;
		m->captuples = cap;
	}
	m->toff[m->ntuples] = (uint32_t)m->tuples.n;
	for (unsigned d = 0; d < m->ndims; d++) {
		uint32_t n = (uint32_t)dims[d].n;
		if ((rc = tw_buf_append(&m->tuples, &n, 4, err)) || (rc = tw_buf_append(&m->tuples, dims[d].p, n, err)))
			return rc;
	}
	m->thash[m->ntuples] = h;
	for (i = (uint32_t)h & (m->tcap - 1); m->table[i]; i = (i + 1) & (m->tcap - 1))
		;
	m->table[i] = m->ntuples + 1;
	if (*folded)
		m->other = (int32_t)m->ntuples;
	*k = m->ntuples++;
	return TW_OK;
}

/* ---- periods ------------------------------------------------------------------------------------- */

static struct period *period_get(struct tw_series *s, int64_t t, struct tw_err *err)
{
	size_t lo = 0, hi = s->np;

	if (s->last < s->np && s->p[s->last].t == t) /* events come in bursts of one period */
		return &s->p[s->last];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->p[mid].t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	s->last = lo;
	if (lo < s->np && s->p[lo].t == t)
		return &s->p[lo];
	if (s->np == s->capp) {
		size_t cap = s->capp ? s->capp * 2 : 16;
		struct period *p = realloc(s->p, cap * sizeof *p);
		if (!p) {
			tw_err_set(err, TW_ENOMEM, "series: out of memory");
			return NULL;
		}
		s->p = p;
		s->capp = cap;
	}
	memmove(&s->p[lo + 1], &s->p[lo], (s->np - lo) * sizeof *s->p);
	memset(&s->p[lo], 0, sizeof *s->p);
	s->p[lo].t = t;
	s->np++;
	return &s->p[lo];
}

static uint64_t cell_hash(uint32_t metric, uint32_t tuple)
{
	uint64_t x = ((uint64_t)metric << 32 | tuple) * 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

static enum tw_rc cell_table_grow(struct period *p, struct tw_err *err)
{
	uint32_t ncap = p->tcap ? p->tcap * 2 : 64;
	uint32_t *t = calloc(ncap, sizeof *t);

	if (!t)
		return tw_err_set(err, TW_ENOMEM, "series: out of memory");
	for (uint32_t c = 0; c < p->n; c++) {
		uint32_t i = (uint32_t)cell_hash(p->cells[c].metric, p->cells[c].tuple) & (ncap - 1);
		while (t[i])
			i = (i + 1) & (ncap - 1);
		t[i] = c + 1;
	}
	free(p->table);
	p->table = t;
	p->tcap = ncap;
	return TW_OK;
}

/* The cell of (metric, tuple) in p, created when missing (NULL + *full when max_open is reached). */
static struct cell *cell_get(struct tw_series *s, struct period *p, uint32_t metric, uint32_t tuple, int *full,
			     struct tw_err *err)
{
	uint64_t h = cell_hash(metric, tuple);
	uint32_t i;
	struct cell *c;

	*full = 0;
	if (p->tcap)
		for (i = (uint32_t)h & (p->tcap - 1); p->table[i]; i = (i + 1) & (p->tcap - 1)) {
			c = &p->cells[p->table[i] - 1];
			if (c->metric == metric && c->tuple == tuple)
				return c;
		}
	if (s->open_cells >= s->o.max_open) {
		*full = 1;
		return NULL;
	}
	if ((p->n + 1) * 2 > p->tcap && cell_table_grow(p, err))
		return NULL;
	if (p->n == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 16;
		struct cell *nc = realloc(p->cells, cap * sizeof *nc);
		if (!nc) {
			tw_err_set(err, TW_ENOMEM, "series: out of memory");
			return NULL;
		}
		p->cells = nc;
		p->cap = cap;
	}
	c = &p->cells[p->n];
	c->metric = metric;
	c->tuple = tuple;
	c->n = 0;
	c->sum = 0;
	c->min = INFINITY;
	c->max = -INFINITY;
	for (i = (uint32_t)h & (p->tcap - 1); p->table[i]; i = (i + 1) & (p->tcap - 1))
		;
	p->table[i] = p->n + 1;
	p->n++;
	s->open_cells++;
	return c;
}

enum tw_rc tw_series_put(struct tw_series *s, unsigned id, const struct tw_str *dims, double value, int64_t t_ms,
			 struct tw_err *err)
{
	struct metric *m;
	struct period *p;
	struct cell *c;
	int64_t t;
	uint32_t k;
	int folded, full;
	enum tw_rc rc;

	if (id >= s->nm || !isfinite(value))
		return tw_err_set(err, TW_EINVAL, "series: bad metric id %u or value", id);
	m = &s->m[id];
	if (t_ms > s->watermark)
		s->watermark = t_ms;
	t = floor_div(t_ms, s->o.period_ms) * s->o.period_ms;
	if (s->closed != INT64_MIN && t < s->closed) {
		s->st.late++;
		return TW_OK;
	}
	if ((rc = tuple_get(s, m, dims, &k, &folded, err)))
		return rc;
	if (!(p = period_get(s, t, err)))
		return err->rc;
	if (!(c = cell_get(s, p, id, k, &full, err))) {
		if (!full)
			return err->rc;
		s->st.dropped++;
		return TW_OK;
	}
	c->n++;
	c->sum += value;
	if (value < c->min)
		c->min = value;
	if (value > c->max)
		c->max = value;
	s->st.values++;
	if (folded)
		s->st.folded++;
	return TW_OK;
}

static void emit_cell(struct tw_series *s, const struct period *p, const struct cell *c, tw_series_emit_fn emit,
		      void *ctx)
{
	const struct metric *m = &s->m[c->metric];
	struct tw_str dims[TW_SERIES_MAX_DIMS];
	struct tw_series_point pt;
	const char *q = m->tuples.p + m->toff[c->tuple];

	for (unsigned d = 0; d < m->ndims; d++) {
		uint32_t n;
		memcpy(&n, q, 4);
		dims[d].p = q + 4;
		dims[d].n = n;
		q += 4 + n;
	}
	pt.metric = c->metric;
	pt.name = m->name;
	pt.dims = dims;
	pt.ndims = m->ndims;
	pt.t = p->t;
	pt.n = c->n;
	pt.sum = c->sum;
	pt.min = c->min;
	pt.max = c->max;
	s->st.emitted++;
	if (emit)
		emit(ctx, &pt);
}

void tw_series_advance(struct tw_series *s, int flush_all, tw_series_emit_fn emit, void *ctx, int64_t *closed_until)
{
	int64_t limit = INT64_MAX;
	size_t done = 0;

	if (!flush_all) {
		if (s->watermark == INT64_MIN)
			limit = INT64_MIN;
		else
			limit = floor_div(s->watermark - s->o.lateness_ms, s->o.period_ms) * s->o.period_ms;
	}
	while (done < s->np && s->p[done].t + s->o.period_ms <= limit) {
		struct period *p = &s->p[done];
		for (unsigned i = 0; i < s->nm; i++)
			s->m[i].seen = 0;
		for (uint32_t c = 0; c < p->n; c++) {
			s->m[p->cells[c].metric].seen = 1;
			emit_cell(s, p, &p->cells[c], emit, ctx);
		}
		/* a default value where a dimensionless metric got nothing in a period with data */
		for (unsigned i = 0; i < s->nm; i++) {
			struct metric *m = &s->m[i];
			if (m->has_default && !m->seen) {
				struct cell c = { i, 0, 1, m->default_value, m->default_value, m->default_value };
				uint32_t k;
				int folded;
				struct tw_err e;
				if (tuple_get(s, m, NULL, &k, &folded, &e) == TW_OK) {
					c.tuple = k;
					emit_cell(s, p, &c, emit, ctx);
				}
			}
		}
		s->open_cells -= p->n;
		if (p->t + s->o.period_ms > s->closed)
			s->closed = p->t + s->o.period_ms;
		period_free(p);
		done++;
	}
	if (done) {
		memmove(s->p, s->p + done, (s->np - done) * sizeof *s->p);
		s->np -= done;
	}
	if (!flush_all && limit != INT64_MIN && limit > s->closed)
		s->closed = limit;
	if (closed_until)
		*closed_until = s->closed;
}
