/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/series.h: per-period aggregates of metrics, keyed by dimension values, computed from event
 * time (not arrival time). Values are folded into the period of their event's time; a period is
 * closed and emitted once the event-time watermark (the newest event time seen) has passed its end
 * by the lateness window; a value for a period already closed is counted as late and dropped.
 * Each metric keeps at most max_keys distinct dimension tuples: later tuples fold into one tuple
 * whose every dimension is "other" (counted), so a high-cardinality dimension cannot exhaust memory.
 * The caller persists what is emitted; nothing here touches the disk or knows about the store. */
#ifndef TW_ALERTS_SERIES_H
#define TW_ALERTS_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define TW_SERIES_MAX_DIMS 4     /* dimensions per metric (3 for metric filters, as CloudWatch; 4 built in) */
#define TW_SERIES_MAX_METRICS 256 /* metrics per series set */
#define TW_SERIES_OTHER "other"  /* the dimension value of the overflow tuple */

struct tw_series_opts {
	int64_t period_ms;   /* aggregation period (default 60 s) */
	int64_t lateness_ms; /* how long after its end a period stays open for late events (default 5 min) */
	size_t max_keys;     /* distinct dimension tuples kept per metric (default 1000) */
	size_t max_open;     /* open (period, tuple) cells in all, a hard memory cap (default 1,000,000) */
};

void tw_series_opts_default(struct tw_series_opts *o);

/* One closed datapoint, handed to the emit callback (everything borrowed for the call). */
struct tw_series_point {
	unsigned metric;         /* the metric's id (from tw_series_metric_add) */
	const char *name;        /* its name */
	const struct tw_str *dims; /* its dimension values (ndims of them; TW_SERIES_OTHER when folded) */
	unsigned ndims;          /* dimensions of the metric */
	int64_t t;               /* period start (ms since epoch, a multiple of period_ms) */
	uint64_t n;              /* values folded in (SampleCount) */
	double sum, min, max;    /* Sum, Minimum, Maximum of the values */
};

typedef void (*tw_series_emit_fn)(void *ctx, const struct tw_series_point *p);

/* Counters, for the status line and tests. */
struct tw_series_stats {
	uint64_t values;    /* values folded in */
	uint64_t late;      /* values dropped: their period was already closed */
	uint64_t folded;    /* values folded into the "other" tuple (max_keys reached) */
	uint64_t dropped;   /* values dropped because max_open cells were in use */
	uint64_t emitted;   /* points emitted */
};

struct tw_series;

enum tw_rc tw_series_new(const struct tw_series_opts *opts, struct tw_series **out, struct tw_err *err);
void tw_series_free(struct tw_series *s);

/* Declares a metric: name (copied), ndims dimension names (copied; <= TW_SERIES_MAX_DIMS), and an
 * optional default value emitted for a closed period in which the metric got no value while other
 * metrics did (CloudWatch's metric-filter default value; only for metrics without dimensions).
 * *id receives the metric's id. TW_EINVAL (bad arguments, duplicate name), TW_ELIMIT, TW_ENOMEM. */
enum tw_rc tw_series_metric_add(struct tw_series *s, const char *name, unsigned ndims, const char *const *dim_names,
				int has_default, double default_value, unsigned *id, struct tw_err *err);

/* Changes the lateness window (>= 0) and the cap on open cells (> 0; 0 keeps it): a backfill of
 * files in path order (S3's per-account, per-region prefixes) needs days of lateness, a live
 * stream minutes. Periods already open stay open until the new window passes them. */
void tw_series_set_window(struct tw_series *s, int64_t lateness_ms, size_t max_open);

/* Sets metric id's own cap on distinct tuples (instead of opts.max_keys): a built-in series of
 * accounts x regions x APIs needs more than a user's metric filter. TW_EINVAL for a bad id or 0. */
enum tw_rc tw_series_metric_set_max_keys(struct tw_series *s, unsigned id, size_t max_keys, struct tw_err *err);

/* The metric's id by name, or -1. */
int tw_series_metric_find(const struct tw_series *s, const char *name);

/* Events before floor_ms are ignored (counted late): periods up to there were closed and persisted
 * by an earlier run. Also raises the watermark to floor_ms. */
void tw_series_set_floor(struct tw_series *s, int64_t floor_ms);

/* Folds value into metric id's period of t_ms for the tuple dims[0..ndims) (bytes copied). Raises
 * the watermark to t_ms. A late value is counted, not an error. TW_EINVAL (bad id), TW_ENOMEM. */
enum tw_rc tw_series_put(struct tw_series *s, unsigned id, const struct tw_str *dims, double value, int64_t t_ms,
			 struct tw_err *err);

/* Closes every open period whose end + lateness <= watermark (all of them when flush_all), emitting
 * its points in time order (then metric, then tuple order of first appearance). Returns the time up
 * to which everything is closed in *closed_until (may be NULL): persist it with the points. */
void tw_series_advance(struct tw_series *s, int flush_all, tw_series_emit_fn emit, void *ctx, int64_t *closed_until);

int64_t tw_series_watermark(const struct tw_series *s);
void tw_series_get_stats(const struct tw_series *s, struct tw_series_stats *out);

#endif
