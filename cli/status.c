/* SPDX-License-Identifier: Apache-2.0 */
/* cli/status.c: `trailwatch status --store DIR`: what the daemon writing DIR last reported in
 * DIR/status.json (events/s, lag per partition, quarantined, stored), whether it still runs, and
 * the store's own figures. Only reads: safe while `trailwatch run` writes. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/time.h"
#include "index/store.h"

#define CMD "status"

static void usage(FILE *f)
{
	fputs("usage: trailwatch status --store DIR [--format table|json]\n"
	      "\n"
	      "Shows what 'trailwatch run' last reported for the store DIR (it rewrites DIR/status.json\n"
	      "every few seconds): whether the daemon still runs, events/s, events stored, duplicates,\n"
	      "quarantined records, the lag of each Kafka partition (committed offset, high watermark),\n"
	      "and the store's records, size and time range.\n"
	      "\n"
	      "options:\n"
	      "  -S, --store DIR       the store\n"
	      "  -f, --format FMT      table (default) or json\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "exit codes: 0 ok (the daemon runs, or the store has no daemon status yet);\n"
	      "1 the daemon that wrote the status is gone (stopped or crashed); 2 usage error;\n"
	      "3 the store cannot be read.\n",
	      f);
}

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* 1 when pid is a live process (another user's counts: EPERM). */
static int alive(json_int_t pid)
{
	if (pid <= 0 || pid > 0x7fffffff)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void print_table(const char *dir, const struct tw_store_stats *ss, json_t *st, int running, double age_s)
{
	char a[32], b[32], c[32], d[32];
	char t0[TW_TIME_BUFSZ] = "", t1[TW_TIME_BUFSZ] = "";

	printf("%-12s %s\n", "store", dir);
	if (ss->tmin <= ss->tmax) {
		tw_time_format(ss->tmin, t0);
		tw_time_format(ss->tmax, t1);
	}
	printf("%-12s %s records, %s on disk, %llu segments%s%s%s%s\n", "", tw_cli_fmt_count(ss->records, a, sizeof a),
	       tw_cli_fmt_bytes(ss->bytes_total, b, sizeof b), (unsigned long long)ss->segments, *t0 ? ", " : "", t0,
	       *t0 ? " .. " : "", t1);
	if (!st) {
		printf("%-12s no status: no 'trailwatch run' has written this store yet\n", "daemon");
		return;
	}
	{
		const char *state = json_string_value(json_object_get(st, "state"));
		if (running)
			printf("%-12s running (pid %lld), last status %.0f s ago\n", "daemon", (long long)jint(st, "pid"),
			       age_s);
		else
			printf("%-12s %s (pid %lld gone), last status %.0f s ago\n", "daemon",
			       state && strcmp(state, "running") ? state : "not running (crashed or killed)",
			       (long long)jint(st, "pid"), age_s);
	}
	printf("%-12s %.1f events/s\n", "rate", json_number_value(json_object_get(st, "events_per_s")));
	printf("%-12s %s decoded, %s stored, %s duplicates, %s quarantined\n", "events",
	       tw_cli_fmt_count((uint64_t)jint(st, "events"), a, sizeof a),
	       tw_cli_fmt_count((uint64_t)jint(st, "stored"), b, sizeof b),
	       tw_cli_fmt_count((uint64_t)jint(st, "duplicates"), c, sizeof c),
	       tw_cli_fmt_count((uint64_t)jint(st, "quarantined"), d, sizeof d));
	{
		json_t *al = json_object_get(st, "alarms");
		if (json_is_object(al))
			printf("%-12s %lld evaluations, %lld state changes (%lld to ALARM), %lld notifications, "
			       "%lld event rule matches, %lld failures\n",
			       "alarms", (long long)jint(al, "evaluations"), (long long)jint(al, "state_changes"),
			       (long long)jint(al, "to_alarm"), (long long)jint(al, "notifications"),
			       (long long)jint(al, "rule_matches"), (long long)jint(al, "failures"));
	}
	{
		json_t *srcs = json_object_get(st, "kafka"), *s;
		size_t i, j;
		int header = 0;
		json_array_foreach(srcs, i, s) {
			json_t *parts = json_object_get(s, "partitions"), *p;
			const char *name = json_string_value(json_object_get(s, "name"));
			const char *e = json_string_value(json_object_get(s, "error"));
			if (!header) {
				printf("\n%-20s %-32s %10s %14s %14s %10s\n", "source", "topic", "partition", "committed",
				       "high", "lag");
				header = 1;
			}
			if (e) {
				printf("%-20s lag unknown: %s\n", name ? name : "?", e);
				continue;
			}
			if (!json_array_size(parts))
				printf("%-20s (no partition assigned)\n", name ? name : "?");
			json_array_foreach(parts, j, p) {
				printf("%-20s %-32s %10lld %14lld %14lld %10lld\n", name ? name : "?",
				       json_string_value(json_object_get(p, "topic")), (long long)jint(p, "partition"),
				       (long long)jint(p, "committed"), (long long)jint(p, "high"), (long long)jint(p, "lag"));
			}
		}
	}
}

int tw_cli_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	int json = 0, c, running = 0;
	struct tw_store_stats ss;
	struct tw_err err;
	json_t *st = NULL;
	json_error_t jerr;
	char path[4096];
	double age_s = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			dir = optarg;
			break;
		case 'f':
			if (tw_cli_format_opt(CMD, optarg, &json))
				return TW_EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (optind < argc && !dir)
		dir = argv[optind++]; /* `trailwatch status DIR` works too */
	if (optind < argc)
		return tw_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (!dir)
		return tw_cli_usage_error(CMD, "--store DIR is required");

	tw_err_clear(&err);
	if (tw_store_stat(dir, &ss, &err) != TW_OK) {
		fprintf(stderr, "trailwatch status: %s\n", err.msg);
		return TW_EXIT_FAIL;
	}
	if (snprintf(path, sizeof path, "%s/status.json", dir) >= (int)sizeof path)
		return tw_cli_usage_error(CMD, "store path too long");
	st = json_load_file(path, 0, &jerr);
	if (!st && errno != ENOENT && access(path, F_OK) == 0)
		fprintf(stderr, "trailwatch status: %s: unreadable (%s); showing the store only\n", path, jerr.text);
	if (st) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		age_s = ((double)now.tv_sec * 1000 + now.tv_nsec / 1e6 - (double)jint(st, "time_ms")) / 1000.0;
		if (age_s < 0)
			age_s = 0;
		running = alive(jint(st, "pid"));
		{
			const char *state = json_string_value(json_object_get(st, "state"));
			if (state && strcmp(state, "running"))
				running = 0; /* a clean stop wrote its last sample; the pid may be reused */
		}
	}
	if (json) {
		json_t *out = json_object();
		json_object_set_new(out, "store", json_string(dir));
		json_object_set_new(out, "records", json_integer((json_int_t)ss.records));
		json_object_set_new(out, "bytes", json_integer((json_int_t)ss.bytes_total));
		json_object_set_new(out, "segments", json_integer((json_int_t)ss.segments));
		json_object_set_new(out, "running", json_boolean(running));
		if (st) {
			json_object_set_new(out, "status_age_s", json_real(age_s));
			json_object_set(out, "daemon", st);
		}
		json_dumpf(out, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(out);
	} else {
		print_table(dir, &ss, st, running, age_s);
	}
	json_decref(st);
	if (fflush(stdout))
		return TW_EXIT_FAIL;
	return st && !running ? TW_EXIT_PARTIAL : TW_EXIT_OK;
}
