/* SPDX-License-Identifier: Apache-2.0 */
/* cli/topn.c: counts occurrences of distinct strings (principals, event names...) for the
 * summaries commands print, and picks the most frequent. Open addressing with linear probing;
 * keys live in an arena. The number of distinct keys is capped so hostile input (a million
 * distinct user agents) cannot make it grow without bound: later new keys go to `others`. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct slot {
	struct tw_str key; /* copy in the arena; key.p == NULL for an empty slot */
	uint64_t hash;     /* FNV-1a of key */
	uint64_t n;        /* occurrences */
};

struct tw_cli_counter {
	struct slot *slots;  /* table of cap entries (a power of two) */
	size_t cap;          /* slots allocated */
	size_t used;         /* slots holding a key */
	size_t max_keys;     /* cap on used */
	uint64_t others;     /* occurrences of keys refused because of max_keys */
	struct tw_arena arena; /* owns the key bytes */
};

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

struct tw_cli_counter *tw_cli_counter_new(size_t max_keys)
{
	struct tw_cli_counter *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->cap = 64;
	c->slots = calloc(c->cap, sizeof *c->slots);
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->max_keys = max_keys;
	tw_arena_init(&c->arena, 64 * 1024, 0);
	return c;
}

static struct slot *find(struct slot *slots, size_t cap, uint64_t h, struct tw_str key)
{
	size_t i = (size_t)h & (cap - 1);

	for (;;) {
		struct slot *s = &slots[i];
		if (!s->key.p || (s->hash == h && s->key.n == key.n && (key.n == 0 || !memcmp(s->key.p, key.p, key.n))))
			return s;
		i = (i + 1) & (cap - 1);
	}
}

static int grow(struct tw_cli_counter *c)
{
	size_t cap = c->cap * 2;
	struct slot *slots = calloc(cap, sizeof *slots);

	if (!slots)
		return -1;
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i].key.p)
			*find(slots, cap, c->slots[i].hash, c->slots[i].key) = c->slots[i];
	free(c->slots);
	c->slots = slots;
	c->cap = cap;
	return 0;
}

int tw_cli_counter_add(struct tw_cli_counter *c, struct tw_str key)
{
	uint64_t h = fnv1a(key.p, key.n);
	struct slot *s = find(c->slots, c->cap, h, key);

	if (s->key.p) {
		s->n++;
		return 0;
	}
	if (c->used >= c->max_keys) {
		c->others++;
		return 0;
	}
	if ((c->used + 1) * 4 > c->cap * 3) {
		if (grow(c))
			return -1;
		s = find(c->slots, c->cap, h, key);
	}
	if (tw_arena_dup(&c->arena, key, &s->key, NULL))
		return -1;
	s->hash = h;
	s->n = 1;
	c->used++;
	return 0;
}

/* 1 if a ranks before b: more occurrences first, then by key bytes. */
static int before(const struct tw_cli_count *a, const struct tw_cli_count *b)
{
	size_t n = a->key.n < b->key.n ? a->key.n : b->key.n;
	int d;

	if (a->n != b->n)
		return a->n > b->n;
	d = n ? memcmp(a->key.p, b->key.p, n) : 0;
	return d ? d < 0 : a->key.n < b->key.n;
}

size_t tw_cli_counter_top(const struct tw_cli_counter *c, size_t k, struct tw_cli_count *out)
{
	size_t have = 0;

	/* Insertion into a sorted list of at most k: k is small (5 to 20). */
	for (size_t i = 0; i < c->cap; i++) {
		struct tw_cli_count cand;
		size_t j;
		if (!c->slots[i].key.p)
			continue;
		cand.key = c->slots[i].key;
		cand.n = c->slots[i].n;
		if (have == k && (k == 0 || !before(&cand, &out[k - 1])))
			continue;
		j = have < k ? have++ : k - 1;
		while (j > 0 && before(&cand, &out[j - 1])) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = cand;
	}
	return have;
}

size_t tw_cli_counter_distinct(const struct tw_cli_counter *c)
{
	return c->used;
}

uint64_t tw_cli_counter_others(const struct tw_cli_counter *c)
{
	return c->others;
}

void tw_cli_counter_free(struct tw_cli_counter *c)
{
	if (!c)
		return;
	free(c->slots);
	tw_arena_free(&c->arena);
	free(c);
}
