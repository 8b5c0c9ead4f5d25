/* SPDX-License-Identifier: Apache-2.0 */
/* index/segment.h: immutable segment files: the sealed part of a store. A segment holds records
 * (encoded with index/evcodec.h) in compressed blocks, a block table with each block's record
 * range and time range, postings per indexed field, and an event-id filter for deduplication.
 * Every section carries a checksum; a reader that meets a bad one names the file and section.
 * Byte layout: index/FORMAT.md ("Segments") and the top of index/segment.c. Knows no directories:
 * index/store.c decides names, manifests and when to seal. */
#ifndef TW_INDEX_SEGMENT_H
#define TW_INDEX_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"

/* Indexed fields. The numbers are written in segment files: never renumber, only append. */
enum tw_ix {
	TW_IX_EVENT_NAME = 0,
	TW_IX_EVENT_SOURCE = 1,
	TW_IX_REGION = 2,
	TW_IX_ACCOUNT = 3,
	TW_IX_PRINCIPAL = 4,
	TW_IX_IDENTITY_TYPE = 5,
	TW_IX_USER_NAME = 6,
	TW_IX_ACCESS_KEY = 7,
	TW_IX_SSO_USER = 8,
	TW_IX_SESSION_ISSUER = 9,
	TW_IX_SOURCE_IP = 10,
	TW_IX_ERROR_CODE = 11,
	TW_IX_READ_ONLY = 12,  /* values "true" / "false" */
	TW_IX_RESOURCE = 13,   /* one posting per resource of the record */
	TW_IX_LOG_GROUP = 14,
	TW_IX_LOG_STREAM = 15,
	TW_IX_KIND = 16,       /* "cloudtrail" / "insight" / "cwlog" */
	TW_IX_EVENT_ID = 17,   /* looked up through the id filter + sorted ids, not plain postings */
	TW_IX__COUNT
};

/* The name of an indexed field as queries write it ("eventName", "principal", ...), and back
 * (accepts tw_field_lookup's aliases too); -1 when not indexed. */
const char *tw_ix_name(enum tw_ix f);
int tw_ix_lookup(const char *name, size_t n);

/* The record order inside a segment: principal, event source, event name, time, event id.
 * Measured on 1M generated records (zstd-1, 1 MiB blocks, ratio vs gzip -9 of the raw JSONL):
 * time order 0.78, (principal, time) 0.525, this key 0.471. It also puts a principal's records in
 * few blocks, which is what "what did X do" reads. */
int tw_seg_order(const struct tw_event *a, const struct tw_event *b);

/* Codecs a block may use; the codec is recorded per block so old blocks stay readable. */
enum tw_seg_codec { TW_SEG_RAW = 0, TW_SEG_DEFLATE = 1, TW_SEG_ZSTD = 2 };

struct tw_seg_opts {
	enum tw_seg_codec codec; /* default TW_SEG_ZSTD (zstd-1: 1272 MB/s at 0.456x gzip -9 where
	                          * zlib-6 gives 140 MB/s at 0.504x on the same sorted blocks) */
	int level;               /* codec level; 0 = the codec's default (zstd 1, deflate 6) */
	size_t block_bytes;      /* target uncompressed bytes per block; default 1 MiB */
	int fsync;               /* 1 (default): fsync the file and its directory before finishing */
};
void tw_seg_opts_default(struct tw_seg_opts *o);

/* What a segment holds; also what tw_segw_finish reports. */
struct tw_seg_info {
	uint64_t records;     /* records in the segment */
	uint32_t blocks;      /* compressed blocks */
	int64_t tmin, tmax;   /* time range of the records (ms); tmin > tmax when empty */
	uint64_t raw_bytes;   /* sum of the records' raw JSON bytes */
	uint64_t bytes_blocks;   /* on-disk bytes of the blocks */
	uint64_t bytes_postings; /* on-disk bytes of the postings, dictionaries and id filter */
	uint64_t bytes_total;    /* file size */
};

/* ---- writing ------------------------------------------------------------------------------ */
struct tw_segw;

/* Starts writing a segment at path (written as path.tmp, renamed on finish). */
enum tw_rc tw_segw_open(const char *path, const struct tw_seg_opts *opts, struct tw_segw **out,
			struct tw_err *err);
/* Adds one record. Records must come in tw_seg_order (TW_EINVAL otherwise). ev is borrowed: the
 * writer copies what it keeps. Memory: the current block plus the postings being built. */
enum tw_rc tw_segw_add(struct tw_segw *w, const struct tw_event *ev, struct tw_err *err);
/* Writes the last block, the postings, the id filter and the footer; fsyncs; renames into place.
 * Frees w whatever happens. info may be NULL. */
enum tw_rc tw_segw_finish(struct tw_segw *w, struct tw_seg_info *info, struct tw_err *err);
/* Drops a half-written segment (removes path.tmp). NULL is fine. */
void tw_segw_abort(struct tw_segw *w);

/* Convenience: sorts ev[0..n) in place by tw_seg_order and writes them as one segment. */
enum tw_rc tw_seg_write(const char *path, struct tw_event *ev, size_t n, const struct tw_seg_opts *opts,
			struct tw_seg_info *info, struct tw_err *err);

/* ---- reading ------------------------------------------------------------------------------ */
struct tw_seg;

/* Opens (mmap) and checks the header, footer and section table checksums. Sections are checked
 * again on first use. Thread-safe for concurrent readers once open. */
enum tw_rc tw_seg_open(const char *path, struct tw_seg **out, struct tw_err *err);
void tw_seg_close(struct tw_seg *s); /* NULL is fine */
const struct tw_seg_info *tw_seg_get_info(const struct tw_seg *s);
const char *tw_seg_path(const struct tw_seg *s);

/* One block's entry in the block table. */
struct tw_seg_block {
	uint32_t first;      /* first record id in the block */
	uint32_t count;      /* records in the block */
	int64_t tmin, tmax;  /* time range of its records */
	enum tw_seg_codec codec; /* codec of its fields frame (its id and raw frames record their own) */
};
void tw_seg_block_meta(const struct tw_seg *s, uint32_t block, struct tw_seg_block *meta);
/* The block holding record id rec. */
uint32_t tw_seg_block_of(const struct tw_seg *s, uint32_t rec);

/* A growable list of record ids (sorted ascending when produced by the lookups below). */
struct tw_ids {
	uint32_t *v;  /* ids */
	size_t n;     /* in use */
	size_t cap;   /* allocated */
};
void tw_ids_free(struct tw_ids *ids);

/* Record ids whose field f equals value (exact, case-sensitive), appended to ids sorted.
 * TW_ECORRUPT names the file and section when a checksum fails. */
enum tw_rc tw_seg_lookup(struct tw_seg *s, enum tw_ix f, struct tw_str value, struct tw_ids *ids,
			 struct tw_err *err);
/* Same for every value that starts with prefix (union of their postings, sorted, unique). */
enum tw_rc tw_seg_lookup_prefix(struct tw_seg *s, enum tw_ix f, struct tw_str prefix,
				struct tw_ids *ids, struct tw_err *err);
/* Calls fn for each distinct value of f with the number of records that have it, in value order;
 * fn returns non-zero to stop. */
enum tw_rc tw_seg_values(struct tw_seg *s, enum tw_ix f,
			 int (*fn)(void *ctx, struct tw_str value, uint32_t count), void *ctx,
			 struct tw_err *err);

/* Event-id lookup: 0 if the segment certainly lacks id (a filter miss, no I/O), else looks it up
 * exactly and returns 1 with *rec (may be NULL) set when present. */
int tw_seg_has_id(struct tw_seg *s, struct tw_str id, uint32_t *rec, struct tw_err *err);

/* Decompressed block kept by the caller between calls (reuse it: one per reader thread). */
struct tw_seg_blockbuf {
	const struct tw_seg *seg; /* segment of the cached block, or NULL */
	uint32_t block;           /* which block is cached */
	struct tw_buf data;       /* the cached block's fields and id frames, decompressed */
	uint32_t *offs;           /* offset of each record of the block in data */
	size_t noffs;             /* records in offs */
	size_t offs_cap;          /* allocated entries of offs */
	struct tw_buf raw;        /* the cached block's raw frame and its rebuilt raw records */
	unsigned frames;          /* frames of the cached block held: 1 fields + id (in data),
	                           * 2 raw (in raw); 0 when nothing is cached */
	uint32_t raw_ok;          /* with the raw frame held: its first records that are well formed
	                           * (raw records are rebuilt one at a time, when asked for) */
	const char *raw_why;      /* what is wrong with raw record raw_ok, or NULL (static text) */
};
void tw_seg_blockbuf_init(struct tw_seg_blockbuf *bb);
void tw_seg_blockbuf_free(struct tw_seg_blockbuf *bb);

/* Fetches record rec into *ev. ev's strings point into bb (valid until bb is reused for another
 * block or freed); resources are allocated in a. Decompresses the frames of the record's block that
 * bb does not hold yet (all three, or only the raw frame after tw_seg_get_fields of that block).
 * TW_ECORRUPT on a bad block checksum or undecodable record, naming file and block. */
enum tw_rc tw_seg_get(struct tw_seg *s, uint32_t rec, struct tw_seg_blockbuf *bb, struct tw_event *ev,
		      struct tw_arena *a, struct tw_err *err);

/* Same as tw_seg_get without the raw JSON: ev->raw is empty (n = 0) and only the block's fields
 * frame and id frame are decompressed (not its raw frame, most of a block's bytes). bb remembers
 * which frames it holds: a later tw_seg_get of the same block decompresses just the raw frame,
 * and strings handed out before stay valid. For queries that need no raw record. */
enum tw_rc tw_seg_get_fields(struct tw_seg *s, uint32_t rec, struct tw_seg_blockbuf *bb,
			     struct tw_event *ev, struct tw_arena *a, struct tw_err *err);

/* Checks every section and block checksum and that every posting points at a record that has the
 * value; calls report for each problem found (file + section + reason). Returns TW_OK when clean. */
enum tw_rc tw_seg_verify(struct tw_seg *s, void (*report)(void *ctx, const char *problem), void *ctx,
			 struct tw_err *err);

#endif
