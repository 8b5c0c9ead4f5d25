/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_cis_pack.c: the CIS pack (alerts/cis.c) through the filter set: hand-written
 * positives and near misses (tests/data/cis/fixtures.jsonl), and the real Panther test records
 * ($TW_SHARED/data/cloudtrail/panther_analysis_cloudtrail_tests) where the exact set of matching
 * records per control comes from the independent Python reference tests/tools/filter_reference.py
 * (tests/data/cis/panther_expected.tsv). Also: the linter flags the published 4.1, not ours. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/cis.h"
#include "alerts/filter.h"
#include "ingest/ingest.h"
#include "tests/helpers/helpers.h"

#define NC 15

struct eval_ctx {
	struct tw_filter_set *set;  /* the 15 controls, in table order */
	struct tw_filter_result r;  /* scratch */
	int events;                 /* events seen for the current record */
	uint8_t hit[NC];            /* matched, for the current record */
};

static enum tw_rc on_batch(void *vctx, struct tw_batch *batch, struct tw_err *err)
{
	struct eval_ctx *ctx = vctx;
	for (size_t i = 0; i < batch->n; i++) {
		cr_assert_eq(tw_filter_set_eval(ctx->set, &batch->ev[i], &ctx->r, err), TW_OK);
		ctx->events++;
		for (size_t k = 0; k < NC; k++)
			ctx->hit[k] |= ctx->r.matched[k];
	}
	return TW_OK;
}

static void ctx_init(struct eval_ctx *ctx)
{
	size_t n, idx;
	struct tw_err err;
	const struct tw_cis_control *cc = tw_cis_controls(&n);

	cr_assert_eq(n, NC);
	memset(ctx, 0, sizeof *ctx);
	cr_assert_eq(tw_filter_set_new(&ctx->set, &err), TW_OK);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(tw_filter_set_add(ctx->set, cc[i].pattern, strlen(cc[i].pattern), &idx, &err), TW_OK,
			     "%s: %s", cc[i].id, err.msg);
		cr_assert_eq(idx, i);
	}
	cr_assert_eq(tw_filter_result_init(ctx->set, &ctx->r, &err), TW_OK);
}

/* Decodes one record (JSON text) and evaluates the pack on it. Returns the events decoded. */
static int eval_record(struct eval_ctx *ctx, const char *json)
{
	struct tw_ingest_limits lim;
	struct tw_ingest_stats st;
	struct tw_sink sink = { on_batch, NULL, ctx };
	struct tw_err err;

	tw_ingest_limits_default(&lim);
	lim.threads = 1;
	memset(&st, 0, sizeof st);
	memset(ctx->hit, 0, sizeof ctx->hit);
	ctx->events = 0;
	cr_assert_eq(tw_ingest_buffer("test", json, strlen(json), &lim, &sink, NULL, &st, &err), TW_OK, "%s", err.msg);
	return ctx->events;
}

static void ctx_free(struct eval_ctx *ctx)
{
	tw_filter_result_free(&ctx->r);
	tw_filter_set_free(ctx->set);
}

Test(cis_pack, table_is_complete_and_published_patterns_compile)
{
	size_t n;
	const struct tw_cis_control *cc = tw_cis_controls(&n);
	struct tw_filter *f;
	struct tw_err err;
	char id[32];

	cr_assert_eq(n, 15);
	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof id, "CIS-4.%zu", i + 1);
		cr_expect_str_eq(cc[i].id, id);
		cr_expect(!strncmp(cc[i].name, "cis-", 4));
		cr_expect_eq(tw_filter_compile(cc[i].published, strlen(cc[i].published), &f, &err), TW_OK, "%s: %s", id,
			     err.msg);
		tw_filter_free(f);
		cr_expect_eq(!!strcmp(cc[i].published, cc[i].pattern), cc[i].why != NULL, "%s", id);
		cr_expect_str_eq(cc[i].alarm.statistic, "Sum");
		cr_expect_eq(cc[i].alarm.period_s, 300);
		cr_expect_eq(cc[i].alarm.threshold, 1.0);
		cr_expect_eq(cc[i].alarm.eval_periods, 1);
		cr_expect_str_eq(cc[i].alarm.missing_data, "notBreaching");
		cr_expect_eq(tw_cis_lookup(cc[i].id), &cc[i]);
		cr_expect_eq(tw_cis_lookup(cc[i].name), &cc[i]);
	}
	cr_expect_eq(tw_cis_lookup("4.7"), &cc[6]);
	cr_expect_null(tw_cis_lookup("CIS-4.16"));
}

Test(cis_pack, hand_written_positives_and_near_misses)
{
	char *path = tw_test_join(tw_test_src(), "tests/data/cis/fixtures.jsonl");
	char *text = tw_test_read_file(path, NULL);
	struct eval_ctx ctx;
	size_t nctl;
	const struct tw_cis_control *cc = tw_cis_controls(&nctl);
	int lines = 0, positives[NC] = { 0 }, negatives = 0;

	cr_assert(text, "%s", path);
	ctx_init(&ctx);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#')
			continue;
		json_error_t je;
		json_t *d = json_loads(line, 0, &je);
		cr_assert(d, "fixtures: %s", je.text);
		char *rec = json_dumps(json_object_get(d, "record"), JSON_COMPACT);
		cr_assert_eq(eval_record(&ctx, rec), 1, "record %s did not decode", rec);
		uint8_t want[NC] = { 0 };
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(d, "expect"), k, v) {
			const struct tw_cis_control *c = tw_cis_lookup(json_string_value(v));
			cr_assert(c);
			want[c - cc] = 1;
			positives[c - cc]++;
		}
		for (size_t i = 0; i < NC; i++)
			cr_expect_eq(ctx.hit[i], want[i], "%s on fixture line %d (%s)", cc[i].id, lines + 1, rec);
		if (json_array_size(json_object_get(d, "expect")) == 0)
			negatives++;
		free(rec);
		json_decref(d);
		lines++;
	}
	for (size_t i = 0; i < NC; i++)
		cr_expect_geq(positives[i], 1, "%s has no positive fixture", cc[i].id);
	cr_expect_geq(negatives, 15);
	ctx_free(&ctx);
	free(text);
	free(path);
}

Test(cis_pack, panther_records_match_exactly_the_reference_sets, .timeout = 60)
{
	char *path = tw_test_join(getenv("TW_SHARED") ? getenv("TW_SHARED") : "../shared",
				  "data/cloudtrail/panther_analysis_cloudtrail_tests/panther_rule_tests_cloudtrail.jsonl");
	char *text = tw_test_read_file(path, NULL);
	if (!text) {
		free(path);
		cr_skip_test("shared data absent");
	}
	char *epath = tw_test_join(tw_test_src(), "tests/data/cis/panther_expected.tsv");
	char *exp = tw_test_read_file(epath, NULL);
	cr_assert(exp, "%s", epath);
	size_t nctl;
	const struct tw_cis_control *cc = tw_cis_controls(&nctl);

	/* got[i]: "idx,idx,..." per control over decoded events; raw[i]: the same evaluating every
	 * record's JSON text directly as a message (no decoder: all 464 records). */
	char got[NC][4096], raw[NC][4096];
	uint8_t ok[512] = { 0 };
	for (size_t i = 0; i < NC; i++)
		got[i][0] = raw[i][0] = 0;
	struct eval_ctx ctx;
	ctx_init(&ctx);
	int idx = 0, decoded = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), idx++) {
		json_error_t je;
		json_t *d = json_loads(line, 0, &je);
		cr_assert(d);
		json_t *log = json_object_get(d, "log");
		if (json_is_object(log)) {
			char *rec = json_dumps(log, JSON_COMPACT);
			struct tw_ingest_limits lim;
			struct tw_ingest_stats st;
			struct tw_sink sink = { on_batch, NULL, &ctx };
			struct tw_err err;
			tw_ingest_limits_default(&lim);
			lim.threads = 1;
			memset(&st, 0, sizeof st);
			memset(ctx.hit, 0, sizeof ctx.hit);
			ctx.events = 0;
			tw_ingest_buffer("panther", rec, strlen(rec), &lim, &sink, NULL, &st, &err);
			decoded += ctx.events > 0;
			if (idx < 512)
				ok[idx] = ctx.events > 0;
			for (size_t i = 0; i < NC; i++)
				if (ctx.hit[i]) {
					size_t l = strlen(got[i]);
					snprintf(got[i] + l, sizeof got[i] - l, "%s%d", l ? "," : "", idx);
				}
			struct tw_event ev;
			memset(&ev, 0, sizeof ev);
			ev.kind = TW_KIND_CWLOG;
			ev.f[TW_F_MESSAGE].p = rec;
			ev.f[TW_F_MESSAGE].n = strlen(rec);
			cr_assert_eq(tw_filter_set_eval(ctx.set, &ev, &ctx.r, &err), TW_OK);
			for (size_t i = 0; i < NC; i++)
				if (ctx.r.matched[i]) {
					size_t l = strlen(raw[i]);
					snprintf(raw[i] + l, sizeof raw[i] - l, "%s%d", l ? "," : "", idx);
				}
			free(rec);
		}
		json_decref(d);
	}
	cr_expect_eq(idx, 464);
	cr_expect_geq(decoded, 400, "only %d panther records decoded", decoded);
	/* Compare with the reference, control by control. */
	char *esave = NULL;
	size_t seen = 0;
	for (char *line = strtok_r(exp, "\n", &esave); line; line = strtok_r(NULL, "\n", &esave)) {
		char *tab = strchr(line, '\t');
		cr_assert(tab);
		*tab = 0;
		const struct tw_cis_control *c = tw_cis_lookup(line);
		cr_assert(c, "%s", line);
		cr_expect_str_eq(raw[c - cc], tab + 1, "%s as messages: trailwatch matched [%s], reference [%s]", line,
				 raw[c - cc], tab + 1);
		/* Over decoded events: the reference minus the records the decoder rejects. */
		char want[4096] = "";
		for (char *tok = strtok(tab + 1, ","); tok; tok = strtok(NULL, ",")) {
			int x = atoi(tok);
			if (x < 512 && ok[x]) {
				size_t l = strlen(want);
				snprintf(want + l, sizeof want - l, "%s%d", l ? "," : "", x);
			}
		}
		cr_expect_str_eq(got[c - cc], want, "%s: trailwatch matched [%s], reference [%s]", line, got[c - cc], want);
		seen++;
	}
	cr_expect_eq(seen, NC);
	ctx_free(&ctx);
	free(exp);
	free(epath);
	free(text);
	free(path);
}

Test(cis_pack, linter_flags_published_41_and_not_ours)
{
	const struct tw_cis_control *c = tw_cis_lookup("CIS-4.1");
	struct tw_filter_warning w[16];
	size_t nw;
	struct tw_err err;

	cr_assert_eq(tw_filter_lint(c->published, strlen(c->published), w, 16, &nw, &err), TW_OK);
	cr_assert_eq(nw, 2);
	cr_expect_str_eq(w[0].code, "neq-in-or");
	cr_expect_eq(w[0].column, (size_t)(strstr(c->published, "$.sourceIPAddress!=") - c->published) + 1);
	cr_expect_str_eq(w[1].code, "neq-in-or");
	cr_expect_eq(w[1].column, (size_t)(strstr(c->published, "$.eventName!=") - c->published) + 1);

	size_t n;
	const struct tw_cis_control *cc = tw_cis_controls(&n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(tw_filter_lint(cc[i].pattern, strlen(cc[i].pattern), w, 16, &nw, &err), TW_OK);
		cr_expect_eq(nw, 0, "%s: %s", cc[i].id, nw ? w[0].msg : "");
	}
}
