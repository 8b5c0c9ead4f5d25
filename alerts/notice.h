/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notice.h: everything an alarm notification shows, as plain data filled by the caller
 * (the alarm state machine / notifier). Every pointer is borrowed for the duration of the render
 * call; nothing here is freed or kept by the renderers (alerts/email.h, alerts/chart.h).
 * Strings are NUL-terminated UTF-8; NULL or "" means "not known" and the line is left out. */
#ifndef TW_ALERTS_NOTICE_H
#define TW_ALERTS_NOTICE_H

#include <stddef.h>
#include <stdint.h>

/* Alarm states, named and spelled as CloudWatch does (tw_notice_state_str). */
enum tw_notice_state {
	TW_NOTICE_OK = 0,                /* "OK" */
	TW_NOTICE_ALARM = 1,             /* "ALARM" */
	TW_NOTICE_INSUFFICIENT_DATA = 2, /* "INSUFFICIENT_DATA" */
};

/* Caps on what one notice may show; renderers show at most this many and say how many more. */
#define TW_NOTICE_MAX_POINTS 10000  /* series points drawn in the chart */
#define TW_NOTICE_MAX_CONTRIBS 100  /* contributor rows in total */
#define TW_NOTICE_MAX_RECORDS 100   /* record rows */
#define TW_NOTICE_MAX_COMMANDS 20   /* dig-further commands */

/* The metric around the event. Parallel arrays of n entries, oldest first; times ascending.
 * A NaN (or infinite) value is a missing datapoint: the chart leaves a gap, the text shows "-". */
struct tw_notice_series {
	const int64_t *t_ms;     /* datapoint times, ms since the epoch (start of each period) */
	const double *value;     /* observed values; NaN = missing */
	const double *expected;  /* anomaly model's expected values, or NULL (NaN entries allowed) */
	const double *lower;     /* anomaly band lower edge, or NULL (then upper is ignored too) */
	const double *upper;     /* anomaly band upper edge, or NULL (then lower is ignored too) */
	size_t n;                /* number of datapoints; 0 = no series (the chart says so) */
};

/* One "top contributor": who or what accounts for the metric's value. */
struct tw_notice_contrib {
	const char *kind;  /* group title: "Principal", "API", "User agent", "Error code", ... */
	const char *value; /* the contributor: an ARN, "s3.amazonaws.com:GetObject", "AccessDenied" */
	uint64_t count;    /* records it contributed in the window */
};

/* One of the top contributing records, in the columns the email shows. */
struct tw_notice_record {
	int64_t time_ms;        /* eventTime, ms since the epoch */
	const char *principal;  /* identity ARN or best stand-in */
	const char *event_name; /* eventName, e.g. "DeleteBucket" */
	const char *source_ip;  /* sourceIPAddress */
	const char *resource;   /* the main resource (ARN or name), may be NULL */
	const char *error_code; /* errorCode, NULL when the call succeeded */
	const char *event_id;   /* eventID: what `trailwatch query` can look up */
};

/* The whole notification. Zero-initialise, then fill what is known. */
struct tw_alarm_notice {
	/* What fired. */
	const char *alarm_name;        /* required: the alarm's name (subject and heading) */
	const char *description;       /* AlarmDescription, may be NULL */
	const char *account_id;        /* AWS account the metric belongs to, e.g. "123456789012" */
	const char *region;            /* AWS region, e.g. "us-east-1" */
	enum tw_notice_state old_state; /* state before the transition */
	enum tw_notice_state new_state; /* state after the transition (decides the subject prefix) */
	int64_t change_ms;             /* StateChangeTime, ms since the epoch */
	const char *reason;            /* NewStateReason, one sentence, CloudWatch style, e.g.
					* "Threshold Crossed: 3 out of the last 3 datapoints [5.0
					* (21/11/26 10:05:00), ...] were greater than or equal to the
					* threshold (1.0) (minimum 3 datapoints for OK -> ALARM
					* transition)." Shown verbatim. */

	/* The monitored metric and the rule. */
	const char *metric_namespace;  /* e.g. "CloudTrailMetrics", may be NULL */
	const char *metric_name;       /* e.g. "UnauthorizedAPICalls" */
	const char *statistic;         /* "Sum", "Average", "Maximum", "p99", ... */
	int64_t period_s;              /* period of one datapoint in seconds (0 = unknown) */
	unsigned evaluation_periods;   /* EvaluationPeriods (0 = unknown) */
	unsigned datapoints_to_alarm;  /* DatapointsToAlarm (0 = same as evaluation_periods) */
	const char *comparison;        /* CloudWatch operator name, e.g. "GreaterThanOrEqualToThreshold",
					* "LessThanLowerOrGreaterThanUpperThreshold" */
	int has_threshold;             /* 1 when `threshold` is a static threshold to draw */
	double threshold;              /* the static threshold (when has_threshold) */
	double band_k;                 /* anomaly band width in standard deviations; 0 = no band */
	const char *treat_missing;     /* TreatMissingData: "missing", "breaching", ... may be NULL */

	/* The evidence. */
	struct tw_notice_series series; /* the metric around the event (chart, datapoint table) */
	int64_t eval_from_ms;          /* first datapoint time of the evaluated window (highlighted);
					* eval_from_ms == eval_to_ms == 0: nothing highlighted */
	int64_t eval_to_ms;            /* last datapoint time of the evaluated window (inclusive) */
	int has_anomaly;               /* 1 when expected/observed below are meaningful */
	double expected;               /* anomaly: the value the model expected at the change */
	double observed;               /* anomaly: the value observed at the change */
	const struct tw_notice_contrib *contribs; /* top contributors, grouped by kind in order of
						   * first appearance; counts descending within a kind */
	size_t n_contribs;             /* entries in contribs */
	const struct tw_notice_record *records; /* top contributing records, most relevant first */
	size_t n_records;              /* entries in records */
	uint64_t records_total;        /* records matching in the window (>= n_records; 0 = unknown) */
	const char *const *commands;   /* dig-further commands, shown verbatim, e.g.
					* "trailwatch who arn:aws:iam::123456789012:user/alice --since 1h" */
	size_t n_commands;             /* entries in commands */
	const char *link;              /* optional http(s) URL to the alarm; other schemes are not
					* linked (shown as text) */
};

/* "OK", "ALARM", "INSUFFICIENT_DATA"; "UNKNOWN" for a value outside the enum. */
const char *tw_notice_state_str(enum tw_notice_state s);

#endif
