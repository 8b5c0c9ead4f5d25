/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_ingest_cloudtrail.c: ingest/cloudtrail.c (tw_ct_decode) on real records.
 * Expected values were read by hand from each fixture (tests/data/cloudtrail/, and the Elastic
 * fixtures under $TW_SHARED/data/cloudtrail/, read at run time, skipped when absent), then derived
 * with the numbered rules at the top of ingest/cloudtrail.c. Epoch values were computed with
 * Python's datetime (datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/time.h"
#include "ingest/ingest_int.h"
#include "tests/helpers/helpers.h"

/* One decoded record. The record bytes live in their own exact-size allocation. */
struct dec {
	char *rec;              /* the record (malloc'd, exactly n bytes) */
	size_t n;               /* its length */
	struct tw_arena a;      /* where the decoder puts what it makes */
	struct tw_event ev;     /* the result */
	enum tw_rec_class cls;  /* the classification (-1 until set) */
	enum tw_rc rc;          /* tw_ct_decode's return */
	struct tw_err err;      /* its message */
};

static void dec_run(struct dec *d, const char *p, size_t n)
{
	memset(d, 0, sizeof *d);
	d->rec = malloc(n ? n : 1);
	cr_assert(d->rec);
	memcpy(d->rec, p, n);
	d->n = n;
	tw_arena_init(&d->a, 0, 0);
	d->ev.read_only = -1;
	d->cls = (enum tw_rec_class) - 1;
	tw_err_clear(&d->err);
	d->rc = tw_ct_decode(d->rec, n, 256, &d->a, &d->ev, &d->cls, &d->err);
}

static void dec_str(struct dec *d, const char *s)
{
	dec_run(d, s, strlen(s));
}

static void dec_free(struct dec *d)
{
	tw_arena_free(&d->a);
	free(d->rec);
}

/* Decodes and requires an event. */
static void dec_event(struct dec *d, const char *p, size_t n)
{
	dec_run(d, p, n);
	cr_assert_eq(d->rc, TW_OK, "decode failed: %s", d->err.msg);
	cr_assert_eq(d->cls, TW_REC_EVENT, "class %d", d->cls);
}

static void dec_event_str(struct dec *d, const char *s)
{
	dec_event(d, s, strlen(s));
}

#define FIELD_IS(d_, fld_, want_)                                                                    \
	do {                                                                                         \
		struct tw_str s_ = (d_)->ev.f[fld_];                                                \
		cr_assert(tw_str_eq(s_, want_), "%s: got \"%.*s\", want \"%s\"", tw_field_name(fld_), \
			  (int)s_.n, s_.p ? s_.p : "", want_);                                       \
	} while (0)
#define FIELD_ABSENT(d_, fld_)                                                                       \
	cr_assert_eq((d_)->ev.f[fld_].n, 0, "%s should be absent, got \"%.*s\"", tw_field_name(fld_), \
		     (int)(d_)->ev.f[fld_].n, (d_)->ev.f[fld_].p)

static int has_res(const struct dec *d, const char *want)
{
	for (uint32_t i = 0; i < d->ev.nresources; i++)
		if (tw_str_eq(d->ev.resources[i], want))
			return 1;
	return 0;
}

#define RES_ARE(d, ...)                                                                              \
	do {                                                                                         \
		const char *w_[] = { __VA_ARGS__ };                                                  \
		size_t nw_ = sizeof w_ / sizeof w_[0];                                               \
		cr_assert_eq((d)->ev.nresources, nw_, "resources: got %u, want %zu",                 \
			     (d)->ev.nresources, nw_);                                               \
		for (size_t i_ = 0; i_ < nw_; i_++)                                                  \
			cr_assert(has_res(d, w_[i_]), "missing resource %s", w_[i_]);               \
	} while (0)

/* ---- fixtures --------------------------------------------------------------------------- */

static char *read_src(const char *rel, size_t *n)
{
	char *path = tw_test_join(tw_test_src(), rel);
	char *p = tw_test_read_file(path, n);
	cr_assert(p, "cannot read %s", path);
	free(path);
	return p;
}

/* The `log` object of the line of tests/data/cloudtrail/panther_identities.jsonl whose test_name
 * is name. Returns a malloc'd copy; *n its length. */
static char *panther(const char *name, size_t *n)
{
	size_t len;
	char *all = read_src("tests/data/cloudtrail/panther_identities.jsonl", &len);
	char want[256];
	char *line, *eol, *out = NULL;

	snprintf(want, sizeof want, "\"test_name\": \"%s\"", name);
	line = strstr(all, want);
	cr_assert(line, "no panther record named %s", name);
	while (line > all && line[-1] != '\n')
		line--;
	eol = strchr(line, '\n');
	{
		struct tw_json j;
		struct tw_str k, raw;
		tw_json_init(&j, line, eol ? (size_t)(eol - line) : strlen(line), 64);
		cr_assert(tw_json_obj_begin(&j));
		while (tw_json_obj_next(&j, &k) == 1) {
			if (tw_str_eq(k, "log")) {
				cr_assert(tw_json_skip(&j, &raw));
				out = malloc(raw.n);
				memcpy(out, raw.p, raw.n);
				*n = raw.n;
				break;
			}
			cr_assert(tw_json_skip(&j, NULL));
		}
		cr_assert(!j.err.rc, "%s", j.err.msg);
	}
	cr_assert(out, "line %s has no log", name);
	free(all);
	return out;
}

/* Element i of the "Records" array of a file in tests/data/cloudtrail/. */
static char *records_elem(const char *file, int i, size_t *n)
{
	char rel[256];
	size_t len;
	char *all, *out = NULL;
	struct tw_json j;
	struct tw_str k, raw;

	snprintf(rel, sizeof rel, "tests/data/cloudtrail/%s", file);
	all = read_src(rel, &len);
	tw_json_init(&j, all, len, 64);
	cr_assert(tw_json_obj_begin(&j));
	while (tw_json_obj_next(&j, &k) == 1) {
		if (!tw_str_eq(k, "Records")) {
			cr_assert(tw_json_skip(&j, NULL));
			continue;
		}
		cr_assert(tw_json_arr_begin(&j));
		for (int at = 0; tw_json_arr_next(&j) == 1; at++) {
			cr_assert(tw_json_skip(&j, &raw), "%s", j.err.msg);
			if (at == i) {
				out = malloc(raw.n);
				memcpy(out, raw.p, raw.n);
				*n = raw.n;
			}
		}
	}
	cr_assert(!j.err.rc, "%s: %s", file, j.err.msg);
	cr_assert(out, "%s has no Records[%d]", file, i);
	free(all);
	return out;
}

/* Line k (1-based) of an Elastic fixture under $TW_SHARED; skips the test when it is absent. */
static char *elastic(const char *dir, const char *file, int k, size_t *n)
{
	const char *shared = getenv("TW_SHARED");
	char path[1024];
	size_t len;
	char *all, *line, *eol, *out;

	if (!shared || !*shared)
		cr_skip_test("TW_SHARED is not set");
	snprintf(path, sizeof path, "%s/data/cloudtrail/%s/%s", shared, dir, file);
	all = tw_test_read_file(path, &len);
	if (!all)
		cr_skip_test("%s is not there", path);
	line = all;
	for (int i = 1; i < k; i++) {
		line = strchr(line, '\n');
		cr_assert(line, "%s has fewer than %d lines", file, k);
		line++;
	}
	eol = strchr(line, '\n');
	*n = eol ? (size_t)(eol - line) : strlen(line);
	out = malloc(*n);
	memcpy(out, line, *n);
	free(all);
	return out;
}

#define EI "elastic_integrations_aws_cloudtrail_fixtures"

/* ---- identity types, on Apache-2.0 records copied into tests/data ------------------------ */

Test(ingest_cloudtrail, iam_user)
{
	size_t n;
	char *r = panther("IAM User Updates Lambda Configuration with Layers", &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.kind, TW_KIND_CLOUDTRAIL);
	cr_assert_eq(d.ev.time_ms, 1546300800000LL); /* 2019-01-01T00:00:00Z */
	cr_assert_eq(d.ev.read_only, 0);
	cr_assert(d.ev.raw.p == d.rec && d.ev.raw.n == n);
	FIELD_IS(&d, TW_F_EVENT_ID, "1");
	FIELD_IS(&d, TW_F_EVENT_NAME, "UpdateFunctionConfiguration20150331v2");
	FIELD_IS(&d, TW_F_EVENT_SOURCE, "lambda.amazonaws.com");
	FIELD_IS(&d, TW_F_REGION, "us-west-2");
	FIELD_IS(&d, TW_F_ACCOUNT, "123456789012");
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:iam::123456789012:user/john.developer");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "IAMUser");
	FIELD_IS(&d, TW_F_USER_NAME, "john.developer");
	FIELD_IS(&d, TW_F_ACCESS_KEY, "AKIAI123456789EXAMPLE");
	FIELD_ABSENT(&d, TW_F_SESSION_ISSUER);
	FIELD_ABSENT(&d, TW_F_SSO_USER);
	FIELD_IS(&d, TW_F_SOURCE_IP, "203.0.113.50");
	FIELD_IS(&d, TW_F_USER_AGENT, "aws-cli/2.13.5 Python/3.11.4");
	FIELD_ABSENT(&d, TW_F_ERROR_CODE);
	FIELD_IS(&d, TW_F_EVENT_TYPE, "AwsApiCall");
	RES_ARE(&d, "production-api"); /* requestParameters.functionName; responseElements are not read */
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, sso_assumed_role_names_the_person)
{
	size_t n;
	char *r = panther("SSO AssumedRole Updates Lambda Configuration with Layers", &n);
	struct dec d;

	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DevAdmin_abc123/bob.ross");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "AssumedRole");
	FIELD_IS(&d, TW_F_USER_NAME, "bob.ross");
	FIELD_IS(&d, TW_F_SSO_USER, "bob.ross");
	FIELD_IS(&d, TW_F_SESSION_ISSUER,
		 "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DevAdmin_abc123");
	FIELD_IS(&d, TW_F_ACCESS_KEY, "ASIA123456789EXAMPLE");
	RES_ARE(&d, "production-api");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, federated_user)
{
	size_t n;
	char *r = panther("FederatedUser Updates Lambda Code", &n);
	struct dec d;

	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:sts::123456789012:federated-user/federated-user");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "FederatedUser");
	FIELD_IS(&d, TW_F_USER_NAME, "federated-user");
	FIELD_ABSENT(&d, TW_F_SSO_USER);
	FIELD_IS(&d, TW_F_ACCESS_KEY, "ASIA123456789EXAMPLE");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, root_with_arn)
{
	size_t n;
	char *r = panther("Root Read-Only Enumeration", &n);
	struct dec d;

	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:iam::123456789012:root");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "Root");
	FIELD_ABSENT(&d, TW_F_USER_NAME);
	FIELD_IS(&d, TW_F_ACCESS_KEY, "1");
	FIELD_IS(&d, TW_F_EVENT_NAME, "ListAccessKeys");
	cr_assert_eq(d.ev.read_only, 1);
	cr_assert_eq(d.ev.nresources, 0);
	dec_free(&d);
	free(r);

	r = panther("Root Access Key Created", &n);
	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:iam::123456789012:root");
	FIELD_IS(&d, TW_F_ACCESS_KEY, "1111");
	cr_assert_eq(d.ev.read_only, -1);
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, aws_account_gets_a_root_stand_in_and_s3_object)
{
	size_t n;
	char *r = panther("VPC Endpoint Access Denied", &n);
	struct dec d;

	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:iam::111111111111:root");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "AWSAccount");
	FIELD_IS(&d, TW_F_ACCOUNT, "222222222222"); /* recipientAccountId wins over accountId */
	FIELD_IS(&d, TW_F_ERROR_CODE, "VpceAccessDenied");
	FIELD_IS(&d, TW_F_ERROR_MESSAGE, "The request was denied due to a VPC endpoint policy");
	FIELD_IS(&d, TW_F_EVENT_TYPE, "AwsVpceEvent");
	FIELD_IS(&d, TW_F_SOURCE_IP, "10.0.0.1");
	cr_assert_eq(d.ev.time_ms, 1677628800000LL); /* 2023-03-01T00:00:00Z */
	RES_ARE(&d, "example-bucket", "example-bucket/sensitive-file.txt");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, aws_service_and_a_time_without_zone)
{
	size_t n;
	char *r = panther("Role Assumed by AWS Service", &n);
	struct dec d;

	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "lambda.amazonaws.com");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "AWSService");
	FIELD_IS(&d, TW_F_SOURCE_IP, "lambda.amazonaws.com");
	FIELD_ABSENT(&d, TW_F_USER_NAME);
	/* "2024-06-02 20:27:12": not the fast shape, read by tw_time_parse as UTC */
	cr_assert_eq(d.ev.time_ms, 1717360032000LL);
	/* requestParameters.roleArn and resources[].arn name the same role: kept once */
	RES_ARE(&d, "arn:aws:iam::123456789123:role/my_role_arn");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, missing_or_bad_event_time_is_a_parse_error)
{
	size_t n;
	char *r = panther("Retrieve SSO access token", &n); /* eventVersion, no eventTime */
	struct dec d;

	dec_run(&d, r, n);
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert_str_eq(d.err.msg, "record has no eventTime");
	dec_free(&d);
	free(r);

	r = panther("Root User Failed Activity", &n); /* "eventTime":"redacted" */
	dec_run(&d, r, n);
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert(strncmp(d.err.msg, "bad eventTime", 13) == 0 && strstr(d.err.msg, "redacted"), "%s", d.err.msg);
	dec_free(&d);
	free(r);

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2023-02-29T00:00:00Z\",\"eventName\":\"X\"}");
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert(strstr(d.err.msg, "bad eventTime") && strstr(d.err.msg, "day out of range"), "%s", d.err.msg);
	dec_free(&d);
}

/* ---- the AWS CloudTrail Processing Library's test files ----------------------------------- */

Test(ingest_cloudtrail, all_null_fields)
{
	size_t n;
	char *r = records_elem("SerializerAllFieldsNull.json", 0, &n);
	struct dec d;

	/* eventVersion says CloudTrail; every other field is null, eventTime included. */
	dec_run(&d, r, n);
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert_str_eq(d.err.msg, "record has no eventTime");
	dec_free(&d);
	free(r);

	/* With eventTime set, null fields are simply absent. */
	dec_event_str(&d, "{\"eventVersion\":\"1.1\",\"userIdentity\":null,\"eventTime\":\"2013-11-01T00:00:00Z\","
		      "\"eventSource\":null,\"eventName\":null,\"awsRegion\":null,\"sourceIPAddress\":null,"
		      "\"requestParameters\":null,\"resources\":null,\"readOnly\":null}");
	cr_assert_eq(d.ev.time_ms, 1383264000000LL);
	for (int f = 0; f < TW_F__COUNT; f++)
		FIELD_ABSENT(&d, f);
	cr_assert_eq(d.ev.nresources, 0);
	cr_assert_eq(d.ev.read_only, -1);
	dec_free(&d);

	r = records_elem("SerializerAllFieldsNull.json", 1, &n);
	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "userIdentityArn2");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "userIdentityType2");
	FIELD_IS(&d, TW_F_USER_NAME, "userIdentityUserName2");
	FIELD_IS(&d, TW_F_ACCESS_KEY, "userIdentityAccessKeyId2");
	FIELD_IS(&d, TW_F_ACCOUNT, "recipientAccountId2");
	FIELD_IS(&d, TW_F_ERROR_CODE, "errorCode2");
	FIELD_IS(&d, TW_F_ERROR_MESSAGE, "errorMessage2");
	FIELD_IS(&d, TW_F_REGION, "awsRegion2");
	cr_assert_eq(d.ev.time_ms, 1383264000000LL); /* 2013-11-01T00:00:00Z */
	RES_ARE(&d, "arn:aws:iam:sample1", "arn:aws:iam:sample2", "arn:aws:iam:sample3");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, unknown_and_misspelled_fields)
{
	size_t n;
	char *r = records_elem("SerializerTestFileNewFieldAtRandomPlaces.json", 0, &n);
	struct dec d;

	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_PRINCIPAL, "userIdentityArn1");
	FIELD_IS(&d, TW_F_USER_NAME, "userIdentityUserName1");
	/* requestParameters.clusterIdentifier is in the table; randomField3 is not */
	RES_ARE(&d, "arn:aws:iam:sample1", "my-redshift-cluster");
	dec_free(&d);
	free(r);

	/* Every key misspelled ("eventVersionWrong"...): valid JSON, not CloudTrail. */
	r = records_elem("SerializerTestFileBadFieldName.json", 0, &n);
	dec_run(&d, r, n);
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	cr_assert_eq(d.cls, TW_REC_OTHER);
	dec_free(&d);
	free(r);

	r = records_elem("SerializerVariousUserIdentityTestFile.json", 0, &n);
	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_SESSION_ISSUER, "sessionIssuerArn1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "userIdentityArn1");
	FIELD_IS(&d, TW_F_ACCESS_KEY, "userIdentityAccessKeyId1");
	FIELD_ABSENT(&d, TW_F_USER_NAME);
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, invalid_json_names_the_offset)
{
	size_t n;
	char *all = read_src("tests/data/cloudtrail/SerializerTestFileBadJsonFormat.json", &n);
	struct dec d;

	/* Python's json module reports the same spot: "Expecting property name ... (char 1293)". */
	dec_run(&d, all, n);
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert(strncmp(d.err.msg, "offset 1293: expected a string key", 34) == 0, "%s", d.err.msg);
	dec_free(&d);
	free(all);

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2019-01-01T00:00:00Z\",}");
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert(strstr(d.err.msg, "trailing comma"), "%s", d.err.msg);
	dec_free(&d);

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2019-01-01T00:00:00Z\",\"x\":\"\xc0\xaf\"}");
	cr_assert_eq(d.rc, TW_EPARSE);
	cr_assert(strstr(d.err.msg, "invalid UTF-8"), "%s", d.err.msg);
	dec_free(&d);

	dec_str(&d, "");
	cr_assert_eq(d.rc, TW_EPARSE);
	dec_free(&d);
}

Test(ingest_cloudtrail, deep_nesting_is_a_limit_error)
{
	size_t depth = 10000, n = 0;
	char *s = malloc(64 + 2 * depth);
	struct dec d;

	n += (size_t)sprintf(s, "{\"eventVersion\":\"1.08\",\"requestParameters\":");
	memset(s + n, '[', depth);
	n += depth;
	memset(s + n, ']', depth);
	n += depth;
	s[n++] = '}';
	dec_run(&d, s, n);
	cr_assert_eq(d.rc, TW_ELIMIT);
	cr_assert(strstr(d.err.msg, "nesting deeper than 256"), "%s", d.err.msg);
	dec_free(&d);
	free(s);
}

Test(ingest_cloudtrail, truncation_at_every_offset_fails_cleanly)
{
	size_t n;
	char *r = panther("VPC Endpoint Access Denied", &n);

	for (size_t k = 0; k < n; k++) {
		struct dec d;
		dec_run(&d, r, k);
		cr_assert_neq(d.rc, TW_OK, "prefix of %zu bytes decoded", k);
		cr_assert_eq(d.rc, TW_EPARSE);
		dec_free(&d);
	}
	free(r);
}

/* ---- shapes that are not events -------------------------------------------------------- */

Test(ingest_cloudtrail, classifies_digests_envelopes_and_other_json)
{
	struct dec d;
	static const char *const other[] = {
		/* a CloudWatch Logs subscription payload */
		"{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"/aws/lambda/f\","
		"\"logStream\":\"s\",\"subscriptionFilters\":[\"f\"],\"logEvents\":[{\"id\":\"1\","
		"\"timestamp\":1510109208016,\"message\":\"hello\"}]}",
		/* a Kinesis record wrapper (eventVersion, eventID, eventName, eventSource "aws:kinesis") */
		"{\"kinesis\":{\"data\":\"H4sI\"},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\","
		"\"eventID\":\"shardId-000000000000:4963\",\"eventName\":\"aws:kinesis:record\",\"awsRegion\":\"eu-west-1\"}",
		/* an S3 delivery file: the caller splits Records first */
		"{\"Records\":[{\"eventVersion\":\"1.08\",\"eventTime\":\"2019-01-01T00:00:00Z\"}]}",
		/* an EventBridge event */
		"{\"version\":\"0\",\"id\":\"6a7e8feb\",\"detail-type\":\"EC2 Instance State-change Notification\","
		"\"source\":\"aws.ec2\",\"time\":\"2017-12-22T18:43:48Z\",\"detail\":{}}",
		"[1,2]",
		"\"just a string\"",
		"  42  ",
		"{}",
	};

	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		dec_str(&d, other[i]);
		cr_assert_eq(d.rc, TW_OK, "%s: %s", other[i], d.err.msg);
		cr_assert_eq(d.cls, TW_REC_OTHER, "%s", other[i]);
		dec_free(&d);
	}

	dec_str(&d, "{\"awsAccountId\":\"123456789123\",\"digestStartTime\":\"2020-09-11T18:36:49Z\","
		    "\"digestEndTime\":\"2020-09-11T19:36:49Z\",\"logFiles\":[]}");
	cr_assert_eq(d.rc, TW_OK);
	cr_assert_eq(d.cls, TW_REC_DIGEST);
	dec_free(&d);

	/* Invalid JSON of another shape is still an error. */
	dec_str(&d, "[1,2");
	cr_assert_eq(d.rc, TW_EPARSE);
	dec_free(&d);

	/* Each of the three ways a record says it is CloudTrail. */
	dec_str(&d, "{\"eventVersion\":\"1.99\",\"eventTime\":\"2019-01-01T00:00:00Z\",\"somethingNew\":{\"a\":[1]}}");
	cr_assert(d.rc == TW_OK && d.cls == TW_REC_EVENT, "%s", d.err.msg);
	dec_free(&d);
	dec_str(&d, "{\"eventTime\":\"2019-01-01T00:00:00Z\",\"eventName\":\"X\"}");
	cr_assert(d.rc == TW_OK && d.cls == TW_REC_EVENT, "%s", d.err.msg);
	dec_free(&d);
	dec_str(&d, "{\"eventID\":\"1\",\"eventSource\":\"s3.amazonaws.com\",\"eventTime\":\"2019-01-01T00:00:00Z\"}");
	cr_assert(d.rc == TW_OK && d.cls == TW_REC_EVENT, "%s", d.err.msg);
	dec_free(&d);
	dec_str(&d, "{\"eventTime\":\"2019-01-01T00:00:00Z\",\"eventSource\":\"s3.amazonaws.com\"}");
	cr_assert(d.rc == TW_OK && d.cls == TW_REC_OTHER);
	dec_free(&d);
}

Test(ingest_cloudtrail, insights_event)
{
	struct dec d;

	/* The shape of the Insights event in Elastic's beats fixture, written out here. */
	dec_str(&d, "{\"eventVersion\":\"1.07\",\"eventTime\":\"2020-09-09T23:00:00Z\",\"awsRegion\":\"us-east-1\","
		    "\"eventID\":\"41ed77ca-d659-b45a-8e9a-74e504300007\",\"eventType\":\"AwsCloudTrailInsight\","
		    "\"recipientAccountId\":\"123456789012\",\"sharedEventID\":\"e672c2b1\",\"insightDetails\":"
		    "{\"state\":\"End\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"AttachUserPolicy\","
		    "\"insightType\":\"ApiCallRateInsight\",\"insightContext\":{\"statistics\":{\"baseline\":"
		    "{\"average\":0.0}}}},\"eventCategory\":\"Insight\"}");
	cr_assert(d.rc == TW_OK && d.cls == TW_REC_EVENT, "%s", d.err.msg);
	cr_assert_eq(d.ev.kind, TW_KIND_INSIGHT);
	cr_assert_eq(d.ev.time_ms, 1599692400000LL);
	FIELD_IS(&d, TW_F_EVENT_NAME, "AttachUserPolicy");
	FIELD_IS(&d, TW_F_EVENT_SOURCE, "iam.amazonaws.com");
	FIELD_IS(&d, TW_F_ACCOUNT, "123456789012");
	FIELD_ABSENT(&d, TW_F_PRINCIPAL);
	dec_free(&d);
}

/* ---- rules checked on small records written here ---------------------------------------- */

static void decode_identity(struct dec *d, const char *identity, const char *region)
{
	char rec[1024];
	int n = snprintf(rec, sizeof rec,
			 "{\"eventVersion\":\"1.08\",\"userIdentity\":%s,\"eventTime\":\"2024-01-01T00:00:00Z\","
			 "\"awsRegion\":\"%s\",\"eventName\":\"X\"}",
			 identity, region);
	cr_assert(n > 0 && (size_t)n < sizeof rec);
	dec_event(d, rec, (size_t)n);
}

Test(ingest_cloudtrail, principal_stand_ins)
{
	struct dec d;

	/* P4: Root without an ARN, partition from the region */
	decode_identity(&d, "{\"type\":\"Root\",\"principalId\":\"123456789012\",\"accountId\":\"123456789012\"}",
			"us-gov-west-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws-us-gov:iam::123456789012:root");
	dec_free(&d);
	decode_identity(&d, "{\"type\":\"Root\",\"accountId\":\"123456789012\",\"arn\":\"\"}", "cn-north-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws-cn:iam::123456789012:root");
	dec_free(&d);
	decode_identity(&d, "{\"type\":\"Root\",\"accountId\":\"123456789012\"}", "eu-west-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:iam::123456789012:root");
	FIELD_IS(&d, TW_F_ACCOUNT, "123456789012"); /* no recipientAccountId: the identity's */
	dec_free(&d);
	/* P3 without accountId: principalId */
	decode_identity(&d, "{\"type\":\"AWSAccount\",\"principalId\":\"AROAEXAMPLE:session-name\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "AROAEXAMPLE:session-name");
	dec_free(&d);
	/* P2 without invokedBy */
	decode_identity(&d, "{\"type\":\"AWSService\",\"principalId\":\"AIDAX\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "AIDAX");
	dec_free(&d);
	/* P6 */
	decode_identity(&d, "{\"type\":\"WebIdentityUser\",\"principalId\":\"accounts.google.com:app:1234\","
			    "\"userName\":\"1234\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "1234");
	dec_free(&d);
	decode_identity(&d, "{\"type\":\"SAMLUser\",\"principalId\":\"SAMLID:alice\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "SAMLID:alice");
	dec_free(&d);
	/* P5 */
	decode_identity(&d, "{\"type\":\"IdentityCenterUser\",\"onBehalfOf\":{\"identityStoreArn\":"
			    "\"arn:aws:identitystore::123456789012:identitystore/d-1\"}}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:identitystore::123456789012:identitystore/d-1");
	dec_free(&d);
	/* P7 and kept values */
	decode_identity(&d, "{\"type\":\"Unknown\",\"principalId\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "HIDDEN_DUE_TO_SECURITY_REASONS");
	dec_free(&d);
	decode_identity(&d, "{\"type\":\"AssumedRole\",\"arn\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "HIDDEN_DUE_TO_SECURITY_REASONS");
	FIELD_ABSENT(&d, TW_F_USER_NAME);
	dec_free(&d);
	decode_identity(&d, "{\"accountId\":\"123\",\"invokedBy\":\"AWS Internal\"}", "us-east-1");
	FIELD_IS(&d, TW_F_PRINCIPAL, "AWS Internal");
	dec_free(&d);
	decode_identity(&d, "\"odd\"", "us-east-1");
	FIELD_ABSENT(&d, TW_F_PRINCIPAL);
	dec_free(&d);
}

Test(ingest_cloudtrail, sso_user_rules)
{
	struct dec d;

	/* S1: sourceIdentity wins */
	decode_identity(&d, "{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/Ops/sess-1\","
			    "\"sessionContext\":{\"sourceIdentity\":\"alice@example.com\",\"sessionIssuer\":"
			    "{\"arn\":\"arn:aws:iam::1:role/Ops\"}}}", "us-east-1");
	FIELD_IS(&d, TW_F_SSO_USER, "alice@example.com");
	FIELD_IS(&d, TW_F_USER_NAME, "sess-1");
	FIELD_IS(&d, TW_F_SESSION_ISSUER, "arn:aws:iam::1:role/Ops");
	dec_free(&d);
	/* an ordinary role: no ssoUser */
	decode_identity(&d, "{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/Ops/sess-1\"}", "us-east-1");
	FIELD_ABSENT(&d, TW_F_SSO_USER);
	dec_free(&d);
	/* S3: IdentityCenterUser with userName */
	decode_identity(&d, "{\"type\":\"IdentityCenterUser\",\"userName\":\"bob\",\"onBehalfOf\":{\"userId\":"
			    "\"94482488-3041\"}}", "us-east-1");
	FIELD_IS(&d, TW_F_SSO_USER, "bob");
	FIELD_IS(&d, TW_F_PRINCIPAL, "94482488-3041");
	dec_free(&d);
	decode_identity(&d, "{\"type\":\"IdentityCenterUser\",\"onBehalfOf\":{\"userId\":\"94482488-3041\"}}",
			"us-east-1");
	FIELD_IS(&d, TW_F_SSO_USER, "94482488-3041");
	dec_free(&d);
	/* S4: onBehalfOf on another type */
	decode_identity(&d, "{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/QRole/s\","
			    "\"onBehalfOf\":{\"userId\":\"u-77\"}}", "us-east-1");
	FIELD_IS(&d, TW_F_SSO_USER, "u-77");
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:sts::1:assumed-role/QRole/s");
	dec_free(&d);
}

Test(ingest_cloudtrail, source_ip_read_only_and_odd_values)
{
	struct dec d;

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"sourceIPAddress\":"
		    "\"2001:db8::1,10.0.0.1\",\"readOnly\":\"true\",\"errorCode\":404}");
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	FIELD_IS(&d, TW_F_SOURCE_IP, "2001:db8::1");
	FIELD_IS(&d, TW_F_ERROR_CODE, "404"); /* a number where a string is expected: its text */
	cr_assert_eq(d.ev.read_only, 1);
	dec_free(&d);

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"sourceIPAddress\":"
		    "\"ec2.amazonaws.com\",\"readOnly\":\"false\",\"awsRegion\":{\"odd\":true}}");
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	FIELD_IS(&d, TW_F_SOURCE_IP, "ec2.amazonaws.com");
	FIELD_ABSENT(&d, TW_F_REGION);
	cr_assert_eq(d.ev.read_only, 0);
	dec_free(&d);
}

Test(ingest_cloudtrail, escaped_strings_are_decoded_into_the_arena)
{
	struct dec d;
	const struct tw_str *name, *agent;

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventName\":"
		    "\"Get\\u004fbject\",\"userAgent\":\"curl/8\",\"requestParameters\":{\"bucketName\":"
		    "\"b\",\"key\":\"dir\\/caf\\u00e9.txt\"}}");
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	name = &d.ev.f[TW_F_EVENT_NAME];
	agent = &d.ev.f[TW_F_USER_AGENT];
	FIELD_IS(&d, TW_F_EVENT_NAME, "GetObject");
	cr_assert(name->p < d.rec || name->p >= d.rec + d.n, "an unescaped copy lives outside the record");
	FIELD_IS(&d, TW_F_USER_AGENT, "curl/8");
	cr_assert(agent->p >= d.rec && agent->p + agent->n <= d.rec + d.n, "a plain string is a slice");
	RES_ARE(&d, "b", "b/dir/caf\xc3\xa9.txt");
	dec_free(&d);
}

Test(ingest_cloudtrail, resources_are_deduplicated_and_capped)
{
	struct tw_buf b;
	struct tw_err err;
	struct dec d;

	tw_buf_init(&b, 1 << 20);
	cr_assert_eq(tw_buf_printf(&b, &err, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\","
					     "\"eventSource\":\"ec2.amazonaws.com\",\"requestParameters\":{\"instanceIds\":["),
		     TW_OK);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(tw_buf_printf(&b, &err, "%s\"i-%04d\"", i ? "," : "", i), TW_OK);
	cr_assert_eq(tw_buf_printf(&b, &err, "],\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0001\"}]}}}"), TW_OK);
	dec_event(&d, b.p, b.n);
	cr_assert_eq(d.ev.nresources, 64);
	cr_assert(has_res(&d, "i-0000") && has_res(&d, "i-0063") && !has_res(&d, "i-0064"));
	dec_free(&d);

	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"resources\":["
		    "{\"ARN\":\"arn:aws:ec2:us-east-1:1:instance/i-1\"},{\"arn\":\"arn:aws:ec2:us-east-1:1:instance/i-1\"},"
		    "{\"type\":\"x\"},null,\"str\"],\"requestParameters\":{\"instancesSet\":{\"items\":[{\"instanceId\":"
		    "\"i-1\"},{\"instanceId\":\"i-2\"},{\"instanceId\":\"i-1\"}]},\"instanceIds\":[\"*\"],"
		    "\"name\":\"not-a-resource-for-ec2\"}}");
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	RES_ARE(&d, "arn:aws:ec2:us-east-1:1:instance/i-1", "i-1", "i-2");
	dec_free(&d);

	/* requestParameters.name counts only for sources where it names a resource */
	dec_str(&d, "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"requestParameters\":"
		    "{\"name\":\"/prod/db/password\"},\"eventSource\":\"ssm.amazonaws.com\"}");
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	RES_ARE(&d, "/prod/db/password");
	dec_free(&d);
	tw_buf_free(&b);
}

Test(ingest_cloudtrail, fast_time_path_agrees_with_tw_time_parse)
{
	static const char *const times[] = {
		"2024-02-29T23:59:59Z", "2000-02-29T12:00:00Z", "1999-12-31T23:59:59Z", "2100-03-01T00:00:00Z",
		"1970-01-01T00:00:00Z", "2026-11-02T00:00:00Z", "2024-01-01T00:00:00.123Z", "2024-01-01T02:00:00+02:00",
	};
	static const char *const bad_times[] = {
		"2100-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z",
		"2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-0aT00:00:00Z", "",
	};
	struct dec d;
	char rec[256];

	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		int64_t want;
		struct tw_err err;
		int n = snprintf(rec, sizeof rec, "{\"eventVersion\":\"1.0\",\"eventTime\":\"%s\"}", times[i]);
		cr_assert_eq(tw_time_parse(times[i], strlen(times[i]), &want, &err), TW_OK);
		dec_event(&d, rec, (size_t)n);
		cr_assert_eq(d.ev.time_ms, want, "%s: %lld != %lld", times[i], (long long)d.ev.time_ms, (long long)want);
		dec_free(&d);
	}
	for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
		int n = snprintf(rec, sizeof rec, "{\"eventVersion\":\"1.0\",\"eventTime\":\"%s\"}", bad_times[i]);
		dec_run(&d, rec, (size_t)n);
		cr_assert_eq(d.rc, TW_EPARSE, "%s accepted", bad_times[i]);
		dec_free(&d);
	}
	/* Spot values computed with Python's datetime. */
	dec_event_str(&d, "{\"eventVersion\":\"1.0\",\"eventTime\":\"2024-02-29T23:59:59Z\"}");
	cr_assert_eq(d.ev.time_ms, 1709251199000LL);
	dec_free(&d);
	dec_event_str(&d, "{\"eventVersion\":\"1.0\",\"eventTime\":\"2100-03-01T00:00:00Z\"}");
	cr_assert_eq(d.ev.time_ms, 4107542400000LL);
	dec_free(&d);
}

Test(ingest_cloudtrail, keeps_the_callers_log_group_and_stream)
{
	static const char rec[] = "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-01-01T00:00:00Z\"}";
	struct tw_arena a;
	struct tw_event ev;
	enum tw_rec_class cls;
	struct tw_err err;

	tw_arena_init(&a, 0, 0);
	memset(&ev, 0, sizeof ev);
	ev.read_only = -1;
	ev.f[TW_F_LOG_GROUP] = TW_STR_LIT("CloudTrail/logs");
	ev.f[TW_F_LOG_STREAM] = TW_STR_LIT("123_CloudTrail_us-east-1");
	cr_assert_eq(tw_ct_decode(rec, sizeof rec - 1, 64, &a, &ev, &cls, &err), TW_OK);
	cr_assert(tw_str_eq(ev.f[TW_F_LOG_GROUP], "CloudTrail/logs"));
	cr_assert(tw_str_eq(ev.f[TW_F_LOG_STREAM], "123_CloudTrail_us-east-1"));
	tw_arena_free(&a);
}

/* ---- Elastic fixtures, read at run time --------------------------------------------------- */

Test(ingest_cloudtrail, elastic_aws_service_assume_role)
{
	size_t n;
	char *r = elastic(EI, "test-assume-role-aws-service-json.log", 1, &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.time_ms, 1728382532000LL); /* 2024-10-08T10:15:32Z */
	FIELD_IS(&d, TW_F_PRINCIPAL, "ec2.amazonaws.com");
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "AWSService");
	FIELD_IS(&d, TW_F_SOURCE_IP, "ec2.amazonaws.com");
	FIELD_IS(&d, TW_F_ACCOUNT, "111111111111");
	FIELD_ABSENT(&d, TW_F_ACCESS_KEY); /* responseElements.credentials.accessKeyId is not the caller's */
	RES_ARE(&d, "arn:aws:iam::111111111111:role/ec2-instance-role");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, elastic_sso_email_session)
{
	size_t n;
	char *r = elastic(EI, "test-assume-role-email-session-json.log", 1, &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.time_ms, 1570054349000LL); /* 2019-10-02T22:12:29Z */
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_SecurityAudit_8df5ccd37b/"
				     "firstname.lastname@example.com");
	FIELD_IS(&d, TW_F_USER_NAME, "firstname.lastname@example.com");
	FIELD_IS(&d, TW_F_SSO_USER, "firstname.lastname@example.com");
	FIELD_IS(&d, TW_F_SESSION_ISSUER, "arn:aws:iam::111111111111:role/AWSReservedSSO_SecurityAudit_8df5ccd37b");
	FIELD_IS(&d, TW_F_ACCESS_KEY, "AKIAI44QH8DHBEXAMPLE");
	RES_ARE(&d, "arn:aws:iam::111111111111:role/JohnRole2");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, elastic_saml_user_with_two_ips)
{
	size_t n;
	char *r = elastic(EI, "test-tls-details-json.log", 2, &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.time_ms, 1736928457000LL); /* 2025-01-15T08:07:37Z */
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "SAMLUser");
	FIELD_IS(&d, TW_F_PRINCIPAL, "some.user@my.company.com");
	FIELD_IS(&d, TW_F_USER_NAME, "some.user@my.company.com");
	FIELD_IS(&d, TW_F_SOURCE_IP, "81.2.69.142"); /* of "81.2.69.142, 192.168.10.10" */
	FIELD_IS(&d, TW_F_ERROR_CODE, "200");
	FIELD_IS(&d, TW_F_EVENT_SOURCE, "grafana.amazonaws.com");
	cr_assert_eq(d.ev.read_only, 0);
	dec_free(&d);
	free(r);

	/* line 3: a role under aws-reserved/sso.amazonaws.com without the AWSReservedSSO_ name */
	r = elastic(EI, "test-tls-details-json.log", 3, &n);
	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_SSO_USER, "some.user@my.company.com");
	FIELD_IS(&d, TW_F_USER_NAME, "some.user@my.company.com");
	cr_assert_eq(d.ev.read_only, 1);
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, elastic_govcloud)
{
	size_t n;
	char *r = elastic(EI, "test-us-gov-arn.log", 1, &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.time_ms, 1767638786000LL); /* 2026-01-05T18:46:26Z */
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws-us-gov:sts::111111111111:assumed-role/ExampleRole/i-example1234567890");
	FIELD_IS(&d, TW_F_REGION, "us-gov-east-1");
	FIELD_IS(&d, TW_F_USER_NAME, "i-example1234567890");
	FIELD_IS(&d, TW_F_SESSION_ISSUER, "arn:aws-us-gov:iam::111111111111:role/ExampleRole");
	FIELD_ABSENT(&d, TW_F_SSO_USER);
	RES_ARE(&d, "i-example1234567890"); /* requestParameters.instanceId; iPAddress is HIDDEN_... */
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, elastic_identity_center_user)
{
	size_t n;
	char *r = elastic(EI, "test-user-authentication.log", 1, &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.time_ms, 1758544161000LL); /* 2025-09-22T12:29:21Z */
	FIELD_IS(&d, TW_F_IDENTITY_TYPE, "IdentityCenterUser");
	FIELD_IS(&d, TW_F_PRINCIPAL, "redacted");         /* arn is "": onBehalfOf.userId */
	FIELD_IS(&d, TW_F_SSO_USER, "redacted@example.com"); /* additionalEventData.UserName */
	FIELD_ABSENT(&d, TW_F_ACCESS_KEY);                 /* "" */
	FIELD_IS(&d, TW_F_EVENT_TYPE, "AwsServiceEvent");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, elastic_s3_data_event_resources)
{
	size_t n;
	char *r = elastic(EI, "test-copy-object-json-minimal.log", 1, &n);
	struct dec d;

	dec_event(&d, r, n);
	cr_assert_eq(d.ev.time_ms, 1728390256000LL); /* 2024-10-08T12:24:16Z */
	RES_ARE(&d, "arn:aws:s3:::elastic-cspm-cloudtrail-test-bucket/test-copy-object/README-copy.md",
		"arn:aws:s3:::elastic-cspm-cloudtrail-test-bucket",
		"arn:aws:s3:::elastic-cspm-cloudtrail-test-bucket/test-copy-object/README.md",
		"elastic-cspm-cloudtrail-test-bucket",
		"elastic-cspm-cloudtrail-test-bucket/test-copy-object/README-copy.md");
	dec_free(&d);
	free(r);

	r = elastic(EI, "test-update-trail-json.log", 1, &n);
	dec_event(&d, r, n);
	FIELD_IS(&d, TW_F_ERROR_CODE, "TrailNotFoundException");
	FIELD_IS(&d, TW_F_ERROR_MESSAGE, "Unknown trail: myTrail2 for the user: 123456789012");
	RES_ARE(&d, "myTrail2"); /* requestParameters.name of cloudtrail.amazonaws.com */
	dec_free(&d);
	free(r);

	r = elastic(EI, "test-send-command-all-json.log", 1, &n);
	dec_event(&d, r, n);
	cr_assert_eq(d.ev.nresources, 0); /* instanceIds ["*"] */
	FIELD_IS(&d, TW_F_PRINCIPAL, "arn:aws:sts::00000000000:assumed-role/AWSServiceRoleForAmazonSSM/StateManagerService");
	dec_free(&d);
	free(r);
}

Test(ingest_cloudtrail, elastic_digest_and_insight)
{
	size_t n;
	char *r = elastic(EI, "test-cloudtrail-digest-json.log", 1, &n);
	struct dec d;

	dec_run(&d, r, n);
	cr_assert_eq(d.rc, TW_OK, "%s", d.err.msg);
	cr_assert_eq(d.cls, TW_REC_DIGEST);
	dec_free(&d);
	free(r);

	r = elastic("elastic_beats_aws_cloudtrail_fixtures", "insight-json.log", 1, &n);
	dec_event(&d, r, n);
	cr_assert_eq(d.ev.kind, TW_KIND_INSIGHT);
	cr_assert_eq(d.ev.time_ms, 1599692400000LL); /* 2020-09-09T23:00:00Z */
	FIELD_IS(&d, TW_F_EVENT_NAME, "AttachUserPolicy");
	FIELD_IS(&d, TW_F_EVENT_SOURCE, "iam.amazonaws.com");
	dec_free(&d);
	free(r);
}

/* Every line of every Elastic CloudTrail fixture decodes (the digest as a digest). */
Test(ingest_cloudtrail, elastic_every_fixture_line_decodes)
{
	static const char *const files[] = {
		"test-assume-role-aws-service-json.log", "test-assume-role-email-session-json.log",
		"test-assume-role-json.log", "test-console-login-json.log", "test-copy-object-json-minimal.log",
		"test-delete-flow-log-json.log", "test-get-caller-identity-json.log", "test-get-secret-value-json.log",
		"test-modify-snapshot-attribute-json.log", "test-put-bucket-versioning-json.log",
		"test-run-instances-json.log", "test-send-command-all-json.log", "test-start-session-json.log",
		"test-stop-configuration-recorder.log", "test-tls-details-json.log", "test-update-trail-json.log",
		"test-us-gov-arn.log", "test-user-authentication.log",
	};
	const char *shared = getenv("TW_SHARED");
	int events = 0;

	if (!shared || !*shared)
		cr_skip_test("TW_SHARED is not set");
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[1024];
		size_t len;
		char *all, *p, *end;

		snprintf(path, sizeof path, "%s/data/cloudtrail/%s/%s", shared, EI, files[i]);
		all = tw_test_read_file(path, &len);
		if (!all)
			cr_skip_test("%s is not there", path);
		for (p = all, end = all + len; p < end;) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (n) {
				struct dec d;
				dec_event(&d, p, n);
				cr_assert(d.ev.f[TW_F_EVENT_ID].n && d.ev.f[TW_F_PRINCIPAL].n, "%s", files[i]);
				events++;
				dec_free(&d);
			}
			p += n + 1;
		}
		free(all);
	}
	cr_assert_eq(events, 24);
}
