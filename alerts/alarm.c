/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/alarm.c: the alarm state machine (metric and composite alarms) with CloudWatch's
 * semantics, its persisted state and its append-only history. It never reads a clock, never
 * sleeps and never publishes: the caller hands it datapoints and `now`, and takes transitions.
 *
 *                     evaluation / SetAlarmState
 *          ┌──────────────────────────────────────────────┐
 *          ▼                                              │
 *   INSUFFICIENT_DATA ◀──────▶ OK ◀──────▶ ALARM ◀────────┘
 *          ▲                                 │
 *          └─────────────────────────────────┘
 *
 * Invariants:
 *  1. A transition (history StateUpdate, state file, queued transition with actions) exists only
 *     when the state changes. Re-evaluating to the same state changes nothing on disk.
 *  2. The state file is replaced before the transition is queued: a crash after the write and
 *     before the publish loses at most that one notification; a restart never re-fires a standing
 *     state (nothing is queued on open or on define).
 *  3. Missing data, following the table of CloudWatch's "How alarm state is evaluated when data is
 *     missing". The caller passes the evaluation range oldest first: the last N periods, optionally
 *     preceded by older periods (CloudWatch looks back, e.g. 5 periods for N = 3, when recent
 *     datapoints are missing; the caller decides how far by how many it passes; with exactly N
 *     there is no look-back). We take the most recent present datapoints of the range, at most N
 *     of them (P, of which B breach), and F = N - P periods must be "filled":
 *       F == 0         ALARM when B >= M, else OK (every treatment).
 *       breaching      ALARM when B + F >= M, else OK.
 *       notBreaching   ALARM when B >= M, else OK.
 *       missing        P == 0: INSUFFICIENT_DATA; else ALARM when B >= M or every present
 *                      datapoint breaches (B == P), else OK.
 *       ignore         P == 0: keep the state; B >= M: ALARM; B == P (ALARM only from partial
 *                      data): keep the state; else OK.
 *     This reproduces every row of both of the documentation's tables (tests/golden/alarm_missing.txt).
 *  4. SetAlarmState changes the state until the next evaluation, which decides afresh.
 *  5. Composite alarms are re-evaluated after each change of a child, depth first; rules that
 *     would close a cycle are refused at definition, so this terminates.
 *  6. A definition that differs from the persisted one (by a hash of its canonical text) keeps its
 *     state and appends a ConfigurationUpdate.
 *
 * Files in dir: state/<name>.json (one per alarm, atomically replaced), history.jsonl (appended). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts/alarm.h"
#include "core/json.h"
#include "core/time.h"

#define NAME_MAX_LEN 255
#define RULE_MAX_LEN 10240
#define RULE_MAX_DEPTH 100
#define REASON_MAX (64u << 10)

/* ---- names ------------------------------------------------------------------------------------ */

static const char *const state_names[] = { "OK", "ALARM", "INSUFFICIENT_DATA" };
static const char *const cmp_names[] = {
	"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold",
	"LessThanLowerOrGreaterThanUpperThreshold", "GreaterThanUpperThreshold", "LessThanLowerThreshold",
};
static const char *const missing_names[] = { "missing", "notBreaching", "breaching", "ignore" };

static int lookup_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

const char *tw_alarm_state_str(enum tw_alarm_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "?";
}
int tw_alarm_state_parse(const char *s)
{
	return lookup_name(state_names, 3, s);
}
const char *tw_alarm_cmp_str(enum tw_alarm_cmp c)
{
	return (unsigned)c < 7 ? cmp_names[c] : "?";
}
int tw_alarm_cmp_parse(const char *s)
{
	return lookup_name(cmp_names, 7, s);
}
const char *tw_alarm_missing_str(enum tw_alarm_missing m)
{
	return (unsigned)m < 4 ? missing_names[m] : "?";
}
int tw_alarm_missing_parse(const char *s)
{
	return lookup_name(missing_names, 4, s);
}

int tw_alarm_statistic_valid(const char *s)
{
	static const char *const stats[] = { "Sum", "Average", "Minimum", "Maximum", "SampleCount" };
	char *end;
	double p;

	if (!s)
		return 0;
	if (lookup_name(stats, 5, s) >= 0)
		return 1;
	if (s[0] != 'p' || !isdigit((unsigned char)s[1]))
		return 0;
	p = strtod(s + 1, &end);
	return *end == '\0' && p >= 0 && p <= 100;
}

static int is_band(enum tw_alarm_cmp c)
{
	return c == TW_ALARM_BAND_OUTSIDE || c == TW_ALARM_BAND_GT_UPPER || c == TW_ALARM_BAND_LT_LOWER;
}

/* ---- formatting -------------------------------------------------------------------------------- */

void tw_alarm_fmt_double(double v, char *out, size_t outsz)
{
	int prec;

	if (!isfinite(v)) {
		snprintf(out, outsz, "%s", isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(out, outsz, "%.*g", prec, v);
		/* an exponent only for very large or small magnitudes, as Java's Double.toString */
		if (strchr(out, 'e') && fabs(v) >= 1e-3 && fabs(v) < 1e7)
			continue;
		if (strtod(out, NULL) == v)
			break;
	}
	if (!strpbrk(out, ".eEn")) {
		size_t l = strlen(out);
		if (l + 3 <= outsz)
			memcpy(out + l, ".0", 3);
	}
}

static void civil(int64_t ms, int64_t *y, unsigned *mo, unsigned *d, unsigned *h, unsigned *mi, unsigned *s,
		  unsigned *frac)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;

	*frac = (unsigned)(ms - secs * 1000);
	tw_civil_from_days(days, y, mo, d);
	*h = (unsigned)(rem / 3600);
	*mi = (unsigned)(rem / 60 % 60);
	*s = (unsigned)(rem % 60);
}

void tw_alarm_fmt_cwtime(int64_t ms, char *out)
{
	int64_t y;
	unsigned mo, d, h, mi, s, f;

	civil(ms, &y, &mo, &d, &h, &mi, &s, &f);
	snprintf(out, 32, "%04lld-%02u-%02uT%02u:%02u:%02u.%03u+0000", (long long)y, mo, d, h, mi, s, f);
}

/* "21/11/26 10:05:00" as in CloudWatch's reasons: dd/mm/yy. */
static void fmt_reason_time(int64_t ms, char *out)
{
	int64_t y;
	unsigned mo, d, h, mi, s, f;

	civil(ms, &y, &mo, &d, &h, &mi, &s, &f);
	snprintf(out, 32, "%02u/%02u/%02u %02u:%02u:%02u", d, mo, (unsigned)(((y % 100) + 100) % 100), h, mi, s);
}

/* ---- the decision ------------------------------------------------------------------------------ */

int tw_alarm_breaches(const struct tw_alarm_def *def, const struct tw_alarm_point *pt)
{
	double v = pt->value, t = def->threshold;

	switch (def->cmp) {
	case TW_ALARM_GE: return v >= t;
	case TW_ALARM_GT: return v > t;
	case TW_ALARM_LT: return v < t;
	case TW_ALARM_LE: return v <= t;
	case TW_ALARM_BAND_OUTSIDE: return v < pt->lower || v > pt->upper;
	case TW_ALARM_BAND_GT_UPPER: return v > pt->upper;
	case TW_ALARM_BAND_LT_LOWER: return v < pt->lower;
	}
	return 0;
}

static unsigned def_m(const struct tw_alarm_def *def)
{
	return def->to_alarm ? def->to_alarm : def->eval_periods;
}

enum tw_alarm_state tw_alarm_decide(const struct tw_alarm_def *def, const struct tw_alarm_point *pts, size_t n,
				    enum tw_alarm_state current, unsigned *used_breaching, unsigned *used_present,
				    unsigned *filled)
{
	unsigned N = def->eval_periods, M = def_m(def), P = 0, B = 0, F;
	enum tw_alarm_state st;

	for (size_t i = n; i-- > 0 && P < N;) {
		if (pts[i].missing)
			continue;
		P++;
		B += (unsigned)tw_alarm_breaches(def, &pts[i]);
	}
	F = N - P;
	if (used_breaching)
		*used_breaching = B;
	if (used_present)
		*used_present = P;
	if (filled)
		*filled = F;
	if (F == 0)
		return B >= M ? TW_ALARM_ALARM : TW_ALARM_OK;
	switch (def->missing) {
	case TW_ALARM_MISSING_BREACHING:
		st = B + F >= M ? TW_ALARM_ALARM : TW_ALARM_OK;
		break;
	case TW_ALARM_MISSING_NOT_BREACHING:
		st = B >= M ? TW_ALARM_ALARM : TW_ALARM_OK;
		break;
	case TW_ALARM_MISSING_IGNORE:
		if (P == 0)
			st = current;
		else if (B >= M)
			st = TW_ALARM_ALARM;
		else if (B == P)
			st = current;
		else
			st = TW_ALARM_OK;
		break;
	case TW_ALARM_MISSING_MISSING:
	default:
		if (P == 0)
			st = TW_ALARM_INSUFFICIENT;
		else
			st = (B >= M || B == P) ? TW_ALARM_ALARM : TW_ALARM_OK;
		break;
	}
	return st;
}

/* ---- reasons ----------------------------------------------------------------------------------- */

static const char *cmp_phrase(enum tw_alarm_cmp c)
{
	switch (c) {
	case TW_ALARM_GE: return "greater than or equal to the threshold";
	case TW_ALARM_GT: return "greater than the threshold";
	case TW_ALARM_LT: return "less than the threshold";
	case TW_ALARM_LE: return "less than or equal to the threshold";
	case TW_ALARM_BAND_OUTSIDE: return "less than the lower thresholds or greater than the upper thresholds";
	case TW_ALARM_BAND_GT_UPPER: return "greater than the upper thresholds";
	case TW_ALARM_BAND_LT_LOWER: return "less than the lower thresholds";
	}
	return "?";
}

static enum tw_rc put_point(struct tw_buf *b, const struct tw_alarm_def *def, const struct tw_alarm_point *pt,
			    int first, struct tw_err *err)
{
	char v[40], t[32], lo[40], hi[40];

	tw_alarm_fmt_double(pt->value, v, sizeof v);
	fmt_reason_time(pt->t_ms, t);
	if (!is_band(def->cmp))
		return tw_buf_printf(b, err, "%s%s (%s)", first ? "" : ", ", v, t);
	tw_alarm_fmt_double(pt->lower, lo, sizeof lo);
	tw_alarm_fmt_double(pt->upper, hi, sizeof hi);
	return tw_buf_printf(b, err, "%s%s (%s) [%s, %s]", first ? "" : ", ", v, t, lo, hi);
}

/* The StateReason sentence for an evaluation that moved old -> st. */
static enum tw_rc build_reason(struct tw_buf *b, const struct tw_alarm_def *def, const struct tw_alarm_point *pts,
			       size_t n, enum tw_alarm_state old, enum tw_alarm_state st, unsigned B, unsigned P,
			       unsigned F, struct tw_err *err)
{
	unsigned N = def->eval_periods, M = def_m(def);
	int want = st == TW_ALARM_ALARM; /* list the breaching datapoints, else the non-breaching */
	const char *treated = def->missing == TW_ALARM_MISSING_BREACHING       ? "Breaching"
			      : def->missing == TW_ALARM_MISSING_NOT_BREACHING ? "NonBreaching"
									       : NULL;
	unsigned count, minimum, listed = 0, taken = 0;
	char thr[40];
	enum tw_rc rc;

	if (st == TW_ALARM_INSUFFICIENT)
		return tw_buf_printf(b, err, "Insufficient Data: %u datapoint%s unknown.", F,
				     F == 1 ? " was" : "s were");
	if (P == 0 && treated)
		return tw_buf_printf(b, err,
				     "Threshold Crossed: no datapoints were received for %u period%s and %u missing "
				     "datapoint%s treated as [%s].",
				     N, N == 1 ? "" : "s", F, F == 1 ? " was" : "s were", treated);
	/* count: how many of the N evaluated datapoints are on the side that decided. */
	if (want) {
		count = B + (def->missing == TW_ALARM_MISSING_BREACHING ? F : 0);
		minimum = M;
	} else {
		count = (P - B) + (def->missing == TW_ALARM_MISSING_NOT_BREACHING ? F : 0);
		minimum = N - M + 1;
	}
	/* Under `missing` with partial data the evaluated set is the P present datapoints. */
	rc = tw_buf_printf(b, err, "%s Crossed: %u out of the last %u datapoints [",
			   is_band(def->cmp) ? "Thresholds" : "Threshold", count, !treated && F > 0 ? P : N);
	if (rc)
		return rc;
	for (size_t i = n; i-- > 0 && taken < P;) {
		int br;
		if (pts[i].missing)
			continue;
		taken++;
		br = tw_alarm_breaches(def, &pts[i]);
		if (br != want)
			continue;
		if ((rc = put_point(b, def, &pts[i], listed == 0, err)))
			return rc;
		listed++;
	}
	if ((rc = tw_buf_printf(b, err, "] %s %s%s", count == 1 ? "was" : "were", want ? "" : "not ", cmp_phrase(def->cmp))))
		return rc;
	if (!is_band(def->cmp)) {
		tw_alarm_fmt_double(def->threshold, thr, sizeof thr);
		if ((rc = tw_buf_printf(b, err, " (%s)", thr)))
			return rc;
	}
	if ((rc = tw_buf_printf(b, err, " (minimum %u datapoint%s for %s -> %s transition).", minimum,
				minimum == 1 ? "" : "s", tw_alarm_state_str(old), tw_alarm_state_str(st))))
		return rc;
	if (treated && F > 0)
		rc = tw_buf_printf(b, err, " %u missing datapoint%s treated as [%s].", F, F == 1 ? " was" : "s were",
				   treated);
	return rc;
}

static enum tw_rc put_json_double(struct tw_buf *b, double v, struct tw_err *err)
{
	char s[40];

	if (!isfinite(v))
		return tw_buf_printf(b, err, "null");
	tw_alarm_fmt_double(v, s, sizeof s);
	return tw_buf_printf(b, err, "%s", s);
}

enum recent { RECENT_VALUE, RECENT_LOWER, RECENT_UPPER };

/* Appends head, then what `what` picks of each present datapoint of pts[first..n) (its value, or
 * the band's lower or upper edge), comma-separated, and ']': the reason data's recentDatapoints and
 * recentLower/UpperThresholds. */
static enum tw_rc put_recent(struct tw_buf *b, const char *head, const struct tw_alarm_point *pts, size_t first,
			     size_t n, enum recent what, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_printf(b, err, "%s", head);
	int any = 0;

	for (size_t i = first; !rc && i < n; i++) {
		if (pts[i].missing)
			continue;
		if (any++)
			rc = tw_buf_putc(b, ',', err);
		if (!rc)
			rc = put_json_double(b, what == RECENT_VALUE ? pts[i].value
					      : what == RECENT_LOWER ? pts[i].lower : pts[i].upper, err);
	}
	if (!rc)
		rc = tw_buf_putc(b, ']', err);
	return rc;
}

/* StateReasonData as CloudWatch writes it for a threshold alarm. */
static enum tw_rc build_reason_data(struct tw_buf *b, const struct tw_alarm_def *def,
				    const struct tw_alarm_point *pts, size_t n, unsigned P, int64_t now_ms,
				    struct tw_err *err)
{
	char t[32];
	size_t first = n >= def->eval_periods ? n - def->eval_periods : 0, i;
	unsigned taken = 0;
	int band = is_band(def->cmp);
	enum tw_rc rc = TW_OK;

	/* The evaluated span reaches back to the oldest present datapoint used. */
	for (i = n; i-- > 0 && taken < P;)
		if (!pts[i].missing && ++taken == P && i < first)
			first = i;
	tw_alarm_fmt_cwtime(now_ms, t);
	rc = tw_buf_printf(b, err, "{\"version\":\"1.0\",\"queryDate\":\"%s\"", t);
	if (!rc && n) {
		tw_alarm_fmt_cwtime(pts[first].t_ms, t);
		rc = tw_buf_printf(b, err, ",\"startDate\":\"%s\"", t);
	}
	if (!rc)
		rc = tw_buf_printf(b, err, ",\"statistic\":");
	if (!rc)
		rc = tw_json_write_str(b, def->statistic, strlen(def->statistic), err);
	if (!rc)
		rc = tw_buf_printf(b, err, ",\"period\":%u", def->period_s);
	if (!rc)
		rc = put_recent(b, ",\"recentDatapoints\":[", pts, first, n, RECENT_VALUE, err);
	if (band) {
		if (!rc)
			rc = put_recent(b, ",\"recentLowerThresholds\":[", pts, first, n, RECENT_LOWER, err);
		if (!rc)
			rc = put_recent(b, ",\"recentUpperThresholds\":[", pts, first, n, RECENT_UPPER, err);
	} else if (!rc) {
		rc = tw_buf_printf(b, err, ",\"threshold\":");
		if (!rc)
			rc = put_json_double(b, def->threshold, err);
	}
	if (!rc)
		rc = tw_buf_printf(b, err, ",\"evaluatedDatapoints\":[");
	for (i = n; !rc && i-- > first;) {
		tw_alarm_fmt_cwtime(pts[i].t_ms, t);
		rc = tw_buf_printf(b, err, "%s{\"timestamp\":\"%s\"", i + 1 == n ? "" : ",", t);
		if (!rc && !pts[i].missing) {
			rc = tw_buf_printf(b, err, ",\"value\":");
			if (!rc)
				rc = put_json_double(b, pts[i].value, err);
		}
		if (!rc)
			rc = tw_buf_putc(b, '}', err);
	}
	if (!rc)
		rc = tw_buf_printf(b, err, "]}");
	return rc;
}

/* ---- composite rules --------------------------------------------------------------------------- */

enum node_kind { N_TRUE, N_FALSE, N_STATE, N_NOT, N_AND, N_OR };

struct node {
	enum node_kind kind; /* what it is */
	int state;           /* N_STATE: the state asked for */
	size_t name;         /* N_STATE: index into names */
	int a, b;            /* children (node indexes), -1 when absent */
};

struct tw_alarm_rule {
	struct node *nodes; /* all nodes; root at `root` */
	size_t nnodes;      /* used */
	size_t cap;         /* allocated */
	int root;           /* the root node */
	char **names;       /* referenced names, owned */
	size_t nnames;      /* how many */
};

struct rparser {
	const char *s;             /* the rule */
	size_t i;                  /* position */
	size_t len;                /* length */
	unsigned depth;            /* nesting */
	struct tw_alarm_rule *r;   /* being built */
	struct tw_err *err;        /* where errors go */
};

static void rskip(struct rparser *p)
{
	while (p->i < p->len && isspace((unsigned char)p->s[p->i]))
		p->i++;
}

static int rfail(struct rparser *p, size_t at, const char *what)
{
	tw_err_set(p->err, TW_EPARSE, "alarm rule: column %zu: %s", at + 1, what);
	return -1;
}

static int is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Reads a word at p->i (without consuming when peek); returns its length. */
static size_t rword(struct rparser *p)
{
	size_t j = p->i;
	while (j < p->len && is_word(p->s[j]))
		j++;
	return j - p->i;
}

static int word_is(struct rparser *p, size_t wl, const char *kw)
{
	return wl == strlen(kw) && !memcmp(p->s + p->i, kw, wl);
}

static int newnode(struct rparser *p, enum node_kind k, int a, int b)
{
	struct tw_alarm_rule *r = p->r;
	if (r->nnodes == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 16;
		struct node *nn = realloc(r->nodes, nc * sizeof *nn);
		if (!nn) {
			tw_err_set(p->err, TW_ENOMEM, "alarm rule: out of memory");
			return -1;
		}
		r->nodes = nn;
		r->cap = nc;
	}
	r->nodes[r->nnodes] = (struct node){ .kind = k, .a = a, .b = b, .state = 0, .name = 0 };
	return (int)r->nnodes++;
}

static int rexpr(struct rparser *p);

static int rprimary(struct rparser *p)
{
	size_t wl, at;
	int st, n;

	rskip(p);
	at = p->i;
	if (p->i >= p->len)
		return rfail(p, at, "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '('");
	if (p->s[p->i] == '(') {
		if (++p->depth > RULE_MAX_DEPTH)
			return rfail(p, at, "nesting deeper than 100");
		p->i++;
		n = rexpr(p);
		if (n < 0)
			return -1;
		rskip(p);
		if (p->i >= p->len || p->s[p->i] != ')')
			return rfail(p, p->i, "expected ')'");
		p->i++;
		p->depth--;
		return n;
	}
	wl = rword(p);
	if (wl == 0)
		return rfail(p, at, "unexpected character");
	if (word_is(p, wl, "TRUE") || word_is(p, wl, "FALSE")) {
		int t = word_is(p, wl, "TRUE");
		p->i += wl;
		return newnode(p, t ? N_TRUE : N_FALSE, -1, -1);
	}
	if (word_is(p, wl, "NOT")) {
		p->i += wl;
		if (++p->depth > RULE_MAX_DEPTH)
			return rfail(p, at, "nesting deeper than 100");
		n = rprimary(p);
		p->depth--;
		return n < 0 ? -1 : newnode(p, N_NOT, n, -1);
	}
	if (word_is(p, wl, "ALARM"))
		st = TW_ALARM_ALARM;
	else if (word_is(p, wl, "OK"))
		st = TW_ALARM_OK;
	else if (word_is(p, wl, "INSUFFICIENT_DATA"))
		st = TW_ALARM_INSUFFICIENT;
	else if (word_is(p, wl, "AND") || word_is(p, wl, "OR"))
		return rfail(p, at, "operator without a left operand");
	else
		return rfail(p, at, "unknown word (expected ALARM, OK, INSUFFICIENT_DATA, TRUE, FALSE or NOT)");
	p->i += wl;
	rskip(p);
	if (p->i >= p->len || p->s[p->i] != '(')
		return rfail(p, p->i, "expected '(' after the state function");
	p->i++;
	rskip(p);
	{
		size_t ns = p->i, ne;
		char **nn;
		char *name;
		if (p->i < p->len && p->s[p->i] == '"') {
			ns = ++p->i;
			while (p->i < p->len && p->s[p->i] != '"')
				p->i++;
			if (p->i >= p->len)
				return rfail(p, ns - 1, "unterminated quoted alarm name");
			ne = p->i++;
		} else {
			while (p->i < p->len && p->s[p->i] != ')' && p->s[p->i] != '(' && !isspace((unsigned char)p->s[p->i]) &&
			       p->s[p->i] != '"')
				p->i++;
			ne = p->i;
		}
		if (ne == ns)
			return rfail(p, ns, "expected an alarm name");
		if (ne - ns > NAME_MAX_LEN)
			return rfail(p, ns, "alarm name longer than 255 bytes");
		rskip(p);
		if (p->i >= p->len || p->s[p->i] != ')')
			return rfail(p, p->i, "expected ')' after the alarm name");
		p->i++;
		name = strndup(p->s + ns, ne - ns);
		nn = name ? realloc(p->r->names, (p->r->nnames + 1) * sizeof *nn) : NULL;
		if (!nn) {
			free(name);
			tw_err_set(p->err, TW_ENOMEM, "alarm rule: out of memory");
			return -1;
		}
		p->r->names = nn;
		nn[p->r->nnames] = name;
		n = newnode(p, N_STATE, -1, -1);
		if (n < 0)
			return -1;
		p->r->nodes[n].state = st;
		p->r->nodes[n].name = p->r->nnames++;
		return n;
	}
}

/* A left-associative chain `operand (word operand)*` joined into `kind` nodes: AND over rprimary,
 * OR over rand_. Returns the node, or -1 with the error set. */
static int rchain(struct rparser *p, const char *word, enum node_kind kind, int (*operand)(struct rparser *))
{
	int l = operand(p), r;
	size_t wl;

	while (l >= 0) {
		rskip(p);
		wl = rword(p);
		if (!word_is(p, wl, word))
			break;
		p->i += wl;
		r = operand(p);
		if (r < 0)
			return -1;
		l = newnode(p, kind, l, r);
	}
	return l;
}

static int rand_(struct rparser *p)
{
	return rchain(p, "AND", N_AND, rprimary);
}

static int rexpr(struct rparser *p)
{
	return rchain(p, "OR", N_OR, rand_);
}

void tw_alarm_rule_free(struct tw_alarm_rule *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nnames; i++)
		free(r->names[i]);
	free(r->names);
	free(r->nodes);
	free(r);
}

enum tw_rc tw_alarm_rule_parse(const char *text, struct tw_alarm_rule **out, struct tw_err *err)
{
	struct rparser p = { .s = text, .i = 0, .len = text ? strlen(text) : 0, .depth = 0, .r = NULL, .err = err };

	if (p.len > RULE_MAX_LEN)
		return tw_err_set(err, TW_ELIMIT, "alarm rule: longer than %d bytes", RULE_MAX_LEN);
	p.r = calloc(1, sizeof *p.r);
	if (!p.r)
		return tw_err_set(err, TW_ENOMEM, "alarm rule: out of memory");
	p.r->root = rexpr(&p);
	if (p.r->root >= 0) {
		rskip(&p);
		if (p.i < p.len) {
			size_t wl = rword(&p);
			if (p.s[p.i] == ')')
				rfail(&p, p.i, "unbalanced ')'");
			else if (wl && (word_is(&p, wl, "AND") || word_is(&p, wl, "OR")))
				rfail(&p, p.i, "operator without a right operand");
			else
				rfail(&p, p.i, "expected AND, OR or the end of the rule");
			p.r->root = -1;
		}
	}
	if (p.r->root < 0) {
		tw_alarm_rule_free(p.r);
		return err ? err->rc : TW_EPARSE;
	}
	*out = p.r;
	return TW_OK;
}

static int eval_node(const struct tw_alarm_rule *r, int i, int (*state_of)(void *, const char *), void *ctx)
{
	const struct node *n = &r->nodes[i];

	switch (n->kind) {
	case N_TRUE: return 1;
	case N_FALSE: return 0;
	case N_STATE: return state_of(ctx, r->names[n->name]) == n->state;
	case N_NOT: return !eval_node(r, n->a, state_of, ctx);
	case N_AND: return eval_node(r, n->a, state_of, ctx) && eval_node(r, n->b, state_of, ctx);
	case N_OR: return eval_node(r, n->a, state_of, ctx) || eval_node(r, n->b, state_of, ctx);
	}
	return 0;
}

int tw_alarm_rule_eval(const struct tw_alarm_rule *r, int (*state_of)(void *ctx, const char *name), void *ctx)
{
	return eval_node(r, r->root, state_of, ctx);
}

size_t tw_alarm_rule_names(const struct tw_alarm_rule *r, const char *const **out)
{
	*out = (const char *const *)r->names;
	return r->nnames;
}

/* ---- files ------------------------------------------------------------------------------------- */

static enum tw_rc fsync_dir(const char *dir, struct tw_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return tw_err_set(err, TW_EIO, "%s: %s", dir, strerror(errno));
	if (fsync(fd) && errno != EINVAL) {
		int e = errno;
		close(fd);
		return tw_err_set(err, TW_EIO, "%s: fsync: %s", dir, strerror(e));
	}
	close(fd);
	return TW_OK;
}

enum tw_rc tw_alarm_write_atomic(const char *path, const char *p, size_t n, struct tw_err *err)
{
	char tmp[4096], dir[4096];
	const char *slash;
	int fd;
	size_t off = 0;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return tw_err_set(err, TW_ELIMIT, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return tw_err_set(err, TW_EIO, "%s: %s", tmp, strerror(errno));
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return tw_err_set(err, TW_EIO, "%s: write: %s", tmp, strerror(e));
		}
		off += (size_t)w;
	}
	if (fsync(fd)) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return tw_err_set(err, TW_EIO, "%s: fsync: %s", tmp, strerror(e));
	}
	close(fd);
	if (rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		return tw_err_set(err, TW_EIO, "%s: rename: %s", path, strerror(e));
	}
	slash = strrchr(path, '/');
	if (!slash)
		return fsync_dir(".", err);
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	return fsync_dir(dir[0] ? dir : "/", err);
}

static enum tw_rc put_str(struct tw_buf *b, const char *s, struct tw_err *err)
{
	return tw_json_write_str(b, s ? s : "", s ? strlen(s) : 0, err);
}

enum tw_rc tw_alarm_history_append(const char *dir, const struct tw_alarm_hist *h, struct tw_err *err)
{
	char path[4096], t[TW_TIME_BUFSZ];
	struct tw_buf b;
	enum tw_rc rc;
	struct stat st;
	int fd;
	size_t off = 0;

	if (snprintf(path, sizeof path, "%s/history.jsonl", dir) >= (int)sizeof path)
		return tw_err_set(err, TW_ELIMIT, "%s: path too long", dir);
	tw_buf_init(&b, REASON_MAX * 4);
	tw_time_format(h->time_ms, t);
	rc = tw_buf_printf(&b, err, "{\"time\":\"%s\",\"time_ms\":%lld,\"alarm\":", t, (long long)h->time_ms);
	if (!rc)
		rc = put_str(&b, h->alarm, err);
	if (!rc)
		rc = tw_buf_printf(&b, err, ",\"type\":");
	if (!rc)
		rc = put_str(&b, h->type, err);
	if (!rc && h->old_state) {
		rc = tw_buf_printf(&b, err, ",\"old_state\":");
		if (!rc)
			rc = put_str(&b, h->old_state, err);
	}
	if (!rc && h->new_state) {
		rc = tw_buf_printf(&b, err, ",\"new_state\":");
		if (!rc)
			rc = put_str(&b, h->new_state, err);
	}
	if (!rc && h->reason) {
		rc = tw_buf_printf(&b, err, ",\"reason\":");
		if (!rc)
			rc = put_str(&b, h->reason, err);
	}
	if (!rc && h->reason_data && h->reason_data[0]) {
		rc = tw_buf_printf(&b, err, ",\"reason_data\":");
		if (!rc) {
			if (tw_json_validate(h->reason_data, strlen(h->reason_data), 64, NULL) == TW_OK)
				rc = tw_buf_append(&b, h->reason_data, strlen(h->reason_data), err);
			else
				rc = put_str(&b, h->reason_data, err);
		}
	}
	if (!rc && h->extra && h->extra[0])
		rc = tw_buf_printf(&b, err, ",%s", h->extra);
	if (!rc)
		rc = tw_buf_printf(&b, err, "}\n");
	if (rc) {
		tw_buf_free(&b);
		return rc;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		tw_buf_free(&b);
		return tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
	}
	/* A torn last line (crash mid-append): end it so that it stays one bad line, not two. */
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		char last = '\n';
		if (rfd >= 0) {
			if (pread(rfd, &last, 1, st.st_size - 1) != 1)
				last = '\n';
			close(rfd);
		}
		if (last != '\n' && write(fd, "\n", 1) != 1) {
			close(fd);
			tw_buf_free(&b);
			return tw_err_set(err, TW_EIO, "%s: write: %s", path, strerror(errno));
		}
	}
	while (off < b.n) {
		ssize_t w = write(fd, b.p + off, b.n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			tw_buf_free(&b);
			return tw_err_set(err, TW_EIO, "%s: write: %s", path, strerror(e));
		}
		off += (size_t)w;
	}
	tw_buf_free(&b);
	if (fdatasync(fd)) {
		int e = errno;
		close(fd);
		return tw_err_set(err, TW_EIO, "%s: fdatasync: %s", path, strerror(e));
	}
	close(fd);
	return TW_OK;
}

/* ---- the set ----------------------------------------------------------------------------------- */

/* An owned copy of a string list. */
struct strs {
	char **v;   /* owned strings */
	size_t n;   /* how many */
};

struct alarm {
	char *name;             /* AlarmName, owned */
	int defined;            /* 1 once tw_alarm_set_define saw it in this process */
	int composite;          /* 1 for a composite alarm */
	/* owned definition (valid when defined) */
	char *description, *metric, *dimensions, *statistic, *rule_text, *account, *region, *severity;
	struct strs actions[3]; /* per target state: [OK], [ALARM], [INSUFFICIENT_DATA] */
	struct strs labels;     /* user labels */
	struct tw_alarm_def def;        /* view of the definition (pointers into the fields above) */
	struct tw_alarm_rule *rule;     /* parsed rule of a composite */
	uint64_t cfg_hash;      /* hash of the canonical definition (0: unknown) */
	enum tw_alarm_state state; /* current state */
	int64_t since_ms;       /* last change */
	char *reason;           /* last reason, owned ("" initially) */
	char *reason_data;      /* last reason data, owned */
};

struct pending {
	struct tw_alarm_transition tr; /* the view handed out */
	char *alarm, *reason, *reason_data; /* owned strings behind tr */
	struct strs actions;   /* owned copy of the topics */
	struct strs labels;    /* owned labels */
};

struct tw_alarm_set {
	char *dir;              /* state directory, owned */
	struct alarm *a;        /* alarms, unsorted */
	size_t n, cap;          /* used, allocated */
	struct pending *pend;   /* queued transitions */
	size_t npend, cappend;  /* used, allocated */
};

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int strs_copy(struct strs *d, struct tw_alarm_strs s)
{
	d->v = s.n ? calloc(s.n, sizeof *d->v) : NULL;
	d->n = 0;
	if (s.n && !d->v)
		return -1;
	for (size_t i = 0; i < s.n; i++) {
		if (!(d->v[i] = xstrdup(s.v[i])))
			return -1;
		d->n++;
	}
	return 0;
}

static struct tw_alarm_strs strs_view(const struct strs *s)
{
	return (struct tw_alarm_strs){ (const char *const *)s->v, s->n };
}

static void def_clear(struct alarm *a)
{
	free(a->description);
	free(a->metric);
	free(a->dimensions);
	free(a->statistic);
	free(a->rule_text);
	free(a->account);
	free(a->region);
	free(a->severity);
	a->description = a->metric = a->dimensions = a->statistic = a->rule_text = NULL;
	a->account = a->region = a->severity = NULL;
	for (int i = 0; i < 3; i++)
		strs_free(&a->actions[i]);
	strs_free(&a->labels);
	tw_alarm_rule_free(a->rule);
	a->rule = NULL;
}

static void alarm_free(struct alarm *a)
{
	def_clear(a);
	free(a->name);
	free(a->reason);
	free(a->reason_data);
}

static void pending_free(struct pending *p)
{
	free(p->alarm);
	free(p->reason);
	free(p->reason_data);
	strs_free(&p->actions);
	strs_free(&p->labels);
}

static struct alarm *find(const struct tw_alarm_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->a[i].name, name))
			return &set->a[i];
	return NULL;
}

static struct alarm *add(struct tw_alarm_set *set, const char *name, struct tw_err *err)
{
	struct alarm *a;

	if (set->n == set->cap) {
		size_t nc = set->cap ? set->cap * 2 : 16;
		struct alarm *na = realloc(set->a, nc * sizeof *na);
		if (!na) {
			tw_err_set(err, TW_ENOMEM, "out of memory");
			return NULL;
		}
		set->a = na;
		set->cap = nc;
	}
	a = &set->a[set->n];
	memset(a, 0, sizeof *a);
	a->name = strdup(name);
	a->reason = strdup("");
	a->reason_data = strdup("");
	a->state = TW_ALARM_INSUFFICIENT;
	if (!a->name || !a->reason || !a->reason_data) {
		alarm_free(a);
		tw_err_set(err, TW_ENOMEM, "out of memory");
		return NULL;
	}
	set->n++;
	return a;
}

/* The state file name of an alarm: safe bytes kept, others %XX; long names by hash. */
static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void state_path(const struct tw_alarm_set *set, const char *name, char *out, size_t outsz)
{
	char enc[256];
	size_t k = 0;

	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (k + 4 >= sizeof enc - 8) {
			k = (size_t)-1;
			break;
		}
		if (isalnum(c) || c == '-' || c == '_' || (c == '.' && p != name))
			enc[k++] = (char)c;
		else
			k += (size_t)snprintf(enc + k, sizeof enc - k, "%%%02X", c);
	}
	if (k == (size_t)-1 || k > 200)
		snprintf(enc, sizeof enc, "h-%016llx",
			 (unsigned long long)fnv(name, strlen(name), 14695981039346656037ULL));
	else
		enc[k] = '\0';
	snprintf(out, outsz, "%s/state/%s.json", set->dir, enc);
}

static enum tw_rc persist(const struct tw_alarm_set *set, const struct alarm *a, struct tw_err *err)
{
	char path[4096];
	struct tw_buf b;
	enum tw_rc rc;

	tw_buf_init(&b, REASON_MAX * 4);
	rc = tw_buf_printf(&b, err, "{\"name\":");
	if (!rc)
		rc = put_str(&b, a->name, err);
	if (!rc)
		rc = tw_buf_printf(&b, err, ",\"state\":\"%s\",\"since_ms\":%lld,\"composite\":%s,\"config_hash\":\"%016llx\",\"reason\":",
				   tw_alarm_state_str(a->state), (long long)a->since_ms, a->composite ? "true" : "false",
				   (unsigned long long)a->cfg_hash);
	if (!rc)
		rc = put_str(&b, a->reason, err);
	if (!rc)
		rc = tw_buf_printf(&b, err, ",\"reason_data\":");
	if (!rc)
		rc = put_str(&b, a->reason_data, err);
	if (!rc)
		rc = tw_buf_printf(&b, err, "}\n");
	state_path(set, a->name, path, sizeof path);
	if (!rc)
		rc = tw_alarm_write_atomic(path, b.p, b.n, err);
	tw_buf_free(&b);
	return rc;
}

static enum tw_rc load_states(struct tw_alarm_set *set, struct tw_err *err)
{
	char path[4096];
	DIR *d;
	struct dirent *de;
	enum tw_rc rc = TW_OK;

	snprintf(path, sizeof path, "%s/state", set->dir);
	d = opendir(path);
	if (!d)
		return tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
	while (!rc && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char file[4096 + 512];
		json_error_t je;
		json_t *j;
		const char *name, *state, *hash;
		struct alarm *a;
		int s;

		if (l < 6 || strcmp(de->d_name + l - 5, ".json") || de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof file, "%s/%s", path, de->d_name);
		j = json_load_file(file, 0, &je);
		if (!j) {
			rc = tw_err_set(err, TW_ECORRUPT, "%s: line %d: %s", file, je.line, je.text);
			break;
		}
		name = json_string_value(json_object_get(j, "name"));
		state = json_string_value(json_object_get(j, "state"));
		hash = json_string_value(json_object_get(j, "config_hash"));
		s = tw_alarm_state_parse(state);
		if (!name || !*name || s < 0) {
			json_decref(j);
			rc = tw_err_set(err, TW_ECORRUPT, "%s: missing or bad \"name\" or \"state\"", file);
			break;
		}
		a = find(set, name);
		if (!a)
			a = add(set, name, err);
		if (!a) {
			json_decref(j);
			rc = TW_ENOMEM;
			break;
		}
		a->state = (enum tw_alarm_state)s;
		a->since_ms = (int64_t)json_integer_value(json_object_get(j, "since_ms"));
		a->composite = json_is_true(json_object_get(j, "composite"));
		a->cfg_hash = hash ? strtoull(hash, NULL, 16) : 0;
		free(a->reason);
		free(a->reason_data);
		a->reason = xstrdup(json_string_value(json_object_get(j, "reason")));
		a->reason_data = xstrdup(json_string_value(json_object_get(j, "reason_data")));
		json_decref(j);
		if (!a->reason || !a->reason_data)
			rc = tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	closedir(d);
	return rc;
}

static enum tw_rc mkdir_p1(const char *path, struct tw_err *err)
{
	if (mkdir(path, 0700) && errno != EEXIST)
		return tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
	return TW_OK;
}

enum tw_rc tw_alarm_set_open(const char *dir, struct tw_alarm_set **out, struct tw_err *err)
{
	struct tw_alarm_set *set;
	char path[4096];
	enum tw_rc rc;

	if (!dir || !*dir || strlen(dir) > 3000)
		return tw_err_set(err, TW_EINVAL, "alarm state directory: empty or too long");
	set = calloc(1, sizeof *set);
	if (!set || !(set->dir = strdup(dir))) {
		free(set);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	snprintf(path, sizeof path, "%s/state", dir);
	rc = mkdir_p1(dir, err);
	if (!rc)
		rc = mkdir_p1(path, err);
	if (!rc)
		rc = load_states(set, err);
	if (rc) {
		tw_alarm_set_close(set);
		return rc;
	}
	*out = set;
	return TW_OK;
}

void tw_alarm_set_close(struct tw_alarm_set *set)
{
	if (!set)
		return;
	tw_alarm_set_pending_clear(set);
	for (size_t i = 0; i < set->n; i++)
		alarm_free(&set->a[i]);
	free(set->a);
	free(set->pend);
	free(set->dir);
	free(set);
}

/* Canonical text of a definition, for the configuration hash. */
static uint64_t def_hash(const struct tw_alarm_def *d)
{
	uint64_t h = 14695981039346656037ULL;
	char num[64];
	const struct tw_alarm_strs *lists[4] = { &d->alarm_actions, &d->ok_actions, &d->insufficient_actions, &d->labels };
	const char *fields[9] = { d->name, d->description, d->metric, d->dimensions, d->statistic, d->rule,
				  d->account, d->region, d->severity };

	for (int i = 0; i < 9; i++) {
		const char *s = fields[i] ? fields[i] : "";
		h = fnv(s, strlen(s) + 1, h);
	}
	snprintf(num, sizeof num, "%u|%u|%u|%a|%d|%d|%d", d->period_s, d->eval_periods, def_m(d), d->threshold,
		 (int)d->cmp, (int)d->missing, d->actions_enabled ? 1 : 0);
	h = fnv(num, strlen(num), h);
	for (int l = 0; l < 4; l++) {
		h = fnv("#", 1, h);
		for (size_t i = 0; i < lists[l]->n; i++)
			h = fnv(lists[l]->v[i], strlen(lists[l]->v[i]) + 1, h);
	}
	return h ? h : 1;
}

static int composite_reaches(const struct tw_alarm_set *set, const struct tw_alarm_rule *rule, const char *target,
			     unsigned depth)
{
	const char *const *names;
	size_t nn = tw_alarm_rule_names(rule, &names);

	if (depth > 1000)
		return 1;
	for (size_t i = 0; i < nn; i++) {
		const struct alarm *c;
		if (!strcmp(names[i], target))
			return 1;
		c = find(set, names[i]);
		if (c && c->defined && c->rule && composite_reaches(set, c->rule, target, depth + 1))
			return 1;
	}
	return 0;
}

static enum tw_rc validate_def(const struct tw_alarm_def *d, struct tw_err *err)
{
	if (!d->name || !*d->name || strlen(d->name) > NAME_MAX_LEN)
		return tw_err_set(err, TW_EINVAL, "alarm name must be 1 to 255 bytes");
	if (d->rule)
		return TW_OK;
	if (!tw_alarm_statistic_valid(d->statistic))
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\": bad statistic \"%s\" (Sum, Average, Minimum, Maximum, SampleCount or pNN)",
				  d->name, d->statistic ? d->statistic : "");
	if (d->period_s == 0)
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\": period must be > 0", d->name);
	if (d->eval_periods == 0 || d->eval_periods > 10000)
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\": evaluation periods must be 1..10000", d->name);
	if (d->to_alarm > d->eval_periods)
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\": datapoints to alarm (%u) above evaluation periods (%u)",
				  d->name, d->to_alarm, d->eval_periods);
	if ((unsigned)d->cmp > TW_ALARM_BAND_LT_LOWER || (unsigned)d->missing > TW_ALARM_MISSING_IGNORE)
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\": bad comparison operator or missing-data treatment", d->name);
	return TW_OK;
}

static int child_state(void *ctx, const char *name)
{
	const struct alarm *a = find(ctx, name);
	return a ? (int)a->state : (int)TW_ALARM_INSUFFICIENT;
}

static enum tw_rc transition(struct tw_alarm_set *set, struct alarm *a, enum tw_alarm_state st, const char *reason,
			     const char *reason_data, int64_t now_ms, unsigned depth, struct tw_err *err);

/* Re-evaluates every composite that names `child`. */
static enum tw_rc reeval_parents(struct tw_alarm_set *set, const char *child, int64_t now_ms, unsigned depth,
				 struct tw_err *err)
{
	for (size_t i = 0; i < set->n; i++) {
		struct alarm *c = &set->a[i];
		const char *const *names;
		size_t nn;
		int refers = 0;

		if (!c->defined || !c->rule)
			continue;
		nn = tw_alarm_rule_names(c->rule, &names);
		for (size_t k = 0; k < nn && !refers; k++)
			refers = !strcmp(names[k], child);
		if (refers) {
			struct alarm *ch = find(set, child);
			enum tw_alarm_state st = tw_alarm_rule_eval(c->rule, child_state, set) ? TW_ALARM_ALARM : TW_ALARM_OK;
			char reason[600], rd[900], t[TW_TIME_BUFSZ], ct[32];
			struct tw_buf nb;
			enum tw_rc rc;

			if (st == c->state)
				continue;
			tw_time_format(now_ms, t);
			tw_alarm_fmt_cwtime(ch ? ch->since_ms : now_ms, ct);
			snprintf(reason, sizeof reason, "%.255s transitioned to %s at %s", child,
				 tw_alarm_state_str(ch ? ch->state : TW_ALARM_INSUFFICIENT), t);
			tw_buf_init(&nb, 4096);
			rc = tw_buf_printf(&nb, err, "{\"triggeringAlarms\":[{\"name\":");
			if (!rc)
				rc = put_str(&nb, child, err);
			if (!rc)
				rc = tw_buf_printf(&nb, err, ",\"state\":{\"value\":\"%s\",\"timestamp\":\"%s\"}}]}",
						   tw_alarm_state_str(ch ? ch->state : TW_ALARM_INSUFFICIENT), ct);
			snprintf(rd, sizeof rd, "%s", rc ? "" : tw_buf_cstr(&nb));
			tw_buf_free(&nb);
			if (rc)
				return rc;
			c = &set->a[i];
			if ((rc = transition(set, c, st, reason, rd, now_ms, depth + 1, err)))
				return rc;
		}
	}
	return TW_OK;
}

static enum tw_rc queue(struct tw_alarm_set *set, const struct alarm *a, enum tw_alarm_state old, int64_t now_ms,
			struct tw_err *err)
{
	struct pending *p;
	char lab[1024];
	const char *fixed[5][2] = { { "alarm", a->name }, { "state", tw_alarm_state_str(a->state) },
				    { "account", a->account }, { "region", a->region }, { "severity", a->severity } };
	size_t k;

	if (set->npend == set->cappend) {
		size_t nc = set->cappend ? set->cappend * 2 : 8;
		struct pending *np = realloc(set->pend, nc * sizeof *np);
		if (!np)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		set->pend = np;
		set->cappend = nc;
	}
	p = &set->pend[set->npend];
	memset(p, 0, sizeof *p);
	p->alarm = xstrdup(a->name);
	p->reason = xstrdup(a->reason);
	p->reason_data = xstrdup(a->reason_data);
	if (a->defined && a->def.actions_enabled && strs_copy(&p->actions, strs_view(&a->actions[a->state])))
		goto oom;
	p->labels.v = calloc(5 + a->labels.n, sizeof *p->labels.v);
	if (!p->alarm || !p->reason || !p->reason_data || !p->labels.v)
		goto oom;
	for (k = 0; k < 5; k++) {
		if (!fixed[k][1] || !*fixed[k][1])
			continue;
		snprintf(lab, sizeof lab, "%s=%s", fixed[k][0], fixed[k][1]);
		if (!(p->labels.v[p->labels.n] = strdup(lab)))
			goto oom;
		p->labels.n++;
	}
	for (k = 0; k < a->labels.n; k++) {
		if (!(p->labels.v[p->labels.n] = strdup(a->labels.v[k])))
			goto oom;
		p->labels.n++;
	}
	p->tr = (struct tw_alarm_transition){
		.alarm = p->alarm, .old_state = old, .new_state = a->state, .time_ms = now_ms, .reason = p->reason,
		.reason_data = p->reason_data, .actions = strs_view(&p->actions), .labels = strs_view(&p->labels),
		.composite = a->composite,
	};
	set->npend++;
	return TW_OK;
oom:
	pending_free(p);
	return tw_err_set(err, TW_ENOMEM, "out of memory");
}

static enum tw_rc transition(struct tw_alarm_set *set, struct alarm *a, enum tw_alarm_state st, const char *reason,
			     const char *reason_data, int64_t now_ms, unsigned depth, struct tw_err *err)
{
	enum tw_alarm_state old = a->state;
	int64_t old_since = a->since_ms;
	char *nr = strdup(reason), *nd = strdup(reason_data ? reason_data : ""), *or_, *od;
	struct tw_alarm_hist h;
	enum tw_rc rc;
	char name[NAME_MAX_LEN + 1];

	if (!nr || !nd || depth > 1000) {
		free(nr);
		free(nd);
		return depth > 1000 ? tw_err_set(err, TW_ELIMIT, "composite alarms nested deeper than 1000")
				    : tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	or_ = a->reason;
	od = a->reason_data;
	a->state = st;
	a->since_ms = now_ms;
	a->reason = nr;
	a->reason_data = nd;
	rc = persist(set, a, err);
	if (rc) { /* invariant 1: no transition without its state file */
		a->state = old;
		a->since_ms = old_since;
		a->reason = or_;
		a->reason_data = od;
		free(nr);
		free(nd);
		return rc;
	}
	free(or_);
	free(od);
	h = (struct tw_alarm_hist){ .time_ms = now_ms, .alarm = a->name, .type = "StateUpdate",
				    .old_state = tw_alarm_state_str(old), .new_state = tw_alarm_state_str(st),
				    .reason = a->reason, .reason_data = a->reason_data, .extra = NULL };
	if ((rc = tw_alarm_history_append(set->dir, &h, err)))
		return rc;
	if ((rc = queue(set, a, old, now_ms, err)))
		return rc;
	snprintf(name, sizeof name, "%s", a->name); /* the array may move below */
	return reeval_parents(set, name, now_ms, depth, err);
}

enum tw_rc tw_alarm_set_define(struct tw_alarm_set *set, const struct tw_alarm_def *def, int64_t now_ms,
			       struct tw_err *err)
{
	struct tw_alarm_rule *rule = NULL;
	struct alarm *a, tmp;
	uint64_t h;
	enum tw_rc rc;
	int isnew = 0;

	if ((rc = validate_def(def, err)))
		return rc;
	if (def->rule) {
		if ((rc = tw_alarm_rule_parse(def->rule, &rule, err))) {
			tw_err_prefix(err, "alarm \"%s\"", def->name);
			return rc;
		}
		if (composite_reaches(set, rule, def->name, 0)) {
			tw_alarm_rule_free(rule);
			return tw_err_set(err, TW_EINVAL, "alarm \"%s\": its rule refers to itself through a cycle of composite alarms",
					  def->name);
		}
	}
	h = def_hash(def);
	a = find(set, def->name);
	if (!a) {
		if (!(a = add(set, def->name, err))) {
			tw_alarm_rule_free(rule);
			return TW_ENOMEM;
		}
		isnew = 1;
	}
	/* Build the owned copy aside, then swap it in. */
	memset(&tmp, 0, sizeof tmp);
	tmp.description = def->description ? strdup(def->description) : NULL;
	tmp.metric = def->metric ? strdup(def->metric) : NULL;
	tmp.dimensions = def->dimensions ? strdup(def->dimensions) : NULL;
	tmp.statistic = xstrdup(def->rule ? "" : def->statistic);
	tmp.rule_text = def->rule ? strdup(def->rule) : NULL;
	tmp.account = def->account ? strdup(def->account) : NULL;
	tmp.region = def->region ? strdup(def->region) : NULL;
	tmp.severity = def->severity ? strdup(def->severity) : NULL;
	tmp.rule = rule;
	if (strs_copy(&tmp.actions[TW_ALARM_ALARM], def->alarm_actions) ||
	    strs_copy(&tmp.actions[TW_ALARM_OK], def->ok_actions) ||
	    strs_copy(&tmp.actions[TW_ALARM_INSUFFICIENT], def->insufficient_actions) ||
	    strs_copy(&tmp.labels, def->labels) || !tmp.statistic) {
		def_clear(&tmp);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	def_clear(a);
	a->description = tmp.description;
	a->metric = tmp.metric;
	a->dimensions = tmp.dimensions;
	a->statistic = tmp.statistic;
	a->rule_text = tmp.rule_text;
	a->account = tmp.account;
	a->region = tmp.region;
	a->severity = tmp.severity;
	a->rule = tmp.rule;
	for (int i = 0; i < 3; i++)
		a->actions[i] = tmp.actions[i];
	a->labels = tmp.labels;
	a->def = *def;
	a->def.name = a->name;
	a->def.description = a->description;
	a->def.metric = a->metric;
	a->def.dimensions = a->dimensions;
	a->def.statistic = a->statistic;
	a->def.rule = a->rule_text;
	a->def.account = a->account;
	a->def.region = a->region;
	a->def.severity = a->severity;
	a->def.alarm_actions = strs_view(&a->actions[TW_ALARM_ALARM]);
	a->def.ok_actions = strs_view(&a->actions[TW_ALARM_OK]);
	a->def.insufficient_actions = strs_view(&a->actions[TW_ALARM_INSUFFICIENT]);
	a->def.labels = strs_view(&a->labels);
	a->defined = 1;
	a->composite = def->rule != NULL;
	if (a->cfg_hash != h) {
		int had = a->cfg_hash != 0;
		char hs[600];
		a->cfg_hash = h;
		if ((rc = persist(set, a, err)))
			return rc;
		if (had || isnew) {
			struct tw_alarm_hist hh = { .time_ms = now_ms, .alarm = a->name, .type = "ConfigurationUpdate",
						    .old_state = NULL, .new_state = NULL, .reason = hs,
						    .reason_data = NULL, .extra = NULL };
			snprintf(hs, sizeof hs, "Alarm \"%.255s\" %s", a->name, isnew ? "created" : "updated");
			if ((rc = tw_alarm_history_append(set->dir, &hh, err)))
				return rc;
		}
	}
	if (a->composite) { /* a composite decides at once from its children */
		enum tw_alarm_state st = tw_alarm_rule_eval(a->rule, child_state, set) ? TW_ALARM_ALARM : TW_ALARM_OK;
		if (st != a->state) {
			char reason[400];
			snprintf(reason, sizeof reason, "Composite rule evaluated to %s", st == TW_ALARM_ALARM ? "TRUE" : "FALSE");
			return transition(set, a, st, reason, "", now_ms, 0, err);
		}
	}
	return TW_OK;
}

enum tw_rc tw_alarm_set_eval(struct tw_alarm_set *set, const char *name, const struct tw_alarm_point *pts,
			     size_t n, int64_t now_ms, struct tw_err *err)
{
	struct alarm *a = find(set, name);
	unsigned B, P, F;
	enum tw_alarm_state st;
	struct tw_buf reason, data;
	enum tw_rc rc;

	if (!a || !a->defined)
		return tw_err_set(err, TW_ENOENT, "alarm \"%s\" is not defined", name);
	if (a->composite)
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\" is a composite alarm: it is evaluated from its children", name);
	if (n == 0)
		return tw_err_set(err, TW_EINVAL, "alarm \"%s\": no datapoints given", name);
	st = tw_alarm_decide(&a->def, pts, n, a->state, &B, &P, &F);
	if (st == a->state)
		return TW_OK;
	tw_buf_init(&reason, REASON_MAX);
	tw_buf_init(&data, REASON_MAX);
	rc = build_reason(&reason, &a->def, pts, n, a->state, st, B, P, F, err);
	if (!rc)
		rc = build_reason_data(&data, &a->def, pts, n, P, now_ms, err);
	if (!rc)
		rc = transition(set, a, st, tw_buf_cstr(&reason), tw_buf_cstr(&data), now_ms, 0, err);
	tw_buf_free(&reason);
	tw_buf_free(&data);
	return rc;
}

enum tw_rc tw_alarm_set_set_state(struct tw_alarm_set *set, const char *name, enum tw_alarm_state state,
				  const char *reason, int64_t now_ms, struct tw_err *err)
{
	struct alarm *a = find(set, name);

	if (!a)
		return tw_err_set(err, TW_ENOENT, "alarm \"%s\" is not known in %s", name, set->dir);
	if ((unsigned)state > TW_ALARM_INSUFFICIENT)
		return tw_err_set(err, TW_EINVAL, "bad state");
	if (!reason || strlen(reason) > 1023)
		return tw_err_set(err, TW_EINVAL, "set-state: a reason of 1 to 1023 bytes is required");
	if (state == a->state)
		return TW_OK;
	return transition(set, a, state, reason, "", now_ms, 0, err);
}

enum tw_rc tw_alarm_set_sync(struct tw_alarm_set *set, int64_t now_ms, struct tw_err *err)
{
	for (size_t i = 0; i < set->n; i++) {
		char path[4096], name[NAME_MAX_LEN + 1];
		struct alarm *a = &set->a[i];
		json_t *j;
		int st;
		int64_t since;
		enum tw_alarm_state old;
		char *nr, *nd;
		enum tw_rc rc;

		state_path(set, a->name, path, sizeof path);
		if (!(j = json_load_file(path, 0, NULL)))
			continue; /* absent or being replaced: next time */
		st = tw_alarm_state_parse(json_string_value(json_object_get(j, "state")));
		since = (int64_t)json_integer_value(json_object_get(j, "since_ms"));
		if (st < 0 || (enum tw_alarm_state)st == a->state || since <= a->since_ms) {
			json_decref(j);
			continue;
		}
		nr = xstrdup(json_string_value(json_object_get(j, "reason")));
		nd = xstrdup(json_string_value(json_object_get(j, "reason_data")));
		json_decref(j);
		if (!nr || !nd) {
			free(nr);
			free(nd);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
		old = a->state;
		free(a->reason);
		free(a->reason_data);
		a->reason = nr;
		a->reason_data = nd;
		a->state = (enum tw_alarm_state)st;
		a->since_ms = since;
		if ((rc = queue(set, a, old, since, err)))
			return rc;
		snprintf(name, sizeof name, "%s", a->name);
		if ((rc = reeval_parents(set, name, now_ms, 0, err)))
			return rc;
	}
	return TW_OK;
}

size_t tw_alarm_set_npending(const struct tw_alarm_set *set)
{
	return set->npend;
}

const struct tw_alarm_transition *tw_alarm_set_pending(const struct tw_alarm_set *set, size_t i)
{
	return i < set->npend ? &set->pend[i].tr : NULL;
}

void tw_alarm_set_pending_clear(struct tw_alarm_set *set)
{
	for (size_t i = 0; i < set->npend; i++)
		pending_free(&set->pend[i]);
	set->npend = 0;
}

static int info_cmp(const void *x, const void *y)
{
	return strcmp(((const struct tw_alarm_info *)x)->name, ((const struct tw_alarm_info *)y)->name);
}

enum tw_rc tw_alarm_set_list(const struct tw_alarm_set *set, struct tw_alarm_info **out, size_t *n,
			     struct tw_err *err)
{
	struct tw_alarm_info *v = calloc(set->n ? set->n : 1, sizeof *v);

	if (!v)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (size_t i = 0; i < set->n; i++)
		v[i] = (struct tw_alarm_info){ .name = set->a[i].name, .state = set->a[i].state,
					       .since_ms = set->a[i].since_ms, .reason = set->a[i].reason,
					       .reason_data = set->a[i].reason_data, .composite = set->a[i].composite,
					       .defined = set->a[i].defined };
	qsort(v, set->n, sizeof *v, info_cmp);
	*out = v;
	*n = set->n;
	return TW_OK;
}
