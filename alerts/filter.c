/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/filter.c: CloudWatch Logs filter patterns: the parser (terms, %regex%, JSON, delimited),
 * the normalized printer, the linter, and the set that evaluates many patterns on one event with
 * one pass of the JSON pull reader over a trie of the wanted paths. Semantics: alerts/filter.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/filter.h"
#include "core/json.h"

#define MAX_PATH_SEGS 32    /* segments in one selector */
#define MAX_ARRAY_INDEX 65535 /* largest [N] in a selector */
#define MAX_TOKENS 512      /* fields of a message a delimited pattern looks at */
#define MAX_ELLIPSES 4      /* `...` per delimited pattern (bounds the backtracking) */
#define JSON_DEPTH 128      /* nesting accepted in messages */

/* ---- the syntax tree -------------------------------------------------------------------------- */

enum ptype { P_TERMS, P_REGEX, P_JSON, P_DELIM };
enum ntype { N_AND, N_OR, N_CMP };
enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_NULL, OP_NOTEXISTS, OP_TRUE, OP_FALSE };
enum vkind { V_NONE, V_STR, V_NUM, V_REGEX };

/* One path segment of a selector. */
struct seg {
	char *key;  /* object key, or NULL for an array index */
	size_t n;   /* key length */
	long index; /* array index when key is NULL */
};

/* A selector ($.a[0].b) in JSON patterns; in delimited patterns, a field name (nseg 0). */
struct path {
	struct seg *segs; /* segments */
	size_t nseg;      /* segments in use */
	char *name;       /* delimited field name (NUL-terminated), NULL in JSON patterns */
};

/* A node of a JSON or delimited condition. */
struct node {
	enum ntype type;     /* AND, OR or a comparison */
	struct node *l, *r;  /* operands of AND/OR */
	int paren;           /* 1 when written inside its own parentheses */
	size_t col;          /* column of the selector (CMP) or of the operator (AND/OR) */
	size_t opcol;        /* CMP: column of the operator */
	size_t path;         /* CMP: index into the filter's paths (JSON) or fields (delimited) */
	enum op op;          /* CMP: operator */
	enum vkind vk;       /* CMP: value kind */
	char *s;             /* string value / regex source (NUL-terminated) */
	size_t n;            /* its length */
	int star;            /* string value holds '*' */
	double num;          /* numeric value */
	pcre2_code *re;      /* compiled regex */
	struct eqset *eq;    /* OR (JSON): its leaves as one sorted set, when eqset_of allows (else NULL) */
};

/* An OR of `path = "literal"` leaves on one path (no '*', regex or number; the CIS pack's lists
 * of eventNames): evaluated as one binary search instead of a walk over the leaves. */
struct eqset {
	size_t path;              /* the leaves' path (index into the filter's paths) */
	const struct node **leaf; /* the leaves, sorted by (n, bytes) */
	size_t n;                 /* leaves */
};

/* One term of a term pattern. */
struct term {
	char *s;  /* bytes */
	size_t n; /* length */
	int kind; /* 0 must contain, 1 ?any-of, 2 -must not contain */
	size_t col; /* column */
};

/* One field of a delimited pattern. */
struct dfield {
	int ellipsis;     /* 1 for `...` */
	char *name;       /* field name, NULL for `...` */
	struct node *cond; /* condition written in this position, or NULL */
};

struct tw_filter {
	enum ptype type;       /* kind of pattern */
	char *text;            /* the pattern as given (NUL-terminated) */
	size_t ntext;          /* its length */
	struct term *terms;    /* P_TERMS */
	size_t nterms;         /* terms in use */
	int any;               /* P_TERMS: ?terms (either) */
	pcre2_code *re;        /* P_REGEX */
	char *re_src;          /* P_REGEX source */
	struct node *root;     /* P_JSON / P_DELIM condition tree (delim: NULL if no condition) */
	struct path *paths;    /* P_JSON: distinct selectors */
	size_t npaths;         /* selectors in use */
	struct dfield *fields; /* P_DELIM */
	size_t nfields;        /* fields in use */
	size_t nodes;          /* nodes allocated (cap) */
	size_t nregex;         /* regexes in JSON/delim values */
};

/* ---- parser ------------------------------------------------------------------------------------ */

struct parser {
	const char *p;       /* pattern */
	size_t n;            /* length */
	size_t i;            /* position */
	struct tw_filter *f; /* being built */
	struct tw_err *err;  /* where errors go */
	unsigned depth;      /* parenthesis nesting */
};

static enum tw_rc perr(struct parser *ps, size_t at, enum tw_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum tw_rc perr(struct parser *ps, size_t at, enum tw_rc rc, const char *fmt, ...)
{
	char m[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return tw_err_set(ps->err, rc, "column %zu: %s", at + 1, m);
}

static void skipws(struct parser *ps)
{
	while (ps->i < ps->n && (ps->p[ps->i] == ' ' || ps->p[ps->i] == '\t' || ps->p[ps->i] == '\n' ||
				 ps->p[ps->i] == '\r'))
		ps->i++;
}

static int isalnum_(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static char *dupn(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

static void node_free(struct node *nd)
{
	if (!nd)
		return;
	node_free(nd->l);
	node_free(nd->r);
	if (nd->eq) {
		free(nd->eq->leaf);
		free(nd->eq);
	}
	free(nd->s);
	if (nd->re)
		pcre2_code_free(nd->re);
	free(nd);
}

void tw_filter_free(struct tw_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nterms; i++)
		free(f->terms[i].s);
	free(f->terms);
	if (f->re)
		pcre2_code_free(f->re);
	free(f->re_src);
	node_free(f->root);
	for (size_t i = 0; i < f->npaths; i++) {
		for (size_t k = 0; k < f->paths[i].nseg; k++)
			free(f->paths[i].segs[k].key);
		free(f->paths[i].segs);
		free(f->paths[i].name);
	}
	free(f->paths);
	for (size_t i = 0; i < f->nfields; i++) {
		free(f->fields[i].name);
		node_free(f->fields[i].cond);
	}
	free(f->fields);
	free(f->text);
	free(f);
}

/* Checks a regex against the documented subset and compiles it. at: column of the opening '%'. */
static enum tw_rc regex_compile(struct parser *ps, size_t at, const char *s, size_t n, pcre2_code **out)
{
	static const char ok[] = "_#=@/;,-:^$?[]{}|\\*+.";
	int ec;
	PCRE2_SIZE eo;

	if (n == 0)
		return perr(ps, at, TW_EPARSE, "empty regex %%%%");
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s[k];
		if (c == '(' || c == ')')
			return perr(ps, at + 1 + k, TW_EPARSE,
				    "'%c' is not supported in a regex (CloudWatch allows no parentheses)", c);
		if (c >= 0x80)
			return perr(ps, at + 1 + k, TW_EPARSE, "multi-byte characters are not supported in a regex");
		if (!isalnum_(c) && !strchr(ok, c)) {
			if (c >= 0x21 && c < 0x7f)
				return perr(ps, at + 1 + k, TW_EPARSE, "'%c' is not supported in a regex", c);
			return perr(ps, at + 1 + k, TW_EPARSE, "byte 0x%02x is not supported in a regex", c);
		}
		if (c == '\\')
			k++; /* the escaped character is pcre2's business (\d \s \w \. ...) */
	}
	*out = pcre2_compile((PCRE2_SPTR)s, n, 0, &ec, &eo, NULL);
	if (!*out) {
		PCRE2_UCHAR m[120];
		pcre2_get_error_message(ec, m, sizeof m);
		return perr(ps, at + 1 + (eo < n ? eo : n), TW_EPARSE, "bad regex: %s", (char *)m);
	}
	return TW_OK;
}

/* A %regex% starting at ps->i (on the '%'). */
static enum tw_rc parse_regex(struct parser *ps, char **src, size_t *srcn, pcre2_code **re)
{
	size_t at = ps->i, j = ps->i + 1;

	while (j < ps->n && ps->p[j] != '%')
		j++;
	if (j >= ps->n)
		return perr(ps, at, TW_EPARSE, "unterminated regex: no closing '%%'");
	enum tw_rc rc = regex_compile(ps, at, ps->p + at + 1, j - at - 1, re);
	if (rc)
		return rc;
	*srcn = j - at - 1;
	*src = dupn(ps->p + at + 1, *srcn);
	if (!*src)
		return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
	ps->i = j + 1;
	return TW_OK;
}

/* A double-quoted string at ps->i; \" and \\ are escapes. */
static enum tw_rc parse_quoted(struct parser *ps, char **out, size_t *outn)
{
	size_t at = ps->i, j = ps->i + 1, k = 0;
	char *s = malloc(ps->n + 1);

	if (!s)
		return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
	while (j < ps->n && ps->p[j] != '"') {
		if (ps->p[j] == '\\' && j + 1 < ps->n && (ps->p[j + 1] == '"' || ps->p[j + 1] == '\\'))
			j++;
		s[k++] = ps->p[j++];
	}
	if (j >= ps->n) {
		free(s);
		return perr(ps, at, TW_EPARSE, "unterminated string: no closing '\"'");
	}
	s[k] = 0;
	ps->i = j + 1;
	*out = s;
	*outn = k;
	return TW_OK;
}

/* Strict number: [+-]digits[.digits][e[+-]digits] (or .5); all of s. */
static int parse_number(const char *s, size_t n, double *out)
{
	char b[72];
	char *end;
	size_t k = 0;

	if (n == 0 || n >= sizeof b)
		return 0;
	if (s[0] == '+' || s[0] == '-')
		k++;
	if (k >= n || !((s[k] >= '0' && s[k] <= '9') || s[k] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789+-.eE", s[i]))
			return 0;
	memcpy(b, s, n);
	b[n] = 0;
	double v = strtod(b, &end);
	if (end != b + n || !isfinite(v))
		return 0;
	*out = v;
	return 1;
}

static struct node *node_new(struct parser *ps, enum ntype t, size_t col)
{
	struct node *nd;

	if (ps->f->nodes >= 2 * TW_FILTER_MAX_ITEMS) {
		perr(ps, col, TW_ELIMIT, "too many clauses (at most %d)", TW_FILTER_MAX_ITEMS);
		return NULL;
	}
	nd = calloc(1, sizeof *nd);
	if (!nd) {
		tw_err_set(ps->err, TW_ENOMEM, "out of memory");
		return NULL;
	}
	nd->type = t;
	nd->col = col;
	ps->f->nodes++;
	return nd;
}

/* Interns a JSON selector path into f->paths; returns its index or -1 (ENOMEM). */
static long path_intern(struct tw_filter *f, const struct seg *segs, size_t nseg, const char *name)
{
	for (size_t i = 0; i < f->npaths; i++) {
		struct path *pa = &f->paths[i];
		if (name) {
			if (pa->name && !strcmp(pa->name, name))
				return (long)i;
			continue;
		}
		if (pa->name || pa->nseg != nseg)
			continue;
		size_t k = 0;
		for (; k < nseg; k++) {
			const struct seg *a = &pa->segs[k], *b = &segs[k];
			if (!!a->key != !!b->key || (a->key && (a->n != b->n || memcmp(a->key, b->key, a->n))) ||
			    (!a->key && a->index != b->index))
				break;
		}
		if (k == nseg)
			return (long)i;
	}
	struct path *np = realloc(f->paths, (f->npaths + 1) * sizeof *np);
	if (!np)
		return -1;
	f->paths = np;
	struct path *pa = &f->paths[f->npaths];
	memset(pa, 0, sizeof *pa);
	if (name) {
		pa->name = dupn(name, strlen(name));
		if (!pa->name)
			return -1;
	} else {
		pa->segs = calloc(nseg ? nseg : 1, sizeof *pa->segs);
		if (!pa->segs)
			return -1;
		for (size_t k = 0; k < nseg; k++) {
			pa->segs[k] = segs[k];
			if (segs[k].key && !(pa->segs[k].key = dupn(segs[k].key, segs[k].n))) {
				pa->nseg = k;
				f->npaths++;
				return -1;
			}
		}
		pa->nseg = nseg;
	}
	return (long)f->npaths++;
}

static int keychar(int c)
{
	return isalnum_(c) || c == '-' || c == '@' || c == ':';
}

/* Parses a selector "$.a[0].b" at ps->i into segs (keys borrowed from the pattern). */
static enum tw_rc parse_selector(struct parser *ps, struct seg *segs, size_t *nseg)
{
	size_t at = ps->i, ns = 0;

	if (ps->i >= ps->n || ps->p[ps->i] != '$')
		return perr(ps, at, TW_EPARSE, "expected a selector such as $.field");
	ps->i++;
	while (ps->i < ps->n && (ps->p[ps->i] == '.' || ps->p[ps->i] == '[')) {
		if (ns >= MAX_PATH_SEGS)
			return perr(ps, ps->i, TW_ELIMIT, "selector has more than %d parts", MAX_PATH_SEGS);
		if (ps->p[ps->i] == '.') {
			size_t k0 = ++ps->i;
			while (ps->i < ps->n && keychar((unsigned char)ps->p[ps->i]))
				ps->i++;
			if (ps->i == k0)
				return perr(ps, k0, TW_EPARSE, "expected a field name after '.'");
			segs[ns].key = (char *)(ps->p + k0);
			segs[ns].n = ps->i - k0;
			segs[ns].index = 0;
		} else {
			size_t k0 = ++ps->i;
			long v = 0;
			while (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9') {
				v = v * 10 + (ps->p[ps->i] - '0');
				if (v > MAX_ARRAY_INDEX)
					return perr(ps, k0, TW_ELIMIT, "array index above %d", MAX_ARRAY_INDEX);
				ps->i++;
			}
			if (ps->i == k0)
				return perr(ps, k0, TW_EPARSE, "expected an array index (digits) after '['");
			if (ps->i >= ps->n || ps->p[ps->i] != ']')
				return perr(ps, ps->i, TW_EPARSE, "expected ']'");
			ps->i++;
			segs[ns].key = NULL;
			segs[ns].n = 0;
			segs[ns].index = v;
		}
		ns++;
	}
	if (ns == 0)
		return perr(ps, at, TW_EPARSE, "a selector needs at least one field: $.field");
	*nseg = ns;
	return TW_OK;
}

static int at_word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);
	return ps->i + n <= ps->n && !memcmp(ps->p + ps->i, w, n) &&
	       (ps->i + n == ps->n || !isalnum_((unsigned char)ps->p[ps->i + n]));
}

/* Ends of an unquoted value. json: stops at ')' '}' '&&' '||'; delim: also ',' ']'. */
static int value_end(struct parser *ps, size_t j, int delim)
{
	char c = ps->p[j];
	if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ')' || c == '(' || c == '"')
		return 1;
	if (delim ? (c == ',' || c == ']') : c == '}')
		return 1;
	if ((c == '&' || c == '|') && j + 1 < ps->n && ps->p[j + 1] == c)
		return 1;
	return 0;
}

/* The comparison after a selector: operator and value, or IS NULL/TRUE/FALSE, NOT EXISTS. */
static enum tw_rc parse_cmp_tail(struct parser *ps, struct node *nd, int delim)
{
	enum tw_rc rc;

	skipws(ps);
	nd->opcol = ps->i;
	if (!delim && at_word(ps, "IS")) {
		ps->i += 2;
		skipws(ps);
		if (at_word(ps, "NULL"))
			nd->op = OP_NULL, ps->i += 4;
		else if (at_word(ps, "TRUE"))
			nd->op = OP_TRUE, ps->i += 4;
		else if (at_word(ps, "FALSE"))
			nd->op = OP_FALSE, ps->i += 5;
		else
			return perr(ps, ps->i, TW_EPARSE, "expected NULL, TRUE or FALSE after IS");
		return TW_OK;
	}
	if (!delim && at_word(ps, "NOT")) {
		ps->i += 3;
		skipws(ps);
		if (!at_word(ps, "EXISTS"))
			return perr(ps, ps->i, TW_EPARSE, "expected EXISTS after NOT");
		ps->i += 6;
		nd->op = OP_NOTEXISTS;
		return TW_OK;
	}
	if (ps->i + 1 < ps->n && ps->p[ps->i] == '!' && ps->p[ps->i + 1] == '=')
		nd->op = OP_NE, ps->i += 2;
	else if (ps->i + 1 < ps->n && ps->p[ps->i] == '<' && ps->p[ps->i + 1] == '=')
		nd->op = OP_LE, ps->i += 2;
	else if (ps->i + 1 < ps->n && ps->p[ps->i] == '>' && ps->p[ps->i + 1] == '=')
		nd->op = OP_GE, ps->i += 2;
	else if (ps->i < ps->n && ps->p[ps->i] == '<')
		nd->op = OP_LT, ps->i++;
	else if (ps->i < ps->n && ps->p[ps->i] == '>')
		nd->op = OP_GT, ps->i++;
	else if (ps->i < ps->n && ps->p[ps->i] == '=')
		nd->op = OP_EQ, ps->i++;
	else if (delim)
		return perr(ps, ps->i, TW_EPARSE, "expected an operator (= != < <= > >=)");
	else
		return perr(ps, ps->i, TW_EPARSE,
			    "expected an operator (= != < <= > >=) or IS NULL, IS TRUE, IS FALSE, NOT EXISTS");
	skipws(ps);
	size_t vat = ps->i;
	if (ps->i >= ps->n)
		return perr(ps, ps->i, TW_EPARSE, "expected a value");
	if (ps->p[ps->i] == '"') {
		if ((rc = parse_quoted(ps, &nd->s, &nd->n)))
			return rc;
		nd->vk = V_STR;
	} else if (ps->p[ps->i] == '%') {
		if (++ps->f->nregex > TW_FILTER_MAX_REGEX)
			return perr(ps, vat, TW_ELIMIT, "more than %d regexes in one pattern", TW_FILTER_MAX_REGEX);
		if ((rc = parse_regex(ps, &nd->s, &nd->n, &nd->re)))
			return rc;
		nd->vk = V_REGEX;
	} else {
		size_t j = ps->i;
		while (j < ps->n && !value_end(ps, j, delim))
			j++;
		if (j == ps->i)
			return perr(ps, vat, TW_EPARSE, "expected a value");
		if (parse_number(ps->p + ps->i, j - ps->i, &nd->num))
			nd->vk = V_NUM;
		else
			nd->vk = V_STR;
		if (!(nd->s = dupn(ps->p + ps->i, j - ps->i)))
			return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
		nd->n = j - ps->i;
		ps->i = j;
	}
	if (nd->vk == V_STR)
		nd->star = memchr(nd->s, '*', nd->n) != NULL;
	if (nd->op >= OP_LT && nd->op <= OP_GE && nd->vk != V_NUM)
		return perr(ps, vat, TW_EPARSE, "'%s' needs a number",
			    nd->op == OP_LT ? "<" : nd->op == OP_LE ? "<=" : nd->op == OP_GT ? ">" : ">=");
	if (nd->vk == V_REGEX && nd->op != OP_EQ && nd->op != OP_NE)
		return perr(ps, vat, TW_EPARSE, "a regex value needs '=' or '!='");
	return TW_OK;
}

static enum tw_rc parse_or(struct parser *ps, struct node **out, int delim);

/* primary: '(' or ')' | selector tail   (delim: name tail) */
static enum tw_rc parse_primary(struct parser *ps, struct node **out, int delim)
{
	enum tw_rc rc;

	skipws(ps);
	if (ps->i < ps->n && ps->p[ps->i] == '(') {
		size_t at = ps->i++;
		if (++ps->depth > TW_FILTER_MAX_DEPTH)
			return perr(ps, at, TW_ELIMIT, "parentheses nested deeper than %d", TW_FILTER_MAX_DEPTH);
		if ((rc = parse_or(ps, out, delim)))
			return rc;
		skipws(ps);
		if (ps->i >= ps->n || ps->p[ps->i] != ')')
			return perr(ps, ps->i, TW_EPARSE, "expected ')' to close the '(' at column %zu", at + 1);
		ps->i++;
		ps->depth--;
		(*out)->paren = 1;
		return TW_OK;
	}
	struct node *nd = node_new(ps, N_CMP, ps->i);
	if (!nd)
		return ps->err ? ps->err->rc : TW_ENOMEM;
	*out = nd;
	long idx;
	if (delim) {
		size_t k0 = ps->i;
		while (ps->i < ps->n && isalnum_((unsigned char)ps->p[ps->i]))
			ps->i++;
		if (ps->i == k0)
			return perr(ps, k0, TW_EPARSE, "expected a field name");
		char name[64];
		if (ps->i - k0 >= sizeof name)
			return perr(ps, k0, TW_ELIMIT, "field name longer than %zu bytes", sizeof name - 1);
		memcpy(name, ps->p + k0, ps->i - k0);
		name[ps->i - k0] = 0;
		idx = path_intern(ps->f, NULL, 0, name);
	} else {
		struct seg segs[MAX_PATH_SEGS];
		size_t nseg = 0;
		if (ps->i < ps->n && ps->p[ps->i] != '$')
			return perr(ps, ps->i, TW_EPARSE, "expected a selector such as $.field or '('");
		if ((rc = parse_selector(ps, segs, &nseg)))
			return rc;
		idx = path_intern(ps->f, segs, nseg, NULL);
	}
	if (idx < 0)
		return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
	nd->path = (size_t)idx;
	return parse_cmp_tail(ps, nd, delim);
}

static enum tw_rc parse_and(struct parser *ps, struct node **out, int delim)
{
	enum tw_rc rc = parse_primary(ps, out, delim);

	while (!rc) {
		skipws(ps);
		if (!(ps->i + 1 < ps->n && ps->p[ps->i] == '&' && ps->p[ps->i + 1] == '&'))
			break;
		struct node *nd = node_new(ps, N_AND, ps->i);
		if (!nd)
			return ps->err->rc;
		ps->i += 2;
		nd->l = *out;
		*out = nd;
		rc = parse_primary(ps, &nd->r, delim);
	}
	return rc;
}

static enum tw_rc parse_or(struct parser *ps, struct node **out, int delim)
{
	enum tw_rc rc = parse_and(ps, out, delim);

	while (!rc) {
		skipws(ps);
		if (!(ps->i + 1 < ps->n && ps->p[ps->i] == '|' && ps->p[ps->i + 1] == '|'))
			break;
		struct node *nd = node_new(ps, N_OR, ps->i);
		if (!nd)
			return ps->err->rc;
		ps->i += 2;
		nd->l = *out;
		*out = nd;
		rc = parse_and(ps, &nd->r, delim);
	}
	return rc;
}

static enum tw_rc parse_json(struct parser *ps)
{
	enum tw_rc rc;

	ps->i++; /* '{' */
	skipws(ps);
	if (ps->i < ps->n && ps->p[ps->i] == '}')
		return perr(ps, ps->i, TW_EPARSE, "empty JSON pattern: expected a condition such as $.field = \"value\"");
	if ((rc = parse_or(ps, &ps->f->root, 0)))
		return rc;
	skipws(ps);
	if (ps->i >= ps->n)
		return perr(ps, ps->i, TW_EPARSE, "expected '}' at the end of the JSON pattern");
	if (ps->p[ps->i] != '}') {
		if (ps->p[ps->i] == ')')
			return perr(ps, ps->i, TW_EPARSE, "unbalanced ')'");
		return perr(ps, ps->i, TW_EPARSE, "expected '&&', '||' or '}'");
	}
	ps->i++;
	skipws(ps);
	if (ps->i < ps->n)
		return perr(ps, ps->i, TW_EPARSE, "unexpected text after the closing '}'");
	return TW_OK;
}

/* 1 when every leaf under nd (through ORs) is `path = "literal"` on the path of the first. */
static int eq_leaves(const struct node *nd, size_t *path, int *have, size_t *n)
{
	if (nd->type == N_OR)
		return eq_leaves(nd->l, path, have, n) && eq_leaves(nd->r, path, have, n);
	if (nd->type != N_CMP || nd->op != OP_EQ || nd->vk != V_STR || nd->star)
		return 0;
	if (*have && nd->path != *path)
		return 0;
	*have = 1;
	*path = nd->path;
	(*n)++;
	return 1;
}

static void eq_fill(const struct node *nd, const struct node **out, size_t *k)
{
	if (nd->type == N_OR) {
		eq_fill(nd->l, out, k);
		eq_fill(nd->r, out, k);
	} else {
		out[(*k)++] = nd;
	}
}

static int leaf_cmp(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a, *y = *(const struct node *const *)b;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->n ? memcmp(x->s, y->s, x->n) : 0;
}

/* Gives each OR node of a JSON condition that qualifies its eqset (see struct eqset). */
static enum tw_rc eqset_build(struct node *nd, struct tw_err *err)
{
	size_t path = 0, n = 0, k = 0;
	int have = 0;
	enum tw_rc rc;

	if (!nd || nd->type == N_CMP)
		return TW_OK;
	if (nd->type == N_OR && eq_leaves(nd, &path, &have, &n) && n >= 2) {
		struct eqset *eq = calloc(1, sizeof *eq);
		if (!eq || !(eq->leaf = malloc(n * sizeof *eq->leaf))) {
			free(eq);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
		eq_fill(nd, eq->leaf, &k);
		qsort(eq->leaf, n, sizeof *eq->leaf, leaf_cmp);
		eq->path = path;
		eq->n = n;
		nd->eq = eq;
		return TW_OK;
	}
	if ((rc = eqset_build(nd->l, err)))
		return rc;
	return eqset_build(nd->r, err);
}

/* 1 when s[0..n) equals one of eq's literals. */
static int eqset_has(const struct eqset *eq, const char *s, size_t n)
{
	size_t lo = 0, hi = eq->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct node *x = eq->leaf[mid];
		int c = x->n != n ? (x->n < n ? -1 : 1) : n ? memcmp(x->s, s, n) : 0;
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static enum tw_rc parse_delim(struct parser *ps)
{
	struct tw_filter *f = ps->f;
	enum tw_rc rc;
	size_t nell = 0;

	ps->i++; /* '[' */
	f->fields = calloc(TW_FILTER_MAX_ITEMS, sizeof *f->fields);
	if (!f->fields)
		return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
	for (;;) {
		skipws(ps);
		if (f->nfields >= TW_FILTER_MAX_ITEMS)
			return perr(ps, ps->i, TW_ELIMIT, "more than %d fields", TW_FILTER_MAX_ITEMS);
		struct dfield *df = &f->fields[f->nfields];
		if (ps->i + 3 <= ps->n && !memcmp(ps->p + ps->i, "...", 3)) {
			if (++nell > MAX_ELLIPSES)
				return perr(ps, ps->i, TW_ELIMIT, "more than %d '...' in one pattern", MAX_ELLIPSES);
			df->ellipsis = 1;
			ps->i += 3;
			f->nfields++;
		} else {
			size_t k0 = ps->i;
			while (ps->i < ps->n && isalnum_((unsigned char)ps->p[ps->i]))
				ps->i++;
			if (ps->i == k0) {
				if (ps->i < ps->n && ps->p[ps->i] == ']' && f->nfields == 0)
					return perr(ps, ps->i, TW_EPARSE, "empty space-delimited pattern: name the fields");
				return perr(ps, k0, TW_EPARSE, "expected a field name or '...'");
			}
			if (!(df->name = dupn(ps->p + k0, ps->i - k0)))
				return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
			f->nfields++;
			if (path_intern(f, NULL, 0, df->name) < 0)
				return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
			skipws(ps);
			if (ps->i < ps->n && ps->p[ps->i] != ',' && ps->p[ps->i] != ']') {
				/* A condition: starts again at the field name ("status = 4* || status = 5*"). */
				ps->i = k0;
				if ((rc = parse_or(ps, &df->cond, 1)))
					return rc;
			}
		}
		skipws(ps);
		if (ps->i >= ps->n)
			return perr(ps, ps->i, TW_EPARSE, "expected ']' at the end of the space-delimited pattern");
		if (ps->p[ps->i] == ']')
			break;
		if (ps->p[ps->i] != ',')
			return perr(ps, ps->i, TW_EPARSE, "expected ',' or ']'");
		ps->i++;
	}
	ps->i++;
	skipws(ps);
	if (ps->i < ps->n)
		return perr(ps, ps->i, TW_EPARSE, "unexpected text after the closing ']'");
	/* Conditions may name only fields of this pattern. */
	for (size_t i = 0; i < f->npaths; i++) {
		size_t k = 0;
		for (; k < f->nfields; k++)
			if (f->fields[k].name && !strcmp(f->fields[k].name, f->paths[i].name))
				break;
		if (k == f->nfields)
			return tw_err_set(ps->err, TW_EPARSE, "column %zu: condition names '%s', which is not a field of this pattern",
					  (size_t)1, f->paths[i].name);
	}
	return TW_OK;
}

static enum tw_rc parse_terms(struct parser *ps)
{
	struct tw_filter *f = ps->f;
	int seen_any = 0, seen_plain = 0;
	enum tw_rc rc;

	f->terms = calloc(TW_FILTER_MAX_ITEMS, sizeof *f->terms);
	if (!f->terms)
		return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
	for (;;) {
		skipws(ps);
		if (ps->i >= ps->n)
			break;
		size_t at = ps->i;
		int kind = 0;
		if (ps->p[ps->i] == '?')
			kind = 1, ps->i++;
		else if (ps->p[ps->i] == '-')
			kind = 2, ps->i++;
		if (kind && (ps->i >= ps->n || ps->p[ps->i] == ' '))
			return perr(ps, at, TW_EPARSE, "'%c' must be followed by a term", kind == 1 ? '?' : '-');
		if (kind == 1 ? seen_plain : seen_any)
			return perr(ps, at, TW_EPARSE,
				    "cannot mix ?terms (any of) with plain or -terms in one pattern");
		if (kind == 1)
			seen_any = 1;
		else
			seen_plain = 1;
		if (f->nterms >= TW_FILTER_MAX_ITEMS)
			return perr(ps, at, TW_ELIMIT, "more than %d terms", TW_FILTER_MAX_ITEMS);
		struct term *t = &f->terms[f->nterms];
		t->kind = kind;
		t->col = at + 1;
		if (ps->p[ps->i] == '"') {
			if ((rc = parse_quoted(ps, &t->s, &t->n)))
				return rc;
			f->nterms++;
			if (ps->i < ps->n && ps->p[ps->i] != ' ' && ps->p[ps->i] != '\t')
				return perr(ps, ps->i, TW_EPARSE, "expected a space after the closing '\"'");
			continue;
		}
		size_t k0 = ps->i;
		while (ps->i < ps->n && isalnum_((unsigned char)ps->p[ps->i]))
			ps->i++;
		if (ps->i < ps->n && ps->p[ps->i] != ' ' && ps->p[ps->i] != '\t') {
			unsigned char c = (unsigned char)ps->p[ps->i];
			if (c == '{' || c == '[' || c == '%')
				return perr(ps, ps->i, TW_EPARSE,
					    "'%c' may only start a pattern (JSON, space-delimited or regex)", c);
			return perr(ps, ps->i, TW_EPARSE,
				    "a term with characters other than letters, digits and '_' must be in double quotes");
		}
		if (!(t->s = dupn(ps->p + k0, ps->i - k0)))
			return tw_err_set(ps->err, TW_ENOMEM, "out of memory");
		t->n = ps->i - k0;
		f->nterms++;
	}
	f->any = seen_any;
	/* A lone " " (or "") is the documented match-all: drop empty terms. */
	size_t w = 0;
	for (size_t i = 0; i < f->nterms; i++) {
		int blank = 1;
		for (size_t k = 0; k < f->terms[i].n; k++)
			if (f->terms[i].s[k] != ' ')
				blank = 0;
		if (blank && f->terms[i].kind != 2 && f->nterms == 1) {
			free(f->terms[i].s);
			continue;
		}
		f->terms[w++] = f->terms[i];
	}
	f->nterms = w;
	return TW_OK;
}

enum tw_rc tw_filter_compile(const char *pat, size_t n, struct tw_filter **out, struct tw_err *err)
{
	struct parser ps = { .p = pat, .n = n, .err = err };
	struct tw_err lerr;
	enum tw_rc rc;

	if (!err)
		ps.err = err = &lerr;
	if (n > TW_FILTER_MAX_PATTERN)
		return tw_err_set(err, TW_ELIMIT, "column %d: pattern longer than %d bytes", TW_FILTER_MAX_PATTERN + 1,
				  TW_FILTER_MAX_PATTERN);
	if (memchr(pat, 0, n))
		return tw_err_set(err, TW_EPARSE, "column %zu: NUL byte in pattern",
				  (size_t)((const char *)memchr(pat, 0, n) - pat) + 1);
	ps.f = calloc(1, sizeof *ps.f);
	if (!ps.f || !(ps.f->text = dupn(pat, n))) {
		free(ps.f);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	ps.f->ntext = n;
	skipws(&ps);
	if (ps.i < n && pat[ps.i] == '{') {
		ps.f->type = P_JSON;
		rc = parse_json(&ps);
		if (!rc)
			rc = eqset_build(ps.f->root, err);
	} else if (ps.i < n && pat[ps.i] == '[') {
		ps.f->type = P_DELIM;
		rc = parse_delim(&ps);
	} else if (ps.i < n && pat[ps.i] == '%') {
		ps.f->type = P_REGEX;
		size_t srcn;
		rc = parse_regex(&ps, &ps.f->re_src, &srcn, &ps.f->re);
		skipws(&ps);
		if (!rc && ps.i < n)
			rc = perr(&ps, ps.i, TW_EPARSE, "unexpected text after the closing '%%'");
	} else {
		ps.f->type = P_TERMS;
		rc = parse_terms(&ps);
	}
	if (rc) {
		tw_filter_free(ps.f);
		return rc;
	}
	*out = ps.f;
	return TW_OK;
}

size_t tw_filter_error_column(const struct tw_err *err)
{
	unsigned long c;
	if (!err || sscanf(err->msg, "column %lu:", &c) != 1)
		return 0;
	return (size_t)c;
}

/* ---- printer ----------------------------------------------------------------------------------- */

static enum tw_rc put_quoted(struct tw_buf *b, const char *s, size_t n, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_putc(b, '"', err);
	for (size_t i = 0; !rc && i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			rc = tw_buf_putc(b, '\\', err);
		if (!rc)
			rc = tw_buf_putc(b, s[i], err);
	}
	return rc ? rc : tw_buf_putc(b, '"', err);
}

static enum tw_rc put_path(struct tw_buf *b, const struct path *pa, struct tw_err *err)
{
	enum tw_rc rc;
	if (pa->name)
		return tw_buf_append(b, pa->name, strlen(pa->name), err);
	rc = tw_buf_putc(b, '$', err);
	for (size_t k = 0; !rc && k < pa->nseg; k++)
		rc = pa->segs[k].key ? tw_buf_printf(b, err, ".%.*s", (int)pa->segs[k].n, pa->segs[k].key)
				     : tw_buf_printf(b, err, "[%ld]", pa->segs[k].index);
	return rc;
}

static const char *op_str(enum op op)
{
	switch (op) {
	case OP_EQ: return "=";
	case OP_NE: return "!=";
	case OP_LT: return "<";
	case OP_LE: return "<=";
	case OP_GT: return ">";
	case OP_GE: return ">=";
	case OP_NULL: return "IS NULL";
	case OP_NOTEXISTS: return "NOT EXISTS";
	case OP_TRUE: return "IS TRUE";
	case OP_FALSE: return "IS FALSE";
	}
	return "?";
}

static enum tw_rc put_node(struct tw_buf *b, const struct tw_filter *f, const struct node *nd, struct tw_err *err)
{
	enum tw_rc rc;
	if (nd->type != N_CMP) {
		if ((rc = tw_buf_putc(b, '(', err)) || (rc = put_node(b, f, nd->l, err)) ||
		    (rc = tw_buf_printf(b, err, " %s ", nd->type == N_AND ? "&&" : "||")) ||
		    (rc = put_node(b, f, nd->r, err)))
			return rc;
		return tw_buf_putc(b, ')', err);
	}
	if ((rc = put_path(b, &f->paths[nd->path], err)) || (rc = tw_buf_printf(b, err, " %s", op_str(nd->op))))
		return rc;
	switch (nd->vk) {
	case V_NONE:
		return TW_OK;
	case V_STR:
		return (rc = tw_buf_putc(b, ' ', err)) ? rc : put_quoted(b, nd->s, nd->n, err);
	case V_NUM:
		return tw_buf_printf(b, err, " %.17g", nd->num);
	case V_REGEX:
		return tw_buf_printf(b, err, " %%%s%%", nd->s);
	}
	return TW_OK;
}

enum tw_rc tw_filter_format(const struct tw_filter *f, struct tw_buf *b, struct tw_err *err)
{
	enum tw_rc rc = TW_OK;

	switch (f->type) {
	case P_TERMS:
		if (f->nterms == 0)
			return tw_buf_append(b, "<all>", 5, err);
		for (size_t i = 0; !rc && i < f->nterms; i++) {
			if (i)
				rc = tw_buf_putc(b, ' ', err);
			if (!rc && f->terms[i].kind)
				rc = tw_buf_putc(b, f->terms[i].kind == 1 ? '?' : '-', err);
			if (!rc)
				rc = put_quoted(b, f->terms[i].s, f->terms[i].n, err);
		}
		return rc;
	case P_REGEX:
		return tw_buf_printf(b, err, "%%%s%%", f->re_src);
	case P_JSON:
		if ((rc = tw_buf_append(b, "{ ", 2, err)) || (rc = put_node(b, f, f->root, err)))
			return rc;
		return tw_buf_append(b, " }", 2, err);
	case P_DELIM:
		rc = tw_buf_putc(b, '[', err);
		for (size_t i = 0; !rc && i < f->nfields; i++) {
			if (i)
				rc = tw_buf_append(b, ", ", 2, err);
			if (rc)
				break;
			if (f->fields[i].ellipsis)
				rc = tw_buf_append(b, "...", 3, err);
			else if (f->fields[i].cond)
				rc = put_node(b, f, f->fields[i].cond, err);
			else
				rc = tw_buf_append(b, f->fields[i].name, strlen(f->fields[i].name), err);
		}
		return rc ? rc : tw_buf_putc(b, ']', err);
	}
	return TW_OK;
}

/* ---- evaluation helpers ------------------------------------------------------------------------ */

/* Glob with '*' over the whole of s. */
static int glob(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;

	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && p[pi] == s[si]) {
			pi++;
			si++;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			si = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

static int re_search(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t n)
{
	return pcre2_match(re, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, NULL) >= 0;
}

/* Compares a scalar (type, text, number) with a comparison node. Absent -> false except NOT EXISTS. */
static int cmp_value(const struct node *nd, enum tw_filter_vtype t, const char *s, size_t sn, int has_num,
		     double num, int bval, pcre2_match_data *md)
{
	if (nd->op == OP_NOTEXISTS)
		return t == TW_FILTER_ABSENT;
	if (t == TW_FILTER_ABSENT)
		return 0;
	switch (nd->op) {
	case OP_NULL:
		return t == TW_FILTER_NULL;
	case OP_TRUE:
		return t == TW_FILTER_BOOL && bval;
	case OP_FALSE:
		return t == TW_FILTER_BOOL && !bval;
	default:
		break;
	}
	int eq;
	if (nd->vk == V_NUM) {
		if (!has_num)
			return nd->op == OP_NE;
		switch (nd->op) {
		case OP_EQ: return num == nd->num;
		case OP_NE: return num != nd->num;
		case OP_LT: return num < nd->num;
		case OP_LE: return num <= nd->num;
		case OP_GT: return num > nd->num;
		case OP_GE: return num >= nd->num;
		default: return 0;
		}
	}
	if (t != TW_FILTER_STRING && t != TW_FILTER_NUMBER)
		eq = 0;
	else if (nd->vk == V_REGEX)
		eq = re_search(nd->re, md, s, sn);
	else if (nd->star)
		eq = glob(nd->s, nd->n, s, sn);
	else
		eq = sn == nd->n && !memcmp(s, nd->s, sn);
	return nd->op == OP_EQ ? eq : !eq;
}

/* ---- the set ----------------------------------------------------------------------------------- */

/* A node of the path trie: children by key or index; slot >= 0 when a path ends here. */
struct trie {
	char *key;             /* key, NULL for an index child or the root */
	size_t n;              /* key length */
	long index;            /* index when key is NULL */
	long slot;             /* path slot ending here, or -1 */
	struct trie **kids;    /* children */
	size_t nkids;          /* children in use */
	int has_index_kids;    /* some child is an array index */
};

/* A pattern in the set with the slot of each of its paths. */
struct entry {
	struct tw_filter *f; /* owned */
	size_t *slot;        /* [f->npaths] set-level slots (JSON patterns) */
};

struct tw_filter_set {
	struct entry *e;          /* patterns */
	size_t n, cap;            /* in use, allocated */
	struct trie root;         /* all JSON paths */
	size_t nslots;            /* distinct paths */
	int need_json;            /* some JSON pattern or value path */
	int need_tokens;          /* some delimited pattern */
	struct tw_filter_value *vals; /* [nslots] scratch of one evaluation */
	size_t vals_cap;          /* allocated */
	pcre2_match_data *md;     /* shared match data */
	struct tw_buf scratch;    /* unescaped strings */
	struct tw_str *tok;       /* delimited tokens of the current message */
	size_t ntok;              /* tokens */
	int tok_over;             /* more tokens than MAX_TOKENS */
	size_t found;             /* slots filled during the JSON walk */
};

static void trie_free(struct trie *t)
{
	for (size_t i = 0; i < t->nkids; i++) {
		trie_free(t->kids[i]);
		free(t->kids[i]);
	}
	free(t->kids);
	free(t->key);
}

enum tw_rc tw_filter_set_new(struct tw_filter_set **out, struct tw_err *err)
{
	struct tw_filter_set *set = calloc(1, sizeof *set);

	if (!set || !(set->md = pcre2_match_data_create(1, NULL)) ||
	    !(set->tok = calloc(MAX_TOKENS, sizeof *set->tok))) {
		if (set)
			pcre2_match_data_free(set->md);
		free(set);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	set->root.slot = -1;
	tw_buf_init(&set->scratch, 1u << 26);
	*out = set;
	return TW_OK;
}

void tw_filter_set_free(struct tw_filter_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		tw_filter_free(set->e[i].f);
		free(set->e[i].slot);
	}
	free(set->e);
	trie_free(&set->root);
	free(set->vals);
	pcre2_match_data_free(set->md);
	tw_buf_free(&set->scratch);
	free(set->tok);
	free(set);
}

/* Finds or adds the slot of a path in the trie. */
static enum tw_rc trie_insert(struct tw_filter_set *set, const struct seg *segs, size_t nseg, size_t *slot,
			      struct tw_err *err)
{
	struct trie *t = &set->root;

	for (size_t k = 0; k < nseg; k++) {
		struct trie *c = NULL;
		for (size_t i = 0; i < t->nkids && !c; i++) {
			struct trie *x = t->kids[i];
			if (segs[k].key ? (x->key && x->n == segs[k].n && !memcmp(x->key, segs[k].key, x->n))
					: (!x->key && x->index == segs[k].index))
				c = x;
		}
		if (!c) {
			struct trie **nk = realloc(t->kids, (t->nkids + 1) * sizeof *nk);
			if (!nk)
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			t->kids = nk;
			c = calloc(1, sizeof *c);
			if (!c)
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			c->slot = -1;
			c->index = segs[k].index;
			if (segs[k].key) {
				if (!(c->key = dupn(segs[k].key, segs[k].n))) {
					free(c);
					return tw_err_set(err, TW_ENOMEM, "out of memory");
				}
				c->n = segs[k].n;
			} else {
				t->has_index_kids = 1;
			}
			t->kids[t->nkids++] = c;
		}
		t = c;
	}
	if (t->slot < 0) {
		if (set->nslots >= set->vals_cap) {
			size_t nc = set->vals_cap ? 2 * set->vals_cap : 16;
			struct tw_filter_value *nv = realloc(set->vals, nc * sizeof *nv);
			if (!nv)
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			set->vals = nv;
			set->vals_cap = nc;
		}
		t->slot = (long)set->nslots++;
	}
	*slot = (size_t)t->slot;
	set->need_json = 1;
	return TW_OK;
}

static enum tw_rc set_push(struct tw_filter_set *set, struct tw_filter *f, size_t *idx, struct tw_err *err)
{
	struct entry en = { .f = f };
	enum tw_rc rc;

	if (set->n == set->cap) {
		size_t nc = set->cap ? 2 * set->cap : 16;
		struct entry *ne = realloc(set->e, nc * sizeof *ne);
		if (!ne)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		set->e = ne;
		set->cap = nc;
	}
	if (f->type == P_JSON) {
		en.slot = calloc(f->npaths ? f->npaths : 1, sizeof *en.slot);
		if (!en.slot)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		for (size_t i = 0; i < f->npaths; i++)
			if ((rc = trie_insert(set, f->paths[i].segs, f->paths[i].nseg, &en.slot[i], err))) {
				free(en.slot);
				return rc;
			}
	}
	if (f->type == P_DELIM)
		set->need_tokens = 1;
	set->e[set->n] = en;
	*idx = set->n++;
	return TW_OK;
}

enum tw_rc tw_filter_set_add(struct tw_filter_set *set, const char *pat, size_t n, size_t *idx, struct tw_err *err)
{
	struct tw_filter *f;
	enum tw_rc rc = tw_filter_compile(pat, n, &f, err);

	if (rc)
		return rc;
	if ((rc = set_push(set, f, idx, err)))
		tw_filter_free(f);
	return rc;
}

enum tw_rc tw_filter_set_add_path(struct tw_filter_set *set, const char *path, size_t n, size_t *idx,
				  struct tw_err *err)
{
	struct parser ps = { .p = path, .n = n, .err = err };
	struct seg segs[MAX_PATH_SEGS];
	size_t nseg;
	enum tw_rc rc;

	if (n > TW_FILTER_MAX_PATTERN)
		return tw_err_set(err, TW_ELIMIT, "path longer than %d bytes", TW_FILTER_MAX_PATTERN);
	skipws(&ps);
	if ((rc = parse_selector(&ps, segs, &nseg)))
		return rc;
	skipws(&ps);
	if (ps.i < n)
		return perr(&ps, ps.i, TW_EPARSE, "unexpected text after the selector");
	return trie_insert(set, segs, nseg, idx, err);
}

size_t tw_filter_set_npatterns(const struct tw_filter_set *set)
{
	return set->n;
}

const struct tw_filter *tw_filter_set_get(const struct tw_filter_set *set, size_t i)
{
	return i < set->n ? set->e[i].f : NULL;
}

enum tw_rc tw_filter_result_init(const struct tw_filter_set *set, struct tw_filter_result *r, struct tw_err *err)
{
	memset(r, 0, sizeof *r);
	r->matched = calloc(set->n ? set->n : 1, 1);
	r->values = calloc(set->nslots ? set->nslots : 1, sizeof *r->values);
	if (!r->matched || !r->values) {
		tw_filter_result_free(r);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	r->npatterns = set->n;
	r->npaths = set->nslots;
	return TW_OK;
}

void tw_filter_result_free(struct tw_filter_result *r)
{
	free(r->matched);
	free(r->values);
	memset(r, 0, sizeof *r);
}

/* Reads the value under the reader into v (scalars), or descends when t has children. */
static int walk_value(struct tw_filter_set *set, struct tw_json *j, const struct trie *t);

static int walk_children(struct tw_filter_set *set, struct tw_json *j, const struct trie *t, enum tw_json_type ty)
{
	struct tw_str key;
	int r;

	if (ty == TW_JSON_OBJECT) {
		if (!tw_json_obj_begin(j))
			return 0;
		while ((r = tw_json_obj_next(j, &key)) == 1) {
			const struct trie *c = NULL;
			for (size_t i = 0; i < t->nkids; i++)
				if (t->kids[i]->key && t->kids[i]->n == key.n && !memcmp(t->kids[i]->key, key.p, key.n)) {
					c = t->kids[i];
					break;
				}
			if (c) {
				if (!walk_value(set, j, c))
					return 0;
				if (t == &set->root && set->found == set->nslots)
					return 1; /* every wanted path found: the rest is not needed */
			} else if (!tw_json_skip(j, NULL)) {
				return 0;
			}
		}
		return r == 0;
	}
	if (!tw_json_arr_begin(j))
		return 0;
	long idx = 0;
	while ((r = tw_json_arr_next(j)) == 1) {
		const struct trie *c = NULL;
		for (size_t i = 0; i < t->nkids; i++)
			if (!t->kids[i]->key && t->kids[i]->index == idx) {
				c = t->kids[i];
				break;
			}
		if (c ? !walk_value(set, j, c) : !tw_json_skip(j, NULL))
			return 0;
		idx++;
	}
	return r == 0;
}

static int walk_value(struct tw_filter_set *set, struct tw_json *j, const struct trie *t)
{
	enum tw_json_type ty = tw_json_peek(j);
	struct tw_filter_value *v = t->slot >= 0 ? &set->vals[t->slot] : NULL;

	if (v && v->type == TW_FILTER_ABSENT)
		set->found++;
	if ((ty == TW_JSON_OBJECT || ty == TW_JSON_ARRAY) && t->nkids) {
		size_t off = tw_json_offset(j);
		const char *start = j->start + off;
		while (start < j->end && (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r'))
			start++;
		if (!walk_children(set, j, t, ty))
			return 0;
		if (v) {
			memset(v, 0, sizeof *v);
			v->type = ty == TW_JSON_OBJECT ? TW_FILTER_OBJECT : TW_FILTER_ARRAY;
			v->s.p = start;
			v->s.n = (size_t)(j->start + tw_json_offset(j) - start);
		}
		return 1;
	}
	if (!v)
		return tw_json_skip(j, NULL);
	struct tw_str s;
	enum tw_json_type st;
	int esc = 0;
	if (!tw_json_scalar(j, &st, &s, &esc))
		return 0;
	memset(v, 0, sizeof *v);
	v->s = s;
	v->escaped = esc;
	switch (st) {
	case TW_JSON_NULL: v->type = TW_FILTER_NULL; break;
	case TW_JSON_TRUE: v->type = TW_FILTER_BOOL; v->b = 1; break;
	case TW_JSON_FALSE: v->type = TW_FILTER_BOOL; break;
	case TW_JSON_NUMBER:
		v->type = TW_FILTER_NUMBER;
		v->has_num = parse_number(s.p, s.n, &v->num);
		break;
	case TW_JSON_STRING: v->type = TW_FILTER_STRING; break;
	case TW_JSON_OBJECT: v->type = TW_FILTER_OBJECT; break;
	case TW_JSON_ARRAY: v->type = TW_FILTER_ARRAY; break;
	default: v->type = TW_FILTER_ABSENT; break;
	}
	return 1;
}

/* Splits msg into delimited tokens: runs of spaces separate; "..." and [...] are one token. */
static void tokenize(struct tw_filter_set *set, const char *p, size_t n)
{
	size_t i = 0;

	set->ntok = 0;
	set->tok_over = 0;
	while (i < n) {
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
			i++;
		if (i >= n)
			break;
		if (set->ntok == MAX_TOKENS) {
			set->tok_over = 1;
			return;
		}
		size_t s = i;
		struct tw_str *t = &set->tok[set->ntok++];
		if (p[i] == '"' || p[i] == '[') {
			char close = p[i] == '"' ? '"' : ']';
			const char *e = memchr(p + i + 1, close, n - i - 1);
			if (e) {
				t->p = p + s + 1;
				t->n = (size_t)(e - (p + s + 1));
				i = (size_t)(e - p) + 1;
				continue;
			}
		}
		while (i < n && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			i++;
		t->p = p + s;
		t->n = i - s;
	}
}

/* Evaluates a JSON condition with the values found. */
static int eval_json(struct tw_filter_set *set, const struct entry *en, const struct node *nd)
{
	if (nd->type == N_AND)
		return eval_json(set, en, nd->l) && eval_json(set, en, nd->r);
	if (nd->type == N_OR && !nd->eq)
		return eval_json(set, en, nd->l) || eval_json(set, en, nd->r);
	const struct tw_filter_value *v = &set->vals[en->slot[nd->eq ? nd->eq->path : nd->path]];
	struct tw_str s = v->s;
	if (nd->eq) { /* as the leaves one by one: cmp_value's OP_EQ on a plain string */
		if (v->type != TW_FILTER_STRING && v->type != TW_FILTER_NUMBER)
			return 0;
		if (v->type == TW_FILTER_STRING && v->escaped) {
			set->scratch.n = 0;
			if (tw_json_unescape_buf(v->s, &set->scratch, NULL) == TW_OK) {
				s.p = set->scratch.p;
				s.n = set->scratch.n;
			}
		}
		return eqset_has(nd->eq, s.p, s.n);
	}
	if (v->type == TW_FILTER_STRING && v->escaped && nd->vk != V_NUM) {
		set->scratch.n = 0;
		if (tw_json_unescape_buf(v->s, &set->scratch, NULL) == TW_OK) {
			s.p = set->scratch.p;
			s.n = set->scratch.n;
		}
	}
	return cmp_value(nd, v->type, s.p, s.n, v->has_num, v->num, v->b, set->md);
}

/* Delimited: the field bindings of the current attempt. */
struct dbind {
	const struct tw_filter *f; /* pattern */
	const struct tw_str **val; /* [f->npaths]: token bound to each name (NULL: unbound) */
};

static int eval_dcond(struct tw_filter_set *set, const struct dbind *db, const struct node *nd)
{
	if (nd->type == N_AND)
		return eval_dcond(set, db, nd->l) && eval_dcond(set, db, nd->r);
	if (nd->type == N_OR)
		return eval_dcond(set, db, nd->l) || eval_dcond(set, db, nd->r);
	const struct tw_str *t = db->val[nd->path];
	if (!t)
		return 0;
	double num = 0;
	int has = parse_number(t->p, t->n, &num);
	return cmp_value(nd, TW_FILTER_STRING, t->p, t->n, has, num, 0, set->md);
}

static int dmatch(struct tw_filter_set *set, struct dbind *db, size_t fi, size_t ti)
{
	const struct tw_filter *f = db->f;

	if (fi == f->nfields) {
		if (ti != set->ntok)
			return 0;
		for (size_t i = 0; i < f->nfields; i++)
			if (f->fields[i].cond && !eval_dcond(set, db, f->fields[i].cond))
				return 0;
		return 1;
	}
	const struct dfield *df = &f->fields[fi];
	if (df->ellipsis) {
		for (size_t t = ti; t <= set->ntok; t++)
			if (dmatch(set, db, fi + 1, t))
				return 1;
		return 0;
	}
	if (ti >= set->ntok)
		return 0;
	size_t slot = 0;
	for (; slot < f->npaths; slot++)
		if (!strcmp(f->paths[slot].name, df->name))
			break;
	const struct tw_str *old = db->val[slot];
	db->val[slot] = &set->tok[ti];
	int ok = dmatch(set, db, fi + 1, ti + 1);
	db->val[slot] = old;
	return ok;
}

static int eval_one(struct tw_filter_set *set, const struct entry *en, const char *msg, size_t n, int json_ok)
{
	const struct tw_filter *f = en->f;

	switch (f->type) {
	case P_TERMS:
		if (f->nterms == 0)
			return 1;
		if (f->any) {
			for (size_t i = 0; i < f->nterms; i++)
				if (memmem(msg, n, f->terms[i].s, f->terms[i].n))
					return 1;
			return 0;
		}
		for (size_t i = 0; i < f->nterms; i++) {
			int has = f->terms[i].n == 0 || memmem(msg, n, f->terms[i].s, f->terms[i].n) != NULL;
			if (has != (f->terms[i].kind != 2))
				return 0;
		}
		return 1;
	case P_REGEX:
		return re_search(f->re, set->md, msg, n);
	case P_JSON:
		return json_ok && eval_json(set, en, f->root);
	case P_DELIM: {
		const struct tw_str *val[TW_FILTER_MAX_ITEMS * 2];
		struct dbind db = { f, val };
		if (set->tok_over || f->npaths > TW_FILTER_MAX_ITEMS * 2)
			return 0;
		for (size_t i = 0; i < f->npaths; i++)
			val[i] = NULL;
		return dmatch(set, &db, 0, 0);
	}
	}
	return 0;
}

/* Walks the message as JSON once, filling set->vals. Returns 1 if it is a JSON object. */
static int collect(struct tw_filter_set *set, const char *msg, size_t n)
{
	struct tw_json j;

	for (size_t i = 0; i < set->nslots; i++)
		set->vals[i].type = TW_FILTER_ABSENT;
	set->found = 0;
	tw_json_init(&j, msg, n, JSON_DEPTH);
	if (tw_json_peek(&j) != TW_JSON_OBJECT)
		return 0;
	if (!walk_children(set, &j, &set->root, TW_JSON_OBJECT)) {
		for (size_t i = 0; i < set->nslots; i++)
			set->vals[i].type = TW_FILTER_ABSENT;
		return 0;
	}
	return 1;
}

static void message_of(const struct tw_event *ev, const char **p, size_t *n)
{
	if (ev->kind == TW_KIND_CWLOG) {
		*p = ev->f[TW_F_MESSAGE].p;
		*n = ev->f[TW_F_MESSAGE].n;
	} else {
		*p = ev->raw.p;
		*n = ev->raw.n;
	}
	if (!*p)
		*p = "";
}

enum tw_rc tw_filter_set_eval(struct tw_filter_set *set, const struct tw_event *ev, struct tw_filter_result *r,
			      struct tw_err *err)
{
	const char *msg;
	size_t n;
	int json_ok = 0;

	if (r->npatterns < set->n || r->npaths < set->nslots)
		return tw_err_set(err, TW_EINVAL, "filter result sized for %zu patterns and %zu paths; the set has %zu and %zu",
				  r->npatterns, r->npaths, set->n, set->nslots);
	message_of(ev, &msg, &n);
	if (set->need_json)
		json_ok = collect(set, msg, n);
	if (set->need_tokens)
		tokenize(set, msg, n);
	for (size_t i = 0; i < set->n; i++)
		r->matched[i] = (uint8_t)eval_one(set, &set->e[i], msg, n, json_ok);
	if (set->nslots)
		memcpy(r->values, set->vals, set->nslots * sizeof *r->values);
	return TW_OK;
}

int tw_filter_set_match_text(struct tw_filter_set *set, size_t idx, const char *msg, size_t n, struct tw_err *err)
{
	int json_ok = 0;

	if (idx >= set->n) {
		tw_err_set(err, TW_EINVAL, "no pattern %zu in the set", idx);
		return -1;
	}
	if (set->need_json)
		json_ok = collect(set, msg, n);
	if (set->need_tokens)
		tokenize(set, msg, n);
	return eval_one(set, &set->e[idx], msg ? msg : "", n, json_ok);
}

/* ---- linter ------------------------------------------------------------------------------------ */

/* JSON types CloudTrail gives its fields (CloudTrail record contents, AWS CloudTrail User Guide). */
enum cttype { CT_STRING, CT_BOOL, CT_OBJECT, CT_ARRAY, CT_NUMBER };
static const struct {
	const char *path;  /* selector without "$." */
	enum cttype type;  /* the only JSON type CloudTrail writes there (besides null) */
} ct_fields[] = {
	{ "eventVersion", CT_STRING }, { "eventTime", CT_STRING }, { "eventSource", CT_STRING },
	{ "eventName", CT_STRING }, { "awsRegion", CT_STRING }, { "sourceIPAddress", CT_STRING },
	{ "userAgent", CT_STRING }, { "errorCode", CT_STRING }, { "errorMessage", CT_STRING },
	{ "requestID", CT_STRING }, { "eventID", CT_STRING }, { "eventType", CT_STRING },
	{ "apiVersion", CT_STRING }, { "recipientAccountId", CT_STRING }, { "sharedEventID", CT_STRING },
	{ "vpcEndpointId", CT_STRING }, { "eventCategory", CT_STRING }, { "readOnly", CT_BOOL },
	{ "managementEvent", CT_BOOL }, { "sessionCredentialFromConsole", CT_STRING },
	{ "userIdentity", CT_OBJECT }, { "requestParameters", CT_OBJECT }, { "responseElements", CT_OBJECT },
	{ "additionalEventData", CT_OBJECT }, { "serviceEventDetails", CT_OBJECT }, { "tlsDetails", CT_OBJECT },
	{ "insightDetails", CT_OBJECT }, { "edgeDeviceDetails", CT_OBJECT }, { "resources", CT_ARRAY },
	{ "userIdentity.type", CT_STRING }, { "userIdentity.principalId", CT_STRING },
	{ "userIdentity.arn", CT_STRING }, { "userIdentity.accountId", CT_STRING },
	{ "userIdentity.accessKeyId", CT_STRING }, { "userIdentity.userName", CT_STRING },
	{ "userIdentity.invokedBy", CT_STRING }, { "userIdentity.identityProvider", CT_STRING },
	{ "userIdentity.sessionContext", CT_OBJECT },
	{ "userIdentity.sessionContext.attributes.mfaAuthenticated", CT_STRING },
	{ "userIdentity.sessionContext.attributes.creationDate", CT_STRING },
	{ "userIdentity.sessionContext.sessionIssuer.type", CT_STRING },
	{ "userIdentity.sessionContext.sessionIssuer.arn", CT_STRING },
	{ "userIdentity.sessionContext.sessionIssuer.userName", CT_STRING },
	{ "additionalEventData.MFAUsed", CT_STRING }, { "additionalEventData.LoginTo", CT_STRING },
	{ "additionalEventData.MobileVersion", CT_STRING }, { "responseElements.ConsoleLogin", CT_STRING },
	{ "tlsDetails.tlsVersion", CT_STRING }, { "tlsDetails.cipherSuite", CT_STRING },
	{ "tlsDetails.clientProvidedHostHeader", CT_STRING },
};

static const char *ct_type_name(enum cttype t)
{
	switch (t) {
	case CT_STRING: return "a string";
	case CT_BOOL: return "a boolean";
	case CT_OBJECT: return "an object";
	case CT_ARRAY: return "an array";
	case CT_NUMBER: return "a number";
	}
	return "?";
}

/* Known CloudTrail type of a selector, or -1. */
static int ct_lookup(const struct path *pa)
{
	char b[256];
	size_t k = 0;

	for (size_t i = 0; i < pa->nseg; i++) {
		if (!pa->segs[i].key || k + pa->segs[i].n + 2 > sizeof b)
			return -1;
		if (i)
			b[k++] = '.';
		memcpy(b + k, pa->segs[i].key, pa->segs[i].n);
		k += pa->segs[i].n;
	}
	b[k] = 0;
	for (size_t i = 0; i < sizeof ct_fields / sizeof ct_fields[0]; i++)
		if (!strcmp(ct_fields[i].path, b))
			return (int)ct_fields[i].type;
	return -1;
}

struct lint {
	const struct tw_filter *f;      /* the pattern */
	struct tw_filter_warning *w;    /* output */
	size_t max, n;                  /* capacity, findings */
};

static void warn(struct lint *L, const char *code, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void warn(struct lint *L, const char *code, size_t col, const char *fmt, ...)
{
	if (L->n < L->max) {
		va_list ap;
		struct tw_filter_warning *w = &L->w[L->n];
		w->code = code;
		w->column = col;
		va_start(ap, fmt);
		vsnprintf(w->msg, sizeof w->msg, fmt, ap);
		va_end(ap);
	}
	L->n++;
}

static void path_text(const struct path *pa, char *out, size_t outsz)
{
	struct tw_buf b;
	tw_buf_init(&b, outsz - 1);
	if (put_path(&b, pa, NULL) == TW_OK)
		snprintf(out, outsz, "%s", tw_buf_cstr(&b));
	else
		snprintf(out, outsz, "(selector)");
	tw_buf_free(&b);
}

/* neq-in-or: a != (or NOT EXISTS) somewhere under an || */
static void lint_or(struct lint *L, const struct node *nd, int under_or)
{
	if (nd->type == N_OR) {
		lint_or(L, nd->l, 1);
		lint_or(L, nd->r, 1);
		return;
	}
	if (nd->type == N_AND) {
		/* Under an OR, an AND still counts: (a != x && b = y) || ... is fine. */
		lint_or(L, nd->l, 0);
		lint_or(L, nd->r, 0);
		return;
	}
	if (under_or && nd->op == OP_NE) {
		char p[128];
		path_text(&L->f->paths[nd->path], p, sizeof p);
		warn(L, "neq-in-or", nd->col,
		     "'%s != ...' joined by '||' matches every event where %s has any other value: "
		     "the whole pattern then matches nearly everything (use '&&' for exclusions)", p, p);
	}
}

/* mixed-and-or: an && operand of || written without parentheses (or the reverse). */
static void lint_mixed(struct lint *L, const struct node *nd)
{
	if (nd->type == N_CMP)
		return;
	if (nd->type == N_OR) {
		const struct node *k[2] = { nd->l, nd->r };
		for (int i = 0; i < 2; i++)
			if (k[i]->type == N_AND && !k[i]->paren)
				warn(L, "mixed-and-or", k[i]->col,
				     "'&&' and '||' mixed without parentheses: '&&' binds tighter; add parentheses "
				     "to say which you mean");
	}
	lint_mixed(L, nd->l);
	lint_mixed(L, nd->r);
}

static void lint_types(struct lint *L, const struct node *nd)
{
	if (nd->type != N_CMP) {
		lint_types(L, nd->l);
		lint_types(L, nd->r);
		return;
	}
	int t = ct_lookup(&L->f->paths[nd->path]);
	if (t < 0)
		return;
	const char *want = NULL;
	if (nd->vk == V_NUM && t != CT_NUMBER)
		want = "a number";
	else if ((nd->vk == V_STR || nd->vk == V_REGEX) && t != CT_STRING && t != CT_NUMBER)
		want = "a string";
	else if ((nd->op == OP_TRUE || nd->op == OP_FALSE) && t != CT_BOOL)
		want = "a boolean";
	if (want) {
		char p[128];
		path_text(&L->f->paths[nd->path], p, sizeof p);
		warn(L, "type-mismatch", nd->col, "%s is always %s in CloudTrail (or absent), never %s: "
		     "this clause never matches", p, ct_type_name((enum cttype)t), want);
	}
}

/* Flattens an AND chain into cmp leaves (non-AND subtrees are opaque). */
static void and_leaves(const struct node *nd, const struct node **out, size_t *n, size_t max)
{
	if (nd->type == N_AND) {
		and_leaves(nd->l, out, n, max);
		and_leaves(nd->r, out, n, max);
	} else if (nd->type == N_CMP && *n < max) {
		out[(*n)++] = nd;
	}
}

/* never-matches: within one && chain, two constraints on one path that cannot both hold. */
static void lint_never(struct lint *L, const struct node *nd)
{
	if (nd->type == N_CMP)
		return;
	if (nd->type == N_AND) {
		const struct node *lv[TW_FILTER_MAX_ITEMS * 2];
		size_t n = 0;
		and_leaves(nd, lv, &n, sizeof lv / sizeof lv[0]);
		for (size_t i = 0; i < n; i++)
			for (size_t k = i + 1; k < n; k++) {
				const struct node *a = lv[i], *b = lv[k];
				if (a->path != b->path)
					continue;
				int clash = 0;
				int a_exists = a->op != OP_NOTEXISTS, b_exists = b->op != OP_NOTEXISTS;
				if (a_exists != b_exists)
					clash = 1;
				else if (a->op == OP_EQ && b->op == OP_EQ && a->vk == b->vk && !a->star && !b->star &&
					 a->vk != V_REGEX &&
					 (a->vk == V_NUM ? a->num != b->num : (a->n != b->n || memcmp(a->s, b->s, a->n))))
					clash = 1;
				else if (((a->op == OP_EQ && b->op == OP_NE) || (a->op == OP_NE && b->op == OP_EQ)) &&
					 a->vk == b->vk && !a->star && !b->star && a->vk != V_REGEX &&
					 (a->vk == V_NUM ? a->num == b->num : (a->n == b->n && !memcmp(a->s, b->s, a->n))))
					clash = 1;
				else if (a->vk == V_NUM && b->vk == V_NUM && a->op != OP_NE && b->op != OP_NE) {
					double lo = -INFINITY, hi = INFINITY;
					int lo_x = 0, hi_x = 0;
					const struct node *c[2] = { a, b };
					for (int q = 0; q < 2; q++) {
						double v = c[q]->num;
						switch (c[q]->op) {
						case OP_EQ:
							if (v > lo || (v == lo && !lo_x)) lo = v, lo_x = 0;
							if (v < hi || (v == hi && !hi_x)) hi = v, hi_x = 0;
							break;
						case OP_GT: if (v >= lo) lo = v, lo_x = 1; break;
						case OP_GE: if (v > lo) lo = v, lo_x = 0; break;
						case OP_LT: if (v <= hi) hi = v, hi_x = 1; break;
						case OP_LE: if (v < hi) hi = v, hi_x = 0; break;
						default: break;
						}
					}
					if (lo > hi || (lo == hi && (lo_x || hi_x)))
						clash = 1;
				}
				if (clash) {
					char p[128];
					path_text(&L->f->paths[a->path], p, sizeof p);
					warn(L, "never-matches", b->col,
					     "this clause contradicts the one at column %zu on %s under '&&': "
					     "the conjunction never matches", a->col + 1, p);
				}
			}
	}
	lint_never(L, nd->l);
	lint_never(L, nd->r);
}

enum tw_rc tw_filter_lint(const char *pat, size_t n, struct tw_filter_warning *w, size_t max, size_t *nw,
			  struct tw_err *err)
{
	struct tw_filter *f;
	enum tw_rc rc = tw_filter_compile(pat, n, &f, err);
	struct lint L = { f, w, max, 0 };

	if (rc)
		return rc;
	switch (f->type) {
	case P_TERMS:
		if (f->nterms == 0)
			warn(&L, "match-all", 1, "this pattern matches every event");
		break;
	case P_REGEX: {
		pcre2_match_data *md = pcre2_match_data_create(1, NULL);
		if (md && re_search(f->re, md, "", 0))
			warn(&L, "match-all", 1, "this regex matches the empty string, so it matches every event");
		pcre2_match_data_free(md);
		break;
	}
	case P_JSON:
		lint_or(&L, f->root, 0);
		lint_mixed(&L, f->root);
		lint_types(&L, f->root);
		lint_never(&L, f->root);
		break;
	case P_DELIM: {
		int cond = 0, ell = 0;
		for (size_t i = 0; i < f->nfields; i++) {
			cond |= f->fields[i].cond != NULL;
			ell |= f->fields[i].ellipsis;
			if (f->fields[i].cond) {
				lint_mixed(&L, f->fields[i].cond);
				lint_never(&L, f->fields[i].cond);
			}
		}
		if (!cond && ell && f->nfields == 1)
			warn(&L, "match-all", 1, "'[...]' matches every event");
		break;
	}
	}
	/* Columns were 0-based positions for nodes: make them 1-based. */
	for (size_t i = 0; i < L.n && i < max; i++)
		if (strcmp(w[i].code, "match-all"))
			w[i].column++;
	*nw = L.n;
	tw_filter_free(f);
	return TW_OK;
}
