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
 *  4. The WAL tail (unsorted, small: at most a WAL's worth) is scanned fully.
 *  5. Count queries (tw_query_counts_from_postings): a segment wholly inside the time range is
 *     answered from its postings alone (group value counts, or the sizes of the filter's ids
 *     within each group's ids) and pushed with tw_qexec_push_count; its records are not read.
 *     Exact because every filter leaf is an index term (checked leaf by leaf) and the by fields
 *     are single-valued indexed fields, whose postings hold exactly the values tw_q_value gives
 *     (records without a posting are the null group). */
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
#define COUNT_MAX_BY 4             /* group fields a count query may have to be answered from postings */
#define COUNT_MAX_VALUES 10000     /* distinct values of one group field in a segment; more: read it */
#define COUNT_DENSE_MAX (1u << 20) /* value combinations counted in a dense array; more: sort keys */

/* The distinct values of one group field in the segment being counted. */
struct gvals {
	struct tw_str *v; /* values (copies in run.va) */
	uint32_t *cnt;    /* records holding each */
	size_t n, cap;    /* entries in use / allocated */
};

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
	int count;                    /* count query: answer whole segments from postings */
	int ix_by[COUNT_MAX_BY];      /* count query: indexed field of each group field */
	size_t nby;                   /* count query: group fields */
	struct gvals gv[COUNT_MAX_BY]; /* count query: each group field's values in the segment */
	struct tw_arena va;           /* count query: value copies, reset per segment */
	size_t gv_at;                 /* count query: the group field gv_add collects */
	int gv_err;                   /* count query: collecting values ran out of memory */
	int fields_only;              /* the query never reads raw: fetch records without it */
	int filter_fields_only;       /* the leading filters read no raw: test a record on its fields
	                               * first, fetch the raw frame only for a match */
	const struct tw_qrun_opts *o; /* the caller's options (on_damage), may be NULL */
	int bad_block;                /* check_rec left the current block out (damaged) */
};

/* 1 when rc is damage the caller asked to go on after (opts.on_damage): reported, err cleared. */
static int damage(struct run *r, enum tw_rc rc, struct tw_err *err)
{
	if (!r->o || !r->o->on_damage || (rc != TW_ECORRUPT && rc != TW_EIO && rc != TW_EUNSUP && rc != TW_EPARSE))
		return 0;
	r->st->damaged++;
	r->o->on_damage(r->o->damage_ctx, err->msg);
	tw_err_clear(err);
	return 1;
}

/* 1 when resolving fld reads the raw record (a JSON path or @message). */
static int field_reads_raw(const struct qfield *fld)
{
	return fld->kind == QF_RAW || fld->kind == QF_PATH;
}

static int node_reads_raw(const struct qnode *n)
{
	if (!n)
		return 0;
	switch (n->kind) {
	case QN_AND:
	case QN_OR:
		return node_reads_raw(n->a) || node_reads_raw(n->b);
	case QN_NOT:
		return node_reads_raw(n->a);
	case QN_CMP:
		return (n->l.is_field && field_reads_raw(&n->l.fld)) || (n->r.is_field && field_reads_raw(&n->r.fld));
	case QN_IN:
	case QN_LIKE:
	case QN_REGEX:
	case QN_PRESENT:
		return n->l.is_field && field_reads_raw(&n->l.fld);
	}
	return 1;
}

/* 1 when the filters tw_query_match evaluates (the leading ones) read no raw record. */
static int filters_fields_only(const struct tw_query *q)
{
	for (size_t i = 0; i < q->nlead && i < q->ncmds; i++)
		if (q->cmds[i].kind == QCMD_FILTER && node_reads_raw(q->cmds[i].expr))
			return 0;
	return 1;
}

/* 1 when q's result can be computed without the records' raw JSON: it aggregates (stats), and
 * nothing up to and including the stats reads a JSON path or @message. Commands after the stats
 * read the stats table, not records. Such queries fetch only the blocks' fields frames. */
static int query_fields_only(const struct tw_query *q)
{
	for (size_t i = 0; i < q->ncmds; i++) {
		const struct qcmd_s *c = &q->cmds[i];
		switch (c->kind) {
		case QCMD_FILTER:
			if (node_reads_raw(c->expr))
				return 0;
			break;
		case QCMD_FIELDS:
		case QCMD_DEDUP:
			for (size_t k = 0; k < c->nflds; k++)
				if (field_reads_raw(&c->flds[k]))
					return 0;
			break;
		case QCMD_SORT:
			for (size_t k = 0; k < c->nkeys; k++)
				if (field_reads_raw(&c->keys[k].fld))
					return 0;
			break;
		case QCMD_LIMIT:
			break;
		case QCMD_STATS:
			for (size_t k = 0; k < c->naggs; k++)
				if (!c->aggs[k].star && field_reads_raw(&c->aggs[k].fld))
					return 0;
			for (size_t k = 0; k < c->nby; k++)
				if (!c->by[k].is_bin && field_reads_raw(&c->by[k].fld))
					return 0;
			return 1;
		}
	}
	return 0; /* no stats: events are the output, with their raw records */
}

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
	if (r->nh)
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
	if (ids->n > 1)
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

/* ---- counting from postings ------------------------------------------------------------------ */

/* The indexed field whose postings hold exactly the single value tw_q_value gives for f, or -1. */
static int field_ix(const struct qfield *f)
{
	const char *name;
	int ix;

	switch (f->kind) {
	case QF_KIND: return TW_IX_KIND;
	case QF_READONLY: return TW_IX_READ_ONLY;
	case QF_FIELD:
		name = tw_field_name((enum tw_field)f->f);
		if (!name)
			return -1;
		ix = tw_ix_lookup(name, strlen(name));
		return ix == TW_IX_RESOURCE ? -1 : ix;
	default: return -1;
	}
}

/* 1 when filter expression n is an AND of leaves that each became an exact index term: equality
 * or "in" with string literals on an indexed single-valued field (*leaves counts them), or a time
 * comparison with a number (the run's time range). Mirrors parse.c's collect_terms. */
static int filter_covered(const struct qnode *n, size_t *leaves)
{
	static const enum qcmp flip[] = { 0, QC_EQ, QC_NE, QC_GT, QC_GE, QC_LT, QC_LE };

	if (n->kind == QN_AND)
		return filter_covered(n->a, leaves) && filter_covered(n->b, leaves);
	if (n->kind == QN_CMP && n->l.is_field != n->r.is_field) {
		const struct qfield *f = n->l.is_field ? &n->l.fld : &n->r.fld;
		const struct tw_qval *v = n->l.is_field ? &n->r.lit : &n->l.lit;
		enum qcmp op = n->l.is_field ? n->op : flip[n->op];
		if (f->kind == QF_TIME)
			return v->type == TW_QV_NUM && op != QC_NE;
		if (op != QC_EQ || v->type != TW_QV_STR || field_ix(f) < 0)
			return 0;
		(*leaves)++;
		return 1;
	}
	if (n->kind == QN_IN && field_ix(&n->l.fld) >= 0) {
		for (size_t k = 0; k < n->nvals; k++)
			if (n->vals[k].type != TW_QV_STR)
				return 0;
		(*leaves)++;
		return 1;
	}
	return 0;
}

int tw_query_counts_from_postings(const struct tw_query *q)
{
	const struct qcmd_s *c = NULL;
	const struct tw_qterm *terms;
	size_t leaves = 0, nterms = 0, nt = 0;

	for (size_t k = 0; k < q->ncmds && !c; k++) {
		switch (q->cmds[k].kind) {
		case QCMD_FILTER:
			if (!filter_covered(q->cmds[k].expr, &leaves))
				return 0;
			break;
		case QCMD_FIELDS:
			break;
		case QCMD_STATS:
			c = &q->cmds[k];
			break;
		default:
			return 0;
		}
	}
	if (!c || !c->naggs || c->nby > COUNT_MAX_BY)
		return 0;
	for (size_t k = 0; k < c->naggs; k++)
		if (c->aggs[k].fn != QA_COUNT || !c->aggs[k].star)
			return 0;
	for (size_t k = 0; k < c->nby; k++) {
		int ix = c->by[k].is_bin ? -1 : field_ix(&c->by[k].fld);
		if (ix < 0 || ix == TW_IX_EVENT_ID)
			return 0;
	}
	/* every covered leaf gave exactly one term (a leaf gives at most one): none was missed */
	terms = tw_query_index_terms(q, &nterms);
	for (size_t i = 0; i < nterms; i++)
		nt += terms[i].op != TW_QTERM_TIME;
	return nt == leaves;
}

static int gv_add(void *ctx, struct tw_str value, uint32_t count)
{
	struct run *r = ctx;
	struct gvals *g = &r->gv[r->gv_at];

	if (g->n == COUNT_MAX_VALUES)
		return 1;
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 64;
		struct tw_str *nv = realloc(g->v, nc * sizeof *nv);
		uint32_t *ncnt = nv ? realloc(g->cnt, nc * sizeof *ncnt) : NULL;
		if (nv)
			g->v = nv;
		if (!ncnt) {
			r->gv_err = 1;
			return 1;
		}
		g->cnt = ncnt;
		g->cap = nc;
	}
	if (tw_arena_dup(&r->va, value, &g->v[g->n], NULL) != TW_OK) {
		r->gv_err = 1;
		return 1;
	}
	g->cnt[g->n++] = count;
	return 0;
}

/* Pushes the group of combination key (mixed radix over the group fields: value index, or n for
 * absent) with its count. */
static enum tw_rc push_combo(struct run *r, uint64_t key, uint64_t count, struct tw_err *err)
{
	struct tw_qval vals[COUNT_MAX_BY];

	for (size_t k = 0; k < r->nby; k++) {
		uint64_t radix = r->gv[k].n + 1, j = key % radix;
		key /= radix;
		memset(&vals[k], 0, sizeof vals[k]);
		vals[k].s = TW_STR_LIT("");
		if (j < r->gv[k].n) {
			vals[k].type = TW_QV_STR;
			vals[k].s = r->gv[k].v[j];
		}
	}
	return tw_qexec_push_count(r->x, vals, count, err);
}

static int u64_cmp(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return a < b ? -1 : a > b;
}

/* Counts the groups of the records in ids (or all records when all) from per-record value codes. */
static enum tw_rc count_combos(struct run *r, struct tw_seg *s, int all, struct tw_err *err)
{
	uint64_t nrec = tw_seg_get_info(s)->records, prod = 1, ncand = all ? nrec : r->ids.n;
	uint32_t *code = malloc((size_t)nrec * r->nby * sizeof *code);
	uint64_t *cnt = NULL, *keys = NULL;
	enum tw_rc rc = TW_OK;

	if (!code)
		return tw_err_set(err, TW_ENOMEM, "out of memory counting %" PRIu64 " records", nrec);
	for (size_t k = 0; k < r->nby; k++) {
		uint32_t *ck = code + k * nrec;
		prod *= r->gv[k].n + 1;
		for (uint64_t i = 0; i < nrec; i++)
			ck[i] = (uint32_t)r->gv[k].n;
		for (size_t j = 0; j < r->gv[k].n; j++) {
			r->tmp.n = 0;
			if ((rc = tw_seg_lookup(s, (enum tw_ix)r->ix_by[k], r->gv[k].v[j], &r->tmp, err)) != TW_OK)
				goto out;
			for (size_t i = 0; i < r->tmp.n; i++)
				if (r->tmp.v[i] < nrec)
					ck[r->tmp.v[i]] = (uint32_t)j;
		}
	}
	if (prod <= COUNT_DENSE_MAX)
		cnt = calloc((size_t)prod, sizeof *cnt);
	else
		keys = malloc((size_t)(ncand ? ncand : 1) * sizeof *keys);
	if (!cnt && !keys) {
		rc = tw_err_set(err, TW_ENOMEM, "out of memory counting %" PRIu64 " records", ncand);
		goto out;
	}
	for (uint64_t i = 0; i < ncand; i++) {
		uint64_t rec = all ? i : r->ids.v[i], key = 0;
		for (size_t k = r->nby; k-- > 0;)
			key = key * (r->gv[k].n + 1) + code[k * nrec + rec];
		if (cnt)
			cnt[key]++;
		else
			keys[i] = key;
	}
	if (cnt) {
		for (uint64_t key = 0; key < prod && rc == TW_OK; key++)
			if (cnt[key])
				rc = push_combo(r, key, cnt[key], err);
	} else {
		if (ncand > 1)
			qsort(keys, (size_t)ncand, sizeof *keys, u64_cmp);
		for (uint64_t i = 0, j; i < ncand && rc == TW_OK; i = j) {
			for (j = i + 1; j < ncand && keys[j] == keys[i]; j++)
				;
			rc = push_combo(r, keys[i], j - i, err);
		}
	}
out:
	free(code);
	free(cnt);
	free(keys);
	return rc;
}

/* Answers segment s (wholly inside the time range) of a count query from its postings. *answered
 * is 0 when it cannot (too many distinct group values): the caller reads it instead. */
static enum tw_rc count_segment(struct run *r, struct tw_seg *s, const struct tw_qterm *terms, size_t nterms,
				int *answered, struct tw_err *err)
{
	const struct tw_seg_info *info = tw_seg_get_info(s);
	int have = 0;
	uint64_t total, sum = 0;
	enum tw_rc rc;

	*answered = 0;
	for (size_t i = 0; i < nterms; i++) {
		struct tw_ids *dst = have ? &r->tmp : &r->ids;
		if (terms[i].op == TW_QTERM_TIME)
			continue;
		if (!term_ids(s, &terms[i], dst, &rc, err))
			return TW_OK; /* not answerable from postings: read the segment */
		if (rc != TW_OK)
			return rc;
		if (have)
			ids_intersect(&r->ids, &r->tmp);
		have = 1;
		if (!r->ids.n)
			break;
	}
	total = have ? r->ids.n : info->records;
	tw_arena_reset(&r->va);
	for (size_t k = 0; k < r->nby && total; k++) {
		r->gv[k].n = 0;
		r->gv_err = 0;
		r->gv_at = k;
		rc = tw_seg_values(s, (enum tw_ix)r->ix_by[k], gv_add, r, err);
		if (rc != TW_OK)
			return rc;
		if (r->gv_err)
			return tw_err_set(err, TW_ENOMEM, "out of memory for the values of a group field");
		if (r->gv[k].n == COUNT_MAX_VALUES)
			return TW_OK; /* too many groups to count this way */
	}
	*answered = 1;
	r->st->segments_counted++;
	r->st->records_counted += total;
	if (!total)
		return TW_OK;
	if (!r->nby)
		return tw_qexec_push_count(r->x, NULL, total, err);
	if (r->nby == 1 && !have) {
		struct tw_qval v = { .type = TW_QV_STR };
		for (size_t j = 0; j < r->gv[0].n; j++) {
			v.s = r->gv[0].v[j];
			sum += r->gv[0].cnt[j];
			if ((rc = tw_qexec_push_count(r->x, &v, r->gv[0].cnt[j], err)) != TW_OK)
				return rc;
		}
		if (sum > total)
			return tw_err_set(err, TW_ECORRUPT, "%s: postings count %" PRIu64 " values of %s in %" PRIu64
					  " records", tw_seg_path(s), sum, tw_ix_name((enum tw_ix)r->ix_by[0]), total);
		v.type = TW_QV_NULL;
		v.s = TW_STR_LIT("");
		return tw_qexec_push_count(r->x, &v, total - sum, err);
	}
	return count_combos(r, s, !have, err);
}

/* Fetches one record, checks it, emits it on a match. */
static enum tw_rc check_rec(struct run *r, struct tw_seg *s, uint32_t rec, struct tw_err *err)
{
	struct tw_event ev;
	enum tw_rc rc;

	tw_arena_reset(&r->a);
	if (r->fields_only || r->filter_fields_only) {
		rc = tw_seg_get_fields(s, rec, &r->bb, &ev, &r->a, err);
		if (rc == TW_OK && !r->fields_only && in_range(r, ev.time_ms) && tw_query_match(r->q, &ev)) {
			/* A match that is output as an event: now fetch it whole (the raw frame only). */
			tw_arena_reset(&r->a);
			rc = tw_seg_get(s, rec, &r->bb, &ev, &r->a, err);
		}
	} else {
		rc = tw_seg_get(s, rec, &r->bb, &ev, &r->a, err);
	}
	if (rc != TW_OK) {
		if (damage(r, rc, err)) {
			r->bad_block = 1; /* the caller skips the rest of the block */
			return TW_OK;
		}
		return rc;
	}
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
	if (r->count && info->tmin >= r->lo && info->tmax <= r->hi) {
		int answered;
		if ((rc = count_segment(r, s, terms, nterms, &answered, err)) != TW_OK && damage(r, rc, err))
			return TW_OK; /* damaged postings: the segment is left out */
		if (rc != TW_OK || answered)
			return rc;
	}
	for (size_t i = 0; use_index && i < nterms; i++) {
		struct tw_ids *dst = have ? &r->tmp : &r->ids;
		if (!term_ids(s, &terms[i], dst, &rc, err))
			continue;
		if (rc != TW_OK)
			return damage(r, rc, err) ? TW_OK : rc;
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
			r->bad_block = 0;
			if ((rc = check_rec(r, s, rec, err)) != TW_OK)
				return rc;
			if (r->bad_block)
				cur_skip = 1; /* damaged: the rest of this block is left out */
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
		r->bad_block = 0;
		for (uint32_t k = 0; k < meta.count && !r->done && !r->bad_block; k++)
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
	r.o = opts;
	r.ordered = opts && opts->ordered;
	r.fields_only = !r.ordered && query_fields_only(q);
	r.filter_fields_only = filters_fields_only(q);
	tw_buf_init(&r.hold, opts && opts->max_hold_bytes ? opts->max_hold_bytes : HOLD_DEFAULT);
	tw_seg_blockbuf_init(&r.bb);
	tw_arena_init(&r.a, 4096, 0);
	tw_arena_init(&r.va, 65536, 0);
	if (use_index && !(opts && opts->no_count_postings) && tw_query_counts_from_postings(q)) {
		const struct qcmd_s *c = &q->cmds[0];
		while (c->kind != QCMD_STATS)
			c++;
		r.count = 1;
		r.nby = c->nby;
		for (size_t k = 0; k < c->nby; k++)
			r.ix_by[k] = field_ix(&c->by[k].fld);
	}

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

		if (opts && opts->on_damage) {
			if ((rc = tw_snap_open_partial(stores[si], &snap, err)) != TW_OK)
				break;
			for (size_t i = 0; i < tw_snap_nproblems(snap); i++) {
				st->damaged++;
				opts->on_damage(opts->damage_ctx, tw_snap_problem(snap, i));
			}
		} else if ((rc = tw_snap_open(stores[si], &snap, err)) != TW_OK) {
			break;
		}
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
	tw_arena_free(&r.va);
	for (size_t k = 0; k < COUNT_MAX_BY; k++) {
		free(r.gv[k].v);
		free(r.gv[k].cnt);
	}
	return rc;
}
