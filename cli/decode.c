/* SPDX-License-Identifier: Apache-2.0 */
/* cli/decode.c: `trailwatch decode`: runs the ingest sources over paths (or stdin) and prints each
 * event as one JSON line on stdout; rejected records go to stderr (capped) and to an optional
 * quarantine file; a summary and, on a terminal, a progress line go to stderr.
 *
 * This is the benchmark path: events are formatted into one large buffer (core/eventfmt.c) that is
 * written with write(2) in 1 MiB pieces; no stdio and no printf per event.
 *
 * Exit codes: 0 all decoded; 1 some records quarantined or some paths unreadable; 2 usage error;
 * 3 I/O or internal error (out of memory, write error on stdout or on the quarantine file).
 * A reader that goes away (| head) ends the run quietly. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/event.h"
#include "core/eventfmt.h"
#include "core/json.h"
#include "ingest/ingest.h"

#define CMD "decode"
#define OUT_FLUSH_AT (1024 * 1024)      /* stdout write size */
#define TOP_N 5                         /* rows per --summary table */
#define TOP_MAX_KEYS 200000             /* distinct values a --summary table tracks */

/* Why the sink asked the source to stop. */
enum stop {
	STOP_NONE = 0,
	STOP_EPIPE,   /* stdout reader went away: quiet end */
	STOP_OUT_IO,  /* write error on stdout */
	STOP_QUAR_IO, /* write error on the quarantine file */
	STOP_FAIL,    /* formatting or memory failure; message in ctx->ferr */
};

/* Summary tables of --summary, by extracted field. */
static const struct {
	enum tw_field f; /* field counted */
	const char *title; /* table heading */
} top_fields[] = {
	{ TW_F_PRINCIPAL, "top principals" },
	{ TW_F_EVENT_NAME, "top event names" },
	{ TW_F_ERROR_CODE, "top error codes" },
};
#define NTOP (sizeof top_fields / sizeof top_fields[0])

struct decode_ctx {
	struct tw_cli_out out;         /* stdout */
	unsigned fmt_flags;            /* TW_EVENTFMT_RAW with --raw */
	struct tw_cli_rejects rej;     /* stderr lines and the --quarantine file */
	const char *quar_path;         /* --quarantine FILE, or NULL */
	struct tw_cli_progress pg;     /* progress line (disabled unless stderr is a tty) */
	struct tw_cli_counter *top[NTOP]; /* --summary counters, NULL without --summary */
	enum stop stop;                /* set when the sink stops the source */
	struct tw_err ferr;            /* message for STOP_FAIL */
	pthread_mutex_t mu;            /* serializes stderr output and quarantine writes */
};

static void usage(FILE *f)
{
	fputs("usage: trailwatch decode [OPTIONS] [PATH...]\n"
	      "\n"
	      "Decodes CloudTrail and CloudWatch Logs inputs and prints one JSON object per event on\n"
	      "stdout. PATH is a file (plain, gzip or zlib; a CloudTrail delivery file, NDJSON, a JSON\n"
	      "array, a CloudWatch Logs subscription payload or envelope, export lines), a directory\n"
	      "(walked recursively in name order: the S3 layout comes out in time order) or '-' for\n"
	      "stdin (also the default when no PATH is given).\n"
	      "\n"
	      "options:\n"
	      "  -r, --raw               add \"raw\": the original record (verbatim JSON when it is\n"
	      "                          one line of JSON, else a JSON string)\n"
	      "      --quarantine FILE   append rejected records to FILE as JSON lines\n"
	      "  -t, --threads N         decode threads (default 0: one per core)\n"
	      "      --max-record SIZE   largest record accepted (default 8M; suffixes K, M, G)\n"
	      "      --max-inflated SIZE largest decompressed size per file (default 16G)\n"
	      "  -s, --summary           add the top principals, event names and error codes to the\n"
	      "                          summary\n"
	      "  -q, --quiet             no summary and no progress line (rejects are still reported)\n"
	      "  -h, --help              this help\n"
	      "\n"
	      "Each event: {\"kind\",\"time\",extracted fields...,\"readOnly\",\"resources\",\"line\",\"index\"}.\n"
	      "Each rejected record: 'trailwatch: FILE: line N (record K): REASON' on stderr (the first\n"
	      "20, then a count), and with --quarantine a line {\"source\",\"line\",\"index\",\"offset\",\n"
	      "\"reason\",\"bytes\",\"truncated\"} (bytes: the first 64 KiB of the record).\n"
	      "\n"
	      "exit codes: 0 all decoded; 1 some records quarantined or paths unreadable;\n"
	      "2 usage error; 3 I/O or internal error.\n",
	      f);
}

static enum tw_rc stop_with(struct decode_ctx *ctx, enum stop why, struct tw_err *err)
{
	ctx->stop = why;
	return tw_err_set(err, TW_ESTOP, "decode stopped");
}

static enum tw_rc on_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct decode_ctx *ctx = vctx;
	struct tw_buf *b = &ctx->out.buf;

	for (size_t i = 0; i < batch->n; i++) {
		const struct tw_event *ev = &batch->ev[i];
		if (tw_event_write_json(b, ev, ctx->fmt_flags, &ctx->ferr) || tw_buf_putc(b, '\n', &ctx->ferr))
			return stop_with(ctx, STOP_FAIL, err);
		if (ctx->top[0]) {
			for (size_t t = 0; t < NTOP; t++) {
				struct tw_str v = ev->f[top_fields[t].f];
				if (v.n && tw_cli_counter_add(ctx->top[t], v)) {
					tw_err_set(&ctx->ferr, TW_ENOMEM, "out of memory counting values for --summary");
					return stop_with(ctx, STOP_FAIL, err);
				}
			}
		}
		if (tw_cli_out_maybe_flush(&ctx->out))
			return stop_with(ctx, ctx->out.broken ? STOP_EPIPE : STOP_OUT_IO, err);
	}
	return TW_OK;
}

static enum tw_rc on_reject(void *vctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct decode_ctx *ctx = vctx;

	if (tw_cli_rejects_add(&ctx->rej, rej, &ctx->ferr) != TW_OK)
		return stop_with(ctx, STOP_QUAR_IO, err);
	return TW_OK;
}

static void on_progress(void *vctx, const struct tw_ingest_stats *st, const char *current)
{
	struct decode_ctx *ctx = vctx;

	(void)current;
	pthread_mutex_lock(&ctx->mu);
	tw_cli_progress_update(&ctx->pg, st->files, tw_ingest_stats_events(st), st->bytes_in, 0);
	pthread_mutex_unlock(&ctx->mu);
}

static void print_summary(const struct decode_ctx *ctx, const struct tw_ingest_stats *st, double secs)
{
	char a[32], b[32], c[32], d[32], e[32];
	uint64_t events = tw_ingest_stats_events(st);

	fprintf(stderr, "trailwatch decode: %llu files, %s read (%s decoded) in %.2f s\n",
		(unsigned long long)st->files, tw_cli_fmt_bytes(st->bytes_in, a, sizeof a),
		tw_cli_fmt_bytes(st->bytes_decoded, b, sizeof b), secs);
	fprintf(stderr, "  events:      %s (cloudtrail %s, insight %s, cwlog %s)\n",
		tw_cli_fmt_count(events, a, sizeof a),
		tw_cli_fmt_count(st->events[TW_KIND_CLOUDTRAIL], b, sizeof b),
		tw_cli_fmt_count(st->events[TW_KIND_INSIGHT], c, sizeof c),
		tw_cli_fmt_count(st->events[TW_KIND_CWLOG], d, sizeof d));
	fprintf(stderr, "  skipped:     %s digests, %s control messages, %s other\n",
		tw_cli_fmt_count(st->digests, a, sizeof a), tw_cli_fmt_count(st->control_messages, b, sizeof b),
		tw_cli_fmt_count(st->skipped, c, sizeof c));
	fprintf(stderr, "  quarantined: %s%s%s\n", tw_cli_fmt_count(st->quarantined, a, sizeof a),
		ctx->quar_path && st->quarantined ? " -> " : "", ctx->quar_path && st->quarantined ? ctx->quar_path : "");
	fprintf(stderr, "  rate:        %s events/s, %s/s decoded\n",
		tw_cli_fmt_count(secs > 0 ? (uint64_t)((double)events / secs) : 0, e, sizeof e),
		tw_cli_fmt_bytes(secs > 0 ? (uint64_t)((double)st->bytes_decoded / secs) : 0, d, sizeof d));
	if (!ctx->top[0])
		return;
	for (size_t t = 0; t < NTOP; t++) {
		struct tw_cli_count rows[TOP_N];
		size_t n = tw_cli_counter_top(ctx->top[t], TOP_N, rows);
		fprintf(stderr, "  %s (%zu distinct):%s\n", top_fields[t].title,
			tw_cli_counter_distinct(ctx->top[t]), n ? "" : " none");
		for (size_t i = 0; i < n; i++) {
			fprintf(stderr, "    %12s  ", tw_cli_fmt_count(rows[i].n, a, sizeof a));
			tw_cli_put_clean(rows[i].key.p, rows[i].key.n);
			fputc('\n', stderr);
		}
	}
}

int tw_cli_decode(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "raw", no_argument, NULL, 'r' },
		{ "quarantine", required_argument, NULL, 'Q' },
		{ "threads", required_argument, NULL, 't' },
		{ "max-record", required_argument, NULL, 'R' },
		{ "max-inflated", required_argument, NULL, 'I' },
		{ "summary", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct decode_ctx ctx;
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_ingest_hooks hooks;
	struct tw_sink sink;
	struct tw_err err;
	const char **paths = NULL;
	size_t npaths = 0;
	unsigned bad_paths = 0;
	int quiet = 0, summary = 0, c, ex = TW_EXIT_OK;
	enum tw_rc rc = TW_OK;
	double t0;

	memset(&ctx, 0, sizeof ctx);
	memset(&st, 0, sizeof st);
	tw_err_clear(&err);
	tw_err_clear(&ctx.ferr);
	tw_ingest_limits_default(&lim);

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":rt:sqh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ctx.fmt_flags |= TW_EVENTFMT_RAW;
			break;
		case 'Q':
			ctx.quar_path = optarg;
			break;
		case 't':
		case 'R':
		case 'I':
			if (tw_cli_input_opt(CMD, c, optarg, &lim))
				return TW_EXIT_USAGE;
			break;
		case 's':
			summary = 1;
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

	/* Paths: check each up front so every unreadable one is named (the source reports only its
	 * first failure), and decode the rest. */
	if (tw_cli_input_paths(argc, argv, optind, &paths, &npaths, &bad_paths))
		return TW_EXIT_FAIL;

	tw_cli_progress_init(&ctx.pg, !quiet && isatty(STDERR_FILENO));
	if (tw_cli_rejects_open(&ctx.rej, ctx.quar_path, &ctx.pg)) {
		ex = TW_EXIT_FAIL;
		goto out;
	}
	if (summary) {
		for (size_t t = 0; t < NTOP; t++) {
			ctx.top[t] = tw_cli_counter_new(TOP_MAX_KEYS);
			if (!ctx.top[t]) {
				fprintf(stderr, "trailwatch: out of memory\n");
				ex = TW_EXIT_FAIL;
				goto out;
			}
		}
	}
	{
		/* One pending event can be as large as its raw record escaped (6 bytes per byte at
		 * worst) plus its fields: bound the output buffer by that. */
		size_t rec = lim.max_record > lim.max_payload ? lim.max_record : lim.max_payload;
		tw_cli_out_init(&ctx.out, STDOUT_FILENO, OUT_FLUSH_AT, OUT_FLUSH_AT + 8 * rec + (1u << 20));
	}
	pthread_mutex_init(&ctx.mu, NULL);

	sink.on_batch = on_batch;
	sink.on_reject = on_reject;
	sink.ctx = &ctx;
	hooks.on_digest = NULL;
	hooks.on_progress = on_progress;
	hooks.ctx = &ctx;

	t0 = tw_cli_now();
	if (npaths)
		rc = tw_ingest_paths(paths, npaths, &lim, &sink, &hooks, &st, &err);
	if (ctx.stop == STOP_NONE && tw_cli_out_flush(&ctx.out))
		ctx.stop = ctx.out.broken ? STOP_EPIPE : STOP_OUT_IO;
	if (ctx.rej.quar && ctx.stop != STOP_QUAR_IO && fflush(ctx.rej.quar)) {
		tw_err_set(&ctx.ferr, TW_EIO, "%s: write error: %s", ctx.quar_path, strerror(errno));
		ctx.rej.failed = 1;
		ctx.stop = ctx.stop == STOP_NONE ? STOP_QUAR_IO : ctx.stop;
	}
	tw_cli_progress_clear(&ctx.pg);

	switch (ctx.stop) {
	case STOP_EPIPE:
		/* The reader has what it wanted: no summary, no error. */
		ex = st.quarantined || bad_paths ? TW_EXIT_PARTIAL : TW_EXIT_OK;
		goto out;
	case STOP_OUT_IO:
		fprintf(stderr, "trailwatch: stdout: write error: %s\n", strerror(ctx.out.err_no));
		ex = TW_EXIT_FAIL;
		break;
	case STOP_QUAR_IO:
		fprintf(stderr, "trailwatch: %s\n", ctx.ferr.msg);
		ex = TW_EXIT_FAIL;
		break;
	case STOP_FAIL:
		fprintf(stderr, "trailwatch: %s\n", ctx.ferr.msg);
		ex = TW_EXIT_FAIL;
		break;
	case STOP_NONE:
		ex = tw_cli_inputs_exit(rc, &err, st.quarantined || ctx.rej.n || bad_paths);
		break;
	}
	tw_cli_rejects_report_hidden(&ctx.rej);
	if (!quiet)
		print_summary(&ctx, &st, tw_cli_now() - t0);

out:
	if (tw_cli_rejects_close(&ctx.rej) && ex < TW_EXIT_FAIL)
		ex = TW_EXIT_FAIL;
	for (size_t t = 0; t < NTOP; t++)
		tw_cli_counter_free(ctx.top[t]);
	tw_cli_out_free(&ctx.out);
	free(paths);
	return ex;
}
