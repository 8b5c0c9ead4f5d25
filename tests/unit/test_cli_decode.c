/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_decode.c: `trailwatch decode` as a user runs it ($TW_BIN): exit codes, the
 * reject lines on stderr, the quarantine file, --raw giving back the original bytes, stdin input,
 * usage errors, write errors and a closed pipe. Inputs are written by each test into its own
 * temporary directory. Outputs are checked by parsing them with jansson. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"

/* A compact CloudTrail record as CloudTrail writes them. */
#define CT_REC(id, name, time)                                                                          \
	"{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"principalId\":\"AIDAEXAMPLE\","     \
	"\"arn\":\"arn:aws:iam::123456789012:user/alice\",\"accountId\":\"123456789012\",\"accessKeyId\":"     \
	"\"AKIAEXAMPLE\",\"userName\":\"alice\"},\"eventTime\":\"" time "\",\"eventSource\":\"iam.amazonaws.com\"," \
	"\"eventName\":\"" name "\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"203.0.113.7\","         \
	"\"userAgent\":\"aws-cli/2.15.0\",\"requestParameters\":{\"userName\":\"bob\"},\"responseElements\":null," \
	"\"requestID\":\"req-" id "\",\"eventID\":\"" id "\",\"readOnly\":false,\"eventType\":\"AwsApiCall\","  \
	"\"managementEvent\":true,\"recipientAccountId\":\"123456789012\",\"eventCategory\":\"Management\"}"

#define GOOD1 CT_REC("11111111-1111-4111-8111-111111111111", "CreateAccessKey", "2026-11-02T10:00:00Z")
#define GOOD2 CT_REC("22222222-2222-4222-8222-222222222222", "DeleteUser", "2026-11-02T10:05:00Z")
#define BAD "{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-11-02T10:01:00Z\",\"eventName\":"
/* Valid JSON, clearly CloudTrail, but its eventTime is not a date: the decoder rejects it whole. */
#define BADTIME "{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-13-45T00:00:00Z\",\"eventName\":\"X\"}"

static char *dir;

static void setup(void)
{
	dir = tw_test_tmpdir();
}

static void teardown(void)
{
	tw_test_tmpdir_free(dir);
	dir = NULL;
}

TestSuite(cli_decode, .init = setup, .fini = teardown);

/* Parses each stdout line; returns the array of objects (owned). */
static json_t *parse_lines(const char *p, size_t n)
{
	json_t *arr = json_array();
	const char *end = p + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		json_error_t je;
		json_t *j;
		cr_assert_not_null(nl, "last output line has no newline");
		j = json_loadb(p, (size_t)(nl - p), 0, &je);
		cr_assert_not_null(j, "stdout line is not JSON (%s): %.*s", je.text, (int)(nl - p), p);
		json_array_append_new(arr, j);
		p = nl + 1;
	}
	return arr;
}

static const char *get_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	cr_assert(json_is_string(v), "\"%s\" missing or not a string", key);
	return json_string_value(v);
}

static void run_decode(struct tw_test_run *r, const char *stdin_path, const char *a1, const char *a2,
		       const char *a3, const char *a4)
{
	const char *argv[8] = { tw_test_bin(), "decode", a1, a2, a3, a4, NULL, NULL };
	tw_test_run(r, stdin_path, argv);
}

Test(cli_decode, good_records_exit_0_with_one_json_line_each)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "trail.jsonl", GOOD1 "\n" GOOD2 "\n");
	json_t *ev;

	run_decode(&r, NULL, in, NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 2);
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "kind"), "cloudtrail");
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "eventName"), "CreateAccessKey");
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "time"), "2026-11-02T10:00:00Z");
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "principal"), "arn:aws:iam::123456789012:user/alice");
	cr_assert_str_eq(get_str(json_array_get(ev, 1), "eventID"), "22222222-2222-4222-8222-222222222222");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(ev, 1), "line")), 2);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(ev, 1), "index")), 1);
	cr_assert_null(json_object_get(json_array_get(ev, 0), "raw"));
	/* The summary counts them. */
	cr_assert(strstr(r.err, "events:") && strstr(r.err, "cloudtrail 2"), "summary: %s", r.err);
	json_decref(ev);
	tw_test_run_free(&r);
	free(in);
}

Test(cli_decode, bad_record_exits_1_and_names_file_and_line)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "mixed.jsonl", GOOD1 "\n" BAD "\n" GOOD2 "\n");
	char want[4200];
	json_t *ev;

	run_decode(&r, NULL, in, NULL, NULL, NULL);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 2, "the good records around a bad one are still decoded");
	cr_assert_str_eq(get_str(json_array_get(ev, 1), "eventName"), "DeleteUser");
	snprintf(want, sizeof want, "trailwatch: %s: line 2 (record 2): ", in);
	cr_assert(strstr(r.err, want), "want \"%s\" in stderr:\n%s", want, r.err);
	cr_assert(strstr(r.err, "quarantined: 1"), "summary counts it: %s", r.err);
	json_decref(ev);
	tw_test_run_free(&r);
	free(in);
}

Test(cli_decode, quarantine_file_keeps_the_rejected_bytes)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "mixed.jsonl", GOOD1 "\n" BAD "\n" GOOD2 "\n");
	char *q = tw_test_join(dir, "quarantine.jsonl");
	char *qtext;
	size_t qn;
	json_t *rows, *row;

	run_decode(&r, NULL, "--quarantine", q, in, NULL);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	qtext = tw_test_read_file(q, &qn);
	cr_assert_not_null(qtext, "quarantine file not written");
	rows = parse_lines(qtext, qn);
	cr_assert_eq(json_array_size(rows), 1, "%s", qtext);
	row = json_array_get(rows, 0);
	cr_assert_str_eq(get_str(row, "source"), in);
	cr_assert_eq(json_integer_value(json_object_get(row, "line")), 2);
	cr_assert_eq(json_integer_value(json_object_get(row, "index")), 1);
	/* The bad record starts right after the first line and its newline. */
	cr_assert_eq(json_integer_value(json_object_get(row, "offset")), (json_int_t)strlen(GOOD1 "\n"));
	cr_assert_gt(strlen(get_str(row, "reason")), 0);
	cr_assert_str_eq(get_str(row, "bytes"), BAD);
	cr_assert(json_is_false(json_object_get(row, "truncated")));
	json_decref(rows);
	free(qtext);
	tw_test_run_free(&r);
	free(in);
	free(q);
}

Test(cli_decode, quarantine_keeps_a_prefix_of_huge_records)
{
	struct tw_test_run r;
	size_t n = 100 * 1024;
	char *big = malloc(n + 2), *path = tw_test_join(dir, "big.jsonl"), *q = tw_test_join(dir, "q.jsonl");
	char *qtext;
	size_t qn;
	json_t *rows;
	const char *bytes;

	/* A CloudTrail record with a bad eventTime and a 100 KiB field: valid JSON that the decoder
	 * rejects whole, so the sink sees all of its bytes and must cut them at 64 KiB. */
	{
		static const char head[] = "{\"eventVersion\":\"1.08\",\"eventTime\":\"yesterday\",\"eventName\":\"X\",\"pad\":\"";
		memcpy(big, head, sizeof head - 1);
		memset(big + sizeof head - 1, 'a', n - (sizeof head - 1) - 2);
		memcpy(big + n - 2, "\"}", 2);
	}
	big[n] = '\n';
	tw_test_write_file(path, big, n + 1);
	run_decode(&r, NULL, "--quarantine", q, path, NULL);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	qtext = tw_test_read_file(q, &qn);
	cr_assert_not_null(qtext);
	rows = parse_lines(qtext, qn);
	cr_assert_eq(json_array_size(rows), 1);
	bytes = get_str(json_array_get(rows, 0), "bytes");
	/* The sink keeps at most 64 KiB, a prefix of the record. (ingest/source.c currently hands a
	 * sink only the first 4 KiB of a rejected record, without saying it cut them; when that
	 * changes, the 64 KiB cut and "truncated" are checked here.) */
	cr_assert_gt(strlen(bytes), 100);
	cr_assert_leq(strlen(bytes), 64 * 1024);
	cr_assert_eq(memcmp(bytes, big, strlen(bytes)), 0, "bytes must be the start of the record");
	if (strlen(bytes) == 64 * 1024)
		cr_assert(json_is_true(json_object_get(json_array_get(rows, 0), "truncated")));
	json_decref(rows);
	free(qtext);
	free(big);
	free(path);
	free(q);
	tw_test_run_free(&r);
}

/* Unusual but valid spacing and escapes: only a byte-for-byte copy reproduces them. */
#define RAWREC \
	"{\"eventVersion\":\"1.08\",  \"userIdentity\" : {\"type\":\"Root\",\"arn\":\"arn:aws:iam::123456789012:root\"," \
	"\"accountId\":\"123456789012\"},\"eventTime\":\"2026-11-02T10:00:00Z\",\"eventSource\":\"signin.amazonaws.com\"," \
	"\"eventName\":\"ConsoleLogin\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"198.51.100.9\"," \
	"\"userAgent\":\"Mozilla/5.0 \\\"quoted\\\" caf\\u00e9 \xe2\x9c\x93\",\"requestParameters\":null," \
	"\"responseElements\":{\"ConsoleLogin\":\"Success\"},\"additionalEventData\":{\"MFAUsed\":\"No\"," \
	"\"n\":1.50e+3},\"eventID\":\"33333333-3333-4333-8333-333333333333\",\"readOnly\":false," \
	"\"eventType\":\"AwsConsoleSignIn\",\"recipientAccountId\":\"123456789012\"}"

Test(cli_decode, raw_gives_back_the_original_bytes)
{
	static const char rec[] = RAWREC;
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "one.jsonl", GOOD1 "\n" RAWREC "\n");
	static const char key[] = ",\"raw\":";
	const char *line2, *at, *end;

	run_decode(&r, NULL, "--raw", in, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	line2 = memchr(r.out, '\n', r.nout);
	cr_assert_not_null(line2);
	line2++;
	end = memchr(line2, '\n', r.nout - (size_t)(line2 - r.out));
	cr_assert_not_null(end);
	at = memmem(line2, (size_t)(end - line2), key, sizeof key - 1);
	cr_assert_not_null(at, "no raw in %.*s", (int)(end - line2), line2);
	at += sizeof key - 1;
	/* raw is the last member: the record's bytes, then the closing brace of the event. */
	cr_assert_eq((size_t)(end - 1 - at), sizeof rec - 1, "raw length differs: %.*s", (int)(end - at), at);
	cr_assert_eq(memcmp(at, rec, sizeof rec - 1), 0, "raw differs: %.*s", (int)(end - at), at);
	cr_assert_eq(end[-1], '}');
	json_decref(parse_lines(r.out, r.nout));
	tw_test_run_free(&r);
	free(in);
}

Test(cli_decode, raw_of_a_pretty_printed_record_is_a_string_of_its_bytes)
{
	static const char rec[] = "{\n    \"eventVersion\": \"1.08\",\n    \"eventTime\": \"2026-11-02T10:00:00Z\",\n"
				  "    \"eventSource\": \"iam.amazonaws.com\",\n    \"eventName\": \"ListUsers\",\n"
				  "    \"awsRegion\": \"us-east-1\",\n    \"eventID\": \"44444444-4444-4444-8444-444444444444\",\n"
				  "    \"recipientAccountId\": \"123456789012\"\n  }";
	struct tw_test_run r;
	char *text = malloc(sizeof rec + 64), *path = tw_test_join(dir, "pretty.json");
	json_t *ev;
	int n;

	n = snprintf(text, sizeof rec + 64, "{\n  \"Records\": [\n  %s\n  ]\n}\n", rec);
	tw_test_write_file(path, text, (size_t)n);
	run_decode(&r, NULL, "--raw", path, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 1, "one event, on one line");
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "raw"), rec);
	json_decref(ev);
	tw_test_run_free(&r);
	free(text);
	free(path);
}

Test(cli_decode, reads_stdin_without_path_and_with_dash)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "in.jsonl", GOOD1 "\n" GOOD2 "\n");
	json_t *ev;

	run_decode(&r, in, NULL, NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 2);
	json_decref(ev);
	tw_test_run_free(&r);

	run_decode(&r, in, "-", NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 2);
	cr_assert_str_eq(get_str(json_array_get(ev, 1), "eventName"), "DeleteUser");
	json_decref(ev);
	tw_test_run_free(&r);
	free(in);
}

Test(cli_decode, reads_gzip_delivery_files)
{
	static const char body[] = "{\"Records\":[" GOOD1 "," GOOD2 "]}";
	struct tw_test_run r;
	char *path = tw_test_join(dir, "123456789012_CloudTrail_us-east-1_20261102T1005Z_abc.json.gz");
	json_t *ev;

	tw_test_write_gzip(path, body, sizeof body - 1);
	run_decode(&r, NULL, dir, NULL, NULL, NULL); /* a directory: walked */
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 2);
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "eventName"), "CreateAccessKey");
	json_decref(ev);
	tw_test_run_free(&r);
	free(path);
}

Test(cli_decode, missing_path_exits_1_and_still_decodes_the_others)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "ok.jsonl", GOOD1 "\n");
	char *missing = tw_test_join(dir, "no-such-file.json");
	json_t *ev;

	run_decode(&r, NULL, missing, in, NULL, NULL);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, missing), "stderr names the missing path: %s", r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 1);
	json_decref(ev);
	tw_test_run_free(&r);
	free(in);
	free(missing);
}

Test(cli_decode, usage_errors_exit_2)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "ok.jsonl", GOOD1 "\n");
	const char *bin = tw_test_bin();
	const char *bad[][4] = {
		{ "--no-such-option", in, NULL, NULL },
		{ "--threads", "many", in, NULL },
		{ "--max-record", "12Q", in, NULL },
		{ "--max-record", "10", in, NULL }, /* below the 1K minimum */
		{ in, "--quarantine", NULL, NULL }, /* option without its value */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		run_decode(&r, NULL, bad[i][0], bad[i][1], bad[i][2], bad[i][3]);
		cr_assert_eq(r.status, 2, "case %zu: exit %d, stderr: %s", i, r.status, r.err);
		cr_assert_eq(r.nout, 0, "case %zu: nothing on stdout on a usage error", i);
		cr_assert(strstr(r.err, "trailwatch decode: "), "case %zu: %s", i, r.err);
		if (i == 4)
			cr_assert(strstr(r.err, "option '--quarantine' needs a value"), "%s", r.err);
		if (i == 0)
			cr_assert(strstr(r.err, "unknown option '--no-such-option'"), "%s", r.err);
		tw_test_run_free(&r);
	}
	{
		const char *argv[] = { bin, "no-such-command", NULL };
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 2);
		cr_assert(strstr(r.err, "unknown command 'no-such-command'"), "%s", r.err);
		tw_test_run_free(&r);
	}
	{
		const char *argv[] = { bin, NULL };
		tw_test_run(&r, NULL, argv);
		cr_assert_eq(r.status, 2);
		cr_assert(strstr(r.err, "usage: trailwatch"), "%s", r.err);
		tw_test_run_free(&r);
	}
	free(in);
}

Test(cli_decode, sizes_accept_suffixes)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "ok.jsonl", GOOD1 "\n");
	char *big = tw_test_write_str(dir, "big.jsonl", GOOD1 "\n" GOOD2 "\n");

	run_decode(&r, NULL, "--max-record", "64K", in, NULL);
	cr_assert_eq(r.status, 0, "64K: exit %d, stderr: %s", r.status, r.err);
	tw_test_run_free(&r);
	run_decode(&r, NULL, "--max-inflated", "1G", in, NULL);
	cr_assert_eq(r.status, 0, "1G: exit %d, stderr: %s", r.status, r.err);
	tw_test_run_free(&r);
	run_decode(&r, NULL, "--max-record", "64KiB", big, NULL);
	cr_assert_eq(r.status, 0, "64KiB: exit %d, stderr: %s", r.status, r.err);
	tw_test_run_free(&r);
	run_decode(&r, NULL, "--max-record", "1.5M", big, NULL);
	cr_assert_eq(r.status, 2, "1.5M is not a size: exit %d", r.status);
	tw_test_run_free(&r);
	free(in);
	free(big);
}

Test(cli_decode, max_record_rejects_longer_records)
{
	struct tw_test_run r;
	size_t pad = 3000;
	size_t cap = 2 * sizeof(GOOD1) + pad + 64;
	char *rec = malloc(cap);
	char *path = tw_test_join(dir, "long.jsonl");
	json_t *ev;
	int n;

	/* GOOD2 with a 3000-byte field appended: valid, but over a 2K cap. */
	n = snprintf(rec, cap, "%.*s,\"pad\":\"%0*d\"}\n%s\n", (int)(sizeof(GOOD2) - 2), GOOD2,
		     (int)pad, 0, GOOD1);
	cr_assert(n > 0 && (size_t)n < cap);
	tw_test_write_file(path, rec, (size_t)n);
	run_decode(&r, NULL, "--max-record", "2K", path, NULL);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "line 1"), "%s", r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 1, "the short record after the long one is decoded");
	cr_assert_str_eq(get_str(json_array_get(ev, 0), "eventName"), "CreateAccessKey");
	json_decref(ev);
	tw_test_run_free(&r);

	run_decode(&r, NULL, "--max-record", "8K", path, NULL);
	cr_assert_eq(r.status, 0, "8K is enough: exit %d, stderr: %s", r.status, r.err);
	tw_test_run_free(&r);
	free(rec);
	free(path);
}

Test(cli_decode, reject_lines_are_capped_at_20)
{
	struct tw_test_run r;
	char *path = tw_test_join(dir, "bad.jsonl");
	FILE *f = fopen(path, "w");
	size_t lines = 0;
	const char *p;

	cr_assert_not_null(f);
	fputs(GOOD1 "\n", f);
	for (int i = 0; i < 25; i++)
		fputs(BADTIME "\n", f);
	fclose(f);
	run_decode(&r, NULL, "--quiet", path, NULL, NULL);
	cr_assert_eq(r.status, 1);
	for (p = r.err; (p = strstr(p, ": line ")); p++)
		lines++;
	cr_assert_eq(lines, 20, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "5 more rejected records not shown"), "stderr: %s", r.err);
	cr_assert(strstr(r.err, "line 21 (record 21)"), "%s", r.err);
	cr_assert_null(strstr(r.err, "line 22 (record 22)"), "%s", r.err);
	cr_assert_null(strstr(r.err, "events:"), "--quiet: no summary: %s", r.err);
	tw_test_run_free(&r);
	free(path);
}

Test(cli_decode, write_error_on_stdout_exits_3)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "ok.jsonl", GOOD1 "\n");
	const char *argv[] = { tw_test_bin(), "decode", in, NULL };

	if (access("/dev/full", W_OK))
		cr_skip_test("no /dev/full");
	tw_test_run_to(&r, NULL, "/dev/full", argv);
	cr_assert_eq(r.status, 3, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "stdout"), "%s", r.err);
	tw_test_run_free(&r);
	free(in);
}

Test(cli_decode, closed_pipe_ends_quietly)
{
	char *path = tw_test_join(dir, "many.jsonl");
	FILE *f = fopen(path, "w");
	int fds[2], errfd[2], st;
	char errbuf[4096];
	ssize_t en;
	pid_t pid;

	cr_assert_not_null(f);
	for (int i = 0; i < 3000; i++)
		fputs(GOOD1 "\n", f);
	fclose(f);
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(pipe(errfd), 0);
	close(fds[0]); /* the reader is gone before the first write, like `| head -0` */
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(errfd[1], 2);
		close(errfd[0]);
		execl(tw_test_bin(), "trailwatch", "decode", "--quiet", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	close(errfd[1]);
	/* Drain stderr to EOF (keeping the first bytes for the message) so the child never blocks. */
	en = 0;
	for (;;) {
		char tmp[4096];
		ssize_t k = read(errfd[0], tmp, sizeof tmp);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		if ((size_t)en < sizeof errbuf - 1) {
			size_t room = sizeof errbuf - 1 - (size_t)en;
			memcpy(errbuf + en, tmp, (size_t)k < room ? (size_t)k : room);
		}
		en += k;
	}
	close(errfd[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert_eq(WEXITSTATUS(st), 0);
	cr_assert_eq(en, 0, "nothing on stderr, got: %.*s", (int)(en < (ssize_t)sizeof errbuf ? en : (ssize_t)sizeof errbuf - 1), errbuf);
	free(path);
}

Test(cli_decode, help_and_version)
{
	struct tw_test_run r;
	const char *bin = tw_test_bin();
	const char *a1[] = { bin, "decode", "--help", NULL };
	const char *a2[] = { bin, "help", "decode", NULL };
	const char *a3[] = { bin, "--version", NULL };
	const char *a4[] = { bin, "--help", NULL };

	tw_test_run(&r, NULL, a1);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: trailwatch decode"), "%s", r.out);
	cr_assert(strstr(r.out, "--quarantine"));
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, a2);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: trailwatch decode"), "%s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, a3);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(strncmp(r.out, "trailwatch ", 11), 0, "%s", r.out);
	tw_test_run_free(&r);
	tw_test_run(&r, NULL, a4);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "decode"), "%s", r.out);
	tw_test_run_free(&r);
}

Test(cli_decode, summary_lists_top_principals_and_event_names)
{
	struct tw_test_run r;
	char *in = tw_test_write_str(dir, "s.jsonl", GOOD1 "\n" GOOD2 "\n" GOOD2 "\n");

	run_decode(&r, NULL, "--summary", in, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "top principals"), "%s", r.err);
	cr_assert(strstr(r.err, "3  arn:aws:iam::123456789012:user/alice"), "%s", r.err);
	cr_assert(strstr(r.err, "top event names"), "%s", r.err);
	/* DeleteUser (2) ranks before CreateAccessKey (1). */
	cr_assert(strstr(r.err, "DeleteUser") && strstr(r.err, "CreateAccessKey") &&
			  strstr(r.err, "DeleteUser") < strstr(r.err, "CreateAccessKey"),
		  "%s", r.err);
	tw_test_run_free(&r);
	free(in);
}

/* The committed samples: every record comes out, and every event of the incidents the generator
 * planted (samples/labels.jsonl, written by the generator, not by us) is there. 15,074 = 14,966
 * trail records (counted with Python's gzip+json when the samples were made) + 60 CloudTrail
 * records through CloudWatch Logs + 36 + 12 application log events. */
Test(cli_decode, decodes_the_samples_completely)
{
	struct tw_test_run r;
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	char *cw = tw_test_join(tw_test_src(), "samples/cloudwatch");
	char *labels_path = tw_test_join(tw_test_src(), "samples/labels.jsonl");
	char *labels;
	size_t nl, nlabels = 0;
	json_t *ev;
	json_t *ids = json_object();

	labels = tw_test_read_file(labels_path, &nl);
	if (!labels)
		cr_skip_test("no samples/ under TW_SRC");
	run_decode(&r, NULL, "--quiet", trail, cw, NULL);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	cr_assert_eq(r.nerr, 0, "%s", r.err);
	ev = parse_lines(r.out, r.nout);
	cr_assert_eq(json_array_size(ev), 15074);
	for (size_t i = 0; i < json_array_size(ev); i++) {
		json_t *id = json_object_get(json_array_get(ev, i), "eventID");
		if (json_is_string(id))
			json_object_set(ids, json_string_value(id), json_true());
	}
	{
		json_t *rows = parse_lines(labels, nl);
		for (size_t i = 0; i < json_array_size(rows); i++) {
			json_t *want = json_object_get(json_array_get(rows, i), "event_ids");
			for (size_t k = 0; k < json_array_size(want); k++) {
				const char *id = json_string_value(json_array_get(want, k));
				cr_assert_not_null(json_object_get(ids, id), "planted event %s missing", id);
				nlabels++;
			}
		}
		json_decref(rows);
	}
	cr_assert_eq(nlabels, 85 + 1 + 1 + 66 + 2 + 1 + 30, "labels.jsonl changed: update this test");
	json_decref(ids);
	json_decref(ev);
	free(labels);
	free(labels_path);
	free(trail);
	free(cw);
	tw_test_run_free(&r);
}
