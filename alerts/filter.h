/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/filter.h: CloudWatch Logs filter patterns (terms, %regex%, JSON { ... } and space-delimited
 * [ ... ] patterns), compiled into a set that evaluates every pattern and every wanted value path
 * on one event with a single pass of the JSON pull reader; and a linter for patterns.
 *
 * What a pattern is applied to (the "log message"): for a CloudTrail or Insights event, its raw
 * JSON record (ev->raw); for a CloudWatch Logs event, its message (ev->f[TW_F_MESSAGE]). JSON
 * patterns parse that text as JSON; a text that is not a JSON object never matches one.
 *
 * Semantics (CloudWatch Logs documentation, "Filter pattern syntax"; where it is silent we chose,
 * and say so here):
 *  - Everything is case-sensitive. Terms match anywhere in the message (substring of the raw
 *    bytes; in a JSON record the bytes as written, escapes included). "" and " " match all.
 *    `A B` needs both, `?A ?B` either, `A -B` A and not B; ?terms cannot be mixed with others.
 *  - JSON comparisons are false when the selected field is absent (NOT EXISTS tests absence).
 *    `= "v"`/`!= "v"` compare strings (the value may hold `*` wildcards, matched against the whole
 *    field) and also number fields by their literal text; `!=` is "exists and differs". A number
 *    value (`= 5`, `> 1e3`) compares numerically and needs a JSON number. IS TRUE / IS FALSE /
 *    IS NULL test the JSON literal. `%re%` values search the string field with the regex.
 *  - Space-delimited: the message is split at runs of spaces; "..." and [...] are one field (the
 *    quotes/brackets are stripped); `...` spans zero or more fields; without `...` the number of
 *    fields must match.
 *  - Regexes may use only the characters the documentation lists (letters, digits, _ # = @ / ; ,
 *    - : and the operators ^ $ ? [ ] { } | \ * + .); no parentheses; at most 2 in a JSON or
 *    space-delimited pattern. They run through pcre2 as searches (unanchored unless ^ or $).
 *
 * Ownership: patterns are copied at compile/add time; results borrow the event's bytes. A set and
 * its results are used by one thread at a time. */
#ifndef TW_ALERTS_FILTER_H
#define TW_ALERTS_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"

#define TW_FILTER_MAX_PATTERN 1024 /* bytes of a pattern (CloudWatch's own limit) */
#define TW_FILTER_MAX_DEPTH 16     /* nesting of parentheses in a JSON pattern */
#define TW_FILTER_MAX_ITEMS 128    /* terms, clauses or delimited fields in one pattern */
#define TW_FILTER_MAX_REGEX 2      /* %regex% per JSON or delimited pattern (CloudWatch's quota) */

/* ---- one pattern -------------------------------------------------------------------------------- */

struct tw_filter;

/* Compiles pat[0..n). On a syntax error returns TW_EPARSE (TW_ELIMIT past the caps above) with
 * err->msg "column N: reason" (N 1-based, in bytes). */
enum tw_rc tw_filter_compile(const char *pat, size_t n, struct tw_filter **out, struct tw_err *err);
/* The 1-based column named by an error of tw_filter_compile / tw_filter_set_add / tw_filter_lint,
 * or 0 when the message names none. */
size_t tw_filter_error_column(const struct tw_err *err);
/* Appends the normalized form of f (the golden tests' notation: terms quoted, JSON fully
 * parenthesized, values typed) to b. */
enum tw_rc tw_filter_format(const struct tw_filter *f, struct tw_buf *b, struct tw_err *err);
void tw_filter_free(struct tw_filter *f);

/* ---- a set of patterns and value paths, evaluated together ------------------------------------- */

struct tw_filter_set;

/* Type of a value found at a path. */
enum tw_filter_vtype {
	TW_FILTER_ABSENT = 0, /* the path selects nothing (or the message is not JSON) */
	TW_FILTER_NULL,
	TW_FILTER_BOOL,
	TW_FILTER_NUMBER,
	TW_FILTER_STRING,
	TW_FILTER_OBJECT,
	TW_FILTER_ARRAY,
};

/* A value at a path, borrowed from the event (valid while the event lives). */
struct tw_filter_value {
	enum tw_filter_vtype type; /* see above */
	struct tw_str s;           /* string: raw bytes between the quotes; others: the JSON text */
	int escaped;               /* string holds backslash escapes (decode with tw_json_unescape) */
	int has_num;               /* 1 when num is meaningful (a JSON number) */
	double num;                /* the number's value */
	int b;                     /* TW_FILTER_BOOL: 1 true, 0 false */
};

/* Per-event output of tw_filter_set_eval. Size it with tw_filter_result_init after the last add. */
struct tw_filter_result {
	uint8_t *matched;               /* [npatterns]: 1 when pattern i matched */
	size_t npatterns;               /* entries in matched */
	struct tw_filter_value *values; /* [npaths]: indexed by what tw_filter_set_add_path returned */
	size_t npaths;                  /* entries in values */
};

enum tw_rc tw_filter_set_new(struct tw_filter_set **out, struct tw_err *err);
void tw_filter_set_free(struct tw_filter_set *set);
/* Compiles and adds a pattern; *idx = its index in results (0, 1, ...). Errors as tw_filter_compile. */
enum tw_rc tw_filter_set_add(struct tw_filter_set *set, const char *pat, size_t n, size_t *idx, struct tw_err *err);
/* Adds a value path ("$.a.b", "$.a[0].b": metric values and dimensions); *idx = its index in
 * r->values. The same path twice gives the same index. */
enum tw_rc tw_filter_set_add_path(struct tw_filter_set *set, const char *path, size_t n, size_t *idx,
				  struct tw_err *err);
size_t tw_filter_set_npatterns(const struct tw_filter_set *set);
/* The compiled pattern i (borrowed, lives as long as the set). */
const struct tw_filter *tw_filter_set_get(const struct tw_filter_set *set, size_t i);
/* Allocates r for the set as it is now. */
enum tw_rc tw_filter_result_init(const struct tw_filter_set *set, struct tw_filter_result *r, struct tw_err *err);
void tw_filter_result_free(struct tw_filter_result *r);
/* Evaluates every pattern and path on ev (borrowed). TW_EINVAL when r was sized for fewer patterns
 * or paths than the set has; TW_ENOMEM. A message that is not JSON is not an error. */
enum tw_rc tw_filter_set_eval(struct tw_filter_set *set, const struct tw_event *ev, struct tw_filter_result *r,
			      struct tw_err *err);
/* Convenience for tests and tools: evaluates one pattern of the set on a bare message text (as if
 * it were a CloudWatch Logs event). Returns 1 matched, 0 not, -1 on error (err set). */
int tw_filter_set_match_text(struct tw_filter_set *set, size_t idx, const char *msg, size_t n, struct tw_err *err);

/* ---- linter ------------------------------------------------------------------------------------- */

/* One finding of the linter. */
struct tw_filter_warning {
	const char *code; /* stable short name: "neq-in-or", "mixed-and-or", "type-mismatch",
			     "never-matches", "match-all" */
	size_t column;    /* 1-based column the finding points at */
	char msg[200];    /* one line, no trailing newline */
};

/* Lints pat: fills w[0..max) and *nw with the findings (*nw counts all, even past max).
 * A syntax error returns TW_EPARSE as tw_filter_compile. */
enum tw_rc tw_filter_lint(const char *pat, size_t n, struct tw_filter_warning *w, size_t max, size_t *nw,
			  struct tw_err *err);

#endif
