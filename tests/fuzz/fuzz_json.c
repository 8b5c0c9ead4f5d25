/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_json.c: core/json.c. The pull API must agree with tw_json_validate, validated
 * strings must unescape, and tw_json_write_str must always produce valid JSON. */
#include <stdlib.h>
#include "core/json.h"
#include "tests/fuzz/fuzz.h"

TW_FUZZ_TARGET(json)
{
	const char *p = (const char *)data;
	struct tw_err err;
	struct tw_json j;
	struct tw_str k, s;
	enum tw_json_type t;
	struct tw_arena a;
	struct tw_buf b = { .max = 8 * size + 16 };
	int esc, valid = tw_json_validate(p, size, 64, &err) == TW_OK;

	tw_arena_init(&a, 0, 0);
	tw_json_init(&j, p, size, 64); /* walk one level with the pull API, skip below */
	if (tw_json_peek(&j) == TW_JSON_OBJECT && tw_json_obj_begin(&j)) {
		while (tw_json_obj_next(&j, &k) == 1)
			if (tw_json_scalar(&j, &t, &s, &esc) && t == TW_JSON_STRING && esc &&
			    tw_json_unescape(s, &a, &s, NULL) != TW_OK)
				abort();
	} else if (tw_json_peek(&j) == TW_JSON_ARRAY && tw_json_arr_begin(&j)) {
		while (tw_json_arr_next(&j) == 1)
			tw_json_scalar(&j, &t, &s, &esc);
	} else {
		tw_json_skip(&j, NULL);
	}
	if (tw_json_end(&j) != valid) /* the pull API agrees with the validator */
		abort();
	if (tw_json_write_str(&b, p, size, &err) != TW_OK || tw_json_validate(b.p, b.n, 1, &err) != TW_OK)
		abort();
	tw_buf_free(&b);
	tw_arena_free(&a);
	return 0;
}
