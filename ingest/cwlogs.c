/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/cwlogs.c: CloudWatch Logs shapes -> tw_event: subscription payloads (DATA_MESSAGE,
 * CONTROL_MESSAGE), the envelopes that carry them (Lambda awslogs, Kinesis event and record,
 * Firehose), EventBridge "... via CloudTrail" events, and export lines "<ISO time> <message>".
 * Reads JSON with core/json.h only; never touches files, the store or alarms.
 *
 * Shapes of a JSON object, tried in this order on its top-level members (first match wins):
 *  S1. messageType or logEvents     subscription payload: CONTROL_MESSAGE is counted
 *                                   (st->control_messages); DATA_MESSAGE (or no messageType) gives
 *                                   one event per logEvents[] entry; another messageType with
 *                                   logEvents is rejected; without logEvents it is not ours.
 *  S2. awslogs: {data: b64}         Lambda subscription envelope.
 *  S3. kinesis: {data: b64}         one Kinesis record as Lambda shows it (the dispatcher splits
 *                                   {"Records":[...]} and hands each record here).
 *  S4. Records: [{kinesis: ...}]    a whole Kinesis event (first element has "kinesis").
 *  S5. records: [{data: b64}]       a Firehose transformation event (first element has "data").
 *  S6. detail-type "... via CloudTrail" with a detail object: EventBridge; detail is the record.
 *  Anything else (alarm state changes, S3/SQS notifications, other EventBridge events): *handled
 *  = 0 and the dispatcher counts it as skipped.
 *
 * Log events (S1):
 *  L1. kind CWLOG: time_ms = timestamp (integer ms), eventID = id as written (a 56-digit string is
 *      never turned into a number), account = owner, logGroup, logStream, message (unescaped into
 *      the arena), raw = the log event object's exact bytes, a slice of the payload.
 *  L2. A message that is a JSON object which tw_ct_decode calls TW_REC_EVENT becomes that CloudTrail
 *      (or Insights) event: raw = the message's bytes after unescaping and trimming whitespace,
 *      i.e. the record as CloudTrail wrote it; it also keeps logGroup and logStream.
 *  L3. A message that names CloudTrail keys ("eventVersion" and one of eventTime, eventSource,
 *      eventName, userIdentity) but does not decode (CloudWatch truncates events > 256 KB) is
 *      rejected with the reason, the payload's position and the log event's ordinal and id; the
 *      other log events go on. Other messages that merely start with '{' stay CWLOG (L1).
 *  L4. A log event without an integer timestamp (or one outside the years 0000-9999), or that is
 *      not an object, is rejected; one without a message is a CWLOG with an empty message.
 *
 * Export lines (CloudWatch Logs export to S3): "2026-11-02T00:00:00.000Z <message>" (also a date
 * and a time separated by a space) -> CWLOG with time from the token, message = the rest after one
 * separator, raw = the line without its newline; a CloudTrail message becomes that CloudTrail event
 * (L2, L3 apply). A line that does not start with such a timestamp is not ours.
 *
 * Blobs (S2-S5): JSON string (unescaped if needed) -> base64 -> gzip/zlib if sniffed -> copied
 * into the batch arena (events point into it) -> tw_decode_blob, which splits back-to-back
 * payloads and re-enters the dispatcher (and so this file) for each. Each layer is capped at
 * d->lim->max_payload; d->nesting caps blob-in-blob depth (CW_MAX_NESTING). Events appended here
 * are counted in d->st->events[kind]; records, skips and bytes are the dispatcher's to count.
 *
 * Positions: events and rejects carry the payload's pos (line, index); a reject's offset is
 * pos->offset plus the offending element's offset inside the object. */
#include "ingest/ingest_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/codec.h"
#include "core/time.h"

/* Cap on d->nesting when a blob is entered. decode.c counts its own levels on the same counter
 * (and refuses at 8): each envelope here costs about two (this file, then the blob's splitter), so
 * four envelopes inside each other still decode; real feeds use one. */
#define CW_MAX_NESTING 8

/* The top-level members of an object that any shape needs; absent ones have p == NULL. */
struct cw_top {
	struct tw_str msg_type;    /* messageType (raw string bytes) */
	struct tw_str owner;       /* owner */
	int owner_esc;             /* owner has escapes */
	struct tw_str group;       /* logGroup */
	int group_esc;             /* logGroup has escapes */
	struct tw_str stream;      /* logStream */
	int stream_esc;            /* logStream has escapes */
	struct tw_str log_events;  /* logEvents: the array's bytes */
	struct tw_str awslogs;     /* awslogs: the object's bytes */
	struct tw_str kinesis;     /* kinesis: the object's bytes */
	struct tw_str records_k;   /* Records: the array's bytes */
	struct tw_str records_f;   /* records: the array's bytes */
	struct tw_str detail_type; /* detail-type (raw string bytes) */
	struct tw_str detail;      /* detail: the object's bytes */
};

/* ---- small helpers -------------------------------------------------------------------- */

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct tw_str trim(struct tw_str s)
{
	while (s.n && is_ws(*s.p)) {
		s.p++;
		s.n--;
	}
	while (s.n && is_ws(s.p[s.n - 1]))
		s.n--;
	return s;
}

static int has(struct tw_str s, const char *needle)
{
	return memmem(s.p, s.n, needle, strlen(needle)) != NULL;
}

/* L3: does a message that failed to decode claim to be a CloudTrail record? */
static int looks_like_ct(struct tw_str m)
{
	return has(m, "\"eventVersion\"") && (has(m, "\"eventTime\"") || has(m, "\"eventSource\"") ||
					      has(m, "\"eventName\"") || has(m, "\"userIdentity\""));
}

/* Rejects p[0..n) found `off` bytes into the record at pos; the reason is printf-formatted. */
static enum tw_rc reject(struct tw_decoder *d, const struct tw_pos *pos, size_t off, const char *p, size_t n,
			 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static enum tw_rc reject(struct tw_decoder *d, const struct tw_pos *pos, size_t off, const char *p, size_t n,
			 const char *fmt, ...)
{
	char reason[512];
	struct tw_pos at = *pos;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	at.offset += off;
	return tw_decoder_reject(d, &at, reason, p, n);
}

/* A string member's value, decoded into the arena when it has escapes. */
static enum tw_rc str_value(struct tw_decoder *d, struct tw_str raw, int esc, struct tw_str *out)
{
	if (!esc) {
		*out = raw;
		return TW_OK;
	}
	return tw_json_unescape(raw, &d->batch->arena, out, &d->err);
}

/* Every event this file appends is counted by kind, as decode.c does for its own. */
static void count_event(struct tw_decoder *d, const struct tw_event *ev)
{
	if (ev->kind >= 1 && ev->kind <= TW_KIND_MAX)
		d->st->events[ev->kind]++;
}

/* Only out-of-memory stops the source; every other failure is a bad record. */
static int fatal(enum tw_rc rc)
{
	return rc == TW_ENOMEM;
}

/* ---- blobs (S2-S5) -------------------------------------------------------------------- */

/* Decodes the base64 JSON string `data` (raw bytes, esc = has escapes) found at offset `off` of
 * the object at pos, and hands the payload to tw_decode_blob. A failure quarantines `rec`; `what`
 * names the member in the reason ("awslogs.data", "Records[2].kinesis.data"). */
static enum tw_rc decode_b64_blob(struct tw_decoder *d, const struct tw_pos *pos, struct tw_str rec, size_t off,
				  struct tw_str data, int esc, const char *what)
{
	size_t max = d->lim->max_payload, max_b64 = max / 3 * 4 + 8;
	struct tw_buf txt, bin, plain, *fin;
	struct tw_pos sub = *pos;
	enum tw_rc rc = TW_OK;
	size_t size;
	char *copy;

	if (d->nesting >= CW_MAX_NESTING)
		return reject(d, pos, off, rec.p, rec.n, "%s: blobs nested deeper than %u levels", what,
			      CW_MAX_NESTING);
	if (data.n > max_b64 + max_b64 / 4)
		return reject(d, pos, off, rec.p, rec.n, "%s: %zu bytes of base64 exceed the payload limit of "
			      "%zu bytes", what, data.n, max);
	tw_buf_init(&txt, max_b64 + max_b64 / 4);
	tw_buf_init(&bin, max);
	tw_buf_init(&plain, max);
	if (esc) {
		rc = tw_json_unescape_buf(data, &txt, &d->err);
		if (rc)
			goto bad;
		data.p = txt.p;
		data.n = txt.n;
	}
	rc = tw_base64_decode(data.p, data.n, &bin, &d->err);
	if (rc)
		goto bad;
	fin = &bin;
	switch (tw_codec_sniff(bin.p, bin.n)) {
	case TW_CODEC_GZIP:
	case TW_CODEC_ZLIB:
		rc = tw_inflate_mem(bin.p, bin.n, tw_decoder_inflate_cap(d->lim), &plain, &d->err);
		if (rc)
			goto bad;
		fin = &plain;
		break;
	case TW_CODEC_PLAIN:
	case TW_CODEC_BASE64:
		break;
	}
	/* Events of the payload point into it: it must live in the batch arena. */
	copy = tw_arena_alloc(&d->batch->arena, fin->n + 1, &d->err);
	if (!copy) {
		rc = d->err.rc ? d->err.rc : TW_ENOMEM;
		goto bad;
	}
	if (fin->n)
		memcpy(copy, fin->p, fin->n);
	copy[fin->n] = '\0';
	size = fin->n;
	tw_buf_free(&txt);
	tw_buf_free(&bin);
	tw_buf_free(&plain);
	sub.offset += off;
	d->nesting++;
	rc = tw_decode_blob(d, copy, size, &sub);
	d->nesting--;
	return rc;

bad:
	tw_buf_free(&txt);
	tw_buf_free(&bin);
	tw_buf_free(&plain);
	if (fatal(rc))
		return rc;
	return reject(d, pos, off, rec.p, rec.n, "%s: %s", what, d->err.msg);
}

/* Finds member `key` (a string) in the object at obj; *found = 0 when absent or not a string. */
static int member_string(const struct tw_decoder *d, struct tw_str obj, const char *key, struct tw_str *val,
			 int *esc, int *found)
{
	struct tw_json j;
	struct tw_str k;
	int r;

	*found = 0;
	tw_json_init(&j, obj.p, obj.n, d->lim->max_depth);
	if (!tw_json_obj_begin(&j))
		return 0;
	while ((r = tw_json_obj_next(&j, &k)) == 1) {
		if (!*found && tw_str_eq(k, key) && tw_json_peek(&j) == TW_JSON_STRING) {
			if (!tw_json_string(&j, val, esc))
				return 0;
			*found = 1;
		} else if (!tw_json_skip(&j, NULL)) {
			return 0;
		}
	}
	return r == 0;
}

/* Finds member `key` (an object) in the object at obj. */
static int member_object(const struct tw_decoder *d, struct tw_str obj, const char *key, struct tw_str *val)
{
	struct tw_json j;
	struct tw_str k;
	int r, found = 0;

	tw_json_init(&j, obj.p, obj.n, d->lim->max_depth);
	if (!tw_json_obj_begin(&j))
		return 0;
	while ((r = tw_json_obj_next(&j, &k)) == 1) {
		if (!found && tw_str_eq(k, key) && tw_json_peek(&j) == TW_JSON_OBJECT) {
			if (!tw_json_skip(&j, val))
				return 0;
			found = 1;
		} else if (!tw_json_skip(&j, NULL)) {
			return 0;
		}
	}
	return r == 0 && found;
}

/* {"data": "<b64>"} in `obj`, a slice of the object `whole` at pos; `rec` (the envelope, or the
 * one record of an array) is what a reject quarantines. */
static enum tw_rc decode_data_member(struct tw_decoder *d, const struct tw_pos *pos, struct tw_str whole,
				     struct tw_str rec, struct tw_str obj, const char *what)
{
	struct tw_str data;
	int esc, found;
	size_t off = (size_t)(obj.p - whole.p);

	if (!member_string(d, obj, "data", &data, &esc, &found) || !found)
		return reject(d, pos, off, rec.p, rec.n, "%s: no \"data\" string", what);
	return decode_b64_blob(d, pos, rec, off, data, esc, what);
}

/* Does the first element of the array at arr have a member `key`? */
static int first_elem_has(const struct tw_decoder *d, struct tw_str arr, const char *key)
{
	struct tw_json j;
	struct tw_str k;

	tw_json_init(&j, arr.p, arr.n, d->lim->max_depth);
	if (!tw_json_arr_begin(&j) || tw_json_arr_next(&j) != 1 || tw_json_peek(&j) != TW_JSON_OBJECT ||
	    !tw_json_obj_begin(&j))
		return 0;
	while (tw_json_obj_next(&j, &k) == 1) {
		if (tw_str_eq(k, key))
			return 1;
		if (!tw_json_skip(&j, NULL))
			return 0;
	}
	return 0;
}

static int empty_array(const struct tw_decoder *d, struct tw_str arr)
{
	struct tw_json j;

	tw_json_init(&j, arr.p, arr.n, d->lim->max_depth);
	return tw_json_arr_begin(&j) && tw_json_arr_next(&j) == 0;
}

/* S4 (kinesis = 1): Records[i].kinesis.data; S5 (kinesis = 0): records[i].data. */
static enum tw_rc decode_record_array(struct tw_decoder *d, const struct tw_pos *pos, struct tw_str whole,
				      struct tw_str arr, int kinesis)
{
	const char *name = kinesis ? "Records" : "records";
	struct tw_json j;
	unsigned i = 0;
	int r;

	tw_json_init(&j, arr.p, arr.n, d->lim->max_depth);
	if (!tw_json_arr_begin(&j))
		return TW_OK; /* validated by the caller's pass: cannot happen */
	while ((r = tw_json_arr_next(&j)) == 1) {
		struct tw_str el, k;
		char what[64];
		enum tw_rc rc;

		if (!tw_json_skip(&j, &el))
			break;
		snprintf(what, sizeof what, kinesis ? "%s[%u].kinesis.data" : "%s[%u].data", name, i);
		if (kinesis) {
			if (!member_object(d, el, "kinesis", &k))
				rc = reject(d, pos, (size_t)(el.p - whole.p), el.p, el.n, "%s[%u]: no \"kinesis\" "
					    "object", name, i);
			else
				rc = decode_data_member(d, pos, whole, el, k, what);
		} else if (el.n && el.p[0] == '{') {
			rc = decode_data_member(d, pos, whole, el, el, what);
		} else {
			rc = reject(d, pos, (size_t)(el.p - whole.p), el.p, el.n, "%s[%u] is not an object",
				    name, i);
		}
		if (rc)
			return rc;
		i++;
	}
	return TW_OK;
}

/* ---- CloudTrail inside (L2, L3, S6) --------------------------------------------------- */

/* Tries m (trimmed, in the arena) as a CloudTrail record into ev. *is_ct = 1 when ev is now a
 * CloudTrail event; *bad = 1 (with d->err) when m claims to be CloudTrail but does not decode. */
static enum tw_rc try_ct(struct tw_decoder *d, struct tw_str m, struct tw_event *ev, int *is_ct, int *bad)
{
	enum tw_rec_class cls = TW_REC_OTHER;
	enum tw_rc rc;

	*is_ct = *bad = 0;
	if (!m.n || m.p[0] != '{')
		return TW_OK;
	rc = tw_ct_decode(m.p, m.n, d->lim->max_depth, &d->batch->arena, ev, &cls, &d->err);
	if (rc == TW_OK && cls == TW_REC_EVENT) {
		*is_ct = 1;
		return TW_OK;
	}
	/* tw_ct_decode may have filled some fields before it gave up: start the event again. */
	memset(ev, 0, sizeof *ev);
	ev->read_only = -1;
	if (rc == TW_OK)
		return TW_OK;
	if (fatal(rc))
		return rc;
	*bad = looks_like_ct(m);
	return TW_OK;
}

/* Pushes a new event for m (trimmed, in the arena) and tries m as a CloudTrail record in it
 * (try_ct); shared by the two CloudWatch formats. Returns an error with no event left; else TW_OK
 * with *ev the new event and *is_ct, or with *ev NULL (no event left) when m claims to be
 * CloudTrail but does not decode: why (sizeof d->err.msg bytes) then holds the reason. */
static enum tw_rc push_ct(struct tw_decoder *d, struct tw_str m, struct tw_event **ev, int *is_ct, char *why)
{
	struct tw_event *e = tw_batch_push(d->batch, &d->err);
	enum tw_rc rc;
	int bad;

	if (!e)
		return d->err.rc;
	rc = try_ct(d, m, e, is_ct, &bad);
	if (rc) {
		tw_batch_pop(d->batch);
		return rc;
	}
	if (bad) {
		memcpy(why, d->err.msg, sizeof d->err.msg);
		tw_batch_pop(d->batch);
		e = NULL;
	}
	*ev = e;
	return TW_OK;
}

/* S6: an EventBridge event whose detail is a CloudTrail record. */
static enum tw_rc decode_eventbridge(struct tw_decoder *d, const struct tw_pos *pos, struct tw_str whole,
				     struct tw_str detail, int *handled)
{
	enum tw_rec_class cls = TW_REC_OTHER;
	struct tw_event *ev = tw_batch_push(d->batch, &d->err);
	enum tw_rc rc;

	if (!ev)
		return d->err.rc;
	rc = tw_ct_decode(detail.p, detail.n, d->lim->max_depth, &d->batch->arena, ev, &cls, &d->err);
	if (rc == TW_OK && cls == TW_REC_EVENT) {
		ev->src_line = pos->line;
		ev->src_index = pos->index;
		count_event(d, ev);
		*handled = 1;
		return TW_OK;
	}
	tw_batch_pop(d->batch);
	if (rc == TW_OK)
		return TW_OK; /* not a CloudTrail record after all: not ours (*handled stays 0) */
	if (fatal(rc))
		return rc;
	*handled = 1;
	return reject(d, pos, (size_t)(detail.p - whole.p), whole.p, whole.n, "EventBridge CloudTrail event: "
		      "detail: %s", d->err.msg);
}

/* ---- subscription payloads (S1) ------------------------------------------------------- */

/* The log event timestamps accepted (ms): the years 0000-9999, what an ISO 8601 timestamp can
 * name and what the store and the time formatter handle; anything else is a hostile number. */
#define CW_TS_MIN INT64_C(-62167219200000) /* 0000-01-01T00:00:00Z */
#define CW_TS_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

/* Parses a JSON integer literal (as the reader returned it) into *v; 0 if it is not an integer. */
static int parse_int(struct tw_str s, int64_t *v)
{
	size_t i = 0;
	int neg = 0;
	uint64_t x = 0;

	if (s.n && s.p[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i >= s.n)
		return 0;
	for (; i < s.n; i++) {
		unsigned dg = (unsigned)(s.p[i] - '0');
		if (dg > 9 || x > (UINT64_C(9223372036854775807) - dg) / 10)
			return 0;
		x = x * 10 + dg;
	}
	*v = neg ? -(int64_t)x : (int64_t)x;
	return 1;
}

/* The payload-wide fields every log event gets. */
struct cw_meta {
	struct tw_str owner;  /* decoded owner */
	struct tw_str group;  /* decoded logGroup */
	struct tw_str stream; /* decoded logStream */
};

/* One entry of logEvents: el is its exact bytes, at offset off of the payload `whole`. */
static enum tw_rc decode_log_event(struct tw_decoder *d, const struct tw_pos *pos, struct tw_str whole,
				   struct tw_str el, size_t idx, const struct cw_meta *meta)
{
	size_t off = (size_t)(el.p - whole.p);
	struct tw_str k, id = { NULL, 0 }, ts = { NULL, 0 }, msg = { "", 0 }, m;
	int id_esc = 0, msg_esc = 0, is_ct, r;
	char why[sizeof d->err.msg]; /* why a CloudTrail message did not decode */
	enum tw_json_type ts_type = TW_JSON_NONE;
	struct tw_event *ev;
	struct tw_json j;
	int64_t ms;
	enum tw_rc rc;

	tw_json_init(&j, el.p, el.n, d->lim->max_depth);
	if (tw_json_peek(&j) != TW_JSON_OBJECT)
		return reject(d, pos, off, el.p, el.n, "CloudWatch log event %zu is not an object",
			      idx + 1);
	tw_json_obj_begin(&j);
	while ((r = tw_json_obj_next(&j, &k)) == 1) {
		enum tw_json_type t;
		struct tw_str v;
		int esc = 0;

		if (!tw_json_scalar(&j, &t, &v, &esc))
			break;
		if (tw_str_eq(k, "id") && (t == TW_JSON_STRING || t == TW_JSON_NUMBER)) {
			id = v;
			id_esc = esc;
		} else if (tw_str_eq(k, "timestamp")) {
			ts = v;
			ts_type = t;
		} else if (tw_str_eq(k, "message") && t == TW_JSON_STRING) {
			msg = v;
			msg_esc = esc;
		}
	}
	/* el was validated with the whole payload: r == -1 cannot happen here. */
	if (r != 0)
		return reject(d, pos, off, el.p, el.n, "CloudWatch log event %zu: %s", idx + 1, j.err.msg);
	if (ts_type != TW_JSON_NUMBER || !parse_int(ts, &ms))
		return reject(d, pos, off, el.p, el.n, "CloudWatch log event %zu (id %.*s): %s", idx + 1, (int)(id.n > 64 ? 64 : id.n), id.p ? id.p : "",
			      ts_type == TW_JSON_NONE ? "no timestamp" : "timestamp is not an integer");
	if (ms < CW_TS_MIN || ms > CW_TS_MAX)
		return reject(d, pos, off, el.p, el.n, "CloudWatch log event %zu (id %.*s): timestamp %lld out of "
			      "range (years 0000-9999)", idx + 1, (int)(id.n > 64 ? 64 : id.n), id.p ? id.p : "",
			      (long long)ms);
	if ((id_esc && (rc = str_value(d, id, 1, &id)) != TW_OK) ||
	    (rc = str_value(d, msg, msg_esc, &msg)) != TW_OK)
		return fatal(rc) ? rc : reject(d, pos, off, el.p, el.n, "CloudWatch log event %zu: %s", idx + 1,
					       d->err.msg);

	m = trim(msg);
	if ((rc = push_ct(d, m, &ev, &is_ct, why)))
		return rc;
	if (!ev) {
		return reject(d, pos, off, el.p, el.n, "CloudWatch log event %zu (id %.*s)%s%.*s: "
			      "CloudTrail message does not decode: %s", idx + 1,
			      (int)(id.n > 64 ? 64 : id.n), id.p ? id.p : "", meta->group.n ? " of log group " : "",
			      (int)(meta->group.n > 128 ? 128 : meta->group.n), meta->group.p ? meta->group.p : "",
			      why);
	}
	if (is_ct) {
		ev->raw = m; /* L2: tw_ct_decode set kind, time, fields and resources */
	} else {
		ev->kind = TW_KIND_CWLOG;
		ev->time_ms = ms;
		ev->raw = el;
		ev->f[TW_F_EVENT_ID] = id;
		ev->f[TW_F_ACCOUNT] = meta->owner;
		ev->f[TW_F_MESSAGE] = msg;
	}
	ev->f[TW_F_LOG_GROUP] = meta->group;
	ev->f[TW_F_LOG_STREAM] = meta->stream;
	ev->src_line = pos->line;
	ev->src_index = pos->index;
	count_event(d, ev);
	return TW_OK;
}

static enum tw_rc decode_payload(struct tw_decoder *d, const struct tw_pos *pos, struct tw_str whole,
				 const struct cw_top *t, int *handled)
{
	struct cw_meta meta;
	struct tw_json j;
	size_t idx = 0;
	enum tw_rc rc;

	if (t->msg_type.p && tw_str_eq(t->msg_type, "CONTROL_MESSAGE")) {
		d->st->control_messages++;
		*handled = 1;
		return TW_OK;
	}
	if (!t->log_events.p && !tw_str_eq(t->msg_type, "DATA_MESSAGE"))
		return TW_OK; /* a messageType we do not know, and nothing to decode: not ours */
	*handled = 1;
	if (!t->log_events.p)
		return reject(d, pos, 0, whole.p, whole.n, "CloudWatch Logs DATA_MESSAGE without logEvents");
	if (t->msg_type.p && !tw_str_eq(t->msg_type, "DATA_MESSAGE"))
		return reject(d, pos, 0, whole.p, whole.n, "CloudWatch Logs payload with unknown messageType "
			      "\"%.*s\"", (int)(t->msg_type.n > 64 ? 64 : t->msg_type.n), t->msg_type.p);
	if (t->log_events.p[0] != '[')
		return reject(d, pos, (size_t)(t->log_events.p - whole.p), whole.p, whole.n,
			      "CloudWatch Logs payload: logEvents is not an array");
	memset(&meta, 0, sizeof meta);
	if ((rc = str_value(d, t->owner, t->owner_esc, &meta.owner)) != TW_OK ||
	    (rc = str_value(d, t->group, t->group_esc, &meta.group)) != TW_OK ||
	    (rc = str_value(d, t->stream, t->stream_esc, &meta.stream)) != TW_OK)
		return fatal(rc) ? rc : reject(d, pos, 0, whole.p, whole.n, "CloudWatch Logs payload: %s",
					       d->err.msg);

	tw_json_init(&j, t->log_events.p, t->log_events.n, d->lim->max_depth);
	tw_json_arr_begin(&j);
	while (tw_json_arr_next(&j) == 1) {
		struct tw_str el;
		if (!tw_json_skip(&j, &el))
			break;
		rc = decode_log_event(d, pos, whole, el, idx++, &meta);
		if (rc)
			return rc;
	}
	return TW_OK;
}

/* ---- entry points --------------------------------------------------------------------- */

/* One pass over the top-level members, validating the whole object. 0 with j->err on bad JSON. */
static int read_top(struct tw_json *j, struct cw_top *t)
{
	struct tw_str k;
	int r;

	if (!tw_json_obj_begin(j))
		return 0;
	while ((r = tw_json_obj_next(j, &k)) == 1) {
		enum tw_json_type ty = tw_json_peek(j);
		struct tw_str *slot = NULL;
		int *esc = NULL, want_str = 0;

		if (tw_str_eq(k, "messageType")) {
			slot = &t->msg_type, want_str = 1;
		} else if (tw_str_eq(k, "owner")) {
			slot = &t->owner, esc = &t->owner_esc, want_str = 1;
		} else if (tw_str_eq(k, "logGroup")) {
			slot = &t->group, esc = &t->group_esc, want_str = 1;
		} else if (tw_str_eq(k, "logStream")) {
			slot = &t->stream, esc = &t->stream_esc, want_str = 1;
		} else if (tw_str_eq(k, "logEvents")) {
			slot = &t->log_events;
		} else if (tw_str_eq(k, "awslogs") && ty == TW_JSON_OBJECT) {
			slot = &t->awslogs;
		} else if (tw_str_eq(k, "kinesis") && ty == TW_JSON_OBJECT) {
			slot = &t->kinesis;
		} else if (tw_str_eq(k, "Records") && ty == TW_JSON_ARRAY) {
			slot = &t->records_k;
		} else if (tw_str_eq(k, "records") && ty == TW_JSON_ARRAY) {
			slot = &t->records_f;
		} else if (tw_str_eq(k, "detail-type")) {
			slot = &t->detail_type, want_str = 1;
		} else if (tw_str_eq(k, "detail") && ty == TW_JSON_OBJECT) {
			slot = &t->detail;
		}
		if (slot && want_str && ty == TW_JSON_STRING) {
			int e = 0;
			if (!tw_json_string(j, slot, &e))
				return 0;
			if (esc)
				*esc = e;
		} else if (!tw_json_skip(j, slot && !want_str ? slot : NULL)) {
			return 0;
		}
	}
	return r == 0 && tw_json_end(j);
}

static int ends_with(struct tw_str s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.n >= n && memcmp(s.p + s.n - n, suffix, n) == 0;
}

enum tw_rc tw_cw_decode_object(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos,
			       int *handled)
{
	struct tw_str whole = { p, n };
	struct cw_top t;
	struct tw_json j;

	*handled = 0;
	memset(&t, 0, sizeof t);
	tw_json_init(&j, p, n, d->lim->max_depth);
	if (tw_json_peek(&j) != TW_JSON_OBJECT)
		return TW_OK;
	if (!read_top(&j, &t)) {
		*handled = 1;
		return reject(d, pos, 0, p, n, "invalid JSON: %s", j.err.msg);
	}

	if (t.msg_type.p || t.log_events.p)
		return decode_payload(d, pos, whole, &t, handled); /* S1 */
	if (t.awslogs.p) {                                        /* S2 */
		*handled = 1;
		return decode_data_member(d, pos, whole, whole, t.awslogs, "awslogs.data");
	}
	if (t.kinesis.p) { /* S3 */
		*handled = 1;
		return decode_data_member(d, pos, whole, whole, t.kinesis, "kinesis.data");
	}
	if (t.records_k.p && first_elem_has(d, t.records_k, "kinesis")) { /* S4 */
		*handled = 1;
		return decode_record_array(d, pos, whole, t.records_k, 1);
	}
	if (t.records_f.p && (first_elem_has(d, t.records_f, "data") || empty_array(d, t.records_f))) { /* S5 */
		*handled = 1;
		return decode_record_array(d, pos, whole, t.records_f, 0);
	}
	if (t.detail.p && t.detail_type.p && ends_with(t.detail_type, " via CloudTrail")) /* S6 */
		return decode_eventbridge(d, pos, whole, t.detail, handled);
	return TW_OK;
}

/* "2026-11-02T00:00:00.000Z": the timestamp token at the start of an export line, or 0. A date and
 * a time separated by one space ("2026-11-02 00:00:00Z") count as one token. */
static size_t ts_token(const char *p, size_t n)
{
	size_t i = 0;

	if (n < 10)
		return 0;
	for (i = 0; i < 4; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	if (p[4] != '-' && !(n >= 9 && p[8] == 'T'))
		return 0;
	for (i = 0; i < n && p[i] != ' ' && p[i] != '\t'; i++)
		;
	if (i == 10 && n > 14 && p[10] == ' ' && p[11] >= '0' && p[11] <= '9' && p[12] >= '0' && p[12] <= '9' &&
	    p[13] == ':')
		for (i = 11; i < n && p[i] != ' ' && p[i] != '\t'; i++)
			;
	return i;
}

enum tw_rc tw_cw_decode_export_line(struct tw_decoder *d, const char *p, size_t n,
				    const struct tw_pos *pos, int *handled)
{
	struct tw_str line = { p, n }, m;
	char tok[48];
	size_t tn;
	int64_t ms;
	struct tw_event *ev;
	struct tw_err terr;
	int is_ct;
	char why[sizeof d->err.msg]; /* why a CloudTrail message did not decode */
	enum tw_rc rc;

	*handled = 0;
	while (line.n && (line.p[line.n - 1] == '\n' || line.p[line.n - 1] == '\r'))
		line.n--;
	tn = ts_token(line.p, line.n);
	if (tn <= 10 || tn >= sizeof tok)
		return TW_OK;
	/* A NUL-terminated copy: tw_time_parse may look at the byte after the slice. */
	memcpy(tok, line.p, tn);
	tok[tn] = '\0';
	if (tw_time_parse(tok, tn, &ms, &terr) != TW_OK)
		return TW_OK;
	*handled = 1;
	m.p = line.p + tn + (tn < line.n); /* one separator */
	m.n = line.n - tn - (tn < line.n);

	if ((rc = push_ct(d, trim(m), &ev, &is_ct, why)))
		return rc;
	if (!ev) {
		return reject(d, pos, 0, line.p, line.n, "CloudWatch Logs export line: CloudTrail message does "
			      "not decode: %s", why);
	}
	if (is_ct) {
		ev->raw = trim(m);
	} else {
		ev->kind = TW_KIND_CWLOG;
		ev->time_ms = ms;
		ev->raw = line;
		ev->f[TW_F_MESSAGE] = m;
	}
	ev->src_line = pos->line;
	ev->src_index = pos->index;
	count_event(d, ev);
	return TW_OK;
}
