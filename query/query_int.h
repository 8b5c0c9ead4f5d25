/* SPDX-License-Identifier: Apache-2.0 */
/* query/query_int.h: private to the query/ sources: tokens, the syntax tree, field resolution and
 * value comparison shared by the parser (lex.c, parse.c), the evaluator (eval.c) and the
 * executor (exec.c). Nothing outside query/ includes it. */
#ifndef TW_QUERY_INT_H
#define TW_QUERY_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "query/query.h"

/* ---- tokens (lex.c) ------------------------------------------------------------------------ */
enum qt {
	QT_EOF = 0, QT_WORD, /* a field or keyword: segments, maybe backquoted */
	QT_STR, QT_NUM, QT_DUR, /* number directly followed by letters: 5m */
	QT_REGEX, QT_PIPE, QT_COMMA, QT_LP, QT_RP, QT_LB, QT_RB,
	QT_EQ, QT_NE, QT_LT, QT_LE, QT_GT, QT_GE, QT_MATCH, QT_STAR,
};

struct qtok {
	enum qt t;     /* token type */
	size_t off;    /* byte offset in the query text */
	size_t len;    /* bytes of the token text */
	int quoted;    /* QT_WORD: holds a backquoted segment (never a keyword) */
};

/* Splits text into toks (malloc'd, ending with QT_EOF). Lexical errors: TW_EPARSE with the column
 * (see tw_q_errat). */
enum tw_rc tw_q_lex(const char *text, size_t n, struct qtok **toks, size_t *ntoks, struct tw_err *err);
/* Sets err to TW_EPARSE "column C: <msg>" (or "line L, column C: ") for offset off of text. */
enum tw_rc tw_q_errat(struct tw_err *err, enum tw_rc rc, const char *text, size_t n, size_t off,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- syntax tree ----------------------------------------------------------------------------- */
enum qf_kind {
	QF_FIELD = 1, /* ev->f[f] */
	QF_TIME,      /* ev->time_ms */
	QF_KIND,      /* tw_kind_name(ev->kind) */
	QF_READONLY,  /* ev->read_only */
	QF_RESOURCE,  /* ev->resources (multi-valued) */
	QF_RAW,       /* ev->raw */
	QF_PATH,      /* JSON path into ev->raw */
};

struct qfield {
	enum qf_kind kind;  /* how it resolves */
	int f;              /* QF_FIELD: enum tw_field */
	struct tw_str name; /* as written; NUL-terminated in the query arena */
	struct tw_str col;  /* as a column name: name, or the bare key of a single backquoted key */
	struct tw_str *seg; /* QF_PATH: decoded segments */
	size_t nseg;        /* QF_PATH: number of segments */
};

enum qcmp { QC_EQ = 1, QC_NE, QC_LT, QC_LE, QC_GT, QC_GE };

struct qopnd {
	int is_field;        /* 1: fld, 0: lit */
	struct qfield fld;   /* the field */
	struct tw_qval lit;  /* the literal (strings in the query arena) */
};

enum qn { QN_AND = 1, QN_OR, QN_NOT, QN_CMP, QN_IN, QN_LIKE, QN_REGEX, QN_PRESENT };

struct qnode {
	enum qn kind;            /* node type */
	size_t off;              /* offset in the text (for messages) */
	struct qnode *a, *b;     /* AND/OR: both; NOT: a */
	enum qcmp op;            /* CMP */
	struct qopnd l, r;       /* CMP: both; IN/LIKE/REGEX/PRESENT: l is the field; LIKE: r.lit */
	struct tw_qval *vals;    /* IN: literals */
	size_t nvals;            /* IN: count */
	struct tw_str re_src;    /* REGEX: pattern as written between the slashes */
	int re_icase;            /* REGEX: /.../i */
	pcre2_code *re;          /* REGEX: compiled once */
	pcre2_match_data *md;    /* REGEX: reused by every match */
	pcre2_match_context *mctx; /* REGEX: the query's match limits (owned by the query) */
	struct qnode *next_re;   /* list of regex nodes (for freeing) */
};

enum qagg_fn { QA_COUNT = 1, QA_COUNT_DISTINCT, QA_MIN, QA_MAX, QA_SUM, QA_AVG, QA_EARLIEST, QA_LATEST };

struct qagg {
	enum qagg_fn fn;    /* the function */
	int star;           /* count(*) or count() */
	struct qfield fld;  /* argument unless star */
	struct tw_str name; /* column name ("as" or canonical), NUL-terminated */
	int named;          /* 1 when given with "as" */
};

struct qby {
	int is_bin;         /* bin(duration) of @timestamp */
	int64_t bin_ms;     /* bin width */
	struct qfield fld;  /* field unless is_bin */
	struct tw_str name; /* column name ("bin(5m)" or the field as written) */
};

struct qsortkey {
	struct qfield fld; /* sort by */
	int desc;          /* 1 for desc */
};

#define TW_QUERY_RE_MATCH_LIMIT 1000000 /* pcre2 backtracking steps per match: a hostile pattern
                                         * on a long value gives "no match", not minutes of CPU */
#define TW_QUERY_RE_DEPTH_LIMIT 10000

enum qcmd { QCMD_FILTER = 1, QCMD_FIELDS, QCMD_STATS, QCMD_SORT, QCMD_LIMIT, QCMD_DEDUP };

struct qcmd_s {
	enum qcmd kind;         /* command */
	size_t off;             /* offset of its keyword */
	struct qnode *expr;     /* FILTER */
	struct qfield *flds;    /* FIELDS, DEDUP */
	size_t nflds;           /* entries in flds */
	struct qagg *aggs;      /* STATS */
	size_t naggs;           /* entries in aggs */
	struct qby *by;         /* STATS */
	size_t nby;             /* entries in by */
	struct qsortkey *keys;  /* SORT */
	size_t nkeys;           /* entries in keys */
	uint64_t limit;         /* LIMIT */
};

/* Scratch memory for evaluation: reset per event or per row. */
struct qscratch {
	struct tw_arena a; /* decoded strings and number texts */
};

struct tw_query {
	struct tw_arena arena;   /* owns the tree, names and literals */
	struct qcmd_s *cmds;     /* the commands in order */
	size_t ncmds;            /* entries in cmds */
	size_t nlead;            /* leading commands that only filter (see tw_query_match) */
	struct qnode *regexes;   /* regex nodes, for freeing */
	pcre2_match_context *mctx; /* match and depth limits shared by the regexes */
	struct tw_qterm *terms;  /* index terms */
	size_t nterms;           /* entries in terms */
	struct qscratch *scratch; /* evaluation scratch (mutable behind a const query) */
};

/* ---- evaluation (eval.c) ---------------------------------------------------------------------- */
/* Where field values come from: an event, or a table row (columns looked up by field name). */
struct qctx {
	const struct tw_event *ev;   /* event context, or NULL */
	const struct tw_str *cols;   /* table context: column names */
	const struct tw_qval *vals;  /* table context: values */
	size_t ncols;                /* table context: columns */
	struct tw_arena *scratch;    /* for decoded strings */
};

/* Resolves fld to a single value (multi-valued fields: the first). Returns 0 or -1 on ENOMEM. */
int tw_q_value(const struct qctx *c, const struct qfield *fld, struct tw_qval *out);
/* Evaluates a filter expression: 1 true, 0 false. Allocation failures count as false. */
int tw_q_eval(const struct qnode *n, const struct qctx *c);
/* Total order for sorting: null < numbers < strings; numbers numerically, strings bytewise;
 * strings that are entirely numbers count as numbers. */
int tw_q_order(const struct tw_qval *a, const struct tw_qval *b);
/* 1 when s is entirely a JSON number; *num gets it. */
int tw_q_numeric(struct tw_str s, double *num);
/* Formats a double as the shortest text that reads back the same, into the arena. */
struct tw_str tw_q_fmtnum(struct tw_arena *a, double d);

#endif
