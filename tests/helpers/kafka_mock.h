/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/kafka_mock.h: a librdkafka mock cluster on 127.0.0.1 for integration tests, a real
 * producer into it, and independent readers (a fresh consumer) for topics and committed offsets.
 * Fails the current Criterion test itself when librdkafka refuses. Never reaches beyond 127.0.0.1. */
#ifndef TW_TEST_KAFKA_MOCK_H
#define TW_TEST_KAFKA_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

struct tw_test_kafka {
	rd_kafka_t *host;              /* the handle that owns the mock cluster */
	rd_kafka_mock_cluster_t *mc;   /* the mock cluster */
	rd_kafka_t *prod;              /* a producer connected to it */
	char brokers[256];             /* its bootstrap servers ("127.0.0.1:port,...") */
};

/* Starts a mock cluster of nbrokers brokers and a producer. */
void tw_test_kafka_start(struct tw_test_kafka *tk, int nbrokers);
/* Destroys the producer and the cluster. */
void tw_test_kafka_stop(struct tw_test_kafka *tk);
/* Creates topic with npart partitions (replication 1). */
void tw_test_kafka_topic(struct tw_test_kafka *tk, const char *topic, int npart);
/* Queues one message (copied) for topic/partition. */
void tw_test_kafka_produce(struct tw_test_kafka *tk, const char *topic, int32_t partition, const void *p,
			   size_t n);
/* Waits until every queued message is delivered (fails the test on any delivery error). */
void tw_test_kafka_flush(struct tw_test_kafka *tk);
/* A message read back: copies, so they outlive the consumer (rd_kafka_destroy waits for every
 * rd_kafka_message_t of its handle to be destroyed). */
struct tw_test_kmsg {
	char *value;   /* payload copy (malloc'd, NUL-terminated) */
	size_t n;      /* payload bytes */
	int64_t offset; /* its offset */
	char *headers; /* "name=value\n" per header (malloc'd, NUL-terminated) */
};

/* Reads up to max messages of topic/partition from the beginning with a fresh consumer (assign),
 * waiting at most timeout_ms in all; returns how many were copied to out. */
size_t tw_test_kafka_read(struct tw_test_kafka *tk, const char *topic, int32_t partition,
			  struct tw_test_kmsg *out, size_t max, int timeout_ms);
void tw_test_kmsg_free(struct tw_test_kmsg *m);
/* The committed offset of group on topic/partition, asked by a fresh consumer; -1 when none. */
int64_t tw_test_kafka_committed(struct tw_test_kafka *tk, const char *group, const char *topic,
				int32_t partition);
/* The value of header name in m as a malloc'd NUL-terminated string, or NULL. */
char *tw_test_kafka_header(const struct tw_test_kmsg *m, const char *name);

#endif
