/* SPDX-License-Identifier: Apache-2.0 */
/* query/eval.c: field resolution (extracted fields, JSON paths walked on the raw record with the
 * pull reader of core/json.h, or table columns) and filter evaluation. Allocates only from the
 * scratch arena the caller resets; never writes to the query tree.
 *
 * Invariants:
 *  1. A JSON path walk reads only up to the value it needs; text it passes is validated by the
 *     reader, and any error makes the field absent (a bad record matches nothing, it never fails).
 *  2. Multi-valued fields (resource) satisfy a predicate when any value does; "!=" is the negation
 *     of "=" so that "resource != x" means "x is not among the resources".
 *  3. Comparison rules are documented in query.h; tw_q_order is a total order (for sorting). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/time.h"
#include "query/query_int.h"

#define PATH_MAX_DEPTH 256 /* JSON nesting accepted while walking a path */

static int isdig(char c) { return c >= '0' && c <= '9'; }

int tw_q_numeric(struct tw_str s, double *num)
{
	const char *p = s.p;
	size_t n = s.n, i = 0;
	if (!n)
		return 0;
	if (p[i] == '-')
		i++;
	if (i >= n || !isdig(p[i]))
		return 0;
	if (p[i] == '0')
		i++;
	else
		while (i < n && isdig(p[i]))
			i++;
	if (i < n && p[i] == '.') {
		i++;
		if (i >= n || !isdig(p[i]))
			return 0;
		while (i < n && isdig(p[i]))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i >= n || !isdig(p[i]))
			return 0;
		while (i < n && isdig(p[i]))
			i++;
	}
	if (i != n)
		return 0;
	char buf[64];
	if (n < sizeof buf) {
		memcpy(buf, p, n);
		buf[n] = '\0';
		*num = strtod(buf, NULL);
		return 1;
	}
	char *m = malloc(n + 1);
	if (!m)
		return 0;
	memcpy(m, p, n);
	m[n] = '\0';
	*num = strtod(m, NULL);
	free(m);
	return 1;
}

struct tw_str tw_q_fmtnum(struct tw_arena *a, double d)
{
	char buf[40];
	int l = 0;
	for (int prec = 15; prec <= 17; prec++) {
		l = snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	struct tw_str out = { "", 0 };
	if (tw_arena_dup(a, (struct tw_str){ buf, (size_t)l }, &out, NULL) != TW_OK)
		return (struct tw_str){ "", 0 };
	return out;
}

/* ---- JSON paths ------------------------------------------------------------------------------- */
static int key_eq(struct tw_str key, struct tw_str seg, struct tw_arena *a)
{
	if (!memchr(key.p, '\\', key.n))
		return key.n == seg.n && !memcmp(key.p, seg.p, seg.n);
	struct tw_str d;
	if (tw_json_unescape(key, a, &d, NULL) != TW_OK)
		return 0;
	return d.n == seg.n && !memcmp(d.p, seg.p, seg.n);
}

static int seg_index(struct tw_str seg, size_t *idx)
{
	if (!seg.n || seg.n > 9)
		return 0;
	size_t v = 0;
	for (size_t i = 0; i < seg.n; i++) {
		if (!isdig(seg.p[i]))
			return 0;
		v = v * 10 + (size_t)(seg.p[i] - '0');
	}
	*idx = v;
	return 1;
}

/* Walks f's segments on raw; *out is null when the path does not resolve. */
static int path_value(struct tw_str raw, const struct qfield *f, struct tw_arena *a, struct tw_qval *out)
{
	memset(out, 0, sizeof *out);
	if (!raw.n)
		return 0;
	struct tw_json j;
	tw_json_init(&j, raw.p, raw.n, PATH_MAX_DEPTH);
	for (size_t k = 0; k < f->nseg; k++) {
		enum tw_json_type t = tw_json_peek(&j);
		int found = 0;
		if (t == TW_JSON_OBJECT) {
			struct tw_str key;
			if (!tw_json_obj_begin(&j))
				return 0;
			int r;
			while ((r = tw_json_obj_next(&j, &key)) == 1) {
				if (key_eq(key, f->seg[k], a)) {
					found = 1;
					break;
				}
				if (!tw_json_skip(&j, NULL))
					return 0;
			}
		} else if (t == TW_JSON_ARRAY) {
			size_t idx, i = 0;
			if (!seg_index(f->seg[k], &idx) || !tw_json_arr_begin(&j))
				return 0;
			while (tw_json_arr_next(&j) == 1) {
				if (i++ == idx) {
					found = 1;
					break;
				}
				if (!tw_json_skip(&j, NULL))
					return 0;
			}
		}
		if (!found)
			return 0;
	}
	enum tw_json_type t = tw_json_peek(&j);
	struct tw_str s;
	int esc = 0;
	switch (t) {
	case TW_JSON_STRING:
		if (!tw_json_string(&j, &s, &esc))
			return 0;
		if (esc) {
			if (tw_json_unescape(s, a, &s, NULL) != TW_OK)
				return -1;
		}
		out->type = TW_QV_STR;
		out->s = s;
		return 0;
	case TW_JSON_NUMBER:
		if (!tw_json_scalar(&j, &t, &s, &esc))
			return 0;
		out->type = TW_QV_NUM;
		out->s = s;
		tw_q_numeric(s, &out->num);
		return 0;
	case TW_JSON_TRUE:
	case TW_JSON_FALSE:
		if (!tw_json_scalar(&j, &t, &s, &esc))
			return 0;
		out->type = TW_QV_STR;
		out->s = t == TW_JSON_TRUE ? TW_STR_LIT("true") : TW_STR_LIT("false");
		return 0;
	case TW_JSON_OBJECT:
	case TW_JSON_ARRAY:
		if (!tw_json_skip(&j, &s))
			return 0;
		out->type = TW_QV_STR;
		out->s = s;
		return 0;
	default:
		return 0; /* null, or invalid text */
	}
}

/* ---- values ------------------------------------------------------------------------------------ */
int tw_q_value(const struct qctx *c, const struct qfield *fld, struct tw_qval *out)
{
	memset(out, 0, sizeof *out);
	out->s = TW_STR_LIT("");
	if (!c->ev) {
		for (size_t i = 0; i < c->ncols; i++)
			if (c->cols[i].n == fld->col.n && !memcmp(c->cols[i].p, fld->col.p, fld->col.n)) {
				*out = c->vals[i];
				return 0;
			}
		return 0;
	}
	const struct tw_event *ev = c->ev;
	switch (fld->kind) {
	case QF_FIELD:
		if (ev->f[fld->f].n) {
			out->type = TW_QV_STR;
			out->s = ev->f[fld->f];
		}
		return 0;
	case QF_TIME: {
		char buf[24];
		int l = snprintf(buf, sizeof buf, "%lld", (long long)ev->time_ms);
		out->type = TW_QV_NUM;
		out->num = (double)ev->time_ms;
		return tw_arena_dup(c->scratch, (struct tw_str){ buf, (size_t)l }, &out->s, NULL) == TW_OK ? 0 : -1;
	}
	case QF_KIND:
		out->type = TW_QV_STR;
		out->s = (struct tw_str){ tw_kind_name(ev->kind), strlen(tw_kind_name(ev->kind)) };
		return 0;
	case QF_READONLY:
		if (ev->read_only >= 0) {
			out->type = TW_QV_STR;
			out->s = ev->read_only ? TW_STR_LIT("true") : TW_STR_LIT("false");
		}
		return 0;
	case QF_RESOURCE:
		if (ev->nresources) {
			out->type = TW_QV_STR;
			out->s = ev->resources[0];
		}
		return 0;
	case QF_RAW:
		out->type = TW_QV_STR;
		out->s = ev->raw;
		return 0;
	case QF_PATH:
		return path_value(ev->raw, fld, c->scratch, out);
	}
	return 0;
}

static int bytes_cmp(struct tw_str a, struct tw_str b)
{
	size_t m = a.n < b.n ? a.n : b.n;
	int r = m ? memcmp(a.p, b.p, m) : 0;
	if (r)
		return r < 0 ? -1 : 1;
	return a.n < b.n ? -1 : a.n > b.n;
}

static int numclass(const struct tw_qval *v, double *d)
{
	if (v->type == TW_QV_NUM) {
		*d = v->num;
		return 1;
	}
	return v->type == TW_QV_STR && tw_q_numeric(v->s, d);
}

int tw_q_order(const struct tw_qval *a, const struct tw_qval *b)
{
	double da = 0, db = 0;
	int ca = a->type == TW_QV_NULL ? 0 : numclass(a, &da) ? 1 : 2;
	int cb = b->type == TW_QV_NULL ? 0 : numclass(b, &db) ? 1 : 2;
	if (ca != cb)
		return ca < cb ? -1 : 1;
	if (ca == 1)
		return da < db ? -1 : da > db;
	if (ca == 2)
		return bytes_cmp(a->s, b->s);
	return 0;
}

/* a (field side) op b (the other side). */
static int cmp_pred(enum qcmp op, const struct tw_qval *a, const struct tw_qval *b)
{
	if (a->type == TW_QV_NULL || b->type == TW_QV_NULL) {
		int both = a->type == TW_QV_NULL && b->type == TW_QV_NULL;
		if (op == QC_EQ)
			return both;
		if (op == QC_NE)
			return a->type != TW_QV_NULL; /* only "F != null" gets here with F present */
		return 0;
	}
	int r;
	double da, db;
	if ((a->type == TW_QV_NUM || b->type == TW_QV_NUM) && numclass(a, &da) && numclass(b, &db))
		r = da < db ? -1 : da > db;
	else
		r = bytes_cmp(a->s, b->s);
	switch (op) {
	case QC_EQ: return r == 0;
	case QC_NE: return r != 0;
	case QC_LT: return r < 0;
	case QC_LE: return r <= 0;
	case QC_GT: return r > 0;
	case QC_GE: return r >= 0;
	}
	return 0;
}

/* The predicate of leaf n on one value v of its field. */
static int leaf_on(const struct qnode *n, const struct tw_qval *v, enum qcmp op, const struct tw_qval *other)
{
	switch (n->kind) {
	case QN_CMP:
		return cmp_pred(op, v, other);
	case QN_IN:
		for (size_t k = 0; k < n->nvals; k++)
			if (cmp_pred(QC_EQ, v, &n->vals[k]))
				return 1;
		return 0;
	case QN_LIKE:
		if (v->type == TW_QV_NULL)
			return 0;
		if (!n->r.lit.s.n)
			return 1;
		return v->s.n >= n->r.lit.s.n && memmem(v->s.p, v->s.n, n->r.lit.s.p, n->r.lit.s.n) != NULL;
	case QN_REGEX:
		if (v->type == TW_QV_NULL)
			return 0;
		return pcre2_match(n->re, (PCRE2_SPTR)(v->s.p ? v->s.p : ""), v->s.n, 0, 0, n->md, n->mctx) >= 0;
	case QN_PRESENT:
		return v->type != TW_QV_NULL;
	default:
		return 0;
	}
}

static int eval_leaf(const struct qnode *n, const struct qctx *c)
{
	static const enum qcmp flip[] = { 0, QC_EQ, QC_NE, QC_GT, QC_GE, QC_LT, QC_LE };
	const struct qopnd *fo = &n->l, *oo = &n->r;
	enum qcmp op = n->op;
	if (n->kind == QN_CMP && !n->l.is_field) {
		fo = &n->r;
		oo = &n->l;
		op = flip[op];
	}
	struct tw_qval other = { 0 };
	if (n->kind == QN_CMP) {
		if (oo->is_field) {
			if (tw_q_value(c, &oo->fld, &other))
				return 0;
		} else {
			other = oo->lit;
		}
	}
	if (c->ev && fo->fld.kind == QF_RESOURCE && c->ev->nresources > 1) {
		int neg = n->kind == QN_CMP && op == QC_NE;
		if (neg)
			op = QC_EQ;
		for (uint32_t i = 0; i < c->ev->nresources; i++) {
			struct tw_qval v = { .type = TW_QV_STR, .s = c->ev->resources[i] };
			if (leaf_on(n, &v, op, &other))
				return !neg;
		}
		return neg;
	}
	struct tw_qval v;
	if (tw_q_value(c, &fo->fld, &v))
		return 0;
	return leaf_on(n, &v, op, &other);
}

int tw_q_eval(const struct qnode *n, const struct qctx *c)
{
	switch (n->kind) {
	case QN_AND: return tw_q_eval(n->a, c) && tw_q_eval(n->b, c);
	case QN_OR: return tw_q_eval(n->a, c) || tw_q_eval(n->b, c);
	case QN_NOT: return !tw_q_eval(n->a, c);
	default: return eval_leaf(n, c);
	}
}

int tw_query_match(const struct tw_query *q, const struct tw_event *ev)
{
	tw_arena_reset(&q->scratch->a);
	struct qctx c = { .ev = ev, .scratch = &q->scratch->a };
	for (size_t k = 0; k < q->nlead; k++)
		if (q->cmds[k].kind == QCMD_FILTER && !tw_q_eval(q->cmds[k].expr, &c))
			return 0;
	return 1;
}
