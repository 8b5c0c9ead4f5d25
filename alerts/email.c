/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/email.c: alarm email content: subject, plain text, HTML and the MIME entity around them.
 *
 * MIME layout (CRLF line endings; B1, B2 derived from a hash of the content, checked absent):
 *   Content-Type: multipart/alternative; boundary="B1"
 *   --B1  text/plain; charset=UTF-8, quoted-printable
 *   --B1  multipart/related; type="text/html"; boundary="B2"
 *         --B2  text/html; charset=UTF-8, quoted-printable   (<img src="cid:CID">)
 *         --B2  image/png, base64, Content-ID: <CID>, inline
 *         --B2--
 *   --B1--
 * Invariants:
 *  1. Every string from the notice passes through put_clean (valid UTF-8, no control characters)
 *     and, in HTML, through escaping; nothing from the notice reaches a header except inside the
 *     subject, which the sender encodes.
 *  2. Boundaries start with "=_", which neither quoted-printable ('=' is always followed by two
 *     hex digits or a line break) nor base64 can produce; render() still checks.
 *  3. Every buffer is cut back to its length before the call when rendering fails. */
#include "alerts/email.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/chart.h"
#include "core/time.h"

#define CELL_MAX 60     /* longest record table cell in the plain text, in characters */
#define CONTRIB_MAX 100 /* longest contributor value in the plain text */

const char *tw_notice_state_str(enum tw_notice_state s)
{
	switch (s) {
	case TW_NOTICE_OK:
		return "OK";
	case TW_NOTICE_ALARM:
		return "ALARM";
	case TW_NOTICE_INSUFFICIENT_DATA:
		return "INSUFFICIENT_DATA";
	}
	return "UNKNOWN";
}

/* ---- an appender with a sticky error --------------------------------------------------------- */

struct out {
	struct tw_buf *b;    /* where text goes */
	struct tw_err *err;  /* first error */
	enum tw_rc rc;       /* TW_OK until something fails; later appends do nothing */
};

static void oput(struct out *o, const char *p, size_t n)
{
	if (!o->rc)
		o->rc = tw_buf_append(o->b, p, n, o->err);
}

static void os(struct out *o, const char *s)
{
	oput(o, s, strlen(s));
}

static void of(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void of(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->rc)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->rc = tw_err_set(o->err, TW_EINVAL, "email: bad format");
		return;
	}
	if ((o->rc = tw_buf_reserve(o->b, (size_t)n, o->err)))
		return;
	va_start(ap, fmt);
	vsnprintf(o->b->p + o->b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->b->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len, i;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if (cp >= 0x80 && cp < 0xa0) /* C1 controls */
		return 0;
	return len;
}

/* Appends s sanitized (invalid UTF-8 -> '?', controls -> ' '), HTML-escaped when html, and cut to
 * max characters with "..." when max > 0. Returns the number of characters written. */
static size_t put_clean(struct out *o, const char *s, int html, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), i = 0, chars = 0, total = 0, k;

	if (max) { /* count characters first to know whether to cut */
		for (k = 0; k < n; total++) {
			size_t l = utf8_len(p + k, n - k);
			k += l ? l : 1;
		}
	}
	while (i < n) {
		size_t l = utf8_len(p + i, n - i);
		if (max && total > max && chars == max - 3) {
			os(o, "...");
			return chars + 3;
		}
		if (l == 0) {
			os(o, "?");
			i++;
		} else if (l == 1) {
			unsigned char c = p[i++];
			if (c < 0x20 || c == 0x7f)
				os(o, " ");
			else if (html && c == '&')
				os(o, "&amp;");
			else if (html && c == '<')
				os(o, "&lt;");
			else if (html && c == '>')
				os(o, "&gt;");
			else if (html && c == '"')
				os(o, "&quot;");
			else if (html && c == '\'')
				os(o, "&#39;");
			else
				oput(o, (const char *)&c, 1);
		} else {
			oput(o, (const char *)p + i, l);
			i += l;
		}
		chars++;
	}
	return chars;
}

static void pad(struct out *o, size_t n)
{
	while (n-- > 0)
		os(o, " ");
}

/* Characters put_clean would write for s without cutting. */
static size_t clean_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), k = 0, c = 0;
	while (k < n) {
		size_t l = utf8_len(p + k, n - k);
		k += l ? l : 1;
		c++;
	}
	return c;
}

static int has(const char *s)
{
	return s && *s;
}

/* A double the way CloudWatch prints one: "1.0", "0.5", "1500.0", "1.0E20" style kept simple. */
static void fmt_num(double v, char *out, size_t cap)
{
	if (isnan(v)) {
		snprintf(out, cap, "-");
		return;
	}
	int n = snprintf(out, cap, "%.15g", v);
	if (n > 0 && !strpbrk(out, ".eEin") && (size_t)n + 2 < cap)
		memcpy(out + n, ".0", 3);
}

/* "2026-11-21 10:05:00" (UTC). */
static void fmt_time(int64_t ms, char *out)
{
	char iso[TW_TIME_BUFSZ];
	tw_time_format(ms - ((ms % 1000) + 1000) % 1000, iso);
	iso[10] = ' ';
	iso[19] = '\0';
	memcpy(out, iso, 20);
}

/* ---- encoders --------------------------------------------------------------------------------- */

enum tw_rc tw_email_qp_encode(const char *p, size_t n, struct tw_buf *out, struct tw_err *err)
{
	static const char hex[] = "0123456789ABCDEF";
	struct out o = { out, err, TW_OK };
	size_t i = 0, col = 0, start = out->n;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		int at_eol, lit;
		char tok[3];
		size_t l;

		if (c == '\n' || (c == '\r' && i + 1 < n && p[i + 1] == '\n')) {
			os(&o, "\r\n");
			col = 0;
			i += c == '\r' ? 2 : 1;
			continue;
		}
		at_eol = i + 1 == n || p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n');
		lit = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
		l = lit ? 1 : 3;
		if (col + l > 75) {
			os(&o, "=\r\n");
			col = 0;
		}
		if (c == '.' && col == 0)
			lit = 0, l = 3;
		if (lit) {
			tok[0] = (char)c;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
		}
		oput(&o, tok, l);
		col += l;
		i++;
	}
	if (o.rc)
		out->n = start;
	return o.rc;
}

enum tw_rc tw_email_base64_encode(const void *data, size_t n, struct tw_buf *out, struct tw_err *err)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	struct out o = { out, err, TW_OK };
	size_t i, col = 0, start = out->n;
	char q[4];

	for (i = 0; i < n && !o.rc; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		q[0] = al[v >> 18 & 63];
		q[1] = al[v >> 12 & 63];
		q[2] = i + 1 < n ? al[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? al[v & 63] : '=';
		oput(&o, q, 4);
		col += 4;
		if (col == 76 || i + 3 >= n) {
			os(&o, "\r\n");
			col = 0;
		}
	}
	if (o.rc)
		out->n = start;
	return o.rc;
}

enum tw_rc tw_email_html_escape(const char *s, struct tw_buf *out, struct tw_err *err)
{
	struct out o = { out, err, TW_OK };
	size_t start = out->n;
	put_clean(&o, s, 1, 0);
	if (o.rc)
		out->n = start;
	return o.rc;
}

/* ---- subject and plain text ------------------------------------------------------------------ */

static void where(struct out *o, const struct tw_alarm_notice *nt, int html)
{
	if (has(nt->account_id))
		put_clean(o, nt->account_id, html, 0);
	if (has(nt->account_id) && has(nt->region))
		os(o, "/");
	if (has(nt->region))
		put_clean(o, nt->region, html, 0);
}

static void subject_line(struct out *o, const struct tw_alarm_notice *nt, int html)
{
	os(o, tw_notice_state_str(nt->new_state));
	os(o, html ? ": &quot;" : ": \"");
	put_clean(o, nt->alarm_name, html, 0);
	os(o, html ? "&quot;" : "\"");
	if (has(nt->account_id) || has(nt->region)) {
		os(o, " in ");
		where(o, nt, html);
	}
}

/* The one sentence: what fired, when and why. */
static void summary(struct out *o, const struct tw_alarm_notice *nt, int html)
{
	char t[24];

	fmt_time(nt->change_ms, t);
	os(o, html ? "Your alarm <b>&quot;" : "Your alarm \"");
	put_clean(o, nt->alarm_name, html, 0);
	os(o, html ? "&quot;</b>" : "\"");
	if (has(nt->account_id)) {
		os(o, " in account ");
		put_clean(o, nt->account_id, html, 0);
	}
	if (has(nt->region)) {
		os(o, has(nt->account_id) ? ", region " : " in region ");
		put_clean(o, nt->region, html, 0);
	}
	if (has(nt->account_id) && has(nt->region))
		os(o, ",");
	of(o, " entered the %s state (was %s) at %s UTC", tw_notice_state_str(nt->new_state),
	   tw_notice_state_str(nt->old_state), t);
	if (has(nt->reason)) {
		os(o, " because: ");
		put_clean(o, nt->reason, html, 0);
	} else {
		os(o, ".");
	}
}

/* "The alarm is in the ALARM state when the metric is GreaterThanOrEqualToThreshold 1.0 for at
 * least 3 of the last 3 periods of 300 seconds." (CloudWatch's wording.) */
static void rule_sentence(struct out *o, const struct tw_alarm_notice *nt, int html)
{
	char num[40];
	unsigned ev = nt->evaluation_periods, dp = nt->datapoints_to_alarm ? nt->datapoints_to_alarm : ev;

	if (!has(nt->comparison))
		return;
	os(o, "The alarm is in the ALARM state when the metric is ");
	put_clean(o, nt->comparison, html, 0);
	if (nt->band_k > 0) {
		fmt_num(nt->band_k, num, sizeof num);
		of(o, " of the anomaly band (%s standard deviations)", num);
	} else if (nt->has_threshold) {
		fmt_num(nt->threshold, num, sizeof num);
		of(o, " %s", num);
	}
	if (ev)
		of(o, " for at least %u of the last %u period(s)", dp, ev);
	if (nt->period_s > 0)
		of(o, " of %lld seconds", (long long)nt->period_s);
	os(o, ".");
}

/* A key/value row of the plain-text details. */
static void kv(struct out *o, const char *k, const char *v)
{
	if (!has(v))
		return;
	of(o, "  %-17s ", k);
	put_clean(o, v, 0, 0);
	os(o, "\n");
}

static size_t umax(size_t a, size_t b)
{
	return a > b ? a : b;
}

static size_t umin(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int in_window(const struct tw_alarm_notice *nt, int64_t t)
{
	return (nt->eval_from_ms || nt->eval_to_ms) && t >= nt->eval_from_ms && t <= nt->eval_to_ms;
}

/* The kind of contributor i ("" when it has none): the text and HTML bodies group by it. */
static const char *contrib_kind(const struct tw_notice_contrib *c, size_t i)
{
	return c[i].kind ? c[i].kind : "";
}

/* 1 when a contributor before i has the kind of contributor i (its group is already written). */
static int kind_seen(const struct tw_notice_contrib *c, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (!strcmp(contrib_kind(c, j), contrib_kind(c, i)))
			return 1;
	return 0;
}

#define MAX_TEXT_POINTS 15 /* datapoints listed in the text (the most recent) */

/* Cell text of column col for record r (plain text); number cells are formatted into tmp. */
static const char *rec_cell(const struct tw_notice_record *r, int col, char *tmp)
{
	switch (col) {
	case 0:
		fmt_time(r->time_ms, tmp);
		return tmp;
	case 1:
		return r->principal;
	case 2:
		return r->event_name;
	case 3:
		return r->source_ip;
	case 4:
		return r->resource;
	case 5:
		return r->error_code;
	default:
		return r->event_id;
	}
}

static const char *const rec_heads[7] = { "TIME (UTC)", "PRINCIPAL", "EVENT", "SOURCE IP",
					  "RESOURCE", "ERROR", "EVENT ID" };

static size_t cell_w(const char *s, int col)
{
	size_t l = has(s) ? clean_len(s) : 1;
	return col != 6 && l > CELL_MAX ? CELL_MAX : l;
}

static void text_body(struct out *o, const struct tw_alarm_notice *nt)
{
	const struct tw_notice_series *s = &nt->series;
	char t[24], num[40], metric[256];
	size_t i, first, w[7], nrec = nt->n_records < TW_NOTICE_MAX_RECORDS ? nt->n_records : TW_NOTICE_MAX_RECORDS;

	subject_line(o, nt, 0);
	os(o, "\n\n");
	summary(o, nt, 0);
	os(o, "\n\nAlarm\n");
	kv(o, "Name", nt->alarm_name);
	kv(o, "Description", nt->description);
	of(o, "  %-17s %s -> %s\n", "State change", tw_notice_state_str(nt->old_state),
	   tw_notice_state_str(nt->new_state));
	fmt_time(nt->change_ms, t);
	of(o, "  %-17s %s UTC\n", "Changed at", t);
	kv(o, "Account", nt->account_id);
	kv(o, "Region", nt->region);

	os(o, "\nRule\n");
	if (has(nt->comparison)) {
		os(o, "  ");
		rule_sentence(o, nt, 0);
		os(o, "\n");
	}
	snprintf(metric, sizeof metric, "%s%s%s", nt->metric_namespace ? nt->metric_namespace : "",
		 has(nt->metric_namespace) && has(nt->metric_name) ? "/" : "", nt->metric_name ? nt->metric_name : "");
	kv(o, "Metric", metric);
	kv(o, "Statistic", nt->statistic);
	if (nt->period_s > 0)
		of(o, "  %-17s %lld seconds\n", "Period", (long long)nt->period_s);
	if (nt->has_threshold) {
		fmt_num(nt->threshold, num, sizeof num);
		kv(o, "Threshold", num);
	}
	kv(o, "Missing data", nt->treat_missing);

	if (nt->has_anomaly) {
		os(o, "\nAnomaly\n");
		fmt_num(nt->expected, num, sizeof num);
		kv(o, "Expected", num);
		fmt_num(nt->observed, num, sizeof num);
		kv(o, "Observed", num);
		if (nt->band_k > 0) {
			fmt_num(nt->band_k, num, sizeof num);
			of(o, "  %-17s %s standard deviations\n", "Band width", num);
		}
	}

	if (s->n && s->t_ms && s->value) {
		const double *cols[4] = { s->value, s->expected, s->lower && s->upper ? s->lower : NULL,
					  s->lower && s->upper ? s->upper : NULL };
		static const char *const heads[4] = { "VALUE", "EXPECTED", "LOWER", "UPPER" };
		size_t cw[4];
		int c;
		first = s->n > MAX_TEXT_POINTS ? s->n - MAX_TEXT_POINTS : 0;
		for (c = 0; c < 4; c++) {
			cw[c] = strlen(heads[c]);
			for (i = first; cols[c] && i < s->n; i++) {
				fmt_num(isfinite(cols[c][i]) ? cols[c][i] : NAN, num, sizeof num);
				cw[c] = umax(cw[c], strlen(num));
			}
		}
		os(o, "\nDatapoints");
		if (first)
			of(o, " (last %d of %zu)", MAX_TEXT_POINTS, s->n);
		if (nt->eval_from_ms || nt->eval_to_ms)
			os(o, ", * = evaluated");
		of(o, "\n    %-19s", "TIME (UTC)");
		for (c = 0; c < 4; c++)
			if (cols[c])
				of(o, "  %*s", (int)cw[c], heads[c]);
		os(o, "\n");
		for (i = first; i < s->n; i++) {
			fmt_time(s->t_ms[i], t);
			of(o, "  %c %s", in_window(nt, s->t_ms[i]) ? '*' : ' ', t);
			for (c = 0; c < 4; c++) {
				if (!cols[c])
					continue;
				fmt_num(isfinite(cols[c][i]) ? cols[c][i] : NAN, num, sizeof num);
				of(o, "  %*s", (int)cw[c], num);
			}
			os(o, "\n");
		}
	}

	if (nt->n_contribs && nt->contribs) {
		size_t nc = nt->n_contribs < TW_NOTICE_MAX_CONTRIBS ? nt->n_contribs : TW_NOTICE_MAX_CONTRIBS;
		size_t vw = 0, cw = 0;
		os(o, "\nTop contributors\n");
		for (i = 0; i < nc; i++) {
			vw = umax(vw, umin(clean_len(nt->contribs[i].value), CONTRIB_MAX));
			snprintf(num, sizeof num, "%llu", (unsigned long long)nt->contribs[i].count);
			cw = umax(cw, strlen(num));
		}
		/* Groups in order of first appearance of their kind. */
		for (i = 0; i < nc; i++) {
			const char *k = contrib_kind(nt->contribs, i);
			size_t j;
			if (kind_seen(nt->contribs, i))
				continue;
			os(o, "  ");
			put_clean(o, has(k) ? k : "Other", 0, 0);
			os(o, "\n");
			for (j = i; j < nc; j++) {
				if (strcmp(contrib_kind(nt->contribs, j), k) != 0)
					continue;
				os(o, "    ");
				size_t l = put_clean(o, nt->contribs[j].value, 0, CONTRIB_MAX);
				pad(o, vw - l);
				of(o, "  %*llu\n", (int)cw, (unsigned long long)nt->contribs[j].count);
			}
		}
	}

	if (nrec && nt->records) {
		int c;
		os(o, "\nTop records");
		if (nt->records_total > nrec)
			of(o, " (%zu of %llu)", nrec, (unsigned long long)nt->records_total);
		os(o, "\n");
		for (c = 0; c < 7; c++)
			w[c] = strlen(rec_heads[c]);
		for (i = 0; i < nrec; i++)
			for (c = 0; c < 7; c++)
				w[c] = umax(w[c], cell_w(rec_cell(&nt->records[i], c, t), c));
		os(o, "  ");
		for (c = 0; c < 7; c++) {
			os(o, rec_heads[c]);
			if (c < 6)
				pad(o, w[c] - strlen(rec_heads[c]) + 2);
		}
		os(o, "\n");
		for (i = 0; i < nrec; i++) {
			os(o, "  ");
			for (c = 0; c < 7; c++) {
				const char *v = rec_cell(&nt->records[i], c, t);
				size_t l = put_clean(o, has(v) ? v : "-", 0, c == 6 ? 0 : CELL_MAX);
				if (c < 6)
					pad(o, w[c] - l + 2);
			}
			os(o, "\n");
		}
	}

	if (nt->n_commands && nt->commands) {
		size_t nc = nt->n_commands < TW_NOTICE_MAX_COMMANDS ? nt->n_commands : TW_NOTICE_MAX_COMMANDS;
		os(o, "\nDig further\n");
		for (i = 0; i < nc; i++) {
			if (!has(nt->commands[i]))
				continue;
			os(o, "  $ ");
			put_clean(o, nt->commands[i], 0, 0);
			os(o, "\n");
		}
	}
	if (has(nt->link)) {
		os(o, "\nView this alarm: ");
		put_clean(o, nt->link, 0, 0);
		os(o, "\n");
	}
	os(o, "\n-- \nSent by trailwatch.\n");
}

/* ---- HTML ------------------------------------------------------------------------------------ */

#define FONT "font-family:Arial,Helvetica,sans-serif;"
#define MONO "font-family:Menlo,Consolas,'DejaVu Sans Mono',monospace;"
#define TH "style=\"" FONT "font-size:12px;text-align:left;padding:4px 8px;border-bottom:1px solid #ccc;color:#555;white-space:nowrap\""
#define TD "style=\"" FONT "font-size:13px;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top\""
#define TDM "style=\"" MONO "font-size:12px;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top;word-break:break-all\""
#define TDK "style=\"" FONT "font-size:13px;padding:3px 12px 3px 0;color:#555;vertical-align:top;white-space:nowrap;width:110px\""
#define TDV "style=\"" FONT "font-size:13px;padding:3px 0;vertical-align:top\""
#define TDS "style=\"" FONT "font-size:13px;padding:6px 8px 2px 8px;vertical-align:top\""
#define TDL "style=\"" MONO "font-size:12px;line-height:1.5;padding:0 8px 6px 8px;border-bottom:1px solid #e6e6e6;word-break:break-all\""
#define H2 "<h2 style=\"" FONT "font-size:16px;color:#222;margin:20px 0 6px 0\">"

static const int short_cols[4] = { 0, 2, 5, 3 }; /* time, event, error, source IP */
static const int long_cols[3] = { 1, 4, 6 };     /* principal, resource, event id */
static const char *const long_names[3] = { "principal", "resource", "event id" };

static const char *state_bg(enum tw_notice_state s)
{
	return s == TW_NOTICE_ALARM ? "#c62828" : s == TW_NOTICE_OK ? "#2e7d32" : "#616161";
}

static int is_http(const char *u)
{
	return has(u) && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

static void hkv(struct out *o, const char *k, const char *v, int mono)
{
	if (!has(v))
		return;
	of(o, "<tr><td " TDK ">%s</td><td %s>", k, mono ? "style=\"" MONO "font-size:12px;padding:3px 0\"" : TDV);
	put_clean(o, v, 1, 0);
	os(o, "</td></tr>\n");
}

static void swatch(struct out *o, unsigned idx, const char *label)
{
	const uint8_t *p = tw_chart_palette() + 3 * idx;
	of(o, "<span style=\"display:inline-block;width:12px;height:12px;background:#%02x%02x%02x;"
	      "vertical-align:middle;margin:0 4px 0 12px\"></span>%s",
	   p[0], p[1], p[2], label);
}

enum tw_rc tw_email_render_html(const struct tw_alarm_notice *nt, const char *cid, struct tw_buf *html,
				struct tw_err *err)
{
	struct out oo = { html, err, TW_OK }, *o = &oo;
	const struct tw_notice_series *s = &nt->series;
	char t[24], num[40], metric[256];
	size_t i, start = html->n, nrec = nt->n_records < TW_NOTICE_MAX_RECORDS ? nt->n_records : TW_NOTICE_MAX_RECORDS;

	os(o, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	subject_line(o, nt, 1);
	os(o, "</title></head>\n<body style=\"margin:0;padding:16px;background:#f3f3f3\">\n"
	      "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" width=\"680\" "
	      "style=\"border-collapse:collapse;background:#ffffff;border:1px solid #ddd;max-width:680px\">\n");
	of(o, "<tr><td style=\"background:%s;color:#ffffff;padding:14px 20px;" FONT "font-size:18px;font-weight:bold\">",
	   state_bg(nt->new_state));
	subject_line(o, nt, 1);
	os(o, "</td></tr>\n<tr><td style=\"padding:16px 20px\">\n");
	os(o, "<p style=\"" FONT "font-size:14px;line-height:1.5;color:#222;margin:0 0 12px 0\">");
	summary(o, nt, 1);
	os(o, "</p>\n");

	if (cid) {
		os(o, "<img src=\"cid:");
		put_clean(o, cid, 1, 0);
		of(o, "\" width=\"%d\" height=\"%d\" alt=\"Chart of ", TW_CHART_W, TW_CHART_H);
		put_clean(o, has(nt->metric_name) ? nt->metric_name : "the metric", 1, 0);
		os(o, " around the state change\" style=\"display:block;border:1px solid #ddd;max-width:100%\">\n");
		os(o, "<div style=\"" FONT "font-size:12px;color:#555;margin:6px 0 0 0\">");
		swatch(o, TW_CHART_LINE, "metric");
		if (nt->has_threshold)
			swatch(o, TW_CHART_THRESHOLD, "threshold");
		if (s->lower && s->upper)
			swatch(o, TW_CHART_BAND, "expected band");
		if (nt->eval_from_ms || nt->eval_to_ms)
			swatch(o, TW_CHART_HILITE, "evaluated periods");
		os(o, "</div>\n");
	}

	os(o, H2 "Alarm</h2>\n<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">\n");
	hkv(o, "Name", nt->alarm_name, 0);
	hkv(o, "Description", nt->description, 0);
	snprintf(metric, sizeof metric, "%s -> %s", tw_notice_state_str(nt->old_state), tw_notice_state_str(nt->new_state));
	hkv(o, "State change", metric, 0);
	fmt_time(nt->change_ms, t);
	snprintf(metric, sizeof metric, "%s UTC", t);
	hkv(o, "Changed at", metric, 0);
	hkv(o, "Account", nt->account_id, 0);
	hkv(o, "Region", nt->region, 0);
	os(o, "</table>\n");

	os(o, H2 "Rule</h2>\n");
	if (has(nt->comparison)) {
		os(o, "<p style=\"" FONT "font-size:13px;color:#222;margin:0 0 6px 0\">");
		rule_sentence(o, nt, 1);
		os(o, "</p>\n");
	}
	os(o, "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">\n");
	snprintf(metric, sizeof metric, "%s%s%s", nt->metric_namespace ? nt->metric_namespace : "",
		 has(nt->metric_namespace) && has(nt->metric_name) ? "/" : "", nt->metric_name ? nt->metric_name : "");
	hkv(o, "Metric", metric, 0);
	hkv(o, "Statistic", nt->statistic, 0);
	if (nt->period_s > 0) {
		snprintf(num, sizeof num, "%lld seconds", (long long)nt->period_s);
		hkv(o, "Period", num, 0);
	}
	if (nt->has_threshold) {
		fmt_num(nt->threshold, num, sizeof num);
		hkv(o, "Threshold", num, 0);
	}
	hkv(o, "Missing data", nt->treat_missing, 0);
	if (nt->has_anomaly) {
		fmt_num(nt->expected, num, sizeof num);
		hkv(o, "Expected", num, 0);
		fmt_num(nt->observed, num, sizeof num);
		hkv(o, "Observed", num, 0);
		if (nt->band_k > 0) {
			fmt_num(nt->band_k, num, sizeof num);
			snprintf(metric, sizeof metric, "%s standard deviations", num);
			hkv(o, "Band width", metric, 0);
		}
	}
	os(o, "</table>\n");

	if (nt->n_contribs && nt->contribs) {
		size_t nc = nt->n_contribs < TW_NOTICE_MAX_CONTRIBS ? nt->n_contribs : TW_NOTICE_MAX_CONTRIBS;
		os(o, H2 "Top contributors</h2>\n<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">\n");
		for (i = 0; i < nc; i++) {
			const char *k = contrib_kind(nt->contribs, i);
			size_t j;
			if (kind_seen(nt->contribs, i))
				continue;
			os(o, "<tr><th colspan=\"2\" " TH ">");
			put_clean(o, has(k) ? k : "Other", 1, 0);
			os(o, "</th></tr>\n");
			for (j = i; j < nc; j++) {
				if (strcmp(contrib_kind(nt->contribs, j), k) != 0)
					continue;
				os(o, "<tr><td " TDM ">");
				put_clean(o, nt->contribs[j].value, 1, 0);
				of(o, "</td><td " TD " align=\"right\">%llu</td></tr>\n",
				   (unsigned long long)nt->contribs[j].count);
			}
		}
		os(o, "</table>\n");
	}

	if (nrec && nt->records) {
		int c;
		os(o, H2 "Top records");
		if (nt->records_total > nrec)
			of(o, " <span style=\"font-weight:normal;color:#555;font-size:13px\">(%zu of %llu)</span>", nrec,
			   (unsigned long long)nt->records_total);
		/* Two rows per record: the short columns, then the long identifiers in full. */
		os(o, "</h2>\n<table cellpadding=\"0\" cellspacing=\"0\" width=\"100%\" style=\"border-collapse:collapse\">\n<tr>");
		for (c = 0; c < 4; c++)
			of(o, "<th %s>%s</th>", TH, rec_heads[short_cols[c]]);
		os(o, "</tr>\n");
		for (i = 0; i < nrec; i++) {
			const struct tw_notice_record *r = &nt->records[i];
			os(o, "<tr>");
			for (c = 0; c < 4; c++) {
				const char *v = rec_cell(r, short_cols[c], t);
				os(o, "<td " TDS " nowrap>");
				if (short_cols[c] == 5 && has(v))
					os(o, "<span style=\"color:#c62828\">");
				put_clean(o, has(v) ? v : "-", 1, 0);
				if (short_cols[c] == 5 && has(v))
					os(o, "</span>");
				os(o, "</td>");
			}
			os(o, "</tr>\n<tr><td colspan=\"4\" " TDL ">");
			for (c = 0; c < 3; c++) {
				const char *v = rec_cell(r, long_cols[c], t);
				if (!has(v))
					continue;
				of(o, "<span style=\"" FONT "color:#777\">%s</span>&nbsp;", long_names[c]);
				put_clean(o, v, 1, 0);
				os(o, "<br>");
			}
			os(o, "</td></tr>\n");
		}
		os(o, "</table>\n");
	}

	if (nt->n_commands && nt->commands) {
		size_t nc = nt->n_commands < TW_NOTICE_MAX_COMMANDS ? nt->n_commands : TW_NOTICE_MAX_COMMANDS;
		os(o, H2 "Dig further</h2>\n<pre style=\"" MONO "font-size:12px;background:#f6f8fa;border:1px solid #ddd;"
		      "padding:8px 10px;margin:0;white-space:pre-wrap;overflow-wrap:anywhere\">");
		for (i = 0; i < nc; i++) {
			if (!has(nt->commands[i]))
				continue;
			os(o, "$ ");
			put_clean(o, nt->commands[i], 1, 0);
			os(o, "\n");
		}
		os(o, "</pre>\n");
	}
	if (has(nt->link)) {
		os(o, "<p style=\"" FONT "font-size:13px;margin:16px 0 0 0\">");
		if (is_http(nt->link)) {
			os(o, "<a href=\"");
			put_clean(o, nt->link, 1, 0);
			os(o, "\" style=\"color:#1f6fc5\">View this alarm</a>");
		} else {
			os(o, "Alarm: ");
			put_clean(o, nt->link, 1, 0);
		}
		os(o, "</p>\n");
	}
	os(o, "</td></tr>\n<tr><td style=\"padding:10px 20px;border-top:1px solid #eee;" FONT
	      "font-size:11px;color:#888\">Sent by trailwatch.</td></tr>\n</table>\n</body></html>\n");
	if (o->rc)
		html->n = start;
	return o->rc;
}

/* ---- MIME ------------------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int contains(const struct tw_buf *b, const char *needle)
{
	size_t l = strlen(needle);
	return b->n >= l && memmem(b->p, b->n, needle, l) != NULL;
}

enum tw_rc tw_email_render(const struct tw_alarm_notice *nt, struct tw_buf *subject, struct tw_buf *text,
			   struct tw_buf *mime, struct tw_err *err)
{
	struct tw_buf txt, html, png, qtext, qhtml, b64;
	size_t s0 = subject ? subject->n : 0, t0 = text ? text->n : 0, m0 = mime ? mime->n : 0;
	size_t cap = mime ? mime->max : (text ? text->max : 1u << 20);
	char cid[64], b1[64], b2[64];
	uint64_t h;
	enum tw_rc rc = TW_OK;
	struct out o;

	if (!nt || !has(nt->alarm_name))
		return tw_err_set(err, TW_EINVAL, "email: the notice has no alarm name");
	tw_buf_init(&txt, cap);
	tw_buf_init(&html, cap);
	tw_buf_init(&png, cap);
	tw_buf_init(&qtext, cap);
	tw_buf_init(&qhtml, cap);
	tw_buf_init(&b64, cap);

	if (subject) {
		o = (struct out){ subject, err, TW_OK };
		subject_line(&o, nt, 0);
		if ((rc = o.rc))
			goto done;
	}
	o = (struct out){ &txt, err, TW_OK };
	text_body(&o, nt);
	if ((rc = o.rc))
		goto done;
	if (text && (rc = tw_buf_append(text, txt.p, txt.n, err)))
		goto done;
	if (!mime)
		goto done;

	if ((rc = tw_chart_png(nt, TW_CHART_W, TW_CHART_H, &png, err)))
		goto done;
	h = fnv(0xcbf29ce484222325ULL, png.p, png.n);
	snprintf(cid, sizeof cid, "chart.%016llx@trailwatch", (unsigned long long)h);
	if ((rc = tw_email_render_html(nt, cid, &html, err)) || (rc = tw_email_qp_encode(txt.p, txt.n, &qtext, err)) ||
	    (rc = tw_email_qp_encode(html.p, html.n, &qhtml, err)) ||
	    (rc = tw_email_base64_encode(png.p, png.n, &b64, err)))
		goto done;
	h = fnv(fnv(h, txt.p, txt.n), html.p, html.n);
	for (unsigned k = 0;; k++) {
		snprintf(b1, sizeof b1, "=_tw_alt_%016llx_%u", (unsigned long long)h, k);
		snprintf(b2, sizeof b2, "=_tw_rel_%016llx_%u", (unsigned long long)h, k);
		if (!contains(&qtext, b1) && !contains(&qhtml, b1) && !contains(&b64, b1) && !contains(&qtext, b2) &&
		    !contains(&qhtml, b2) && !contains(&b64, b2))
			break;
		if (k == 1000) {
			rc = tw_err_set(err, TW_EINVAL, "email: no MIME boundary absent from the content");
			goto done;
		}
	}
	o = (struct out){ mime, err, TW_OK };
	of(&o, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", b1);
	os(&o, "This is a multi-part message in MIME format.\r\n");
	of(&o, "\r\n--%s\r\n", b1);
	os(&o, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	oput(&o, qtext.p, qtext.n);
	of(&o, "\r\n--%s\r\n", b1);
	of(&o, "Content-Type: multipart/related; type=\"text/html\";\r\n boundary=\"%s\"\r\n\r\n", b2);
	of(&o, "--%s\r\n", b2);
	os(&o, "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	oput(&o, qhtml.p, qhtml.n);
	of(&o, "\r\n--%s\r\n", b2);
	os(&o, "Content-Type: image/png; name=\"chart.png\"\r\nContent-Transfer-Encoding: base64\r\n");
	of(&o, "Content-ID: <%s>\r\nContent-Disposition: inline; filename=\"chart.png\"\r\n\r\n", cid);
	oput(&o, b64.p, b64.n);
	of(&o, "\r\n--%s--\r\n", b2);
	of(&o, "\r\n--%s--\r\n", b1);
	rc = o.rc;
done:
	if (rc) {
		if (subject)
			subject->n = s0;
		if (text)
			text->n = t0;
		if (mime)
			mime->n = m0;
	}
	tw_buf_free(&txt);
	tw_buf_free(&html);
	tw_buf_free(&png);
	tw_buf_free(&qtext);
	tw_buf_free(&qhtml);
	tw_buf_free(&b64);
	return rc;
}
