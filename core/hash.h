/* SPDX-License-Identifier: Apache-2.0 */
/* core/hash.h: a fast 64-bit hash of bytes for in-memory tables (read 8 bytes at a time). Never
 * stored or compared across builds: tables may iterate in any order it gives, files may not.
 * Feed pieces with tw_hash_bytes (starting from TW_HASH_SEED), finish with tw_hash_final. */
#ifndef TW_CORE_HASH_H
#define TW_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TW_HASH_SEED 0xcbf29ce484222325ull

/* Mixes p[0..n) (and its length, so that pieces cannot shift into each other) into h. */
static inline uint64_t tw_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const char *c = p;
	size_t i = 0;

	h = (h ^ n) * 0x9e3779b97f4a7c15ull;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, c + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (i < n) {
		uint64_t w = 0;
		memcpy(&w, c + i, n - i);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 32;
	}
	return h;
}

static inline uint64_t tw_hash_final(uint64_t h)
{
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

#endif
