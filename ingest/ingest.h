/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/ingest.h: sources and decoders. Turns bytes (files, directories, stdin, in-memory
 * blobs such as Kafka messages) into batches of tw_event handed to a tw_sink, and bad records
 * into rejects. Knows nothing of the store or of alarms. */
#ifndef TW_INGEST_H
#define TW_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/* Caps that keep memory and time bounded whatever the input. */
struct tw_ingest_limits {
	size_t max_record;     /* bytes of one record (a line, a Records element); default 8 MiB */
	size_t max_payload;    /* bytes of one decoded blob (CloudWatch payload, base64 layer,
	                          Kafka message after inflate); default 64 MiB */
	uint64_t max_inflated; /* inflated bytes per file/blob (gzip bomb guard); default 16 GiB */
	unsigned max_depth;    /* JSON nesting; default 256 */
	size_t batch_events;   /* events per batch handed to the sink; default 4096 */
	unsigned threads;      /* decode workers; 0 = one per online core */
	int regular_only;      /* a named path must be a regular file, itself: a symbolic link or
	                          special file is refused, and the file is opened with O_NOFOLLOW, so
	                          one swapped for a link after its caller looked is not followed
	                          (the follow source, whose files are checked with lstat first) */
};

void tw_ingest_limits_default(struct tw_ingest_limits *lim);

/* Counters a source adds to (never reset by the source). */
struct tw_ingest_stats {
	uint64_t files;                   /* files opened */
	uint64_t bytes_in;                /* bytes read from files/stdin/messages */
	uint64_t bytes_decoded;           /* bytes after gzip/zlib/base64 layers */
	uint64_t records;                 /* record candidates seen (events + rejects + skips) */
	uint64_t events[TW_KIND_MAX + 1]; /* events delivered, by kind (index 0 unused) */
	uint64_t digests;                 /* CloudTrail digest files: not events, skipped */
	uint64_t control_messages;        /* CloudWatch Logs CONTROL_MESSAGE payloads skipped */
	uint64_t skipped;                 /* other objects that are not events (S3 notifications) */
	uint64_t quarantined;             /* rejects handed to the sink */
};

/* Events delivered, all kinds together (the sum of st->events). */
uint64_t tw_ingest_stats_events(const struct tw_ingest_stats *st);

/* Optional hooks around a run. */
struct tw_ingest_hooks {
	/* Called with the raw bytes of each CloudTrail digest file found (to keep for verification). */
	void (*on_digest)(void *ctx, const char *source, struct tw_str bytes);
	/* Called after each file and about every 100 ms of work, from the thread that called the
	 * source, with the running totals. */
	void (*on_progress)(void *ctx, const struct tw_ingest_stats *st, const char *current);
	void *ctx;
};

/* Decodes paths: regular files (plain, gzip or zlib; JSON, NDJSON or export lines, detected by
 * content), directories (walked recursively in byte order of names, so the S3 layout
 * AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/ comes out in time order), and "-" for stdin.
 * Events reach sink->on_batch in source order, from the calling thread. Bad records reach
 * sink->on_reject and decoding goes on. Returns TW_OK unless a path cannot be read at all
 * (then the error names it and the next paths are still decoded; the first error is returned)
 * or the sink stops the run. hooks may be NULL. */
enum tw_rc tw_ingest_paths(const char *const *paths, size_t npaths, const struct tw_ingest_limits *lim,
			   struct tw_sink *sink, const struct tw_ingest_hooks *hooks,
			   struct tw_ingest_stats *st, struct tw_err *err);

/* Decodes one in-memory blob of any supported shape (the same detection as for a file, plus
 * base64 and the CloudWatch/Kinesis/Firehose envelopes). `source` names it in rejects
 * ("topic/3@1234"). The bytes are borrowed for the call only: events are copied into batches. */
enum tw_rc tw_ingest_buffer(const char *source, const void *p, size_t n, const struct tw_ingest_limits *lim,
			    struct tw_sink *sink, const struct tw_ingest_hooks *hooks,
			    struct tw_ingest_stats *st, struct tw_err *err);

#endif
