/* SPDX-License-Identifier: Apache-2.0 */
/* core/time.c: UTC timestamps <-> epoch milliseconds, without libc's time zone machinery
 * (timegm is neither C11 nor thread-safe with respect to TZ, and it is slow on the hot path).
 * Civil-date arithmetic after H. Hinnant's public-domain algorithms. */
#include "core/time.h"

#include <stdio.h>
#include <string.h>

int64_t tw_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void tw_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly k digits at s[*i]; returns -1 if any is not a digit. */
static int64_t digits(const char *s, size_t n, size_t *i, unsigned k)
{
	int64_t v = 0;
	if (*i + k > n)
		return -1;
	for (unsigned j = 0; j < k; j++) {
		char c = s[*i + j];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*i += k;
	return v;
}

static enum tw_rc bad(const char *s, size_t n, const char *why, struct tw_err *err)
{
	return tw_err_set(err, TW_EPARSE, "bad timestamp \"%.*s\": %s", (int)(n > 40 ? 40 : n), s, why);
}

static enum tw_rc parse_epoch(const char *s, size_t n, int64_t *out, struct tw_err *err)
{
	int64_t v = 0;
	size_t i = 0;
	int neg = 0;

	if (n && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == n || n - i > 16)
		return bad(s, n, "expected epoch milliseconds", err);
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return bad(s, n, "expected epoch milliseconds", err);
		v = v * 10 + (s[i] - '0');
	}
	/* Ten digits or fewer read as seconds (a year-2286 guard keeps 13-digit ms intact). */
	if (v < 100000000000LL)
		v *= 1000;
	*out = neg ? -v : v;
	return TW_OK;
}

enum tw_rc tw_time_parse(const char *s, size_t n, int64_t *out_ms, struct tw_err *err)
{
	size_t i = 0;
	int64_t y, mo, d, h = 0, mi = 0, se = 0, ms = 0, off = 0;
	int basic;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	s += i;
	n -= i;
	i = 0;
	if (n == 0)
		return bad(s, n, "empty", err);
	/* Only digits (and a sign): epoch. s is not NUL-terminated: scan no further than n. */
	for (i = 0; i < n && ((s[i] >= '0' && s[i] <= '9') || (i == 0 && s[i] == '-')); i++)
		;
	if (i == n)
		return parse_epoch(s, n, out_ms, err);
	i = 0;

	y = digits(s, n, &i, 4);
	if (y < 0)
		return bad(s, n, "expected a 4-digit year", err);
	basic = !(i < n && s[i] == '-');
	if (!basic)
		i++;
	mo = digits(s, n, &i, 2);
	if (!basic && (i >= n || s[i++] != '-'))
		return bad(s, n, "expected '-' after the month", err);
	d = digits(s, n, &i, 2);
	if (mo < 1 || mo > 12)
		return bad(s, n, "month out of range", err);
	if (d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo))
		return bad(s, n, "day out of range", err);
	if (i < n) {
		if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
			return bad(s, n, "expected 'T' between date and time", err);
		i++;
		h = digits(s, n, &i, 2);
		if (!basic && i < n && s[i] == ':')
			i++;
		else if (!basic)
			return bad(s, n, "expected ':' after the hour", err);
		mi = digits(s, n, &i, 2);
		if (i < n && s[i] == ':' && !basic) {
			i++;
			se = digits(s, n, &i, 2);
		} else if (basic && i < n && s[i] >= '0' && s[i] <= '9') {
			se = digits(s, n, &i, 2);
		}
		if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
			return bad(s, n, "time of day out of range", err);
		if (se == 60)
			se = 59;
		if (i < n && (s[i] == '.' || s[i] == ',')) {
			int k = 0;
			i++;
			if (i >= n || s[i] < '0' || s[i] > '9')
				return bad(s, n, "expected digits after the decimal point", err);
			while (i < n && s[i] >= '0' && s[i] <= '9') {
				if (k < 3)
					ms = ms * 10 + (s[i] - '0');
				k++;
				i++;
			}
			for (; k < 3; k++)
				ms *= 10;
		}
		if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < n && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i] == '-' ? -1 : 1;
			int64_t oh, om = 0;
			i++;
			oh = digits(s, n, &i, 2);
			if (i < n && s[i] == ':')
				i++;
			if (i < n)
				om = digits(s, n, &i, 2);
			if (oh < 0 || oh > 23 || om < 0 || om > 59)
				return bad(s, n, "bad UTC offset", err);
			off = sign * (oh * 3600 + om * 60);
		}
		if (i != n)
			return bad(s, n, "unexpected text after the time", err);
	}
	*out_ms = ((tw_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
		    off) * 1000) + ms;
	return TW_OK;
}

enum tw_rc tw_duration_parse(const char *s, int64_t *out_ms, struct tw_err *err)
{
	int64_t v = 0, mult;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return tw_err_set(err, TW_EPARSE, "bad duration \"%s\": expected a number and a unit (30s, 15m, 24h, 7d)", s);
	while (*p >= '0' && *p <= '9') {
		if (v > 1000000000000LL)
			return tw_err_set(err, TW_EPARSE, "bad duration \"%s\": too large", s);
		v = v * 10 + (*p++ - '0');
	}
	if (!strcmp(p, "ms"))
		mult = 1;
	else if (!strcmp(p, "s"))
		mult = 1000;
	else if (!strcmp(p, "m") || !strcmp(p, "min"))
		mult = 60000;
	else if (!strcmp(p, "h"))
		mult = 3600000;
	else if (!strcmp(p, "d"))
		mult = 86400000;
	else if (!strcmp(p, "w"))
		mult = 7 * 86400000LL;
	else
		return tw_err_set(err, TW_EPARSE, "bad duration \"%s\": unit must be ms, s, m, h, d or w", s);
	*out_ms = v * mult;
	return TW_OK;
}

size_t tw_time_format(int64_t ms, char *out)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t frac = ms - secs * 1000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	int len;

	tw_civil_from_days(days, &y, &m, &d);
	if (frac)
		len = snprintf(out, TW_TIME_BUFSZ, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
			       (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60),
			       (unsigned)frac);
	else
		len = snprintf(out, TW_TIME_BUFSZ, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
			       (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
	return len < 0 ? 0 : (size_t)len;
}
