/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/seedgen.c: writes the seed files of the wal, segment and state fuzz targets with the
 * project's own writers (index/wal.c, index/segment.c, the detectors' and band's save), from the
 * CloudTrail and CloudWatch Logs seeds of the other targets: `make fuzz-seeds` (rewrites
 * tests/fuzz/corpus/{wal,segment,state}/seed-*). Each seed starts with the target's mode byte (see
 * fuzz_wal.c, fuzz_segment.c, fuzz_state.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/band.h"
#include "alerts/firstseen.h"
#include "alerts/insight.h"
#include "index/evcodec.h"
#include "index/segment.h"
#include "index/wal.h"
#include "ingest/ingest.h"

static const char *const inputs[] = {
	"tests/fuzz/corpus/cloudtrail/seed-s3.json",
	"tests/fuzz/corpus/cloudtrail/seed-assumed-role.json",
	"tests/fuzz/corpus/cloudtrail/seed-insight.json",
	"tests/fuzz/corpus/cloudtrail/seed-root-govcloud.json",
	"tests/fuzz/corpus/cwlogs/payload_text.json",
};

static enum tw_rc keep(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	return tw_evcodec_encode_batch(ctx, batch->ev, batch->n, err); /* one payload per input */
}

static enum tw_rc drop(void *ctx, const struct tw_reject *rej, struct tw_err *err)
{
	(void)ctx;
	(void)rej;
	(void)err;
	return TW_OK;
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p = malloc(1 << 20);

	if (!f || !p) {
		fprintf(stderr, "seedgen: %s: cannot read\n", path);
		exit(3);
	}
	*n = fread(p, 1, 1 << 20, f);
	fclose(f);
	return p;
}

/* Writes mode byte + the file at src into dst. */
static void seed(const char *dst, int mode, const char *src, size_t cut)
{
	size_t n;
	char *p = slurp(src, &n);
	FILE *f = fopen(dst, "wb");

	if (!f) {
		fprintf(stderr, "seedgen: %s: cannot write\n", dst);
		exit(3);
	}
	if (cut && cut < n)
		n -= cut;
	fputc(mode, f);
	fwrite(p, 1, n, f);
	fclose(f);
	free(p);
}

static void die(const struct tw_err *err)
{
	fprintf(stderr, "seedgen: %s\n", err->msg);
	exit(3);
}

static void put(const char *dst, int mode, const struct tw_buf *b)
{
	FILE *f = fopen(dst, "wb");

	if (!f) {
		fprintf(stderr, "seedgen: %s: cannot write\n", dst);
		exit(3);
	}
	fputc(mode, f);
	fwrite(b->p, 1, b->n, f);
	fclose(f);
}

static void no_emit(void *ctx, const struct tw_anomaly *a)
{
	(void)ctx;
	(void)a;
}

/* Detector states after the CloudTrail events of all (shifted a minute apart), and a band model. */
static void states(const char *corpus, const struct tw_batch *all)
{
	struct tw_insight *ins;
	struct tw_firstseen *fs;
	struct tw_band band;
	struct tw_buf b;
	struct tw_err err;
	char out[512];

	tw_buf_init(&b, 16 << 20);
	if (tw_insight_new(NULL, &ins, &err) || tw_firstseen_new(NULL, &fs, &err))
		die(&err);
	for (int round = 0; round < 40; round++)
		for (size_t i = 0; i < all->n; i++) {
			const struct tw_event *e = &all->ev[i];
			int64_t t = 1793598360000LL + 60000LL * (round * (int64_t)all->n + (int64_t)i);
			struct tw_insight_obs io = { t, e->f[TW_F_ACCOUNT], e->f[TW_F_REGION], e->f[TW_F_EVENT_SOURCE],
						     e->f[TW_F_EVENT_NAME], e->f[TW_F_PRINCIPAL], e->f[TW_F_USER_AGENT],
						     e->f[TW_F_ERROR_CODE], e->f[TW_F_EVENT_ID] };
			struct tw_firstseen_obs fo = { t, e->f[TW_F_ACCOUNT], e->f[TW_F_REGION], e->f[TW_F_EVENT_SOURCE],
						       e->f[TW_F_EVENT_NAME], e->f[TW_F_PRINCIPAL], e->f[TW_F_SOURCE_IP],
						       e->f[TW_F_USER_AGENT], e->f[TW_F_EVENT_ID] };
			if (e->kind != TW_KIND_CLOUDTRAIL)
				continue;
			if (tw_insight_observe(ins, &io, no_emit, NULL, &err) ||
			    tw_firstseen_observe(fs, &fo, no_emit, NULL, &err))
				die(&err);
		}
	if (tw_insight_save(ins, &b, &err))
		die(&err);
	snprintf(out, sizeof out, "%s/state/seed-insight", corpus);
	put(out, 0, &b);
	snprintf(out, sizeof out, "%s/state/seed-insight-fix", corpus);
	put(out, 4, &b);
	tw_buf_reset(&b);
	if (tw_firstseen_save(fs, &b, &err))
		die(&err);
	snprintf(out, sizeof out, "%s/state/seed-firstseen", corpus);
	put(out, 1, &b);
	snprintf(out, sizeof out, "%s/state/seed-firstseen-fix", corpus);
	put(out, 5, &b);
	tw_buf_reset(&b);
	tw_band_init(&band, 2);
	for (int i = 0; i < 500; i++)
		if (tw_band_update(&band, 1793598360000LL + 60000LL * i, (double)(i % 37) + (i % 5) * 0.5, NULL, &err))
			die(&err);
	if (tw_band_save(&band, &b, &err))
		die(&err);
	snprintf(out, sizeof out, "%s/state/seed-band", corpus);
	put(out, 2, &b);
	snprintf(out, sizeof out, "%s/state/seed-band-fix", corpus);
	put(out, 6, &b);
	tw_insight_free(ins);
	tw_firstseen_free(fs);
	tw_buf_free(&b);
}

static void segment(const char *tmp, const char *out, struct tw_batch *all, enum tw_seg_codec codec,
		    size_t block_bytes, int mode)
{
	struct tw_seg_opts o;
	struct tw_err err;
	char path[512];

	tw_seg_opts_default(&o);
	o.codec = codec;
	o.block_bytes = block_bytes;
	o.fsync = 0;
	snprintf(path, sizeof path, "%s/seg", tmp);
	if (tw_seg_write(path, all->ev, all->n, &o, NULL, &err))
		die(&err);
	seed(out, mode, path, 0);
	unlink(path);
}

int main(int argc, char **argv)
{
	const char *corpus = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	char tmp[] = "/tmp/tw-seedgen-XXXXXX", path[512], out[512];
	struct tw_buf payload[sizeof inputs / sizeof inputs[0]];
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st = { 0 };
	struct tw_batch all;
	struct tw_wal *w;
	struct tw_err err;
	size_t k = sizeof inputs / sizeof inputs[0];

	if (!mkdtemp(tmp))
		return 3;
	tw_ingest_limits_default(&lim);
	tw_batch_init(&all);
	for (size_t i = 0; i < k; i++) {
		struct tw_sink sink = { keep, drop, &payload[i] };
		size_t n;
		char *p = slurp(inputs[i], &n);
		tw_buf_init(&payload[i], 1 << 20);
		if (tw_ingest_buffer(inputs[i], p, n, &lim, &sink, NULL, &st, &err) ||
		    tw_evcodec_decode_batch(payload[i].p, payload[i].n, 0, &all, &err))
			die(&err);
		free(p);
	}
	/* WAL: one frame per input, then an empty batch */
	snprintf(path, sizeof path, "%s/wal", tmp);
	if (tw_wal_open(path, &(struct tw_wal_opts){ .max_frame = 1 << 20, .first_seq = 7 }, &w, NULL, &err))
		die(&err);
	for (size_t i = 0; i < k; i++)
		if (tw_wal_append(w, payload[i].p, payload[i].n, NULL, &err))
			die(&err);
	if (tw_wal_append(w, "", 1, NULL, &err))
		die(&err);
	tw_wal_close(w);
	snprintf(out, sizeof out, "%s/wal/seed-frames", corpus);
	seed(out, 0, path, 0);
	snprintf(out, sizeof out, "%s/wal/seed-frames-fix", corpus);
	seed(out, 1, path, 0);
	snprintf(out, sizeof out, "%s/wal/seed-recover", corpus);
	seed(out, 3, path, 0);
	snprintf(out, sizeof out, "%s/wal/seed-torn-tail", corpus);
	seed(out, 2, path, 5);
	unlink(path);
	if (tw_wal_open(path, NULL, &w, NULL, &err))
		die(&err);
	tw_wal_close(w);
	snprintf(out, sizeof out, "%s/wal/seed-header-only", corpus);
	seed(out, 3, path, 0);
	unlink(path);

	/* segments: every codec, one block and many small ones */
	snprintf(out, sizeof out, "%s/segment/seed-zstd", corpus);
	segment(tmp, out, &all, TW_SEG_ZSTD, 0, 0);
	snprintf(out, sizeof out, "%s/segment/seed-deflate", corpus);
	segment(tmp, out, &all, TW_SEG_DEFLATE, 0, 0);
	snprintf(out, sizeof out, "%s/segment/seed-raw-fix", corpus);
	segment(tmp, out, &all, TW_SEG_RAW, 0, 1);
	snprintf(out, sizeof out, "%s/segment/seed-raw-blocks-fix", corpus);
	segment(tmp, out, &all, TW_SEG_RAW, 256, 1);
	states(corpus, &all);
	all.n = 0;
	snprintf(out, sizeof out, "%s/segment/seed-empty-fix", corpus);
	segment(tmp, out, &all, TW_SEG_RAW, 0, 1);

	for (size_t i = 0; i < k; i++)
		tw_buf_free(&payload[i]);
	tw_batch_free(&all);
	rmdir(tmp);
	return 0;
}
