/* SPDX-License-Identifier: Apache-2.0 */
/* core/buf.c: bounded growable buffers and the batch arena. Never grows past a cap. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tw_str_eq(struct tw_str s, const char *c)
{
	size_t n = strlen(c);
	return s.n == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

void tw_buf_init(struct tw_buf *b, size_t max)
{
	b->p = NULL;
	b->n = 0;
	b->cap = 0;
	b->max = max;
}

enum tw_rc tw_buf_reserve(struct tw_buf *b, size_t more, struct tw_err *err)
{
	size_t need, cap;
	char *p;

	if (more > b->max || b->n > b->max - more)
		return tw_err_set(err, TW_ELIMIT, "buffer limit of %zu bytes exceeded", b->max);
	need = b->n + more + 1; /* room for a NUL */
	if (need <= b->cap)
		return TW_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->p, cap);
	if (!p)
		return tw_err_set(err, TW_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
	b->p = p;
	b->cap = cap;
	return TW_OK;
}

enum tw_rc tw_buf_append(struct tw_buf *b, const void *p, size_t n, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_reserve(b, n, err);
	if (rc)
		return rc;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return TW_OK;
}

enum tw_rc tw_buf_putc(struct tw_buf *b, char c, struct tw_err *err)
{
	if (b->n + 1 < b->cap) {
		b->p[b->n++] = c;
		return TW_OK;
	}
	return tw_buf_append(b, &c, 1, err);
}

enum tw_rc tw_buf_printf(struct tw_buf *b, struct tw_err *err, const char *fmt, ...)
{
	va_list ap;
	int len;
	enum tw_rc rc;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return tw_err_set(err, TW_EINVAL, "bad format string");
	rc = tw_buf_reserve(b, (size_t)len, err);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)len;
	return TW_OK;
}

void tw_buf_consume(struct tw_buf *b, size_t n)
{
	if (n >= b->n) {
		b->n = 0;
		return;
	}
	memmove(b->p, b->p + n, b->n - n);
	b->n -= n;
}

const char *tw_buf_cstr(struct tw_buf *b)
{
	if (!b->p || b->n >= b->cap) {
		if (tw_buf_reserve(b, 0, NULL) != TW_OK)
			return b->n ? b->p : "";
	}
	b->p[b->n] = '\0';
	return b->p;
}

void tw_buf_reset(struct tw_buf *b)
{
	b->n = 0;
}

void tw_buf_free(struct tw_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

/* ---- arena ---------------------------------------------------------------------------- */

struct tw_arena_chunk {
	struct tw_arena_chunk *next; /* older chunk */
	size_t size;                 /* usable bytes in data[] */
	size_t used;                 /* bytes handed out from data[] */
	max_align_t data[];          /* the bytes */
};

void tw_arena_init(struct tw_arena *a, size_t chunk, size_t max)
{
	a->head = NULL;
	a->used = 0;
	a->max = max;
	a->chunk = chunk ? chunk : 64 * 1024;
}

void *tw_arena_alloc(struct tw_arena *a, size_t n, struct tw_err *err)
{
	struct tw_arena_chunk *c = a->head;
	size_t need = (n + 7) & ~(size_t)7;
	char *p;

	if (need < n || (a->max && (need > a->max || a->used > a->max - need))) {
		tw_err_set(err, TW_ELIMIT, "batch memory limit of %zu bytes exceeded", a->max);
		return NULL;
	}
	if (!c || c->size - c->used < need) {
		size_t size = a->chunk;
		if (size < need)
			size = need;
		c = malloc(sizeof *c + size);
		if (!c) {
			tw_err_set(err, TW_ENOMEM, "out of memory allocating %zu bytes", size);
			return NULL;
		}
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	a->used += need;
	return p;
}

enum tw_rc tw_arena_dup(struct tw_arena *a, struct tw_str s, struct tw_str *out, struct tw_err *err)
{
	char *p = tw_arena_alloc(a, s.n + 1, err);
	if (!p)
		return err ? err->rc : TW_ENOMEM;
	if (s.n)
		memcpy(p, s.p, s.n);
	p[s.n] = '\0';
	out->p = p;
	out->n = s.n;
	return TW_OK;
}

void tw_arena_reset(struct tw_arena *a)
{
	struct tw_arena_chunk *c, *keep = NULL, *next;

	for (c = a->head; c; c = next) {
		next = c->next;
		if (!keep || c->size > keep->size) {
			free(keep);
			keep = c;
		} else {
			free(c);
		}
	}
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->head = keep;
	a->used = 0;
}

void tw_arena_free(struct tw_arena *a)
{
	struct tw_arena_chunk *c, *next;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->used = 0;
}
