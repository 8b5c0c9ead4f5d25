/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify_policy.c: SNS subscription filter policies on message attributes, and the
 * retry-delay arithmetic of delivery policies. Pure code: no I/O, no clock, no global state.
 *
 * Filter semantics (SNS, "attribute-based" scope):
 *   1. A policy is an object { key: [condition, ...], ... }. Every key must match (AND); within
 *      a key, any one condition matching is enough (OR).
 *   2. A key whose attribute is absent matches only through {"exists": false}.
 *   3. Conditions are typed: a string value or prefix/suffix/equals-ignore-case only ever match
 *      String attributes, numbers and "numeric" only Number attributes (100 does not match "100").
 *   4. anything-but matches a present attribute of the listed values' type that equals none of
 *      them (or, with {"prefix": P}, a String attribute not starting with P). */
#include "alerts/notify.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 32
#define MAX_VALUES 150

enum ctype {
	C_STR = 1,     /* exact string */
	C_NUM,         /* exact number */
	C_PREFIX,      /* string prefix */
	C_SUFFIX,      /* string suffix */
	C_ICASE,       /* equals-ignore-case */
	C_BUT,         /* anything-but a list of values */
	C_BUT_PREFIX,  /* anything-but a prefix */
	C_NUMERIC,     /* numeric range */
	C_EXISTS,      /* exists true/false */
};

/* One value of an anything-but list. */
struct bval {
	char *s;  /* the string, or NULL for a number */
	double d; /* the number when s == NULL */
};

/* One condition of a key. */
struct cond {
	enum ctype t;       /* kind */
	char *s;            /* string operand (C_STR, C_PREFIX, C_SUFFIX, C_ICASE, C_BUT_PREFIX) */
	double d;           /* number operand (C_NUM) */
	int exists;         /* C_EXISTS: 1 true, 0 false */
	struct bval *vals;  /* C_BUT: the values */
	size_t nvals;       /* entries in vals */
	int lo_op, hi_op;   /* C_NUMERIC: 0 none, 1 strict (> <), 2 inclusive (>= <=), 3 equal (=) */
	double lo, hi;      /* C_NUMERIC bounds */
};

/* One key of the policy. */
struct pkey {
	char *name;         /* attribute name */
	struct cond *conds; /* OR-ed conditions */
	size_t nconds;      /* entries in conds */
};

struct tw_notify_policy {
	struct pkey *keys; /* AND-ed keys */
	size_t nkeys;      /* entries in keys */
};

void tw_notify_policy_free(struct tw_notify_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nkeys; i++) {
		struct pkey *k = &p->keys[i];
		for (size_t j = 0; j < k->nconds; j++) {
			free(k->conds[j].s);
			for (size_t v = 0; v < k->conds[j].nvals; v++)
				free(k->conds[j].vals[v].s);
			free(k->conds[j].vals);
		}
		free(k->conds);
		free(k->name);
	}
	free(p->keys);
	free(p);
}

static enum tw_rc dupstr(const char *s, char **out, struct tw_err *err)
{
	*out = strdup(s);
	return *out ? TW_OK : tw_err_set(err, TW_ENOMEM, "filter policy: out of memory");
}

static int numop(const char *s)
{
	if (!strcmp(s, ">") || !strcmp(s, "<"))
		return 1;
	if (!strcmp(s, ">=") || !strcmp(s, "<="))
		return 2;
	if (!strcmp(s, "="))
		return 3;
	return 0;
}

static enum tw_rc parse_numeric(const char *key, json_t *a, struct cond *c, struct tw_err *err)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;

	if (n != 2 && n != 4)
		return tw_err_set(err, TW_EPARSE,
				  "filter policy: key \"%s\": numeric: expected [OP, NUMBER] or [OP, NUMBER, OP, NUMBER]", key);
	for (size_t i = 0; i < n; i += 2) {
		json_t *op = json_array_get(a, i), *v = json_array_get(a, i + 1);
		int k;
		if (!json_is_string(op) || !(k = numop(json_string_value(op))))
			return tw_err_set(err, TW_EPARSE,
					  "filter policy: key \"%s\": numeric: expected an operator (=, <, <=, >, >=) at position %zu",
					  key, i);
		if (!json_is_number(v))
			return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": numeric: expected a number after \"%s\"",
					  key, json_string_value(op));
		const char *o = json_string_value(op);
		if (k == 3) {
			if (n != 2)
				return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": numeric: \"=\" takes one number", key);
			c->lo_op = c->hi_op = 3;
			c->lo = c->hi = json_number_value(v);
		} else if (o[0] == '>') {
			if (c->lo_op || i != 0)
				return tw_err_set(err, TW_EPARSE,
						  "filter policy: key \"%s\": numeric: the lower bound (> or >=) comes first, once", key);
			c->lo_op = k;
			c->lo = json_number_value(v);
		} else {
			if (c->hi_op)
				return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": numeric: two upper bounds", key);
			c->hi_op = k;
			c->hi = json_number_value(v);
		}
	}
	if (n == 4 && !(c->lo_op && c->hi_op))
		return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": numeric: a range needs > or >= then < or <=", key);
	if (c->lo_op && c->hi_op && c->lo_op != 3 && c->lo > c->hi)
		return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": numeric: empty range (%g > %g)", key, c->lo, c->hi);
	return TW_OK;
}

static enum tw_rc parse_anything_but(const char *key, json_t *v, struct cond *c, struct tw_err *err)
{
	size_t n = 1;

	if (json_is_object(v)) {
		json_t *pre = json_object_get(v, "prefix");
		if (json_object_size(v) != 1 || !json_is_string(pre))
			return tw_err_set(err, TW_EPARSE,
					  "filter policy: key \"%s\": anything-but: expected {\"prefix\": STRING}", key);
		c->t = C_BUT_PREFIX;
		return dupstr(json_string_value(pre), &c->s, err);
	}
	c->t = C_BUT;
	if (json_is_array(v)) {
		n = json_array_size(v);
		if (n == 0 || n > MAX_VALUES)
			return tw_err_set(err, n ? TW_ELIMIT : TW_EPARSE,
					  "filter policy: key \"%s\": anything-but: expected 1 to %d values", key, MAX_VALUES);
	}
	c->vals = calloc(n, sizeof *c->vals);
	if (!c->vals)
		return tw_err_set(err, TW_ENOMEM, "filter policy: out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
		if (json_is_string(x)) {
			if (dupstr(json_string_value(x), &c->vals[i].s, err))
				return err->rc;
		} else if (json_is_number(x)) {
			c->vals[i].d = json_number_value(x);
		} else {
			return tw_err_set(err, TW_EPARSE,
					  "filter policy: key \"%s\": anything-but: values must be strings or numbers", key);
		}
		c->nvals++;
	}
	return TW_OK;
}

static enum tw_rc parse_cond(const char *key, json_t *v, struct cond *c, struct tw_err *err)
{
	const char *op;
	json_t *arg;

	if (json_is_string(v)) {
		c->t = C_STR;
		return dupstr(json_string_value(v), &c->s, err);
	}
	if (json_is_number(v)) {
		c->t = C_NUM;
		c->d = json_number_value(v);
		return TW_OK;
	}
	if (!json_is_object(v) || json_object_size(v) != 1)
		return tw_err_set(err, TW_EPARSE,
				  "filter policy: key \"%s\": each value must be a string, a number or an object with one operator",
				  key);
	op = json_object_iter_key(json_object_iter(v));
	arg = json_object_iter_value(json_object_iter(v));
	if (!strcmp(op, "prefix") || !strcmp(op, "suffix") || !strcmp(op, "equals-ignore-case")) {
		if (!json_is_string(arg))
			return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": %s: expected a string", key, op);
		c->t = op[0] == 'p' ? C_PREFIX : op[0] == 's' ? C_SUFFIX : C_ICASE;
		return dupstr(json_string_value(arg), &c->s, err);
	}
	if (!strcmp(op, "anything-but"))
		return parse_anything_but(key, arg, c, err);
	if (!strcmp(op, "numeric")) {
		c->t = C_NUMERIC;
		return parse_numeric(key, arg, c, err);
	}
	if (!strcmp(op, "exists")) {
		if (!json_is_boolean(arg))
			return tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": exists: expected true or false", key);
		c->t = C_EXISTS;
		c->exists = json_is_true(arg);
		return TW_OK;
	}
	return tw_err_set(err, TW_EPARSE,
			  "filter policy: key \"%s\": unknown operator \"%s\" (expected prefix, suffix, equals-ignore-case, "
			  "anything-but, numeric or exists)",
			  key, op);
}

enum tw_rc tw_notify_policy_parse(const char *text, size_t n, struct tw_notify_policy **out, struct tw_err *err)
{
	json_error_t je;
	json_t *root, *val;
	const char *key;
	struct tw_notify_policy *p;
	enum tw_rc rc = TW_OK;

	if (n > TW_NOTIFY_MAX_POLICY)
		return tw_err_set(err, TW_ELIMIT, "filter policy: %zu bytes (at most %u)", n, TW_NOTIFY_MAX_POLICY);
	root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return tw_err_set(err, TW_EPARSE, "filter policy: line %d, column %d: %s", je.line, je.column, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return tw_err_set(err, TW_EPARSE, "filter policy: expected a JSON object");
	}
	if (json_object_size(root) > MAX_KEYS) {
		json_decref(root);
		return tw_err_set(err, TW_ELIMIT, "filter policy: %zu keys (at most %d)", json_object_size(root), MAX_KEYS);
	}
	p = calloc(1, sizeof *p);
	if (p)
		p->keys = calloc(json_object_size(root) + 1, sizeof *p->keys);
	if (!p || !p->keys) {
		json_decref(root);
		tw_notify_policy_free(p);
		return tw_err_set(err, TW_ENOMEM, "filter policy: out of memory");
	}
	json_object_foreach(root, key, val) {
		struct pkey *k = &p->keys[p->nkeys++];
		size_t nv;
		if ((rc = dupstr(key, &k->name, err)))
			break;
		if (json_is_object(val)) {
			rc = tw_err_set(err, TW_EPARSE,
					"filter policy: key \"%s\": nested objects filter message bodies; trailwatch filters "
					"on message attributes only",
					key);
			break;
		}
		if (!json_is_array(val) || (nv = json_array_size(val)) == 0) {
			rc = tw_err_set(err, TW_EPARSE, "filter policy: key \"%s\": expected a non-empty array of conditions", key);
			break;
		}
		if (nv > MAX_VALUES) {
			rc = tw_err_set(err, TW_ELIMIT, "filter policy: key \"%s\": %zu values (at most %d)", key, nv, MAX_VALUES);
			break;
		}
		k->conds = calloc(nv, sizeof *k->conds);
		if (!k->conds) {
			rc = tw_err_set(err, TW_ENOMEM, "filter policy: out of memory");
			break;
		}
		for (size_t i = 0; i < nv && !rc; i++) {
			rc = parse_cond(key, json_array_get(val, i), &k->conds[i], err);
			k->nconds++;
		}
		if (rc)
			break;
	}
	json_decref(root);
	if (rc) {
		tw_notify_policy_free(p);
		return rc;
	}
	*out = p;
	return TW_OK;
}

static int icase_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int cond_match(const struct cond *c, const struct tw_notify_attr *a)
{
	const char *s = a->is_number ? NULL : (a->str ? a->str : "");
	size_t ls, lc;

	switch (c->t) {
	case C_STR:
		return s && !strcmp(s, c->s);
	case C_NUM:
		return a->is_number && a->num == c->d;
	case C_PREFIX:
		return s && !strncmp(s, c->s, strlen(c->s));
	case C_SUFFIX:
		if (!s)
			return 0;
		ls = strlen(s);
		lc = strlen(c->s);
		return ls >= lc && !memcmp(s + ls - lc, c->s, lc);
	case C_ICASE:
		return s && icase_eq(s, c->s);
	case C_BUT_PREFIX:
		return s && strncmp(s, c->s, strlen(c->s)) != 0;
	case C_BUT: {
		int typed = 0;
		for (size_t i = 0; i < c->nvals; i++) {
			const struct bval *v = &c->vals[i];
			if (v->s && s) {
				typed = 1;
				if (!strcmp(v->s, s))
					return 0;
			} else if (!v->s && a->is_number) {
				typed = 1;
				if (v->d == a->num)
					return 0;
			}
		}
		return typed;
	}
	case C_NUMERIC:
		if (!a->is_number || isnan(a->num))
			return 0;
		if (c->lo_op == 3)
			return a->num == c->lo;
		if (c->lo_op == 1 && !(a->num > c->lo))
			return 0;
		if (c->lo_op == 2 && !(a->num >= c->lo))
			return 0;
		if (c->hi_op == 1 && !(a->num < c->hi))
			return 0;
		if (c->hi_op == 2 && !(a->num <= c->hi))
			return 0;
		return 1;
	case C_EXISTS:
		return c->exists;
	}
	return 0;
}

int tw_notify_policy_match(const struct tw_notify_policy *p, const struct tw_notify_attr *attrs, size_t nattrs)
{
	if (!p)
		return 1;
	for (size_t i = 0; i < p->nkeys; i++) {
		const struct pkey *k = &p->keys[i];
		const struct tw_notify_attr *a = NULL;
		int ok = 0;
		for (size_t j = 0; j < nattrs; j++)
			if (attrs[j].name && !strcmp(attrs[j].name, k->name)) {
				a = &attrs[j];
				break;
			}
		for (size_t j = 0; j < k->nconds && !ok; j++) {
			if (!a)
				ok = k->conds[j].t == C_EXISTS && !k->conds[j].exists;
			else
				ok = cond_match(&k->conds[j], a);
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* ---- retry delays ---------------------------------------------------------------------------------- */

void tw_notify_retry_default(enum tw_notify_proto proto, struct tw_notify_retry *out)
{
	memset(out, 0, sizeof *out);
	switch (proto) {
	case TW_NOTIFY_HTTP:
	case TW_NOTIFY_HTTPS:
		out->num_retries = 3;
		out->min_delay_ms = out->max_delay_ms = 20000;
		out->backoff = TW_NOTIFY_BACKOFF_LINEAR;
		out->jitter_pct = 10;
		out->max_age_ms = 3600000;
		return;
	case TW_NOTIFY_EMAIL:
	case TW_NOTIFY_EMAIL_JSON:
		out->num_retries = 13;
		out->num_no_delay = 1;
		out->min_delay_ms = 10000;
		out->max_delay_ms = 600000;
		out->backoff = TW_NOTIFY_BACKOFF_EXPONENTIAL;
		out->jitter_pct = 10;
		out->max_age_ms = 86400000;
		return;
	case TW_NOTIFY_FILE:
	case TW_NOTIFY_MAILDIR:
	case TW_NOTIFY_EXEC:
		break;
	}
	out->num_retries = 9;
	out->num_no_delay = 1;
	out->min_delay_ms = 1000;
	out->max_delay_ms = 60000;
	out->backoff = TW_NOTIFY_BACKOFF_EXPONENTIAL;
	out->jitter_pct = 10;
	out->max_age_ms = 3600000;
}

int64_t tw_notify_retry_delay(const struct tw_notify_retry *rp, unsigned retry)
{
	unsigned nb, j, extra;
	double lo = (double)rp->min_delay_ms, hi = (double)rp->max_delay_ms, f;

	if (retry == 0 || retry > rp->num_retries)
		return -1;
	if (retry <= rp->num_no_delay)
		return 0;
	retry -= rp->num_no_delay;
	if (retry <= rp->num_min_delay)
		return rp->min_delay_ms;
	retry -= rp->num_min_delay;
	extra = rp->num_no_delay + rp->num_min_delay + rp->num_max_delay;
	nb = rp->num_retries > extra ? rp->num_retries - extra : 0;
	if (retry > nb)
		return rp->max_delay_ms;
	/* Backoff step j of nb runs from min (j = 1) to max (j = nb). */
	j = retry;
	if (nb <= 1 || hi <= lo)
		return nb <= 1 ? rp->min_delay_ms : rp->max_delay_ms;
	f = (double)(j - 1) / (double)(nb - 1);
	switch (rp->backoff) {
	case TW_NOTIFY_BACKOFF_LINEAR:
		return (int64_t)(lo + (hi - lo) * f);
	case TW_NOTIFY_BACKOFF_ARITHMETIC:
		return (int64_t)(lo + (hi - lo) * f * f);
	case TW_NOTIFY_BACKOFF_GEOMETRIC:
		return lo > 0 ? (int64_t)(lo * pow(hi / lo, f)) : (int64_t)(hi * f);
	case TW_NOTIFY_BACKOFF_EXPONENTIAL:
		return (int64_t)(lo + (hi - lo) * (pow(2.0, (double)(j - 1)) - 1.0) / (pow(2.0, (double)(nb - 1)) - 1.0));
	}
	return rp->max_delay_ms;
}
