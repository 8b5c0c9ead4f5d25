/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_detect_firstseen.c: alerts/firstseen.c: nothing during learning; after it, one
 * finding per kind (API, region, /24, user-agent family, console sign-in address) for a principal
 * with a stable history; the /24 and /48 grouping; assumed-role sessions folded into the role;
 * the caps (1e5 distinct APIs to one principal, 1000 principals over a cap of 100); a restart
 * through save/load does not report again what was seen; the JSON line round trip of a finding. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "alerts/firstseen.h"

#define MIN 60000LL
#define T0 1793761080000LL /* 2026-11-04T02:58:00Z */
#define ALICE "arn:aws:iam::111122223333:user/alice"

struct found {
	struct tw_anomaly a[32]; /* findings */
	int n;                   /* count */
};

static void collect(void *ctx, const struct tw_anomaly *a)
{
	struct found *f = ctx;
	if (f->n < 32)
		f->a[f->n] = *a;
	f->n++;
}

struct ev {
	const char *name, *region, *ip, *ua, *who;
};

static void feed(struct tw_firstseen *fs, int64_t t, struct ev e, struct found *f)
{
	struct tw_err err;
	const char *who = e.who ? e.who : ALICE;
	struct tw_firstseen_obs ob = { t,
				       TW_STR_LIT("111122223333"),
				       { e.region, strlen(e.region) },
				       TW_STR_LIT("iam.amazonaws.com"),
				       { e.name, strlen(e.name) },
				       { who, strlen(who) },
				       { e.ip, strlen(e.ip) },
				       { e.ua, strlen(e.ua) },
				       TW_STR_LIT("ev-1") };
	cr_assert_eq(tw_firstseen_observe(fs, &ob, collect, f, &err), TW_OK, "%s", err.msg);
}

static const struct ev usual = { "ListUsers", "us-east-1", "198.51.100.7", "aws-cli/2.13.5 Python/3.11", NULL };

static struct tw_firstseen *make(void)
{
	struct tw_firstseen_opts o;
	struct tw_firstseen *fs;
	struct tw_err err;
	tw_firstseen_opts_default(&o);
	o.learn_ms = 60 * MIN;
	cr_assert_eq(tw_firstseen_new(&o, &fs, &err), TW_OK);
	return fs;
}

/* 2000 usual events over the first 100 minutes (learning ends at 60): a history with no novelty */
static void history(struct tw_firstseen *fs, struct found *f)
{
	for (int i = 0; i < 2000; i++)
		feed(fs, T0 + i * 3000, usual, f);
}

Test(detect_firstseen, nothing_during_learning)
{
	struct tw_firstseen *fs = make();
	static struct found f;
	struct ev e = usual;

	memset(&f, 0, sizeof f);
	feed(fs, T0, usual, &f);
	e.name = "CreateAccessKey";
	feed(fs, T0 + 30 * MIN, e, &f); /* new, but inside the hour of learning */
	tw_firstseen_advance(fs, T0 + 120 * MIN, 1, collect, &f);
	cr_assert_eq(f.n, 0);
	cr_assert_eq(tw_firstseen_count(fs, TW_STR_LIT(ALICE), TW_FS_API), 2);
	tw_firstseen_free(fs);
}

Test(detect_firstseen, each_kind_after_learning)
{
	struct tw_firstseen *fs = make();
	static struct found f;
	int64_t t = T0 + 200 * MIN;
	struct ev e;

	memset(&f, 0, sizeof f);
	history(fs, &f);
	cr_assert_eq(f.n, 0);
	e = usual, e.name = "CreateAccessKey";
	feed(fs, t, e, &f);
	e = usual, e.region = "ap-south-1";
	feed(fs, t += 30 * MIN, e, &f);
	e = usual, e.ip = "198.51.101.9"; /* another /24 */
	feed(fs, t += 30 * MIN, e, &f);
	e = usual, e.ip = "198.51.100.200"; /* the known /24 */
	feed(fs, t += 30 * MIN, e, &f);
	e = usual, e.ua = "Boto3/1.34.0 md/Botocore#1.34.0";
	feed(fs, t += 30 * MIN, e, &f);
	e = usual, e.ua = "aws-cli/1.0.0"; /* same family */
	feed(fs, t += 30 * MIN, e, &f);
	tw_firstseen_advance(fs, t + 60 * MIN, 0, collect, &f);
	cr_assert_eq(f.n, 4, "findings: %d", f.n);
	cr_assert_str_eq(f.a[0].detector, "first_seen_api");
	cr_assert_str_eq(f.a[0].value, "iam.amazonaws.com:CreateAccessKey");
	cr_assert_str_eq(f.a[0].principal, ALICE);
	cr_assert_str_eq(f.a[0].phase, "event");
	cr_assert_eq(f.a[0].start_ms, T0 + 200 * MIN);
	cr_assert_str_eq(f.a[1].detector, "first_seen_region");
	cr_assert_str_eq(f.a[1].value, "ap-south-1");
	cr_assert_str_eq(f.a[2].detector, "first_seen_ip");
	cr_assert_str_eq(f.a[2].value, "198.51.101.0/24");
	cr_assert_str_eq(f.a[3].detector, "first_seen_user_agent");
	cr_assert_str_eq(f.a[3].value, "Boto3");
	tw_firstseen_free(fs);
}

Test(detect_firstseen, console_login_from_a_new_address)
{
	struct tw_firstseen *fs = make();
	static struct found f;
	struct ev e = usual;
	int logins = 0;

	memset(&f, 0, sizeof f);
	history(fs, &f);
	e.name = "ConsoleLogin";
	e.ip = "198.51.100.8"; /* a range alice calls APIs from: not news */
	feed(fs, T0 + 200 * MIN, e, &f);
	e.ip = "203.0.113.5";
	feed(fs, T0 + 300 * MIN, e, &f);
	feed(fs, T0 + 400 * MIN, e, &f); /* the same again: not new any more */
	tw_firstseen_advance(fs, T0 + 500 * MIN, 1, collect, &f);
	for (int i = 0; i < f.n && i < 32; i++)
		if (!strcmp(f.a[i].detector, "console_login_new_ip")) {
			logins++;
			cr_assert_str_eq(f.a[i].value, "203.0.113.5");
			cr_assert_eq(f.a[i].start_ms, T0 + 300 * MIN);
		}
	cr_assert_eq(logins, 1);
	tw_firstseen_free(fs);
}

Test(detect_firstseen, address_ranges_and_families)
{
	char out[64];

	cr_assert_eq(tw_firstseen_ip_prefix(TW_STR_LIT("10.1.2.3"), out), 0);
	cr_assert_str_eq(out, "10.1.2.0/24");
	cr_assert_eq(tw_firstseen_ip_prefix(TW_STR_LIT("2001:db8:1:2::5"), out), 0);
	cr_assert_str_eq(out, "2001:db8:1::/48");
	cr_assert_eq(tw_firstseen_ip_prefix(TW_STR_LIT("ec2.amazonaws.com"), out), -1);
	cr_assert_eq(tw_firstseen_ip_prefix(TW_STR_LIT(""), out), -1);
	struct tw_str f = tw_anomaly_ua_family(TW_STR_LIT("aws-cli/2.13.5 Python/3.11.4 Linux/6.1"));
	cr_assert_eq(f.n, 7);
	cr_assert_eq(memcmp(f.p, "aws-cli", 7), 0);
	f = tw_anomaly_ua_family(TW_STR_LIT("console.amazonaws.com"));
	cr_assert_eq(f.n, 21);
	f = tw_anomaly_ua_family(TW_STR_LIT("[Boto3/1.28 Python/3.9]"));
	cr_assert_eq(f.n, 5);
	cr_assert_eq(memcmp(f.p, "Boto3", 5), 0);
	f = tw_firstseen_principal_key(TW_STR_LIT("arn:aws:sts::1:assumed-role/deploy/i-0abc"));
	cr_assert_eq(f.n, strlen("arn:aws:sts::1:assumed-role/deploy"));
	f = tw_firstseen_principal_key(TW_STR_LIT("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_12/bob@example.com"));
	cr_assert_eq(f.n, strlen("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_12/bob@example.com"));
}

Test(detect_firstseen, probing_many_apis_is_one_finding)
{
	struct tw_firstseen *fs = make();
	static struct found f;
	char name[64];
	struct ev e = usual;

	memset(&f, 0, sizeof f);
	history(fs, &f);
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof name, "Probe%02d", i);
		e.name = name;
		feed(fs, T0 + 200 * MIN + i * 5000, e, &f); /* 60 new APIs in 5 minutes */
	}
	tw_firstseen_advance(fs, T0 + 300 * MIN, 0, collect, &f);
	cr_assert_eq(f.n, 1);
	cr_assert_eq(f.a[0].nvalues, 60);
	cr_assert_str_eq(f.a[0].values[1], "iam.amazonaws.com:Probe01");
	cr_assert_eq(f.a[0].nevidence, 10);
	tw_firstseen_free(fs);
}

Test(detect_firstseen, caps_bound_the_state)
{
	struct tw_firstseen_opts o;
	struct tw_firstseen *fs;
	struct tw_firstseen_stats st;
	static struct found f;
	struct tw_err err;
	char name[64];
	struct ev e = usual;

	memset(&f, 0, sizeof f);
	tw_firstseen_opts_default(&o);
	o.learn_ms = 0;
	o.max_principals = 100;
	cr_assert_eq(tw_firstseen_new(&o, &fs, &err), TW_OK);
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof name, "Api%d", i);
		e.name = name;
		feed(fs, T0 + i, e, &f);
	}
	cr_assert_eq(tw_firstseen_count(fs, TW_STR_LIT(ALICE), TW_FS_API), 256);
	tw_firstseen_get_stats(fs, &st);
	cr_assert_eq(st.saturated, 100000 - 256);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "arn:aws:iam::1:user/u%d", i);
		e = usual;
		e.who = name;
		feed(fs, T0 + 100000 + i, e, &f);
	}
	tw_firstseen_get_stats(fs, &st);
	cr_assert_eq(st.principals, 100);
	cr_assert_eq(st.evicted, 901); /* alice and the first 900 */
	tw_firstseen_free(fs);
}

Test(detect_firstseen, restart_does_not_report_again)
{
	struct tw_firstseen *a = make(), *b = make();
	static struct found f, g;
	struct tw_buf buf;
	struct tw_err err;
	struct ev e = usual;

	memset(&f, 0, sizeof f);
	memset(&g, 0, sizeof g);
	history(a, &f);
	e.name = "CreateAccessKey";
	feed(a, T0 + 200 * MIN, e, &f);
	tw_firstseen_advance(a, T0 + 220 * MIN, 0, collect, &f);
	cr_assert_eq(f.n, 1);
	tw_buf_init(&buf, 1 << 24);
	cr_assert_eq(tw_firstseen_save(a, &buf, &err), TW_OK);
	cr_assert_eq(tw_firstseen_load(b, buf.p, buf.n, &err), TW_OK, "%s", err.msg);
	feed(b, T0 + 300 * MIN, e, &g);    /* seen before the restart */
	feed(b, T0 + 310 * MIN, usual, &g);
	tw_firstseen_advance(b, T0 + 400 * MIN, 1, collect, &g);
	cr_assert_eq(g.n, 0);
	e.name = "DeleteUser"; /* still learning-free and still tracking novelty after the restart */
	feed(b, T0 + 500 * MIN, e, &g);
	tw_firstseen_advance(b, T0 + 600 * MIN, 1, collect, &g);
	cr_assert_eq(g.n, 1);
	buf.p[20] ^= 1;
	cr_assert_eq(tw_firstseen_load(b, buf.p, buf.n, &err), TW_ECORRUPT);
	tw_buf_free(&buf);
	tw_firstseen_free(a);
	tw_firstseen_free(b);
}

Test(detect_firstseen, an_open_group_survives_a_restart)
{
	struct tw_firstseen *a = make(), *b = make();
	static struct found f;
	struct tw_buf buf;
	struct tw_err err;
	struct ev e = usual;

	memset(&f, 0, sizeof f);
	history(a, &f);
	e.name = "CreateAccessKey";
	feed(a, T0 + 200 * MIN, e, &f);
	tw_buf_init(&buf, 1 << 24);
	cr_assert_eq(tw_firstseen_save(a, &buf, &err), TW_OK);
	cr_assert_eq(tw_firstseen_load(b, buf.p, buf.n, &err), TW_OK, "%s", err.msg);
	tw_firstseen_advance(b, T0 + 220 * MIN, 0, collect, &f);
	cr_assert_eq(f.n, 1);
	cr_assert_str_eq(f.a[0].value, "iam.amazonaws.com:CreateAccessKey");
	tw_buf_free(&buf);
	tw_firstseen_free(a);
	tw_firstseen_free(b);
}

Test(detect_firstseen, poisson_tail)
{
	/* by hand: P(X >= 1 | 0.5) = 1 - e^-0.5 = 0.393469; P(X >= 2 | 1) = 1 - 2/e = 0.264241;
	 * P(X >= 3 | 0.1) = 1 - e^-0.1 (1 + 0.1 + 0.005) = 1.5465e-4 */
	cr_assert_float_eq(tw_firstseen_poisson_tail(1, 0.5), 0.393469340, 1e-8);
	cr_assert_float_eq(tw_firstseen_poisson_tail(2, 1.0), 0.264241118, 1e-8);
	cr_assert_float_eq(tw_firstseen_poisson_tail(3, 0.1), 1.546531e-4, 1e-9);
	cr_assert_float_eq(tw_firstseen_poisson_tail(0, 3.0), 1.0, 0);
}

Test(detect_firstseen, finding_json_round_trip)
{
	static struct tw_anomaly a, b;
	struct tw_buf buf;
	struct tw_err err;

	memset(&a, 0, sizeof a);
	snprintf(a.detector, sizeof a.detector, "api_call_rate");
	snprintf(a.phase, sizeof a.phase, "end");
	a.start_ms = T0;
	a.end_ms = T0 + 15 * MIN;
	snprintf(a.account, sizeof a.account, "111122223333");
	snprintf(a.region, sizeof a.region, "eu-west-1");
	snprintf(a.event_source, sizeof a.event_source, "s3.amazonaws.com");
	snprintf(a.event_name, sizeof a.event_name, "GetObject");
	snprintf(a.principal, sizeof a.principal, "arn:aws:iam::1:user/\"quoted\"\\ \xc3\xa9t\xc3\xa9");
	snprintf(a.value, sizeof a.value, "line\nbreak");
	a.nvalues = 7;
	snprintf(a.values[0], sizeof a.values[0], "v0");
	snprintf(a.values[4], sizeof a.values[4], "v4");
	a.baseline = 0.1 + 0.2;
	a.observed = 41.3;
	a.observed_count = 620;
	a.score = 1e-300;
	a.top[0][1].n = 1;
	snprintf(a.top[0][1].c[0].key, sizeof a.top[0][1].c[0].key, "Boto3");
	a.top[0][1].c[0].n = 3;
	a.top[1][0].n = 5;
	for (int i = 0; i < 5; i++) {
		snprintf(a.top[1][0].c[i].key, sizeof a.top[1][0].c[i].key, "p%d", i);
		a.top[1][0].c[i].n = (uint64_t)(100 - i);
	}
	a.nevidence = 10;
	for (int i = 0; i < 10; i++)
		snprintf(a.evidence[i], sizeof a.evidence[i], "id-%d", i);
	snprintf(a.summary, sizeof a.summary, "a sentence with \t a tab");
	tw_anomaly_set_id(&a);
	tw_buf_init(&buf, 1 << 20);
	cr_assert_eq(tw_anomaly_write_json(&a, &buf, &err), TW_OK);
	cr_assert_eq(buf.p[buf.n - 1], '\n');
	cr_assert_eq(memchr(buf.p, '\n', buf.n), buf.p + buf.n - 1); /* one line */
	cr_assert_eq(tw_anomaly_read_line(buf.p, buf.n, &b, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
	cr_assert_neq(tw_anomaly_read_line("{\"start_ms\":\"x\"}", 16, &b, &err), TW_OK);
	cr_assert_neq(tw_anomaly_read_line("{\"detector\":", 12, &b, &err), TW_OK);
	tw_buf_free(&buf);
}
