/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_decode.c: tw_ingest_buffer (sniffing, inflating, splitting, dispatching) on
 * arbitrary bytes, with small caps so the splitter's over-cap and resync paths run often and
 * bombs stop early. Must never crash, leak or read out of bounds; results are thrown away. */
#include "ingest/ingest.h"
#include "tests/fuzz/fuzz.h"

static enum tw_rc drop_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	(void)ctx;
	(void)err;
	return batch->n ? TW_OK : TW_EINVAL; /* the source never hands over an empty batch */
}

static enum tw_rc drop_reject(void *ctx, const struct tw_reject *rej, struct tw_err *err)
{
	(void)ctx;
	(void)err;
	return rej->reason ? TW_OK : TW_EINVAL;
}

TW_FUZZ_TARGET(decode)
{
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st = { 0 };
	struct tw_sink sink = { drop_batch, drop_reject, NULL };
	struct tw_err err;

	tw_ingest_limits_default(&lim);
	lim.max_record = 4096;
	lim.max_payload = 1u << 20;
	lim.batch_events = 7;
	tw_ingest_buffer("fuzz", data, size, &lim, &sink, NULL, &st, &err);
	return 0;
}
