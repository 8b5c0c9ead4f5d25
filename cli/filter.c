/* SPDX-License-Identifier: Apache-2.0 */
/* cli/filter.c: `trailwatch filter test PATTERN PATH...` (print the records a CloudWatch Logs filter
 * pattern matches, as `trailwatch decode` prints them), `trailwatch filter lint PATTERN`, and
 * `trailwatch rules list` (the built-in CIS pack). Patterns: alerts/filter.h; pack: alerts/cis.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/cis.h"
#include "alerts/filter.h"
#include "cli/cli.h"
#include "core/eventfmt.h"
#include "core/json.h"

#define OUT_FLUSH_AT (1024 * 1024) /* stdout write size */
#define MAX_LINT 64                /* warnings printed */

static void usage_filter(FILE *f)
{
	fputs("usage: trailwatch filter test [OPTIONS] PATTERN [PATH...]\n"
	      "       trailwatch filter lint PATTERN\n"
	      "\n"
	      "CloudWatch Logs filter patterns: terms (ERROR \"exact phrase\" ?A ?B -term), %regex%,\n"
	      "JSON patterns ({ $.eventName = \"Delete*\" && $.errorCode NOT EXISTS }) and space-delimited\n"
	      "patterns ([ip, user, ..., status = 4*, bytes]).\n"
	      "\n"
	      "test: decodes PATH... like 'trailwatch decode' ('-' or none: stdin) and prints each record\n"
	      "      the pattern matches as one JSON line (the same as decode prints); 'N of M records\n"
	      "      matched' goes to stderr. A CloudTrail record is matched as its raw JSON; a CloudWatch\n"
	      "      Logs event as its message.\n"
	      "  -r, --raw          add \"raw\": the original record\n"
	      "  -t, --threads N    decode threads (default 0: one per core)\n"
	      "lint: reports patterns that are valid but probably wrong (a '!=' under '||', '&&' and '||'\n"
	      "      mixed without parentheses, a CloudTrail field compared with a type it never has,\n"
	      "      contradictions, match-all), one per line with its column.\n"
	      "\n"
	      "exit codes: test: 0 ran (even with no match), 1 some inputs quarantined or unreadable,\n"
	      "2 usage or pattern syntax error, 3 I/O error; lint: 0 clean, 1 warnings, 2 syntax error.\n",
	      f);
}

static void usage_rules(FILE *f)
{
	fputs("usage: trailwatch rules list [--format table|json] [--pattern]\n"
	      "\n"
	      "Lists the built-in rules: the CIS AWS Foundations Benchmark monitoring controls 4.1-4.15\n"
	      "(metric filter patterns over CloudTrail, alarm: Sum over 300 s >= 1, 1 of 1 periods,\n"
	      "missing data not breaching).\n"
	      "\n"
	      "options:\n"
	      "  -f, --format FMT   table (default; aligned id, name, title) or json (one object per line)\n"
	      "  -p, --pattern      table: add the pattern we evaluate (and the published one when it\n"
	      "                     differs) under each rule\n"
	      "  -h, --help         this help\n",
	      f);
}

/* Prints the pattern and a caret under column col (1-based) on stderr. */
static void caret(const char *pat, size_t col)
{
	size_t n = strlen(pat);
	fputs("  ", stderr);
	tw_cli_put_clean(pat, n);
	fputs("\n  ", stderr);
	for (size_t i = 1; i < col && i <= n; i++)
		fputc(pat[i - 1] == '\t' ? '\t' : ' ', stderr);
	fputs("^\n", stderr);
}

static int syntax_error(const char *cmd, const char *pat, const struct tw_err *err)
{
	size_t col = tw_filter_error_column(err);
	fprintf(stderr, "trailwatch %s: pattern error: %s\n", cmd, err->msg);
	if (col)
		caret(pat, col);
	return TW_EXIT_USAGE;
}

struct test_ctx {
	struct tw_cli_out out;      /* stdout */
	struct tw_filter_set *set;  /* one pattern */
	struct tw_filter_result r;  /* its result */
	unsigned fmt_flags;         /* TW_EVENTFMT_RAW with --raw */
	uint64_t seen, matched;     /* records evaluated, matched */
	uint64_t rejects;           /* records rejected by the decoder */
	int stop;                   /* 1 epipe, 2 write error, 3 other failure */
	struct tw_err ferr;         /* message for stop 3 */
};

static enum tw_rc test_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct test_ctx *ctx = vctx;

	for (size_t i = 0; i < batch->n; i++) {
		const struct tw_event *ev = &batch->ev[i];
		ctx->seen++;
		if (tw_filter_set_eval(ctx->set, ev, &ctx->r, &ctx->ferr)) {
			ctx->stop = 3;
			return tw_err_set(err, TW_ESTOP, "stopped");
		}
		if (!ctx->r.matched[0])
			continue;
		ctx->matched++;
		if (tw_event_write_json(&ctx->out.buf, ev, ctx->fmt_flags, &ctx->ferr) ||
		    tw_buf_putc(&ctx->out.buf, '\n', &ctx->ferr)) {
			ctx->stop = 3;
			return tw_err_set(err, TW_ESTOP, "stopped");
		}
		if (tw_cli_out_maybe_flush(&ctx->out)) {
			ctx->stop = ctx->out.broken ? 1 : 2;
			return tw_err_set(err, TW_ESTOP, "stopped");
		}
	}
	return TW_OK;
}

static enum tw_rc test_reject(void *vctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct test_ctx *ctx = vctx;
	(void)err;
	ctx->rejects++;
	if (ctx->rejects <= 20) {
		fprintf(stderr, "trailwatch: %s: line %llu (record %llu): ", rej->source,
			(unsigned long long)rej->line, (unsigned long long)rej->index);
		tw_cli_put_clean(rej->reason, strlen(rej->reason));
		fputc('\n', stderr);
	}
	return TW_OK;
}

static int filter_test(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "raw", no_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct test_ctx ctx;
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_sink sink;
	struct tw_err err;
	const char **paths = NULL;
	size_t npaths = 0, idx;
	unsigned bad = 0;
	int c, ex = TW_EXIT_OK;
	enum tw_rc rc = TW_OK;

	memset(&ctx, 0, sizeof ctx);
	memset(&st, 0, sizeof st);
	tw_err_clear(&err);
	tw_ingest_limits_default(&lim);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":rt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ctx.fmt_flags |= TW_EVENTFMT_RAW;
			break;
		case 't':
			if (tw_cli_input_opt("filter test", c, optarg, &lim))
				return TW_EXIT_USAGE;
			break;
		case 'h':
			usage_filter(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error("filter test", c, argv);
		}
	}
	if (optind >= argc)
		return tw_cli_usage_error("filter test", "missing PATTERN");
	const char *pat = argv[optind++];
	if (tw_filter_set_new(&ctx.set, &err)) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		return TW_EXIT_FAIL;
	}
	if ((rc = tw_filter_set_add(ctx.set, pat, strlen(pat), &idx, &err))) {
		tw_filter_set_free(ctx.set);
		if (rc == TW_ENOMEM) {
			fprintf(stderr, "trailwatch: %s\n", err.msg);
			return TW_EXIT_FAIL;
		}
		return syntax_error("filter test", pat, &err);
	}
	if (tw_filter_result_init(ctx.set, &ctx.r, &err) ||
	    tw_cli_input_paths(argc, argv, optind, &paths, &npaths, &bad)) {
		tw_filter_set_free(ctx.set);
		tw_filter_result_free(&ctx.r);
		return TW_EXIT_FAIL;
	}
	size_t rec = lim.max_record > lim.max_payload ? lim.max_record : lim.max_payload;
	tw_cli_out_init(&ctx.out, STDOUT_FILENO, OUT_FLUSH_AT, OUT_FLUSH_AT + 8 * rec + (1u << 20));
	sink.on_batch = test_batch;
	sink.on_reject = test_reject;
	sink.ctx = &ctx;
	if (npaths)
		rc = tw_ingest_paths(paths, npaths, &lim, &sink, NULL, &st, &err);
	if (!ctx.stop && tw_cli_out_flush(&ctx.out))
		ctx.stop = ctx.out.broken ? 1 : 2;
	switch (ctx.stop) {
	case 1:
		ex = st.quarantined || bad ? TW_EXIT_PARTIAL : TW_EXIT_OK;
		goto out;
	case 2:
		fprintf(stderr, "trailwatch: stdout: write error: %s\n", strerror(ctx.out.err_no));
		ex = TW_EXIT_FAIL;
		goto out;
	case 3:
		fprintf(stderr, "trailwatch: %s\n", ctx.ferr.msg);
		ex = TW_EXIT_FAIL;
		goto out;
	default:
		break;
	}
	ex = tw_cli_inputs_exit(rc, &err, st.quarantined || ctx.rejects || bad);
	if (ctx.rejects > 20)
		fprintf(stderr, "trailwatch: %llu more rejected records not shown\n",
			(unsigned long long)(ctx.rejects - 20));
	fprintf(stderr, "%llu of %llu records matched\n", (unsigned long long)ctx.matched,
		(unsigned long long)ctx.seen);
out:
	tw_cli_out_free(&ctx.out);
	tw_filter_result_free(&ctx.r);
	tw_filter_set_free(ctx.set);
	free(paths);
	return ex;
}

static int filter_lint(int argc, char **argv)
{
	struct tw_filter_warning w[MAX_LINT];
	struct tw_err err;
	size_t nw = 0;
	enum tw_rc rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage_filter(stdout);
		return TW_EXIT_OK;
	}
	if (argc != 2)
		return tw_cli_usage_error("filter lint", argc < 2 ? "missing PATTERN" : "one PATTERN only");
	const char *pat = argv[1];
	if ((rc = tw_filter_lint(pat, strlen(pat), w, MAX_LINT, &nw, &err))) {
		if (rc == TW_ENOMEM) {
			fprintf(stderr, "trailwatch: %s\n", err.msg);
			return TW_EXIT_FAIL;
		}
		return syntax_error("filter lint", pat, &err);
	}
	for (size_t i = 0; i < nw && i < MAX_LINT; i++) {
		fprintf(stderr, "column %zu: warning [%s]: %s\n", w[i].column, w[i].code, w[i].msg);
		caret(pat, w[i].column);
	}
	if (nw > MAX_LINT)
		fprintf(stderr, "%zu more warnings not shown\n", nw - MAX_LINT);
	return nw ? TW_EXIT_PARTIAL : TW_EXIT_OK;
}

int tw_cli_filter(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_filter(argc < 2 ? stderr : stdout);
		return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
	}
	if (!strcmp(argv[1], "test"))
		return filter_test(argc - 1, argv + 1);
	if (!strcmp(argv[1], "lint"))
		return filter_lint(argc - 1, argv + 1);
	return tw_cli_usage_error("filter", "unknown action '%s' (test or lint)", argv[1]);
}

static void json_str(struct tw_buf *b, const char *s)
{
	tw_json_write_str(b, s, strlen(s), NULL);
}

int tw_cli_rules(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "pattern", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, json = 0, show_pat = 0;
	size_t n;
	const struct tw_cis_control *cc = tw_cis_controls(&n);

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage_rules(stdout);
		return TW_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "list"))
		return tw_cli_usage_error("rules", argc < 2 ? "missing action (list)" : "unknown action '%s' (list)",
					  argc < 2 ? "" : argv[1]);
	argc--;
	argv++;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:ph", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "json"))
				json = 1;
			else if (strcmp(optarg, "table"))
				return tw_cli_usage_error("rules list", "--format must be table or json, not '%s'", optarg);
			break;
		case 'p':
			show_pat = 1;
			break;
		case 'h':
			usage_rules(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error("rules list", c, argv);
		}
	}
	if (optind < argc)
		return tw_cli_usage_error("rules list", "unexpected argument '%s'", argv[optind]);
	if (json) {
		struct tw_buf b;
		tw_buf_init(&b, 1u << 20);
		for (size_t i = 0; i < n; i++) {
			const struct tw_cis_control *k = &cc[i];
			b.n = 0;
			tw_buf_append(&b, "{\"id\":", 6, NULL);
			json_str(&b, k->id);
			tw_buf_append(&b, ",\"name\":", 8, NULL);
			json_str(&b, k->name);
			tw_buf_append(&b, ",\"title\":", 9, NULL);
			json_str(&b, k->title);
			tw_buf_append(&b, ",\"pattern\":", 11, NULL);
			json_str(&b, k->pattern);
			tw_buf_append(&b, ",\"published\":", 13, NULL);
			json_str(&b, k->published);
			if (k->why) {
				tw_buf_append(&b, ",\"why\":", 7, NULL);
				json_str(&b, k->why);
			}
			tw_buf_append(&b, ",\"metric\":", 10, NULL);
			json_str(&b, k->metric);
			tw_buf_append(&b, ",\"namespace\":", 13, NULL);
			json_str(&b, k->ns);
			tw_buf_printf(&b, NULL,
				      ",\"alarm\":{\"statistic\":\"%s\",\"period\":%u,\"threshold\":%g,\"comparison\":\"%s\","
				      "\"evaluationPeriods\":%u,\"datapointsToAlarm\":%u,\"treatMissingData\":\"%s\"}}\n",
				      k->alarm.statistic, k->alarm.period_s, k->alarm.threshold, k->alarm.comparison,
				      k->alarm.eval_periods, k->alarm.datapoints, k->alarm.missing_data);
			if (fwrite(b.p, 1, b.n, stdout) != b.n)
				break;
		}
		tw_buf_free(&b);
	} else {
		int wid = 2, wname = 4;
		for (size_t i = 0; i < n; i++) {
			if ((int)strlen(cc[i].id) > wid)
				wid = (int)strlen(cc[i].id);
			if ((int)strlen(cc[i].name) > wname)
				wname = (int)strlen(cc[i].name);
		}
		printf("%-*s  %-*s  %s\n", wid, "ID", wname, "NAME", "TITLE");
		for (size_t i = 0; i < n; i++) {
			printf("%-*s  %-*s  %s\n", wid, cc[i].id, wname, cc[i].name, cc[i].title);
			if (show_pat) {
				printf("%*s  pattern:   %s\n", wid, "", cc[i].pattern);
				if (cc[i].why) {
					printf("%*s  published: %s\n", wid, "", cc[i].published);
					printf("%*s  why:       %s\n", wid, "", cc[i].why);
				}
			}
		}
	}
	if (fflush(stdout) || ferror(stdout)) {
		if (errno == EPIPE)
			return TW_EXIT_OK;
		fprintf(stderr, "trailwatch: stdout: write error: %s\n", strerror(errno));
		return TW_EXIT_FAIL;
	}
	return TW_EXIT_OK;
}
