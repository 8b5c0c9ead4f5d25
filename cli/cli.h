/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cli.h: what the files of cli/ share: the subcommands' entry points, exit codes, argument
 * helpers, the stdout writer, the progress line and the top-N counter. Private to cli/ (nothing
 * else may include it). Only cli/ prints to stdout/stderr and decides exit codes. */
#ifndef TW_CLI_H
#define TW_CLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"
#include "ingest/ingest.h"

#define TW_VERSION "0.1.0"

/* Exit codes of every subcommand (README.md lists them). */
enum tw_exit {
	TW_EXIT_OK = 0,      /* everything was done */
	TW_EXIT_PARTIAL = 1, /* done, but some records were quarantined or some inputs unreadable */
	TW_EXIT_USAGE = 2,   /* bad command line: nothing was done */
	TW_EXIT_FAIL = 3,    /* I/O or internal error (out of memory, write error on an output) */
};

/* A subcommand: argv[0] is its name; returns an enum tw_exit. "--help" prints its usage on stdout
 * and returns 0. Registered in the table of cli/main.c. */
int tw_cli_decode(int argc, char **argv);
int tw_cli_ingest(int argc, char **argv);
int tw_cli_store(int argc, char **argv);
int tw_cli_status(int argc, char **argv);
int tw_cli_metrics(int argc, char **argv);

/* ---- metrics.c: the metrics beside the store --------------------------------------------------- */

struct tw_cli_metrics;
struct tw_cli_alerting;
struct tw_config;
struct tw_config_metrics;
struct tw_series_point;
struct tw_event;
/* Opens STORE/metrics (created 0700): the built-in series, the CIS filters (unless mc->cis is 0)
 * and the user's metric filters of mc (NULL: the defaults, no user filters), resuming after the
 * time the last run closed. lateness_ms: at least this lateness (0: mc's or the default 5 min; a
 * backfill of files in any time order passes days, with a larger cap on open cells). 0, or -1. */
int tw_cli_metrics_open(const char *store, int64_t lateness_ms, const struct tw_config_metrics *mc,
			struct tw_cli_metrics **out, struct tw_err *err);
/* Backfill mode on (1): periods stay open for a month of event time (files in path order); off (0):
 * closes every open period, then back to the configured lateness (nothing else will come); off
 * with live sources (-1): back to the configured lateness, closing only the periods it has passed,
 * so that a live source's late events (Kafka after a restart, a delayed file) still count. 0, or
 * -1 with err. */
int tw_cli_metrics_backfill(struct tw_cli_metrics *m, int on, struct tw_err *err);
/* Feeds al (borrowed; NULL: none) with every closed point, every newly stored event, and the closed
 * mark once it is durable. */
void tw_cli_metrics_set_alerting(struct tw_cli_metrics *m, struct tw_cli_alerting *al);
/* The metric named name: its id (>= 0) with its dimension names (borrowed), or -1. */
int tw_cli_metrics_find(const struct tw_cli_metrics *m, const char *name, const char *const **dims, unsigned *ndims);
/* STORE/metrics, and the time up to which every period is closed and durable. */
const char *tw_cli_metrics_dir(const struct tw_cli_metrics *m);
int64_t tw_cli_metrics_closed(const struct tw_cli_metrics *m);
/* Counts the events of b whose dup flag is 0 (dup may be NULL: all). 0, or -1 with err. */
int tw_cli_metrics_feed(struct tw_cli_metrics *m, const struct tw_batch *b, const unsigned char *dup,
			struct tw_err *err);
/* Closes the periods the watermark has passed (all with flush_all) and makes them durable in
 * points.jsonl, then the closed mark. 0, or -1 with err. */
int tw_cli_metrics_advance(struct tw_cli_metrics *m, int flush_all, struct tw_err *err);
struct tw_store;
struct tw_store_append_result;
/* Appends b to the store and counts its newly stored events in m (NULL: a plain append). Returns
 * the store's result (err set); a metrics failure never fails the append: it is kept in m
 * (tw_cli_metrics_failure) and the metrics stop. With alerting attached, the event rules' journal
 * is written first (tw_cli_alerting_rules_begin); when it cannot be, nothing is appended (TW_EIO).
 * One thread at a time. */
enum tw_rc tw_cli_store_append(struct tw_store *store, struct tw_cli_metrics *m, const struct tw_batch *b,
			       struct tw_store_append_result *res, struct tw_err *err);
/* The first failure of the metrics (they stopped), or NULL. */
const char *tw_cli_metrics_failure(const struct tw_cli_metrics *m);
/* Points written and late values dropped so far. */
void tw_cli_metrics_stats(const struct tw_cli_metrics *m, uint64_t *points, uint64_t *late);
/* Closes what is due (when err is non-NULL, reporting a failure there) and frees m (NULL ok). */
void tw_cli_metrics_close(struct tw_cli_metrics *m, struct tw_err *err);

/* ---- detectors.c: the behaviour detectors beside the store (STORE/anomalies) ------------------ */

struct tw_cli_detectors;
struct tw_anomaly;
/* Opens STORE/anomalies (created 0700): the call-rate/error-rate insights and first-seen detectors,
 * resuming from their saved states. 0, or -1 with err (an unreadable or damaged state is an error). */
int tw_cli_detectors_open(const char *store, struct tw_cli_detectors **out, struct tw_err *err);
/* Keeps the CloudTrail events of b whose dup flag is 0 (dup may be NULL) until their period closes;
 * events before the closed mark are late and dropped. 0, or -1 with err (sticky). */
int tw_cli_detectors_feed(struct tw_cli_detectors *d, const struct tw_batch *b, const unsigned char *dup,
			  struct tw_err *err);
/* Runs the detectors over the events before closed_until (in time order), appends the findings to
 * anomalies.jsonl (fsynced), saves the states, then calls the on_anomaly callback for each finding.
 * flush_all: the input is complete (first-seen groups are emitted; open insights stay open).
 * 0, or -1 with err (sticky). */
int tw_cli_detectors_advance(struct tw_cli_detectors *d, int64_t closed_until, int flush_all, struct tw_err *err);
/* fn(ctx, a) for each finding once it is durable (a valid for the call); fn NULL: none. */
void tw_cli_detectors_on_anomaly(struct tw_cli_detectors *d, void (*fn)(void *ctx, const struct tw_anomaly *a),
				 void *ctx);
/* The first failure (the detectors stopped), or NULL. */
const char *tw_cli_detectors_failure(const struct tw_cli_detectors *d);
void tw_cli_detectors_close(struct tw_cli_detectors *d); /* NULL ok; closes nothing due (advance first) */
/* The detectors the metrics feed (NULL when they could not be opened). */
struct tw_cli_detectors *tw_cli_metrics_detectors(struct tw_cli_metrics *m);

/* ---- anomalies.c: `trailwatch anomalies` -------------------------------------------------------- */
int tw_cli_anomalies(int argc, char **argv);

/* ---- args.c: argument helpers ---------------------------------------------------------------- */

/* Parses a size: digits with an optional binary suffix K, M, G, T (also KB/KiB, any case):
 * "65536", "64K", "8M", "1G". Returns 0 and *out, or -1 when malformed or above max. */
int tw_cli_parse_size(const char *s, uint64_t max, uint64_t *out);
/* Parses a decimal unsigned integer in [min, max]. Returns 0 and *out, or -1. */
int tw_cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
/* Prints "trailwatch CMD: message" and the hint to run --help on stderr; returns TW_EXIT_USAGE. */
int tw_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a getopt_long failure ('?' or ':') for argv of command cmd; returns TW_EXIT_USAGE. */
int tw_cli_getopt_error(const char *cmd, int c, char **argv);
/* --format table|json: sets *json to 1 for json (leaves it for table). Returns 0, or prints the
 * usage error and returns TW_EXIT_USAGE. */
int tw_cli_format_opt(const char *cmd, const char *arg, int *json);
/* The input options decode and ingest share: 't' --threads, 'R' --max-record, 'I' --max-inflated.
 * Returns 0 when c was one of them and its value is good, TW_EXIT_USAGE (message printed) when
 * the value is bad, -1 when c is not one of them. */
int tw_cli_input_opt(const char *cmd, int c, const char *arg, struct tw_ingest_limits *lim);
/* The PATH arguments argv[first..argc) ("-" when there are none): each unreadable one is named on
 * stderr and counted in *bad; *paths (free it) gets the rest. -1 on out of memory (printed). */
int tw_cli_input_paths(int argc, char **argv, int first, const char ***paths, size_t *npaths, unsigned *bad);
/* Seconds on the monotonic clock. */
double tw_cli_now(void);
/* The wall clock in ms since the epoch, or $TW_NOW (ISO 8601) when set (tests, replays of old
 * logs). 0, or -1 after saying why on stderr. */
int tw_cli_now_ms(int64_t *out);
/* The shared time-range options: c 's' (--since AGE: from = now - AGE), 'F' (--from T), 'U'
 * (--until T). 0, or an exit code after a usage message naming cmd. */
int tw_cli_range_opt(const char *cmd, int c, const char *arg, int64_t *from, int64_t *until);
/* "1234567" -> "1,234,567" into out (size outsz). Returns out. */
char *tw_cli_fmt_count(uint64_t v, char *out, size_t outsz);
/* Bytes as "812 B", "12.3 KB", "2.6 MB", "1.4 GB" (decimal units). Returns out. */
char *tw_cli_fmt_bytes(uint64_t v, char *out, size_t outsz);

/* ---- out.c: buffered writer for stdout (large writes, no stdio) ------------------------------ */

struct tw_cli_out {
	int fd;             /* where flushes go */
	struct tw_buf buf;  /* pending bytes; writers append here, then call tw_cli_out_maybe_flush */
	size_t flush_at;    /* flush once buf.n reaches this */
	int broken;         /* 1 after EPIPE: the reader went away (| head); stop quietly */
	int err_no;         /* errno of the first failed write, 0 if none */
};

/* max bounds one pending chunk (flush_at plus the largest single record a writer may append). */
void tw_cli_out_init(struct tw_cli_out *o, int fd, size_t flush_at, size_t max);
/* Writes everything pending. Returns 0, or -1 with o->err_no (and o->broken on EPIPE). */
int tw_cli_out_flush(struct tw_cli_out *o);
/* Flushes when buf.n >= flush_at. Same result as tw_cli_out_flush. */
int tw_cli_out_maybe_flush(struct tw_cli_out *o);
void tw_cli_out_free(struct tw_cli_out *o);

/* ---- progress.c: the redrawn progress line on stderr ----------------------------------------- */

struct tw_cli_progress {
	int enabled;     /* 1 when stderr is a terminal and the user did not ask for --quiet */
	int shown;       /* 1 while a line is on screen (must be cleared before other stderr output) */
	double started;  /* tw_cli_now() at the start */
	double last;     /* time of the last redraw */
	double interval; /* seconds between redraws */
};

/* enabled: the caller's decision (isatty(2) && !quiet). */
void tw_cli_progress_init(struct tw_cli_progress *pg, int enabled);
/* Redraws "files F  events E  R events/s  M MB" if the interval has passed (or force). */
void tw_cli_progress_update(struct tw_cli_progress *pg, uint64_t files, uint64_t events, uint64_t bytes,
			    int force);
/* Erases the line if shown (call before printing anything else on stderr, and at the end). */
void tw_cli_progress_clear(struct tw_cli_progress *pg);

/* ---- topn.c: counts of distinct strings, for summaries ---------------------------------------- */

struct tw_cli_counter;

struct tw_cli_count {
	struct tw_str key; /* borrowed from the counter: valid until tw_cli_counter_free */
	uint64_t n;        /* occurrences */
};

/* A counter keeping at most max_keys distinct keys; later new keys are tallied in `others`. */
struct tw_cli_counter *tw_cli_counter_new(size_t max_keys);
/* Adds one occurrence of key (copied). Returns 0, or -1 on out of memory. */
int tw_cli_counter_add(struct tw_cli_counter *c, struct tw_str key);
/* Fills out[0..k) with the k most frequent keys (ties by key order); returns how many. */
size_t tw_cli_counter_top(const struct tw_cli_counter *c, size_t k, struct tw_cli_count *out);
/* Distinct keys kept, and occurrences of keys that did not fit. */
size_t tw_cli_counter_distinct(const struct tw_cli_counter *c);
uint64_t tw_cli_counter_others(const struct tw_cli_counter *c);
void tw_cli_counter_free(struct tw_cli_counter *c);

/* ---- rejects.c: reporting and quarantining rejected records ---------------------------------- */

struct tw_cli_rejects {
	FILE *quar;                /* quarantine file (appended JSON lines), or NULL */
	const char *quar_path;     /* its name, for messages */
	int quar_errno;            /* first write error on it */
	int failed;                /* 1 after a quarantine write or format failure */
	struct tw_buf qline;       /* scratch for one quarantine line */
	uint64_t n;                /* rejects seen */
	uint64_t show_max;         /* rejects printed on stderr before only counting */
	struct tw_cli_progress *pg; /* cleared before printing; may be NULL */
	pthread_mutex_t mu;        /* serializes stderr output and quarantine writes */
};

/* Writes n bytes to stderr with control bytes shown as '?' (record text must not drive the terminal). */
void tw_cli_put_clean(const char *p, size_t n);
/* quar_path may be NULL. Prints the error and returns -1 if the quarantine file cannot be opened
 * (r must still be closed). */
int tw_cli_rejects_open(struct tw_cli_rejects *r, const char *quar_path, struct tw_cli_progress *pg);
/* Prints the reject (the first show_max) and appends it to the quarantine file. TW_EIO (message
 * in err) when the quarantine file cannot be written: the caller must stop. */
enum tw_rc tw_cli_rejects_add(struct tw_cli_rejects *r, const struct tw_reject *rej, struct tw_err *err);
/* "N more rejected records not shown (all are in FILE)" when some were not printed. */
void tw_cli_rejects_report_hidden(const struct tw_cli_rejects *r);
/* Closes the quarantine file; -1 if anything could not be written (already reported if at close). */
int tw_cli_rejects_close(struct tw_cli_rejects *r);
/* The exit code of a run of tw_ingest_paths that returned rc (err its message), printing that
 * message: TW_ENOMEM is TW_EXIT_FAIL; another failure (a path the source could not read, named
 * by the message; the others were read) is TW_EXIT_PARTIAL; TW_OK is TW_EXIT_PARTIAL when
 * partial (records quarantined, paths unreadable...), else TW_EXIT_OK. */
int tw_cli_inputs_exit(enum tw_rc rc, const struct tw_err *err, int partial);


/* ---- query.c: `trailwatch query`, `who`, `what` ----------------------------------------------- */
int tw_cli_query(int argc, char **argv);
int tw_cli_who(int argc, char **argv);
int tw_cli_what(int argc, char **argv);

/* ---- qfmt.c: query result output (JSON lines, CSV, aligned tables, bar charts) ---------------- */
struct tw_qexec;

enum tw_cli_qformat {
	TW_CLI_QF_JSON = 0,  /* one JSON object per line */
	TW_CLI_QF_TABLE = 1, /* aligned columns, fitted to width */
	TW_CLI_QF_CSV = 2,   /* RFC 4180 with a header line */
};

/* How to print results. */
struct tw_cli_qfmt {
	enum tw_cli_qformat format; /* see above */
	int raw;                    /* JSON event rows: print the original records, one per line */
	int width;                  /* table: columns available (0: no fitting) */
	int color;                  /* table: ANSI bold red for failed events (stdout is a terminal) */
	int mark;                   /* table: a leading "!" column marking failed events (no color) */
};

/* Columns of a terminal on fd (TIOCGWINSZ), else $COLUMNS, else 0. */
int tw_cli_term_width(int fd);
/* Prints the finished executor's rows: events (query without stats) or the stats table. */
enum tw_rc tw_cli_qfmt_results(struct tw_cli_out *o, struct tw_qexec *x, const struct tw_cli_qfmt *f,
			       struct tw_err *err);
/* Prints events evs[0..n) (borrowed) with the event columns cols[0..ncols) ("time", "principal",
 * "event", "source", "region", "ip", "error", "resource"; JSON ignores them). */
enum tw_rc tw_cli_qfmt_events(struct tw_cli_out *o, const struct tw_event *const *evs, size_t n,
			      const char *const *cols, size_t ncols, const struct tw_cli_qfmt *f, struct tw_err *err);
/* Draws a stats result with a bin() column as horizontal bars (label: the group keys; bar: the last
 * numeric column) in width columns (0: 80). TW_EINVAL when the result has no bin() column. */
enum tw_rc tw_cli_qfmt_chart(struct tw_cli_out *o, struct tw_qexec *x, int width, int utf8, struct tw_err *err);

/* ---- config.c: `trailwatch config check` ----------------------------------------------------- */
int tw_cli_config(int argc, char **argv);

/* ---- run.c: `trailwatch run`, the daemon loop --------------------------------------------------- */
int tw_cli_run(int argc, char **argv);

/* ---- filter.c: `trailwatch filter test|lint`, `trailwatch rules list` ------------------------- */
int tw_cli_filter(int argc, char **argv);
int tw_cli_rules(int argc, char **argv);

/* ---- alarms.c: `trailwatch alarms` (list, history, set-state) and `trailwatch silence` ---------- */
int tw_cli_alarms(int argc, char **argv);
int tw_cli_silence(int argc, char **argv);

/* ---- alerting.c: alarms, event rules, routing and the notifier inside `run` ------------------- */

/* How the alerting reports (the daemon's log). */
struct tw_cli_alerting_opts {
	void (*log)(void *ctx, int level, const char *msg); /* level: enum tw_config_log_level; NULL: stderr */
	void *log_ctx;                                        /* passed to log */
	int no_delivery;                                      /* 1: publish to the outbox, deliver nothing */
};

/* What the alerting did since open. */
struct tw_cli_alerting_stats {
	uint64_t evaluations;   /* alarm evaluations */
	uint64_t transitions;   /* state changes */
	uint64_t to_alarm;      /* of them, to ALARM */
	uint64_t notifications; /* messages published (alarm groups and event rules) */
	uint64_t rule_matches;  /* events matched by event rules */
	uint64_t rule_evaluations; /* evaluations of the rules' patterns: one per new event, plus one
	                              more per matching event (to tell which rules matched) */
	uint64_t rule_capped;   /* of them, not published (a rule's per-minute cap) */
	uint64_t failures;      /* evaluation, render or publish failures (logged) */
	uint64_t rules_recovered; /* records of a batch a crash interrupted, evaluated again at open */
};

/* Opens the alarm set (STORE/alarms), defines the config's alarms (and the CIS pack's when
 * cis_alarms.enabled) against the metrics of m, opens the router and the notifier (the config's
 * topics and subscriptions, or topic "alarms" delivering to the maildir STORE/mail), replays the
 * closed points the alarms have not evaluated yet (a crash between the points and the alarms), and
 * attaches itself to m. Errors name the config key ("alarms[2].metric: unknown metric ..."). */
int tw_cli_alerting_open(const struct tw_config *cfg, const char *store, struct tw_cli_metrics *m,
			 const struct tw_cli_alerting_opts *o, struct tw_cli_alerting **out, struct tw_err *err);
/* Called by the metrics: a closed point (dims: its metric's dimension names), a newly stored event,
 * and the durable closed mark (evaluates the alarms whose periods ended by then). */
void tw_cli_alerting_point(struct tw_cli_alerting *a, const struct tw_series_point *p, const char *const *dims);
void tw_cli_alerting_event(struct tw_cli_alerting *a, const struct tw_batch *b, size_t i);
/* Around a store append (tw_cli_store_append): _begin evaluates the event rules once per record
 * of b (tw_cli_alerting_event of b's records reuses that) and lists those that match in the fsynced journal STORE/alarms/rules.pending before the append; _appended keeps only
 * the new ones; _end empties it once their publishes returned. The open evaluates again what a crash left listed (the replayed records
 * are duplicates: without it their mail would be lost). a may be NULL. _begin: 0, or -1 with err
 * (the journal cannot be written: the append must not happen). */
int tw_cli_alerting_rules_begin(struct tw_cli_alerting *a, const struct tw_batch *b, struct tw_err *err);
/* After the append: narrows the journal to the records the store took as new (dup[i] == 0). */
void tw_cli_alerting_rules_appended(struct tw_cli_alerting *a, const struct tw_batch *b, const unsigned char *dup);
void tw_cli_alerting_rules_end(struct tw_cli_alerting *a);
/* The append failed: the matches _begin found are forgotten (the journal stays for the next open). */
void tw_cli_alerting_rules_forget(struct tw_cli_alerting *a);
void tw_cli_alerting_advance(struct tw_cli_alerting *a, int64_t closed);
/* Publishes the notifications due: the router's clock is event time (the closed mark) moved on by
 * the wall-clock time since the mark last moved; flush: release every group waiting (the end of a
 * finite run). Returns how many messages were published. */
size_t tw_cli_alerting_tick(struct tw_cli_alerting *a, int flush);
/* Waits up to timeout_ms for every pending delivery; 1 when none is left. */
int tw_cli_alerting_drain(struct tw_cli_alerting *a, int64_t timeout_ms);
void tw_cli_alerting_stats(const struct tw_cli_alerting *a, struct tw_cli_alerting_stats *st);
/* Detaches from the metrics (call tw_cli_metrics_set_alerting(m, NULL) first if m is freed first)
 * and closes everything; pending deliveries stay in the outbox for the next run. NULL ok. */
void tw_cli_alerting_close(struct tw_cli_alerting *a);

/* ---- notify.c: `trailwatch notify publish|status` ------------------------------------------------ */
int tw_cli_notify(int argc, char **argv);

/* ---- detect.c: `trailwatch detect`, the anomaly band over a timestamp,value CSV ------------- */
int tw_cli_detect(int argc, char **argv);

#endif
