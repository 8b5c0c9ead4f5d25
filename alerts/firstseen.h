/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/firstseen.h: first-seen behaviour: a principal's first use of an API
 * (first_seen_api, "eventSource:eventName"), of a region (first_seen_region), of a source address
 * range (first_seen_ip: the /24 of an IPv4 address, the /48 of an IPv6 one), of a user-agent family
 * (first_seen_user_agent, see tw_anomaly_ua_family), and a console sign-in from an address the
 * principal never signed in from (console_login_new_ip, the full address). Event time only: feed
 * events in time order; no I/O (the state is saved to and loaded from a buffer).
 *
 * Principals: the event's principal, except that an assumed-role session
 * (arn:aws:sts::A:assumed-role/ROLE/SESSION) counts as its role (arn:aws:sts::A:assumed-role/ROLE):
 * sessions are named per instance, per job run or per CLI process, so the session would make
 * every run a new principal with all-new behaviour. IAM Identity Center roles (AWSReservedSSO_*)
 * keep the session: it is the person.
 *
 * Learning: global, learn_ms (default 12 h) of event time from the first event the detector ever
 * saw; nothing is reported before. Why global and not per principal: a principal first seen after
 * the learning period (an access key just created for an attacker, root signing in for the first
 * time this year) is exactly what should be reported, and a per-principal learning period would
 * hide its first day; the cost is findings for rare principals whose usual behaviour the learning
 * period did not show, which the grouping below keeps to one finding per kind per burst. 12 h
 * rather than 24 h: a day's working hours show most of the everyday behaviour, and a detector
 * silent for a day after installation is silent when people try it.
 *
 * Grouping: the new values of one principal and kind within group_ms (default 10 min) of the first
 * make one finding (value: the first; values: up to 5; nvalues: all), emitted once the group is
 * over in event time: a key probing 60 APIs is one finding, not 60.
 *
 * Surprise: a principal that keeps discovering new values (a developer trying services, a role
 * whose calls spread over a long tail of APIs) makes new values that are not news. Per principal
 * and kind we keep the events seen (N) and the values seen exactly once (n1); by Good-Turing the
 * chance that the next event shows a new value is about (n1 + 1) / (N + 1). A group is reported
 * only when its count of new values k is improbable given the sum lambda of those chances over
 * the principal's events during the group: P(Poisson(lambda) >= k) < alpha (default 1e-3). The
 * finding says both (baseline: lambda, observed: k, score: -log10 P). So a long-stable principal
 * is reported at its first new API, and a key probing 60 APIs in 10 minutes is reported whatever
 * its history; a principal seen only a few times is not (its history predicts novelty).
 * console_login_new_ip is reported without that test (sign-ins are too rare to learn a novelty
 * rate from) but only when the address is also outside the /24 (/48) ranges the principal was
 * seen calling APIs from: signing in from the office the principal works from is not news, and a
 * principal's first sign-in from elsewhere (root from an unknown network) is.
 *
 * Bounded state: per principal and kind a sorted array of 32-bit fingerprints of the values seen
 * (exact membership up to a fingerprint collision, p <= n / 2^32), at most max_values (default
 * 256) per kind: 1 KB, ~5 KB per principal at worst. When a kind is full it stops learning and
 * stops reporting ("saturated"): a principal with 256 distinct APIs or address ranges is one for
 * which a new one is not news (an admin, a NAT pool), and evicting old values instead would report
 * them again as new. At most max_principals (default 20,000) principals: beyond, the least recently
 * seen is forgotten (if it comes back, it is a new principal). */
#ifndef TW_ALERTS_FIRSTSEEN_H
#define TW_ALERTS_FIRSTSEEN_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/anomaly.h"
#include "core/buf.h"
#include "core/err.h"

/* The kinds, in the order of the detectors. */
enum tw_fs_kind {
	TW_FS_API = 0,      /* first_seen_api */
	TW_FS_REGION = 1,   /* first_seen_region */
	TW_FS_IP = 2,       /* first_seen_ip */
	TW_FS_UA = 3,       /* first_seen_user_agent */
	TW_FS_LOGIN_IP = 4, /* console_login_new_ip */
	TW_FS__COUNT
};

struct tw_firstseen_opts {
	int64_t learn_ms;      /* global learning period (default 12 h) */
	int64_t group_ms;      /* grouping window (default 10 min) */
	size_t max_principals; /* principals kept (default 20,000) */
	unsigned max_values;   /* values per principal and kind (default 256) */
	double alpha;          /* a group is reported when its new values are this unlikely (default 1e-3) */
};

void tw_firstseen_opts_default(struct tw_firstseen_opts *o);

/* One CloudTrail event (all borrowed for the call). */
struct tw_firstseen_obs {
	int64_t t_ms;               /* eventTime */
	struct tw_str account;      /* recipientAccountId */
	struct tw_str region;       /* awsRegion */
	struct tw_str event_source; /* eventSource */
	struct tw_str event_name;   /* eventName */
	struct tw_str principal;    /* identity ARN (or stand-in); n == 0: the event is skipped */
	struct tw_str source_ip;    /* sourceIPAddress (a service name instead of an address is skipped) */
	struct tw_str user_agent;   /* userAgent */
	struct tw_str event_id;     /* eventID (evidence) */
};

typedef void (*tw_firstseen_emit_fn)(void *ctx, const struct tw_anomaly *a);

struct tw_firstseen_stats {
	uint64_t events;     /* events observed */
	uint64_t principals; /* principals held now */
	uint64_t evicted;    /* principals forgotten for the cap */
	uint64_t saturated;  /* new values not learned nor reported because a set was full */
	uint64_t reported;   /* new values reported (in findings) */
	uint64_t findings;   /* findings emitted */
	uint64_t suppressed; /* groups not reported: no more new values than the principal's history predicts */
};

struct tw_firstseen;

enum tw_rc tw_firstseen_new(const struct tw_firstseen_opts *opts, struct tw_firstseen **out, struct tw_err *err);
void tw_firstseen_free(struct tw_firstseen *fs); /* NULL ok */

/* Learns one event (in time order); groups whose window the event's time has passed are emitted.
 * TW_ENOMEM. */
enum tw_rc tw_firstseen_observe(struct tw_firstseen *fs, const struct tw_firstseen_obs *ob, tw_firstseen_emit_fn emit,
				void *ctx, struct tw_err *err);
/* Emits the groups whose window ended at or before closed_until (every open group with flush_all:
 * the input is complete). */
void tw_firstseen_advance(struct tw_firstseen *fs, int64_t closed_until, int flush_all, tw_firstseen_emit_fn emit,
			  void *ctx);

void tw_firstseen_get_stats(const struct tw_firstseen *fs, struct tw_firstseen_stats *st);
/* Values held for the principal (normalised as above) of kind k, or -1 when unknown. */
long tw_firstseen_count(const struct tw_firstseen *fs, struct tw_str principal, enum tw_fs_kind k);
/* P(X >= k) for X ~ Poisson(lambda). */
double tw_firstseen_poisson_tail(unsigned k, double lambda);
/* The detector name of kind k ("first_seen_api"...). */
const char *tw_firstseen_detector(enum tw_fs_kind k);
/* The principal as tracked (see above): *out borrows p. */
struct tw_str tw_firstseen_principal_key(struct tw_str principal);
/* The address range tracked for ip ("a.b.c.0/24", "2001:db8:1::/48") into out (64 bytes);
 * 0, or -1 when ip is not an address. */
int tw_firstseen_ip_prefix(struct tw_str ip, char *out);

/* State: magic "TWFSEEN1", version, global start, principals (least recently seen first) with
 * their sets and open groups (as anomaly JSON lines), CRC-32. Native byte order. */
enum tw_rc tw_firstseen_save(const struct tw_firstseen *fs, struct tw_buf *out, struct tw_err *err);
/* Replaces the state; TW_ECORRUPT, TW_EUNSUP, TW_ENOMEM (fs is then empty). */
enum tw_rc tw_firstseen_load(struct tw_firstseen *fs, const void *p, size_t n, struct tw_err *err);

#endif
