/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/cis.h: the built-in pack of the 15 CIS AWS Foundations Benchmark monitoring controls
 * (section 4.x of v1.4-v3.0: "ensure a log metric filter and alarm exist for ..."): a static table
 * of the published filter patterns, the patterns trailwatch evaluates, metric names and the usual
 * alarm. Pure data; alerts/filter.h compiles the patterns. */
#ifndef TW_ALERTS_CIS_H
#define TW_ALERTS_CIS_H

#include <stddef.h>

/* The alarm the benchmark prescribes for every control. */
struct tw_cis_alarm {
	const char *statistic;     /* "Sum" */
	unsigned period_s;         /* 300 */
	double threshold;          /* 1 */
	const char *comparison;    /* "GreaterThanOrEqualToThreshold" */
	unsigned eval_periods;     /* 1 */
	unsigned datapoints;       /* 1 (of eval_periods) */
	const char *missing_data;  /* "notBreaching" */
};

/* One control. Every string is static. */
struct tw_cis_control {
	const char *id;           /* "CIS-4.1" */
	const char *name;         /* slug: "cis-unauthorized-api-calls" */
	const char *title;        /* "Unauthorized API calls" */
	const char *published;    /* the pattern as the benchmark publishes it */
	const char *pattern;      /* the pattern we evaluate (== published unless that one is buggy) */
	const char *why;          /* when pattern != published: why, one sentence; else NULL */
	const char *metric;       /* metric name: "unauthorized_api_calls_metric" */
	const char *ns;           /* metric namespace: "CISBenchmark" */
	struct tw_cis_alarm alarm; /* the usual alarm */
};

/* The controls in order 4.1 .. 4.15; *n gets their count (15). */
const struct tw_cis_control *tw_cis_controls(size_t *n);
/* A control by id ("CIS-4.3", also "4.3") or name, or NULL. */
const struct tw_cis_control *tw_cis_lookup(const char *id_or_name);

#endif
