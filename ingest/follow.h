/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/follow.h: the follow source. Watches a growing directory tree (the S3 layout) with
 * inotify plus a periodic rescan, decodes each complete file whole with tw_ingest_paths and, only
 * after the sink accepted all its batches, records it in an fsynced append-only checkpoint, so a
 * file is ingested once across restarts (a crash mid-file re-reads that file; the store dedups). */
#ifndef TW_INGEST_FOLLOW_H
#define TW_INGEST_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "ingest/ingest.h"

struct tw_follow;

struct tw_follow_opts {
	int64_t rescan_ms;  /* rescan interval; a file a rescan finds (not announced by inotify as
	                       closed or renamed in) is taken once its size and mtime stayed the same
	                       for this long; 0 = 1000 */
	size_t poll_files;  /* files decoded by one poll at most (bounds its latency); 0 = 16 */
};

/* Counters kept by the source (never reset). */
struct tw_follow_counters {
	uint64_t files_done;      /* files decoded and checkpointed by this process */
	uint64_t checkpointed;    /* distinct files in the checkpoint (loaded + added) */
	uint64_t torn_lines;      /* checkpoint lines ignored at open (torn tail, malformed) */
	uint64_t rescans;         /* full rescans of the tree */
	uint64_t overflows;       /* inotify queue overflows (each forces a rescan) */
	uint64_t watch_failures;  /* directories inotify could not watch (rescans still find them) */
	uint64_t file_errors;     /* files that could not be read (retried after they change or
	                             stay stable for one rescan) */
};

/* Opens the source on directory `dir` (must exist) with the checkpoint file `checkpoint_path`
 * (created if absent; a torn last line is cut off). Files are named in the checkpoint relative
 * to dir, so dir may be given another way after a restart. Files present at open and not in the
 * checkpoint are taken once stable for one rescan interval. opts may be NULL. The strings are
 * copied. Memory: the set of checkpointed files is kept in memory and grows with the files seen. */
enum tw_rc tw_ingest_follow_open(const char *dir, const char *checkpoint_path, const struct tw_follow_opts *opts,
				 struct tw_follow **out, struct tw_err *err);

/* Waits up to timeout_ms for complete files (less when some are ready), then decodes up to
 * opts.poll_files of them, each whole, into sink (batches carry the file's path as source);
 * after the sink accepted all of a file, appends it to the checkpoint and fsyncs it. Ignored:
 * names starting with '.', ending in ".tmp" or ".part", or holding a newline; non-regular files;
 * symbolic links. Returns TW_OK, or the sink's code (the file stays pending and is decoded again
 * by the next poll), or the error of an unreadable file (it is retried once it changes or stays
 * stable for a rescan) or of the checkpoint (the file stays pending). */
enum tw_rc tw_ingest_follow_poll(struct tw_follow *f, const struct tw_ingest_limits *lim, struct tw_sink *sink,
				 struct tw_ingest_stats *st, int timeout_ms, struct tw_err *err);

/* Files seen and not yet decoded (waiting to be stable, or ready): 0 when the source has taken
 * everything it knows of (--exit-at-end). O(files known). */
size_t tw_ingest_follow_pending(const struct tw_follow *f);

/* Copies the counters. */
void tw_ingest_follow_counters(const struct tw_follow *f, struct tw_follow_counters *c);

/* Closes the inotify descriptor and the checkpoint and frees f. NULL is allowed. */
void tw_ingest_follow_close(struct tw_follow *f);

#endif
