/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cli_query.c: `trailwatch query`, `who` and `what` on a store of the committed
 * samples (samples/trail + samples/cloudwatch through `trailwatch ingest`): results checked against
 * samples/labels.jsonl (the planted incidents) and `trailwatch decode --raw`, golden outputs under
 * tests/golden/cli_query/, caret errors. TW_NOW fixes "now" for --since. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"

#define IVAN "arn:aws:iam::534439589175:user/ivan.jones"

struct env {
	char *tmp;   /* test directory */
	char *store; /* the store of the samples */
};

static void env_make(struct env *e)
{
	const char *bin = tw_test_bin();
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	char *cw = tw_test_join(tw_test_src(), "samples/cloudwatch");
	struct tw_test_run r;

	e->tmp = tw_test_tmpdir();
	e->store = tw_test_join(e->tmp, "store");
	const char *argv[] = { bin, "ingest", "--quiet", "--store", e->store, trail, cw, NULL };
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 0, "ingest: %d %s", r.status, r.err);
	tw_test_run_free(&r);
	free(trail);
	free(cw);
	setenv("TW_NOW", "2026-11-05T00:00:00Z", 1);
	setenv("COLUMNS", "120", 1);
	unsetenv("NO_COLOR");
}

static void env_free(struct env *e)
{
	free(e->store);
	tw_test_tmpdir_free(e->tmp);
}

static void run(struct tw_test_run *r, const char *const *argv, int want)
{
	tw_test_run(r, NULL, argv);
	cr_assert_eq(r->status, want, "%s: exit %d, want %d\nstderr: %s", argv[1], r->status, want, r->err);
}

/* The event ids of incident `kind` in samples/labels.jsonl (a JSON array, owned by the caller). */
static json_t *label_ids(const char *kind)
{
	char *path = tw_test_join(tw_test_src(), "samples/labels.jsonl");
	char *text = tw_test_read_file(path, NULL), *line, *save = NULL;
	json_t *ids = NULL;

	cr_assert(text);
	for (line = strtok_r(text, "\n", &save); line && !ids; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		cr_assert(o);
		if (!strcmp(json_string_value(json_object_get(o, "kind")), kind))
			ids = json_incref(json_object_get(o, "event_ids"));
		json_decref(o);
	}
	cr_assert(ids, "no incident %s", kind);
	free(text);
	free(path);
	return ids;
}

Test(cli_query, access_denied_burst_is_exactly_the_labelled_events)
{
	struct env e;
	struct tw_test_run r;
	json_t *ids = label_ids("access_denied_burst");
	size_t n = 0;
	int64_t last = 0;

	env_make(&e);
	const char *argv[] = { tw_test_bin(), "query", "-S", e.store, "filter principal = \"" IVAN "\" and errorCode = \"AccessDenied\"",
			       NULL };
	run(&r, argv, 0);
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *id;
		int found = 0;
		cr_assert(o, "not JSON: %s", line);
		id = json_string_value(json_object_get(o, "eventID"));
		cr_assert(id);
		for (size_t i = 0; i < json_array_size(ids); i++)
			found |= !strcmp(json_string_value(json_array_get(ids, i)), id);
		cr_assert(found, "%s is not in the incident", id);
		/* ascending time */
		const char *t = json_string_value(json_object_get(o, "time"));
		int64_t key = 0;
		cr_assert(t);
		for (const char *p = t; *p; p++)
			if (*p >= '0' && *p <= '9')
				key = key * 10 + (*p - '0');
		cr_assert_geq(key, last, "out of time order at %s", t);
		last = key;
		json_decref(o);
		n++;
	}
	cr_assert_eq(n, json_array_size(ids), "%zu events, the label has %zu", n, json_array_size(ids));
	tw_test_run_free(&r);
	json_decref(ids);
	env_free(&e);
}

Test(cli_query, stats_by_event_name_sums_to_the_store_and_matches_golden)
{
	struct env e;
	struct tw_test_run r;
	json_t *o;
	long long sum = 0;

	env_make(&e);
	const char *argv[] = { tw_test_bin(), "query", "-S", e.store, "--format", "json", "stats count(*) as n by eventName", NULL };
	run(&r, argv, 0);
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		o = json_loads(line, 0, NULL);
		cr_assert(o, "not JSON: %s", line);
		sum += json_integer_value(json_object_get(o, "n"));
		json_decref(o);
	}
	/* samples/README.md: 15,074 events decoded, 60 of them duplicates through CloudWatch Logs. */
	cr_assert_eq(sum, 15014);
	tw_test_run_free(&r);

	const char *top[] = { tw_test_bin(), "query", "-S", e.store, "--format", "csv",
			      "stats count(*) as n by eventName | sort n desc, eventName | limit 10", NULL };
	run(&r, top, 0);
	tw_test_golden("cli_query/top_events.csv", r.out, r.nout);
	tw_test_run_free(&r);

	const char *tab[] = { tw_test_bin(), "query", "-S", e.store, "--format", "table", "--since", "1d",
			      "filter errorCode = \"AccessDenied\" | stats count(*) as n by principal, bin(6h) | sort n desc, principal | limit 8",
			      NULL };
	run(&r, tab, 0);
	tw_test_golden("cli_query/denied_by_principal.txt", r.out, r.nout);
	tw_test_run_free(&r);
	env_free(&e);
}

Test(cli_query, event_formats_match_golden)
{
	struct env e;
	struct tw_test_run r;
	const char *q = "filter principal = \"" IVAN "\" | limit 6";

	env_make(&e);
	const char *j[] = { tw_test_bin(), "query", "-S", e.store, q, NULL };
	run(&r, j, 0);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 6);
	tw_test_golden("cli_query/ivan_first6.jsonl", r.out, r.nout);
	tw_test_run_free(&r);
	const char *t[] = { tw_test_bin(), "query", "-S", e.store, "--format", "table", q, NULL };
	run(&r, t, 0);
	cr_assert_eq(tw_test_count_lines(r.out, r.nout), 7);
	tw_test_golden("cli_query/ivan_first6.txt", r.out, r.nout);
	tw_test_run_free(&r);
	const char *c[] = { tw_test_bin(), "query", "-S", e.store, "--format", "csv", q, NULL };
	run(&r, c, 0);
	cr_assert(!strncmp(r.out, "time,principal,event,source,region,ip,error,resource\n", 53));
	tw_test_golden("cli_query/ivan_first6.csv", r.out, r.nout);
	tw_test_run_free(&r);
	/* A narrow terminal: every line fits in 80 columns (an ellipsis marks the cuts). */
	setenv("COLUMNS", "80", 1);
	run(&r, t, 0);
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t w = 0;
		for (const char *p = line; *p; p++)
			w += ((unsigned char)*p & 0xC0) != 0x80;
		cr_assert_leq(w, 80, "%zu columns: %s", w, line);
	}
	cr_assert(tw_test_contains(r.out, r.nout, "\xe2\x80\xa6"));
	tw_test_run_free(&r);
	env_free(&e);
}

Test(cli_query, raw_output_is_the_original_records)
{
	struct env e;
	struct tw_test_run r, d;
	char *trail = tw_test_join(tw_test_src(), "samples/trail");
	size_t n = 0;

	env_make(&e);
	const char *dec[] = { tw_test_bin(), "decode", "--raw", trail, NULL };
	run(&d, dec, 0);
	const char *argv[] = { tw_test_bin(), "query", "-S", e.store, "--raw", "filter principal = \"" IVAN "\"", NULL };
	run(&r, argv, 0);
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *needle;
		cr_assert_eq(line[0], '{');
		/* decode --raw embeds a JSON record verbatim as "raw":<record>. */
		cr_assert(asprintf(&needle, "\"raw\":%s}", line) > 0);
		cr_assert(tw_test_contains(d.out, d.nout, needle), "not a raw record of decode: %.200s", line);
		free(needle);
		n++;
	}
	cr_assert_eq(n, 123); /* ivan.jones: 85 in the incident + 38 ordinary calls (checked with zcat | jq) */
	tw_test_run_free(&r);
	tw_test_run_free(&d);
	free(trail);
	env_free(&e);
}

Test(cli_query, who_and_what_for_the_incidents)
{
	struct env e;
	struct tw_test_run r;

	env_make(&e);
	const char *who[] = { tw_test_bin(), "who", "svc-lambda-exec", "-S", e.store, "--event", "CreateAccessKey", NULL };
	run(&r, who, 0);
	cr_assert(tw_test_contains(r.out, r.nout, "arn:aws:iam::205380810795:user/trent.smith"), "%s", r.out);
	cr_assert(tw_test_contains(r.out, r.nout, "2026-11-03T20:51"), "%s", r.out);
	tw_test_golden("cli_query/who_svc_lambda_exec.txt", r.out, r.nout);
	tw_test_run_free(&r);

	const char *what[] = { tw_test_bin(), "what", "ivan.jones", "-S", e.store, "--from", "2026-11-02T05:00:00Z",
			       "--until", "2026-11-02T06:59:59Z", NULL };
	run(&r, what, 0);
	/* The burst: 85 AccessDenied calls in the 05:00 hour, marked '!' off a terminal. */
	cr_assert(tw_test_contains(r.out, r.nout, "2026-11-02T05:00Z      85     85!"), "%s", r.out);
	cr_assert(tw_test_contains(r.out, r.nout, "! 2026-11-02T05:46:40Z"), "%s", r.out);
	tw_test_golden("cli_query/what_ivan_jones.txt", r.out, r.nout);
	tw_test_run_free(&r);

	const char *none[] = { tw_test_bin(), "what", "nobody-at-all", "-S", e.store, NULL };
	run(&r, none, 0);
	cr_assert(tw_test_contains(r.out, r.nout, "0 events"), "%s", r.out);
	tw_test_run_free(&r);
	env_free(&e);
}

Test(cli_query, errors_exit_with_their_codes)
{
	struct env e;
	struct tw_test_run r;

	env_make(&e);
	const char *bad[] = { tw_test_bin(), "query", "-S", e.store, "filter eventName = \"x\" and (", NULL };
	run(&r, bad, 2);
	cr_assert(tw_test_contains(r.err, r.nerr, "filter eventName = \"x\" and (\n"), "%s", r.err);
	cr_assert(tw_test_contains(r.err, r.nerr, "\n" "                            ^ expected"), "%s", r.err);
	tw_test_run_free(&r);
	const char *nostore[] = { tw_test_bin(), "query", "filter x = 1", NULL };
	run(&r, nostore, 2);
	tw_test_run_free(&r);
	const char *since[] = { tw_test_bin(), "query", "-S", e.store, "--since", "bogus", "filter x = 1", NULL };
	run(&r, since, 2);
	tw_test_run_free(&r);
	const char *chart[] = { tw_test_bin(), "query", "-S", e.store, "--chart", "filter x = 1", NULL };
	run(&r, chart, 2);
	tw_test_run_free(&r);
	char *missing = tw_test_join(e.tmp, "no-such-store");
	const char *gone[] = { tw_test_bin(), "query", "-S", missing, "filter x = 1", NULL };
	run(&r, gone, 3);
	tw_test_run_free(&r);
	free(missing);
	env_free(&e);
}
