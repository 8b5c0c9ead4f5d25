/* SPDX-License-Identifier: Apache-2.0 */
/* cli/config.c: `trailwatch config check FILE [--format text|json]`: validates the configuration
 * file of `trailwatch run` without running anything, prints the normalized settings (defaults
 * filled in, secrets named by where they come from, never by value) and the warnings. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"

#define CMD "config"

static void usage(FILE *f)
{
	fputs("usage: trailwatch config check [--format text|json] FILE\n"
	      "\n"
	      "Validates the configuration file FILE (JSON) of 'trailwatch run' without running it:\n"
	      "unknown keys, wrong types, missing keys, bad sizes (\"64M\") and durations (\"5m\")\n"
	      "are errors naming the key path ($.sources[1].kafka.topics). On success prints every\n"
	      "setting with its default filled in; secrets (passwords) are shown by where they come\n"
	      "from, <from env NAME> or <from file PATH>, and whether they are available now, never\n"
	      "by value. Warnings go to stderr: a config naming secrets that every user can read,\n"
	      "a world-readable secret file, a secret whose variable is not set.\n"
	      "See samples/config/ for a commented example.\n"
	      "\n"
	      "options:\n"
	      "  -f, --format FMT   text (default): one 'key = value' line per setting;\n"
	      "                     json: the normalized document (itself a valid config)\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "exit codes: 0 valid; 1 valid, with warnings; 2 invalid configuration or usage error;\n"
	      "3 the file cannot be read.\n",
	      f);
}

static void print_warning(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "trailwatch config: warning: %s\n", msg);
}

static int check(const char *path, enum tw_config_format fmt)
{
	struct tw_config *cfg = NULL;
	struct tw_err err;
	struct tw_buf out;
	enum tw_rc rc;
	size_t nwarn;
	int ret = TW_EXIT_OK;

	tw_err_clear(&err);
	rc = tw_config_load(path, &cfg, &err);
	if (rc) {
		fprintf(stderr, "trailwatch config: %s\n", err.msg);
		return rc == TW_EPARSE ? TW_EXIT_USAGE : TW_EXIT_FAIL;
	}
	tw_buf_init(&out, 4u << 20);
	if (tw_config_format(cfg, fmt, &out, &err)) {
		fprintf(stderr, "trailwatch config: %s\n", err.msg);
		ret = TW_EXIT_FAIL;
		goto done;
	}
	if (fwrite(out.p, 1, out.n, stdout) != out.n || fflush(stdout)) {
		ret = TW_EXIT_FAIL;
		goto done;
	}
	nwarn = tw_config_warnings(cfg, print_warning, NULL);
	if (fmt == TW_CONFIG_FMT_TEXT)
		fprintf(stderr, "trailwatch config: %s: valid (%zu source%s, %zu secret%s, %zu warning%s)\n", path,
			cfg->nsources, cfg->nsources == 1 ? "" : "s", cfg->nsecrets, cfg->nsecrets == 1 ? "" : "s", nwarn,
			nwarn == 1 ? "" : "s");
	if (nwarn)
		ret = TW_EXIT_PARTIAL;
done:
	tw_buf_free(&out);
	tw_config_free(cfg);
	return ret;
}

int tw_cli_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum tw_config_format fmt = TW_CONFIG_FMT_TEXT;
	int c;

	/* "config --help" and "config check --help" both work: options are parsed after the action. */
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return TW_EXIT_OK;
	}
	if (argc < 2)
		return tw_cli_usage_error(CMD, "expected an action: check");
	if (strcmp(argv[1], "check"))
		return tw_cli_usage_error(CMD, "unknown action '%s' (expected check)", argv[1]);
	argc--;
	argv++;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "text"))
				fmt = TW_CONFIG_FMT_TEXT;
			else if (!strcmp(optarg, "json"))
				fmt = TW_CONFIG_FMT_JSON;
			else
				return tw_cli_usage_error(CMD, "--format must be text or json, not '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (argc - optind != 1)
		return tw_cli_usage_error(CMD, "expected one configuration FILE");
	return check(argv[optind], fmt);
}
