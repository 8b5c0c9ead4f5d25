/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_fixtures_shared.c: every real fixture under ../shared/data/{cloudtrail,cloudwatch}
 * decodes with the counts an independent reference (tests/tools/fixture_reference.py, Python's json
 * module) computed into tests/golden/fixture_counts.tsv, and the broken ones are quarantined, not
 * crashed on. The fixtures are read where they are (some licenses forbid copying them here); the
 * test is skipped when TW_SHARED does not point at them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"

struct counts {
	uint64_t kind[TW_KIND_MAX + 1]; /* events by kind, as the sink saw them */
	uint64_t rejects;               /* rejects the sink saw */
};

static enum tw_rc count_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	struct counts *c = ctx;
	(void)err;
	for (size_t i = 0; i < batch->n; i++) {
		const struct tw_event *ev = &batch->ev[i];
		cr_assert(ev->kind >= 1 && ev->kind <= TW_KIND_MAX);
		cr_assert(ev->raw.n > 0, "every event keeps its raw record");
		c->kind[ev->kind]++;
	}
	return TW_OK;
}

static enum tw_rc count_reject(void *ctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct counts *c = ctx;
	(void)err;
	cr_assert(rej->reason && rej->reason[0], "a reject says why");
	cr_assert(rej->source && rej->source[0], "a reject names its source");
	c->rejects++;
	return TW_OK;
}

static const char *wrapped_key(const char *file)
{
	if (strstr(file, "panther_rule_tests_cloudtrail.jsonl") || strstr(file, "panther_test_scenarios.jsonl"))
		return "log";
	if (strstr(file, "cloudtrail_examples_from_user_guide.jsonl"))
		return "record";
	return NULL;
}

/* Feeds each line's inner record (re-serialized compactly) through tw_ingest_buffer. */
static void decode_wrapped(const char *path, const char *key, const struct tw_ingest_limits *lim,
			   struct tw_sink *sink, struct tw_ingest_stats *st)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct tw_err err = { 0 };

	cr_assert(f, "open %s", path);
	while ((len = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *o = json_loadb(line, (size_t)len, 0, &jerr);
		char *inner;
		cr_assert(o, "%s: %s", path, jerr.text);
		inner = json_dumps(json_object_get(o, key), JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		cr_assert(inner);
		cr_assert_eq(tw_ingest_buffer(path, inner, strlen(inner), lim, sink, NULL, st, &err), TW_OK, "%s", err.msg);
		free(inner);
		json_decref(o);
	}
	free(line);
	fclose(f);
}

Test(fixtures_shared, every_fixture_decodes_with_the_reference_counts)
{
	const char *shared = getenv("TW_SHARED"), *src = getenv("TW_SRC");
	char tsv[4096], line[8192];
	FILE *f;
	int files = 0;

	if (!shared || !src)
		cr_skip_test("TW_SHARED or TW_SRC not set");
	snprintf(tsv, sizeof tsv, "%s/tests/golden/fixture_counts.tsv", src);
	f = fopen(tsv, "r");
	cr_assert(f, "open %s", tsv);
	while (fgets(line, sizeof line, f)) {
		char rel[4096], col[7][32], path[8192];
		long long want[7]; /* -1: any count ('*'); -2: at least one ('+') */
		struct tw_ingest_limits lim;
		struct tw_ingest_stats st;
		struct counts c;
		struct tw_sink sink = { count_batch, count_reject, &c };
		struct tw_err err = { 0 };
		const char *key;

		if (line[0] == '#')
			continue;
		cr_assert_eq(sscanf(line, "%4095[^\t]\t%31s\t%31s\t%31s\t%31s\t%31s\t%31s\t%31s", rel, col[0], col[1],
				    col[2], col[3], col[4], col[5], col[6]), 8, "bad row: %s", line);
		for (int i = 0; i < 7; i++)
			want[i] = col[i][0] == '*' ? -1 : col[i][0] == '+' ? -2 : strtoll(col[i], NULL, 10);
		snprintf(path, sizeof path, "%s/data/%s", shared, rel);
		if (access(path, R_OK) != 0)
			cr_skip_test("shared fixture %s not present", path);
		memset(&st, 0, sizeof st);
		memset(&c, 0, sizeof c);
		tw_ingest_limits_default(&lim);
		key = wrapped_key(rel);
		if (key) {
			decode_wrapped(path, key, &lim, &sink, &st);
		} else {
			const char *paths[1] = { path };
			cr_assert_eq(tw_ingest_paths(paths, 1, &lim, &sink, NULL, &st, &err), TW_OK, "%s: %s", rel, err.msg);
		}
		{
			const uint64_t got[7] = { c.kind[TW_KIND_CLOUDTRAIL], c.kind[TW_KIND_INSIGHT], c.kind[TW_KIND_CWLOG],
						  st.digests, st.control_messages, st.skipped, c.rejects };
			static const char *const what[7] = { "cloudtrail events", "insight events", "cwlog events",
							     "digests", "control messages", "skipped", "rejects" };
			for (int i = 0; i < 7; i++) {
				if (want[i] == -2)
					cr_expect_gt(got[i], 0, "%s: %s: want at least one", rel, what[i]);
				else if (want[i] >= 0)
					cr_expect_eq(got[i], (uint64_t)want[i], "%s: %s %llu, want %lld", rel, what[i],
						     (unsigned long long)got[i], want[i]);
			}
		}
		cr_expect_eq(st.quarantined, c.rejects, "%s: stats and sink disagree on rejects", rel);
		for (int k = 1; k <= TW_KIND_MAX; k++)
			cr_expect_eq(st.events[k], c.kind[k], "%s: stats and sink disagree on kind %d", rel, k);
		files++;
	}
	fclose(f);
	cr_assert_gt(files, 60, "the table covers the fixtures");
}
