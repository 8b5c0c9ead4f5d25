/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/kafka.h: the Kafka source. Consumes messages with librdkafka, decodes each one with
 * tw_ingest_buffer, hands one batch per poll to a tw_sink and commits the offsets of that batch
 * only after the sink accepted it. Undecodable messages go to an optional dead-letter topic.
 * Knows nothing of the store: the caller's sink makes batches durable. */
#ifndef TW_INGEST_KAFKA_H
#define TW_INGEST_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "ingest/ingest.h"

struct tw_kafka;

/* A librdkafka property passed through as is ("security.protocol", "sasl.mechanism"...). */
struct tw_kafka_prop {
	const char *key;   /* property name */
	const char *value; /* its value */
};

/* One partition to consume in assign mode (tests, replays): no group rebalancing. */
struct tw_kafka_assign {
	const char *topic; /* topic name */
	int32_t partition; /* partition number */
	int64_t offset;    /* start offset; or -2 (RD_KAFKA_OFFSET_BEGINNING), -1 (END),
	                      -1000 (RD_KAFKA_OFFSET_STORED: the group's committed offset) */
};

/* Connection state reported to on_state, once per change. */
enum tw_kafka_state {
	TW_KAFKA_UP = 0,   /* brokers answer again (a fetch or a commit succeeded) */
	TW_KAFKA_DOWN = 1, /* all brokers unreachable (librdkafka's "all brokers down") */
};

struct tw_kafka_opts {
	const char *brokers;   /* bootstrap.servers, "host:port,..."; required */
	const char *group_id;  /* group.id; required (offsets are committed to it) */
	const char *client_id; /* client.id; NULL = "trailwatch" */
	const char *const *topics; /* topics to subscribe to (ignored in assign mode) */
	size_t ntopics;        /* entries in topics */
	const struct tw_kafka_assign *assign; /* non-NULL: assign these partitions, no subscribe */
	size_t nassign;        /* entries in assign */
	const struct tw_kafka_prop *props; /* passed to the consumer and the DLT producer, after
	                                      our defaults (so they override them); may be NULL */
	size_t nprops;         /* entries in props */
	size_t batch_max_events; /* a batch closes once it holds this many events; 0 = 4096.
	                            Soft: the last message's events all go in (a message is never split) */
	size_t batch_max_bytes;  /* ... or this many message payload bytes; 0 = 16 MiB (soft, as above) */
	int batch_max_wait_ms;   /* ... or this long after its first message; 0 = 500 */
	const char *dlt_topic;   /* dead-letter topic for undecodable messages; NULL = none */
	/* Called from tw_ingest_kafka_poll/_lag/_close's thread when the connection state changes
	 * (the first report is DOWN; UP only follows a DOWN). detail is borrowed for the call. */
	void (*on_state)(void *ctx, enum tw_kafka_state state, const char *detail);
	/* librdkafka log lines (level as syslog: 0 emerg .. 7 debug); NULL = dropped. Called from
	 * librdkafka's threads: must be thread-safe. */
	void (*on_log)(void *ctx, int level, const char *facility, const char *msg);
	void *ctx; /* for on_state and on_log */
};

/* Counters kept by the source (never reset). */
struct tw_kafka_counters {
	uint64_t messages;       /* messages consumed (errors excluded) */
	uint64_t batches;        /* batches accepted by the sink */
	uint64_t commits;        /* synchronous commits issued by the source that succeeded */
	uint64_t commits_acked;  /* successful commits reported by librdkafka's offset_commit_cb */
	uint64_t dead_letters;   /* messages produced to the DLT (delivery confirmed) */
	uint64_t undecodable;    /* messages with no event and at least one reject */
	uint64_t consumer_errors; /* non-fatal consumer errors seen (message->err) */
};

/* Per assigned partition, for `trailwatch status`. */
struct tw_kafka_lag {
	char topic[256];    /* topic name (truncated to 255 bytes) */
	int32_t partition;  /* partition */
	int64_t committed;  /* committed offset of the group, -1 when none */
	int64_t high;       /* high watermark (offset of the next message produced) */
	int64_t lag;        /* high - committed (high - low when nothing is committed) */
};

/* Creates the consumer (and the DLT producer), subscribes or assigns. Defaults:
 * enable.auto.commit=false, enable.auto.offset.store=false, auto.offset.reset=earliest; props
 * override them (except enable.auto.commit, which stays false: commits are the source's job).
 * *out is written only on success; opts is borrowed (strings are copied). Errors: TW_EINVAL
 * (missing brokers/group, a property librdkafka refuses: its message is in err), TW_ENOMEM,
 * TW_EIO (librdkafka could not create the client or subscribe). Not thread-safe: one thread
 * uses a struct tw_kafka at a time. */
enum tw_rc tw_ingest_kafka_open(const struct tw_kafka_opts *opts, struct tw_kafka **out, struct tw_err *err);

/* Consumes one batch: waits up to timeout_ms for a first message, then collects until a batch
 * limit is reached (events, bytes, max_wait_ms after the first message) or timeout_ms ran out.
 * Each message is decoded with tw_ingest_buffer (lim may be NULL for defaults; lim->batch_events
 * does not split the batch) under the source name "topic/partition@offset". Events go to
 * sink->on_batch in one call (none when there are no events). Rejects of messages that also gave
 * events go to sink->on_reject. A message that gave no event but rejects is "undecodable": with a
 * dead-letter topic it is produced there (headers tw.topic, tw.partition, tw.offset, tw.reason)
 * and its rejects do not reach the sink; without one, its rejects go to sink->on_reject. Only when
 * the sink returned TW_OK (and the DLT confirmed delivery) are the next offsets of every partition
 * in the batch committed, synchronously, in one commit. A sink error: nothing committed, the
 * consumer is rewound to the first offset of the batch on each partition (so the next poll
 * re-reads it), and the sink's code is returned. Returns TW_OK with nothing delivered on a
 * timeout. TW_EIO: commit or DLT delivery failed (consumer rewound too), or a fatal client error.
 * st (required) gets the decode counters. */
enum tw_rc tw_ingest_kafka_poll(struct tw_kafka *k, const struct tw_ingest_limits *lim, struct tw_sink *sink,
				struct tw_ingest_stats *st, int timeout_ms, struct tw_err *err);

/* Lag of every assigned partition: up to cap entries in out, *n set to how many were written.
 * Asks the brokers (committed offsets and watermarks), waiting up to timeout_ms per request.
 * TW_ELIMIT when more than cap partitions are assigned (out holds the first cap), TW_EIO when the
 * brokers do not answer. */
enum tw_rc tw_ingest_kafka_lag(struct tw_kafka *k, struct tw_kafka_lag *out, size_t cap, size_t *n,
			       int timeout_ms, struct tw_err *err);

/* Copies the counters. */
void tw_ingest_kafka_counters(const struct tw_kafka *k, struct tw_kafka_counters *out);

/* Leaves the group and closes the consumer (rd_kafka_consumer_close) and the DLT producer,
 * committing nothing. Accepts NULL and half-built objects. */
void tw_ingest_kafka_close(struct tw_kafka *k);

#endif
