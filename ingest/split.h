/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/split.h: what source.c and decode.c share beyond ingest_int.h (private to ingest/).
 * Mainly the splitter: cuts a stream of JSON or text into record candidates with exact positions,
 * fed in pieces, holding at most one candidate (max_record bytes) whatever the stream size.
 * JSON-aware (strings, escapes, depth) but not validating: the decoders validate each candidate.
 * Also: limits with defaults filled in, blob decoding with flushes, delivery in batch windows. */
#ifndef TW_INGEST_SPLIT_H
#define TW_INGEST_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ingest/ingest_int.h"

/* Longest piece of the offending bytes passed with a reject made by the splitter or kept for
 * in-order delivery by a worker thread. More than a sink keeps (trailwatch decode keeps 64 KiB),
 * so the sink can still tell that it cut a record. */
#define TW_SPLIT_REJECT_BYTES ((size_t)1 << 20)

/* One thing the splitter found. */
struct tw_split_out {
	int reject;          /* 0: a record candidate; 1: a reject (reason set) */
	uint64_t start;      /* stream offset of the bytes (candidate, or start of what is rejected) */
	size_t len;          /* bytes at start (for a reject: what is still in the buffer, may be 0) */
	const char *p;       /* the bytes (points into the buffer passed to tw_split_feed) */
	struct tw_pos pos;   /* position: line of its first byte, record index, offset */
	const char *reason;  /* reject: why, one line; valid during the callback only */
};

/* Receives each candidate or reject, in stream order. A non-OK return stops tw_split_feed. */
typedef enum tw_rc (*tw_split_emit_fn)(void *ctx, const struct tw_split_out *o);

/* Splitter state. Fields are private to split.c. */
struct tw_split {
	size_t max_record;     /* cap on one candidate's bytes */
	uint64_t pos;          /* stream offset of the next byte to scan */
	uint64_t line;         /* line of the byte at pos (1-based; 0 when lines do not apply) */
	uint64_t index;        /* index of the next record (candidate or reject) */
	uint64_t offset0;      /* added to stream offsets in reported positions */
	int state;             /* what the scanner is inside of (enum in split.c) */
	int lines_mode;        /* -1 undecided, 0 values may span lines, 1 one value per line (NDJSON) */
	int line_based;        /* 1 when positions count lines (line0 != 0) */
	uint64_t cand;         /* stream offset where the pending candidate starts */
	uint64_t cand_line;    /* its line */
	uint64_t depth;        /* brackets open at pos */
	uint64_t wrap_depth;   /* depth at which elements of a streamed array start */
	int wrap_obj;          /* the streamed array sits inside an object ({"Records":[...]}) */
	int in_str;            /* pos is inside a string */
	int esc;               /* the byte at pos is escaped by a backslash */
	int top_nl;            /* a newline occurred inside the current top-level value */
	int first_done;        /* the first top-level value ended on its line (lines mode pending) */
	uint64_t first_nl;     /* first newline inside the first value, while undecided (0: none) */
	uint64_t target;       /* skipping: depth at which the skipped value ends */
	int then;              /* skipping: state to return to */
	int avx2;              /* the CPU has AVX2: scan 32 bytes per compare */
	char reason[96];       /* formatted reject reasons */
};

/* Starts a stream. Positions of what it holds start at line line0 (0: no line numbers), record
 * index index0 and offset offset0. max_record caps one candidate (0: no cap but the buffer). */
void tw_split_init(struct tw_split *s, size_t max_record, uint64_t line0, uint64_t index0,
		   uint64_t offset0);

/* Scans buf[0..n), which holds the stream bytes [base, base + n): base must be <= tw_split_keep(s)
 * and the bytes from there to the previous end must be the same as before. Emits every candidate
 * that completes in it (and rejects), in order. eof = 1: nothing follows, the pending candidate is
 * emitted (or rejected). Returns TW_OK, or the first non-OK code of emit. */
enum tw_rc tw_split_feed(struct tw_split *s, const char *buf, size_t n, uint64_t base, int eof,
			 tw_split_emit_fn emit, void *ctx);

/* First stream offset the splitter still needs (the start of the pending candidate, else the
 * scan position): the caller may drop every byte before it. */
uint64_t tw_split_keep(const struct tw_split *s);

/* 1 when the splitter is between records (nothing pending, not inside a value or an array). */
int tw_split_idle(const struct tw_split *s);

/* Copies lim (may be NULL) into out, with every 0 cap replaced by its default (threads stays 0). */
void tw_ingest_limits_fill(struct tw_ingest_limits *out, const struct tw_ingest_limits *lim);

/* Called between top-level records of a blob to hand d->batch to the sink and reset it. */
typedef enum tw_rc (*tw_blob_flush_fn)(void *ctx);

/* tw_decode_blob with two more choices: top = 1 when the blob is a whole source (positions are
 * positions in its decoded stream, and it counts in st->records and st->bytes_decoded; layers it
 * peels stay in buffers of this call instead of the batch arena), and flush (may be NULL), called
 * whenever d->batch holds lim->batch_events events after a record. */
enum tw_rc tw_decode_blob_top(struct tw_decoder *d, const char *p, size_t n, const struct tw_pos *pos,
			      int top, tw_blob_flush_fn flush, void *flush_ctx);

/* Hands batch->ev[from..to) to sink->on_batch in windows of at most max_events (0: one window).
 * The windows share the batch's arena. Returns the sink's code (err filled) if it stops. */
enum tw_rc tw_ingest_deliver(struct tw_sink *sink, struct tw_batch *batch, size_t from, size_t to,
			     size_t max_events, struct tw_err *err);

#endif
