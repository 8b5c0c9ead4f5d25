/* SPDX-License-Identifier: Apache-2.0 */
/* query/plan.c: the store planner: runs a parsed query over store snapshots (shards), answering
 * index terms from segment postings, pruning segments and blocks by time, and pushing the events
 * that pass the residual predicates (tw_query_match) into an executor. Reads only through the
 * public APIs of index/store.h and index/segment.h; never writes to a store.
 *
 * Invariants:
 *  1. Every pushed event satisfies from <= time <= until and tw_query_match; every event of the
 *     snapshots that satisfies both is pushed (index terms are necessary conditions, so using them
 *     only removes records that could not match).
 *  2. Candidate ids of a segment are sorted ascending and unique; blocks hold contiguous id ranges,
 *     so walking candidates in order visits each block once: one decompression per block read.
 *  3. Ordered mode holds the matches (evcodec-encoded: lossless) until every store was read, then
 *     sorts them by (time, arrival) and pushes them: the executor sees ascending time. Memory is
 *     bounded by max_hold_bytes (TW_ELIMIT past it, with a hint to narrow the range).
 *  4. The WAL tail (unsorted, small: at most a WAL's worth) is scanned fully. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "index/evcodec.h"
#include "index/segment.h"
#include "index/store.h"
#include "query/query.h"
#include "query/query_int.h"

#define HOLD_DEFAULT (1024ull * 1024 * 1024)

/* One held match in ordered mode. */
struct held {
	int64_t t;    /* event time */
	uint64_t seq; /* arrival order (stable tie-break) */
	size_t off;   /* offset of its encoding in run.hold */
};

/* State of one tw_query_run call. */
struct run {
	const struct tw_query *q;     /* the query (borrowed) */
	struct tw_qexec *x;           /* where matches go (borrowed) */
	struct tw_qrun_stats *st;     /* counters (never NULL inside) */
	int64_t lo, hi;               /* effective inclusive time range */
	int ordered;                  /* hold and sort before pushing */
	int done;                     /* the executor needs nothing more */
	struct tw_buf hold;           /* ordered: encoded matches */
	struct held *h;               /* ordered: index into hold */
	size_t nh, caph;              /* entries in h, allocated */
	struct tw_seg_blockbuf bb;    /* one decompressed block, reused */
	struct tw_arena a;            /* resources of the fetched event, reset per record */
	struct tw_ids ids, tmp;       /* candidates, and one term's answer */
};

static enum tw_rc emit(struct run *r, const struct tw_event *ev, struct tw_err *err)
{
	enum tw_rc rc;

	r->st->matched++;
	if (!r->ordered)
		return tw_qexec_push(r->x, ev, &r->done, err);
	if (r->nh == r->caph) {
		size_t nc = r->caph ? r->caph * 2 : 1024;
		struct held *nh = realloc(r->h, nc * sizeof *nh);
		if (!nh)
			return tw_err_set(err, TW_ENOMEM, "out of memory holding %zu matches", r->nh);
		r->h = nh;
		r->caph = nc;
	}
	r->h[r->nh].t = ev->time_ms;
	r->h[r->nh].seq = r->nh;
	r->h[r->nh].off = r->hold.n;
	rc = tw_evcodec_encode(&r->hold, ev, err);
	if (rc == TW_ELIMIT)
		return tw_err_set(err, TW_ELIMIT,
				  "more than %zu bytes of matching events to order by time; narrow the time range "
				  "or the filter, or aggregate with stats",
				  r->hold.max);
	if (rc != TW_OK)
		return rc;
	r->nh++;
	return TW_OK;
}

static int held_cmp(const void *pa, const void *pb)
{
	const struct held *a = pa, *b = pb;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static enum tw_rc flush_held(struct run *r, struct tw_err *err)
{
	qsort(r->h, r->nh, sizeof *r->h, held_cmp);
	for (size_t i = 0; i < r->nh && !r->done; i++) {
		struct tw_event ev;
		enum tw_rc rc;

		tw_arena_reset(&r->a);
		rc = tw_evcodec_decode(r->hold.p + r->h[i].off, r->hold.n - r->h[i].off, NULL, &ev, &r->a, err);
		if (rc != TW_OK)
			return rc;
		rc = tw_qexec_push(r->x, &ev, &r->done, err);
		if (rc != TW_OK)
			return rc;
	}
	return TW_OK;
}

int tw_query_needs_order(const struct tw_query *q)
{
	for (size_t i = 0; i < q->ncmds; i++) {
		if (q->cmds[i].kind == QCMD_STATS || q->cmds[i].kind == QCMD_SORT)
			return 0;
		if (q->cmds[i].kind == QCMD_LIMIT || q->cmds[i].kind == QCMD_DEDUP)
			return 1;
	}
	return 1;
}

static int in_range(const struct run *r, int64_t t)
{
	return t >= r->lo && t <= r->hi;
}

static enum tw_rc ids_push(struct tw_ids *ids, uint32_t v, struct tw_err *err)
{
	if (ids->n == ids->cap) {
		size_t nc = ids->cap ? ids->cap * 2 : 256;
		uint32_t *nv = realloc(ids->v, nc * sizeof *nv);
		if (!nv)
			return tw_err_set(err, TW_ENOMEM, "out of memory for %zu record ids", ids->n);
		ids->v = nv;
		ids->cap = nc;
	}
	ids->v[ids->n++] = v;
	return TW_OK;
}

static int u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	return a < b ? -1 : a > b;
}

/* Sorts and removes duplicates (the union of several appended sorted lists). */
static void ids_normalize(struct tw_ids *ids)
{
	size_t w = 0;
	qsort(ids->v, ids->n, sizeof *ids->v, u32_cmp);
	for (size_t i = 0; i < ids->n; i++)
		if (!w || ids->v[w - 1] != ids->v[i])
			ids->v[w++] = ids->v[i];
	ids->n = w;
}

/* a = a AND b (both sorted unique), in place. */
static void ids_intersect(struct tw_ids *a, const struct tw_ids *b)
{
	size_t i = 0, j = 0, w = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i] < b->v[j])
			i++;
		else if (a->v[i] > b->v[j])
			j++;
		else {
			a->v[w++] = a->v[i];
			i++;
			j++;
		}
	}
	a->n = w;
}

/* The postings answer for one term into out (sorted unique). Returns 0 when the term is not
 * answerable from postings (out untouched), 1 when out holds the answer. */
static int term_ids(struct tw_seg *s, const struct tw_qterm *t, struct tw_ids *out, enum tw_rc *rc,
		    struct tw_err *err)
{
	int ix;

	*rc = TW_OK;
	if (t->op == TW_QTERM_TIME)
		return 0;
	ix = tw_ix_lookup(t->field, strlen(t->field));
	if (ix < 0)
		return 0;
	out->n = 0;
	if (ix == TW_IX_EVENT_ID) {
		if (t->op == TW_QTERM_PREFIX)
			return 0;
		for (size_t k = 0; k < t->nvalues; k++) {
			uint32_t rec;
			struct tw_err e2 = { 0 };
			int hit = tw_seg_has_id(s, t->values[k], &rec, &e2);
			if (hit < 0 || e2.rc != TW_OK) {
				*rc = tw_err_set(err, e2.rc != TW_OK ? e2.rc : TW_ECORRUPT, "%s", e2.msg);
				return 1;
			}
			if (hit == 1 && (*rc = ids_push(out, rec, err)) != TW_OK)
				return 1;
		}
		ids_normalize(out);
		return 1;
	}
	if (t->op == TW_QTERM_PREFIX) {
		*rc = tw_seg_lookup_prefix(s, (enum tw_ix)ix, t->values[0], out, err);
		return 1;
	}
	for (size_t k = 0; k < t->nvalues; k++) {
		*rc = tw_seg_lookup(s, (enum tw_ix)ix, t->values[k], out, err);
		if (*rc != TW_OK)
			return 1;
	}
	if (t->nvalues > 1)
		ids_normalize(out);
	return 1;
}

/* Fetches one record, checks it, emits it on a match. */
static enum tw_rc check_rec(struct run *r, struct tw_seg *s, uint32_t rec, struct tw_err *err)
{
	struct tw_event ev;
	enum tw_rc rc;

	tw_arena_reset(&r->a);
	rc = tw_seg_get(s, rec, &r->bb, &ev, &r->a, err);
	if (rc != TW_OK)
		return rc;
	r->st->fetched++;
	if (!in_range(r, ev.time_ms) || !tw_query_match(r->q, &ev))
		return TW_OK;
	return emit(r, &ev, err);
}

static enum tw_rc run_segment(struct run *r, struct tw_seg *s, const struct tw_qterm *terms, size_t nterms,
			      int use_index, struct tw_err *err)
{
	const struct tw_seg_info *info = tw_seg_get_info(s);
	struct tw_seg_block meta;
	int have = 0;
	uint32_t cur_block = UINT32_MAX;
	int cur_skip = 0;
	enum tw_rc rc;

	r->st->segments++;
	r->st->records += info->records;
	if (!info->records || info->tmin > r->hi || info->tmax < r->lo) {
		r->st->segments_pruned++;
		return TW_OK;
	}
	r->st->blocks += info->blocks;
	for (size_t i = 0; use_index && i < nterms; i++) {
		struct tw_ids *dst = have ? &r->tmp : &r->ids;
		if (!term_ids(s, &terms[i], dst, &rc, err))
			continue;
		if (rc != TW_OK)
			return rc;
		if (have)
			ids_intersect(&r->ids, &r->tmp);
		have = 1;
		if (!r->ids.n)
			break;
	}
	if (have) {
		if (!r->ids.n) {
			r->st->segments_pruned++;
			return TW_OK;
		}
		r->st->candidates += r->ids.n;
		for (size_t k = 0; k < r->ids.n && !r->done; k++) {
			uint32_t rec = r->ids.v[k];
			if (cur_block == UINT32_MAX || rec < meta.first || rec - meta.first >= meta.count) {
				cur_block = tw_seg_block_of(s, rec);
				tw_seg_block_meta(s, cur_block, &meta);
				cur_skip = meta.tmin > r->hi || meta.tmax < r->lo;
				if (cur_skip)
					r->st->blocks_pruned++;
				else
					r->st->blocks_read++;
			}
			if (cur_skip)
				continue;
			if ((rc = check_rec(r, s, rec, err)) != TW_OK)
				return rc;
		}
		return TW_OK;
	}
	r->st->candidates += info->records;
	for (uint32_t b = 0; b < info->blocks && !r->done; b++) {
		tw_seg_block_meta(s, b, &meta);
		if (meta.tmin > r->hi || meta.tmax < r->lo) {
			r->st->blocks_pruned++;
			continue;
		}
		r->st->blocks_read++;
		for (uint32_t k = 0; k < meta.count && !r->done; k++)
			if ((rc = check_rec(r, s, meta.first + k, err)) != TW_OK)
				return rc;
	}
	return TW_OK;
}

static void describe_terms(struct tw_qrun_stats *st, const struct tw_qterm *terms, size_t nterms, int use_index)
{
	struct tw_buf b;
	struct tw_err e = { 0 };

	tw_buf_init(&b, sizeof st->terms - 1);
	for (size_t i = 0; use_index && i < nterms; i++) {
		const struct tw_qterm *t = &terms[i];
		int ix = t->op == TW_QTERM_TIME ? -1 : tw_ix_lookup(t->field, strlen(t->field));
		if (ix < 0 || (ix == TW_IX_EVENT_ID && t->op == TW_QTERM_PREFIX))
			continue;
		st->terms_used++;
		if (b.n && tw_buf_append(&b, ", ", 2, &e) != TW_OK)
			break;
		if (t->op == TW_QTERM_IN && t->nvalues != 1)
			tw_buf_printf(&b, &e, "%s in [%zu values]", t->field, t->nvalues);
		else
			tw_buf_printf(&b, &e, "%s%s\"%.*s\"", t->field, t->op == TW_QTERM_PREFIX ? " starts with " : "=",
				      (int)(t->values[0].n > 80 ? 80 : t->values[0].n), t->values[0].p);
	}
	if (b.n)
		memcpy(st->terms, b.p, b.n);
	st->terms[b.n] = 0;
	tw_buf_free(&b);
}

enum tw_rc tw_query_run(const char *const *stores, size_t nstores, const struct tw_query *q, int64_t from_ms,
			int64_t until_ms, const struct tw_qrun_opts *opts, struct tw_qexec *x,
			struct tw_qrun_stats *st, struct tw_err *err)
{
	struct tw_qrun_stats local;
	struct run r;
	const struct tw_qterm *terms;
	size_t nterms = 0;
	int use_index = !(opts && opts->no_index);
	enum tw_rc rc = TW_OK;

	if (!st)
		st = &local;
	memset(st, 0, sizeof *st);
	memset(&r, 0, sizeof r);
	r.q = q;
	r.x = x;
	r.st = st;
	r.lo = from_ms;
	r.hi = until_ms;
	r.ordered = opts && opts->ordered;
	tw_buf_init(&r.hold, opts && opts->max_hold_bytes ? opts->max_hold_bytes : HOLD_DEFAULT);
	tw_seg_blockbuf_init(&r.bb);
	tw_arena_init(&r.a, 4096, 0);

	terms = tw_query_index_terms(q, &nterms);
	for (size_t i = 0; i < nterms; i++) {
		if (terms[i].op != TW_QTERM_TIME)
			continue;
		if (terms[i].tmin > r.lo)
			r.lo = terms[i].tmin;
		if (terms[i].tmax < r.hi)
			r.hi = terms[i].tmax;
	}
	st->tmin = r.lo;
	st->tmax = r.hi;
	describe_terms(st, terms, nterms, use_index);

	for (size_t si = 0; si < nstores && !r.done && rc == TW_OK; si++) {
		struct tw_snap *snap = NULL;
		const struct tw_batch *tail;

		if ((rc = tw_snap_open(stores[si], &snap, err)) != TW_OK)
			break;
		st->stores++;
		for (size_t i = 0; i < tw_snap_nsegs(snap) && !r.done && rc == TW_OK; i++)
			rc = run_segment(&r, tw_snap_seg(snap, i), terms, nterms, use_index, err);
		tail = tw_snap_tail(snap);
		st->records += tail ? tail->n : 0;
		for (size_t i = 0; tail && i < tail->n && !r.done && rc == TW_OK; i++) {
			const struct tw_event *ev = &tail->ev[i];
			st->tail_scanned++;
			if (in_range(&r, ev->time_ms) && tw_query_match(q, ev))
				rc = emit(&r, ev, err);
		}
		/* The blockbuf caches a block of this snapshot's segments: forget it before they close. */
		tw_seg_blockbuf_free(&r.bb);
		tw_seg_blockbuf_init(&r.bb);
		tw_snap_close(snap);
	}
	if (rc == TW_OK && r.ordered)
		rc = flush_held(&r, err);
	tw_seg_blockbuf_free(&r.bb);
	tw_arena_free(&r.a);
	tw_buf_free(&r.hold);
	free(r.h);
	tw_ids_free(&r.ids);
	tw_ids_free(&r.tmp);
	return rc;
}
