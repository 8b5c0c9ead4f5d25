/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/ingest_int.h: the contract between ingest/'s own files (private to ingest/).
 *
 *   source.c     files, directories, stdin: read, inflate, split into record candidates,
 *                run decoders on worker threads, deliver batches in order     (tw_ingest_paths)
 *   decode.c     the dispatcher: given one record candidate, decide what it is (CloudTrail
 *                record, digest, CloudWatch payload or envelope, export line...) and route it;
 *                tw_ingest_buffer; the splitter of blobs into record candidates
 *   cloudtrail.c one CloudTrail record (JSON object) -> tw_event                (tw_ct_decode)
 *   cwlogs.c     CloudWatch Logs payloads, envelopes, Kinesis/Firehose wrappers, export lines
 *
 * Memory: a decoder is handed bytes that already live in d->batch's arena (or that the caller
 * keeps alive until the batch is delivered), so events may point straight into them. Anything a
 * decoder makes (unescaped strings, inflated payloads that events point into) goes into the arena.
 */
#ifndef TW_INGEST_INT_H
#define TW_INGEST_INT_H

#include "core/event.h"
#include "core/json.h"
#include "ingest/ingest.h"

/* Where a record candidate sits in its source, for rejects and for tw_event.src_*. */
struct tw_pos {
	uint64_t line;   /* 1-based line of its first byte; 0 if lines do not apply */
	uint64_t index;  /* 0-based record index within the source */
	uint64_t offset; /* byte offset in the decoded stream of the source */
};

struct tw_decoder;
/* How a decoder reports a bad record; the source decides whether to deliver it now (single
 * thread) or keep it with the batch for in-order delivery (worker threads). */
typedef enum tw_rc (*tw_reject_fn)(struct tw_decoder *d, const struct tw_reject *rej);

/* Per-thread decoding context. */
struct tw_decoder {
	const struct tw_ingest_limits *lim; /* caps; borrowed */
	const struct tw_ingest_hooks *hooks; /* may be NULL; on_digest is called from the decoding thread */
	struct tw_ingest_stats *st;         /* counters of this thread (merged by the source) */
	struct tw_batch *batch;             /* events are appended here */
	const char *source;                 /* source name for rejects; borrowed */
	tw_reject_fn reject;                /* delivers or buffers a reject */
	void *reject_ctx;                   /* for reject */
	unsigned nesting;                   /* blob-in-blob depth (base64 in Kinesis in ...); capped */
	struct tw_err err;                  /* scratch for decoders' messages */
};

/* The most bytes one in-memory blob (a base64 or gzip layer inside a record or a message) may
 * inflate to: the payload cap, or max_inflated when that is smaller (the gzip-bomb guard applies
 * to blobs as it does to files). */
size_t tw_decoder_inflate_cap(const struct tw_ingest_limits *lim);

/* Builds a tw_reject from the parts and passes it to d->reject; counts it in st->quarantined. */
enum tw_rc tw_decoder_reject(struct tw_decoder *d, const struct tw_pos *pos, const char *reason,
			     const char *p, size_t n);

/* What a CloudTrail record candidate turned out to be. */
enum tw_rec_class {
	TW_REC_EVENT = 0,  /* a CloudTrail or Insights event: *ev is filled */
	TW_REC_DIGEST = 1, /* a CloudTrail digest file (digestPublicKeyFingerprint, digestS3Object...) */
	TW_REC_OTHER = 2,  /* valid JSON object, but not a CloudTrail record (caller tries others) */
};

/* Decodes one JSON object of n bytes at p as a CloudTrail record. On TW_OK, *cls says what it was;
 * for TW_REC_EVENT, ev (zeroed by the caller, read_only = -1) is filled: kind, time_ms, raw = (p, n),
 * fields and resources (allocated in a). Invalid JSON, a missing or bad eventTime on something
 * that is clearly a CloudTrail record -> TW_EPARSE with a one-line reason in err (no position:
 * the caller adds it). Never reads outside [p, p+n). */
enum tw_rc tw_ct_decode(const char *p, size_t n, unsigned max_depth, struct tw_arena *a,
			struct tw_event *ev, enum tw_rec_class *cls, struct tw_err *err);

/* Decodes one record candidate (JSON value, or an export/text line) at pos: routes it to the
 * CloudTrail decoder or the CloudWatch decoders, appends events to d->batch, rejects bad ones.
 * Returns non-OK only for errors that must stop the source (ENOMEM, sink stop). */
enum tw_rc tw_decode_value(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos);

/* Decodes a whole blob (possibly gzip/zlib/base64, possibly several values or lines) found at pos
 * inside its parent; positions of what it contains are reported relative to pos. */
enum tw_rc tw_decode_blob(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos);

/* cwlogs.c: d is positioned on a JSON object that is not a CloudTrail record. If it is a
 * CloudWatch Logs subscription payload (DATA_MESSAGE / CONTROL_MESSAGE), a Lambda envelope
 * {"awslogs":{"data":...}}, a Kinesis or Firehose event, or a Kinesis record wrapper, decode it
 * (appending events, rejecting bad log events) and set *handled = 1; else *handled = 0. */
enum tw_rc tw_cw_decode_object(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos,
			       int *handled);

/* cwlogs.c: one line of a CloudWatch Logs export file, "<ISO8601 timestamp> <message>". Sets
 * *handled = 0 if the line does not start with a timestamp. */
enum tw_rc tw_cw_decode_export_line(struct tw_decoder *d, const char *p, size_t n,
				    const struct tw_pos *pos, int *handled);

#endif
