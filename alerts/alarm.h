/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/alarm.h: alarms with CloudWatch's semantics: metric alarms (M out of N datapoints,
 * treatment of missing data, static thresholds and anomaly bands), composite alarms (rule
 * expressions), SetAlarmState, the persisted current state and the append-only history.
 * Fed by its caller: datapoints come in, transitions come out. No clock, no threads, no network;
 * the alarm set never publishes anything itself (alerts/route.h turns transitions into messages). */
#ifndef TW_ALERTS_ALARM_H
#define TW_ALERTS_ALARM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* The three states of every alarm. */
enum tw_alarm_state {
	TW_ALARM_OK = 0,           /* within the threshold */
	TW_ALARM_ALARM = 1,        /* outside the threshold */
	TW_ALARM_INSUFFICIENT = 2, /* INSUFFICIENT_DATA: just created, or no data to decide */
};

/* ComparisonOperator. The last three compare with the anomaly band given per datapoint. */
enum tw_alarm_cmp {
	TW_ALARM_GE = 0,          /* GreaterThanOrEqualToThreshold */
	TW_ALARM_GT,              /* GreaterThanThreshold */
	TW_ALARM_LT,              /* LessThanThreshold */
	TW_ALARM_LE,              /* LessThanOrEqualToThreshold */
	TW_ALARM_BAND_OUTSIDE,    /* LessThanLowerOrGreaterThanUpperThreshold */
	TW_ALARM_BAND_GT_UPPER,   /* GreaterThanUpperThreshold */
	TW_ALARM_BAND_LT_LOWER,   /* LessThanLowerThreshold */
};

/* TreatMissingData. */
enum tw_alarm_missing {
	TW_ALARM_MISSING_MISSING = 0, /* "missing" (the default) */
	TW_ALARM_MISSING_NOT_BREACHING, /* "notBreaching" */
	TW_ALARM_MISSING_BREACHING,     /* "breaching" */
	TW_ALARM_MISSING_IGNORE,        /* "ignore" */
};

/* Names as CloudWatch writes them ("ALARM", "INSUFFICIENT_DATA", "GreaterThanThreshold",
 * "notBreaching"), and their parsers (exact match; -1 when unknown). */
const char *tw_alarm_state_str(enum tw_alarm_state s);
int tw_alarm_state_parse(const char *s);
const char *tw_alarm_cmp_str(enum tw_alarm_cmp c);
int tw_alarm_cmp_parse(const char *s);
const char *tw_alarm_missing_str(enum tw_alarm_missing m);
int tw_alarm_missing_parse(const char *s);
/* 1 when s is a statistic we accept: Sum, Average, Minimum, Maximum, SampleCount, or pNN(.N) with
 * 0 <= NN <= 100. */
int tw_alarm_statistic_valid(const char *s);

/* A list of strings (topic names, "key=value" labels). All borrowed in a definition. */
struct tw_alarm_strs {
	const char *const *v; /* the strings */
	size_t n;             /* how many */
};

/* An alarm definition (PutMetricAlarm / PutCompositeAlarm). All pointers are borrowed by
 * tw_alarm_set_define, which copies what it keeps. rule != NULL makes it a composite alarm (then
 * the metric fields are ignored). */
struct tw_alarm_def {
	const char *name;        /* AlarmName: unique in the set, 1..255 bytes */
	const char *description; /* AlarmDescription, may be NULL */
	const char *metric;      /* metric name, opaque here; may be NULL for composites */
	const char *dimensions;  /* dimensions as the caller writes them ("k=v,k=v"), may be NULL */
	const char *statistic;   /* "Sum", "Average", "Minimum", "Maximum", "SampleCount", "p99" */
	unsigned period_s;       /* Period in seconds (> 0) */
	unsigned eval_periods;   /* EvaluationPeriods N (>= 1) */
	unsigned to_alarm;       /* DatapointsToAlarm M (1..N); 0 means N */
	double threshold;        /* Threshold (unused by the band operators) */
	enum tw_alarm_cmp cmp;   /* ComparisonOperator */
	enum tw_alarm_missing missing;        /* TreatMissingData */
	const char *rule;                     /* AlarmRule of a composite alarm, else NULL */
	struct tw_alarm_strs alarm_actions;   /* topics notified on a transition to ALARM */
	struct tw_alarm_strs ok_actions;      /* ... to OK */
	struct tw_alarm_strs insufficient_actions; /* ... to INSUFFICIENT_DATA */
	int actions_enabled;                  /* ActionsEnabled: 0 = transitions carry no actions */
	const char *account;                  /* label "account", may be NULL */
	const char *region;                   /* label "region", may be NULL */
	const char *severity;                 /* label "severity", may be NULL */
	struct tw_alarm_strs labels;          /* user labels "key=value" */
};

/* One period's datapoint handed to tw_alarm_set_eval. */
struct tw_alarm_point {
	int64_t t_ms;   /* start of the period, ms since the epoch */
	int missing;    /* 1: no datapoint for this period */
	double value;   /* the statistic's value (when not missing) */
	double lower;   /* band lower bound (band operators only) */
	double upper;   /* band upper bound (band operators only) */
};

/* A state change. Every pointer is owned by the set and valid until the next call that changes
 * the set (eval, set_state, define, pending_clear, close). */
struct tw_alarm_transition {
	const char *alarm;             /* AlarmName */
	enum tw_alarm_state old_state; /* before */
	enum tw_alarm_state new_state; /* after */
	int64_t time_ms;               /* when (the caller's now) */
	const char *reason;            /* StateReason sentence */
	const char *reason_data;       /* StateReasonData JSON ("" for set-state and composites' none) */
	struct tw_alarm_strs actions;  /* topics to notify (empty when actions are disabled) */
	struct tw_alarm_strs labels;   /* "key=value": alarm, state, account, region, severity, user labels */
	int composite;                 /* 1 for a composite alarm */
};

struct tw_alarm_set;

/* Opens the alarm set kept in directory dir (created when absent, with its parents' existence
 * required): reads every persisted state (state/<name>.json) so that alarms defined afterwards
 * resume where they were. The set holds no fd between calls. */
enum tw_rc tw_alarm_set_open(const char *dir, struct tw_alarm_set **out, struct tw_err *err);
void tw_alarm_set_close(struct tw_alarm_set *set);

/* Defines or redefines an alarm. A new alarm starts in INSUFFICIENT_DATA (no transition, no
 * actions), or in its persisted state when one exists (a standing ALARM does not re-fire). When a
 * persisted or current definition differs (threshold, periods, rule, actions...), the state is
 * kept and a ConfigurationUpdate is appended to the history. Composite rules are parsed here
 * (TW_EPARSE with the column) and a rule closing a cycle is refused (TW_EINVAL). */
enum tw_rc tw_alarm_set_define(struct tw_alarm_set *set, const struct tw_alarm_def *def, int64_t now_ms,
			       struct tw_err *err);

/* Evaluates metric alarm `name` at a period boundary with the datapoints pts[0..n) of its
 * evaluation range, oldest first: the last N periods, optionally preceded by older periods that
 * CloudWatch may look back into (see alarm.c, invariant 3). A state change appends a StateUpdate
 * to the history, replaces the state file, queues the transition, and re-evaluates the composite
 * alarms that depend on it (queuing theirs). TW_ENOENT for an unknown alarm, TW_EINVAL for a
 * composite or n == 0, TW_EIO when the state cannot be persisted (the state is then unchanged). */
enum tw_rc tw_alarm_set_eval(struct tw_alarm_set *set, const char *name, const struct tw_alarm_point *pts,
			     size_t n, int64_t now_ms, struct tw_err *err);

/* SetAlarmState: forces `name` into state with reason (until its next evaluation changes it).
 * Works on alarms known only from their persisted state (the CLI). Queues a transition when the
 * state changes; composites are re-evaluated. */
enum tw_rc tw_alarm_set_set_state(struct tw_alarm_set *set, const char *name, enum tw_alarm_state state,
				  const char *reason, int64_t now_ms, struct tw_err *err);

/* Adopts state changes another process wrote into the state directory since (`trailwatch alarms
 * set-state` while the daemon runs): an alarm whose state file holds a different state with a
 * later since-time takes it, and the transition is queued (its actions fire, as SetAlarmState's
 * do; the history already has it). Cheap enough to call once per daemon loop. */
enum tw_rc tw_alarm_set_sync(struct tw_alarm_set *set, int64_t now_ms, struct tw_err *err);

/* The transitions queued since the last pending_clear, oldest first: how many, and the i-th
 * (borrowed, see above). */
size_t tw_alarm_set_npending(const struct tw_alarm_set *set);
const struct tw_alarm_transition *tw_alarm_set_pending(const struct tw_alarm_set *set, size_t i);
void tw_alarm_set_pending_clear(struct tw_alarm_set *set);

/* Current state of every known alarm (defined or persisted), sorted by name. */
struct tw_alarm_info {
	const char *name;          /* borrowed from the set */
	enum tw_alarm_state state; /* current state */
	int64_t since_ms;          /* time of the last state change (0: never changed) */
	const char *reason;        /* last StateReason ("" when none) */
	const char *reason_data;   /* last StateReasonData ("" when none) */
	int composite;             /* 1 for a composite alarm */
	int defined;               /* 1 when defined in this process, 0 when only persisted */
};
/* Fills *out (malloc'd array; free() it, strings borrowed until the set changes) and *n. */
enum tw_rc tw_alarm_set_list(const struct tw_alarm_set *set, struct tw_alarm_info **out, size_t *n,
			     struct tw_err *err);

/* ---- composite rules ------------------------------------------------------------------------- */

struct tw_alarm_rule;
/* Parses an AlarmRule: ALARM(name), OK(name), INSUFFICIENT_DATA(name) (name bare or in double
 * quotes), TRUE, FALSE, NOT, AND, OR, parentheses; precedence NOT > AND > OR. TW_EPARSE with
 * "column C: ..." (1-based). At most 10240 bytes and 100 levels. */
enum tw_rc tw_alarm_rule_parse(const char *text, struct tw_alarm_rule **out, struct tw_err *err);
/* Evaluates with a lookup of child states (state_of returns an enum tw_alarm_state; the set answers
 * INSUFFICIENT_DATA for a child it does not know). Returns 1 (TRUE) or 0 (FALSE). */
int tw_alarm_rule_eval(const struct tw_alarm_rule *r, int (*state_of)(void *ctx, const char *name), void *ctx);
/* The names the rule refers to, in order of appearance (borrowed from r, with repeats). */
size_t tw_alarm_rule_names(const struct tw_alarm_rule *r, const char *const **out);
void tw_alarm_rule_free(struct tw_alarm_rule *r);

/* ---- evaluation core, for tests and tools ----------------------------------------------------- */

/* The decision of CloudWatch's table for one evaluation: the new state given the current one.
 * *used_breaching / *used_present / *filled (may be NULL) tell how it decided. */
enum tw_alarm_state tw_alarm_decide(const struct tw_alarm_def *def, const struct tw_alarm_point *pts, size_t n,
				    enum tw_alarm_state current, unsigned *used_breaching, unsigned *used_present,
				    unsigned *filled);
/* 1 when the (present) datapoint breaches under def's operator. */
int tw_alarm_breaches(const struct tw_alarm_def *def, const struct tw_alarm_point *pt);

/* ---- history and files ------------------------------------------------------------------------ */

/* A history record (one JSON line of <dir>/history.jsonl). */
struct tw_alarm_hist {
	int64_t time_ms;         /* when */
	const char *alarm;       /* AlarmName */
	const char *type;        /* "StateUpdate", "ConfigurationUpdate" or "Action" */
	const char *old_state;   /* may be NULL */
	const char *new_state;   /* may be NULL */
	const char *reason;      /* HistorySummary / reason, may be NULL */
	const char *reason_data; /* JSON text or NULL (embedded as JSON when valid, else as a string) */
	const char *extra;       /* NULL, or more members as JSON text without braces ("\"topic\":\"x\"") */
};
/* Appends one line with O_APPEND and fdatasync. A previous torn last line (no newline at the end of
 * the file) is terminated first so that this record stays readable. */
enum tw_rc tw_alarm_history_append(const char *dir, const struct tw_alarm_hist *h, struct tw_err *err);
/* Writes path atomically (created 0600): path.tmp, fsync, rename, fsync of the directory. */
enum tw_rc tw_alarm_write_atomic(const char *path, const char *p, size_t n, struct tw_err *err);
/* "2021-11-26T10:05:00.000+0000", CloudWatch's timestamp in StateReasonData; out >= 32 bytes. */
void tw_alarm_fmt_cwtime(int64_t ms, char *out);
/* A double as CloudWatch prints it: shortest round-trip, always with a '.' ("5.0", "0.25"). */
void tw_alarm_fmt_double(double v, char *out, size_t outsz);

#endif
