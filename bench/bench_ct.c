/* SPDX-License-Identifier: Apache-2.0 */
/* bench/bench_ct.c: micro benchmark of the ingest hot path on one core: tw_json_validate and
 * tw_ct_decode over every line of a JSON-lines file held in memory. Not built by the Makefile:
 *
 *   make build/libtrailwatch.a
 *   cc -std=c11 -D_GNU_SOURCE -O2 -g -I. bench/bench_ct.c build/libtrailwatch.a \
 *      $(pkg-config --libs zlib libpcre2-8 jansson libcurl rdkafka libisal) -pthread -lm -o build/bench_ct
 *   zcat /tmp/bench/ct-1m.jsonl.gz | head -200000 > /tmp/ct200k.jsonl
 *   build/bench_ct /tmp/ct200k.jsonl [rounds] [validate|decode|all]
 *   perf record -o /tmp/ct.perf build/bench_ct /tmp/ct200k.jsonl 3 decode && perf report -i /tmp/ct.perf
 *
 * Prints, for each round, MB/s and records/s of each function (best round last), and jansson's
 * json_loadb over the same records once, for scale (the machine is shared: compare ratios). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/json.h"
#include "ingest/ingest_int.h"

/* CPU time of this thread: on a shared machine it leaves out the time others' work kept us off
 * the core (cache and memory contention still show). */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	FILE *f;
	char *buf;
	long size;
	size_t nrec = 0, cap = 1024, bytes = 0;
	struct tw_str *rec;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	const char *mode = argc > 3 ? argv[3] : "all"; /* validate, decode or all (adds jansson) */
	int do_v = strcmp(mode, "decode") != 0, do_d = strcmp(mode, "validate") != 0;
	double best_v = 1e30, best_d = 1e30;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE.jsonl [rounds] [validate|decode|all]\n", argv[0]);
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		perror(argv[1]);
		return 1;
	}
	buf = malloc((size_t)size + 1);
	rec = malloc(cap * sizeof *rec);
	if (!buf || !rec || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "%s: cannot read\n", argv[1]);
		return 1;
	}
	fclose(f);
	for (char *p = buf, *end = buf + size; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n) {
			if (nrec == cap) {
				cap *= 2;
				rec = realloc(rec, cap * sizeof *rec);
				if (!rec)
					return 1;
			}
			rec[nrec].p = p;
			rec[nrec++].n = n;
			bytes += n;
		}
		p += n + 1;
	}
	printf("%zu records, %.1f MB, %.0f bytes/record\n", nrec, (double)bytes / 1e6,
	       nrec ? (double)bytes / (double)nrec : 0.0);

	for (int r = 0; r < rounds; r++) {
		struct tw_arena a;
		struct tw_err err;
		size_t bad = 0, events = 0, nres = 0;
		double t0, tv, td;

		t0 = now();
		for (size_t i = 0; do_v && i < nrec; i++)
			bad += tw_json_validate(rec[i].p, rec[i].n, 256, &err) != TW_OK;
		tv = now() - t0;

		tw_arena_init(&a, 1 << 20, 0);
		t0 = now();
		for (size_t i = 0; do_d && i < nrec; i++) {
			struct tw_event ev;
			enum tw_rec_class cls;
			memset(&ev, 0, sizeof ev);
			ev.read_only = -1;
			if (tw_ct_decode(rec[i].p, rec[i].n, 256, &a, &ev, &cls, &err) == TW_OK && cls == TW_REC_EVENT) {
				events++;
				nres += ev.nresources;
			}
			if ((i & 4095) == 4095)
				tw_arena_reset(&a); /* as a batch of 4096 would */
		}
		td = now() - t0;
		tw_arena_free(&a);
		if (tv < best_v)
			best_v = tv;
		if (td < best_d)
			best_d = td;
		printf("round %d:", r + 1);
		if (do_v)
			printf(" validate %.0f MB/s %.0fk rec/s (%zu invalid)", (double)bytes / tv / 1e6,
			       (double)nrec / tv / 1e3, bad);
		if (do_d)
			printf(" | ct_decode %.0f MB/s %.0fk rec/s (%zu events, %.2f resources/event)",
			       (double)bytes / td / 1e6, (double)nrec / td / 1e3, events,
			       events ? (double)nres / (double)events : 0.0);
		printf("\n");
	}
	if (!strcmp(mode, "all")) {
		double t0 = now(), tj;
		size_t bad = 0;
		for (size_t i = 0; i < nrec; i++) {
			json_error_t je;
			json_t *v = json_loadb(rec[i].p, rec[i].n, 0, &je);
			bad += v == NULL;
			json_decref(v);
		}
		tj = now() - t0;
		printf("jansson json_loadb: %.0f MB/s %.0fk rec/s (%zu invalid)\n", (double)bytes / tj / 1e6,
		       (double)nrec / tj / 1e3, bad);
	}
	printf("best:");
	if (do_v)
		printf(" validate %.0f MB/s %.0fk rec/s", (double)bytes / best_v / 1e6, (double)nrec / best_v / 1e3);
	if (do_d)
		printf(" | ct_decode %.0f MB/s %.0fk rec/s", (double)bytes / best_d / 1e6, (double)nrec / best_d / 1e3);
	printf("\n");
	free(rec);
	free(buf);
	return 0;
}
