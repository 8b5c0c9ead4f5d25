/* SPDX-License-Identifier: Apache-2.0 */
/* core/config.c: the configuration file: a declarative schema walked against a jansson document.
 * The same tables drive validation (with key paths in every message), defaults, freeing and the
 * normalized output of `trailwatch config check`. Never prints; never holds a secret's value
 * (tw_secret_load reads it into the caller's buffer on demand).
 *
 * Invariants:
 *  1. Every key of every object is in its schema, else TW_EPARSE "unknown key PATH" (with the
 *     closest known key when one is within edit distance 2).
 *  2. A field's default is written as text in the table and parsed by the field's own parser, so
 *     the table documents what a user may write, and a bad default fails every test.
 *  3. A property whose name looks secret ("password", "secret" in it) cannot be a literal: it
 *     must be {"file": PATH} or {"env": NAME}. Values are never quoted in messages.
 *  4. Only the first error is reported; *out is written only on success.
 *  5. Checks across keys run once an object's keys are read (schema.check) and once the whole
 *     document is (cross_check: unique names, alarm periods, topics named); their messages name
 *     the key path as well. Endpoints and header values are not quoted (they may hold tokens).
 *  6. The normalized JSON is a config that parses to the same settings: members not in effect
 *     (schema.shows) and objects the file did not give (notifier, retry) are left out, so an
 *     absent notifier stays absent; numbers are written with the fewest digits read back exactly. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/time.h"

/* ---- the schema ---------------------------------------------------------------------------- */

enum ftype {
	F_STRING,   /* char *: a non-empty string (FL_EMPTY_OK: may be ""); choices: one of them */
	F_SIZE,     /* uint64_t: a number of bytes or "64M" (K, M, G, T: binary) */
	F_DURATION, /* int64_t ms: "90s", "5m", "400d" (core/time.h tw_duration_parse) */
	F_UINT,     /* uint64_t: an integer in [min, max] */
	F_ENUM,     /* int: the index of a string in choices (FL_BASE1: the index + 1) */
	F_STRINGS,  /* char ** + size_t count: an array of non-empty strings */
	F_OBJECT,   /* an embedded struct described by sub */
	F_OBJECTS,  /* a pointer to sub->size-byte elements + size_t count: an array of objects */
	F_PROPS,    /* struct tw_config_prop * + size_t count: an object of strings or secrets */
	F_DOUBLE,   /* double: any JSON number */
	F_BOOL,     /* int: true (1) or false (0) */
	F_JSON,     /* char *: a JSON object, kept as compact text with sorted keys (max bytes) */
	F_KV,       /* char ** + size_t count: an object of non-empty strings, kept as "key=value" */
	F_SECRET,   /* struct tw_secret: {"file": PATH} or {"env": NAME}, never a literal */
};

/* struct field.flags */
#define FL_REQUIRED 1u  /* missing is an error */
#define FL_EMPTY_OK 2u  /* F_STRING: "" is allowed */
#define FL_BASE1 4u     /* F_ENUM: stores the index + 1 (0 stays "unset") */
#define FL_POSITIVE 8u  /* F_DOUBLE, F_DURATION: must be > 0 */
#define FL_SELECTOR 16u /* F_STRINGS: every entry is a "$.field" selector */

struct schema;

/* One key of an object. */
struct field {
	const char *key;            /* the JSON key */
	enum ftype type;            /* how its value is read and stored */
	unsigned flags;             /* FL_*; 1 = FL_REQUIRED */
	const char *def;            /* default as the user would write it; NULL = none (zero): the text
	                               of a string for F_STRING, F_SIZE, F_DURATION, F_ENUM, else JSON
	                               ("4096", "true", "[\"alarms\"]"; F_OBJECT "{}" walks an empty
	                               object when absent) */
	size_t off;                 /* offset of the value in the parent struct */
	size_t off_n;               /* F_STRINGS, F_OBJECTS, F_PROPS, F_KV: offset of the count;
	                               F_OBJECT, F_DOUBLE: offset of an int set to 1 when the key is in
	                               the file (0: none) */
	const struct schema *sub;   /* F_OBJECT, F_OBJECTS: the member's schema */
	const char *const *choices; /* F_ENUM, F_STRING: allowed strings, NULL-terminated */
	uint64_t min, max;          /* F_UINT: range; F_STRINGS, F_OBJECTS, F_KV: min, max entries;
	                               F_JSON: max bytes */
	const char *doc;            /* one line for the documentation */
};

struct walk;

/* An object: its keys and the size of the struct it fills. */
struct schema {
	const struct field *fields; /* the keys, in output order */
	size_t nfields;             /* entries in fields */
	size_t size;                /* sizeof the struct (array elements) */
	/* Checks across the keys of one object once they are read (w->path is the object's); NULL
	 * = none. obj is the document's object (maybe the empty default). */
	enum tw_rc (*check)(struct walk *w, const json_t *obj, void *base);
	/* 0 when field f of base is not in effect and left out of the output (a source's members
	 * other than its type's); NULL = all shown. */
	int (*shows)(const struct field *f, const void *base);
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SCHEMA(f, type) { f, N(f), sizeof(type), NULL, NULL }
#define SCHEMA_CHECK(f, type, check, shows) { f, N(f), sizeof(type), check, shows }

/* The field's count, for the types that have one; else 0. */
static size_t count_of(const struct field *f, const void *base)
{
	if (f->type != F_STRINGS && f->type != F_OBJECTS && f->type != F_PROPS && f->type != F_KV)
		return 0;
	return *(const size_t *)((const char *)base + f->off_n);
}

/* The field's "given in the file" flag, or NULL. */
static int *given_flag(const struct field *f, const void *base)
{
	if ((f->type != F_OBJECT && f->type != F_DOUBLE) || !f->off_n)
		return NULL;
	return (int *)((char *)base + f->off_n);
}

static const char *const source_types[] = { "kafka", "follow", "files", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

#define S struct tw_config_store
static const struct field store_fields[] = {
	{ "dir", F_STRING, 1, NULL, offsetof(S, dir), 0, NULL, NULL, 0, 0,
	  "directory of the store (created if missing)" },
	{ "seal_size", F_SIZE, 0, "64M", offsetof(S, seal_bytes), 0, NULL, NULL, 0, 0,
	  "seal the WAL into a segment past this size" },
	{ "seal_age", F_DURATION, 0, "5m", offsetof(S, seal_age_ms), 0, NULL, NULL, 0, 0,
	  "... or when its oldest batch is this old" },
	{ "retain", F_DURATION, 0, NULL, offsetof(S, retain_ms), 0, NULL, NULL, 0, 0,
	  "drop segments older than this (absent: keep forever)" },
};
#undef S
static const struct schema store_schema = SCHEMA(store_fields, struct tw_config_store);

#define S struct tw_config_kafka
static const struct field kafka_fields[] = {
	{ "brokers", F_STRING, 1, NULL, offsetof(S, brokers), 0, NULL, NULL, 0, 0,
	  "bootstrap servers, \"host:port,host:port\"" },
	{ "group", F_STRING, 1, NULL, offsetof(S, group), 0, NULL, NULL, 0, 0,
	  "consumer group id (offsets are committed to it)" },
	{ "client_id", F_STRING, 0, "trailwatch", offsetof(S, client_id), 0, NULL, NULL, 0, 0,
	  "client.id" },
	{ "topics", F_STRINGS, 1, NULL, offsetof(S, topics), offsetof(S, ntopics), NULL, NULL, 1, 1000,
	  "topics to subscribe to" },
	{ "properties", F_PROPS, 0, NULL, offsetof(S, props), offsetof(S, nprops), NULL, NULL, 0, 0,
	  "librdkafka properties; secrets as {\"file\": PATH} or {\"env\": NAME}" },
	{ "dead_letter_topic", F_STRING, 0, NULL, offsetof(S, dead_letter_topic), 0, NULL, NULL, 0, 0,
	  "topic for undecodable messages (absent: none)" },
	{ "batch_max_events", F_UINT, 0, "4096", offsetof(S, batch_max_events), 0, NULL, NULL, 1, 10000000,
	  "a batch closes at this many events" },
	{ "batch_max_bytes", F_SIZE, 0, "16M", offsetof(S, batch_max_bytes), 0, NULL, NULL, 0, 0,
	  "... or this many payload bytes" },
	{ "batch_max_wait", F_DURATION, 0, "500ms", offsetof(S, batch_max_wait_ms), 0, NULL, NULL, 0, 0,
	  "... or this long after its first message" },
};
#undef S
static const struct schema kafka_schema = SCHEMA(kafka_fields, struct tw_config_kafka);

#define S struct tw_config_follow
static const struct field follow_fields[] = {
	{ "path", F_STRING, 1, NULL, offsetof(S, path), 0, NULL, NULL, 0, 0,
	  "directory to watch for new files (S3 layout or flat)" },
	{ "rescan", F_DURATION, 0, "1s", offsetof(S, rescan_ms), 0, NULL, NULL, 0, 0,
	  "how often the directory is rescanned" },
};
#undef S
static const struct schema follow_schema = SCHEMA(follow_fields, struct tw_config_follow);

#define S struct tw_config_files
static const struct field files_fields[] = {
	{ "paths", F_STRINGS, 1, NULL, offsetof(S, paths), offsetof(S, npaths), NULL, NULL, 1, 100000,
	  "files or directories, read once" },
};
#undef S
static const struct schema files_schema = SCHEMA(files_fields, struct tw_config_files);

/* The members kafka, follow and files are walked only when present: source_check ties them to type. */
#define S struct tw_config_source
static const struct field source_fields[] = {
	{ "type", F_ENUM, 1, NULL, offsetof(S, type), 0, NULL, source_types, 0, 0,
	  "kafka, follow or files: names the member below that is used" },
	{ "kafka", F_OBJECT, 0, NULL, offsetof(S, kafka), 0, &kafka_schema, NULL, 0, 0, "type kafka" },
	{ "follow", F_OBJECT, 0, NULL, offsetof(S, follow), 0, &follow_schema, NULL, 0, 0, "type follow" },
	{ "files", F_OBJECT, 0, NULL, offsetof(S, files), 0, &files_schema, NULL, 0, 0, "type files" },
};
#undef S
static enum tw_rc source_check(struct walk *w, const json_t *obj, void *base);
static int source_shows(const struct field *f, const void *base);
static const struct schema source_schema = SCHEMA_CHECK(source_fields, struct tw_config_source, source_check, source_shows);

#define S struct tw_config_limits
static const struct field limits_fields[] = {
	{ "max_record", F_SIZE, 0, "8M", offsetof(S, max_record), 0, NULL, NULL, 0, 0, "largest record" },
	{ "max_inflated", F_SIZE, 0, "16G", offsetof(S, max_inflated), 0, NULL, NULL, 0, 0,
	  "largest decompressed size of one file or message" },
	{ "threads", F_UINT, 0, "0", offsetof(S, threads), 0, NULL, NULL, 0, 1024, "decode threads; 0 = one per core" },
};
#undef S
static const struct schema limits_schema = SCHEMA(limits_fields, struct tw_config_limits);

#define S struct tw_config_log
static const struct field log_fields[] = {
	{ "file", F_STRING, 0, NULL, offsetof(S, file), 0, NULL, NULL, 0, 0, "log file (absent: stderr)" },
	{ "level", F_ENUM, 0, "info", offsetof(S, level), 0, NULL, log_levels, 0, 0, "error, warn, info or debug" },
};
#undef S
static const struct schema log_schema = SCHEMA(log_fields, struct tw_config_log);

/* ---- alerting: metrics, rules, alarms, cis_alarms, notifier ---- */

const char *const tw_config_comparisons[] = {
	"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold",
	"LessThanLowerOrGreaterThanUpperThreshold", "GreaterThanUpperThreshold", "LessThanLowerThreshold", NULL,
};
/* The first index of tw_config_comparisons that compares with the band instead of "threshold". */
#define FIRST_BAND_COMPARISON 4
const char *const tw_config_missing[] = { "missing", "notBreaching", "breaching", "ignore", NULL };
static const char *const statistics[] = { "Sum", "Average", "Minimum", "Maximum", "SampleCount", NULL };
/* Stored as index + 1 (FL_BASE1): enum tw_notify_proto's numbers. */
static const char *const protocols[] = { "email", "email-json", "http", "https", "file", "maildir", "exec", NULL };
#define PROTO_EMAIL 1
#define PROTO_EMAIL_JSON 2
#define PROTO_HTTP 3
#define PROTO_HTTPS 4
#define PROTO_MAILDIR 6
#define PROTO_EXEC 7
static const char *const starttls_modes[] = { "required", "opportunistic", "none", NULL };
static const char *const backoffs[] = { "linear", "arithmetic", "geometric", "exponential", NULL };

static enum tw_rc filter_check(struct walk *w, const json_t *obj, void *base);
static enum tw_rc alarm_check(struct walk *w, const json_t *obj, void *base);
static int alarm_shows(const struct field *f, const void *base);
static enum tw_rc topic_check(struct walk *w, const json_t *obj, void *base);
static enum tw_rc smtp_check(struct walk *w, const json_t *obj, void *base);
static enum tw_rc http_check(struct walk *w, const json_t *obj, void *base);
static enum tw_rc retry_check(struct walk *w, const json_t *obj, void *base);
static enum tw_rc subscription_check(struct walk *w, const json_t *obj, void *base);
static int subscription_shows(const struct field *f, const void *base);

#define S struct tw_config_metric_filter
static const struct field filter_fields[] = {
	{ "name", F_STRING, FL_REQUIRED, NULL, offsetof(S, name), 0, NULL, NULL, 0, 0,
	  "metric name (unique among the filters)" },
	{ "pattern", F_STRING, FL_REQUIRED | FL_EMPTY_OK, NULL, offsetof(S, pattern), 0, NULL, NULL, 0, 0,
	  "CloudWatch Logs filter pattern (\"\" matches every event)" },
	{ "value", F_STRING, 0, "1", offsetof(S, value), 0, NULL, NULL, 0, 0,
	  "metric value of a match: a number or a \"$.field\" of the event" },
	{ "default", F_DOUBLE, 0, NULL, offsetof(S, default_value), offsetof(S, has_default), NULL, NULL, 0, 0,
	  "value of a period without a match (absent: no value)" },
	{ "dimensions", F_STRINGS, FL_SELECTOR, NULL, offsetof(S, dimensions), offsetof(S, ndimensions), NULL, NULL, 0, 3,
	  "up to 3 \"$.field\" selectors whose values split the metric" },
};
#undef S
static const struct schema filter_schema = SCHEMA_CHECK(filter_fields, struct tw_config_metric_filter, filter_check, NULL);

#define S struct tw_config_metrics
static const struct field metrics_fields[] = {
	{ "period", F_DURATION, FL_POSITIVE, "1m", offsetof(S, period_ms), 0, NULL, NULL, 0, 0,
	  "aggregation period of every metric" },
	{ "lateness", F_DURATION, 0, "5m", offsetof(S, lateness_ms), 0, NULL, NULL, 0, 0,
	  "how long a period stays open for late events" },
	{ "max_values", F_UINT, 0, "1000", offsetof(S, max_values), 0, NULL, NULL, 1, 100000,
	  "distinct dimension values per metric (the rest count as \"other\")" },
	{ "cis", F_BOOL, 0, "true", offsetof(S, cis), 0, NULL, NULL, 0, 0,
	  "compute the CIS benchmark's metric filters" },
	{ "filters", F_OBJECTS, 0, NULL, offsetof(S, filters), offsetof(S, nfilters), &filter_schema, NULL, 0, 100,
	  "user metric filters" },
};
#undef S
static const struct schema metrics_schema = SCHEMA(metrics_fields, struct tw_config_metrics);

#define S struct tw_config_rule
static const struct field rule_fields[] = {
	{ "name", F_STRING, FL_REQUIRED, NULL, offsetof(S, name), 0, NULL, NULL, 0, 0, "rule name (unique)" },
	{ "pattern", F_STRING, FL_REQUIRED, NULL, offsetof(S, pattern), 0, NULL, NULL, 0, 0,
	  "CloudWatch Logs filter pattern of the events published" },
	{ "topic", F_STRING, FL_REQUIRED, NULL, offsetof(S, topic), 0, NULL, NULL, 0, 0,
	  "notifier topic each matching event is published to" },
	{ "severity", F_STRING, 0, "high", offsetof(S, severity), 0, NULL, NULL, 0, 0,
	  "message attribute \"severity\"" },
};
#undef S
static const struct schema rule_schema = SCHEMA(rule_fields, struct tw_config_rule);

#define S struct tw_config_alarm
static const struct field alarm_fields[] = {
	{ "name", F_STRING, FL_REQUIRED, NULL, offsetof(S, name), 0, NULL, NULL, 0, 0, "alarm name (unique)" },
	{ "description", F_STRING, 0, NULL, offsetof(S, description), 0, NULL, NULL, 0, 0, "shown in notifications" },
	{ "metric", F_STRING, 0, NULL, offsetof(S, metric), 0, NULL, NULL, 0, 0,
	  "metric watched (required unless \"rule\")" },
	{ "dimensions", F_KV, 0, NULL, offsetof(S, dimensions), offsetof(S, ndimensions), NULL, NULL, 0, 30,
	  "{\"name\": \"value\"}: only that tuple of the metric counts" },
	{ "statistic", F_STRING, 0, "Sum", offsetof(S, statistic), 0, NULL, statistics, 0, 0,
	  "Sum, Average, Minimum, Maximum or SampleCount" },
	{ "period", F_DURATION, 0, "5m", offsetof(S, period_ms), 0, NULL, NULL, 0, 0,
	  "evaluation period, a multiple of metrics.period" },
	{ "evaluation_periods", F_UINT, 0, "1", offsetof(S, evaluation_periods), 0, NULL, NULL, 1, 1440,
	  "N: the last N periods are evaluated" },
	{ "datapoints_to_alarm", F_UINT, 0, NULL, offsetof(S, datapoints_to_alarm), 0, NULL, NULL, 0, 1440,
	  "M: breaching periods among N that trigger ALARM (absent or 0: N)" },
	{ "threshold", F_DOUBLE, 0, NULL, offsetof(S, threshold), offsetof(S, has_threshold), NULL, NULL, 0, 0,
	  "compared with the statistic (required unless a band comparison)" },
	{ "comparison", F_ENUM, 0, "GreaterThanOrEqualToThreshold", offsetof(S, comparison), 0, NULL,
	  tw_config_comparisons, 0, 0, "CloudWatch's ComparisonOperator" },
	{ "band", F_DOUBLE, FL_POSITIVE, "2", offsetof(S, band), 0, NULL, NULL, 0, 0,
	  "width of the anomaly band (band comparisons)" },
	{ "treat_missing_data", F_ENUM, 0, "missing", offsetof(S, missing), 0, NULL, tw_config_missing, 0, 0,
	  "missing, notBreaching, breaching or ignore" },
	{ "rule", F_STRING, 0, NULL, offsetof(S, rule), 0, NULL, NULL, 0, 0,
	  "AlarmRule of a composite alarm (ALARM(\"a\") AND NOT OK(\"b\"))" },
	{ "alarm_actions", F_STRINGS, 0, NULL, offsetof(S, alarm_actions), offsetof(S, nalarm_actions), NULL, NULL, 0, 16,
	  "topics notified on a change to ALARM" },
	{ "ok_actions", F_STRINGS, 0, NULL, offsetof(S, ok_actions), offsetof(S, nok_actions), NULL, NULL, 0, 16,
	  "topics notified on a change to OK" },
	{ "insufficient_data_actions", F_STRINGS, 0, NULL, offsetof(S, insufficient_actions),
	  offsetof(S, ninsufficient_actions), NULL, NULL, 0, 16, "topics notified on a change to INSUFFICIENT_DATA" },
	{ "actions_enabled", F_BOOL, 0, "true", offsetof(S, actions_enabled), 0, NULL, NULL, 0, 0,
	  "false: state changes are recorded but nobody is notified" },
	{ "severity", F_STRING, 0, "medium", offsetof(S, severity), 0, NULL, NULL, 0, 0, "label \"severity\"" },
	{ "labels", F_KV, 0, NULL, offsetof(S, labels), offsetof(S, nlabels), NULL, NULL, 0, 64,
	  "{\"name\": \"value\"} labels of its notifications" },
};
#undef S
static const struct schema alarm_schema = SCHEMA_CHECK(alarm_fields, struct tw_config_alarm, alarm_check, alarm_shows);

#define S struct tw_config_cis_alarms
static const struct field cis_alarms_fields[] = {
	{ "enabled", F_BOOL, 0, "false", offsetof(S, enabled), 0, NULL, NULL, 0, 0,
	  "an alarm on each CIS metric (Sum over 5 minutes >= 1)" },
	{ "actions", F_STRINGS, 0, "[\"alarms\"]", offsetof(S, actions), offsetof(S, nactions), NULL, NULL, 0, 16,
	  "topics notified" },
	{ "severity", F_STRING, 0, "high", offsetof(S, severity), 0, NULL, NULL, 0, 0, "label \"severity\"" },
};
#undef S
static const struct schema cis_alarms_schema = SCHEMA(cis_alarms_fields, struct tw_config_cis_alarms);

#define S struct tw_config_topic
static const struct field topic_fields[] = {
	{ "name", F_STRING, FL_REQUIRED, NULL, offsetof(S, name), 0, NULL, NULL, 0, 0,
	  "[A-Za-z0-9_-]{1,256}, unique" },
	{ "display_name", F_STRING, 0, NULL, offsetof(S, display_name), 0, NULL, NULL, 0, 0,
	  "display name of the mails' From" },
};
#undef S
static const struct schema topic_schema = SCHEMA_CHECK(topic_fields, struct tw_config_topic, topic_check, NULL);

#define S struct tw_config_smtp
static const struct field smtp_fields[] = {
	{ "url", F_STRING, 0, NULL, offsetof(S, url), 0, NULL, NULL, 0, 0,
	  "smtp://host:port or smtps://host:port (required for email)" },
	{ "from", F_STRING, 0, NULL, offsetof(S, from), 0, NULL, NULL, 0, 0, "From address (required for email)" },
	{ "to", F_STRINGS, 0, NULL, offsetof(S, to), offsetof(S, nto), NULL, NULL, 0, 100,
	  "recipients (absent: the endpoint)" },
	{ "user", F_STRING, 0, NULL, offsetof(S, user), 0, NULL, NULL, 0, 0, "AUTH user (absent: no AUTH)" },
	{ "password", F_SECRET, 0, NULL, offsetof(S, password), 0, NULL, NULL, 0, 0,
	  "AUTH password: {\"file\": PATH} or {\"env\": NAME}" },
	{ "starttls", F_ENUM, 0, "required", offsetof(S, starttls), 0, NULL, starttls_modes, 0, 0,
	  "smtp:// only: required, opportunistic or none" },
	{ "ca_file", F_STRING, 0, NULL, offsetof(S, ca_file), 0, NULL, NULL, 0, 0, "CA bundle (absent: the system's)" },
	{ "insecure", F_BOOL, 0, "false", offsetof(S, insecure), 0, NULL, NULL, 0, 0,
	  "true: do not verify the server's certificate" },
};
#undef S
static const struct schema smtp_schema = SCHEMA_CHECK(smtp_fields, struct tw_config_smtp, smtp_check, NULL);

#define S struct tw_config_http
static const struct field http_fields[] = {
	{ "headers", F_STRINGS, 0, NULL, offsetof(S, headers), offsetof(S, nheaders), NULL, NULL, 0, 64,
	  "extra request headers, \"Name: value\"" },
	{ "ca_file", F_STRING, 0, NULL, offsetof(S, ca_file), 0, NULL, NULL, 0, 0, "CA bundle (absent: the system's)" },
	{ "insecure", F_BOOL, 0, "false", offsetof(S, insecure), 0, NULL, NULL, 0, 0,
	  "true: do not verify the server's certificate" },
};
#undef S
static const struct schema http_schema = SCHEMA_CHECK(http_fields, struct tw_config_http, http_check, NULL);

#define S struct tw_config_retry
static const struct field retry_fields[] = {
	{ "num_retries", F_UINT, FL_REQUIRED, NULL, offsetof(S, num_retries), 0, NULL, NULL, 0, 999,
	  "retries after the first attempt" },
	{ "num_no_delay", F_UINT, 0, "0", offsetof(S, num_no_delay), 0, NULL, NULL, 0, 999, "first, immediate retries" },
	{ "num_min_delay", F_UINT, 0, "0", offsetof(S, num_min_delay), 0, NULL, NULL, 0, 999,
	  "then retries min_delay apart" },
	{ "num_max_delay", F_UINT, 0, "0", offsetof(S, num_max_delay), 0, NULL, NULL, 0, 999,
	  "last, retries max_delay apart" },
	{ "min_delay", F_DURATION, 0, "20s", offsetof(S, min_delay_ms), 0, NULL, NULL, 0, 0, "shortest delay" },
	{ "max_delay", F_DURATION, 0, "20s", offsetof(S, max_delay_ms), 0, NULL, NULL, 0, 0, "longest delay" },
	{ "backoff", F_ENUM, 0, "linear", offsetof(S, backoff), 0, NULL, backoffs, 0, 0,
	  "growth of the delays: linear, arithmetic, geometric or exponential" },
	{ "jitter", F_UINT, 0, "0", offsetof(S, jitter_pct), 0, NULL, NULL, 0, 50, "random spread of a delay, percent" },
	{ "max_age", F_DURATION, 0, "0s", offsetof(S, max_age_ms), 0, NULL, NULL, 0, 0,
	  "no retry of a delivery older than this (0: no limit)" },
};
#undef S
static const struct schema retry_schema = SCHEMA_CHECK(retry_fields, struct tw_config_retry, retry_check, NULL);

#define S struct tw_config_subscription
static const struct field subscription_fields[] = {
	{ "name", F_STRING, 0, NULL, offsetof(S, name), 0, NULL, NULL, 0, 0,
	  "stable id, unique (absent: \"PROTOCOL:ENDPOINT\")" },
	{ "topic", F_STRING, FL_REQUIRED, NULL, offsetof(S, topic), 0, NULL, NULL, 0, 0, "a configured topic" },
	{ "protocol", F_ENUM, FL_REQUIRED | FL_BASE1, NULL, offsetof(S, protocol), 0, NULL, protocols, 0, 0,
	  "email, email-json, http, https, file, maildir or exec" },
	{ "endpoint", F_STRING, FL_REQUIRED, NULL, offsetof(S, endpoint), 0, NULL, NULL, 0, 0,
	  "address, URL, file, directory or program" },
	{ "filter_policy", F_JSON, 0, NULL, offsetof(S, filter_policy), 0, NULL, NULL, 0, 16384,
	  "SNS filter policy on the message attributes (absent: every message)" },
	{ "argv", F_STRINGS, 0, NULL, offsetof(S, argv), offsetof(S, nargv), NULL, NULL, 0, 256,
	  "exec: the full argv, argv[0] is run (absent: the endpoint alone)" },
	{ "smtp", F_OBJECT, 0, NULL, offsetof(S, smtp), 0, &smtp_schema, NULL, 0, 0, "email, email-json, maildir" },
	{ "http", F_OBJECT, 0, NULL, offsetof(S, http), 0, &http_schema, NULL, 0, 0, "http, https" },
	{ "connect_timeout", F_DURATION, 0, "10s", offsetof(S, connect_timeout_ms), 0, NULL, NULL, 0, 0,
	  "connection timeout" },
	{ "timeout", F_DURATION, 0, "30s", offsetof(S, timeout_ms), 0, NULL, NULL, 0, 0,
	  "timeout of a whole attempt (exec: the program's run time)" },
	{ "retry", F_OBJECT, 0, NULL, offsetof(S, retry), offsetof(S, retry.present), &retry_schema, NULL, 0, 0,
	  "delivery retry policy (absent: the protocol's default)" },
};
#undef S
static const struct schema subscription_schema =
	SCHEMA_CHECK(subscription_fields, struct tw_config_subscription, subscription_check, subscription_shows);

#define S struct tw_config_notifier
static const struct field notifier_fields[] = {
	{ "state_dir", F_STRING, 0, NULL, offsetof(S, state_dir), 0, NULL, NULL, 0, 0,
	  "outbox directory (absent: STORE/notify)" },
	{ "workers", F_UINT, 0, "2", offsetof(S, workers), 0, NULL, NULL, 1, 64, "delivery threads" },
	{ "group_by", F_STRINGS, 0, "[\"alarm\"]", offsetof(S, group_by), offsetof(S, ngroup_by), NULL, NULL, 0, 16,
	  "labels whose values group alarms into one message" },
	{ "group_wait", F_DURATION, 0, "30s", offsetof(S, group_wait_ms), 0, NULL, NULL, 0, 0,
	  "wait before the first message of a new group" },
	{ "group_interval", F_DURATION, 0, "5m", offsetof(S, group_interval_ms), 0, NULL, NULL, 0, 0,
	  "wait before a message about changes to a group" },
	{ "repeat_interval", F_DURATION, 0, "4h", offsetof(S, repeat_interval_ms), 0, NULL, NULL, 0, 0,
	  "repeat a message about a firing group (0s: never)" },
	{ "topics", F_OBJECTS, 0, NULL, offsetof(S, topics), offsetof(S, ntopics), &topic_schema, NULL, 0, 1000,
	  "topics" },
	{ "subscriptions", F_OBJECTS, 0, NULL, offsetof(S, subscriptions), offsetof(S, nsubscriptions),
	  &subscription_schema, NULL, 0, 1000, "subscriptions of the topics" },
};
#undef S
static const struct schema notifier_schema = SCHEMA(notifier_fields, struct tw_config_notifier);

#define S struct tw_config
static const struct field top_fields[] = {
	{ "store", F_OBJECT, 1, NULL, offsetof(S, store), 0, &store_schema, NULL, 0, 0, "the store" },
	{ "sources", F_OBJECTS, 1, NULL, offsetof(S, sources), offsetof(S, nsources), &source_schema, NULL, 1, 64,
	  "where events come from" },
	{ "limits", F_OBJECT, 0, "{}", offsetof(S, limits), 0, &limits_schema, NULL, 0, 0, "decoding limits" },
	{ "log", F_OBJECT, 0, "{}", offsetof(S, log), 0, &log_schema, NULL, 0, 0, "logging" },
	{ "metrics", F_OBJECT, 0, "{}", offsetof(S, metrics), 0, &metrics_schema, NULL, 0, 0, "metrics" },
	{ "rules", F_OBJECTS, 0, NULL, offsetof(S, rules), offsetof(S, nrules), &rule_schema, NULL, 0, 1000,
	  "event rules: matching events are published at once" },
	{ "alarms", F_OBJECTS, 0, NULL, offsetof(S, alarms), offsetof(S, nalarms), &alarm_schema, NULL, 0, 10000,
	  "metric and composite alarms" },
	{ "cis_alarms", F_OBJECT, 0, "{}", offsetof(S, cis_alarms), 0, &cis_alarms_schema, NULL, 0, 0,
	  "the CIS benchmark's alarms" },
	{ "notifier", F_OBJECT, 0, "{}", offsetof(S, notifier), offsetof(S, notifier.present), &notifier_schema, NULL,
	  0, 0, "topics and subscriptions (absent: topic \"alarms\" to a maildir in STORE/mail)" },
};
#undef S
static const struct schema top_schema = SCHEMA(top_fields, struct tw_config);

/* Properties trailwatch sets itself from other keys (or must keep: commits are the source's job). */
static const char *const reserved_props[][2] = {
	{ "bootstrap.servers", "kafka.brokers" },
	{ "metadata.broker.list", "kafka.brokers" },
	{ "group.id", "kafka.group" },
	{ "client.id", "kafka.client_id" },
	{ "enable.auto.commit", NULL },
};

/* 1 when a property's value is a secret and must not be written in the file. */
static int secret_key(const char *key)
{
	return strcasestr(key, "password") || strcasestr(key, "secret") || !strcmp(key, "ssl.key.pem") ||
	       !strcmp(key, "sasl.oauthbearer.config");
}

/* ---- the walk ------------------------------------------------------------------------------ */

/* State of one validation. */
struct walk {
	const char *name;   /* the file, for messages */
	char path[200];     /* "$.sources[1].kafka" */
	size_t plen;        /* bytes in path */
	size_t nsecrets;    /* secrets seen */
	struct tw_err *err; /* where the first error goes */
};

static int is_ident(const char *k)
{
	if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
		return 0;
	for (k++; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_'))
			return 0;
	return 1;
}

/* Appends ".key", "[\"odd.key\"]" or "[i]" to the path; returns the old length for path_pop. */
static size_t path_push(struct walk *w, const char *key, size_t idx)
{
	size_t old = w->plen, room = sizeof w->path - w->plen;
	int n;

	if (!key)
		n = snprintf(w->path + w->plen, room, "[%zu]", idx);
	else if (is_ident(key))
		n = snprintf(w->path + w->plen, room, ".%s", key);
	else
		n = snprintf(w->path + w->plen, room, "[\"%s\"]", key);
	if (n > 0)
		w->plen += (size_t)n < room ? (size_t)n : room - 1;
	return old;
}

static void path_pop(struct walk *w, size_t old)
{
	w->plen = old;
	w->path[old] = '\0';
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "a number";
	case JSON_REAL: return "a number";
	case JSON_TRUE: return "true";
	case JSON_FALSE: return "false";
	case JSON_NULL: return "null";
	}
	return "something else";
}

static enum tw_rc expected(struct walk *w, const char *what, const json_t *v)
{
	return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected %s, got %s", w->name, w->path, what, json_kind(v));
}

static enum tw_rc oom(struct walk *w)
{
	return tw_err_set(w->err, TW_ENOMEM, "%s: out of memory reading %s", w->name, w->path);
}

/* Edit distance of a and b (both short keys), capped at 9. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65], i, j;

	if (la > 64 || lb > 64)
		return 9;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb] < 9 ? row[lb] : 9;
}

int tw_config_size_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	case 't': case 'T': mult = 1ull << 40; p++; break;
	case 'b': case 'B': break;
	default: return -1;
	}
	/* Optional "B" or "iB" after a suffix (64KB, 64KiB), or a lone "B" (512B). */
	if (*p && strcasecmp(p, "b") && !(mult > 1 && !strcasecmp(p, "ib")))
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static enum tw_rc walk_object(struct walk *w, const struct schema *sc, const json_t *obj, void *base);

/* Reads a string into *dst; "" only when empty_ok. */
static enum tw_rc read_text(struct walk *w, const json_t *v, char **dst, const char *what, int empty_ok)
{
	if (!json_is_string(v))
		return expected(w, what, v);
	if (!json_string_length(v) && !empty_ok)
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: must not be empty", w->name, w->path);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: contains a NUL character", w->name, w->path);
	if (!(*dst = xstrdup(json_string_value(v))))
		return oom(w);
	return TW_OK;
}

static enum tw_rc read_string(struct walk *w, const json_t *v, char **dst, const char *what)
{
	return read_text(w, v, dst, what, 0);
}

/* v is not one of choices: the list, or for a long one (that would not fit in a message) the
 * closest choice. */
static enum tw_rc bad_choice(struct walk *w, const char *const *choices, const json_t *v)
{
	char list[512];
	size_t len = 0, bestd = 4;
	const char *best = NULL;

	for (int i = 0; choices[i]; i++) {
		len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", choices[i]);
		if (len >= sizeof list)
			len = sizeof list - 1;
		if (json_is_string(v)) {
			size_t d = edit_distance(json_string_value(v), choices[i]);
			if (d < bestd) {
				bestd = d;
				best = choices[i];
			}
		}
	}
	if (!json_is_string(v))
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected one of %s, got %s", w->name, w->path, list,
				  json_kind(v));
	if (len > 120 && best)
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: \"%s\" is not a valid value (did you mean %s?)", w->name,
				  w->path, json_string_value(v), best);
	return tw_err_set(w->err, TW_EPARSE, "%s: %s: \"%s\" is not one of %s", w->name, w->path, json_string_value(v),
			  list);
}

static enum tw_rc read_secret(struct walk *w, const json_t *v, struct tw_secret *s)
{
	static const char what[] = "{\"file\": PATH} or {\"env\": NAME}";
	const char *k;
	json_t *x;
	enum tw_rc rc;

	if (!json_is_object(v) || json_object_size(v) != 1)
		return expected(w, what, v);
	json_object_foreach((json_t *)v, k, x) {
		size_t old = path_push(w, k, 0);
		if (!strcmp(k, "file"))
			s->from = TW_SECRET_FILE;
		else if (!strcmp(k, "env"))
			s->from = TW_SECRET_ENV;
		else {
			rc = tw_err_set(w->err, TW_EPARSE, "%s: unknown key %s (a secret is %s)", w->name, w->path, what);
			path_pop(w, old);
			return rc;
		}
		rc = read_string(w, x, &s->ref, "a string");
		path_pop(w, old);
		if (rc)
			return rc;
	}
	w->nsecrets++;
	return TW_OK;
}

static enum tw_rc read_props(struct walk *w, const json_t *v, struct tw_config_prop **dst, size_t *n)
{
	const char *k;
	json_t *x;
	enum tw_rc rc = TW_OK;

	if (!json_is_object(v))
		return expected(w, "an object", v);
	if (!json_object_size(v))
		return TW_OK;
	if (!(*dst = calloc(json_object_size(v), sizeof **dst)))
		return oom(w);
	json_object_foreach((json_t *)v, k, x) {
		struct tw_config_prop *p = &(*dst)[*n];
		size_t old = path_push(w, k, 0);

		for (size_t i = 0; i < N(reserved_props); i++) {
			if (strcmp(k, reserved_props[i][0]))
				continue;
			if (reserved_props[i][1])
				rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: set by %s, not here", w->name, w->path,
						reserved_props[i][1]);
			else
				rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: not allowed (trailwatch commits offsets itself)",
						w->name, w->path);
			break;
		}
		if (!rc && !(p->key = xstrdup(k)))
			rc = oom(w);
		(*n)++;
		if (!rc && json_is_object(x))
			rc = read_secret(w, x, &p->secret);
		else if (!rc && json_is_string(x) && secret_key(k))
			rc = tw_err_set(w->err, TW_EPARSE,
					"%s: %s: a secret must come from {\"file\": PATH} or {\"env\": NAME}, not the config file",
					w->name, w->path);
		else if (!rc)
			rc = read_string(w, x, &p->value, "a string, {\"file\": PATH} or {\"env\": NAME}");
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

/* The start the list fields share: the count within f->min..f->max (items names them in the
 * message), then count zeroed elements of sz bytes into *out (left alone when count is 0). */
static enum tw_rc list_alloc(struct walk *w, const struct field *f, size_t count, const char *items, size_t sz,
			     void **out)
{
	void *m;

	if (count < f->min || count > f->max)
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected %llu to %llu %s, got %zu", w->name, w->path,
				  (unsigned long long)f->min, (unsigned long long)f->max, items, count);
	if (!count)
		return TW_OK;
	if (!(m = calloc(count, sz)))
		return oom(w);
	*out = m;
	return TW_OK;
}

static enum tw_rc read_strings(struct walk *w, const struct field *f, const json_t *v, char ***dst, size_t *n)
{
	size_t i;
	json_t *x;
	void *m = NULL;
	enum tw_rc rc;

	if (!json_is_array(v))
		return expected(w, "an array of strings", v);
	if ((rc = list_alloc(w, f, json_array_size(v), "strings", sizeof **dst, &m)) || !m)
		return rc;
	*dst = m;
	json_array_foreach(v, i, x) {
		size_t old = path_push(w, NULL, i);

		rc = read_string(w, x, &(*dst)[i], "a string");

		*n = i + 1;
		if (!rc && (f->flags & FL_SELECTOR) && (strncmp((*dst)[i], "$.", 2) || !(*dst)[i][2]))
			rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: expected a \"$.field\" selector, got \"%s\"", w->name,
					w->path, (*dst)[i]);
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

static enum tw_rc read_objects(struct walk *w, const struct field *f, const json_t *v, void **dst, size_t *n)
{
	size_t i;
	json_t *x;
	enum tw_rc rc;

	if (!json_is_array(v))
		return expected(w, "an array of objects", v);
	if ((rc = list_alloc(w, f, json_array_size(v), "entries", f->sub->size, dst)) || !json_array_size(v))
		return rc;
	json_array_foreach(v, i, x) {
		size_t old = path_push(w, NULL, i);

		*n = i + 1; /* counted before walking: a half-filled element is freed too */
		rc = walk_object(w, f->sub, x, (char *)*dst + i * f->sub->size);
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

/* An object of strings into "key=value" strings. */
static enum tw_rc read_kv(struct walk *w, const struct field *f, const json_t *v, char ***dst, size_t *n)
{
	const char *k;
	json_t *x;
	void *m = NULL;
	enum tw_rc rc;

	if (!json_is_object(v))
		return expected(w, "an object of strings", v);
	if ((rc = list_alloc(w, f, json_object_size(v), "entries", sizeof **dst, &m)) || !m)
		return rc;
	*dst = m;
	json_object_foreach((json_t *)v, k, x) {
		size_t old = path_push(w, k, 0), kl = strlen(k);
		char *val = NULL;

		rc = TW_OK;

		if (!*k || strchr(k, '='))
			rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: a name must not be empty nor hold '='", w->name, w->path);
		if (!rc)
			rc = read_string(w, x, &val, "a string");
		if (!rc && !((*dst)[*n] = malloc(kl + strlen(val) + 2)))
			rc = oom(w);
		if (!rc)
			sprintf((*dst)[(*n)++], "%s=%s", k, val);
		free(val);
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

/* Reads v (present or the parsed default) into the field at base. */
static enum tw_rc read_field(struct walk *w, const struct field *f, const json_t *v, void *base)
{
	char *at = (char *)base + f->off;
	size_t *n = (size_t *)((char *)base + f->off_n);

	switch (f->type) {
	case F_STRING: {
		enum tw_rc rc = read_text(w, v, (char **)at, "a string", (f->flags & FL_EMPTY_OK) != 0);
		for (int i = 0; !rc && f->choices && f->choices[i]; i++)
			if (!strcmp(*(char **)at, f->choices[i]))
				return TW_OK;
		return rc || !f->choices ? rc : bad_choice(w, f->choices, v);
	}
	case F_SIZE:
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			*(uint64_t *)at = (uint64_t)json_integer_value(v);
			return TW_OK;
		}
		if (json_is_number(v))
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: a size must be a whole, non-negative number of bytes",
					  w->name, w->path);
		if (!json_is_string(v))
			return expected(w, "a size (a number of bytes or a string like \"64M\")", v);
		if (tw_config_size_parse(json_string_value(v), (uint64_t *)at))
			return tw_err_set(w->err, TW_EPARSE,
					  "%s: %s: bad size \"%s\": expected a number with an optional K, M, G or T suffix",
					  w->name, w->path, json_string_value(v));
		return TW_OK;
	case F_DURATION: {
		struct tw_err terr;
		if (!json_is_string(v))
			return expected(w, "a duration string (\"90s\", \"5m\", \"400d\")", v);
		if (tw_duration_parse(json_string_value(v), (int64_t *)at, &terr))
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: %s", w->name, w->path, terr.msg);
		if ((f->flags & FL_POSITIVE) && *(int64_t *)at <= 0)
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: must be longer than 0", w->name, w->path);
		return TW_OK;
	}
	case F_UINT:
		if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < f->min ||
		    (uint64_t)json_integer_value(v) > f->max) {
			if (json_is_integer(v))
				return tw_err_set(w->err, TW_EPARSE, "%s: %s: %lld is out of range [%llu, %llu]", w->name,
						  w->path, (long long)json_integer_value(v), (unsigned long long)f->min,
						  (unsigned long long)f->max);
			return expected(w, "an integer", v);
		}
		*(uint64_t *)at = (uint64_t)json_integer_value(v);
		return TW_OK;
	case F_ENUM:
		for (int i = 0; f->choices[i]; i++)
			if (json_is_string(v) && !strcmp(json_string_value(v), f->choices[i])) {
				*(int *)at = (f->flags & FL_BASE1) ? i + 1 : i;
				return TW_OK;
			}
		return bad_choice(w, f->choices, v);
	case F_STRINGS:
		return read_strings(w, f, v, (char ***)at, n);
	case F_OBJECT:
		return walk_object(w, f->sub, v, at);
	case F_OBJECTS:
		return read_objects(w, f, v, (void **)at, n);
	case F_PROPS:
		return read_props(w, v, (struct tw_config_prop **)at, n);
	case F_DOUBLE:
		if (!json_is_number(v))
			return expected(w, "a number", v);
		if ((f->flags & FL_POSITIVE) && !(json_number_value(v) > 0))
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: must be greater than 0", w->name, w->path);
		*(double *)at = json_number_value(v);
		return TW_OK;
	case F_BOOL:
		if (!json_is_boolean(v))
			return expected(w, "true or false", v);
		*(int *)at = json_is_true(v);
		return TW_OK;
	case F_JSON: {
		char *text;
		if (!json_is_object(v))
			return expected(w, "an object", v);
		if (!(text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS)))
			return oom(w);
		if (strlen(text) > f->max) {
			free(text);
			return tw_err_set(w->err, TW_ELIMIT, "%s: %s: longer than %llu bytes", w->name, w->path,
					  (unsigned long long)f->max);
		}
		*(char **)at = text;
		return TW_OK;
	}
	case F_KV:
		return read_kv(w, f, v, (char ***)at, n);
	case F_SECRET:
		if (json_is_string(v))
			return tw_err_set(w->err, TW_EPARSE,
					  "%s: %s: a secret must come from {\"file\": PATH} or {\"env\": NAME}, not the config file",
					  w->name, w->path);
		return read_secret(w, v, (struct tw_secret *)at);
	}
	return tw_err_set(w->err, TW_EINVAL, "%s: %s: bad schema", w->name, w->path);
}

/* The field's default as a JSON value (owned); NULL when it does not parse (a bug of the table). */
static json_t *default_value(const struct field *f)
{
	if (f->type == F_STRING || f->type == F_SIZE || f->type == F_DURATION || f->type == F_ENUM)
		return json_string(f->def);
	return json_loads(f->def, JSON_DECODE_ANY, NULL);
}

static enum tw_rc walk_object(struct walk *w, const struct schema *sc, const json_t *obj, void *base)
{
	const char *k;
	json_t *v;
	enum tw_rc rc;
	size_t i;

	if (!json_is_object(obj))
		return expected(w, "an object", obj);
	/* 1. Unknown keys, in document order. */
	json_object_foreach((json_t *)obj, k, v) {
		const char *best = NULL;
		size_t bestd = 3, old;

		for (i = 0; i < sc->nfields; i++) {
			size_t d;
			if (!strcmp(sc->fields[i].key, k))
				break;
			d = edit_distance(sc->fields[i].key, k);
			if (d < bestd && d < strlen(k)) {
				bestd = d;
				best = sc->fields[i].key;
			}
		}
		if (i < sc->nfields)
			continue;
		old = path_push(w, k, 0);
		if (best)
			rc = tw_err_set(w->err, TW_EPARSE, "%s: unknown key %s (did you mean %s?)", w->name, w->path, best);
		else
			rc = tw_err_set(w->err, TW_EPARSE, "%s: unknown key %s", w->name, w->path);
		path_pop(w, old);
		return rc;
	}
	/* 2. The schema's keys, in table order: present, required, defaulted or left zero. */
	for (i = 0; i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		json_t *dv = NULL;
		size_t old = path_push(w, f->key, 0);
		int *given = given_flag(f, base);

		v = json_object_get(obj, f->key);
		if (!v && (f->flags & FL_REQUIRED)) {
			rc = tw_err_set(w->err, TW_EPARSE, "%s: missing required key %s", w->name, w->path);
		} else if (!v && f->def) {
			dv = default_value(f);
			rc = dv ? read_field(w, f, dv, base)
				: tw_err_set(w->err, TW_EINVAL, "%s: %s: bad default in the schema", w->name, w->path);
			json_decref(dv);
		} else if (v) {
			rc = read_field(w, f, v, base);
			if (given)
				*given = 1;
		} else {
			rc = TW_OK;
		}
		path_pop(w, old);
		if (rc)
			return rc;
	}
	/* 3. Checks across its keys. */
	return sc->check ? sc->check(w, obj, base) : TW_OK;
}

/* ---- checks across keys ------------------------------------------------------------------------ */

/* An error at the key path PATH.key (key NULL: PATH): "FILE: PATH.key: message". */
static enum tw_rc fail_at(struct walk *w, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum tw_rc fail_at(struct walk *w, const char *key, const char *fmt, ...)
{
	char msg[256];
	size_t old = key ? path_push(w, key, 0) : w->plen;
	va_list ap;
	enum tw_rc rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: %s", w->name, w->path, msg);
	path_pop(w, old);
	return rc;
}

/* "FILE: missing required key PATH.key1[.key2] (why)". */
static enum tw_rc missing_at(struct walk *w, const char *key1, const char *key2, const char *why)
{
	size_t old = path_push(w, key1, 0);
	enum tw_rc rc;

	if (key2)
		path_push(w, key2, 0);
	rc = tw_err_set(w->err, TW_EPARSE, "%s: missing required key %s (%s)", w->name, w->path, why);
	path_pop(w, old);
	return rc;
}

/* A source's member must match its type; the others must be absent. */
static enum tw_rc source_check(struct walk *w, const json_t *obj, void *base)
{
	const char *type = source_types[((const struct tw_config_source *)base)->type];

	for (int i = 0; source_types[i]; i++) {
		int present = json_object_get(obj, source_types[i]) != NULL;
		if (!strcmp(type, source_types[i]) && !present)
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: type \"%s\" needs a \"%s\" object", w->name,
					  w->path, type, type);
		if (strcmp(type, source_types[i]) && present)
			return fail_at(w, source_types[i], "not allowed with type \"%s\"", type);
	}
	return TW_OK;
}

static int source_shows(const struct field *f, const void *base)
{
	return f->type != F_OBJECT || !strcmp(f->key, source_types[((const struct tw_config_source *)base)->type]);
}

/* A metric filter's value is a number or a "$.field" selector; a default value is for a metric
 * without dimensions (as in CloudWatch Logs). */
static enum tw_rc filter_check(struct walk *w, const json_t *obj, void *base)
{
	const struct tw_config_metric_filter *mf = base;
	char *end;
	double d;

	(void)obj;
	if (mf->has_default && mf->ndimensions)
		return fail_at(w, "default", "not allowed with \"dimensions\" (a default is for a metric without dimensions)");
	if (!strncmp(mf->value, "$.", 2) && mf->value[2])
		return TW_OK;
	errno = 0;
	d = strtod(mf->value, &end);
	if (end != mf->value && !*end && !errno && d == d && d - d == 0)
		return TW_OK;
	return fail_at(w, "value", "expected a number or a \"$.field\" selector, got \"%s\"", mf->value);
}

/* Keys of a metric alarm that a composite alarm (one with a "rule") must not have. */
static const char *const metric_alarm_keys[] = {
	"metric", "dimensions", "statistic", "period", "evaluation_periods", "datapoints_to_alarm", "threshold",
	"comparison", "band", "treat_missing_data", NULL,
};

/* A metric alarm has a metric, and a threshold (static comparisons) or a band (band comparisons);
 * M <= N. A composite alarm has its rule and none of the metric alarm's keys. */
static enum tw_rc alarm_check(struct walk *w, const json_t *obj, void *base)
{
	struct tw_config_alarm *a = base;
	const char *cmp = tw_config_comparisons[a->comparison];
	int band = a->comparison >= FIRST_BAND_COMPARISON;

	if (a->rule) {
		for (int i = 0; metric_alarm_keys[i]; i++)
			if (json_object_get(obj, metric_alarm_keys[i]))
				return fail_at(w, metric_alarm_keys[i], "not allowed in a composite alarm (it has a \"rule\")");
	} else {
		if (!a->metric)
			return missing_at(w, "metric", NULL, "an alarm without a \"rule\" watches a metric");
		if (!band && !a->has_threshold) {
			char why[128];
			snprintf(why, sizeof why, "comparison %s compares with it", cmp);
			return missing_at(w, "threshold", NULL, why);
		}
		if (band && a->has_threshold)
			return fail_at(w, "threshold", "not used by comparison %s (it compares with the band)", cmp);
		if (!band && json_object_get(obj, "band"))
			return fail_at(w, "band", "not used by comparison %s (it compares with the threshold)", cmp);
	}
	if (!a->datapoints_to_alarm)
		a->datapoints_to_alarm = a->evaluation_periods;
	else if (a->datapoints_to_alarm > a->evaluation_periods)
		return fail_at(w, "datapoints_to_alarm", "%llu is more than evaluation_periods (%llu)",
			       (unsigned long long)a->datapoints_to_alarm, (unsigned long long)a->evaluation_periods);
	return TW_OK;
}

/* A composite alarm shows none of the metric alarm's keys; "band" only with a band comparison. */
static int alarm_shows(const struct field *f, const void *base)
{
	const struct tw_config_alarm *a = base;

	if (a->rule) {
		for (int i = 0; metric_alarm_keys[i]; i++)
			if (!strcmp(f->key, metric_alarm_keys[i]))
				return 0;
		return 1;
	}
	return strcmp(f->key, "band") || a->comparison >= FIRST_BAND_COMPARISON;
}

/* SNS topic names: [A-Za-z0-9_-]{1,256}. */
static enum tw_rc topic_check(struct walk *w, const json_t *obj, void *base)
{
	const char *name = ((const struct tw_config_topic *)base)->name;
	size_t n = strlen(name);

	(void)obj;
	if (n <= 256 && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n)
		return TW_OK;
	return fail_at(w, "name", "\"%.64s\" is not 1 to 256 letters, digits, '-' or '_'", name);
}

static enum tw_rc smtp_check(struct walk *w, const json_t *obj, void *base)
{
	const struct tw_config_smtp *sm = base;

	(void)obj;
	if (sm->url && strncmp(sm->url, "smtp://", 7) && strncmp(sm->url, "smtps://", 8))
		return fail_at(w, "url", "expected smtp://HOST[:PORT] or smtps://HOST[:PORT]");
	if (sm->password.from != TW_SECRET_NONE && !sm->user)
		return fail_at(w, "password", "needs \"user\" (the AUTH user)");
	return TW_OK;
}

/* Headers are "Name: value" on one line. The values are not quoted in messages (tokens). */
static enum tw_rc http_check(struct walk *w, const json_t *obj, void *base)
{
	const struct tw_config_http *h = base;

	(void)obj;
	for (size_t i = 0; i < h->nheaders; i++) {
		const char *p = h->headers[i];
		size_t name = strcspn(p, ":\r\n \t");
		if (!name || p[name] != ':' || strpbrk(p, "\r\n")) {
			size_t old = path_push(w, "headers", 0);
			enum tw_rc rc;
			path_push(w, NULL, i);
			rc = fail_at(w, NULL, "expected \"Name: value\" on one line");
			path_pop(w, old);
			return rc;
		}
	}
	return TW_OK;
}

/* SNS's delivery policy rules: the three fixed phases fit in num_retries; min <= max. */
static enum tw_rc retry_check(struct walk *w, const json_t *obj, void *base)
{
	const struct tw_config_retry *r = base;
	uint64_t fixed = r->num_no_delay + r->num_min_delay + r->num_max_delay;

	(void)obj;
	if (fixed > r->num_retries)
		return fail_at(w, "num_retries", "%llu is less than num_no_delay + num_min_delay + num_max_delay (%llu)",
			       (unsigned long long)r->num_retries, (unsigned long long)fixed);
	if (r->min_delay_ms > r->max_delay_ms)
		return fail_at(w, "min_delay", "longer than max_delay");
	return TW_OK;
}

static int proto_uses_smtp(int p)
{
	return p == PROTO_EMAIL || p == PROTO_EMAIL_JSON || p == PROTO_MAILDIR;
}

static int proto_uses_http(int p)
{
	return p == PROTO_HTTP || p == PROTO_HTTPS;
}

/* The protocol's needs: an http(s):// endpoint, smtp.url and smtp.from for mail; members of other
 * protocols are errors. Endpoints are not quoted (webhook URLs may hold tokens). */
static enum tw_rc subscription_check(struct walk *w, const json_t *obj, void *base)
{
	const struct tw_config_subscription *s = base;
	const char *proto = protocols[s->protocol - 1];

	if (s->protocol == PROTO_HTTP && strncmp(s->endpoint, "http://", 7))
		return fail_at(w, "endpoint", "protocol http needs an http:// URL");
	if (s->protocol == PROTO_HTTPS && strncmp(s->endpoint, "https://", 8))
		return fail_at(w, "endpoint", "protocol https needs an https:// URL");
	if (s->protocol != PROTO_EXEC && json_object_get(obj, "argv"))
		return fail_at(w, "argv", "only for protocol exec, not %s", proto);
	if (!proto_uses_smtp(s->protocol) && json_object_get(obj, "smtp"))
		return fail_at(w, "smtp", "not used by protocol %s", proto);
	if (!proto_uses_http(s->protocol) && json_object_get(obj, "http"))
		return fail_at(w, "http", "not used by protocol %s", proto);
	if ((s->protocol == PROTO_EMAIL || s->protocol == PROTO_EMAIL_JSON) && !s->smtp.url)
		return missing_at(w, "smtp", "url", "protocol email sends through an SMTP server");
	if ((s->protocol == PROTO_EMAIL || s->protocol == PROTO_EMAIL_JSON) && !s->smtp.from)
		return missing_at(w, "smtp", "from", "protocol email needs a From address");
	return TW_OK;
}

static int subscription_shows(const struct field *f, const void *base)
{
	int p = ((const struct tw_config_subscription *)base)->protocol;

	if (!strcmp(f->key, "argv"))
		return p == PROTO_EXEC;
	if (!strcmp(f->key, "smtp"))
		return proto_uses_smtp(p);
	if (!strcmp(f->key, "http"))
		return proto_uses_http(p);
	return 1;
}

/* ---- checks across sections ------------------------------------------------------------------- */

static void fmt_duration(int64_t ms, char *out, size_t outsz);

/* A name and where it is, for finding duplicates. */
struct named {
	const char *name; /* borrowed */
	size_t idx;       /* index in its array */
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Finds the first duplicate (in array order) among n names, the string at byte offset name_off of
 * each size-byte element of arr (NULL names are skipped); *dup its index, *first the earlier one.
 * 1 when found, 0 when all differ, -1 out of memory. */
static int find_duplicate(const void *arr, size_t n, size_t size, size_t name_off, size_t *first, size_t *dup)
{
	struct named *v = n ? malloc(n * sizeof *v) : NULL;
	size_t m = 0, i, j;
	int found = 0;

	if (n && !v)
		return -1;
	for (i = 0; i < n; i++) {
		const char *name = *(char *const *)((const char *)arr + i * size + name_off);
		if (name)
			v[m++] = (struct named){ name, i };
	}
	if (m)
		qsort(v, m, sizeof *v, named_cmp);
	/* Each group of equal names is sorted by index: its first two entries are the pair to report;
	 * the group whose second entry comes first in the array wins. */
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && !strcmp(v[j].name, v[i].name); j++)
			;
		if (j - i > 1 && (!found || v[i + 1].idx < *dup)) {
			*first = v[i].idx;
			*dup = v[i + 1].idx;
			found = 1;
		}
	}
	free(v);
	return found;
}

/* TW_OK when the names of arr (see find_duplicate) are unique; else an error at PATH[i].name. */
static enum tw_rc unique_names(struct walk *w, const char *path, const void *arr, size_t n, size_t size,
			       size_t name_off, const char *what)
{
	size_t first = 0, dup = 0;
	int r = find_duplicate(arr, n, size, name_off, &first, &dup);

	if (r < 0)
		return oom(w);
	if (!r)
		return TW_OK;
	return tw_err_set(w->err, TW_EPARSE, "%s: %s[%zu].name: duplicate %s name \"%.64s\" (also %s[%zu])", w->name,
			  path, dup, what, *(char *const *)((const char *)arr + dup * size + name_off), path, first);
}

/* 1 when name is a topic of the notifier (without a notifier section: only "alarms"). */
static int topic_known(const struct tw_config *cfg, const char *name)
{
	if (!cfg->notifier.present)
		return !strcmp(name, "alarms");
	for (size_t i = 0; i < cfg->notifier.ntopics; i++)
		if (!strcmp(cfg->notifier.topics[i].name, name))
			return 1;
	return 0;
}

/* Every topic in names[0..n) is configured; else an error at `path` ("$.alarms[0].ok_actions"),
 * followed by [i] when indexed. */
static enum tw_rc topics_known(struct walk *w, const struct tw_config *cfg, const char *path, int indexed,
			       char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char at[32] = "";
		if (topic_known(cfg, names[i]))
			continue;
		if (indexed)
			snprintf(at, sizeof at, "[%zu]", i);
		return tw_err_set(w->err, TW_EPARSE, "%s: %s%s: unknown topic \"%.64s\" (%s)", w->name, path, at, names[i],
				  cfg->notifier.present ? "not in $.notifier.topics"
							: "without a \"notifier\" section the only topic is \"alarms\"");
	}
	return TW_OK;
}

/* Names unique per section, alarm periods multiples of metrics.period, every topic named by a rule,
 * an alarm, cis_alarms or a subscription configured. In document order. */
static enum tw_rc cross_check(struct walk *w, struct tw_config *cfg)
{
	const struct tw_config_notifier *nf = &cfg->notifier;
	char path[96];
	enum tw_rc rc;
	size_t i;

	if ((rc = unique_names(w, "$.metrics.filters", cfg->metrics.filters, cfg->metrics.nfilters,
			       sizeof *cfg->metrics.filters, offsetof(struct tw_config_metric_filter, name), "metric")))
		return rc;
	if ((rc = unique_names(w, "$.rules", cfg->rules, cfg->nrules, sizeof *cfg->rules,
			       offsetof(struct tw_config_rule, name), "rule")))
		return rc;
	for (i = 0; i < cfg->nrules; i++) {
		snprintf(path, sizeof path, "$.rules[%zu].topic", i);
		if ((rc = topics_known(w, cfg, path, 0, &cfg->rules[i].topic, 1)))
			return rc;
	}
	if ((rc = unique_names(w, "$.alarms", cfg->alarms, cfg->nalarms, sizeof *cfg->alarms,
			       offsetof(struct tw_config_alarm, name), "alarm")))
		return rc;
	for (i = 0; i < cfg->nalarms; i++) {
		const struct tw_config_alarm *a = &cfg->alarms[i];
		if (!a->rule && (a->period_ms <= 0 || a->period_ms % cfg->metrics.period_ms)) {
			char p[32], mp[32];
			fmt_duration(a->period_ms, p, sizeof p);
			fmt_duration(cfg->metrics.period_ms, mp, sizeof mp);
			return tw_err_set(w->err, TW_EPARSE, "%s: $.alarms[%zu].period: %s is not a positive multiple of "
					  "metrics.period (%s)", w->name, i, p, mp);
		}
		snprintf(path, sizeof path, "$.alarms[%zu].alarm_actions", i);
		if ((rc = topics_known(w, cfg, path, 1, a->alarm_actions, a->nalarm_actions)))
			return rc;
		snprintf(path, sizeof path, "$.alarms[%zu].ok_actions", i);
		if ((rc = topics_known(w, cfg, path, 1, a->ok_actions, a->nok_actions)))
			return rc;
		snprintf(path, sizeof path, "$.alarms[%zu].insufficient_data_actions", i);
		if ((rc = topics_known(w, cfg, path, 1, a->insufficient_actions, a->ninsufficient_actions)))
			return rc;
	}
	if (cfg->cis_alarms.enabled &&
	    (rc = topics_known(w, cfg, "$.cis_alarms.actions", 1, cfg->cis_alarms.actions, cfg->cis_alarms.nactions)))
		return rc;
	if ((rc = unique_names(w, "$.notifier.topics", nf->topics, nf->ntopics, sizeof *nf->topics,
			       offsetof(struct tw_config_topic, name), "topic")))
		return rc;
	for (i = 0; i < nf->nsubscriptions; i++) {
		snprintf(path, sizeof path, "$.notifier.subscriptions[%zu].topic", i);
		if ((rc = topics_known(w, cfg, path, 0, &nf->subscriptions[i].topic, 1)))
			return rc;
	}
	if ((rc = unique_names(w, "$.notifier.subscriptions", nf->subscriptions, nf->nsubscriptions,
			       sizeof *nf->subscriptions, offsetof(struct tw_config_subscription, name), "subscription")))
		return rc;
	/* Unnamed subscriptions are "PROTOCOL:ENDPOINT": two with the same pair would share an id. */
	for (i = 0; i < nf->nsubscriptions; i++) {
		const struct tw_config_subscription *s = &nf->subscriptions[i];
		size_t j;
		if (s->name)
			continue;
		for (j = 0; j < i; j++) {
			const struct tw_config_subscription *t = &nf->subscriptions[j];
			if (!t->name && t->protocol == s->protocol && !strcmp(t->endpoint, s->endpoint))
				return tw_err_set(w->err, TW_EPARSE, "%s: $.notifier.subscriptions[%zu]: same protocol and "
						  "endpoint as $.notifier.subscriptions[%zu] (give one a \"name\")",
						  w->name, i, j);
		}
	}
	return TW_OK;
}

/* ---- freeing: the same tables ---------------------------------------------------------------- */

static void free_object(const struct schema *sc, void *base)
{
	for (size_t i = 0; i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		char *at = (char *)base + f->off;
		size_t n = count_of(f, base), j;

		switch (f->type) {
		case F_STRING: case F_JSON:
			free(*(char **)at);
			break;
		case F_SIZE: case F_DURATION: case F_UINT: case F_ENUM: case F_DOUBLE: case F_BOOL:
			break;
		case F_SECRET:
			free(((struct tw_secret *)at)->ref);
			break;
		case F_STRINGS: case F_KV:
			for (j = 0; j < n && *(char ***)at; j++)
				free((*(char ***)at)[j]);
			free(*(char ***)at);
			break;
		case F_OBJECT:
			free_object(f->sub, at);
			break;
		case F_OBJECTS:
			for (j = 0; j < n && *(void **)at; j++)
				free_object(f->sub, (char *)*(void **)at + j * f->sub->size);
			free(*(void **)at);
			break;
		case F_PROPS:
			for (j = 0; j < n && *(struct tw_config_prop **)at; j++) {
				struct tw_config_prop *p = &(*(struct tw_config_prop **)at)[j];
				free(p->key);
				free(p->value);
				free(p->secret.ref);
			}
			free(*(void **)at);
			break;
		}
	}
}

void tw_config_free(struct tw_config *cfg)
{
	if (!cfg)
		return;
	free_object(&top_schema, cfg);
	free(cfg->path);
	free(cfg);
}

/* ---- loading ---------------------------------------------------------------------------------- */

static enum tw_rc parse_doc(const char *text, size_t n, const char *name, unsigned mode, struct tw_config **out,
			    struct tw_err *err)
{
	struct walk w = { .name = name, .path = "$", .plen = 1, .err = err };
	struct tw_config *cfg;
	json_error_t jerr;
	json_t *doc;
	enum tw_rc rc;

	doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return tw_err_set(err, TW_EPARSE, "%s: line %d, column %d: %s", name, jerr.line, jerr.column, jerr.text);
	if (!(cfg = calloc(1, sizeof *cfg)) || !(cfg->path = xstrdup(name))) {
		free(cfg);
		json_decref(doc);
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", name);
	}
	cfg->mode = mode;
	rc = walk_object(&w, &top_schema, doc, cfg);
	if (!rc)
		rc = cross_check(&w, cfg);
	json_decref(doc);
	if (rc) {
		tw_config_free(cfg);
		return rc;
	}
	cfg->nsecrets = w.nsecrets;
	*out = cfg;
	return TW_OK;
}

enum tw_rc tw_config_parse(const char *text, size_t n, const char *name, struct tw_config **out, struct tw_err *err)
{
	return parse_doc(text, n, name, 0, out, err);
}

enum tw_rc tw_config_load(const char *path, struct tw_config **out, struct tw_err *err)
{
	struct stat st;
	char *text = NULL;
	size_t n = 0;
	enum tw_rc rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		rc = tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tw_err_set(err, TW_EIO, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)TW_CONFIG_MAX_FILE) {
		rc = tw_err_set(err, TW_ELIMIT, "%s: larger than %u bytes", path, TW_CONFIG_MAX_FILE);
		goto out;
	}
	if (!(text = malloc((size_t)st.st_size + 1))) {
		rc = tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, text + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = parse_doc(text, n, path, (unsigned)st.st_mode, out, err);
out:
	free(text);
	close(fd);
	return rc;
}

/* ---- secrets --------------------------------------------------------------------------------- */

enum tw_rc tw_secret_load(const struct tw_secret *s, char *buf, size_t cap, size_t *len, struct tw_err *err)
{
	size_t n = 0;

	if (!cap)
		return tw_err_set(err, TW_ELIMIT, "secret buffer of 0 bytes");
	buf[0] = '\0';
	if (s->from == TW_SECRET_ENV) {
		const char *v = getenv(s->ref);
		if (!v)
			return tw_err_set(err, TW_ENOENT, "secret from env %s: the variable is not set", s->ref);
		n = strlen(v);
		if (n >= cap)
			return tw_err_set(err, TW_ELIMIT, "secret from env %s: longer than %zu bytes", s->ref, cap - 1);
		memcpy(buf, v, n + 1);
	} else if (s->from == TW_SECRET_FILE) {
		int fd = open(s->ref, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "secret file %s: %s", s->ref,
					  strerror(errno));
		for (;;) {
			ssize_t r = read(fd, buf + n, cap - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				int e = errno;
				close(fd);
				memset(buf, 0, cap);
				return tw_err_set(err, TW_EIO, "secret file %s: %s", s->ref, strerror(e));
			}
			if (r == 0)
				break;
			n += (size_t)r;
			if (n == cap) {
				close(fd);
				memset(buf, 0, cap);
				return tw_err_set(err, TW_ELIMIT, "secret file %s: longer than %zu bytes", s->ref, cap - 1);
			}
		}
		close(fd);
		if (n && buf[n - 1] == '\n')
			n--;
		if (n && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
	} else {
		return tw_err_set(err, TW_EINVAL, "not a secret");
	}
	if (len)
		*len = n;
	return TW_OK;
}

int tw_secret_available(const struct tw_secret *s)
{
	if (s->from == TW_SECRET_ENV)
		return getenv(s->ref) != NULL;
	if (s->from == TW_SECRET_FILE)
		return access(s->ref, R_OK) == 0;
	return 0;
}

char *tw_secret_describe(const struct tw_secret *s, char *out, size_t outsz)
{
	snprintf(out, outsz, "<from %s %s>", s->from == TW_SECRET_FILE ? "file" : "env", s->ref ? s->ref : "?");
	return out;
}

/* ---- warnings -------------------------------------------------------------------------------- */

/* Calls fn(ctx, secret) for every secret in cfg. */
static void each_secret(const struct tw_config *cfg, void (*fn)(void *ctx, const struct tw_secret *s), void *ctx)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct tw_config_kafka *k = &cfg->sources[i].kafka;
		for (size_t j = 0; j < k->nprops; j++)
			if (k->props[j].secret.from != TW_SECRET_NONE)
				fn(ctx, &k->props[j].secret);
	}
	for (size_t i = 0; i < cfg->notifier.nsubscriptions; i++)
		if (cfg->notifier.subscriptions[i].smtp.password.from != TW_SECRET_NONE)
			fn(ctx, &cfg->notifier.subscriptions[i].smtp.password);
}

/* What secret_warn needs. */
struct warn_ctx {
	void (*warn)(void *ctx, const char *msg); /* the caller's callback */
	void *ctx;                                /* its context */
	size_t n;                                 /* warnings reported */
};

static void secret_warn(void *arg, const struct tw_secret *s)
{
	struct warn_ctx *wc = arg;
	char msg[512];
	struct stat st;

	if (!tw_secret_available(s)) {
		if (s->from == TW_SECRET_ENV)
			snprintf(msg, sizeof msg, "secret from env %s is NOT set", s->ref);
		else
			snprintf(msg, sizeof msg, "secret file %s cannot be read: %s", s->ref, strerror(errno));
		wc->warn(wc->ctx, msg);
		wc->n++;
	}
	if (s->from == TW_SECRET_FILE && !stat(s->ref, &st) && (st.st_mode & S_IROTH)) {
		snprintf(msg, sizeof msg, "secret file %s is readable by every user (mode %04o): chmod o-r %s", s->ref,
			 (unsigned)(st.st_mode & 07777), s->ref);
		wc->warn(wc->ctx, msg);
		wc->n++;
	}
}

size_t tw_config_warnings(const struct tw_config *cfg, void (*warn)(void *ctx, const char *msg), void *ctx)
{
	struct warn_ctx wc = { warn, ctx, 0 };
	char msg[512];

	if (cfg->nsecrets && (cfg->mode & S_IROTH)) {
		snprintf(msg, sizeof msg,
			 "%s is readable by every user (mode %04o) and names %zu secret%s: chmod o-r %s", cfg->path,
			 cfg->mode & 07777, cfg->nsecrets, cfg->nsecrets == 1 ? "" : "s", cfg->path);
		warn(ctx, msg);
		wc.n++;
	}
	each_secret(cfg, secret_warn, &wc);
	return wc.n;
}

/* ---- normalized output ------------------------------------------------------------------------ */

/* "64M" for 64 MiB, "1000" when no binary unit divides. */
static void fmt_size(uint64_t v, char *out, size_t outsz)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && v && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, outsz, "%llu", (unsigned long long)v);
	else
		snprintf(out, outsz, "%llu%c", (unsigned long long)v, units[u]);
}

/* "5m" for 300000, "1500ms"; in the largest unit tw_duration_parse reads back exactly. */
static void fmt_duration(int64_t ms, char *out, size_t outsz)
{
	static const struct { int64_t ms; const char *unit; } units[] = {
		{ 7 * 86400000LL, "w" }, { 86400000LL, "d" }, { 3600000LL, "h" }, { 60000LL, "m" }, { 1000LL, "s" },
	};

	for (size_t i = 0; ms && i < N(units); i++)
		if (ms % units[i].ms == 0) {
			snprintf(out, outsz, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	snprintf(out, outsz, "%lldms", (long long)ms);
}

/* The shortest "%g" text that reads back as exactly d ("2", "0.1", "1e+300"). */
static void fmt_double(double d, char *out, size_t outsz)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, outsz, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			return;
	}
}

/* "<from env X> (set)" or "... (NOT set)". */
static void fmt_secret(const struct tw_secret *sec, char *out, size_t outsz)
{
	size_t dl;

	tw_secret_describe(sec, out, outsz - 16);
	dl = strlen(out);
	snprintf(out + dl, outsz - dl, " (%s)", tw_secret_available(sec) ? "set" : "NOT set");
}

/* A copy of the "key" of "key=value" (owned), NULL when out of memory. */
static char *kv_key(const char *kv)
{
	size_t n = strcspn(kv, "=");
	char *k = malloc(n + 1);

	if (k) {
		memcpy(k, kv, n);
		k[n] = '\0';
	}
	return k;
}

/* 1 when field f of base is in effect (the schema's shows) and so written out. */
static int field_shown(const struct schema *sc, const struct field *f, const void *base)
{
	return !sc->shows || sc->shows(f, base);
}

/* State of one output walk. */
struct emit {
	struct tw_buf *out; /* text output */
	struct walk w;      /* path keeping (w.err gets the first error) */
};

static enum tw_rc text_object(struct emit *e, const struct schema *sc, const void *base);

/* "path = value", or "path = \"value\"" with '"', '\\' and control characters escaped as in JSON. */
static enum tw_rc text_line(struct emit *e, const char *value, int quote)
{
	const char *p = e->w.path + 2; /* without "$." */
	enum tw_rc rc;

	if (!quote)
		return tw_buf_printf(e->out, e->w.err, "%s = %s\n", p, value);
	rc = tw_buf_printf(e->out, e->w.err, "%s = \"", p);
	for (const char *c = value; !rc && *c; c++) {
		size_t run = strcspn(c, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12"
				       "\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f");
		if (run) {
			rc = tw_buf_printf(e->out, e->w.err, "%.*s", (int)run, c);
			c += run - 1;
		} else if (*c == '"' || *c == '\\') {
			rc = tw_buf_printf(e->out, e->w.err, "\\%c", *c);
		} else {
			rc = tw_buf_printf(e->out, e->w.err, "\\u%04x", (unsigned)(unsigned char)*c);
		}
	}
	return rc ? rc : tw_buf_printf(e->out, e->w.err, "\"\n");
}

static enum tw_rc text_field(struct emit *e, const struct field *f, const void *base)
{
	const char *at = (const char *)base + f->off;
	size_t n = count_of(f, base);
	const int *given = given_flag(f, base);
	char v[300];
	enum tw_rc rc = TW_OK;

	switch (f->type) {
	case F_STRING:
		return *(char *const *)at ? text_line(e, *(char *const *)at, 1) : text_line(e, "(none)", 0);
	case F_SIZE:
		fmt_size(*(const uint64_t *)at, v, sizeof v);
		return text_line(e, v, 0);
	case F_DURATION:
		if (!*(const int64_t *)at)
			return text_line(e, f->def ? "0ms" : "(none)", 0);
		fmt_duration(*(const int64_t *)at, v, sizeof v);
		return text_line(e, v, 0);
	case F_UINT:
		snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)at);
		return text_line(e, v, 0);
	case F_ENUM:
		return text_line(e, f->choices[*(const int *)at - ((f->flags & FL_BASE1) ? 1 : 0)], 0);
	case F_STRINGS:
		if (!n)
			return text_line(e, "(none)", 0);
		for (size_t j = 0; !rc && j < n; j++) {
			size_t old = path_push(&e->w, NULL, j);
			rc = text_line(e, (*(char **const *)at)[j], 1);
			path_pop(&e->w, old);
		}
		return rc;
	case F_OBJECT:
		if (given && !*given) {
			rc = text_line(e, "(absent)", 0);
			if (rc || !f->def)
				return rc;
		}
		return text_object(e, f->sub, at);
	case F_OBJECTS:
		if (!n)
			return text_line(e, "(none)", 0);
		for (size_t j = 0; !rc && j < n; j++) {
			size_t old = path_push(&e->w, NULL, j);
			rc = text_object(e, f->sub, (const char *)*(void *const *)at + j * f->sub->size);
			path_pop(&e->w, old);
		}
		return rc;
	case F_PROPS:
		for (size_t j = 0; !rc && j < n; j++) {
			const struct tw_config_prop *p = &(*(struct tw_config_prop *const *)at)[j];
			size_t old = path_push(&e->w, p->key, 0);
			if (p->secret.from != TW_SECRET_NONE) {
				fmt_secret(&p->secret, v, sizeof v);
				rc = text_line(e, v, 0);
			} else {
				rc = text_line(e, p->value, 1);
			}
			path_pop(&e->w, old);
		}
		return rc;
	case F_DOUBLE:
		if (given && !*given)
			return text_line(e, "(none)", 0);
		fmt_double(*(const double *)at, v, sizeof v);
		return text_line(e, v, 0);
	case F_BOOL:
		return text_line(e, *(const int *)at ? "true" : "false", 0);
	case F_JSON:
		return text_line(e, *(char *const *)at ? *(char *const *)at : "(none)", 0);
	case F_KV:
		if (!n)
			return text_line(e, "(none)", 0);
		for (size_t j = 0; !rc && j < n; j++) {
			const char *kv = (*(char **const *)at)[j];
			char *k = kv_key(kv);
			size_t old;
			if (!k)
				return tw_err_set(e->w.err, TW_ENOMEM, "out of memory formatting the configuration");
			old = path_push(&e->w, k, 0);
			rc = text_line(e, kv + strlen(k) + 1, 1);
			path_pop(&e->w, old);
			free(k);
		}
		return rc;
	case F_SECRET: {
		const struct tw_secret *sec = (const struct tw_secret *)at;
		if (sec->from == TW_SECRET_NONE)
			return text_line(e, "(none)", 0);
		fmt_secret(sec, v, sizeof v);
		return text_line(e, v, 0);
	}
	}
	return TW_OK;
}

static enum tw_rc text_object(struct emit *e, const struct schema *sc, const void *base)
{
	enum tw_rc rc = TW_OK;

	for (size_t i = 0; !rc && i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		size_t old;

		if (!field_shown(sc, f, base))
			continue;
		old = path_push(&e->w, f->key, 0);
		rc = text_field(e, f, base);
		path_pop(&e->w, old);
	}
	return rc;
}

static json_t *json_object_of(const struct schema *sc, const void *base);

/* A secret as {"file": P} or {"env": N}. */
static json_t *json_secret(const struct tw_secret *sec)
{
	return json_pack("{s:s}", sec->from == TW_SECRET_FILE ? "file" : "env", sec->ref);
}

static json_t *json_field(const struct field *f, const void *base)
{
	const char *at = (const char *)base + f->off;
	size_t n = count_of(f, base);
	char v[64];
	json_t *a;

	switch (f->type) {
	case F_STRING:
		return *(char *const *)at ? json_string(*(char *const *)at) : NULL;
	case F_SIZE:
		fmt_size(*(const uint64_t *)at, v, sizeof v);
		return json_string(v);
	case F_DURATION:
		if (!*(const int64_t *)at && !f->def)
			return NULL;
		fmt_duration(*(const int64_t *)at, v, sizeof v);
		return json_string(v);
	case F_UINT:
		return json_integer((json_int_t)*(const uint64_t *)at);
	case F_ENUM:
		return json_string(f->choices[*(const int *)at - ((f->flags & FL_BASE1) ? 1 : 0)]);
	case F_STRINGS:
		a = json_array();
		for (size_t j = 0; a && j < n; j++)
			if (json_array_append_new(a, json_string((*(char **const *)at)[j]))) {
				json_decref(a);
				return NULL;
			}
		return a;
	case F_OBJECT:
		return json_object_of(f->sub, at);
	case F_OBJECTS:
		a = json_array();
		for (size_t j = 0; a && j < n; j++)
			if (json_array_append_new(a, json_object_of(f->sub, (const char *)*(void *const *)at + j * f->sub->size))) {
				json_decref(a);
				return NULL;
			}
		return a;
	case F_PROPS:
		a = json_object();
		for (size_t j = 0; a && j < n; j++) {
			const struct tw_config_prop *p = &(*(struct tw_config_prop *const *)at)[j];
			json_t *pv = p->secret.from == TW_SECRET_NONE ? json_string(p->value) : json_secret(&p->secret);
			if (json_object_set_new(a, p->key, pv)) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	case F_DOUBLE: {
		/* Whole numbers as integers ("2", not "2.0"); others with jansson's 17 digits (exact). */
		double d = *(const double *)at;
		if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(long long)d)
			return json_integer((json_int_t)d);
		return json_real(d);
	}
	case F_BOOL:
		return json_boolean(*(const int *)at);
	case F_JSON:
		return json_loads(*(char *const *)at, 0, NULL);
	case F_KV:
		a = json_object();
		for (size_t j = 0; a && j < n; j++) {
			const char *kv = (*(char **const *)at)[j];
			char *k = kv_key(kv);
			if (!k || json_object_set_new(a, k, json_string(kv + strlen(k) + 1))) {
				free(k);
				json_decref(a);
				return NULL;
			}
			free(k);
		}
		return a;
	case F_SECRET:
		return json_secret((const struct tw_secret *)at);
	}
	return NULL;
}

/* Members that may be legitimately absent are left out: unset strings, secrets, optional numbers
 * and durations, empty property and name=value objects, objects not given (notifier, retry) and
 * members not in effect (shows). */
static json_t *json_object_of(const struct schema *sc, const void *base)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		const char *at = (const char *)base + f->off;
		const int *given = given_flag(f, base);
		json_t *v;

		if (!field_shown(sc, f, base) || (given && !*given))
			continue;
		if ((f->type == F_STRING || f->type == F_JSON) && !*(char *const *)at)
			continue;
		if (f->type == F_DURATION && !f->def && !*(const int64_t *)at)
			continue;
		if ((f->type == F_PROPS || f->type == F_KV) && !count_of(f, base))
			continue;
		if (f->type == F_SECRET && ((const struct tw_secret *)at)->from == TW_SECRET_NONE)
			continue;
		v = json_field(f, base);
		if (!v || json_object_set_new(o, f->key, v)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

enum tw_rc tw_config_format(const struct tw_config *cfg, enum tw_config_format fmt, struct tw_buf *out,
			    struct tw_err *err)
{
	if (fmt == TW_CONFIG_FMT_JSON) {
		json_t *o = json_object_of(&top_schema, cfg);
		char *s = NULL;
		enum tw_rc rc;

		/* The fewest digits (15 to 17) with which every number reads back exactly: 0.1, not
		 * 0.10000000000000001. */
		for (int prec = 15; o && !s && prec <= 17; prec++) {
			json_t *back;
			s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(prec));
			back = s && prec < 17 ? json_loads(s, 0, NULL) : NULL;
			if (s && prec < 17 && !json_equal(back, o)) {
				free(s);
				s = NULL;
			}
			json_decref(back);
		}
		json_decref(o);
		if (!s)
			return tw_err_set(err, TW_ENOMEM, "out of memory formatting the configuration");
		rc = tw_buf_printf(out, err, "%s\n", s);
		free(s);
		return rc;
	} else {
		struct emit e = { .out = out, .w = { .name = cfg->path, .path = "$", .plen = 1, .err = err } };
		return text_object(&e, &top_schema, cfg);
	}
}
