/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/anomaly.h: one finding of the behaviour detectors (alerts/insight.h: API call-rate and
 * error-rate insights; alerts/firstseen.h: first-seen behaviour), as plain copyable data, and its
 * JSON line form: the format of STORE/anomalies/anomalies.jsonl. Nothing here touches the disk.
 *
 * anomalies.jsonl: one JSON object per line, appended, each line ending in "\n". Members (always
 * all present, in this order; strings are "" and lists [] when they do not apply):
 *   "id"         16 hex digits: a hash of detector, key and start (the start and end findings of
 *                one insight share it)
 *   "detector"   api_call_rate | api_error_rate | first_seen_api | first_seen_region | first_seen_ip
 *                | first_seen_user_agent | console_login_new_ip
 *   "phase"      "start" / "end" (insights), "event" (first-seen)
 *   "start", "end"        the span the finding covers, ISO 8601 UTC (for reading)
 *   "start_ms", "end_ms"  the same in ms since the epoch (what the reader uses)
 *   "account", "region", "eventSource", "eventName"   the insight's key ("*" as eventName: all APIs
 *                of the source); for first-seen, those of the first new event
 *   "principal"  first-seen: whose behaviour (assumed-role sessions reduced to the role, below);
 *                insights: the top principal of the insight period
 *   "value"      first-seen: the first new value (API as "source:name", region, "a.b.c.0/24",
 *                "2001:db8:1::/48", a user-agent family, a console-login IP)
 *   "values", "nvalues"   first-seen: up to 5 new values grouped in this finding, how many in all
 *   "baseline", "observed"   insights: average per minute expected / seen over [start, end)
 *   "observed_count"     insights: calls (or errors) counted in [start, end); first-seen: events
 *   "score"      insights: the peak surprise in standard deviations; first-seen: 1
 *   "baseline_contributors", "insight_contributors"   insights: objects with "principals",
 *                "userAgents", "errorCodes", each a list of {"key": string, "n": count}, at most 5,
 *                most frequent first (counts from bounded sketches: upper bounds)
 *   "event_ids"  up to 10 eventIDs of the events that make the finding (evidence)
 *   "summary"    one sentence: what was expected and what was seen
 * Readers ignore members they do not know; a line that is not a JSON object (a torn last line after
 * a crash) is skipped by tw_anomaly_read_line's callers. */
#ifndef TW_ALERTS_ANOMALY_H
#define TW_ALERTS_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define TW_ANOMALY_TOPK 5       /* contributors reported per kind and period */
#define TW_ANOMALY_EVIDENCE 10  /* event ids kept as evidence */
#define TW_ANOMALY_VALUES 5     /* new values listed by a first-seen finding */
#define TW_ANOMALY_STR 256      /* bytes of the string fields (longer values are cut at a UTF-8 boundary) */

/* Kinds of contributors. */
enum tw_anomaly_ckind {
	TW_ANOMALY_C_PRINCIPAL = 0,  /* principals */
	TW_ANOMALY_C_USER_AGENT = 1, /* user-agent families */
	TW_ANOMALY_C_ERROR_CODE = 2, /* error codes */
	TW_ANOMALY_C__COUNT
};

/* One contributor and its count. */
struct tw_anomaly_contrib {
	char key[TW_ANOMALY_STR]; /* the principal, user-agent family or error code */
	uint64_t n;               /* events (an upper bound: space-saving sketch) */
};

/* The top contributors of one kind. */
struct tw_anomaly_top {
	struct tw_anomaly_contrib c[TW_ANOMALY_TOPK]; /* most frequent first */
	unsigned n;                                   /* entries used */
};

/* One finding. Plain data: copy it with assignment. */
struct tw_anomaly {
	char id[17];                /* 16 hex digits (see above) */
	char detector[32];          /* api_call_rate, first_seen_api... */
	char phase[8];              /* start, end, event */
	int64_t start_ms;           /* start of the span (ms since the epoch) */
	int64_t end_ms;             /* end of the span (exclusive for insights; the last event for first-seen) */
	char account[64];           /* recipientAccountId */
	char region[64];            /* awsRegion */
	char event_source[128];     /* eventSource */
	char event_name[128];       /* eventName, "*" for all APIs of the source */
	char principal[TW_ANOMALY_STR]; /* see the file format above */
	char value[TW_ANOMALY_STR]; /* first-seen: the first new value */
	char values[TW_ANOMALY_VALUES][TW_ANOMALY_STR]; /* first-seen: new values grouped here */
	unsigned nvalues;           /* first-seen: distinct new values in all (>= entries in values) */
	double baseline;            /* insights: expected per minute */
	double observed;            /* insights: seen per minute */
	uint64_t observed_count;    /* insights: events in the span; first-seen: events grouped */
	double score;               /* insights: peak z; first-seen: 1 */
	struct tw_anomaly_top top[2][TW_ANOMALY_C__COUNT]; /* [0] baseline, [1] insight period */
	char evidence[TW_ANOMALY_EVIDENCE][64]; /* eventIDs */
	unsigned nevidence;         /* entries of evidence used */
	char summary[1024];         /* one sentence, see the detectors */
};

/* Copies s (n bytes) into dst (size cap) NUL-terminated, cut at a UTF-8 character boundary. */
void tw_anomaly_strcpy(char *dst, size_t cap, const char *s, size_t n);

/* Sets a->id from detector, the key fields and start_ms. */
void tw_anomaly_set_id(struct tw_anomaly *a);

/* Appends a as one JSON line (with "\n") to out. TW_ELIMIT when out is full. */
enum tw_rc tw_anomaly_write_json(const struct tw_anomaly *a, struct tw_buf *out, struct tw_err *err);

/* Parses one line written by tw_anomaly_write_json (p[0..n), the newline optional) into *out.
 * TW_EPARSE ("column C: reason") when it is not a JSON object or a member has the wrong type;
 * missing members stay zero / "". */
enum tw_rc tw_anomaly_read_line(const char *p, size_t n, struct tw_anomaly *out, struct tw_err *err);

/* The user-agent family: the product token before the first '/' or space ("aws-cli",
 * "Boto3", "console.amazonaws.com", "Mozilla"), without a leading '['. *out borrows ua. */
struct tw_str tw_anomaly_ua_family(struct tw_str ua);

/* Formats a rate per minute for sentences: "41.3" at or above 1, two significant digits below
 * ("0.42", "0.0031"), "0" for zero. out holds 32 bytes. Returns out. */
char *tw_anomaly_fmt_rate(double per_min, char *out);

#endif
