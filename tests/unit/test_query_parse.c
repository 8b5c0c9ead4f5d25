/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_query_parse.c: query/ lexer and parser. The golden file
 * tests/golden/query/parse.txt holds queries (good and bad) with their canonical tree, index terms
 * or caret error (reviewed by hand); the other tests check positions, limits and index terms
 * independently of the printer, and parse every prefix and random mutations without crashing. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "query/query.h"
#include "tests/helpers/helpers.h"

static void print_terms(struct tw_buf *b, const struct tw_query *q)
{
	size_t n;
	const struct tw_qterm *t = tw_query_index_terms(q, &n);
	if (!n)
		return;
	tw_buf_printf(b, NULL, "terms:");
	for (size_t i = 0; i < n; i++) {
		static const char *const ops[] = { "", "EQ", "IN", "PREFIX", "TIME" };
		tw_buf_printf(b, NULL, "%s %s %s", i ? ";" : "", t[i].field, ops[t[i].op]);
		if (t[i].op == TW_QTERM_TIME) {
			tw_buf_printf(b, NULL, " [%lld, %lld]", (long long)t[i].tmin, (long long)t[i].tmax);
			continue;
		}
		tw_buf_printf(b, NULL, " [");
		for (size_t k = 0; k < t[i].nvalues; k++) {
			if (k)
				tw_buf_printf(b, NULL, ", ");
			tw_json_write_str(b, t[i].values[k].p, t[i].values[k].n, NULL);
		}
		tw_buf_printf(b, NULL, "]");
	}
	tw_buf_putc(b, '\n', NULL);
}

/* Parses text and appends the canonical form + terms, or the error with its caret. */
static void describe(struct tw_buf *b, const char *text, size_t n)
{
	struct tw_query *q = NULL;
	struct tw_err err;
	enum tw_rc rc = tw_query_parse(text, n, &q, &err);
	if (rc == TW_OK) {
		cr_assert_eq(tw_query_print(q, b, NULL), TW_OK);
		print_terms(b, q);
		tw_query_free(q);
		return;
	}
	tw_buf_printf(b, NULL, "error: %s\n", tw_rc_str(rc));
	cr_assert_eq(tw_query_caret(text, n, &err, b, NULL), TW_OK);
}

/* Reads the queries of the golden file: "> " starts one, ">> " continues it. */
static size_t golden_queries(char ***out, char **header)
{
	char *path = tw_test_join(tw_test_src(), "tests/golden/query/parse.txt");
	size_t n;
	char *s = tw_test_read_file(path, &n);
	cr_assert(s, "cannot read %s", path);
	free(path);
	char **qs = NULL;
	size_t nq = 0;
	struct tw_buf hdr;
	tw_buf_init(&hdr, 1 << 20);
	int in_header = 1;
	for (char *line = s; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (in_header && line[0] == '#') {
			tw_buf_printf(&hdr, NULL, "%s\n", line);
		} else if (!strncmp(line, ">> ", 3) && nq) {
			size_t l = strlen(qs[nq - 1]);
			qs[nq - 1] = realloc(qs[nq - 1], l + strlen(line + 3) + 2);
			qs[nq - 1][l] = '\n';
			strcpy(qs[nq - 1] + l + 1, line + 3);
		} else if (!strncmp(line, "> ", 2) || !strcmp(line, ">")) {
			in_header = 0;
			qs = realloc(qs, (nq + 1) * sizeof *qs);
			qs[nq++] = strdup(line[1] ? line + 2 : "");
		}
		line = nl ? nl + 1 : NULL;
	}
	free(s);
	*out = qs;
	*header = strdup(tw_buf_cstr(&hdr));
	tw_buf_free(&hdr);
	return nq;
}

Test(query_parse, golden_queries_print_as_reviewed)
{
	char **qs, *hdr;
	size_t nq = golden_queries(&qs, &hdr);
	cr_assert_gt(nq, 100);
	struct tw_buf b;
	tw_buf_init(&b, 4 << 20);
	tw_buf_printf(&b, NULL, "%s", hdr);
	for (size_t i = 0; i < nq; i++) {
		tw_buf_putc(&b, '\n', NULL);
		const char *p = qs[i];
		tw_buf_printf(&b, NULL, ">%s", *p ? " " : "");
		for (; *p; p++) {
			if (*p == '\n')
				tw_buf_printf(&b, NULL, "\n>> ");
			else
				tw_buf_putc(&b, *p, NULL);
		}
		tw_buf_putc(&b, '\n', NULL);
		describe(&b, qs[i], strlen(qs[i]));
		free(qs[i]);
	}
	free(qs);
	free(hdr);
	tw_test_golden("query/parse.txt", b.p, b.n);
	tw_buf_free(&b);
}

static enum tw_rc parse_err(const char *text, struct tw_err *err)
{
	struct tw_query *q = NULL;
	enum tw_rc rc = tw_query_parse(text, strlen(text), &q, err);
	tw_query_free(q);
	return rc;
}

Test(query_parse, caret_points_at_the_column_after_and)
{
	const char *text = "filter user = \"alice\" and | stats";
	struct tw_err err;
	cr_assert_eq(parse_err(text, &err), TW_EPARSE);
	size_t col = (size_t)(strchr(text, '|') - text) + 1;
	char want[64];
	snprintf(want, sizeof want, "column %zu: expected a comparison after 'and'", col);
	cr_assert_str_eq(err.msg, want);
	struct tw_buf b;
	tw_buf_init(&b, 4096);
	cr_assert_eq(tw_query_caret(text, strlen(text), &err, &b, NULL), TW_OK);
	struct tw_buf w;
	tw_buf_init(&w, 4096);
	tw_buf_printf(&w, NULL, "%s\n%*s^ expected a comparison after 'and'\n", text, (int)col - 1, "");
	cr_assert_str_eq(tw_buf_cstr(&b), tw_buf_cstr(&w));
	tw_buf_free(&b);
	tw_buf_free(&w);
}

Test(query_parse, multiline_errors_name_line_and_column)
{
	const char *text = "filter user = \"x\"\n| stats count(*) by\n| sort x";
	struct tw_err err;
	cr_assert_eq(parse_err(text, &err), TW_EPARSE);
	cr_assert(strncmp(err.msg, "line 3, column 1: ", 18) == 0, "%s", err.msg);
	struct tw_buf b;
	tw_buf_init(&b, 4096);
	tw_query_caret(text, strlen(text), &err, &b, NULL);
	cr_assert(strncmp(tw_buf_cstr(&b), "| sort x\n^ ", 11) == 0, "%s", tw_buf_cstr(&b));
	tw_buf_free(&b);
}

Test(query_parse, regex_error_carries_pcre2_message_and_column)
{
	const char *text = "filter eventName =~ /ab(c/";
	struct tw_err err;
	cr_assert_eq(parse_err(text, &err), TW_EPARSE);
	/* pcre2 reports the missing ')' at the end of the pattern: column of the closing '/'. */
	size_t col = strlen(text);
	char want[32];
	snprintf(want, sizeof want, "column %zu: invalid regex: ", col);
	cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
	cr_assert(strstr(err.msg, "parenthes") != NULL, "%s", err.msg);
}

Test(query_parse, limits_on_text_nesting_and_in_lists)
{
	struct tw_err err;
	struct tw_query *q = NULL;
	size_t n = TW_QUERY_MAX_TEXT + 1;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "limit 1", 7);
	cr_assert_eq(tw_query_parse(big, n, &q, &err), TW_ELIMIT);
	cr_assert_eq(tw_query_parse(big, n - 1, &q, &err), TW_OK); /* exactly 64 KiB is fine */
	tw_query_free(q);
	free(big);

	struct tw_buf b;
	tw_buf_init(&b, 1 << 20);
	tw_buf_printf(&b, NULL, "filter ");
	for (int i = 0; i < TW_QUERY_MAX_DEPTH; i++)
		tw_buf_putc(&b, '(', NULL);
	tw_buf_printf(&b, NULL, "a = 1");
	for (int i = 0; i < TW_QUERY_MAX_DEPTH; i++)
		tw_buf_putc(&b, ')', NULL);
	cr_assert_eq(tw_query_parse(b.p, b.n, &q, &err), TW_OK, "%s", err.msg);
	tw_query_free(q);
	q = NULL;
	tw_buf_reset(&b);
	tw_buf_printf(&b, NULL, "filter ");
	for (int i = 0; i <= TW_QUERY_MAX_DEPTH; i++)
		tw_buf_printf(&b, NULL, "not ");
	tw_buf_printf(&b, NULL, "a = 1");
	cr_assert_eq(tw_query_parse(b.p, b.n, &q, &err), TW_ELIMIT);
	cr_assert(strstr(err.msg, "nesting") != NULL);

	for (int lim = TW_QUERY_MAX_IN; lim <= TW_QUERY_MAX_IN + 1; lim++) {
		tw_buf_reset(&b);
		tw_buf_printf(&b, NULL, "filter eventName in [");
		for (int i = 0; i < lim; i++)
			tw_buf_printf(&b, NULL, "%s\"%c\"", i ? "," : "", i == 9999 ? 'z' : 'v'); /* fits 64 KiB */
		tw_buf_printf(&b, NULL, "]");
		q = NULL;
		enum tw_rc rc = tw_query_parse(b.p, b.n, &q, &err);
		cr_assert_eq(rc, lim == TW_QUERY_MAX_IN ? TW_OK : TW_ELIMIT, "%d values: %s", lim, err.msg);
		if (rc == TW_OK) {
			size_t nt;
			const struct tw_qterm *t = tw_query_index_terms(q, &nt);
			cr_assert_eq(nt, 1);
			cr_assert_eq(t[0].nvalues, (size_t)TW_QUERY_MAX_IN);
			cr_assert(t[0].values[9999].n == 1 && t[0].values[9999].p[0] == 'z');
		}
		tw_query_free(q);
	}
	tw_buf_free(&b);
}

Test(query_parse, index_terms_skip_or_and_not)
{
	struct tw_query *q;
	struct tw_err err;
	const char *text = "filter (eventName = \"a\" or eventName = \"b\") and not region = \"r\" and user = \"u\""
			   " and eventSource != \"s\" and @timestamp > 1000 and @timestamp <= 2000.5"
			   " | limit 3 | filter account = \"1\"";
	cr_assert_eq(tw_query_parse(text, strlen(text), &q, &err), TW_OK, "%s", err.msg);
	size_t n;
	const struct tw_qterm *t = tw_query_index_terms(q, &n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(t[0].field, "userName");
	cr_assert_eq(t[0].op, TW_QTERM_EQ);
	cr_assert(t[0].nvalues == 1 && t[0].values[0].n == 1 && t[0].values[0].p[0] == 'u');
	cr_assert_str_eq(t[1].field, "@timestamp");
	cr_assert_eq(t[1].op, TW_QTERM_TIME);
	cr_assert_eq(t[1].tmin, 1001);
	cr_assert_eq(t[1].tmax, 2000);
	tw_query_free(q);
}

Test(query_parse, regex_prefix_only_for_a_pure_literal)
{
	static const struct {
		const char *q;
		const char *prefix; /* NULL: no term */
	} cases[] = {
		{ "filter eventName =~ /^Delete/", "Delete" },
		{ "filter eventName like /^Get\\.x\\/y/", "Get.x/y" },
		{ "filter eventName =~ /^Delete.*/", NULL },
		{ "filter eventName =~ /^Deletes?/", NULL },
		{ "filter eventName =~ /^a|b/", NULL },
		{ "filter eventName =~ /Delete/", NULL },
		{ "filter eventName =~ /^Delete/i", NULL },
		{ "filter eventName =~ /^\\d+/", NULL },
		{ "filter userIdentity.type =~ /^Root/", NULL }, /* a raw path: not indexed */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tw_query *q;
		struct tw_err err;
		cr_assert_eq(tw_query_parse(cases[i].q, strlen(cases[i].q), &q, &err), TW_OK, "%s", err.msg);
		size_t n;
		const struct tw_qterm *t = tw_query_index_terms(q, &n);
		if (!cases[i].prefix) {
			cr_assert_eq(n, 0, "%s", cases[i].q);
		} else {
			cr_assert_eq(n, 1, "%s", cases[i].q);
			cr_assert_eq(t[0].op, TW_QTERM_PREFIX);
			cr_assert(t[0].values[0].n == strlen(cases[i].prefix) &&
				  !memcmp(t[0].values[0].p, cases[i].prefix, t[0].values[0].n), "%s", cases[i].q);
		}
		tw_query_free(q);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

Test(query_parse, prefixes_and_mutations_never_crash)
{
	char **qs, *hdr;
	size_t nq = golden_queries(&qs, &hdr);
	static const char alphabet[] = "()[]|,=!<>~/\"'`\\*.- \nafin0129@$";
	size_t parsed = 0;
	for (size_t i = 0; i < nq; i++) {
		size_t n = strlen(qs[i]);
		for (size_t k = 0; k <= n; k++) {
			char *cp = malloc(k + 1); /* exact size: ASan sees any read past the prefix */
			memcpy(cp, qs[i], k);
			struct tw_query *q = NULL;
			struct tw_err err;
			if (tw_query_parse(cp, k, &q, &err) == TW_OK) {
				parsed++;
				struct tw_buf b;
				tw_buf_init(&b, 1 << 20);
				cr_assert_eq(tw_query_print(q, &b, NULL), TW_OK);
				tw_buf_free(&b);
			} else {
				cr_assert(err.msg[0] != '\0');
				struct tw_buf b;
				tw_buf_init(&b, 1 << 20);
				cr_assert_eq(tw_query_caret(cp, k, &err, &b, NULL), TW_OK);
				tw_buf_free(&b);
			}
			tw_query_free(q);
			free(cp);
		}
	}
	for (int r = 0; r < 4000; r++) {
		const char *src = qs[rnd() % nq];
		size_t n = strlen(src);
		char *cp = malloc(n + 8);
		memcpy(cp, src, n);
		int edits = 1 + (int)(rnd() % 4);
		for (int e = 0; e < edits; e++) {
			uint64_t op = rnd() % 3;
			if (op == 0 && n) {
				cp[rnd() % n] = (char)(rnd() & 0xff);
			} else if (op == 1 && n) {
				cp[rnd() % n] = alphabet[rnd() % (sizeof alphabet - 1)];
			} else if (n) {
				size_t at = rnd() % n;
				memmove(cp + at, cp + at + 1, n - at - 1);
				n--;
			}
		}
		char *exact = malloc(n ? n : 1);
		memcpy(exact, cp, n);
		struct tw_query *q = NULL;
		struct tw_err err;
		if (tw_query_parse(exact, n, &q, &err) != TW_OK) {
			struct tw_buf b;
			tw_buf_init(&b, 1 << 20);
			tw_query_caret(exact, n, &err, &b, NULL);
			tw_buf_free(&b);
		}
		tw_query_free(q);
		free(exact);
		free(cp);
	}
	cr_assert_gt(parsed, 100);
	for (size_t i = 0; i < nq; i++)
		free(qs[i]);
	free(qs);
	free(hdr);
}
