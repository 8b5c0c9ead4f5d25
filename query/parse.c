/* SPDX-License-Identifier: Apache-2.0 */
/* query/parse.c: recursive-descent parser from tokens (lex.c) to the tree of query_int.h, the
 * canonical printer used by the golden tests, the caret renderer for errors, and the index terms
 * offered to the store planner. Evaluates nothing (eval.c, exec.c).
 *
 * Invariants:
 *  1. Everything the tree points to lives in q->arena, except pcre2 codes and match data, which are
 *     chained on q->regexes and freed by tw_query_free (which copes with a half-built query).
 *  2. Recursion is bounded: parentheses and "not" count against TW_QUERY_MAX_DEPTH.
 *  3. Every syntax error names the column and what was expected there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/time.h"
#include "query/query_int.h"

struct ps {
	const char *text;     /* the query */
	size_t n;             /* its length */
	struct qtok *t;       /* tokens */
	size_t nt;            /* token count */
	size_t i;             /* current token */
	struct tw_query *q;   /* being built */
	struct tw_err *err;   /* where errors go */
	unsigned depth;       /* current nesting */
};

static const struct qtok *cur(struct ps *p) { return &p->t[p->i]; }
static const struct qtok *ahead(struct ps *p, size_t k)
{
	return p->i + k < p->nt ? &p->t[p->i + k] : &p->t[p->nt - 1];
}
static void adv(struct ps *p)
{
	if (p->t[p->i].t != QT_EOF)
		p->i++;
}

static int kw_tok(struct ps *p, const struct qtok *t, const char *kw)
{
	size_t l = strlen(kw);
	return t->t == QT_WORD && !t->quoted && t->len == l && !strncasecmp(p->text + t->off, kw, l);
}
static int kw(struct ps *p, const char *k) { return kw_tok(p, cur(p), k); }

#define PERR(p, off, ...) tw_q_errat((p)->err, TW_EPARSE, (p)->text, (p)->n, (off), __VA_ARGS__)

static void *palloc(struct ps *p, size_t n)
{
	void *m = tw_arena_alloc(&p->q->arena, n ? n : 1, p->err);
	if (m)
		memset(m, 0, n ? n : 1);
	return m;
}

/* Copies [s, s+n) NUL-terminated into the arena. */
static int pdup(struct ps *p, const char *s, size_t n, struct tw_str *out)
{
	char *m = tw_arena_alloc(&p->q->arena, n + 1, p->err);
	if (!m)
		return -1;
	memcpy(m, s, n);
	m[n] = '\0';
	*out = (struct tw_str){ m, n };
	return 0;
}

/* ---- fields ------------------------------------------------------------------------------------ */
static int field_from_tok(struct ps *p, const struct qtok *t, struct qfield *f)
{
	const char *s = p->text + t->off;
	memset(f, 0, sizeof *f);
	if (pdup(p, s, t->len, &f->name))
		return -1;
	f->col = f->name;
	if (!t->quoted) {
		static const struct {
			const char *name;
			enum qf_kind kind;
		} special[] = {
			{ "@timestamp", QF_TIME }, { "time", QF_TIME },     { "@message", QF_RAW },
			{ "kind", QF_KIND },       { "readOnly", QF_READONLY }, { "resource", QF_RESOURCE },
			{ "resources", QF_RESOURCE },
		};
		for (size_t k = 0; k < sizeof special / sizeof special[0]; k++)
			if (strlen(special[k].name) == t->len && !memcmp(special[k].name, s, t->len)) {
				f->kind = special[k].kind;
				return 0;
			}
		int fi = tw_field_lookup(s, t->len);
		if (fi >= 0) {
			f->kind = QF_FIELD;
			f->f = fi;
			return 0;
		}
	}
	/* A JSON path: split on '.' outside backquotes. */
	size_t nseg = 1;
	for (size_t k = 0, inq = 0; k < t->len; k++) {
		if (s[k] == '`')
			inq = !inq;
		else if (s[k] == '.' && !inq)
			nseg++;
	}
	f->kind = QF_PATH;
	f->seg = palloc(p, nseg * sizeof *f->seg);
	if (!f->seg)
		return -1;
	size_t k = 0;
	while (k <= t->len && f->nseg < nseg) {
		size_t a = k, b;
		if (k < t->len && s[k] == '`') {
			a = k + 1;
			b = a;
			while (s[b] != '`')
				b++;
			k = b + 1;
		} else {
			b = k;
			while (b < t->len && s[b] != '.')
				b++;
			k = b;
		}
		if (pdup(p, s + a, b - a, &f->seg[f->nseg++]))
			return -1;
		k++; /* the dot */
	}
	if (f->nseg == 1)
		f->col = f->seg[0];
	return 0;
}

static int parse_field(struct ps *p, struct qfield *f, const char *what)
{
	const struct qtok *t = cur(p);
	if (t->t != QT_WORD)
		return PERR(p, t->off, "expected a field name %s", what), -1;
	if (field_from_tok(p, t, f))
		return -1;
	adv(p);
	return 0;
}

/* ---- literals ---------------------------------------------------------------------------------- */
static void put_utf8(char *o, size_t *k, uint32_t cp)
{
	if (cp < 0x80) {
		o[(*k)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*k)++] = (char)(0xc0 | (cp >> 6));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*k)++] = (char)(0xe0 | (cp >> 12));
		o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*k)++] = (char)(0xf0 | (cp >> 18));
		o[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static uint32_t hex4(const char *s)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v = v * 16 + (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Decodes a string token (escapes validated by the lexer) into the arena. */
static int decode_string(struct ps *p, const struct qtok *t, struct tw_str *out)
{
	const char *s = p->text + t->off + 1;
	size_t n = t->len - 2;
	char *o = tw_arena_alloc(&p->q->arena, n + 1, p->err);
	if (!o)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			o[k++] = s[i];
			continue;
		}
		char e = s[++i];
		switch (e) {
		case 'b': o[k++] = '\b'; break;
		case 'f': o[k++] = '\f'; break;
		case 'n': o[k++] = '\n'; break;
		case 'r': o[k++] = '\r'; break;
		case 't': o[k++] = '\t'; break;
		case 'u': {
			uint32_t cp = hex4(s + i + 1);
			i += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < n + 0 && s[i + 1] == '\\' && s[i + 2] == 'u') {
				uint32_t lo = hex4(s + i + 3);
				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;
			put_utf8(o, &k, cp); /* \uXXXX is 6 bytes, its UTF-8 at most 4 */
			break;
		}
		default: o[k++] = e; break;
		}
	}
	o[k] = '\0';
	*out = (struct tw_str){ o, k };
	return 0;
}

/* Parses a literal at the current token into *v. */
static int parse_literal(struct ps *p, struct tw_qval *v)
{
	const struct qtok *t = cur(p);
	memset(v, 0, sizeof *v);
	if (t->t == QT_STR) {
		v->type = TW_QV_STR;
		if (decode_string(p, t, &v->s))
			return -1;
	} else if (t->t == QT_NUM) {
		v->type = TW_QV_NUM;
		if (pdup(p, p->text + t->off, t->len, &v->s))
			return -1;
		v->num = strtod(v->s.p, NULL);
	} else if (kw(p, "true") || kw(p, "false")) {
		v->type = TW_QV_STR;
		v->s = kw(p, "true") ? TW_STR_LIT("true") : TW_STR_LIT("false");
	} else if (kw(p, "null")) {
		v->type = TW_QV_NULL;
		v->s = TW_STR_LIT("");
	} else {
		return PERR(p, t->off, "expected a value (string, number, true, false or null)"), -1;
	}
	adv(p);
	return 0;
}

static int is_literal_start(struct ps *p)
{
	const struct qtok *t = cur(p);
	return t->t == QT_STR || t->t == QT_NUM || kw(p, "true") || kw(p, "false") || kw(p, "null");
}

/* A string literal compared with @timestamp becomes its time in ms. */
static int time_literal(struct ps *p, struct tw_qval *v, size_t off)
{
	if (v->type != TW_QV_STR)
		return 0;
	int64_t ms;
	struct tw_err e;
	if (tw_time_parse(v->s.p, v->s.n, &ms, &e) != TW_OK)
		return PERR(p, off, "expected a time (ISO 8601 or epoch ms) to compare with @timestamp"), -1;
	char buf[32];
	int l = snprintf(buf, sizeof buf, "%lld", (long long)ms);
	v->type = TW_QV_NUM;
	v->num = (double)ms;
	return pdup(p, buf, (size_t)l, &v->s);
}

/* ---- expressions ------------------------------------------------------------------------------- */
static struct qnode *parse_or(struct ps *p, const char *after);

static struct qnode *newnode(struct ps *p, enum qn kind, size_t off)
{
	struct qnode *n = palloc(p, sizeof *n);
	if (n) {
		n->kind = kind;
		n->off = off;
	}
	return n;
}

static int compile_regex(struct ps *p, struct qnode *n, const struct qtok *t)
{
	const char *s = p->text + t->off;
	size_t end = t->len;
	while (end > 0 && s[end - 1] != '/')
		end--;
	for (size_t k = end; k < t->len; k++) {
		if (s[k] != 'i')
			return PERR(p, t->off + k, "unknown regex flag '%c' (only i is supported)", s[k]), -1;
		n->re_icase = 1;
	}
	if (pdup(p, s + 1, end - 2, &n->re_src))
		return -1;
	int ec;
	PCRE2_SIZE eoff;
	if (!p->q->mctx) {
		p->q->mctx = pcre2_match_context_create(NULL);
		if (!p->q->mctx)
			return tw_err_set(p->err, TW_ENOMEM, "out of memory for a regex match context"), -1;
		pcre2_set_match_limit(p->q->mctx, TW_QUERY_RE_MATCH_LIMIT);
		pcre2_set_depth_limit(p->q->mctx, TW_QUERY_RE_DEPTH_LIMIT);
	}
	n->mctx = p->q->mctx;
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (n->re_icase ? PCRE2_CASELESS : 0);
	n->re = pcre2_compile((PCRE2_SPTR)n->re_src.p, n->re_src.n, opts, &ec, &eoff, NULL);
	if (!n->re) {
		PCRE2_UCHAR msg[160];
		if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
			snprintf((char *)msg, sizeof msg, "error %d", ec);
		return PERR(p, t->off + 1 + eoff, "invalid regex: %s", (const char *)msg), -1;
	}
	n->next_re = p->q->regexes;
	p->q->regexes = n;
	pcre2_jit_compile(n->re, PCRE2_JIT_COMPLETE); /* optional: interpretive matching otherwise */
	n->md = pcre2_match_data_create_from_pattern(n->re, NULL);
	if (!n->md)
		return tw_err_set(p->err, TW_ENOMEM, "out of memory for regex match data"), -1;
	return 0;
}

static int cmp_of(enum qt t, enum qcmp *op)
{
	switch (t) {
	case QT_EQ: *op = QC_EQ; return 1;
	case QT_NE: *op = QC_NE; return 1;
	case QT_LT: *op = QC_LT; return 1;
	case QT_LE: *op = QC_LE; return 1;
	case QT_GT: *op = QC_GT; return 1;
	case QT_GE: *op = QC_GE; return 1;
	default: return 0;
	}
}

/* After a field: in [...], like, =~, or not in / not like. */
static struct qnode *parse_field_pred(struct ps *p, struct qopnd *l, size_t off)
{
	const struct qtok *t = cur(p);
	enum qcmp op;
	int neg = 0;
	if (kw(p, "not") && (kw_tok(p, ahead(p, 1), "in") || kw_tok(p, ahead(p, 1), "like"))) {
		neg = 1;
		adv(p);
		t = cur(p);
	}
	struct qnode *n = NULL;
	if (!neg && cmp_of(t->t, &op)) {
		adv(p);
		n = newnode(p, QN_CMP, off);
		if (!n)
			return NULL;
		n->op = op;
		n->l = *l;
		if (cur(p)->t == QT_WORD && !is_literal_start(p)) {
			n->r.is_field = 1;
			if (parse_field(p, &n->r.fld, "or a value after the operator"))
				return NULL;
		} else if (is_literal_start(p)) {
			size_t loff = cur(p)->off;
			if (parse_literal(p, &n->r.lit))
				return NULL;
			if (l->fld.kind == QF_TIME && time_literal(p, &n->r.lit, loff))
				return NULL;
		} else {
			PERR(p, cur(p)->off, "expected a value or a field after '%.*s'", (int)t->len, p->text + t->off);
			return NULL;
		}
		return n;
	}
	if (kw(p, "in")) {
		adv(p);
		n = newnode(p, QN_IN, off);
		if (!n)
			return NULL;
		n->l = *l;
		if (cur(p)->t != QT_LB) {
			PERR(p, cur(p)->off, "expected '[' after 'in'");
			return NULL;
		}
		adv(p);
		size_t cap = 0;
		while (cur(p)->t != QT_RB) {
			if (n->nvals) {
				if (cur(p)->t != QT_COMMA) {
					PERR(p, cur(p)->off, "expected ',' or ']' in the list");
					return NULL;
				}
				adv(p);
			}
			if (n->nvals >= TW_QUERY_MAX_IN) {
				tw_q_errat(p->err, TW_ELIMIT, p->text, p->n, cur(p)->off,
					   "more than %u values in an in-list", TW_QUERY_MAX_IN);
				return NULL;
			}
			if (n->nvals == cap) {
				size_t nc = cap ? cap * 2 : 8;
				struct tw_qval *nv = palloc(p, nc * sizeof *nv);
				if (!nv)
					return NULL;
				if (n->nvals)
					memcpy(nv, n->vals, n->nvals * sizeof *nv);
				n->vals = nv;
				cap = nc;
			}
			size_t loff = cur(p)->off;
			if (!is_literal_start(p)) {
				PERR(p, loff, n->nvals ? "expected a value after ','" : "expected a value or ']' after '['");
				return NULL;
			}
			if (parse_literal(p, &n->vals[n->nvals]))
				return NULL;
			if (l->fld.kind == QF_TIME && time_literal(p, &n->vals[n->nvals], loff))
				return NULL;
			n->nvals++;
		}
		adv(p);
	} else if (kw(p, "like") || t->t == QT_MATCH) {
		int is_like = kw(p, "like");
		adv(p);
		const struct qtok *v = cur(p);
		if (v->t == QT_REGEX) {
			n = newnode(p, QN_REGEX, off);
			if (!n || compile_regex(p, n, v))
				return NULL;
			n->l = *l;
			adv(p);
		} else if (is_like && v->t == QT_STR) {
			n = newnode(p, QN_LIKE, off);
			if (!n)
				return NULL;
			n->l = *l;
			if (decode_string(p, v, &n->r.lit.s))
				return NULL;
			n->r.lit.type = TW_QV_STR;
			adv(p);
		} else {
			PERR(p, v->off, is_like ? "expected a string or /regex/ after 'like'" : "expected a /regex/ after '=~'");
			return NULL;
		}
	} else {
		PERR(p, t->off, "expected an operator (= != < <= > >= in like =~) after '%s'", l->fld.name.p);
		return NULL;
	}
	if (neg) {
		struct qnode *m = newnode(p, QN_NOT, off);
		if (!m)
			return NULL;
		m->a = n;
		n = m;
	}
	return n;
}

static int reserved(struct ps *p)
{
	static const char *const words[] = { "and", "or", "not", "in", "like", "by", "as" };
	for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
		if (kw(p, words[k]))
			return 1;
	return 0;
}

static struct qnode *parse_unary(struct ps *p, const char *after)
{
	const struct qtok *t = cur(p);
	if (kw(p, "not")) {
		if (++p->depth > TW_QUERY_MAX_DEPTH) {
			tw_q_errat(p->err, TW_ELIMIT, p->text, p->n, t->off, "nesting deeper than %d", TW_QUERY_MAX_DEPTH);
			return NULL;
		}
		adv(p);
		struct qnode *a = parse_unary(p, "'not'");
		p->depth--;
		if (!a)
			return NULL;
		struct qnode *n = newnode(p, QN_NOT, t->off);
		if (n)
			n->a = a;
		return n;
	}
	if (t->t == QT_LP) {
		if (++p->depth > TW_QUERY_MAX_DEPTH) {
			tw_q_errat(p->err, TW_ELIMIT, p->text, p->n, t->off, "nesting deeper than %d", TW_QUERY_MAX_DEPTH);
			return NULL;
		}
		adv(p);
		struct qnode *n = parse_or(p, "'('");
		p->depth--;
		if (!n)
			return NULL;
		if (cur(p)->t != QT_RP) {
			PERR(p, cur(p)->off, "expected ')' to close the '(' at column %zu", t->off + 1);
			return NULL;
		}
		adv(p);
		return n;
	}
	if (kw(p, "ispresent") && ahead(p, 1)->t == QT_LP) {
		adv(p);
		adv(p);
		struct qnode *n = newnode(p, QN_PRESENT, t->off);
		if (!n)
			return NULL;
		n->l.is_field = 1;
		if (parse_field(p, &n->l.fld, "in ispresent()"))
			return NULL;
		if (cur(p)->t != QT_RP) {
			PERR(p, cur(p)->off, "expected ')' after the field of ispresent(");
			return NULL;
		}
		adv(p);
		return n;
	}
	if (is_literal_start(p)) {
		struct qopnd l = { 0 };
		if (parse_literal(p, &l.lit))
			return NULL;
		enum qcmp op;
		const struct qtok *o = cur(p);
		if (!cmp_of(o->t, &op)) {
			PERR(p, o->off, "expected a comparison operator (= != < <= > >=) after the value");
			return NULL;
		}
		adv(p);
		struct qnode *n = newnode(p, QN_CMP, t->off);
		if (!n)
			return NULL;
		n->op = op;
		n->l = l;
		if (cur(p)->t != QT_WORD || is_literal_start(p)) {
			PERR(p, cur(p)->off, "expected a field after '%.*s' (one side must be a field)", (int)o->len,
			     p->text + o->off);
			return NULL;
		}
		n->r.is_field = 1;
		if (parse_field(p, &n->r.fld, ""))
			return NULL;
		if (n->r.fld.kind == QF_TIME && time_literal(p, &n->l.lit, t->off))
			return NULL;
		return n;
	}
	if (t->t == QT_WORD && !reserved(p)) {
		struct qopnd l = { 0 };
		l.is_field = 1;
		if (parse_field(p, &l.fld, ""))
			return NULL;
		return parse_field_pred(p, &l, t->off);
	}
	if (t->t == QT_DUR)
		PERR(p, t->off, "expected a number, found '%.*s'", (int)t->len, p->text + t->off);
	else
		PERR(p, t->off, "expected a comparison after %s", after);
	return NULL;
}

/* A left-associative chain `operand (word operand)*` joined into `kind` nodes: 'and' over
 * parse_unary, 'or' over parse_and. For the messages, after names what came before the first
 * operand and quoted (the word in quotes) what came before each later one. */
static struct qnode *parse_chain(struct ps *p, const char *after, const char *word, const char *quoted, enum qn kind,
				 struct qnode *(*operand)(struct ps *, const char *))
{
	struct qnode *a = operand(p, after);
	while (a && kw(p, word)) {
		size_t off = cur(p)->off;
		adv(p);
		struct qnode *b = operand(p, quoted);
		if (!b)
			return NULL;
		struct qnode *n = newnode(p, kind, off);
		if (!n)
			return NULL;
		n->a = a;
		n->b = b;
		a = n;
	}
	return a;
}

static struct qnode *parse_and(struct ps *p, const char *after)
{
	return parse_chain(p, after, "and", "'and'", QN_AND, parse_unary);
}

static struct qnode *parse_or(struct ps *p, const char *after)
{
	return parse_chain(p, after, "or", "'or'", QN_OR, parse_and);
}

/* ---- commands ---------------------------------------------------------------------------------- */
/* Grows a palloc'd array by one element (arrays are short: copy on each growth is fine). */
static void *grow(struct ps *p, void *v, size_t n, size_t sz)
{
	void *m = palloc(p, (n + 1) * sz);
	if (m && n)
		memcpy(m, v, n * sz);
	return m;
}

static int parse_field_list(struct ps *p, struct qcmd_s *c, const char *cmd)
{
	char what[48];
	snprintf(what, sizeof what, "after '%s'", cmd);
	do {
		if (c->nflds)
			adv(p);
		struct qfield *nf = grow(p, c->flds, c->nflds, sizeof *nf);
		if (!nf)
			return -1;
		c->flds = nf;
		if (parse_field(p, &c->flds[c->nflds], c->nflds ? "after ','" : what))
			return -1;
		c->nflds++;
	} while (cur(p)->t == QT_COMMA);
	return 0;
}

static int parse_stats(struct ps *p, struct qcmd_s *c)
{
	static const struct {
		const char *name;
		enum qagg_fn fn;
	} fns[] = {
		{ "count", QA_COUNT }, { "count_distinct", QA_COUNT_DISTINCT }, { "min", QA_MIN },
		{ "max", QA_MAX },     { "sum", QA_SUM },   { "avg", QA_AVG },  { "earliest", QA_EARLIEST },
		{ "latest", QA_LATEST },
	};
	do {
		if (c->naggs)
			adv(p);
		const struct qtok *t = cur(p);
		struct qagg *na = grow(p, c->aggs, c->naggs, sizeof *na);
		if (!na)
			return -1;
		c->aggs = na;
		struct qagg *a = &c->aggs[c->naggs];
		for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++)
			if (kw(p, fns[k].name))
				a->fn = fns[k].fn;
		if (!a->fn || ahead(p, 1)->t != QT_LP)
			return PERR(p, t->off, "expected an aggregate (count, count_distinct, min, max, sum, avg, "
					       "earliest, latest) followed by '('"), -1;
		adv(p);
		adv(p);
		if (a->fn == QA_COUNT && (cur(p)->t == QT_STAR || cur(p)->t == QT_RP)) {
			a->star = 1;
			if (cur(p)->t == QT_STAR)
				adv(p);
		} else if (parse_field(p, &a->fld, "as the argument of the aggregate")) {
			return -1;
		}
		if (cur(p)->t != QT_RP)
			return PERR(p, cur(p)->off, "expected ')' after the argument of the aggregate"), -1;
		adv(p);
		if (kw(p, "as")) {
			adv(p);
			if (cur(p)->t != QT_WORD)
				return PERR(p, cur(p)->off, "expected a column name after 'as'"), -1;
			const struct qtok *nt = cur(p);
			const char *s = p->text + nt->off;
			size_t l = nt->len;
			if (nt->quoted && l >= 2 && s[0] == '`' && s[l - 1] == '`' && !memchr(s + 1, '`', l - 2)) {
				s++;
				l -= 2;
			}
			if (pdup(p, s, l, &a->name))
				return -1;
			a->named = 1;
			adv(p);
		} else {
			char buf[160];
			const char *names[] = { "", "count", "count_distinct", "min", "max", "sum", "avg", "earliest", "latest" };
			int l = a->star ? snprintf(buf, sizeof buf, "count(*)")
					: snprintf(buf, sizeof buf, "%s(%.*s)", names[a->fn], (int)a->fld.name.n < 140 ? (int)a->fld.name.n : 140,
						   a->fld.name.p);
			if (pdup(p, buf, (size_t)l, &a->name))
				return -1;
		}
		c->naggs++;
	} while (cur(p)->t == QT_COMMA);
	if (!kw(p, "by"))
		return 0;
	adv(p);
	do {
		if (c->nby)
			adv(p);
		struct qby *nb = grow(p, c->by, c->nby, sizeof *nb);
		if (!nb)
			return -1;
		c->by = nb;
		struct qby *b = &c->by[c->nby];
		const struct qtok *t = cur(p);
		if (kw(p, "bin") && ahead(p, 1)->t == QT_LP) {
			adv(p);
			adv(p);
			const struct qtok *d = cur(p);
			char buf[32];
			struct tw_err e;
			if ((d->t != QT_DUR && d->t != QT_NUM) || d->len >= sizeof buf)
				return PERR(p, d->off, "expected a duration (30s, 5m, 1h, 1d) in bin()"), -1;
			memcpy(buf, p->text + d->off, d->len);
			buf[d->len] = '\0';
			if (tw_duration_parse(buf, &b->bin_ms, &e) != TW_OK || b->bin_ms <= 0)
				return PERR(p, d->off, "expected a duration (30s, 5m, 1h, 1d) in bin(), found '%s'", buf), -1;
			adv(p);
			if (cur(p)->t != QT_RP)
				return PERR(p, cur(p)->off, "expected ')' after the duration of bin("), -1;
			adv(p);
			b->is_bin = 1;
			char nb2[48];
			int l = snprintf(nb2, sizeof nb2, "bin(%s)", buf);
			if (pdup(p, nb2, (size_t)l, &b->name))
				return -1;
		} else {
			if (parse_field(p, &b->fld, c->nby ? "after ','" : "after 'by'"))
				return -1;
			b->name = b->fld.col;
		}
		(void)t;
		c->nby++;
	} while (cur(p)->t == QT_COMMA);
	return 0;
}

static int parse_command(struct ps *p, struct qcmd_s *c, int *seen_stats)
{
	const struct qtok *t = cur(p);
	c->off = t->off;
	if (kw(p, "filter")) {
		c->kind = QCMD_FILTER;
		adv(p);
		c->expr = parse_or(p, "'filter'");
		return c->expr ? 0 : -1;
	}
	if (kw(p, "fields") || kw(p, "dedup")) {
		c->kind = kw(p, "fields") ? QCMD_FIELDS : QCMD_DEDUP;
		adv(p);
		return parse_field_list(p, c, c->kind == QCMD_FIELDS ? "fields" : "dedup");
	}
	if (kw(p, "stats")) {
		if (*seen_stats)
			return PERR(p, t->off, "only one stats command per query is supported"), -1;
		*seen_stats = 1;
		c->kind = QCMD_STATS;
		adv(p);
		return parse_stats(p, c);
	}
	if (kw(p, "sort")) {
		c->kind = QCMD_SORT;
		adv(p);
		do {
			if (c->nkeys)
				adv(p);
			struct qsortkey *nk = grow(p, c->keys, c->nkeys, sizeof *nk);
			if (!nk)
				return -1;
			c->keys = nk;
			if (parse_field(p, &c->keys[c->nkeys].fld, c->nkeys ? "after ','" : "after 'sort'"))
				return -1;
			if (kw(p, "desc") || kw(p, "asc")) {
				c->keys[c->nkeys].desc = kw(p, "desc");
				adv(p);
			}
			c->nkeys++;
		} while (cur(p)->t == QT_COMMA);
		return 0;
	}
	if (kw(p, "limit")) {
		c->kind = QCMD_LIMIT;
		adv(p);
		const struct qtok *v = cur(p);
		uint64_t l = 0;
		int ok = v->t == QT_NUM && v->len <= 13;
		for (size_t k = 0; ok && k < v->len; k++) {
			char ch = p->text[v->off + k];
			if (ch < '0' || ch > '9')
				ok = 0;
			else
				l = l * 10 + (uint64_t)(ch - '0');
		}
		if (!ok || l == 0 || l > 1000000000000ull)
			return PERR(p, v->off, "expected a whole number from 1 to 10^12 after 'limit'"), -1;
		c->limit = l;
		adv(p);
		return 0;
	}
	return PERR(p, t->off, "expected a command (filter, fields, stats, sort, limit, dedup)"), -1;
}

/* ---- index terms ------------------------------------------------------------------------------- */
static const char *ix_name(const struct qfield *f)
{
	switch (f->kind) {
	case QF_FIELD:
		switch (f->f) {
		case TW_F_EVENT_ID: case TW_F_EVENT_NAME: case TW_F_EVENT_SOURCE: case TW_F_REGION:
		case TW_F_ACCOUNT: case TW_F_PRINCIPAL: case TW_F_IDENTITY_TYPE: case TW_F_USER_NAME:
		case TW_F_ACCESS_KEY: case TW_F_SESSION_ISSUER: case TW_F_SSO_USER: case TW_F_SOURCE_IP:
		case TW_F_ERROR_CODE: case TW_F_LOG_GROUP: case TW_F_LOG_STREAM:
			return tw_field_name((enum tw_field)f->f);
		default:
			return NULL;
		}
	case QF_READONLY: return "readOnly";
	case QF_RESOURCE: return "resource";
	case QF_KIND: return "kind";
	default: return NULL;
	}
}

/* The literal prefix of /^literal/ when the whole regex is that (no flags, no metacharacters). */
static int regex_prefix(struct ps *p, const struct qnode *n, struct tw_str *out)
{
	const char *s = n->re_src.p;
	size_t l = n->re_src.n;
	if (n->re_icase || l < 2 || s[0] != '^')
		return 0;
	char *o = tw_arena_alloc(&p->q->arena, l, p->err);
	if (!o)
		return -1;
	size_t k = 0;
	for (size_t i = 1; i < l; i++) {
		char c = s[i];
		if (c == '\\') {
			if (i + 1 >= l)
				return 0;
			char e = s[++i];
			if ((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (unsigned char)e >= 0x80)
				return 0;
			o[k++] = e;
		} else if (strchr("^$.[]|()?*+{}", c)) {
			return 0;
		} else {
			o[k++] = c;
		}
	}
	if (!k)
		return 0;
	*out = (struct tw_str){ o, k };
	return 1;
}

static int add_term(struct ps *p, const struct tw_qterm *t)
{
	struct tw_qterm *nt = grow(p, p->q->terms, p->q->nterms, sizeof *nt);
	if (!nt)
		return -1;
	nt[p->q->nterms++] = *t;
	p->q->terms = nt;
	return 0;
}

/* One short of the int64 range at both ends, so that the bounds below may add or subtract 1. */
static int64_t clamp64(double d)
{
	if (d >= 9.2e18)
		return INT64_MAX - 1;
	if (d <= -9.2e18)
		return INT64_MIN + 1;
	return (int64_t)d;
}

static int collect_terms(struct ps *p, const struct qnode *n, int64_t *tmin, int64_t *tmax)
{
	if (n->kind == QN_AND)
		return collect_terms(p, n->a, tmin, tmax) || collect_terms(p, n->b, tmin, tmax);
	struct tw_qterm t = { 0 };
	if (n->kind == QN_CMP && n->l.is_field != n->r.is_field) {
		const struct qfield *f = n->l.is_field ? &n->l.fld : &n->r.fld;
		const struct tw_qval *v = n->l.is_field ? &n->r.lit : &n->l.lit;
		enum qcmp op = n->op;
		if (!n->l.is_field) { /* "v < F" is "F > v" */
			static const enum qcmp flip[] = { 0, QC_EQ, QC_NE, QC_GT, QC_GE, QC_LT, QC_LE };
			op = flip[op];
		}
		if (f->kind == QF_TIME && v->type == TW_QV_NUM) {
			double d = v->num;
			switch (op) {
			case QC_EQ: if (clamp64(ceil(d)) > *tmin) *tmin = clamp64(ceil(d));
				    if (clamp64(floor(d)) < *tmax) *tmax = clamp64(floor(d));
				    break;
			case QC_GE: if (clamp64(ceil(d)) > *tmin) *tmin = clamp64(ceil(d)); break;
			case QC_GT: if (clamp64(floor(d)) + 1 > *tmin) *tmin = clamp64(floor(d)) + 1; break;
			case QC_LE: if (clamp64(floor(d)) < *tmax) *tmax = clamp64(floor(d)); break;
			case QC_LT: if (clamp64(ceil(d)) - 1 < *tmax) *tmax = clamp64(ceil(d)) - 1; break;
			case QC_NE: break;
			}
			return 0;
		}
		if (op != QC_EQ || v->type != TW_QV_STR || !(t.field = ix_name(f)))
			return 0;
		t.op = TW_QTERM_EQ;
		t.values = &v->s;
		t.nvalues = 1;
		return add_term(p, &t);
	}
	if (n->kind == QN_IN && (t.field = ix_name(&n->l.fld))) {
		for (size_t k = 0; k < n->nvals; k++)
			if (n->vals[k].type != TW_QV_STR)
				return 0;
		struct tw_str *vs = palloc(p, (n->nvals + 1) * sizeof *vs);
		if (!vs)
			return -1;
		for (size_t k = 0; k < n->nvals; k++)
			vs[k] = n->vals[k].s;
		t.op = TW_QTERM_IN;
		t.values = vs;
		t.nvalues = n->nvals;
		return add_term(p, &t);
	}
	if (n->kind == QN_REGEX && (t.field = ix_name(&n->l.fld))) {
		struct tw_str *vs = palloc(p, sizeof *vs);
		if (!vs)
			return -1;
		int r = regex_prefix(p, n, vs);
		if (r <= 0)
			return r;
		t.op = TW_QTERM_PREFIX;
		t.values = vs;
		t.nvalues = 1;
		return add_term(p, &t);
	}
	return 0;
}

/* ---- entry points ------------------------------------------------------------------------------ */
void tw_query_free(struct tw_query *q)
{
	if (!q)
		return;
	for (struct qnode *n = q->regexes; n; n = n->next_re) {
		pcre2_match_data_free(n->md);
		pcre2_code_free(n->re);
	}
	pcre2_match_context_free(q->mctx);
	if (q->scratch) {
		tw_arena_free(&q->scratch->a);
		free(q->scratch);
	}
	tw_arena_free(&q->arena);
	free(q);
}

enum tw_rc tw_query_parse(const char *text, size_t n, struct tw_query **out, struct tw_err *err)
{
	if (n > TW_QUERY_MAX_TEXT)
		return tw_err_set(err, TW_ELIMIT, "query of %zu bytes exceeds the limit of %u bytes", n,
				  TW_QUERY_MAX_TEXT);
	if (!text)
		text = "";
	struct tw_query *q = calloc(1, sizeof *q);
	if (!q)
		return tw_err_set(err, TW_ENOMEM, "out of memory for a query");
	tw_arena_init(&q->arena, 4096, 0);
	struct tw_err e0;
	struct tw_err *e = err ? err : &e0;
	tw_err_clear(e);
	struct ps p = { .text = text, .n = n, .q = q, .err = e };
	enum tw_rc rc = tw_q_lex(text, n, &p.t, &p.nt, e);
	if (rc != TW_OK)
		goto fail;
	int seen_stats = 0;
	for (;;) {
		struct qcmd_s *nc = grow(&p, q->cmds, q->ncmds, sizeof *nc);
		if (!nc)
			goto fail;
		q->cmds = nc;
		if (parse_command(&p, &q->cmds[q->ncmds], &seen_stats))
			goto fail;
		q->ncmds++;
		if (cur(&p)->t == QT_EOF)
			break;
		if (cur(&p)->t != QT_PIPE) {
			const struct qcmd_s *c = &q->cmds[q->ncmds - 1];
			if (c->kind == QCMD_FILTER)
				PERR(&p, cur(&p)->off, "expected 'and', 'or', '|' or the end of the query");
			else if (c->kind == QCMD_LIMIT)
				PERR(&p, cur(&p)->off, "expected '|' or the end of the query");
			else
				PERR(&p, cur(&p)->off, "expected ',', '|' or the end of the query");
			goto fail;
		}
		adv(&p);
	}
	q->nlead = 0;
	while (q->nlead < q->ncmds && q->cmds[q->nlead].kind != QCMD_STATS && q->cmds[q->nlead].kind != QCMD_LIMIT &&
	       q->cmds[q->nlead].kind != QCMD_DEDUP)
		q->nlead++;
	int64_t tmin = INT64_MIN, tmax = INT64_MAX;
	for (size_t k = 0; k < q->nlead; k++)
		if (q->cmds[k].kind == QCMD_FILTER && collect_terms(&p, q->cmds[k].expr, &tmin, &tmax))
			goto fail;
	if (tmin != INT64_MIN || tmax != INT64_MAX) {
		struct tw_qterm t = { .field = "@timestamp", .op = TW_QTERM_TIME, .tmin = tmin, .tmax = tmax };
		if (add_term(&p, &t))
			goto fail;
	}
	q->scratch = calloc(1, sizeof *q->scratch);
	if (!q->scratch) {
		tw_err_set(e, TW_ENOMEM, "out of memory for a query");
		goto fail;
	}
	tw_arena_init(&q->scratch->a, 4096, 0);
	free(p.t);
	*out = q;
	return TW_OK;
fail:
	free(p.t);
	tw_query_free(q);
	return e->rc != TW_OK ? e->rc : tw_err_set(e, TW_ENOMEM, "out of memory parsing a query");
}

/* ---- printing ---------------------------------------------------------------------------------- */
static enum tw_rc pr_str(struct tw_buf *b, struct tw_str s, struct tw_err *err)
{
	return tw_json_write_str(b, s.p ? s.p : "", s.n, err);
}

static enum tw_rc pr_field(struct tw_buf *b, const struct qfield *f, int table, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_append(b, f->name.p, f->name.n, err);
	if (rc)
		return rc;
	if (table) /* after stats every field names a column of the table */
		return tw_buf_printf(b, err, "{column}");
	switch (f->kind) {
	case QF_FIELD: return tw_buf_printf(b, err, "{%s}", tw_field_name((enum tw_field)f->f));
	case QF_TIME: return tw_buf_printf(b, err, "{time}");
	case QF_KIND: return tw_buf_printf(b, err, "{kind}");
	case QF_READONLY: return tw_buf_printf(b, err, "{readOnly}");
	case QF_RESOURCE: return tw_buf_printf(b, err, "{resources}");
	case QF_RAW: return tw_buf_printf(b, err, "{raw}");
	case QF_PATH:
		rc = tw_buf_printf(b, err, "{path:");
		for (size_t k = 0; !rc && k < f->nseg; k++) {
			if (k)
				rc = tw_buf_putc(b, ',', err);
			if (!rc)
				rc = pr_str(b, f->seg[k], err);
		}
		return rc ? rc : tw_buf_putc(b, '}', err);
	}
	return TW_OK;
}

static enum tw_rc pr_val(struct tw_buf *b, const struct tw_qval *v, struct tw_err *err)
{
	switch (v->type) {
	case TW_QV_NULL: return tw_buf_printf(b, err, "null");
	case TW_QV_NUM: return tw_buf_append(b, v->s.p, v->s.n, err);
	case TW_QV_STR: return pr_str(b, v->s, err);
	}
	return TW_OK;
}

static enum tw_rc pr_opnd(struct tw_buf *b, const struct qopnd *o, int table, struct tw_err *err)
{
	return o->is_field ? pr_field(b, &o->fld, table, err) : pr_val(b, &o->lit, err);
}

static enum tw_rc pr_node(struct tw_buf *b, const struct qnode *n, int table, struct tw_err *err)
{
	static const char *const ops[] = { "", "=", "!=", "<", "<=", ">", ">=" };
	enum tw_rc rc = TW_OK;
	switch (n->kind) {
	case QN_AND:
	case QN_OR:
		if ((rc = tw_buf_printf(b, err, "(%s ", n->kind == QN_AND ? "and" : "or")) ||
		    (rc = pr_node(b, n->a, table, err)) || (rc = tw_buf_putc(b, ' ', err)) || (rc = pr_node(b, n->b, table, err)))
			return rc;
		break;
	case QN_NOT:
		if ((rc = tw_buf_printf(b, err, "(not ")) || (rc = pr_node(b, n->a, table, err)))
			return rc;
		break;
	case QN_CMP:
		if ((rc = tw_buf_printf(b, err, "(%s ", ops[n->op])) || (rc = pr_opnd(b, &n->l, table, err)) ||
		    (rc = tw_buf_putc(b, ' ', err)) || (rc = pr_opnd(b, &n->r, table, err)))
			return rc;
		break;
	case QN_IN:
		if ((rc = tw_buf_printf(b, err, "(in ")) || (rc = pr_field(b, &n->l.fld, table, err)) ||
		    (rc = tw_buf_printf(b, err, " [")))
			return rc;
		for (size_t k = 0; k < n->nvals; k++)
			if ((k && (rc = tw_buf_printf(b, err, ", "))) || (rc = pr_val(b, &n->vals[k], err)))
				return rc;
		rc = tw_buf_putc(b, ']', err);
		break;
	case QN_LIKE:
		if ((rc = tw_buf_printf(b, err, "(like ")) || (rc = pr_field(b, &n->l.fld, table, err)) ||
		    (rc = tw_buf_putc(b, ' ', err)) || (rc = pr_str(b, n->r.lit.s, err)))
			return rc;
		break;
	case QN_REGEX:
		if ((rc = tw_buf_printf(b, err, "(=~ ")) || (rc = pr_field(b, &n->l.fld, table, err)) ||
		    (rc = tw_buf_printf(b, err, " /%s/%s", n->re_src.p, n->re_icase ? "i" : "")))
			return rc;
		break;
	case QN_PRESENT:
		if ((rc = tw_buf_printf(b, err, "(ispresent ")) || (rc = pr_field(b, &n->l.fld, table, err)))
			return rc;
		break;
	}
	return rc ? rc : tw_buf_putc(b, ')', err);
}

enum tw_rc tw_query_print(const struct tw_query *q, struct tw_buf *b, struct tw_err *err)
{
	static const char *const aggs[] = { "", "count", "count_distinct", "min", "max", "sum", "avg", "earliest", "latest" };
	enum tw_rc rc = TW_OK;
	int table = 0;
	for (size_t i = 0; !rc && i < q->ncmds; i++) {
		const struct qcmd_s *c = &q->cmds[i];
		switch (c->kind) {
		case QCMD_FILTER:
			if (!(rc = tw_buf_printf(b, err, "filter ")))
				rc = pr_node(b, c->expr, table, err);
			break;
		case QCMD_FIELDS:
		case QCMD_DEDUP:
			rc = tw_buf_printf(b, err, "%s ", c->kind == QCMD_FIELDS ? "fields" : "dedup");
			for (size_t k = 0; !rc && k < c->nflds; k++)
				if (!(k && (rc = tw_buf_printf(b, err, ", "))))
					rc = pr_field(b, &c->flds[k], table, err);
			break;
		case QCMD_STATS:
			rc = tw_buf_printf(b, err, "stats ");
			for (size_t k = 0; !rc && k < c->naggs; k++) {
				const struct qagg *a = &c->aggs[k];
				if (k)
					rc = tw_buf_printf(b, err, ", ");
				if (!rc)
					rc = tw_buf_printf(b, err, "%s(", aggs[a->fn]);
				if (!rc)
					rc = a->star ? tw_buf_putc(b, '*', err) : pr_field(b, &a->fld, table, err);
				if (!rc)
					rc = tw_buf_printf(b, err, ") as ");
				if (!rc)
					rc = pr_str(b, a->name, err);
			}
			for (size_t k = 0; !rc && k < c->nby; k++) {
				const struct qby *g = &c->by[k];
				rc = tw_buf_printf(b, err, k ? ", " : " by ");
				if (!rc)
					rc = g->is_bin ? tw_buf_printf(b, err, "bin(%lldms) as %s", (long long)g->bin_ms, g->name.p)
						       : pr_field(b, &g->fld, table, err);
			}
			break;
		case QCMD_SORT:
			rc = tw_buf_printf(b, err, "sort ");
			for (size_t k = 0; !rc && k < c->nkeys; k++) {
				if (k)
					rc = tw_buf_printf(b, err, ", ");
				if (!rc)
					rc = pr_field(b, &c->keys[k].fld, table, err);
				if (!rc)
					rc = tw_buf_printf(b, err, " %s", c->keys[k].desc ? "desc" : "asc");
			}
			break;
		case QCMD_LIMIT:
			rc = tw_buf_printf(b, err, "limit %llu", (unsigned long long)c->limit);
			break;
		}
		if (!rc)
			rc = tw_buf_putc(b, '\n', err);
		if (c->kind == QCMD_STATS)
			table = 1; /* later commands read the table; stats' own fields read events */
	}
	return rc;
}

/* ---- caret ------------------------------------------------------------------------------------- */
enum tw_rc tw_query_caret(const char *text, size_t n, const struct tw_err *perr, struct tw_buf *out,
			  struct tw_err *err)
{
	const char *m = perr->msg;
	unsigned long line = 1, col = 0;
	int used = 0;
	if (sscanf(m, "line %lu, column %lu: %n", &line, &col, &used) == 2 && used > 0) {
	} else if (sscanf(m, "column %lu: %n", &col, &used) == 1 && used > 0) {
		line = 1;
	} else {
		return tw_buf_printf(out, err, "%s\n", m);
	}
	size_t bol = 0;
	for (unsigned long l = 1; l < line && bol < n; bol++)
		if (text[bol] == '\n')
			l++;
	size_t eol = bol;
	while (eol < n && text[eol] != '\n')
		eol++;
	size_t shown = eol;
	if (shown > bol && text[shown - 1] == '\r')
		shown--;
	enum tw_rc rc = tw_buf_append(out, text + bol, shown - bol, err);
	if (!rc)
		rc = tw_buf_putc(out, '\n', err);
	for (size_t i = bol; !rc && i + 1 < bol + col && i < shown; i++) {
		unsigned char c = (unsigned char)text[i];
		if ((c & 0xc0) == 0x80)
			continue; /* one column per UTF-8 character */
		rc = tw_buf_putc(out, c == '\t' ? '\t' : ' ', err);
	}
	if (!rc)
		rc = tw_buf_printf(out, err, "^ %s\n", m + used);
	return rc;
}

const struct tw_qterm *tw_query_index_terms(const struct tw_query *q, size_t *n)
{
	*n = q->nterms;
	return q->terms;
}
