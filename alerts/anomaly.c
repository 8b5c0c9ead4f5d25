/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/anomaly.c: the finding of the behaviour detectors as a JSON line (writer: core/json's
 * string writer into a bounded buffer; reader: jansson, a cold path) and the small text helpers
 * the detectors share (bounded copies, user-agent family, rates in sentences). No I/O. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alerts/anomaly.h"
#include "core/json.h"
#include "core/time.h"

void tw_anomaly_strcpy(char *dst, size_t cap, const char *s, size_t n)
{
	if (!cap)
		return;
	if (!s)
		n = 0;
	if (n >= cap) {
		n = cap - 1;
		/* do not cut a multi-byte character: back up over continuation bytes */
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	if (n)
		memcpy(dst, s, n);
	dst[n] = 0;
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return (h ^ 0xff) * 0x100000001b3ULL; /* a separator so ("ab","c") != ("a","bc") */
}

void tw_anomaly_set_id(struct tw_anomaly *a)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char t[32];
	int first_seen = !strcmp(a->phase, "event");

	h = fnv(h, a->detector);
	h = fnv(h, a->account);
	h = fnv(h, a->region);
	h = fnv(h, a->event_source);
	h = fnv(h, a->event_name);
	if (first_seen) {
		h = fnv(h, a->principal);
		h = fnv(h, a->value);
	}
	snprintf(t, sizeof t, "%lld", (long long)a->start_ms);
	h = fnv(h, t);
	snprintf(a->id, sizeof a->id, "%016llx", (unsigned long long)h);
}

struct tw_str tw_anomaly_ua_family(struct tw_str ua)
{
	size_t i = 0, j;

	if (ua.n && ua.p[0] == '[')
		i = 1;
	for (j = i; j < ua.n && ua.p[j] != '/' && ua.p[j] != ' ' && ua.p[j] != ']'; j++)
		;
	return (struct tw_str){ ua.p ? ua.p + i : NULL, j - i };
}

char *tw_anomaly_fmt_rate(double v, char *out)
{
	if (v <= 0)
		snprintf(out, 32, "0");
	else if (v >= 1)
		snprintf(out, 32, "%.1f", v);
	else
		snprintf(out, 32, "%.2g", v);
	return out;
}

/* ---- writer ---------------------------------------------------------------------------------- */

static enum tw_rc wkey(struct tw_buf *b, const char *k, const char *v, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_printf(b, err, ",\"%s\":", k);
	return rc ? rc : tw_json_write_str(b, v, strlen(v), err);
}

static enum tw_rc wtops(struct tw_buf *b, const char *name, const struct tw_anomaly_top *top, struct tw_err *err)
{
	static const char *const kinds[TW_ANOMALY_C__COUNT] = { "principals", "userAgents", "errorCodes" };
	enum tw_rc rc = tw_buf_printf(b, err, ",\"%s\":{", name);

	for (int k = 0; !rc && k < TW_ANOMALY_C__COUNT; k++) {
		rc = tw_buf_printf(b, err, "%s\"%s\":[", k ? "," : "", kinds[k]);
		for (unsigned i = 0; !rc && i < top[k].n && i < TW_ANOMALY_TOPK; i++) {
			rc = tw_buf_printf(b, err, "%s{\"key\":", i ? "," : "");
			if (!rc)
				rc = tw_json_write_str(b, top[k].c[i].key, strlen(top[k].c[i].key), err);
			if (!rc)
				rc = tw_buf_printf(b, err, ",\"n\":%llu}", (unsigned long long)top[k].c[i].n);
		}
		if (!rc)
			rc = tw_buf_putc(b, ']', err);
	}
	return rc ? rc : tw_buf_putc(b, '}', err);
}

/* %.17g, but JSON has no NaN or infinity */
static enum tw_rc wnum(struct tw_buf *b, const char *k, double v, struct tw_err *err)
{
	if (!isfinite(v))
		v = v > 0 ? 1e300 : 0;
	return tw_buf_printf(b, err, ",\"%s\":%.17g", k, v);
}

enum tw_rc tw_anomaly_write_json(const struct tw_anomaly *a, struct tw_buf *out, struct tw_err *err)
{
	char ts[TW_TIME_BUFSZ], te[TW_TIME_BUFSZ];
	size_t mark = out->n;
	enum tw_rc rc;

	tw_time_format(a->start_ms, ts);
	tw_time_format(a->end_ms, te);
	rc = tw_buf_printf(out, err, "{\"id\":");
	if (!rc) /* escaped like every string: a line read from a file may carry any id */
		rc = tw_json_write_str(out, a->id, strlen(a->id), err);
	if (!rc)
		rc = wkey(out, "detector", a->detector, err);
	if (!rc)
		rc = wkey(out, "phase", a->phase, err);
	if (!rc)
		rc = tw_buf_printf(out, err, ",\"start\":\"%s\",\"end\":\"%s\",\"start_ms\":%lld,\"end_ms\":%lld", ts,
				   te, (long long)a->start_ms, (long long)a->end_ms);
	if (!rc)
		rc = wkey(out, "account", a->account, err);
	if (!rc)
		rc = wkey(out, "region", a->region, err);
	if (!rc)
		rc = wkey(out, "eventSource", a->event_source, err);
	if (!rc)
		rc = wkey(out, "eventName", a->event_name, err);
	if (!rc)
		rc = wkey(out, "principal", a->principal, err);
	if (!rc)
		rc = wkey(out, "value", a->value, err);
	if (!rc)
		rc = tw_buf_printf(out, err, ",\"values\":[");
	for (unsigned i = 0; !rc && i < a->nvalues && i < TW_ANOMALY_VALUES; i++) {
		if (i)
			rc = tw_buf_putc(out, ',', err);
		if (!rc)
			rc = tw_json_write_str(out, a->values[i], strlen(a->values[i]), err);
	}
	if (!rc)
		rc = tw_buf_printf(out, err, "],\"nvalues\":%u", a->nvalues);
	if (!rc)
		rc = wnum(out, "baseline", a->baseline, err);
	if (!rc)
		rc = wnum(out, "observed", a->observed, err);
	if (!rc)
		rc = tw_buf_printf(out, err, ",\"observed_count\":%llu", (unsigned long long)a->observed_count);
	if (!rc)
		rc = wnum(out, "score", a->score, err);
	if (!rc)
		rc = wtops(out, "baseline_contributors", a->top[0], err);
	if (!rc)
		rc = wtops(out, "insight_contributors", a->top[1], err);
	if (!rc)
		rc = tw_buf_printf(out, err, ",\"event_ids\":[");
	for (unsigned i = 0; !rc && i < a->nevidence && i < TW_ANOMALY_EVIDENCE; i++) {
		if (i)
			rc = tw_buf_putc(out, ',', err);
		if (!rc)
			rc = tw_json_write_str(out, a->evidence[i], strlen(a->evidence[i]), err);
	}
	if (!rc)
		rc = tw_buf_putc(out, ']', err);
	if (!rc)
		rc = wkey(out, "summary", a->summary, err);
	if (!rc)
		rc = tw_buf_printf(out, err, "}\n");
	if (rc)
		out->n = mark; /* no half line */
	return rc;
}

/* ---- reader ---------------------------------------------------------------------------------- */

static enum tw_rc rstr(json_t *o, const char *k, char *dst, size_t cap, struct tw_err *err)
{
	json_t *v = json_object_get(o, k);
	if (!v) {
		dst[0] = 0;
		return TW_OK;
	}
	if (!json_is_string(v))
		return tw_err_set(err, TW_EPARSE, "member \"%s\": expected a string", k);
	tw_anomaly_strcpy(dst, cap, json_string_value(v), json_string_length(v));
	return TW_OK;
}

static enum tw_rc rnum(json_t *o, const char *k, double *dst, struct tw_err *err)
{
	json_t *v = json_object_get(o, k);
	*dst = 0;
	if (!v)
		return TW_OK;
	if (!json_is_number(v))
		return tw_err_set(err, TW_EPARSE, "member \"%s\": expected a number", k);
	*dst = json_number_value(v);
	return TW_OK;
}

static enum tw_rc rinteger(json_t *o, const char *k, int64_t *dst, struct tw_err *err)
{
	json_t *v = json_object_get(o, k);
	*dst = 0;
	if (!v)
		return TW_OK;
	if (!json_is_integer(v))
		return tw_err_set(err, TW_EPARSE, "member \"%s\": expected an integer", k);
	*dst = (int64_t)json_integer_value(v);
	return TW_OK;
}

static enum tw_rc rtops(json_t *o, const char *k, struct tw_anomaly_top *top, struct tw_err *err)
{
	static const char *const kinds[TW_ANOMALY_C__COUNT] = { "principals", "userAgents", "errorCodes" };
	json_t *t = json_object_get(o, k);

	if (!t)
		return TW_OK;
	if (!json_is_object(t))
		return tw_err_set(err, TW_EPARSE, "member \"%s\": expected an object", k);
	for (int c = 0; c < TW_ANOMALY_C__COUNT; c++) {
		json_t *arr = json_object_get(t, kinds[c]), *e;
		size_t i;
		if (!arr)
			continue;
		if (!json_is_array(arr))
			return tw_err_set(err, TW_EPARSE, "member \"%s.%s\": expected an array", k, kinds[c]);
		json_array_foreach(arr, i, e)
		{
			json_t *key = json_object_get(e, "key"), *n = json_object_get(e, "n");
			if (!json_is_string(key) || !json_is_integer(n) || json_integer_value(n) < 0)
				return tw_err_set(err, TW_EPARSE,
						  "member \"%s.%s\"[%zu]: expected {\"key\":string,\"n\":integer >= 0}", k,
						  kinds[c], i);
			if (top[c].n < TW_ANOMALY_TOPK) {
				struct tw_anomaly_contrib *x = &top[c].c[top[c].n++];
				tw_anomaly_strcpy(x->key, sizeof x->key, json_string_value(key), json_string_length(key));
				x->n = (uint64_t)json_integer_value(n);
			}
		}
	}
	return TW_OK;
}

static enum tw_rc rlist(json_t *o, const char *k, char *base, size_t stride, size_t cap, size_t max, unsigned *n,
			struct tw_err *err)
{
	json_t *arr = json_object_get(o, k), *e;
	size_t i;

	*n = 0;
	if (!arr)
		return TW_OK;
	if (!json_is_array(arr))
		return tw_err_set(err, TW_EPARSE, "member \"%s\": expected an array", k);
	json_array_foreach(arr, i, e)
	{
		if (!json_is_string(e))
			return tw_err_set(err, TW_EPARSE, "member \"%s\"[%zu]: expected a string", k, i);
		if (*n < max) {
			tw_anomaly_strcpy(base + stride * *n, cap, json_string_value(e), json_string_length(e));
			(*n)++;
		}
	}
	return TW_OK;
}

enum tw_rc tw_anomaly_read_line(const char *p, size_t n, struct tw_anomaly *a, struct tw_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(p, n, 0, &je);
	enum tw_rc rc = TW_OK;
	unsigned nv = 0;
	double d;
	int64_t i;

	memset(a, 0, sizeof *a);
	if (!o)
		return tw_err_set(err, TW_EPARSE, "column %d: %s", je.column, je.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return tw_err_set(err, TW_EPARSE, "column 1: expected a JSON object");
	}
	rc = rstr(o, "id", a->id, sizeof a->id, err);
	if (!rc)
		rc = rstr(o, "detector", a->detector, sizeof a->detector, err);
	if (!rc)
		rc = rstr(o, "phase", a->phase, sizeof a->phase, err);
	if (!rc)
		rc = rinteger(o, "start_ms", &a->start_ms, err);
	if (!rc)
		rc = rinteger(o, "end_ms", &a->end_ms, err);
	if (!rc)
		rc = rstr(o, "account", a->account, sizeof a->account, err);
	if (!rc)
		rc = rstr(o, "region", a->region, sizeof a->region, err);
	if (!rc)
		rc = rstr(o, "eventSource", a->event_source, sizeof a->event_source, err);
	if (!rc)
		rc = rstr(o, "eventName", a->event_name, sizeof a->event_name, err);
	if (!rc)
		rc = rstr(o, "principal", a->principal, sizeof a->principal, err);
	if (!rc)
		rc = rstr(o, "value", a->value, sizeof a->value, err);
	if (!rc)
		rc = rlist(o, "values", a->values[0], sizeof a->values[0], sizeof a->values[0], TW_ANOMALY_VALUES, &nv,
			   err);
	if (!rc)
		rc = rinteger(o, "nvalues", &i, err);
	if (!rc)
		a->nvalues = i > (int64_t)nv ? (unsigned)i : nv;
	if (!rc)
		rc = rnum(o, "baseline", &a->baseline, err);
	if (!rc)
		rc = rnum(o, "observed", &a->observed, err);
	if (!rc)
		rc = rnum(o, "observed_count", &d, err);
	if (!rc) /* clamped to what jansson reads back as an integer (and a cast can hold) */
		a->observed_count = d >= 0x1p63 ? (uint64_t)INT64_MAX : d > 0 ? (uint64_t)d : 0;
	if (!rc)
		rc = rnum(o, "score", &a->score, err);
	if (!rc)
		rc = rtops(o, "baseline_contributors", a->top[0], err);
	if (!rc)
		rc = rtops(o, "insight_contributors", a->top[1], err);
	if (!rc)
		rc = rlist(o, "event_ids", a->evidence[0], sizeof a->evidence[0], sizeof a->evidence[0],
			   TW_ANOMALY_EVIDENCE, &a->nevidence, err);
	if (!rc)
		rc = rstr(o, "summary", a->summary, sizeof a->summary, err);
	json_decref(o);
	return rc;
}
