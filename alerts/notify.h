/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify.h: the SNS-like notifier: topics, subscriptions (email over SMTP, email-json,
 * http/https webhooks, file, maildir, exec), filter policies on message attributes, a durable
 * outbox in a state directory, delivery on worker threads with retries, and a dead-letter file.
 * Publishing never waits on a network peer: it makes the message durable and returns.
 * Configuration is plain structs (the caller fills them from the config file); nothing here
 * parses configuration files or prints. */
#ifndef TW_ALERTS_NOTIFY_H
#define TW_ALERTS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

/* Caps (TW_ELIMIT beyond). */
#define TW_NOTIFY_MAX_MESSAGE_DEFAULT (256u * 1024u) /* SNS's message size limit */
#define TW_NOTIFY_MAX_PENDING_DEFAULT 10000u         /* deliveries waiting in the outbox */
#define TW_NOTIFY_MAX_ATTEMPTS 1000u                 /* hard cap on attempts per delivery */
#define TW_NOTIFY_MAX_SUBJECT 512u                   /* bytes of a subject */
#define TW_NOTIFY_MAX_ATTRS 64u                      /* attributes per message */
#define TW_NOTIFY_MAX_POLICY 16384u                  /* bytes of a filter policy's JSON */
#define TW_NOTIFY_MAX_DEDUP 65536u                   /* dedup keys remembered (oldest forgotten first) */
/* "arn:trailwatch:sns:local:trailwatch:" + topic name is a topic's ARN (SNS's six-part shape,
 * with the partition "trailwatch", region "local" and account "trailwatch"). */
#define TW_NOTIFY_ARN_PREFIX "arn:trailwatch:sns:local:trailwatch:"

/* ---- filter policies (notify_policy.c) ---------------------------------------------------------- */

/* A compiled filter policy (SNS semantics on message attributes). Opaque, immutable once built:
 * may be shared by threads. */
struct tw_notify_policy;

/* A message attribute: a string or a number (SNS's "String" and "Number" types). */
struct tw_notify_attr {
	const char *name; /* attribute name ("severity") */
	const char *str;  /* value when is_number == 0 */
	double num;       /* value when is_number == 1 */
	int is_number;    /* 1: Number, 0: String */
};

/* Compiles the policy JSON text[0..n) (borrowed). Supported, per key (AND across keys, OR within
 * a key's array): exact strings and numbers, {"prefix": S}, {"suffix": S},
 * {"equals-ignore-case": S}, {"anything-but": V | [V...] | {"prefix": S}},
 * {"numeric": [OP, N (, OP, N)]} with OP in = < <= > >=, {"exists": true|false}.
 * TW_EPARSE with a message naming the key and the reason; TW_ELIMIT past TW_NOTIFY_MAX_POLICY
 * bytes, 150 values or 32 keys. *out (free with tw_notify_policy_free) only on success. */
enum tw_rc tw_notify_policy_parse(const char *text, size_t n, struct tw_notify_policy **out, struct tw_err *err);
/* 1 when the attributes attrs[0..nattrs) (borrowed) match the policy, else 0. NULL matches all. */
int tw_notify_policy_match(const struct tw_notify_policy *p, const struct tw_notify_attr *attrs, size_t nattrs);
void tw_notify_policy_free(struct tw_notify_policy *p);

/* ---- retry policies ---------------------------------------------------------------------------- */

/* How delays grow in the backoff phase (SNS's backoffFunction). */
enum tw_notify_backoff {
	TW_NOTIFY_BACKOFF_LINEAR = 0,      /* evenly spaced from min to max */
	TW_NOTIFY_BACKOFF_ARITHMETIC = 1,  /* grows with the square of the step */
	TW_NOTIFY_BACKOFF_GEOMETRIC = 2,   /* constant ratio from min to max */
	TW_NOTIFY_BACKOFF_EXPONENTIAL = 3, /* doubling steps from min to max */
};

/* A delivery retry policy modelled on SNS's delivery policy for customer-managed (HTTP/S)
 * endpoints. After the first attempt, num_retries retries run in four phases in order:
 * num_no_delay retries at once, num_min_delay retries min_delay_ms apart, the backoff phase
 * (num_retries minus the three others) growing from min to max by `backoff`, and num_max_delay
 * retries max_delay_ms apart. Each delay is moved by up to +-jitter_pct percent. A delivery older
 * than max_age_ms (from publication; 0 = no limit) is not retried again. */
struct tw_notify_retry {
	unsigned num_retries;          /* retries after the first attempt (<= TW_NOTIFY_MAX_ATTEMPTS-1) */
	unsigned num_no_delay;         /* immediate retries first */
	unsigned num_min_delay;        /* then retries at min_delay_ms */
	unsigned num_max_delay;        /* retries at max_delay_ms at the end */
	int64_t min_delay_ms;          /* SNS minDelayTarget */
	int64_t max_delay_ms;          /* SNS maxDelayTarget */
	enum tw_notify_backoff backoff; /* SNS backoffFunction */
	unsigned jitter_pct;           /* 0..50: random spread of each delay, in percent */
	int64_t max_age_ms;            /* give up on deliveries older than this; 0 = never */
};


/* Delay in ms before retry number `retry` (1 = the first retry) under rp, before jitter;
 * -1 when rp allows no such retry. Pure. */
int64_t tw_notify_retry_delay(const struct tw_notify_retry *rp, unsigned retry);

/* ---- configuration ------------------------------------------------------------------------------ */

enum tw_notify_proto {
	TW_NOTIFY_EMAIL = 1,      /* a mail over SMTP (libcurl); endpoint: the recipient address */
	TW_NOTIFY_EMAIL_JSON = 2, /* the same, with the SNS JSON as the body */
	TW_NOTIFY_HTTP = 3,       /* POST of the SNS JSON; endpoint: http:// URL */
	TW_NOTIFY_HTTPS = 4,      /* same over TLS; endpoint: https:// URL */
	TW_NOTIFY_FILE = 5,       /* append the SNS JSON as one line, fsync; endpoint: file path */
	TW_NOTIFY_MAILDIR = 6,    /* the mail into a Maildir (tmp/ then new/); endpoint: its directory */
	TW_NOTIFY_EXEC = 7,       /* run a program (no shell), SNS JSON on stdin; endpoint: the program */
};

/* "email", "email-json", "http", "https", "file", "maildir", "exec"; NULL for others. */
const char *tw_notify_proto_name(enum tw_notify_proto proto);
/* The inverse; 0 when unknown. */
enum tw_notify_proto tw_notify_proto_parse(const char *name);

/* The protocol's default policy (what a subscription without its own gets):
 *   http/https: SNS's default for HTTP/S: 3 retries, 20 s apart (linear), jitter 10 %, max age 1 h;
 *   email/email-json: 1 immediate retry, then backoff 10 s .. 10 min (exponential) over
 *     12 retries, max age 24 h;
 *   file/maildir/exec: 1 immediate retry, then backoff 1 s .. 60 s (exponential) over 8 retries,
 *     max age 1 h. */
void tw_notify_retry_default(enum tw_notify_proto proto, struct tw_notify_retry *out);

/* STARTTLS on smtp:// URLs (smtps:// is always implicit TLS). */
enum tw_notify_starttls {
	TW_NOTIFY_STARTTLS_REQUIRED = 0,      /* fail when the server does not offer it (default) */
	TW_NOTIFY_STARTTLS_OPPORTUNISTIC = 1, /* use it when offered */
	TW_NOTIFY_STARTTLS_NONE = 2,          /* plain text (a relay on localhost) */
};

/* SMTP settings of email and email-json subscriptions (also the headers of maildir mails). */
struct tw_notify_smtp {
	const char *url;                 /* smtp://host:port or smtps://host:port (email only) */
	const char *from;                /* envelope and header From address (required for email) */
	const char *const *recipients;   /* To addresses; NULL/0: the subscription's endpoint */
	size_t nrecipients;              /* entries in recipients */
	const char *user;                /* AUTH user; NULL = no AUTH */
	struct tw_secret password;       /* AUTH password (loaded per attempt, never logged) */
	enum tw_notify_starttls starttls; /* smtp:// only */
	const char *ca_file;             /* CA bundle for the server's certificate; NULL = system's */
	int insecure;                    /* 1: do not verify the certificate (explicit opt-in) */
};

/* HTTP settings of http/https subscriptions. */
struct tw_notify_http {
	const char *const *headers; /* extra "Name: value" request headers */
	size_t nheaders;            /* entries in headers */
	const char *ca_file;        /* CA bundle; NULL = system's */
	int insecure;               /* 1: do not verify the certificate (explicit opt-in) */
};

/* A topic. */
struct tw_notify_topic {
	const char *name;         /* [A-Za-z0-9_-]{1,256} as in SNS */
	const char *display_name; /* used as the mail's From display name; may be NULL */
};

/* A subscription. All strings are borrowed by tw_notify_open, which copies them. */
struct tw_notify_sub {
	const char *name;          /* stable id recorded in the outbox; NULL = "PROTOCOL:ENDPOINT" */
	const char *topic;         /* the topic it listens to (must be configured) */
	enum tw_notify_proto proto; /* protocol */
	const char *endpoint;      /* address, URL, path or program (see enum tw_notify_proto) */
	const char *filter_policy; /* SNS filter policy JSON text; NULL = every message */
	const char *const *argv;   /* exec: the full argv (argv[0] is run); NULL = { endpoint } */
	size_t argc;               /* exec: entries in argv */
	struct tw_notify_smtp smtp; /* email, email-json, maildir */
	struct tw_notify_http http; /* http, https */
	int64_t connect_timeout_ms; /* 0 = 10 s */
	int64_t timeout_ms;         /* whole attempt (exec: the program's run time); 0 = 30 s */
	const struct tw_notify_retry *retry; /* NULL = tw_notify_retry_default(proto) */
};

/* A delivery that reached its end (delivered or dead-lettered) or failed an attempt. */
enum tw_notify_state {
	TW_NOTIFY_PENDING = 0,   /* waiting for an attempt */
	TW_NOTIFY_RETRYING = 1,  /* an attempt failed; another one is scheduled */
	TW_NOTIFY_DELIVERED = 2, /* the endpoint accepted it */
	TW_NOTIFY_DEAD = 3,      /* given up: written to the dead-letter file */
};

/* What a callback is told. Pointers live until the callback returns. */
struct tw_notify_result {
	const char *message_id;    /* the message's UUID */
	const char *topic;         /* its topic */
	const char *subject;       /* its subject ("" when none) */
	const char *sub;           /* the subscription's name */
	enum tw_notify_proto proto; /* its protocol (0 when the subscription is no longer configured) */
	enum tw_notify_state state; /* RETRYING, DELIVERED or DEAD */
	unsigned attempts;         /* attempts made so far */
	const char *error;         /* the last failure ("" when delivered at once) */
};

/* When subscriptions named in the outbox are not configured any more. */
enum tw_notify_orphans {
	TW_NOTIFY_ORPHANS_DEAD = 0, /* dead-letter their deliveries (default: nothing is silently lost) */
	TW_NOTIFY_ORPHANS_KEEP = 1, /* keep them pending for a later open that configures them */
};

struct tw_notify_config {
	const char *state_dir;                 /* outbox, lock and dead letters live here (created) */
	const struct tw_notify_topic *topics;  /* configured topics */
	size_t ntopics;                        /* entries in topics */
	const struct tw_notify_sub *subs;      /* configured subscriptions */
	size_t nsubs;                          /* entries in subs */
	const char *dead_letter_path;          /* NULL = STATE_DIR/dead-letters.jsonl */
	size_t max_message;                    /* 0 = TW_NOTIFY_MAX_MESSAGE_DEFAULT */
	size_t max_pending;                    /* 0 = TW_NOTIFY_MAX_PENDING_DEFAULT */
	unsigned workers;                      /* delivery threads; 0 = 2 */
	int no_delivery;                       /* 1: publish only, start no delivery thread */
	int64_t dedup_window_ms;               /* 0 = 5 min (SNS FIFO's deduplication interval) */
	uint64_t compact_bytes;                /* compact once the log is this big and idle; 0 = 1 MiB */
	enum tw_notify_orphans orphans;        /* see above */
	/* Called on a worker thread after each delivery outcome (RETRYING, DELIVERED, DEAD), outside
	 * the notifier's lock; may be NULL. Must not call tw_notify_close. */
	void (*on_result)(void *ctx, const struct tw_notify_result *r);
	void *on_result_ctx;                   /* passed to on_result */
	/* Called on a worker thread when a delivery is dead-lettered (so the caller can raise an
	 * alarm); may be NULL. Same rules as on_result. */
	void (*on_dead)(void *ctx, const struct tw_notify_result *r);
	void *on_dead_ctx;                     /* passed to on_dead */
};

/* ---- the notifier ------------------------------------------------------------------------------ */

struct tw_notify;

/* Counters since open, plus what the outbox holds. */
struct tw_notify_stats {
	uint64_t published;   /* messages accepted (duplicates and dropped ones excluded) */
	uint64_t duplicates;  /* publishes skipped by their dedup key */
	uint64_t dropped;     /* messages no subscription's filter matched (not an error) */
	uint64_t delivered;   /* deliveries accepted by their endpoint */
	uint64_t retried;     /* failed attempts followed by another one */
	uint64_t dead;        /* deliveries dead-lettered */
	uint64_t pending;     /* deliveries not finished (recovered ones included) */
	uint64_t recovered;   /* pending deliveries found in the outbox at open */
	uint64_t compactions; /* outbox rewrites */
	uint64_t torn_bytes;  /* bytes of a torn or corrupt tail cut at open */
};

/* Opens the notifier: validates cfg (copied; nothing borrowed stays), compiles filter policies,
 * takes the state directory's lock, recovers the outbox (cutting a torn tail) and starts the
 * delivery threads, which resume every pending delivery. Errors: TW_EINVAL (bad configuration:
 * message names the subscription and field), TW_EPARSE (a filter policy), TW_EBUSY (another
 * process holds the state directory), TW_EIO, TW_ECORRUPT (not an outbox), TW_ENOMEM. */
enum tw_rc tw_notify_open(const struct tw_notify_config *cfg, struct tw_notify **out, struct tw_err *err);

/* Stops the threads (an attempt in flight is abandoned and stays pending), and closes. NULL ok. */
void tw_notify_close(struct tw_notify *n);

/* A message to publish. All borrowed. */
struct tw_notify_msg {
	const char *topic;                 /* a configured topic */
	const char *subject;               /* may be NULL; UTF-8, at most TW_NOTIFY_MAX_SUBJECT bytes */
	const char *message;               /* the text (required, non-empty, UTF-8) */
	const struct tw_notify_attr *attrs; /* message attributes (filter policies look at them) */
	size_t nattrs;                     /* entries in attrs */
	/* A complete MIME entity for email: headers starting with Content-Type, a blank line, the
	 * body. The mail gets From/To/Subject/Date/Message-ID/MIME-Version in front of it. NULL: a
	 * text/plain UTF-8 quoted-printable mail of `message`. */
	const char *mime;
	const char *dedup_key;             /* publishing it again within the window is a no-op; may be NULL */
};

/* What publish did. */
struct tw_notify_receipt {
	char message_id[40]; /* UUID of the message (of the first one, for a duplicate) */
	uint64_t seq;        /* its sequence number in the outbox (0 when dropped) */
	unsigned deliveries; /* subscriptions it will be delivered to */
	int duplicate;       /* 1 when skipped by the dedup key */
};

/* Makes msg durable in the outbox (fsynced) with one delivery per matching subscription, and
 * hands it to the delivery threads. Returns once it is durable, never waiting on an endpoint.
 * A message no subscription matches is counted in `dropped` and returns TW_OK with
 * deliveries == 0. Errors: TW_EINVAL (unknown topic, empty message, a MIME entity not starting
 * with Content-Type), TW_ELIMIT (message larger than max_message, subject too long, too many
 * attributes, or more than max_pending deliveries pending: "outbox full"), TW_EIO (the outbox
 * could not be written: the notifier then refuses every later publish). receipt may be NULL.
 * Thread-safe. */
enum tw_rc tw_notify_publish(struct tw_notify *n, const struct tw_notify_msg *msg, struct tw_notify_receipt *receipt,
			     struct tw_err *err);

/* Waits until the deliveries of message seq (0: every delivery) are all finished, or timeout_ms
 * passes (< 0: forever). Returns 1 when finished, 0 on timeout. Thread-safe. */
int tw_notify_wait(struct tw_notify *n, uint64_t seq, int64_t timeout_ms);

/* Copies the counters into *st. Thread-safe. */
void tw_notify_stats(struct tw_notify *n, struct tw_notify_stats *st);

/* What an outbox holds, read without opening the notifier (no lock taken). */
struct tw_notify_outbox_stats {
	uint64_t messages;  /* messages with deliveries still pending */
	uint64_t pending;   /* deliveries pending */
	uint64_t delivered; /* deliveries delivered (kept across compactions) */
	uint64_t dead;      /* deliveries dead-lettered (kept across compactions) */
	uint64_t published; /* messages written (kept across compactions) */
	uint64_t bytes;     /* size of the outbox log */
	int64_t oldest_ms;  /* publication time of the oldest pending message; 0 when none */
};

/* Reads STATE_DIR's outbox. TW_ENOENT when there is none, TW_ECORRUPT when it is not one. */
enum tw_rc tw_notify_outbox_stat(const char *state_dir, struct tw_notify_outbox_stats *st, struct tw_err *err);

#endif
