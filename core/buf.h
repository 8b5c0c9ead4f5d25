/* SPDX-License-Identifier: Apache-2.0 */
/* core/buf.h: a growable byte buffer with a hard maximum, and an arena for batches.
 * Every buffer that outside input can grow has a cap and answers TW_ELIMIT beyond it. */
#ifndef TW_CORE_BUF_H
#define TW_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* A borrowed slice of bytes (not NUL-terminated). Lives as long as whatever owns p. */
struct tw_str {
	const char *p; /* first byte; NULL with n == 0 for "absent" */
	size_t n;      /* length in bytes */
};

#define TW_STR_LIT(s) ((struct tw_str){ (s), sizeof(s) - 1 })

/* 1 if s equals the NUL-terminated c, else 0. */
int tw_str_eq(struct tw_str s, const char *c);

/* Growable buffer. Initialise with tw_buf_init; the memory is owned by the buffer. */
struct tw_buf {
	char *p;    /* bytes, NUL-terminated after n when n < cap (tw_buf_cstr guarantees it) */
	size_t n;   /* bytes in use */
	size_t cap; /* bytes allocated */
	size_t max; /* hard cap on n; appending beyond it gives TW_ELIMIT */
};

void tw_buf_init(struct tw_buf *b, size_t max);
/* Makes room for `more` bytes beyond n; TW_ELIMIT past max, TW_ENOMEM. */
enum tw_rc tw_buf_reserve(struct tw_buf *b, size_t more, struct tw_err *err);
enum tw_rc tw_buf_append(struct tw_buf *b, const void *p, size_t n, struct tw_err *err);
enum tw_rc tw_buf_putc(struct tw_buf *b, char c, struct tw_err *err);
enum tw_rc tw_buf_printf(struct tw_buf *b, struct tw_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Removes the first n bytes (memmove). */
void tw_buf_consume(struct tw_buf *b, size_t n);
/* NUL-terminates and returns p (never NULL: "" for an empty buffer). */
const char *tw_buf_cstr(struct tw_buf *b);
void tw_buf_reset(struct tw_buf *b); /* n = 0, keeps the memory */
void tw_buf_free(struct tw_buf *b);  /* releases the memory; b can be reused after init */

/* Arena: bump allocation in chunks, freed all at once. A batch of events owns one; every
 * tw_str of its events points into it (or into memory the arena's owner guarantees). */
struct tw_arena_chunk;
struct tw_arena {
	struct tw_arena_chunk *head; /* newest chunk first */
	size_t used;                 /* bytes handed out since the last reset */
	size_t max;                  /* cap on `used`; 0 means no cap */
	size_t chunk;                /* default chunk size */
};

void tw_arena_init(struct tw_arena *a, size_t chunk, size_t max);
/* Returns n bytes aligned to 8, or NULL (with err set) on TW_ENOMEM / TW_ELIMIT. */
void *tw_arena_alloc(struct tw_arena *a, size_t n, struct tw_err *err);
/* Copies s into the arena; out gets the copy. */
enum tw_rc tw_arena_dup(struct tw_arena *a, struct tw_str s, struct tw_str *out, struct tw_err *err);
/* Forgets every allocation but keeps the largest chunk for reuse. */
void tw_arena_reset(struct tw_arena *a);
void tw_arena_free(struct tw_arena *a);

#endif
