/* SPDX-License-Identifier: Apache-2.0 */
/* cli/qfmt.c: how query results look: JSON lines (core/eventfmt.c for events, objects for table
 * rows), CSV with a header, aligned tables fitted to the terminal (truncating with an ellipsis) and
 * horizontal bar charts of bin() series. Text from records never reaches the terminal raw: control
 * bytes become '?' in tables. Appends to the caller's tw_cli_out; prints nothing else. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/eventfmt.h"
#include "core/json.h"
#include "core/time.h"
#include "query/query.h"

#define CELL_MAX 200 /* bytes of a table cell kept before fitting */

/* A table being built: cells are slices of text. */
struct tab {
	size_t ncols;          /* columns */
	const char **names;    /* header (borrowed) */
	struct tw_buf text;    /* every cell's bytes */
	size_t *off, *len;     /* per cell (row-major) */
	unsigned char *bad;    /* per row: 1 when the row is a failed event */
	size_t nrows, cap;     /* rows in use, allocated */
};

int tw_cli_term_width(int fd)
{
	struct winsize ws;
	const char *c;

	if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	c = getenv("COLUMNS");
	if (c && *c) {
		long v = strtol(c, NULL, 10);
		if (v > 0 && v < 10000)
			return (int)v;
	}
	return 0;
}

static void tab_init(struct tab *t, const char **names, size_t ncols)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	t->names = names;
	tw_buf_init(&t->text, (size_t)1 << 34);
}

static void tab_free(struct tab *t)
{
	tw_buf_free(&t->text);
	free(t->off);
	free(t->len);
	free(t->bad);
}

static enum tw_rc tab_row(struct tab *t, int bad, struct tw_err *err)
{
	if (t->nrows == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		size_t *no = realloc(t->off, nc * t->ncols * sizeof *no);
		if (no)
			t->off = no;
		size_t *nl = realloc(t->len, nc * t->ncols * sizeof *nl);
		if (nl)
			t->len = nl;
		unsigned char *nb = realloc(t->bad, nc);
		if (nb)
			t->bad = nb;
		if (!no || !nl || !nb)
			return tw_err_set(err, TW_ENOMEM, "out of memory for %zu table rows", t->nrows);
		t->cap = nc;
	}
	t->bad[t->nrows] = (unsigned char)bad;
	memset(t->len + t->nrows * t->ncols, 0, t->ncols * sizeof *t->len);
	memset(t->off + t->nrows * t->ncols, 0, t->ncols * sizeof *t->off);
	t->nrows++;
	return TW_OK;
}

/* Sets column c of the last row (copied; cut to CELL_MAX bytes on a UTF-8 boundary). */
static enum tw_rc tab_set(struct tab *t, size_t c, const char *p, size_t n, struct tw_err *err)
{
	size_t i = (t->nrows - 1) * t->ncols + c;
	if (n > CELL_MAX) {
		n = CELL_MAX;
		while (n && ((unsigned char)p[n] & 0xC0) == 0x80)
			n--;
	}
	t->off[i] = t->text.n;
	t->len[i] = n;
	return tw_buf_append(&t->text, p, n, err);
}

/* Display columns of p[0..n): UTF-8 code points. */
static size_t dwidth(const char *p, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		w += ((unsigned char)p[i] & 0xC0) != 0x80;
	return w;
}

/* Appends p[0..n) cut to w display columns (an ellipsis marks a cut), control bytes as '?',
 * padded with spaces to w unless last. */
static enum tw_rc put_cell(struct tw_buf *b, const char *p, size_t n, size_t w, int last, struct tw_err *err)
{
	size_t dw = dwidth(p, n), used = 0, i = 0, lim = dw > w ? (w ? w - 1 : 0) : dw;
	enum tw_rc rc = TW_OK;

	while (i < n && used < lim) {
		size_t j = i + 1;
		while (j < n && ((unsigned char)p[j] & 0xC0) == 0x80)
			j++;
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			rc = tw_buf_putc(b, '?', err);
		else
			rc = tw_buf_append(b, p + i, j - i, err);
		if (rc != TW_OK)
			return rc;
		used++;
		i = j;
	}
	if (dw > w && w) {
		if ((rc = tw_buf_append(b, "\xe2\x80\xa6", 3, err)) != TW_OK)
			return rc;
		used++;
	}
	while (!last && used < w && rc == TW_OK) {
		rc = tw_buf_putc(b, ' ', err);
		used++;
	}
	return rc;
}

static int is_time_col(const char *name)
{
	return !strncmp(name, "bin(", 4) || !strcmp(name, "@timestamp") || !strcmp(name, "time");
}

static enum tw_rc tab_print(struct tw_cli_out *o, const struct tab *t, const struct tw_cli_qfmt *f,
			    struct tw_err *err)
{
	size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof *w);
	size_t total = 0, lead = f->mark && !f->color ? 2 : 0;
	enum tw_rc rc = TW_OK;

	if (!w)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (size_t c = 0; c < t->ncols; c++) {
		w[c] = dwidth(t->names[c], strlen(t->names[c]));
		for (size_t r = 0; r < t->nrows; r++) {
			size_t i = r * t->ncols + c, d = dwidth(t->text.p + t->off[i], t->len[i]);
			if (d > w[c])
				w[c] = d;
		}
		total += w[c] + (c ? 2 : 0);
	}
	/* Fit: shrink the widest column one step at a time (never below 6). */
	while (f->width > 0 && total + lead > (size_t)f->width) {
		size_t big = t->ncols;
		for (size_t c = 0; c < t->ncols; c++) /* timestamps are never cut */
			if (!is_time_col(t->names[c]) && (big == t->ncols || w[c] > w[big]))
				big = c;
		if (big == t->ncols || w[big] <= 6)
			break;
		w[big]--;
		total--;
	}
	for (size_t r = 0; r <= t->nrows && rc == TW_OK; r++) {
		int bad = r && t->bad[r - 1];
		if (lead)
			rc = tw_buf_append(&o->buf, r ? (bad ? "! " : "  ") : "  ", 2, err);
		if (rc == TW_OK && bad && f->color)
			rc = tw_buf_append(&o->buf, "\033[1;31m", 7, err);
		for (size_t c = 0; c < t->ncols && rc == TW_OK; c++) {
			const char *p = r ? t->text.p + t->off[(r - 1) * t->ncols + c] : t->names[c];
			size_t n = r ? t->len[(r - 1) * t->ncols + c] : strlen(t->names[c]);
			if (c)
				rc = tw_buf_append(&o->buf, "  ", 2, err);
			if (rc == TW_OK)
				rc = put_cell(&o->buf, p, n, w[c], c + 1 == t->ncols, err);
		}
		if (rc == TW_OK && bad && f->color)
			rc = tw_buf_append(&o->buf, "\033[0m", 4, err);
		if (rc == TW_OK)
			rc = tw_buf_putc(&o->buf, '\n', err);
		if (rc == TW_OK && tw_cli_out_maybe_flush(o))
			break;
	}
	free(w);
	return rc;
}

static enum tw_rc csv_cell(struct tw_buf *b, const char *p, size_t n, struct tw_err *err)
{
	enum tw_rc rc;
	if (!memchr(p ? p : "", ',', n) && !memchr(p ? p : "", '"', n) && !memchr(p ? p : "", '\n', n) &&
	    !memchr(p ? p : "", '\r', n))
		return tw_buf_append(b, p, n, err);
	if ((rc = tw_buf_putc(b, '"', err)) != TW_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' && (rc = tw_buf_putc(b, '"', err)) != TW_OK)
			return rc;
		if ((rc = tw_buf_putc(b, p[i], err)) != TW_OK)
			return rc;
	}
	return tw_buf_putc(b, '"', err);
}

static enum tw_rc tab_csv(struct tw_cli_out *o, const struct tab *t, struct tw_err *err)
{
	enum tw_rc rc = TW_OK;
	for (size_t r = 0; r <= t->nrows && rc == TW_OK; r++) {
		for (size_t c = 0; c < t->ncols && rc == TW_OK; c++) {
			const char *p = r ? t->text.p + t->off[(r - 1) * t->ncols + c] : t->names[c];
			size_t n = r ? t->len[(r - 1) * t->ncols + c] : strlen(t->names[c]);
			if (c)
				rc = tw_buf_putc(&o->buf, ',', err);
			if (rc == TW_OK)
				rc = csv_cell(&o->buf, p, n, err);
		}
		if (rc == TW_OK)
			rc = tw_buf_putc(&o->buf, '\n', err);
		if (rc == TW_OK && tw_cli_out_maybe_flush(o))
			break;
	}
	return rc;
}

/* ---- cells of events ------------------------------------------------------------------------ */

static struct tw_str event_cell(const struct tw_event *ev, const char *col, char *tbuf, int full)
{
	struct tw_str s = { NULL, 0 };

	if (!strcmp(col, "time")) {
		s.p = tbuf;
		s.n = tw_time_format(ev->time_ms, tbuf);
	} else if (!strcmp(col, "principal")) {
		s = ev->f[TW_F_PRINCIPAL];
	} else if (!strcmp(col, "event")) {
		s = ev->f[TW_F_EVENT_NAME];
		if (!s.n && ev->kind == TW_KIND_CWLOG) {
			s = ev->f[TW_F_MESSAGE];
			const char *nl = s.n ? memchr(s.p, '\n', s.n) : NULL;
			if (nl && !full)
				s.n = (size_t)(nl - s.p);
		}
	} else if (!strcmp(col, "source")) {
		s = ev->f[TW_F_EVENT_SOURCE];
		if (!full && s.n > 14 && !memcmp(s.p + s.n - 14, ".amazonaws.com", 14))
			s.n -= 14;
		if (!s.n && ev->kind == TW_KIND_CWLOG)
			s = ev->f[TW_F_LOG_GROUP];
	} else if (!strcmp(col, "region")) {
		s = ev->f[TW_F_REGION];
	} else if (!strcmp(col, "ip")) {
		s = ev->f[TW_F_SOURCE_IP];
	} else if (!strcmp(col, "error")) {
		s = ev->f[TW_F_ERROR_CODE];
	} else if (!strcmp(col, "resource")) {
		if (ev->nresources)
			s = ev->resources[0];
	}
	if (!s.p)
		s.n = 0;
	return s;
}

enum tw_rc tw_cli_qfmt_events(struct tw_cli_out *o, const struct tw_event *const *evs, size_t n,
			      const char *const *cols, size_t ncols, const struct tw_cli_qfmt *f, struct tw_err *err)
{
	enum tw_rc rc = TW_OK;
	struct tab t;

	if (f->format == TW_CLI_QF_JSON) {
		for (size_t i = 0; i < n && rc == TW_OK; i++) {
			if (f->raw)
				rc = tw_buf_append(&o->buf, evs[i]->raw.p, evs[i]->raw.n, err);
			else
				rc = tw_event_write_json(&o->buf, evs[i], 0, err);
			if (rc == TW_OK)
				rc = tw_buf_putc(&o->buf, '\n', err);
			if (rc == TW_OK && tw_cli_out_maybe_flush(o))
				break;
		}
		return rc;
	}
	tab_init(&t, (const char **)cols, ncols);
	for (size_t i = 0; i < n && rc == TW_OK; i++) {
		char tbuf[TW_TIME_BUFSZ];
		rc = tab_row(&t, evs[i]->f[TW_F_ERROR_CODE].n > 0, err);
		for (size_t c = 0; c < ncols && rc == TW_OK; c++) {
			struct tw_str s = event_cell(evs[i], cols[c], tbuf, f->format == TW_CLI_QF_CSV);
			rc = tab_set(&t, c, s.p ? s.p : "", s.n, err);
		}
	}
	if (rc == TW_OK)
		rc = f->format == TW_CLI_QF_CSV ? tab_csv(o, &t, err) : tab_print(o, &t, f, err);
	tab_free(&t);
	return rc;
}

/* ---- table rows (stats, fields) -------------------------------------------------------------- */


/* The text of a value for tables and CSV (time columns as timestamps). */
static struct tw_str val_text(const struct tw_qval *v, const char *name, char *tbuf)
{
	if (v->type == TW_QV_NUM && is_time_col(name)) {
		struct tw_str s = { tbuf, tw_time_format((int64_t)v->num, tbuf) };
		return s;
	}
	if (v->type == TW_QV_NULL || !v->s.p)
		return (struct tw_str){ "", 0 };
	return v->s;
}

static enum tw_rc rows_json(struct tw_cli_out *o, struct tw_qexec *x, struct tw_err *err)
{
	size_t nc = tw_qexec_ncols(x);
	enum tw_rc rc = TW_OK;

	for (size_t i = 0; i < tw_qexec_nrows(x) && rc == TW_OK; i++) {
		const struct tw_qval *v;
		if ((rc = tw_qexec_row(x, i, &v, err)) != TW_OK)
			break;
		rc = tw_buf_putc(&o->buf, '{', err);
		for (size_t c = 0; c < nc && rc == TW_OK; c++) {
			const char *name = tw_qexec_col_name(x, c);
			char tbuf[TW_TIME_BUFSZ];
			if (c)
				rc = tw_buf_putc(&o->buf, ',', err);
			if (rc == TW_OK)
				rc = tw_json_write_str(&o->buf, name, strlen(name), err);
			if (rc == TW_OK)
				rc = tw_buf_putc(&o->buf, ':', err);
			if (rc != TW_OK)
				break;
			if (v[c].type == TW_QV_NULL)
				rc = tw_buf_append(&o->buf, "null", 4, err);
			else if (v[c].type == TW_QV_NUM && is_time_col(name)) {
				struct tw_str s = val_text(&v[c], name, tbuf);
				rc = tw_json_write_str(&o->buf, s.p, s.n, err);
			} else if (v[c].type == TW_QV_NUM)
				rc = tw_buf_append(&o->buf, v[c].s.p, v[c].s.n, err);
			else
				rc = tw_json_write_str(&o->buf, v[c].s.p ? v[c].s.p : "", v[c].s.n, err);
		}
		if (rc == TW_OK)
			rc = tw_buf_append(&o->buf, "}\n", 2, err);
		if (rc == TW_OK && tw_cli_out_maybe_flush(o))
			break;
	}
	return rc;
}

static const char *const default_cols[] = { "time", "principal", "event", "source", "region", "ip", "error",
					    "resource" };

enum tw_rc tw_cli_qfmt_results(struct tw_cli_out *o, struct tw_qexec *x, const struct tw_cli_qfmt *f,
			       struct tw_err *err)
{
	size_t nc = tw_qexec_ncols(x), nr = tw_qexec_nrows(x);
	enum tw_rc rc = TW_OK;

	if (!nc) {
		const struct tw_event **evs = malloc((nr ? nr : 1) * sizeof *evs);
		if (!evs)
			return tw_err_set(err, TW_ENOMEM, "out of memory for %zu rows", nr);
		for (size_t i = 0; i < nr; i++)
			evs[i] = tw_qexec_row_event(x, i);
		rc = tw_cli_qfmt_events(o, evs, nr, default_cols, sizeof default_cols / sizeof *default_cols, f, err);
		free(evs);
		return rc;
	}
	if (f->format == TW_CLI_QF_JSON && !(f->raw && !tw_qexec_is_stats(x)))
		return rows_json(o, x, err);
	if (f->format == TW_CLI_QF_JSON) { /* --raw with fields: the records themselves */
		for (size_t i = 0; i < nr && rc == TW_OK; i++) {
			const struct tw_event *ev = tw_qexec_row_event(x, i);
			rc = tw_buf_append(&o->buf, ev->raw.p, ev->raw.n, err);
			if (rc == TW_OK)
				rc = tw_buf_putc(&o->buf, '\n', err);
			if (rc == TW_OK && tw_cli_out_maybe_flush(o))
				break;
		}
		return rc;
	}
	const char **names = malloc(nc * sizeof *names);
	struct tab t;
	if (!names)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (size_t c = 0; c < nc; c++)
		names[c] = tw_qexec_col_name(x, c);
	tab_init(&t, names, nc);
	for (size_t i = 0; i < nr && rc == TW_OK; i++) {
		const struct tw_qval *v;
		const struct tw_event *ev = tw_qexec_row_event(x, i);
		if ((rc = tw_qexec_row(x, i, &v, err)) != TW_OK)
			break;
		rc = tab_row(&t, ev && ev->f[TW_F_ERROR_CODE].n > 0, err);
		for (size_t c = 0; c < nc && rc == TW_OK; c++) {
			char tbuf[TW_TIME_BUFSZ];
			struct tw_str s = val_text(&v[c], names[c], tbuf);
			rc = tab_set(&t, c, s.p, s.n, err);
		}
	}
	if (rc == TW_OK)
		rc = f->format == TW_CLI_QF_CSV ? tab_csv(o, &t, err) : tab_print(o, &t, f, err);
	tab_free(&t);
	free(names);
	return rc;
}

/* ---- charts ---------------------------------------------------------------------------------- */

enum tw_rc tw_cli_qfmt_chart(struct tw_cli_out *o, struct tw_qexec *x, int width, int utf8, struct tw_err *err)
{
	size_t nc = tw_qexec_ncols(x), nr = tw_qexec_nrows(x), vcol = nc, labw = 0, numw = 1;
	int have_bin = 0;
	double max = 0;
	struct tw_buf lab;
	enum tw_rc rc = TW_OK;

	for (size_t c = 0; c < nc; c++)
		if (!strncmp(tw_qexec_col_name(x, c), "bin(", 4))
			have_bin = 1;
	if (!tw_qexec_is_stats(x) || !have_bin)
		return tw_err_set(err, TW_EINVAL, "--chart needs a stats query grouped by bin(...), such as "
						  "'stats count(*) by bin(1h)'");
	/* The value column: the last one holding numbers. */
	for (size_t i = 0; i < nr; i++) {
		const struct tw_qval *v;
		if ((rc = tw_qexec_row(x, i, &v, err)) != TW_OK)
			return rc;
		for (size_t c = nc; c-- > 0;)
			if (v[c].type == TW_QV_NUM && strncmp(tw_qexec_col_name(x, c), "bin(", 4)) {
				if (vcol == nc || c > vcol)
					vcol = c;
				break;
			}
	}
	if (vcol == nc)
		return tw_err_set(err, TW_EINVAL, "--chart: no numeric column to draw");
	if (width <= 0)
		width = 80;
	tw_buf_init(&lab, 1u << 20);
	/* Pass 1: widths and the maximum; pass 2: draw. */
	for (int pass = 0; pass < 2 && rc == TW_OK; pass++) {
		for (size_t i = 0; i < nr && rc == TW_OK; i++) {
			const struct tw_qval *v;
			char tbuf[TW_TIME_BUFSZ];
			if ((rc = tw_qexec_row(x, i, &v, err)) != TW_OK)
				break;
			tw_buf_reset(&lab);
			for (size_t c = 0; c < nc && rc == TW_OK; c++) {
				if (c == vcol)
					continue;
				struct tw_str s = val_text(&v[c], tw_qexec_col_name(x, c), tbuf);
				if (lab.n)
					rc = tw_buf_putc(&lab, ' ', err);
				if (rc == TW_OK)
					rc = tw_buf_append(&lab, s.p, s.n, err);
			}
			if (rc != TW_OK)
				break;
			double val = v[vcol].type == TW_QV_NUM ? v[vcol].num : 0;
			if (!pass) {
				size_t d = dwidth(lab.p ? lab.p : "", lab.n);
				labw = d > labw ? d : labw;
				numw = v[vcol].s.n > numw ? v[vcol].s.n : numw;
				max = val > max ? val : max;
				continue;
			}
			long room = (long)width - (long)labw - (long)numw - 3;
			size_t bar = room > 0 && max > 0 ? (size_t)(val / max * (double)room + 0.5) : 0;
			if (!bar && val > 0 && room > 0)
				bar = 1;
			rc = put_cell(&o->buf, lab.p ? lab.p : "", lab.n, labw, 0, err);
			if (rc == TW_OK)
				rc = tw_buf_printf(&o->buf, err, " %*.*s ", (int)numw, (int)v[vcol].s.n,
						   v[vcol].s.p ? v[vcol].s.p : "");
			for (size_t k = 0; k < bar && rc == TW_OK; k++)
				rc = utf8 ? tw_buf_append(&o->buf, "\xe2\x96\x88", 3, err) : tw_buf_putc(&o->buf, '#', err);
			if (rc == TW_OK)
				rc = tw_buf_putc(&o->buf, '\n', err);
			if (rc == TW_OK && tw_cli_out_maybe_flush(o))
				break;
		}
	}
	tw_buf_free(&lab);
	return rc;
}
