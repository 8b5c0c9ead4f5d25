/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify.c: the notifier: configuration checks, publish into the durable outbox, the
 * delivery threads with their retry schedule, dead letters, recovery at open and compaction.
 * Protocol senders live in notify_smtp.c, notify_http.c and notify_local.c; the log's bytes in
 * notify_outbox.c. It never prints; outcomes reach the caller through callbacks and counters.
 *
 * Invariants:
 *   1. publish returns TW_OK only after the message's 'M' frame (listing its deliveries) is
 *      fsynced; a delivery ends only after its 'R' frame is fsynced (and, when dead, after its
 *      dead-letter line is fsynced first). Opening replays M minus R: exactly the unfinished
 *      deliveries are pending again.
 *   2. The at-least-once window: an endpoint that accepted a message (SMTP 250, HTTP 2xx, exit 0,
 *      the file written) before the 'R' frame reached the disk gets it again after a crash.
 *      The window is one fdatasync long. Maildir delivery closes it: the file name is derived from
 *      the message and subscription, and a name already in new/ or cur/ counts as delivered.
 *      Mail gets the same Message-ID on every attempt, so a mail client can fold a duplicate.
 *   3. Delivery state lives under `mu`; senders run without it (a slow endpoint blocks only its
 *      own worker). A delivery is `busy` while a worker attempts it; nobody else touches it then.
 *   4. After an outbox write fails the notifier is sticky-failed: publish answers TW_EIO (we never
 *      append after a tail we could not write); deliveries in memory continue.
 *   5. The log is compacted (rewritten with the pending messages, counters and live dedup keys)
 *      when it is at least compact_bytes and either nothing is pending any more or it has
 *      doubled since the previous compaction (so pending messages are not copied over and over).
 *
 * A delivery's life:
 *
 *     publish ──▶ PENDING ──attempt──▶ DELIVERED ('R' delivered)
 *                  ▲    │
 *                  │    ├─ transient failure, retries left, younger than max_age ──▶ RETRYING
 *                  └────┘        (next attempt after tw_notify_retry_delay +- jitter)
 *                       └─ permanent failure, or no retries/age left ──▶ DEAD (dead-letter line,
 *                                                                          then 'R' dead) */
#include "alerts/notify_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/time.h"

/* One (message, subscription) delivery. */
struct dlv {
	struct tw_notify_m *m; /* the message (a reference) */
	int si;                /* index of the subscription in n->subs; -1 when not configured */
	char *sub;             /* the subscription's name as recorded in the outbox (owned) */
	unsigned attempts;     /* attempts made since open (recovered deliveries start at 0) */
	int64_t next_at;       /* monotonic ms of the next attempt */
	int busy;              /* 1 while a worker attempts it */
	char error[256];       /* the last failure */
};

/* A dedup key seen within the window. */
struct dkey {
	char *key;    /* the key (owned) */
	int64_t ts;   /* when it was published (epoch ms) */
	char id[40];  /* the message it belongs to */
};

struct tw_notify {
	pthread_mutex_t mu;       /* guards everything below except the immutable configuration */
	pthread_cond_t work;      /* signalled when a delivery is added or the notifier stops */
	pthread_cond_t done;      /* broadcast when a delivery ends */
	char *state_dir;          /* the state directory */
	char *log_path;           /* STATE_DIR/outbox.log */
	char *dead_path;          /* the dead-letter file */
	int fd;                   /* the outbox log, O_APPEND */
	int lockfd;               /* STATE_DIR/lock, flock'ed */
	int sticky;               /* 1 after an outbox write failed (invariant 4) */
	struct tw_err sticky_err; /* that failure */
	struct tw_notify_s *subs; /* subscriptions (deep copies) */
	size_t nsubs;             /* entries in subs */
	char **topics;            /* topic names (owned) */
	char **display;           /* their display names (owned, may be NULL) */
	size_t ntopics;           /* entries in topics */
	struct dlv **d;           /* pending deliveries, in seq order */
	size_t nd, capd;          /* entries / allocated */
	struct dkey *dk;          /* dedup keys */
	size_t ndk, capdk;        /* entries / allocated */
	uint64_t next_seq;        /* the next message's sequence number */
	struct tw_notify_stats st; /* counters since open */
	uint64_t tot_published;   /* counters over the outbox's whole life (for the 'S' frame) */
	uint64_t tot_delivered;   /* ... */
	uint64_t tot_dead;        /* ... */
	uint64_t log_bytes;       /* current log size */
	uint64_t compacted_bytes; /* log size right after the last compaction */
	size_t max_message;       /* cap on a message's bytes */
	size_t max_pending;       /* cap on pending deliveries */
	int64_t dedup_window_ms;  /* dedup window */
	uint64_t compact_bytes;   /* compaction threshold */
	enum tw_notify_orphans orphans; /* what to do with deliveries of unknown subscriptions */
	void (*on_result)(void *ctx, const struct tw_notify_result *r); /* see the config */
	void *on_result_ctx;      /* ... */
	void (*on_dead)(void *ctx, const struct tw_notify_result *r); /* ... */
	void *on_dead_ctx;        /* ... */
	pthread_t *threads;       /* delivery threads */
	unsigned nthreads;        /* started threads */
	volatile int stop;        /* 1 when closing */
	uint64_t rnd;             /* xorshift state for jitter */
};

/* ---- small helpers ------------------------------------------------------------------------------ */

static int64_t now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tw_notify_iso_ms(int64_t ms, char *out)
{
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t rem = ms - days * 86400000, y;
	unsigned mo, d;

	tw_civil_from_days(days, &y, &mo, &d);
	snprintf(out, 32, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, mo, d, (int)(rem / 3600000),
		 (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

static void uuid4(char *out)
{
	unsigned char b[16];
	size_t got = 0;

	while (got < sizeof b) {
		ssize_t r = getrandom(b + got, sizeof b - got, 0);
		if (r > 0)
			got += (size_t)r;
		else if (errno != EINTR)
			break;
	}
	if (got < sizeof b) { /* no entropy source: time and address still make it unique enough */
		uint64_t t = (uint64_t)now_ms(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)out;
		memcpy(b, &t, 8);
		t = (uint64_t)now_ms(CLOCK_MONOTONIC) * 2654435761u;
		memcpy(b + 8, &t, 8);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
		 b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static uint64_t xrand(struct tw_notify *n)
{
	n->rnd ^= n->rnd << 13;
	n->rnd ^= n->rnd >> 7;
	n->rnd ^= n->rnd << 17;
	return n->rnd;
}

const char *tw_notify_proto_name(enum tw_notify_proto proto)
{
	switch (proto) {
	case TW_NOTIFY_EMAIL:
		return "email";
	case TW_NOTIFY_EMAIL_JSON:
		return "email-json";
	case TW_NOTIFY_HTTP:
		return "http";
	case TW_NOTIFY_HTTPS:
		return "https";
	case TW_NOTIFY_FILE:
		return "file";
	case TW_NOTIFY_MAILDIR:
		return "maildir";
	case TW_NOTIFY_EXEC:
		return "exec";
	}
	return NULL;
}

enum tw_notify_proto tw_notify_proto_parse(const char *name)
{
	for (int p = TW_NOTIFY_EMAIL; p <= TW_NOTIFY_EXEC; p++)
		if (!strcmp(tw_notify_proto_name((enum tw_notify_proto)p), name))
			return (enum tw_notify_proto)p;
	return (enum tw_notify_proto)0;
}

static void fmt_number(double v, char *out, size_t outsz)
{
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, outsz, "%.0f", v);
		return;
	}
	snprintf(out, outsz, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, outsz, "%.17g", v);
}

static void msg_free(struct tw_notify_m *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nattrs; i++) {
		free((char *)m->attrs[i].name);
		free((char *)m->attrs[i].str);
	}
	free(m->attrs);
	free(m->topic);
	free(m->subject);
	free(m->message);
	free(m->mime);
	free(m->dedup);
	free(m->sns);
	free(m);
}

static void msg_unref(struct tw_notify_m *m)
{
	if (m && --m->refs == 0)
		msg_free(m);
}

/* ---- the SNS JSON ------------------------------------------------------------------------------- */

static json_t *attrs_json(const struct tw_notify_attr *attrs, size_t nattrs)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < nattrs; i++) {
		char num[64];
		json_t *a = json_object();
		if (!a) {
			json_decref(o);
			return NULL;
		}
		if (attrs[i].is_number)
			fmt_number(attrs[i].num, num, sizeof num);
		json_object_set_new(a, "Type", json_string(attrs[i].is_number ? "Number" : "String"));
		json_object_set_new(a, "Value", json_string(attrs[i].is_number ? num : attrs[i].str));
		json_object_set_new(o, attrs[i].name, a);
	}
	return o;
}

enum tw_rc tw_notify_sns_build(const struct tw_notify_m *m, char **out, size_t *n, struct tw_err *err)
{
	char ts[32], arn[512];
	json_t *o = json_object();
	char *s;

	if (!o)
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	tw_notify_iso_ms(m->ts, ts);
	snprintf(arn, sizeof arn, "%s%s", TW_NOTIFY_ARN_PREFIX, m->topic);
	json_object_set_new(o, "Type", json_string("Notification"));
	json_object_set_new(o, "MessageId", json_string(m->id));
	json_object_set_new(o, "TopicArn", json_string(arn));
	if (m->subject)
		json_object_set_new(o, "Subject", json_string(m->subject));
	json_object_set_new(o, "Message", json_string(m->message));
	json_object_set_new(o, "Timestamp", json_string(ts));
	if (m->nattrs)
		json_object_set_new(o, "MessageAttributes", attrs_json(m->attrs, m->nattrs));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return tw_err_set(err, TW_ENOMEM, "notify: cannot build the JSON notification (invalid UTF-8 or out of memory)");
	*out = s;
	*n = strlen(s);
	return TW_OK;
}

/* ---- configuration ------------------------------------------------------------------------------ */

static char *pdup(struct tw_notify_s *s, const char *v)
{
	char *c;

	if (!v)
		return NULL;
	c = strdup(v);
	if (!c)
		return NULL;
	s->pool[s->npool++] = c;
	return c;
}

static void sub_free(struct tw_notify_s *s)
{
	for (size_t i = 0; i < s->npool; i++)
		free(s->pool[i]);
	free(s->pool);
	free((void *)s->c.argv);
	free((void *)s->c.smtp.recipients);
	free((void *)s->c.http.headers);
	free(s->name);
	tw_notify_policy_free(s->policy);
	memset(s, 0, sizeof *s);
}

static int bad_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int bad_address(const char *a)
{
	const char *at = a ? strchr(a, '@') : NULL;

	if (!a || !*a || !at || at == a || !at[1] || strlen(a) > 254)
		return 1;
	for (; *a; a++)
		if ((unsigned char)*a <= 0x20 || strchr("<>(),;:\"[]\\", *a) || *a == 0x7f)
			return 1;
	return 0;
}

static enum tw_rc sub_copy(const struct tw_notify_sub *c, const char *display, struct tw_notify_s *s, struct tw_err *err)
{
	size_t need = 16 + c->argc + c->smtp.nrecipients + c->http.nheaders;
	const char *pname = tw_notify_proto_name(c->proto);
	char name[512];

	memset(s, 0, sizeof *s);
	s->c = *c;
	s->pool = calloc(need, sizeof *s->pool);
	s->c.argv = NULL;
	s->c.smtp.recipients = NULL;
	s->c.http.headers = NULL;
	if (!s->pool)
		goto nomem;
	if (c->name)
		snprintf(name, sizeof name, "%s", c->name);
	else
		snprintf(name, sizeof name, "%s:%s", pname ? pname : "?", c->endpoint ? c->endpoint : "");
	if (!(s->name = strdup(name)))
		goto nomem;
#define DUP(f)                                  \
	do {                                    \
		if (c->f && !(s->c.f = pdup(s, c->f))) \
			goto nomem;             \
	} while (0)
	DUP(name);
	DUP(topic);
	DUP(endpoint);
	DUP(filter_policy);
	DUP(smtp.url);
	DUP(smtp.from);
	DUP(smtp.user);
	DUP(smtp.password.ref);
	DUP(smtp.ca_file);
	DUP(http.ca_file);
#undef DUP
	if (display && !(s->display_name = pdup(s, display)))
		goto nomem;
	if (c->argc) {
		const char **v = calloc(c->argc + 1, sizeof *v);
		if (!v)
			goto nomem;
		s->c.argv = v;
		for (size_t i = 0; i < c->argc; i++)
			if (!(v[i] = pdup(s, c->argv[i] ? c->argv[i] : "")))
				goto nomem;
	}
	if (c->smtp.nrecipients) {
		const char **v = calloc(c->smtp.nrecipients, sizeof *v);
		if (!v)
			goto nomem;
		s->c.smtp.recipients = v;
		for (size_t i = 0; i < c->smtp.nrecipients; i++)
			if (!(v[i] = pdup(s, c->smtp.recipients[i] ? c->smtp.recipients[i] : "")))
				goto nomem;
	}
	if (c->http.nheaders) {
		const char **v = calloc(c->http.nheaders, sizeof *v);
		if (!v)
			goto nomem;
		s->c.http.headers = v;
		for (size_t i = 0; i < c->http.nheaders; i++)
			if (!(v[i] = pdup(s, c->http.headers[i] ? c->http.headers[i] : "")))
				goto nomem;
	}
	if (c->retry)
		s->retry = *c->retry;
	else
		tw_notify_retry_default(c->proto, &s->retry);
	s->c.retry = &s->retry;
	if (!s->c.connect_timeout_ms)
		s->c.connect_timeout_ms = 10000;
	if (!s->c.timeout_ms)
		s->c.timeout_ms = 30000;
	return TW_OK;
nomem:
	return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
}

static enum tw_rc sub_check(const struct tw_notify_s *s, struct tw_err *err)
{
	const struct tw_notify_sub *c = &s->c;
	const char *ep = c->endpoint;
	const struct tw_notify_retry *r = &s->retry;

	if (!tw_notify_proto_name(c->proto))
		return tw_err_set(err, TW_EINVAL, "subscription %s: unknown protocol %d", s->name, (int)c->proto);
	if (!ep || !*ep || bad_text(ep))
		return tw_err_set(err, TW_EINVAL, "subscription %s: missing or invalid endpoint", s->name);
	if (r->num_retries >= TW_NOTIFY_MAX_ATTEMPTS || r->jitter_pct > 50 || r->min_delay_ms < 0 ||
	    r->max_delay_ms < r->min_delay_ms || r->max_age_ms < 0)
		return tw_err_set(err, TW_EINVAL,
				  "subscription %s: retry policy: need retries < %u, jitter <= 50 %%, 0 <= min delay <= max delay",
				  s->name, TW_NOTIFY_MAX_ATTEMPTS);
	switch (c->proto) {
	case TW_NOTIFY_EMAIL:
	case TW_NOTIFY_EMAIL_JSON:
		if (!c->smtp.url || (strncmp(c->smtp.url, "smtp://", 7) && strncmp(c->smtp.url, "smtps://", 8)) ||
		    bad_text(c->smtp.url))
			return tw_err_set(err, TW_EINVAL, "subscription %s: smtp url: expected smtp://HOST[:PORT] or smtps://HOST[:PORT]",
					  s->name);
		if (bad_address(c->smtp.from))
			return tw_err_set(err, TW_EINVAL, "subscription %s: from: missing or invalid address", s->name);
		if (c->smtp.user && (bad_text(c->smtp.user) || c->smtp.password.from == TW_SECRET_NONE))
			return tw_err_set(err, TW_EINVAL, "subscription %s: smtp user given without a password secret", s->name);
		/* fallthrough: the recipients */
		/* FALLTHROUGH */
	case TW_NOTIFY_MAILDIR:
		if (c->smtp.from && bad_address(c->smtp.from))
			return tw_err_set(err, TW_EINVAL, "subscription %s: from: invalid address \"%s\"", s->name, c->smtp.from);
		for (size_t i = 0; i < c->smtp.nrecipients; i++)
			if (bad_address(c->smtp.recipients[i]))
				return tw_err_set(err, TW_EINVAL, "subscription %s: recipient %zu: invalid address \"%s\"", s->name,
						  i + 1, c->smtp.recipients[i]);
		if (c->proto != TW_NOTIFY_MAILDIR && !c->smtp.nrecipients && bad_address(ep))
			return tw_err_set(err, TW_EINVAL, "subscription %s: endpoint: invalid address \"%s\"", s->name, ep);
		return TW_OK;
	case TW_NOTIFY_HTTP:
	case TW_NOTIFY_HTTPS:
		if (strncmp(ep, c->proto == TW_NOTIFY_HTTP ? "http://" : "https://", c->proto == TW_NOTIFY_HTTP ? 7 : 8))
			return tw_err_set(err, TW_EINVAL, "subscription %s: endpoint must start with %s://", s->name,
					  tw_notify_proto_name(c->proto));
		for (size_t i = 0; i < c->http.nheaders; i++)
			if (bad_text(c->http.headers[i]) || !strchr(c->http.headers[i], ':'))
				return tw_err_set(err, TW_EINVAL, "subscription %s: header %zu: expected \"Name: value\"", s->name,
						  i + 1);
		return TW_OK;
	case TW_NOTIFY_EXEC:
		if (!strchr(c->argv ? c->argv[0] : ep, '/'))
			return tw_err_set(err, TW_EINVAL,
					  "subscription %s: exec: give the program's path (no shell, no PATH search)", s->name);
		return TW_OK;
	case TW_NOTIFY_FILE:
		return TW_OK;
	}
	return TW_OK;
}

/* ---- outbox records ----------------------------------------------------------------------------- */

static enum tw_rc append_json(struct tw_notify *n, int type, json_t *o, struct tw_err *err)
{
	char *s = json_dumps(o, JSON_COMPACT);
	size_t len;
	enum tw_rc rc;

	json_decref(o);
	if (!s)
		return tw_err_set(err, TW_ENOMEM, "outbox: cannot encode a record (out of memory or invalid UTF-8)");
	len = strlen(s);
	rc = tw_notify_frame_append(n->fd, type, s, len, 1, err);
	free(s);
	if (rc) {
		tw_err_prefix(err, "%s", n->log_path);
		if (rc == TW_EIO) {
			n->sticky = 1;
			n->sticky_err = *err;
		}
		return rc;
	}
	n->log_bytes += 9 + len;
	return TW_OK;
}

static json_t *msg_json(const struct tw_notify_m *m, json_t *subs, int carried)
{
	json_t *o = json_object();

	json_object_set_new(o, "seq", json_integer((json_int_t)m->seq));
	json_object_set_new(o, "id", json_string(m->id));
	json_object_set_new(o, "topic", json_string(m->topic));
	if (m->subject)
		json_object_set_new(o, "subject", json_string(m->subject));
	json_object_set_new(o, "message", json_string(m->message));
	json_object_set_new(o, "attrs", attrs_json(m->attrs, m->nattrs));
	if (m->mime)
		json_object_set_new(o, "mime", json_string(m->mime));
	if (m->dedup)
		json_object_set_new(o, "dedup", json_string(m->dedup));
	json_object_set_new(o, "ts", json_integer(m->ts));
	json_object_set_new(o, "subs", subs);
	if (carried)
		json_object_set_new(o, "carried", json_true());
	return o;
}

static enum tw_rc fsync_dir(const char *dir, struct tw_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return tw_err_set(err, TW_EIO, "%s: fsync: %s", dir, strerror(e));
	}
	close(fd);
	return TW_OK;
}

static void dedup_prune(struct tw_notify *n, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < n->ndk; i++) {
		if (n->dk[i].ts + n->dedup_window_ms <= now) {
			free(n->dk[i].key);
			continue;
		}
		n->dk[k++] = n->dk[i];
	}
	n->ndk = k;
}

static enum tw_rc dedup_add(struct tw_notify *n, const char *key, int64_t ts, const char *id, struct tw_err *err)
{
	if (n->ndk >= TW_NOTIFY_MAX_DEDUP) { /* bounded: the oldest key is forgotten first */
		free(n->dk[0].key);
		memmove(n->dk, n->dk + 1, (n->ndk - 1) * sizeof *n->dk);
		n->ndk--;
	}
	if (n->ndk == n->capdk) {
		size_t nc = n->capdk ? n->capdk * 2 : 16;
		struct dkey *nk = realloc(n->dk, nc * sizeof *nk);
		if (!nk)
			return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
		n->dk = nk;
		n->capdk = nc;
	}
	if (!(n->dk[n->ndk].key = strdup(key)))
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	n->dk[n->ndk].ts = ts;
	snprintf(n->dk[n->ndk].id, sizeof n->dk[n->ndk].id, "%s", id);
	n->ndk++;
	return TW_OK;
}

/* Rewrites the log with what is still needed (invariant 5). Called with mu held. */
static enum tw_rc compact(struct tw_notify *n, struct tw_err *err)
{
	char tmp[4200];
	int fd, old = n->fd;
	enum tw_rc rc;
	json_t *o;
	struct stat st;

	snprintf(tmp, sizeof tmp, "%s.tmp", n->log_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return tw_err_set(err, TW_EIO, "%s: %s", tmp, strerror(errno));
	n->fd = fd;
	rc = tw_notify_outbox_header(fd, err);
	o = json_object();
	json_object_set_new(o, "next_seq", json_integer((json_int_t)n->next_seq));
	json_object_set_new(o, "published", json_integer((json_int_t)n->tot_published));
	json_object_set_new(o, "delivered", json_integer((json_int_t)n->tot_delivered));
	json_object_set_new(o, "dead", json_integer((json_int_t)n->tot_dead));
	if (!rc)
		rc = append_json(n, TW_NOTIFY_F_STATE, o, err);
	else
		json_decref(o);
	dedup_prune(n, now_ms(CLOCK_REALTIME));
	for (size_t i = 0; !rc && i < n->ndk; i++) {
		o = json_object();
		json_object_set_new(o, "key", json_string(n->dk[i].key));
		json_object_set_new(o, "ts", json_integer(n->dk[i].ts));
		json_object_set_new(o, "id", json_string(n->dk[i].id));
		rc = append_json(n, TW_NOTIFY_F_DEDUP, o, err);
	}
	for (size_t i = 0; !rc && i < n->nd;) {
		struct tw_notify_m *m = n->d[i]->m;
		json_t *subs = json_array();
		for (; i < n->nd && n->d[i]->m == m; i++)
			json_array_append_new(subs, json_string(n->d[i]->sub));
		rc = append_json(n, TW_NOTIFY_F_MSG, msg_json(m, subs, 1), err);
	}
	n->fd = old;
	if (!rc && fdatasync(fd))
		rc = tw_err_set(err, TW_EIO, "%s: fsync: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, n->log_path))
		rc = tw_err_set(err, TW_EIO, "%s: rename: %s", tmp, strerror(errno));
	if (rc) {
		close(fd);
		unlink(tmp);
		n->sticky = 0; /* the live log was not touched: only the copy failed */
		return rc;
	}
	rc = fsync_dir(n->state_dir, err);
	close(old);
	n->fd = fd;
	if (!fstat(fd, &st))
		n->log_bytes = (uint64_t)st.st_size;
	n->compacted_bytes = n->log_bytes;
	n->st.compactions++;
	return rc;
}

static void maybe_compact(struct tw_notify *n)
{
	struct tw_err e = { 0 };

	if (n->sticky || n->log_bytes < n->compact_bytes)
		return;
	/* Everything done: the rewrite is a few bytes. Else only once the log has doubled. */
	if (n->nd && n->log_bytes < 2 * n->compacted_bytes)
		return;
	if (!n->nd && n->log_bytes == n->compacted_bytes)
		return;
	/* A failed compaction leaves the live log as it was: nothing to undo, try again later. */
	if (compact(n, &e))
		n->compacted_bytes = n->log_bytes;
}

/* ---- recovery ----------------------------------------------------------------------------------- */

static enum tw_rc add_dlv(struct tw_notify *n, struct tw_notify_m *m, int si, const char *sub, struct tw_err *err)
{
	struct dlv *d;

	if (n->nd == n->capd) {
		size_t nc = n->capd ? n->capd * 2 : 64;
		struct dlv **nv = realloc(n->d, nc * sizeof *nv);
		if (!nv)
			return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
		n->d = nv;
		n->capd = nc;
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->sub = strdup(sub))) {
		free(d);
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	}
	d->m = m;
	d->si = si;
	m->refs++;
	n->d[n->nd++] = d;
	return TW_OK;
}

static void remove_dlv(struct tw_notify *n, size_t i)
{
	struct dlv *d = n->d[i];

	memmove(n->d + i, n->d + i + 1, (n->nd - i - 1) * sizeof *n->d);
	n->nd--;
	msg_unref(d->m);
	free(d->sub);
	free(d);
}

static int find_sub(const struct tw_notify *n, const char *name)
{
	for (size_t i = 0; i < n->nsubs; i++)
		if (!strcmp(n->subs[i].name, name))
			return (int)i;
	return -1;
}

static char *jdup(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strdup(s) : NULL;
}

static enum tw_rc load_msg(struct tw_notify *n, json_t *j, struct tw_err *err)
{
	struct tw_notify_m *m = calloc(1, sizeof *m);
	json_t *attrs = json_object_get(j, "attrs"), *subs = json_object_get(j, "subs"), *v;
	const char *k;
	enum tw_rc rc = TW_OK;

	if (!m)
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	m->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
	snprintf(m->id, sizeof m->id, "%s", json_string_value(json_object_get(j, "id")) ? json_string_value(json_object_get(j, "id")) : "");
	m->topic = jdup(j, "topic");
	m->subject = jdup(j, "subject");
	m->message = jdup(j, "message");
	m->mime = jdup(j, "mime");
	m->dedup = jdup(j, "dedup");
	m->ts = (int64_t)json_integer_value(json_object_get(j, "ts"));
	m->attrs = calloc(json_object_size(attrs) + 1, sizeof *m->attrs);
	if (!m->topic || !m->message || !m->attrs) {
		unsigned long long seq = (unsigned long long)m->seq; /* m is freed before the message */
		msg_free(m);
		return tw_err_set(err, TW_ECORRUPT, "%s: message %llu: missing topic or message", n->log_path, seq);
	}
	json_object_foreach(attrs, k, v) {
		struct tw_notify_attr *a = &m->attrs[m->nattrs++];
		const char *val = json_string_value(json_object_get(v, "Value"));
		const char *type = json_string_value(json_object_get(v, "Type"));
		a->name = strdup(k);
		a->is_number = type && !strcmp(type, "Number");
		if (a->is_number)
			a->num = strtod(val ? val : "0", NULL);
		else
			a->str = strdup(val ? val : "");
		if (!a->name || (!a->is_number && !a->str))
			rc = TW_ENOMEM;
	}
	if (!rc && tw_notify_sns_build(m, &m->sns, &m->nsns, err))
		rc = TW_ENOMEM;
	if (rc) {
		msg_free(m);
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	}
	m->refs = 1; /* held while adding its deliveries */
	for (size_t i = 0; i < json_array_size(subs) && !rc; i++) {
		const char *sn = json_string_value(json_array_get(subs, i));
		if (sn)
			rc = add_dlv(n, m, find_sub(n, sn), sn, err);
	}
	if (m->dedup && !rc)
		rc = dedup_add(n, m->dedup, m->ts, m->id, err);
	if (m->seq >= n->next_seq)
		n->next_seq = m->seq + 1;
	if (!json_is_true(json_object_get(j, "carried")))
		n->tot_published++;
	msg_unref(m);
	return rc;
}

static enum tw_rc load_frame(void *ctx, int type, const char *p, size_t len, struct tw_err *err)
{
	struct tw_notify *n = ctx;
	json_error_t je;
	json_t *j = json_loadb(p, len, 0, &je);
	enum tw_rc rc = TW_OK;

	if (!j)
		return tw_err_set(err, TW_ECORRUPT, "%s: a record with a good CRC is not JSON: %s", n->log_path, je.text);
	if (type == TW_NOTIFY_F_MSG) {
		rc = load_msg(n, j, err);
	} else if (type == TW_NOTIFY_F_RESULT) {
		uint64_t seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
		const char *sub = json_string_value(json_object_get(j, "sub"));
		const char *state = json_string_value(json_object_get(j, "state"));
		for (size_t i = 0; sub && i < n->nd; i++)
			if (n->d[i]->m->seq == seq && !strcmp(n->d[i]->sub, sub)) {
				remove_dlv(n, i);
				break;
			}
		if (state && !strcmp(state, "delivered"))
			n->tot_delivered++;
		else
			n->tot_dead++;
	} else if (type == TW_NOTIFY_F_STATE) {
		uint64_t ns = (uint64_t)json_integer_value(json_object_get(j, "next_seq"));
		if (ns > n->next_seq)
			n->next_seq = ns;
		n->tot_published += (uint64_t)json_integer_value(json_object_get(j, "published"));
		n->tot_delivered += (uint64_t)json_integer_value(json_object_get(j, "delivered"));
		n->tot_dead += (uint64_t)json_integer_value(json_object_get(j, "dead"));
	} else if (type == TW_NOTIFY_F_DEDUP) {
		const char *key = json_string_value(json_object_get(j, "key"));
		const char *id = json_string_value(json_object_get(j, "id"));
		if (key)
			rc = dedup_add(n, key, (int64_t)json_integer_value(json_object_get(j, "ts")), id ? id : "", err);
	}
	json_decref(j);
	return rc;
}

static enum tw_rc open_log(struct tw_notify *n, struct tw_err *err)
{
	uint64_t good = 0, size = 0;
	enum tw_rc rc;
	int fresh = 0;

	n->fd = open(n->log_path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (n->fd < 0 && errno == ENOENT) {
		n->fd = open(n->log_path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		fresh = 1;
	}
	if (n->fd < 0)
		return tw_err_set(err, TW_EIO, "%s: %s", n->log_path, strerror(errno));
	if (fresh) {
		if ((rc = tw_notify_outbox_header(n->fd, err)) || fdatasync(n->fd) || fsync_dir(n->state_dir, err))
			return rc ? rc : tw_err_set(err, TW_EIO, "%s: %s", n->log_path, strerror(errno));
		n->log_bytes = 8;
		n->next_seq = 1;
		return TW_OK;
	}
	n->next_seq = 1;
	rc = tw_notify_frame_scan(n->fd, load_frame, n, &good, &size, err);
	if (rc) {
		if (strncmp(err->msg, n->log_path, strlen(n->log_path)))
			tw_err_prefix(err, "%s", n->log_path);
		return rc;
	}
	if (good < size) { /* a torn tail (invariant 2 of notify_outbox.c): cut it */
		n->st.torn_bytes = size - good;
		if (ftruncate(n->fd, (off_t)good) || fdatasync(n->fd))
			return tw_err_set(err, TW_EIO, "%s: cannot cut the torn tail: %s", n->log_path, strerror(errno));
	}
	n->log_bytes = good;
	return TW_OK;
}

/* ---- delivery ----------------------------------------------------------------------------------- */

/* What a callback is told, kept alive (a message reference) until it has been called. */
struct note {
	struct tw_notify_m *m;      /* reference held */
	char sub[256];              /* subscription name */
	enum tw_notify_proto proto; /* its protocol */
	enum tw_notify_state state; /* outcome */
	unsigned attempts;          /* attempts so far */
	char error[256];            /* last failure */
};

static void note_fill(struct note *nt, struct tw_notify *n, const struct dlv *d, enum tw_notify_state state)
{
	nt->m = d->m;
	d->m->refs++;
	snprintf(nt->sub, sizeof nt->sub, "%s", d->sub);
	nt->proto = d->si >= 0 ? n->subs[d->si].c.proto : (enum tw_notify_proto)0;
	nt->state = state;
	nt->attempts = d->attempts;
	snprintf(nt->error, sizeof nt->error, "%s", d->error);
}

/* Calls the callbacks without the lock, then drops the reference (with the lock). */
static void note_emit(struct tw_notify *n, struct note *nt)
{
	struct tw_notify_result r = { nt->m->id, nt->m->topic, nt->m->subject ? nt->m->subject : "", nt->sub,
				      nt->proto, nt->state, nt->attempts, nt->error };

	pthread_mutex_unlock(&n->mu);
	if (n->on_result)
		n->on_result(n->on_result_ctx, &r);
	if (nt->state == TW_NOTIFY_DEAD && n->on_dead)
		n->on_dead(n->on_dead_ctx, &r);
	pthread_mutex_lock(&n->mu);
	msg_unref(nt->m);
}

static enum tw_rc write_dead_letter(struct tw_notify *n, const struct dlv *d, struct tw_err *err)
{
	json_error_t je;
	json_t *o = json_object(), *msg = json_loadb(d->m->sns, d->m->nsns, 0, &je), *sub = json_object();
	char ts[32], *line;
	size_t len;
	int fd;
	enum tw_rc rc = TW_OK;

	tw_notify_iso_ms(now_ms(CLOCK_REALTIME), ts);
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "message", msg ? msg : json_string(d->m->message));
	json_object_set_new(sub, "name", json_string(d->sub));
	json_object_set_new(sub, "topic", json_string(d->m->topic));
	if (d->si >= 0) {
		json_object_set_new(sub, "protocol", json_string(tw_notify_proto_name(n->subs[d->si].c.proto)));
		json_object_set_new(sub, "endpoint", json_string(n->subs[d->si].c.endpoint));
	}
	json_object_set_new(o, "subscription", sub);
	json_object_set_new(o, "attempts", json_integer(d->attempts));
	json_object_set_new(o, "error", json_string(d->error));
	if (d->m->mime)
		json_object_set_new(o, "mime", json_string(d->m->mime));
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!line)
		return tw_err_set(err, TW_ENOMEM, "dead letter: out of memory");
	len = strlen(line);
	line[len] = '\n'; /* json_dumps' NUL becomes the newline; write len + 1 bytes */
	fd = open(n->dead_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = tw_err_set(err, TW_EIO, "%s: %s", n->dead_path, strerror(errno));
	else if (write(fd, line, len + 1) != (ssize_t)(len + 1) || fdatasync(fd))
		rc = tw_err_set(err, TW_EIO, "%s: write: %s", n->dead_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(line);
	return rc;
}

/* Ends delivery i as delivered or dead (invariant 1). Called with mu held; fills *nt for the
 * callbacks. Returns 0, or -1 when the dead letter could not be written (the delivery stays). */
static int finish(struct tw_notify *n, size_t i, enum tw_notify_state state, struct note *nt)
{
	struct dlv *d = n->d[i];
	struct tw_err e = { 0 };
	json_t *o;

	if (state == TW_NOTIFY_DEAD && write_dead_letter(n, d, &e)) {
		char was[sizeof d->error];
		memcpy(was, d->error, sizeof was);
		snprintf(d->error, sizeof d->error, "%.80s (and the dead letter could not be written: %.120s)", was, e.msg);
		d->next_at = now_ms(CLOCK_MONOTONIC) + 5000;
		return -1;
	}
	o = json_object();
	json_object_set_new(o, "seq", json_integer((json_int_t)d->m->seq));
	json_object_set_new(o, "sub", json_string(d->sub));
	json_object_set_new(o, "state", json_string(state == TW_NOTIFY_DELIVERED ? "delivered" : "dead"));
	json_object_set_new(o, "attempts", json_integer(d->attempts));
	if (d->error[0])
		json_object_set_new(o, "error", json_string(d->error));
	/* A failure here makes the notifier sticky (publish refuses); the delivery is still over
	 * in memory and will be attempted again after a restart (at least once). */
	if (!n->sticky)
		append_json(n, TW_NOTIFY_F_RESULT, o, &e);
	else
		json_decref(o);
	note_fill(nt, n, d, state);
	if (state == TW_NOTIFY_DELIVERED) {
		n->st.delivered++;
		n->tot_delivered++;
	} else {
		n->st.dead++;
		n->tot_dead++;
	}
	remove_dlv(n, i);
	pthread_cond_broadcast(&n->done);
	maybe_compact(n);
	return 0;
}

static enum tw_notify_outcome attempt(struct tw_notify_attempt *a)
{
	switch (a->s->c.proto) {
	case TW_NOTIFY_EMAIL:
	case TW_NOTIFY_EMAIL_JSON:
		return tw_notify_smtp_deliver(a);
	case TW_NOTIFY_HTTP:
	case TW_NOTIFY_HTTPS:
		return tw_notify_http_deliver(a);
	case TW_NOTIFY_FILE:
		return tw_notify_file_deliver(a);
	case TW_NOTIFY_MAILDIR:
		return tw_notify_maildir_deliver(a);
	case TW_NOTIFY_EXEC:
		return tw_notify_exec_deliver(a);
	}
	snprintf(a->error, sizeof a->error, "unknown protocol");
	return TW_NOTIFY_PERMANENT;
}

static int schedulable(const struct tw_notify *n, const struct dlv *d)
{
	return !d->busy && (d->si >= 0 || n->orphans == TW_NOTIFY_ORPHANS_DEAD);
}

static void drain_sigpipe(void)
{
	sigset_t set;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	while (sigtimedwait(&set, NULL, &zero) > 0) {
	}
}

static void *worker(void *arg)
{
	struct tw_notify *n = arg;
	sigset_t set;

	/* A peer closing a pipe or socket under us must not kill the process: SIGPIPE stays
	 * pending on this thread and is drained after each attempt. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		struct dlv *best = NULL;
		size_t bi = 0;
		int64_t now;
		for (size_t i = 0; i < n->nd; i++)
			if (schedulable(n, n->d[i]) && (!best || n->d[i]->next_at < best->next_at)) {
				best = n->d[i];
				bi = i;
			}
		if (!best) {
			pthread_cond_wait(&n->work, &n->mu);
			continue;
		}
		now = now_ms(CLOCK_MONOTONIC);
		if (best->next_at > now) {
			struct timespec ts;
			int64_t wait = best->next_at - now;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&n->work, &n->mu, &ts);
			continue;
		}
		struct note nt;
		if (best->si < 0) {
			snprintf(best->error, sizeof best->error, "subscription %s is no longer configured", best->sub);
			if (!finish(n, bi, TW_NOTIFY_DEAD, &nt))
				note_emit(n, &nt);
			continue;
		}
		const struct tw_notify_s *s = &n->subs[best->si];
		struct tw_notify_attempt a = { best->m, s, best->attempts + 1, &n->stop, { 0 } };
		enum tw_notify_outcome out;
		best->busy = 1;
		pthread_mutex_unlock(&n->mu);
		out = attempt(&a);
		drain_sigpipe();
		pthread_mutex_lock(&n->mu);
		best->busy = 0;
		if (out == TW_NOTIFY_ABORTED)
			continue;
		for (bi = 0; bi < n->nd && n->d[bi] != best; bi++) {
		}
		best->attempts++;
		snprintf(best->error, sizeof best->error, "%s", out == TW_NOTIFY_OK ? "" : a.error);
		if (out == TW_NOTIFY_OK) {
			if (!finish(n, bi, TW_NOTIFY_DELIVERED, &nt))
				note_emit(n, &nt);
			continue;
		}
		int64_t delay = tw_notify_retry_delay(&s->retry, best->attempts);
		int64_t age = now_ms(CLOCK_REALTIME) - best->m->ts;
		if (out == TW_NOTIFY_PERMANENT || delay < 0 || (s->retry.max_age_ms && age >= s->retry.max_age_ms)) {
			if (out != TW_NOTIFY_PERMANENT && delay >= 0)
				snprintf(best->error, sizeof best->error, "%.200s (older than the retry policy's max age)", a.error);
			if (!finish(n, bi, TW_NOTIFY_DEAD, &nt))
				note_emit(n, &nt);
			continue;
		}
		if (delay > 0 && s->retry.jitter_pct) {
			int64_t span = delay * (int64_t)s->retry.jitter_pct / 100;
			if (span > 0)
				delay += (int64_t)(xrand(n) % (uint64_t)(2 * span + 1)) - span;
		}
		best->next_at = now_ms(CLOCK_MONOTONIC) + delay;
		n->st.retried++;
		note_fill(&nt, n, best, TW_NOTIFY_RETRYING);
		note_emit(n, &nt);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* ---- open, close, publish ----------------------------------------------------------------------- */

static enum tw_rc mkdir_p(const char *dir, struct tw_err *err)
{
	char p[4096];
	size_t len = strlen(dir);

	if (len >= sizeof p)
		return tw_err_set(err, TW_ELIMIT, "%s: path too long", dir);
	memcpy(p, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		char c = p[i];
		p[i] = 0;
		if (mkdir(p, 0700) && errno != EEXIST)
			return tw_err_set(err, TW_EIO, "%s: mkdir: %s", p, strerror(errno));
		p[i] = c;
	}
	return TW_OK;
}

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

void tw_notify_close(struct tw_notify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = 1;
	pthread_cond_broadcast(&n->work);
	pthread_mutex_unlock(&n->mu);
	for (unsigned i = 0; i < n->nthreads; i++)
		pthread_join(n->threads[i], NULL);
	free(n->threads);
	while (n->nd)
		remove_dlv(n, n->nd - 1);
	free(n->d);
	for (size_t i = 0; i < n->ndk; i++)
		free(n->dk[i].key);
	free(n->dk);
	for (size_t i = 0; i < n->nsubs; i++)
		sub_free(&n->subs[i]);
	free(n->subs);
	for (size_t i = 0; i < n->ntopics; i++) {
		free(n->topics[i]);
		free(n->display[i]);
	}
	free(n->topics);
	free(n->display);
	if (n->fd >= 0)
		close(n->fd);
	if (n->lockfd >= 0)
		close(n->lockfd);
	free(n->state_dir);
	free(n->log_path);
	free(n->dead_path);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->work);
	pthread_cond_destroy(&n->done);
	free(n);
}

static int topic_index(const struct tw_notify *n, const char *name)
{
	for (size_t i = 0; i < n->ntopics; i++)
		if (!strcmp(n->topics[i], name))
			return (int)i;
	return -1;
}

static int bad_topic_name(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > 256)
		return 1;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return 1;
	return 0;
}

static enum tw_rc configure(struct tw_notify *n, const struct tw_notify_config *cfg, struct tw_err *err)
{
	enum tw_rc rc;

	n->topics = calloc(cfg->ntopics + 1, sizeof *n->topics);
	n->display = calloc(cfg->ntopics + 1, sizeof *n->display);
	n->subs = calloc(cfg->nsubs + 1, sizeof *n->subs);
	if (!n->topics || !n->display || !n->subs)
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	for (size_t i = 0; i < cfg->ntopics; i++) {
		const char *name = cfg->topics[i].name;
		if (!name || bad_topic_name(name))
			return tw_err_set(err, TW_EINVAL, "topic %zu: name \"%s\": expected 1 to 256 of A-Z a-z 0-9 - _", i + 1,
					  name ? name : "");
		if (topic_index(n, name) >= 0)
			return tw_err_set(err, TW_EINVAL, "topic %s: configured twice", name);
		if (!(n->topics[i] = strdup(name)) ||
		    (cfg->topics[i].display_name && !(n->display[i] = strdup(cfg->topics[i].display_name))))
			return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
		n->ntopics++;
	}
	for (size_t i = 0; i < cfg->nsubs; i++) {
		const struct tw_notify_sub *c = &cfg->subs[i];
		int t = c->topic ? topic_index(n, c->topic) : -1;
		struct tw_notify_s *s = &n->subs[i];
		if ((rc = sub_copy(c, t >= 0 ? n->display[t] : NULL, s, err)))
			return rc;
		n->nsubs++;
		if (t < 0)
			return tw_err_set(err, TW_EINVAL, "subscription %s: topic \"%s\" is not configured", s->name,
					  c->topic ? c->topic : "");
		if ((rc = sub_check(s, err)))
			return rc;
		if (find_sub(n, s->name) != (int)i)
			return tw_err_set(err, TW_EINVAL, "subscription %s: two subscriptions have this name", s->name);
		if (c->filter_policy && (rc = tw_notify_policy_parse(c->filter_policy, strlen(c->filter_policy), &s->policy, err))) {
			tw_err_prefix(err, "subscription %s", s->name);
			return rc;
		}
	}
	return TW_OK;
}

enum tw_rc tw_notify_open(const struct tw_notify_config *cfg, struct tw_notify **out, struct tw_err *err)
{
	struct tw_notify *n;
	enum tw_rc rc;
	char *lock_path = NULL;

	if (!cfg->state_dir || !*cfg->state_dir)
		return tw_err_set(err, TW_EINVAL, "notify: no state directory");
	n = calloc(1, sizeof *n);
	if (!n)
		return tw_err_set(err, TW_ENOMEM, "notify: out of memory");
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->work, NULL);
	pthread_cond_init(&n->done, NULL);
	n->fd = n->lockfd = -1;
	n->max_message = cfg->max_message ? cfg->max_message : TW_NOTIFY_MAX_MESSAGE_DEFAULT;
	n->max_pending = cfg->max_pending ? cfg->max_pending : TW_NOTIFY_MAX_PENDING_DEFAULT;
	n->dedup_window_ms = cfg->dedup_window_ms > 0 ? cfg->dedup_window_ms : 300000;
	n->compact_bytes = cfg->compact_bytes ? cfg->compact_bytes : (1u << 20);
	n->orphans = cfg->orphans;
	n->on_result = cfg->on_result;
	n->on_result_ctx = cfg->on_result_ctx;
	n->on_dead = cfg->on_dead;
	n->on_dead_ctx = cfg->on_dead_ctx;
	n->rnd = (uint64_t)now_ms(CLOCK_MONOTONIC) * 0x9e3779b97f4a7c15ull | 1;
	if ((rc = configure(n, cfg, err)))
		goto fail;
	if ((rc = mkdir_p(cfg->state_dir, err)))
		goto fail;
	n->state_dir = strdup(cfg->state_dir);
	n->log_path = join(cfg->state_dir, TW_NOTIFY_OUTBOX_NAME);
	n->dead_path = cfg->dead_letter_path ? strdup(cfg->dead_letter_path) : join(cfg->state_dir, "dead-letters.jsonl");
	lock_path = join(cfg->state_dir, "lock");
	if (!n->state_dir || !n->log_path || !n->dead_path || !lock_path) {
		rc = tw_err_set(err, TW_ENOMEM, "notify: out of memory");
		goto fail;
	}
	n->lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (n->lockfd < 0) {
		rc = tw_err_set(err, TW_EIO, "%s: %s", lock_path, strerror(errno));
		goto fail;
	}
	if (flock(n->lockfd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? tw_err_set(err, TW_EBUSY, "%s: the notifier state is in use by another process",
						       cfg->state_dir)
					  : tw_err_set(err, TW_EIO, "%s: flock: %s", lock_path, strerror(errno));
		goto fail;
	}
	if ((rc = open_log(n, err)))
		goto fail;
	n->compacted_bytes = n->log_bytes;
	n->st.pending = n->st.recovered = n->nd;
	if (!cfg->no_delivery) {
		unsigned want = cfg->workers ? cfg->workers : 2;
		tw_notify_curl_init();
		n->threads = calloc(want, sizeof *n->threads);
		if (!n->threads) {
			rc = tw_err_set(err, TW_ENOMEM, "notify: out of memory");
			goto fail;
		}
		for (unsigned i = 0; i < want; i++) {
			if (pthread_create(&n->threads[i], NULL, worker, n)) {
				rc = tw_err_set(err, TW_ENOMEM, "notify: cannot start a delivery thread: %s", strerror(errno));
				goto fail;
			}
			n->nthreads++;
		}
	}
	free(lock_path);
	*out = n;
	return TW_OK;
fail:
	free(lock_path);
	tw_notify_close(n);
	return rc;
}

/* 1 when s is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF): JSON needs it. */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned c = *p, need, cp;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07;
		else
			return 0;
		for (unsigned i = 1; i <= need; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		p += need + 1;
	}
	return 1;
}

static enum tw_rc check_msg(const struct tw_notify *n, const struct tw_notify_msg *msg, struct tw_err *err)
{
	size_t total;

	if (!msg->topic || topic_index(n, msg->topic) < 0)
		return tw_err_set(err, TW_EINVAL, "publish: topic \"%s\" is not configured", msg->topic ? msg->topic : "");
	if (!msg->message || !*msg->message)
		return tw_err_set(err, TW_EINVAL, "publish: the message text is empty");
	if (msg->subject && strlen(msg->subject) > TW_NOTIFY_MAX_SUBJECT)
		return tw_err_set(err, TW_ELIMIT, "publish: subject of %zu bytes (at most %u)", strlen(msg->subject),
				  TW_NOTIFY_MAX_SUBJECT);
	if (msg->nattrs > TW_NOTIFY_MAX_ATTRS)
		return tw_err_set(err, TW_ELIMIT, "publish: %zu attributes (at most %u)", msg->nattrs, TW_NOTIFY_MAX_ATTRS);
	total = strlen(msg->message) + (msg->subject ? strlen(msg->subject) : 0) + (msg->mime ? strlen(msg->mime) : 0);
	for (size_t i = 0; i < msg->nattrs; i++) {
		const struct tw_notify_attr *a = &msg->attrs[i];
		if (!a->name || !*a->name || (!a->is_number && !a->str))
			return tw_err_set(err, TW_EINVAL, "publish: attribute %zu has no name or no value", i + 1);
		if (a->is_number && !isfinite(a->num))
			return tw_err_set(err, TW_EINVAL, "publish: attribute %s: not a finite number", a->name);
		total += strlen(a->name) + (a->str ? strlen(a->str) : 16);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(msg->attrs[j].name, a->name))
				return tw_err_set(err, TW_EINVAL, "publish: attribute %s given twice", a->name);
	}
	if (total > n->max_message)
		return tw_err_set(err, TW_ELIMIT, "publish: message of %zu bytes (at most %zu)", total, n->max_message);
	if (msg->mime && strncasecmp(msg->mime, "Content-Type:", 13))
		return tw_err_set(err, TW_EINVAL, "publish: the MIME entity must start with a Content-Type header");
	if (!utf8_ok(msg->message) || (msg->subject && !utf8_ok(msg->subject)) || (msg->mime && !utf8_ok(msg->mime)) ||
	    (msg->dedup_key && !utf8_ok(msg->dedup_key)))
		return tw_err_set(err, TW_EINVAL, "publish: the subject, message, MIME entity or dedup key is not valid UTF-8");
	for (size_t i = 0; i < msg->nattrs; i++)
		if (!utf8_ok(msg->attrs[i].name) || (!msg->attrs[i].is_number && !utf8_ok(msg->attrs[i].str)))
			return tw_err_set(err, TW_EINVAL, "publish: attribute %zu is not valid UTF-8", i + 1);
	if (msg->subject && bad_text(msg->subject))
		return tw_err_set(err, TW_EINVAL, "publish: the subject holds control characters (line breaks?)");
	return TW_OK;
}

static struct tw_notify_m *msg_new(const struct tw_notify_msg *msg, struct tw_err *err)
{
	struct tw_notify_m *m = calloc(1, sizeof *m);
	int bad = !m;

	if (m) {
		m->topic = strdup(msg->topic);
		m->message = strdup(msg->message);
		m->subject = msg->subject ? strdup(msg->subject) : NULL;
		m->mime = msg->mime ? strdup(msg->mime) : NULL;
		m->dedup = msg->dedup_key ? strdup(msg->dedup_key) : NULL;
		m->attrs = calloc(msg->nattrs + 1, sizeof *m->attrs);
		bad = !m->topic || !m->message || (msg->subject && !m->subject) || (msg->mime && !m->mime) ||
		      (msg->dedup_key && !m->dedup) || !m->attrs;
		for (size_t i = 0; !bad && i < msg->nattrs; i++) {
			struct tw_notify_attr *a = &m->attrs[m->nattrs++];
			*a = msg->attrs[i];
			a->name = strdup(msg->attrs[i].name);
			a->str = a->is_number ? NULL : strdup(msg->attrs[i].str);
			bad = !a->name || (!a->is_number && !a->str);
		}
	}
	if (bad) {
		msg_free(m);
		tw_err_set(err, TW_ENOMEM, "publish: out of memory");
		return NULL;
	}
	uuid4(m->id);
	m->ts = now_ms(CLOCK_REALTIME);
	if (tw_notify_sns_build(m, &m->sns, &m->nsns, err)) {
		msg_free(m);
		return NULL;
	}
	return m;
}

enum tw_rc tw_notify_publish(struct tw_notify *n, const struct tw_notify_msg *msg, struct tw_notify_receipt *receipt,
			     struct tw_err *err)
{
	struct tw_notify_receipt rec;
	struct tw_notify_m *m = NULL;
	size_t *match = NULL, nm = 0;
	enum tw_rc rc = TW_OK;
	json_t *subs;

	memset(&rec, 0, sizeof rec);
	pthread_mutex_lock(&n->mu);
	if (n->sticky) {
		rc = tw_err_set(err, TW_EIO, "publish: the outbox failed earlier: %s", n->sticky_err.msg);
		goto out;
	}
	if ((rc = check_msg(n, msg, err)))
		goto out;
	if (msg->dedup_key) {
		dedup_prune(n, now_ms(CLOCK_REALTIME));
		for (size_t i = 0; i < n->ndk; i++)
			if (!strcmp(n->dk[i].key, msg->dedup_key)) {
				snprintf(rec.message_id, sizeof rec.message_id, "%s", n->dk[i].id);
				rec.duplicate = 1;
				n->st.duplicates++;
				goto out;
			}
	}
	match = calloc(n->nsubs + 1, sizeof *match);
	if (!match) {
		rc = tw_err_set(err, TW_ENOMEM, "publish: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n->nsubs; i++)
		if (!strcmp(n->subs[i].c.topic, msg->topic) &&
		    tw_notify_policy_match(n->subs[i].policy, msg->attrs, msg->nattrs))
			match[nm++] = i;
	if (!nm) {
		n->st.dropped++;
		goto out;
	}
	if (n->nd + nm > n->max_pending) {
		rc = tw_err_set(err, TW_ELIMIT,
				"publish: outbox full: %zu deliveries pending (at most %zu); endpoints are failing or slow "
				"(see trailwatch notify status)",
				n->nd, n->max_pending);
		goto out;
	}
	if (!(m = msg_new(msg, err))) {
		rc = err->rc;
		goto out;
	}
	m->seq = n->next_seq;
	subs = json_array();
	for (size_t i = 0; i < nm; i++)
		json_array_append_new(subs, json_string(n->subs[match[i]].name));
	if ((rc = append_json(n, TW_NOTIFY_F_MSG, msg_json(m, subs, 0), err)))
		goto out;
	n->next_seq++;
	m->refs = 1;
	for (size_t i = 0; i < nm && !rc; i++)
		rc = add_dlv(n, m, (int)match[i], n->subs[match[i]].name, err);
	if (!rc && m->dedup)
		rc = dedup_add(n, m->dedup, m->ts, m->id, err);
	/* The message is durable: a failure past this point (out of memory) still returns an error,
	 * and the deliveries not added here are found again at the next open. */
	n->st.published++;
	n->tot_published++;
	snprintf(rec.message_id, sizeof rec.message_id, "%s", m->id);
	rec.seq = m->seq;
	rec.deliveries = (unsigned)nm;
	msg_unref(m);
	m = NULL;
	pthread_cond_broadcast(&n->work);
out:
	pthread_mutex_unlock(&n->mu);
	msg_free(m);
	free(match);
	if (!rc && receipt)
		*receipt = rec;
	return rc;
}

int tw_notify_wait(struct tw_notify *n, uint64_t seq, int64_t timeout_ms)
{
	struct timespec ts;
	int done = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += (time_t)(timeout_ms / 1000);
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&n->mu);
	for (;;) {
		int left = 0;
		for (size_t i = 0; i < n->nd && !left; i++)
			if ((seq && n->d[i]->m->seq == seq) ||
			    (!seq && (n->d[i]->si >= 0 || n->orphans == TW_NOTIFY_ORPHANS_DEAD)))
				left = 1;
		if (!left) {
			done = 1;
			break;
		}
		if (timeout_ms < 0)
			pthread_cond_wait(&n->done, &n->mu);
		else if (pthread_cond_timedwait(&n->done, &n->mu, &ts))
			break;
	}
	pthread_mutex_unlock(&n->mu);
	return done;
}

void tw_notify_stats(struct tw_notify *n, struct tw_notify_stats *st)
{
	pthread_mutex_lock(&n->mu);
	*st = n->st;
	st->pending = n->nd;
	pthread_mutex_unlock(&n->mu);
}
