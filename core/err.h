/* SPDX-License-Identifier: Apache-2.0 */
/* core/err.h: the one error enum of trailwatch and the message that goes with it.
 * The function that detects an error writes a message a user can act on; callers pass it up.
 * Codes are never renumbered or reused. */
#ifndef TW_CORE_ERR_H
#define TW_CORE_ERR_H

#include <stddef.h>

enum tw_rc {
	TW_OK = 0,
	TW_ENOMEM = 1,   /* allocation failed */
	TW_EINVAL = 2,   /* bad argument or usage */
	TW_EIO = 3,      /* read/write/fsync failed */
	TW_EPARSE = 4,   /* malformed input (JSON, gzip, base64, time, query...) */
	TW_ECORRUPT = 5, /* checksum mismatch or impossible on-disk structure */
	TW_ELIMIT = 6,   /* a bounded buffer, depth or size cap was exceeded */
	TW_ENOENT = 7,   /* file, key or record not found */
	TW_EBUSY = 8,    /* resource held by someone else (store lock) */
	TW_EUNSUP = 9,   /* valid but unsupported input (format version, codec) */
	TW_ESTOP = 10,   /* a sink or callback asked to stop early */
};

/* The error a failing call fills in. msg is always NUL-terminated. */
struct tw_err {
	enum tw_rc rc; /* TW_OK until something fails */
	char msg[256]; /* human-readable: names the file, position and reason */
};

/* Sets err (may be NULL) to rc with a printf-style message; returns rc so callers can write
 * `return tw_err_set(err, TW_EPARSE, "%s: line %llu: ...", ...);`. */
enum tw_rc tw_err_set(struct tw_err *err, enum tw_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "prefix: " (for adding a file name on the way up). */
void tw_err_prefix(struct tw_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets err to TW_OK with an empty message. */
void tw_err_clear(struct tw_err *err);

/* A short, stable name for rc ("ENOMEM", "EPARSE"...). */
const char *tw_rc_str(enum tw_rc rc);

#endif
