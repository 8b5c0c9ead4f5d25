/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_notify_smtp.c: email delivery to a real SMTP server (aiosmtpd, started from
 * tests/tools/smtp_server.py on 127.0.0.1): STARTTLS with a certificate made by openssl at test
 * time and trusted through the CA-file option, AUTH with a password read from the environment,
 * the mail read back by Python's email package (headers, RFC 2047 subject, QP body, MIME parts),
 * a server down at publish then started, 4xx retried, 5xx dead-lettered, STARTTLS required but
 * not offered, an untrusted certificate refused. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alerts/notify.h"
#include "tests/helpers/helpers.h"
#include "tests/helpers/notifyt.h"
#include "tests/helpers/pyserver.h"

static const struct tw_notify_topic topics[] = { { "alarms", "Trailwatch Alarms" } };
static const struct tw_notify_retry fast = { 20, 0, 0, 0, 100, 100, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };
static const struct tw_notify_retry three = { 2, 0, 0, 0, 50, 50, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };

/* A test's directory, its SMTP server and subscription. */
struct fix {
	char *dir;                 /* temporary directory */
	char *state;               /* notifier state */
	char *mail;                /* where the server saves messages */
	char url[64];              /* smtp://127.0.0.1:PORT */
	struct tw_test_server srv; /* the server */
	struct tw_notify_sub sub;  /* the email subscription */
	struct tw_test_notes notes; /* outcomes */
};

static void fix_init(struct fix *f)
{
	tw_test_need_python("aiosmtpd");
	memset(f, 0, sizeof *f);
	f->dir = tw_test_tmpdir();
	f->state = tw_test_join(f->dir, "state");
	f->mail = tw_test_join(f->dir, "mail");
	mkdir(f->mail, 0700);
	f->sub.name = "ops-mail";
	f->sub.topic = "alarms";
	f->sub.proto = TW_NOTIFY_EMAIL;
	f->sub.endpoint = "ops@example.com";
	f->sub.smtp.from = "trailwatch@example.org";
	f->sub.smtp.starttls = TW_NOTIFY_STARTTLS_NONE;
	f->sub.retry = &fast;
	f->sub.timeout_ms = 5000;
	tw_test_notes_init(&f->notes);
}

static void fix_start(struct fix *f, const char *const *args)
{
	const char *argv[16] = { "--out", f->mail };
	size_t k = 2;

	for (size_t i = 0; args && args[i]; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	tw_test_server_start(&f->srv, "smtp_server.py", argv);
	snprintf(f->url, sizeof f->url, "smtp://127.0.0.1:%d", f->srv.port);
	f->sub.smtp.url = f->url;
}

static void fix_free(struct fix *f)
{
	tw_test_server_stop(&f->srv);
	free(f->state);
	free(f->mail);
	tw_test_tmpdir_free(f->dir);
}

static struct tw_notify *fix_open(struct fix *f)
{
	struct tw_notify_config c = { 0 };
	struct tw_notify *n = NULL;
	struct tw_err err = { 0 };

	c.state_dir = f->state;
	c.topics = topics;
	c.ntopics = 1;
	c.subs = &f->sub;
	c.nsubs = 1;
	tw_test_notes_attach(&f->notes, &c);
	cr_assert_eq(tw_notify_open(&c, &n, &err), TW_OK, "open: %s", err.msg);
	return n;
}

static struct tw_notify_receipt publish(struct tw_notify *n, const char *subject, const char *text, const char *mime)
{
	static const struct tw_notify_attr attrs[] = { { "severity", "high", 0, 0 } };
	struct tw_notify_msg m = { "alarms", subject, text, attrs, 1, mime, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "publish: %s", err.msg);
	return r;
}

static const char *h1(json_t *mail, const char *name)
{
	const char *s = json_string_value(json_array_get(json_object_get(json_object_get(mail, "headers"), name), 0));
	return s ? s : "(absent)";
}

Test(notify_smtp, starttls_auth_and_headers_read_back)
{
	struct fix f;
	fix_init(&f);
	tw_test_make_cert(f.dir);
	char *cert = tw_test_join(f.dir, "cert.pem"), *key = tw_test_join(f.dir, "key.pem");
	const char *args[] = { "--tls", cert, key, "--require-tls", "--auth", "alice:s3cret pass", NULL };
	const char *rcpt[] = { "ops@example.com", "oncall@example.net" };
	fix_start(&f, args);
	setenv("TW_TEST_SMTP_PASSWORD", "s3cret pass", 1);
	f.sub.smtp.starttls = TW_NOTIFY_STARTTLS_REQUIRED;
	f.sub.smtp.ca_file = cert;
	f.sub.smtp.user = "alice";
	f.sub.smtp.password.from = TW_SECRET_ENV;
	f.sub.smtp.password.ref = "TW_TEST_SMTP_PASSWORD";
	f.sub.smtp.recipients = rcpt;
	f.sub.smtp.nrecipients = 2;
	struct tw_notify *n = fix_open(&f);
	const char *body = "Alarm root-login is ALARM.\nThreshold: count >= 1 = breached \nÜbersicht: 1 event\n";
	struct tw_notify_receipt r = publish(n, "ALARM: \"root-login\" in Zürich – 1 event", body, NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000), "delivered within 8 s");
	tw_notify_close(n);
	struct tw_test_notes t = tw_test_notes_get(&f.notes);
	cr_assert_eq(t.delivered, 1, "last error: %s", t.last_error);
	cr_assert_eq(tw_test_count_files(f.mail, ".eml"), 1);

	char *mp = tw_test_join(f.mail, "0001.json"), *ep = tw_test_join(f.mail, "0001.eml");
	json_t *meta = tw_test_json_file(mp);
	cr_expect(json_is_true(json_object_get(meta, "tls")), "STARTTLS used");
	cr_expect(json_is_true(json_object_get(meta, "auth")), "AUTH used");
	cr_expect_str_eq(json_string_value(json_object_get(meta, "login")), "alice");
	cr_expect_str_eq(json_string_value(json_object_get(meta, "mail_from")), "trailwatch@example.org");
	json_t *rc = json_object_get(meta, "rcpt_tos");
	cr_expect_eq(json_array_size(rc), 2);
	cr_expect_str_eq(json_string_value(json_array_get(rc, 0)), "ops@example.com");
	cr_expect_str_eq(json_string_value(json_array_get(rc, 1)), "oncall@example.net");

	json_t *m = tw_test_mail_parse(ep);
	cr_expect_str_eq(h1(m, "From"), "Trailwatch Alarms <trailwatch@example.org>");
	cr_expect_str_eq(h1(m, "To"), "ops@example.com, oncall@example.net");
	cr_expect_str_eq(h1(m, "Subject"), "ALARM: \"root-login\" in Zürich – 1 event");
	cr_expect_str_eq(h1(m, "MIME-Version"), "1.0");
	char mid[128];
	snprintf(mid, sizeof mid, "<%s@example.org>", r.message_id);
	cr_expect_str_eq(h1(m, "Message-ID"), mid);
	double de = json_number_value(json_object_get(m, "date_epoch"));
	cr_expect(de > (double)time(NULL) - 60 && de <= (double)time(NULL), "Date %f", de);
	cr_expect_str_eq(json_string_value(json_object_get(m, "content_type")), "text/plain");
	cr_expect_str_eq(json_string_value(json_object_get(m, "body")), body);
	cr_expect_eq(json_array_size(json_object_get(m, "defects")), 0);
	/* The password never reaches an error or the outbox. */
	char *log = tw_test_join(f.state, "outbox.log");
	size_t ln;
	char *lt = tw_test_read_file(log, &ln);
	cr_expect(!tw_test_contains(lt, ln, "s3cret"));
	free(lt);
	free(log);
	json_decref(m);
	json_decref(meta);
	free(mp);
	free(ep);
	free(cert);
	free(key);
	fix_free(&f);
}

Test(notify_smtp, a_mime_entity_is_sent_as_given)
{
	struct fix f;
	fix_init(&f);
	fix_start(&f, NULL);
	struct tw_notify *n = fix_open(&f);
	const char *mime = "Content-Type: multipart/alternative; boundary=\"tw-b1\"\n"
			   "\n"
			   "--tw-b1\n"
			   "Content-Type: text/plain; charset=utf-8\n"
			   "\n"
			   "plain part\n"
			   "--tw-b1\n"
			   "Content-Type: text/html; charset=utf-8\n"
			   "\n"
			   "<p>html part</p>\n"
			   "--tw-b1--\n";
	struct tw_notify_receipt r = publish(n, "multipart", "plain part", mime);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	char *ep = tw_test_join(f.mail, "0001.eml");
	json_t *m = tw_test_mail_parse(ep);
	cr_expect_str_eq(json_string_value(json_object_get(m, "content_type")), "multipart/alternative");
	json_t *parts = json_object_get(m, "parts");
	cr_assert_eq(json_array_size(parts), 2);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(parts, 0), "content_type")), "text/plain");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(parts, 0), "body")), "plain part");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(parts, 1), "content_type")), "text/html");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(parts, 1), "body")), "<p>html part</p>");
	cr_expect_str_eq(h1(m, "Subject"), "multipart");
	cr_expect_str_eq(h1(m, "MIME-Version"), "1.0");
	json_decref(m);
	free(ep);
	fix_free(&f);
}

Test(notify_smtp, email_json_carries_the_sns_json)
{
	struct fix f;
	fix_init(&f);
	fix_start(&f, NULL);
	f.sub.proto = TW_NOTIFY_EMAIL_JSON;
	struct tw_notify *n = fix_open(&f);
	struct tw_notify_receipt r = publish(n, "json", "the text", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	char *ep = tw_test_join(f.mail, "0001.eml");
	json_t *m = tw_test_mail_parse(ep);
	json_t *j = json_loads(json_string_value(json_object_get(m, "body")), 0, NULL);
	cr_assert_not_null(j, "the body is JSON");
	cr_expect_str_eq(json_string_value(json_object_get(j, "MessageId")), r.message_id);
	cr_expect_str_eq(json_string_value(json_object_get(j, "Message")), "the text");
	cr_expect_str_eq(json_string_value(json_object_get(j, "Type")), "Notification");
	json_decref(j);
	json_decref(m);
	free(ep);
	fix_free(&f);
}

Test(notify_smtp, server_down_at_publish_delivers_once_when_it_comes_up)
{
	struct fix f;
	fix_init(&f);
	int port = tw_test_free_port();
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	snprintf(f.url, sizeof f.url, "smtp://127.0.0.1:%d", port);
	f.sub.smtp.url = f.url;
	struct tw_notify *n = fix_open(&f);
	struct tw_notify_receipt r = publish(n, "down", "server was down", NULL);
	tw_test_sleep_ms(350);
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	cr_expect_geq(st.retried, 1, "refused connections are retried");
	cr_expect_eq(st.delivered, 0);
	const char *args[] = { "--port", ps, NULL };
	fix_start(&f, args);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_test_sleep_ms(300);
	tw_notify_stats(n, &st);
	tw_notify_close(n);
	cr_expect_eq(st.delivered, 1);
	cr_expect_eq(st.dead, 0);
	cr_expect_eq(tw_test_count_files(f.mail, ".eml"), 1, "exactly once");
	struct tw_test_notes t = tw_test_notes_get(&f.notes);
	cr_expect(strstr(t.last_error, "127.0.0.1") != NULL, "%s", t.last_error);
	fix_free(&f);
}

Test(notify_smtp, temporary_4xx_is_retried_then_delivered)
{
	struct fix f;
	fix_init(&f);
	const char *args[] = { "--fail", "2", "451", NULL };
	fix_start(&f, args);
	struct tw_notify *n = fix_open(&f);
	struct tw_notify_receipt r = publish(n, "retry", "after two 451s", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	tw_notify_close(n);
	cr_expect_eq(st.retried, 2);
	cr_expect_eq(st.delivered, 1);
	cr_expect_eq(tw_test_count_files(f.mail, ".eml"), 1);
	struct tw_test_notes t = tw_test_notes_get(&f.notes);
	cr_expect(strstr(t.last_error, "451") != NULL, "%s", t.last_error);
	fix_free(&f);
}

Test(notify_smtp, permanent_5xx_is_dead_lettered_with_the_reason)
{
	struct fix f;
	fix_init(&f);
	const char *args[] = { "--fail", "100", "550", NULL };
	fix_start(&f, args);
	f.sub.retry = &three;
	struct tw_notify *n = fix_open(&f);
	struct tw_notify_receipt r = publish(n, "dead", "refused", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	tw_notify_close(n);
	cr_expect_eq(st.dead, 1);
	cr_expect_eq(st.retried, 0, "a 5xx is not retried");
	cr_expect_eq(tw_test_count_files(f.mail, ".eml"), 0);
	struct tw_test_notes t = tw_test_notes_get(&f.notes);
	cr_expect_eq(t.dead_cb, 1);
	char *dl = tw_test_join(f.state, "dead-letters.jsonl");
	json_error_t je;
	json_t *d = json_load_file(dl, JSON_DISABLE_EOF_CHECK, &je);
	cr_assert_not_null(d, "%s", je.text);
	cr_expect(strstr(json_string_value(json_object_get(d, "error")), "550") != NULL, "%s",
		  json_string_value(json_object_get(d, "error")));
	cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(d, "message"), "MessageId")), r.message_id);
	json_decref(d);
	free(dl);
	fix_free(&f);
}

Test(notify_smtp, required_starttls_and_certificate_checks_refuse)
{
	struct fix f;
	fix_init(&f);
	fix_start(&f, NULL); /* no STARTTLS offered */
	f.sub.retry = &three;
	f.sub.smtp.starttls = TW_NOTIFY_STARTTLS_REQUIRED;
	struct tw_notify *n = fix_open(&f);
	struct tw_notify_receipt r = publish(n, "tls", "must not go in clear", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	cr_expect_eq(tw_test_count_files(f.mail, ".eml"), 0, "nothing sent in clear");
	struct tw_test_notes t = tw_test_notes_get(&f.notes);
	cr_expect_eq(t.dead, 1);
	tw_test_server_stop(&f.srv);

	/* A server with a certificate the client does not trust (no CA file): refused. */
	tw_test_make_cert(f.dir);
	char *cert = tw_test_join(f.dir, "cert.pem"), *key = tw_test_join(f.dir, "key.pem");
	const char *args[] = { "--tls", cert, key, NULL };
	fix_start(&f, args);
	char *st2 = tw_test_join(f.dir, "state2");
	free(f.state);
	f.state = st2;
	n = fix_open(&f);
	r = publish(n, "tls", "untrusted", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	cr_expect_eq(tw_test_count_files(f.mail, ".eml"), 0);
	t = tw_test_notes_get(&f.notes);
	cr_expect_eq(t.dead, 2);
	/* The explicit insecure flag lets it through. */
	f.sub.smtp.insecure = 1;
	n = fix_open(&f);
	r = publish(n, "tls", "insecure on purpose", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	cr_expect_eq(tw_test_count_files(f.mail, ".eml"), 1);
	free(cert);
	free(key);
	fix_free(&f);
}

Test(notify_smtp, smtps_is_implicit_tls)
{
	struct fix f;
	fix_init(&f);
	tw_test_make_cert(f.dir);
	char *cert = tw_test_join(f.dir, "cert.pem"), *key = tw_test_join(f.dir, "key.pem");
	const char *args[] = { "--tls", cert, key, "--implicit-tls", "--auth", "bob:pw", NULL };
	fix_start(&f, args);
	snprintf(f.url, sizeof f.url, "smtps://127.0.0.1:%d", f.srv.port);
	char *pwfile = tw_test_write_str(f.dir, "pw", "pw\n");
	f.sub.smtp.url = f.url;
	f.sub.smtp.ca_file = cert;
	f.sub.smtp.user = "bob";
	f.sub.smtp.password.from = TW_SECRET_FILE;
	f.sub.smtp.password.ref = pwfile;
	struct tw_notify *n = fix_open(&f);
	struct tw_notify_receipt r = publish(n, "smtps", "over implicit TLS", NULL);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	cr_assert_eq(tw_test_count_files(f.mail, ".eml"), 1, "%s", tw_test_notes_get(&f.notes).last_error);
	char *mp = tw_test_join(f.mail, "0001.json");
	json_t *meta = tw_test_json_file(mp);
	cr_expect(json_is_true(json_object_get(meta, "tls")), "TLS from the first byte");
	cr_expect_str_eq(json_string_value(json_object_get(meta, "login")), "bob");
	json_decref(meta);
	free(mp);
	free(pwfile);
	free(cert);
	free(key);
	fix_free(&f);
}
