/* SPDX-License-Identifier: Apache-2.0 */
/* cli/store.c: `trailwatch store stats|verify|compact|retain DIR`: maintenance of a store.
 * stats and verify only read (safe while a writer runs); compact and retain take the writer lock. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/time.h"
#include "index/store.h"

#define CMD "store"

static void usage(FILE *f)
{
	fputs("usage: trailwatch store stats DIR [--format table|json]\n"
	      "       trailwatch store verify DIR\n"
	      "       trailwatch store compact DIR [--retain AGE]\n"
	      "       trailwatch store retain DIR --retain AGE\n"
	      "\n"
	      "  stats    records, time range, segments, bytes on disk by part (blocks, postings, WAL),\n"
	      "           and the compression ratio against the records' raw JSON\n"
	      "  verify   checks every checksum and that every posting points at a record with its value;\n"
	      "           lists each problem (file and section); exit 1 when there is any\n"
	      "  compact  merges small segments into large ones (readers keep working)\n"
	      "  retain   removes whole segments whose newest record is older than AGE (400d, 8w, 24h)\n"
	      "\n"
	      "exit codes: 0 ok; 1 verify found problems; 2 usage error; 3 store or I/O error.\n",
	      f);
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

static int do_stats(const char *dir, int json)
{
	struct tw_store_stats ss;
	struct tw_err err;
	char t0[TW_TIME_BUFSZ] = "", t1[TW_TIME_BUFSZ] = "";
	char a[32], b[32];

	tw_err_clear(&err);
	if (tw_store_stat(dir, &ss, &err) != TW_OK) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		return TW_EXIT_FAIL;
	}
	if (ss.tmin <= ss.tmax) {
		tw_time_format(ss.tmin, t0);
		tw_time_format(ss.tmax, t1);
	}
	if (json) {
		printf("{\"records\":%llu,\"wal_records\":%llu,\"segments\":%llu,", (unsigned long long)ss.records,
		       (unsigned long long)ss.wal_records, (unsigned long long)ss.segments);
		if (ss.tmin <= ss.tmax)
			printf("\"from\":\"%s\",\"until\":\"%s\",", t0, t1);
		printf("\"raw_bytes\":%llu,\"bytes\":%llu,\"bytes_blocks\":%llu,\"bytes_postings\":%llu,"
		       "\"bytes_wal\":%llu,\"ratio\":%.4f}\n",
		       (unsigned long long)ss.raw_bytes, (unsigned long long)ss.bytes_total,
		       (unsigned long long)ss.bytes_blocks, (unsigned long long)ss.bytes_postings,
		       (unsigned long long)ss.bytes_wal, ratio(ss.bytes_total, ss.raw_bytes));
		return TW_EXIT_OK;
	}
	printf("store       %s\n", dir);
	printf("records     %s (%s in the WAL)\n", tw_cli_fmt_count(ss.records, a, sizeof a),
	       tw_cli_fmt_count(ss.wal_records, b, sizeof b));
	if (ss.tmin <= ss.tmax)
		printf("time range  %s .. %s\n", t0, t1);
	else
		printf("time range  (empty)\n");
	printf("segments    %llu\n", (unsigned long long)ss.segments);
	printf("raw JSON    %s\n", tw_cli_fmt_bytes(ss.raw_bytes, a, sizeof a));
	printf("on disk     %s (%.3f of the raw JSON)\n", tw_cli_fmt_bytes(ss.bytes_total, a, sizeof a),
	       ratio(ss.bytes_total, ss.raw_bytes));
	printf("  blocks    %s\n", tw_cli_fmt_bytes(ss.bytes_blocks, a, sizeof a));
	printf("  postings  %s\n", tw_cli_fmt_bytes(ss.bytes_postings, a, sizeof a));
	printf("  WAL       %s\n", tw_cli_fmt_bytes(ss.bytes_wal, a, sizeof a));
	printf("  other     %s\n", tw_cli_fmt_bytes(ss.bytes_total - ss.bytes_blocks - ss.bytes_postings -
							  ss.bytes_wal, a, sizeof a));
	return TW_EXIT_OK;
}

static void report_problem(void *ctx, const char *problem)
{
	(void)ctx;
	printf("problem: %s\n", problem);
}

static int do_verify(const char *dir)
{
	struct tw_err err;
	uint64_t problems = 0;
	enum tw_rc rc;

	tw_err_clear(&err);
	rc = tw_store_verify(dir, report_problem, NULL, &problems, &err);
	if (rc != TW_OK && !problems) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		return TW_EXIT_FAIL;
	}
	if (problems) {
		printf("%s: %llu problem%s\n", dir, (unsigned long long)problems, problems == 1 ? "" : "s");
		return TW_EXIT_PARTIAL;
	}
	printf("%s: ok\n", dir);
	return TW_EXIT_OK;
}

static int do_maintain(const char *dir, int compact, int64_t retain_ms)
{
	struct tw_store *s = NULL;
	struct tw_store_opts opts;
	struct tw_err err;
	uint64_t n = 0;
	int ex = TW_EXIT_OK;

	tw_err_clear(&err);
	tw_store_opts_default(&opts);
	if (tw_store_open(dir, &opts, &s, NULL, &err) != TW_OK) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		return TW_EXIT_FAIL;
	}
	if (retain_ms > 0) {
		struct timespec ts;
		int64_t now;
		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (tw_store_retain(s, now - retain_ms, &n, &err) != TW_OK) {
			fprintf(stderr, "trailwatch: %s\n", err.msg);
			ex = TW_EXIT_FAIL;
		} else {
			printf("%s: removed %llu segment%s older than the retention\n", dir, (unsigned long long)n,
			       n == 1 ? "" : "s");
		}
	}
	if (compact && ex == TW_EXIT_OK) {
		if (tw_store_seal(s, &err) != TW_OK || tw_store_compact(s, 0, &n, &err) != TW_OK) {
			fprintf(stderr, "trailwatch: %s\n", err.msg);
			ex = TW_EXIT_FAIL;
		} else {
			printf("%s: merged %llu segment%s\n", dir, (unsigned long long)n, n == 1 ? "" : "s");
		}
	}
	if (tw_store_close(s, &err) != TW_OK && ex == TW_EXIT_OK) {
		fprintf(stderr, "trailwatch: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
	}
	return ex;
}

int tw_cli_store(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "retain", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *action, *dir;
	int json = 0, c;
	int64_t retain_ms = 0;
	struct tw_err err;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (tw_cli_format_opt(CMD, optarg, &json))
				return TW_EXIT_USAGE;
			break;
		case 'r':
			if (tw_duration_parse(optarg, &retain_ms, &err) != TW_OK || retain_ms <= 0)
				return tw_cli_usage_error(CMD, "--retain: expected an age like 400d, 8w or 24h, got '%s'",
							  optarg);
			break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (argc - optind != 2)
		return tw_cli_usage_error(CMD, "expected an action (stats, verify, compact, retain) and a store DIR");
	action = argv[optind];
	dir = argv[optind + 1];
	if (!strcmp(action, "stats"))
		return do_stats(dir, json);
	if (!strcmp(action, "verify"))
		return do_verify(dir);
	if (!strcmp(action, "compact"))
		return do_maintain(dir, 1, retain_ms);
	if (!strcmp(action, "retain")) {
		if (!retain_ms)
			return tw_cli_usage_error(CMD, "retain needs --retain AGE (for example 400d)");
		return do_maintain(dir, 0, retain_ms);
	}
	return tw_cli_usage_error(CMD, "unknown action '%s' (stats, verify, compact, retain)", action);
}
