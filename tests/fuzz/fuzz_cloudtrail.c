/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_cloudtrail.c: ingest/cloudtrail.c (tw_ct_decode). Nothing it accepts may be
 * invalid JSON; an event's fields must be readable and its resources bounded. */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ingest/ingest_int.h"
#include "tests/fuzz/fuzz.h"

TW_FUZZ_TARGET(cloudtrail)
{
	const char *p = (const char *)data;
	struct tw_arena a;
	struct tw_event ev;
	enum tw_rec_class cls;
	struct tw_err err;
	volatile unsigned char sum = 0;
	enum tw_rc rc;

	tw_arena_init(&a, 0, 64u << 20);
	memset(&ev, 0, sizeof ev);
	ev.read_only = -1;
	rc = tw_ct_decode(p, size, 256, &a, &ev, &cls, &err);
	if (rc == TW_OK && tw_json_validate(p, size, 256, &err) != TW_OK)
		abort();
	if (rc == TW_OK && cls == TW_REC_EVENT) {
		if (ev.raw.p != p || ev.raw.n != size || ev.nresources > 64)
			abort();
		for (int f = 0; f < TW_F__COUNT; f++)
			for (size_t i = 0; i < ev.f[f].n; i++)
				sum ^= (unsigned char)ev.f[f].p[i];
		for (uint32_t r = 0; r < ev.nresources; r++)
			for (size_t i = 0; i < ev.resources[r].n; i++)
				sum ^= (unsigned char)ev.resources[r].p[i];
	}
	tw_arena_free(&a);
	return 0;
}
