/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_faults_notify.c: the notifier against endpoints that misbehave at the socket
 * level, played by a small server thread on 127.0.0.1 written here (no protocol library): one
 * that accepts and never answers (the attempt's timeout must fire, the policy retries, then the
 * dead letter names the timeout), one that resets every connection (RST), and one that speaks
 * SMTP or HTTP correctly but slowly (delivered once, within the timeout). And the point of the
 * durable outbox: publishing (what the ingest loop does) takes no longer with a hanging endpoint
 * than with a local file, because delivery runs on the notifier's own threads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alerts/notify.h"
#include "tests/helpers/helpers.h"
#include "tests/helpers/notifyt.h"

enum mode {
	HANG,      /* accept, read and never write */
	RESET_SMTP, /* greets, reads the EHLO, then closes with SO_LINGER 0: a reset mid-session */
	RESET_HTTP, /* reads the request head, then closes with SO_LINGER 0: a reset, no response */
	SLOW_SMTP, /* a minimal SMTP server that waits DELAY_MS before each reply */
	SLOW_HTTP, /* reads a request, waits DELAY_MS, answers 200 */
};

#define DELAY_MS 150

/* The misbehaving endpoint. */
struct endpoint {
	enum mode mode;     /* how it misbehaves */
	int lfd;            /* listening socket */
	int port;           /* its port */
	pthread_t th;       /* the accept loop */
	volatile int stop;  /* set to end the loop */
	pthread_mutex_t mu; /* guards the counters */
	int accepted;       /* connections accepted */
	int messages;       /* SMTP messages or HTTP requests answered with success */
	int held[64];       /* HANG: connections kept open until stop */
	int nheld;          /* entries in held */
};

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(int fd, const char *s)
{
	nap_ms(DELAY_MS);
	(void)!write(fd, s, strlen(s));
}

/* Reads one CRLF-terminated line into buf (cap bytes); 0 at EOF or on error. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	char c;

	while (n + 1 < cap) {
		ssize_t r = read(fd, &c, 1);
		if (r <= 0)
			return 0;
		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = 0;
	return 1;
}

static void slow_smtp(struct endpoint *e, int fd)
{
	char line[4096];
	int data = 0;

	say(fd, "220 slow.test ESMTP\r\n");
	while (read_line(fd, line, sizeof line)) {
		if (data) {
			if (!strcmp(line, ".\r\n")) {
				data = 0;
				pthread_mutex_lock(&e->mu);
				e->messages++;
				pthread_mutex_unlock(&e->mu);
				say(fd, "250 2.0.0 queued\r\n");
			}
			continue;
		}
		if (!strncasecmp(line, "EHLO", 4))
			say(fd, "250-slow.test\r\n250 8BITMIME\r\n");
		else if (!strncasecmp(line, "HELO", 4) || !strncasecmp(line, "MAIL", 4) ||
			 !strncasecmp(line, "RCPT", 4) || !strncasecmp(line, "RSET", 4) || !strncasecmp(line, "NOOP", 4))
			say(fd, "250 2.0.0 ok\r\n");
		else if (!strncasecmp(line, "DATA", 4)) {
			data = 1;
			say(fd, "354 go ahead\r\n");
		} else if (!strncasecmp(line, "QUIT", 4)) {
			say(fd, "221 2.0.0 bye\r\n");
			break;
		} else
			say(fd, "502 5.5.2 what\r\n");
	}
}

static void slow_http(struct endpoint *e, int fd)
{
	char line[4096];
	long len = 0;

	while (read_line(fd, line, sizeof line)) {
		if (!strncasecmp(line, "Content-Length:", 15))
			len = strtol(line + 15, NULL, 10);
		if (!strcmp(line, "\r\n"))
			break;
	}
	while (len > 0) {
		char buf[4096];
		ssize_t r = read(fd, buf, len < (long)sizeof buf ? (size_t)len : sizeof buf);
		if (r <= 0)
			return;
		len -= r;
	}
	pthread_mutex_lock(&e->mu);
	e->messages++;
	pthread_mutex_unlock(&e->mu);
	say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

static void *serve(void *arg)
{
	struct endpoint *e = arg;

	while (!e->stop) {
		struct pollfd p = { e->lfd, POLLIN, 0 };
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(e->lfd, NULL, NULL)) < 0)
			continue;
		pthread_mutex_lock(&e->mu);
		e->accepted++;
		pthread_mutex_unlock(&e->mu);
		switch (e->mode) {
		case HANG:
			if (e->nheld < 64)
				e->held[e->nheld++] = fd; /* never answered, closed at stop */
			else
				close(fd);
			break;
		case RESET_SMTP:
		case RESET_HTTP: {
			struct linger lg = { 1, 0 };
			char line[4096];
			if (e->mode == RESET_SMTP) {
				(void)!write(fd, "220 reset.test ESMTP\r\n", 22);
				(void)read_line(fd, line, sizeof line);
			} else {
				while (read_line(fd, line, sizeof line) && strcmp(line, "\r\n"))
					;
			}
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			close(fd);
			break;
		}
		case SLOW_SMTP:
			slow_smtp(e, fd);
			close(fd);
			break;
		case SLOW_HTTP:
			slow_http(e, fd);
			close(fd);
			break;
		}
	}
	return NULL;
}

static void ep_start(struct endpoint *e, enum mode mode)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	int one = 1;

	memset(e, 0, sizeof *e);
	e->mode = mode;
	pthread_mutex_init(&e->mu, NULL);
	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(e->lfd, 0);
	setsockopt(e->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(e->lfd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(e->lfd, 64), 0);
	cr_assert_eq(getsockname(e->lfd, (struct sockaddr *)&a, &al), 0);
	e->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&e->th, NULL, serve, e), 0);
}

static void ep_stop(struct endpoint *e)
{
	e->stop = 1;
	pthread_join(e->th, NULL);
	for (int i = 0; i < e->nheld; i++)
		close(e->held[i]);
	close(e->lfd);
}

static int ep_get(struct endpoint *e, int *messages)
{
	int a;
	pthread_mutex_lock(&e->mu);
	a = e->accepted;
	if (messages)
		*messages = e->messages;
	pthread_mutex_unlock(&e->mu);
	return a;
}

static const struct tw_notify_topic topics[] = { { "alarms", "Alarms" } };
/* one immediate retry, then the dead letter */
static const struct tw_notify_retry once_more = { 1, 1, 0, 0, 0, 0, TW_NOTIFY_BACKOFF_LINEAR, 0, 0 };

/* A subscription of protocol proto to the endpoint's port. */
static void sub_for(struct tw_notify_sub *s, enum tw_notify_proto proto, int port, char *url, size_t cap)
{
	memset(s, 0, sizeof *s);
	s->name = "target";
	s->topic = "alarms";
	s->proto = proto;
	if (proto == TW_NOTIFY_EMAIL) {
		snprintf(url, cap, "smtp://127.0.0.1:%d", port);
		s->endpoint = "ops@example.com";
		s->smtp.url = url;
		s->smtp.from = "trailwatch@example.org";
		s->smtp.starttls = TW_NOTIFY_STARTTLS_NONE;
	} else {
		snprintf(url, cap, "http://127.0.0.1:%d/hook", port);
		s->endpoint = url;
	}
	s->connect_timeout_ms = 500;
	s->timeout_ms = 500;
	s->retry = &once_more;
}

static struct tw_notify *open_notify(const char *state, const struct tw_notify_sub *subs, size_t nsubs,
				     struct tw_test_notes *notes)
{
	struct tw_notify_config c = { 0 };
	struct tw_notify *n = NULL;
	struct tw_err err = { 0 };

	c.state_dir = state;
	c.topics = topics;
	c.ntopics = 1;
	c.subs = subs;
	c.nsubs = nsubs;
	tw_test_notes_attach(notes, &c);
	cr_assert_eq(tw_notify_open(&c, &n, &err), TW_OK, "open: %s", err.msg);
	return n;
}

static uint64_t publish(struct tw_notify *n, const char *subject)
{
	struct tw_notify_msg m = { "alarms", subject, "the body", NULL, 0, NULL, NULL };
	struct tw_notify_receipt r;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_notify_publish(n, &m, &r, &err), TW_OK, "publish: %s", err.msg);
	return r.seq;
}

/* Publishes one message to an endpoint in mode; checks that both attempts end by the timeout
 * (well before the 30 s default), and that the dead letter carries a reason. */
static void expect_dead(enum mode mode, enum tw_notify_proto proto, const char *why)
{
	char *tmp = tw_test_tmpdir(), *state = tw_test_join(tmp, "state"), url[128];
	struct endpoint e;
	struct tw_notify_sub s;
	struct tw_test_notes notes;
	struct tw_notify *n;
	double t0, dt;

	ep_start(&e, mode);
	sub_for(&s, proto, e.port, url, sizeof url);
	tw_test_notes_init(&notes);
	n = open_notify(state, &s, 1, &notes);
	t0 = now_s();
	cr_assert(tw_notify_wait(n, publish(n, why), 10000), "%s: no outcome within 10 s", why);
	dt = now_s() - t0;
	tw_notify_close(n);
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.dead, 1, "%s: dead %u delivered %u", why, t.dead, t.delivered);
	cr_expect_eq(t.retrying, 1, "%s: the policy's one retry", why);
	cr_expect_eq(t.last_attempts, 2);
	cr_expect_eq(ep_get(&e, NULL), 2, "%s: connections", why);
	cr_expect(t.last_error[0], "%s: no reason", why);
	if (mode == HANG) /* two attempts of 0.5 s each, not the 30 s default */
		cr_expect(dt >= 0.9 && dt < 15.0, "%s: %.2f s for two timed-out attempts (30 s each by default)", why, dt);
	else
		cr_expect(dt < 15.0, "%s: %.2f s", why, dt);
	{
		char *dl = tw_test_join(state, "dead-letters.jsonl");
		size_t len = 0;
		char *text = tw_test_read_file(dl, &len);
		cr_assert_not_null(text, "%s: no dead-letter file", why);
		cr_expect_eq(tw_test_count_lines(text, len), 1);
		cr_expect(strstr(text, "\"error\":\"") && !strstr(text, "\"error\":\"\""), "%s: %s", why, text);
		cr_expect(strstr(text, mode == HANG ? "timed out" : "reset"), "%s: reason: %s", why, text);
		cr_log_info("%s: %.2f s, reason: %s", why, dt, t.last_error);
		free(text);
		free(dl);
	}
	ep_stop(&e);
	free(state);
	tw_test_tmpdir_free(tmp);
}

Test(faults_notify, smtp_that_never_answers_times_out_then_dead_letters, .timeout = 30)
{
	expect_dead(HANG, TW_NOTIFY_EMAIL, "smtp hang");
}

Test(faults_notify, http_that_never_answers_times_out_then_dead_letters, .timeout = 30)
{
	expect_dead(HANG, TW_NOTIFY_HTTP, "http hang");
}

Test(faults_notify, smtp_connection_reset_is_retried_then_dead_letters, .timeout = 30)
{
	expect_dead(RESET_SMTP, TW_NOTIFY_EMAIL, "smtp reset");
}

Test(faults_notify, http_connection_reset_is_retried_then_dead_letters, .timeout = 30)
{
	expect_dead(RESET_HTTP, TW_NOTIFY_HTTP, "http reset");
}

/* Slow but inside the timeout: delivered once, no retry (every reply waits DELAY_MS: an SMTP
 * session has 7 replies, about 1 s; the timeout is 3 s). */
static void expect_slow_delivered(enum mode mode, enum tw_notify_proto proto)
{
	char *tmp = tw_test_tmpdir(), *state = tw_test_join(tmp, "state"), url[128];
	struct endpoint e;
	struct tw_notify_sub s;
	struct tw_test_notes notes;
	struct tw_notify *n;
	int messages = 0;

	ep_start(&e, mode);
	sub_for(&s, proto, e.port, url, sizeof url);
	s.timeout_ms = 3000;
	tw_test_notes_init(&notes);
	n = open_notify(state, &s, 1, &notes);
	cr_assert(tw_notify_wait(n, publish(n, "slow"), 10000), "no outcome within 10 s");
	tw_notify_close(n);
	struct tw_test_notes t = tw_test_notes_get(&notes);
	cr_expect_eq(t.delivered, 1, "delivered %u dead %u retrying %u: %s", t.delivered, t.dead, t.retrying,
		     t.last_error);
	cr_expect_eq(t.retrying, 0);
	ep_get(&e, &messages);
	cr_expect_eq(messages, 1, "the endpoint got %d messages", messages);
	ep_stop(&e);
	free(state);
	tw_test_tmpdir_free(tmp);
}

Test(faults_notify, slow_smtp_inside_the_timeout_delivers_once, .timeout = 30)
{
	expect_slow_delivered(SLOW_SMTP, TW_NOTIFY_EMAIL);
}

Test(faults_notify, slow_http_inside_the_timeout_delivers_once, .timeout = 30)
{
	expect_slow_delivered(SLOW_HTTP, TW_NOTIFY_HTTP);
}

/* Publishing is what the ingest loop does for every alarm and rule match: it must cost the same
 * whether the endpoint hangs or not. 100 publishes to a hanging SMTP endpoint (both delivery
 * threads stuck in it) against 100 to a local file, measured in the same test; the bound is loose
 * (machine noise) but a publish that waited for the endpoint would take 100 x 0.5 s. */
Test(faults_notify, publish_is_not_slowed_by_a_hanging_endpoint, .timeout = 60)
{
	enum { N = 100 };
	char *tmp = tw_test_tmpdir(), url[128];
	char *s1 = tw_test_join(tmp, "state-file"), *s2 = tw_test_join(tmp, "state-hang"), *out = tw_test_join(tmp, "out.jsonl");
	struct endpoint e;
	struct tw_notify_sub fs, hs;
	struct tw_test_notes n1, n2;
	struct tw_notify *n;
	double t0, t_file, t_hang;

	memset(&fs, 0, sizeof fs);
	fs.name = "file";
	fs.topic = "alarms";
	fs.proto = TW_NOTIFY_FILE;
	fs.endpoint = out;
	tw_test_notes_init(&n1);
	n = open_notify(s1, &fs, 1, &n1);
	t0 = now_s();
	for (int i = 0; i < N; i++)
		publish(n, "file");
	t_file = now_s() - t0;
	cr_expect(tw_notify_wait(n, 0, 10000));
	tw_notify_close(n);

	ep_start(&e, HANG);
	sub_for(&hs, TW_NOTIFY_EMAIL, e.port, url, sizeof url);
	hs.retry = NULL; /* the email default: retries for a long time */
	tw_test_notes_init(&n2);
	n = open_notify(s2, &hs, 1, &n2);
	t0 = now_s();
	for (int i = 0; i < N; i++)
		publish(n, "hang");
	t_hang = now_s() - t0;
	{ /* the delivery threads connect on their own schedule: give them up to 10 s to get there */
		double end = now_s() + 10;
		while (ep_get(&e, NULL) < 1 && now_s() < end) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	cr_expect_geq(ep_get(&e, NULL), 1, "the delivery threads never reached the endpoint");
	tw_notify_close(n); /* pending deliveries stay in the outbox */
	cr_log_info("100 publishes: %.3f s to a file endpoint, %.3f s to a hanging SMTP endpoint", t_file, t_hang);
	cr_expect(t_hang < 3 * t_file + 1.0, "publishing to a hanging endpoint took %.3f s (file: %.3f s)", t_hang,
		  t_file);
	ep_stop(&e);
	free(out);
	free(s1);
	free(s2);
	tw_test_tmpdir_free(tmp);
}
