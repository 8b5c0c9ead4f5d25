/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_config.c: core/config.c (tw_config_parse) on arbitrary bytes. Any text either
 * loads or fails with a message naming the file; a loaded config formats as text and as JSON, and
 * the normalized JSON loads again to the same normalized JSON (config.c's invariant 6). */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "tests/fuzz/fuzz.h"

static void no_warn(void *ctx, const char *msg)
{
	(void)ctx;
	if (!msg[0])
		abort();
}

TW_FUZZ_TARGET(config)
{
	struct tw_config *cfg = NULL, *again = NULL;
	struct tw_err err;
	struct tw_buf text, json, json2;

	if (tw_config_parse((const char *)data, size, "fuzz.json", &cfg, &err) != TW_OK) {
		if (cfg || strncmp(err.msg, "fuzz.json", 9)) /* *out untouched; the message names the file */
			abort();
		return 0;
	}
	tw_buf_init(&text, 16u << 20);
	tw_buf_init(&json, 16u << 20);
	tw_buf_init(&json2, 16u << 20);
	if (tw_config_format(cfg, TW_CONFIG_FMT_TEXT, &text, &err) != TW_OK)
		abort();
	if (tw_config_format(cfg, TW_CONFIG_FMT_JSON, &json, &err) != TW_OK)
		abort();
	/* the normalized document is itself a valid config with the same settings */
	if (tw_config_parse(json.p, json.n, "normalized.json", &again, &err) != TW_OK)
		abort();
	if (tw_config_format(again, TW_CONFIG_FMT_JSON, &json2, &err) != TW_OK || json.n != json2.n ||
	    memcmp(json.p, json2.p, json.n))
		abort();
	(void)tw_config_warnings(cfg, no_warn, NULL);
	tw_config_free(again);
	tw_config_free(cfg);
	tw_buf_free(&text);
	tw_buf_free(&json);
	tw_buf_free(&json2);
	return 0;
}
