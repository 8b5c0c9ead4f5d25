/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_fuzz_regress.c: one test per bug the fuzz targets (tests/fuzz/) found, named
 * after it, each built by hand from the format's description rather than from the fuzzer's bytes
 * (those stay in tests/fuzz/corpus/: each one is replayed by its own test at the end of this file,
 * and `make check` replays the whole corpus). The use-after-free and the qsort_r on NULL show only
 * under the sanitizers (make check); the others fail in any build. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alerts/anomaly.h"
#include "alerts/band.h"
#include "alerts/firstseen.h"
#include "alerts/notify.h"
#include "core/buf.h"
#include "core/json.h"
#include "query/query.h"
#include "tests/fuzz/targets.h"
#include "tests/helpers/helpers.h"

/* A frame of the outbox log as alerts/notify_outbox.c describes it: u32 LE length, u32 LE
 * crc32(type byte, payload), the type byte, the payload. */
static size_t frame(unsigned char *out, char type, const char *payload)
{
	size_t n = strlen(payload);
	uLong c = crc32(crc32(0L, (const Bytef *)&type, 1), (const Bytef *)payload, (uInt)n);

	for (int i = 0; i < 4; i++) {
		out[i] = (unsigned char)(n >> (8 * i));
		out[4 + i] = (unsigned char)(c >> (8 * i));
	}
	out[8] = (unsigned char)type;
	memcpy(out + 9, payload, n);
	return 9 + n;
}

/* notify.c load_msg freed the message, then read its seq for the error text. */
Test(fuzz_regress, outbox_message_without_topic_is_refused_naming_its_seq)
{
	static const struct tw_notify_topic topics[] = { { "alarms", NULL } };
	unsigned char log[256] = { 'T', 'W', 'O', 'B', 1, 0, 0, 0 };
	size_t n = 8;
	char *dir = tw_test_tmpdir(), *path = tw_test_join(dir, "outbox.log");
	struct tw_notify_config cfg = { .state_dir = dir, .topics = topics, .ntopics = 1, .no_delivery = 1 };
	struct tw_notify *nt = NULL;
	struct tw_err err = { 0 };

	n += frame(log + n, 'M', "{\"seq\":42,\"message\":\"m\",\"subs\":[]}");
	tw_test_write_file(path, log, n);
	cr_assert_eq(tw_notify_open(&cfg, &nt, &err), TW_ECORRUPT);
	cr_assert_null(nt);
	cr_assert(strstr(err.msg, "message 42: missing topic or message"), "%s", err.msg);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* anomaly.c wrote the id with %s: a quote or backslash in a line read back broke the JSON. */
Test(fuzz_regress, anomaly_id_with_quote_and_backslash_is_written_escaped)
{
	static const char line[] = "{\"id\":\"a\\\"b\\\\c\",\"detector\":\"api_call_rate\"}";
	static struct tw_anomaly a, b;
	struct tw_err err = { 0 };
	struct tw_buf out;

	cr_assert_eq(tw_anomaly_read_line(line, sizeof line - 1, &a, &err), TW_OK, "%s", err.msg);
	cr_assert_str_eq(a.id, "a\"b\\c");
	tw_buf_init(&out, 1 << 20);
	cr_assert_eq(tw_anomaly_write_json(&a, &out, &err), TW_OK);
	cr_assert_eq(tw_json_validate(out.p, out.n - 1, 64, &err), TW_OK, "%.*s", (int)out.n, out.p);
	cr_assert(tw_test_contains(out.p, out.n, "{\"id\":\"a\\\"b\\\\c\","), "%.*s", (int)out.n, out.p);
	cr_assert_eq(tw_anomaly_read_line(out.p, out.n, &b, &err), TW_OK, "%s", err.msg);
	cr_assert_str_eq(b.id, "a\"b\\c");
	tw_buf_free(&out);
}

/* anomaly.c took a negative contributor count as a huge unsigned one, and wrote it as an
 * integer jansson cannot read back (over INT64_MAX): the line it wrote was unreadable. */
Test(fuzz_regress, anomaly_negative_contributor_count_is_refused)
{
	static const char line[] = "{\"insight_contributors\":{\"errorCodes\":[{\"key\":\"AccessDenied\",\"n\":-1}]}}";
	static struct tw_anomaly a;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_anomaly_read_line(line, sizeof line - 1, &a, &err), TW_EPARSE);
	cr_assert(strstr(err.msg, "insight_contributors.errorCodes"), "%s", err.msg);
}

/* anomaly.c cast observed_count (read as a double) to uint64_t: undefined past 2^64, and past
 * 2^63 written as an integer jansson refuses. Clamped to INT64_MAX (jansson's json_int_t is long
 * long), which reads back as itself. */
Test(fuzz_regress, anomaly_huge_observed_count_is_clamped_and_reads_back)
{
	static const char line[] = "{\"observed_count\":1e300}";
	static struct tw_anomaly a, b;
	struct tw_err err = { 0 };
	struct tw_buf out;

	cr_assert_eq(tw_anomaly_read_line(line, sizeof line - 1, &a, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(a.observed_count, (uint64_t)INT64_MAX);
	tw_buf_init(&out, 1 << 20);
	cr_assert_eq(tw_anomaly_write_json(&a, &out, &err), TW_OK);
	cr_assert(tw_test_contains(out.p, out.n, "\"observed_count\":9223372036854775807,"), "%.*s", (int)out.n, out.p);
	cr_assert_eq(tw_anomaly_read_line(out.p, out.n, &b, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(b.observed_count, (uint64_t)INT64_MAX);
	tw_buf_free(&out);
}

/* exec.c sorted an empty result with qsort_r(NULL, 0, ...): undefined (qsort_r's base is declared
 * nonnull), an abort under make check's UBSan. */
Test(fuzz_regress, query_sort_of_no_rows_finishes_empty)
{
	static const char text[] = "filter eventName = \"x\" | sort eventName";
	struct tw_query *q = NULL;
	struct tw_qexec *x = NULL;
	struct tw_event ev;
	struct tw_err err = { 0 };

	cr_assert_eq(tw_query_parse(text, sizeof text - 1, &q, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_new(q, NULL, &x, &err), TW_OK, "%s", err.msg);
	memset(&ev, 0, sizeof ev);
	ev.kind = TW_KIND_CLOUDTRAIL;
	ev.read_only = -1;
	ev.raw = TW_STR_LIT("{\"eventName\":\"GetObject\"}");
	ev.f[TW_F_EVENT_NAME] = TW_STR_LIT("GetObject");
	cr_assert_eq(tw_qexec_push(x, &ev, NULL, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_finish(x, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_qexec_nrows(x), 0);
	tw_qexec_free(x);
	tw_query_free(q);
}

/* parse.c turned "@timestamp > 1e19" into the bound INT64_MAX + 1 (signed overflow, an abort
 * under make check's UBSan); the same for "< -1e19". Both are just impossible ranges. */
Test(fuzz_regress, query_time_bound_beyond_int64_parses_and_matches_nothing)
{
	static const char *const texts[] = { "filter @timestamp > 1e19", "filter @timestamp < -1e19" };
	struct tw_event ev;

	memset(&ev, 0, sizeof ev);
	ev.kind = TW_KIND_CLOUDTRAIL;
	ev.read_only = -1;
	ev.time_ms = 1793598360000LL;
	ev.raw = TW_STR_LIT("{}");
	for (size_t i = 0; i < 2; i++) {
		struct tw_query *q = NULL;
		struct tw_err err = { 0 };
		cr_assert_eq(tw_query_parse(texts[i], strlen(texts[i]), &q, &err), TW_OK, "%s: %s", texts[i], err.msg);
		cr_assert_eq(tw_query_match(q, &ev), 0, "%s", texts[i]);
		tw_query_free(q);
	}
}

/* band.c cast the log of an infinite surprise to int (undefined; INT_MIN on x86-64, then
 * hist[INT_MIN]: a segfault in the -O2 build). Found through a loaded state, but finite points
 * reach it too: after a long run of -1.7e308 the residual of +1.7e308 overflows to infinity. */
Test(fuzz_regress, band_point_across_the_double_range_scores_without_crashing)
{
	static struct tw_band b;
	struct tw_band_point pt;
	struct tw_err err = { 0 };
	int64_t t0 = 1793598360000LL;

	tw_band_init(&b, 2);
	for (int i = 0; i < 300; i++)
		cr_assert_eq(tw_band_update(&b, t0 + 60000LL * i, -1.7e308, NULL, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_band_update(&b, t0 + 60000LL * 300, 1.7e308, &pt, &err), TW_OK, "%s", err.msg);
	cr_assert(isfinite(pt.score) && pt.score >= 0 && pt.score <= 1, "score %g", pt.score);
	cr_assert(tw_band_breaches(TW_BAND_ABOVE, 1.7e308, &pt)); /* far above all it has seen */
}

/* firstseen.c: a saved state's learning start (or a principal's first time) far in the past made
 * "event time - start" overflow int64 on the next event (UBSan; found by the 30-minute campaign).
 * Times beyond +-2^53 ms are refused at load; a state with ordinary times still loads. */
static void put_i64_and_crc(struct tw_buf *b, size_t off, int64_t v)
{
	uint32_t crc;
	memcpy(b->p + off, &v, sizeof v);
	crc = (uint32_t)crc32(0L, (const Bytef *)b->p, (uInt)(b->n - 4));
	memcpy(b->p + b->n - 4, &crc, 4);
}

Test(fuzz_regress, firstseen_state_with_a_time_out_of_range_is_refused)
{
	struct tw_firstseen_opts o;
	struct tw_firstseen *fs = NULL;
	struct tw_firstseen_obs ob = { 0 };
	struct tw_buf b;
	struct tw_err err = { 0 };

	tw_firstseen_opts_default(&o);
	cr_assert_eq(tw_firstseen_new(&o, &fs, &err), TW_OK, "%s", err.msg);
	ob.t_ms = INT64_C(1793598360000);
	ob.account = TW_STR_LIT("111122223333");
	ob.region = TW_STR_LIT("eu-west-1");
	ob.principal = TW_STR_LIT("arn:aws:iam::111122223333:user/alice");
	cr_assert_eq(tw_firstseen_observe(fs, &ob, NULL, NULL, &err), TW_OK, "%s", err.msg);
	tw_buf_init(&b, 1u << 20);
	cr_assert_eq(tw_firstseen_save(fs, &b, &err), TW_OK, "%s", err.msg);
	cr_assert(b.n > 20 && !memcmp(b.p, "TWFSEEN1", 8));
	/* magic (8), version (4), then the learning start: the saved one is the first event's time */
	int64_t start;
	memcpy(&start, b.p + 12, 8);
	cr_assert_eq(start, ob.t_ms);
	cr_assert_eq(tw_firstseen_load(fs, b.p, b.n, &err), TW_OK, "%s", err.msg);

	put_i64_and_crc(&b, 12, INT64_MIN + 27392160); /* the fuzzer's value */
	cr_assert_eq(tw_firstseen_load(fs, b.p, b.n, &err), TW_ECORRUPT);
	cr_expect(strstr(err.msg, "first-seen state"), "%s", err.msg);
	/* then an event: nothing left of the bad state to overflow with */
	cr_assert_eq(tw_firstseen_observe(fs, &ob, NULL, NULL, &err), TW_OK, "%s", err.msg);
	put_i64_and_crc(&b, 12, INT64_C(1) << 60);
	cr_assert_eq(tw_firstseen_load(fs, b.p, b.n, &err), TW_ECORRUPT);
	tw_buf_free(&b);
	tw_firstseen_free(fs);
}

/* Every reproducer the fuzzers left in tests/fuzz/corpus/<target>/ (crash-*, slow-*, seq-*) runs
 * through its target here as its own test, in every build (make check also replays the whole
 * corpus under the sanitizers). A target returns normally or aborts on a broken property. */
struct repro {
	char target[32];
	char file[256];
};

static int is_reproducer(const char *name)
{
	return !strncmp(name, "crash-", 6) || !strncmp(name, "slow-", 5) || !strncmp(name, "seq-", 4);
}

/* Lists the reproducers into out (NULL: count only). */
static size_t list_reproducers(struct repro *out, size_t cap)
{
	size_t n = 0;
	for (size_t t = 0; t < tw_fuzz_ntargets; t++) {
		char dir[4096];
		DIR *d;
		struct dirent *de;
		snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", tw_test_src(), tw_fuzz_targets[t].name);
		if (!(d = opendir(dir)))
			continue;
		while ((de = readdir(d))) {
			if (!is_reproducer(de->d_name) || strlen(de->d_name) >= sizeof out->file)
				continue;
			if (out && n < cap) {
				snprintf(out[n].target, sizeof out[n].target, "%s", tw_fuzz_targets[t].name);
				snprintf(out[n].file, sizeof out[n].file, "%s", de->d_name);
			}
			n++;
		}
		closedir(d);
	}
	return n;
}

static void free_repros(struct criterion_test_params *p)
{
	cr_free(p->params);
}

ParameterizedTestParameters(fuzz_regress, reproducer)
{
	size_t n = list_reproducers(NULL, 0);
	struct repro *r = cr_calloc(n ? n : 1, sizeof *r);
	n = list_reproducers(r, n);
	return cr_make_param_array(struct repro, r, n, free_repros);
}

ParameterizedTest(struct repro *r, fuzz_regress, reproducer, .timeout = 120)
{
	char path[4096];
	size_t len = 0;
	unsigned char *buf = NULL;
	int (*fn)(const uint8_t *, size_t) = NULL;

	for (size_t t = 0; t < tw_fuzz_ntargets; t++)
		if (!strcmp(tw_fuzz_targets[t].name, r->target))
			fn = tw_fuzz_targets[t].fn;
	cr_assert(fn, "no fuzz target %s", r->target);
	snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s/%s", tw_test_src(), r->target, r->file);
	buf = (unsigned char *)tw_test_read_file(path, &len);
	cr_assert(buf, "cannot read %s", path);
	cr_log_info("replaying %s/%s (%zu bytes)", r->target, r->file, len);
	fn(buf, len);
	free(buf);
}

/* The reproducers are there (a wrong $TW_SRC would silently run no parameterized test). */
Test(fuzz_regress, the_corpus_holds_the_reproducers)
{
	struct repro r[64];
	size_t n = list_reproducers(r, 64);
	int wal = 0, query = 0;
	for (size_t i = 0; i < n && i < 64; i++) {
		wal += !strcmp(r[i].target, "wal");
		query += !strcmp(r[i].target, "query");
	}
	cr_assert_geq(n, 10, "%zu reproducers under %s/tests/fuzz/corpus", n, tw_test_src());
	cr_assert(wal >= 1 && query >= 3, "wal %d, query %d", wal, query);
}
