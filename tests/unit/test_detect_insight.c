/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_detect_insight.c: alerts/insight.c on synthetic per-minute streams: a steady
 * rate then a 20x burst gives one start and one end at the burst's minutes with the burster on
 * top; a second burst right after is still found (the baseline was not poisoned); a slow ramp is
 * not an insight; 0 -> 2 calls is not one; an error burst is an error-rate insight; a saved and
 * reloaded state continues exactly as the uninterrupted run; the explanation text of a
 * constructed case (expected text written by hand from the numbers fed). */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/insight.h"

#define MIN 60000LL
#define T0 1793761080000LL /* 2026-11-04T02:58:00Z: the burst of the golden case starts 3 h later */

struct found {
	struct tw_anomaly a[64]; /* findings */
	int n;                   /* count */
};

static void collect(void *ctx, const struct tw_anomaly *a)
{
	struct found *f = ctx;
	if (f->n < 64)
		f->a[f->n] = *a;
	f->n++;
}

static void put(struct tw_insight *ins, int64_t t, const char *name, const char *who, const char *err_code,
		struct found *f)
{
	struct tw_err err;
	struct tw_insight_obs ob = { t,
				     TW_STR_LIT("111122223333"),
				     TW_STR_LIT("us-east-1"),
				     TW_STR_LIT("secretsmanager.amazonaws.com"),
				     { name, strlen(name) },
				     { who, strlen(who) },
				     TW_STR_LIT("aws-cli/2.13.5 Python/3.11.4"),
				     { err_code, err_code ? strlen(err_code) : 0 },
				     TW_STR_LIT("0000-id") };
	cr_assert_eq(tw_insight_observe(ins, &ob, collect, f, &err), TW_OK, "%s", err.msg);
}

/* minute m gets n calls by who, spread over the minute */
static void minute(struct tw_insight *ins, int64_t m, int n, const char *who, const char *err_code, struct found *f)
{
	for (int i = 0; i < n; i++)
		put(ins, T0 + m * MIN + (i * MIN) / (n + 1), "GetSecretValue", who, err_code, f);
}

static struct tw_insight *make(void)
{
	struct tw_insight_opts o;
	struct tw_insight *ins;
	struct tw_err err;
	tw_insight_opts_default(&o);
	o.per_source = 0; /* the API keys only: the assertions count findings */
	cr_assert_eq(tw_insight_new(&o, &ins, &err), TW_OK);
	return ins;
}

static int count(const struct found *f, const char *det, const char *phase)
{
	int n = 0;
	for (int i = 0; i < f->n && i < 64; i++)
		n += !strcmp(f->a[i].detector, det) && !strcmp(f->a[i].phase, phase);
	return n;
}

static const struct tw_anomaly *nth(const struct found *f, const char *det, const char *phase, int k)
{
	for (int i = 0; i < f->n && i < 64; i++)
		if (!strcmp(f->a[i].detector, det) && !strcmp(f->a[i].phase, phase) && k-- == 0)
			return &f->a[i];
	return NULL;
}

/* 180 steady minutes of 2 calls, bursts of 40 more calls a minute by mallory for 10 minutes at
 * each start in bursts[], then steady until minute end. */
static void stream(struct tw_insight *ins, const int *bursts, int nb, int end, struct found *f)
{
	struct tw_err err;
	for (int m = 0; m < end; m++) {
		minute(ins, m, 2, "arn:aws:iam::111122223333:role/app", NULL, f);
		for (int b = 0; b < nb; b++)
			if (m >= bursts[b] && m < bursts[b] + 10)
				minute(ins, m, 40, "arn:aws:iam::111122223333:user/mallory", NULL, f);
	}
	cr_assert_eq(tw_insight_advance(ins, T0 + end * MIN, collect, f, &err), TW_OK);
}

Test(detect_insight, burst_gives_one_start_and_one_end_at_its_minutes)
{
	struct tw_insight *ins = make();
	static struct found f;
	const int bursts[] = { 180 };
	const struct tw_anomaly *s, *e;

	memset(&f, 0, sizeof f);
	stream(ins, bursts, 1, 260, &f);
	cr_assert_eq(f.n, 2, "findings: %d", f.n);
	s = nth(&f, "api_call_rate", "start", 0);
	e = nth(&f, "api_call_rate", "end", 0);
	cr_assert(s && e);
	cr_assert_eq(s->start_ms, T0 + 180 * MIN);
	cr_assert_eq(e->start_ms, T0 + 180 * MIN);
	cr_assert_eq(e->end_ms, T0 + 190 * MIN);
	cr_assert_str_eq(e->top[1][TW_ANOMALY_C_PRINCIPAL].c[0].key, "arn:aws:iam::111122223333:user/mallory");
	cr_assert_eq(e->top[1][TW_ANOMALY_C_PRINCIPAL].c[0].n, 400);
	cr_assert_str_eq(e->principal, "arn:aws:iam::111122223333:user/mallory");
	cr_assert_str_eq(e->top[0][TW_ANOMALY_C_PRINCIPAL].c[0].key, "arn:aws:iam::111122223333:role/app");
	cr_assert_float_eq(e->baseline, 2.0, 1e-9);
	cr_assert_float_eq(e->observed, 42.0, 1e-9);
	cr_assert_eq(e->observed_count, 420);
	cr_assert_str_eq(s->id, e->id);
	tw_insight_free(ins);
}

Test(detect_insight, second_burst_right_after_is_found_too)
{
	struct tw_insight *ins = make();
	static struct found f;
	const int bursts[] = { 180, 210 };

	memset(&f, 0, sizeof f);
	stream(ins, bursts, 2, 300, &f);
	cr_assert_eq(count(&f, "api_call_rate", "start"), 2);
	cr_assert_eq(count(&f, "api_call_rate", "end"), 2);
	cr_assert_eq(nth(&f, "api_call_rate", "start", 1)->start_ms, T0 + 210 * MIN);
	/* the second is judged against the same baseline: the first did not teach it */
	cr_assert_float_eq(nth(&f, "api_call_rate", "end", 1)->baseline, 2.0, 1e-9);
	tw_insight_free(ins);
}

Test(detect_insight, slow_ramp_is_not_an_insight)
{
	struct tw_insight *ins = make();
	static struct found f;
	struct tw_err err;
	double acc = 0;

	memset(&f, 0, sizeof f);
	/* 2 -> 5 calls a minute over two days, counts made exact by carrying the fraction */
	for (int m = 0; m < 2 * 1440; m++) {
		double rate = 2 + 3.0 * m / (2 * 1440);
		int n;
		acc += rate;
		n = (int)acc;
		acc -= n;
		minute(ins, m, n, "arn:aws:iam::111122223333:role/app", NULL, &f);
	}
	cr_assert_eq(tw_insight_advance(ins, T0 + 2 * 1440 * MIN, collect, &f, &err), TW_OK);
	cr_assert_eq(f.n, 0, "findings: %d (%s)", f.n, f.n ? f.a[0].summary : "");
	tw_insight_free(ins);
}

Test(detect_insight, two_calls_on_a_silent_key_are_not_an_insight)
{
	struct tw_insight *ins = make();
	static struct found f;
	struct tw_err err;

	memset(&f, 0, sizeof f);
	/* another API keeps the detector's clock going for an hour, then GetSecretValue gets 2 calls,
	 * later 9 in one minute (below min_count), then 12 (above) */
	for (int m = 0; m < 60; m++)
		put(&*ins, T0 + m * MIN, "ListSecrets", "arn:aws:iam::111122223333:role/app", NULL, &f);
	minute(ins, 60, 2, "arn:aws:iam::111122223333:role/app", NULL, &f);
	minute(ins, 200, 9, "arn:aws:iam::111122223333:role/app", NULL, &f);
	cr_assert_eq(tw_insight_advance(ins, T0 + 300 * MIN, collect, &f, &err), TW_OK);
	cr_assert_eq(f.n, 0);
	minute(ins, 400, 12, "arn:aws:iam::111122223333:role/app", NULL, &f);
	cr_assert_eq(tw_insight_advance(ins, T0 + 500 * MIN, collect, &f, &err), TW_OK);
	cr_assert_eq(count(&f, "api_call_rate", "start"), 1);
	tw_insight_free(ins);
}

Test(detect_insight, error_burst_is_an_error_rate_insight)
{
	struct tw_insight *ins = make();
	static struct found f;
	struct tw_err err;
	const struct tw_anomaly *e;

	memset(&f, 0, sizeof f);
	for (int m = 0; m < 240; m++) {
		minute(ins, m, 5, "arn:aws:iam::111122223333:role/app", NULL, &f);
		if (m % 10 == 0)
			minute(ins, m, 1, "arn:aws:iam::111122223333:role/app", "ThrottlingException", &f);
		if (m >= 180 && m < 185)
			minute(ins, m, 30, "arn:aws:iam::111122223333:user/prober", "AccessDenied", &f);
	}
	cr_assert_eq(tw_insight_advance(ins, T0 + 240 * MIN, collect, &f, &err), TW_OK);
	cr_assert_eq(count(&f, "api_error_rate", "start"), 1);
	cr_assert_eq(count(&f, "api_error_rate", "end"), 1);
	e = nth(&f, "api_error_rate", "end", 0);
	cr_assert_eq(e->start_ms, T0 + 180 * MIN);
	cr_assert_eq(e->end_ms, T0 + 185 * MIN);
	cr_assert_str_eq(e->top[1][TW_ANOMALY_C_ERROR_CODE].c[0].key, "AccessDenied");
	cr_assert_eq(e->top[1][TW_ANOMALY_C_ERROR_CODE].c[0].n, 150);
	cr_assert_str_eq(e->top[1][TW_ANOMALY_C_PRINCIPAL].c[0].key, "arn:aws:iam::111122223333:user/prober");
	cr_assert_str_eq(e->top[0][TW_ANOMALY_C_ERROR_CODE].c[0].key, "ThrottlingException");
	tw_insight_free(ins);
}

Test(detect_insight, saved_state_continues_like_the_uninterrupted_run)
{
	static struct found whole, part;
	const int bursts[] = { 180, 210 };
	struct tw_insight *a = make(), *b = make(), *c = make();
	struct tw_buf buf;
	struct tw_err err;

	memset(&whole, 0, sizeof whole);
	memset(&part, 0, sizeof part);
	stream(a, bursts, 2, 300, &whole);
	/* the same stream, cut at minute 185 (inside the first insight) through save and load */
	for (int m = 0; m < 185; m++) {
		minute(b, m, 2, "arn:aws:iam::111122223333:role/app", NULL, &part);
		if (m >= 180)
			minute(b, m, 40, "arn:aws:iam::111122223333:user/mallory", NULL, &part);
	}
	cr_assert_eq(tw_insight_advance(b, T0 + 185 * MIN, collect, &part, &err), TW_OK);
	tw_buf_init(&buf, 1 << 26);
	cr_assert_eq(tw_insight_save(b, &buf, &err), TW_OK);
	cr_assert_eq(tw_insight_load(c, buf.p, buf.n, &err), TW_OK, "%s", err.msg);
	for (int m = 185; m < 300; m++) {
		minute(c, m, 2, "arn:aws:iam::111122223333:role/app", NULL, &part);
		if (m < 190 || (m >= 210 && m < 220))
			minute(c, m, 40, "arn:aws:iam::111122223333:user/mallory", NULL, &part);
	}
	cr_assert_eq(tw_insight_advance(c, T0 + 300 * MIN, collect, &part, &err), TW_OK);
	cr_assert_eq(part.n, whole.n);
	for (int i = 0; i < whole.n; i++) {
		cr_assert_str_eq(part.a[i].summary, whole.a[i].summary);
		cr_assert_str_eq(part.a[i].id, whole.a[i].id);
	}
	/* a damaged state is refused */
	buf.p[buf.n / 2] ^= 1;
	cr_assert_eq(tw_insight_load(c, buf.p, buf.n, &err), TW_ECORRUPT);
	cr_assert_eq(tw_insight_load(c, buf.p, 10, &err), TW_ECORRUPT);
	tw_buf_free(&buf);
	tw_insight_free(a);
	tw_insight_free(b);
	tw_insight_free(c);
}

/* The explanation of the burst case, written from the numbers fed: 10 minutes of 40 calls by
 * mallory on top of the steady 2 a minute = 420 calls from 05:58 to 06:08, 42.0 a minute; the
 * baseline is the steady 2 a minute; mallory made 400 of the 420. */
Test(detect_insight, explanation_text_of_a_constructed_burst)
{
	struct tw_insight *ins = make();
	static struct found f;
	const int bursts[] = { 180 };

	memset(&f, 0, sizeof f);
	stream(ins, bursts, 1, 260, &f);
	cr_assert_str_eq(nth(&f, "api_call_rate", "end", 0)->summary,
			 "GetSecretValue calls in 111122223333/us-east-1 averaged 42.0/min from 2026-11-04 05:58 to 06:08 "
			 "against a baseline of 2.0/min; top principal arn:aws:iam::111122223333:user/mallory (400 of 420)");
	cr_assert_str_eq(nth(&f, "api_call_rate", "start", 0)->summary,
			 "GetSecretValue calls in 111122223333/us-east-1 rose to 42.0/min from 2026-11-04 05:58 to 05:59 "
			 "against a baseline of 2.0/min; top principal arn:aws:iam::111122223333:user/mallory (40 of 42)");
	tw_insight_free(ins);
}
