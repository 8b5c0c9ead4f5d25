/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/route.h: between alarm transitions and the notifier, with Alertmanager's semantics:
 * grouping by labels, group_wait / group_interval / repeat_interval, dedup of transitions, and
 * silences (matchers on labels, start, end, creator, comment). Time-driven by the caller: no
 * thread, no sleep, no clock; tw_route_tick(now) says what to publish now. Never publishes itself. */
#ifndef TW_ALERTS_ROUTE_H
#define TW_ALERTS_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/alarm.h"
#include "core/err.h"

/* Router settings (all borrowed by tw_route_open, which copies them). */
struct tw_route_config {
	const char *dir;               /* state directory (shared with the alarm set): route.json,
					* silences.json, history.jsonl */
	const char *const *group_by;   /* label names grouping alerts into one notification; a single
					* "..." groups by all labels; none: one group per topic */
	size_t ngroup_by;              /* entries in group_by */
	int64_t group_wait_ms;         /* wait after a group's first alert before its first notification */
	int64_t group_interval_ms;     /* wait after a notification before notifying the group's changes */
	int64_t repeat_interval_ms;    /* re-notify a group with a standing ALARM after this; 0: never */
	int manual_commit;             /* 1: tw_route_tick does not persist what it hands out; the
					* caller calls tw_route_commit once it has published it (a
					* crash in between notifies again instead of never) */
};

/* One alarm inside a notification. Strings owned by the router. */
struct tw_route_alert {
	const char *alarm;             /* AlarmName */
	enum tw_alarm_state old_state; /* state before the transition */
	enum tw_alarm_state state;     /* state it transitioned to (ALARM: firing) */
	int64_t time_ms;               /* time of the transition */
	const char *reason;            /* StateReason */
	const char *reason_data;       /* StateReasonData JSON, may be "" */
	struct tw_alarm_strs labels;   /* "key=value" labels */
};

/* What to publish: one message for one topic about one group. */
struct tw_route_notification {
	const char *topic;                  /* SNS-like topic name (from the alarm's actions) */
	const char *group_key;              /* "topic{label=\"value\",...}" */
	struct tw_alarm_strs group_labels;  /* the group_by labels with their values */
	const struct tw_route_alert *alerts; /* the group's alerts (silenced ones left out) */
	size_t nalerts;                     /* how many */
	int repeat;                         /* 1: re-notification of a standing ALARM (nothing changed) */
	int64_t time_ms;                    /* the tick's now */
};

struct tw_route;

/* Opens the router and restores its groups, notification times and dedup memory from
 * <dir>/route.json (a missing file is an empty router). */
enum tw_rc tw_route_open(const struct tw_route_config *cfg, struct tw_route **out, struct tw_err *err);
void tw_route_close(struct tw_route *r);

/* Hands a transition to the router (borrowed). A transition already seen (same alarm, time and new
 * state) is ignored: *accepted (may be NULL) is 0 then. Transitions without actions route nowhere.
 * The router's state is persisted before returning. */
enum tw_rc tw_route_push(struct tw_route *r, const struct tw_alarm_transition *tr, int64_t now_ms, int *accepted,
			 struct tw_err *err);

/* The notifications due at now_ms (*out borrowed until the next tick or close). Silenced alerts are
 * left out and recorded in the history as Action/suppressed; published ones as Action/published.
 * The router's state is persisted before returning (with manual_commit: by tw_route_commit): publish
 * what it returns (to a durable outbox). */
enum tw_rc tw_route_tick(struct tw_route *r, int64_t now_ms, const struct tw_route_notification **out, size_t *n,
			 struct tw_err *err);

/* With manual_commit: persists what the last tick handed out as notified. TW_EIO. */
enum tw_rc tw_route_commit(struct tw_route *r, struct tw_err *err);

/* The earliest time at which tw_route_tick may have something to do (INT64_MAX: nothing pending). */
int64_t tw_route_next_ms(const struct tw_route *r);

/* ---- silences (<dir>/silences.json) ----------------------------------------------------------- */

#define TW_SILENCE_MAX_MATCHERS 16

/* A silence as stored. */
struct tw_silence {
	char id[24];        /* 16 hex digits */
	char **matchers;    /* "label=value", "label!=value", "label=~regex", "label!~regex" */
	size_t nmatchers;   /* how many (all must match) */
	int64_t starts_ms;  /* active from */
	int64_t ends_ms;    /* until (exclusive); expiring sets it to now */
	char *creator;      /* who */
	char *comment;      /* why */
	int64_t created_ms; /* when it was added */
};

/* Checks one matcher ("alarm=~db-.*"): TW_EPARSE naming the problem (bad operator, bad regex with
 * pcre2's message and offset). */
enum tw_rc tw_silence_matcher_check(const char *m, struct tw_err *err);
/* Adds a silence; id_out (24 bytes) gets its id. */
enum tw_rc tw_silence_add(const char *dir, const char *const *matchers, size_t nmatchers, int64_t starts_ms,
			  int64_t ends_ms, const char *creator, const char *comment, int64_t now_ms, char *id_out,
			  struct tw_err *err);
/* Every stored silence (expired ones included), sorted by start; free with tw_silence_list_free. */
enum tw_rc tw_silence_list(const char *dir, struct tw_silence **out, size_t *n, struct tw_err *err);
void tw_silence_list_free(struct tw_silence *v, size_t n);
/* Ends silence id at now (kept in the list as expired). TW_ENOENT when unknown. */
enum tw_rc tw_silence_expire(const char *dir, const char *id, int64_t now_ms, struct tw_err *err);
/* Removes silences that ended before now - keep_ms. *removed (may be NULL) counts them. */
enum tw_rc tw_silence_gc(const char *dir, int64_t now_ms, int64_t keep_ms, size_t *removed, struct tw_err *err);
/* 1 when silence s is active at now and all its matchers match labels. */
int tw_silence_matches(const struct tw_silence *s, struct tw_alarm_strs labels, int64_t now_ms);

#endif
