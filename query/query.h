/* SPDX-License-Identifier: Apache-2.0 */
/* query/query.h: the trailwatch query language (modelled on CloudWatch Logs Insights): parsing
 * with caret errors, filter evaluation on one event, a streaming executor over events, and the
 * index terms a store planner can answer from postings. Knows nothing of files or the store:
 * callers push events; the executor copies what it keeps.
 *
 * Grammar (EBNF; keywords are case-insensitive; whitespace and newlines separate tokens):
 *
 *   query    = command { "|" command } ;
 *   command  = "filter" expr
 *            | "fields" field { "," field }
 *            | "stats" agg [ "as" name ] { "," agg [ "as" name ] }
 *                      [ "by" group { "," group } ]          (at most one stats per query)
 *            | "sort" field [ "asc" | "desc" ] { "," field [ "asc" | "desc" ] }
 *            | "limit" integer                                (1 .. 10^12)
 *            | "dedup" field { "," field } ;
 *   agg      = "count" "(" [ "*" | field ] ")" | ( "count_distinct" | "min" | "max" | "sum"
 *            | "avg" | "earliest" | "latest" ) "(" field ")" ;
 *   group    = field | "bin" "(" duration ")" ;                (duration: 30s 5m 1h 1d 1w 500ms)
 *   expr     = and { "or" and } ;
 *   and      = unary { "and" unary } ;
 *   unary    = "not" unary | primary ;
 *   primary  = "(" expr ")" | "ispresent" "(" field ")"
 *            | operand cmp operand
 *            | field "in" "[" [ literal { "," literal } ] "]"
 *            | field "like" ( string | regex ) | field "=~" regex ;
 *   cmp      = "=" | "!=" | "<" | "<=" | ">" | ">=" ;
 *   operand  = field | literal ;                       (at least one side of cmp is a field)
 *   literal  = string | number | "true" | "false" | "null" ;
 *   string   = '"' chars '"' | "'" chars "'" ;         (escapes \" \' \\ \/ \n \t \r \b \f \uXXXX)
 *   regex    = "/" chars "/" [ "i" ] ;                  ("\/" for a slash; (?i) works too)
 *   field    = segment { "." segment } ;
 *   segment  = word | "`" any-but-backquote "`" ;       (word: [A-Za-z0-9_@$-]+, starts not with -)
 *
 * Field resolution (first match wins):
 *   "@timestamp", "time"       ev->time_ms, a number (ms since the epoch); a string literal compared
 *                              with it is parsed by tw_time_parse at parse time (EPARSE if invalid)
 *   "@message"                 the raw record text
 *   "kind"                     "cloudtrail" / "insight" / "cwlog"
 *   "readOnly"                 "true" / "false" (absent when the record has none)
 *   "resource", "resources"    ev->resources: multi-valued; a predicate holds if it holds for ANY
 *                              resource ("!=" is "no resource equals"); as a value (fields, stats,
 *                              sort) the first resource
 *   tw_field_lookup() names    the extracted fields of core/event.h: eventID eventName eventSource
 *                              awsRegion account principal identityType userName accessKeyId
 *                              sessionIssuer ssoUser sourceIPAddress userAgent errorCode
 *                              errorMessage eventType logGroup logStream message, and the aliases
 *                              id event source region user(=userName exactly) key ip error group
 *                              stream agent type issuer sso; plus "eventID"/"id"
 *   anything else              a JSON path into ev->raw: "userIdentity.sessionContext.sessionIssuer.arn",
 *                              "resources.0.ARN" (array index); absent when the path does not resolve
 *                              or the record is not JSON. Keys are compared as written in the record.
 *
 * After stats, every field name refers to a column of the stats table (by its name; a missing
 * column is null): "stats count(*) as n by user | filter n > 10 | sort n desc".
 *
 * Values and comparison: a value is null (absent, or JSON null), a number (JSON numbers, numeric
 * literals, @timestamp) or a string (JSON strings, extracted fields, true/false as "true"/"false",
 * objects and arrays as their JSON text). Two values compare numerically when one is a number and
 * the other is a number or a string that is entirely a JSON number ("42"); otherwise their texts
 * compare bytewise. A comparison with an absent field is false, except "F = null" (true when absent)
 * and "F != null" (true when present); so "not F = 'x'" is true for records without F.
 * like "s" is a case-sensitive substring test; regexes are pcre2 (UTF mode, invalid UTF-8 in
 * values tolerated), unanchored; a match that exceeds pcre2's match limit (1,000,000 steps)
 * counts as no match.
 *
 * Thread-safety: a parsed query holds scratch memory used by tw_query_match and its regex match
 * data; use one query per thread (parse it once per thread). Executors are independent. */
#ifndef TW_QUERY_H
#define TW_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"

#define TW_QUERY_MAX_TEXT (64u * 1024u) /* bytes of query text */
#define TW_QUERY_MAX_DEPTH 64           /* nesting of parentheses and not */
#define TW_QUERY_MAX_IN 10000           /* values in one in-list */

struct tw_query;

/* Parses text[0..n) (need not be NUL-terminated). On success *out owns the query (free with
 * tw_query_free). Errors: TW_EPARSE with "column C: expected ..." (or "line L, column C: ..." for a
 * multi-line query; columns and lines 1-based, columns count bytes), including pcre2's message for
 * a bad regex; TW_ELIMIT past the limits above; TW_ENOMEM. */
enum tw_rc tw_query_parse(const char *text, size_t n, struct tw_query **out, struct tw_err *err);
void tw_query_free(struct tw_query *q); /* NULL is fine */

/* Renders a parse error under its query line: the line holding the error, then a line with a caret
 * under the column and the message without its position prefix, each ending in '\n'. Appends to
 * out. When err carries no position it appends the message alone. */
enum tw_rc tw_query_caret(const char *text, size_t n, const struct tw_err *perr, struct tw_buf *out,
			  struct tw_err *err);

/* Appends the canonical form of the parsed query (one command per line; filters as
 * s-expressions with resolved fields), as the golden tests print it. */
enum tw_rc tw_query_print(const struct tw_query *q, struct tw_buf *out, struct tw_err *err);

/* 1 if ev passes every filter command of the leading part of the query (the commands before the
 * first stats, limit or dedup: the ones that only remove events), else 0. The store planner uses it
 * for residual predicates. Not thread-safe on the same q (scratch memory). */
int tw_query_match(const struct tw_query *q, const struct tw_event *ev);

/* ---- index terms for the planner ------------------------------------------------------------ */
enum tw_qterm_op {
	TW_QTERM_EQ = 1,     /* field equals values[0] */
	TW_QTERM_IN = 2,     /* field equals one of values[0..nvalues) */
	TW_QTERM_PREFIX = 3, /* field starts with values[0] (from a regex /^literal/) */
	TW_QTERM_TIME = 4,   /* @timestamp within [tmin, tmax] (inclusive, ms) */
};

/* A predicate every event the query can return satisfies (a necessary condition: the planner still
 * evaluates tw_query_match on what it reads). Only AND-ed top-level predicates of the leading
 * filters, on indexed fields, with string literals: never OR-ed or negated ones. */
struct tw_qterm {
	const char *field;          /* canonical name: tw_field_name() ("eventName", "principal"...),
	                               "resource", "readOnly", "kind", or "@timestamp" for TIME; map it
	                               with index/segment.h's tw_ix_lookup */
	enum tw_qterm_op op;        /* how values apply */
	const struct tw_str *values; /* EQ: one, IN: several (0: nothing matches), PREFIX: one;
	                               NULL for TIME */
	size_t nvalues;             /* entries in values */
	int64_t tmin, tmax;         /* TIME only: inclusive bounds (INT64_MIN / INT64_MAX when open) */
};

/* The terms, borrowed from q (valid until tw_query_free). *n may be 0. Time comparisons are merged
 * into at most one TIME term. */
const struct tw_qterm *tw_query_index_terms(const struct tw_query *q, size_t *n);

/* ---- values and the executor ---------------------------------------------------------------- */
enum tw_qval_type {
	TW_QV_NULL = 0, /* absent or JSON null */
	TW_QV_NUM = 1,  /* number: num, with its text in s */
	TW_QV_STR = 2,  /* string: s (decoded UTF-8) */
};

/* One value. s is borrowed (see the call that produced it). */
struct tw_qval {
	enum tw_qval_type type; /* which of the below apply */
	double num;             /* TW_QV_NUM: the number */
	struct tw_str s;        /* NUM: its text ("42", "1.5"); STR: the string; NULL: empty */
};

struct tw_qexec;

/* Caps on what an executor keeps (0 = the default). */
struct tw_qexec_opts {
	size_t max_groups; /* stats groups; default 1,000,000 */
	size_t max_rows;   /* events kept for output or sorting, and dedup/count_distinct set entries;
	                      default 1,000,000 */
	size_t max_bytes;  /* bytes of kept events; default 512 MiB */
};

/* Starts executing q (borrowed: it must outlive the executor). opts may be NULL. */
enum tw_rc tw_qexec_new(const struct tw_query *q, const struct tw_qexec_opts *opts, struct tw_qexec **out,
			struct tw_err *err);
void tw_qexec_free(struct tw_qexec *x); /* NULL is fine */

/* Feeds one event (borrowed for the call; copied when kept), in any order. *done (may be NULL) is set
 * to 1 once no further event can change the result (a limit without sort was reached); pushing more
 * is then harmless and ignored. TW_ELIMIT when a cap of tw_qexec_opts is exceeded. */
enum tw_rc tw_qexec_push(struct tw_qexec *x, const struct tw_event *ev, int *done, struct tw_err *err);
/* Ends the input: runs sorts, stats output and the commands after them. Call once. */
enum tw_rc tw_qexec_finish(struct tw_qexec *x, struct tw_err *err);

/* After finish: the result rows. Rows are events (a query without stats) or table rows (stats).
 * Columns: for stats, the "by" groups then the aggregates (named by "as", else as written:
 * "count(*)", "bin(5m)"), or the last "fields" command after the stats; for event rows, the last
 * "fields" command's fields, or none (ncols 0: the caller formats the events). */
size_t tw_qexec_nrows(const struct tw_qexec *x);
size_t tw_qexec_ncols(const struct tw_qexec *x);
const char *tw_qexec_col_name(const struct tw_qexec *x, size_t col); /* borrowed, lives with x */
int tw_qexec_is_stats(const struct tw_qexec *x); /* 1 when rows are table rows */
/* Row i's column values: *vals gets ncols values, borrowed until the next tw_qexec_row call. */
enum tw_rc tw_qexec_row(struct tw_qexec *x, size_t i, const struct tw_qval **vals, struct tw_err *err);
/* Row i's event (a copy owned by x: raw, fields and resources), or NULL for table rows. */
const struct tw_event *tw_qexec_row_event(const struct tw_qexec *x, size_t i);


/* ==== planner: running a query over stores (query/plan.c) ====================================
 * Opens a snapshot of each store (several stores are shards of one data set), prunes segments and
 * blocks by time, answers the index terms (tw_query_index_terms) from postings, fetches the
 * candidates, checks tw_query_match and the time range on each, and pushes the matches into an
 * executor. Order: with ordered = 1 the matches reach the executor in ascending time (ties in store,
 * segment, record order), so event output is chronological and "limit N" keeps the N earliest;
 * with ordered = 0 they come in storage order (fine for stats, which do not depend on it). */

/* How to run. */
struct tw_qrun_opts {
	int ordered;          /* 1: push in ascending time (event output); 0: storage order (stats) */
	int no_index;         /* 1: ignore postings and scan every record (tests, comparisons) */
	size_t max_hold_bytes; /* ordered mode: bytes of matches held for sorting; 0 = 1 GiB */
	int no_count_postings; /* 1: never answer count(*) stats from postings (read the records) */
	/* NULL: a damaged or unreadable segment fails the run. Set: it is reported here (problem
	 * names the file and what is wrong, borrowed for the call) and left out: a segment that
	 * cannot be opened, or whose postings are damaged, whole; a damaged block, the rest of
	 * that block. The answer then comes from the rest (tw_qrun_stats.damaged counts them). */
	void (*on_damage)(void *ctx, const char *problem);
	void *damage_ctx;      /* for on_damage */
};

/* What the run did (for --explain). */
struct tw_qrun_stats {
	uint64_t stores;          /* snapshots opened */
	uint64_t segments;        /* segments in the snapshots */
	uint64_t segments_pruned; /* skipped by their time range (or an empty index answer) */
	uint64_t blocks;          /* blocks in the unpruned segments */
	uint64_t blocks_pruned;   /* candidate blocks skipped by their time range */
	uint64_t blocks_read;     /* blocks at least one record was fetched from */
	uint64_t records;         /* records in the snapshots (segments + WAL tails) */
	uint64_t candidates;      /* record ids left by the index terms (all records of a scanned segment) */
	uint64_t fetched;         /* records decoded from segments */
	uint64_t tail_scanned;    /* WAL tail events examined */
	uint64_t matched;         /* events pushed to the executor */
	uint64_t terms_used;      /* index terms answered from postings */
	int64_t tmin, tmax;       /* the effective time range (INT64_MIN / INT64_MAX when open) */
	char terms[512];          /* the index terms used, as "principal=..., eventName in [3]" */
	uint64_t segments_counted; /* segments whose count(*) groups were answered from postings */
	uint64_t records_counted;  /* records of those segments counted into groups without being read */
	uint64_t damaged;          /* damage reported to on_damage (segments or blocks left out) */
};

/* 1 when q's result depends on the order events arrive in (a limit or dedup before any stats or
 * sort, or event output without sort): run it with ordered = 1. 0 when a stats or sort comes first. */
int tw_query_needs_order(const struct tw_query *q);

/* Runs q over the stores stores[0..nstores) restricted to from_ms <= @timestamp <= until_ms
 * (INT64_MIN / INT64_MAX for open ends) and pushes the matching events into x (created by the
 * caller with tw_qexec_new on the same q; the caller then calls tw_qexec_finish). Stops early once
 * the executor reports done. opts and st may be NULL. q's scratch memory is used (not thread-safe on
 * the same q). Errors: those of tw_snap_open (naming the store), TW_ECORRUPT from segments,
 * TW_ELIMIT from the executor's caps or max_hold_bytes, TW_ENOMEM. */
enum tw_rc tw_query_run(const char *const *stores, size_t nstores, const struct tw_query *q, int64_t from_ms,
			int64_t until_ms, const struct tw_qrun_opts *opts, struct tw_qexec *x,
			struct tw_qrun_stats *st, struct tw_err *err);

/* Counting from postings: when the stats is only count(*) (any number of them) grouped by zero or
 * more single-valued indexed fields (not resource, eventID or bin()), every command before it is a
 * filter (or fields) made only of AND-ed index terms (equality / in with string literals on indexed
 * fields, time comparisons), tw_query_run answers each segment that lies wholly inside the time
 * range from its postings, without reading a block: it pushes the groups' counts with
 * tw_qexec_push_count. Other segments and the WAL tail go the normal way. */

/* 1 when q is such a count query (see above). */
int tw_query_counts_from_postings(const struct tw_query *q);

/* Adds count events to the stats group whose "by" values are group_vals[0..nby) (borrowed; copied
 * when the group is new; NULL / TW_QV_NULL for an absent field), as if count events with those
 * values had been pushed. Only for queries whose first sort/stats command is a stats of count(*)
 * aggregates without bin(), preceded only by filters and fields that the caller has already
 * applied: TW_EINVAL otherwise. TW_ELIMIT past max_groups. A count of 0 does nothing. */
enum tw_rc tw_qexec_push_count(struct tw_qexec *x, const struct tw_qval *group_vals, uint64_t count,
			       struct tw_err *err);

#endif
