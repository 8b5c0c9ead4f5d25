/* SPDX-License-Identifier: Apache-2.0 */
/* cli/detect.c: `trailwatch detect SERIES.csv`: runs the anomaly band (alerts/band.h) over a
 * `timestamp,value` CSV and prints `timestamp,value,anomaly_score` (NAB's result layout), one row
 * per good input row, timestamp and value echoed byte for byte. Causal: each score depends only on
 * the rows up to and including its own. Bad rows are named (file:line: reason) on stderr, skipped,
 * and make the exit code 1. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/band.h"
#include "cli/cli.h"
#include "core/time.h"

#define CMD "detect"
#define OUT_FLUSH_AT (256 * 1024) /* stdout write size */
#define OUT_MAX (1024 * 1024)     /* pending output cap (flush_at + one row) */
#define LINE_MAX_BYTES 4096       /* longest accepted input line */
#define SHOW_MAX 20               /* bad rows printed before only counting */

/* Options of one run. */
struct detect_opts {
	double k;   /* band width in sigmas */
	int json;   /* 1: JSON lines instead of CSV */
	int band;   /* 1: also print expected, lower, upper, confidence */
};

static void usage(FILE *f)
{
	fputs("usage: trailwatch detect [--k K] [--band] [--format csv|json] SERIES.csv|-\n"
	      "\n"
	      "Runs the anomaly detection band (like CloudWatch's ANOMALY_DETECTION_BAND) over a\n"
	      "series and prints an anomaly score in [0,1] for every row. The model learns online:\n"
	      "level, trend, daily and weekly patterns and a robust scale; each score uses only the\n"
	      "rows up to and including its own, so the output is what a live alarm would have seen.\n"
	      "\n"
	      "input: CSV with a header line and the columns timestamp,value. Timestamps may be\n"
	      "  '2014-02-14 14:27:00' (UTC, as in NAB), ISO 8601 ('2014-02-14T14:27:00Z', offsets),\n"
	      "  or epoch seconds / milliseconds. '-' reads standard input.\n"
	      "output: CSV timestamp,value,anomaly_score (timestamp and value as in the input).\n"
	      "\n"
	      "options:\n"
	      "  --k K            band half-width in standard deviations (default 2); it sets the\n"
	      "                   band columns, not the score\n"
	      "  --band           add the columns expected,lower,upper,confidence\n"
	      "  -f, --format F   csv (default) or json (one object per line)\n"
	      "  -h, --help       this help\n"
	      "\n"
	      "Scores below 0.9 rank how rare the point's surprise is in this series' history\n"
	      "(0.45: as surprising as the worst 1% so far); 0.9 and above is a record: a value,\n"
	      "or a new level, beyond the whole range the series has shown. The rest of the same\n"
	      "event is damped so one event does not fire many times.\n"
	      "\n"
	      "exit codes: 0 ok, 1 some rows were bad (named on stderr, skipped), 2 usage error,\n"
	      "3 the input could not be read or the output written.\n",
	      f);
}

/* Trims spaces and one pair of double quotes; returns the inner slice. */
static struct tw_str field_inner(const char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		n--;
	if (n >= 2 && p[0] == '"' && p[n - 1] == '"')
		p++, n -= 2;
	return (struct tw_str){ p, n };
}

/* Parses a timestamp: everything tw_time_parse reads, plus epoch seconds with a fraction. */
static int parse_ts(struct tw_str s, int64_t *ms, struct tw_err *err)
{
	char tmp[64], *end;
	size_t dots = 0, i;
	double v;

	for (i = 0; i < s.n && ((s.p[i] >= '0' && s.p[i] <= '9') || s.p[i] == '.'); i++)
		dots += s.p[i] == '.';
	if (i == s.n && dots == 1 && s.n < sizeof tmp) {
		memcpy(tmp, s.p, s.n);
		tmp[s.n] = 0;
		v = strtod(tmp, &end);
		if (*end == 0 && isfinite(v)) {
			*ms = (int64_t)llround(v > 1e11 ? v : v * 1000.0);
			return 0;
		}
	}
	return tw_time_parse(s.p, s.n, ms, err) == TW_OK ? 0 : -1;
}

/* Parses a finite decimal number filling the whole slice. */
static int parse_value(struct tw_str s, double *v)
{
	char tmp[128], *end;

	if (s.n == 0 || s.n >= sizeof tmp)
		return -1;
	memcpy(tmp, s.p, s.n);
	tmp[s.n] = 0;
	errno = 0;
	*v = strtod(tmp, &end);
	return (*end == 0 && isfinite(*v)) ? 0 : -1;
}

/* Appends a double as JSON-safe text (finite only). */
static enum tw_rc put_num(struct tw_buf *b, double v, struct tw_err *err)
{
	return tw_buf_printf(b, err, "%.9g", v);
}

static enum tw_rc put_row(struct tw_cli_out *o, const struct detect_opts *op, struct tw_str ts,
			  struct tw_str val, double value, const struct tw_band_point *p, struct tw_err *err)
{
	struct tw_buf *b = &o->buf;
	enum tw_rc rc;

	if (!op->json) {
		if ((rc = tw_buf_append(b, ts.p, ts.n, err)) || (rc = tw_buf_putc(b, ',', err)) ||
		    (rc = tw_buf_append(b, val.p, val.n, err)) ||
		    (rc = tw_buf_printf(b, err, ",%.12f", p->score)))
			return rc;
		if (op->band &&
		    (rc = tw_buf_printf(b, err, ",%.9g,%.9g,%.9g,%.4f", p->expected, p->lower, p->upper,
					p->confidence)))
			return rc;
		return tw_buf_putc(b, '\n', err);
	}
	if ((rc = tw_buf_append(b, "{\"timestamp\":\"", 14, err)))
		return rc;
	for (size_t i = 0; i < ts.n; i++) {
		unsigned char ch = (unsigned char)ts.p[i];
		if (ch < 0x20 || ch == '"' || ch == '\\')
			rc = tw_buf_printf(b, err, "\\u%04x", ch);
		else
			rc = tw_buf_putc(b, (char)ch, err);
		if (rc)
			return rc;
	}
	if ((rc = tw_buf_append(b, "\",\"value\":", 10, err)) || (rc = put_num(b, value, err)) ||
	    (rc = tw_buf_printf(b, err, ",\"anomaly_score\":%.12f", p->score)))
		return rc;
	if (op->band &&
	    ((rc = tw_buf_append(b, ",\"expected\":", 12, err)) || (rc = put_num(b, p->expected, err)) ||
	     (rc = tw_buf_append(b, ",\"lower\":", 9, err)) || (rc = put_num(b, p->lower, err)) ||
	     (rc = tw_buf_append(b, ",\"upper\":", 9, err)) || (rc = put_num(b, p->upper, err)) ||
	     (rc = tw_buf_printf(b, err, ",\"confidence\":%.4f", p->confidence))))
		return rc;
	return tw_buf_append(b, "}\n", 2, err);
}

static enum tw_rc put_header(struct tw_cli_out *o, const struct detect_opts *op, struct tw_err *err)
{
	if (op->json)
		return TW_OK;
	return tw_buf_printf(&o->buf, err, "timestamp,value,anomaly_score%s\n",
			     op->band ? ",expected,lower,upper,confidence" : "");
}

static int detect(const char *path, const struct detect_opts *op)
{
	FILE *in;
	char *line = NULL;
	size_t cap = 0, nbad = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int header_done = 0, ex = TW_EXIT_OK;
	struct tw_band band;
	struct tw_cli_out o;
	struct tw_err err;
	const char *name = strcmp(path, "-") ? path : "<stdin>";

	if (!strcmp(path, "-")) {
		in = stdin;
	} else if (!(in = fopen(path, "r"))) {
		fprintf(stderr, "trailwatch %s: %s: %s\n", CMD, path, strerror(errno));
		return TW_EXIT_FAIL;
	}
	tw_band_init(&band, op->k);
	tw_cli_out_init(&o, STDOUT_FILENO, OUT_FLUSH_AT, OUT_MAX);
	tw_err_clear(&err);

	while ((len = getline(&line, &cap, in)) != -1) {
		struct tw_str ts_raw, val_raw, ts, val;
		struct tw_band_point p;
		const char *comma, *reason = NULL;
		int64_t t_ms = 0;
		double value = 0;
		size_t n = (size_t)len;

		lineno++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		if (n > LINE_MAX_BYTES) {
			reason = "line longer than 4096 bytes";
			goto bad;
		}
		comma = memchr(line, ',', n);
		if (!comma) {
			reason = "expected two columns: timestamp,value";
			goto bad;
		}
		ts_raw = (struct tw_str){ line, (size_t)(comma - line) };
		val_raw = (struct tw_str){ comma + 1, n - (size_t)(comma + 1 - line) };
		if (memchr(val_raw.p, ',', val_raw.n)) {
			reason = "more than two columns (expected timestamp,value)";
			goto bad;
		}
		ts = field_inner(ts_raw.p, ts_raw.n);
		val = field_inner(val_raw.p, val_raw.n);
		if (!header_done) {
			header_done = 1;
			/* the first line is a header unless it parses as data */
			if (parse_ts(ts, &t_ms, &err) != 0 || parse_value(val, &value) != 0) {
				if (tw_str_eq(ts, "timestamp") || tw_str_eq(ts, "time") || tw_str_eq(ts, "ts"))
					;
				else if (!(ts.n && (ts.p[0] < '0' || ts.p[0] > '9')))
					fprintf(stderr, "trailwatch %s: %s:1: taking this line as the header\n", CMD, name);
				if (put_header(&o, op, &err) != TW_OK)
					goto io;
				continue;
			}
			if (put_header(&o, op, &err) != TW_OK)
				goto io;
		}
		if (parse_ts(ts, &t_ms, &err) != 0) {
			reason = err.msg;
			goto bad;
		}
		if (parse_value(val, &value) != 0) {
			reason = "value is not a finite number";
			goto bad;
		}
		if (tw_band_update(&band, t_ms, value, &p, &err) != TW_OK) {
			reason = err.msg;
			goto bad;
		}
		/* echo the raw fields minus the line ending, quotes and all */
		ts_raw = field_inner(ts_raw.p, ts_raw.n);
		if (ts_raw.p > line && ts_raw.p[-1] == '"')
			ts_raw.p--, ts_raw.n += 2;
		val_raw = field_inner(val_raw.p, val_raw.n);
		if (val_raw.p > line && val_raw.p[-1] == '"')
			val_raw.p--, val_raw.n += 2;
		if (put_row(&o, op, ts_raw, val_raw, value, &p, &err) != TW_OK)
			goto io;
		if (tw_cli_out_maybe_flush(&o) != 0)
			goto out_fail;
		continue;
bad:
		nbad++;
		ex = TW_EXIT_PARTIAL;
		if (nbad <= SHOW_MAX)
			fprintf(stderr, "trailwatch %s: %s:%lu: %s (row skipped)\n", CMD, name, lineno, reason);
	}
	if (ferror(in)) {
		fprintf(stderr, "trailwatch %s: %s: read error: %s\n", CMD, name, strerror(errno));
		ex = TW_EXIT_FAIL;
	}
	if (nbad > SHOW_MAX)
		fprintf(stderr, "trailwatch %s: %s: %zu bad rows in all (%d shown)\n", CMD, name, nbad, SHOW_MAX);
	if (!header_done)
	{
		fprintf(stderr, "trailwatch %s: %s: empty input\n", CMD, name);
		ex = ex == TW_EXIT_OK ? TW_EXIT_PARTIAL : ex;
	}
	if (tw_cli_out_flush(&o) != 0)
		goto out_fail;
	goto done;
io:
	fprintf(stderr, "trailwatch %s: %s\n", CMD, err.msg);
	ex = TW_EXIT_FAIL;
	goto done;
out_fail:
	if (!o.broken) {
		fprintf(stderr, "trailwatch %s: writing the output: %s\n", CMD, strerror(o.err_no));
		ex = TW_EXIT_FAIL;
	}
done:
	tw_cli_out_free(&o);
	free(line);
	if (in != stdin)
		fclose(in);
	return ex;
}

int tw_cli_detect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "k", required_argument, NULL, 'k' },
		{ "band", no_argument, NULL, 'b' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct detect_opts op = { TW_BAND_K_DEFAULT, 0, 0 };
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:bf:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': {
			char *end;
			op.k = strtod(optarg, &end);
			if (*end || !isfinite(op.k) || op.k <= 0 || op.k > 100)
				return tw_cli_usage_error(CMD, "--k must be a number in (0, 100], not '%s'", optarg);
			break;
		}
		case 'b':
			op.band = 1;
			break;
		case 'f':
			if (!strcmp(optarg, "csv"))
				op.json = 0;
			else if (!strcmp(optarg, "json"))
				op.json = 1;
			else
				return tw_cli_usage_error(CMD, "--format must be csv or json, not '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (argc - optind != 1)
		return tw_cli_usage_error(CMD, "expected one SERIES.csv (or - for standard input)");
	return detect(argv[optind], &op);
}
