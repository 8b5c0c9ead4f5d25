/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/cloudtrail.c: one CloudTrail record (a JSON object) -> struct tw_event (tw_ct_decode).
 * One validating pass with the pull reader of core/json.h; strings without escapes stay slices of
 * the record, everything made here goes into the batch arena. Never fails on missing, null, odd or
 * unknown fields: only invalid JSON and a CloudTrail record without a usable eventTime are errors.
 *
 * Classification (first match wins):
 *  C1. A top-level key digestPublicKeyFingerprint, digestS3Bucket or digestStartTime -> TW_REC_DIGEST.
 *  C2. eventSource starting with "aws:" (Lambda event-source records: aws:kinesis, aws:s3, aws:sqs...)
 *      -> TW_REC_OTHER: they carry eventVersion/eventName too but are envelopes, not CloudTrail.
 *  C3. eventVersion, or eventTime and eventName, or eventID and eventSource -> a CloudTrail event
 *      (TW_KIND_INSIGHT when eventType is "AwsCloudTrailInsight"); it needs a parsable eventTime,
 *      else TW_EPARSE "record has no eventTime" / "bad eventTime: ...".
 *  C4. Anything else that is valid JSON -> TW_REC_OTHER (the caller tries the CloudWatch shapes).
 *
 * principal (U = userIdentity; an empty string counts as absent):
 *  P1. U.arn.
 *  P2. type AWSService: U.invokedBy, else U.principalId.
 *  P3. type AWSAccount: "arn:<partition>:iam::<U.accountId>:root", else U.principalId.
 *  P4. type Root: "arn:<partition>:iam::<U.accountId>:root", else U.principalId.
 *  P5. type IdentityCenterUser, or any U.onBehalfOf: onBehalfOf.userId, else
 *      onBehalfOf.identityStoreArn.
 *  P6. type SAMLUser or WebIdentityUser: U.userName, else U.principalId.
 *  P7. otherwise (and when the rule above found nothing): U.principalId, else U.userName, else
 *      U.invokedBy, else absent.
 *  <partition> comes from awsRegion: us-gov-* aws-us-gov, cn-* aws-cn, us-iso-* aws-iso,
 *  us-isob-* aws-iso-b, eu-isoe-* aws-iso-e, us-isof-* aws-iso-f, anything else aws.
 *  Values such as "HIDDEN_DUE_TO_SECURITY_REASONS" or "redacted" are kept as they are.
 *
 * userName:
 *  N1. U.userName.
 *  N2. an assumed-role ARN (U.arn "...:assumed-role/ROLE/SESSION"): SESSION (after the last '/').
 *  N3. a federated-user ARN ("...:federated-user/NAME"): NAME.
 *
 * ssoUser (the person behind the call):
 *  S1. U.sessionContext.sourceIdentity.
 *  S2. an assumed role named AWSReservedSSO_* or issued from a role under the path
 *      /aws-reserved/sso.amazonaws.com/: the session name (usually the person's email).
 *  S3. type IdentityCenterUser: U.userName, else additionalEventData.UserName, else
 *      onBehalfOf.userId.
 *  S4. any other identity with onBehalfOf: onBehalfOf.userId.
 *
 * Other fields: account = recipientAccountId, else U.accountId; accessKeyId = U.accessKeyId;
 * sessionIssuer = U.sessionContext.sessionIssuer.arn; sourceIPAddress keeps the first of
 * "a, b" / "a,b"; Insights events without a top-level eventName/eventSource take
 * insightDetails.eventName/eventSource; readOnly accepts true/false and "true"/"false".
 * Numbers and booleans where a string is expected are kept as their literal text; null, objects
 * and arrays there count as absent.
 *
 * resources: every resources[].ARN / resources[].arn, then the requestParameters keys of
 * rp_keys[] below (a string, or each string of an array of strings), instancesSet.items[].instanceId,
 * and the S3 object as "bucket/key" (or key alone). Empty strings, "*" and
 * "HIDDEN_DUE_TO_SECURITY_REASONS" are not resources. Deduplicated; at most CT_MAX_RES per record. */
#include "ingest/ingest_int.h"

#include <stddef.h>
#include <string.h>

#include "core/time.h"

#define CT_MAX_RES 64 /* resources kept per record: a hostile record cannot make more */

/* What a requestParameters key means. */
enum rp_kind {
	RP_RES,       /* the value (string or array of strings) names a resource */
	RP_BUCKET,    /* bucketName: a resource, and the bucket of "bucket/key" */
	RP_KEY,       /* key: the S3 object key, kept as "bucket/key" */
	RP_NAME,      /* name: a resource only for the sources in name_sources[] */
	RP_INSTANCES, /* instancesSet: {"items":[{"instanceId":...}]} */
};

/* requestParameters keys whose values are resources. Add one with one line. */
static const struct {
	const char *key;   /* key as written in CloudTrail */
	unsigned char len; /* strlen(key) */
	unsigned char kind; /* enum rp_kind */
} rp_keys[] = {
#define RP(s, k) { s, sizeof(s) - 1, k }
	RP("bucketName", RP_BUCKET),
	RP("key", RP_KEY),
	RP("name", RP_NAME),
	RP("instancesSet", RP_INSTANCES),
	RP("roleName", RP_RES),
	RP("userName", RP_RES),
	RP("groupName", RP_RES),
	RP("policyArn", RP_RES),
	RP("policyName", RP_RES),
	RP("roleArn", RP_RES),
	RP("targetUserName", RP_RES),
	RP("instanceProfileName", RP_RES),
	RP("accessKeyId", RP_RES),
	RP("instanceId", RP_RES),
	RP("instanceIds", RP_RES),
	RP("groupId", RP_RES),
	RP("imageId", RP_RES),
	RP("snapshotId", RP_RES),
	RP("volumeId", RP_RES),
	RP("vpcId", RP_RES),
	RP("subnetId", RP_RES),
	RP("functionName", RP_RES),
	RP("secretId", RP_RES),
	RP("keyId", RP_RES),
	RP("trailName", RP_RES),
	RP("logGroupName", RP_RES),
	RP("tableName", RP_RES),
	RP("queueUrl", RP_RES),
	RP("topicArn", RP_RES),
	RP("dbInstanceIdentifier", RP_RES),
	RP("dbClusterIdentifier", RP_RES),
	RP("clusterName", RP_RES),
	RP("clusterIdentifier", RP_RES),
	RP("repositoryName", RP_RES),
	RP("stackName", RP_RES),
	RP("certificateArn", RP_RES),
	RP("resourceArn", RP_RES),
	RP("streamName", RP_RES),
	RP("stateMachineArn", RP_RES),
	RP("detectorId", RP_RES),
	RP("loadBalancerName", RP_RES),
	RP("loadBalancerArn", RP_RES),
	RP("targetGroupArn", RP_RES),
	RP("hostedZoneId", RP_RES),
	RP("userPoolId", RP_RES),
	RP("keyName", RP_RES),
#undef RP
};

/* Sources whose requestParameters.name names a resource (trail, log group, parameter, cluster...). */
static const char *const name_sources[] = {
	"cloudtrail.amazonaws.com", "logs.amazonaws.com", "ssm.amazonaws.com", "eks.amazonaws.com",
	"glue.amazonaws.com", "secretsmanager.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com",
};

/* userIdentity, as read. */
struct ct_ident {
	struct tw_str type;         /* type */
	struct tw_str arn;          /* arn */
	struct tw_str principal_id; /* principalId */
	struct tw_str account;      /* accountId */
	struct tw_str user_name;    /* userName */
	struct tw_str invoked_by;   /* invokedBy */
	struct tw_str access_key;   /* accessKeyId */
	struct tw_str issuer_arn;   /* sessionContext.sessionIssuer.arn */
	struct tw_str source_id;    /* sessionContext.sourceIdentity */
	struct tw_str obo_user;     /* onBehalfOf.userId */
	struct tw_str obo_store;    /* onBehalfOf.identityStoreArn */
	int has_obo;                /* an onBehalfOf object was present */
};

/* Decoding state of one record. */
struct ct {
	struct tw_json j;                /* the reader over the record */
	struct tw_arena *a;              /* where unescaped and composed strings go */
	struct tw_err *err;              /* the caller's error */
	enum tw_rc rc;                   /* first arena failure (ENOMEM / ELIMIT), else TW_OK */
	struct tw_str f[TW_F__COUNT];    /* fields read straight from the record */
	struct tw_str time;              /* eventTime text */
	struct ct_ident id;              /* userIdentity */
	struct tw_str aed_user;          /* additionalEventData.UserName */
	struct tw_str ins_source;        /* insightDetails.eventSource */
	struct tw_str ins_name;          /* insightDetails.eventName */
	struct tw_str bucket;            /* requestParameters.bucketName */
	struct tw_str key;               /* requestParameters.key */
	struct tw_str name;              /* requestParameters.name */
	int8_t read_only;                /* -1 absent, 0, 1 */
	uint8_t has_version;             /* key eventVersion seen */
	uint8_t has_time;                /* key eventTime seen */
	uint8_t has_name;                /* key eventName seen */
	uint8_t has_id;                  /* key eventID seen */
	uint8_t has_source;              /* key eventSource seen */
	uint8_t digest;                  /* a digest-file key seen */
	uint32_t nres;                   /* entries in res */
	struct tw_str res[CT_MAX_RES];   /* resources, deduplicated */
};

#define KEY(k, lit) ((k).n == sizeof(lit) - 1 && memcmp((k).p, lit, sizeof(lit) - 1) == 0)

static int str_is(struct tw_str s, const char *lit, size_t n)
{
	return s.n == n && memcmp(s.p, lit, n) == 0;
}
#define IS(s, lit) str_is(s, lit, sizeof(lit) - 1)

static int has_prefix(struct tw_str s, const char *lit, size_t n)
{
	return s.n >= n && memcmp(s.p, lit, n) == 0;
}
#define PREFIX(s, lit) has_prefix(s, lit, sizeof(lit) - 1)

/* Reads the current value as text: strings decoded, numbers and booleans as their literal; null,
 * objects and arrays make *out absent. Errors stay in c->j / c->rc. */
static void text(struct ct *c, struct tw_str *out)
{
	enum tw_json_type t;
	struct tw_str s;
	int esc = 0;

	if (!tw_json_scalar(&c->j, &t, &s, &esc))
		return;
	if (t == TW_JSON_STRING) {
		if (esc) {
			enum tw_rc rc = tw_json_unescape(s, c->a, out, c->err);
			if (rc && !c->rc)
				c->rc = rc;
			return;
		}
		*out = s;
	} else if (t == TW_JSON_NUMBER || t == TW_JSON_TRUE || t == TW_JSON_FALSE) {
		*out = s;
	} else {
		out->p = NULL;
		out->n = 0;
	}
}

/* Enters the current value if it is an object (1); else skips it (0). */
static int enter_obj(struct ct *c)
{
	if (tw_json_peek(&c->j) == TW_JSON_OBJECT)
		return tw_json_obj_begin(&c->j);
	tw_json_skip(&c->j, NULL);
	return 0;
}

static int enter_arr(struct ct *c)
{
	if (tw_json_peek(&c->j) == TW_JSON_ARRAY)
		return tw_json_arr_begin(&c->j);
	tw_json_skip(&c->j, NULL);
	return 0;
}

static void add_res(struct ct *c, struct tw_str s)
{
	if (s.n == 0 || c->nres >= CT_MAX_RES || IS(s, "*") || IS(s, "HIDDEN_DUE_TO_SECURITY_REASONS"))
		return;
	for (uint32_t i = 0; i < c->nres; i++)
		if (c->res[i].n == s.n && memcmp(c->res[i].p, s.p, s.n) == 0)
			return;
	c->res[c->nres++] = s;
}

/* A resource value: a string, or an array whose strings are resources. */
static void res_value(struct ct *c)
{
	struct tw_str s = { NULL, 0 };
	enum tw_json_type t = tw_json_peek(&c->j);

	if (t == TW_JSON_STRING && c->nres < CT_MAX_RES) {
		text(c, &s);
		add_res(c, s);
	} else if (t == TW_JSON_ARRAY && c->nres < CT_MAX_RES) {
		tw_json_arr_begin(&c->j);
		while (tw_json_arr_next(&c->j) == 1) {
			if (tw_json_peek(&c->j) == TW_JSON_STRING && c->nres < CT_MAX_RES) {
				s.n = 0;
				text(c, &s);
				add_res(c, s);
			} else {
				tw_json_skip(&c->j, NULL);
			}
		}
	} else {
		tw_json_skip(&c->j, NULL);
	}
}

/* Concatenates parts into the arena. */
static struct tw_str join(struct ct *c, const struct tw_str *parts, size_t n)
{
	struct tw_str out = { NULL, 0 };
	size_t len = 0;
	char *o;

	for (size_t i = 0; i < n; i++)
		len += parts[i].n;
	o = tw_arena_alloc(c->a, len + 1, c->err);
	if (!o) {
		if (!c->rc)
			c->rc = c->err ? c->err->rc : TW_ENOMEM;
		return out;
	}
	out.p = o;
	out.n = len;
	for (size_t i = 0; i < n; i++) {
		if (parts[i].n)
			memcpy(o, parts[i].p, parts[i].n);
		o += parts[i].n;
	}
	*o = '\0';
	return out;
}

/* ---- the parts of a record ------------------------------------------------------------- */

static void read_session_context(struct ct *c)
{
	struct tw_str k;

	if (!enter_obj(c))
		return;
	while (tw_json_obj_next(&c->j, &k) == 1) {
		if (KEY(k, "sessionIssuer")) {
			if (!enter_obj(c))
				continue;
			while (tw_json_obj_next(&c->j, &k) == 1) {
				if (KEY(k, "arn"))
					text(c, &c->id.issuer_arn);
				else
					tw_json_skip(&c->j, NULL);
			}
		} else if (KEY(k, "sourceIdentity")) {
			text(c, &c->id.source_id);
		} else {
			tw_json_skip(&c->j, NULL);
		}
	}
}

static void read_identity(struct ct *c)
{
	struct tw_str k;

	if (!enter_obj(c))
		return;
	while (tw_json_obj_next(&c->j, &k) == 1) {
		switch (k.n) {
		case 3:
			if (KEY(k, "arn")) {
				text(c, &c->id.arn);
				continue;
			}
			break;
		case 4:
			if (KEY(k, "type")) {
				text(c, &c->id.type);
				continue;
			}
			break;
		case 8:
			if (KEY(k, "userName")) {
				text(c, &c->id.user_name);
				continue;
			}
			break;
		case 9:
			if (KEY(k, "accountId")) {
				text(c, &c->id.account);
				continue;
			}
			if (KEY(k, "invokedBy")) {
				text(c, &c->id.invoked_by);
				continue;
			}
			break;
		case 10:
			if (KEY(k, "onBehalfOf")) {
				if (!enter_obj(c))
					continue;
				c->id.has_obo = 1;
				while (tw_json_obj_next(&c->j, &k) == 1) {
					if (KEY(k, "userId"))
						text(c, &c->id.obo_user);
					else if (KEY(k, "identityStoreArn"))
						text(c, &c->id.obo_store);
					else
						tw_json_skip(&c->j, NULL);
				}
				continue;
			}
			break;
		case 11:
			if (KEY(k, "principalId")) {
				text(c, &c->id.principal_id);
				continue;
			}
			if (KEY(k, "accessKeyId")) {
				text(c, &c->id.access_key);
				continue;
			}
			break;
		case 14:
			if (KEY(k, "sessionContext")) {
				read_session_context(c);
				continue;
			}
			break;
		}
		tw_json_skip(&c->j, NULL);
	}
}

static void read_resources(struct ct *c)
{
	struct tw_str k, s;

	if (!enter_arr(c))
		return;
	while (tw_json_arr_next(&c->j) == 1) {
		if (!enter_obj(c))
			continue;
		while (tw_json_obj_next(&c->j, &k) == 1) {
			if ((KEY(k, "ARN") || KEY(k, "arn")) && c->nres < CT_MAX_RES &&
			    tw_json_peek(&c->j) == TW_JSON_STRING) {
				s.n = 0;
				text(c, &s);
				add_res(c, s);
			} else {
				tw_json_skip(&c->j, NULL);
			}
		}
	}
}

/* requestParameters.instancesSet: {"items":[{"instanceId":"i-..."}, ...]} */
static void read_instances_set(struct ct *c)
{
	struct tw_str k;

	if (!enter_obj(c))
		return;
	while (tw_json_obj_next(&c->j, &k) == 1) {
		if (!KEY(k, "items")) {
			tw_json_skip(&c->j, NULL);
			continue;
		}
		if (!enter_arr(c))
			continue;
		while (tw_json_arr_next(&c->j) == 1) {
			if (!enter_obj(c))
				continue;
			while (tw_json_obj_next(&c->j, &k) == 1) {
				if (KEY(k, "instanceId"))
					res_value(c);
				else
					tw_json_skip(&c->j, NULL);
			}
		}
	}
}

static void read_request_parameters(struct ct *c)
{
	struct tw_str k;
	size_t i;

	if (!enter_obj(c))
		return;
	while (tw_json_obj_next(&c->j, &k) == 1) {
		for (i = 0; i < sizeof rp_keys / sizeof rp_keys[0]; i++)
			if (rp_keys[i].len == k.n && memcmp(rp_keys[i].key, k.p, k.n) == 0)
				break;
		if (i == sizeof rp_keys / sizeof rp_keys[0]) {
			tw_json_skip(&c->j, NULL);
			continue;
		}
		switch ((enum rp_kind)rp_keys[i].kind) {
		case RP_RES:
			res_value(c);
			break;
		case RP_BUCKET:
			text(c, &c->bucket);
			add_res(c, c->bucket);
			break;
		case RP_KEY:
			text(c, &c->key);
			break;
		case RP_NAME:
			text(c, &c->name);
			break;
		case RP_INSTANCES:
			read_instances_set(c);
			break;
		}
	}
}

/* additionalEventData.UserName (IdentityCenterUser sign-ins name the person there). */
static void read_additional(struct ct *c)
{
	struct tw_str k;

	if (!enter_obj(c))
		return;
	while (tw_json_obj_next(&c->j, &k) == 1) {
		if (KEY(k, "UserName"))
			text(c, &c->aed_user);
		else
			tw_json_skip(&c->j, NULL);
	}
}

static void read_insight(struct ct *c)
{
	struct tw_str k;

	if (!enter_obj(c))
		return;
	while (tw_json_obj_next(&c->j, &k) == 1) {
		if (KEY(k, "eventSource"))
			text(c, &c->ins_source);
		else if (KEY(k, "eventName"))
			text(c, &c->ins_name);
		else
			tw_json_skip(&c->j, NULL);
	}
}

static void read_read_only(struct ct *c)
{
	enum tw_json_type t;
	struct tw_str s;

	if (!tw_json_scalar(&c->j, &t, &s, NULL))
		return;
	if (t == TW_JSON_TRUE || (t == TW_JSON_STRING && IS(s, "true")))
		c->read_only = 1;
	else if (t == TW_JSON_FALSE || (t == TW_JSON_STRING && IS(s, "false")))
		c->read_only = 0;
}

/* The top-level object. */
static void read_record(struct ct *c)
{
	struct tw_str k;

	while (tw_json_obj_next(&c->j, &k) == 1) {
		switch (k.n) {
		case 7:
			if (KEY(k, "eventID")) {
				c->has_id = 1;
				text(c, &c->f[TW_F_EVENT_ID]);
				continue;
			}
			break;
		case 8:
			if (KEY(k, "readOnly")) {
				read_read_only(c);
				continue;
			}
			break;
		case 9:
			if (KEY(k, "eventTime")) {
				c->has_time = 1;
				text(c, &c->time);
				continue;
			}
			if (KEY(k, "eventName")) {
				c->has_name = 1;
				text(c, &c->f[TW_F_EVENT_NAME]);
				continue;
			}
			if (KEY(k, "awsRegion")) {
				text(c, &c->f[TW_F_REGION]);
				continue;
			}
			if (KEY(k, "userAgent")) {
				text(c, &c->f[TW_F_USER_AGENT]);
				continue;
			}
			if (KEY(k, "errorCode")) {
				text(c, &c->f[TW_F_ERROR_CODE]);
				continue;
			}
			if (KEY(k, "eventType")) {
				text(c, &c->f[TW_F_EVENT_TYPE]);
				continue;
			}
			if (KEY(k, "resources")) {
				read_resources(c);
				continue;
			}
			break;
		case 11:
			if (KEY(k, "eventSource")) {
				c->has_source = 1;
				text(c, &c->f[TW_F_EVENT_SOURCE]);
				continue;
			}
			break;
		case 12:
			if (KEY(k, "userIdentity")) {
				read_identity(c);
				continue;
			}
			if (KEY(k, "eventVersion")) {
				c->has_version = 1;
				break; /* the value itself is not needed */
			}
			if (KEY(k, "errorMessage")) {
				text(c, &c->f[TW_F_ERROR_MESSAGE]);
				continue;
			}
			break;
		case 14:
			if (KEY(k, "insightDetails")) {
				read_insight(c);
				continue;
			}
			if (KEY(k, "digestS3Bucket"))
				c->digest = 1;
			break;
		case 15:
			if (KEY(k, "sourceIPAddress")) {
				text(c, &c->f[TW_F_SOURCE_IP]);
				continue;
			}
			if (KEY(k, "digestStartTime"))
				c->digest = 1;
			break;
		case 17:
			if (KEY(k, "requestParameters")) {
				read_request_parameters(c);
				continue;
			}
			break;
		case 18:
			if (KEY(k, "recipientAccountId")) {
				text(c, &c->f[TW_F_ACCOUNT]);
				continue;
			}
			break;
		case 19:
			if (KEY(k, "additionalEventData")) {
				read_additional(c);
				continue;
			}
			break;
		case 26:
			if (KEY(k, "digestPublicKeyFingerprint"))
				c->digest = 1;
			break;
		}
		tw_json_skip(&c->j, NULL);
	}
}

/* ---- derived fields -------------------------------------------------------------------- */

static struct tw_str partition_of(struct tw_str region)
{
	if (PREFIX(region, "us-gov-"))
		return TW_STR_LIT("aws-us-gov");
	if (PREFIX(region, "cn-"))
		return TW_STR_LIT("aws-cn");
	if (PREFIX(region, "us-isob-"))
		return TW_STR_LIT("aws-iso-b");
	if (PREFIX(region, "us-isof-"))
		return TW_STR_LIT("aws-iso-f");
	if (PREFIX(region, "us-iso-"))
		return TW_STR_LIT("aws-iso");
	if (PREFIX(region, "eu-isoe-"))
		return TW_STR_LIT("aws-iso-e");
	return TW_STR_LIT("aws");
}

/* "arn:<partition>:iam::<account>:root" */
static struct tw_str root_arn(struct ct *c, struct tw_str account)
{
	struct tw_str parts[5] = {
		TW_STR_LIT("arn:"), partition_of(c->f[TW_F_REGION]), TW_STR_LIT(":iam::"), account, TW_STR_LIT(":root"),
	};
	return join(c, parts, 5);
}

/* Position of the first occurrence of lit in s, or NULL. */
static const char *find(struct tw_str s, const char *lit, size_t n)
{
	return s.n >= n ? memmem(s.p, s.n, lit, n) : NULL;
}

/* Splits "...:assumed-role/ROLE/SESSION" into ROLE and SESSION; 0 if arn has another shape. */
static int assumed_role(struct tw_str arn, struct tw_str *role, struct tw_str *session)
{
	static const char tag[] = ":assumed-role/";
	const char *p = find(arn, tag, sizeof tag - 1), *end, *slash;

	if (!p)
		return 0;
	end = arn.p + arn.n;
	p += sizeof tag - 1;
	for (slash = end; slash > p && slash[-1] != '/'; slash--)
		;
	if (slash == p || slash == end) /* no '/' after the role, or nothing after it */
		return 0;
	role->p = p;
	role->n = (size_t)(slash - 1 - p);
	session->p = slash;
	session->n = (size_t)(end - slash);
	return 1;
}

static struct tw_str principal(struct ct *c)
{
	const struct ct_ident *id = &c->id;

	if (id->arn.n)
		return id->arn;
	if (IS(id->type, "AWSService") && id->invoked_by.n)
		return id->invoked_by;
	if ((IS(id->type, "AWSAccount") || IS(id->type, "Root")) && id->account.n)
		return root_arn(c, id->account);
	if (IS(id->type, "IdentityCenterUser") || id->has_obo) {
		if (id->obo_user.n)
			return id->obo_user;
		if (id->obo_store.n)
			return id->obo_store;
	}
	if ((IS(id->type, "SAMLUser") || IS(id->type, "WebIdentityUser")) && id->user_name.n)
		return id->user_name;
	if (id->principal_id.n)
		return id->principal_id;
	if (id->user_name.n)
		return id->user_name;
	return id->invoked_by;
}

static void identity_fields(struct ct *c)
{
	const struct ct_ident *id = &c->id;
	struct tw_str role, session, none = { NULL, 0 };
	int ar = assumed_role(id->arn, &role, &session);

	c->f[TW_F_PRINCIPAL] = principal(c);
	c->f[TW_F_IDENTITY_TYPE] = id->type;
	c->f[TW_F_ACCESS_KEY] = id->access_key;
	c->f[TW_F_SESSION_ISSUER] = id->issuer_arn;
	if (!c->f[TW_F_ACCOUNT].n)
		c->f[TW_F_ACCOUNT] = id->account;

	/* N1-N3 */
	if (id->user_name.n) {
		c->f[TW_F_USER_NAME] = id->user_name;
	} else if (ar) {
		c->f[TW_F_USER_NAME] = session;
	} else {
		static const char fed[] = ":federated-user/";
		const char *p = find(id->arn, fed, sizeof fed - 1);
		if (p) {
			p += sizeof fed - 1;
			c->f[TW_F_USER_NAME].p = p;
			c->f[TW_F_USER_NAME].n = (size_t)(id->arn.p + id->arn.n - p);
		}
	}

	/* S1-S4 */
	if (id->source_id.n)
		c->f[TW_F_SSO_USER] = id->source_id;
	else if (ar && (PREFIX(role, "AWSReservedSSO_") ||
			find(id->issuer_arn, "/aws-reserved/sso.amazonaws.com/", 32)))
		c->f[TW_F_SSO_USER] = session;
	else if (IS(id->type, "IdentityCenterUser"))
		c->f[TW_F_SSO_USER] = id->user_name.n ? id->user_name : c->aed_user.n ? c->aed_user : id->obo_user;
	else if (id->has_obo)
		c->f[TW_F_SSO_USER] = id->obo_user;
	else
		c->f[TW_F_SSO_USER] = none;
}

/* The first address of "a, b" or "a,b"; service names ("ec2.amazonaws.com") pass unchanged. */
static struct tw_str first_ip(struct tw_str ip)
{
	const char *comma = ip.n ? memchr(ip.p, ',', ip.n) : NULL;

	if (comma) {
		ip.n = (size_t)(comma - ip.p);
		while (ip.n && (ip.p[ip.n - 1] == ' ' || ip.p[ip.n - 1] == '\t'))
			ip.n--;
	}
	return ip;
}

static int dig2(const char *s)
{
	unsigned a = (unsigned char)s[0] - '0', b = (unsigned char)s[1] - '0';
	return a < 10 && b < 10 ? (int)(a * 10 + b) : -1;
}

/* Fast path for the shape CloudTrail always writes, "YYYY-MM-DDTHH:MM:SSZ"; 0 to fall back. */
static int fast_time(struct tw_str t, int64_t *ms)
{
	static const unsigned char dim[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *s = t.p;
	int yh, yl, mo, d, h, mi, se;
	int64_t y;

	if (t.n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return 0;
	yh = dig2(s);
	yl = dig2(s + 2);
	mo = dig2(s + 5);
	d = dig2(s + 8);
	h = dig2(s + 11);
	mi = dig2(s + 14);
	se = dig2(s + 17);
	if (yh < 0 || yl < 0 || mo < 1 || mo > 12 || d < 1 || d > dim[mo] || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || se < 0 || se > 59)
		return 0;
	y = yh * 100 + yl;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 0;
	*ms = (tw_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se) * 1000;
	return 1;
}

/* ---- entry point ----------------------------------------------------------------------- */

enum tw_rc tw_ct_decode(const char *p, size_t n, unsigned max_depth, struct tw_arena *a,
			struct tw_event *ev, enum tw_rec_class *cls, struct tw_err *err)
{
	struct ct c;
	int64_t ms;

	/* Zero the small scalars and the slices; res[] is written before it is read. */
	memset(&c, 0, offsetof(struct ct, res));
	tw_json_init(&c.j, p, n, max_depth);
	c.a = a;
	c.err = err;
	c.read_only = -1;

	if (tw_json_peek(&c.j) != TW_JSON_OBJECT) {
		/* Not an object: valid JSON of another shape is someone else's, the rest is bad. */
		if (c.j.p >= c.j.end)
			return tw_err_set(err, TW_EPARSE, "empty record");
		if (tw_json_skip(&c.j, NULL) && tw_json_end(&c.j)) {
			*cls = TW_REC_OTHER;
			return TW_OK;
		}
		return tw_err_set(err, c.j.err.rc, "%s", c.j.err.msg);
	}
	tw_json_obj_begin(&c.j);
	read_record(&c);
	tw_json_end(&c.j);
	if (c.j.err.rc)
		return tw_err_set(err, c.j.err.rc, "%s", c.j.err.msg);
	if (c.rc)
		return c.rc; /* err already says why (arena limit or out of memory) */

	/* C1-C4 */
	if (c.digest) {
		*cls = TW_REC_DIGEST;
		return TW_OK;
	}
	if (PREFIX(c.f[TW_F_EVENT_SOURCE], "aws:") ||
	    !(c.has_version || (c.has_time && c.has_name) || (c.has_id && c.has_source))) {
		*cls = TW_REC_OTHER;
		return TW_OK;
	}
	if (!c.time.n)
		return tw_err_set(err, TW_EPARSE, "record has no eventTime");
	if (!fast_time(c.time, &ms) && tw_time_parse(c.time.p, c.time.n, &ms, err) != TW_OK) {
		tw_err_prefix(err, "bad eventTime");
		return TW_EPARSE;
	}

	identity_fields(&c);
	c.f[TW_F_SOURCE_IP] = first_ip(c.f[TW_F_SOURCE_IP]);
	if (IS(c.f[TW_F_EVENT_TYPE], "AwsCloudTrailInsight")) {
		ev->kind = TW_KIND_INSIGHT;
		if (!c.f[TW_F_EVENT_NAME].n)
			c.f[TW_F_EVENT_NAME] = c.ins_name;
		if (!c.f[TW_F_EVENT_SOURCE].n)
			c.f[TW_F_EVENT_SOURCE] = c.ins_source;
	} else {
		ev->kind = TW_KIND_CLOUDTRAIL;
	}

	/* Resources that depend on the whole record. */
	if (c.key.n) {
		if (c.bucket.n) {
			struct tw_str parts[3] = { c.bucket, TW_STR_LIT("/"), c.key };
			add_res(&c, join(&c, parts, 3));
		} else {
			add_res(&c, c.key);
		}
	}
	if (c.name.n) {
		for (size_t i = 0; i < sizeof name_sources / sizeof name_sources[0]; i++)
			if (str_is(c.f[TW_F_EVENT_SOURCE], name_sources[i], strlen(name_sources[i]))) {
				add_res(&c, c.name);
				break;
			}
	}
	if (c.rc)
		return c.rc;

	ev->resources = NULL;
	ev->nresources = 0;
	if (c.nres) {
		ev->resources = tw_arena_alloc(a, c.nres * sizeof *ev->resources, err);
		if (!ev->resources)
			return err ? err->rc : TW_ENOMEM;
		memcpy(ev->resources, c.res, c.nres * sizeof *ev->resources);
		ev->nresources = c.nres;
	}
	for (int i = 0; i < TW_F__COUNT; i++) {
		/* Fields this decoder never sets (log group, stream, message) stay as the caller had them. */
		if (i == TW_F_LOG_GROUP || i == TW_F_LOG_STREAM || i == TW_F_MESSAGE)
			continue;
		ev->f[i] = c.f[i];
	}
	ev->time_ms = ms;
	ev->read_only = c.read_only;
	ev->raw.p = p;
	ev->raw.n = n;
	*cls = TW_REC_EVENT;
	return TW_OK;
}
