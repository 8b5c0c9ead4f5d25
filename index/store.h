/* SPDX-License-Identifier: Apache-2.0 */
/* index/store.h: a store is a directory: one writer (a lock), any number of readers, also while
 * the writer runs. The writer appends batches to the WAL (durable before acknowledged), dedups by
 * event id, seals the WAL into immutable segments (index/segment.h) by size or age, compacts small
 * segments and drops old ones. Readers open a snapshot: the segments listed in the MANIFEST plus
 * the durable WAL tail. Layout on disk: index/FORMAT.md ("Store directory"). */
#ifndef TW_INDEX_STORE_H
#define TW_INDEX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/event.h"
#include "index/segment.h"
#include "index/wal.h"

struct tw_store_opts {
	uint64_t seal_bytes;      /* seal the WAL into a segment past this many bytes; default 64 MiB
	                           * (bounds the writer's memory: the unsealed frames are kept in
	                           * memory, at most two WALs' worth while a background seal runs) */
	int seal_async;           /* 1 (default): a seal due by size runs on a background thread while
	                           * appends go on into a fresh WAL (at most one in flight; the next
	                           * due seal waits for it); 0: every seal runs on the calling thread.
	                           * Seals by age and tw_store_seal always finish before returning. */
	int64_t seal_age_ms;      /* ... or when its oldest batch is this old; default 5 min; 0 = never */
	struct tw_seg_opts seg;   /* how segments are written */
	const struct tw_wal_io *io; /* fault-injection hook for the WAL; NULL = real I/O */
	int64_t (*clock)(void *ctx); /* now in ms for seal age and retention; NULL = CLOCK_REALTIME */
	void *clock_ctx;          /* for clock */
};
void tw_store_opts_default(struct tw_store_opts *o);

/* What opening found and did. */
struct tw_store_recovery {
	uint64_t wal_frames;      /* WAL frames recovered (not yet sealed) */
	uint64_t wal_bytes_cut;   /* torn tail cut from the WAL */
	uint64_t orphans_removed; /* segment files not in the MANIFEST (a seal or compaction cut short) */
	char note[256];           /* human-readable summary of anything unusual, "" if none */
};

struct tw_store;

/* Opens dir as the writer, creating it (mode 0700, files 0600) if needed. TW_EBUSY with a clear
 * message if another process holds the writer lock. Recovers the WAL and the MANIFEST. rec may be NULL. */
enum tw_rc tw_store_open(const char *dir, const struct tw_store_opts *opts, struct tw_store **out,
			 struct tw_store_recovery *rec, struct tw_err *err);

struct tw_store_append_result {
	uint64_t stored;     /* events written */
	uint64_t duplicates; /* events skipped: their event id is already in the store (or earlier in the batch) */
};

/* Dedups the batch against the store, appends the rest to the WAL and fsyncs: on TW_OK the batch
 * is durable and may be acknowledged to its source. Seals when the WAL is due. An I/O error leaves
 * the store in a sticky error state (every later append fails). batch is borrowed. */
enum tw_rc tw_store_append(struct tw_store *s, const struct tw_batch *batch, struct tw_store_append_result *res,
			   struct tw_err *err);
/* The same, and dup (room for batch->n flags; NULL = not wanted) tells each event's fate on TW_OK:
 * dup[i] = 1 when event i was a duplicate, 0 when it was stored. The daemon feeds only stored
 * events to the metrics, so a batch replayed after a crash is not counted twice. */
enum tw_rc tw_store_append_dups(struct tw_store *s, const struct tw_batch *batch,
				struct tw_store_append_result *res, unsigned char *dup, struct tw_err *err);

/* Seals the WAL into a segment now (no-op when empty). */
enum tw_rc tw_store_seal(struct tw_store *s, struct tw_err *err);

/* Merges segments smaller than max_bytes / 4 into segments of up to max_bytes (0 = default 512 MiB),
 * with bounded memory (a streaming merge of sorted segments). Readers keep their snapshot. */
enum tw_rc tw_store_compact(struct tw_store *s, uint64_t max_bytes, uint64_t *merged, struct tw_err *err);

/* Removes whole segments whose newest record is older than cutoff_ms. *removed (may be NULL). */
enum tw_rc tw_store_retain(struct tw_store *s, int64_t cutoff_ms, uint64_t *removed, struct tw_err *err);

/* Closes the writer (the WAL stays; nothing is lost). NULL is fine. */
enum tw_rc tw_store_close(struct tw_store *s, struct tw_err *err);

/* ---- reading (no lock; safe while a writer runs) ------------------------------------------ */
struct tw_store_stats {
	uint64_t records;        /* in segments + WAL */
	uint64_t wal_records;    /* of which still in the WAL */
	uint64_t segments;       /* live segments */
	int64_t tmin, tmax;      /* time range (ms); tmin > tmax when empty */
	uint64_t raw_bytes;      /* sum of the records' original JSON bytes */
	uint64_t bytes_blocks;   /* segment blocks on disk */
	uint64_t bytes_postings; /* postings, dictionaries, id filters */
	uint64_t bytes_wal;      /* WAL file */
	uint64_t bytes_total;    /* everything in the directory */
};
enum tw_rc tw_store_stat(const char *dir, struct tw_store_stats *st, struct tw_err *err);

/* Checks every checksum of every live segment and the WAL, and that every posting points at a
 * record with the value. report (may be NULL) gets one line per problem; *problems the count. */
enum tw_rc tw_store_verify(const char *dir, void (*report)(void *ctx, const char *problem), void *ctx,
			   uint64_t *problems, struct tw_err *err);

/* A consistent view: the MANIFEST's segments (kept open even if compaction removes their files)
 * and the WAL frames durable at open time. */
struct tw_snap;
enum tw_rc tw_snap_open(const char *dir, struct tw_snap **out, struct tw_err *err);
size_t tw_snap_nsegs(const struct tw_snap *snap);
struct tw_seg *tw_snap_seg(struct tw_snap *snap, size_t i);
/* Events still in the WAL (not sorted), owned by the snapshot. */
const struct tw_batch *tw_snap_tail(const struct tw_snap *snap);
void tw_snap_close(struct tw_snap *snap); /* NULL is fine */
/* Like tw_snap_open, but a segment that cannot be opened (missing, unreadable, a damaged header,
 * footer or section table) is left out instead of failing: the snapshot holds the rest. Each
 * left-out segment has a problem message naming its file (borrowed, lives as long as snap). Only
 * the MANIFEST, the WAL and out-of-memory still fail it. */
enum tw_rc tw_snap_open_partial(const char *dir, struct tw_snap **out, struct tw_err *err);
size_t tw_snap_nproblems(const struct tw_snap *snap);
const char *tw_snap_problem(const struct tw_snap *snap, size_t i);

#endif
