/* SPDX-License-Identifier: Apache-2.0 */
/* cli/ingest.c: `trailwatch ingest --store DIR PATH...`: decodes inputs (the same sources as
 * decode) and writes the events into a store. Batches are appended in source order by a store
 * thread, each durable in the store (WAL, fsync) before the next is written and before the run
 * counts it stored; duplicates (same event id, or same content for records without
 * one) are skipped and counted, so re-running over the same files stores nothing twice.
 * Rejected records are reported like decode does and kept in DIR/quarantine.jsonl by default;
 * CloudTrail digest files are kept under DIR/digests/ for later verification. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "index/store.h"
#include "ingest/ingest.h"

#define CMD "ingest"

struct appender;

struct ingest_ctx {
	struct tw_store *store;        /* the writer */
	struct tw_cli_rejects rej;     /* stderr lines and the quarantine file */
	struct tw_cli_progress pg;     /* progress line on a terminal */
	uint64_t stored;               /* events written */
	uint64_t duplicates;           /* events skipped as already stored */
	int quar_failed;               /* 1 when the quarantine file could not be written */
	struct tw_err serr;            /* the store's error when it stopped the run */
	int store_failed;              /* 1 when tw_store_append failed */
	const char *dir;               /* the store directory */
	uint64_t digests_kept;         /* digest files written under DIR/digests/ */
	uint64_t digests_failed;       /* digest files that could not be written */
	pthread_mutex_t mu;            /* on_digest runs on decoding threads */
	struct appender *app;          /* the store thread, or NULL: tw_store_append inline */
	struct tw_cli_metrics *metrics; /* the series beside the store, NULL with --no-metrics */
};

static void usage(FILE *f)
{
	fputs("usage: trailwatch ingest --store DIR [OPTIONS] [PATH...]\n"
	      "\n"
	      "Decodes CloudTrail and CloudWatch Logs inputs (the same as 'trailwatch decode': files,\n"
	      "S3-layout directories, '-' for stdin) and writes the events into the store DIR (created\n"
	      "if missing). Every batch is made durable (in order) before the run counts it stored.\n"
	      "Records already in the store (same eventID, or same content when there is none) are\n"
	      "skipped and counted, so ingesting the same files twice stores nothing twice.\n"
	      "\n"
	      "options:\n"
	      "  -S, --store DIR         the store (required)\n"
	      "      --quarantine FILE   where rejected records go (default DIR/quarantine.jsonl)\n"
	      "  -t, --threads N         decode threads (default 0: one per core)\n"
	      "      --max-record SIZE   largest record accepted (default 8M)\n"
	      "      --max-inflated SIZE largest decompressed size per file (default 16G)\n"
	      "      --no-seal           leave the last events in the WAL instead of sealing a segment\n"
	      "      --no-metrics        do not compute the metrics (DIR/metrics: 'trailwatch metrics');\n"
	      "                          by default every new event is counted and, at the end, every\n"
	      "                          period is closed\n"
	      "  -q, --quiet             no summary and no progress line\n"
	      "  -h, --help              this help\n"
	      "\n"
	      "exit codes: 0 all stored; 1 some records quarantined or paths unreadable;\n"
	      "2 usage error; 3 store or I/O error (another writer holds the store, disk full...).\n",
	      f);
}

/* ---- the store thread ----------------------------------------------------------------------
 * The calling thread of the source reads, inflates and splits the input; tw_store_append (dedup,
 * encode, WAL write, fdatasync) is as much work again. So on_batch copies the batch into a slot
 * and a store thread appends the slots strictly in order, each durable (tw_store_append's
 * contract) before the next is written. What a run reports as stored is what the store thread
 * had appended; the first store failure stops the run at the next on_batch, and everything
 * appended before it is durable. A few slots bound the memory (each about one source chunk). */
#define APP_SLOTS 3

/* One batch copied out of the source's memory. */
struct appslot {
	struct tw_event *ev;   /* the events; their strings point into bytes / res */
	size_t n;              /* events in use */
	size_t cap;            /* events allocated */
	struct tw_buf bytes;   /* raw records and the strings that are not inside them */
	struct tw_str *res;    /* resources arrays of all the events, back to back */
	size_t nres;           /* entries in use */
	size_t capres;         /* entries allocated */
};

/* The queue between on_batch and the store thread (a ring of APP_SLOTS slots). */
struct appender {
	struct ingest_ctx *ctx;   /* stored / duplicates / serr / store_failed are written by the thread */
	pthread_t th;             /* the store thread */
	pthread_mutex_t mu;       /* guards head, len, quit, failed */
	pthread_cond_t cv;        /* a slot was filled, emptied, or quit */
	struct appslot slot[APP_SLOTS]; /* the ring */
	size_t head;              /* oldest filled slot */
	size_t len;               /* filled slots */
	int quit;                 /* no more batches: the thread exits once the ring is empty */
	int failed;               /* set by the thread when tw_store_append failed */
};

/* 1 if s is empty or lies inside raw. */
static int in_raw(struct tw_str s, struct tw_str raw)
{
	uintptr_t a = (uintptr_t)s.p, r = (uintptr_t)raw.p;

	return !s.n || (raw.n && a >= r && a - r <= raw.n && s.n <= raw.n - (a - r));
}

/* A string of an event: inside the event's raw record (the common case for decoded fields) it
 * is re-pointed into the copy of raw, else appended to bytes. */
static struct tw_str copy_str(struct tw_str s, struct tw_str raw, const char *rawcopy, struct tw_buf *bytes)
{
	struct tw_str out = { NULL, 0 };

	if (!s.n)
		return out;
	out.n = s.n;
	if (!in_raw(s, raw)) {
		out.p = bytes->p + bytes->n;
		memcpy(bytes->p + bytes->n, s.p, s.n);
		bytes->n += s.n;
		return out;
	}
	out.p = rawcopy + ((uintptr_t)s.p - (uintptr_t)raw.p);
	return out;
}

/* Deep-copies batch into sl (sized first, so no pointer moves while filling). */
static enum tw_rc slot_fill(struct appslot *sl, const struct tw_batch *batch, struct tw_err *err)
{
	size_t need = 0, nres = 0, i;
	enum tw_rc rc;

	for (i = 0; i < batch->n; i++) {
		const struct tw_event *e = &batch->ev[i];

		need += e->raw.n;
		for (int f = 0; f < TW_F__COUNT; f++)
			if (!in_raw(e->f[f], e->raw))
				need += e->f[f].n;
		for (uint32_t r = 0; r < e->nresources; r++)
			if (!in_raw(e->resources[r], e->raw))
				need += e->resources[r].n;
		nres += e->nresources;
	}
	tw_buf_reset(&sl->bytes);
	if ((rc = tw_buf_reserve(&sl->bytes, need, err)))
		return rc;
	if (batch->n > sl->cap) {
		struct tw_event *p = realloc(sl->ev, batch->n * sizeof *p);
		if (!p)
			return tw_err_set(err, TW_ENOMEM, "out of memory copying a batch");
		sl->ev = p;
		sl->cap = batch->n;
	}
	if (nres > sl->capres) {
		struct tw_str *p = realloc(sl->res, nres * sizeof *p);
		if (!p)
			return tw_err_set(err, TW_ENOMEM, "out of memory copying a batch");
		sl->res = p;
		sl->capres = nres;
	}
	sl->nres = 0;
	for (i = 0; i < batch->n; i++) {
		const struct tw_event *e = &batch->ev[i];
		struct tw_event *d = &sl->ev[i];
		char *rawcopy = sl->bytes.p + sl->bytes.n;

		*d = *e;
		if (e->raw.n) {
			memcpy(rawcopy, e->raw.p, e->raw.n);
			sl->bytes.n += e->raw.n;
			d->raw.p = rawcopy;
		}
		for (int f = 0; f < TW_F__COUNT; f++)
			d->f[f] = copy_str(e->f[f], e->raw, rawcopy, &sl->bytes);
		if (e->nresources) {
			d->resources = sl->res + sl->nres;
			for (uint32_t r = 0; r < e->nresources; r++)
				d->resources[r] = copy_str(e->resources[r], e->raw, rawcopy, &sl->bytes);
			sl->nres += e->nresources;
		} else {
			d->resources = NULL;
		}
	}
	sl->n = batch->n;
	return TW_OK;
}

static void *app_thread(void *arg)
{
	struct appender *a = arg;
	struct ingest_ctx *ctx = a->ctx;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		struct appslot *sl;
		struct tw_store_append_result res = { 0, 0 };
		struct tw_batch view;
		enum tw_rc rc;

		while (!a->len && !a->quit)
			pthread_cond_wait(&a->cv, &a->mu);
		if (!a->len)
			break;
		sl = &a->slot[a->head];
		pthread_mutex_unlock(&a->mu);
		rc = TW_OK;
		if (!ctx->store_failed) {
			memset(&view, 0, sizeof view);
			view.ev = sl->ev;
			view.n = view.cap = sl->n;
			rc = tw_cli_store_append(ctx->store, ctx->metrics, &view, &res, &ctx->serr);
			if (rc == TW_OK) {
				ctx->stored += res.stored;
				ctx->duplicates += res.duplicates;
			}
		}
		pthread_mutex_lock(&a->mu);
		if (rc != TW_OK) {
			ctx->store_failed = 1;
			a->failed = 1;
		}
		a->head = (a->head + 1) % APP_SLOTS;
		a->len--;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static struct appender *app_start(struct ingest_ctx *ctx)
{
	struct appender *a = calloc(1, sizeof *a);

	if (!a)
		return NULL;
	a->ctx = ctx;
	for (int i = 0; i < APP_SLOTS; i++)
		tw_buf_init(&a->slot[i].bytes, SIZE_MAX / 2);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->th, NULL, app_thread, a) != 0) {
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->cv);
		free(a);
		return NULL;
	}
	return a;
}

/* Waits until every queued batch is appended and ends the thread. NULL is fine. */
static void app_finish(struct appender *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->quit = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->th, NULL);
	for (int i = 0; i < APP_SLOTS; i++) {
		free(a->slot[i].ev);
		free(a->slot[i].res);
		tw_buf_free(&a->slot[i].bytes);
	}
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}

/* Queues a copy of batch for the store thread; waits for a free slot. */
static enum tw_rc app_push(struct appender *a, const struct tw_batch *batch, struct tw_err *err)
{
	struct appslot *sl;
	enum tw_rc rc;

	pthread_mutex_lock(&a->mu);
	while (a->len == APP_SLOTS && !a->failed)
		pthread_cond_wait(&a->cv, &a->mu);
	if (a->failed) {
		pthread_mutex_unlock(&a->mu);
		return tw_err_set(err, TW_ESTOP, "store failed");
	}
	sl = &a->slot[(a->head + a->len) % APP_SLOTS];
	pthread_mutex_unlock(&a->mu);
	/* only this thread fills slots, and the store thread does not touch a free one */
	if ((rc = slot_fill(sl, batch, err)))
		return rc;
	pthread_mutex_lock(&a->mu);
	a->len++;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return TW_OK;
}

static enum tw_rc on_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct ingest_ctx *ctx = vctx;
	struct tw_store_append_result res = { 0, 0 };

	if (ctx->app)
		return app_push(ctx->app, batch, err);
	if (tw_cli_store_append(ctx->store, ctx->metrics, batch, &res, &ctx->serr) != TW_OK) {
		ctx->store_failed = 1;
		return tw_err_set(err, TW_ESTOP, "store failed");
	}
	ctx->stored += res.stored;
	ctx->duplicates += res.duplicates;
	return TW_OK;
}

static enum tw_rc on_reject(void *vctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct ingest_ctx *ctx = vctx;

	if (tw_cli_rejects_add(&ctx->rej, rej, &ctx->serr) != TW_OK) {
		ctx->quar_failed = 1;
		return tw_err_set(err, TW_ESTOP, "quarantine failed");
	}
	return TW_OK;
}

/* CloudTrail digest files are not events, but they are what proves a trail was not tampered
 * with: keep each one, as decoded JSON, under DIR/digests/ named after its file (so ingesting the
 * same files again rewrites the same names). */
static void on_digest(void *vctx, const char *source, struct tw_str bytes)
{
	struct ingest_ctx *ctx = vctx;
	const char *base = strrchr(source, '/');
	char path[4096];
	size_t blen;
	FILE *f;

	base = base ? base + 1 : source;
	blen = strlen(base);
	if (blen > 3 && !strcmp(base + blen - 3, ".gz"))
		blen -= 3;
	if (!blen || (blen == 1 && base[0] == '-'))
		base = "stdin", blen = 5;
	pthread_mutex_lock(&ctx->mu);
	snprintf(path, sizeof path, "%s/digests", ctx->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/digests/%.*s", ctx->dir, (int)blen, base);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (fd >= 0 && !f)
			close(fd);
	}
	if (f && fwrite(bytes.p, 1, bytes.n, f) == bytes.n && fclose(f) == 0) {
		ctx->digests_kept++;
	} else {
		if (f)
			fclose(f);
		ctx->digests_failed++;
	}
	pthread_mutex_unlock(&ctx->mu);
}

static void on_progress(void *vctx, const struct tw_ingest_stats *st, const char *current)
{
	struct ingest_ctx *ctx = vctx;
	(void)current;
	tw_cli_progress_update(&ctx->pg, st->files, tw_ingest_stats_events(st), st->bytes_in, 0);
}

static void print_summary(const struct ingest_ctx *ctx, const char *dir, const struct tw_ingest_stats *st,
			  double secs)
{
	char a[32], b[32], c[32], d[32];
	struct tw_store_stats ss;
	struct tw_err err;
	uint64_t events = tw_ingest_stats_events(st);

	fprintf(stderr, "trailwatch ingest: %llu files, %s read (%s decoded) in %.2f s\n",
		(unsigned long long)st->files, tw_cli_fmt_bytes(st->bytes_in, a, sizeof a),
		tw_cli_fmt_bytes(st->bytes_decoded, b, sizeof b), secs);
	fprintf(stderr, "  events:      %s decoded, %s stored, %s duplicates skipped\n",
		tw_cli_fmt_count(events, a, sizeof a), tw_cli_fmt_count(ctx->stored, b, sizeof b),
		tw_cli_fmt_count(ctx->duplicates, c, sizeof c));
	fprintf(stderr, "  skipped:     %s digests%s%s%s, %s control messages, %s other\n",
		tw_cli_fmt_count(st->digests, a, sizeof a), ctx->digests_kept ? " (kept in " : "",
		ctx->digests_kept ? dir : "", ctx->digests_kept ? "/digests/)" : "",
		tw_cli_fmt_count(st->control_messages, b, sizeof b), tw_cli_fmt_count(st->skipped, c, sizeof c));
	if (ctx->digests_failed)
		fprintf(stderr, "  warning:     %llu digest files could not be written under %s/digests/\n",
			(unsigned long long)ctx->digests_failed, dir);
	fprintf(stderr, "  quarantined: %s%s%s\n", tw_cli_fmt_count(st->quarantined, a, sizeof a),
		st->quarantined ? " -> " : "", st->quarantined ? ctx->rej.quar_path : "");
	fprintf(stderr, "  rate:        %s events/s, %s/s decoded\n",
		tw_cli_fmt_count(secs > 0 ? (uint64_t)((double)events / secs) : 0, a, sizeof a),
		tw_cli_fmt_bytes(secs > 0 ? (uint64_t)((double)st->bytes_decoded / secs) : 0, b, sizeof b));
	tw_err_clear(&err);
	if (tw_store_stat(dir, &ss, &err) == TW_OK)
		fprintf(stderr, "  store:       %s records in %llu segment%s (+%s in the WAL), %s on disk\n",
			tw_cli_fmt_count(ss.records, a, sizeof a), (unsigned long long)ss.segments,
			ss.segments == 1 ? "" : "s",
			tw_cli_fmt_count(ss.wal_records, c, sizeof c), tw_cli_fmt_bytes(ss.bytes_total, d, sizeof d));
}

int tw_cli_ingest(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' },
		{ "quarantine", required_argument, NULL, 'Q' },
		{ "threads", required_argument, NULL, 't' },
		{ "max-record", required_argument, NULL, 'R' },
		{ "max-inflated", required_argument, NULL, 'I' },
		{ "no-seal", no_argument, NULL, 'N' },
		{ "no-metrics", no_argument, NULL, 'M' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ingest_ctx ctx;
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_ingest_hooks hooks;
	struct tw_store_opts sopts;
	struct tw_store_recovery rec;
	struct tw_sink sink;
	struct tw_err err;
	const char *dir = NULL, *quar = NULL;
	const char **paths = NULL;
	char *quar_default = NULL;
	size_t npaths = 0;
	unsigned bad_paths = 0;
	int quiet = 0, seal = 1, metrics = 1, c, ex = TW_EXIT_OK;
	enum tw_rc rc = TW_OK;
	double t0;

	memset(&ctx, 0, sizeof ctx);
	memset(&st, 0, sizeof st);
	memset(&rec, 0, sizeof rec);
	tw_err_clear(&err);
	tw_err_clear(&ctx.serr);
	tw_ingest_limits_default(&lim);
	pthread_mutex_init(&ctx.mu, NULL);

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			dir = optarg;
			break;
		case 'Q':
			quar = optarg;
			break;
		case 't':
		case 'R':
		case 'I':
			if (tw_cli_input_opt(CMD, c, optarg, &lim))
				return TW_EXIT_USAGE;
			break;
		case 'N':
			seal = 0;
			break;
		case 'M':
			metrics = 0;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (!dir)
		return tw_cli_usage_error(CMD, "--store DIR is required");
	ctx.dir = dir;

	if (tw_cli_input_paths(argc, argv, optind, &paths, &npaths, &bad_paths))
		return TW_EXIT_FAIL;

	tw_store_opts_default(&sopts);
	if (tw_store_open(dir, &sopts, &ctx.store, &rec, &err) != TW_OK) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
		goto out;
	}
	if (rec.note[0])
		fprintf(stderr, "trailwatch: %s: %s\n", dir, rec.note);
	if (metrics && tw_cli_metrics_open(dir, 31LL * 86400 * 1000, NULL, &ctx.metrics, &err)) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
		goto out;
	}
	if (!quar) {
		size_t n = strlen(dir) + sizeof "/quarantine.jsonl";
		quar_default = malloc(n);
		if (!quar_default) {
			fprintf(stderr, "trailwatch: out of memory\n");
			ex = TW_EXIT_FAIL;
			goto out;
		}
		snprintf(quar_default, n, "%s/quarantine.jsonl", dir);
		quar = quar_default;
	}
	tw_cli_progress_init(&ctx.pg, !quiet && isatty(STDERR_FILENO));
	if (tw_cli_rejects_open(&ctx.rej, quar, &ctx.pg)) {
		ex = TW_EXIT_FAIL;
		goto out;
	}

	sink.on_batch = on_batch;
	sink.on_reject = on_reject;
	sink.ctx = &ctx;
	hooks.on_digest = on_digest;
	hooks.on_progress = on_progress;
	hooks.ctx = &ctx;

	t0 = tw_cli_now();
	ctx.app = app_start(&ctx); /* NULL (no thread): tw_store_append runs inline */
	if (npaths)
		rc = tw_ingest_paths(paths, npaths, &lim, &sink, &hooks, &st, &err);
	app_finish(ctx.app); /* every queued batch appended (durable) or the store failed */
	ctx.app = NULL;
	if (!ctx.store_failed && seal && tw_store_seal(ctx.store, &ctx.serr) != TW_OK)
		ctx.store_failed = 1;
	tw_cli_progress_clear(&ctx.pg);

	if (ctx.store_failed || ctx.quar_failed) {
		fprintf(stderr, "trailwatch: %s\n", ctx.serr.msg);
		if (ctx.store_failed)
			fprintf(stderr, "trailwatch: %s: every batch acknowledged before this error is durable; "
					"fix the cause and run the same command again (duplicates are skipped)\n",
				dir);
		ex = TW_EXIT_FAIL;
	} else {
		ex = tw_cli_inputs_exit(rc, &err, st.quarantined || bad_paths);
	}
	tw_cli_rejects_report_hidden(&ctx.rej);
	if (!quiet)
		print_summary(&ctx, dir, &st, tw_cli_now() - t0);

out:
	if (ctx.metrics) {
		struct tw_err merr;
		if (ctx.store && !ctx.store_failed)
			(void)tw_cli_metrics_advance(ctx.metrics, 1, &merr); /* a failure sticks in ctx.metrics */
		if (tw_cli_metrics_failure(ctx.metrics) && ex < TW_EXIT_FAIL) {
			fprintf(stderr, "trailwatch: metrics: %s (the events are stored; the series are incomplete)\n",
				tw_cli_metrics_failure(ctx.metrics));
			ex = TW_EXIT_FAIL;
		}
		tw_cli_metrics_close(ctx.metrics, NULL);
	}
	if (ctx.store) {
		tw_err_clear(&err);
		if (tw_store_close(ctx.store, &err) != TW_OK && ex < TW_EXIT_FAIL) {
			fprintf(stderr, "trailwatch: %s\n", err.msg);
			ex = TW_EXIT_FAIL;
		}
	}
	if (tw_cli_rejects_close(&ctx.rej) && ex < TW_EXIT_FAIL)
		ex = TW_EXIT_FAIL;
	free(quar_default);
	free(paths);
	pthread_mutex_destroy(&ctx.mu);
	return ex;
}
