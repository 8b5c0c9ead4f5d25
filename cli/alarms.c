/* SPDX-License-Identifier: Apache-2.0 */
/* cli/alarms.c: `trailwatch alarms list|history|set-state` and `trailwatch silence add|list|expire`
 * over an alarm state directory (--state DIR, or --store DIR meaning DIR/alarms). Reads and
 * changes the files alerts/alarm.c and alerts/route.c keep; evaluates nothing itself. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alerts/alarm.h"
#include "alerts/route.h"
#include "cli/cli.h"
#include "core/time.h"

#define MAX_MATCH TW_SILENCE_MAX_MATCHERS

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void alarms_usage(FILE *f)
{
	fputs("usage: trailwatch alarms list      (--state DIR | --store DIR) [--format table|json]\n"
	      "       trailwatch alarms history   (--state DIR | --store DIR) [NAME] [--since 24h] [--format table|json]\n"
	      "       trailwatch alarms set-state (--state DIR | --store DIR) NAME STATE --reason TEXT\n"
	      "\n"
	      "Shows the alarms kept in an alarm state directory: their current state (OK, ALARM,\n"
	      "INSUFFICIENT_DATA), since when and why (CloudWatch's StateReason), and the history of\n"
	      "state changes, configuration updates and notifications (published or suppressed by a\n"
	      "silence). set-state forces a state like CloudWatch's SetAlarmState, until the next\n"
	      "evaluation decides afresh (a running daemon adopts it and fires its actions).\n"
	      "\n"
	      "options:\n"
	      "  --state DIR        the alarm state directory\n"
	      "  --store DIR        a store: its alarm state directory DIR/alarms\n"
	      "  -f, --format FMT   table (default) or json (list: one object per alarm; history:\n"
	      "                     the history records as stored, one per line)\n"
	      "  --since AGE        history: only records newer than AGE (90m, 24h, 7d)\n"
	      "  --reason TEXT      set-state: why (required)\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "exit codes: 0 ok; 1 history had unreadable (torn) lines, skipped; 2 usage error or\n"
	      "unknown alarm; 3 the directory cannot be read or written.\n",
	      f);
}

static void silence_usage(FILE *f)
{
	fputs("usage: trailwatch silence add    (--state DIR | --store DIR) --match M [--match M ...] --for 2h\n"
	      "                                 --comment TEXT [--author NAME] [--start TIME]\n"
	      "       trailwatch silence list   (--state DIR | --store DIR) [--all] [--format table|json]\n"
	      "       trailwatch silence expire (--state DIR | --store DIR) ID\n"
	      "\n"
	      "Silences mute notifications, as in Alertmanager: while a silence is active, an alarm\n"
	      "notification whose labels match all of its matchers is not sent; the history records it\n"
	      "as suppressed. Labels: alarm, state, account, region, severity and the alarm's own.\n"
	      "\n"
	      "matchers:\n"
	      "  alarm=NAME         equal          alarm!=NAME   not equal\n"
	      "  alarm=~REGEX       matches (PCRE2, anchored at both ends)   alarm!~REGEX   does not match\n"
	      "\n"
	      "options:\n"
	      "  --state DIR        the alarm state directory\n"
	      "  --store DIR        a store: its alarm state directory DIR/alarms\n"
	      "  -m, --match M      a matcher (repeatable, up to 16; all must match)\n"
	      "  --for AGE          how long from the start (30m, 2h, 7d)\n"
	      "  --start TIME       when it starts (ISO 8601; default now)\n"
	      "  -c, --comment TEXT why (required)\n"
	      "  -a, --author NAME  who (default $USER)\n"
	      "  --all              list: also the expired silences\n"
	      "  -f, --format FMT   list: table (default) or json\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "exit codes: 0 ok; 2 usage error or unknown silence id; 3 the directory cannot be read or written.\n",
	      f);
}

static int fail(const char *cmd, const struct tw_err *err)
{
	fprintf(stderr, "trailwatch %s: %s\n", cmd, err->msg);
	return err->rc == TW_ENOENT || err->rc == TW_EINVAL || err->rc == TW_EPARSE ? TW_EXIT_USAGE : TW_EXIT_FAIL;
}

/* "2026-11-21 10:05:00" (UTC, no millis) for tables. */
static void short_time(int64_t ms, char *out)
{
	char t[TW_TIME_BUFSZ];

	if (ms <= 0) {
		snprintf(out, TW_TIME_BUFSZ, "-");
		return;
	}
	tw_time_format(ms - ms % 1000, t);
	t[10] = ' ';
	t[19] = '\0';
	snprintf(out, TW_TIME_BUFSZ, "%s", t);
}

/* Shared option parsing: the directory, and the rest of the options per command. */
struct cliopts {
	const char *dir;          /* --state */
	char store_dir[4096];     /* --store DIR + /alarms */
	int json;                 /* --format json */
	int64_t since_ms;         /* --since, 0 none */
	const char *reason;       /* --reason */
	const char *match[MAX_MATCH]; /* --match */
	size_t nmatch;            /* how many */
	int64_t for_ms;           /* --for */
	const char *start;        /* --start */
	const char *comment;      /* --comment */
	const char *author;       /* --author */
	int all;                  /* --all */
	int help;                 /* --help seen */
};

static int parse_opts(const char *cmd, int argc, char **argv, struct cliopts *o)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' }, { "store", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' }, { "since", required_argument, NULL, 'n' },
		{ "reason", required_argument, NULL, 'r' }, { "match", required_argument, NULL, 'm' },
		{ "for", required_argument, NULL, 'F' },    { "start", required_argument, NULL, 'b' },
		{ "comment", required_argument, NULL, 'c' }, { "author", required_argument, NULL, 'a' },
		{ "all", no_argument, NULL, 'A' },          { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tw_err err;
	struct stat st;
	int c;

	memset(o, 0, sizeof *o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:r:m:c:a:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			o->dir = optarg;
			break;
		case 's':
			if (snprintf(o->store_dir, sizeof o->store_dir, "%s/alarms", optarg) >= (int)sizeof o->store_dir)
				return tw_cli_usage_error(cmd, "--store: path too long");
			o->dir = o->store_dir;
			break;
		case 'f':
			if (tw_cli_format_opt(cmd, optarg, &o->json))
				return TW_EXIT_USAGE;
			break;
		case 'n':
			if (tw_duration_parse(optarg, &o->since_ms, &err) || o->since_ms <= 0)
				return tw_cli_usage_error(cmd, "--since: expected an age like 90m, 24h or 7d, got '%s'", optarg);
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'm':
			if (o->nmatch == MAX_MATCH)
				return tw_cli_usage_error(cmd, "at most %d --match options", MAX_MATCH);
			if (tw_silence_matcher_check(optarg, &err))
				return tw_cli_usage_error(cmd, "--match: %s", err.msg);
			o->match[o->nmatch++] = optarg;
			break;
		case 'F':
			if (tw_duration_parse(optarg, &o->for_ms, &err) || o->for_ms <= 0)
				return tw_cli_usage_error(cmd, "--for: expected a duration like 30m, 2h or 7d, got '%s'", optarg);
			break;
		case 'b':
			o->start = optarg;
			break;
		case 'c':
			o->comment = optarg;
			break;
		case 'a':
			o->author = optarg;
			break;
		case 'A':
			o->all = 1;
			break;
		case 'h':
			o->help = 1;
			return 0;
		default:
			return tw_cli_getopt_error(cmd, c, argv);
		}
	}
	if (!o->dir)
		return tw_cli_usage_error(cmd, "which alarm state directory? Give --state DIR or --store DIR");
	errno = 0;
	if (stat(o->dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "trailwatch %s: %s: not an alarm state directory (%s)\n", cmd, o->dir,
			errno ? strerror(errno) : "not a directory");
		return TW_EXIT_FAIL;
	}
	return 0;
}

/* Column widths: at least the header, at most cap. */
/* The start `alarms` and `silence` share: --help first (before the state directory is checked),
 * the options, then the action word. Returns the action, or NULL when the command is done with
 * *ret its exit code (after --help, or a usage or directory error); actions lists them for the
 * message. */
static const char *parse_action(const char *cmd, int argc, char **argv, struct cliopts *o, void (*usage)(FILE *),
				const char *actions, int *ret)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		*ret = TW_EXIT_OK;
		return NULL;
	}
	if ((*ret = parse_opts(cmd, argc, argv, o)) || o->help) {
		if (o->help) {
			usage(stdout);
			*ret = TW_EXIT_OK;
		}
		return NULL;
	}
	if (optind >= argc) {
		*ret = tw_cli_usage_error(cmd, "expected an action: %s", actions);
		return NULL;
	}
	return argv[optind];
}

/* Prints j as one compact JSON line (keys in insertion order) and frees it. */
static void put_json_line(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (s)
		printf("%s\n", s);
	free(s);
}

static int width(int cur, const char *s, int cap)
{
	int l = (int)strlen(s);
	if (l > cap)
		l = cap;
	return l > cur ? l : cur;
}

static int do_list(const struct cliopts *o)
{
	struct tw_alarm_set *set;
	struct tw_alarm_info *v;
	size_t n;
	struct tw_err err;
	int wn = 4, ws = 5;

	if (tw_alarm_set_open(o->dir, &set, &err))
		return fail("alarms", &err);
	if (tw_alarm_set_list(set, &v, &n, &err)) {
		tw_alarm_set_close(set);
		return fail("alarms", &err);
	}
	for (size_t i = 0; i < n; i++) {
		wn = width(wn, v[i].name, 60);
		ws = width(ws, tw_alarm_state_str(v[i].state), 20);
	}
	if (!o->json)
		printf("%-*s  %-*s  %-19s  %s\n", wn, "NAME", ws, "STATE", "SINCE", "REASON");
	for (size_t i = 0; i < n; i++) {
		char t[TW_TIME_BUFSZ];
		if (o->json) {
			json_t *j = json_object();
			tw_time_format(v[i].since_ms, t);
			json_object_set_new(j, "name", json_string(v[i].name));
			json_object_set_new(j, "state", json_string(tw_alarm_state_str(v[i].state)));
			json_object_set_new(j, "since", v[i].since_ms ? json_string(t) : json_null());
			json_object_set_new(j, "reason", json_string(v[i].reason));
			json_object_set_new(j, "reason_data", v[i].reason_data[0] ? json_loads(v[i].reason_data, 0, NULL) : json_null());
			json_object_set_new(j, "composite", json_boolean(v[i].composite));
			put_json_line(j);
			continue;
		}
		short_time(v[i].since_ms, t);
		printf("%-*s  %-*s  %-19s  %s\n", wn, v[i].name, ws, tw_alarm_state_str(v[i].state), t,
		       v[i].reason[0] ? v[i].reason : "-");
	}
	free(v);
	tw_alarm_set_close(set);
	return TW_EXIT_OK;
}

static int do_history(const struct cliopts *o, const char *name)
{
	char path[4200], line[1 << 16];
	FILE *f;
	int64_t cutoff = o->since_ms ? now_ms() - o->since_ms : INT64_MIN;
	unsigned torn = 0;

	snprintf(path, sizeof path, "%s/history.jsonl", o->dir);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "trailwatch alarms: %s: no history (%s)\n", path, strerror(errno));
		return TW_EXIT_FAIL;
	}
	if (!o->json)
		printf("%-19s  %-19s  %-32s  %-28s  %s\n", "TIME", "TYPE", "ALARM", "CHANGE", "SUMMARY");
	while (fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *alarm, *type, *os, *ns, *reason, *result;
		int64_t t;
		char ts[TW_TIME_BUFSZ], change[64], summary[600];

		if (!j) {
			torn++;
			continue;
		}
		alarm = json_string_value(json_object_get(j, "alarm"));
		t = (int64_t)json_integer_value(json_object_get(j, "time_ms"));
		if (!alarm || t < cutoff || (name && strcmp(alarm, name))) {
			json_decref(j);
			continue;
		}
		if (o->json) {
			fputs(line, stdout);
			json_decref(j);
			continue;
		}
		type = json_string_value(json_object_get(j, "type"));
		os = json_string_value(json_object_get(j, "old_state"));
		ns = json_string_value(json_object_get(j, "new_state"));
		reason = json_string_value(json_object_get(j, "reason"));
		result = json_string_value(json_object_get(j, "result"));
		short_time(t, ts);
		if (os && ns)
			snprintf(change, sizeof change, "%s -> %s", os, ns);
		else
			snprintf(change, sizeof change, "-");
		if (result)
			snprintf(summary, sizeof summary, "%s to %s%s%s", result,
				 json_string_value(json_object_get(j, "topic")) ? json_string_value(json_object_get(j, "topic")) : "?",
				 json_object_get(j, "silence") ? " by silence " : "",
				 json_object_get(j, "silence") ? json_string_value(json_object_get(j, "silence")) : "");
		else
			snprintf(summary, sizeof summary, "%s", reason ? reason : "");
		printf("%-19s  %-19s  %-32s  %-28s  %s\n", ts, type ? type : "?", alarm, change, summary);
		json_decref(j);
	}
	fclose(f);
	if (torn) {
		fprintf(stderr, "trailwatch alarms: %s: %u unreadable line%s skipped (a torn last write?)\n", path, torn,
			torn == 1 ? "" : "s");
		return TW_EXIT_PARTIAL;
	}
	return TW_EXIT_OK;
}

static int do_set_state(const struct cliopts *o, const char *name, const char *state)
{
	struct tw_alarm_set *set;
	struct tw_err err;
	int st = tw_alarm_state_parse(state);
	int ret = TW_EXIT_OK;

	if (st < 0)
		return tw_cli_usage_error("alarms", "STATE must be OK, ALARM or INSUFFICIENT_DATA, got '%s'", state);
	if (!o->reason || !*o->reason)
		return tw_cli_usage_error("alarms", "set-state needs --reason TEXT");
	if (tw_alarm_set_open(o->dir, &set, &err))
		return fail("alarms", &err);
	if (tw_alarm_set_set_state(set, name, (enum tw_alarm_state)st, o->reason, now_ms(), &err))
		ret = fail("alarms", &err);
	else
		printf("%s: %s\n", name, state);
	tw_alarm_set_close(set);
	return ret;
}

int tw_cli_alarms(int argc, char **argv)
{
	struct cliopts o;
	const char *action;
	int rc;

	if (!(action = parse_action("alarms", argc, argv, &o, alarms_usage, "list, history or set-state", &rc)))
		return rc;
	if (!strcmp(action, "list")) {
		if (argc - optind != 1)
			return tw_cli_usage_error("alarms", "list takes no arguments");
		return do_list(&o);
	}
	if (!strcmp(action, "history")) {
		if (argc - optind > 2)
			return tw_cli_usage_error("alarms", "history takes at most one alarm NAME");
		return do_history(&o, argc - optind == 2 ? argv[optind + 1] : NULL);
	}
	if (!strcmp(action, "set-state")) {
		if (argc - optind != 3)
			return tw_cli_usage_error("alarms", "set-state needs NAME and STATE");
		return do_set_state(&o, argv[optind + 1], argv[optind + 2]);
	}
	return tw_cli_usage_error("alarms", "unknown action '%s' (list, history, set-state)", action);
}

static int silence_list(const struct cliopts *o)
{
	struct tw_silence *v;
	size_t n;
	struct tw_err err;
	int64_t now = now_ms();

	if (tw_silence_list(o->dir, &v, &n, &err))
		return fail("silence", &err);
	if (!o->json)
		printf("%-16s  %-8s  %-19s  %-19s  %-12s  %-40s  %s\n", "ID", "STATE", "STARTS", "ENDS", "CREATOR",
		       "MATCHERS", "COMMENT");
	for (size_t i = 0; i < n; i++) {
		const char *st = now < v[i].starts_ms ? "pending" : now < v[i].ends_ms ? "active" : "expired";
		char ms[600] = "", a[TW_TIME_BUFSZ], b[TW_TIME_BUFSZ];
		size_t k, off = 0;

		if (!o->all && !strcmp(st, "expired"))
			continue;
		for (k = 0; k < v[i].nmatchers && off < sizeof ms - 1; k++)
			off += (size_t)snprintf(ms + off, sizeof ms - off, "%s%s", k ? "," : "", v[i].matchers[k]);
		if (o->json) {
			json_t *j = json_object(), *arr = json_array();
			for (k = 0; k < v[i].nmatchers; k++)
				json_array_append_new(arr, json_string(v[i].matchers[k]));
			tw_time_format(v[i].starts_ms, a);
			tw_time_format(v[i].ends_ms, b);
			json_object_set_new(j, "id", json_string(v[i].id));
			json_object_set_new(j, "state", json_string(st));
			json_object_set_new(j, "matchers", arr);
			json_object_set_new(j, "starts", json_string(a));
			json_object_set_new(j, "ends", json_string(b));
			json_object_set_new(j, "creator", json_string(v[i].creator));
			json_object_set_new(j, "comment", json_string(v[i].comment));
			put_json_line(j);
			continue;
		}
		short_time(v[i].starts_ms, a);
		short_time(v[i].ends_ms, b);
		printf("%-16s  %-8s  %-19s  %-19s  %-12s  %-40s  %s\n", v[i].id, st, a, b, v[i].creator, ms, v[i].comment);
	}
	tw_silence_list_free(v, n);
	return TW_EXIT_OK;
}

int tw_cli_silence(int argc, char **argv)
{
	struct cliopts o;
	const char *action;
	struct tw_err err;
	int rc;

	if (!(action = parse_action("silence", argc, argv, &o, silence_usage, "add, list or expire", &rc)))
		return rc;
	if (!strcmp(action, "add")) {
		int64_t now = now_ms(), start = now;
		char id[24];
		const char *author = o.author ? o.author : getenv("USER");
		if (argc - optind != 1)
			return tw_cli_usage_error("silence", "add takes no arguments (matchers go in --match)");
		if (!o.nmatch)
			return tw_cli_usage_error("silence", "add needs at least one --match (alarm=NAME, alarm=~REGEX)");
		if (!o.for_ms)
			return tw_cli_usage_error("silence", "add needs --for DURATION (2h, 30m)");
		if (!o.comment || !*o.comment)
			return tw_cli_usage_error("silence", "add needs --comment TEXT");
		if (o.start && tw_time_parse(o.start, strlen(o.start), &start, &err))
			return tw_cli_usage_error("silence", "--start: %s", err.msg);
		if (tw_silence_add(o.dir, o.match, o.nmatch, start, start + o.for_ms, author ? author : "", o.comment, now, id,
				   &err))
			return fail("silence", &err);
		printf("%s\n", id);
		return TW_EXIT_OK;
	}
	if (!strcmp(action, "list")) {
		if (argc - optind != 1)
			return tw_cli_usage_error("silence", "list takes no arguments");
		return silence_list(&o);
	}
	if (!strcmp(action, "expire")) {
		if (argc - optind != 2)
			return tw_cli_usage_error("silence", "expire needs one silence ID");
		if (tw_silence_expire(o.dir, argv[optind + 1], now_ms(), &err))
			return fail("silence", &err);
		printf("%s: expired\n", argv[optind + 1]);
		return TW_EXIT_OK;
	}
	return tw_cli_usage_error("silence", "unknown action '%s' (add, list, expire)", action);
}
