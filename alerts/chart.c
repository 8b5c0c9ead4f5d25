/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/chart.c: the alarm chart rasterizer. Pure computation over the notice: no I/O.
 *
 * Invariants:
 *  1. Every pixel write goes through put(), which ignores coordinates outside the image.
 *  2. Values used for scaling are finite and within +-1e300, so differences never overflow;
 *     doubles are clamped before conversion to int.
 *  3. Drawing order (later wins): background, evaluated window, band, grid, threshold, expected,
 *     state-change marker, axes, the metric line, labels. The threshold is dashed 5 on / 3 off
 *     starting at px0, one pixel high, at tw_chart_y(threshold).
 *  4. Layout: title line on top, value labels left of the plot (right-aligned), time labels (UTC
 *     HH:MM, or MM-DD for steps of a day or more) under it. */
#include "alerts/chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/png.h"
#include "core/time.h"

#define VCLAMP 1e300
#define TCLAMP 1000000000000000LL /* times are clamped to +-1e15 ms (+-31,000 years) */
#define GLYPH_W 6 /* 5 pixels + 1 spacing */

static const uint8_t palette[TW_CHART_NCOLORS * 3] = {
	0xff, 0xff, 0xff, /* BG */
	0x44, 0x44, 0x44, /* AXIS */
	0xe6, 0xe6, 0xe6, /* GRID */
	0x1f, 0x6f, 0xc5, /* LINE */
	0xd6, 0x27, 0x28, /* THRESHOLD */
	0xcd, 0xe0, 0xf5, /* BAND */
	0xfd, 0xe4, 0xe1, /* HILITE */
	0xd8, 0xd0, 0xe8, /* BAND_HILITE */
	0x6b, 0x8f, 0xb5, /* EXPECTED */
	0xa5, 0x0f, 0x15, /* MARK_ALARM */
	0x2c, 0x8a, 0x3c, /* MARK_OK */
	0x80, 0x80, 0x80, /* MARK_INSUF */
};

const uint8_t *tw_chart_palette(void)
{
	return palette;
}

static void put(struct tw_chart *c, int x, int y, uint8_t col)
{
	if (x >= 0 && y >= 0 && (unsigned)x < c->w && (unsigned)y < c->h)
		c->px[(size_t)y * c->w + (size_t)x] = col;
}

static uint8_t get(const struct tw_chart *c, int x, int y)
{
	if (x >= 0 && y >= 0 && (unsigned)x < c->w && (unsigned)y < c->h)
		return c->px[(size_t)y * c->w + (size_t)x];
	return TW_CHART_BG;
}

static int ok(double v)
{
	return isfinite(v);
}

static double clampv(double v)
{
	return v > VCLAMP ? VCLAMP : v < -VCLAMP ? -VCLAMP : v;
}

static int64_t tclamp(int64_t t)
{
	return t < -TCLAMP ? -TCLAMP : t > TCLAMP ? TCLAMP : t;
}

static int clampi(double d, int lo, int hi)
{
	if (!(d >= lo))
		return lo;
	if (d > hi)
		return hi;
	return (int)lround(d);
}

int tw_chart_x(const struct tw_chart *c, int64_t t_ms)
{
	double span = (double)c->t1_ms - (double)c->t0_ms;
	double f = span > 0 ? ((double)t_ms - (double)c->t0_ms) / span : 0.5;
	return clampi(c->px0 + f * (c->px1 - c->px0), c->px0, c->px1);
}

int tw_chart_y(const struct tw_chart *c, double v)
{
	double f = (c->v1 - clampv(v)) / (c->v1 - c->v0);
	if (isnan(v))
		return c->py1;
	return clampi(c->py0 + f * (c->py1 - c->py0), c->py0, c->py1);
}

/* Text in the 5x7 font with its top-left at (x, y); non-ASCII bytes draw as '?'. */
static void text(struct tw_chart *c, int x, int y, const char *s, uint8_t col)
{
	for (; *s; s++, x += GLYPH_W) {
		unsigned ch = (unsigned char)*s;
		const uint8_t *g = tw_font5x7[(ch >= 0x20 && ch < 0x7f ? ch : '?') - 0x20];
		for (int r = 0; r < 7; r++)
			for (int b = 0; b < 5; b++)
				if (g[r] & (0x10 >> b))
					put(c, x + b, y + r, col);
	}
}

static int text_w(const char *s)
{
	size_t n = strlen(s);
	return n ? (int)n * GLYPH_W - 1 : 0;
}

/* Thick (2x2 brush) line by Bresenham. */
static void line(struct tw_chart *c, int x0, int y0, int x1, int y1, uint8_t col)
{
	int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
	int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
	int e = dx + dy;

	for (;;) {
		put(c, x0, y0, col);
		put(c, x0 + 1, y0, col);
		put(c, x0, y0 + 1, col);
		put(c, x0 + 1, y0 + 1, col);
		if (x0 == x1 && y0 == y1)
			break;
		int e2 = 2 * e;
		if (e2 >= dy) {
			e += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			e += dx;
			y0 += sy;
		}
	}
}

static void dot(struct tw_chart *c, int x, int y, uint8_t col)
{
	for (int dy = -1; dy <= 2; dy++)
		for (int dx = -1; dx <= 2; dx++)
			put(c, x + dx, y + dy, col);
}

/* A "nice" step (1, 2 or 5 times a power of ten) near raw. */
static double nice_step(double raw)
{
	double p, f;

	if (!(raw > 0) || !isfinite(raw))
		return 1;
	p = pow(10, floor(log10(raw)));
	f = raw / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void fmt_value(double v, double step, char *out, size_t cap)
{
	double a = fabs(v);
	int dec;

	if (a < step * 1e-9)
		v = 0, a = 0;
	if (a >= 1e6 || (a > 0 && a < 1e-3) || step < 1e-3) {
		snprintf(out, cap, "%.3g", v);
		return;
	}
	dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (dec > 3)
		dec = 3;
	snprintf(out, cap, "%.*f", dec, v);
}

/* Civil UTC fields of ms. */
static void utc(int64_t ms, int *mon, int *day, int *hh, int *mm)
{
	int64_t days = ms / 86400000, rem = ms % 86400000, y;
	unsigned m, d;

	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	tw_civil_from_days(days, &y, &m, &d);
	*mon = (int)m;
	*day = (int)d;
	*hh = (int)(rem / 3600000);
	*mm = (int)(rem / 60000 % 60);
}

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static const char *state_name(enum tw_notice_state s)
{
	return tw_notice_state_str(s);
}

void tw_chart_free(struct tw_chart *c)
{
	if (c) {
		free(c->px);
		c->px = NULL;
	}
}

/* Time and value ranges from everything that will be drawn. */
static double ranges(const struct tw_alarm_notice *nt, size_t first, struct tw_chart *c)
{
	const struct tw_notice_series *s = &nt->series;
	int64_t tmin = INT64_MAX, tmax = INT64_MIN, pad;
	double vmin = INFINITY, vmax = -INFINITY, step;
	int band = s->lower && s->upper;

#define TAKE(v)                                  \
	do {                                     \
		double v_ = (v);                 \
		if (ok(v_)) {                    \
			v_ = clampv(v_);         \
			if (v_ < vmin)           \
				vmin = v_;       \
			if (v_ > vmax)           \
				vmax = v_;       \
		}                                \
	} while (0)
	for (size_t i = first; i < s->n; i++) {
		if (s->t_ms[i] < tmin)
			tmin = s->t_ms[i];
		if (s->t_ms[i] > tmax)
			tmax = s->t_ms[i];
		TAKE(s->value[i]);
		if (s->expected)
			TAKE(s->expected[i]);
		if (band) {
			TAKE(s->lower[i]);
			TAKE(s->upper[i]);
		}
	}
	if (nt->has_threshold)
		TAKE(nt->threshold);
#undef TAKE
	if (nt->eval_from_ms || nt->eval_to_ms) {
		if (nt->eval_from_ms < tmin)
			tmin = nt->eval_from_ms;
		if (nt->eval_to_ms > tmax)
			tmax = nt->eval_to_ms;
	}
	if (nt->change_ms) {
		if (nt->change_ms < tmin)
			tmin = nt->change_ms;
		if (nt->change_ms > tmax)
			tmax = nt->change_ms;
	}
	if (tmin > tmax) /* nothing at all: an hour up to the change */
		tmin = tclamp(nt->change_ms) - 3600000, tmax = tclamp(nt->change_ms);
	tmin = tclamp(tmin);
	tmax = tclamp(tmax);
	pad = nt->period_s > 0 && nt->period_s < 86400 * 7 ? nt->period_s * 500 : 30000;
	if (tmin == tmax)
		tmin -= 2 * pad, tmax += 2 * pad;
	c->t0_ms = tmin;
	c->t1_ms = tmax;

	if (!(vmin <= vmax))
		vmin = 0, vmax = 1;
	if (vmin == vmax) {
		double d = fabs(vmin) * 0.1;
		if (d == 0)
			d = 1;
		vmin -= d;
		vmax += d;
	}
	step = nice_step((vmax - vmin) / 4);
	c->v0 = floor(vmin / step) * step;
	c->v1 = ceil(vmax / step) * step;
	if (!(c->v1 > c->v0) || !isfinite(c->v1 - c->v0)) {
		c->v0 = vmin, c->v1 = vmax;
		step = (vmax - vmin) / 4;
	}
	return step;
}

static uint8_t state_color(enum tw_notice_state s)
{
	return s == TW_NOTICE_ALARM ? TW_CHART_MARK_ALARM : s == TW_NOTICE_OK ? TW_CHART_MARK_OK
									     : TW_CHART_MARK_INSUF;
}

static const int64_t time_steps[] = {
	60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000, 10800000,
	21600000, 43200000, 86400000, 172800000, 604800000, 2592000000LL,
};

enum tw_rc tw_chart_draw(const struct tw_alarm_notice *nt, unsigned w, unsigned h, struct tw_chart *out,
			 struct tw_err *err)
{
	const struct tw_notice_series *s = &nt->series;
	struct tw_chart cc, *c = &cc;
	size_t first = s->n > TW_NOTICE_MAX_POINTS ? s->n - TW_NOTICE_MAX_POINTS : 0;
	char lab[48], title[200];
	double vstep;
	int nticks;
	int band = s->lower && s->upper, lw = 0, prevx = -1000, prevy = 0, have_prev = 0;
	int64_t tstep = time_steps[sizeof time_steps / sizeof time_steps[0] - 1];

	if (w < TW_CHART_MIN_W || h < TW_CHART_MIN_H || w > TW_PNG_MAX_DIM || h > TW_PNG_MAX_DIM)
		return tw_err_set(err, TW_EINVAL, "chart: size %ux%u outside %ux%u..%ux%u", w, h,
				  TW_CHART_MIN_W, TW_CHART_MIN_H, TW_PNG_MAX_DIM, TW_PNG_MAX_DIM);
	if (s->n && (!s->t_ms || !s->value))
		return tw_err_set(err, TW_EINVAL, "chart: series of %zu points without times or values", s->n);
	memset(c, 0, sizeof *c);
	c->w = w;
	c->h = h;
	if (!(c->px = calloc((size_t)w * h, 1)))
		return tw_err_set(err, TW_ENOMEM, "chart: out of memory for %ux%u pixels", w, h);
	vstep = ranges(nt, first, c);
	nticks = (int)lround((c->v1 - c->v0) / vstep);
	if (nticks < 1 || nticks > 40)
		nticks = 1, vstep = c->v1 - c->v0;

	/* Layout: widest value label decides the left margin. */
	for (int k = 0; k <= nticks; k++) {
		fmt_value(c->v0 + k * vstep, vstep, lab, sizeof lab);
		if (text_w(lab) > lw)
			lw = text_w(lab);
	}
	if (lw > (int)w / 3)
		lw = (int)w / 3;
	c->px0 = lw + 8;
	c->py0 = 18;
	c->px1 = (int)w - 12;
	c->py1 = (int)h - 20;

	/* Evaluated window, widened by half a period each side. */
	if (nt->eval_from_ms || nt->eval_to_ms) {
		int64_t half = nt->period_s > 0 && nt->period_s < 86400 * 7 ? nt->period_s * 500 : 0;
		int xa = tw_chart_x(c, tclamp(nt->eval_from_ms) - half), xb = tw_chart_x(c, tclamp(nt->eval_to_ms) + half);
		for (int x = xa; x <= xb; x++)
			for (int y = c->py0; y <= c->py1; y++)
				put(c, x, y, TW_CHART_HILITE);
	}

	/* Anomaly band: columns between consecutive points with both edges known. */
	if (band) {
		for (size_t i = first; i < s->n; i++) {
			if (!ok(s->lower[i]) || !ok(s->upper[i]))
				continue;
			size_t j = i + 1;
			int xa = tw_chart_x(c, s->t_ms[i]);
			int xb = xa;
			int joined = j < s->n && ok(s->lower[j]) && ok(s->upper[j]);
			if (joined)
				xb = tw_chart_x(c, s->t_ms[j]);
			for (int x = xa; x <= xb; x++) {
				double f = xb > xa ? (double)(x - xa) / (xb - xa) : 0;
				double lo = clampv(s->lower[i]), hi = clampv(s->upper[i]);
				if (joined) {
					lo += (clampv(s->lower[j]) - lo) * f;
					hi += (clampv(s->upper[j]) - hi) * f;
				}
				int ya = tw_chart_y(c, hi), yb = tw_chart_y(c, lo);
				for (int y = ya; y <= yb; y++)
					put(c, x, y, get(c, x, y) == TW_CHART_HILITE ? TW_CHART_BAND_HILITE
										: TW_CHART_BAND);
			}
		}
	}

	/* Grid and value labels. */
	for (int k = 0; k <= nticks; k++) {
		double tick = k == nticks ? c->v1 : c->v0 + k * vstep;
		int y = tw_chart_y(c, tick);
		for (int x = c->px0; x <= c->px1; x++)
			if (get(c, x, y) == TW_CHART_BG)
				put(c, x, y, TW_CHART_GRID);
		fmt_value(tick, vstep, lab, sizeof lab);
		text(c, c->px0 - 5 - text_w(lab), y - 3, lab, TW_CHART_AXIS);
		put(c, c->px0 - 2, y, TW_CHART_AXIS);
		put(c, c->px0 - 3, y, TW_CHART_AXIS);
	}

	/* Time grid and labels: the smallest step giving labels at least 60 pixels apart. */
	for (size_t i = 0; i < sizeof time_steps / sizeof time_steps[0]; i++) {
		double px_per = (double)(c->px1 - c->px0) * (double)time_steps[i] /
				((double)c->t1_ms - (double)c->t0_ms);
		if (px_per >= 60) {
			tstep = time_steps[i];
			break;
		}
	}
	{
		int64_t t = floordiv(c->t0_ms, tstep) * tstep;
		int last_end = -1000;
		for (int guard = 0; guard < 200 && t <= c->t1_ms; guard++, t += tstep) {
			int x, mon, day, hh, mm;
			if (t < c->t0_ms)
				continue;
			x = tw_chart_x(c, t);
			for (int y = c->py0; y <= c->py1; y++)
				if (get(c, x, y) == TW_CHART_BG)
					put(c, x, y, TW_CHART_GRID);
			put(c, x, c->py1 + 2, TW_CHART_AXIS);
			put(c, x, c->py1 + 3, TW_CHART_AXIS);
			utc(t, &mon, &day, &hh, &mm);
			if (tstep >= 86400000)
				snprintf(lab, sizeof lab, "%02d-%02d", mon, day);
			else
				snprintf(lab, sizeof lab, "%02d:%02d", hh, mm);
			int lx = x - text_w(lab) / 2;
			if (lx + text_w(lab) >= (int)w)
				lx = (int)w - 1 - text_w(lab);
			if (lx > last_end + 6) {
				text(c, lx, c->py1 + 6, lab, TW_CHART_AXIS);
				last_end = lx + text_w(lab);
			}
		}
	}

	/* Threshold: dashed, 5 on 3 off. */
	if (nt->has_threshold && ok(nt->threshold)) {
		int y = tw_chart_y(c, nt->threshold);
		for (int x = c->px0; x <= c->px1; x++)
			if ((x - c->px0) % 8 < 5)
				put(c, x, y, TW_CHART_THRESHOLD);
	}

	/* Expected value: dotted. */
	if (s->expected) {
		for (size_t i = first; i + 1 < s->n; i++) {
			if (!ok(s->expected[i]) || !ok(s->expected[i + 1]))
				continue;
			int xa = tw_chart_x(c, s->t_ms[i]), xb = tw_chart_x(c, s->t_ms[i + 1]);
			for (int x = xa; x <= xb; x++) {
				double f = xb > xa ? (double)(x - xa) / (xb - xa) : 0;
				double e = clampv(s->expected[i]) +
					   (clampv(s->expected[i + 1]) - clampv(s->expected[i])) * f;
				if (x % 3 != 2)
					put(c, x, tw_chart_y(c, e), TW_CHART_EXPECTED);
			}
		}
	}

	/* State-change marker: dashed vertical line with the new state's name. */
	if (nt->change_ms && nt->change_ms >= c->t0_ms && nt->change_ms <= c->t1_ms) {
		int x = tw_chart_x(c, nt->change_ms);
		uint8_t col = state_color(nt->new_state);
		const char *name = state_name(nt->new_state);
		for (int y = c->py0; y <= c->py1; y++)
			if ((y - c->py0) % 4 < 2)
				put(c, x, y, col);
		int lx = x + 3;
		if (lx + text_w(name) > (int)w - 1)
			lx = x - 3 - text_w(name);
		text(c, lx, c->py0 + 2, name, col);
	}

	/* Axes. */
	for (int y = c->py0; y <= c->py1 + 1; y++)
		put(c, c->px0 - 1, y, TW_CHART_AXIS);
	for (int x = c->px0 - 1; x <= c->px1; x++)
		put(c, x, c->py1 + 1, TW_CHART_AXIS);

	/* The metric: segments between consecutive finite points; isolated points as dots; all
	 * points as dots when they are at least 8 pixels apart. */
	{
		size_t nfin = 0;
		int spacing = s->n - first > 1 ? (c->px1 - c->px0) / (int)(s->n - first - 1) : 1000;
		for (size_t i = first; i < s->n; i++) {
			if (!ok(s->value[i])) {
				have_prev = 0;
				continue;
			}
			int x = tw_chart_x(c, s->t_ms[i]), y = tw_chart_y(c, s->value[i]);
			int next_ok = i + 1 < s->n && ok(s->value[i + 1]);
			nfin++;
			if (have_prev)
				line(c, prevx, prevy, x, y, TW_CHART_LINE);
			if ((!have_prev && !next_ok) || spacing >= 8)
				dot(c, x, y, TW_CHART_LINE);
			prevx = x;
			prevy = y;
			have_prev = 1;
		}
		c->n_drawn = nfin;
	}

	/* Title. */
	snprintf(title, sizeof title, "%s%s%s", nt->statistic ? nt->statistic : "",
		 nt->statistic && nt->metric_name ? " of " : "", nt->metric_name ? nt->metric_name : "");
	if (nt->period_s > 0) {
		size_t l = strlen(title);
		if (nt->period_s % 60 == 0)
			snprintf(title + l, sizeof title - l, "%s%lld min", l ? ", " : "",
				 (long long)(nt->period_s / 60));
		else
			snprintf(title + l, sizeof title - l, "%s%lld s", l ? ", " : "",
				 (long long)nt->period_s);
	}
	{
		size_t l = strlen(title);
		int64_t y;
		unsigned m, d;
		tw_civil_from_days(floordiv(c->t0_ms, 86400000), &y, &m, &d);
		snprintf(title + l, sizeof title - l, "%s%04lld-%02u-%02u UTC", l ? "  -  " : "",
			 (long long)y, m, d);
	}
	if (text_w(title) > c->px1 - c->px0)
		title[(c->px1 - c->px0) / GLYPH_W] = '\0';
	text(c, c->px0, 5, title, TW_CHART_AXIS);

	if (c->n_drawn == 0) {
		const char *msg = "no datapoints in this window";
		text(c, (c->px0 + c->px1 - text_w(msg)) / 2, (c->py0 + c->py1) / 2 - 3, msg, TW_CHART_AXIS);
	}
	*out = *c;
	return TW_OK;
}

enum tw_rc tw_chart_png(const struct tw_alarm_notice *nt, unsigned w, unsigned h, struct tw_buf *png,
			struct tw_err *err)
{
	struct tw_chart c;
	enum tw_rc rc = tw_chart_draw(nt, w, h, &c, err);
	if (rc)
		return rc;
	rc = tw_png_write_indexed(c.px, c.w, c.h, palette, TW_CHART_NCOLORS, png, err);
	tw_chart_free(&c);
	return rc;
}
