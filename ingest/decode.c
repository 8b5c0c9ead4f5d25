/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/decode.c: the dispatcher. Given one record candidate, decides what it is (CloudTrail
 * record or digest, CloudWatch Logs payload or envelope, array of records, export line) and
 * routes it; peels gzip/zlib/base64 off blobs and splits them; tw_ingest_buffer.
 * Knows no files and no threads: source.c owns those. Never stops on bad data, only on
 * ENOMEM or a sink that asks to stop. */
#include <string.h>

#include "core/codec.h"
#include "core/json.h"
#include "ingest/ingest_int.h"
#include "ingest/split.h"

/* Blob in blob (base64 in gzip in Kinesis...) and array in array: deeper is refused. */
#define MAX_NESTING 8

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t tw_decoder_inflate_cap(const struct tw_ingest_limits *lim)
{
	if (lim->max_inflated && lim->max_inflated < (uint64_t)lim->max_payload)
		return (size_t)lim->max_inflated;
	return lim->max_payload;
}

enum tw_rc tw_decoder_reject(struct tw_decoder *d, const struct tw_pos *pos, const char *reason,
			     const char *p, size_t n)
{
	struct tw_reject rej;

	rej.source = d->source;
	rej.line = pos ? pos->line : 0;
	rej.index = pos ? pos->index : 0;
	rej.offset = pos ? pos->offset : 0;
	rej.reason = reason;
	rej.bytes.p = n ? p : NULL;
	rej.bytes.n = n;
	d->st->quarantined++;
	return d->reject ? d->reject(d, &rej) : TW_OK;
}

static uint64_t count_nl(const char *p, const char *end)
{
	uint64_t c = 0;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

/* Position of a piece that starts at q inside a candidate that starts at p, at *pos. */
static struct tw_pos pos_inside(const struct tw_pos *pos, const char *p, const char *q, uint64_t *nl_acc,
				const char **nl_from)
{
	struct tw_pos sub = *pos;
	*nl_acc += count_nl(*nl_from, q);
	*nl_from = q;
	if (sub.line)
		sub.line += *nl_acc;
	sub.offset += (uint64_t)(q - p);
	return sub;
}

/* A JSON array of records: each element is decoded on its own. */
static enum tw_rc decode_array(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos)
{
	struct tw_json j;
	struct tw_str raw;
	const char *nl_from = p;
	uint64_t nl_acc = 0;
	enum tw_rc rc = TW_OK;
	int r;

	if (d->nesting >= MAX_NESTING)
		return tw_decoder_reject(d, pos, "arrays or blobs nested more than 8 deep", p, n);
	d->nesting++;
	tw_json_init(&j, p, n, d->lim->max_depth);
	if (!tw_json_arr_begin(&j))
		goto bad;
	while ((r = tw_json_arr_next(&j)) == 1) {
		struct tw_pos sub;
		if (!tw_json_skip(&j, &raw))
			goto bad;
		sub = pos_inside(pos, p, raw.p, &nl_acc, &nl_from);
		rc = tw_decode_value(d, raw.p, raw.n, &sub);
		if (rc)
			goto out;
	}
	if (r < 0 || !tw_json_end(&j))
		goto bad;
	goto out;
bad:
	/* Elements before the fault were decoded; the rest of the array is rejected. */
	rc = tw_decoder_reject(d, pos, j.err.msg, p, n);
out:
	d->nesting--;
	return rc;
}

/* An object that is neither CloudTrail nor CloudWatch: a wrapper {"...":..., "Records":[...]}
 * (S3 delivery file, Kinesis/SQS/SNS/S3 event) whose Records array does not come first has its
 * elements decoded here. *handled = 1 if there was such an array. The object is valid JSON
 * (tw_ct_decode said so). */
static enum tw_rc decode_records_member(struct tw_decoder *d, const char *p, size_t n,
					const struct tw_pos *pos, int *handled)
{
	struct tw_json j;
	struct tw_str key;
	int r;

	*handled = 0;
	if (!memmem(p, n, "\"Records\"", 9))
		return TW_OK;
	tw_json_init(&j, p, n, d->lim->max_depth);
	if (!tw_json_obj_begin(&j))
		return TW_OK;
	while ((r = tw_json_obj_next(&j, &key)) == 1) {
		if (tw_str_eq(key, "Records") && tw_json_peek(&j) == TW_JSON_ARRAY) {
			struct tw_str raw;
			struct tw_pos sub;
			const char *nl_from = p;
			uint64_t nl_acc = 0;
			if (!tw_json_skip(&j, &raw))
				return TW_OK;
			*handled = 1;
			sub = pos_inside(pos, p, raw.p, &nl_acc, &nl_from);
			return decode_array(d, raw.p, raw.n, &sub);
		}
		if (!tw_json_skip(&j, NULL))
			return TW_OK;
	}
	return TW_OK;
}

static enum tw_rc decode_object(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos)
{
	enum tw_rec_class cls = TW_REC_OTHER;
	struct tw_event *ev;
	enum tw_rc rc;
	int handled = 0;

	ev = tw_batch_push(d->batch, &d->err);
	if (!ev)
		return d->err.rc ? d->err.rc : TW_ENOMEM;
	rc = tw_ct_decode(p, n, d->lim->max_depth, &d->batch->arena, ev, &cls, &d->err);
	if (rc == TW_OK && cls == TW_REC_EVENT) {
		ev->src_index = pos->index;
		ev->src_line = pos->line;
		if (ev->kind >= 1 && ev->kind <= TW_KIND_MAX)
			d->st->events[ev->kind]++;
		return TW_OK;
	}
	tw_batch_pop(d->batch);
	if (rc == TW_EPARSE || rc == TW_ELIMIT)
		return tw_decoder_reject(d, pos, d->err.msg, p, n);
	if (rc != TW_OK)
		return rc;
	if (cls == TW_REC_DIGEST) {
		d->st->digests++;
		if (d->hooks && d->hooks->on_digest) {
			struct tw_str bytes = { p, n };
			d->hooks->on_digest(d->hooks->ctx, d->source, bytes);
		}
		return TW_OK;
	}
	rc = tw_cw_decode_object(d, p, n, pos, &handled);
	if (rc || handled)
		return rc;
	rc = decode_records_member(d, p, n, pos, &handled);
	if (rc || handled)
		return rc;
	d->st->skipped++;
	return TW_OK;
}

enum tw_rc tw_decode_value(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos)
{
	enum tw_rc rc;
	int handled = 0;

	while (n && is_ws(*p)) {
		p++;
		n--;
	}
	while (n && is_ws(p[n - 1]))
		n--;
	if (!n) {
		d->st->skipped++;
		return TW_OK;
	}
	if (*p == '{')
		return decode_object(d, p, n, pos);
	if (*p == '[')
		return decode_array(d, p, n, pos);
	if (strchr("\"-0123456789tfn", *p) && tw_json_validate(p, n, d->lim->max_depth, NULL) == TW_OK) {
		d->st->skipped++; /* a JSON string, number or literal: valid, but no record */
		return TW_OK;
	}
	rc = tw_cw_decode_export_line(d, p, n, pos, &handled);
	if (rc || handled)
		return rc;
	return tw_decoder_reject(d, pos, "not JSON and not a CloudWatch Logs export line", p, n);
}

/* ---- blobs ------------------------------------------------------------------------------ */

/* What the splitter callback of a blob needs. */
struct blob_ctx {
	struct tw_decoder *d;      /* decoding into */
	struct tw_pos parent;      /* where the blob sits */
	int top;                   /* 1: the blob is the source's stream (positions are its own) */
	size_t flush_at;           /* flush the batch when it holds this many events (0: never) */
	tw_blob_flush_fn flush;    /* NULL, or delivers and resets d->batch between records */
	void *flush_ctx;           /* for flush */
};

static enum tw_rc blob_emit(void *ctx, const struct tw_split_out *o)
{
	struct blob_ctx *b = ctx;
	struct tw_decoder *d = b->d;
	struct tw_pos pos = o->pos;
	enum tw_rc rc;

	if (!b->top)
		pos.index = b->parent.index; /* records inside a record share its index */
	else
		d->st->records++;
	if (o->reject)
		rc = tw_decoder_reject(d, &pos, o->reason, o->p, o->len);
	else
		rc = tw_decode_value(d, o->p, o->len, &pos);
	if (rc == TW_OK && b->flush && d->batch->n >= b->flush_at)
		rc = b->flush(b->flush_ctx);
	return rc;
}

enum tw_rc tw_decode_blob_top(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos,
			      int top, tw_blob_flush_fn flush, void *flush_ctx)
{
	struct blob_ctx b;
	struct tw_buf out;
	struct tw_split sp;
	enum tw_codec codec;
	enum tw_rc rc;

	if (d->nesting >= MAX_NESTING)
		return tw_decoder_reject(d, pos, "arrays or blobs nested more than 8 deep", p, n);
	codec = tw_codec_sniff(p, n);
	if (codec != TW_CODEC_PLAIN) {
		/* Peel one layer into a buffer that lives until the records inside are decoded. */
		tw_buf_init(&out, d->lim->max_payload);
		if (codec == TW_CODEC_BASE64)
			rc = tw_base64_decode(p, n, &out, &d->err);
		else
			rc = tw_inflate_mem(p, n, tw_decoder_inflate_cap(d->lim), &out, &d->err);
		if (rc == TW_OK) {
			const char *q = out.p ? out.p : "";
			size_t qn = out.n;
			if (!top && qn) {
				/* Events of a nested blob point into it: the batch must own the bytes. */
				char *a = tw_arena_alloc(&d->batch->arena, qn, &d->err);
				if (!a) {
					tw_buf_free(&out);
					return d->err.rc;
				}
				memcpy(a, out.p, qn);
				q = a;
				tw_buf_free(&out);
			}
			d->nesting++;
			rc = tw_decode_blob_top(d, q, qn, pos, top, flush, flush_ctx);
			d->nesting--;
			/* At the top, events point straight into `out`: deliver them before it is freed. */
			if (rc == TW_OK && top && flush && d->batch->n)
				rc = flush(flush_ctx);
		} else if (rc == TW_EPARSE || rc == TW_ELIMIT || rc == TW_EUNSUP) {
			rc = tw_decoder_reject(d, pos, d->err.msg, p, n);
		}
		tw_buf_free(&out);
		return rc;
	}
	if (top)
		d->st->bytes_decoded += n;
	b.d = d;
	b.parent = *pos;
	b.top = top;
	b.flush = flush;
	b.flush_at = d->lim->batch_events ? d->lim->batch_events : 4096;
	b.flush_ctx = flush_ctx;
	tw_split_init(&sp, d->lim->max_record, pos->line, pos->index, pos->offset);
	d->nesting++;
	rc = tw_split_feed(&sp, p, n, 0, 1, blob_emit, &b);
	d->nesting--;
	return rc;
}

enum tw_rc tw_decode_blob(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos)
{
	return tw_decode_blob_top(d, p, n, pos, 0, NULL, NULL);
}

/* ---- delivery ------------------------------------------------------------------------------ */

enum tw_rc tw_ingest_deliver(struct tw_sink *sink, struct tw_batch *batch, size_t from, size_t to,
			     size_t max_events, struct tw_err *err)
{
	while (from < to) {
		struct tw_batch view = *batch; /* a window on the batch: same arena, fewer events */
		size_t k = to - from;
		enum tw_rc rc;
		if (max_events && k > max_events)
			k = max_events;
		view.ev = batch->ev + from;
		view.n = k;
		view.cap = k;
		rc = sink->on_batch(sink->ctx, &view, err);
		if (rc) {
			if (err && err->rc == TW_OK)
				tw_err_set(err, rc, "sink stopped the run (%s)", tw_rc_str(rc));
			return rc;
		}
		from += k;
	}
	return TW_OK;
}

/* ---- tw_ingest_buffer ---------------------------------------------------------------------- */

/* Single-threaded delivery: rejects go to the sink at once, batches when full. */
struct now_ctx {
	struct tw_sink *sink; /* where everything goes */
	struct tw_err *err;   /* the caller's error (sink messages land here) */
	size_t max_events;    /* events per batch */
	struct tw_batch *batch; /* the decoder's batch */
};

static enum tw_rc reject_now(struct tw_decoder *d, const struct tw_reject *rej)
{
	struct now_ctx *c = d->reject_ctx;
	enum tw_rc rc;

	if (!c->sink->on_reject)
		return TW_OK;
	rc = c->sink->on_reject(c->sink->ctx, rej, c->err);
	if (rc && c->err && c->err->rc == TW_OK)
		tw_err_set(c->err, rc, "sink stopped the run (%s)", tw_rc_str(rc));
	return rc;
}

static enum tw_rc flush_now(void *ctx)
{
	struct now_ctx *c = ctx;
	enum tw_rc rc = tw_ingest_deliver(c->sink, c->batch, 0, c->batch->n, c->max_events, c->err);
	tw_batch_reset(c->batch);
	return rc;
}

enum tw_rc tw_ingest_buffer(const char *source, const void *p, size_t n, const struct tw_ingest_limits *lim,
			    struct tw_sink *sink, const struct tw_ingest_hooks *hooks,
			    struct tw_ingest_stats *st, struct tw_err *err)
{
	struct tw_ingest_limits l;
	struct tw_batch batch;
	struct tw_decoder d;
	struct now_ctx now;
	struct tw_pos pos = { 1, 0, 0 };
	struct tw_err local;
	enum tw_rc rc;

	if (!err)
		err = &local;
	tw_err_clear(err);
	if (!sink || !sink->on_batch || !st || (!p && n))
		return tw_err_set(err, TW_EINVAL, "tw_ingest_buffer: missing sink, stats or bytes");
	tw_ingest_limits_fill(&l, lim);
	tw_batch_init(&batch);
	batch.source = source;
	memset(&d, 0, sizeof d);
	d.lim = &l;
	d.hooks = hooks;
	d.st = st;
	d.batch = &batch;
	d.source = source ? source : "";
	d.reject = reject_now;
	d.reject_ctx = &now;
	now.sink = sink;
	now.err = err;
	now.max_events = l.batch_events;
	now.batch = &batch;
	st->bytes_in += n;
	rc = tw_decode_blob_top(&d, p ? p : "", n, &pos, 1, flush_now, &now);
	if (rc == TW_OK && batch.n)
		rc = flush_now(&now);
	if (rc && err->rc == TW_OK) {
		if (d.err.rc)
			*err = d.err;
		else
			tw_err_set(err, rc, "%s: decoding stopped (%s)", d.source, tw_rc_str(rc));
	}
	tw_batch_free(&batch);
	return rc;
}
