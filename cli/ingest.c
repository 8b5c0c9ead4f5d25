/* SPDX-License-Identifier: Apache-2.0 */
/* cli/ingest.c: `trailwatch ingest --store DIR PATH...`: decodes inputs (the same sources as
 * decode) and writes the events into a store. Each batch is durable in the store (WAL, fsync)
 * before the source moves on; duplicates (same event id, or same content for records without
 * one) are skipped and counted, so re-running over the same files stores nothing twice.
 * Rejected records are reported like decode does and kept in DIR/quarantine.jsonl by default;
 * CloudTrail digest files are kept under DIR/digests/ for later verification. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "index/store.h"
#include "ingest/ingest.h"

#define CMD "ingest"

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
};

static void usage(FILE *f)
{
	fputs("usage: trailwatch ingest --store DIR [OPTIONS] [PATH...]\n"
	      "\n"
	      "Decodes CloudTrail and CloudWatch Logs inputs (the same as 'trailwatch decode': files,\n"
	      "S3-layout directories, '-' for stdin) and writes the events into the store DIR (created\n"
	      "if missing). Every batch is made durable before the next is read. Records already in the\n"
	      "store (same eventID, or same content when there is none) are skipped and counted, so\n"
	      "ingesting the same files twice stores nothing twice.\n"
	      "\n"
	      "options:\n"
	      "  -S, --store DIR         the store (required)\n"
	      "      --quarantine FILE   where rejected records go (default DIR/quarantine.jsonl)\n"
	      "  -t, --threads N         decode threads (default 0: one per core)\n"
	      "      --max-record SIZE   largest record accepted (default 8M)\n"
	      "      --max-inflated SIZE largest decompressed size per file (default 16G)\n"
	      "      --no-seal           leave the last events in the WAL instead of sealing a segment\n"
	      "  -q, --quiet             no summary and no progress line\n"
	      "  -h, --help              this help\n"
	      "\n"
	      "exit codes: 0 all stored; 1 some records quarantined or paths unreadable;\n"
	      "2 usage error; 3 store or I/O error (another writer holds the store, disk full...).\n",
	      f);
}

static uint64_t total_events(const struct tw_ingest_stats *st)
{
	uint64_t n = 0;
	for (int k = 1; k <= TW_KIND_MAX; k++)
		n += st->events[k];
	return n;
}

static enum tw_rc on_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct ingest_ctx *ctx = vctx;
	struct tw_store_append_result res = { 0, 0 };

	if (tw_store_append(ctx->store, batch, &res, &ctx->serr) != TW_OK) {
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
	tw_cli_progress_update(&ctx->pg, st->files, total_events(st), st->bytes_in, 0);
}

static void print_summary(const struct ingest_ctx *ctx, const char *dir, const struct tw_ingest_stats *st,
			  double secs)
{
	char a[32], b[32], c[32], d[32];
	struct tw_store_stats ss;
	struct tw_err err;
	uint64_t events = total_events(st);

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
	const char *stdin_path[] = { "-" };
	char *quar_default = NULL;
	size_t npaths = 0;
	unsigned bad_paths = 0;
	int quiet = 0, seal = 1, c, ex = TW_EXIT_OK;
	enum tw_rc rc = TW_OK;
	uint64_t v;
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
			if (tw_cli_parse_uint(optarg, 0, 256, &lim.threads))
				return tw_cli_usage_error(CMD, "--threads: expected 0 to 256, got '%s'", optarg);
			break;
		case 'R':
			if (tw_cli_parse_size(optarg, 1ull << 30, &v) || v < 1024)
				return tw_cli_usage_error(CMD, "--max-record: expected a size from 1K to 1G, got '%s'", optarg);
			lim.max_record = (size_t)v;
			break;
		case 'I':
			if (tw_cli_parse_size(optarg, 1ull << 50, &v) || v < 1024)
				return tw_cli_usage_error(CMD, "--max-inflated: expected a size from 1K, got '%s'", optarg);
			lim.max_inflated = v;
			break;
		case 'N':
			seal = 0;
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

	if (optind >= argc) {
		paths = stdin_path;
		npaths = 1;
	} else {
		paths = calloc((size_t)(argc - optind), sizeof *paths);
		if (!paths) {
			fprintf(stderr, "trailwatch: out of memory\n");
			return TW_EXIT_FAIL;
		}
		for (int i = optind; i < argc; i++) {
			struct stat sb;
			if (strcmp(argv[i], "-") && stat(argv[i], &sb)) {
				fprintf(stderr, "trailwatch: %s: %s\n", argv[i], strerror(errno));
				bad_paths++;
				continue;
			}
			paths[npaths++] = argv[i];
		}
	}

	tw_store_opts_default(&sopts);
	if (tw_store_open(dir, &sopts, &ctx.store, &rec, &err) != TW_OK) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
		goto out;
	}
	if (rec.note[0])
		fprintf(stderr, "trailwatch: %s: %s\n", dir, rec.note);
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
	if (npaths)
		rc = tw_ingest_paths(paths, npaths, &lim, &sink, &hooks, &st, &err);
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
	} else if (rc == TW_ENOMEM) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
	} else if (rc != TW_OK) {
		fputs("trailwatch: ", stderr);
		tw_cli_put_clean(err.msg, strlen(err.msg));
		fputc('\n', stderr);
		ex = TW_EXIT_PARTIAL;
	} else if (st.quarantined || bad_paths) {
		ex = TW_EXIT_PARTIAL;
	}
	tw_cli_rejects_report_hidden(&ctx.rej);
	if (!quiet)
		print_summary(&ctx, dir, &st, tw_cli_now() - t0);

out:
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
	if (paths != stdin_path)
		free(paths);
	pthread_mutex_destroy(&ctx.mu);
	return ex;
}
