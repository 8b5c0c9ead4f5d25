/* SPDX-License-Identifier: Apache-2.0 */
/* cli/query.c: `trailwatch query` (run a query over one or more stores), `who` (who touched a
 * resource) and `what` (what a principal did). The planner (query/plan.c) does the work; this file
 * parses options and times, reports errors with exit codes, and hands rows to cli/qfmt.c.
 * "Now" for --since is the clock, or $TW_NOW (a timestamp) so tests are deterministic. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/time.h"
#include "query/query.h"

#define MAX_STORES 64
#define OUT_FLUSH_AT (1u << 20)
#define OUT_MAX (64u << 20)

/* What query, who and what share on their command lines. */
struct qargs {
	const char *cmd;                 /* subcommand name, for messages */
	const char *stores[MAX_STORES];  /* --store DIR (shards) */
	size_t nstores;                  /* entries in stores */
	int64_t from, until;             /* time range (inclusive ms) */
	int format;                      /* -1: default; else enum tw_cli_qformat */
	int raw, explain, chart;         /* flags */
	unsigned long long limit;        /* --limit N, 0 when absent */
	const char *event;               /* who: --event NAME */
	double t0;                       /* start, for --explain */
	uint64_t damaged;                /* damaged or unreadable store files left out (exit 1) */
};

/* tw_qrun_opts.on_damage: names the file on stderr; the answer comes from the rest. */
static void on_damage(void *ctx, const char *problem)
{
	struct qargs *a = ctx;

	a->damaged++;
	fprintf(stderr, "trailwatch %s: warning: %s (left out: the answer comes from the rest of the store)\n",
		a->cmd, problem);
}


/* Parses the shared options (extra: the command's own, handled here too). Returns -1 on success
 * (argv[optind..] left for the caller), else an exit code. */
static int parse_common(struct qargs *a, int argc, char **argv, void (*usage)(FILE *))
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' }, { "since", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'F' },  { "until", required_argument, NULL, 'U' },
		{ "format", required_argument, NULL, 'f' }, { "raw", no_argument, NULL, 'r' },
		{ "explain", no_argument, NULL, 'e' },     { "chart", no_argument, NULL, 'c' },
		{ "limit", required_argument, NULL, 'l' }, { "event", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	const char *since = NULL, *from = NULL, *until = NULL;
	struct tw_err err;
	int c;

	memset(a->stores, 0, sizeof a->stores);
	a->nstores = 0;
	a->from = INT64_MIN;
	a->until = INT64_MAX;
	a->format = -1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:s:F:U:f:rel:E:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			if (a->nstores == MAX_STORES)
				return tw_cli_usage_error(a->cmd, "at most %d --store options", MAX_STORES);
			a->stores[a->nstores++] = optarg;
			break;
		case 's': since = optarg; break;
		case 'F': from = optarg; break;
		case 'U': until = optarg; break;
		case 'f':
			if (!strcmp(optarg, "json"))
				a->format = TW_CLI_QF_JSON;
			else if (!strcmp(optarg, "table"))
				a->format = TW_CLI_QF_TABLE;
			else if (!strcmp(optarg, "csv"))
				a->format = TW_CLI_QF_CSV;
			else
				return tw_cli_usage_error(a->cmd, "--format: expected table, json or csv, got '%s'", optarg);
			break;
		case 'r': a->raw = 1; break;
		case 'e': a->explain = 1; break;
		case 'c': a->chart = 1; break;
		case 'l': {
			char *end;
			a->limit = strtoull(optarg, &end, 10);
			if (*end || !a->limit || a->limit > 1000000000000ull || optarg[0] == '-')
				return tw_cli_usage_error(a->cmd, "--limit: expected a number from 1, got '%s'", optarg);
			break;
		}
		case 'E': a->event = optarg; break;
		case 'h':
			usage(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(a->cmd, c, argv);
		}
	}
	if (!a->nstores)
		return tw_cli_usage_error(a->cmd, "expected --store DIR");
	if (since && (from || until))
		return tw_cli_usage_error(a->cmd, "--since and --from/--until exclude each other");
	if (since) {
		int64_t d, now;
		if (tw_duration_parse(since, &d, &err) != TW_OK || d <= 0)
			return tw_cli_usage_error(a->cmd, "--since: expected a duration like 24h, 7d or 30m, got '%s'", since);
		if (tw_cli_now_ms(&now))
			return TW_EXIT_USAGE;
		a->from = now - d;
		a->until = now;
	}
	if (from && tw_time_parse(from, strlen(from), &a->from, &err) != TW_OK)
		return tw_cli_usage_error(a->cmd, "--from: %s", err.msg);
	if (until && tw_time_parse(until, strlen(until), &a->until, &err) != TW_OK)
		return tw_cli_usage_error(a->cmd, "--until: %s", err.msg);
	if (a->from > a->until)
		return tw_cli_usage_error(a->cmd, "the time range is empty (--from after --until)");
	return -1;
}

/* Parses text; on a parse error prints it under the query with a caret. Returns 0 or an exit code. */
static int parse_query(const char *cmd, const char *text, size_t n, struct tw_query **q)
{
	struct tw_err err, e2;
	struct tw_buf b;

	tw_err_clear(&err);
	if (tw_query_parse(text, n, q, &err) == TW_OK)
		return 0;
	if (err.rc == TW_ENOMEM) {
		fprintf(stderr, "trailwatch %s: %s\n", cmd, err.msg);
		return TW_EXIT_FAIL;
	}
	tw_buf_init(&b, TW_QUERY_MAX_TEXT + 4096);
	tw_err_clear(&e2);
	fprintf(stderr, "trailwatch %s: invalid query:\n", cmd);
	if (tw_query_caret(text, n, &err, &b, &e2) == TW_OK)
		fwrite(b.p, 1, b.n, stderr); /* the user's own query text */
	else
		fprintf(stderr, "%s\n", err.msg);
	tw_buf_free(&b);
	return TW_EXIT_USAGE;
}

static void explain(const struct qargs *a, const struct tw_qrun_stats *st, double secs)
{
	char t0[TW_TIME_BUFSZ], t1[TW_TIME_BUFSZ], n1[32], n2[32], n3[32];

	fprintf(stderr, "plan: index terms: %s\n", st->terms[0] ? st->terms : "none (every record is a candidate)");
	if (st->tmin != INT64_MIN)
		tw_time_format(st->tmin, t0);
	if (st->tmax != INT64_MAX)
		tw_time_format(st->tmax, t1);
	fprintf(stderr, "plan: time range: %s .. %s\n", st->tmin == INT64_MIN ? "(open)" : t0,
		st->tmax == INT64_MAX ? "(open)" : t1);
	fprintf(stderr, "plan: stores %" PRIu64 ", segments %" PRIu64 " (%" PRIu64 " pruned), records %s\n",
		st->stores, st->segments, st->segments_pruned, tw_cli_fmt_count(st->records, n1, sizeof n1));
	fprintf(stderr, "plan: blocks read %" PRIu64 " of %" PRIu64 " (%" PRIu64 " skipped by time)\n", st->blocks_read,
		st->blocks, st->blocks_pruned);
	fprintf(stderr, "plan: candidates %s, fetched %s, WAL tail %" PRIu64 ", matched %s\n",
		tw_cli_fmt_count(st->candidates, n1, sizeof n1), tw_cli_fmt_count(st->fetched, n2, sizeof n2),
		st->tail_scanned, tw_cli_fmt_count(st->matched, n3, sizeof n3));
	if (st->segments_counted)
		fprintf(stderr, "plan: answered from postings: %" PRIu64 " segments, %s records counted without reading blocks\n",
			st->segments_counted, tw_cli_fmt_count(st->records_counted, n1, sizeof n1));
	fprintf(stderr, "plan: time %.1f ms\n", secs * 1000);
	(void)a;
}

/* Runs text over the stores into a finished executor *xo. Returns -1 on success, else an exit code. */
static int run(struct qargs *a, const char *text, size_t n, struct tw_query **qo, struct tw_qexec **xo, int ordered)
{
	struct tw_query *q = NULL;
	struct tw_qexec *x = NULL;
	struct tw_err err;
	struct tw_qrun_opts o = { 0, 0, 0, 0, NULL, NULL };
	struct tw_qrun_stats st;
	double t0 = tw_cli_now();
	int ex;

	if ((ex = parse_query(a->cmd, text, n, &q)) != 0)
		return ex;
	tw_err_clear(&err);
	if (tw_qexec_new(q, NULL, &x, &err) != TW_OK)
		goto fail;
	o.ordered = ordered < 0 ? tw_query_needs_order(q) : ordered;
	o.on_damage = on_damage;
	o.damage_ctx = a;
	if (tw_query_run(a->stores, a->nstores, q, a->from, a->until, &o, x, &st, &err) != TW_OK)
		goto fail;
	if (tw_qexec_finish(x, &err) != TW_OK)
		goto fail;
	if (a->explain)
		explain(a, &st, tw_cli_now() - t0);
	*qo = q;
	*xo = x;
	return -1;
fail:
	fprintf(stderr, "trailwatch %s: %s\n", a->cmd, err.msg);
	tw_qexec_free(x);
	tw_query_free(q);
	return err.rc == TW_ELIMIT ? TW_EXIT_USAGE : TW_EXIT_FAIL;
}

static void fmt_setup(const struct qargs *a, struct tw_cli_qfmt *f, int dflt)
{
	int tty = isatty(STDOUT_FILENO);
	memset(f, 0, sizeof *f);
	f->format = a->format >= 0 ? (enum tw_cli_qformat)a->format : (tty ? TW_CLI_QF_TABLE : (enum tw_cli_qformat)dflt);
	f->raw = a->raw;
	f->width = tw_cli_term_width(STDOUT_FILENO);
	f->color = tty && !getenv("NO_COLOR");
}

static int finish_out(const char *cmd, struct tw_cli_out *o, enum tw_rc rc, const struct tw_err *err)
{
	int ex = TW_EXIT_OK;
	if (rc != TW_OK) {
		fprintf(stderr, "trailwatch %s: %s\n", cmd, err->msg);
		ex = TW_EXIT_FAIL;
	} else if (tw_cli_out_flush(o) && !o->broken) {
		fprintf(stderr, "trailwatch %s: writing the output: %s\n", cmd, strerror(o->err_no));
		ex = TW_EXIT_FAIL;
	}
	tw_cli_out_free(o);
	return ex;
}

/* ---- query ----------------------------------------------------------------------------------- */

static void query_usage(FILE *f)
{
	fputs("usage: trailwatch query --store DIR [--store DIR2 ...] [--since 24h | --from T --until T]\n"
	      "                        [--format table|json|csv] [--raw] [--limit N] [--explain] [--chart] 'QUERY'\n"
	      "\n"
	      "Runs a query (CloudWatch Logs Insights style: filter, fields, stats, sort, limit, dedup;\n"
	      "see query/query.h) over one or more stores (shards of one data set).\n"
	      "\n"
	      "  -S, --store DIR    a store; repeat for shards\n"
	      "      --since D      only the last D (30m, 24h, 7d) before now ($TW_NOW overrides the clock)\n"
	      "      --from T, --until T   an explicit range (2026-11-02T05:00:00Z, inclusive)\n"
	      "      --format F     table (default on a terminal), json (default otherwise: JSON lines), csv\n"
	      "      --raw          JSON output of events: the original records, byte for byte, one per line\n"
	      "      --limit N      at most N rows (appends '| limit N')\n"
	      "      --explain      print the plan on stderr: index terms, segments and blocks pruned, records\n"
	      "                     fetched and matched, time\n"
	      "      --chart        draw a 'stats ... by bin(1h)' result as horizontal bars\n"
	      "\n"
	      "Events come in ascending time (so 'limit N' keeps the N earliest) unless the query sorts.\n"
	      "exit codes: 0 ok; 1 a damaged or unreadable store file was left out (named on stderr);\n"
	      "2 usage or query error (a caret shows where); 3 store or I/O error.\n",
	      f);
}

int tw_cli_query(int argc, char **argv)
{
	struct qargs a;
	struct tw_query *q = NULL;
	struct tw_qexec *x = NULL;
	struct tw_cli_out o;
	struct tw_cli_qfmt f;
	struct tw_buf text;
	struct tw_err err;
	enum tw_rc rc;
	int ex;

	memset(&a, 0, sizeof a);
	a.cmd = "query";
	if ((ex = parse_common(&a, argc, argv, query_usage)) >= 0)
		return ex;
	if (a.event)
		return tw_cli_usage_error(a.cmd, "--event belongs to 'who'");
	if (argc - optind != 1)
		return tw_cli_usage_error(a.cmd, "expected one QUERY argument (quote it)");
	tw_buf_init(&text, TW_QUERY_MAX_TEXT + 64);
	tw_err_clear(&err);
	rc = tw_buf_append(&text, argv[optind], strlen(argv[optind]), &err);
	if (rc == TW_OK && a.limit)
		rc = tw_buf_printf(&text, &err, " | limit %llu", a.limit);
	if (rc != TW_OK) {
		tw_buf_free(&text);
		return tw_cli_usage_error(a.cmd, "the query is too long");
	}
	ex = run(&a, text.p, text.n, &q, &x, -1);
	tw_buf_free(&text);
	if (ex >= 0)
		return ex;
	fmt_setup(&a, &f, TW_CLI_QF_JSON);
	tw_cli_out_init(&o, STDOUT_FILENO, OUT_FLUSH_AT, OUT_MAX);
	if (a.chart)
		rc = tw_cli_qfmt_chart(&o, x, f.width, isatty(STDOUT_FILENO), &err);
	else
		rc = tw_cli_qfmt_results(&o, x, &f, &err);
	if (a.chart && rc == TW_EINVAL) {
		fprintf(stderr, "trailwatch query: %s\n", err.msg);
		tw_cli_out_free(&o);
		tw_qexec_free(x);
		tw_query_free(q);
		return TW_EXIT_USAGE;
	}
	ex = finish_out(a.cmd, &o, rc, &err);
	if (ex == TW_EXIT_OK && a.damaged)
		ex = TW_EXIT_PARTIAL; /* damaged store files were left out */
	tw_qexec_free(x);
	tw_query_free(q);
	return ex;
}

/* ---- who / what: shared pieces ---------------------------------------------------------------- */

/* Appends s as a double-quoted query string literal. */
static enum tw_rc put_lit(struct tw_buf *b, const char *s, struct tw_err *err)
{
	enum tw_rc rc = tw_buf_putc(b, '"', err);
	for (; *s && rc == TW_OK; s++) {
		if (*s == '"' || *s == '\\')
			rc = tw_buf_putc(b, '\\', err);
		if (rc == TW_OK)
			rc = tw_buf_putc(b, *s, err);
	}
	return rc == TW_OK ? tw_buf_putc(b, '"', err) : rc;
}

static struct tw_str nonempty(struct tw_str s)
{
	return s.n ? s : TW_STR_LIT("-");
}

/* Prints "N events; K principals: a (n), b (m), ..." for the events. */
static enum tw_rc summary(struct tw_cli_out *o, const struct tw_event *const *evs, size_t n, int field,
			  const char *what, const char *whats, struct tw_err *err)
{
	struct tw_cli_counter *c = tw_cli_counter_new(100000);
	struct tw_cli_count top[10];
	size_t k, failed = 0;
	enum tw_rc rc;

	if (!c)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		failed += evs[i]->f[TW_F_ERROR_CODE].n > 0;
		if (tw_cli_counter_add(c, nonempty(evs[i]->f[field]))) {
			tw_cli_counter_free(c);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
	}
	k = tw_cli_counter_top(c, 10, top);
	rc = tw_buf_printf(&o->buf, err, "\n%zu event%s (%zu failed), %zu %s%s\n", n, n == 1 ? "" : "s", failed,
			   tw_cli_counter_distinct(c), tw_cli_counter_distinct(c) == 1 ? what : whats, k ? ":" : "");
	for (size_t i = 0; i < k && rc == TW_OK; i++)
		rc = tw_buf_printf(&o->buf, err, "  %8" PRIu64 "  %.*s\n", top[i].n, (int)top[i].key.n, top[i].key.p);
	tw_cli_counter_free(c);
	return rc;
}

/* ---- who ------------------------------------------------------------------------------------- */

static void who_usage(FILE *f)
{
	fputs("usage: trailwatch who RESOURCE --store DIR [--store DIR2 ...] [--event NAME]\n"
	      "                      [--since 24h | --from T --until T] [--format table|json|csv]\n"
	      "\n"
	      "Who touched a bucket, role, key, instance or any ARN: the events whose resources include\n"
	      "RESOURCE (exactly), oldest first: time, principal, event, source IP, error (failures in\n"
	      "bold red on a terminal, marked '!' otherwise), then the principals with their counts.\n"
	      "exit codes: 0 ok; 1 a damaged or unreadable store file was left out (named on stderr);\n"
	      "2 usage error; 3 store or I/O error.\n",
	      f);
}

int tw_cli_who(int argc, char **argv)
{
	static const char *const cols[] = { "time", "principal", "event", "ip", "error" };
	struct qargs a;
	struct tw_query *q = NULL;
	struct tw_qexec *x = NULL;
	struct tw_cli_out o;
	struct tw_cli_qfmt f;
	struct tw_buf text;
	struct tw_err err;
	const struct tw_event **evs = NULL;
	size_t n;
	enum tw_rc rc;
	int ex;

	memset(&a, 0, sizeof a);
	a.cmd = "who";
	if ((ex = parse_common(&a, argc, argv, who_usage)) >= 0)
		return ex;
	if (argc - optind != 1)
		return tw_cli_usage_error(a.cmd, "expected one RESOURCE (a bucket, role, key, instance or ARN)");
	tw_buf_init(&text, TW_QUERY_MAX_TEXT);
	tw_err_clear(&err);
	rc = tw_buf_append(&text, "filter resource = ", 18, &err);
	if (rc == TW_OK)
		rc = put_lit(&text, argv[optind], &err);
	if (rc == TW_OK && a.event) {
		rc = tw_buf_append(&text, " and eventName = ", 17, &err);
		if (rc == TW_OK)
			rc = put_lit(&text, a.event, &err);
	}
	if (rc == TW_OK && a.limit)
		rc = tw_buf_printf(&text, &err, " | limit %llu", a.limit);
	if (rc != TW_OK) {
		tw_buf_free(&text);
		return tw_cli_usage_error(a.cmd, "the resource name is too long");
	}
	ex = run(&a, text.p, text.n, &q, &x, 1);
	tw_buf_free(&text);
	if (ex >= 0)
		return ex;
	fmt_setup(&a, &f, TW_CLI_QF_TABLE);
	f.mark = !f.color;
	n = tw_qexec_nrows(x);
	evs = malloc((n ? n : 1) * sizeof *evs);
	tw_cli_out_init(&o, STDOUT_FILENO, OUT_FLUSH_AT, OUT_MAX);
	if (!evs) {
		rc = tw_err_set(&err, TW_ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < n; i++)
			evs[i] = tw_qexec_row_event(x, i);
		rc = tw_cli_qfmt_events(&o, evs, n, cols, sizeof cols / sizeof *cols, &f, &err);
		if (rc == TW_OK && f.format == TW_CLI_QF_TABLE)
			rc = summary(&o, evs, n, TW_F_PRINCIPAL, "principal", "principals", &err);
	}
	ex = finish_out(a.cmd, &o, rc, &err);
	if (ex == TW_EXIT_OK && a.damaged)
		ex = TW_EXIT_PARTIAL; /* damaged store files were left out */
	free(evs);
	tw_qexec_free(x);
	tw_query_free(q);
	return ex;
}

/* ---- what ------------------------------------------------------------------------------------ */

static void what_usage(FILE *f)
{
	fputs("usage: trailwatch what PRINCIPAL --store DIR [--store DIR2 ...] [--since 24h | --from T --until T]\n"
	      "                       [--format table|json|csv]\n"
	      "\n"
	      "What a principal did: the events whose principal ARN, userName (or assumed-role session name),\n"
	      "access key id or SSO user equals PRINCIPAL; when none does, the principals whose ARN ends\n"
	      "in '/PRINCIPAL' or ':PRINCIPAL' (user/alice, role/ci/session). Prints a timeline by hour\n"
	      "(events, failures, top APIs), then the events oldest first.\n"
	      "exit codes: 0 ok; 1 a damaged or unreadable store file was left out (named on stderr);\n"
	      "2 usage error; 3 store or I/O error.\n",
	      f);
}

static int ev_cmp(const void *pa, const void *pb)
{
	const struct tw_event *a = *(const struct tw_event *const *)pa, *b = *(const struct tw_event *const *)pb;
	size_t n;
	int c;

	if (a->time_ms != b->time_ms)
		return a->time_ms < b->time_ms ? -1 : 1;
	n = a->raw.n < b->raw.n ? a->raw.n : b->raw.n;
	c = n ? memcmp(a->raw.p, b->raw.p, n) : 0;
	if (c)
		return c;
	return a->raw.n < b->raw.n ? -1 : a->raw.n > b->raw.n;
}

static int ends_with_name(struct tw_str s, const char *name)
{
	size_t n = strlen(name);
	if (s.n <= n || memcmp(s.p + s.n - n, name, n))
		return 0;
	return s.p[s.n - n - 1] == '/' || s.p[s.n - n - 1] == ':';
}

static enum tw_rc timeline(struct tw_cli_out *o, const struct tw_event *const *evs, size_t n, int color,
			   struct tw_err *err)
{
	enum tw_rc rc = tw_buf_printf(&o->buf, err, "%-17s  %6s  %6s  %s\n", "hour", "events", "errors", "top APIs");
	size_t i = 0;

	while (i < n && rc == TW_OK) {
		int64_t h = evs[i]->time_ms - (((evs[i]->time_ms % 3600000) + 3600000) % 3600000);
		struct tw_cli_counter *c = tw_cli_counter_new(4096);
		struct tw_cli_count top[5];
		size_t j = i, errs = 0, k;
		char tbuf[TW_TIME_BUFSZ];

		if (!c)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		for (; j < n && evs[j]->time_ms - h < 3600000; j++) {
			errs += evs[j]->f[TW_F_ERROR_CODE].n > 0;
			if (tw_cli_counter_add(c, nonempty(evs[j]->f[TW_F_EVENT_NAME]))) {
				tw_cli_counter_free(c);
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			}
		}
		tw_time_format(h, tbuf);
		tbuf[16] = 'Z'; /* "2026-11-02T05:00Z" */
		tbuf[17] = 0;
		rc = tw_buf_printf(&o->buf, err, "%-17s  %6zu  ", tbuf, j - i);
		if (rc == TW_OK)
			rc = tw_buf_printf(&o->buf, err, errs && color ? "\033[1;31m%6zu\033[0m" : errs ? "%5zu!" : "%6zu",
					   errs);
		k = tw_cli_counter_top(c, 5, top);
		for (size_t m = 0; m < k && rc == TW_OK; m++)
			rc = tw_buf_printf(&o->buf, err, "%s%.*s %" PRIu64, m ? ", " : "  ", (int)top[m].key.n, top[m].key.p,
					   top[m].n);
		if (rc == TW_OK && tw_cli_counter_distinct(c) > k)
			rc = tw_buf_printf(&o->buf, err, ", ...");
		if (rc == TW_OK)
			rc = tw_buf_putc(&o->buf, '\n', err);
		tw_cli_counter_free(c);
		i = j;
	}
	return rc;
}

int tw_cli_what(int argc, char **argv)
{
	static const char *const fields[] = { "principal", "userName", "accessKeyId", "ssoUser" };
	static const char *const cols[] = { "time", "event", "source", "region", "ip", "error", "resource" };
	struct qargs a;
	struct tw_query *qs[5] = { NULL };
	struct tw_qexec *xs[5] = { NULL };
	size_t nx = 0, n = 0, cap = 0, w;
	const struct tw_event **evs = NULL;
	struct tw_cli_out o;
	struct tw_cli_qfmt f;
	struct tw_err err;
	enum tw_rc rc = TW_OK;
	const char *who;
	int ex = -1;

	memset(&a, 0, sizeof a);
	a.cmd = "what";
	if ((ex = parse_common(&a, argc, argv, what_usage)) >= 0)
		return ex;
	if (argc - optind != 1 || !argv[optind][0])
		return tw_cli_usage_error(a.cmd, "expected one PRINCIPAL (an ARN, user name, access key id or SSO user)");
	who = argv[optind];
	tw_err_clear(&err);
	/* One indexed query per field (each answered from postings), merged; the suffix scan only
	 * when none matched. */
	for (size_t k = 0; k < 5 && ex < 0; k++) {
		struct tw_buf text;
		if (k == 4 && n)
			break;
		tw_buf_init(&text, TW_QUERY_MAX_TEXT);
		rc = tw_buf_printf(&text, &err, "filter %s %s ", k < 4 ? fields[k] : "principal", k < 4 ? "=" : "like");
		if (rc == TW_OK)
			rc = put_lit(&text, who, &err);
		if (rc != TW_OK) {
			tw_buf_free(&text);
			ex = tw_cli_usage_error(a.cmd, "the principal is too long");
			break;
		}
		ex = run(&a, text.p, text.n, &qs[nx], &xs[nx], 1);
		tw_buf_free(&text);
		if (ex >= 0)
			break;
		for (size_t i = 0; i < tw_qexec_nrows(xs[nx]); i++) {
			const struct tw_event *ev = tw_qexec_row_event(xs[nx], i);
			if (k == 4 && !ends_with_name(ev->f[TW_F_PRINCIPAL], who))
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				const struct tw_event **ne = realloc(evs, nc * sizeof *ne);
				if (!ne) {
					fprintf(stderr, "trailwatch what: out of memory\n");
					ex = TW_EXIT_FAIL;
					break;
				}
				evs = ne;
				cap = nc;
			}
			evs[n++] = ev;
		}
		nx++;
	}
	if (ex < 0) {
		/* Merge: time order, and one copy of an event several fields matched. */
		if (n > 1)
			qsort(evs, n, sizeof *evs, ev_cmp);
		for (size_t i = w = 0; i < n; i++)
			if (!w || ev_cmp(&evs[w - 1], &evs[i]))
				evs[w++] = evs[i];
		n = w;
		if (a.limit && n > a.limit)
			n = (size_t)a.limit;
		fmt_setup(&a, &f, TW_CLI_QF_TABLE);
		f.mark = !f.color;
		tw_cli_out_init(&o, STDOUT_FILENO, OUT_FLUSH_AT, OUT_MAX);
		if (f.format == TW_CLI_QF_TABLE) {
			rc = timeline(&o, evs, n, f.color, &err);
			if (rc == TW_OK)
				rc = summary(&o, evs, n, TW_F_PRINCIPAL, "principal", "principals", &err);
			if (rc == TW_OK)
				rc = tw_buf_putc(&o.buf, '\n', &err);
		}
		if (rc == TW_OK)
			rc = tw_cli_qfmt_events(&o, evs, n, cols, sizeof cols / sizeof *cols, &f, &err);
		ex = finish_out(a.cmd, &o, rc, &err);
		if (ex == TW_EXIT_OK && a.damaged)
			ex = TW_EXIT_PARTIAL; /* damaged store files were left out */
	}
	free(evs);
	for (size_t k = 0; k < nx; k++) {
		tw_qexec_free(xs[k]);
		tw_query_free(qs[k]);
	}
	return ex;
}
