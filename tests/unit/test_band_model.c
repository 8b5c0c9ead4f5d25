/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_band_model.c: alerts/band.c on constructed series. Noise is the sum of three
 * uniform(-1,1) draws from a fixed LCG: mean 0, standard deviation exactly 1, bounded by +-3, so
 * every margin below follows from the construction (a step of 20 is 20 sigma; no noise point is
 * ever beyond 3 sigma). Scores have two tiers (band.h): a point that is rare but inside the range
 * seen scores 0.9 exp(-100 p) for a tail probability p, so RARE (0.81 = 0.9 x 0.9) means p < 1/950
 * and, on stationary noise, about one point in a thousand may reach it; a record (a new extreme of
 * the values or of their ~5-point mean) scores 0.9 or more, and nothing else does. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "alerts/band.h"

#define MIN_MS 60000LL
#define T0 1700000000000LL
#define RARE 0.81          /* a rarity score of 0.9 (p < 1/950) in the lower tier */
#define RECORD 0.9         /* the record tier starts here */ /* 2023-11-14T22:13:20Z; any origin works */

/* Deterministic noise with sd 1 (see the file comment). */
struct noise {
	uint64_t s; /* LCG state */
};

static double unif(struct noise *n)
{
	n->s = n->s * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((double)(n->s >> 11) / 9007199254740992.0) * 2 - 1;
}

static double gauss3(struct noise *n)
{
	return unif(n) + unif(n) + unif(n);
}

static void feed(struct tw_band *b, int64_t t, double v, struct tw_band_point *p)
{
	struct tw_err err;
	cr_assert_eq(tw_band_update(b, t, v, p, &err), TW_OK, "update: %s", err.msg);
}

Test(band_model, step_is_detected_within_a_few_points_then_the_band_adapts)
{
	struct tw_band b;
	struct tw_band_point p[2000];
	struct noise nz = { 1 };
	double best = 0;
	int outside = 0;

	tw_band_init(&b, 2);
	for (int i = 0; i < 2000; i++)
		feed(&b, T0 + i * MIN_MS, 100 + (i >= 1500 ? 20 : 0) + gauss3(&nz), &p[i]);
	/* 20 sigma beyond a level whose noise never exceeds 3 sigma: the first step point is a
	 * surprise larger than any seen, p < 1/1000 by a wide margin */
	for (int i = 1500; i < 1503; i++)
		best = fmax(best, p[i].score);
	cr_assert_geq(best, 0.9, "step scored only %f in its first 3 points", best);
	/* re-centred after TW_BAND_SHIFT_RUN points: 20 points later the prediction is on the new level */
	for (int i = 1520; i < 2000; i++) {
		cr_assert_lt(fabs(p[i].expected - 120), 3.0, "point %d: expected %f, level 120", i, p[i].expected);
		outside += p[i].lower > 100 + 20 + 3 || p[i].upper < 120 - 3; /* band excludes the whole noise range */
	}
	cr_assert_eq(outside, 0);
	for (int i = 1400; i < 1500; i++)
		cr_assert_lt(fabs(p[i].expected - 100), 3.0);
}

Test(band_model, spike_scores_high_and_does_not_move_the_baseline)
{
	struct tw_band b;
	struct tw_band_point p[1100];
	struct noise nz = { 7 };

	tw_band_init(&b, 2);
	for (int i = 0; i < 1100; i++)
		feed(&b, T0 + i * MIN_MS, 50 + (i == 1000 ? 30 : 0) + gauss3(&nz), &p[i]);
	cr_assert_geq(p[1000].score, 0.99, "spike of 30 sigma scored %f", p[1000].score);
	/* winsorized learning: the spike moves the level by at most 0.10 * 3 sigma (invariant 2) */
	for (int i = 1001; i < 1011; i++) {
		cr_assert_lt(fabs(p[i].expected - 50), 1.0, "point %d: expected %f after the spike", i, p[i].expected);
		cr_assert_lt(p[i].score, 0.5, "normal point %d after the spike scored %f", i, p[i].score);
	}
	cr_assert_lt(p[1001].upper, 50 + 30, "the spike widened the band to %f", p[1001].upper);
}

Test(band_model, slow_drift_raises_no_alarm_storm)
{
	struct tw_band b;
	struct tw_band_point p;
	struct noise nz = { 3 };
	int high = 0, outside = 0;

	tw_band_init(&b, 2);
	/* 0.01 sigma per point: 30 sigma over the run, never more than a small fraction of the noise
	 * between two points */
	for (int i = 0; i < 3000; i++) {
		double v = 10 + 0.01 * i + gauss3(&nz);
		feed(&b, T0 + i * 5 * MIN_MS, v, &p);
		if (i >= 500) {
			high += p.score >= RARE;
			outside += v < p.lower || v > p.upper;
		}
	}
	/* calibrated: about 1 in 950 points may reach RARE by chance; 2500 points, allow 10 (the new
	 * highs of a drift are no records: each is within the noise of the expected value) */
	cr_assert_leq(high, 10, "%d points scored >= RARE on a slow drift", high);
	/* sd 1 noise, band +-2 sigma: about 5%% outside if the level keeps up; allow 10%% */
	cr_assert_lt(outside, 250, "%d of 2500 points outside the band", outside);
}

Test(band_model, silence_is_detected)
{
	struct tw_band b;
	struct tw_band_point p[1300];
	struct noise nz = { 11 };
	double best = 0;

	tw_band_init(&b, 2);
	for (int i = 0; i < 1300; i++)
		feed(&b, T0 + i * MIN_MS, i >= 1200 ? 0 : 200 + 5 * gauss3(&nz), &p[i]);
	for (int i = 1200; i < 1203; i++)
		best = fmax(best, p[i].score);
	cr_assert_geq(best, 0.9, "drop to 0 from 200 +- 5 scored %f", best);
	cr_assert_lt(p[1200].lower, p[1200].expected);
	cr_assert(tw_band_breaches(TW_BAND_BELOW, 0, &p[1200]));
}

/* 100 + a 40-high bump around 14:00 UTC every day, 5-minute points, sd 2 noise. */
static double daily(int64_t t, struct noise *nz)
{
	double h = (double)((t / 1000) % 86400) / 3600.0;
	return 100 + 40 * exp(-((h - 14) / 1.5) * ((h - 14) / 1.5)) + 2 * gauss3(nz);
}

Test(band_model, daily_pattern_is_learned_and_an_off_schedule_peak_is_not)
{
	struct tw_band b;
	struct tw_band_point p;
	struct noise nz = { 5 };
	const int64_t day0 = 1700006400000LL; /* 2023-11-15T00:00:00Z */
	const int per_day = 288;
	double worst_on_schedule = 0, expect_at_peak = 0;
	int64_t t;

	tw_band_init(&b, 2);
	for (int i = 0; i < 15 * per_day; i++) {
		t = day0 + i * 5 * MIN_MS;
		feed(&b, t, daily(t, &nz), &p);
		if (i >= 14 * per_day) { /* day 15, after two weeks of learning */
			worst_on_schedule = fmax(worst_on_schedule, p.score);
			if (i == 14 * per_day + 14 * 12)
				expect_at_peak = p.expected;
		}
	}
	/* the scheduled bump (40 = 20 sigma above the base) is predicted, not scored */
	cr_assert_lt(worst_on_schedule, RARE, "the usual daily peak scored %f", worst_on_schedule);
	cr_assert_gt(expect_at_peak, 130, "expected %f at the 14:00 peak (true 140)", expect_at_peak);
	/* the same bump at 03:00, where the series is always 100 +- 6 */
	t = day0 + 15 * 86400000LL + 3 * 3600000LL;
	for (int64_t tt = day0 + 15 * 86400000LL; tt < t; tt += 5 * MIN_MS)
		feed(&b, tt, daily(tt, &nz), &p);
	feed(&b, t, 140, &p);
	cr_assert_geq(p.score, RARE, "a peak at 03:00 scored %f", p.score);
	/* 140 is no record (the daily peak reaches it): the lower tier */
	cr_assert_lt(p.score, RECORD, "a peak at 03:00 scored %f", p.score);
	cr_assert_lt(p.expected, 110);
}

Test(band_model, confidence_rises_during_warm_up)
{
	struct tw_band b;
	struct tw_band_point p;
	struct noise nz = { 9 };
	double prev = -1;

	tw_band_init(&b, 2);
	cr_assert_eq(tw_band_confidence(&b), 0);
	for (int i = 0; i < 60; i++) {
		feed(&b, T0 + i * MIN_MS, 5 + gauss3(&nz), &p);
		cr_assert_geq(p.confidence, prev);
		prev = p.confidence;
		/* 1 - exp(-n/10) with n the points seen before this one */
		cr_assert_float_eq(p.confidence, 1 - exp(-i / 10.0), 1e-12);
	}
	cr_assert_lt(1 - exp(-1 / 10.0), 0.1);
	cr_assert_geq(tw_band_confidence(&b), 0.99); /* 60 points: 1 - e^-6 */
}

Test(band_model, period_is_inferred_from_irregular_timestamps)
{
	struct tw_band b;
	struct noise nz = { 2 };
	int64_t t = T0;
	/* gaps of 5 minutes with a few 4, 6 and a 1-hour outage among the first nine */
	const int64_t gaps[] = { 5, 5, 4, 5, 60, 6, 5, 5, 5, 5, 5 };

	tw_band_init(&b, 2);
	feed(&b, t, 1, NULL);
	for (size_t i = 0; i < sizeof gaps / sizeof gaps[0]; i++) {
		t += gaps[i] * MIN_MS;
		feed(&b, t, 1 + gauss3(&nz), NULL);
	}
	cr_assert_eq(b.period_ms, 5 * MIN_MS, "period %lld ms", (long long)b.period_ms);
}

Test(band_model, rejects_non_finite_values_without_changing_state)
{
	struct tw_band b, before;
	struct tw_err err;

	tw_band_init(&b, 2);
	feed(&b, T0, 1, NULL);
	before = b;
	cr_assert_eq(tw_band_update(&b, T0 + MIN_MS, NAN, NULL, &err), TW_EINVAL);
	cr_assert_eq(tw_band_update(&b, T0 + MIN_MS, INFINITY, NULL, &err), TW_EINVAL);
	cr_assert_eq(memcmp(&b, &before, sizeof b), 0);
}

Test(band_model, operators_compare_against_the_band)
{
	struct tw_band_point p = { .expected = 10, .lower = 8, .upper = 12 };
	enum tw_band_op op;
	struct tw_err err;

	cr_assert(tw_band_breaches(TW_BAND_OUTSIDE, 7.9, &p));
	cr_assert(tw_band_breaches(TW_BAND_OUTSIDE, 12.1, &p));
	cr_assert_not(tw_band_breaches(TW_BAND_OUTSIDE, 8, &p)); /* the bounds are inside */
	cr_assert_not(tw_band_breaches(TW_BAND_OUTSIDE, 12, &p));
	cr_assert(tw_band_breaches(TW_BAND_ABOVE, 12.5, &p));
	cr_assert_not(tw_band_breaches(TW_BAND_ABOVE, 7, &p));
	cr_assert(tw_band_breaches(TW_BAND_BELOW, 7, &p));
	cr_assert_not(tw_band_breaches(TW_BAND_BELOW, 13, &p));
	cr_assert_not(tw_band_breaches(TW_BAND_OUTSIDE, NAN, &p));
	cr_assert_eq(tw_band_op_parse("GreaterThanUpperThreshold", &op, &err), TW_OK);
	cr_assert_eq(op, TW_BAND_ABOVE);
	cr_assert_eq(tw_band_op_parse("LessThanLowerOrGreaterThanUpperThreshold", &op, &err), TW_OK);
	cr_assert_eq(op, TW_BAND_OUTSIDE);
	cr_assert_eq(tw_band_op_parse("LessThanLowerThreshold", &op, &err), TW_OK);
	cr_assert_eq(op, TW_BAND_BELOW);
	cr_assert_eq(tw_band_op_parse("GreaterThanThreshold", &op, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "GreaterThanThreshold") != NULL);
	cr_assert_str_eq(tw_band_op_name(TW_BAND_BELOW), "LessThanLowerThreshold");
}

Test(band_model, band_width_follows_k)
{
	struct tw_band b2, b3;
	struct tw_band_point p2, p3;
	struct noise n2 = { 4 }, n3 = { 4 };

	tw_band_init(&b2, 2);
	tw_band_init(&b3, 3);
	for (int i = 0; i < 200; i++) {
		feed(&b2, T0 + i * MIN_MS, 10 + gauss3(&n2), &p2);
		feed(&b3, T0 + i * MIN_MS, 10 + gauss3(&n3), &p3);
	}
	cr_assert_float_eq(p2.expected, p3.expected, 1e-12);
	cr_assert_float_eq((p3.upper - p3.expected) / (p2.upper - p2.expected), 1.5, 1e-9);
	cr_assert_float_eq(p2.upper - p2.expected, 2 * p2.sigma, 1e-9);
	/* the learned sigma is near the true 1 (sd of the construction) */
	cr_assert(p2.sigma > 0.6 && p2.sigma < 1.6, "sigma %f", p2.sigma);
	tw_band_init(&b2, -1);
	cr_assert_eq(b2.k, TW_BAND_K_DEFAULT);
}

Test(band_model, noise_sets_no_records)
{
	struct tw_band b;
	struct tw_band_point p;
	struct noise nz = { 13 };
	int records = 0;

	tw_band_init(&b, 2);
	/* bounded noise: |z| never reaches 5 (sd 1, |noise| <= 3), and its 5-point mean never drifts
	 * 3 of its own standard deviations for long: no record of either kind after the first 100 */
	for (int i = 0; i < 5000; i++) {
		feed(&b, T0 + i * MIN_MS, 40 + gauss3(&nz), &p);
		records += i >= 100 && p.score >= RECORD;
	}
	cr_assert_eq(records, 0, "%d records on stationary noise", records);
}

Test(band_model, new_level_below_the_spikes_is_a_record_and_repeated_spikes_are_not)
{
	struct tw_band b;
	struct tw_band_point p[3000];
	struct noise nz = { 17 };
	double best = 0;
	int spike_records = 0;

	tw_band_init(&b, 2);
	/* base 10 +- 3 with a spike of +30 every 50 points; from 2500 on, the base is 25 (+15, half
	 * the spikes' height). The 5-point mean of the values (alpha 0.2) reaches about 10 + 0.2 * 30
	 * = 16, plus noise (at most +3), on a spike: the range of the mean tops out near 17-19. The new
	 * level's mean is 10 + 15 (1 - 0.8^k) after k points: 22.3 after 5, a new extreme of the mean
	 * before the band re-centres on the new level (TW_BAND_SHIFT_RUN = 5 points), while the short
	 * mean of z still says "shifted" */
	for (int i = 0; i < 3000; i++) {
		double v = (i >= 2500 ? 25 : 10) + (i % 50 == 25 ? 30 : 0) + gauss3(&nz);
		feed(&b, T0 + i * 5 * MIN_MS, v, &p[i]);
	}
	for (int i = 500; i < 2500; i++)
		spike_records += p[i].score >= RECORD;
	/* spikes of the same height as the first ones are no new extreme (the first few may set the
	 * range while it is still narrow) */
	cr_assert_leq(spike_records, 2, "%d of the repeated spikes scored as records", spike_records);
	for (int i = 2500; i < 2510; i++)
		best = fmax(best, p[i].score);
	cr_assert_geq(best, RECORD, "the new level scored only %f in its first 10 points", best);
}

Test(band_model, one_record_per_event)
{
	struct tw_band b;
	struct tw_band_point p[1600];
	struct noise nz = { 19 };
	int records = 0;

	tw_band_init(&b, 2);
	for (int i = 0; i < 1600; i++)
		feed(&b, T0 + i * MIN_MS, 100 + (i >= 1500 ? 20 : 0) + gauss3(&nz), &p[i]);
	/* the step of 20 sigma: the first point passes the range by ~2.4 ranges; later points of the
	 * same level are within noise of it, and the 5-point mean's new extremes shrink as it settles,
	 * each below the decayed envelope of the first margin */
	for (int i = 1500; i < 1600; i++)
		records += p[i].score >= RECORD;
	cr_assert_geq(records, 1);
	cr_assert_leq(records, 2, "%d records for one step", records);
}
