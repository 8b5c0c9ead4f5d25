/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_chart_draw.c: alerts/chart.c, the alarm chart rasterizer. Checks pixels where
 * things must be (threshold row, band rows, highlighted window) and where they must not be (gaps
 * at missing datapoints), positions cross-checked against where the metric line itself lands, and
 * that degenerate series (empty, one point, constant, huge, all-NaN) neither crash nor fail. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "alerts/chart.h"

#define T0 1795248600000LL /* 2026-11-21T08:10:00Z */
#define P 300000LL

static struct tw_alarm_notice base(int64_t *t, double *v, size_t n)
{
	struct tw_alarm_notice nt;
	memset(&nt, 0, sizeof nt);
	for (size_t i = 0; i < n; i++)
		t[i] = T0 + (int64_t)i * P;
	nt.alarm_name = "a";
	nt.metric_name = "Errors";
	nt.statistic = "Sum";
	nt.period_s = 300;
	nt.series.t_ms = t;
	nt.series.value = v;
	nt.series.n = n;
	return nt;
}

static void draw(const struct tw_alarm_notice *nt, struct tw_chart *c)
{
	struct tw_err err;
	tw_err_clear(&err);
	cr_assert_eq(tw_chart_draw(nt, TW_CHART_W, TW_CHART_H, c, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(c->w, TW_CHART_W);
	cr_assert_eq(c->h, TW_CHART_H);
}

static uint8_t px(const struct tw_chart *c, int x, int y)
{
	cr_assert(x >= 0 && y >= 0 && (unsigned)x < c->w && (unsigned)y < c->h, "pixel %d,%d outside", x, y);
	return c->px[(size_t)y * c->w + (size_t)x];
}

/* Rows of column x holding colour col: first one, or -1. */
static int first_row(const struct tw_chart *c, int x, uint8_t col)
{
	for (int y = c->py0; y <= c->py1; y++)
		if (px(c, x, y) == col)
			return y;
	return -1;
}

Test(chart_draw, threshold_is_a_dashed_row_at_its_value)
{
	int64_t t[10];
	double v[10];
	struct tw_chart c;
	int rows = 0, ythr = -1, yline, on = 0, off = 0;

	for (int i = 0; i < 10; i++)
		v[i] = 2;
	struct tw_alarm_notice nt = base(t, v, 10);
	nt.has_threshold = 1;
	nt.threshold = 8;
	draw(&nt, &c);
	cr_assert(c.v0 <= 2 && c.v1 >= 8, "axis %g..%g must include the line and the threshold", c.v0, c.v1);
	/* Exactly one row holds threshold pixels. */
	for (int y = 0; y < (int)c.h; y++) {
		int any = 0;
		for (int x = 0; x < (int)c.w; x++)
			any |= px(&c, x, y) == TW_CHART_THRESHOLD;
		if (any) {
			rows++;
			ythr = y;
		}
	}
	cr_assert_eq(rows, 1, "threshold pixels on %d rows", rows);
	cr_assert_eq(ythr, tw_chart_y(&c, 8));
	/* Dashed across the whole plot: 5 on, 3 off. */
	for (int x = c.px0; x <= c.px1; x++) {
		uint8_t p = px(&c, x, ythr);
		if ((x - c.px0) % 8 < 5) {
			cr_assert_eq(p, TW_CHART_THRESHOLD, "dash pixel missing at x=%d", x);
			on++;
		} else {
			cr_assert_neq(p, TW_CHART_THRESHOLD, "gap pixel set at x=%d", x);
			off++;
		}
	}
	cr_assert(on > 300 && off > 150);
	/* Cross-check with where the line for 2.0 lands: 6 units below, scaled by the axis. */
	yline = first_row(&c, (c.px0 + c.px1) / 2, TW_CHART_LINE);
	cr_assert(yline > ythr, "line row %d must be below the threshold row %d", yline, ythr);
	double want = (8.0 - 2.0) / (c.v1 - c.v0) * (c.py1 - c.py0);
	cr_assert(fabs((yline - ythr) - want) <= 1.5, "rows %d apart, want %.1f", yline - ythr, want);
	tw_chart_free(&c);
}

Test(chart_draw, threshold_moves_with_its_value)
{
	int64_t t[5];
	double v[5] = { 0, 10, 0, 10, 0 };
	struct tw_chart a, b;
	struct tw_alarm_notice nt = base(t, v, 5);

	nt.has_threshold = 1;
	nt.threshold = 2.5;
	draw(&nt, &a);
	nt.threshold = 7.5;
	draw(&nt, &b);
	cr_assert_eq(a.v0, b.v0);
	cr_assert_eq(a.v1, b.v1);
	int ya = tw_chart_y(&a, 2.5), yb = tw_chart_y(&b, 7.5);
	cr_assert(ya > yb, "a higher threshold must be drawn higher (%d vs %d)", ya, yb);
	cr_assert_eq(px(&a, a.px0 + 1, ya), TW_CHART_THRESHOLD);
	cr_assert_eq(px(&b, b.px0 + 1, yb), TW_CHART_THRESHOLD);
	cr_assert_neq(px(&a, a.px0 + 1, yb), TW_CHART_THRESHOLD);
	tw_chart_free(&a);
	tw_chart_free(&b);
}

Test(chart_draw, missing_points_leave_gaps)
{
	int64_t t[10];
	double v[10] = { 1, 3, 1, 3, NAN, NAN, 1, 3, 1, 3 };
	struct tw_chart c;
	struct tw_alarm_notice nt = base(t, v, 10);

	draw(&nt, &c);
	cr_assert_eq(c.n_drawn, 8);
	/* Between points 3 and 6 nothing of the line (dots reach 2 pixels around a point). */
	for (int x = tw_chart_x(&c, t[3]) + 3; x <= tw_chart_x(&c, t[6]) - 2; x++)
		cr_assert_eq(first_row(&c, x, TW_CHART_LINE), -1, "line pixel in the gap at x=%d", x);
	/* Between points 1 and 2 the line is drawn in every column. */
	for (int x = tw_chart_x(&c, t[1]) + 3; x <= tw_chart_x(&c, t[2]) - 3; x++)
		cr_assert_neq(first_row(&c, x, TW_CHART_LINE), -1, "no line at x=%d", x);
	tw_chart_free(&c);
}

Test(chart_draw, band_is_shaded_between_lower_and_upper)
{
	int64_t t[8];
	double v[8], lo[8], hi[8];
	struct tw_chart c;

	for (int i = 0; i < 8; i++) {
		v[i] = 9;
		lo[i] = 3;
		hi[i] = 7;
	}
	struct tw_alarm_notice nt = base(t, v, 8);
	nt.series.lower = lo;
	nt.series.upper = hi;
	nt.band_k = 2;
	nt.eval_from_ms = t[6];
	nt.eval_to_ms = t[7];
	draw(&nt, &c);
	int x = (tw_chart_x(&c, t[2]) + tw_chart_x(&c, t[3])) / 2; /* outside the window */
	int yhi = tw_chart_y(&c, 7), ylo = tw_chart_y(&c, 3);
	cr_assert(ylo - yhi > 20, "band only %d rows high", ylo - yhi);
	for (int y = yhi; y <= ylo; y++)
		cr_assert_eq(px(&c, x, y), TW_CHART_BAND, "row %d inside the band not shaded", y);
	cr_assert_neq(px(&c, x, yhi - 3), TW_CHART_BAND);
	cr_assert_neq(px(&c, x, ylo + 3), TW_CHART_BAND);
	/* Inside the evaluated window the band has its own shade, and the window its own above it. */
	int xw = (tw_chart_x(&c, t[6]) + tw_chart_x(&c, t[7])) / 2;
	cr_assert_eq(px(&c, xw, (yhi + ylo) / 2), TW_CHART_BAND_HILITE);
	cr_assert_eq(px(&c, xw, ylo + 5), TW_CHART_HILITE);
	cr_assert_neq(px(&c, x, ylo + 5), TW_CHART_HILITE);
	/* The line for 9 lies above the band. */
	int yl = first_row(&c, x, TW_CHART_LINE);
	cr_assert(yl >= 0 && yl < yhi, "line at row %d, band top %d", yl, yhi);
	tw_chart_free(&c);
}

Test(chart_draw, band_follows_changing_edges)
{
	int64_t t[2];
	double v[2] = { NAN, NAN }, lo[2] = { 0, 4 }, hi[2] = { 2, 6 };
	struct tw_chart c;
	struct tw_alarm_notice nt = base(t, v, 2);

	nt.series.lower = lo;
	nt.series.upper = hi;
	draw(&nt, &c);
	int xa = tw_chart_x(&c, t[0]) + 2, xb = tw_chart_x(&c, t[1]) - 2;
	int ta = first_row(&c, xa, TW_CHART_BAND), tb = first_row(&c, xb, TW_CHART_BAND);
	cr_assert(ta > tb + 50, "band top must rise from left (%d) to right (%d)", ta, tb);
	tw_chart_free(&c);
}

Test(chart_draw, degenerate_series_do_not_crash)
{
	int64_t t[6];
	double one[1] = { 42 }, flat[6] = { 5, 5, 5, 5, 5, 5 };
	double huge[6] = { 1e300, -1e300, DBL_MAX, -DBL_MAX, INFINITY, 1 };
	double nans[6] = { NAN, NAN, NAN, NAN, NAN, NAN };
	double tiny[6] = { 1e-12, 2e-12, 0, -1e-12, 5e-13, 0 };
	struct {
		double *v;
		size_t n;
		size_t drawn;
	} cases[] = { { NULL, 0, 0 }, { one, 1, 1 }, { flat, 6, 6 }, { huge, 6, 5 }, { nans, 6, 0 }, { tiny, 6, 6 } };
	struct tw_buf png;
	struct tw_err err;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct tw_alarm_notice nt = base(t, cases[k].v, cases[k].n);
		struct tw_chart c;
		nt.change_ms = T0 + 3 * P;
		nt.has_threshold = k % 2;
		nt.threshold = k == 3 ? 1e308 : 4;
		nt.eval_from_ms = T0;
		nt.eval_to_ms = T0 + P;
		draw(&nt, &c);
		cr_assert_eq(c.n_drawn, cases[k].drawn, "case %zu drew %zu", k, c.n_drawn);
		cr_assert(c.v0 < c.v1 && isfinite(c.v0) && isfinite(c.v1), "case %zu axis %g..%g", k, c.v0, c.v1);
		cr_assert(c.t0_ms < c.t1_ms, "case %zu time axis empty", k);
		if (cases[k].drawn == 1) { /* a lone point is a visible dot */
			int x = tw_chart_x(&c, t[0]), y = tw_chart_y(&c, 42);
			cr_assert_eq(px(&c, x, y), TW_CHART_LINE);
		}
		tw_chart_free(&c);
		tw_buf_init(&png, 1 << 20);
		cr_assert_eq(tw_chart_png(&nt, 600, 220, &png, &err), TW_OK, "case %zu: %s", k, err.msg);
		tw_buf_free(&png);
	}
}

Test(chart_draw, extreme_times_and_sizes)
{
	int64_t t[3] = { INT64_MIN, 0, INT64_MAX };
	double v[3] = { 1, 2, 3 };
	struct tw_alarm_notice nt;
	struct tw_chart c;
	struct tw_err err;

	memset(&nt, 0, sizeof nt);
	nt.alarm_name = "a";
	nt.series.t_ms = t;
	nt.series.value = v;
	nt.series.n = 3;
	nt.change_ms = INT64_MIN;
	nt.eval_from_ms = INT64_MIN;
	nt.eval_to_ms = INT64_MAX;
	nt.period_s = INT64_MAX;
	cr_assert_eq(tw_chart_draw(&nt, 120, 60, &c, &err), TW_OK, "%s", err.msg);
	tw_chart_free(&c);
	cr_assert_eq(tw_chart_draw(&nt, 119, 60, &c, &err), TW_EINVAL);
	cr_assert_eq(tw_chart_draw(&nt, 600, 5000, &c, &err), TW_EINVAL);
	nt.series.t_ms = NULL;
	cr_assert_eq(tw_chart_draw(&nt, 600, 220, &c, &err), TW_EINVAL);
}

Test(chart_draw, output_is_deterministic_and_labelled)
{
	int64_t t[12];
	double v[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
	struct tw_alarm_notice nt = base(t, v, 12);
	struct tw_chart a, b;
	size_t label = 0;

	draw(&nt, &a);
	draw(&nt, &b);
	cr_assert(memcmp(a.px, b.px, (size_t)a.w * a.h) == 0);
	/* Time labels live under the plot, value labels left of it. */
	for (int y = a.py1 + 4; y < (int)a.h; y++)
		for (int x = 0; x < (int)a.w; x++)
			label += px(&a, x, y) == TW_CHART_AXIS;
	cr_assert(label > 100, "only %zu label pixels under the plot", label);
	label = 0;
	for (int y = a.py0; y <= a.py1; y++)
		for (int x = 0; x < a.px0 - 3; x++)
			label += px(&a, x, y) == TW_CHART_AXIS;
	cr_assert(label > 30, "only %zu value label pixels", label);
	tw_chart_free(&a);
	tw_chart_free(&b);
}
