/* SPDX-License-Identifier: Apache-2.0 */
/* cli/alerting.c: the alarm side of `trailwatch run`: the config's metric alarms (and the CIS pack's)
 * evaluated on the closed periods of the metrics, composite alarms, event rules that publish a
 * matching record at once, the router (grouping, waits, silences) and the notifier (durable outbox,
 * delivery threads). Each notification is an email with its evidence: the reason, the chart of the
 * metric, the top contributors and records read back from the store, and commands to dig further.
 * Time is event time: an alarm period is evaluated once the metrics closed it. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alerts/alarm.h"
#include "alerts/anomaly.h"
#include "alerts/band.h"
#include "alerts/cis.h"
#include "alerts/email.h"
#include "alerts/filter.h"
#include "alerts/notify.h"
#include "alerts/route.h"
#include "alerts/series.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/event.h"
#include "core/json.h"
#include "core/time.h"
#include "query/query.h"

#define HIST 64                  /* alarm periods remembered per alarm: evaluation range and chart */
#define MAX_GAP 100000           /* boundaries evaluated in one go at most (older ones are skipped) */
#define RULE_CAP 60              /* messages one event rule publishes per minute of event time */
#define SCAN_MAX 100000          /* events read back for one email's evidence */
#define TOP_K 5                  /* contributors shown per kind */
#define MAX_RECORDS 10           /* records shown */
#define MAX_CMDS 4               /* dig-further commands */
#define DELIVERY_ALARM "trailwatch-delivery-failures"
#define MAIL_MAX (4u << 20)      /* a rendered email */
#define ANOMALIES "anomalies"    /* the pseudo-metric counting the behaviour detectors' findings */
#define MID_ANOMALIES (-2)       /* its metric id */

/* One alarm period's aggregate (and the band at it, for band alarms). */
struct bucket {
	int64_t t;          /* period start; 0 = empty slot */
	uint64_t n;         /* SampleCount */
	double sum, min, max; /* Sum, Minimum, Maximum */
	int banded;         /* 1 when expected/lower/upper hold the band predicted for this period */
	double expected, lower, upper; /* the band (band alarms) */
};

/* A metric alarm as the evaluator sees it. */
struct watch {
	char *name;                      /* AlarmName */
	char *metric;                    /* metric name */
	const char *description;         /* borrowed from the config (or a static CIS title), may be NULL */
	const char *severity;            /* borrowed, may be NULL */
	int mid;                         /* metric id in the series */
	const char *const *dimnames;     /* the metric's dimension names (borrowed from the metrics) */
	unsigned ndims;                  /* how many */
	char *sel[TW_SERIES_MAX_DIMS];   /* required value of each dimension; NULL = any */
	char *dimtext;                   /* "k=v,k=v" as configured, or NULL */
	const char *statistic;           /* Sum, Average, Minimum, Maximum, SampleCount */
	int64_t period_ms;               /* the alarm's period */
	unsigned n, m;                   /* EvaluationPeriods, DatapointsToAlarm */
	double threshold;                /* Threshold */
	int cmp;                         /* enum tw_alarm_cmp */
	int missing;                     /* enum tw_alarm_missing */
	double k;                        /* band width */
	int band;                        /* 1: a band operator: model below */
	struct tw_band model;            /* the band model (band alarms) */
	const char *pattern;             /* metric filter pattern behind the metric (evidence), or NULL */
	struct tw_filter_set *efs;       /* pattern compiled for the evidence scan (lazily) */
	struct tw_filter_result efr;     /* its result */
	int64_t first_t;                 /* earliest point seen before the first evaluation (0: none) */
	int64_t evaluated;               /* last boundary evaluated (0: none yet) */
	struct bucket ring[HIST];        /* periods by (t / period) % HIST */
	struct tw_anomaly *finding;      /* "anomalies" alarms: the latest finding counted (evidence) */
};

/* The alarm pipeline. */
struct tw_cli_alerting {
	const struct tw_config *cfg;     /* borrowed */
	char store[4096];                /* the store directory */
	char dir[4200];                  /* STORE/alarms */
	struct tw_cli_metrics *metrics;  /* borrowed */
	struct tw_cli_alerting_opts o;   /* options */
	struct watch *w;                 /* metric alarms */
	size_t nw;                       /* entries in w */
	struct tw_alarm_set *set;        /* states and history */
	struct tw_route *route;          /* grouping and silences */
	struct tw_notify *notify;        /* outbox and delivery */
	int64_t gwait;                   /* longest of group_wait and group_interval: a flush moves this far */
	int64_t clock;                   /* event-time clock: the latest closed mark */
	int64_t final;                   /* every period before this is closed (the newest point's time) */
	double clock_wall;               /* tw_cli_now() when clock last moved */
	int evaluated_dirty;             /* evaluated marks changed since last written */
	struct tw_filter_set *rules;     /* event rules' patterns */
	struct tw_filter_result rr;      /* their per-event result */
	int64_t *rule_min;               /* per rule: the event-time minute being counted */
	unsigned *rule_count;            /* per rule: messages in that minute */
	char **topics;                   /* every topic (the delivery alarm's actions) */
	size_t ntopics;                  /* entries in topics */
	uint64_t dead_seen;              /* dead letters already turned into the delivery alarm */
	uint64_t fail_seen;              /* publish failures already turned into it */
	double delivery_ok_since;        /* wall time of the last delivery problem */
	int delivery_alarm;              /* 1 while the delivery alarm is in ALARM */
	struct tw_cli_alerting_stats st; /* counters */
	char mail_dir[4200];             /* the default maildir (STORE/mail) */
	int pending_fd;                  /* STORE/alarms/rules.pending, or -1 (no rules) */
	int pending_dirty;               /* it lists a batch whose rule matches may be unpublished */
	const struct tw_batch *hit_batch; /* the batch _begin evaluated the rules on (NULL: none) */
	unsigned char *hit;              /* per record of hit_batch: 1 if a rule matched it */
	size_t hitcap;                   /* entries allocated in hit */
};

/* ---- small helpers ------------------------------------------------------------------------------ */

static void alog(struct tw_cli_alerting *a, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void alog(struct tw_cli_alerting *a, int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (a->o.log)
		a->o.log(a->o.log_ctx, level, msg);
	else if (level <= TW_CONFIG_LOG_WARN)
		fprintf(stderr, "trailwatch: %s\n", msg);
}

static int64_t floor_to(int64_t t, int64_t p)
{
	int64_t q = t / p;
	if (t % p && t < 0)
		q--;
	return q * p;
}

static double wall_ms(void)
{
	return tw_cli_now() * 1000.0;
}

/* ---- alarm definitions -------------------------------------------------------------------------- */

/* The statistic of bucket b; NAN when it has no value. */
static double stat_value(const struct watch *w, const struct bucket *b)
{
	if (!b->n)
		return NAN;
	if (!strcmp(w->statistic, "SampleCount"))
		return (double)b->n;
	if (!strcmp(w->statistic, "Average"))
		return b->sum / (double)b->n;
	if (!strcmp(w->statistic, "Minimum"))
		return b->min;
	if (!strcmp(w->statistic, "Maximum"))
		return b->max;
	return b->sum;
}

/* Parses "k=v" selections into w->sel against the metric's dimension names. */
static int watch_select(struct watch *w, char *const *kv, size_t nkv, const char *where, struct tw_err *err)
{
	struct tw_buf t;

	tw_buf_init(&t, 4096);
	for (size_t i = 0; i < nkv; i++) {
		const char *eq = strchr(kv[i], '=');
		unsigned d;
		if (!eq)
			return tw_buf_free(&t), tw_err_set(err, TW_EINVAL, "%s.dimensions: \"%s\" is not name=value", where, kv[i]), -1;
		for (d = 0; d < w->ndims; d++)
			if (strlen(w->dimnames[d]) == (size_t)(eq - kv[i]) && !strncmp(w->dimnames[d], kv[i], (size_t)(eq - kv[i])))
				break;
		if (d == w->ndims) {
			struct tw_buf names;
			tw_buf_init(&names, 1024);
			for (unsigned k = 0; k < w->ndims; k++)
				(void)tw_buf_printf(&names, NULL, "%s%s", k ? ", " : "", w->dimnames[k]);
			tw_err_set(err, TW_EINVAL, "%s.dimensions: metric %s has no dimension \"%.*s\" (it has: %s)", where,
				   w->metric, (int)(eq - kv[i]), kv[i], w->ndims ? tw_buf_cstr(&names) : "none");
			tw_buf_free(&names);
			tw_buf_free(&t);
			return -1;
		}
		free(w->sel[d]);
		if (!(w->sel[d] = strdup(eq + 1)))
			return tw_buf_free(&t), tw_err_set(err, TW_ENOMEM, "out of memory"), -1;
		(void)tw_buf_printf(&t, NULL, "%s%s", t.n ? "," : "", kv[i]);
	}
	if (t.n && !(w->dimtext = strdup(tw_buf_cstr(&t))))
		return tw_buf_free(&t), tw_err_set(err, TW_ENOMEM, "out of memory"), -1;
	tw_buf_free(&t);
	return 0;
}

/* The metric filter pattern behind metric name (CIS or the user's), for the evidence scan. */
static const char *metric_pattern(const struct tw_config *cfg, const char *metric)
{
	size_t ncis;
	const struct tw_cis_control *cis = tw_cis_controls(&ncis);

	for (size_t i = 0; i < ncis; i++)
		if (!strcmp(cis[i].metric, metric))
			return cis[i].pattern;
	for (size_t i = 0; cfg && i < cfg->metrics.nfilters; i++)
		if (!strcmp(cfg->metrics.filters[i].name, metric))
			return cfg->metrics.filters[i].pattern;
	return NULL;
}

static struct watch *watch_add(struct tw_cli_alerting *a, const char *name, const char *metric, const char *where,
			       struct tw_err *err)
{
	struct watch *w;
	static const char *const adims[] = { "detector", "account", "principal" };

	if (!strcmp(metric, ANOMALIES)) {
		w = &a->w[a->nw];
		memset(w, 0, sizeof *w);
		w->mid = MID_ANOMALIES;
		w->dimnames = adims;
		w->ndims = 3;
		if (!(w->name = strdup(name)) || !(w->metric = strdup(metric)))
			return tw_err_set(err, TW_ENOMEM, "out of memory"), NULL;
		a->nw++;
		return w;
	}
	if (tw_cli_metrics_find(a->metrics, metric, &(const char *const *){ NULL }, &(unsigned){ 0 }) < 0)
		return tw_err_set(err, TW_EINVAL, "%s.metric: unknown metric \"%s\" (see trailwatch metrics list)", where,
				  metric), NULL;
	w = &a->w[a->nw];
	memset(w, 0, sizeof *w);
	w->mid = tw_cli_metrics_find(a->metrics, metric, &w->dimnames, &w->ndims);
	if (!(w->name = strdup(name)) || !(w->metric = strdup(metric)))
		return tw_err_set(err, TW_ENOMEM, "out of memory"), NULL;
	w->pattern = metric_pattern(a->cfg, metric);
	a->nw++;
	return w;
}

static void watch_free(struct watch *w)
{
	free(w->name);
	free(w->metric);
	free(w->dimtext);
	free(w->finding);
	for (unsigned d = 0; d < TW_SERIES_MAX_DIMS; d++)
		free(w->sel[d]);
	if (w->efs) {
		tw_filter_result_free(&w->efr);
		tw_filter_set_free(w->efs);
	}
}

/* Finds the "account=" / "region=" value among kv (or NULL). */
static const char *kv_get(char *const *kv, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < n; i++)
		if (!strncmp(kv[i], key, kl) && kv[i][kl] == '=')
			return kv[i] + kl + 1;
	return NULL;
}

static int define_config_alarm(struct tw_cli_alerting *a, size_t i, int64_t now, struct tw_err *err)
{
	const struct tw_config_alarm *c = &a->cfg->alarms[i];
	struct tw_alarm_def d;
	char where[64];

	snprintf(where, sizeof where, "alarms[%zu]", i);
	memset(&d, 0, sizeof d);
	d.name = c->name;
	d.description = c->description;
	d.rule = c->rule;
	d.alarm_actions = (struct tw_alarm_strs){ (const char *const *)c->alarm_actions, c->nalarm_actions };
	d.ok_actions = (struct tw_alarm_strs){ (const char *const *)c->ok_actions, c->nok_actions };
	d.insufficient_actions = (struct tw_alarm_strs){ (const char *const *)c->insufficient_actions, c->ninsufficient_actions };
	d.actions_enabled = c->actions_enabled;
	d.severity = c->severity;
	d.labels = (struct tw_alarm_strs){ (const char *const *)c->labels, c->nlabels };
	d.account = kv_get(c->dimensions, c->ndimensions, "account");
	d.region = kv_get(c->dimensions, c->ndimensions, "region");
	d.statistic = c->statistic ? c->statistic : "Sum";
	d.period_s = (unsigned)(c->period_ms / 1000);
	d.eval_periods = (unsigned)c->evaluation_periods;
	d.to_alarm = (unsigned)c->datapoints_to_alarm;
	d.threshold = c->threshold;
	d.cmp = (enum tw_alarm_cmp)c->comparison;
	d.missing = (enum tw_alarm_missing)c->missing;
	if (!c->rule) {
		struct watch *w;
		if (!c->metric)
			return tw_err_set(err, TW_EINVAL, "%s: a metric alarm needs \"metric\"", where), -1;
		if (!(w = watch_add(a, c->name, c->metric, where, err)) ||
		    watch_select(w, c->dimensions, c->ndimensions, where, err))
			return -1;
		d.metric = c->metric;
		d.dimensions = w->dimtext;
		w->description = c->description;
		w->severity = c->severity;
		w->statistic = d.statistic;
		w->period_ms = c->period_ms;
		w->n = d.eval_periods ? d.eval_periods : 1;
		w->m = d.to_alarm ? d.to_alarm : w->n;
		w->threshold = c->threshold;
		w->cmp = c->comparison;
		w->missing = c->missing;
		w->k = c->band > 0 ? c->band : TW_BAND_K_DEFAULT;
		w->band = w->cmp >= TW_ALARM_BAND_OUTSIDE;
		if (w->band)
			tw_band_init(&w->model, w->k);
	}
	if (tw_alarm_set_define(a->set, &d, now, err)) {
		tw_err_prefix(err, "%s (%s): ", where, c->name);
		return -1;
	}
	return 0;
}

static int define_cis_alarms(struct tw_cli_alerting *a, int64_t now, struct tw_err *err)
{
	const struct tw_config_cis_alarms *ca = &a->cfg->cis_alarms;
	static const char *const deflt[] = { "alarms" };
	size_t ncis;
	const struct tw_cis_control *cis = tw_cis_controls(&ncis);

	for (size_t i = 0; i < ncis; i++) {
		struct tw_alarm_def d;
		struct watch *w;
		char desc[512];
		int taken = 0;

		for (size_t j = 0; j < a->cfg->nalarms; j++)
			taken |= !strcmp(a->cfg->alarms[j].name, cis[i].name);
		if (taken)
			continue; /* the config redefines it */
		if (!(w = watch_add(a, cis[i].name, cis[i].metric, "cis_alarms", err)))
			return -1;
		snprintf(desc, sizeof desc, "%s %s (CIS AWS Foundations Benchmark)", cis[i].id, cis[i].title);
		memset(&d, 0, sizeof d);
		d.name = cis[i].name;
		d.description = desc;
		d.metric = cis[i].metric;
		d.statistic = cis[i].alarm.statistic;
		d.period_s = cis[i].alarm.period_s;
		d.eval_periods = cis[i].alarm.eval_periods;
		d.to_alarm = cis[i].alarm.datapoints;
		d.threshold = cis[i].alarm.threshold;
		d.cmp = (enum tw_alarm_cmp)tw_alarm_cmp_parse(cis[i].alarm.comparison);
		d.missing = (enum tw_alarm_missing)tw_alarm_missing_parse(cis[i].alarm.missing_data);
		if (ca->nactions)
			d.alarm_actions = (struct tw_alarm_strs){ (const char *const *)ca->actions, ca->nactions };
		else
			d.alarm_actions = (struct tw_alarm_strs){ deflt, 1 };
		d.actions_enabled = 1;
		d.severity = ca->severity ? ca->severity : "high";
		w->description = cis[i].title;
		w->severity = d.severity;
		w->statistic = d.statistic;
		w->period_ms = (int64_t)d.period_s * 1000;
		w->n = d.eval_periods;
		w->m = d.to_alarm;
		w->threshold = d.threshold;
		w->cmp = d.cmp;
		w->missing = d.missing;
		if (tw_alarm_set_define(a->set, &d, now, err)) {
			tw_err_prefix(err, "cis_alarms (%s): ", cis[i].name);
			return -1;
		}
	}
	return 0;
}

/* The alarm raised when deliveries die or a publish fails: notified on every topic. */
static int define_delivery_alarm(struct tw_cli_alerting *a, int64_t now, struct tw_err *err)
{
	struct tw_alarm_def d;

	memset(&d, 0, sizeof d);
	d.name = DELIVERY_ALARM;
	d.description = "Notifications were dead-lettered or could not be written to the outbox";
	d.metric = "trailwatch.delivery_failures";
	d.statistic = "Sum";
	d.period_s = 60;
	d.eval_periods = 1;
	d.threshold = 1;
	d.cmp = TW_ALARM_GE;
	d.missing = TW_ALARM_MISSING_NOT_BREACHING;
	d.alarm_actions = (struct tw_alarm_strs){ (const char *const *)a->topics, a->ntopics };
	d.ok_actions = d.alarm_actions;
	d.actions_enabled = 1;
	d.severity = "critical";
	return tw_alarm_set_define(a->set, &d, now, err) ? -1 : 0;
}

/* ---- the notifier ------------------------------------------------------------------------------- */

static void on_dead(void *ctx, const struct tw_notify_result *r)
{
	struct tw_cli_alerting *a = ctx;
	alog(a, TW_CONFIG_LOG_ERROR, "notification %s to %s dead-lettered after %u attempts: %s", r->message_id, r->sub,
	     r->attempts, r->error);
}

static void on_result(void *ctx, const struct tw_notify_result *r)
{
	struct tw_cli_alerting *a = ctx;
	if (r->state == TW_NOTIFY_DELIVERED)
		alog(a, TW_CONFIG_LOG_INFO, "delivered \"%s\" to %s", r->subject, r->sub);
	else if (r->state == TW_NOTIFY_RETRYING)
		alog(a, TW_CONFIG_LOG_WARN, "delivery of \"%s\" to %s failed (attempt %u, will retry): %s", r->subject,
		     r->sub, r->attempts, r->error);
}

static int open_notifier(struct tw_cli_alerting *a, struct tw_err *err)
{
	const struct tw_config_notifier *nc = &a->cfg->notifier;
	struct tw_notify_config c;
	struct tw_notify_topic *topics = NULL;
	struct tw_notify_sub *subs = NULL;
	struct tw_notify_retry *retries = NULL;
	char state[4200];
	size_t ntopics = nc->present ? nc->ntopics : 1, nsubs = nc->present ? nc->nsubscriptions : 1;
	int rc = -1;

	topics = calloc(ntopics ? ntopics : 1, sizeof *topics);
	subs = calloc(nsubs ? nsubs : 1, sizeof *subs);
	retries = calloc(nsubs ? nsubs : 1, sizeof *retries);
	a->topics = calloc(ntopics ? ntopics : 1, sizeof *a->topics);
	if (!topics || !subs || !retries || !a->topics) {
		tw_err_set(err, TW_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(a->mail_dir, sizeof a->mail_dir, "%s/mail", a->store);
	if (!nc->present) {
		topics[0].name = "alarms";
		topics[0].display_name = "trailwatch";
		subs[0].name = "mail";
		subs[0].topic = "alarms";
		subs[0].proto = TW_NOTIFY_MAILDIR;
		subs[0].endpoint = a->mail_dir;
		subs[0].smtp.from = "trailwatch@localhost";
	} else {
		for (size_t i = 0; i < ntopics; i++) {
			topics[i].name = nc->topics[i].name;
			topics[i].display_name = nc->topics[i].display_name;
		}
		for (size_t i = 0; i < nsubs; i++) {
			const struct tw_config_subscription *cs = &nc->subscriptions[i];
			struct tw_notify_sub *s = &subs[i];
			s->name = cs->name;
			s->topic = cs->topic;
			s->proto = (enum tw_notify_proto)cs->protocol;
			s->endpoint = cs->endpoint;
			s->filter_policy = cs->filter_policy;
			s->argv = (const char *const *)cs->argv;
			s->argc = cs->nargv;
			s->smtp.url = cs->smtp.url;
			s->smtp.from = cs->smtp.from;
			s->smtp.recipients = (const char *const *)cs->smtp.to;
			s->smtp.nrecipients = cs->smtp.nto;
			s->smtp.user = cs->smtp.user;
			s->smtp.password = cs->smtp.password;
			s->smtp.starttls = (enum tw_notify_starttls)cs->smtp.starttls;
			s->smtp.ca_file = cs->smtp.ca_file;
			s->smtp.insecure = cs->smtp.insecure;
			s->http.headers = (const char *const *)cs->http.headers;
			s->http.nheaders = cs->http.nheaders;
			s->http.ca_file = cs->http.ca_file;
			s->http.insecure = cs->http.insecure;
			s->connect_timeout_ms = cs->connect_timeout_ms;
			s->timeout_ms = cs->timeout_ms;
			if (cs->retry.present) {
				retries[i].num_retries = (unsigned)cs->retry.num_retries;
				retries[i].num_no_delay = (unsigned)cs->retry.num_no_delay;
				retries[i].num_min_delay = (unsigned)cs->retry.num_min_delay;
				retries[i].num_max_delay = (unsigned)cs->retry.num_max_delay;
				retries[i].min_delay_ms = cs->retry.min_delay_ms;
				retries[i].max_delay_ms = cs->retry.max_delay_ms;
				retries[i].backoff = (enum tw_notify_backoff)cs->retry.backoff;
				retries[i].jitter_pct = (unsigned)cs->retry.jitter_pct;
				retries[i].max_age_ms = cs->retry.max_age_ms;
				s->retry = &retries[i];
			}
		}
	}
	for (size_t i = 0; i < ntopics; i++)
		if (!(a->topics[a->ntopics++] = strdup(topics[i].name))) {
			tw_err_set(err, TW_ENOMEM, "out of memory");
			goto out;
		}
	if (nc->state_dir)
		snprintf(state, sizeof state, "%s", nc->state_dir);
	else
		snprintf(state, sizeof state, "%s/notify", a->store);
	memset(&c, 0, sizeof c);
	c.state_dir = state;
	c.topics = topics;
	c.ntopics = ntopics;
	c.subs = subs;
	c.nsubs = nsubs;
	c.workers = nc->present ? (unsigned)nc->workers : 2;
	c.no_delivery = a->o.no_delivery;
	c.on_result = on_result;
	c.on_result_ctx = a;
	c.on_dead = on_dead;
	c.on_dead_ctx = a;
	if (tw_notify_open(&c, &a->notify, err)) {
		tw_err_prefix(err, "notifier: ");
		goto out;
	}
	rc = 0;
out:
	free(topics);
	free(subs);
	free(retries);
	return rc;
}

/* ---- evaluation --------------------------------------------------------------------------------- */

static struct bucket *slot(struct watch *w, int64_t t)
{
	int64_t q = t / w->period_ms;
	return &w->ring[(size_t)((q % HIST + HIST) % HIST)];
}

/* The bucket of period t, or NULL when the ring no longer (or not yet) holds it. */
static const struct bucket *bucket_at(const struct watch *w, int64_t t)
{
	const struct bucket *b = slot((struct watch *)w, t);
	return b->t == t ? b : NULL;
}

static void eval_until(struct tw_cli_alerting *a, int64_t limit);
static void tick_at(struct tw_cli_alerting *a, int64_t now);

void tw_cli_alerting_point(struct tw_cli_alerting *a, const struct tw_series_point *p, const char *const *dims)
{
	(void)dims;
	/* the metrics close periods in time order: every period before this point's is final, so the
	 * alarms can be evaluated up to it before its bucket may reuse a slot of the ring */
	if (p->t > a->final) {
		eval_until(a, p->t);
		a->final = p->t;
	}
	for (size_t i = 0; i < a->nw; i++) {
		struct watch *w = &a->w[i];
		struct bucket *b;
		int64_t t;
		int ok = (int)p->metric == w->mid;

		for (unsigned d = 0; ok && d < w->ndims && d < p->ndims; d++)
			ok = !w->sel[d] || (strlen(w->sel[d]) == p->dims[d].n && !memcmp(w->sel[d], p->dims[d].p, p->dims[d].n));
		if (!ok)
			continue;
		t = floor_to(p->t, w->period_ms);
		if (w->evaluated && t < w->evaluated)
			continue; /* a period already evaluated (a replay) */
		if (!w->evaluated && (!w->first_t || t < w->first_t))
			w->first_t = t;
		b = slot(w, t);
		if (b->t != t) {
			memset(b, 0, sizeof *b);
			b->t = t;
		}
		if (!b->n || p->min < b->min)
			b->min = p->min;
		if (!b->n || p->max > b->max)
			b->max = p->max;
		b->n += p->n;
		b->sum += p->sum;
	}
}

/* A finding of the behaviour detectors (durable in STORE/anomalies): counted for the "anomalies"
 * alarms whose dimensions it matches, in its period, or the first one not yet evaluated. */
static void on_anomaly(void *ctx, const struct tw_anomaly *an)
{
	struct tw_cli_alerting *a = ctx;

	if (!strcmp(an->phase, "end"))
		return; /* an insight is counted once, when it starts */
	for (size_t i = 0; i < a->nw; i++) {
		struct watch *w = &a->w[i];
		const char *v[3] = { an->detector, an->account, an->principal };
		struct bucket *b;
		int64_t t;
		int ok = w->mid == MID_ANOMALIES;

		for (unsigned d = 0; ok && d < 3; d++)
			ok = !w->sel[d] || !strcmp(w->sel[d], v[d]);
		if (!ok)
			continue;
		t = floor_to(an->start_ms, w->period_ms);
		if (w->evaluated && t < w->evaluated)
			t = w->evaluated; /* found after its period was evaluated: counts in the next */
		if (!w->evaluated && (!w->first_t || t < w->first_t))
			w->first_t = t;
		b = slot(w, t);
		if (b->t != t) {
			memset(b, 0, sizeof *b);
			b->t = t;
		}
		b->min = b->n ? (b->min < 1 ? b->min : 1) : 1;
		b->max = 1;
		b->n++;
		b->sum += 1;
		if (!w->finding)
			w->finding = malloc(sizeof *w->finding);
		if (w->finding)
			*w->finding = *an;
	}
}

/* Evaluates w at boundary bnd (the end of its newest period). */
static void eval_one(struct tw_cli_alerting *a, struct watch *w, int64_t bnd)
{
	struct tw_alarm_point pts[HIST];
	unsigned n = w->n > HIST ? HIST : w->n;
	struct tw_err err;

	if (w->band) {
		int64_t t = bnd - w->period_ms;
		struct bucket *b = slot(w, t);
		struct tw_band_point bp;
		double v;

		if (b->t != t) {
			memset(b, 0, sizeof *b);
			b->t = t;
		}
		v = stat_value(w, b);
		if (isnan(v) && (!strcmp(w->statistic, "Sum") || !strcmp(w->statistic, "SampleCount")))
			v = 0; /* a count with no events is 0 to the model */
		tw_err_clear(&err);
		if (!isnan(v) && tw_band_update(&w->model, t, v, &bp, &err) == TW_OK) {
			b->banded = bp.confidence >= 0.5; /* a band still learning does not breach */
			b->expected = bp.expected;
			b->lower = bp.confidence >= 0.5 ? bp.lower : -INFINITY;
			b->upper = bp.confidence >= 0.5 ? bp.upper : INFINITY;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		int64_t t = bnd - (int64_t)(n - i) * w->period_ms;
		const struct bucket *b = bucket_at(w, t);
		double v = b ? stat_value(w, b) : NAN;

		pts[i].t_ms = t;
		pts[i].missing = isnan(v);
		pts[i].value = isnan(v) ? 0 : v;
		pts[i].lower = b && b->banded ? b->lower : -INFINITY;
		pts[i].upper = b && b->banded ? b->upper : INFINITY;
		if (w->band && pts[i].missing && (!strcmp(w->statistic, "Sum") || !strcmp(w->statistic, "SampleCount")))
			pts[i].missing = 0, pts[i].value = 0;
	}
	tw_err_clear(&err);
	if (tw_alarm_set_eval(a->set, w->name, pts, n, bnd, &err)) {
		a->st.failures++;
		alog(a, TW_CONFIG_LOG_ERROR, "alarm %s: %s", w->name, err.msg);
	}
	a->st.evaluations++;
}

/* Hands the queued transitions to the router. */
static void push_transitions(struct tw_cli_alerting *a, int64_t now)
{
	size_t n = tw_alarm_set_npending(a->set);

	for (size_t i = 0; i < n; i++) {
		const struct tw_alarm_transition *tr = tw_alarm_set_pending(a->set, i);
		struct tw_err err;

		a->st.transitions++;
		if (tr->new_state == TW_ALARM_ALARM)
			a->st.to_alarm++;
		alog(a, tr->new_state == TW_ALARM_ALARM ? TW_CONFIG_LOG_WARN : TW_CONFIG_LOG_INFO, "alarm %s: %s -> %s: %s",
		     tr->alarm, tw_alarm_state_str(tr->old_state), tw_alarm_state_str(tr->new_state), tr->reason);
		tw_err_clear(&err);
		if (tw_route_push(a->route, tr, now, NULL, &err)) {
			a->st.failures++;
			alog(a, TW_CONFIG_LOG_ERROR, "alarm %s: routing: %s", tr->alarm, err.msg);
		}
	}
	tw_alarm_set_pending_clear(a->set);
}

/* STORE/alarms/band-<hash of the name>.bin: where w's band model is kept. */
static void band_path(const struct tw_cli_alerting *a, const struct watch *w, char *path, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = w->name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	snprintf(path, n, "%s/band-%016llx.bin", a->dir, (unsigned long long)h);
}

/* Writes STORE/alarms/evaluated.json and the band models. */
static void save_marks(struct tw_cli_alerting *a)
{
	json_t *o = json_object();
	char path[4300];
	struct tw_err err;
	char *text;

	if (!o)
		return;
	for (size_t i = 0; i < a->nw; i++) {
		struct watch *w = &a->w[i];
		if (w->evaluated)
			json_object_set_new(o, w->name, json_integer(w->evaluated));
		if (w->band && w->evaluated) {
			struct tw_buf b;
			band_path(a, w, path, sizeof path);
			tw_buf_init(&b, 1 << 16);
			tw_err_clear(&err);
			if (tw_band_save(&w->model, &b, &err) || tw_alarm_write_atomic(path, b.p, b.n, &err))
				alog(a, TW_CONFIG_LOG_ERROR, "alarm %s: band model: %s", w->name, err.msg);
			tw_buf_free(&b);
		}
	}
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return;
	snprintf(path, sizeof path, "%s/evaluated.json", a->dir);
	tw_err_clear(&err);
	if (tw_alarm_write_atomic(path, text, strlen(text), &err))
		alog(a, TW_CONFIG_LOG_ERROR, "%s", err.msg);
	free(text);
	a->evaluated_dirty = 0;
}

static void load_marks(struct tw_cli_alerting *a)
{
	char path[4300];
	json_t *o;

	snprintf(path, sizeof path, "%s/evaluated.json", a->dir);
	if (!(o = json_load_file(path, 0, NULL)))
		return;
	for (size_t i = 0; i < a->nw; i++) {
		struct watch *w = &a->w[i];
		json_t *v = json_object_get(o, w->name);
		if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) % w->period_ms == 0)
			w->evaluated = json_integer_value(v);
		if (w->band && w->evaluated) {
			char *buf = NULL;
			FILE *f;
			band_path(a, w, path, sizeof path);
			if ((f = fopen(path, "rb")) && (buf = malloc(TW_BAND_SAVED_SIZE + 1))) {
				size_t n = fread(buf, 1, TW_BAND_SAVED_SIZE + 1, f);
				struct tw_err err;
				tw_err_clear(&err);
				if (tw_band_load(&w->model, buf, n, &err))
					alog(a, TW_CONFIG_LOG_WARN, "alarm %s: band model %s: %s (learning again)", w->name,
					     path, err.msg);
			}
			free(buf);
			if (f)
				fclose(f);
		}
	}
	json_decref(o);
}

static void tick_at(struct tw_cli_alerting *a, int64_t now);

/* Evaluates every alarm at each of its boundaries up to limit, in time order across the alarms
 * (so that composites see their children as they were at each moment). */
static void eval_until(struct tw_cli_alerting *a, int64_t limit)
{
	for (size_t i = 0; i < a->nw; i++) {
		struct watch *w = &a->w[i];
		int64_t last = floor_to(limit, w->period_ms);

		if (!w->evaluated && w->first_t)
			w->evaluated = w->first_t; /* the first period with data starts the alarm */
		if (w->evaluated && (last - w->evaluated) / w->period_ms > MAX_GAP) {
			alog(a, TW_CONFIG_LOG_WARN, "alarm %s: %lld periods without evaluation skipped", w->name,
			     (long long)((last - w->evaluated) / w->period_ms - HIST));
			w->evaluated = last - HIST * w->period_ms;
		}
	}
	for (;;) {
		int64_t next = INT64_MAX;
		for (size_t i = 0; i < a->nw; i++) {
			struct watch *w = &a->w[i];
			int64_t b = w->evaluated + w->period_ms;
			if (w->evaluated && b <= limit && b < next)
				next = b;
		}
		if (next == INT64_MAX)
			break;
		for (size_t i = 0; i < a->nw; i++) {
			struct watch *w = &a->w[i];
			if (w->evaluated && w->evaluated + w->period_ms == next) {
				eval_one(a, w, next);
				w->evaluated = next;
				a->evaluated_dirty = 1;
			}
		}
		push_transitions(a, next);
		if (tw_route_next_ms(a->route) <= next)
			tick_at(a, next); /* notifications go out as event time passes, not in one heap */
	}
}

void tw_cli_alerting_advance(struct tw_cli_alerting *a, int64_t closed)
{
	if (closed <= 0)
		return;
	eval_until(a, closed);
	if (closed > a->clock) {
		a->clock = closed;
		a->clock_wall = wall_ms();
	}
	tick_at(a, a->clock);
	if (a->evaluated_dirty)
		save_marks(a);
}

/* Replays the closed points of STORE/metrics/points.jsonl from time from on (a restart). */
static void replay_points(struct tw_cli_alerting *a, int64_t from, int64_t until)
{
	char path[4300], line[65536];
	FILE *f;
	off_t size, pos;
	long long replayed = 0;

	snprintf(path, sizeof path, "%s/points.jsonl", tw_cli_metrics_dir(a->metrics));
	if (!(f = fopen(path, "r")))
		return;
	/* points are appended in time order: step back in 1 MiB steps until a line is older than from */
	fseeko(f, 0, SEEK_END);
	size = ftello(f);
	for (pos = size; pos > 0;) {
		long long t;
		pos = pos > (1 << 20) ? pos - (1 << 20) : 0;
		fseeko(f, pos, SEEK_SET);
		if (pos && !fgets(line, sizeof line, f)) /* a partial line */
			break;
		if (!fgets(line, sizeof line, f) || sscanf(line, "{\"t\":%lld", &t) != 1 || t < from)
			break;
	}
	fseeko(f, pos, SEEK_SET);
	if (pos && !fgets(line, sizeof line, f)) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL), *d;
		struct tw_series_point p;
		struct tw_str dims[TW_SERIES_MAX_DIMS];
		const char *const *names;
		unsigned nd;
		int id;

		if (!j)
			continue;
		memset(&p, 0, sizeof p);
		p.t = json_integer_value(json_object_get(j, "t"));
		p.name = json_string_value(json_object_get(j, "m"));
		d = json_object_get(j, "d");
		if (p.t >= from && p.t < until && p.name && (id = tw_cli_metrics_find(a->metrics, p.name, &names, &nd)) >= 0 &&
		    json_array_size(d) == nd && nd <= TW_SERIES_MAX_DIMS) {
			p.metric = (unsigned)id;
			for (unsigned k = 0; k < nd; k++) {
				json_t *s = json_array_get(d, k);
				dims[k].p = json_string_value(s);
				dims[k].n = json_string_length(s);
			}
			p.dims = dims;
			p.ndims = nd;
			p.n = (uint64_t)json_integer_value(json_object_get(j, "n"));
			p.sum = json_number_value(json_object_get(j, "sum"));
			p.min = json_number_value(json_object_get(j, "min"));
			p.max = json_number_value(json_object_get(j, "max"));
			tw_cli_alerting_point(a, &p, names);
			replayed++;
		}
		json_decref(j);
	}
	fclose(f);
	if (replayed)
		alog(a, TW_CONFIG_LOG_DEBUG, "alarms: %lld points replayed from %s", replayed, path);
}

/* ---- the evidence of an email ------------------------------------------------------------------- */

/* One record shown, with its strings. */
struct erec {
	int64_t t;                                   /* eventTime */
	char principal[256], event[128], ip[64], res[256], errc[128], id[96]; /* columns */
};

/* What the store says about an alarm's window. */
struct evidence {
	struct tw_cli_counter *c[4];               /* principals, APIs, user agents, error codes */
	struct erec rec[MAX_RECORDS];              /* the first records */
	size_t nrec;                               /* entries in rec */
	uint64_t total;                            /* matching records in the window */
	struct tw_notice_contrib contribs[4 * TOP_K]; /* top contributors (keys borrowed from c) */
	size_t ncontribs;                          /* entries in contribs */
	char keys[4 * TOP_K][300];                 /* contributor strings, NUL-terminated */
	char resource[256];                        /* the first record's resource, for `who` */
	char account[64], region[64];              /* the records' account and region ("" when mixed) */
	int mixed_account, mixed_region;           /* 1 once two records disagree */
};

static void cpy(char *dst, size_t cap, struct tw_str s)
{
	size_t n = s.n < cap - 1 ? s.n : cap - 1;
	memcpy(dst, s.p ? s.p : "", n);
	dst[n] = 0;
}

/* 1 when ev counts toward w's metric (its filter pattern, or the built-in series' dimensions). */
static int watch_matches(struct watch *w, const struct tw_event *ev)
{
	static const enum tw_field f4[] = { TW_F_ACCOUNT, TW_F_REGION, TW_F_EVENT_SOURCE, TW_F_EVENT_NAME };
	struct tw_err err;

	if (w->mid == MID_ANOMALIES) {
		if (!w->finding)
			return 0;
		for (unsigned i = 0; i < w->finding->nevidence; i++)
			if (strlen(w->finding->evidence[i]) == ev->f[TW_F_EVENT_ID].n &&
			    !memcmp(w->finding->evidence[i], ev->f[TW_F_EVENT_ID].p, ev->f[TW_F_EVENT_ID].n))
				return 1;
		return 0;
	}
	if (w->pattern) {
		if (!w->efs) {
			size_t idx;
			tw_err_clear(&err);
			if (tw_filter_set_new(&w->efs, &err) || tw_filter_set_add(w->efs, w->pattern, strlen(w->pattern), &idx, &err) ||
			    tw_filter_result_init(w->efs, &w->efr, &err)) {
				tw_filter_set_free(w->efs);
				w->efs = NULL;
				return 0;
			}
		}
		tw_err_clear(&err);
		return tw_filter_set_eval(w->efs, ev, &w->efr, &err) == TW_OK && w->efr.matched[0];
	}
	if (ev->kind != TW_KIND_CLOUDTRAIL)
		return 0;
	if (!strcmp(w->metric, "errors") && !ev->f[TW_F_ERROR_CODE].n)
		return 0;
	for (unsigned d = 0; d < w->ndims && d < TW_SERIES_MAX_DIMS; d++) {
		struct tw_str v;
		if (!w->sel[d])
			continue;
		if (!strcmp(w->metric, "calls_by_principal"))
			v = ev->f[TW_F_PRINCIPAL];
		else if (d < 4)
			v = ev->f[f4[d]];
		else
			continue;
		if (v.n != strlen(w->sel[d]) || memcmp(v.p, w->sel[d], v.n))
			return 0;
	}
	return 1;
}

/* A damaged part of the store met while reading an email's evidence: logged, the rest is used. */
static void evidence_damage(void *ctx, const char *problem)
{
	alog(ctx, TW_CONFIG_LOG_WARN, "evidence: %s (left out)", problem);
}

/* Reads the events of [from, until] back from the store and keeps what matches w. */
static void gather(struct tw_cli_alerting *a, struct watch *w, int64_t from, int64_t until, struct evidence *ev)
{
	static const char text[] = "limit 100000";
	const char *stores[1] = { a->store };
	struct tw_query *q = NULL;
	struct tw_qexec *x = NULL;
	struct tw_qrun_opts ro = { .ordered = 1, .on_damage = evidence_damage, .damage_ctx = a };
	struct tw_err err;
	struct tw_str api;
	char apibuf[300];

	memset(ev, 0, sizeof *ev);
	for (int i = 0; i < 4; i++)
		ev->c[i] = tw_cli_counter_new(10000);
	tw_err_clear(&err);
	if (tw_query_parse(text, sizeof text - 1, &q, &err) || tw_qexec_new(q, NULL, &x, &err) ||
	    tw_query_run(stores, 1, q, from, until, &ro, x, NULL, &err) || tw_qexec_finish(x, &err)) {
		alog(a, TW_CONFIG_LOG_WARN, "alarm %s: evidence from the store: %s", w->name, err.msg);
		goto out;
	}
	for (size_t i = 0, n = tw_qexec_nrows(x); i < n && i < SCAN_MAX; i++) {
		const struct tw_event *e = tw_qexec_row_event(x, i);
		if (!e || !watch_matches(w, e))
			continue;
		ev->total++;
		if (ev->total == 1) {
			cpy(ev->account, sizeof ev->account, e->f[TW_F_ACCOUNT]);
			cpy(ev->region, sizeof ev->region, e->f[TW_F_REGION]);
		} else {
			ev->mixed_account |= e->f[TW_F_ACCOUNT].n != strlen(ev->account) ||
					     memcmp(e->f[TW_F_ACCOUNT].p, ev->account, e->f[TW_F_ACCOUNT].n);
			ev->mixed_region |= e->f[TW_F_REGION].n != strlen(ev->region) ||
					    memcmp(e->f[TW_F_REGION].p, ev->region, e->f[TW_F_REGION].n);
		}
		snprintf(apibuf, sizeof apibuf, "%.*s:%.*s", (int)e->f[TW_F_EVENT_SOURCE].n, e->f[TW_F_EVENT_SOURCE].p,
			 (int)e->f[TW_F_EVENT_NAME].n, e->f[TW_F_EVENT_NAME].p);
		api = (struct tw_str){ apibuf, strlen(apibuf) };
		if (ev->c[0] && e->f[TW_F_PRINCIPAL].n)
			(void)tw_cli_counter_add(ev->c[0], e->f[TW_F_PRINCIPAL]);
		if (ev->c[1] && e->f[TW_F_EVENT_NAME].n)
			(void)tw_cli_counter_add(ev->c[1], api);
		if (ev->c[2] && e->f[TW_F_USER_AGENT].n)
			(void)tw_cli_counter_add(ev->c[2], e->f[TW_F_USER_AGENT]);
		if (ev->c[3] && e->f[TW_F_ERROR_CODE].n)
			(void)tw_cli_counter_add(ev->c[3], e->f[TW_F_ERROR_CODE]);
		if (ev->nrec < MAX_RECORDS) {
			struct erec *r = &ev->rec[ev->nrec++];
			r->t = e->time_ms;
			cpy(r->principal, sizeof r->principal, e->f[TW_F_PRINCIPAL]);
			cpy(r->event, sizeof r->event, e->f[TW_F_EVENT_NAME]);
			cpy(r->ip, sizeof r->ip, e->f[TW_F_SOURCE_IP]);
			cpy(r->res, sizeof r->res, e->nresources ? e->resources[0] : (struct tw_str){ "", 0 });
			cpy(r->errc, sizeof r->errc, e->f[TW_F_ERROR_CODE]);
			cpy(r->id, sizeof r->id, e->f[TW_F_EVENT_ID]);
			if (!ev->resource[0] && e->nresources)
				cpy(ev->resource, sizeof ev->resource, e->resources[0]);
		}
	}
	{
		static const char *const kinds[] = { "Principal", "API", "User agent", "Error code" };
		for (int k = 0; k < 4; k++) {
			struct tw_cli_count top[TOP_K];
			size_t nt = ev->c[k] ? tw_cli_counter_top(ev->c[k], TOP_K, top) : 0;
			for (size_t j = 0; j < nt; j++) {
				char *key = ev->keys[ev->ncontribs];
				cpy(key, sizeof ev->keys[0], top[j].key);
				ev->contribs[ev->ncontribs++] = (struct tw_notice_contrib){ kinds[k], key, top[j].n };
			}
		}
	}
out:
	tw_qexec_free(x);
	tw_query_free(q);
}

static void evidence_free(struct evidence *ev)
{
	for (int i = 0; i < 4; i++)
		tw_cli_counter_free(ev->c[i]);
}

static struct watch *watch_find(struct tw_cli_alerting *a, const char *name)
{
	for (size_t i = 0; i < a->nw; i++)
		if (!strcmp(a->w[i].name, name))
			return &a->w[i];
	return NULL;
}

static const char *label_get(struct tw_alarm_strs l, const char *key)
{
	return kv_get((char *const *)l.v, l.n, key);
}

static void fmt_iso(int64_t ms, char *out, size_t n)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Publishes one message to the outbox; counts and logs the outcome ("alarm X" / "rule Y" in what). */
static void publish(struct tw_cli_alerting *a, const char *topic, const char *subject, const char *text,
		    const char *mime, const struct tw_notify_attr *attrs, size_t nattrs, const char *dedup,
		    const char *what)
{
	struct tw_notify_msg msg;
	struct tw_notify_receipt rc;
	struct tw_err err;

	memset(&msg, 0, sizeof msg);
	msg.topic = topic;
	msg.subject = subject;
	msg.message = text;
	msg.attrs = attrs;
	msg.nattrs = nattrs;
	msg.mime = mime;
	msg.dedup_key = dedup;
	tw_err_clear(&err);
	if (tw_notify_publish(a->notify, &msg, &rc, &err)) {
		a->st.failures++;
		alog(a, TW_CONFIG_LOG_ERROR, "%s: publishing to topic %s: %s", what, topic, err.msg);
	} else if (!rc.duplicate) {
		a->st.notifications++;
		alog(a, TW_CONFIG_LOG_INFO, "%s: published \"%s\" to topic %s (%u deliveries)", what, subject, topic,
		     rc.deliveries);
	}
}

/* Renders and publishes one notification of the router. */
static void publish_notification(struct tw_cli_alerting *a, const struct tw_route_notification *nt)
{
	const struct tw_route_alert *al = &nt->alerts[nt->nalerts - 1];
	struct watch *w;
	struct tw_alarm_notice nc;
	struct evidence ev;
	struct tw_notice_record recs[MAX_RECORDS];
	int64_t ts[HIST];
	double vals[HIST], exps[HIST], los[HIST], his[HIST];
	char cmds[MAX_CMDS][8192], from_s[32], until_s[32], chart_from[32], dedup[1200];
	const char *cmdp[MAX_CMDS];
	size_t ncmds = 0;
	struct tw_buf subject, text, mime;
	struct tw_notify_attr attrs[6];
	size_t nattrs = 0;
	struct tw_err err;
	char what[300];
	int have_ev = 0;

	/* the alert that says most: the newest transition to ALARM, else the newest */
	for (size_t i = nt->nalerts; i-- > 0;)
		if (nt->alerts[i].state == TW_ALARM_ALARM) {
			al = &nt->alerts[i];
			break;
		}
	w = watch_find(a, al->alarm);
	memset(&nc, 0, sizeof nc);
	nc.alarm_name = al->alarm;
	nc.account_id = label_get(al->labels, "account");
	nc.region = label_get(al->labels, "region");
	nc.old_state = (enum tw_notice_state)al->old_state;
	nc.new_state = (enum tw_notice_state)al->state;
	nc.change_ms = al->time_ms;
	nc.reason = al->reason;
	if (w) {
		int64_t bnd = al->time_ms - al->time_ms % w->period_ms; /* evaluation boundary */
		int64_t from = bnd - (int64_t)w->n * w->period_ms, until = bnd - 1;
		size_t n = 0;

		nc.description = w->description;
		nc.metric_name = w->metric;
		nc.statistic = w->statistic;
		nc.period_s = w->period_ms / 1000;
		nc.evaluation_periods = w->n;
		nc.datapoints_to_alarm = w->m;
		nc.comparison = tw_alarm_cmp_str((enum tw_alarm_cmp)w->cmp);
		nc.has_threshold = !w->band;
		nc.threshold = w->threshold;
		nc.band_k = w->band ? w->k : 0;
		nc.treat_missing = tw_alarm_missing_str((enum tw_alarm_missing)w->missing);
		for (int64_t t = bnd - HIST * w->period_ms; t < bnd; t += w->period_ms) {
			const struct bucket *b = bucket_at(w, t);
			ts[n] = t;
			vals[n] = b ? stat_value(w, b) : NAN;
			if (isnan(vals[n]) && (!strcmp(w->statistic, "Sum") || !strcmp(w->statistic, "SampleCount")))
				vals[n] = 0;
			exps[n] = b && b->banded ? b->expected : NAN;
			los[n] = b && b->banded ? b->lower : NAN;
			his[n] = b && b->banded ? b->upper : NAN;
			n++;
		}
		/* start the chart at the first period with data */
		{
			size_t s = 0;
			while (s + 12 < n && vals[s] == 0)
				s++;
			nc.series.t_ms = ts + s;
			nc.series.value = vals + s;
			if (w->band) {
				nc.series.expected = exps + s;
				nc.series.lower = los + s;
				nc.series.upper = his + s;
			}
			nc.series.n = n - s;
			fmt_iso(ts[s], chart_from, sizeof chart_from);
		}
		nc.eval_from_ms = from;
		nc.eval_to_ms = bnd - w->period_ms;
		if (w->band && n) {
			nc.has_anomaly = 1;
			nc.expected = exps[n - 1];
			nc.observed = vals[n - 1];
		}
		if (w->mid == MID_ANOMALIES && w->finding) {
			/* a detector's finding: its own summary, numbers and evidence records */
			const struct tw_anomaly *f = w->finding;
			nc.description = f->summary;
			if (!strncmp(f->detector, "api_", 4)) {
				nc.has_anomaly = 1;
				nc.expected = f->baseline;
				nc.observed = f->observed;
			}
			gather(a, w, f->start_ms - 1000, (f->end_ms > f->start_ms ? f->end_ms : f->start_ms) + 60000, &ev);
		} else {
			gather(a, w, from, until, &ev);
		}
		have_ev = 1;
		/* the subject's "in account/region" when every contributing record agrees */
		if (!nc.account_id && ev.total && !ev.mixed_account && ev.account[0]) {
			nc.account_id = ev.account;
			if (!nc.region && !ev.mixed_region && ev.region[0])
				nc.region = ev.region;
		}
		for (size_t i = 0; i < ev.nrec; i++)
			recs[i] = (struct tw_notice_record){ ev.rec[i].t, ev.rec[i].principal, ev.rec[i].event, ev.rec[i].ip,
							     ev.rec[i].res, ev.rec[i].errc[0] ? ev.rec[i].errc : NULL,
							     ev.rec[i].id };
		nc.records = recs;
		nc.n_records = ev.nrec;
		nc.records_total = ev.total;
		nc.contribs = ev.contribs;
		nc.n_contribs = ev.ncontribs;
		fmt_iso(from, from_s, sizeof from_s);
		fmt_iso(until, until_s, sizeof until_s);
		if (ev.ncontribs && !strcmp(ev.contribs[0].kind, "Principal"))
			snprintf(cmds[ncmds++], sizeof cmds[0], "trailwatch what '%s' --store %s --from %s --until %s",
				 ev.contribs[0].value, a->store, from_s, until_s);
		if (ev.resource[0])
			snprintf(cmds[ncmds++], sizeof cmds[0], "trailwatch who '%s' --store %s --from %s --until %s",
				 ev.resource, a->store, from_s, until_s);
		if (ev.nrec) {
			struct tw_buf qb;
			tw_buf_init(&qb, 1024);
			(void)tw_buf_printf(&qb, NULL, "filter eventID in [");
			for (size_t i = 0; i < ev.nrec && i < 5; i++)
				(void)tw_buf_printf(&qb, NULL, "%s\"%s\"", i ? ", " : "", ev.rec[i].id);
			(void)tw_buf_printf(&qb, NULL, "]");
			snprintf(cmds[ncmds++], sizeof cmds[0], "trailwatch query --store %s --from %s --until %s '%s'",
				 a->store, from_s, until_s, tw_buf_cstr(&qb));
			tw_buf_free(&qb);
		}
		if (w->mid == MID_ANOMALIES)
			snprintf(cmds[ncmds++], sizeof cmds[0], "trailwatch anomalies --store %s --from %s --until %s",
				 a->store, chart_from, until_s);
		else
			snprintf(cmds[ncmds++], sizeof cmds[0], "trailwatch metrics show %s --store %s --from %s --until %s%s%s",
				 w->metric, a->store, chart_from, until_s, w->ndims ? " --by " : "",
				 w->ndims ? w->dimnames[0] : "");
		for (size_t i = 0; i < ncmds; i++)
			cmdp[i] = cmds[i];
		nc.commands = cmdp;
		nc.n_commands = ncmds;
	}
	tw_buf_init(&subject, 4096);
	tw_buf_init(&text, MAIL_MAX);
	tw_buf_init(&mime, MAIL_MAX);
	tw_err_clear(&err);
	if (tw_email_render(&nc, &subject, &text, &mime, &err)) {
		a->st.failures++;
		alog(a, TW_CONFIG_LOG_ERROR, "alarm %s: rendering the email: %s", al->alarm, err.msg);
		goto out;
	}
	if (nt->nalerts > 1) {
		(void)tw_buf_printf(&text, NULL, "\nThis notification groups %zu state changes:\n", nt->nalerts);
		for (size_t i = 0; i < nt->nalerts; i++) {
			char when[32];
			fmt_iso(nt->alerts[i].time_ms, when, sizeof when);
			(void)tw_buf_printf(&text, NULL, "  %s  %s  %s -> %s\n", when, nt->alerts[i].alarm,
					    tw_alarm_state_str(nt->alerts[i].old_state),
					    tw_alarm_state_str(nt->alerts[i].state));
		}
	}
	attrs[nattrs++] = (struct tw_notify_attr){ "alarm", al->alarm, 0, 0 };
	attrs[nattrs++] = (struct tw_notify_attr){ "state", tw_alarm_state_str(al->state), 0, 0 };
	attrs[nattrs++] = (struct tw_notify_attr){ "kind", "alarm", 0, 0 };
	if (label_get(al->labels, "severity"))
		attrs[nattrs++] = (struct tw_notify_attr){ "severity", label_get(al->labels, "severity"), 0, 0 };
	if (nc.account_id)
		attrs[nattrs++] = (struct tw_notify_attr){ "account", nc.account_id, 0, 0 };
	if (nc.region)
		attrs[nattrs++] = (struct tw_notify_attr){ "region", nc.region, 0, 0 };
	{ /* the same group with the same newest change is the same message, whenever it is handed out */
		int64_t newest = 0;
		for (size_t i = 0; i < nt->nalerts; i++)
			if (nt->alerts[i].time_ms > newest)
				newest = nt->alerts[i].time_ms;
		snprintf(dedup, sizeof dedup, "%s@%lld%s%lld", nt->group_key, (long long)newest, nt->repeat ? "r" : "-",
			 nt->repeat ? (long long)nt->time_ms : 0LL);
	}
	snprintf(what, sizeof what, "alarm %s", al->alarm);
	publish(a, nt->topic, tw_buf_cstr(&subject), tw_buf_cstr(&text), tw_buf_cstr(&mime), attrs, nattrs, dedup, what);
out:
	if (have_ev)
		evidence_free(&ev);
	tw_buf_free(&subject);
	tw_buf_free(&text);
	tw_buf_free(&mime);
}

/* Raises (or clears after an hour without trouble) the delivery alarm. */
static void delivery_check(struct tw_cli_alerting *a, int64_t now)
{
	struct tw_notify_stats ns;
	double wall = wall_ms();
	struct tw_err err;
	char reason[512];

	tw_notify_stats(a->notify, &ns);
	if (ns.dead > a->dead_seen || a->st.failures > a->fail_seen) {
		snprintf(reason, sizeof reason, "%llu notification deliveries dead-lettered and %llu alarm publish, render or "
			 "evaluation failures since start (see the log and the dead-letter file)",
			 (unsigned long long)ns.dead, (unsigned long long)a->st.failures);
		a->dead_seen = ns.dead;
		a->fail_seen = a->st.failures;
		a->delivery_ok_since = wall;
		if (!a->delivery_alarm) {
			tw_err_clear(&err);
			if (tw_alarm_set_set_state(a->set, DELIVERY_ALARM, TW_ALARM_ALARM, reason, now, &err) == TW_OK)
				a->delivery_alarm = 1;
		}
	} else if (a->delivery_alarm && wall - a->delivery_ok_since > 3600e3) {
		tw_err_clear(&err);
		if (tw_alarm_set_set_state(a->set, DELIVERY_ALARM, TW_ALARM_OK, "no delivery failure for an hour", now,
					   &err) == TW_OK)
			a->delivery_alarm = 0;
	}
}

/* Publishes what the router has due at now (event time). */
static void tick_at(struct tw_cli_alerting *a, int64_t now)
{
	const struct tw_route_notification *nts;
	size_t n = 0;
	struct tw_err err;

	tw_err_clear(&err);
	if (tw_alarm_set_sync(a->set, now, &err))
		alog(a, TW_CONFIG_LOG_WARN, "alarms: %s", err.msg);
	delivery_check(a, now);
	push_transitions(a, now);
	tw_err_clear(&err);
	if (tw_route_tick(a->route, now, &nts, &n, &err)) {
		a->st.failures++;
		alog(a, TW_CONFIG_LOG_ERROR, "router: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (nts[i].nalerts)
			publish_notification(a, &nts[i]);
	/* published (durable in the outbox): now the router may forget them; a crash before this
	 * line hands them out again, and the dedup key keeps the outbox from taking them twice */
	tw_err_clear(&err);
	if (tw_route_commit(a->route, &err)) {
		a->st.failures++;
		alog(a, TW_CONFIG_LOG_ERROR, "router: %s", err.msg);
	}
}

size_t tw_cli_alerting_tick(struct tw_cli_alerting *a, int flush)
{
	size_t before = a->st.notifications;
	int64_t now;

	if (!a->clock)
		return 0;
	now = a->clock + (int64_t)(wall_ms() - a->clock_wall);
	if (flush && now < a->clock + a->gwait + 1)
		now = a->clock + a->gwait + 1;
	tick_at(a, now);
	return (size_t)(a->st.notifications - before);
}

int tw_cli_alerting_drain(struct tw_cli_alerting *a, int64_t timeout_ms)
{
	return tw_notify_wait(a->notify, 0, timeout_ms);
}

/* ---- event rules -------------------------------------------------------------------------------- */

/* Evaluates the rules on ev and publishes each match (capped per rule and minute). */
static void rule_publish(struct tw_cli_alerting *a, const struct tw_event *ev)
{
	struct tw_err err;

	if (!a->rules)
		return;
	tw_err_clear(&err);
	a->st.rule_evaluations++;
	if (tw_filter_set_eval(a->rules, ev, &a->rr, &err))
		return;
	for (size_t i = 0; i < a->cfg->nrules; i++) {
		const struct tw_config_rule *r = &a->cfg->rules[i];
		struct tw_buf subj, text;
		struct tw_notify_attr attrs[6];
		char when[32], dedup[512], acct[64], region[64], what[400];
		int64_t minute = floor_to(ev->time_ms, 60000);
		size_t na = 0;

		if (!a->rr.matched[i])
			continue;
		a->st.rule_matches++;
		if (a->rule_min[i] != minute) {
			if (a->rule_count[i] > RULE_CAP)
				alog(a, TW_CONFIG_LOG_WARN, "rule %s: %u more matches in the minute not published (cap %d/min)",
				     r->name, a->rule_count[i] - RULE_CAP, RULE_CAP);
			a->rule_min[i] = minute;
			a->rule_count[i] = 0;
		}
		if (++a->rule_count[i] > RULE_CAP) {
			a->st.rule_capped++;
			continue;
		}
		fmt_iso(ev->time_ms, when, sizeof when);
		cpy(acct, sizeof acct, ev->f[TW_F_ACCOUNT]);
		cpy(region, sizeof region, ev->f[TW_F_REGION]);
		tw_buf_init(&subj, 1024);
		tw_buf_init(&text, 1u << 20);
		(void)tw_buf_printf(&subj, NULL, "RULE: \"%s\": %.*s by %.*s", r->name, (int)ev->f[TW_F_EVENT_NAME].n,
				    ev->f[TW_F_EVENT_NAME].p, (int)ev->f[TW_F_PRINCIPAL].n, ev->f[TW_F_PRINCIPAL].p);
		if (subj.n > 400)
			subj.n = 400, subj.p[400] = 0;
		(void)tw_buf_printf(&text, NULL,
				    "Event rule \"%s\" matched a record (pattern %s).\n\n"
				    "  time       %s\n  event      %.*s (%.*s)\n  principal  %.*s\n  source IP  %.*s\n"
				    "  account    %s / %s\n  error      %.*s\n  event id   %.*s\n\n"
				    "Dig further:\n  trailwatch what '%.*s' --store %s --since 24h\n\nThe record:\n",
				    r->name, r->pattern, when, (int)ev->f[TW_F_EVENT_NAME].n, ev->f[TW_F_EVENT_NAME].p,
				    (int)ev->f[TW_F_EVENT_SOURCE].n, ev->f[TW_F_EVENT_SOURCE].p, (int)ev->f[TW_F_PRINCIPAL].n,
				    ev->f[TW_F_PRINCIPAL].p, (int)ev->f[TW_F_SOURCE_IP].n, ev->f[TW_F_SOURCE_IP].p, acct, region,
				    ev->f[TW_F_ERROR_CODE].n ? (int)ev->f[TW_F_ERROR_CODE].n : 1,
				    ev->f[TW_F_ERROR_CODE].n ? ev->f[TW_F_ERROR_CODE].p : "-", (int)ev->f[TW_F_EVENT_ID].n,
				    ev->f[TW_F_EVENT_ID].p, (int)ev->f[TW_F_PRINCIPAL].n, ev->f[TW_F_PRINCIPAL].p, a->store);
		if (ev->raw.n <= 200000)
			(void)tw_buf_append(&text, ev->raw.p, ev->raw.n, NULL);
		else
			(void)tw_buf_printf(&text, NULL, "(%zu bytes: see trailwatch query)", ev->raw.n);
		(void)tw_buf_putc(&text, '\n', NULL);
		attrs[na++] = (struct tw_notify_attr){ "rule", r->name, 0, 0 };
		attrs[na++] = (struct tw_notify_attr){ "kind", "rule", 0, 0 };
		attrs[na++] = (struct tw_notify_attr){ "severity", r->severity ? r->severity : "high", 0, 0 };
		if (acct[0])
			attrs[na++] = (struct tw_notify_attr){ "account", acct, 0, 0 };
		if (region[0])
			attrs[na++] = (struct tw_notify_attr){ "region", region, 0, 0 };
		snprintf(dedup, sizeof dedup, "rule:%s:%.*s", r->name, (int)ev->f[TW_F_EVENT_ID].n, ev->f[TW_F_EVENT_ID].p);
		snprintf(what, sizeof what, "rule %s (%s)", r->name, when);
		publish(a, r->topic, tw_buf_cstr(&subj), tw_buf_cstr(&text), NULL, attrs, na, dedup, what);
		tw_buf_free(&subj);
		tw_buf_free(&text);
	}
}

void tw_cli_alerting_event(struct tw_cli_alerting *a, const struct tw_batch *b, size_t i)
{
	if (a->hit_batch == b && !a->hit[i])
		return; /* _begin evaluated the rules on it: none matched */
	rule_publish(a, &b->ev[i]);
}

/* ---- the event rules' journal ------------------------------------------------------------------
 * A rule publishes a matching record right after the store made its batch durable. A crash between
 * the two would lose that mail for good: the replayed record is a duplicate, and duplicates are not
 * evaluated again. So before the append, the records of the batch that match a rule are listed in
 * STORE/alarms/rules.pending (fsynced; one "TIME_MS HEX(eventID)" line each), and the list is
 * emptied once their publishes returned. At open, what the list still names and the store holds is
 * evaluated again: a publish that had happened is absorbed by its dedup key (rule:NAME:ID). */

/* Writes the journal: the records of b that match a rule (a->hit, filled by _begin), those whose
 * dup flag is 0 when dup is given; fsynced when sync. An empty list truncates it. 0, or -1 with err. */
static int rules_journal(struct tw_cli_alerting *a, const struct tw_batch *b, const unsigned char *dup, int sync,
			 struct tw_err *err)
{
	struct tw_buf t;
	int rc = 0;

	tw_buf_init(&t, 64u << 20);
	for (size_t i = 0; i < b->n && !rc; i++) {
		const struct tw_event *ev = &b->ev[i];
		if ((dup && dup[i]) || !a->hit[i])
			continue;
		rc = tw_buf_printf(&t, err, "%lld ", (long long)ev->time_ms) ? -1 : 0;
		for (size_t k = 0; k < ev->f[TW_F_EVENT_ID].n && !rc; k++)
			rc = tw_buf_printf(&t, err, "%02x", (unsigned char)ev->f[TW_F_EVENT_ID].p[k]) ? -1 : 0;
		if (!rc)
			rc = tw_buf_putc(&t, '\n', err) ? -1 : 0;
	}
	tw_err_clear(err);
	if (!rc && !t.n && a->pending_dirty) { /* nothing (new) matches: nothing to remember */
		if (ftruncate(a->pending_fd, 0) == 0)
			a->pending_dirty = 0;
	} else if (!rc && t.n) {
		const char *p = t.p;
		size_t n = t.n;
		while (n && !rc) {
			ssize_t w = pwrite(a->pending_fd, p, n, (off_t)(t.n - n));
			if (w <= 0 && errno != EINTR)
				rc = -1;
			else if (w > 0)
				p += w, n -= (size_t)w;
		}
		if (rc || ftruncate(a->pending_fd, (off_t)t.n) || (sync && fdatasync(a->pending_fd))) {
			tw_err_set(err, TW_EIO, "%s/rules.pending: %s", a->dir, strerror(errno));
			rc = -1;
		} else {
			a->pending_dirty = 1;
		}
	}
	tw_buf_free(&t);
	return rc;
}

/* Evaluates the rules once on each record of b, into a->hit: the journal, its narrowing and the
 * publishes after the append all read these flags instead of evaluating the patterns again. */
static int rules_hits(struct tw_cli_alerting *a, const struct tw_batch *b, struct tw_err *err)
{
	struct tw_err e;

	a->hit_batch = NULL;
	if (b->n > a->hitcap) {
		unsigned char *h = realloc(a->hit, b->n);
		if (!h) {
			tw_err_set(err, TW_ENOMEM, "out of memory for the event rules' matches");
			return -1;
		}
		a->hit = h;
		a->hitcap = b->n;
	}
	for (size_t i = 0; i < b->n; i++) {
		int hit = 0;
		tw_err_clear(&e);
		a->st.rule_evaluations++;
		/* an evaluation failure is counted and reported when the event is fed: evaluated again */
		if (tw_filter_set_eval(a->rules, &b->ev[i], &a->rr, &e)) {
			a->hit[i] = 1;
			continue;
		}
		for (size_t r = 0; r < a->cfg->nrules && !hit; r++)
			hit = a->rr.matched[r];
		a->hit[i] = (unsigned char)hit;
	}
	a->hit_batch = b;
	return 0;
}

int tw_cli_alerting_rules_begin(struct tw_cli_alerting *a, const struct tw_batch *b, struct tw_err *err)
{
	if (!a || !a->rules || a->pending_fd < 0)
		return 0;
	if (rules_hits(a, b, err))
		return -1;
	return rules_journal(a, b, NULL, 1, err);
}

void tw_cli_alerting_rules_appended(struct tw_cli_alerting *a, const struct tw_batch *b, const unsigned char *dup)
{
	struct tw_err err;

	/* only the new records can miss their mail; a duplicate's was sent when it was first stored
	 * (evaluating it again after a crash would mail it twice once the dedup window is over). No
	 * fsync: this only narrows the list, and after a power cut the wider list is still safe for
	 * the new records. */
	if (a && a->rules && a->pending_dirty && dup && a->hit_batch == b) {
		tw_err_clear(&err);
		(void)rules_journal(a, b, dup, 0, &err);
	}
}

void tw_cli_alerting_rules_forget(struct tw_cli_alerting *a)
{
	if (a)
		a->hit_batch = NULL;
}

void tw_cli_alerting_rules_end(struct tw_cli_alerting *a)
{
	tw_cli_alerting_rules_forget(a);
	/* no fsync: a list that outlives a crash only makes the next open publish again, deduplicated */
	if (a && a->pending_dirty && a->pending_fd >= 0 && ftruncate(a->pending_fd, 0) == 0)
		a->pending_dirty = 0;
}

/* Opens the journal and evaluates the rules again on what it names: the batch a crash interrupted. */
static int rules_recover(struct tw_cli_alerting *a, struct tw_err *err)
{
	char path[4300], *text = NULL;
	struct stat sb;
	size_t n = 0;

	snprintf(path, sizeof path, "%s/rules.pending", a->dir);
	a->pending_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->pending_fd < 0 || fstat(a->pending_fd, &sb))
		return tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno)), -1;
	if (sb.st_size > 0 && sb.st_size < (64 << 20) && (text = malloc((size_t)sb.st_size + 1)))
		n = (size_t)pread(a->pending_fd, text, (size_t)sb.st_size, 0) == (size_t)sb.st_size ? (size_t)sb.st_size : 0;
	for (char *line = text, *end; text && line < text + n; line = end + 1) {
		static const char qtext[] = "limit 100000";
		const char *stores[1] = { a->store };
		struct tw_qrun_opts ro = { .ordered = 1 };
		struct tw_query *q = NULL;
		struct tw_qexec *x = NULL;
		struct tw_err e2;
		char id[512], *sp;
		size_t idn = 0;
		long long t;

		if (!(end = memchr(line, '\n', (size_t)(text + n - line))))
			break; /* a torn last line: its batch was never appended */
		*end = 0;
		t = strtoll(line, &sp, 10);
		if (*sp != ' ')
			continue;
		for (sp++; sp[0] && sp[1] && idn < sizeof id; sp += 2) {
			unsigned v;
			if (sscanf(sp, "%2x", &v) != 1)
				break;
			id[idn++] = (char)v;
		}
		tw_err_clear(&e2);
		if (tw_query_parse(qtext, sizeof qtext - 1, &q, &e2) || tw_qexec_new(q, NULL, &x, &e2) ||
		    tw_query_run(stores, 1, q, t, t, &ro, x, NULL, &e2) || tw_qexec_finish(x, &e2)) {
			alog(a, TW_CONFIG_LOG_WARN, "rules: reading back a record of the interrupted batch: %s", e2.msg);
		} else {
			for (size_t i = 0, nr = tw_qexec_nrows(x); i < nr; i++) {
				const struct tw_event *ev = tw_qexec_row_event(x, i);
				if (ev && ev->f[TW_F_EVENT_ID].n == idn && !memcmp(ev->f[TW_F_EVENT_ID].p, id, idn)) {
					a->st.rules_recovered++;
					rule_publish(a, ev);
				}
			}
		}
		tw_qexec_free(x);
		tw_query_free(q);
	}
	free(text);
	if (ftruncate(a->pending_fd, 0))
		return tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno)), -1;
	return 0;
}

/* ---- open and close ----------------------------------------------------------------------------- */

int tw_cli_alerting_open(const struct tw_config *cfg, const char *store, struct tw_cli_metrics *m,
			 const struct tw_cli_alerting_opts *o, struct tw_cli_alerting **out, struct tw_err *err)
{
	static const struct tw_config empty;
	struct tw_cli_alerting *a = calloc(1, sizeof *a);
	const struct tw_config_notifier *nc;
	struct tw_route_config rc;
	static const char *const gb_default[] = { "alarm" };
	int64_t closed = tw_cli_metrics_closed(m), from = INT64_MAX;
	size_t nmax;
	double now = wall_ms();

	if (!a)
		return tw_err_set(err, TW_ENOMEM, "out of memory"), -1;
	a->pending_fd = -1;
	a->cfg = cfg ? cfg : &empty;
	a->metrics = m;
	if (o)
		a->o = *o;
	snprintf(a->store, sizeof a->store, "%s", store);
	snprintf(a->dir, sizeof a->dir, "%s/alarms", store);
	nmax = a->cfg->nalarms + 32;
	if (!(a->w = calloc(nmax, sizeof *a->w))) {
		tw_err_set(err, TW_ENOMEM, "out of memory");
		goto fail;
	}
	if (open_notifier(a, err) || tw_alarm_set_open(a->dir, &a->set, err))
		goto fail;
	for (size_t i = 0; i < a->cfg->nalarms; i++)
		if (!a->cfg->alarms[i].rule && define_config_alarm(a, i, (int64_t)now, err))
			goto fail;
	if (a->cfg->cis_alarms.enabled && define_cis_alarms(a, (int64_t)now, err))
		goto fail;
	for (size_t i = 0; i < a->cfg->nalarms; i++) /* composites once their children exist */
		if (a->cfg->alarms[i].rule && define_config_alarm(a, i, (int64_t)now, err))
			goto fail;
	if (define_delivery_alarm(a, (int64_t)now, err))
		goto fail;
	nc = &a->cfg->notifier;
	memset(&rc, 0, sizeof rc);
	rc.dir = a->dir;
	if (nc->present) {
		rc.group_by = (const char *const *)nc->group_by;
		rc.ngroup_by = nc->ngroup_by;
		rc.group_wait_ms = nc->group_wait_ms;
		rc.group_interval_ms = nc->group_interval_ms;
		rc.repeat_interval_ms = nc->repeat_interval_ms;
	} else {
		rc.group_by = gb_default;
		rc.ngroup_by = 1;
		rc.group_wait_ms = 30000;
		rc.group_interval_ms = 300000;
		rc.repeat_interval_ms = 4 * 3600000LL;
	}
	rc.manual_commit = 1; /* a group counts as notified once its message is in the outbox */
	a->gwait = rc.group_wait_ms > rc.group_interval_ms ? rc.group_wait_ms : rc.group_interval_ms;
	if (tw_route_open(&rc, &a->route, err))
		goto fail;
	/* event rules */
	if (a->cfg->nrules) {
		a->rule_min = calloc(a->cfg->nrules, sizeof *a->rule_min);
		a->rule_count = calloc(a->cfg->nrules, sizeof *a->rule_count);
		if (!a->rule_min || !a->rule_count || tw_filter_set_new(&a->rules, err)) {
			if (!err->rc)
				tw_err_set(err, TW_ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < a->cfg->nrules; i++) {
			size_t idx;
			const char *p = a->cfg->rules[i].pattern;
			if (tw_filter_set_add(a->rules, p, strlen(p), &idx, err)) {
				tw_err_prefix(err, "rules[%zu] (%s): pattern: ", i, a->cfg->rules[i].name);
				goto fail;
			}
		}
		if (tw_filter_result_init(a->rules, &a->rr, err) || rules_recover(a, err))
			goto fail;
	}
	/* resume: where each alarm stopped, and the points it has not seen */
	load_marks(a);
	for (size_t i = 0; i < a->nw; i++) {
		struct watch *w = &a->w[i];
		if (!w->evaluated && closed > 0)
			w->evaluated = floor_to(closed, w->period_ms); /* a new alarm starts now, not in the past */
		if (w->evaluated - HIST * w->period_ms < from)
			from = w->evaluated - HIST * w->period_ms;
	}
	if (closed > 0 && from < closed)
		replay_points(a, from, closed);
	if (closed > 0) {
		tw_cli_alerting_advance(a, closed);
		a->clock = closed;
		a->clock_wall = wall_ms();
	}
	tw_cli_metrics_set_alerting(m, a);
	if (tw_cli_metrics_detectors(m))
		tw_cli_detectors_on_anomaly(tw_cli_metrics_detectors(m), on_anomaly, a);
	*out = a;
	return 0;
fail:
	tw_cli_alerting_close(a);
	return -1;
}

void tw_cli_alerting_stats(const struct tw_cli_alerting *a, struct tw_cli_alerting_stats *st)
{
	*st = a->st;
}

void tw_cli_alerting_close(struct tw_cli_alerting *a)
{
	if (!a)
		return;
	if (a->metrics) {
		tw_cli_metrics_set_alerting(a->metrics, NULL);
		if (tw_cli_metrics_detectors(a->metrics))
			tw_cli_detectors_on_anomaly(tw_cli_metrics_detectors(a->metrics), NULL, NULL);
	}
	if (a->evaluated_dirty)
		save_marks(a);
	tw_notify_close(a->notify);
	tw_route_close(a->route);
	tw_alarm_set_close(a->set);
	for (size_t i = 0; a->w && i < a->nw; i++)
		watch_free(&a->w[i]);
	free(a->w);
	if (a->rules) {
		tw_filter_result_free(&a->rr);
		tw_filter_set_free(a->rules);
	}
	free(a->rule_min);
	free(a->rule_count);
	free(a->hit);
	if (a->pending_fd >= 0)
		close(a->pending_fd);
	for (size_t i = 0; i < a->ntopics; i++)
		free(a->topics[i]);
	free(a->topics);
	free(a);
}
