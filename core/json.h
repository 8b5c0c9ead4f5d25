/* SPDX-License-Identifier: Apache-2.0 */
/* core/json.h: a validating, zero-copy pull reader for JSON text, and a JSON string writer.
 *
 * Why our own: jansson builds a DOM (~48k CloudTrail records/s per core here); the ingest hot
 * path only needs a dozen fields out of each record but must still reject invalid JSON. This
 * reader walks the text once, validates everything it passes over (including values it skips,
 * UTF-8 inside strings, and nesting depth), and hands out slices of the input. jansson stays
 * the tool for configuration files and cold paths.
 *
 * Usage pattern (errors are sticky: after the first one every call fails with the same message):
 *
 *   struct tw_json j;
 *   tw_json_init(&j, p, n, 512);
 *   if (tw_json_obj_begin(&j)) ... ;
 *   struct tw_str key;
 *   while (tw_json_obj_next(&j, &key) == 1) {          // key: raw bytes between the quotes
 *       if (tw_str_eq(key, "eventTime")) tw_json_string(&j, &s, &esc);
 *       else tw_json_skip(&j, NULL);
 *   }
 *   tw_json_end(&j);     // only whitespace may follow the top-level value
 *
 * Rules it enforces (RFC 8259): no trailing commas, no comments, no leading zeros, no NaN, no
 * control characters (< 0x20) in strings, valid escapes (\uXXXX surrogates paired), valid UTF-8
 * (no overlongs, no surrogates, <= U+10FFFF), nesting at most max_depth. */
#ifndef TW_CORE_JSON_H
#define TW_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

enum tw_json_type {
	TW_JSON_NONE = 0, /* end of input or error */
	TW_JSON_NULL,
	TW_JSON_FALSE,
	TW_JSON_TRUE,
	TW_JSON_NUMBER,
	TW_JSON_STRING,
	TW_JSON_OBJECT,
	TW_JSON_ARRAY,
};

/* Reader state. Fields are private to core/json.c except `err`, read after a failure. */
struct tw_json {
	const char *start;  /* first byte of the text */
	const char *p;      /* next byte to read */
	const char *end;    /* one past the last byte */
	unsigned depth;     /* current nesting */
	unsigned max_depth; /* cap on nesting; deeper input fails with TW_ELIMIT */
	uint8_t first;      /* 1 right after obj_begin/arr_begin (no comma expected yet) */
	struct tw_err err;  /* the first error: message says "offset N: reason" */
};

void tw_json_init(struct tw_json *j, const char *p, size_t n, unsigned max_depth);

/* Type of the next value after skipping whitespace (no consumption); TW_JSON_NONE at the end of
 * input or on a byte that cannot start a value (the error is set by the call that consumes it). */
enum tw_json_type tw_json_peek(struct tw_json *j);

/* Consumes '{' and returns 1, or returns 0 and sets the error. */
int tw_json_obj_begin(struct tw_json *j);
/* Steps to the next member: returns 1 with *key = the key's raw bytes between the quotes
 * (escapes not decoded: callers compare keys as written, which is how every producer we read
 * writes them) and the reader positioned on the member's value; 0 at the closing '}' (consumed);
 * -1 on error. */
int tw_json_obj_next(struct tw_json *j, struct tw_str *key);
/* Consumes '[' and returns 1, or 0 on error. */
int tw_json_arr_begin(struct tw_json *j);
/* Returns 1 when another element follows (reader positioned on it), 0 at ']' (consumed), -1 on error. */
int tw_json_arr_next(struct tw_json *j);

/* Validates and skips the next value; *raw (may be NULL) gets its bytes (quotes and brackets
 * included). Returns 1, or 0 on error. */
int tw_json_skip(struct tw_json *j, struct tw_str *raw);

/* Reads a string value: *s = raw bytes between the quotes, *escaped = 1 when it holds a
 * backslash (decode with tw_json_unescape). Returns 1, or 0 if the value is not a valid string. */
int tw_json_string(struct tw_json *j, struct tw_str *s, int *escaped);

/* Reads any scalar (string, number, true, false, null): *type and *s (string: between the quotes;
 * others: the literal text). Containers are skipped and reported with their type and raw bytes.
 * Returns 1, or 0 on error. */
int tw_json_scalar(struct tw_json *j, enum tw_json_type *type, struct tw_str *s, int *escaped);

/* After the top-level value: 1 if only whitespace remains, else 0 with an error. */
int tw_json_end(struct tw_json *j);

/* Offset of the reader from the start of the text. */
size_t tw_json_offset(const struct tw_json *j);

/* Decodes the escapes of a string's raw inner bytes (already validated by the reader) into the
 * arena; *out = the decoded UTF-8 (NUL-terminated in the arena). */
enum tw_rc tw_json_unescape(struct tw_str raw, struct tw_arena *a, struct tw_str *out, struct tw_err *err);
/* Same into a buffer (appends). */
enum tw_rc tw_json_unescape_buf(struct tw_str raw, struct tw_buf *b, struct tw_err *err);

/* Validates a whole text as exactly one JSON value (with surrounding whitespace): TW_OK, or
 * TW_EPARSE/TW_ELIMIT with "offset N: reason". */
enum tw_rc tw_json_validate(const char *p, size_t n, unsigned max_depth, struct tw_err *err);

/* Appends s as a JSON string literal (with quotes), escaping '"', '\\', control bytes, and
 * U+2028/U+2029; bytes that are not valid UTF-8 become U+FFFD. */
enum tw_rc tw_json_write_str(struct tw_buf *b, const char *s, size_t n, struct tw_err *err);

#endif
