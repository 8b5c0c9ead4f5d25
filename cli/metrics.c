/* SPDX-License-Identifier: Apache-2.0 */
/* cli/metrics.c: the metrics beside the store. The daemon (and `ingest`) feed every newly stored
 * event to the built-in series (calls and errors per account/region/eventSource/eventName, calls
 * per principal) and to the 15 CIS metric filters; closed periods are appended to
 * STORE/metrics/points.jsonl and the time up to which everything is closed to STORE/metrics/closed,
 * so a restart resumes after it. `trailwatch metrics show NAME` reads the points back. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alerts/cis.h"
#include "alerts/filter.h"
#include "alerts/series.h"
#include "cli/cli.h"
#include "core/json.h"
#include "core/time.h"
#include "index/store.h"

#define CMD "metrics"
#define MAX_CIS 32

struct tw_cli_metrics {
	struct tw_series *s;          /* the aggregates */
	struct tw_filter_set *fs;     /* the CIS patterns */
	struct tw_filter_result fr;   /* its per-event result */
	unsigned calls, errors, principals; /* built-in metric ids */
	unsigned cis[MAX_CIS];        /* metric id of CIS pattern i */
	size_t ncis;                  /* patterns in fs */
	FILE *points;                 /* STORE/metrics/points.jsonl, appended */
	char dir[4096];               /* STORE/metrics */
	int64_t closed;               /* everything before this is in points */
	struct tw_buf line;           /* one point as JSON */
	int failed;                   /* a write failed (sticky): the error is in err */
	struct tw_err err;            /* the first failure */
	unsigned char *dup;           /* per event of the batch being stored: 1 = duplicate */
	size_t dupcap;                /* room in dup */
	struct tw_cli_detectors *det; /* the behaviour detectors (cli/detectors.c), fed the same events */
};

static void emit_point(void *ctx, const struct tw_series_point *p)
{
	struct tw_cli_metrics *m = ctx;
	struct tw_err err;

	if (m->failed)
		return;
	m->line.n = 0;
	tw_err_clear(&err);
	(void)tw_buf_printf(&m->line, &err, "{\"t\":%lld,\"m\":", (long long)p->t);
	(void)tw_json_write_str(&m->line, p->name, strlen(p->name), &err);
	(void)tw_buf_printf(&m->line, &err, ",\"d\":[");
	for (unsigned d = 0; d < p->ndims; d++) {
		if (d)
			(void)tw_buf_append(&m->line, ",", 1, &err);
		(void)tw_json_write_str(&m->line, p->dims[d].p, p->dims[d].n, &err);
	}
	(void)tw_buf_printf(&m->line, &err, "],\"n\":%llu,\"sum\":%.17g,\"min\":%.17g,\"max\":%.17g}\n",
			    (unsigned long long)p->n, p->sum, p->min, p->max);
	if (err.rc || fwrite(m->line.p, 1, m->line.n, m->points) != m->line.n) {
		m->failed = 1;
		tw_err_set(&m->err, TW_EIO, "%s/points.jsonl: %s", m->dir, err.rc ? err.msg : strerror(errno));
	}
}

/* Writes STORE/metrics/closed atomically. */
static int write_closed(struct tw_cli_metrics *m)
{
	char path[4200], tmp[4200], text[32];
	int fd, ok;

	snprintf(path, sizeof path, "%s/closed", m->dir);
	snprintf(tmp, sizeof tmp, "%s/closed.tmp", m->dir);
	snprintf(text, sizeof text, "%lld\n", (long long)m->closed);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text) && !fsync(fd);
	ok = !close(fd) && ok && !rename(tmp, path);
	return ok ? 0 : -1;
}

int tw_cli_metrics_open(const char *store, int64_t lateness_ms, struct tw_cli_metrics **out, struct tw_err *err)
{
	struct tw_series_opts so;
	struct tw_cli_metrics *m = calloc(1, sizeof *m);
	static const char *const dims4[] = { "account", "region", "eventSource", "eventName" };
	static const char *const dimp[] = { "principal" };
	const struct tw_cis_control *cis;
	char path[4200];
	size_t ncis;
	FILE *f;

	if (!m)
		return tw_err_set(err, TW_ENOMEM, "metrics: out of memory"), -1;
	tw_buf_init(&m->line, 1 << 20);
	if (snprintf(m->dir, sizeof m->dir, "%s/metrics", store) >= (int)sizeof m->dir) {
		tw_err_set(err, TW_EINVAL, "%s: path too long", store);
		goto fail;
	}
	if (mkdir(m->dir, 0700) && errno != EEXIST) {
		tw_err_set(err, TW_EIO, "%s: %s", m->dir, strerror(errno));
		goto fail;
	}
	tw_series_opts_default(&so);
	if (lateness_ms > so.lateness_ms) { /* a backfill: files come in any time order */
		so.lateness_ms = lateness_ms;
		so.max_open = 4000000;
	}
	if (tw_series_new(&so, &m->s, err) ||
	    tw_series_metric_add(m->s, "calls", 4, dims4, 0, 0, &m->calls, err) ||
	    tw_series_metric_add(m->s, "errors", 4, dims4, 0, 0, &m->errors, err) ||
	    tw_series_metric_add(m->s, "calls_by_principal", 1, dimp, 0, 0, &m->principals, err) ||
	    tw_filter_set_new(&m->fs, err))
		goto fail;
	cis = tw_cis_controls(&ncis);
	for (size_t i = 0; i < ncis && i < MAX_CIS; i++) {
		size_t idx;
		if (tw_filter_set_add(m->fs, cis[i].pattern, strlen(cis[i].pattern), &idx, err) ||
		    tw_series_metric_add(m->s, cis[i].metric, 0, NULL, 0, 0, &m->cis[idx], err))
			goto fail;
		m->ncis++;
	}
	if (tw_filter_result_init(m->fs, &m->fr, err))
		goto fail;
	/* resume after what an earlier run closed */
	snprintf(path, sizeof path, "%s/closed", m->dir);
	if ((f = fopen(path, "r"))) {
		long long c;
		if (fscanf(f, "%lld", &c) == 1) {
			m->closed = c;
			tw_series_set_floor(m->s, c);
		}
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/points.jsonl", m->dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || !(m->points = fdopen(fd, "a"))) {
			tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
	}
	if (tw_cli_detectors_open(store, &m->det, err))
		goto fail;
	*out = m;
	return 0;
fail:
	tw_cli_metrics_close(m, NULL);
	return -1;
}

static struct tw_str fld(const struct tw_event *ev, enum tw_field f)
{
	static const char none[] = "-";
	return ev->f[f].n ? ev->f[f] : (struct tw_str){ none, 1 };
}

int tw_cli_metrics_feed(struct tw_cli_metrics *m, const struct tw_batch *b, const unsigned char *dup,
			struct tw_err *err)
{
	if (m->failed) {
		*err = m->err;
		return -1;
	}
	if (m->det && tw_cli_detectors_feed(m->det, b, dup, err))
		goto fail;
	for (size_t i = 0; i < b->n; i++) {
		const struct tw_event *ev = &b->ev[i];
		struct tw_str d4[4];

		if (dup && dup[i])
			continue; /* stored before: already counted */
		if (ev->kind != TW_KIND_CLOUDTRAIL)
			continue;
		d4[0] = fld(ev, TW_F_ACCOUNT);
		d4[1] = fld(ev, TW_F_REGION);
		d4[2] = fld(ev, TW_F_EVENT_SOURCE);
		d4[3] = fld(ev, TW_F_EVENT_NAME);
		if (tw_series_put(m->s, m->calls, d4, 1, ev->time_ms, err) ||
		    (ev->f[TW_F_ERROR_CODE].n && tw_series_put(m->s, m->errors, d4, 1, ev->time_ms, err)) ||
		    tw_series_put(m->s, m->principals, (struct tw_str[]){ fld(ev, TW_F_PRINCIPAL) }, 1, ev->time_ms, err) ||
		    tw_filter_set_eval(m->fs, ev, &m->fr, err))
			goto fail;
		for (size_t k = 0; k < m->ncis; k++)
			if (m->fr.matched[k] && tw_series_put(m->s, m->cis[k], NULL, 1, ev->time_ms, err))
				goto fail;
	}
	return 0;
fail:
	m->failed = 1;
	m->err = *err;
	return -1;
}

int tw_cli_metrics_advance(struct tw_cli_metrics *m, int flush_all, struct tw_err *err)
{
	int64_t closed = m->closed;

	if (m->failed) {
		*err = m->err;
		return -1;
	}
	tw_series_advance(m->s, flush_all, emit_point, m, &closed);
	if (m->failed) {
		*err = m->err;
		return -1;
	}
	if (m->det && tw_cli_detectors_advance(m->det, closed, flush_all, &m->err))
		goto fail;
	if (closed == m->closed)
		return 0;
	/* the points first, durable; then the mark that says they are there */
	if (fflush(m->points) || fsync(fileno(m->points))) {
		tw_err_set(&m->err, TW_EIO, "%s/points.jsonl: %s", m->dir, strerror(errno));
		goto fail;
	}
	m->closed = closed;
	if (write_closed(m)) {
		tw_err_set(&m->err, TW_EIO, "%s/closed: %s", m->dir, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	m->failed = 1;
	*err = m->err;
	return -1;
}

enum tw_rc tw_cli_store_append(struct tw_store *store, struct tw_cli_metrics *m, const struct tw_batch *b,
			       struct tw_store_append_result *res, struct tw_err *err)
{
	struct tw_err merr;
	enum tw_rc rc;

	if (m && !m->failed && b->n > m->dupcap) {
		unsigned char *d = realloc(m->dup, b->n);
		if (!d)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		m->dup = d;
		m->dupcap = b->n;
	}
	rc = tw_store_append_dups(store, b, res, m && !m->failed ? m->dup : NULL, err);
	/* the metrics after the store: their failure is kept in m, never loses events */
	if (rc == TW_OK && m && !m->failed && tw_cli_metrics_feed(m, b, m->dup, &merr) == 0)
		(void)tw_cli_metrics_advance(m, 0, &merr);
	return rc;
}

struct tw_cli_detectors *tw_cli_metrics_detectors(struct tw_cli_metrics *m)
{
	return m ? m->det : NULL;
}

const char *tw_cli_metrics_failure(const struct tw_cli_metrics *m)
{
	return m && m->failed ? m->err.msg : NULL;
}

void tw_cli_metrics_stats(const struct tw_cli_metrics *m, uint64_t *points, uint64_t *late)
{
	struct tw_series_stats st;
	tw_series_get_stats(m->s, &st);
	*points = st.emitted;
	*late = st.late;
}

void tw_cli_metrics_close(struct tw_cli_metrics *m, struct tw_err *err)
{
	if (!m)
		return;
	if (err && m->points)
		(void)tw_cli_metrics_advance(m, 0, err);
	if (m->points)
		fclose(m->points);
	tw_filter_result_free(&m->fr);
	tw_filter_set_free(m->fs);
	tw_series_free(m->s);
	tw_cli_detectors_close(m->det);
	tw_buf_free(&m->line);
	free(m->dup);
	free(m);
}

/* ---- trailwatch metrics show ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: trailwatch metrics show NAME --store DIR [--since 6h | --from T --until T] [--by DIM]\n"
	      "                                 [--stat sum|count|min|max|avg] [--format table|csv|json]\n"
	      "       trailwatch metrics list --store DIR\n"
	      "\n"
	      "The per-minute series 'trailwatch run' and 'trailwatch ingest' compute as they store events\n"
	      "(by event time; a minute closes 5 minutes after the newest event passed its end):\n"
	      "  calls, errors         per account, region, eventSource, eventName\n"
	      "  calls_by_principal    per principal\n"
	      "  <CIS metric>          one per control of the CIS pack ('trailwatch rules list')\n"
	      "show prints one row per minute (summed over the dimensions not named by --by) with a bar\n"
	      "chart; with --by DIM, one row per minute and value of DIM.\n"
	      "\n"
	      "options:\n"
	      "  -S, --store DIR     the store\n"
	      "      --since AGE     only the last AGE of the series (6h, 2d); default: everything\n"
	      "      --from T, --until T   an absolute range (ISO 8601)\n"
	      "  -b, --by DIM        keep this dimension (account, region, eventSource, eventName, principal)\n"
	      "      --stat S        sum (default), count, min, max or avg of the values in the period\n"
	      "  -f, --format FMT    table (default), csv or json\n"
	      "\n"
	      "exit codes: 0 ok; 2 usage error; 3 the series cannot be read.\n",
	      f);
}

/* One output row. */
struct row {
	int64_t t;      /* period start */
	char key[256];  /* the --by value, "" without --by */
	double sum, min, max; /* aggregates */
	uint64_t n;     /* values */
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return strcmp(x->key, y->key);
}

static double stat_of(const struct row *r, const char *stat)
{
	if (!strcmp(stat, "count"))
		return (double)r->n;
	if (!strcmp(stat, "min"))
		return r->min;
	if (!strcmp(stat, "max"))
		return r->max;
	if (!strcmp(stat, "avg"))
		return r->n ? r->sum / (double)r->n : 0;
	return r->sum;
}

static int dim_index(const char *metric, const char *dim)
{
	static const char *const d4[] = { "account", "region", "eventSource", "eventName" };
	if (!strcmp(metric, "calls") || !strcmp(metric, "errors")) {
		for (int i = 0; i < 4; i++)
			if (!strcmp(d4[i], dim))
				return i;
		return -1;
	}
	if (!strcmp(metric, "calls_by_principal"))
		return !strcmp(dim, "principal") ? 0 : -1;
	return -1;
}

static int do_show(const char *dir, const char *name, int64_t from, int64_t until, const char *by, const char *stat,
		   int fmt)
{
	char path[4200], *lbuf = NULL;
	size_t lcap = 0;
	FILE *f;
	struct row *rows = NULL;
	size_t nrows = 0, caprows = 0;
	int di = -1;
	double vmax = 0;

	if (by && (di = dim_index(name, by)) < 0)
		return tw_cli_usage_error(CMD, "metric %s has no dimension '%s'", name, by);
	snprintf(path, sizeof path, "%s/metrics/points.jsonl", dir);
	if (!(f = fopen(path, "r"))) {
		fprintf(stderr, "trailwatch metrics: %s: %s (no metrics yet: run 'trailwatch ingest' or 'trailwatch run')\n",
			path, strerror(errno));
		return TW_EXIT_FAIL;
	}
	while (getline(&lbuf, &lcap, f) > 0) {
		json_error_t je;
		json_t *o = json_loads(lbuf, 0, &je), *d;
		const char *m, *key = "";
		json_int_t t;
		struct row *r = NULL;

		if (!o)
			continue; /* a torn last line after a crash */
		m = json_string_value(json_object_get(o, "m"));
		t = json_integer_value(json_object_get(o, "t"));
		if (!m || strcmp(m, name) || t < from || t >= until) {
			json_decref(o);
			continue;
		}
		d = json_object_get(o, "d");
		if (di >= 0 && json_string_value(json_array_get(d, (size_t)di)))
			key = json_string_value(json_array_get(d, (size_t)di));
		/* rows come in time order per run: look back for the same (t, key) */
		for (size_t i = nrows; i-- > 0 && rows[i].t == t;)
			if (!strncmp(rows[i].key, key, sizeof rows[i].key - 1)) {
				r = &rows[i];
				break;
			}
		if (!r) {
			if (nrows == caprows) {
				size_t cap = caprows ? caprows * 2 : 256;
				struct row *nr = realloc(rows, cap * sizeof *nr);
				if (!nr) {
					fprintf(stderr, "trailwatch metrics: out of memory\n");
					json_decref(o);
					free(rows);
					free(lbuf);
					fclose(f);
					return TW_EXIT_FAIL;
				}
				rows = nr;
				caprows = cap;
			}
			r = &rows[nrows++];
			memset(r, 0, sizeof *r);
			r->t = t;
			snprintf(r->key, sizeof r->key, "%s", key);
			r->min = INFINITY;
			r->max = -INFINITY;
		}
		r->n += (uint64_t)json_integer_value(json_object_get(o, "n"));
		r->sum += json_number_value(json_object_get(o, "sum"));
		if (json_number_value(json_object_get(o, "min")) < r->min)
			r->min = json_number_value(json_object_get(o, "min"));
		if (json_number_value(json_object_get(o, "max")) > r->max)
			r->max = json_number_value(json_object_get(o, "max"));
		json_decref(o);
	}
	free(lbuf);
	fclose(f);
	if (nrows) /* qsort(NULL, 0, ...) is undefined */
		qsort(rows, nrows, sizeof *rows, row_cmp);
	for (size_t i = 0; i < nrows; i++)
		if (stat_of(&rows[i], stat) > vmax)
			vmax = stat_of(&rows[i], stat);
	if (fmt == 1)
		printf("time,%s%s%s\n", by ? by : "", by ? "," : "", stat);
	for (size_t i = 0; i < nrows; i++) {
		char ts[TW_TIME_BUFSZ];
		double v = stat_of(&rows[i], stat);
		tw_time_format(rows[i].t, ts);
		if (fmt == 1) {
			printf("%s,", ts);
			if (by) {
				struct tw_buf q;
				struct tw_err e;
				tw_buf_init(&q, 4096);
				(void)tw_json_write_str(&q, rows[i].key, strlen(rows[i].key), &e);
				printf("%.*s,", (int)q.n, q.p);
				tw_buf_free(&q);
			}
			printf("%.17g\n", v);
		} else if (fmt == 2) {
			printf("{\"time\":\"%s\"", ts);
			if (by) {
				struct tw_buf q;
				struct tw_err e;
				tw_buf_init(&q, 4096);
				(void)tw_json_write_str(&q, rows[i].key, strlen(rows[i].key), &e);
				printf(",\"%s\":%.*s", by, (int)q.n, q.p);
				tw_buf_free(&q);
			}
			printf(",\"%s\":%.17g}\n", stat, v);
		} else {
			int bar = vmax > 0 ? (int)lround(40.0 * v / vmax) : 0;
			printf("%s  %-*.*s %12.6g  ", ts, by ? 40 : 0, by ? 40 : 0, rows[i].key, v);
			for (int k = 0; k < bar; k++)
				putchar('#');
			putchar('\n');
		}
	}
	if (!nrows)
		fprintf(stderr, "trailwatch metrics: no points of %s in that range\n", name);
	free(rows);
	return fflush(stdout) ? TW_EXIT_FAIL : TW_EXIT_OK;
}

int tw_cli_metrics(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' }, { "since", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'F' },  { "until", required_argument, NULL, 'U' },
		{ "by", required_argument, NULL, 'b' },    { "stat", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *by = NULL, *stat = "sum", *sub;
	int64_t from = INT64_MIN, until = INT64_MAX;
	int c, fmt = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "show") && strcmp(sub, "list"))
		return tw_cli_usage_error(CMD, "unknown subcommand '%s' (show, list)", sub);
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:b:f:h", opts, NULL)) != -1) {
		struct tw_err e;
		int64_t v;
		switch (c) {
		case 'S':
			dir = optarg;
			break;
		case 's':
			if (tw_duration_parse(optarg, &v, &e) != TW_OK)
				return tw_cli_usage_error(CMD, "--since: %s", e.msg);
			{
				struct timespec now;
				clock_gettime(CLOCK_REALTIME, &now);
				from = (int64_t)now.tv_sec * 1000 - v;
			}
			break;
		case 'F':
		case 'U':
			if (tw_time_parse(optarg, strlen(optarg), &v, &e) != TW_OK)
				return tw_cli_usage_error(CMD, "--%s: %s", c == 'F' ? "from" : "until", e.msg);
			if (c == 'F')
				from = v;
			else
				until = v;
			break;
		case 'b':
			by = optarg;
			break;
		case 't':
			if (strcmp(optarg, "sum") && strcmp(optarg, "count") && strcmp(optarg, "min") &&
			    strcmp(optarg, "max") && strcmp(optarg, "avg"))
				return tw_cli_usage_error(CMD, "--stat: expected sum, count, min, max or avg");
			stat = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "table"))
				fmt = 0;
			else if (!strcmp(optarg, "csv"))
				fmt = 1;
			else if (!strcmp(optarg, "json"))
				fmt = 2;
			else
				return tw_cli_usage_error(CMD, "--format: expected table, csv or json");
			break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (!dir)
		return tw_cli_usage_error(CMD, "--store DIR is required");
	if (!strcmp(sub, "list")) {
		size_t n;
		const struct tw_cis_control *cis = tw_cis_controls(&n);
		if (optind != argc)
			return tw_cli_usage_error(CMD, "list takes no argument");
		printf("%-36s %s\n", "calls", "per account, region, eventSource, eventName");
		printf("%-36s %s\n", "errors", "per account, region, eventSource, eventName (records with errorCode)");
		printf("%-36s %s\n", "calls_by_principal", "per principal");
		for (size_t i = 0; i < n; i++)
			printf("%-36s %s %s\n", cis[i].metric, cis[i].id, cis[i].title);
		return TW_EXIT_OK;
	}
	if (optind != argc - 1)
		return tw_cli_usage_error(CMD, "show takes one metric NAME ('trailwatch metrics list' names them)");
	return do_show(dir, argv[optind], from, until, by, stat, fmt);
}
