/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_golden_decode.c: the exact output of `trailwatch decode --raw` (stdout) and its
 * reject lines (stderr) on the real fixtures copied under tests/data/, compared with reviewed golden
 * files in tests/golden/decode/. Any change in what is extracted, how it is printed, or which records
 * are rejected and why shows up as a diff to review (TW_UPDATE_GOLDEN=1 make test rewrites them). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/helpers.h"

/* The fixtures: one golden file each (name = path with '/' turned into '_'). */
static const char *const fixtures[] = {
	"cloudtrail/SerializerVariousUserIdentityTestFile.json",
	"cloudtrail/SerializerAllFieldsNull.json",
	"cloudtrail/SerializerTestFileNewFieldAtRandomPlaces.json",
	"cloudtrail/SerializerTestFileBadJsonFormat.json",
	"cloudtrail/SerializerTestFileBadFieldName.json",
	"cloudwatch/datadog_forwarder_cloudwatch_events/cloudwatch_log_cloudtrail.json",
	"cloudwatch/otel_awslogs_encoding_testdata/multiple_json_objects.json",
	"cloudwatch/otel_awslogs_encoding_testdata/valid_cloudwatch_log.json",
	"cloudwatch/powertools_lambda_events/kinesisStreamCloudWatchLogsEvent.json",
};

static void check_one(const char *rel)
{
	const char *bin = tw_test_bin();
	char *data = tw_test_join(tw_test_src(), "tests/data");
	char *path = tw_test_join(data, rel);
	char name[512], *q;
	struct tw_test_run r;
	const char *argv[] = { bin, "decode", "--raw", "--quiet", path, NULL };
	char *both;
	size_t nboth;

	tw_test_run(&r, NULL, argv);
	cr_assert(r.status == 0 || r.status == 1, "%s: exit %d: %s", rel, r.status, r.err);
	/* stderr names the file by the path given: make it relative so goldens do not depend on where
	 * the tree is. */
	nboth = r.nout + r.nerr + 64;
	both = malloc(nboth);
	cr_assert(both);
	{
		size_t n = 0, plen = strlen(path);
		const char *e = r.err;
		n += (size_t)snprintf(both + n, nboth - n, "%s", r.out);
		n += (size_t)snprintf(both + n, nboth - n, "--- stderr (exit %d)\n", r.status);
		while (*e) {
			const char *hit = strstr(e, path);
			size_t k = hit ? (size_t)(hit - e) : strlen(e);
			memcpy(both + n, e, k);
			n += k;
			e += k;
			if (hit) {
				n += (size_t)snprintf(both + n, nboth - n, "%s", rel);
				e += plen;
			}
		}
		snprintf(name, sizeof name, "decode/%s.out", rel);
		for (q = name + strlen("decode/"); *q; q++)
			if (*q == '/')
				*q = '_';
		tw_test_golden(name, both, n);
	}
	free(both);
	tw_test_run_free(&r);
	free(path);
	free(data);
}

Test(golden_decode, fixtures_decode_to_the_reviewed_output)
{
	for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
		check_one(fixtures[i]);
}
