/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_ingest.c: `trailwatch ingest` and `trailwatch store` end to end on the
 * committed samples: every decoded record is stored once, its original bytes come back exactly
 * through a store snapshot, a second run stores nothing, a second writer is refused, and the
 * maintenance commands answer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/store.h"
#include "ingest/ingest.h"
#include "tests/helpers/helpers.h"

/* A multiset of raw records: sorted copies, compared after sorting. */
struct raws {
	char **v;   /* malloc'd copies, NUL-terminated */
	size_t *len; /* their lengths */
	size_t n, cap;
};

static void raws_add(struct raws *r, struct tw_str s)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->v = realloc(r->v, r->cap * sizeof *r->v);
		r->len = realloc(r->len, r->cap * sizeof *r->len);
		cr_assert(r->v && r->len);
	}
	r->v[r->n] = malloc(s.n + 1);
	cr_assert(r->v[r->n]);
	memcpy(r->v[r->n], s.p, s.n);
	r->v[r->n][s.n] = '\0';
	r->len[r->n] = s.n;
	r->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void raws_free(struct raws *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	free(r->len);
}

/* Collects the raw records in source order, keeping only the first record of each event id: the
 * samples deliver some CloudTrail events twice (through S3 and through CloudWatch Logs), which the
 * store must keep once. A linear search is enough for the samples' ~15k records when done by id
 * through a sorted copy at the end, so this keeps (id, raw) pairs and dedups later. */
struct idraw {
	char *id;      /* eventID (malloc'd) */
	size_t order;  /* position in source order */
};
struct collected {
	struct raws raws;   /* raw records in source order */
	struct idraw *ids;  /* one per record */
	size_t cap;         /* allocated ids */
};

static enum tw_rc collect(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	struct collected *c = ctx;
	(void)err;
	for (size_t i = 0; i < batch->n; i++) {
		struct tw_str id = batch->ev[i].f[TW_F_EVENT_ID];
		if (c->raws.n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 1024;
			c->ids = realloc(c->ids, c->cap * sizeof *c->ids);
			cr_assert(c->ids);
		}
		c->ids[c->raws.n].id = strndup(id.p ? id.p : "", id.n);
		c->ids[c->raws.n].order = c->raws.n;
		raws_add(&c->raws, batch->ev[i].raw);
	}
	return TW_OK;
}

static int cmp_idraw(const void *a, const void *b)
{
	const struct idraw *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Moves the first record of each event id into out. */
static void first_of_each_id(struct collected *c, struct raws *out)
{
	qsort(c->ids, c->raws.n, sizeof *c->ids, cmp_idraw);
	for (size_t i = 0; i < c->raws.n; i++) {
		if (i > 0 && !strcmp(c->ids[i].id, c->ids[i - 1].id) && c->ids[i].id[0])
			continue;
		raws_add(out, (struct tw_str){ c->raws.v[c->ids[i].order], c->raws.len[c->ids[i].order] });
	}
	for (size_t i = 0; i < c->raws.n; i++)
		free(c->ids[i].id);
	free(c->ids);
	raws_free(&c->raws);
}

static char *samples_path(const char *sub)
{
	return tw_test_join(tw_test_src(), sub);
}

static void run_ok(struct tw_test_run *r, const char *const *argv, int want)
{
	tw_test_run(r, NULL, argv);
	cr_assert_eq(r->status, want, "%s %s: exit %d, want %d\nstderr: %s", argv[1], argv[2] ? argv[2] : "",
		     r->status, want, r->err);
}

Test(cli_ingest, stores_every_sample_record_once_and_returns_its_bytes)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *store = tw_test_join(dir, "store");
	char *samples = samples_path("samples/trail");
	char *cw = samples_path("samples/cloudwatch");
	struct tw_test_run r;
	struct raws want = { 0 }, got = { 0 };
	struct collected all = { 0 };
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_sink sink = { collect, NULL, &all };
	struct tw_err err = { 0 };
	struct tw_snap *snap;
	const char *paths[2] = { samples, cw };

	/* What decoding the samples yields, straight from the decoders. */
	memset(&st, 0, sizeof st);
	tw_ingest_limits_default(&lim);
	cr_assert_eq(tw_ingest_paths(paths, 2, &lim, &sink, NULL, &st, &err), TW_OK, "%s", err.msg);
	first_of_each_id(&all, &want);
	cr_assert_gt(want.n, 10000);

	{
		const char *argv[] = { bin, "ingest", "--quiet", "--store", store, samples, cw, NULL };
		run_ok(&r, argv, 0);
		tw_test_run_free(&r);
	}
	/* Everything through a snapshot: segments record by record, then the WAL tail. */
	cr_assert_eq(tw_snap_open(store, &snap, &err), TW_OK, "%s", err.msg);
	for (size_t i = 0; i < tw_snap_nsegs(snap); i++) {
		struct tw_seg *seg = tw_snap_seg(snap, i);
		struct tw_seg_blockbuf bb;
		struct tw_arena a;
		tw_seg_blockbuf_init(&bb);
		tw_arena_init(&a, 0, 0);
		for (uint32_t rec = 0; rec < tw_seg_get_info(seg)->records; rec++) {
			struct tw_event ev;
			cr_assert_eq(tw_seg_get(seg, rec, &bb, &ev, &a, &err), TW_OK, "%s", err.msg);
			raws_add(&got, ev.raw);
		}
		tw_arena_free(&a);
		tw_seg_blockbuf_free(&bb);
	}
	for (size_t i = 0; i < tw_snap_tail(snap)->n; i++)
		raws_add(&got, tw_snap_tail(snap)->ev[i].raw);
	tw_snap_close(snap);

	/* The store holds exactly the first record of each event id, byte for byte. */
	cr_assert_eq(got.n, want.n, "store holds %zu records, decoding gave %zu", got.n, want.n);
	qsort(want.v, want.n, sizeof *want.v, cmp_str);
	qsort(got.v, got.n, sizeof *got.v, cmp_str);
	for (size_t i = 0; i < want.n; i++)
		cr_assert_str_eq(got.v[i], want.v[i], "record bytes differ after a round trip through the store");

	/* A second run stores nothing and says so. */
	{
		const char *argv[] = { bin, "ingest", "--store", store, samples, cw, NULL };
		char line[128];
		run_ok(&r, argv, 0);
		snprintf(line, sizeof line, "0 stored");
		cr_assert(tw_test_contains(r.err, r.nerr, line), "second run: %s", r.err);
		tw_test_run_free(&r);
	}
	{
		const char *argv[] = { bin, "store", "stats", store, "--format", "json", NULL };
		char want_rec[64];
		run_ok(&r, argv, 0);
		snprintf(want_rec, sizeof want_rec, "\"records\":%zu,", want.n);
		cr_assert(tw_test_contains(r.out, r.nout, want_rec), "stats: %s", r.out);
		cr_assert(tw_test_contains(r.out, r.nout, "\"bytes\":"), "stats: %s", r.out);
		tw_test_run_free(&r);
	}
	{
		/* Files the store directory holds are private to their owner, the quarantine included. */
		char *q = tw_test_join(store, "quarantine.jsonl");
		struct stat sb;
		cr_assert_eq(stat(q, &sb), 0, "%s", q);
		cr_assert_eq(sb.st_mode & 0777, 0600, "quarantine.jsonl mode %o", (unsigned)(sb.st_mode & 0777));
		free(q);
	}
	{
		const char *argv[] = { bin, "store", "verify", store, NULL };
		run_ok(&r, argv, 0);
		tw_test_run_free(&r);
	}
	{
		const char *argv[] = { bin, "store", "compact", store, NULL };
		run_ok(&r, argv, 0);
		tw_test_run_free(&r);
	}
	raws_free(&want);
	raws_free(&got);
	free(samples);
	free(cw);
	free(store);
	tw_test_tmpdir_free(dir);
}

Test(cli_ingest, second_writer_is_refused_with_a_clear_error)
{
	const char *bin = tw_test_bin();
	char *dir = tw_test_tmpdir();
	char *store = tw_test_join(dir, "store");
	char *input = tw_test_write_str(dir, "one.json",
		"{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-11-02T00:00:00Z\",\"eventName\":\"GetCallerIdentity\","
		"\"eventSource\":\"sts.amazonaws.com\",\"eventID\":\"11111111-2222-3333-4444-555555555555\"}\n");
	struct tw_store *s;
	struct tw_store_opts o;
	struct tw_err err = { 0 };
	struct tw_test_run r;

	tw_store_opts_default(&o);
	cr_assert_eq(tw_store_open(store, &o, &s, NULL, &err), TW_OK, "%s", err.msg);
	{
		const char *argv[] = { bin, "ingest", "--store", store, input, NULL };
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 3, "exit %d: %s", r.status, r.err);
		cr_assert(tw_test_contains(r.err, r.nerr, store), "the error names the store: %s", r.err);
		tw_test_run_free(&r);
	}
	cr_assert_eq(tw_store_close(s, &err), TW_OK, "%s", err.msg);
	{
		const char *argv[] = { bin, "ingest", "--quiet", "--store", store, input, NULL };
		run_ok(&r, argv, 0);
		tw_test_run_free(&r);
	}
	free(input);
	free(store);
	tw_test_tmpdir_free(dir);
}

Test(cli_ingest, usage_errors_exit_2)
{
	const char *bin = tw_test_bin();
	struct tw_test_run r;
	const char *argv[] = { bin, "ingest", "samples", NULL };
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "--store"), "%s", r.err);
	tw_test_run_free(&r);
	{
		const char *argv2[] = { bin, "store", "frobnicate", "/nonexistent", NULL };
		tw_test_run(&r, NULL, argv2);
		cr_assert_eq(r.status, 2);
		tw_test_run_free(&r);
	}
}
