/* SPDX-License-Identifier: Apache-2.0 */
/* cli/notify.c: `trailwatch notify publish` (publish one message to a topic whose subscriptions
 * are named on the command line, wait for the outcome of each) and `trailwatch notify status`
 * (what a notifier state directory holds). The configuration file's topics and subscriptions
 * are wired by `trailwatch run`; this command is for trying endpoints and for scripts. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/notify.h"
#include "cli/cli.h"
#include "core/time.h"

#define CMD "notify"
#define MAX_SUBS 32
#define MAX_ARGV 32

static void usage(FILE *f)
{
	fputs("usage: trailwatch notify publish TOPIC --state DIR --sub SPEC... [OPTIONS]\n"
	      "       trailwatch notify status --state DIR\n"
	      "\n"
	      "publish makes one message durable in the notifier's outbox (DIR/outbox.log), delivers it\n"
	      "to each subscription named with --sub, and waits for each outcome (delivered, or\n"
	      "dead-lettered into DIR/dead-letters.jsonl after the retries). Deliveries still pending\n"
	      "when --wait runs out stay in the outbox: the next publish or 'trailwatch run' with the\n"
	      "same subscriptions resumes them. status prints what DIR holds.\n"
	      "Run 'trailwatch notify publish --help' for the options.\n",
	      f);
}

static void usage_publish(FILE *f)
{
	fputs("usage: trailwatch notify publish TOPIC --state DIR --sub SPEC... [OPTIONS]\n"
	      "\n"
	      "Subscriptions (--sub, repeatable; the SPEC is also the subscription's name):\n"
	      "  email:ADDRESS          a mail over SMTP (needs --smtp and --from)\n"
	      "  email-json:ADDRESS     the same, with the SNS JSON as the body\n"
	      "  http://... https://... POST of the SNS JSON notification\n"
	      "  file:PATH              append the JSON as one line (fsynced)\n"
	      "  maildir:DIR            the mail into a Maildir (DIR/new/)\n"
	      "  exec:PROG,ARG,...      run PROG (no shell) with the JSON on stdin; exit 0 = delivered\n"
	      "\n"
	      "options:\n"
	      "  -s, --state DIR           notifier state directory (required)\n"
	      "      --subject TEXT        the subject\n"
	      "  -m, --message TEXT        the message (default: read from stdin)\n"
	      "      --mime FILE           a complete MIME entity for mails (Content-Type header first)\n"
	      "  -a, --attr NAME=VALUE     a String attribute (repeatable)\n"
	      "      --attr-number NAME=N  a Number attribute (repeatable)\n"
	      "      --policy JSON         SNS filter policy of the preceding --sub\n"
	      "      --dedup KEY           publish once per KEY within 5 minutes\n"
	      "      --topic-name TEXT     the topic's display name (the mail's From name)\n"
	      "      --smtp URL            smtp://HOST:PORT or smtps://HOST:PORT\n"
	      "      --from ADDRESS        the sender address\n"
	      "      --starttls MODE       required (default), opportunistic or none (smtp:// only)\n"
	      "      --smtp-user USER      AUTH user; the password comes from\n"
	      "      --smtp-password-env VAR | --smtp-password-file FILE\n"
	      "      --ca-file FILE        CA certificates for SMTP and https\n"
	      "      --insecure            do not verify TLS certificates\n"
	      "      --header 'N: V'       an extra HTTP request header (repeatable)\n"
	      "      --timeout DURATION    per attempt (default 30s), e.g. 500ms, 10s\n"
	      "      --retries N           retries after the first attempt (default: per protocol)\n"
	      "      --retry-delay DURATION  delay between retries (with --retries; default 1s)\n"
	      "      --wait SECONDS        wait this long for the outcomes (default 60; 0: do not wait)\n"
	      "      --dead-letter FILE    dead-letter file (default DIR/dead-letters.jsonl)\n"
	      "  -h, --help                this help\n"
	      "\n"
	      "exit codes: 0 every delivery succeeded (or no subscription's policy matched); 1 some were\n"
	      "dead-lettered or are still pending; 2 usage error; 3 the outbox cannot be written.\n",
	      f);
}

static void usage_status(FILE *f)
{
	fputs("usage: trailwatch notify status --state DIR\n"
	      "\n"
	      "Prints what the notifier state directory DIR holds: messages published, deliveries\n"
	      "delivered, dead-lettered and pending (the age of the oldest pending one), the size of\n"
	      "the outbox and the dead-letter file. Reads without taking the lock: safe while\n"
	      "'trailwatch run' delivers.\n"
	      "\n"
	      "options:\n"
	      "  -s, --state DIR   notifier state directory (required)\n"
	      "  -h, --help        this help\n"
	      "\n"
	      "exit codes: 0 ok; 1 deliveries are pending or were dead-lettered; 2 usage error;\n"
	      "3 DIR holds no readable outbox.\n",
	      f);
}

/* What publish saw of one subscription. */
struct outcome {
	enum tw_notify_state state; /* PENDING until a final result arrives */
	unsigned attempts;          /* attempts made */
	char error[256];            /* the last failure */
};

/* Shared with the notifier's callback thread. */
struct watch {
	pthread_mutex_t mu;              /* guards the outcomes */
	char id[40];                     /* the message watched */
	const struct tw_notify_sub *subs; /* the subscriptions */
	size_t nsubs;                    /* entries in subs */
	struct outcome out[MAX_SUBS];    /* per subscription */
};

static void on_result(void *ctx, const struct tw_notify_result *r)
{
	struct watch *w = ctx;

	pthread_mutex_lock(&w->mu);
	if (!strcmp(r->message_id, w->id))
		for (size_t i = 0; i < w->nsubs; i++)
			if (!strcmp(w->subs[i].name, r->sub)) {
				if (r->state != TW_NOTIFY_RETRYING)
					w->out[i].state = r->state;
				w->out[i].attempts = r->attempts;
				snprintf(w->out[i].error, sizeof w->out[i].error, "%s", r->error);
			}
	pthread_mutex_unlock(&w->mu);
	if (r->state == TW_NOTIFY_RETRYING)
		fprintf(stderr, "trailwatch notify: %s: attempt %u failed: %s (will retry)\n", r->sub, r->attempts, r->error);
}

static int parse_sub(const char *spec, struct tw_notify_sub *s, char **argvbuf, const char **argv)
{
	static const struct {
		const char *prefix;         /* what the spec starts with */
		enum tw_notify_proto proto; /* its protocol */
		int keep;                   /* 1: the endpoint is the whole spec */
	} kinds[] = {
		{ "email-json:", TW_NOTIFY_EMAIL_JSON, 0 }, { "email:", TW_NOTIFY_EMAIL, 0 },
		{ "http://", TW_NOTIFY_HTTP, 1 },           { "https://", TW_NOTIFY_HTTPS, 1 },
		{ "file:", TW_NOTIFY_FILE, 0 },             { "maildir:", TW_NOTIFY_MAILDIR, 0 },
		{ "exec:", TW_NOTIFY_EXEC, 0 },
	};

	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		size_t pl = strlen(kinds[k].prefix);
		if (strncmp(spec, kinds[k].prefix, pl))
			continue;
		s->name = spec;
		s->proto = kinds[k].proto;
		s->endpoint = kinds[k].keep ? spec : spec + pl;
		if (!*s->endpoint)
			return -1;
		if (s->proto == TW_NOTIFY_EXEC) {
			char *save = NULL;
			size_t n = 0;
			if (!(*argvbuf = strdup(s->endpoint)))
				return -1;
			for (char *t = strtok_r(*argvbuf, ",", &save); t && n < MAX_ARGV; t = strtok_r(NULL, ",", &save))
				argv[n++] = t;
			if (!n)
				return -1;
			s->argv = argv;
			s->argc = n;
			s->endpoint = argv[0];
		}
		return 0;
	}
	return -1;
}

static int parse_ms(const char *opt, const char *arg, int64_t *out)
{
	struct tw_err err;

	if (tw_duration_parse(arg, out, &err) || *out < 0)
		return tw_cli_usage_error(CMD, "%s: expected a duration like 500ms, 10s or 2m, got '%s'", opt, arg);
	return 0;
}

static char *read_all(FILE *f, size_t max, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);

	while (p) {
		size_t r;
		if (n + 1 >= cap) {
			char *np = cap > max ? NULL : realloc(p, cap * 2);
			if (!np) {
				free(p);
				return NULL;
			}
			p = np;
			cap *= 2;
		}
		r = fread(p + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	if (p)
		p[n] = 0;
	*len = n;
	return p;
}

static const char *state_name(enum tw_notify_state s)
{
	switch (s) {
	case TW_NOTIFY_DELIVERED:
		return "delivered";
	case TW_NOTIFY_DEAD:
		return "dead-lettered";
	case TW_NOTIFY_RETRYING:
	case TW_NOTIFY_PENDING:
		break;
	}
	return "pending";
}

enum {
	O_SUBJECT = 256, O_MIME, O_ATTRN, O_POLICY, O_DEDUP, O_TOPICNAME, O_SMTP, O_FROM, O_STARTTLS, O_USER, O_PWENV,
	O_PWFILE, O_CAFILE, O_INSECURE, O_HEADER, O_TIMEOUT, O_RETRIES, O_RDELAY, O_WAIT, O_DEADL, O_SUB,
};

static int publish(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },      { "subject", required_argument, NULL, O_SUBJECT },
		{ "message", required_argument, NULL, 'm' },    { "mime", required_argument, NULL, O_MIME },
		{ "attr", required_argument, NULL, 'a' },       { "attr-number", required_argument, NULL, O_ATTRN },
		{ "sub", required_argument, NULL, O_SUB },      { "subscribe", required_argument, NULL, O_SUB },
		{ "policy", required_argument, NULL, O_POLICY }, { "dedup", required_argument, NULL, O_DEDUP },
		{ "topic-name", required_argument, NULL, O_TOPICNAME }, { "smtp", required_argument, NULL, O_SMTP },
		{ "from", required_argument, NULL, O_FROM },    { "starttls", required_argument, NULL, O_STARTTLS },
		{ "smtp-user", required_argument, NULL, O_USER }, { "smtp-password-env", required_argument, NULL, O_PWENV },
		{ "smtp-password-file", required_argument, NULL, O_PWFILE }, { "ca-file", required_argument, NULL, O_CAFILE },
		{ "insecure", no_argument, NULL, O_INSECURE },  { "header", required_argument, NULL, O_HEADER },
		{ "timeout", required_argument, NULL, O_TIMEOUT }, { "retries", required_argument, NULL, O_RETRIES },
		{ "retry-delay", required_argument, NULL, O_RDELAY }, { "wait", required_argument, NULL, O_WAIT },
		{ "dead-letter", required_argument, NULL, O_DEADL }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tw_notify_sub subs[MAX_SUBS];
	char *argvbufs[MAX_SUBS] = { 0 };
	const char *subargv[MAX_SUBS][MAX_ARGV];
	struct tw_notify_attr attrs[TW_NOTIFY_MAX_ATTRS];
	const char *headers[16];
	size_t nsubs = 0, nattrs = 0, nheaders = 0, msglen = 0;
	const char *state = NULL, *subject = NULL, *message = NULL, *mime_path = NULL, *dedup = NULL, *display = NULL;
	const char *smtp = NULL, *from = NULL, *user = NULL, *ca = NULL, *dead = NULL;
	struct tw_secret pw = { TW_SECRET_NONE, NULL };
	enum tw_notify_starttls starttls = TW_NOTIFY_STARTTLS_REQUIRED;
	int insecure = 0, c, ret = TW_EXIT_OK, has_retry = 0;
	int64_t timeout = 0, rdelay = 1000;
	unsigned retries = 0, wait_s = 60;
	struct tw_notify_retry retry;
	char *msgbuf = NULL, *mimebuf = NULL;
	struct watch w;
	struct tw_notify *n = NULL;
	struct tw_err err = { 0 };

	memset(subs, 0, sizeof subs);
	memset(&w, 0, sizeof w);
	pthread_mutex_init(&w.mu, NULL);
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:m:a:h", opts, NULL)) != -1) {
		char *eq;
		switch (c) {
		case 's':
			state = optarg;
			break;
		case O_SUBJECT:
			subject = optarg;
			break;
		case 'm':
			message = optarg;
			break;
		case O_MIME:
			mime_path = optarg;
			break;
		case 'a':
		case O_ATTRN:
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return tw_cli_usage_error(CMD, "--%s: expected NAME=VALUE, got '%s'",
							  c == 'a' ? "attr" : "attr-number", optarg);
			if (nattrs == TW_NOTIFY_MAX_ATTRS)
				return tw_cli_usage_error(CMD, "at most %u attributes", TW_NOTIFY_MAX_ATTRS);
			*eq = 0;
			attrs[nattrs].name = optarg;
			attrs[nattrs].str = eq + 1;
			attrs[nattrs].is_number = c == O_ATTRN;
			if (c == O_ATTRN) {
				char *end;
				errno = 0;
				attrs[nattrs].num = strtod(eq + 1, &end);
				if (end == eq + 1 || *end || errno || !isfinite(attrs[nattrs].num))
					return tw_cli_usage_error(CMD, "--attr-number %s: '%s' is not a number", optarg, eq + 1);
				attrs[nattrs].str = NULL;
			}
			nattrs++;
			break;
		case O_SUB:
			if (nsubs == MAX_SUBS)
				return tw_cli_usage_error(CMD, "at most %d subscriptions", MAX_SUBS);
			if (parse_sub(optarg, &subs[nsubs], &argvbufs[nsubs], subargv[nsubs]))
				return tw_cli_usage_error(CMD,
							  "--sub '%s': expected email:ADDRESS, email-json:ADDRESS, http(s)://URL, "
							  "file:PATH, maildir:DIR or exec:PROG[,ARG...]",
							  optarg);
			nsubs++;
			break;
		case O_POLICY:
			if (!nsubs)
				return tw_cli_usage_error(CMD, "--policy applies to the --sub before it: give a --sub first");
			subs[nsubs - 1].filter_policy = optarg;
			break;
		case O_DEDUP:
			dedup = optarg;
			break;
		case O_TOPICNAME:
			display = optarg;
			break;
		case O_SMTP:
			smtp = optarg;
			break;
		case O_FROM:
			from = optarg;
			break;
		case O_STARTTLS:
			if (!strcmp(optarg, "required"))
				starttls = TW_NOTIFY_STARTTLS_REQUIRED;
			else if (!strcmp(optarg, "opportunistic"))
				starttls = TW_NOTIFY_STARTTLS_OPPORTUNISTIC;
			else if (!strcmp(optarg, "none"))
				starttls = TW_NOTIFY_STARTTLS_NONE;
			else
				return tw_cli_usage_error(CMD, "--starttls: expected required, opportunistic or none, got '%s'",
							  optarg);
			break;
		case O_USER:
			user = optarg;
			break;
		case O_PWENV:
		case O_PWFILE:
			pw.from = c == O_PWENV ? TW_SECRET_ENV : TW_SECRET_FILE;
			pw.ref = optarg;
			break;
		case O_CAFILE:
			ca = optarg;
			break;
		case O_INSECURE:
			insecure = 1;
			break;
		case O_HEADER:
			if (nheaders == sizeof headers / sizeof headers[0])
				return tw_cli_usage_error(CMD, "at most 16 --header options");
			headers[nheaders++] = optarg;
			break;
		case O_TIMEOUT:
			if (parse_ms("--timeout", optarg, &timeout))
				return TW_EXIT_USAGE;
			break;
		case O_RETRIES:
			if (tw_cli_parse_uint(optarg, 0, TW_NOTIFY_MAX_ATTEMPTS - 1, &retries))
				return tw_cli_usage_error(CMD, "--retries: expected 0 to %u, got '%s'", TW_NOTIFY_MAX_ATTEMPTS - 1,
							  optarg);
			has_retry = 1;
			break;
		case O_RDELAY:
			if (parse_ms("--retry-delay", optarg, &rdelay))
				return TW_EXIT_USAGE;
			break;
		case O_WAIT:
			if (tw_cli_parse_uint(optarg, 0, 86400, &wait_s))
				return tw_cli_usage_error(CMD, "--wait: expected seconds from 0 to 86400, got '%s'", optarg);
			break;
		case O_DEADL:
			dead = optarg;
			break;
		case 'h':
			usage_publish(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (optind + 1 != argc)
		return tw_cli_usage_error(CMD, "publish takes one TOPIC (got %d arguments)", argc - optind);
	if (!state)
		return tw_cli_usage_error(CMD, "--state DIR is required");
	if (!nsubs)
		return tw_cli_usage_error(CMD, "name at least one subscription with --sub");
	memset(&retry, 0, sizeof retry);
	retry.num_retries = retries;
	retry.min_delay_ms = retry.max_delay_ms = rdelay;
	retry.jitter_pct = 10;
	for (size_t i = 0; i < nsubs; i++) {
		struct tw_notify_sub *s = &subs[i];
		if ((s->proto == TW_NOTIFY_EMAIL || s->proto == TW_NOTIFY_EMAIL_JSON) && (!smtp || !from))
			return tw_cli_usage_error(CMD, "--sub %s: email needs --smtp URL and --from ADDRESS", s->name);
		if (user && pw.from == TW_SECRET_NONE)
			return tw_cli_usage_error(CMD, "--smtp-user needs --smtp-password-env VAR or --smtp-password-file FILE");
		s->topic = argv[optind];
		s->smtp.url = smtp;
		s->smtp.from = from;
		s->smtp.user = user;
		s->smtp.password = pw;
		s->smtp.starttls = starttls;
		s->smtp.ca_file = ca;
		s->smtp.insecure = insecure;
		s->http.ca_file = ca;
		s->http.insecure = insecure;
		s->http.headers = headers;
		s->http.nheaders = nheaders;
		s->timeout_ms = timeout;
		s->retry = has_retry ? &retry : NULL;
	}
	if (!message) {
		if (isatty(0))
			fprintf(stderr, "trailwatch notify: reading the message from stdin (end with Ctrl-D)\n");
		msgbuf = read_all(stdin, TW_NOTIFY_MAX_MESSAGE_DEFAULT, &msglen);
		if (!msgbuf) {
			fprintf(stderr, "trailwatch notify: stdin: larger than %u bytes or unreadable\n",
				TW_NOTIFY_MAX_MESSAGE_DEFAULT);
			ret = TW_EXIT_FAIL;
			goto done;
		}
		message = msgbuf;
	}
	if (mime_path) {
		FILE *f = fopen(mime_path, "rb");
		size_t ml;
		if (!f || !(mimebuf = read_all(f, TW_NOTIFY_MAX_MESSAGE_DEFAULT, &ml))) {
			fprintf(stderr, "trailwatch notify: %s: %s\n", mime_path, f ? "too large" : strerror(errno));
			if (f)
				fclose(f);
			ret = TW_EXIT_FAIL;
			goto done;
		}
		fclose(f);
	}

	struct tw_notify_topic topic = { argv[optind], display };
	struct tw_notify_config cfg = { 0 };
	cfg.state_dir = state;
	cfg.topics = &topic;
	cfg.ntopics = 1;
	cfg.subs = subs;
	cfg.nsubs = nsubs;
	cfg.dead_letter_path = dead;
	cfg.orphans = TW_NOTIFY_ORPHANS_KEEP; /* others' pending deliveries wait for their own config */
	cfg.on_result = on_result;
	cfg.on_result_ctx = &w;
	w.subs = subs;
	w.nsubs = nsubs;
	/* The callback matches on the id: set it before any delivery can report. */
	pthread_mutex_lock(&w.mu);
	if (tw_notify_open(&cfg, &n, &err)) {
		pthread_mutex_unlock(&w.mu);
		fprintf(stderr, "trailwatch notify: %s\n", err.msg);
		ret = err.rc == TW_EINVAL || err.rc == TW_EPARSE ? TW_EXIT_USAGE : TW_EXIT_FAIL;
		goto done;
	}
	struct tw_notify_msg m = { argv[optind], subject, message, attrs, nattrs, mimebuf, dedup };
	struct tw_notify_receipt r;
	enum tw_rc rc = tw_notify_publish(n, &m, &r, &err);
	if (!rc)
		snprintf(w.id, sizeof w.id, "%s", r.message_id);
	pthread_mutex_unlock(&w.mu);
	if (rc) {
		fprintf(stderr, "trailwatch notify: %s\n", err.msg);
		ret = rc == TW_EINVAL || rc == TW_ELIMIT ? TW_EXIT_USAGE : TW_EXIT_FAIL;
		goto done;
	}
	if (r.duplicate) {
		printf("message %s: already published with dedup key '%s': not sent again\n", r.message_id, dedup);
		goto done;
	}
	if (!r.deliveries) {
		printf("message dropped: no subscription's filter policy matches its attributes\n");
		goto done;
	}
	printf("message %s published to %s: %u deliver%s\n", r.message_id, argv[optind], r.deliveries,
	       r.deliveries == 1 ? "y" : "ies");
	if (wait_s)
		tw_notify_wait(n, r.seq, (int64_t)wait_s * 1000);
	tw_notify_close(n);
	n = NULL;
	/* Aligned table: the widest subscription name sets the first column. */
	int wname = (int)strlen("SUBSCRIPTION");
	for (size_t i = 0; i < nsubs; i++)
		if ((int)strlen(subs[i].name) > wname)
			wname = (int)strlen(subs[i].name);
	printf("%-*s  %-13s  %8s  %s\n", wname, "SUBSCRIPTION", "OUTCOME", "ATTEMPTS", "DETAIL");
	pthread_mutex_lock(&w.mu);
	for (size_t i = 0; i < nsubs; i++) {
		const struct outcome *o = &w.out[i];
		int matched = 1;
		if (subs[i].filter_policy) {
			struct tw_notify_policy *p = NULL;
			struct tw_err e2;
			if (!tw_notify_policy_parse(subs[i].filter_policy, strlen(subs[i].filter_policy), &p, &e2))
				matched = tw_notify_policy_match(p, attrs, nattrs);
			tw_notify_policy_free(p);
		}
		if (!matched) {
			printf("%-*s  %-13s  %8s  %s\n", wname, subs[i].name, "filtered", "-", "its filter policy does not match");
			continue;
		}
		const char *detail = o->state == TW_NOTIFY_PENDING
					     ? (wait_s ? "still pending: kept in the outbox" : "kept in the outbox")
					     : o->state == TW_NOTIFY_DELIVERED ? "" : o->error;
		printf("%-*s  %-13s  %8u%s%s\n", wname, subs[i].name, state_name(o->state), o->attempts, *detail ? "  " : "",
		       detail);
		if (o->state != TW_NOTIFY_DELIVERED)
			ret = TW_EXIT_PARTIAL;
	}
	pthread_mutex_unlock(&w.mu);
done:
	tw_notify_close(n);
	for (size_t i = 0; i < nsubs; i++)
		free(argvbufs[i]);
	free(msgbuf);
	free(mimebuf);
	return ret;
}

static int status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = NULL;
	struct tw_notify_outbox_stats st;
	struct tw_err err = { 0 };
	char a[32], b[32], path[4200];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			state = optarg;
			break;
		case 'h':
			usage_status(stdout);
			return TW_EXIT_OK;
		default:
			return tw_cli_getopt_error(CMD, c, argv);
		}
	}
	if (optind != argc)
		return tw_cli_usage_error(CMD, "status takes no arguments besides --state DIR");
	if (!state)
		return tw_cli_usage_error(CMD, "--state DIR is required");
	if (tw_notify_outbox_stat(state, &st, &err)) {
		fprintf(stderr, "trailwatch notify: %s%s\n", err.msg,
			err.rc == TW_ENOENT ? " (nothing was ever published with this --state)" : "");
		return TW_EXIT_FAIL;
	}
	printf("%-14s %s/outbox.log (%s)\n", "outbox", state, tw_cli_fmt_bytes(st.bytes, a, sizeof a));
	printf("%-14s %s\n", "published", tw_cli_fmt_count(st.published, a, sizeof a));
	printf("%-14s %s\n", "delivered", tw_cli_fmt_count(st.delivered, a, sizeof a));
	printf("%-14s %s\n", "dead-lettered", tw_cli_fmt_count(st.dead, a, sizeof a));
	printf("%-14s %s deliveries of %s messages\n", "pending", tw_cli_fmt_count(st.pending, a, sizeof a),
	       tw_cli_fmt_count(st.messages, b, sizeof b));
	if (st.pending) {
		char ts[TW_TIME_BUFSZ];
		tw_time_format(st.oldest_ms, ts);
		printf("%-14s %s\n", "oldest pending", ts);
	}
	snprintf(path, sizeof path, "%s/dead-letters.jsonl", state);
	if (!access(path, F_OK))
		printf("%-14s %s\n", "dead letters", path);
	return st.pending || st.dead ? TW_EXIT_PARTIAL : TW_EXIT_OK;
}

int tw_cli_notify(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TW_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return TW_EXIT_OK;
	}
	if (!strcmp(argv[1], "publish"))
		return publish(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return status(argc - 1, argv + 1);
	return tw_cli_usage_error(CMD, "unknown subcommand '%s' (expected publish or status)", argv[1]);
}
