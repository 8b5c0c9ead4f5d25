/* SPDX-License-Identifier: Apache-2.0 */
/* cli/metrics.c: the metrics beside the store. The daemon (and `ingest`) feed every newly stored
 * event to the built-in series (calls and errors per account/region/eventSource/eventName, calls
 * per principal) and to the 15 CIS metric filters; closed periods are appended to
 * STORE/metrics/points.jsonl and the time up to which everything is closed to STORE/metrics/closed,
 * so a restart resumes after it. `trailwatch metrics show NAME` reads the points back. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
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
#include "core/config.h"
#include "core/json.h"
#include "core/time.h"
#include "index/store.h"
#include "query/query.h"

#define CMD "metrics"
#define MAX_CIS 32
#define BACKFILL_LATENESS (31LL * 86400 * 1000) /* files in path order: a month out of order */
#define BACKFILL_MAX_OPEN 4000000                /* open cells during a backfill */
#define BUILTIN_MAX_KEYS 50000 /* distinct tuples of each built-in series before "other" */
#define MAX_FILTERS 100 /* user metric filters (the config's cap) */

/* A user metric filter: its pattern's index in the filter set, its value and dimension paths. */
struct ufilter {
	size_t pat;                     /* index of its pattern in fs (== its index in fr.matched) */
	unsigned id;                    /* its metric id */
	int value_path;                 /* 1: the value is the number at path `value` */
	size_t value;                   /* ... the path's index in fr.values */
	double constant;                /* the value when value_path == 0 */
	size_t dims[3];                 /* dimension paths' indices in fr.values */
	unsigned ndims;                 /* dimensions */
	char *dim_names[3];             /* their names: the path without "$." */
};

/* Every metric's dimension names, by metric id, for the alarms that select tuples by them. */
struct mdims {
	const char *const *names; /* borrowed: static arrays or a ufilter's dim_names */
	unsigned n;               /* how many */
};

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
	struct ufilter uf[MAX_FILTERS]; /* user metric filters */
	size_t nuf;                   /* entries in uf */
	struct mdims dims[TW_SERIES_MAX_METRICS]; /* dimension names by metric id */
	struct tw_cli_alerting *al;   /* alarms fed with closed points and new events; NULL = none */
	uint64_t refed;               /* events fed again from the store at open (open periods) */
	int64_t lateness;             /* the lateness window outside backfills */
	size_t max_open;              /* the cap on open cells outside backfills */
	struct tw_cli_detectors *det; /* the behaviour detectors (cli/detectors.c), fed the same events */
};

/* Appends the decimal digits of v (as %lld / %llu print them) to b: the points file has half a
 * million lines per 300k events, and printf-family calls were most of their cost. */
static void put_u64(struct tw_buf *b, unsigned long long v, int neg, struct tw_err *err)
{
	char d[24];
	size_t i = sizeof d;

	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	if (neg)
		d[--i] = '-';
	(void)tw_buf_append(b, d + i, sizeof d - i, err);
}

static void put_i64(struct tw_buf *b, long long v, struct tw_err *err)
{
	put_u64(b, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, v < 0, err);
}

static void put_lit(struct tw_buf *b, const char *s, struct tw_err *err)
{
	(void)tw_buf_append(b, s, strlen(s), err);
}

static void emit_point(void *ctx, const struct tw_series_point *p)
{
	struct tw_cli_metrics *m = ctx;
	struct tw_err err;
	static const char *const key[3] = { ",\"sum\":", ",\"min\":", ",\"max\":" };

	if (m->failed)
		return;
	if (m->al)
		tw_cli_alerting_point(m->al, p, p->metric < TW_SERIES_MAX_METRICS ? m->dims[p->metric].names : NULL);
	m->line.n = 0;
	tw_err_clear(&err);
	put_lit(&m->line, "{\"t\":", &err);
	put_i64(&m->line, (long long)p->t, &err);
	put_lit(&m->line, ",\"m\":", &err);
	(void)tw_json_write_str(&m->line, p->name, strlen(p->name), &err);
	put_lit(&m->line, ",\"d\":[", &err);
	for (unsigned d = 0; d < p->ndims; d++) {
		if (d)
			(void)tw_buf_append(&m->line, ",", 1, &err);
		(void)tw_json_write_str(&m->line, p->dims[d].p, p->dims[d].n, &err);
	}
	put_lit(&m->line, "],\"n\":", &err);
	put_u64(&m->line, (unsigned long long)p->n, 0, &err);
	{ /* counts are integers: exact as %lld, and several times cheaper than %.17g */
		const double x[3] = { p->sum, p->min, p->max };
		for (int k = 0; k < 3; k++) {
			put_lit(&m->line, key[k], &err);
			if (x[k] == (double)(long long)x[k] && fabs(x[k]) < 1e15) {
				put_i64(&m->line, (long long)x[k], &err);
			} else {
				char v[32];
				snprintf(v, sizeof v, "%.17g", x[k]);
				put_lit(&m->line, v, &err);
			}
		}
	}
	(void)tw_buf_append(&m->line, "}\n", 2, &err);
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

/* Cuts from points.jsonl the points at or after closed: a crash after they were made durable but
 * before the closed mark moved leaves them there, and the refeed emits them again. Points are
 * appended in time order, so the cut is a tail. 0, or -1 (errno). */
static int trim_points(const char *path, int64_t closed)
{
	char line[65536];
	FILE *f = fopen(path, "r+");
	off_t size, pos, cut = -1;

	if (!f)
		return errno == ENOENT ? 0 : -1;
	fseeko(f, 0, SEEK_END);
	size = ftello(f);
	for (pos = size; pos > 0;) { /* step back until a line before closed */
		long long t;
		pos = pos > (1 << 20) ? pos - (1 << 20) : 0;
		fseeko(f, pos, SEEK_SET);
		if (pos && !fgets(line, sizeof line, f))
			break;
		if (!fgets(line, sizeof line, f) || sscanf(line, "{\"t\":%lld", &t) != 1 || t < closed)
			break;
	}
	fseeko(f, pos, SEEK_SET);
	if (pos && !fgets(line, sizeof line, f))
		goto done;
	for (;;) {
		off_t at = ftello(f);
		long long t;
		if (!fgets(line, sizeof line, f))
			break;
		if (sscanf(line, "{\"t\":%lld", &t) != 1 || t >= closed || !strchr(line, '\n')) {
			cut = at;
			break;
		}
	}
done:
	if (cut >= 0 && (ftruncate(fileno(f), cut) || fsync(fileno(f)))) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

/* Adds the config's metric filters (their patterns and paths into fs, their metrics into s). */
static int add_user_filters(struct tw_cli_metrics *m, const struct tw_config_metrics *mc, struct tw_err *err)
{
	for (size_t i = 0; mc && i < mc->nfilters; i++) {
		const struct tw_config_metric_filter *cf = &mc->filters[i];
		struct ufilter *u = &m->uf[m->nuf];
		const char *names[3];
		char *end;

		if (m->nuf >= MAX_FILTERS)
			return tw_err_set(err, TW_ELIMIT, "metrics.filters: more than %d", MAX_FILTERS), -1;
		if (tw_filter_set_add(m->fs, cf->pattern, strlen(cf->pattern), &u->pat, err)) {
			tw_err_prefix(err, "metrics.filters[%zu] (%s): pattern: ", i, cf->name);
			return -1;
		}
		if (cf->value && !strncmp(cf->value, "$.", 2)) {
			u->value_path = 1;
			if (tw_filter_set_add_path(m->fs, cf->value, strlen(cf->value), &u->value, err)) {
				tw_err_prefix(err, "metrics.filters[%zu] (%s): value: ", i, cf->name);
				return -1;
			}
		} else {
			const char *v = cf->value ? cf->value : "1";
			errno = 0;
			u->constant = strtod(v, &end);
			if (errno || end == v || *end || !isfinite(u->constant))
				return tw_err_set(err, TW_EINVAL,
						  "metrics.filters[%zu] (%s): value: \"%s\" is neither a number nor a $.field",
						  i, cf->name, v), -1;
		}
		for (size_t d = 0; d < cf->ndimensions && d < 3; d++) {
			const char *p = cf->dimensions[d];
			if (tw_filter_set_add_path(m->fs, p, strlen(p), &u->dims[d], err)) {
				tw_err_prefix(err, "metrics.filters[%zu] (%s): dimensions[%zu]: ", i, cf->name, d);
				return -1;
			}
			if (!(u->dim_names[d] = strdup(strncmp(p, "$.", 2) ? p : p + 2)))
				return tw_err_set(err, TW_ENOMEM, "out of memory"), -1;
			names[d] = u->dim_names[d];
			u->ndims++;
		}
		if (tw_series_metric_add(m->s, cf->name, u->ndims, names, cf->has_default, cf->default_value, &u->id, err)) {
			tw_err_prefix(err, "metrics.filters[%zu]: ", i);
			return -1;
		}
		if (u->id < TW_SERIES_MAX_METRICS)
			m->dims[u->id] = (struct mdims){ (const char *const *)u->dim_names, u->ndims };
		m->nuf++;
	}
	return 0;
}

static int refeed(struct tw_cli_metrics *m, const char *store, int64_t from, uint64_t *fed, struct tw_err *err);

int tw_cli_metrics_open(const char *store, int64_t lateness_ms, const struct tw_config_metrics *mc,
			struct tw_cli_metrics **out, struct tw_err *err)
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
	if (mc) {
		so.period_ms = mc->period_ms;
		so.lateness_ms = mc->lateness_ms;
		if (mc->max_values)
			so.max_keys = (size_t)mc->max_values;
	}
	if (lateness_ms > so.lateness_ms) { /* a backfill: files come in any time order */
		so.lateness_ms = lateness_ms;
		so.max_open = BACKFILL_MAX_OPEN;
	}
	m->lateness = so.lateness_ms;
	m->max_open = so.max_open;
	if (tw_series_new(&so, &m->s, err) ||
	    tw_series_metric_add(m->s, "calls", 4, dims4, 0, 0, &m->calls, err) ||
	    tw_series_metric_add(m->s, "errors", 4, dims4, 0, 0, &m->errors, err) ||
	    tw_series_metric_add(m->s, "calls_by_principal", 1, dimp, 0, 0, &m->principals, err) ||
	    tw_filter_set_new(&m->fs, err))
		goto fail;
	/* accounts x regions x APIs and principals outgrow a metric filter's 1,000 values at once */
	if (tw_series_metric_set_max_keys(m->s, m->calls, BUILTIN_MAX_KEYS, err) ||
	    tw_series_metric_set_max_keys(m->s, m->errors, BUILTIN_MAX_KEYS, err) ||
	    tw_series_metric_set_max_keys(m->s, m->principals, BUILTIN_MAX_KEYS, err))
		goto fail;
	m->dims[m->calls] = (struct mdims){ dims4, 4 };
	m->dims[m->errors] = (struct mdims){ dims4, 4 };
	m->dims[m->principals] = (struct mdims){ dimp, 1 };
	cis = tw_cis_controls(&ncis);
	for (size_t i = 0; (!mc || mc->cis) && i < ncis && i < MAX_CIS; i++) {
		size_t idx;
		if (tw_filter_set_add(m->fs, cis[i].pattern, strlen(cis[i].pattern), &idx, err) ||
		    tw_series_metric_add(m->s, cis[i].metric, 0, NULL, 0, 0, &m->cis[idx], err))
			goto fail;
		m->ncis++;
	}
	if (add_user_filters(m, mc, err) || tw_filter_result_init(m->fs, &m->fr, err))
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
	if (trim_points(path, m->closed)) {
		tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
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
	/* the periods a crash left open (everything, when none was ever closed): their events are in
	 * the store and counted nowhere yet. Fed as a backfill (nothing closes meanwhile), so that
	 * what the caller feeds next, maybe older, still finds its periods open. */
	{
		uint64_t fed;
		tw_series_set_window(m->s, BACKFILL_LATENESS, BACKFILL_MAX_OPEN);
		if (refeed(m, store, m->closed > 0 ? m->closed : INT64_MIN, &fed, err)) {
			tw_err_prefix(err, "metrics: refeeding the open periods from the store: ");
			goto fail;
		}
		tw_series_set_window(m->s, m->lateness, m->max_open);
		m->refed = fed;
	}
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

/* Folds event ev's match of user filter u into its metric. */
static int put_user(struct tw_cli_metrics *m, const struct ufilter *u, const struct tw_event *ev, struct tw_err *err)
{
	struct tw_str d[3];
	double v = u->constant;

	if (u->value_path) {
		const struct tw_filter_value *fv = &m->fr.values[u->value];
		if (!fv->has_num || !isfinite(fv->num))
			return 0; /* CloudWatch: no number at the value's path, no datapoint */
		v = fv->num;
	}
	for (unsigned k = 0; k < u->ndims; k++) {
		const struct tw_filter_value *fv = &m->fr.values[u->dims[k]];
		d[k] = fv->type == TW_FILTER_ABSENT || !fv->s.n ? (struct tw_str){ "-", 1 } : fv->s;
	}
	return tw_series_put(m->s, u->id, d, v, ev->time_ms, err) ? -1 : 0;
}

/* Counts one newly stored event. 0, or -1 with err (m is then failed). */
static int feed_one(struct tw_cli_metrics *m, const struct tw_event *ev, struct tw_err *err)
{
	struct tw_str d4[4];

	if (ev->kind != TW_KIND_CLOUDTRAIL) {
		/* CloudWatch Logs records: only the user's metric filters apply */
		if (!m->nuf)
			return 0;
		if (tw_filter_set_eval(m->fs, ev, &m->fr, err))
			return -1;
		for (size_t k = 0; k < m->nuf; k++)
			if (m->fr.matched[m->uf[k].pat] && put_user(m, &m->uf[k], ev, err))
				return -1;
		return 0;
	}
	d4[0] = fld(ev, TW_F_ACCOUNT);
	d4[1] = fld(ev, TW_F_REGION);
	d4[2] = fld(ev, TW_F_EVENT_SOURCE);
	d4[3] = fld(ev, TW_F_EVENT_NAME);
	if (tw_series_put(m->s, m->calls, d4, 1, ev->time_ms, err) ||
	    (ev->f[TW_F_ERROR_CODE].n && tw_series_put(m->s, m->errors, d4, 1, ev->time_ms, err)) ||
	    tw_series_put(m->s, m->principals, (struct tw_str[]){ fld(ev, TW_F_PRINCIPAL) }, 1, ev->time_ms, err) ||
	    tw_filter_set_eval(m->fs, ev, &m->fr, err))
		return -1;
	for (size_t k = 0; k < m->ncis; k++)
		if (m->fr.matched[k] && tw_series_put(m->s, m->cis[k], NULL, 1, ev->time_ms, err))
			return -1;
	for (size_t k = 0; k < m->nuf; k++)
		if (m->fr.matched[m->uf[k].pat] && put_user(m, &m->uf[k], ev, err))
			return -1;
	return 0;
}

int tw_cli_metrics_feed(struct tw_cli_metrics *m, const struct tw_batch *b, const unsigned char *dup,
			struct tw_err *err)
{
	if (m->failed) {
		*err = m->err;
		return -1;
	}
	if (m->det && tw_cli_detectors_feed(m->det, b, dup, err)) {
		m->failed = 1;
		m->err = *err;
		return -1;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (dup && dup[i])
			continue; /* stored before: already counted */
		if (feed_one(m, &b->ev[i], err)) {
			m->failed = 1;
			m->err = *err;
			return -1;
		}
		if (m->al)
			tw_cli_alerting_event(m->al, b, i);
	}
	return 0;
}

/* A damaged part of the store met by a refeed: said on stderr, the series are built from the rest. */
static void refeed_damage(void *ctx, const char *problem)
{
	static char last[512]; /* the refeed reads hour by hour: say each problem once in a row */
	(void)ctx;
	if (!strncmp(last, problem, sizeof last - 1))
		return;
	snprintf(last, sizeof last, "%s", problem);
	fprintf(stderr, "trailwatch: metrics: %s (left out of the series)\n", problem);
}

/* Feeds the events the store holds from `from` on, an hour at a time in time order (so memory is
 * bounded by an hour of events): the periods a crash left open, or everything for a rebuild.
 * *fed counts the events. 0, or -1 with err. */
static int refeed(struct tw_cli_metrics *m, const char *store, int64_t from, uint64_t *fed, struct tw_err *err)
{
	static const char text[] = "limit 100000000";
	const char *stores[1] = { store };
	struct tw_store_stats st;
	struct tw_query *q = NULL;
	int rc = -1;

	*fed = 0;
	if (tw_store_stat(store, &st, err))
		return -1;
	if (st.tmin > st.tmax || st.tmax < from)
		return 0;
	if (from < st.tmin)
		from = st.tmin - st.tmin % 3600000;
	if (tw_query_parse(text, sizeof text - 1, &q, err))
		return -1;
	for (int64_t t = from; t <= st.tmax; t += 3600000) {
		struct tw_qexec *x = NULL;
		struct tw_qrun_opts ro = { .ordered = 1, .on_damage = refeed_damage, .damage_ctx = NULL };
		size_t n;

		if (tw_qexec_new(q, NULL, &x, err) || tw_query_run(stores, 1, q, t, t + 3599999, &ro, x, NULL, err) ||
		    tw_qexec_finish(x, err)) {
			tw_qexec_free(x);
			goto out;
		}
		n = tw_qexec_nrows(x);
		for (size_t i = 0; i < n; i++) {
			const struct tw_event *ev = tw_qexec_row_event(x, i);
			if (ev && feed_one(m, ev, err)) {
				tw_qexec_free(x);
				goto out;
			}
		}
		*fed += n;
		tw_qexec_free(x);
		if (tw_cli_metrics_advance(m, 0, err))
			goto out;
	}
	rc = 0;
out:
	tw_query_free(q);
	return rc;
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
	/* the alarms after the points are durable: a crash in between replays them from points.jsonl */
	if (m->al)
		tw_cli_alerting_advance(m->al, closed);
	return 0;
fail:
	m->failed = 1;
	*err = m->err;
	return -1;
}

/* Test hook TRAILWATCH_TEST_KILL_BEFORE_FEED=N: 1 right after the Nth durable append of this process
 * (before the metrics and the event rules see the batch), so that the crash tests can aim there. */
static int kill_before_feed(void)
{
	static int64_t left = -1; /* appends left before the kill; 0 = off (read once) */

	if (left < 0) {
		const char *h = getenv("TRAILWATCH_TEST_KILL_BEFORE_FEED");
		left = h && *h ? strtoll(h, NULL, 10) : 0;
		if (left < 0)
			left = 0;
	}
	return left > 0 && --left == 0;
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
	/* the event rules' journal first: a crash after the append must not lose a rule's mail */
	if (m && !m->failed && m->al && tw_cli_alerting_rules_begin(m->al, b, err))
		return err->rc;
	rc = tw_store_append_dups(store, b, res, m && !m->failed ? m->dup : NULL, err);
	if (rc == TW_OK && m && !m->failed && m->al)
		tw_cli_alerting_rules_appended(m->al, b, m->dup);
	if (rc == TW_OK && kill_before_feed())
		raise(SIGKILL); /* test hook: die between the durable append and the rules' publishes */
	/* the metrics after the store: their failure is kept in m, never loses events */
	if (rc == TW_OK && m && !m->failed && tw_cli_metrics_feed(m, b, m->dup, &merr) == 0)
		(void)tw_cli_metrics_advance(m, 0, &merr);
	if (rc == TW_OK && m && m->al && !m->failed) /* else the next open evaluates them again */
		tw_cli_alerting_rules_end(m->al);
	else if (m && m->al)
		tw_cli_alerting_rules_forget(m->al);
	return rc;
}

int tw_cli_metrics_backfill(struct tw_cli_metrics *m, int on, struct tw_err *err)
{
	if (on > 0) {
		tw_series_set_window(m->s, BACKFILL_LATENESS, BACKFILL_MAX_OPEN);
		return 0;
	}
	if (on < 0) { /* live sources go on: what they bring late for the newest periods still counts */
		tw_series_set_window(m->s, m->lateness, m->max_open);
		return tw_cli_metrics_advance(m, 0, err);
	}
	if (tw_cli_metrics_advance(m, 1, err))
		return -1;
	tw_series_set_window(m->s, m->lateness, m->max_open);
	return 0;
}

void tw_cli_metrics_set_alerting(struct tw_cli_metrics *m, struct tw_cli_alerting *al)
{
	m->al = al;
}

int tw_cli_metrics_find(const struct tw_cli_metrics *m, const char *name, const char *const **dims, unsigned *ndims)
{
	int id = tw_series_metric_find(m->s, name);
	if (id < 0 || id >= TW_SERIES_MAX_METRICS)
		return -1;
	*dims = m->dims[id].names;
	*ndims = m->dims[id].n;
	return id;
}

const char *tw_cli_metrics_dir(const struct tw_cli_metrics *m)
{
	return m->dir;
}

int64_t tw_cli_metrics_closed(const struct tw_cli_metrics *m)
{
	return m->closed;
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
	for (size_t i = 0; i < m->nuf; i++)
		for (unsigned d = 0; d < m->uf[i].ndims; d++)
			free(m->uf[i].dim_names[d]);
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
	      "       trailwatch metrics list --store DIR | --config FILE\n"
	      "       trailwatch metrics rebuild --store DIR [--config FILE]\n"
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
	      "  -c, --config FILE   list, rebuild: the metric filters of this configuration\n"
	      "\n"
	      "rebuild recomputes every series from the events in the store (after adding a metric\n"
	      "filter or losing DIR/metrics), with the config's metrics section (--config); it holds\n"
	      "the store's writer lock, so stop the daemon first. A crash leaves the open periods to\n"
	      "the next run or ingest, which refeeds them from the store on its own.\n"
	      "\n"
	      "exit codes: 0 ok; 2 usage error; 3 the series cannot be read (or rebuilt).\n",
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

/* `metrics list --config FILE`: the built-in series, the CIS metrics (unless disabled) and the
 * config's metric filters. */
static int do_list(const struct tw_config *cfg)
{
	size_t n;
	const struct tw_cis_control *cis = tw_cis_controls(&n);

	printf("%-36s %s\n", "calls", "per account, region, eventSource, eventName");
	printf("%-36s %s\n", "errors", "per account, region, eventSource, eventName (records with errorCode)");
	printf("%-36s %s\n", "calls_by_principal", "per principal");
	for (size_t i = 0; cfg->metrics.cis && i < n; i++)
		printf("%-36s %s %s\n", cis[i].metric, cis[i].id, cis[i].title);
	for (size_t i = 0; i < cfg->metrics.nfilters; i++) {
		const struct tw_config_metric_filter *f = &cfg->metrics.filters[i];
		printf("%-36s filter %s", f->name, f->pattern);
		for (size_t d = 0; d < f->ndimensions; d++)
			printf("%s%s", d ? ", " : " per ", f->dimensions[d]);
		printf("\n");
	}
	return TW_EXIT_OK;
}

/* `metrics rebuild`: recomputes every series from the events in the store (a new metric filter, a
 * changed period, a lost metrics directory). Holds the store's writer lock meanwhile. */
static int do_rebuild(const char *dir, const struct tw_config_metrics *mc)
{
	struct tw_store *st = NULL;
	struct tw_store_opts so;
	struct tw_cli_metrics *m = NULL;
	struct tw_err err;
	char mdir[4200], old[4300], p1[4400], p2[4400];
	uint64_t fed = 0, points = 0, late = 0;
	double t0 = tw_cli_now();
	int ex = TW_EXIT_FAIL;

	tw_store_opts_default(&so);
	tw_err_clear(&err);
	if (tw_store_open(dir, &so, &st, NULL, &err) != TW_OK) {
		fprintf(stderr, "trailwatch metrics rebuild: %s%s\n", err.msg,
			err.rc == TW_EBUSY ? " (stop the daemon writing it first)" : "");
		return TW_EXIT_FAIL;
	}
	snprintf(mdir, sizeof mdir, "%s/metrics", dir);
	snprintf(old, sizeof old, "%s/metrics.old", dir);
	/* the old series stay aside until the new ones are complete */
	snprintf(p1, sizeof p1, "%s/points.jsonl", old);
	snprintf(p2, sizeof p2, "%s/closed", old);
	(void)unlink(p1);
	(void)unlink(p2);
	(void)rmdir(old);
	if (rename(mdir, old) && errno != ENOENT) {
		fprintf(stderr, "trailwatch metrics rebuild: %s: %s\n", mdir, strerror(errno));
		goto out;
	}
	/* a metrics directory that never closed a period is fed everything the store holds */
	if (tw_cli_metrics_open(dir, 0, mc, &m, &err) || tw_cli_metrics_advance(m, 1, &err)) {
		fprintf(stderr, "trailwatch metrics rebuild: %s (the previous series are in %s)\n", err.msg, old);
		goto out;
	}
	tw_cli_metrics_stats(m, &points, &late);
	fed = m->refed;
	printf("rebuilt %s/metrics: %llu events, %llu points, %.1f s\n", dir, (unsigned long long)fed,
	       (unsigned long long)points, tw_cli_now() - t0);
	(void)unlink(p1);
	(void)unlink(p2);
	(void)rmdir(old);
	ex = TW_EXIT_OK;
out:
	tw_cli_metrics_close(m, NULL);
	tw_err_clear(&err);
	if (tw_store_close(st, &err) != TW_OK && ex == TW_EXIT_OK) {
		fprintf(stderr, "trailwatch metrics rebuild: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
	}
	return ex;
}

int tw_cli_metrics(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' }, { "since", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'F' },  { "until", required_argument, NULL, 'U' },
		{ "by", required_argument, NULL, 'b' },    { "stat", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
		{ "config", required_argument, NULL, 'c' }, { NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *by = NULL, *stat = "sum", *sub, *config = NULL;
	int64_t from = INT64_MIN, until = INT64_MAX;
	int c, fmt = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "show") && strcmp(sub, "list") && strcmp(sub, "rebuild"))
		return tw_cli_usage_error(CMD, "unknown subcommand '%s' (show, list, rebuild)", sub);
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:b:f:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			dir = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
		case 'F':
		case 'U': {
			int rc = tw_cli_range_opt(CMD, c, optarg, &from, &until);
			if (rc)
				return rc;
			break;
		}
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
	if (!dir && !(config && strcmp(sub, "show")))
		return tw_cli_usage_error(CMD, "--store DIR is required");
	if (!strcmp(sub, "rebuild") || (!strcmp(sub, "list") && config)) {
		struct tw_config *cfg = NULL;
		struct tw_err e;
		int ex;
		if (optind != argc)
			return tw_cli_usage_error(CMD, "%s takes no argument", sub);
		if (config && tw_config_load(config, &cfg, &e) != TW_OK) {
			fprintf(stderr, "trailwatch metrics: %s\n", e.msg);
			return TW_EXIT_USAGE;
		}
		if (!dir)
			dir = cfg->store.dir;
		ex = !strcmp(sub, "rebuild") ? do_rebuild(dir, cfg ? &cfg->metrics : NULL) : do_list(cfg);
		tw_config_free(cfg);
		return ex;
	}
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
