/* SPDX-License-Identifier: Apache-2.0 */
/* cli/run.c: `trailwatch run`, the daemon loop. Takes a batch from each Kafka source, makes it
 * durable in the store (the sink appends it; a store error fails the sink so the source commits
 * nothing), quarantines rejects, and only then lets the source commit its offsets. `files`
 * sources of a config are ingested once at start; `follow` sources are polled in the loop (their
 * checkpoint, STORE/follow-<source index>.checkpoint, advances after the store took a file). Logs a
 * status line per interval and broker state changes; SIGINT/SIGTERM end it after the current
 * batch, SIGHUP reopens the log file. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "index/store.h"
#include "ingest/follow.h"
#include "ingest/ingest.h"
#include "ingest/kafka.h"

#define CMD "run"
#define MAX_TOPICS 64     /* --topic given at most this many times */
#define MAX_LAG 256       /* partitions reported per source in the status line */
#define POLL_MS 200       /* how long one poll of all sources may wait: bounds the stop latency */

static volatile sig_atomic_t g_stop; /* SIGINT / SIGTERM seen */
static volatile sig_atomic_t g_hup;  /* SIGHUP seen, log not reopened yet */

/* The log: stderr or log.file; written from the loop and from librdkafka's threads. */
struct runlog {
	FILE *f;            /* current stream (stderr or an opened file) */
	const char *path;   /* log.file, NULL for stderr */
	int level;          /* enum tw_config_log_level */
	pthread_mutex_t mu; /* serializes lines and the reopen */
};

/* One Kafka source. */
struct ksrc {
	struct tw_kafka *k;         /* the consumer, NULL before open */
	char name[64];              /* "kafka[i]" for log lines */
	struct tw_ingest_stats st;  /* decode counters of its polls */
	char **propv;               /* property values owned here (secrets loaded), wiped on free */
	struct tw_kafka_prop *props; /* key/value pairs passed to the source */
	size_t nprops;              /* entries in props / propv */
	char lasterr[256];          /* last poll error logged (logged again only when it changes) */
	struct runlog *log;         /* for on_state / on_log */
};

/* One follow source. */
struct fsrc {
	struct tw_follow *f;       /* the source, NULL before open */
	char name[64];             /* "sources[i] follow" for log lines */
	struct tw_ingest_stats st; /* decode counters of its polls */
	char lasterr[256];         /* last poll error logged (logged again only when it changes) */
};

/* The sink's state, shared by all sources. */
struct runctx {
	struct tw_store *store;     /* the writer */
	struct tw_cli_rejects rej;  /* quarantine file */
	uint64_t stored;            /* events written */
	uint64_t duplicates;        /* events already in the store */
	int store_failed;           /* tw_store_append failed: the run must stop */
	int quar_failed;            /* the quarantine file could not be written */
	struct tw_err serr;         /* the error behind store_failed / quar_failed */
};

static void usage(FILE *f)
{
	fputs("usage: trailwatch run --config FILE\n"
	      "       trailwatch run --store DIR --kafka HOST:PORT --topic NAME [--topic NAME...] [--group ID]\n"
	      "       trailwatch run --store DIR --follow DIR\n"
	      "\n"
	      "Runs the daemon loop: takes a batch of records from each Kafka source, makes it durable\n"
	      "in the store, and only then commits the batch's offsets to the consumer group, so a crash\n"
	      "replays at most one batch (and deduplication by event id makes the replay harmless).\n"
	      "Rejected records go to DIR/quarantine.jsonl. 'files' sources of a config are ingested\n"
	      "once at start; 'follow' sources are watched for complete new files, each recorded in\n"
	      "DIR/follow-<source index>.checkpoint once stored, so it is ingested once across restarts.\n"
	      "SIGINT/SIGTERM: finish the current batch, close the consumers and the store, exit 0.\n"
	      "SIGHUP: reopen the log file (log.file of the config).\n"
	      "\n"
	      "options:\n"
	      "  -c, --config FILE          the configuration file (see 'trailwatch config check')\n"
	      "  -S, --store DIR            the store (quick form)\n"
	      "  -k, --kafka HOST:PORT,...  bootstrap servers (quick form)\n"
	      "  -T, --topic NAME           topic to consume (quick form; repeat for more)\n"
	      "  -g, --group ID             consumer group (quick form; default trailwatch)\n"
	      "  -X, --property KEY=VALUE   librdkafka property (quick form; repeat for more)\n"
	      "      --follow DIR           follow a directory that grows (quick form; with or without\n"
	      "                             --kafka); checkpoint DIR/follow-0.checkpoint of the store\n"
	      "      --quarantine FILE      where rejected records go (default DIR/quarantine.jsonl)\n"
	      "      --status-interval SEC  seconds between status lines on the log (default 60)\n"
	      "  -h, --help                 this help\n"
	      "\n"
	      "exit codes: 0 stopped by a signal; 2 usage or configuration error;\n"
	      "3 store or I/O error (another writer holds the store, disk full...).\n",
	      f);
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		g_hup = 1;
	else
		g_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- logging ----------------------------------------------------------------------------------- */

static const char *level_name(int level)
{
	switch (level) {
	case TW_CONFIG_LOG_ERROR:
		return "error";
	case TW_CONFIG_LOG_WARN:
		return "warning";
	case TW_CONFIG_LOG_DEBUG:
		return "debug";
	default:
		return "info";
	}
}

static void logv(struct runlog *lg, int level, const char *fmt, va_list ap)
{
	char ts[32];
	struct timespec now;
	struct tm tm;

	if (level > lg->level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&lg->mu);
	fprintf(lg->f, "%s trailwatch run: %s: ", ts, level_name(level));
	vfprintf(lg->f, fmt, ap);
	fputc('\n', lg->f);
	fflush(lg->f);
	pthread_mutex_unlock(&lg->mu);
}

static void logmsg(struct runlog *lg, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logmsg(struct runlog *lg, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(lg, level, fmt, ap);
	va_end(ap);
}

/* Opens log.file for appending (or keeps stderr). Returns 0, or -1 (printed on stderr). */
static int log_open(struct runlog *lg, const char *path, int level)
{
	lg->path = path;
	lg->level = level;
	lg->f = stderr;
	pthread_mutex_init(&lg->mu, NULL);
	if (path) {
		FILE *f = fopen(path, "ae");
		if (!f) {
			fprintf(stderr, "trailwatch run: cannot open log file %s: %s\n", path, strerror(errno));
			return -1;
		}
		lg->f = f;
	}
	return 0;
}

/* SIGHUP: reopen the file (logrotate moved it away). On failure the old stream is kept. */
static void log_reopen(struct runlog *lg)
{
	FILE *f;

	if (!lg->path) {
		logmsg(lg, TW_CONFIG_LOG_INFO, "SIGHUP: logging to stderr, nothing to reopen");
		return;
	}
	f = fopen(lg->path, "ae");
	if (!f) {
		logmsg(lg, TW_CONFIG_LOG_ERROR, "SIGHUP: cannot reopen log file %s: %s (still writing to the old one)",
		       lg->path, strerror(errno));
		return;
	}
	pthread_mutex_lock(&lg->mu);
	if (lg->f != stderr)
		fclose(lg->f);
	lg->f = f;
	pthread_mutex_unlock(&lg->mu);
	logmsg(lg, TW_CONFIG_LOG_INFO, "SIGHUP: log file %s reopened", lg->path);
}

static void log_close(struct runlog *lg)
{
	if (lg->f && lg->f != stderr)
		fclose(lg->f);
	lg->f = NULL;
	pthread_mutex_destroy(&lg->mu);
}

/* ---- the sink ---------------------------------------------------------------------------------- */

static enum tw_rc on_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct runctx *ctx = vctx;
	struct tw_store_append_result res = { 0, 0 };

	if (ctx->store_failed || ctx->quar_failed)
		return tw_err_set(err, TW_ESTOP, "store failed");
	if (tw_store_append(ctx->store, batch, &res, &ctx->serr) != TW_OK) {
		ctx->store_failed = 1;
		return tw_err_set(err, TW_ESTOP, "store failed");
	}
	ctx->stored += res.stored;
	ctx->duplicates += res.duplicates;
	return TW_OK;
}

static enum tw_rc on_reject(void *vctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct runctx *ctx = vctx;

	if (tw_cli_rejects_add(&ctx->rej, rej, &ctx->serr) != TW_OK) {
		ctx->quar_failed = 1;
		return tw_err_set(err, TW_ESTOP, "quarantine failed");
	}
	return TW_OK;
}

/* ---- Kafka sources ----------------------------------------------------------------------------- */

static void on_kafka_state(void *vctx, enum tw_kafka_state state, const char *detail)
{
	struct ksrc *s = vctx;

	if (state == TW_KAFKA_DOWN)
		logmsg(s->log, TW_CONFIG_LOG_WARN, "%s: brokers down: %s", s->name, detail ? detail : "");
	else
		logmsg(s->log, TW_CONFIG_LOG_INFO, "%s: brokers up%s%s", s->name, detail && *detail ? ": " : "",
		       detail ? detail : "");
}

static void on_kafka_log(void *vctx, int level, const char *facility, const char *msg)
{
	struct ksrc *s = vctx;
	int lv;

	/* syslog levels to ours: 0-3 error, 4 warning, 5-6 info, 7 debug */
	lv = level <= 3 ? TW_CONFIG_LOG_ERROR
	     : level == 4 ? TW_CONFIG_LOG_WARN
	     : level <= 6 ? TW_CONFIG_LOG_INFO
			  : TW_CONFIG_LOG_DEBUG;
	logmsg(s->log, lv, "%s: librdkafka %s: %s", s->name, facility ? facility : "", msg ? msg : "");
}

static void ksrc_free(struct ksrc *s)
{
	tw_ingest_kafka_close(s->k);
	s->k = NULL;
	for (size_t i = 0; i < s->nprops; i++) {
		if (s->propv[i]) {
			explicit_bzero(s->propv[i], strlen(s->propv[i]));
			free(s->propv[i]);
		}
	}
	free(s->propv);
	free(s->props);
	s->propv = NULL;
	s->props = NULL;
	s->nprops = 0;
}

/* Copies the config's properties, loading secrets. Returns TW_EXIT_OK, or an exit code (printed). */
static int ksrc_props(struct ksrc *s, const struct tw_config_kafka *kc)
{
	char buf[TW_SECRET_MAX];
	struct tw_err err;

	if (!kc->nprops)
		return TW_EXIT_OK;
	s->propv = calloc(kc->nprops, sizeof *s->propv);
	s->props = calloc(kc->nprops, sizeof *s->props);
	if (!s->propv || !s->props) {
		fprintf(stderr, "trailwatch run: out of memory\n");
		return TW_EXIT_FAIL;
	}
	for (size_t i = 0; i < kc->nprops; i++) {
		const struct tw_config_prop *p = &kc->props[i];

		s->nprops = i + 1;
		if (p->secret.from != TW_SECRET_NONE) {
			char desc[300];
			tw_err_clear(&err);
			if (tw_secret_load(&p->secret, buf, sizeof buf, NULL, &err) != TW_OK) {
				fprintf(stderr, "trailwatch run: %s: property %s %s: %s\n", s->name, p->key,
					tw_secret_describe(&p->secret, desc, sizeof desc), err.msg);
				explicit_bzero(buf, sizeof buf);
				return TW_EXIT_USAGE;
			}
			s->propv[i] = strdup(buf);
			explicit_bzero(buf, sizeof buf);
		} else {
			s->propv[i] = strdup(p->value ? p->value : "");
		}
		if (!s->propv[i]) {
			fprintf(stderr, "trailwatch run: out of memory\n");
			return TW_EXIT_FAIL;
		}
		s->props[i].key = p->key;
		s->props[i].value = s->propv[i];
	}
	return TW_EXIT_OK;
}

/* Opens one source. Returns TW_EXIT_OK or an exit code (printed). */
static int ksrc_open(struct ksrc *s, struct tw_kafka_opts *ko, struct runlog *lg)
{
	struct tw_err err;
	enum tw_rc rc;

	s->log = lg;
	if (s->props) { /* from the config; else the caller's (the command line's) stand */
		ko->props = s->props;
		ko->nprops = s->nprops;
	}
	ko->on_state = on_kafka_state;
	ko->on_log = on_kafka_log;
	ko->ctx = s;
	tw_err_clear(&err);
	rc = tw_ingest_kafka_open(ko, &s->k, &err);
	if (rc != TW_OK) {
		fprintf(stderr, "trailwatch run: %s: %s\n", s->name, err.msg);
		return rc == TW_EINVAL ? TW_EXIT_USAGE : TW_EXIT_FAIL;
	}
	return TW_EXIT_OK;
}

static uint64_t total_events(const struct tw_ingest_stats *st)
{
	uint64_t n = 0;
	for (int k = 1; k <= TW_KIND_MAX; k++)
		n += st->events[k];
	return n;
}

/* ---- status ------------------------------------------------------------------------------------- */

static void status_line(struct runlog *lg, struct runctx *ctx, const char *dir, struct ksrc *src, size_t nsrc,
			uint64_t events, uint64_t quarantined, double rate)
{
	static struct tw_kafka_lag lag[MAX_LAG];
	struct tw_store_stats ss;
	struct tw_err err;
	struct tw_buf line;
	char num[64];
	size_t n;

	tw_buf_init(&line, 64 * 1024);
	tw_err_clear(&err);
	snprintf(num, sizeof num, "%.1f", rate);
	(void)tw_buf_printf(&line, &err, "status: %s events/s, %llu events, %llu stored, %llu duplicates, "
					"%llu quarantined", num, (unsigned long long)events,
			    (unsigned long long)ctx->stored, (unsigned long long)ctx->duplicates,
			    (unsigned long long)quarantined);
	if (tw_store_stat(dir, &ss, &err) == TW_OK)
		(void)tw_buf_printf(&line, &err, ", store %llu records", (unsigned long long)ss.records);
	for (size_t i = 0; i < nsrc; i++) {
		tw_err_clear(&err);
		enum tw_rc rc = tw_ingest_kafka_lag(src[i].k, lag, MAX_LAG, &n, 1000, &err);
		if (rc != TW_OK && rc != TW_ELIMIT) {
			(void)tw_buf_printf(&line, &err, ", %s lag unknown (%s)", src[i].name, err.msg);
			continue;
		}
		(void)tw_buf_printf(&line, &err, ", %s lag", src[i].name);
		if (!n)
			(void)tw_buf_printf(&line, &err, " (no partition assigned)");
		for (size_t j = 0; j < n; j++)
			(void)tw_buf_printf(&line, &err, " %s/%d=%lld", lag[j].topic, (int)lag[j].partition,
					    (long long)lag[j].lag);
		if (rc == TW_ELIMIT)
			(void)tw_buf_printf(&line, &err, " ...");
	}
	logmsg(lg, TW_CONFIG_LOG_INFO, "%.*s", (int)line.n, line.p ? line.p : "");
	tw_buf_free(&line);
}

/* ---- the command ------------------------------------------------------------------------------- */

/* What the command line asked for. */
struct runargs {
	const char *config;            /* --config */
	const char *store;             /* --store */
	const char *kafka;             /* --kafka */
	const char *topics[MAX_TOPICS]; /* --topic */
	size_t ntopics;                /* entries in topics */
	const char *group;             /* --group */
	struct tw_kafka_prop props[MAX_TOPICS]; /* -X KEY=VALUE, pointing into argv */
	size_t nprops;                 /* entries in props */
	const char *quar;              /* --quarantine */
	unsigned status_s;             /* --status-interval */
	const char *follow;            /* --follow DIR (quick form) */
};

static int parse_args(int argc, char **argv, struct runargs *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 'S' },
		{ "kafka", required_argument, NULL, 'k' },
		{ "follow", required_argument, NULL, 'F' },
		{ "topic", required_argument, NULL, 'T' },
		{ "group", required_argument, NULL, 'g' },
		{ "property", required_argument, NULL, 'X' },
		{ "quarantine", required_argument, NULL, 'Q' },
		{ "status-interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof *a);
	a->status_s = 60;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:S:k:T:g:X:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'S':
			a->store = optarg;
			break;
		case 'k':
			a->kafka = optarg;
			break;
		case 'F':
			a->follow = optarg;
			break;
		case 'T':
			if (a->ntopics == MAX_TOPICS)
				return tw_cli_usage_error(CMD, "at most %d --topic", MAX_TOPICS);
			a->topics[a->ntopics++] = optarg;
			break;
		case 'g':
			a->group = optarg;
			break;
		case 'X': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return tw_cli_usage_error(CMD, "-X: expected KEY=VALUE, got '%s'", optarg);
			if (a->nprops == MAX_TOPICS)
				return tw_cli_usage_error(CMD, "at most %d -X", MAX_TOPICS);
			*eq = 0; /* argv is ours to split */
			a->props[a->nprops].key = optarg;
			a->props[a->nprops++].value = eq + 1;
			break;
		}
		case 'Q':
			a->quar = optarg;
			break;
		case 'i':
			if (tw_cli_parse_uint(optarg, 1, 86400, &a->status_s))
				return tw_cli_usage_error(CMD, "--status-interval: expected seconds in 1..86400, got '%s'",
							  optarg);
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (optind < argc)
		return tw_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (a->config) {
		if (a->store || a->kafka || a->ntopics || a->group || a->nprops || a->follow)
			return tw_cli_usage_error(CMD, "--config excludes --store, --kafka, --topic, --group, -X and --follow");
		return 0;
	}
	if (!a->store)
		return tw_cli_usage_error(CMD, "--config FILE or --store DIR is required");
	if (!a->kafka && !a->follow)
		return tw_cli_usage_error(CMD, "--kafka HOST:PORT or --follow DIR is required with --store");
	if (a->kafka && !a->ntopics)
		return tw_cli_usage_error(CMD, "at least one --topic NAME is required with --kafka");
	if (!a->kafka && (a->ntopics || a->group || a->nprops))
		return tw_cli_usage_error(CMD, "--topic, --group and -X go with --kafka");
	if (a->follow) {
		struct stat sb;
		if (stat(a->follow, &sb) != 0 || !S_ISDIR(sb.st_mode))
			return tw_cli_usage_error(CMD, "--follow %s: %s", a->follow,
						  errno ? strerror(errno) : "not a directory");
	}
	return 0;
}

int tw_cli_run(int argc, char **argv)
{
	struct runargs a;
	struct tw_config *cfg = NULL;
	struct runlog lg;
	struct runctx ctx;
	struct ksrc *src = NULL;
	size_t nsrc = 0;
	struct fsrc *fol = NULL;
	size_t nfol = 0;
	struct tw_ingest_limits lim;
	struct tw_store_opts sopts;
	struct tw_store_recovery rec;
	struct tw_sink sink;
	struct tw_err err;
	const char *dir;
	char *quar_default = NULL;
	int ex = TW_EXIT_OK, log_ok = 0, rej_ok = 0;
	int64_t retain_ms = 0;
	double t_last, next_status;
	uint64_t ev_last = 0;

	if ((ex = parse_args(argc, argv, &a)) != 0)
		return ex < 0 ? TW_EXIT_OK : ex;
	memset(&ctx, 0, sizeof ctx);
	memset(&rec, 0, sizeof rec);
	tw_err_clear(&err);
	tw_err_clear(&ctx.serr);
	tw_ingest_limits_default(&lim);
	tw_store_opts_default(&sopts);
	g_stop = 0;
	g_hup = 0;

	if (a.config) {
		if (tw_config_load(a.config, &cfg, &err) != TW_OK) {
			fprintf(stderr, "trailwatch run: %s\n", err.msg);
			return TW_EXIT_USAGE;
		}
		for (size_t i = 0; i < cfg->nsources; i++) {
			if (cfg->sources[i].type == TW_CONFIG_SRC_FOLLOW) {
				struct stat sb; /* checked before the store is locked for nothing */
				errno = 0;
				const char *fp = cfg->sources[i].follow.path;
				if (stat(fp, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
					fprintf(stderr, "trailwatch run: %s: $.sources[%zu].follow.path: %s: %s\n", a.config,
						i, fp, errno ? strerror(errno) : "not a directory");
					tw_config_free(cfg);
					return TW_EXIT_USAGE;
				}
				nfol++;
			}
			if (cfg->sources[i].type == TW_CONFIG_SRC_KAFKA)
				nsrc++;
		}
		dir = cfg->store.dir;
		sopts.seal_bytes = cfg->store.seal_bytes;
		sopts.seal_age_ms = cfg->store.seal_age_ms;
		retain_ms = cfg->store.retain_ms;
		lim.max_record = (size_t)cfg->limits.max_record;
		lim.max_inflated = cfg->limits.max_inflated;
		lim.threads = (unsigned)cfg->limits.threads;
	} else {
		nsrc = a.kafka ? 1 : 0;
		nfol = a.follow ? 1 : 0;
		dir = a.store;
	}

	if (log_open(&lg, cfg ? cfg->log.file : NULL, cfg ? cfg->log.level : TW_CONFIG_LOG_INFO)) {
		tw_config_free(cfg);
		return TW_EXIT_FAIL;
	}
	log_ok = 1;
	install_signals();

	/* the sources first: a configuration error must not leave the store locked for nothing */
	src = calloc(nsrc ? nsrc : 1, sizeof *src);
	if (!src) {
		fprintf(stderr, "trailwatch run: out of memory\n");
		ex = TW_EXIT_FAIL;
		goto out;
	}
	if (cfg) {
		size_t j = 0;
		for (size_t i = 0; i < cfg->nsources; i++) {
			const struct tw_config_kafka *kc = &cfg->sources[i].kafka;
			struct tw_kafka_opts ko;

			if (cfg->sources[i].type != TW_CONFIG_SRC_KAFKA)
				continue;
			snprintf(src[j].name, sizeof src[j].name, "sources[%zu] kafka", i);
			if ((ex = ksrc_props(&src[j], kc)) != TW_EXIT_OK)
				goto out;
			memset(&ko, 0, sizeof ko);
			ko.brokers = kc->brokers;
			ko.group_id = kc->group;
			ko.client_id = kc->client_id;
			ko.topics = (const char *const *)kc->topics;
			ko.ntopics = kc->ntopics;
			ko.batch_max_events = (size_t)kc->batch_max_events;
			ko.batch_max_bytes = (size_t)kc->batch_max_bytes;
			ko.batch_max_wait_ms = (int)kc->batch_max_wait_ms;
			ko.dlt_topic = kc->dead_letter_topic;
			if ((ex = ksrc_open(&src[j], &ko, &lg)) != TW_EXIT_OK)
				goto out;
			j++;
		}
	} else if (a.kafka) {
		struct tw_kafka_opts ko;

		snprintf(src[0].name, sizeof src[0].name, "kafka");
		memset(&ko, 0, sizeof ko);
		ko.brokers = a.kafka;
		ko.group_id = a.group ? a.group : "trailwatch";
		ko.topics = a.topics;
		ko.props = a.props;
		ko.nprops = a.nprops;
		ko.ntopics = a.ntopics;
		if ((ex = ksrc_open(&src[0], &ko, &lg)) != TW_EXIT_OK)
			goto out;
	}

	if (tw_store_open(dir, &sopts, &ctx.store, &rec, &err) != TW_OK) {
		fprintf(stderr, "trailwatch run: %s\n", err.msg);
		ex = TW_EXIT_FAIL;
		goto out;
	}
	if (rec.note[0])
		logmsg(&lg, TW_CONFIG_LOG_WARN, "%s: %s", dir, rec.note);
	if (!a.quar) {
		size_t n = strlen(dir) + sizeof "/quarantine.jsonl";
		quar_default = malloc(n);
		if (!quar_default) {
			fprintf(stderr, "trailwatch run: out of memory\n");
			ex = TW_EXIT_FAIL;
			goto out;
		}
		snprintf(quar_default, n, "%s/quarantine.jsonl", dir);
		a.quar = quar_default;
	}
	rej_ok = 1;
	if (tw_cli_rejects_open(&ctx.rej, a.quar, NULL)) {
		ex = TW_EXIT_FAIL;
		goto out;
	}
	ctx.rej.show_max = 0; /* a daemon's stderr is no place for records: they are in the file */
	sink.on_batch = on_batch;
	sink.on_reject = on_reject;
	sink.ctx = &ctx;

	if (retain_ms > 0) {
		struct timespec now;
		uint64_t removed = 0;
		clock_gettime(CLOCK_REALTIME, &now);
		tw_err_clear(&err);
		if (tw_store_retain(ctx.store, (int64_t)now.tv_sec * 1000 - retain_ms, &removed, &err) != TW_OK)
			logmsg(&lg, TW_CONFIG_LOG_WARN, "retention: %s", err.msg);
		else if (removed)
			logmsg(&lg, TW_CONFIG_LOG_INFO, "retention: %llu segments removed", (unsigned long long)removed);
	}

	/* files sources: once, at start */
	for (size_t i = 0; cfg && i < cfg->nsources && !g_stop; i++) {
		const struct tw_config_files *fc = &cfg->sources[i].files;
		struct tw_ingest_stats st;
		uint64_t before = ctx.stored;
		enum tw_rc rc;

		if (cfg->sources[i].type != TW_CONFIG_SRC_FILES)
			continue;
		memset(&st, 0, sizeof st);
		tw_err_clear(&err);
		rc = tw_ingest_paths((const char *const *)fc->paths, fc->npaths, &lim, &sink, NULL, &st, &err);
		if (ctx.store_failed || ctx.quar_failed)
			break;
		if (rc != TW_OK)
			logmsg(&lg, TW_CONFIG_LOG_WARN, "sources[%zu] files: %s", i, err.msg);
		logmsg(&lg, TW_CONFIG_LOG_INFO, "sources[%zu] files: %llu files, %llu events, %llu stored, %llu quarantined",
		       i, (unsigned long long)st.files, (unsigned long long)total_events(&st),
		       (unsigned long long)(ctx.stored - before), (unsigned long long)st.quarantined);
	}

	/* follow sources: their checkpoints live in the store directory, which exists now */
	fol = calloc(nfol ? nfol : 1, sizeof *fol);
	if (!fol) {
		fprintf(stderr, "trailwatch run: out of memory\n");
		ex = TW_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0, j = 0; cfg && i < cfg->nsources && !g_stop; i++) {
		const struct tw_config_follow *fc = &cfg->sources[i].follow;
		struct tw_follow_opts fo;
		char ck[4096];
		enum tw_rc rc;

		if (cfg->sources[i].type != TW_CONFIG_SRC_FOLLOW)
			continue;
		snprintf(fol[j].name, sizeof fol[j].name, "sources[%zu] follow", i);
		if (snprintf(ck, sizeof ck, "%s/follow-%zu.checkpoint", dir, i) >= (int)sizeof ck) {
			fprintf(stderr, "trailwatch run: %s: store path too long\n", fol[j].name);
			ex = TW_EXIT_USAGE;
			goto out;
		}
		memset(&fo, 0, sizeof fo);
		fo.rescan_ms = fc->rescan_ms;
		tw_err_clear(&err);
		rc = tw_ingest_follow_open(fc->path, ck, &fo, &fol[j].f, &err);
		if (rc != TW_OK) {
			fprintf(stderr, "trailwatch run: %s: %s\n", fol[j].name, err.msg);
			ex = rc == TW_ENOENT || rc == TW_EINVAL ? TW_EXIT_USAGE : TW_EXIT_FAIL;
			goto out;
		}
		j++;
	}
	if (!cfg && a.follow && !g_stop) {
		struct tw_follow_opts fo;
		char ck[4096];
		enum tw_rc rc;

		snprintf(fol[0].name, sizeof fol[0].name, "follow");
		if (snprintf(ck, sizeof ck, "%s/follow-0.checkpoint", dir) >= (int)sizeof ck) {
			fprintf(stderr, "trailwatch run: follow: store path too long\n");
			ex = TW_EXIT_USAGE;
			goto out;
		}
		memset(&fo, 0, sizeof fo);
		tw_err_clear(&err);
		rc = tw_ingest_follow_open(a.follow, ck, &fo, &fol[0].f, &err);
		if (rc != TW_OK) {
			fprintf(stderr, "trailwatch run: follow: %s\n", err.msg);
			ex = rc == TW_ENOENT || rc == TW_EINVAL ? TW_EXIT_USAGE : TW_EXIT_FAIL;
			goto out;
		}
	}

	logmsg(&lg, TW_CONFIG_LOG_INFO, "running: store %s, %zu kafka source%s, %zu follow source%s", dir, nsrc,
	       nsrc == 1 ? "" : "s", nfol, nfol == 1 ? "" : "s");
	t_last = tw_cli_now();
	next_status = t_last + a.status_s;
	while (!g_stop && !ctx.store_failed && !ctx.quar_failed) {
		int timeout = nsrc + nfol ? POLL_MS / (int)(nsrc + nfol) : POLL_MS, failed = 0;
		double now;

		if (timeout < 20)
			timeout = 20;
		if (!nsrc && !nfol) {
			struct timespec ts = { 0, POLL_MS * 1000000L };
			nanosleep(&ts, NULL);
		}
		for (size_t i = 0; i < nsrc && !ctx.store_failed && !ctx.quar_failed; i++) {
			enum tw_rc rc;

			tw_err_clear(&err);
			rc = tw_ingest_kafka_poll(src[i].k, &lim, &sink, &src[i].st, timeout, &err);
			if (rc == TW_OK) {
				src[i].lasterr[0] = 0;
				continue;
			}
			failed = 1;
			if (!ctx.store_failed && !ctx.quar_failed && strcmp(src[i].lasterr, err.msg)) {
				/* commit failures and broker trouble: the batch is replayed by the next poll */
				logmsg(&lg, TW_CONFIG_LOG_ERROR, "%s: %s (retrying)", src[i].name, err.msg);
				snprintf(src[i].lasterr, sizeof src[i].lasterr, "%s", err.msg);
			}
		}
		for (size_t i = 0; i < nfol && !g_stop && !ctx.store_failed && !ctx.quar_failed; i++) {
			enum tw_rc rc;

			tw_err_clear(&err);
			rc = tw_ingest_follow_poll(fol[i].f, &lim, &sink, &fol[i].st, timeout, &err);
			if (rc == TW_OK) {
				fol[i].lasterr[0] = 0;
				continue;
			}
			failed = 1;
			if (!ctx.store_failed && !ctx.quar_failed && strcmp(fol[i].lasterr, err.msg)) {
				/* an unreadable file or the checkpoint: the file is tried again later */
				logmsg(&lg, TW_CONFIG_LOG_ERROR, "%s: %s (retrying)", fol[i].name, err.msg);
				snprintf(fol[i].lasterr, sizeof fol[i].lasterr, "%s", err.msg);
			}
		}
		if (failed && !g_stop) { /* a failing poll may return at once: do not spin */
			struct timespec ts = { 0, 500 * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (g_hup) {
			g_hup = 0;
			log_reopen(&lg);
		}
		now = tw_cli_now();
		if (now >= next_status) {
			uint64_t ev = 0, q = ctx.rej.n;
			for (size_t i = 0; i < nsrc; i++)
				ev += total_events(&src[i].st);
			for (size_t i = 0; i < nfol; i++)
				ev += total_events(&fol[i].st);
			status_line(&lg, &ctx, dir, src, nsrc, ev, q, now > t_last ? (double)(ev - ev_last) / (now - t_last) : 0);
			ev_last = ev;
			t_last = now;
			next_status = now + a.status_s;
		}
	}
	if (ctx.store_failed || ctx.quar_failed) {
		logmsg(&lg, TW_CONFIG_LOG_ERROR, "%s", ctx.serr.msg);
		if (ctx.store_failed)
			logmsg(&lg, TW_CONFIG_LOG_ERROR, "%s: nothing after the last durable batch was committed; "
							 "fix the cause and start again", dir);
		ex = TW_EXIT_FAIL;
	} else {
		logmsg(&lg, TW_CONFIG_LOG_INFO, "stopping: %llu events stored, %llu duplicates, %llu quarantined",
		       (unsigned long long)ctx.stored, (unsigned long long)ctx.duplicates,
		       (unsigned long long)ctx.rej.n);
	}

out:
	for (size_t i = 0; src && i < nsrc; i++)
		ksrc_free(&src[i]);
	free(src);
	for (size_t i = 0; fol && i < nfol; i++)
		tw_ingest_follow_close(fol[i].f);
	free(fol);
	if (ctx.store) {
		tw_err_clear(&err);
		if (tw_store_close(ctx.store, &err) != TW_OK && ex < TW_EXIT_FAIL) {
			logmsg(&lg, TW_CONFIG_LOG_ERROR, "%s", err.msg);
			ex = TW_EXIT_FAIL;
		}
	}
	if (rej_ok && tw_cli_rejects_close(&ctx.rej) && ex < TW_EXIT_FAIL)
		ex = TW_EXIT_FAIL;
	if (log_ok) {
		if (ex == TW_EXIT_OK)
			logmsg(&lg, TW_CONFIG_LOG_INFO, "stopped");
		log_close(&lg);
	}
	free(quar_default);
	tw_config_free(cfg);
	return ex;
}
