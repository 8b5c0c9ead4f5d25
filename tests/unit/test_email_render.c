/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_email_render.c: alerts/email.c, the alarm email (subject, plain text, MIME).
 * The MIME entity is checked by an independent parser (tests/tools/email_check.py: Python's email
 * package, zlib + struct for the PNG). Expected subjects follow CloudWatch's `STATE: "name" in ...`
 * shape; QP and base64 expectations are worked by hand from RFC 2045 and RFC 4648 section 10.
 * TW_EMAIL_DUMP_DIR=DIR makes mime_parses_with_python_checker leave alarm.eml there (for
 * tests/tools/email_screenshot.sh). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/email.h"
#include "tests/helpers/helpers.h"

#define T0 1795248600000LL /* 2026-11-21T08:10:00Z (Python datetime) */
#define PERIOD 300000LL
#define NPTS 24

static int64_t ts[NPTS];
static double vals[NPTS];

static const struct tw_notice_contrib contribs[] = {
	{ "Principal", "arn:aws:iam::123456789012:user/alice", 11 },
	{ "Principal", "arn:aws:sts::123456789012:assumed-role/ci-deploy/gh-4821", 7 },
	{ "API", "s3.amazonaws.com:GetObject", 9 },
	{ "API", "ec2.amazonaws.com:DescribeInstances", 7 },
	{ "API", "s3.amazonaws.com:ListBuckets", 2 },
	{ "Error code", "AccessDenied", 11 },
	{ "Error code", "Client.UnauthorizedOperation", 7 },
	{ "User agent", "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.debian.12", 11 },
};

static const struct tw_notice_record records[] = {
	{ 1795255633000LL, "arn:aws:iam::123456789012:user/alice", "GetObject", "203.0.113.7",
	  "arn:aws:s3:::prod-billing-exports/2026/11/report.csv", "AccessDenied",
	  "3f1c2b9e-6a0d-4c1e-9b7a-2d5e8f4a1c01" },
	{ 1795255615000LL, "arn:aws:sts::123456789012:assumed-role/ci-deploy/gh-4821", "DescribeInstances",
	  "198.51.100.23", NULL, "Client.UnauthorizedOperation", "8b2e4f60-19c3-4d7a-a5e2-6c0f9d3b7e12" },
	{ 1795255450000LL, "arn:aws:iam::123456789012:user/alice", "ListBuckets", "203.0.113.7", NULL,
	  "AccessDenied", "c71d0a5e-2b84-4f39-8e6c-5a9b1d2f3e47" },
};

static const char *const commands[] = {
	"trailwatch who arn:aws:iam::123456789012:user/alice --since 2026-11-21T09:00:00Z",
	"trailwatch what arn:aws:s3:::prod-billing-exports --since 2026-11-21T09:00:00Z",
	"trailwatch query --store /var/lib/trailwatch 'filter errorCode like /AccessDenied|Unauthorized/ "
	"| stats count(*) as calls by userIdentity.arn, eventName | sort calls desc'",
};

#define REASON                                                                                          \
	"Threshold Crossed: 3 out of the last 3 datapoints [7.0 (21/11/26 10:05:00), 6.0 (21/11/26 "     \
	"10:00:00), 5.0 (21/11/26 09:55:00)] were greater than or equal to the threshold (3.0) (minimum " \
	"3 datapoints for OK -> ALARM transition)."

/* The fixed notice behind the golden file. */
static struct tw_alarm_notice sample(void)
{
	static const double v[NPTS] = { 0, 1, 0, 0, 2, 1, 0, 0, 1, 0, NAN, 0, 1, 0, 0, 2, 1, 0, 1, 0, 1, 5, 6, 7 };
	struct tw_alarm_notice nt;

	for (int i = 0; i < NPTS; i++) {
		ts[i] = T0 + i * PERIOD;
		vals[i] = v[i];
	}
	memset(&nt, 0, sizeof nt);
	nt.alarm_name = "UnauthorizedAPICalls";
	nt.description = "CIS 3.1: unauthorized API calls (AccessDenied / UnauthorizedOperation)";
	nt.account_id = "123456789012";
	nt.region = "us-east-1";
	nt.old_state = TW_NOTICE_OK;
	nt.new_state = TW_NOTICE_ALARM;
	nt.change_ms = 1795255842000LL; /* 2026-11-21T10:10:42Z */
	nt.reason = REASON;
	nt.metric_namespace = "CloudTrailMetrics";
	nt.metric_name = "UnauthorizedAttemptCount";
	nt.statistic = "Sum";
	nt.period_s = 300;
	nt.evaluation_periods = 3;
	nt.datapoints_to_alarm = 3;
	nt.comparison = "GreaterThanOrEqualToThreshold";
	nt.has_threshold = 1;
	nt.threshold = 3;
	nt.treat_missing = "missing";
	nt.series.t_ms = ts;
	nt.series.value = vals;
	nt.series.n = NPTS;
	nt.eval_from_ms = T0 + 21 * PERIOD;
	nt.eval_to_ms = T0 + 23 * PERIOD;
	nt.contribs = contribs;
	nt.n_contribs = sizeof contribs / sizeof contribs[0];
	nt.records = records;
	nt.n_records = 3;
	nt.records_total = 18;
	nt.commands = commands;
	nt.n_commands = 3;
	nt.link = "https://trailwatch.example.com/alarms/UnauthorizedAPICalls";
	return nt;
}

struct rendered {
	struct tw_buf subject, text, mime;
};

static void render(const struct tw_alarm_notice *nt, struct rendered *r)
{
	struct tw_err err;
	tw_err_clear(&err);
	tw_buf_init(&r->subject, 4096);
	tw_buf_init(&r->text, 1 << 20);
	tw_buf_init(&r->mime, 4 << 20);
	enum tw_rc rc = tw_email_render(nt, &r->subject, &r->text, &r->mime, &err);
	cr_assert_eq(rc, TW_OK, "render failed: %s", err.msg);
	tw_buf_cstr(&r->subject);
	tw_buf_cstr(&r->text);
	tw_buf_cstr(&r->mime);
}

static void rendered_free(struct rendered *r)
{
	tw_buf_free(&r->subject);
	tw_buf_free(&r->text);
	tw_buf_free(&r->mime);
}

static const char *python(void)
{
	if (access("/usr/bin/python3", X_OK) != 0)
		cr_skip_test("/usr/bin/python3 is not installed");
	return "/usr/bin/python3";
}

/* Runs email_check.py mime on r with extra arguments; returns its stdout (malloc'd). */
static char *check_mime(const struct rendered *r, const char *const *extra)
{
	const char *py = python();
	char *dir = tw_test_tmpdir(), *script = tw_test_join(tw_test_src(), "tests/tools/email_check.py");
	char *eml = tw_test_join(dir, "alarm.eml"), *txt = tw_test_join(dir, "alarm.txt");
	const char *argv[64] = { py, script, "mime", eml, "--text-file", txt };
	size_t n = 6;
	struct tw_test_run run;
	char *out;

	tw_test_write_file(eml, r->mime.p, r->mime.n);
	tw_test_write_file(txt, r->text.p, r->text.n);
	for (; extra && *extra && n < 62; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	tw_test_run(&run, NULL, argv);
	cr_assert_eq(run.status, 0, "email_check.py failed (%d): %s", run.status, run.err);
	out = strdup(run.out);
	tw_test_run_free(&run);
	free(eml);
	free(txt);
	free(script);
	tw_test_tmpdir_free(dir);
	return out;
}

Test(email_render, subject_names_state_alarm_and_where)
{
	struct tw_alarm_notice nt = sample();
	struct rendered r;

	render(&nt, &r);
	cr_assert_str_eq(r.subject.p, "ALARM: \"UnauthorizedAPICalls\" in 123456789012/us-east-1");
	rendered_free(&r);

	nt.new_state = TW_NOTICE_OK;
	render(&nt, &r);
	cr_assert_str_eq(r.subject.p, "OK: \"UnauthorizedAPICalls\" in 123456789012/us-east-1");
	rendered_free(&r);

	nt.new_state = TW_NOTICE_INSUFFICIENT_DATA;
	nt.account_id = NULL;
	render(&nt, &r);
	cr_assert_str_eq(r.subject.p, "INSUFFICIENT_DATA: \"UnauthorizedAPICalls\" in us-east-1");
	rendered_free(&r);

	nt.region = "";
	nt.alarm_name = "evil\r\nBcc: victim@example.com";
	render(&nt, &r);
	cr_assert_str_eq(r.subject.p, "INSUFFICIENT_DATA: \"evil  Bcc: victim@example.com\"");
	rendered_free(&r);
}

Test(email_render, text_part_matches_golden)
{
	struct tw_alarm_notice nt = sample();
	struct rendered r;

	render(&nt, &r);
	tw_test_golden("email_text_alarm.txt", r.text.p, r.text.n);
	rendered_free(&r);
}

Test(email_render, anomaly_text_matches_golden)
{
	static double ex[NPTS], lo[NPTS], hi[NPTS];
	struct tw_alarm_notice nt = sample();
	struct rendered r;

	for (int i = 0; i < NPTS; i++) {
		ex[i] = 1;
		lo[i] = 0;
		hi[i] = 2.5;
	}
	nt.alarm_name = "AccessDeniedAnomaly";
	nt.comparison = "LessThanLowerOrGreaterThanUpperThreshold";
	nt.has_threshold = 0;
	nt.band_k = 2;
	nt.has_anomaly = 1;
	nt.expected = 1;
	nt.observed = 7;
	nt.series.expected = ex;
	nt.series.lower = lo;
	nt.series.upper = hi;
	nt.reason = "Thresholds Crossed: 1 out of the last 1 datapoints [7.0 (21/11/26 10:05:00)] was "
		    "greater than the upper thresholds [2.5] (minimum 1 datapoint for OK -> ALARM transition).";
	nt.contribs = NULL;
	nt.n_contribs = 0;
	nt.records = NULL;
	nt.n_records = 0;
	nt.records_total = 0;
	nt.n_commands = 1;
	nt.link = "javascript:alert(1)";
	render(&nt, &r);
	tw_test_golden("email_text_anomaly.txt", r.text.p, r.text.n);
	if (getenv("TW_EMAIL_DUMP_DIR")) {
		char *p = tw_test_join(getenv("TW_EMAIL_DUMP_DIR"), "anomaly.eml");
		tw_test_write_file(p, r.mime.p, r.mime.n);
		free(p);
	}
	rendered_free(&r);
}

Test(email_render, mime_parses_with_python_checker, .timeout = 30)
{
	struct tw_alarm_notice nt = sample();
	struct rendered r;
	const char *dump = getenv("TW_EMAIL_DUMP_DIR");
	const char *extra[] = {
		"--png-size", "600x220",
		"--contains", REASON,
		"--contains", "3f1c2b9e-6a0d-4c1e-9b7a-2d5e8f4a1c01",
		"--contains", "8b2e4f60-19c3-4d7a-a5e2-6c0f9d3b7e12",
		"--contains", "c71d0a5e-2b84-4f39-8e6c-5a9b1d2f3e47",
		"--contains", commands[0], "--contains", commands[1], "--contains", commands[2],
		"--contains", "arn:aws:s3:::prod-billing-exports/2026/11/report.csv",
		"--html-contains", REASON,
		"--html-contains", "3f1c2b9e-6a0d-4c1e-9b7a-2d5e8f4a1c01",
		"--html-contains", commands[2],
		NULL,
	};
	char *out;

	render(&nt, &r);
	if (dump) {
		char *p = tw_test_join(dump, "alarm.eml");
		tw_test_write_file(p, r.mime.p, r.mime.n);
		free(p);
	}
	out = check_mime(&r, extra);
	cr_assert(strstr(out, "\"png\": [600, 220]"), "checker said: %s", out);
	free(out);
	rendered_free(&r);
}

Test(email_render, html_escapes_hostile_fields, .timeout = 30)
{
	static const struct tw_notice_record evil[] = {
		{ T0, "<script>alert(1)</script>", "Put&Get", "1.2.3.4", "arn:aws:s3:::a&b<c>\"d'", "E<1>",
		  "id-<b>" },
	};
	static const struct tw_notice_contrib evc[] = { { "<i>kind</i>", "<img src=x onerror=alert(1)>", 3 } };
	static const char *const cmds[] = { "trailwatch query 'filter x < 3 && y > \"4\"'" };
	struct tw_alarm_notice nt = sample();
	struct tw_buf html;
	struct tw_err err;
	struct rendered r;
	const char *extra[] = { "--html-contains", "<script>alert(1)</script>", "--html-contains",
				"arn:aws:s3:::a&b<c>\"d'", "--html-contains", "<img src=x onerror=alert(1)>",
				"--html-contains", "trailwatch query 'filter x < 3 && y > \"4\"'", NULL };
	char *out;

	nt.alarm_name = "a<b>&\"c\"";
	nt.records = evil;
	nt.n_records = 1;
	nt.contribs = evc;
	nt.n_contribs = 1;
	nt.commands = cmds;
	nt.n_commands = 1;
	nt.link = "https://example.com/?a=1&b=\"><script>";
	tw_buf_init(&html, 1 << 20);
	cr_assert_eq(tw_email_render_html(&nt, "chart@x", &html, &err), TW_OK, "%s", err.msg);
	tw_buf_cstr(&html);
	cr_assert_null(strstr(html.p, "<script"), "unescaped <script> in the HTML");
	cr_assert_null(strstr(html.p, "<img src=x"), "unescaped <img> in the HTML");
	cr_assert(strstr(html.p, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	cr_assert(strstr(html.p, "arn:aws:s3:::a&amp;b&lt;c&gt;&quot;d&#39;"));
	cr_assert(strstr(html.p, "a&lt;b&gt;&amp;&quot;c&quot;"));
	cr_assert(strstr(html.p, "href=\"https://example.com/?a=1&amp;b=&quot;&gt;&lt;script&gt;\""));
	tw_buf_free(&html);

	/* The independent parser sees the hostile strings only as text, never as tags. */
	render(&nt, &r);
	out = check_mime(&r, extra);
	free(out);
	rendered_free(&r);
}

Test(email_render, only_http_links_become_hyperlinks)
{
	struct tw_alarm_notice nt = sample();
	struct tw_buf html;
	struct tw_err err;

	nt.link = "javascript:alert(1)";
	tw_buf_init(&html, 1 << 20);
	cr_assert_eq(tw_email_render_html(&nt, NULL, &html, &err), TW_OK);
	tw_buf_cstr(&html);
	cr_assert_null(strstr(html.p, "href=\"javascript"));
	cr_assert(strstr(html.p, "Alarm: javascript:alert(1)"));
	cr_assert_null(strstr(html.p, "<img"), "no chart without a cid");
	tw_buf_free(&html);
}

Test(email_render, empty_notice_still_renders, .timeout = 30)
{
	struct tw_alarm_notice nt;
	struct rendered r;
	const char *extra[] = { "--png-size", "600x220", "--contains", "entered the INSUFFICIENT_DATA state", NULL };
	char *out;

	memset(&nt, 0, sizeof nt);
	nt.alarm_name = "x";
	nt.new_state = TW_NOTICE_INSUFFICIENT_DATA;
	render(&nt, &r);
	cr_assert_str_eq(r.subject.p, "INSUFFICIENT_DATA: \"x\"");
	cr_assert_null(strstr(r.text.p, "Top records"));
	cr_assert_null(strstr(r.text.p, "Top contributors"));
	cr_assert_null(strstr(r.text.p, "Datapoints"));
	cr_assert_null(strstr(r.text.p, "Dig further"));
	out = check_mime(&r, extra);
	free(out);
	rendered_free(&r);
}

Test(email_render, invalid_utf8_and_controls_are_cleaned, .timeout = 30)
{
	struct tw_alarm_notice nt = sample();
	struct rendered r;
	char *out;

	nt.description = "bad \xff\xfe bytes, tab\there, esc\x1b[31m, caf\xc3\xa9, overlong \xc0\xaf";
	render(&nt, &r);
	cr_assert(strstr(r.text.p, "bad ?? bytes, tab here, esc [31m, caf\xc3\xa9, overlong ??"), "%s", r.text.p);
	out = check_mime(&r, NULL); /* the checker decodes the parts as strict UTF-8 */
	free(out);
	rendered_free(&r);
}

Test(email_render, rejects_missing_name_and_respects_caps)
{
	struct tw_alarm_notice nt = sample();
	struct tw_buf s, t, m;
	struct tw_err err;

	tw_buf_init(&s, 4096);
	tw_buf_init(&t, 1 << 20);
	tw_buf_init(&m, 2000); /* far too small for the chart */
	cr_assert_eq(tw_buf_append(&m, "keep", 4, &err), TW_OK);
	cr_assert_eq(tw_email_render(&nt, &s, &t, &m, &err), TW_ELIMIT);
	cr_assert_eq(s.n, 0, "subject not cut back on error");
	cr_assert_eq(t.n, 0, "text not cut back on error");
	cr_assert_eq(m.n, 4, "mime not cut back on error");
	nt.alarm_name = NULL;
	cr_assert_eq(tw_email_render(&nt, &s, &t, &m, &err), TW_EINVAL);
	cr_assert(strstr(err.msg, "alarm name"));
	tw_buf_free(&s);
	tw_buf_free(&t);
	tw_buf_free(&m);
}

Test(email_render, rendering_is_deterministic)
{
	struct tw_alarm_notice nt = sample();
	struct rendered a, b;

	render(&nt, &a);
	render(&nt, &b);
	cr_assert_eq(a.mime.n, b.mime.n);
	cr_assert(memcmp(a.mime.p, b.mime.p, a.mime.n) == 0);
	rendered_free(&a);
	rendered_free(&b);
}

/* ---- encoders ---- */

static int hexv(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A strict QP decoder written from RFC 2045 6.7 (uppercase hex only, soft breaks "=\r\n"). */
static size_t qp_decode(const char *p, size_t n, char *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 3;
		} else if (p[i] == '=') {
			cr_assert(i + 2 < n && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0, "bad escape at %zu", i);
			out[o++] = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
			i += 3;
		} else if (p[i] == '\r') {
			cr_assert(i + 1 < n && p[i + 1] == '\n', "bare CR at %zu", i);
			out[o++] = '\n';
			i += 2;
		} else {
			cr_assert(((unsigned char)p[i] >= 32 && (unsigned char)p[i] < 127) || p[i] == '\t',
				  "raw byte 0x%02x at %zu", (unsigned char)p[i], i);
			out[o++] = p[i++];
		}
	}
	return o;
}

static void qp_lines_ok(const char *p, size_t n)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			cr_assert(i + 1 < n && p[i + 1] == '\n');
			if (i > 0)
				cr_assert(p[i - 1] != ' ' && p[i - 1] != '\t', "whitespace before a line break at %zu", i);
			col = 0;
			i++;
			continue;
		}
		if (col == 0)
			cr_assert(p[i] != '.', "line starts with '.' at %zu", i);
		col++;
		cr_assert(col <= 76, "line longer than 76 at %zu", i);
	}
}

Test(email_qp, hand_worked_examples)
{
	struct tw_buf b;
	struct tw_err err;

	tw_buf_init(&b, 4096);
	/* '=' -> =3D; the space before a line end -> =20; a '.' starting a line -> =2E; é is C3 A9. */
	cr_assert_eq(tw_email_qp_encode("a=b \n.x caf\xc3\xa9", 13, &b, &err), TW_OK);
	cr_assert_eq(b.n, strlen("a=3Db=20\r\n=2Ex caf=C3=A9"));
	cr_assert(memcmp(b.p, "a=3Db=20\r\n=2Ex caf=C3=A9", b.n) == 0, "%.*s", (int)b.n, b.p);
	tw_buf_reset(&b);
	/* 80 'x': 75 then a soft break then 5. */
	char in[80];
	memset(in, 'x', sizeof in);
	cr_assert_eq(tw_email_qp_encode(in, sizeof in, &b, &err), TW_OK);
	cr_assert_eq(b.n, 75 + 3 + 5);
	cr_assert(memcmp(b.p + 75, "=\r\n", 3) == 0);
	tw_buf_free(&b);
}

Test(email_qp, lines_at_most_76_and_round_trip)
{
	struct tw_buf b;
	struct tw_err err;
	char in[3000], *dec;
	size_t n = 0, dn;
	unsigned seed = 12345;

	/* Mixed content: long runs, UTF-8, '=', trailing spaces, lines starting with '.', CRLF. */
	while (n < sizeof in - 8) {
		seed = seed * 1103515245u + 12345u;
		unsigned k = (seed >> 16) % 12;
		const char *pieces[] = { "word ", "=", " ", "\n", ".", "\xc3\xa9", "\xe2\x82\xac", "\t",
					 "0123456789", "\r\n", "abc", "  \n" };
		size_t l = strlen(pieces[k]);
		memcpy(in + n, pieces[k], l);
		n += l;
	}
	tw_buf_init(&b, 1 << 20);
	cr_assert_eq(tw_email_qp_encode(in, n, &b, &err), TW_OK);
	qp_lines_ok(b.p, b.n);
	dec = malloc(b.n + 1);
	dn = qp_decode(b.p, b.n, dec);
	/* CRLF in the input is a hard break too, so compare with CRLF folded to LF. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
			in[m++] = in[i];
	cr_assert_eq(dn, m);
	cr_assert(memcmp(dec, in, m) == 0);
	free(dec);
	tw_buf_free(&b);
}

Test(email_base64, rfc4648_vectors_and_line_length)
{
	static const char *const vec[][2] = { { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
					      { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
					      { "foobar", "Zm9vYmFy" } };
	struct tw_buf b;
	struct tw_err err;
	unsigned char data[200];

	tw_buf_init(&b, 4096);
	for (size_t i = 0; i < 6; i++) {
		tw_buf_reset(&b);
		cr_assert_eq(tw_email_base64_encode(vec[i][0], strlen(vec[i][0]), &b, &err), TW_OK);
		tw_buf_cstr(&b);
		char want[32];
		snprintf(want, sizeof want, "%s\r\n", vec[i][1]);
		cr_assert_str_eq(b.p, want);
	}
	/* 200 bytes -> 268 characters: lines of 76, 76, 76, 40. */
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 7);
	tw_buf_reset(&b);
	cr_assert_eq(tw_email_base64_encode(data, sizeof data, &b, &err), TW_OK);
	cr_assert_eq(b.n, 268 + 4 * 2);
	cr_assert(b.p[76] == '\r' && b.p[77] == '\n' && b.p[154] == '\r' && b.p[232] == '\r');
	cr_assert(b.p[b.n - 2] == '\r' && b.p[b.n - 1] == '\n' && b.n - 2 - 234 == 40);
	tw_buf_free(&b);
}
