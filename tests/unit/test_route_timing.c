/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_route_timing.c: the router with a fake clock: group_wait, group_interval,
 * repeat_interval (also across a restart), grouping by labels, dedup of a replayed transition,
 * silences (equality, regex, negation, expiry) and suppressed notifications in the history.
 * Expected times follow Alertmanager's documented timers, worked out by hand below. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/route.h"
#include "tests/helpers/helpers.h"

#define S 1000LL
#define T0 1795255200000LL

static const char *topics[] = { "ops" };

static struct tw_alarm_transition tr(const char *alarm, enum tw_alarm_state from, enum tw_alarm_state to, int64_t t,
				     const char **labels, size_t nlabels)
{
	struct tw_alarm_transition x = { 0 };
	x.alarm = alarm;
	x.old_state = from;
	x.new_state = to;
	x.time_ms = t;
	x.reason = "because";
	x.reason_data = "{}";
	x.actions = (struct tw_alarm_strs){ topics, 1 };
	x.labels = (struct tw_alarm_strs){ labels, nlabels };
	return x;
}

static struct tw_route *open_router(const char *dir, struct tw_route_config *cfg)
{
	struct tw_route *r;
	struct tw_err err;
	cfg->dir = dir;
	cr_assert_eq(tw_route_open(cfg, &r, &err), TW_OK, "%s", err.msg);
	return r;
}

static size_t tick(struct tw_route *r, int64_t now, const struct tw_route_notification **out)
{
	size_t n;
	struct tw_err err;
	cr_assert_eq(tw_route_tick(r, now, out, &n, &err), TW_OK, "%s", err.msg);
	return n;
}

Test(route_timing, group_wait_interval_and_repeat)
{
	char *dir = tw_test_tmpdir();
	struct tw_route_config cfg = { .group_wait_ms = 30 * S, .group_interval_ms = 300 * S, .repeat_interval_ms = 3600 * S };
	struct tw_route *r = open_router(dir, &cfg);
	const char *la[] = { "alarm=a", "severity=high" }, *lb[] = { "alarm=b", "severity=high" };
	struct tw_alarm_transition ta = tr("a", TW_ALARM_OK, TW_ALARM_ALARM, T0, la, 2);
	struct tw_alarm_transition tb = tr("b", TW_ALARM_OK, TW_ALARM_ALARM, T0 + 10 * S, lb, 2);
	const struct tw_route_notification *out;
	struct tw_err err;
	int acc;

	cr_assert_eq(tw_route_push(r, &ta, T0, &acc, &err), TW_OK);
	cr_assert_eq(acc, 1);
	cr_assert_eq(tw_route_next_ms(r), T0 + 30 * S);
	cr_assert_eq(tick(r, T0 + 29 * S, &out), 0, "group_wait not over");
	cr_assert_eq(tw_route_push(r, &tb, T0 + 10 * S, NULL, &err), TW_OK);
	/* group_wait is counted from the group's first alert: both go out together at T0+30s. */
	cr_assert_eq(tick(r, T0 + 30 * S, &out), 1);
	cr_assert_str_eq(out[0].topic, "ops");
	cr_assert_eq(out[0].nalerts, 2);
	cr_assert_eq(out[0].repeat, 0);
	cr_assert_eq(tick(r, T0 + 31 * S, &out), 0, "nothing changed");
	/* b resolves at T0+60s: notified no sooner than last + group_interval = T0+330s. */
	tb = tr("b", TW_ALARM_ALARM, TW_ALARM_OK, T0 + 60 * S, lb, 2);
	cr_assert_eq(tw_route_push(r, &tb, T0 + 60 * S, NULL, &err), TW_OK);
	cr_assert_eq(tick(r, T0 + 329 * S, &out), 0);
	cr_assert_eq(tick(r, T0 + 330 * S, &out), 1);
	cr_assert_eq(out[0].nalerts, 2, "the change carries the whole group");
	cr_assert_eq(out[0].repeat, 0);
	/* Then a is still firing: repeat at T0+330s+3600s, with a alone (b resolved and left). */
	cr_assert_eq(tw_route_next_ms(r), T0 + 3930 * S);
	cr_assert_eq(tick(r, T0 + 3929 * S, &out), 0);
	cr_assert_eq(tick(r, T0 + 3930 * S, &out), 1);
	cr_assert_eq(out[0].repeat, 1);
	cr_assert_eq(out[0].nalerts, 1);
	cr_assert_str_eq(out[0].alerts[0].alarm, "a");
	tw_route_close(r);

	/* Restart: the next repeat stays at T0+3930s+3600s, not sooner. */
	r = open_router(dir, &cfg);
	cr_assert_eq(tick(r, T0 + 3931 * S, &out), 0);
	cr_assert_eq(tick(r, T0 + 7529 * S, &out), 0);
	cr_assert_eq(tick(r, T0 + 7530 * S, &out), 1);
	cr_assert_eq(out[0].repeat, 1);
	/* a resolves: notified at last + group_interval, then the group is gone. */
	ta = tr("a", TW_ALARM_ALARM, TW_ALARM_OK, T0 + 8000 * S, la, 2);
	cr_assert_eq(tw_route_push(r, &ta, T0 + 8000 * S, NULL, &err), TW_OK);
	cr_assert_eq(tick(r, T0 + 8000 * S, &out), 1, "7530 + 300 is already past");
	cr_assert_eq(out[0].alerts[0].state, TW_ALARM_OK);
	cr_assert_eq(tw_route_next_ms(r), INT64_MAX);
	tw_route_close(r);
	tw_test_tmpdir_free(dir);
}

Test(route_timing, dedup_and_grouping)
{
	char *dir = tw_test_tmpdir();
	const char *gb[] = { "severity" };
	struct tw_route_config cfg = { .group_by = gb, .ngroup_by = 1, .group_wait_ms = 0, .group_interval_ms = 60 * S };
	struct tw_route *r = open_router(dir, &cfg);
	const char *la[] = { "alarm=a", "severity=high" }, *lb[] = { "alarm=b", "severity=low" };
	struct tw_alarm_transition ta = tr("a", TW_ALARM_OK, TW_ALARM_ALARM, T0, la, 2);
	struct tw_alarm_transition tb = tr("b", TW_ALARM_OK, TW_ALARM_ALARM, T0, lb, 2);
	const struct tw_route_notification *out;
	struct tw_err err;
	int acc;

	cr_assert_eq(tw_route_push(r, &ta, T0, &acc, &err), TW_OK);
	cr_assert_eq(tw_route_push(r, &tb, T0, &acc, &err), TW_OK);
	cr_assert_eq(tick(r, T0, &out), 2, "two severities, two groups");
	cr_assert(strstr(out[0].group_key, "severity=") && strcmp(out[0].group_key, out[1].group_key));
	cr_assert_eq(out[0].group_labels.n, 1);
	tw_route_close(r);
	/* The same transition replayed after a restart is dropped. */
	r = open_router(dir, &cfg);
	cr_assert_eq(tw_route_push(r, &ta, T0 + S, &acc, &err), TW_OK);
	cr_assert_eq(acc, 0);
	cr_assert_eq(tick(r, T0 + 120 * S, &out), 0);
	/* No actions: routed nowhere. */
	ta = tr("a", TW_ALARM_ALARM, TW_ALARM_OK, T0 + 200 * S, la, 2);
	ta.actions.n = 0;
	cr_assert_eq(tw_route_push(r, &ta, T0 + 200 * S, &acc, &err), TW_OK);
	cr_assert_eq(tick(r, T0 + 400 * S, &out), 0);
	tw_route_close(r);
	tw_test_tmpdir_free(dir);
}

static size_t count_in(const char *dir, const char *needle)
{
	char *p = tw_test_join(dir, "history.jsonl"), *t = tw_test_read_file(p, NULL);
	size_t n = 0;
	for (char *q = t; q && (q = strstr(q, needle)); q++)
		n++;
	free(t);
	free(p);
	return n;
}

Test(route_timing, silences_mute_and_are_recorded)
{
	char *dir = tw_test_tmpdir();
	struct tw_route_config cfg = { .group_wait_ms = 0, .group_interval_ms = 0 };
	struct tw_route *r = open_router(dir, &cfg);
	const char *la[] = { "alarm=db-errors", "severity=high" }, *lb[] = { "alarm=web-5xx", "severity=high" };
	const char *m1[] = { "alarm=~db-.*" };
	char id[24];
	const struct tw_route_notification *out;
	struct tw_alarm_transition t;
	struct tw_err err;
	struct tw_silence *sl;
	size_t ns;

	cr_assert_eq(tw_silence_add(dir, m1, 1, T0, T0 + 7200 * S, "alice", "maintenance", T0, id, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(strlen(id), 16);
	t = tr("db-errors", TW_ALARM_OK, TW_ALARM_ALARM, T0 + S, la, 2);
	cr_assert_eq(tw_route_push(r, &t, T0 + S, NULL, &err), TW_OK);
	t = tr("web-5xx", TW_ALARM_OK, TW_ALARM_ALARM, T0 + S, lb, 2);
	cr_assert_eq(tw_route_push(r, &t, T0 + S, NULL, &err), TW_OK);
	cr_assert_eq(tick(r, T0 + S, &out), 1);
	cr_assert_eq(out[0].nalerts, 1, "db-errors silenced");
	cr_assert_str_eq(out[0].alerts[0].alarm, "web-5xx");
	cr_assert_eq(count_in(dir, "\"result\":\"suppressed\""), 1);
	cr_assert(count_in(dir, id) == 1, "the history names the silence");
	cr_assert_eq(count_in(dir, "\"result\":\"published\""), 1);
	/* Expired: the next change of db-errors goes out. */
	cr_assert_eq(tw_silence_expire(dir, id, T0 + 10 * S, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_silence_expire(dir, "ffffffffffffffff", T0, &err), TW_ENOENT);
	t = tr("db-errors", TW_ALARM_ALARM, TW_ALARM_OK, T0 + 20 * S, la, 2);
	cr_assert_eq(tw_route_push(r, &t, T0 + 20 * S, NULL, &err), TW_OK);
	cr_assert_eq(tick(r, T0 + 20 * S, &out), 1);
	cr_assert_eq(out[0].nalerts, 2);
	cr_assert_eq(tw_silence_list(dir, &sl, &ns, &err), TW_OK);
	cr_assert_eq(ns, 1);
	cr_assert_eq(sl[0].ends_ms, T0 + 10 * S);
	cr_assert_str_eq(sl[0].creator, "alice");
	tw_silence_list_free(sl, ns);
	tw_route_close(r);
	tw_test_tmpdir_free(dir);
}

Test(route_timing, silence_matchers)
{
	const char *labels[] = { "alarm=db-errors", "severity=high", "region=eu-west-1" };
	struct tw_alarm_strs l = { labels, 3 };
	char *m[2];
	struct tw_silence s = { .matchers = m, .nmatchers = 1, .starts_ms = 100, .ends_ms = 200 };
	struct {
		const char *m;
		int want;
	} c[] = {
		{ "alarm=db-errors", 1 }, { "alarm=db", 0 }, { "alarm!=db", 1 }, { "alarm=~db-.*", 1 },
		{ "alarm=~db", 0 /* anchored */ }, { "alarm!~web.*", 1 }, { "team=", 1 /* absent = "" */ },
		{ "team!=", 0 }, { "region=~eu-(west|north)-1", 1 },
	};
	struct tw_err err;

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		m[0] = (char *)c[i].m;
		cr_expect_eq(tw_silence_matches(&s, l, 150), c[i].want, "%s", c[i].m);
	}
	m[0] = (char *)"alarm=db-errors";
	cr_assert_eq(tw_silence_matches(&s, l, 99), 0, "not yet started");
	cr_assert_eq(tw_silence_matches(&s, l, 200), 0, "ended");
	m[1] = (char *)"severity=low";
	s.nmatchers = 2;
	cr_assert_eq(tw_silence_matches(&s, l, 150), 0, "all matchers must match");
	cr_assert_eq(tw_silence_matcher_check("alarm=~(", &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "alarm=~("), "%s", err.msg);
	cr_assert_eq(tw_silence_matcher_check("=x", &err), TW_EPARSE);
	cr_assert_eq(tw_silence_matcher_check("alarm", &err), TW_EPARSE);
}

/* manual_commit: a tick's notifications count as sent only once committed; a crash (close without
 * commit) before that hands them out again after the restart, instead of never. */
Test(route_timing, manual_commit_hands_out_again_after_a_crash_before_commit)
{
	char *dir = tw_test_tmpdir();
	struct tw_route_config cfg = { .group_wait_ms = 0, .group_interval_ms = 300 * S, .manual_commit = 1 };
	struct tw_route *r = open_router(dir, &cfg);
	const char *la[] = { "alarm=a" };
	struct tw_alarm_transition ta = tr("a", TW_ALARM_OK, TW_ALARM_ALARM, T0, la, 1);
	const struct tw_route_notification *out;
	struct tw_err err;

	cr_assert_eq(tw_route_push(r, &ta, T0, NULL, &err), TW_OK);
	cr_assert_eq(tick(r, T0 + S, &out), 1);
	tw_route_close(r); /* the crash: published nowhere, never committed */
	r = open_router(dir, &cfg);
	cr_assert_eq(tick(r, T0 + 2 * S, &out), 1, "handed out again after the restart");
	cr_assert_str_eq(out[0].alerts[0].alarm, "a");
	cr_assert_eq(tw_route_commit(r, &err), TW_OK, "%s", err.msg);
	tw_route_close(r);
	r = open_router(dir, &cfg);
	cr_assert_eq(tick(r, T0 + 3 * S, &out), 0, "committed: not again");
	tw_route_close(r);
	tw_test_tmpdir_free(dir);
}
