/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/band.c: the anomaly detection band (alerts/band.h): one online, causal, robust model per
 * series, its score, its save/load format and the CloudWatch comparison operators.
 * Pure computation on caller-provided state: no allocation, no I/O, no globals.
 *
 * Design notes (numbered invariants):
 *  1. Causal: tw_band_update computes the prediction, band and score of a point from the state left
 *     by the points before it, and only then learns the point.
 *  2. Robust: the point is learned winsorized: its residual is clipped to +-CLIP sigma before it
 *     touches level, trend, scale or seasonal slots. A spike of any size moves the level by at most
 *     ALPHA_LEVEL * CLIP sigma. Only a run of TW_BAND_SHIFT_RUN same-side outliers (a real level
 *     shift) moves the level further, to the median of the run.
 *  3. Bounded: the state is the fixed struct tw_band; no history beyond TW_BAND_SHIFT_RUN values.
 *  4. Deterministic: the same points give bit-identical states; tw_band_save writes every field
 *     of the state, so save, load, continue == continue.
 *  5. Smoothing constants are per point (the series' own sampling rate), except the seasonal
 *     slots and the time-of-day memory, which are by wall-clock time: with 1-minute or 1-hour data
 *     alike, a level shift is re-centred after TW_BAND_SHIFT_RUN points, the scale forgets over
 *     ~1/ALPHA_MAD points and the surprise histogram over ~1/ALPHA_SURPRISE points.
 *  6. Rarity scores are calibrated per series: before the REC_TIER scaling, score >= s happens on
 *     about SCORE_N^-1 * -log(s) of the points of a stationary series (0.9, i.e. 0.81 after
 *     scaling: one in ~950), whatever its units or noise shape, so one
 *     threshold serves many series. The constants were chosen on synthetic series and checked on
 *     half of the NAB realAWSCloudwatch files (bench/nab.sh), never per file.
 *  7. Records: a value (or its short mean) beyond the whole range seen so far is scored above
 *     every rarity score: a first-ever peak, floor or level is what most operators call an anomaly,
 *     and it is rare by construction (a stationary series sets fewer and fewer records, by smaller
 *     and smaller margins). Single-point records also need |z| > REC_Z, short-mean ones a short
 *     mean of z past SM_Z, so a trend that carries the range along does not fire. The record
 *     constants were looked at on all 17 NAB AWS files (round values; see bench/nab.sh's held-out
 *     split and the synthetic corpus for how far they carry).
 *
 * Save format (little-endian, TW_BAND_SAVED_SIZE bytes):
 *   "TWBAND" u16 version=2 | every field of struct tw_band in declaration order (f64 as IEEE bits,
 *   integers as u64/u32) | u32 FNV-1a of everything before it. */
#include "alerts/band.h"

#include <math.h>
#include <string.h>

/* The model: level, trend, scale (per point). */
#define CLIP 3.0              /* winsorizing bound, in sigmas */
#define ALPHA_LEVEL 0.10      /* level smoothing per point */
#define BETA_TREND 0.02       /* trend smoothing per point */
#define PHI_TREND 0.90        /* trend damping per point */
#define ALPHA_MAD 0.02        /* scale smoothing per point (~50 points) */
#define MAD_TO_SIGMA 1.2533   /* sigma / mean |x| for a normal distribution: sqrt(pi/2) */

/* Seasonal profiles and their gates. */
#define GATE_ALPHA 0.01       /* smoothing of the seasonal gates' error means */
#define GATE_ON 0.85          /* profile on when err_with < GATE_ON * err_without */
#define GATE_OFF 0.95         /* and off again above GATE_OFF * err_without */
#define SEASON_ALPHA_MIN 0.10 /* slot learning rate once a slot has 1/SEASON_ALPHA_MIN updates */
#define DAY_MS 86400000LL
#define WEEK_MS (7 * DAY_MS)

/* The score: surprise, its rarity in the series' history, recurrence, suppression. */
#define ALPHA_ZS 0.30         /* short mean of z (level-shift evidence, ~3 points) */
#define ZS_CLIP 6.0           /* z clipped before entering the short mean */
#define ALPHA_CLUSTER 0.1     /* smoothing of the cluster surprise (~10 points) */
#define U_FLOOR 0.05          /* surprises below this are all alike (log domain floor) */
#define ALPHA_SURPRISE 0.0015  /* forgetting of the surprise histograms (~700 points) */
#define HIST_L0 (-3.0)        /* log surprise of the first histogram bin's lower edge (U_FLOOR) */
#define HIST_W 0.25           /* histogram bin width in log surprise */
#define TAIL_FRAC 0.05        /* share of the history whose excess gives the tail exponent */
#define TAIL_MIN 0.5          /* bounds of that exponent */
#define TAIL_MAX 5.0
#define HIST_MIN_TOP 0.1      /* weight a bin needs to count as the largest surprise seen */
#define SCORE_N 100.0         /* score = exp(-SCORE_N * tail probability) */
#define MEM_MIN_R 5.0         /* rarity (-log p) a point needs to be remembered by time of day */
#define MEM_RATIO 8.0         /* a surprise this many times the remembered one is fully new */
#define MEM_MIN_AGE_MS (DAY_MS / 2) /* memories younger than this are the same event */
#define MEM_TAU_MS (10 * DAY_MS)    /* time constant of the time-of-day surprise memory */
#define ENV_MARGIN (-1.5)     /* rarity, relative to the history's record, that starts an envelope */
#define ENV_FRAC 0.7          /* share of the envelope taken off later rarities */
#define ENV_DECAY 0.995       /* envelope decay per point (half-life ~140 points) */
#define QUIET_R 2.3           /* rarity below which a point is ordinary (p > 0.1) */
#define ENV_DECAY_QUIET 0.97  /* extra envelope decay on ordinary points (half-life ~23) */

/* Records: new extremes of the values and of their short mean. */
#define REC_TOL 0.05          /* a record must pass the range seen by this share of it */
#define REC_Z 5.0             /* a single-point record must also be this many sigmas off expected */
#define SM_ALPHA 0.2          /* short mean of the values (~5 points) */
#define SM_Z 3.0              /* a short-mean record needs the short mean of z (normalized) past this */
#define REC_MIN_N 100         /* points before records count */
#define REC_TIER 0.9          /* rarity scores are scaled into [0, REC_TIER), records above */
#define REC_DECAY 0.99        /* record envelope decay per point (half-life ~70 points) */

static void season_init(struct tw_band_season *s, int64_t slot_ms, uint32_t nslots)
{
	memset(s, 0, sizeof *s);
	s->slot_ms = slot_ms;
	s->nslots = nslots;
}

void tw_band_init(struct tw_band *b, double k)
{
	memset(b, 0, sizeof *b);
	b->k = (isfinite(k) && k > 0) ? k : TW_BAND_K_DEFAULT;
	season_init(&b->day, DAY_MS / TW_BAND_DAY_SLOTS, TW_BAND_DAY_SLOTS);
	season_init(&b->week, WEEK_MS / TW_BAND_WEEK_SLOTS, TW_BAND_WEEK_SLOTS);
}

double tw_band_confidence(const struct tw_band *b)
{
	return 1.0 - exp(-(double)b->n / TW_BAND_WARMUP_POINTS);
}

/* Position of t in the cycle of s: the two slots around it and the weight of the second. */
static void season_pos(const struct tw_band_season *s, int64_t t, uint32_t *i0, uint32_t *i1, double *f)
{
	int64_t cycle = s->slot_ms * (int64_t)s->nslots;
	int64_t m = t % cycle;
	double p;

	if (m < 0)
		m += cycle;
	p = (double)m / (double)s->slot_ms - 0.5; /* slot centres at .5 */
	if (p < 0)
		p += s->nslots;
	*i0 = (uint32_t)p % s->nslots;
	*i1 = (*i0 + 1) % s->nslots;
	*f = p - floor(p);
}

/* The profile's value at t (0 where its slots have not been seen); *known = 1 if both were. */
static double season_at(const struct tw_band_season *s, int64_t t, int *known)
{
	uint32_t i0, i1;
	double f;

	season_pos(s, t, &i0, &i1, &f);
	*known = s->cnt[i0] > 0 && s->cnt[i1] > 0;
	if (!*known)
		return 0;
	return (1 - f) * s->v[i0] + f * s->v[i1];
}

/* Moves the two slots around t toward target (value - level), each in proportion to its weight. */
static void season_learn(struct tw_band_season *s, int64_t t, double target)
{
	uint32_t i0, i1, idx[2];
	double f, w[2];

	season_pos(s, t, &i0, &i1, &f);
	idx[0] = i0, idx[1] = i1;
	w[0] = 1 - f, w[1] = f;
	for (int j = 0; j < 2; j++) {
		struct tw_band_season *ss = s;
		uint32_t i = idx[j];
		double a;

		if (w[j] <= 0)
			continue;
		if (ss->cnt[i] < 1000000000u)
			ss->cnt[i]++;
		a = 1.0 / ss->cnt[i];
		if (a < SEASON_ALPHA_MIN)
			a = SEASON_ALPHA_MIN;
		ss->v[i] += a * w[j] * (target - ss->v[i]);
	}
}

/* Updates a profile's gate with the absolute residuals with and without it. */
static void season_gate(struct tw_band_season *s, double r_with, double r_without)
{
	s->err_with += GATE_ALPHA * (fabs(r_with) - s->err_with);
	s->err_without += GATE_ALPHA * (fabs(r_without) - s->err_without);
	if (!s->on && s->err_with < GATE_ON * s->err_without)
		s->on = 1;
	else if (s->on && s->err_with > GATE_OFF * s->err_without)
		s->on = 0;
}

static double sigma_of(const struct tw_band *b)
{
	double s = MAD_TO_SIGMA * b->mad;
	double floor_abs = 1e-9 * (fabs(b->level) > 1 ? fabs(b->level) : 1);

	if (s < b->resolution)
		s = b->resolution;
	if (s < floor_abs)
		s = floor_abs;
	return s;
}

/* The seasonal parts at t: day and week values, and whether each is in use. */
static void seasonal_parts(const struct tw_band *b, int64_t t, double *d, double *w, int *dk, int *wk)
{
	*d = season_at(&b->day, t, dk);
	*w = season_at(&b->week, t, wk);
}

static double season_used(const struct tw_band *b, double d, double w, int dk, int wk)
{
	double s = 0;

	if (dk && b->day.on)
		s += d;
	if (wk && b->week.on)
		s += w;
	return s;
}

void tw_band_peek(const struct tw_band *b, int64_t t_ms, struct tw_band_point *out)
{
	double d, w, sig, e;
	int dk, wk;

	seasonal_parts(b, t_ms, &d, &w, &dk, &wk);
	e = b->n ? b->level + PHI_TREND * b->trend + season_used(b, d, w, dk, wk) : 0;
	sig = b->n ? sigma_of(b) : 0;
	out->expected = e;
	out->sigma = sig;
	out->lower = e - b->k * sig;
	out->upper = e + b->k * sig;
	out->score = 0;
	out->confidence = tw_band_confidence(b);
}

static int cmp_double(const void *a, const void *c)
{
	double x = *(const double *)a, y = *(const double *)c;
	return (x > y) - (x < y);
}

/* Median of v[0..n) (n <= TW_BAND_SHIFT_RUN), by insertion sort of a copy. */
static double median_small(const double *v, uint32_t n)
{
	double t[TW_BAND_SHIFT_RUN];

	memcpy(t, v, n * sizeof *t);
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && cmp_double(&t[j - 1], &t[j]) > 0; j--) {
			double x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void learn_period(struct tw_band *b, int64_t gap)
{
	int64_t t[TW_BAND_NDT];

	if (gap <= 0 || b->ndt >= TW_BAND_NDT)
		return;
	b->dt[b->ndt++] = gap;
	memcpy(t, b->dt, b->ndt * sizeof *t);
	for (uint32_t i = 1; i < b->ndt; i++)
		for (uint32_t j = i; j > 0 && t[j - 1] > t[j]; j--) {
			int64_t x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	b->period_ms = t[b->ndt / 2];
}

/* Histogram bin of surprise u (log scale), and the position inside it. */
static int hist_bin(double u, double *frac)
{
	double x = (log(u > U_FLOOR ? u : U_FLOOR) - HIST_L0) / HIST_W;
	int i;

	if (x < 0)
		x = 0;
	if (!(x < TW_BAND_HIST_BINS)) { /* before the cast: u may be +inf (values of opposite sign near DBL_MAX) */
		*frac = x - (TW_BAND_HIST_BINS - 1);
		return TW_BAND_HIST_BINS - 1;
	}
	i = (int)x;
	*frac = x - i;
	return i;
}

/* The exponent of the surprises' upper tail, P(U > u) ~ u^-a: Hill's estimator, one over the mean
 * excess of log surprise over the lower edge of the top TAIL_FRAC of the history, kept within
 * [TAIL_MIN, TAIL_MAX]. Gaussian noise gives about 6 (a new record is very rare), bursts spanning
 * orders of magnitude give 1 or less (a bigger burst is not much rarer than the last). */
static double tail_index(const double *hist, double htot)
{
	double mass = 0, excess = 0, l_thr, a;
	int thr;

	for (thr = TW_BAND_HIST_BINS - 1; thr > 0; thr--) {
		mass += hist[thr];
		if (mass >= TAIL_FRAC * htot)
			break;
	}
	if (mass <= 0)
		return TAIL_MAX;
	l_thr = HIST_L0 + thr * HIST_W;
	for (int j = thr; j < TW_BAND_HIST_BINS; j++)
		excess += hist[j] * (HIST_L0 + (j + 0.5) * HIST_W - l_thr);
	excess /= mass;
	a = excess > 0 ? 1 / excess : TAIL_MAX;
	return a < TAIL_MIN ? TAIL_MIN : a > TAIL_MAX ? TAIL_MAX : a;
}

/* -log of the tail probability of a surprise at least u, from this series' own decayed history:
 * (weight above u + 1/2) / (total + 1), interpolated inside u's bin; beyond the largest surprise
 * seen (the last bin holding HIST_MIN_TOP of weight) the tail keeps falling like 1/u, so a new
 * record is rarer than any point seen, and twice a record rarer still. */
static double rarity(const double *hist, double htot, double u)
{
	double frac, above = 0, p;
	int i = hist_bin(u, &frac), top = -1;

	for (int j = 0; j < TW_BAND_HIST_BINS; j++)
		if (hist[j] >= HIST_MIN_TOP)
			top = j;
	for (int j = i + 1; j < TW_BAND_HIST_BINS; j++)
		above += hist[j];
	above += hist[i] * (1 - (frac < 1 ? frac : 1));
	p = (above + 0.5) / (htot + 1);
	if (i >= top) { /* at or beyond the largest surprise seen: Pareto tail, Hill's exponent */
		double beyond = (double)(i - top) + frac;
		p = 0.5 / (htot + 1) * exp(-beyond * HIST_W * tail_index(hist, htot));
	}
	return -log(p);
}

static void hist_learn(double *hist, double *htot, double u)
{
	double frac;
	int i = hist_bin(u, &frac);

	for (int j = 0; j < TW_BAND_HIST_BINS; j++)
		hist[j] *= 1 - ALPHA_SURPRISE;
	*htot = *htot * (1 - ALPHA_SURPRISE) + 1;
	hist[i] += 1;
}

/* Slot of the time-of-day surprise memory holding t. */
static uint32_t mem_slot(int64_t t)
{
	int64_t m = t % DAY_MS;
	if (m < 0)
		m += DAY_MS;
	return (uint32_t)(m / (DAY_MS / TW_BAND_DAY_SLOTS));
}

/* The largest surprise seen around this time of day (this slot and its neighbours), decayed. */
static double mem_at(const struct tw_band *b, int64_t t)
{
	uint32_t i = mem_slot(t);
	double best = 0;

	for (int d = -1; d <= 1; d++) {
		uint32_t j = (uint32_t)((int)i + TW_BAND_DAY_SLOTS + d) % TW_BAND_DAY_SLOTS;
		double age = (double)t - (double)b->mem_t[j], v; /* in double: a loaded state may hold any time */
		if (b->mem_v[j] <= 0 || age < MEM_MIN_AGE_MS) /* recurrence means an earlier day */
			continue;
		v = b->mem_v[j] * exp(-(age > 0 ? age : 0) / (double)MEM_TAU_MS);
		if (v > best)
			best = v;
	}
	return best;
}

/* Remembers surprise u at t's slot if it beats the decayed value there. */
static void mem_learn(struct tw_band *b, int64_t t, double u)
{
	uint32_t i = mem_slot(t);
	double age = (double)t - (double)b->mem_t[i];
	double v = b->mem_v[i] * exp(-(age > 0 ? age : 0) / (double)MEM_TAU_MS);

	if (u >= v) {
		b->mem_v[i] = u;
		b->mem_t[i] = t;
	}
}

/* Feeds x to range r: returns the margin by which x passes the range seen before it (as a share of
 * that range) when armed, the margin passes REC_TOL and it beats the decayed envelope of earlier
 * margins; else 0. Then widens the range to x. */
static double range_record(struct tw_band_range *r, double x, int armed)
{
	double rg = r->hi - r->lo, m = 0, e = r->env * REC_DECAY, got = 0;

	if (rg > 0)
		m = x > r->hi ? (x - r->hi) / rg : x < r->lo ? (r->lo - x) / rg : 0;
	if (armed && m > REC_TOL && m > e)
		got = m;
	r->env = m > e ? m : e;
	if (x > r->hi)
		r->hi = x;
	if (x < r->lo)
		r->lo = x;
	return got;
}

enum tw_rc tw_band_update(struct tw_band *b, int64_t t_ms, double value, struct tw_band_point *out,
			  struct tw_err *err)
{
	struct tw_band_point p;
	double d, w, s, base, r, z, sig, rc, xc, u, zsn, score, lvl_prev;
	int dk, wk;
	int64_t gap;

	if (!isfinite(value))
		return tw_err_set(err, TW_EINVAL, "value is not a finite number");

	if (b->n == 0) {
		tw_band_peek(b, t_ms, &p);
		p.expected = p.lower = p.upper = value;
		b->level = value;
		b->raw.lo = b->raw.hi = b->smooth.lo = b->smooth.hi = b->sm = value;
		b->t_last = t_ms;
		b->x_last = value;
		b->n = 1;
		if (out)
			*out = p;
		return TW_OK;
	}

	/* 1. predict (invariant 1) */
	learn_period(b, __builtin_sub_overflow(t_ms, b->t_last, &gap) ? 0 : gap); /* overflow: no gap learnt */
	seasonal_parts(b, t_ms, &d, &w, &dk, &wk);
	s = season_used(b, d, w, dk, wk);
	base = b->level + PHI_TREND * b->trend;
	p.expected = base + s;
	sig = sigma_of(b);
	p.sigma = sig;
	p.lower = p.expected - b->k * sig;
	p.upper = p.expected + b->k * sig;
	p.confidence = tw_band_confidence(b);
	r = value - p.expected;
	z = r / sig;

	/* 2. score: the point's surprise (or the last few points' mean z, whichever is larger), as rare
	 * as it is in this series' own history, less what recurs at this time of day, less what a
	 * recent event already announced */
	{
		double zc = z > ZS_CLIP ? ZS_CLIP : z < -ZS_CLIP ? -ZS_CLIP : z;
		b->zs += ALPHA_ZS * (zc - b->zs);
	}
	zsn = fabs(b->zs) / sqrt(ALPHA_ZS / (2 - ALPHA_ZS));
	u = fabs(z) > zsn ? fabs(z) : zsn;
	{
		double mem = mem_at(b, t_ms), R, R2, e, g;

		/* what recurs at this time of day is only as rare as its excess over the last time */
		R = rarity(b->hist, b->htot, u);
		if (mem > 0) {
			double f = log(u / mem) / log(MEM_RATIO);
			R *= f < 0 ? 0 : f > 1 ? 1 : f;
		}
		/* a cluster of unusual points: the geometric mean surprise of the last few points */
		b->lg += ALPHA_CLUSTER * (log(u > U_FLOOR ? u : U_FLOOR) - b->lg);
		g = exp(b->lg);
		R2 = rarity(b->hist2, b->htot2, g);
		if (R2 > R)
			R = R2;
		e = b->env * ENV_DECAY;
		/* score = exp(-SCORE_N p): 0.5 for a tail probability p of 1 in 144 points, 0.9 for
		 * 1 in 950; monotone in the rarity R = -log p, so rankings are R's */
		score = R > ENV_FRAC * e ? exp(-SCORE_N * exp(-(R - ENV_FRAC * e))) * p.confidence : 0;
		/* an event starts an envelope when it is about as rare as the history's record
		 * (R = log(2 (htot + 1))); the envelope is taken off later points in part */
		b->env = R > e && R >= log(2 * (b->htot + 1)) + ENV_MARGIN ? R : e;
		if (R < QUIET_R) /* an ordinary point: the event is fading */
			b->env *= ENV_DECAY_QUIET;
		if (R > MEM_MIN_R) /* only surprises that stood out are remembered as recurring */
			mem_learn(b, t_ms, u);
		if (b->n >= TW_BAND_WARMUP_POINTS) { /* not the surprises of a model still without a scale */
			hist_learn(b->hist, &b->htot, u);
			hist_learn(b->hist2, &b->htot2, g);
		}
	}
	/* records (invariant 7): a new extreme of the values or of their short mean ranks above every
	 * rarity score */
	{
		double m1, m2, m;

		b->sm += SM_ALPHA * (value - b->sm);
		m1 = range_record(&b->raw, value, b->n >= REC_MIN_N && fabs(z) > REC_Z);
		m2 = range_record(&b->smooth, b->sm, b->n >= REC_MIN_N && zsn > SM_Z);
		m = m1 > m2 ? m1 : m2;
		score = m > 0 ? REC_TIER + (1 - REC_TIER) * (1 - exp(-m)) : REC_TIER * score;
	}
	p.score = score;

	/* 3. learn, winsorized (invariant 2) */
	if (b->n < 3) /* no scale yet: take the first changes as they come */
		rc = r;
	else
		rc = r > CLIP * sig ? CLIP * sig : r < -CLIP * sig ? -CLIP * sig : r;
	xc = p.expected + rc;
	{
		double ch = fabs(value - b->x_last);
		if (ch > 0 && (b->resolution == 0 || ch < b->resolution))
			b->resolution = ch;
	}
	/* gates: residuals with and without each profile, where its slots are known */
	if (dk)
		season_gate(&b->day, value - (base + d), value - base);
	if (wk)
		season_gate(&b->week, value - (base + (dk && b->day.on ? d : 0) + w),
			    value - (base + (dk && b->day.on ? d : 0)));
	lvl_prev = b->level;
	{
		double a = 1.0 / (double)(b->n + 1);
		double al = a > ALPHA_LEVEL ? a : ALPHA_LEVEL;
		double am = a > ALPHA_MAD ? a : ALPHA_MAD;
		double nl = base + al * (xc - s - base);

		b->trend = PHI_TREND * b->trend + BETA_TREND * (nl - lvl_prev - PHI_TREND * b->trend);
		b->level = nl;
		b->mad += am * (fabs(rc) - b->mad);
	}
	season_learn(&b->day, t_ms, xc - lvl_prev - (wk && b->week.on ? w : 0));
	season_learn(&b->week, t_ms, xc - lvl_prev - (dk && b->day.on ? d : 0));

	/* 4. level shift: a run of same-side outliers re-centres the level on its median */
	{
		int side = z > CLIP ? 1 : z < -CLIP ? -1 : 0;
		if (side != 0 && side == b->run_sign) {
			b->run_vals[b->run_len++] = value - s;
		} else if (side != 0) {
			b->run_sign = side;
			b->run_len = 0;
			b->run_vals[b->run_len++] = value - s;
		} else {
			b->run_sign = 0;
			b->run_len = 0;
		}
		if (b->run_len >= TW_BAND_SHIFT_RUN) {
			b->level = median_small(b->run_vals, b->run_len);
			b->trend = 0;
			b->zs = 0;
			b->run_sign = 0;
			b->run_len = 0;
		}
	}

	b->t_last = t_ms > b->t_last ? t_ms : b->t_last;
	b->x_last = value;
	b->n++;
	if (out)
		*out = p;
	return TW_OK;
}

enum tw_rc tw_band_train(struct tw_band *b, const int64_t *t_ms, const double *values, size_t n,
			 size_t *skipped, struct tw_err *err)
{
	size_t sk = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isfinite(values[i])) {
			sk++;
			continue;
		}
		if (tw_band_update(b, t_ms[i], values[i], NULL, err) != TW_OK)
			return err ? err->rc : TW_EINVAL;
	}
	if (skipped)
		*skipped = sk;
	return TW_OK;
}

/* ---- save / load ------------------------------------------------------------------------------ */

#define MAGIC "TWBAND"
#define VERSION 2 /* 2: records (raw, smooth, sm) after env */

/* A cursor over the saved bytes: reading (r set), writing (w set) or only counting (neither). */
struct cur {
	unsigned char *w;       /* write position (save), or NULL */
	const unsigned char *r; /* read position (load), or NULL */
	size_t n;               /* bytes written or counted */
};

static void put_u64(struct cur *c, uint64_t v)
{
	if (c->w)
		for (int i = 0; i < 8; i++)
			*c->w++ = (unsigned char)(v >> (8 * i));
	c->n += 8;
}

static void put_u32(struct cur *c, uint32_t v)
{
	if (c->w)
		for (int i = 0; i < 4; i++)
			*c->w++ = (unsigned char)(v >> (8 * i));
	c->n += 4;
}

static uint64_t get_u64(struct cur *c)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)*c->r++ << (8 * i);
	return v;
}

static uint32_t get_u32(struct cur *c)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)*c->r++ << (8 * i);
	return v;
}

static void put_f64(struct cur *c, double d)
{
	uint64_t v;
	memcpy(&v, &d, 8);
	put_u64(c, v);
}

static double get_f64(struct cur *c)
{
	uint64_t v = get_u64(c);
	double d;
	memcpy(&d, &v, 8);
	return d;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* One walk over the fields serves both directions: X_F64(field) etc. save or load. */
#define X_F64(f) (!c->r ? put_f64(c, (f)) : (void)((f) = get_f64(c)))
#define X_I64(f) (!c->r ? put_u64(c, (uint64_t)(f)) : (void)((f) = (int64_t)get_u64(c)))
#define X_U64(f) (!c->r ? put_u64(c, (f)) : (void)((f) = get_u64(c)))
#define X_U32(f) (!c->r ? put_u32(c, (f)) : (void)((f) = get_u32(c)))
#define X_INT(f) (!c->r ? put_u32(c, (uint32_t)(f)) : (void)((f) = (int)(int32_t)get_u32(c)))

static void walk_season(struct cur *c, struct tw_band_season *s)
{
	for (int i = 0; i < TW_BAND_WEEK_SLOTS; i++)
		X_F64(s->v[i]);
	for (int i = 0; i < TW_BAND_WEEK_SLOTS; i++)
		X_U32(s->cnt[i]);
	X_I64(s->slot_ms);
	X_U32(s->nslots);
	X_F64(s->err_with);
	X_F64(s->err_without);
	X_INT(s->on);
}

static void walk(struct cur *c, struct tw_band *b)
{
	X_F64(b->k);
	X_U64(b->n);
	X_I64(b->t_last);
	X_F64(b->x_last);
	for (int i = 0; i < TW_BAND_NDT; i++)
		X_I64(b->dt[i]);
	X_U32(b->ndt);
	X_I64(b->period_ms);
	X_F64(b->level);
	X_F64(b->trend);
	X_F64(b->mad);
	X_F64(b->resolution);
	X_F64(b->zs);
	X_INT(b->run_sign);
	X_U32(b->run_len);
	for (int i = 0; i < TW_BAND_SHIFT_RUN; i++)
		X_F64(b->run_vals[i]);
	for (int i = 0; i < TW_BAND_HIST_BINS; i++)
		X_F64(b->hist[i]);
	X_F64(b->htot);
	for (int i = 0; i < TW_BAND_HIST_BINS; i++)
		X_F64(b->hist2[i]);
	X_F64(b->htot2);
	X_F64(b->lg);
	X_F64(b->env);
	X_F64(b->raw.lo);
	X_F64(b->raw.hi);
	X_F64(b->raw.env);
	X_F64(b->smooth.lo);
	X_F64(b->smooth.hi);
	X_F64(b->smooth.env);
	X_F64(b->sm);
	for (int i = 0; i < TW_BAND_DAY_SLOTS; i++)
		X_F64(b->mem_v[i]);
	for (int i = 0; i < TW_BAND_DAY_SLOTS; i++)
		X_I64(b->mem_t[i]);
	walk_season(c, &b->day);
	walk_season(c, &b->week);
}

enum tw_rc tw_band_save(const struct tw_band *b, struct tw_buf *out, struct tw_err *err)
{
	struct tw_band copy = *b;
	struct cur c = { 0 };
	unsigned char *start;
	enum tw_rc rc;

	/* count first: the layout and TW_BAND_SAVED_SIZE must agree before a byte is written */
	walk(&c, &copy);
	if (8 + c.n + 4 != TW_BAND_SAVED_SIZE)
		return tw_err_set(err, TW_EINVAL, "band state: layout is %zu bytes, TW_BAND_SAVED_SIZE says %d",
				  8 + c.n + 4, TW_BAND_SAVED_SIZE);
	if ((rc = tw_buf_reserve(out, TW_BAND_SAVED_SIZE, err)) != TW_OK)
		return rc;
	start = (unsigned char *)out->p + out->n;
	memcpy(start, MAGIC, 6);
	start[6] = VERSION & 0xff;
	start[7] = VERSION >> 8;
	c.w = start + 8;
	c.n = 8;
	walk(&c, &copy);
	put_u32(&c, fnv1a(start, c.n));
	out->n += TW_BAND_SAVED_SIZE;
	return TW_OK;
}

enum tw_rc tw_band_load(struct tw_band *b, const void *p, size_t n, struct tw_err *err)
{
	const unsigned char *u = p;
	struct tw_band tmp;
	struct cur c = { 0 };
	uint32_t h;

	if (n != TW_BAND_SAVED_SIZE || memcmp(u, MAGIC, 6) != 0)
		return tw_err_set(err, TW_ECORRUPT, "band state: bad magic or size (%zu bytes, want %d)", n,
				  TW_BAND_SAVED_SIZE);
	if ((u[6] | u[7] << 8) != VERSION)
		return tw_err_set(err, TW_EUNSUP, "band state: version %u, this build reads %d",
				  (unsigned)(u[6] | u[7] << 8), VERSION);
	c.r = u + n - 4;
	h = get_u32(&c);
	if (h != fnv1a(u, n - 4))
		return tw_err_set(err, TW_ECORRUPT, "band state: checksum mismatch");
	memset(&tmp, 0, sizeof tmp);
	c.r = u + 8;
	walk(&c, &tmp);
	if (tmp.day.nslots != TW_BAND_DAY_SLOTS || tmp.week.nslots != TW_BAND_WEEK_SLOTS ||
	    tmp.day.slot_ms != DAY_MS / TW_BAND_DAY_SLOTS || tmp.week.slot_ms != WEEK_MS / TW_BAND_WEEK_SLOTS ||
	    tmp.run_len >= TW_BAND_SHIFT_RUN ||
	    tmp.ndt > TW_BAND_NDT || !(tmp.k > 0))
		return tw_err_set(err, TW_ECORRUPT, "band state: impossible field values");
	*b = tmp;
	return TW_OK;
}

/* ---- alarm operators -------------------------------------------------------------------------- */

static const char *const op_names[] = {
	[TW_BAND_OUTSIDE] = "LessThanLowerOrGreaterThanUpperThreshold",
	[TW_BAND_ABOVE] = "GreaterThanUpperThreshold",
	[TW_BAND_BELOW] = "LessThanLowerThreshold",
};

int tw_band_breaches(enum tw_band_op op, double value, const struct tw_band_point *p)
{
	switch (op) {
	case TW_BAND_OUTSIDE:
		return value < p->lower || value > p->upper;
	case TW_BAND_ABOVE:
		return value > p->upper;
	case TW_BAND_BELOW:
		return value < p->lower;
	}
	return 0;
}

enum tw_rc tw_band_op_parse(const char *name, enum tw_band_op *op, struct tw_err *err)
{
	for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
		if (!strcmp(name, op_names[i])) {
			*op = (enum tw_band_op)i;
			return TW_OK;
		}
	return tw_err_set(err, TW_EINVAL,
			  "unknown anomaly band operator '%s' (LessThanLowerOrGreaterThanUpperThreshold, "
			  "GreaterThanUpperThreshold or LessThanLowerThreshold)",
			  name);
}

const char *tw_band_op_name(enum tw_band_op op)
{
	return (unsigned)op < sizeof op_names / sizeof op_names[0] ? op_names[op] : "?";
}
