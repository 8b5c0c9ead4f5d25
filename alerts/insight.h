/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/insight.h: API call-rate and error-rate insights, like CloudTrail Insights'
 * ApiCallRateInsight and ApiErrorRateInsight: per (account, region, eventSource, eventName), and per
 * (account, region, eventSource, "*") for all APIs of a service, per 1-minute period, the calls and
 * the calls with an errorCode; an online baseline of each; an insight opens ("start" finding) when
 * the rate is far above the baseline and closes ("end" finding) when it is back. Event time only:
 * the caller feeds events in time order and calls tw_insight_advance(closed_until) as periods
 * close. No I/O: the state is saved to and loaded from a buffer.
 *
 * Baseline (per key and per metric): an exponentially weighted mean m of the per-minute count and
 * an exponentially weighted mean absolute deviation s (a MAD-like, robust spread), with weight
 * alpha = max(1/(n+1), 1/tau): the plain running mean for the first tau minutes (a fast warm-up:
 * after 30 minutes it is the 30-minute mean), then ~7 days of memory (tau = 10080), long enough to
 * average the daily cycle and short enough to follow a service's growth. The variance of one
 * minute is taken as max(m, (1.2533 s)^2, 1/1440): Poisson at least (counts of independent calls),
 * more when the key is burstier than Poisson, and never zero (a never-called key still has room for
 * one call a day).
 * Robustness: minutes inside an open insight do not update the baseline at all; other minutes are
 * clipped at m + 4 sd + 1 before updating, so the minutes of a burst before it was recognised
 * move the baseline by little; an incident cannot teach the baseline that it is normal.
 * Keys first seen after the detector started start with a learned history of zeros since then
 * (we were watching, and there were no calls), capped at tau minutes.
 *
 * Opening: after warmup_periods minutes of baseline, over the last w = 1, 5 and 15 minutes, with
 * c the count and e = w m the expected count: c >= min_count (so 0 -> 2 calls is never an
 * insight), c >= min_ratio x e (a relative rise, so a busy key's noise is not one), and
 * z = (c - e) / sqrt(w var + 1) >= z_open. The insight starts at the first elevated minute of the
 * current elevated run (a minute with a count above m + 2 sd; runs end after 15 quiet minutes).
 * Closing: when over the last 5 minutes z < z_close or c < min_count / 2; its end is the end of
 * its last elevated minute. An insight open longer than max_open_ms is closed and taken as the new
 * normal: the baseline jumps to its average (a lasting level shift stops being news).
 *
 * Contributors (principals, user-agent families, error codes): space-saving sketches of 8 slots
 * per kind (counts are upper bounds, exact while a kind has at most 8 distinct values): one for the
 * baseline (decayed by halving every tau minutes), one for the current minute, one for the
 * elevated run / open insight. The top 5 of each are reported.
 * Memory: at most max_keys keys (default 20,000; about 1-3 KB each with their sketches); beyond
 * that the least recently used key without an open insight is forgotten (if it comes back it
 * starts again from a history of zeros). */
#ifndef TW_ALERTS_INSIGHT_H
#define TW_ALERTS_INSIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/anomaly.h"
#include "core/buf.h"
#include "core/err.h"

struct tw_insight_opts {
	int64_t period_ms;       /* period (default 60 s) */
	double tau_periods;      /* baseline memory in periods (default 10080: 7 days of minutes) */
	unsigned warmup_periods; /* periods of baseline before an insight may open (default 30) */
	unsigned min_count;      /* events in the window needed to open (default 10) */
	double min_ratio;        /* observed / expected needed to open (default 3) */
	double z_open;           /* surprise needed to open, in standard deviations (default 6) */
	double z_close;          /* below this over 5 minutes the insight closes (default 2) */
	int64_t max_open_ms;     /* an insight longer than this is a level shift (default 6 h) */
	size_t max_keys;         /* keys kept (default 20,000) */
	int per_source;          /* 1 (default): also the (account, region, eventSource, "*") keys */
	int errors;              /* 1 (default): the error-rate insights too */
};

void tw_insight_opts_default(struct tw_insight_opts *o);

/* One CloudTrail event, as the detector needs it (all borrowed for the call). */
struct tw_insight_obs {
	int64_t t_ms;              /* eventTime */
	struct tw_str account;     /* recipientAccountId */
	struct tw_str region;      /* awsRegion */
	struct tw_str event_source; /* eventSource */
	struct tw_str event_name;  /* eventName */
	struct tw_str principal;   /* the identity (contributor) */
	struct tw_str user_agent;  /* userAgent (its family is the contributor) */
	struct tw_str error_code;  /* errorCode; n == 0: the call succeeded */
	struct tw_str event_id;    /* eventID (evidence) */
};

/* Called for each finding; a is valid for the call only. */
typedef void (*tw_insight_emit_fn)(void *ctx, const struct tw_anomaly *a);

struct tw_insight_stats {
	uint64_t events;   /* events observed */
	uint64_t late;     /* events before the closed mark (ignored) */
	uint64_t keys;     /* keys held now */
	uint64_t evicted;  /* keys forgotten for the cap */
	uint64_t opened;   /* insights opened */
	uint64_t closed;   /* insights closed */
	uint64_t open;     /* insights open now */
};

struct tw_insight;

/* opts may be NULL (defaults). TW_EINVAL for bad options, TW_ENOMEM. */
enum tw_rc tw_insight_new(const struct tw_insight_opts *opts, struct tw_insight **out, struct tw_err *err);
void tw_insight_free(struct tw_insight *ins); /* NULL ok */

/* Counts one event. Feed events in time order (an event older than its key's current minute is
 * counted in that minute). Periods of the key that the event's time has passed close first, which
 * may emit findings through emit. Events before the closed mark are counted late and ignored.
 * TW_ENOMEM (the state is still consistent). */
enum tw_rc tw_insight_observe(struct tw_insight *ins, const struct tw_insight_obs *ob, tw_insight_emit_fn emit,
			      void *ctx, struct tw_err *err);

/* Every period ending at or before closed_until is over: closes them for every key with pending
 * counts or an open insight (emitting findings) and sets the closed mark. */
enum tw_rc tw_insight_advance(struct tw_insight *ins, int64_t closed_until, tw_insight_emit_fn emit, void *ctx,
			      struct tw_err *err);

/* The closed mark (INT64_MIN before the first advance). */
int64_t tw_insight_closed(const struct tw_insight *ins);

void tw_insight_get_stats(const struct tw_insight *ins, struct tw_insight_stats *st);

/* Appends the whole state (options excluded: they come from the caller at every start) to out.
 * Format: magic "TWINSIG1", version, keys with baselines, rings, sketches and open insights,
 * CRC-32; native byte order (a state does not move between machines). */
enum tw_rc tw_insight_save(const struct tw_insight *ins, struct tw_buf *out, struct tw_err *err);
/* Replaces the state of ins (made by tw_insight_new) with the saved one. TW_ECORRUPT (bad magic,
 * checksum, truncated), TW_EUNSUP (other version), TW_ENOMEM; on failure ins is empty. */
enum tw_rc tw_insight_load(struct tw_insight *ins, const void *p, size_t n, struct tw_err *err);

#endif
