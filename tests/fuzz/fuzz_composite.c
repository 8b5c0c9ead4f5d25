/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_composite.c: alerts/alarm.c composite rule parser. Any input either parses (and
 * then evaluates without crashing, and only names it parsed) or fails with a "column N" message. */
#include <stdlib.h>
#include <string.h>
#include "alerts/alarm.h"
#include "tests/fuzz/fuzz.h"

static int all_alarm(void *ctx, const char *name)
{
	(void)ctx;
	return name[0] & 1 ? TW_ALARM_ALARM : TW_ALARM_OK;
}

TW_FUZZ_TARGET(composite)
{
	char *text = malloc(size + 1);
	struct tw_alarm_rule *r = NULL;
	struct tw_err err;
	const char *const *names;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* a NUL inside ends the rule, as in a C string */
	if (tw_alarm_rule_parse(text, &r, &err) == TW_OK) {
		size_t n = tw_alarm_rule_names(r, &names);
		for (size_t i = 0; i < n; i++)
			if (!names[i][0])
				abort();
		(void)tw_alarm_rule_eval(r, all_alarm, NULL);
		tw_alarm_rule_free(r);
	} else if (err.rc == TW_EPARSE && !strstr(err.msg, "column ")) {
		abort();
	}
	free(text);
	return 0;
}
