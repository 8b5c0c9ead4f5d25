/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_cwlogs.c: CloudWatch Logs decoding (ingest/cwlogs.c) on arbitrary bytes: as one
 * object, as an export line, and as a blob through the dispatcher (which re-enters cwlogs.c).
 * Must never crash, leak or read out of bounds; results are thrown away. */
#include "ingest/ingest_int.h"
#include "tests/fuzz/fuzz.h"

static enum tw_rc drop(struct tw_decoder *d, const struct tw_reject *rej)
{
	(void)d;
	(void)rej;
	return TW_OK;
}

TW_FUZZ_TARGET(cwlogs)
{
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st = { 0 };
	struct tw_batch batch;
	struct tw_decoder d = { 0 };
	struct tw_pos pos = { 1, 0, 0 };
	int handled;

	tw_ingest_limits_default(&lim);
	lim.max_payload = 1u << 20; /* bombs stop early: fast runs */
	tw_batch_init(&batch);
	d.lim = &lim;
	d.st = &st;
	d.batch = &batch;
	d.source = "fuzz";
	d.reject = drop;
	tw_cw_decode_object(&d, (const char *)data, size, &pos, &handled);
	tw_cw_decode_export_line(&d, (const char *)data, size, &pos, &handled);
	tw_decode_blob(&d, (const char *)data, size, &pos);
	tw_batch_free(&batch);
	return 0;
}
