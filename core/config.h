/* SPDX-License-Identifier: Apache-2.0 */
/* core/config.h: the configuration file of `trailwatch run` (one JSON document, read with
 * jansson): the store, the sources, limits, logging, and the alerting sections (metrics, event
 * rules, alarms, CIS alarms, notifier topics and subscriptions). A declarative schema in core/config.c
 * validates it (unknown keys, wrong types and missing keys are errors naming the key path) and
 * fills struct tw_config, defaults included. Secrets (passwords) are never in the config: it
 * names a file or an environment variable, and tw_secret_load reads the value on demand.
 * Knows nothing of Kafka or the store beyond plain values: cli/ turns them into their options. */
#ifndef TW_CORE_CONFIG_H
#define TW_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Largest configuration file read (TW_ELIMIT beyond). */
#define TW_CONFIG_MAX_FILE (1u << 20)
/* Largest secret value tw_secret_load accepts (TW_ELIMIT beyond). */
#define TW_SECRET_MAX 4096

/* Where a secret's value comes from. */
enum tw_secret_from {
	TW_SECRET_NONE = 0, /* not a secret */
	TW_SECRET_FILE = 1, /* the contents of a file (one trailing newline dropped) */
	TW_SECRET_ENV = 2,  /* an environment variable */
};

/* A reference to a secret: never its value. */
struct tw_secret {
	enum tw_secret_from from; /* file or environment */
	char *ref;                /* the file path or the variable name (owned by the config) */
};

/* Reads the secret's value into buf (cap bytes, NUL-terminated; *len without the NUL, may be
 * NULL). The caller wipes buf after use (explicit_bzero). Errors never quote the value:
 * TW_ENOENT (variable not set, file missing), TW_EIO (file unreadable), TW_ELIMIT (longer than
 * cap - 1 bytes; buf is wiped). Thread-safe as far as getenv is. */
enum tw_rc tw_secret_load(const struct tw_secret *s, char *buf, size_t cap, size_t *len, struct tw_err *err);

/* 1 when the value can be loaded now (variable set, file readable), else 0. */
int tw_secret_available(const struct tw_secret *s);

/* "<from env NAME>" or "<from file PATH>" into out (size outsz, truncated). Returns out. */
char *tw_secret_describe(const struct tw_secret *s, char *out, size_t outsz);

/* A librdkafka property: a plain value or a secret. */
struct tw_config_prop {
	char *key;               /* property name ("security.protocol") */
	char *value;             /* its value; NULL when it is a secret */
	struct tw_secret secret; /* from != TW_SECRET_NONE when the value comes from a file or env */
};

/* source.type; the order matches the schema's choices. */
enum tw_config_source_type {
	TW_CONFIG_SRC_KAFKA = 0,  /* consume a Kafka topic */
	TW_CONFIG_SRC_FOLLOW = 1, /* follow a directory (S3 layout) for new files */
	TW_CONFIG_SRC_FILES = 2,  /* read files once */
};

/* log.level; the order matches the schema's choices. */
enum tw_config_log_level {
	TW_CONFIG_LOG_ERROR = 0, /* errors only */
	TW_CONFIG_LOG_WARN = 1,  /* and warnings */
	TW_CONFIG_LOG_INFO = 2,  /* and progress (default) */
	TW_CONFIG_LOG_DEBUG = 3, /* and everything, librdkafka's debug lines included */
};

/* $.store */
struct tw_config_store {
	char *dir;           /* the store directory (required) */
	uint64_t seal_bytes; /* seal_size: seal the WAL past this many bytes (default 64M) */
	int64_t seal_age_ms; /* seal_age: ... or when its oldest batch is this old (default 5m) */
	int64_t retain_ms;   /* retain: drop segments older than this; 0 = keep forever (default) */
};

/* $.sources[i].kafka */
struct tw_config_kafka {
	char *brokers;                /* bootstrap servers "host:port,..." (required) */
	char *group;                  /* consumer group id (required) */
	char *client_id;              /* client.id (default "trailwatch") */
	char **topics;                /* topics to subscribe to (required, at least one) */
	size_t ntopics;               /* entries in topics */
	struct tw_config_prop *props; /* properties: passed through to librdkafka */
	size_t nprops;                /* entries in props */
	char *dead_letter_topic;      /* undecodable messages go here; NULL = none */
	uint64_t batch_max_events;    /* a batch closes at this many events (default 4096) */
	uint64_t batch_max_bytes;     /* ... or this many payload bytes (default 16M) */
	int64_t batch_max_wait_ms;    /* ... or this long after its first message (default 500ms) */
};

/* $.sources[i].follow */
struct tw_config_follow {
	char *path;        /* directory to watch (required) */
	int64_t rescan_ms; /* rescan interval (default 1s) */
};

/* $.sources[i].files */
struct tw_config_files {
	char **paths;  /* files or directories, read once (required, at least one) */
	size_t npaths; /* entries in paths */
};

/* $.sources[i]: exactly the member named by type is filled in. */
struct tw_config_source {
	int type;                       /* enum tw_config_source_type */
	struct tw_config_kafka kafka;   /* type kafka */
	struct tw_config_follow follow; /* type follow */
	struct tw_config_files files;   /* type files */
};

/* $.limits */
struct tw_config_limits {
	uint64_t max_record;   /* largest record (default 8M) */
	uint64_t max_inflated; /* largest decompressed size per file or message (default 16G) */
	uint64_t threads;      /* decode threads; 0 = one per core (default) */
};

/* $.log */
struct tw_config_log {
	char *file; /* log file; NULL = stderr */
	int level;  /* enum tw_config_log_level (default info) */
};

/* $.metrics.filters[i]: a CloudWatch Logs metric filter. */
struct tw_config_metric_filter {
	char *name;          /* metric name (required; unique among metrics) */
	char *pattern;       /* CloudWatch Logs filter pattern, verbatim (required; "" matches all) */
	char *value;         /* metric value: "1" (default), another number, or "$.field" */
	int has_default;     /* 1 when "default" was given */
	double default_value; /* value of a period without a match (metrics without dimensions) */
	char **dimensions;   /* up to 3 "$.field" selectors ($.eventName, $.userIdentity.arn) */
	size_t ndimensions;  /* entries in dimensions */
};

/* $.metrics */
struct tw_config_metrics {
	int64_t period_ms;   /* period: aggregation period (default 1m) */
	int64_t lateness_ms; /* lateness: how long a period stays open for late events (default 5m) */
	uint64_t max_values; /* max_values: distinct dimension tuples per metric, the rest is "other" (1000) */
	int cis;             /* cis: compute the 15 CIS metric filters (default true) */
	struct tw_config_metric_filter *filters; /* filters: user metric filters */
	size_t nfilters;     /* entries in filters */
};

/* $.rules[i]: an event rule: every matching record is published at once to a topic. */
struct tw_config_rule {
	char *name;     /* rule name (required, unique) */
	char *pattern;  /* CloudWatch Logs filter pattern (required) */
	char *topic;    /* notifier topic (required, must be configured) */
	char *severity; /* message attribute "severity" (default "high") */
};

/* Comparison operators and TreatMissingData values, spelled as CloudWatch does, in the order of the
 * indices stored in struct tw_config_alarm (NULL-terminated). */
extern const char *const tw_config_comparisons[];
extern const char *const tw_config_missing[];

/* $.alarms[i]: a metric alarm (metric set) or a composite alarm (rule set). */
struct tw_config_alarm {
	char *name;          /* AlarmName (required, unique) */
	char *description;   /* AlarmDescription, may be NULL */
	char *metric;        /* metric name (a built-in series, a CIS metric, a filter or "anomalies") */
	char **dimensions;   /* "name=value" from the object {"account": "123..."}; only those tuples count */
	size_t ndimensions;  /* entries in dimensions */
	char *statistic;     /* Sum (default), Average, Minimum, Maximum, SampleCount */
	int64_t period_ms;   /* period (default 5m), a multiple of metrics.period */
	uint64_t evaluation_periods;  /* N (default 1) */
	uint64_t datapoints_to_alarm; /* M (absent or 0 in the file: N), <= N */
	int has_threshold;   /* 1 when "threshold" was given (required unless a band operator or rule) */
	double threshold;    /* Threshold */
	int comparison;      /* index in tw_config_comparisons (default GreaterThanOrEqualToThreshold) */
	double band;         /* band width k of the band operators (default 2) */
	int missing;         /* index in tw_config_missing (default "missing") */
	char *rule;          /* AlarmRule of a composite alarm; NULL for a metric alarm */
	char **alarm_actions; size_t nalarm_actions; /* topics on -> ALARM */
	char **ok_actions; size_t nok_actions;       /* topics on -> OK */
	char **insufficient_actions; size_t ninsufficient_actions; /* insufficient_data_actions */
	int actions_enabled; /* actions_enabled (default true) */
	char *severity;      /* label "severity" (default "medium") */
	char **labels;       /* "key=value" from the object "labels" */
	size_t nlabels;      /* entries in labels */
};

/* $.cis_alarms: the usual alarm of each CIS control (Sum over 5 minutes >= 1). */
struct tw_config_cis_alarms {
	int enabled;         /* enabled (default false) */
	char **actions;      /* topics notified (default ["alarms"]) */
	size_t nactions;     /* entries in actions */
	char *severity;      /* label severity (default "high") */
};

/* $.notifier.topics[i] */
struct tw_config_topic {
	char *name;         /* [A-Za-z0-9_-]{1,256} (required, unique) */
	char *display_name; /* From display name; may be NULL */
};

/* $.notifier.subscriptions[i].smtp */
struct tw_config_smtp {
	char *url;               /* smtp://host:port or smtps://host:port */
	char *from;              /* From address */
	char **to;               /* recipients; none: the subscription's endpoint */
	size_t nto;              /* entries in to */
	char *user;              /* AUTH user; NULL = no AUTH */
	struct tw_secret password; /* AUTH password: {"file": P} or {"env": N}, never a literal */
	int starttls;            /* 0 required (default), 1 opportunistic, 2 none */
	char *ca_file;           /* CA bundle; NULL = the system's */
	int insecure;            /* 1: skip certificate verification (default false) */
};

/* $.notifier.subscriptions[i].http */
struct tw_config_http {
	char **headers;  /* "Name: value" */
	size_t nheaders; /* entries in headers */
	char *ca_file;   /* CA bundle; NULL = the system's */
	int insecure;    /* 1: skip certificate verification (default false) */
};

/* $.notifier.subscriptions[i].retry: SNS's delivery policy (absent: the protocol's default). */
struct tw_config_retry {
	int present;                 /* 1 when the object was given */
	uint64_t num_retries;        /* numRetries */
	uint64_t num_no_delay;       /* numNoDelayRetries */
	uint64_t num_min_delay;      /* numMinDelayRetries */
	uint64_t num_max_delay;      /* numMaxDelayRetries */
	int64_t min_delay_ms;        /* min_delay */
	int64_t max_delay_ms;        /* max_delay */
	int backoff;                 /* 0 linear, 1 arithmetic, 2 geometric, 3 exponential */
	uint64_t jitter_pct;         /* jitter, percent (0..50) */
	int64_t max_age_ms;          /* max_age; 0 = no limit */
};

/* $.notifier.subscriptions[i] */
struct tw_config_subscription {
	char *name;          /* stable id; NULL = "PROTOCOL:ENDPOINT" */
	char *topic;         /* a configured topic (required) */
	int protocol;        /* 1 email, 2 email-json, 3 http, 4 https, 5 file, 6 maildir, 7 exec */
	char *endpoint;      /* address, URL, path or program (required) */
	char *filter_policy; /* the SNS filter policy object, as compact JSON text; NULL = all */
	char **argv;         /* exec: full argv (argv[0] is run); none = { endpoint } */
	size_t nargv;        /* entries in argv */
	struct tw_config_smtp smtp; /* email, email-json, maildir */
	struct tw_config_http http; /* http, https */
	int64_t connect_timeout_ms; /* connect_timeout (default 10s) */
	int64_t timeout_ms;  /* timeout (default 30s) */
	struct tw_config_retry retry; /* retry */
};

/* $.notifier */
struct tw_config_notifier {
	int present;         /* 0: the section was absent (the default: topic "alarms" to a maildir) */
	char *state_dir;     /* outbox directory; NULL = STORE/notify */
	uint64_t workers;    /* delivery threads (default 2) */
	char **group_by;     /* labels grouping alarms into one message (default ["alarm"]) */
	size_t ngroup_by;    /* entries in group_by */
	int64_t group_wait_ms;      /* group_wait (default 30s) */
	int64_t group_interval_ms;  /* group_interval (default 5m) */
	int64_t repeat_interval_ms; /* repeat_interval (default 4h; 0 = never) */
	struct tw_config_topic *topics; /* topics */
	size_t ntopics;      /* entries in topics */
	struct tw_config_subscription *subscriptions; /* subscriptions */
	size_t nsubscriptions; /* entries in subscriptions */
};

/* A loaded configuration. Everything is owned by it: free with tw_config_free. */
struct tw_config {
	char *path;                      /* the file it was read from (or the name given to parse) */
	unsigned mode;                   /* the file's st_mode (0 when parsed from memory) */
	struct tw_config_store store;    /* $.store */
	struct tw_config_source *sources; /* $.sources */
	size_t nsources;                 /* entries in sources (at least one) */
	struct tw_config_limits limits;  /* $.limits */
	struct tw_config_log log;        /* $.log */
	struct tw_config_metrics metrics; /* $.metrics */
	struct tw_config_rule *rules;    /* $.rules */
	size_t nrules;                   /* entries in rules */
	struct tw_config_alarm *alarms;  /* $.alarms */
	size_t nalarms;                  /* entries in alarms */
	struct tw_config_cis_alarms cis_alarms; /* $.cis_alarms */
	struct tw_config_notifier notifier; /* $.notifier */
	size_t nsecrets;                 /* secrets referenced anywhere in the file */
};

/* Reads and validates the file at path. Errors (message starts with the path):
 * TW_ENOENT / TW_EIO (cannot read: strerror), TW_ELIMIT (larger than TW_CONFIG_MAX_FILE),
 * TW_EPARSE: "FILE: line L, column C: <jansson's reason>" for JSON syntax,
 * "FILE: $.sources[1].kafka.topics: expected an array of strings, got a number",
 * "FILE: unknown key $.store.dri (did you mean dir?)", "FILE: missing required key $.store.dir",
 * "FILE: $.store.seal_size: bad size \"64Q\" ...". Checks across keys name the key too:
 * "FILE: $.alarms[1].period: 90s is not a positive multiple of metrics.period (1m)",
 * "FILE: $.alarms[0].alarm_actions[1]: unknown topic \"x\" (...)": names are unique per section,
 * every topic named is configured (without a notifier section the only topic is "alarms"), a
 * metric alarm has a metric and a threshold (a band comparison: no threshold), a composite alarm
 * (rule) none of the metric alarm's keys. The first error found is reported.
 * *out is written only on success. Secrets are not loaded (only referenced). */
enum tw_rc tw_config_load(const char *path, struct tw_config **out, struct tw_err *err);

/* Same, from text[0..n) (borrowed); name stands for the file in messages; mode is 0. */
enum tw_rc tw_config_parse(const char *text, size_t n, const char *name, struct tw_config **out,
			   struct tw_err *err);

/* Frees cfg and everything in it. NULL is fine. */
void tw_config_free(struct tw_config *cfg);

/* Calls warn(ctx, message) for each problem that does not make the config invalid: the config
 * file is readable by other users (S_IROTH) and references secrets; a secret file is readable
 * by other users; a secret's variable is not set or its file cannot be read. Messages never hold
 * a secret's value. Returns how many warnings were reported. */
size_t tw_config_warnings(const struct tw_config *cfg, void (*warn)(void *ctx, const char *msg), void *ctx);

enum tw_config_format {
	TW_CONFIG_FMT_TEXT = 0, /* one "path = value" line per setting, defaults included */
	TW_CONFIG_FMT_JSON = 1, /* the normalized document (itself a valid config), indented */
};

/* Appends the normalized configuration (every setting, defaults filled in) to out. Sizes and
 * durations are written in their largest exact unit ("64M", "5m"); secrets as "<from env X> (set)"
 * in text and {"env": "X"} in JSON, never their values. TW_ENOMEM, TW_ELIMIT (out's max). */
enum tw_rc tw_config_format(const struct tw_config *cfg, enum tw_config_format fmt, struct tw_buf *out,
			    struct tw_err *err);

/* Parses a size as the configuration writes it: "123", "64K", "8M", "1G", "2T" (binary
 * multiples; also "64KB", "64KiB", "512B", case-insensitive) into bytes in *out. Returns 0, or -1
 * (*out untouched) when s is not such a size or it does not fit in 64 bits; the caller writes the
 * message (it knows the key or option). Also parses the command line's sizes (tw_cli_parse_size). */
int tw_config_size_parse(const char *s, uint64_t *out);

#endif
