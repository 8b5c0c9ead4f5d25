/* SPDX-License-Identifier: Apache-2.0 */
/* cli/main.c: the trailwatch program: finds the subcommand in a table and hands off. Adding a
 * command is one row in `commands` plus its function in its own cli/<name>.c. Global options:
 * --help, --version; `trailwatch help CMD` is `trailwatch CMD --help`. Only cli/ exits. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
	const char *name;                 /* what the user types */
	int (*run)(int argc, char **argv); /* argv[0] is the name; returns an enum tw_exit */
	const char *summary;              /* one line for `trailwatch --help` */
};

static const struct command commands[] = {
	{ "decode", tw_cli_decode, "decode CloudTrail and CloudWatch Logs inputs into JSON lines" },
	{ "ingest", tw_cli_ingest, "decode inputs and store the events (durable, indexed, deduplicated)" },
	{ "store", tw_cli_store, "store maintenance: stats, verify, compact, retain" },
	{ "query", tw_cli_query, "run a query (filter, stats, sort...) over one or more stores" },
	{ "who", tw_cli_who, "who touched a resource (bucket, role, key, instance, ARN)" },
	{ "what", tw_cli_what, "what a principal did: an hourly timeline, then the events" },
	{ "run", tw_cli_run, "the daemon: consume Kafka topics and growing directories into the store" },
	{ "status", tw_cli_status, "what the daemon writing a store last reported: events/s, lag, quarantined" },
	{ "filter", tw_cli_filter, "test or lint a CloudWatch Logs filter pattern against inputs (filter test|lint)" },
	{ "metrics", tw_cli_metrics, "the per-minute series computed from the records (metrics show NAME)" },
	{ "rules", tw_cli_rules, "list the built-in rules: the CIS AWS Foundations monitoring pack (rules list)" },
	{ "detect", tw_cli_detect, "anomaly scores of a timestamp,value CSV series (the anomaly band)" },
	{ "anomalies", tw_cli_anomalies, "what the rate, error-rate and first-seen detectors found, explained" },
	{ "config", tw_cli_config, "check the configuration file of 'trailwatch run' (config check FILE)" },
	{ "alarms", tw_cli_alarms, "alarm states, their history, set-state (--state DIR)" },
	{ "silence", tw_cli_silence, "mute alarm notifications: silence add, list, expire" },
	{ "notify", tw_cli_notify, "publish a notification (email, webhook, file, maildir, exec); outbox status" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fputs("usage: trailwatch COMMAND [OPTIONS] [ARGS]\n"
	      "       trailwatch help COMMAND | trailwatch COMMAND --help\n"
	      "       trailwatch --version\n"
	      "\n"
	      "trailwatch reads AWS CloudTrail and CloudWatch Logs records (files, S3-layout\n"
	      "directories, stdin), normalizes them into events and keeps them in a compressed,\n"
	      "indexed, deduplicated store.\n"
	      "\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-10s %s\n", "help", "show the help of a command");
	fputs("\nexit codes: 0 ok, 1 some records quarantined or inputs unreadable, 2 usage error,\n"
	      "3 I/O or internal error.\n",
	      f);
}

static const struct command *lookup(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int unknown(const char *name)
{
	fprintf(stderr, "trailwatch: unknown command '%s'\nTry 'trailwatch --help'.\n", name);
	return TW_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	int rc;

	/* A closed stdout pipe (| head) must surface as EPIPE from write(), not kill us mid-way. */
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (ulimit -f) must surface as EFBIG from write(), reported and handled like
	 * a full disk (nothing acknowledged lost), not kill the process between two writes. */
	signal(SIGXFSZ, SIG_IGN);

	if (argc < 2) {
		usage(stderr);
		return TW_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return fflush(stdout) ? TW_EXIT_FAIL : TW_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("trailwatch %s\n", TW_VERSION);
		return fflush(stdout) ? TW_EXIT_FAIL : TW_EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		char help[] = "--help";
		char *hargv[3];
		if (argc < 3) {
			usage(stdout);
			return fflush(stdout) ? TW_EXIT_FAIL : TW_EXIT_OK;
		}
		if (argc > 3)
			return tw_cli_usage_error("help", "expected one command name");
		cmd = lookup(argv[2]);
		if (!cmd)
			return unknown(argv[2]);
		hargv[0] = argv[2];
		hargv[1] = help;
		hargv[2] = NULL;
		return cmd->run(2, hargv);
	}
	if (argv[1][0] == '-') {
		fprintf(stderr, "trailwatch: unknown option '%s' (options go after the command)\n"
				"Try 'trailwatch --help'.\n",
			argv[1]);
		return TW_EXIT_USAGE;
	}
	cmd = lookup(argv[1]);
	if (!cmd)
		return unknown(argv[1]);
	rc = cmd->run(argc - 1, argv + 1);
	/* Anything a command left in stdio's stdout buffer: a failure to write it is an I/O error. */
	if (fflush(stdout) && rc == TW_EXIT_OK)
		rc = TW_EXIT_FAIL;
	return rc;
}
