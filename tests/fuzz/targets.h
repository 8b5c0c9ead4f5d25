/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/targets.h: every fuzz target, for the corpus replayer. Add a line per new target:
 * the name is also the corpus folder tests/fuzz/corpus/<name>/. */
#ifndef TW_FUZZ_TARGETS_H
#define TW_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#define TW_FUZZ_LIST(X) \
	X(json)         \
	X(cloudtrail)   \
	X(cwlogs)       \
	X(decode)       \
	X(query)        \
	X(filter)       \
	X(composite)    \
	X(policy)       \
	X(config)       \
	X(wal)          \
	X(segment)      \
	X(anomaly)      \
	X(outbox)       \
	X(state)

#define TW_FUZZ_DECL(name) int tw_fuzz_##name(const uint8_t *data, size_t size);
TW_FUZZ_LIST(TW_FUZZ_DECL)

static const struct {
	const char *name;
	int (*fn)(const uint8_t *, size_t);
} tw_fuzz_targets[] = {
#define TW_FUZZ_ROW(name) { #name, tw_fuzz_##name },
	TW_FUZZ_LIST(TW_FUZZ_ROW)
};
static const size_t tw_fuzz_ntargets = sizeof tw_fuzz_targets / sizeof tw_fuzz_targets[0];

#endif
