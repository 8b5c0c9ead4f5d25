/* SPDX-License-Identifier: Apache-2.0 */
/* core/event.h: the normalized record (struct tw_event), the batch that owns a group of them,
 * and the sink contract between sources (ingest/) and consumers (store, alerts) wired by cli/.
 * Nothing here knows where records come from or where they go. */
#ifndef TW_CORE_EVENT_H
#define TW_CORE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

enum tw_kind {
	TW_KIND_CLOUDTRAIL = 1, /* a CloudTrail event (management, data, network activity...) */
	TW_KIND_INSIGHT = 2,    /* a CloudTrail Insights event (eventType AwsCloudTrailInsight) */
	TW_KIND_CWLOG = 3,      /* a CloudWatch Logs log event that is not a CloudTrail record */
};
#define TW_KIND_MAX 3

/* Extracted string fields. The order is part of no on-disk format: use tw_field_name(). */
enum tw_field {
	TW_F_EVENT_ID,       /* eventID; for a CloudWatch log event, its id (a 56-digit string) */
	TW_F_EVENT_NAME,     /* eventName */
	TW_F_EVENT_SOURCE,   /* eventSource (iam.amazonaws.com) */
	TW_F_REGION,         /* awsRegion */
	TW_F_ACCOUNT,        /* recipientAccountId (else userIdentity.accountId; CW: owner) */
	TW_F_PRINCIPAL,      /* identity ARN, or the best stand-in (see ingest/cloudtrail.c) */
	TW_F_IDENTITY_TYPE,  /* userIdentity.type */
	TW_F_USER_NAME,      /* userIdentity.userName, or the session name of an assumed role */
	TW_F_ACCESS_KEY,     /* userIdentity.accessKeyId */
	TW_F_SESSION_ISSUER, /* sessionContext.sessionIssuer.arn */
	TW_F_SSO_USER,       /* the person behind AWSReservedSSO_* roles or an IdentityCenterUser */
	TW_F_SOURCE_IP,      /* sourceIPAddress (first address when two are given) */
	TW_F_USER_AGENT,     /* userAgent */
	TW_F_ERROR_CODE,     /* errorCode */
	TW_F_ERROR_MESSAGE,  /* errorMessage */
	TW_F_EVENT_TYPE,     /* eventType (AwsApiCall, AwsConsoleSignIn, AwsCloudTrailInsight...) */
	TW_F_LOG_GROUP,      /* CloudWatch Logs group the record came through */
	TW_F_LOG_STREAM,     /* CloudWatch Logs stream */
	TW_F_MESSAGE,        /* CloudWatch Logs message (CWLOG kind only) */
	TW_F__COUNT
};

/* The stable JSON/query name of a field ("eventID", "eventName", "principal"...). */
const char *tw_field_name(enum tw_field f);
/* Field for a name or alias, or -1. Aliases: event, source, region, account, principal, user, key,
 * ip, error, group, stream, message, id. */
int tw_field_lookup(const char *name, size_t n);
const char *tw_kind_name(enum tw_kind k); /* "cloudtrail", "insight", "cwlog" */

/* One normalized record. Every tw_str points into memory owned by the batch that holds the event
 * (its arena, or the raw bytes the arena holds), so an event lives exactly as long as its batch. */
struct tw_event {
	enum tw_kind kind;
	int64_t time_ms;               /* eventTime / log event timestamp, ms since epoch, UTC */
	int8_t read_only;              /* readOnly: 1 true, 0 false, -1 absent */
	struct tw_str raw;             /* the original record, byte for byte */
	struct tw_str f[TW_F__COUNT];  /* extracted fields; n == 0 when absent */
	struct tw_str *resources;      /* ARNs and names touched (resources[], request parameters) */
	uint32_t nresources;           /* entries in resources */
	uint64_t src_index;            /* record index within its source (0-based) */
	uint64_t src_line;             /* line where the record starts in its source (1-based; 0 n/a) */
};

/* A group of events handed to a sink in one call. The batch owns the bytes its events point to. */
struct tw_batch {
	struct tw_arena arena; /* owns raw bytes and decoded strings */
	struct tw_event *ev;   /* events, in source order */
	size_t n;              /* events in use */
	size_t cap;            /* events allocated */
	const char *source;    /* name of the source (file path, "-", topic:partition); borrowed */
};

void tw_batch_init(struct tw_batch *batch);
/* Appends a zeroed event and returns it (read_only = -1), or NULL on ENOMEM. */
struct tw_event *tw_batch_push(struct tw_batch *batch, struct tw_err *err);
/* Removes the last event (a decoder that failed half way). */
void tw_batch_pop(struct tw_batch *batch);
void tw_batch_reset(struct tw_batch *batch); /* forgets the events and the arena's contents */
void tw_batch_free(struct tw_batch *batch);

/* A record that could not be decoded. Everything is borrowed for the duration of the call. */
struct tw_reject {
	const char *source; /* file path, "-", "topic/partition" */
	uint64_t line;      /* 1-based line where the record starts; 0 when lines do not apply */
	uint64_t index;     /* 0-based record index within the source */
	uint64_t offset;    /* byte offset of the record in the decoded stream (kafka: message offset) */
	const char *reason; /* why, one line, no trailing newline */
	struct tw_str bytes; /* the offending bytes; the sink may truncate what it keeps */
};

/* Where a source delivers. on_batch may keep nothing past its return (copy what it needs).
 * Returning non-TW_OK stops the source, which returns that code. on_reject may be NULL. */
struct tw_sink {
	enum tw_rc (*on_batch)(void *ctx, struct tw_batch *batch, struct tw_err *err);
	enum tw_rc (*on_reject)(void *ctx, const struct tw_reject *rej, struct tw_err *err);
	void *ctx;
};

#endif
