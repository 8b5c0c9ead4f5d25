/* SPDX-License-Identifier: Apache-2.0 */
/* core/event.c: field names and the batch container. */
#include "core/event.h"

#include <stdlib.h>
#include <string.h>

static const char *const field_names[TW_F__COUNT] = {
	[TW_F_EVENT_ID] = "eventID",
	[TW_F_EVENT_NAME] = "eventName",
	[TW_F_EVENT_SOURCE] = "eventSource",
	[TW_F_REGION] = "awsRegion",
	[TW_F_ACCOUNT] = "account",
	[TW_F_PRINCIPAL] = "principal",
	[TW_F_IDENTITY_TYPE] = "identityType",
	[TW_F_USER_NAME] = "userName",
	[TW_F_ACCESS_KEY] = "accessKeyId",
	[TW_F_SESSION_ISSUER] = "sessionIssuer",
	[TW_F_SSO_USER] = "ssoUser",
	[TW_F_SOURCE_IP] = "sourceIPAddress",
	[TW_F_USER_AGENT] = "userAgent",
	[TW_F_ERROR_CODE] = "errorCode",
	[TW_F_ERROR_MESSAGE] = "errorMessage",
	[TW_F_EVENT_TYPE] = "eventType",
	[TW_F_LOG_GROUP] = "logGroup",
	[TW_F_LOG_STREAM] = "logStream",
	[TW_F_MESSAGE] = "message",
};

static const struct {
	const char *alias;
	enum tw_field f;
} aliases[] = {
	{ "id", TW_F_EVENT_ID },          { "event", TW_F_EVENT_NAME },
	{ "source", TW_F_EVENT_SOURCE },  { "region", TW_F_REGION },
	{ "user", TW_F_USER_NAME },       { "key", TW_F_ACCESS_KEY },
	{ "ip", TW_F_SOURCE_IP },         { "error", TW_F_ERROR_CODE },
	{ "group", TW_F_LOG_GROUP },      { "stream", TW_F_LOG_STREAM },
	{ "agent", TW_F_USER_AGENT },     { "type", TW_F_IDENTITY_TYPE },
	{ "issuer", TW_F_SESSION_ISSUER }, { "sso", TW_F_SSO_USER },
};

const char *tw_field_name(enum tw_field f)
{
	return (unsigned)f < TW_F__COUNT ? field_names[f] : "?";
}

int tw_field_lookup(const char *name, size_t n)
{
	for (int f = 0; f < TW_F__COUNT; f++)
		if (strlen(field_names[f]) == n && !memcmp(field_names[f], name, n))
			return f;
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
		if (strlen(aliases[i].alias) == n && !memcmp(aliases[i].alias, name, n))
			return (int)aliases[i].f;
	return -1;
}

const char *tw_kind_name(enum tw_kind k)
{
	switch (k) {
	case TW_KIND_CLOUDTRAIL: return "cloudtrail";
	case TW_KIND_INSIGHT: return "insight";
	case TW_KIND_CWLOG: return "cwlog";
	}
	return "?";
}

void tw_batch_init(struct tw_batch *batch)
{
	tw_arena_init(&batch->arena, 256 * 1024, 0);
	batch->ev = NULL;
	batch->n = 0;
	batch->cap = 0;
	batch->source = NULL;
}

struct tw_event *tw_batch_push(struct tw_batch *batch, struct tw_err *err)
{
	struct tw_event *ev;

	if (batch->n == batch->cap) {
		size_t cap = batch->cap ? batch->cap * 2 : 256;
		struct tw_event *p = realloc(batch->ev, cap * sizeof *p);
		if (!p) {
			tw_err_set(err, TW_ENOMEM, "out of memory growing a batch to %zu events", cap);
			return NULL;
		}
		batch->ev = p;
		batch->cap = cap;
	}
	ev = &batch->ev[batch->n++];
	memset(ev, 0, sizeof *ev);
	ev->read_only = -1;
	return ev;
}

void tw_batch_pop(struct tw_batch *batch)
{
	if (batch->n)
		batch->n--;
}

void tw_batch_reset(struct tw_batch *batch)
{
	batch->n = 0;
	tw_arena_reset(&batch->arena);
}

void tw_batch_free(struct tw_batch *batch)
{
	free(batch->ev);
	batch->ev = NULL;
	batch->n = batch->cap = 0;
	tw_arena_free(&batch->arena);
}
