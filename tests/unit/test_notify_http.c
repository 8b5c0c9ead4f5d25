/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_notify_http.c: http delivery to a real listener (tests/tools/http_server.py on
 * 127.0.0.1): the SNS JSON and headers checked field by field; a refused connection, a 500 and a
 * request that hangs past the timeout, then success: retried and delivered once; a 404 is
 * permanent; and a process killed with SIGKILL in the middle of deliveries, reopened: pending
 * ones delivered, delivered ones not again. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alerts/notify.h"
#include "tests/helpers/helpers.h"
#include "tests/helpers/notifyt.h"
#include "tests/helpers/pyserver.h"

static const struct tw_notify_topic topics[] = { { "alarms", NULL } };
static const struct tw_notify_retry fast = { 10, 0, 0, 0, 50, 50, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };

static struct tw_notify *open_with(const char *state, const struct tw_notify_sub *sub, unsigned workers,
				   struct tw_test_notes *notes)
{
	struct tw_notify_config c = { 0 };
	struct tw_notify *n = NULL;
	struct tw_err err = { 0 };

	c.state_dir = state;
	c.topics = topics;
	c.ntopics = 1;
	c.subs = sub;
	c.nsubs = 1;
	c.workers = workers;
	if (notes)
		tw_test_notes_attach(notes, &c);
	cr_assert_eq(tw_notify_open(&c, &n, &err), TW_OK, "open: %s", err.msg);
	return n;
}

static const char *hdr(json_t *req, const char *name)
{
	const char *s = json_string_value(json_object_get(json_object_get(req, "headers"), name));
	return s ? s : "(absent)";
}

Test(notify_http, posts_the_sns_json_and_headers)
{
	tw_test_need_python("http.server");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "http");
	struct tw_test_server srv;
	char url[128];
	mkdir(out, 0700);
	const char *args[] = { "--out", out, NULL };
	tw_test_server_start(&srv, "http_server.py", args);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/trailwatch?x=1", srv.port);
	const char *extra[] = { "Authorization: Bearer t0ken" };
	struct tw_notify_sub sub = { .name = "hook", .topic = "alarms", .proto = TW_NOTIFY_HTTP, .endpoint = url };
	sub.http.headers = extra;
	sub.http.nheaders = 1;
	struct tw_notify *n = open_with(state, &sub, 0, NULL);
	const struct tw_notify_attr attrs[] = { { "alarm", "root-login", 0, 0 }, { "value", NULL, 2.5, 1 } };
	struct tw_notify_msg m = { "alarms", "ALARM root-login", "{\"state\":\"ALARM\"}\n\tquoted \"text\" ü", attrs, 2,
				   NULL, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };
	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "%s", err.msg);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	tw_test_server_stop(&srv);

	char *p = tw_test_join(out, "0001.json");
	json_t *req = tw_test_json_file(p);
	cr_expect_str_eq(json_string_value(json_object_get(req, "method")), "POST");
	cr_expect_str_eq(json_string_value(json_object_get(req, "path")), "/hooks/trailwatch?x=1");
	cr_expect_str_eq(hdr(req, "x-amz-sns-message-type"), "Notification");
	cr_expect_str_eq(hdr(req, "x-amz-sns-message-id"), r.message_id);
	cr_expect_str_eq(hdr(req, "x-amz-sns-topic-arn"), "arn:trailwatch:sns:local:trailwatch:alarms");
	cr_expect_str_eq(hdr(req, "x-amz-sns-subscription-arn"), "arn:trailwatch:sns:local:trailwatch:alarms:hook");
	cr_expect_str_eq(hdr(req, "x-trailwatch-attempt"), "1");
	cr_expect_str_eq(hdr(req, "content-type"), "text/plain; charset=UTF-8");
	cr_expect_str_eq(hdr(req, "authorization"), "Bearer t0ken");
	json_t *b = json_loads(json_string_value(json_object_get(req, "body")), 0, NULL);
	cr_assert_not_null(b);
	cr_expect_eq(json_object_size(b), 7);
	cr_expect_str_eq(json_string_value(json_object_get(b, "Type")), "Notification");
	cr_expect_str_eq(json_string_value(json_object_get(b, "MessageId")), r.message_id);
	cr_expect_str_eq(json_string_value(json_object_get(b, "TopicArn")), "arn:trailwatch:sns:local:trailwatch:alarms");
	cr_expect_str_eq(json_string_value(json_object_get(b, "Subject")), "ALARM root-login");
	cr_expect_str_eq(json_string_value(json_object_get(b, "Message")), "{\"state\":\"ALARM\"}\n\tquoted \"text\" ü");
	cr_expect_eq(strlen(json_string_value(json_object_get(b, "Timestamp"))), 24);
	json_t *ma = json_object_get(b, "MessageAttributes");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(ma, "alarm"), "Value")), "root-login");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(ma, "value"), "Type")), "Number");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(ma, "value"), "Value")), "2.5");
	json_decref(b);
	json_decref(req);
	free(p);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_http, refused_500_and_hang_are_retried_then_delivered_once)
{
	tw_test_need_python("http.server");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "http");
	struct tw_test_server srv;
	struct tw_test_notes notes;
	char url[128], ps[16];
	int port = tw_test_free_port();
	mkdir(out, 0700);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	snprintf(ps, sizeof ps, "%d", port);
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_HTTP, .endpoint = url, .retry = &fast,
				     .timeout_ms = 400 };
	tw_test_notes_init(&notes);
	struct tw_notify *n = open_with(state, &sub, 0, &notes);
	struct tw_notify_msg m = { "alarms", "s", "m", NULL, 0, NULL, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };
	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "%s", err.msg);
	tw_test_sleep_ms(150);
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	cr_expect_geq(st.retried, 1, "connection refused is retried");
	cr_expect(strstr(tw_test_notes_get(&notes).last_error, "127.0.0.1") != NULL);
	const char *args[] = { "--out", out, "--port", ps, "--script", "500,hang,200", NULL };
	tw_test_server_start(&srv, "http_server.py", args);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_test_sleep_ms(200);
	tw_notify_stats(n, &st);
	tw_notify_close(n);
	tw_test_server_stop(&srv);
	cr_expect_eq(st.delivered, 1);
	cr_expect_geq(st.retried, 3);
	cr_expect_eq(tw_test_count_files(out, ".json"), 1, "delivered once");
	char *lp = tw_test_join(out, "log.txt");
	char *log = tw_test_read_file(lp, NULL);
	cr_expect_str_eq(log, "1 500\n2 hang\n3 200\n");
	free(log);
	free(lp);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_http, a_404_is_permanent)
{
	tw_test_need_python("http.server");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "http");
	struct tw_test_server srv;
	struct tw_test_notes notes;
	char url[128];
	mkdir(out, 0700);
	const char *args[] = { "--out", out, "--script", "404", NULL };
	tw_test_server_start(&srv, "http_server.py", args);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", srv.port);
	struct tw_notify_sub sub = { .topic = "alarms", .proto = TW_NOTIFY_HTTP, .endpoint = url, .retry = &fast };
	tw_test_notes_init(&notes);
	struct tw_notify *n = open_with(state, &sub, 0, &notes);
	struct tw_notify_msg m = { "alarms", "s", "m", NULL, 0, NULL, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };
	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "%s", err.msg);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	tw_test_server_stop(&srv);
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.dead, 1);
	cr_expect_eq(t.retrying, 0);
	cr_expect(strstr(t.last_error, "HTTP status 404") != NULL, "%s", t.last_error);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_http, sigkill_mid_delivery_then_reopen_delivers_each_once)
{
	tw_test_need_python("http.server");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "http"),
	     *ids = tw_test_join(dir, "ids");
	struct tw_test_server srv;
	char url[128];
	mkdir(out, 0700);
	/* Two answered, the third hangs (the child is killed while it waits), then answers again. */
	const char *args[] = { "--out", out, "--script", "200,200,hang,200", NULL };
	tw_test_server_start(&srv, "http_server.py", args);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
	struct tw_notify_sub sub = { .name = "hook", .topic = "alarms", .proto = TW_NOTIFY_HTTP, .endpoint = url,
				     .retry = &fast, .timeout_ms = 20000 };

	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		struct tw_notify_config c = { 0 };
		struct tw_notify *n = NULL;
		struct tw_err err = { 0 };
		FILE *f = fopen(ids, "w");
		c.state_dir = state;
		c.topics = topics;
		c.ntopics = 1;
		c.subs = &sub;
		c.nsubs = 1;
		c.workers = 1;
		if (!f || tw_notify_open(&c, &n, &err))
			_exit(2);
		for (int i = 0; i < 5; i++) {
			struct tw_notify_msg m = { "alarms", "s", "m", NULL, 0, NULL, NULL };
			struct tw_notify_receipt r;
			if (tw_notify_publish(n, &m, &r, &err))
				_exit(3);
			fprintf(f, "%s\n", r.message_id);
		}
		fclose(f);
		pause();
		_exit(0);
	}
	/* Wait until the third request is in flight (log.txt has 3 lines), then SIGKILL. */
	char *lp = tw_test_join(out, "log.txt");
	size_t lines = 0;
	for (int i = 0; i < 400 && lines < 3; i++) {
		size_t len = 0;
		char *log = tw_test_read_file(lp, &len);
		lines = log ? tw_test_count_lines(log, len) : 0;
		free(log);
		if (lines < 3)
			tw_test_sleep_ms(20);
	}
	cr_assert_eq(lines, 3, "the child reached the hanging request");
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status));

	struct tw_notify *n = open_with(state, &sub, 1, NULL);
	struct tw_notify_stats st;
	tw_notify_stats(n, &st);
	cr_expect_eq(st.recovered, 3, "messages 3, 4, 5 were pending");
	cr_assert(tw_notify_wait(n, 0, 8000));
	tw_notify_close(n);
	tw_test_server_stop(&srv);

	/* Each published id answered 200 exactly once. */
	size_t ilen;
	char *idtext = tw_test_read_file(ids, &ilen), *save = NULL;
	cr_assert_not_null(idtext);
	cr_expect_eq(tw_test_count_files(out, ".json"), 5);
	int k = 0;
	for (char *id = strtok_r(idtext, "\n", &save); id; id = strtok_r(NULL, "\n", &save), k++) {
		int seen = 0;
		for (int i = 1; i <= 5; i++) {
			char name[32];
			snprintf(name, sizeof name, "%04d.json", i);
			char *p = tw_test_join(out, name);
			json_t *req = tw_test_json_file(p);
			seen += !strcmp(hdr(req, "x-amz-sns-message-id"), id);
			json_decref(req);
			free(p);
		}
		cr_expect_eq(seen, 1, "message %s answered %d times", id, seen);
	}
	cr_expect_eq(k, 5);
	free(idtext);
	free(lp);
	free(ids);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}

Test(notify_http, https_verifies_the_certificate)
{
	tw_test_need_python("ssl");
	char *dir = tw_test_tmpdir(), *state = tw_test_join(dir, "state"), *out = tw_test_join(dir, "http");
	struct tw_test_server srv;
	struct tw_test_notes notes;
	char url[128];
	mkdir(out, 0700);
	tw_test_make_cert(dir);
	char *cert = tw_test_join(dir, "cert.pem"), *key = tw_test_join(dir, "key.pem");
	const char *args[] = { "--out", out, "--tls", cert, key, NULL };
	tw_test_server_start(&srv, "http_server.py", args);
	snprintf(url, sizeof url, "https://localhost:%d/tw", srv.port);
	static const struct tw_notify_retry none = { 0, 0, 0, 0, 0, 0, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };
	struct tw_notify_sub sub = { .name = "tls", .topic = "alarms", .proto = TW_NOTIFY_HTTPS, .endpoint = url,
				     .retry = &none };
	struct tw_notify_msg m = { "alarms", "s", "m", NULL, 0, NULL, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };

	/* Not trusted (no CA file): refused, nothing reaches the listener. */
	tw_test_notes_init(&notes);
	struct tw_notify *n = open_with(state, &sub, 0, &notes);
	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "%s", err.msg);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	cr_expect_eq(tw_test_notes_get(&notes).dead, 1);
	cr_expect(strstr(tw_test_notes_get(&notes).last_error, "certificate") != NULL, "%s",
		  tw_test_notes_get(&notes).last_error);
	cr_expect_eq(tw_test_count_files(out, ".json"), 0);
	/* A client that connects and never starts its TLS handshake holds only its own connection:
	 * the test server handshakes on the connection's thread (it once did so inside accept(),
	 * where such a client stopped everyone else and hung the server's shutdown). */
	int idle = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(idle >= 0 && connect(idle, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
	/* Trusted through the CA file: delivered. */
	sub.http.ca_file = cert;
	n = open_with(state, &sub, 0, &notes);
	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "%s", err.msg);
	cr_assert(tw_notify_wait(n, r.seq, 8000));
	tw_notify_close(n);
	tw_test_server_stop(&srv);
	close(idle);
	cr_expect_eq(tw_test_notes_get(&notes).delivered, 1);
	cr_expect_eq(tw_test_count_files(out, ".json"), 1);
	free(cert);
	free(key);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}
