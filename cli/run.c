/* SPDX-License-Identifier: Apache-2.0 */
/* cli/run.c: `trailwatch run`, the daemon loop. Takes a batch from each Kafka source, makes it
 * durable in the store (the sink appends it; a store error fails the sink so the source commits
 * nothing), quarantines rejects, and only then lets the source commit its offsets. `files`
 * sources of a config are ingested once at start; `follow` sources are polled in the loop (their
 * checkpoint, STORE/follow-<source index>.checkpoint, advances after the store took a file). Logs a
 * status line per interval and broker state changes; SIGINT/SIGTERM end it after the current
 * batch, SIGHUP reopens the log file. */
#include <errno.h>
#include <fcntl.h>
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

#include <jansson.h>

#include "cli/cli.h"
#include "core/config.h"
#include "index/store.h"
#include "ingest/follow.h"
#include "ingest/ingest.h"
#include "ingest/kafka.h"

#define CMD "run"
#define MAX_TOPICS 64     /* --topic given at most this many times */
#define MAX_LAG 256       /* partitions reported per source in the status line */
#define STATUS_FILE_S 5.0 /* DIR/status.json is rewritten this often (seconds) */
#define EXIT_CHECK_S 0.5  /* --exit-at-end looks at the lag this often (seconds) */
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
	uint64_t appends;           /* batches appended */
	struct tw_cli_metrics *metrics; /* the series beside the store (STORE/metrics) */
	struct tw_cli_alerting *alerting; /* alarms, event rules and the notifier; NULL without a config */
	uint64_t kill_after_store;  /* test hook TRAILWATCH_TEST_KILL_AFTER_STORE=N: SIGKILL ourselves
	                             * right after the Nth durable append, before the source is
	                             * acknowledged (0 = off); the crash tests aim at that window */
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
	      "With a config, the metrics feed the alarms of $.alarms (and the CIS pack's with\n"
	      "$.cis_alarms.enabled), event rules ($.rules) publish matching records at once, and the\n"
	      "notifier ($.notifier; default: topic \"alarms\" to the maildir DIR/mail) delivers them\n"
	      "from its durable outbox (DIR/notify). 'trailwatch alarms list --store DIR' shows states.\n"
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
	      "      --batch-events N       a Kafka batch closes at N events (quick form; default 4096)\n"
	      "      --status-interval SEC  seconds between status lines on the log (default 60); the\n"
	      "                             same figures go to DIR/status.json every few seconds\n"
	      "                             ('trailwatch status --store DIR' shows them)\n"
	      "      --exit-at-end          exit 0 once every assigned Kafka partition is caught up\n"
	      "                             (lag 0 after the commit), like kcat -e, and every followed\n"
	      "                             directory has no new file: for backfills. The metrics then\n"
	      "                             close every period, the alarms are evaluated, and the run\n"
	      "                             waits (up to 60 s) for their notifications to be delivered\n"
	      "      --count N              exit 0 once N events (new or duplicate) are stored and\n"
	      "                             acknowledged, like kcat -c\n"
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

/* Opens path for appending, created 0600 whatever the umask (a log names principals and
 * addresses); NULL with errno on failure. */
static FILE *log_fopen(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;

	if (fd >= 0 && !f) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

/* Opens log.file for appending (or keeps stderr). Returns 0, or -1 (printed on stderr). */
static int log_open(struct runlog *lg, const char *path, int level)
{
	lg->path = path;
	lg->level = level;
	lg->f = stderr;
	pthread_mutex_init(&lg->mu, NULL);
	if (path) {
		FILE *f = log_fopen(path);
		if (!f) {
			fprintf(stderr, "trailwatch run: cannot open log file %s: %s\n", path, strerror(errno));
			return -1;
		}
		lg->f = f;
	}
	return 0;
}

/* tw_config_warnings callback: each warning goes to the log. */
static void log_config_warning(void *ctx, const char *msg)
{
	logmsg(ctx, TW_CONFIG_LOG_WARN, "config: %s", msg);
}

/* SIGHUP: reopen the file (logrotate moved it away). On failure the old stream is kept. */
static void log_reopen(struct runlog *lg)
{
	FILE *f;

	if (!lg->path) {
		logmsg(lg, TW_CONFIG_LOG_INFO, "SIGHUP: logging to stderr, nothing to reopen");
		return;
	}
	f = log_fopen(lg->path);
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

/* Files the follow sources still have to take. */
static size_t follow_pending(struct fsrc *fol, size_t nfol)
{
	size_t n = 0;
	for (size_t i = 0; i < nfol; i++)
		if (fol[i].f)
			n += tw_ingest_follow_pending(fol[i].f);
	return n;
}

static void alerting_log(void *ctx, int level, const char *msg)
{
	logmsg(ctx, level, "%s", msg);
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
	if (tw_cli_store_append(ctx->store, ctx->metrics, batch, &res, &ctx->serr) != TW_OK) {
		ctx->store_failed = 1;
		return tw_err_set(err, TW_ESTOP, "store failed");
	}
	ctx->stored += res.stored;
	ctx->duplicates += res.duplicates;
	if (ctx->kill_after_store && ++ctx->appends == ctx->kill_after_store)
		raise(SIGKILL); /* test hook: die between the durable store and the acknowledgement */
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

/* ---- status ------------------------------------------------------------------------------------- */

/* One status sample: the log line and DIR/status.json (read by `trailwatch status`) say the same. */
struct status {
	double rate;            /* events/s since the previous sample */
	uint64_t events;        /* events decoded by all sources */
	uint64_t quarantined;   /* records in the quarantine */
	int have_store;         /* ss is valid */
	struct tw_store_stats ss; /* the store on disk */
	int caught_up;          /* every Kafka source has partitions and zero lag on each */
	const char *state;      /* "running", or "stopped" for the last sample of a run */
};

static void json_set(json_t *o, const char *k, json_t *v)
{
	if (v)
		json_object_set_new(o, k, v);
}

/* Writes DIR/status.json atomically (temp file + rename): readers see a whole sample or the previous
 * one. Failures are logged once per run, never fatal: the status is a courtesy. */
static void status_write(struct runlog *lg, const char *dir, json_t *doc)
{
	static int warned;
	char path[4096], tmp[4096];
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int fd = -1, ok = 0;

	if (text && snprintf(path, sizeof path, "%s/status.json", dir) < (int)sizeof path &&
	    snprintf(tmp, sizeof tmp, "%s/status.json.tmp", dir) < (int)sizeof tmp &&
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0) {
		size_t n = strlen(text);
		ok = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
		ok = !close(fd) && ok && !rename(tmp, path);
	}
	if (!ok && !warned) {
		warned = 1;
		logmsg(lg, TW_CONFIG_LOG_WARN, "%s/status.json: cannot write: %s (trailwatch status will be stale)",
		       dir, strerror(errno));
	}
	free(text);
}

/* Takes a sample: store stats and the lag of every Kafka source; logs the status line when log is
 * set, and rewrites DIR/status.json. Returns the sample's caught_up. */
static int status_sample(struct runlog *lg, int log, struct runctx *ctx, const char *dir, struct ksrc *src,
			 size_t nsrc, struct status *s)
{
	static struct tw_kafka_lag lag[MAX_LAG];
	struct tw_err err;
	struct tw_buf line;
	char num[64];
	json_t *doc = json_object(), *jsrc = json_array();
	size_t n;

	tw_buf_init(&line, 64 * 1024);
	tw_err_clear(&err);
	s->have_store = tw_store_stat(dir, &s->ss, &err) == TW_OK;
	s->caught_up = nsrc > 0;
	snprintf(num, sizeof num, "%.1f", s->rate);
	(void)tw_buf_printf(&line, &err, "status: %s events/s, %llu events, %llu stored, %llu duplicates, "
					"%llu quarantined", num, (unsigned long long)s->events,
			    (unsigned long long)ctx->stored, (unsigned long long)ctx->duplicates,
			    (unsigned long long)s->quarantined);
	if (s->have_store)
		(void)tw_buf_printf(&line, &err, ", store %llu records", (unsigned long long)s->ss.records);
	for (size_t i = 0; i < nsrc; i++) {
		json_t *js = json_object(), *jl = json_array();
		enum tw_rc rc;

		tw_err_clear(&err);
		rc = tw_ingest_kafka_lag(src[i].k, lag, MAX_LAG, &n, 1000, &err);
		json_set(js, "name", json_string(src[i].name));
		{
			struct tw_kafka_counters kc;
			tw_ingest_kafka_counters(src[i].k, &kc);
			json_set(js, "messages", json_integer((json_int_t)kc.messages));
			json_set(js, "batches", json_integer((json_int_t)kc.batches));
			json_set(js, "commits", json_integer((json_int_t)kc.commits));
			json_set(js, "dead_letters", json_integer((json_int_t)kc.dead_letters));
		}
		if (rc != TW_OK && rc != TW_ELIMIT) {
			(void)tw_buf_printf(&line, &err, ", %s lag unknown (%s)", src[i].name, err.msg);
			json_set(js, "error", json_string(err.msg));
			json_decref(jl);
			json_array_append_new(jsrc, js);
			s->caught_up = 0;
			continue;
		}
		(void)tw_buf_printf(&line, &err, ", %s lag", src[i].name);
		if (!n) {
			(void)tw_buf_printf(&line, &err, " (no partition assigned)");
			s->caught_up = 0;
		}
		for (size_t j = 0; j < n; j++) {
			json_t *jp = json_object();
			(void)tw_buf_printf(&line, &err, " %s/%d=%lld", lag[j].topic, (int)lag[j].partition,
					    (long long)lag[j].lag);
			json_set(jp, "topic", json_string(lag[j].topic));
			json_set(jp, "partition", json_integer(lag[j].partition));
			json_set(jp, "committed", json_integer(lag[j].committed));
			json_set(jp, "high", json_integer(lag[j].high));
			json_set(jp, "lag", json_integer(lag[j].lag));
			json_array_append_new(jl, jp);
			if (lag[j].lag)
				s->caught_up = 0;
		}
		if (rc == TW_ELIMIT) {
			(void)tw_buf_printf(&line, &err, " ...");
			s->caught_up = 0;
		}
		json_set(js, "partitions", jl);
		json_array_append_new(jsrc, js);
	}
	if (log)
		logmsg(lg, TW_CONFIG_LOG_INFO, "%.*s", (int)line.n, line.p ? line.p : "");
	if (doc) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		json_set(doc, "time_ms", json_integer((json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
		json_set(doc, "pid", json_integer(getpid()));
		json_set(doc, "state", json_string(s->state ? s->state : "running"));
		json_set(doc, "events_per_s", json_real(s->rate));
		json_set(doc, "events", json_integer((json_int_t)s->events));
		json_set(doc, "stored", json_integer((json_int_t)ctx->stored));
		json_set(doc, "duplicates", json_integer((json_int_t)ctx->duplicates));
		json_set(doc, "quarantined", json_integer((json_int_t)s->quarantined));
		if (s->have_store) {
			json_set(doc, "store_records", json_integer((json_int_t)s->ss.records));
			json_set(doc, "store_bytes", json_integer((json_int_t)s->ss.bytes_total));
		}
		json_set(doc, "caught_up", json_boolean(s->caught_up));
		if (ctx->alerting) {
			struct tw_cli_alerting_stats as;
			json_t *ja = json_object();
			tw_cli_alerting_stats(ctx->alerting, &as);
			json_set(ja, "evaluations", json_integer((json_int_t)as.evaluations));
			json_set(ja, "state_changes", json_integer((json_int_t)as.transitions));
			json_set(ja, "to_alarm", json_integer((json_int_t)as.to_alarm));
			json_set(ja, "notifications", json_integer((json_int_t)as.notifications));
			json_set(ja, "rule_matches", json_integer((json_int_t)as.rule_matches));
			json_set(ja, "rule_evaluations", json_integer((json_int_t)as.rule_evaluations));
			json_set(ja, "failures", json_integer((json_int_t)as.failures));
			json_set(doc, "alarms", ja);
		}
		json_set(doc, "kafka", jsrc);
		jsrc = NULL;
		status_write(lg, dir, doc);
	}
	json_decref(jsrc);
	json_decref(doc);
	tw_buf_free(&line);
	return s->caught_up;
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
	unsigned batch_events;         /* --batch-events N (quick form); 0 = the source's default */
	int exit_at_end;               /* --exit-at-end: stop once every Kafka partition is caught up */
	uint64_t count;                /* --count N: stop once N events are stored and acknowledged */
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
		{ "batch-events", required_argument, NULL, 'b' },
		{ "exit-at-end", no_argument, NULL, 'e' },
		{ "count", required_argument, NULL, 'C' },
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
		case 'b':
			if (tw_cli_parse_uint(optarg, 1, 1000000, &a->batch_events))
				return tw_cli_usage_error(CMD, "--batch-events: expected 1..1000000, got '%s'", optarg);
			break;
		case 'e':
			a->exit_at_end = 1;
			break;
		case 'C': {
			char *end;
			errno = 0;
			a->count = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg || *optarg == '-' || !a->count)
				return tw_cli_usage_error(CMD, "--count: expected a positive number of events, got '%s'",
							  optarg);
			break;
		}
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
		if (a->store || a->kafka || a->ntopics || a->group || a->nprops || a->follow || a->batch_events)
			return tw_cli_usage_error(CMD, "--config excludes --store, --kafka, --topic, --group, -X, "
						       "--batch-events and --follow");
		return 0;
	}
	if (!a->store)
		return tw_cli_usage_error(CMD, "--config FILE or --store DIR is required");
	if (!a->kafka && !a->follow)
		return tw_cli_usage_error(CMD, "--kafka HOST:PORT or --follow DIR is required with --store");
	if (a->kafka && !a->ntopics)
		return tw_cli_usage_error(CMD, "at least one --topic NAME is required with --kafka");
	if (!a->kafka && (a->ntopics || a->group || a->nprops || a->batch_events))
		return tw_cli_usage_error(CMD, "--topic, --group, -X and --batch-events go with --kafka");
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
	double t_last, next_status, next_file;
	uint64_t ev_last = 0, ev_check = UINT64_MAX;
	int at_end = 0, backlog = 0;
	struct status sample;

	if ((ex = parse_args(argc, argv, &a)) != 0)
		return ex < 0 ? TW_EXIT_OK : ex;
	memset(&ctx, 0, sizeof ctx);
	memset(&rec, 0, sizeof rec);
	tw_err_clear(&err);
	tw_err_clear(&ctx.serr);
	{
		const char *hook = getenv("TRAILWATCH_TEST_KILL_AFTER_STORE");
		if (hook && *hook)
			ctx.kill_after_store = strtoull(hook, NULL, 10);
	}
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
	if (cfg) /* what `config check` warns about: a world-readable file naming secrets, ... */
		tw_config_warnings(cfg, log_config_warning, &lg);
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
		ko.batch_max_events = a.batch_events;
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
	if (tw_cli_metrics_open(dir, 0, cfg ? &cfg->metrics : NULL, &ctx.metrics, &err)) {
		logmsg(&lg, TW_CONFIG_LOG_ERROR, "metrics: %s", err.msg);
		ex = err.rc == TW_EINVAL || err.rc == TW_EPARSE ? TW_EXIT_USAGE : TW_EXIT_FAIL;
		goto out;
	}
	if (cfg && (cfg->nalarms || cfg->nrules || cfg->cis_alarms.enabled)) {
		struct tw_cli_alerting_opts ao = { alerting_log, &lg, 0 };
		tw_err_clear(&err);
		if (tw_cli_alerting_open(cfg, dir, ctx.metrics, &ao, &ctx.alerting, &err)) {
			logmsg(&lg, TW_CONFIG_LOG_ERROR, "%s: %s", a.config, err.msg);
			ex = err.rc == TW_EINVAL || err.rc == TW_EPARSE ? TW_EXIT_USAGE : TW_EXIT_FAIL;
			goto out;
		}
	}
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

	/* files sources: once, at start, as a backfill (S3 layouts come in path order, not time order) */
	for (size_t i = 0; cfg && i < cfg->nsources; i++)
		if (cfg->sources[i].type == TW_CONFIG_SRC_FILES) {
			(void)tw_cli_metrics_backfill(ctx.metrics, 1, &err);
			break;
		}
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
		       i, (unsigned long long)st.files, (unsigned long long)tw_ingest_stats_events(&st),
		       (unsigned long long)(ctx.stored - before), (unsigned long long)st.quarantined);
	}

	/* the backfill lasts while the follow sources take the files already there (path order). With
	 * live sources (Kafka, follow) it ends without closing the periods still inside the lateness:
	 * closing them all would drop what a live source brings late for them (found by the crash
	 * soak: after a restart, Kafka's backlog arrives after the group join, past the follow
	 * backlog, and its AccessDenied burst no longer counted) */
	tw_err_clear(&err);
	if (ctx.metrics && !nfol && tw_cli_metrics_backfill(ctx.metrics, nsrc ? -1 : 0, &err))
		logmsg(&lg, TW_CONFIG_LOG_ERROR, "metrics: %s", err.msg);
	backlog = nfol > 0;
	if (backlog)
		(void)tw_cli_metrics_backfill(ctx.metrics, 1, &err);

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
	next_file = t_last;
	memset(&sample, 0, sizeof sample);
	while (!g_stop && !ctx.store_failed && !ctx.quar_failed) {
		int timeout = nsrc + nfol ? POLL_MS / (int)(nsrc + nfol) : POLL_MS, failed = 0;
		double now;

		if (ctx.alerting)
			(void)tw_cli_alerting_tick(ctx.alerting, 0);
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
		if (backlog && !follow_pending(fol, nfol)) {
			/* the files that were there at start are in: back to the live window */
			backlog = 0;
			tw_err_clear(&err);
			if (tw_cli_metrics_backfill(ctx.metrics, -1, &err))
				logmsg(&lg, TW_CONFIG_LOG_ERROR, "metrics: %s", err.msg);
		}
		if (failed && !g_stop) { /* a failing poll may return at once: do not spin */
			struct timespec ts = { 0, 500 * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (g_hup) {
			g_hup = 0;
			log_reopen(&lg);
		}
		if (a.count && ctx.stored + ctx.duplicates >= a.count) { /* the poll committed what it stored */
			logmsg(&lg, TW_CONFIG_LOG_INFO, "%llu events stored and acknowledged (--count)",
			       (unsigned long long)(ctx.stored + ctx.duplicates));
			break;
		}
		now = tw_cli_now();
		/* the log line every --status-interval; DIR/status.json every STATUS_FILE_S; with
		 * --exit-at-end the lag is looked at every EXIT_CHECK_S */
		if (now >= next_status || now >= next_file) {
			int log = now >= next_status;
			uint64_t ev = 0;
			for (size_t i = 0; i < nsrc; i++)
				ev += tw_ingest_stats_events(&src[i].st);
			for (size_t i = 0; i < nfol; i++)
				ev += tw_ingest_stats_events(&fol[i].st);
			sample.events = ev;
			sample.quarantined = ctx.rej.n;
			sample.rate = now > t_last ? (double)(ev - ev_last) / (now - t_last) : 0;
			status_sample(&lg, log, &ctx, dir, src, nsrc, &sample);
			ev_last = ev;
			t_last = now;
			if (log)
				next_status = now + a.status_s;
			next_file = now + (a.exit_at_end ? EXIT_CHECK_S : STATUS_FILE_S);
			/* caught up: every Kafka partition at lag 0, and no followed directory gave an
			 * event since the previous look */
			if (a.exit_at_end && (nsrc ? sample.caught_up : 1) && (!nfol || ev == ev_check) &&
			    !follow_pending(fol, nfol)) {
				logmsg(&lg, TW_CONFIG_LOG_INFO, "every source is caught up (--exit-at-end)");
				at_end = 1;
				break;
			}
			ev_check = ev;
		}

	}
	if (a.count && !at_end && ctx.stored + ctx.duplicates >= a.count)
		at_end = 1;
	if (at_end && ctx.metrics && !ctx.store_failed) {
		/* a finite run: close every period (then evaluate, release the waiting groups, deliver) */
		tw_err_clear(&err);
		if (tw_cli_metrics_advance(ctx.metrics, 1, &err))
			logmsg(&lg, TW_CONFIG_LOG_ERROR, "metrics: %s", err.msg);
	}
	if (at_end && ctx.store && !ctx.store_failed) {
		/* a finite run leaves a compact store: the WAL sealed into a segment */
		tw_err_clear(&err);
		if (tw_store_seal(ctx.store, &err) != TW_OK)
			logmsg(&lg, TW_CONFIG_LOG_WARN, "sealing the WAL: %s", err.msg);
	}
	if (at_end && ctx.alerting && !ctx.store_failed) {
		(void)tw_cli_alerting_tick(ctx.alerting, 1);
		/* twice: a delivery that died meanwhile raises the delivery alarm, which is notified too */
		(void)tw_cli_alerting_drain(ctx.alerting, 60000);
		(void)tw_cli_alerting_tick(ctx.alerting, 1);
		if (!tw_cli_alerting_drain(ctx.alerting, 60000))
			logmsg(&lg, TW_CONFIG_LOG_WARN, "notifications still pending after 60 s: they stay in the "
							"outbox for the next run");
	}
	if (ctx.alerting) {
		struct tw_cli_alerting_stats as;
		tw_cli_alerting_stats(ctx.alerting, &as);
		logmsg(&lg, TW_CONFIG_LOG_INFO, "alarms: %llu evaluations, %llu state changes (%llu to ALARM), "
		       "%llu notifications, %llu event rule matches",
		       (unsigned long long)as.evaluations, (unsigned long long)as.transitions,
		       (unsigned long long)as.to_alarm, (unsigned long long)as.notifications,
		       (unsigned long long)as.rule_matches);
	}
	sample.state = ctx.store_failed || ctx.quar_failed ? "failed" : "stopped";
	sample.quarantined = ctx.rej.n;
	sample.rate = 0;
	status_sample(&lg, 0, &ctx, dir, src, nsrc, &sample);
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
	tw_cli_alerting_close(ctx.alerting);
	if (ctx.metrics) {
		if (tw_cli_metrics_failure(ctx.metrics))
			logmsg(&lg, TW_CONFIG_LOG_ERROR, "metrics stopped: %s (events were stored)",
			       tw_cli_metrics_failure(ctx.metrics));
		tw_cli_metrics_close(ctx.metrics, NULL);
	}
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
