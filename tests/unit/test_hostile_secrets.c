/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_hostile_secrets.c: secrets and permissions, through the real binary ($TW_BIN).
 * A store made by `trailwatch run --config` (files source, a metric alarm, an event rule, a maildir
 * and a file subscription, a log file) under umask 022 holds only 0600 files and 0700 directories.
 * A recognisable SMTP password (from the environment) and Kafka SASL password never appear in
 * `config check` output, in the run's log and stderr, or in any file of the store, even when the
 * SMTP server refuses the login. `run` warns, as `config check` does, about a world-readable
 * config naming secrets. TLS certificates are verified unless asked otherwise (HTTPS and SMTP
 * against the local test servers with a self-signed certificate). `exec` subscriptions get their
 * arguments literally: no shell sees ';', '$(...)', backquotes or '*'. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/hostile.h"
#include "tests/helpers/pyserver.h"

#define CANARY_SMTP "Smtp-Canary-5e1f0a"
#define CANARY_KAFKA "Kafka-Canary-93b7c2"

/* One CloudTrail record at 10:MM:SS with eventName name and errorCode error (NULL: none). */
static void rec(FILE *f, int min, int sec, const char *name, const char *error, int id)
{
	fprintf(f,
		"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::111122223333:"
		"user/mallory\",\"accountId\":\"111122223333\",\"userName\":\"mallory\"},\"eventTime\":"
		"\"2026-11-02T10:%02d:%02dZ\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"%s\","
		"\"awsRegion\":\"eu-west-1\",\"sourceIPAddress\":\"198.51.100.7\",%s%s%s\"eventID\":"
		"\"00000000-0000-4000-8000-%012d\",\"recipientAccountId\":\"111122223333\"}\n",
		min, sec, name, error ? "\"errorCode\":\"" : "", error ? error : "", error ? "\"," : "", id);
}

/* The records: five AccessDenied calls at 10:12 (the CIS unauthorized-calls metric, alarm fires),
 * a StopLogging (the event rule), one call a minute 10:00-10:29 around them. */
static char *write_records(const char *dir)
{
	char *path = tw_test_join(dir, "records.json");
	FILE *f = fopen(path, "w");
	int id = 1;

	cr_assert_not_null(f);
	for (int m = 0; m < 30; m++)
		rec(f, m, 1, "GetUser", NULL, id++);
	for (int i = 0; i < 5; i++)
		rec(f, 12, 10 + i, "DeleteUserPolicy", "AccessDenied", id++);
	rec(f, 15, 0, "StopLogging", NULL, id++);
	fclose(f);
	return path;
}

/* Mode problems under root (recursively): appends "path mode" lines to out. */
static void modes(const char *path, char *out, size_t outsz, int *nfiles, int *ndirs)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;

	cr_assert_eq(lstat(path, &sb), 0, "%s: %s", path, strerror(errno));
	if (S_ISDIR(sb.st_mode)) {
		(*ndirs)++;
		if ((sb.st_mode & 07777) != 0700)
			snprintf(out + strlen(out), outsz - strlen(out), "  dir  %04o %s\n", sb.st_mode & 07777, path);
		d = opendir(path);
		cr_assert_not_null(d);
		while ((e = readdir(d))) {
			char *p;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			p = tw_test_join(path, e->d_name);
			modes(p, out, outsz, nfiles, ndirs);
			free(p);
		}
		closedir(d);
	} else {
		(*nfiles)++;
		if (S_ISREG(sb.st_mode) && (sb.st_mode & 07777) != 0600)
			snprintf(out + strlen(out), outsz - strlen(out), "  file %04o %s\n", sb.st_mode & 07777, path);
	}
}

/* Every file and directory trailwatch makes in the store, under umask 022: 0600 and 0700. The
 * config puts everything in the store: metrics, alarms state and history, anomalies, the notifier
 * state (outbox, dead letters), the maildir, a file subscription, the quarantine, the log. */
Test(hostile_secrets, store_files_are_0600_and_directories_0700_under_umask_022, .timeout = 120)
{
	char *dir = tw_test_tmpdir();
	char *store = tw_test_join(dir, "store");
	char *records = write_records(dir);
	char *bad = tw_test_write_str(dir, "bad.json", "{\"eventVersion\":\"1.08\",\"eventTime\":\"nope\"}\n");
	char text[8192], *cfg, problems[16384] = "";
	int nfiles = 0, ndirs = 0;
	struct tw_hostile_run r;

	snprintf(text, sizeof text,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\",\"%s\"]}}],"
		 "\"log\":{\"file\":\"%s/trailwatch.log\"},"
		 "\"metrics\":{\"period\":\"1m\",\"lateness\":\"1m\"},"
		 "\"alarms\":[{\"name\":\"denied-burst\",\"metric\":\"unauthorized_api_calls_metric\",\"statistic\":\"Sum\","
		 "\"period\":\"5m\",\"threshold\":3,\"comparison\":\"GreaterThanOrEqualToThreshold\","
		 "\"treat_missing_data\":\"notBreaching\",\"alarm_actions\":[\"alarms\"]}],"
		 "\"rules\":[{\"name\":\"stop-logging\",\"pattern\":\"{ $.eventName = StopLogging }\",\"topic\":\"alarms\"}],"
		 "\"notifier\":{\"group_wait\":\"0s\",\"topics\":[{\"name\":\"alarms\"}],\"subscriptions\":["
		 "{\"topic\":\"alarms\",\"protocol\":\"maildir\",\"endpoint\":\"%s/mail\"},"
		 "{\"topic\":\"alarms\",\"protocol\":\"file\",\"endpoint\":\"%s/notifications.jsonl\"}]}}",
		 store, records, bad, dir, store, store);
	cfg = tw_test_write_str(dir, "tw.json", text);
	{
		const char *argv[] = { tw_test_bin(), "run", "--config", cfg, "--exit-at-end", NULL };
		tw_hostile_run(&r, argv, NULL, 022, 90);
		cr_assert(!r.timed_out && r.status < 2, "run: exit %d: %s", r.status, r.err);
		tw_hostile_run_free(&r);
	}
	{ /* the mails exist: the maildir was made by the run */
		char *newdir = tw_test_join(store, "mail/new");
		cr_assert_eq(access(newdir, F_OK), 0, "no maildir: the alarm or the rule did not publish");
		free(newdir);
	}
	modes(store, problems, sizeof problems, &nfiles, &ndirs);
	{ /* the log file sits beside the store (the store directory is the run's to create) */
		char *logp = tw_test_join(dir, "trailwatch.log");
		int nf = 0, nd = 0;
		modes(logp, problems, sizeof problems, &nf, &nd);
		cr_expect_eq(nf, 1);
		free(logp);
	}
	cr_expect_gt(nfiles, 8, "%d files", nfiles);
	cr_expect_gt(ndirs, 4, "%d directories", ndirs);
	cr_expect_str_empty(problems, "modes other than 0600 / 0700 (of %d files, %d dirs):\n%s", nfiles, ndirs,
			    problems);
	free(cfg);
	free(records);
	free(bad);
	free(store);
	tw_test_tmpdir_free(dir);
}

/* 1 if any file under path holds needle. */
static int tree_contains(const char *path, const char *needle, char *where, size_t wsz)
{
	struct stat sb;
	int found = 0;

	if (lstat(path, &sb) != 0)
		return 0;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		if (!d)
			return 0;
		while (!found && (e = readdir(d))) {
			char *p;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			p = tw_test_join(path, e->d_name);
			found = tree_contains(p, needle, where, wsz);
			free(p);
		}
		closedir(d);
	} else if (S_ISREG(sb.st_mode)) {
		size_t n;
		char *text = tw_test_read_file(path, &n);
		if (text && tw_test_contains(text, n, needle)) {
			snprintf(where, wsz, "%s", path);
			found = 1;
		}
		free(text);
	}
	return found;
}

/* The SMTP password (env) and the Kafka SASL password (file) never leak: not in `config check`
 * (text or JSON), not in the log or stderr of a run whose SMTP server refuses the login (debug
 * level), not in any file of the store (outbox, dead letters). The refusal itself is reported. */
Test(hostile_secrets, secrets_never_appear_in_output_logs_or_the_store, .timeout = 120)
{
	char *dir = tw_test_tmpdir();
	char *store = tw_test_join(dir, "store"), *smtp_out = tw_test_join(dir, "smtp");
	char *records = write_records(dir);
	char *kpw = tw_test_write_str(dir, "kafka.pw", CANARY_KAFKA "\n");
	char text[8192], *cfg_check, *cfg_run, where[4096] = "";
	const char *env[] = { "TW_HOSTILE_SMTP_PW=" CANARY_SMTP, NULL };
	struct tw_test_server srv;
	struct tw_hostile_run r;

	tw_test_need_python("aiosmtpd");
	cr_assert_eq(mkdir(smtp_out, 0700), 0);
	chmod(kpw, 0600);
	/* config check on a config with both secrets (Kafka is never contacted by check) */
	snprintf(text, sizeof text,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"kafka\",\"kafka\":{\"brokers\":\"127.0.0.1:1\",\"group\":\"g\","
		 "\"topics\":[\"t\"],\"properties\":{\"security.protocol\":\"SASL_PLAINTEXT\",\"sasl.mechanism\":\"PLAIN\","
		 "\"sasl.username\":\"u\",\"sasl.password\":{\"file\":\"%s\"}}}}],"
		 "\"notifier\":{\"topics\":[{\"name\":\"a\"}],\"subscriptions\":[{\"topic\":\"a\",\"protocol\":\"email\","
		 "\"endpoint\":\"secops@example.com\",\"smtp\":{\"url\":\"smtp://127.0.0.1:2\",\"from\":\"tw@example.com\","
		 "\"user\":\"tw\",\"password\":{\"env\":\"TW_HOSTILE_SMTP_PW\"},\"starttls\":\"none\"}}]}}",
		 store, kpw);
	cfg_check = tw_test_write_str(dir, "check.json", text);
	for (int i = 0; i < 2; i++) {
		const char *argv[] = { tw_test_bin(), "config", "check", "--format", i ? "json" : "text", cfg_check,
				       NULL };
		tw_hostile_run(&r, argv, env, 077, 30);
		cr_assert_lt(r.status, 2, "config check: %s", r.err);
		cr_expect(tw_test_contains(r.out, r.nout, "TW_HOSTILE_SMTP_PW"), "the reference is shown: %s", r.out);
		cr_expect(!tw_test_contains(r.out, r.nout, CANARY_SMTP) && !tw_test_contains(r.err, r.nerr, CANARY_SMTP),
			  "SMTP password printed");
		cr_expect(!tw_test_contains(r.out, r.nout, CANARY_KAFKA) && !tw_test_contains(r.err, r.nerr, CANARY_KAFKA),
			  "Kafka password printed");
		tw_hostile_run_free(&r);
	}

	/* a run whose SMTP server refuses that password */
	{
		const char *args[] = { "--out", smtp_out, "--auth", "tw:another-password", NULL };
		tw_test_server_start(&srv, "smtp_server.py", args);
	}
	snprintf(text, sizeof text,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\"]}}],"
		 "\"log\":{\"file\":\"%s/tw.log\",\"level\":\"debug\"},"
		 "\"rules\":[{\"name\":\"stop-logging\",\"pattern\":\"{ $.eventName = StopLogging }\",\"topic\":\"a\"}],"
		 "\"notifier\":{\"group_wait\":\"0s\",\"topics\":[{\"name\":\"a\"}],\"subscriptions\":[{\"topic\":\"a\","
		 "\"protocol\":\"email\",\"endpoint\":\"secops@example.com\",\"retry\":{\"num_retries\":0},"
		 "\"smtp\":{\"url\":\"smtp://127.0.0.1:%d\",\"from\":\"tw@example.com\",\"user\":\"tw\","
		 "\"password\":{\"env\":\"TW_HOSTILE_SMTP_PW\"},\"starttls\":\"none\"}}]}}",
		 store, records, dir, srv.port);
	cfg_run = tw_test_write_str(dir, "run.json", text);
	{
		const char *argv[] = { tw_test_bin(), "run", "--config", cfg_run, "--exit-at-end", NULL };
		tw_hostile_run(&r, argv, env, 077, 90);
	}
	tw_test_server_stop(&srv);
	cr_assert(!r.timed_out, "run hung: %s", r.err);
	cr_expect(!tw_test_contains(r.out, r.nout, CANARY_SMTP) && !tw_test_contains(r.err, r.nerr, CANARY_SMTP),
		  "SMTP password on the run's output");
	cr_expect(!tree_contains(dir, CANARY_SMTP, where, sizeof where), "SMTP password written to %s", where);
	cr_expect(!tree_contains(dir, CANARY_KAFKA, where, sizeof where) ||
			  !strcmp(where + strlen(where) - 8, "kafka.pw"),
		  "Kafka password written to %s", where);
	{ /* the refusal was reported somewhere a person looks: the log or the dead letters */
		char *logp = tw_test_join(dir, "tw.log");
		size_t n;
		char *log = tw_test_read_file(logp, &n);
		cr_assert_not_null(log);
		cr_expect(tree_contains(store, "535", where, sizeof where) || tw_test_contains(log, n, "535") ||
				  tree_contains(store, "uthentication", where, sizeof where),
			  "the login refusal is nowhere: log %s", log);
		free(log);
		free(logp);
	}
	tw_hostile_run_free(&r);
	free(cfg_check);
	free(cfg_run);
	free(kpw);
	free(records);
	free(smtp_out);
	free(store);
	tw_test_tmpdir_free(dir);
}

/* `run --config` on a world-readable config that names a secret logs the same warning `config
 * check` prints; the same config made 0600 gives no such warning. */
Test(hostile_secrets, run_warns_about_a_world_readable_config_naming_secrets, .timeout = 60)
{
	char *dir = tw_test_tmpdir();
	char *store = tw_test_join(dir, "store");
	char *records = write_records(dir);
	char text[4096], *cfg;
	const char *env[] = { "TW_HOSTILE_SMTP_PW=x", NULL };
	struct tw_hostile_run r;

	snprintf(text, sizeof text,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\"]}}],"
		 "\"notifier\":{\"topics\":[{\"name\":\"a\"}],\"subscriptions\":[{\"topic\":\"a\",\"protocol\":\"email\","
		 "\"endpoint\":\"secops@example.com\",\"smtp\":{\"url\":\"smtp://127.0.0.1:2\",\"from\":\"tw@example.com\","
		 "\"user\":\"tw\",\"password\":{\"env\":\"TW_HOSTILE_SMTP_PW\"}}}]}}",
		 store, records);
	cfg = tw_test_write_str(dir, "tw.json", text);
	for (int i = 0; i < 2; i++) {
		const char *argv[] = { tw_test_bin(), "run", "--config", cfg, "--exit-at-end", NULL };
		cr_assert_eq(chmod(cfg, i ? 0600 : 0644), 0);
		tw_hostile_run(&r, argv, env, 022, 60);
		cr_assert(!r.timed_out && r.status < 2, "run: exit %d: %s", r.status, r.err);
		if (i == 0)
			cr_expect(tw_test_contains(r.err, r.nerr, "readable by every user (mode 0644) and names 1 secret"),
				  "no warning: %s", r.err);
		else
			cr_expect(!tw_test_contains(r.err, r.nerr, "readable by every user"), "%s", r.err);
		tw_hostile_run_free(&r);
	}
	free(cfg);
	free(records);
	free(store);
	tw_test_tmpdir_free(dir);
}

/* HTTPS and SMTP (STARTTLS) to servers with a self-signed certificate: `notify publish` refuses by
 * default (the delivery is dead-lettered, exit 1, the reason names the certificate problem), and
 * delivers with --ca-file naming that certificate, or with the explicit --insecure. */
Test(hostile_secrets, tls_certificates_are_verified_unless_told_otherwise, .timeout = 120)
{
	char *dir = tw_test_tmpdir();
	char *cert = tw_test_join(dir, "cert.pem"), *key = tw_test_join(dir, "key.pem");
	char *http_out = tw_test_join(dir, "http"), *smtp_out = tw_test_join(dir, "smtp");
	struct tw_test_server hs, ss;
	char url[128], smtp[128];

	tw_test_need_python("aiosmtpd");
	tw_test_make_cert(dir);
	cr_assert_eq(mkdir(http_out, 0700), 0);
	cr_assert_eq(mkdir(smtp_out, 0700), 0);
	{
		const char *args[] = { "--out", http_out, "--tls", cert, key, NULL };
		tw_test_server_start(&hs, "http_server.py", args);
	}
	{
		const char *args[] = { "--out", smtp_out, "--tls", cert, key, "--require-tls", NULL };
		tw_test_server_start(&ss, "smtp_server.py", args);
	}
	snprintf(url, sizeof url, "https://localhost:%d/hook", hs.port);
	snprintf(smtp, sizeof smtp, "smtp://localhost:%d", ss.port);
	for (int mode = 0; mode < 3; mode++) { /* 0 default, 1 --ca-file, 2 --insecure */
		char state[64], sub_mail[] = "email:secops@example.com";
		char *sd;
		snprintf(state, sizeof state, "state%d", mode);
		sd = tw_test_join(dir, state);
		const char *argv[32];
		size_t k = 0;
		struct tw_hostile_run r;
		argv[k++] = tw_test_bin();
		argv[k++] = "notify";
		argv[k++] = "publish";
		argv[k++] = "alarms";
		argv[k++] = "--state";
		argv[k++] = sd;
		argv[k++] = "--sub";
		argv[k++] = url;
		argv[k++] = "--sub";
		argv[k++] = sub_mail;
		argv[k++] = "--smtp";
		argv[k++] = smtp;
		argv[k++] = "--from";
		argv[k++] = "tw@example.com";
		argv[k++] = "--retries";
		argv[k++] = "0";
		argv[k++] = "--timeout";
		argv[k++] = "5s";
		argv[k++] = "--wait";
		argv[k++] = "30";
		argv[k++] = "--message";
		argv[k++] = "tls check";
		if (mode == 1) {
			argv[k++] = "--ca-file";
			argv[k++] = cert;
		} else if (mode == 2) {
			argv[k++] = "--insecure";
		}
		argv[k] = NULL;
		tw_hostile_run(&r, argv, NULL, 077, 60);
		cr_assert(!r.timed_out, "publish hung: %s", r.err);
		if (mode == 0) {
			char *dl = tw_test_join(sd, "dead-letters.jsonl");
			size_t n;
			char *text = tw_test_read_file(dl, &n);
			cr_expect_eq(r.status, 1, "untrusted certificate accepted: exit %d: %s", r.status, r.err);
			cr_assert_not_null(text, "no dead letters: %s", r.err);
			cr_expect_eq(tw_test_count_lines(text, n), 2, "both refused: %s", text);
			cr_expect(tw_test_contains(text, n, "certificate") || tw_test_contains(text, n, "SSL"), "%s", text);
			free(text);
			free(dl);
		} else {
			cr_expect_eq(r.status, 0, "mode %d: exit %d: %s", mode, r.status, r.err);
		}
		tw_hostile_run_free(&r);
		free(sd);
	}
	tw_test_server_stop(&hs);
	tw_test_server_stop(&ss);
	free(cert);
	free(key);
	free(http_out);
	free(smtp_out);
	tw_test_tmpdir_free(dir);
}

/* An exec subscription's arguments with shell syntax reach the program literally: the program
 * (tests/tools/exec_sink.py) records its argv; no file named by the would-be commands exists. */
Test(hostile_secrets, exec_subscriptions_run_without_a_shell, .timeout = 60)
{
	char *dir = tw_test_tmpdir();
	char *out = tw_test_join(dir, "out"), *state = tw_test_join(dir, "state");
	char *sink = tw_test_join(tw_test_src(), "tests/tools/exec_sink.py");
	char spec[4096], *rec, *p1, *p2, *p3;
	size_t n;
	struct tw_hostile_run r;

	tw_test_need_python("json");
	cr_assert_eq(mkdir(out, 0700), 0);
	p1 = tw_test_join(dir, "semi");
	p2 = tw_test_join(dir, "dollar");
	p3 = tw_test_join(dir, "tick");
	snprintf(spec, sizeof spec, "exec:/usr/bin/python3,%s,%s,0,x; touch %s,$(touch %s),`touch %s`,*,$HOME,a b",
		 sink, out, p1, p2, p3);
	{
		const char *argv[] = { tw_test_bin(), "notify", "publish", "alarms", "--state", state, "--sub", spec,
				       "--message", "m", "--wait", "30", NULL };
		tw_hostile_run(&r, argv, NULL, 077, 45);
	}
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	tw_hostile_run_free(&r);
	cr_expect_neq(access(p1, F_OK), 0, "';' ran a command");
	cr_expect_neq(access(p2, F_OK), 0, "'$(...)' ran a command");
	cr_expect_neq(access(p3, F_OK), 0, "backquotes ran a command");
	{
		char *f = tw_test_join(out, "0001.json"), want[4096];
		rec = tw_test_read_file(f, &n);
		cr_assert_not_null(rec, "the program did not run");
		/* json.dump's default separators: ", " between items */
		snprintf(want, sizeof want, "\"argv\": [\"x; touch %s\", \"$(touch %s)\", \"`touch %s`\", \"*\", \"$HOME\", "
					    "\"a b\"]", p1, p2, p3);
		cr_expect(tw_test_contains(rec, n, want), "argv: %s\nwant: %s", rec, want);
		free(f);
	}
	free(rec);
	free(p1);
	free(p2);
	free(p3);
	free(sink);
	free(out);
	free(state);
	tw_test_tmpdir_free(dir);
}
