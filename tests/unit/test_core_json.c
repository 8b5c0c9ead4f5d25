/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_json.c: core/json.c, the validating pull reader, unescaping and the string
 * writer. Expected accept/reject verdicts follow RFC 8259 and the Unicode UTF-8 table (3.9, D92);
 * expected offsets were counted by hand on the inputs written here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "tests/helpers/helpers.h"

/* Validates n bytes copied into a buffer of exactly n bytes, so ASan sees any overread. */
static enum tw_rc validate_n(const char *s, size_t n, unsigned depth, struct tw_err *err)
{
	char *copy = malloc(n ? n : 1);
	enum tw_rc rc;

	cr_assert(copy);
	memcpy(copy, s, n);
	tw_err_clear(err);
	rc = tw_json_validate(copy, n, depth, err);
	free(copy);
	return rc;
}

static void ok(const char *s)
{
	struct tw_err err;
	enum tw_rc rc = validate_n(s, strlen(s), 64, &err);
	cr_assert_eq(rc, TW_OK, "should accept %s: %s", s, err.msg);
}

/* Rejects with TW_EPARSE; when want is not NULL the message must contain it. */
static void bad(const char *s, const char *want)
{
	struct tw_err err;
	enum tw_rc rc = validate_n(s, strlen(s), 64, &err);
	cr_assert_eq(rc, TW_EPARSE, "should reject [%s] (rc %d)", s, rc);
	cr_assert(strncmp(err.msg, "offset ", 7) == 0, "message without offset: %s", err.msg);
	if (want)
		cr_assert(strstr(err.msg, want), "[%s]: message \"%s\" lacks \"%s\"", s, err.msg, want);
}

Test(core_json, accepts_valid_documents)
{
	ok("{}");
	ok("[]");
	ok(" \t\r\n{ } \n");
	ok("0");
	ok("-0");
	ok("-0.0e-0");
	ok("1.5E+10");
	ok("123456789012345678901234567890");
	ok("\"\"");
	ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
	ok("\"\\u0000\\u001f\\u00e9\\uFFFF\\ud83d\\ude00\"");
	ok("true");
	ok("false");
	ok("null");
	ok("{\"a\":[1,2,{\"b\":null,\"c\":[[],{}]}],\"d\":\"e\"}");
	ok("[ 1 , \"x\" , { \"k\" : true } ]");
	ok("{\"a\":1,\"a\":2}"); /* duplicate keys are valid JSON */
}

Test(core_json, rejects_structural_errors_with_their_offset)
{
	bad("", "empty input");
	bad("   ", "empty input");
	bad("[1,]", "offset 3: trailing comma");
	bad("{\"a\":1,}", "offset 7: trailing comma");
	bad("[,1]", "offset 1");
	bad("[1 2]", "offset 3: expected ',' or ']'");
	bad("{\"a\" 1}", "offset 5: expected ':'");
	bad("{a:1}", "offset 1: expected a string key");
	bad("{'a':1}", "offset 1");
	bad("{\"a\":1} x", "offset 8: unexpected data");
	bad("1 2", "offset 2");
	bad("[}", "offset 1");
	bad("{]", "offset 1");
	bad("[1", "unexpected end of input");
	bad("{\"a\":", "unexpected end of input");
	bad("{\"a\":1 /* c */}", "offset 7");
	bad("// c\n1", "offset 0");
	bad("[1]]", "offset 3");
}

Test(core_json, rejects_bad_numbers_and_literals)
{
	bad("01", "offset 0: leading zero");
	bad("-01", "offset 1: leading zero");
	bad("[00]", "offset 1: leading zero");
	bad("+1", "offset 0");
	bad(".5", "offset 0");
	bad("1.", "unexpected end");
	bad("1.e5", "decimal point");
	bad("1e", "unexpected end");
	bad("1ex", "offset 2: expected a digit in the exponent");
	bad("1e+", "unexpected end");
	bad("-", "unexpected end");
	bad("-a", "offset 1");
	bad("NaN", "offset 0");
	bad("Infinity", "offset 0");
	bad("-Infinity", "offset 1");
	bad("tru", "unexpected end");
	bad("trUe", "offset 0: invalid literal");
	bad("nul", "unexpected end");
	bad("[True]", "offset 1");
	bad("0x10", "offset 1");
}

Test(core_json, rejects_bad_strings)
{
	bad("\"abc", "unexpected end");
	bad("\"a\x01" "b\"", "offset 2: control character 0x01");
	bad("\"a\tb\"", "offset 2: control character 0x09");
	bad("\"a\nb\"", "offset 2: control character 0x0a");
	bad("\"\\x\"", "offset 1: invalid escape '\\x'");
	bad("\"\\'\"", "offset 1: invalid escape");
	bad("\"\\u12\"", "offset 1");
	bad("\"\\u12zz\"", "offset 1: invalid \\u escape");
	bad("\"\\", "unexpected end");
	bad("\"\\u00", "unexpected end");
}

Test(core_json, rejects_lone_surrogates)
{
	bad("\"\\ud800\"", "offset 1: lone high surrogate \\uD800");
	bad("\"\\uDBFF\"", "lone high surrogate");
	bad("\"\\udc00\"", "offset 1: lone low surrogate \\uDC00");
	bad("\"\\ud800\\u0041\"", "lone high surrogate");
	bad("\"\\ud800x\\udc00\"", "lone high surrogate");
	bad("\"\\ud800\\ud800\"", "lone high surrogate");
	bad("\"\\ude00\\ud83d\"", "lone low surrogate"); /* pair in the wrong order */
	ok("\"\\ud800\\udc00\"");
	ok("\"\\uDBFF\\uDFFF\"");
}

Test(core_json, validates_utf8_in_strings)
{
	/* Valid: the boundaries of each row of the Unicode well-formed byte table. */
	ok("\"\xc2\x80\"");
	ok("\"\xdf\xbf\"");
	ok("\"\xe0\xa0\x80\"");
	ok("\"\xed\x9f\xbf\"");         /* U+D7FF */
	ok("\"\xee\x80\x80\"");         /* U+E000 */
	ok("\"\xef\xbf\xbf\"");         /* U+FFFF */
	ok("\"\xf0\x90\x80\x80\"");     /* U+10000 */
	ok("\"\xf4\x8f\xbf\xbf\"");     /* U+10FFFF */
	ok("\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"");
	/* Invalid. */
	bad("\"\xc0\xaf\"", "offset 1: invalid UTF-8");     /* overlong '/' */
	bad("\"\xc1\xbf\"", "invalid UTF-8");
	bad("\"\xe0\x80\xaf\"", "invalid UTF-8");            /* overlong 3-byte */
	bad("\"\xe0\x9f\xbf\"", "invalid UTF-8");
	bad("\"\xed\xa0\x80\"", "invalid UTF-8");            /* UTF-8 encoded surrogate D800 */
	bad("\"\xed\xbf\xbf\"", "invalid UTF-8");
	bad("\"\xf0\x80\x80\xaf\"", "invalid UTF-8");        /* overlong 4-byte */
	bad("\"\xf0\x8f\xbf\xbf\"", "invalid UTF-8");
	bad("\"\xf4\x90\x80\x80\"", "invalid UTF-8");        /* > U+10FFFF */
	bad("\"\xf5\x80\x80\x80\"", "invalid UTF-8");
	bad("\"\xff\"", "invalid UTF-8");
	bad("\"ab\x80\"", "offset 3: invalid UTF-8");        /* lone continuation byte */
	bad("\"\xe2\x82\"", "invalid UTF-8");                /* truncated sequence before the quote */
	bad("\"\xc3", "invalid UTF-8");                      /* truncated at the end of input */
	bad("\"\xc3\xa9\xc3\"", "offset 3: invalid UTF-8");
}

/* The 16-byte scanner and its scalar tail must agree wherever the special byte falls. */
Test(core_json, finds_special_bytes_at_every_position)
{
	char s[80];

	for (size_t pos = 0; pos < 48; pos++) {
		struct tw_err err;
		size_t n = 0;
		char want[40];

		s[n++] = '"';
		memset(s + n, 'a', pos);
		n += pos;
		/* valid 2-byte sequence, then a control byte: rejected at its offset */
		memcpy(s + n, "\xc3\xa9", 2);
		n += 2;
		s[n++] = 0x1f;
		s[n++] = '"';
		cr_assert_eq(validate_n(s, n, 8, &err), TW_EPARSE, "pos %zu", pos);
		snprintf(want, sizeof want, "offset %zu: control", pos + 3);
		cr_assert(strstr(err.msg, want), "pos %zu: %s", pos, err.msg);

		/* same without the control byte: accepted */
		s[n - 2] = '"';
		cr_assert_eq(validate_n(s, n - 1, 8, &err), TW_OK, "pos %zu: %s", pos, err.msg);

		/* an invalid byte at pos */
		s[1 + pos] = (char)0xfe;
		cr_assert_eq(validate_n(s, n - 1, 8, &err), TW_EPARSE, "pos %zu", pos);
		snprintf(want, sizeof want, "offset %zu: invalid UTF-8", pos + 1);
		cr_assert(strstr(err.msg, want), "pos %zu: %s", pos, err.msg);

		/* the string cut before its closing quote */
		s[1 + pos] = (char)0xc3;
		cr_assert_eq(validate_n(s, n - 2, 8, &err), TW_EPARSE, "pos %zu", pos);
		cr_assert(strstr(err.msg, "unexpected end of input"), "%s", err.msg);
	}
}

static char *nested(char open, char close, size_t depth, size_t *n)
{
	char *s = malloc(2 * depth + 1);
	cr_assert(s);
	memset(s, open, depth);
	memset(s + depth, close, depth);
	*n = 2 * depth;
	return s;
}

Test(core_json, caps_nesting_depth_with_elimit)
{
	struct tw_err err;
	size_t n;
	char *s = nested('[', ']', 10000, &n);

	cr_assert_eq(tw_json_validate(s, n, 256, &err), TW_ELIMIT);
	cr_assert(strstr(err.msg, "offset 256: nesting deeper than 256"), "%s", err.msg);
	/* Deeper than the reader's on-stack bit stack, allowed by max_depth: accepted. */
	cr_assert_eq(tw_json_validate(s, n, 10000, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_json_validate(s, n, 9999, &err), TW_ELIMIT);
	free(s);

	/* Exactly max_depth levels pass, one more fails. */
	s = nested('[', ']', 256, &n);
	cr_assert_eq(tw_json_validate(s, n, 256, &err), TW_OK);
	cr_assert_eq(tw_json_validate(s, n, 255, &err), TW_ELIMIT);
	free(s);

	/* 10,000 levels of objects, unterminated. */
	n = 0;
	s = malloc(5 * 10000);
	cr_assert(s);
	for (int i = 0; i < 10000; i++) {
		memcpy(s + n, "{\"a\":", 5);
		n += 5;
	}
	cr_assert_eq(tw_json_validate(s, n, 256, &err), TW_ELIMIT);
	free(s);
}

Test(core_json, pull_reader_caps_depth_too)
{
	struct tw_json j;
	size_t n;
	char *s = nested('[', ']', 10000, &n);
	int opened = 0;

	tw_json_init(&j, s, n, 300);
	while (tw_json_arr_begin(&j))
		opened++;
	cr_assert_eq(opened, 300);
	cr_assert_eq(j.err.rc, TW_ELIMIT);
	/* Sticky: nothing works afterwards and the message stays. */
	cr_assert_eq(tw_json_arr_next(&j), -1);
	cr_assert_eq(tw_json_skip(&j, NULL), 0);
	cr_assert(strstr(j.err.msg, "offset 300: nesting deeper than 300"), "%s", j.err.msg);
	free(s);
}

Test(core_json, pull_reader_walks_a_document)
{
	static const char doc[] = "{\"k\\\"ey\": \"v\\\\al\", \"n\": -12.5e3, \"t\": true, \"f\": false, \"z\": null,\n"
				  " \"o\": {\"x\": [1, {\"y\": 2}]}, \"a\": [], \"s\": \"plain\"} ";
	struct tw_json j;
	struct tw_str k, s;
	enum tw_json_type t;
	int esc = -1;
	struct tw_arena a;
	struct tw_str dec;

	tw_arena_init(&a, 0, 0);
	tw_json_init(&j, doc, sizeof doc - 1, 16);
	cr_assert_eq(tw_json_peek(&j), TW_JSON_OBJECT);
	cr_assert(tw_json_obj_begin(&j));

	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert_eq(k.n, 5);
	cr_assert(memcmp(k.p, "k\\\"ey", 5) == 0, "key kept raw");
	cr_assert_eq(tw_json_peek(&j), TW_JSON_STRING);
	cr_assert(tw_json_string(&j, &s, &esc));
	cr_assert_eq(esc, 1);
	cr_assert(s.n == 5 && memcmp(s.p, "v\\\\al", 5) == 0);
	cr_assert_eq(tw_json_unescape(s, &a, &dec, NULL), TW_OK);
	cr_assert(dec.n == 4 && memcmp(dec.p, "v\\al", 4) == 0 && dec.p[4] == '\0');

	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert(tw_str_eq(k, "n"));
	cr_assert_eq(tw_json_peek(&j), TW_JSON_NUMBER);
	cr_assert(tw_json_scalar(&j, &t, &s, &esc));
	cr_assert_eq(t, TW_JSON_NUMBER);
	cr_assert(tw_str_eq(s, "-12.5e3"));
	cr_assert_eq(esc, 0);

	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert(tw_str_eq(k, "t"));
	cr_assert(tw_json_scalar(&j, &t, &s, NULL));
	cr_assert(t == TW_JSON_TRUE && tw_str_eq(s, "true"));
	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert(tw_json_scalar(&j, &t, &s, NULL));
	cr_assert(t == TW_JSON_FALSE && tw_str_eq(s, "false"));
	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert_eq(tw_json_peek(&j), TW_JSON_NULL);
	cr_assert(tw_json_scalar(&j, &t, &s, NULL));
	cr_assert(t == TW_JSON_NULL && tw_str_eq(s, "null"));

	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert(tw_str_eq(k, "o"));
	cr_assert(tw_json_skip(&j, &s));
	cr_assert(tw_str_eq(s, "{\"x\": [1, {\"y\": 2}]}"), "raw %.*s", (int)s.n, s.p);

	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert(tw_str_eq(k, "a"));
	cr_assert_eq(tw_json_peek(&j), TW_JSON_ARRAY);
	cr_assert(tw_json_arr_begin(&j));
	cr_assert_eq(tw_json_arr_next(&j), 0);

	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert(tw_str_eq(k, "s"));
	cr_assert(tw_json_scalar(&j, &t, &s, &esc));
	cr_assert(t == TW_JSON_STRING && tw_str_eq(s, "plain") && esc == 0);
	cr_assert(s.p > doc && s.p < doc + sizeof doc, "zero-copy slice");

	cr_assert_eq(tw_json_obj_next(&j, &k), 0);
	cr_assert(tw_json_end(&j));
	cr_assert_eq(tw_json_offset(&j), sizeof doc - 1);
	cr_assert_eq(j.err.rc, TW_OK);
	tw_arena_free(&a);
}

Test(core_json, pull_reader_arrays_and_scalar_containers)
{
	static const char doc[] = "[1, \"two\", [3], {\"four\": 4}]";
	struct tw_json j;
	struct tw_str s;
	enum tw_json_type t;
	int n = 0;

	tw_json_init(&j, doc, sizeof doc - 1, 8);
	cr_assert(tw_json_arr_begin(&j));
	while (tw_json_arr_next(&j) == 1) {
		cr_assert(tw_json_scalar(&j, &t, &s, NULL));
		switch (n++) {
		case 0: cr_assert(t == TW_JSON_NUMBER && tw_str_eq(s, "1")); break;
		case 1: cr_assert(t == TW_JSON_STRING && tw_str_eq(s, "two")); break;
		case 2: cr_assert(t == TW_JSON_ARRAY && tw_str_eq(s, "[3]")); break;
		case 3: cr_assert(t == TW_JSON_OBJECT && tw_str_eq(s, "{\"four\": 4}")); break;
		}
	}
	cr_assert_eq(n, 4);
	cr_assert(tw_json_end(&j), "%s", j.err.msg);
}

Test(core_json, pull_reader_rejects_what_it_is_asked_wrongly)
{
	struct tw_json j;
	struct tw_str s, k;

	tw_json_init(&j, "123", 3, 8);
	cr_assert_eq(tw_json_string(&j, &s, NULL), 0);
	cr_assert(strstr(j.err.msg, "offset 0: expected a string"), "%s", j.err.msg);

	tw_json_init(&j, "[1,2]", 5, 8);
	cr_assert_eq(tw_json_obj_begin(&j), 0);
	cr_assert_eq(j.err.rc, TW_EPARSE);

	/* skip validates what it passes over */
	static const char ctl[] = "{\"a\":[1,\"\x01\"],\"b\":2}";
	tw_json_init(&j, ctl, sizeof ctl - 1, 8);
	cr_assert(tw_json_obj_begin(&j));
	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert_eq(tw_json_skip(&j, NULL), 0);
	cr_assert(strstr(j.err.msg, "offset 9: control character"), "%s", j.err.msg);
	cr_assert_eq(tw_json_obj_next(&j, &k), -1, "errors are sticky");

	tw_json_init(&j, "{\"a\":{\"b\":1,}}", 14, 8);
	cr_assert(tw_json_obj_begin(&j));
	cr_assert_eq(tw_json_obj_next(&j, &k), 1);
	cr_assert_eq(tw_json_skip(&j, NULL), 0);
	cr_assert(strstr(j.err.msg, "offset 12: trailing comma"), "%s", j.err.msg);

	/* end: trailing data */
	tw_json_init(&j, "{} {}", 5, 8);
	cr_assert(tw_json_skip(&j, NULL));
	cr_assert_eq(tw_json_end(&j), 0);
	cr_assert(strstr(j.err.msg, "offset 3"), "%s", j.err.msg);
}

/* Every strict prefix of a real record is invalid JSON: each must fail cleanly (ASan checks reads). */
Test(core_json, truncation_at_every_offset_fails_cleanly)
{
	char *path = tw_test_join(tw_test_src(), "tests/data/cloudtrail/SerializerVariousUserIdentityTestFile.json");
	size_t n = 0;
	char *doc = tw_test_read_file(path, &n);
	struct tw_err err;

	cr_assert(doc, "cannot read %s", path);
	cr_assert_eq(validate_n(doc, n, 64, &err), TW_OK, "%s", err.msg);
	for (size_t k = 0; k < n; k++) {
		/* Trailing whitespace after the closing brace is the only valid cut. */
		int valid_cut = k > 0 && strspn(doc + k, " \t\r\n") == n - k;
		enum tw_rc rc = validate_n(doc, k, 64, &err);
		if (valid_cut)
			continue;
		cr_assert_eq(rc, TW_EPARSE, "prefix of %zu bytes: rc %d", k, rc);
	}
	free(doc);
	free(path);
}

Test(core_json, unescapes_every_escape)
{
	static const char raw[] = "\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\\u0000z";
	static const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0z";
	struct tw_arena a;
	struct tw_str out;
	struct tw_buf b;
	struct tw_err err;

	tw_arena_init(&a, 0, 0);
	cr_assert_eq(tw_json_unescape((struct tw_str){ raw, sizeof raw - 1 }, &a, &out, &err), TW_OK);
	cr_assert_eq(out.n, sizeof want - 1);
	cr_assert(memcmp(out.p, want, out.n) == 0);

	tw_buf_init(&b, 1024);
	cr_assert_eq(tw_buf_append(&b, "x", 1, &err), TW_OK);
	cr_assert_eq(tw_json_unescape_buf((struct tw_str){ raw, sizeof raw - 1 }, &b, &err), TW_OK);
	cr_assert_eq(b.n, 1 + sizeof want - 1);
	cr_assert(b.p[0] == 'x' && memcmp(b.p + 1, want, sizeof want - 1) == 0);

	/* Text the reader would have rejected: an error, never a crash or an overread. */
	static const char *const broken[] = { "\\", "\\x", "\\u12", "\\ud800", "\\udc00", "\\ud800\\u0041" };
	for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
		struct tw_str r = { broken[i], strlen(broken[i]) };
		cr_assert_eq(tw_json_unescape(r, &a, &out, &err), TW_EPARSE, "%s", broken[i]);
	}
	tw_buf_free(&b);
	tw_arena_free(&a);
}

static void write_is(const char *in, size_t n, const char *want)
{
	struct tw_buf b;
	struct tw_err err;

	tw_buf_init(&b, 4096);
	cr_assert_eq(tw_json_write_str(&b, in, n, &err), TW_OK);
	cr_assert(b.n == strlen(want) && memcmp(b.p, want, b.n) == 0, "got [%.*s] want [%s]", (int)b.n, b.p, want);
	tw_buf_free(&b);
}

Test(core_json, write_str_escapes)
{
	write_is("", 0, "\"\"");
	write_is("plain", 5, "\"plain\"");
	write_is("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	write_is("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
	write_is("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
	write_is("a\0b", 3, "\"a\\u0000b\"");
	write_is("/", 1, "\"/\"");
	write_is("\xe2\x80\xa8|\xe2\x80\xa9", 7, "\"\\u2028|\\u2029\"");
	write_is("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
}

Test(core_json, write_str_replaces_invalid_utf8)
{
	/* One U+FFFD per maximal ill-formed subpart (Unicode 3.9, "U+FFFD substitution"). */
	write_is("a\xff" "b", 3, "\"a\xef\xbf\xbd" "b\"");
	write_is("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	write_is("\xe2\x82", 2, "\"\xef\xbf\xbd\"");
	write_is("\xe2\x82x", 3, "\"\xef\xbf\xbdx\"");
	write_is("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	write_is("\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	write_is("\xf0\x9f\x98", 3, "\"\xef\xbf\xbd\"");
	write_is("\x80\x80", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
}

Test(core_json, write_str_then_unescape_round_trips)
{
	char in[300];
	size_t n = 0;
	struct tw_buf b;
	struct tw_err err;
	struct tw_arena a;
	struct tw_str out;
	struct tw_json j;
	struct tw_str s;
	int esc;

	for (int c = 0; c < 0x80; c++)
		in[n++] = (char)c;
	memcpy(in + n, "\xc3\xa9\xe2\x80\xa8\xf4\x8f\xbf\xbf\xef\xbf\xbf", 12);
	n += 12;

	tw_buf_init(&b, 4096);
	tw_arena_init(&a, 0, 0);
	cr_assert_eq(tw_json_write_str(&b, in, n, &err), TW_OK);
	cr_assert_eq(tw_json_validate(b.p, b.n, 4, &err), TW_OK, "%s", err.msg);
	tw_json_init(&j, b.p, b.n, 4);
	cr_assert(tw_json_string(&j, &s, &esc));
	cr_assert_eq(esc, 1);
	cr_assert_eq(tw_json_unescape(s, &a, &out, &err), TW_OK);
	cr_assert_eq(out.n, n);
	cr_assert(memcmp(out.p, in, n) == 0);
	tw_arena_free(&a);
	tw_buf_free(&b);
}

Test(core_json, write_str_respects_the_buffer_cap)
{
	struct tw_buf b;
	struct tw_err err;

	tw_buf_init(&b, 8);
	cr_assert_eq(tw_json_write_str(&b, "0123456789", 10, &err), TW_ELIMIT);
	tw_buf_free(&b);
}
