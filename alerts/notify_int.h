/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify_int.h: what the notifier's files share (private to alerts/notify*.c): the
 * in-memory message and subscription, the outcome of one delivery attempt, the outbox frame
 * reader/writer, and the protocol senders. Nothing else may include it. */
#ifndef TW_ALERTS_NOTIFY_INT_H
#define TW_ALERTS_NOTIFY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/notify.h"
#include "core/buf.h"
#include "core/err.h"

/* A message as the notifier keeps it (owned strings). Immutable once built; shared by the
 * deliveries of the message through refs (protected by the notifier's lock). */
struct tw_notify_m {
	unsigned refs;                /* deliveries still holding it */
	uint64_t seq;                 /* outbox sequence number */
	char id[40];                  /* MessageId (UUID) */
	char *topic;                  /* topic name */
	char *subject;                /* subject or NULL */
	char *message;                /* text */
	struct tw_notify_attr *attrs; /* attributes (names and strings owned) */
	size_t nattrs;                /* entries in attrs */
	char *mime;                   /* MIME entity or NULL */
	char *dedup;                  /* dedup key or NULL */
	int64_t ts;                   /* publication time, ms since the epoch */
	char *sns;                    /* the SNS JSON notification (built once) */
	size_t nsns;                  /* its length */
};

/* A subscription as the notifier keeps it (deep copy of struct tw_notify_sub). */
struct tw_notify_s {
	struct tw_notify_sub c;       /* the copy: every pointer in it is owned by `pool` */
	char *name;                   /* stable id (c.name or "PROTOCOL:ENDPOINT") */
	const char *display_name;     /* the topic's display name or NULL (owned by pool) */
	struct tw_notify_policy *policy; /* compiled filter policy or NULL */
	struct tw_notify_retry retry; /* effective retry policy */
	char **pool;                  /* every string allocated for the copy */
	size_t npool;                 /* entries in pool */
};

/* The outcome of one attempt. */
enum tw_notify_outcome {
	TW_NOTIFY_OK = 0,        /* delivered */
	TW_NOTIFY_TRANSIENT = 1, /* failed; worth retrying */
	TW_NOTIFY_PERMANENT = 2, /* failed; retrying cannot help (SMTP 5xx, HTTP 4xx, no program) */
	TW_NOTIFY_ABORTED = 3,   /* the notifier is closing: not an attempt */
};

/* One attempt, as a sender sees it. */
struct tw_notify_attempt {
	const struct tw_notify_m *m; /* the message */
	const struct tw_notify_s *s; /* the subscription */
	unsigned attempt;            /* 1 for the first attempt */
	const volatile int *stop;    /* becomes 1 when the notifier closes: abandon the attempt */
	char error[256];             /* OUT: why it failed (never holds a secret) */
};

/* Senders: each returns an outcome and fills a->error on failure. */
enum tw_notify_outcome tw_notify_smtp_deliver(struct tw_notify_attempt *a);
enum tw_notify_outcome tw_notify_http_deliver(struct tw_notify_attempt *a);
enum tw_notify_outcome tw_notify_file_deliver(struct tw_notify_attempt *a);
enum tw_notify_outcome tw_notify_maildir_deliver(struct tw_notify_attempt *a);
enum tw_notify_outcome tw_notify_exec_deliver(struct tw_notify_attempt *a);

/* Builds the mail of m for subscription s into out: From, To, Subject (RFC 2047 when not
 * ASCII), Date, Message-ID, MIME-Version, then m->mime or a text/plain quoted-printable body
 * (email-json: the SNS JSON). Lines end in CRLF when crlf, else LF. */
enum tw_rc tw_notify_mail_build(const struct tw_notify_m *m, const struct tw_notify_s *s, int crlf, struct tw_buf *out,
				struct tw_err *err);
/* Quoted-printable (RFC 2045) of p[0..n) into out; line breaks become CRLF or LF. */
enum tw_rc tw_notify_qp_encode(const char *p, size_t n, int crlf, struct tw_buf *out, struct tw_err *err);
/* RFC 2047 B-encoded words for a header value when it is not plain ASCII (else copied). */
enum tw_rc tw_notify_header_encode(const char *s, const char *fold, struct tw_buf *out, struct tw_err *err);
/* The SNS JSON notification of m (jansson). *out is malloc'd. */
enum tw_rc tw_notify_sns_build(const struct tw_notify_m *m, char **out, size_t *n, struct tw_err *err);
/* "2026-11-02T00:00:00.123Z": always with milliseconds (SNS's Timestamp). out: 32 bytes. */
void tw_notify_iso_ms(int64_t ms, char *out);
/* Initialises libcurl once per process (thread-safe). */
void tw_notify_curl_init(void);
/* Sets on the easy handle c (a CURL *) what the libcurl senders share: no signals, ebuf
 * (CURL_ERROR_SIZE bytes) for libcurl's message, a's subscription's connect and total timeouts,
 * and an abort once *a->stop becomes 1. */
void tw_notify_curl_common(void *c, const struct tw_notify_attempt *a, char *ebuf);

/* ---- the outbox log (notify_outbox.c) ----------------------------------------------------------- */

#define TW_NOTIFY_OUTBOX_NAME "outbox.log"
#define TW_NOTIFY_FRAME_MAX (8u << 20) /* largest frame payload */

/* Frame types. */
enum tw_notify_frame {
	TW_NOTIFY_F_MSG = 'M',    /* a message and its deliveries (JSON) */
	TW_NOTIFY_F_RESULT = 'R', /* a delivery's end: delivered or dead (JSON) */
	TW_NOTIFY_F_STATE = 'S',  /* counters and next sequence carried over a compaction (JSON) */
	TW_NOTIFY_F_DEDUP = 'K',  /* a dedup key still inside its window (JSON) */
};

/* Appends one frame (header, type, payload) to fd and fsyncs when sync. TW_EIO. */
enum tw_rc tw_notify_frame_append(int fd, int type, const char *p, size_t n, int sync, struct tw_err *err);
/* Calls fn for each intact frame of the log at fd (from its start); *good gets the offset after
 * the last intact frame and *size the file's size. TW_ECORRUPT when the header is wrong, TW_EIO. */
enum tw_rc tw_notify_frame_scan(int fd, enum tw_rc (*fn)(void *ctx, int type, const char *p, size_t n, struct tw_err *err),
				void *ctx, uint64_t *good, uint64_t *size, struct tw_err *err);
/* Writes the file header into a new, empty log. */
enum tw_rc tw_notify_outbox_header(int fd, struct tw_err *err);

#endif
