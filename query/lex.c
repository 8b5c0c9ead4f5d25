/* SPDX-License-Identifier: Apache-2.0 */
/* query/lex.c: splits query text into tokens and positions error messages ("column C: ...").
 * Pure: no allocation beyond the token array, no knowledge of commands or fields.
 *
 * Invariants:
 *  1. Tokens cover the text in order; every token has the byte offset of its first byte.
 *  2. A '/' starts a regex only right after the keyword "like" or the operator "=~" (the language
 *     has no division), so paths and regexes never need lookahead in the parser.
 *  3. String escapes are validated here (so the parser's decoding cannot fail on them). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/query_int.h"

enum tw_rc tw_q_errat(struct tw_err *err, enum tw_rc rc, const char *text, size_t n, size_t off,
		      const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (off > n)
		off = n;
	size_t line = 1, bol = 0;
	int multi = memchr(text, '\n', n) != NULL;
	for (size_t i = 0; i < off; i++)
		if (text[i] == '\n') {
			line++;
			bol = i + 1;
		}
	if (multi)
		return tw_err_set(err, rc, "line %zu, column %zu: %s", line, off - bol + 1, msg);
	return tw_err_set(err, rc, "column %zu: %s", off + 1, msg);
}

static int isdig(char c) { return c >= '0' && c <= '9'; }
static int isalpha_(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int wordstart(char c) { return isalpha_(c) || c == '_' || c == '@' || c == '$'; }
static int wordchar(char c) { return wordstart(c) || isdig(c) || c == '-'; }
static int ishex(char c) { return isdig(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Describes the byte at p for a message. */
static const char *showc(char c, char *buf, size_t cap)
{
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, cap, "'%c'", c);
	else
		snprintf(buf, cap, "byte 0x%02x", (unsigned char)c);
	return buf;
}

/* Scans a quoted string starting at text[i] (the quote); returns the offset after the closing
 * quote, or 0 with err set. */
static size_t scan_string(const char *text, size_t n, size_t i, struct tw_err *err)
{
	char q = text[i];
	size_t j = i + 1;
	while (j < n && text[j] != q) {
		if (text[j] == '\n') {
			tw_q_errat(err, TW_EPARSE, text, n, i, "unterminated string");
			return 0;
		}
		if (text[j] == '\\') {
			if (j + 1 >= n)
				break;
			char e = text[j + 1];
			if (e == 'u') {
				for (size_t k = 0; k < 4; k++)
					if (j + 2 + k >= n || !ishex(text[j + 2 + k])) {
						tw_q_errat(err, TW_EPARSE, text, n, j, "expected 4 hex digits after \\u");
						return 0;
					}
				j += 6;
				continue;
			}
			if (!strchr("\"'\\/bfnrt", e) || e == '\0') {
				if (e > 0x20 && e < 0x7f)
					tw_q_errat(err, TW_EPARSE, text, n, j, "invalid escape '\\%c' in string", e);
				else
					tw_q_errat(err, TW_EPARSE, text, n, j, "invalid escape in string (backslash before byte 0x%02x)",
						   (unsigned char)e);
				return 0;
			}
			j += 2;
			continue;
		}
		j++;
	}
	if (j >= n) {
		tw_q_errat(err, TW_EPARSE, text, n, i, "unterminated string");
		return 0;
	}
	return j + 1;
}

/* Scans a word (segments joined by '.'); returns the end offset, or 0 with err set. */
static size_t scan_word(const char *text, size_t n, size_t i, int *quoted, struct tw_err *err)
{
	*quoted = 0;
	for (;;) {
		if (i < n && text[i] == '`') {
			size_t j = i + 1;
			while (j < n && text[j] != '`' && text[j] != '\n')
				j++;
			if (j >= n || text[j] != '`') {
				tw_q_errat(err, TW_EPARSE, text, n, i, "unterminated backquoted name");
				return 0;
			}
			if (j == i + 1) {
				tw_q_errat(err, TW_EPARSE, text, n, i, "empty backquoted name");
				return 0;
			}
			*quoted = 1;
			i = j + 1;
		} else {
			while (i < n && wordchar(text[i]))
				i++;
		}
		if (i + 1 < n && text[i] == '.' && (wordchar(text[i + 1]) || text[i + 1] == '`'))
			i++;
		else
			return i;
	}
}

static int after_regex_opener(const struct qtok *prev, const char *text)
{
	if (!prev)
		return 0;
	if (prev->t == QT_MATCH)
		return 1;
	return prev->t == QT_WORD && !prev->quoted && prev->len == 4 && !strncasecmp(text + prev->off, "like", 4);
}

enum tw_rc tw_q_lex(const char *text, size_t n, struct qtok **toks, size_t *ntoks, struct tw_err *err)
{
	size_t cap = 16, cnt = 0;
	struct qtok *v = malloc(cap * sizeof *v);
	if (!v)
		return tw_err_set(err, TW_ENOMEM, "out of memory lexing a query");
	size_t i = 0;
	for (;;) {
		while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
			i++;
		if (cnt + 1 >= cap) {
			struct qtok *nv = realloc(v, 2 * cap * sizeof *v);
			if (!nv) {
				free(v);
				return tw_err_set(err, TW_ENOMEM, "out of memory lexing a query");
			}
			v = nv;
			cap *= 2;
		}
		struct qtok *t = &v[cnt];
		memset(t, 0, sizeof *t);
		t->off = i;
		if (i >= n) {
			t->t = QT_EOF;
			cnt++;
			break;
		}
		char c = text[i];
		char c1 = i + 1 < n ? text[i + 1] : '\0';
		size_t e = i + 1;
		switch (c) {
		case '|': t->t = QT_PIPE; break;
		case ',': t->t = QT_COMMA; break;
		case '(': t->t = QT_LP; break;
		case ')': t->t = QT_RP; break;
		case '[': t->t = QT_LB; break;
		case ']': t->t = QT_RB; break;
		case '*': t->t = QT_STAR; break;
		case '=':
			if (c1 == '~') {
				t->t = QT_MATCH;
				e++;
			} else {
				t->t = QT_EQ;
				if (c1 == '=')
					e++;
			}
			break;
		case '!':
			if (c1 != '=') {
				free(v);
				return tw_q_errat(err, TW_EPARSE, text, n, i, "expected '=' after '!'");
			}
			t->t = QT_NE;
			e++;
			break;
		case '<':
			t->t = c1 == '=' ? QT_LE : QT_LT;
			e += c1 == '=';
			break;
		case '>':
			t->t = c1 == '=' ? QT_GE : QT_GT;
			e += c1 == '=';
			break;
		case '"':
		case '\'':
			t->t = QT_STR;
			e = scan_string(text, n, i, err);
			if (!e) {
				free(v);
				return err ? err->rc : TW_EPARSE;
			}
			break;
		case '/':
			if (!after_regex_opener(cnt ? &v[cnt - 1] : NULL, text)) {
				free(v);
				return tw_q_errat(err, TW_EPARSE, text, n, i, "unexpected '/' (a regex follows only like or =~)");
			}
			t->t = QT_REGEX;
			while (e < n && text[e] != '/') {
				if (text[e] == '\\' && e + 1 < n)
					e++;
				e++;
			}
			if (e >= n) {
				free(v);
				return tw_q_errat(err, TW_EPARSE, text, n, i, "unterminated regex");
			}
			e++;
			while (e < n && isalpha_(text[e]))
				e++;
			break;
		default:
			if (isdig(c) || (c == '-' && (isdig(c1) || c1 == '.')) || (c == '.' && isdig(c1))) {
				t->t = QT_NUM;
				e = i + (c == '-');
				while (e < n && isdig(text[e]))
					e++;
				if (e < n && text[e] == '.') {
					e++;
					while (e < n && isdig(text[e]))
						e++;
				}
				if (e + 1 < n && (text[e] == 'e' || text[e] == 'E') &&
				    (isdig(text[e + 1]) || ((text[e + 1] == '+' || text[e + 1] == '-') && e + 2 < n &&
							    isdig(text[e + 2])))) {
					e += 2;
					while (e < n && isdig(text[e]))
						e++;
				}
				if (e < n && (wordchar(text[e]) || text[e] == '.')) {
					t->t = QT_DUR;
					while (e < n && (wordchar(text[e]) || text[e] == '.'))
						e++;
				}
			} else if (wordstart(c) || c == '`') {
				t->t = QT_WORD;
				e = scan_word(text, n, i, &t->quoted, err);
				if (!e) {
					free(v);
					return err ? err->rc : TW_EPARSE;
				}
			} else {
				char b[16];
				free(v);
				return tw_q_errat(err, TW_EPARSE, text, n, i, "unexpected %s", showc(c, b, sizeof b));
			}
		}
		t->len = e - i;
		i = e;
		cnt++;
	}
	*toks = v;
	*ntoks = cnt;
	return TW_OK;
}
