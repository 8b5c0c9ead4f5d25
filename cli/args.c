/* SPDX-License-Identifier: Apache-2.0 */
/* cli/args.c: small helpers every subcommand uses: sizes with suffixes, bounded integers,
 * usage errors in one format, the monotonic clock, human-readable numbers. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/time.h"

int tw_cli_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (tw_config_size_parse(s, &v) || v > max)
		return -1;
	*out = v;
	return 0;
}

int tw_cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -1;
	}
	if (v < min)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int tw_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "trailwatch %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'trailwatch %s --help'.\n", cmd);
	return TW_EXIT_USAGE;
}

int tw_cli_getopt_error(const char *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	int is_long = !strncmp(arg, "--", 2);
	int len = (int)strcspn(arg, "="); /* "--raw=3": name the option, not its value */

	if (c == ':')
		return is_long ? tw_cli_usage_error(cmd, "option '%.*s' needs a value", len, arg)
			       : tw_cli_usage_error(cmd, "option '-%c' needs a value", optopt);
	if (is_long && optopt)
		return tw_cli_usage_error(cmd, "option '%.*s' does not take a value", len, arg);
	if (is_long)
		return tw_cli_usage_error(cmd, "unknown option '%.*s'", len, arg);
	return tw_cli_usage_error(cmd, "unknown option '-%c'", optopt);
}

int tw_cli_format_opt(const char *cmd, const char *arg, int *json)
{
	if (!strcmp(arg, "json"))
		*json = 1;
	else if (strcmp(arg, "table"))
		return tw_cli_usage_error(cmd, "--format: expected table or json, got '%s'", arg);
	return 0;
}

double tw_cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *tw_cli_fmt_count(uint64_t v, char *out, size_t outsz)
{
	char digits[32], tmp[48];
	int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
	size_t j = 0;

	for (int i = 0; i < nd; i++) {
		if (i && (nd - i) % 3 == 0)
			tmp[j++] = ',';
		tmp[j++] = digits[i];
	}
	tmp[j] = '\0';
	snprintf(out, outsz, "%s", tmp);
	return out;
}

char *tw_cli_fmt_bytes(uint64_t v, char *out, size_t outsz)
{
	if (v < 1000)
		snprintf(out, outsz, "%llu B", (unsigned long long)v);
	else if (v < 1000000)
		snprintf(out, outsz, "%.1f KB", (double)v / 1e3);
	else if (v < 1000000000)
		snprintf(out, outsz, "%.1f MB", (double)v / 1e6);
	else
		snprintf(out, outsz, "%.2f GB", (double)v / 1e9);
	return out;
}

int tw_cli_input_opt(const char *cmd, int c, const char *arg, struct tw_ingest_limits *lim)
{
	uint64_t v;

	switch (c) {
	case 't':
		if (tw_cli_parse_uint(arg, 0, 256, &lim->threads))
			return tw_cli_usage_error(cmd, "--threads: expected 0 to 256, got '%s'", arg);
		return 0;
	case 'R':
		if (tw_cli_parse_size(arg, 1ull << 30, &v) || v < 1024)
			return tw_cli_usage_error(cmd, "--max-record: expected a size from 1K to 1G, got '%s'", arg);
		lim->max_record = (size_t)v;
		return 0;
	case 'I':
		if (tw_cli_parse_size(arg, 1ull << 50, &v) || v < 1024)
			return tw_cli_usage_error(cmd, "--max-inflated: expected a size from 1K, got '%s'", arg);
		lim->max_inflated = v;
		return 0;
	}
	return -1;
}

int tw_cli_input_paths(int argc, char **argv, int first, const char ***paths, size_t *npaths, unsigned *bad)
{
	const char **v = calloc(first < argc ? (size_t)(argc - first) : 1, sizeof *v);

	*npaths = 0;
	*bad = 0;
	if (!v) {
		fprintf(stderr, "trailwatch: out of memory\n");
		return -1;
	}
	if (first >= argc)
		v[(*npaths)++] = "-";
	for (int i = first; i < argc; i++) {
		struct stat sb;
		if (strcmp(argv[i], "-") && stat(argv[i], &sb)) {
			fprintf(stderr, "trailwatch: %s: %s\n", argv[i], strerror(errno));
			(*bad)++;
			continue;
		}
		v[(*npaths)++] = argv[i];
	}
	*paths = v;
	return 0;
}

int tw_cli_now_ms(int64_t *out)
{
	const char *env = getenv("TW_NOW");
	struct tw_err err;
	struct timespec ts;

	if (env && *env) {
		if (tw_time_parse(env, strlen(env), out, &err) != TW_OK) {
			fprintf(stderr, "trailwatch: TW_NOW: %s\n", err.msg);
			return -1;
		}
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	*out = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return 0;
}

int tw_cli_range_opt(const char *cmd, int c, const char *arg, int64_t *from, int64_t *until)
{
	struct tw_err e;
	int64_t v, now;

	if (c == 's') {
		if (tw_duration_parse(arg, &v, &e) != TW_OK || v <= 0)
			return tw_cli_usage_error(cmd, "--since: expected a duration like 24h, 7d or 30m, got '%s'", arg);
		if (tw_cli_now_ms(&now))
			return TW_EXIT_USAGE;
		*from = now - v;
		return 0;
	}
	if (tw_time_parse(arg, strlen(arg), &v, &e) != TW_OK)
		return tw_cli_usage_error(cmd, "--%s: %s", c == 'F' ? "from" : "until", e.msg);
	if (c == 'F')
		*from = v;
	else
		*until = v;
	return 0;
}
