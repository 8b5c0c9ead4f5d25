/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/band.h: the anomaly detection band, like CloudWatch's ANOMALY_DETECTION_BAND(metric, k):
 * an online, causal model of one series (level, damped trend, daily and weekly seasonality, robust
 * scale) giving at every point an expected value, a band [lower, upper] of width k, an anomaly score
 * in [0,1] and a confidence in [0,1]. Plain struct, no allocation, no globals: one struct tw_band
 * per series, state size fixed (sizeof(struct tw_band), about 6 KB, whatever the series length).
 *
 * How it learns (see the numbered design notes at the top of band.c):
 *   - sampling period: the median of the first TW_BAND_NDT gaps between timestamps (irregular
 *     sampling is fine: seasonal slots are looked up by wall-clock time of day / of week);
 *   - level and trend: Holt-style exponential smoothing fed a winsorized value (residuals clipped
 *     at +-3 sigma), so a spike moves the baseline by at most a fraction of a sigma;
 *   - scale: an exponentially weighted mean absolute residual (winsorized too), floored by the
 *     data's resolution (the smallest change seen), turned into a sigma (x 1.2533);
 *   - level shifts: after TW_BAND_SHIFT_RUN consecutive points outside +-3 sigma on the same side,
 *     the level jumps to the median of those points: the band re-centres instead of raising an
 *     alarm storm;
 *   - seasonality: 48 half-hour slots of the day and 168 hourly slots of the week, each used only
 *     once it has data and only while it measurably shrinks the residuals (a gate compares the
 *     mean absolute residual with and without it), so a series without a daily pattern pays nothing.
 *
 * Confidence: 1 - exp(-n / TW_BAND_WARMUP_POINTS), n = points seen: 0.63 after 10 points, 0.95
 * after 30 (30 minutes of 1-minute data, 2.5 hours of 5-minute data). Scores are multiplied by it,
 * so a model that has not learned anything yet does not alarm. Seasonal slots add themselves when
 * they have been seen (one day, one week) and pass the gate; they do not change the confidence.
 *
 * Score: how rare this point's surprise is in the series' own history.
 *   - surprise u: |value - expected| / sigma, or the short mean of the last few z (a level shift
 *     shows there before any single point is extreme), whichever is larger;
 *   - rarity R = -log p, p the tail probability of u in a decayed histogram of past surprises
 *     (~700 points of memory, log-spaced bins), and likewise for the geometric mean surprise of the
 *     last ~10 points (a burst of moderately unusual points); beyond the largest surprise in the
 *     history p keeps falling as a Pareto tail whose exponent is fitted to the top 5% (Hill), so a
 *     new record ranks above old ones, by much on a light-tailed series, by little on a bursty one.
 *     A series that is always spiky must be more surprising than its usual spikes to score;
 *   - recurring: a surprise no larger than one remembered at the same half hour of an earlier day
 *     (memory fading over ~10 days) scores nothing, one 8 times larger is fully new, in between
 *     in proportion to log size (a nightly batch job's spike is not an anomaly the 5th time);
 *   - one event, one alarm: after a rare point, a decaying envelope of its rarity is taken off later
 *     points; it fades over hours while the series stays turbulent and within ~30 points once the
 *     points are ordinary again;
 *   - rarity score = exp(-100 p) x confidence: 0.5 for 1 point in ~144, 0.9 for 1 in ~950, 0.99 for
 *     1 in ~10000; it is scaled into [0, 0.9), below records;
 *   - records rank above every rarity score, in [0.9, 1): a value beyond the whole range the series
 *     has shown (after 100 points), by more than 5% of that range and 5 sigmas off the expected
 *     value, or a short mean (~5 points) of the values beyond the range of that mean, by 5% and with
 *     the short mean of z past 3 (a new level, not a new spike); ranked by the margin. A record
 *     must beat a decaying envelope of the last one's margin (half-life ~70 points) to count again.
 *     These are what an operator would call a first-ever: new peak, new floor, new level.
 */
#ifndef TW_ALERTS_BAND_H
#define TW_ALERTS_BAND_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define TW_BAND_K_DEFAULT 2.0       /* band width in sigmas, as CloudWatch's default */
#define TW_BAND_WARMUP_POINTS 10.0  /* confidence time constant, in points */
#define TW_BAND_NDT 9               /* gaps used to infer the sampling period */
#define TW_BAND_DAY_SLOTS 48        /* half-hour slots of the daily profile */
#define TW_BAND_WEEK_SLOTS 168      /* hourly slots of the weekly profile */
#define TW_BAND_HIST_BINS 64       /* bins of the surprise histogram (log scale) */
#define TW_BAND_SHIFT_RUN 5         /* same-side points outside +-3 sigma that make a level shift */

/* One seasonal profile: a mean residual per slot, the number of updates per slot, and the gate. */
struct tw_band_season {
	double v[TW_BAND_WEEK_SLOTS];  /* mean of (value - level) per slot; only the first nslots used */
	uint32_t cnt[TW_BAND_WEEK_SLOTS]; /* updates per slot (saturates at 1e9) */
	int64_t slot_ms;               /* slot width in ms (30 min or 1 h) */
	uint32_t nslots;               /* slots in one cycle (48 or 168) */
	double err_with;               /* EW mean |residual| when this profile is added */
	double err_without;            /* EW mean |residual| without it */
	int on;                        /* 1 while the gate lets the profile into the expected value */
};

/* The range a series has shown so far, for records (a value beyond everything seen). */
struct tw_band_range {
	double lo;  /* smallest value seen */
	double hi;  /* largest value seen */
	double env; /* decaying envelope of past record margins (one event, one alarm) */
};

/* The model of one series. Initialise with tw_band_init; copyable with memcpy/assignment. */
struct tw_band {
	double k;            /* band half-width in sigmas */
	uint64_t n;          /* points seen */
	int64_t t_last;      /* timestamp of the last point (ms since the epoch) */
	double x_last;       /* last value */
	int64_t dt[TW_BAND_NDT]; /* the first positive gaps between timestamps (ms) */
	uint32_t ndt;        /* gaps stored in dt */
	int64_t period_ms;   /* inferred sampling period (median of dt), 0 until known */
	double level;        /* deseasonalized level */
	double trend;        /* damped trend per point */
	double mad;          /* EW mean absolute one-step residual */
	double resolution;   /* smallest nonzero |change| between consecutive values (0 until seen) */
	double zs;           /* short EW mean of clipped z: level-shift evidence */
	int run_sign;        /* side of the current run of out-of-band points (-1, 0, +1) */
	uint32_t run_len;    /* length of that run */
	double run_vals[TW_BAND_SHIFT_RUN]; /* the run's deseasonalized values */
	double hist[TW_BAND_HIST_BINS]; /* decayed counts of past surprises, by log surprise */
	double htot;         /* their total weight */
	double lg;           /* EW mean of log surprise over the last ~10 points */
	double hist2[TW_BAND_HIST_BINS]; /* decayed counts of past exp(lg): cluster surprises */
	double htot2;        /* their total weight */
	double env;          /* decaying envelope of past raw scores (suppression) */
	struct tw_band_range raw;    /* range of the values seen: records of single points */
	struct tw_band_range smooth; /* range of the short mean of the values: records of levels */
	double sm;           /* short EW mean of the values (~5 points) */
	double mem_v[TW_BAND_DAY_SLOTS]; /* largest surprise seen per half hour of the day */
	int64_t mem_t[TW_BAND_DAY_SLOTS]; /* when it was seen (it decays with age) */
	struct tw_band_season day;  /* daily profile */
	struct tw_band_season week; /* weekly profile, on top of the daily one */
};

/* What the model says about one point (computed before the point is learned: causal). */
struct tw_band_point {
	double expected;   /* model's prediction for this point */
	double lower;      /* expected - k sigma */
	double upper;      /* expected + k sigma */
	double sigma;      /* the scale used */
	double score;      /* anomaly score in [0,1]: rarity below 0.9, records at 0.9 and above */
	double confidence; /* how much the model has learned, in [0,1] (see above) */
};

/* Resets b to an empty model with band width k (> 0 and finite; else TW_BAND_K_DEFAULT). */
void tw_band_init(struct tw_band *b, double k);

/* Feeds one point: fills *out (may be NULL) with the band and score as predicted from the points
 * before it, then learns the point. t_ms: milliseconds since the epoch; a timestamp earlier than
 * the previous one is accepted and counts as a zero gap. Returns TW_EINVAL (b unchanged) when
 * value is not finite. */
enum tw_rc tw_band_update(struct tw_band *b, int64_t t_ms, double value, struct tw_band_point *out,
			  struct tw_err *err);

/* Trains from a backfill: feeds t_ms[i], values[i] for i < n through tw_band_update (non-finite
 * values are skipped and counted in *skipped, which may be NULL). Same state as feeding them one
 * by one. */
enum tw_rc tw_band_train(struct tw_band *b, const int64_t *t_ms, const double *values, size_t n,
			 size_t *skipped, struct tw_err *err);

/* The band for a point at t_ms without learning anything (for display or alarm evaluation on a
 * value already fed). score and the envelope are not touched: out->score is 0. */
void tw_band_peek(const struct tw_band *b, int64_t t_ms, struct tw_band_point *out);

/* Confidence in [0,1] after the points seen so far. */
double tw_band_confidence(const struct tw_band *b);

/* Appends the state to out (a fixed-size little-endian record with magic "TWBAND", version and a
 * checksum). TW_ELIMIT/TW_ENOMEM from the buffer. */
enum tw_rc tw_band_save(const struct tw_band *b, struct tw_buf *out, struct tw_err *err);
#define TW_BAND_SAVED_SIZE 6192 /* bytes tw_band_save appends */

/* Restores a state saved by tw_band_save from p[0..n): resuming it gives bit for bit what the
 * uninterrupted model gives. TW_ECORRUPT (b unchanged) on a bad magic, size or checksum,
 * TW_EUNSUP on another version. */
enum tw_rc tw_band_load(struct tw_band *b, const void *p, size_t n, struct tw_err *err);

/* CloudWatch comparison operators of anomaly-detection alarms. */
enum tw_band_op {
	TW_BAND_OUTSIDE = 0, /* LessThanLowerOrGreaterThanUpperThreshold */
	TW_BAND_ABOVE = 1,   /* GreaterThanUpperThreshold */
	TW_BAND_BELOW = 2,   /* LessThanLowerThreshold */
};

/* 1 when value breaches the band p under op, else 0. NaN values never breach. */
int tw_band_breaches(enum tw_band_op op, double value, const struct tw_band_point *p);
/* Parses the CloudWatch name of an operator. Returns TW_OK and *op, or TW_EINVAL naming it. */
enum tw_rc tw_band_op_parse(const char *name, enum tw_band_op *op, struct tw_err *err);
/* The CloudWatch name of op. */
const char *tw_band_op_name(enum tw_band_op op);

#endif
