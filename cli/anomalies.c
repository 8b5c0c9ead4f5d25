/* SPDX-License-Identifier: Apache-2.0 */
/* cli/anomalies.c: `trailwatch anomalies`: what the behaviour detectors found
 * (STORE/anomalies/anomalies.jsonl, written by cli/detectors.c), as an aligned table followed by
 * each finding's explanation and contributors, or as JSON lines. Reads only. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts/anomaly.h"
#include "cli/cli.h"
#include "core/time.h"

#define CMD "anomalies"
#define MAX_FINDINGS 100000 /* findings shown (the newest ones beyond) */

static void usage(FILE *f)
{
	fputs("usage: trailwatch anomalies --store DIR [--since 24h | --from T --until T] [--detector NAME]\n"
	      "                            [--format table|json]\n"
	      "\n"
	      "What the behaviour detectors found while 'trailwatch ingest' or 'trailwatch run' stored\n"
	      "CloudTrail events (STORE/anomalies/anomalies.jsonl), with their explanation:\n"
	      "  api_call_rate, api_error_rate   an API's (or a service's, eventName '*') calls or errors\n"
	      "                                  per minute far above their learned baseline, per account\n"
	      "                                  and region (like CloudTrail Insights); a 'start' when it\n"
	      "                                  opens, an 'end' when the rate is back\n"
	      "  first_seen_api, first_seen_region, first_seen_ip, first_seen_user_agent\n"
	      "                                  a principal's first use of an API, region, address range\n"
	      "                                  (/24, /48) or client family, when its history did not\n"
	      "                                  predict that much novelty\n"
	      "  console_login_new_ip            a console sign-in from an address the principal never\n"
	      "                                  signed in from nor called APIs from\n"
	      "The table lists one finding per row (time, detector, account/region, what, principal,\n"
	      "baseline -> observed); then each finding's summary and top contributors.\n"
	      "\n"
	      "options:\n"
	      "  -S, --store DIR        the store\n"
	      "      --since AGE        findings of the last AGE (24h, 7d; from the clock)\n"
	      "      --from T, --until T   findings overlapping this range (ISO 8601)\n"
	      "  -d, --detector NAME    only this detector (repeatable)\n"
	      "  -f, --format FMT       table (default) or json (the stored lines)\n"
	      "  -h, --help             this help\n"
	      "\n"
	      "exit codes: 0 ok; 1 some lines of the file were unreadable (skipped, named on stderr);\n"
	      "2 usage error; 3 the file cannot be read.\n",
	      f);
}

static void ts_short(int64_t ms, char *out, size_t cap)
{
	char t[TW_TIME_BUFSZ];
	tw_time_format(ms, t);
	snprintf(out, cap, "%.10s %.5s", t, t + 11);
}

static int detector_known(const char *d)
{
	static const char *const names[] = { "api_call_rate",	      "api_error_rate", "first_seen_api",
					     "first_seen_region",     "first_seen_ip",  "first_seen_user_agent",
					     "console_login_new_ip" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(names[i], d))
			return 1;
	return 0;
}

/* The cells of one table row. */
struct row {
	char time[24], det[32], where[140], what[200], who[120], rate[64];
};

static void make_row(const struct tw_anomaly *a, struct row *r)
{
	char b[32], o[32];
	const char *who = a->principal;
	size_t n = strlen(who);

	ts_short(a->start_ms, r->time, sizeof r->time);
	snprintf(r->det, sizeof r->det, "%s%s%s", a->detector, strcmp(a->phase, "event") ? " " : "",
		 strcmp(a->phase, "event") ? a->phase : "");
	snprintf(r->where, sizeof r->where, "%.64s/%.64s", a->account, a->region);
	if (!strncmp(a->detector, "api_", 4))
		snprintf(r->what, sizeof r->what, "%.150s", strcmp(a->event_name, "*") ? a->event_name : a->event_source);
	else if (a->nvalues > 1)
		snprintf(r->what, sizeof r->what, "%.150s (+%u)", a->value, a->nvalues - 1);
	else
		snprintf(r->what, sizeof r->what, "%.150s", a->value);
	if (n > 60) /* keep the end: the name is there */
		snprintf(r->who, sizeof r->who, "...%s", who + n - 57);
	else
		snprintf(r->who, sizeof r->who, "%s", who);
	if (!strncmp(a->detector, "api_", 4))
		snprintf(r->rate, sizeof r->rate, "%s -> %s/min", tw_anomaly_fmt_rate(a->baseline, b),
			 tw_anomaly_fmt_rate(a->observed, o));
	else if (!strcmp(a->detector, "console_login_new_ip"))
		snprintf(r->rate, sizeof r->rate, "new address");
	else
		snprintf(r->rate, sizeof r->rate, "%s -> %u new", tw_anomaly_fmt_rate(a->baseline, b), a->nvalues);
}

static void print_top(const char *label, const struct tw_anomaly_top *t)
{
	if (!t->n)
		return;
	printf("      %-12s", label);
	for (unsigned i = 0; i < t->n; i++)
		printf("%s%s (%llu)", i ? ", " : "", t->c[i].key, (unsigned long long)t->c[i].n);
	printf("\n");
}

int tw_cli_anomalies(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' }, { "since", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'F' },  { "until", required_argument, NULL, 'U' },
		{ "detector", required_argument, NULL, 'd' }, { "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *dets[16];
	size_t ndets = 0;
	int64_t from = INT64_MIN, until = INT64_MAX;
	int json = 0, c, ex = TW_EXIT_OK;
	char path[4200], *line = NULL;
	size_t cap = 0, n = 0, capf = 0;
	uint64_t lineno = 0, bad = 0;
	struct tw_anomaly *fs = NULL;
	struct row *rows = NULL;
	FILE *f;
	ssize_t len;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:d:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			dir = optarg;
			break;
		case 's':
		case 'F':
		case 'U': {
			int rc = tw_cli_range_opt(CMD, c, optarg, &from, &until);
			if (rc)
				return rc;
			break;
		}
		case 'd':
			if (!detector_known(optarg))
				return tw_cli_usage_error(CMD, "--detector: unknown detector '%s' (see --help)", optarg);
			if (ndets == sizeof dets / sizeof dets[0])
				return tw_cli_usage_error(CMD, "--detector: at most 16");
			dets[ndets++] = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "table"))
				json = 0;
			else if (!strcmp(optarg, "json"))
				json = 1;
			else
				return tw_cli_usage_error(CMD, "--format: expected table or json");
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
	if (optind != argc)
		return tw_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (from >= until)
		return tw_cli_usage_error(CMD, "the range is empty (--from must be before --until)");
	snprintf(path, sizeof path, "%s/anomalies/anomalies.jsonl", dir);
	if (!(f = fopen(path, "r"))) {
		if (errno == ENOENT) {
			fprintf(stderr, "trailwatch anomalies: %s: no findings yet (the detectors run during "
					"'trailwatch ingest' and 'trailwatch run')\n", path);
			return TW_EXIT_FAIL;
		}
		fprintf(stderr, "trailwatch anomalies: %s: %s\n", path, strerror(errno));
		return TW_EXIT_FAIL;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		struct tw_anomaly a;
		struct tw_err e;
		int keep = !ndets;
		lineno++;
		if (tw_anomaly_read_line(line, (size_t)len, &a, &e)) {
			if (bad++ < 5)
				fprintf(stderr, "trailwatch anomalies: %s:%llu: %s (skipped)\n", path,
					(unsigned long long)lineno, e.msg);
			continue;
		}
		for (size_t i = 0; i < ndets; i++)
			keep |= !strcmp(dets[i], a.detector);
		if (!keep || a.end_ms < from || a.start_ms >= until)
			continue;
		if (json) {
			fwrite(line, 1, (size_t)len, stdout);
			if (line[len - 1] != '\n')
				putchar('\n');
			continue;
		}
		if (n == capf) {
			size_t nc = capf ? capf * 2 : 64;
			struct tw_anomaly *nf;
			if (nc > MAX_FINDINGS) { /* keep the newest: drop the oldest half */
				memmove(fs, fs + n / 2, (n - n / 2) * sizeof *fs);
				n -= n / 2;
			} else if (!(nf = realloc(fs, nc * sizeof *nf))) {
				fprintf(stderr, "trailwatch anomalies: out of memory\n");
				ex = TW_EXIT_FAIL;
				break;
			} else {
				fs = nf;
				capf = nc;
			}
		}
		fs[n++] = a;
	}
	if (ferror(f)) {
		fprintf(stderr, "trailwatch anomalies: %s: %s\n", path, strerror(errno));
		ex = TW_EXIT_FAIL;
	}
	fclose(f);
	free(line);
	if (bad && ex == TW_EXIT_OK)
		ex = TW_EXIT_PARTIAL;
	if (bad > 5)
		fprintf(stderr, "trailwatch anomalies: %llu unreadable lines in all\n", (unsigned long long)bad);
	if (json || ex == TW_EXIT_FAIL) {
		free(fs);
		return ex;
	}
	if (!n) {
		printf("no findings%s\n", from != INT64_MIN || until != INT64_MAX || ndets ? " in this range" : "");
		free(fs);
		return ex;
	}
	if (!(rows = calloc(n, sizeof *rows))) {
		fprintf(stderr, "trailwatch anomalies: out of memory\n");
		free(fs);
		return TW_EXIT_FAIL;
	}
	{
		int w[6] = { 16, 8, 14, 4, 9, 20 };
		static const char *const head[6] = { "TIME (UTC)", "DETECTOR", "ACCOUNT/REGION", "WHAT", "PRINCIPAL",
						     "BASELINE -> OBSERVED" };
		for (size_t i = 0; i < n; i++) {
			struct row *r = &rows[i];
			const char *cells[6];
			make_row(&fs[i], r);
			cells[0] = r->time, cells[1] = r->det, cells[2] = r->where, cells[3] = r->what, cells[4] = r->who,
			cells[5] = r->rate;
			for (int k = 0; k < 6; k++)
				if ((int)strlen(cells[k]) > w[k])
					w[k] = (int)strlen(cells[k]);
		}
		printf("%-4s  ", "#");
		for (int k = 0; k < 6; k++)
			if (k < 5)
				printf("%-*s  ", w[k], head[k]);
			else
				printf("%s\n", head[k]);
		for (size_t i = 0; i < n; i++) {
			struct row *r = &rows[i];
			printf("%-4zu  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", i + 1, w[0], r->time, w[1], r->det, w[2], r->where,
			       w[3], r->what, w[4], r->who, r->rate);
		}
	}
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		const struct tw_anomaly *a = &fs[i];
		printf("[%zu] %s\n", i + 1, a->summary);
		if (!strncmp(a->detector, "api_", 4)) {
			printf("    during the insight:\n");
			print_top("principals", &a->top[1][TW_ANOMALY_C_PRINCIPAL]);
			print_top("user agents", &a->top[1][TW_ANOMALY_C_USER_AGENT]);
			print_top("error codes", &a->top[1][TW_ANOMALY_C_ERROR_CODE]);
			printf("    in the baseline:%s\n", a->top[0][0].n || a->top[0][1].n || a->top[0][2].n ? "" : " (none)");
			print_top("principals", &a->top[0][TW_ANOMALY_C_PRINCIPAL]);
			print_top("user agents", &a->top[0][TW_ANOMALY_C_USER_AGENT]);
			print_top("error codes", &a->top[0][TW_ANOMALY_C_ERROR_CODE]);
		}
		if (a->nevidence) {
			printf("    events:     ");
			for (unsigned k = 0; k < a->nevidence; k++)
				printf("%s%s", k ? " " : "", a->evidence[k]);
			printf("\n");
		}
	}
	free(rows);
	free(fs);
	if (fflush(stdout) && errno != EPIPE) {
		fprintf(stderr, "trailwatch anomalies: stdout: %s\n", strerror(errno));
		return TW_EXIT_FAIL;
	}
	return ex;
}
