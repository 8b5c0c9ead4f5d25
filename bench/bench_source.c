/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_source.c: tw_ingest_paths end to end into a sink that only counts, for measuring
 * the source (read, inflate, split, decode, deliver). Built by hand, not by make:
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -g -I. -pthread bench/bench_source.c build/libtrailwatch.a \
 *      $(pkg-config --libs zlib libpcre2-8 jansson libcurl rdkafka libisal) -lm -o build/bench_source
 *   build/bench_source [-t THREADS] [-r REPEAT] PATH...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/ingest.h"

/* What the counting sink saw. */
struct count {
	uint64_t events;  /* events delivered */
	uint64_t batches; /* on_batch calls */
	uint64_t rejects; /* on_reject calls */
	uint64_t raw;     /* bytes of raw records */
};

static enum tw_rc on_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	struct count *c = ctx;
	(void)err;
	c->batches++;
	c->events += batch->n;
	for (size_t i = 0; i < batch->n; i++)
		c->raw += batch->ev[i].raw.n;
	return TW_OK;
}

static enum tw_rc on_reject(void *ctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct count *c = ctx;
	(void)err;
	if (c->rejects++ < 5)
		fprintf(stderr, "reject %s:%llu: %s\n", rej->source, (unsigned long long)rej->line, rej->reason);
	return TW_OK;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct tw_ingest_limits lim;
	int i = 1, repeat = 1;

	tw_ingest_limits_default(&lim);
	while (i + 1 < argc && argv[i][0] == '-' && argv[i][1]) {
		if (!strcmp(argv[i], "-t"))
			lim.threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "-r"))
			repeat = (int)strtol(argv[i + 1], NULL, 10);
		else
			break;
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [-t THREADS] [-r REPEAT] PATH...\n", argv[0]);
		return 2;
	}
	for (int rep = 0; rep < repeat; rep++) {
		struct count c = { 0, 0, 0, 0 };
		struct tw_sink sink = { on_batch, on_reject, &c };
		struct tw_ingest_stats st;
		struct tw_err err;
		double t0, dt;
		enum tw_rc rc;

		memset(&st, 0, sizeof st);
		t0 = now();
		rc = tw_ingest_paths((const char *const *)argv + i, (size_t)(argc - i), &lim, &sink, NULL, &st, &err);
		dt = now() - t0;
		if (rc)
			fprintf(stderr, "error: %s\n", err.msg);
		printf("threads=%u events=%llu batches=%llu rejects=%llu time=%.3fs  %.0f events/s  "
		       "%.1f MB/s in  %.1f MB/s decoded\n",
		       lim.threads, (unsigned long long)c.events, (unsigned long long)c.batches,
		       (unsigned long long)c.rejects, dt, (double)c.events / dt,
		       (double)st.bytes_in / dt / 1e6, (double)st.bytes_decoded / dt / 1e6);
	}
	return 0;
}
