/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_outbox.c: the notifier's outbox log (alerts/notify_outbox.c framing, the
 * recovery in alerts/notify.c) as found in a state directory. The first input byte picks the mode,
 * the rest is STATE/outbox.log: bit 0 rewrites every frame's CRC first (so the JSON payloads are
 * reached; a hostile file can carry good CRCs), bit 1 also opens the notifier on it (no delivery
 * threads: recovery only). Checks: the summary never crashes; after an open that succeeded and a
 * close, the log is a well-formed outbox. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alerts/notify.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/scratch.h"

#define HDR 8
#define FHDR 9

static void fix_crcs(uint8_t *f, size_t n)
{
	size_t off = HDR;

	while (n >= off && n - off >= FHDR) {
		uint32_t len = tw_fuzz_get32(f + off);
		uLong c;
		if (len > n - off - FHDR)
			break;
		c = crc32(0L, f + off + 8, 1);
		c = crc32(c, f + off + FHDR, len);
		tw_fuzz_put32(f + off + 4, (uint32_t)c);
		off += FHDR + len;
	}
}

TW_FUZZ_TARGET(outbox)
{
	static const char *dir;
	static char log[512], sink[512];
	struct tw_notify_outbox_stats st;
	struct tw_err err;
	uint8_t *f;

	if (!dir) {
		if (!(dir = tw_fuzz_scratch("outbox")))
			return 0;
		snprintf(log, sizeof log, "%s/outbox.log", dir);
		snprintf(sink, sizeof sink, "%s/delivered.jsonl", dir);
	}
	if (size < 1 || !(f = malloc(size)))
		return 0;
	memcpy(f, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(f, size - 1);
	tw_fuzz_empty_dir(dir);
	if (tw_fuzz_write_file(log, f, size - 1) == 0) {
		(void)tw_notify_outbox_stat(dir, &st, &err);
		if (data[0] & 2) {
			static const struct tw_notify_topic topics[] = { { "alarms", NULL }, { "ops", "Ops" } };
			struct tw_notify_sub sub = { .name = "file:sink", .topic = "alarms", .proto = TW_NOTIFY_FILE,
						     .endpoint = sink };
			struct tw_notify_config cfg = { .state_dir = dir, .topics = topics, .ntopics = 2,
							.subs = &sub, .nsubs = 1, .no_delivery = 1,
							.orphans = (data[0] & 4) ? TW_NOTIFY_ORPHANS_KEEP
										 : TW_NOTIFY_ORPHANS_DEAD };
			struct tw_notify *n = NULL;
			if (tw_notify_open(&cfg, &n, &err) == TW_OK) {
				tw_notify_close(n);
				if (tw_notify_outbox_stat(dir, &st, &err) != TW_OK)
					abort(); /* recovery leaves a readable outbox */
			}
		}
	}
	free(f);
	return 0;
}
