/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz.h: one macro to declare a fuzz target usable both by libFuzzer (make fuzz, with
 * -DTW_FUZZ_ONE) and by the corpus replayer (make check). Register new targets in targets.h. */
#ifndef TW_FUZZ_H
#define TW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Inputs larger than this are ignored: targets stay fast and memory stays bounded. */
#define TW_FUZZ_MAX_INPUT (1u << 20)

#ifdef TW_FUZZ_ONE
#define TW_FUZZ_ENTRY(name)                                              \
	int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);              \
	int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)               \
	{                                                                    \
		return n > TW_FUZZ_MAX_INPUT ? 0 : tw_fuzz_##name(d, n);         \
	}
#else
#define TW_FUZZ_ENTRY(name)
#endif

#define TW_FUZZ_TARGET(name)                                             \
	int tw_fuzz_##name(const uint8_t *data, size_t size);                \
	TW_FUZZ_ENTRY(name)                                                  \
	int tw_fuzz_##name(const uint8_t *data, size_t size)

#endif
