/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/chart.h: rasterizes the metric of an alarm notice into a small palette image (line,
 * gaps for missing datapoints, dashed threshold, shaded anomaly band, highlighted evaluation
 * window, state-change marker, UTC time and value labels in a built-in 5x7 font) and encodes it
 * as PNG. Deterministic: the same notice gives the same bytes. No I/O, no global state. */
#ifndef TW_ALERTS_CHART_H
#define TW_ALERTS_CHART_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/notice.h"
#include "core/buf.h"
#include "core/err.h"

#define TW_CHART_W 600 /* default width in pixels (what the email uses) */
#define TW_CHART_H 220 /* default height in pixels */
#define TW_CHART_MIN_W 120 /* smallest size tw_chart_draw accepts */
#define TW_CHART_MIN_H 60

/* Palette indices of the chart image; tw_chart_palette gives their RGB. */
enum tw_chart_color {
	TW_CHART_BG = 0,          /* white background */
	TW_CHART_AXIS = 1,        /* axes, ticks and labels (dark grey) */
	TW_CHART_GRID = 2,        /* grid lines (light grey) */
	TW_CHART_LINE = 3,        /* the metric (blue) */
	TW_CHART_THRESHOLD = 4,   /* static threshold, dashed (red) */
	TW_CHART_BAND = 5,        /* anomaly band fill (light blue) */
	TW_CHART_HILITE = 6,      /* evaluated window background (light red) */
	TW_CHART_BAND_HILITE = 7, /* band fill inside the evaluated window */
	TW_CHART_EXPECTED = 8,    /* expected value, dotted (grey blue) */
	TW_CHART_MARK_ALARM = 9,  /* state-change marker when entering ALARM (dark red) */
	TW_CHART_MARK_OK = 10,    /* state-change marker when entering OK (green) */
	TW_CHART_MARK_INSUF = 11, /* state-change marker when entering INSUFFICIENT_DATA (grey) */
	TW_CHART_NCOLORS = 12,
};

/* A drawn chart: the pixels and the mapping used, so callers (and tests) can find things. */
struct tw_chart {
	unsigned w, h;         /* image size */
	uint8_t *px;           /* w * h palette indices, row-major (owned; tw_chart_free) */
	int px0, py0;          /* plot area top-left pixel (inclusive) */
	int px1, py1;          /* plot area bottom-right pixel (inclusive) */
	int64_t t0_ms, t1_ms;  /* times at x = px0 and x = px1 */
	double v0, v1;         /* values at y = py1 (bottom) and y = py0 (top); v0 < v1 */
	size_t n_drawn;        /* finite datapoints drawn (0: the chart says "no datapoints") */
};

/* Draws nt's series (and threshold, band, window, marker) into a w x h image.
 * Missing (NaN or infinite) values leave gaps; values are clamped to +-1e300 for scaling; at most
 * TW_NOTICE_MAX_POINTS points are drawn (the most recent). OUT: *c (free with tw_chart_free).
 * Errors: TW_EINVAL (size outside TW_CHART_MIN_W..TW_PNG_MAX_DIM), TW_ENOMEM. Thread-safe. */
enum tw_rc tw_chart_draw(const struct tw_alarm_notice *nt, unsigned w, unsigned h, struct tw_chart *c,
			 struct tw_err *err);
void tw_chart_free(struct tw_chart *c);

/* Pixel column of time t and pixel row of value v under c's mapping (clamped to the plot). */
int tw_chart_x(const struct tw_chart *c, int64_t t_ms);
int tw_chart_y(const struct tw_chart *c, double v);

/* The RGB palette (TW_CHART_NCOLORS triples, indexed by enum tw_chart_color). */
const uint8_t *tw_chart_palette(void);

/* Draws and appends the PNG encoding of the chart to png. Errors as tw_chart_draw and
 * tw_png_write_indexed (TW_ELIMIT when png's cap is reached). */
enum tw_rc tw_chart_png(const struct tw_alarm_notice *nt, unsigned w, unsigned h, struct tw_buf *png,
			struct tw_err *err);

/* The 5x7 font (alerts/font5x7.c): glyph rows for characters 0x20..0x7e, bit 4 leftmost. */
extern const uint8_t tw_font5x7[95][7];

#endif
