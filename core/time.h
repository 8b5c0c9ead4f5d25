/* SPDX-License-Identifier: Apache-2.0 */
/* core/time.h: UTC time parsing and formatting in milliseconds since the epoch.
 * Pure functions: no locale, no time zone database, no wall clock. */
#ifndef TW_CORE_TIME_H
#define TW_CORE_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Parses a UTC timestamp into milliseconds since the epoch. Accepts:
 *   ISO 8601 extended: 2026-11-02T00:00:00Z, with fractions (.5, .123, .123456789: truncated to ms),
 *     with an offset (+02:00, -0530) instead of Z, 'T' or ' ' between date and time;
 *   ISO 8601 basic:    20131102T010628Z (optionally with fraction);
 *   epoch milliseconds: 1700000000000 (10 to 13 digits are read as ms when > 1e11, else seconds).
 * Fields are range-checked (month 1-12, day within the month, leap years, hour 0-23, minute and
 * second 0-59, 60 allowed for a leap second and folded into :59).
 * Returns TW_OK and *out_ms, or TW_EPARSE with a message quoting the text. */
enum tw_rc tw_time_parse(const char *s, size_t n, int64_t *out_ms, struct tw_err *err);

/* Parses a duration like "90s", "15m", "24h", "7d", "2w", "400d", "1500ms" into ms. */
enum tw_rc tw_duration_parse(const char *s, int64_t *out_ms, struct tw_err *err);

#define TW_TIME_BUFSZ 32
/* Formats ms as "2026-11-02T00:00:00Z", or "2026-11-02T00:00:00.123Z" when ms % 1000 != 0.
 * out must hold TW_TIME_BUFSZ bytes; returns the length written (without the NUL). */
size_t tw_time_format(int64_t ms, char *out);

/* Days since 1970-01-01 for a proleptic Gregorian date (any year), and the inverse. */
int64_t tw_days_from_civil(int64_t y, unsigned m, unsigned d);
void tw_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif
